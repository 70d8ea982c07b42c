// pcapng, the capture file format Wireshark opens natively
// (draft-ietf-opsawg-pcapng): a writer that produces bytes, a bounded reader,
// and a merge of per-link captures into one file with a named interface per
// link. Stdlib only: no file I/O here; LinuxNet (or anyone) writes the bytes.
//
// File layout written by `PcapNGWriter`, all little-endian:
//
//   SHB  Section Header Block       type 0x0A0D0D0A, byte-order magic, v1.0
//   IDB  Interface Description      type 1, one per link: linktype, snaplen,
//                                   if_name ("gw:eth1"), if_description,
//                                   if_tsresol = 9 (nanoseconds)
//   EPB  Enhanced Packet Block      type 6: interface id, 64-bit timestamp in
//                                   ns, captured/original length, data padded
//                                   to 32 bits, optional opt_comment
//
// Every block is `type(4) totalLength(4) body totalLength(4)` with the body
// padded to a multiple of 4; options are `code(2) length(2) value pad`, ended
// by opt_endofopt (0, 0).

/// Block type numbers (draft-ietf-opsawg-pcapng §11.1).
@usableFromInline enum PcapNGBlockType {
    static let sectionHeader: UInt32 = 0x0A0D_0D0A
    static let interfaceDescription: UInt32 = 0x0000_0001
    static let simplePacket: UInt32 = 0x0000_0003
    static let enhancedPacket: UInt32 = 0x0000_0006
}

/// Option codes used here (§11.2 and the per-block option tables).
@usableFromInline enum PcapNGOption {
    static let endOfOptions: UInt16 = 0
    static let comment: UInt16 = 1          // opt_comment, any block
    static let shbHardware: UInt16 = 2
    static let shbOS: UInt16 = 3
    static let shbUserApplication: UInt16 = 4
    static let ifName: UInt16 = 2
    static let ifDescription: UInt16 = 3
    static let ifTimestampResolution: UInt16 = 9
    static let ifTimestampOffset: UInt16 = 14
}

/// The Section Header Block's byte-order magic, as written by the writer.
let pcapNGByteOrderMagic: UInt32 = 0x1A2B_3C4D

// MARK: - Writer

/// Builds a pcapng capture in memory, little-endian, timestamps in
/// nanoseconds. The Section Header Block is written by `init`; interfaces can
/// be added at any time before the packets that use them.
///
/// ```swift
/// var w = PcapNGWriter()
/// let eth1 = w.addInterface(name: "gw:eth1", description: "gw ↔ sw")
/// w.writePacket(frame, interface: eth1, timestamp: ns, comment: "hop 2: gw routes")
/// let file: [UInt8] = w.bytes
/// ```
///
/// For long captures, `takeBytes()` hands over what has been produced so far
/// and empties the buffer, so the caller can append it to a file.
public struct PcapNGWriter: Sendable {
    /// A Interface Description Block written by this writer; its `rawValue`
    /// is the pcapng interface id (the IDB's index in the section).
    public struct InterfaceID: Hashable, Sendable {
        public let rawValue: UInt32
    }

    /// The bytes produced and not yet taken by `takeBytes()`.
    public private(set) var bytes: [UInt8] = []
    /// Snapshot length of every interface, indexed by interface id
    /// (0 = unlimited, as in the IDB).
    private var snapLengths: [UInt32] = []

    /// Number of interfaces added so far.
    public var interfaceCount: Int { snapLengths.count }

    /// Starts a section. The optional strings become `shb_hardware`,
    /// `shb_os`, `shb_userappl` and `opt_comment`; Wireshark shows them in
    /// Statistics ▸ Capture File Properties.
    public init(application: String? = "wirelab", hardware: String? = nil, os: String? = nil, comment: String? = nil) {
        var block = BlockBuilder(type: PcapNGBlockType.sectionHeader)
        block.u32(pcapNGByteOrderMagic)
        block.u16(1)                                 // major version
        block.u16(0)                                 // minor version
        block.u64(UInt64.max)                        // section length: -1, not specified
        block.option(PcapNGOption.comment, string: comment)
        block.option(PcapNGOption.shbHardware, string: hardware)
        block.option(PcapNGOption.shbOS, string: os)
        block.option(PcapNGOption.shbUserApplication, string: application)
        block.finish(into: &bytes)
    }

    /// Adds an Interface Description Block and returns its id.
    /// - Parameters:
    ///   - name: `if_name`, the name Wireshark shows (e.g. `"gw:eth1"`).
    ///     Empty means no name option.
    ///   - description: `if_description`, free text.
    ///   - snapLength: the most bytes of a frame kept; longer frames are cut
    ///     to this (their original length is kept). 0 means no limit.
    public mutating func addInterface(
        name: String, description: String? = nil,
        linkType: PcapLinkType = .ethernet, snapLength: UInt32 = PcapDefaults.snapLength
    ) -> InterfaceID {
        var block = BlockBuilder(type: PcapNGBlockType.interfaceDescription)
        block.u16(linkType.rawValue)
        block.u16(0)                                 // reserved
        block.u32(snapLength)
        block.option(PcapNGOption.ifName, string: name.isEmpty ? nil : name)
        block.option(PcapNGOption.ifDescription, string: description)
        block.option(PcapNGOption.ifTimestampResolution, value: [9])   // 10^-9 s
        block.finish(into: &bytes)
        snapLengths.append(snapLength)
        return InterfaceID(rawValue: UInt32(snapLengths.count - 1))
    }

    /// Appends an Enhanced Packet Block.
    /// - Parameters:
    ///   - frame: the frame from its link-layer header on; cut to the
    ///     interface's snapshot length if longer.
    ///   - interface: an id returned by *this* writer's `addInterface`
    ///     (a foreign id is a programming error and traps).
    ///   - timestamp: nanoseconds since the Unix epoch.
    ///   - originalLength: length on the wire; defaults to `frame.count`.
    ///   - comment: `opt_comment`, shown by Wireshark as a packet comment
    ///     (`frame.comment`). Longer than 65535 UTF-8 bytes is cut.
    public mutating func writePacket<Frame: Collection>(
        _ frame: Frame, interface: InterfaceID, timestamp: UInt64,
        originalLength: Int? = nil, comment: String? = nil
    ) where Frame.Element == UInt8 {
        let id = Int(interface.rawValue)
        precondition(id < snapLengths.count, "pcapng interface \(id) was not added to this writer")
        let snap = snapLengths[id]
        let frameCount = frame.count
        let captured = snap == 0 ? frameCount : min(frameCount, Int(snap))
        let wire = max(originalLength ?? frameCount, frameCount)

        var block = BlockBuilder(type: PcapNGBlockType.enhancedPacket)
        block.u32(interface.rawValue)
        block.u32(UInt32(truncatingIfNeeded: timestamp >> 32))
        block.u32(UInt32(truncatingIfNeeded: timestamp))
        block.u32(UInt32(clamping: captured))
        block.u32(UInt32(clamping: wire))
        block.data(frame.prefix(captured))
        block.option(PcapNGOption.comment, string: comment)
        block.finish(into: &bytes)
    }

    /// Appends a record (its comment included) on `interface`.
    public mutating func write(_ record: PcapRecord, interface: InterfaceID) {
        writePacket(record.bytes, interface: interface, timestamp: record.timestamp,
                    originalLength: record.originalLength, comment: record.comment)
    }

    /// Returns the bytes produced so far and empties the buffer; later blocks
    /// continue the same section, so appending every taken chunk to one file
    /// gives a valid capture.
    public mutating func takeBytes() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }
}

/// Accumulates one block's body; `finish` frames it with type and lengths.
private struct BlockBuilder {
    let type: UInt32
    var body: [UInt8] = []
    var hasOptions = false

    init(type: UInt32) { self.type = type }

    mutating func u16(_ v: UInt16) { body.append(UInt8(truncatingIfNeeded: v)); body.append(UInt8(truncatingIfNeeded: v >> 8)) }
    mutating func u32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { body.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
    mutating func u64(_ v: UInt64) { for s in stride(from: 0, to: 64, by: 8) { body.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) } }

    /// Appends bytes and zero padding to the next multiple of 4.
    mutating func data<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        body.append(contentsOf: bytes)
        pad()
    }

    mutating func pad() {
        while body.count % 4 != 0 { body.append(0) }
    }

    mutating func option(_ code: UInt16, value: [UInt8]) {
        let value = value.prefix(Int(UInt16.max))
        u16(code)
        u16(UInt16(value.count))
        data(value)
        hasOptions = true
    }

    /// A UTF-8 string option (no terminating NUL), cut at a scalar boundary
    /// to fit 65535 bytes; nil writes nothing.
    mutating func option(_ code: UInt16, string: String?) {
        guard let string else { return }
        var utf8 = Array(string.utf8)
        if utf8.count > Int(UInt16.max) {
            var end = Int(UInt16.max)
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }   // don't split a scalar
            utf8.removeSubrange(end...)
        }
        option(code, value: utf8)
    }

    /// Frames the body: type, total length, body (+ opt_endofopt if any
    /// option was written), total length again.
    func finish(into out: inout [UInt8]) {
        let total = UInt32(12 + body.count + (hasOptions ? 4 : 0))
        out.reserveCapacity(out.count + Int(total))
        appendLE(type, to: &out)
        appendLE(total, to: &out)
        out += body
        if hasOptions { out += [0, 0, 0, 0] }        // opt_endofopt
        appendLE(total, to: &out)
    }
}

private func appendLE(_ v: UInt32, to out: inout [UInt8]) {
    out.append(UInt8(truncatingIfNeeded: v))
    out.append(UInt8(truncatingIfNeeded: v >> 8))
    out.append(UInt8(truncatingIfNeeded: v >> 16))
    out.append(UInt8(truncatingIfNeeded: v >> 24))
}

// MARK: - Merge

/// One link's capture, for `PcapNGWriter.merge`.
public struct PcapNGLink: Sendable {
    /// The interface name shown by Wireshark, e.g. `"gw:eth1"`.
    public var name: String
    public var description: String?
    public var linkType: PcapLinkType
    public var snapLength: UInt32
    public var records: [PcapRecord]

    public init(name: String, description: String? = nil, linkType: PcapLinkType = .ethernet,
                snapLength: UInt32 = PcapDefaults.snapLength, records: [PcapRecord]) {
        self.name = name
        self.description = description
        self.linkType = linkType
        self.snapLength = snapLength
        self.records = records
    }
}

extension PcapNGWriter {
    /// One pcapng file from several per-link captures: one named interface
    /// per link (interface id = index in `links`), and every record as an
    /// Enhanced Packet Block in timestamp order. Ties keep the order of
    /// `links`, then of each link's records, so the output is deterministic.
    public static func merge(_ links: [PcapNGLink], application: String? = "wirelab", comment: String? = nil) -> [UInt8] {
        var writer = PcapNGWriter(application: application, comment: comment)
        let ids = links.map { writer.addInterface(name: $0.name, description: $0.description,
                                                  linkType: $0.linkType, snapLength: $0.snapLength) }
        var order: [(timestamp: UInt64, link: Int, index: Int)] = []
        order.reserveCapacity(links.reduce(0) { $0 + $1.records.count })
        for (l, link) in links.enumerated() {
            for (i, record) in link.records.enumerated() { order.append((record.timestamp, l, i)) }
        }
        order.sort { ($0.timestamp, $0.link, $0.index) < ($1.timestamp, $1.link, $1.index) }
        for entry in order {
            writer.write(links[entry.link].records[entry.index], interface: ids[entry.link])
        }
        return writer.takeBytes()
    }
}

// MARK: - Reader

/// What is wrong with pcapng input; every case says where (byte offset of
/// the block in the input).
public enum PcapNGError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ends inside a block: `needed` bytes from `offset`, only
    /// `available` left.
    case truncated(offset: Int, needed: Int, available: Int)
    /// A block's total length is < 12 (or < the block's minimum), not a
    /// multiple of 4, or its trailing copy differs.
    case badBlockLength(offset: Int, length: UInt32, reason: String)
    /// The input does not start with a Section Header Block.
    case notPcapNG(offset: Int, blockType: UInt32)
    /// The Section Header Block's byte-order magic is neither 0x1A2B3C4D nor
    /// its byte swap.
    case badByteOrderMagic(offset: Int, value: UInt32)
    /// Only major version 1 is defined.
    case unsupportedVersion(offset: Int, major: UInt16, minor: UInt16)
    /// A packet block names an interface its section did not describe.
    case unknownInterface(offset: Int, interfaceID: UInt32, known: Int)
    /// A block's fields or options do not fit its body, or values are out
    /// of range.
    case malformedBlock(offset: Int, blockType: UInt32, reason: String)

    public var description: String {
        switch self {
        case let .truncated(offset, needed, available):
            "pcapng truncated at byte \(offset): block needs \(needed) bytes, \(available) left"
        case let .badBlockLength(offset, length, reason):
            "pcapng block at byte \(offset) has bad total length \(length): \(reason)"
        case let .notPcapNG(offset, blockType):
            "not pcapng: block at byte \(offset) has type 0x\(String(blockType, radix: 16)), expected a Section Header Block (0x0a0d0d0a)"
        case let .badByteOrderMagic(offset, value):
            "pcapng section at byte \(offset) has byte-order magic 0x\(String(value, radix: 16)), expected 0x1a2b3c4d"
        case let .unsupportedVersion(offset, major, minor):
            "pcapng section at byte \(offset) has version \(major).\(minor), only 1.x is supported"
        case let .unknownInterface(offset, interfaceID, known):
            "pcapng packet block at byte \(offset) uses interface \(interfaceID), but its section describes \(known)"
        case let .malformedBlock(offset, blockType, reason):
            "pcapng block type 0x\(String(blockType, radix: 16)) at byte \(offset) is malformed: \(reason)"
        }
    }
}

/// The contents of a pcapng capture: sections, interfaces and packets, read
/// from bytes in either byte order.
///
/// Reads Section Header, Interface Description, Enhanced Packet and Simple
/// Packet Blocks; every other block type is skipped by its length (and
/// counted in `skippedBlocks`). Every length is checked against the input
/// before use, so malformed input throws `PcapNGError` and never traps;
/// memory use is bounded by the input size.
public struct PcapNGCapture: Equatable, Sendable {
    public enum ByteOrder: Equatable, Sendable { case littleEndian, bigEndian }

    public struct Section: Equatable, Sendable {
        public var byteOrder: ByteOrder
        public var majorVersion: UInt16
        public var minorVersion: UInt16
        public var hardware: String?
        public var os: String?
        public var application: String?
        public var comments: [String]
    }

    public struct Interface: Equatable, Sendable {
        /// Index into `sections`.
        public var section: Int
        /// The id packet blocks in that section use for this interface.
        public var idInSection: UInt32
        public var linkType: PcapLinkType
        /// 0 means no limit.
        public var snapLength: UInt32
        public var name: String?
        public var description: String?
        /// The raw `if_tsresol` byte: high bit clear = 10^-n s, set = 2^-n s.
        /// 6 (microseconds) if the option is absent.
        public var timestampResolution: UInt8
        /// `if_tsoffset`, seconds added to every timestamp (0 if absent).
        public var timestampOffset: Int64
        public var comments: [String]
    }

    public struct Packet: Equatable, Sendable {
        /// Index into `interfaces` (across all sections).
        public var interface: Int
        /// Nanoseconds since the Unix epoch; nil for Simple Packet Blocks,
        /// which carry no timestamp.
        public var timestamp: UInt64?
        public var bytes: [UInt8]
        public var originalLength: Int
        public var comments: [String]

        /// As a `PcapRecord` (timestamp 0 if there is none; comments joined
        /// with newlines).
        public var record: PcapRecord {
            PcapRecord(timestamp: timestamp ?? 0, bytes: bytes, originalLength: originalLength,
                       comment: comments.isEmpty ? nil : comments.joined(separator: "\n"))
        }
    }

    public var sections: [Section] = []
    public var interfaces: [Interface] = []
    public var packets: [Packet] = []
    /// Blocks of types this reader does not interpret (statistics, name
    /// resolution, decryption secrets, custom…), skipped.
    public var skippedBlocks = 0

    /// Parses a whole capture.
    public init(parsing input: [UInt8]) throws(PcapNGError) {
        var offset = 0
        var firstInterfaceOfSection = 0
        var order = ByteOrder.littleEndian
        while offset < input.count {
            let available = input.count - offset
            guard available >= 12 else { throw .truncated(offset: offset, needed: 12, available: available) }
            let raw = Bytes(input: input, order: .littleEndian)
            let rawType = try raw.u32(offset)
            if rawType == PcapNGBlockType.sectionHeader {
                // The SHB's type is a palindrome; its magic gives the byte order.
                let magic = try raw.u32(offset + 8)
                switch magic {
                case pcapNGByteOrderMagic: order = .littleEndian
                case pcapNGByteOrderMagic.byteSwapped: order = .bigEndian
                default: throw .badByteOrderMagic(offset: offset, value: magic)
                }
            } else if sections.isEmpty {
                throw .notPcapNG(offset: offset, blockType: rawType)
            }
            let r = Bytes(input: input, order: order)
            let type = try r.u32(offset)
            let length = try r.u32(offset + 4)
            guard length >= 12 else { throw .badBlockLength(offset: offset, length: length, reason: "shorter than 12 bytes") }
            guard length % 4 == 0 else { throw .badBlockLength(offset: offset, length: length, reason: "not a multiple of 4") }
            guard Int(length) <= available else { throw .truncated(offset: offset, needed: Int(length), available: available) }
            let trailer = try r.u32(offset + Int(length) - 4)
            guard trailer == length else {
                throw .badBlockLength(offset: offset, length: length, reason: "trailing copy says \(trailer)")
            }
            let body = (offset + 8)..<(offset + Int(length) - 4)
            let block = BlockReader(bytes: r, offset: offset, type: type, body: body)

            switch type {
            case PcapNGBlockType.sectionHeader:
                sections.append(try block.sectionHeader(order: order))
                firstInterfaceOfSection = interfaces.count
            case PcapNGBlockType.interfaceDescription:
                let idInSection = UInt32(interfaces.count - firstInterfaceOfSection)
                interfaces.append(try block.interfaceDescription(section: sections.count - 1, id: idInSection))
            case PcapNGBlockType.enhancedPacket:
                packets.append(try block.enhancedPacket(interfaces: interfaces, firstOfSection: firstInterfaceOfSection))
            case PcapNGBlockType.simplePacket:
                packets.append(try block.simplePacket(interfaces: interfaces, firstOfSection: firstInterfaceOfSection))
            default:
                skippedBlocks += 1
            }
            offset += Int(length)
        }
        guard !sections.isEmpty else { throw .truncated(offset: 0, needed: 28, available: 0) }
    }

    /// The packets of the interface at `index` in `interfaces`, as records.
    public func records(ofInterface index: Int) -> [PcapRecord] {
        packets.filter { $0.interface == index }.map(\.record)
    }
}

/// Bounds-checked integer reads at absolute offsets in one byte order.
private struct Bytes {
    let input: [UInt8]
    let order: PcapNGCapture.ByteOrder

    func check(_ offset: Int, _ count: Int) throws(PcapNGError) {
        guard offset >= 0, count >= 0, offset <= input.count, count <= input.count - offset else {
            throw .truncated(offset: offset, needed: count, available: max(0, input.count - max(offset, 0)))
        }
    }

    func u8(_ offset: Int) throws(PcapNGError) -> UInt8 {
        try check(offset, 1)
        return input[offset]
    }

    func uint<T: FixedWidthInteger & UnsignedInteger>(_ offset: Int, as _: T.Type) throws(PcapNGError) -> T {
        let size = MemoryLayout<T>.size
        try check(offset, size)
        var value: T = 0
        for i in 0..<size {
            let byte = T(input[offset + (order == .littleEndian ? size - 1 - i : i)])
            value = value << 8 | byte
        }
        return value
    }

    func u16(_ offset: Int) throws(PcapNGError) -> UInt16 { try uint(offset, as: UInt16.self) }
    func u32(_ offset: Int) throws(PcapNGError) -> UInt32 { try uint(offset, as: UInt32.self) }
    func u64(_ offset: Int) throws(PcapNGError) -> UInt64 { try uint(offset, as: UInt64.self) }
}

/// One block whose framing (lengths, trailer) has been checked; reads its
/// fixed fields and options, all within `body`.
private struct BlockReader {
    let bytes: Bytes
    let offset: Int
    let type: UInt32
    let body: Range<Int>

    func malformed(_ reason: String) -> PcapNGError { .malformedBlock(offset: offset, blockType: type, reason: reason) }

    func requireBody(_ count: Int, _ what: String) throws(PcapNGError) {
        guard body.count >= count else {
            throw .badBlockLength(offset: offset, length: UInt32(body.count + 12),
                                  reason: "\(what) needs at least \(count + 12) bytes")
        }
    }

    /// Options from `start` to the end of the body: (code, value range).
    func options(from start: Int) throws(PcapNGError) -> [(code: UInt16, value: Range<Int>)] {
        var result: [(code: UInt16, value: Range<Int>)] = []
        var at = start
        while at < body.upperBound {
            guard body.upperBound - at >= 4 else { throw malformed("option header at byte \(at) runs past the block") }
            let code = try bytes.u16(at)
            let length = Int(try bytes.u16(at + 2))
            if code == PcapNGOption.endOfOptions { break }
            let padded = (length + 3) & ~3
            guard padded <= body.upperBound - at - 4 else {
                throw malformed("option \(code) at byte \(at) with length \(length) runs past the block")
            }
            result.append((code, (at + 4)..<(at + 4 + length)))
            at += 4 + padded
        }
        return result
    }

    func string(_ range: Range<Int>) -> String {
        var slice = bytes.input[range]
        while slice.last == 0 { slice.removeLast() }   // some writers add a NUL
        return String(decoding: slice, as: UTF8.self)
    }

    func sectionHeader(order: PcapNGCapture.ByteOrder) throws(PcapNGError) -> PcapNGCapture.Section {
        try requireBody(16, "a Section Header Block")
        let major = try bytes.u16(body.lowerBound + 4)
        let minor = try bytes.u16(body.lowerBound + 6)
        guard major == 1 else { throw .unsupportedVersion(offset: offset, major: major, minor: minor) }
        var section = PcapNGCapture.Section(byteOrder: order, majorVersion: major, minorVersion: minor,
                                            hardware: nil, os: nil, application: nil, comments: [])
        for option in try options(from: body.lowerBound + 16) {
            switch option.code {
            case PcapNGOption.comment: section.comments.append(string(option.value))
            case PcapNGOption.shbHardware: section.hardware = string(option.value)
            case PcapNGOption.shbOS: section.os = string(option.value)
            case PcapNGOption.shbUserApplication: section.application = string(option.value)
            default: break
            }
        }
        return section
    }

    func interfaceDescription(section: Int, id: UInt32) throws(PcapNGError) -> PcapNGCapture.Interface {
        try requireBody(8, "an Interface Description Block")
        var interface = PcapNGCapture.Interface(
            section: section, idInSection: id,
            linkType: PcapLinkType(rawValue: try bytes.u16(body.lowerBound)),
            snapLength: try bytes.u32(body.lowerBound + 4),
            name: nil, description: nil, timestampResolution: 6, timestampOffset: 0, comments: [])
        for option in try options(from: body.lowerBound + 8) {
            switch option.code {
            case PcapNGOption.comment: interface.comments.append(string(option.value))
            case PcapNGOption.ifName: interface.name = string(option.value)
            case PcapNGOption.ifDescription: interface.description = string(option.value)
            case PcapNGOption.ifTimestampResolution:
                guard option.value.count == 1 else { throw malformed("if_tsresol has length \(option.value.count), expected 1") }
                interface.timestampResolution = try bytes.u8(option.value.lowerBound)
            case PcapNGOption.ifTimestampOffset:
                guard option.value.count == 8 else { throw malformed("if_tsoffset has length \(option.value.count), expected 8") }
                interface.timestampOffset = Int64(bitPattern: try bytes.u64(option.value.lowerBound))
            default: break
            }
        }
        return interface
    }

    func interface(_ id: UInt32, _ interfaces: [PcapNGCapture.Interface], firstOfSection: Int) throws(PcapNGError) -> Int {
        let known = interfaces.count - firstOfSection
        guard Int(id) < known else { throw .unknownInterface(offset: offset, interfaceID: id, known: known) }
        return firstOfSection + Int(id)
    }

    func enhancedPacket(interfaces: [PcapNGCapture.Interface], firstOfSection: Int) throws(PcapNGError) -> PcapNGCapture.Packet {
        try requireBody(20, "an Enhanced Packet Block")
        let start = body.lowerBound
        let index = try interface(try bytes.u32(start), interfaces, firstOfSection: firstOfSection)
        let units = UInt64(try bytes.u32(start + 4)) << 32 | UInt64(try bytes.u32(start + 8))
        let captured = Int(try bytes.u32(start + 12))
        let original = Int(try bytes.u32(start + 16))
        let dataStart = start + 20
        guard captured <= body.upperBound - dataStart else {
            throw malformed("captured length \(captured) exceeds the block's \(body.upperBound - dataStart) data bytes")
        }
        let padded = min((captured + 3) & ~3, body.upperBound - dataStart)
        let comments = try options(from: dataStart + padded)
            .filter { $0.code == PcapNGOption.comment }.map { string($0.value) }
        let ns = try nanoseconds(units, interfaces[index])
        return PcapNGCapture.Packet(interface: index, timestamp: ns,
                                    bytes: Array(bytes.input[dataStart..<(dataStart + captured)]),
                                    originalLength: max(original, captured), comments: comments)
    }

    func simplePacket(interfaces: [PcapNGCapture.Interface], firstOfSection: Int) throws(PcapNGError) -> PcapNGCapture.Packet {
        try requireBody(4, "a Simple Packet Block")
        let index = try interface(0, interfaces, firstOfSection: firstOfSection)
        let original = Int(try bytes.u32(body.lowerBound))
        let dataStart = body.lowerBound + 4
        // Captured length is implied: min(original length, snaplen of
        // interface 0), and must fit the block.
        let snap = Int(interfaces[index].snapLength)
        let captured = snap == 0 ? original : min(original, snap)
        guard captured <= body.upperBound - dataStart else {
            throw malformed("packet of \(captured) bytes exceeds the block's \(body.upperBound - dataStart) data bytes")
        }
        return PcapNGCapture.Packet(interface: index, timestamp: nil,
                                    bytes: Array(bytes.input[dataStart..<(dataStart + captured)]),
                                    originalLength: original, comments: [])
    }

    /// Converts a timestamp in the interface's units to ns since the epoch.
    func nanoseconds(_ units: UInt64, _ interface: PcapNGCapture.Interface) throws(PcapNGError) -> UInt64 {
        let resolution = interface.timestampResolution
        let exponent = Int(resolution & 0x7F)
        var ns: UInt64
        if resolution & 0x80 == 0 {
            // 10^-exponent seconds per unit.
            if exponent <= 9 {
                let (value, overflow) = units.multipliedReportingOverflow(by: power10(9 - exponent))
                guard !overflow else { throw malformed("timestamp \(units) at 10^-\(exponent) s overflows nanoseconds") }
                ns = value
            } else {
                ns = exponent - 9 > 19 ? 0 : units / power10(exponent - 9)
            }
        } else {
            // 2^-exponent seconds per unit: units * 1e9 / 2^exponent, in 128 bits.
            let (high, low) = units.multipliedFullWidth(by: 1_000_000_000)
            if exponent == 0 {
                guard high == 0 else { throw malformed("timestamp \(units) s overflows nanoseconds") }
                ns = low
            } else if exponent < 64 {
                guard high >> UInt64(exponent) == 0 else { throw malformed("timestamp \(units) at 2^-\(exponent) s overflows nanoseconds") }
                ns = (low >> UInt64(exponent)) | (high << UInt64(64 - exponent))
            } else {
                ns = exponent - 64 >= 64 ? 0 : high >> UInt64(exponent - 64)
            }
        }
        if interface.timestampOffset != 0 {
            let (shift, overflow) = interface.timestampOffset.multipliedReportingOverflow(by: 1_000_000_000)
            guard !overflow else { throw malformed("if_tsoffset \(interface.timestampOffset) s overflows nanoseconds") }
            if shift >= 0 {
                let (sum, o) = ns.addingReportingOverflow(UInt64(shift))
                guard !o else { throw malformed("timestamp plus if_tsoffset overflows") }
                ns = sum
            } else {
                guard UInt64(shift.magnitude) <= ns else { throw malformed("timestamp plus if_tsoffset is before 1970") }
                ns -= UInt64(shift.magnitude)
            }
        }
        return ns
    }

    func power10(_ n: Int) -> UInt64 {
        var p: UInt64 = 1
        for _ in 0..<n { p *= 10 }
        return p
    }
}
