import Wire

// Building, fixing and turning round frames, on plain byte arrays. The
// mutator breaks frames; these put back what an element checks first
// (checksums, lengths, addresses), so mutated frames also reach the code
// behind those checks instead of dying at the first one.

enum Frames {
    static let ethernetLength = 14

    // MARK: Building

    static func ethernet(_ destination: MACAddress, _ source: MACAddress, type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: 14)
        f.withUnsafeMutableBytes { b in
            b.wireSetMAC(destination, 0)
            b.wireSetMAC(source, 6)
            b.wireSetU16(type, 12)
        }
        return f + payload
    }

    /// An IPv4 packet (header checksum filled in); the L4 checksum is left
    /// for `fixChecksums`.
    static func ipv4(_ source: IPv4Address, _ destination: IPv4Address, proto: UInt8, _ payload: [UInt8],
                     ttl: UInt8 = 64, dontFragment: Bool = false, identification: UInt16 = 1,
                     fragmentOffset: Int = 0, moreFragments: Bool = false, options: [UInt8] = []) -> [UInt8] {
        let options = options + [UInt8](repeating: 0, count: (4 - options.count % 4) % 4)
        let headerLength = 20 + options.count
        var p = [UInt8](repeating: 0, count: headerLength) + payload
        p.withUnsafeMutableBytes { b in
            b[0] = 0x40 | UInt8(headerLength / 4)
            b.wireSetU16(UInt16(truncatingIfNeeded: b.count), 2)
            b.wireSetU16(identification, 4)
            b.wireSetU16((dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | UInt16((fragmentOffset / 8) & 0x1FFF), 6)
            b[8] = ttl
            b[9] = proto
            b.wireSetIPv4(source, 12)
            b.wireSetIPv4(destination, 16)
            for (i, o) in options.enumerated() { b[20 + i] = o }
        }
        return p
    }

    static func tcp(_ sourcePort: UInt16, _ destinationPort: UInt16, flags: UInt8, sequence: UInt32 = 1,
                    acknowledgment: UInt32 = 0, payload: [UInt8] = [], mss: Bool = false) -> [UInt8] {
        let options: [UInt8] = mss ? [2, 4, 5, 180] : []
        var s = [UInt8](repeating: 0, count: 20 + options.count) + payload
        s.withUnsafeMutableBytes { b in
            b.wireSetU16(sourcePort, 0)
            b.wireSetU16(destinationPort, 2)
            b.wireSetU32(sequence, 4)
            b.wireSetU32(acknowledgment, 8)
            b[12] = UInt8((20 + options.count) / 4) << 4
            b[13] = flags
            b.wireSetU16(64240, 14)
            for (i, o) in options.enumerated() { b[20 + i] = o }
        }
        return s
    }

    static func udp(_ sourcePort: UInt16, _ destinationPort: UInt16, payload: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 8) + payload
        d.withUnsafeMutableBytes { b in
            b.wireSetU16(sourcePort, 0)
            b.wireSetU16(destinationPort, 2)
            b.wireSetU16(UInt16(truncatingIfNeeded: 8 + payload.count), 4)
        }
        return d
    }

    static func icmp(type: UInt8, code: UInt8, rest: UInt32 = 0, _ payload: [UInt8]) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: 8) + payload
        m.withUnsafeMutableBytes { b in
            b[0] = type
            b[1] = code
            b.wireSetU32(rest, 4)
        }
        return m
    }

    static func arp(operation: UInt16, senderMAC: MACAddress, senderIP: IPv4Address, targetMAC: MACAddress,
                    targetIP: IPv4Address) -> [UInt8] {
        var a = [UInt8](repeating: 0, count: 28)
        a.withUnsafeMutableBytes { b in
            b.wireSetU16(1, 0)
            b.wireSetU16(0x0800, 2)
            b[4] = 6
            b[5] = 4
            b.wireSetU16(operation, 6)
            b.wireSetMAC(senderMAC, 8)
            b.wireSetIPv4(senderIP, 14)
            b.wireSetMAC(targetMAC, 18)
            b.wireSetIPv4(targetIP, 24)
        }
        return a
    }

    // MARK: Where the layers are

    /// Offset of the IPv4 header in an untagged or single-tagged Ethernet
    /// frame, if the frame says it carries IPv4 and has room for 20 bytes.
    @inline(__always)
    static func ipv4Offset(_ f: UnsafeRawBufferPointer) -> Int? {
        guard f.count >= 34 else { return nil }
        let type = f.wireU16(12)
        if type == 0x0800 { return 14 }
        if type == 0x8100, f.count >= 38, f.wireU16(16) == 0x0800 { return 18 }
        return nil
    }

    @inline(__always)
    static func arpOffset(_ f: UnsafeRawBufferPointer) -> Int? {
        guard f.count >= 42, f.wireU16(12) == 0x0806 else { return nil }
        return 14
    }

    /// IPv4 header length and the end of the datagram within the frame
    /// (Total Length, clipped to the frame), if the header is sane.
    @inline(__always)
    static func ipv4Extent(_ f: UnsafeRawBufferPointer, at l3: Int) -> (headerLength: Int, end: Int)? {
        guard f[l3] >> 4 == 4 else { return nil }
        let ihl = Int(f[l3] & 0x0F) * 4
        guard ihl >= 20, l3 + ihl <= f.count else { return nil }
        let total = Int(f.wireU16(l3 + 2))
        guard total >= ihl else { return nil }
        return (ihl, min(f.count, l3 + total))
    }

    // MARK: Fixing

    /// Makes the IPv4 header checksum right, and the TCP/UDP/ICMP checksum
    /// of a first fragment whose Total Length fits the frame (with
    /// `setLength`, Total Length becomes the frame's length first). Also
    /// the inner packet of IPIP. Anything it cannot make sense of it leaves.
    static func fixChecksums(_ f: UnsafeMutableRawBufferPointer, setLength: Bool = false) {
        let r = UnsafeRawBufferPointer(f)
        guard let l3 = ipv4Offset(r) else { return }
        fixIPv4(f, at: l3, setLength: setLength, depth: 0)
    }

    static func fixIPv4(_ f: UnsafeMutableRawBufferPointer, at l3: Int, setLength: Bool, depth: Int) {
        let r = UnsafeRawBufferPointer(f)
        guard l3 + 20 <= f.count, r[l3] >> 4 == 4 else { return }
        let ihl = Int(r[l3] & 0x0F) * 4
        guard ihl >= 20, l3 + ihl <= f.count else { return }
        if setLength { f.wireSetU16(UInt16(truncatingIfNeeded: f.count - l3), l3 + 2) }
        let total = Int(r.wireU16(l3 + 2))
        if total >= ihl, l3 + total <= f.count, r.wireU16(l3 + 6) & 0x1FFF == 0 {
            let l4 = l3 + ihl, end = l3 + total
            let source = r.wireIPv4(l3 + 12), destination = r.wireIPv4(l3 + 16)
            let segment = UnsafeMutableRawBufferPointer(rebasing: f[l4..<end])
            switch r[l3 + 9] {
            case 6 where segment.count >= 20:
                segment.wireSetU16(0, 16)
                let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .tcp,
                                                              length: segment.count)
                segment.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(segment), initial: pseudo), 16)
            case 17 where segment.count >= 8:
                segment.wireSetU16(UInt16(truncatingIfNeeded: segment.count), 4)
                segment.wireSetU16(0, 6)
                let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp,
                                                              length: segment.count)
                let sum = InternetChecksum.checksum(UnsafeRawBufferPointer(segment), initial: pseudo)
                segment.wireSetU16(sum == 0 ? 0xFFFF : sum, 6)
            case 1 where segment.count >= 8:
                segment.wireSetU16(0, 2)
                segment.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(segment)), 2)
            case 4 where depth == 0 && segment.count >= 20:
                fixIPv4(f, at: l4, setLength: false, depth: 1)
            default:
                break
            }
        }
        f.wireSetU16(0, l3 + 10)
        f.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: f[l3..<(l3 + ihl)])), l3 + 10)
    }

    // MARK: Turning round

    /// The answer a neighbour would send to `f`: MACs, IPv4 addresses and
    /// TCP/UDP ports swapped (an echo request becomes a reply, a TCP
    /// segment acknowledges it); an ARP request becomes the reply of
    /// `replyMAC` for the address asked. Checksums are left for `fixChecksums`.
    static func turnRound(_ f: UnsafeMutableRawBufferPointer, replyMAC: MACAddress) {
        let r = UnsafeRawBufferPointer(f)
        guard f.count >= 14 else { return }
        let dst = r.wireMAC(0), src = r.wireMAC(6)
        if let a = arpOffset(r) {
            let senderMAC = r.wireMAC(a + 8), senderIP = r.wireIPv4(a + 14), targetIP = r.wireIPv4(a + 24)
            f.wireSetMAC(senderMAC, 0)
            f.wireSetMAC(replyMAC, 6)
            f.wireSetU16(2, a + 6)
            f.wireSetMAC(replyMAC, a + 8)
            f.wireSetIPv4(targetIP, a + 14)
            f.wireSetMAC(senderMAC, a + 18)
            f.wireSetIPv4(senderIP, a + 24)
            return
        }
        f.wireSetMAC(src, 0)
        f.wireSetMAC(dst.isMulticast ? replyMAC : dst, 6)
        guard let l3 = ipv4Offset(r), let (ihl, end) = ipv4Extent(r, at: l3) else { return }
        // An IPIP packet is answered by the inner packet's destination.
        var ip = l3, headerLength = ihl
        if r[l3 + 9] == 4, l3 + ihl + 20 <= end, let (innerIHL, _) = ipv4Extent(r, at: l3 + ihl) {
            ip = l3 + ihl
            headerLength = innerIHL
        }
        let s = r.wireIPv4(ip + 12), d = r.wireIPv4(ip + 16)
        f.wireSetIPv4(d, ip + 12)
        f.wireSetIPv4(s, ip + 16)
        f[ip + 8] = 64
        let l4 = ip + headerLength
        switch r[ip + 9] {
        case 6 where l4 + 20 <= end:
            let sp = r.wireU16(l4), dp = r.wireU16(l4 + 2), seq = r.wireU32(l4 + 4)
            let flags = r[l4 + 13]
            f.wireSetU16(dp, l4)
            f.wireSetU16(sp, l4 + 2)
            f.wireSetU32(r.wireU32(l4 + 8), l4 + 4)
            f.wireSetU32(seq &+ (flags & 0x03 != 0 ? 1 : 0), l4 + 8)
            f[l4 + 13] = flags & 0x02 != 0 ? 0x12 : 0x10 | (flags & 0x01)
        case 17 where l4 + 8 <= end:
            let sp = r.wireU16(l4), dp = r.wireU16(l4 + 2)
            f.wireSetU16(dp, l4)
            f.wireSetU16(sp, l4 + 2)
        case 1 where l4 + 8 <= end:
            if r[l4] == 8 { f[l4] = 0 }
        default:
            break
        }
        if ip != l3 {
            // Drop the outer header: the answer is the bare inner packet.
            let inner = UnsafeRawBufferPointer(rebasing: r[ip..<end])
            let length = inner.count
            UnsafeMutableRawBufferPointer(rebasing: f[l3..<(l3 + length)]).copyMemory(from: inner)
        }
    }

    /// Length of the frame after `turnRound` (shorter when an IPIP packet
    /// was unwrapped).
    static func lengthAfterTurnRound(_ f: UnsafeRawBufferPointer) -> Int {
        guard let l3 = ipv4Offset(f), let (ihl, end) = ipv4Extent(f, at: l3),
              f[l3 + 9] == 4, l3 + ihl + 20 <= end, ipv4Extent(f, at: l3 + ihl) != nil else { return f.count }
        return f.count - ihl
    }
}
