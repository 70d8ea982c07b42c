import Wire

// The element contract (DESIGN.md): an element gets a frame, the port it
// arrived on and the current time; it mutates the frame in place and/or
// emits frames, and returns what to do with it. Elements never do I/O, never
// read a clock and never allocate per packet in steady state, so the same
// element runs live (AF_XDP/AF_PACKET ports) and in the simulator.

/// A port of one element, numbered from 0 in the node's interface order.
public struct PortID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int
    @inlinable public init(rawValue: Int) { self.rawValue = rawValue }
    @inlinable public init(_ value: Int) { self.rawValue = value }
    public static func < (a: PortID, b: PortID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "port \(rawValue)" }
}

/// Time as the element sees it: nanoseconds on a monotonic clock that the
/// runtime (live) or the simulator (virtual) injects.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64
    @inlinable public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    public static let zero = Instant(nanoseconds: 0)
    @inlinable public static func seconds(_ s: Double) -> Instant { Instant(nanoseconds: UInt64(s * 1e9)) }
    @inlinable public func adding(seconds: Double) -> Instant { Instant(nanoseconds: nanoseconds &+ UInt64(seconds * 1e9)) }
    @inlinable public func adding(nanoseconds n: UInt64) -> Instant { Instant(nanoseconds: nanoseconds &+ n) }
    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    public var description: String { "t=\(Double(nanoseconds) / 1e9)s" }
}

/// Why a frame was dropped. An open set: each element adds its own, and
/// `status` shows counts by `name`.
public struct DropReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ name: String) { self.rawValue = name }
    public var description: String { rawValue }

    public static let noRoute = DropReason("no-route")
    public static let ttlExpired = DropReason("ttl-expired")
    public static let unknownEtherType = DropReason("unknown-ethertype")
    public static let notForUs = DropReason("not-for-us")
    public static let sameSegment = DropReason("same-port")
    public static let tableFull = DropReason("table-full")
    public static let arpQueueFull = DropReason("arp-queue-full")
    public static let arpUnresolved = DropReason("arp-unresolved")
    public static let fragmentationNeeded = DropReason("frag-needed")
    public static let emitQueueFull = DropReason("emit-queue-full")
    public static let linkDown = DropReason("link-down")
    /// An 802.1Q or 802.1ad tagged frame reached an element that does not
    /// handle VLANs (every element's ports are untagged).
    public static let vlanUnsupported = DropReason("vlan-unsupported")
    /// An IPv6 frame reached an IPv4-only element.
    public static let ipv6Unsupported = DropReason("ipv6-unsupported")

    /// A parse failure, named by the Wire layer's reason (e.g. "truncated").
    public static func malformed(_ wireReason: String) -> DropReason { DropReason("malformed:" + wireReason) }
}

/// What the runtime does with the frame after `process`.
public enum Verdict: Equatable, Sendable {
    /// Send the (possibly rewritten) frame out of one port.
    case forward(PortID)
    /// Send a copy out of every port except the one it came in on.
    case flood
    /// Count it under `reason` and free it.
    case drop(DropReason)
    /// The element kept what it needed (e.g. an ARP reply it learned from,
    /// a packet queued until ARP resolves); nothing is sent.
    case consumed
}

/// A frame being processed: bytes in a buffer the runtime owns, with
/// headroom in front so an element can prepend a header (IPIP) in place.
public struct PacketBuffer {
    /// Start of the whole buffer (headroom included).
    public let base: UnsafeMutableRawPointer
    /// Bytes the buffer holds in all.
    public let capacity: Int
    /// Offset of the frame's first byte from `base`.
    @inlinable public var offset: Int { _offset }
    @usableFromInline var _offset: Int
    /// Length of the frame in bytes.
    public var length: Int

    @inlinable public init(base: UnsafeMutableRawPointer, capacity: Int, offset: Int, length: Int) {
        precondition(offset >= 0 && length >= 0 && offset + length <= capacity)
        self.base = base
        self.capacity = capacity
        self._offset = offset
        self.length = length
    }

    @inlinable public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + offset, count: length)
    }
    @inlinable public var readOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(bytes) }
    @inlinable public var headroom: Int { offset }

    /// Grows the frame at the front by `count` bytes (uninitialised); false
    /// when there is not enough headroom.
    @inlinable public mutating func prepend(_ count: Int) -> Bool {
        guard count <= offset else { return false }
        _offset -= count
        length += count
        return true
    }

    /// Inserts `count` bytes at `position` within the frame by moving the
    /// bytes before it into the headroom (used to add an IPIP header after
    /// the Ethernet header). False when the headroom is too small.
    @inlinable public mutating func insert(_ count: Int, at position: Int) -> Bool {
        guard count <= offset, position <= length else { return false }
        let old = base + _offset
        _offset -= count
        length += count
        (base + _offset).copyMemory(from: old, byteCount: position)
        return true
    }

    /// Removes `count` bytes at `position` by moving the bytes before it
    /// forward (used to strip an outer IPv4 header after Ethernet).
    @inlinable public mutating func remove(_ count: Int, at position: Int) {
        precondition(position + count <= length)
        let old = base + _offset
        (old + count).copyMemory(from: old, byteCount: position)
        _offset += count
        length -= count
    }
}

/// Frames an element sends on its own (ARP requests and replies, ICMP
/// errors, queued packets released by ARP): fixed slots allocated once, so
/// emitting never allocates. The runtime drains it after every call.
/// Noncopyable: it owns its slots and frees them in `deinit`.
public struct Emitter: ~Copyable {
    public static let slotSize = 2048
    public let slotCount: Int
    @usableFromInline var storage: UnsafeMutableRawPointer
    @usableFromInline var lengths: [Int]
    @usableFromInline var ports: [PortID]
    /// Frames written so far.
    @inlinable public var count: Int { _count }
    /// Frames that did not fit (counted, never silently lost).
    @inlinable public var overflows: Int { _overflows }
    // Inlinable across modules (the simulator's host model lives in Lab and
    // emits every frame it sends), so the storage is usable from inline code.
    @usableFromInline var _count = 0
    @usableFromInline var _overflows = 0

    public init(slots: Int = 64) {
        slotCount = slots
        storage = UnsafeMutableRawPointer.allocate(byteCount: slots * Emitter.slotSize, alignment: 64)
        lengths = Array(repeating: 0, count: slots)
        ports = Array(repeating: PortID(0), count: slots)
    }

    deinit { storage.deallocate() }

    /// Writes one frame for `port`: `fill` gets a slot-sized buffer and
    /// returns the frame's length (0 = nothing). False when all slots are used.
    @discardableResult @inlinable
    public mutating func emit(on port: PortID, _ fill: (UnsafeMutableRawBufferPointer) -> Int) -> Bool {
        guard _count < slotCount else { _overflows += 1; return false }
        let slot = UnsafeMutableRawBufferPointer(start: storage + _count * Emitter.slotSize, count: Emitter.slotSize)
        let length = fill(slot)
        guard length > 0 else { return true }
        precondition(length <= Emitter.slotSize)
        lengths[_count] = length
        ports[_count] = port
        _count += 1
        return true
    }

    /// Copies `frame` into a slot for `port`.
    @discardableResult @inlinable
    public mutating func emit(on port: PortID, copying frame: UnsafeRawBufferPointer) -> Bool {
        emit(on: port) { slot in
            guard frame.count <= slot.count else { return 0 }
            slot.copyMemory(from: frame)
            return frame.count
        }
    }

    @inlinable public func frame(at index: Int) -> (port: PortID, bytes: UnsafeRawBufferPointer) {
        (ports[index], UnsafeRawBufferPointer(start: storage + index * Emitter.slotSize, count: lengths[index]))
    }

    @inlinable public mutating func removeAll() { _count = 0 }
}

/// Per-reason drop counts: `status` prints them.
public struct DropCounters: Sendable {
    public private(set) var counts: [DropReason: UInt64] = [:]
    public init() {}
    public mutating func count(_ reason: DropReason) { counts[reason, default: 0] &+= 1 }
    public var total: UInt64 { counts.values.reduce(0, &+) }
}

/// A forwarding element. Classes (one per node, never per packet) so the
/// runtime mutates their tables in place; the run loop calls them through
/// concrete types, not this protocol, on the hot path.
public protocol Element: AnyObject {
    /// How many ports the element has (its node's interfaces, in order).
    var portCount: Int { get }
    func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict
    /// Timers: aging, ARP retries and expiry, connection timeouts.
    func tick(now: Instant, emit: inout Emitter)
    /// Drops the element itself decided on, by reason.
    var drops: DropCounters { get }
    /// The earliest moment the element has a timer finer than the regular
    /// tick (VRRP's centisecond adverts and master-down timer); nil: the
    /// regular tick is enough. Runtimes call `fireTimers` when it is due.
    var nextTimer: Instant? { get }
    /// Runs only the timers `nextTimer` stands for, not the once-per-tick
    /// housekeeping (aging, expiry scans), so a fast timer does not make
    /// that run more often.
    func fireTimers(now: Instant, emit: inout Emitter)
    /// Whether `prefetch` does anything; run loops skip the passes if not.
    static var prefetchesBatches: Bool { get }
    /// A hint before a receive batch is processed: called for every frame
    /// of the batch with stage 0, then with stage 1, then `process` runs
    /// for each. An element whose per-packet state sits in a big table
    /// (the director's connection table) starts loading it here, so the
    /// batch's cache misses overlap instead of queueing. Changes nothing,
    /// emits nothing; a frame it cannot read is simply skipped.
    func prefetch(_ frame: UnsafeRawBufferPointer, stage: Int)
    /// The fast path (docs/fastpath.md): changes whenever state that a
    /// forwarding decision rests on changes (a route, a neighbour, a learned
    /// MAC, a VRRP state), which retires every entry made before it.
    var fastPathGeneration: UInt32 { get }
    /// Whether the frame the element last forwarded may have what was done
    /// to it repeated for the later frames of its flow; reading clears it.
    /// False for an element whose decisions the fast path never repeats.
    func takeFastPathCacheable() -> Bool
    /// The fast path forwarded frames of ENTRY's flow without the element
    /// seeing them, the last at LASTSEEN: refresh what those frames would
    /// have refreshed (a learned MAC's age, a connection's timeout).
    /// Returns false when the state the entry repeats is gone (its
    /// connection expired or was removed): the runtime removes the entry.
    func fastPathFlowSeen(_ entry: FastPathEntry, lastSeen: Instant, now: Instant) -> Bool
}

extension Element {
    public var fastPathGeneration: UInt32 { 0 }
    public func takeFastPathCacheable() -> Bool { false }
    public func fastPathFlowSeen(_ entry: FastPathEntry, lastSeen: Instant, now: Instant) -> Bool { true }
    public var nextTimer: Instant? { nil }
    public func fireTimers(now: Instant, emit: inout Emitter) {}
    public static var prefetchesBatches: Bool { false }
    @inline(__always) public func prefetch(_ frame: UnsafeRawBufferPointer, stage: Int) {}
}
