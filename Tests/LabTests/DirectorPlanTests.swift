import Foundation
@testable import Lab
import Testing
import Topology
import Wire

/// What `up` plans for directors and their real servers (no root needed):
/// IPIP decapsulation on TUN reals only, and the kernel side of health
/// checks on a director that has them.
struct DirectorPlanTests {
    static let topologies = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Topologies")

    static func plan(_ example: String) throws -> (ResolvedTopology, LabPlan) {
        let topology = try TopologyLoader.load(path: topologies.appendingPathComponent(example).path)
        return (topology, LabPlan(topology: topology, serveCommand: ["wirelab", "serve"]))
    }

    @Test func tunRealsGetDecapsulationForTheirVIPsAndOthersDoNot() throws {
        let (_, tun) = try Self.plan("lvs-tun.yaml")
        #expect(tun.decapsulations.map(\.node).sorted() == ["rs1", "rs2"])
        for d in tun.decapsulations {
            #expect(d.vips == [IPv4Address(10, 0, 0, 100)] && d.interfaces == ["eth0"])
            #expect(d.hostAddresses == [d.node == "rs1" ? IPv4Address(10, 0, 0, 1) : IPv4Address(10, 0, 0, 3)])
            // Only the director's IPIP is decapsulated (its interface address).
            #expect(d.tunnelSources == [IPv4Address(10, 0, 0, 2)], "\(d.tunnelSources)")
            #expect(tun.notes.contains { $0.hasPrefix("\(d.node): IPIP decapsulation (tc ingress BPF on eth0) for VIP 10.0.0.100") })
        }
        // TUN reals carry the VIP on lo like DR reals.
        #expect(tun.addresses.contains { $0.interface == "lo" && $0.prefix.address == IPv4Address(10, 0, 0, 100) })
        for example in ["lvs-dr.yaml", "lvs-nat.yaml", "lvs-fullnat.yaml"] {
            #expect(try Self.plan(example).1.decapsulations.isEmpty, "\(example)")
        }
    }

    @Test func autoFalseTurnsDecapsulationOff() throws {
        let path = Self.topologies.appendingPathComponent("lvs-tun.yaml").path
        var yaml = try String(contentsOfFile: path, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "  rs1:\n    kind: host", with: "  rs1:\n    kind: host\n    auto: false")
        let topology = try TopologyLoader.load(yaml: yaml, file: path)
        let plan = LabPlan(topology: topology, serveCommand: [])
        #expect(plan.decapsulations.map(\.node) == ["rs2"])
    }

    @Test func aDirectorWithHealthChecksGetsItsAddressRoutesAndPermanentNeighbours() throws {
        let (topology, plan) = try Self.plan("lvs-nat.yaml")
        let ns = LabStore.namespaceName(lab: "lvs-nat", node: "lvs")
        #expect(plan.addresses.filter { $0.namespace == ns }.map(\.prefix.description) == ["10.0.0.2/24"])
        #expect(plan.routes.contains { $0.namespace == ns && $0.destination.length == 0 && $0.via == [IPv4Address(10, 0, 0, 254)] })
        // Every address on the director's subnet, with the MAC the topology gives it.
        let neighbours = plan.neighbours.filter { $0.namespace == ns }
        #expect(Set(neighbours.map(\.address)) == [IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 3), IPv4Address(10, 0, 0, 254)])
        let rs1 = try #require(topology.node(named: "rs1")?.interfaces.first)
        #expect(neighbours.first { $0.address == IPv4Address(10, 0, 0, 1) }?.mac == rs1.mac)
        // TCP to that address goes to the kernel.
        let director = try #require(topology.node(named: "lvs"))
        #expect(NodeRuntime.healthCheckPassRules(director).map(\.description) == ["ipv4 to 10.0.0.2 proto 6"])
    }

    @Test func aDirectorWithoutHealthChecksStaysAddressless() throws {
        let path = Self.topologies.appendingPathComponent("lvs-nat.yaml").path
        let yaml = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "        health: { tcp: { interval: 1s, timeout: 1s, fail: 2, rise: 1 } }\n", with: "")
        let topology = try TopologyLoader.load(yaml: yaml, file: path)
        let plan = LabPlan(topology: topology, serveCommand: [])
        let ns = LabStore.namespaceName(lab: "lvs-nat", node: "lvs")
        #expect(plan.addresses.filter { $0.namespace == ns }.isEmpty && plan.neighbours.isEmpty)
        #expect(NodeRuntime.healthCheckPassRules(try #require(topology.node(named: "lvs"))).isEmpty)
    }
}
