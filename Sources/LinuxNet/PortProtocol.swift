// The common shape of XDPPort and AFPacketPort for the run loop.
import Glibc

/// A packet port driven by a batched run-to-completion loop.
///
/// The loop is generic over the port type (`func run<P: PacketPort>(…)`), or
/// holds ports of both kinds as `AnyPacketPort` (an enum: one switch per
/// call, no existential, no reference counting) — it must not call through
/// `any PacketPort` per packet.
///
/// Threading: create a port on a thread inside the node's network namespace;
/// afterwards any one thread at a time may drive it. `counters` may be read
/// from any thread. `close()` only after the loop stopped using the port.
///
/// Loop contract, per wake-up from poll(fd):
///   1. `receive(into:)` a burst, process it, `transmit` frames on any port,
///   2. `release(_:)` the burst back to the port it came from,
///   3. `flush()` every port that was given frames, after every burst, so a
///      lone packet (a TCP handshake, a ping) never waits for a full batch.
public protocol PacketPort: AnyObject {
    /// Interface name, for messages and status.
    var interfaceName: String { get }
    /// Interface index in the node's namespace.
    var interfaceIndex: Int32 { get }
    /// The descriptor to poll() for POLLIN.
    var fd: Int32 { get }
    /// Largest frame `transmit` accepts, bytes.
    var maxFrameLength: Int { get }
    /// Receives up to `batch.capacity` frames; returns how many (0 if none).
    func receive(into batch: inout PortBatch) -> Int
    /// Returns the frames of `batch` (received from this port) to the port.
    func release(_ batch: inout PortBatch)
    /// Queues a copy of `frame` for transmission; false if the port has no
    /// room right now (counted in `txBusy`) or the frame is too long.
    @discardableResult func transmit(copying frame: UnsafeRawBufferPointer) -> Bool
    /// Reserves room for one frame, lets `fill` write it (the buffer holds
    /// `maxFrameLength` bytes) and queues it. `fill` returns the frame's
    /// length: 0 cancels; negative or more than the buffer cancels and
    /// counts the frame in `txTooLong`.
    @discardableResult func transmit(_ fill: (UnsafeMutableRawBufferPointer) -> Int) -> Bool
    /// Hands queued frames to the kernel and reaps finished transmissions.
    func flush()
    /// Frames queued or handed over that the kernel has not taken yet (after
    /// a stalled flush). While true, poll with a short timeout and flush again.
    var hasPendingTransmit: Bool { get }
    /// Throws away every frame queued or handed over that the kernel has not
    /// taken yet, as a NIC that loses carrier drops what it was sending;
    /// returns how many. For the daemon when a port's carrier goes (rare:
    /// may loop over the TX ring, makes no syscall). Afterwards
    /// `hasPendingTransmit` is false.
    @discardableResult func discardPendingTransmit() -> Int
    /// Counters since the port was opened.
    var counters: PortCounters { get }
    /// Closes the port (idempotent).
    func close()
}

/// Per-port counters.
public struct PortCounters: Sendable, Equatable, CustomStringConvertible {
    /// Frames and bytes delivered by `receive`.
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    /// Frames and bytes handed to the kernel by `flush`.
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Frames the kernel dropped before the port saw them. AF_XDP: fill ring
    /// empty, RX ring full or frame too large for a UMEM frame
    /// (XDP_STATISTICS rx_dropped + rx_ring_full + rx_fill_ring_empty_descs);
    /// AF_PACKET: socket receive queue full (PACKET_STATISTICS tp_drops).
    public var rxDropped: UInt64 = 0
    /// Frames received longer than a receive buffer and dropped (AF_PACKET).
    public var rxTruncated: UInt64 = 0
    /// `transmit` refused a frame: no free TX frame, TX ring or queue full.
    public var txBusy: UInt64 = 0
    /// `transmit` refused a frame longer than `maxFrameLength`.
    public var txTooLong: UInt64 = 0
    /// Kicks (sendto/sendmmsg) that failed or could not make progress and
    /// left frames queued for the next flush or poll.
    public var txKickStalls: UInt64 = 0
    /// Frames the kernel rejected on transmit and the port dropped (AF_PACKET
    /// send errors other than "try again").
    public var txErrors: UInt64 = 0
    /// Wake-up syscalls made (AF_XDP sendto for TX, recvfrom for the fill ring).
    public var wakeups: UInt64 = 0

    public init() {}

    public var description: String {
        "rx \(rxPackets) (\(rxBytes) B) tx \(txPackets) (\(txBytes) B) rx-dropped \(rxDropped) "
            + "rx-truncated \(rxTruncated) tx-busy \(txBusy) tx-too-long \(txTooLong) "
            + "tx-stalls \(txKickStalls) tx-errors \(txErrors) wakeups \(wakeups)"
    }
}

/// A port of either kind, as the loop that drives both kinds holds it: one
/// switch per call, no existential dispatch, and no reference counting.
///
/// It refers to its port unretained (`Unmanaged`): a trivial value, so an
/// array of them is read on the per-packet path without retain/release.
/// It does not keep the port alive — whoever opened the port (the daemon's
/// `NodeRuntime`) holds a strong reference for as long as the loop uses it.
public enum AnyPacketPort {
    case xdp(Unmanaged<XDPPort>)
    case packet(Unmanaged<AFPacketPort>)

    /// Refers to PORT without retaining it; the caller keeps PORT alive.
    @inlinable public init(_ port: XDPPort) { self = .xdp(.passUnretained(port)) }
    /// Refers to PORT without retaining it; the caller keeps PORT alive.
    @inlinable public init(_ port: AFPacketPort) { self = .packet(.passUnretained(port)) }

    /// "afxdp" or "afpacket", as status reports name the socket type.
    public var kind: String {
        switch self { case .xdp: return "afxdp"; case .packet: return "afpacket" }
    }

    @inlinable public var fd: Int32 {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.fd }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.fd }
        }
    }
    @inlinable public var interfaceName: String {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.interfaceName }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.interfaceName }
        }
    }
    @inlinable public var interfaceIndex: Int32 {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.interfaceIndex }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.interfaceIndex }
        }
    }
    @inlinable public var maxFrameLength: Int {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.maxFrameLength }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.maxFrameLength }
        }
    }
    @inlinable public func receive(into batch: inout PortBatch) -> Int {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.receive(into: &batch) }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.receive(into: &batch) }
        }
    }
    @inlinable public func release(_ batch: inout PortBatch) {
        switch self {
        case .xdp(let p): p._withUnsafeGuaranteedRef { $0.release(&batch) }
        case .packet(let p): p._withUnsafeGuaranteedRef { $0.release(&batch) }
        }
    }
    @inlinable @discardableResult public func transmit(copying frame: UnsafeRawBufferPointer) -> Bool {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.transmit(copying: frame) }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.transmit(copying: frame) }
        }
    }
    @inlinable @discardableResult
    public func transmit(_ fill: (UnsafeMutableRawBufferPointer) -> Int) -> Bool {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.transmit(fill) }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.transmit(fill) }
        }
    }
    @inlinable public var hasPendingTransmit: Bool {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.hasPendingTransmit }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.hasPendingTransmit }
        }
    }
    @discardableResult public func discardPendingTransmit() -> Int {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.discardPendingTransmit() }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.discardPendingTransmit() }
        }
    }
    @inlinable public func flush() {
        switch self {
        case .xdp(let p): p._withUnsafeGuaranteedRef { $0.flush() }
        case .packet(let p): p._withUnsafeGuaranteedRef { $0.flush() }
        }
    }
    public var counters: PortCounters {
        switch self {
        case .xdp(let p): return p._withUnsafeGuaranteedRef { $0.counters }
        case .packet(let p): return p._withUnsafeGuaranteedRef { $0.counters }
        }
    }
    public func close() {
        switch self {
        case .xdp(let p): p._withUnsafeGuaranteedRef { $0.close() }
        case .packet(let p): p._withUnsafeGuaranteedRef { $0.close() }
        }
    }
}
