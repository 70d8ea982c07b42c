// scapy → Wire: scripts/crosscheck/gen_scapy.py builds packets with scapy
// (seeded) and writes each one's bytes and the fields scapy reads back;
// here every packet is parsed with Wire — the per-protocol views and Reprs,
// and FrameParser — and every field scapy reported is compared.
//
//   swift test --filter CrossCheckScapy
//   CROSSCHECK_SCAPY_SEED=7 swift test --filter CrossCheckScapy    # other cases

import Foundation
import Testing
import Wire

@Suite struct CrossCheckScapyTests {
    struct Case: Decodable {
        var id: Int
        var kind: String
        var hex: String
        var fields: [String: String]
        var error: String?
    }

    @Test func scapyToWire() throws {
        let seed = CrossCheck.seed("CROSSCHECK_SCAPY_SEED", default: 1071)
        let script = CrossCheck.packageRoot.appendingPathComponent("scripts/crosscheck/gen_scapy.py").path
        guard let out = try CrossCheck.run(CrossCheck.python, [script, "--seed", "\(seed)", "--count", "300"]) else {
            Issue.record("\(CrossCheck.python) not found: \(CrossCheck.installHint)")
            return
        }
        guard out.status == 0 else {
            Issue.record("gen_scapy.py failed (exit \(out.status)); if scapy is missing, \(CrossCheck.installHint):\n\(out.stderr)")
            return
        }
        var tally = CrossCheck.Tally()
        let decoder = JSONDecoder()
        for line in out.stdout.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let c = try decoder.decode(Case.self, from: Data(line))
            tally.cases += 1
            tally.casesByKind[c.kind.hasPrefix("malformed:") ? "malformed" : c.kind, default: 0] += 1
            check(c, &tally)
        }
        print(tally.report("scapy → Wire (seed \(seed))"))
        #expect(tally.cases >= 200, "only \(tally.cases) cases ran")
        #expect(tally.mismatches.isEmpty,
                "\(tally.mismatches.count) mismatches:\n\(tally.mismatches.prefix(40).joined(separator: "\n"))")
    }

    func check(_ c: Case, _ tally: inout CrossCheck.Tally) {
        let frame = bytes(hex: c.hex)
        let id = "#\(c.id) \(c.kind)"
        if let reason = c.error {
            let got = wireError(frame) { _ = try FrameParser().parse($0) }
            tally.compare(id, "FrameParser error", expected: reason, got: got?.reason ?? "accepted")
            if reason == "bad-checksum" {  // the one check a parser may be told to skip
                let lax = wireError(frame) { _ = try FrameParser(verifiesIPv4Checksum: false).parse($0) }
                tally.compare(id, "FrameParser(verifiesIPv4Checksum: false)", expected: "accepted",
                              got: lax?.reason ?? "accepted")
            }
            return
        }
        // The per-protocol views and Reprs.
        var wire: [String: String] = [:]
        if let error = wireError(frame, { wire = try Self.viewFields($0) }) {
            tally.mismatches.append("\(id): views refused the packet: \(error.reason)  [\(c.hex)]")
            return
        }
        // FrameParser, which must agree wherever it records the same thing.
        var parsed: ParsedFrame?
        if let error = wireError(frame, { parsed = try FrameParser().parse($0) }) {
            tally.mismatches.append("\(id): FrameParser refused the packet: \(error.reason)  [\(c.hex)]")
            return
        }
        let summary = Self.parsedFields(parsed!)
        let before = tally.mismatches.count
        for (key, expected) in c.fields.sorted(by: { $0.key < $1.key }) {
            tally.compare(id, key, expected: expected, got: wire[key])
            if let value = summary[key] { tally.compare(id, "ParsedFrame " + key, expected: expected, got: value) }
        }
        if tally.mismatches.count > before { tally.mismatches.append("\(id): packet was \(c.hex)") }
    }

    // MARK: Wire's views and Reprs, under gen_scapy.py's names

    static func viewFields(_ b: UnsafeRawBufferPointer) throws(WireError) -> [String: String] {
        var f: [String: String] = [:]
        let eth = try EthernetHeader(validating: b)
        let e = EthernetRepr(parsing: eth)
        f["frame.len"] = "\(b.count)"
        f["eth.dst"] = e.destination.description
        f["eth.src"] = e.source.description
        f["eth.tagged"] = (e.vlanTag != nil).bit
        if let tag = e.vlanTag {
            f["vlan.pcp"] = "\(tag.priority)"
            f["vlan.dei"] = tag.dropEligible.bit
            f["vlan.vid"] = "\(tag.identifier)"
        }
        f["eth.type"] = "\(e.etherType.rawValue)"
        f["eth.l3offset"] = "\(eth.headerLength)"
        switch e.etherType {
        case .arp:
            let a = try ARPHeader(validating: eth.payload)
            let r = ARPRepr(parsing: a)
            f["arp.htype"] = "\(a.hardwareType)"
            f["arp.ptype"] = "\(a.protocolType.rawValue)"
            f["arp.hlen"] = "\(a.hardwareLength)"
            f["arp.plen"] = "\(a.protocolLength)"
            f["arp.op"] = "\(r.operation.rawValue)"
            f["arp.sha"] = r.senderHardwareAddress.description
            f["arp.spa"] = r.senderProtocolAddress.description
            f["arp.tha"] = r.targetHardwareAddress.description
            f["arp.tpa"] = r.targetProtocolAddress.description
        case .ipv4:
            try ipv4Fields(eth.payload, at: eth.headerLength, prefix: "", into: &f)
        case .ipv6:
            try ipv6Fields(eth.payload, at: eth.headerLength, into: &f)
        default:
            break
        }
        return f
    }

    static func ipv4Fields(_ b: UnsafeRawBufferPointer, at l3: Int, prefix: String,
                           into f: inout [String: String]) throws(WireError) {
        let ip = try IPv4Header(validating: b)
        let r = IPv4Repr(parsing: ip)
        let p = prefix + "ip."
        f[p + "version"] = "\(ip.version)"
        f[p + "hlen"] = "\(r.headerLength)"
        f[p + "dscp"] = "\(r.dscp)"
        f[p + "ecn"] = "\(r.ecn)"
        f[p + "len"] = "\(r.bufferLength)"
        f[p + "id"] = "\(r.identification)"
        f[p + "rf"] = ip.reservedFlag.bit
        f[p + "df"] = r.dontFragment.bit
        f[p + "mf"] = r.moreFragments.bit
        f[p + "frag"] = "\(r.fragmentOffset)"
        f[p + "ttl"] = "\(r.timeToLive)"
        f[p + "proto"] = "\(r.protocol.rawValue)"
        f[p + "chksum"] = "\(ip.headerChecksum)"
        f[p + "chksum_ok"] = ip.isChecksumValid.bit
        f[p + "src"] = r.sourceAddress.description
        f[p + "dst"] = r.destinationAddress.description
        f[p + "options"] = r.options.hex
        f[p + "payload_len"] = "\(r.payloadLength)"
        f[p + "l4offset"] = "\(l3 + ip.headerLength)"
        guard r.fragmentOffset == 0 else {
            f[prefix + "l4.present"] = "0"
            return
        }
        let whole = !r.moreFragments
        switch r.protocol {
        case .tcp:
            try tcpFields(ip.payload, pseudoHeader: whole ? ip.pseudoHeader : nil, prefix: prefix, into: &f)
        case .udp:
            try udpFields(ip.payload, pseudoHeader: whole ? ip.pseudoHeader : nil, prefix: prefix, into: &f)
        case .icmp:
            try icmpFields(ip.payload, prefix: prefix, into: &f)
        case .ipip where prefix.isEmpty:
            f["l4.present"] = "0"
            let d = try IPIP.decapsulate(b)
            try ipv4Fields(d.inner.bytes, at: l3 + d.innerOffset, prefix: "inner.", into: &f)
        default:
            f[prefix + "l4.present"] = "0"
        }
    }

    /// `pseudoHeader` nil: a first fragment, whose checksum covers bytes
    /// that are not here.
    static func tcpFields(_ b: UnsafeRawBufferPointer, pseudoHeader: IPPseudoHeader?, prefix: String,
                          into f: inout [String: String]) throws(WireError) {
        let t = try TCPHeader(validating: b)
        let r = TCPRepr(parsing: t)
        let p = prefix + "tcp."
        f[prefix + "l4.present"] = "1"
        f[p + "sport"] = "\(r.sourcePort)"
        f[p + "dport"] = "\(r.destinationPort)"
        f[p + "seq"] = "\(r.sequenceNumber)"
        f[p + "ack"] = "\(r.acknowledgmentNumber)"
        f[p + "hlen"] = "\(r.headerLength)"
        f[p + "reserved"] = "\(t.reserved)"
        f[p + "flags"] = "\(r.flags.rawValue)"
        f[p + "window"] = "\(r.window)"
        f[p + "chksum"] = "\(t.checksum)"
        f[p + "urgptr"] = "\(r.urgentPointer)"
        f[p + "options"] = r.options.hex
        f[p + "payload_len"] = "\(r.payloadLength)"
        if let pseudoHeader { f[p + "chksum_ok"] = t.isChecksumValid(pseudoHeader: pseudoHeader).bit }
    }

    static func udpFields(_ b: UnsafeRawBufferPointer, pseudoHeader: IPPseudoHeader?, prefix: String,
                          into f: inout [String: String]) throws(WireError) {
        // A first fragment's UDP Length describes the whole datagram, more
        // than this packet holds, so `UDPHeader(validating:)` refuses it
        // (`.badLength`) by design; read the 8 header bytes unchecked then.
        let u: UDPHeader
        if pseudoHeader == nil {
            guard b.count >= 8 else { throw .truncated }
            u = UDPHeader(unchecked: b)
        } else {
            u = try UDPHeader(validating: b)
        }
        let p = prefix + "udp."
        f[prefix + "l4.present"] = "1"
        f[p + "sport"] = "\(u.sourcePort)"
        f[p + "dport"] = "\(u.destinationPort)"
        f[p + "len"] = "\(u.length)"
        f[p + "chksum"] = "\(u.checksum)"
        if let pseudoHeader {
            let r = UDPRepr(parsing: u)
            f[p + "sport"] = "\(r.sourcePort)"
            f[p + "dport"] = "\(r.destinationPort)"
            f[p + "len"] = "\(r.bufferLength)"
            f[p + "chksum_ok"] = u.isChecksumValid(pseudoHeader: pseudoHeader).bit
        }
    }

    static func icmpFields(_ b: UnsafeRawBufferPointer, prefix: String, into f: inout [String: String]) throws(WireError) {
        let h = try ICMPv4Header(validating: b)
        let r = ICMPv4Repr(parsing: h)
        let p = prefix + "icmp."
        f[prefix + "l4.present"] = "1"
        f[p + "type"] = "\(h.type.rawValue)"
        f[p + "code"] = "\(h.code)"
        f[p + "chksum"] = "\(h.checksum)"
        f[p + "chksum_ok"] = h.isChecksumValid.bit
        f[p + "payload_len"] = "\(r.payloadLength)"
        func rest(_ type: UInt8, _ rest: UInt32) {
            switch type {
            case 0, 8:
                f[p + "id"] = "\(rest >> 16)"
                f[p + "seq"] = "\(rest & 0xFFFF)"
            case 3:
                f[p + "reserved"] = "\(rest >> 24)"
                f[p + "length"] = "\(rest >> 16 & 0xFF)"
                f[p + "nexthopmtu"] = "\(rest & 0xFFFF)"
            case 11:
                f[p + "reserved"] = "\(rest >> 24)"
                f[p + "length"] = "\(rest >> 16 & 0xFF)"
                f[p + "unused"] = "\(rest & 0xFFFF)"
            default:
                break
            }
        }
        switch r.message {
        case let .echoRequest(id, seq): rest(8, UInt32(id) << 16 | UInt32(seq))
        case let .echoReply(id, seq): rest(0, UInt32(id) << 16 | UInt32(seq))
        case let .destinationUnreachable(_, mtu): rest(3, UInt32(mtu))
        case .timeExceeded: rest(11, 0)
        case let .other(type, _, restOfHeader): rest(type.rawValue, restOfHeader)
        }
        // The quoted datagram of an error: its IP header and the first 8
        // bytes. It is cut short, so its Total Length points past the
        // message and `IPv4Header(validating:)` refuses it (`.badLength`):
        // read the header unchecked after checking that it is there.
        if h.type.isError {
            let q = h.payload
            if q.count >= 20, q[0] >> 4 == 4, Int(q[0] & 0x0F) * 4 <= q.count {
                let ip = IPv4Header(unchecked: q)
                f[p + "quoted.src"] = ip.sourceAddress.description
                f[p + "quoted.dst"] = ip.destinationAddress.description
                f[p + "quoted.proto"] = "\(ip.protocol.rawValue)"
                let l4 = ip.headerLength
                if (ip.protocol == .tcp || ip.protocol == .udp) && q.count >= l4 + 4 {
                    f[p + "quoted.sport"] = "\(UInt16(q[l4]) << 8 | UInt16(q[l4 + 1]))"
                    f[p + "quoted.dport"] = "\(UInt16(q[l4 + 2]) << 8 | UInt16(q[l4 + 3]))"
                }
            }
        }
    }

    static func ipv6Fields(_ b: UnsafeRawBufferPointer, at l3: Int, into f: inout [String: String]) throws(WireError) {
        let ip = try IPv6Header(validating: b)
        let r = IPv6Repr(parsing: ip)
        f["ip6.version"] = "\(ip.version)"
        f["ip6.tc"] = "\(r.trafficClass)"
        f["ip6.fl"] = "\(r.flowLabel)"
        f["ip6.plen"] = "\(r.payloadLength)"
        f["ip6.nh"] = "\(r.nextHeader.rawValue)"
        f["ip6.hlim"] = "\(r.hopLimit)"
        f["ip6.src"] = r.sourceAddress.hex
        f["ip6.dst"] = r.destinationAddress.hex
        let u = try ip.upperLayer()
        f["ip6.upper"] = "\(u.protocol.rawValue)"
        f["ip6.l4offset"] = "\(l3 + u.offset)"
        f["ip6.frag"] = u.isFragment.bit
        if u.isFragment {
            f["ip6.frag.offset"] = "\(u.fragmentOffset)"
            f["ip6.frag.m"] = u.moreFragments.bit
            f["ip6.frag.id"] = "\(u.fragmentIdentification)"
        }
        guard u.fragmentOffset == 0 else {
            f["l4.present"] = "0"
            return
        }
        let upper = ip.bytes.wireSliceForTests(u.offset..<u.end)
        let pseudo: IPPseudoHeader? = u.moreFragments ? nil : ip.pseudoHeader
        switch u.protocol {
        case .tcp:
            try tcpFields(upper, pseudoHeader: pseudo, prefix: "", into: &f)
        case .udp:
            try udpFields(upper, pseudoHeader: pseudo, prefix: "", into: &f)
        case .icmpv6:
            let h = try ICMPv6Header(validating: upper)
            let m = ICMPv6Repr(parsing: h)
            f["l4.present"] = "1"
            f["icmp6.type"] = "\(h.type.rawValue)"
            f["icmp6.code"] = "\(h.code)"
            f["icmp6.chksum"] = "\(h.checksum)"
            f["icmp6.chksum_ok"] = h.isChecksumValid(source: ip.sourceAddress, destination: ip.destinationAddress).bit
            f["icmp6.payload_len"] = "\(m.payloadLength)"
            switch m.message {
            case let .echoRequest(id, seq), let .echoReply(id, seq):
                f["icmp6.id"] = "\(id)"
                f["icmp6.seq"] = "\(seq)"
            case let .neighborSolicitation(target, ll):
                f["icmp6.tgt"] = target.hex
                f["icmp6.lladdr"] = ll?.description ?? "none"
            case let .neighborAdvertisement(flags, target, ll):
                f["icmp6.tgt"] = target.hex
                f["icmp6.R"] = flags.contains(.router).bit
                f["icmp6.S"] = flags.contains(.solicited).bit
                f["icmp6.O"] = flags.contains(.override).bit
                f["icmp6.lladdr"] = ll?.description ?? "none"
            case let .packetTooBig(mtu):
                f["icmp6.mtu"] = "\(mtu)"
            case .destinationUnreachable, .timeExceeded:
                f["icmp6.length"] = "0"
                f["icmp6.unused"] = "0"
            case let .parameterProblem(_, pointer):
                f["icmp6.pointer"] = "\(pointer)"
            case let .other(type, _, rest):
                switch type.rawValue {
                case 1, 3:
                    f["icmp6.length"] = "\(rest >> 24)"
                    f["icmp6.unused"] = "\(rest & 0xFF_FFFF)"
                case 2: f["icmp6.mtu"] = "\(rest)"
                case 128, 129:
                    f["icmp6.id"] = "\(rest >> 16)"
                    f["icmp6.seq"] = "\(rest & 0xFFFF)"
                default: break
                }
            }
        default:
            f["l4.present"] = "0"
        }
    }

    // MARK: FrameParser's summary, under the same names

    static func parsedFields(_ p: ParsedFrame) -> [String: String] {
        var f: [String: String] = [:]
        f["frame.len"] = "\(p.frameLength)"
        f["eth.dst"] = p.destinationMAC.description
        f["eth.src"] = p.sourceMAC.description
        f["eth.tagged"] = p.hasVLANTag.bit
        if let tag = p.vlanTag {
            f["vlan.pcp"] = "\(tag.priority)"
            f["vlan.dei"] = tag.dropEligible.bit
            f["vlan.vid"] = "\(tag.identifier)"
        }
        f["eth.type"] = "\(p.etherType.rawValue)"
        f["eth.l3offset"] = "\(p.l3Offset)"
        if p.etherType == .arp { f["arp.op"] = "\(p.arpOperation.rawValue)" }
        let transport = p.hasTransportHeader
        if p.isIPv4 {
            f["ip.hlen"] = "\(p.ipHeaderLength)"
            f["ip.len"] = "\(p.ipLength)"
            f["ip.ttl"] = "\(p.timeToLive)"
            f["ip.proto"] = "\(p.protocol.rawValue)"
            f["ip.src"] = p.sourceIPv4.description
            f["ip.dst"] = p.destinationIPv4.description
            f["ip.frag"] = "\(p.fragmentOffset)"
            f["ip.l4offset"] = "\(p.l4Offset)"
            f["ip.payload_len"] = "\(p.l4Length)"
        } else if p.isIPv6 {
            f["ip6.plen"] = "\(p.ipLength - 40)"
            f["ip6.hlim"] = "\(p.timeToLive)"
            f["ip6.src"] = p.sourceIPv6.hex
            f["ip6.dst"] = p.destinationIPv6.hex
            f["ip6.upper"] = "\(p.protocol.rawValue)"
            f["ip6.l4offset"] = "\(p.l4Offset)"
            f["ip6.frag"] = p.isFragment.bit
            if p.isFragment { f["ip6.frag.offset"] = "\(p.fragmentOffset)" }
        }
        if p.ipVersion != 0 { f["l4.present"] = transport.bit }
        if transport && p.protocol == .tcp {
            f["tcp.sport"] = "\(p.sourcePort)"
            f["tcp.dport"] = "\(p.destinationPort)"
            f["tcp.flags"] = "\(p.tcpFlags.rawValue)"
        } else if transport && p.protocol == .udp {
            f["udp.sport"] = "\(p.sourcePort)"
            f["udp.dport"] = "\(p.destinationPort)"
        } else if transport && p.isIPv4 && p.protocol == .icmp {
            f["icmp.type"] = "\(p.icmpType)"
            f["icmp.code"] = "\(p.icmpCode)"
            if p.icmpType == 0 || p.icmpType == 8 { f["icmp.id"] = "\(p.icmpIdentifier)" }
        } else if transport && p.isIPv6 && p.protocol == .icmpv6 {
            f["icmp6.type"] = "\(p.icmpType)"
            f["icmp6.code"] = "\(p.icmpCode)"
            if p.icmpType == 128 || p.icmpType == 129 { f["icmp6.id"] = "\(p.icmpIdentifier)" }
        }
        return f
    }
}

extension UnsafeRawBufferPointer {
    /// `self[range]` as a buffer of its own (Wire's `wireSlice` is internal).
    func wireSliceForTests(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
}
