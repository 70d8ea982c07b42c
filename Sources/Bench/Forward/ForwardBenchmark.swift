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
// - Generator: the fastest method this host allows (TrafficGenerator.swift:
//   each is probed with one frame, the allowed ones timed alone on a
//   gen → sink lab with no forwarder, whose rate is measured again in every
//   round so a row near it is flagged generator-bound). Where allowed, the
//   fastest is usually XDP "live frames" — BPF_PROG_RUN with
//   BPF_F_TEST_XDP_LIVE_FRAMES of a 23-instruction XDP program that
//   restores the frame's headers, rotates the UDP source port over the
//   flows and returns XDP_TX on gen:eth0, so the kernel hands each frame
//   to the veth peer (the forwarder's ingress) as an XDP frame, the way a
//   NIC driver would, from one thread of this process in the gen namespace
//   (6–12 Mpps offered here; what the ingress queue refuses is dropped
//   there, on the generator's CPU). Some hosts refuse it (EPERM); there the
//   AF_XDP socket or the AF_PACKET transmit ring (2–3 Mpps alone here) can
//   come near the kernel's forwarding rate, and the generator-bound flag
//   says when a row measured the generator rather than the forwarder.
// - Sink: a 5-instruction tcx (TC ingress) program on sink:eth0 drops all
//   but ARP (the router resolves the sink); frames are counted by the sink
//   veth's rx_packets (/proc/net/dev in the sink namespace). veth counts a
//   frame there whichever way it arrived (an skb from the bridge, from IP
//   forwarding, from an AF_PACKET or an AF_XDP send), before tc sees it, so
//   one counter is right for every case; frames a full queue dropped before
//   the sink are not counted. (Not an XDP drop program: veth's XDP copies
//   every skb with less than 256 bytes of headroom, which hits the AF_XDP
//   sends and not the bridge's — an unequal sink.)
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
//     queue, on the generator's CPU: at the daemon's priority it starves
//     the daemon (receive livelock: 0.23–0.25× its best, `--offered`), so
//     by default it runs below it (nice 19), as a deployment that threads
//     its NAPI must run it; `--ingress-nice` sets another value.
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
// - Rows beyond the switch and the router: `router-ecmp` (two next hops;
//   the kernel's peer a multipath route), the director in each mode
//   (nftables DNAT, DNAT+SNAT for FULLNAT, an ipip route for TUN where the
//   kernel has the module), and the path's two ceilings in place of our
//   daemon, beside ip_forward: `xdp-redirect` (an XDP program that rewrites
//   the MACs and redirects, never leaving the kernel) and `afxdp-c`
//   (Benchmarks/CAFXDPForwarder: one thread, copy-mode AF_XDP, shared UMEM;
//   the practical limit of any userspace forwarder on this path).
// - `--offered`: after its full-rate run, ours is measured again with the
//   generator paced (afxdp or afpacket-ring: live frames cannot be paced)
//   at each rate; the report gives the best ours delivered and what it kept
//   at full rate (receive livelock: below 0.8×).
// - Mallocs: when a C compiler is present, the lab's malloc counter
//   (Benchmarks/CMallocCounter/malloc_counter.c, the one wire-bench links)
//   is compiled at benchmark time into an LD_PRELOAD library that counts
//   every malloc-family call of the daemon into a shared file; the count
//   over the measured window is reported beside the packets forwarded in it.
import Lab
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
        /// Our router with an ECMP route over two next hops; the kernel's
        /// peer is a multipath route hashing the same five fields.
        case routerECMP = "router-ecmp"
        /// Our director, one UDP service in NAT or DR mode; the kernel's
        /// peer for both is nftables DNAT (the kernel has no IPVS).
        case directorNAT = "director-nat", directorDR = "director-dr"
        /// FULLNAT: the kernel's peer is nftables DNAT plus SNAT to the
        /// same local address.
        case directorFULLNAT = "director-fullnat"
        /// TUN: the kernel's peer is a route into an `ipip` tunnel device,
        /// where the kernel has the module (this one does not: no peer).
        case directorTUN = "director-tun"
        /// The path's two ceilings, in place of our daemon, beside kernel
        /// ip_forward: an in-kernel XDP_REDIRECT (`wl_redirect`), and the
        /// minimal C AF_XDP forwarder (Benchmarks/CAFXDPForwarder).
        case xdpRedirect = "xdp-redirect", afxdpC = "afxdp-c"

        /// In lab names.
        var shortName: String {
            switch self {
            case .switch: return "sw"
            case .router: return "r"
            case .routerECMP: return "ecmp"
            case .directorNAT: return "nat"
            case .directorDR: return "dr"
            case .directorFULLNAT: return "fnat"
            case .directorTUN: return "tun"
            case .xdpRedirect: return "xr"
            case .afxdpC: return "xc"
            }
        }

        var isDirector: Bool { [.directorNAT, .directorDR, .directorFULLNAT, .directorTUN].contains(self) }
        /// A ceiling forwards in place of our daemon; its rows have no port kind of ours.
        var isCeiling: Bool { self == .xdpRedirect || self == .afxdpC }

        /// The director's mode in the topology file.
        var mode: String {
            switch self {
            case .directorNAT: return "nat"
            case .directorDR: return "dr"
            case .directorFULLNAT: return "fullnat"
            default: return "tun"
            }
        }
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
        /// nil: the fastest method this host allows (each is probed with one
        /// frame, then the allowed ones are timed on the generator's path).
        public var generator: TrafficGenerator.Method?
        public var elements: [Element] = [.switch, .router]
        public var datapaths: [DatapathKind] = [.afxdp, .afpacket]
        public var placements: [PlacementMode] = [.forwarder]
        /// Nice value of the ingress NAPI thread (`forwarder` placement):
        /// below the daemon, which it would otherwise starve under overload.
        public var ingressNice: Int32 = 19
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
        /// Offered rates (packets per second) at which our forwarder is also
        /// measured, paced (`afxdp` or `afpacket-ring`), after its run at
        /// the generator's full rate: the receive-livelock sweep. Empty: none.
        public var offered: [Double] = []
        /// Our forwarder with the fast path (`fastpath: true`; AF_XDP only).
        public var fastPath = false
        public init() {}
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
    private var generatorLab: GeneratorLab?
    /// The fastest allowed generator that can be paced (for `offered`).
    private var pacedMethod: TrafficGenerator.Method?
    private var pacedMethodMissing: String?

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
        // Whatever fails (a forced generator refused, a lab that would not
        // come up), nothing the benchmark made stays behind.
        do { return try measureAll() } catch {
            cleanUp()
            throw error
        }
    }

    private func measureAll() throws -> Report {
        let labs = options.elements.flatMap { e in options.datapaths.map { Self.labName(e, $0, prefix: options.labPrefix) } }
            + [Self.generatorLabName(prefix: options.labPrefix)]
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
                      nice: options.nice, ingressNice: options.ingressNice)
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
                mallocText = "LD_PRELOAD counter (\(MallocCounterSource.path), compiled by \(counter!.compiler) at benchmark time) on the daemon: malloc, calloc, realloc, memalign, aligned_alloc, posix_memalign, valloc, pvalloc, counted over the measured window"
            } catch {
                mallocText = "not measured: \(error)"
                progress("mallocs will not be counted: \(error)")
            }
        }

        // The generator's own path (gen → sink, no forwarder) stays up for
        // the whole run: probes, the choice, and its rate in every round.
        let generatorLab = try upGeneratorLab()
        let (method, probes) = try chooseGenerator(generatorLab, placement: placements[0])
        if !options.offered.isEmpty {
            let paceable = probes.filter { $0.allowed && $0.method != .xdpLive }
            pacedMethod = paceable.max { ($0.packetsPerSecond ?? 0) < ($1.packetsPerSecond ?? 0) }?.method
            if pacedMethod == nil {
                pacedMethodMissing = "no generator that can be paced (afxdp, afpacket-ring) is allowed here"
                notes.append("--offered: \(pacedMethodMissing!); no sweep")
            }
        }

        // A ceiling has no port kind of ours: one row each, on the AF_XDP side.
        let cases = placements.flatMap { p in
            options.elements.flatMap { e in (e.isCeiling ? [.afxdp] : options.datapaths).map { (p, e, $0) } }
        }
        var ours = [[Measurement]](repeating: [], count: cases.count)
        var kernel = ours
        var noKernelPeer = [String?](repeating: nil, count: cases.count)
        var failures = [[String]](repeating: [], count: cases.count)
        var alone = [[Measurement]](repeating: [], count: placements.count)
        var aloneFailures = [[String]](repeating: [], count: placements.count)
        for round in 1...options.rounds {
            for (i, placement) in placements.enumerated() {
                try checkpoint()
                progress("round \(round)/\(options.rounds): the generator alone (gen → sink, no forwarder), placement \(placement.mode.rawValue)")
                do {
                    alone[i].append(try measureGeneratorAlone(generatorLab, method: method, placement: placement))
                } catch {
                    if isCancelled { throw Cancelled() }
                    progress("the generator alone failed: \(error)")
                    aloneFailures[i].append("round \(round), the generator alone: \(error)")
                }
            }
            for (i, c) in cases.enumerated() {
                if options.rounds > 1 || placements.count > 1 {
                    progress("round \(round)/\(options.rounds), placement \(c.0.mode.rawValue)")
                }
                do {
                    try checkpoint()
                    let (o, k, none) = try measureLab(c.1, c.2, placement: c.0, method: method, counter: counter)
                    ours[i].append(o)
                    if let k { kernel[i].append(k) }
                    noKernelPeer[i] = none
                } catch {
                    if !isCancelled { usleep(50_000) }
                    if isCancelled {
                        progress("interrupted; removing what the benchmark made")
                        cleanUp()
                        throw Cancelled()
                    }
                    progress("failed: \(error); removing this case's lab")
                    cleanUpCase()
                    // One case failing (say, a forwarder starved to zero
                    // under overload) must not lose the others' hours:
                    // it is reported in its row, and the command exits 1.
                    failures[i].append(options.rounds > 1 ? "round \(round): \(error)" : "\(error)")
                }
            }
        }

        try downGeneratorLab()
        let rows = cases.enumerated().map { i, c in
            Row(element: c.1, datapath: c.2.rawValue, placement: c.0.mode,
                lab: Self.labName(c.1, c.2, prefix: options.labPrefix), ours: ours[i], kernel: kernel[i],
                generatorAlone: alone[placements.firstIndex { $0.mode == c.0.mode }!],
                failures: failures[i] + aloneFailures[placements.firstIndex { $0.mode == c.0.mode }!],
                noKernelPeer: noKernelPeer[i])
        }
        let bytes = options.frameSize - 4
        return Report(
            date: Date(), seconds: options.seconds, warmupSeconds: options.warmup, rounds: options.rounds,
            frameSize: options.frameSize,
            bytesOnVeth: bytes, flows: options.flows, fastPath: options.fastPath,
            generator: "\(method.rawValue): \(method.summary), \(options.flows) flows, on gen:eth0, one thread"
                + (placements.first?.generator.map { " on CPU \($0)" } ?? ""),
            generatorMethod: method.rawValue,
            generatorChoice: Self.choiceText(method, probes: probes, forced: options.generator != nil),
            generatorProbes: probes,
            sinkCounter: "tcx ingress program on sink:eth0 drops all but ARP; counted: rx_packets of sink:eth0 (/proc/net/dev in the sink namespace)",
            placements: Dictionary(uniqueKeysWithValues: placements.map { ($0.mode.rawValue, $0.description) }),
            kernelSetup: Dictionary(uniqueKeysWithValues: options.elements.map { ($0.rawValue, Self.kernelSetup($0)) }),
            mallocCounter: mallocText, rows: rows,
            machine: .init(cpus: ProcessInfo.processInfo.activeProcessorCount, model: Self.cpuModel(),
                           kernel: Self.kernelRelease(), loadBefore: loadBefore, loadAfter: Self.loadAverage()),
            notes: notes)
    }

    /// Removes whatever the benchmark made (best effort, never throws).
    public func cleanUp() {
        cleanUpCase()
        lock.lock()
        let generatorLab = self.generatorLab
        self.generatorLab = nil
        lock.unlock()
        generatorLab?.sink.close()
        if let generatorLab { removeLab(generatorLab.name) }
    }

    /// Removes the case being measured (its lab, generator and sink), not
    /// the generator's own lab, which the other cases still use.
    private func cleanUpCase() {
        lock.lock()
        let generator = self.generator, sink = self.sink, lab = currentLab
        self.generator = nil
        self.sink = nil
        currentLab = nil
        lock.unlock()
        generator?.stop()
        sink?.close()
        MallocCounter.unsetEnvironment()
        if let lab { removeLab(lab) }
    }

    private func removeLab(_ lab: String) {
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
    static let nodeNames = ["gen", "sw", "r", "lb", "fwd", "sink"]

    static func layout(_ element: Element, lab: String, datapath: DatapathKind, fastPath: Bool = false) -> LabLayout {
        switch element {
        case .switch:
            return LabLayout(topologyYAML: """
                name: \(lab)
                defaults: { datapath: \(datapath.rawValue), capture: false, fastpath: \(fastPath) }
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
            return routedLayout(lab: lab, datapath: datapath, fastPath: fastPath, forwarder: "r", node: """
                  r:
                    kind: router
                    interfaces:
                      eth0: { ip: 10.77.1.1/24 }
                      eth1: { ip: 10.77.2.1/24 }
                """, destination: IPv4Address(10, 77, 2, 2))
        case .routerECMP:
            // 10.77.3.0/24 lies behind the sink, reached over two next hops
            // (the sink's two addresses): every frame goes to the sink,
            // each flow by its hash.
            let layout = routedLayout(lab: lab, datapath: datapath, fastPath: fastPath, forwarder: "r", node: """
                  r:
                    kind: router
                    interfaces:
                      eth0: { ip: 10.77.1.1/24 }
                      eth1: { ip: 10.77.2.1/24 }
                    routes: [ { to: 10.77.3.0/24, via: [ 10.77.2.2, \(Self.secondNextHop) ] } ]
                """, destination: IPv4Address(10, 77, 3, 2), sinkAddresses: "[ 10.77.2.2/24, \(Self.secondNextHop)/24 ]")
            return layout
        case .directorNAT, .directorDR, .directorFULLNAT, .directorTUN:
            // One UDP service on the generator's subnet; its one real is the
            // sink, behind the director's second interface (DR only needs the
            // real on a connected subnet; the lab puts the VIP on its lo, and
            // for TUN the IPIP decapsulation on the sink's interface).
            var layout = routedLayout(lab: lab, datapath: datapath, fastPath: fastPath, forwarder: "lb", node: """
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
                        mode: \(element.mode)
                \(element == .directorFULLNAT ? "        local-addresses: [ \(Self.fullnatLocalAddress) ]\n" : "")\
                        reals: [ { ip: 10.77.2.2, port: 9 } ]
                """, destination: IPv4Address(10, 77, 1, 100))
            layout.dnatFrom = IPv4Address(10, 77, 1, 100)
            return layout
        case .xdpRedirect, .afxdpC:
            // The forwarder is a kernel host: no daemon; the ceiling
            // forwards on its veths, then its own IP forwarding does.
            return routedLayout(lab: lab, datapath: datapath, fastPath: fastPath, forwarder: "fwd", node: """
                  fwd:
                    kind: host
                    interfaces:
                      eth0: { ip: 10.77.1.1/24 }
                      eth1: { ip: 10.77.2.1/24 }
                """, destination: IPv4Address(10, 77, 2, 2))
        }
    }

    /// The ECMP row's second next hop, the sink's second address.
    static let secondNextHop = IPv4Address(10, 77, 2, 3)
    /// The FULLNAT row's local address (ours and the kernel's SNAT).
    static let fullnatLocalAddress = IPv4Address(10, 77, 2, 50)

    /// gen (10.77.1.2) ── eth0 FORWARDER eth1 ── sink (10.77.2.2), the
    /// forwarder at .1 on both subnets and each host's default route
    /// through it; `node` is the forwarder's entry under `nodes:`.
    static func routedLayout(lab: String, datapath: DatapathKind, fastPath: Bool, forwarder: String, node: String,
                             destination: IPv4Address, sinkAddresses: String = "10.77.2.2/24") -> LabLayout {
        LabLayout(topologyYAML: """
            name: \(lab)
            defaults: { datapath: \(datapath.rawValue), capture: false, fastpath: \(fastPath) }
            nodes:
              gen:
                kind: host
                interfaces: { eth0: { ip: 10.77.1.2/24 } }
                routes: [ "default via 10.77.1.1" ]
            \(node)
              sink:
                kind: host
                interfaces: { eth0: { ip: \(sinkAddresses) } }
                routes: [ "default via 10.77.2.1" ]
            links:
              - [ gen:eth0, \(forwarder):eth0 ]
              - [ \(forwarder):eth1, sink:eth0 ]
            """, forwarderNode: forwarder, ingress: "eth0", egress: "eth1",
            sourceIP: IPv4Address(10, 77, 1, 2), destinationIP: destination,
            forwarderAddresses: [("eth0", "10.77.1.1/24"), ("eth1", "10.77.2.1/24")])
    }

    /// Ours (our daemon, or a ceiling in its place) then the kernel's peer
    /// in the same namespaces; the kernel's side is nil when this kernel has
    /// no peer for the element (with why).
    private func measureLab(_ element: Element, _ datapath: DatapathKind, placement: Placement,
                            method: TrafficGenerator.Method,
                            counter: MallocCounter?) throws -> (ours: Measurement, kernel: Measurement?, noKernelPeer: String?) {
        let lab = Self.labName(element, datapath, prefix: options.labPrefix)
        let layout = Self.layout(element, lab: lab, datapath: datapath, fastPath: options.fastPath)
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
        let egressMAC = try mac(layout.forwarderNode, layout.egress)
        let firstHop = element == .switch ? sinkMAC : try mac(layout.forwarderNode, layout.ingress)
        let frames = Self.frames(source: genMAC, destination: firstHop, sourceIP: layout.sourceIP,
                                 destinationIP: layout.destinationIP, frameSize: options.frameSize, flows: options.flows)

        progress("\(element.rawValue)/\(datapath.rawValue): up lab \(lab) …")
        lock.lock(); currentLab = lab; lock.unlock()
        try checkpoint()
        let mallocsBeforeUp = counter?.value ?? 0
        if let counter, !element.isCeiling { counter.setEnvironment() }
        defer { MallocCounter.unsetEnvironment() }
        _ = try deployer.up(topology)
        MallocCounter.unsetEnvironment()
        try checkpoint()

        // XDP frames from the generator need NAPI on the ingress veth (and,
        // redirected by XDP into the egress veth, on the sink's).
        let ethtool = try Ethtool(namespace: fwdNS)
        defer { ethtool.close() }
        try ethtool.setOffload(.genericReceive, true, interface: layout.ingress)
        if element == .xdpRedirect {
            let sinkEthtool = try Ethtool(namespace: sinkNS)
            defer { sinkEthtool.close() }
            try sinkEthtool.setOffload(.genericReceive, true, interface: "eth0")
        }
        let sink = try SinkTap(namespace: sinkNS, interface: "eth0")
        lock.lock(); self.sink = sink; lock.unlock()

        let ours: Measurement
        if element.isCeiling {
            ours = try measureCeiling(element, method: method, genNS: genNS, fwdNS: fwdNS, layout: layout, frames: frames,
                                      sink: sink, placement: placement, sinkMAC: sinkMAC, egressMAC: egressMAC)
        } else {
            ours = try measureDaemon(element, datapath, lab: lab, method: method, genNS: genNS, fwdNS: fwdNS, sinkNS: sinkNS,
                                     layout: layout, frames: frames, sink: sink, placement: placement, counter: counter,
                                     mallocsBeforeUp: mallocsBeforeUp, sinkMAC: sinkMAC, genMAC: genMAC)
        }

        // The kernel's peer, in the same namespaces.
        progress("\(element.rawValue)/\(datapath.rawValue): the kernel forwards now")
        var kernel: Measurement?
        let noPeer = try makeKernelPeer(element, namespace: fwdNS, sinkNS: sinkNS, layout: layout, sinkMAC: sinkMAC, genMAC: genMAC)
        if noPeer == nil {
            let kernelIngress = try placeIngress(placement, namespace: fwdNS, interface: layout.ingress)
            kernel = try measure(Self.kernelPeerName(element), method: method, generatorNamespace: genNS, frames: frames, sink: sink,
                                 placement: placement, ingressThreads: kernelIngress, daemon: nil)
        } else {
            progress("\(element.rawValue): no kernel peer here: \(noPeer!)")
        }

        lock.lock(); self.sink = nil; lock.unlock()
        sink.close()
        progress("\(element.rawValue)/\(datapath.rawValue): down lab \(lab)")
        try deployer.down(lab: lab)
        lock.lock(); currentLab = nil; lock.unlock()
        if let kernel {
            let ratio = kernel.packetsPerSecond > 0 ? ours.packetsPerSecond / kernel.packetsPerSecond : 0
            progress(String(format: "%@/%@: ours %.3f Mpps, %@ %.3f Mpps (%.2f×; not a result if the row is generator-bound)",
                            element.rawValue, datapath.rawValue,
                            ours.packetsPerSecond / 1e6, kernel.forwarder, kernel.packetsPerSecond / 1e6, ratio))
        }
        return (ours, kernel, noPeer)
    }

    /// Our daemon, started by `up`, measured; then stopped.
    private func measureDaemon(_ element: Element, _ datapath: DatapathKind, lab: String, method: TrafficGenerator.Method,
                               genNS: String, fwdNS: String, sinkNS: String, layout: LabLayout, frames: [[UInt8]],
                               sink: SinkTap, placement: Placement, counter: MallocCounter?, mallocsBeforeUp: UInt64,
                               sinkMAC: MACAddress, genMAC: MACAddress) throws -> Measurement {
        let state = try store.load(lab: lab)
        guard let daemon = state.processes.first(where: { $0.role == "daemon" }) else {
            throw LabError("lab \(lab) has no data-plane daemon")
        }
        try Self.place(allThreadsOf: daemon.pid, cpu: placement.forwarder, nice: placement.nice)
        let ingress = try placeIngress(placement, namespace: fwdNS, interface: layout.ingress)
        let name = "wirelab \(element.rawValue) (\(datapath == .afxdp ? "AF_XDP" : "AF_PACKET"))"
        if element == .switch { try Self.sendLearningFrame(namespace: sinkNS, from: sinkMAC, to: genMAC, layout: layout) }
        let control = ControlClient(path: store.controlSocketPath(lab: lab))
        // A row may say "0 mallocs" only if the counter is in the daemon.
        var loadedCounter: MallocCounter?
        var counterMissing: String?
        if let counter {
            switch counter.check(loadedInto: daemon.pid, countedSince: mallocsBeforeUp) {
            case nil: loadedCounter = counter
            case let why?: counterMissing = why; progress("mallocs will not be counted: \(why)")
            }
        }
        var ours = try measure(name, method: method, generatorNamespace: genNS, frames: frames, sink: sink,
                               placement: placement, ingressThreads: ingress,
                               daemon: (control, layout.forwarderNode, loadedCounter, daemon.pid))
        ours.mallocCounterNotLoaded = counterMissing
        if let paced = pacedMethod {
            for rate in options.offered {
                var m = try measure(name, method: paced, generatorNamespace: genNS, frames: frames, sink: sink,
                                    placement: placement, ingressThreads: ingress,
                                    daemon: (control, layout.forwarderNode, nil, daemon.pid), rate: rate)
                m.pacedRate = rate
                ours.sweep = (ours.sweep ?? []) + [m]
            }
        }
        progress("\(element.rawValue)/\(datapath.rawValue): stopping the daemon")
        ProcessIdentity.stop(daemon, grace: 10)
        var status: Int32 = 0
        _ = waitpid(daemon.pid, &status, WNOHANG)
        return ours
    }

    /// A ceiling forwarding in the forwarder namespace in place of our
    /// daemon, measured; then removed (the namespace is a plain kernel host again).
    private func measureCeiling(_ element: Element, method: TrafficGenerator.Method, genNS: String, fwdNS: String,
                                layout: LabLayout, frames: [[UInt8]], sink: SinkTap, placement: Placement,
                                sinkMAC: MACAddress, egressMAC: MACAddress) throws -> Measurement {
        let ingress = try placeIngress(placement, namespace: fwdNS, interface: layout.ingress)
        if element == .xdpRedirect {
            let redirect = try RedirectCeiling(namespace: fwdNS, ingress: layout.ingress, egress: layout.egress,
                                               destination: sinkMAC, source: egressMAC)
            defer { redirect.close() }
            return try measure("XDP_REDIRECT (wl_redirect)", method: method, generatorNamespace: genNS, frames: frames, sink: sink,
                               placement: placement, ingressThreads: ingress, daemon: nil)
        }
        let forwarder = try CForwarderCeiling(directory: workDirectory, namespace: fwdNS, ingress: layout.ingress,
                                              egress: layout.egress, destination: sinkMAC, source: egressMAC)
        do {
            try Self.place(allThreadsOf: forwarder.pid, cpu: placement.forwarder, nice: placement.nice)
            let m = try measure("C AF_XDP forwarder", method: method, generatorNamespace: genNS, frames: frames, sink: sink,
                                placement: placement, ingressThreads: ingress, daemon: nil)
            progress("the C AF_XDP forwarder: \(forwarder.stop())")
            return m
        } catch {
            progress("the C AF_XDP forwarder: \(forwarder.stop())")
            throw error
        }
    }

    static func kernelPeerName(_ element: Element) -> String {
        switch element {
        case .switch: return "Linux bridge"
        case .router, .xdpRedirect, .afxdpC: return "kernel ip_forward"
        case .routerECMP: return "kernel multipath"
        case .directorNAT, .directorDR: return "nftables DNAT"
        case .directorFULLNAT: return "nftables DNAT+SNAT"
        case .directorTUN: return "kernel ipip route"
        }
    }

    /// What the kernel's peer of each element is (the report's `kernelSetup`).
    static func kernelSetup(_ element: Element) -> String {
        switch element {
        case .switch: return "Linux bridge br0 enslaving both veths in the same forwarder namespace (STP off, bridge-nf-call-* 0), sink MAC learned from one frame"
        case .router: return "same namespace: both addresses, net.ipv4.ip_forward=1, permanent neighbour entry for the sink"
        case .routerECMP: return "as the router, with 10.77.3.0/24 over two next hops (ip route … nexthop via … nexthop via …, fib_multipath_hash_policy=1: the five fields ours hashes), both permanent neighbours of the sink"
        case .directorNAT, .directorDR: return "as the router, plus nftables DNAT of VIP:9 to the sink (prerouting, conntrack; the kernel has no IPVS)"
        case .directorFULLNAT: return "as the router, plus nftables DNAT of VIP:9 to the sink and SNAT to the local address \(fullnatLocalAddress) (postrouting; conntrack)"
        case .directorTUN: return "as the router, plus a route of the VIP into an ipip tunnel to the sink — where the kernel has the ipip module (none here: no peer)"
        case .xdpRedirect: return "the ceiling: wl_redirect (bpf/wirelab_bench.bpf.c) on the ingress veth rewrites both MACs and bpf_redirect()s out of the egress veth (sink veth GRO on, so it takes XDP frames); beside it kernel ip_forward as for the router"
        case .afxdpC: return "the ceiling: Benchmarks/CAFXDPForwarder/afxdp_forwarder.c, compiled at benchmark time, one thread, two copy-mode AF_XDP sockets sharing one UMEM, MACs rewritten; beside it kernel ip_forward as for the router"
        }
    }

    /// Turns the forwarder namespace into the kernel's peer of ELEMENT;
    /// returns why not where this kernel has none.
    private func makeKernelPeer(_ element: Element, namespace fwdNS: String, sinkNS: String, layout: LabLayout,
                                sinkMAC: MACAddress, genMAC: MACAddress) throws -> String? {
        let sinkIP = IPv4Address(10, 77, 2, 2)
        switch element {
        case .switch:
            try Self.makeBridge(namespace: fwdNS, ports: [layout.ingress, layout.egress])
            try Self.sendLearningFrame(namespace: sinkNS, from: sinkMAC, to: genMAC, layout: layout)
        case .router:
            try Self.makeKernelRouter(namespace: fwdNS, addresses: layout.forwarderAddresses,
                                      neighbour: (layout.destinationIP, sinkMAC, layout.egress))
        case .xdpRedirect, .afxdpC:
            // A kernel host already has its addresses.
            try Self.makeKernelRouter(namespace: fwdNS, addresses: [], neighbour: (layout.destinationIP, sinkMAC, layout.egress))
        case .routerECMP:
            try Self.makeKernelRouter(namespace: fwdNS, addresses: layout.forwarderAddresses, neighbour: (sinkIP, sinkMAC, layout.egress))
            try Self.ip(["neigh", "replace", "\(Self.secondNextHop)", "lladdr", "\(sinkMAC)", "dev", layout.egress, "nud", "permanent"],
                        namespace: fwdNS)
            try Sysctl.write("net/ipv4/fib_multipath_hash_policy", "1", namespace: fwdNS)
            try Self.ip(["route", "add", "10.77.3.0/24", "nexthop", "via", "\(sinkIP)", "nexthop", "via", "\(Self.secondNextHop)"],
                        namespace: fwdNS)
        case .directorNAT, .directorDR, .directorFULLNAT:
            try Self.makeKernelRouter(namespace: fwdNS, addresses: layout.forwarderAddresses,
                                      neighbour: (sinkIP, sinkMAC, layout.egress))
            try makeDNAT(namespace: fwdNS, from: layout.dnatFrom!, port: 9, to: sinkIP,
                         snat: element == .directorFULLNAT ? Self.fullnatLocalAddress : nil)
        case .directorTUN:
            let probe = try NamespaceProcess.run(["ip", "link", "add", "wlbtun", "type", "ipip", "local", "10.77.2.1",
                                                  "remote", "\(sinkIP)"], namespace: fwdNS)
            guard probe.status.isSuccess else {
                return "this kernel cannot make an ipip device (\(probe.standardError.trimmingCharacters(in: .whitespacesAndNewlines)))"
            }
            try Self.makeKernelRouter(namespace: fwdNS, addresses: layout.forwarderAddresses,
                                      neighbour: (sinkIP, sinkMAC, layout.egress))
            try Self.ip(["link", "set", "wlbtun", "up"], namespace: fwdNS)
            try Self.ip(["route", "add", "\(layout.dnatFrom!)/32", "dev", "wlbtun"], namespace: fwdNS)
        }
        return nil
    }

    /// Runs the generator for warm-up + `seconds` and counts at the sink.
    private func measure(_ name: String, method: TrafficGenerator.Method, generatorNamespace: String, frames: [[UInt8]],
                         sink: SinkTap, warmup: Double? = nil, seconds: Double? = nil,
                         placement: Placement, ingressThreads: [pid_t],
                         daemon: (control: ControlClient, node: String, counter: MallocCounter?, pid: pid_t)?,
                         rate: Double? = nil) throws -> Measurement {
        let warmup = warmup ?? options.warmup, window = seconds ?? options.seconds
        let generator = TrafficGenerator(method: method, namespace: generatorNamespace, interface: "eth0",
                                         frames: frames, cpu: placement.generator, nice: placement.nice, rate: rate)
        lock.lock(); self.generator = generator; lock.unlock()
        defer {
            generator.stop()
            lock.lock(); self.generator = nil; lock.unlock()
        }
        try checkpoint()
        try generator.start()
        progress("\(name): warming up \(Report.number(warmup)) s …")
        let offered = try InterfaceCounters(namespace: generatorNamespace, interface: "eth0")
        let warmupStart = try sink.receivedFrames()
        try sleep(warmup)
        if let error = generator.failure { throw error }
        if warmup > 0, try sink.receivedFrames() == warmupStart {
            throw LabError("\(name): no frame reached the sink in \(Report.number(warmup)) s of warm-up (gen:eth0 sent \(try offered.read().offered))")
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
            if elapsed >= window - 1e-3 { break }
            try sleep(min(1, window - elapsed))
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
            if let a = after.fastPath, let b = before.fastPath {
                counters["fast-path-forwarded"] = a.forwarded &- b.forwarded
                counters["fast-path-installed"] = a.installed &- b.installed
            }
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

    // MARK: the generator alone

    /// gen ──veth── sink, no forwarder: where each generator method is
    /// probed, where they are timed against each other, and where the
    /// chosen one's own rate is measured in every round, so a forwarder
    /// that only kept up with the generator is seen as such.
    struct GeneratorLab {
        var name: String
        var generatorNamespace: String
        var sinkNamespace: String
        var frames: [[UInt8]]
        var sink: SinkTap
    }

    static func generatorLabName(prefix: String) -> String { "\(prefix)-gen" }

    private func upGeneratorLab() throws -> GeneratorLab {
        let lab = Self.generatorLabName(prefix: options.labPrefix)
        let file = workDirectory + "/\(lab).yaml"
        try """
            name: \(lab)
            defaults: { datapath: afxdp, capture: false }
            nodes:
              gen:  { kind: host, interfaces: { eth0: { ip: 10.77.0.1/24 } } }
              sink: { kind: host, interfaces: { eth0: { ip: 10.77.0.2/24 } } }
            links:
              - [ gen:eth0, sink:eth0 ]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let topology = try TopologyLoader.load(path: file)
        let plan = LabPlan(topology: topology, serveCommand: [])
        guard let veth = plan.veths.first else { throw LabError("the generator's lab \(lab) has no link") }
        let genNS = LabStore.namespaceName(lab: lab, node: "gen"), sinkNS = LabStore.namespaceName(lab: lab, node: "sink")
        let (genEnd, sinkEnd) = veth.a.namespace == genNS ? (veth.a, veth.b) : (veth.b, veth.a)
        let frames = Self.frames(source: genEnd.mac, destination: sinkEnd.mac, sourceIP: IPv4Address(10, 77, 0, 1),
                                 destinationIP: IPv4Address(10, 77, 0, 2), frameSize: options.frameSize, flows: options.flows)
        progress("the generator's own path: up lab \(lab) (gen → sink, no forwarder) …")
        lock.lock(); currentLab = lab; lock.unlock()
        _ = try deployer.up(topology)
        // The sink's veth takes XDP frames only with NAPI on, as the forwarders' ingress does.
        let ethtool = try Ethtool(namespace: sinkNS)
        defer { ethtool.close() }
        try ethtool.setOffload(.genericReceive, true, interface: "eth0")
        let sink = try SinkTap(namespace: sinkNS, interface: "eth0")
        let result = GeneratorLab(name: lab, generatorNamespace: genNS, sinkNamespace: sinkNS, frames: frames, sink: sink)
        lock.lock(); currentLab = nil; generatorLab = result; lock.unlock()
        return result
    }

    private func downGeneratorLab() throws {
        lock.lock(); let lab = generatorLab; lock.unlock()
        guard let lab else { return }
        lab.sink.close()
        progress("the generator's own path: down lab \(lab.name)")
        try deployer.down(lab: lab.name)   // on failure, run()'s cleanUp still knows the lab
        lock.lock(); generatorLab = nil; lock.unlock()
    }

    /// Probes every method with one frame; with `--generator`, checks that
    /// the forced one is allowed; otherwise times each allowed method on
    /// the generator's path and takes the fastest.
    private func chooseGenerator(_ lab: GeneratorLab, placement: Placement) throws
        -> (TrafficGenerator.Method, [TrafficGenerator.ProbeResult]) {
        var probes = TrafficGenerator.Method.allCases.map { method -> TrafficGenerator.ProbeResult in
            let refused = TrafficGenerator.probe(method, namespace: lab.generatorNamespace, interface: "eth0",
                                                 frame: lab.frames[0])
            progress("generator \(method.rawValue): " + (refused.map { "refused: \($0)" } ?? "allowed (one frame sent)"))
            return .init(method: method, refused: refused)
        }
        // With the fast path the daemon holds the XDP hook of the generator's
        // interface (FastPathPeers: a pass-everything program, so the veth
        // runs NAPI and takes redirected frames), which an AF_XDP socket needs.
        if options.fastPath, let i = probes.firstIndex(where: { $0.method == .afxdp }), probes[i].allowed {
            probes[i].refused = "not with --fastpath: the lab's pass program holds gen:eth0's XDP hook"
            progress("generator afxdp: \(probes[i].refused!)")
        }
        if let forced = options.generator {
            if let refused = probes.first(where: { $0.method == forced })?.refused {
                throw LabError("--generator \(forced.rawValue) is refused on this host: \(refused); allowed here: "
                    + (probes.contains(where: \.allowed) ? probes.filter(\.allowed).map(\.method.rawValue).joined(separator: ", ") : "none"))
            }
            return (forced, probes)
        }
        let allowed = probes.indices.filter { probes[$0].allowed }
        guard !allowed.isEmpty else {
            throw LabError("no traffic generator works on this host: "
                + probes.map { "\($0.method.rawValue): \($0.refused ?? "")" }.joined(separator: "; "))
        }
        if allowed.count == 1 { return (probes[allowed[0]].method, probes) }
        for i in allowed {
            try checkpoint()
            do {
                let m = try measureGeneratorAlone(lab, method: probes[i].method, placement: placement,
                                                  warmup: min(options.warmup, 0.5), seconds: min(options.seconds, 1))
                probes[i].packetsPerSecond = m.packetsPerSecond
            } catch let cancelled as Cancelled {
                throw cancelled
            } catch {
                probes[i].refused = "sent its probe, then failed on the generator's path: \(error)"
            }
        }
        let timed = allowed.filter { probes[$0].allowed }
        guard !timed.isEmpty else {
            throw LabError("no traffic generator works on this host: "
                + probes.map { "\($0.method.rawValue): \($0.refused ?? "")" }.joined(separator: "; "))
        }
        let best = timed.max { (probes[$0].packetsPerSecond ?? 0) < (probes[$1].packetsPerSecond ?? 0) }!
        progress("generator: \(probes[best].method.rawValue), the fastest allowed here")
        return (probes[best].method, probes)
    }

    /// The sink's receive is placed as a forwarder's ingress is.
    private func measureGeneratorAlone(_ lab: GeneratorLab, method: TrafficGenerator.Method, placement: Placement,
                                       warmup: Double? = nil, seconds: Double? = nil) throws -> Measurement {
        // The lab serves every placement in turn: undo the last one's first.
        try Self.writeSysfs("/sys/class/net/eth0/threaded", "0", namespace: lab.sinkNamespace)
        try Self.writeSysfs("/sys/class/net/eth0/queues/rx-0/rps_cpus", "0", namespace: lab.sinkNamespace)
        let ingress = try placeIngress(placement, namespace: lab.sinkNamespace, interface: "eth0")
        return try measure("generator alone (\(method.rawValue))", method: method, generatorNamespace: lab.generatorNamespace,
                           frames: lab.frames, sink: lab.sink, warmup: warmup, seconds: seconds,
                           placement: placement, ingressThreads: ingress, daemon: nil)
    }

    /// Which generator was used and why, for the report.
    static func choiceText(_ method: TrafficGenerator.Method, probes: [TrafficGenerator.ProbeResult], forced: Bool) -> String {
        func rate(_ p: TrafficGenerator.ProbeResult) -> String {
            p.packetsPerSecond.map { String(format: " %.3f Mpps", $0 / 1e6) } ?? ""
        }
        let allowed = probes.filter(\.allowed), refused = probes.filter { !$0.allowed }
        var text = forced ? "\(method.rawValue), forced by --generator"
            : allowed.count == 1 ? "\(method.rawValue), the only one allowed here"
            : "\(method.rawValue), the fastest allowed here alone on the generator's path ("
                + allowed.map { "\($0.method.rawValue)\(rate($0))" }.joined(separator: ", ") + ")"
        if forced, allowed.count > 1 {
            text += "; also allowed: " + allowed.filter { $0.method != method }.map(\.method.rawValue).joined(separator: ", ")
        }
        for p in refused { text += "; \(p.method.rawValue) refused: \(p.refused ?? "")" }
        return text
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

    /// nftables DNAT of `from`:port/udp to `to`:port, in prerouting; with
    /// SNAT, the source becomes that address in postrouting (FULLNAT).
    func makeDNAT(namespace: String, from: IPv4Address, port: Int, to: IPv4Address, snat: IPv4Address? = nil) throws {
        let postrouting = snat.map { address in """
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                ip daddr \(to) udp dport \(port) snat to \(address)
              }

            """ } ?? ""
        let rules = """
            table ip wirelab_bench {
              chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                ip daddr \(from) udp dport \(port) dnat to \(to):\(port)
              }
            \(postrouting)}

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
            guard let pid = pid_t(entry), let comm = try? ProcFile.read("/proc/\(pid)/comm") else { continue }
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
                  let comm = try? ProcFile.read("/proc/\(pid)/comm"), comm.hasPrefix("napi/") else { continue }
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
        let text = (try? ProcFile.read("/proc/stat")) ?? ""
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
        guard let text = try? ProcFile.read(path),
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
        ((try? ProcFile.read("/proc/loadavg")) ?? "?")
            .split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func kernelRelease() -> String {
        var uts = utsname()
        uname(&uts)
        return withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func cpuModel() -> String {
        let text = (try? ProcFile.read("/proc/cpuinfo")) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}
