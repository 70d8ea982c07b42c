import Datapath

/// The element of a userspace node, by concrete type, so a run loop's call
/// is static (live: `LabDaemon`; sim: `Simulator`).
public enum NodeForwarder {
    case learningSwitch(LearningSwitch)
    case router(Router)
    case director(Director)

    public var element: any Element {
        switch self {
        case .learningSwitch(let e): return e
        case .router(let e): return e
        case .director(let e): return e
        }
    }

    /// The node's VRRP groups (routers and directors), nil for a switch.
    public var vrrpNode: (any VRRPNode)? {
        switch self {
        case .learningSwitch: return nil
        case .router(let e): return e
        case .director(let e): return e
        }
    }

    /// Element counters for `status`, by name.
    public var counters: [String: UInt64] {
        switch self {
        case .learningSwitch(let sw):
            return ["learned": sw.counters.learned, "flooded": sw.counters.flooded, "forwarded": sw.counters.forwarded,
                    "moved": sw.counters.moved, "aged": sw.counters.aged, "table-full": sw.counters.tableFull,
                    "mac-entries": UInt64(sw.table.count)]
        case .router(let r):
            let c = r.counters
            return ["forwarded": c.forwarded, "echo-replies": c.echoReplies, "arp-requests-sent": c.arpRequestsSent,
                    "arp-replies-sent": c.arpRepliesSent, "arp-queued": c.arpQueued, "arp-released": c.arpReleased,
                    "icmp-sent": c.icmpSent, "icmp-rate-limited": c.icmpRateLimited, "nat-in": c.natIn,
                    "nat-out": c.natOut, "fragments-sent": c.fragmentsSent,
                    "arp-entries": UInt64(r.arp.count), "arp-table-full": r.arp.counters.tableFull,
                    "next-hops": UInt64(r.fib.liveNextHopCount), "ports-down": UInt64(r.fib.downPorts.count)]
        case .director(let d):
            let c = d.counters
            return ["received": c.received, "forwarded-dr": c.forwardedDR, "forwarded-tun": c.forwardedTUN,
                    "forwarded-nat": c.forwardedNAT, "forwarded-fullnat": c.forwardedFullNAT,
                    "replies-nat": c.repliesNAT, "replies-fullnat": c.repliesFullNAT, "routed": c.routed,
                    "arp-replies-sent": c.arpRepliesSent, "arp-requests-sent": c.arpRequestsSent,
                    "echo-replies-sent": c.echoRepliesSent, "icmp-errors-sent": c.icmpErrorsSent,
                    "connections-created": d.core.counters.created, "syn-flood-evicted": d.core.counters.evictedEmbryonic,
                    "connections": UInt64(d.core.table.count), "connection-limit": UInt64(d.core.table.capacity),
                    "arp-entries": UInt64(d.arpEntryCount), "arp-table-full": d.arpTableFull]
        }
    }
}
