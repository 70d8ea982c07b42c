import Testing
@testable import LinuxNet

/// `struct wl_capture_hdr` as the program writes it, read back (no root).
struct CaptureRecordTests {
    /// A record: the header's fields little-endian (the host's order), then BYTES.
    static func record(stamp: UInt64, ifindex: UInt32, wire: UInt32, captured: UInt32, queue: UInt32, flags: UInt32,
                       bytes: [UInt8]) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        return le(stamp) + le(ifindex) + le(wire) + le(captured) + le(queue) + le(flags) + le(UInt32(0)) + bytes
    }

    @Test func theHeaderAndTheFastPathFlagAreRead() {
        let frame: [UInt8] = [1, 2, 3, 4, 5]
        for (flags, fast) in [(UInt32(0), false), (1, true), (0xFFFF_FFFE, false)] {
            let bytes = Self.record(stamp: 1_000, ifindex: 7, wire: 1500, captured: 5, queue: 2, flags: flags, bytes: frame)
            #expect(bytes.count == CapturedFrame.headerSize + 5)
            let parsed = bytes.withUnsafeBytes { raw in
                CapturedFrame(record: raw, timestampOffset: 500).map { ($0.interfaceIndex, $0.wireLength, Array($0.bytes), $0.queue, $0.monotonicNanoseconds, $0.timestampNanoseconds, $0.fastPath) }
            }
            #expect(parsed?.0 == 7 && parsed?.1 == 1500 && parsed?.2 == frame && parsed?.3 == 2)
            #expect(parsed?.4 == 1_000 && parsed?.5 == 1_500, "the monotonic stamp, and shifted to the wall clock")
            #expect(parsed?.6 == fast, "flags \(flags)")
        }
    }

    @Test func aRecordShorterThanItSaysIsRefused() {
        let header = Self.record(stamp: 1, ifindex: 1, wire: 60, captured: 60, queue: 0, flags: 1, bytes: [])
        let short = header + [UInt8](repeating: 0, count: 59)
        #expect(short.withUnsafeBytes { CapturedFrame(record: $0, timestampOffset: 0) } == nil)
        #expect(Array(header.prefix(CapturedFrame.headerSize - 1)).withUnsafeBytes { CapturedFrame(record: $0, timestampOffset: 0) } == nil)
        #expect((header + [UInt8](repeating: 9, count: 60)).withUnsafeBytes { CapturedFrame(record: $0, timestampOffset: 0)?.bytes.count } == 60)
    }
}
