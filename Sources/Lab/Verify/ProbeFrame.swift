// What the verifier reads out of one captured frame, and the marker that
// identifies a probe (and its reply) through every rewrite the lab makes.
import Topology
import Wire

/// An IPv4 header and what follows it, as far as the verifier cares.
public struct IPv4Fields: Hashable, Sendable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var timeToLive: UInt8
    public var identification: UInt16
    public var protocolNumber: UInt8
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    public var tcpFlags: UInt8?
    public var tcpSequence: UInt32?
    public var tcpAcknowledgment: UInt32?
    public var icmpType: UInt8?
    public var icmpCode: UInt8?
    /// ICMP echo identifier and sequence number (echo request/reply only).
    public var icmpIdentifier: UInt16?
    public var icmpSequence: UInt16?
    /// For ICMP errors: the IP header (and first 8 bytes) they quote.
    public var quotedIdentification: UInt16?
    public var quotedSource: IPv4Address?
    public var quotedDestination: IPv4Address?
    /// The first bytes of a UDP payload (marker nonce).
    public var udpPayloadPrefix: [UInt8]?

    public var packetProtocol: PacketProtocol? {
        switch protocolNumber {
        case 6: return .tcp
        case 17: return .udp
        case 1: return .icmp
        case 4: return .ipip
        default: return nil
        }
    }

    /// Reads an IPv4 packet; nil if it is not a valid one.
    public init?(packet: UnsafeRawBufferPointer) {
        guard let ip = try? IPv4Header(validating: packet) else { return nil }
        source = ip.sourceAddress
        destination = ip.destinationAddress
        timeToLive = ip.timeToLive
        identification = ip.identification
        protocolNumber = ip.protocol.rawValue
        guard !ip.isNonFirstFragment else { return }
        let l4 = ip.payload
        switch ip.protocol.rawValue {
        case 6:
            guard let tcp = try? TCPHeader(validating: l4) else { return }
            sourcePort = tcp.sourcePort
            destinationPort = tcp.destinationPort
            tcpFlags = tcp.flags.rawValue
            tcpSequence = tcp.sequenceNumber
            tcpAcknowledgment = tcp.acknowledgmentNumber
        case 17:
            guard let udp = try? UDPHeader(validating: l4) else { return }
            sourcePort = udp.sourcePort
            destinationPort = udp.destinationPort
            udpPayloadPrefix = Array(udp.payload.prefix(ProbeMarker.nonceLength))
        case 1:
            guard let icmp = try? ICMPv4Header(validating: l4) else { return }
            icmpType = icmp.type.rawValue
            icmpCode = icmp.code
            if icmp.type.rawValue == 0 || icmp.type.rawValue == 8 {
                icmpIdentifier = icmp.identifier
                icmpSequence = icmp.sequenceNumber
            } else if icmp.payload.count >= 20 {
                // Quoted header: don't validate lengths (the rest is cut).
                let q = IPv4Header(unchecked: icmp.payload)
                if q.version == 4 {
                    quotedIdentification = q.identification
                    quotedSource = q.sourceAddress
                    quotedDestination = q.destinationAddress
                }
            }
        default:
            break
        }
    }
}

/// One Ethernet frame as the verifier sees it: layer 2, the outer IPv4
/// header, and for IPIP the inner one.
public struct FrameFields: Hashable, Sendable {
    public var sourceMAC: MACAddress
    public var destinationMAC: MACAddress
    public var vlan: UInt16?
    public var etherType: UInt16
    public var ip: IPv4Fields?
    /// The encapsulated packet of an IPIP frame (TUN mode).
    public var inner: IPv4Fields?

    /// The header carrying the probe's transport: the inner one if there is one.
    public var transport: IPv4Fields? { inner ?? ip }

    public init?(frame: [UInt8]) {
        guard let f = frame.withUnsafeBytes({ Self.parse($0) }) else { return nil }
        self = f
    }

    private init(sourceMAC: MACAddress, destinationMAC: MACAddress, vlan: UInt16?, etherType: UInt16) {
        self.sourceMAC = sourceMAC
        self.destinationMAC = destinationMAC
        self.vlan = vlan
        self.etherType = etherType
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> FrameFields? {
        guard let eth = try? EthernetHeader(validating: bytes) else { return nil }
        var offset = EthernetHeader.untaggedLength
        var type = bytes.wireU16(EthernetHeader.Field.etherType)
        var vlan: UInt16?
        if type == EtherType.vlan.rawValue {
            guard bytes.count >= EthernetHeader.taggedLength else { return nil }
            vlan = bytes.wireU16(EthernetHeader.Field.tci) & 0x0FFF
            type = bytes.wireU16(EthernetHeader.Field.taggedEtherType)
            offset = EthernetHeader.taggedLength
        }
        var f = FrameFields(sourceMAC: eth.source, destinationMAC: eth.destination, vlan: vlan, etherType: type)
        guard type == EtherType.ipv4.rawValue else { return f }
        let l3 = UnsafeRawBufferPointer(rebasing: bytes[offset...])
        f.ip = IPv4Fields(packet: l3)
        if let ip = f.ip, ip.protocolNumber == 4, let outer = try? IPv4Header(validating: l3) {
            f.inner = IPv4Fields(packet: outer.payload)
        }
        return f
    }
}


/// What identifies one probe and its reply, whatever the lab rewrites:
/// - TCP: the SYN's sequence number (its reply acknowledges seq + 1);
/// - UDP: a nonce at the start of the payload (an echo sends it back);
/// - ICMP: echo identifier and sequence number;
/// - and always the IP identification, which ICMP errors quote.
/// Addresses, ports, MACs and TTL are never part of the marker: those are
/// what the hops rewrite.
public struct ProbeMarker: Hashable, Sendable {
    public static let nonceLength = 16
    public var proto: ProbeProtocol
    public var ipIdentification: UInt16
    public var tcpSequence: UInt32
    public var icmpIdentifier: UInt16
    public var icmpSequence: UInt16
    public var nonce: [UInt8]

    public init(proto: ProbeProtocol, ipIdentification: UInt16, tcpSequence: UInt32 = 0,
                icmpIdentifier: UInt16 = 0, icmpSequence: UInt16 = 0, nonce: [UInt8] = []) {
        self.proto = proto
        self.ipIdentification = ipIdentification
        self.tcpSequence = tcpSequence
        self.icmpIdentifier = icmpIdentifier
        self.icmpSequence = icmpSequence
        self.nonce = nonce
    }

    /// A fresh marker from a random generator.
    public static func random<G: RandomNumberGenerator>(_ proto: ProbeProtocol, using g: inout G) -> ProbeMarker {
        var nonce = Array("wirelab!".utf8)
        for _ in 0..<(nonceLength - nonce.count) { nonce.append(UInt8.random(in: 0...255, using: &g)) }
        return ProbeMarker(proto: proto, ipIdentification: UInt16.random(in: 1...0xFFFF, using: &g),
                           tcpSequence: UInt32.random(in: 1...0x7FFF_FFFF, using: &g),
                           icmpIdentifier: UInt16.random(in: 1...0xFFFF, using: &g),
                           icmpSequence: UInt16.random(in: 1...0x7FFF, using: &g), nonce: nonce)
    }

    public enum Direction: String, Sendable { case request, reply }

    /// Whether `frame` carries this probe (request) or its answer (reply).
    public func classify(_ frame: FrameFields) -> Direction? {
        guard let t = frame.transport else { return nil }
        switch proto {
        case .tcp:
            if let seq = t.tcpSequence, let flags = t.tcpFlags {
                if seq == tcpSequence && flags & 0x02 != 0 && flags & 0x10 == 0 { return .request }
                if t.tcpAcknowledgment == tcpSequence &+ 1 && flags & 0x10 != 0 && flags & 0x06 != 0 { return .reply }
            }
        case .udp:
            if let p = t.udpPayloadPrefix, p == nonce {
                // The echo comes back with the ports swapped; the request is
                // the one whose identification is ours.
                return t.identification == ipIdentification ? .request : .reply
            }
        case .icmp:
            if t.icmpIdentifier == icmpIdentifier && t.icmpSequence == icmpSequence {
                if t.icmpType == 8 { return .request }
                if t.icmpType == 0 { return .reply }
            }
        }
        // ICMP errors about the probe (unreachable, time exceeded).
        if t.quotedIdentification == ipIdentification, t.icmpType != nil { return .reply }
        return nil
    }
}
