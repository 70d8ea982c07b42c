// BFD sessions (RFC 5880 §6.8) on an injected clock: two sessions joined by
// a simulated wire with a 100 µs delay. Up from Down via Init, slow start,
// the Poll Sequence to the configured 50 ms, Detection Time 3 × 50 ms, a dead
// peer detected in time, parameter changes with Poll/Final, AdminDown.
//
//   swift test --skip-build --filter BFD

import Testing
import Wire
@testable import Datapath

/// Two sessions, A and B, on a wire. Packets go through the codec both ways.
struct BFDWire {
    var a: BFDSession
    var b: BFDSession
    var now = Instant.zero
    var delay: UInt64 = 100_000
    var bAlive = true
    var inFlight: [(at: Instant, toB: Bool, bytes: [UInt8])] = []
    /// Every action, with its time and side ("A"/"B").
    var log: [(time: Instant, side: String, action: BFDAction)] = []
    /// When A last received a packet.
    var lastReceivedByA: Instant?

    init(interval: UInt32 = 50_000, multiplier: UInt8 = 3, seed: UInt64 = 1) {
        a = BFDSession(BFDSessionConfiguration(localDiscriminator: 0x1111, interval: interval, multiplier: multiplier), jitter: BFDJitter(seed: seed))
        b = BFDSession(BFDSessionConfiguration(localDiscriminator: 0x2222, interval: interval, multiplier: multiplier), jitter: BFDJitter(seed: seed &+ 1))
    }

    mutating func record(_ actions: [BFDAction], fromA: Bool) {
        for action in actions {
            log.append((now, fromA ? "A" : "B", action))
            // A dead B neither sends nor receives.
            if case .send(let p) = action, bAlive { inFlight.append((now.adding(nanoseconds: delay), fromA, p.encode())) }
        }
    }

    mutating func startA() { record(a.start(now: now), fromA: true) }
    mutating func startB() { record(b.start(now: now), fromA: false) }

    /// Runs events in time order until `end`.
    mutating func run(until end: Instant) {
        while true {
            let times = [a.nextDeadline, bAlive ? b.nextDeadline : nil, inFlight.map(\.at).min()].compactMap { $0 }
            guard let next = times.min(), next <= end else { break }
            now = next
            while let i = inFlight.firstIndex(where: { $0.at <= now }) {
                let packet = inFlight.remove(at: i)
                let p = try! BFDControlPacket.decode(packet.bytes)
                if packet.toB {
                    if bAlive { record(b.receive(p, now: now), fromA: false) }
                } else {
                    lastReceivedByA = now
                    record(a.receive(p, now: now), fromA: true)
                }
            }
            record(a.advance(to: now), fromA: true)
            if bAlive { record(b.advance(to: now), fromA: false) }
        }
        now = end
    }

    func states(_ side: String) -> [BFDState] {
        log.compactMap {
            guard $0.side == side, case .stateChanged(_, let to, _) = $0.action else { return nil }
            return to
        }
    }

    func packets(_ side: String, after start: Instant = .zero) -> [(time: Instant, packet: BFDControlPacket)] {
        log.compactMap {
            guard $0.side == side, $0.time >= start, case .send(let p) = $0.action else { return nil }
            return ($0.time, p)
        }
    }

    /// Both sessions Up and past the Poll Sequence to the fast rate.
    static func up() -> BFDWire {
        var w = BFDWire()
        w.startA()
        w.run(until: .seconds(0.3))
        w.startB()
        w.run(until: .seconds(5))
        return w
    }
}

@Suite struct BFDSessionTests {
    @Test func upFromDownViaInit() {
        var w = BFDWire()
        w.startA()
        w.run(until: .seconds(0.3))
        #expect(w.a.state == .down)
        w.startB()
        w.run(until: .seconds(5))
        // A heard B's Down first: Down → Init → Up. B heard A's Init: Down → Up.
        #expect(w.states("A") == [.down, .initializing, .up])
        #expect(w.states("B") == [.down, .up])
        #expect(w.a.remoteDiscriminator == 0x2222 && w.b.remoteDiscriminator == 0x1111)
    }

    @Test func slowStartUntilUp() {
        var w = BFDWire()
        w.startA()
        w.run(until: .seconds(10))  // B never starts
        let sent = w.packets("A")
        #expect(sent.count >= 10 && sent.count <= 14)
        for (p, q) in zip(sent, sent.dropFirst()) {
            let gap = q.time.nanoseconds - p.time.nanoseconds
            #expect(gap >= 750_000_000 && gap <= 1_000_000_000, "gap \(gap)")
        }
        #expect(sent.allSatisfy { $0.packet.desiredMinTxInterval == 1_000_000 && $0.packet.state == .down })
        #expect(sent.allSatisfy { $0.packet.yourDiscriminator == 0 })
    }

    @Test func pollSequenceToTheConfiguredRateOnceUp() {
        let w = BFDWire.up()
        #expect(w.a.state == .up && w.b.state == .up)
        #expect(!w.a.pollActive && !w.b.pollActive)
        #expect(w.a.transmitInterval == 50_000 && w.b.transmitInterval == 50_000)
        #expect(w.a.detectionTime == 150_000 && w.b.detectionTime == 150_000)
        // The switch went through P and F: A sent a Poll and B a Final, and back.
        #expect(w.packets("A").contains { $0.packet.poll && $0.packet.desiredMinTxInterval == 50_000 })
        #expect(w.packets("B").contains { $0.packet.final })
        #expect(w.packets("A").allSatisfy { !($0.packet.poll && $0.packet.final) })
        // Steady state: 37.5–50 ms between packets (jitter 0–25 %).
        let steady = w.packets("A", after: .seconds(4))
        #expect(steady.count >= 20)
        for (p, q) in zip(steady, steady.dropFirst()) where !q.packet.final {
            let gap = q.time.nanoseconds - p.time.nanoseconds
            #expect(gap >= 37_500_000 && gap <= 50_000_000, "gap \(gap)")
        }
    }

    @Test func deadPeerDetectedWithinIntervalTimesMultiplier() {
        var w = BFDWire.up()
        let kill = w.now
        w.bAlive = false
        w.run(until: .seconds(6))
        #expect(w.a.state == .down)
        guard let down = w.log.first(where: { $0.side == "A" && $0.action == .stateChanged(from: .up, to: .down, diagnostic: .controlDetectionTimeExpired) })
        else { Issue.record("A never went down: \(w.states("A"))"); return }
        let sinceKill = down.time.nanoseconds - kill.nanoseconds
        #expect(sinceKill <= 150_000_000, "detected \(sinceKill) ns after the peer died")
        #expect(down.time.nanoseconds - w.lastReceivedByA!.nanoseconds == 150_000_000)
        #expect(w.a.remoteDiscriminator == 0)
        // Down: back to the slow rate, Diag 1 in what A sends.
        let after = w.packets("A", after: down.time)
        #expect(after.allSatisfy { $0.packet.state == .down && $0.packet.diagnostic == .controlDetectionTimeExpired })
        #expect(after.allSatisfy { $0.packet.desiredMinTxInterval == 1_000_000 })
    }

    @Test func parameterChangeWithPollAndFinal() {
        var w = BFDWire.up()
        let change = w.now
        w.record(w.a.setParameters(desiredMinTxInterval: 200_000, requiredMinRxInterval: 200_000, now: w.now), fromA: true)
        // A Poll goes at once, advertising the new values.
        guard let poll = w.packets("A", after: change).first else { Issue.record("no packet"); return }
        #expect(poll.time == change && poll.packet.poll && poll.packet.desiredMinTxInterval == 200_000)
        #expect(w.a.pollActive)
        // Until the Final, A keeps sending at 50 ms (an increase waits for it).
        #expect(w.a.transmitInterval == 50_000)
        w.run(until: change.adding(nanoseconds: 1_000_000))
        #expect(w.packets("B", after: change).contains { $0.packet.final })
        #expect(!w.a.pollActive)
        #expect(w.a.transmitInterval == 200_000)
        // B took A's new rates: sends at 200 ms, detects A in 3 × 200 ms.
        #expect(w.b.transmitInterval == 200_000)
        #expect(w.b.detectionTime == 600_000)
        w.run(until: change.adding(nanoseconds: 3_000_000_000))
        #expect(w.a.state == .up && w.b.state == .up)
        let steady = w.packets("A", after: change.adding(nanoseconds: 1_000_000_000))
        for (p, q) in zip(steady, steady.dropFirst()) where !q.packet.final {
            let gap = q.time.nanoseconds - p.time.nanoseconds
            #expect(gap >= 150_000_000 && gap <= 200_000_000, "gap \(gap)")
        }
    }

    /// A remote like BIRD: on reaching Up it advertises 50 ms with a Poll
    /// but its next packet is still due at the old 1 s. The packet that
    /// lowers the interval must not arm a 150 ms Detection Time.
    @Test func remoteLoweringItsIntervalDoesNotFlapTheSession() {
        var a = BFDSession(BFDSessionConfiguration(localDiscriminator: 1, interval: 50_000, multiplier: 3), jitter: BFDJitter(fixed: 0))
        func remote(_ state: BFDState, tx: UInt32, poll: Bool = false) -> BFDControlPacket {
            BFDControlPacket(state: state, poll: poll, detectMultiplier: 3, myDiscriminator: 2, yourDiscriminator: state == .down ? 0 : 1,
                             desiredMinTxInterval: tx, requiredMinRxInterval: 50_000)
        }
        _ = a.start(now: .zero)
        _ = a.receive(remote(.down, tx: 1_000_000), now: .seconds(0.1))
        _ = a.receive(remote(.up, tx: 1_000_000), now: .seconds(1.1))
        #expect(a.state == .up)
        _ = a.receive(remote(.up, tx: 50_000, poll: true), now: .seconds(1.2))
        _ = a.advance(to: .seconds(2.1))
        #expect(a.state == .up, "went down before the remote's next (slow-scheduled) packet")
        _ = a.receive(remote(.up, tx: 50_000), now: .seconds(2.15))
        #expect(a.detectionTime == 150_000)
        // From then on the new interval counts.
        _ = a.advance(to: .seconds(2.299))
        #expect(a.state == .up)
        _ = a.advance(to: .seconds(2.3))
        #expect(a.state == .down && a.localDiagnostic == .controlDetectionTimeExpired)
    }

    /// A host that calls late (a stalled loop) gets one packet, not a burst
    /// of the ones it missed (BIRD saw three Polls at once before this).
    @Test func aLateCallSendsOnePacket() {
        var w = BFDWire.up()
        let late = w.now.adding(nanoseconds: 95_000_000)  // ≥ 1.9 intervals; less than detection
        let actions = w.a.advance(to: late)
        #expect(actions.filter { if case .send = $0 { true } else { false } }.count == 1)
        #expect(w.a.state == .up)
        #expect(w.a.txDeadline! > late.adding(nanoseconds: 37_000_000))
    }

    @Test func adminDownFromThePeer() {
        var w = BFDWire.up()
        w.record(w.b.stop(now: w.now), fromA: false)
        w.run(until: w.now.adding(nanoseconds: 10_000_000))
        #expect(w.b.state == .adminDown)
        #expect(w.a.state == .down)
        #expect(w.a.localDiagnostic == .neighborSignaledSessionDown)
    }

    @Test func packetsForAnotherDiscriminatorAreIgnored() {
        var w = BFDWire.up()
        let p = BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 0x2222, yourDiscriminator: 0x9999,
                                 desiredMinTxInterval: 50_000, requiredMinRxInterval: 50_000)
        #expect(w.a.receive(p, now: w.now).allSatisfy { if case .stateChanged = $0 { false } else { true } })
        #expect(w.a.state == .up)
        // Your Discriminator 0 with state Up is discarded too.
        var q = p
        q.yourDiscriminator = 0
        q.state = .up
        _ = w.a.receive(q, now: w.now)
        #expect(w.a.state == .up)
    }

    @Test func detectMultiplierOneJittersTenToTwentyFivePercent() {
        var w = BFDWire(interval: 100_000, multiplier: 1, seed: 7)
        w.startA()
        w.run(until: .seconds(0.1))
        w.startB()
        w.run(until: .seconds(8))
        #expect(w.a.state == .up && w.b.state == .up)
        let steady = w.packets("A", after: .seconds(6))
        #expect(steady.count > 10)
        for (p, q) in zip(steady, steady.dropFirst()) where !q.packet.final {
            let gap = q.time.nanoseconds - p.time.nanoseconds
            #expect(gap >= 75_000_000 && gap <= 90_000_000, "gap \(gap)")
        }
    }
}
