import Testing
import Wire
@testable import Datapath

/// Katran-style table: each row is one frame into the switch, the verdict it
/// must get, and (for forwards) the frame out byte for byte — a switch never
/// changes a byte.
@Suite struct LearningSwitchTests {
    static let a = MACAddress(0x02, 0, 0, 0, 0, 0x0a)
    static let b = MACAddress(0x02, 0, 0, 0, 0, 0x0b)
    static let c = MACAddress(0x02, 0, 0, 0, 0, 0x0c)

    /// A minimal Ethernet frame: dst, src, EtherType 0x0800 and a payload.
    static func frame(to dst: MACAddress, from src: MACAddress, payload: UInt8 = 0x42) -> [UInt8] {
        (0..<6).map { dst[$0] } + (0..<6).map { src[$0] } + [0x08, 0x00] + Array(repeating: payload, count: 46)
    }

    struct Row {
        var description: String
        var frame: [UInt8]
        var port: Int
        var at: Double
        var verdict: Verdict
    }

    func run(_ rows: [Row], _ sw: LearningSwitch) {
        let driver = ElementDriver(sw)
        for row in rows {
            let out = driver.send(row.frame, on: PortID(row.port), at: .seconds(row.at))
            #expect(out.verdict == row.verdict, "\(row.description)")
            #expect(out.frame == row.frame, "\(row.description): frame changed")
            #expect(out.emitted.isEmpty, "\(row.description): a switch emits nothing")
        }
    }

    @Test func learnsFloodsForwardsAndFollowsMoves() {
        let sw = LearningSwitch(ports: 3)
        run([
            Row(description: "unknown unicast floods, a learned on 0", frame: Self.frame(to: Self.b, from: Self.a), port: 0, at: 1, verdict: .flood),
            Row(description: "reply to a goes to port 0, b learned on 1", frame: Self.frame(to: Self.a, from: Self.b), port: 1, at: 2, verdict: .forward(PortID(0))),
            Row(description: "a to b now known", frame: Self.frame(to: Self.b, from: Self.a), port: 0, at: 3, verdict: .forward(PortID(1))),
            Row(description: "broadcast floods", frame: Self.frame(to: .broadcast, from: Self.c), port: 2, at: 4, verdict: .flood),
            Row(description: "multicast floods", frame: Self.frame(to: MACAddress(0x01, 0, 0x5e, 0, 0, 1), from: Self.c), port: 2, at: 4, verdict: .flood),
            Row(description: "b moves to port 2", frame: Self.frame(to: Self.a, from: Self.b), port: 2, at: 5, verdict: .forward(PortID(0))),
            Row(description: "a to b follows the move", frame: Self.frame(to: Self.b, from: Self.a), port: 0, at: 6, verdict: .forward(PortID(2))),
            Row(description: "destination behind the ingress port is dropped", frame: Self.frame(to: Self.b, from: Self.c), port: 2, at: 7, verdict: .drop(.sameSegment)),
        ], sw)
        #expect(sw.counters.moved == 1)
        #expect(sw.counters.learned == 3)
        #expect(sw.drops.counts[.sameSegment] == 1)
    }

    @Test func entriesAgeOut() {
        let sw = LearningSwitch(ports: 2, configuration: .init(agingTime: 10))
        let driver = ElementDriver(sw)
        _ = driver.send(Self.frame(to: Self.b, from: Self.a), on: PortID(0), at: .seconds(0))
        #expect(driver.send(Self.frame(to: Self.a, from: Self.b), on: PortID(1), at: .seconds(9.9)).verdict == .forward(PortID(0)))
        // Stale entry is not used even before tick removes it.
        #expect(driver.send(Self.frame(to: Self.a, from: Self.b), on: PortID(1), at: .seconds(10.1)).verdict == .flood)
        _ = driver.tick(at: .seconds(25))
        #expect(sw.table[Self.a] == nil && sw.table[Self.b] == nil)
        #expect(sw.counters.aged == 2)
    }

    @Test func fullTableStopsLearningAndCounts() {
        let sw = LearningSwitch(ports: 2, configuration: .init(maxEntries: 2))
        let driver = ElementDriver(sw)
        for (i, mac) in [Self.a, Self.b, Self.c].enumerated() {
            _ = driver.send(Self.frame(to: .broadcast, from: mac), on: PortID(i % 2), at: .seconds(1))
        }
        #expect(sw.table.count == 2)
        #expect(sw.counters.tableFull == 1)
        // The unlearned MAC is still reachable by flooding: nothing is lost.
        #expect(driver.send(Self.frame(to: Self.c, from: Self.a), on: PortID(0), at: .seconds(2)).verdict == .flood)
    }

    @Test func runtFrameDroppedAndCounted() {
        let sw = LearningSwitch(ports: 2)
        let out = ElementDriver(sw).send([1, 2, 3], on: PortID(0), at: .zero)
        #expect(out.verdict == .drop(.malformed("truncated")))
        #expect(sw.drops.counts[.malformed("truncated")] == 1)
    }
}
