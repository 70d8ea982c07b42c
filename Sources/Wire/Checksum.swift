// The Internet checksum: RFC 1071 (full computation) and RFC 1624
// (incremental update). Rewrites on the hot path use only the incremental
// form; the full form is for emitting, verifying and tests.

/// The 16-bit one's-complement Internet checksum.
///
/// Vocabulary: a *sum* is the folded 16-bit one's-complement sum of some
/// 16-bit big-endian words (not complemented); a *checksum* is the
/// complement of a sum, the value written in a header. Verifying a region
/// that contains its own checksum gives a sum of 0xFFFF.
public enum InternetChecksum {
    /// RFC 1071: the one's-complement sum of `bytes` read as big-endian
    /// 16-bit words (an odd last byte is padded with a zero byte), added to
    /// `initial` (e.g. a pseudo-header sum), folded to 16 bits, not
    /// complemented.
    @inlinable
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        // One's-complement addition is byte-order independent (RFC 1071
        // §2(B)): add native-order words and swap once at the end.
        // 32-bit halves added into 64 bits cannot overflow before 2^31
        // iterations (16 GiB), so no carry handling in the loop.
        var acc = UInt64(initial.bigEndian)
        var i = 0
        let n = bytes.count
        while i &+ 8 <= n {
            let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            acc &+= (w & 0xFFFF_FFFF) &+ (w >> 32)
            i &+= 8
        }
        if i &+ 4 <= n {
            acc &+= UInt64(bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i &+= 4
        }
        if i &+ 2 <= n {
            acc &+= UInt64(bytes.loadUnaligned(fromByteOffset: i, as: UInt16.self))
            i &+= 2
        }
        if i < n {
            acc &+= UInt64(UInt16(bigEndian: UInt16(bytes[i]) << 8))
        }
        acc = (acc & 0xFFFF_FFFF) &+ (acc >> 32)
        acc = (acc & 0xFFFF_FFFF) &+ (acc >> 32)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: acc))
    }

    /// `sum(header)` with a straight-line fast path for the common 20-byte
    /// IPv4 header (no options); any other length takes the loop.
    @inlinable @inline(__always)
    public static func headerSum(_ header: UnsafeRawBufferPointer) -> UInt16 {
        guard header.count == 20 else { return sum(header) }
        let a = header.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        let b = header.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let c = header.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        var acc = (a & 0xFFFF_FFFF) &+ (a >> 32) &+ (b & 0xFFFF_FFFF) &+ (b >> 32) &+ UInt64(c)
        acc = (acc & 0xFFFF_FFFF) &+ (acc >> 32)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: acc))
    }

    /// RFC 1071: the checksum to write into a header: `~sum(bytes, initial)`.
    /// Compute it with the checksum field set to zero.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        ~sum(bytes, initial: initial)
    }

    /// One's-complement addition of two 16-bit sums.
    @inlinable @inline(__always)
    public static func add(_ a: UInt16, _ b: UInt16) -> UInt16 {
        let (s, o) = a.addingReportingOverflow(b)
        return s &+ (o ? 1 : 0)
    }

    /// The sum of the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1): source,
    /// destination, zero, protocol, and the upper-layer `length` in bytes
    /// (UDP length / TCP header + data). Pass it as `initial` to `sum`.
    @inlinable
    public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address,
                                       protocol proto: IPProtocol, length: Int) -> UInt16 {
        var acc = UInt32(source.rawValue >> 16) &+ UInt32(source.rawValue & 0xFFFF)
        acc &+= UInt32(destination.rawValue >> 16) &+ UInt32(destination.rawValue & 0xFFFF)
        acc &+= UInt32(proto.rawValue) &+ UInt32(truncatingIfNeeded: length & 0xFFFF)
        return fold(acc)
    }

    /// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source,
    /// destination, 32-bit upper-layer `length` in bytes, three zero bytes,
    /// next header. Pass it as `initial` to `sum`.
    @inlinable
    public static func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address,
                                       nextHeader: IPProtocol, length: Int) -> UInt16 {
        var acc = wordSum(source.high) &+ wordSum(source.low)
            &+ wordSum(destination.high) &+ wordSum(destination.low)
        let len = UInt64(truncatingIfNeeded: UInt32(truncatingIfNeeded: length))
        acc &+= (len >> 16) &+ (len & 0xFFFF) &+ UInt64(nextHeader.rawValue)
        acc = (acc & 0xFFFF_FFFF) &+ (acc >> 32)
        return fold(UInt32(truncatingIfNeeded: acc) &+ UInt32(truncatingIfNeeded: acc >> 32))
    }

    /// The plain sum of the four 16-bit words of `word` (at most 2^18).
    @inlinable @inline(__always)
    static func wordSum(_ word: UInt64) -> UInt64 {
        (word >> 48) &+ ((word >> 32) & 0xFFFF) &+ ((word >> 16) & 0xFFFF) &+ (word & 0xFFFF)
    }

    /// Folds a 32-bit accumulator to a 16-bit one's-complement sum.
    @inlinable @inline(__always)
    public static func fold(_ value: UInt32) -> UInt16 {
        var v = (value & 0xFFFF) &+ (value >> 16)
        v = (v & 0xFFFF) &+ (v >> 16)
        return UInt16(truncatingIfNeeded: v)
    }

    /// RFC 1624 eqn. 3: the checksum `checksum` after one 16-bit word it
    /// covers changed from `old` to `new`: HC' = ~(~HC + ~m + m').
    @inlinable @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        ~fold(UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new))
    }

    /// RFC 1624 eqn. 3 for a 32-bit value (two 16-bit words) it covers, such
    /// as an IPv4 address, that changed from `old` to `new`.
    @inlinable @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        let acc = UInt32(~checksum)
            &+ UInt32(~UInt16(truncatingIfNeeded: old >> 16)) &+ UInt32(~UInt16(truncatingIfNeeded: old))
            &+ (new >> 16) &+ (new & 0xFFFF)
        return ~fold(acc)
    }

    /// RFC 1624 eqn. 3 for a 128-bit value, such as an IPv6 address.
    @inlinable
    public static func update(_ checksum: UInt16, old: IPv6Address, new: IPv6Address) -> UInt16 {
        var acc = UInt64(~checksum) &+ wordSum(~old.high) &+ wordSum(~old.low)
            &+ wordSum(new.high) &+ wordSum(new.low)
        acc = (acc & 0xFFFF_FFFF) &+ (acc >> 32)
        return ~fold(UInt32(truncatingIfNeeded: acc) &+ UInt32(truncatingIfNeeded: acc >> 32))
    }

    /// The UDP rule (RFC 768) around an incremental update: a checksum of 0
    /// means "no checksum" and stays 0; a computed 0 is sent as 0xFFFF.
    @inlinable @inline(__always)
    public static func updateUDP(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        if checksum == 0 { return 0 }
        let c = update(checksum, old: old, new: new)
        return c == 0 ? 0xFFFF : c
    }

    /// The UDP rule (RFC 768) around a 32-bit incremental update.
    @inlinable @inline(__always)
    public static func updateUDP(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        if checksum == 0 { return 0 }
        let c = update(checksum, old: old, new: new)
        return c == 0 ? 0xFFFF : c
    }

    /// The UDP rule (RFC 768) around a 128-bit incremental update.
    @inlinable
    public static func updateUDP(_ checksum: UInt16, old: IPv6Address, new: IPv6Address) -> UInt16 {
        if checksum == 0 { return 0 }
        let c = update(checksum, old: old, new: new)
        return c == 0 ? 0xFFFF : c
    }
}

/// The addresses of an IP pseudo-header, for transport checksums.
public enum IPPseudoHeader: Equatable, Hashable, Sendable {
    case ipv4(source: IPv4Address, destination: IPv4Address)
    case ipv6(source: IPv6Address, destination: IPv6Address)

    /// The pseudo-header sum for an upper-layer packet of `length` bytes.
    @inlinable
    public func sum(protocol proto: IPProtocol, length: Int) -> UInt16 {
        switch self {
        case let .ipv4(s, d):
            InternetChecksum.pseudoHeaderSum(source: s, destination: d, protocol: proto, length: length)
        case let .ipv6(s, d):
            InternetChecksum.pseudoHeaderSum(source: s, destination: d, nextHeader: proto, length: length)
        }
    }
}
