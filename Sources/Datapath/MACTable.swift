import Wire

/// The learning switch's forwarding table: MAC → (port, last seen), in one
/// open-addressing array allocated at init and never resized, so learning
/// and lookups neither allocate nor hash with SipHash (Swift's Dictionary
/// did both: three hashes per frame were most of the switch's cost).
///
/// Slots hold the MAC with bit 63 set (0 = empty), linear probing over a
/// power of two at least twice `capacity`, backward-shift deletion (no
/// tombstones), a multiplicative hash of the 48-bit address.
/// Noncopyable: it owns its arrays and frees them in `deinit`, so a copy
/// cannot alias them.
public struct MACTable: ~Copyable, @unchecked Sendable {   // @unchecked: raw pointers, owned by one switch on one thread
    public typealias Entry = LearningSwitch.Entry

    let keys: UnsafeMutablePointer<UInt64>
    let ports: UnsafeMutablePointer<PortID>
    let seen: UnsafeMutablePointer<UInt64>
    let mask: Int
    let shift: UInt64
    /// Most entries the table takes.
    public let capacity: Int
    public private(set) var count = 0

    static let used: UInt64 = 1 << 63

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        mask = size - 1
        shift = UInt64(64 - size.trailingZeroBitCount)
        keys = .allocate(capacity: size)
        keys.initialize(repeating: 0, count: size)
        ports = .allocate(capacity: size)
        ports.initialize(repeating: PortID(0), count: size)
        seen = .allocate(capacity: size)
        seen.initialize(repeating: 0, count: size)
    }

    deinit {
        keys.deallocate()
        ports.deallocate()
        seen.deallocate()
    }

    @inline(__always)
    func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// The slot holding `mac`, or nil.
    @inline(__always)
    func slot(of mac: MACAddress) -> Int? {
        let key = mac.rawValue | Self.used
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key { return i }
            if k == 0 { return nil }
            i = (i &+ 1) & mask
        }
    }

    public subscript(mac: MACAddress) -> Entry? {
        guard let i = slot(of: mac) else { return nil }
        return Entry(port: ports[i], lastSeen: Instant(nanoseconds: seen[i]))
    }

    /// What `learn` did.
    public enum LearnResult { case refreshed, moved, added, full }

    /// Changes whenever a MAC is added, moves or is removed (not when one
    /// is refreshed): the fast path's entries rest on them.
    public private(set) var generation: UInt32 = 0

    /// Records `mac` behind `port` at `now`.
    @inline(__always)
    mutating func learn(_ mac: MACAddress, on port: PortID, now: Instant) -> LearnResult {
        let key = mac.rawValue | Self.used
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key {
                seen[i] = now.nanoseconds
                if ports[i] == port { return .refreshed }
                ports[i] = port
                generation &+= 1
                return .moved
            }
            if k == 0 { break }
            i = (i &+ 1) & mask
        }
        guard count < capacity else { return .full }
        keys[i] = key
        ports[i] = port
        seen[i] = now.nanoseconds
        count += 1
        generation &+= 1
        return .added
    }

    /// Moves `mac`'s last-seen time to `now` (never earlier) if it is
    /// known; false if not. Changes no generation: nothing moved.
    mutating func refresh(_ mac: MACAddress, now: Instant) -> Bool {
        guard let i = slot(of: mac) else { return false }
        seen[i] = max(seen[i], now.nanoseconds)
        return true
    }

    /// Removes every entry for which `shouldRemove` is true; returns how many.
    @discardableResult
    mutating func removeAll(where shouldRemove: (PortID, UInt64) -> Bool) -> Int {
        var removed = 0
        var i = 0
        // Backward-shift deletion moves later entries of a probe run into
        // the freed slot, so the same slot is examined again after a removal.
        while i <= mask {
            if keys[i] != 0 && shouldRemove(ports[i], seen[i]) {
                remove(at: i)
                removed += 1
            } else {
                i += 1
            }
        }
        return removed
    }

    mutating func remove(at slot: Int) {
        generation &+= 1
        var hole = slot
        var j = slot
        while true {
            j = (j &+ 1) & mask
            let k = keys[j]
            if k == 0 { break }
            let h = home(k)
            // Move k into the hole unless its home lies cyclically in (hole, j].
            let inRange = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j)
            if !inRange {
                keys[hole] = k
                ports[hole] = ports[j]
                seen[hole] = seen[j]
                hole = j
            }
        }
        keys[hole] = 0
        count -= 1
    }

    /// Every entry, in slot order (control path: status, tests).
    public var entries: [(mac: MACAddress, entry: Entry)] {
        (0...mask).compactMap { i in
            keys[i] == 0 ? nil : (MACAddress(rawValue: keys[i] & ~Self.used), Entry(port: ports[i], lastSeen: Instant(nanoseconds: seen[i])))
        }
    }
}
