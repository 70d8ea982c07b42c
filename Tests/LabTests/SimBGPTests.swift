import Foundation
import Testing
import Topology
import Wire
@testable import Datapath
@testable import Lab

/// BGP and BFD in the simulator (`SimControlPlane`): the same protocol
/// cores as live, their TCP segments and BFD datagrams frames on the
/// simulated links, so a power cut silences them and BFD or the hold timer
/// notices as it does live.
///
///   swift test --skip-build --filter SimBGP
@Suite struct SimBGPTests {
    static let vip = IPv4Address(198, 51, 100, 80)

    static func router(_ sim: Simulator, _ name: String) -> Router? {
        guard case let .forwarder(.router(r)) = sim.element(name)! else { return nil }
        return r
    }

    static func gateways(_ sim: Simulator, _ router: String, _ address: IPv4Address) -> [IPv4Address] {
        Self.router(sim, router)?.fib.route(for: address)?.nextHops.map(\.gateway) ?? []
    }

    /// Advances in 5 ms steps until `condition` holds; the virtual seconds it took (nil after `limit`).
    static func time(_ sim: Simulator, limit: Double, _ condition: () -> Bool) -> Double? {
        let start = sim.now
        while Double(sim.now - start) / 1e9 < limit {
            if condition() { return Double(sim.now - start) / 1e9 }
            sim.advance(by: 5_000_000)
        }
        return nil
    }

    /// lb-ecmp-maglev without BFD on any session (hold 3 s decides).
    static func withoutBFD(_ t: ResolvedTopology) -> ResolvedTopology {
        var t = t
        for i in t.nodes.indices where t.nodes[i].bgp != nil {
            for n in t.nodes[i].bgp!.neighbors.indices { t.nodes[i].bgp!.neighbors[n].bfd = false }
        }
        return t
    }

    /// Every director's address on sw1, then on sw2: r1's ECMP group for the VIP.
    static let directors = [IPv4Address(10, 0, 1, 11), IPv4Address(10, 0, 1, 12), IPv4Address(10, 0, 1, 13),
                            IPv4Address(10, 0, 2, 11), IPv4Address(10, 0, 2, 12), IPv4Address(10, 0, 2, 13)]

    @Test func theRouterLearnsTheVIPFromEveryDirectorAndBFDTakesADeadOneOut() throws {
        let topology = try SimulatorTests.load("lb-ecmp-maglev.yaml")
        let sim = try Simulator(topology: topology, options: SimDrill.simulatorOptions)
        let directors = Self.directors, lvs2 = [directors[1], directors[4]]
        // Converged while the simulator was built: sessions Established, BFD
        // Up, the VIP via all three directors over both switches, on both routers.
        #expect(Set(Self.gateways(sim, "r1", Self.vip)) == Set(directors))
        #expect(Set(Self.gateways(sim, "r2", Self.vip)) == Set(directors))
        #expect(sim.now < 2_000_000_000, "converged after \(sim.now) ns")
        let cut = try #require(Self.time(sim, limit: 1) { true })
        #expect(cut == 0)
        try sim.fail(node: "lvs2")
        let gone = Self.time(sim, limit: 5) { Set(Self.gateways(sim, "r1", Self.vip)).isDisjoint(with: lvs2) }
        #expect(gone != nil && gone! > 0.09 && gone! <= 0.155, "lvs2 left after \(gone ?? -1) s (BFD 50 ms × 3)")
        #expect(Set(Self.gateways(sim, "r1", Self.vip)) == Set(directors).subtracting(lvs2))
        // Power back: its BGP sessions reset (their hold timers ran out while
        // it was off), reconnect, and the group is whole again.
        try sim.heal(node: "lvs2")
        let back = Self.time(sim, limit: 15) { Set(Self.gateways(sim, "r1", Self.vip)) == Set(directors) }
        #expect(back != nil, "lvs2 did not come back")
        let log = sim.controlPlaneLog(of: "r1")
        print(log.joined(separator: "\n"))
        #expect(log.contains { $0.contains("bfd neighbor 10.0.1.12: Up → Down") }, "\(log)")
        #expect(log.contains { $0.contains("bfd neighbor 10.0.2.12: Up → Down") }, "\(log)")
    }

    /// Routers and directors peer over two subnets: of every session's two
    /// ends exactly one waits for the other (both connecting, as when the
    /// first of a node's addresses decided for all its sessions, left the
    /// sessions over sw2 failing in OpenSent).
    @Test func exactlyOneEndOfEverySessionConnects() throws {
        let topology = try SimulatorTests.load("lb-ecmp-maglev.yaml")
        var sessions = 0
        for node in topology.nodes {
            guard let spec = node.bgp else { continue }
            let passive = BGPController.passivePeers(of: node, in: topology)
            for n in spec.neighbors {
                let other = try #require(topology.nodes.first { o in o.addresses.contains { $0.address == n.ip } })
                let mine = try #require(node.addresses.first { $0.length < 32 && $0.canonical.contains(n.ip) }?.address)
                let theirs = BGPController.passivePeers(of: other, in: topology)
                #expect(passive.contains(n.ip) != theirs.contains(mine), "\(node.name) \(mine) ↔ \(other.name) \(n.ip)")
                sessions += 1
            }
        }
        #expect(sessions == 24, "each router 6 sessions, each director 4")
    }

    @Test func withoutBFDTheHoldTimeDecides() throws {
        let topology = Self.withoutBFD(try SimulatorTests.load("lb-ecmp-maglev.yaml"))
        let sim = try Simulator(topology: topology, options: SimDrill.simulatorOptions)
        #expect(Self.gateways(sim, "r1", Self.vip).count == 6)
        try sim.fail(node: "lvs2")
        let gone = Self.time(sim, limit: 5) { Self.gateways(sim, "r1", Self.vip).count == 4 }
        #expect(gone != nil && gone! > 2 && gone! <= 3.01, "lvs2 left after \(gone ?? -1) s (hold 3 s, keepalive 1 s)")
    }

    @Test func aCutLinkEndsTheSessionsBehindIt() throws {
        let sim = try Simulator(topology: try SimulatorTests.load("lb-ecmp-maglev.yaml"), options: SimDrill.simulatorOptions)
        try sim.fail(link: Endpoint(node: "lvs3", interface: "eth0"))
        // Only the sessions over sw1 end: lvs3 stays in the group over sw2.
        let gone = Self.time(sim, limit: 5) { Self.gateways(sim, "r1", Self.vip).count == 5 }
        #expect(gone != nil && gone! <= 0.155)
        #expect(!Self.gateways(sim, "r1", Self.vip).contains(IPv4Address(10, 0, 1, 13)))
        #expect(Self.gateways(sim, "r1", Self.vip).contains(IPv4Address(10, 0, 2, 13)))
        try sim.heal(link: Endpoint(node: "lvs3", interface: "eth0"))
        #expect(Self.time(sim, limit: 15) { Self.gateways(sim, "r1", Self.vip).count == 6 } != nil)
    }

    /// A dead switch: each router keeps the directors over the other one.
    @Test func aDeadSwitchLeavesTheDirectorsOverTheOther() throws {
        let sim = try Simulator(topology: try SimulatorTests.load("lb-ecmp-maglev.yaml"), options: SimDrill.simulatorOptions)
        try sim.fail(node: "sw1")
        let over2 = Set(Self.directors[3...])
        for router in ["r1", "r2"] {
            let gone = Self.time(sim, limit: 5) { Set(Self.gateways(sim, router, Self.vip)) == over2 }
            #expect(gone != nil && gone! <= 0.155, "\(router): \(Self.gateways(sim, router, Self.vip))")
        }
        try sim.heal(node: "sw1")
        #expect(Self.time(sim, limit: 15) { Set(Self.gateways(sim, "r1", Self.vip)) == Set(Self.directors) } != nil)
    }

    static func run(_ drill: Drill, in topology: ResolvedTopology) throws -> DrillReport {
        let result = try SimDrill.run(drill, in: topology)
        return DrillReport(drill: drill, observations: result.observations, applied: result.appliedTimes, takeovers: result.takeovers)
    }

    /// The file's drills, on the virtual clock: conclusive, and close to the
    /// live reports in docs/200g.md.
    @Test func theLbEcmpMaglevDrillsRunConclusively() throws {
        let topology = try SimulatorTests.load("lb-ecmp-maglev.yaml")
        try #require(topology.drills.count == 2)
        let moves = topology.drills[0], losses = topology.drills[1]
        let report = try Self.run(moves, in: topology)
        let text = DrillRunReport(lab: topology.name, file: "Topologies/lb-ecmp-maglev.yaml", verb: "sim", drills: [report]).text()
        print(text)
        // A director, a router's link: flows move between directors and
        // continue (Maglev, `sloppy`), none is lost, no gap reaches 1 s.
        #expect(report.status == .pass, "\(text)")
        #expect(report.windows.map(\.event) == ["start", "fail lvs2", "heal lvs2", "fail r1:eth1", "heal r1:eth1"])
        #expect(report.streams == 12 && report.streamsLost == 0)
        let fail = report.windows[1]
        #expect((1...10).contains(fail.failedRequests), "requests on lvs2 when it died: \(fail.failedRequests)")
        #expect(fail.requests > 100)
        #expect((fail.interruption ?? 9) < 0.2, "longest gap \(fail.interruption ?? -1) s")
        #expect(report.windows.allSatisfy { ($0.interruption ?? 9) < 1 })
        #expect(report.windows[2].failedRequests == 0)
        // Without BFD the routers keep sending new flows to the dead
        // director until the hold time ends: more requests fail.
        let slow = try Self.run(moves, in: Self.withoutBFD(topology))
        #expect(slow.windows[1].failedRequests > fail.failedRequests * 3, "without BFD: \(slow.windows[1].failedRequests) failed")
        // Without `sloppy`, the flows the events move to another director are lost.
        var strict = topology
        for i in strict.nodes.indices {
            for s in strict.nodes[i].services.indices { strict.nodes[i].services[s].sloppy = false }
        }
        let unsloppy = try Self.run(moves, in: strict)
        #expect(unsloppy.streamsLost > report.streamsLost, "without sloppy: \(unsloppy.streamsLost) lost")

        // A router, a switch and a real: only the dead reals' connections are lost.
        let second = try Self.run(losses, in: topology)
        print(DrillRunReport(lab: topology.name, file: "Topologies/lb-ecmp-maglev.yaml", verb: "sim", drills: [second]).text())
        #expect(second.status == .pass)
        #expect(second.windows.map(\.event) == ["start", "fail r1", "heal r1", "fail sw1", "heal sw1", "fail rs3", "heal rs3"])
        #expect(second.windows[1].streamsLost == 0 && second.windows[2].streamsLost == 0)
        #expect(Set(second.windows[3].streamsLostByServer.keys).isSubset(of: ["rs1", "rs2"]))
        #expect(Set(second.windows[5].streamsLostByServer.keys).isSubset(of: ["rs3"]))
        #expect(second.windows[3].answeredAfter == ["rs3", "rs4"] && second.windows[5].answeredAfter == ["rs1", "rs2", "rs4"])
        #expect(second.windows.allSatisfy { ($0.interruption ?? 9) < 1 })
    }

    /// Static ECMP next hops with BFD, on the simulator: the topology of
    /// `StaticBFDLabEndToEndTests`; a power cut takes the next hop out
    /// within 50 ms × 3, and pings every 10 ms through it lose that long.
    @Test(arguments: ["r2", "r3"])
    func aStaticNextHopLeavesWithinTheDetectionTime(victim: String) throws {
        let topology = try TopologyLoader.load(yaml: StaticBFDLabEndToEndTests.topology("wlsgsim"), file: "static-bfd.yaml")
        let sim = try Simulator(topology: topology, options: SimDrill.simulatorOptions)
        let h2 = IPv4Address(10, 72, 9, 80), r2 = IPv4Address(10, 72, 2, 2), r3 = IPv4Address(10, 72, 2, 3)
        #expect(Self.gateways(sim, "r1", h2) == [r2, r3])
        // Pings every 10 ms for 2 s; at 0.5 s the victim loses power.
        let h1 = try #require(sim.host("h1"))
        var gone: Double?
        for i in 0..<200 {
            if i == 50 { try sim.fail(node: victim) }
            try sim.ping(from: "h1", to: h2, identifier: 7, sequence: UInt16(i))
            sim.advance(by: 10_000_000)
            if i >= 50, gone == nil, Self.gateways(sim, "r1", h2).count == 1 { gone = Double(i - 50 + 1) * 0.01 }
        }
        sim.advance(by: 100_000_000)
        #expect(Self.gateways(sim, "r1", h2) == [victim == "r2" ? r3 : r2])
        #expect(gone != nil && gone! > 0.09 && gone! <= 0.16, "\(victim)'s next hop left after \(gone ?? -1) s")
        let answered = Set(h1.pingReplies.filter { $0.identifier == 7 }.map(\.sequence))
        let lost = 200 - answered.count
        // The ping flow hashes onto one next hop: cutting it costs about the detection time, the other nothing.
        #expect(lost == 0 || (9...16).contains(lost), "\(lost) of 200 pings lost cutting \(victim)")
        #expect(sim.controlPlaneLog(of: "r1").contains { $0.contains("static route 10.72.9.0/24 → \(victim == "r2" ? r3 : r2)") })
        print("sim static BFD: \(victim) cut, next hop out after \(gone ?? -1) s, \(lost) of 200 pings lost")
        try sim.heal(node: victim)
        #expect(Self.time(sim, limit: 5) { Self.gateways(sim, "r1", h2) == [r2, r3] } != nil)
    }

    /// Topologies/ecmp-bfd.yaml's drill: conclusive, no stream lost (the
    /// routers hold no state; TCP retransmits once BFD has moved the flow).
    @Test func theEcmpBfdDrillRunsConclusively() throws {
        let topology = try SimulatorTests.load("ecmp-bfd.yaml")
        let drill = try #require(topology.drills.first)
        let result = try SimDrill.run(drill, in: topology)
        let report = DrillReport(drill: drill, observations: result.observations, applied: result.appliedTimes)
        #expect(report.status == .pass)
        #expect(report.streams == 8 && report.streamsLost == 0)
        let fail = try #require(report.windows.first { $0.event.hasPrefix("fail r2") })
        #expect((1...10).contains(fail.failedRequests) && (fail.interruption ?? 9) < 1, "\(fail)")
    }

    /// Directors of one VRRP group: only the master announces the VIP, in
    /// the simulator as live (`BGPLabEndToEndTests.onlyTheVRRPMasterAnnouncesTheVIP`).
    @Test func onlyTheVRRPMasterAnnouncesTheVIP() throws {
        let topology = try TopologyLoader.load(yaml: BGPLabEndToEndTests.vrrpPair("wlsgv"), file: "vrrp-pair.yaml")
        let sim = try Simulator(topology: topology, options: SimDrill.simulatorOptions)
        let vip = IPv4Address(10, 74, 0, 100), lvs1 = IPv4Address(10, 74, 0, 11), lvs2 = IPv4Address(10, 74, 0, 12)
        #expect(Self.time(sim, limit: 5) { Self.gateways(sim, "r1", vip) == [lvs1] } != nil, "\(sim.controlPlaneLog(of: "r1"))")
        sim.advance(by: 2_000_000_000)
        #expect(Self.gateways(sim, "r1", vip) == [lvs1], "the backup never announces")
        #expect(!sim.controlPlaneLog(of: "lvs2").contains { $0.contains("announces") })
        // The master loses power: lvs2 takes the group and announces; lvs1's
        // session with r1 ends by hold time (no BFD here).
        try sim.fail(node: "lvs1")
        let moved = Self.time(sim, limit: 5) { Self.gateways(sim, "r1", vip) == [lvs2] }
        #expect(moved != nil && moved! > 2 && moved! <= 3.1, "on lvs2 alone after \(moved ?? -1) s (hold 3 s)")
        // Power back: lvs1 preempts (priority 200), lvs2 withdraws.
        try sim.heal(node: "lvs1")
        #expect(Self.time(sim, limit: 10) { Self.gateways(sim, "r1", vip) == [lvs1] } != nil, "\(sim.controlPlaneLog(of: "lvs2"))")
        #expect(sim.controlPlaneLog(of: "lvs2").contains { $0.contains("withdraws 10.74.0.100/32") })
    }
}
