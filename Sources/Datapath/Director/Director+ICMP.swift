import Wire

// What the director says in ICMP: echo replies for every owned address,
// and the errors a hop owes (RFC 1812): time exceeded, fragmentation
// needed (RFC 1191), and — if configured — port unreachable for a VIP port
// without a service. ICMP errors that reach a VIP about one of its
// connections are relayed to the real. Also IPv4 fragmentation (RFC 791) for datagrams with
// DF clear that do not fit the egress MTU (a TUN packet grown by its outer
// header, or a smaller MTU on the way out).

extension Director {
    /// Echo reply in place, Katran-style: back out of the ingress port to
    /// the sender's MAC, addresses swapped (source = the pinged address:
    /// VIP, local or interface address), TTL reset, checksums fixed. The
    /// request's checksum is verified first (a reply would carry a bad one on).
    func echoReply(_ p: ParsedFrame, _ packet: inout PacketBuffer, ingress: Int) -> Verdict {
        let frame = packet.bytes
        let l3 = p.l3Offset
        let icmp = UnsafeMutableRawBufferPointer(rebasing: frame[p.l4Offset..<l3 + p.ipLength])
        guard InternetChecksum.sum(UnsafeRawBufferPointer(icmp)) == 0xFFFF else { return drop(Reason.badICMPChecksum) }
        let eth = EthernetMutableHeader(unchecked: frame)
        eth.destination = p.sourceMAC
        eth.source = ports[ingress].mac
        let ip = IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: frame[l3..<l3 + p.ipLength]))
        ip.sourceAddress = p.destinationIPv4
        ip.destinationAddress = p.sourceIPv4
        ip.timeToLive = configuration.timeToLive
        ip.fillChecksum()
        let h = ICMPv4MutableHeader(unchecked: icmp)
        h.type = .echoReply
        h.checksum = InternetChecksum.update(h.checksum, old: UInt16(0x0800), new: UInt16(0))  // type 8 → 0, code 0
        counters.echoRepliesSent &+= 1
        return .forward(PortID(ingress))
    }

    /// ICMP types relayed to a real when they reach a VIP: destination
    /// unreachable (frag-needed included), time exceeded, parameter problem.
    static func isRelayedICMPError(_ type: UInt8) -> Bool { type == 3 || type == 11 || type == 12 }

    /// An ICMP error addressed to a VIP, about a packet of one of its
    /// connections: the VIP "sent" that packet (a DR/TUN real answering as
    /// the VIP, or the director translating a NAT/FULLNAT reply), so the
    /// error belongs to the real (IPVS ip_vs_in_icmp). Without this, PMTU
    /// discovery towards DR and TUN reals black-holes. The quoted datagram
    /// must be src VIP:port → client ip:port of a live connection.
    ///
    /// DR: MACs and TTL, as any packet of the connection. TUN: tunnelled
    /// as any packet of the connection (`tunnel`: the error's own TTL − 1,
    /// then an outer header with that TTL; the quote is not touched), as
    /// IPVS's `ip_vs_icmp_xmit` hands DR/TUN errors to the connection's
    /// own transmitter. NAT: outer destination → real; in the quoted
    /// datagram, source → real ip:port. FULLNAT: also the quoted
    /// destination → local ip:port. The IPv4 header checksums (outer and
    /// quoted) and the ICMP checksum are updated; the quoted TCP/UDP
    /// checksum is not (it covers data the quote does not hold; IPVS leaves
    /// it too). An error with TTL ≤ 1 is dropped without an error about it.
    func relayICMPError(_ p: inout ParsedFrame, _ packet: inout PacketBuffer, now: Instant, emit: inout Emitter) -> Verdict {
        let frame = packet.readOnly
        let end = p.l3Offset + p.ipLength
        let q = p.l4Offset + 8  // the quoted datagram
        guard end - q >= 20, frame[q] >> 4 == 4 else { return drop(Reason.icmpUnhandled) }
        let qihl = Int(frame[q] & 0x0F) << 2
        let qproto = frame[q + 9]
        guard qihl >= 20, end - q >= qihl + 8, frame.wireU16(q + 6) & 0x1FFF == 0, qproto == 6 || qproto == 17,
              frame.wireU32(q + 12) == p.destinationIPv4.rawValue
        else { return drop(Reason.icmpUnhandled) }
        guard let i = core.table.findInbound(proto: qproto, client: frame.wireU32(q + 16),
                                             clientPort: frame.wireU16(q + qihl + 2),
                                             virtual: p.destinationIPv4.rawValue, virtualPort: frame.wireU16(q + qihl)),
              core.table[i].expires > now.nanoseconds
        else { return drop(Reason.noConnection) }
        let e = core.table[i]
        if p.timeToLive <= 1 { return drop(.ttlExpired) }  // (no error about an error)
        let real = IPv4Address(rawValue: e.realAddress)
        guard let hop = route(e.realAddress) else { return drop(.noRoute) }
        let mode = DirectorCore.modes[Int(e.mode)]
        if mode == .tun {
            counters.icmpErrorsRelayed &+= 1
            return tunnel(&p, &packet, real: real, hop: hop, now: now, emit: &emit)
        }
        if mode == .dr && hop.gateway != 0 { return drop(Reason.realNotOnLink) }
        if let stop = fragmentationNeeded(p, frame, hop: hop, growth: 0, now: now, emit: &emit) { return stop }
        let b = packet.bytes
        if mode == .nat || mode == .fullnat {
            p.rewriteIPv4Destination(real, in: b)  // ICMP has no pseudo-header: the IP header checksum only
            let icmpChecksum = p.l4Offset + 2
            Self.rewriteQuoted32(b, at: q + 12, e.realAddress, quotedHeader: q, icmpChecksum: icmpChecksum)
            Self.rewriteQuoted16(b, at: q + qihl, e.realPort, icmpChecksum: icmpChecksum)
            if mode == .fullnat {
                Self.rewriteQuoted32(b, at: q + 16, e.localAddress, quotedHeader: q, icmpChecksum: icmpChecksum)
                Self.rewriteQuoted16(b, at: q + qihl + 2, e.localPort, icmpChecksum: icmpChecksum)
            }
        }
        p.decrementTimeToLive(in: b)
        counters.icmpErrorsRelayed &+= 1
        return transmit(&packet, ipLength: p.ipLength, hop: hop, now: now, emit: &emit)
    }

    /// Sets an address in a quoted IPv4 header, updating the quoted header
    /// checksum and the enclosing ICMP checksum (for both changed words) incrementally.
    static func rewriteQuoted32(_ b: UnsafeMutableRawBufferPointer, at offset: Int, _ new: UInt32, quotedHeader q: Int,
                                icmpChecksum c: Int) {
        let r = UnsafeRawBufferPointer(b)
        let old = r.wireU32(offset)
        let oldHeaderChecksum = r.wireU16(q + 10)
        let newHeaderChecksum = InternetChecksum.update(oldHeaderChecksum, old: old, new: new)
        b.wireSetU32(new, offset)
        b.wireSetU16(newHeaderChecksum, q + 10)
        let icmp = InternetChecksum.update(InternetChecksum.update(r.wireU16(c), old: old, new: new),
                                           old: oldHeaderChecksum, new: newHeaderChecksum)
        b.wireSetU16(icmp, c)
    }

    /// Sets a port in a quoted transport header, updating the ICMP checksum.
    static func rewriteQuoted16(_ b: UnsafeMutableRawBufferPointer, at offset: Int, _ new: UInt16, icmpChecksum c: Int) {
        let r = UnsafeRawBufferPointer(b)
        let old = r.wireU16(offset)
        b.wireSetU16(new, offset)
        b.wireSetU16(InternetChecksum.update(r.wireU16(c), old: old, new: new), c)
    }

    /// Before rewriting a packet towards `hop`: nil when it fits the egress
    /// MTU after growing by `growth` bytes (IPIP: 20), or may be
    /// fragmented (DF clear). With DF set: Fragmentation Needed to the
    /// source, quoting the packet as it arrived, with next-hop MTU = egress
    /// MTU − growth (what the source may send), and a drop.
    @inline(__always)
    func fragmentationNeeded(_ p: ParsedFrame, _ frame: UnsafeRawBufferPointer, hop: DirectorNextHop, growth: Int,
                             now: Instant, emit: inout Emitter) -> Verdict? {
        let mtu = ports[hop.port].mtu
        guard p.ipLength + growth > mtu, frame[p.l3Offset + 6] & 0x40 != 0 else { return nil }
        sendICMPError(type: 3, code: 4, rest: UInt32(mtu - growth), about: p, frame, from: nil, now: now, emit: &emit)
        return drop(.fragmentationNeeded)
    }

    /// ICMP query types (echo, timestamp, information, address mask): the
    /// only ICMP an error may be about.
    static func isICMPQuery(_ type: UInt8) -> Bool {
        switch type {
        case 0, 8, 13, 14, 15, 16, 17, 18: true
        default: false
        }
    }

    /// Sends an ICMP error about the packet `p` in `frame` (as it arrived)
    /// back to its source: from `source`, or the director's address towards
    /// the source. Quotes as much of the packet as keeps the error within
    /// 576 bytes (RFC 1812 4.3.2.3). Not about an ICMP error, a non-first
    /// fragment or a non-unicast source (RFC 1812 4.3.2.7); rate-limited by
    /// a token bucket.
    func sendICMPError(type: UInt8, code: UInt8, rest: UInt32, about p: ParsedFrame, _ frame: UnsafeRawBufferPointer,
                       from source: IPv4Address?, now: Instant, emit: inout Emitter) {
        if p.protocol == .icmp && !(p.hasTransportHeader && Self.isICMPQuery(p.icmpType)) { return }
        if p.fragmentOffset != 0 || !Self.isUsable(p.sourceIPv4) { return }
        guard let hop = route(p.sourceIPv4.rawValue) else {
            counters.icmpErrorsUnroutable &+= 1
            return
        }
        guard takeICMPToken(now) else {
            counters.icmpErrorsRateLimited &+= 1
            return
        }
        let quote = UnsafeRawBufferPointer(rebasing: frame[p.l3Offset ..< p.l3Offset + min(p.ipLength, 576 - 20 - 8)])
        identification &+= 1
        // DSCP CS6 (TOS 0xc0), as Linux marks the ICMP errors it sends.
        let header = IPv4Repr(sourceAddress: source ?? IPv4Address(rawValue: self.source(of: hop)), destinationAddress: p.sourceIPv4,
                              protocol: .icmp, payloadLength: 0, timeToLive: configuration.timeToLive,
                              identification: identification, dscp: 48)
        let ipLength = ICMPv4ErrorMessage.write(.other(type: ICMPv4Type(type), code: code, restOfHeader: rest), quoting: quote,
                                                header: header, into: UnsafeMutableRawBufferPointer(rebasing: scratch[14...]))
        let out = UnsafeMutableRawBufferPointer(rebasing: scratch[0 ..< 14 + ipLength])
        EthernetRepr(destination: .zero, source: ports[hop.port].mac, etherType: .ipv4)
            .emit(into: EthernetMutableHeader(unchecked: out))
        send(out, hop: hop, now: now, emit: &emit)
        counters.icmpErrorsSent &+= 1
    }

    /// Token bucket: `icmpErrorsPerSecond`, holding at most `icmpErrorBurst`.
    func takeICMPToken(_ now: Instant) -> Bool {
        let t = now.nanoseconds
        if t > icmpRefilled {
            icmpTokens = min(configuration.icmpErrorBurst,
                             icmpTokens + Double(t - icmpRefilled) * configuration.icmpErrorsPerSecond / 1e9)
            icmpRefilled = t
        }
        guard icmpTokens >= 1 else { return false }
        icmpTokens -= 1
        return true
    }

    /// Sends the IPv4 datagram at offset 14 of `frame` (Ethernet header
    /// rewritten; DF clear) as fragments that fit the egress MTU
    /// (`IPv4Fragmenter`), each through ARP like any frame the director sends.
    func fragment(_ frame: UnsafeRawBufferPointer, ipLength: Int, hop: DirectorNextHop, now: Instant,
                  emit: inout Emitter) -> Verdict {
        let l3 = 14
        let fragmenter = IPv4Fragmenter(UnsafeRawBufferPointer(rebasing: frame[l3 ..< l3 + ipLength]), limit: ports[hop.port].mtu)
        counters.fragmented &+= 1
        for index in 0 ..< fragmenter.count {
            scratch.copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[0 ..< l3]))
            let length = fragmenter.write(index, into: UnsafeMutableRawBufferPointer(rebasing: scratch[l3...]))
            send(UnsafeMutableRawBufferPointer(rebasing: scratch[0 ..< l3 + length]), hop: hop, now: now, emit: &emit)
            counters.fragmentsSent &+= 1
        }
        return .consumed
    }
}
