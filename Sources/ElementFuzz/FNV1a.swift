/// FNV-1a over bytes: the corpus fingerprint a replay file records.
struct FNV1a {
    var value: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func add(_ bytes: some Sequence<UInt8>) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01B3 }
    }
    mutating func add(_ n: Int) { add(withUnsafeBytes(of: UInt64(n).littleEndian) { Array($0) }) }
}
