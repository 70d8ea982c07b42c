import Foundation
import Testing
import Topology
import Wire
@testable import Datapath
@testable import Lab

// `sync:` from the topology to the director element, and its counters in `status`.
@Suite struct SyncFactoryTests {
    static let yaml = """
        name: sync-factory
        nodes:
          lvs1:
            kind: director
            interfaces: { eth0: { ip: 10.0.0.2/24 }, eth1: { ip: 192.168.9.2/24 } }
            sync: { group: 42, interface: eth1 }
            services: [ { vip: 10.0.0.100, port: 80, mode: nat, reals: [ { ip: 10.0.0.11 } ] } ]
          lvs2:
            kind: director
            interfaces: { eth0: { ip: 10.0.0.3/24 } }
            services: [ { vip: 10.0.0.100, port: 80, mode: nat, reals: [ { ip: 10.0.0.11 } ] } ]
          rs1: { kind: host, interfaces: { eth0: { ip: 10.0.0.11/24 } } }
          peer: { kind: host, interfaces: { eth0: { ip: 192.168.9.4/24 } } }
          sw: { kind: switch }
        links:
          - [ lvs1:eth0, sw:p1 ]
          - [ lvs2:eth0, sw:p2 ]
          - [ rs1:eth0, sw:p3 ]
          - [ lvs1:eth1, peer:eth0 ]
        """

    @Test func syncReachesTheDirectorAndItsCounters() throws {
        let t = try TopologyLoader.load(yaml: Self.yaml, file: "sync-factory.yaml")
        let c1 = ElementFactory.directorConfiguration(try #require(t.node(named: "lvs1")))
        let c2 = ElementFactory.directorConfiguration(try #require(t.node(named: "lvs2")))
        #expect(c1.sync == SyncConfiguration(syncID: 42, port: PortID(1)))
        #expect(c2.sync == nil)
        let d1 = try Director(configuration: c1), d2 = try Director(configuration: c2)
        let counters1 = NodeForwarder.director(d1).counters, counters2 = NodeForwarder.director(d2).counters
        for key in ["sync-messages-sent", "sync-entries-sent", "sync-messages-received", "sync-installed", "synced-connections"] {
            #expect(counters1[key] == 0, "\(key)")
            #expect(counters2[key] == nil, "\(key) without sync")
        }
    }
}

/// The same pair in the simulator (DR: the reals answer straight to the
/// gateway, so only lvsa sees the connection): an HTTP request through lvsa; lvsb
/// installs the connection from lvsa's sync frames (which the switch
/// floods), with lvsa's real; lvsb's copy expires when lvsa's does.
@Suite struct SyncSimulatorTests {
    static let yaml = """
        name: sync-sim
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 192.168.81.10/24 } }, routes: [ "default via 192.168.81.1" ] }
          gw:
            kind: router
            interfaces: { down: { ip: 192.168.81.1/24 }, up: { ip: 10.81.0.254/24 } }
            routes: [ { to: 10.81.0.100/32, via: 10.81.0.2 } ]
          lvsa:
            kind: director
            interfaces: { eth0: { ip: 10.81.0.2/24 } }
            routes: [ "default via 10.81.0.254" ]
            sync: { group: 81, interface: eth0 }
            services: [ { vip: 10.81.0.100, port: 80, mode: dr, reals: [ { ip: 10.81.0.11 }, { ip: 10.81.0.12 } ] } ]
          lvsb:
            kind: director
            interfaces: { eth0: { ip: 10.81.0.3/24 } }
            routes: [ "default via 10.81.0.254" ]
            sync: { group: 81, interface: eth0 }
            services: [ { vip: 10.81.0.100, port: 80, mode: dr, reals: [ { ip: 10.81.0.11 }, { ip: 10.81.0.12 } ] } ]
          rs1: { kind: host, interfaces: { e0: { ip: 10.81.0.11/24 } }, routes: [ "default via 10.81.0.254" ], serve: { http: 80 } }
          rs2: { kind: host, interfaces: { e0: { ip: 10.81.0.12/24 } }, routes: [ "default via 10.81.0.254" ], serve: { http: 80 } }
          sw: { kind: switch }
        links:
          - [ cl:e0, gw:down ]
          - [ gw:up, sw:p1 ]
          - [ lvsa:eth0, sw:p2 ]
          - [ lvsb:eth0, sw:p3 ]
          - [ rs1:e0, sw:p4 ]
          - [ rs2:e0, sw:p5 ]
        """

    func director(_ sim: Simulator, _ name: String) throws -> Director {
        guard case .forwarder(.director(let d)) = try #require(sim.element(name)) else {
            Issue.record("\(name) is not a director")
            throw CancellationError()
        }
        return d
    }

    @Test func theStandbyLearnsTheConnectionOnTheVirtualClock() throws {
        let sim = try Simulator(topology: try TopologyLoader.load(yaml: Self.yaml, file: "sync-sim.yaml"))
        let a = try director(sim, "lvsa"), b = try director(sim, "lvsb")
        let reply = try sim.httpGet(from: "cl", to: IPv4Address(10, 81, 0, 100))
        #expect(reply.state.isFinished)
        sim.advance(by: 2_000_000_000)   // past the flush deadline, through a tick
        let onA = a.connections(now: sim.instant), onB = b.connections(now: sim.instant)
        #expect(onA.count == 1 && onB.count == 1, "lvsa \(onA), lvsb \(onB)")
        #expect(onB.first?.real == onA.first?.real && onB.first?.state == onA.first?.state && onB.first?.isSynced == true)
        #expect(a.syncCounters.messagesSent >= 1 && b.syncCounters.installed == 1 && b.syncCounters.entriesSent == 0)
        #expect(abs((onB.first?.expiresIn ?? 0) - (onA.first?.expiresIn ?? 0)) < 1.1)
        sim.advance(by: UInt64(((onA.first?.expiresIn ?? 0) + 2.5) * 1e9))
        #expect(a.connections(now: sim.instant).isEmpty && b.connections(now: sim.instant).isEmpty, "both expired")
    }
}
