import ArgumentParser
import Foundation
import Lab
import Topology

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Build the lab, run the file's checks against its captures, remove the lab.",
        discussion: """
        Every link is recorded (capture is forced on). Exit status 0 only if every check ran and \
        passed; 1 if any failed or could not run; 2 if the file has errors (or, with --no-run, \
        run: commands); 3 if none failed but some are inconclusive: the capture lost frames during \
        the checks (a full capture ring), so the verdicts resting on it (evidence: capture) are \
        neither pass nor fail. The lab is removed also when a check fails or on Ctrl-C. Then the \
        file's drills run on a fresh lab, as `wirelab drill` runs them (--no-drills skips them); their \
        verdicts count in the exit status, and --json prints {"checks": …, "drills": …}. A topology \
        file is code: its run: commands run as root in the lab's namespaces; --no-run refuses \
        them, for CI on files you do not trust.
        """)

    @Argument(help: "The topology file.") var file: String
    @Option(help: ArgumentHelp("Also write a JUnit XML report to this file.", valueName: "file")) var junit: String?
    @Option(help: ArgumentHelp("Also write the report as one self-contained HTML page (verdicts, evidence, each probe's path drawn) to this file.", valueName: "file"))
    var html: String?
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(name: .customLong("no-run"), help: "Refuse a file that has run: commands (exit 2, naming where each run: is) before building anything.")
    var noRun = false
    @Flag(name: .customLong("no-drills"), help: "Do not run the file's drills after its checks.") var noDrills = false
    @Option(help: ArgumentHelp("Where captures go (<dir>/<lab>/all.pcapng).", valueName: "dir")) var captures = "Captures"
    @OptionGroup var state: StateOptions

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        if noRun { try refuseRunCommands(topology) }
        let deployer = LabDeployer(store: state.store, executable: currentExecutable(), captureRoot: captures,
                                   progress: { printError("wirelab: \($0)") })
        let drills = noDrills ? [] : topology.drills
        // A file of drills only is checked by its drills.
        let checks = topology.checks.isEmpty && !drills.isEmpty ? nil
            : runChecks(backend: LiveBackend(topology: topology, deployer: deployer), file: file)
        let drillReport = drills.isEmpty ? nil : runDrills(drills, topology: topology, file: file, verb: "check", state: state)
        let status = try printReports(checks: checks, drills: drillReport, topology: topology, json: json,
                                      junit: junit, html: html, verb: "check")
        if status != 0 { throw ExitCode(status) }
    }
}

/// Prints a file's check report and drill report (either may be absent)
/// as one: text, JSON (`{"checks":…,"drills":…}` when both), one JUnit
/// document, one HTML page. Returns the exit status: the worse of the two,
/// 1 (failed) over 3 (inconclusive) over 0.
func printReports(checks: CheckReport?, drills drillReport: DrillRunReport?, topology: ResolvedTopology,
                  json: Bool, junit: String?, html: String?, verb: String) throws -> Int32 {
    if json {
        if let checks, let drillReport {
            print("{\n\"checks\": \(try checks.json()),\n\"drills\": \(try drillReport.json())\n}")
        } else if let checks { print(try checks.json()) } else if let drillReport { print(try drillReport.json()) }
    } else {
        if let checks { print(checks.text(), terminator: "") }
        if let drillReport { print((checks == nil ? "" : "\n") + drillReport.text(), terminator: "") }
    }
    if let junit, checks != nil || drillReport != nil {
        var document = checks?.junit() ?? drillReport!.junit()
        if checks != nil, let drillReport, let close = document.range(of: "</testsuites>", options: .backwards) {
            document.insert(contentsOf: drillReport.junitSuite(), at: close.lowerBound)
        }
        try writeReport(document, to: junit, verb: verb)
    }
    if let html, checks != nil || drillReport != nil {
        var page = checks?.html(topology: topology) ?? drillReport!.html()
        if checks != nil, let drillReport, let close = page.range(of: "</body>", options: .backwards) {
            page.insert(contentsOf: "<h1>Drills</h1>\n" + drillReport.htmlSections(), at: close.lowerBound)
        }
        try writeReport(page, to: html, verb: verb)
    }
    let statuses = [checks?.exitStatus, drillReport?.exitStatus].compactMap { $0 }
    return statuses.contains(1) ? 1 : statuses.max() ?? 0
}

/// Stops `backend` (the lab comes down) on SIGINT/SIGTERM, then exits.
func stopOnSignals(_ backend: CheckBackend) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            printError("wirelab: interrupted; removing the lab")
            backend.stop()
            exit(130)
        }
        source.resume()
        return source
    }
}

/// start, every check, finish, stop — whatever happens in between.
func runChecks(backend: CheckBackend, file: String,
               random: any RandomNumberGenerator = SystemRandomNumberGenerator()) -> CheckReport {
    let topology = backend.topology
    let signals = stopOnSignals(backend)
    defer { backend.stop(); signals.forEach { $0.cancel() } }
    if topology.checks.isEmpty {
        return CheckReport(lab: topology.name, file: file, outcomes: [], labError: "\(file) has no checks")
    }
    do {
        try backend.start()
    } catch {
        return CheckReport(lab: topology.name, file: file, outcomes: [], labError: "bringing the lab up: \(error)")
    }
    let runner = CheckRunner(backend: backend, random: random, progress: { printError("wirelab: \($0)") })
    return CheckReport(lab: topology.name, file: file, outcomes: runner.run(topology.checks))
}
