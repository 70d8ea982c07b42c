// A live capture on one interface through libpcap, built to be polled: the
// lab's run loop poll()s the selectable descriptors of many captures and
// drains the ready ones without blocking, so an idle lab sleeps.

import CPcap
import Glibc
import Wire

/// One frame handed to a `PcapLiveCapture.readAvailable` handler. `bytes`
/// points into libpcap's buffer and is valid only during the call; copy what
/// you keep (`record` does).
public struct PcapLivePacket {
    /// Nanoseconds since the Unix epoch (microsecond resolution if the
    /// capture could not get nanosecond timestamps).
    public let timestamp: UInt64
    /// Length on the wire; `bytes.count` is less if the snapshot length cut it.
    public let originalLength: Int
    /// The captured bytes, from the link-layer header on.
    public let bytes: UnsafeRawBufferPointer

    /// A copy that outlives the handler call.
    public var record: PcapRecord {
        PcapRecord(timestamp: timestamp, bytes: Array(bytes), originalLength: originalLength)
    }
}

/// A libpcap capture on one network interface, non-blocking, to be driven
/// by `poll()` on `selectableFD`.
///
/// **Network namespaces.** libpcap opens its `AF_PACKET` socket in
/// `init`, and the socket belongs to the network namespace *of the calling
/// thread at that moment*. So create the capture on a thread that is already
/// inside the target namespace (after `setns(fd, CLONE_NEWNET)`; the lab
/// wraps this), and name the interface as it is called there. Once created,
/// the capture keeps working in that namespace whatever thread uses it, so it
/// can be handed to, and read from, any thread.
///
/// **Threads.** Not for concurrent use: one thread at a time may call its
/// methods. `@unchecked Sendable` only so it can be moved from the thread
/// that opened it to the one that reads it.
///
/// ```swift
/// // on a thread inside the node's namespace:
/// let capture = try PcapLiveCapture(interface: "eth1", options: .init(direction: .both))
/// // in the run loop:
/// var pfd = pollfd(fd: capture.selectableFD, events: Int16(POLLIN), revents: 0)
/// poll(&pfd, 1, -1)                          // sleeps while the link is idle
/// try capture.appendAvailable(to: writer)
/// ```
public final class PcapLiveCapture: @unchecked Sendable {
    /// Which frames to capture, relative to this interface
    /// (`pcap_setdirection`).
    public enum Direction: Sendable {
        /// `PCAP_D_IN`: received on the interface.
        case inbound
        /// `PCAP_D_OUT`: sent from the interface.
        case outbound
        /// `PCAP_D_INOUT`: both (libpcap's default).
        case both
    }

    public struct Options: Sendable {
        /// Bytes kept of each frame (`pcap_set_snaplen`).
        public var snapLength: Int
        /// Put the interface in promiscuous mode (`pcap_set_promisc`). A veth
        /// hands every frame sent across it to the capture anyway.
        public var promiscuous: Bool
        /// Deliver each frame as soon as it arrives (`pcap_set_immediate_mode`)
        /// so `selectableFD` turns readable per frame, not per filled block.
        public var immediate: Bool
        /// Kernel ring size in bytes (`pcap_set_buffer_size`); nil keeps
        /// libpcap's default (2 MiB). Frames arriving while it is full are
        /// dropped and counted in `statistics().dropped`.
        public var bufferSize: Int?
        /// `pcap_setdirection`; nil leaves libpcap's default (both).
        public var direction: Direction?
        /// A BPF filter in pcap-filter(7) syntax, e.g. `"icmp or arp"`.
        public var filter: String?
        /// Ask for nanosecond timestamps (`pcap_set_tstamp_precision`); if
        /// the platform lacks them the capture falls back to microseconds
        /// (see `hasNanosecondTimestamps`).
        public var nanosecondTimestamps: Bool

        public init(snapLength: Int = Int(PcapDefaults.snapLength), promiscuous: Bool = false, immediate: Bool = true,
                    bufferSize: Int? = nil, direction: Direction? = nil, filter: String? = nil,
                    nanosecondTimestamps: Bool = true) {
            self.snapLength = snapLength
            self.promiscuous = promiscuous
            self.immediate = immediate
            self.bufferSize = bufferSize
            self.direction = direction
            self.filter = filter
            self.nanosecondTimestamps = nanosecondTimestamps
        }
    }

    /// Counters from `pcap_stats` since the capture was opened.
    public struct Statistics: Equatable, Sendable {
        /// Frames the kernel handed to the capture (`ps_recv`).
        public var received: UInt32
        /// Frames dropped because the ring was full (`ps_drop`).
        public var dropped: UInt32
        /// Frames dropped by the interface/driver (`ps_ifdrop`).
        public var interfaceDropped: UInt32
    }

    /// The interface name, as it is called inside the capture's namespace.
    public let interface: String
    /// The link type of captured frames, a `DLT_` value (`DLT_EN10MB` on
    /// Ethernet and veth).
    public let linkType: Int32
    public let snapLength: Int
    /// True when timestamps carry nanoseconds, false when microseconds.
    public let hasNanosecondTimestamps: Bool
    /// Warnings from `pcap_activate` (e.g. promiscuous mode not supported).
    public let warnings: [String]
    private var handle: OpaquePointer?

    /// Creates, configures and activates the capture, then applies the
    /// direction and filter and switches to non-blocking mode.
    /// Must run on a thread inside the interface's network namespace (see
    /// the type's documentation). Needs CAP_NET_RAW.
    public init(interface: String, options: Options = Options()) throws(PcapError) {
        self.interface = interface
        func failure(_ operation: String, _ message: String) -> PcapError {
            PcapError(operation: "\(operation) capture on interface", path: interface, message: message)
        }

        let (created, createText) = withPcapErrorBuffer { pcap_create(interface, $0) }
        guard let handle = created else { throw failure("creating (pcap_create)", createText) }
        var ok = false
        defer { if !ok { pcap_close(handle) } }

        func check(_ rc: Int32, _ call: String) throws(PcapError) {
            guard rc == 0 else { throw failure("configuring (\(call))", Self.statusText(rc, handle)) }
        }
        try check(pcap_set_snaplen(handle, Int32(clamping: max(1, options.snapLength))), "pcap_set_snaplen")
        try check(pcap_set_promisc(handle, options.promiscuous ? 1 : 0), "pcap_set_promisc")
        try check(pcap_set_immediate_mode(handle, options.immediate ? 1 : 0), "pcap_set_immediate_mode")
        if let size = options.bufferSize {
            try check(pcap_set_buffer_size(handle, Int32(clamping: size)), "pcap_set_buffer_size")
        }
        var nano = false
        if options.nanosecondTimestamps {
            // PCAP_ERROR_TSTAMP_PRECISION_NOTSUP: keep microseconds.
            nano = pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_NANO)) == 0
        }

        let status = pcap_activate(handle)
        if status < 0 { throw failure("activating (pcap_activate)", Self.statusText(status, handle)) }
        warnings = status > 0 ? [Self.statusText(status, handle)] : []
        hasNanosecondTimestamps = nano && pcap_get_tstamp_precision(handle) == PCAP_TSTAMP_PRECISION_NANO

        if let direction = options.direction {
            let d: pcap_direction_t = switch direction {
            case .inbound: PCAP_D_IN
            case .outbound: PCAP_D_OUT
            case .both: PCAP_D_INOUT
            }
            guard pcap_setdirection(handle, d) == 0 else {
                throw failure("setting direction (pcap_setdirection) of", pcapLastError(handle))
            }
        }
        if let filter = options.filter {
            var program = pcap_bpf_program()
            guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                throw failure("compiling filter \"\(filter)\" (pcap_compile) for", pcapLastError(handle))
            }
            defer { pcap_freecode(&program) }
            guard pcap_setfilter(handle, &program) == 0 else {
                throw failure("installing filter \"\(filter)\" (pcap_setfilter) on", pcapLastError(handle))
            }
        }
        let (nonblock, nonblockText) = withPcapErrorBuffer { pcap_setnonblock(handle, 1, $0) }
        guard nonblock == 0 else { throw failure("setting non-blocking mode (pcap_setnonblock) of", nonblockText) }

        linkType = pcap_datalink(handle)
        snapLength = Int(pcap_snapshot(handle))
        self.handle = handle
        ok = true
    }

    deinit { close() }

    /// A descriptor that polls readable (`POLLIN`) when frames are waiting
    /// (`pcap_get_selectable_fd`); -1 once closed. Do not read from it or
    /// close it: it belongs to the capture. On Linux no timeout is needed
    /// beside it (`pcap_get_required_select_timeout` is NULL).
    public var selectableFD: Int32 {
        guard let handle else { return -1 }
        return pcap_get_selectable_fd(handle)
    }

    /// Hands every frame already buffered to `handler` and returns how many
    /// there were; returns 0 at once when there are none, never blocks
    /// (`pcap_dispatch` in non-blocking mode).
    /// - Parameters:
    ///   - maxPackets: at most this many frames per call; -1 for all that
    ///     are buffered. A bound keeps one busy link from starving others in
    ///     a shared loop; call again while it returns `maxPackets`.
    ///   - handler: called once per frame; if it throws, reading stops after
    ///     that frame and the error is rethrown.
    @discardableResult
    public func readAvailable(maxPackets: Int = -1, into handler: (PcapLivePacket) throws -> Void) throws -> Int {
        guard let handle else {
            throw PcapError(operation: "reading (pcap_dispatch) capture on interface", path: interface, message: "the capture is closed")
        }
        return try withoutActuallyEscaping(handler) { handler in
            let context = DispatchContext(handler: handler, nanosecond: hasNanosecondTimestamps, handle: handle)
            let rc = withExtendedLifetime(context) {
                pcap_dispatch(handle, Int32(clamping: maxPackets <= 0 ? -1 : maxPackets), { user, header, data in
                    guard let user, let header else { return }
                    let context = Unmanaged<DispatchContext>.fromOpaque(user).takeUnretainedValue()
                    context.deliver(header.pointee, data)
                }, UnsafeMutableRawPointer(Unmanaged.passUnretained(context).toOpaque()).assumingMemoryBound(to: UInt8.self))
            }
            if let error = context.error { throw error }
            if rc < 0 && rc != PCAP_ERROR_BREAK {
                throw PcapError(operation: "reading (pcap_dispatch) capture on interface", path: interface, message: pcapLastError(handle))
            }
            return context.delivered
        }
    }

    /// Drains the buffered frames into `writer`; returns how many.
    @discardableResult
    public func appendAvailable(to writer: PcapWriter, maxPackets: Int = -1) throws -> Int {
        try readAvailable(maxPackets: maxPackets) { packet in
            try writer.write(packet.bytes, timestamp: packet.timestamp, originalLength: packet.originalLength)
        }
    }

    /// `pcap_stats`: frames received and dropped since the capture opened.
    public func statistics() throws(PcapError) -> Statistics {
        guard let handle else {
            throw PcapError(operation: "reading statistics (pcap_stats) of capture on interface", path: interface, message: "the capture is closed")
        }
        var stats = pcap_stat()
        guard pcap_stats(handle, &stats) == 0 else {
            throw PcapError(operation: "reading statistics (pcap_stats) of capture on interface", path: interface, message: pcapLastError(handle))
        }
        return Statistics(received: stats.ps_recv, dropped: stats.ps_drop, interfaceDropped: stats.ps_ifdrop)
    }

    /// Closes the capture (`pcap_close`); later reads throw. Idempotent.
    public func close() {
        if let handle { pcap_close(handle) }
        handle = nil
    }

    /// `pcap_statustostr(rc)` plus `pcap_geterr` when libpcap left details.
    private static func statusText(_ rc: Int32, _ handle: OpaquePointer) -> String {
        let status = pcap_statustostr(rc).map { String(cString: $0) } ?? "status \(rc)"
        let detail = pcapLastError(handle)
        return detail.isEmpty || detail == status ? status : "\(status): \(detail)"
    }
}

/// The state a `pcap_dispatch` callback (a C function, no captures) reaches
/// through its `user` pointer.
private final class DispatchContext {
    let handler: (PcapLivePacket) throws -> Void
    let nanosecond: Bool
    let handle: OpaquePointer
    var delivered = 0
    var error: Error?

    init(handler: @escaping (PcapLivePacket) throws -> Void, nanosecond: Bool, handle: OpaquePointer) {
        self.handler = handler
        self.nanosecond = nanosecond
        self.handle = handle
    }

    func deliver(_ header: pcap_pkthdr, _ data: UnsafePointer<UInt8>?) {
        guard error == nil else { return }
        let packet = PcapLivePacket(
            timestamp: pcapTimestamp(header.ts, nanosecondPrecision: nanosecond),
            originalLength: Int(header.len),
            bytes: UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : Int(header.caplen)))
        do {
            try handler(packet)
            delivered += 1
        } catch {
            self.error = error
            pcap_breakloop(handle)
        }
    }
}
