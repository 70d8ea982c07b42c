// UDP (RFC 768).
//
//   0       2       4       6       8
//  +-------+-------+-------+-------+---------
//  | sport | dport | length| csum  | payload ...
//
// Checksum rule: 0 means "no checksum" (IPv4 only; RFC 8200 forbids it for
// IPv6); a computed 0 is sent as 0xFFFF. Rewrites keep a 0 checksum 0.

/// A read-only view of a UDP datagram (header and payload).
public struct UDPHeader {
    /// The datagram from the source port on; may extend past `length`.
    public let bytes: UnsafeRawBufferPointer

    /// Byte offsets of the fields.
    public enum Field {
        @inlinable public static var sourcePort: Int { 0 }
        @inlinable public static var destinationPort: Int { 2 }
        @inlinable public static var length: Int { 4 }
        @inlinable public static var checksum: Int { 6 }
    }

    /// Header length in bytes (8).
    @inlinable public static var headerLength: Int { 8 }

    /// Checks: at least 8 bytes (`.truncated`); the Length field ≥ 8 and
    /// within the buffer (`.badLength`). Does not verify the checksum.
    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= 8 else { throw .truncated }
        let length = Int(bytes.wireU16(Field.length))
        guard length >= 8, length <= bytes.count else { throw .badLength }
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public var sourcePort: UInt16 { bytes.wireU16(Field.sourcePort) }
    @inlinable public var destinationPort: UInt16 { bytes.wireU16(Field.destinationPort) }
    /// Length in bytes of header + payload (the Length field).
    @inlinable public var length: Int { Int(bytes.wireU16(Field.length)) }
    /// The checksum field (0 = none).
    @inlinable public var checksum: UInt16 { bytes.wireU16(Field.checksum) }
    /// Header length in bytes (8).
    @inlinable public var headerLength: Int { 8 }
    /// The payload: bytes 8..<length.
    @inlinable public var payload: UnsafeRawBufferPointer { bytes.wireSlice(8..<length) }
    /// The datagram: bytes 0..<length.
    @inlinable public var datagram: UnsafeRawBufferPointer { bytes.wireSlice(0..<length) }

    /// The checksum this datagram should carry under `pseudoHeader`
    /// (computed as if the field were zero; a computed 0 is given as 0xFFFF).
    @inlinable
    public func computedChecksum(pseudoHeader: IPPseudoHeader) -> UInt16 {
        let initial = pseudoHeader.sum(protocol: .udp, length: length)
        let c = ~InternetChecksum.add(InternetChecksum.sum(datagram, initial: initial), ~checksum)
        return c == 0 ? 0xFFFF : c
    }

    /// True if the checksum verifies, or is 0 ("none") over IPv4.
    @inlinable
    public func isChecksumValid(pseudoHeader: IPPseudoHeader) -> Bool {
        if checksum == 0, case .ipv4 = pseudoHeader { return true }
        let initial = pseudoHeader.sum(protocol: .udp, length: length)
        return InternetChecksum.sum(datagram, initial: initial) == 0xFFFF
    }
}

/// A mutable view of a UDP datagram.
public struct UDPMutableHeader {
    public let bytes: UnsafeMutableRawBufferPointer

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        _ = try UDPHeader(validating: UnsafeRawBufferPointer(bytes))
        self.bytes = bytes
    }

    @inlinable public init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var readOnly: UDPHeader { UDPHeader(unchecked: bytes.wireReadOnly) }

    @usableFromInline typealias F = UDPHeader.Field

    /// The plain setter leaves the checksum alone; see `rewriteSourcePort`.
    @inlinable public var sourcePort: UInt16 {
        get { readOnly.sourcePort }
        nonmutating set { bytes.wireSetU16(newValue, F.sourcePort) }
    }
    /// The plain setter leaves the checksum alone; see `rewriteDestinationPort`.
    @inlinable public var destinationPort: UInt16 {
        get { readOnly.destinationPort }
        nonmutating set { bytes.wireSetU16(newValue, F.destinationPort) }
    }
    /// Length in bytes, 8...65535.
    @inlinable public var length: Int {
        get { readOnly.length }
        nonmutating set { bytes.wireSetU16(UInt16(newValue), F.length) }
    }
    @inlinable public var checksum: UInt16 {
        get { readOnly.checksum }
        nonmutating set { bytes.wireSetU16(newValue, F.checksum) }
    }
    @inlinable public var payload: UnsafeMutableRawBufferPointer { bytes.wireSlice(8..<readOnly.length) }

    /// Recomputes the checksum from scratch over header, payload and
    /// `pseudoHeader` (a computed 0 is written as 0xFFFF).
    @inlinable public func fillChecksum(pseudoHeader: IPPseudoHeader) {
        checksum = readOnly.computedChecksum(pseudoHeader: pseudoHeader)
    }

    /// Sets the source port, updating the checksum incrementally (a 0
    /// checksum stays 0).
    @inlinable public func rewriteSourcePort(_ port: UInt16) {
        let old = readOnly.sourcePort
        sourcePort = port
        checksum = InternetChecksum.updateUDP(readOnly.checksum, old: old, new: port)
    }

    /// Sets the destination port, updating the checksum incrementally.
    @inlinable public func rewriteDestinationPort(_ port: UInt16) {
        let old = readOnly.destinationPort
        destinationPort = port
        checksum = InternetChecksum.updateUDP(readOnly.checksum, old: old, new: port)
    }

    /// Updates the checksum for a pseudo-header IPv4 address that changed
    /// from `old` to `new` (call it when rewriting the IP header).
    @inlinable public func adjustChecksum(addressChangedFrom old: IPv4Address, to new: IPv4Address) {
        checksum = InternetChecksum.updateUDP(readOnly.checksum, old: old.rawValue, new: new.rawValue)
    }

    /// Updates the checksum for a pseudo-header IPv6 address change.
    @inlinable public func adjustChecksum(addressChangedFrom old: IPv6Address, to new: IPv6Address) {
        checksum = InternetChecksum.updateUDP(readOnly.checksum, old: old, new: new)
    }
}

/// A UDP header as a value.
public struct UDPRepr: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// Payload length in bytes (Length − 8).
    public var payloadLength: Int

    @inlinable
    public init(sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payloadLength = payloadLength
    }

    @inlinable
    public init(parsing header: UDPHeader) {
        self.init(sourcePort: header.sourcePort, destinationPort: header.destinationPort,
                  payloadLength: header.length - 8)
    }

    /// Header length in bytes (8).
    @inlinable public var headerLength: Int { 8 }
    /// Length in bytes: header + payload.
    @inlinable public var bufferLength: Int { 8 + payloadLength }

    /// Writes every header field. With a pseudo-header, the checksum is
    /// computed over the header and the `payloadLength` bytes that must
    /// already follow it in the buffer; with nil it is 0 ("none", IPv4 only).
    @inlinable
    public func emit(into header: UDPMutableHeader, pseudoHeader: IPPseudoHeader?) {
        precondition(bufferLength <= 0xFFFF, "UDP datagram longer than 65535 bytes")
        precondition(header.bytes.count >= (pseudoHeader == nil ? 8 : bufferLength), "buffer too small for UDP")
        header.sourcePort = sourcePort
        header.destinationPort = destinationPort
        header.length = bufferLength
        header.checksum = 0
        if let pseudoHeader { header.fillChecksum(pseudoHeader: pseudoHeader) }
    }
}
