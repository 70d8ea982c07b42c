import Foundation
import Testing

/// Crash and fault safety (docs/robustness.md, "Crashes and faults"):
/// `kill -9` of the daemon under traffic, a second `up` of a lab that is
/// up, two labs side by side, `down --all` beside objects it did not make,
/// and the lock file `up` leaves. Every test keeps its labs in a state
/// directory of its own, so `down --all` sees only the labs it made.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct CrashSafetyLabEndToEndTests {
    /// a ↔ sw ↔ b through the Swift learning switch; b serves HTTP and iperf3.
    static func topology(_ lab: String, datapath: String = "afxdp") -> String {
        """
        name: \(lab)
        defaults: { datapath: \(datapath), capture: false }
        nodes:
          a: { kind: host, interfaces: { e0: { ip: 192.168.231.1/24 } } }
          b: { kind: host, interfaces: { e0: { ip: 192.168.231.2/24 } }, serve: { http: 8080 } }
          sw: { kind: switch }
        links:
          - [ a:e0, sw:p1 ]
          - [ b:e0, sw:p2 ]
        """
    }

    /// A short private state directory (the control socket's path must
    /// fit in sockaddr_un).
    static func stateDirectory() throws -> String {
        let path = "/tmp/wlcr-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    static func daemonPID(state: String, lab: String) throws -> Int32 {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(state)/\(lab)/state.json"))
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let processes = json?["processes"] as? [[String: Any]] ?? []
        let daemon = try #require(processes.first { $0["role"] as? String == "daemon" }, "daemon in \(processes)")
        return try #require((daemon["pid"] as? NSNumber)?.int32Value)
    }

    /// Alive and not a zombie.
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    static func ping(_ lab: String, state: String) throws -> Harness.Result {
        try Harness.wl("exec", "--lab", lab, "--state-dir", state, "a", "--",
                       "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.231.2")
    }

    static func curl(_ lab: String, state: String) throws -> Harness.Result {
        try Harness.wl("exec", "--lab", lab, "--state-dir", state, "a", "--",
                       "curl", "-s", "--max-time", "5", "http://192.168.231.2:8080/")
    }

    /// Packets b's kernel received on e0: what the switch delivered to it.
    static func forwarded(_ lab: String, state: String) throws -> Int? {
        // /proc/net/dev follows the reader's namespace (/sys/class/net does not).
        let read = try Harness.wl("exec", "--lab", lab, "--state-dir", state, "b", "--", "cat", "/proc/net/dev")
        guard read.status == 0,
              let line = read.stdout.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("e0:") })
        else { return nil }
        let fields = line.split(separator: ":", maxSplits: 1)[1].split(separator: " ")
        return fields.count > 1 ? Int(fields[1]) : nil
    }

    /// Starts traffic that keeps running in the background inside the lab:
    /// an iperf3 server on b, an iperf3 client and a curl loop on a. `down`
    /// must end them (they live in the lab's namespaces).
    static func startTraffic(_ lab: String, state: String) throws {
        let server = try Harness.wl("exec", "--lab", lab, "--state-dir", state, "b", "--", "iperf3", "-s", "-D", "-p", "5231")
        try #require(server.status == 0, "iperf3 -s: \(server.combined)")
        let script = """
            (iperf3 -c 192.168.231.2 -p 5231 -t 60 -b 20M >/dev/null 2>&1 &) ; \
            (while true; do curl -s --max-time 2 -o /dev/null http://192.168.231.2:8080/; done >/dev/null 2>&1 &)
            """
        let client = try Harness.wl("exec", "--lab", lab, "--state-dir", state, "--shell", "a", "--", script)
        try #require(client.status == 0, "traffic: \(client.combined)")
    }

    /// The inode of a namespace's file, as /proc/PID/ns/net names it.
    static func namespaceInode(_ name: String) -> UInt64? {
        var info = stat()
        return stat("/run/netns/\(name)", &info) == 0 ? UInt64(info.st_ino) : nil
    }

    /// Processes whose network namespace is one of INODES.
    static func processes(inNamespaces inodes: Set<UInt64>) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net"),
                  let inode = UInt64(link.dropFirst("net:[".count).dropLast()) else { return false }
            return inodes.contains(inode)
        }
    }

    static func lockPath(state: String, lab: String) -> String { "\(state)/.\(lab).lock" }

    // MARK: kill -9 of the daemon under traffic

    @Test(arguments: ["afxdp", "afpacket"])
    func killingTheDaemonUnderTrafficThenDownRemovesEverythingAndUpWorksAgain(datapath: String) throws {
        let lab = Harness.lab("wlcrk\(datapath.prefix(3))")
        let state = try Self.stateDirectory()
        let file = try Harness.topologyFile(Self.topology(lab, datapath: datapath))
        defer {
            _ = try? Harness.wl("down", lab, "--state-dir", state)
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }
        for round in 1...2 {
            let up = try Harness.wl("up", file, "--state-dir", state, timeout: 60)
            try #require(up.status == 0, "up (round \(round)): \(up.combined)")
            #expect(FileManager.default.fileExists(atPath: Self.lockPath(state: state, lab: lab)), "up leaves its lock file")
            try #require(try Self.ping(lab, state: state).status == 0, "ping before the crash (round \(round))")
            try Self.startTraffic(lab, state: state)
            let before = try Self.forwarded(lab, state: state) ?? 0
            let flowing = Harness.waitUntil(limit: 10) { ((try? Self.forwarded(lab, state: state)) ?? 0) > before + 100 }
            #expect(flowing, "traffic flows through the switch before the crash")

            let pid = try Self.daemonPID(state: state, lab: lab)
            #expect(Self.isRunning(pid))
            #expect(kill(pid, SIGKILL) == 0)
            #expect(Harness.waitUntil(limit: 10) { !Self.isRunning(pid) }, "the daemon died")
            // Nothing forwards now: the switch is gone.
            #expect(try Self.curl(lab, state: state).status != 0, "no daemon, no forwarding")

            let inodes = Set(Harness.namespaces(prefix: "wl-\(lab)-").compactMap(Self.namespaceInode))
            #expect(!Self.processes(inNamespaces: inodes).isEmpty, "iperf3 and the curl loop run in the lab")
            let down = try Harness.wl("down", lab, "--state-dir", state, timeout: 60)
            #expect(down.status == 0, "down after kill -9: \(down.combined)")
            #expect(Self.processes(inNamespaces: inodes).isEmpty, "down ended every process in the lab's namespaces")
            #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "namespaces left: \(Harness.namespaces(prefix: "wl-\(lab)-"))")
            #expect(!FileManager.default.fileExists(atPath: "\(state)/\(lab)"), "state directory left")
            #expect(!FileManager.default.fileExists(atPath: Self.lockPath(state: state, lab: lab)), "lock file left")
            let status = try Harness.wl("status", lab, "--state-dir", state)
            #expect(status.status != 0, "no lab after down: \(status.combined)")
        }
    }

    // MARK: kill -9 of `up` while it builds

    /// `up` killed at several moments of its work (before, while and after
    /// it creates namespaces, veths and the daemon): `down` removes what
    /// the state records and whatever runs in those namespaces, and the
    /// same file comes up again.
    @Test func killingUpWhileItBuildsThenDownRemovesWhatItMade() throws {
        let lab = Harness.lab("wlcru")
        let state = try Self.stateDirectory()
        let file = try Harness.topologyFile(Self.topology(lab))
        defer {
            _ = try? Harness.wl("down", lab, "--state-dir", state)
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }
        var killedWhileCreating = 0
        for delay in [0, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000] as [useconds_t] {
            var pid: pid_t = 0
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            for fd in [0, 1, 2] as [Int32] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0) }
            let words: [String] = [Harness.wirelab, "up", file, "--state-dir", state]
            let argv = words.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            try #require(posix_spawn(&pid, Harness.wirelab, &actions, nil, argv, environ) == 0)
            // Wait until it has written its state, then a little more.
            _ = Harness.waitUntil(limit: 10) { FileManager.default.fileExists(atPath: "\(state)/\(lab)/state.json") }
            usleep(delay)
            let phase = (try? String(contentsOfFile: "\(state)/\(lab)/state.json", encoding: .utf8))
                .map { $0.contains("\"creating\"") ? "creating" : "up" } ?? "none"
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            if phase == "creating" { killedWhileCreating += 1 }

            let down = try Harness.wl("down", lab, "--state-dir", state, timeout: 60)
            #expect(down.status == 0, "down after up was killed (\(delay) µs, \(phase)): \(down.combined)")
            #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "namespaces left (\(delay) µs): \(Harness.namespaces(prefix: "wl-\(lab)-"))")
            #expect(!FileManager.default.fileExists(atPath: "\(state)/\(lab)"), "state left (\(delay) µs)")
            #expect(!FileManager.default.fileExists(atPath: Self.lockPath(state: state, lab: lab)), "lock file left (\(delay) µs)")
        }
        #expect(killedWhileCreating > 0, "at least one kill landed while up was building")
        let up = try Harness.wl("up", file, "--state-dir", state, timeout: 60)
        #expect(up.status == 0, "up after the kills: \(up.combined)")
        #expect(try Self.ping(lab, state: state).status == 0, "and it forwards")
        print("wirelab crash test: up killed while creating in \(killedWhileCreating) of 8 cases")
    }

    // MARK: a second up

    @Test func aSecondUpOfALabThatIsUpRefusesAndChangesNothing() throws {
        let lab = Harness.lab("wlcr2")
        let state = try Self.stateDirectory()
        let file = try Harness.topologyFile(Self.topology(lab))
        defer {
            _ = try? Harness.wl("down", lab, "--state-dir", state)
            try? FileManager.default.removeItem(atPath: state)
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
        }
        let up = try Harness.wl("up", file, "--state-dir", state, timeout: 60)
        try #require(up.status == 0, "up: \(up.combined)")
        let stateBefore = try Data(contentsOf: URL(fileURLWithPath: "\(state)/\(lab)/state.json"))
        let pid = try Self.daemonPID(state: state, lab: lab)
        let namespaces = Harness.namespaces(prefix: "wl-\(lab)-")

        for _ in 1...3 {
            let again = try Harness.wl("up", file, "--state-dir", state, timeout: 60)
            #expect(again.status != 0)
            #expect(again.stderr.contains("lab \(lab) already exists") && again.stderr.contains("nothing was changed")
                    && again.stderr.contains("wirelab down \(lab)"), "clear refusal: \(again.combined)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(state)/\(lab)/state.json")) == stateBefore, "state unchanged")
        #expect(Self.isRunning(pid), "the daemon still runs")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-") == namespaces)
        #expect(try Self.ping(lab, state: state).status == 0, "the lab still forwards")
        #expect(try Self.curl(lab, state: state).stdout.contains("b"), "and serves")

        let down = try Harness.wl("down", lab, "--state-dir", state, timeout: 60)
        #expect(down.status == 0, "down: \(down.combined)")
        #expect(!FileManager.default.fileExists(atPath: Self.lockPath(state: state, lab: lab)), "lock file left")
        // A down of a lab that is not up says so, and leaves no lock file either.
        let twice = try Harness.wl("down", lab, "--state-dir", state)
        #expect(twice.status != 0 && twice.stderr.contains("no lab named \(lab)"), "\(twice.combined)")
        #expect(!FileManager.default.fileExists(atPath: Self.lockPath(state: state, lab: lab)), "lock file left by a refused down")
    }

    // MARK: two labs, and down --all beside foreign objects

    @Test func twoLabsSideBySideAndDownAllLeavesWhatItDidNotMake() throws {
        let one = Harness.lab("wlcra"), two = Harness.lab("wlcrb")
        let state = try Self.stateDirectory()
        let fileOne = try Harness.topologyFile(Self.topology(one))
        let fileTwo = try Harness.topologyFile(Self.topology(two, datapath: "afpacket"))
        // Foreign objects named so that a prefix match on `wl-`, or on the
        // lab's own `wl-<lab>-`, would take them: only the state says what
        // is the lab's. The link, route and nftables table live inside the
        // foreign namespace, never in the host's.
        let foreign = "wl-\(two)-wlforeign"
        defer {
            _ = try? Harness.wl("down", one, "--state-dir", state)
            _ = try? Harness.wl("down", two, "--state-dir", state)
            _ = try? Harness.run("ip", ["netns", "delete", foreign])
            try? FileManager.default.removeItem(atPath: state)
            for file in [fileOne, fileTwo] {
                try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path)
            }
        }
        for file in [fileOne, fileTwo] {
            let up = try Harness.wl("up", file, "--state-dir", state, timeout: 60)
            try #require(up.status == 0, "up \(file): \(up.combined)")
        }
        // Both use the same addresses, each in its own namespaces.
        for lab in [one, two] {
            #expect(try Self.ping(lab, state: state).status == 0, "\(lab) forwards")
            try Self.startTraffic(lab, state: state)
        }
        let before = try Self.forwarded(two, state: state) ?? 0
        let down = try Harness.wl("down", one, "--state-dir", state, timeout: 60)
        #expect(down.status == 0, "down \(one): \(down.combined)")
        #expect(Harness.namespaces(prefix: "wl-\(one)-").isEmpty)
        #expect(Harness.namespaces(prefix: "wl-\(two)-").count == 3, "\(two) keeps its namespaces")
        #expect(try Self.ping(two, state: state).status == 0, "\(two) still forwards after down \(one)")
        #expect(try Self.curl(two, state: state).stdout.contains("b"), "and serves")
        #expect(Harness.waitUntil(limit: 10) { ((try? Self.forwarded(two, state: state)) ?? 0) > before + 100 },
                "\(two)'s background traffic keeps flowing")

        // Foreign objects: a namespace, a link (a bridge: this kernel has no dummy), a route and an nftables table.
        let ip = { (args: [String]) throws -> Harness.Result in try Harness.run("ip", args) }
        try #require(try ip(["netns", "add", foreign]).status == 0)
        let made = [
            ["-n", foreign, "link", "add", "wl-foreign0", "type", "bridge"],
            ["-n", foreign, "link", "set", "wl-foreign0", "up"],
            ["-n", foreign, "address", "add", "10.231.0.1/24", "dev", "wl-foreign0"],
            ["-n", foreign, "route", "add", "10.232.0.0/16", "via", "10.231.0.2", "dev", "wl-foreign0"],
        ]
        for args in made { try #require(try ip(args).status == 0, "ip \(args.joined(separator: " "))") }
        let nft = try Harness.run("ip", ["netns", "exec", foreign, "nft", "add table inet wl_foreign"])
        try #require(nft.status == 0, "nft: \(nft.combined)")

        let all = try Harness.wl("down", "--all", "--state-dir", state, timeout: 60)
        #expect(all.status == 0, "down --all: \(all.combined)")
        #expect(all.stdout.contains("lab \(two) removed") && !all.stdout.contains("lab \(one) removed"), "\(all.combined)")
        #expect(Harness.namespaces(prefix: "wl-\(two)-") == [foreign], "only the foreign namespace is left")
        #expect(try ip(["-n", foreign, "link", "show", "wl-foreign0"]).status == 0, "the foreign link survives")
        #expect(try ip(["-n", foreign, "route", "show", "10.232.0.0/16"]).stdout.contains("via 10.231.0.2"), "the foreign route survives")
        let table = try Harness.run("ip", ["netns", "exec", foreign, "nft", "list table inet wl_foreign"])
        #expect(table.status == 0, "the foreign nftables table survives: \(table.combined)")
        for lab in [one, two] {
            #expect(!FileManager.default.fileExists(atPath: Self.lockPath(state: state, lab: lab)), "lock file of \(lab) left")
        }
        #expect(try Harness.run("ip", ["netns", "delete", foreign]).status == 0)
        #expect(Harness.namespaces(prefix: "wl-\(two)-").isEmpty)
    }
}
