// Valid inputs to start from: frames of every kind Wire parses, built with
// its Reprs, the bare layer-3/layer-4 messages inside them (so each header
// parser also sees its own format at offset 0), address text, and a pcapng
// holding some of the frames.

import Wire

enum Seeds {
    static func all() -> [[UInt8]] {
        var out: [[UInt8]] = []
        let mac1 = MACAddress(2, 0, 0, 0, 0, 1), mac2 = MACAddress(2, 0, 0, 0, 0, 2)
        let a = IPv4Address(10, 0, 0, 1), b = IPv4Address(10, 0, 0, 100)
        let a6 = IPv6Address("2001:db8::1")!, b6 = IPv6Address("fe80::2")!

        func frame(_ type: EtherType, _ l3: [UInt8], vlan: Bool = false) -> [UInt8] {
            let e = EthernetRepr(destination: mac2, source: mac1, vlanTag: vlan ? VLANTag(identifier: 100, priority: 3) : nil,
                                 etherType: type)
            var f = [UInt8](repeating: 0, count: e.headerLength) + l3
            f.withUnsafeMutableBytes { e.emit(into: EthernetMutableHeader(unchecked: $0)) }
            return f
        }
        func ipv4(_ proto: IPProtocol, _ l4: [UInt8], options: [UInt8] = [], fragment: Int = 0, more: Bool = false) -> [UInt8] {
            let r = IPv4Repr(sourceAddress: a, destinationAddress: b, protocol: proto, payloadLength: l4.count,
                             timeToLive: 64, identification: 7, moreFragments: more, fragmentOffset: fragment, options: options)
            var p = [UInt8](repeating: 0, count: r.headerLength) + l4
            p.withUnsafeMutableBytes { r.emit(into: IPv4MutableHeader(unchecked: $0)) }
            return p
        }
        func ipv6(_ next: IPProtocol, _ payload: [UInt8]) -> [UInt8] {
            let r = IPv6Repr(sourceAddress: a6, destinationAddress: b6, nextHeader: next, payloadLength: payload.count)
            var p = [UInt8](repeating: 0, count: 40) + payload
            p.withUnsafeMutableBytes { r.emit(into: IPv6MutableHeader(unchecked: $0)) }
            return p
        }
        func tcp(_ pseudo: IPPseudoHeader, options: [UInt8] = [], payload: [UInt8] = [1, 2, 3]) -> [UInt8] {
            let r = TCPRepr(sourcePort: 40000, destinationPort: 80, sequenceNumber: 1, acknowledgmentNumber: 2,
                            flags: [.syn, .ack], options: options, payloadLength: payload.count)
            var s = [UInt8](repeating: 0, count: r.headerLength) + payload
            s.withUnsafeMutableBytes { r.emit(into: TCPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
            return s
        }
        func udp(_ pseudo: IPPseudoHeader?, payload: [UInt8] = [9, 8, 7, 6]) -> [UInt8] {
            let r = UDPRepr(sourcePort: 5353, destinationPort: 53, payloadLength: payload.count)
            var d = [UInt8](repeating: 0, count: 8) + payload
            d.withUnsafeMutableBytes { r.emit(into: UDPMutableHeader(unchecked: $0), pseudoHeader: pseudo) }
            return d
        }
        func icmp(_ m: ICMPv4Message, _ payload: [UInt8]) -> [UInt8] {
            let r = ICMPv4Repr(message: m, payloadLength: payload.count)
            var d = [UInt8](repeating: 0, count: 8) + payload
            d.withUnsafeMutableBytes { r.emit(into: ICMPv4MutableHeader(unchecked: $0)) }
            return d
        }
        func icmpv6(_ m: ICMPv6Message, _ payload: [UInt8] = []) -> [UInt8] {
            let r = ICMPv6Repr(message: m, payloadLength: payload.count)
            var d = [UInt8](repeating: 0, count: r.headerLength) + payload
            d.withUnsafeMutableBytes { r.emit(into: ICMPv6MutableHeader(unchecked: $0), source: a6, destination: b6) }
            return d
        }

        let p4 = IPPseudoHeader.ipv4(source: a, destination: b)
        let p6 = IPPseudoHeader.ipv6(source: a6, destination: b6)
        let mss: [UInt8] = [2, 4, 5, 180, 4, 2, 1, 1]
        let segment = tcp(p4, options: mss)
        let datagram = udp(p4)
        let echo = icmp(.echoRequest(identifier: 0x1234, sequenceNumber: 1), [0x61, 0x62, 0x63, 0x64])
        let tcpPacket = ipv4(.tcp, segment)
        let udpPacket = ipv4(.udp, datagram)
        let quote = Array(tcpPacket.prefix(28))

        out.append(frame(.ipv4, tcpPacket))
        out.append(frame(.ipv4, udpPacket, vlan: true))
        out.append(frame(.ipv4, ipv4(.udp, udp(nil))))
        out.append(frame(.ipv4, ipv4(.icmp, echo)))
        out.append(frame(.ipv4, ipv4(.icmp, icmp(.destinationUnreachable(code: 4, nextHopMTU: 1400), quote))))
        out.append(frame(.ipv4, ipv4(.icmp, icmp(.timeExceeded(code: 0), quote))))
        out.append(frame(.ipv4, ipv4(.tcp, segment, options: [0x94, 0x04, 0, 0, 1, 1, 1, 0])))
        let whole = udp(p4, payload: [UInt8](repeating: 0x5A, count: 40))
        out.append(frame(.ipv4, ipv4(.udp, Array(whole.prefix(24)), more: true)))
        out.append(frame(.ipv4, ipv4(.udp, Array(whole.suffix(24)), fragment: 24)))
        out.append(frame(.ipv4, ipv4(.ipip, udpPacket)))
        out.append(frame(.ipv4, tcpPacket) + [0, 0, 0, 0, 0, 0])  // Ethernet padding
        let arp = ARPRepr(operation: .request, senderHardwareAddress: mac1, senderProtocolAddress: a,
                          targetHardwareAddress: .zero, targetProtocolAddress: b)
        var arpBytes = [UInt8](repeating: 0, count: 28)
        arpBytes.withUnsafeMutableBytes { arp.emit(into: ARPMutableHeader(unchecked: $0)) }
        out.append(frame(.arp, arpBytes))
        out.append(frame(.arp, arpBytes, vlan: true))

        let tcp6 = tcp(p6)
        out.append(frame(.ipv6, ipv6(.tcp, tcp6)))
        out.append(frame(.ipv6, ipv6(.udp, udp(p6)), vlan: true))
        out.append(frame(.ipv6, ipv6(.icmpv6, icmpv6(.echoRequest(identifier: 1, sequenceNumber: 2), [1, 2, 3, 4]))))
        let ns = icmpv6(.neighborSolicitation(targetAddress: b6, sourceLinkLayerAddress: mac1))
        let na = icmpv6(.neighborAdvertisement(flags: [.solicited, .override], targetAddress: b6, targetLinkLayerAddress: mac2))
        out.append(frame(.ipv6, ipv6(.icmpv6, ns)))
        out.append(frame(.ipv6, ipv6(.icmpv6, na)))
        out.append(frame(.ipv6, ipv6(.icmpv6, icmpv6(.packetTooBig(mtu: 1280), Array(ipv6(.udp, udp(p6)).prefix(48))))))
        // Hop-by-hop (PadN) → destination options → fragment (atomic) → TCP.
        let chain: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0] + [44, 0, 1, 4, 0, 0, 0, 0] + [6, 0, 0, 0, 0, 0, 0, 42] + tcp6
        out.append(frame(.ipv6, ipv6(.hopByHop, chain)))
        out.append(frame(.ipv6, ipv6(.fragment, [17, 0, 0x01, 0x01, 0, 0, 0, 9] + [UInt8](repeating: 7, count: 16))))

        // Bare layer-3 and layer-4 messages.
        out += [tcpPacket, udpPacket, ipv4(.ipip, tcpPacket), ipv6(.tcp, tcp6), segment, datagram, echo, ns, na, arpBytes]
        // Text.
        out += ["10.0.0.1", "10.0.0.0/24", "2001:db8::1", "::ffff:10.1.2.3", "fe80::1:2:3:4", "02:00:5e:00:53:01"]
            .map { Array($0.utf8) }
        // A pcapng with a few of the frames on two interfaces.
        var w = PcapNGWriter(application: "wire-fuzz", comment: "seed")
        let i0 = w.addInterface(name: "gw:eth0", description: "seed")
        let i1 = w.addInterface(name: "gw:eth1", snapLength: 64)
        w.writePacket(out[0], interface: i0, timestamp: 1_700_000_000_000_000_000, comment: "tcp")
        w.writePacket(out[12], interface: i1, timestamp: 1_700_000_000_000_001_000)
        out.append(w.bytes)
        // IPVS sync v1: a DR entry, then a FULLNAT one with wirelab's extension option.
        var sync = [UInt8](repeating: 0, count: 8 + 36 + 44)
        sync.withUnsafeMutableBytes { m in
            var w = IPVSSyncWriter(into: m, syncID: 17)
            _ = w.append(IPVSSyncEntry(protocol: .tcp, flags: IPVSSync.Flag.directRoute, state: 1, clientAddress: a,
                                       clientPort: 40000, virtualAddress: b, virtualPort: 80, destinationAddress: a,
                                       destinationPort: 80, timeout: 900))
            _ = w.append(IPVSSyncEntry(protocol: .tcp, flags: IPVSSync.Flag.fullnat, state: 3, clientAddress: a,
                                       clientPort: 40001, virtualAddress: b, virtualPort: 80, destinationAddress: a,
                                       destinationPort: 8080, timeout: 60, fullnatLocal: .init(address: b, port: 1024)))
        }
        out.append(sync)
        return out
    }
}
