import ArgumentParser
import Foundation
import Lab
import Topology

/// `wirelab drill FILE [NAME]`: up, the file's drills (or one), report, down.
struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Build the lab, run the file's drills (load, fail/heal events), report the interruptions, remove the lab.",
        discussion: """
        Each drill runs its load from its hosts (request loops, a new connection each, and long-lived \
        keep-alive streams) while its events fail and heal nodes and links at their times; the report \
        gives, per event, the longest gap between answered requests, the requests that failed, the \
        long-lived connections lost and who took over, and each expectation's verdict. Exit status as \
        for check: 0 every drill passed; 1 any failed, or the lab did not come up; 2 the file has errors \
        (or the drill NAME is unknown); 3 none failed but some could not be measured (a load did not \
        start). The lab is removed also when a drill fails or on Ctrl-C.
        """)

    @Argument(help: "The topology file.") var file: String
    @Argument(help: "Run only the drill of this name.") var name: String?
    @Option(help: ArgumentHelp("Also write a JUnit XML report to this file.", valueName: "file")) var junit: String?
    @Option(help: ArgumentHelp("Also write the report as one self-contained HTML page to this file.", valueName: "file")) var html: String?
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var state: StateOptions

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        var drills = topology.drills
        if drills.isEmpty {
            printError("wirelab drill: \(file) has no drills")
            throw ExitCode(1)
        }
        if let name {
            drills = drills.filter { $0.name == name }
            if drills.isEmpty {
                printError("wirelab drill: \(file) has no drill named '\(name)'; its drills: \(topology.drills.map { "'\($0.name)'" }.joined(separator: ", "))")
                throw ExitCode(2)
            }
        }
        let report = runDrills(drills, topology: topology, file: file, verb: "drill", state: state)
        try printDrillReport(report, json: json, junit: junit, html: html, verb: "drill")
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }
}

/// Up, the drills, down — also on Ctrl-C.
func runDrills(_ drills: [Drill], topology: ResolvedTopology, file: String, verb: String, state: StateOptions) -> DrillRunReport {
    let deployer = LabDeployer(store: state.store, executable: currentExecutable(), progress: { printError("wirelab: \($0)") })
    let lab = LiveDrillLab(topology: topology, deployer: deployer)
    let signals = [SIGINT, SIGTERM].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            printError("wirelab: interrupted; removing the lab")
            lab.stop()
            exit(130)
        }
        source.resume()
        return source
    }
    defer { signals.forEach { $0.cancel() } }
    return LiveDrillRunner.runAll(drills, lab: lab, executable: currentExecutable(), file: file, verb: verb,
                                  progress: { printError("wirelab: \($0)") })
}

func printDrillReport(_ report: DrillRunReport, json: Bool, junit: String?, html: String?, verb: String) throws {
    if json { print(try report.json()) } else { print(report.text(), terminator: "") }
    if let junit { try writeReport(report.junit(), to: junit, verb: verb) }
    if let html { try writeReport(report.html(), to: html, verb: verb) }
}
