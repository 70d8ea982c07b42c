import Testing
import Wire

/// The data-plane hot path: parse Ethernet + IPv4 + TCP and rewrite the
/// destination address and port with incremental checksums (LVS NAT).
/// Prints ns/packet; only a loose sanity bound is asserted, and only in
/// optimised builds, since the machine is shared (timing is noisy).
/// Measure properly with `swift test -c release --filter WireTests.BenchmarkTests`.
@Suite struct BenchmarkTests {
    @Test func parseAndRewriteNAT() throws {
        // 64 copies of the SYN in one contiguous buffer, like frames in a UMEM.
        let stride = 128, count = 64
        var umem = [UInt8](repeating: 0, count: stride * count)
        for i in 0..<count { umem.replaceSubrange(i * stride..<(i * stride + 74), with: Fixture.tcpSyn) }
        let parser = FrameParser()
        #if DEBUG
        let rounds = 2_000
        #else
        let rounds = 200_000
        #endif
        var best = Duration.seconds(1_000)
        var checksum = 0
        try umem.withUnsafeMutableBytes { mem in
            for _ in 0..<5 {
                let start = ContinuousClock.now
                for round in 0..<rounds {
                    for i in 0..<count {
                        let frame = UnsafeMutableRawBufferPointer(rebasing: mem[i * stride..<(i * stride + 74)])
                        var p = try parser.parse(UnsafeRawBufferPointer(frame))
                        p.rewriteIPv4Destination(IPv4Address(rawValue: 0x0A00_0000 | UInt32(truncatingIfNeeded: round)), in: frame)
                        p.rewriteDestinationPort(UInt16(truncatingIfNeeded: 8000 &+ round), in: frame)
                        checksum &+= Int(p.sourcePort)
                    }
                }
                best = min(best, ContinuousClock.now - start)
            }
        }
        let ns = Double(best.components.seconds) * 1e9 + Double(best.components.attoseconds) / 1e9
        let perPacket = ns / Double(rounds * count)
        print("parse Eth+IPv4+TCP, rewrite dst IP+port (incremental checksums): \(perPacket) ns/packet")
        #if !DEBUG
        #expect(perPacket < 200, "far off the ~20 ns target: \(perPacket) ns/packet")
        #endif
        #expect(checksum > 0)
        // Still valid after all those rewrites.
        try umem.read(0..<74) { b in
            let p = try FrameParser().parse(b)
            let ip = IPv4Header(unchecked: UnsafeRawBufferPointer(rebasing: b[14...]))
            #expect(TCPHeader(unchecked: ip.payload).isChecksumValid(pseudoHeader: ip.pseudoHeader))
            #expect(p.destinationPort == UInt16(truncatingIfNeeded: 8000 + rounds - 1))
        }
    }
}
