// The socket under RTNetlink, behind a protocol so tests can run the same
// operations against recorded bytes instead of a kernel.
import CLinuxShim
import Glibc

/// Moves netlink datagrams to and from the kernel.
public protocol NetlinkTransport: AnyObject {
    /// Sends one datagram: one or more netlink messages back to back.
    func send(_ datagram: [UInt8]) throws
    /// Blocks until the next datagram from the kernel arrives and returns it.
    func receive() throws -> [UInt8]
}

/// A NETLINK_ROUTE socket. It belongs to the network namespace of the thread
/// that opened it, for its whole life (RTNetlink opens it inside the wanted
/// namespace with `NetworkNamespace.run`).
public final class NetlinkSocket: NetlinkTransport {
    /// The socket descriptor (close-on-exec), -1 once closed.
    public private(set) var fileDescriptor: Int32
    /// The namespace name, for error messages.
    public let namespace: String?
    private var buffer: [UInt8]

    /// Opens and binds a NETLINK_ROUTE socket in the calling thread's
    /// namespace, asking for capped and extended ACKs (error replies carry
    /// the kernel's message and not a copy of our request) and a 1 MiB
    /// receive buffer for pipelined replies.
    public init(namespace: String?) throws {
        let context = OperationContext("opening a netlink socket", namespace: namespace)
        self.namespace = namespace
        buffer = [UInt8](repeating: 0, count: 1 << 16)
        fileDescriptor = try systemCall("socket(AF_NETLINK)", context) {
            socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        }
        do {
            var address = sockaddr_nl()
            address.nl_family = sa_family_t(AF_NETLINK)
            try systemCall("bind", context) {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fileDescriptor, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
            try setOption(SOL_NETLINK, NETLINK_CAP_ACK, 1, "setsockopt(NETLINK_CAP_ACK)", context)
            try setOption(SOL_NETLINK, NETLINK_EXT_ACK, 1, "setsockopt(NETLINK_EXT_ACK)", context)
            // Root may exceed net.core.rmem_max (SO_RCVBUFFORCE); fall back if not.
            if (try? setOption(SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20, "", context)) == nil {
                _ = try? setOption(SOL_SOCKET, SO_RCVBUF, 1 << 20, "", context)
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Closes the socket (once).
    public func close() {
        if fileDescriptor >= 0 { _ = Glibc.close(fileDescriptor) }
        fileDescriptor = -1
    }

    public func send(_ datagram: [UInt8]) throws {
        let context = OperationContext("sending a netlink request", namespace: namespace)
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)  // nl_pid 0: the kernel
        let sent = try datagram.withUnsafeBytes { bytes throws(LinuxNetError) in
            try systemCall("sendto", context) {
                withUnsafePointer(to: &kernel) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fileDescriptor, bytes.baseAddress, bytes.count, 0, $0,
                               socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
        }
        if sent != datagram.count { throw context.error("sendto", .protocolError, kernelMessage: "short send") }
    }

    public func receive() throws -> [UInt8] {
        let context = OperationContext("reading a netlink reply", namespace: namespace)
        let capacity = buffer.count
        // MSG_TRUNC: recv returns the datagram's real length even if larger.
        let length = try buffer.withUnsafeMutableBytes { bytes throws(LinuxNetError) in
            try systemCall("recv", context) { recv(fileDescriptor, bytes.baseAddress, capacity, Int32(MSG_TRUNC)) }
        }
        if length > capacity {
            throw context.error("recv", .noBufferSpace, kernelMessage: "reply of \(length) bytes truncated to \(capacity)")
        }
        return Array(buffer[0..<length])
    }

    private func setOption(_ level: Int32, _ name: Int32, _ value: Int32, _ call: String,
                           _ context: OperationContext) throws(LinuxNetError) {
        var value = value
        try systemCall(call, context) {
            setsockopt(fileDescriptor, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }
}
