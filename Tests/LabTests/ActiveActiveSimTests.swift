import Datapath
import Foundation
import Testing
import Topology
import Wire
@testable import Lab

/// TopologyTests' Fixtures/good/active-active.yaml: two directors behind an
/// ECMP route, the same mh service with flags and sloppy. The file's keys
/// reach the elements, `lvs` shows them, and traffic flows through both.
@Suite struct ActiveActiveSimTests {
    static func topology() throws -> ResolvedTopology {
        try TopologyLoader.load(path: SimulatorTests.root
            .appendingPathComponent("Tests/TopologyTests/Fixtures/good/active-active.yaml").path)
    }

    @Test func flagsAndSloppyReachTheDirector() throws {
        let t = try Self.topology()
        let c = ElementFactory.directorConfiguration(try #require(t.node(named: "lvs1")))
        #expect(c.services[0].service.scheduler == .mh)
        #expect(c.services[0].service.schedulerFlags == [.port, .fallback] && c.services[0].service.sloppy)
        #expect(c.services[1].service.schedulerFlags == [.port] && !c.services[1].service.sloppy)
        let listing = try Director(configuration: c).snapshot().ipvsadmListing()
        #expect(listing.contains("TCP  10.0.0.100:80 mh (mh-fallback,mh-port) sloppy\n"), "\(listing)")
        #expect(listing.contains("TCP  10.0.0.100:81 sh (sh-port)\n"), "\(listing)")
    }

    /// The router spreads connections over both directors (ECMP on the
    /// 5-tuple); each one's Maglev picks the real, and every request is answered.
    @Test func bothDirectorsServe() throws {
        let sim = try Simulator(topology: try Self.topology())
        let vip = IPv4Address(10, 0, 0, 100)
        var bodies: Set<String> = []
        for _ in 0..<16 {
            let get = try sim.httpGet(from: "client", to: vip)
            #expect(get.httpBody == "rs1\n" || get.httpBody == "rs2\n", "\(get.state)")
            get.httpBody.map { _ = bodies.insert($0) }
        }
        #expect(bodies.count == 2)
        let lvs1 = VRRPSimTests.director(sim, "lvs1"), lvs2 = VRRPSimTests.director(sim, "lvs2")
        #expect(lvs1.counters.forwardedDR > 0 && lvs2.counters.forwardedDR > 0)
    }
}
