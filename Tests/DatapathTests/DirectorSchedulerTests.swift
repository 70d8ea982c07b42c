import Testing
import Wire
@testable import Datapath

/// Scheduler picks as tables: a service with given reals, the picks it must
/// make in order. Reals are 10.0.0.1, 10.0.0.2, … in the order given.
@Suite struct DirectorSchedulerTests {
    static let vip = IPv4Address(10, 0, 0, 100)

    static func service(_ kind: SchedulerKind, weights: [Int], enabled: [Bool]? = nil,
                        flags: SchedulerFlags = [], maglevSize: Int = 251) -> ServiceState {
        var s = ServiceState(config: VirtualService(address: vip, port: 80, scheduler: kind, schedulerFlags: flags,
                                                    maglevTableSize: maglevSize))
        for (i, w) in weights.enumerated() {
            s.reals.append(RealState(address: IPv4Address(10, 0, 0, UInt8(i + 1)), port: 80, weight: Int32(w),
                                     lastWeight: Int32(w), enabled: enabled?[i] ?? true))
            s.names.append("10.0.0.\(i + 1):80")
        }
        s.destinationsChanged()
        return s
    }

    static func picks(_ s: inout ServiceState, _ n: Int, source: UInt32 = 0x0B00_0001) -> [Int?] {
        (0..<n).map { _ in s.pick(source: source, sourcePort: 1234, destination: vip.rawValue) }
    }

    struct Row: CustomStringConvertible {
        var description: String
        var kind: SchedulerKind
        var weights: [Int]
        var enabled: [Bool]? = nil
        var expected: [Int?]
    }

    static let sequenceRows: [Row] = [
        Row(description: "rr cycles in order", kind: .rr, weights: [1, 1, 1], expected: [0, 1, 2, 0, 1, 2, 0]),
        Row(description: "rr ignores weights other than 0", kind: .rr, weights: [5, 1, 3], expected: [0, 1, 2, 0, 1, 2]),
        Row(description: "rr skips weight 0", kind: .rr, weights: [1, 0, 1], expected: [0, 2, 0, 2]),
        Row(description: "rr skips a disabled real", kind: .rr, weights: [1, 1, 1], enabled: [true, false, true], expected: [0, 2, 0, 2]),
        Row(description: "rr with nothing available", kind: .rr, weights: [0, 0], expected: [nil, nil]),
        // ip_vs_wrr with weights 4,3,2: cw walks 4,3,2,1 (gcd 1) → A A B A B C A B C, then again.
        Row(description: "wrr 4,3,2 is IPVS's interleaved sequence", kind: .wrr, weights: [4, 3, 2],
            expected: [0, 0, 1, 0, 1, 2, 0, 1, 2, 0, 0, 1, 0, 1, 2, 0, 1, 2]),
        // gcd 2: mw = 4 − (2 − 1) = 3, cw 3 then 1 → A, A B C per round.
        Row(description: "wrr 4,2,2 steps cw by the gcd", kind: .wrr, weights: [4, 2, 2],
            expected: [0, 0, 1, 2, 0, 0, 1, 2]),
        Row(description: "wrr 1,1,1 is round robin", kind: .wrr, weights: [1, 1, 1], expected: [0, 1, 2, 0, 1, 2]),
        Row(description: "wrr skips weight 0", kind: .wrr, weights: [2, 0, 1], expected: [0, 0, 2, 0, 0, 2]),
        Row(description: "wrr skips a disabled real", kind: .wrr, weights: [4, 3, 2], enabled: [true, false, true],
            expected: [0, 0, 2, 0, 0, 2, 0, 0, 2]),   // A 4 : C 2, gcd 2
        Row(description: "wrr with all weights 0", kind: .wrr, weights: [0, 0], expected: [nil, nil]),
    ]

    @Test(arguments: sequenceRows)
    func pickSequences(_ row: Row) {
        var s = Self.service(row.kind, weights: row.weights, enabled: row.enabled)
        #expect(Self.picks(&s, row.expected.count) == row.expected, "\(row.description)")
    }

    @Test func wrrSharesMatchWeightsOverManyPicks() {
        var s = Self.service(.wrr, weights: [5, 3, 1, 7])
        var counts = [0, 0, 0, 0]
        for p in Self.picks(&s, 16 * 100) { counts[p!] += 1 }
        #expect(counts == [500, 300, 100, 700])
    }

    @Test func wrrWeightChangeResetsLikeIPVS() {
        var s = Self.service(.wrr, weights: [4, 3, 2])
        _ = Self.picks(&s, 2)        // A A, cw = 3
        s.reals[2].weight = 6        // upd_dest: cl = head, mw = 6, cw (3) ≤ mw stays
        s.destinationsChanged()
        #expect(s.mw == 6 && s.cw == 3 && s.cursor == -1)
        #expect(Self.picks(&s, 4) == [0, 1, 2, 0])
    }

    struct CountRow: CustomStringConvertible {
        var description: String
        var kind: SchedulerKind
        var weights: [Int]
        var enabled: [Bool]? = nil
        /// (active, inactive) per real.
        var counts: [(Int32, Int32)]
        var expected: Int?
    }

    static let countRows: [CountRow] = [
        CountRow(description: "lc: fewest overhead wins", kind: .lc, weights: [1, 1, 1],
                 counts: [(2, 0), (1, 5), (1, 3)], expected: 2),
        CountRow(description: "lc: one active outweighs 255 inactive", kind: .lc, weights: [1, 1],
                 counts: [(1, 0), (0, 255)], expected: 1),
        CountRow(description: "lc: 256 inactive equal one active, first wins the tie", kind: .lc, weights: [1, 1],
                 counts: [(1, 0), (0, 256)], expected: 0),
        CountRow(description: "lc: ignores weights", kind: .lc, weights: [100, 1], counts: [(1, 0), (0, 0)], expected: 1),
        CountRow(description: "lc: skips weight 0", kind: .lc, weights: [0, 1], counts: [(0, 0), (9, 9)], expected: 1),
        CountRow(description: "lc: skips disabled", kind: .lc, weights: [1, 1], enabled: [false, true],
                 counts: [(0, 0), (9, 9)], expected: 1),
        CountRow(description: "lc: nothing available", kind: .lc, weights: [0, 0], counts: [(0, 0), (0, 0)], expected: nil),
        CountRow(description: "wlc: overhead per weight", kind: .wlc, weights: [1, 3],
                 counts: [(1, 0), (2, 0)], expected: 1),   // 256/1 vs 512/3
        CountRow(description: "wlc: heavier real takes more", kind: .wlc, weights: [1, 3],
                 counts: [(1, 0), (3, 0)], expected: 0),   // 256 vs 768/3 = 256: tie → first
        CountRow(description: "wlc: inactive count too", kind: .wlc, weights: [2, 2],
                 counts: [(1, 10), (1, 3)], expected: 1),
        CountRow(description: "wlc: skips weight 0", kind: .wlc, weights: [0, 5], counts: [(0, 0), (50, 0)], expected: 1),
        CountRow(description: "wlc: skips disabled", kind: .wlc, weights: [5, 5], enabled: [true, false],
                 counts: [(50, 0), (0, 0)], expected: 0),
    ]

    @Test(arguments: countRows)
    func leastConnectionPicks(_ row: CountRow) {
        var s = Self.service(row.kind, weights: row.weights, enabled: row.enabled)
        for (i, c) in row.counts.enumerated() {
            s.reals[i].active = c.0
            s.reals[i].inactive = c.1
        }
        #expect(s.pick(source: 1, sourcePort: 1, destination: Self.vip.rawValue) == row.expected, "\(row.description)")
    }

    @Test func shBucketsFollowWeights() {
        let s = Self.service(.sh, weights: [1, 2, 1])
        // ip_vs_sh_reassign: A, B, B, C, A, B, B, C, …
        #expect(Array(s.buckets.prefix(8)) == [0, 1, 1, 2, 0, 1, 1, 2])
        var counts = [0, 0, 0]
        for b in s.buckets { counts[Int(b)] += 1 }
        #expect(counts == [64, 128, 64])
    }

    @Test func shIsStablePerSourceAndSpreadsByWeight() {
        var s = Self.service(.sh, weights: [1, 2, 1])
        var counts = [0, 0, 0]
        var rng = SeededRandom(seed: 7)
        for _ in 0..<20_000 {
            let src = UInt32.random(in: 0...UInt32.max, using: &rng)
            let a = s.pick(source: src, sourcePort: 1, destination: 0)!
            let b = s.pick(source: src, sourcePort: 999, destination: 0)!
            #expect(a == b)   // port not hashed without sh-port
            counts[a] += 1
        }
        // Weight shares 1/4, 1/2, 1/4 within 2 points.
        #expect(abs(Double(counts[0]) / 20_000 - 0.25) < 0.02)
        #expect(abs(Double(counts[1]) / 20_000 - 0.50) < 0.02)
        #expect(abs(Double(counts[2]) / 20_000 - 0.25) < 0.02)
    }

    @Test func shPortFlagHashesThePort() {
        var s = Self.service(.sh, weights: [1, 1, 1, 1], flags: .port)
        let seen = Set((0..<64).map { s.pick(source: 0x0B00_0001, sourcePort: UInt16(40000 + $0), destination: 0)! })
        #expect(seen.count == 4)
    }

    @Test func shWeightZeroRefusesWithoutFallbackAndMovesWithIt() {
        var plain = Self.service(.sh, weights: [1, 0, 1])
        var fallback = Self.service(.sh, weights: [1, 0, 1], flags: .fallback)
        // Weight 0 keeps one bucket per cycle (ip_vs_sh_reassign), never picked.
        #expect(Array(plain.buckets.prefix(6)) == [0, 1, 2, 0, 1, 2])
        var refused = 0
        for src in UInt32(0)..<2000 {
            let p = plain.pick(source: src, sourcePort: 0, destination: 0)
            let f = fallback.pick(source: src, sourcePort: 0, destination: 0)
            #expect(p != 1 && f != 1)
            #expect(f != nil)
            if p == nil { refused += 1 } else { #expect(p == f) }
        }
        #expect(refused > 400 && refused < 900)   // ≈ 1/3 of sources
    }

    @Test func shDisabledRealLeavesTheTable() {
        let s = Self.service(.sh, weights: [1, 1, 1], enabled: [true, false, true])
        #expect(!s.buckets.contains(1))
        #expect(Array(s.buckets.prefix(4)) == [0, 2, 0, 2])
    }

    @Test func dhMapsEachDestinationToOneRealIgnoringWeights() {
        var s = Self.service(.dh, weights: [1, 5, 1])
        #expect(Array(s.buckets.prefix(6)) == [0, 1, 2, 0, 1, 2])
        var byReal = [0, 0, 0]
        for d in UInt32(0)..<3000 {
            let vip = 0x0A00_0000 | d
            let a = s.pick(source: 1, sourcePort: 1, destination: vip)!
            let b = s.pick(source: 99, sourcePort: 7, destination: vip)!
            #expect(a == b)   // the source does not matter
            byReal[a] += 1
        }
        #expect(byReal.allSatisfy { $0 > 800 })
        // Weight 0: its destinations are refused (no fallback in ip_vs_dh).
        s.reals[1].weight = 0
        s.destinationsChanged()
        let refused = (UInt32(0)..<3000).filter { s.pick(source: 1, sourcePort: 1, destination: 0x0A00_0000 | $0) == nil }
        #expect(refused.count > 800 && refused.count < 1200)
    }

    @Test func mhPicksFollowTheMaglevTable() {
        var s = Self.service(.mh, weights: [1, 1, 1, 1], maglevSize: 65537)
        var counts = [0, 0, 0, 0]
        for src in UInt32(0)..<40_000 {
            let r = s.pick(source: src, sourcePort: 0, destination: 0)!
            #expect(r == s.pick(source: src, sourcePort: 555, destination: 0))   // no mh-port: port ignored
            counts[r] += 1
        }
        #expect(counts.allSatisfy { abs(Double($0) / 40_000 - 0.25) < 0.02 })
    }

    /// mh-port: the source port enters the hash (ip_vs_mh_hashkey's
    /// port + address), so one client's connections spread, and the same
    /// (address, port) always lands on the same real.
    @Test func mhPortFlagHashesThePort() {
        var s = Self.service(.mh, weights: [1, 1, 1, 1], flags: .port, maglevSize: 4093)
        var counts = [0, 0, 0, 0]
        for port in UInt16(1024)..<9024 {
            let r = s.pick(source: 0x0B00_0001, sourcePort: port, destination: 0)!
            #expect(r == s.pick(source: 0x0B00_0001, sourcePort: port, destination: 0))
            counts[r] += 1
        }
        #expect(counts.allSatisfy { abs(Double($0) / 8000 - 0.25) < 0.03 }, "\(counts)")
    }

    /// mh-port and mh-fallback together: a port that hashed to a quiesced
    /// real moves, the others stay.
    @Test func mhPortWithFallback() {
        var plain = Self.service(.mh, weights: [1, 1, 1], flags: .port, maglevSize: 4093)
        var both = Self.service(.mh, weights: [1, 1, 1], flags: [.port, .fallback], maglevSize: 4093)
        for i in [0] { plain.reals[i].weight = 0; both.reals[i].weight = 0 }
        plain.destinationsChanged(); both.destinationsChanged()
        var moved = 0
        for port in UInt16(1024)..<4024 {
            let p = plain.pick(source: 0x0B00_0001, sourcePort: port, destination: 0)
            let q = both.pick(source: 0x0B00_0001, sourcePort: port, destination: 0)
            #expect(q != nil && q != 0)
            if let p { #expect(p == q) } else { moved += 1 }
        }
        #expect(moved > 800 && moved < 1200)   // ≈ 1/3 of the ports hashed to real 0
    }

    @Test func mhWeightZeroKeepsSlotsDisabledGivesThemAway() {
        var s = Self.service(.mh, weights: [1, 1, 1, 1], maglevSize: 4093)
        let before = s.maglev!.slots
        // Quiescent (weight 0): ip_vs_mh fills from last_weight, slots stay, picks there are refused.
        s.reals[2].weight = 0
        s.destinationsChanged()
        #expect(s.maglev!.slots == before)
        let sources = UInt32(0)..<4000
        let refused = sources.filter { s.pick(source: $0, sourcePort: 0, destination: 0) == nil }
        #expect(refused.count > 800 && refused.count < 1200)
        // With mh-fallback those sources go elsewhere, the others stay put.
        var f = Self.service(.mh, weights: [1, 1, 1, 1], flags: .fallback, maglevSize: 4093)
        f.reals[2].weight = 0
        f.destinationsChanged()
        for src in sources {
            let p = s.pick(source: src, sourcePort: 0, destination: 0)
            let q = f.pick(source: src, sourcePort: 0, destination: 0)
            #expect(q != nil && q != 2)
            if let p { #expect(p == q) }
        }
        // Disabled (health): out of the list, table rebuilt without it.
        s.reals[2].weight = 1
        s.reals[1].enabled = false
        s.destinationsChanged()
        #expect(!s.maglev!.slots.contains(1))
        #expect(sources.allSatisfy { s.pick(source: $0, sourcePort: 0, destination: 0) != nil })
    }
}
