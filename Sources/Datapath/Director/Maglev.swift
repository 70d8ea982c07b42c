// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, §3.4), weighted the way
// Linux's ip_vs_mh does it.
//
// Every backend gets a permutation of the M table slots from two hashes of
// its name: offset = h1(name) mod M, skip = h2(name) mod (M − 1) + 1,
// permutation[j] = (offset + j·skip) mod M (M prime, so every skip walks
// all slots). The table is filled in rounds: in each round every backend,
// in order, claims its next preferred slot that is still free — `turns`
// times in a row, where turns = (weight / gcd(weights)) >> rshift, and
// rshift keeps the largest turns under 2^6 as ip_vs_mh's default build does
// (IP_VS_MH_TAB_BITS = 6). A backend with weight 0 claims nothing.

/// Deterministic hashes used by the director's hashing schedulers.
public enum DirectorHash {
    /// SplitMix64's finaliser: a bijective 64-bit mixer.
    @inlinable public static func mix64(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a over the UTF-8 of `name`, seeded, then mixed: a backend's h1/h2.
    public static func name(_ name: String, seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for byte in name.utf8 {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01B3
        }
        return mix64(h ^ seed)
    }

    /// The lookup hash of a flow's source for Maglev: address, port (0 when
    /// the service does not hash ports) and the fallback round `offset`, as
    /// ip_vs_mh_hashkey() combines them, through mix64 instead of hsiphash.
    @inlinable public static func source(_ address: UInt32, port: UInt16, offset: UInt32 = 0) -> UInt64 {
        mix64((UInt64(address) << 16 | UInt64(port)) &+ UInt64(offset) &* 0x1_0000_0001)
    }

    /// The seeds of h1 and h2 (ip_vs_mh's hsiphash keys, reused as seeds).
    public static let maglevSeed1: UInt64 = 2_654_435_761
    public static let maglevSeed2: UInt64 = 2_654_446_892
}

/// A Maglev lookup table: slot → backend index (into the list it was built from).
public struct MaglevTable: Sendable {
    /// The paper's table size, a prime.
    public static let defaultSize = 65537
    /// Slot value meaning "no backend" (no backend had a weight).
    public static let empty: UInt16 = 0xFFFF
    /// ip_vs_mh's IP_VS_MH_TAB_BITS with its default build option.
    public static let turnBits = 6

    public let size: Int
    /// Backend index per slot, `empty` when no backend has a weight.
    public private(set) var slots: [UInt16]
    /// Turns per round each backend got (weight / gcd, shifted).
    public private(set) var turns: [Int]

    /// Builds the table for backends `names` with `weights` (same order).
    /// `size` must be a prime larger than the number of backends.
    public init(size: Int = MaglevTable.defaultSize, names: [String], weights: [Int]) {
        precondition(names.count == weights.count)
        precondition(MaglevTable.isPrime(size) && size > names.count && size <= 1 << 24)
        precondition(names.count < Int(MaglevTable.empty))
        self.size = size
        let n = names.count
        var g = 0
        var maxWeight = 0
        for w in weights where w > 0 {
            g = g == 0 ? w : MaglevTable.gcd(g, w)
            maxWeight = max(maxWeight, w)
        }
        var slots = [UInt16](repeating: MaglevTable.empty, count: size)
        var turns = [Int](repeating: 0, count: n)
        guard g > 0 else {
            self.slots = slots
            self.turns = turns
            return
        }
        // ip_vs_mh_shift_weight(): shift = fls(max / gcd) − IP_VS_MH_TAB_BITS.
        let bits = Int.bitWidth - (maxWeight / g).leadingZeroBitCount
        let shift = max(0, bits - MaglevTable.turnBits)
        var perm = [Int](repeating: 0, count: n)
        var skip = [Int](repeating: 0, count: n)
        for i in 0..<n {
            let w = weights[i]
            turns[i] = w > 0 ? max(1, (w / g) >> shift) : 0
            perm[i] = Int(DirectorHash.name(names[i], seed: DirectorHash.maglevSeed1) % UInt64(size))
            skip[i] = Int(DirectorHash.name(names[i], seed: DirectorHash.maglevSeed2) % UInt64(size - 1)) + 1
        }
        // ip_vs_mh_populate().
        slots.withUnsafeMutableBufferPointer { table in
            perm.withUnsafeMutableBufferPointer { perm in
                var filled = 0
                var run = 0
                fill: while true {
                    var i = 0
                    while i < n {
                        let t = turns[i]
                        if t < 1 { i += 1; continue }
                        var c = perm[i]
                        let s = skip[i]
                        while table[c] != MaglevTable.empty {
                            c += s
                            if c >= size { c -= size }
                        }
                        perm[i] = c
                        table[c] = UInt16(truncatingIfNeeded: i)
                        filled += 1
                        if filled == size { break fill }
                        run += 1
                        if run >= t {
                            run = 0
                            i += 1
                        }
                    }
                }
            }
        }
        self.slots = slots
        self.turns = turns
    }

    /// The slot a 64-bit hash falls in (multiply-shift range reduction of
    /// the high 32 bits; uniform like `hash % size`, without a division).
    @inlinable public func slot(forHash hash: UInt64) -> Int {
        Int(truncatingIfNeeded: ((hash >> 32) &* UInt64(size)) >> 32)
    }

    /// The backend for a hash, nil when the table is empty.
    @inlinable public func lookup(hash: UInt64) -> Int? {
        let b = slots[slot(forHash: hash)]
        return b == MaglevTable.empty ? nil : Int(b)
    }

    /// How many slots each backend owns.
    public func slotCounts(backends: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: backends)
        for s in slots where s != MaglevTable.empty { counts[Int(s)] += 1 }
        return counts
    }

    public static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    public static func isPrime(_ n: Int) -> Bool {
        guard n >= 2 else { return false }
        if n < 4 { return true }
        if n % 2 == 0 { return false }
        var d = 3
        while d * d <= n {
            if n % d == 0 { return false }
            d += 2
        }
        return true
    }
}
