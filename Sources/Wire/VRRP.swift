// VRRP version 3 advertisements for IPv4 (RFC 9568 §5).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |(rsvd) |     Max Adver Int     |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                 IPv4 Address(es), Count of them                |
//
// Sent in IPv4 to 224.0.0.18, protocol 112, TTL 255 (§5.1.1), in Ethernet
// to 01:00:5e:00:00:12. The checksum covers the VRRP message and the IPv4
// pseudo-header (§5.2.8; Wireshark and keepalived compute it so for v3).

/// Constants of VRRP over IPv4 and Ethernet.
public enum VRRP {
    /// 112, IANA's protocol number for VRRP.
    @inlinable public static var ipProtocol: IPProtocol { IPProtocol(112) }
    /// 224.0.0.18, the address adverts are sent to.
    public static let multicastAddress = IPv4Address(224, 0, 0, 18)
    /// 01:00:5e:00:00:12, the Ethernet address of 224.0.0.18 (RFC 1112 §6.4).
    public static let multicastMAC = MACAddress(0x01, 0x00, 0x5e, 0x00, 0x00, 0x12)
    /// An advert's IPv4 TTL; a receiver drops any other (§7.1).
    public static let timeToLive: UInt8 = 255
    /// The virtual router MAC of group VRID: 00:00:5e:00:01:VRID (§7.3).
    @inlinable public static func virtualMAC(_ vrid: UInt8) -> MACAddress {
        MACAddress(0x00, 0x00, 0x5e, 0x00, 0x01, vrid)
    }
    /// Bytes of Ethernet + IPv4 before the VRRP message in a frame we build.
    public static let messageOffset = 14 + 20
}

/// A read-only view of a VRRPv3 message (from the version field on).
public struct VRRPHeader {
    public let bytes: UnsafeRawBufferPointer

    public enum Field {
        @inlinable public static var versionAndType: Int { 0 }
        @inlinable public static var virtualRouterID: Int { 1 }
        @inlinable public static var priority: Int { 2 }
        @inlinable public static var addressCount: Int { 3 }
        @inlinable public static var maxAdvertisementInterval: Int { 4 }
        @inlinable public static var checksum: Int { 6 }
        @inlinable public static var addresses: Int { 8 }
    }

    /// Length in bytes of the fixed part.
    @inlinable public static var fixedLength: Int { 8 }

    /// Checks the fixed part's length (`.truncated`), version 3
    /// (`.badVersion`), type 1 = advertisement (`.unsupported`) and that the
    /// addresses it counts fit (`.badLength`). The checksum is not checked
    /// here (`isChecksumValid`).
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 8 else { throw .truncated }
        let vt = bytes.wireU8(Field.versionAndType)
        guard vt >> 4 == 3 else { throw .badVersion }
        guard vt & 0x0F == 1 else { throw .unsupported }
        guard 8 + 4 * Int(bytes.wireU8(Field.addressCount)) <= bytes.count else { throw .badLength }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var version: UInt8 { bytes.wireU8(Field.versionAndType) >> 4 }
    @inlinable public var type: UInt8 { bytes.wireU8(Field.versionAndType) & 0x0F }
    @inlinable public var virtualRouterID: UInt8 { bytes.wireU8(Field.virtualRouterID) }
    @inlinable public var priority: UInt8 { bytes.wireU8(Field.priority) }
    @inlinable public var addressCount: Int { Int(bytes.wireU8(Field.addressCount)) }
    /// Max Adver Int in CENTISECONDS (12 bits).
    @inlinable public var maxAdvertisementInterval: UInt16 { bytes.wireU16(Field.maxAdvertisementInterval) & 0x0FFF }
    @inlinable public var checksum: UInt16 { bytes.wireU16(Field.checksum) }
    /// Length in bytes of the message the count describes.
    @inlinable public var length: Int { 8 + 4 * addressCount }
    @inlinable public func address(_ i: Int) -> IPv4Address { bytes.wireIPv4(Field.addresses + 4 * i) }

    /// The checksum verifies over the message and the pseudo-header of the
    /// IPv4 datagram from `source` to `destination` it came in.
    @inlinable
    public func isChecksumValid(source: IPv4Address, destination: IPv4Address) -> Bool {
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                      protocol: VRRP.ipProtocol, length: length)
        return InternetChecksum.sum(bytes.wireSlice(0..<length), initial: pseudo) == 0xFFFF
    }
}

/// A VRRPv3 advertisement as a value.
public struct VRRPRepr: Hashable, Sendable {
    public var virtualRouterID: UInt8
    public var priority: UInt8
    /// Max Adver Int in centiseconds, 1...4095.
    public var maxAdvertisementInterval: UInt16
    public var addresses: [IPv4Address]

    public init(virtualRouterID: UInt8, priority: UInt8, maxAdvertisementInterval: UInt16, addresses: [IPv4Address]) {
        self.virtualRouterID = virtualRouterID
        self.priority = priority
        self.maxAdvertisementInterval = maxAdvertisementInterval
        self.addresses = addresses
    }

    public init(parsing h: VRRPHeader) {
        self.init(virtualRouterID: h.virtualRouterID, priority: h.priority,
                  maxAdvertisementInterval: h.maxAdvertisementInterval,
                  addresses: (0..<h.addressCount).map(h.address))
    }

    /// Length in bytes of the message.
    public var bufferLength: Int { 8 + 4 * addresses.count }

    /// Writes the message into the first `bufferLength` bytes of `b`, with
    /// the checksum for an IPv4 datagram from `source` to `destination`.
    public func emit(into b: UnsafeMutableRawBufferPointer, source: IPv4Address,
                     destination: IPv4Address = VRRP.multicastAddress) {
        precondition(addresses.count <= 255 && maxAdvertisementInterval <= 0x0FFF)
        precondition(b.count >= bufferLength, "buffer too small for the VRRP message")
        typealias F = VRRPHeader.Field
        b.wireSetU8(0x31, F.versionAndType)
        b.wireSetU8(virtualRouterID, F.virtualRouterID)
        b.wireSetU8(priority, F.priority)
        b.wireSetU8(UInt8(addresses.count), F.addressCount)
        b.wireSetU16(maxAdvertisementInterval, F.maxAdvertisementInterval)
        b.wireSetU16(0, F.checksum)
        var i = 0   // (an index loop: generic iteration allocates unspecialised)
        while i < addresses.count {
            b.wireSetIPv4(addresses[i], F.addresses + 4 * i)
            i += 1
        }
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                      protocol: VRRP.ipProtocol, length: bufferLength)
        b.wireSetU16(InternetChecksum.checksum(b.wireReadOnly.wireSlice(0..<bufferLength), initial: pseudo), F.checksum)
    }

    /// Writes a whole advertisement frame into `slot`: Ethernet (to
    /// 01:00:5e:00:00:12 from `sourceMAC`), IPv4 (`source` → 224.0.0.18,
    /// TTL 255, protocol 112, DSCP CS6 as keepalived sends), the message.
    /// Returns the frame's length in bytes.
    public func emitFrame(into slot: UnsafeMutableRawBufferPointer, sourceMAC: MACAddress, source: IPv4Address,
                          identification: UInt16 = 0) -> Int {
        let length = VRRP.messageOffset + bufferLength
        precondition(slot.count >= length)
        EthernetRepr(destination: VRRP.multicastMAC, source: sourceMAC, etherType: .ipv4)
            .emit(into: EthernetMutableHeader(unchecked: slot))
        IPv4Repr(sourceAddress: source, destinationAddress: VRRP.multicastAddress, protocol: VRRP.ipProtocol,
                 payloadLength: bufferLength, timeToLive: VRRP.timeToLive, identification: identification,
                 dscp: 48)
            .emit(into: IPv4MutableHeader(unchecked: slot.wireSlice(14..<34)))
        emit(into: slot.wireSlice(34..<length), source: source)
        return length
    }
}

/// Why an IPv4 datagram of protocol 112 is not an advertisement a virtual
/// router may act on (RFC 9568 §7.1): each is counted by `reason`.
public enum VRRPRefusal: Error, Hashable, Sendable, CaseIterable {
    /// Shorter than its IPv4 header says, or than the fixed part.
    case truncated
    /// IPv4 TTL is not 255: it may have come through a router.
    case badTTL
    /// Version is not 3.
    case badVersion
    /// Type is not 1 (advertisement).
    case badType
    /// Count IPvX Addr does not fit the datagram.
    case badLength
    /// The checksum (with the pseudo-header) does not verify.
    case badChecksum

    /// `vrrp-…`, the name `status` counts it under.
    public var reason: String {
        switch self {
        case .truncated: "vrrp-truncated"
        case .badTTL: "vrrp-bad-ttl"
        case .badVersion: "vrrp-bad-version"
        case .badType: "vrrp-bad-type"
        case .badLength: "vrrp-bad-length"
        case .badChecksum: "vrrp-bad-checksum"
        }
    }

    /// Checks the IPv4 datagram `ip` (validated header, protocol 112) and
    /// returns a view of its VRRP message, or why it is refused.
    @inlinable
    public static func check(_ ip: IPv4Header) -> Result<VRRPHeader, VRRPRefusal> {
        guard ip.timeToLive == VRRP.timeToLive else { return .failure(.badTTL) }
        guard ip.totalLength <= ip.bytes.count, ip.totalLength >= ip.headerLength else { return .failure(.truncated) }
        let message = ip.payload
        let header: VRRPHeader
        do { header = try VRRPHeader(validating: message) } catch {
            switch error {
            case .badVersion: return .failure(.badVersion)
            case .unsupported: return .failure(.badType)
            case .badLength: return .failure(.badLength)
            default: return .failure(.truncated)
            }
        }
        guard header.isChecksumValid(source: ip.sourceAddress, destination: ip.destinationAddress) else {
            return .failure(.badChecksum)
        }
        return .success(header)
    }
}
