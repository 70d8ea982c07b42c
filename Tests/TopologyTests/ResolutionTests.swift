// Good files: what the resolved model looks like.
import Foundation
import Testing
import Wire
@testable import Topology

func loadExample(_ name: String) throws -> ResolvedTopology {
    try TopologyLoader.load(path: Paths.topologies.appendingPathComponent(name).path)
}

func loadGood(_ name: String) throws -> ResolvedTopology {
    let url = Paths.fixtures.appendingPathComponent("good").appendingPathComponent(name)
    return try TopologyLoader.load(yaml: String(contentsOf: url, encoding: .utf8), file: name)
}

extension ResolvedTopology {
    subscript(node name: String) -> Node {
        get throws { try #require(node(named: name), "no node \(name)") }
    }
}

@Suite struct ResolutionTests {
    // MARK: MACs

    @Test func derivedMACsAreStableAndKeyedByLabNodeInterface() throws {
        let a = try loadExample("two-hosts.yaml"), b = try loadExample("two-hosts.yaml")
        let h1 = try a[node: "h1"].interfaces[0]
        #expect(h1.mac == MACAddress.derived(from: "two-hosts/h1/eth0"))
        #expect(h1.mac == (try b[node: "h1"].interfaces[0].mac))
        // Pinned: a change here changes every golden capture.
        #expect(h1.mac.description == MACAddress.derived(from: "two-hosts/h1/eth0").description)
        #expect(h1.mac.isLocallyAdministered && !h1.mac.isMulticast)
        #expect(h1.mac != (try a[node: "h2"].interfaces[0].mac))
    }

    @Test func aGivenMACIsKeptAndSwitchPortsGetDerivedMACs() throws {
        let t = try loadGood("chained-switches.yaml")
        #expect(try t[node: "h3"].interfaces[0].mac == MACAddress(0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x03))
        #expect(try t[node: "sw2"].interface(named: "up")?.mac == MACAddress.derived(from: "chain/sw2/up"))
    }

    @Test func theLabNameIsPartOfTheDerivedMAC() throws {
        let yaml = try String(contentsOf: Paths.topologies.appendingPathComponent("two-hosts.yaml"), encoding: .utf8)
        let other = try TopologyLoader.load(yaml: yaml.replacingOccurrences(of: "name: two-hosts", with: "name: other"), file: "x.yaml")
        #expect(try other[node: "h1"].interfaces[0].mac == MACAddress.derived(from: "other/h1/eth0"))
        #expect(try other[node: "h1"].interfaces[0].mac != (try loadExample("two-hosts.yaml")[node: "h1"].interfaces[0].mac))
    }

    // MARK: Switch ports and segments

    @Test func switchPortsComeFromLinksInLinkOrder() throws {
        let t = try loadExample("switch.yaml")
        let sw = try t[node: "sw"]
        #expect(sw.kind == .switch)
        #expect(sw.interfaces.map(\.name) == ["p1", "p2", "p3", "p4"])
        #expect(sw.interfaces.allSatisfy { $0.addresses.isEmpty && $0.mtu == 1500 })
        #expect(sw.interfaces[2].peer == Endpoint(node: "h3", interface: "eth0"))
        #expect(t.segments.count == 1)
        #expect(t.segments[0].switches == ["sw"])
        #expect(t.segments[0].stations.map(\.description) == ["h1:eth0", "h2:eth0", "h3:eth0", "h4:eth0"])
    }

    @Test func chainedSwitchesMergeIntoOneSegment() throws {
        let t = try loadGood("chained-switches.yaml")
        #expect(t.segments.count == 2)
        let lan = t.segments[0]
        #expect(lan.switches == ["sw1", "sw2", "sw3"])
        #expect(lan.stations.map(\.description) == ["h1:eth0", "h2:eth0", "h3:eth0", "gw:eth0"])
        #expect(lan.endpoints.count == 4 + 8)   // four stations, eight switch ports
        #expect(t.segments[1].endpoints.map(\.description) == ["gw:eth1", "far:eth0"])
        #expect(t.segments[1].switches.isEmpty)
        #expect(t.segment(containing: Endpoint(node: "sw3", interface: "p1")) == lan)
        #expect(t.segment(containing: Endpoint(node: "far", interface: "eth0")) == t.segments[1])
        #expect(t.segment(containing: Endpoint(node: "far", interface: "eth9")) == nil)
    }

    @Test func linkMTUsReachTheInterfaces() throws {
        let t = try loadGood("chained-switches.yaml")
        #expect(try t[node: "sw2"].interface(named: "up")?.mtu == 9000)
        #expect(try t[node: "sw3"].interface(named: "down")?.mtu == 9000)
        #expect(try t[node: "far"].interfaces[0].mtu == 1400)
        #expect(try t[node: "h1"].interfaces[0].mtu == 1500)
        #expect(t.links.map(\.mtu) == [1500, 1500, 1500, 9000, 1500, 1500, 1400])
    }

    @Test func lookupsByNameAndEndpoint() throws {
        let t = try loadExample("lvs-dr.yaml")
        #expect(t.node(named: "nobody") == nil)
        #expect(t.nodes.map(\.name) == ["client", "gw", "sw", "lvs", "rs1", "rs2"])
        let link = try #require(t.link(at: Endpoint(node: "sw", interface: "p4")))
        #expect(link.a == Endpoint(node: "rs2", interface: "eth0"))
        #expect(link.location == SourceLocation(file: t.file, line: 56, column: 5))
        #expect(link.peer(of: link.a) == link.b)
        #expect(t.link(at: Endpoint(node: "sw", interface: "p9")) == nil)
        #expect(t.interface(at: Endpoint(node: "gw", interface: "eth1"))?.addresses == [IPv4Prefix("10.0.0.254/24")!])
        #expect(try t[node: "gw"].interfaces.map { $0.peer?.description } == ["client:eth0", "sw:p1"])
    }

    @Test func locationsPointAtTheYAML() throws {
        let t = try loadExample("two-hosts.yaml")
        #expect(try t[node: "h2"].location.description.hasSuffix("two-hosts.yaml:9:3"))
        #expect(try t[node: "h2"].interfaces[0].location.line == 11)
        #expect(try t[node: "h2"].interfaces[0].location.column == 19)
    }

    // MARK: Routes

    @Test func routesInBothFormsAndECMP() throws {
        let t = try loadExample("ecmp.yaml")
        let r1 = try t[node: "r1"]
        #expect(r1.routes.count == 1)
        #expect(r1.routes[0].destination == IPv4Prefix("10.0.2.0/24")!)
        #expect(r1.routes[0].nextHops == [IPv4Address("10.0.12.2")!, IPv4Address("10.0.13.3")!])
        #expect(r1.routes[0].isMultipath)
        #expect(r1.ecmp == ECMPHashConfig(fields: [.srcIP, .dstIP, .proto, .srcPort, .dstPort], seed: 7))
        let r4 = try t[node: "r4"]
        #expect(r4.ecmp.fields == [.srcIP, .dstIP, .srcPort, .dstPort])
        #expect(r4.ecmp.seed == 0)
        #expect(try t[node: "r2"].ecmp == ECMPHashConfig())
        #expect(ECMPHashConfig().fields.map(\.rawValue) == ["src-ip", "dst-ip", "proto", "src-port", "dst-port"])
        let client = try t[node: "client"]
        #expect(client.routes[0].isDefault)
        #expect(client.routes[0].destination == IPv4Prefix(address: .any, length: 0))
        #expect(client.routes[0].nextHops == [IPv4Address(10, 0, 1, 1)])
        #expect(try t[node: "r2"].routes.map(\.destination.description) == ["10.0.2.0/24", "10.0.1.0/24"])
    }

    @Test func vrrpGroupsOnRoutersAndDirectors() throws {
        let t = try loadGood("vrrp.yaml")
        let r1 = try t[node: "r1"].vrrp, r2 = try t[node: "r2"].vrrp
        #expect(r1.count == 1 && r1[0].priority == 255 && r1[0].interface == "eth0" && r1[0].interval == DurationSpec(milliseconds: 100))
        #expect(r2[0].vmac && r2[0].interface == "eth0" && r2[0].vips == [IPv4Address(192, 0, 2, 1)])
        let lvs1 = try t[node: "lvs1"].vrrp
        #expect(lvs1.map(\.group) == [17, 18])
        #expect(lvs1.map(\.interface) == ["eth0", "eth0"])
        #expect(lvs1[0].interval == DurationSpec(milliseconds: 500) && lvs1[0].preemptDelay == .seconds(2))
        #expect(lvs1[1].interval == DurationSpec(milliseconds: 50) && !lvs1[1].preempt && !lvs1[1].vmac)
        #expect(try t[node: "lvs2"].vrrp.map(\.priority) == [100, 200])
    }

    @Test func aNextHopMayBeAVRRPAddress() throws {
        let t = try loadGood("directors.yaml")
        #expect(try t[node: "rs1"].routes[0].nextHops == [IPv4Address(10, 0, 0, 100)])
    }

    // MARK: Defaults and datapaths

    @Test func defaultsApplyWhenAbsent() throws {
        let t = try loadExample("two-hosts.yaml")
        #expect(t.defaults == Defaults(datapath: .afxdp, capture: false))
        #expect(t.nodes.allSatisfy { $0.datapath == .afxdp && $0.auto && $0.run.isEmpty && $0.vrrp.isEmpty })
        #expect(try t[node: "h2"].serve == ServeSpec(http: 8080, udpEcho: nil))
        #expect(try t[node: "h1"].serve == nil)
    }

    @Test func aNodeOverridesTheDefaultDatapath() throws {
        let ecmp = try loadExample("ecmp.yaml")
        #expect(ecmp.defaults.capture)
        #expect(try ecmp[node: "r2"].datapath == .afpacket)
        #expect(try ecmp[node: "r1"].datapath == .afxdp)
        let d = try loadGood("directors.yaml")
        #expect(d.defaults == Defaults(datapath: .afpacket, capture: true))
        #expect(try d[node: "gw"].datapath == .afxdp)
        #expect(try d[node: "lvs1"].datapath == .afpacket)
        let chain = try loadGood("chained-switches.yaml")
        #expect(try chain[node: "sw2"].datapath == .afpacket)
        #expect(try chain[node: "sw1"].datapath == .afxdp)
    }

    // MARK: Directors

    @Test func theDesignExampleResolves() throws {
        let t = try loadExample("lvs-dr.yaml")
        #expect(t.name == "lvs-dr")
        let lvs = try t[node: "lvs"]
        #expect(lvs.kind == .director && lvs.isUserspace)
        #expect(lvs.services.count == 1)
        let s = lvs.services[0]
        #expect(s.vip == IPv4Address(10, 0, 0, 100) && s.port == 80 && s.proto == .tcp)
        #expect(s.scheduler == .rr && s.mode == .dr)
        #expect(s.reals.map(\.ip) == [IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 3)])
        #expect(s.reals.map(\.weight) == [1, 2])
        #expect(s.reals.map(\.port) == [80, 80])
        #expect(s.health == HealthCheck(kind: .tcp, port: nil, interval: .seconds(1), timeout: .seconds(1), fail: 2, rise: 1))
        #expect(s.persistence == nil && s.persistenceMask == nil && s.localAddresses.isEmpty)
        let gw = try t[node: "gw"]
        #expect(gw.nat.map(\.publicAddress) == [IPv4Address(198, 51, 100, 3)])
        #expect(gw.nat.map(\.privateAddress) == [IPv4Address(10, 0, 0, 100)])
        #expect(try !t[node: "client"].isUserspace)
    }

    @Test func everyDirectorFeature() throws {
        let t = try loadGood("directors.yaml")
        let lvs = try t[node: "lvs1"]
        let web = lvs.services[0]
        #expect(web.scheduler == .mh && web.mode == .dr && web.proto == .tcp)
        #expect(web.health == HealthCheck(kind: .http(path: "/healthz", expectStatus: 204), port: nil,
                                          interval: .seconds(2), timeout: DurationSpec(milliseconds: 500), fail: 3, rise: 2))
        #expect(web.persistence == .seconds(300))
        #expect(web.persistenceMask == IPv4Address(255, 255, 255, 0))
        #expect(web.reals[1].weight == 0)
        let udp = lvs.services[1]
        #expect(udp.proto == .udp && udp.mode == .nat && udp.scheduler == .wlc)
        #expect(udp.reals.map(\.port) == [9000, 9001])
        #expect(udp.health?.kind == .tcp)
        #expect(lvs.services[2].mode == .tun)
        let full = lvs.services[3]
        #expect(full.mode == .fullnat && full.scheduler == .lc)
        #expect(full.localAddresses == [IPv4Address(10, 0, 0, 201), IPv4Address(10, 0, 0, 202)])
        #expect(full.reals[0].port == 443)
        #expect(lvs.vrrp.count == 1)
        #expect(lvs.vrrp.first?.group == 7 && lvs.vrrp.first?.priority == 150 && lvs.vrrp.first?.preempt == false)
        #expect(lvs.vrrp.first?.interval == DurationSpec(milliseconds: 500))
        #expect(lvs.vrrp.first?.interface == "eth0" && lvs.vrrp.first?.vmac == false)
        #expect(lvs.vrrp.first?.preemptDelay == .seconds(0))
        let lvs2 = try t[node: "lvs2"]
        #expect(lvs2.vrrp.first?.interval == .seconds(1))
        #expect(lvs2.vrrp.first?.preempt == true)
        #expect(try t[node: "rs2"].auto == false)
        #expect(try t[node: "rs1"].auto == true)
        #expect(try t[node: "client"].run == ["sysctl -w net.ipv4.tcp_syn_retries=2", "true"])
        #expect(try t[node: "gw"].ecmp == ECMPHashConfig(fields: [.srcIP, .srcPort], seed: UInt32.max))
        #expect(try t[node: "gw"].routes[0].destination == IPv4Prefix("10.0.0.100/32")!)
    }

    // MARK: Checks

    @Test func designChecksParse() throws {
        let t = try loadExample("lvs-dr.yaml")
        #expect(t.checks.map(\.name) == ["DR rewrites only the MACs", "every real server answers"])
        guard case let .send(probe, .hops(hops)) = t.checks[0].kind else {
            Issue.record("not a send check: \(t.checks[0].kind)"); return
        }
        #expect(probe == SendProbe(from: "client", to: IPv4Address(198, 51, 100, 3), port: 80, proto: .tcp, location: probe.location))
        #expect(hops.count == 2)
        let gwMAC = try t[node: "gw"].interface(named: "eth1")!.mac
        #expect(hops[0].at == [Endpoint(node: "gw", interface: "eth1")])
        #expect(hops[0].srcMAC == .interface(Endpoint(node: "gw", interface: "eth1"), gwMAC))
        #expect(hops[0].srcMAC?.address == gwMAC)
        #expect(hops[0].srcIP == IPv4Address(203, 0, 113, 123))
        #expect(hops[1].at == [Endpoint(node: "sw", interface: "p3"), Endpoint(node: "sw", interface: "p4")])
        #expect(hops[1].dstMAC == nil && hops[1].srcPort == nil)
        guard case let .http(http, spread) = t.checks[1].kind else { Issue.record("not http"); return }
        #expect(http.host == IPv4Address(198, 51, 100, 3) && http.port == 80 && http.path == "/" && http.count == 30)
        #expect(spread.map(\.node) == ["rs1", "rs2"])
        #expect(spread.allSatisfy { $0.comparison == .atLeast && $0.count == 5 })
        #expect(spread[0].isSatisfied(by: 5) && !spread[0].isSatisfied(by: 4))
    }

    @Test func otherCheckForms() throws {
        let t = try loadGood("directors.yaml")
        guard case let .reach(r, nil) = t.checks[0].kind else { Issue.record("\(t.checks[0].kind)"); return }
        #expect(r.proto == .tcp && r.port == 80)
        guard case let .reach(u, nil) = t.checks[1].kind else { Issue.record("\(t.checks[1].kind)"); return }
        #expect(u.proto == .udp && u.port == 8080)
        guard case let .ping(p, drop?) = t.checks[2].kind else { Issue.record("\(t.checks[2].kind)"); return }
        #expect(p.to == .address(IPv4Address(203, 0, 113, 9)) && p.count == 1)
        #expect(drop.node == "gw" && drop.reason == "no route")
        guard case let .send(s, .hops(hops)) = t.checks[3].kind else { Issue.record("\(t.checks[3].kind)"); return }
        #expect(s.proto == .tcp && s.port == 443)
        #expect(hops[0].proto == .ipip && hops[0].innerDstIP == IPv4Address(10, 0, 0, 101))
        #expect(hops[0].dstMAC == .literal(MACAddress(0x02, 0, 0, 0, 0, 0x21)))
        guard case let .send(_, .dropped(d)) = t.checks[4].kind else { Issue.record("\(t.checks[4].kind)"); return }
        #expect(d.node == "gw" && d.reason == nil)
        guard case let .http(h, spread) = t.checks[5].kind else { Issue.record("\(t.checks[5].kind)"); return }
        #expect(h.path == "/index.html" && h.port == 80)
        #expect(spread.map(\.comparison) == [.exactly, .exactly])
        #expect(spread.map(\.count) == [10, 0])
        let two = try loadExample("two-hosts.yaml")
        guard case let .ping(tp, nil) = two.checks[0].kind else { Issue.record("\(two.checks[0].kind)"); return }
        #expect(tp.to == .node("h2") && tp.count == 3)
    }

    // MARK: Scale

    @Test func theScaleExampleHasAHundredNodes() throws {
        let t = try loadExample("scale-100.yaml")
        #expect(t.nodes.count == 100)
        #expect(t.nodes.filter { $0.kind == .host }.count == 81)
        #expect(t.nodes.filter { $0.kind == .switch }.count == 9)
        #expect(t.nodes.filter { $0.kind == .router }.count == 10)
        #expect(t.segments.count == 18)
        let lan = try #require(t.segment(containing: Endpoint(node: "h5-5", interface: "eth0")))
        #expect(lan.switches == ["sw5"] && lan.stations.count == 10)
        #expect(try t[node: "core"].routes.count == 9)
    }

    // MARK: YAML features

    @Test func anchorsAndAliasesWork() throws {
        let yaml = """
        name: alias
        nodes:
          h1: &host
            kind: host
            interfaces: { eth0: { ip: 10.0.0.1/24 } }
          h2:
            kind: host
            interfaces: { eth0: { ip: 10.0.0.2/24 } }
          h3: *host
        links:
          - [ h1:eth0, h2:eth0 ]
        """
        // h3 is a copy of h1: same address, unconnected interface.
        #expect(errorLines(yaml) == ["t.yaml:5:19: error: interface 'h3:eth0' is not connected by any link; add a link such as - [ h3:eth0, other:eth0 ], or remove the interface"])
    }

    @Test func documentMarkersAndCommentsAreFine() throws {
        let yaml = "%YAML 1.1\n---\n# lab\nname: x   # trailing\nnodes:\n  sw: { kind: switch }\n  h1: { kind: host, interfaces: { eth0: { ip: 10.0.0.1/24 } } }\nlinks: [ [ h1:eth0, sw:p1 ] ]\n...\n"
        let t = try TopologyLoader.load(yaml: yaml, file: "d.yaml")
        #expect(t.nodes.count == 2)
    }
}

@Suite struct SyncResolutionTests {
    /// `sync:` on directors: the group and the interface as written; none = off.
    @Test func syncOnDirectors() throws {
        let t = try loadGood("sync-pair.yaml")
        let lvs1 = try t[node: "lvs1"], lvs2 = try t[node: "lvs2"]
        #expect(lvs1.sync?.group == 17 && lvs1.sync?.interface == "eth0")
        #expect(lvs2.sync?.group == 0 && lvs2.sync?.interface == "eth1")
        #expect(try t[node: "rs1"].sync == nil)
        #expect(try loadGood("directors.yaml").nodes.allSatisfy { $0.sync == nil }, "off unless written")
    }
}

@Suite struct FastPathResolutionTests {
    /// `defaults: { fastpath: true }` reaches every node that can have it
    /// (userspace, AF_XDP, no bond); a node's own key wins; off unless written.
    @Test func theLabDefaultAndTheNodesOwnKey() throws {
        let yaml = """
        name: fp
        defaults: { fastpath: true }
        nodes:
          sw: { kind: switch }
          r1: { kind: router, interfaces: { eth0: { ip: 10.0.0.1/24 } } }
          r2: { kind: router, fastpath: false, interfaces: { eth0: { ip: 10.0.0.2/24 } } }
          r3: { kind: router, datapath: afpacket, interfaces: { eth0: { ip: 10.0.0.3/24 } } }
          r4:
            kind: router
            interfaces: { bond0: { ip: 10.0.0.4/24, members: [ eth0, eth1 ] } }
          h: { kind: host, interfaces: { eth0: { ip: 10.0.0.9/24 } } }
        links:
          - [ r1:eth0, sw:p1 ]
          - [ r2:eth0, sw:p2 ]
          - [ r3:eth0, sw:p3 ]
          - [ r4:eth0, sw:p4 ]
          - [ r4:eth1, sw:p5 ]
          - [ h:eth0, sw:p6 ]
        """
        let t = try TopologyLoader.load(yaml: yaml, file: "fp.yaml")
        let on = Set(t.nodes.filter(\.fastPath).map(\.name))
        #expect(on == ["sw", "r1"])
        let off = try TopologyLoader.load(yaml: yaml.replacingOccurrences(of: "defaults: { fastpath: true }\n", with: ""), file: "fp.yaml")
        #expect(off.nodes.allSatisfy { !$0.fastPath })
    }
}
