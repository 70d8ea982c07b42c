// What one fuzz input goes through: every parser of the Wire module gets the
// bytes, and whatever a parser accepts is checked against an oracle —
// accessors that must not trap, Repr parse → emit → parse round trips,
// FrameParser against the per-protocol views, in-place rewrites that must
// keep valid checksums valid and ParsedFrame describing the frame, the
// optimised checksum against a byte-at-a-time RFC 1071 sum, text forms
// that must parse back, pcapng that must re-encode to the same packets.
// A broken oracle is a `fatalError` (libFuzzer keeps the input; the
// standalone harness writes it to a file).

import Wire

/// Stops the run on a broken property.
func oracle(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
    if !condition { fatalError("wire-fuzz: \(message())", line: line) }
}

/// A byte buffer for emitting into, filled with 0xa5 first.
@inline(__always) func poisoned(_ count: Int) -> [UInt8] { [UInt8](repeating: 0xA5, count: count) }

extension UnsafeRawBufferPointer {
    @inline(__always) func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
    /// A pseudo-random but input-derived value (for rewrite targets).
    func word(_ offset: Int) -> UInt32 {
        var v: UInt32 = 0x9E37_79B9
        for i in 0..<Swift.min(4, count) { v = v &* 31 &+ UInt32(self[(offset &+ i) % count]) }
        return v
    }
}

enum WireFuzz {
    static func one(_ data: UnsafeRawBufferPointer) {
        checksums(data)
        ethernet(data)
        arp(data)
        ipv4(data)
        ipv6(data)
        icmpv4(data)
        icmpv6(data)
        udp(data)
        tcp(data)
        ipip(data)
        ipvsSync(data)
        frames(data)
        if data.count <= 64 { text(data) }
        pcapng(data)
    }

    // MARK: checksums

    /// RFC 1071, one 16-bit big-endian word at a time, end-around carry.
    static func referenceSum(_ b: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        var acc = UInt32(initial)
        var i = 0
        while i < b.count {
            let word = UInt32(b[i]) << 8 | (i + 1 < b.count ? UInt32(b[i + 1]) : 0)
            acc += word
            acc = (acc & 0xFFFF) + (acc >> 16)
            i += 2
        }
        return UInt16(acc)
    }

    static func checksums(_ b: UnsafeRawBufferPointer) {
        let initial: UInt16 = b.count >= 2 ? UInt16(b[0]) << 8 | UInt16(b[1]) : 0
        oracle(InternetChecksum.sum(b) == referenceSum(b), "sum differs from RFC 1071 over \(b.count) bytes")
        oracle(InternetChecksum.sum(b, initial: initial) == referenceSum(b, initial: initial), "sum with initial differs")
        if b.count >= 1 {
            let odd = b.slice(1..<b.count)  // an unaligned start
            oracle(InternetChecksum.sum(odd) == referenceSum(odd), "unaligned sum differs")
        }
        if b.count >= 20 {
            let h = b.slice(0..<20)
            oracle(InternetChecksum.headerSum(h) == referenceSum(h), "20-byte headerSum differs")
        }
        // RFC 1624: a region made valid, then one word changed and the
        // checksum updated incrementally, stays valid (unless it became all
        // zero, where one's complement has no checksum but 0xFFFF).
        let n = b.count & ~1
        guard n >= 6 else { return }
        var region = Array(b[0..<n])
        region[0] = 0
        region[1] = 0
        let c = region.withUnsafeBytes { InternetChecksum.checksum($0) }
        region[0] = UInt8(c >> 8)
        region[1] = UInt8(c & 0xFF)
        let k = 2 + Int(b[2]) % ((n - 2) / 2) * 2
        let old = UInt16(region[k]) << 8 | UInt16(region[k + 1])
        let new = UInt16(b[n - 1]) << 8 | UInt16(b[n - 2])
        region[k] = UInt8(new >> 8)
        region[k + 1] = UInt8(new & 0xFF)
        let updated = InternetChecksum.update(c, old: old, new: new)
        region[0] = UInt8(updated >> 8)
        region[1] = UInt8(updated & 0xFF)
        if region[2...].contains(where: { $0 != 0 }) {
            oracle(region.withUnsafeBytes { InternetChecksum.sum($0) } == 0xFFFF, "RFC 1624 update left an invalid checksum")
        }
    }

    // MARK: per-protocol views and Reprs

    static func ethernet(_ b: UnsafeRawBufferPointer) {
        guard let h = try? EthernetHeader(validating: b) else { return }
        let r = EthernetRepr(parsing: h)
        oracle(h.headerLength == (h.hasVLANTag ? 18 : 14) && h.payload.count == b.count - h.headerLength, "Ethernet lengths")
        oracle(r.headerLength == h.headerLength, "EthernetRepr length")
        var out = poisoned(r.headerLength)
        out.withUnsafeMutableBytes { r.emit(into: EthernetMutableHeader(unchecked: $0)) }
        let again = out.withUnsafeBytes { try? EthernetHeader(validating: $0) }.map { _ in
            out.withUnsafeBytes { EthernetRepr(parsing: EthernetHeader(unchecked: $0)) }
        }
        oracle(again == r, "EthernetRepr round trip")
        var copy = Array(b)
        copy.withUnsafeMutableBytes { m in
            guard let v = try? EthernetMutableHeader(validating: m) else { return oracle(false, "mutable Ethernet refused") }
            v.destination = r.source
            // Any type but a tag's TPID (that would move the header: not a setter's job).
            let type = UInt16(truncatingIfNeeded: b.word(0))
            v.etherType = EtherType(type == 0x8100 || type == 0x88A8 ? 0x0800 : type)
            if let tag = r.vlanTag { v.vlanTag = VLANTag(tci: ~tag.tci) }
            oracle(v.destination == r.source && v.readOnly.headerLength == h.headerLength, "Ethernet setters")
        }
    }

    static func arp(_ b: UnsafeRawBufferPointer) {
        guard let h = try? ARPHeader(validating: b) else { return }
        let r = ARPRepr(parsing: h)
        oracle(h.hardwareType == 1 && h.protocolType == .ipv4 && h.hardwareLength == 6 && h.protocolLength == 4, "ARP checks")
        var out = poisoned(r.bufferLength)
        out.withUnsafeMutableBytes { r.emit(into: ARPMutableHeader(unchecked: $0)) }
        let again = out.withUnsafeBytes { (try? ARPHeader(validating: $0)).map(ARPRepr.init(parsing:)) }
        oracle(again == r, "ARPRepr round trip")
        out.withUnsafeMutableBytes { m in
            guard let v = try? ARPMutableHeader(validating: m) else { return oracle(false, "mutable ARP refused") }
            v.operation = ARPOperation(UInt16(truncatingIfNeeded: b.word(0)))
            v.targetProtocolAddress = r.senderProtocolAddress
            oracle(v.readOnly.targetProtocolAddress == r.senderProtocolAddress && v.hardwareType == 1, "ARP setters")
        }
    }

    static func ipv4(_ b: UnsafeRawBufferPointer) {
        guard let h = try? IPv4Header(validating: b) else { return }
        let r = IPv4Repr(parsing: h)
        oracle(h.version == 4 && h.headerLength >= 20 && h.headerLength <= 60, "IPv4 header length")
        oracle(h.options.count == h.headerLength - 20 && h.payload.count == h.totalLength - h.headerLength, "IPv4 slices")
        oracle(h.header.count == h.headerLength, "IPv4 header slice")
        _ = (h.dscp, h.ecn, h.identification, h.reservedFlag, h.isFragment, h.isNonFirstFragment, h.pseudoHeader)
        if h.isChecksumValid { oracle(InternetChecksum.sum(h.header) == 0xFFFF, "IPv4 checksum validity") }
        _ = h.computedChecksum
        // Re-emit with the same payload.
        var out = poisoned(r.headerLength) + Array(h.payload)
        out.withUnsafeMutableBytes { r.emit(into: IPv4MutableHeader(unchecked: $0)) }
        out.withUnsafeBytes { o in
            guard let again = try? IPv4Header(validating: o) else { return oracle(false, "emitted IPv4 refused") }
            oracle(IPv4Repr(parsing: again) == r, "IPv4Repr round trip")
            oracle(again.isChecksumValid, "emitted IPv4 checksum")
        }
        // Mutable view: setters, then incremental helpers keep the checksum valid.
        out.withUnsafeMutableBytes { m in
            guard let v = try? IPv4MutableHeader(validating: m) else { return oracle(false, "mutable IPv4 refused") }
            v.rewriteDestinationAddress(IPv4Address(rawValue: b.word(1)))
            v.rewriteSourceAddress(IPv4Address(rawValue: b.word(2)))
            if v.timeToLive > 0 { v.decrementTimeToLive() }
            oracle(v.readOnly.isChecksumValid, "IPv4 incremental rewrites broke the checksum")
            v.dscp = UInt8(truncatingIfNeeded: b.word(3)) & 63
            v.ecn = UInt8(truncatingIfNeeded: b.word(4)) & 3
            v.dontFragment.toggle()
            v.fragmentOffset = Int(b.word(5) & 0x1FFF) << 3
            v.fillChecksum()
            oracle(v.readOnly.isChecksumValid && v.headerLength == r.headerLength, "IPv4 setters + fillChecksum")
        }
    }

    static func ipv6(_ b: UnsafeRawBufferPointer) {
        guard let h = try? IPv6Header(validating: b) else { return }
        let r = IPv6Repr(parsing: h)
        oracle(h.payload.count == h.payloadLength && h.version == 6, "IPv6 payload")
        if let u = try? h.upperLayer() {
            oracle(u.offset >= 40 && u.offset <= u.end && u.end == 40 + h.payloadLength && u.end <= b.count,
                   "IPv6 upper layer at \(u.offset)..<\(u.end) of \(b.count)")
            oracle(u.fragmentOffset == 0 || u.isFragment, "IPv6 fragment offset without a fragment header")
        }
        var out = poisoned(40) + Array(h.payload)
        out.withUnsafeMutableBytes { r.emit(into: IPv6MutableHeader(unchecked: $0)) }
        let again = out.withUnsafeBytes { (try? IPv6Header(validating: $0)).map(IPv6Repr.init(parsing:)) }
        oracle(again == r, "IPv6Repr round trip")
        out.withUnsafeMutableBytes { m in
            guard let v = try? IPv6MutableHeader(validating: m) else { return oracle(false, "mutable IPv6 refused") }
            v.trafficClass = ~r.trafficClass
            v.flowLabel = b.word(1)
            if v.hopLimit > 0 { v.decrementHopLimit() }
            oracle(v.trafficClass == ~r.trafficClass && v.flowLabel == b.word(1) & 0xF_FFFF && v.version == 6,
                   "IPv6 setters")
        }
    }

    static func icmpv4(_ b: UnsafeRawBufferPointer) {
        guard let h = try? ICMPv4Header(validating: b) else { return }
        let r = ICMPv4Repr(parsing: h)
        _ = (h.type.isError, h.code, h.restOfHeader, h.identifier, h.sequenceNumber, h.nextHopMTU, h.computedChecksum)
        oracle(r.bufferLength == b.count, "ICMPv4Repr length")
        var out = poisoned(8) + Array(h.payload)
        out.withUnsafeMutableBytes { r.emit(into: ICMPv4MutableHeader(unchecked: $0)) }
        out.withUnsafeMutableBytes { m in
            guard let v = try? ICMPv4MutableHeader(validating: m) else { return oracle(false, "emitted ICMPv4 refused") }
            oracle(ICMPv4Repr(parsing: v.readOnly) == r, "ICMPv4Repr round trip")
            oracle(v.readOnly.isChecksumValid, "emitted ICMPv4 checksum")
            v.rewriteIdentifier(UInt16(truncatingIfNeeded: b.word(0)))
            oracle(v.readOnly.isChecksumValid || icmpv4AllZero(v.readOnly.bytes),
                   "ICMPv4 identifier rewrite broke the checksum")
        }
    }

    static func icmpv6(_ b: UnsafeRawBufferPointer) {
        guard let h = try? ICMPv6Header(validating: b) else { return }
        let r = ICMPv6Repr(parsing: h)
        _ = (h.type.isError, h.code, h.restOfHeader, h.mtu, h.pointer, h.neighborAdvertisementFlags, h.targetAddress,
             h.options.count, h.sourceLinkLayerAddress, h.targetLinkLayerAddress)
        let src = IPv6Address(high: UInt64(b.word(0)), low: UInt64(b.word(4)))
        let dst = IPv6Address.loopback
        var out = poisoned(r.headerLength) + (r.payloadLength > 0 ? Array(h.payload) : [])
        oracle(out.count == r.bufferLength, "ICMPv6Repr length \(r.bufferLength) for a \(b.count)-byte message")
        out.withUnsafeMutableBytes { r.emit(into: ICMPv6MutableHeader(unchecked: $0), source: src, destination: dst) }
        out.withUnsafeBytes { o in
            guard let again = try? ICMPv6Header(validating: o) else { return oracle(false, "emitted ICMPv6 refused") }
            oracle(ICMPv6Repr(parsing: again) == r, "ICMPv6Repr round trip")
            oracle(again.isChecksumValid(source: src, destination: dst), "emitted ICMPv6 checksum")
        }
        out.withUnsafeMutableBytes { m in
            guard let v = try? ICMPv6MutableHeader(validating: m) else { return oracle(false, "mutable ICMPv6 refused") }
            v.identifier = ~v.identifier
            v.fillChecksum(source: dst, destination: src)
            oracle(v.readOnly.isChecksumValid(source: dst, destination: src), "ICMPv6 fillChecksum")
        }
    }

    static func udp(_ b: UnsafeRawBufferPointer) {
        guard let h = try? UDPHeader(validating: b) else { return }
        let r = UDPRepr(parsing: h)
        let pseudo = IPPseudoHeader.ipv4(source: IPv4Address(rawValue: b.word(0)), destination: IPv4Address(rawValue: b.word(3)))
        oracle(h.datagram.count == h.length && h.payload.count == h.length - 8, "UDP slices")
        _ = (h.computedChecksum(pseudoHeader: pseudo), h.isChecksumValid(pseudoHeader: pseudo))
        var out = poisoned(8) + Array(h.payload)
        out.withUnsafeMutableBytes { r.emit(into: UDPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
        out.withUnsafeMutableBytes { m in
            guard let v = try? UDPMutableHeader(validating: m) else { return oracle(false, "emitted UDP refused") }
            oracle(UDPRepr(parsing: v.readOnly) == r, "UDPRepr round trip")
            oracle(v.readOnly.isChecksumValid(pseudoHeader: pseudo) && v.checksum != 0, "emitted UDP checksum")
            v.rewriteSourcePort(UInt16(truncatingIfNeeded: b.word(1)))
            v.rewriteDestinationPort(UInt16(truncatingIfNeeded: b.word(2)))
            v.adjustChecksum(addressChangedFrom: IPv4Address(rawValue: b.word(0)), to: .broadcast)
            let moved = IPPseudoHeader.ipv4(source: .broadcast, destination: IPv4Address(rawValue: b.word(3)))
            oracle(v.readOnly.isChecksumValid(pseudoHeader: moved), "UDP incremental rewrites broke the checksum")
        }
    }

    /// IPVS sync v1: a message that validates walks without error, and
    /// every entry survives emit → parse (unknown options are not re-emitted).
    static func ipvsSync(_ b: UnsafeRawBufferPointer) {
        guard let m = try? IPVSSyncMessage(validating: b) else { return }
        var entries: [IPVSSyncEntry] = []
        do { try m.forEachEntry { entries.append($0) } } catch { return oracle(false, "validated IPVS sync message failed its walk") }
        oracle(entries.count == m.count && m.size == b.count, "IPVS sync count and size")
        var out = poisoned(IPVSSync.headerLength + entries.count * 64 + 64)
        out.withUnsafeMutableBytes { buffer in
            var w = IPVSSyncWriter(into: buffer, syncID: m.syncID)
            for var e in entries {
                e.hasUnknownMandatoryOption = false
                oracle(w.append(e), "IPVS sync entry did not fit its own size")
            }
            guard let again = try? IPVSSyncMessage(validating: UnsafeRawBufferPointer(rebasing: buffer[0..<w.length])) else {
                return oracle(false, "emitted IPVS sync message refused")
            }
            var k = 0
            try? again.forEachEntry { e in
                var want = entries[k]
                want.hasUnknownMandatoryOption = false
                oracle(e == want, "IPVS sync entry round trip")
                k += 1
            }
            oracle(k == entries.count && again.syncID == m.syncID, "IPVS sync message round trip")
        }
    }

    static func tcp(_ b: UnsafeRawBufferPointer) {
        guard let h = try? TCPHeader(validating: b) else { return }
        let r = TCPRepr(parsing: h)
        oracle(h.options.count == h.headerLength - 20 && h.payload.count == b.count - h.headerLength, "TCP slices")
        _ = (h.reserved, h.flags.description, h.urgentPointer)
        let pseudo = IPPseudoHeader.ipv6(source: IPv6Address(high: UInt64(b.word(0)), low: 1), destination: .loopback)
        var out = poisoned(r.headerLength) + Array(h.payload)
        out.withUnsafeMutableBytes { r.emit(into: TCPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
        out.withUnsafeMutableBytes { m in
            guard let v = try? TCPMutableHeader(validating: m) else { return oracle(false, "emitted TCP refused") }
            oracle(TCPRepr(parsing: v.readOnly) == r, "TCPRepr round trip")
            oracle(v.readOnly.isChecksumValid(pseudoHeader: pseudo), "emitted TCP checksum")
            v.rewriteSourcePort(UInt16(truncatingIfNeeded: b.word(1)))
            v.rewriteDestinationPort(UInt16(truncatingIfNeeded: b.word(2)))
            let newSource = IPv6Address(high: 0x2001_0DB8_0000_0000, low: UInt64(b.word(3)))
            v.adjustChecksum(addressChangedFrom: IPv6Address(high: UInt64(b.word(0)), low: 1), to: newSource)
            oracle(v.readOnly.isChecksumValid(pseudoHeader: .ipv6(source: newSource, destination: .loopback)),
                   "TCP incremental rewrites broke the checksum")
        }
    }

    // MARK: IP in IP

    static func ipip(_ b: UnsafeRawBufferPointer) {
        if let d = try? IPIP.decapsulate(b) {
            oracle(d.innerOffset == d.outer.headerLength && d.inner.totalLength <= d.outer.payload.count,
                   "IPIP inner datagram outside the outer payload")
            oracle(d.outer.protocol == .ipip && !d.outer.isFragment && d.outer.isChecksumValid, "IPIP outer checks")
        }
        // Any valid datagram encapsulates, and decapsulates back to itself.
        guard let inner = try? IPv4Header(validating: b), inner.totalLength + 20 <= 0xFFFF else { return }
        var buffer = poisoned(20) + Array(b[0..<inner.totalLength])
        buffer.withUnsafeMutableBytes { m in
            guard let outer = try? IPIP.encapsulate(m, innerOffset: 20, source: IPv4Address(rawValue: b.word(0)),
                                                    destination: IPv4Address(rawValue: b.word(1)), timeToLive: 9) else {
                return oracle(false, "IPIP.encapsulate refused a valid datagram")
            }
            oracle(outer.readOnly.isChecksumValid && outer.readOnly.dontFragment == inner.dontFragment, "IPIP outer header")
            guard let d = try? IPIP.decapsulate(outer.readOnly.bytes) else { return oracle(false, "own IPIP refused") }
            oracle(Array(d.inner.bytes[0..<d.inner.totalLength]) == Array(b[0..<inner.totalLength]), "IPIP round trip")
        }
    }

    // MARK: FrameParser and the rewrite helpers

    static func frames(_ b: UnsafeRawBufferPointer) {
        let strict = Result { () throws(WireError) in try FrameParser().parse(b) }
        let lax = Result { () throws(WireError) in try FrameParser(verifiesIPv4Checksum: false).parse(b) }
        switch (strict, lax) {
        case let (.success(p), .success(q)):
            oracle(p == q, "checksum verification changed the parse")
            agreesWithViews(b, p)
            rewrite(b, p)
        case (.failure(let e), .success(let q)):
            oracle(e == .badChecksum && q.isIPv4, "only the IPv4 header checksum may separate strict and lax (\(e))")
        case (.success, .failure):
            oracle(false, "lax parser refused what the strict one accepted")
        case let (.failure(e), .failure(f)):
            // The header checksum is checked before the transport header, so
            // a frame with both problems fails differently; otherwise the same.
            oracle(e == f || e == .badChecksum, "strict and lax disagree on the error: \(e) vs \(f)")
        }
    }

    /// FrameParser must agree with the per-protocol views it summarises.
    static func agreesWithViews(_ b: UnsafeRawBufferPointer, _ p: ParsedFrame) {
        guard let e = try? EthernetHeader(validating: b) else { return oracle(false, "view refused the Ethernet header") }
        oracle(e.destination == p.destinationMAC && e.source == p.sourceMAC && e.etherType == p.etherType
               && e.headerLength == p.l3Offset && e.vlanTag == p.vlanTag, "Ethernet view vs ParsedFrame")
        let l3 = b.slice(p.l3Offset..<b.count)
        if p.etherType == .arp {
            guard let a = try? ARPHeader(validating: l3) else { return oracle(false, "view refused ARP") }
            oracle(a.operation == p.arpOperation, "ARP view vs ParsedFrame")
        }
        guard p.ipVersion != 0 else { return }
        oracle(p.l3Offset + p.ipLength <= b.count && p.l4Offset <= p.l3Offset + p.ipLength
               && p.l4Length == p.l3Offset + p.ipLength - p.l4Offset, "ParsedFrame offsets")
        if p.isIPv4 {
            guard let ip = try? IPv4Header(validating: l3) else { return oracle(false, "view refused IPv4") }
            oracle(ip.sourceAddress == p.sourceIPv4 && ip.destinationAddress == p.destinationIPv4
                   && ip.timeToLive == p.timeToLive && ip.protocol == p.protocol && ip.totalLength == p.ipLength
                   && ip.headerLength == p.ipHeaderLength && ip.isChecksumValid
                   && ip.fragmentOffset == p.fragmentOffset && ip.isFragment == p.isFragment, "IPv4 view vs ParsedFrame")
        } else {
            guard let ip = try? IPv6Header(validating: l3), let u = try? ip.upperLayer() else {
                return oracle(false, "view refused IPv6")
            }
            oracle(ip.sourceAddress == p.sourceIPv6 && ip.destinationAddress == p.destinationIPv6
                   && ip.hopLimit == p.timeToLive && u.protocol == p.protocol && p.l4Offset == p.l3Offset + u.offset
                   && u.isFragment == p.isFragment && u.fragmentOffset == p.fragmentOffset, "IPv6 view vs ParsedFrame")
        }
        guard p.hasTransportHeader else { return }
        let l4 = b.slice(p.l4Offset..<p.l3Offset + p.ipLength)
        switch p.protocol {
        case .tcp:
            guard let t = try? TCPHeader(validating: l4) else { return oracle(false, "view refused TCP") }
            oracle(t.sourcePort == p.sourcePort && t.destinationPort == p.destinationPort && t.flags == p.tcpFlags,
                   "TCP view vs ParsedFrame")
        case .udp:
            if !p.isFragment {
                guard let u = try? UDPHeader(validating: l4) else { return oracle(false, "view refused UDP") }
                oracle(u.sourcePort == p.sourcePort && u.destinationPort == p.destinationPort, "UDP view vs ParsedFrame")
            }
        default:
            guard let i = try? ICMPv4Header(validating: l4) else { return oracle(false, "view refused ICMP") }
            oracle(i.type.rawValue == p.icmpType && i.code == p.icmpCode && i.identifier == p.icmpIdentifier,
                   "ICMP view vs ParsedFrame")
        }
    }

    /// Is the transport checksum valid? nil when it cannot be told here
    /// (no transport header, or a fragment: the checksum covers bytes
    /// elsewhere).
    static func transportChecksumValid(_ b: UnsafeRawBufferPointer, _ p: ParsedFrame) -> Bool? {
        guard p.hasTransportHeader, !p.isFragment else { return nil }
        let l4 = b.slice(p.l4Offset..<p.l3Offset + p.ipLength)
        let pseudo: IPPseudoHeader = p.isIPv4 ? .ipv4(source: p.sourceIPv4, destination: p.destinationIPv4)
            : .ipv6(source: p.sourceIPv6, destination: p.destinationIPv6)
        switch p.protocol {
        case .tcp: return TCPHeader(unchecked: l4).isChecksumValid(pseudoHeader: pseudo)
        case .udp: return (try? UDPHeader(validating: l4))?.isChecksumValid(pseudoHeader: pseudo)
        case .icmp: return ICMPv4Header(unchecked: l4).isChecksumValid
        case .icmpv6: return ICMPv6Header(unchecked: l4).isChecksumValid(source: p.sourceIPv6, destination: p.destinationIPv6)
        default: return nil
        }
    }

    /// Rewrites picked by the input's last byte; afterwards the frame must
    /// parse (IPv4 header checksum verified) to exactly the updated
    /// ParsedFrame, and a transport checksum that was valid must still be.
    static func rewrite(_ b: UnsafeRawBufferPointer, _ parsed: ParsedFrame) {
        let pick = b[b.count - 1]
        var frame = Array(b)
        frame.withUnsafeMutableBytes { m in
            var p = parsed
            let wasValid = transportChecksumValid(m.readOnlyView, p)
            if pick & 1 != 0 { p.rewriteDestinationMAC(MACAddress(rawValue: UInt64(b.word(0)) << 16 | 0x42), in: m) }
            if pick & 2 != 0 { p.rewriteSourceMAC(MACAddress(rawValue: UInt64(b.word(1))), in: m) }
            if p.ipVersion != 0 && p.timeToLive > 0 && pick & 4 != 0 { p.decrementTimeToLive(in: m) }
            let port = UInt16(truncatingIfNeeded: b.word(2))
            if p.isIPv4 {
                let address = IPv4Address(rawValue: b.word(3))
                switch (pick >> 3 & 3, p.hasPorts) {
                case (0, true): p.rewriteIPv4Destination(address, port: port, in: m)
                case (1, true): p.rewriteIPv4Source(address, port: port, in: m)
                case (2, _): p.rewriteIPv4Source(address, in: m)
                default: p.rewriteIPv4Destination(address, in: m)
                }
            } else if p.isIPv6 {
                let address = IPv6Address(high: UInt64(b.word(3)) << 32 | UInt64(b.word(4)), low: UInt64(b.word(5)))
                if pick & 8 != 0 { p.rewriteIPv6Destination(address, in: m) } else { p.rewriteIPv6Source(address, in: m) }
            }
            if p.hasPorts && pick & 32 != 0 { p.rewriteDestinationPort(port &+ 1, in: m) }
            if p.hasPorts && pick & 64 != 0 { p.rewriteSourcePort(port &+ 2, in: m) }
            if p.hasTransportHeader && (p.protocol == .icmp || p.protocol == .icmpv6) && pick & 128 != 0 {
                p.rewriteICMPIdentifier(port, in: m)
            }
            let after = m.readOnlyView
            guard let again = try? FrameParser().parse(after) else {
                return oracle(false, "a rewritten frame no longer parses (IPv4 header checksum?)")
            }
            oracle(again == p, "ParsedFrame no longer describes the rewritten frame")
            if wasValid == true {
                oracle(transportChecksumValid(after, again) == true
                       || (p.protocol == .icmp && icmpv4AllZero(after.slice(p.l4Offset..<p.l3Offset + p.ipLength))),
                       "a rewrite broke a valid \(p.protocol) checksum")
            }
        }
    }

    /// An ICMPv4 message that is all zero but for its checksum: the one
    /// case RFC 1624 eqn. 3 cannot get right (it never yields 0xFFFF, and
    /// that message's only valid checksum is 0xFFFF). Without a
    /// pseudo-header only ICMPv4 can get there: an echo reply, id 0, seq 0,
    /// no data, after an identifier rewrite to 0.
    static func icmpv4AllZero(_ m: UnsafeRawBufferPointer) -> Bool {
        m.count >= 4 && m[0] == 0 && m[1] == 0 && m[4...].allSatisfy { $0 == 0 }
    }

    // MARK: text forms

    static func text(_ b: UnsafeRawBufferPointer) {
        let s = String(decoding: b, as: UTF8.self)
        if let a = IPv4Address(s) { oracle(IPv4Address(a.description) == a, "IPv4 text round trip: \(s)") }
        if let a = IPv6Address(s) { oracle(IPv6Address(a.description) == a, "IPv6 text round trip: \(s)") }
        if let a = MACAddress(s) { oracle(MACAddress(a.description) == a, "MAC text round trip: \(s)") }
        if let a = IPv4Prefix(s) { oracle(IPv4Prefix(a.description) == a, "prefix text round trip: \(s)") }
        if b.count == 16 {  // any 16 bytes are an address; its text must parse back
            let a = IPv6Address(bytes: Array(b))!
            oracle(IPv6Address(a.description) == a, "IPv6 text of \(Array(b)): \(a)")
        }
    }

    // MARK: pcapng

    static func pcapng(_ b: UnsafeRawBufferPointer) {
        guard let capture = try? PcapNGCapture(parsing: Array(b)) else { return }
        for (i, _) in capture.interfaces.enumerated() { _ = capture.records(ofInterface: i) }
        // Re-encoded with the writer, the packets come back the same.
        var writer = PcapNGWriter(application: nil)
        let ids = capture.interfaces.map { writer.addInterface(name: $0.name ?? "", linkType: $0.linkType, snapLength: 0) }
        for packet in capture.packets {
            writer.writePacket(packet.bytes, interface: ids[packet.interface], timestamp: packet.timestamp ?? 0,
                               originalLength: packet.originalLength)
        }
        guard let again = try? PcapNGCapture(parsing: writer.bytes) else { return oracle(false, "own pcapng refused") }
        oracle(again.packets.map(\.bytes) == capture.packets.map(\.bytes)
               && again.packets.map(\.originalLength) == capture.packets.map(\.originalLength)
               && again.packets.map(\.interface) == capture.packets.map(\.interface), "pcapng round trip")
    }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always) var readOnlyView: UnsafeRawBufferPointer { UnsafeRawBufferPointer(self) }
}
