// Sockets as the lab uses them — the control socket, the built-in servers,
// health checks and check probes: each call that can fail throws a
// `LinuxNetError` naming what was being done, the call and errno.
import CLinuxShim  // SOCK_* (from sys/socket.h): Glibc alone does not export them to a release (whole-module) build
import Glibc
import Wire

/// Where a socket binds, connects or sends to: an IPv4 address and port, or
/// the path of a Unix socket.
public struct SocketAddress: CustomStringConvertible {
    @usableFromInline var storage = sockaddr_storage()
    @usableFromInline var length: socklen_t

    /// An IPv4 address and port.
    public static func ipv4(_ address: IPv4Address, port: UInt16) -> SocketAddress {
        var s = sockaddr_in()
        s.sin_family = sa_family_t(AF_INET)
        s.sin_port = port.bigEndian
        s.sin_addr = in_addr(s_addr: address.rawValue.bigEndian)
        var a = SocketAddress(length: socklen_t(MemoryLayout<sockaddr_in>.size))
        withUnsafeMutableBytes(of: &a.storage) { $0.storeBytes(of: s, as: sockaddr_in.self) }
        return a
    }

    /// A Unix socket's path (cut to fit `sun_path`).
    public static func unix(_ path: String) -> SocketAddress {
        var s = sockaddr_un()
        s.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &s.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        var a = SocketAddress(length: socklen_t(MemoryLayout<sockaddr_un>.size))
        withUnsafeMutableBytes(of: &a.storage) { $0.storeBytes(of: s, as: sockaddr_un.self) }
        return a
    }

    init(length: socklen_t) { self.length = length }

    /// "10.0.0.1:80", or the Unix socket's path.
    public var description: String {
        withUnsafeBytes(of: storage) { raw in
            switch Int32(raw.load(as: sa_family_t.self)) {
            case AF_INET:
                let s = raw.load(as: sockaddr_in.self)
                return "\(IPv4Address(rawValue: UInt32(bigEndian: s.sin_addr.s_addr))):\(UInt16(bigEndian: s.sin_port))"
            case AF_UNIX:
                let path = raw[MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!...].prefix { $0 != 0 }
                return String(decoding: path, as: UTF8.self)
            default:
                return "address family \(raw.load(as: sa_family_t.self))"
            }
        }
    }

    /// The IPv4 address, if this is one.
    public var ipv4Address: IPv4Address? {
        withUnsafeBytes(of: storage) { raw in
            guard Int32(raw.load(as: sa_family_t.self)) == AF_INET else { return nil }
            return IPv4Address(rawValue: UInt32(bigEndian: raw.load(as: sockaddr_in.self).sin_addr.s_addr))
        }
    }

    @usableFromInline
    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }
}

/// A socket descriptor and the calls the lab makes on it. A plain value:
/// it does not own the descriptor — `close()` it once, when done.
///
/// Every socket is opened close-on-exec. Sends never raise SIGPIPE
/// (MSG_NOSIGNAL). Calls interrupted by a signal are retried, but connect.
public struct Socket: Hashable, Sendable, CustomStringConvertible {
    /// The descriptor, for poll().
    public let descriptor: Int32

    public init(descriptor: Int32) { self.descriptor = descriptor }

    public enum Kind: Sendable, CustomStringConvertible {
        /// TCP over IPv4.
        case tcp
        /// UDP over IPv4.
        case udp
        /// A Unix stream socket.
        case unixStream
        /// A raw IPv4 socket the caller writes whole IP packets to
        /// (IPPROTO_RAW: IP_HDRINCL); the kernel routes, ARPs and frames them.
        case rawIPv4
        /// A raw IPv4 socket that receives a copy of every ICMP message.
        case rawICMPv4

        public var description: String {
            switch self {
            case .tcp: "TCP"
            case .udp: "UDP"
            case .unixStream: "Unix stream"
            case .rawIPv4: "raw IP"
            case .rawICMPv4: "raw ICMP"
            }
        }
    }

    /// How `shutdown` ends a connection.
    public enum Direction: Sendable {
        case write
        case readWrite
    }

    public var description: String { "socket \(descriptor)" }

    /// Opens a socket of KIND, close-on-exec, non-blocking if asked.
    /// OPERATION names what it is for in the error ("opening a TCP socket").
    public static func open(_ kind: Kind, nonBlocking: Bool = false,
                            operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Socket {
        let (domain, type, proto): (Int32, Int32, Int32) = switch kind {
        case .tcp: (AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        case .udp: (AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        case .unixStream: (AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        case .rawIPv4: (AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_RAW))
        case .rawICMPv4: (AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_ICMP))
        }
        let flags = Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = try systemCall("socket", context(operation(), "opening a \(kind) socket")) {
            Glibc.socket(domain, type | flags, proto)
        }
        return Socket(descriptor: fd)
    }

    /// Closes the descriptor (errors ignored, as nothing could be done about them).
    public func close() { _ = Glibc.close(descriptor) }

    // MARK: addresses

    /// Binds to ADDRESS. For a Unix socket, PERMISSIONS (e.g. 0o600) are the
    /// socket file's mode; they are set through the umask around bind(2),
    /// which is process-wide: do it before other threads create files.
    public func bind(to address: SocketAddress, permissions: UInt32? = nil,
                     operation: @autoclosure () -> String? = nil) throws(LinuxNetError) {
        let oldMask = permissions.map { umask(~$0 & 0o777) }
        defer { if let oldMask { umask(oldMask) } }
        try systemCall("bind", context(operation(), "binding to \(address)")) {
            address.withSockaddr { Glibc.bind(descriptor, $0, $1) }
        }
    }

    public func listen(backlog: Int32, operation: @autoclosure () -> String? = nil) throws(LinuxNetError) {
        try systemCall("listen", context(operation(), "listening on \(self)")) { Glibc.listen(descriptor, backlog) }
    }

    /// Connects to ADDRESS. Returns true once connected, false when a
    /// non-blocking socket's connection is under way (EINPROGRESS: wait
    /// until it is writable, then read `pendingError`). Not retried after a
    /// signal: that would fail with EALREADY.
    @discardableResult
    public func connect(to address: SocketAddress, operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Bool {
        let result = address.withSockaddr { Glibc.connect(descriptor, $0, $1) }
        if result == 0 { return true }
        let code = Glibc.errno
        if code == EINPROGRESS { return false }
        throw context(operation(), "connecting to \(address)").error("connect", Errno(rawValue: code))
    }

    /// Accepts a connection, close-on-exec (and non-blocking if asked);
    /// nil when none is waiting on a non-blocking listener.
    public func accept(nonBlocking: Bool = false, operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Socket? {
        while true {
            // accept4 is not in Glibc's module (it needs _GNU_SOURCE): flags afterwards.
            let fd = Glibc.accept(descriptor, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
                return Socket(descriptor: fd)
            }
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw context(operation(), "accepting on \(self)").error("accept", Errno(rawValue: code))
        }
    }

    /// The address of a connected socket's peer (getpeername), nil if none.
    public var peerAddress: SocketAddress? {
        var a = SocketAddress(length: socklen_t(MemoryLayout<sockaddr_storage>.size))
        let result = withUnsafeMutableBytes(of: &a.storage) { raw in
            getpeername(descriptor, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &a.length)
        }
        return result == 0 ? a : nil
    }

    // MARK: options

    /// The error of a non-blocking connect (SO_ERROR), nil if none.
    public var pendingError: Errno? {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &err, &len)
        return err == 0 ? nil : Errno(rawValue: err)
    }

    /// SO_REUSEADDR: bind a listening port while old connections linger.
    public func setReuseAddress() throws(LinuxNetError) {
        var one: Int32 = 1
        try systemCall("setsockopt(SO_REUSEADDR)", OperationContext("setting SO_REUSEADDR on \(self)")) {
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// SO_RCVTIMEO / SO_SNDTIMEO, seconds: a blocking receive or send gives
    /// up after that long (receive returns nil, send throws EAGAIN).
    public func setTimeouts(receive: Double? = nil, send: Double? = nil) throws(LinuxNetError) {
        for (option, seconds, name) in [(SO_RCVTIMEO, receive, "SO_RCVTIMEO"), (SO_SNDTIMEO, send, "SO_SNDTIMEO")] {
            guard let seconds else { continue }
            var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
            try systemCall("setsockopt(\(name))", OperationContext("setting a timeout on \(self)")) {
                setsockopt(descriptor, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
            }
        }
    }

    /// IP_TTL: the TTL of what this socket sends (BFD single hop: 255, RFC 5881).
    public func setTimeToLive(_ ttl: Int32) throws(LinuxNetError) {
        var value = ttl
        try systemCall("setsockopt(IP_TTL)", OperationContext("setting the TTL of \(self) to \(ttl)")) {
            setsockopt(descriptor, Int32(IPPROTO_IP), IP_TTL, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// IP_RECVTTL: `receiveWithTimeToLive` learns each datagram's TTL.
    public func setReceiveTimeToLive() throws(LinuxNetError) {
        var one: Int32 = 1
        try systemCall("setsockopt(IP_RECVTTL)", OperationContext("asking for the TTL on \(self)")) {
            setsockopt(descriptor, Int32(IPPROTO_IP), IP_RECVTTL, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Sets or clears O_NONBLOCK.
    public func setNonBlocking(_ on: Bool) throws(LinuxNetError) {
        let context = OperationContext("setting \(self) \(on ? "non-blocking" : "blocking")")
        let flags = try systemCall("fcntl(F_GETFL)", context) { fcntl(descriptor, F_GETFL) }
        try systemCall("fcntl(F_SETFL)", context) { fcntl(descriptor, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) }
    }

    // MARK: data

    /// Sends BYTES (MSG_NOSIGNAL); returns how many were taken. A
    /// non-blocking socket with no room, or a send timeout, throws EAGAIN.
    public func send(_ bytes: UnsafeRawBufferPointer, operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Int {
        try systemCall("send", context(operation(), "sending on \(self)")) {
            Glibc.send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        }
    }

    /// `send` of an array's bytes.
    public func send(_ bytes: [UInt8], operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Int {
        try bytes.withUnsafeBytes { raw in Result { () throws(LinuxNetError) in try send(raw, operation: operation()) } }.get()
    }

    /// Sends one datagram (or raw packet) to ADDRESS; returns the bytes sent.
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress,
                     operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Int {
        try systemCall("sendto", context(operation(), "sending to \(address)")) {
            address.withSockaddr { Glibc.sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, $1) }
        }
    }

    /// Receives into BUFFER; returns the bytes received (0: the peer closed
    /// the connection), or nil when nothing came: a non-blocking socket had
    /// nothing, or the receive timeout expired.
    public func receive(into buffer: UnsafeMutableRawBufferPointer,
                        operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Int? {
        while true {
            let n = recv(descriptor, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw context(operation(), "receiving on \(self)").error("recv", Errno(rawValue: code))
        }
    }

    /// `receive` into an array's bytes (from its start).
    public func receive(into buffer: inout [UInt8], operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> Int? {
        try buffer.withUnsafeMutableBytes { raw in Result { () throws(LinuxNetError) in try receive(into: raw, operation: operation()) } }.get()
    }

    /// Receives one datagram and where it came from; nil when none is waiting.
    public func receiveFrom(into buffer: UnsafeMutableRawBufferPointer,
                            operation: @autoclosure () -> String? = nil) throws(LinuxNetError) -> (count: Int, from: SocketAddress)? {
        var from = SocketAddress(length: socklen_t(MemoryLayout<sockaddr_storage>.size))
        while true {
            let n = withUnsafeMutableBytes(of: &from.storage) { raw in
                recvfrom(descriptor, buffer.baseAddress, buffer.count, 0,
                         raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &from.length)
            }
            if n >= 0 { return (n, from) }
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw context(operation(), "receiving on \(self)").error("recvfrom", Errno(rawValue: code))
        }
    }

    /// MSG_DONTWAIT. (Spelt out here: naming the Glibc constant in this
    /// file made the release build of the module lose it in XDPPort.swift,
    /// Swift 6.3, whole-module optimisation.)
    static let dontWait = Int32(0x40)

    /// Receives one datagram, where it came from and its IP TTL (0 if the
    /// socket did not `setReceiveTimeToLive`); nil when none is waiting.
    public func receiveWithTimeToLive(into buffer: UnsafeMutableRawBufferPointer,
                                      operation: @autoclosure () -> String? = nil) throws(LinuxNetError)
        -> (count: Int, from: SocketAddress, timeToLive: UInt8)? {
        var from = SocketAddress(length: socklen_t(MemoryLayout<sockaddr_storage>.size))
        // struct cmsghdr { size_t len; int level; int type; } then the int TTL.
        var control = [UInt8](repeating: 0, count: 64)
        while true {
            var controlLength = 0
            let n = withUnsafeMutableBytes(of: &from.storage) { name in
                control.withUnsafeMutableBytes { c in
                    var iov = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
                    return withUnsafeMutablePointer(to: &iov) { iovp in
                        var m = msghdr()
                        m.msg_name = name.baseAddress
                        m.msg_namelen = socklen_t(name.count)
                        m.msg_iov = iovp
                        m.msg_iovlen = 1
                        m.msg_control = c.baseAddress
                        m.msg_controllen = c.count
                        let r = recvmsg(descriptor, &m, Socket.dontWait)
                        from.length = m.msg_namelen
                        controlLength = m.msg_controllen
                        return r
                    }
                }
            }
            if n >= 0 {
                var ttl: UInt8 = 0
                if controlLength >= 20 {
                    let level = control.withUnsafeBytes { $0.load(fromByteOffset: 8, as: Int32.self) }
                    let type = control.withUnsafeBytes { $0.load(fromByteOffset: 12, as: Int32.self) }
                    if level == IPPROTO_IP, type == IP_TTL {
                        ttl = UInt8(truncatingIfNeeded: control.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int32.self) })
                    }
                }
                return (n, from, ttl)
            }
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw context(operation(), "receiving on \(self)").error("recvmsg", Errno(rawValue: code))
        }
    }

    /// Ends one or both directions of a connection.
    public func shutdown(_ direction: Direction) throws(LinuxNetError) {
        try systemCall("shutdown", OperationContext("shutting down \(self)")) {
            Glibc.shutdown(descriptor, Int32(direction == .write ? SHUT_WR : SHUT_RDWR))
        }
    }

    /// Waits up to TIMEOUT milliseconds for EVENTS on this socket alone;
    /// returns the events that happened (empty: timeout, or a signal).
    public func wait(for events: PollEvents, timeout milliseconds: Int32) throws(LinuxNetError) -> PollEvents {
        // One pollfd on the stack, not a PollSet: the daemon's control thread
        // waits here twice a second, and the daemon allocates nothing while it runs.
        var entry = pollfd(fd: descriptor, events: events.rawValue, revents: 0)
        let result = poll(&entry, 1, milliseconds)
        if result >= 0 { return PollEvents(rawValue: entry.revents) }
        let code = Glibc.errno
        if code == EINTR { return [] }
        throw LinuxNetError(operation: "waiting for \(self)", call: "poll", errno: Errno(rawValue: code))
    }

    private func context(_ given: String?, _ fallback: @autoclosure () -> String) -> OperationContext {
        OperationContext(given ?? fallback())
    }

    private static func context(_ given: String?, _ fallback: @autoclosure () -> String) -> OperationContext {
        OperationContext(given ?? fallback())
    }
}
