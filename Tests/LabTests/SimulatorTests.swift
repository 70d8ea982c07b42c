import Foundation
import Testing
import Topology
import Wire
@testable import Datapath
@testable import Lab

/// The in-process simulator over the example topologies: no root, no
/// namespaces, deterministic.
@Suite struct SimulatorTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func load(_ name: String) throws -> ResolvedTopology {
        try TopologyLoader.load(path: root.appendingPathComponent("Topologies/\(name)").path)
    }

    static var topologyFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Topologies").path)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }

    /// The IPv4 packet of an Ethernet frame (no VLAN tag in these labs).
    static func ip(_ frame: [UInt8]) -> [UInt8] { Array(frame[14...]) }
    static func mac(_ frame: [UInt8], _ offset: Int) -> MACAddress {
        MACAddress(frame[offset], frame[offset + 1], frame[offset + 2], frame[offset + 3], frame[offset + 4], frame[offset + 5])
    }
    static func ipv4(_ bytes: [UInt8], _ o: Int) -> IPv4Address { IPv4Address(bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]) }

    /// Frames received at `endpoint`, in time order.
    static func received(_ sim: Simulator, at endpoint: String) -> [PcapRecord] {
        sim.captures().flatMap(\.records).filter { $0.comment == "rx \(endpoint)" }.sorted { $0.timestamp < $1.timestamp }
    }

    /// A TCP SYN as the verification side builds it: complete IPv4 packet, checksums right.
    static func syn(from source: IPv4Address, _ sport: UInt16, to destination: IPv4Address, _ dport: UInt16) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: 40)
        p[0] = 0x45; p[2] = 0; p[3] = 40; p[4] = 0x12; p[5] = 0x34; p[6] = 0x40; p[8] = 64; p[9] = 6
        for i in 0..<4 { p[12 + i] = source[i]; p[16 + i] = destination[i] }
        p[20] = UInt8(sport >> 8); p[21] = UInt8(sport & 0xff); p[22] = UInt8(dport >> 8); p[23] = UInt8(dport & 0xff)
        p[24] = 0xaa; p[25] = 0xbb; p[26] = 0xcc; p[27] = 0xdd   // seq: the marker
        p[32] = 0x50; p[33] = 0x02; p[34] = 0xfa; p[35] = 0xf0
        p.withUnsafeMutableBytes { b in
            let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .tcp, length: 20)
            let tcp = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: b[20..<40]), initial: pseudo)
            b[36] = UInt8(tcp >> 8); b[37] = UInt8(tcp & 0xff)
            let header = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: b[0..<20]))
            b[10] = UInt8(header >> 8); b[11] = UInt8(header & 0xff)
        }
        return p
    }

    @Test func sameScenarioTwiceGivesByteIdenticalPcapng() throws {
        let topology = try Self.load("lvs-dr.yaml")
        var files: [[UInt8]] = []
        for _ in 0..<2 {
            let sim = try Simulator(topology: topology)
            _ = try SimTraffic.run(sim)
            files.append(sim.pcapng())
        }
        #expect(files[0] == files[1])
        let capture = try PcapNGCapture(parsing: files[0])
        #expect(capture.interfaces.map(\.name) == topology.links.map { "\($0.a.node):\($0.a.interface) ↔ \($0.b.node):\($0.b.interface)" })
        #expect(capture.packets.count > 100, "30 HTTP exchanges and a probe: \(capture.packets.count) frames")
        // Timestamps: the fixed epoch plus virtual time, in order.
        let stamps = capture.packets.compactMap(\.timestamp)
        #expect(stamps.first! >= Simulator.epoch && stamps == stamps.sorted())
        #expect(capture.packets.allSatisfy { $0.comments.count == 1 && $0.comments[0].hasPrefix("rx ") })
    }

    @Test func arpRetriesForManyAddressesComeOutInTheSameOrderEveryRun() throws {
        // Eight unanswered neighbours resolved at once: the retries of one
        // tick come from a dictionary, whose order differs per instance.
        let topology = try Self.load("two-hosts.yaml")
        var files: [[UInt8]] = []
        for _ in 0..<4 {
            let sim = try Simulator(topology: topology)
            for last in 50..<58 {
                try sim.ping(from: "h1", to: IPv4Address(10, 0, 0, UInt8(last)), identifier: 1, sequence: UInt16(last))
            }
            sim.run()
            #expect(sim.drops(of: "h1")["arp-unresolved"] == 8)
            files.append(sim.pcapng())
        }
        #expect(files.allSatisfy { $0 == files[0] })
        let capture = try PcapNGCapture(parsing: files[0])
        #expect(capture.packets.count == 24, "8 addresses × 3 requests, received by h2")
    }

    @Test func tcpProbeThroughLVSDRReachesARealWithOnlyMACsChanged() throws {
        let topology = try Self.load("lvs-dr.yaml")
        let sim = try Simulator(topology: topology)
        let client = IPv4Address("203.0.113.123")!, publicVIP = IPv4Address("198.51.100.3")!
        #expect(try sim.sendIPv4(Self.syn(from: client, 40000, to: publicVIP, 80), from: "client"))
        sim.run()
        let macOf = { (e: String) in topology.interface(at: Endpoint(e)!)!.mac }

        // Client → gw: as sent (ARP resolved the gateway).
        let atGW = Self.received(sim, at: "gw:eth0").filter { $0.bytes.count > 14 && $0.bytes[12] == 8 && $0.bytes[13] == 0 }
        let sent = try #require(atGW.first)
        #expect(Self.ipv4(sent.bytes, 14 + 16) == publicVIP)
        // gw → director: NAT to the VIP, TTL 63.
        let atLVS = try #require(Self.received(sim, at: "lvs:eth0").first { $0.bytes[12] == 8 && $0.bytes[13] == 0 && $0.bytes[14 + 9] == 6 })
        #expect(Self.ipv4(atLVS.bytes, 14 + 16) == IPv4Address("10.0.0.100")!)
        #expect(Self.mac(atLVS.bytes, 0) == macOf("lvs:eth0") && Self.mac(atLVS.bytes, 6) == macOf("gw:eth1"))
        // Director → real: only the MACs changed (and the TTL, with its checksum).
        // The probe is the segment carrying the marker (seq aabbccdd); the
        // client's RST follows it to the same real later.
        let reals = ["rs1:eth0", "rs2:eth0"].flatMap { e in
            Self.received(sim, at: e).filter {
                $0.bytes[12] == 8 && $0.bytes[13] == 0 && $0.bytes[14 + 9] == 6 && Array($0.bytes[38..<42]) == [0xaa, 0xbb, 0xcc, 0xdd]
            }.map { (e, $0) }
        }
        try #require(reals.count == 1, "the probe reaches exactly one real: \(reals.map(\.0))")
        let (realEnd, atReal) = reals[0]
        #expect(Self.mac(atReal.bytes, 6) == macOf("lvs:eth0"))
        #expect(Self.mac(atReal.bytes, 0) == macOf(realEnd))
        var before = Self.ip(atLVS.bytes), after = Self.ip(atReal.bytes)
        #expect(after[8] == before[8] || after[8] == before[8] - 1, "TTL \(before[8]) → \(after[8])")
        for i in [8, 10, 11] { before[i] = 0; after[i] = 0 }
        #expect(before == after, "IP and TCP bytes unchanged but TTL")
        // The real answers from the VIP, straight to the gateway, NATed back.
        let answer = try #require(Self.received(sim, at: "client:eth0").first { $0.bytes[12] == 8 && $0.bytes[14 + 9] == 6 })
        #expect(Self.ipv4(answer.bytes, 14 + 12) == publicVIP)
        #expect(answer.bytes[14 + 20 + 13] == 0x12, "SYN-ACK")
        // The client's kernel has no socket for it: RST (seq = the SYN-ACK's ack = marker + 1).
        let rst = try #require(Self.received(sim, at: "gw:eth0").last { $0.bytes[12] == 8 && $0.bytes[14 + 9] == 6 })
        #expect(rst.bytes[14 + 20 + 13] & 0x04 != 0)
        #expect(Array(rst.bytes[(14 + 24)..<(14 + 28)]) == [0xaa, 0xbb, 0xcc, 0xde])
        #expect(sim.drops(of: "client")["no-listener"] == 1)
    }

    static func spread(_ topology: ResolvedTopology, count: Int) throws -> [String: Int] {
        let sim = try Simulator(topology: topology)
        let client = sim.host("client")!
        var spread: [String: Int] = [:]
        for _ in 0..<count {
            let id = try sim.connect(from: "client", to: IPv4Address("198.51.100.3")!, port: 80,
                                     request: HostModel.httpRequest(host: "198.51.100.3", path: "/"))
            sim.run { client.connections[id].state.isFinished }
            let c = client.connections[id]
            #expect(c.state == .closed, "request \(id): \(c.state)")
            #expect(c.httpStatusLine == "HTTP/1.1 200 OK")
            if let body = c.httpBody { spread[body, default: 0] += 1 }
        }
        return spread
    }

    @Test func httpSeriesThroughLVSDRSpreadsOverBothReals() throws {
        var topology = try Self.load("lvs-dr.yaml")
        // rr (the file's scheduler) ignores weights, like LVS: half each.
        #expect(try Self.spread(topology, count: 30) == ["rs1\n": 15, "rs2\n": 15])
        // wrr follows them: rs2 (weight 2) gets twice as many as rs1.
        let lvs = topology.nodes.firstIndex { $0.name == "lvs" }!
        topology.nodes[lvs].services[0].scheduler = .wrr
        #expect(try Self.spread(topology, count: 30) == ["rs1\n": 10, "rs2\n": 20])
    }

    @Test(arguments: [ForwardingMode.dr, .tun, .nat, .fullnat])
    func httpThroughTheDirectorInEveryMode(_ mode: ForwardingMode) throws {
        var topology = try Self.load("lvs-dr.yaml")
        let lvs = topology.nodes.firstIndex { $0.name == "lvs" }!
        topology.nodes[lvs].services[0].mode = mode
        if mode == .fullnat { topology.nodes[lvs].services[0].localAddresses = [IPv4Address("10.0.0.200")!] }
        let sim = try Simulator(topology: topology)
        let spread = try Self.spread(topology, count: 6)
        #expect(spread == ["rs1\n": 3, "rs2\n": 3], "\(mode): \(spread)")
        // What the real server receives from the director, per mode.
        let id = try sim.connect(from: "client", to: IPv4Address("198.51.100.3")!, port: 80)
        let client = sim.host("client")!
        sim.run { client.connections[id].state.isFinished }
        sim.run()   // the client's last ACK is still on its way
        #expect(client.connections[id].state == .closed, "\(mode)")
        let atReal = try #require(["rs1:eth0", "rs2:eth0"].lazy.compactMap {
            Self.received(sim, at: $0).first { $0.bytes[12] == 8 && $0.bytes[13] == 0 && $0.bytes[14 + 9] != 1 }
        }.first)
        let ip = Self.ip(atReal.bytes)
        let source = Self.ipv4(ip, 12), destination = Self.ipv4(ip, 16)
        switch mode {
        case .dr:
            #expect(ip[9] == 6 && destination == IPv4Address("10.0.0.100")! && source == IPv4Address("203.0.113.123")!)
        case .tun:
            #expect(ip[9] == 4 && source == IPv4Address("10.0.0.2")!, "outer IPIP from the director")
            #expect(Self.ipv4(ip, 20 + 16) == IPv4Address("10.0.0.100")!, "inner dst = VIP")
            #expect(sim.host("rs1")!.counters.ipipDecapsulated + sim.host("rs2")!.counters.ipipDecapsulated == 4,
                    "SYN, ACK, FIN, ACK: each inside IPIP")
        case .nat:
            #expect(ip[9] == 6 && source == IPv4Address("203.0.113.123")! && [IPv4Address("10.0.0.1")!, IPv4Address("10.0.0.3")!].contains(destination))
        case .fullnat:
            #expect(ip[9] == 6 && source == IPv4Address("10.0.0.200")!)
        }
    }

    @Test func checkTrafficOfEveryTopologyDoesWhatTheFileIntends() throws {
        let files = Self.topologyFiles
        #expect(files.count >= 5)
        for file in files {
            let topology = try Self.load(file)
            let sim = try Simulator(topology: topology)
            let outcomes = try SimTraffic.run(sim)
            for (check, outcome) in zip(topology.checks, outcomes) {
                switch check.kind {
                case let .http(probe, spread):
                    #expect(outcome.counts.values.reduce(0, +) == probe.count, "\(file) \(check.name): \(outcome.summary)")
                    for s in spread {
                        #expect(s.isSatisfied(by: outcome.counts[s.node] ?? 0), "\(file) \(check.name): \(outcome.summary)")
                    }
                case let .ping(probe, nil):
                    #expect(outcome.counts["replies"] == probe.count, "\(file) \(check.name): \(outcome.summary)")
                case .reach(_, nil):
                    #expect(outcome.counts.values.first == 1, "\(file) \(check.name): \(outcome.summary)")
                case .send(let probe, .hops):
                    if probe.proto == .tcp { #expect(outcome.counts["connected"] == 1, "\(file) \(check.name): \(outcome.summary)") }
                    if probe.proto == .icmp { #expect(outcome.counts["replies"] == 1, "\(file) \(check.name): \(outcome.summary)") }
                default:
                    break
                }
            }
        }
    }

    @Test func everyHostPingsEveryOtherHostInEveryTopology() throws {
        for file in Self.topologyFiles {
            let topology = try Self.load(file)
            let sim = try Simulator(topology: topology, options: .init(captures: false, recordsDeliveries: false))
            let hosts = topology.nodes.filter { $0.kind == .host && !$0.addresses.isEmpty }
            var expected = 0
            for (i, a) in hosts.enumerated() {
                // One at a time, like a person running ping: 80 pings at once
                // would overflow a router's ARP queue (8 per address) on purpose.
                for b in hosts where b.name != a.name {
                    try sim.ping(from: a.name, to: b.addresses[0].address, identifier: UInt16(i), sequence: 1)
                    expected += 1
                    sim.run()
                }
            }
            let got = hosts.reduce(0) { $0 + sim.host($1.name)!.pingReplies.count }
            #expect(got == expected, "\(file): \(got) of \(expected) pings answered; drops \(sim.allDrops())")
        }
    }

    @Test func directorVIPsAnswerFromEveryHostThatIsNotAReal() throws {
        for file in Self.topologyFiles {
            let topology = try Self.load(file)
            let roles = RealServerRole.roles(in: topology)
            let sim = try Simulator(topology: topology, options: .init(captures: false))
            for director in topology.nodes where director.kind == .director {
                for service in director.services where service.proto == .tcp {
                    for host in topology.nodes where host.kind == .host && roles[host.name] == nil && !host.addresses.isEmpty {
                        // Hosts behind NAT reach the VIP by its public address.
                        let publicAddress = topology.nodes.flatMap(\.nat).first { $0.privateAddress == service.vip }?.publicAddress
                        let onVIPSubnet = host.addresses.contains { $0.contains(service.vip) }
                        let target = onVIPSubnet ? service.vip : (publicAddress ?? service.vip)
                        let id = try sim.connect(from: host.name, to: target, port: UInt16(service.port))
                        let model = sim.host(host.name)!
                        sim.run { model.connections[id].state.isFinished }
                        #expect(model.connections[id].wasEstablished, "\(file): \(host.name) → \(target):\(service.port): \(model.connections[id].state)")
                    }
                }
            }
        }
    }

    @Test func simNeedsNoRootAndReportsUnknownNodes() throws {
        let sim = try Simulator(topology: try Self.load("two-hosts.yaml"))
        #expect(throws: Simulator.SimError.unknownNode("nope")) { try sim.sendIPv4([0x45], from: "nope") }
        // A malformed raw packet is counted, not sent.
        #expect(try sim.sendIPv4([0x45, 0, 0], from: "h1") == false)
        #expect(sim.drops(of: "h1")["malformed:raw-packet"] == 1)
    }

    @Test func linkMTUIsRespected() throws {
        var topology = try Self.load("two-hosts.yaml")
        topology.links[0].mtu = 1000
        // The hosts' interfaces keep 1500, so a 1400-byte packet leaves h1 but not the link.
        let sim = try Simulator(topology: topology)
        try sim.ping(from: "h1", to: IPv4Address("10.0.0.2")!, identifier: 1, sequence: 1)
        sim.run()
        #expect(sim.host("h1")!.pingReplies.count == 1)
        var big = Self.syn(from: IPv4Address("10.0.0.1")!, 1, to: IPv4Address("10.0.0.2")!, 2)
        big += [UInt8](repeating: 0, count: 1360)
        big[2] = UInt8(big.count >> 8); big[3] = UInt8(big.count & 0xff)
        try sim.sendIPv4(big, from: "h1")
        sim.run()
        #expect(sim.drops(of: "h1")["link-mtu"] == 1)
    }
}

/// The simulator's hosts are configured from the same decisions as the live
/// lab's namespaces (`RealServerRole`), so live and sim cannot drift.
@Suite struct SimHostConfigurationTests {
    static func variants() throws -> [ResolvedTopology] {
        var out: [ResolvedTopology] = []
        for file in SimulatorTests.topologyFiles { out.append(try SimulatorTests.load(file)) }
        // lvs-dr in every mode, and with auto off on rs1.
        let base = try SimulatorTests.load("lvs-dr.yaml")
        let lvs = base.nodes.firstIndex { $0.name == "lvs" }!
        for mode in [ForwardingMode.nat, .tun, .fullnat] {
            var t = base
            t.nodes[lvs].services[0].mode = mode
            out.append(t)
        }
        var manual = base
        manual.nodes[manual.nodes.firstIndex { $0.name == "rs1" }!].auto = false
        out.append(manual)
        return out
    }

    @Test func hostModelsGetTheAddressesAndRoutesTheLiveLabInstalls() throws {
        for topology in try Self.variants() {
            let plan = LabPlan(topology: topology, serveCommand: ["wirelab", "serve"])
            let roles = RealServerRole.roles(in: topology)
            for node in topology.nodes where node.kind == .host {
                let ns = LabStore.namespaceName(lab: topology.name, node: node.name)
                let config = ElementFactory.hostConfiguration(node, role: roles[node.name])
                let liveLo = plan.addresses.filter { $0.namespace == ns && $0.interface == "lo" }.map(\.prefix.address)
                #expect(config.localAddresses == liveLo, "\(topology.name) \(node.name)")
                // (An ECMP route: every next hop, in order.)
                let liveRoutes = plan.routes.filter { $0.namespace == ns }.flatMap { r in r.via.map { "\(r.destination) via \($0)" } }
                #expect(config.routes.map { "\($0.destination) via \($0.gateway)" } == liveRoutes, "\(topology.name) \(node.name)")
                let liveARPIgnore = plan.sysctls.contains { $0.namespace == ns && $0.key.hasSuffix("/arp_ignore") && $0.value == "1" }
                #expect(config.arpIgnore == liveARPIgnore, "\(topology.name) \(node.name)")
                let liveLinkdown = plan.sysctls.contains { $0.namespace == ns && $0.key.hasSuffix("/ignore_routes_with_linkdown") && $0.value == "1" }
                #expect(config.ignoresRoutesWithLinkdown == liveLinkdown, "\(topology.name) \(node.name)")
                #expect(config.httpPort.map(Int.init) == node.serve?.http)
            }
        }
        // And the roles themselves, for lvs-dr: VIP on both reals' lo.
        let roles = RealServerRole.roles(in: try SimulatorTests.load("lvs-dr.yaml"))
        #expect(roles["rs1"]?.vips == [IPv4Address("10.0.0.100")!] && roles["rs2"]?.vips == [IPv4Address("10.0.0.100")!])
        #expect(roles["client"] == nil)
    }
}

/// `wirelab sim` as a user runs it (the built binary, no root needed).
@Suite struct SimCommandTests {
    @Test func simWritesTheSameCaptureEveryRunAndSummarises() throws {
        let file = SimulatorTests.root.appendingPathComponent("Topologies/lvs-dr.yaml").path
        var captures: [Data] = []
        var outputs: [String] = []
        for run in 0..<2 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-sim-\(getpid())-\(run)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let result = try Harness.wl("sim", file, "--capture", dir.path)
            #expect(result.status == 0, "\(result.combined)")
            // The verdicts of `wirelab check`, computed in the simulator.
            #expect(result.stdout.contains("PASS   DR rewrites only the MACs"), "\(result.stdout)")
            #expect(result.stdout.contains("30 requests answered (rs1 15, rs2 15)"), "\(result.stdout)")
            #expect(result.stdout.contains("2 checks: 2 passed, 0 failed, 0 inconclusive, 0 errors"), "\(result.stdout)")
            // Everything but the wall-clock seconds each check took.
            let text = result.stdout.replacingOccurrences(of: dir.path, with: "DIR")
                .replacingOccurrences(of: #", [0-9]+\.[0-9] s([;\]])"#, with: ", _ s$1", options: .regularExpression)
            outputs.append(text)
            captures.append(try Data(contentsOf: dir.appendingPathComponent("sim.pcapng")))
        }
        #expect(captures[0] == captures[1] && captures[0].count > 10_000)
        #expect(outputs[0] == outputs[1], "the same report every run")

        let json = try Harness.wl("sim", file, "--capture", FileManager.default.temporaryDirectory.appendingPathComponent("wl-sim-\(getpid())-j").path, "--json")
        defer { try? FileManager.default.removeItem(at: FileManager.default.temporaryDirectory.appendingPathComponent("wl-sim-\(getpid())-j")) }
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((object?["checks"] as? [[String: Any]])?.count == 2, "\(json.stdout)")
    }

    /// Each verdict names what it rests on, in text, JSON and JUnit: the
    /// send check its capture, the HTTP check its socket results, a drop
    /// check the capture and the node's counters.
    @Test func everyVerdictNamesItsEvidence() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-sim-evidence-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let junit = dir.appendingPathComponent("report.xml").path
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let text = try Harness.wl("sim", SimulatorTests.root.appendingPathComponent("Topologies/lvs-dr.yaml").path,
                                  "--capture", dir.path, "--junit", junit)
        #expect(text.stdout.contains("s; evidence: capture]") && text.stdout.contains("s; evidence: socket]"), "\(text.stdout)")
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("<property name=\"evidence\" value=\"capture\"/>") && xml.contains("value=\"socket\""), "\(xml)")

        let json = try Harness.wl("sim", SimulatorTests.root.appendingPathComponent("Topologies/ecmp.yaml").path,
                                  "--capture", dir.path, "--json")
        let checks = (try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["checks"] as? [[String: Any]] ?? []
        #expect(!checks.isEmpty)
        let topology = try SimulatorTests.load("ecmp.yaml")
        for (check, row) in zip(topology.checks, checks) {
            let evidence = row["evidence"] as? [String] ?? []
            switch check.kind {
            case let .send(_, expect):
                if case .dropped = expect { #expect(evidence.contains("capture") && evidence.contains("counters"), "\(check.name): \(evidence)") }
                else { #expect(evidence == ["capture"], "\(check.name): \(evidence)") }
            case .http, .ping, .reach:
                #expect(evidence.first == "socket", "\(check.name): \(evidence)")
            }
        }
    }

    @Test func benchSimCountsWhatItMoves() throws {
        let file = SimulatorTests.root.appendingPathComponent("Topologies/scale-100.yaml").path
        let result = try Harness.wl("bench", "sim", file, "--rounds", "10", "--json")
        #expect(result.status == 0, "\(result.combined)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        // 81 hosts, each pinging a host in another LAN: host → switch → edge
        // router → core → edge router → switch → host is 6 links, ×2 with the reply.
        #expect(object?["echo-replies"] as? Int == 81 * 10)
        #expect(object?["frames"] as? Int == 81 * 10 * 12)
        #expect((object?["frames-per-cpu-second"] as? Double ?? 0) > 0)
    }

    @Test func helpNamesTheVerbAndTheBenchmark() throws {
        let help = try Harness.wl("sim", "--help")
        #expect(help.stdout.contains("without root") && help.stdout.contains("--capture"))
        let bench = try Harness.wl("bench", "sim", "--help")
        #expect(bench.stdout.contains("--rounds"))
    }
}
