import Datapath
import Testing
import Topology
import Wire
@testable import Lab

/// VRRP in the simulator: two directors of one group on a switch with a
/// client and two reals; the election runs on the virtual clock, only the
/// master serves the VIP, and when its group stops (a power cut) the
/// backup takes over after exactly Master_Down_Interval and serves it.
@Suite struct VRRPSimTests {
    static func yaml(vmac: Bool) -> String {
        """
        name: vrrp-sim
        nodes:
          client:
            kind: host
            interfaces: { eth0: { ip: 10.0.0.50/24 } }
          lvs1:
            kind: director
            interfaces: { eth0: { ip: 10.0.0.2/24 } }
            vrrp: { group: 17, priority: 200, vips: [ 10.0.0.100 ], interval: 0.1s, vmac: \(vmac) }
            services: [ { vip: 10.0.0.100, port: 80, mode: dr, reals: [ { ip: 10.0.0.11 }, { ip: 10.0.0.12 } ] } ]
          lvs2:
            kind: director
            interfaces: { eth0: { ip: 10.0.0.3/24 } }
            vrrp: { group: 17, priority: 100, vips: [ 10.0.0.100 ], interval: 0.1s, vmac: \(vmac) }
            services: [ { vip: 10.0.0.100, port: 80, mode: dr, reals: [ { ip: 10.0.0.11 }, { ip: 10.0.0.12 } ] } ]
          rs1: { kind: host, interfaces: { eth0: { ip: 10.0.0.11/24 } }, serve: { http: 80 } }
          rs2: { kind: host, interfaces: { eth0: { ip: 10.0.0.12/24 } }, serve: { http: 80 } }
          sw: { kind: switch }
        links:
          - [ client:eth0, sw:p1 ]
          - [ lvs1:eth0, sw:p2 ]
          - [ lvs2:eth0, sw:p3 ]
          - [ rs1:eth0, sw:p4 ]
          - [ rs2:eth0, sw:p5 ]
        """
    }

    static func director(_ sim: Simulator, _ name: String) -> Director {
        guard case let .forwarder(.director(d))? = sim.element(name) else { fatalError("\(name) is no director") }
        return d
    }

    @Test(arguments: [false, true])
    func masterServesTheVIPAndTheBackupTakesOver(vmac: Bool) throws {
        let topology = try TopologyLoader.load(yaml: Self.yaml(vmac: vmac), file: "vrrp-sim.yaml")
        let sim = try Simulator(topology: topology)
        let vip = IPv4Address(10, 0, 0, 100)
        let lvs1 = Self.director(sim, "lvs1"), lvs2 = Self.director(sim, "lvs2")
        // The election settles on its own: `run` does not stop before.
        #expect(sim.run(limit: 5_000_000_000))
        #expect(lvs1.vrrp.isMaster(group: 17) && !lvs2.vrrp.isMaster(group: 17))
        #expect(lvs2.vrrp.instances[0].masterAddress == IPv4Address(10, 0, 0, 2))
        let first = try sim.httpGet(from: "client", to: vip)
        #expect(first.httpBody == "rs1\n" || first.httpBody == "rs2\n", "\(first.state)")
        #expect(lvs1.counters.forwardedDR > 0 && lvs2.counters.forwardedDR == 0)

        // Power cut of lvs1's group: the backup's timer runs out.
        sim.advance(by: 250_000_000)
        let transitionsBefore = lvs2.vrrp.instances[0].transitions.count
        lvs1.vrrp.stop(now: sim.instant)
        let stoppedAt = sim.now
        sim.advance(by: 1_000_000_000)
        let takeover = try #require(lvs2.vrrp.instances[0].transitions.last)
        #expect(lvs2.vrrp.instances[0].transitions.count == transitionsBefore + 1 && takeover.to == .master)
        // Within Master_Down_Interval (0.3609375 s) after the last advert, which came at most 0.1 s before the stop.
        let after = takeover.at.nanoseconds - stoppedAt
        #expect(after <= 360_937_500 && after > 260_000_000, "takeover \(after) ns after the stop")
        let forwardedBefore = lvs2.counters.forwardedDR
        let second = try sim.httpGet(from: "client", to: vip)
        #expect(second.httpBody == "rs1\n" || second.httpBody == "rs2\n", "\(second.state)")
        #expect(lvs2.counters.forwardedDR > forwardedBefore)
        #expect(lvs1.vrrp.instances[0].state == .initialize)
    }

    /// Two routers share the hosts' gateway addresses (a VIP per side,
    /// vmac on one side): the master forwards, the backup stays silent, and
    /// the backup takes both groups over when the master's groups stop.
    @Test func routersShareTheGatewayAddress() throws {
        let yaml = """
        name: vrrp-gw
        nodes:
          client: { kind: host, interfaces: { eth0: { ip: 10.0.0.50/24 } }, routes: [ "default via 10.0.0.1" ] }
          server: { kind: host, interfaces: { eth0: { ip: 10.1.0.10/24 } }, routes: [ "default via 10.1.0.1" ] }
          r1:
            kind: router
            interfaces: { eth0: { ip: 10.0.0.2/24 }, eth1: { ip: 10.1.0.2/24 } }
            vrrp:
              - { group: 1, priority: 200, vips: [ 10.0.0.1 ], interval: 0.1s, vmac: true }
              - { group: 2, priority: 200, vips: [ 10.1.0.1 ], interval: 0.1s }
          r2:
            kind: router
            interfaces: { eth0: { ip: 10.0.0.3/24 }, eth1: { ip: 10.1.0.3/24 } }
            vrrp:
              - { group: 1, priority: 100, vips: [ 10.0.0.1 ], interval: 0.1s, vmac: true }
              - { group: 2, priority: 100, vips: [ 10.1.0.1 ], interval: 0.1s }
          sw0: { kind: switch }
          sw1: { kind: switch }
        links:
          - [ client:eth0, sw0:p1 ]
          - [ r1:eth0, sw0:p2 ]
          - [ r2:eth0, sw0:p3 ]
          - [ server:eth0, sw1:p1 ]
          - [ r1:eth1, sw1:p2 ]
          - [ r2:eth1, sw1:p3 ]
        """
        let sim = try Simulator(topology: try TopologyLoader.load(yaml: yaml, file: "vrrp-gw.yaml"))
        guard case let .forwarder(.router(r1))? = sim.element("r1"), case let .forwarder(.router(r2))? = sim.element("r2") else {
            Issue.record("no routers")
            return
        }
        #expect(sim.run(limit: 5_000_000_000))
        #expect(r1.vrrp.isMaster(group: 1) && r1.vrrp.isMaster(group: 2))
        #expect(!r2.vrrp.isMaster(group: 1) && !r2.vrrp.isMaster(group: 2))
        let server = IPv4Address(10, 1, 0, 10)
        #expect(try sim.ping(from: "client", to: server, identifier: 7, sequence: 1))
        sim.run(limit: 2_000_000_000) { sim.host("client")!.pingReplies.count == 1 }
        #expect(sim.host("client")!.pingReplies.count == 1)
        // Even the gateway address itself answers (from the master).
        #expect(try sim.ping(from: "client", to: IPv4Address(10, 0, 0, 1), identifier: 7, sequence: 2))
        sim.run(limit: 2_000_000_000) { sim.host("client")!.pingReplies.count == 2 }
        #expect(sim.host("client")!.pingReplies.count == 2)
        #expect(r1.counters.forwarded >= 2 && r2.counters.forwarded == 0)
        #expect(r2.counters.echoReplies == 0)

        r1.vrrp.stop(now: sim.instant)
        sim.advance(by: 1_000_000_000)
        #expect(r2.vrrp.isMaster(group: 1) && r2.vrrp.isMaster(group: 2))
        #expect(try sim.ping(from: "client", to: server, identifier: 7, sequence: 3))
        sim.run(limit: 2_000_000_000) { sim.host("client")!.pingReplies.count == 3 }
        #expect(sim.host("client")!.pingReplies.count == 3)
        #expect(r2.counters.forwarded >= 2)
    }

    /// As `up` live: the simulator starts with every group's master
    /// elected, so the first probe to a VIP finds it answered.
    @Test func electionsSettleBeforeAnythingIsSent() throws {
        let sim = try Simulator(topology: try TopologyLoader.load(yaml: Self.yaml(vmac: false), file: "vrrp-sim.yaml"))
        #expect(Self.director(sim, "lvs1").vrrp.isMaster(group: 17))
        // lvs1's Master_Down_Interval (0.321875 s at 0.1 s, priority 200), then its advert crossing the switch.
        #expect(sim.now >= 321_875_000 && sim.now < 330_000_000, "\(sim.now)")
        let first = try sim.httpGet(from: "client", to: IPv4Address(10, 0, 0, 100))
        #expect(first.httpBody == "rs1\n" || first.httpBody == "rs2\n", "\(first.state)")
    }

    @Test func topologiesWithoutVRRPAreUnchanged() throws {
        let topology = try TopologyLoader.load(yaml: Self.yaml(vmac: false).replacingOccurrences(of: "vrrp:", with: "# vrrp:"),
                                               file: "plain.yaml")
        let sim = try Simulator(topology: topology)
        // (Routers and directors have fine timers for ARP retries; without
        // VRRP nothing runs before the first frame is sent.)
        #expect(sim.run())
        #expect(sim.now == 0)
    }
}
