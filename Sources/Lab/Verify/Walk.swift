// `wirelab walk`: one probe and its reply, hop by hop, with every field
// that changed at each hop marked, a reason per hop, and a pcapng of just
// the walk's frames. Backend-agnostic: live now, the simulator later.
import Foundation
import Topology
import Wire

public struct WalkReport: Sendable {
    public var topology: ResolvedTopology
    public var probe: Probe
    public var path: ProbePath
    /// What the capture lost while the walk ran: non-empty means the path
    /// may be incomplete (hops missing, or the reply).
    public var captureLoss: [CaptureLoss] = []
    /// The walked probe was a flow's later packet (`walk --established`):
    /// one probe of the same 5-tuple went first, untraced.
    public var established = false

    /// The seed of `walk --sim`'s probe (golden walks depend on it).
    public static let simulatorSeed: UInt64 = 0x77_69_72_65_6C_61_62   // "wirelab"

    public init(topology: ResolvedTopology, probe: Probe, path: ProbePath) {
        self.topology = topology
        self.probe = probe
        self.path = path
    }

    /// Runs a walk on `backend` (already started; finished here).
    /// `random` picks the probe's marker and source port: seed it for a
    /// walk that must come out the same every time (the simulator's).
    /// With `established`, the walked probe is a later packet of its flow
    /// (see `prime`).
    public static func run(backend: CheckBackend, from: String, to: IPv4Address, port: Int?, proto: ProbeProtocol,
                           established: Bool = false, settle: Double = 0.8,
                           random: any RandomNumberGenerator = SystemRandomNumberGenerator()) throws -> WalkReport {
        var g = random
        let probe = try Probe.make(from: from, to: to, port: port, proto: proto, topology: backend.topology, using: &g)
        if established { try prime(backend, for: probe, settle: settle, using: &g) }
        let countersBefore = (try? backend.captureCounters()) ?? []
        if proto == .tcp {
            try backend.send(probe)
        } else {
            _ = try backend.echo(probe, timeout: settle)
        }
        backend.settle(seconds: settle)
        let links = try backend.finish()
        let read = ObservationReader.observations(links, topology: backend.topology)
        var report = WalkReport(topology: backend.topology, probe: probe,
                                path: ProbePath.trace(read.observations, marker: probe.marker, origin: from, topology: backend.topology))
        report.captureLoss = CaptureLoss.between(countersBefore, try backend.captureCounters())
        report.established = established
        return report
    }

    /// Why `walk --established` cannot walk a later packet of PROTO; nil
    /// when it can (udp).
    public static func establishedProblem(_ proto: ProbeProtocol) -> String? {
        switch proto {
        case .udp: return nil
        case .tcp:
            return "--established takes udp only: a tcp probe is a raw SYN, which never takes the fast path "
                + "(SYN, FIN and RST always go up to the element), and a later tcp segment needs a real "
                + "connection, which walk does not make"
        case .icmp:
            return "--established takes udp only: the fast path carries tcp and udp, so every icmp echo "
                + "goes through the element"
        }
    }

    /// What a title says of a walk of a flow's later packet.
    static let establishedNote = ", a later packet of the flow (--established)"

    /// How long the priming probe's flow is given, after its echo, for the
    /// nodes to act on it (install their fast-path entries) before the walk.
    static let primingPause = 0.2

    /// A flow's first packet always goes the slow path (no node has decided
    /// about it yet); a walk of a later one sends priming probes of the
    /// same 5-tuple first — other markers, so they are not traced — each
    /// waiting for its echo (the reply direction is decided too), then a
    /// moment. Two of them: a router that had to ask for a next hop's MAC
    /// sends the first from its ARP queue, which is not a forward a fast
    /// path can repeat; the second it forwards from its tables.
    static func prime(_ backend: CheckBackend, for probe: Probe, settle: Double, using g: inout some RandomNumberGenerator) throws {
        if let problem = establishedProblem(probe.proto) { throw LabError(problem) }
        for _ in 0..<primingProbes {
            var first = probe
            first.marker = .random(probe.proto, using: &g)
            _ = try backend.echo(first, timeout: settle)
        }
        backend.settle(seconds: primingPause)
    }

    static let primingProbes = 2

    /// The warning a walk whose capture lost frames prints; nil if none were lost.
    public var captureLossWarning: String? {
        guard !captureLoss.isEmpty else { return nil }
        return "warning: the path may be incomplete: " + CaptureLoss.summary(captureLoss, during: "the walk")
    }

    func show(_ h: Hop, _ f: HopField) -> String {
        guard let v = h.macText(f) ?? h.value(f) else { return "-" }
        return h.changed.contains(f) ? v + "*" : v
    }

    public func text() -> String {
        var out = WalkPictures.title(self) + "\n"
        out += "(* = changed at this hop)\n"
        if let warning = captureLossWarning { out += warning + "\n" }
        guard !path.hops.isEmpty else { return out + "the probe was not seen on any link\n" }
        var direction: ProbeMarker.Direction?
        for h in path.hops {
            if h.direction != direction {
                direction = h.direction
                out += h.direction == .request ? "\nrequest\n" : "\nreply\n"
            }
            out += String(format: "%2d. ", h.number) + "\(h.sender.node) (\(h.interfacesText)) → \(h.receiver)\n"
            var l = "    mac \(show(h, .srcMAC)) → \(show(h, .dstMAC))"
            if h.fields.vlan != nil { l += "  vlan \(show(h, .vlan))" }
            out += l + "\n"
            if h.fields.ip != nil {
                var ip = "    ip  \(show(h, .srcIP)) → \(show(h, .dstIP))  \(show(h, .proto))  ttl \(show(h, .ttl))"
                if h.fields.inner != nil {
                    ip += "  inner \(show(h, .innerSrcIP)) → \(show(h, .innerDstIP))"
                }
                if h.fields.transport?.sourcePort != nil {
                    ip += "  ports \(show(h, .srcPort)) → \(show(h, .dstPort))"
                }
                out += ip + "\n"
            }
            out += "    why: \(h.reason)\n"
        }
        for h in path.lostAfterFastPath {
            out += "\n\(h.receiver.node)'s fast path took hop \(h.number)'s frame, and no link saw it after\n"
        }
        if path.reply.isEmpty { out += "\nno reply was seen\n" }
        return out
    }

    public func json() throws -> String {
        struct J: Encodable {
            var lab, from, proto, source, target: String
            /// The walked probe was a later packet of its flow (`--established`).
            var established: Bool
            var hops: [CheckReport.JSONHop]
            /// Present only when the capture lost frames during the walk.
            var captureLoss: [String]?
        }
        let j = J(lab: topology.name, from: probe.from, proto: probe.proto.rawValue, source: probe.source.description,
                  target: probe.targetText, established: established, hops: path.hops.map(CheckReport.jsonHop),
                  captureLoss: captureLoss.isEmpty ? nil : captureLoss.map(\.text))
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(j), as: UTF8.self)
    }

    /// A pcapng of only the walk's frames: one named interface per link (in
    /// topology.links order), frames in the order they travelled, each
    /// commented with where it was received, its hop number and the reason.
    public func pcapng() -> [UInt8] {
        var w = PcapNGWriter(comment: "wirelab walk \(topology.name): \(probe.proto.rawValue) \(probe.from) → \(probe.targetText)"
                             + (established ? Self.establishedNote : ""))
        let ids = topology.links.map { w.addInterface(name: ObservationReader.linkName($0)) }
        for h in path.hops {
            w.writePacket(h.frame, interface: ids[h.link], timestamp: h.timestamp,
                          comment: "\(ObservationReader.receivedComment(h.receiver))\nhop \(h.number) (\(h.direction.rawValue)"
                            + (h.path == .fast ? ", fast path" : "") + "): \(h.reason)")
        }
        return w.takeBytes()
    }
}
