// Observations: every frame that crossed every link, where it was received.
// Live captures (all.pcapng) and the simulator both produce them as
// `PcapNGLink`s named "<a.node>:<a.if> ↔ <b.node>:<b.if>" in topology.links
// order, each record commented "rx <node>:<iface>".
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

    public init(link: Int, sender: Endpoint, receiver: Endpoint, timestamp: UInt64, frame: [UInt8], sequence: Int) {
        self.link = link
        self.sender = sender
        self.receiver = receiver
        self.timestamp = timestamp
        self.frame = frame
        self.sequence = sequence
    }
}

public enum ObservationReader {
    /// The name of a link's capture interface.
    public static func linkName(_ link: Link) -> String { "\(link.a) ↔ \(link.b)" }
    public static func receivedComment(_ end: Endpoint) -> String { "rx \(end)" }

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
                let rx = record.comment?.split(separator: "\n").first { $0.hasPrefix("rx ") }
                guard let rx, let end = Endpoint(String(rx.dropFirst(3))), end == link.a || end == link.b else {
                    unattributed += 1
                    continue
                }
                out.append(Observation(link: index, sender: end == link.a ? link.b : link.a, receiver: end,
                                       timestamp: record.timestamp, frame: record.bytes, sequence: sequence))
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
