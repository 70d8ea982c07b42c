// The live lab as a check backend: `up` with capture forced on, probes sent
// from inside host namespaces through raw IP sockets, drop counters from
// the daemon's control socket, and observations from all.pcapng after `down`.
import Foundation
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
    /// The capture counters read last before the lab came down (if the
    /// daemon's final counters are missing, these stand in for them).
    var lastCaptureCounters: [CapturePoint]?

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
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    public func finish() throws -> [PcapNGLink] {
        if let now = try? liveCaptureCounters() { lock.withLock { lastCaptureCounters = now } }
        // `down` stops the daemon, which drains its rings and writes all.pcapng
        // (and capture-counters.json).
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

    public func apply(_ action: DrillEvent.Action, to target: DrillEvent.Target) throws {
        try LabNodes.apply(action, to: target, lab: topology.name, store: store)
    }

    public func settle(seconds: Double) { Thread.sleep(forTimeInterval: max(0, seconds)) }

    /// The capture directory of the run (`Captures/<lab>`).
    var captureDirectory: String {
        URL(fileURLWithPath: deployer.captureRoot).appendingPathComponent(topology.name).standardizedFileURL.path
    }

    /// While the lab is up: the daemon's counters through its control
    /// socket. Once it is down: the final counters the daemon wrote with
    /// the capture (`capture-counters.json`), else the last read.
    public func captureCounters() throws -> [CapturePoint] {
        if store.exists(lab: topology.name), let now = try liveCaptureCounters() { return now }
        let path = CaptureRecorder.countersPath(directory: captureDirectory)
        if let data = FileManager.default.contents(atPath: path) {
            return try JSONDecoder().decode([CapturePoint].self, from: data)
        }
        if let last = lock.withLock({ lastCaptureCounters }) { return last }
        throw LabError("no capture counters: the lab is down and \(path) is missing")
    }

    /// The daemon's capture points now; nil if no daemon answers.
    func liveCaptureCounters() throws -> [CapturePoint]? {
        let path = store.controlSocketPath(lab: topology.name)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try ControlClient(path: path).status().capturePoints ?? []
    }

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

    /// A raw IP socket (IP_HDRINCL): the kernel routes, ARPs and frames the
    /// packet exactly as built.
    static func sendRaw(_ probe: Probe) throws {
        let socket = try Socket.open(.rawIPv4, operation: "raw socket on \(probe.from)")
        defer { socket.close() }
        let packet = probe.packet
        let what = "sending the probe from \(probe.from) to \(probe.destination)"
        let n = try packet.withUnsafeBytes { bytes throws(LinuxNetError) in
            try socket.send(bytes, to: .ipv4(probe.destination, port: 0), operation: what)
        }
        guard n == packet.count else { throw LabError("\(what): sent \(n) of \(packet.count) bytes") }
    }

    public func echo(_ probe: Probe, timeout: Double) throws -> Bool {
        try NetworkNamespace.run(namespace(probe.from)) { () throws -> Bool in
            let deadline = Date().addingTimeInterval(timeout)
            switch probe.proto {
            case .icmp:
                // A raw ICMP socket sees every ICMP message the host receives.
                let socket = try Socket.open(.rawICMPv4, operation: "icmp socket on \(probe.from)")
                defer { socket.close() }
                try Self.sendRaw(probe)
                var buf = [UInt8](repeating: 0, count: 2048)
                while Date() < deadline {
                    try? socket.setTimeouts(receive: max(0.01, deadline.timeIntervalSinceNow), send: max(0.01, deadline.timeIntervalSinceNow))
                    guard let n = try? socket.receive(into: &buf), n > 0 else { continue }
                    let got = buf.withUnsafeBytes { IPv4Fields(packet: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    if let got, got.icmpType == 0, got.icmpIdentifier == probe.marker.icmpIdentifier,
                       got.icmpSequence == probe.marker.icmpSequence { return true }
                }
                return false
            case .udp:
                // Bind the probe's source port so the echo has somewhere to go.
                let socket = try Socket.open(.udp, operation: "udp socket on \(probe.from)")
                defer { socket.close() }
                try socket.bind(to: .ipv4(probe.source, port: probe.sourcePort),
                                operation: "binding udp \(probe.source):\(probe.sourcePort) on \(probe.from)")
                try Self.sendRaw(probe)
                var buf = [UInt8](repeating: 0, count: 2048)
                while Date() < deadline {
                    try? socket.setTimeouts(receive: max(0.01, deadline.timeIntervalSinceNow), send: max(0.01, deadline.timeIntervalSinceNow))
                    let n = (try? socket.receive(into: &buf)) ?? -1
                    if n >= probe.marker.nonce.count, Array(buf[0..<probe.marker.nonce.count]) == probe.marker.nonce { return true }
                }
                return false
            case .tcp:
                throw LabError("echo takes icmp or udp probes")
            }
        }
    }

    /// A TCP connection with a time limit; the connected (blocking) socket,
    /// or nil.
    static func connectTCP(to: IPv4Address, port: Int, timeout: Double) -> Socket? {
        guard let socket = try? Socket.open(.tcp, nonBlocking: true) else { return nil }
        do {
            if try !socket.connect(to: .ipv4(to, port: UInt16(port))) {
                guard try !socket.wait(for: .writable, timeout: Int32(timeout * 1000)).isEmpty,
                      socket.pendingError == nil else { socket.close(); return nil }
            }
            try? socket.setNonBlocking(false)
            return socket
        } catch {
            socket.close()
            return nil
        }
    }

    public func connect(from: String, to: IPv4Address, port: Int, timeout: Double) throws -> Bool {
        try NetworkNamespace.run(namespace(from)) {
            let socket = Self.connectTCP(to: to, port: port, timeout: timeout)
            socket?.close()
            return socket != nil
        }
    }

    public func http(from: String, host: IPv4Address, port: Int, path: String, timeout: Double) throws -> String? {
        try NetworkNamespace.run(namespace(from)) { () -> String? in
            guard let socket = Self.connectTCP(to: host, port: port, timeout: timeout) else { return nil }
            defer { socket.close() }
            try? socket.setTimeouts(receive: timeout, send: timeout)
            let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
            guard (try? socket.send(request)) == request.count else { return nil }
            var response: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while response.count < 1 << 20 {
                guard let n = try? socket.receive(into: &chunk), n > 0 else { break }
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
