// Values shared by the capture-file formats (classic pcap and pcapng):
// the link type registry number and one captured frame with its timestamp.
// The formats themselves are in PcapNG.swift (pure bytes, here in Wire) and
// LinuxNet/PcapFile.swift (classic pcap through libpcap).

/// A link-layer header type from the tcpdump.org LINKTYPE_ registry, as
/// written in a pcapng Interface Description Block (16 bits there) or a
/// classic pcap file header. Open: unknown values survive a round trip.
public struct PcapLinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `LINKTYPE_ETHERNET` (1): IEEE 802.3 Ethernet, also `DLT_EN10MB`.
    public static let ethernet = PcapLinkType(rawValue: 1)
    /// `LINKTYPE_RAW` (101): raw IPv4/IPv6, no link-layer header.
    public static let raw = PcapLinkType(rawValue: 101)
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture (tcpdump -i any).
    public static let linuxCooked = PcapLinkType(rawValue: 113)

    public var description: String {
        switch self {
        case .ethernet: "ethernet"
        case .raw: "raw"
        case .linuxCooked: "linux-sll"
        default: "linktype(\(rawValue))"
        }
    }
}

/// Defaults used by every capture writer in wirelab.
public enum PcapDefaults {
    /// Snapshot length in bytes: libpcap's own maximum (`MAXIMUM_SNAPLEN`,
    /// 262144), so no frame a veth can carry is ever cut.
    public static let snapLength: UInt32 = 262_144
}

/// One captured frame: when it was seen, the bytes that were kept, and how
/// long it was on the wire. The common currency between live captures, pcap
/// files, pcapng files and the merge helper.
public struct PcapRecord: Hashable, Sendable {
    /// Nanoseconds since the Unix epoch (1970-01-01T00:00:00Z).
    public var timestamp: UInt64
    /// The captured bytes, starting at the link-layer header; at most the
    /// snapshot length of the capture.
    public var bytes: [UInt8]
    /// Length of the frame on the wire in bytes; `>= bytes.count`.
    public var originalLength: Int
    /// A free-text note about this frame (pcapng `opt_comment`); classic
    /// pcap cannot store it and drops it.
    public var comment: String?

    /// `originalLength` defaults to `bytes.count` (nothing was cut).
    public init(timestamp: UInt64, bytes: [UInt8], originalLength: Int? = nil, comment: String? = nil) {
        self.timestamp = timestamp
        self.bytes = bytes
        self.originalLength = max(originalLength ?? bytes.count, bytes.count)
        self.comment = comment
    }
}
