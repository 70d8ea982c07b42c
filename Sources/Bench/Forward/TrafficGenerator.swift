// The traffic generators of `wirelab bench forward` and the probe that finds
// out which of them this host allows.
import Lab
import CLinuxShim
import CXDP
import Foundation
import Glibc
import LinuxNet
import Synchronization
import Wire

// MARK: - generator

/// The traffic generator: a thread of this process inside the generator's
/// namespace (pinned to a CPU if asked) sending on one interface as fast as
/// the kernel takes frames, by one of three methods (`Method`). Hosts of
/// this kind differ in what they allow (one refuses live frames with
/// EPERM), so `probe` sends one frame with each and `wirelab bench forward`
/// uses the fastest that works.
public final class TrafficGenerator: @unchecked Sendable {
    public enum Method: String, Sendable, Codable, CaseIterable {
        /// BPF_PROG_RUN of `wl_gen` (bpf/wirelab_bench.bpf.c) with
        /// BPF_F_TEST_XDP_LIVE_FRAMES: the kernel runs the program on copies
        /// of the first frame in a loop (batches of 64) and sends each as an
        /// XDP frame out of the interface (XDP_TX); the veth peer must have
        /// NAPI on (GRO or an XDP program). Frames the peer's queue refuses
        /// are dropped there and still count as offered. Some hosts refuse
        /// it (EPERM) while allowing a plain BPF_PROG_RUN.
        case xdpLive = "xdp-live"
        /// An `XDPPort` (copy mode) queueing the pre-built frames round-robin
        /// and kicking the kernel, which builds an skb for each.
        case afxdp
        /// An AF_PACKET socket with a TPACKET_V2 transmit ring and qdisc
        /// bypass: up to 256 frames copied into the ring per `send`.
        case afpacketRing = "afpacket-ring"

        /// One line for the report.
        public var summary: String {
            switch self {
            case .xdpLive:
                return "XDP live frames (BPF_PROG_RUN, BPF_F_TEST_XDP_LIVE_FRAMES) of an XDP program that rotates the UDP source port over the flows and returns XDP_TX"
            case .afxdp:
                return "AF_XDP copy-mode socket (wirelab XDPPort) sending the pre-built frames round-robin"
            case .afpacketRing:
                return "AF_PACKET socket with a TPACKET_V2 transmit ring and PACKET_QDISC_BYPASS, sending the pre-built frames round-robin"
            }
        }
    }

    /// `WIRELAB_BENCH_REFUSE_LIVE_FRAMES=1` makes the kernel refuse
    /// BPF_PROG_RUN (EPERM, by a seccomp filter on the generator's thread)
    /// as a host that refuses live frames does: the whole fallback path —
    /// probe, choice, report — can be rehearsed on a host that allows them.
    public static let refusalVariable = "WIRELAB_BENCH_REFUSE_LIVE_FRAMES"
    static var rehearsesRefusal: Bool { ProcessInfo.processInfo.environment[refusalVariable] == "1" }

    let method: Method
    let namespace: String
    let interface: String
    let cpu: Int?
    let nice: Int32
    let flows: Int
    /// Stop after this many frames (a probe sends one); nil: until stopped.
    let limit: UInt64?
    /// Frames per second to offer, paced in batches (`afxdp` and
    /// `afpacket-ring`); nil: as fast as the kernel takes them. Live frames
    /// cannot be paced: each BPF_PROG_RUN call costs ~25 ms of set-up.
    let rate: Double?
    private let templates: UnsafeMutableRawPointer
    private let frameLength: Int
    private let frameCount: Int
    private let stopRequested = Atomic<Bool>(false)
    private let sentFrames = Atomic<UInt64>(0)
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var started = false
    private var joined = false
    private var error: Error?
    private var threadID: pid_t = 0

    /// Frames per BPF_PROG_RUN call (~2 s at full speed): each call also
    /// sets up and tears down a page pool, which takes ~25 ms here (the
    /// thread sleeps in D state), so calls must be long; `stop()`
    /// interrupts one with a signal (the kernel checks signal_pending).
    static let liveRepeat: UInt32 = 1 << 22
    private var pthread: pthread_t?

    init(method: Method, namespace: String, interface: String, frames: [[UInt8]], cpu: Int?, nice: Int32,
         limit: UInt64? = nil, rate: Double? = nil) {
        precondition(!frames.isEmpty && frames.allSatisfy { $0.count == frames[0].count })
        precondition(rate == nil || method != .xdpLive, "live frames cannot be paced")
        self.rate = rate
        precondition(frames.count & (frames.count - 1) == 0, "flows: a power of two")
        self.method = method
        self.nice = nice
        self.namespace = namespace
        self.interface = interface
        self.cpu = cpu
        self.limit = limit
        flows = frames.count
        frameLength = frames[0].count
        frameCount = frames.count
        templates = .allocate(byteCount: frameLength * frameCount, alignment: 64)
        for (i, frame) in frames.enumerated() {
            frame.withUnsafeBytes { (templates + i * frameLength).copyMemory(from: $0.baseAddress!, byteCount: frameLength) }
        }
    }

    deinit {
        stop()
        templates.deallocate()
    }

    /// Frames handed to the kernel so far.
    var sent: UInt64 { sentFrames.load(ordering: .relaxed) }

    var failure: Error? {
        lock.lock(); defer { lock.unlock() }
        return error
    }

    /// CPU time of the generator thread so far, seconds.
    var cpuSeconds: Double? {
        lock.lock(); let tid = threadID; lock.unlock()
        return tid == 0 ? nil : ForwardBenchmark.processCPUSeconds(getpid(), thread: tid)
    }

    /// Starts sending from a thread of its own; throws if the thread could
    /// not enter the namespace, pin itself or open what it sends with.
    func start() throws {
        let ready = DispatchSemaphore(value: 0)
        lock.lock(); started = true; lock.unlock()
        Self.installWakeHandler
        let thread = Thread { [self] in
            defer {
                lock.lock(); pthread = nil; lock.unlock()
                finished.signal()
            }
            lock.lock(); threadID = cwl_gettid(); pthread = pthread_self(); lock.unlock()
            do {
                try NetworkNamespace.enterOnCurrentThread(namespace)
                try ForwardBenchmark.place(thread: 0, cpu: cpu, nice: nice, what: "the generator")
                if Self.rehearsesRefusal {
                    let rc = cwl_refuse_bpf_test_run_on_this_thread()
                    guard rc == 0 else {
                        throw LabError("\(Self.refusalVariable)=1: installing the seccomp filter: \(String(cString: strerror(-rc)))")
                    }
                }
                let ifindex = Int32(bitPattern: if_nametoindex(interface))
                guard ifindex > 0 else { throw LabError("no interface \(interface) in \(namespace)") }
                switch method {
                case .xdpLive:
                    let header = Array(UnsafeRawBufferPointer(start: templates, count: 34))
                    let program = try BenchProgram.generator(header: header, portBase: ForwardBenchmark.sourcePortBase,
                                                             portMask: UInt16(flows - 1))
                    defer { program.close() }
                    ready.signal()
                    try sendLive(program: program.fd, ifindex: ifindex)
                case .afxdp:
                    let port = try openPort()
                    defer { port.close() }
                    ready.signal()
                    send(port)
                case .afpacketRing:
                    let ring = try openRing(ifindex: ifindex)
                    defer { cwl_tx_ring_close(ring) }
                    ready.signal()
                    try send(ring)
                }
            } catch {
                lock.lock(); self.error = error; lock.unlock()
                ready.signal()
            }
        }
        thread.name = "generator"
        thread.start()
        ready.wait()
        if let failure { stop(); throw failure }
    }

    /// Whether the limit (if any) is reached or a stop was asked for.
    private func done(_ sent: UInt64) -> Bool {
        stopRequested.load(ordering: .relaxed) || limit.map { sent >= $0 } ?? false
    }

    private func sendLive(program: Int32, ifindex: Int32) throws {
        let context = UnsafeMutablePointer<xdp_md>.allocate(capacity: 1)
        defer { context.deallocate() }
        context.initialize(to: xdp_md())
        context.pointee.data_end = UInt32(frameLength)
        context.pointee.ingress_ifindex = UInt32(ifindex)
        let repeatCount = UInt32(min(UInt64(Self.liveRepeat), limit ?? UInt64.max))
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        opts.data_in = UnsafeRawPointer(templates)
        opts.data_size_in = UInt32(frameLength)
        opts.ctx_in = UnsafeRawPointer(context)
        opts.ctx_size_in = UInt32(MemoryLayout<xdp_md>.size)
        opts.repeat = Int32(repeatCount)
        opts.flags = UInt32(BPF_F_TEST_XDP_LIVE_FRAMES)
        opts.batch_size = 64
        var total: UInt64 = 0
        while !done(total) {
            let rc = bpf_prog_test_run_opts(program, &opts)
            if rc == -EINTR { continue }
            guard rc == 0 else {
                throw LabError("sending XDP live frames on \(interface) in \(namespace) (BPF_PROG_RUN): \(String(cString: strerror(-rc)))")
            }
            total += UInt64(repeatCount)
            sentFrames.wrappingAdd(UInt64(repeatCount), ordering: .relaxed)
        }
    }

    private func send(_ port: XDPPort) {
        let templates = self.templates, length = frameLength, mask = frameCount - 1
        var next = 0
        let first = port.counters.txPackets
        var before = first
        let start = ForwardBenchmark.now()
        while !done(before &- first) {
            pace(before &- first, since: start)
            for _ in 0..<min(64, Int(clamping: limit ?? 64)) {
                let source = templates + (next & mask) * length
                let queued = port.transmit { buffer in
                    buffer.baseAddress!.copyMemory(from: source, byteCount: length)
                    return length
                }
                if !queued { break }
                next &+= 1
            }
            port.flush()
            let after = port.counters.txPackets
            sentFrames.wrappingAdd(after &- before, ordering: .relaxed)
            before = after
        }
    }

    /// The socket of the last run on this interface is released by the
    /// kernel a moment after it was closed: until then a new one on the
    /// same queue gets EBUSY. Retried for up to 2 s.
    private func openPort() throws -> XDPPort {
        var tries = 0
        while true {
            do { return try XDPPort(interface: interface) } catch let error as PortError where error.errno == EBUSY && tries < 100 {
                tries += 1
                usleep(20_000)
            }
        }
    }

    /// Slots of 2048 bytes hold any frame the benchmark makes (≤ 1514 B
    /// plus the slot header); 1024 of them, 2 MiB.
    private func openRing(ifindex: Int32) throws -> OpaquePointer {
        var error: Int32 = 0
        var call: UnsafePointer<CChar>?
        guard let ring = cwl_tx_ring_open(ifindex, 2048, 1024, 1, &error, &call) else {
            throw LabError("opening an AF_PACKET transmit ring on \(interface) in \(namespace) (\(call.map { String(cString: $0) } ?? "?")): \(String(cString: strerror(error)))")
        }
        return ring
    }

    private func send(_ ring: OpaquePointer) throws {
        var next: UInt32 = 0
        var total: UInt64 = 0
        let start = ForwardBenchmark.now()
        while !done(total) {
            pace(total, since: start)
            let batch = UInt32(min(rate == nil ? 256 : 64, (limit ?? UInt64.max) - total))
            let queued = cwl_tx_ring_send(ring, templates, UInt32(frameLength), UInt32(frameCount), &next, batch)
            guard queued >= 0 else {
                throw LabError("sending on an AF_PACKET transmit ring on \(interface) in \(namespace): \(String(cString: strerror(-queued)))")
            }
            total += UInt64(queued)
            sentFrames.wrappingAdd(UInt64(queued), ordering: .relaxed)
        }
        // A probe's frame must have left before the socket closes.
        var waits = 0
        while limit != nil, cwl_tx_ring_pending(ring) > 0, waits < 1000 {
            usleep(1000); waits += 1
        }
    }

    /// With a rate, sleeps until SENT frames are due (a batch is sent
    /// when its first frame is due, so the mean rate holds within a batch).
    private func pace(_ sent: UInt64, since start: Double) {
        guard let rate else { return }
        while !stopRequested.load(ordering: .relaxed) {
            let early = start + Double(sent) / rate - ForwardBenchmark.now()
            if early <= 0 { return }
            usleep(useconds_t(min(early, 0.01) * 1e6))
        }
    }

    /// Interrupts a BPF_PROG_RUN in progress (the signal's handler does nothing).
    static let wakeSignal = SIGUSR2
    private static let installWakeHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        sigaction(TrafficGenerator.wakeSignal, &action, nil)
    }()

    func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        // Under the lock: the thread clears `pthread` (under it) before it ends.
        lock.lock()
        if let pthread { pthread_kill(pthread, Self.wakeSignal) }
        lock.unlock()
    }

    /// Waits up to `timeout` seconds for the thread to end by itself (a
    /// generator with a limit does); true once it has ended.
    func join(timeout: Double) -> Bool {
        lock.lock()
        let wait = started && !joined
        lock.unlock()
        guard wait else { return true }
        guard finished.wait(timeout: .now() + timeout) == .success else { return false }
        lock.lock(); joined = true; lock.unlock()
        return true
    }

    /// Stops sending and waits until the thread has closed what it opened. Idempotent.
    func stop() {
        requestStop()
        lock.lock()
        let wait = started && !joined
        joined = true
        lock.unlock()
        guard wait else { return }
        // The flag is read between BPF_PROG_RUN calls: a signal that lands
        // just before a call is lost, so it is sent again until the thread ends.
        while finished.wait(timeout: .now() + 0.05) == .timedOut { requestStop() }
    }
}

// MARK: - probe

extension TrafficGenerator {
    /// What the one-frame probe of a method found on this host.
    public struct ProbeResult: Codable, Sendable {
        public var method: Method
        /// nil: the frame left the interface; otherwise why the method is refused here.
        public var refused: String?
        /// Its own rate on the generator's path (gen → sink, no forwarder),
        /// when methods were compared; packets per second at the sink.
        public var packetsPerSecond: Double?
        public var allowed: Bool { refused == nil }
    }

    /// Sends one frame with METHOD from NAMESPACE's INTERFACE and checks that
    /// the interface counted it (tx_packets + tx_dropped): nil if it did,
    /// otherwise the reason the method cannot be used here.
    static func probe(_ method: Method, namespace: String, interface: String, frame: [UInt8]) -> String? {
        do {
            let counters = try InterfaceCounters(namespace: namespace, interface: interface)
            defer { counters.close() }
            let before = try counters.read().offered
            let generator = TrafficGenerator(method: method, namespace: namespace, interface: interface,
                                             frames: [frame], cpu: nil, nice: 0, limit: 1)
            defer { generator.stop() }
            try generator.start()
            guard generator.join(timeout: 5) else { return "the one-frame probe did not finish in 5 s" }
            if let error = generator.failure { return "\(error)" }
            // The kernel counts the frame when it is handed to the peer;
            // allow it a moment on a loaded host.
            for _ in 0..<200 {
                if try counters.read().offered > before { return nil }
                usleep(5_000)
            }
            return "the probe's frame was handed to the kernel but \(interface) counted none in 1 s"
        } catch {
            return "\(error)"
        }
    }
}
