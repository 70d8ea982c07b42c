// The director's connection table: fixed-size entries in one preallocated
// flat array, found through two open-addressing hash indices, and expired
// by a lazy timing wheel. Nothing here allocates after init.
//
// - entries: `capacity` × 64 bytes (one cache line each), handed out from a
//   free list; never-used entries are not touched until first use.
// - inbound index: (proto, client ip:port, VIP:port) → entry, for every
//   connection and for live persistence templates.
// - reply index: (proto, real ip:port, client-or-local ip:port) → entry,
//   for NAT and FULLNAT connections (the directions the director sees).
//   Each index is a power-of-two array of UInt64 slots, at most half full
//   at capacity: (32-bit hash tag << 32) | (entry + 1), 0 = empty; linear
//   probing, backward-shift deletion (no tombstones). The slot's home is
//   the top bits of its tag, so deletion never reads entries.
// - wheel: 1024 slots of ~1.07 s (2^30 ns) ticks, each a doubly linked list
//   threaded through the entries. A packet only moves `expires` later, and
//   the entry stays where it is; when its slot comes round, an entry not
//   yet due is relinked under its real expiry. An entry whose expiry moves
//   earlier (RST → CLOSE) is relinked at once, so `expire(now:)` removes
//   exactly the entries with expires ≤ now.

/// One connection or persistence template. 64 bytes.
public struct ConnectionEntry: Sendable {
    /// Expiry, Instant nanoseconds.
    public internal(set) var expires: UInt64
    public internal(set) var clientAddress: UInt32
    public internal(set) var virtualAddress: UInt32
    public internal(set) var realAddress: UInt32
    /// FULLNAT source address towards the real (0 otherwise).
    public internal(set) var localAddress: UInt32
    public internal(set) var clientPort: UInt16
    public internal(set) var virtualPort: UInt16
    public internal(set) var realPort: UInt16
    public internal(set) var localPort: UInt16
    public internal(set) var service: UInt16
    public internal(set) var real: UInt16
    /// FULLNAT local port pool the local port came from.
    public internal(set) var pool: UInt16
    /// IP protocol; templates carry `templateBit` on top.
    public internal(set) var proto: UInt8
    /// ConnectionState raw value.
    public internal(set) var state: UInt8
    public internal(set) var flags: UInt8
    /// ForwardingMode index (DirectorCore's order: nat, dr, tun, fullnat).
    public internal(set) var mode: UInt8
    /// Connection sync: when the entry was last sent or installed from a
    /// peer, in wheel ticks (2^30 ns) modulo 2^16. It sits in what was
    /// padding: the entry stays 64 bytes.
    public internal(set) var syncStamp: UInt16
    var wheelNext: UInt32
    var wheelPrev: UInt32
    var wheelTick: UInt32
    /// Connections: the template controlling it (+1; 0 = none).
    public internal(set) var control: UInt32
    /// Templates: how many connections it controls (IPVS n_control).
    public internal(set) var controlled: UInt32

    public static let templateBit: UInt8 = 0x80

    public enum Flag {
        /// Counted as inactive (IPVS IP_VS_CONN_F_INACTIVE).
        public static let inactive: UInt8 = 0x01
        /// Director never sees replies (IPVS IP_VS_CONN_F_NOOUTPUT: DR, TUN).
        public static let noOutput: UInt8 = 0x02
        /// A persistence template (IPVS IP_VS_CONN_F_TEMPLATE).
        public static let template: UInt8 = 0x04
        /// In the inbound index.
        public static let hashedInbound: UInt8 = 0x08
        /// In the reply index.
        public static let hashedReply: UInt8 = 0x10
        /// Replies are addressed to the local address:port (FULLNAT).
        public static let fullnat: UInt8 = 0x20
        /// Entry is live (not on the free list).
        public static let inUse: UInt8 = 0x40
        /// Installed from a peer's sync message and not sent by this
        /// director since (IPVS IP_VS_CONN_F_SYNC).
        public static let synced: UInt8 = 0x80
    }

    public init(proto: UInt8, clientAddress: UInt32, clientPort: UInt16, virtualAddress: UInt32, virtualPort: UInt16,
                realAddress: UInt32, realPort: UInt16, localAddress: UInt32 = 0, localPort: UInt16 = 0,
                service: UInt16 = 0, real: UInt16 = 0, pool: UInt16 = 0, state: UInt8 = 0, flags: UInt8 = 0,
                mode: UInt8 = 0, expires: UInt64 = 0) {
        self.expires = expires
        self.clientAddress = clientAddress
        self.virtualAddress = virtualAddress
        self.realAddress = realAddress
        self.localAddress = localAddress
        self.clientPort = clientPort
        self.virtualPort = virtualPort
        self.realPort = realPort
        self.localPort = localPort
        self.service = service
        self.real = real
        self.pool = pool
        self.proto = proto
        self.state = state
        self.flags = flags
        self.mode = mode
        self.syncStamp = 0
        self.wheelNext = ConnectionTable.none
        self.wheelPrev = ConnectionTable.none
        self.wheelTick = 0
        self.control = 0
        self.controlled = 0
    }

    @inlinable public func has(_ flag: UInt8) -> Bool { flags & flag != 0 }
    /// Where replies from the real are addressed: the local address (FULLNAT) or the client.
    @inlinable public var replyAddress: UInt32 { flags & Flag.fullnat != 0 ? localAddress : clientAddress }
    @inlinable public var replyPort: UInt16 { flags & Flag.fullnat != 0 ? localPort : clientPort }
}

/// Where a ConnectionTable gets its memory. The table allocates once, at
/// init, through this; the default is the Swift heap. Datapath does no OS
/// calls itself, so a caller that wants huge pages (a million entries span
/// ~93 MiB, and with 4 KiB pages every random lookup also misses the TLB)
/// passes memory it mapped and advised (mmap + madvise(MADV_HUGEPAGE)).
public struct TableMemory: Sendable {
    /// Returns `byteCount` bytes aligned to at least `alignment`.
    public var allocate: @Sendable (_ byteCount: Int, _ alignment: Int) -> UnsafeMutableRawPointer
    /// Gives back what `allocate` returned for `byteCount`.
    public var deallocate: @Sendable (_ pointer: UnsafeMutableRawPointer, _ byteCount: Int) -> Void

    public init(allocate: @escaping @Sendable (Int, Int) -> UnsafeMutableRawPointer,
                deallocate: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> Void) {
        self.allocate = allocate
        self.deallocate = deallocate
    }

    public static let heap = TableMemory(allocate: { UnsafeMutableRawPointer.allocate(byteCount: $0, alignment: $1) },
                                         deallocate: { p, _ in p.deallocate() })
}

/// The connection table. One per director (a class for its owned memory,
/// never per packet). Entry numbers stay valid until the entry is removed.
public final class ConnectionTable {
    public static let none: UInt32 = .max
    public static let wheelBits = 10
    public static let tickShift: UInt64 = 30

    struct State {
        var count = 0
        var freeHead = ConnectionTable.none
        var highWater = 0
        var nextTick: UInt64 = 0
    }

    public let capacity: Int
    /// Slots in each hash index (a power of two ≥ 2 × capacity).
    public let indexSlots: Int
    let indexMask: Int
    let indexShift: UInt32
    let seed: UInt64
    let entries: UnsafeMutablePointer<ConnectionEntry>
    let inbound: UnsafeMutablePointer<UInt64>
    let reply: UnsafeMutablePointer<UInt64>
    let wheel: UnsafeMutablePointer<UInt32>
    let state: UnsafeMutablePointer<State>
    let wheelSlots = 1 << ConnectionTable.wheelBits

    let memory: TableMemory

    public init(capacity: Int, seed: UInt64 = 0x5EED_0F_D1EC_7012, memory: TableMemory = .heap) {
        precondition(capacity > 0 && capacity < Int(Int32.max))
        self.capacity = capacity
        let bits = Self.indexBits(capacity: capacity)
        indexSlots = 1 << bits
        indexMask = indexSlots - 1
        indexShift = UInt32(32 - bits)
        self.seed = seed
        self.memory = memory
        entries = memory.allocate(capacity * MemoryLayout<ConnectionEntry>.stride, 64)
            .bindMemory(to: ConnectionEntry.self, capacity: capacity)
        inbound = memory.allocate(indexSlots * 8, 64).bindMemory(to: UInt64.self, capacity: indexSlots)
        inbound.initialize(repeating: 0, count: indexSlots)
        reply = memory.allocate(indexSlots * 8, 64).bindMemory(to: UInt64.self, capacity: indexSlots)
        reply.initialize(repeating: 0, count: indexSlots)
        wheel = .allocate(capacity: wheelSlots)
        wheel.initialize(repeating: ConnectionTable.none, count: wheelSlots)
        state = .allocate(capacity: 1)
        state.initialize(to: State())
    }

    /// log2 of the slots of each hash index: a power of two ≥ 2 × capacity.
    static func indexBits(capacity: Int) -> Int {
        var bits = 4
        while (1 << bits) < 2 * capacity { bits += 1 }
        return bits
    }

    /// Bytes `init(capacity:)` allocates: the entries, both hash indexes and
    /// the timer wheel (what a lab must find free for each director).
    public static func memoryBytes(capacity: Int) -> Int {
        capacity * MemoryLayout<ConnectionEntry>.stride + 2 * (1 << indexBits(capacity: capacity)) * 8
            + (1 << wheelBits) * MemoryLayout<UInt32>.stride + MemoryLayout<State>.stride
    }

    deinit {
        memory.deallocate(UnsafeMutableRawPointer(entries), capacity * MemoryLayout<ConnectionEntry>.stride)
        memory.deallocate(UnsafeMutableRawPointer(inbound), indexSlots * 8)
        memory.deallocate(UnsafeMutableRawPointer(reply), indexSlots * 8)
        wheel.deallocate()
        state.deallocate()
    }

    /// Live entries (connections and templates).
    public var count: Int { state.pointee.count }
    public var freeCount: Int { capacity - state.pointee.count }
    /// Entries ever handed out: every live entry number is below it.
    public var highWaterMark: Int { state.pointee.highWater }
    /// Bytes this table allocated, all at init.
    public var allocatedBytes: Int {
        capacity * MemoryLayout<ConnectionEntry>.stride + 2 * indexSlots * MemoryLayout<UInt64>.stride
            + wheelSlots * MemoryLayout<UInt32>.stride + MemoryLayout<State>.stride
    }

    /// A copy of entry `i`.
    public subscript(i: UInt32) -> ConnectionEntry { entries[Int(i)] }

    @inline(__always) func pointer(_ i: UInt32) -> UnsafeMutablePointer<ConnectionEntry> { entries + Int(i) }

    // MARK: Hashing

    @inline(__always) func hash(_ proto: UInt8, _ a1: UInt32, _ p1: UInt16, _ a2: UInt32, _ p2: UInt16) -> UInt64 {
        let x = (UInt64(a1) << 32 | UInt64(a2)) ^ seed
        let y = UInt64(p1) << 48 | UInt64(p2) << 32 | UInt64(proto)
        return DirectorHash.mix64(x &* 0x9E37_79B9_7F4A_7C15 ^ y)
    }

    @inline(__always) func inboundHash(_ e: ConnectionEntry) -> UInt64 {
        hash(e.proto, e.clientAddress, e.clientPort, e.virtualAddress, e.virtualPort)
    }

    @inline(__always) func replyHash(_ e: ConnectionEntry) -> UInt64 {
        hash(e.proto, e.realAddress, e.realPort, e.replyAddress, e.replyPort)
    }

    // MARK: Lookup

    /// The live entry with this inbound key, expired or not (callers check `expires`).
    @inline(__always)
    public func findInbound(proto: UInt8, client: UInt32, clientPort: UInt16, virtual: UInt32, virtualPort: UInt16) -> UInt32? {
        let h = hash(proto, client, clientPort, virtual, virtualPort)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var pos = Int(tag >> indexShift)
        while true {
            let slot = inbound[pos]
            if slot == 0 { return nil }
            if UInt32(truncatingIfNeeded: slot >> 32) == tag {
                let i = UInt32(truncatingIfNeeded: slot) &- 1
                let e = entries + Int(i)
                if e.pointee.clientAddress == client && e.pointee.virtualAddress == virtual
                    && e.pointee.clientPort == clientPort && e.pointee.virtualPort == virtualPort
                    && e.pointee.proto == proto {
                    return i
                }
            }
            pos = (pos &+ 1) & indexMask
        }
    }

    /// The live entry with this reply key: a packet from `real`:`realPort`
    /// to `destination`:`destinationPort` (the client for NAT, the local
    /// address for FULLNAT).
    @inline(__always)
    public func findReply(proto: UInt8, real: UInt32, realPort: UInt16, destination: UInt32, destinationPort: UInt16) -> UInt32? {
        let h = hash(proto, real, realPort, destination, destinationPort)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var pos = Int(tag >> indexShift)
        while true {
            let slot = reply[pos]
            if slot == 0 { return nil }
            if UInt32(truncatingIfNeeded: slot >> 32) == tag {
                let i = UInt32(truncatingIfNeeded: slot) &- 1
                let e = entries[Int(i)]
                if e.realAddress == real && e.realPort == realPort && e.replyAddress == destination
                    && e.replyPort == destinationPort && e.proto == proto {
                    return i
                }
            }
            pos = (pos &+ 1) & indexMask
        }
    }

    // MARK: Prefetch (batched lookups)
    //
    // A lookup at a million entries costs two cache misses (index slot, then
    // entry) that one packet cannot overlap. Batched callers prefetch the
    // slots of a whole batch, then the entries, then look up: the misses of
    // the batch are in flight together.

    /// Stage 1: start loading the home index slot of an inbound key.
    @inline(__always)
    public func prefetchInboundSlot(proto: UInt8, client: UInt32, clientPort: UInt16, virtual: UInt32, virtualPort: UInt16) {
        let h = hash(proto, client, clientPort, virtual, virtualPort)
        prefetchForReading(UnsafeRawPointer(inbound + Int(UInt32(truncatingIfNeeded: h >> 32) >> indexShift)))
    }

    /// Stage 2: start loading the entry the home slot points at (the slot
    /// should be cached by stage 1 by now).
    @inline(__always)
    public func prefetchInboundEntry(proto: UInt8, client: UInt32, clientPort: UInt16, virtual: UInt32, virtualPort: UInt16) {
        let h = hash(proto, client, clientPort, virtual, virtualPort)
        let slot = inbound[Int(UInt32(truncatingIfNeeded: h >> 32) >> indexShift)]
        if slot != 0 { prefetchForWriting(UnsafeRawPointer(entries + Int(UInt32(truncatingIfNeeded: slot) &- 1))) }
    }

    /// Stage 1 for a reply key.
    @inline(__always)
    public func prefetchReplySlot(proto: UInt8, real: UInt32, realPort: UInt16, destination: UInt32, destinationPort: UInt16) {
        let h = hash(proto, real, realPort, destination, destinationPort)
        prefetchForReading(UnsafeRawPointer(reply + Int(UInt32(truncatingIfNeeded: h >> 32) >> indexShift)))
    }

    /// Stage 2 for a reply key.
    @inline(__always)
    public func prefetchReplyEntry(proto: UInt8, real: UInt32, realPort: UInt16, destination: UInt32, destinationPort: UInt16) {
        let h = hash(proto, real, realPort, destination, destinationPort)
        let slot = reply[Int(UInt32(truncatingIfNeeded: h >> 32) >> indexShift)]
        if slot != 0 { prefetchForWriting(UnsafeRawPointer(entries + Int(UInt32(truncatingIfNeeded: slot) &- 1))) }
    }

    // MARK: Insert / remove

    /// Stores `entry` and indexes it (inbound unless `hashInbound` is
    /// false; reply when `hashReply`), expiring at `entry.expires`. Nil when
    /// the table is full. The caller has checked the keys are not in use.
    public func insert(_ entry: ConnectionEntry, hashInbound: Bool = true, hashReply: Bool = false) -> UInt32? {
        let i: UInt32
        if state.pointee.freeHead != ConnectionTable.none {
            i = state.pointee.freeHead
            state.pointee.freeHead = entries[Int(i)].wheelNext
        } else if state.pointee.highWater < capacity {
            i = UInt32(state.pointee.highWater)
            state.pointee.highWater += 1
        } else {
            return nil
        }
        var e = entry
        e.flags |= ConnectionEntry.Flag.inUse
        if hashInbound { e.flags |= ConnectionEntry.Flag.hashedInbound } else { e.flags &= ~ConnectionEntry.Flag.hashedInbound }
        if hashReply { e.flags |= ConnectionEntry.Flag.hashedReply } else { e.flags &= ~ConnectionEntry.Flag.hashedReply }
        (entries + Int(i)).initialize(to: e)
        state.pointee.count += 1
        if hashInbound { indexInsert(inbound, i, inboundHash(e)) }
        if hashReply { indexInsert(reply, i, replyHash(e)) }
        link(i, tick: e.expires >> ConnectionTable.tickShift)
        return i
    }

    /// Removes entry `i` from the indices and the wheel and frees it.
    public func remove(_ i: UInt32) {
        unlink(i)
        release(i)
    }

    /// Takes entry `i` out of the inbound index only (an invalidated
    /// template that still controls connections). It stays in the wheel.
    public func unhashInbound(_ i: UInt32) {
        let e = entries + Int(i)
        guard e.pointee.flags & ConnectionEntry.Flag.hashedInbound != 0 else { return }
        indexRemove(inbound, i, inboundHash(e.pointee))
        e.pointee.flags &= ~ConnectionEntry.Flag.hashedInbound
    }

    /// Sets entry `i`'s expiry. Later expiries cost a store; earlier ones
    /// relink the entry in the wheel.
    @inline(__always) public func setExpiry(_ i: UInt32, _ expires: UInt64) {
        let e = entries + Int(i)
        e.pointee.expires = expires
        let t = UInt32(truncatingIfNeeded: expires >> ConnectionTable.tickShift)
        if t < e.pointee.wheelTick {
            unlink(i)
            link(i, tick: UInt64(t))
        }
    }

    func release(_ i: UInt32) {
        let e = entries + Int(i)
        if e.pointee.flags & ConnectionEntry.Flag.hashedInbound != 0 { indexRemove(inbound, i, inboundHash(e.pointee)) }
        if e.pointee.flags & ConnectionEntry.Flag.hashedReply != 0 { indexRemove(reply, i, replyHash(e.pointee)) }
        e.pointee.flags = 0
        e.pointee.wheelNext = state.pointee.freeHead
        state.pointee.freeHead = i
        state.pointee.count -= 1
    }

    @inline(__always) func indexInsert(_ index: UnsafeMutablePointer<UInt64>, _ i: UInt32, _ h: UInt64) {
        let tag = h >> 32
        var pos = Int(UInt32(truncatingIfNeeded: tag) >> indexShift)
        while index[pos] != 0 { pos = (pos &+ 1) & indexMask }
        index[pos] = tag << 32 | UInt64(i &+ 1)
    }

    func indexRemove(_ index: UnsafeMutablePointer<UInt64>, _ i: UInt32, _ h: UInt64) {
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var pos = Int(tag >> indexShift)
        let want = UInt64(i &+ 1)
        while index[pos] & 0xFFFF_FFFF != want {
            precondition(index[pos] != 0, "connection table index lost entry \(i)")
            pos = (pos &+ 1) & indexMask
        }
        // Backward-shift deletion: pull later members of the run into the hole
        // unless their home lies cyclically in (hole, member].
        var hole = pos
        var j = pos
        while true {
            j = (j &+ 1) & indexMask
            let slot = index[j]
            if slot == 0 { break }
            let home = Int(UInt32(truncatingIfNeeded: slot >> 32) >> indexShift)
            let stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if stays { continue }
            index[hole] = slot
            hole = j
        }
        index[hole] = 0
    }

    // MARK: Timing wheel

    @inline(__always) func link(_ i: UInt32, tick: UInt64) {
        let t = max(tick, state.pointee.nextTick)
        let slot = Int(t & UInt64(wheelSlots - 1))
        let e = entries + Int(i)
        let head = wheel[slot]
        e.pointee.wheelTick = UInt32(truncatingIfNeeded: t)
        e.pointee.wheelPrev = ConnectionTable.none
        e.pointee.wheelNext = head
        if head != ConnectionTable.none { entries[Int(head)].wheelPrev = i }
        wheel[slot] = i
    }

    @inline(__always) func unlink(_ i: UInt32) {
        let e = entries + Int(i)
        let next = e.pointee.wheelNext
        let prev = e.pointee.wheelPrev
        if prev != ConnectionTable.none {
            entries[Int(prev)].wheelNext = next
        } else {
            wheel[Int(UInt64(e.pointee.wheelTick) & UInt64(wheelSlots - 1))] = next
        }
        if next != ConnectionTable.none { entries[Int(next)].wheelPrev = prev }
    }

    /// Visits every entry with expires ≤ now. `visit` returns true to remove
    /// the entry (the table then unindexes and frees it) or false to keep it,
    /// having moved its expiry later (templates that still control
    /// connections). `visit` must not remove other entries. Returns how many
    /// entries were removed.
    @discardableResult
    public func expire(now: Instant, _ visit: (UInt32) -> Bool) -> Int {
        let nowTick = now.nanoseconds >> ConnectionTable.tickShift
        let start = min(state.pointee.nextTick, nowTick)
        let steps = Int(min(nowTick - start + 1, UInt64(wheelSlots)))
        var removed = 0
        for k in 0..<steps {
            let slot = Int((start + UInt64(k)) & UInt64(wheelSlots - 1))
            var i = wheel[slot]
            wheel[slot] = ConnectionTable.none
            while i != ConnectionTable.none {
                let e = entries + Int(i)
                let next = e.pointee.wheelNext
                if e.pointee.expires <= now.nanoseconds && visit(i) {
                    release(i)
                    removed += 1
                } else {
                    link(i, tick: e.pointee.expires >> ConnectionTable.tickShift)
                }
                i = next
            }
        }
        state.pointee.nextTick = nowTick
        return removed
    }

    /// Every live entry number, in no particular order (control plane: allocates).
    public func liveEntries() -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(count)
        for i in 0..<state.pointee.highWater where entries[i].flags & ConnectionEntry.Flag.inUse != 0 {
            out.append(UInt32(i))
        }
        return out
    }
}
