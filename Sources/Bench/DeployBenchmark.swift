// `wirelab bench deploy`: how long `up` and `down` of a lab take through
// rtnetlink (LabDeployer, in-process), beside the SAME plan built by a shell
// script of `ip` commands (IPScript) — the way a person would script it.
//
// Both sides do equal work, on purpose:
// - objects: the script is rendered from the same `LabPlan` `up` applies, and
//   after every build the lab is fingerprinted (every namespace: `ip -j addr`,
//   `ip -j route`, the plan's sysctls, TX checksum offload, the command lines
//   of the processes running inside) and compared with the first wirelab
//   build; any difference stops the benchmark.
// - processes: `up` starts the built-in servers (`serve:`) and `run:` commands
//   and waits until each server listens; `down` stops them first. IPScript
//   covers network objects only, so the baseline gets the same process work
//   appended here: `ip netns exec NS wirelab serve … &`, a wait until `ss`
//   shows the port listening, and on the way down `ip netns pids NS | xargs
//   kill` plus a wait until the namespace is empty. Process start/stop is
//   therefore INCLUDED on both sides.
//
// The kernel frees a deleted namespace (and its veths) asynchronously, after
// `down` has returned on either side; the next build may pay for that. Runs
// pause `settle` seconds between phases and alternate which side goes first,
// so neither side always inherits the other's cleanup.
import Lab
import Foundation
import Glibc
import LinuxNet
import Topology

public final class DeployBenchmark: @unchecked Sendable {
    public struct Options: Sendable {
        /// Builds per side.
        public var runs: Int = 5
        /// Seconds to pause before each timed phase (see the top of the file).
        public var settle: Double = 1
        public init(runs: Int = 5, settle: Double = 1) {
            self.runs = runs
            self.settle = settle
        }
    }

    /// Times of one side, in seconds, one entry per run.
    public struct Side: Codable, Sendable {
        public var name: String
        public var up: [Double] = []
        public var down: [Double] = []
        public var upMedian: Double { DeployBenchmark.median(up) }
        public var upMin: Double { up.min() ?? 0 }
        public var downMedian: Double { DeployBenchmark.median(down) }
        public var downMin: Double { down.min() ?? 0 }

        enum CodingKeys: String, CodingKey { case name, up, down, upMedian, upMin, downMedian, downMin }

        public init(name: String) { self.name = name }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            up = try c.decode([Double].self, forKey: .up)
            down = try c.decode([Double].self, forKey: .down)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(up, forKey: .up)
            try c.encode(down, forKey: .down)
            try c.encode(upMedian, forKey: .upMedian)
            try c.encode(upMin, forKey: .upMin)
            try c.encode(downMedian, forKey: .downMedian)
            try c.encode(downMin, forKey: .downMin)
        }
    }

    /// What `bench deploy` prints (as a table, or as JSON with `--json`).
    public struct Report: Codable, Sendable {
        public var file: String
        public var lab: String
        public var date: Date
        public var runs: Int
        public var settleSeconds: Double
        public var namespaces: Int
        public var vethPairs: Int
        public var addresses: Int
        public var routes: Int
        public var sysctls: Int
        public var processes: Int
        /// Always true: process start/stop is timed on both sides.
        public var processesIncluded: Bool
        /// Every build of both sides had the fingerprint of the first wirelab build.
        public var verified: Bool
        /// Namespaces whose fingerprints were compared in each build.
        public var verifiedNamespaces: Int
        public var wirelab: Side
        public var ipScript: Side
        public var machine: Machine

        public struct Machine: Codable, Sendable {
            public var cores: Int
            public var kernel: String
            /// /proc/loadavg before the first and after the last run.
            public var loadBefore: String
            public var loadAfter: String
        }

        /// ip script time ÷ wirelab time: above 1 means wirelab is faster.
        public var upSpeedup: Double { ratio(ipScript.upMedian, wirelab.upMedian) }
        public var downSpeedup: Double { ratio(ipScript.downMedian, wirelab.downMedian) }

        private func ratio(_ a: Double, _ b: Double) -> Double { b > 0 ? a / b : 0 }

        public func jsonString() throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        }

        public func table() -> String {
            func s(_ x: Double) -> String { String(format: "%.3f s", x) }
            func x(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%.1f×", a / b) : "-" }
            let header = ["", "wirelab median", "wirelab min", "ip script median", "ip script min", "ip ÷ wirelab (median)", "ip ÷ wirelab (min)"]
            let rows = [
                ["up", s(wirelab.upMedian), s(wirelab.upMin), s(ipScript.upMedian), s(ipScript.upMin),
                 x(ipScript.upMedian, wirelab.upMedian), x(ipScript.upMin, wirelab.upMin)],
                ["down", s(wirelab.downMedian), s(wirelab.downMin), s(ipScript.downMedian), s(ipScript.downMin),
                 x(ipScript.downMedian, wirelab.downMedian), x(ipScript.downMin, wirelab.downMin)],
            ]
            let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { i, cell in
                    let pad = String(repeating: " ", count: widths[i] - cell.count)
                    return i == 0 ? cell + pad : pad + cell
                }.joined(separator: "  ")
            }
            var out = [
                "deploy benchmark: \(file) (lab \(lab)), \(runs) run\(runs == 1 ? "" : "s") per side",
                "  \(namespaces) namespaces, \(vethPairs) veth pairs, \(addresses) addresses, \(routes) routes, \(sysctls) sysctls, \(processes) processes (process start/stop timed on both sides)",
                "",
                line(header),
                line(rows[0]),
                line(rows[1]),
                "",
                verified
                    ? "objects: every build of both sides identical (\(verifiedNamespaces) namespaces: addr, route, sysctls, tx checksum offload, processes)"
                    : "objects: NOT verified",
                "per run (s): wirelab up \(list(wirelab.up)) down \(list(wirelab.down)); ip script up \(list(ipScript.up)) down \(list(ipScript.down))",
                "machine: \(machine.cores) cores (shared), kernel \(machine.kernel), load \(machine.loadBefore) → \(machine.loadAfter)",
            ]
            let targets = [
                ("up < 5 s", wirelab.upMedian < 5),
                ("down < 3 s", wirelab.downMedian < 3),
                ("up faster than ip script", wirelab.upMedian < ipScript.upMedian),
                ("down faster than ip script", wirelab.downMedian < ipScript.downMedian),
            ]
            out.append("targets (median): " + targets.map { "\($0.0): \($0.1 ? "met" : "MISSED")" }.joined(separator: ", "))
            return out.joined(separator: "\n")
        }

        private func list(_ values: [Double]) -> String {
            "[" + values.map { String(format: "%.3f", $0) }.joined(separator: ", ") + "]"
        }
    }

    /// Thrown by `run()` after Ctrl-C (`cancel()`), once the lab is removed.
    public struct Cancelled: Error, CustomStringConvertible {
        public var description: String { "interrupted; everything the benchmark made was removed" }
    }

    public let topology: ResolvedTopology
    public let plan: LabPlan
    public let options: Options
    let store: LabStore
    let deployer: LabDeployer
    let executable: String
    let progress: (String) -> Void
    /// Scripts and their logs; removed when the benchmark ends.
    let workDirectory: String

    private let lock = NSLock()
    private var cancelled = false
    private var scriptProcessGroup: pid_t?

    /// EXECUTABLE is the wirelab binary (started as `serve` on both sides).
    public init(topology: ResolvedTopology, store: LabStore, executable: String, options: Options,
                progress: @escaping (String) -> Void = { _ in }) {
        self.topology = topology
        self.options = options
        self.store = store
        self.executable = executable
        self.progress = progress
        self.plan = LabPlan(topology: topology, serveCommand: [executable, "serve"])
        var deployer = LabDeployer(store: store, executable: executable)
        // Deployment only: the ip script builds no data plane either.
        deployer.startsDataPlane = false
        self.deployer = deployer
        self.workDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("wirelab-bench-deploy-\(topology.name)-\(getpid())").path
    }

    /// Asks a running `run()` to stop: the script running now (if any) is
    /// terminated, and `run()` removes the lab and throws `Cancelled`.
    /// Safe to call from any thread (a signal handler's queue).
    public func cancel() {
        lock.lock()
        cancelled = true
        let group = scriptProcessGroup
        lock.unlock()
        if let group { kill(-group, SIGTERM) }
    }

    private var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    private func checkpoint() throws {
        if isCancelled { throw Cancelled() }
    }

    // MARK: run

    public func run() throws -> Report {
        try checkNothingExists()
        Self.becomeChildSubreaper()
        try FileManager.default.createDirectory(atPath: workDirectory + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workDirectory) }
        let upScript = workDirectory + "/up.sh", downScript = workDirectory + "/down.sh"
        try Self.baselineUpScript(plan, logDirectory: workDirectory + "/logs")
            .write(toFile: upScript, atomically: true, encoding: .utf8)
        try Self.baselineDownScript(plan).write(toFile: downScript, atomically: true, encoding: .utf8)

        let loadBefore = Self.loadAverage()
        var wirelab = Side(name: "wirelab"), script = Side(name: "ip script")
        var reference: [String: String]?
        do {
            for run in 1...options.runs {
                // Alternate which side goes first (see the top of the file).
                let order = run % 2 == 1 ? [true, false] : [false, true]
                for wirelabSide in order {
                    let label = wirelabSide ? "wirelab" : "ip script"
                    try pause()
                    progress("run \(run)/\(options.runs): \(label) up …")
                    let up = try wirelabSide ? timed { _ = try deployer.up(topology) }
                                             : timed { try runScript(upScript, log: workDirectory + "/up-\(run).log") }
                    try checkpoint()
                    let built = try fingerprint()
                    if let reference {
                        try Self.compare(reference, "the first wirelab build", built, "the \(label) build of run \(run)")
                    } else {
                        reference = built
                    }
                    try pause()
                    progress("run \(run)/\(options.runs): \(label) up \(String(format: "%.3f", up)) s; down …")
                    let down = try wirelabSide ? timed { try deployer.down(lab: plan.lab) }
                                               : timed { try runScript(downScript, log: workDirectory + "/down-\(run).log") }
                    Self.reapChildren()
                    try checkLabGone(after: "\(label) down")
                    progress("run \(run)/\(options.runs): \(label) up \(String(format: "%.3f", up)) s, down \(String(format: "%.3f", down)) s")
                    if wirelabSide { wirelab.up.append(up); wirelab.down.append(down) }
                    else { script.up.append(up); script.down.append(down) }
                    try checkpoint()
                }
            }
        } catch {
            // A Ctrl-C from the terminal also kills an `ip` we are running, and
            // that failure can arrive before the signal handler has run: give
            // it a moment, so an interruption is reported as one.
            if !isCancelled { usleep(50_000) }
            progress(isCancelled ? "interrupted; removing what the benchmark made" : "failed: \(error); removing what the benchmark made")
            cleanUp()
            if isCancelled { throw Cancelled() }
            throw error
        }

        var uts = utsname()
        uname(&uts)
        let kernel = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return Report(
            file: topology.file, lab: plan.lab, date: Date(), runs: options.runs, settleSeconds: options.settle,
            namespaces: plan.namespaces.count, vethPairs: plan.veths.count, addresses: plan.addresses.count,
            routes: plan.routes.count, sysctls: plan.sysctls.count, processes: plan.processes.count,
            processesIncluded: true, verified: true, verifiedNamespaces: reference?.count ?? 0,
            wirelab: wirelab, ipScript: script,
            machine: .init(cores: ProcessInfo.processInfo.activeProcessorCount, kernel: kernel,
                           loadBefore: loadBefore, loadAfter: Self.loadAverage()))
    }

    private func pause() throws {
        try checkpoint()
        if options.settle > 0 { usleep(useconds_t(options.settle * 1_000_000)) }
        try checkpoint()
    }

    private func timed(_ body: () throws -> Void) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// The benchmark builds and removes the lab many times, so it must own
    /// every name: nothing of the lab may exist before it starts.
    private func checkNothingExists() throws {
        if store.exists(lab: plan.lab) {
            throw LabError("lab \(plan.lab) is up; nothing was changed — run `wirelab down \(plan.lab)` first")
        }
        let existing = plan.namespaces.map(\.name).filter { FileManager.default.fileExists(atPath: NetworkNamespace.path(of: $0)) }
        if !existing.isEmpty {
            throw LabError("namespace \(existing.joined(separator: ", ")) already exists; nothing was changed — the benchmark only removes what it made")
        }
    }

    private func checkLabGone(after step: String) throws {
        let left = plan.namespaces.map(\.name).filter { FileManager.default.fileExists(atPath: NetworkNamespace.path(of: $0)) }
        if !left.isEmpty { throw LabError("\(step) left \(left.count) namespaces, e.g. \(left[0])") }
        if store.exists(lab: plan.lab) { throw LabError("\(step) left the state of lab \(plan.lab)") }
    }

    /// Removes whatever of the lab exists, by the names in the plan (all of
    /// which the benchmark made: `run()` starts only if none existed).
    /// Best effort; never throws.
    public func cleanUp() {
        lock.lock()
        let group = scriptProcessGroup
        lock.unlock()
        if let group { kill(-group, SIGKILL) }
        if store.exists(lab: plan.lab) {
            do { try deployer.down(lab: plan.lab) } catch { progress("wirelab down \(plan.lab): \(error)") }
        }
        // What the ip script made, or what a failed down left.
        let inodes = Set(plan.namespaces.compactMap { NamespaceProcesses.inode(ofNamespace: $0.name) })
        for pid in NamespaceProcesses.pids(inNamespaces: inodes) where pid != getpid() { kill(pid, SIGKILL) }
        var left: [String] = []
        for ns in plan.namespaces {
            do { try NetworkNamespace.deleteIfExists(ns.name) } catch { left.append("\(ns.name): \(error)") }
        }
        if left.isEmpty { store.remove(lab: plan.lab) } else { progress("could not remove: \(left.joined(separator: "; "))") }
        Self.reapChildren()
    }

    // MARK: the ip script baseline

    /// `IPScript.up(plan)`, then the processes `up` starts, started the way a
    /// script would (`ip netns exec NS … &`), then a wait until every built-in
    /// HTTP server listens — `up` waits for that too.
    public static func baselineUpScript(_ plan: LabPlan, logDirectory: String) -> String {
        var lines = [IPScript.up(plan), "# Processes, as `wirelab up` starts them (added by the deploy benchmark)."]
        for spec in plan.processes {
            let log = "\(logDirectory)/\(spec.node)-\(spec.role.replacingOccurrences(of: "#", with: "")).log"
            lines.append("ip netns exec \(spec.namespace) \(spec.arguments.map(shellQuoted).joined(separator: " ")) </dev/null >\(shellQuoted(log)) 2>&1 &")
        }
        for spec in plan.processes where spec.role == "serve" {
            guard let i = spec.arguments.firstIndex(of: "--http"), i + 1 < spec.arguments.count else { continue }
            let port = spec.arguments[i + 1]
            lines.append("""
                i=0; until ss -N \(spec.namespace) -Hltn 'sport = :\(port)' | grep -q .; do \
                i=$((i+1)); [ $i -lt 1000 ] || { echo "server on \(spec.node) did not listen on tcp/\(port)" >&2; exit 1; }; sleep 0.01; done
                """)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Stops the processes in each namespace that has them and waits until
    /// they are gone (`down` does both), then `IPScript.down(plan)`.
    public static func baselineDownScript(_ plan: LabPlan) -> String {
        var lines = ["#!/bin/sh", "# Generated by wirelab's deploy benchmark: stop the lab's processes, then IPScript.down."]
        var seen = Set<String>()
        let withProcesses = plan.processes.map(\.namespace).filter { seen.insert($0).inserted }
        for ns in withProcesses { lines.append("ip netns pids \(ns) | xargs -r kill") }
        for ns in withProcesses {
            lines.append("i=0; while [ -n \"$(ip netns pids \(ns))\" ] && [ $i -lt 500 ]; do i=$((i+1)); sleep 0.01; done")
        }
        lines += IPScript.down(plan).split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#!") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Quotes one word for sh: as is if it is plainly safe, else in single quotes.
    public static func shellQuoted(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,")
        if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs `sh PATH` in its own process group (so `cancel()` can stop it and
    /// the `ip` it is running), output to LOG; throws if it fails.
    private func runScript(_ path: String, log: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group; every signal at its default (the CLI ignores SIGINT while it runs).
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)

        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup(path), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        lock.lock()
        if cancelled { lock.unlock(); throw Cancelled() }
        let code = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ)
        if code == 0 { scriptProcessGroup = pid }
        lock.unlock()
        guard code == 0 else { throw LabError("starting sh \(path): \(String(cString: strerror(code)))") }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        lock.lock()
        scriptProcessGroup = nil
        lock.unlock()
        if status != 0 {
            let tail = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
            let how = status & 0x7f == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
            throw LabError("sh \(path) failed (\(how)): \(tail)")
        }
    }

    // MARK: checking both sides built the same lab

    /// What `ip -j` shows that depends on creation order or timing, not on
    /// what was created: interface indexes, peer namespace ids, address
    /// lifetimes, and carrier state (a veth's operstate and NO-CARRIER flag
    /// settle asynchronously, through the kernel's linkwatch, after `up`).
    static let unstableKeys: Set<String> = ["ifindex", "link_index", "link_netnsid", "valid_life_time", "preferred_life_time", "operstate"]
    static let unstableFlags: Set<String> = ["NO-CARRIER"]

    /// One text per namespace of the plan: what `ip -j addr` and `ip -j route`
    /// show (minus `unstableKeys`), the plan's sysctls, TX checksum offload of
    /// its interfaces and the command lines of the processes inside.
    func fingerprint() throws -> [String: String] {
        var result: [String: String] = [:]
        let sysctls = Dictionary(grouping: plan.sysctls, by: \.namespace)
        let offloads = Dictionary(grouping: plan.checksumOffloadOff, by: \.namespace)
        for ns in plan.namespaces {
            try checkpoint()
            guard NetworkNamespace.exists(ns.name) else { throw LabError("namespace \(ns.name) is missing") }
            var lines: [String] = []
            for object in ["addr", "route"] {
                let out = try NamespaceProcess.run(["ip", "-j", object, "show"], namespace: ns.name)
                guard out.status.isSuccess else { throw LabError("ip -n \(ns.name) -j \(object): \(out.status): \(out.standardError)") }
                lines += Self.normalizedJSONLines(out.standardOutput).map { "\(object) \($0)" }
            }
            for s in sysctls[ns.name] ?? [] {
                lines.append("sysctl \(s.key)=\((try? Sysctl.read(s.key, namespace: ns.name)) ?? "?")")
            }
            if let items = offloads[ns.name] {
                let ethtool = try Ethtool(namespace: ns.name)
                defer { ethtool.close() }
                for item in items {
                    let on = (try? ethtool.offload(.transmitChecksum, interface: item.interface)).map { $0 ? "on" : "off" } ?? "?"
                    lines.append("tx-checksum \(item.interface) \(on)")
                }
            }
            let inode = NamespaceProcesses.inode(ofNamespace: ns.name)
            let commands = NamespaceProcesses.pids(inNamespaces: Set([inode].compactMap { $0 })).map { pid in
                ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data())
                    .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            }.sorted()
            lines += commands.map { "process \($0)" }
            result[ns.name] = lines.joined(separator: "\n")
        }
        return result
    }

    /// One line per element of a JSON array (an interface, a route), with
    /// `unstableKeys` and `unstableFlags` removed and keys sorted, so equal
    /// objects give equal lines.
    static func normalizedJSONLines(_ text: String) -> [String] {
        func clean(_ value: Any) -> Any {
            if let object = value as? [String: Any] {
                var kept = object.filter { !unstableKeys.contains($0.key) }
                if let flags = kept["flags"] as? [String] { kept["flags"] = flags.filter { !unstableFlags.contains($0) } }
                return kept.mapValues(clean)
            }
            if let array = value as? [Any] { return array.map(clean) }
            return value
        }
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
            return [text.trimmingCharacters(in: .whitespacesAndNewlines)]
        }
        let elements = (value as? [Any]) ?? [value]
        return elements.map { element in
            guard let data = try? JSONSerialization.data(withJSONObject: clean(element), options: [.sortedKeys]) else { return "\(element)" }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Throws, naming the first namespace that differs and how, unless A and B are equal.
    static func compare(_ a: [String: String], _ nameA: String, _ b: [String: String], _ nameB: String) throws {
        for ns in Set(a.keys).union(b.keys).sorted() where a[ns] != b[ns] {
            let linesA = (a[ns] ?? "").split(separator: "\n"), linesB = (b[ns] ?? "").split(separator: "\n")
            let onlyA = linesA.filter { !linesB.contains($0) }, onlyB = linesB.filter { !linesA.contains($0) }
            throw LabError("""
                \(nameB) differs from \(nameA) in namespace \(ns) — the benchmark would not compare equal work:
                  only in \(nameA): \(onlyA.prefix(3).joined(separator: "\n    "))
                  only in \(nameB): \(onlyB.prefix(3).joined(separator: "\n    "))
                """)
        }
    }

    // MARK: small helpers

    /// The middle value (the mean of the two middle ones for an even count); 0 if empty.
    public static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?")
            .split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// The script's background servers outlive its `sh`; as a child
    /// subreaper they become our children instead of PID 1's, so we can reap
    /// them after `down` (some container inits never do). prctl(2) is
    /// variadic in glibc, which Swift does not import, so it is called
    /// through a fixed prototype (all arguments are integers: same ABI).
    static func becomeChildSubreaper() {
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(nil, "prctl") else { return }
        _ = unsafeBitCast(symbol, to: Prctl.self)(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0)
    }

    /// Reaps every child that has ended (servers of both sides after `down`).
    /// Only called between phases, when no one else waits for a child.
    static func reapChildren() {
        var status: Int32 = 0
        while waitpid(-1, &status, WNOHANG) > 0 {}
    }
}
