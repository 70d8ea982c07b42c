import Testing
@testable import Datapath

/// The table's own invariants, checked against a Dictionary model.
@Suite struct DirectorConnectionTableTests {
    struct Key: Hashable {
        var client: UInt32
        var port: UInt16
    }

    static func entry(_ k: Key, expires: UInt64, realPort: UInt16 = 80, nat: Bool = true) -> ConnectionEntry {
        ConnectionEntry(proto: 6, clientAddress: k.client, clientPort: k.port, virtualAddress: 0x0A00_0064, virtualPort: 80,
                        realAddress: 0x0A00_0001, realPort: realPort, expires: expires)
    }

    @Test func entriesAreOneCacheLine() {
        #expect(MemoryLayout<ConnectionEntry>.stride == 64)
        let t = ConnectionTable(capacity: 1_000_000)
        #expect(t.indexSlots == 1 << 21)
        // 64 B entry + 2 × 2^21 × 8 B indices (+ 4 KiB wheel) per 10^6 entries.
        #expect(Double(t.allocatedBytes) / 1e6 < 128)
    }

    @Test func randomInsertsAndRemovesAgreeWithAModel() {
        // Small index and clustered keys so runs are long and backward-shift
        // deletion gets exercised hard.
        let t = ConnectionTable(capacity: 2000, seed: 3)
        var model: [Key: UInt32] = [:]
        var rng = SeededRandom(seed: 11)
        for step in 0..<60_000 {
            let k = Key(client: UInt32.random(in: 0..<64, using: &rng), port: UInt16.random(in: 0..<64, using: &rng))
            if let i = model[k] {
                #expect(t.findInbound(proto: 6, client: k.client, clientPort: k.port, virtual: 0x0A00_0064, virtualPort: 80) == i)
                #expect(t.findReply(proto: 6, real: 0x0A00_0001, realPort: 80, destination: k.client, destinationPort: k.port) == i)
                t.remove(i)
                model[k] = nil
            } else if model.count < t.capacity {
                #expect(t.findInbound(proto: 6, client: k.client, clientPort: k.port, virtual: 0x0A00_0064, virtualPort: 80) == nil)
                let i = t.insert(Self.entry(k, expires: 1 << 40), hashInbound: true, hashReply: true)!
                model[k] = i
            }
            if step % 5000 == 0 {
                #expect(t.count == model.count)
                for (k, i) in model {
                    #expect(t.findInbound(proto: 6, client: k.client, clientPort: k.port, virtual: 0x0A00_0064, virtualPort: 80) == i)
                    #expect(t.findReply(proto: 6, real: 0x0A00_0001, realPort: 80, destination: k.client, destinationPort: k.port) == i)
                }
                // Every index slot is reachable from its home without crossing an empty slot.
                for index in [t.inbound, t.reply] {
                    for pos in 0..<t.indexSlots where index[pos] != 0 {
                        var p = Int(UInt32(truncatingIfNeeded: index[pos] >> 32) >> t.indexShift)
                        while p != pos {
                            #expect(index[p] != 0)
                            p = (p + 1) & t.indexMask
                        }
                    }
                }
            }
        }
    }

    @Test func fillsToCapacityThenRefuses() {
        let t = ConnectionTable(capacity: 100)
        for n in 0..<100 { #expect(t.insert(Self.entry(Key(client: UInt32(n), port: 1), expires: 10)) != nil) }
        #expect(t.insert(Self.entry(Key(client: 1000, port: 1), expires: 10)) == nil)
        #expect(t.freeCount == 0)
        #expect(t.expire(now: Instant(nanoseconds: 10)) { _ in true } == 100)
        #expect(t.count == 0 && t.freeCount == 100)
        #expect(t.insert(Self.entry(Key(client: 1000, port: 1), expires: 10)) != nil)
    }

    @Test func theWheelFindsEveryDueEntryWhateverTheExpiryPattern() {
        let t = ConnectionTable(capacity: 20_000)
        var rng = SeededRandom(seed: 1234)
        var model: [UInt32: UInt64] = [:]
        var now: UInt64 = 0
        var nextClient: UInt32 = 0
        let second: UInt64 = 1_000_000_000
        for _ in 0..<40_000 {
            now += UInt64.random(in: 0...(second / 2), using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5 where model.count < t.capacity:
                // Anything from now to ~2 wheel spans ahead.
                let expires = now + UInt64.random(in: 1...(2400 * second), using: &rng)
                let i = t.insert(Self.entry(Key(client: nextClient, port: 1), expires: expires))!
                model[i] = expires
                nextClient += 1
            case 5..<8:
                if let i = model.keys.randomElement(using: &rng), model[i]! > now {
                    // Later or earlier, as packets and state changes move it.
                    let expires = now + UInt64.random(in: 1...(1000 * second), using: &rng)
                    t.setExpiry(i, expires)
                    model[i] = expires
                }
            case 8:
                if Int.random(in: 0..<20, using: &rng) == 0 { now += UInt64.random(in: 0...(3000 * second), using: &rng) }
            default:
                var visited = 0
                t.expire(now: Instant(nanoseconds: now)) { i in
                    #expect(model[i]! <= now)
                    visited += 1
                    return true
                }
                let due = model.filter { $0.value <= now }
                #expect(visited == due.count)
                model = model.filter { $0.value > now }
                #expect(t.count == model.count)
            }
        }
    }

    @Test func aKeptEntryIsVisitedAgainWhenItsNewTimeComes() {
        let t = ConnectionTable(capacity: 4)
        let i = t.insert(Self.entry(Key(client: 1, port: 1), expires: 5_000_000_000))!
        var visits = 0
        t.expire(now: .seconds(5)) { j in
            #expect(j == i)
            visits += 1
            t.setExpiry(j, Instant.seconds(20).nanoseconds)   // keep, later
            return false
        }
        #expect(visits == 1 && t.count == 1)
        t.expire(now: .seconds(19.9)) { _ in visits += 1; return true }
        #expect(visits == 1)
        t.expire(now: .seconds(20)) { _ in visits += 1; return true }
        #expect(visits == 2 && t.count == 0)
    }
}
