import Wire

// The director's side of the fast path (docs/fastpath.md, "The director").
//
// Repeatable: a frame forwarded for a connection the table already held
// (not the one that created it) whose state the frame left as it found it,
// ESTABLISHED (TCP, no SYN/FIN/RST) or UDP — so the flow's next frame of the
// same kind finds the same connection in the same state, and Swift would do
// to it exactly what was done to this one, but for refreshing the
// connection's timer (and its sync stamp), which `fastPathFlowSeen` does
// for the frames the program forwarded. That covers NAT (client → VIP and
// the real's replies), DR and FULLNAT (both directions), and TUN when the
// datagram has DF set and no Ethernet padding (`tunnelRepeatable`: then the
// outer header's identification is 0, which the program can write; with
// the director's counter it could not). Not:
//
// - Traffic the director merely routes (`routeTransit`), ICMP (echo, errors
//   relayed to a real), fragments: not a connection's decision.
// - A frame that moved its connection's TCP state (the handshake's last
//   ACK): the next one does not, so that one is the first repeated.
// - A frame queued for ARP or sent as fragments: not a `.forward`.
//
// What a later frame would change in Swift that the program skips, and how
// each is dealt with:
//
// - TCP state: the program takes no SYN, FIN or RST, and an ACK leaves
//   ESTABLISHED as it is. Once a SYN/FIN/RST (through Swift) moves the
//   connection on, the ACKs of the close would move it further (LAST_ACK →
//   CLOSE): `fastPathFlowSeen` answers false for any state but ESTABLISHED
//   and UDP, so the runtime drops the entry and those ACKs come back. Until
//   it does (a tick) the state lags, never the bytes.
// - The connection's timer: refreshed by `fastPathFlowSeen` from the last
//   frame's time, with the current state's timeout, never earlier.
// - Connection sync: entries are sent when they change and when used more
//   than half their lifetime after the last send (`SyncSender.used`), not
//   by packet count; `fastPathFlowSeen` counts as a use.
// - Counters (per mode, `existing`, `replies`): not counted; the runtime
//   has each entry's packets and bytes.
// - Persistence templates: a connection's later packets do not touch its
//   template (only a new connection restarts its timer), and a template
//   lives on while it controls connections.
// - sloppy, mh and every scheduler: they pick the real of a NEW connection;
//   a connection keeps its real (its 5-tuple is its key).
// - A real quiesced (weight 0), disabled by health checks, added; a service
//   added: existing connections continue as IPVS's do, so no entry's
//   treatment changes — the generation moves anyway (rare, and a cached
//   decision must not outlive a change of what it was made under).
// - A connection removed (timer, reuse of its ports by a SYN, replaced by a
//   peer's sync entry, the SYN-flood defense, a reply key taken over): its
//   5-tuple may come back as a new connection to another real (a SYN
//   reusing the ports does so at once), or with sloppy as a mid-stream
//   packet Swift would schedule anew, while the runtime still holds the old
//   entry (it asks about an entry at most once a second, and only about one
//   that forwarded since). So a removal retires every entry if one may have
//   been made since the last retirement (`DirectorCore.fastPathArmed`): the
//   timer's removals once per tick, a lone removal (reuse, eviction) at
//   once. That costs each cached flow one slow frame per retirement.
// - Neighbours (a real's or gateway's MAC), routes, VRRP states (a backup
//   does not serve its VIPs): their generations are part of this one.

extension Director {
    /// Routes, neighbours, VRRP states, services and reals, and removed
    /// connections (see the top of this file).
    public var fastPathGeneration: UInt32 {
        fib.generation &+ arp.generation &+ UInt32(truncatingIfNeeded: vrrp.transitionCount) &+ core.fastPathGeneration
    }

    /// True also arms the retirement by connection removal: from now on an
    /// entry may exist.
    public func takeFastPathCacheable() -> Bool {
        guard fastPathCacheable else { return false }
        fastPathCacheable = false
        core.fastPathArmed = true
        return true
    }

    public func fastPathFlowSeen(_ entry: FastPathEntry, lastSeen: Instant, now: Instant) -> Bool {
        core.fastPathFlowSeen(entry, lastSeen: lastSeen.nanoseconds, now: now.nanoseconds)
    }

    /// VERDICT; a forward of a packet that found its connection as the
    /// flow's next packet will (`DirectorCore.lastPacketRepeatable`) may be
    /// repeated.
    @inline(__always)
    func noteRepeatable(_ verdict: Verdict, existing: Bool) -> Verdict {
        if existing && core.lastPacketRepeatable, case .forward = verdict { fastPathCacheable = true }
        return verdict
    }
}

extension DirectorCore {
    /// Whether the next packet like this one would find connection E as
    /// this one left it.
    @inline(__always)
    static func repeatable(_ e: UnsafeMutablePointer<ConnectionEntry>, changed: Bool, tcpFlags: UInt8) -> Bool {
        !changed && tcpFlags & (TCPFlagBits.syn | TCPFlagBits.fin | TCPFlagBits.rst) == 0
            && (e.pointee.state == ConnectionState.established.rawValue || e.pointee.state == ConnectionState.udp.rawValue)
    }

    /// A connection was removed: retire every entry, if one may exist.
    func fastPathConnectionGone() {
        guard fastPathArmed else { return }
        fastPathArmed = false
        fastPathGeneration &+= 1
    }

    /// The connection ENTRY's key names (a client → VIP packet or a real's
    /// reply), its timer refreshed as by a packet at LASTSEEN (current
    /// state's timeout, never earlier) and offered to sync as a use. False:
    /// gone, no longer what the entry writes, past ESTABLISHED, or already
    /// expired when that packet came.
    func fastPathFlowSeen(_ entry: FastPathEntry, lastSeen: UInt64, now: UInt64) -> Bool {
        let k = entry.key
        let i: UInt32
        if let c = table.findInbound(proto: k.ipProtocol, client: k.source.rawValue, clientPort: k.sourcePort,
                                     virtual: k.destination.rawValue, virtualPort: k.destinationPort) {
            let e = table.pointer(c).pointee
            let fullnat = e.flags & ConnectionEntry.Flag.fullnat != 0
            let mode = Self.modes[Int(e.mode)]
            // DR and TUN leave the (inner) destination the VIP; TUN's entry
            // names the real as its outer header's destination.
            let rewritesDestination = mode == .nat || mode == .fullnat
            if mode == .tun, !entry.encapsulates || entry.outerDestination.rawValue != e.realAddress { return false }
            guard entry.destination.rawValue == (rewritesDestination ? e.realAddress : e.virtualAddress),
                  entry.destinationPort == (rewritesDestination ? e.realPort : e.virtualPort),
                  entry.source.rawValue == (fullnat ? e.localAddress : e.clientAddress),
                  entry.sourcePort == (fullnat ? e.localPort : e.clientPort) else { return false }
            i = c
        } else if let c = table.findReply(proto: k.ipProtocol, real: k.source.rawValue, realPort: k.sourcePort,
                                          destination: k.destination.rawValue, destinationPort: k.destinationPort) {
            let e = table.pointer(c).pointee
            let fullnat = e.flags & ConnectionEntry.Flag.fullnat != 0
            guard entry.source.rawValue == e.virtualAddress, entry.sourcePort == e.virtualPort,
                  entry.destination.rawValue == (fullnat ? e.clientAddress : k.destination.rawValue),
                  entry.destinationPort == (fullnat ? e.clientPort : k.destinationPort) else { return false }
            i = c
        } else {
            return false
        }
        let e = table.pointer(i)
        guard e.pointee.expires > lastSeen else { return false }
        let refreshed = lastSeen &+ timeoutNanoseconds[Int(e.pointee.state)]
        if refreshed > e.pointee.expires { table.setExpiry(i, refreshed) }
        if syncing { syncSender.unsafelyUnwrapped.used(i, changed: false, core: self, now: now) }
        return e.pointee.state == ConnectionState.established.rawValue || e.pointee.state == ConnectionState.udp.rawValue
    }
}
