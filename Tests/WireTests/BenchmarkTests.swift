import Testing
import Wire

/// The data-plane hot path that `wire-bench` times — parse Ethernet + IPv4 +
/// TCP, NAT the destination address and port, decrement the TTL, rewrite
/// both MACs, every checksum updated incrementally — checked for
/// correctness only, over many rounds on a batch of frames. Speed is
/// measured in benchmarks, not in timed tests (a shared 2-core machine makes
/// any time limit flaky): `swift run -c release wire-bench`, see BENCHMARKS.md.
@Suite struct BenchmarkTests {
    @Test func parseAndRewriteNAT() throws {
        // 64 copies of the SYN in one contiguous buffer, like frames in a UMEM.
        let stride = 128, count = 64, length = Fixture.tcpSyn.count
        var umem = [UInt8](repeating: 0, count: stride * count)
        for i in 0..<count { umem.replaceSubrange(i * stride..<(i * stride + length), with: Fixture.tcpSyn) }
        let parser = FrameParser()
        let rounds = 200  // TTL 64 − 1 per round wraps; reset it below before it reaches 1
        var portSum = 0
        try umem.withUnsafeMutableBytes { mem in
            for round in 0..<rounds {
                for i in 0..<count {
                    let frame = UnsafeMutableRawBufferPointer(rebasing: mem[i * stride..<(i * stride + length)])
                    var p = try parser.parse(UnsafeRawBufferPointer(frame))
                    #expect(p.isTCP && p.hasPorts)
                    p.rewriteIPv4Destination(IPv4Address(rawValue: 0x0A00_0000 | UInt32(truncatingIfNeeded: round)),
                                             port: UInt16(truncatingIfNeeded: 8000 &+ round), in: frame)
                    if p.timeToLive <= 1 {
                        // A router would answer Time Exceeded; here, put the TTL back (with the plain
                        // setter, then a full header checksum) and carry on.
                        let ip = IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: frame[14...]))
                        ip.timeToLive = 64
                        ip.fillChecksum()
                        p = try parser.parse(UnsafeRawBufferPointer(frame))
                    }
                    p.decrementTimeToLive(in: frame)
                    p.rewriteSourceMAC(MACAddress(rawValue: 0x0200_0000_0000 | UInt64(round)), in: frame)
                    p.rewriteDestinationMAC(MACAddress(rawValue: 0x0200_0001_0000 | UInt64(i)), in: frame)
                    portSum &+= Int(p.sourcePort)
                }
            }
        }
        #expect(portSum == 40000 * rounds * count)
        // Every frame is still valid after all those rewrites, and holds the last round's values.
        for i in 0..<count {
            try umem.read(i * stride..<(i * stride + length)) { b in
                let p = try FrameParser().parse(b)  // verifies the IPv4 header checksum
                let ip = IPv4Header(unchecked: UnsafeRawBufferPointer(rebasing: b[14...]))
                #expect(ip.isChecksumValid && ip.computedChecksum == ip.headerChecksum)
                let tcp = TCPHeader(unchecked: ip.payload)
                #expect(tcp.isChecksumValid(pseudoHeader: ip.pseudoHeader))
                #expect(tcp.computedChecksum(pseudoHeader: ip.pseudoHeader) == tcp.checksum)
                #expect(p.destinationPort == UInt16(truncatingIfNeeded: 8000 + rounds - 1))
                #expect(p.destinationIPv4 == IPv4Address(rawValue: 0x0A00_0000 | UInt32(rounds - 1)))
                #expect(p.sourceMAC == MACAddress(rawValue: 0x0200_0000_0000 | UInt64(rounds - 1)))
                #expect(p.destinationMAC == MACAddress(rawValue: 0x0200_0001_0000 | UInt64(i)))
            }
        }
    }
}
