import Foundation
import Testing

/// Labs of kernel hosts only: built with `wirelab up`, checked with real
/// ping and curl, removed with `wirelab down` — and nothing left behind.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct HostLabEndToEndTests {
    static let twoHosts = """
        name: wlt2h
        nodes:
          alpha:
            kind: host
            interfaces: { eth0: { ip: 10.77.1.1/24 } }
            serve: { http: 8080 }
          beta:
            kind: host
            interfaces: { link-to-alpha: { ip: 10.77.1.2/24, mac: "02:00:00:77:01:02" } }
        links:
          - [ alpha:eth0, beta:link-to-alpha ]
        """

    func assertNothingLeft(_ lab: String) {
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "namespaces of \(lab) left behind")
        #expect(!FileManager.default.fileExists(atPath: "/run/wirelab/\(lab)"), "state of \(lab) left behind")
    }

    @Test func upPingCurlDown() throws {
        let file = try Harness.topologyFile(Self.twoHosts)
        defer { _ = try? Harness.wl("down", "wlt2h") }

        let up = try Harness.wl("up", file)
        #expect(up.status == 0, "up failed: \(up.combined)")
        #expect(up.stdout.contains("02:00:00:77:01:02"), "table shows the given MAC")
        #expect(up.stdout.contains("10.77.1.1/24"))
        #expect(Harness.namespaces(prefix: "wl-wlt2h-") == ["wl-wlt2h-alpha", "wl-wlt2h-beta"])

        let ping1 = try Harness.wl("exec", "--lab", "wlt2h", "beta", "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.77.1.1")
        #expect(ping1.status == 0, "ping beta → alpha: \(ping1.combined)")
        let ping2 = try Harness.wl("exec", "--lab", "wlt2h", "alpha", "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.77.1.2")
        #expect(ping2.status == 0, "ping alpha → beta: \(ping2.combined)")

        let curl = try Harness.wl("exec", "--lab", "wlt2h", "beta", "--", "curl", "-sS", "--max-time", "5", "http://10.77.1.1:8080/")
        #expect(curl.status == 0, "curl: \(curl.combined)")
        #expect(curl.stdout == "alpha\n", "the built-in server answers with its node's name")

        // A second `up` of the same lab says so and changes nothing.
        let again = try Harness.wl("up", file)
        #expect(again.status != 0)
        #expect(again.stderr.contains("already exists"), "\(again.stderr)")
        let stillUp = try Harness.wl("exec", "--lab", "wlt2h", "beta", "--", "curl", "-sS", "--max-time", "5", "http://10.77.1.1:8080/")
        #expect(stillUp.stdout == "alpha\n")

        let status = try Harness.wl("status", "wlt2h", "--json")
        #expect(status.status == 0, "\(status.combined)")
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect((json?["nodes"] as? [Any])?.count == 2)

        let down = try Harness.wl("down", "wlt2h")
        #expect(down.status == 0, "down: \(down.combined)")
        assertNothingLeft("wlt2h")
    }

    @Test func brokenFileCreatesNothing() throws {
        let file = try Harness.topologyFile("""
            name: wltbad
            nodes:
              a: { kind: host, interfaces: { eth0: { ip: 10.78.0.1/24 } } }
              b: { kind: host, interfaces: { eth0: { ip: 10.78.0.2/24 } } }
            links:
              - [ a:eth0, c:eth0 ]
            """)
        let up = try Harness.wl("up", file)
        #expect(up.status == 2)
        #expect(up.stderr.contains("topo.yaml:6:"), "error names file:line:column: \(up.stderr)")
        assertNothingLeft("wltbad")
    }

    /// A lab of `count` hosts in pairs, big enough that `up` takes a while.
    static func pairs(_ lab: String, count: Int) -> String {
        var nodes = "", links = ""
        for i in 0..<count {
            let pair = i / 2, side = i % 2 + 1
            nodes += "  h\(i): { kind: host, interfaces: { eth0: { ip: 10.79.\(pair).\(side)/24 } }, serve: { http: 80 } }\n"
            if side == 2 { links += "  - [ h\(i - 1):eth0, h\(i):eth0 ]\n" }
        }
        return "name: \(lab)\nnodes:\n\(nodes)links:\n\(links)"
    }

    @Test func killDashNineMidUpThenDownCleansEverything() throws {
        let file = try Harness.topologyFile(Self.pairs("wltcrash", count: 40))
        defer { _ = try? Harness.wl("down", "wltcrash") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.wirelab)
        process.arguments = ["up", file]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until `up` has created something, then kill it hard.
        let deadline = Date().addingTimeInterval(30)
        while Harness.namespaces(prefix: "wl-wltcrash-").isEmpty && process.isRunning && Date() < deadline { usleep(1_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()

        let down = try Harness.wl("down", "wltcrash")
        #expect(down.status == 0, "down after kill -9: \(down.combined)")
        assertNothingLeft("wltcrash")
    }

    @Test func killDashNineOfLabProcessesThenDown() throws {
        let file = try Harness.topologyFile(Self.pairs("wltkill", count: 4))
        defer { _ = try? Harness.wl("down", "wltkill") }
        let up = try Harness.wl("up", file)
        try #require(up.status == 0, "up: \(up.combined)")
        // Kill every process the lab started, as a crash would.
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "/run/wirelab/wltkill/state.json"))) as? [String: Any]
        let pids = (state?["processes"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int32 }
        #expect(!pids.isEmpty, "the lab records the servers it started")
        for pid in pids { kill(pid, SIGKILL) }

        let down = try Harness.wl("down", "wltkill")
        #expect(down.status == 0, "down: \(down.combined)")
        assertNothingLeft("wltkill")
    }

    @Test func downAllRemovesOnlyRecordedLabs() throws {
        // Its own state directory: `down --all` must not reach labs that
        // other tests run at the same time.
        let file = try Harness.topologyFile(Self.pairs("wltall", count: 2))
        let stateDir = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("state").path
        defer { _ = try? Harness.wl("down", "wltall", "--state-dir", stateDir) }
        // A namespace with the prefix that no lab recorded must survive.
        _ = try Harness.run("ip", ["netns", "add", "wl-notours-x"])
        defer { _ = try? Harness.run("ip", ["netns", "delete", "wl-notours-x"]) }
        try #require(try Harness.wl("up", file, "--state-dir", stateDir).status == 0)
        let down = try Harness.wl("down", "--all", "--state-dir", stateDir)
        #expect(down.status == 0, "\(down.combined)")
        #expect(Harness.namespaces(prefix: "wl-wltall-").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(stateDir)/wltall"))
        #expect(Harness.namespaces(prefix: "wl-notours-") == ["wl-notours-x"])
    }
}
