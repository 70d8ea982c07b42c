import Wire

// The router's slow paths: ICMP errors, fragmentation, and the translation
// of packets quoted inside ICMP errors for static NAT. None of them runs for
// a packet that is simply forwarded.

extension Router {
    // MARK: ICMP errors

    /// Sends an ICMP error about the IPv4 packet in `frame` (parsed as `p`)
    /// out of `port` to `mac`, unless RFC 1812 §4.3.2.7 forbids one or the
    /// token bucket is empty. The quote is the IP header + 8 bytes, with the
    /// addresses put back to `originalSource`/`originalDestination` (what
    /// the sender sent, before NAT), checksums fixed.
    func sendICMPError(_ message: ICMPv4Message, about frame: UnsafeRawBufferPointer, _ p: ParsedFrame,
                       originalSource: IPv4Address, originalDestination: IPv4Address,
                       on port: PortID, to mac: MACAddress, now: Instant, emit: inout Emitter) {
        guard errorAllowed(p, source: originalSource) else { return }
        let source = errorSource[port.rawValue]
        guard source != .any else { return }  // no address to send from
        guard takeICMPToken(now: now) else { return }
        let l3 = p.l3Offset
        let quote = UnsafeRawBufferPointer(rebasing: frame[l3 ..< l3 + min(p.ipHeaderLength + 8, p.ipLength)])
        let total = 14 + 20 + 8 + quote.count
        let sourceMAC = portMACs[port.rawValue]
        let sent = emit.emit(on: port) { slot in
            guard total <= slot.count else { return 0 }
            ICMPv4ErrorMessage.write(
                message, quoting: quote,
                header: IPv4Repr(sourceAddress: source, destinationAddress: originalSource, protocol: .icmp,
                                 payloadLength: 0, timeToLive: 64, dontFragment: true),
                into: UnsafeMutableRawBufferPointer(rebasing: slot[14 ..< total])
            ) { Self.restoreAddresses(inQuote: $0, source: originalSource, destination: originalDestination) }
            EthernetRepr(destination: mac, source: sourceMAC, etherType: .ipv4)
                .emit(into: EthernetMutableHeader(unchecked: slot))
            return total
        }
        if sent { counters.icmpSent &+= 1 }
    }

    /// RFC 1812 §4.3.2.7: no ICMP error about an ICMP error, a non-first
    /// fragment, or a packet whose source is not one unicast host.
    func errorAllowed(_ p: ParsedFrame, source: IPv4Address) -> Bool {
        guard p.fragmentOffset == 0 else { return false }
        if p.protocol == .icmp {
            guard p.hasTransportHeader, !ICMPv4Type(p.icmpType).isError else { return false }
        }
        let s = source.rawValue
        guard s != 0, s >> 24 != 127, s >> 28 < 0xE else { return false }
        return fib.lookup(source)?.action != .broadcast
    }

    /// One token from the ICMP error bucket, refilled by elapsed time.
    func takeICMPToken(now: Instant) -> Bool {
        guard let limit = configuration.icmpRateLimit else { return true }
        if now > tokensUpdated {
            let elapsed = Double(now.nanoseconds - tokensUpdated.nanoseconds) / 1e9
            tokens = min(Double(limit.burst), tokens + elapsed * limit.perSecond)
            tokensUpdated = now
        }
        guard tokens >= 1 else {
            counters.icmpRateLimited &+= 1
            return false
        }
        tokens -= 1
        return true
    }

    /// ICMP host unreachable for a packet ARP gave up on, back to the
    /// neighbour it came from.
    func hostUnreachable(for queued: ARPCache.QueuedFrame, now: Instant, emit: inout Emitter) {
        queued.bytes.withUnsafeBytes { frame in
            guard let p = try? parser.parse(frame) else { return }
            sendICMPError(.destinationUnreachable(code: ICMPv4Code.hostUnreachable, nextHopMTU: 0), about: frame, p,
                          originalSource: queued.originalSource, originalDestination: queued.originalDestination,
                          on: queued.ingressPort, to: queued.previousHop, now: now, emit: &emit)
        }
    }

    /// Puts the quoted packet's addresses back to what its sender used,
    /// fixing the quoted IP header checksum and, when it is in the quote, the
    /// UDP checksum (TCP's lies past the 8 quoted bytes).
    static func restoreAddresses(inQuote quote: UnsafeMutableRawBufferPointer, source: IPv4Address,
                                 destination: IPv4Address) {
        let ip = IPv4MutableHeader(unchecked: quote)
        let headerLength = ip.headerLength
        let udp: UDPMutableHeader? = ip.protocol == .udp && !ip.isNonFirstFragment && quote.count >= headerLength + 8
            ? UDPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: quote[headerLength ..< headerLength + 8]))
            : nil
        let oldSource = ip.sourceAddress
        if oldSource != source {
            ip.rewriteSourceAddress(source)
            udp?.adjustChecksum(addressChangedFrom: oldSource, to: source)
        }
        let oldDestination = ip.destinationAddress
        if oldDestination != destination {
            ip.rewriteDestinationAddress(destination)
            udp?.adjustChecksum(addressChangedFrom: oldDestination, to: destination)
        }
    }

    // MARK: NAT of ICMP errors in transit (RFC 5508 §4.2)

    /// An ICMP error travelling to a NAT public address (now translated to
    /// the private one) quotes a packet the private host sent, which left
    /// with the public address as its source: put the private one back.
    func translateQuotedPacket(_ p: ParsedFrame, source old: IPv4Address, to new: IPv4Address,
                               in bytes: UnsafeMutableRawBufferPointer) {
        translateQuoted(p, addressAt: IPv4Header.Field.sourceAddress, from: old, to: new, in: bytes)
    }

    /// An ICMP error the private host sends (its source now the public
    /// address) quotes a packet that reached it translated, with the private
    /// address as its destination: show the public one, as the peer sent it.
    func translateQuotedPacket(_ p: ParsedFrame, destination old: IPv4Address, to new: IPv4Address,
                               in bytes: UnsafeMutableRawBufferPointer) {
        translateQuoted(p, addressAt: IPv4Header.Field.destinationAddress, from: old, to: new, in: bytes)
    }

    /// An ICMP error leaving the inside whose own source is not translated
    /// but whose quoted packet went to a private address (it came in through
    /// the NAT): the quote's destination becomes the public address, as a
    /// stateful NAT translates related ICMP. Returns whether it did.
    func translateQuotedPrivateDestination(_ p: ParsedFrame, in bytes: UnsafeMutableRawBufferPointer) -> Bool {
        guard p.hasTransportHeader, ICMPv4Type(p.icmpType).isError, p.l4Length - 8 >= 20 else { return false }
        let field = p.l4Offset + 8 + IPv4Header.Field.destinationAddress
        let quoted = IPv4Address(rawValue: UInt32(bytes.wireU16(field)) << 16 | UInt32(bytes.wireU16(field + 2)))
        guard let outside = natOut[quoted.rawValue] else { return false }
        translateQuotedPacket(p, destination: quoted, to: outside, in: bytes)
        return true
    }

    /// Rewrites one address of the packet quoted in an ICMP error and keeps
    /// three checksums right: the quoted IP header's, the quoted UDP/TCP
    /// one when the quote holds it, and the ICMP checksum over all of it.
    func translateQuoted(_ p: ParsedFrame, addressAt field: Int, from old: IPv4Address, to new: IPv4Address,
                         in bytes: UnsafeMutableRawBufferPointer) {
        guard p.hasTransportHeader, ICMPv4Type(p.icmpType).isError else { return }
        let inner = p.l4Offset + 8
        let quoted = p.l4Length - 8
        guard quoted >= 20 else { return }
        let vihl = bytes[inner]
        let innerHeaderLength = Int(vihl & 0x0F) * 4
        guard vihl >> 4 == 4, innerHeaderLength >= 20, innerHeaderLength <= quoted,
              bytes.wireU16(inner + field) == UInt16(truncatingIfNeeded: old.rawValue >> 16),
              bytes.wireU16(inner + field + 2) == UInt16(truncatingIfNeeded: old.rawValue)
        else { return }
        let icmpChecksum = p.l4Offset + 2
        var outer = bytes.wireU16(icmpChecksum)
        /// Sets the 16-bit word at `offset` and carries the change into the
        /// ICMP checksum.
        func set(_ offset: Int, _ value: UInt16) {
            outer = InternetChecksum.update(outer, old: bytes.wireU16(offset), new: value)
            bytes.wireSetU16(value, offset)
        }
        set(inner + field, UInt16(truncatingIfNeeded: new.rawValue >> 16))
        set(inner + field + 2, UInt16(truncatingIfNeeded: new.rawValue))
        let ipChecksum = inner + IPv4Header.Field.headerChecksum
        set(ipChecksum, InternetChecksum.update(bytes.wireU16(ipChecksum), old: old.rawValue, new: new.rawValue))
        let nonFirst = bytes.wireU16(inner + IPv4Header.Field.flagsAndFragmentOffset) & 0x1FFF != 0
        let transport = inner + innerHeaderLength
        switch bytes[inner + IPv4Header.Field.protocol] {
        case 17 where !nonFirst && quoted >= innerHeaderLength + 8:
            let c = transport + UDPHeader.Field.checksum
            set(c, InternetChecksum.updateUDP(bytes.wireU16(c), old: old.rawValue, new: new.rawValue))
        case 6 where !nonFirst && quoted >= innerHeaderLength + 18:
            let c = transport + TCPHeader.Field.checksum
            set(c, InternetChecksum.update(bytes.wireU16(c), old: old.rawValue, new: new.rawValue))
        default:
            break
        }
        bytes.wireSetU16(outer, icmpChecksum)
    }

    // MARK: Fragmentation (RFC 791)

    /// Emits `frame` (an IPv4 packet larger than `port`'s MTU, DF clear) as
    /// fragments (`IPv4Fragmenter`) with the given MACs. All or nothing:
    /// false, sending nothing, when the fragments would not fit the emitter.
    func sendFragments(of frame: UnsafeRawBufferPointer, _ p: ParsedFrame, on port: PortID,
                       destinationMAC: MACAddress, sourceMAC: MACAddress, emit: inout Emitter) -> Bool {
        let l3 = p.l3Offset
        // Fragments are at most MTU bytes, and must fit an emitter slot.
        let limit = min(portMTUs[port.rawValue], Emitter.slotSize - l3)
        let fragmenter = IPv4Fragmenter(UnsafeRawBufferPointer(rebasing: frame[l3 ..< l3 + p.ipLength]), limit: limit)
        let count = fragmenter.count
        guard count > 0, emit.slotCount - emit.count >= count else { return false }
        for index in 0 ..< count {
            emit.emit(on: port) { slot in
                slot.copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[0 ..< l3]))
                let ethernet = EthernetMutableHeader(unchecked: slot)
                ethernet.destination = destinationMAC
                ethernet.source = sourceMAC
                return l3 + fragmenter.write(index, into: UnsafeMutableRawBufferPointer(rebasing: slot[l3...]))
            }
        }
        counters.fragmentsSent &+= UInt64(count)
        counters.forwarded &+= 1
        return true
    }
}
