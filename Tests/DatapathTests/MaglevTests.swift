import Testing
@testable import Datapath

/// Maglev table properties at the paper's size (M = 65537).
@Suite struct MaglevTests {
    static let m = 65537
    static func names(_ n: Int) -> [String] { (0..<n).map { "backend-\($0)" } }

    @Test func equalWeightsGiveEveryBackendItsShareWithinOnePercent() {
        let n = 100
        let table = MaglevTable(size: Self.m, names: Self.names(n), weights: Array(repeating: 1, count: n))
        let counts = table.slotCounts(backends: n)
        #expect(counts.reduce(0, +) == Self.m)
        let ideal = Double(Self.m) / Double(n)
        let worst = counts.map { abs(Double($0) - ideal) / ideal }.max()!
        // Relative error: |slots − M/N| / (M/N). Round-robin filling gives 655 or 656 each.
        #expect(worst < 0.01, "worst relative deviation \(worst)")
        #expect(counts.allSatisfy { $0 == 655 || $0 == 656 })
    }

    @Test func unequalWeightsGiveSharesWithinOnePercentOfTheirWeightShare() {
        let n = 100
        let weights = (0..<n).map { $0 % 4 + 1 }     // 1, 2, 3, 4, 1, 2, …  (sum 250)
        let table = MaglevTable(size: Self.m, names: Self.names(n), weights: weights)
        #expect(table.turns == weights)
        let counts = table.slotCounts(backends: n)
        let total = Double(weights.reduce(0, +))
        var worst = 0.0
        for i in 0..<n {
            let ideal = Double(Self.m) * Double(weights[i]) / total
            worst = max(worst, abs(Double(counts[i]) - ideal) / ideal)
        }
        // Relative to each backend's own ideal share.
        #expect(worst < 0.01, "worst relative deviation \(worst)")
    }

    @Test func weightsAreReducedByTheirGcdAndShiftedLikeIPVS() {
        let t1 = MaglevTable(size: 251, names: Self.names(3), weights: [100, 200, 300])
        #expect(t1.turns == [1, 2, 3])
        // max / gcd = 100 needs 7 bits; ip_vs_mh keeps 6, so shift by 1; 1 >> 1 = 0 becomes 1.
        let t2 = MaglevTable(size: 251, names: Self.names(2), weights: [1, 100])
        #expect(t2.turns == [1, 50])
        let t3 = MaglevTable(size: 251, names: Self.names(3), weights: [0, 3, 0])
        #expect(t3.turns == [0, 1, 0])
        #expect(t3.slots.allSatisfy { $0 == 1 })
        let empty = MaglevTable(size: 251, names: Self.names(2), weights: [0, 0])
        #expect(empty.slots.allSatisfy { $0 == MaglevTable.empty })
        #expect(empty.lookup(hash: 12345) == nil)
    }

    @Test func removingOneBackendMovesAboutOneNthOfTheSlots() {
        let n = 100
        let names = Self.names(n)
        let before = MaglevTable(size: Self.m, names: names, weights: Array(repeating: 1, count: n))
        for removed in [0, 37, 99] {
            var remaining = names
            remaining.remove(at: removed)
            let after = MaglevTable(size: Self.m, names: remaining, weights: Array(repeating: 1, count: n - 1))
            var ownedByRemoved = 0
            var movedOthers = 0
            for slot in 0..<Self.m {
                let old = names[Int(before.slots[slot])]
                let new = remaining[Int(after.slots[slot])]
                if old == names[removed] { ownedByRemoved += 1 } else if old != new { movedOthers += 1 }
            }
            #expect(ownedByRemoved == 655 || ownedByRemoved == 656)
            // Beyond the removed backend's own ≈ M/N slots, fewer than 2/N of all slots change owner.
            #expect(movedOthers < 2 * Self.m / n, "removing \(removed): \(movedOthers) other slots moved")
        }
    }

    @Test func sameNamesGiveTheSameTable() {
        let a = MaglevTable(size: Self.m, names: Self.names(50), weights: Array(repeating: 2, count: 50))
        let b = MaglevTable(size: Self.m, names: Self.names(50), weights: Array(repeating: 2, count: 50))
        #expect(a.slots == b.slots)
        let renamed = MaglevTable(size: Self.m, names: Self.names(50).map { $0 + "x" }, weights: Array(repeating: 2, count: 50))
        #expect(a.slots != renamed.slots)
    }

    @Test func lookupSpreadsFlowsLikeTheTable() {
        let n = 10
        let table = MaglevTable(size: Self.m, names: Self.names(n), weights: Array(repeating: 1, count: n))
        var counts = [Int](repeating: 0, count: n)
        for src in UInt32(0)..<100_000 {
            counts[table.lookup(hash: DirectorHash.source(0x0B00_0000 &+ src, port: 0))!] += 1
        }
        #expect(counts.allSatisfy { abs(Double($0) / 100_000 - 0.1) < 0.01 })
    }

    @Test func primes() {
        #expect(MaglevTable.isPrime(65537) && MaglevTable.isPrime(4093) && MaglevTable.isPrime(251))
        #expect(!MaglevTable.isPrime(65536) && !MaglevTable.isPrime(1) && !MaglevTable.isPrime(4095))
    }
}
