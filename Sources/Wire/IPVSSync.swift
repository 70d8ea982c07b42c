// The Linux IPVS connection synchronisation protocol, version 1
// (net/netfilter/ipvs/ip_vs_sync.c, include/uapi/linux/ip_vs.h): UDP
// datagrams to 224.0.0.81:8848 (TTL 1) that carry connection entries from
// one director to the others of its sync group.
//
// Message header (8 bytes):
//
//   0        1        2        3
//  +--------+--------+--------+--------+
//  |reserved| syncid |      size       |   reserved = 0 (a v0 receiver then drops it)
//  +--------+--------+--------+--------+   size = whole message in bytes
//  |nr_conns|version |      spare      |   version = 1
//  +--------+--------+--------+--------+
//
// Then `nr_conns` entries, each starting on a 4-byte boundary (zero padding
// between entries, none after the last). An IPv4 entry (struct
// ip_vs_sync_v4, 36 bytes) and its options:
//
//  +--------+--------+--------+--------+
//  |  type  |protocol| ver(4)|size(12) |   type 0 = IPv4; ver 0; size = entry + options, unpadded
//  +--------+--------+--------+--------+
//  |               flags               |   IP_VS_CONN_F_*
//  +--------+--------+--------+--------+
//  |      state      |      cport      |   IP_VS_TCP_S_* (UDP: 0)
//  +--------+--------+--------+--------+
//  |      vport      |      dport      |
//  +--------+--------+--------+--------+
//  |              fwmark               |
//  +--------+--------+--------+--------+
//  |         timeout (seconds)         |
//  +--------+--------+--------+--------+
//  |    caddr / vaddr / daddr (3 × 4)  |
//  +--------+--------+--------+--------+
//  | option type | option length | data ...   (type-length-value, length ≥ 1)
//
// Option types: 1 sequence data (struct ip_vs_sync_conn_options, 24
// bytes), 2 persistence-engine data, 3 persistence-engine name. Bit 0x40
// (IPVS_OPT_F_PARAM) marks an option a receiver may skip when it does not
// know it; an unknown option without it makes the kernel skip the entry.
//
// wirelab's FULLNAT extension (docs/ipvs-sync.md): option type 0x48
// (0x40 | 8, skippable, unused by Linux), length 6: the local address (4)
// and local port (2) the director put on the packets towards the real.

/// Constants and field offsets of IPVS sync v1.
public enum IPVSSync {
    /// The multicast group (IP_VS_SYNC_GROUP).
    public static let group = IPv4Address(224, 0, 0, 81)
    /// The group's Ethernet address (RFC 1112 mapping of 224.0.0.81).
    public static let groupMAC = MACAddress(rawValue: 0x0100_5E00_0051)
    /// UDP port (IP_VS_SYNC_PORT).
    public static let port: UInt16 = 8848
    /// SYNC_PROTO_VER.
    public static let version: UInt8 = 1
    /// Message header length in bytes.
    public static let headerLength = 8
    /// An IPv4 entry without options, in bytes.
    public static let entryLength = 36
    /// Most entries one message holds (nr_conns is one byte).
    public static let maximumEntries = 255

    /// Byte offsets in the message header.
    public enum Field {
        public static let reserved = 0
        public static let syncID = 1
        public static let size = 2
        public static let count = 4
        public static let version = 5
        public static let spare = 6
    }

    /// Byte offsets in an IPv4 entry.
    public enum EntryField {
        public static let type = 0
        public static let `protocol` = 1
        public static let versionAndSize = 2
        public static let flags = 4
        public static let state = 8
        public static let clientPort = 10
        public static let virtualPort = 12
        public static let destinationPort = 14
        public static let firewallMark = 16
        public static let timeout = 20
        public static let clientAddress = 24
        public static let virtualAddress = 28
        public static let destinationAddress = 32
    }

    /// Option types (IPVS_OPT_*).
    public enum Option {
        public static let sequenceData: UInt8 = 1
        public static let persistenceEngineData: UInt8 = 2
        public static let persistenceEngineName: UInt8 = 3
        /// IPVS_OPT_F_PARAM: the receiver may skip the option if it does not know it.
        public static let skippable: UInt8 = 0x40
        /// wirelab: FULLNAT local address and port (6 bytes). Skippable.
        public static let fullnatLocal: UInt8 = 0x48
        /// Bytes of sequence data: in and out struct ip_vs_seq (init_seq, delta, previous_delta).
        public static let sequenceDataLength = 24
        public static let fullnatLocalLength = 6
    }

    /// IP_VS_CONN_F_* (include/uapi/linux/ip_vs.h), as sent in an entry's flags.
    public enum Flag {
        /// The forwarding method occupies the low three bits.
        public static let forwardMask: UInt32 = 0x0007
        public static let masquerade: UInt32 = 0x0000
        public static let localNode: UInt32 = 0x0001
        public static let tunnel: UInt32 = 0x0002
        public static let directRoute: UInt32 = 0x0003
        public static let bypass: UInt32 = 0x0004
        /// FULLNAT, as Alibaba's LVS kernel numbers it (IP_VS_CONN_F_FULLNAT);
        /// mainline has no such method. wirelab sends it with the
        /// `Option.fullnatLocal` extension.
        public static let fullnat: UInt32 = 0x0005
        public static let sync: UInt32 = 0x0020
        public static let hashed: UInt32 = 0x0040
        public static let noOutput: UInt32 = 0x0080
        public static let inactive: UInt32 = 0x0100
        public static let outSequence: UInt32 = 0x0200
        public static let inSequence: UInt32 = 0x0400
        public static let noClientPort: UInt32 = 0x0800
        public static let template: UInt32 = 0x1000
        public static let onePacket: UInt32 = 0x2000
    }

    /// IP_VS_TCP_S_* (the connection states of ip_vs_proto_tcp.c); UDP
    /// entries carry IP_VS_UDP_S_NORMAL (0), templates IP_VS_CTPL_S_NONE (0).
    public enum TCPState {
        public static let none: UInt16 = 0
        public static let established: UInt16 = 1
        public static let synSent: UInt16 = 2
        public static let synRecv: UInt16 = 3
        public static let finWait: UInt16 = 4
        public static let timeWait: UInt16 = 5
        public static let close: UInt16 = 6
        public static let closeWait: UInt16 = 7
        public static let lastAck: UInt16 = 8
        public static let listen: UInt16 = 9
        public static let synAck: UInt16 = 10
    }
}

/// One IPv4 connection entry of a sync message (struct ip_vs_sync_v4 and
/// the options wirelab reads).
public struct IPVSSyncEntry: Hashable, Sendable {
    public var `protocol`: IPProtocol
    /// IP_VS_CONN_F_* bits (`IPVSSync.Flag`).
    public var flags: UInt32
    /// IP_VS_TCP_S_* for TCP (`IPVSSync.TCPState`), 0 for UDP and templates.
    public var state: UInt16
    public var clientPort: UInt16
    public var virtualPort: UInt16
    public var destinationPort: UInt16
    public var firewallMark: UInt32
    /// Seconds the entry has left (the kernel sends its state's timeout).
    public var timeout: UInt32
    public var clientAddress: IPv4Address
    public var virtualAddress: IPv4Address
    public var destinationAddress: IPv4Address
    /// Option 1, the 24 bytes of sequence adjustment, kept as read.
    public var sequenceData: SequenceData?
    /// wirelab's FULLNAT extension: the local address and port.
    public var fullnatLocal: FullNATLocal?
    /// An option the receiver must understand but does not (no 0x40 bit):
    /// the kernel skips such an entry, and so does wirelab.
    public var hasUnknownMandatoryOption: Bool

    public struct SequenceData: Hashable, Sendable {
        public var inInitial: UInt32, inDelta: UInt32, inPreviousDelta: UInt32
        public var outInitial: UInt32, outDelta: UInt32, outPreviousDelta: UInt32
        public init(inInitial: UInt32 = 0, inDelta: UInt32 = 0, inPreviousDelta: UInt32 = 0,
                    outInitial: UInt32 = 0, outDelta: UInt32 = 0, outPreviousDelta: UInt32 = 0) {
            self.inInitial = inInitial; self.inDelta = inDelta; self.inPreviousDelta = inPreviousDelta
            self.outInitial = outInitial; self.outDelta = outDelta; self.outPreviousDelta = outPreviousDelta
        }
    }

    public struct FullNATLocal: Hashable, Sendable {
        public var address: IPv4Address
        public var port: UInt16
        public init(address: IPv4Address, port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    public init(protocol proto: IPProtocol, flags: UInt32, state: UInt16, clientAddress: IPv4Address,
                clientPort: UInt16, virtualAddress: IPv4Address, virtualPort: UInt16,
                destinationAddress: IPv4Address, destinationPort: UInt16, timeout: UInt32,
                firewallMark: UInt32 = 0, sequenceData: SequenceData? = nil, fullnatLocal: FullNATLocal? = nil,
                hasUnknownMandatoryOption: Bool = false) {
        self.protocol = proto
        self.flags = flags
        self.state = state
        self.clientPort = clientPort
        self.virtualPort = virtualPort
        self.destinationPort = destinationPort
        self.firewallMark = firewallMark
        self.timeout = timeout
        self.clientAddress = clientAddress
        self.virtualAddress = virtualAddress
        self.destinationAddress = destinationAddress
        self.sequenceData = sequenceData
        self.fullnatLocal = fullnatLocal
        self.hasUnknownMandatoryOption = hasUnknownMandatoryOption
    }

    /// The forwarding method bits (`IPVSSync.Flag.forwardMask`).
    @inlinable public var forwardMethod: UInt32 { flags & IPVSSync.Flag.forwardMask }
    @inlinable public var isTemplate: Bool { flags & IPVSSync.Flag.template != 0 }

    /// Bytes the entry takes on the wire, options included, padding not
    /// (the entry's size field).
    public var bufferLength: Int {
        IPVSSync.entryLength + (sequenceData == nil ? 0 : 2 + IPVSSync.Option.sequenceDataLength)
            + (fullnatLocal == nil ? 0 : 2 + IPVSSync.Option.fullnatLocalLength)
    }

    /// Reads one entry from `bytes`, which must span exactly the entry's
    /// size (options included). Throws `.unsupported` for IPv6 entries and
    /// entry versions other than 0, `.truncated` when shorter than 36
    /// bytes, `.badLength` for an option of length 0 or past the end, or
    /// a known option of the wrong length.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(WireError) {
        typealias F = IPVSSync.EntryField
        guard bytes.count >= IPVSSync.entryLength else { throw .truncated }
        guard bytes.wireU8(F.type) == 0, bytes.wireU16(F.versionAndSize) >> 12 == 0 else { throw .unsupported }
        self.init(protocol: IPProtocol(bytes.wireU8(F.protocol)), flags: bytes.wireU32(F.flags),
                  state: bytes.wireU16(F.state), clientAddress: bytes.wireIPv4(F.clientAddress),
                  clientPort: bytes.wireU16(F.clientPort), virtualAddress: bytes.wireIPv4(F.virtualAddress),
                  virtualPort: bytes.wireU16(F.virtualPort), destinationAddress: bytes.wireIPv4(F.destinationAddress),
                  destinationPort: bytes.wireU16(F.destinationPort), timeout: bytes.wireU32(F.timeout),
                  firewallMark: bytes.wireU32(F.firewallMark))
        var p = IPVSSync.entryLength
        while p < bytes.count {
            guard p + 2 <= bytes.count else { throw .badLength }
            let type = bytes.wireU8(p), length = Int(bytes.wireU8(p + 1))
            p += 2
            guard length > 0, p + length <= bytes.count else { throw .badLength }
            switch type & ~IPVSSync.Option.skippable {
            case IPVSSync.Option.sequenceData:
                guard length == IPVSSync.Option.sequenceDataLength else { throw .badLength }
                sequenceData = SequenceData(inInitial: bytes.wireU32(p), inDelta: bytes.wireU32(p + 4),
                                            inPreviousDelta: bytes.wireU32(p + 8), outInitial: bytes.wireU32(p + 12),
                                            outDelta: bytes.wireU32(p + 16), outPreviousDelta: bytes.wireU32(p + 20))
            case IPVSSync.Option.persistenceEngineData, IPVSSync.Option.persistenceEngineName:
                break  // persistence engines (SIP) are not modelled; the data is skipped
            default:
                if type == IPVSSync.Option.fullnatLocal {
                    guard length == IPVSSync.Option.fullnatLocalLength else { throw .badLength }
                    fullnatLocal = FullNATLocal(address: bytes.wireIPv4(p), port: bytes.wireU16(p + 4))
                } else if type & IPVSSync.Option.skippable == 0 {
                    hasUnknownMandatoryOption = true
                }
            }
            p += length
        }
    }

    /// Writes the entry (options included) at the start of `bytes`, which
    /// must hold `bufferLength` bytes. Returns `bufferLength`.
    @discardableResult
    public func emit(into bytes: UnsafeMutableRawBufferPointer) -> Int {
        typealias F = IPVSSync.EntryField
        let length = bufferLength
        precondition(bytes.count >= length, "buffer too small for an IPVS sync entry")
        bytes.wireSetU8(0, F.type)
        bytes.wireSetU8(self.protocol.rawValue, F.protocol)
        bytes.wireSetU16(UInt16(length & 0x0FFF), F.versionAndSize)
        bytes.wireSetU32(flags, F.flags)
        bytes.wireSetU16(state, F.state)
        bytes.wireSetU16(clientPort, F.clientPort)
        bytes.wireSetU16(virtualPort, F.virtualPort)
        bytes.wireSetU16(destinationPort, F.destinationPort)
        bytes.wireSetU32(firewallMark, F.firewallMark)
        bytes.wireSetU32(timeout, F.timeout)
        bytes.wireSetIPv4(clientAddress, F.clientAddress)
        bytes.wireSetIPv4(virtualAddress, F.virtualAddress)
        bytes.wireSetIPv4(destinationAddress, F.destinationAddress)
        var p = IPVSSync.entryLength
        if let s = sequenceData {
            bytes.wireSetU8(IPVSSync.Option.sequenceData, p)
            bytes.wireSetU8(UInt8(IPVSSync.Option.sequenceDataLength), p + 1)
            bytes.wireSetU32(s.inInitial, p + 2)
            bytes.wireSetU32(s.inDelta, p + 6)
            bytes.wireSetU32(s.inPreviousDelta, p + 10)
            bytes.wireSetU32(s.outInitial, p + 14)
            bytes.wireSetU32(s.outDelta, p + 18)
            bytes.wireSetU32(s.outPreviousDelta, p + 22)
            p += 2 + IPVSSync.Option.sequenceDataLength
        }
        if let l = fullnatLocal {
            bytes.wireSetU8(IPVSSync.Option.fullnatLocal, p)
            bytes.wireSetU8(UInt8(IPVSSync.Option.fullnatLocalLength), p + 1)
            bytes.wireSetIPv4(l.address, p + 2)
            bytes.wireSetU16(l.port, p + 6)
            p += 2 + IPVSSync.Option.fullnatLocalLength
        }
        return p
    }
}

/// A read-only view of one sync message (the UDP payload), validated
/// whole: once `init(validating:)` passed, `forEachEntry` reads every entry
/// without error.
public struct IPVSSyncMessage {
    public let bytes: UnsafeRawBufferPointer

    /// Checks the header (`.truncated` under 8 bytes; `.badVersion` when
    /// reserved ≠ 0 or version ≠ 1 — a v0 message or something else;
    /// `.badLength` when size ≠ the datagram's length) and every entry
    /// (`.badLength` when an entry runs past the end or is under 36 bytes,
    /// or options are inconsistent; `.unsupported` for IPv6 entries and
    /// entry versions ≠ 0).
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        typealias F = IPVSSync.Field
        guard bytes.count >= IPVSSync.headerLength else { throw .truncated }
        guard bytes.wireU8(F.reserved) == 0, bytes.wireU8(F.version) == IPVSSync.version else { throw .badVersion }
        guard Int(bytes.wireU16(F.size)) == bytes.count else { throw .badLength }
        self.bytes = bytes
        try forEachEntry { _ in }
    }

    @inlinable public var syncID: UInt8 { bytes.wireU8(IPVSSync.Field.syncID) }
    /// The size field: the message's length in bytes.
    @inlinable public var size: Int { Int(bytes.wireU16(IPVSSync.Field.size)) }
    /// nr_conns.
    @inlinable public var count: Int { Int(bytes.wireU8(IPVSSync.Field.count)) }

    /// Calls `body` with each entry in order (the kernel's walk in
    /// ip_vs_process_message(): size from ver_size, then 4-byte alignment).
    public func forEachEntry(_ body: (IPVSSyncEntry) throws(WireError) -> Void) throws(WireError) {
        var p = IPVSSync.headerLength
        for _ in 0..<count {
            guard p + 4 <= bytes.count else { throw .truncated }
            let versionAndSize = bytes.wireU16(p + IPVSSync.EntryField.versionAndSize)
            guard versionAndSize >> 12 == 0 else { throw .unsupported }
            let size = Int(versionAndSize & 0x0FFF)
            guard size >= IPVSSync.entryLength, p + size <= bytes.count else { throw .badLength }
            try body(IPVSSyncEntry(parsing: bytes.wireSlice(p..<p + size)))
            p += (size + 3) & ~3
        }
    }
}

/// Builds one sync message in a caller's buffer without allocating:
/// header, then entries appended until the buffer (or nr_conns) is full.
public struct IPVSSyncWriter {
    public let bytes: UnsafeMutableRawBufferPointer
    /// Bytes written so far (header and entries, no trailing padding).
    public private(set) var length: Int
    public private(set) var count: Int

    /// Starts a message for `syncID` at the front of `bytes` (≥ 8 bytes).
    public init(into bytes: UnsafeMutableRawBufferPointer, syncID: UInt8) {
        precondition(bytes.count >= IPVSSync.headerLength, "buffer too small for an IPVS sync header")
        self.bytes = bytes
        typealias F = IPVSSync.Field
        bytes.wireSetU8(0, F.reserved)
        bytes.wireSetU8(syncID, F.syncID)
        bytes.wireSetU8(IPVSSync.version, F.version)
        bytes.wireSetU16(0, F.spare)
        length = IPVSSync.headerLength
        count = 0
        finish()
    }

    /// Whether an entry of `entryLength` bytes still fits.
    public func fits(_ entryLength: Int) -> Bool {
        count < IPVSSync.maximumEntries && ((length + 3) & ~3) + entryLength <= bytes.count
    }

    /// Appends `entry` (after zero padding to a 4-byte boundary); false,
    /// and nothing written, when it does not fit.
    public mutating func append(_ entry: IPVSSyncEntry) -> Bool {
        guard fits(entry.bufferLength) else { return false }
        while length & 3 != 0 {
            bytes.wireSetU8(0, length)
            length += 1
        }
        length += entry.emit(into: UnsafeMutableRawBufferPointer(rebasing: bytes[length...]))
        count += 1
        finish()
        return true
    }

    /// Keeps size and nr_conns in step with what was appended.
    mutating func finish() {
        bytes.wireSetU16(UInt16(length), IPVSSync.Field.size)
        bytes.wireSetU8(UInt8(count), IPVSSync.Field.count)
    }
}
