// ICMP for IPv6 (RFC 4443) and the Neighbor Discovery messages wirelab
// needs (RFC 4861): Neighbor Solicitation / Advertisement with the
// source/target link-layer address option.
//
//   0       1       2               4                               8
//  +-------+-------+---------------+-------------------------------+
//  | type  | code  |   checksum    |  rest of header               | payload ...
//                                  | identifier    | sequence      |  echo (128, 129)
//                                  | MTU                           |  packet too big (2)
//                                  | pointer                       |  parameter problem (4)
//                                  |R|S|O| reserved                |  NS (135, reserved) / NA (136)
//  8: target address (16), 24: options — type, length in 8-byte units, data
//
// The checksum covers an IPv6 pseudo-header and the whole message, so the
// view's buffer must end where the message ends.

/// An ICMPv6 message type (IANA "ICMPv6 Parameters"). Open.
public struct ICMPv6Type: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    @inlinable public static var destinationUnreachable: ICMPv6Type { ICMPv6Type(1) }
    @inlinable public static var packetTooBig: ICMPv6Type { ICMPv6Type(2) }
    @inlinable public static var timeExceeded: ICMPv6Type { ICMPv6Type(3) }
    @inlinable public static var parameterProblem: ICMPv6Type { ICMPv6Type(4) }
    @inlinable public static var echoRequest: ICMPv6Type { ICMPv6Type(128) }
    @inlinable public static var echoReply: ICMPv6Type { ICMPv6Type(129) }
    @inlinable public static var routerSolicitation: ICMPv6Type { ICMPv6Type(133) }
    @inlinable public static var routerAdvertisement: ICMPv6Type { ICMPv6Type(134) }
    @inlinable public static var neighborSolicitation: ICMPv6Type { ICMPv6Type(135) }
    @inlinable public static var neighborAdvertisement: ICMPv6Type { ICMPv6Type(136) }
    @inlinable public static var redirect: ICMPv6Type { ICMPv6Type(137) }

    /// Error messages (types 0–127) quote the invoking packet.
    @inlinable public var isError: Bool { rawValue < 128 }

    /// Length in bytes of the fixed part before the options of the Neighbor
    /// Discovery messages (RFC 4861), or nil for types without options.
    @inlinable public var neighborDiscoveryFixedLength: Int? {
        switch rawValue {
        case 133: 8
        case 134: 16
        case 135, 136: 24
        case 137: 40
        default: nil
        }
    }

    public var description: String {
        switch rawValue {
        case 1: "destination-unreachable"
        case 2: "packet-too-big"
        case 3: "time-exceeded"
        case 4: "parameter-problem"
        case 128: "echo-request"
        case 129: "echo-reply"
        case 133: "router-solicitation"
        case 134: "router-advertisement"
        case 135: "neighbor-solicitation"
        case 136: "neighbor-advertisement"
        case 137: "redirect"
        default: "icmpv6-type-\(rawValue)"
        }
    }
}

/// The flags of a Neighbor Advertisement (RFC 4861 §4.4).
public struct NeighborAdvertisementFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// R: the sender is a router.
    @inlinable public static var router: NeighborAdvertisementFlags { .init(rawValue: 0x80) }
    /// S: sent in response to a solicitation.
    @inlinable public static var solicited: NeighborAdvertisementFlags { .init(rawValue: 0x40) }
    /// O: override an existing cache entry.
    @inlinable public static var override: NeighborAdvertisementFlags { .init(rawValue: 0x20) }
}

/// A read-only view of an ICMPv6 message (header, body and options).
public struct ICMPv6Header {
    /// The message, from the type byte to the end of the message.
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields.
    public enum Field {
        @inlinable public static var type: Int { 0 }
        @inlinable public static var code: Int { 1 }
        @inlinable public static var checksum: Int { 2 }
        @inlinable public static var restOfHeader: Int { 4 }
        @inlinable public static var identifier: Int { 4 }
        @inlinable public static var sequenceNumber: Int { 6 }
        /// Packet Too Big MTU (32 bits).
        @inlinable public static var mtu: Int { 4 }
        /// Parameter Problem pointer (32 bits).
        @inlinable public static var pointer: Int { 4 }
        /// Neighbor Advertisement R/S/O flags (high bits of byte 4).
        @inlinable public static var neighborFlags: Int { 4 }
        /// Target address of NS/NA/redirect.
        @inlinable public static var targetAddress: Int { 8 }
    }

    /// NDP option type: source link-layer address.
    @inlinable public static var sourceLinkLayerAddressOption: UInt8 { 1 }
    /// NDP option type: target link-layer address.
    @inlinable public static var targetLinkLayerAddressOption: UInt8 { 2 }

    /// Checks: the 8-byte header fits (`.truncated`); for Neighbor
    /// Discovery types the fixed part fits (`.truncated`) and every option
    /// has its 2-byte header (`.truncated`), a non-zero length
    /// (`.badLength`) and ends within the buffer (`.badLength`). Does not
    /// verify the checksum.
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 8 else { throw .truncated }
        if let fixed = ICMPv6Type(bytes.wireU8(0)).neighborDiscoveryFixedLength {
            guard bytes.count >= fixed else { throw .truncated }
            var offset = fixed
            while offset < bytes.count {  // each step advances ≥ 8 bytes
                guard offset &+ 2 <= bytes.count else { throw .truncated }
                let length = Int(bytes.wireU8(offset &+ 1)) &<< 3
                guard length > 0, offset &+ length <= bytes.count else { throw .badLength }
                offset &+= length
            }
        }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var type: ICMPv6Type { ICMPv6Type(bytes.wireU8(Field.type)) }
    @inlinable public var code: UInt8 { bytes.wireU8(Field.code) }
    @inlinable public var checksum: UInt16 { bytes.wireU16(Field.checksum) }
    @inlinable public var restOfHeader: UInt32 { bytes.wireU32(Field.restOfHeader) }
    /// Echo identifier.
    @inlinable public var identifier: UInt16 { bytes.wireU16(Field.identifier) }
    /// Echo sequence number.
    @inlinable public var sequenceNumber: UInt16 { bytes.wireU16(Field.sequenceNumber) }
    /// Packet Too Big: MTU in bytes.
    @inlinable public var mtu: UInt32 { bytes.wireU32(Field.mtu) }
    /// Parameter Problem: offset in bytes of the error in the invoking packet.
    @inlinable public var pointer: UInt32 { bytes.wireU32(Field.pointer) }
    /// Neighbor Advertisement flags.
    @inlinable public var neighborAdvertisementFlags: NeighborAdvertisementFlags {
        NeighborAdvertisementFlags(rawValue: bytes.wireU8(Field.neighborFlags) & 0xE0)
    }
    /// The target address of a Neighbor Solicitation/Advertisement or a
    /// Redirect; nil for other types.
    @inlinable public var targetAddress: IPv6Address? {
        switch type.rawValue {
        case 135, 136, 137: bytes.wireIPv6(Field.targetAddress)
        default: nil
        }
    }
    /// Header length in bytes (8).
    @inlinable public var headerLength: Int { 8 }
    /// Everything after the 8-byte header.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.wireSlice(8..<bytes.count) }
    /// The Neighbor Discovery options (empty for other types).
    @inlinable public var options: UnsafeRawBufferPointer {
        guard let fixed = type.neighborDiscoveryFixedLength else { return bytes.wireSlice(0..<0) }
        return bytes.wireSlice(fixed..<bytes.count)
    }

    /// The link-layer address in the first NDP option of `optionType` (1 =
    /// source, 2 = target), or nil. Walks the validated options; bounded.
    @inlinable
    public func linkLayerAddress(option optionType: UInt8) -> MACAddress? {
        guard let fixed = type.neighborDiscoveryFixedLength else { return nil }
        var offset = fixed
        while offset &+ 2 <= bytes.count {
            let length = Int(bytes.wireU8(offset &+ 1)) &<< 3
            guard length > 0, offset &+ length <= bytes.count else { return nil }
            if bytes.wireU8(offset) == optionType, length >= 8 { return bytes.wireMAC(offset &+ 2) }
            offset &+= length
        }
        return nil
    }

    /// The Source Link-Layer Address option (NS, RS, RA), if present.
    @inlinable public var sourceLinkLayerAddress: MACAddress? {
        linkLayerAddress(option: ICMPv6Header.sourceLinkLayerAddressOption)
    }
    /// The Target Link-Layer Address option (NA, redirect), if present.
    @inlinable public var targetLinkLayerAddress: MACAddress? {
        linkLayerAddress(option: ICMPv6Header.targetLinkLayerAddressOption)
    }

    /// The checksum the message should carry under the IPv6 pseudo-header
    /// (as if the field were zero).
    @inlinable
    public func computedChecksum(source: IPv6Address, destination: IPv6Address) -> UInt16 {
        let initial = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                       nextHeader: .icmpv6, length: bytes.count)
        return ~InternetChecksum.add(InternetChecksum.sum(bytes, initial: initial), ~checksum)
    }

    /// True if the checksum verifies under the IPv6 pseudo-header.
    @inlinable
    public func isChecksumValid(source: IPv6Address, destination: IPv6Address) -> Bool {
        let initial = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                       nextHeader: .icmpv6, length: bytes.count)
        return InternetChecksum.sum(bytes, initial: initial) == 0xFFFF
    }
}

/// A mutable view of an ICMPv6 message.
public struct ICMPv6MutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try ICMPv6Header(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var readOnly: ICMPv6Header { ICMPv6Header(unchecked: bytes.wireReadOnly) }

    @usableFromInline typealias F = ICMPv6Header.Field

    @inlinable public var type: ICMPv6Type {
        get { readOnly.type }
        nonmutating set { bytes.wireSetU8(newValue.rawValue, F.type) }
    }
    @inlinable public var code: UInt8 {
        get { readOnly.code }
        nonmutating set { bytes.wireSetU8(newValue, F.code) }
    }
    @inlinable public var checksum: UInt16 {
        get { readOnly.checksum }
        nonmutating set { bytes.wireSetU16(newValue, F.checksum) }
    }
    @inlinable public var restOfHeader: UInt32 {
        get { readOnly.restOfHeader }
        nonmutating set { bytes.wireSetU32(newValue, F.restOfHeader) }
    }
    @inlinable public var identifier: UInt16 {
        get { readOnly.identifier }
        nonmutating set { bytes.wireSetU16(newValue, F.identifier) }
    }
    @inlinable public var sequenceNumber: UInt16 {
        get { readOnly.sequenceNumber }
        nonmutating set { bytes.wireSetU16(newValue, F.sequenceNumber) }
    }
    @inlinable public var mtu: UInt32 {
        get { readOnly.mtu }
        nonmutating set { bytes.wireSetU32(newValue, F.mtu) }
    }
    @inlinable public var pointer: UInt32 {
        get { readOnly.pointer }
        nonmutating set { bytes.wireSetU32(newValue, F.pointer) }
    }
    /// Sets the R/S/O bits, clearing the reserved bits of byte 4.
    @inlinable public var neighborAdvertisementFlags: NeighborAdvertisementFlags {
        get { readOnly.neighborAdvertisementFlags }
        nonmutating set { bytes.wireSetU8(newValue.rawValue & 0xE0, F.neighborFlags) }
    }
    /// Writes bytes 8..<24; only for NS/NA/redirect-sized messages.
    @inlinable public func setTargetAddress(_ address: IPv6Address) {
        bytes.wireSetIPv6(address, F.targetAddress)
    }
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.wireSlice(8..<bytes.count) }

    /// Recomputes the checksum over the whole message and the IPv6 pseudo-header.
    @inlinable public func fillChecksum(source: IPv6Address, destination: IPv6Address) {
        checksum = readOnly.computedChecksum(source: source, destination: destination)
    }
}

/// The type-specific meaning of an ICMPv6 message. Anything that does not
/// fit a named case exactly is `.other` (its body after byte 8 is payload).
public enum ICMPv6Message: Hashable, Sendable {
    case echoRequest(identifier: UInt16, sequenceNumber: UInt16)
    case echoReply(identifier: UInt16, sequenceNumber: UInt16)
    /// Type 1 (unused field zero).
    case destinationUnreachable(code: UInt8)
    /// Type 2, code 0: MTU in bytes.
    case packetTooBig(mtu: UInt32)
    /// Type 3 (unused field zero).
    case timeExceeded(code: UInt8)
    /// Type 4: pointer is an offset in bytes into the invoking packet.
    case parameterProblem(code: UInt8, pointer: UInt32)
    /// Type 135, code 0, reserved zero. Options other than the source
    /// link-layer address are not kept.
    case neighborSolicitation(targetAddress: IPv6Address, sourceLinkLayerAddress: MACAddress?)
    /// Type 136, code 0, reserved zero. Options other than the target
    /// link-layer address are not kept.
    case neighborAdvertisement(flags: NeighborAdvertisementFlags, targetAddress: IPv6Address,
                               targetLinkLayerAddress: MACAddress?)
    case other(type: ICMPv6Type, code: UInt8, restOfHeader: UInt32)
}

/// An ICMPv6 message as a value. Echo data and quoted packets stay in the
/// buffer and are counted by `payloadLength`; for NS/NA the Repr holds
/// the whole message and `payloadLength` is 0.
public struct ICMPv6Repr: Hashable, Sendable {
    public var message: ICMPv6Message
    /// Length in bytes of what follows the header this Repr writes: echo
    /// data, the invoking packet of an error, the body of `.other`; 0 for
    /// NS/NA.
    public var payloadLength: Int

    @inlinable
    public init(message: ICMPv6Message, payloadLength: Int = 0) {
        self.message = message
        self.payloadLength = payloadLength
    }

    /// Reads a validated message (the checksum is not checked here).
    public init(parsing header: ICMPv6Header) {
        let type = header.type, code = header.code, rest = header.restOfHeader
        let count = header.bytes.count
        switch (type.rawValue, code) {
        case (128, 0):
            self.init(message: .echoRequest(identifier: header.identifier, sequenceNumber: header.sequenceNumber),
                      payloadLength: count - 8)
        case (129, 0):
            self.init(message: .echoReply(identifier: header.identifier, sequenceNumber: header.sequenceNumber),
                      payloadLength: count - 8)
        case (1, _) where rest == 0:
            self.init(message: .destinationUnreachable(code: code), payloadLength: count - 8)
        case (2, 0):
            self.init(message: .packetTooBig(mtu: header.mtu), payloadLength: count - 8)
        case (3, _) where rest == 0:
            self.init(message: .timeExceeded(code: code), payloadLength: count - 8)
        case (4, _):
            self.init(message: .parameterProblem(code: code, pointer: header.pointer), payloadLength: count - 8)
        case (135, 0) where rest == 0:
            self.init(message: .neighborSolicitation(targetAddress: header.bytes.wireIPv6(ICMPv6Header.Field.targetAddress),
                                                     sourceLinkLayerAddress: header.sourceLinkLayerAddress))
        case (136, 0) where rest & 0x1FFF_FFFF == 0:
            self.init(message: .neighborAdvertisement(flags: header.neighborAdvertisementFlags,
                                                      targetAddress: header.bytes.wireIPv6(ICMPv6Header.Field.targetAddress),
                                                      targetLinkLayerAddress: header.targetLinkLayerAddress))
        default:
            self.init(message: .other(type: type, code: code, restOfHeader: rest), payloadLength: count - 8)
        }
    }

    /// Length in bytes of what `emit` writes: 8, or 24 (+ 8 with a
    /// link-layer address option) for NS/NA.
    public var headerLength: Int {
        switch message {
        case let .neighborSolicitation(_, ll): ll == nil ? 24 : 32
        case let .neighborAdvertisement(_, _, ll): ll == nil ? 24 : 32
        default: 8
        }
    }
    /// Message length in bytes: `headerLength + payloadLength`.
    public var bufferLength: Int { headerLength + payloadLength }

    /// Writes every field (NS/NA: target and link-layer address option too)
    /// and the checksum over the first `bufferLength` bytes, whose payload
    /// must already be in place, under the IPv6 pseudo-header.
    public func emit(into header: ICMPv6MutableHeader, source: IPv6Address, destination: IPv6Address) {
        precondition(header.bytes.count >= bufferLength, "buffer too small for the ICMPv6 message")
        let h = ICMPv6MutableHeader(unchecked: header.bytes.wireSlice(0..<bufferLength))
        func linkLayerOption(_ type: UInt8, _ mac: MACAddress?) {
            guard let mac else { return }
            h.bytes.wireSetU8(type, 24)
            h.bytes.wireSetU8(1, 25)
            h.bytes.wireSetMAC(mac, 26)
        }
        switch message {
        case let .echoRequest(id, seq):
            h.type = .echoRequest; h.code = 0; h.identifier = id; h.sequenceNumber = seq
        case let .echoReply(id, seq):
            h.type = .echoReply; h.code = 0; h.identifier = id; h.sequenceNumber = seq
        case let .destinationUnreachable(code):
            h.type = .destinationUnreachable; h.code = code; h.restOfHeader = 0
        case let .packetTooBig(mtu):
            h.type = .packetTooBig; h.code = 0; h.mtu = mtu
        case let .timeExceeded(code):
            h.type = .timeExceeded; h.code = code; h.restOfHeader = 0
        case let .parameterProblem(code, pointer):
            h.type = .parameterProblem; h.code = code; h.pointer = pointer
        case let .neighborSolicitation(target, ll):
            h.type = .neighborSolicitation; h.code = 0; h.restOfHeader = 0
            h.setTargetAddress(target)
            linkLayerOption(ICMPv6Header.sourceLinkLayerAddressOption, ll)
        case let .neighborAdvertisement(flags, target, ll):
            h.type = .neighborAdvertisement; h.code = 0; h.restOfHeader = 0
            h.neighborAdvertisementFlags = flags
            h.setTargetAddress(target)
            linkLayerOption(ICMPv6Header.targetLinkLayerAddressOption, ll)
        case let .other(type, code, rest):
            h.type = type; h.code = code; h.restOfHeader = rest
        }
        h.checksum = 0
        h.fillChecksum(source: source, destination: destination)
    }
}
