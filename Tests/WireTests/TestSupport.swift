import Testing
import Wire

/// Bytes from `tcpdump -X`/`-XX` hex lines ("0x0010:  4500 0054 ...  ascii").
/// Only the 39-character hex column is read, so the ASCII column is ignored.
func bytes(tcpdump text: String) -> [UInt8] {
    var out: [UInt8] = []
    for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let rest = line[line.index(after: colon)...].dropFirst(2)
        let hex = rest.prefix(39).filter { $0 != " " }
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
    }
    return out
}

/// Bytes from plain hex ("4500 0054", spaces ignored).
func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator, so
/// property tests are deterministic and reproducible from the seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func byte() -> UInt8 { UInt8.random(in: .min ... .max, using: &self) }
    mutating func u16() -> UInt16 { UInt16.random(in: .min ... .max, using: &self) }
    mutating func u32() -> UInt32 { UInt32.random(in: .min ... .max, using: &self) }
    mutating func bool() -> Bool { Bool.random(using: &self) }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in byte() } }
    mutating func mac() -> MACAddress { MACAddress(rawValue: next()) }
    mutating func ipv4() -> IPv4Address { IPv4Address(rawValue: u32()) }
    mutating func ipv6() -> IPv6Address { IPv6Address(high: next(), low: next()) }
}

/// The error `body` throws for `bytes`, or nil if it succeeds. (Closures
/// are not inferred as typed-throws in Swift 5 mode, hence the cast; any
/// other error type traps the test.)
func wireError(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Void) -> WireError? {
    bytes.withUnsafeBytes { buffer in
        do {
            try body(buffer)
            return nil
        } catch {
            return (error as! WireError)
        }
    }
}

/// A buffer of `count` bytes filled with 0xa5, so a field that an emit
/// forgets to write shows.
func poisoned(_ count: Int) -> [UInt8] { [UInt8](repeating: 0xa5, count: count) }

extension Array where Element == UInt8 {
    /// Runs `body` over a read-only view of `self[range]`.
    func read<R>(_ range: Range<Int>? = nil, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes { b in try body(UnsafeRawBufferPointer(rebasing: b[range ?? 0..<count])) }
    }

    /// Runs `body` over a mutable view of `self[range]`.
    mutating func write<R>(_ range: Range<Int>? = nil, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        let r = range ?? 0..<count
        return try withUnsafeMutableBytes { b in try body(UnsafeMutableRawBufferPointer(rebasing: b[r])) }
    }
}
