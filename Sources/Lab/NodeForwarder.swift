import Datapath
import Wire

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

    /// Whether the element has timers finer than the runtime's tick
    /// (`Element.nextTimer`): ARP retries, VRRP groups, a director's sync flushes.
    public var hasFineTimers: Bool {
        switch self {
        case .learningSwitch: return false
        case .router, .director: return true   // ARP retries at least
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
                .merging(Self.syncCounters(d)) { a, _ in a }
        }
    }

    /// Connection sync's counters (`sync-…`), only on a director with sync
    /// on. Frames dropped (other group, own, malformed) are drops by reason.
    static func syncCounters(_ d: Director) -> [String: UInt64] {
        guard d.configuration.sync != nil else { return [:] }
        let s = d.syncCounters
        var out: [String: UInt64] = [
            "sync-messages-sent": s.messagesSent, "sync-entries-sent": s.entriesSent,
            "sync-entries-dropped": s.entriesDropped, "sync-messages-received": s.messagesReceived,
            "sync-entries-received": s.entriesReceived, "sync-installed": s.installed, "sync-updated": s.updated,
            "synced-connections": UInt64(d.syncedEntryCount),
        ]
        for (reason, n) in s.ignored { out["sync-ignored:" + reason.rawValue] = n }
        return out
    }
}

extension NodeForwarder {
    /// A port's carrier changed: what the element does about it, the same
    /// for the live daemon (`LabDaemon.applyCarrier`) and the simulator
    /// (`Simulator.fail`/`heal`). A router drops the routes through a port
    /// without carrier (ECMP groups shrink to their live next hops) and
    /// restores them when it returns; a switch forgets the MACs it learned
    /// there (they are elsewhere now, or gone: flooding finds them at once
    /// instead of waiting out the aging time). With bonds, PORT is the
    /// element's (logical) port and only the bond's own carrier counts
    /// (`BondMap`). What an element emits in answer goes into `emit`: the
    /// caller sends it. Returns what changed, for the daemon's log ("" if nothing).
    @discardableResult
    public func carrierChanged(port: PortID, up: Bool, now: Instant, emit: inout Emitter) -> String {
        // VRRP groups on that port stop (keepalived's FAULT) or start again.
        if let node = vrrpNode, !node.vrrp.isEmpty { node.vrrp.setLink(port, up: up, now: now, emit: &emit) }
        switch self {
        case .router(let router):
            router.setLink(port, up: up)
            let asked = up ? router.resolveNextHops(on: port, now: now, emit: &emit) : 0
            return "; router has \(router.fib.liveNextHopCount) next hops live" + (asked > 0 ? ", asks for \(asked) by ARP" : "")
        case .learningSwitch(let sw):
            if !up { sw.flush(port: port) }
            return ""
        case .director:
            return ""
        }
    }

    /// Another member of the bond at (logical) PORT became active: a
    /// gratuitous ARP for each of the bond's addresses (with its MAC, which
    /// every member carries) and for each VIP of a VRRP group mastered on
    /// it, so the switches move those MACs to the new member's path now,
    /// not when they age out (Linux's bonding does the same).
    public func bondFailedOver(port: PortID, mac: MACAddress, addresses: [IPv4Address], emit: inout Emitter) {
        for address in addresses { emit.gratuitousARP(on: port, mac: mac, address: address) }
        guard let node = vrrpNode else { return }
        for group in node.vrrp.instances where group.configuration.port == port && group.isMaster {
            for vip in group.configuration.vips { emit.gratuitousARP(on: port, mac: group.virtualMAC, address: vip) }
        }
    }
}
