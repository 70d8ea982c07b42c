// One-shot frame parsing for the data plane: one pass over an Ethernet
// frame validates every header an element will touch and records offsets
// and key fields in a plain value (no allocation, no class, no existential).
// Elements call it once per packet, then read fields from the result and
// rewrite the frame with the `ParsedFrame.rewrite…` helpers.

/// What `FrameParser` found in one Ethernet frame. Offsets are in bytes from
/// the start of the frame. Fields of layers the frame does not have are
/// zero (`ipVersion == 0`, `hasTransportHeader == false`, …).
public struct ParsedFrame: Hashable, Sendable {
    /// Length in bytes of the frame buffer that was parsed.
    public var frameLength: Int

    // MARK: Ethernet
    public var destinationMAC: MACAddress
    public var sourceMAC: MACAddress
    /// True if the frame has an 802.1Q tag.
    public var hasVLANTag: Bool
    /// The raw 802.1Q TCI (0 when untagged).
    public var vlanTCI: UInt16
    /// The EtherType of the payload (after the tag, if any).
    public var etherType: EtherType
    /// Offset of the layer-3 header: 14, or 18 with a tag.
    public var l3Offset: Int

    // MARK: ARP
    /// The ARP operation (ARP frames; validated as IPv4 over Ethernet).
    public var arpOperation: ARPOperation

    // MARK: IP
    /// 4 or 6 for IP frames, 0 otherwise.
    public var ipVersion: UInt8
    /// IPv4 header length in bytes (IHL × 4, options included), or 40 for IPv6.
    public var ipHeaderLength: Int
    /// Length in bytes of the IP packet (IPv4 Total Length, or 40 + IPv6
    /// Payload Length); the frame may carry padding after it.
    public var ipLength: Int
    /// The upper-layer protocol (for IPv6, after the extension headers).
    public var `protocol`: IPProtocol
    /// IPv4 source address (IPv4 frames).
    public var sourceIPv4: IPv4Address
    /// IPv4 destination address (IPv4 frames).
    public var destinationIPv4: IPv4Address
    /// IPv6 source address (IPv6 frames).
    public var sourceIPv6: IPv6Address
    /// IPv6 destination address (IPv6 frames).
    public var destinationIPv6: IPv6Address
    /// IPv4 TTL or IPv6 hop limit.
    public var timeToLive: UInt8
    /// True for any fragment (IPv4 MF or offset; an IPv6 Fragment header).
    public var isFragment: Bool
    /// Fragment offset in BYTES (0 for whole packets and first fragments).
    public var fragmentOffset: Int

    // MARK: Transport
    /// Offset of the upper-layer header (after IPv4 options / IPv6
    /// extension headers); set for every IP frame, even when that header is
    /// absent (non-first fragment) or of a protocol not parsed.
    public var l4Offset: Int
    /// Length in bytes from `l4Offset` to the end of the IP packet.
    public var l4Length: Int
    /// True if a TCP, UDP, ICMP (IPv4) or ICMPv6 (IPv6) header was found and
    /// validated at `l4Offset`. False for non-first fragments.
    public var hasTransportHeader: Bool
    /// TCP/UDP source port.
    public var sourcePort: UInt16
    /// TCP/UDP destination port.
    public var destinationPort: UInt16
    /// TCP flags (TCP only).
    public var tcpFlags: TCPFlags
    /// ICMP / ICMPv6 type.
    public var icmpType: UInt8
    /// ICMP / ICMPv6 code.
    public var icmpCode: UInt8
    /// ICMP / ICMPv6 echo identifier (the first 16 bits after the checksum;
    /// meaningful for echo request/reply).
    public var icmpIdentifier: UInt16

    /// An empty result: every field zero.
    @inlinable @inline(__always)
    public init() {
        self.frameLength = 0
        self.destinationMAC = MACAddress(rawValue: 0)
        self.sourceMAC = MACAddress(rawValue: 0)
        self.hasVLANTag = false
        self.vlanTCI = 0
        self.etherType = EtherType(0)
        self.l3Offset = 0
        self.arpOperation = ARPOperation(0)
        self.ipVersion = 0
        self.ipHeaderLength = 0
        self.ipLength = 0
        self.protocol = IPProtocol(0)
        self.sourceIPv4 = IPv4Address(rawValue: 0)
        self.destinationIPv4 = IPv4Address(rawValue: 0)
        self.sourceIPv6 = IPv6Address(high: 0, low: 0)
        self.destinationIPv6 = IPv6Address(high: 0, low: 0)
        self.timeToLive = 0
        self.isFragment = false
        self.fragmentOffset = 0
        self.l4Offset = 0
        self.l4Length = 0
        self.hasTransportHeader = false
        self.sourcePort = 0
        self.destinationPort = 0
        self.tcpFlags = TCPFlags(rawValue: 0)
        self.icmpType = 0
        self.icmpCode = 0
        self.icmpIdentifier = 0
    }

    /// Parses `frame` with the default `FrameParser` (IPv4 header checksum verified).
    @inlinable
    public init(parsing frame: UnsafeRawBufferPointer) throws(WireError) {
        self = try FrameParser().parse(frame)
    }

    /// The 802.1Q tag, if any.
    @inlinable public var vlanTag: VLANTag? { hasVLANTag ? VLANTag(tci: vlanTCI) : nil }
    /// The VLAN identifier, if tagged.
    @inlinable public var vlanIdentifier: UInt16? { hasVLANTag ? vlanTCI & 0x0FFF : nil }
    @inlinable public var isIPv4: Bool { ipVersion == 4 }
    @inlinable public var isIPv6: Bool { ipVersion == 6 }
    @inlinable public var isTCP: Bool { hasTransportHeader && self.protocol == .tcp }
    @inlinable public var isUDP: Bool { hasTransportHeader && self.protocol == .udp }
    /// True if ports were parsed (TCP or UDP header present).
    @inlinable public var hasPorts: Bool { isTCP || isUDP }
}

/// Validates an Ethernet frame and records what `ParsedFrame` holds.
///
/// Checks, and the error for the first problem found:
/// - Ethernet: 14 bytes (18 with a tag), else `.truncated`; stacked tags → `.unsupported`.
/// - ARP: `ARPHeader(validating:)` (`.truncated`, `.unsupported`).
/// - IPv4: 20 bytes (`.truncated`), version (`.badVersion`), IHL
///   (`.badHeaderLength`), Total Length (`.badLength`), header checksum
///   (`.badChecksum`, when `verifiesIPv4Checksum`).
/// - IPv6: 40 bytes, version, Payload Length, then the extension-header walk
///   (`IPv6Header.upperLayer()` errors).
/// - Unless a non-first fragment: TCP 20 bytes (`.truncated`) and data offset
///   (`.badHeaderLength`); UDP 8 bytes (`.truncated`) and Length ≥ 8 and,
///   unless a first fragment, within the packet (`.badLength`); ICMP/ICMPv6
///   8 bytes (`.truncated`).
///
/// Transport checksums are not verified (that needs the whole payload; a
/// router does not, and rewrites keep them consistent incrementally).
public struct FrameParser: Hashable, Sendable {
    /// Verify the IPv4 header checksum (RFC 1812 §5.2.2 says a router must).
    public var verifiesIPv4Checksum: Bool

    @inlinable public init(verifiesIPv4Checksum: Bool = true) {
        self.verifiesIPv4Checksum = verifiesIPv4Checksum
    }

    @inlinable @inline(__always)
    public func parse(_ frame: UnsafeRawBufferPointer) throws(WireError) -> ParsedFrame {
        var p = ParsedFrame()
        let n = frame.count
        p.frameLength = n
        guard n >= 14 else { throw .truncated }
        p.destinationMAC = frame.wireMAC(0)
        p.sourceMAC = frame.wireMAC(6)
        var type = frame.wireU16(12)
        var l3 = 14
        if type == 0x8100 {
            guard n >= 18 else { throw .truncated }
            p.hasVLANTag = true
            p.vlanTCI = frame.wireU16(14)
            type = frame.wireU16(16)
            l3 = 18
            if type == 0x8100 || type == 0x88A8 { throw .unsupported }
        } else if type == 0x88A8 {
            throw .unsupported
        }
        p.etherType = EtherType(type)
        p.l3Offset = l3
        switch type {
        case 0x0800: try parseIPv4(frame, at: l3, into: &p)
        case 0x86DD: try parseIPv6(frame, at: l3, into: &p)
        case 0x0806:
            let arp = try ARPHeader(validating: frame.wireSlice(l3..<n))
            p.arpOperation = arp.operation
        default: break
        }
        return p
    }

    @inlinable @inline(__always)
    func parseIPv4(_ frame: UnsafeRawBufferPointer, at l3: Int, into p: inout ParsedFrame) throws(WireError) {
        let n = frame.count
        guard n &- l3 >= 20 else { throw .truncated }
        let vihl = frame.wireU8(l3)
        guard vihl >> 4 == 4 else { throw .badVersion }
        let ihl = Int(vihl & 0x0F) &<< 2
        guard ihl >= 20, l3 &+ ihl <= n else { throw .badHeaderLength }
        let total = Int(frame.wireU16(l3 &+ 2))
        guard total >= ihl, l3 &+ total <= n else { throw .badLength }
        if verifiesIPv4Checksum {
            guard InternetChecksum.headerSum(frame.wireSlice(l3..<l3 &+ ihl)) == 0xFFFF else { throw .badChecksum }
        }
        let flagsAndOffset = frame.wireU16(l3 &+ 6)
        p.ipVersion = 4
        p.ipHeaderLength = ihl
        p.ipLength = total
        p.isFragment = flagsAndOffset & 0x3FFF != 0
        p.fragmentOffset = Int(flagsAndOffset & 0x1FFF) &<< 3
        p.timeToLive = frame.wireU8(l3 &+ 8)
        let proto = frame.wireU8(l3 &+ 9)
        p.protocol = IPProtocol(proto)
        p.sourceIPv4 = frame.wireIPv4(l3 &+ 12)
        p.destinationIPv4 = frame.wireIPv4(l3 &+ 16)
        p.l4Offset = l3 &+ ihl
        p.l4Length = total &- ihl
        if p.fragmentOffset == 0 {
            try parseTransport(frame, proto: proto, icmp: 1, into: &p)
        }
    }

    @inlinable @inline(__always)
    func parseIPv6(_ frame: UnsafeRawBufferPointer, at l3: Int, into p: inout ParsedFrame) throws(WireError) {
        let ip = try IPv6Header(validating: frame.wireSlice(l3..<frame.count))
        let upper = try ip.upperLayer()
        p.ipVersion = 6
        p.ipHeaderLength = 40
        p.ipLength = upper.end
        p.timeToLive = ip.hopLimit
        p.sourceIPv6 = ip.sourceAddress
        p.destinationIPv6 = ip.destinationAddress
        p.protocol = upper.protocol
        p.isFragment = upper.isFragment
        p.fragmentOffset = upper.fragmentOffset
        p.l4Offset = l3 &+ upper.offset
        p.l4Length = upper.end &- upper.offset
        if upper.fragmentOffset == 0 {
            try parseTransport(frame, proto: upper.protocol.rawValue, icmp: 58, into: &p)
        }
    }

    @inlinable @inline(__always)
    func parseTransport(_ frame: UnsafeRawBufferPointer, proto: UInt8, icmp: UInt8,
                        into p: inout ParsedFrame) throws(WireError) {
        let l4 = p.l4Offset
        let length = p.l4Length
        switch proto {
        case 6:
            guard length >= 20 else { throw .truncated }
            let dataOffset = Int(frame.wireU8(l4 &+ 12) >> 4) &<< 2
            guard dataOffset >= 20, dataOffset <= length else { throw .badHeaderLength }
            p.sourcePort = frame.wireU16(l4)
            p.destinationPort = frame.wireU16(l4 &+ 2)
            p.tcpFlags = TCPFlags(rawValue: frame.wireU8(l4 &+ 13))
            p.hasTransportHeader = true
        case 17:
            guard length >= 8 else { throw .truncated }
            let udpLength = Int(frame.wireU16(l4 &+ 4))
            // A first fragment holds only part of the datagram the UDP
            // Length describes.
            guard udpLength >= 8, udpLength <= length || p.isFragment else { throw .badLength }
            p.sourcePort = frame.wireU16(l4)
            p.destinationPort = frame.wireU16(l4 &+ 2)
            p.hasTransportHeader = true
        case icmp:
            guard length >= 8 else { throw .truncated }
            p.icmpType = frame.wireU8(l4)
            p.icmpCode = frame.wireU8(l4 &+ 1)
            p.icmpIdentifier = frame.wireU16(l4 &+ 4)
            p.hasTransportHeader = true
        default:
            break
        }
    }
}
