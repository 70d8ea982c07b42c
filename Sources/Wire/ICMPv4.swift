// ICMP for IPv4 (RFC 792, RFC 1191 for Fragmentation Needed).
//
//   0       1       2               4               6               8
//  +-------+-------+---------------+-------------------------------+
//  | type  | code  |   checksum    |        rest of header         | payload ...
//                                  | identifier    | sequence      |  echo (0, 8)
//                                  | unused        | next-hop MTU  |  unreachable (3), code 4
//                                  | unused                        |  time exceeded (11)
//
// The checksum covers the whole ICMP message, so the view's buffer must end
// where the message ends (take it from `IPv4Header.payload`). For errors the
// payload is the quoted original datagram (its IP header + at least 8 bytes).

/// An ICMPv4 message type (IANA "ICMP Type Numbers"). Open.
public struct ICMPv4Type: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    @inlinable public static var echoReply: ICMPv4Type { ICMPv4Type(0) }
    @inlinable public static var destinationUnreachable: ICMPv4Type { ICMPv4Type(3) }
    @inlinable public static var redirect: ICMPv4Type { ICMPv4Type(5) }
    @inlinable public static var echoRequest: ICMPv4Type { ICMPv4Type(8) }
    @inlinable public static var timeExceeded: ICMPv4Type { ICMPv4Type(11) }
    @inlinable public static var parameterProblem: ICMPv4Type { ICMPv4Type(12) }

    /// True for the error messages that quote an original datagram.
    @inlinable public var isError: Bool {
        switch rawValue {
        case 3, 4, 5, 11, 12: true
        default: false
        }
    }

    public var description: String {
        switch rawValue {
        case 0: "echo-reply"
        case 3: "destination-unreachable"
        case 5: "redirect"
        case 8: "echo-request"
        case 11: "time-exceeded"
        case 12: "parameter-problem"
        default: "icmp-type-\(rawValue)"
        }
    }
}

/// Codes of ICMPv4 Destination Unreachable (type 3) and Time Exceeded (type 11).
public enum ICMPv4Code {
    @inlinable public static var networkUnreachable: UInt8 { 0 }
    @inlinable public static var hostUnreachable: UInt8 { 1 }
    @inlinable public static var protocolUnreachable: UInt8 { 2 }
    @inlinable public static var portUnreachable: UInt8 { 3 }
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
    @inlinable public static var fragmentationNeeded: UInt8 { 4 }
    @inlinable public static var communicationAdministrativelyProhibited: UInt8 { 13 }
    /// Time Exceeded: TTL exceeded in transit.
    @inlinable public static var ttlExceeded: UInt8 { 0 }
    /// Time Exceeded: fragment reassembly time exceeded.
    @inlinable public static var reassemblyTimeExceeded: UInt8 { 1 }
}

/// A read-only view of an ICMPv4 message (header and payload).
public struct ICMPv4Header {
    /// The message, from the type byte to the end of the message.
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields.
    public enum Field {
        @inlinable public static var type: Int { 0 }
        @inlinable public static var code: Int { 1 }
        @inlinable public static var checksum: Int { 2 }
        /// The 4-byte type-specific "rest of header".
        @inlinable public static var restOfHeader: Int { 4 }
        /// Echo identifier.
        @inlinable public static var identifier: Int { 4 }
        /// Echo sequence number.
        @inlinable public static var sequenceNumber: Int { 6 }
        /// Next-hop MTU of Fragmentation Needed.
        @inlinable public static var nextHopMTU: Int { 6 }
        @inlinable public static var payload: Int { 8 }
    }

    /// Header length in bytes (8).
    @inlinable public static var headerLength: Int { 8 }

    /// Checks that the 8-byte header fits (`.truncated`). Does not verify
    /// the checksum.
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 8 else { throw .truncated }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var type: ICMPv4Type { ICMPv4Type(bytes.wireU8(Field.type)) }
    @inlinable public var code: UInt8 { bytes.wireU8(Field.code) }
    @inlinable public var checksum: UInt16 { bytes.wireU16(Field.checksum) }
    /// The 4 type-specific bytes after the checksum, as one big-endian word.
    @inlinable public var restOfHeader: UInt32 { bytes.wireU32(Field.restOfHeader) }
    /// Echo identifier (meaningful for echo request/reply).
    @inlinable public var identifier: UInt16 { bytes.wireU16(Field.identifier) }
    /// Echo sequence number (meaningful for echo request/reply).
    @inlinable public var sequenceNumber: UInt16 { bytes.wireU16(Field.sequenceNumber) }
    /// Next-hop MTU in bytes (Destination Unreachable, code 4).
    @inlinable public var nextHopMTU: UInt16 { bytes.wireU16(Field.nextHopMTU) }
    /// Header length in bytes (8).
    @inlinable public var headerLength: Int { 8 }
    /// Everything after the 8-byte header: echo data, or the quoted datagram
    /// of an error.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.wireSlice(8..<bytes.count) }

    /// The checksum the message should carry (as if the field were zero).
    ///
    /// Sums around the checksum field rather than subtracting it: with no
    /// pseudo-header, an all-zero message (echo reply, id 0, seq 0, no data)
    /// has sum 0, and one's-complement subtraction would give −0 (0xFFFF)
    /// and a checksum of 0x0000 that does not verify; the right one is 0xFFFF.
    @inlinable public var computedChecksum: UInt16 {
        ~InternetChecksum.add(InternetChecksum.sum(bytes.wireSlice(0..<2)),
                              InternetChecksum.sum(bytes.wireSlice(4..<bytes.count)))
    }
    /// True if the checksum over the whole message verifies.
    @inlinable public var isChecksumValid: Bool { InternetChecksum.sum(bytes) == 0xFFFF }
}

/// A mutable view of an ICMPv4 message.
public struct ICMPv4MutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try ICMPv4Header(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var readOnly: ICMPv4Header { ICMPv4Header(unchecked: bytes.wireReadOnly) }

    @usableFromInline typealias F = ICMPv4Header.Field

    @inlinable public var type: ICMPv4Type {
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
    /// The plain setter leaves the checksum alone; see `rewriteIdentifier`.
    @inlinable public var identifier: UInt16 {
        get { readOnly.identifier }
        nonmutating set { bytes.wireSetU16(newValue, F.identifier) }
    }
    @inlinable public var sequenceNumber: UInt16 {
        get { readOnly.sequenceNumber }
        nonmutating set { bytes.wireSetU16(newValue, F.sequenceNumber) }
    }
    @inlinable public var nextHopMTU: UInt16 {
        get { readOnly.nextHopMTU }
        nonmutating set { bytes.wireSetU16(newValue, F.nextHopMTU) }
    }
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.wireSlice(8..<bytes.count) }

    /// Recomputes the checksum over the whole message.
    @inlinable public func fillChecksum() { checksum = readOnly.computedChecksum }

    /// Sets the echo identifier, updating the checksum incrementally (ICMP
    /// "port" translation in NAT).
    @inlinable public func rewriteIdentifier(_ id: UInt16) {
        let old = readOnly.identifier
        identifier = id
        checksum = InternetChecksum.update(readOnly.checksum, old: old, new: id)
    }
}

/// The type-specific meaning of an ICMPv4 header. Anything that does not fit
/// a named case exactly (unknown type, unexpected code, non-zero unused
/// bytes such as an RFC 4884 length) is `.other`, so parsing never loses bits.
public enum ICMPv4Message: Hashable, Sendable {
    case echoRequest(identifier: UInt16, sequenceNumber: UInt16)
    case echoReply(identifier: UInt16, sequenceNumber: UInt16)
    /// Type 3. `nextHopMTU` (the low 16 bits of the rest of the header) is
    /// meaningful with code 4, fragmentation needed (RFC 1191), and 0 otherwise.
    case destinationUnreachable(code: UInt8, nextHopMTU: UInt16)
    /// Type 11.
    case timeExceeded(code: UInt8)
    case other(type: ICMPv4Type, code: UInt8, restOfHeader: UInt32)
}

/// An ICMPv4 header as a value; the payload (echo data or quoted datagram)
/// stays in the buffer and is counted by `payloadLength`.
public struct ICMPv4Repr: Hashable, Sendable {
    public var message: ICMPv4Message
    /// Payload length in bytes (echo data or the quoted datagram).
    public var payloadLength: Int

    @inlinable
    public init(message: ICMPv4Message, payloadLength: Int) {
        self.message = message
        self.payloadLength = payloadLength
    }

    /// Reads a validated message (the checksum is not checked here).
    @inlinable
    public init(parsing header: ICMPv4Header) {
        let type = header.type, code = header.code, rest = header.restOfHeader
        let message: ICMPv4Message
        switch (type.rawValue, code) {
        case (8, 0): message = .echoRequest(identifier: header.identifier, sequenceNumber: header.sequenceNumber)
        case (0, 0): message = .echoReply(identifier: header.identifier, sequenceNumber: header.sequenceNumber)
        case (3, _) where rest >> 16 == 0:
            message = .destinationUnreachable(code: code, nextHopMTU: header.nextHopMTU)
        case (11, _) where rest == 0: message = .timeExceeded(code: code)
        default: message = .other(type: type, code: code, restOfHeader: rest)
        }
        self.init(message: message, payloadLength: header.bytes.count - 8)
    }

    /// Header length in bytes (8).
    @inlinable public var headerLength: Int { 8 }
    /// Message length in bytes: header + payload.
    @inlinable public var bufferLength: Int { 8 + payloadLength }

    /// Writes every header field and the checksum, computed over the header
    /// and the `payloadLength` payload bytes that must already follow it.
    /// The buffer must be at least `bufferLength` bytes; the checksum covers
    /// exactly `bufferLength`.
    @inlinable
    public func emit(into header: ICMPv4MutableHeader) {
        precondition(header.bytes.count >= bufferLength, "buffer too small for the ICMP message")
        let h = ICMPv4MutableHeader(unchecked: header.bytes.wireSlice(0..<bufferLength))
        switch message {
        case let .echoRequest(id, seq):
            h.type = .echoRequest; h.code = 0; h.identifier = id; h.sequenceNumber = seq
        case let .echoReply(id, seq):
            h.type = .echoReply; h.code = 0; h.identifier = id; h.sequenceNumber = seq
        case let .destinationUnreachable(code, mtu):
            h.type = .destinationUnreachable; h.code = code; h.restOfHeader = UInt32(mtu)
        case let .timeExceeded(code):
            h.type = .timeExceeded; h.code = code; h.restOfHeader = 0
        case let .other(type, code, rest):
            h.type = type; h.code = code; h.restOfHeader = rest
        }
        h.checksum = 0
        h.fillChecksum()
    }
}
