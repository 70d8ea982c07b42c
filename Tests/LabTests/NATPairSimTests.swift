import Datapath
import Foundation
import Testing
import Topology
import Wire
@testable import Lab

/// A keepalived-style LVS-NAT pair in the simulator (TopologyTests'
/// Fixtures/good/nat-pair.yaml): the reals' default route goes through the
/// pair's inside VIP, so when the master loses power the new master gets
/// the replies as well as the requests, and NAT keeps working.
@Suite struct NATPairSimTests {
    /// The fixture; with `vmac` the inside group answers with
    /// 00:00:5e:00:01:18 (keepalived's use_vmac) instead of the interface MAC.
    static func topology(vmac: Bool = false) throws -> ResolvedTopology {
        var yaml = try String(contentsOf: SimulatorTests.root
            .appendingPathComponent("Tests/TopologyTests/Fixtures/good/nat-pair.yaml"), encoding: .utf8)
        if vmac {
            yaml = yaml.replacingOccurrences(of: "vips: [ 10.0.0.1 ], interval: 0.1s }", with: "vips: [ 10.0.0.1 ], interval: 0.1s, vmac: true }")
            precondition(yaml.contains("vmac: true"))
        }
        return try TopologyLoader.load(yaml: yaml, file: "nat-pair.yaml")
    }

    @Test func theRealsRouteThroughTheInsideVIP() throws {
        let t = try Self.topology()
        let roles = RealServerRole.roles(in: t)
        let inside = IPv4Address(10, 0, 0, 1)
        for rs in ["rs1", "rs2"] {
            #expect(roles[rs]?.natGateway == inside)
            let node = try #require(t.node(named: rs))
            let config = ElementFactory.hostConfiguration(node, role: roles[rs])
            #expect(config.routes.map { "\($0.destination) via \($0.gateway)" } == ["0.0.0.0/0 via 10.0.0.1"])
        }
        // The live lab installs the same route.
        let plan = LabPlan(topology: t, serveCommand: ["wirelab", "serve"])
        let ns = LabStore.namespaceName(lab: t.name, node: "rs1")
        #expect(plan.routes.filter { $0.namespace == ns }.map { "\($0.destination) via \($0.via[0])" } == ["0.0.0.0/0 via 10.0.0.1"])
    }

    @Test(arguments: [false, true])
    func repliesFollowTheNewMasterWhenTheMasterFails(vmac: Bool) throws {
        let sim = try Simulator(topology: try Self.topology(vmac: vmac))
        let vip = IPv4Address(10, 0, 1, 100)
        let lvs1 = VRRPSimTests.director(sim, "lvs1"), lvs2 = VRRPSimTests.director(sim, "lvs2")
        #expect(sim.run(limit: 5_000_000_000))
        #expect(lvs1.vrrp.isMaster(group: 17) && lvs1.vrrp.isMaster(group: 18))
        #expect(!lvs2.vrrp.isMaster(group: 17) && !lvs2.vrrp.isMaster(group: 18))
        for _ in 0..<2 {
            let get = try sim.httpGet(from: "client", to: vip)
            #expect(get.httpBody == "rs1\n" || get.httpBody == "rs2\n", "\(get.state)")
        }
        #expect(lvs1.counters.forwardedNAT > 0 && lvs1.counters.repliesNAT > 0)
        #expect(lvs2.counters.forwardedNAT == 0 && lvs2.counters.repliesNAT == 0)

        try sim.fail(node: "lvs1")
        sim.advance(by: 1_000_000_000)
        #expect(lvs2.vrrp.isMaster(group: 17) && lvs2.vrrp.isMaster(group: 18))
        var bodies: Set<String> = []
        for _ in 0..<4 {
            let get = try sim.httpGet(from: "client", to: vip)
            #expect(get.httpBody == "rs1\n" || get.httpBody == "rs2\n", "\(get.state)")
            get.httpBody.map { _ = bodies.insert($0) }
        }
        #expect(bodies.count == 2, "rr over both reals: \(bodies)")
        // Both directions through the new master.
        #expect(lvs2.counters.forwardedNAT > 0 && lvs2.counters.repliesNAT > 0)
    }
}
