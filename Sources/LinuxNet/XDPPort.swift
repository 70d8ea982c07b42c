// XDPPort — one AF_XDP socket (copy mode) on (interface, queue) with its own UMEM.
import CXDP
import Glibc
import Synchronization

/// One AF_XDP socket on (interface, queue) with its own UMEM, driven by a
/// batched run-to-completion loop.
///
/// UMEM: `frameCount` frames of `frameSize` bytes (default 1024 × 2048 =
/// 2 MiB, not charged to RLIMIT_MEMLOCK when the process has CAP_IPC_LOCK).
/// The first half feeds the fill ring (RX), the second half is the TX free
/// list. The fill ring hands frames back in the order they were released, so
/// the kernel's RX copies cycle through every RX frame: the fewer there are,
/// the more of them are still in cache (512 RX frames forwarded 4–8 % more
/// than 2048 in `bench forward`; 256 no more than 512). In copy mode the kernel writes a received frame 256 bytes
/// (XDP_PACKET_HEADROOM) into its UMEM frame, so the largest frame received is
/// frameSize - 256 (1792 bytes with 2048-byte frames; longer frames are
/// dropped and counted in `rxDropped`); use 4096-byte frames for a larger MTU.
///
/// The socket binds with XDP_COPY | XDP_USE_NEED_WAKEUP: veth has no
/// zero-copy support. libxdp's own program is inhibited; frames reach the
/// socket through the node's `XDPProgram`, which this port attaches to the
/// interface and registers the socket in.
///
/// Create it on a thread inside the node's namespace (interface names,
/// indexes and the socket's bind are resolved there); afterwards one thread at
/// a time may drive it from anywhere. No allocation per packet.
// @unchecked: UMEM, rings and libxdp handles are raw C state; one thread at a time drives the port (see above).
public final class XDPPort: PacketPort, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Receive queue to bind (veth: 0).
        public var queue: UInt32 = 0
        /// UMEM frame size, bytes: 2048 or 4096.
        public var frameSize: Int = 2048
        /// UMEM frames; half for RX (fill ring), half for TX. Power of two.
        /// 512 RX frames are twice veth's own receive ring (256).
        public var frameCount: Int = 1024
        public init() {}
    }

    public let interfaceName: String
    public let interfaceIndex: Int32
    public let queue: UInt32
    /// The AF_XDP socket, to poll() for POLLIN.
    public let fd: Int32
    public let maxFrameLength: Int
    /// The node's XDP program this port is attached through.
    public let program: XDPProgram

    @usableFromInline let state: UnsafeMutablePointer<XDPPortState>
    @usableFromInline let cells: PortCounterCells
    private var umem: OpaquePointer?
    private var socket: OpaquePointer?
    private let area: UnsafeMutableRawPointer
    private let areaSize: Int
    private var closed = false

    /// Opens the port: maps and registers the UMEM, creates the socket
    /// (xsk_umem__create, xsk_socket__create with
    /// XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD), attaches `program` to the
    /// interface if it is not attached yet, registers the socket in the
    /// program's XSKMAP and fills the fill ring. When `program` is nil the
    /// port loads a program of its own. Throws `PortError` naming the step,
    /// interface and namespace; there is no fallback to another socket type.
    public init(interface name: String, program: XDPProgram? = nil,
                configuration: Configuration = Configuration()) throws {
        let frameSize = configuration.frameSize
        let frameCount = configuration.frameCount
        guard frameSize == 2048 || frameSize == 4096 else {
            throw PortError("opening AF_XDP port", interface: name, detail: "frame size \(frameSize) is not 2048 or 4096")
        }
        guard frameCount >= 16, frameCount & (frameCount - 1) == 0 else {
            throw PortError("opening AF_XDP port", interface: name, detail: "frame count \(frameCount) is not a power of two ≥ 16")
        }
        let ifindex = try portInterfaceIndex(name, operation: "opening AF_XDP port")
        let program = try program ?? XDPProgram()

        let areaSize = frameSize * frameCount
        guard let mapped = mmap(nil, areaSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0),
              mapped != MAP_FAILED else {
            throw PortError("mapping \(areaSize >> 20) MiB UMEM for AF_XDP port", interface: name, errno: Glibc.errno)
        }
        let rxFrames = frameCount / 2
        let txFrames = frameCount - rxFrames
        let state = UnsafeMutablePointer<XDPPortState>.allocate(capacity: 1)
        state.initialize(to: XDPPortState(area: mapped, frameSize: frameSize, rxFrames: rxFrames, txFrames: txFrames))

        // From here on a failure undoes what was made.
        var umem: OpaquePointer?
        var socket: OpaquePointer?
        var attached = false
        func cleanup() {
            if let socket { xsk_socket__delete(socket) }
            if let umem { xsk_umem__delete(umem) }
            if attached { program.detach(interfaceIndex: ifindex) }
            munmap(mapped, areaSize)
            state.pointee.deallocateBuffers()
            state.deinitialize(count: 1)
            state.deallocate()
        }

        // The fill ring is twice the RX frames: the kernel takes fill
        // entries into a private cache and publishes its consumer index
        // late, so frames we already received (and return) can still count
        // as "in the fill ring" — with a ring of exactly rxFrames, returning
        // them found no room (seen in CI: "fill ring full" under load).
        var umemConfig = xsk_umem_config(fill_size: UInt32(rxFrames * 2), comp_size: UInt32(txFrames),
                                         frame_size: UInt32(frameSize), frame_headroom: 0, flags: 0)
        var rc = xsk_umem__create(&umem, mapped, UInt64(areaSize), &state.pointee.fill, &state.pointee.comp, &umemConfig)
        if rc != 0 {
            cleanup()
            throw PortError("registering UMEM (xsk_umem__create, \(frameCount) × \(frameSize) B)", interface: name, errno: -rc)
        }

        do { try program.attach(interfaceIndex: ifindex, name: name) } catch { cleanup(); throw error }
        attached = true

        var socketConfig = xsk_socket_config()
        socketConfig.rx_size = UInt32(rxFrames)
        socketConfig.tx_size = UInt32(txFrames)
        socketConfig.libxdp_flags = UInt32(XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD)
        socketConfig.xdp_flags = 0
        socketConfig.bind_flags = UInt16(XDP_COPY | XDP_USE_NEED_WAKEUP)
        rc = name.withCString { cname in
            xsk_socket__create(&socket, cname, configuration.queue, umem, &state.pointee.rx, &state.pointee.tx, &socketConfig)
        }
        if rc != 0 {
            cleanup()
            let err = -rc
            let hint: String
            switch err {
            case EPERM: hint = "needs CAP_NET_RAW and CAP_NET_ADMIN"
            case EAFNOSUPPORT: hint = "kernel built without CONFIG_XDP_SOCKETS"
            case EBUSY: hint = "queue \(configuration.queue) already has an AF_XDP socket"
            case EINVAL: hint = "queue \(configuration.queue) may not exist on this interface"
            default: hint = ""
            }
            throw PortError("creating AF_XDP socket (xsk_socket__create, queue \(configuration.queue), copy mode)",
                            interface: name, errno: err, detail: hint)
        }
        let fd = xsk_socket__fd(socket)
        do { try program.registerSocket(fd, interfaceIndex: ifindex, queue: configuration.queue) } catch {
            cleanup(); throw error
        }

        interfaceName = name
        interfaceIndex = ifindex
        queue = configuration.queue
        maxFrameLength = frameSize
        self.program = program
        self.fd = fd
        self.umem = umem
        self.socket = socket
        self.area = mapped
        self.areaSize = areaSize
        self.state = state
        cells = PortCounterCells()

        // Give every RX frame to the kernel.
        var index: UInt32 = 0
        let reserved = xsk_ring_prod__reserve(&state.pointee.fill, UInt32(rxFrames), &index)
        precondition(reserved == UInt32(rxFrames), "fill ring smaller than the RX frames")
        for i in 0..<rxFrames {
            xsk_ring_prod__fill_addr(&state.pointee.fill, index &+ UInt32(i)).pointee = UInt64(i * frameSize)
        }
        xsk_ring_prod__submit(&state.pointee.fill, reserved)
    }

    deinit { close() }

    /// Closes the socket, deletes the UMEM and drops the port's reference to
    /// the program's attachment (the last one detaches it). Idempotent. Only after the loop
    /// stopped using the port.
    public func close() {
        guard !closed else { return }
        closed = true
        if let socket { xsk_socket__delete(socket) }
        socket = nil
        if let umem { xsk_umem__delete(umem) }
        umem = nil
        program.detach(interfaceIndex: interfaceIndex)
        munmap(area, areaSize)
        state.pointee.deallocateBuffers()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    // MARK: receive

    /// Takes up to `batch.capacity` frames from the RX ring. The frames stay
    /// the port's until `release(_:)`.
    @inlinable
    public func receive(into batch: inout PortBatch) -> Int {
        precondition(batch.count == 0, "receive into a batch whose frames were not released")
        let s = state
        var index: UInt32 = 0
        let n = Int(xsk_ring_cons__peek(&s.pointee.rx, UInt32(batch.capacity), &index))
        guard n > 0 else {
            batch.storedCount = 0
            return 0
        }
        let area = s.pointee.area
        let mask = ~UInt64(s.pointee.frameSize - 1)
        var bytes = 0
        for i in 0..<n {
            let desc = xsk_ring_cons__rx_desc(&s.pointee.rx, index &+ UInt32(truncatingIfNeeded: i))!
            let addr = desc.pointee.addr
            let length = Int(desc.pointee.len)
            batch.addresses[i] = area + Int(truncatingIfNeeded: addr)
            batch.starts[i] = area + Int(truncatingIfNeeded: addr & mask)
            batch.lengths[i] = length
            batch.handles[i] = addr & mask
            bytes &+= length
        }
        xsk_ring_cons__release(&s.pointee.rx, UInt32(truncatingIfNeeded: n))
        batch.storedCount = n
        batch.bufferSize = s.pointee.frameSize
        batch.owner = identity
        cells.rxPackets.wrappingAdd(UInt64(n), ordering: .relaxed)
        cells.rxBytes.wrappingAdd(UInt64(bytes), ordering: .relaxed)
        return n
    }

    /// Gives the frames of `batch` back to the fill ring (wakes the kernel
    /// with recvfrom when the fill ring asks for it).
    @inlinable
    public func release(_ batch: inout PortBatch) {
        let n = batch.count
        guard n > 0 else { return }
        precondition(batch.owner == identity, "releasing a batch received on another port")
        let s = state
        var index: UInt32 = 0
        // The fill ring holds twice the RX frames (see init), so there is
        // always room, even before the kernel publishes what it consumed.
        let reserved = Int(xsk_ring_prod__reserve(&s.pointee.fill, UInt32(truncatingIfNeeded: n), &index))
        precondition(reserved == n, "fill ring full: an RX frame was released twice")
        for i in 0..<n {
            xsk_ring_prod__fill_addr(&s.pointee.fill, index &+ UInt32(truncatingIfNeeded: i)).pointee = batch.handles[i]
        }
        xsk_ring_prod__submit(&s.pointee.fill, UInt32(truncatingIfNeeded: n))
        batch.storedCount = 0
        if xsk_ring_prod__needs_wakeup(&s.pointee.fill) != 0 {
            // Copy mode never asks (only zero-copy drivers set the flag); kept
            // for correctness if the socket ever runs zero-copy.
            _ = recvfrom(fd, nil, 0, Int32(MSG_DONTWAIT), nil, nil)
            cells.wakeups.wrappingAdd(1, ordering: .relaxed)
        }
    }

    // MARK: transmit

    /// Copies `frame` into a free TX frame and queues it; `flush()` sends it.
    @inlinable @discardableResult
    public func transmit(copying frame: UnsafeRawBufferPointer) -> Bool {
        transmit { buffer in
            guard frame.count <= buffer.count else { return -1 }
            if let base = frame.baseAddress { buffer.baseAddress!.copyMemory(from: base, byteCount: frame.count) }
            return frame.count
        }
    }

    /// Reserves a free TX frame, lets `fill` write the frame into it and
    /// queues it; `flush()` sends it. `fill` gets the whole UMEM frame
    /// (`maxFrameLength` bytes) and returns the frame's length: 0 cancels;
    /// negative or more than the buffer cancels and counts `txTooLong`.
    @inlinable @discardableResult
    public func transmit(_ fill: (UnsafeMutableRawBufferPointer) -> Int) -> Bool {
        let s = state
        if s.pointee.txFreeCount == 0 {
            reapCompletions()
            // Every TX frame is queued: send them now (copy mode transmits
            // inside the kick) rather than refuse, so a burst larger than
            // the TX frames goes out in parts; a small port stays lossless.
            if s.pointee.txFreeCount == 0 && s.pointee.txQueued > 0 { flush() }
            if s.pointee.txFreeCount == 0 {
                cells.txBusy.wrappingAdd(1, ordering: .relaxed)
                return false
            }
        }
        let addr = s.pointee.txFree[s.pointee.txFreeCount - 1]
        let buffer = UnsafeMutableRawBufferPointer(start: s.pointee.area + Int(truncatingIfNeeded: addr),
                                                   count: s.pointee.frameSize)
        let length = fill(buffer)
        guard length > 0 && length <= buffer.count else {
            if length != 0 { cells.txTooLong.wrappingAdd(1, ordering: .relaxed) }
            return false
        }
        var index: UInt32 = 0
        guard xsk_ring_prod__reserve(&s.pointee.tx, 1, &index) == 1 else {
            cells.txBusy.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        s.pointee.txFreeCount -= 1
        let desc = xsk_ring_prod__tx_desc(&s.pointee.tx, index)!
        desc.pointee.addr = addr
        desc.pointee.len = UInt32(truncatingIfNeeded: length)
        desc.pointee.options = 0
        s.pointee.txQueued &+= 1
        s.pointee.txQueuedBytes &+= length
        return true
    }

    /// Publishes queued TX descriptors, kicks the kernel (sendto) while the
    /// TX ring needs it and frames are outstanding, and reaps completions.
    /// Call after every RX burst.
    @inlinable
    public func flush() {
        let s = state
        if s.pointee.txQueued > 0 {
            xsk_ring_prod__submit(&s.pointee.tx, s.pointee.txQueued)
            cells.txPackets.wrappingAdd(UInt64(s.pointee.txQueued), ordering: .relaxed)
            cells.txBytes.wrappingAdd(UInt64(s.pointee.txQueuedBytes), ordering: .relaxed)
            s.pointee.txQueued = 0
            s.pointee.txQueuedBytes = 0
            kick()
        }
        reapCompletions()
    }

    /// Copy mode transmits inside sendto(), at most the kernel's TX budget
    /// (32 frames) per call, answering EAGAIN while more remain: call again
    /// while the kernel makes progress. A kick that makes none (device
    /// busy, no memory) leaves the rest for the next flush or poll() — in
    /// copy mode poll() on the socket also drives TX.
    @usableFromInline
    func kick() {
        let s = state
        guard xsk_ring_prod__needs_wakeup(&s.pointee.tx) != 0 else { return }
        let size = s.pointee.tx.size
        var outstanding = size &- xsk_prod_nb_free(&s.pointee.tx, size)
        var rounds = 0
        while outstanding > 0 && rounds < 256 {
            rounds += 1
            let rc = sendto(fd, nil, 0, Int32(MSG_DONTWAIT), nil, 0)
            let err = rc < 0 ? Glibc.errno : 0
            cells.wakeups.wrappingAdd(1, ordering: .relaxed)
            let now = size &- xsk_prod_nb_free(&s.pointee.tx, size)
            if rc < 0 && err != EAGAIN && err != EINTR || now >= outstanding {
                cells.txKickStalls.wrappingAdd(1, ordering: .relaxed)
                return
            }
            outstanding = now
        }
    }

    /// Descriptors in the TX ring the kernel has not consumed yet, or queued
    /// and not flushed — not counting those `discardPendingTransmit` voided.
    @inlinable
    public var hasPendingTransmit: Bool {
        let s = state
        guard s.pointee.txQueued == 0 else { return true }
        let size = s.pointee.tx.size
        var outstanding = size &- xsk_prod_nb_free(&s.pointee.tx, size)
        guard outstanding > 0 else { return false }
        // Voided descriptors still between the kernel's consumer and `txVoidedTo`.
        let voided = s.pointee.txVoidedTo &- (s.pointee.tx.cached_prod &- outstanding)
        if Int32(bitPattern: voided) > 0 && voided <= outstanding { outstanding &-= voided }
        return outstanding > 0
    }

    /// Throws away the frames queued and not flushed, and those in the TX
    /// ring the kernel has not consumed (a socket whose interface is down
    /// keeps them, and sends them all the moment it comes back up); returns
    /// how many. Copy mode consumes the TX ring only inside this socket's
    /// own syscalls (sendto, poll), made by the thread that calls this, so
    /// between them the ring's unconsumed part is ours to change: each of
    /// its descriptors is voided in place (an address just past the UMEM:
    /// the kernel counts it invalid, `tx_invalid_descs`, and skips it — 6.18
    /// also completes it, which `reapCompletions` ignores) and its frame
    /// goes back to the free list now. Completions are
    /// reaped first, and a frame already free is not freed twice (a
    /// descriptor the kernel consumed without publishing its consumer index
    /// yet, e.g. dropped for want of carrier, is also completed already).
    /// Allocates (a bitmap of the TX frames): only when carrier goes.
    @discardableResult
    public func discardPendingTransmit() -> Int {
        guard !closed else { return 0 }
        let s = state
        reapCompletions()
        let frameSize = UInt64(s.pointee.frameSize)
        let firstTX = UInt64(s.pointee.rxFrames) * frameSize
        let end = UInt64(areaSize)
        var free = [Bool](repeating: false, count: s.pointee.txFrames)
        for i in 0..<s.pointee.txFreeCount { free[Int((s.pointee.txFree[i] - firstTX) / frameSize)] = true }
        var discarded = 0
        // Queued since the last flush: the kernel never saw them; take the reservation back.
        let queued = s.pointee.txQueued
        if queued > 0 {
            s.pointee.tx.cached_prod &-= queued
            s.pointee.txQueued = 0
            s.pointee.txQueuedBytes = 0
        }
        // Submitted and not consumed, then the queued ones: free their
        // frames and void the descriptors in place.
        let consumer = s.pointee.tx.consumer.pointee
        let submitted = s.pointee.tx.producer.pointee
        var index = consumer
        let last = submitted &+ queued
        while index != last {
            let desc = xsk_ring_prod__tx_desc(&s.pointee.tx, index)!
            let addr = desc.pointee.addr
            if addr >= firstTX && addr < end {
                let frame = Int((addr - firstTX) / frameSize)
                if !free[frame] {
                    free[frame] = true
                    s.pointee.txFree[s.pointee.txFreeCount] = addr & ~(frameSize - 1)
                    s.pointee.txFreeCount += 1
                }
                discarded += 1
            }
            desc.pointee.addr = end   // (a queued slot is rewritten when reserved again)
            desc.pointee.len = 0
            desc.pointee.options = 0
            index &+= 1
        }
        s.pointee.txVoidedTo = submitted
        return discarded
    }

    @usableFromInline
    func reapCompletions() {
        let s = state
        var index: UInt32 = 0
        let n = Int(xsk_ring_cons__peek(&s.pointee.comp, UInt32(truncatingIfNeeded: s.pointee.txFrames), &index))
        guard n > 0 else { return }
        // A voided descriptor (`discardPendingTransmit`) points past the
        // UMEM; a kernel may complete it (6.18 does): its frame is free already.
        let end = UInt64((s.pointee.rxFrames + s.pointee.txFrames) * s.pointee.frameSize)
        for i in 0..<n {
            let addr = xsk_ring_cons__comp_addr(&s.pointee.comp, index &+ UInt32(truncatingIfNeeded: i))!.pointee
            guard addr < end else { continue }
            s.pointee.txFree[s.pointee.txFreeCount] = addr & ~UInt64(s.pointee.frameSize - 1)
            s.pointee.txFreeCount += 1
        }
        xsk_ring_cons__release(&s.pointee.comp, UInt32(truncatingIfNeeded: n))
    }

    // MARK: counters

    /// Port counters plus the kernel's XDP_STATISTICS for the socket.
    public var counters: PortCounters {
        var c = cells.snapshot()
        if let k = kernelStatistics() {
            c.rxDropped = k.rx_dropped &+ k.rx_ring_full &+ k.rx_fill_ring_empty_descs
        }
        return c
    }

    /// The kernel's XDP_STATISTICS for the socket (getsockopt), nil once closed.
    public func kernelStatistics() -> xdp_statistics? {
        guard !closed else { return nil }
        var stats = xdp_statistics()
        var length = socklen_t(MemoryLayout<xdp_statistics>.size)
        guard getsockopt(fd, SOL_XDP, XDP_STATISTICS, &stats, &length) == 0 else { return nil }
        return stats
    }

    @usableFromInline var identity: UInt { UInt(bitPattern: ObjectIdentifier(self).hashValue) }
}

/// The mutable hot-path state of an XDPPort, at a stable address (libxdp keeps
/// pointers to the rings) and outside Swift's exclusivity checks.
@usableFromInline
struct XDPPortState {
    @usableFromInline var fill = xsk_ring_prod()
    @usableFromInline var comp = xsk_ring_cons()
    @usableFromInline var rx = xsk_ring_cons()
    @usableFromInline var tx = xsk_ring_prod()
    @usableFromInline let area: UnsafeMutableRawPointer
    @usableFromInline let frameSize: Int
    @usableFromInline let rxFrames: Int
    @usableFromInline let txFrames: Int
    /// Stack of free TX frame addresses.
    @usableFromInline let txFree: UnsafeMutablePointer<UInt64>
    @usableFromInline var txFreeCount: Int
    /// Descriptors reserved and written since the last flush.
    @usableFromInline var txQueued: UInt32 = 0
    @usableFromInline var txQueuedBytes: Int = 0
    /// The TX ring's producer index when `discardPendingTransmit` last ran:
    /// descriptors before it are voided (see there).
    @usableFromInline var txVoidedTo: UInt32 = 0

    init(area: UnsafeMutableRawPointer, frameSize: Int, rxFrames: Int, txFrames: Int) {
        self.area = area
        self.frameSize = frameSize
        self.rxFrames = rxFrames
        self.txFrames = txFrames
        txFree = .allocate(capacity: txFrames)
        for i in 0..<txFrames { txFree[i] = UInt64((rxFrames + i) * frameSize) }
        txFreeCount = txFrames
    }

    func deallocateBuffers() { txFree.deallocate() }
}

/// Counters readable from any thread (relaxed atomics, updated per burst).
@usableFromInline
final class PortCounterCells: Sendable {
    @usableFromInline let rxPackets = Atomic<UInt64>(0)
    @usableFromInline let rxBytes = Atomic<UInt64>(0)
    @usableFromInline let txPackets = Atomic<UInt64>(0)
    @usableFromInline let txBytes = Atomic<UInt64>(0)
    @usableFromInline let rxDropped = Atomic<UInt64>(0)
    @usableFromInline let rxTruncated = Atomic<UInt64>(0)
    @usableFromInline let txBusy = Atomic<UInt64>(0)
    @usableFromInline let txTooLong = Atomic<UInt64>(0)
    @usableFromInline let txKickStalls = Atomic<UInt64>(0)
    @usableFromInline let txErrors = Atomic<UInt64>(0)
    @usableFromInline let wakeups = Atomic<UInt64>(0)

    @usableFromInline init() {}

    func snapshot() -> PortCounters {
        var c = PortCounters()
        c.rxPackets = rxPackets.load(ordering: .relaxed)
        c.rxBytes = rxBytes.load(ordering: .relaxed)
        c.txPackets = txPackets.load(ordering: .relaxed)
        c.txBytes = txBytes.load(ordering: .relaxed)
        c.rxDropped = rxDropped.load(ordering: .relaxed)
        c.rxTruncated = rxTruncated.load(ordering: .relaxed)
        c.txBusy = txBusy.load(ordering: .relaxed)
        c.txTooLong = txTooLong.load(ordering: .relaxed)
        c.txKickStalls = txKickStalls.load(ordering: .relaxed)
        c.txErrors = txErrors.load(ordering: .relaxed)
        c.wakeups = wakeups.load(ordering: .relaxed)
        return c
    }
}
