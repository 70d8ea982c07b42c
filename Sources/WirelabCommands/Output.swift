import ArgumentParser
import Foundation
import Topology

func printError(_ message: String) {
    FileHandle.standardError.write((message.hasSuffix("\n") ? message : message + "\n").data(using: .utf8)!)
}


/// Writes a report file the user asked for (`--junit`, `--html`, `--svg`);
/// on failure says which and exits 1.
func writeReport(_ text: String, to path: String, verb: String) throws {
    do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
        printError("wirelab \(verb): writing \(path): \(error)")
        throw ExitCode(1)
    }
}

/// `--no-run` (check, sim): a file with `run:` commands is refused before
/// anything is built or simulated, with `file:line:col: error: …` for each
/// `run:`, exit status 2.
func refuseRunCommands(_ topology: ResolvedTopology) throws {
    let refusals = topology.runRefusals()
    guard !refusals.isEmpty else { return }
    printError(TopologyErrors(refusals).description)
    throw ExitCode(2)
}
