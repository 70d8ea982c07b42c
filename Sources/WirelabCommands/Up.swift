import ArgumentParser
import Foundation
import Lab
import Topology

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a lab from a topology file and start its data plane.",
        discussion: "Atomic: on any failure everything made so far is removed and the first cause is printed.")

    @Argument(help: "The topology file.") var file: String
    @OptionGroup var state: StateOptions
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        let deployer = LabDeployer(store: state.store, executable: currentExecutable(),
                                   progress: { printError("wirelab: \($0)") })
        let summary: LabSummary
        do {
            summary = try deployer.up(topology)
        } catch {
            printError("wirelab up: \(error)")
            throw ExitCode(1)
        }
        if json {
            print(try summary.jsonString())
        } else {
            print(summary.table())
            for note in summary.notes { print("  note: \(note)") }
        }
    }
}

/// This binary's path, for starting `wirelab serve` and the daemon in nodes.
func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
