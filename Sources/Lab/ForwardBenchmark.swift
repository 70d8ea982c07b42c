// `wirelab bench forward`: packets per second through our switch and router
// (the lab's data plane, over AF_XDP or AF_PACKET ports) beside the kernel's
// own bridge and IP forwarding, on the same veth path:
//
//     gen ──veth── forwarder ──veth── sink
//
// One lab per (element, port kind): `up` builds gen — sw|r — sink from a
// generated topology and starts the real daemon; ours is measured; then the
// daemon is stopped and the SAME forwarder namespace is turned into the
// kernel's peer (a bridge enslaving both veths, or addresses + ip_forward
// + a permanent neighbour entry), measured with the same generator and the
// same sink; then `down`. Each ratio divides by the kernel measured in the
// same lab, a few seconds apart, so slow drifts of a shared box cancel.
//
// - Generator (default): XDP "live frames" — BPF_PROG_RUN with
//   BPF_F_TEST_XDP_LIVE_FRAMES of a 23-instruction XDP program that
//   restores the frame's headers, rotates the UDP source port over the
//   flows and returns XDP_TX on gen:eth0, so the kernel hands each frame
//   to the veth peer (the forwarder's ingress) as an XDP frame, the way a
//   NIC driver would, from one thread of this process in the gen namespace. It outruns every forwarder measured here
//   (4–6 Mpps offered; what the ingress queue refuses is dropped there,
//   on the generator's CPU); the AF_XDP generator (`--generator afxdp`: an
//   `XDPPort` sending pre-built frames) does not: it tops out near the
//   kernel's forwarding rate, so it measures itself, not the forwarder.
// - Sink: a 5-instruction tcx (TC ingress) program on sink:eth0 drops all
//   but ARP (the router resolves the sink); frames are counted by the sink
//   veth's rx_packets (/proc/net/dev in the sink namespace). veth counts a
//   frame there whichever way it arrived (an skb from the bridge, from IP
//   forwarding, from an AF_PACKET or an AF_XDP send), before tc sees it, so
//   one counter is right for every case; frames a full queue dropped before
//   the sink are not counted. (An XDP drop program was tried first: veth's
//   XDP copies every skb with less than 256 bytes of headroom, which hit the
//   AF_XDP sends and not the bridge's — an unequal sink.)
// - The forwarder's ingress veth has GRO on: veth accepts XDP frames only
//   with NAPI enabled, and NAPI is on with GRO (or with an XDP program, as
//   for our AF_XDP ports). UDP to no socket is never merged by GRO.
// - Placement (2 cores), `--placement` (one or several, measured in turn):
//   - `forwarder` (default): the generator thread on the first CPU;
//     everything the forwarder does on the second — our daemon's threads by
//     sched_setaffinity, and the ingress veth's receive (the XDP redirect
//     and copy into our AF_XDP socket, or the kernel's bridge / IP
//     forwarding) in its NAPI, switched to a kernel thread
//     (/sys/class/net/IF/threaded) pinned there. Each forwarder gets one
//     whole CPU for all of its work. Under overload our ingress thread
//     competes with our daemon for that CPU (it keeps copying frames that
//     the full socket ring then drops), while the kernel drops at the veth
//     queue, on the generator's CPU: see `--ingress-nice`.
//   - `split`, like a NIC whose receive interrupt is served on one core
//     and forwarding on another: the generator and the ingress NAPI
//     (softirq, raised by the generator's sends) on the first CPU; the
//     forwarding on the second — our daemon, or the kernel's bridge / IP
//     forwarding steered there by RPS. Here the kernel's receive (skb
//     build, GRO, RPS enqueue and IPIs) on the first CPU limits it before
//     its forwarding CPU is busy: this placement favours us.
//   - `none`: nothing pinned.
//   Egress into the sink runs in the context of whoever transmits.
//   Threads we start or create (generator, daemon, NAPI) and the
//   forwarder CPU's ksoftirqd (restored afterwards) run at `--nice` (-10),
//   so background jobs on a shared box take less from either side.
// - Mallocs: when a C compiler is present, a tiny LD_PRELOAD library
//   compiled at benchmark time counts every malloc-family call of the
//   daemon into a shared file; the count over the measured window is
//   reported beside the packets forwarded in it.
import CLinuxShim
import CXDP
import Foundation
import Glibc
import LinuxNet
import Synchronization
import Topology
import Wire

public final class ForwardBenchmark: @unchecked Sendable {
    public enum Element: String, Codable, Sendable, CaseIterable {
        case `switch`, router
        /// Our director, one UDP service in NAT or DR mode; the kernel's
        /// peer for both is nftables DNAT (the kernel has no IPVS).
        case directorNAT = "director-nat", directorDR = "director-dr"

        /// In lab names.
        var shortName: String {
            switch self {
            case .switch: return "sw"
            case .router: return "r"
            case .directorNAT: return "nat"
            case .directorDR: return "dr"
            }
        }

        var isDirector: Bool { self == .directorNAT || self == .directorDR }
    }

    /// See the top of the file.
    public enum PlacementMode: String, Sendable, Codable, CaseIterable {
        case split, forwarder, none
    }

    public struct Options: Sendable {
        /// Measured seconds per forwarder.
        public var seconds: Double = 10
        /// Seconds of traffic before each measurement (learning, ARP, rings filling).
        public var warmup: Double = 1
        /// Frame size as on a wire, FCS included (64 → 60 bytes on the veth).
        public var frameSize: Int = 64
        /// UDP flows (source ports 10240 ..< 10240 + flows), a power of two ≤ 1024.
        public var flows: Int = 64
        public var generator: TrafficGenerator.Method = .xdpLive
        public var elements: [Element] = [.switch, .router]
        public var datapaths: [DatapathKind] = [.afxdp, .afpacket]
        public var placements: [PlacementMode] = [.forwarder]
        /// Nice value of the ingress NAPI thread (`forwarder` placement); nil: `nice`.
        public var ingressNice: Int32?
        /// Nice value for the generator thread, the daemon's threads and the
        /// ingress NAPI thread (0: unchanged): on a box shared with builds,
        /// it keeps their CPU time from being taken by background jobs.
        public var nice: Int32 = -10
        /// Count the daemon's mallocs (needs a C compiler).
        public var countMallocs: Bool = true
        /// Times each (element, port kind) pair is measured, ours then the
        /// kernel's, interleaved with the other pairs; the table shows medians.
        public var rounds: Int = 1
        /// Labs are `<prefix>-sw-xdp`, `<prefix>-r-pkt`, …: 1...12 of a-z, 0-9, '-'.
        public var labPrefix = "fwdbench"
        public init() {}
    }

    /// One forwarder measured for `seconds`.
    public struct Measurement: Codable, Sendable {
        /// "wirelab switch (AF_XDP)", "Linux bridge", …
        public var forwarder: String
        public var seconds: Double
        /// Frames counted at the sink in the window (rx_packets of sink:eth0).
        public var sinkFrames: UInt64
        /// sinkFrames / seconds.
        public var packetsPerSecond: Double
        /// Frames the generator put on gen:eth0 per second: taken by the
        /// forwarder's ingress queue or refused because it was full
        /// (tx_packets + tx_dropped of gen:eth0).
        public var offeredPerSecond: Double
        /// Sink packets per second in each second of the window.
        public var perSecond: [Double]
        /// Our daemon only: malloc-family calls in the window (nil: not counted).
        public var mallocs: UInt64?
        /// Our daemon only: element and port counters, deltas over the window.
        public var elementCounters: [String: UInt64]?
        public var elementDrops: [String: UInt64]?
        /// Frames the forwarder's ports lost (ring or socket queue full), over the window.
        public var portRxDropped: UInt64?
        public var portTxDropped: UInt64?
        /// Our daemon only: packets the element forwarded in the window.
        public var forwarded: UInt64?
        /// Each CPU over the window (from /proc/stat).
        public var cpus: [CPUUse] = []
        /// CPU time of the generator thread and (ours) of the daemon, in % of one CPU.
        public var generatorCPU: Double?
        /// The forwarder's ingress NAPI thread (`forwarder` placement), % of one CPU.
        public var ingressCPU: Double?
        public var daemonCPU: Double?
        /// The part of daemonCPU spent in user space (Swift) rather than in
        /// the kernel (sendto/recvmmsg, and the softirq work they run).
        public var daemonUserCPU: Double?

        /// Our daemon only: its CPU time (user + system, as /proc accounts
        /// it) per packet forwarded, nanoseconds.
        public var daemonNanosecondsPerPacket: Double? {
            guard let daemonCPU, let forwarded, forwarded > 0 else { return nil }
            return daemonCPU / 100 * seconds / Double(forwarded) * 1e9
        }

        /// The user-space part of daemonNanosecondsPerPacket.
        public var daemonUserNanosecondsPerPacket: Double? {
            guard let daemonUserCPU, let forwarded, forwarded > 0 else { return nil }
            return daemonUserCPU / 100 * seconds / Double(forwarded) * 1e9
        }

        public var mallocsPerPacket: Double? {
            guard let mallocs, let forwarded, forwarded > 0 else { return nil }
            return Double(mallocs) / Double(forwarded)
        }
    }

    /// One CPU over a window, in % of the window.
    public struct CPUUse: Codable, Sendable {
        public var cpu: Int
        /// Everything but idle and iowait.
        public var busy: Double
        public var softirq: Double
        /// Time the hypervisor gave to someone else.
        public var steal: Double
    }

    /// One (element, port kind): every round's measurement of ours and of
    /// the kernel's peer, and their medians.
    public struct Row: Codable, Sendable {
        public var element: Element
        public var datapath: String
        public var placement: PlacementMode
        public var lab: String
        public var ours: [Measurement]
        public var kernel: [Measurement]
        /// Why rounds of this case measured nothing (the medians are over
        /// the other rounds).
        public var failures: [String]
        /// Medians over the rounds of the sink's packets per second.
        public var oursPacketsPerSecond: Double
        public var kernelPacketsPerSecond: Double
        /// oursPacketsPerSecond ÷ kernelPacketsPerSecond.
        public var ratio: Double

        init(element: Element, datapath: String, placement: PlacementMode, lab: String, ours: [Measurement],
             kernel: [Measurement], failures: [String] = []) {
            self.element = element
            self.failures = failures
            self.datapath = datapath
            self.placement = placement
            self.lab = lab
            self.ours = ours
            self.kernel = kernel
            oursPacketsPerSecond = ForwardBenchmark.median(ours.map(\.packetsPerSecond))
            kernelPacketsPerSecond = ForwardBenchmark.median(kernel.map(\.packetsPerSecond))
            ratio = kernelPacketsPerSecond > 0 ? oursPacketsPerSecond / kernelPacketsPerSecond : 0
        }
    }

    public struct Report: Codable, Sendable {
        public var date: Date
        public var seconds: Double
        public var warmupSeconds: Double
        public var rounds: Int
        public var frameSize: Int
        public var bytesOnVeth: Int
        public var flows: Int
        public var generator: String
        public var sinkCounter: String
        /// What each placement measured did (see the top of ForwardBenchmark.swift).
        public var placements: [String: String]
        public var kernelSetup: [String: String]
        public var mallocCounter: String
        public var rows: [Row]
        public var machine: Machine
        public var notes: [String]

        public struct Machine: Codable, Sendable {
            public var cpus: Int
            public var model: String
            public var kernel: String
            public var loadBefore: String
            public var loadAfter: String
        }

        public func jsonString() throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        }

        public func table() -> String {
            func mpps(_ x: Double) -> String { String(format: "%.3f", x / 1e6) }
            func range(_ ms: [Measurement]) -> String {
                let values = ms.map(\.packetsPerSecond)
                return "\(mpps(values.min() ?? 0))–\(mpps(values.max() ?? 0))"
            }
            func mallocText(_ ms: [Measurement]) -> String {
                let counted = ms.compactMap { m in m.mallocs.flatMap { a in m.forwarded.map { (a, $0) } } }
                guard counted.count == ms.count, !ms.isEmpty else { return "not measured" }
                return "\(counted.reduce(0) { $0 + $1.0 }) in \(counted.reduce(0) { $0 + $1.1 }) pkts"
            }
            let severalPlacements = Set(rows.map(\.placement)).count > 1
            var header = ["element", "ports"] + (severalPlacements ? ["placement"] : [])
                + ["ours Mpps", "kernel peer", "kernel Mpps", "ours/kernel"]
            if rounds > 1 { header += ["ours min–max", "kernel min–max"] }
            header += ["daemon mallocs (windows)"]
            let table = rows.map { row -> [String] in
                var cells = [row.element.rawValue, row.datapath == "afxdp" ? "AF_XDP" : "AF_PACKET"]
                    + (severalPlacements ? [row.placement.rawValue] : [])
                guard !row.ours.isEmpty else {
                    return cells + ["failed", "-", "-", "-"] + (rounds > 1 ? ["-", "-"] : []) + ["-"]
                }
                cells += [mpps(row.oursPacketsPerSecond), row.kernel.first?.forwarder ?? "-",
                          mpps(row.kernelPacketsPerSecond),
                          String(format: "%.2f×", row.ratio) + (row.failures.isEmpty ? "" : " *")]
                if rounds > 1 { cells += [range(row.ours), range(row.kernel)] }
                return cells + [mallocText(row.ours)]
            }
            var out = [
                "forward benchmark: \(frameSize)-byte frames (\(bytesOnVeth) B on the veth), \(flows) UDP flows, "
                    + "\(Self.number(seconds)) s per forwarder after \(Self.number(warmupSeconds)) s warm-up"
                    + (rounds > 1 ? ", \(rounds) rounds (medians)" : ""),
                "  generator: \(generator)",
                "  sink: \(sinkCounter)",
                placements.count == 1 ? "  placement: \(placements.values.first!)"
                    : "  placements:\n" + placements.sorted { $0.key < $1.key }.map { "    \($0.value)" }.joined(separator: "\n"),
                "",
                TextTable.render(header, table).trimmingCharacters(in: .newlines),
                "",
            ]
            for row in rows {
                for (round, pair) in zip(row.ours, row.kernel).enumerated() {
                    let label = "\(row.element.rawValue)/\(row.datapath)" + (severalPlacements ? "/\(row.placement.rawValue)" : "")
                        + (rounds > 1 ? " round \(round + 1)" : "")
                    for m in [pair.0, pair.1] {
                        var text = "\(label) \(m.forwarder): \(mpps(m.packetsPerSecond)) Mpps (offered \(mpps(m.offeredPerSecond))), per second \(Self.list(m.perSecond))"
                        text += "; CPU " + m.cpus.map { String(format: "%d %.0f%% (softirq %.0f%%)", $0.cpu, $0.busy, $0.softirq) }.joined(separator: ", ")
                        if let g = m.generatorCPU { text += String(format: "; generator thread %.0f%%", g) }
                        if let i = m.ingressCPU { text += String(format: ", ingress NAPI thread %.0f%%", i) }
                        if let d = m.daemonCPU { text += String(format: ", daemon %.0f%%", d) }
                        if let ns = m.daemonNanosecondsPerPacket, let user = m.daemonUserNanosecondsPerPacket {
                            text += String(format: " (%.0f ns per packet, %.0f of them in user space)", ns, user)
                        }
                        out.append(text)
                    }
                    let o = pair.0
                    var details: [String] = []
                    if let c = o.elementCounters {
                        details.append(c.sorted { $0.key < $1.key }.filter { $0.value != 0 }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                    }
                    if let d = o.elementDrops, !d.isEmpty {
                        details.append("drops " + d.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                    }
                    if let rx = o.portRxDropped, let tx = o.portTxDropped { details.append("port drops rx \(rx) tx \(tx)") }
                    if let m = o.mallocs { details.append("mallocs \(m)") }
                    if !details.isEmpty { out.append("  daemon in the window: " + details.joined(separator: "; ")) }
                }
            }
            let failed = rows.filter { !$0.failures.isEmpty }
            if !failed.isEmpty {
                out.append("failed (* = median of the other rounds):")
                for row in failed {
                    let label = "\(row.element.rawValue)/\(row.datapath)" + (severalPlacements ? "/\(row.placement.rawValue)" : "")
                    out += row.failures.map { "  \(label): \($0)" }
                }
            }
            out.append("kernel peers: " + kernelSetup.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "))
            out.append("mallocs: \(mallocCounter)")
            out.append("machine: \(machine.cpus) CPUs (\(machine.model)), kernel \(machine.kernel), load \(machine.loadBefore) → \(machine.loadAfter)")
            out += notes.map { "note: \($0)" }
            return out.joined(separator: "\n")
        }

        static func number(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(format: "%.1f", x) }
        static func list(_ values: [Double]) -> String {
            "[" + values.map { String(format: "%.3f", $0 / 1e6) }.joined(separator: ", ") + "] Mpps"
        }
    }

    /// Thrown by `run()` after `cancel()`, once everything made was removed.
    public struct Cancelled: Error, CustomStringConvertible {
        public var description: String { "interrupted; everything the benchmark made was removed" }
    }

    public let options: Options
    let store: LabStore
    let deployer: LabDeployer
    let progress: (String) -> Void
    let workDirectory: String

    private let lock = NSLock()
    private var cancelled = false
    /// What exists now and must go on failure or Ctrl-C.
    private var currentLab: String?
    private var generator: TrafficGenerator?
    private var sink: SinkTap?

    /// Lab names: `wl-<lab>-<node>` namespaces.
    public static func labName(_ element: Element, _ datapath: DatapathKind, prefix: String = "fwdbench") -> String {
        "\(prefix)-\(element.shortName)-\(datapath == .afxdp ? "xdp" : "pkt")"
    }

    /// EXECUTABLE is the wirelab binary (started as the lab's daemon).
    public init(store: LabStore, executable: String, options: Options, progress: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.store = store
        self.progress = progress
        self.deployer = LabDeployer(store: store, executable: executable)
        self.workDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("wirelab-bench-forward-\(getpid())").path
    }

    /// Asks a running `run()` to stop; it removes what it made and throws
    /// `Cancelled`. Safe from any thread.
    public func cancel() {
        lock.lock()
        cancelled = true
        let generator = self.generator
        lock.unlock()
        generator?.requestStop()
    }

    private var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    private func checkpoint() throws {
        if isCancelled { throw Cancelled() }
    }

    /// Sleeps up to `seconds`, waking every 50 ms to notice `cancel()`.
    private func sleep(_ seconds: Double) throws {
        let end = Self.now() + seconds
        while true {
            try checkpoint()
            let left = end - Self.now()
            if left <= 0 { return }
            usleep(useconds_t(min(left, 0.05) * 1e6))
        }
    }

    // MARK: run

    public func run() throws -> Report {
        let labs = options.elements.flatMap { e in options.datapaths.map { Self.labName(e, $0, prefix: options.labPrefix) } }
        for lab in labs {
            if store.exists(lab: lab) {
                throw LabError("lab \(lab) is up; nothing was changed — run `wirelab down \(lab)` first")
            }
            let clashes = Self.nodeNames.map { LabStore.namespaceName(lab: lab, node: $0) }.filter(NetworkNamespace.exists)
            if !clashes.isEmpty {
                throw LabError("namespace \(clashes.joined(separator: ", ")) already exists; nothing was changed — the benchmark only removes what it made")
            }
        }
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workDirectory) }

        let loadBefore = Self.loadAverage()
        let cpus = Self.allowedCPUs()
        var notes: [String] = []
        var modes = options.placements
        if cpus.count < 2 {
            notes.append("only \(cpus.count) CPU allowed: nothing pinned")
            modes = [.none]
        }
        let placements = modes.map { mode in
            Placement(mode: mode, generator: mode == .none ? nil : cpus[0], forwarder: mode == .none ? nil : cpus[1],
                      nice: options.nice, ingressNice: options.ingressNice ?? options.nice)
        }
        // The forwarder CPU's ksoftirqd runs the kernel's deferred receive
        // work; it gets the same nice as our threads while we run.
        var softirqThread: (pid: pid_t, nice: Int32)?
        if let cpu = placements.compactMap(\.forwarder).first, options.nice != 0,
           let pid = Self.kernelThread(named: "ksoftirqd/\(cpu)") {
            errno = 0
            let old = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid))
            if errno == 0 {
                try Self.place(thread: pid, cpu: nil, nice: options.nice, what: "ksoftirqd/\(cpu)")
                softirqThread = (pid, old)
            }
        }
        defer {
            if let softirqThread { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(softirqThread.pid), softirqThread.nice) }
        }

        var counter: MallocCounter?
        var mallocText = "not measured (--no-malloc-count)"
        if options.countMallocs {
            do {
                counter = try MallocCounter(directory: workDirectory)
                mallocText = "LD_PRELOAD counter (\(counter!.compiler), compiled at benchmark time) on the daemon: malloc, calloc, realloc, memalign, aligned_alloc, posix_memalign, valloc, counted over the measured window"
            } catch {
                mallocText = "not measured: \(error)"
                progress("mallocs will not be counted: \(error)")
            }
        }

        let cases = placements.flatMap { p in options.elements.flatMap { e in options.datapaths.map { (p, e, $0) } } }
        var ours = [[Measurement]](repeating: [], count: cases.count)
        var kernel = ours
        var failures = [[String]](repeating: [], count: cases.count)
        for round in 1...options.rounds {
            for (i, c) in cases.enumerated() {
                if options.rounds > 1 || placements.count > 1 {
                    progress("round \(round)/\(options.rounds), placement \(c.0.mode.rawValue)")
                }
                do {
                    try checkpoint()
                    let (o, k) = try measureLab(c.1, c.2, placement: c.0, counter: counter)
                    ours[i].append(o)
                    kernel[i].append(k)
                } catch {
                    if !isCancelled { usleep(50_000) }
                    progress(isCancelled ? "interrupted; removing what the benchmark made" : "failed: \(error); removing what the benchmark made")
                    cleanUp()
                    if isCancelled { throw Cancelled() }
                    // One case failing (say, a forwarder starved to zero
                    // under overload) must not lose the others' hours:
                    // it is reported in its row, and the command exits 1.
                    failures[i].append(options.rounds > 1 ? "round \(round): \(error)" : "\(error)")
                }
            }
        }

        let rows = cases.enumerated().map { i, c in
            Row(element: c.1, datapath: c.2.rawValue, placement: c.0.mode,
                lab: Self.labName(c.1, c.2, prefix: options.labPrefix), ours: ours[i], kernel: kernel[i],
                failures: failures[i])
        }
        let bytes = options.frameSize - 4
        return Report(
            date: Date(), seconds: options.seconds, warmupSeconds: options.warmup, rounds: options.rounds,
            frameSize: options.frameSize,
            bytesOnVeth: bytes, flows: options.flows,
            generator: (options.generator == .xdpLive
                ? "XDP live frames (BPF_PROG_RUN, BPF_F_TEST_XDP_LIVE_FRAMES) of an XDP program that rotates the UDP source port over \(options.flows) flows and returns XDP_TX on gen:eth0"
                : "AF_XDP copy-mode socket (wirelab XDPPort) on gen:eth0 sending \(options.flows) pre-built frames round-robin")
                + ", one thread" + (placements.first?.generator.map { " on CPU \($0)" } ?? ""),
            sinkCounter: "tcx ingress program on sink:eth0 drops all but ARP; counted: rx_packets of sink:eth0 (/proc/net/dev in the sink namespace)",
            placements: Dictionary(uniqueKeysWithValues: placements.map { ($0.mode.rawValue, $0.description) }),
            kernelSetup: [
                "switch": "Linux bridge br0 enslaving both veths in the same forwarder namespace (STP off, bridge-nf-call-* 0), sink MAC learned from one frame",
                "router": "same namespace: both addresses, net.ipv4.ip_forward=1, permanent neighbour entry for the sink",
                "director-nat, director-dr": "same namespace: as the router, plus nftables DNAT of VIP:9 to the sink (prerouting, conntrack; the kernel has no IPVS)",
            ].filter { entry in options.elements.contains { entry.key.contains($0.rawValue) } },
            mallocCounter: mallocText, rows: rows,
            machine: .init(cpus: ProcessInfo.processInfo.activeProcessorCount, model: Self.cpuModel(),
                           kernel: Self.kernelRelease(), loadBefore: loadBefore, loadAfter: Self.loadAverage()),
            notes: notes)
    }

    /// Removes whatever the benchmark made (best effort, never throws).
    public func cleanUp() {
        lock.lock()
        let generator = self.generator, sink = self.sink, lab = currentLab
        self.generator = nil
        self.sink = nil
        currentLab = nil
        lock.unlock()
        generator?.stop()
        sink?.close()
        MallocCounter.unsetEnvironment()
        if let lab {
            // A daemon that died says why in its log, which `down` removes.
            let log = store.directory(lab: lab) + "/logs/daemon.log"
            if let text = try? String(contentsOfFile: log, encoding: .utf8), !text.isEmpty {
                let tail = text.split(separator: "\n").suffix(8).joined(separator: "\n  ")
                progress("the daemon's log (\(log)) ends with:\n  \(tail)")
            }
            if store.exists(lab: lab) {
                do { try deployer.down(lab: lab) } catch { progress("wirelab down \(lab): \(error)") }
            }
            for node in Self.nodeNames {
                _ = try? NetworkNamespace.deleteIfExists(LabStore.namespaceName(lab: lab, node: node))
            }
        }
    }

    // MARK: one lab

    struct LabLayout {
        var topologyYAML: String
        var forwarderNode: String
        var ingress: String
        var egress: String
        /// Frame addresses.
        var sourceIP: IPv4Address
        var destinationIP: IPv4Address
        /// Kernel peer: addresses on the forwarder's interfaces (router and director).
        var forwarderAddresses: [(String, String)]
        /// Kernel peer of a director: DNAT of this destination to the sink.
        var dnatFrom: IPv4Address? = nil
    }

    /// Every node name any layout uses (cleanup after a failure).
    static let nodeNames = ["gen", "sw", "r", "lb", "sink"]

    static func layout(_ element: Element, lab: String, datapath: DatapathKind) -> LabLayout {
        switch element {
        case .switch:
            return LabLayout(topologyYAML: """
                name: \(lab)
                defaults: { datapath: \(datapath.rawValue), capture: false }
                nodes:
                  gen:  { kind: host, interfaces: { eth0: { ip: 10.77.0.1/24 } } }
                  sw:   { kind: switch }
                  sink: { kind: host, interfaces: { eth0: { ip: 10.77.0.2/24 } } }
                links:
                  - [ gen:eth0, sw:p1 ]
                  - [ sw:p2, sink:eth0 ]
                """, forwarderNode: "sw", ingress: "p1", egress: "p2",
                sourceIP: IPv4Address(10, 77, 0, 1), destinationIP: IPv4Address(10, 77, 0, 2), forwarderAddresses: [])
        case .router:
            return routedLayout(lab: lab, datapath: datapath, forwarder: "r", node: """
                  r:
                    kind: router
                    interfaces:
                      eth0: { ip: 10.77.1.1/24 }
                      eth1: { ip: 10.77.2.1/24 }
                """, destination: IPv4Address(10, 77, 2, 2))
        case .directorNAT, .directorDR:
            // One UDP service on the generator's subnet; its one real is the
            // sink, behind the director's second interface (DR only needs the
            // real on a connected subnet; the lab puts the VIP on its lo).
            var layout = routedLayout(lab: lab, datapath: datapath, forwarder: "lb", node: """
                  lb:
                    kind: director
                    interfaces:
                      eth0: { ip: 10.77.1.1/24 }
                      eth1: { ip: 10.77.2.1/24 }
                    services:
                      - vip: 10.77.1.100
                        port: 9
                        protocol: udp
                        scheduler: rr
                        mode: \(element == .directorNAT ? "nat" : "dr")
                        reals: [ { ip: 10.77.2.2, port: 9 } ]
                """, destination: IPv4Address(10, 77, 1, 100))
            layout.dnatFrom = IPv4Address(10, 77, 1, 100)
            return layout
        }
    }

    /// gen (10.77.1.2) ── eth0 FORWARDER eth1 ── sink (10.77.2.2), the
    /// forwarder at .1 on both subnets and each host's default route
    /// through it; `node` is the forwarder's entry under `nodes:`.
    static func routedLayout(lab: String, datapath: DatapathKind, forwarder: String, node: String,
                             destination: IPv4Address) -> LabLayout {
        LabLayout(topologyYAML: """
            name: \(lab)
            defaults: { datapath: \(datapath.rawValue), capture: false }
            nodes:
              gen:
                kind: host
                interfaces: { eth0: { ip: 10.77.1.2/24 } }
                routes: [ "default via 10.77.1.1" ]
            \(node)
              sink:
                kind: host
                interfaces: { eth0: { ip: 10.77.2.2/24 } }
                routes: [ "default via 10.77.2.1" ]
            links:
              - [ gen:eth0, \(forwarder):eth0 ]
              - [ \(forwarder):eth1, sink:eth0 ]
            """, forwarderNode: forwarder, ingress: "eth0", egress: "eth1",
            sourceIP: IPv4Address(10, 77, 1, 2), destinationIP: destination,
            forwarderAddresses: [("eth0", "10.77.1.1/24"), ("eth1", "10.77.2.1/24")])
    }

    private func measureLab(_ element: Element, _ datapath: DatapathKind, placement: Placement,
                            counter: MallocCounter?) throws -> (ours: Measurement, kernel: Measurement) {
        let lab = Self.labName(element, datapath, prefix: options.labPrefix)
        let layout = Self.layout(element, lab: lab, datapath: datapath)
        let file = workDirectory + "/\(lab).yaml"
        try layout.topologyYAML.write(toFile: file, atomically: true, encoding: .utf8)
        let topology = try TopologyLoader.load(path: file)
        let plan = LabPlan(topology: topology, serveCommand: [])
        func mac(_ node: String, _ interface: String) throws -> MACAddress {
            let ns = LabStore.namespaceName(lab: lab, node: node)
            for veth in plan.veths {
                for end in [veth.a, veth.b] where end.namespace == ns && end.interface == interface { return end.mac }
            }
            throw LabError("no interface \(node):\(interface) in the plan of \(lab)")
        }
        let genNS = LabStore.namespaceName(lab: lab, node: "gen")
        let sinkNS = LabStore.namespaceName(lab: lab, node: "sink")
        let fwdNS = LabStore.namespaceName(lab: lab, node: layout.forwarderNode)
        let genMAC = try mac("gen", "eth0"), sinkMAC = try mac("sink", "eth0")
        let firstHop = element == .switch ? sinkMAC : try mac(layout.forwarderNode, layout.ingress)
        let frames = Self.frames(source: genMAC, destination: firstHop, sourceIP: layout.sourceIP,
                                 destinationIP: layout.destinationIP, frameSize: options.frameSize, flows: options.flows)

        progress("\(element.rawValue)/\(datapath.rawValue): up lab \(lab) …")
        lock.lock(); currentLab = lab; lock.unlock()
        try checkpoint()
        if let counter { counter.setEnvironment() }
        defer { MallocCounter.unsetEnvironment() }
        _ = try deployer.up(topology)
        MallocCounter.unsetEnvironment()
        try checkpoint()

        let state = try store.load(lab: lab)
        guard let daemon = state.processes.first(where: { $0.role == "daemon" }) else {
            throw LabError("lab \(lab) has no data-plane daemon")
        }
        // XDP frames from the generator need NAPI on the ingress veth.
        let ethtool = try Ethtool(namespace: fwdNS)
        defer { ethtool.close() }
        try ethtool.setOffload(.genericReceive, true, interface: layout.ingress)
        try Self.place(allThreadsOf: daemon.pid, cpu: placement.forwarder, nice: placement.nice)
        let oursIngress = try placeIngress(placement, namespace: fwdNS, interface: layout.ingress)

        let sink = try SinkTap(namespace: sinkNS, interface: "eth0")
        lock.lock(); self.sink = sink; lock.unlock()

        // Ours.
        let oursName = "wirelab \(element.rawValue) (\(datapath == .afxdp ? "AF_XDP" : "AF_PACKET"))"
        if element == .switch { try Self.sendLearningFrame(namespace: sinkNS, from: sinkMAC, to: genMAC, layout: layout) }
        let control = ControlClient(path: store.controlSocketPath(lab: lab))
        let ours = try measure(oursName, lab: lab, generatorNamespace: genNS, frames: frames, sink: sink,
                               placement: placement, ingressThreads: oursIngress,
                               daemon: (control, layout.forwarderNode, counter, daemon.pid))

        // The kernel's peer, in the same namespaces.
        progress("\(element.rawValue)/\(datapath.rawValue): stopping the daemon; the kernel forwards now")
        ProcessIdentity.stop(daemon, grace: 10)
        var status: Int32 = 0
        _ = waitpid(daemon.pid, &status, WNOHANG)
        let kernelName: String
        switch element {
        case .switch:
            kernelName = "Linux bridge"
            try Self.makeBridge(namespace: fwdNS, ports: [layout.ingress, layout.egress])
            try Self.sendLearningFrame(namespace: sinkNS, from: sinkMAC, to: genMAC, layout: layout)
        case .router:
            kernelName = "kernel ip_forward"
            try Self.makeKernelRouter(namespace: fwdNS, addresses: layout.forwarderAddresses,
                                      neighbour: (layout.destinationIP, sinkMAC, layout.egress))
        case .directorNAT, .directorDR:
            kernelName = "nftables DNAT"
            let sinkIP = IPv4Address(10, 77, 2, 2)
            try Self.makeKernelRouter(namespace: fwdNS, addresses: layout.forwarderAddresses,
                                      neighbour: (sinkIP, sinkMAC, layout.egress))
            try makeDNAT(namespace: fwdNS, from: layout.dnatFrom!, port: 9, to: sinkIP)
        }
        let kernelIngress = try placeIngress(placement, namespace: fwdNS, interface: layout.ingress)
        let kernel = try measure(kernelName, lab: lab, generatorNamespace: genNS, frames: frames, sink: sink,
                                 placement: placement, ingressThreads: kernelIngress, daemon: nil)

        lock.lock(); self.sink = nil; lock.unlock()
        sink.close()
        progress("\(element.rawValue)/\(datapath.rawValue): down lab \(lab)")
        try deployer.down(lab: lab)
        lock.lock(); currentLab = nil; lock.unlock()
        let ratio = kernel.packetsPerSecond > 0 ? ours.packetsPerSecond / kernel.packetsPerSecond : 0
        progress(String(format: "%@/%@: ours %.3f Mpps, %@ %.3f Mpps: %.2f×", element.rawValue, datapath.rawValue,
                        ours.packetsPerSecond / 1e6, kernelName, kernel.packetsPerSecond / 1e6, ratio))
        return (ours, kernel)
    }

    /// Runs the generator for warm-up + `seconds` and counts at the sink.
    private func measure(_ name: String, lab: String, generatorNamespace: String, frames: [[UInt8]], sink: SinkTap,
                         placement: Placement, ingressThreads: [pid_t],
                         daemon: (control: ControlClient, node: String, counter: MallocCounter?, pid: pid_t)?) throws -> Measurement {
        let generator = TrafficGenerator(method: options.generator, namespace: generatorNamespace, interface: "eth0",
                                         frames: frames, cpu: placement.generator, nice: placement.nice)
        lock.lock(); self.generator = generator; lock.unlock()
        defer {
            generator.stop()
            lock.lock(); self.generator = nil; lock.unlock()
        }
        try checkpoint()
        try generator.start()
        progress("\(name): warming up \(Report.number(options.warmup)) s …")
        let offered = try InterfaceCounters(namespace: generatorNamespace, interface: "eth0")
        let warmupStart = try sink.receivedFrames()
        try sleep(options.warmup)
        if let error = generator.failure { throw error }
        if options.warmup > 0, try sink.receivedFrames() == warmupStart {
            throw LabError("\(name): no frame reached the sink in \(Report.number(options.warmup)) s of warm-up (gen:eth0 sent \(try offered.read().offered))")
        }

        // Status requests make the daemon allocate: take them outside the
        // malloc window, with a pause so the control thread is done.
        let statusBefore = try daemon.map { try $0.control.status() }
        if daemon != nil { try sleep(0.05) }
        let mallocsBefore = daemon?.counter?.value
        let cpuBefore = Self.cpuTimes()
        let generatorBefore = generator.cpuSeconds
        let daemonBefore = daemon.flatMap { Self.processCPUTimes($0.pid) }
        let ingressBefore = ingressThreads.compactMap { Self.processCPUSeconds($0) }
        let sinkBefore = try sink.receivedFrames()
        let sentBefore = try offered.read().offered
        let start = Self.now()
        var perSecond: [Double] = []
        var last = (frames: sinkBefore, time: start)
        while true {
            let elapsed = Self.now() - start
            if elapsed >= options.seconds - 1e-3 { break }
            try sleep(min(1, options.seconds - elapsed))
            let now = Self.now(), frames = try sink.receivedFrames()
            let rate = Double(frames &- last.frames) / (now - last.time)
            perSecond.append(rate)
            last = (frames, now)
            progress(String(format: "%@: %.3f Mpps at the sink (%.0f s)", name, rate / 1e6, now - start))
            if let error = generator.failure { throw error }
        }
        let sinkAfter = try sink.receivedFrames()
        let end = Self.now()
        let sentAfter = try offered.read().offered
        let daemonAfter = daemon.flatMap { Self.processCPUTimes($0.pid) }
        let ingressAfter = ingressThreads.compactMap { Self.processCPUSeconds($0) }
        let generatorAfter = generator.cpuSeconds
        let cpuAfter = Self.cpuTimes()
        let mallocsAfter = daemon?.counter?.value
        generator.stop()
        let statusAfter = try daemon.map { try $0.control.status() }

        let seconds = end - start
        var result = Measurement(forwarder: name, seconds: seconds, sinkFrames: sinkAfter &- sinkBefore,
                                 packetsPerSecond: Double(sinkAfter &- sinkBefore) / seconds,
                                 offeredPerSecond: Double(sentAfter &- sentBefore) / seconds, perSecond: perSecond)
        result.cpus = Self.cpuUse(cpuBefore, cpuAfter)
        if let a = generatorBefore, let b = generatorAfter { result.generatorCPU = (b - a) / seconds * 100 }
        if !ingressThreads.isEmpty, ingressBefore.count == ingressAfter.count {
            result.ingressCPU = (ingressAfter.reduce(0, +) - ingressBefore.reduce(0, +)) / seconds * 100
        }
        if let a = daemonBefore, let b = daemonAfter {
            result.daemonCPU = (b.user + b.system - a.user - a.system) / seconds * 100
            result.daemonUserCPU = (b.user - a.user) / seconds * 100
        }
        if let daemon, let before = statusBefore?.nodes.first(where: { $0.node == daemon.node }),
           let after = statusAfter?.nodes.first(where: { $0.node == daemon.node }) {
            var counters: [String: UInt64] = [:]
            for (key, value) in after.counters where key != "mac-entries" { counters[key] = value &- (before.counters[key] ?? 0) }
            var drops: [String: UInt64] = [:]
            for (key, value) in after.drops where value != before.drops[key] ?? 0 { drops[key] = value &- (before.drops[key] ?? 0) }
            result.elementCounters = counters
            result.elementDrops = drops
            // The switch and router count "forwarded"; the director counts
            // by mode ("forwarded-nat", "forwarded-dr", …).
            let forwarded = counters.filter { $0.key == "forwarded" || $0.key.hasPrefix("forwarded-") }.values.reduce(0, &+)
            result.forwarded = counters.keys.contains { $0 == "forwarded" || $0.hasPrefix("forwarded-") } ? forwarded : nil
            result.portRxDropped = zip(before.ports, after.ports).reduce(0) { $0 + ($1.1.rxDropped &- $1.0.rxDropped) }
            result.portTxDropped = zip(before.ports, after.ports).reduce(0) { $0 + ($1.1.txDropped &- $1.0.txDropped) }
            if let mallocsBefore, let mallocsAfter { result.mallocs = mallocsAfter &- mallocsBefore }
        }
        progress(String(format: "%@: %.3f Mpps at the sink over %.1f s (offered %.3f Mpps)", name,
                        result.packetsPerSecond / 1e6, seconds, result.offeredPerSecond / 1e6))
        return result
    }

    // MARK: frames

    /// First UDP source port; flows use 10240 ..< 10240 + flows.
    public static let sourcePortBase: UInt16 = 10240

    /// One Ethernet/IPv4/UDP frame per flow, `frameSize - 4` bytes each
    /// (the FCS is not on a veth): IPv4 checksum correct, DF set, TTL 64,
    /// UDP source port 10240 + flow, destination port 9, UDP checksum 0
    /// ("none", allowed over IPv4), so a generator may rotate the port
    /// without recomputing a checksum.
    public static func frames(source: MACAddress, destination: MACAddress, sourceIP: IPv4Address,
                              destinationIP: IPv4Address, frameSize: Int, flows: Int) -> [[UInt8]] {
        let length = frameSize - 4
        precondition(length >= 42 && length <= 1514, "frame size out of range")
        return (0..<flows).map { flow in
            var bytes = [UInt8](repeating: 0, count: length)
            bytes.withUnsafeMutableBytes { frame in
                EthernetRepr(destination: destination, source: source, etherType: .ipv4)
                    .emit(into: EthernetMutableHeader(unchecked: frame))
                let ip = UnsafeMutableRawBufferPointer(rebasing: frame[14...])
                let udp = UnsafeMutableRawBufferPointer(rebasing: frame[34...])
                for i in 8..<udp.count { udp[i] = UInt8(truncatingIfNeeded: i) }
                IPv4Repr(sourceAddress: sourceIP, destinationAddress: destinationIP, protocol: .udp,
                         payloadLength: length - 34, timeToLive: 64, dontFragment: true)
                    .emit(into: IPv4MutableHeader(unchecked: ip))
                UDPRepr(sourcePort: sourcePortBase + UInt16(flow), destinationPort: 9, payloadLength: length - 42)
                    .emit(into: UDPMutableHeader(unchecked: udp), pseudoHeader: nil)
            }
            return bytes
        }
    }

    /// A few frames from the sink towards the generator, so a learning
    /// switch (ours or the bridge) knows the sink's port before traffic.
    static func sendLearningFrame(namespace: String, from sinkMAC: MACAddress, to genMAC: MACAddress,
                                  layout: LabLayout) throws {
        let frame = frames(source: sinkMAC, destination: genMAC, sourceIP: layout.destinationIP,
                           destinationIP: layout.sourceIP, frameSize: 64, flows: 1)[0]
        try NetworkNamespace.run(namespace) {
            let port = try AFPacketPort(interface: "eth0")
            defer { port.close() }
            for _ in 0..<3 {
                frame.withUnsafeBytes { _ = port.transmit(copying: $0) }
                port.flush()
                usleep(1000)
            }
        }
        usleep(20_000)
    }

    // MARK: the kernel's peers

    static func ip(_ arguments: [String], namespace: String) throws {
        let out = try NamespaceProcess.run(["ip"] + arguments, namespace: namespace)
        guard out.status.isSuccess else {
            throw LabError("ip -n \(namespace) \(arguments.joined(separator: " ")): \(out.status): \(out.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// `ip link add br0 type bridge` (STP off), both ports enslaved, up;
    /// bridged IPv4 does not go through iptables (bridge-nf-call-* = 0 when
    /// br_netfilter is loaded).
    static func makeBridge(namespace: String, ports: [String]) throws {
        try ip(["link", "add", "br0", "type", "bridge", "stp_state", "0"], namespace: namespace)
        for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"] {
            _ = try? Sysctl.write("net/bridge/\(key)", "0", namespace: namespace)
        }
        for port in ports { try ip(["link", "set", port, "master", "br0"], namespace: namespace) }
        try ip(["link", "set", "br0", "up"], namespace: namespace)
    }

    /// The router's addresses on the same interfaces, forwarding on, and a
    /// permanent neighbour entry for the sink (no ARP in the measurement).
    static func makeKernelRouter(namespace: String, addresses: [(String, String)],
                                 neighbour: (IPv4Address, MACAddress, String)) throws {
        for (interface, prefix) in addresses { try ip(["addr", "add", prefix, "dev", interface], namespace: namespace) }
        try Sysctl.write("net/ipv4/ip_forward", "1", namespace: namespace)
        try ip(["neigh", "replace", "\(neighbour.0)", "lladdr", "\(neighbour.1)", "dev", neighbour.2, "nud", "permanent"],
               namespace: namespace)
    }

    /// nftables DNAT of `from`:port/udp to `to`:port, in prerouting.
    func makeDNAT(namespace: String, from: IPv4Address, port: Int, to: IPv4Address) throws {
        let rules = """
            table ip wirelab_bench {
              chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                ip daddr \(from) udp dport \(port) dnat to \(to):\(port)
              }
            }

            """
        let file = workDirectory + "/dnat-\(namespace).nft"
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        let out = try NamespaceProcess.run(["nft", "-f", file], namespace: namespace)
        guard out.status.isSuccess else {
            throw LabError("nft -f \(file) in \(namespace): \(out.status): \(out.standardError.trimmingCharacters(in: .whitespacesAndNewlines)) (is nftables installed? scripts/install-deps.sh installs it)")
        }
    }

    /// Where the forwarder's receive runs (see the top of the file).
    /// Returns the ingress NAPI threads (`forwarder` placement).
    private func placeIngress(_ placement: Placement, namespace: String, interface: String) throws -> [pid_t] {
        guard let cpu = placement.forwarder else { return [] }
        switch placement.mode {
        case .split:
            try Self.writeSysfs("/sys/class/net/\(interface)/queues/rx-0/rps_cpus", String(1 << UInt64(cpu), radix: 16),
                                namespace: namespace)
            return []
        case .forwarder:
            return try Self.placeIngressNAPI(namespace: namespace, interface: interface, cpu: cpu, nice: placement.ingressNice)
        case .none:
            return []
        }
    }

    /// Writes a file of /sys/class/net through `ip netns exec`, which
    /// mounts the namespace's own /sys.
    static func writeSysfs(_ path: String, _ value: String, namespace: String) throws {
        let out = try NamespaceProcess.run(["ip", "netns", "exec", namespace, "sh", "-c", "echo \(value) > \(path)"],
                                           namespace: namespace)
        guard out.status.isSuccess else {
            throw LabError("writing \(value) to \(path) in \(namespace): \(out.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    static func kernelThread(named name: String) -> pid_t? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { continue }
            if comm.trimmingCharacters(in: .whitespacesAndNewlines) == name { return pid }
        }
        return nil
    }

    /// Runs the NAPI of INTERFACE (veth: on while GRO is on or an XDP
    /// program is attached) in kernel threads (`/sys/class/net/IF/threaded`,
    /// written through `ip netns exec`, which mounts the namespace's own
    /// /sys) and pins them to CPU; returns their PIDs. Threaded mode is
    /// switched off and on, so the threads are new ones and can be told
    /// from same-named threads of other namespaces. Without it veth runs
    /// the receive in softirq on the CPU that transmitted — the generator's.
    @discardableResult
    static func placeIngressNAPI(namespace: String, interface: String, cpu: Int, nice: Int32) throws -> [pid_t] {
        let path = "/sys/class/net/\(interface)/threaded"
        try writeSysfs(path, "0", namespace: namespace)
        let before = Set(napiThreads().keys)
        try writeSysfs(path, "1", namespace: namespace)
        var threads: [pid_t] = []
        for _ in 0..<100 {
            threads = napiThreads().filter { !before.contains($0.key) && $0.value.hasPrefix("napi/\(interface)-") }.map(\.key)
            if !threads.isEmpty { break }
            usleep(10_000)
        }
        guard !threads.isEmpty else { throw LabError("no NAPI thread appeared for \(interface) in \(namespace)") }
        for pid in threads { try place(thread: pid, cpu: cpu, nice: nice, what: "NAPI thread \(pid)") }
        return threads.sorted()
    }

    /// Kernel threads named napi/…, by PID.
    static func napiThreads() -> [pid_t: String] {
        var result: [pid_t: String] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                  let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8), comm.hasPrefix("napi/") else { continue }
            result[pid] = comm.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return result
    }

    // MARK: CPUs

    /// Where the generator and the forwarder run, and at which nice value.
    struct Placement: CustomStringConvertible {
        var mode: PlacementMode
        var generator: Int?
        var forwarder: Int?
        var nice: Int32
        var ingressNice: Int32

        var description: String {
            var text: String
            switch (mode, generator, forwarder) {
            case (.split, let g?, let f?):
                text = "split: generator thread and ingress veth NAPI (softirq) on CPU \(g); forwarding on CPU \(f) "
                    + "(daemon threads by sched_setaffinity, kernel bridge / IP forwarding by RPS rps_cpus=\(String(1 << UInt64(f), radix: 16)))"
            case (.forwarder, let g?, let f?):
                text = "forwarder: generator thread on CPU \(g); everything the forwarder does on CPU \(f) "
                    + "(daemon threads by sched_setaffinity, ingress veth NAPI threaded and pinned)"
            default:
                text = "none: nothing pinned (NAPI in softirq wherever the kernel raises it)"
            }
            text += "; ingress veth GRO on"
            if nice != 0 {
                text += "; generator, daemon" + (mode == .forwarder && ingressNice == nice ? ", NAPI" : "") + " threads"
                    + (forwarder.map { " and ksoftirqd/\($0)" } ?? "") + " at nice \(nice)"
            }
            if mode == .forwarder && ingressNice != nice { text += "; ingress NAPI thread at nice \(ingressNice)" }
            return text
        }
    }

    typealias AffinityCall = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32

    /// sched_{get,set}affinity: Glibc's module does not import them (they
    /// need _GNU_SOURCE), so they are called through dlsym with their own
    /// prototype. The mask is a 1024-bit cpu_set_t.
    static func affinityCall(_ name: String) -> AffinityCall? {
        guard let symbol = dlsym(nil, name) else { return nil }
        return unsafeBitCast(symbol, to: AffinityCall.self)
    }

    static func allowedCPUs() -> [Int] {
        guard let get = affinityCall("sched_getaffinity") else { return [] }
        var set = [UInt64](repeating: 0, count: 16)
        guard set.withUnsafeMutableBytes({ get(0, $0.count, $0.baseAddress!) }) == 0 else { return [] }
        return (0..<1024).filter { set[$0 / 64] & (1 << UInt64($0 % 64)) != 0 }
    }

    /// Pins thread TID (0: the calling thread) to CPU.
    static func pin(thread tid: pid_t, to cpu: Int) -> Bool {
        guard let set = affinityCall("sched_setaffinity") else { return false }
        var mask = [UInt64](repeating: 0, count: 16)
        mask[cpu / 64] = 1 << UInt64(cpu % 64)
        return mask.withUnsafeMutableBytes { set(tid, $0.count, $0.baseAddress!) } == 0
    }

    /// Pins thread TID (0: the calling thread) to CPU if given and sets its
    /// nice value if not 0.
    static func place(thread tid: pid_t, cpu: Int?, nice: Int32, what: String) throws {
        if let cpu, !pin(thread: tid, to: cpu) {
            throw LabError("pinning \(what) to CPU \(cpu): \(String(cString: strerror(errno)))")
        }
        if nice != 0, setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(tid), nice) != 0 {
            throw LabError("setting nice \(nice) on \(what): \(String(cString: strerror(errno)))")
        }
    }

    static func place(allThreadsOf pid: pid_t, cpu: Int?, nice: Int32) throws {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        guard !tasks.isEmpty else { throw LabError("placing the daemon: no /proc/\(pid)/task") }
        for task in tasks {
            guard let tid = pid_t(task) else { continue }
            try place(thread: tid, cpu: cpu, nice: nice, what: "daemon thread \(tid)")
        }
    }

    // MARK: CPU time

    /// Per CPU from /proc/stat: (user, nice, system, idle, iowait, irq, softirq, steal) in ticks.
    static func cpuTimes() -> [Int: [UInt64]] {
        let text = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
        var result: [Int: [UInt64]] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("cpu") && !line.hasPrefix("cpu ") {
            let fields = line.split(separator: " ")
            guard let cpu = Int(fields[0].dropFirst(3)), fields.count >= 9 else { continue }
            result[cpu] = fields[1...8].map { UInt64($0) ?? 0 }
        }
        return result
    }

    static func cpuUse(_ before: [Int: [UInt64]], _ after: [Int: [UInt64]]) -> [CPUUse] {
        after.keys.sorted().compactMap { cpu in
            guard let a = before[cpu], let b = after[cpu] else { return nil }
            let d = zip(a, b).map { Double($1 &- $0) }
            let total = d.reduce(0, +)
            guard total > 0 else { return nil }
            return CPUUse(cpu: cpu, busy: (total - d[3] - d[4]) / total * 100, softirq: d[6] / total * 100,
                          steal: d[7] / total * 100)
        }
    }

    /// utime + stime of a process or thread (/proc/.../stat), seconds.
    static func processCPUSeconds(_ pid: pid_t, thread: pid_t? = nil) -> Double? {
        processCPUTimes(pid, thread: thread).map { $0.user + $0.system }
    }

    /// utime and stime of a process (all its threads) or of one thread, seconds.
    static func processCPUTimes(_ pid: pid_t, thread: pid_t? = nil) -> (user: Double, system: Double)? {
        let path = thread.map { "/proc/\(pid)/task/\($0)/stat" } ?? "/proc/\(pid)/stat"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (user / tick, system / tick)
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    // MARK: small helpers

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?")
            .split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func kernelRelease() -> String {
        var uts = utsname()
        uname(&uts)
        return withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func cpuModel() -> String {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}

// MARK: - BPF programs as raw instructions

/// Small BPF programs written as instructions (code, registers, offset,
/// immediate), loaded with libbpf's `bpf_prog_load`: no BPF toolchain or
/// object file is needed at run time.
enum RawBPF {
    typealias Instruction = (code: UInt8, dst: UInt8, src: UInt8, off: Int16, imm: Int32)

    static func load(_ type: bpf_prog_type, name: String, _ program: [Instruction],
                     expectedAttachType: UInt32 = 0) throws -> Int32 {
        var bytes = [UInt8]()
        for insn in program {
            bytes.append(insn.code)
            bytes.append(insn.src << 4 | insn.dst)
            withUnsafeBytes(of: insn.off.littleEndian) { bytes += $0 }
            withUnsafeBytes(of: insn.imm.littleEndian) { bytes += $0 }
        }
        var opts = bpf_prog_load_opts()
        opts.sz = MemoryLayout<bpf_prog_load_opts>.size
        opts.expected_attach_type = bpf_attach_type(rawValue: expectedAttachType)
        let fd = bytes.withUnsafeBytes { raw in
            bpf_prog_load(type, name, "GPL", raw.baseAddress!.assumingMemoryBound(to: bpf_insn.self), program.count, &opts)
        }
        guard fd >= 0 else { throw LabError("loading BPF program \(name) (bpf_prog_load): \(String(cString: strerror(-fd)))") }
        return fd
    }

    /// XDP for the live-frames generator: writes HEADER (the Ethernet and
    /// IPv4 headers of the template frame, 34 bytes) over the frame, turns
    /// the UDP source port (offset 34) into base | ((port + 1) & mask), then
    /// XDP_TX. The headers are rewritten every time because live frames
    /// recycle their pages with whatever the last user left in them: a
    /// router's frame comes back with its MACs and TTL rewritten. The port
    /// is the per-page state of the rotation (nothing here rewrites UDP).
    /// BASE must have no bit of MASK (= flows - 1, flows a power of two).
    static func rotateSourcePortAndTransmit(header: [UInt8], base: UInt16, mask: UInt16) -> [Instruction] {
        precondition(header.count == 34, "Ethernet + IPv4 header without options")
        func word(_ i: Int) -> Int32 {
            Int32(bitPattern: UInt32(header[i]) | UInt32(header[i + 1]) << 8 | UInt32(header[i + 2]) << 16 | UInt32(header[i + 3]) << 24)
        }
        var program: [Instruction] = [
            (0x61, 2, 1, 0, 0),             // r2 = ctx->data
            (0x61, 3, 1, 4, 0),             // r3 = ctx->data_end
            (0xbf, 4, 2, 0, 0),             // r4 = r2
            (0x07, 4, 0, 0, 42),            // r4 += 42 (Ethernet + IPv4 + UDP)
            (0x2d, 4, 3, 16, 0),            // if r4 > r3 goto transmit
        ]
        for offset in stride(from: 0, to: 32, by: 4) {
            program.append((0x62, 2, 0, Int16(offset), word(offset)))   // *(u32 *)(r2 + offset) = header[offset...]
        }
        program.append((0x6a, 2, 0, 32, Int32(header[32]) | Int32(header[33]) << 8))   // *(u16 *)(r2 + 32) = …
        program += [
            (0x69, 5, 2, 34, 0),            // r5 = *(u16 *)(r2 + 34)   UDP source port
            (0xdc, 5, 0, 0, 16),            // r5 = be16(r5)            to host order
            (0x07, 5, 0, 0, 1),             // r5 += 1
            (0x57, 5, 0, 0, Int32(mask)),   // r5 &= mask
            (0x47, 5, 0, 0, Int32(base)),   // r5 |= base
            (0xdc, 5, 0, 0, 16),            // r5 = be16(r5)            to network order
            (0x6b, 2, 5, 34, 0),            // *(u16 *)(r2 + 34) = r5
            (0xb7, 0, 0, 0, 3),             // transmit: r0 = XDP_TX
            (0x95, 0, 0, 0, 0),             // exit
        ]
        precondition(program.count == 23, "the jump at 4 targets instruction 21")
        return program
    }

    /// tcx (TC ingress): drop everything but ARP.
    static let dropAllButARP: [Instruction] = [
        (0x61, 2, 1, 16, 0),                // r2 = skb->protocol (network order)
        (0xb7, 0, 0, 0, 2),                 // r0 = TCX_DROP
        (0x55, 2, 0, 1, 0x0608),            // if r2 != htons(ETH_P_ARP) goto exit
        (0xb7, 0, 0, 0, 0),                 // r0 = TCX_PASS
        (0x95, 0, 0, 0, 0),                 // exit
    ]

    /// BPF_TCX_INGRESS (kernel 6.6; newer than the installed headers).
    static let tcxIngress: UInt32 = 46
}

// MARK: - generator

/// The traffic generator: a thread of this process inside the generator's
/// namespace (pinned to a CPU if asked) sending on one interface as fast as
/// the kernel takes frames, by one of two methods:
/// - `xdpLive`: BPF_PROG_RUN of `RawBPF.rotateSourcePortAndTransmit` with
///   BPF_F_TEST_XDP_LIVE_FRAMES: the kernel runs the program on copies of
///   the first frame in a loop (16384 per call, batches of 64) and sends
///   each as an XDP frame out of the interface (XDP_TX); the veth peer
///   must have NAPI on (GRO or an XDP program). Frames the peer's queue
///   refuses are dropped there and still count as offered.
/// - `afxdp`: an `XDPPort` (copy mode) queueing the pre-built frames
///   round-robin and kicking the kernel, which builds an skb for each.
public final class TrafficGenerator: @unchecked Sendable {
    public enum Method: String, Sendable, Codable, CaseIterable {
        case xdpLive = "xdp-live"
        case afxdp
    }

    let method: Method
    let namespace: String
    let interface: String
    let cpu: Int?
    let nice: Int32
    let flows: Int
    private let templates: UnsafeMutableRawPointer
    private let frameLength: Int
    private let frameCount: Int
    private let stopRequested = Atomic<Bool>(false)
    private let sentFrames = Atomic<UInt64>(0)
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var started = false
    private var joined = false
    private var error: Error?
    private var threadID: pid_t = 0

    /// Frames per BPF_PROG_RUN call (~2 s at full speed): each call also
    /// sets up and tears down a page pool, which takes ~25 ms here (the
    /// thread sleeps in D state), so calls must be long; `stop()`
    /// interrupts one with a signal (the kernel checks signal_pending).
    static let liveRepeat: UInt32 = 1 << 22
    private var pthread: pthread_t?

    init(method: Method, namespace: String, interface: String, frames: [[UInt8]], cpu: Int?, nice: Int32) {
        precondition(!frames.isEmpty && frames.allSatisfy { $0.count == frames[0].count })
        self.method = method
        self.nice = nice
        self.namespace = namespace
        self.interface = interface
        self.cpu = cpu
        flows = frames.count
        frameLength = frames[0].count
        frameCount = frames.count
        templates = .allocate(byteCount: frameLength * frameCount, alignment: 64)
        for (i, frame) in frames.enumerated() {
            frame.withUnsafeBytes { (templates + i * frameLength).copyMemory(from: $0.baseAddress!, byteCount: frameLength) }
        }
    }

    deinit {
        stop()
        templates.deallocate()
    }

    /// Frames handed to the kernel so far.
    var sent: UInt64 { sentFrames.load(ordering: .relaxed) }

    var failure: Error? {
        lock.lock(); defer { lock.unlock() }
        return error
    }

    /// CPU time of the generator thread so far, seconds.
    var cpuSeconds: Double? {
        lock.lock(); let tid = threadID; lock.unlock()
        return tid == 0 ? nil : ForwardBenchmark.processCPUSeconds(getpid(), thread: tid)
    }

    /// Starts sending from a thread of its own; throws if the thread could
    /// not enter the namespace, pin itself or open what it sends with.
    func start() throws {
        let ready = DispatchSemaphore(value: 0)
        lock.lock(); started = true; lock.unlock()
        Self.installWakeHandler
        let thread = Thread { [self] in
            defer {
                lock.lock(); pthread = nil; lock.unlock()
                finished.signal()
            }
            lock.lock(); threadID = cwl_gettid(); pthread = pthread_self(); lock.unlock()
            func fail(_ error: Error) {
                lock.lock(); self.error = error; lock.unlock()
            }
            do {
                try NetworkNamespace.enterOnCurrentThread(namespace)
                try ForwardBenchmark.place(thread: 0, cpu: cpu, nice: nice, what: "the generator")
                switch method {
                case .xdpLive:
                    let ifindex = Int32(bitPattern: if_nametoindex(interface))
                    guard ifindex > 0 else { throw LabError("no interface \(interface) in \(namespace)") }
                    let header = Array(UnsafeRawBufferPointer(start: templates, count: 34))
                    let program = try RawBPF.load(BPF_PROG_TYPE_XDP, name: "wl_gen",
                                                  RawBPF.rotateSourcePortAndTransmit(header: header, base: ForwardBenchmark.sourcePortBase,
                                                                                     mask: UInt16(flows - 1)))
                    defer { close(program) }
                    ready.signal()
                    try sendLive(program: program, ifindex: ifindex)
                case .afxdp:
                    let port = try XDPPort(interface: interface)
                    defer { port.close() }
                    ready.signal()
                    send(port)
                }
            } catch {
                fail(error)
                ready.signal()
            }
        }
        thread.name = "generator"
        thread.start()
        ready.wait()
        if let failure { stop(); throw failure }
    }

    private func sendLive(program: Int32, ifindex: Int32) throws {
        let context = UnsafeMutablePointer<xdp_md>.allocate(capacity: 1)
        defer { context.deallocate() }
        context.initialize(to: xdp_md())
        context.pointee.data_end = UInt32(frameLength)
        context.pointee.ingress_ifindex = UInt32(ifindex)
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        opts.data_in = UnsafeRawPointer(templates)
        opts.data_size_in = UInt32(frameLength)
        opts.ctx_in = UnsafeRawPointer(context)
        opts.ctx_size_in = UInt32(MemoryLayout<xdp_md>.size)
        opts.repeat = Int32(Self.liveRepeat)
        opts.flags = UInt32(BPF_F_TEST_XDP_LIVE_FRAMES)
        opts.batch_size = 64
        while !stopRequested.load(ordering: .relaxed) {
            let rc = bpf_prog_test_run_opts(program, &opts)
            if rc == -EINTR { continue }
            guard rc == 0 else {
                throw LabError("sending XDP live frames on \(interface) in \(namespace) (BPF_PROG_RUN): \(String(cString: strerror(-rc)))")
            }
            sentFrames.wrappingAdd(UInt64(Self.liveRepeat), ordering: .relaxed)
        }
    }

    private func send(_ port: XDPPort) {
        let templates = self.templates, length = frameLength, mask = frameCount - 1
        var next = 0
        var before = port.counters.txPackets
        while !stopRequested.load(ordering: .relaxed) {
            for _ in 0..<64 {
                let source = templates + (next & mask) * length
                let queued = port.transmit { buffer in
                    buffer.baseAddress!.copyMemory(from: source, byteCount: length)
                    return length
                }
                if !queued { break }
                next &+= 1
            }
            port.flush()
            let after = port.counters.txPackets
            sentFrames.wrappingAdd(after &- before, ordering: .relaxed)
            before = after
        }
    }

    /// Interrupts a BPF_PROG_RUN in progress (the signal's handler does nothing).
    static let wakeSignal = SIGUSR2
    private static let installWakeHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        sigaction(TrafficGenerator.wakeSignal, &action, nil)
    }()

    func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        // Under the lock: the thread clears `pthread` (under it) before it ends.
        lock.lock()
        if let pthread { pthread_kill(pthread, Self.wakeSignal) }
        lock.unlock()
    }

    /// Stops sending and waits until the thread has closed what it opened. Idempotent.
    func stop() {
        requestStop()
        lock.lock()
        let wait = started && !joined
        joined = true
        lock.unlock()
        if wait { finished.wait() }
    }
}

// MARK: - sink

/// The sink: `RawBPF.dropAllButARP` on the sink's interface (tcx ingress,
/// a BPF link: closing it detaches the program, also if we crash), and
/// the interface's rx_packets.
final class SinkTap: @unchecked Sendable {
    let namespace: String
    let interface: String
    private var programFD: Int32 = -1
    private var linkFD: Int32 = -1
    private let counters: InterfaceCounters

    init(namespace: String, interface: String) throws {
        self.namespace = namespace
        self.interface = interface
        counters = try InterfaceCounters(namespace: namespace, interface: interface)
        do {
            let program = try RawBPF.load(BPF_PROG_TYPE_SCHED_CLS, name: "wl_sink", RawBPF.dropAllButARP,
                                          expectedAttachType: RawBPF.tcxIngress)
            programFD = program
            try NetworkNamespace.run(namespace) {
                let ifindex = Int32(bitPattern: if_nametoindex(interface))
                guard ifindex > 0 else { throw LabError("no interface \(interface) in \(namespace)") }
                var opts = bpf_link_create_opts()
                opts.sz = MemoryLayout<bpf_link_create_opts>.size
                let link = bpf_link_create(program, ifindex, bpf_attach_type(rawValue: RawBPF.tcxIngress), &opts)
                guard link >= 0 else {
                    throw LabError("attaching the sink's tcx program to \(interface) in \(namespace) (bpf_link_create): \(String(cString: strerror(-link)))")
                }
                linkFD = link
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// rx_packets of the interface.
    func receivedFrames() throws -> UInt64 { try counters.read().rxPackets }

    /// Detaches the program (closing the link) and closes everything. Idempotent.
    func close() {
        if linkFD >= 0 { Glibc.close(linkFD); linkFD = -1 }
        if programFD >= 0 { Glibc.close(programFD); programFD = -1 }
        counters.close()
    }
}

/// One interface's counters from /proc/net/dev of its namespace: the file
/// is opened by a thread inside the namespace and shows that namespace's
/// interfaces for as long as it is open, so reading it costs no thread.
final class InterfaceCounters: @unchecked Sendable {
    struct Values {
        var rxPackets: UInt64
        var rxDropped: UInt64
        var txPackets: UInt64
        var txDropped: UInt64
        /// What a sender handed to this veth: frames its peer took plus frames its peer's full queue refused.
        var offered: UInt64 { txPackets &+ txDropped }
    }

    let namespace: String
    let interface: String
    private var fd: Int32 = -1

    init(namespace: String, interface: String) throws {
        self.namespace = namespace
        self.interface = interface
        fd = try NetworkNamespace.run(namespace) { () throws -> Int32 in
            let fd = open("/proc/thread-self/net/dev", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw LabError("opening /proc/net/dev in \(namespace): \(String(cString: strerror(errno)))") }
            return fd
        }
        do { _ = try read() } catch { close(); throw error }
    }

    deinit { close() }

    func read() throws -> Values {
        var buffer = [UInt8](repeating: 0, count: 16384)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw LabError("reading /proc/net/dev of \(namespace): \(String(cString: strerror(errno)))") }
        for line in String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == interface else { continue }
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop …
            let f = parts[1].split(separator: " ").map { UInt64($0) ?? 0 }
            guard f.count >= 12 else { break }
            return Values(rxPackets: f[1], rxDropped: f[3], txPackets: f[9], txDropped: f[11])
        }
        throw LabError("no \(interface) in /proc/net/dev of \(namespace)")
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}

// MARK: - malloc counter

/// Counts a process's malloc-family calls: a small C library compiled at
/// benchmark time and preloaded into the daemon (LD_PRELOAD). It forwards
/// to glibc's `__libc_*` entry points (no dlsym, so no bootstrap
/// recursion) and adds one to a counter in a file both processes map.
final class MallocCounter: @unchecked Sendable {
    static let source = #"""
        // wirelab bench forward: count malloc-family calls into a shared file.
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <stdint.h>
        #include <stdlib.h>
        #include <sys/mman.h>
        #include <unistd.h>
        extern void *__libc_malloc(size_t);
        extern void *__libc_calloc(size_t, size_t);
        extern void *__libc_realloc(void *, size_t);
        extern void *__libc_memalign(size_t, size_t);
        static uint64_t *volatile counts;
        __attribute__((constructor)) static void wl_count_init(void) {
            const char *path = getenv("WIRELAB_MALLOC_COUNTS");
            if (!path) return;
            int fd = open(path, O_RDWR | O_CLOEXEC);
            if (fd < 0) return;
            void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
            if (p != MAP_FAILED) counts = p;
        }
        static inline void bump(void) { uint64_t *c = counts; if (c) __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }
        void *malloc(size_t n) { bump(); return __libc_malloc(n); }
        void *calloc(size_t a, size_t b) { bump(); return __libc_calloc(a, b); }
        void *realloc(void *p, size_t n) { bump(); return __libc_realloc(p, n); }
        void *memalign(size_t a, size_t n) { bump(); return __libc_memalign(a, n); }
        void *aligned_alloc(size_t a, size_t n) { bump(); return __libc_memalign(a, n); }
        void *valloc(size_t n) { bump(); return __libc_memalign(4096, n); }
        int posix_memalign(void **out, size_t a, size_t n) {
            bump();
            if (a < sizeof(void *) || (a & (a - 1))) return EINVAL;
            void *p = __libc_memalign(a, n);
            if (!p) return ENOMEM;
            *out = p;
            return 0;
        }
        """#

    let library: String
    let countsPath: String
    let compiler: String
    private let counts: UnsafeMutablePointer<UInt64>

    init(directory: String) throws {
        let sourcePath = directory + "/malloc-count.c"
        library = directory + "/malloc-count.so"
        countsPath = directory + "/malloc-counts"
        try Self.source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
        guard let compiler = ["cc", "gcc", "clang"].first(where: { Self.which($0) != nil }).flatMap(Self.which) else {
            throw LabError("no C compiler (cc, gcc, clang) on PATH")
        }
        self.compiler = compiler
        let process = Process()
        process.executableURL = URL(fileURLWithPath: compiler)
        process.arguments = ["-O2", "-shared", "-fPIC", "-o", library, sourcePath]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LabError("\(compiler) malloc-count.c failed: \(String(decoding: message, as: UTF8.self))")
        }
        let fd = open(countsPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0, ftruncate(fd, 4096) == 0 else { throw LabError("creating \(countsPath): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        guard let p = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw LabError("mapping \(countsPath): \(String(cString: strerror(errno)))")
        }
        counts = p.assumingMemoryBound(to: UInt64.self)
    }

    deinit { munmap(counts, 4096) }

    /// Malloc-family calls counted so far (by every process that loaded
    /// the library: only the daemon is started with it).
    var value: UInt64 { UnsafeRawPointer(counts).load(as: UInt64.self) }

    /// The next process we start (the lab's daemon) loads the counter.
    func setEnvironment() {
        setenv("LD_PRELOAD", library, 1)
        setenv("WIRELAB_MALLOC_COUNTS", countsPath, 1)
    }

    static func unsetEnvironment() {
        unsetenv("LD_PRELOAD")
        unsetenv("WIRELAB_MALLOC_COUNTS")
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }
}
