import Testing
import Wire
@testable import Datapath

/// MACTable against a Dictionary doing the same operations: random learns
/// (new, refreshed, moved), removals by predicate (aging, port flush) that
/// exercise backward-shift deletion in long probe runs, and a full table.
@Suite struct MACTableTests {
    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return s
        }
    }

    @Test func matchesADictionaryUnderRandomLearningAndRemoval() {
        var table = MACTable(capacity: 300)
        var model: [MACAddress: (port: PortID, seen: UInt64)] = [:]
        var rng = Rng(s: 0x1234_5678_9ABC_DEF1)
        // A small MAC space makes collisions, moves and refreshes common.
        let macs = (0..<400).map { _ in MACAddress(rawValue: 0x0200_0000_0000 | (rng.next() & 0xFFFF)) }
        for step in 0..<20_000 {
            let mac = macs[Int(rng.next() % UInt64(macs.count))]
            let port = PortID(Int(rng.next() % 4))
            let now = UInt64(step)
            let result = table.learn(mac, on: port, now: Instant(nanoseconds: now))
            if let old = model[mac] {
                #expect(result == (old.port == port ? .refreshed : .moved))
                model[mac] = (port, now)
            } else if model.count < 300 {
                #expect(result == .added)
                model[mac] = (port, now)
            } else {
                #expect(result == .full)
            }
            if step % 997 == 0 {
                // Age out everything older than 500 steps.
                let removed = table.removeAll { _, seen in now &- seen >= 500 }
                let before = model.count
                model = model.filter { now &- $0.value.seen < 500 }
                #expect(removed == before - model.count)
            }
            if step % 4001 == 0 {
                let flushed = PortID(Int(rng.next() % 4))
                table.removeAll { p, _ in p == flushed }
                model = model.filter { $0.value.port != flushed }
            }
        }
        #expect(table.count == model.count)
        for mac in macs {
            let entry = table[mac]
            if let m = model[mac] {
                #expect(entry?.port == m.port && entry?.lastSeen.nanoseconds == m.seen)
            } else {
                #expect(entry == nil)
            }
        }
        #expect(table.entries.count == model.count)
    }
}
