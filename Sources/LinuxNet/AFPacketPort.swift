// AFPacketPort — a raw AF_PACKET socket on one interface, batched with
// recvmmsg/sendmmsg, with the same batch API as XDPPort.
import CLinuxShim
import Synchronization
import Glibc

/// A raw AF_PACKET socket (ETH_P_ALL) bound to one interface, with the same
/// batch API as `XDPPort`.
///
/// RX is recvmmsg into preallocated buffers, TX is sendmmsg from preallocated
/// buffers: one syscall per burst each way, no allocation per packet.
/// TPACKET_V3 was not used for RX: a V3 block is handed to userspace (and
/// poll() woken) only when it is full or its retire timer (≥ 1 ms) fires, so
/// a lone frame — a ping, a TCP handshake — would wait up to the timer at
/// every hop; recvmmsg delivers each frame as soon as poll() says it is there.
///
/// Differences from AF_XDP that the lab must know:
/// - an AF_PACKET socket is a tap: packet taps (tcpdump) on the interface see
///   the frames as usual, and the node's own kernel stack ALSO receives every
///   frame: keep IP forwarding off in the node's namespace (or the kernel
///   forwards a second copy), and expect the kernel to answer for any
///   address configured on its interfaces (ARP, ICMP, TCP RST) alongside
///   the data plane;
/// - PACKET_IGNORE_OUTGOING is set, so the socket does not see frames sent
///   on the interface (its own sends and the kernel's);
/// - frames longer than a receive buffer (`bufferSize`, default 2048) are
///   dropped and counted in `rxTruncated` (GRO/GSO super-frames: turn off
///   GRO on the interface and TSO/GSO on the peer);
/// - frames arrive as the peer sent them: a peer with TX checksum offload on
///   sends partial checksums that are never completed (ethtool -K … tx off);
/// - VLAN tags taken out by the kernel (hardware-accelerated tag) are not
///   put back (veth does not do that by default).
///
/// Create it on a thread inside the node's namespace; afterwards one thread at
/// a time may drive it from anywhere.
// @unchecked: raw socket buffers and mmsghdr arrays are C state; one thread at a time drives the port (see above).
public final class AFPacketPort: PacketPort, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Bytes of each receive and transmit buffer (largest frame).
        public var bufferSize: Int = 2048
        /// Free bytes kept before each received frame (for pushing headers).
        public var headroom: Int = 128
        /// Receive buffers: the most frames one `receive` returns.
        public var receiveBuffers: Int = 256
        /// Transmit buffers: the most frames queued between flushes.
        public var transmitBuffers: Int = 256
        /// SO_RCVBUF / SO_SNDBUF, bytes (0 keeps the kernel's default).
        public var socketBufferBytes: Int = 4 << 20
        public init() {}
    }

    public let interfaceName: String
    public let interfaceIndex: Int32
    /// The socket, to poll() for POLLIN.
    public let fd: Int32
    public let maxFrameLength: Int
    public let configuration: Configuration

    @usableFromInline let rxArea: UnsafeMutableRawPointer
    @usableFromInline let rxStride: Int
    @usableFromInline let rxLengths: UnsafeMutablePointer<UInt32>
    @usableFromInline let rxMsgs: OpaquePointer
    @usableFromInline let txArea: UnsafeMutableRawPointer
    @usableFromInline let txLengths: UnsafeMutablePointer<UInt32>
    @usableFromInline let txMsgs: OpaquePointer
    @usableFromInline let cursor: UnsafeMutablePointer<TransmitCursor>
    @usableFromInline let cells = PortCounterCells()
    private var closed = false
    private var kernelDrops: UInt64 = 0

    @usableFromInline struct TransmitCursor {
        /// Queued frames are txArea slots start ..< end.
        @usableFromInline var start = 0
        @usableFromInline var end = 0
    }

    /// Opens and binds the socket. Throws `PortError` naming the failed call,
    /// the interface and the namespace.
    public init(interface name: String, configuration: Configuration = Configuration()) throws {
        guard configuration.bufferSize >= 64, configuration.headroom >= 0,
              configuration.receiveBuffers > 0, configuration.transmitBuffers > 0 else {
            throw PortError("opening AF_PACKET port", interface: name, detail: "invalid configuration \(configuration)")
        }
        interfaceName = name
        self.configuration = configuration
        maxFrameLength = configuration.bufferSize
        interfaceIndex = try portInterfaceIndex(name, operation: "opening AF_PACKET port")
        var failedCall: UnsafePointer<CChar>?
        let rc = cwl_packet_open(interfaceIndex, Int32(clamping: configuration.socketBufferBytes),
                                 Int32(clamping: configuration.socketBufferBytes), &failedCall)
        guard rc >= 0 else {
            let call = failedCall.map { String(cString: $0) } ?? "socket"
            throw PortError("opening AF_PACKET port (\(call))", interface: name, errno: -rc,
                            detail: -rc == EPERM ? "needs CAP_NET_RAW" : "")
        }
        fd = rc
        rxStride = (configuration.headroom + configuration.bufferSize + 63) & ~63
        rxArea = .allocate(byteCount: rxStride * configuration.receiveBuffers, alignment: 64)
        rxLengths = .allocate(capacity: configuration.receiveBuffers)
        txArea = .allocate(byteCount: configuration.bufferSize * configuration.transmitBuffers, alignment: 64)
        txLengths = .allocate(capacity: configuration.transmitBuffers)
        cursor = .allocate(capacity: 1)
        cursor.initialize(to: TransmitCursor())
        guard let rxm = cwl_mmsg_new(UInt32(configuration.receiveBuffers)),
              let txm = cwl_mmsg_new(UInt32(configuration.transmitBuffers)) else {
            Glibc.close(rc)
            throw PortError("allocating mmsghdr arrays", interface: name, errno: ENOMEM)
        }
        rxMsgs = rxm
        txMsgs = txm
    }

    deinit { close() }

    /// Closes the socket and frees the buffers. Idempotent. Only after the
    /// loop stopped using the port.
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
        cwl_mmsg_free(rxMsgs)
        cwl_mmsg_free(txMsgs)
        rxArea.deallocate()
        rxLengths.deallocate()
        txArea.deallocate()
        txLengths.deallocate()
        cursor.deinitialize(count: 1)
        cursor.deallocate()
    }

    // MARK: receive

    /// Receives up to min(batch.capacity, receiveBuffers) frames with one
    /// recvmmsg. Frames are valid until `release(_:)` (the next receive
    /// reuses the buffers).
    @inlinable
    public func receive(into batch: inout PortBatch) -> Int {
        precondition(batch.count == 0, "receive into a batch whose frames were not released")
        let want = min(batch.capacity, configuration.receiveBuffers)
        let headroom = configuration.headroom
        let bufferSize = configuration.bufferSize
        let got = cwl_mmsg_recv(rxMsgs, fd, rxArea + headroom, UInt32(rxStride), UInt32(bufferSize),
                                rxLengths, UInt32(want))
        guard got > 0 else {
            batch.storedCount = 0
            return 0
        }
        var n = 0
        var bytes = 0
        var truncated: UInt64 = 0
        for i in 0..<Int(got) {
            let length = Int(rxLengths[i])
            if length > bufferSize {
                truncated &+= 1
                continue
            }
            let start = rxArea + i * rxStride
            batch.starts[n] = start
            batch.addresses[n] = start + headroom
            batch.lengths[n] = length
            batch.handles[n] = UInt64(i)
            bytes &+= length
            n += 1
        }
        batch.storedCount = n
        batch.bufferSize = rxStride
        batch.owner = identity
        cells.rxPackets.wrappingAdd(UInt64(n), ordering: .relaxed)
        cells.rxBytes.wrappingAdd(UInt64(bytes), ordering: .relaxed)
        if truncated > 0 { cells.rxTruncated.wrappingAdd(truncated, ordering: .relaxed) }
        return n
    }

    /// Ends the batch (the buffers are reused by the next receive).
    @inlinable
    public func release(_ batch: inout PortBatch) {
        guard batch.count > 0 else { return }
        precondition(batch.owner == identity, "releasing a batch received on another port")
        batch.storedCount = 0
    }

    // MARK: transmit

    /// Copies `frame` into a transmit buffer; `flush()` sends it.
    @inlinable @discardableResult
    public func transmit(copying frame: UnsafeRawBufferPointer) -> Bool {
        transmit { buffer in
            guard frame.count <= buffer.count else { return -1 }
            if let base = frame.baseAddress { buffer.baseAddress!.copyMemory(from: base, byteCount: frame.count) }
            return frame.count
        }
    }

    /// Lets `fill` write a frame into a free transmit buffer and queues it.
    /// When every buffer is queued, flushes first.
    @inlinable @discardableResult
    public func transmit(_ fill: (UnsafeMutableRawBufferPointer) -> Int) -> Bool {
        let c = cursor
        if c.pointee.end == configuration.transmitBuffers {
            flush()
            if c.pointee.end == configuration.transmitBuffers {
                cells.txBusy.wrappingAdd(1, ordering: .relaxed)
                return false
            }
        }
        let slot = c.pointee.end
        let buffer = UnsafeMutableRawBufferPointer(start: txArea + slot * configuration.bufferSize,
                                                   count: configuration.bufferSize)
        let length = fill(buffer)
        guard length > 0 && length <= buffer.count else {
            if length != 0 { cells.txTooLong.wrappingAdd(1, ordering: .relaxed) }
            return false
        }
        txLengths[slot] = UInt32(truncatingIfNeeded: length)
        c.pointee.end = slot + 1
        return true
    }

    /// Sends the queued frames with sendmmsg. Frames the kernel refuses for
    /// good (e.g. too long for the MTU) are dropped and counted in
    /// `txErrors`; "try again" (EAGAIN, ENOBUFS) keeps the rest queued for the
    /// next flush (`hasPendingTransmit`).
    @inlinable
    public func flush() {
        let c = cursor
        var packets = 0
        var bytes = 0
        while c.pointee.start < c.pointee.end {
            let start = c.pointee.start
            let count = c.pointee.end - start
            let rc = cwl_mmsg_send(txMsgs, fd, txArea + start * configuration.bufferSize,
                                   UInt32(configuration.bufferSize), txLengths + start, UInt32(count))
            if rc > 0 {
                for i in start..<(start + Int(rc)) { bytes &+= Int(txLengths[i]) }
                packets &+= Int(rc)
                c.pointee.start = start + Int(rc)
                continue
            }
            let err = -rc
            if rc == 0 || err == EAGAIN || err == ENOBUFS || err == EINTR {
                cells.txKickStalls.wrappingAdd(1, ordering: .relaxed)
                break
            }
            cells.txErrors.wrappingAdd(1, ordering: .relaxed)
            c.pointee.start = start + 1
        }
        if c.pointee.start == c.pointee.end {
            c.pointee.start = 0
            c.pointee.end = 0
        } else if c.pointee.start > 0 && c.pointee.end == configuration.transmitBuffers {
            // Move the unsent frames to the front so transmit has room again.
            let remaining = c.pointee.end - c.pointee.start
            let size = configuration.bufferSize
            (txArea).copyMemory(from: txArea + c.pointee.start * size, byteCount: remaining * size)
            txLengths.update(from: txLengths + c.pointee.start, count: remaining)
            c.pointee.start = 0
            c.pointee.end = remaining
        }
        if packets > 0 {
            cells.txPackets.wrappingAdd(UInt64(packets), ordering: .relaxed)
            cells.txBytes.wrappingAdd(UInt64(bytes), ordering: .relaxed)
        }
    }

    /// Frames queued and not yet taken by the kernel.
    @inlinable
    public var hasPendingTransmit: Bool { cursor.pointee.end > cursor.pointee.start }

    /// Forgets the frames queued and not yet taken by the kernel.
    @discardableResult
    public func discardPendingTransmit() -> Int {
        let c = cursor
        let count = c.pointee.end - c.pointee.start
        c.pointee.start = 0
        c.pointee.end = 0
        return count
    }

    // MARK: counters

    /// Port counters; `rxDropped` adds up PACKET_STATISTICS drops (reading
    /// them resets the kernel's counters, so read counters from one place).
    public var counters: PortCounters {
        var c = cells.snapshot()
        if !closed {
            var packets: UInt32 = 0
            var drops: UInt32 = 0
            if cwl_packet_statistics(fd, &packets, &drops) == 0, drops > 0 {
                cells.rxDropped.wrappingAdd(UInt64(drops), ordering: .relaxed)
            }
            c.rxDropped = cells.rxDropped.load(ordering: .relaxed)
        }
        return c
    }

    @usableFromInline var identity: UInt { UInt(bitPattern: ObjectIdentifier(self).hashValue) }
}
