import Foundation
import Testing
import Topology
import Wire
@testable import Datapath
@testable import Lab

/// `Topologies/bond.yaml` on the simulator: r1's bond0 over eth0 (to sw1)
/// and eth1 (to sw2, joined to sw1 by a link). The router sees one port;
/// the bond takes frames in on its active member only, fails over when
/// that member loses carrier, and announces the move with gratuitous ARPs.
@Suite struct BondSimTests {
    static let server = IPv4Address("10.0.2.10")!
    static let bondAddress = IPv4Address("10.0.1.1")!

    static func sim() throws -> (Simulator, MACAddress) {
        let topology = try SimulatorTests.load("bond.yaml")
        let r1 = try #require(topology.node(named: "r1"))
        let mac = try #require(r1.bonds.first?.mac)
        return (try Simulator(topology: topology), mac)
    }

    static func gets(_ sim: Simulator, _ count: Int) throws -> Int {
        var answered = 0
        for _ in 0..<count where try sim.httpGet(from: "client", to: server, limit: 2_000_000_000).httpBody == "server\n" {
            answered += 1
        }
        return answered
    }

    /// Gratuitous ARPs for the bond's address from its MAC, received at
    /// `at` ("sw2:p2") on link `link`, after virtual time `after`.
    static func gratuitousARPs(_ sim: Simulator, link: String, at: String, mac: MACAddress, after: UInt64) -> Int {
        guard let records = sim.captures().first(where: { $0.name == link })?.records else { return -1 }
        return records.filter { r in
            guard r.timestamp >= Simulator.epoch + after, r.comment == "rx \(at)", r.bytes.count >= 42,
                  r.bytes[12] == 0x08, r.bytes[13] == 0x06 else { return false }
            let arp = r.bytes.withUnsafeBytes { try? ARPHeader(validating: UnsafeRawBufferPointer(rebasing: $0[14..<42])) }
            return arp?.senderHardwareAddress == mac && arp?.senderProtocolAddress == bondAddress
                && arp?.targetProtocolAddress == bondAddress && Array(r.bytes[0..<6]) == Array(repeating: 0xff, count: 6)
        }.count
    }

    @Test func theRouterSeesOneBondPortAndTheBackupTakesNothingIn() throws {
        let (sim, _) = try Self.sim()
        guard case let .forwarder(.router(r1)) = try #require(sim.element("r1")) else { Issue.record("r1 is a router"); return }
        #expect(r1.portCount == 2, "bond0 and eth2")
        #expect(try Self.gets(sim, 2) == 2)
        // The client's ARP request for 10.0.1.1 is flooded to both members
        // (sw1 → eth0, sw1 → sw2 → eth1): the router takes it in once.
        #expect((sim.drops(of: "r1")["bond-backup"] ?? 0) >= 1)
        guard case let .forwarder(f) = try #require(sim.element("r1")) else { return }
        #expect(f.counters["arp-replies-sent"] == 1, "one answer, from the active member: \(f.counters)")
    }

    @Test func cuttingTheActiveMemberFailsOverAndAnnouncesTheMove() throws {
        let (sim, mac) = try Self.sim()
        guard case let .forwarder(.router(r1)) = try #require(sim.element("r1")),
              case let .forwarder(.learningSwitch(sw1)) = try #require(sim.element("sw1")) else {
            Issue.record("r1 is a router, sw1 a switch"); return
        }
        #expect(try Self.gets(sim, 1) == 1)
        // sw1 learned the bond's MAC behind p2 (r1:eth0), its port 2.
        #expect(sw1.table.entries.contains { $0.mac == mac && $0.entry.port == PortID(2) })
        let cut = sim.now
        #expect(Self.gratuitousARPs(sim, link: "r1:eth1 ↔ sw2:p2", at: "sw2:p2", mac: mac, after: 0) == 0)
        try sim.fail(link: Endpoint("r1:eth0")!)
        sim.advance(by: 1_000_000)
        // The bond still has carrier: the router drops no routes.
        #expect(r1.fib.downPorts.isEmpty)
        // eth1 announced the bond's address and MAC.
        #expect(Self.gratuitousARPs(sim, link: "r1:eth1 ↔ sw2:p2", at: "sw2:p2", mac: mac, after: cut) == 1)
        // sw1 forgot what it learned on the dead port, and learned the MAC
        // again behind the inter-switch link (p9, its port 1).
        #expect(!sw1.table.entries.contains { $0.entry.port == PortID(2) })
        #expect(sw1.table.entries.contains { $0.mac == mac && $0.entry.port == PortID(1) })
        #expect(try Self.gets(sim, 3) == 3)

        // Both members down: the bond is down, the router drops its routes.
        try sim.fail(link: Endpoint("r1:eth1")!)
        #expect(r1.fib.downPorts == [PortID(0)])
        #expect(try sim.httpGet(from: "client", to: Self.server, limit: 1_000_000_000).httpBody == nil)
        // eth0 comes back first (the bond is up again, on it), then eth1,
        // which stays backup: the active member has carrier.
        try sim.heal(link: Endpoint("r1:eth0")!)
        #expect(r1.fib.downPorts.isEmpty)
        let back = sim.now
        sim.advance(by: 1_000_000)
        #expect(Self.gratuitousARPs(sim, link: "r1:eth0 ↔ sw1:p2", at: "sw1:p2", mac: mac, after: back) == 1)
        try sim.heal(link: Endpoint("r1:eth1")!)
        sim.advance(by: 1_000_000)
        #expect(Self.gratuitousARPs(sim, link: "r1:eth1 ↔ sw2:p2", at: "sw2:p2", mac: mac, after: back) == 0)
        #expect(try Self.gets(sim, 3) == 3)
        #expect(sw1.table.entries.contains { $0.mac == mac && $0.entry.port == PortID(2) })
    }
}

/// `wirelab status` names each bond member's bond and whether it is active.
@Suite struct BondStatusTests {
    @Test func aMemberShowsItsBondAndRole() {
        var port = DatapathStatus.PortCounters(interface: "eth0", kind: "afxdp", rxFrames: 0, txFrames: 0, rxDropped: 0, txDropped: 0)
        #expect(port.label == "eth0")
        port.bond = "bond0"
        port.bondActive = true
        #expect(port.label == "eth0 (bond0 active)")
        port.bondActive = false
        #expect(port.label == "eth0 (bond0 backup)")
        let text = DatapathStatus(pid: 1, uptimeSeconds: 0, nodes: [.init(node: "r1", kind: "router", ports: [port], drops: [:], counters: [:])],
                                  capture: nil, capturePoints: nil).text()
        #expect(text.contains("eth0 (bond0 backup)"), "\(text)")
    }
}
