// Observations: every frame that crossed every link, where it was received.
// Live captures (all.pcapng) and the simulator both produce them as
// `PcapNGLink`s named "<a.node>:<a.if> ↔ <b.node>:<b.if>" in topology.links
// order, each record commented "rx <node>:<iface>", and on a line of its own
// "fast path" when the receiving node's XDP program forwarded the frame by
// its fast path (live only: the simulator has none).
import Topology
import Wire

/// One frame on one link, received at `receiver`, sent by the link's other end.
public struct Observation: Hashable, Sendable {
    /// Index into `topology.links`.
    public var link: Int
    public var sender: Endpoint
    public var receiver: Endpoint
    /// Nanoseconds since the Unix epoch (or a virtual clock).
    public var timestamp: UInt64
    public var frame: [UInt8]
    /// Position in the capture, to keep ties deterministic.
    public var sequence: Int
    /// The receiver forwarded this frame by its fast path (in the kernel,
    /// never through its element); `frame` is still as received.
    public var fastPath: Bool

    public init(link: Int, sender: Endpoint, receiver: Endpoint, timestamp: UInt64, frame: [UInt8], sequence: Int,
                fastPath: Bool = false) {
        self.link = link
        self.sender = sender
        self.receiver = receiver
        self.timestamp = timestamp
        self.frame = frame
        self.sequence = sequence
        self.fastPath = fastPath
    }
}

public enum ObservationReader {
    /// The name of a link's capture interface.
    public static func linkName(_ link: Link) -> String { "\(link.a) ↔ \(link.b)" }
    /// The comment of a frame received at `end` (`node:iface`), with the
    /// `fastPathLine` when the receiver's fast path forwarded it.
    public static func receivedComment(_ end: some CustomStringConvertible, fastPath: Bool = false) -> String {
        "rx \(end)" + (fastPath ? "\n" + fastPathLine : "")
    }
    /// The comment line of a frame the receiving node forwarded by its fast path.
    public static let fastPathLine = "fast path"

    public struct Result: Sendable {
        public var observations: [Observation]
        /// Records that named no receiver or a link/receiver not in the topology.
        public var unattributed: Int
    }

    /// Observations from per-link captures (any order of links; matched by name).
    public static func observations(_ links: [PcapNGLink], topology: ResolvedTopology) -> Result {
        var byName: [String: Int] = [:]
        for (i, l) in topology.links.enumerated() { byName[linkName(l)] = i }
        var out: [Observation] = []
        var unattributed = 0
        var sequence = 0
        for captured in links {
            guard let index = byName[captured.name] else { unattributed += captured.records.count; continue }
            let link = topology.links[index]
            for record in captured.records {
                sequence += 1
                let lines = record.comment?.split(separator: "\n") ?? []
                let rx = lines.first { $0.hasPrefix("rx ") }
                guard let rx, let end = Endpoint(String(rx.dropFirst(3))), end == link.a || end == link.b else {
                    unattributed += 1
                    continue
                }
                out.append(Observation(link: index, sender: end == link.a ? link.b : link.a, receiver: end,
                                       timestamp: record.timestamp, frame: record.bytes, sequence: sequence,
                                       fastPath: lines.contains { $0 == fastPathLine }))
            }
        }
        return Result(observations: out, unattributed: unattributed)
    }

    /// Observations from a parsed pcapng (e.g. `Captures/<lab>/all.pcapng`).
    public static func observations(_ capture: PcapNGCapture, topology: ResolvedTopology) -> Result {
        var links: [PcapNGLink] = capture.interfaces.map { PcapNGLink(name: $0.name ?? "", records: []) }
        for p in capture.packets where p.interface < links.count { links[p.interface].records.append(p.record) }
        return observations(links, topology: topology)
    }
}
