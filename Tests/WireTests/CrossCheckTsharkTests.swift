// Wire → tshark: frames built from Wire's Reprs (seeded random values; a
// quarter of them then rewritten in place with the ParsedFrame NAT / TTL /
// MAC helpers) are written to a pcapng with PcapNGWriter; tshark dissects
// the file with checksum verification on, and every field is compared with
// the values the frame was built from. Every IPv4 header, TCP, UDP, ICMP and
// ICMPv6 checksum must be "Good" — in tshark's numbering that is 1
// (0 Bad, 1 Good, 2 Unverified, 3 Not present; 2 is what a field shows
// when verification is off), and a zero UDP checksum over IPv4 is 3.
//
//   swift test --filter CrossCheckTshark
//   CROSSCHECK_TSHARK_SEED=7 swift test --filter CrossCheckTshark
//   CROSSCHECK_KEEP=/tmp/x.pcapng swift test --filter CrossCheckTshark   # keep the capture

import Foundation
import Testing
import Wire

@Suite struct CrossCheckTsharkTests {
    @Test func wireToTshark() throws {
        guard let tshark = CrossCheck.which("tshark") else {
            Issue.record("tshark not found: \(CrossCheck.installHint)")
            return
        }
        let seed = CrossCheck.seed("CROSSCHECK_TSHARK_SEED", default: 791)
        var g = FrameGen(rng: SplitMix64(seed: seed))
        let cases = g.all()

        var writer = PcapNGWriter(application: "wirelab cross-check", comment: "seed \(seed)")
        let interface = writer.addInterface(name: "crosscheck")
        for (i, c) in cases.enumerated() {
            writer.writePacket(c.frame, interface: interface, timestamp: 1_700_000_000_000_000_000 + UInt64(i) * 1000,
                               comment: c.kind)
        }
        let keep = ProcessInfo.processInfo.environment["CROSSCHECK_KEEP"]
        let file = keep ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("wirelab-crosscheck-\(UUID().uuidString).pcapng").path
        try Data(writer.bytes).write(to: URL(fileURLWithPath: file))
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: file) } }

        var names = Set(cases.flatMap { $0.expected.keys })
        names.insert("frame.number")
        let fields = names.sorted()
        var arguments = ["-n", "-r", file, "-T", "fields", "-E", "header=y", "-E", "separator=,",
                         "-E", "aggregator=;", "-E", "occurrence=a",
                         "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                         "-o", "udp.check_checksum:TRUE",
                         "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
        for f in fields { arguments += ["-e", f] }
        guard let out = try CrossCheck.run(tshark, arguments), out.status == 0 else {
            Issue.record("tshark failed: \(CrossCheck.installHint)")
            return
        }
        let lines = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) else {
            Issue.record("tshark printed nothing: \(out.stderr)")
            return
        }
        var rows: [Int: [String: String]] = [:]
        for line in lines.dropFirst() {
            let values = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard values.count == header.count else {
                Issue.record("tshark line with \(values.count) columns, not \(header.count): \(line)")
                continue
            }
            let row = Dictionary(uniqueKeysWithValues: zip(header, values))
            if let n = Int(row["frame.number"] ?? "") { rows[n] = row }
        }

        var tally = CrossCheck.Tally()
        for (i, c) in cases.enumerated() {
            tally.cases += 1
            tally.casesByKind[c.kind, default: 0] += 1
            let id = "frame \(i + 1) \(c.kind)"
            guard let row = rows[i + 1] else {
                tally.mismatches.append("\(id): not in tshark's output")
                continue
            }
            let before = tally.mismatches.count
            for (key, values) in c.expected.sorted(by: { $0.key < $1.key }) {
                let got = row[key] ?? ""
                if key == "frame.protocols" {  // a prefix: payload dissectors may follow
                    tally.compare(id, key, expected: values[0] + "…", got: got.hasPrefix(values[0]) ? values[0] + "…" : got)
                } else if values.count == 1 {  // the first occurrence (tshark may find more in payloads)
                    let first = got.split(separator: ";", omittingEmptySubsequences: false).first.map(String.init) ?? ""
                    tally.compare(id, key, expected: values[0], got: first)
                } else {
                    tally.compare(id, key, expected: values.joined(separator: ";"), got: got)
                }
            }
            if tally.mismatches.count > before { tally.mismatches.append("\(id): frame was \(c.frame.hex)") }
        }
        print(tally.report("Wire → tshark (seed \(seed))"))
        var statuses: [String: Int] = [:]
        for c in cases {
            for (key, values) in c.expected where key.hasSuffix("checksum.status") {
                for v in values { statuses["\(key.split(separator: ".")[0])=\(v == "1" ? "Good" : v == "3" ? "Not present" : v)", default: 0] += 1 }
            }
        }
        print("  checksum statuses required: " + statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        #expect(tally.cases >= 200, "only \(tally.cases) cases ran")
        #expect(tally.mismatches.isEmpty,
                "\(tally.mismatches.count) mismatches:\n\(tally.mismatches.prefix(40).joined(separator: "\n"))")
    }
}

/// One frame and what tshark must say about it: for each field, its
/// occurrences in order (one value: compared with the first occurrence).
struct BuiltFrame {
    var kind: String
    var frame: [UInt8]
    var expected: [String: [String]] = [:]

    mutating func set(_ key: String, _ value: String) { expected[key] = [value] }
    mutating func add(_ key: String, _ value: String) { expected[key, default: []].append(value) }
    /// Replaces the first occurrence (after a rewrite of the outer header).
    mutating func replace(_ key: String, _ value: String) {
        if expected[key] == nil { expected[key] = [value] } else { expected[key]![0] = value }
    }
}

func hx<T: BinaryInteger>(_ value: T, _ digits: Int) -> String {
    let s = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - s.count)) + s
}

/// Builds frames from Reprs (buffers poisoned with 0xa5 first, so a field
/// an `emit` forgets shows up in tshark's view) and records the expectation.
struct FrameGen {
    var rng: SplitMix64

    // MARK: random values

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func mac() -> MACAddress { MACAddress(rawValue: rng.next() & 0xFEFF_FFFF_FFFF) }
    mutating func ipv4() -> IPv4Address { rng.ipv4() }
    mutating func ipv6() -> IPv6Address {
        if chance(0.1) {  // text-form corner cases
            let specials = ["::", "::1", "fe80::1", "2001:db8::", "::ffff:10.1.2.3", "1:0:0:1:0:0:0:1",
                            "1:0:0:1:0:0:1:1", "0:0:1::", "2001:db8:0:0:1:0:0:1", "ff02::1:ff00:1"]
            return IPv6Address(specials[int(0...specials.count - 1)])!
        }
        var g = [UInt16](repeating: 0, count: 8)
        for i in 0..<8 where !chance(0.35) { g[i] = rng.u16() }
        return IPv6Address(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7])
    }
    /// Ports away from the well-known ones, so tshark leaves payloads alone.
    mutating func port() -> UInt16 { UInt16(int(20000...60000)) }
    mutating func payload(_ range: ClosedRange<Int> = 0...48) -> [UInt8] { rng.bytes(int(range)) }

    // MARK: layers

    mutating func ethernet(_ type: EtherType, _ l3: [UInt8], into c: inout BuiltFrame, vlan: Bool? = nil) -> [UInt8] {
        let tag = (vlan ?? chance(0.25))
            ? VLANTag(identifier: UInt16(int(1...4094)), priority: UInt8(int(0...7)), dropEligible: chance(0.3)) : nil
        let e = EthernetRepr(destination: mac(), source: mac(), vlanTag: tag, etherType: type)
        var frame = poisoned(e.headerLength) + l3
        frame.write { e.emit(into: EthernetMutableHeader(unchecked: $0)) }
        c.set("eth.dst", e.destination.description)
        c.set("eth.src", e.source.description)
        if let tag {
            c.set("eth.type", hx(0x8100, 4))
            c.set("vlan.id", "\(tag.identifier)")
            c.set("vlan.priority", "\(tag.priority)")
            c.set("vlan.dei", tag.dropEligible.bit)
            c.set("vlan.etype", hx(type.rawValue, 4))
        } else {
            c.set("eth.type", hx(type.rawValue, 4))
        }
        return frame
    }

    mutating func ipv4Options() -> [UInt8] {
        switch int(0...3) {
        case 0: return [0x94, 0x04, 0x00, 0x00]  // Router Alert
        case 1: return [0x01, 0x01, 0x01, 0x00]  // NOP NOP NOP EOL
        case 2:  // Record Route with n empty slots, padded with EOL
            let n = int(1...4)
            var o: [UInt8] = [0x07, UInt8(3 + 4 * n), 0x04] + [UInt8](repeating: 0, count: 4 * n)
            while o.count % 4 != 0 { o.append(0) }
            return o
        default:  // Timestamp, two recorded stamps, pointer past them
            return [0x44, 12, 13, 0x00] + rng.bytes(8)
        }
    }

    mutating func ipv4Repr(_ proto: IPProtocol, options: Bool? = nil) -> IPv4Repr {
        IPv4Repr(sourceAddress: ipv4(), destinationAddress: ipv4(), protocol: proto, payloadLength: 0,
                 timeToLive: UInt8(int(2...255)), identification: rng.u16(), dontFragment: chance(0.5),
                 dscp: UInt8(int(0...63)), ecn: UInt8(int(0...3)),
                 options: (options ?? chance(0.2)) ? ipv4Options() : [])
    }

    /// Emits `r` in front of `payload`; records ip.* (appending: the first
    /// call describes the outermost header).
    mutating func ipv4(_ r: IPv4Repr, _ payload: [UInt8], into c: inout BuiltFrame) -> [UInt8] {
        var r = r
        r.payloadLength = payload.count
        var packet = poisoned(r.headerLength) + payload
        packet.write { r.emit(into: IPv4MutableHeader(unchecked: $0)) }
        c.add("ip.version", "4")
        c.add("ip.hdr_len", "\(r.headerLength)")
        c.add("ip.dsfield.dscp", "\(r.dscp)")
        c.add("ip.dsfield.ecn", "\(r.ecn)")
        c.add("ip.len", "\(r.bufferLength)")
        c.add("ip.id", hx(r.identification, 4))
        c.add("ip.flags.rb", "0")
        c.add("ip.flags.df", r.dontFragment.bit)
        c.add("ip.flags.mf", r.moreFragments.bit)
        c.add("ip.frag_offset", "\(r.fragmentOffset / 8)")
        c.add("ip.ttl", "\(r.timeToLive)")
        c.add("ip.proto", "\(r.protocol.rawValue)")
        c.add("ip.checksum.status", "1")
        c.add("ip.src", r.sourceAddress.description)
        c.add("ip.dst", r.destinationAddress.description)
        return packet
    }

    mutating func ipv6(_ r: IPv6Repr, _ payload: [UInt8], into c: inout BuiltFrame) -> [UInt8] {
        var r = r
        r.payloadLength = payload.count
        var packet = poisoned(40) + payload
        packet.write { r.emit(into: IPv6MutableHeader(unchecked: $0)) }
        c.add("ipv6.tclass", hx(r.trafficClass, 8))
        c.add("ipv6.flow", hx(r.flowLabel, 6))
        c.add("ipv6.plen", "\(r.payloadLength)")
        c.add("ipv6.nxt", "\(r.nextHeader.rawValue)")
        c.add("ipv6.hlim", "\(r.hopLimit)")
        c.add("ipv6.src", r.sourceAddress.description)
        c.add("ipv6.dst", r.destinationAddress.description)
        return packet
    }

    mutating func ipv6Repr(_ next: IPProtocol) -> IPv6Repr {
        IPv6Repr(sourceAddress: ipv6(), destinationAddress: ipv6(), nextHeader: next, payloadLength: 0,
                 hopLimit: UInt8(int(1...255)), trafficClass: UInt8(int(0...255)), flowLabel: UInt32(int(0...0xF_FFFF)))
    }

    /// TCP options from the usual kinds, NOP-padded to a multiple of 4.
    mutating func tcpOptions(into c: inout BuiltFrame) -> [UInt8] {
        var o: [UInt8] = []
        var kinds: [String] = []
        if chance(0.4) {
            let mss = UInt16(int(536...9000))
            o += [2, 4, UInt8(mss >> 8), UInt8(mss & 0xFF)]; kinds.append("2")
            c.set("tcp.options.mss_val", "\(mss)")
        }
        if chance(0.4) { o += [4, 2]; kinds.append("4") }
        if chance(0.4) {
            let val = rng.u32(), ecr = rng.u32()
            o += [8, 10] + withUnsafeBytes(of: val.bigEndian, Array.init) + withUnsafeBytes(of: ecr.bigEndian, Array.init)
            kinds.append("8")
            c.set("tcp.options.timestamp.tsval", "\(val)")
            c.set("tcp.options.timestamp.tsecr", "\(ecr)")
        }
        if chance(0.4) {
            let shift = UInt8(int(0...14))
            o += [3, 3, shift]; kinds.append("3")
            c.set("tcp.options.wscale.shift", "\(shift)")
        }
        while o.count % 4 != 0 { o.append(1); kinds.append("1") }
        if !kinds.isEmpty { c.expected["tcp.option_kind"] = kinds }
        return o
    }

    mutating func tcp(_ pseudo: IPPseudoHeader, into c: inout BuiltFrame, checksumChecked: Bool = true,
                      body: [UInt8]? = nil) -> [UInt8] {
        let body = body ?? payload()
        let r = TCPRepr(sourcePort: port(), destinationPort: port(), sequenceNumber: rng.u32(),
                        acknowledgmentNumber: rng.u32(), flags: TCPFlags(rawValue: rng.byte()), window: rng.u16(),
                        urgentPointer: rng.u16(), options: tcpOptions(into: &c), payloadLength: body.count)
        var segment = poisoned(r.headerLength) + body
        segment.write { r.emit(into: TCPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
        c.set("tcp.srcport", "\(r.sourcePort)")
        c.set("tcp.dstport", "\(r.destinationPort)")
        c.set("tcp.seq_raw", "\(r.sequenceNumber)")
        if r.flags.contains(.ack) { c.set("tcp.ack_raw", "\(r.acknowledgmentNumber)") }
        c.set("tcp.hdr_len", "\(r.headerLength)")
        c.set("tcp.flags", hx(r.flags.rawValue, 4))
        c.set("tcp.window_size_value", "\(r.window)")
        c.set("tcp.urgent_pointer", "\(r.urgentPointer)")
        if checksumChecked { c.set("tcp.checksum.status", "1") }
        return segment
    }

    mutating func udp(_ pseudo: IPPseudoHeader?, into c: inout BuiltFrame, body: [UInt8]? = nil) -> [UInt8] {
        let body = body ?? payload()
        let r = UDPRepr(sourcePort: port(), destinationPort: port(), payloadLength: body.count)
        var datagram = poisoned(8) + body
        datagram.write { r.emit(into: UDPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
        c.set("udp.srcport", "\(r.sourcePort)")
        c.set("udp.dstport", "\(r.destinationPort)")
        c.set("udp.length", "\(r.bufferLength)")
        c.set("udp.checksum.status", pseudo == nil ? "3" : "1")
        return datagram
    }

    mutating func icmp(_ message: ICMPv4Message, _ body: [UInt8], into c: inout BuiltFrame) -> [UInt8] {
        let r = ICMPv4Repr(message: message, payloadLength: body.count)
        var m = poisoned(8) + body
        m.write { r.emit(into: ICMPv4MutableHeader(unchecked: $0)) }
        c.set("icmp.checksum.status", "1")
        switch message {
        case let .echoRequest(id, seq), let .echoReply(id, seq):
            c.set("icmp.type", message == .echoRequest(identifier: id, sequenceNumber: seq) ? "8" : "0")
            c.set("icmp.code", "0")
            c.set("icmp.ident", "\(id)")
            c.set("icmp.seq", "\(seq)")
        case let .destinationUnreachable(code, mtu):
            c.set("icmp.type", "3")
            c.set("icmp.code", "\(code)")
            if code == 4 { c.set("icmp.mtu", "\(mtu)") }
        case let .timeExceeded(code):
            c.set("icmp.type", "11")
            c.set("icmp.code", "\(code)")
        case let .other(type, code, _):
            c.set("icmp.type", "\(type.rawValue)")
            c.set("icmp.code", "\(code)")
        }
        return m
    }

    mutating func icmpv6(_ message: ICMPv6Message, _ body: [UInt8], source: IPv6Address, destination: IPv6Address,
                         into c: inout BuiltFrame) -> [UInt8] {
        let r = ICMPv6Repr(message: message, payloadLength: body.count)
        var m = poisoned(r.headerLength) + body
        m.write { r.emit(into: ICMPv6MutableHeader(unchecked: $0), source: source, destination: destination) }
        c.set("icmpv6.checksum.status", "1")
        c.set("icmpv6.code", "0")
        switch message {
        case let .echoRequest(id, seq):
            c.set("icmpv6.type", "128")
            c.set("icmpv6.echo.identifier", hx(id, 4))
            c.set("icmpv6.echo.sequence_number", "\(seq)")
        case let .echoReply(id, seq):
            c.set("icmpv6.type", "129")
            c.set("icmpv6.echo.identifier", hx(id, 4))
            c.set("icmpv6.echo.sequence_number", "\(seq)")
        case let .neighborSolicitation(target, ll):
            c.set("icmpv6.type", "135")
            c.set("icmpv6.nd.ns.target_address", target.description)
            if let ll { c.set("icmpv6.opt.linkaddr", ll.description) }
        case let .neighborAdvertisement(flags, target, ll):
            c.set("icmpv6.type", "136")
            c.set("icmpv6.nd.na.target_address", target.description)
            c.set("icmpv6.nd.na.flag.r", flags.contains(.router).bit)
            c.set("icmpv6.nd.na.flag.s", flags.contains(.solicited).bit)
            c.set("icmpv6.nd.na.flag.o", flags.contains(.override).bit)
            if let ll { c.set("icmpv6.opt.linkaddr", ll.description) }
        case let .packetTooBig(mtu):
            c.set("icmpv6.type", "2")
            c.set("icmpv6.mtu", "\(mtu)")
        case let .destinationUnreachable(code):
            c.set("icmpv6.type", "1")
            c.set("icmpv6.code", "\(code)")
        case let .timeExceeded(code):
            c.set("icmpv6.type", "3")
            c.set("icmpv6.code", "\(code)")
        case let .parameterProblem(code, _):
            c.set("icmpv6.type", "4")
            c.set("icmpv6.code", "\(code)")
        case let .other(type, code, _):
            c.set("icmpv6.type", "\(type.rawValue)")
            c.set("icmpv6.code", "\(code)")
        }
        return m
    }

    // MARK: frame kinds

    mutating func arp() -> BuiltFrame {
        var c = BuiltFrame(kind: "arp", frame: [])
        let r = ARPRepr(operation: ARPOperation(UInt16(int(1...2))), senderHardwareAddress: mac(),
                        senderProtocolAddress: ipv4(), targetHardwareAddress: mac(), targetProtocolAddress: ipv4())
        var body = poisoned(28)
        body.write { r.emit(into: ARPMutableHeader(unchecked: $0)) }
        c.frame = ethernet(.arp, body, into: &c)
        c.set("frame.protocols", "eth:ethertype:" + (c.expected["vlan.id"] != nil ? "vlan:ethertype:" : "") + "arp")
        c.set("arp.opcode", "\(r.operation.rawValue)")
        c.set("arp.src.hw_mac", r.senderHardwareAddress.description)
        c.set("arp.src.proto_ipv4", r.senderProtocolAddress.description)
        c.set("arp.dst.hw_mac", r.targetHardwareAddress.description)
        c.set("arp.dst.proto_ipv4", r.targetProtocolAddress.description)
        return c
    }

    mutating func ipv4Transport(kind: String, options: Bool? = nil) -> BuiltFrame {
        var c = BuiltFrame(kind: kind, frame: [])
        let which = kind == "ipv4-tcp" ? 0 : kind == "ipv4-udp" ? 1 : int(0...1)
        var ip = ipv4Repr(which == 0 ? .tcp : .udp, options: options)
        let pseudo = IPPseudoHeader.ipv4(source: ip.sourceAddress, destination: ip.destinationAddress)
        let l4 = which == 0 ? tcp(pseudo, into: &c) : udp(chance(0.2) ? nil : pseudo, into: &c)
        ip.payloadLength = l4.count
        c.frame = ethernet(.ipv4, ipv4(ip, l4, into: &c), into: &c)
        return c
    }

    mutating func icmpEcho() -> BuiltFrame {
        var c = BuiltFrame(kind: "icmp-echo", frame: [])
        let id = rng.u16(), seq = rng.u16()
        let m: ICMPv4Message = chance(0.5) ? .echoRequest(identifier: id, sequenceNumber: seq)
            : .echoReply(identifier: id, sequenceNumber: seq)
        c.frame = ethernet(.ipv4, ipv4(ipv4Repr(.icmp), icmp(m, payload(), into: &c), into: &c), into: &c)
        return c
    }

    /// Echo reply, id 0, seq 0, no data: a message that sums to 0, whose
    /// only valid checksum is 0xFFFF (Wire emitted 0x0000 before ae7c972).
    mutating func icmpAllZero() -> BuiltFrame {
        var c = BuiltFrame(kind: "icmp-echo-all-zero", frame: [])
        let m = icmp(.echoReply(identifier: 0, sequenceNumber: 0), [], into: &c)
        c.set("icmp.checksum", "0xffff")
        c.frame = ethernet(.ipv4, ipv4(ipv4Repr(.icmp), m, into: &c), into: &c)
        return c
    }

    /// An ICMP error quoting the first bytes of an original TCP/UDP datagram.
    mutating func icmpError(timeExceeded: Bool) -> BuiltFrame {
        var c = BuiltFrame(kind: timeExceeded ? "icmp-time-exceeded" : "icmp-unreachable", frame: [])
        var quote = BuiltFrame(kind: "quote", frame: [])
        let inner = ipv4Repr(chance(0.5) ? .tcp : .udp, options: false)
        let pseudo = IPPseudoHeader.ipv4(source: inner.sourceAddress, destination: inner.destinationAddress)
        let l4 = inner.protocol == .tcp ? tcp(pseudo, into: &quote, checksumChecked: false)
            : udp(pseudo, into: &quote, body: payload(8...64))
        let original = ipv4(inner, l4, into: &quote)
        let quoted = Array(original.prefix(inner.headerLength + 8))
        let message: ICMPv4Message
        if timeExceeded {
            message = .timeExceeded(code: UInt8(int(0...1)))
        } else {
            let code = [0, 1, 3, 4, 4, 13][int(0...5)]
            message = .destinationUnreachable(code: UInt8(code), nextHopMTU: code == 4 ? [576, 1280, 1400, 1480][int(0...3)] : 0)
        }
        let body = icmp(message, quoted, into: &c)
        var outer = ipv4Repr(.icmp)
        outer.dontFragment = false
        let packet = ipv4(outer, body, into: &c)
        // The quote shows up as a second IP header; its ports as the only TCP/UDP ones.
        for key in ["ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.checksum.status"] {
            c.add(key, quote.expected[key]![0])
        }
        for key in ["tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"] {
            if let v = quote.expected[key] { c.set(key, v[0]) }
        }
        c.frame = ethernet(.ipv4, packet, into: &c)
        return c
    }

    /// A fragment of a UDP or TCP datagram: the first (transport header,
    /// checksum over bytes that are elsewhere) or a later one.
    mutating func ipv4Fragment() -> BuiltFrame {
        var c = BuiltFrame(kind: "ipv4-fragment", frame: [])
        var scratch = BuiltFrame(kind: "whole", frame: [])
        var ip = ipv4Repr(chance(0.6) ? .udp : .tcp, options: false)
        ip.dontFragment = false
        let pseudo = IPPseudoHeader.ipv4(source: ip.sourceAddress, destination: ip.destinationAddress)
        // Longer than the largest fragment size, so there are at least two.
        let whole = ip.protocol == .udp ? udp(pseudo, into: &scratch, body: payload(200...400))
            : tcp(pseudo, into: &scratch, body: payload(200...400))
        let size = [48, 64, 128][int(0...2)]
        let count = (whole.count + size - 1) / size
        let index = chance(0.5) ? 0 : int(1...count - 1)
        let piece = Array(whole[(index * size)..<min(whole.count, (index + 1) * size)])
        ip.fragmentOffset = index * size
        ip.moreFragments = index < count - 1
        if index == 0 {
            for key in ["udp.srcport", "udp.dstport", "udp.length", "tcp.srcport", "tcp.dstport"] {
                if let v = scratch.expected[key] { c.set(key, v[0]) }
            }
        }
        c.frame = ethernet(.ipv4, ipv4(ip, piece, into: &c), into: &c)
        return c
    }

    mutating func ipv6Upper(_ r: IPv6Repr, into c: inout BuiltFrame) -> (IPProtocol, [UInt8]) {
        let pseudo = IPPseudoHeader.ipv6(source: r.sourceAddress, destination: r.destinationAddress)
        switch int(0...2) {
        case 0: return (.tcp, tcp(pseudo, into: &c))
        case 1: return (.udp, udp(pseudo, into: &c))
        default:
            let id = rng.u16(), seq = rng.u16()
            let m: ICMPv6Message = chance(0.5) ? .echoRequest(identifier: id, sequenceNumber: seq)
                : .echoReply(identifier: id, sequenceNumber: seq)
            return (.icmpv6, icmpv6(m, payload(), source: r.sourceAddress, destination: r.destinationAddress, into: &c))
        }
    }

    mutating func ipv6Plain() -> BuiltFrame {
        var c = BuiltFrame(kind: "ipv6", frame: [])
        var r = ipv6Repr(.none)
        let (proto, upper) = ipv6Upper(r, into: &c)
        r.nextHeader = proto
        c.frame = ethernet(.ipv6, ipv6(r, upper, into: &c), into: &c)
        return c
    }

    /// Hop-by-hop / destination options (PadN), routing (type 0, no
    /// segments left) and atomic fragment headers in front of the upper layer.
    mutating func ipv6Extensions() -> BuiltFrame {
        var c = BuiltFrame(kind: "ipv6-ext", frame: [])
        var r = ipv6Repr(.none)
        let (proto, upper) = ipv6Upper(r, into: &c)
        var chain: [(IPProtocol, [UInt8])] = []  // (own type, bytes without next header)
        for position in 0..<int(1...3) {
            // Hop-by-hop options may only come first (RFC 8200 §4.1).
            switch position == 0 ? int(0...3) : int(1...3) {
            case 0: chain.append((.hopByHop, [0, 1, 4, 0, 0, 0, 0]))  // PadN(4)
            case 1: chain.append((.destinationOptions, [1, 1, 12] + [UInt8](repeating: 0, count: 12)))
            case 2: chain.append((.routing, [2, 0, 0, 0, 0, 0, 0] + ipv6().bytes))  // type 0, segleft 0, 1 address
            default:
                let id = rng.u32()
                chain.append((.fragment, [0, 0, 0] + withUnsafeBytes(of: id.bigEndian, Array.init)))
                c.add("ipv6.fraghdr.offset", "0")
                c.add("ipv6.fraghdr.more", "0")
                c.add("ipv6.fraghdr.ident", hx(id, 8))
            }
        }
        var bytes = upper
        var next = proto
        for (type, body) in chain.reversed() {
            bytes = [next.rawValue] + body + bytes
            next = type
        }
        r.nextHeader = next
        c.frame = ethernet(.ipv6, ipv6(r, bytes, into: &c), into: &c)
        return c
    }

    mutating func ipv6Fragment() -> BuiltFrame {
        var c = BuiltFrame(kind: "ipv6-fragment", frame: [])
        var r = ipv6Repr(.fragment)
        let offset = int(1...8000), more = chance(0.5), id = rng.u32()
        let nh: UInt8 = [6, 17, 58][int(0...2)]
        let header: [UInt8] = [nh, 0] + withUnsafeBytes(of: (UInt16(offset << 3) | (more ? 1 : 0)).bigEndian, Array.init)
            + withUnsafeBytes(of: id.bigEndian, Array.init)
        r.nextHeader = .fragment
        c.frame = ethernet(.ipv6, ipv6(r, header + payload(8...64), into: &c), into: &c)
        c.set("ipv6.fraghdr.offset", "\(offset)")
        c.set("ipv6.fraghdr.more", more.bit)
        c.set("ipv6.fraghdr.ident", hx(id, 8))
        return c
    }

    mutating func ndp() -> BuiltFrame {
        var c = BuiltFrame(kind: "ndp", frame: [])
        var r = ipv6Repr(.icmpv6)
        r.hopLimit = 255
        let target = ipv6()
        let ll = chance(0.75) ? mac() : nil
        let m: ICMPv6Message
        if chance(0.5) {
            r.destinationAddress = target.solicitedNodeMulticast
            m = .neighborSolicitation(targetAddress: target, sourceLinkLayerAddress: ll)
        } else {
            var flags = NeighborAdvertisementFlags()
            if chance(0.5) { flags.insert(.router) }
            if chance(0.5) { flags.insert(.solicited) }
            if chance(0.5) { flags.insert(.override) }
            m = .neighborAdvertisement(flags: flags, targetAddress: target, targetLinkLayerAddress: ll)
        }
        let body = icmpv6(m, [], source: r.sourceAddress, destination: r.destinationAddress, into: &c)
        c.frame = ethernet(.ipv6, ipv6(r, body, into: &c), into: &c)
        return c
    }

    mutating func icmpv6Error() -> BuiltFrame {
        var c = BuiltFrame(kind: "icmpv6-error", frame: [])
        var quote = BuiltFrame(kind: "quote", frame: [])
        let inner = ipv6Repr(.udp)
        let l4 = udp(.ipv6(source: inner.sourceAddress, destination: inner.destinationAddress), into: &quote)
        let original = ipv6(inner, l4, into: &quote)
        let quoted = Array(original.prefix(40 + 8))
        let r = ipv6Repr(.icmpv6)
        let m: ICMPv6Message
        switch int(0...2) {
        case 0: m = .packetTooBig(mtu: UInt32([1280, 1400, 1500, 9000][int(0...3)]))
        case 1: m = .destinationUnreachable(code: UInt8(int(0...6)))
        default: m = .timeExceeded(code: UInt8(int(0...1)))
        }
        let body = icmpv6(m, quoted, source: r.sourceAddress, destination: r.destinationAddress, into: &c)
        let packet = ipv6(r, body, into: &c)
        for key in ["ipv6.src", "ipv6.dst", "ipv6.nxt"] { c.add(key, quote.expected[key]![0]) }
        c.frame = ethernet(.ipv6, packet, into: &c)
        return c
    }

    mutating func ipip() throws -> BuiltFrame {
        var c = BuiltFrame(kind: "ipip", frame: [])
        var inner = BuiltFrame(kind: "inner", frame: [])
        let ip = ipv4Repr([IPProtocol.tcp, .udp, .icmp][int(0...2)], options: false)
        let pseudo = IPPseudoHeader.ipv4(source: ip.sourceAddress, destination: ip.destinationAddress)
        let l4: [UInt8]
        switch ip.protocol {
        case .tcp: l4 = tcp(pseudo, into: &c)
        case .udp: l4 = udp(pseudo, into: &c)
        default: l4 = icmp(.echoRequest(identifier: rng.u16(), sequenceNumber: rng.u16()), payload(), into: &c)
        }
        let datagram = ipv4(ip, l4, into: &inner)
        var buffer = [UInt8](repeating: 0xA5, count: 20) + datagram
        let src = ipv4(), dst = ipv4(), ttl = UInt8(int(2...255)), id = rng.u16()
        try buffer.write { b in
            _ = try IPIP.encapsulate(b, innerOffset: 20, source: src, destination: dst, timeToLive: ttl, identification: id)
        }
        // Outer header: TOS and DF copied from the inner one (RFC 2003 §3.1).
        let outer: [(String, String)] = [
            ("ip.version", "4"), ("ip.hdr_len", "20"), ("ip.dsfield.dscp", "\(ip.dscp)"), ("ip.dsfield.ecn", "\(ip.ecn)"),
            ("ip.len", "\(datagram.count + 20)"), ("ip.id", hx(id, 4)), ("ip.flags.rb", "0"),
            ("ip.flags.df", ip.dontFragment.bit), ("ip.flags.mf", "0"), ("ip.frag_offset", "0"), ("ip.ttl", "\(ttl)"),
            ("ip.proto", "4"), ("ip.checksum.status", "1"), ("ip.src", src.description), ("ip.dst", dst.description),
        ]
        for (key, value) in outer { c.expected[key] = [value] + inner.expected[key]! }
        c.frame = ethernet(.ipv4, buffer, into: &c)
        return c
    }

    // MARK: in-place rewrites, then tshark must still find every checksum good

    mutating func rewritten() throws -> BuiltFrame {
        var c: BuiltFrame
        switch int(0...5) {
        case 0, 1: c = ipv4Transport(kind: "ipv4-any")
        case 2: c = icmpEcho()
        case 3: c = ipv6Plain()
        case 4: c = ipv4Fragment()
        default: c = try ipip()
        }
        c.kind = "rewrite " + c.kind
        var frame = c.frame
        var p = try frame.read { b in try FrameParser().parse(b) }
        frame.write { b in
            if chance(0.5) {
                let m = mac()
                p.rewriteDestinationMAC(m, in: b)
                c.replace("eth.dst", m.description)
            }
            if chance(0.5) {
                let m = mac()
                p.rewriteSourceMAC(m, in: b)
                c.replace("eth.src", m.description)
            }
            if p.timeToLive > 1 && chance(0.7) {
                p.decrementTimeToLive(in: b)
                c.replace(p.isIPv4 ? "ip.ttl" : "ipv6.hlim", "\(p.timeToLive)")
            }
            let layer = p.protocol == .tcp ? "tcp" : "udp"
            if p.isIPv4 {
                let a = ipv4()
                let toDestination = chance(0.5)
                let side = toDestination ? "dst" : "src"
                if p.hasPorts && chance(0.5) {  // NAT in one step
                    let port = self.port()
                    if toDestination { p.rewriteIPv4Destination(a, port: port, in: b) } else { p.rewriteIPv4Source(a, port: port, in: b) }
                    c.replace("\(layer).\(side)port", "\(port)")
                } else {
                    if toDestination { p.rewriteIPv4Destination(a, in: b) } else { p.rewriteIPv4Source(a, in: b) }
                    if p.hasPorts && chance(0.5) {
                        let port = self.port()
                        if toDestination { p.rewriteDestinationPort(port, in: b) } else { p.rewriteSourcePort(port, in: b) }
                        c.replace("\(layer).\(side)port", "\(port)")
                    }
                }
                c.replace("ip.\(side)", a.description)
            } else if p.isIPv6 {
                let a = ipv6()
                if chance(0.5) {
                    p.rewriteIPv6Destination(a, in: b)
                    c.replace("ipv6.dst", a.description)
                } else {
                    p.rewriteIPv6Source(a, in: b)
                    c.replace("ipv6.src", a.description)
                }
                if p.hasPorts {
                    let port = self.port()
                    p.rewriteSourcePort(port, in: b)
                    c.replace("\(layer).srcport", "\(port)")
                }
            }
            if p.hasTransportHeader && (p.protocol == .icmp || p.protocol == .icmpv6)
                && [0, 8, 128, 129].contains(p.icmpType) {
                let id = rng.u16()
                p.rewriteICMPIdentifier(id, in: b)
                if p.protocol == .icmp { c.replace("icmp.ident", "\(id)") } else { c.replace("icmpv6.echo.identifier", hx(id, 4)) }
            }
        }
        c.frame = frame
        return c
    }

    /// The whole set: every kind several times, in a seeded order.
    mutating func all() -> [BuiltFrame] {
        var out: [BuiltFrame] = []
        let plan: [(Int, (inout FrameGen) throws -> BuiltFrame)] = [
            (20, { $0.arp() }), (40, { $0.ipv4Transport(kind: "ipv4-tcp") }),
            (30, { $0.ipv4Transport(kind: "ipv4-udp") }), (20, { $0.ipv4Transport(kind: "ipv4-options", options: true) }),
            (20, { $0.icmpEcho() }), (1, { $0.icmpAllZero() }), (20, { $0.icmpError(timeExceeded: false) }),
            (10, { $0.icmpError(timeExceeded: true) }), (20, { $0.ipv4Fragment() }), (30, { $0.ipv6Plain() }),
            (25, { $0.ipv6Extensions() }), (10, { $0.ipv6Fragment() }), (25, { $0.ndp() }), (10, { $0.icmpv6Error() }),
            (20, { try $0.ipip() }), (60, { try $0.rewritten() }),
        ]
        for (count, make) in plan {
            for _ in 0..<count {
                do { out.append(try make(&self)) } catch { Issue.record("building a frame failed: \(error)") }
            }
        }
        out.shuffle(using: &rng)
        return out
    }
}
