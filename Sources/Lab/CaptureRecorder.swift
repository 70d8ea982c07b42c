import Foundation
import LinuxNet
import Topology
import Wire

/// Records every frame that crosses every link, per link, into
/// `<dir>/<a-node>_<a-if>--<b-node>_<b-if>.pcap`, and at the end merges them
/// into `<dir>/all.pcapng` with one named interface per link.
///
/// Each direction of a link is recorded where it is RECEIVED, on the kernel
/// side, because that is the only place that sees it on this kernel:
/// - received by an AF_XDP node: the node's XDP program copies the frame to
///   its capture ring before redirecting it to the socket (an AF_XDP
///   copy-mode send bypasses the sender's taps, and the redirect happens
///   before the receiver's taps, so libpcap sees nothing there);
/// - received by a kernel host or an AF_PACKET node: libpcap on the
///   receiving interface, inbound direction only.
/// So the record is what really crossed the veth, never what an element
/// meant to send.
///
/// Which end received each frame goes into a sidecar beside each link's
/// pcap (`<link>.pcap.rx`, one byte per record: bit 0 the end, 0 = the
/// link's first, 1 = its second; `fastPathBit` when the receiving node's
/// fast path forwarded the frame), because classic pcap has no per-record
/// comment; the merge turns it into each packet's pcapng comment
/// `rx node:iface` (and a line `fast path`, `ObservationReader`), which
/// `wirelab check` and `walk` read. One byte per frame, buffered: bulk
/// captures pay nothing noticeable for it.
final class CaptureRecorder {
    struct LinkFile {
        var name: String      // "gw:eth1 ↔ sw:p1"
        var path: String
        var writer: PcapWriter
        /// The two ends, as `node:iface`, in the order of the link.
        var ends: [String]
        /// Sidecar byte (receiving end, fast path) per record not yet written.
        var receivers: [UInt8] = []
        var sidecar: FileHandle?
        /// Frames drained but not yet written, put in timestamp order.
        var reorder = CaptureReorder()
    }

    /// How long a drained frame waits for frames of the link's other
    /// direction stamped before it (drained from another source, a moment
    /// later). A few milliseconds covers a drain pass; the files stay
    /// current for readers (checks settle 0.6 s before they read).
    static let holdbackNanoseconds: UInt64 = 20_000_000

    /// Whether frames wait in the reorder buffers (the capture thread then
    /// comes back for them soon rather than after an idle poll).
    var holdsFrames: Bool { links.contains { !$0.reorder.isEmpty } }

    let directory: String
    private(set) var links: [LinkFile] = []
    /// (namespace, ifindex) → (link index, receiving end), for ring records.
    private var byRingInterface: [String: [UInt32: (link: Int, end: UInt8)]] = [:]
    private var live: [(capture: PcapLiveCapture, link: Int, end: UInt8)] = []
    private var rings: [(ring: CaptureRing, namespace: String)] = []
    /// The XDP programs whose rings record, by node, with the ends they record.
    private var programs: [(node: String, program: XDPProgram, ends: [CapturePoint.End])] = []
    /// The libpcap captures' points, in the order of `live`.
    private var livePoints: [CapturePoint] = []
    private(set) var frames: UInt64 = 0
    private(set) var errors: UInt64 = 0

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    static func fileName(_ link: Link) -> String {
        "\(link.a.node)_\(link.a.interface)--\(link.b.node)_\(link.b.interface).pcap"
    }

    /// The sidecar naming the receiving end of each record of `pcapPath`.
    static func receiverPath(_ pcapPath: String) -> String { pcapPath + ".rx" }

    /// Kernel ring of each libpcap capture (`pcap_set_buffer_size`).
    static let liveBufferBytes = 4 << 20

    /// In a sidecar byte: the receiving node's fast path forwarded the
    /// frame (bit 0 is the end).
    static let fastPathBit: UInt8 = 0x80

    /// Sets up the recording points of every link. `runtimes` are the
    /// userspace nodes (their rings); every other receiver gets libpcap.
    func prepare(topology: ResolvedTopology, lab: String, runtimes: [String: NodeRuntime]) throws {
        // libpcap captures, opened together below (in this order).
        var pending: [(namespace: String, interface: String, snap: Int, link: Int, end: UInt8, point: CapturePoint)] = []
        for link in topology.links {
            let path = directory + "/" + Self.fileName(link)
            let writer = try PcapWriter(path: path)
            let index = links.count
            let sidePath = Self.receiverPath(path)
            FileManager.default.createFile(atPath: sidePath, contents: nil)
            links.append(LinkFile(name: "\(link.a.node):\(link.a.interface) ↔ \(link.b.node):\(link.b.interface)", path: path,
                                  writer: writer, ends: [link.a.description, link.b.description],
                                  sidecar: FileHandle(forWritingAtPath: sidePath)))
            for (end, receiver) in [link.a, link.b].enumerated() {
                let namespace = LabStore.namespaceName(lab: lab, node: receiver.node)
                let pointEnd = CapturePoint.End(end: receiver.description, link: links[index].name)
                if let runtime = runtimes[receiver.node], let program = runtime.program {
                    let port = runtime.ports[runtime.node.interfaces.firstIndex { $0.name == receiver.interface }!]
                    byRingInterface[namespace, default: [:]][UInt32(port.interfaceIndex)] = (index, UInt8(end))
                    if let i = programs.firstIndex(where: { $0.node == receiver.node }) {
                        programs[i].ends.append(pointEnd)
                    } else {
                        programs.append((receiver.node, program, [pointEnd]))
                    }
                } else {
                    // Snap at the link's largest frame (MTU + Ethernet and VLAN
                    // headers), not libpcap's 256 KiB: its TPACKET_V3 ring holds
                    // buffer ÷ block-size blocks, a block per burst in immediate
                    // mode, and a block must fit one snap — at 256 KiB that is 8
                    // blocks, lost (ps_drop) after a few tens of milliseconds of a
                    // busy capture thread; at ~1.5 KiB it is a thousand.
                    let snap = max(link.mtu, 1500) + 18
                    pending.append((namespace, receiver.interface, snap, index, UInt8(end),
                                    CapturePoint(method: .libpcap, node: receiver.node, ends: [pointEnd], interfaceDropped: 0)))
                }
            }
        }
        // Several at once (BlockingWork): opening and closing a packet
        // socket wait in the kernel (packet_release → synchronize_net), 819
        // of them one by one took 17 s.
        final class Opened: @unchecked Sendable {   // each slot written by one thread, read after all ended
            var slots: UnsafeMutableBufferPointer<PcapLiveCapture?>
            init(_ n: Int) { slots = .allocate(capacity: n); slots.initialize(repeating: nil) }
            deinit { slots.deinitialize(); slots.deallocate() }
        }
        let opened = Opened(pending.count)
        let specs = pending.map { ($0.namespace, $0.interface, $0.snap) }
        do {
            try BlockingWork.forEach(specs.count) { i in
                let (namespace, interface, snap) = specs[i]
                opened.slots[i] = try NetworkNamespace.run(namespace) { () throws -> PcapLiveCapture in
                    try PcapLiveCapture(interface: interface,
                                        options: .init(snapLength: snap, bufferSize: Self.liveBufferBytes, direction: .inbound))
                }
            }
        } catch {
            Self.closeAll(opened.slots.compactMap { $0 })
            throw error
        }
        for (i, p) in pending.enumerated() {
            live.append((opened.slots[i]!, p.link, p.end))
            livePoints.append(p.point)
        }
        for runtime in runtimes.values {
            if let ring = runtime.captureRing { rings.append((ring, runtime.namespace)) }
        }
    }

    /// Every capture point with its counters now: the XDP program's (any
    /// thread may read them) and libpcap's (`pcap_stats`: call on the thread
    /// that owns the recorder, and before `finish` closes the captures).
    func capturePoints() -> [CapturePoint] {
        var out: [CapturePoint] = []
        for (node, program, ends) in programs {
            let s = program.statistics()
            out.append(CapturePoint(method: .xdpRing, node: node, ends: ends, recorded: s.captured,
                                    ringDropped: s.captureDropped, errors: s.captureErrors))
        }
        for (i, entry) in live.enumerated() {
            var p = livePoints[i]
            if let s = try? entry.capture.statistics() {
                p.recorded = UInt64(s.received)
                p.ringDropped = UInt64(s.dropped)
                p.interfaceDropped = UInt64(s.interfaceDropped)
            }
            out.append(p)
        }
        return out
    }

    /// Closes CAPTURES several at once (see `prepare`).
    static func closeAll(_ captures: [PcapLiveCapture]) {
        struct Captures: @unchecked Sendable { let all: [PcapLiveCapture] }   // each closed by one thread
        let c = Captures(all: captures)
        try? BlockingWork.forEach(c.all.count) { c.all[$0].close() }
    }

    /// Where `finish` leaves the final counters of every capture point
    /// (JSON, `[CapturePoint]`), beside all.pcapng.
    static func countersPath(directory: String) -> String { directory + "/capture-counters.json" }

    var pollDescriptors: [Int32] { rings.map(\.ring.fd) + live.map(\.capture.selectableFD) }

    /// Drains everything buffered and writes, in timestamp order, what is
    /// older than the hold-back; never blocks. `now` is the wall clock in
    /// nanoseconds (the stamps' clock), read before the sources are drained.
    func drain(now: UInt64 = CaptureRecorder.wallClockNanoseconds()) {
        for (ring, namespace) in rings {
            let map = byRingInterface[namespace] ?? [:]
            _ = try? ring.consume { frame in
                guard let (index, end) = map[frame.interfaceIndex] else { return }
                links[index].reorder.add(frame.bytes, timestamp: UInt64(max(0, frame.timestampNanoseconds)),
                                         originalLength: frame.wireLength, end: end | (frame.fastPath ? Self.fastPathBit : 0))
            }
        }
        for (capture, index, end) in live {
            _ = try? capture.readAvailable { packet in
                links[index].reorder.add(packet.bytes, timestamp: packet.timestamp, originalLength: packet.originalLength, end: end)
            }
        }
        write(upTo: now > Self.holdbackNanoseconds ? now - Self.holdbackNanoseconds : 0)
    }

    /// Writes the held frames stamped at or before `cutoff` (all with nil).
    private func write(upTo cutoff: UInt64?) {
        for i in links.indices where !links[i].reorder.isEmpty {
            // (Out of the array while it hands frames to the writer of the same element.)
            var reorder = links[i].reorder
            links[i].reorder = CaptureReorder()
            reorder.release(upTo: cutoff) { bytes, timestamp, originalLength, end in
                do {
                    try links[i].writer.write(bytes, timestamp: timestamp, originalLength: originalLength)
                    links[i].receivers.append(end)
                    frames &+= 1
                } catch { errors &+= 1 }
            }
            links[i].reorder = reorder
        }
    }

    static func wallClockNanoseconds() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1e9)) }

    func flush() {
        for i in links.indices {
            try? links[i].writer.flush()
            writeReceivers(i)
        }
    }

    private func writeReceivers(_ i: Int) {
        guard !links[i].receivers.isEmpty else { return }
        links[i].sidecar?.write(Data(links[i].receivers))
        links[i].receivers.removeAll(keepingCapacity: true)
    }

    /// Final drain, close every file, and write the merged pcapng and the
    /// final counters of every capture point (`countersPath`).
    @discardableResult
    func finish() -> [CapturePoint] {
        drain()
        write(upTo: nil)
        let points = capturePoints()
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(points).write(to: URL(fileURLWithPath: Self.countersPath(directory: directory)))
        } catch {
            FileHandle.standardError.write("wirelab daemon: writing capture counters: \(error)\n".data(using: .utf8)!)
        }
        for i in links.indices {
            try? links[i].writer.close()
            writeReceivers(i)
            try? links[i].sidecar?.close()
        }
        Self.closeAll(live.map(\.capture))
        do {
            try Self.mergeStreaming(links.map { ($0.name, $0.path, $0.ends) }, to: directory + "/all.pcapng")
        } catch {
            FileHandle.standardError.write("wirelab daemon: merging captures: \(error)\n".data(using: .utf8)!)
        }
        return points
    }

    /// A k-way merge of the per-link pcaps into one pcapng (one named
    /// interface per link, packets in timestamp order), record by record:
    /// captures of bulk transfers are far bigger than memory should hold.
    /// With `ends`, each record's comment names the end that received it
    /// (`rx node:iface`, from the sidecar) and whether its fast path
    /// forwarded it; a record past the sidecar's end has no comment.
    static func mergeStreaming(_ inputs: [(name: String, path: String, ends: [String])], to path: String) throws {
        let temporary = path + ".partial"
        FileManager.default.createFile(atPath: temporary, contents: nil)
        guard let out = FileHandle(forWritingAtPath: temporary) else { throw LabError("creating \(temporary)") }
        var writer = PcapNGWriter(comment: "wirelab: every link, recorded where it is received")
        var readers: [PcapReader] = []
        var ids: [PcapNGWriter.InterfaceID] = []
        var heads: [PcapRecord?] = []
        var sidecars: [(handle: FileHandle?, buffer: [UInt8], next: Int)] = []
        // The next record of input `i`, with its receiver's comment.
        func next(_ i: Int) throws -> PcapRecord? {
            guard var record = try readers[i].nextRecord() else { return nil }
            if sidecars[i].next == sidecars[i].buffer.count, let h = sidecars[i].handle {
                sidecars[i].buffer = [UInt8](h.readData(ofLength: 1 << 16))
                sidecars[i].next = 0
            }
            if sidecars[i].next < sidecars[i].buffer.count {
                let byte = sidecars[i].buffer[sidecars[i].next]
                sidecars[i].next += 1
                let end = Int(byte & ~fastPathBit)
                if end < inputs[i].ends.count {
                    record.comment = ObservationReader.receivedComment(inputs[i].ends[end], fastPath: byte & fastPathBit != 0)
                }
            }
            return record
        }
        for (i, input) in inputs.enumerated() {
            let reader = try PcapReader(path: input.path)
            readers.append(reader)
            sidecars.append((FileHandle(forReadingAtPath: receiverPath(input.path)), [], 0))
            ids.append(writer.addInterface(name: input.name))
            heads.append(try next(i))
        }
        while true {
            // Few links per lab: a linear scan for the earliest head is fine.
            var best = -1
            for (i, head) in heads.enumerated() {
                guard let head else { continue }
                if best < 0 || head.timestamp < heads[best]!.timestamp { best = i }
            }
            if best < 0 { break }
            writer.write(heads[best]!, interface: ids[best])
            heads[best] = try next(best)
            if writer.bytes.count > 1 << 20 { out.write(Data(writer.takeBytes())) }
        }
        out.write(Data(writer.takeBytes()))
        try out.close()
        for reader in readers { reader.close() }
        for s in sidecars { try? s.handle?.close() }
        try FileSystem.rename(temporary, to: path)
    }
}
