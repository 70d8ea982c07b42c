import Foundation
import Testing
import Wire

/// BGP and BFD live in a lab: wirelab routers peering over kernel TCP in
/// their namespaces, learned routes in the routers' tables, withdrawal on a
/// cut link (hold time, or BFD), BIRD as a peer, and a director that
/// announces its VIP only while a real server is healthy.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct BGPLabEndToEndTests {
    /// h1 — r1 ⇉ (r2 | r3) — sw — h2. r1 (AS 65001) learns 10.71.40.0/24
    /// from r2 (65002, hold 3 s, no BFD) and r3 (65003, hold 3 s, BFD
    /// 50 ms × 3) as one ECMP pair, and announces 10.71.1.0/24 to both. No
    /// static route anywhere on the routers; h2 answers through r3.
    static func routers(_ lab: String) -> String {
        """
        name: \(lab)
        nodes:
          h1: { kind: host, interfaces: { e0: { ip: 10.71.1.10/24 } }, routes: [ "default via 10.71.1.1" ] }
          r1:
            kind: router
            interfaces: { down: { ip: 10.71.1.1/24 }, a: { ip: 10.71.12.1/30 }, b: { ip: 10.71.13.1/30 } }
            bgp:
              asn: 65001
              router-id: 10.71.1.1
              multipath: 2
              neighbors:
                - { ip: 10.71.12.2, asn: 65002, hold: 3, keepalive: 1 }
                - { ip: 10.71.13.2, asn: 65003, hold: 3, keepalive: 1, bfd: true }
              announce: [ 10.71.1.0/24 ]
            bfd: { interval: 50ms, multiplier: 3 }
          r2:
            kind: router
            interfaces: { a: { ip: 10.71.12.2/30 }, lan: { ip: 10.71.40.2/24 } }
            bgp: { asn: 65002, router-id: 10.71.12.2, neighbors: [ { ip: 10.71.12.1, asn: 65001, hold: 3, keepalive: 1 } ],
                   announce: [ 10.71.40.0/24 ] }
          r3:
            kind: router
            interfaces: { a: { ip: 10.71.13.2/30 }, lan: { ip: 10.71.40.3/24 } }
            bgp: { asn: 65003, router-id: 10.71.13.2, neighbors: [ { ip: 10.71.13.1, asn: 65001, hold: 3, keepalive: 1, bfd: true } ],
                   announce: [ 10.71.40.0/24 ] }
            bfd: { interval: 50ms, multiplier: 3 }
          sw: { kind: switch }
          h2: { kind: host, interfaces: { e0: { ip: 10.71.40.80/24 } }, routes: [ "10.71.1.0/24 via 10.71.40.3" ] }
        links:
          - [ h1:e0, r1:down ]
          - [ r1:a, r2:a ]
          - [ r1:b, r3:a ]
          - [ r2:lan, sw:p1 ]
          - [ r3:lan, sw:p2 ]
          - [ h2:e0, sw:p3 ]
        """
    }

    /// `status --json`'s BGP view of NODE: sessions by peer, routes by prefix.
    struct View {
        var sessions: [String: [String: Any]] = [:]
        var routes: [String: [String]] = [:]
        var announced: [String] = []
        func state(_ peer: String) -> String? { sessions[peer]?["state"] as? String }
    }

    static func bgp(_ lab: String, _ node: String) -> View {
        guard let r = try? Harness.wl("status", lab, "--json"), r.status == 0,
              let object = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              let nodes = (object["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]],
              let bgp = nodes.first(where: { $0["node"] as? String == node })?["bgp"] as? [String: Any] else { return View() }
        var view = View()
        for s in bgp["sessions"] as? [[String: Any]] ?? [] { if let peer = s["peer"] as? String { view.sessions[peer] = s } }
        for route in bgp["routes"] as? [[String: Any]] ?? [] {
            if let p = route["prefix"] as? String { view.routes[p] = route["nextHops"] as? [String] ?? [] }
        }
        view.announced = bgp["announced"] as? [String] ?? []
        return view
    }

    /// Seconds until `condition` holds (polled every 20 ms), nil after `limit`.
    static func time(limit: TimeInterval, _ condition: () -> Bool) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if condition() { return Date().timeIntervalSince(start) }
            usleep(20_000)
        }
        return nil
    }

    @Test func routersLearnAnECMPPairAndWithdrawOnACutByHoldTimeOrBFD() throws {
        let lab = Harness.lab("wlgb")
        let file = try Harness.topologyFile(Self.routers(lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = try Harness.wl("up", file, timeout: 60)
        try #require(up.status == 0, "up: \(up.combined)")
        let prefix = "10.71.40.0/24", viaR2 = "10.71.12.2", viaR3 = "10.71.13.2"

        // Both sessions come up; r1 installs the pair, r2 and r3 learn r1's LAN.
        let learned = Self.time(limit: 20) { Self.bgp(lab, "r1").routes[prefix]?.count == 2 }
        let r1 = Self.bgp(lab, "r1")
        try #require(learned != nil, "r1 did not learn \(prefix) from both: \(r1.sessions) \(r1.routes)")
        print("BGP: r1 has \(prefix) via \(r1.routes[prefix]!) \(String(format: "%.1f", learned!)) s after up")
        #expect(r1.state(viaR2) == "Established" && r1.state(viaR3) == "Established")
        #expect(r1.sessions[viaR2]?["prefixesReceived"] as? Int == 1)
        let bfdUp = Self.time(limit: 5) { Self.bgp(lab, "r1").sessions[viaR3]?["bfd"] as? String == "Up" }
        #expect(bfdUp != nil, "BFD with r3: \(Self.bgp(lab, "r1").sessions[viaR3] ?? [:])")
        #expect(Self.time(limit: 5) { Self.bgp(lab, "r3").routes["10.71.1.0/24"] == ["10.71.13.1"] } != nil, "r3 learned r1's LAN")

        // Traffic over the learned routes (no static route on any router).
        let ping = try Harness.wl("exec", "--lab", lab, "h1", "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.71.40.80")
        #expect(ping.status == 0, "h1 → h2 over BGP routes: \(ping.combined)")

        // Cut r1—r2 (no BFD): the hold time (3 s) takes r2's next hop out.
        let cut = try Harness.wl("fail", lab, "r1:a")
        try #require(cut.status == 0, "fail r1:a: \(cut.combined)")
        let holdWithdrawal = Self.time(limit: 10) { Self.bgp(lab, "r1").routes[prefix] == [viaR3] }
        #expect(holdWithdrawal != nil, "r2's next hop still there: \(Self.bgp(lab, "r1").routes)")
        if let t = holdWithdrawal { print("BGP: r1—r2 cut, r2 withdrawn from the ECMP group after \(String(format: "%.2f", t)) s (hold 3 s, no BFD)") }
        #expect((holdWithdrawal ?? 0) > 1.5, "withdrawn by the hold timer, not before it")
        let after = try Harness.wl("exec", "--lab", lab, "h1", "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.71.40.80")
        #expect(after.status == 0, "h1 → h2 through r3 alone: \(after.combined)")

        // Heal: the session comes back and the pair with it.
        _ = try Harness.wl("heal", lab, "r1:a")
        let back = Self.time(limit: 20) { Self.bgp(lab, "r1").routes[prefix]?.count == 2 }
        #expect(back != nil, "the pair did not come back: \(Self.bgp(lab, "r1").sessions)")
        if let t = back { print("BGP: r1—r2 healed, pair back after \(String(format: "%.2f", t)) s") }

        // Cut r1—r3 (BFD 50 ms × 3): r3 leaves the group within BFD's detection time.
        #expect(Self.time(limit: 5) { Self.bgp(lab, "r1").sessions[viaR3]?["bfd"] as? String == "Up" } != nil)
        _ = try Harness.wl("fail", lab, "r1:b")
        let bfdWithdrawal = Self.time(limit: 10) { Self.bgp(lab, "r1").routes[prefix] == [viaR2] }
        #expect(bfdWithdrawal != nil, "r3's next hop still there: \(Self.bgp(lab, "r1").routes)")
        if let t = bfdWithdrawal { print("BGP: r1—r3 cut, r3 withdrawn after \(String(format: "%.2f", t)) s (BFD 50 ms × 3; hold 3 s)") }
        #expect((bfdWithdrawal ?? 9) < 1.5, "BFD should beat the 3 s hold time")
        let view = Self.bgp(lab, "r1")
        #expect(view.state(viaR3) != "Established")
        #expect(view.sessions[viaR3]?["bfd"] as? String == "Down")
    }
}
