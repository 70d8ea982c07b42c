import Foundation
import Testing

/// `wirelab fail` / `heal` of whole nodes on a live lab: cl → r1 (router)
/// → sw (switch) → srv (host with the built-in server). A router's power
/// cut stops pings that are running and its heal brings them back; a host's
/// cut freezes its server; a link failed on its own stays failed through a
/// node's fail and heal; `down` removes a lab with a frozen host at once.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct NodeFailureLabEndToEndTests {
    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: afpacket, capture: false }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 192.168.74.10/24 } }, routes: [ "default via 192.168.74.1" ] }
          r1:
            kind: router
            interfaces: { down: { ip: 192.168.74.1/24 }, up: { ip: 198.18.4.1/24 } }
          sw: { kind: switch }
          srv: { kind: host, interfaces: { e0: { ip: 198.18.4.80/24 } }, routes: [ "default via 198.18.4.1" ], serve: { http: 8080 } }
        links:
          - [ cl:e0, r1:down ]
          - [ r1:up, sw:p1 ]
          - [ srv:e0, sw:p2 ]
        """
    }

    static func status(_ lab: String) throws -> [String: Any] {
        let r = try Harness.wl("status", lab, "--json")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
    }

    static func pingOnce(_ lab: String) throws -> Bool {
        try Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-c", "1", "-W", "1", "198.18.4.80").status == 0
    }

    static func curl(_ lab: String) throws -> Bool {
        try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "1", "http://198.18.4.80:8080/").stdout == "srv\n"
    }

    /// State letter of /proc/PID/stat ("S", "T", …), nil if gone.
    static func state(_ pid: Int32) -> Character? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].dropFirst().first
    }

    static func servePID(_ lab: String) throws -> Int32 {
        let processes = try status(lab)["processes"] as? [[String: Any]] ?? []
        return Int32(processes.first { $0["role"] as? String == "serve" }?["pid"] as? Int ?? -1)
    }

    @Test func aRouterPowerCutStopsRunningPingsAndHealBringsThemBack() throws {
        let lab = Harness.lab("wldnr")
        try Harness.withLab(lab, Self.topology(lab)) { _, _ in
            #expect(Harness.waitUntil { (try? Self.pingOnce(lab)) == true })

            // 100 pings, 100 ms apart, while r1 fails at ~2 s and heals at ~4 s.
            nonisolated(unsafe) var pings: Harness.Result?
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                pings = try? Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-c", "100", "-i", "0.1", "-W", "1", "198.18.4.80")
                done.signal()
            }
            Thread.sleep(forTimeInterval: 2)
            let fail = try Harness.wl("fail", lab, "r1")
            #expect(fail.status == 0 && fail.stdout.contains("node r1 failed"), "\(fail.combined)")
            let failed = try Self.status(lab)
            #expect(failed["failedNodes"] as? [String] == ["r1"])
            let r1 = ((failed["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]])?.first { $0["node"] as? String == "r1" }
            #expect(r1?["powered"] as? Bool == false)
            #expect(try Harness.wl("status", lab).stdout.contains("failed nodes: r1"))
            Thread.sleep(forTimeInterval: 2)
            let heal = try Harness.wl("heal", lab, "r1")
            #expect(heal.status == 0 && heal.stdout.contains("node r1 healed"), "\(heal.combined)")
            done.wait()
            let output = try #require(pings).stdout
            let seqs = output.split(separator: "\n").compactMap { line -> Int? in
                guard line.contains("bytes from"), let r = line.range(of: "icmp_seq=") else { return nil }
                return Int(line[r.upperBound...].prefix { $0.isNumber })
            }
            // Answered before the cut, none in time for a while during it, answered again after the heal.
            // (Lost, or late: cl's kernel holds what it sends while it resolves
            // r1 again, and r1, powered on, asks for its neighbours at once —
            // which hands cl r1's MAC and releases the held pings.)
            #expect(seqs.contains { $0 < 15 }, "\(output)")
            let late = output.split(separator: "\n").filter { line in
                guard line.contains("bytes from"), let r = line.range(of: "time=") else { return false }
                return (Double(line[r.upperBound...].prefix { $0.isNumber || $0 == "." }) ?? 0) >= 500
            }.count
            let missing = Set(1...100).subtracting(seqs)
            #expect(missing.count + late >= 10, "a 2 s power cut loses or delays pings (\(missing.count) lost, \(late) late): \(output)")
            #expect(seqs.contains { $0 > 70 }, "pings come back after the heal: \(output)")
            #expect((try Self.status(lab)["failedNodes"] as? [String])?.isEmpty == true)
        }
    }

    @Test func aHostPowerCutFreezesItsServerAndALinkFailedOnItsOwnStaysFailed() throws {
        let lab = Harness.lab("wldnh")
        try Harness.withLab(lab, Self.topology(lab)) { _, _ in
            #expect(Harness.waitUntil { (try? Self.curl(lab)) == true })
            let pid = try Self.servePID(lab)
            try #require(pid > 0)

            #expect(try Harness.wl("fail", lab, "srv").status == 0)
            #expect(Self.state(pid) == "T", "the server is frozen")
            #expect(try !Self.curl(lab))
            #expect(try Harness.wl("fail", lab, "srv").stderr.contains("already failed"))
            #expect(try Harness.wl("heal", lab, "srv").status == 0)
            #expect(Self.state(pid) != "T")
            #expect(Harness.waitUntil { (try? Self.curl(lab)) == true }, "the server answers again (its default route is back)")

            // A link failed on its own stays failed through r1's fail and heal.
            #expect(try Harness.wl("fail", lab, "sw:p1").status == 0)
            #expect(try Harness.wl("fail", lab, "r1").status == 0)
            #expect(try Harness.wl("heal", lab, "r1").status == 0)
            let links = try Self.status(lab)["links"] as? [[String: Any]] ?? []
            #expect(links.first { $0["a"] as? String == "r1:up" }?["failed"] as? Bool == true)
            Thread.sleep(forTimeInterval: 1)
            #expect(try !Self.pingOnce(lab), "r1:up is still down")
            #expect(try Harness.wl("heal", lab, "r1:up").status == 0)
            #expect(Harness.waitUntil { (try? Self.pingOnce(lab)) == true })

            // And the other way: healing a link leaves the end on a failed node down.
            #expect(try Harness.wl("fail", lab, "r1").status == 0)
            #expect(try Harness.wl("fail", lab, "sw:p1").status == 0)
            #expect(try Harness.wl("heal", lab, "sw:p1").status == 0)
            let r1up = try Harness.wl("exec", "--lab", lab, "r1", "--", "ip", "-o", "link", "show", "dev", "up").stdout
            #expect(r1up.contains("state DOWN") && !r1up.contains(",UP"), "r1 is still failed: \(r1up)")
            #expect(try !Self.pingOnce(lab))
            #expect(try Harness.wl("heal", lab, "r1").status == 0)
            #expect(Harness.waitUntil { (try? Self.pingOnce(lab)) == true })
        }
    }

    /// A director's power cut stops its health checks too: a slow `rise`
    /// (3 × 1 s) would otherwise keep its reals out for seconds after the
    /// heal; with the checks paused it serves again at once.
    @Test func aDirectorPowerCutPausesItsHealthChecks() throws {
        let lab = Harness.lab("wldnl")
        let file = try Harness.topologyFile("""
            name: \(lab)
            defaults: { datapath: afpacket, capture: false }
            nodes:
              cl: { kind: host, interfaces: { e0: { ip: 10.74.0.50/24 } } }
              sw: { kind: switch }
              lvs:
                kind: director
                interfaces: { eth0: { ip: 10.74.0.2/24 } }
                services:
                  - { vip: 10.74.0.100, port: 80, mode: dr, reals: [ { ip: 10.74.0.11 } ],
                      health: { tcp: { interval: 1s, timeout: 500ms, fail: 1, rise: 3 } } }
              rs: { kind: host, interfaces: { eth0: { ip: 10.74.0.11/24 } }, serve: { http: 80 } }
            links:
              - [ cl:e0, sw:p1 ]
              - [ lvs:eth0, sw:p2 ]
              - [ rs:eth0, sw:p3 ]
            """)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = try Harness.run(Harness.wirelab, ["up", file], timeout: 60, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        func curl() throws -> Bool {
            try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "1", "http://10.74.0.100/").stdout == "rs\n"
        }
        #expect(Harness.waitUntil { (try? curl()) == true })
        #expect(try Harness.wl("fail", lab, "lvs").status == 0)
        #expect(try !curl())
        Thread.sleep(forTimeInterval: 2.5)   // checks would have failed (its interface is down) more than once
        #expect(try Harness.wl("heal", lab, "lvs").status == 0)
        #expect(Harness.waitUntil(limit: 1.5) { (try? curl()) == true }, "serves within 1.5 s of the heal, not after rise × interval")
        let lvs = try Harness.wl("lvs", lab, "--json").stdout
        #expect(!lvs.contains("\"health\":\"down\""), "\(lvs)")
    }

    @Test func downRemovesALabWithAFrozenHost() throws {
        let lab = Harness.lab("wldnd")
        try Harness.withLab(lab, Self.topology(lab)) { _, _ in
            let pid = try Self.servePID(lab)
            try #require(pid > 0)
            #expect(try Harness.wl("fail", lab, "srv").status == 0)
            #expect(Self.state(pid) == "T")
            let started = Date()
            let down = try Harness.wl("down", lab, timeout: 60)
            #expect(down.status == 0, "\(down.combined)")
            // Stopped, the server would ignore SIGTERM for the whole 2 s grace.
            #expect(Date().timeIntervalSince(started) < 2, "a frozen process does not hold down up")
            #expect(Self.state(pid) == nil || Self.state(pid) == "Z", "no stopped process left (ended; its reaper may not have run yet)")
            #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty)
        }
    }
}
