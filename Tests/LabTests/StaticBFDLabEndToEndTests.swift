import Foundation
import Testing
import Wire

/// BFD for static ECMP next hops, live: r1 routes 10.72.9.0/24 via r2 and
/// r3 (a static route with `bfd: true`, 50 ms × 3) across a switch, so a
/// dead next hop keeps r1's carrier up and only BFD can tell. r2 and r3
/// have `bfd:` alone and answer r1's sessions (passive). h2 answers h1
/// over a link of its own to r1, so the way back never crosses r2 or r3.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct StaticBFDLabEndToEndTests {
    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        nodes:
          h1: { kind: host, interfaces: { e0: { ip: 10.72.1.10/24 } }, routes: [ "default via 10.72.1.1" ] }
          r1:
            kind: router
            interfaces: { down: { ip: 10.72.1.1/24 }, up: { ip: 10.72.2.1/24 }, back: { ip: 10.72.5.1/30 } }
            routes: [ { to: 10.72.9.0/24, via: [ 10.72.2.2, 10.72.2.3 ], bfd: true } ]
            bfd: { interval: 50ms, multiplier: 3 }
          r2: { kind: router, interfaces: { a: { ip: 10.72.2.2/24 }, lan: { ip: 10.72.9.2/24 } }, bfd: { interval: 50ms, multiplier: 3 } }
          r3: { kind: router, interfaces: { a: { ip: 10.72.2.3/24 }, lan: { ip: 10.72.9.3/24 } }, bfd: { interval: 50ms, multiplier: 3 } }
          sw1: { kind: switch }
          sw2: { kind: switch }
          h2:
            kind: host
            interfaces: { e0: { ip: 10.72.9.80/24 }, e1: { ip: 10.72.5.2/30 } }
            routes: [ "10.72.1.0/24 via 10.72.5.1" ]
            # requests come in on e0, answers leave by e1: no reverse-path filter
            run: [ "sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.e0.rp_filter=0" ]
        links:
          - [ h1:e0, r1:down ]
          - [ r1:up, sw1:p1 ]
          - [ r2:a, sw1:p2 ]
          - [ r3:a, sw1:p3 ]
          - [ r2:lan, sw2:p1 ]
          - [ r3:lan, sw2:p2 ]
          - [ h2:e0, sw2:p3 ]
          - [ h2:e1, r1:back ]
        """
    }

    /// `status --json`: r1's BFD sessions (peer → state, routes), and a node's frames sent on a port.
    static func status(_ lab: String) -> [String: Any]? {
        guard let r = try? Harness.wl("status", lab, "--json"), r.status == 0,
              let object = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else { return nil }
        return object["datapath"] as? [String: Any]
    }

    static func node(_ status: [String: Any]?, _ name: String) -> [String: Any]? {
        (status?["nodes"] as? [[String: Any]])?.first { $0["node"] as? String == name }
    }

    static func sessions(_ lab: String) -> [String: (state: String, routes: [String])] {
        var out: [String: (String, [String])] = [:]
        for s in node(status(lab), "r1")?["bfd"] as? [[String: Any]] ?? [] {
            if let peer = s["peer"] as? String { out[peer] = (s["state"] as? String ?? "?", s["routes"] as? [String] ?? []) }
        }
        return out
    }

    static func sent(_ status: [String: Any]?, _ name: String, _ port: String) -> Int {
        let ports = node(status, name)?["ports"] as? [[String: Any]] ?? []
        return (ports.first { $0["interface"] as? String == port }?["txFrames"] as? Int) ?? 0
    }

    final class Box: @unchecked Sendable {   // written by the ping thread, read after it finished
        var result: Harness.Result?
        var done = false
    }

    @Test func aPowerCutNextHopLeavesTheGroupWithinTheDetectionTime() throws {
        let lab = Harness.lab("wlsg")
        let file = try Harness.topologyFile(Self.topology(lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = try Harness.wl("up", file, timeout: 60)
        try #require(up.status == 0, "up: \(up.combined)")
        let r2 = "10.72.2.2", r3 = "10.72.2.3", prefix = "10.72.9.0/24"

        // Both sessions Up, both next hops in the group.
        let allUp = BGPLabEndToEndTests.time(limit: 10) {
            let s = Self.sessions(lab)
            return s[r2]?.state == "Up" && s[r3]?.state == "Up" && s[r2]?.routes == [prefix] && s[r3]?.routes == [prefix]
        }
        try #require(allUp != nil, "sessions: \(Self.sessions(lab))")
        print("static BFD: both next hops Up \(String(format: "%.2f", allUp!)) s after up")
        let text = try Harness.wl("status", lab)
        #expect(text.stdout.contains("BFD") && text.stdout.contains("static") && text.stdout.contains("passive"), "\(text.stdout)")

        // Which next hop carries h1 → h2 (one ICMP flow, one next hop)?
        let before = Self.status(lab)
        let warm = try Harness.wl("exec", "--lab", lab, "h1", "--", "ping", "-c", "20", "-i", "0.01", "-W", "1", "10.72.9.80")
        try #require(warm.status == 0, "h1 → h2: \(warm.combined)")
        let after = Self.status(lab)
        let viaR2 = Self.sent(after, "r2", "lan") - Self.sent(before, "r2", "lan")
        let viaR3 = Self.sent(after, "r3", "lan") - Self.sent(before, "r3", "lan")
        let (victim, victimHop, survivorHop) = viaR2 > viaR3 ? ("r2", r2, r3) : ("r3", r3, r2)
        #expect(max(viaR2, viaR3) >= 20, "frames to h2: r2 \(viaR2), r3 \(viaR3)")

        // 6 s of pings every 10 ms; 1 s in, the next hop they use loses power.
        let box = Box()
        let pinger = Thread {
            box.result = try? Harness.wl("exec", "--lab", lab, "h1", "--", "ping", "-c", "600", "-i", "0.01", "-W", "1", "10.72.9.80")
            box.done = true
        }
        pinger.start()
        Thread.sleep(forTimeInterval: 1)
        let cut = try Harness.wl("fail", lab, victim)
        try #require(cut.status == 0, "fail \(victim): \(cut.combined)")
        let gone = BGPLabEndToEndTests.time(limit: 5) {
            let s = Self.sessions(lab)
            return s[victimHop]?.state == "Down" && s[victimHop]?.routes == ["\(prefix) (out)"] && s[survivorHop]?.routes == [prefix]
        }
        #expect(gone != nil, "\(victim) still in the group: \(Self.sessions(lab))")
        if let gone { print("static BFD: \(victim) power cut, its next hop out of r1's group after \(String(format: "%.3f", gone)) s (status polled every 20 ms)") }
        while !box.done { Thread.sleep(forTimeInterval: 0.1) }
        let ping = try #require(box.result)
        // "600 packets transmitted, 588 received"
        let numbers = ping.stdout.split(separator: "\n").first { $0.contains("packets transmitted") }?
            .split(separator: " ").compactMap { Int($0) } ?? []
        try #require(numbers.count >= 2, "ping: \(ping.combined)")
        let lost = numbers[0] - numbers[1]
        print("static BFD: pings every 10 ms through \(victim): \(lost) of \(numbers[0]) lost (≈ \(lost * 10) ms gap; BFD 50 ms × 3)")
        #expect(lost >= 5, "the cut should cost some pings (the next hop was in use)")
        #expect(lost <= 30, "lost \(lost) pings: more than 300 ms without a next hop")

        // Power back: the session comes Up again and the next hop returns.
        _ = try Harness.wl("heal", lab, victim)
        let back = BGPLabEndToEndTests.time(limit: 10) {
            let s = Self.sessions(lab)
            return s[victimHop]?.state == "Up" && s[victimHop]?.routes == [prefix]
        }
        #expect(back != nil, "\(victim) did not come back: \(Self.sessions(lab))")
        if let back { print("static BFD: \(victim) healed, back in the group after \(String(format: "%.2f", back)) s") }
    }

    // MARK: BIRD as a static next hop

    /// r1's static route via bh (a kernel host running BIRD's `protocol
    /// bfd` with r1 as its `neighbor`) and r3 (wirelab, answering).
    static func withBird(_ lab: String) -> String {
        """
        name: \(lab)
        nodes:
          r1:
            kind: router
            interfaces: { up: { ip: 10.74.2.1/24 } }
            routes: [ { to: 10.74.9.0/24, via: [ 10.74.2.2, 10.74.2.3 ], bfd: true } ]
            bfd: { interval: 50ms, multiplier: 3 }
          bh: { kind: host, interfaces: { e0: { ip: 10.74.2.2/24 } } }
          r3: { kind: router, interfaces: { a: { ip: 10.74.2.3/24 } }, bfd: { interval: 50ms, multiplier: 3 } }
          sw: { kind: switch }
        links:
          - [ r1:up, sw:p1 ]
          - [ bh:e0, sw:p2 ]
          - [ r3:a, sw:p3 ]
        """
    }

    @Test(.enabled(if: BGPLabEndToEndTests.bird != nil && BGPLabEndToEndTests.birdc != nil, BGPLabEndToEndTests.birdWhy))
    func birdIsAStaticNextHopWithBFD() throws {
        let lab = Harness.lab("wlsgb")
        let file = try Harness.topologyFile(Self.withBird(lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            BGPLabEndToEndTests.stopBird(dir: dir)
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = try Harness.wl("up", file, timeout: 60)
        try #require(up.status == 0, "up: \(up.combined)")
        let conf = """
            router id 10.74.2.2;
            log "\(dir)/bird.log" all;
            protocol device { scan time 1; }
            protocol bfd bfd1 {
              interface "*" { min rx interval 50 ms; min tx interval 50 ms; idle tx interval 1000 ms; multiplier 3; };
              neighbor 10.74.2.1;
            }

            """
        _ = try BGPLabEndToEndTests.startBird(lab: lab, dir: dir, conf: conf)
        func bird(_ command: String) -> String { BGPLabEndToEndTests.birdc(dir, command) }
        let prefix = "10.74.9.0/24", bh = "10.74.2.2", r3 = "10.74.2.3"

        // Both sessions Up (BIRD's and r3's), both next hops in the group.
        let allUp = BGPLabEndToEndTests.time(limit: 15) {
            let s = Self.sessions(lab)
            return s[bh]?.state == "Up" && s[r3]?.state == "Up" && s[bh]?.routes == [prefix] && s[r3]?.routes == [prefix]
        }
        try #require(allUp != nil, "sessions: \(Self.sessions(lab)); BIRD: \(bird("show bfd sessions"))")
        var shown = ""
        #expect(BGPLabEndToEndTests.time(limit: 5) { shown = bird("show bfd sessions"); return shown.contains("10.74.2.1") && shown.contains("Up") } != nil,
                "BIRD's side: \(shown)")
        print("static BFD with BIRD: Up \(String(format: "%.2f", allUp!)) s after BIRD started; BIRD shows:\n\(shown)")

        // BIRD's BFD off: its next hop leaves within the detection time (BIRD
        // 2.0.12 sends no AdminDown when disabled: r1 detects the silence).
        _ = bird("disable bfd1")
        let gone = BGPLabEndToEndTests.time(limit: 5) {
            let s = Self.sessions(lab)
            return s[bh]?.state == "Down" && s[bh]?.routes == ["\(prefix) (out)"] && s[r3]?.routes == [prefix]
        }
        #expect(gone != nil, "BIRD's next hop still there: \(Self.sessions(lab))")
        if let gone { print("static BFD with BIRD: BIRD's bfd disabled, its next hop out after \(String(format: "%.3f", gone)) s") }
        #expect((gone ?? 9) < 1, "detected by BFD (50 ms × 3), not later")

        // On again: back in the group.
        _ = bird("enable bfd1")
        let back = BGPLabEndToEndTests.time(limit: 10) {
            let s = Self.sessions(lab)
            return s[bh]?.state == "Up" && s[bh]?.routes == [prefix]
        }
        #expect(back != nil, "BIRD's next hop did not come back: \(Self.sessions(lab))")
    }
}
