import Testing
import Wire
@testable import Datapath

// Every frame in is accounted for once: the runner counts verdicts, the
// neighbour cache keeps a ledger of the frames it holds, and an element's
// drop counters hold frames that came in, held frames it gave up, and (the
// director's) frames it built and could not queue, each counted once.
// Found by element-fuzz (docs/robustness.md).
@Suite struct ElementAccountingTests {
    static func frame(_ destination: MACAddress, _ source: MACAddress) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: 60)
        f.withUnsafeMutableBytes { b in
            b.wireSetMAC(destination, 0)
            b.wireSetMAC(source, 6)
            b.wireSetU16(0x0800, 12)
        }
        return f
    }

    static func run<E: Element>(_ element: E, _ runner: inout ElementRunner, _ frame: [UInt8], on port: Int,
                                at t: Double = 0) -> (Verdict, [ElementDriver.Emitted]) {
        var bytes = frame
        var ports = ElementDriver.RecordingPorts(count: element.portCount)
        let verdict = bytes.withUnsafeMutableBytes { b in
            var packet = PacketBuffer(base: b.baseAddress!, capacity: b.count, offset: 0, length: b.count)
            return runner.process(element, &packet, from: PortID(port), now: .seconds(t), ports: &ports)
        }
        return (verdict, ports.sent)
    }

    @Test func theRunnerCountsEveryVerdict() {
        let sw = LearningSwitch(ports: 3)
        var runner = ElementRunner()
        let a = MACAddress(2, 0, 0, 0, 0, 1), b = MACAddress(2, 0, 0, 0, 0, 2)
        #expect(Self.run(sw, &runner, Self.frame(b, a), on: 0).0 == .flood)
        #expect(Self.run(sw, &runner, Self.frame(a, b), on: 1).0 == .forward(PortID(0)))
        #expect(Self.run(sw, &runner, Self.frame(a, b), on: 0).0 == .drop(.sameSegment))
        #expect(Self.run(sw, &runner, [1, 2, 3], on: 2).0 == .drop(.malformed("truncated")))
        var expected = VerdictCounts()
        (expected.frames, expected.flooded, expected.forwarded, expected.dropped) = (4, 1, 1, 2)
        #expect(runner.verdicts == expected)
        #expect(sw.drops.total == runner.verdicts.dropped)
    }

    @Test func theNeighbourCacheLedgerOfHeldFramesCloses() {
        var arp = ARPCache(configuration: .init(retryInterval: 1, maxRetries: 2, queuePerAddress: 2))
        let a = IPv4Address(10, 0, 0, 1), b = IPv4Address(10, 0, 0, 2)
        func held(_ to: IPv4Address) -> ARPCache.QueuedFrame {
            ARPCache.QueuedFrame(bytes: [1], ingressPort: PortID(0), previousHop: .zero, originalSource: .any, originalDestination: to)
        }
        #expect(arp.enqueue(for: a, port: PortID(0), now: .zero) { held(a) } == .sendRequest)
        #expect(arp.enqueue(for: a, port: PortID(0), now: .zero) { held(a) } == .queued)
        #expect(arp.enqueue(for: a, port: PortID(0), now: .zero) { held(a) } == .full)
        #expect(arp.enqueue(for: b, port: PortID(1), now: .zero) { held(b) } == .sendRequest)
        #expect(arp.queuedFrames == 3)
        #expect(arp.learn(a, mac: MACAddress(2, 0, 0, 0, 0, 1), port: PortID(0), now: .seconds(0.5))?.count == 2)
        var gaveUp = 0
        for t in [1.0, 2.0] { arp.expire(now: .seconds(t), retry: { _, _ in }, giveUp: { gaveUp += $1.count }) }
        #expect(gaveUp == 1)
        let k = arp.counters
        #expect((k.framesQueued, k.framesReleased, k.framesDiscarded, arp.queuedFrames) == (3, 2, 1, 0))
        #expect(arp.count == 1)
    }

    /// An ICMP error the director builds and cannot queue for its next hop
    /// used to be counted under `drops` as if a frame that came in had been
    /// dropped: two frames in, three drops. It is still counted (status
    /// shows it), and as a built frame, so the drops add up.
    @Test func anICMPErrorTheDirectorCannotQueueIsCountedAsItsOwn() {
        let director = DE.director(.dr) { $0.arp.queuePerAddress = 1 }
        let driver = ElementDriver(director)
        let expired = DE.fromClient(DE.syn, ttl: 1).frame
        // The error goes back through the gateway, not resolved yet: held.
        #expect(driver.send(expired, on: PortID(0), at: .seconds(0)).verdict == .drop(.ttlExpired))
        #expect(director.counters.queuedForResolution == 1)
        // The next one finds the queue full.
        #expect(driver.send(DE.fromClient(DE.syn, sport: 2, ttl: 1).frame, on: PortID(0), at: .seconds(0)).verdict
                == .drop(.ttlExpired))
        #expect(director.drops.counts[.ttlExpired] == 2)
        #expect(director.drops.counts[.arpQueueFull] == 1)
        #expect(director.counters.builtFramesDropped == 1)
        #expect(director.drops.total == 2 + director.counters.builtFramesDropped)
    }

    /// A released frame the emitter has no slot for was counted twice: by
    /// the director (`emit-queue-full`) and by the runner (the emitter's
    /// overflow). Now the director does not try without a slot.
    @Test func aReleasedFrameWithoutAnEmitterSlotIsCountedOnce() {
        let director = DE.director(.dr, reals: [RealServer(address: DE.rs1)])
        var runner = ElementRunner(emitterSlots: 1)
        #expect(Self.run(director, &runner, DE.fromClient(DE.syn).frame, on: 0).0 == .consumed)
        #expect(Self.run(director, &runner, DE.fromClient(DE.syn, sport: 2).frame, on: 0).0 == .consumed)
        let reply = DE.arp(.reply, from: DE.rs1MAC, DE.rs1, asking: DE.lvs, tha: DE.lvsMAC, ethDestination: DE.lvsMAC)
        let (verdict, sent) = Self.run(director, &runner, reply, on: 0)
        #expect(verdict == .consumed)
        #expect(sent.count == 1)
        #expect(director.counters.releasedAfterResolution == 1)
        #expect(director.drops.counts[.emitQueueFull] == 1)
        #expect(runner.drops.counts[.emitQueueFull] == nil)
        let arp = director.neighbourCache.counters
        #expect(arp.framesReleased == 2 && arp.framesQueued == 2)
    }
}
