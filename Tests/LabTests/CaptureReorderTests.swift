import Testing
@testable import Lab

/// A link's two directions come from two sources drained one after the
/// other; the reorder buffer writes them in timestamp order.
struct CaptureReorderTests {
    typealias Out = (bytes: [UInt8], timestamp: UInt64, originalLength: Int, end: UInt8)

    static func add(_ r: inout CaptureReorder, _ bytes: [UInt8], at timestamp: UInt64, end: UInt8, originalLength: Int? = nil) {
        bytes.withUnsafeBytes { r.add($0, timestamp: timestamp, originalLength: originalLength ?? bytes.count, end: end) }
    }

    static func release(_ r: inout CaptureReorder, upTo cutoff: UInt64?) -> [Out] {
        var out: [Out] = []
        r.release(upTo: cutoff) { bytes, timestamp, originalLength, end in out.append((Array(bytes), timestamp, originalLength, end)) }
        return out
    }

    @Test func framesOfTwoSourcesComeOutInStampOrderWithTheirBytesAndEnds() {
        var r = CaptureReorder()
        // Drain order: the ring's reply first, then libpcap's request.
        Self.add(&r, [0xA1, 0xA2, 0xA3], at: 917, end: 1)
        Self.add(&r, [0xB1], at: 347, end: 0, originalLength: 60)
        Self.add(&r, [0xC1, 0xC2], at: 1_500, end: 0)
        let out = Self.release(&r, upTo: 1_000)
        #expect(out.map(\.timestamp) == [347, 917])
        #expect(out.map(\.bytes) == [[0xB1], [0xA1, 0xA2, 0xA3]])
        #expect(out.map(\.end) == [0, 1])
        #expect(out.map(\.originalLength) == [60, 3])
        #expect(r.count == 1, "the frame after the cutoff waits")

        // It waits for an earlier frame drained later, and keeps its bytes.
        Self.add(&r, [0xD1, 0xD2, 0xD3, 0xD4], at: 1_200, end: 1)
        let rest = Self.release(&r, upTo: nil)
        #expect(rest.map(\.timestamp) == [1_200, 1_500])
        #expect(rest.map(\.bytes) == [[0xD1, 0xD2, 0xD3, 0xD4], [0xC1, 0xC2]])
        #expect(r.isEmpty)
    }

    @Test func equalStampsKeepTheOrderTheyCameIn() {
        var r = CaptureReorder()
        for i in 0..<50 { Self.add(&r, [UInt8(i)], at: 7, end: UInt8(i % 2)) }
        Self.add(&r, [0xFF], at: 3, end: 0)
        let out = Self.release(&r, upTo: nil)
        #expect(out.map(\.bytes) == [[0xFF]] + (0..<50).map { [UInt8($0)] })
    }

    @Test func nothingOldEnoughStaysHeldUntouched() {
        var r = CaptureReorder()
        Self.add(&r, [1, 2], at: 100, end: 0)
        #expect(Self.release(&r, upTo: 99).isEmpty)
        #expect(Self.release(&r, upTo: nil).map(\.bytes) == [[1, 2]])
    }
}
