// xoshiro256** (Blackman, Vigna), as wire-fuzz uses: fast, and the same
// stream for the same seed on every machine, so a finding replays from its
// seed and frame index alone.

public struct Xoshiro: Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// 0 ..< n (0 when n ≤ 1).
    @inline(__always) public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    /// True one time in `n`.
    @inline(__always) public mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }
    /// True with probability `percent` / 100.
    @inline(__always) public mutating func percent(_ p: Int) -> Bool { below(100) < p }
    @inline(__always) public mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    @inline(__always) public mutating func u16() -> UInt16 { UInt16(truncatingIfNeeded: next()) }
    @inline(__always) public mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}

/// FNV-1a over bytes: the corpus fingerprint a replay file records.
struct FNV1a {
    var value: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func add(_ bytes: some Sequence<UInt8>) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01B3 }
    }
    mutating func add(_ n: Int) { add(withUnsafeBytes(of: UInt64(n).littleEndian) { Array($0) }) }
}
