import Datapath
import Wire

// The connection table's lookups in batches with the two prefetch stages
// the daemon's run loop uses (`Element.prefetch`), over bare packets, so
// the benchmark can show what prefetching a batch buys the table alone.
extension DirectorCore {
    /// One client → VIP packet of a batch.
    public struct InboundPacket: Sendable {
        public var proto: TransportProtocol
        public var client: IPv4Address
        public var clientPort: UInt16
        public var virtual: IPv4Address
        public var virtualPort: UInt16
        public var tcpFlags: UInt8
        public init(_ proto: TransportProtocol, client: IPv4Address, clientPort: UInt16, virtual: IPv4Address,
                    virtualPort: UInt16, tcpFlags: UInt8) {
            self.proto = proto
            self.client = client
            self.clientPort = clientPort
            self.virtual = virtual
            self.virtualPort = virtualPort
            self.tcpFlags = tcpFlags
        }
    }

    /// One real → client/local packet of a batch.
    public struct ReplyPacket: Sendable {
        public var proto: TransportProtocol
        public var real: IPv4Address
        public var realPort: UInt16
        public var destination: IPv4Address
        public var destinationPort: UInt16
        public var tcpFlags: UInt8
        public init(_ proto: TransportProtocol, real: IPv4Address, realPort: UInt16, destination: IPv4Address,
                    destinationPort: UInt16, tcpFlags: UInt8) {
            self.proto = proto
            self.real = real
            self.realPort = realPort
            self.destination = destination
            self.destinationPort = destinationPort
            self.tcpFlags = tcpFlags
        }
    }

    /// Packets handled together so their table misses overlap.
    public static let prefetchGroup = 16

    /// For packets 0..<count in groups of `prefetchGroup`: every packet's
    /// index slot prefetched, then its entry, then the packet decided.
    @inline(__always)
    static func inPrefetchedGroups(_ count: Int, slot: (Int) -> Void, entry: (Int) -> Void, decide: (Int) -> Void) {
        var start = 0
        while start < count {
            let end = min(start + prefetchGroup, count)
            for k in start..<end { slot(k) }
            for k in start..<end { entry(k) }
            for k in start..<end { decide(k) }
            start = end
        }
    }

    /// `schedule` for a batch (the run loop's receive batch): same results,
    /// in order, as calling `schedule` for each packet, but the index slots
    /// and entries of each group of packets are prefetched first.
    public func schedule(batch packets: UnsafeBufferPointer<InboundPacket>, into decisions: UnsafeMutableBufferPointer<Decision>,
                         now: Instant) {
        precondition(decisions.count >= packets.count)
        Self.inPrefetchedGroups(packets.count, slot: { k in
            let p = packets[k]
            table.prefetchInboundSlot(proto: p.proto.ipProtocol.rawValue, client: p.client.rawValue, clientPort: p.clientPort,
                                      virtual: p.virtual.rawValue, virtualPort: p.virtualPort)
        }, entry: { k in
            let p = packets[k]
            table.prefetchInboundEntry(proto: p.proto.ipProtocol.rawValue, client: p.client.rawValue, clientPort: p.clientPort,
                                       virtual: p.virtual.rawValue, virtualPort: p.virtualPort)
        }, decide: { k in
            let p = packets[k]
            decisions[k] = schedule(p.proto, client: p.client, clientPort: p.clientPort, virtual: p.virtual,
                                    virtualPort: p.virtualPort, tcpFlags: p.tcpFlags, now: now)
        })
    }

    /// `lookupReply` for a batch, prefetching like `schedule(batch:)`.
    public func lookupReply(batch packets: UnsafeBufferPointer<ReplyPacket>, into decisions: UnsafeMutableBufferPointer<ReplyDecision>,
                            now: Instant) {
        precondition(decisions.count >= packets.count)
        Self.inPrefetchedGroups(packets.count, slot: { k in
            let p = packets[k]
            table.prefetchReplySlot(proto: p.proto.ipProtocol.rawValue, real: p.real.rawValue, realPort: p.realPort,
                                    destination: p.destination.rawValue, destinationPort: p.destinationPort)
        }, entry: { k in
            let p = packets[k]
            table.prefetchReplyEntry(proto: p.proto.ipProtocol.rawValue, real: p.real.rawValue, realPort: p.realPort,
                                     destination: p.destination.rawValue, destinationPort: p.destinationPort)
        }, decide: { k in
            let p = packets[k]
            decisions[k] = lookupReply(p.proto, from: p.real, fromPort: p.realPort, to: p.destination,
                                       toPort: p.destinationPort, tcpFlags: p.tcpFlags, now: now)
        })
    }
}
