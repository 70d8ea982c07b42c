import Testing
import Wire
import Datapath
@testable import Lab

/// The host model, Katran-style: one host (rs1 of lvs-dr: 10.0.0.1/24,
/// default via 10.0.0.254, VIP 10.0.0.100 on lo, http 80, udp echo 9000,
/// IPIP decapsulation), a table of input frames and the exact frames it
/// must emit, built by scapy (scripts/gen-hostmodel-fixtures.py), compared
/// byte for byte. The rows run in order on the same host: ARP learned in
/// row 1 is used by the replies after it; IP identifications count up.
@Suite struct HostModelTests {
    static let rsMAC = MACAddress(2, 0, 0, 0, 0, 1)
    static let gwMAC = MACAddress(2, 0, 0, 0, 0, 0xfe)

    static func rs1(decapsulates: Bool = true) -> HostModel {
        HostModel(configuration: .init(
            name: "rs1",
            interfaces: [.init(name: "eth0", mac: rsMAC, addresses: [IPv4Prefix("10.0.0.1/24")!])],
            routes: [.init(IPv4Prefix("0.0.0.0/0")!, via: IPv4Address("10.0.0.254")!)],
            localAddresses: [IPv4Address("10.0.0.100")!], arpIgnore: true, decapsulatesIPIP: decapsulates,
            httpPort: 80, udpEchoPort: 9000))
    }

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    @Test func tableOfFramesInAndOut() {
        let host = Self.rs1()
        let driver = ElementDriver(host)
        #expect(hostModelTable.count >= 10)
        for (description, input, expected) in hostModelTable {
            let outcome = driver.send(Self.bytes(input), on: PortID(0), at: .seconds(1))
            let emitted = outcome.emitted.map { Self.hex($0.frame) }
            #expect(emitted == expected, "\(description)")
            #expect(outcome.emitted.allSatisfy { $0.port == PortID(0) }, "\(description)")
        }
        #expect(host.counters.httpRequestsServed == 1)
        #expect(host.counters.ipipDecapsulated == 1)
        #expect(host.drops.counts[.notForUs] == 1)
        #expect(host.drops.counts[HostModel.noListener] == 2)
        #expect(host.drops.counts[HostModel.noSocket] == 1)
    }

    @Test func withoutDecapsulationIPIPGetsProtocolUnreachable() throws {
        let host = Self.rs1(decapsulates: false)
        let driver = ElementDriver(host)
        _ = driver.send(Self.bytes(hostModelTable[0].1), on: PortID(0), at: .seconds(1))   // learn the gateway
        let ipip = try #require(hostModelTable.first { $0.0.hasPrefix("IPIP") })
        // The error goes to the outer source, the director, on-link and not
        // yet known: an ARP request first, the error once it is answered.
        let out = driver.send(Self.bytes(ipip.1), on: PortID(0), at: .seconds(1))
        let request = try #require(out.emitted.first).frame
        #expect(out.emitted.count == 1 && request[21] == 1 && Array(request[38..<42]) == [10, 0, 0, 2])
        let lvsMAC: [UInt8] = [2, 0, 0, 0, 0, 2]
        let reply: [UInt8] = [2, 0, 0, 0, 0, 1] + lvsMAC + [8, 6, 0, 1, 8, 0, 6, 4, 0, 2] + lvsMAC + [10, 0, 0, 2]
            + [2, 0, 0, 0, 0, 1] + [10, 0, 0, 1]
        let released = driver.send(reply, on: PortID(0), at: .seconds(1))
        let frame = try #require(released.emitted.first).frame
        #expect(released.emitted.count == 1)
        #expect(Array(frame[0..<6]) == lvsMAC)
        #expect(frame[23] == 1 && frame[34] == 3 && frame[35] == 2, "ICMP protocol unreachable, got \(Self.hex(frame))")
        #expect(Array(frame[30..<34]) == [10, 0, 0, 2] && Array(frame[26..<30]) == [10, 0, 0, 1])
        #expect(host.counters.ipipDecapsulated == 0)
    }

    @Test func clientResolvesTheGatewayThenConnectsAndReadsTheAnswer() throws {
        let host = Self.rs1()
        var emitter = Emitter()
        let server = IPv4Address("203.0.113.9")!
        let id = host.connect(to: server, port: 80, request: HostModel.httpRequest(host: "x", path: "/"),
                              now: .seconds(1), emit: &emitter)
        // Gateway unknown: an ARP request from 10.0.0.1 (not the VIP), the SYN waits.
        #expect(emitter.count == 1)
        let arp = Array(emitter.frame(at: 0).bytes)
        #expect(Array(arp[0..<6]) == [255, 255, 255, 255, 255, 255] && arp[21] == 1)
        #expect(Array(arp[28..<32]) == [10, 0, 0, 1] && Array(arp[38..<42]) == [10, 0, 0, 254])
        #expect(host.connections[id].state == .connecting)
        #expect(host.connections[id].localPort == 32768)
        // Nobody answers: retries, then the queued SYN is dropped.
        emitter.removeAll()
        for s in 2...10 { host.tick(now: .seconds(Double(s)), emit: &emitter) }
        #expect((host.drops.counts[.arpUnresolved] ?? 0) >= 1)
        // SYN at 1 s, retransmitted at 2 s and 4 s, given up at 8 s.
        #expect(host.connections[id].state == .timedOut)
        #expect(host.connections[id].finishedAt == .seconds(8))
        #expect(host.clients.isEmpty)
    }

    @Test func anEstablishedConnectionWithoutAnswerIsGivenUpAfterTheTimeout() throws {
        let host = Self.rs1()
        let driver = ElementDriver(host)
        var emitter = Emitter()
        let peerMAC: [UInt8] = [2, 0, 0, 0, 0, 5]
        let id = host.connect(to: IPv4Address("10.0.0.5")!, port: 80, request: HostModel.httpRequest(host: "x", path: "/"),
                              now: .seconds(1), emit: &emitter)
        // ARP reply from 10.0.0.5 releases the SYN.
        let reply: [UInt8] = [2, 0, 0, 0, 0, 1] + peerMAC + [8, 6, 0, 1, 8, 0, 6, 4, 0, 2] + peerMAC + [10, 0, 0, 5]
            + [2, 0, 0, 0, 0, 1] + [10, 0, 0, 1]
        let syn = try #require(driver.send(reply, on: PortID(0), at: .seconds(1)).emitted.first).frame
        #expect(syn[14 + 20 + 13] == 0x02)
        let iss = syn[38..<42].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        // SYN-ACK (no checksum shortcut: built and summed here).
        var segment = [UInt8](repeating: 0, count: 40)
        segment[0] = 0x45; segment[3] = 40; segment[8] = 64; segment[9] = 6
        segment[12...15] = [10, 0, 0, 5]; segment[16...19] = [10, 0, 0, 1]
        segment[20] = 0; segment[21] = 80; segment[22] = syn[34]; segment[23] = syn[35]
        segment[24...27] = [0, 0, 0x10, 0]
        let ack = iss &+ 1
        segment[28] = UInt8(ack >> 24); segment[29] = UInt8(ack >> 16 & 0xff); segment[30] = UInt8(ack >> 8 & 0xff); segment[31] = UInt8(ack & 0xff)
        segment[32] = 0x50; segment[33] = 0x12; segment[34] = 0xff; segment[35] = 0xff
        segment.withUnsafeMutableBytes { b in
            let pseudo = InternetChecksum.pseudoHeaderSum(source: IPv4Address("10.0.0.5")!, destination: IPv4Address("10.0.0.1")!,
                                                          protocol: .tcp, length: 20)
            let sum = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: b[20..<40]), initial: pseudo)
            b[36] = UInt8(sum >> 8); b[37] = UInt8(sum & 0xff)
            let header = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: b[0..<20]))
            b[10] = UInt8(header >> 8); b[11] = UInt8(header & 0xff)
        }
        let out = driver.send([2, 0, 0, 0, 0, 1] + peerMAC + [8, 0] + segment, on: PortID(0), at: .seconds(1))
        #expect(out.emitted.count == 2, "ACK, then the request")
        #expect(host.connections[id].state == .established)
        // The server never answers: still open at 30 s, given up at 31 s.
        for s in 2...30 { host.tick(now: .seconds(Double(s)), emit: &emitter) }
        #expect(host.connections[id].state == .established)
        host.tick(now: .seconds(31), emit: &emitter)
        #expect(host.connections[id].state == .timedOut && host.connections[id].wasEstablished)
        #expect(!host.isBusy)
    }
}
