// Shared plumbing of the cross-checks against independent implementations
// (CrossCheckScapyTests: scapy → Wire; CrossCheckTsharkTests: Wire → tshark).
// Both need external tools; when one is missing the test FAILS (it does not
// skip) and says to run scripts/install-deps.sh.

import Foundation
import Testing
import Wire

enum CrossCheck {
    /// The package root, found from this file's path (Tests/WireTests/…).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// Debian's Python, where apt's python3-scapy lives (a pyenv `python3`
    /// earlier on PATH may lack scapy).
    static let python = "/usr/bin/python3"

    static let installHint = "run scripts/install-deps.sh (as root) to install python3-scapy and tshark"

    struct Output {
        var status: Int32
        var stdout: Data
        var stderr: String
    }

    /// Runs `executable` with `arguments`, collecting both streams through
    /// temporary files (no pipe can fill up and stall the child). Nil if the
    /// executable does not exist.
    static func run(_ executable: String, _ arguments: [String]) throws -> Output? {
        guard FileManager.default.isExecutableFile(atPath: executable) else { return nil }
        let dir = FileManager.default.temporaryDirectory
        let out = dir.appendingPathComponent("wirelab-crosscheck-\(UUID().uuidString).out")
        let err = dir.appendingPathComponent("wirelab-crosscheck-\(UUID().uuidString).err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: try Data(contentsOf: out),
                      stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
    }

    /// The first executable called `name` on PATH (or in /usr/bin, /usr/sbin).
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"] {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// A seed from the environment (to explore other cases locally), or the default.
    static func seed(_ variable: String, default value: UInt64) -> UInt64 {
        ProcessInfo.processInfo.environment[variable].flatMap { UInt64($0) } ?? value
    }

    /// Collects field comparisons and describes the first mismatches.
    struct Tally {
        var cases = 0
        var fields = 0
        var mismatches: [String] = []
        var casesByKind: [String: Int] = [:]

        mutating func compare(_ id: String, _ key: String, expected: String, got: String?) {
            fields += 1
            if got != expected {
                mismatches.append("\(id): \(key): expected \(expected), got \(got ?? "nothing")")
            }
        }

        func report(_ title: String) -> String {
            let kinds = casesByKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "\(title): \(cases) cases, \(fields) field comparisons, \(mismatches.count) mismatches\n  by kind: \(kinds)"
        }
    }
}

extension IPv6Address {
    /// 32 lower-case hex digits in wire order.
    var hex: String { bytes.map { wireHexByte($0) }.joined() }
}

func wireHexByte(_ b: UInt8) -> String {
    let s = String(b, radix: 16)
    return b < 16 ? "0" + s : s
}

extension Collection where Element == UInt8 {
    var hex: String { map { wireHexByte($0) }.joined() }
}

extension Bool {
    var bit: String { self ? "1" : "0" }
}
