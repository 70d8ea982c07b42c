import Foundation
import Testing
import Wire
@testable import Datapath

// Connection sync between two directors A and B configured alike (the same
// services, sync group 17 on eth0), on the injected clock: A schedules
// connections in every mode, A's sync frames are handed to B, B's table
// holds them with A's state and remaining time, and B forwards a
// mid-connection packet of each exactly as A would.

enum SyncFixture {
    static let aMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    static let bMAC = MACAddress(0x02, 0, 0, 0, 0, 0x04)
    static let a = IPv4Address(10, 0, 0, 2)
    static let b = IPv4Address(10, 0, 0, 4)
    static let dr = IPv4Address(10, 0, 0, 100)
    static let tun = IPv4Address(10, 0, 0, 101)
    static let nat = IPv4Address(10, 0, 0, 102)
    static let fullnat = IPv4Address(10, 0, 0, 103)
    static let persistent = IPv4Address(10, 0, 0, 104)
    static let vips: [(IPv4Address, ForwardingMode)] = [(dr, .dr), (tun, .tun), (nat, .nat), (fullnat, .fullnat),
                                                         (persistent, .dr)]

    /// A director at `address`/`mac` with the five services; sync group
    /// `group` on port 0 unless nil.
    static func director(_ address: IPv4Address, _ mac: MACAddress, group: UInt8? = 17,
                         services: [(IPv4Address, ForwardingMode)] = vips) -> Director {
        var c = Director.Configuration(
            interfaces: [Director.Interface(name: "eth0", mac: mac, addresses: [IPv4Prefix(address: address, length: 24)],
                                            mtu: 1500)],
            routes: [.defaultRoute(via: DE.gw)],
            services: services.map { vip, mode in
                Director.Service(VirtualService(address: vip, port: 80, scheduler: .rr, mode: mode,
                                                persistence: vip == persistent ? Persistence(timeout: 300) : nil,
                                                localAddresses: mode == .fullnat ? [DE.local] : []),
                                 reals: [RealServer(address: DE.rs1), RealServer(address: DE.rs2)])
            })
        c.core.maxConnections = 1024
        if let group { c.sync = SyncConfiguration(syncID: group, port: PortID(0)) }
        return try! Director(configuration: c)
    }

    /// The gateway and the reals ask for `address`, so the director learns them.
    static func learn(_ driver: ElementDriver, _ address: IPv4Address) {
        for (mac, ip) in [(DE.gwMAC, DE.gw), (DE.rs1MAC, DE.rs1), (DE.rs2MAC, DE.rs2)] {
            _ = driver.send(DE.arp(.request, from: mac, ip, asking: address), on: PortID(0), at: .seconds(0))
        }
    }

    static func isSync(_ frame: [UInt8]) -> Bool { frame.count > 6 && Array(frame[0..<6]) == DE.mac(IPVSSync.groupMAC) }

    /// A client segment to `vip`:80 addressed to `mac`.
    static func segment(_ flags: UInt8, to vip: IPv4Address, mac: MACAddress, sport: UInt16 = 40000,
                        payload: [UInt8] = []) -> [UInt8] {
        DE.tcp(DE.gwMAC, mac, DE.client, sport, vip, 80, flags, seq: flags & DE.syn != 0 ? 1000 : 1001,
               ack: flags & DE.ack != 0 ? 5001 : 0, payload: payload).frame
    }

    /// (dst MAC, src IP, dst IP, src port, dst port) of a forwarded frame;
    /// for IPIP the outer destination and the inner addresses and ports.
    static func rewrite(_ frame: [UInt8]) -> String {
        frame.withUnsafeBytes { b -> String in
            guard let p = try? FrameParser().parse(b) else { return "unparsable" }
            if p.protocol == .ipip {
                // The inner datagram behind the same Ethernet header.
                let innerFrame = Array(frame[0..<14]) + Array(frame[34...])
                return "ipip to \(p.destinationIPv4) via \(p.destinationMAC): " + rewrite(innerFrame)
            }
            return "\(p.destinationMAC) \(p.sourceIPv4):\(p.sourcePort) → \(p.destinationIPv4):\(p.destinationPort)"
        }
    }

    /// Wraps a sync payload in Ethernet/IPv4/UDP from `source`, checksums right.
    static func syncFrame(_ payload: [UInt8], from source: IPv4Address = a, mac: MACAddress = aMAC) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 42 + payload.count)
        frame.withUnsafeMutableBytes { b in
            EthernetRepr(destination: IPVSSync.groupMAC, source: mac, etherType: .ipv4)
                .emit(into: EthernetMutableHeader(unchecked: b))
            for (k, v) in payload.enumerated() { b[42 + k] = v }
            IPv4Repr(sourceAddress: source, destinationAddress: IPVSSync.group, protocol: .udp,
                     payloadLength: 8 + payload.count, timeToLive: 1)
                .emit(into: IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[14...])))
            UDPRepr(sourcePort: 8848, destinationPort: 8848, payloadLength: payload.count)
                .emit(into: UDPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[34...])),
                      pseudoHeader: .ipv4(source: source, destination: IPVSSync.group))
        }
        return frame
    }

    /// One sync message holding `entries`.
    static func message(_ entries: [IPVSSyncEntry], syncID: UInt8 = 17) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 1472)
        let n = bytes.withUnsafeMutableBytes { b -> Int in
            var w = IPVSSyncWriter(into: b, syncID: syncID)
            for e in entries { precondition(w.append(e)) }
            return w.length
        }
        return Array(bytes[0..<n])
    }
}

@Suite struct DirectorSyncTests {
    typealias F = SyncFixture

    /// A's connections in all four modes and a persistent service reach B,
    /// which then carries each on to the same real with the same rewrite;
    /// a FIN on A reaches B; B's entries expire when A's would.
    @Test func standbyContinuesEveryModeAfterTakeover() throws {
        let dirA = F.director(F.a, F.aMAC), dirB = F.director(F.b, F.bMAC)
        let a = ElementDriver(dirA), b = ElementDriver(dirB)
        F.learn(a, F.a)
        F.learn(b, F.b)

        // Handshakes through A at t = 1 s; the first flow of every service
        // goes to rs1 (rr), so a second client flow makes the persistent
        // one's choice visible: it must stay on the template's real.
        var syncFrames: [[UInt8]] = []
        var onA: [String: String] = [:]
        let data = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        for (k, (vip, _)) in F.vips.enumerated() {
            if k == 1 {
                #expect(syncFrames.isEmpty, "a message waits for its flush deadline (20 ms) or a full MTU")
                #expect(dirA.syncNextFlush == .seconds(1.02), "the deadline is 20 ms after the first entry")
            }
            for sport: UInt16 in [40000, 40001] {
                for flags in [DE.syn, DE.ack] {
                    let out = a.send(F.segment(flags, to: vip, mac: F.aMAC, sport: sport), on: PortID(0), at: .seconds(1))
                    #expect(out.verdict == .forward(PortID(0)), "\(vip) \(flags) on A")
                    syncFrames += out.emitted.map(\.frame).filter(F.isSync)
                }
                let mid = a.send(F.segment(DE.psh | DE.ack, to: vip, mac: F.aMAC, sport: sport, payload: data),
                                 on: PortID(0), at: .seconds(1.001))
                onA["\(vip):\(sport)"] = F.rewrite(mid.frame)
                syncFrames += mid.emitted.map(\.frame).filter(F.isSync)
            }
        }
        // FULLNAT entries close their message at once (the extension entry is a message's last).
        #expect(syncFrames.count == 4)
        #expect(dirA.syncNextFlush == .seconds(1.02), "the persistent service's entries wait for their deadline")
        syncFrames += a.tick(at: .seconds(1.021)).map(\.frame).filter(F.isSync)
        #expect(!syncFrames.isEmpty && dirA.syncNextFlush == nil)
        // 10 connections (SYN_RECV, then ESTABLISHED: 2 entries each) + 1 template.
        #expect(dirA.syncCounters.entriesSent == 21)
        #expect(dirA.syncCounters.messagesSent == UInt64(syncFrames.count))

        for f in syncFrames {
            let out = b.send(f, on: PortID(0), at: .seconds(1.03))
            #expect(out.verdict == .consumed)
            #expect(out.emitted.isEmpty, "installing sends nothing back")
        }
        let counters = dirB.syncCounters
        #expect(counters.messagesReceived == UInt64(syncFrames.count))
        #expect(counters.installed == 11 && counters.updated == 10 && counters.ignored.isEmpty, "\(counters)")
        #expect(dirB.syncCounters.entriesSent == 0)

        // B's table: A's connections, ESTABLISHED, the same real and
        // (FULLNAT) local address:port, expiring when A's do.
        let now = Instant.seconds(1.03)
        let aConns = dirA.connections(now: now), bConns = dirB.connections(now: now)
        #expect(bConns.count == aConns.count && bConns.count == 11)
        for c in aConns {
            let match = bConns.first { $0.client == c.client && $0.clientPort == c.clientPort && $0.virtual == c.virtual
                && $0.isTemplate == c.isTemplate }
            guard let m = match else { Issue.record("B lacks \(c)"); continue }
            #expect(m.state == c.state && m.real == c.real && m.realPort == c.realPort)
            #expect(m.local == c.local && m.localPort == c.localPort)
            #expect(m.isSynced && !c.isSynced)
            #expect(abs(m.expiresIn - c.expiresIn) < 1.05, "\(m.expiresIn) vs \(c.expiresIn)")
        }
        #expect(aConns.filter { !$0.isTemplate }.allSatisfy { $0.state == .established })

        // Takeover: B gets the next segment of every connection and sends it
        // where A sent the previous one.
        for (vip, _) in F.vips {
            for sport: UInt16 in [40000, 40001] {
                let out = b.send(F.segment(DE.psh | DE.ack, to: vip, mac: F.bMAC, sport: sport, payload: data),
                                 on: PortID(0), at: .seconds(2))
                #expect(out.verdict == .forward(PortID(0)), "\(vip):\(sport) on B")
                #expect(F.rewrite(out.frame) == onA["\(vip):\(sport)"], "\(vip):\(sport)")
            }
        }
        // The persistent service: a new client flow on B follows the synced template.
        let pinned = try #require(aConns.first { $0.isTemplate })
        let fresh = b.send(F.segment(DE.syn, to: F.persistent, mac: F.bMAC, sport: 41000), on: PortID(0), at: .seconds(2))
        #expect(fresh.verdict == .forward(PortID(0)))
        #expect(F.rewrite(fresh.frame).hasPrefix(pinned.real == DE.rs1 ? "\(DE.rs1MAC)" : "\(DE.rs2MAC)"))

        // A FIN on A is synced: B's copy moves to A's state and timeout.
        let fin = a.send(F.segment(DE.fin | DE.ack, to: F.dr, mac: F.aMAC), on: PortID(0), at: .seconds(3))
        #expect(fin.verdict == .forward(PortID(0)))
        let finFrames = a.tick(at: .seconds(3.05)).map(\.frame).filter(F.isSync)
        #expect(finFrames.count == 1)
        for f in finFrames { _ = b.send(f, on: PortID(0), at: .seconds(3.06)) }
        let aFin = try #require(dirA.connections(now: .seconds(3.06)).first { $0.virtual == F.dr && $0.clientPort == 40000 })
        let bFin = try #require(dirB.connections(now: .seconds(3.06)).first { $0.virtual == F.dr && $0.clientPort == 40000 })
        #expect(aFin.state != .established && bFin.state == aFin.state)
        #expect(abs(bFin.expiresIn - aFin.expiresIn) < 1.05)

        // B's copy expires as A's does, not before.
        let expiry = 3.06 + bFin.expiresIn
        _ = b.tick(at: .seconds(expiry - 1.1))
        #expect(dirB.connections(now: .seconds(expiry - 1.1)).contains { $0.virtual == F.dr && $0.clientPort == 40000 })
        _ = b.tick(at: .seconds(expiry + 1.1))
        #expect(!dirB.connections(now: .seconds(expiry + 1.1)).contains { $0.virtual == F.dr && $0.clientPort == 40000 })
    }

    /// Without sync the standby has no entry: the mid-connection segment is
    /// dropped, in every mode (no `sloppy`).
    @Test func withoutSyncTheStandbyDropsMidConnectionPackets() {
        let a = ElementDriver(F.director(F.a, F.aMAC, group: nil))
        let b = ElementDriver(F.director(F.b, F.bMAC, group: nil))
        F.learn(a, F.a)
        F.learn(b, F.b)
        for (vip, mode) in F.vips {
            for flags in [DE.syn, DE.ack] {
                let out = a.send(F.segment(flags, to: vip, mac: F.aMAC), on: PortID(0), at: .seconds(1))
                #expect(out.verdict == .forward(PortID(0)) && !out.emitted.contains { F.isSync($0.frame) }, "\(mode)")
            }
            let out = b.send(F.segment(DE.psh | DE.ack, to: vip, mac: F.bMAC, payload: [1]), on: PortID(0), at: .seconds(2))
            #expect(out.verdict == .drop(Refusal.notSyn.dropReason), "\(mode)")
        }
        #expect(a.tick(at: .seconds(2)).filter { F.isSync($0.frame) }.isEmpty)
    }

    /// Frames of another group, our own, and malformed ones are dropped by
    /// reason; entries B cannot use are ignored by reason.
    @Test func foreignOwnAndMalformedMessages() {
        let dirA = F.director(F.a, F.aMAC)
        let a = ElementDriver(dirA)
        F.learn(a, F.a)
        let entry = IPVSSyncEntry(protocol: .tcp, flags: IPVSSync.Flag.directRoute, state: IPVSSync.TCPState.established,
                                  clientAddress: DE.client, clientPort: 1234, virtualAddress: F.dr, virtualPort: 80,
                                  destinationAddress: DE.rs2, destinationPort: 80, timeout: 900)
        let good = F.message([entry])
        let otherGroup = F.syncFrame(F.message([entry], syncID: 18), from: F.b, mac: F.bMAC)
        #expect(a.send(otherGroup, on: PortID(0), at: .seconds(1)).verdict == .drop(Director.SyncDrop.otherGroup))
        #expect(a.send(F.syncFrame(good, from: F.a), on: PortID(0), at: .seconds(1)).verdict == .drop(Director.SyncDrop.own))

        var v0 = good; v0[5] = 0
        var reserved = good; reserved[0] = 1
        var size = good; size[3] &+= 4
        var entrySize = good; entrySize[8 + 3] = 200
        var ipv6 = good; ipv6[8] = 1
        var optionZero = F.message([entry]); optionZero += [0x48, 0, 0, 0]
        optionZero[3] = UInt8(optionZero.count); optionZero[8 + 3] = 40
        let cases: [([UInt8], WireError)] = [
            (Array(good[0..<6]), .truncated), (v0, .badVersion), (reserved, .badVersion), (size, .badLength),
            (entrySize, .badLength), (ipv6, .unsupported), (optionZero, .badLength),
        ]
        for (payload, error) in cases {
            let out = a.send(F.syncFrame(payload, from: F.b, mac: F.bMAC), on: PortID(0), at: .seconds(1))
            #expect(out.verdict == .drop(Director.SyncDrop.malformed(error)), "\(error)")
        }
        var badSum = F.syncFrame(good, from: F.b, mac: F.bMAC); badSum[40] ^= 0xff
        #expect(a.send(badSum, on: PortID(0), at: .seconds(1)).verdict == .drop(Director.SyncDrop.malformed(.badChecksum)))
        #expect(dirA.syncCounters.messagesReceived == 0 && dirA.connections(now: .seconds(1)).isEmpty)

        // Entries it cannot use, each counted; the good one is installed.
        func with(_ change: (inout IPVSSyncEntry) -> Void) -> IPVSSyncEntry { var e = entry; change(&e); return e }
        let mixed = F.message([
            with { $0.virtualPort = 81 },                                   // no-service
            with { $0.destinationAddress = IPv4Address(10, 0, 0, 9) },      // no-real
            with { $0.flags = IPVSSync.Flag.masquerade },                   // mode-mismatch
            with { $0.state = 11 },                                         // bad-state
            with { $0.protocol = .icmp },                                   // protocol
            with { $0.virtualAddress = F.fullnat; $0.flags = IPVSSync.Flag.fullnat },  // no extension
            entry,
        ])
        #expect(a.send(F.syncFrame(mixed, from: F.b, mac: F.bMAC), on: PortID(0), at: .seconds(1)).verdict == .consumed)
        let c = dirA.syncCounters
        #expect(c.entriesReceived == 7 && c.installed == 1)
        #expect(c.ignored == [.noService: 1, .noReal: 1, .mode: 1, .state: 1, .proto: 1, .localAddress: 1], "\(c.ignored)")
        let conn = dirA.connections(now: .seconds(1))
        #expect(conn.count == 1 && conn[0].real == DE.rs2 && conn[0].state == .established && conn[0].isSynced)
        #expect(dirA.drops.counts[Director.SyncDrop.otherGroup] == 1 && dirA.drops.counts[Director.SyncDrop.own] == 1)
    }

    /// FULLNAT: a synced local port is taken out of the standby's pool, so
    /// the standby never hands it to a connection of its own.
    @Test func syncedLocalPortIsReserved() {
        let dir = F.director(F.b, F.bMAC, services: [(F.fullnat, .fullnat)])
        let b = ElementDriver(dir)
        F.learn(b, F.b)
        // The pool hands out 1024 first: claim it by sync.
        let entry = IPVSSyncEntry(protocol: .tcp, flags: IPVSSync.Flag.fullnat, state: IPVSSync.TCPState.established,
                                  clientAddress: DE.client, clientPort: 1234, virtualAddress: F.fullnat, virtualPort: 80,
                                  destinationAddress: DE.rs1, destinationPort: 80, timeout: 900,
                                  fullnatLocal: .init(address: DE.local, port: 1024))
        #expect(b.send(F.syncFrame(F.message([entry])), on: PortID(0), at: .seconds(1)).verdict == .consumed)
        #expect(dir.syncCounters.installed == 1)
        let out = b.send(F.segment(DE.syn, to: F.fullnat, mac: F.bMAC, sport: 5555), on: PortID(0), at: .seconds(1))
        #expect(out.verdict == .forward(PortID(0)))
        let own = dir.connections(now: .seconds(1)).first { $0.clientPort == 5555 }
        #expect(own?.local == DE.local && own?.localPort != 1024)
        // The same port again from the peer, for another client: refused.
        var clash = entry; clash.clientPort = 999
        _ = b.send(F.syncFrame(F.message([clash])), on: PortID(0), at: .seconds(1))
        #expect(dir.syncCounters.ignored[.localPortInUse] == 1)
    }

    /// Many connections at once: messages fill up to the MTU (1500 − 28
    /// bytes: 40 entries of 36 bytes), leave as soon as they are full, and
    /// a FULLNAT entry (with the extension) is the last of its message.
    @Test func messagesFillToTheMTU() throws {
        let dir = F.director(F.a, F.aMAC)
        let a = ElementDriver(dir)
        F.learn(a, F.a)
        var frames: [[UInt8]] = []
        for sport in 0..<100 {
            let out = a.send(F.segment(DE.syn, to: F.dr, mac: F.aMAC, sport: UInt16(20000 + sport)), on: PortID(0),
                             at: .seconds(1))
            frames += out.emitted.map(\.frame).filter(F.isSync)
        }
        #expect(frames.count == 2, "two full messages of 40 left at once")
        #expect(frames.allSatisfy { $0.count == 14 + 20 + 8 + 8 + 40 * 36 })
        for sport in 0..<3 {
            let out = a.send(F.segment(DE.syn, to: F.fullnat, mac: F.aMAC, sport: UInt16(30000 + sport)), on: PortID(0),
                             at: .seconds(1))
            frames += out.emitted.map(\.frame).filter(F.isSync)
        }
        frames += a.tick(at: .seconds(1.1)).map(\.frame).filter(F.isSync)
        // The open message (20 DR entries) closes with the first FULLNAT entry; then one message each.
        #expect(frames.count == 5)
        var entries = 0
        for f in frames {
            try f.withUnsafeBytes { b in
                let m = try IPVSSyncMessage(validating: b.wireSlice(42..<b.count))
                var k = 0
                try m.forEachEntry { e in
                    k += 1
                    entries += 1
                    if e.fullnatLocal != nil { #expect(k == m.count, "the extension entry is the last") }
                }
            }
        }
        #expect(entries == 103 && dir.syncCounters.entriesSent == 103)
    }

    /// The refresh rule: a packet that changes nothing is not sent again
    /// until half the state's timeout (ESTABLISHED: 450 s) has passed.
    @Test func longLivedEntriesAreRefreshedAtHalfTheirTimeout() {
        let dir = F.director(F.a, F.aMAC)
        let a = ElementDriver(dir)
        F.learn(a, F.a)
        _ = a.send(F.segment(DE.syn, to: F.dr, mac: F.aMAC), on: PortID(0), at: .seconds(1))
        _ = a.send(F.segment(DE.ack, to: F.dr, mac: F.aMAC), on: PortID(0), at: .seconds(1))
        #expect(dir.syncCounters.entriesSent == 2)
        var t = 1.0
        while t < 440 {
            t += 10
            _ = a.send(F.segment(DE.ack, to: F.dr, mac: F.aMAC), on: PortID(0), at: .seconds(t))
            _ = a.tick(at: .seconds(t))
        }
        #expect(dir.syncCounters.entriesSent == 2, "no refresh before half the timeout")
        t += 20
        _ = a.send(F.segment(DE.ack, to: F.dr, mac: F.aMAC), on: PortID(0), at: .seconds(t))
        #expect(dir.syncCounters.entriesSent == 3, "refreshed after half the timeout")
    }

    /// The role switch: with sending off the director still installs, but queues nothing.
    @Test func sendingSwitch() {
        let dir = F.director(F.a, F.aMAC)
        dir.syncSending = false
        let a = ElementDriver(dir)
        F.learn(a, F.a)
        _ = a.send(F.segment(DE.syn, to: F.dr, mac: F.aMAC), on: PortID(0), at: .seconds(1))
        #expect(dir.syncCounters.entriesSent == 0 && dir.syncNextFlush == nil)
        dir.syncSending = true
        _ = a.send(F.segment(DE.ack, to: F.dr, mac: F.aMAC), on: PortID(0), at: .seconds(1))
        #expect(dir.syncCounters.entriesSent == 1)
    }
}

/// tshark's `ipvs` dissector (UDP 8848 by default) decodes what the
/// director sends: sync id, count, every entry's fields, with no malformed
/// or expert mark — FULLNAT entries with the extension included (each the
/// last of its message, so the dissector's fixed 36-byte stride stays right;
/// the extension's 8 bytes show as nothing, undissected).
@Suite struct DirectorSyncTsharkTests {
    typealias F = SyncFixture

    @Test func tsharkDecodesTheDirectorsMessages() throws {
        guard let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            Issue.record("tshark not found (scripts/install-deps.sh installs it)")
            return
        }
        let dir = F.director(F.a, F.aMAC)
        let a = ElementDriver(dir)
        F.learn(a, F.a)
        var frames: [[UInt8]] = []
        for (vip, _) in F.vips {
            for sport: UInt16 in [40000, 40001] {
                for flags in [DE.syn, DE.ack] {
                    frames += a.send(F.segment(flags, to: vip, mac: F.aMAC, sport: sport), on: PortID(0), at: .seconds(1))
                        .emitted.map(\.frame).filter(F.isSync)
                }
            }
        }
        frames += a.tick(at: .seconds(2)).map(\.frame).filter(F.isSync)
        #expect(frames.count >= 5)

        // What each frame carries, by our own parser (checked against the
        // table by the element tests), as tshark prints it.
        var expected: [[String: String]] = []
        for f in frames {
            var rows: [String: [String]] = [:]
            var header: (UInt8, Int, Int) = (0, 0, 0)
            try f.withUnsafeBytes { b in
                let m = try IPVSSyncMessage(validating: b.wireSlice(42..<b.count))
                header = (m.syncID, m.size, m.count)
                try m.forEachEntry { e in
                    rows["ipvs.caddr", default: []].append("\(e.clientAddress)")
                    rows["ipvs.vaddr", default: []].append("\(e.virtualAddress)")
                    rows["ipvs.daddr", default: []].append("\(e.destinationAddress)")
                    rows["ipvs.cport", default: []].append("\(e.clientPort)")
                    rows["ipvs.vport", default: []].append("\(e.virtualPort)")
                    rows["ipvs.dport", default: []].append("\(e.destinationPort)")
                    rows["ipvs.timeout", default: []].append("\(e.timeout)")
                    rows["ipvs.flags.v1"] = (rows["ipvs.flags.v1"] ?? []) + ["0x" + String(format: "%08x", e.flags)]
                    rows["ipvs.proto"] = (rows["ipvs.proto"] ?? []) + ["0x" + String(format: "%02x", e.protocol.rawValue)]
                    rows["ipvs.state"] = (rows["ipvs.state"] ?? []) + ["0x" + String(format: "%04x", e.state)]
                }
            }
            var row = rows.mapValues { $0.joined(separator: ";") }
            row["ipvs.syncid"] = "\(header.0)"
            row["ipvs.size"] = "\(header.1)"
            row["ipvs.conncount"] = "\(header.2)"
            row["ipvs.version"] = "1"
            row["ip.ttl"] = "1"
            row["ip.dst"] = "224.0.0.81"
            row["ip.src"] = "\(F.a)"
            row["udp.checksum.status"] = "1"
            row["_ws.malformed"] = ""
            row["_ws.expert"] = ""
            expected.append(row)
        }
        #expect(expected.contains { ($0["ipvs.flags.v1"] ?? "").contains("0x00000005") }, "a FULLNAT entry is among them")
        #expect(expected.contains { ($0["ipvs.flags.v1"] ?? "").contains("0x00001003") }, "a template is among them")

        var writer = PcapNGWriter(application: "wirelab sync test", comment: "director sync frames")
        let interface = writer.addInterface(name: "eth0")
        for (i, f) in frames.enumerated() { writer.writePacket(f, interface: interface, timestamp: 1_700_000_000_000_000_000 + UInt64(i) * 1000) }
        // SYNC_KEEP=/tmp/sync.pcapng keeps the capture (docs/ipvs-sync.md shows it).
        let keep = ProcessInfo.processInfo.environment["SYNC_KEEP"]
        let file = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-sync-\(UUID().uuidString).pcapng").path
        try Data(writer.bytes).write(to: URL(fileURLWithPath: file))
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: file) } }

        let fields = expected[0].keys.sorted()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tshark)
        process.arguments = ["-n", "-r", file, "-T", "fields", "-E", "separator=,", "-E", "aggregator=;", "-E", "occurrence=a",
                             "-o", "udp.check_checksum:TRUE"] + fields.flatMap { ["-e", $0] }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.count == frames.count)
        for (i, line) in lines.enumerated() where i < expected.count {
            let values = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard values.count == fields.count else { Issue.record("frame \(i + 1): \(line)"); continue }
            for (k, field) in fields.enumerated() {
                #expect(values[k] == expected[i][field], "frame \(i + 1) \(field)")
            }
        }
    }
}

extension DirectorSyncTests {
    /// With sync on, established flows in a loop (the run loop's view, one
    /// reused buffer and emitter) send nothing: no state changes and no
    /// refresh due, so the packet path only compares a stamp.
    @Test(arguments: ForwardingMode.allCases)
    func steadyStateSendsNothing(_ mode: ForwardingMode) {
        let vip = F.vips.first { $0.1 == mode }!.0
        let dir = F.director(F.a, F.aMAC)
        let a = ElementDriver(dir)
        F.learn(a, F.a)
        var frames: [[UInt8]] = []
        for sport: UInt16 in 40000..<40016 {
            _ = a.send(F.segment(DE.syn, to: vip, mac: F.aMAC, sport: sport), on: PortID(0), at: .seconds(1))
            let ack = F.segment(DE.ack, to: vip, mac: F.aMAC, sport: sport, payload: [UInt8](repeating: 0x41, count: 100))
            _ = a.send(ack, on: PortID(0), at: .seconds(1))
            frames.append(ack)
        }
        _ = a.tick(at: .seconds(1.5))
        let sent = dir.syncCounters.entriesSent
        #expect(sent == 32 && dir.syncNextFlush == nil)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ElementDriver.bufferSize, alignment: 64)
        defer { buffer.deallocate() }
        var emitter = Emitter(slots: 8)
        var forwarded = 0
        for round in 0..<2_000 {
            let now = Instant.seconds(2).adding(nanoseconds: UInt64(round) * 1000)
            for frame in frames {
                frame.withUnsafeBytes { (buffer + ElementDriver.headroom).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                var packet = PacketBuffer(base: buffer, capacity: ElementDriver.bufferSize, offset: ElementDriver.headroom,
                                          length: frame.count)
                if case .forward = dir.process(&packet, from: PortID(0), now: now, emit: &emitter) { forwarded += 1 }
            }
        }
        #expect(forwarded == 2_000 * frames.count)
        #expect(emitter.count == 0 && dir.syncCounters.entriesSent == sent && dir.syncNextFlush == nil)
    }
}

extension DirectorSyncTests {
    /// When the run loop cannot take frames (the emitter is full), full
    /// messages wait in the sender's slots (8: 7 full and the open one);
    /// entries beyond are counted as dropped, and the waiting messages
    /// leave once the emitter has room.
    @Test func fullSlotsDropEntriesAndCountThem() {
        let dir = F.director(F.a, F.aMAC, services: [(F.fullnat, .fullnat)])
        let a = ElementDriver(dir)
        F.learn(a, F.a)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ElementDriver.bufferSize, alignment: 64)
        defer { buffer.deallocate() }
        var emitter = Emitter(slots: 1)
        emitter.emit(on: PortID(0), copying: UnsafeRawBufferPointer(start: buffer, count: 60))   // the only slot taken
        for sport in 0..<12 {
            let frame = F.segment(DE.syn, to: F.fullnat, mac: F.aMAC, sport: UInt16(30000 + sport))
            frame.withUnsafeBytes { (buffer + ElementDriver.headroom).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            var packet = PacketBuffer(base: buffer, capacity: ElementDriver.bufferSize, offset: ElementDriver.headroom,
                                      length: frame.count)
            _ = dir.process(&packet, from: PortID(0), now: .seconds(1), emit: &emitter)
        }
        // Each FULLNAT entry closes its message: 7 wait, the 8th slot holds the open one.
        #expect(dir.syncCounters.entriesSent == 8 && dir.syncCounters.entriesDropped == 4)
        #expect(dir.syncCounters.messagesSent == 7 && emitter.count == 1)
        #expect(dir.syncNextFlush == .seconds(1), "full messages wait: tick at once")
        let sent = a.tick(at: .seconds(1.1)).filter { F.isSync($0.frame) }
        #expect(sent.count == 8 && dir.syncCounters.messagesSent == 8 && dir.syncNextFlush == nil)
    }
}
