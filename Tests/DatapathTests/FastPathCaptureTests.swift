import Foundation
import Glibc
import LinuxNet
import Testing
import Wire
@testable import Datapath

/// The capture record of a frame says which path it took, and holds the
/// frame as it arrived even when the fast path rewrote it (`walk` names the
/// path of each hop from this flag). Root, on `FastPathHarness` as the
/// differential tests.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to load BPF programs"))
struct FastPathCaptureTests {
    @Test func theCaptureRecordSaysWhichPathTheFrameTook() throws {
        try FastPathHarness.withProgram(ports: 3, tag: "c") { program, indexes in
            try program.setFastPath(enabled: true, generation: 1)
            for index in indexes { try program.setCapture(true, interfaceIndex: index) }
            let ring = try CaptureRing(program: program)
            var r = SeededRandom(seed: 5)
            let flow = FastPathHarness.Flow(
                port: 0, sourceMAC: Lab.clientMAC, destinationMAC: Lab.r0, source: Lab.client, destination: Lab.h2,
                tcp: false, sourcePort: 40002, destinationPort: 53, udpChecksum: true)
            let driver = Lab.resolvedDriver()
            let first = FastPathHarness.frame(flow, &r, ttl: 64, payload: 40)
            let out = driver.send(first, on: PortID(0), at: .seconds(1))
            guard case .forward(let egress) = out.verdict else {
                Issue.record("the router did not forward the flow's first frame: \(out.verdict)")
                return
            }
            let entry = try FastPathEntry.derive(before: first, after: out.frame, ingressSlot: 0,
                                                 egressSlot: UInt16(egress.rawValue), maxLength: 1500, generation: 1)
            try program.installFastPathFlow(key: entry.key.bytes, action: entry.actionBytes)
            let before = program.statistics()

            let later = FastPathHarness.frame(flow, &r, ttl: 64, payload: 40)
            var other = flow
            other.destinationPort = 54   // no entry: the slow path
            let unknown = FastPathHarness.frame(other, &r, ttl: 64, payload: 40)
            let fast = try program.testRun(later, interfaceIndex: indexes[0])
            #expect(fast.action == FastPathHarness.redirect && fast.frame != later, "forwarded and rewritten")
            _ = try program.testRun(unknown, interfaceIndex: indexes[0])

            // (The veths are up: the kernel's own IPv6 frames are captured too.)
            let after = program.statistics()   // before reading: all it counts is in the ring
            var records: [(fast: Bool, bytes: [UInt8], ifindex: UInt32)] = []
            let read = try ring.consume { records.append(($0.fastPath, Array($0.bytes), $0.interfaceIndex)) }
            let ours = records.filter { $0.bytes == later || $0.bytes == unknown }
            #expect(ours.map(\.fast) == [true, false])
            #expect(ours.map(\.bytes) == [later, unknown], "the bytes as received, before the rewrite")
            #expect(ours.allSatisfy { $0.ifindex == UInt32(bitPattern: indexes[0]) })
            #expect(records.filter { $0.fast }.count == 1, "only the frame the fast path took is flagged")
            #expect(UInt64(read) >= after.captured - before.captured && after.captureDropped == before.captureDropped,
                    "every frame captured and read, none lost: \(after)")
            #expect(ring.malformedRecords == 0)
        }
    }
}
