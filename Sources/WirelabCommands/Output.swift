import ArgumentParser
import Foundation

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
