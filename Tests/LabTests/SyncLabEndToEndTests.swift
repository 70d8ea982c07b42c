import Foundation
import Testing

/// Connection sync on a live lab: two directors with `sync:` on one
/// segment. The gateway sends the VIP to lvsa (a /32 route, no VRRP); a
/// TCP connection through lvsa shows up, synced, in lvsb's table (`lvs
/// --json` counts and `status --json` sync counters), and lvsb sends none
/// of its own.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct SyncLabEndToEndTests {
    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { capture: false }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 192.168.81.10/24 } }, routes: [ "default via 192.168.81.1" ] }
          gw:
            kind: router
            interfaces: { down: { ip: 192.168.81.1/24 }, up: { ip: 10.81.0.254/24 } }
            routes: [ { to: 10.81.0.100/32, via: 10.81.0.2 } ]
          lvsa:
            kind: director
            interfaces: { eth0: { ip: 10.81.0.2/24 } }
            routes: [ "default via 10.81.0.254" ]
            sync: { group: 81, interface: eth0 }
            services: [ { vip: 10.81.0.100, port: 80, mode: dr, scheduler: rr, reals: [ { ip: 10.81.0.11 }, { ip: 10.81.0.12 } ] } ]
          lvsb:
            kind: director
            interfaces: { eth0: { ip: 10.81.0.3/24 } }
            routes: [ "default via 10.81.0.254" ]
            sync: { group: 81, interface: eth0 }
            services: [ { vip: 10.81.0.100, port: 80, mode: dr, scheduler: rr, reals: [ { ip: 10.81.0.11 }, { ip: 10.81.0.12 } ] } ]
          rs1: { kind: host, interfaces: { e0: { ip: 10.81.0.11/24 } }, routes: [ "default via 10.81.0.254" ], serve: { http: 80 } }
          rs2: { kind: host, interfaces: { e0: { ip: 10.81.0.12/24 } }, routes: [ "default via 10.81.0.254" ], serve: { http: 80 } }
          sw: { kind: switch }
        links:
          - [ cl:e0, gw:down ]
          - [ gw:up, sw:p1 ]
          - [ lvsa:eth0, sw:p2 ]
          - [ lvsb:eth0, sw:p3 ]
          - [ rs1:e0, sw:p4 ]
          - [ rs2:e0, sw:p5 ]
        """
    }

    static func counters(_ lab: String, _ name: String) throws -> [String: Int] {
        let status = try Harness.wl("status", lab, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let nodes = (json?["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        return nodes.first { $0["node"] as? String == name }?["counters"] as? [String: Int] ?? [:]
    }

    /// (active, inactive) connections per real of NODE's one service, from `lvs --json`.
    static func connections(_ lab: String, _ name: String) throws -> [String: (Int, Int)] {
        let out = try Harness.wl("lvs", lab, name, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        let director = (json?["directors"] as? [[String: Any]])?.first
        let reals = (director?["services"] as? [[String: Any]])?.first?["reals"] as? [[String: Any]] ?? []
        var result: [String: (Int, Int)] = [:]
        for r in reals {
            result[r["address"] as? String ?? "?"] = (r["activeConnections"] as? Int ?? -1, r["inactiveConnections"] as? Int ?? -1)
        }
        return result
    }

    @Test func aConnectionThroughOneDirectorIsInTheOthersTable() throws {
        let lab = Harness.lab("wlsync")
        try Harness.withLab(lab, Self.topology(lab)) { _, _ in

            let curl = try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "5", "http://10.81.0.100/")
            #expect(curl.status == 0 && (curl.stdout.contains("rs1") || curl.stdout.contains("rs2")), "\(curl.combined)")

            // The flush deadline is 20 ms; the live run loop ticks at least once a second.
            let synced = try Harness.waitUntil(limit: 5) { try Self.counters(lab, "lvsb")["synced-connections"] == 1 }
            let a = try Self.counters(lab, "lvsa"), b = try Self.counters(lab, "lvsb")
            #expect(synced, "lvsb holds lvsa's connection: \(b)")
            #expect(a["connections-created"] == 1 && a["sync-entries-sent"] ?? 0 >= 2 && a["sync-messages-sent"] ?? 0 >= 1, "\(a)")
            #expect(b["sync-messages-received"] == a["sync-messages-sent"], "every message arrived: \(a) \(b)")
            #expect(b["sync-installed"] == 1 && b["sync-entries-received"] == a["sync-entries-sent"], "\(b)")
            #expect(b["connections-created"] == 0 && b["sync-entries-sent"] == 0 && (b["connections"] ?? 0) == 1, "\(b)")
            #expect(a["sync-messages-received"] == 0, "lvsa ignores its own messages: \(a)")

            // lvs on both: the same real holds the connection (inactive once it closed).
            let onA = try Self.connections(lab, "lvsa"), onB = try Self.connections(lab, "lvsb")
            let realA = onA.first { $0.value.0 + $0.value.1 == 1 }?.key
            #expect(realA != nil && onB.first { $0.value.0 + $0.value.1 == 1 }?.key == realA, "lvsa \(onA), lvsb \(onB)")
            let text = try Harness.wl("lvs", lab, "lvsb")
            #expect(text.stdout.contains("Sync: ") && text.stdout.contains("sync-installed 1"), "\(text.stdout)")
            let status = try Harness.wl("status", lab)
            #expect(status.stdout.contains("SYNC") && status.stdout.contains("INSTALLED"), "\(status.stdout)")

            // Ten more connections: lvsb ends up with every entry lvsa has.
            let script = (0..<10).map { _ in "curl -s --max-time 5 -o /dev/null -w '%{http_code}\\n' http://10.81.0.100/" }
                .joined(separator: "; ")
            let more = try Harness.wl("exec", "--lab", lab, "cl", "--", "sh", "-c", script, timeout: 120)
            #expect(more.stdout.split(separator: "\n").filter { $0 == "200" }.count == 10, "\(more.combined)")
            let all = try Harness.waitUntil(limit: 5) { try Self.counters(lab, "lvsb")["synced-connections"] == 11 }
            let a2 = try Self.counters(lab, "lvsa"), b2 = try Self.counters(lab, "lvsb")
            #expect(all && a2["connections"] == 11 && b2["connections"] == 11, "lvsa \(a2), lvsb \(b2)")
            #expect(b2["sync-installed"] == 11 && b2["sync-messages-received"] == a2["sync-messages-sent"], "\(a2) \(b2)")
        }
    }
}
