// CaptureRing — reads the frames the XDP program copies into its BPF ring buffer.
import CXDP
import Glibc

/// One frame copied by the XDP program into the capture ring.
/// `bytes` is valid only inside the `consume` handler.
public struct CapturedFrame {
    /// Interface the frame arrived on (in the node's namespace).
    public var interfaceIndex: UInt32
    /// Receive queue it arrived on.
    public var queue: UInt32
    /// When the XDP program saw it: wall-clock (CLOCK_REALTIME) nanoseconds
    /// since the Unix epoch, converted from the program's CLOCK_MONOTONIC
    /// stamp with the REALTIME − MONOTONIC offset at `consume` time.
    public var timestampNanoseconds: Int64
    /// The program's raw bpf_ktime_get_ns() stamp (CLOCK_MONOTONIC).
    public var monotonicNanoseconds: UInt64
    /// Length of the whole frame, bytes.
    public var wireLength: Int
    /// The captured bytes (the first min(wireLength, snap length) bytes),
    /// as received: before the fast path rewrote them.
    public var bytes: UnsafeRawBufferPointer
    /// The program's fast path forwarded the frame (rewritten and
    /// redirected out of its egress port in the kernel); false when it went
    /// to the socket or to the kernel stack.
    public var fastPath: Bool

    /// The header of `struct wl_capture_hdr` (bpf/wirelab_xdp.bpf.c) and
    /// the bytes after it; nil when the record is shorter than it says.
    /// `timestampOffset` turns the program's CLOCK_MONOTONIC stamp into
    /// wall-clock nanoseconds.
    public init?(record: UnsafeRawBufferPointer, timestampOffset: Int64) {
        guard record.count >= Self.headerSize else { return nil }
        // { u64 timestamp_ns; u32 ifindex, wire_len, cap_len, rx_queue, flags, pad; }
        let stamp = record.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        let captured = Int(record.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        guard captured <= record.count - Self.headerSize else { return nil }
        interfaceIndex = record.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        wireLength = Int(record.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        queue = record.loadUnaligned(fromByteOffset: 20, as: UInt32.self)
        fastPath = record.loadUnaligned(fromByteOffset: 24, as: UInt32.self) & Self.fastPathFlag != 0
        monotonicNanoseconds = stamp
        timestampNanoseconds = Int64(bitPattern: stamp) &+ timestampOffset
        bytes = UnsafeRawBufferPointer(rebasing: record[Self.headerSize ..< Self.headerSize + captured])
    }

    /// Size of `struct wl_capture_hdr`.
    public static let headerSize = 32
    /// WL_CAPTURE_FAST in the header's flags.
    static let fastPathFlag: UInt32 = 1
}

/// Reader of the XDP program's capture ring (libbpf `ring_buffer`).
///
/// poll() `fd` for POLLIN (it is the ring's epoll fd: readable when records
/// are waiting), then `consume` them. One thread at a time.
public final class CaptureRing: @unchecked Sendable {
    /// Epoll fd of the ring, to poll() for POLLIN.
    public let fd: Int32
    private var ring: OpaquePointer?
    private let context: UnsafeMutablePointer<Context>
    /// The program whose map this reads, kept alive while the ring is.
    private let program: XDPProgram?

    struct Context {
        var handler: ((CapturedFrame) -> Void)?
        var offset: Int64 = 0
        var malformed: UInt64 = 0
    }

    /// Records shorter than their header says, skipped (should stay 0).
    public var malformedRecords: UInt64 { context.pointee.malformed }

    /// Reads the capture ring of `program`.
    public convenience init(program: XDPProgram) throws {
        try self.init(mapFD: program.captureMapFD, program: program)
    }

    /// Reads the BPF_MAP_TYPE_RINGBUF map `mapFD` written by wirelab_xdp.
    public init(mapFD: Int32, program: XDPProgram? = nil) throws {
        context = .allocate(capacity: 1)
        context.initialize(to: Context())
        guard let ring = ring_buffer__new(mapFD, captureRingSample, context, nil) else {
            let err = Glibc.errno
            context.deinitialize(count: 1)
            context.deallocate()
            throw PortError("opening capture ring (ring_buffer__new)", errno: err)
        }
        self.ring = ring
        fd = ring_buffer__epoll_fd(ring)
        self.program = program
    }

    deinit { close() }

    public func close() {
        guard let ring else { return }
        ring_buffer__free(ring)
        self.ring = nil
        context.deinitialize(count: 1)
        context.deallocate()
    }

    /// Delivers every waiting record to `handler`, oldest first; returns how
    /// many. Does not block.
    @discardableResult
    public func consume(_ handler: (CapturedFrame) -> Void) throws -> Int {
        guard let ring else { return 0 }
        var realtime = timespec()
        var monotonic = timespec()
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        clock_gettime(CLOCK_REALTIME, &realtime)
        context.pointee.offset = (Int64(realtime.tv_sec) - Int64(monotonic.tv_sec)) * 1_000_000_000
            + Int64(realtime.tv_nsec) - Int64(monotonic.tv_nsec)
        let rc: Int32 = withoutActuallyEscaping(handler) { escapable in
            context.pointee.handler = escapable
            defer { context.pointee.handler = nil }
            return ring_buffer__consume(ring)
        }
        if rc < 0 { throw PortError("reading capture ring (ring_buffer__consume)", errno: -rc) }
        return Int(rc)
    }

    /// Waits up to `timeoutMilliseconds` for records, then consumes them.
    @discardableResult
    public func poll(timeoutMilliseconds: Int32, _ handler: (CapturedFrame) -> Void) throws -> Int {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = Glibc.poll(&p, 1, timeoutMilliseconds)
        return try consume(handler)
    }
}

private func captureRingSample(_ ctx: UnsafeMutableRawPointer?, _ data: UnsafeMutableRawPointer?, _ size: Int) -> Int32 {
    guard let ctx, let data else { return 0 }
    let context = ctx.assumingMemoryBound(to: CaptureRing.Context.self)
    guard let frame = CapturedFrame(record: UnsafeRawBufferPointer(start: data, count: size),
                                    timestampOffset: context.pointee.offset) else {
        context.pointee.malformed &+= 1
        return 0
    }
    context.pointee.handler?(frame)
    return 0
}
