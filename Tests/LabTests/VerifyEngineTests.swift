import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import Topology
import Wire
@testable import Lab
import LinuxNet

/// The verification engine from hand-built observation lists: no root, no
/// lab. Each test lays out the frames a correct (or broken) lab would put on
/// its links, as the capture records them (where they are received), and
/// asserts the path, the reasons and the verdicts.
struct VerifyEngineTests {
    /// The lvs example with the director's mode as a parameter.
    static func topology(mode: String = "dr", checks: String = "") throws -> ResolvedTopology {
        let local = mode == "fullnat" ? "\n        local-addresses: [ 10.0.0.50 ]" : ""
        let realPort = mode == "nat" || mode == "fullnat" ? ", port: 8080" : ""
        return try TopologyLoader.load(yaml: """
        name: vt
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
          rs1: { kind: host, interfaces: { eth0: { ip: 10.0.0.1/24 } }, routes: [ "default via 10.0.0.254" ] }
          rs2: { kind: host, interfaces: { eth0: { ip: 10.0.0.3/24 } }, routes: [ "default via 10.0.0.254" ] }
        links:
          - [ client:eth0, gw:eth0 ]
          - [ gw:eth1, sw:p1 ]
          - [ lvs:eth0, sw:p2 ]
          - [ rs1:eth0, sw:p3 ]
          - [ rs2:eth0, sw:p4 ]
        \(checks)
        """, file: "vt.yaml")
    }

    static func mac(_ t: ResolvedTopology, _ e: String) -> MACAddress {
        let ep = Endpoint(e)!
        return t.nodes.first { $0.name == ep.node }!.interfaces.first { $0.name == ep.interface }!.mac
    }

    /// An IPv4 packet carrying TCP (or, with `inner`, an IPIP packet).
    static func ipPacket(_ src: String, _ dst: String, ttl: UInt8, id: UInt16, sport: UInt16 = 0, dport: UInt16 = 0,
                         seq: UInt32 = 0, ack: UInt32 = 0, flags: TCPFlags = .syn, inner: [UInt8]? = nil) -> [UInt8] {
        let s = IPv4Address(src)!, d = IPv4Address(dst)!
        let payloadLength = inner?.count ?? 20
        let ip = IPv4Repr(sourceAddress: s, destinationAddress: d, protocol: inner == nil ? .tcp : IPProtocol(4),
                          payloadLength: payloadLength, timeToLive: ttl, identification: id)
        var bytes = [UInt8](repeating: 0, count: ip.bufferLength)
        bytes.withUnsafeMutableBytes { b in
            ip.emit(into: IPv4MutableHeader(unchecked: b))
            let l4 = UnsafeMutableRawBufferPointer(rebasing: b[20...])
            if let inner {
                for (i, x) in inner.enumerated() { l4[i] = x }
            } else {
                TCPRepr(sourcePort: sport, destinationPort: dport, sequenceNumber: seq, acknowledgmentNumber: ack, flags: flags)
                    .emit(into: TCPMutableHeader(unchecked: l4), pseudoHeader: .ipv4(source: s, destination: d))
            }
        }
        return bytes
    }

    static func frame(_ src: MACAddress, _ dst: MACAddress, _ packet: [UInt8]) -> [UInt8] {
        var f: [UInt8] = []
        for m in [dst, src] { for i in 0..<6 { f.append(m[i]) } }
        f += [0x08, 0x00]
        return f + packet
    }

    /// Builds observations: (sender, receiver, frame) in travel order, 10 µs apart.
    struct Recorder {
        let t: ResolvedTopology
        var list: [Observation] = []
        var clock: UInt64 = 1_700_000_000_000_000_000
        mutating func add(_ sender: String, _ receiver: String, _ f: [UInt8], skew: Int64 = 0) {
            let s = Endpoint(sender)!, r = Endpoint(receiver)!
            let link = t.links.firstIndex { ($0.a == s && $0.b == r) || ($0.a == r && $0.b == s) }!
            clock += 10_000
            list.append(Observation(link: link, sender: s, receiver: r, timestamp: UInt64(Int64(clock) + skew), frame: f, sequence: list.count))
        }
    }

    static let seq: UInt32 = 0x1234_5678
    static let id: UInt16 = 0x4242
    static var marker: ProbeMarker { ProbeMarker(proto: .tcp, ipIdentification: id, tcpSequence: seq) }

    /// A correct DR lab: the five request steps and the three reply steps.
    static func drObservations(_ t: ResolvedTopology, brokenRouterMAC: Bool = false, drRewritesIP: Bool = false) -> [Observation] {
        var r = Recorder(t: t)
        let m = { mac(t, $0) }
        let vip = "10.0.0.100", client = "203.0.113.123"
        let syn = { (dst: String, ttl: UInt8) in ipPacket(client, dst, ttl: ttl, id: id, sport: 40000, dport: 80, seq: seq) }
        // Noise: another flow, an ARP-less unrelated TCP segment.
        r.add("client:eth0", "gw:eth0", frame(m("client:eth0"), m("gw:eth0"), ipPacket(client, "198.51.100.3", ttl: 64, id: 7, sport: 1, dport: 80, seq: 99)))
        r.add("client:eth0", "gw:eth0", frame(m("client:eth0"), m("gw:eth0"), syn("198.51.100.3", 64)))
        r.add("gw:eth1", "sw:p1", frame(brokenRouterMAC ? m("client:eth0") : m("gw:eth1"), m("lvs:eth0"), syn(vip, 63)))
        r.add("sw:p2", "lvs:eth0", frame(m("gw:eth1"), m("lvs:eth0"), syn(vip, 63)))
        // The director is a hop: TTL 63 → 62 (as IPVS).
        r.add("lvs:eth0", "sw:p2", frame(m("lvs:eth0"), m("rs1:eth0"), syn(drRewritesIP ? "10.0.0.1" : vip, 62)))
        r.add("sw:p3", "rs1:eth0", frame(m("lvs:eth0"), m("rs1:eth0"), syn(drRewritesIP ? "10.0.0.1" : vip, 62)))
        let synAck = { (dst: String, ttl: UInt8) in ipPacket(vip, dst, ttl: ttl, id: 999, sport: 80, dport: 40000, seq: 777, ack: seq &+ 1, flags: [.syn, .ack]) }
        r.add("rs1:eth0", "sw:p3", frame(m("rs1:eth0"), m("gw:eth1"), synAck(client, 64)))
        r.add("sw:p1", "gw:eth1", frame(m("rs1:eth0"), m("gw:eth1"), synAck(client, 64)))
        r.add("gw:eth0", "client:eth0", frame(m("gw:eth0"), m("client:eth0"),
                                             ipPacket("198.51.100.3", client, ttl: 63, id: 999, sport: 80, dport: 40000, seq: 777, ack: seq &+ 1, flags: [.syn, .ack])))
        // The client kernel's RST is not part of the reply.
        r.add("client:eth0", "gw:eth0", frame(m("client:eth0"), m("gw:eth0"), ipPacket(client, "198.51.100.3", ttl: 64, id: 5, sport: 40000, dport: 80, seq: seq &+ 1, flags: .rst)))
        return r.list
    }

    static let drChecks = """
    checks:
      - name: DR rewrites only the MACs
        send: { from: client, to: "198.51.100.3:80", proto: tcp }
        expect:
          - { at: gw:eth1, src-ip: 203.0.113.123, dst-ip: 10.0.0.100, src-mac: gw:eth1, dst-mac: lvs:eth0, ttl: 63 }
          - { at: sw:p3 | sw:p4, src-mac: lvs:eth0, dst-ip: 10.0.0.100 }
          - { at: gw:eth0, src-ip: 198.51.100.3, dst-ip: 203.0.113.123 }
    """

    static func sendItems(_ t: ResolvedTopology, _ index: Int = 0) -> [HopExpectation] {
        guard case let .send(_, .hops(items)) = t.checks[index].kind else { fatalError("not a send check") }
        return items
    }

    @Test func drPathIsFollowedHopByHopWithReasons() throws {
        let t = try Self.topology()
        let path = ProbePath.trace(Self.drObservations(t), marker: Self.marker, origin: "client", topology: t)
        let steps = path.hops.map { "\($0.sender)>\($0.receiver)" }
        #expect(steps == ["client:eth0>gw:eth0", "gw:eth1>sw:p1", "sw:p2>lvs:eth0", "lvs:eth0>sw:p2", "sw:p3>rs1:eth0",
                          "rs1:eth0>sw:p3", "sw:p1>gw:eth1", "gw:eth0>client:eth0"])
        #expect(path.request.count == 5 && path.reply.count == 3)
        let gw = path.hops[1]
        #expect(gw.changed == [.srcMAC, .dstMAC, .dstIP, .ttl])
        #expect(gw.senderIn == "eth0")
        #expect(gw.reason.contains("router gw: static NAT dst 198.51.100.3 → 10.0.0.100"))
        #expect(gw.reason.contains("route 10.0.0.0/24 connected (eth1)"))
        #expect(gw.reason.contains("ARP 10.0.0.100 → lvs:eth0"))
        #expect(gw.reason.contains("TTL 64 → 63"))
        let lvs = path.hops[3]
        #expect(lvs.changed == [.srcMAC, .dstMAC, .ttl])
        #expect(lvs.reason == "director lvs: service 10.0.0.100:80 rr → rs1 (10.0.0.1), DR: MACs rewritten (lvs:eth0 → rs1:eth0), TTL 63 → 62")
        #expect(path.hops[2].reason == "switch sw: lvs:eth0's MAC learned on p2")
        #expect(path.hops[5].changed.isEmpty)   // a new packet: nothing to compare with
        #expect(path.hops[7].reason.contains("static NAT src 10.0.0.100 → 198.51.100.3"))
    }

    @Test func correctDRPassesAndEachBrokenFieldFailsNamingHopAndField() throws {
        let t = try Self.topology(checks: Self.drChecks)
        let items = Self.sendItems(t)
        var ok = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(items, path: ProbePath.trace(Self.drObservations(t), marker: Self.marker, origin: "client", topology: t),
                                 topology: t, into: &ok)
        #expect(ok.status == .pass, "\(ok.summary) \(ok.details)")

        // A router that forgets to rewrite the source MAC.
        var bad = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(items, path: ProbePath.trace(Self.drObservations(t, brokenRouterMAC: true), marker: Self.marker, origin: "client", topology: t),
                                 topology: t, into: &bad)
        #expect(bad.status == .fail)
        #expect(bad.failedItem == 1)
        #expect(bad.failedHop?.number == 2 && bad.failedHop?.sender.node == "gw")
        #expect(bad.mismatches.map(\.field) == ["src-mac"])
        #expect(bad.mismatches.first?.seen == Self.mac(t, "client:eth0").description)
        #expect(bad.summary.contains("hop 2") && bad.summary.contains("src-mac"))

        // A DR director that also rewrites the destination IP.
        var dr = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(items, path: ProbePath.trace(Self.drObservations(t, drRewritesIP: true), marker: Self.marker, origin: "client", topology: t),
                                 topology: t, into: &dr)
        #expect(dr.status == .fail)
        #expect(dr.failedItem == 2)
        #expect(dr.failedHop?.sender.node == "sw" && dr.failedHop?.number == 5)
        #expect(dr.mismatches.map(\.field) == ["dst-ip"])
        #expect(dr.mismatches.first?.changedBy == "lvs" && dr.mismatches.first?.changedAtHop == 4)
        #expect(dr.details.contains { $0.contains("dst-ip: expected 10.0.0.100, seen 10.0.0.1 (set by lvs at hop 4)") })
        #expect(bad.mismatches.first?.changedBy == nil, "the broken router changed nothing")
        #expect(dr.mismatches.first?.expected == "10.0.0.100" && dr.mismatches.first?.seen == "10.0.0.1")
    }

    @Test func expectationsAreMatchedInOrderEachToTheNextFrameOnItsLink() throws {
        // gw:eth1 twice: the request (hop 2), then the reply (hop 7); then
        // the client's link after that: the NATed reply (hop 8).
        let t = try Self.topology(checks: """
        checks:
          - name: there and back
            send: { from: client, to: "198.51.100.3:80" }
            expect:
              - { at: gw:eth1, dst-ip: 10.0.0.100, ttl: 63 }
              - { at: gw:eth1, src-ip: 10.0.0.100, ttl: 64 }
              - { at: gw:eth0, src-ip: 198.51.100.3, ttl: 63 }
          - name: reply item first
            send: { from: client, to: "198.51.100.3:80" }
            expect:
              - { at: gw:eth0, src-ip: 198.51.100.3 }
          - name: ttl untouched
            send: { from: client, to: "198.51.100.3:80" }
            expect:
              - { at: gw:eth1, ttl: 64 }
        """)
        let path = ProbePath.trace(Self.drObservations(t), marker: Self.marker, origin: "client", topology: t)
        var o = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(Self.sendItems(t, 0), path: path, topology: t, into: &o)
        #expect(o.status == .pass, "\(o.summary) \(o.details)")
        #expect(o.details.contains("expect #2 at gw:eth1: ok at hop 7 (sw:p1 → gw:eth1)"))
        // The first frame on the client's link is the request, not the
        // reply: order matters.
        var first = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(Self.sendItems(t, 1), path: path, topology: t, into: &first)
        #expect(first.status == .fail && first.failedHop?.number == 1 && first.mismatches.map(\.field) == ["src-ip"])
        // The reply crossing gw:eth1 with TTL 64 does not stand in for the
        // request that crossed it with 63.
        var ttl = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(Self.sendItems(t, 2), path: path, topology: t, into: &ttl)
        #expect(ttl.status == .fail && ttl.failedHop?.number == 2 && ttl.mismatches.map(\.field) == ["ttl"])
        #expect(ttl.mismatches.first?.changedBy == "gw" && ttl.mismatches.first?.seen == "63")
    }

    @Test func aProbeNeverSeenOnTheLinkIsNamed() throws {
        let t = try Self.topology(checks: """
        checks:
          - name: wrong real
            send: { from: client, to: "198.51.100.3:80" }
            expect:
              - { at: gw:eth1, dst-ip: 10.0.0.100 }
              - { at: sw:p4, dst-ip: 10.0.0.100 }
        """)
        var o = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(Self.sendItems(t), path: ProbePath.trace(Self.drObservations(t), marker: Self.marker, origin: "client", topology: t),
                                 topology: t, into: &o)
        #expect(o.status == .fail && o.failedItem == 2)
        #expect(o.summary == "expect #2: the probe was never seen at sw:p4")
        var none = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(Self.sendItems(t), path: ProbePath(marker: Self.marker, hops: []), topology: t, into: &none)
        #expect(none.status == .fail && none.summary == "the probe was not seen on any link")
    }

    @Test func causalOrderCorrectsClockSkewBetweenCapturePoints() throws {
        let t = try Self.topology()
        var obs = Self.drObservations(t)
        // The switch's capture of the frame toward lvs reads 25 µs early:
        // before the router's frame it follows.
        obs[3].timestamp -= 25_000
        let path = ProbePath.trace(obs, marker: Self.marker, origin: "client", topology: t)
        #expect(path.hops.prefix(3).map(\.sender.node) == ["client", "gw", "sw"])
    }

    @Test func tunnelProbeIsFollowedInsideIPIP() throws {
        let t = try Self.topology(mode: "tun", checks: """
        checks:
          - name: tun
            send: { from: client, to: "198.51.100.3:80" }
            expect:
              - { at: sw:p3 | sw:p4, proto: ipip, src-ip: 10.0.0.2, dst-ip: 10.0.0.1, inner-src-ip: 203.0.113.123, inner-dst-ip: 10.0.0.100, dst-port: 80 }
        """)
        var r = Recorder(t: t)
        let m = { Self.mac(t, $0) }
        let inner = Self.ipPacket("203.0.113.123", "10.0.0.100", ttl: 63, id: Self.id, sport: 40000, dport: 80, seq: Self.seq)
        r.add("client:eth0", "gw:eth0", Self.frame(m("client:eth0"), m("gw:eth0"), Self.ipPacket("203.0.113.123", "198.51.100.3", ttl: 64, id: Self.id, sport: 40000, dport: 80, seq: Self.seq)))
        r.add("gw:eth1", "sw:p1", Self.frame(m("gw:eth1"), m("lvs:eth0"), inner))
        r.add("sw:p2", "lvs:eth0", Self.frame(m("gw:eth1"), m("lvs:eth0"), inner))
        // As the director sends it: the inner TTL one less, the outer TTL the same.
        let tunnelled = Self.ipPacket("203.0.113.123", "10.0.0.100", ttl: 62, id: Self.id, sport: 40000, dport: 80, seq: Self.seq)
        let outer = Self.ipPacket("10.0.0.2", "10.0.0.1", ttl: 62, id: 1, inner: tunnelled)
        r.add("lvs:eth0", "sw:p2", Self.frame(m("lvs:eth0"), m("rs1:eth0"), outer))
        r.add("sw:p3", "rs1:eth0", Self.frame(m("lvs:eth0"), m("rs1:eth0"), outer))
        let path = ProbePath.trace(r.list, marker: Self.marker, origin: "client", topology: t)
        #expect(path.hops.count == 5)
        let enc = path.hops[3]
        #expect(enc.fields.inner?.destination == IPv4Address("10.0.0.100"))
        #expect(enc.changed.isSuperset(of: [.proto, .srcIP, .dstIP, .innerSrcIP, .innerDstIP, .ttl]))
        #expect(enc.fields.inner?.timeToLive == 62 && enc.fields.ip?.timeToLive == 62)
        #expect(enc.reason.hasSuffix("TUN: IPIP 10.0.0.2 → 10.0.0.1 around the packet, inner TTL 63 → 62"), "\(enc.reason)")
        #expect(enc.reason.contains("→ rs1 (10.0.0.1)"))
        var o = CheckOutcome(name: "x", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateHops(Self.sendItems(t), path: path, topology: t, into: &o)
        #expect(o.status == .pass, "\(o.summary) \(o.details)")
    }

    /// NAT and FULLNAT: the director rewrites addresses and ports; the marker
    /// (SYN sequence, then ack = seq + 1) still finds every frame.
    @Test(arguments: ["nat", "fullnat"])
    func natModesAreFollowedByTheMarker(mode: String) throws {
        let t = try Self.topology(mode: mode)
        var r = Recorder(t: t)
        let m = { Self.mac(t, $0) }
        let client = "203.0.113.123", vip = "10.0.0.100"
        let src = mode == "fullnat" ? "10.0.0.50" : client
        let sport: UInt16 = mode == "fullnat" ? 1025 : 40000
        r.add("gw:eth1", "sw:p1", Self.frame(m("gw:eth1"), m("lvs:eth0"), Self.ipPacket(client, vip, ttl: 63, id: Self.id, sport: 40000, dport: 80, seq: Self.seq)))
        r.add("sw:p2", "lvs:eth0", Self.frame(m("gw:eth1"), m("lvs:eth0"), Self.ipPacket(client, vip, ttl: 63, id: Self.id, sport: 40000, dport: 80, seq: Self.seq)))
        r.add("lvs:eth0", "sw:p2", Self.frame(m("lvs:eth0"), m("rs2:eth0"), Self.ipPacket(src, "10.0.0.3", ttl: 62, id: Self.id, sport: sport, dport: 8080, seq: Self.seq)))
        r.add("sw:p4", "rs2:eth0", Self.frame(m("lvs:eth0"), m("rs2:eth0"), Self.ipPacket(src, "10.0.0.3", ttl: 62, id: Self.id, sport: sport, dport: 8080, seq: Self.seq)))
        let ack = Self.seq &+ 1
        r.add("rs2:eth0", "sw:p4", Self.frame(m("rs2:eth0"), m("lvs:eth0"), Self.ipPacket("10.0.0.3", src, ttl: 64, id: 3, sport: 8080, dport: sport, seq: 5, ack: ack, flags: [.syn, .ack])))
        r.add("sw:p2", "lvs:eth0", Self.frame(m("rs2:eth0"), m("lvs:eth0"), Self.ipPacket("10.0.0.3", src, ttl: 64, id: 3, sport: 8080, dport: sport, seq: 5, ack: ack, flags: [.syn, .ack])))
        r.add("lvs:eth0", "sw:p2", Self.frame(m("lvs:eth0"), m("gw:eth1"), Self.ipPacket(vip, client, ttl: 63, id: 3, sport: 80, dport: 40000, seq: 5, ack: ack, flags: [.syn, .ack])))
        let path = ProbePath.trace(r.list, marker: Self.marker, origin: "gw", topology: t)
        #expect(path.request.count == 4 && path.reply.count == 3)
        let toReal = path.hops[2]
        let expected: Set<HopField> = mode == "fullnat" ? [.srcMAC, .dstMAC, .srcIP, .dstIP, .srcPort, .dstPort, .ttl] : [.srcMAC, .dstMAC, .dstIP, .dstPort, .ttl]
        #expect(toReal.changed == expected)
        #expect(toReal.reason.contains("→ rs2 (10.0.0.3), \(mode == "nat" ? "NAT" : "FULLNAT")"))
        let back = path.hops[6]
        #expect(back.reason.contains("reply translated back, src 10.0.0.3 → 10.0.0.100"))
        #expect(back.value(.srcPort) == "80" && back.value(.dstIP) == client)
    }

    @Test func droppedNeedsEntryNoExitAndTheCounter() throws {
        let t = try Self.topology()
        var r = Recorder(t: t)
        let m = { Self.mac(t, $0) }
        r.add("client:eth0", "gw:eth0", Self.frame(m("client:eth0"), m("gw:eth0"), Self.ipPacket("203.0.113.123", "192.0.2.9", ttl: 64, id: Self.id, sport: 40000, dport: 80, seq: Self.seq)))
        let path = ProbePath.trace(r.list, marker: Self.marker, origin: "client", topology: t)
        let expect = DropExpectation(node: "gw", reason: "no route", location: SourceLocation(file: "x", line: 1, column: 1))
        var o = CheckOutcome(name: "d", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateDrop(expect, path: path, before: ["gw": ["no-route": 2]], after: ["gw": ["no-route": 3]], into: &o)
        #expect(o.status == .pass, "\(o.summary)")
        #expect(o.summary == "dropped at gw (no-route +1)")

        var noCount = CheckOutcome(name: "d", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateDrop(expect, path: path, before: ["gw": ["no-route": 3]], after: ["gw": ["no-route": 3, "ttl-expired": 1]], into: &noCount)
        #expect(noCount.status == .fail)
        #expect(noCount.details.joined().contains("ttl-expired +1"))

        // Seen leaving gw: not dropped there, whatever the counters say.
        let forwarded = ProbePath.trace(Self.drObservations(t), marker: Self.marker, origin: "client", topology: t)
        var left = CheckOutcome(name: "d", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateDrop(expect, path: forwarded, before: [:], after: ["gw": ["no-route": 1]], into: &left)
        #expect(left.status == .fail)
        #expect(left.summary.contains("gw forwarded it: hop 2 gw:eth1 → sw:p1"))

        // Never reached the node.
        var never = CheckOutcome(name: "d", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateDrop(DropExpectation(node: "lvs", reason: nil, location: expect.location), path: path,
                                 before: [:], after: ["lvs": [:]], into: &never)
        #expect(never.status == .fail)
        #expect(never.summary.contains("never reached lvs"))

        // A kernel node counts no drops: a reason cannot be confirmed.
        var kernel = CheckOutcome(name: "d", kind: "send", location: "", status: .error, summary: "")
        CheckEngine.evaluateDrop(DropExpectation(node: "client", reason: "no route", location: expect.location), path: nil,
                                 before: [:], after: [:], into: &kernel)
        #expect(kernel.status == .error)
    }

    @Test func markerClassifiesOnlyTheProbeAndItsReply() throws {
        let t = try Self.topology()
        let m = Self.marker
        let obs = Self.drObservations(t)
        let kinds = obs.map { FrameFields(frame: $0.frame).flatMap(m.classify)?.rawValue ?? "-" }
        #expect(kinds == ["-", "request", "request", "request", "request", "request", "reply", "reply", "reply", "-"])
        // ICMP errors quoting the probe's header are replies.
        var icmp = [UInt8](repeating: 0, count: 8) + Array(Self.ipPacket("203.0.113.123", "192.0.2.9", ttl: 1, id: Self.id, sport: 1, dport: 2, seq: 3).prefix(28))
        icmp[0] = 11
        let err = IPv4Repr(sourceAddress: IPv4Address("203.0.113.1")!, destinationAddress: IPv4Address("203.0.113.123")!, protocol: .icmp, payloadLength: icmp.count)
        var pkt = [UInt8](repeating: 0, count: err.bufferLength)
        pkt.withUnsafeMutableBytes { b in err.emit(into: IPv4MutableHeader(unchecked: b)); for (i, x) in icmp.enumerated() { b[20 + i] = x } }
        let f = FrameFields(frame: Self.frame(Self.mac(t, "gw:eth0"), Self.mac(t, "client:eth0"), pkt))!
        #expect(m.classify(f) == .reply)
    }

    @Test func probesAreValidPacketsCarryingTheirMarker() throws {
        let t = try Self.topology()
        var g = SystemRandomNumberGenerator()
        for proto in ProbeProtocol.allCases {
            let p = try Probe.make(from: "client", to: IPv4Address("198.51.100.3")!, port: proto == .icmp ? nil : 80, proto: proto, topology: t, using: &g)
            #expect(p.source == IPv4Address("203.0.113.123"))
            let pkt = p.packet
            let ok = pkt.withUnsafeBytes { b -> Bool in
                guard let ip = try? IPv4Header(validating: b), ip.isChecksumValid else { return false }
                // The transport checksum over the pseudo-header sums to 0xFFFF.
                let l4 = ip.payload
                if proto == .icmp { return InternetChecksum.sum(l4) == 0xFFFF }
                let pseudo = InternetChecksum.pseudoHeaderSum(source: ip.sourceAddress, destination: ip.destinationAddress,
                                                              protocol: ip.protocol, length: l4.count)
                return InternetChecksum.sum(l4, initial: pseudo) == 0xFFFF
            }
            #expect(ok, "\(proto) probe checksums")
            let f = FrameFields(frame: Self.frame(.zero, .zero, pkt))!
            #expect(p.marker.classify(f) == .request)
        }
    }

    @Test func captureCommentsBecomeObservationsAndWalkPcapngReadsBack() throws {
        let t = try Self.topology()
        let obs = Self.drObservations(t)
        // As the live merge and the simulator write it: one interface per
        // link, each record commented with its receiving end.
        var links = t.links.map { PcapNGLink(name: ObservationReader.linkName($0), records: []) }
        for o in obs { links[o.link].records.append(PcapRecord(timestamp: o.timestamp, bytes: o.frame, comment: "rx \(o.receiver)")) }
        links[0].records.append(PcapRecord(timestamp: 1, bytes: [1, 2, 3]))   // no receiver: not attributed
        let capture = try PcapNGCapture(parsing: PcapNGWriter.merge(links))
        let read = ObservationReader.observations(capture, topology: t)
        #expect(read.unattributed == 1)
        #expect(Set(read.observations.map { "\($0.sender)>\($0.receiver)>\($0.timestamp)" }) == Set(obs.map { "\($0.sender)>\($0.receiver)>\($0.timestamp)" }))

        let path = ProbePath.trace(read.observations, marker: Self.marker, origin: "client", topology: t)
        let walk = WalkReport(topology: t, probe: Probe(from: "client", source: IPv4Address("203.0.113.123")!, destination: IPv4Address("198.51.100.3")!,
                                                        proto: .tcp, sourcePort: 40000, destinationPort: 80, marker: Self.marker), path: path)
        let back = try PcapNGCapture(parsing: walk.pcapng())
        #expect(back.interfaces.map { $0.name ?? "" } == t.links.map(ObservationReader.linkName))
        #expect(back.packets.count == 8)
        #expect(back.packets.map(\.interface) == [0, 1, 2, 2, 3, 3, 1, 0])
        #expect(back.packets[1].comments.first?.hasPrefix("rx sw:p1\nhop 2 (request): router gw:") == true)
        let text = walk.text()
        #expect(text.contains("10.0.0.100*"))                  // the NAT'd destination, marked
        #expect(text.contains(" 2. gw (in eth0, out eth1) → sw:p1"))
        #expect(text.contains("why: director lvs: service 10.0.0.100:80 rr → rs1"))
    }

    @Test func reportsNameTheHopAndFieldInTextJSONAndJUnit() throws {
        let t = try Self.topology(checks: Self.drChecks)
        var bad = CheckOutcome(name: "DR <rewrites> only the MACs", kind: "send", location: "3:5", status: .error, summary: "")
        CheckEngine.evaluateHops(Self.sendItems(t), path: ProbePath.trace(Self.drObservations(t, brokenRouterMAC: true), marker: Self.marker, origin: "client", topology: t),
                                 topology: t, into: &bad)
        bad.capture = "Captures/vt/all.pcapng"
        let good = CheckOutcome(name: "fine", kind: "http", location: "9:5", status: .pass, summary: "30 requests answered")
        let report = CheckReport(lab: "vt", file: "vt.yaml", outcomes: [good, bad])
        #expect(!report.allPassed)
        let text = report.text()
        #expect(text.contains("FAIL   DR <rewrites> only the MACs"))
        #expect(text.contains("hop 2 (gw:eth1 → sw:p1, sent by gw) differs in src-mac"))
        #expect(text.contains("src-mac: expected gw:eth1 ("))
        #expect(text.contains("capture: Captures/vt/all.pcapng"))
        let json = try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as! [String: Any]
        let checks = json["checks"] as! [[String: Any]]
        #expect(checks[1]["failedHop"] as? Int == 2 && checks[1]["failedNode"] as? String == "gw")
        #expect((checks[1]["mismatches"] as? [[String: Any]])?.first?["field"] as? String == "src-mac")
        #expect(json["ok"] as? Bool == false)
        let junit = report.junit()
        #expect(junit.contains("<testsuite name=\"vt\" tests=\"2\" failures=\"1\" errors=\"0\""))
        #expect(junit.contains("<testcase classname=\"vt\" name=\"DR &lt;rewrites&gt; only the MACs\""))
        #expect(junit.contains("<failure message=\"expect #1 at gw:eth1: hop 2"))
        // Well-formed XML.
        let doc = try XMLDocument(xmlString: junit)
        #expect(try doc.nodes(forXPath: "//testcase").count == 2)
        #expect(CheckReport(lab: "vt", file: "vt.yaml", outcomes: [good]).allPassed)
        #expect(!CheckReport(lab: "vt", file: "vt.yaml", outcomes: []).allPassed)
    }
}

/// The live recorder's merge: per-link classic pcaps plus their `.rx`
/// sidecars become all.pcapng with `rx node:iface` on every record.
struct CaptureMergeTests {
    @Test func mergeNamesTheReceivingEndOfEveryRecord() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-merge-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = dir + "/a.pcap", b = dir + "/b.pcap"
        let wa = try PcapWriter(path: a), wb = try PcapWriter(path: b)
        try wa.write([1, 1, 1], timestamp: 10)
        try wa.write([2, 2, 2], timestamp: 30)
        try wa.write([3, 3, 3], timestamp: 50)   // past the sidecar's end: no comment
        try wb.write([4, 4, 4], timestamp: 20)
        try wa.close(); try wb.close()
        try Data([0, 1]).write(to: URL(fileURLWithPath: CaptureRecorder.receiverPath(a)))
        try Data([1]).write(to: URL(fileURLWithPath: CaptureRecorder.receiverPath(b)))
        try CaptureRecorder.mergeStreaming([("x:eth0 ↔ y:eth0", a, ["x:eth0", "y:eth0"]), ("y:eth1 ↔ z:p1", b, ["y:eth1", "z:p1"])],
                                           to: dir + "/all.pcapng")
        let merged = try PcapNGFile.read(path: dir + "/all.pcapng")
        #expect(merged.interfaces.map(\.name) == ["x:eth0 ↔ y:eth0", "y:eth1 ↔ z:p1"])
        #expect(merged.packets.map(\.bytes.first) == [1, 4, 2, 3])
        #expect(merged.packets.map { $0.comments } == [["rx x:eth0"], ["rx z:p1"], ["rx y:eth0"], []])
    }
}

/// The verbs' help and argument checks, from the built binary (no root).
struct CheckWalkCommandLineTests {
    @Test func helpNamesEveryOption() throws {
        let check = try Harness.wl("check", "--help")
        #expect(check.status == 0)
        for option in ["--junit", "--json", "--captures", "Exit status 0 only if every"] {
            #expect(check.stdout.contains(option), "check --help lacks \(option): \(check.stdout)")
        }
        let walk = try Harness.wl("walk", "--help")
        #expect(walk.status == 0)
        for option in ["--from", "--to", "--proto", "--json", "--pcap", "--established"] {
            #expect(walk.stdout.contains(option), "walk --help lacks \(option): \(walk.stdout)")
        }
    }

    @Test func badWalkArgumentsAreRejectedBeforeAnythingIsBuilt() throws {
        let file = try Harness.topologyFile("""
        name: wlnever
        nodes:
          a: { kind: host, interfaces: { eth0: { ip: 10.9.0.1/24 } } }
          b: { kind: host, interfaces: { eth0: { ip: 10.9.0.2/24 } } }
        links: [ [ a:eth0, b:eth0 ] ]
        """)
        for (args, message) in [(["--to", "10.0.0.1"], "needs a port"), (["--to", "10.0.0.1:99999"], "port must be 1...65535"),
                                (["--to", "10.0.0.1:80", "--proto", "sctp"], "--proto must be tcp, udp or icmp")] {
            let r = try Harness.run(Harness.wirelab, ["walk", file, "--from", "a"] + args)
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.combined)")
        }
        let r = try Harness.run(Harness.wirelab, ["walk", file, "--from", "nobody", "--to", "10.0.0.1:80"])
        #expect(r.status != 0 && r.stderr.contains("no node is named 'nobody'"), "\(r.combined)")
        #expect(Harness.namespaces(prefix: "wl-wlnever-").isEmpty)
    }
}
