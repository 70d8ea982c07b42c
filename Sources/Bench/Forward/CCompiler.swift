// The C compiler `bench forward` builds its embedded C sources with at
// benchmark time (the malloc counter, the C AF_XDP forwarder).
import Lab
import Foundation
import Glibc

enum CCompiler {
    /// The first of cc, gcc, clang on PATH.
    static func find() throws -> String {
        guard let compiler = ["cc", "gcc", "clang"].lazy.compactMap(which).first else {
            throw LabError("no C compiler (cc, gcc, clang) on PATH")
        }
        return compiler
    }

    /// Runs COMPILER with ARGUMENTS; throws with its messages and HINT on failure.
    static func run(_ compiler: String, _ arguments: [String], what: String, hint: String = "") throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: compiler)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LabError("\(compiler) \(what) failed\(hint.isEmpty ? "" : " (\(hint))"): \(String(decoding: message, as: UTF8.self))")
        }
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }
}
