// The classic DR lesson of the LVS literature (Topologies/lvs-dr-classic.yaml):
// client 123.123.123.123 → gateway (public 110.242.68.3, static NAT to the
// VIP 10.0.0.100) → director in DR mode → real server 10.0.0.1, reply
// straight back through the gateway. The walk has five L3 steps, each with
// exactly the MAC/IP changes the lesson teaches; the switch between the
// gateway, the director and the real server changes nothing. In the
// simulator, so no root needed (live agrees: LiveSimAgreementTests).
import Foundation
import Testing
import Topology
import Wire
@testable import Lab

@Suite struct DRLessonTests {
    static let file = Repository.root.appendingPathComponent("Topologies/lvs-dr-classic.yaml").path

    static func walk() throws -> (ResolvedTopology, WalkReport) {
        let topology = try TopologyLoader.load(path: file)
        let backend = try SimBackend(topology: topology)
        let report = try WalkReport.run(backend: backend, from: "client", to: IPv4Address("110.242.68.3")!, port: 80, proto: .tcp,
                                        random: SeededRandom(seed: WalkReport.simulatorSeed))
        return (topology, report)
    }

    @Test func theLessonsAddressesAreTheClassicOnes() throws {
        let topology = try TopologyLoader.load(path: Self.file)
        func address(_ node: String) -> String? { topology.node(named: node)?.addresses.first?.address.description }
        #expect(address("client") == "123.123.123.123")
        #expect(address("rs") == "10.0.0.1")
        let gw = try #require(topology.node(named: "gw"))
        #expect(gw.kind == .router)
        let lvs = try #require(topology.node(named: "lvs"))
        #expect(lvs.kind == .director)
        #expect(lvs.services.map { "\($0.vip):\($0.port) \($0.mode)" } == ["10.0.0.100:80 dr"])
        #expect(lvs.services.first?.reals.map(\.ip.description) == ["10.0.0.1"])
        let text = try String(contentsOfFile: Self.file, encoding: .utf8)
        #expect(text.contains("{ public: 110.242.68.3, private: 10.0.0.100 }"))
    }

    @Test func fiveL3StepsWithExactlyTheLessonsChanges() throws {
        let (topology, report) = try Self.walk()
        let path = report.path
        func mac(_ e: String) throws -> String {
            let end = try #require(Endpoint(e))
            let i = try #require(topology.node(named: end.node)?.interfaces.first { $0.name == end.interface })
            return i.mac.description
        }
        let probePort = String(report.probe.sourcePort)

        // The L3 steps are the hops not sent by the switch.
        let steps = path.hops.filter { topology.node(named: $0.sender.node)?.kind != .switch }
        try #require(steps.count == 5, "hops: \(path.hops.map { "\($0.sender)→\($0.receiver)" })")
        #expect(steps.map(\.sender.description) == ["client:eth0", "gw:eth1", "lvs:eth0", "rs:eth0", "gw:eth0"])
        #expect(steps.map(\.direction) == [.request, .request, .request, .reply, .reply])

        struct Want {
            var srcMAC, dstMAC, srcIP, dstIP, srcPort, dstPort, ttl: String
            var changed: Set<HopField>
        }
        let wants: [Want] = [
            // 1. client → gw: to the public address; the first frame, nothing "changed".
            Want(srcMAC: try mac("client:eth0"), dstMAC: try mac("gw:eth0"), srcIP: "123.123.123.123", dstIP: "110.242.68.3",
                 srcPort: probePort, dstPort: "80", ttl: "64", changed: []),
            // 2. gw → director: static NAT of the destination to the VIP, routed (new MACs, TTL - 1).
            Want(srcMAC: try mac("gw:eth1"), dstMAC: try mac("lvs:eth0"), srcIP: "123.123.123.123", dstIP: "10.0.0.100",
                 srcPort: probePort, dstPort: "80", ttl: "63", changed: [.srcMAC, .dstMAC, .dstIP, .ttl]),
            // 3. director → real: DR changes only the MACs (and the TTL); both IPs stay.
            Want(srcMAC: try mac("lvs:eth0"), dstMAC: try mac("rs:eth0"), srcIP: "123.123.123.123", dstIP: "10.0.0.100",
                 srcPort: probePort, dstPort: "80", ttl: "62", changed: [.srcMAC, .dstMAC, .ttl]),
            // 4. real → gw: the answer comes from the VIP (held on lo) and goes to the default gateway, not the director.
            Want(srcMAC: try mac("rs:eth0"), dstMAC: try mac("gw:eth1"), srcIP: "10.0.0.100", dstIP: "123.123.123.123",
                 srcPort: "80", dstPort: probePort, ttl: "64", changed: []),
            // 5. gw → client: static NAT of the source back to the public address.
            Want(srcMAC: try mac("gw:eth0"), dstMAC: try mac("client:eth0"), srcIP: "110.242.68.3", dstIP: "123.123.123.123",
                 srcPort: "80", dstPort: probePort, ttl: "63", changed: [.srcMAC, .dstMAC, .srcIP, .ttl]),
        ]
        for (n, (hop, want)) in zip(steps, wants).enumerated() {
            let step = "step \(n + 1) (hop \(hop.number), \(hop.sender))"
            #expect(hop.value(.srcMAC) == want.srcMAC, "\(step)")
            #expect(hop.value(.dstMAC) == want.dstMAC, "\(step)")
            #expect(hop.value(.srcIP) == want.srcIP, "\(step)")
            #expect(hop.value(.dstIP) == want.dstIP, "\(step)")
            #expect(hop.value(.srcPort) == want.srcPort, "\(step)")
            #expect(hop.value(.dstPort) == want.dstPort, "\(step)")
            #expect(hop.value(.ttl) == want.ttl, "\(step)")
            #expect(hop.value(.proto) == "tcp", "\(step)")
            #expect(hop.fields.inner == nil, "\(step): no encapsulation in DR")
            #expect(hop.changed == want.changed, "\(step): changed \(hop.changed.map(\.rawValue).sorted())")
        }
        // Step 4 answers what step 3 delivered: addresses and ports swapped.
        let delivered = try #require(path.hops.last { $0.direction == .request })
        #expect(delivered.receiver.description == "rs:eth0")
        #expect(steps[3].value(.srcIP) == delivered.value(.dstIP) && steps[3].value(.dstIP) == delivered.value(.srcIP))
        #expect(steps[3].value(.srcPort) == delivered.value(.dstPort) && steps[3].value(.dstPort) == delivered.value(.srcPort))
        // The reasons name what each L3 step did.
        #expect(steps[1].reason.contains("static NAT dst 110.242.68.3 → 10.0.0.100"))
        #expect(steps[2].reason.hasSuffix("DR: MACs rewritten (lvs:eth0 → rs:eth0), TTL 63 → 62"), "\(steps[2].reason)")
        #expect(steps[4].reason.contains("static NAT src 10.0.0.100 → 110.242.68.3"))
    }

    @Test func theSwitchChangesNothing() throws {
        let (topology, report) = try Self.walk()
        let switched = report.path.hops.filter { topology.node(named: $0.sender.node)?.kind == .switch }
        #expect(switched.count == 3, "gw→lvs, lvs→rs and rs→gw each cross the switch once")
        for hop in switched {
            #expect(hop.changed.isEmpty, "hop \(hop.number): \(hop.changed)")
            let previous = try #require(hop.previous.map { report.path.hops[$0 - 1] })
            #expect(previous.receiver.node == hop.sender.node)
            #expect(previous.frame == hop.frame, "hop \(hop.number): the switch forwards the frame byte for byte")
        }
        // Every hop of the walk ends where the next one starts: nothing skipped.
        #expect(report.path.hops.map(\.receiver.description)
                == ["gw:eth0", "sw:p1", "lvs:eth0", "sw:p2", "rs:eth0", "sw:p3", "gw:eth1", "client:eth0"])
    }
}
