import Bench
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
        virtual clock; the same checks, probes and report as `wirelab check`. Writes one pcapng with \
        one interface per link (frames recorded where they are received); the same file gives a \
        byte-identical pcapng and report every time. The file's drills run after the checks, each on \
        a fresh simulator (the same report as `wirelab drill`, measured on the virtual clock; \
        --no-drills skips them). BGP and BFD run as live, on a model of each node's kernel (the \
        simulator starts once every session is up); health checks are not simulated (every real \
        stays in rotation), and run: commands are never run. \
        Exit status 0 only if every check and drill passed; 1 if any failed or could not run; 3 if \
        none failed but a drill could not be measured; 2 if the file has errors (or, with --no-run, run: commands: refused as check \
        --no-run refuses them, so a CI job gets one verdict from either).
        """)

    @Argument(help: "The topology file.") var file: String
    @Option(help: ArgumentHelp("Where to write sim.pcapng (default Captures/<lab>).", valueName: "dir"))
    var capture: String?
    @Option(help: ArgumentHelp("Also write a JUnit XML report to this file.", valueName: "file")) var junit: String?
    @Option(help: ArgumentHelp("Also write the report as one self-contained HTML page (verdicts, evidence, each probe's path drawn) to this file.", valueName: "file"))
    var html: String?
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(name: .customLong("no-run"), help: "Refuse a file that has run: commands (exit 2, naming where each run: is), as check --no-run does.")
    var noRun = false
    @Flag(name: .customLong("no-drills"), help: "Run only the checks, not the file's drills.") var noDrills = false

    /// Each drill on a fresh simulator of its own: the same report as
    /// `check`/`drill`, measured on the virtual clock (deterministic).
    static func runDrills(_ drills: [Drill], topology: ResolvedTopology, file: String) -> DrillRunReport {
        let reports = drills.map { drill -> DrillReport in
            printError("wirelab: drill '\(drill.name)' on the simulator (\(drill.load.duration) of virtual time)")
            do {
                let result = try SimDrill.run(drill, in: topology)
                return DrillReport(drill: drill, observations: result.observations, applied: result.appliedTimes,
                                   takeovers: result.takeovers)
            } catch {
                return DrillReport.inconclusive(drill, problem: "\(error)")
            }
        }
        return DrillRunReport(lab: topology.name, file: file, verb: "sim", drills: reports)
    }

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        if noRun { try refuseRunCommands(topology) }
        let directory = capture ?? "Captures/\(topology.name)"
        let path = (directory as NSString).appendingPathComponent("sim.pcapng")
        let backend: SimBackend
        do {
            backend = try SimBackend(topology: topology, capturePath: path)
        } catch {
            printError("wirelab: \(file): \(error)")
            throw ExitCode(2)
        }
        let drills = noDrills ? [] : topology.drills
        // A file of drills only is checked by its drills, as in `check`.
        var checks: CheckReport?
        if !(topology.checks.isEmpty && !drills.isEmpty) {
            checks = runChecks(backend: backend, file: file, random: SeededRandom(seed: WalkReport.simulatorSeed))
            checks?.verb = "sim"
        }
        let drillReport = drills.isEmpty ? nil : Self.runDrills(drills, topology: topology, file: file)
        let status = try printReports(checks: checks, drills: drillReport, topology: topology, json: json,
                                      junit: junit, html: html, verb: "sim")
        if !json, checks != nil, FileManager.default.fileExists(atPath: path) {
            print("pcapng: \(path) (virtual time \(Double(backend.simulator.now) / 1e9) s)")
        }
        if status != 0 { throw ExitCode(status) }
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
