import Foundation
import LinuxNet
import Topology
import Wire

/// One change of a real server's health, handed from a checker thread to
/// the datapath thread.
struct HealthEvent: Sendable {
    /// Index of the director's runtime in the daemon.
    var runtime: Int
    var target: HealthChecker.Target
    var healthy: Bool
}

/// The health checks of one director: a thread inside the director's
/// namespace probing each real of each checked service with kernel sockets
/// (TCP connect, or HTTP GET and the status code), from the director's
/// interface address (LabPlan gives that kernel the address, routes and
/// permanent neighbours; the node's XDP program passes TCP to the address up
/// to it). Probes are non-blocking and multiplexed with poll(2): the thread
/// sleeps until a probe is due, a socket is ready or a timeout expires.
///
/// A real goes down after `fail` consecutive failures and comes back after
/// `rise` consecutive successes (keepalived's counts); every change is
/// logged and queued for the datapath thread, which applies it to the
/// element between batches (`drain`). Reals start healthy, as in keepalived.
final class HealthChecker: @unchecked Sendable {
    struct Target: Sendable, Hashable {
        var service: String          // "tcp 10.0.0.100:80", for logs
        var proto: TransportProtocol
        var vip: IPv4Address
        var servicePort: UInt16
        var real: IPv4Address
        var realPort: UInt16
        /// The real's configured weight, restored when it comes back.
        var weight: Int
        var checkPort: UInt16
        var check: HealthCheck
    }

    /// A target's state, for `wirelab lvs`.
    struct Status: Sendable {
        var healthy = true
        var consecutiveFailures = 0
        var consecutiveSuccesses = 0
        var lastError: String?
        var checks: UInt64 = 0
        var changes: Int = 0
    }

    let node: String
    /// The director's namespace; nil: the calling process's (tests).
    let namespace: String?
    let runtimeIndex: Int
    let targets: [Target]
    /// Called (from the checker thread) after events were queued.
    let wake: () -> Void
    let log: (String) -> Void

    private let lock = NSLock()
    private var statuses: [Status]
    private var queue: [HealthEvent] = []
    private var stopRequested = false
    /// While the director's power is cut (`wirelab fail`): no probes, and
    /// the reals' health stays what it was, to go on from at power-on.
    private var paused = false
    private var thread: Thread?

    convenience init(node: Node, namespace: String?, runtimeIndex: Int, wake: @escaping () -> Void, log: @escaping (String) -> Void) {
        self.init(node: node.name, namespace: namespace, runtimeIndex: runtimeIndex, targets: Self.targets(of: node),
                  wake: wake, log: log)
    }

    init(node: String, namespace: String?, runtimeIndex: Int, targets: [Target],
         wake: @escaping () -> Void, log: @escaping (String) -> Void) {
        self.node = node
        self.namespace = namespace
        self.runtimeIndex = runtimeIndex
        self.targets = targets
        statuses = Array(repeating: Status(), count: targets.count)
        self.wake = wake
        self.log = log
    }

    /// One target per real of each service with a health check.
    static func targets(of node: Node) -> [Target] {
        var targets: [Target] = []
        for service in node.services {
            guard let check = service.health else { continue }
            for real in service.reals {
                targets.append(Target(service: "\(service.proto.rawValue) \(service.vip):\(service.port)", proto: service.proto,
                                      vip: service.vip, servicePort: UInt16(service.port), real: real.ip,
                                      realPort: UInt16(real.port), weight: real.weight,
                                      checkPort: UInt16(check.port ?? real.port), check: check))
            }
        }
        return targets
    }

    var isEmpty: Bool { targets.isEmpty }

    func start() {
        let t = Thread { [self] in
            do {
                if let namespace { try NetworkNamespace.run(namespace) { self.loop() } } else { self.loop() }
            } catch {
                log("health checks of \(node) could not start: \(error)")
            }
        }
        t.name = "health-\(node)"
        thread = t
        t.start()
    }

    func stop() {
        lock.lock(); stopRequested = true; lock.unlock()
        while thread?.isFinished == false { Thread.sleep(forTimeInterval: 0.005) }
    }

    /// Stops probing (power cut) or starts again (power on).
    func setPaused(_ on: Bool) {
        lock.lock(); paused = on; lock.unlock()
    }

    /// Events queued since the last call (datapath thread).
    func drain() -> [HealthEvent] {
        lock.lock(); defer { lock.unlock() }
        let events = queue
        queue.removeAll(keepingCapacity: true)
        return events
    }

    func status(of target: Int) -> Status {
        lock.lock(); defer { lock.unlock() }
        return statuses[target]
    }

    // MARK: the checker thread

    private struct Probe {
        var socket: Socket
        var deadline: Double
        var connected = false
        var sent = false
        var response: [UInt8] = []
    }

    static func now() -> Double { MonotonicClock.seconds() }

    private func loop() {
        var due = targets.indices.map { i in Self.now() + Double(i) * 0.01 }   // spread the first round a little
        var probes: [Int: Probe] = [:]
        while true {
            lock.lock(); let stop = stopRequested, pause = paused; lock.unlock()
            if stop { break }
            if pause {
                // A dead box's checks end unanswered; none counts.
                for p in probes.values { p.socket.close() }
                probes.removeAll()
                usleep(100_000)
                continue
            }
            let now = Self.now()
            for i in targets.indices where probes[i] == nil && due[i] <= now {
                due[i] = now + Double(targets[i].check.interval.milliseconds) / 1000
                switch start(targets[i], deadline: now + Double(targets[i].check.timeout.milliseconds) / 1000) {
                case .success(let probe): probes[i] = probe
                case .failure(let message): finish(i, ok: false, error: message)
                }
            }
            // Sleep until a socket is ready, the next probe is due or one
            // times out; at most 200 ms so stop() is noticed.
            var wakeAt = now + 0.2
            for i in targets.indices where probes[i] == nil { wakeAt = min(wakeAt, due[i]) }
            for p in probes.values { wakeAt = min(wakeAt, p.deadline) }
            let order = Array(probes.keys)
            var fds = PollSet()
            for i in order {
                let p = probes[i]!
                fds.add(p.socket.descriptor, p.connected && p.sent ? .readable : .writable)
            }
            let timeout = Int32(max(0, min(200, (wakeAt - now) * 1000)).rounded(.up))
            _ = try? fds.wait(timeout: timeout)
            let after = Self.now()
            for (k, i) in order.enumerated() {
                guard var p = probes[i] else { continue }
                if !fds.returnedEvents(at: k).isEmpty {
                    switch step(&p, targets[i]) {
                    case .some(.success): p.socket.close(); probes[i] = nil; finish(i, ok: true, error: nil); continue
                    case .some(.failure(let message)): p.socket.close(); probes[i] = nil; finish(i, ok: false, error: message); continue
                    case .none: probes[i] = p
                    }
                }
                if after >= p.deadline {
                    p.socket.close()
                    probes[i] = nil
                    finish(i, ok: false, error: "no answer within \(targets[i].check.timeout)")
                }
            }
        }
        for p in probes.values { p.socket.close() }
    }

    private enum Started { case success(Probe), failure(String) }
    private enum Outcome { case success, failure(String) }

    private func start(_ t: Target, deadline: Double) -> Started {
        let socket: Socket
        do { socket = try Socket.open(.tcp, nonBlocking: true) } catch { return .failure("socket: \(error.errno)") }
        do {
            let connected = try socket.connect(to: .ipv4(t.real, port: t.checkPort))
            return .success(Probe(socket: socket, deadline: deadline, connected: connected))
        } catch {
            socket.close()
            return .failure("connect: \(error.errno)")
        }
    }

    /// Advances a probe whose socket is ready; nil while it needs more.
    private func step(_ p: inout Probe, _ t: Target) -> Outcome? {
        if !p.connected {
            if let err = p.socket.pendingError { return .failure("connect: \(err)") }
            p.connected = true
        }
        guard case .http(let path, let expect) = t.check.kind else { return .success }
        if !p.sent {
            let request = Array("GET \(path) HTTP/1.0\r\nHost: \(t.real)\r\nUser-Agent: wirelab-health\r\nConnection: close\r\n\r\n".utf8)
            do {
                if try p.socket.send(request) != request.count { return .failure("sending the request: short write") }
            } catch {
                return .failure("sending the request: \(error.errno)")
            }
            p.sent = true
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n: Int
        do {
            guard let count = try p.socket.receive(into: &buffer) else { return nil }   // nothing yet
            n = count
        } catch {
            return .failure("reading the response: \(error.errno)")
        }
        p.response += buffer.prefix(n)
        // "HTTP/1.x NNN ..." — enough once the first line is complete (or closed).
        if let end = p.response.firstIndex(of: UInt8(ascii: "\n")) ?? (n == 0 ? p.response.endIndex : nil) {
            let line = String(decoding: p.response[..<end], as: UTF8.self)
            let parts = line.split(separator: " ")
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
                return .failure("not an HTTP status line: \(line.prefix(60))")
            }
            return status == expect ? .success : .failure("HTTP status \(status), expected \(expect)")
        }
        if p.response.count > 4096 { return .failure("no status line in the first 4 KiB") }
        return nil
    }

    private func finish(_ i: Int, ok: Bool, error: String?) {
        let t = targets[i]
        var event: HealthEvent?
        lock.lock()
        var s = statuses[i]
        s.checks += 1
        if ok {
            s.consecutiveSuccesses += 1
            s.consecutiveFailures = 0
            if !s.healthy && s.consecutiveSuccesses >= t.check.rise {
                s.healthy = true
                s.changes += 1
                event = HealthEvent(runtime: runtimeIndex, target: t, healthy: true)
            }
        } else {
            s.lastError = error
            s.consecutiveFailures += 1
            s.consecutiveSuccesses = 0
            if s.healthy && s.consecutiveFailures >= t.check.fail {
                s.healthy = false
                s.changes += 1
                event = HealthEvent(runtime: runtimeIndex, target: t, healthy: false)
            }
        }
        statuses[i] = s
        if let event { queue.append(event) }
        lock.unlock()
        if let event {
            let kind: String
            switch t.check.kind { case .tcp: kind = "tcp"; case .http(let path, _): kind = "http GET \(path)" }
            let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!,
                                                    formatOptions: [.withInternetDateTime, .withFractionalSeconds])
            if event.healthy {
                log("\(stamp) health: \(node) \(t.service) real \(t.real):\(t.realPort) UP after \(t.check.rise) passing \(kind) checks; weight \(t.weight)")
            } else {
                log("\(stamp) health: \(node) \(t.service) real \(t.real):\(t.realPort) DOWN after \(t.check.fail) failed \(kind) checks (\(error ?? "?")); weight 0")
            }
            wake()
        }
    }
}
