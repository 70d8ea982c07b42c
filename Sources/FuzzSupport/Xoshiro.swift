// What wire-fuzz and element-fuzz share: the random stream and the byte
// mutations. xoshiro256** (Blackman, Vigna) is fast and gives the same
// stream for the same seed on every machine, so a finding replays from its
// seed and input index alone.

public struct Xoshiro: Sendable {
    @usableFromInline var s: (UInt64, UInt64, UInt64, UInt64)

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

    @inlinable public mutating func next() -> UInt64 {
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

/// Byte-level mutations of an input: bit flips, interesting values, cuts,
/// insertions, deletions, copies within it and splices of another seed.
public enum ByteMutations {
    public static let interestingBytes: [UInt8] = [0, 1, 2, 4, 5, 6, 8, 0x0F, 0x10, 0x11, 0x14, 0x1F, 0x20, 0x2B, 0x2C, 0x3A,
                                                   0x3B, 0x3C, 0x40, 0x45, 0x46, 0x4F, 0x60, 0x7F, 0x80, 0x81, 0x87, 0x88, 0xFE, 0xFF]
    public static let interestingWords: [UInt16] = [0, 1, 7, 8, 9, 19, 20, 21, 28, 39, 40, 41, 60, 64, 0x7FFF, 0x8000, 0xFFFE,
                                                    0xFFFF, 0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8, 0x3FFF, 0x2000, 0x1FFF]

    /// Applies `times` mutations to `input`; `otherwise` is the tool's own
    /// (wire-fuzz rewrites its last byte, the rewrite selector; element-fuzz
    /// a byte past the Ethernet header).
    public static func mutate(_ input: inout [UInt8], _ rng: inout Xoshiro, times: Int, seeds: [[UInt8]],
                              otherwise: (inout [UInt8], inout Xoshiro) -> Void) {
        for _ in 0..<times {
            let n = input.count
            switch rng.below(11) {
            case 0 where n > 0: input[rng.below(n)] ^= 1 << UInt8(rng.below(8))
            case 1 where n > 0: input[rng.below(n)] = rng.byte()
            case 2 where n > 0: input[rng.below(n)] = rng.pick(interestingBytes)
            case 3 where n > 1:
                let i = rng.below(n - 1), w = rng.pick(interestingWords)
                let v = rng.oneIn(2) ? w : w &+ UInt16(truncatingIfNeeded: rng.below(5)) &- 2
                input[i] = UInt8(v >> 8)
                input[i + 1] = UInt8(v & 0xFF)
            case 4 where n > 0: input.removeLast(1 + rng.below(Swift.min(n, 16)))
            case 5: for _ in 0...rng.below(16) { input.append(rng.byte()) }
            case 6:
                let at = rng.below(n + 1)
                input.insert(contentsOf: (0...rng.below(8)).map { _ in rng.byte() }, at: at)
            case 7 where n > 1:
                let at = rng.below(n)
                input.removeSubrange(at..<Swift.min(n, at + 1 + rng.below(8)))
            case 8 where n > 2:  // copy a chunk within the input
                let from = rng.below(n), to = rng.below(n), length = Swift.min(1 + rng.below(8), n - Swift.max(from, to))
                for k in 0..<length { input[to + k] = input[from + k] }
            case 9 where !seeds.isEmpty:  // splice the tail of another seed
                let other = seeds[rng.below(seeds.count)]
                let cut = rng.below(n + 1), from = rng.below(other.count + 1)
                input.removeSubrange(cut...)
                input.append(contentsOf: other[from...])
            default:
                otherwise(&input, &rng)
            }
        }
    }
}
