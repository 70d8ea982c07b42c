// A probe: one IPv4 packet built here (checksums right), sent from a host
// node as if its kernel sent it through a raw IP socket.
import Topology
import Wire

public struct Probe: Sendable, Hashable {
    public var from: String
    public var source: IPv4Address
    public var destination: IPv4Address
    public var proto: ProbeProtocol
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var marker: ProbeMarker

    public init(from: String, source: IPv4Address, destination: IPv4Address, proto: ProbeProtocol,
                sourcePort: UInt16, destinationPort: UInt16, marker: ProbeMarker) {
        self.from = from
        self.source = source
        self.destination = destination
        self.proto = proto
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.marker = marker
    }

    /// A probe from host `from` of `topology`, its source address chosen the
    /// way the host's routes would (connected subnet, else the interface of
    /// the gateway of the route that matches).
    public static func make<G: RandomNumberGenerator>(from: String, to: IPv4Address, port: Int?, proto: ProbeProtocol,
                                                      topology: ResolvedTopology, using g: inout G) throws -> Probe {
        guard let node = topology.nodes.first(where: { $0.name == from }) else { throw LabError("no node is named \(from)") }
        guard let source = sourceAddress(node, to: to) else {
            throw LabError("host \(from) has no address from which \(to) is reachable (no connected subnet or route)")
        }
        return Probe(from: from, source: source, destination: to, proto: proto,
                     sourcePort: UInt16.random(in: 40000...59999, using: &g), destinationPort: UInt16(port ?? 0),
                     marker: .random(proto, using: &g))
    }

    static func sourceAddress(_ node: Node, to dst: IPv4Address) -> IPv4Address? {
        let addressed = node.interfaces.flatMap { i in i.addresses.map { (i.name, $0) } }
        if let c = addressed.filter({ $0.1.contains(dst) }).max(by: { $0.1.length < $1.1.length }) { return c.1.address }
        let routes = node.routes.filter { $0.destination.contains(dst) }.sorted { $0.destination.length > $1.destination.length }
        for r in routes {
            for hop in r.nextHops {
                if let a = addressed.first(where: { $0.1.contains(hop) }) { return a.1.address }
            }
        }
        return addressed.first?.1.address
    }

    /// The IPv4 packet (header included), as a raw IP socket sends it.
    public var packet: [UInt8] {
        let l4Length: Int
        switch proto {
        case .tcp: l4Length = 20
        case .udp: l4Length = 8 + marker.nonce.count
        case .icmp: l4Length = 8 + marker.nonce.count
        }
        let ipProto: IPProtocol = proto == .tcp ? .tcp : proto == .udp ? .udp : .icmp
        let ip = IPv4Repr(sourceAddress: source, destinationAddress: destination, protocol: ipProto,
                          payloadLength: l4Length, timeToLive: 64, identification: marker.ipIdentification)
        var bytes = [UInt8](repeating: 0, count: ip.bufferLength)
        bytes.withUnsafeMutableBytes { b in
            ip.emit(into: IPv4MutableHeader(unchecked: b))
            let l4 = UnsafeMutableRawBufferPointer(rebasing: b[ip.headerLength...])
            let pseudo = IPPseudoHeader.ipv4(source: source, destination: destination)
            switch proto {
            case .tcp:
                TCPRepr(sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: marker.tcpSequence,
                        flags: .syn, window: 64240).emit(into: TCPMutableHeader(unchecked: l4), pseudoHeader: pseudo)
            case .udp:
                for (i, x) in marker.nonce.enumerated() { l4[8 + i] = x }
                UDPRepr(sourcePort: sourcePort, destinationPort: destinationPort, payloadLength: marker.nonce.count)
                    .emit(into: UDPMutableHeader(unchecked: l4), pseudoHeader: pseudo)
            case .icmp:
                for (i, x) in marker.nonce.enumerated() { l4[8 + i] = x }
                ICMPv4Repr(message: .echoRequest(identifier: marker.icmpIdentifier, sequenceNumber: marker.icmpSequence),
                           payloadLength: marker.nonce.count).emit(into: ICMPv4MutableHeader(unchecked: l4))
            }
        }
        return bytes
    }

    public var targetText: String { proto == .icmp ? "\(destination)" : "\(destination):\(destinationPort)" }
}
