import FuzzSupport
import Foundation
import Testing
import Datapath
import Wire
@testable import ElementFuzz

/// A short, deterministic element-fuzz run of every element (the long runs
/// are `element-fuzz`, docs/robustness.md), and proof that the oracles can
/// fail: an element that loses frames, and ledgers that do not add up.
@Suite struct ElementFuzzTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let corpus = try! Corpus.load(root: root)

    static func options(runs: Int, seed: UInt64 = 20_250_101) -> FuzzOptions {
        var o = FuzzOptions()
        o.runs = runs
        o.seed = seed
        o.deepEvery = 1024
        return o
    }

    @Test func corpusHasTheScapyFramesAndTheGoldenCaptures() {
        #expect(Self.corpus.origins.filter { $0.hasPrefix("scapy:") }.count >= 300)
        #expect(Self.corpus.origins.filter { $0.hasPrefix("golden:") }.count >= 20)
    }

    @Test(arguments: allTargetNames)
    func twentyThousandFramesHoldEveryOracle(_ name: String) throws {
        let report = try #require(ElementFuzz.run(name, corpus: Self.corpus, options: Self.options(runs: 20_000)))
        #expect(report.violation == nil, "\(report.violation.map(\.description) ?? "")\n\(report.violation?.fileText ?? "")")
        let v = report.verdicts
        #expect(v.frames == 20_000)
        #expect(v.frames == v.forwarded + v.flooded + v.consumed + v.dropped)
        // The run reaches past the first checks: something is forwarded (or,
        // for the host, taken in), and something is dropped.
        #expect(v.forwarded + v.flooded + v.consumed > 1000, "\(report.text)")
        #expect(v.dropped > 1000, "\(report.text)")
        #expect(report.ticks > 100)
    }

    @Test func sameSeedSameRun() throws {
        let a = try #require(ElementFuzz.run("director-nat", corpus: Self.corpus, options: Self.options(runs: 3000)))
        let b = try #require(ElementFuzz.run("director-nat", corpus: Self.corpus, options: Self.options(runs: 3000)))
        #expect(a.verdicts == b.verdicts)
        #expect(a.drops.map(\.reason) == b.drops.map(\.reason) && a.drops.map(\.count) == b.drops.map(\.count))
        #expect(a.sent == b.sent)
        let c = try #require(ElementFuzz.run("director-nat", corpus: Self.corpus, options: Self.options(runs: 3000, seed: 2)))
        #expect(a.verdicts != c.verdicts)
    }

    // MARK: The oracles can fail

    /// A switch that loses every 97th frame: it says `.consumed` (or drops
    /// it without counting) though nothing kept it.
    final class LosingSwitch: Element {
        let inner = LearningSwitch(ports: 4, configuration: .init(agingTime: 30, maxEntries: 64))
        let uncountedDrop: Bool
        var frames = 0
        init(uncountedDrop: Bool) { self.uncountedDrop = uncountedDrop }
        var portCount: Int { inner.portCount }
        var drops: DropCounters { inner.drops }
        func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
            frames += 1
            let verdict = inner.process(&packet, from: port, now: now, emit: &emit)
            if frames % 97 == 0 { return uncountedDrop ? .drop(.noRoute) : .consumed }
            return verdict
        }
        func tick(now: Instant, emit: inout Emitter) { inner.tick(now: now, emit: &emit) }
    }

    /// The switch target's book and explanations, around the losing switch.
    final class LosingTarget: RunnerTarget<LosingSwitch>, FuzzTarget {
        let honest = SwitchTarget()
        let name = "losing-switch"
        var book: AddressBook { honest.book }
        func seeds() -> [[UInt8]] { honest.seeds() }
        func typical(_ rng: inout Xoshiro, port: inout Int) -> [UInt8]? { nil }
        let mayFlood = true
        let forwardsUnchanged = true
        let buildsEverything = false
        func mtu(_ port: Int) -> Int? { nil }
        func maxFrame(_ port: Int) -> Int { 1518 }
        func poke(_ rng: inout Xoshiro, now: Instant, ports: inout FuzzPorts) -> String { "nothing" }
        func ledger() -> Ledger {
            var l = runnerLedger()
            l.forwarded = element.inner.counters.forwarded
            l.flooded = element.inner.counters.flooded
            return l
        }
        func explain(_ verdict: Verdict, _ b: Ledger, _ a: Ledger, frame: UnsafeRawBufferPointer) -> (consumed: String?, violation: String?) {
            honest.explain(verdict, b, a, frame: frame)
        }
        func checkLimits() -> String? { nil }
        func checkDeep(now: Instant) -> String? { nil }
        func checkDrained(now: Instant) -> String? { nil }
        func summary() -> [String] { [] }
    }

    @Test(arguments: [false, true])
    func anElementThatLosesAFrameIsCaught(uncountedDrop: Bool) throws {
        let engine = Engine(target: LosingTarget(LosingSwitch(uncountedDrop: uncountedDrop)), corpus: Self.corpus,
                            options: Self.options(runs: 5000))
        let report = engine.run()
        let violation = try #require(report.violation)
        #expect(violation.index == 96)   // the 97th frame
        #expect(violation.phase == "frame")
        // An uncounted drop: "dropped a frame as no-route without counting
        // it", or, when the element counted another drop in that call,
        // "dropped 1 frames as no-route but counts 0".
        #expect(violation.message.contains(uncountedDrop ? "as no-route" : "consumed a frame"), "\(violation.message)")
        #expect(violation.fileText.contains("index 96\n"))
        #expect(violation.recent.count == 31)   // the input ring holds 32, the last being the frame itself

        // The seed and the index replay it: the same frame, the same finding.
        var replay = Self.options(runs: 5000)
        replay.stopAt = violation.index
        let again = Engine(target: LosingTarget(LosingSwitch(uncountedDrop: uncountedDrop)), corpus: Self.corpus,
                           options: replay).run()
        #expect(again.violation?.index == violation.index)
        #expect(again.violation?.input == violation.input)
        #expect(again.violation?.message == violation.message)
    }

    @Test func wrongCountsAreCaught() {
        let engine = Engine(target: SwitchTarget(), corpus: Self.corpus, options: Self.options(runs: 1))
        var before = Ledger()
        before.drops = 10
        var after = before
        // A drop verdict the element did not count.
        #expect(engine.account(.drop(.noRoute), before, after)?.contains("without counting") == true)
        // A drop counted with no verdict and nothing that explains it.
        after.drops = 11
        #expect(engine.account(nil, before, after)?.contains("accounted for") == true)
        // Explained by a held frame discarded: fine.
        after.queued = 1
        after.discarded = 1
        #expect(engine.account(nil, before, after) == nil)
        // A held frame that vanished from the ledger.
        after.queued = 2
        #expect(engine.account(nil, before, after)?.contains("ledger does not close") == true)
        // Counters that go down.
        after = before
        after.drops = 9
        #expect(engine.account(nil, before, after)?.contains("went down") == true)
        // A frame sent to a port the element does not have.
        after = before
        after.noSuchPort = 1
        after.forwarded = 1
        #expect(engine.account(.forward(PortID(9)), before, after)?.contains("port it does not have") == true)
    }
}
