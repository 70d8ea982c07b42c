import FuzzSupport
import Datapath
import Foundation
import Wire

public struct FuzzOptions: Sendable {
    /// Frames per element.
    public var runs = 1_000_000
    public var seed: UInt64 = 1
    /// Replay: stop after this frame, and print it and what became of it.
    public var stopAt: Int? = nil
    /// Whole-table checks every this many frames (and at the end).
    public var deepEvery = 4096
    /// Print a progress line every this many frames (0: never).
    public var progressEvery = 0
    public init() {}
}

/// A violated oracle, with what it takes to replay it.
public struct Violation: Sendable, CustomStringConvertible {
    public var element: String
    public var seed: UInt64
    public var runs: Int
    /// The frame's index, or the index of the last frame before a timer or
    /// control-plane call, or `runs` for the checks at the end.
    public var index: Int
    /// `frame`, `tick`, `poke` (the control plane) or `end`.
    public var phase: String
    public var message: String
    public var port: Int
    public var input: [UInt8]
    /// The frames before it, oldest first (for reading; the seed and index replay them).
    public var recent: [(port: Int, bytes: [UInt8])]
    public var corpusFingerprint: UInt64

    public var description: String { "\(element): \(message) (\(phase) at frame \(index), seed \(seed))" }

    /// The replay file: `element-fuzz --replay FILE` reads the first lines.
    public var fileText: String {
        var s = "element-fuzz replay\nelement \(element)\nseed \(seed)\nruns \(runs)\nindex \(index)\nphase \(phase)\n"
        s += "corpus \(String(corpusFingerprint, radix: 16))\nviolation \(message)\nport \(port)\ninput \(hexString(input))\n"
        for (k, r) in recent.enumerated() { s += "before-\(recent.count - k) port \(r.port) \(hexString(r.bytes))\n" }
        return s
    }
}

/// What one element's run did.
public struct FuzzReport: Sendable {
    public var element: String
    public var seed: UInt64
    public var frames: Int
    public var seconds: Double
    public var verdicts: VerdictCounts
    public var consumed: [(kind: String, count: UInt64)]
    public var drops: [(reason: String, count: UInt64)]
    public var runnerDrops: [(reason: String, count: UInt64)]
    public var ticks: Int
    public var pokes: Int
    public var sent: UInt64
    public var summary: [String]
    public var violation: Violation?
    /// The corpus and the element's own seeds (a replay file records it).
    public var corpusFingerprint: UInt64

    public var framesPerSecond: Double { seconds > 0 ? Double(frames) / seconds : 0 }
    public var passed: Bool { violation == nil }

    public var text: String {
        func list(_ items: [(String, UInt64)]) -> String {
            items.isEmpty ? "none" : items.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        }
        let v = verdicts
        var lines = [
            "\(element): \(frames) frames in \(String(format: "%.1f", seconds)) s, \(Int(framesPerSecond)) frames/s, seed \(seed): "
                + (violation.map { "VIOLATION: \($0.message)" } ?? "all oracles held"),
            "  verdicts: \(v.frames) in = \(v.forwarded) forwarded + \(v.flooded) flooded + \(v.consumed) consumed + \(v.dropped) dropped"
                + "; \(sent) frames sent; \(ticks) ticks, \(pokes) control-plane calls",
            "  consumed: " + list(consumed.map { ($0.kind, $0.count) }),
            "  drops by reason (element): " + list(drops.map { ($0.reason, $0.count) }),
            "  drops by reason (runner): " + list(runnerDrops.map { ($0.reason, $0.count) }),
        ]
        lines += summary.map { "  " + $0 }
        return lines.joined(separator: "\n")
    }
}

/// Runs one element: generates frames, hands them in through the runner,
/// advances the clock and runs the timers, and checks the oracles after
/// every call and at the end:
///
/// - no trap (the process dies; the crash handler writes the replay file);
/// - every verdict explained by the element's counters: a drop is counted
///   under its reason, any other drop counted in the same call is a held
///   frame given up or a frame the element built, a consumed frame was
///   queued, fragmented, learned from or delivered, a forwarded or flooded
///   one is counted where the element counts those;
/// - the ledger of held frames closes (queued = released + discarded + held);
/// - no table past its limit, whole tables consistent, and everything
///   drained once every timer has run out;
/// - what the element sends is sane: no runt, no port it does not have,
///   IPv4 within the egress MTU with right checksums (a rewritten packet
///   keeps the TCP/UDP/ICMP checksum it came with), a switch's frames
///   unchanged.
final class Engine {
    let target: FuzzTarget
    let options: FuzzOptions
    let generator: Generator
    let corpusFingerprint: UInt64
    var rng: Xoshiro
    let outputs = FrameRing(slots: 64)
    let inputs = FrameRing(slots: 32, slotSize: 9100)
    let sink: OutputSink
    var ports: FuzzPorts
    let buffer: GuardedBuffer
    var now = Instant(nanoseconds: 1_000_000_000)
    var nextTick = Instant(nanoseconds: 2_000_000_000)
    var work: [UInt8] = []
    var verdictDrops: [DropReason: UInt64] = [:]
    var consumedKinds: [String: UInt64] = [:]
    var ticks = 0, pokes = 0
    var index = 0
    var port = 0
    var violation: Violation?
    var detail: ((String) -> Void)?

    init(target: FuzzTarget, corpus: Corpus, options: FuzzOptions) {
        self.target = target
        self.options = options
        let seeds = corpus.frames + target.seeds()
        var h = FNV1a()
        h.add(String(corpus.fingerprint, radix: 16).utf8)
        for s in target.seeds() { h.add(s) }
        corpusFingerprint = h.value
        generator = Generator(book: target.book, seeds: seeds, portCount: target.portCount,
                              maxFrame: (0..<target.portCount).map { target.maxFrame($0) },
                              mtu: (0..<target.portCount).map { target.mtu($0) })
        var name = FNV1a()
        name.add(target.name.utf8)
        rng = Xoshiro(seed: options.seed ^ name.value)
        sink = OutputSink(ring: outputs)
        sink.forwardsUnchanged = target.forwardsUnchanged
        sink.buildsEverything = target.buildsEverything
        sink.checksIPv4 = !target.forwardsUnchanged
        sink.mtus = (0..<target.portCount).map { target.mtu($0) }
        ports = FuzzPorts(count: target.portCount, sink: sink)
        buffer = GuardedBuffer(frameBytes: (0..<target.portCount).map { target.maxFrame($0) }.max()! + 64)
        work.reserveCapacity(16384)
    }

    func fail(_ phase: String, _ message: String) {
        guard violation == nil else { return }
        var recent: [(Int, [UInt8])] = []
        let back = phase == "frame" ? 1 : 0  // the input itself is the last one recorded
        if inputs.count > back {
            for k in (back..<inputs.count).reversed() {
                let (p, b) = inputs.recent(k)
                recent.append((p, Array(b)))
            }
        }
        violation = Violation(element: target.name, seed: options.seed, runs: options.runs, index: index, phase: phase,
                              message: message, port: phase == "frame" ? port : -1,
                              input: phase == "frame" ? work : [], recent: recent, corpusFingerprint: corpusFingerprint)
    }

    func run() -> FuzzReport {
        let start = Date()
        let stop = options.stopAt.map { min($0 + 1, options.runs) } ?? options.runs
        CrashContext.begin(element: target.name, seed: options.seed, runs: options.runs, corpus: corpusFingerprint)
        while index < stop && violation == nil {
            step()
            if violation == nil, options.deepEvery > 0, index % options.deepEvery == options.deepEvery - 1,
               let message = target.checkDeep(now: now) {
                fail("frame", message)
            }
            if options.progressEvery > 0 && (index + 1) % options.progressEvery == 0 {
                let t = Date().timeIntervalSince(start)
                print("element-fuzz: \(target.name): \(index + 1) frames, \(Int(t)) s, \(Int(Double(index + 1) / t)) frames/s")
            }
            index += 1
        }
        if violation == nil && options.stopAt == nil { finish() }
        let seconds = Date().timeIntervalSince(start)
        CrashContext.end()
        return report(seconds: seconds)
    }

    /// One frame, and the clock, timers and control plane before it.
    func step() {
        // The clock: mostly microseconds between frames, now and then a
        // pause of up to half a second or a gap of up to 100 s (timeouts).
        let r = rng.below(1000)
        let dt = r < 970 ? rng.below(200_000) : r < 999 ? rng.below(500_000_000) : rng.below(100_000_000_000)
        now = now.adding(nanoseconds: UInt64(dt))
        if now >= nextTick || rng.oneIn(500) {
            tick()
            nextTick = now.adding(nanoseconds: 1_000_000_000)
            if violation != nil { return }
        }
        if rng.oneIn(2000) {
            poke()
            if violation != nil { return }
        }
        var typicalPort = 0
        if rng.percent(20), let frame = target.typical(&rng, port: &typicalPort) {
            port = typicalPort
            work.removeAll(keepingCapacity: true)
            work.append(contentsOf: frame)
            if rng.oneIn(10) { generator.mutate(&work, &rng, times: 1) }
        } else {
            port = generator.next(into: &work, &rng, outputs: outputs, inputs: inputs)
        }
        CrashContext.frame(index: index, port: port, work)
        if index == options.stopAt { detail?("frame \(index) on port \(port) at \(now): \(hexString(work))") }
        process()
    }

    func process() {
        let before = target.ledger()
        let sentBefore = sink.sentTotal
        let verdict: Verdict = work.withUnsafeBytes { input in
            var packet = buffer.place(input)
            sink.input = input
            sink.packetStart = UnsafeRawPointer(packet.base + packet.offset)
            sink.inputL4Valid = target.forwardsUnchanged ? nil : Checksums.l4Valid(input)
            if let mtu = sink.mtus[port], let l3 = Frames.ipv4Offset(input) {
                sink.inputFitsMTU = Int(input.wireU16(l3 + 2)) <= mtu && input.count - l3 <= mtu + 4
            } else {
                sink.inputFitsMTU = true
            }
            sink.violation = nil
            return target.process(&packet, from: PortID(port), now: now, ports: &ports)
        }
        sink.input = UnsafeRawBufferPointer(start: nil, count: 0)
        let after = target.ledger()
        work.withUnsafeBytes { inputs.record($0, port: port) }
        if index == options.stopAt {
            detail?("verdict \(verdict); \(sink.sentTotal - sentBefore) frames sent:")
            for k in stride(from: Int(sink.sentTotal - sentBefore) - 1, through: 0, by: -1) where k < outputs.count {
                let (p, b) = outputs.recent(k)
                detail?("  port \(p): \(hexString(b))")
            }
            detail?("ledger before \(before)\nledger after  \(after)")
        }
        if let message = sink.violation { return fail("frame", message) }
        if let message = account(verdict, before, after) { return fail("frame", message) }
        if let message = target.checkLimits() { return fail("frame", message) }
    }

    /// The accounting of one call: its verdict (if any) and every drop the
    /// element counted in it.
    func account(_ verdict: Verdict?, _ b: Ledger, _ a: Ledger) -> String? {
        guard a.drops >= b.drops else { return "drop counters went down (\(b.drops) → \(a.drops))" }
        var extra = a.drops - b.drops
        if let verdict {
            switch verdict {
            case .drop(let reason):
                guard extra >= 1 else { return "dropped a frame as \(reason) without counting it" }
                extra -= 1
                let n = verdictDrops[reason, default: 0] + 1
                verdictDrops[reason] = n
                let counted = target.elementDrops.counts[reason] ?? 0
                if counted < n { return "dropped \(n) frames as \(reason) but counts \(counted)" }
            case .flood where !target.mayFlood:
                return "flooded a frame"
            default:
                break
            }
            let (kind, message) = work.withUnsafeBytes { target.explain(verdict, b, a, frame: $0) }
            if let message { return message }
            if let kind { consumedKinds[kind, default: 0] += 1 }
        }
        let released = Int64(a.released) - Int64(b.released), sent = Int64(a.releasedSent) - Int64(b.releasedSent)
        let discarded = Int64(a.discarded) - Int64(b.discarded), built = Int64(a.builtDropped) - Int64(b.builtDropped)
        let explained = (released - sent) + discarded + built
        if Int64(extra) != explained {
            return "counted \(extra) drop(s) beyond the verdict, but \(explained) are accounted for "
                + "(released frames not sent \(released - sent), held frames discarded \(discarded), own frames dropped \(built))"
        }
        if a.queued != a.released + a.discarded + UInt64(a.held) {
            return "held-frame ledger does not close: queued \(a.queued) ≠ released \(a.released) + discarded \(a.discarded) + held \(a.held)"
        }
        if a.noSuchPort != b.noSuchPort { return "sent a frame to a port it does not have" }
        return nil
    }

    func tick() {
        let before = target.ledger()
        target.tick(now: now, ports: &ports)
        ticks += 1
        if let message = sink.violation { return fail("tick", message) }
        if let message = account(nil, before, target.ledger()) { return fail("tick", message) }
        if let message = target.checkLimits() { fail("tick", message) }
    }

    func poke() {
        let before = target.ledger()
        let what = target.poke(&rng, now: now, ports: &ports)
        pokes += 1
        if let message = sink.violation { return fail("poke", "\(what): \(message)") }
        if let message = account(nil, before, target.ledger()) { return fail("poke", "\(what): \(message)") }
        if let message = target.checkLimits() { fail("poke", "\(what): \(message)") }
    }

    /// The checks at the end: whole tables, the verdict totals, then every
    /// timer run out (a second at a time while ARP retries, then in big
    /// steps past every timeout) and nothing left held.
    func finish() {
        if let message = target.checkDeep(now: now) { return fail("end", message) }
        let v = target.verdicts
        if v.frames != UInt64(options.runs) || v.frames != v.forwarded + v.flooded + v.consumed + v.dropped {
            return fail("end", "runner counted \(v.frames) frames = \(v.forwarded) + \(v.flooded) + \(v.consumed) + \(v.dropped) for \(options.runs) in")
        }
        for (reason, n) in verdictDrops where (target.elementDrops.counts[reason] ?? 0) < n {
            return fail("end", "dropped \(n) frames as \(reason) but counts \(target.elementDrops.counts[reason] ?? 0)")
        }
        for step in 0..<60 {
            now = now.adding(nanoseconds: step < 30 ? 1_000_000_000 : 100_000_000_000)
            tick()
            if violation != nil { return }
        }
        if let message = target.checkDrained(now: now) { fail("end", message) }
    }

    func report(seconds: Double) -> FuzzReport {
        FuzzReport(element: target.name, seed: options.seed, frames: Int(target.verdicts.frames), seconds: seconds,
                   verdicts: target.verdicts,
                   consumed: consumedKinds.sorted { $0.value > $1.value }.map { ($0.key, $0.value) },
                   drops: target.elementDrops.counts.sorted { $0.value > $1.value }.map { ($0.key.rawValue, $0.value) },
                   runnerDrops: target.runnerDrops.counts.sorted { $0.value > $1.value }.map { ($0.key.rawValue, $0.value) },
                   ticks: ticks, pokes: pokes, sent: sink.sentTotal, summary: target.summary(), violation: violation,
                   corpusFingerprint: corpusFingerprint)
    }
}

/// Runs the fuzzing of one element by name.
public enum ElementFuzz {
    public static func run(_ name: String, corpus: Corpus, options: FuzzOptions,
                           detail: ((String) -> Void)? = nil) -> FuzzReport? {
        guard let target = makeTarget(name) else { return nil }
        let engine = Engine(target: target, corpus: corpus, options: options)
        engine.detail = detail
        return engine.run()
    }
}
