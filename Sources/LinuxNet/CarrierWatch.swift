// Whether an interface has carrier, read without allocating: the daemon
// asks for every port of every node several times a second.
import CLinuxShim
import Glibc

/// A socket inside one namespace through which its interfaces' state is
/// read (`SIOCGIFFLAGS`: up and running). For a veth, running means
/// carrier: both ends are up.
///
/// It also listens for the namespace's link events (rtnetlink, group
/// RTMGRP_LINK): `eventDescriptor` becomes readable when an interface
/// changes, so the daemon reads carrier at once rather than at its next
/// quarter-second poll — a link that comes back carries frames at once.
public final class CarrierWatch: @unchecked Sendable {  // one owner thread reads; the fds are fixed
    public let namespace: String
    private var descriptor: Int32
    /// Nonblocking NETLINK_ROUTE socket in RTMGRP_LINK; -1 if it could not be opened.
    public private(set) var eventDescriptor: Int32 = -1
    /// Where `drainEvents` reads to (the events' content is not needed).
    private let scratch = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 8)

    /// Opens the sockets inside namespace NAME.
    public init(namespace: String) throws {
        self.namespace = namespace
        let context = OperationContext("opening a socket to watch links", namespace: namespace)
        descriptor = try NetworkNamespace.run(namespace) { () throws(LinuxNetError) -> Int32 in
            try systemCall("socket(AF_INET)", context) {
                socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
        }
        // Without events the quarter-second poll still sees every change.
        eventDescriptor = (try? NetworkNamespace.run(namespace) { () throws(LinuxNetError) -> Int32 in
            Self.openLinkEvents()
        }) ?? -1
    }

    /// A nonblocking NETLINK_ROUTE socket in RTMGRP_LINK, in the calling
    /// thread's namespace; -1 if it cannot be opened.
    private static func openLinkEvents() -> Int32 {
        let events = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                            NETLINK_ROUTE)
        guard events >= 0 else { return -1 }
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = 1   // RTMGRP_LINK
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(events, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard bound == 0 else {
            _ = Glibc.close(events)
            return -1
        }
        return events
    }

    deinit {
        close()
        scratch.deallocate()
    }

    /// Closes the sockets (once).
    public func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
        if eventDescriptor >= 0 { _ = Glibc.close(eventDescriptor) }
        eventDescriptor = -1
    }

    /// Reads and forgets the pending link events (no allocation); true if
    /// there were any (or the queue overflowed: carrier should be read).
    @discardableResult
    public func drainEvents() -> Bool {
        guard eventDescriptor >= 0 else { return false }
        var any = false
        while true {
            let n = recv(eventDescriptor, scratch, 8192, 0)   // (the socket is nonblocking)
            if n > 0 { any = true; continue }
            if n < 0 && errno == ENOBUFS { any = true; continue }
            if n < 0 && errno == EINTR { continue }
            return any
        }
    }

    /// Whether INTERFACE is up and has carrier; nil when it cannot be read
    /// (gone, or the socket closed). Interface names fit Swift's small-string
    /// storage (15 bytes), so passing one as a C string allocates nothing.
    public func hasCarrier(_ interface: String) -> Bool? {
        guard descriptor >= 0 else { return nil }
        let result = interface.withCString { cwl_interface_running(descriptor, $0) }
        return result < 0 ? nil : result == 1
    }
}
