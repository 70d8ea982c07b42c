import Foundation
import Testing
import Wire

/// A director with three reals and a short health-check interval: killing
/// one real's server process takes it out within interval × fail (measured
/// and printed), no request made after that fails, and once a server runs
/// there again it comes back after `rise` good checks.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct HealthCheckLabEndToEndTests {
    static let interval = 0.5, timeout = 0.5
    static let fail = 2, rise = 2

    static func topology(_ lab: String, check: String, datapath: String) -> String {
        """
        name: \(lab)
        defaults: { capture: false, datapath: \(datapath) }
        nodes:
          client: { kind: host, interfaces: { eth0: { ip: 100.64.9.9/24 } }, routes: [ "default via 100.64.9.1" ] }
          gw:
            kind: router
            interfaces: { out: { ip: 100.64.9.1/24 }, in: { ip: 10.62.0.254/24 } }
          sw: { kind: switch }
          lvs:
            kind: director
            interfaces: { eth0: { ip: 10.62.0.2/24 } }
            routes: [ "default via 10.62.0.254" ]
            services:
              - vip: 10.62.0.100
                port: 80
                scheduler: rr
                mode: nat
                reals:
                  - { ip: 10.62.0.11, port: 8081 }
                  - { ip: 10.62.0.12, port: 8081 }
                  - { ip: 10.62.0.13, port: 8081 }
                health: { \(check): { interval: \(Int(interval * 1000))ms, timeout: \(Int(timeout * 1000))ms, fail: \(fail), rise: \(rise) } }
          one: { kind: host, interfaces: { eth0: { ip: 10.62.0.11/24 } }, serve: { http: 8081 } }
          two: { kind: host, interfaces: { eth0: { ip: 10.62.0.12/24 } }, serve: { http: 8081 } }
          three: { kind: host, interfaces: { eth0: { ip: 10.62.0.13/24 } }, serve: { http: 8081 } }
        links:
          - [ client:eth0, gw:out ]
          - [ gw:in, sw:p1 ]
          - [ lvs:eth0, sw:p2 ]
          - [ one:eth0, sw:p3 ]
          - [ two:eth0, sw:p4 ]
          - [ three:eth0, sw:p5 ]
        """
    }

    struct RealState { var health: String?; var weight: Int?; var error: String? }

    static func reals(_ lab: String) throws -> [String: RealState] {
        let lvs = try Harness.wl("lvs", lab, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(lvs.stdout.utf8)) as? [String: Any]
        let reals = ((json?["directors"] as? [[String: Any]])?.first?["services"] as? [[String: Any]])?.first?["reals"] as? [[String: Any]] ?? []
        var result: [String: RealState] = [:]
        for r in reals {
            guard let address = r["address"] as? String else { continue }
            result[address] = RealState(health: r["health"] as? String, weight: r["weight"] as? Int, error: r["healthError"] as? String)
        }
        return result
    }

    /// Polls `wirelab lvs` until `real` is in `health`; the seconds it took, or nil at `limit`.
    static func waitFor(_ lab: String, real: String, health: String, limit: Double) throws -> (Double?, RealState?) {
        let start = Date()
        var last: RealState?
        while Date().timeIntervalSince(start) < limit {
            last = try reals(lab)[real]
            if last?.health == health { return (Date().timeIntervalSince(start), last) }
            usleep(20_000)
        }
        return (nil, last)
    }

    static func requests(_ lab: String, _ count: Int) throws -> [Substring] {
        let script = (0..<count).map { _ in "curl -s --max-time 3 http://10.62.0.100/ || echo FAILED" }.joined(separator: "; ")
        return try Harness.wl("exec", "--lab", lab, "client", "--", "sh", "-c", script, timeout: 120).stdout.split(separator: "\n")
    }

    /// The checks reach the reals through the director's kernel: over AF_XDP
    /// an XDP pass rule hands it their answers; over AF_PACKET it gets a copy
    /// of every frame anyway.
    @Test(arguments: zip(["tcp", "http"], ["afxdp", "afpacket"]))
    func aKilledRealIsTakenOutAndComesBack(check: String, datapath: String) throws {
        let lab = Harness.lab("wlthc\(check.prefix(1))")
        let file = try Harness.topologyFile(Self.topology(lab, check: check, datapath: datapath))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = try Harness.run(Harness.wirelab, ["up", file], timeout: 60, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        #expect(up.stdout.contains("lvs: kernel address 10.62.0.2/24 on eth0"), "up says what it configured: \(up.stdout)")

        // All up after the first checks; every real answers.
        for real in ["10.62.0.11", "10.62.0.12", "10.62.0.13"] {
            let (t, state) = try Self.waitFor(lab, real: real, health: "up", limit: 5)
            #expect(t != nil, "\(real) healthy at start: \(String(describing: state))")
        }
        let before = try Self.requests(lab, 30)
        #expect(before.count == 30 && !before.contains("FAILED"), "before: \(before)")
        #expect(Set(before) == ["one", "two", "three"], "rr over three reals: \(Set(before))")

        // Kill three's server (by the PID the lab recorded).
        let stateData = try Data(contentsOf: URL(fileURLWithPath: "/run/wirelab/\(lab)/state.json"))
        let state = try JSONSerialization.jsonObject(with: stateData) as? [String: Any]
        let processes = state?["processes"] as? [[String: Any]] ?? []
        let pid = try #require(processes.first { $0["node"] as? String == "three" && $0["role"] as? String == "serve" }?["pid"] as? Int)
        try #require(kill(pid_t(pid), SIGKILL) == 0)
        let (down, downState) = try Self.waitFor(lab, real: "10.62.0.13", health: "down", limit: 10)
        let bound = Self.interval * Double(Self.fail)
        print("\(check) health check (\(datapath)): killed real taken out after \(down.map { String(format: "%.3f", $0) } ?? "never") s (interval × fail = \(bound) s); error: \(downState?.error ?? "-")")
        let taken = try #require(down, "three never marked down: \(String(describing: downState))")
        // The last good check can be just before the kill; the fail-th failed one is interval × fail later (+ polling, + scheduling margin).
        #expect(taken <= bound + 0.4, "taken out within interval × fail: \(taken) s")
        #expect(downState?.weight == 0, "a failed real gets weight 0: \(String(describing: downState))")
        let listing = try Harness.wl("lvs", lab).stdout
        #expect(listing.contains("10.62.0.13:8081") && listing.contains("(failed)"), "wirelab lvs shows it: \(listing)")
        let log = (try? String(contentsOfFile: "/run/wirelab/\(lab)/logs/daemon.log", encoding: .utf8)) ?? ""
        #expect(log.contains("real 10.62.0.13:8081 DOWN"), "the daemon logs the change: \(log)")

        // No new request fails once it is out.
        let after = try Self.requests(lab, 40)
        #expect(after.count == 40 && !after.contains("FAILED"), "no request fails after it is out: \(after)")
        #expect(!after.contains("three") && Set(after) == ["one", "two"], "the dead real gets nothing: \(Set(after))")

        // A server runs there again: back after `rise` good checks.
        let restart = try Harness.wl("exec", "--lab", lab, "three", "--", "sh", "-c",
                                     "\(Harness.wirelab) serve --http 8081 --name three >/dev/null 2>&1 &")
        #expect(restart.status == 0, "restart: \(restart.combined)")
        let (back, backState) = try Self.waitFor(lab, real: "10.62.0.13", health: "up", limit: 10)
        print("\(check) health check (\(datapath)): restarted real back after \(back.map { String(format: "%.3f", $0) } ?? "never") s (interval × rise = \(Self.interval * Double(Self.rise)) s)")
        #expect(back != nil && back! <= Self.interval * Double(Self.rise) + 1.0, "back after rise: \(String(describing: back))")
        #expect(backState?.weight == 1, "weight restored: \(String(describing: backState))")
        let again = try Self.requests(lab, 30)
        #expect(again.count == 30 && !again.contains("FAILED") && again.contains("three"), "three serves again: \(again)")
    }
}
