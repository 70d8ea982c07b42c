/// A hash map keyed by a 32-bit value (an IPv4 address or network), for
/// the router's per-packet lookups (FIB, ARP entries, NAT): open addressing
/// with linear probing and Fibonacci hashing, so a lookup costs one
/// multiply and usually one probe instead of a SipHash (a `Dictionary`
/// lookup spent ~20 ns hashing, a quarter of the forwarding time).
/// Nothing allocates but growth; the load factor stays at or below 1/2.
///
/// Not hardened against chosen keys. Its contents come from configuration
/// and from ARP, which only learns on-link addresses (a few hundred
/// consecutive ones per subnet, which Fibonacci hashing spreads evenly),
/// never from arbitrary packet fields.
@usableFromInline
struct AddressMap<Value> {
    @usableFromInline var keys: ContiguousArray<UInt32>
    /// nil = empty slot.
    @usableFromInline var slots: ContiguousArray<Value?>
    /// 64 − log2(capacity): the home slot is the top bits of the product.
    @usableFromInline var shift: UInt64
    @usableFromInline var count = 0

    @usableFromInline
    init(minimumCapacity: Int = 4) {
        var capacity = 8
        while capacity < minimumCapacity * 2 { capacity <<= 1 }
        keys = ContiguousArray(repeating: 0, count: capacity)
        slots = ContiguousArray(repeating: nil, count: capacity)
        shift = UInt64(64 - capacity.trailingZeroBitCount)
    }

    @inlinable var capacity: Int { keys.count }
    @inlinable var isEmpty: Bool { count == 0 }

    @inlinable @inline(__always)
    func home(_ key: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The slot holding `key`, if any.
    @inlinable @inline(__always)
    func find(_ key: UInt32) -> Int? {
        let mask = capacity &- 1
        var i = home(key)
        while slots[i] != nil {
            if keys[i] == key { return i }
            i = (i &+ 1) & mask
        }
        return nil
    }

    @inlinable
    subscript(key: UInt32) -> Value? {
        get {
            guard let i = find(key) else { return nil }
            return slots[i]
        }
        set {
            if let value = newValue {
                insert(key, value)
            } else {
                remove(key)
            }
        }
    }

    @usableFromInline
    mutating func insert(_ key: UInt32, _ value: Value) {
        if let i = find(key) {
            slots[i] = value
            return
        }
        if (count + 1) * 2 > capacity { grow() }
        let mask = capacity - 1
        var i = home(key)
        while slots[i] != nil { i = (i + 1) & mask }
        keys[i] = key
        slots[i] = value
        count += 1
    }

    /// Removes `key` by backward-shift deletion (no tombstones, so probe
    /// lengths never degrade).
    @usableFromInline @discardableResult
    mutating func remove(_ key: UInt32) -> Value? {
        guard var hole = find(key) else { return nil }
        let removed = slots[hole]
        slots[hole] = nil
        count -= 1
        let mask = capacity - 1
        var j = hole
        while true {
            j = (j + 1) & mask
            guard slots[j] != nil else { break }
            let h = home(keys[j])
            // The entry at j may stay only if its home lies cyclically in (hole, j].
            let stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if !stays {
                keys[hole] = keys[j]
                slots[hole] = slots[j]
                slots[j] = nil
                hole = j
            }
        }
        return removed
    }

    /// Changes the value of `key` in place; false if absent.
    @usableFromInline @discardableResult
    mutating func update(_ key: UInt32, _ body: (inout Value) -> Void) -> Bool {
        guard let i = find(key) else { return false }
        body(&slots[i]!)
        return true
    }

    mutating func grow() {
        var bigger = AddressMap(minimumCapacity: capacity)
        for i in 0 ..< capacity {
            if let value = slots[i] { bigger.insert(keys[i], value) }
        }
        self = bigger
    }

    /// Every (key, value), in slot order.
    func forEach(_ body: (UInt32, Value) -> Void) {
        for i in 0 ..< capacity {
            if let value = slots[i] { body(keys[i], value) }
        }
    }

    /// Removes every entry for which `shouldRemove` is true; returns how many.
    @discardableResult
    mutating func removeAll(where shouldRemove: (UInt32, Value) -> Bool) -> Int {
        var doomed: [UInt32] = []
        forEach { key, value in if shouldRemove(key, value) { doomed.append(key) } }
        for key in doomed { remove(key) }
        return doomed.count
    }
}

extension AddressMap: Sendable where Value: Sendable {}
