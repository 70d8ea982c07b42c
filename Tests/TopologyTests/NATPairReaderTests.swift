// NAT real servers behind a VRRP pair of directors: their replies go
// through the pair's inside VIP (Node.natGateway(for:)), and a pair without
// one is an error (Fixtures/broken/51-nat-pair-without-inside-vip).
import Testing
import Wire
@testable import Topology

@Suite struct NATPairReaderTests {
    @Test func theInsideVIPIsTheRealsGateway() throws {
        let t = try loadGood("nat-pair.yaml")
        let lvs1 = try t[node: "lvs1"], lvs2 = try t[node: "lvs2"], rs1 = try t[node: "rs1"], client = try t[node: "client"]
        #expect(lvs1.insideVIP(for: rs1) == IPv4Address(10, 0, 0, 1))
        #expect(lvs2.natGateway(for: rs1) == IPv4Address(10, 0, 0, 1))
        // The outside VIP is in no subnet of the client: nothing inside there.
        #expect(lvs1.insideVIP(for: client) == nil && lvs1.natGateway(for: client) == nil)
    }

    /// Without a VRRP VIP on the real's subnet the director's own address
    /// is the gateway, as before (a single NAT director needs nothing more).
    @Test func withoutAnInsideVIPTheDirectorsAddress() throws {
        let t = try loadGood("directors.yaml")
        let lvs1 = try t[node: "lvs1"]
        // lvs1's VRRP VIPs 10.0.0.100/101 are in rs1's subnet: the inside VIP wins.
        #expect(lvs1.natGateway(for: try t[node: "rs1"]) == IPv4Address(10, 0, 0, 100))
        let single = try TopologyLoader.load(path: Paths.topologies.appendingPathComponent("lvs-nat.yaml").path)
        let director = try #require(single.nodes.first { $0.kind == .director })
        for host in single.nodes where host.kind == .host && director.services[0].reals.contains(where: { r in host.addresses.contains { $0.address == r.ip } }) {
            #expect(director.insideVIP(for: host) == nil)
            let gateway = try #require(director.natGateway(for: host))
            #expect(director.addresses.contains { $0.address == gateway })
        }
    }

    /// Only a VRRP pair is held to it: two NAT directors that share no
    /// group are not a pair (and the rule says nothing about them).
    @Test func directorsThatShareNoGroupAreNoPair() throws {
        let url = Paths.fixtures.appendingPathComponent("broken").appendingPathComponent("51-nat-pair-without-inside-vip.yaml")
        let yaml = try String(contentsOf: url, encoding: .utf8)
            .replacingOccurrences(of: "      - { group: 17, priority: 100, vips: [ 10.0.1.100 ], interval: 0.1s }\n",
                                  with: "      - { group: 27, priority: 100, vips: [ 10.0.1.101 ], interval: 0.1s }\n")
        #expect(yaml.contains("group: 27"))
        _ = try TopologyLoader.load(yaml: yaml, file: "p.yaml")
    }

    @Test func aPairWithoutAnInsideVIPIsRejectedNamingTheFix() throws {
        let url = Paths.fixtures.appendingPathComponent("broken").appendingPathComponent("51-nat-pair-without-inside-vip.yaml")
        let yaml = try String(contentsOf: url, encoding: .utf8)
        do {
            _ = try TopologyLoader.load(yaml: yaml, file: "p.yaml")
            Issue.record("loaded")
        } catch let e as TopologyErrors {
            #expect(e.errors.count == 1)
            let text = e.errors.first?.description ?? ""
            #expect(text.contains("nat service 10.0.1.100:80/tcp is on directors 'lvs1', 'lvs2'"), "\(text)")
            #expect(text.contains("through 10.0.0.2 ('lvs1' alone)"), "\(text)")
            #expect(text.contains("an unused address of 10.0.0.0/24 in a vrrp group of both, e.g. { group: 1, vips: [ 10.0.0.1 ] }"), "\(text)")
        }
    }
}
