// Why a buffer was refused. Elements count drops by `reason`, so the set is
// small and closed, and each reason string is stable.

/// The reason a header view, a `Repr` or the `FrameParser` refused a buffer.
///
/// Validation happens once, at the edge (`init(validating:)`); once a view
/// exists, none of its accessors can trap.
public enum WireError: Error, Equatable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The buffer ends before the fixed part of a header (or a field the
    /// header says is there).
    case truncated
    /// The version field is not the one the header describes (IPv4 ≠ 4,
    /// IPv6 ≠ 6).
    case badVersion
    /// A header-length field is impossible: IPv4 IHL < 5 or past the buffer,
    /// TCP data offset < 5 or past the segment, an IPv6 extension header
    /// that runs past the packet.
    case badHeaderLength
    /// A length field is smaller than its header or points past the buffer
    /// (IPv4 total length, IPv6 payload length, UDP length, an ICMPv6 option
    /// length of 0).
    case badLength
    /// A checksum does not verify (the IPv4 header checksum in the frame
    /// parser; others when asked).
    case badChecksum
    /// Well-formed, but not something wirelab handles: ARP other than
    /// IPv4-over-Ethernet, stacked 802.1Q/802.1ad tags, too many IPv6
    /// extension headers, tunnelled fragments.
    case unsupported

    /// A stable, short, kebab-case name for drop counters and logs.
    @inlinable public var reason: String {
        switch self {
        case .truncated: "truncated"
        case .badVersion: "bad-version"
        case .badHeaderLength: "bad-header-length"
        case .badLength: "bad-length"
        case .badChecksum: "bad-checksum"
        case .unsupported: "unsupported"
        }
    }

    public var description: String { reason }
}
