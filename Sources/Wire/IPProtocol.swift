// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"): the IPv4
// Protocol field and the IPv6 Next Header field share one registry.

/// An IP protocol number. Open: values wirelab has no name for survive a
/// round trip unchanged (`IPProtocol(rawValue: 132)` stays 132).
public struct IPProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    /// 0: IPv6 Hop-by-Hop Options extension header (RFC 8200).
    @inlinable public static var hopByHop: IPProtocol { IPProtocol(0) }
    /// 1: ICMP for IPv4 (RFC 792).
    @inlinable public static var icmp: IPProtocol { IPProtocol(1) }
    /// 4: IPv4 encapsulated in IPv4, "IP-in-IP" (RFC 2003).
    @inlinable public static var ipip: IPProtocol { IPProtocol(4) }
    /// 6: TCP (RFC 9293).
    @inlinable public static var tcp: IPProtocol { IPProtocol(6) }
    /// 17: UDP (RFC 768).
    @inlinable public static var udp: IPProtocol { IPProtocol(17) }
    /// 41: IPv6 encapsulated (RFC 2473).
    @inlinable public static var ipv6: IPProtocol { IPProtocol(41) }
    /// 43: IPv6 Routing extension header.
    @inlinable public static var routing: IPProtocol { IPProtocol(43) }
    /// 44: IPv6 Fragment extension header.
    @inlinable public static var fragment: IPProtocol { IPProtocol(44) }
    /// 58: ICMP for IPv6 (RFC 4443).
    @inlinable public static var icmpv6: IPProtocol { IPProtocol(58) }
    /// 59: IPv6 "No Next Header".
    @inlinable public static var none: IPProtocol { IPProtocol(59) }
    /// 60: IPv6 Destination Options extension header.
    @inlinable public static var destinationOptions: IPProtocol { IPProtocol(60) }

    /// True for the IPv6 extension headers the IPv6 walk steps over
    /// (hop-by-hop, routing, fragment, destination options).
    @inlinable public var isIPv6ExtensionHeader: Bool {
        switch rawValue {
        case 0, 43, 44, 60: true
        default: false
        }
    }

    public var description: String {
        switch rawValue {
        case 0: "hop-by-hop"
        case 1: "icmp"
        case 4: "ipip"
        case 6: "tcp"
        case 17: "udp"
        case 41: "ipv6"
        case 43: "routing"
        case 44: "fragment"
        case 58: "icmpv6"
        case 59: "none"
        case 60: "destination-options"
        default: "ip-proto-\(rawValue)"
        }
    }
}
