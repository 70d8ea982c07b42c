// Ethernet II (DIX) frames with at most one IEEE 802.1Q tag.
//
//  0                   6                  12      14      16      18
//  +-------------------+-------------------+-------+-------+-------+
//  | destination MAC   | source MAC        | type  |    payload ...      untagged
//  | destination MAC   | source MAC        | 8100  |  TCI  | type  | payload ...
//
// Stacked tags (802.1ad 0x88A8 outer, or 0x8100 twice) are refused as
// `.unsupported`. The FCS is not part of the buffer (AF_XDP/AF_PACKET strip it).

/// An EtherType (IEEE 802 numbers). Open: unknown values survive a round
/// trip. Values below 0x0600 are IEEE 802.3 lengths, not types; wirelab
/// carries them as opaque values.
public struct EtherType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16

    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// 0x0800: IPv4.
    @inlinable public static var ipv4: EtherType { EtherType(0x0800) }
    /// 0x0806: ARP.
    @inlinable public static var arp: EtherType { EtherType(0x0806) }
    /// 0x86DD: IPv6.
    @inlinable public static var ipv6: EtherType { EtherType(0x86DD) }
    /// 0x8100: IEEE 802.1Q VLAN tag (C-tag TPID).
    @inlinable public static var vlan: EtherType { EtherType(0x8100) }
    /// 0x88A8: IEEE 802.1ad provider bridging, QinQ (S-tag TPID).
    @inlinable public static var qinq: EtherType { EtherType(0x88A8) }

    public var description: String {
        switch rawValue {
        case 0x0800: "ipv4"
        case 0x0806: "arp"
        case 0x86DD: "ipv6"
        case 0x8100: "vlan"
        case 0x88A8: "qinq"
        default: "0x" + wireHex(rawValue, digits: 4)
        }
    }
}

/// The Tag Control Information of an 802.1Q tag.
public struct VLANTag: Hashable, Sendable, CustomStringConvertible {
    /// Priority Code Point (PCP), 0...7.
    public var priority: UInt8
    /// Drop Eligible Indicator (DEI, formerly CFI).
    public var dropEligible: Bool
    /// VLAN identifier (VID), 0...4095 (0 = priority tag only, 4095 reserved).
    public var identifier: UInt16

    @inlinable public init(identifier: UInt16, priority: UInt8 = 0, dropEligible: Bool = false) {
        precondition(identifier <= 0x0FFF && priority <= 7, "VLAN id or priority out of range")
        self.identifier = identifier
        self.priority = priority
        self.dropEligible = dropEligible
    }

    /// From the 16-bit TCI as on the wire: PCP(3) DEI(1) VID(12).
    @inlinable public init(tci: UInt16) {
        self.priority = UInt8(truncatingIfNeeded: tci >> 13)
        self.dropEligible = tci & 0x1000 != 0
        self.identifier = tci & 0x0FFF
    }

    /// The 16-bit TCI as on the wire.
    @inlinable public var tci: UInt16 {
        UInt16(priority & 7) << 13 | (dropEligible ? 0x1000 : 0) | (identifier & 0x0FFF)
    }

    public var description: String { "vlan \(identifier) p\(priority)\(dropEligible ? " dei" : "")" }
}

/// A read-only view of an Ethernet II frame (header and payload).
public struct EthernetHeader {
    /// The whole frame, starting at the destination MAC.
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields, from the start of the frame.
    public enum Field {
        @inlinable public static var destination: Int { 0 }
        @inlinable public static var source: Int { 6 }
        /// EtherType of an untagged frame, TPID of a tagged one.
        @inlinable public static var etherType: Int { 12 }
        /// The 802.1Q TCI (tagged frames).
        @inlinable public static var tci: Int { 14 }
        /// The EtherType after an 802.1Q tag.
        @inlinable public static var taggedEtherType: Int { 16 }
    }

    /// Length in bytes of an untagged header.
    @inlinable public static var untaggedLength: Int { 14 }
    /// Length in bytes of a header with one 802.1Q tag.
    @inlinable public static var taggedLength: Int { 18 }

    /// Checks that the header (with its tag, if any) fits in `bytes`.
    /// Throws `.truncated`, or `.unsupported` for stacked or 802.1ad tags.
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 14 else { throw .truncated }
        let type = bytes.wireU16(Field.etherType)
        if type == 0x8100 {
            guard bytes.count >= 18 else { throw .truncated }
            let inner = bytes.wireU16(Field.taggedEtherType)
            if inner == 0x8100 || inner == 0x88A8 { throw .unsupported }
        } else if type == 0x88A8 {
            throw .unsupported
        }
        self.bytes = bytes
    }

    /// A view without checks: the caller vouches that `bytes` holds a whole
    /// header (e.g. it validated it before).
    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var destination: MACAddress { bytes.wireMAC(Field.destination) }
    @inlinable public var source: MACAddress { bytes.wireMAC(Field.source) }
    /// True if the frame carries an 802.1Q tag (TPID 0x8100 at offset 12).
    @inlinable public var hasVLANTag: Bool { bytes.wireU16(Field.etherType) == 0x8100 }
    /// The 802.1Q tag, if the frame has one.
    @inlinable public var vlanTag: VLANTag? {
        hasVLANTag ? VLANTag(tci: bytes.wireU16(Field.tci)) : nil
    }
    /// The EtherType of the payload (after the tag, if any).
    @inlinable public var etherType: EtherType {
        hasVLANTag ? EtherType(bytes.wireU16(Field.taggedEtherType)) : EtherType(bytes.wireU16(Field.etherType))
    }
    /// Header length in bytes: 14, or 18 with a tag.
    @inlinable public var headerLength: Int { hasVLANTag ? 18 : 14 }
    /// Everything after the header, up to the end of the buffer (which may
    /// include padding to the 60-byte minimum frame).
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.wireSlice(headerLength..<bytes.count) }
}

/// A mutable view of an Ethernet II frame. Setters write in place; MAC
/// rewrites need no checksum update.
public struct EthernetMutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    /// Same checks as `EthernetHeader(validating:)`.
    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try EthernetHeader(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    /// The same frame, read-only.
    @inlinable public var readOnly: EthernetHeader { EthernetHeader(unchecked: bytes.wireReadOnly) }

    @inlinable public var destination: MACAddress {
        get { readOnly.destination }
        nonmutating set { bytes.wireSetMAC(newValue, EthernetHeader.Field.destination) }
    }
    @inlinable public var source: MACAddress {
        get { readOnly.source }
        nonmutating set { bytes.wireSetMAC(newValue, EthernetHeader.Field.source) }
    }
    @inlinable public var hasVLANTag: Bool { readOnly.hasVLANTag }
    /// The 802.1Q tag. Setting changes the TCI of a tagged frame; adding or
    /// removing a tag in place is not possible (it moves the payload), so
    /// setting nil on a tagged frame or a tag on an untagged one traps.
    @inlinable public var vlanTag: VLANTag? {
        get { readOnly.vlanTag }
        nonmutating set {
            precondition((newValue != nil) == hasVLANTag, "cannot add or remove an 802.1Q tag in place")
            if let tag = newValue { bytes.wireSetU16(tag.tci, EthernetHeader.Field.tci) }
        }
    }
    /// The EtherType of the payload (after the tag, if any).
    @inlinable public var etherType: EtherType {
        get { readOnly.etherType }
        nonmutating set {
            bytes.wireSetU16(newValue.rawValue,
                             hasVLANTag ? EthernetHeader.Field.taggedEtherType : EthernetHeader.Field.etherType)
        }
    }
    @inlinable public var headerLength: Int { readOnly.headerLength }
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.wireSlice(headerLength..<bytes.count) }
}

/// The fields of an Ethernet II header as a value.
public struct EthernetRepr: Hashable, Sendable {
    public var destination: MACAddress
    public var source: MACAddress
    /// The 802.1Q tag, or nil for an untagged frame.
    public var vlanTag: VLANTag?
    /// The EtherType of the payload.
    public var etherType: EtherType

    @inlinable
    public init(destination: MACAddress, source: MACAddress, vlanTag: VLANTag? = nil, etherType: EtherType) {
        self.destination = destination
        self.source = source
        self.vlanTag = vlanTag
        self.etherType = etherType
    }

    @inlinable
    public init(parsing header: EthernetHeader) {
        self.init(destination: header.destination, source: header.source,
                  vlanTag: header.vlanTag, etherType: header.etherType)
    }

    /// Header length in bytes: 14, or 18 with a tag.
    @inlinable public var headerLength: Int { vlanTag == nil ? 14 : 18 }

    /// Writes every header field. The buffer must hold `headerLength` bytes.
    @inlinable
    public func emit(into header: EthernetMutableHeader) {
        let b = header.bytes
        precondition(b.count >= headerLength, "buffer too small for the Ethernet header")
        b.wireSetMAC(destination, EthernetHeader.Field.destination)
        b.wireSetMAC(source, EthernetHeader.Field.source)
        if let tag = vlanTag {
            b.wireSetU16(EtherType.vlan.rawValue, EthernetHeader.Field.etherType)
            b.wireSetU16(tag.tci, EthernetHeader.Field.tci)
            b.wireSetU16(etherType.rawValue, EthernetHeader.Field.taggedEtherType)
        } else {
            b.wireSetU16(etherType.rawValue, EthernetHeader.Field.etherType)
        }
    }
}
