import Foundation
import Glibc

/// The built-in server run on hosts (`serve:` in the topology file,
/// `wirelab serve` on the command line). HTTP answers every request with
/// the node's name; UDP echo sends each datagram back. One thread, poll():
/// an idle server sleeps.
public final class BuiltinServer {
    public struct Configuration: Sendable {
        public var name: String
        public var httpPort: Int?
        public var udpEchoPort: Int?
        public init(name: String, httpPort: Int?, udpEchoPort: Int?) {
            self.name = name
            self.httpPort = httpPort
            self.udpEchoPort = udpEchoPort
        }
    }

    public enum ServerError: Error, CustomStringConvertible {
        case system(String, Int32)
        public var description: String {
            switch self {
            case let .system(op, err): return "\(op): \(String(cString: strerror(err)))"
            }
        }
    }

    private let config: Configuration
    private var httpListener: Int32 = -1
    private var udpSocket: Int32 = -1
    /// Open HTTP connections and what each has received so far.
    private var clients: [Int32: [UInt8]] = [:]
    public private(set) var requestsServed = 0

    public init(_ config: Configuration) { self.config = config }

    deinit {
        for fd in clients.keys { close(fd) }
        if httpListener >= 0 { close(httpListener) }
        if udpSocket >= 0 { close(udpSocket) }
    }

    /// Binds the sockets; throws if a port is taken.
    public func bind() throws {
        if let port = config.httpPort {
            httpListener = try Self.socketBound(type: Int32(SOCK_STREAM.rawValue), port: port)
            guard listen(httpListener, 128) == 0 else { throw ServerError.system("listen on tcp/\(port)", errno) }
        }
        if let port = config.udpEchoPort {
            udpSocket = try Self.socketBound(type: Int32(SOCK_DGRAM.rawValue), port: port)
        }
    }

    private static func socketBound(type: Int32, port: Int) throws -> Int32 {
        let fd = socket(AF_INET, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ServerError.system("socket", errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr = in_addr(s_addr: INADDR_ANY)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let err = errno
            close(fd)
            throw ServerError.system("bind \(type == Int32(SOCK_STREAM.rawValue) ? "tcp" : "udp")/\(port)", err)
        }
        return fd
    }

    /// Serves until `shouldStop` returns true (checked at least every `tick` ms).
    public func run(tick: Int32 = 1000, shouldStop: () -> Bool = { false }) {
        while !shouldStop() {
            var fds: [pollfd] = []
            if httpListener >= 0 { fds.append(pollfd(fd: httpListener, events: Int16(POLLIN), revents: 0)) }
            if udpSocket >= 0 { fds.append(pollfd(fd: udpSocket, events: Int16(POLLIN), revents: 0)) }
            for fd in clients.keys { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), tick)
            if n <= 0 { continue }
            for p in fds where p.revents != 0 {
                if p.fd == httpListener { acceptAll() }
                else if p.fd == udpSocket { echoAll() }
                else { readClient(p.fd) }
            }
        }
    }

    private func acceptAll() {
        while true {
            let fd = accept(httpListener, nil, nil)
            if fd < 0 { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            clients[fd] = []
        }
    }

    private func echoAll() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var from = sockaddr_storage()
            var fromLen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buffer.withUnsafeMutableBytes { buf in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udpSocket, buf.baseAddress, buf.count, 0, $0, &fromLen) }
                }
            }
            if n < 0 { return }
            _ = buffer.withUnsafeBytes { buf in
                withUnsafePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udpSocket, buf.baseAddress, n, 0, $0, fromLen) }
                }
            }
        }
    }

    private func readClient(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            close(fd)
            clients[fd] = nil
            return
        }
        if n < 0 { return }
        var received = clients[fd, default: []]
        received.append(contentsOf: chunk[0..<n])
        // Requests are small; a request bigger than 64 KiB is refused.
        if received.count > 65536 {
            respond(fd, status: "413 Payload Too Large", body: "too large\n")
            return
        }
        if Self.headerEnd(received) != nil {
            respond(fd, status: "200 OK", body: config.name + "\n")
            requestsServed += 1
        } else {
            clients[fd] = received
        }
    }

    private func respond(_ fd: Int32, status: String, body: String) {
        let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nServer: wirelab\r\nX-Wirelab-Node: \(config.name)\r\nConnection: close\r\n\r\n\(body)"
        let bytes = Array(response.utf8)
        var sent = 0
        // Nonblocking socket, tiny response: the send buffer holds it at once.
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        shutdown(fd, Int32(SHUT_WR))
        close(fd)
        clients[fd] = nil
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}
