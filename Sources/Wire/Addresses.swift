// Address value types shared by every layer: MAC, IPv4, IPv4 prefixes.
// They parse from and print to the text forms used in topology files.

/// A 48-bit IEEE 802 MAC address, stored in the low 48 bits of `rawValue`
/// (first octet on the wire is the most significant of those 48 bits).
public struct MACAddress: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    @inlinable public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        self.rawValue = UInt64(b0) << 40 | UInt64(b1) << 32 | UInt64(b2) << 24
            | UInt64(b3) << 16 | UInt64(b4) << 8 | UInt64(b5)
    }

    public static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)
    public static let zero = MACAddress(rawValue: 0)

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-`), case-insensitive.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var value: UInt64 = 0
        for part in parts {
            guard part.count == 2, let octet = UInt8(part, radix: 16) else { return nil }
            value = value << 8 | UInt64(octet)
        }
        self.rawValue = value
    }

    /// Octet `index` (0 = first on the wire).
    @inlinable public subscript(index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: rawValue >> UInt64(8 * (5 - index)))
    }

    @inlinable public var isBroadcast: Bool { rawValue == 0xFFFF_FFFF_FFFF }
    /// The I/G bit: group (multicast or broadcast) addresses.
    @inlinable public var isMulticast: Bool { self[0] & 0x01 != 0 }
    /// The U/L bit: locally administered.
    @inlinable public var isLocallyAdministered: Bool { self[0] & 0x02 != 0 }

    public var description: String {
        (0..<6).map { i in
            let s = String(self[i], radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.rawValue < b.rawValue }

    /// A deterministic, locally administered unicast MAC derived from `key`
    /// (FNV-1a over its UTF-8), so captures and golden files are stable.
    public static func derived(from key: String) -> MACAddress {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        // 02:xx:xx:xx:xx:xx — locally administered, unicast.
        return MACAddress(rawValue: (hash & 0x00FF_FFFF_FFFF) | 0x0200_0000_0000)
    }
}

/// An IPv4 address in host byte order (`rawValue` 0x0A000001 is 10.0.0.1).
public struct IPv4Address: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    public static let any = IPv4Address(rawValue: 0)
    public static let broadcast = IPv4Address(rawValue: 0xFFFF_FFFF)

    /// Parses dotted-quad text; rejects leading zeros ("010"), which some
    /// tools read as octal, and anything but four decimal octets.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(part.count > 1 && part.first == "0"),
                  let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        self.rawValue = value
    }

    @inlinable public subscript(index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: rawValue >> UInt32(8 * (3 - index)))
    }

    @inlinable public var isMulticast: Bool { rawValue >> 28 == 0xE }
    @inlinable public var isLoopback: Bool { rawValue >> 24 == 127 }
    @inlinable public var isUnspecified: Bool { rawValue == 0 }

    public var description: String { "\(self[0]).\(self[1]).\(self[2]).\(self[3])" }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.rawValue < b.rawValue }
}

/// An IPv4 address with a prefix length, as written `10.0.0.1/24`.
/// `address` keeps the host bits (it is an interface address); `network`
/// clears them.
public struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    /// Prefix length in bits, 0...32.
    public var length: Int

    public init(address: IPv4Address, length: Int) {
        precondition((0...32).contains(length), "prefix length \(length) outside 0...32")
        self.address = address
        self.length = length
    }

    /// Parses `a.b.c.d/len`; a bare address means `/32`.
    public init?(_ text: some StringProtocol) {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 1 || pieces.count == 2, let address = IPv4Address(pieces[0]) else { return nil }
        var length = 32
        if pieces.count == 2 {
            guard let l = Int(pieces[1]), (0...32).contains(l), pieces[1].allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            length = l
        }
        self.init(address: address, length: length)
    }

    @inlinable public var mask: UInt32 { length == 0 ? 0 : UInt32.max << UInt32(32 - length) }
    public var network: IPv4Address { IPv4Address(rawValue: address.rawValue & mask) }
    public var broadcast: IPv4Address { IPv4Address(rawValue: address.rawValue | ~mask) }
    /// The same prefix with host bits cleared.
    public var canonical: IPv4Prefix { IPv4Prefix(address: network, length: length) }

    @inlinable public func contains(_ other: IPv4Address) -> Bool {
        (other.rawValue ^ address.rawValue) & mask == 0
    }

    public var description: String { "\(address)/\(length)" }
}
