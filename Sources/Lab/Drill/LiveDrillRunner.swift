// Drills on a live lab: the load runs in each `from` host's namespace
// (`wirelab drill-load`, one process per host), the events are applied with
// `LabNodes`/`LabLinks` at their times on the clock the loads share, and
// the report is computed from what the loads observed.
import Foundation
import LinuxNet
import Topology

/// Brings a lab up for drills and takes it down whatever happens (also
/// from a signal handler: `stop` may be called twice, from any thread).
public final class LiveDrillLab: @unchecked Sendable {
    public let topology: ResolvedTopology
    let deployer: LabDeployer
    // @unchecked: `needsDown` is only touched under `lock`.
    let lock = NSLock()
    var needsDown = false
    let teardown = NSLock()

    public init(topology: ResolvedTopology, deployer: LabDeployer) {
        self.topology = topology
        self.deployer = deployer
    }

    public func start() throws {
        if deployer.store.exists(lab: topology.name) {
            throw LabError("lab \(topology.name) already exists; nothing was changed — run `wirelab down \(topology.name)` first")
        }
        lock.withLock { needsDown = true }
        do { _ = try deployer.up(topology) } catch {
            lock.withLock { needsDown = false }
            throw error
        }
    }

    public func stop() {
        teardown.lock()
        defer { teardown.unlock() }
        guard lock.withLock({ () -> Bool in defer { needsDown = false }; return needsDown }) else { return }
        let deadline = Date().addingTimeInterval(180)
        while true {
            do { try deployer.down(lab: topology.name); return } catch {
                if !deployer.store.exists(lab: topology.name) || Date() > deadline { return }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }
}

public struct LiveDrillRunner {
    public var topology: ResolvedTopology
    public var store: LabStore
    /// The wirelab binary (runs `drill-load` in the hosts).
    public var executable: String
    public var progress: (String) -> Void
    /// The lab's VRRP masters by group (`DrillTakeover.masters`), read before
    /// each event and at the end of its window: the report's "took over".
    /// By default from the daemon's status.
    public var masters: () -> [String: String]

    /// The VRRP masters as the lab's daemon reports them (none if it cannot be asked).
    static func daemonMasters(lab: String, store: LabStore) -> [String: String] {
        guard let status = try? ControlClient(path: store.controlSocketPath(lab: lab)).status() else { return [:] }
        return DrillTakeover.masters(status.nodes.compactMap { n in n.vrrp.map { (n.node, $0) } })
    }

    public init(topology: ResolvedTopology, store: LabStore, executable: String, progress: @escaping (String) -> Void = { _ in }) {
        self.topology = topology
        self.store = store
        self.executable = executable
        self.progress = progress
        let lab = topology.name
        masters = { Self.daemonMasters(lab: lab, store: store) }
    }

    /// Time for the load processes to start before the load begins.
    static let startDelay = 1.0

    /// Runs one drill on the lab, which must be up; leaves nothing failed.
    public func run(_ drill: Drill) -> DrillReport {
        let lab = topology.name
        let load = drill.load
        progress("drill '\(drill.name)': \(load.from.count) host(s) × (\(load.clients) clients + \(load.streams) streams) for \(load.duration)")
        for host in load.from where !warmUp(host: host, load: load) {
            return .inconclusive(drill, problem: "\(host) got no answer from http://\(load.address):\(load.port)\(load.path) in \(Int(Self.warmUpLimit)) s before the drill: the load was not started")
        }
        let directory = store.directory(lab: lab) + "/drills"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let start = MonotonicClock.nanoseconds() + UInt64(Self.startDelay * 1e9)
        var processes: [(host: String, process: NamespaceProcess, output: String, log: String)] = []
        for host in load.from {
            let output = "\(directory)/\(host)-\(UUID().uuidString.prefix(8)).json"
            let log = output.replacingOccurrences(of: ".json", with: ".log")
            let arguments = [executable, "drill-load", "--host", host, "--address", load.address.description, "--port", String(load.port), "--path", load.path,
                             "--clients", String(load.clients), "--streams", String(load.streams),
                             "--seconds", String(load.duration.milliseconds / 1000),
                             "--interval-ms", String(load.streamInterval.milliseconds), "--timeout-ms", String(load.requestTimeout.milliseconds),
                             "--stream-timeout-ms", String(load.streamTimeout.milliseconds),
                             "--start-ns", String(start), "--output", output]
            do {
                let p = try NamespaceProcess.spawn(arguments, namespace: LabStore.namespaceName(lab: lab, node: host),
                                                   standardOutput: .file(log), standardError: .sameAsStandardOutput)
                processes.append((host, p, output, log))
            } catch {
                for p in processes { try? p.process.signal(SIGKILL); _ = try? p.process.wait() }
                return .inconclusive(drill, problem: "the load could not start on \(host): \(error)")
            }
        }

        // The timeline, on the loads' clock.
        var applied: [Int: Double] = [:]
        var takeovers: [Int: String] = [:]
        var problem: String?
        var failed: [DrillEvent.Target] = []
        // Masters before the event whose window is open, to name who took over.
        var open: (event: Int, masters: [String: String])?
        func closeWindow() {
            guard let o = open else { return }
            if let who = DrillTakeover.describe(before: o.masters, after: masters()) { takeovers[o.event] = who }
            open = nil
        }
        for (i, event) in drill.events.enumerated() {
            sleep(until: start + UInt64(event.at.milliseconds) * 1_000_000)
            closeWindow()
            let before = masters()
            let at = Double(Int64(bitPattern: MonotonicClock.nanoseconds() &- start)) / 1e9
            do {
                try apply(event.action, event.target)
                open = (i, before)
                applied[i] = at
                progress(String(format: "drill '%@': %@ %@ at %.2f s", drill.name, event.action.rawValue, event.target.description, at))
                if event.action == .fail { failed.append(event.target) } else { failed.removeAll { same($0, event.target) } }
            } catch {
                problem = "\(event.action.rawValue) \(event.target) at \(event.at) could not be applied: \(error)"
                progress("drill '\(drill.name)': \(problem!)")
                break
            }
        }

        // The last window closes when the load ends.
        sleep(until: start + UInt64(load.duration.milliseconds) * 1_000_000)
        closeWindow()
        // The loads end on their own after `seconds`; give them the timeout besides.
        let deadline = Date().addingTimeInterval(Self.startDelay + load.duration.seconds + max(load.requestTimeout, load.streamTimeout).seconds + 15)
        var observations = LoadObservations(duration: load.duration.seconds)
        for p in processes {
            var status: NamespaceProcess.ExitStatus?
            while status == nil {
                status = try? p.process.poll()
                if status == nil {
                    if Date() > deadline { try? p.process.signal(SIGKILL); status = try? p.process.wait(); break }
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
            if let data = FileManager.default.contents(atPath: p.output),
               let o = try? JSONDecoder().decode(LoadObservations.self, from: data) {
                observations.requests += o.requests
                observations.streams += o.streams
            } else {
                let text = (try? String(contentsOfFile: p.log, encoding: .utf8)) ?? ""
                let last = text.split(separator: "\n").last.map(String.init) ?? "no output"
                problem = problem ?? "the load on \(p.host) did not run (\(status?.description ?? "no exit status")): \(last)"
            }
        }
        // Leave the lab as the drill found it.
        for target in failed.reversed() {
            do { try apply(.heal, target) } catch { progress("drill '\(drill.name)': healing \(target) after the drill: \(error)") }
        }
        if let problem { return .inconclusive(drill, problem: problem) }
        return DrillReport(drill: drill, observations: observations, applied: applied, takeovers: takeovers)
    }

    /// How long a host may wait for its first answers before the drill.
    static let warmUpLimit = 10.0

    /// Requests from HOST until several are answered (a fresh lab resolves
    /// its neighbours on the first packets, and a stream whose SYN is lost
    /// to that would count as lost) or `warmUpLimit` passes; false if none
    /// was answered at all. (Not "in a row": a service that drops some
    /// requests by design still gets its drill.)
    func warmUp(host: String, load: DrillLoad) -> Bool {
        let deadline = Date().addingTimeInterval(Self.warmUpLimit)
        var answers = 0
        while Date() < deadline && answers < 6 {
            let answered = (try? NetworkNamespace.run(LabStore.namespaceName(lab: topology.name, node: host)) { () -> Bool in
                guard let socket = LiveBackend.connectTCP(to: load.address, port: load.port, timeout: 0.5) else { return false }
                defer { socket.close() }
                try? socket.setTimeouts(receive: 0.5, send: 0.5)
                let request = Array("GET \(load.path) HTTP/1.1\r\nHost: \(load.address)\r\nConnection: close\r\n\r\n".utf8)
                guard (try? socket.send(request)) == request.count else { return false }
                var chunk = [UInt8](repeating: 0, count: 4096)
                return ((try? socket.receive(into: &chunk)) ?? 0) > 0
            }) ?? false
            if answered { answers += 1 } else { Thread.sleep(forTimeInterval: 0.05) }
        }
        return answers > 0
    }

    /// The same node, or the same link named by either end.
    func same(_ a: DrillEvent.Target, _ b: DrillEvent.Target) -> Bool {
        switch (a, b) {
        case let (.node(x), .node(y)): return x == y
        case let (.link(x), .link(y)): return x == y || topology.links.contains { $0.peer(of: x) == y }
        default: return false
        }
    }

    func apply(_ action: DrillEvent.Action, _ target: DrillEvent.Target) throws {
        try LabNodes.apply(action, to: target, lab: topology.name, store: store)
    }

    func sleep(until t: UInt64) {
        while true {
            let now = MonotonicClock.nanoseconds()
            if now >= t { return }
            usleep(useconds_t(min((t - now) / 1000, 200_000)))
        }
    }

    /// Up, every drill, down (always): the whole of `wirelab drill` and the
    /// drill part of `wirelab check`.
    public static func runAll(_ drills: [Drill], lab: LiveDrillLab, executable: String, file: String, verb: String,
                              progress: @escaping (String) -> Void) -> DrillRunReport {
        defer { lab.stop() }
        do { try lab.start() } catch {
            return DrillRunReport(lab: lab.topology.name, file: file, verb: verb, drills: [], labError: "bringing the lab up: \(error)")
        }
        let runner = LiveDrillRunner(topology: lab.topology, store: lab.deployer.store, executable: executable, progress: progress)
        return DrillRunReport(lab: lab.topology.name, file: file, verb: verb, drills: drills.map(runner.run))
    }
}
