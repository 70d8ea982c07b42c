// `bandwidth:` / `capacity:` and `wirelab plan` (CapacityPlan): rates parse
// as DESIGN.md writes them; lb-200g.yaml gives the LVS literature's figures
// (200G system, 100G per VIP, 50G per flow, 400G all active, no single
// failure costs capacity); a lossy fixture names the failures that cost;
// every shipped topology plans without error.
import Foundation
import Testing
@testable import Topology

@Suite struct RateTests {
    @Test(arguments: [
        ("100G", 100e9, Rate.Unit.bits), ("25G", 25e9, .bits), ("10M", 10e6, .bits), ("2.5G", 2.5e9, .bits),
        ("1T", 1e12, .bits), ("100Gbps", 100e9, .bits), ("64K", 64e3, .bits), ("10Mpps", 10e6, .packets),
        ("500Kpps", 500e3, .packets), ("1200pps", 1200, .packets),
    ])
    func parses(_ text: String, _ value: Double, _ unit: Rate.Unit) throws {
        let r = try #require(Rate(text))
        #expect(r.value == value)
        #expect(r.unit == unit)
    }

    @Test(arguments: ["100", "G", "1.5.G", "10Q", "", "-1G", "1e3G", "10 G", "1.G", "Mpps", "10bps"])
    func refuses(_ text: String) {
        #expect(Rate(text) == nil, "\(text)")
    }

    @Test func printsTheLargestPrefix() {
        #expect(Rate(200e9).description == "200G")
        #expect(Rate(12.5e9).description == "12.5G")
        #expect(Rate(200e9 / 7).description == "28.57G")
        #expect(Rate(10e6, .packets).description == "10Mpps")
        #expect(Rate(999).description == "999")
    }

    @Test func theFileCarriesTheValues() throws {
        let t = try TopologyLoader.load(path: Paths.fixtures.appendingPathComponent("good/plan-lossy.yaml").path)
        #expect(t.links.map { $0.bandwidth?.value } == [nil, nil, 40e9, 40e9, 25e9, 25e9, nil, nil, nil])
        #expect(t.node(named: "lvs2")?.capacity.nic == Rate(10e9))
        #expect(t.node(named: "lvs2")?.capacity.pps == Rate(2e6, .packets))
        #expect(t.node(named: "rs3")?.capacity.node == Rate(8e9))
        #expect(t.node(named: "r1")?.capacity.isEmpty == true)
    }

    /// Without `nics:`, each bond is one NIC, its members in bond order.
    @Test func aBondIsOneNIC() throws {
        let t = try TopologyLoader.load(path: Paths.topologies.appendingPathComponent("lb-200g.yaml").path)
        let lvs1 = try #require(t.node(named: "lvs1"))
        #expect(lvs1.capacity.nics.isEmpty)
        #expect(lvs1.bonds.map(\.members) == [["eth0", "eth1"], ["eth3", "eth2"]])
        let p = try CapacityPlan(t)
        #expect(p.text.contains("lvs1 NIC eth0+eth1 in"), "\(p.text)")
    }
}

@Suite struct CapacityPlanTests {
    static func plan(_ file: String, packetBytes: Int = CapacityPlan.defaultPacketBytes) throws -> CapacityPlan {
        try CapacityPlan(TopologyLoader.load(path: Paths.topologies.appendingPathComponent(file).path), packetBytes: packetBytes)
    }

    static func fixture(_ name: String, packetBytes: Int = CapacityPlan.defaultPacketBytes) throws -> CapacityPlan {
        try CapacityPlan(TopologyLoader.load(path: Paths.fixtures.appendingPathComponent("good/\(name)").path), packetBytes: packetBytes)
    }

    static func near(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) <= b * 1e-9 } ?? false }

    @Test func lb200gGivesTheLiteraturesFigures() throws {
        let p = try Self.plan("lb-200g.yaml")
        #expect(Self.near(p.normal.capacity, 200e9), "system \(String(describing: p.normal.capacity))")
        #expect(p.publicLimits.count == 2)
        for l in p.publicLimits { #expect(Self.near(l.rate, 100e9), "public address \(l.name)") }
        #expect(p.vipLimits.count == 2)
        for l in p.vipLimits { #expect(Self.near(l.rate, 100e9), "VIP \(l.name)") }
        #expect(Self.near(p.flowLimit, 50e9))
        let text = p.text
        for line in ["system               200G", "one VIP              100G", "one flow             50G",
                     "worst single failure none: no single failure costs capacity"] {
            #expect(text.contains(line), "\(line)\n\(text)")
        }
    }

    @Test func noSingleFailureCostsLb200gCapacity() throws {
        let p = try Self.plan("lb-200g.yaml")
        let t = try TopologyLoader.load(path: Paths.topologies.appendingPathComponent("lb-200g.yaml").path)
        // Every router, switch, director, real server and link in turn.
        let expected = t.nodes.filter { $0.name != "users" }.map(\.name).map { CapacityPlan.Failure.node($0) }
            + t.links.indices.map { i in CapacityPlan.Failure.link(i, "\(t.links[i].a) <-> \(t.links[i].b)") }
        #expect(p.failures.map(\.failure) == expected)
        #expect(p.failures.count == 18 + t.links.count)
        for f in p.failures {
            #expect(Self.near(f.capacity, 200e9), "\(f.failure!): \(String(describing: f.capacity))")
            #expect(f.unreachable.isEmpty)
        }
        #expect(p.worst == nil)
    }

    @Test func bothVIPsOfEachPairActiveOnDifferentDirectorsGive400G() throws {
        let p = try Self.plan("lb-200g-active.yaml")
        #expect(Self.near(p.normal.capacity, 400e9))
        for l in p.vipLimits { #expect(Self.near(l.rate, 100e9), "VIP \(l.name)") }
        #expect(Self.near(p.flowLimit, 50e9))
        // Every director carries traffic.
        for d in ["lvs1", "lvs2", "lvs3", "lvs4"] { #expect((p.normal.loads[.node(d)] ?? 0) > 0, "\(d)") }
    }

    @Test func vrrpBackupsCarryNothingUntilTheMasterFails() throws {
        let p = try Self.plan("lb-200g.yaml")
        // lvs1 receives half the traffic, evenly over its two NICs; FULLNAT
        // replies cross it again, so its node load is twice its share.
        #expect(Self.near(p.normal.loads[.nic(node: "lvs1", index: 0, incoming: true)], 0.25))
        #expect(Self.near(p.normal.loads[.nic(node: "lvs1", index: 1, incoming: true)], 0.25))
        #expect(Self.near(p.normal.loads[.node("lvs1")], 1))
        #expect((p.normal.loads[.node("lvs2")] ?? 0) == 0)
        let lvs1Down = try #require(p.failures.first { $0.failure == .node("lvs1") })
        #expect(Self.near(lvs1Down.loads[.nic(node: "lvs2", index: 0, incoming: true)], 0.25))
        #expect((lvs1Down.loads[.node("lvs1")] ?? 0) == 0)
        // ECMP: the routers share evenly; one lost, the other carries all.
        #expect(Self.near(p.normal.loads[.node("r1")], 0.5))
        #expect(Self.near(p.normal.loads[.node("r2")], 0.5))
        let r1Down = try #require(p.failures.first { $0.failure == .node("r1") })
        #expect(Self.near(r1Down.loads[.node("r2")], 1))
    }

    /// The same design with other names, addresses and sizes: the figures
    /// follow the capacities, not the example.
    @Test func theFiguresFollowTheCapacities() throws {
        var yaml = try String(contentsOf: Paths.topologies.appendingPathComponent("lb-200g.yaml"), encoding: .utf8)
        for (a, b) in [("lvs1", "east-a"), ("lvs2", "east-b"), ("r1", "edge-x"), ("sw1", "tor-1"), ("10.1.0.", "10.77.0."),
                       ("nic: 50G", "nic: 20G"), ("bandwidth: 100G", "bandwidth: 40G")] {
            yaml = yaml.replacingOccurrences(of: a, with: b)
        }
        let p = try CapacityPlan(TopologyLoader.load(yaml: yaml, file: "renamed.yaml"))
        #expect(Self.near(p.normal.capacity, 80e9))
        for l in p.vipLimits { #expect(Self.near(l.rate, 40e9)) }
        #expect(Self.near(p.flowLimit, 20e9))
        #expect(p.worst == nil)
    }

    @Test func aLossyTopologyNamesTheFailuresThatCost() throws {
        let p = try Self.fixture("plan-lossy.yaml")
        #expect(Self.near(p.normal.capacity, 20e9))
        #expect(Self.near(p.flowLimit, 8e9))
        func capacity(_ node: String) -> Double? { p.failures.first { $0.failure == .node(node) }?.capacity }
        #expect(Self.near(capacity("lvs1"), 10e9))          // active/active: the other director's 10G NIC
        #expect(Self.near(capacity("rs1"), 16e9))           // two reals of 8G left
        #expect(Self.near(capacity("r1"), 20e9))            // ECMP over the other router
        #expect(capacity("sw") == 0)
        let worst = try #require(p.worst)
        #expect(worst.failure == .node("sw"))
        #expect(worst.unreachable == ["10.0.0.100"])
        #expect(p.text.contains("worst single failure sw: 0 (loses 20G), unreachable: 10.0.0.100"))
    }

    @Test func ppsCountsAtThePacketSize() throws {
        // lvs2 carries half the traffic; 2Mpps of 64-byte packets is 1.024G.
        let p = try Self.fixture("plan-lossy.yaml", packetBytes: 64)
        #expect(Self.near(p.normal.capacity, 2 * 2e6 * 64 * 8))
        #expect(p.normal.bottleneck == .nodePackets("lvs2"))
    }

    @Test func jsonCarriesTheSameNumbers() throws {
        let p = try Self.plan("lb-200g.yaml")
        let object = try #require(JSONSerialization.jsonObject(with: Data(p.json.utf8)) as? [String: Any])
        #expect(object["system"] as? Double == p.normal.capacity)
        #expect(object["flow"] as? Double == 50e9)
        #expect((object["failures"] as? [Any])?.count == p.failures.count)
        #expect(object["worstFailure"] == nil || object["worstFailure"] is NSNull)
    }

    @Test(arguments: Paths.files(in: Paths.topologies, ext: "yaml").map(\.lastPathComponent))
    func everyExamplePlans(_ name: String) throws {
        let p = try Self.plan(name)
        #expect(!p.text.isEmpty)
        #expect(!p.json.isEmpty)
    }

    @Test func withoutCapacitiesThePlanSaysUnknown() throws {
        let p = try Self.plan("ha-pair.yaml")
        #expect(p.normal.capacity == nil)
        #expect(p.flowLimit == nil)
        #expect(p.missing == ["bandwidth: on links", "capacity: on nodes"])
        #expect(p.text.contains("system               unknown"))
        #expect(p.text.contains("capacity unknown: add bandwidth: on links and capacity: on nodes"))
        // The VRRP master carries the VIP, the backup nothing; the router is the single point of failure.
        #expect(Self.near(p.normal.loads[.node("lvs1")], 1))
        #expect((p.normal.loads[.node("lvs2")] ?? 0) == 0)
        #expect(p.failures.first { $0.failure == .node("gw") }?.unreachable == ["10.0.0.100"])
    }
}

/// docs/plan.md quotes `wirelab plan`'s summary verbatim (`<!-- plan: FILE -->`
/// before a ```text block): the page cannot drift from what the command prints.
@Suite struct PlanDocsTests {
    @Test func docsQuoteWhatPlanPrints() throws {
        let text = try String(contentsOf: Paths.root.appendingPathComponent("docs/plan.md"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var quoted = 0
        for (i, line) in lines.enumerated() where line.hasPrefix("<!-- plan: ") {
            let file = String(line.dropFirst("<!-- plan: ".count).dropLast(" -->".count))
            #expect(lines[i + 1] == "```text")
            let block = lines[(i + 2)...].prefix { $0 != "```" }.joined(separator: "\n") + "\n"
            let url = FileManager.default.fileExists(atPath: Paths.topologies.appendingPathComponent(file).path)
                ? Paths.topologies.appendingPathComponent(file) : Paths.fixtures.appendingPathComponent("good/\(file)")
            let plan = try CapacityPlan(TopologyLoader.load(path: url.path))
            #expect(plan.text.hasPrefix(block), "docs/plan.md quotes \(file):\n\(block)\nplan prints:\n\(plan.text)")
            quoted += 1
        }
        #expect(quoted == 2)
    }
}
