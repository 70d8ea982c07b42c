import Foundation
import Testing

/// Runs the real `wirelab` binary (built beside the test bundle) and the
/// system tools the end-to-end tests check the lab with.
enum Harness {
    static var binDirectory: URL {
        // argv[0] is the test bundle inside the build's bin directory.
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static var wirelab: String {
        let candidate = binDirectory.appendingPathComponent("wirelab").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        let parent = binDirectory.deletingLastPathComponent().appendingPathComponent("wirelab").path
        return parent
    }

    static var isRoot: Bool { getuid() == 0 }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var combined: String { stdout + stderr }
    }

    /// Runs a command to completion with a time limit (then SIGKILL, by PID).
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120,
                    directory: String? = nil) throws -> Result {
        let process = Process()
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Drain both pipes while the process runs, so a chatty one never blocks.
        let outData = Sink(), errData = Sink()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        // A daemon the command left behind may hold the pipes open: give
        // the readers a moment, never the whole test.
        if group.wait(timeout: .now() + 2) == .timedOut {
            Issue.record("\(executable) \(arguments.joined(separator: " ")): output still open after exit (a background process holds it)")
        }
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData.data, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self))
    }

    /// Written by one reader thread, read after the group is waited on.
    final class Sink: @unchecked Sendable { var data = Data() }

    static func wl(_ arguments: String..., timeout: TimeInterval = 120) throws -> Result {
        try run(wirelab, arguments, timeout: timeout)
    }

    /// Namespaces whose names start with `prefix` (as `ip netns list` shows).
    static func namespaces(prefix: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// Writes a topology into a fresh temporary directory; returns its path.
    static func topologyFile(_ yaml: String, name: String = "topo.yaml") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
