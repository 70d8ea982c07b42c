// Big-endian loads and stores on raw buffers, public so elements read fields
// the same way (one set of helpers). Every header view reads and
// writes through these, so they must compile down to a single load or store
// (plus a byte swap): `loadUnaligned` / `storeBytes` on raw buffers carry
// only debug-mode bounds checks.

extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    public func wireU8(_ offset: Int) -> UInt8 {
        self[offset]
    }

    @inlinable @inline(__always)
    public func wireU16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    public func wireU32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always)
    public func wireU64(_ offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable @inline(__always)
    public func wireMAC(_ offset: Int) -> MACAddress {
        MACAddress(rawValue: UInt64(wireU32(offset)) << 16 | UInt64(wireU16(offset + 4)))
    }

    @inlinable @inline(__always)
    public func wireIPv4(_ offset: Int) -> IPv4Address {
        IPv4Address(rawValue: wireU32(offset))
    }

    @inlinable @inline(__always)
    public func wireIPv6(_ offset: Int) -> IPv6Address {
        IPv6Address(high: wireU64(offset), low: wireU64(offset + 8))
    }

    /// The bytes `range` as a buffer of their own (offset 0 = `range.lowerBound`).
    @inlinable @inline(__always)
    public func wireSlice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable @inline(__always)
    public func wireSetU8(_ value: UInt8, _ offset: Int) {
        self[offset] = value
    }

    @inlinable @inline(__always)
    public func wireSetU16(_ value: UInt16, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inlinable @inline(__always)
    public func wireSetU32(_ value: UInt32, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    @inlinable @inline(__always)
    public func wireSetU64(_ value: UInt64, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    @inlinable @inline(__always)
    public func wireSetMAC(_ value: MACAddress, _ offset: Int) {
        wireSetU32(UInt32(truncatingIfNeeded: value.rawValue >> 16), offset)
        wireSetU16(UInt16(truncatingIfNeeded: value.rawValue), offset + 4)
    }

    @inlinable @inline(__always)
    public func wireSetIPv4(_ value: IPv4Address, _ offset: Int) {
        wireSetU32(value.rawValue, offset)
    }

    @inlinable @inline(__always)
    public func wireSetIPv6(_ value: IPv6Address, _ offset: Int) {
        wireSetU64(value.high, offset)
        wireSetU64(value.low, offset + 8)
    }

    /// The bytes `range` as a buffer of their own (offset 0 = `range.lowerBound`).
    @inlinable @inline(__always)
    public func wireSlice(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: self[range])
    }

    @inlinable @inline(__always)
    public var wireReadOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(self) }

    // Reads of a buffer being rewritten in place.
    @inlinable @inline(__always)
    public func wireU16(_ offset: Int) -> UInt16 { UnsafeRawBufferPointer(self).wireU16(offset) }

    @inlinable @inline(__always)
    public func wireU32(_ offset: Int) -> UInt32 { UnsafeRawBufferPointer(self).wireU32(offset) }

    @inlinable @inline(__always)
    public func wireIPv4(_ offset: Int) -> IPv4Address { UnsafeRawBufferPointer(self).wireIPv4(offset) }
}

/// Lower-case hex of `value`, zero-padded to `digits`.
@usableFromInline
func wireHex<T: BinaryInteger>(_ value: T, digits: Int) -> String {
    let s = String(value, radix: 16)
    return s.count >= digits ? s : String(repeating: "0", count: digits - s.count) + s
}
