import Testing
import Wire
@testable import Datapath

// The SYN-flood defense (DirectorCore.Configuration.dropEmbryonic, IPVS's
// drop_entry): a full table evicts embryonic (SYN_RECV/SYNACK) entries for
// new connections, never ESTABLISHED ones; evictions are counted.

@Suite struct DirectorSynFloodTests {
    /// Rewrites a client → VIP frame's source ip:port and fixes the IPv4
    /// and TCP checksums (Ethernet 14 + IPv4 20 + TCP 20).
    static func spoof(_ f: inout [UInt8], source: UInt32, port: UInt16) {
        f[26] = UInt8(source >> 24); f[27] = UInt8(source >> 16 & 0xff); f[28] = UInt8(source >> 8 & 0xff); f[29] = UInt8(source & 0xff)
        f[34] = UInt8(port >> 8); f[35] = UInt8(port & 0xff)
        func fold(_ s: UInt32) -> UInt16 { var s = s; while s > 0xffff { s = (s & 0xffff) + (s >> 16) }; return ~UInt16(s) }
        func sum(_ r: Range<Int>) -> UInt32 { stride(from: r.lowerBound, to: r.upperBound, by: 2).reduce(0) { $0 + (UInt32(f[$1]) << 8 | UInt32(f[$1 + 1])) } }
        f[24] = 0; f[25] = 0
        let ipc = fold(sum(14..<34)); f[24] = UInt8(ipc >> 8); f[25] = UInt8(ipc & 0xff)
        f[50] = 0; f[51] = 0
        let tcpLength = f.count - 34
        let tc = fold(sum(26..<34) + 6 + UInt32(tcpLength) + sum(34..<f.count))
        f[50] = UInt8(tc >> 8); f[51] = UInt8(tc & 0xff)
    }

    static func destinationMAC(_ frame: [UInt8]) -> MACAddress {
        MACAddress(rawValue: frame[0..<6].reduce(0) { $0 << 8 | UInt64($1) })
    }

    /// A NAT handshake by a real client through the element: SYN, the
    /// real's SYN-ACK, the client's ACK, all forwarded; returns the state.
    static func handshake(_ driver: ElementDriver, _ director: Director, sport: UInt16, at t: Instant,
                          floodBetween: () -> Void = {}) -> ConnectionState? {
        let syn = driver.send(DE.fromClient(DE.syn, sport: sport).frame, on: PortID(0), at: t)
        guard syn.verdict == .forward(PortID(0)) else { return nil }
        let realMAC = destinationMAC(syn.frame)
        let real = realMAC == DE.rs1MAC ? DE.rs1 : DE.rs2
        #expect(realMAC == DE.rs1MAC || realMAC == DE.rs2MAC)
        #expect(IPv4Address(syn.frame[30], syn.frame[31], syn.frame[32], syn.frame[33]) == real)
        floodBetween()
        let synAck = DE.tcp(realMAC, DE.lvsMAC, real, 80, DE.client, sport, DE.syn | DE.ack, seq: 5000, ack: 1001, ttl: 64)
        guard driver.send(synAck.frame, on: PortID(0), at: t).verdict == .forward(PortID(0)) else { return nil }
        floodBetween()
        let ack = driver.send(DE.fromClient(DE.ack, sport: sport, seq: 1001, ack: 5001).frame, on: PortID(0), at: t)
        guard ack.verdict == .forward(PortID(0)), destinationMAC(ack.frame) == realMAC else { return nil }
        let d = director.core.schedule(.tcp, client: DE.client, clientPort: sport, virtual: DE.vip, virtualPort: 80,
                                       tcpFlags: DE.ack, now: t)
        return d.state
    }

    /// A million spoofed SYNs at a NAT service with a 65,536-entry table:
    /// the table stays at its limit, an established connection keeps
    /// forwarding, real clients' handshakes during and after the flood
    /// complete, and every entry beyond the limit is an eviction.
    @Test func aMillionSpoofedSynsAtANatService() {
        let capacity = 1 << 16, flood = 1_000_000
        let director = DE.director(.nat) { $0.core.maxConnections = capacity }
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        #expect(Self.handshake(driver, director, sport: 40000, at: .seconds(0)) == .established)
        let data = DE.fromClient(DE.psh | DE.ack, sport: 40000, seq: 1001, ack: 5001, payload: [1, 2, 3]).frame

        var template = DE.fromClient(DE.syn, sport: 1).frame
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        var sent = 0, legit = 0, legitEstablished = 0, maxEntries = 0
        let start: UInt64 = 1_000_000_000
        func now() -> Instant { Instant(nanoseconds: start + UInt64(sent) * 1000) }   // 1 µs apart: 1 s of flood
        func floodSyns(_ n: Int) {
            for _ in 0..<n {
                random ^= random << 13; random ^= random >> 7; random ^= random << 17
                // 100.0.0.0/8 sources, one per SYN (k × odd is a bijection mod 2^24), random ports.
                let source = 0x6400_0000 | UInt32(truncatingIfNeeded: UInt64(sent) &* 2_654_435_761) & 0xFF_FFFF
                Self.spoof(&template, source: source, port: UInt16(truncatingIfNeeded: random) | 1024)
                let out = driver.send(template, on: PortID(0), at: now())
                if out.verdict != .forward(PortID(0)) { Issue.record("flood SYN \(sent): \(out.verdict)"); return }
                sent += 1
                if sent % 4096 == 0 { maxEntries = max(maxEntries, director.core.table.count) }
            }
        }
        while sent < flood {
            floodSyns(100_000 - 200)
            // The established connection keeps forwarding …
            let out = driver.send(data, on: PortID(0), at: now())
            #expect(out.verdict == .forward(PortID(0)))
            // … and a real client's handshake, with flood SYNs between its packets, completes.
            legit += 1
            if Self.handshake(driver, director, sport: UInt16(50000 + legit), at: now(), floodBetween: { floodSyns(100) }) == .established {
                legitEstablished += 1
            }
        }
        let k = director.core.counters
        #expect(sent == flood && legit == 10 && legitEstablished == 10)
        #expect(maxEntries <= capacity && director.core.table.count == capacity)
        #expect(k.refusedTableFull == 0 && director.drops.counts[.tableFull] == nil)
        #expect(k.created == UInt64(1 + flood + legit))
        #expect(k.evictedEmbryonic == k.created - UInt64(capacity))
        // After the flood: a new client connects, the old connection still forwards.
        let after = Instant(nanoseconds: start + 2_000_000_000)
        #expect(Self.handshake(driver, director, sport: 60000, at: after) == .established)
        #expect(driver.send(data, on: PortID(0), at: after).verdict == .forward(PortID(0)))
        // The flood's SYN_RECV entries time out (60 s); the 12 established connections stay.
        _ = driver.tick(at: .seconds(70))
        #expect(director.core.table.count == 12)
        print("syn flood: \(flood) SYNs at a table of \(capacity): evicted \(k.evictedEmbryonic), "
              + "legit handshakes \(legitEstablished + 2)/\(legit + 2), most entries \(maxEntries)")
    }

    /// DR (the director sees only the client side: a lone SYN leaves the
    /// entry in SYN_RECV, the client's ACK makes it ESTABLISHED).
    @Test func drFloodEvictsLoneSyns() {
        let core = directorCore(.dr) { $0.maxConnections = 1024 }
        #expect(core.inbound(SYN, port: 1, at: 0).outcome == .created)
        #expect(core.inbound(ACK, port: 1, at: 0).state == .established)
        var t = 1.0
        for k in 0..<100_000 {
            let client = IPv4Address(rawValue: 0x6400_0000 | UInt32(truncatingIfNeeded: k &* 2_654_435_761) & 0xFF_FFFF)
            #expect(core.inbound(SYN, port: 1234, from: client, at: t).outcome == .created)
            t += 0.000_01
            if k % 10_000 == 5_000 {
                #expect(core.inbound(SYN, port: UInt16(2 + k / 10_000), at: t).outcome == .created)
                for j in 0..<50 {
                    _ = core.inbound(SYN, port: 999, from: IPv4Address(rawValue: 0x6500_0000 | UInt32(k + j)), at: t)
                }
                #expect(core.inbound(ACK, port: UInt16(2 + k / 10_000), at: t).state == .established)
                #expect(core.inbound(ACK, port: 1, at: t).outcome == .existing)
            }
            #expect(core.table.count <= 1024)
        }
        #expect(core.counters.refusedTableFull == 0)
        #expect(core.counters.evictedEmbryonic == core.counters.created - 1024)
        #expect(core.inbound(ACK, port: 1, at: t).state == .established)
    }

    /// A table full of ESTABLISHED connections: a new SYN is refused
    /// (`table-full`) as before, and nothing is evicted.
    @Test func establishedConnectionsAreNeverEvicted() {
        let core = directorCore(.dr) { $0.maxConnections = 64 }
        for p in UInt16(1)...64 {
            _ = core.inbound(SYN, port: p, at: 0)
            #expect(core.inbound(ACK, port: p, at: 0).state == .established)
        }
        for p in UInt16(100)..<200 { #expect(core.inbound(SYN, port: p, at: 1).outcome == .refused(.tableFull)) }
        #expect(core.counters.refusedTableFull == 100 && core.counters.evictedEmbryonic == 0 && core.table.count == 64)
        for p in UInt16(1)...64 { #expect(core.inbound(ACK, port: p, at: 2).outcome == .existing) }
        // One embryonic entry among them: that one is the one to go.
        _ = core.inbound(RST, port: 7, at: 3)                    // CLOSE (10 s)
        core.expire(now: .seconds(14))
        #expect(core.inbound(SYN, port: 300, at: 14).outcome == .created)
        #expect(core.inbound(SYN, port: 301, at: 14).outcome == .created)
        #expect(core.counters.evictedEmbryonic == 1 && core.table.count == 64)
        #expect(core.inbound(ACK, port: 301, at: 14).state == .established)
        #expect(core.inbound(ACK, port: 300, at: 14).outcome == .refused(.notSyn))
    }

    /// The element drops a refused SYN as `table-full` when only
    /// established connections fill the table.
    @Test func elementRefusesWhenOnlyEstablished() {
        let director = DE.director(.dr) { $0.core.maxConnections = 2 }
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        for sport: UInt16 in 1...2 {
            _ = driver.send(DE.fromClient(DE.syn, sport: sport).frame, on: PortID(0), at: .seconds(1))
            _ = driver.send(DE.fromClient(DE.ack, sport: sport).frame, on: PortID(0), at: .seconds(1))
        }
        #expect(driver.send(DE.fromClient(DE.syn, sport: 3).frame, on: PortID(0), at: .seconds(2)).verdict == .drop(.tableFull))
        #expect(director.drops.counts[.tableFull] == 1 && director.core.counters.evictedEmbryonic == 0)
    }
}
