import Foundation
import Testing
import Wire

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

    /// A lab name unique to this test process (`base` + pid), so two test
    /// runs on one machine never meet in /run/wirelab or in namespaces.
    static func lab(_ base: String) -> String { "\(base)\(getpid() % 100_000)" }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var combined: String { stdout + stderr }
    }

    /// Runs a command to completion with a time limit (then SIGKILL, by
    /// PID). posix_spawn + waitpid, output into files: Foundation's Process
    /// waits on a descriptor that daemons a command starts (iperf3 -D)
    /// inherit, and pipes stay open while any daemon holds them.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120,
                    directory: String? = nil) throws -> Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wl-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outPath = scratch.appendingPathComponent("out").path, errPath = scratch.appendingPathComponent("err").path

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let program = executable.hasPrefix("/") ? executable : "/usr/bin/env"
        let argv = (executable.hasPrefix("/") ? [executable] : ["/usr/bin/env", executable]) + arguments
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        // The child starts in `directory` through a shell-free chdir: run it
        // via /bin/sh only when a directory is asked for.
        var pid: pid_t = 0
        let rc: Int32
        if let directory {
            let shArgs = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory] + argv
            let cSh = shArgs.map { strdup($0) } + [nil]
            defer { cSh.forEach { free($0) } }
            rc = posix_spawn(&pid, "/bin/sh", &actions, nil, cSh, environ)
        } else {
            rc = posix_spawn(&pid, program, &actions, nil, cArgs, environ)
        }
        guard rc == 0 else { throw HarnessError("spawning \(argv.joined(separator: " ")): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() >= deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                Issue.record("\(argv.joined(separator: " ")) killed after \(timeout) s")
                break
            }
            usleep(5_000)
        }
        let exit: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: exit,
                      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    struct HarnessError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Polls CONDITION every 20 ms until it holds or LIMIT seconds pass;
    /// returns whether it held. Tests wait on the condition they need, never
    /// for a fixed time: a slow host changes how long, not the verdict.
    @discardableResult
    static func waitUntil(limit: TimeInterval = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(limit)
        while true {
            if try condition() { return true }
            if Date() >= deadline { return false }
            usleep(20_000)
        }
    }

    static func wl(_ arguments: String..., timeout: TimeInterval = 120) throws -> Result {
        try run(wirelab, arguments, timeout: timeout)
    }

    /// `wirelab up FILE --json` run in `directory` (captures land there),
    /// with every interface's MAC by "node:iface" as `up` reported it.
    static func upReportingMACs(_ file: String, directory: String) throws -> (result: Result, macs: [String: MACAddress]) {
        let up = try run(wirelab, ["up", file, "--json"], timeout: 60, directory: directory)
        var macs: [String: MACAddress] = [:]
        if up.status == 0, let summary = try JSONSerialization.jsonObject(with: Data(up.stdout.utf8)) as? [String: Any] {
            for row in summary["interfaces"] as? [[String: Any]] ?? [] {
                if let node = row["node"] as? String, let iface = row["interface"] as? String,
                   let text = row["mac"] as? String, let mac = MACAddress(text) { macs["\(node):\(iface)"] = mac }
            }
        }
        return (up, macs)
    }

    /// Namespaces whose names start with `prefix` (as `ip netns list` shows).
    static func namespaces(prefix: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// Writes a topology into a fresh temporary directory; returns its path.
    /// Writes YAML (a lab named LAB) to a fresh directory, runs `up` there
    /// (captures land in it) and BODY with the directory, then `down` and
    /// removes the directory, whatever BODY did.
    static func withLab(_ lab: String, _ yaml: String, _ body: (_ directory: String) throws -> Void) throws {
        let file = try topologyFile(yaml)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = try run(wirelab, ["up", file], timeout: 60, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        try body(dir)
    }

    /// `wirelab status LAB --json`'s data plane node NODE (empty if none).
    static func datapathNode(_ lab: String, _ node: String) throws -> [String: Any] {
        let r = try wl("status", lab, "--json")
        let status = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        let nodes = (status["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        return nodes.first { $0["node"] as? String == node } ?? [:]
    }

    static func topologyFile(_ yaml: String, name: String = "topo.yaml") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
