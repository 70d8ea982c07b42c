import Wire

/// A learning L2 switch (IEEE 802.1D behaviour without spanning tree):
/// learns source MACs per port, forwards known unicast to its port, floods
/// broadcast, multicast and unknown unicast to every other port, ages
/// entries out, follows a MAC that moves to another port, and stops learning
/// (counting it) when the table is full.
public final class LearningSwitch: Element {
    public struct Configuration: Sendable {
        /// Seconds an entry lives without being refreshed (802.1D default 300).
        public var agingTime: Double = 300
        /// Most entries the table holds.
        public var maxEntries: Int = 8192
        public init(agingTime: Double = 300, maxEntries: Int = 8192) {
            self.agingTime = agingTime
            self.maxEntries = maxEntries
        }
    }

    public struct Entry: Equatable, Sendable {
        public var port: PortID
        public var lastSeen: Instant
    }

    public struct Counters: Sendable, Equatable {
        public var learned: UInt64 = 0
        public var moved: UInt64 = 0
        public var aged: UInt64 = 0
        public var tableFull: UInt64 = 0
        public var flooded: UInt64 = 0
        public var forwarded: UInt64 = 0
    }

    public let portCount: Int
    public let configuration: Configuration
    public private(set) var table: MACTable
    public private(set) var counters = Counters()
    public private(set) var drops = DropCounters()
    @usableFromInline let agingNanoseconds: UInt64

    public init(ports: Int, configuration: Configuration = .init()) {
        portCount = ports
        self.configuration = configuration
        agingNanoseconds = UInt64(configuration.agingTime * 1e9)
        table = MACTable(capacity: max(1, configuration.maxEntries))
    }


    public func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
        let frame = packet.readOnly
        guard frame.count >= 14 else {
            drops.count(.malformed("truncated"))
            return .drop(.malformed("truncated"))
        }
        let destination = Self.mac(frame, at: 0)
        let source = Self.mac(frame, at: 6)

        if !source.isMulticast && source != .zero { learn(source, on: port, now: now) }

        if destination.isMulticast {
            counters.flooded &+= 1
            return .flood
        }
        if let entry = table[destination], now.nanoseconds &- entry.lastSeen.nanoseconds < agingNanoseconds {
            if entry.port == port {
                // Both ends are behind the ingress port: the frame has
                // already reached its segment.
                drops.count(.sameSegment)
                return .drop(.sameSegment)
            }
            counters.forwarded &+= 1
            fastPathCacheable = true
            return .forward(entry.port)
        }
        counters.flooded &+= 1
        return .flood
    }

    @inlinable static func mac(_ frame: UnsafeRawBufferPointer, at offset: Int) -> MACAddress {
        frame.wireMAC(offset)
    }

    @inline(__always)
    func learn(_ mac: MACAddress, on port: PortID, now: Instant) {
        switch table.learn(mac, on: port, now: now) {
        case .refreshed: break
        case .moved: counters.moved &+= 1
        case .added: counters.learned &+= 1
        case .full: counters.tableFull &+= 1
        }
    }

    /// Set when a frame goes to a learned port (the fast path may repeat it).
    @usableFromInline var fastPathCacheable = false

    /// The learned MACs (docs/fastpath.md).
    public var fastPathGeneration: UInt32 { table.generation }

    public func takeFastPathCacheable() -> Bool {
        defer { fastPathCacheable = false }
        return fastPathCacheable
    }

    /// The frames the fast path forwarded would have refreshed their source
    /// MAC (the switch rewrites nothing: the entry's source MAC is theirs)
    /// where it was learned. The entry's generation says where that was: if
    /// the table has moved nothing since, the MAC is still behind the port
    /// the entry's frames come in by (whose slot in the program the element
    /// does not know). False: something moved or aged out since, this MAC
    /// perhaps. The destination's entry is not refreshed, as in `process`:
    /// it ages unless the destination sends.
    public func fastPathFlowSeen(_ entry: FastPathEntry, lastSeen: Instant, now: Instant) -> Bool {
        entry.generation == table.generation && table.refresh(entry.sourceMAC, now: lastSeen)
    }

    /// Removes entries not refreshed within the aging time.
    public func tick(now: Instant, emit: inout Emitter) {
        let aging = agingNanoseconds
        let removed = table.removeAll { _, seen in now.nanoseconds &- seen >= aging }
        counters.aged &+= UInt64(removed)
    }

    /// Forgets everything learned on `port` (its link went down).
    public func flush(port: PortID) {
        table.removeAll { p, _ in p == port }
    }
}
