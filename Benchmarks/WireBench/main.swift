// wire-bench: the data-plane hot path of the Wire layer, per packet, beside
// a hand-written raw-pointer loop doing the same work, measured in the same
// run.
//
//   swift run -c release wire-bench [passes]
//
// Per packet, over a batch of 64 frames laid out like an AF_XDP UMEM (one
// frame every 2048 bytes; 74-byte Ethernet + IPv4 + TCP SYN with options):
//   FrameParser().parse (Ethernet, IPv4 incl. header checksum, TCP)
//   NAT: destination address and port, one incremental update of the IPv4
//        header checksum and one of the TCP checksum (RFC 1624)
//   TTL − 1, incremental IPv4 header checksum update
//   source and destination MAC rewrite
// The raw loop makes the same checks (lengths, version, IHL, Total Length,
// header checksum, fragment offset, protocol, data offset, TTL) and the
// same rewrites with plain loads and stores in native byte order.
//
// A pass is 250 rounds over the batch (TTL 255 → 5, a new NAT destination
// every round), timed with CLOCK_MONOTONIC; frames are reset from the
// template between passes, untimed. Wire and raw passes alternate; the
// figure is the fastest pass (the machine is shared), the median beside it.
// Both loops must leave byte-identical frames with valid checksums, or the
// benchmark exits 1.
//
// mallocs/packet: every malloc/calloc/realloc/memalign/posix_memalign/
// aligned_alloc of the process is counted by the CMallocCounter target,
// which interposes them (see its malloc_counter.c); the count over all
// timed passes is divided by the packets they handled. A self-test first
// checks that an Array allocation is seen.

import CMallocCounter
import Glibc
import Wire

@inline(never) func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

func format(_ x: Double, _ digits: Int = 1) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    return String((x * p).rounded() / p)
}

let frameCount = 64
let frameStride = 2048
let roundsPerPass = 250
let passes = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 1000

/// The router's own MAC (new source) and next hop i & 3 (new destination).
let routerMAC: UInt64 = 0x0200_0000_00FE
@inline(__always) func nextHopMAC(_ i: Int) -> UInt64 { 0x0200_0000_0100 | UInt64(i & 3) }
@inline(__always) func natAddress(_ round: Int) -> UInt32 { 0x0A00_0000 | UInt32(truncatingIfNeeded: round) }
@inline(__always) func natPort(_ round: Int) -> UInt16 { UInt16(truncatingIfNeeded: 8000 &+ round) }

// MARK: the frame

/// client 123.123.123.123:40000 → VIP 110.242.68.3:80, SYN with MSS, SACK
/// permitted, timestamps, NOP, window scale (as Linux sends it); TTL 255.
func makeTemplate() -> [UInt8] {
    let options: [UInt8] = [2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 1, 0xE2, 0x40, 0, 0, 0, 0, 1, 3, 3, 7]
    let tcp = TCPRepr(sourcePort: 40000, destinationPort: 80, sequenceNumber: 0x1234_5678, flags: .syn,
                      window: 64240, options: options)
    let ip = IPv4Repr(sourceAddress: IPv4Address(123, 123, 123, 123), destinationAddress: IPv4Address(110, 242, 68, 3),
                      protocol: .tcp, payloadLength: tcp.bufferLength, timeToLive: 255, identification: 0x4D2,
                      dontFragment: true)
    let eth = EthernetRepr(destination: MACAddress(0x02, 0, 0, 0, 0, 0x01), source: MACAddress(0x02, 0, 0, 0, 0, 0x02),
                           etherType: .ipv4)
    var frame = [UInt8](repeating: 0, count: 14 + ip.bufferLength)
    frame.withUnsafeMutableBytes { b in
        let l3 = UnsafeMutableRawBufferPointer(rebasing: b[14...])
        let l4 = UnsafeMutableRawBufferPointer(rebasing: l3[20...])
        tcp.emit(into: TCPMutableHeader(unchecked: l4), pseudoHeader: .ipv4(source: ip.sourceAddress,
                                                                             destination: ip.destinationAddress))
        ip.emit(into: IPv4MutableHeader(unchecked: l3))
        eth.emit(into: EthernetMutableHeader(unchecked: b))
    }
    return frame
}

let template = makeTemplate()
let frameLength = template.count

func resetFrames(_ umem: UnsafeMutableRawPointer) {
    template.withUnsafeBytes { t in
        for i in 0..<frameCount { (umem + i * frameStride).copyMemory(from: t.baseAddress!, byteCount: t.count) }
    }
}

// MARK: the two loops

/// Wire: FrameParser + the ParsedFrame rewrite helpers.
@inline(never)
func wirePass(_ umem: UnsafeMutableRawPointer, rounds: Int) -> UInt64 {
    let parser = FrameParser()
    var acc: UInt64 = 0
    for round in 0..<rounds {
        let address = IPv4Address(rawValue: natAddress(round))
        let port = natPort(round)
        for i in 0..<frameCount {
            let frame = UnsafeMutableRawBufferPointer(start: umem + i &* frameStride, count: frameLength)
            guard var p = try? parser.parse(UnsafeRawBufferPointer(frame)), p.isTCP, p.timeToLive > 1 else {
                acc &+= 1  // would be dropped / answered with ICMP
                continue
            }
            p.rewriteIPv4Destination(address, port: port, in: frame)
            p.decrementTimeToLive(in: frame)
            p.rewriteSourceMAC(MACAddress(rawValue: routerMAC), in: frame)
            p.rewriteDestinationMAC(MACAddress(rawValue: nextHopMAC(i)), in: frame)
            acc &+= UInt64(p.sourcePort)
        }
    }
    return acc
}

/// Wire, parse only (for the breakdown).
@inline(never)
func wireParsePass(_ umem: UnsafeMutableRawPointer, rounds: Int) -> UInt64 {
    let parser = FrameParser()
    var acc: UInt64 = 0
    for _ in 0..<rounds {
        for i in 0..<frameCount {
            let frame = UnsafeRawBufferPointer(start: umem + i &* frameStride, count: frameLength)
            guard let p = try? parser.parse(frame), p.isTCP else {
                acc &+= 1
                continue
            }
            acc &+= UInt64(p.destinationPort) &+ UInt64(p.destinationIPv4.rawValue) &+ UInt64(p.timeToLive)
        }
    }
    return acc
}

@inline(__always) func load16(_ p: UnsafeMutableRawPointer, _ offset: Int) -> UInt32 {
    UInt32(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

/// One's-complement fold of a 32-bit sum to 16 bits.
@inline(__always) func fold(_ x: UInt32) -> UInt32 {
    var s = (x & 0xFFFF) &+ (x >> 16)
    s = (s & 0xFFFF) &+ (s >> 16)
    return s
}

/// The same work by hand: native-order loads and stores on the raw
/// pointer, checksums in native byte order (RFC 1071 §2(B): the
/// one's-complement sum does not care), no views, no ParsedFrame.
@inline(never)
func rawPass(_ umem: UnsafeMutableRawPointer, rounds: Int) -> UInt64 {
    var acc: UInt64 = 0
    let n = frameLength
    let srcHigh = UInt32(truncatingIfNeeded: routerMAC >> 16).bigEndian
    let srcLow = UInt16(truncatingIfNeeded: routerMAC).bigEndian
    for round in 0..<rounds {
        let newAddress = natAddress(round).bigEndian  // as stored
        let newPort = natPort(round).bigEndian
        for i in 0..<frameCount {
            let f = umem + i &* frameStride
            // Ethernet (one 802.1Q tag allowed, as FrameParser).
            var l3 = 14
            var type = UInt16(bigEndian: f.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            if type == 0x8100 {
                if n < 18 { acc &+= 1; continue }
                type = UInt16(bigEndian: f.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
                if type == 0x8100 || type == 0x88A8 { acc &+= 1; continue }
                l3 = 18
            }
            guard type == 0x0800, n &- l3 >= 20 else { acc &+= 1; continue }
            let ip = f + l3
            let vihl = ip.load(as: UInt8.self)
            let ihl = Int(vihl & 0x0F) &<< 2
            let total = Int(UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            guard vihl >> 4 == 4, ihl >= 20, l3 &+ ihl <= n, total >= ihl, l3 &+ total <= n else {
                acc &+= 1
                continue
            }
            // Header checksum: the header must sum to 0xFFFF.
            var sum: UInt64 = 0
            var o = 0
            while o < ihl {
                sum &+= UInt64(ip.loadUnaligned(fromByteOffset: o, as: UInt32.self))
                o &+= 4
            }
            sum = (sum & 0xFFFF_FFFF) &+ (sum >> 32)
            guard fold(UInt32(truncatingIfNeeded: sum) &+ UInt32(truncatingIfNeeded: sum >> 32)) == 0xFFFF else {
                acc &+= 1
                continue
            }
            let fragment = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x1FFF
            let ttl = ip.load(fromByteOffset: 8, as: UInt8.self)
            let proto = ip.load(fromByteOffset: 9, as: UInt8.self)
            let tcp = ip + ihl
            guard fragment == 0, proto == 6, total &- ihl >= 20 else { acc &+= 1; continue }
            let dataOffset = Int(tcp.load(fromByteOffset: 12, as: UInt8.self) >> 4) &<< 2
            guard dataOffset >= 20, dataOffset <= total &- ihl, ttl > 1 else { acc &+= 1; continue }

            // NAT: destination address and port.
            let oldAddress = ip.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
            let oldPort = UInt32(tcp.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            ip.storeBytes(of: newAddress, toByteOffset: 16, as: UInt32.self)
            tcp.storeBytes(of: newPort, toByteOffset: 2, as: UInt16.self)
            let addressDelta = (~oldAddress & 0xFFFF) &+ (~oldAddress >> 16) &+ (newAddress & 0xFFFF) &+ (newAddress >> 16)
            // TTL − 1: the TTL is the first byte of the native-order word at 8.
            let oldTTLWord = load16(ip, 8)
            let newTTLWord = oldTTLWord &- (1 << (UInt16(1).bigEndian == 1 ? 8 : 0))
            ip.storeBytes(of: UInt16(truncatingIfNeeded: newTTLWord), toByteOffset: 8, as: UInt16.self)
            let ipSum = (~load16(ip, 10) & 0xFFFF) &+ addressDelta &+ (~oldTTLWord & 0xFFFF) &+ newTTLWord
            ip.storeBytes(of: UInt16(truncatingIfNeeded: ~fold(ipSum)), toByteOffset: 10, as: UInt16.self)
            let tcpSum = (~load16(tcp, 16) & 0xFFFF) &+ addressDelta &+ (~oldPort & 0xFFFF) &+ UInt32(newPort)
            tcp.storeBytes(of: UInt16(truncatingIfNeeded: ~fold(tcpSum)), toByteOffset: 16, as: UInt16.self)

            // MACs.
            let next = nextHopMAC(i)
            f.storeBytes(of: UInt32(truncatingIfNeeded: next >> 16).bigEndian, toByteOffset: 0, as: UInt32.self)
            f.storeBytes(of: UInt16(truncatingIfNeeded: next).bigEndian, toByteOffset: 4, as: UInt16.self)
            f.storeBytes(of: srcHigh, toByteOffset: 6, as: UInt32.self)
            f.storeBytes(of: srcLow, toByteOffset: 10, as: UInt16.self)
            acc &+= UInt64(UInt16(bigEndian: tcp.loadUnaligned(fromByteOffset: 0, as: UInt16.self)))
        }
    }
    return acc
}

// MARK: checks

/// Every frame parses (IPv4 header checksum verified), its TCP checksum
/// verifies, and it carries the last round's NAT destination.
func framesAreValid(_ umem: UnsafeMutableRawPointer, rounds: Int) -> Bool {
    for i in 0..<frameCount {
        let frame = UnsafeRawBufferPointer(start: umem + i * frameStride, count: frameLength)
        guard let p = try? FrameParser().parse(frame) else { return false }
        let ip = IPv4Header(unchecked: UnsafeRawBufferPointer(rebasing: frame[p.l3Offset...]))
        let tcp = TCPHeader(unchecked: ip.payload)
        guard tcp.isChecksumValid(pseudoHeader: ip.pseudoHeader),
              p.destinationIPv4.rawValue == natAddress(rounds - 1), p.destinationPort == natPort(rounds - 1),
              p.timeToLive == UInt8(255 - rounds), p.sourceMAC.rawValue == routerMAC,
              p.destinationMAC.rawValue == nextHopMAC(i) else { return false }
    }
    return true
}

let bytes = frameCount * frameStride
let wireUMEM = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
let rawUMEM = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
wireUMEM.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
rawUMEM.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)

// The counter must see allocations, or "0 mallocs" would mean nothing.
let beforeSelfTest = cwl_malloc_count()
let probe = [UInt8](repeating: 1, count: 1024 + Int(template[0] & 1))
let selfTest = cwl_malloc_count() - beforeSelfTest
guard selfTest >= 1, probe.count > 0 else {
    print("wire-bench: the malloc counter saw no allocation for a 1 KiB Array; it is not interposed")
    exit(1)
}

// Same input, same work: both loops must leave the same bytes.
resetFrames(wireUMEM)
resetFrames(rawUMEM)
let a = wirePass(wireUMEM, rounds: roundsPerPass)
let b = rawPass(rawUMEM, rounds: roundsPerPass)
guard a == b, memcmp(wireUMEM, rawUMEM, bytes) == 0, framesAreValid(wireUMEM, rounds: roundsPerPass) else {
    print("wire-bench: the Wire loop and the raw loop disagree (results \(a), \(b)) or left invalid frames")
    exit(1)
}

var wireTimes: [Double] = [], rawTimes: [Double] = [], parseTimes: [Double] = []
wireTimes.reserveCapacity(passes)
rawTimes.reserveCapacity(passes)
parseTimes.reserveCapacity(passes)
let packetsPerPass = Double(roundsPerPass * frameCount)
var wireMallocs: UInt64 = 0, rawMallocs: UInt64 = 0, parseMallocs: UInt64 = 0
var sink: UInt64 = 0

for _ in 0..<passes {
    resetFrames(wireUMEM)
    var m0 = cwl_malloc_count()
    var t0 = monotonicNanoseconds()
    sink &+= wirePass(wireUMEM, rounds: roundsPerPass)
    var t1 = monotonicNanoseconds()
    wireMallocs &+= cwl_malloc_count() - m0
    wireTimes.append(Double(t1 - t0) / packetsPerPass)

    resetFrames(rawUMEM)
    m0 = cwl_malloc_count()
    t0 = monotonicNanoseconds()
    sink &+= rawPass(rawUMEM, rounds: roundsPerPass)
    t1 = monotonicNanoseconds()
    rawMallocs &+= cwl_malloc_count() - m0
    rawTimes.append(Double(t1 - t0) / packetsPerPass)

    m0 = cwl_malloc_count()
    t0 = monotonicNanoseconds()
    sink &+= wireParsePass(wireUMEM, rounds: roundsPerPass)
    t1 = monotonicNanoseconds()
    parseMallocs &+= cwl_malloc_count() - m0
    parseTimes.append(Double(t1 - t0) / packetsPerPass)
}

func best(_ xs: [Double]) -> Double { xs.min() ?? .nan }
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
}
let packets = Double(passes) * packetsPerPass
func perPacket(_ count: UInt64) -> String {
    count == 0 ? "0" : format(Double(count) / packets, 4)
}

#if DEBUG
print("wire-bench: WARNING: a debug build; the figures mean nothing (swift run -c release wire-bench)")
#endif
print("wire-bench: parse Eth+IPv4+TCP, NAT dst IP+port, TTL-1, MAC rewrite (incremental checksums)")
print("  \(frameCount) frames of \(frameLength) B, stride \(frameStride) B; \(passes) passes × \(roundsPerPass) rounds"
    + " = \(Int(packets)) packets per loop; best pass (median) in ns/packet")
print("  wire (FrameParser + ParsedFrame rewrites): \(format(best(wireTimes))) ns/pkt (median \(format(median(wireTimes)))),"
    + " \(perPacket(wireMallocs)) mallocs/pkt")
print("  raw-pointer loop, same checks and rewrites: \(format(best(rawTimes))) ns/pkt (median \(format(median(rawTimes)))),"
    + " \(perPacket(rawMallocs)) mallocs/pkt")
print("  wire parse only:                            \(format(best(parseTimes))) ns/pkt (median \(format(median(parseTimes)))),"
    + " \(perPacket(parseMallocs)) mallocs/pkt")
print("  malloc counter self-test: \(selfTest) allocation(s) seen for a 1 KiB Array; checksum \(sink & 0xFFFF)")
print("wire: \(format(best(wireTimes))) ns/pkt, \(perPacket(wireMallocs)) mallocs/pkt; raw loop: \(format(best(rawTimes))) ns/pkt")
