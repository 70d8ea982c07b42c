import Bench
import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Lab
import Topology

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks of wirelab beside the kernel's own tools.",
        subcommands: [BenchCI.self, BenchDeploy.self, BenchForward.self, BenchSim.self])
}

struct BenchDeploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Time `up` and `down` of a topology beside the same lab built by a script of `ip` commands.",
        discussion: """
        Each run builds and removes the lab twice: through rtnetlink as `wirelab up`/`down` do, and with the \
        `ip` script wirelab renders from the same plan (plus the same processes: built-in servers are started, \
        waited for and stopped on both sides). After every build the lab's namespaces are compared \
        (ip -j addr/route, sysctls, offloads, processes); a difference stops the benchmark. \
        The lab must not exist before; everything made is removed at the end, on failure and on Ctrl-C.
        """)

    @Argument(help: "The topology file.") var file: String
    @Option(help: "Builds per side.") var runs: Int = 5
    @Option(help: ArgumentHelp("Pause before each timed phase, so the kernel finishes freeing the last lab's namespaces.",
                               valueName: "seconds"))
    var settle: Double = 1
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var state: StateOptions

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if !(0...60).contains(settle) { throw ValidationError("--settle must be within 0...60 seconds") }
    }

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        let bench = DeployBenchmark(topology: topology, store: state.store, executable: currentExecutable(),
                                    options: .init(runs: runs, settle: settle),
                                    progress: { printError("wirelab: \($0)") })
        let report = try runCancellable("deploy", cancel: bench.cancel, isCancellation: { $0 is DeployBenchmark.Cancelled },
                                        bench.run)
        print(json ? try report.jsonString() : report.table())
    }
}

struct BenchForward: ParsableCommand {
    enum DatapathChoice: String, ExpressibleByArgument, CaseIterable { case afxdp, afpacket, both }
    /// `--element`: element names and groups, separated by commas.
    static let elementGroups: [String: [ForwardBenchmark.Element]] = [
        "both": [.switch, .router],
        "director": [.directorNAT, .directorDR, .directorFULLNAT, .directorTUN],
        "ceilings": [.xdpRedirect, .afxdpC],
        "all": ForwardBenchmark.Element.allCases,
    ]

    /// `--offered`: Mpps, comma-separated → packets per second; nil if any is not a rate.
    static func rates(_ text: String) -> [Double]? {
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
        guard !values.isEmpty, values.allSatisfy({ $0.map { (0.01...100).contains($0) } ?? false }) else { return nil }
        return values.map { $0! * 1e6 }
    }

    /// The elements `--element` names, in order, each once; nil if a word is neither an element nor a group.
    static func elements(_ text: String) -> [ForwardBenchmark.Element]? {
        var out: [ForwardBenchmark.Element] = []
        for word in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard let some = elementGroups[word] ?? ForwardBenchmark.Element(rawValue: word).map({ [$0] }) else { return nil }
            for e in some where !out.contains(e) { out.append(e) }
        }
        return out
    }

    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Packets per second through our switch and router beside the Linux bridge and kernel IP forwarding.",
        discussion: """
        On one veth path (generator namespace → forwarder namespace → sink namespace) each forwarder gets the \
        same traffic: small UDP frames over many flows. The generator is the fastest method this host allows: each \
        (xdp-live, afxdp, afpacket-ring) is probed with one frame and the allowed ones are timed alone on a gen → sink \
        path with no forwarder (--generator forces one); that path's rate is measured again in every round, and a row \
        whose forwarder reached 80 % of it is flagged generator-bound, with no ratio. For each element and port kind a \
        lab (gen — sw|r — sink) is brought up and our data plane measured; then the daemon is stopped and the same \
        forwarder namespace is made into the kernel's peer (a bridge of both veths, or addresses and ip_forward) and \
        measured the same way. Frames are counted at the sink (rx_packets of sink:eth0, where a tcx program drops \
        them). By default the generator runs on one CPU and everything the forwarder does on the other. Labs are named fwdbench-* (--lab-prefix); none may \
        exist before, and everything made is removed at the end, on failure and on Ctrl-C.
        """)

    @Option(help: "Measured seconds per forwarder.") var seconds: Double = 10
    @Option(help: "Seconds of traffic before each measurement.") var warmup: Double = 1
    @Option(help: "Frame size as on a wire, FCS included (64 puts 60-byte frames on the veth).") var size: Int = 64
    @Option(help: "UDP flows (source ports 10240 and up): a power of two up to 1024.") var flows: Int = 64
    @Option(help: ArgumentHelp("How frames are generated: XDP live frames (BPF_PROG_RUN), an AF_XDP socket, or an AF_PACKET transmit ring. Default: the fastest this host allows.",
                               valueName: "xdp-live|afxdp|afpacket-ring"))
    var generator: String?
    @Option(help: "Port kind of our data plane.") var datapath: DatapathChoice = .both
    @Option(help: ArgumentHelp("Which elements to measure, separated by commas: switch, router, router-ecmp, director-nat, director-dr, director-fullnat, director-tun, xdp-redirect and afxdp-c (the path's two ceilings, in place of our daemon), or the groups both (switch and router), director (its four modes), ceilings, all.",
                               valueName: "element,…"))
    var element: String = "both"
    @Option(help: "Times each pair (ours, then the kernel's) is measured, interleaved; the table shows medians.")
    var rounds: Int = 1
    @Option(help: ArgumentHelp("Where things run, one or several separated by commas: forwarder (generator on one CPU, everything of the forwarder, its ingress NAPI included, on the other), split (generator and ingress receive on one CPU, forwarding on the other), none.",
                               valueName: "forwarder|split|none,…"))
    var placement: String = "forwarder"

    var placements: [ForwardBenchmark.PlacementMode] {
        placement.split(separator: ",").compactMap { ForwardBenchmark.PlacementMode(rawValue: String($0)) }
    }
    @Option(help: "Nice value of the generator, daemon and NAPI threads while they run (0 leaves it).") var nice: Int32 = -10
    @Option(help: ArgumentHelp("Nice value of the ingress NAPI thread alone (forwarder placement). Below the daemon by default: at the daemon's priority (--ingress-nice with --nice's value) it starves the daemon under overload (receive livelock).", valueName: "n"))
    var ingressNice: Int32 = 19
    @Option(help: ArgumentHelp("After each of our runs at the generator's full rate, measure ours again with the generator paced at these rates (Mpps, separated by commas; afxdp or afpacket-ring, whichever is allowed and faster): the table then gives the best ours delivered and what it kept at full rate (below 0.8× is receive livelock).",
                               valueName: "Mpps,…"))
    var offered: String?
    @Flag(help: "Our forwarder with the fast path (fastpath: true; AF_XDP only): a flow's first frames go through our element, the rest through the XDP program's copy of its decision, in the kernel.")
    var fastpath = false
    @Flag(help: "Do not count the daemon's mallocs (skips compiling the LD_PRELOAD counter).") var noMallocCount = false
    @Option(help: "Labs are named <prefix>-sw-xdp, <prefix>-r-pkt, …") var labPrefix = "fwdbench"
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var state: StateOptions

    func validate() throws {
        if let offered, Self.rates(offered) == nil {
            throw ValidationError("--offered must list rates in Mpps within 0.01...100, separated by commas (e.g. 0.5,1,2)")
        }
        if Self.elements(element) == nil {
            throw ValidationError("--element must list elements (" + ForwardBenchmark.Element.allCases.map(\.rawValue).joined(separator: ", ")
                + ") or groups (" + Self.elementGroups.keys.sorted().joined(separator: ", ") + "), separated by commas")
        }
        if !(0.5...3600).contains(seconds) { throw ValidationError("--seconds must be within 0.5...3600") }
        if !(0...60).contains(warmup) { throw ValidationError("--warmup must be within 0...60 seconds") }
        if !(64...1518).contains(size) { throw ValidationError("--size must be within 64...1518 bytes") }
        if !(1...1024).contains(flows) || flows & (flows - 1) != 0 { throw ValidationError("--flows must be a power of two within 1...1024") }
        if let generator, TrafficGenerator.Method(rawValue: generator) == nil {
            throw ValidationError("--generator must be one of " + TrafficGenerator.Method.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let prefixCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        if !(1...12).contains(labPrefix.count) || !labPrefix.allSatisfy(prefixCharacters.contains) || labPrefix.hasPrefix("-") {
            throw ValidationError("--lab-prefix must be 1...12 of a-z, 0-9 and '-', not starting with '-'")
        }
        if !(1...100).contains(rounds) { throw ValidationError("--rounds must be within 1...100") }
        if placements.isEmpty || placements.count != placement.split(separator: ",").count || Set(placements).count != placements.count {
            throw ValidationError("--placement must list forwarder, split or none, each at most once")
        }
        if !(-20...19).contains(nice) || !(-20...19).contains(ingressNice) { throw ValidationError("--nice and --ingress-nice must be within -20...19") }
    }

    func run() throws {
        var options = ForwardBenchmark.Options()
        options.seconds = seconds
        options.warmup = warmup
        options.frameSize = size
        options.flows = flows
        options.datapaths = datapath == .both ? [.afxdp, .afpacket] : [datapath == .afxdp ? .afxdp : .afpacket]
        options.elements = Self.elements(element)!
        options.offered = offered.flatMap(Self.rates) ?? []
        options.placements = placements
        options.nice = nice
        options.ingressNice = ingressNice
        options.countMallocs = !noMallocCount
        options.fastPath = fastpath
        options.rounds = rounds
        options.labPrefix = labPrefix
        options.generator = generator.flatMap(TrafficGenerator.Method.init(rawValue:))
        let bench = ForwardBenchmark(store: state.store, executable: currentExecutable(), options: options,
                                     progress: { printError("wirelab: \($0)") })
        let report = try runCancellable("forward", cancel: bench.cancel, isCancellation: { $0 is ForwardBenchmark.Cancelled },
                                        bench.run)
        print(json ? try report.jsonString() : report.table())
        // A case that failed is in its row; the run still says it did not all work.
        if report.rows.contains(where: { !$0.failures.isEmpty }) { throw ExitCode(1) }
    }
}

struct BenchCI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ci",
        abstract: "Ratios only, each against the figure recorded for it; fails when one falls more than 30 % below.",
        discussion: """
        Measures, in under 2 minutes (more when a ratio is measured again): the director's core at 1,000,000 \
        connections (director.batch-speedup: packets of known connections in random order one by one / in batches \
        of 32 with the connection table prefetched), then, as root, a short bench forward of every element over \
        AF_XDP (forward.<element>.afxdp: ours / the kernel's peer; generator and forwarder on their own CPUs, the \
        ingress NAPI at nice 19; 3 rounds, ratio of the medians). Each ratio is compared with its figure in the \
        recorded file; one below 70 % of it is measured again, and fails only when 3 measurements in a row are \
        below. Forwarding is not measured while the CPUs are more than 25 % busy with other work (over a second \
        before each attempt); rows the forward benchmark marks generator-bound, or cannot run on this host, are \
        skipped with the reason, as is the director's ratio in a debug build. Exit status 1 when a ratio fails. \
        Labs are named <prefix>-* (--lab-prefix); none may exist before.
        """)

    @Option(help: "The recorded figures.") var ratios = "Benchmarks/ci-ratios.json"
    @Flag(help: "Write this run's ratios to the --ratios file as the new figures (and still compare with the old).")
    var record = false
    @Flag(help: "Leave out the forwarding ratios (no labs).") var noForward = false
    @Option(help: "Measured seconds per forwarder.") var seconds: Double = 2
    @Option(help: "Rounds of each forwarding pair (ours, then the kernel's), interleaved; ratios of the medians.")
    var rounds: Int = 3
    @Option(help: "Labs are named <prefix>-sw-xdp, …") var labPrefix = "benchci"
    @OptionGroup var state: StateOptions

    func validate() throws {
        if !(0.5...60).contains(seconds) { throw ValidationError("--seconds must be within 0.5...60") }
        if !(1...20).contains(rounds) { throw ValidationError("--rounds must be within 1...20") }
        let prefixCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        if !(1...12).contains(labPrefix.count) || !labPrefix.allSatisfy(prefixCharacters.contains) || labPrefix.hasPrefix("-") {
            throw ValidationError("--lab-prefix must be 1...12 of a-z, 0-9 and '-', not starting with '-'")
        }
    }

    func run() throws {
        let recorded: CIRatios.Recorded
        do { recorded = try CIRatios.Recorded.load(ratios) } catch {
            printError("wirelab bench ci: reading \(ratios): \(error)")
            throw ExitCode(1)
        }
        var options = CIBenchmark.Options()
        options.seconds = seconds
        options.rounds = rounds
        options.forward = !noForward
        options.labPrefix = labPrefix
        let bench = CIBenchmark(recorded: recorded, store: state.store, executable: currentExecutable(), options: options,
                                progress: { printError("wirelab: \($0)") })
        let report = try runCancellable("ci", cancel: bench.cancel, isCancellation: { $0 is ForwardBenchmark.Cancelled }, bench.run)
        print(report.text())
        if record {
            let command = "wirelab bench ci --record" + (noForward ? " --no-forward" : "") + " --seconds \(seconds) --rounds \(rounds)"
            try report.recording(command: command).jsonString().write(toFile: ratios, atomically: true, encoding: .utf8)
            print("recorded in \(ratios)")
        }
        if report.failed { throw ExitCode(1) }
    }
}

/// Runs a benchmark that Ctrl-C, kill or a closed terminal stop between
/// steps (CANCEL; the benchmark then removes what it made and throws its
/// cancellation): exit 130 after a cancellation, 1 after any other error.
func runCancellable<Report>(_ verb: String, cancel: @escaping @Sendable () -> Void,
                            isCancellation: (Error) -> Bool, _ body: () throws -> Report) throws -> Report {
    let sources = [SIGINT, SIGTERM, SIGHUP].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            printError("wirelab: stopping — removing what the benchmark made …")
            cancel()
        }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    do {
        return try body()
    } catch {
        printError("wirelab bench \(verb): \(error)")
        throw ExitCode(isCancellation(error) ? 130 : 1)
    }
}
