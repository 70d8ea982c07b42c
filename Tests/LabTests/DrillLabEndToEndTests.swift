import Foundation
import Testing

/// `wirelab drill` on a live lab: client → gw (router) → sw (switch) → lvs
/// (NAT director, TCP health checks every 200 ms) → rs1, rs2, rs3. The
/// first drill cuts rs1's power and heals it: the streams on rs1 are lost
/// and only those, requests go on through rs2 and rs3 once the health check
/// has taken rs1 out (so the longest gap is bounded by its detection), and
/// rs1 answers again after the heal. The second fails the router's link to
/// the switch for 1 s: every answer stops for about that long and every
/// stream is lost. Shapes and physical bounds are asserted, not exact numbers.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct DrillLabEndToEndTests {
    static let streams = 6

    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: afpacket, capture: false }
        nodes:
          client: { kind: host, interfaces: { eth0: { ip: 203.0.113.50/24 } }, routes: [ "default via 203.0.113.1" ] }
          gw:
            kind: router
            interfaces: { eth0: { ip: 203.0.113.1/24 }, eth1: { ip: 10.71.0.254/24 } }
          sw: { kind: switch }
          lvs:
            kind: director
            interfaces: { eth0: { ip: 10.71.0.2/24 } }
            routes: [ "default via 10.71.0.254" ]
            services:
              - vip: 10.71.0.100
                port: 80
                mode: nat
                scheduler: rr
                reals: [ { ip: 10.71.0.11, port: 8080 }, { ip: 10.71.0.12, port: 8080 }, { ip: 10.71.0.13, port: 8080 } ]
                health: { tcp: { interval: 200ms, timeout: 200ms, fail: 2, rise: 1 } }
          rs1: { kind: host, interfaces: { eth0: { ip: 10.71.0.11/24 } }, serve: { http: 8080 } }
          rs2: { kind: host, interfaces: { eth0: { ip: 10.71.0.12/24 } }, serve: { http: 8080 } }
          rs3: { kind: host, interfaces: { eth0: { ip: 10.71.0.13/24 } }, serve: { http: 8080 } }
        links:
          - [ client:eth0, gw:eth0 ]
          - [ gw:eth1, sw:p1 ]
          - [ lvs:eth0, sw:p2 ]
          - [ rs1:eth0, sw:p3 ]
          - [ rs2:eth0, sw:p4 ]
          - [ rs3:eth0, sw:p5 ]
        drills:
          - name: a real server dies
            load: { from: [ client ], http: "http://10.71.0.100/", clients: 4, streams: \(streams), seconds: 8,
                    stream-interval: 50ms, timeout: 500ms, stream-timeout: 500ms }
            events: [ { at: 2s, fail: rs1 }, { at: 5s, heal: rs1 } ]
            expect: { max-interruption: 1500ms, established-lost: 0 }
          - name: the router's link to the switch fails
            load: { from: client, http: "http://10.71.0.100/", clients: 4, streams: \(streams), seconds: 6, timeout: 500ms,
                    stream-timeout: 500ms }
            events: [ { at: 2s, fail: "gw:eth1" }, { at: 3s, heal: "sw:p1" } ]
            expect: { max-interruption: 5s }
        """
    }

    typealias JSON = [String: Any]

    @Test func drillsReportInterruptionsFailedRequestsAndLostStreams() throws {
        let lab = Harness.lab("wldd")
        let file = try Harness.topologyFile(Self.topology(lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let junit = dir + "/drills.xml"
        defer {
            _ = try? Harness.wl("down", lab)   // normally already down: `drill` always takes it down
            try? FileManager.default.removeItem(atPath: dir)
        }
        let r = try Harness.run(Harness.wirelab, ["drill", file, "--json", "--junit", junit], timeout: 180, directory: dir)
        // The first drill expects no lost stream, and rs1's are lost: exit 1.
        #expect(r.status == 1, "\(r.combined)")
        #expect(r.stderr.contains("fail rs1 at"), "progress names each event: \(r.stderr)")
        #expect(!r.stderr.contains("after the drill:"), "a drill leaves nothing failed, and heals nothing twice: \(r.stderr)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "drill takes the lab down")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? JSON, "\(r.combined)")
        let drills = try #require(report["drills"] as? [JSON])
        try #require(drills.count == 2)

        // 1. rs1's power cut.
        let real = drills[0]
        #expect(real["status"] as? String == "fail")
        let windows = try #require(real["windows"] as? [JSON])
        #expect(windows.map { $0["event"] as? String } == ["start", "fail rs1", "heal rs1"])
        let start = windows[0], fail = windows[1], heal = windows[2]
        #expect(start["failedRequests"] as? Int == 0 && start["streamsLost"] as? Int == 0, "\(start)")
        #expect(Set(start["answeredAfter"] as? [String] ?? []) == ["rs1", "rs2", "rs3"], "\(start)")
        // Applied on time (within a second of the plan).
        let applied = try #require(fail["start"] as? Double)
        #expect(applied >= 2 && applied < 3, "\(fail)")
        // Only rs1's streams are lost, and at least one was on rs1 (rr over 3 reals).
        let lostBy = fail["streamsLostByServer"] as? [String: Int] ?? [:]
        #expect(Set(lostBy.keys) == ["rs1"], "\(fail)")
        #expect((lostBy["rs1"] ?? 0) >= 1 && (lostBy["rs1"] ?? 0) < Self.streams, "\(fail)")
        #expect(real["streamsLost"] as? Int == lostBy["rs1"], "no stream lost outside the failure")
        // Requests to rs1 fail until the health check takes it out; the others go on.
        #expect((fail["failedRequests"] as? Int ?? 0) >= 1, "\(fail)")
        #expect(Set(fail["answeredAfter"] as? [String] ?? []) == ["rs2", "rs3"], "\(fail)")
        // The longest gap: rs2 and rs3 keep answering, so well under the
        // detection bound (2 × 200 ms checks + their timeout + the request timeout).
        let gap = try #require(fail["interruption"] as? Double)
        #expect(gap < 1.5, "\(fail)")
        #expect(fail["gapEnd"] as? Double != nil, "answers came again")
        // After the heal, rs1 is back in the rotation.
        #expect((heal["answeredAfter"] as? [String] ?? []).contains("rs1"), "\(heal)")
        let verdicts = try #require(real["verdicts"] as? [JSON])
        #expect(verdicts.map { $0["name"] as? String } == ["max-interruption", "established-lost"])
        #expect(verdicts.map { $0["status"] as? String } == ["pass", "fail"], "\(verdicts)")
        #expect(verdicts[1]["measured"] as? String == String(lostBy["rs1"] ?? -1))

        // 2. The router's link down for 1 s.
        let link = drills[1]
        #expect(link["status"] as? String == "pass", "\(link)")
        let lw = try #require(link["windows"] as? [JSON])
        #expect(lw.map { $0["event"] as? String } == ["start", "fail gw:eth1", "heal sw:p1"])
        let outage = try #require(lw[1]["interruption"] as? Double)
        // Nothing answers while the link is down (1 s, less the answers in flight), and it comes back.
        #expect(outage >= 0.8 && outage < 4, "\(lw[1])")
        #expect(link["streamsLost"] as? Int == Self.streams, "every stream crosses that link: \(link)")
        #expect((lw[1]["failedRequests"] as? Int ?? 0) >= 1)
        #expect(!(lw[2]["answeredAfter"] as? [String] ?? []).isEmpty, "requests resume after the heal: \(lw[2])")

        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("<testcase classname=\"\(lab).drills\" name=\"a real server dies\""))
        #expect(xml.contains("<failure message=\"established-lost &lt;= 0: measured"))
    }

    /// `check` runs the file's drills after its checks, on a fresh lab, and
    /// reports both; `--no-drills` leaves them out.
    @Test func checkRunsTheDrillsAfterTheChecks() throws {
        let lab = Harness.lab("wldc")
        let file = try Harness.topologyFile("""
            name: \(lab)
            nodes:
              h1: { kind: host, interfaces: { e0: { ip: 10.72.0.1/24 } } }
              h2: { kind: host, interfaces: { e0: { ip: 10.72.0.2/24 } }, serve: { http: 8080 } }
            links:
              - [ h1:e0, h2:e0 ]
            checks:
              - { name: h2 answers, http: { from: h1, url: "http://10.72.0.2:8080/", count: 2 }, expect-spread: { h2: ">= 2" } }
            drills:
              - name: h2 freezes
                load: { from: h1, http: "http://10.72.0.2:8080/", clients: 2, streams: 2, seconds: 3, timeout: 300ms,
                        stream-timeout: 300ms }
                events: [ { at: 1s, fail: h2 }, { at: 2s, heal: h2 } ]
                expect: { max-failed-requests: 1000, established-lost: 0 }
            """)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let r = try Harness.run(Harness.wirelab, ["check", file, "--json"], timeout: 120, directory: dir)
        // The check passes; the drill fails: h2's streams are lost while it is frozen.
        #expect(r.status == 1, "\(r.combined)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? JSON, "\(r.combined)")
        #expect((json["checks"] as? JSON)?["passed"] as? Int == 1)
        let drill = try #require(((json["drills"] as? JSON)?["drills"] as? [JSON])?.first)
        #expect(drill["status"] as? String == "fail" && drill["streamsLost"] as? Int == 2, "\(drill)")
        let windows = drill["windows"] as? [JSON] ?? []
        #expect((windows.last?["answeredAfter"] as? [String]) == ["h2"], "h2 answers again after its heal: \(windows)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty)

        let skipped = try Harness.run(Harness.wirelab, ["check", file, "--no-drills"], timeout: 120, directory: dir)
        #expect(skipped.status == 0, "\(skipped.combined)")
        #expect(!skipped.stdout.contains("h2 freezes"))
    }

    /// A load that gets no answer at all cannot measure anything: the drill
    /// is inconclusive (exit 3), not failed, and the lab still comes down.
    @Test func aServiceThatNeverAnswersMakesTheDrillInconclusive() throws {
        let lab = Harness.lab("wldi")
        let file = try Harness.topologyFile("""
            name: \(lab)
            nodes:
              h1: { kind: host, interfaces: { e0: { ip: 10.73.0.1/24 } } }
              h2: { kind: host, interfaces: { e0: { ip: 10.73.0.2/24 } } }
            links:
              - [ h1:e0, h2:e0 ]
            drills:
              - name: nobody listens
                load: { from: h1, http: "http://10.73.0.2:8080/", seconds: 2 }
                expect: { max-failed-requests: 0 }
            """)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let r = try Harness.run(Harness.wirelab, ["drill", file], timeout: 120, directory: dir)
        #expect(r.status == 3, "\(r.combined)")
        #expect(r.stdout.contains("INCONCLUSIVE  nobody listens"), "\(r.stdout)")
        #expect(r.stdout.contains("h1 got no answer from http://10.73.0.2:8080/"), "\(r.stdout)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty)
    }

    @Test func anUnknownDrillNameListsTheDrills() throws {
        let lab = Harness.lab("wlddn")
        let file = try Harness.topologyFile(Self.topology(lab))
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) }
        let r = try Harness.wl("drill", file, "no such drill")
        #expect(r.status == 2)
        #expect(r.stderr.contains("has no drill named 'no such drill'; its drills: 'a real server dies', 'the router's link to the switch fails'"), "\(r.stderr)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "nothing was built")
    }
}
