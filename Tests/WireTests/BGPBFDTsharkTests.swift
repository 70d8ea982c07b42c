// BGP and BFD as built by Wire → tshark's `bgp` and `bfd` dissectors: the
// messages go into a pcapng (raw IPv4; a TCP stream to port 179 with a
// handshake and contiguous sequence numbers, UDP to 3784 with TTL 255),
// `tshark -V` reads it, and the text must show the fields we set and no
// "Malformed" packet or warning/error expert info.
//
//   swift test --skip-build --filter BGPTshark
//   swift test --skip-build --filter BFDTshark
//   CROSSCHECK_KEEP=/tmp/x swift test --skip-build --filter BGPTshark   # keep /tmp/x-bgp.pcapng

import Foundation
import Testing
@testable import Wire

/// IPv4 + TCP/UDP built by hand with correct checksums (the test needs no
/// more than that).
struct ControlPacketBuilder {
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func ipv4(source: IPv4Address, destination: IPv4Address, protocol proto: UInt8, ttl: UInt8, payload: [UInt8], id: UInt16) -> [UInt8] {
        let total = 20 + payload.count
        var h: [UInt8] = [0x45, 0xC0, UInt8(total >> 8), UInt8(total & 0xFF), UInt8(id >> 8), UInt8(id & 0xFF), 0x40, 0,
                          ttl, proto, 0, 0] + be32(source.rawValue) + be32(destination.rawValue)
        let c = checksum(h)
        h[10] = UInt8(c >> 8)
        h[11] = UInt8(c & 0xFF)
        return h + payload
    }

    static func pseudo(_ s: IPv4Address, _ d: IPv4Address, _ proto: UInt8, _ length: Int) -> [UInt8] {
        be32(s.rawValue) + be32(d.rawValue) + [0, proto, UInt8(length >> 8), UInt8(length & 0xFF)]
    }

    static func tcp(source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16,
                    seq: UInt32, ack: UInt32, flags: UInt8, payload: [UInt8], id: UInt16) -> [UInt8] {
        var t: [UInt8] = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
            + be32(seq) + be32(ack) + [0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0] + payload
        let c = checksum(pseudo(source, destination, 6, t.count) + t)
        t[16] = UInt8(c >> 8)
        t[17] = UInt8(c & 0xFF)
        return ipv4(source: source, destination: destination, protocol: 6, ttl: 1, payload: t, id: id)
    }

    static func udp(source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16,
                    payload: [UInt8], id: UInt16) -> [UInt8] {
        let length = 8 + payload.count
        var u: [UInt8] = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF),
                          UInt8(length >> 8), UInt8(length & 0xFF), 0, 0] + payload
        var c = checksum(pseudo(source, destination, 17, u.count) + u)
        if c == 0 { c = 0xFFFF }
        u[6] = UInt8(c >> 8)
        u[7] = UInt8(c & 0xFF)
        return ipv4(source: source, destination: destination, protocol: 17, ttl: 255, payload: u, id: id)
    }

    /// A TCP connection from a:port to b:179 (handshake), then each element
    /// of `segments` as one segment from a to b, each acked by b.
    static func bgpStream(_ segments: [[UInt8]]) -> [[UInt8]] {
        let a = IPv4Address(10, 0, 0, 1), b = IPv4Address(10, 0, 0, 2)
        let port: UInt16 = 40179
        var seqA: UInt32 = 1000, seqB: UInt32 = 5000
        var id: UInt16 = 1
        var out: [[UInt8]] = []
        func next() -> UInt16 { id += 1; return id }
        out.append(tcp(source: a, destination: b, sourcePort: port, destinationPort: 179, seq: seqA, ack: 0, flags: 0x02, payload: [], id: next()))
        out.append(tcp(source: b, destination: a, sourcePort: 179, destinationPort: port, seq: seqB, ack: seqA + 1, flags: 0x12, payload: [], id: next()))
        seqA += 1
        seqB += 1
        out.append(tcp(source: a, destination: b, sourcePort: port, destinationPort: 179, seq: seqA, ack: seqB, flags: 0x10, payload: [], id: next()))
        for s in segments {
            out.append(tcp(source: a, destination: b, sourcePort: port, destinationPort: 179, seq: seqA, ack: seqB, flags: 0x18, payload: s, id: next()))
            seqA += UInt32(s.count)
            out.append(tcp(source: b, destination: a, sourcePort: 179, destinationPort: port, seq: seqB, ack: seqA, flags: 0x10, payload: [], id: next()))
        }
        return out
    }

    /// Writes `packets` (raw IPv4) to a pcapng and returns `tshark -V` of it.
    static func dissect(_ packets: [[UInt8]], name: String) throws -> String? {
        guard let tshark = CrossCheck.which("tshark") else {
            Issue.record("tshark not found: \(CrossCheck.installHint)")
            return nil
        }
        var writer = PcapNGWriter(application: "wirelab \(name) cross-check")
        let interface = writer.addInterface(name: name, linkType: .raw)
        for (i, p) in packets.enumerated() {
            writer.writePacket(p, interface: interface, timestamp: 1_700_000_000_000_000_000 + UInt64(i) * 1_000_000)
        }
        let keep = ProcessInfo.processInfo.environment["CROSSCHECK_KEEP"]
        let file = keep.map { "\($0)-\(name).pcapng" } ?? FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-\(name)-\(UUID().uuidString).pcapng").path
        try Data(writer.bytes).write(to: URL(fileURLWithPath: file))
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: file) } }
        guard let out = try CrossCheck.run(tshark, ["-n", "-r", file, "-V", "-o", "tcp.check_checksum:TRUE",
                                                    "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]),
              out.status == 0 else {
            Issue.record("tshark failed on \(file)")
            return nil
        }
        return String(decoding: out.stdout, as: UTF8.self)
    }

    /// Lines that say tshark found something wrong.
    static func complaints(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter {
            $0.contains("Malformed") || $0.contains("Expert Info (Warn") || $0.contains("Expert Info (Error")
                || $0.contains("[incorrect") || $0.contains("Bad]") || $0.contains("Status: Bad")
        }
    }
}

@Suite struct BGPTsharkTests {
    @Test func tsharkDecodesOurBGPWithoutComplaint() throws {
        let four = BGPCodecOptions.fourOctet
        let open = BGPMessage.open(BGPOpen(asn: 4_200_000_001, holdTime: 3, bgpIdentifier: IPv4Address(10, 0, 0, 1))).encode()
        let update = BGPMessage.update(BGPUpdate(
            withdrawn: [IPv4Prefix("10.9.0.0/16")!],
            attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([4_200_000_001, 65010]), .set([65020, 65021])],
                                          nextHop: IPv4Address(10, 0, 0, 1), multiExitDisc: 77, localPref: 150,
                                          others: [BGPRawAttribute(flags: 0xC0, type: 8, value: [0xFD, 0xE9, 0x00, 0x64])]),
            nlri: [IPv4Prefix("10.0.0.100/32")!, IPv4Prefix("192.168.7.0/24")!, IPv4Prefix("172.16.0.0/12")!])).encode(four)
        let twoOctetUpdate = BGPMessage.update(BGPUpdate(
            attributes: BGPPathAttributes(origin: .incomplete, asPath: [.sequence([4_200_000_001, 65010])], nextHop: IPv4Address(10, 0, 0, 1)),
            nlri: [IPv4Prefix("10.1.0.0/16")!])).encode(.twoOctet)
        let keepalive = BGPMessage.keepalive.encode()
        let notification = BGPMessage.notification(.holdTimerExpiredError()).encode()
        let cease = BGPMessage.notification(.ceaseError(subcode: 2)).encode()
        let openError = BGPMessage.notification(.unsupportedVersionNumber()).encode()
        let refresh = BGPMessage.routeRefresh(afi: 1, safi: 1).encode()
        // One segment per message, and one segment holding three messages.
        let text4 = try ControlPacketBuilder.dissect(ControlPacketBuilder.bgpStream([open, keepalive, update, keepalive + refresh + notification, cease, openError]),
                                                     name: "bgp")
        guard let text4 else { return }
        #expect(ControlPacketBuilder.complaints(text4) == [])
        for expected in ["Type: OPEN Message (1)", "My AS: 23456", "Hold Time: 3", "BGP Identifier: 10.0.0.1",
                         "AS Number: 4200000001", "Type: KEEPALIVE Message (4)", "Type: UPDATE Message (2)",
                         "10.9.0.0/16", "10.0.0.100/32", "192.168.7.0/24", "172.16.0.0/12",
                         "Origin: IGP (0)", "AS Path segment: 4200000001 65010", "Next hop: 10.0.0.1",
                         "Multiple exit discriminator: 77", "Local preference: 150",
                         "Type: NOTIFICATION Message (3)", "Major error Code: Hold Timer Expired (4)",
                         "Major error Code: Cease (6)", "Minor error Code (Cease): Administratively Shutdown (2)",
                         "Major error Code: OPEN Message Error (2)", "Type: ROUTE-REFRESH Message (5)",
                         "Communities: 65001:100", "[Checksum Status: Good]"] {
            #expect(text4.contains(expected), "tshark -V lacks \"\(expected)\"")
        }
        // The 2-octet form alone: tshark guesses the AS width per message.
        guard let text2 = try ControlPacketBuilder.dissect(ControlPacketBuilder.bgpStream([twoOctetUpdate]), name: "bgp2") else { return }
        #expect(ControlPacketBuilder.complaints(text2) == [])
        #expect(text2.contains("AS Path segment: 23456 65010"), "\(text2)")
        #expect(text2.contains("AS4 Path segment: 4200000001 65010") || text2.contains("4200000001 65010"))
        #expect(text2.contains("Origin: INCOMPLETE (2)"))
    }
}

@Suite struct BFDTsharkTests {
    @Test func tsharkDecodesOurBFDWithoutComplaint() throws {
        let a = IPv4Address(10, 0, 0, 1), b = IPv4Address(10, 0, 0, 2)
        let packets = [
            BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 0x1111, yourDiscriminator: 0,
                             desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 50_000),
            BFDControlPacket(state: .initializing, detectMultiplier: 3, myDiscriminator: 0x1111, yourDiscriminator: 0x2222,
                             desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 50_000),
            BFDControlPacket(state: .up, poll: true, detectMultiplier: 3, myDiscriminator: 0x1111, yourDiscriminator: 0x2222,
                             desiredMinTxInterval: 50_000, requiredMinRxInterval: 50_000),
            BFDControlPacket(diagnostic: .controlDetectionTimeExpired, state: .down, final: true, detectMultiplier: 3,
                             myDiscriminator: 0x1111, yourDiscriminator: 0, desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 50_000),
        ].enumerated().map { i, p in
            ControlPacketBuilder.udp(source: a, destination: b, sourcePort: 49152, destinationPort: 3784, payload: p.encode(), id: UInt16(i + 1))
        }
        guard let text = try ControlPacketBuilder.dissect(packets, name: "bfd") else { return }
        #expect(ControlPacketBuilder.complaints(text) == [])
        for expected in ["BFD Control message", "Protocol Version: 1", "Session State: Down (0x1)", "Session State: Init (0x2)",
                         "Session State: Up (0x3)", "1... .. = Poll: Set", ".1.. .. = Final: Set",
                         "Diagnostic Code: Control Detection Time Expired (0x01)", "Detect Time Multiplier: 3",
                         "My Discriminator: 0x00001111", "Your Discriminator: 0x00002222",
                         "Desired Min TX Interval:   50 ms (50000 us)", "Required Min RX Interval:   50 ms (50000 us)",
                         "Time to Live: 255", "[Checksum Status: Good]", "Detect Time Multiplier: 3 (= 150 ms Detection time)"] {
            #expect(text.contains(expected), "tshark -V lacks \"\(expected)\"")
        }
    }
}
