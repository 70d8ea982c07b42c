import Wire

/// FULLNAT source ports of one local address. Every live FULLNAT
/// connection holds one (local address, port) pair of its own, so the
/// real's replies (to local address:port) name exactly one connection,
/// whichever real or client it belongs to.
///
/// Free ports wait in a FIFO ring: a released port goes to the back, so it
/// is reused as late as possible (the real may still hold the old
/// connection in TIME_WAIT). A bitmap of ports in use catches double
/// releases. Storage is allocated once; allocate/release are O(1).
public struct LocalPortPool: Sendable {
    public let address: IPv4Address
    public let range: ClosedRange<UInt16>
    private var ring: [UInt16]
    private var head = 0
    public private(set) var freeCount: Int
    private var inUse: [UInt64]
    /// Where each free port sits in `ring`, so `reserve` takes one out in O(1).
    private var position: [UInt16]

    public init(address: IPv4Address, range: ClosedRange<UInt16> = 1024...65535) {
        self.address = address
        self.range = range
        ring = range.map { $0 }
        freeCount = ring.count
        inUse = [UInt64](repeating: 0, count: 65536 / 64)
        position = [UInt16](repeating: 0, count: 65536)
        for (k, port) in ring.enumerated() { position[Int(port)] = UInt16(truncatingIfNeeded: k) }
    }

    public var capacity: Int { ring.count }
    public var usedCount: Int { ring.count - freeCount }

    /// The least recently released free port; nil when all are in use.
    public mutating func allocate() -> UInt16? {
        guard freeCount > 0 else { return nil }
        let port = ring[head]
        head += 1
        if head == ring.count { head = 0 }
        freeCount -= 1
        inUse[Int(port) >> 6] |= 1 << UInt64(port & 63)
        return port
    }

    /// Takes a given free port (a connection synced from a peer director
    /// holds it). False when it is outside the range or already in use.
    public mutating func reserve(_ port: UInt16) -> Bool {
        guard range.contains(port), !isInUse(port) else { return false }
        // Swap it to the head of the free run, then take the head.
        let k = Int(position[Int(port)])
        let other = ring[head]
        ring[k] = other
        position[Int(other)] = UInt16(truncatingIfNeeded: k)
        ring[head] = port
        head += 1
        if head == ring.count { head = 0 }
        freeCount -= 1
        inUse[Int(port) >> 6] |= 1 << UInt64(port & 63)
        return true
    }

    public func isInUse(_ port: UInt16) -> Bool {
        inUse[Int(port) >> 6] & (1 << UInt64(port & 63)) != 0
    }

    /// Returns `port` to the pool. A port that is not in use is a bug in
    /// the caller: it traps rather than hand one port to two connections.
    public mutating func release(_ port: UInt16) {
        precondition(isInUse(port), "FULLNAT port \(address):\(port) released twice")
        inUse[Int(port) >> 6] &= ~(1 << UInt64(port & 63))
        var tail = head + freeCount
        if tail >= ring.count { tail -= ring.count }
        ring[tail] = port
        position[Int(port)] = UInt16(truncatingIfNeeded: tail)
        freeCount += 1
    }
}
