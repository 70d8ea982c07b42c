import Foundation
import Testing
import Topology
import Wire
@testable import Datapath
@testable import Lab

/// Drills on the simulator's virtual clock: the simulated load
/// (`SimLoad`), events applied on time (`SimDrill`), observations.
@Suite struct SimDrillTests {
    static let here = SourceLocation(file: "SimDrillTests", line: 1, column: 1)

    static func drill(from: [String] = ["client"], to address: String, port: Int = 80, clients: Int = 4,
                      streams: Int = 2, intervalMs: Int = 100, seconds: Int = 6, timeoutMs: Int = 500,
                      events: [(ms: Int, DrillEvent.Action, DrillEvent.Target)] = []) -> Drill {
        Drill(name: "test", load: DrillLoad(from: from, address: IPv4Address(address)!, port: port, path: "/",
                                            clients: clients, streams: streams,
                                            streamInterval: DurationSpec(milliseconds: intervalMs),
                                            duration: .seconds(seconds), requestTimeout: DurationSpec(milliseconds: timeoutMs),
                                            streamTimeout: DurationSpec(milliseconds: timeoutMs)),
              events: events.map { DrillEvent(at: DurationSpec(milliseconds: $0.ms), action: $0.1, target: $0.2, location: here) },
              expect: DrillExpectations(), location: here)
    }

    static func nextHops(_ sim: Simulator, _ router: String) -> Int {
        guard case let .forwarder(.router(r)) = sim.element(router)! else { return -1 }
        return r.fib.liveNextHopCount
    }

    static func simulator(_ file: String) throws -> Simulator {
        try Simulator(topology: SimulatorTests.load(file), options: SimDrill.simulatorOptions)
    }

    @Test func aHealthyLoadAnswersEveryRequestAndKeepsEveryStream() throws {
        let sim = try Self.simulator("lvs-dr.yaml")
        let result = try SimDrill.run(Self.drill(to: "198.51.100.3", clients: 3, streams: 2, intervalMs: 50, seconds: 2),
                                      on: sim)
        let o = result.observations
        #expect(o.duration == 2)
        // A loop starts a request every 50 ms (the stream interval), for 2 s.
        #expect(o.requests.count == 3 * 40)
        #expect(o.requests.allSatisfy { $0.answered && $0.end >= $0.start && $0.end - $0.start < 0.01 })
        #expect(o.requests.allSatisfy { $0.start < 2 })
        // Both real servers answer (rr over rs1 and rs2, weight 2).
        let by = Dictionary(grouping: o.requests, by: { $0.answeredBy ?? "-" }).mapValues(\.count)
        #expect(Set(by.keys) == ["rs1", "rs2"])
        #expect(Set(o.requests.map(\.client)) == [0, 1, 2])
        #expect(o.streams.count == 2)
        for s in o.streams {
            #expect(s.lost == nil)
            #expect(s.established != nil && s.established! < 0.01)
            // A message every 50 ms for 2 s.
            #expect(s.answered == 40)
            #expect(s.longestGap > 0.049 && s.longestGap < 0.052)
            #expect(s.answeredBy == "rs1" || s.answeredBy == "rs2")
        }
        #expect(result.applied.isEmpty)
    }

    /// The client's only link down from 2 s to 4 s, longer than the request
    /// timeout: every request in the outage fails, every stream is lost
    /// there, and requests are answered again once it heals.
    @Test func anOutageOfTheOnlyPathFailsEverythingInItAndNothingElse() throws {
        let sim = try Self.simulator("ecmp.yaml")
        let link = Endpoint("client:eth0")!
        let result = try SimDrill.run(Self.drill(to: "10.0.2.2", clients: 4, streams: 3, seconds: 6,
                                                 events: [(2000, .fail, .link(link)), (4000, .heal, .link(link))]),
                                      on: sim)
        #expect(result.applied == [.init(event: 0, at: 2), .init(event: 1, at: 4)])
        let o = result.observations
        for r in o.requests {
            if r.start < 2 && r.end <= 2 {
                #expect(r.answered, "before the outage: \(r)")
            } else if r.start >= 4 {
                #expect(r.answered, "after the heal: \(r)")
            } else {
                #expect(!r.answered, "in the outage: \(r)")
                #expect(abs(r.end - r.start - 0.5) < 0.0015)
            }
        }
        // Each loop spent the 2 s in requests timing out after 0.5 s.
        let failed = o.requests.filter { !$0.answered }
        #expect(failed.count == 4 * 4)
        #expect(o.requests.contains { $0.start >= 4 && $0.answered })
        #expect(o.streams.count == 3)
        for s in o.streams {
            // Its message at 2.0x s went unanswered for 0.5 s.
            let lost = try #require(s.lost)
            #expect(lost > 2.5 && lost < 2.61)
            #expect(s.answered >= 19 && s.answered <= 21)
        }
    }

    /// The same path down for only 300 ms, with a 2.5 s request timeout:
    /// what was lost is sent again, so no request fails and no stream is
    /// lost — they are only late: a SYN lost in the outage goes again after
    /// 1 s, a stream message after 200 ms (still in the outage) and 400 ms.
    @Test func aShortOutageDelaysButLosesNothing() throws {
        let sim = try Self.simulator("ecmp.yaml")
        let link = Endpoint("client:eth0")!
        let result = try SimDrill.run(Self.drill(to: "10.0.2.2", clients: 4, streams: 3, seconds: 5, timeoutMs: 2500,
                                                 events: [(2000, .fail, .link(link)), (2300, .heal, .link(link))]),
                                      on: sim)
        let o = result.observations
        #expect(o.requests.allSatisfy { $0.answered })
        let late = o.requests.filter { $0.end - $0.start > 0.01 }
        #expect(late.count == 4)
        #expect(late.allSatisfy { $0.start >= 2 && $0.start < 2.3 && $0.end - $0.start > 0.99 && $0.end - $0.start < 1.11 })
        for s in o.streams {
            #expect(s.lost == nil)
            #expect(s.longestGap > 0.6 && s.longestGap < 0.9)
        }
    }

    /// One of the two middle routers of ecmp.yaml loses power: both its
    /// neighbours see the carrier go and hash every flow onto the other one,
    /// so the load notices nothing (no frame is on its links at 2 s: the
    /// exchanges take ~100 µs, a client starts one every 10 ms, none at 2 s).
    /// Without the routers following carrier, about half of the flows in
    /// the outage would go into the dead router.
    @Test func aMiddleRouterDyingInterruptsNothing() throws {
        let sim = try Self.simulator("ecmp.yaml")
        // Who carries the flows at the end of each window (the hook a VRRP
        // takeover is reported through): r3 alone while r2 is off.
        var asked: [(Int, UInt64)] = []
        let result = try SimDrill.run(Self.drill(to: "10.0.2.2", clients: 8, streams: 4, intervalMs: 20, seconds: 6,
                                                 events: [(2000, .fail, .node("r2")), (4000, .heal, .node("r2"))]),
                                      on: sim) { event, sim in
            asked.append((event, sim.now))
            let hops = Self.nextHops(sim, "r1")
            return hops == 1 ? "r3" : "r2+r3"
        }
        #expect(result.applied.count == 2)
        #expect(result.appliedTimes == [0: 2, 1: 4])
        #expect(result.takeovers == [0: "r3", 1: "r2+r3"])
        #expect(asked.map(\.0) == [0, 1] && asked.map(\.1) == [4_000_000_000, 6_500_000_000])
        let o = result.observations
        #expect(o.requests.count == 8 * 300)
        #expect(o.requests.allSatisfy { $0.answered })
        #expect(o.streams.allSatisfy { $0.lost == nil && $0.answered == 300 })
        // And r2 did carry flows before and after.
        guard case let .forwarder(.router(r2)) = sim.element("r2")! else { Issue.record("r2"); return }
        #expect(r2.counters.forwarded > 0)
    }

    /// Only the r2–r4 link fails: r4 stops sending through r2 and r2 has no
    /// route on, but r1 (whose link to r2 is up) keeps hashing flows onto
    /// r2 — no routing protocol tells it. The flows hashed there fail, the
    /// others do not; nothing fails before the event or after the heal.
    @Test func aHalfDeadPathFailsOnlyTheFlowsHashedOntoIt() throws {
        let sim = try Self.simulator("ecmp.yaml")
        let link = Endpoint("r2:eth1")!
        let result = try SimDrill.run(Self.drill(to: "10.0.2.2", clients: 8, streams: 8, intervalMs: 20, seconds: 4,
                                                 events: [(1000, .fail, .link(link)), (3000, .heal, .link(link))]),
                                      on: sim)
        let o = result.observations
        let inOutage = o.requests.filter { $0.start >= 1 && $0.end <= 3 }
        let failed = inOutage.filter { !$0.answered }
        #expect(!failed.isEmpty && failed.count < inOutage.count)
        #expect(o.requests.filter { $0.end <= 1 || $0.start >= 3 }.allSatisfy { $0.answered })
        let lost = o.streams.filter { $0.lost != nil }
        #expect(!lost.isEmpty && lost.count < o.streams.count)
        #expect(lost.allSatisfy { $0.lost! > 1.5 && $0.lost! < 1.53 })
    }

    @Test func aFrozenLoadHostSendsNothingAndResumes() throws {
        let sim = try Self.simulator("ecmp.yaml")
        let result = try SimDrill.run(Self.drill(to: "10.0.2.2", clients: 2, streams: 2, intervalMs: 100, seconds: 4,
                                                 timeoutMs: 3000,
                                                 events: [(1000, .fail, .node("client")), (2000, .heal, .node("client"))]),
                                      on: sim)
        let o = result.observations
        // No request starts or ends while the host is off.
        #expect(!o.requests.contains { ($0.start > 1 && $0.start < 2) || ($0.end > 1 && $0.end < 2) })
        #expect(o.requests.allSatisfy { $0.answered })
        #expect(o.requests.contains { $0.start >= 2 })
        // The streams wait, frozen, and go on (timeout 3 s > the 1 s off).
        for s in o.streams {
            #expect(s.lost == nil)
            #expect(s.longestGap > 1 && s.longestGap < 1.11)
        }
    }

    @Test func theSameDrillGivesTheSameObservations() throws {
        let drill = Self.drill(to: "198.51.100.3", clients: 8, streams: 4, intervalMs: 30, seconds: 3,
                               events: [(1000, .fail, .node("rs1")), (1500, .heal, .node("rs1"))])
        var runs: [Data] = []
        let topology = try SimulatorTests.load("lvs-dr.yaml")
        for _ in 0..<2 {
            let result = try SimDrill.run(drill, in: topology)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            runs.append(try encoder.encode(result.observations))
        }
        #expect(runs[0] == runs[1])
        // rs1 off for 0.5 s (the simulator has no health checks: the
        // director keeps sending it new connections): some requests fail.
        let o = try JSONDecoder().decode(LoadObservations.self, from: runs[0])
        #expect(o.requests.contains { !$0.answered })
        #expect(o.requests.filter { !$0.answered }.allSatisfy { $0.start >= 1 && $0.start < 1.5 && $0.answeredBy == nil })
    }

    @Test func badDrillsAreRefusedBeforeAnythingRuns() throws {
        let sim = try Self.simulator("ecmp.yaml")
        #expect(throws: Simulator.SimError.unknownNode("ghost")) {
            try SimDrill.run(Self.drill(from: ["ghost"], to: "10.0.2.2"), on: sim)
        }
        #expect(throws: Simulator.SimError.notAHost("r1")) {
            try SimDrill.run(Self.drill(from: ["r1"], to: "10.0.2.2"), on: sim)
        }
        #expect {
            try SimDrill.run(Self.drill(to: "10.0.2.2", events: [(1000, .fail, .node("r9"))]), on: sim)
        } throws: { "\($0)" == "SimDrillTests:1:1: fail r9 at 1s: no node 'r9' in the topology" }
        #expect {
            try SimDrill.run(Self.drill(to: "10.0.2.2", events: [(1000, .fail, .link(Endpoint("r1:eth7")!))]), on: sim)
        } throws: { "\($0)".hasPrefix("SimDrillTests:1:1: fail r1:eth7 at 1s: node r1 has no linked interface eth7") }
        #expect { try SimDrill.run(Self.drill(to: "10.0.2.2", events: [(1000, .heal, .node("r2"))]), on: sim) }
            throws: { "\($0)".contains("SimDrillTests:1:1: heal r2 at 1s: r2 is not failed then") }
        // A link named by one end, healed by the other: fine; failed twice: not.
        #expect {
            try SimDrill.run(Self.drill(to: "10.0.2.2", events: [(1000, .fail, .link(Endpoint("r1:eth1")!)),
                                                                 (2000, .fail, .link(Endpoint("r2:eth0")!))]), on: sim)
        } throws: { "\($0)".contains("is already failed") }
        #expect(sim.now == 0)
        #expect(sim.isUp(link: Endpoint("r1:eth1")!) == true)
    }

    /// The size the brief asks for: 20 s, 8 clients and 4 streams on
    /// lvs-dr.yaml; prints how long it takes to simulate.
    @Test func aTwentySecondDrillSimulates() throws {
        let sim = try Self.simulator("lvs-dr.yaml")
        let clock = ContinuousClock()
        let start = clock.now
        let result = try SimDrill.run(Self.drill(to: "198.51.100.3", clients: 8, streams: 4, intervalMs: 50,
                                                 seconds: 20), on: sim)
        let took = clock.now - start
        let o = result.observations
        print("20 s drill, 8 clients, 4 streams on lvs-dr: \(o.requests.count) requests, \(sim.framesProcessed) frames, \(took) to simulate")
        #expect(o.requests.count == 8 * 400 && o.requests.allSatisfy { $0.answered })
        #expect(o.streams.allSatisfy { $0.lost == nil && $0.answered == 400 })
    }
}

/// A drill on a topology made for it: two load hosts on their own subnets,
/// a server on port 8080, a path, names and addresses unlike the examples.
@Suite struct SimDrillGeneralTests {
    static let yaml = """
    name: drill-general
    nodes:
      alpha: { kind: host, interfaces: { e0: { ip: 172.16.5.10/24 } }, routes: [ "default via 172.16.5.1" ] }
      beta:  { kind: host, interfaces: { e0: { ip: 172.16.6.10/24 } }, routes: [ "default via 172.16.6.1" ] }
      core:
        kind: router
        interfaces:
          a: { ip: 172.16.5.1/24 }
          b: { ip: 172.16.6.1/24 }
          s: { ip: 192.0.2.1/28 }
      web: { kind: host, interfaces: { e0: { ip: 192.0.2.9/28 } }, routes: [ "default via 192.0.2.1" ], serve: { http: 8080 } }
    links:
      - [ alpha:e0, core:a ]
      - [ beta:e0, core:b ]
      - [ core:s, web:e0 ]
    """

    @Test func twoHostsLoadOnePortAndOnlyTheCutOneSuffers() throws {
        let topology = try TopologyLoader.load(yaml: Self.yaml, file: "drill-general.yaml")
        let sim = try Simulator(topology: topology, options: .init(captures: false, recordsDeliveries: false))
        let here = SourceLocation(file: "drill-general.yaml", line: 1, column: 1)
        let drill = Drill(
            name: "beta's link",
            load: DrillLoad(from: ["alpha", "beta"], address: IPv4Address("192.0.2.9")!, port: 8080, path: "/status",
                            clients: 2, streams: 1, streamInterval: DurationSpec(milliseconds: 40),
                            duration: .seconds(3), requestTimeout: DurationSpec(milliseconds: 300),
                            streamTimeout: DurationSpec(milliseconds: 300)),
            events: [DrillEvent(at: .seconds(0), action: .fail, target: .link(Endpoint("core:b")!), location: here),
                     DrillEvent(at: .seconds(1), action: .heal, target: .link(Endpoint("beta:e0")!), location: here)],
            expect: DrillExpectations(), location: here)
        let result = try SimDrill.run(drill, on: sim)
        #expect(result.applied == [SimDrill.Applied(event: 0, at: 0), SimDrill.Applied(event: 1, at: 1)])
        let o = result.observations
        let alpha = o.requests.filter { $0.host == "alpha" }, beta = o.requests.filter { $0.host == "beta" }
        #expect(alpha.count == 2 * 75 && alpha.allSatisfy { $0.answered && $0.answeredBy == "web" })
        // beta is cut off from the first request: its requests fail until
        // the link is back and its ARP for the gateway, pending since 0 s,
        // is asked again (every 1 s, like Linux: at the 2 s tick — the 1 s
        // one came just before the heal). From then on all are answered.
        #expect(beta.filter { $0.start < 1 }.allSatisfy { !$0.answered })
        #expect(beta.filter { $0.end > 2.001 }.allSatisfy { $0.answered })
        #expect(beta.filter { $0.start >= 2 }.count == 2 * 25)
        let streams = [String: LoadObservations.Stream](uniqueKeysWithValues: o.streams.map { ($0.host, $0) })
        #expect(streams["alpha"]?.lost == nil && streams["alpha"]?.answered == 75)
        // beta's stream never got its handshake through: lost, never established.
        #expect(streams["beta"]?.established == nil && streams["beta"]?.lost != nil)
        #expect(sim.host("web")!.counters.httpRequestsServed > 0)
    }
}
