// The live lab as a check backend: `up` with capture forced on, probes sent
// from inside host namespaces through raw IP sockets, drop counters from
// the daemon's control socket, and observations from all.pcapng after `down`.
import Foundation
import Glibc
import LinuxNet
import Topology
import Wire

public final class LiveBackend: CheckBackend {
    public let topology: ResolvedTopology
    let deployer: LabDeployer
    let store: LabStore
    /// Set before `up` starts (so Ctrl-C during `up` still takes the lab
    /// down: `down` waits for the lab's lock), cleared once it is down.
    var needsDown = false
    let lock = NSLock()
    /// Held while the lab is being taken down, so an interrupt waits for a
    /// teardown in progress instead of exiting in the middle of it.
    let teardown = NSLock()

    /// `Captures/<lab>/all.pcapng` under the deployer's capture root.
    public var capturePath: String? {
        URL(fileURLWithPath: deployer.captureRoot).appendingPathComponent(topology.name)
            .appendingPathComponent("all.pcapng").standardizedFileURL.path
    }

    public init(topology: ResolvedTopology, deployer: LabDeployer) {
        var t = topology
        t.defaults.capture = true     // checks read what crossed every link
        self.topology = t
        self.deployer = deployer
        self.store = deployer.store
    }

    func namespace(_ node: String) -> String { LabStore.namespaceName(lab: topology.name, node: node) }

    public func start() throws {
        // Never take down a lab of the same name that is not ours.
        if store.exists(lab: topology.name) {
            throw LabError("lab \(topology.name) already exists; nothing was changed — run `wirelab down \(topology.name)` first")
        }
        lock.withLock { needsDown = true }
        do {
            _ = try deployer.up(topology)
        } catch {
            lock.withLock { needsDown = false }   // `up` removed what it made
            throw error
        }
    }

    func takeDown() -> Bool { lock.withLock { () -> Bool in defer { needsDown = false }; return needsDown } }

    public func stop() {
        teardown.lock()
        defer { teardown.unlock() }
        guard takeDown() else { return }
        // Interrupted during `up`: it holds the lab's lock until it is done
        // (or has undone itself); wait for it, then take the lab down.
        let deadline = Date().addingTimeInterval(180)
        while true {
            do { try deployer.down(lab: topology.name); return } catch {
                if !store.exists(lab: topology.name) || Date() > deadline { return }
                usleep(50_000)
            }
        }
    }

    public func finish() throws -> [PcapNGLink] {
        // `down` stops the daemon, which drains its rings and writes all.pcapng.
        try teardown.withLock {
            if takeDown() { try deployer.down(lab: topology.name) }
        }
        guard let path = capturePath, FileManager.default.fileExists(atPath: path) else {
            throw LabError("no capture at \(capturePath ?? "?"): nothing recorded this lab's links")
        }
        let capture = try PcapNGFile.read(path: path)
        var links: [PcapNGLink] = capture.interfaces.map { PcapNGLink(name: $0.name ?? "", records: []) }
        for p in capture.packets where p.interface < links.count { links[p.interface].records.append(p.record) }
        return links
    }

    public func settle(seconds: Double) { usleep(UInt32(max(0, seconds) * 1_000_000)) }

    public func dropCounters() throws -> NodeDropCounters {
        let path = store.controlSocketPath(lab: topology.name)
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        var out: NodeDropCounters = [:]
        for n in try ControlClient(path: path).status().nodes { out[n.node] = n.drops }
        return out
    }

    // MARK: probes

    public func send(_ probe: Probe) throws {
        try NetworkNamespace.run(namespace(probe.from)) { try Self.sendRaw(probe) }
    }

    static func sockaddrIn(_ a: IPv4Address, port: UInt16 = 0) -> sockaddr_in {
        var s = sockaddr_in()
        s.sin_family = sa_family_t(AF_INET)
        s.sin_port = port.bigEndian
        s.sin_addr = in_addr(s_addr: a.rawValue.bigEndian)
        return s
    }

    static func errno(_ what: String) -> LabError { LabError("\(what): \(String(cString: strerror(Glibc.errno)))") }

    /// A raw IP socket (IP_HDRINCL): the kernel routes, ARPs and frames the
    /// packet exactly as built.
    static func sendRaw(_ probe: Probe) throws {
        let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_RAW))
        guard fd >= 0 else { throw errno("raw socket on \(probe.from)") }
        defer { close(fd) }
        var to = sockaddrIn(probe.destination)
        let packet = probe.packet
        let n = packet.withUnsafeBytes { b in
            withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
        guard n == packet.count else { throw errno("sending the probe from \(probe.from) to \(probe.destination)") }
    }

    static func setTimeout(_ fd: Int32, _ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func echo(_ probe: Probe, timeout: Double) throws -> Bool {
        try NetworkNamespace.run(namespace(probe.from)) { () throws -> Bool in
            let deadline = Date().addingTimeInterval(timeout)
            switch probe.proto {
            case .icmp:
                // A raw ICMP socket sees every ICMP message the host receives.
                let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_ICMP))
                guard fd >= 0 else { throw Self.errno("icmp socket on \(probe.from)") }
                defer { close(fd) }
                try Self.sendRaw(probe)
                var buf = [UInt8](repeating: 0, count: 2048)
                while Date() < deadline {
                    Self.setTimeout(fd, max(0.01, deadline.timeIntervalSinceNow))
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { continue }
                    let got = buf.withUnsafeBytes { IPv4Fields(packet: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    if let got, got.icmpType == 0, got.icmpIdentifier == probe.marker.icmpIdentifier,
                       got.icmpSequence == probe.marker.icmpSequence { return true }
                }
                return false
            case .udp:
                // Bind the probe's source port so the echo has somewhere to go.
                let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { throw Self.errno("udp socket on \(probe.from)") }
                defer { close(fd) }
                var local = Self.sockaddrIn(probe.source, port: probe.sourcePort)
                let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                guard bound == 0 else { throw Self.errno("binding udp \(probe.source):\(probe.sourcePort) on \(probe.from)") }
                try Self.sendRaw(probe)
                var buf = [UInt8](repeating: 0, count: 2048)
                while Date() < deadline {
                    Self.setTimeout(fd, max(0.01, deadline.timeIntervalSinceNow))
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n >= probe.marker.nonce.count, Array(buf[0..<probe.marker.nonce.count]) == probe.marker.nonce { return true }
                }
                return false
            case .tcp:
                throw LabError("echo takes icmp or udp probes")
            }
        }
    }

    /// A TCP connection with a time limit; the open descriptor, or -1.
    static func connectTCP(to: IPv4Address, port: Int, timeout: Double) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = sockaddrIn(to, port: UInt16(port))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 && Glibc.errno != EINPROGRESS { close(fd); return -1 }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { close(fd); return -1 }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        guard err == 0 else { close(fd); return -1 }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        return fd
    }

    public func connect(from: String, to: IPv4Address, port: Int, timeout: Double) throws -> Bool {
        try NetworkNamespace.run(namespace(from)) {
            let fd = Self.connectTCP(to: to, port: port, timeout: timeout)
            if fd >= 0 { close(fd) }
            return fd >= 0
        }
    }

    public func http(from: String, host: IPv4Address, port: Int, path: String, timeout: Double) throws -> String? {
        try NetworkNamespace.run(namespace(from)) { () -> String? in
            let fd = Self.connectTCP(to: host, port: port, timeout: timeout)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            Self.setTimeout(fd, timeout)
            let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
            guard request.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
            var response: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while response.count < 1 << 20 {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                response += chunk[0..<n]
            }
            return Self.answeringNode(String(decoding: response, as: UTF8.self))
        }
    }

    /// The built-in server names itself in `X-Wirelab-Node` (and the body).
    static func answeringNode(_ response: String) -> String? {
        guard response.hasPrefix("HTTP/1."), let split = response.range(of: "\r\n\r\n") else { return nil }
        for line in response[..<split.lowerBound].split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "x-wirelab-node" { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        let body = response[split.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
        return body.isEmpty ? nil : body.split(separator: "\n").first.map(String.init)
    }
}
