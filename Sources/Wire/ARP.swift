// ARP (RFC 826) for IPv4 over Ethernet, the only kind wirelab speaks.
//
//  0       2       4   5   6       8             14      18            24      28
//  +-------+-------+---+---+-------+-------------+-------+-------------+-------+
//  | htype | ptype |hln|pln| oper  | sender MAC  |sndr IP| target MAC  |tgt IP |
//  | 0001  | 0800  | 6 | 4 |       |             |       |             |       |

/// An ARP operation code (RFC 826, RFC 903). Open.
public struct ARPOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16

    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// 1: request ("who has").
    @inlinable public static var request: ARPOperation { ARPOperation(1) }
    /// 2: reply ("is at").
    @inlinable public static var reply: ARPOperation { ARPOperation(2) }

    public var description: String {
        switch rawValue {
        case 1: "request"
        case 2: "reply"
        default: "arp-op-\(rawValue)"
        }
    }
}

/// A read-only view of an ARP packet for IPv4 over Ethernet.
public struct ARPHeader {
    /// The ARP packet, from the hardware type on (trailing padding allowed).
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields.
    public enum Field {
        @inlinable public static var hardwareType: Int { 0 }
        @inlinable public static var protocolType: Int { 2 }
        @inlinable public static var hardwareLength: Int { 4 }
        @inlinable public static var protocolLength: Int { 5 }
        @inlinable public static var operation: Int { 6 }
        @inlinable public static var senderHardwareAddress: Int { 8 }
        @inlinable public static var senderProtocolAddress: Int { 14 }
        @inlinable public static var targetHardwareAddress: Int { 18 }
        @inlinable public static var targetProtocolAddress: Int { 24 }
    }

    /// Length in bytes of an IPv4-over-Ethernet ARP packet.
    @inlinable public static var length: Int { 28 }

    /// Checks the length (28 bytes; `.truncated`) and that this is IPv4 over
    /// Ethernet: hardware type 1, protocol 0x0800, lengths 6 and 4
    /// (`.unsupported` otherwise).
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 28 else { throw .truncated }
        guard bytes.wireU16(Field.hardwareType) == 1, bytes.wireU16(Field.protocolType) == 0x0800,
              bytes.wireU8(Field.hardwareLength) == 6, bytes.wireU8(Field.protocolLength) == 4
        else { throw .unsupported }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Hardware type (1 = Ethernet).
    @inlinable public var hardwareType: UInt16 { bytes.wireU16(Field.hardwareType) }
    /// Protocol type, an EtherType (0x0800 = IPv4).
    @inlinable public var protocolType: EtherType { EtherType(bytes.wireU16(Field.protocolType)) }
    /// Hardware address length in bytes (6).
    @inlinable public var hardwareLength: UInt8 { bytes.wireU8(Field.hardwareLength) }
    /// Protocol address length in bytes (4).
    @inlinable public var protocolLength: UInt8 { bytes.wireU8(Field.protocolLength) }
    @inlinable public var operation: ARPOperation { ARPOperation(bytes.wireU16(Field.operation)) }
    @inlinable public var senderHardwareAddress: MACAddress { bytes.wireMAC(Field.senderHardwareAddress) }
    @inlinable public var senderProtocolAddress: IPv4Address { bytes.wireIPv4(Field.senderProtocolAddress) }
    @inlinable public var targetHardwareAddress: MACAddress { bytes.wireMAC(Field.targetHardwareAddress) }
    @inlinable public var targetProtocolAddress: IPv4Address { bytes.wireIPv4(Field.targetProtocolAddress) }
}

/// A mutable view of an ARP packet for IPv4 over Ethernet.
public struct ARPMutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try ARPHeader(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var readOnly: ARPHeader { ARPHeader(unchecked: bytes.wireReadOnly) }

    @inlinable public var hardwareType: UInt16 {
        get { readOnly.hardwareType }
        nonmutating set { bytes.wireSetU16(newValue, ARPHeader.Field.hardwareType) }
    }
    @inlinable public var protocolType: EtherType {
        get { readOnly.protocolType }
        nonmutating set { bytes.wireSetU16(newValue.rawValue, ARPHeader.Field.protocolType) }
    }
    @inlinable public var hardwareLength: UInt8 {
        get { readOnly.hardwareLength }
        nonmutating set { bytes.wireSetU8(newValue, ARPHeader.Field.hardwareLength) }
    }
    @inlinable public var protocolLength: UInt8 {
        get { readOnly.protocolLength }
        nonmutating set { bytes.wireSetU8(newValue, ARPHeader.Field.protocolLength) }
    }
    @inlinable public var operation: ARPOperation {
        get { readOnly.operation }
        nonmutating set { bytes.wireSetU16(newValue.rawValue, ARPHeader.Field.operation) }
    }
    @inlinable public var senderHardwareAddress: MACAddress {
        get { readOnly.senderHardwareAddress }
        nonmutating set { bytes.wireSetMAC(newValue, ARPHeader.Field.senderHardwareAddress) }
    }
    @inlinable public var senderProtocolAddress: IPv4Address {
        get { readOnly.senderProtocolAddress }
        nonmutating set { bytes.wireSetIPv4(newValue, ARPHeader.Field.senderProtocolAddress) }
    }
    @inlinable public var targetHardwareAddress: MACAddress {
        get { readOnly.targetHardwareAddress }
        nonmutating set { bytes.wireSetMAC(newValue, ARPHeader.Field.targetHardwareAddress) }
    }
    @inlinable public var targetProtocolAddress: IPv4Address {
        get { readOnly.targetProtocolAddress }
        nonmutating set { bytes.wireSetIPv4(newValue, ARPHeader.Field.targetProtocolAddress) }
    }
}

/// An IPv4-over-Ethernet ARP packet as a value.
public struct ARPRepr: Hashable, Sendable {
    public var operation: ARPOperation
    public var senderHardwareAddress: MACAddress
    public var senderProtocolAddress: IPv4Address
    public var targetHardwareAddress: MACAddress
    public var targetProtocolAddress: IPv4Address

    @inlinable
    public init(operation: ARPOperation,
                senderHardwareAddress: MACAddress, senderProtocolAddress: IPv4Address,
                targetHardwareAddress: MACAddress, targetProtocolAddress: IPv4Address) {
        self.operation = operation
        self.senderHardwareAddress = senderHardwareAddress
        self.senderProtocolAddress = senderProtocolAddress
        self.targetHardwareAddress = targetHardwareAddress
        self.targetProtocolAddress = targetProtocolAddress
    }

    @inlinable
    public init(parsing header: ARPHeader) {
        self.init(operation: header.operation,
                  senderHardwareAddress: header.senderHardwareAddress,
                  senderProtocolAddress: header.senderProtocolAddress,
                  targetHardwareAddress: header.targetHardwareAddress,
                  targetProtocolAddress: header.targetProtocolAddress)
    }

    /// Length in bytes (28).
    @inlinable public var bufferLength: Int { 28 }

    /// Writes every field, including the fixed hardware/protocol types and
    /// lengths. The buffer must hold 28 bytes.
    @inlinable
    public func emit(into header: ARPMutableHeader) {
        precondition(header.bytes.count >= 28, "buffer too small for ARP")
        header.hardwareType = 1
        header.protocolType = .ipv4
        header.hardwareLength = 6
        header.protocolLength = 4
        header.operation = operation
        header.senderHardwareAddress = senderHardwareAddress
        header.senderProtocolAddress = senderProtocolAddress
        header.targetHardwareAddress = targetHardwareAddress
        header.targetProtocolAddress = targetProtocolAddress
    }
}
