import ArgumentParser
import Foundation
import Lab
import Topology

struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a topology's checks in-process, deterministically, without root.",
        discussion: """
        The same elements as `up` (switches, routers, directors), a host model for every host (ARP, \
        ICMP echo, UDP echo, TCP and the built-in HTTP server's one-line answer), virtual links and a \
        virtual clock. Runs the traffic of every send/http/ping/reach check, prints what came back and \
        writes one pcapng with one interface per link (frames recorded where they are received). \
        The same file gives a byte-identical pcapng every time. Health checks are not simulated.
        """)

    @Argument(help: "The topology file.") var file: String
    @Option(help: ArgumentHelp("Where to write sim.pcapng (default Captures/<lab>).", valueName: "dir"))
    var capture: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        let sim: Simulator
        do {
            sim = try Simulator(topology: topology)
        } catch {
            printError("wirelab: \(file): \(error)")
            throw ExitCode(2)
        }
        let outcomes: [SimTraffic.Outcome]
        do {
            outcomes = try SimTraffic.run(sim)
        } catch {
            printError("wirelab: \(file): \(error)")
            throw ExitCode(1)
        }
        let directory = capture ?? "Captures/\(topology.name)"
        let path = (directory as NSString).appendingPathComponent("sim.pcapng")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(sim.pcapng()).write(to: URL(fileURLWithPath: path))
        } catch {
            printError("wirelab: writing \(path): \(error)")
            throw ExitCode(1)
        }
        let drops = sim.allDrops()
        if json {
            let object: [String: Any] = [
                "lab": topology.name,
                "pcapng": path,
                "virtual-time-ns": sim.now,
                "checks": outcomes.map { ["name": $0.check, "kind": $0.kind, "summary": $0.summary, "counts": $0.counts] },
                "drops": Dictionary(drops.map { ($0.node, $0.drops) }, uniquingKeysWith: { a, _ in a }),
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("sim \(topology.name): \(topology.nodes.count) nodes, \(topology.links.count) links, \(outcomes.count) checks")
        for o in outcomes { print("  \(o.check): \(o.summary)") }
        if !drops.isEmpty {
            print("drops:")
            for d in drops {
                print("  \(d.node): " + d.drops.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
        }
        print("pcapng: \(path) (virtual time \(Double(sim.now) / 1e9) s)")
    }
}

struct BenchSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Frames per second per core through the in-process simulator.",
        discussion: """
        Every host pings the host half the host list away, one request per host per round, and each \
        round runs until every frame is delivered; ARP is resolved in a warm-up round first. Counts \
        frame deliveries (one per link crossed) against the simulator thread's CPU time. No root needed.
        """)

    @Argument(help: "The topology file.") var file: String = "Topologies/scale-100.yaml"
    @Option(help: "Rounds of pings.") var rounds: Int = 20000
    @Flag(help: "Record captures too (as `wirelab sim` does).") var captures = false
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        if rounds < 1 { throw ValidationError("--rounds must be at least 1") }
    }

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        let report = try SimBenchmark.run(topology: topology, rounds: rounds, captures: captures)
        if json {
            let object: [String: Any] = [
                "topology": report.topology, "hosts": report.hosts, "rounds": report.rounds, "frames": report.frames,
                "echo-replies": report.echoReplies, "cpu-seconds": report.cpuSeconds, "wall-seconds": report.wallSeconds,
                "frames-per-cpu-second": report.framesPerCPUSecond, "frames-per-wall-second": report.framesPerWallSecond,
                "captures": report.captures,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(report.text)
        }
    }
}
