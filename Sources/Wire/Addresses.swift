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

/// A 128-bit IPv6 address, stored as two big-endian halves: `high` holds the
/// first 8 bytes on the wire (the most significant byte of `high` is byte 0),
/// `low` the last 8.
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From eight 16-bit groups, as written in text (`0x2001, 0xdb8, ...`).
    @inlinable public init(_ g0: UInt16, _ g1: UInt16, _ g2: UInt16, _ g3: UInt16,
                           _ g4: UInt16, _ g5: UInt16, _ g6: UInt16, _ g7: UInt16) {
        self.high = UInt64(g0) << 48 | UInt64(g1) << 32 | UInt64(g2) << 16 | UInt64(g3)
        self.low = UInt64(g4) << 48 | UInt64(g5) << 32 | UInt64(g6) << 16 | UInt64(g7)
    }

    /// From 16 bytes in wire order; nil unless `bytes` has exactly 16.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        self.high = h
        self.low = l
    }

    /// `::`
    public static let unspecified = IPv6Address(high: 0, low: 0)
    /// `::1`
    public static let loopback = IPv6Address(high: 0, low: 1)

    /// The IPv4-mapped address `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2).
    @inlinable public init(ipv4Mapped v4: IPv4Address) {
        self.high = 0
        self.low = 0x0000_FFFF_0000_0000 | UInt64(v4.rawValue)
    }

    /// Byte `index` in wire order (0...15).
    @inlinable public subscript(index: Int) -> UInt8 {
        index < 8 ? UInt8(truncatingIfNeeded: high >> UInt64(8 * (7 - index)))
            : UInt8(truncatingIfNeeded: low >> UInt64(8 * (15 - index)))
    }

    /// 16-bit group `index` (0...7), as written in text.
    @inlinable public func group(_ index: Int) -> UInt16 {
        index < 4 ? UInt16(truncatingIfNeeded: high >> UInt64(16 * (3 - index)))
            : UInt16(truncatingIfNeeded: low >> UInt64(16 * (7 - index)))
    }

    /// The 16 bytes in wire order.
    public var bytes: [UInt8] { (0..<16).map { self[$0] } }

    @inlinable public var isUnspecified: Bool { high == 0 && low == 0 }
    @inlinable public var isLoopback: Bool { high == 0 && low == 1 }
    /// ff00::/8
    @inlinable public var isMulticast: Bool { high >> 56 == 0xFF }
    /// fe80::/10
    @inlinable public var isLinkLocal: Bool { high >> 54 == 0xFE80 >> 6 }
    /// ::ffff:0:0/96
    @inlinable public var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xFFFF }
    /// The embedded IPv4 address of an IPv4-mapped address.
    @inlinable public var ipv4Mapped: IPv4Address? {
        isIPv4Mapped ? IPv4Address(rawValue: UInt32(truncatingIfNeeded: low)) : nil
    }

    /// The solicited-node multicast address ff02::1:ffXX:XXXX (RFC 4291
    /// §2.7.1) that neighbour solicitations for this address are sent to.
    @inlinable public var solicitedNodeMulticast: IPv6Address {
        IPv6Address(high: 0xFF02_0000_0000_0000, low: 0x0000_0001_FF00_0000 | (low & 0x00FF_FFFF))
    }

    /// Parses RFC 4291 §2.2 text: eight groups of 1–4 hex digits, at most
    /// one `::`, optionally a dotted-quad IPv4 tail (`::ffff:10.0.0.1`).
    /// Zone indices (`%eth0`) are rejected.
    public init?(_ text: some StringProtocol) {
        let s = Substring(text)
        guard !s.isEmpty, s.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        let compressed: Bool
        if let r = s.firstRange(of: "::") {
            compressed = true
            let before = s[s.startIndex..<r.lowerBound]
            let after = s[r.upperBound...]
            if after.contains("::") { return nil }
            guard let h = IPv6Address.groups(before, allowIPv4Tail: false),
                  let t = IPv6Address.groups(after, allowIPv4Tail: true) else { return nil }
            head = h
            tail = t
            guard head.count + tail.count <= 7 else { return nil }
        } else {
            compressed = false
            guard let g = IPv6Address.groups(s, allowIPv4Tail: true), g.count == 8 else { return nil }
            head = g
        }
        var all = head
        if compressed { all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail }
        self.init(all[0], all[1], all[2], all[3], all[4], all[5], all[6], all[7])
    }

    /// Groups of one side of `::` (empty text is no groups).
    private static func groups(_ text: Substring, allowIPv4Tail: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var out: [UInt16] = []
        for (i, part) in parts.enumerated() {
            if i == parts.count - 1, allowIPv4Tail, part.contains(".") {
                guard let v4 = IPv4Address(part) else { return nil }
                out.append(UInt16(truncatingIfNeeded: v4.rawValue >> 16))
                out.append(UInt16(truncatingIfNeeded: v4.rawValue))
                continue
            }
            guard (1...4).contains(part.count), part.allSatisfy({ $0.isHexDigit && $0.isASCII }),
                  let g = UInt16(part, radix: 16) else { return nil }
            out.append(g)
        }
        return out
    }

    /// RFC 5952 text: lower case, no leading zeros, the longest run of two
    /// or more zero groups (the first of equals) written `::`, and
    /// IPv4-mapped addresses as `::ffff:a.b.c.d`.
    public var description: String {
        if let v4 = ipv4Mapped { return "::ffff:\(v4)" }
        var bestStart = -1, bestLength = 0
        var i = 0
        while i < 8 {
            if group(i) == 0 {
                var j = i
                while j < 8 && group(j) == 0 { j += 1 }
                if j - i > bestLength { bestStart = i; bestLength = j - i }
                i = j
            } else {
                i += 1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var out = ""
        i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLength
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(group(i), radix: 16)
            i += 1
        }
        return out
    }

    public static func < (a: IPv6Address, b: IPv6Address) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }
}
