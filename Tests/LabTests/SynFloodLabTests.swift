import Foundation
import Testing
import Wire

/// A spoofed SYN flood at a NAT VIP, live: one lab host sends 100,000 SYNs
/// from 100,000 spoofed sources (198.18.0.0/15, nowhere routed) through
/// the Swift router to the director, whose table holds 65,536 entries (the
/// default; the topology file does not set it). Meanwhile a second host's
/// curls keep getting answers; afterwards the director's counters show the
/// evictions (`syn-flood-evicted`), no `table-full` drops, and its table
/// within its limit, and a new request is still answered.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct SynFloodLabTests {
    static let floodCount = 100_000

    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { capture: false }
        nodes:
          client: { kind: host, interfaces: { eth0: { ip: 100.64.7.7/24 } }, routes: [ "default via 100.64.7.1" ] }
          user: { kind: host, interfaces: { eth0: { ip: 100.64.8.8/24 } }, routes: [ "default via 100.64.8.1" ] }
          gw:
            kind: router
            interfaces: { out: { ip: 100.64.7.1/24 }, out2: { ip: 100.64.8.1/24 }, in: { ip: 10.61.0.254/24 } }
          sw: { kind: switch }
          lvs:
            kind: director
            interfaces: { eth0: { ip: 10.61.0.2/24 } }
            routes: [ "default via 10.61.0.254" ]
            services:
              - vip: 10.61.0.100
                port: 80
                scheduler: rr
                mode: nat
                reals:
                  - { ip: 10.61.0.11, port: 8081 }
                  - { ip: 10.61.0.12, port: 8081 }
          one: { kind: host, interfaces: { eth0: { ip: 10.61.0.11/24 } }, routes: [ "default via 10.61.0.254" ], serve: { http: 8081 } }
          two: { kind: host, interfaces: { eth0: { ip: 10.61.0.12/24 } }, routes: [ "default via 10.61.0.254" ], serve: { http: 8081 } }
        links:
          - [ client:eth0, gw:out ]
          - [ user:eth0, gw:out2 ]
          - [ gw:in, sw:p1 ]
          - [ lvs:eth0, sw:p2 ]
          - [ one:eth0, sw:p3 ]
          - [ two:eth0, sw:p4 ]
        """
    }

    /// SYNs to VIP:80 from COUNT spoofed sources, as Ethernet frames on
    /// eth0 to the gateway's MAC (AF_PACKET), about 20,000 a second; stops
    /// after COUNT frames or 60 s; prints how many it sent.
    static let flooder = #"""
    import socket, struct, sys, time
    gw = bytes.fromhex(sys.argv[1].replace(':', ''))
    count = int(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(('eth0', 0))
    me = open('/sys/class/net/eth0/address').read().strip()
    eth = gw + bytes.fromhex(me.replace(':', '')) + b'\x08\x00'
    vip = socket.inet_aton('10.61.0.100')
    def csum(b):
        if len(b) % 2: b += b'\0'
        s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
        while s >> 16: s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff
    start = time.time(); sent = 0
    for k in range(count):
        src = struct.pack('!I', 0xC6120000 | ((k * 2654435761) & 0x1FFFF))
        sport = 1024 + (k * 7919) % 64000
        tcp = struct.pack('!HHIIBBHHH', sport, 80, k, 0, 5 << 4, 0x02, 64240, 0, 0)
        tcp = tcp[:16] + struct.pack('!H', csum(src + vip + struct.pack('!BBH', 0, 6, 20) + tcp)) + tcp[18:]
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40, k & 0xffff, 0, 64, 6, 0, src, vip)
        ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
        s.send(eth + ip + tcp)
        sent += 1
        if sent % 200 == 0:
            ahead = sent / 20000.0 - (time.time() - start)
            if ahead > 0: time.sleep(ahead)
            if time.time() - start > 60: break
    print('sent %d in %.1f s' % (sent, time.time() - start))
    """#

    static func directorStatus(_ lab: String) throws -> (counters: [String: Int], drops: [String: Int]) {
        let status = try Harness.wl("status", lab, "--json")
        let nodes = ((try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8))) as? [String: Any])
            .flatMap { ($0["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] } ?? []
        let lvs = nodes.first { $0["node"] as? String == "lvs" }
        return (lvs?["counters"] as? [String: Int] ?? [:], lvs?["drops"] as? [String: Int] ?? [:])
    }

    @Test func spoofedSynFloodAtANatVipLeavesRoomForRealClients() throws {
        let lab = Harness.lab("wlsf")
        let file = try Harness.topologyFile(Self.topology(lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        var flooderPID: Int32 = 0
        defer {
            if flooderPID > 0 { kill(flooderPID, SIGKILL) }
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let (up, mac) = try Harness.upReportingMACs(file, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        let gwMAC = try #require(mac["gw:out"])
        let first = try Harness.wl("exec", "--lab", lab, "user", "--", "curl", "-s", "--max-time", "5", "http://10.61.0.100/", timeout: 30)
        #expect(["one", "two"].contains(first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "before: \(first.combined)")

        // The flood, in the background from the client's namespace.
        let script = "\(dir)/flood.py", log = "\(dir)/flood.log"
        try Self.flooder.write(toFile: script, atomically: true, encoding: .utf8)
        let started = try Harness.run("/bin/sh", ["-c",
            "ip netns exec wl-\(lab)-client /usr/bin/python3 \"$0\" \(gwMAC) \(Self.floodCount) > \"$1\" 2>&1 & echo $!", script, log])
        flooderPID = Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        try #require(flooderPID > 0, "flooder: \(started.combined)")

        // Requests from the other host while the flood runs (and until it ends).
        var answered = 0, asked = 0, fullDuring = 0
        let floodStart = Date()
        while asked < 200 {
            let r = try Harness.wl("exec", "--lab", lab, "user", "--", "curl", "-s", "--max-time", "5", "http://10.61.0.100/", timeout: 30)
            asked += 1
            if ["one", "two"].contains(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) { answered += 1 }
            if let c = try? Self.directorStatus(lab).counters, c["connections"] == c["connection-limit"] { fullDuring += 1 }
            if kill(flooderPID, 0) != 0 && asked >= 10 { break }
            usleep(100_000)
        }
        let floodDone = Harness.waitUntil(limit: 90) { kill(flooderPID, 0) != 0 || waitpid(flooderPID, nil, WNOHANG) != 0 }
        let floodLog = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(floodDone, "the flooder ends by itself")
        if floodDone { flooderPID = 0 }

        // After the flood (its SYN_RECV entries still fill the table for 60 s).
        let after = try Harness.wl("exec", "--lab", lab, "user", "--", "sh", "-c",
                                   (0..<10).map { _ in "curl -s --max-time 5 http://10.61.0.100/" }.joined(separator: "; "), timeout: 60)
        let afterAnswers = after.stdout.split(separator: "\n").filter { $0 == "one" || $0 == "two" }.count
        let (counters, drops) = try Self.directorStatus(lab)
        let evicted = counters["syn-flood-evicted"] ?? 0, entries = counters["connections"] ?? -1, limit = counters["connection-limit"] ?? 0
        print("syn flood live: \(floodLog.trimmingCharacters(in: .whitespacesAndNewlines)) (\(String(format: "%.1f", Date().timeIntervalSince(floodStart))) s); "
              + "curl during \(answered)/\(asked) answered (table full at \(fullDuring) of them), after \(afterAnswers)/10; "
              + "evicted \(evicted), entries \(entries) of \(limit), table-full drops \(drops["table-full"] ?? 0), "
              + "director received \(counters["received"] ?? 0)")
        #expect(floodLog.hasPrefix("sent \(Self.floodCount)"), "flooder: \(floodLog)")
        #expect(answered == asked && asked >= 10, "every request during the flood answered: \(answered)/\(asked)")
        #expect(afterAnswers == 10, "after the flood: \(after.combined)")
        #expect(limit == 65536 && entries <= limit && entries > 60_000, "table within its limit: \(entries) of \(limit)")
        // Every connection made beyond the table's room evicted one embryonic
        // entry (on a loaded machine some of the flood is lost before the
        // director: count the connections it made, not the SYNs sent).
        let created = counters["connections-created"] ?? 0
        #expect(created > limit, "the flood filled the table: \(created) connections made")
        #expect(evicted >= created - limit - 1_000 && evicted <= created - limit, "evictions counted: \(evicted) of \(created) made")
        #expect(drops["table-full"] == nil, "no connection refused: \(drops)")
        let text = try Harness.wl("status", lab)
        let row = text.stdout.split(separator: "\n").first { $0.hasPrefix("lvs ") && $0.contains("65536") }
        #expect(text.stdout.contains("SYN-FLOOD EVICTED") && row?.contains(String(evicted)) == true, "status: \(text.combined)")
        print(text.stdout.split(separator: "\n").suffix(from: text.stdout.split(separator: "\n").firstIndex { $0.hasPrefix("DIRECTOR") } ?? 0).prefix(3).joined(separator: "\n"))
    }
}
