// In-place rewrites the data plane makes, on a frame already parsed by
// `FrameParser`. Every checksum is kept valid incrementally (RFC 1624
// eqn. 3); nothing is recomputed from scratch, nothing allocates.
//
// The frame passed in must be the same bytes the `ParsedFrame` came from
// (the helpers trust its offsets and protocol; old values are read from the
// frame). Each helper also updates the
// `ParsedFrame`, so it keeps describing the frame.
//
// Checksums that depend on a rewritten field:
//   IPv4 TTL              → IPv4 header checksum
//   IPv4 address          → IPv4 header checksum, TCP/UDP checksum (pseudo-header)
//   IPv6 address          → TCP/UDP/ICMPv6 checksum (pseudo-header)
//   TCP/UDP port          → TCP/UDP checksum
//   ICMP echo identifier  → ICMP/ICMPv6 checksum
//   MAC address           → nothing
// Non-first fragments carry no transport header, so only the IP header is
// touched for them. A UDP checksum of 0 ("none") stays 0.

extension ParsedFrame {
    /// Sets the destination MAC (no checksum covers it).
    @inlinable @inline(__always)
    public mutating func rewriteDestinationMAC(_ mac: MACAddress, in frame: UnsafeMutableRawBufferPointer) {
        frame.wireSetMAC(mac, EthernetHeader.Field.destination)
        destinationMAC = mac
    }

    /// Sets the source MAC (no checksum covers it).
    @inlinable @inline(__always)
    public mutating func rewriteSourceMAC(_ mac: MACAddress, in frame: UnsafeMutableRawBufferPointer) {
        frame.wireSetMAC(mac, EthernetHeader.Field.source)
        sourceMAC = mac
    }

    /// Decrements the IPv4 TTL (updating the header checksum) or the IPv6
    /// hop limit, and returns the new value. The frame must be IP with a
    /// TTL ≥ 1 (a router checks `timeToLive <= 1` first and sends ICMP
    /// Time Exceeded instead).
    @inlinable @inline(__always) @discardableResult
    public mutating func decrementTimeToLive(in frame: UnsafeMutableRawBufferPointer) -> UInt8 {
        precondition(ipVersion != 0 && timeToLive > 0, "TTL decrement on a non-IP frame or TTL 0")
        if ipVersion == 4 {
            let ttlOffset = l3Offset &+ IPv4Header.Field.timeToLive
            let csumOffset = l3Offset &+ IPv4Header.Field.headerChecksum
            let old = frame.wireReadOnly.wireU16(ttlOffset)  // TTL (high byte) and protocol
            let new = old &- 0x0100
            frame.wireSetU16(new, ttlOffset)
            frame.wireSetU16(InternetChecksum.update(frame.wireReadOnly.wireU16(csumOffset), old: old, new: new),
                             csumOffset)
        } else {
            frame.wireSetU8(timeToLive &- 1, l3Offset &+ IPv6Header.Field.hopLimit)
        }
        timeToLive &-= 1
        return timeToLive
    }

    /// Sets the IPv4 source address, fixing the IPv4 header checksum and,
    /// when the transport header is present, the TCP/UDP checksum.
    @inlinable @inline(__always)
    public mutating func rewriteIPv4Source(_ address: IPv4Address, in frame: UnsafeMutableRawBufferPointer) {
        precondition(ipVersion == 4, "IPv4 rewrite on a non-IPv4 frame")
        rewriteIPv4Address(at: l3Offset &+ IPv4Header.Field.sourceAddress, new: address, in: frame)
        sourceIPv4 = address
    }

    /// Sets the IPv4 destination address, fixing the IPv4 header checksum
    /// and, when the transport header is present, the TCP/UDP checksum.
    @inlinable @inline(__always)
    public mutating func rewriteIPv4Destination(_ address: IPv4Address, in frame: UnsafeMutableRawBufferPointer) {
        precondition(ipVersion == 4, "IPv4 rewrite on a non-IPv4 frame")
        rewriteIPv4Address(at: l3Offset &+ IPv4Header.Field.destinationAddress, new: address, in: frame)
        destinationIPv4 = address
    }

    @inlinable @inline(__always)
    func rewriteIPv4Address(at offset: Int, new: IPv4Address, in frame: UnsafeMutableRawBufferPointer) {
        let old = frame.wireReadOnly.wireIPv4(offset)
        frame.wireSetU32(new.rawValue, offset)
        let ipCsum = l3Offset &+ IPv4Header.Field.headerChecksum
        frame.wireSetU16(InternetChecksum.update(frame.wireReadOnly.wireU16(ipCsum), old: old.rawValue,
                                                 new: new.rawValue), ipCsum)
        guard hasTransportHeader else { return }
        if self.protocol == .tcp {
            let c = l4Offset &+ TCPHeader.Field.checksum
            frame.wireSetU16(InternetChecksum.update(frame.wireReadOnly.wireU16(c), old: old.rawValue,
                                                     new: new.rawValue), c)
        } else if self.protocol == .udp {
            let c = l4Offset &+ UDPHeader.Field.checksum
            frame.wireSetU16(InternetChecksum.updateUDP(frame.wireReadOnly.wireU16(c), old: old.rawValue,
                                                        new: new.rawValue), c)
        }
    }

    /// NAT in one step: sets the IPv4 destination address and the TCP/UDP
    /// destination port, with one incremental update of the transport
    /// checksum for both changes (and one of the IPv4 header checksum). The
    /// frame must have ports (`hasPorts`).
    @inlinable @inline(__always)
    public mutating func rewriteIPv4Destination(_ address: IPv4Address, port: UInt16,
                                                in frame: UnsafeMutableRawBufferPointer) {
        rewriteIPv4AddressAndPort(addressAt: l3Offset &+ IPv4Header.Field.destinationAddress, address,
                                  portAt: l4Offset &+ 2, port, in: frame)
        destinationIPv4 = address
        destinationPort = port
    }

    /// NAT in one step: sets the IPv4 source address and the TCP/UDP source
    /// port, with one incremental update of each checksum. The frame must
    /// have ports (`hasPorts`).
    @inlinable @inline(__always)
    public mutating func rewriteIPv4Source(_ address: IPv4Address, port: UInt16,
                                           in frame: UnsafeMutableRawBufferPointer) {
        rewriteIPv4AddressAndPort(addressAt: l3Offset &+ IPv4Header.Field.sourceAddress, address,
                                  portAt: l4Offset, port, in: frame)
        sourceIPv4 = address
        sourcePort = port
    }

    @inlinable @inline(__always)
    func rewriteIPv4AddressAndPort(addressAt addressOffset: Int, _ address: IPv4Address,
                                   portAt portOffset: Int, _ port: UInt16,
                                   in frame: UnsafeMutableRawBufferPointer) {
        precondition(ipVersion == 4 && hasPorts, "address+port rewrite on a frame without IPv4 and TCP/UDP")
        let b = frame.wireReadOnly
        let oldAddress = b.wireU32(addressOffset)
        let oldPort = b.wireU16(portOffset)
        frame.wireSetU32(address.rawValue, addressOffset)
        frame.wireSetU16(port, portOffset)
        let ipCsum = l3Offset &+ IPv4Header.Field.headerChecksum
        frame.wireSetU16(InternetChecksum.update(b.wireU16(ipCsum), old: oldAddress, new: address.rawValue), ipCsum)
        let isTCP = self.protocol == .tcp
        let c = l4Offset &+ (isTCP ? TCPHeader.Field.checksum : UDPHeader.Field.checksum)
        let old = b.wireU16(c)
        if !isTCP && old == 0 { return }  // UDP without checksum stays without
        // RFC 1624 eqn. 3 over the three changed 16-bit words at once.
        let acc = UInt32(~old)
            &+ UInt32(~UInt16(truncatingIfNeeded: oldAddress >> 16)) &+ UInt32(~UInt16(truncatingIfNeeded: oldAddress))
            &+ (address.rawValue >> 16) &+ (address.rawValue & 0xFFFF)
            &+ UInt32(~oldPort) &+ UInt32(port)
        let new = ~InternetChecksum.fold(acc)
        frame.wireSetU16(!isTCP && new == 0 ? 0xFFFF : new, c)
    }

    /// Sets the IPv6 source address, fixing the TCP/UDP/ICMPv6 checksum when
    /// the upper-layer header is present.
    @inlinable @inline(__always)
    public mutating func rewriteIPv6Source(_ address: IPv6Address, in frame: UnsafeMutableRawBufferPointer) {
        precondition(ipVersion == 6, "IPv6 rewrite on a non-IPv6 frame")
        rewriteIPv6Address(at: l3Offset &+ IPv6Header.Field.sourceAddress, new: address, in: frame)
        sourceIPv6 = address
    }

    /// Sets the IPv6 destination address, fixing the TCP/UDP/ICMPv6
    /// checksum when the upper-layer header is present.
    @inlinable @inline(__always)
    public mutating func rewriteIPv6Destination(_ address: IPv6Address, in frame: UnsafeMutableRawBufferPointer) {
        precondition(ipVersion == 6, "IPv6 rewrite on a non-IPv6 frame")
        rewriteIPv6Address(at: l3Offset &+ IPv6Header.Field.destinationAddress, new: address, in: frame)
        destinationIPv6 = address
    }

    @inlinable
    func rewriteIPv6Address(at offset: Int, new: IPv6Address, in frame: UnsafeMutableRawBufferPointer) {
        let old = frame.wireReadOnly.wireIPv6(offset)
        frame.wireSetIPv6(new, offset)
        guard hasTransportHeader else { return }
        if self.protocol == .tcp || self.protocol == .icmpv6 {
            let c = l4Offset &+ (self.protocol == .tcp ? TCPHeader.Field.checksum : ICMPv6Header.Field.checksum)
            frame.wireSetU16(InternetChecksum.update(frame.wireReadOnly.wireU16(c), old: old, new: new), c)
        } else if self.protocol == .udp {
            let c = l4Offset &+ UDPHeader.Field.checksum
            frame.wireSetU16(InternetChecksum.updateUDP(frame.wireReadOnly.wireU16(c), old: old, new: new), c)
        }
    }

    /// Sets the TCP/UDP source port, fixing the transport checksum. The
    /// frame must have ports (`hasPorts`).
    @inlinable @inline(__always)
    public mutating func rewriteSourcePort(_ port: UInt16, in frame: UnsafeMutableRawBufferPointer) {
        rewritePort(at: l4Offset, new: port, in: frame)
        sourcePort = port
    }

    /// Sets the TCP/UDP destination port, fixing the transport checksum. The
    /// frame must have ports (`hasPorts`).
    @inlinable @inline(__always)
    public mutating func rewriteDestinationPort(_ port: UInt16, in frame: UnsafeMutableRawBufferPointer) {
        rewritePort(at: l4Offset &+ 2, new: port, in: frame)
        destinationPort = port
    }

    @inlinable @inline(__always)
    func rewritePort(at offset: Int, new: UInt16, in frame: UnsafeMutableRawBufferPointer) {
        precondition(hasPorts, "port rewrite on a frame without a TCP/UDP header")
        let old = frame.wireReadOnly.wireU16(offset)
        frame.wireSetU16(new, offset)
        if self.protocol == .tcp {
            let c = l4Offset &+ TCPHeader.Field.checksum
            frame.wireSetU16(InternetChecksum.update(frame.wireReadOnly.wireU16(c), old: old, new: new), c)
        } else {
            let c = l4Offset &+ UDPHeader.Field.checksum
            frame.wireSetU16(InternetChecksum.updateUDP(frame.wireReadOnly.wireU16(c), old: old, new: new), c)
        }
    }

    /// Sets the ICMP/ICMPv6 echo identifier (the "port" of ICMP NAT), fixing
    /// the ICMP checksum. The frame must have an ICMP header.
    @inlinable @inline(__always)
    public mutating func rewriteICMPIdentifier(_ identifier: UInt16, in frame: UnsafeMutableRawBufferPointer) {
        precondition(hasTransportHeader && (self.protocol == .icmp || self.protocol == .icmpv6),
                     "ICMP identifier rewrite on a frame without an ICMP header")
        let idOffset = l4Offset &+ ICMPv4Header.Field.identifier
        let old = frame.wireReadOnly.wireU16(idOffset)
        frame.wireSetU16(identifier, idOffset)
        let c = l4Offset &+ ICMPv4Header.Field.checksum
        frame.wireSetU16(InternetChecksum.update(frame.wireReadOnly.wireU16(c), old: old, new: identifier), c)
        icmpIdentifier = identifier
    }
}
