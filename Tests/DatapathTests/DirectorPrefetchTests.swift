import Testing
import Wire
@testable import Datapath

/// The batch prefetch hint changes nothing: the same frames through two
/// directors, one given both prefetch stages for every frame of each batch
/// first (as the run loop does), give the same verdicts, bytes, emitted
/// frames and counters — for new flows, established ones, replies (NAT) and
/// frames it cannot read.
@Suite struct DirectorPrefetchTests {
    @Test func prefetchingABatchChangesNothing() {
        let plain = DE.director(.nat)
        let hinted = DE.director(.nat)
        let a = ElementDriver(plain), b = ElementDriver(hinted)
        DE.learnNeighbours(a)
        DE.learnNeighbours(b)
        var batch: [[UInt8]] = []
        for i in 0..<40 {
            batch.append(DE.fromClient(DE.syn, sport: UInt16(41000 + i)).frame)
            batch.append(DE.fromClient(DE.ack, sport: UInt16(41000 + i), seq: 1001, ack: 5001).frame)
        }
        for i in 0..<8 {
            batch.append(DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 8080, DE.client, UInt16(41000 + i), DE.ack, seq: 5001, ack: 1001,
                                ttl: 64).frame)
        }
        batch.append([1, 2, 3])                                   // runt
        batch.append(Array(DE.fromClient(DE.syn).frame.prefix(30)))  // IPv4 header cut short
        for start in stride(from: 0, to: batch.count, by: 16) {
            let group = Array(batch[start..<min(start + 16, batch.count)])
            for stage in 0..<2 {
                for frame in group { frame.withUnsafeBytes { hinted.prefetch($0, stage: stage) } }
            }
            for frame in group {
                let x = a.send(frame, on: PortID(0), at: .seconds(1))
                let y = b.send(frame, on: PortID(0), at: .seconds(1))
                #expect(x.verdict == y.verdict && x.frame == y.frame && x.emitted == y.emitted)
            }
        }
        #expect(plain.counters == hinted.counters)
        #expect(plain.drops.counts == hinted.drops.counts)
        #expect(Director.prefetchesBatches)
    }
}
