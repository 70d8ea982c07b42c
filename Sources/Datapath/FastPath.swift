import Wire

// The fast path's entries (bpf/wirelab_xdp.bpf.c, "fast path"): what an
// element did to one frame of a flow, written so the lab's XDP program can
// do the same to the flow's later frames in the kernel.
//
// The entry is derived from the frame before and after the element, not
// from the element's tables: whatever the element decided, the entry holds
// exactly the fields it changed, so the XDP program's output is the
// element's byte for byte (the differential test checks it with
// BPF_PROG_TEST_RUN). Only what the program can repeat is accepted: IPv4
// without options, not a fragment, TCP (no SYN, FIN or RST) or UDP, the same
// length, and changes limited to both MACs, the addresses, the ports, a TTL
// decremented by one, and the checksums those change; or the director's TUN
// encapsulation exactly (`derive` says which shape).

/// `struct wl_flow_key`: a flow's frames as received at one hop — the
/// ingress port's slot, both MACs (a switch decides by the destination and
/// learns the source; a router or director forwards only what is sent to
/// its own MAC: a frame of the same 5-tuple to another MAC is another
/// decision), and the 5-tuple.
public struct FastPathKey: Hashable, Sendable, CustomStringConvertible {
    public var destinationMAC: MACAddress
    public var sourceMAC: MACAddress
    public var source: IPv4Address
    public var destination: IPv4Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var ipProtocol: UInt8
    public var ingressSlot: UInt16

    public init(destinationMAC: MACAddress, sourceMAC: MACAddress, source: IPv4Address, destination: IPv4Address,
                sourcePort: UInt16, destinationPort: UInt16, ipProtocol: UInt8, ingressSlot: UInt16) {
        self.destinationMAC = destinationMAC
        self.sourceMAC = sourceMAC
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.ipProtocol = ipProtocol
        self.ingressSlot = ingressSlot
    }

    /// The 28 bytes of `struct wl_flow_key` (addresses and ports in network order).
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 28)
        FastPathEntry.putFrameFields(destinationMAC, sourceMAC, source, destination, sourcePort, destinationPort, &out)
        out[24] = ipProtocol
        withUnsafeBytes(of: ingressSlot.littleEndian) { out.replaceSubrange(26..<28, with: $0) }
        return out
    }

    public var description: String {
        "\(ipProtocol == 6 ? "tcp" : "udp") \(source):\(sourcePort) → \(destination):\(destinationPort) to \(destinationMAC) in slot \(ingressSlot)"
    }
}

/// One `fast_flows` entry: the key and `struct wl_flow_action`.
public struct FastPathEntry: Hashable, Sendable {
    public var key: FastPathKey
    public var destinationMAC: MACAddress
    public var sourceMAC: MACAddress
    public var source: IPv4Address
    public var destination: IPv4Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// One's complement sums of ~old + new over the changed address words
    /// (IPv4 header), and over the changed address and port words (TCP/UDP).
    public var ipDelta: UInt16
    public var l4Delta: UInt16
    /// The largest IPv4 total length the egress takes (longer: slow path).
    public var maxLength: UInt16
    public var decrementsTTL: Bool
    public var egressSlot: UInt16
    public var generation: UInt32
    /// TUN (RFC 2003): the frame, its TTL decremented, inside an outer IPv4
    /// header from `outerSource` to `outerDestination` (protocol 4, ID 0, DF,
    /// TOS and TTL as the inner's); the inner addresses and ports unchanged.
    public var encapsulates = false
    public var outerSource = IPv4Address(rawValue: 0)
    public var outerDestination = IPv4Address(rawValue: 0)

    /// Why a forwarded frame cannot be repeated by the fast path.
    public enum Refusal: String, Error, Sendable {
        case notIPv4 = "not IPv4 without options"
        case fragment = "a fragment"
        case notTCPOrUDP = "neither TCP nor UDP"
        case tcpStateChange = "TCP with SYN, FIN or RST, or without ACK"
        case lengthChanged = "the element changed the frame's length"
        case otherFieldChanged = "the element changed a field the fast path does not rewrite"
        case ttl = "the TTL changed by other than one"
        case malformed = "the frame does not parse"
        case padded = "a tunnelled frame with Ethernet padding (the tunnel leaves it behind)"
        case tunnelWithoutDF = "a tunnel without DF (the outer header's identification must then be unique)"
        case tunnelHeader = "the outer header is not IPv4 in IPv4 as the fast path writes it (ID 0, DF, TOS and TTL of the inner)"
    }

    /// The entry that repeats what was done to BEFORE (received on slot
    /// INGRESS) to make AFTER (sent out of slot EGRESS, whose interface takes
    /// IPv4 packets up to MAXLENGTH bytes).
    /// An AFTER of protocol 4 is taken for TUN (`tunnel`); any other change
    /// of length is refused.
    public static func derive(before: [UInt8], after: [UInt8], ingressSlot: UInt16, egressSlot: UInt16,
                              maxLength: Int, generation: UInt32) throws(Refusal) -> FastPathEntry {
        let parser = FrameParser()
        let a: ParsedFrame, b: ParsedFrame
        do {
            a = try before.withUnsafeBytes { bytes throws(WireError) in try parser.parse(bytes) }
            b = try after.withUnsafeBytes { bytes throws(WireError) in try parser.parse(bytes) }
        } catch { throw .malformed }
        guard a.isIPv4, b.isIPv4, !a.hasVLANTag, !b.hasVLANTag, a.ipHeaderLength == 20 else { throw .notIPv4 }
        guard !a.isFragment else { throw .fragment }
        guard a.hasPorts else { throw .notTCPOrUDP }
        if a.protocol == .tcp, a.tcpFlags.contains(.syn) || a.tcpFlags.contains(.fin) || a.tcpFlags.contains(.rst)
            || !a.tcpFlags.contains(.ack) {
            throw .tcpStateChange
        }
        let key = FastPathKey(destinationMAC: a.destinationMAC, sourceMAC: a.sourceMAC,
                              source: a.sourceIPv4, destination: a.destinationIPv4, sourcePort: a.sourcePort,
                              destinationPort: a.destinationPort, ipProtocol: a.protocol.rawValue, ingressSlot: ingressSlot)
        if b.protocol == .ipip {
            return try tunnel(before: before, after: after, a, b, key: key, egressSlot: egressSlot,
                              maxLength: maxLength, generation: generation)
        }
        guard before.count == after.count else { throw .lengthChanged }
        guard b.protocol == a.protocol else { throw .notTCPOrUDP }
        let decrements: Bool
        switch Int(a.timeToLive) - Int(b.timeToLive) {
        case 0: decrements = false
        case 1: decrements = true
        default: throw .ttl
        }
        // Every byte outside the fields the program rewrites must be equal.
        let l3 = a.l3Offset, l4 = a.l4Offset
        var rewritten = Set(0..<12)                                  // both MACs
        rewritten.formUnion([l3 + 8, l3 + 10, l3 + 11])               // TTL, header checksum
        rewritten.formUnion((l3 + 12)..<(l3 + 20))                    // addresses
        rewritten.formUnion(l4..<(l4 + 4))                            // ports
        let checksum = l4 + (a.protocol == .tcp ? 16 : 6)
        rewritten.formUnion([checksum, checksum + 1])
        for i in before.indices where before[i] != after[i] && !rewritten.contains(i) { throw .otherFieldChanged }

        let oldWords = [a.sourceIPv4.rawValue >> 16, a.sourceIPv4.rawValue & 0xFFFF,
                        a.destinationIPv4.rawValue >> 16, a.destinationIPv4.rawValue & 0xFFFF]
        let newWords = [b.sourceIPv4.rawValue >> 16, b.sourceIPv4.rawValue & 0xFFFF,
                        b.destinationIPv4.rawValue >> 16, b.destinationIPv4.rawValue & 0xFFFF]
        var ip: UInt32 = 0
        for (o, n) in zip(oldWords, newWords) where o != n { ip &+= UInt32(~UInt16(o)) &+ n }
        var l4Sum = ip
        for (o, n) in [(a.sourcePort, b.sourcePort), (a.destinationPort, b.destinationPort)] where o != n {
            l4Sum &+= UInt32(~o) &+ UInt32(n)
        }
        return FastPathEntry(
            key: key,
            destinationMAC: b.destinationMAC, sourceMAC: b.sourceMAC, source: b.sourceIPv4, destination: b.destinationIPv4,
            sourcePort: b.sourcePort, destinationPort: b.destinationPort,
            ipDelta: InternetChecksum.fold(ip), l4Delta: InternetChecksum.fold(l4Sum),
            maxLength: UInt16(clamping: maxLength), decrementsTTL: decrements, egressSlot: egressSlot, generation: generation)
    }

    /// TUN: AFTER must be BEFORE (no Ethernet padding, DF set, TTL ≥ 2)
    /// with new MACs, the inner TTL decremented (its checksum as RFC 1624
    /// eqn. 3, as the element and the program do it), and the outer header
    /// `outerHeader` writes in front of it: the program builds exactly that.
    static func tunnel(before: [UInt8], after: [UInt8], _ a: ParsedFrame, _ b: ParsedFrame, key: FastPathKey,
                       egressSlot: UInt16, maxLength: Int, generation: UInt32) throws(Refusal) -> FastPathEntry {
        let l3 = a.l3Offset, inner = l3 + IPIP.outerHeaderLength
        guard before.count == l3 + a.ipLength else { throw .padded }
        guard after.count == before.count + IPIP.outerHeaderLength else { throw .tunnelHeader }
        guard before[l3 + 6] & 0x40 != 0 else { throw .tunnelWithoutDF }
        guard a.timeToLive >= 2 else { throw .ttl }
        guard b.l3Offset == l3, before[12..<l3] == after[12..<l3] else { throw .tunnelHeader }
        // The inner datagram: only its TTL and checksum change, and as the program changes them.
        let ttlWord = UInt16(a.timeToLive) << 8 | UInt16(a.protocol.rawValue)
        let checksum = UInt16(before[l3 + 10]) << 8 | UInt16(before[l3 + 11])
        let newChecksum = InternetChecksum.update(checksum, old: ttlWord, new: ttlWord &- 0x0100)
        var expected = Array(before[l3...])
        expected[8] = a.timeToLive - 1
        Self.put16(newChecksum, &expected, 10)
        guard after[inner...].elementsEqual(expected) else {
            throw after[inner + 8] == a.timeToLive - 1 ? .otherFieldChanged : .ttl
        }
        let outer = Self.outerHeader(before[l3 + 1], innerLength: a.ipLength, timeToLive: a.timeToLive - 1,
                                     source: b.sourceIPv4, destination: b.destinationIPv4)
        guard after[l3..<inner].elementsEqual(outer) else { throw .tunnelHeader }
        var entry = FastPathEntry(
            key: key, destinationMAC: b.destinationMAC, sourceMAC: b.sourceMAC,
            source: a.sourceIPv4, destination: a.destinationIPv4, sourcePort: a.sourcePort, destinationPort: a.destinationPort,
            ipDelta: 0, l4Delta: 0, maxLength: UInt16(clamping: maxLength), decrementsTTL: true,
            egressSlot: egressSlot, generation: generation)
        entry.encapsulates = true
        entry.outerSource = b.sourceIPv4
        entry.outerDestination = b.destinationIPv4
        return entry
    }

    /// The outer IPv4 header of a TUN entry, as the program writes it:
    /// version 4, IHL 5, the inner TOS, total = inner + 20, ID 0, DF, the
    /// decremented inner TTL, protocol 4, the full header checksum.
    static func outerHeader(_ tos: UInt8, innerLength: Int, timeToLive: UInt8, source: IPv4Address,
                            destination: IPv4Address) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: IPIP.outerHeaderLength)
        h[0] = 0x45
        h[1] = tos
        Self.put16(UInt16(truncatingIfNeeded: innerLength + IPIP.outerHeaderLength), &h, 2)
        h[6] = 0x40
        h[8] = timeToLive
        h[9] = IPProtocol.ipip.rawValue
        Self.put32(source.rawValue, &h, 12)
        Self.put32(destination.rawValue, &h, 16)
        Self.put16(h.withUnsafeBytes { InternetChecksum.checksum($0) }, &h, 10)
        return h
    }

    /// The 64 bytes of `struct wl_flow_action` (counters zero).
    public var actionBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        Self.putFrameFields(destinationMAC, sourceMAC, source, destination, sourcePort, destinationPort, &out)
        // Deltas and the length are host-order numbers in the C struct.
        withUnsafeBytes(of: ipDelta.littleEndian) { out.replaceSubrange(24..<26, with: $0) }
        withUnsafeBytes(of: l4Delta.littleEndian) { out.replaceSubrange(26..<28, with: $0) }
        withUnsafeBytes(of: maxLength.littleEndian) { out.replaceSubrange(28..<30, with: $0) }
        out[30] = decrementsTTL ? 1 : 0
        out[31] = encapsulates ? 1 : 0
        withUnsafeBytes(of: egressSlot.littleEndian) { out.replaceSubrange(32..<34, with: $0) }
        withUnsafeBytes(of: generation.littleEndian) { out.replaceSubrange(36..<40, with: $0) }
        Self.put32(outerSource.rawValue, &out, 56)
        Self.put32(outerDestination.rawValue, &out, 60)
        return out
    }

    /// Both MACs, the addresses and the ports, as `struct wl_flow_key` and
    /// `struct wl_flow_action` both begin (bytes 0..<24, network order).
    static func putFrameFields(_ destinationMAC: MACAddress, _ sourceMAC: MACAddress, _ source: IPv4Address,
                               _ destination: IPv4Address, _ sourcePort: UInt16, _ destinationPort: UInt16,
                               _ out: inout [UInt8]) {
        for i in 0..<6 { out[i] = destinationMAC[i]; out[6 + i] = sourceMAC[i] }
        put32(source.rawValue, &out, 12)
        put32(destination.rawValue, &out, 16)
        put16(sourcePort, &out, 20)
        put16(destinationPort, &out, 22)
    }

    static func put32(_ v: UInt32, _ out: inout [UInt8], _ at: Int) {
        out[at] = UInt8(v >> 24); out[at + 1] = UInt8(truncatingIfNeeded: v >> 16)
        out[at + 2] = UInt8(truncatingIfNeeded: v >> 8); out[at + 3] = UInt8(truncatingIfNeeded: v)
    }

    static func put16(_ v: UInt16, _ out: inout [UInt8], _ at: Int) {
        out[at] = UInt8(v >> 8); out[at + 1] = UInt8(truncatingIfNeeded: v)
    }
}
