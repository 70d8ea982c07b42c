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
