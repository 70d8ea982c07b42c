// Classic pcap files through libpcap, nanosecond timestamps, and the file
// side of pcapng (read a file, write bytes, merge per-link captures into
// one pcapng with a named interface per link).
//
// The pcapng format itself is in Wire/PcapNG.swift; libpcap's own pcapng
// writer is not used because it cannot name interfaces.

import CPcap
import Foundation
import Glibc
import Wire

/// A failed capture operation: what was being done (naming the libpcap
/// call), on which file or interface, and libpcap's (or the OS's) own text.
///
/// `description` reads like "opening /x/gw-eth1.pcap for writing
/// (pcap_dump_open): /x/gw-eth1.pcap: No such file or directory".
public struct PcapError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was being done, with the C call in parentheses.
    public var operation: String
    /// The file path, or for live captures the interface name.
    public var path: String
    /// libpcap's error text (`pcap_geterr`, the error buffer) or `strerror`.
    public var message: String

    public init(operation: String, path: String, message: String) {
        self.operation = operation
        self.path = path
        self.message = message
    }

    public var description: String { "\(operation) \(path): \(message)" }
}

/// libpcap's error buffer size (`PCAP_ERRBUF_SIZE`, 256).
let pcapErrorBufferSize = Int(PCAP_ERRBUF_SIZE)

/// Calls `body` with a zeroed libpcap error buffer and returns its result
/// together with the buffer's text.
func withPcapErrorBuffer<T>(_ body: (UnsafeMutablePointer<CChar>) -> T) -> (T, String) {
    var buffer = [CChar](repeating: 0, count: pcapErrorBufferSize + 1)
    let result = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    buffer[pcapErrorBufferSize] = 0
    let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return (result, text)
}

/// `pcap_geterr(handle)` as a String.
func pcapLastError(_ handle: OpaquePointer) -> String {
    guard let text = pcap_geterr(handle) else { return "unknown libpcap error" }
    return String(cString: text)
}

/// ns since the epoch from a pcap header's `ts`, whose second field holds
/// nanoseconds when the handle's precision is `PCAP_TSTAMP_PRECISION_NANO`
/// and microseconds otherwise. Times before 1970 become 0.
func pcapTimestamp(_ ts: timeval, nanosecondPrecision: Bool) -> UInt64 {
    let seconds = UInt64(max(0, ts.tv_sec))
    let fraction = UInt64(max(0, ts.tv_usec))
    return seconds &* 1_000_000_000 &+ (nanosecondPrecision ? fraction : fraction &* 1_000)
}

// MARK: - Writer

/// Writes a classic pcap file with nanosecond timestamps (magic 0xa1b23c4d)
/// through libpcap: `pcap_open_dead_with_tstamp_precision` + `pcap_dump_open`.
///
/// Not for concurrent use: one thread at a time (`@unchecked Sendable` only
/// so it can be handed to the thread that writes). `close()` (or deinit)
/// flushes and closes the file.
public final class PcapWriter: @unchecked Sendable {
    public let path: String
    /// The most bytes of a frame written; longer frames are cut (their
    /// original length is recorded).
    public let snapLength: Int
    /// The file's link type, a `DLT_` value (`DLT_EN10MB` for Ethernet).
    public let linkType: Int32
    private var handle: OpaquePointer?      // pcap_t, dead
    private var dumper: OpaquePointer?      // pcap_dumper_t
    /// Frames written so far.
    public private(set) var count = 0

    /// Creates (or truncates) the file at `path` and writes the pcap header.
    public init(path: String, snapLength: Int = Int(PcapDefaults.snapLength), linkType: Int32 = DLT_EN10MB) throws(PcapError) {
        self.path = path
        self.snapLength = max(1, min(snapLength, Int(Int32.max)))
        self.linkType = linkType
        guard let handle = pcap_open_dead_with_tstamp_precision(linkType, Int32(self.snapLength), UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
            throw PcapError(operation: "opening a pcap handle for writing (pcap_open_dead_with_tstamp_precision)", path: path, message: "out of memory")
        }
        guard let dumper = pcap_dump_open(handle, path) else {
            let message = pcapLastError(handle)
            pcap_close(handle)
            throw PcapError(operation: "opening for writing (pcap_dump_open)", path: path, message: message)
        }
        self.handle = handle
        self.dumper = dumper
    }

    deinit { try? close() }

    /// Appends one frame.
    /// - Parameters:
    ///   - frame: from the link-layer header on.
    ///   - timestamp: nanoseconds since the Unix epoch (stored as 32-bit
    ///     seconds + nanoseconds, so until 2106).
    ///   - originalLength: length on the wire; defaults to `frame.count`.
    public func write(_ frame: UnsafeRawBufferPointer, timestamp: UInt64, originalLength: Int? = nil) throws(PcapError) {
        guard let dumper else { throw closedError("writing (pcap_dump)") }
        let captured = min(frame.count, snapLength)
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(timestamp / 1_000_000_000)
        header.ts.tv_usec = Int(timestamp % 1_000_000_000)   // ns: the handle's precision is nano
        header.caplen = UInt32(captured)
        header.len = UInt32(clamping: max(originalLength ?? frame.count, frame.count))
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header,
                  frame.baseAddress?.assumingMemoryBound(to: UInt8.self))
        if let file = pcap_dump_file(dumper), ferror(file) != 0 {
            throw PcapError(operation: "writing (pcap_dump)", path: path, message: String(cString: strerror(errno)))
        }
        count += 1
    }

    public func write(_ frame: [UInt8], timestamp: UInt64, originalLength: Int? = nil) throws(PcapError) {
        var failure: PcapError?
        frame.withUnsafeBytes { bytes in
            do throws(PcapError) { try write(bytes, timestamp: timestamp, originalLength: originalLength) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Appends a record (pcap has no place for its comment).
    public func write(_ record: PcapRecord) throws(PcapError) {
        try write(record.bytes, timestamp: record.timestamp, originalLength: record.originalLength)
    }

    /// Pushes buffered frames to the file (`pcap_dump_flush`).
    public func flush() throws(PcapError) {
        guard let dumper else { throw closedError("flushing (pcap_dump_flush)") }
        if pcap_dump_flush(dumper) != 0 {
            throw PcapError(operation: "flushing (pcap_dump_flush)", path: path, message: String(cString: strerror(errno)))
        }
    }

    /// Flushes and closes the file; later calls do nothing. Throws if the
    /// final flush failed (the file is closed anyway).
    public func close() throws(PcapError) {
        guard let dumper, let handle else { return }
        self.dumper = nil
        self.handle = nil
        let flushed = pcap_dump_flush(dumper) == 0
        let error = errno
        pcap_dump_close(dumper)
        pcap_close(handle)
        if !flushed {
            throw PcapError(operation: "closing (pcap_dump_flush)", path: path, message: String(cString: strerror(error)))
        }
    }

    private func closedError(_ operation: String) -> PcapError {
        PcapError(operation: operation, path: path, message: "the writer is closed")
    }
}

// MARK: - Reader

/// Reads a capture file through libpcap with nanosecond timestamps
/// (`pcap_open_offline_with_tstamp_precision`, `PCAP_TSTAMP_PRECISION_NANO`):
/// classic pcap in either precision and byte order, and pcapng files whose
/// interfaces all share one link type (libpcap's limit; `PcapNGFile.read`
/// reads any pcapng and keeps interface names).
public final class PcapReader: Sequence, IteratorProtocol {
    public let path: String
    /// The file's link type, a `DLT_` value.
    public let linkType: Int32
    public let snapLength: Int
    private var handle: OpaquePointer?
    /// The error that ended iteration through `next()`, if any.
    public private(set) var iterationError: PcapError?

    public init(path: String) throws(PcapError) {
        self.path = path
        let (opened, text) = withPcapErrorBuffer { pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), $0) }
        guard let handle = opened else {
            throw PcapError(operation: "opening for reading (pcap_open_offline)", path: path, message: text)
        }
        self.handle = handle
        self.linkType = pcap_datalink(handle)
        self.snapLength = Int(pcap_snapshot(handle))
    }

    deinit { close() }

    /// The next record, nil at the end of the file; throws on a damaged
    /// file (e.g. truncated in the middle of a record).
    public func nextRecord() throws(PcapError) -> PcapRecord? {
        guard let handle else { return nil }
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            guard let header else { return nil }
            let h = header.pointee
            let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: Int(h.caplen))) } ?? []
            return PcapRecord(timestamp: pcapTimestamp(h.ts, nanosecondPrecision: true),
                              bytes: bytes, originalLength: Int(h.len))
        case PCAP_ERROR_BREAK:                     // -2: end of file
            return nil
        default:
            throw PcapError(operation: "reading a record (pcap_next_ex)", path: path, message: pcapLastError(handle))
        }
    }

    /// Sequence iteration; stops at the end of the file or at the first
    /// error, which is kept in `iterationError`.
    public func next() -> PcapRecord? {
        do { return try nextRecord() } catch {
            iterationError = error
            return nil
        }
    }

    /// Every remaining record.
    public func readAll() throws(PcapError) -> [PcapRecord] {
        var records: [PcapRecord] = []
        while let record = try nextRecord() { records.append(record) }
        return records
    }

    /// Reads a whole file.
    public static func readAll(path: String) throws(PcapError) -> [PcapRecord] {
        try PcapReader(path: path).readAll()
    }

    public func close() {
        if let handle { pcap_close(handle) }
        handle = nil
    }
}

// MARK: - pcapng files

/// Files in pcapng: read, write, and merge per-link captures.
public enum PcapNGFile {
    /// One link's capture file, for `merge`.
    public struct Source: Sendable {
        /// The interface name in the merged file, e.g. `"gw:eth1"`.
        public var name: String
        public var description: String?
        /// A capture file libpcap can read (classic pcap, usually written by
        /// `PcapWriter`).
        public var path: String

        public init(name: String, description: String? = nil, path: String) {
            self.name = name
            self.description = description
            self.path = path
        }
    }

    /// Writes `bytes` (from `PcapNGWriter`) to `path`, replacing it.
    public static func write(_ bytes: [UInt8], to path: String) throws(PcapError) {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw PcapError(operation: "writing pcapng", path: path, message: "\(error.localizedDescription)")
        }
    }

    /// Reads and parses a pcapng file. Throws `PcapError` if the file cannot
    /// be read, `PcapNGError` if it is not valid pcapng.
    public static func read(path: String) throws -> PcapNGCapture {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PcapError(operation: "reading pcapng", path: path, message: "\(error.localizedDescription)")
        }
        return try PcapNGCapture(parsing: [UInt8](data))
    }

    /// Reads each source's capture file and writes one pcapng to `path`:
    /// one interface per source, named `source.name`, in the order given;
    /// packets in timestamp order (see `PcapNGWriter.merge`). Only Ethernet
    /// captures can be merged.
    public static func merge(_ sources: [Source], to path: String, application: String? = "wirelab", comment: String? = nil) throws(PcapError) {
        var links: [PcapNGLink] = []
        for source in sources {
            let reader = try PcapReader(path: source.path)
            guard reader.linkType == DLT_EN10MB else {
                throw PcapError(operation: "merging into \(path)", path: source.path,
                                message: "link type \(reader.linkType) is not Ethernet (\(DLT_EN10MB))")
            }
            links.append(PcapNGLink(name: source.name, description: source.description,
                                    snapLength: UInt32(max(0, reader.snapLength)), records: try reader.readAll()))
        }
        try write(PcapNGWriter.merge(links, application: application, comment: comment), to: path)
    }
}
