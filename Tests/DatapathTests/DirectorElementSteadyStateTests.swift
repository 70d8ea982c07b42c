import Testing
import Wire
@testable import Datapath

/// The run loop's view: `process` called directly on one reused buffer
/// and emitter, the packets of established flows over and over, both
/// directions where the director sees both. Every packet must be forwarded
/// and nothing emitted. This is also the loop to run under heaptrack to
/// check that the packet path does not allocate:
///
///     heaptrack .build/debug/wirelabPackageTests.xctest --testing-library swift-testing \
///         --filter DirectorElementSteadyStateTests
///
/// (then `heaptrack_print` shows no allocation under `Director.process`).
@Suite struct DirectorElementSteadyStateTests {
    @Test(arguments: ForwardingMode.allCases)
    func establishedFlowsLoop(_ mode: ForwardingMode) {
        let director = DE.director(mode)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        var frames: [[UInt8]] = []
        for port: UInt16 in 40000..<40016 {
            _ = driver.send(DE.fromClient(DE.syn, sport: port).frame, on: PortID(0), at: .seconds(1))
            let ack = DE.fromClient(DE.ack, sport: port, seq: 1001, ack: 5001, payload: [UInt8](repeating: 0x41, count: 100))
            let out = driver.send(ack.frame, on: PortID(0), at: .seconds(1))
            frames.append(ack.frame)
            if mode.seesReplies {
                // The real's answer to what it received.
                let f = out.frame
                let real = IPv4Address(rawValue: f[30..<34].reduce(0) { $0 << 8 | UInt32($1) })
                let to = IPv4Address(rawValue: f[26..<30].reduce(0) { $0 << 8 | UInt32($1) })
                let toPort = UInt16(f[34]) << 8 | UInt16(f[35])
                frames.append(DE.tcp(real == DE.rs1 ? DE.rs1MAC : DE.rs2MAC, DE.lvsMAC, real, 80, to, toPort, DE.ack,
                                     seq: 5001, ack: 1101, ttl: 64, payload: [UInt8](repeating: 0x42, count: 200)).frame)
            }
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: ElementDriver.bufferSize, alignment: 64)
        defer { buffer.deallocate() }
        var emitter = Emitter(slots: 8)
        let before = director.counters
        var forwarded = 0
        let rounds = 2_000
        for round in 0..<rounds {
            let now = Instant.seconds(2).adding(nanoseconds: UInt64(round) * 1000)
            for frame in frames {
                frame.withUnsafeBytes { (buffer + ElementDriver.headroom).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                var packet = PacketBuffer(base: buffer, capacity: ElementDriver.bufferSize, offset: ElementDriver.headroom,
                                          length: frame.count)
                if case .forward = director.process(&packet, from: PortID(0), now: now, emit: &emitter) { forwarded += 1 }
            }
        }
        #expect(forwarded == rounds * frames.count)
        #expect(emitter.count == 0)
        #expect(director.drops.total == 0)
        #expect(director.counters.received - before.received == UInt64(rounds * frames.count))
    }

    /// The element reads a connection's mode through this index.
    @Test func modeIndexMatchesTheModeTable() {
        for m in ForwardingMode.allCases { #expect(DirectorCore.modes[Int(DirectorCore.modeIndex(m))] == m) }
    }
}
