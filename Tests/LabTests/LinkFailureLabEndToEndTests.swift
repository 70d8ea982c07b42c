import Foundation
import Testing

/// `wirelab fail` / `heal` on a live lab: r1 and r2 joined by two links,
/// ECMP both ways. Failing one link takes both ends down; both routers see
/// the carrier go and drop the next hop through it, so every new flow still
/// gets through; `heal` brings the next hop back and both links carry flows.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct LinkFailureLabEndToEndTests {
    static func topology(_ lab: String, datapath: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: \(datapath), capture: false }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 192.168.73.10/24 } }, routes: [ "default via 192.168.73.1" ] }
          r1:
            kind: router
            interfaces:
              down: { ip: 192.168.73.1/24 }
              up-a: { ip: 172.21.1.1/30 }
              up-b: { ip: 172.21.2.1/30 }
            routes: [ { to: 198.18.3.0/24, via: [ 172.21.1.2, 172.21.2.2 ] } ]
            ecmp: { seed: 7 }
          r2:
            kind: router
            interfaces:
              a: { ip: 172.21.1.2/30 }
              b: { ip: 172.21.2.2/30 }
              lan: { ip: 198.18.3.1/24 }
            routes: [ { to: 192.168.73.0/24, via: [ 172.21.1.1, 172.21.2.1 ] } ]
          srv: { kind: host, interfaces: { e0: { ip: 198.18.3.80/24 } }, routes: [ "default via 198.18.3.1" ], serve: { http: 8080 } }
        links:
          - [ cl:e0, r1:down ]
          - [ r1:up-a, r2:a ]
          - [ r1:up-b, r2:b ]
          - [ r2:lan, srv:e0 ]
        """
    }

    /// The lab's data-plane node NAME from `status --json`.
    static func node(_ lab: String, _ name: String) throws -> [String: Any] {
        let status = try Harness.wl("status", lab, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let nodes = (json?["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        return nodes.first { $0["node"] as? String == name } ?? [:]
    }

    static func nextHops(_ lab: String, _ name: String) throws -> Int {
        (try node(lab, name)["counters"] as? [String: Any])?["next-hops"] as? Int ?? -1
    }

    /// TX frames of r1's port IFACE.
    static func tx(_ lab: String, _ iface: String) throws -> Int {
        let ports = try node(lab, "r1")["ports"] as? [[String: Any]] ?? []
        return ports.first { $0["interface"] as? String == iface }?["txFrames"] as? Int ?? -1
    }

    /// 64 TCP connections from distinct source ports (so ECMP spreads them); how many got 200.
    static func flows(_ lab: String, base: Int) throws -> Int {
        let script = (0..<64).map { "curl -s --max-time 3 --local-port \(base + $0) -o /dev/null -w '%{http_code}\\n' http://198.18.3.80:8080/" }
            .joined(separator: "; ")
        let r = try Harness.wl("exec", "--lab", lab, "cl", "--", "sh", "-c", script, timeout: 300)
        return r.stdout.split(separator: "\n").filter { $0 == "200" }.count
    }

    @Test(arguments: ["afpacket", "afxdp"])
    func failingAnECMPLinkKeepsEveryFlowGoingAndHealRestoresIt(datapath: String) throws {
        let lab = Harness.lab("wllf\(datapath == "afxdp" ? "x" : "p")")
        try Harness.withLab(lab, Self.topology(lab, datapath: datapath)) { _, _ in
            #expect(try Self.nextHops(lab, "r1") == 2 && Self.nextHops(lab, "r2") == 2)

            #expect(try Self.flows(lab, base: 42000) == 64, "all flows through both paths")
            let aBefore = try Self.tx(lab, "up-a"), bBefore = try Self.tx(lab, "up-b")
            #expect(aBefore > 0 && bBefore > 0, "both links carry flows: up-a \(aBefore), up-b \(bBefore)")

            let fail = try Harness.wl("fail", lab, "r1:up-b")
            try #require(fail.status == 0, "fail: \(fail.combined)")
            #expect(fail.stdout.contains("r1:up-b") && fail.stdout.contains("r2:b"))
            // Both routers notice within ~2 s (the daemon reads carrier 4 times a second).
            let noticed = try Harness.waitUntil(limit: 2.5) { try Self.nextHops(lab, "r1") == 1 && Self.nextHops(lab, "r2") == 1 }
            #expect(noticed, "r1 and r2 dropped the next hop through the failed link")
            let r1 = try Self.node(lab, "r1")
            let upB = (r1["ports"] as? [[String: Any]] ?? []).first { $0["interface"] as? String == "up-b" }
            #expect(upB?["carrier"] as? Bool == false)
            #expect((r1["linkChanges"] as? Int ?? 0) >= 1)
            let status = try Harness.wl("status", lab)
            #expect(status.stdout.contains("failed links: r1:up-b") && status.stdout.contains("FAILED"), "\(status.stdout)")
            let json = try JSONSerialization.jsonObject(with: Data(try Harness.wl("status", lab, "--json").stdout.utf8)) as? [String: Any]
            #expect(json?["failedLinks"] as? [String] == ["r1:up-b"])

            #expect(try Self.flows(lab, base: 43000) == 64, "every new flow gets through on the live link")
            let again = try Harness.wl("fail", lab, "r2:b")
            #expect(again.status == 1 && again.stderr.contains("already failed"), "\(again.combined)")

            let heal = try Harness.wl("heal", lab, "r2:b")
            try #require(heal.status == 0, "heal: \(heal.combined)")
            let back = try Harness.waitUntil(limit: 2.5) { try Self.nextHops(lab, "r1") == 2 && Self.nextHops(lab, "r2") == 2 }
            #expect(back, "the next hop is back on both routers")
            let bHealed = try Self.tx(lab, "up-b")
            #expect(try Self.flows(lab, base: 44000) == 64, "all flows after heal")
            #expect(try Self.tx(lab, "up-b") > bHealed, "the healed link carries flows again")
            let healed = try JSONSerialization.jsonObject(with: Data(try Harness.wl("status", lab, "--json").stdout.utf8)) as? [String: Any]
            #expect((healed?["failedLinks"] as? [String])?.isEmpty == true)
            let notFailed = try Harness.wl("heal", lab, "r1:up-b")
            #expect(notFailed.status == 1 && notFailed.stderr.contains("is not failed"), "\(notFailed.combined)")
        }
    }
}
