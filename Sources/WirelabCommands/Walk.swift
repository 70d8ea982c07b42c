import ArgumentParser
import Foundation
import Lab
import LinuxNet
import Topology
import Wire

struct WalkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walk",
        abstract: "Follow one packet (and its reply) hop by hop through a lab.",
        discussion: """
        Builds the lab, sends one probe from a host, removes the lab, and prints every hop: node, \
        in/out interface, MACs, IPs, ports, TTL, encapsulation, each changed field marked with *, \
        and why the node sent it that way. --pcap writes only the walk's frames, one interface per link. \
        --format mermaid prints it as a Mermaid sequence diagram; --html and --svg draw it (the \
        topology with the probe's path, a ladder of the hops) into a self-contained file. \
        --fail NODE|NODE:IFACE (repeatable) cuts a node's power or fails a link once the lab is up \
        and waits --settle seconds (VRRP takeover, routers dropping a dead next hop) before the \
        probe: a walk with and without --fail shows what a failure changes on the path. \
        A probe is its flow's first packet, which every node sends through its element; \
        --established (udp only) first sends one untraced probe of the same 5-tuple and waits for \
        its echo, then walks the second: a hop a node's fast path forwarded (in the kernel, never \
        reaching its element) says "fast path" after its interfaces ("path": "fast" in --json). \
        Exit status 0 if the probe was seen; 1 if it was not (or the walk could not run); 2 if the \
        file has errors; 3 if the capture lost frames during the walk (a warning names where): \
        the path may be incomplete.
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, mermaid }

    @Argument(help: "The topology file.") var file: String
    @Option(help: ArgumentHelp("The host node that sends the probe.", valueName: "node")) var from: String
    @Option(help: ArgumentHelp("Destination, IP:PORT (or IP for icmp).", valueName: "ip:port")) var to: String
    @Option(help: ArgumentHelp("tcp (a SYN), udp or icmp (an echo request).", valueName: "proto")) var proto: String = "tcp"
    @Flag(help: "Run the walk in the in-process simulator (no root, nothing created, the same output every time).") var sim = false
    @Flag(help: "Walk a later packet of the flow: two probes of the same 5-tuple go first, untraced (udp only).")
    var established = false
    @Flag(help: "Print the walk as JSON (the same as --format json).") var json = false
    @Option(help: ArgumentHelp("What to print: text, json or mermaid (a sequence diagram).", valueName: "format"))
    var format: Format = .text
    @Option(help: ArgumentHelp("Also write the walk as one self-contained HTML page to this file.", valueName: "file"))
    var html: String?
    @Option(help: ArgumentHelp("Also write the walk's picture (topology with the path, and the ladder) as SVG to this file.", valueName: "file"))
    var svg: String?
    @Option(help: ArgumentHelp("Choose the probe's marker and source port from this seed (a live walk then sends the same probe as --sim).", valueName: "n"))
    var seed: UInt64?
    @Option(help: ArgumentHelp("Write the walk's frames to this pcapng.", valueName: "file")) var pcap: String?
    @Option(name: .customLong("fail"), help: ArgumentHelp("Fail this node (power cut) or link end before the probe; repeatable.", valueName: "node|node:iface"))
    var failures: [String] = []
    @Option(help: ArgumentHelp("Seconds to wait after --fail before the probe (virtual seconds with --sim).", valueName: "seconds"))
    var settle: Double = 2
    @Option(help: ArgumentHelp("Where the lab's full captures go.", valueName: "dir")) var captures = "Captures"
    @OptionGroup var state: StateOptions

    func parsedTarget() throws -> (IPv4Address, Int?, ProbeProtocol) {
        guard let p = ProbeProtocol(rawValue: proto) else { throw ValidationError("--proto must be tcp, udp or icmp, not '\(proto)'") }
        let parts = to.split(separator: ":")
        guard (1...2).contains(parts.count), let ip = IPv4Address(parts[0]) else { throw ValidationError("--to '\(to)' is not IP:PORT") }
        var port: Int?
        if parts.count == 2 {
            guard let n = Int(parts[1]), (1...65535).contains(n) else { throw ValidationError("--to '\(to)': port must be 1...65535") }
            port = n
        }
        if p != .icmp && port == nil { throw ValidationError("--to needs a port for \(proto), e.g. \(ip):80") }
        return (ip, port, p)
    }

    /// `--fail` values as targets (a node, or a link by one of its ends).
    func failureTargets() throws -> [DrillEvent.Target] {
        try failures.map { text in
            if text.contains(":") {
                guard let end = Endpoint(text) else { throw ValidationError("--fail '\(text)' is not NODE or NODE:IFACE") }
                return .link(end)
            }
            guard !text.isEmpty else { throw ValidationError("--fail needs a node or NODE:IFACE") }
            return .node(text)
        }
    }

    /// Applies `--fail` on a started backend and lets the lab react.
    func applyFailures(_ backend: CheckBackend) throws {
        let targets = try failureTargets()
        guard !targets.isEmpty else { return }
        for target in targets {
            do { try backend.apply(.fail, to: target) } catch { throw LabError("--fail \(target): \(error)") }
        }
        backend.settle(seconds: settle)
    }

    func validate() throws {
        let (_, _, p) = try parsedTarget()
        if established, let problem = WalkReport.establishedProblem(p) { throw ValidationError(problem) }
        _ = try failureTargets()
        if !(0...600).contains(settle) { throw ValidationError("--settle must be 0...600 seconds") }
        if json && format != .text && format != .json { throw ValidationError("--json and --format \(format.rawValue) ask for two outputs; give one") }
    }

    func run() throws {
        let (ip, port, p) = try parsedTarget()
        let topology = try loadTopologyOrExit(file)
        guard let node = topology.nodes.first(where: { $0.name == from }) else {
            throw ValidationError("no node is named '\(from)' in \(file)")
        }
        guard node.kind == .host else { throw ValidationError("probes start on host nodes; '\(from)' is a \(node.kind.rawValue)") }
        let report: WalkReport
        if sim {
            do {
                let backend = try SimBackend(topology: topology)
                try applyFailures(backend)
                report = try WalkReport.run(backend: backend, from: from, to: ip, port: port, proto: p,
                                            established: established, random: SeededRandom(seed: seed ?? WalkReport.simulatorSeed))
            } catch {
                printError("wirelab walk --sim: \(error)")
                throw ExitCode(1)
            }
        } else {
            let deployer = LabDeployer(store: state.store, executable: currentExecutable(), captureRoot: captures,
                                       progress: { printError("wirelab: \($0)") })
            let backend = LiveBackend(topology: topology, deployer: deployer)
            let signals = stopOnSignals(backend)
            defer { backend.stop(); signals.forEach { $0.cancel() } }
            do {
                try backend.start()
                try applyFailures(backend)
                report = try WalkReport.run(backend: backend, from: from, to: ip, port: port, proto: p,
                                            established: established, random: seed.map { SeededRandom(seed: $0) as any RandomNumberGenerator } ?? SystemRandomNumberGenerator())
            } catch {
                printError("wirelab walk: \(error)")
                throw ExitCode(1)
            }
        }
        let output: Format = json ? .json : format
        // Text carries the warning itself; the other formats get it on stderr.
        if output != .text, let warning = report.captureLossWarning { printError("wirelab walk: \(warning)") }
        switch output {
        case .text: print(report.text(), terminator: "")
        case .json: print(try report.json())
        case .mermaid: print(report.mermaid(), terminator: "")
        }
        if let pcap {
            do { try PcapNGFile.write(report.pcapng(), to: pcap) } catch {
                printError("wirelab walk: writing \(pcap): \(error)")
                throw ExitCode(1)
            }
            if output == .text { print("wrote \(pcap) (\(report.path.hops.count) frames)") }
        }
        if let html {
            try writeReport(report.html(pcapng: pcap), to: html, verb: "walk")
            if output == .text { print("wrote \(html)") }
        }
        if let svg {
            try writeReport(report.svg(), to: svg, verb: "walk")
            if output == .text { print("wrote \(svg)") }
        }
        if !report.captureLoss.isEmpty { throw ExitCode(CheckReport.inconclusiveExitStatus) }
        if report.path.hops.isEmpty { throw ExitCode(1) }
    }
}
