import FuzzSupport
import Wire

/// Makes the next input frame for one target: a corpus frame aimed at the
/// element and perhaps broken, an answer to something the element sent, a
/// recent input again with a field changed, a frame built from scratch, an
/// ICMP error quoting something the element sent, or random bytes.
/// Everything comes from one random stream, so the same seed gives the same
/// frames in the same order.
struct Generator {
    let book: AddressBook
    let seeds: [[UInt8]]
    let portCount: Int
    let maxFrame: [Int]
    let mtu: [Int?]

    /// SYN, SYN-ACK, ACK, PSH-ACK, FIN-ACK, RST, RST-ACK, FIN, none, all, SYN-FIN.
    static let tcpFlags: [UInt8] = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x00, 0xFF, 0x03]

    /// Writes the next input into `work`; returns the port it arrives on.
    func next(into work: inout [UInt8], _ rng: inout Xoshiro, outputs: FrameRing, inputs: FrameRing) -> Int {
        var port = rng.below(portCount)
        var fix = false
        switch rng.below(100) {
        case 0..<35:
            set(&work, seeds[rng.below(seeds.count)])
            if rng.percent(80) { aim(&work, port: port, &rng) }
            if rng.percent(50) { mutate(&work, &rng, times: 1 + rng.below(4)) }
            fix = rng.percent(70)
        case 35..<60 where outputs.count > 0:
            let (p, bytes) = outputs.recent(rng.below(outputs.count))
            set(&work, bytes)
            port = p
            work.withUnsafeMutableBytes { Frames.turnRound($0, replyMAC: rng.pick(book.neighbourMACs)) }
            let length = work.withUnsafeBytes { Frames.lengthAfterTurnRound($0) }
            if length < work.count { work.removeLast(work.count - length) }
            if rng.percent(30) { request(&work) }
            if rng.percent(20) { tweak(&work, &rng) }
            if rng.percent(10) { mutate(&work, &rng, times: 1) }
            fix = rng.percent(90)
        case 60..<70 where inputs.count > 0:
            let (p, bytes) = inputs.recent(rng.below(inputs.count))
            set(&work, bytes)
            port = p
            tweak(&work, &rng)
            fix = rng.percent(90)
        case 70..<85:
            build(&work, port: port, &rng)
            fix = rng.percent(95)
        case 85..<91 where outputs.count > 0:
            icmpError(&work, port: &port, &rng, outputs: outputs)
            fix = rng.percent(95)
        default:
            work.removeAll(keepingCapacity: true)
            for _ in 0..<rng.below(130) { work.append(rng.byte()) }
            if work.count >= 14 && rng.percent(50) {
                work.withUnsafeMutableBytes { f in
                    f.wireSetMAC(book.portMACs.isEmpty ? rng.pick(book.neighbourMACs) : book.portMACs[port], 0)
                    f.wireSetU16(rng.pick([0x0800, 0x0806, 0x86DD, 0x8100] as [UInt16]), 12)
                }
            }
        }
        if rng.oneIn(25) {
            // Mostly no larger than the port's MTU lets in; now and then larger.
            let limit = rng.oneIn(10) ? maxFrame[port] : min(maxFrame[port], (mtu[port] ?? maxFrame[port]) + 14)
            grow(&work, to: 400 + rng.below(max(1, limit - 400)), &rng)
            fix = true
        }
        if work.count > maxFrame[port] { work.removeLast(work.count - maxFrame[port]) }
        if fix { work.withUnsafeMutableBytes { Frames.fixChecksums($0) } }
        return port
    }

    @inline(__always) func set(_ work: inout [UInt8], _ bytes: some Collection<UInt8>) {
        work.removeAll(keepingCapacity: true)
        work.append(contentsOf: bytes)
    }

    /// Points the frame at the element: its MAC, its addresses and ports,
    /// now and then an odd TTL, DF or TCP flags.
    func aim(_ work: inout [UInt8], port: Int, _ rng: inout Xoshiro) {
        work.withUnsafeMutableBytes { f in
            guard f.count >= 14 else { return }
            if book.portMACs.isEmpty {
                if rng.percent(80) { f.wireSetMAC(rng.pick(book.neighbourMACs), 0) }
            } else {
                switch rng.below(10) {
                case 0..<7: f.wireSetMAC(book.portMACs[port], 0)
                case 7: f.wireSetMAC(.broadcast, 0)
                case 8: f.wireSetMAC(rng.pick(book.neighbourMACs), 0)
                default: break
                }
            }
            if rng.percent(60) { f.wireSetMAC(rng.pick(book.neighbourMACs), 6) }
            let r = UnsafeRawBufferPointer(f)
            if let a = Frames.arpOffset(r) {
                if rng.percent(50) { f.wireSetU16(rng.pick([1, 2] as [UInt16]), a + 6) }
                if rng.percent(50) { f.wireSetMAC(rng.pick(book.neighbourMACs), a + 8) }
                if rng.percent(70) { f.wireSetIPv4(rng.pick(book.addresses), a + 14) }
                if rng.percent(70) { f.wireSetIPv4(rng.pick(book.addresses), a + 24) }
                return
            }
            guard let l3 = Frames.ipv4Offset(r) else { return }
            if rng.percent(60) { f.wireSetIPv4(rng.pick(book.addresses), l3 + 12) }
            if rng.percent(75) { f.wireSetIPv4(rng.pick(book.addresses), l3 + 16) }
            if rng.percent(10) { f[l3 + 8] = rng.pick([0, 1, 2, 64, 255]) }
            if rng.percent(5) { f[l3 + 6] ^= 0x40 }
            guard let (ihl, end) = Frames.ipv4Extent(r, at: l3) else { return }
            let l4 = l3 + ihl, proto = r[l3 + 9]
            if proto == 6 || proto == 17, l4 + 4 <= end {
                if rng.percent(70) { f.wireSetU16(rng.pick(book.ports), l4 + 2) }
                if rng.percent(40) { f.wireSetU16(rng.pick(book.ports), l4) }
            }
            if proto == 6, l4 + 14 <= end, rng.percent(40) { f[l4 + 13] = rng.pick(Self.tcpFlags) }
        }
    }

    /// One field of a recent frame changed, as the next packet of a flow
    /// would change it (or would not).
    func tweak(_ work: inout [UInt8], _ rng: inout Xoshiro) {
        work.withUnsafeMutableBytes { f in
            let r = UnsafeRawBufferPointer(f)
            guard let l3 = Frames.ipv4Offset(r), let (ihl, end) = Frames.ipv4Extent(r, at: l3) else {
                if f.count > 0 { f[rng.below(f.count)] = rng.byte() }
                return
            }
            let l4 = l3 + ihl
            switch rng.below(6) {
            case 0 where r[l3 + 9] == 6 && l4 + 14 <= end: f[l4 + 13] = rng.pick(Self.tcpFlags)
            case 1 where r[l3 + 9] == 6 && l4 + 12 <= end:
                f.wireSetU32(UInt32(truncatingIfNeeded: rng.next()), l4 + rng.pick([4, 8]))
            case 2 where l4 + 4 <= end: f.wireSetU16(r.wireU16(l4) &+ UInt16(truncatingIfNeeded: rng.below(3)) &- 1, l4)
            case 3: f[l3 + 8] = rng.pick([0, 1, 2, 64])
            case 4: f.wireSetIPv4(rng.pick(book.addresses), l3 + rng.pick([12, 16]))
            default: f.wireSetU16(UInt16(truncatingIfNeeded: rng.below(4)) << 13 | UInt16(rng.below(3)), l3 + 6)
            }
        }
    }

    /// A frame from scratch: TCP, UDP, ICMP, ARP or IPIP with fields from the book.
    func build(_ work: inout [UInt8], port: Int, _ rng: inout Xoshiro) {
        let destinationMAC = book.portMACs.isEmpty ? rng.pick(book.neighbourMACs)
            : rng.percent(90) ? book.portMACs[port] : MACAddress.broadcast
        let sourceMAC = rng.pick(book.neighbourMACs)
        let s = rng.pick(book.addresses), d = rng.pick(book.addresses)
        let ttl: UInt8 = rng.percent(90) ? 64 : rng.pick([0, 1, 2])
        let df = rng.percent(50)
        func payload() -> [UInt8] { (0..<rng.pick([0, 0, 4, 18, 100])).map { _ in rng.byte() } }
        let l3: [UInt8]
        var type: UInt16 = 0x0800
        switch rng.below(7) {
        case 0, 1:
            let segment = Frames.tcp(rng.pick(book.ports), rng.pick(book.ports), flags: rng.pick(Self.tcpFlags),
                                     sequence: UInt32(truncatingIfNeeded: rng.next()),
                                     acknowledgment: UInt32(truncatingIfNeeded: rng.next()), payload: payload(), mss: rng.oneIn(2))
            l3 = Frames.ipv4(s, d, proto: 6, segment, ttl: ttl, dontFragment: df, identification: rng.u16())
        case 2:
            l3 = Frames.ipv4(s, d, proto: 17, Frames.udp(rng.pick(book.ports), rng.pick(book.ports), payload: payload()),
                             ttl: ttl, dontFragment: df, identification: rng.u16())
        case 3:
            let t: UInt8 = rng.pick([8, 8, 0, 3, 11, 13, 5])
            l3 = Frames.ipv4(s, d, proto: 1, Frames.icmp(type: t, code: UInt8(rng.below(5)), rest: UInt32(truncatingIfNeeded: rng.next()),
                                                         payload()), ttl: ttl, dontFragment: df)
        case 4:
            type = 0x0806
            l3 = Frames.arp(operation: rng.pick([1, 1, 2, 3]), senderMAC: rng.percent(90) ? sourceMAC : .zero,
                            senderIP: rng.pick(book.addresses), targetMAC: rng.oneIn(2) ? .zero : rng.pick(book.neighbourMACs),
                            targetIP: rng.pick(book.addresses))
        case 5:
            let inner = Frames.ipv4(rng.pick(book.addresses), rng.pick(book.addresses), proto: 6,
                                    Frames.tcp(rng.pick(book.ports), rng.pick(book.ports), flags: rng.pick(Self.tcpFlags)))
            l3 = Frames.ipv4(s, d, proto: 4, inner, ttl: ttl)
        default:
            // A fragment, first or not.
            let offset = rng.oneIn(2) ? 0 : 8 * (1 + rng.below(100))
            l3 = Frames.ipv4(s, d, proto: rng.pick([6, 17, 1]), payload() + [UInt8](repeating: 9, count: 16), ttl: ttl,
                             identification: rng.u16(), fragmentOffset: offset, moreFragments: rng.oneIn(2))
        }
        set(&work, Frames.ethernet(destinationMAC, sourceMAC, type: type, l3))
    }

    /// An ICMP error (unreachable, time exceeded, parameter problem) about a
    /// frame the element sent, or about the answer to it, arriving on the
    /// port that frame left by.
    func icmpError(_ work: inout [UInt8], port: inout Int, _ rng: inout Xoshiro, outputs: FrameRing) {
        let (p, bytes) = outputs.recent(rng.below(outputs.count))
        port = p
        var quoted = Array(bytes)
        if rng.oneIn(2) {
            quoted.withUnsafeMutableBytes { Frames.turnRound($0, replyMAC: rng.pick(book.neighbourMACs)) }
            quoted.withUnsafeMutableBytes { Frames.fixChecksums($0) }
        }
        guard let l3 = quoted.withUnsafeBytes({ Frames.ipv4Offset($0) }) else {
            build(&work, port: port, &rng)
            return
        }
        let quote = Array(quoted[l3..<min(quoted.count, l3 + rng.pick([28, 48, 68, 548]))])
        let quotedSource = quoted.withUnsafeBytes { $0.wireIPv4(l3 + 12) }
        let type: UInt8 = rng.pick([3, 3, 11, 12])
        let code: UInt8 = type == 3 ? rng.pick([0, 1, 3, 4]) : 0
        let rest: UInt32 = type == 3 && code == 4 ? UInt32(rng.pick([68, 576, 1300, 1400])) : 0
        let destination = rng.percent(80) ? quotedSource : rng.pick(book.addresses)
        let packet = Frames.ipv4(rng.pick(book.addresses), destination, proto: 1,
                                 Frames.icmp(type: type, code: code, rest: rest, quote), ttl: rng.percent(90) ? 64 : 1)
        let destinationMAC = book.portMACs.isEmpty ? rng.pick(book.neighbourMACs) : book.portMACs[p]
        set(&work, Frames.ethernet(destinationMAC, rng.pick(book.neighbourMACs), type: 0x0800, packet))
    }

    /// A bare ACK becomes an ACK carrying an HTTP request (PSH): the next
    /// step of a handshake the element answered.
    func request(_ work: inout [UInt8]) {
        let isAck = work.withUnsafeBytes { f -> Bool in
            guard let l3 = Frames.ipv4Offset(f), let (ihl, end) = Frames.ipv4Extent(f, at: l3), f[l3 + 9] == 6,
                  l3 + ihl + 20 == end, end == f.count else { return false }
            return f[l3 + ihl + 13] == 0x10
        }
        guard isAck else { return }
        work.append(contentsOf: Array("GET / HTTP/1.1\r\nHost: fuzz\r\n\r\n".utf8))
        work.withUnsafeMutableBytes { f in
            let l3 = Frames.ipv4Offset(UnsafeRawBufferPointer(f))!
            f[l3 + Int(f[l3] & 0x0F) * 4 + 13] = 0x18
            Frames.fixChecksums(f, setLength: true)
        }
    }

    /// Pads the frame to `size` bytes (Total Length follows when fixed).
    func grow(_ work: inout [UInt8], to size: Int, _ rng: inout Xoshiro) {
        guard size > work.count else { return }
        let fill = rng.byte()
        work.append(contentsOf: repeatElement(fill, count: size - work.count))
        work.withUnsafeMutableBytes { Frames.fixChecksums($0, setLength: true) }
    }

    /// Byte-level mutations (`ByteMutations`, as wire-fuzz's), the last
    /// kind rewriting a byte past the Ethernet header.
    func mutate(_ input: inout [UInt8], _ rng: inout Xoshiro, times: Int) {
        ByteMutations.mutate(&input, &rng, times: times, seeds: seeds) { input, rng in
            let n = input.count
            if n > 14 { input[14 + rng.below(n - 14)] = rng.byte() }
        }
    }
}
