import Foundation
import Testing
import Wire
import LinuxNet
import Topology

/// `wirelab check` and `wirelab walk` on real labs: the example topologies
/// pass, deliberately wrong expectations fail naming the hop and the field,
/// and a walk over the DR example shows its hops and writes a pcapng.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct CheckLabEndToEndTests {
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// An example topology renamed to a per-process lab, with extra checks
    /// replacing its own if given; written into a fresh directory.
    static func example(_ name: String, lab: String, checks: String? = nil) throws -> (file: String, dir: String) {
        var yaml = try String(contentsOf: repository.appendingPathComponent("Topologies/\(name).yaml"), encoding: .utf8)
        guard let line = yaml.range(of: #"(?m)^name: .*$"#, options: .regularExpression) else { throw Harness.HarnessError("\(name).yaml has no name: line") }
        yaml.replaceSubrange(line, with: "name: \(lab)")
        if let checks, let r = yaml.range(of: "\nchecks:") { yaml = String(yaml[..<r.lowerBound]) + "\n" + checks }
        let file = try Harness.topologyFile(yaml)
        return (file, URL(fileURLWithPath: file).deletingLastPathComponent().path)
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// Every example topology's own checks pass on the live lab.
    @Test(arguments: ["lvs-dr", "lvs-nat", "lvs-tun", "lvs-fullnat", "ecmp", "switch", "two-hosts", "scale-100"])
    func exampleTopologyChecksPass(name: String) throws {
        let lab = Harness.lab("wlck\(name.replacingOccurrences(of: "-", with: "").prefix(5))")
        let (file, dir) = try Self.example(name, lab: lab)
        defer { _ = try? Harness.wl("down", lab); try? FileManager.default.removeItem(atPath: dir) }
        let junit = dir + "/report.xml"
        let r = try Harness.run(Harness.wirelab, ["check", file, "--json", "--junit", junit], timeout: 240, directory: dir)
        let report = Self.json(r.stdout)
        let checks = report["checks"] as? [[String: Any]] ?? []
        #expect(r.status == 0, "wirelab check \(name): \(r.combined)")
        #expect(report["ok"] as? Bool == true)
        #expect(!checks.isEmpty && checks.allSatisfy { $0["status"] as? String == "pass" }, "\(checks.map { "\($0["name"] ?? "") \($0["status"] ?? ""): \($0["summary"] ?? "")" })")
        let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
        #expect(xml.contains("<testsuite name=\"\(lab)\" tests=\"\(checks.count)\" failures=\"0\" errors=\"0\""))
        #expect(!xml.contains("<failure"))
        // The lab is gone, the capture stays, with receiving ends named.
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty)
        // (two-hosts has no userspace node, so nothing records its link.)
        if name != "two-hosts" {
            let capture = try PcapNGFile.read(path: "\(dir)/Captures/\(lab)/all.pcapng")
            #expect(!capture.packets.isEmpty && capture.packets.allSatisfy { $0.comments.first?.hasPrefix("rx ") == true })
        }
    }

    /// Expectations wrong in one field each: a router that would forget to
    /// rewrite the source MAC, a DR director that would rewrite the
    /// destination IP, a hop count off by one, and a spread that cannot be.
    @Test func wrongExpectationsFailNamingTheHopAndTheField() throws {
        let lab = Harness.lab("wlckbad")
        let (file, dir) = try Self.example("lvs-dr", lab: lab, checks: """
        checks:
          - name: router keeps the client's source MAC
            send: { from: client, to: "198.51.100.3:80", proto: tcp }
            expect:
              - { at: gw:eth1, dst-ip: 10.0.0.100, src-mac: client:eth0 }
          - name: DR rewrites the destination IP
            send: { from: client, to: "198.51.100.3:80", proto: tcp }
            expect:
              - { at: gw:eth1, dst-ip: 10.0.0.100 }
              - { at: sw:p3 | sw:p4, src-mac: lvs:eth0, dst-ip: 10.0.0.1 }
          - name: router does not decrement TTL
            send: { from: client, to: "198.51.100.3:80", proto: tcp }
            expect:
              - { at: gw:eth1, ttl: 64 }
          - name: everything goes to rs1
            http: { from: client, url: "http://198.51.100.3/", count: 6 }
            expect-spread: { rs1: "== 6" }
          - name: the lab works (control)
            send: { from: client, to: "198.51.100.3:80", proto: tcp }
            expect:
              - { at: sw:p3 | sw:p4, src-mac: lvs:eth0, dst-ip: 10.0.0.100 }
              - { at: gw:eth0, src-ip: 198.51.100.3, dst-ip: 203.0.113.123 }
        """)
        defer { _ = try? Harness.wl("down", lab); try? FileManager.default.removeItem(atPath: dir) }
        let r = try Harness.run(Harness.wirelab, ["check", file, "--json"], timeout: 240, directory: dir)
        #expect(r.status == 1, "a failing check exits 1: \(r.combined)")
        let checks = Self.json(r.stdout)["checks"] as? [[String: Any]] ?? []
        try #require(checks.count == 5, "\(r.combined)")
        func fields(_ c: [String: Any]) -> [String] { (c["mismatches"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String } }

        #expect(checks[0]["status"] as? String == "fail")
        #expect(checks[0]["failedNode"] as? String == "gw" && checks[0]["failedHop"] as? Int == 2, "\(checks[0])")
        #expect(fields(checks[0]) == ["src-mac"])

        #expect(checks[1]["status"] as? String == "fail")
        #expect(checks[1]["failedItem"] as? Int == 2)
        #expect(checks[1]["failedNode"] as? String == "sw", "the frame toward the real server, forwarded by sw: \(checks[1])")
        #expect(fields(checks[1]) == ["dst-ip"])
        let mismatch = (checks[1]["mismatches"] as? [[String: Any]])?.first
        #expect(mismatch?["seen"] as? String == "10.0.0.100", "DR leaves the VIP in place")
        #expect(mismatch?["changedBy"] as? String == "gw", "the VIP was last set by gw's static NAT: \(String(describing: mismatch))")

        #expect(checks[2]["status"] as? String == "fail")
        #expect(fields(checks[2]) == ["ttl"])
        #expect((checks[2]["mismatches"] as? [[String: Any]])?.first?["seen"] as? String == "63")

        #expect(checks[3]["status"] as? String == "fail")
        #expect((checks[3]["summary"] as? String)?.contains("rs1: expected == 6") == true, "\(checks[3])")

        #expect(checks[4]["status"] as? String == "pass", "\(checks[4])")

        // The text report says the same for a human.
        let text = try Harness.run(Harness.wirelab, ["check", file], timeout: 240, directory: dir)
        #expect(text.status == 1)
        #expect(text.stdout.contains("FAIL   router keeps the client's source MAC"))
        #expect(text.stdout.contains("hop 2 (gw:eth1 → sw:p1, sent by gw) differs in src-mac"), "\(text.stdout)")
        #expect(text.stdout.contains("capture: \(dir)/Captures/\(lab)/all.pcapng"))
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "down also after failures")
    }

    /// NAT, FULLNAT and TUN directors checked live (there and back), with
    /// HTTP spread, drop, ping and reach checks beside.
    @Test(arguments: ["nat", "fullnat", "tun"])
    func directorModesPassTheirChecks(mode: String) throws {
        let lab = Harness.lab("wlckm\(mode.prefix(2))")
        let local = mode == "fullnat" ? "\n        local-addresses: [ 10.0.0.50 ]" : ""
        let realPort = mode == "tun" ? "" : ", port: 8080"
        let serve = mode == "tun" ? 80 : 8080
        let expect: String
        switch mode {
        case "nat": expect = """
                  - { at: sw:p3 | sw:p4, src-mac: lvs:eth0, src-ip: 203.0.113.123, dst-port: 8080 }
                  - { at: gw:eth1, src-ip: 10.0.0.100, src-port: 80, dst-ip: 203.0.113.123 }
                  - { at: gw:eth0, src-ip: 198.51.100.3, src-port: 80 }
            """
        case "fullnat": expect = """
                  - { at: sw:p3 | sw:p4, src-ip: 10.0.0.50, dst-port: 8080 }
                  - { at: sw:p2, dst-ip: 10.0.0.50, src-port: 8080 }
                  - { at: sw:p2, src-ip: 10.0.0.100, dst-ip: 203.0.113.123, src-port: 80 }
                  - { at: gw:eth0, src-ip: 198.51.100.3 }
            """
        default: expect = """
                  - { at: sw:p3 | sw:p4, proto: ipip, src-ip: 10.0.0.2, inner-src-ip: 203.0.113.123, inner-dst-ip: 10.0.0.100, dst-port: 80 }
                  - { at: gw:eth1, proto: tcp, src-ip: 10.0.0.100, dst-ip: 203.0.113.123, src-port: 80 }
                  - { at: gw:eth0, src-ip: 198.51.100.3 }
            """
        }
        let service = """
          - name: spread
            http: { from: client, url: "http://198.51.100.3/", count: 10 }
            expect-spread: { rs1: "== 5", rs2: "== 5" }
          - name: reach the VIP
            reach: { from: client, to: "198.51.100.3:80" }
        """
        let yaml = """
        name: \(lab)
        nodes:
          client: { kind: host, interfaces: { eth0: { ip: 203.0.113.123/24 } }, routes: [ "default via 203.0.113.1" ] }
          gw:
            kind: router
            interfaces: { eth0: { ip: 203.0.113.1/24 }, eth1: { ip: 10.0.0.254/24 } }
            nat: [ { public: 198.51.100.3, private: 10.0.0.100 } ]
          sw: { kind: switch }
          lvs:
            kind: director
            interfaces: { eth0: { ip: 10.0.0.2/24 } }
            routes: [ "default via 10.0.0.254" ]
            services:
              - vip: 10.0.0.100
                port: 80
                scheduler: rr
                mode: \(mode)\(local)
                reals: [ { ip: 10.0.0.1\(realPort) }, { ip: 10.0.0.3\(realPort) } ]
          rs1: { kind: host, interfaces: { eth0: { ip: 10.0.0.1/24 } }, routes: [ "default via 10.0.0.254" ], serve: { http: \(serve) } }
          rs2: { kind: host, interfaces: { eth0: { ip: 10.0.0.3/24 } }, routes: [ "default via 10.0.0.254" ], serve: { http: \(serve) } }
        links:
          - [ client:eth0, gw:eth0 ]
          - [ gw:eth1, sw:p1 ]
          - [ lvs:eth0, sw:p2 ]
          - [ rs1:eth0, sw:p3 ]
          - [ rs2:eth0, sw:p4 ]
        checks:
          - name: \(mode) rewrites
            send: { from: client, to: "198.51.100.3:80", proto: tcp }
            expect:
        \(expect)
        \(service)
          - name: no route is dropped at gw
            send: { from: client, to: "192.0.2.9:80", proto: tcp }
            expect: dropped at gw (no route)
          - name: ping the gateway
            ping: { from: client, to: 203.0.113.1 }
          - name: ping nowhere
            ping: { from: client, to: 192.0.2.9, count: 2 }
            expect: dropped at gw (no route)
        """
        let file = try Harness.topologyFile(yaml)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer { _ = try? Harness.wl("down", lab); try? FileManager.default.removeItem(atPath: dir) }
        let r = try Harness.run(Harness.wirelab, ["check", file, "--json"], timeout: 240, directory: dir)
        let checks = Self.json(r.stdout)["checks"] as? [[String: Any]] ?? []
        #expect(r.status == 0, "\(r.combined)")
        #expect(checks.count == 6)
        for c in checks { #expect(c["status"] as? String == "pass", "\(c["name"] ?? ""): \(c["summary"] ?? "") \(c["details"] ?? "")") }
        let drop = checks.first { $0["name"] as? String == "no route is dropped at gw" }
        #expect((drop?["summary"] as? String)?.hasPrefix("dropped at gw (no-route +") == true)
    }

    // Live and sim agreement: LiveSimAgreementTests (every golden walk,
    // kernel-only labs included).

    @Test func walkOverTheDRExample() throws {
        let lab = Harness.lab("wlwalk")
        let (file, dir) = try Self.example("lvs-dr", lab: lab)
        defer { _ = try? Harness.wl("down", lab); try? FileManager.default.removeItem(atPath: dir) }
        let pcap = dir + "/walk.pcapng"
        let r = try Harness.run(Harness.wirelab, ["walk", file, "--from", "client", "--to", "198.51.100.3:80", "--json", "--pcap", pcap],
                                timeout: 180, directory: dir)
        try #require(r.status == 0, "\(r.combined)")
        let hops = Self.json(r.stdout)["hops"] as? [[String: Any]] ?? []
        let senders = hops.map { "\($0["direction"] as? String ?? "")/\($0["sender"] as? String ?? "")>\($0["receiver"] as? String ?? "")" }
        let real = (hops.first { ($0["sender"] as? String) == "sw:p3" || ($0["sender"] as? String) == "sw:p4" }?["receiver"] as? String) ?? "?"
        let port = real == "rs1:eth0" ? "p3" : "p4"
        #expect(senders == ["request/client:eth0>gw:eth0", "request/gw:eth1>sw:p1", "request/sw:p2>lvs:eth0",
                            "request/lvs:eth0>sw:p2", "request/sw:\(port)>\(real)",
                            "reply/\(real)>sw:\(port)", "reply/sw:p1>gw:eth1", "reply/gw:eth0>client:eth0"], "\(r.stdout)")
        // What each step changes, as the DR lesson tells it.
        let changed = hops.map { Set($0["changed"] as? [String] ?? []) }
        if changed.count == 8 {
            #expect(changed[1] == ["src-mac", "dst-mac", "dst-ip", "ttl"], "gw: NAT to the VIP, new MACs, TTL")
            #expect(changed[2].isEmpty, "the switch changes nothing")
            #expect(changed[3] == ["src-mac", "dst-mac", "ttl"], "DR: the MACs and the TTL change (as IPVS), nothing else")
            #expect((hops[3]["reason"] as? String)?.contains("DR: MACs rewritten (lvs:eth0 → ") == true)
            #expect((hops[3]["reason"] as? String)?.hasSuffix(", TTL 63 → 62") == true, "\(hops[3]["reason"] ?? "")")
            #expect(changed[7].contains("src-ip") && changed[7].contains("ttl"), "gw NATs the reply's source back")
            #expect((hops[3]["reason"] as? String)?.hasPrefix("director lvs: service 10.0.0.100:80 rr → ") == true)
            #expect((hops[1]["reason"] as? String)?.contains("ARP 10.0.0.100 → lvs:eth0") == true)
        }
        // The pcapng: one interface per link, the walk's frames in order.
        let capture = try PcapNGFile.read(path: pcap)
        #expect(capture.interfaces.map { $0.name ?? "" } == ["client:eth0 ↔ gw:eth0", "gw:eth1 ↔ sw:p1", "lvs:eth0 ↔ sw:p2",
                                                            "rs1:eth0 ↔ sw:p3", "rs2:eth0 ↔ sw:p4"])
        #expect(capture.packets.count == hops.count)
        #expect(capture.packets.map { $0.comments.first?.split(separator: "\n").first.map(String.init) ?? "" }
                == hops.map { "rx \($0["receiver"] as? String ?? "")" })
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") {
            let t = try Harness.run("/usr/bin/tshark", ["-r", pcap, "-T", "fields", "-e", "frame.interface_name", "-e", "ip.dst"], timeout: 60)
            let lines = t.stdout.split(separator: "\n")
            #expect(t.status == 0 && lines.count == hops.count, "tshark: \(t.combined)")
            #expect(lines.first?.hasPrefix("client:eth0 ↔ gw:eth0\t198.51.100.3") == true, "\(t.stdout)")
        }
        // The text form marks changed fields.
        let text = try Harness.run(Harness.wirelab, ["walk", file, "--from", "client", "--to", "198.51.100.3:80"], timeout: 180, directory: dir)
        #expect(text.status == 0)
        #expect(text.stdout.contains("10.0.0.100*"), "\(text.stdout)")
        #expect(text.stdout.contains("why: router gw: static NAT dst 198.51.100.3 → 10.0.0.100"))
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty)
    }
}
