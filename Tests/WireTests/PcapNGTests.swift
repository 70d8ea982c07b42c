import Foundation
import Testing
@testable import Wire

/// An Ethernet + IPv4 + UDP frame with recognisable fields, `payload` bytes
/// of 0x5a after the UDP header.
private func testFrame(src: MACAddress, dst: MACAddress, srcIP: IPv4Address, dstIP: IPv4Address, payload: Int = 18) -> [UInt8] {
    var f: [UInt8] = []
    for i in 0..<6 { f.append(dst[i]) }
    for i in 0..<6 { f.append(src[i]) }
    f += [0x08, 0x00]
    let ipLength = 20 + 8 + payload
    var ip: [UInt8] = [0x45, 0x00, UInt8(ipLength >> 8), UInt8(ipLength & 0xff), 0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]
    for i in 0..<4 { ip.append(srcIP[i]) }
    for i in 0..<4 { ip.append(dstIP[i]) }
    var sum: UInt32 = 0
    for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    let checksum = ~UInt16(sum)
    ip[10] = UInt8(checksum >> 8)
    ip[11] = UInt8(checksum & 0xff)
    f += ip
    let udpLength = 8 + payload
    f += [0x30, 0x39, 0x00, 0x50, UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]   // 12345 → 80, no checksum
    f += [UInt8](repeating: 0x5a, count: payload)
    return f
}

/// Runs a program and returns its standard output (stderr is discarded:
/// tshark warns about running as root).
private func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-pcapng-\(UUID().uuidString)-\(name)").path
}

private let tsharkPath = "/usr/bin/tshark"
private let tsharkInstalled = FileManager.default.isExecutableFile(atPath: tsharkPath)

@Suite struct PcapNGTests {
    let gw = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    let lvs = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    let rs1 = MACAddress(0x02, 0, 0, 0, 0, 0x03)
    let client = IPv4Address(123, 123, 123, 123)
    let vip = IPv4Address(10, 0, 0, 100)

    /// Three links, one added after packets were written, one with a small
    /// snapshot length; comments on some packets.
    func sampleCapture() -> (bytes: [UInt8], frames: [[UInt8]]) {
        var w = PcapNGWriter(application: "wirelab tests", os: "Linux")
        let gwEth1 = w.addInterface(name: "gw:eth1", description: "gw ↔ sw")
        let swP2 = w.addInterface(name: "sw:p2", snapLength: 40)
        let f0 = testFrame(src: gw, dst: lvs, srcIP: client, dstIP: vip)
        let f1 = testFrame(src: gw, dst: lvs, srcIP: client, dstIP: vip, payload: 60)
        let f2 = testFrame(src: lvs, dst: rs1, srcIP: client, dstIP: vip, payload: 1)
        w.writePacket(f0, interface: gwEth1, timestamp: 1_700_000_000_123_456_789, comment: "hop 1: gw routes to the VIP")
        w.writePacket(f1, interface: swP2, timestamp: 1_700_000_000_123_456_790)
        let rsEth0 = w.addInterface(name: "rs1:eth0")
        w.writePacket(f2, interface: rsEth0, timestamp: 1_700_000_001_000_000_001, comment: "hop 3: DR, MACs only ✓")
        return (w.bytes, [f0, f1, f2])
    }

    // MARK: construct (exact bytes)

    @Test func emitsExactBlocks() {
        var w = PcapNGWriter(application: nil)
        let a = w.addInterface(name: "a", snapLength: 0x100)
        w.writePacket([1, 2, 3, 4, 5], interface: a, timestamp: 0x0000_0001_0000_0002, originalLength: 60)
        let expected: [UInt8] = [
            // SHB: type, length 28, byte-order magic, version 1.0, section length -1, length
            0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 28, 0, 0, 0,
            // IDB: type 1, length 40, linktype 1, reserved, snaplen 256,
            1, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0,
            //   if_name(2) len 1 "a" pad, if_tsresol(9) len 1 = 9 pad, opt_endofopt, length
            2, 0, 1, 0, 0x61, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0,
            // EPB: type 6, length 40, interface 0, ts high 1, ts low 2, caplen 5, len 60,
            6, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 60, 0, 0, 0,
            //   data padded to 8, no options, length
            1, 2, 3, 4, 5, 0, 0, 0, 40, 0, 0, 0,
        ]
        #expect(w.bytes == expected)
    }

    @Test func blocksAreAlignedAndCommentsPadded() throws {
        var w = PcapNGWriter()
        let i = w.addInterface(name: "x:eth0")
        for n in 0..<8 {
            w.writePacket([UInt8](repeating: 0xa5, count: 14 + n), interface: i, timestamp: UInt64(n),
                          comment: String(repeating: "c", count: n))
        }
        #expect(w.bytes.count % 4 == 0)
        let capture = try PcapNGCapture(parsing: w.bytes)
        #expect(capture.packets.count == 8)
        for (n, packet) in capture.packets.enumerated() {
            #expect(packet.bytes.count == 14 + n)
            #expect(packet.comments == [String(repeating: "c", count: n)])
        }
    }

    @Test func takeBytesStreamsOneValidFile() throws {
        var w = PcapNGWriter()
        let a = w.addInterface(name: "a:eth0")
        var file = w.takeBytes()
        #expect(w.bytes.isEmpty)
        w.writePacket([1, 2, 3], interface: a, timestamp: 5)
        let b = w.addInterface(name: "b:eth0")
        w.writePacket([4, 5, 6], interface: b, timestamp: 6)
        file += w.takeBytes()
        let capture = try PcapNGCapture(parsing: file)
        #expect(capture.interfaces.map(\.name) == ["a:eth0", "b:eth0"])
        #expect(capture.packets.map(\.interface) == [0, 1])
    }

    @Test func longCommentsAreCutAtAScalarBoundary() throws {
        var w = PcapNGWriter()
        let a = w.addInterface(name: "a")
        let long = String(repeating: "é", count: 40_000)   // 80000 UTF-8 bytes
        w.writePacket([0], interface: a, timestamp: 0, comment: long)
        let comment = try #require(try PcapNGCapture(parsing: w.bytes).packets.first?.comments.first)
        #expect(comment.utf8.count == 65534)
        #expect(comment == String(repeating: "é", count: 32767))
    }

    // MARK: parse (round trip)

    @Test func roundTripsThroughTheReader() throws {
        let (bytes, frames) = sampleCapture()
        let capture = try PcapNGCapture(parsing: bytes)
        #expect(capture.sections.count == 1)
        #expect(capture.sections[0].byteOrder == .littleEndian)
        #expect(capture.sections[0].application == "wirelab tests")
        #expect(capture.sections[0].os == "Linux")
        #expect(capture.interfaces.map(\.name) == ["gw:eth1", "sw:p2", "rs1:eth0"])
        #expect(capture.interfaces.map(\.description) == ["gw ↔ sw", nil, nil])
        #expect(capture.interfaces.allSatisfy { $0.timestampResolution == 9 && $0.linkType == .ethernet })
        #expect(capture.interfaces.map(\.snapLength) == [PcapDefaults.snapLength, 40, PcapDefaults.snapLength])
        #expect(capture.packets.map(\.interface) == [0, 1, 2])
        #expect(capture.packets.map(\.timestamp) == [1_700_000_000_123_456_789, 1_700_000_000_123_456_790, 1_700_000_001_000_000_001])
        #expect(capture.packets[0].bytes == frames[0])
        #expect(capture.packets[1].bytes == Array(frames[1].prefix(40)))
        #expect(capture.packets[1].originalLength == frames[1].count)
        #expect(capture.packets[2].bytes == frames[2])
        #expect(capture.packets.map(\.comments) == [["hop 1: gw routes to the VIP"], [], ["hop 3: DR, MACs only ✓"]])
        #expect(capture.skippedBlocks == 0)
    }

    @Test func readsBigEndianSections() throws {
        // The same blocks as `emitsExactBlocks`, written big-endian by hand.
        let bytes: [UInt8] = [
            0x0A, 0x0D, 0x0D, 0x0A, 0, 0, 0, 28, 0x1A, 0x2B, 0x3C, 0x4D, 0, 1, 0, 0,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 28,
            0, 0, 0, 1, 0, 0, 0, 40, 0, 1, 0, 0, 0, 0, 1, 0,
            0, 2, 0, 1, 0x61, 0, 0, 0, 0, 9, 0, 1, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40,
            0, 0, 0, 6, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 60,
            1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 40,
        ]
        let capture = try PcapNGCapture(parsing: bytes)
        #expect(capture.sections.first?.byteOrder == .bigEndian)
        #expect(capture.interfaces.first?.name == "a")
        #expect(capture.interfaces.first?.snapLength == 256)
        #expect(capture.packets.first?.timestamp == 0x0000_0001_0000_0002)
        #expect(capture.packets.first?.bytes == [1, 2, 3, 4, 5])
        #expect(capture.packets.first?.originalLength == 60)
    }

    @Test func skipsUnknownBlocksAndReadsSimplePackets() throws {
        var bytes = PcapNGWriter(application: nil).bytes
        // IDB without options: default resolution (µs), snaplen 4.
        bytes += le32(1) + le32(20) + [1, 0, 0, 0] + le32(4) + le32(20)
        // An Interface Statistics Block (5) and a custom block: skipped.
        bytes += le32(5) + le32(24) + le32(0) + le32(0) + le32(0) + le32(24)
        bytes += le32(0x0000_0BAD) + le32(16) + le32(0xdead_beef) + le32(16)
        // SPB: original length 6, captured min(6, snaplen 4) = 4.
        bytes += le32(3) + le32(20) + le32(6) + [9, 8, 7, 6] + le32(20)
        // EPB at µs resolution: 1.5 s.
        bytes += le32(6) + le32(36) + le32(0) + le32(0) + le32(1_500_000) + le32(3) + le32(3) + [1, 2, 3, 0] + le32(36)
        let capture = try PcapNGCapture(parsing: bytes)
        #expect(capture.skippedBlocks == 2)
        #expect(capture.interfaces.first?.timestampResolution == 6)
        #expect(capture.packets.count == 2)
        #expect(capture.packets[0].timestamp == nil)
        #expect(capture.packets[0].bytes == [9, 8, 7, 6])
        #expect(capture.packets[0].originalLength == 6)
        #expect(capture.packets[1].timestamp == 1_500_000_000)
        #expect(capture.packets[1].bytes == [1, 2, 3])
    }

    @Test(arguments: [
        // (if_tsresol, units, if_tsoffset s, expected ns)
        (UInt8(9), UInt64(1_234_567_890_123), Int64(0), UInt64(1_234_567_890_123)),
        (6, 1_000_001, 0, 1_000_001_000),
        (3, 2_500, 0, 2_500_000_000),
        (0, 7, 0, 7_000_000_000),
        (12, 1_000_000_000_007, 0, 1_000_000_000),          // picoseconds, cut to ns
        (0x80 | 10, 1024 * 3 + 512, 0, 3_500_000_000),      // 2^-10 s
        (0x80 | 30, 1 << 30, 0, 1_000_000_000),
        (0x80 | 0, 2, 0, 2_000_000_000),
        (9, 5, 1_000, 1_000_000_000_005),                    // if_tsoffset
        (9, 3_000_000_000, -2, 1_000_000_000),
    ] as [(UInt8, UInt64, Int64, UInt64)])
    func convertsTimestampResolutions(resolution: UInt8, units: UInt64, offset: Int64, expected: UInt64) throws {
        var bytes = PcapNGWriter(application: nil).bytes
        var options = le16(9) + le16(1) + [resolution, 0, 0, 0]
        if offset != 0 { options += le16(14) + le16(8) + le64(UInt64(bitPattern: offset)) }
        options += le32(0)
        bytes += le32(1) + le32(UInt32(20 + options.count)) + [1, 0, 0, 0] + le32(0) + options + le32(UInt32(20 + options.count))
        bytes += le32(6) + le32(32) + le32(0) + le32(UInt32(units >> 32)) + le32(UInt32(units & 0xffff_ffff)) + le32(0) + le32(0) + le32(32)
        #expect(try PcapNGCapture(parsing: bytes).packets.first?.timestamp == expected)
    }

    @Test func keepsInterfacesOfLaterSectionsApart() throws {
        var first = PcapNGWriter(application: "one")
        let a = first.addInterface(name: "a")
        first.writePacket([1], interface: a, timestamp: 1)
        var second = PcapNGWriter(application: "two")
        let b = second.addInterface(name: "b")
        second.writePacket([2], interface: b, timestamp: 2)
        let capture = try PcapNGCapture(parsing: first.bytes + second.bytes)
        #expect(capture.sections.map(\.application) == ["one", "two"])
        #expect(capture.interfaces.map(\.name) == ["a", "b"])
        #expect(capture.interfaces.map(\.idInSection) == [0, 0])
        #expect(capture.packets.map(\.interface) == [0, 1])
    }

    // MARK: merge

    @Test func mergeOrdersByTimestampWithOneInterfacePerLink() throws {
        let links = [
            PcapNGLink(name: "client:eth0", records: [
                PcapRecord(timestamp: 10, bytes: [0xa0]), PcapRecord(timestamp: 30, bytes: [0xa1]),
            ]),
            PcapNGLink(name: "gw:eth1", description: "gw ↔ sw", records: [
                PcapRecord(timestamp: 20, bytes: [0xb0], comment: "routed"), PcapRecord(timestamp: 30, bytes: [0xb1]),
            ]),
            PcapNGLink(name: "empty:eth0", records: []),
        ]
        let capture = try PcapNGCapture(parsing: PcapNGWriter.merge(links))
        #expect(capture.interfaces.map(\.name) == ["client:eth0", "gw:eth1", "empty:eth0"])
        #expect(capture.interfaces[1].description == "gw ↔ sw")
        #expect(capture.packets.map(\.bytes) == [[0xa0], [0xb0], [0xa1], [0xb1]])   // tie at 30: link order
        #expect(capture.packets.map(\.interface) == [0, 1, 0, 1])
        #expect(capture.packets[1].comments == ["routed"])
        #expect(capture.records(ofInterface: 1) == links[1].records)
    }

    // MARK: Wireshark agrees

    @Test(.enabled(if: tsharkInstalled, "tshark not installed"))
    func tsharkReadsNamesTimestampsAndBytes() throws {
        let (bytes, frames) = sampleCapture()
        let path = temporaryPath("sample.pcapng")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        let fields = ["frame.interface_id", "frame.interface_name", "frame.interface_description", "frame.time_epoch",
                      "frame.len", "frame.cap_len", "eth.src", "eth.dst", "ip.src", "ip.dst", "frame.comment"]
        let (status, output) = try runTool(tsharkPath, ["-r", path, "-T", "fields", "-E", "separator=|"] + fields.flatMap { ["-e", $0] })
        #expect(status == 0)
        let rows = output.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
        try #require(rows.count == 3, "tshark printed: \(output)")
        #expect(rows[0] == ["0", "gw:eth1", "gw ↔ sw", "1700000000.123456789", "\(frames[0].count)", "\(frames[0].count)",
                            "02:00:00:00:00:01", "02:00:00:00:00:02", "123.123.123.123", "10.0.0.100", "hop 1: gw routes to the VIP"])
        #expect(rows[1] == ["1", "sw:p2", "", "1700000000.123456790", "\(frames[1].count)", "40",
                            "02:00:00:00:00:01", "02:00:00:00:00:02", "123.123.123.123", "10.0.0.100", ""])
        #expect(rows[2] == ["2", "rs1:eth0", "", "1700000001.000000001", "\(frames[2].count)", "\(frames[2].count)",
                            "02:00:00:00:00:02", "02:00:00:00:00:03", "123.123.123.123", "10.0.0.100", "hop 3: DR, MACs only ✓"])

        // Every byte as Wireshark sees it: the hex dump of frame 3.
        let (_, dump) = try runTool(tsharkPath, ["-r", path, "-Y", "frame.number == 3", "-x"])
        #expect(hexDumpBytes(dump) == frames[2])
    }

    // MARK: malformed input never traps

    @Test func everyPrefixParsesOrThrows() throws {
        let (bytes, _) = sampleCapture()
        var boundaries = 0
        for cut in 0..<bytes.count {
            do {
                _ = try PcapNGCapture(parsing: Array(bytes.prefix(cut)))
                boundaries += 1                     // a cut between two blocks
            } catch {
                // expected for every cut inside a block
            }
        }
        #expect(boundaries == 6)                    // after SHB, IDB, IDB, EPB, EPB, IDB (not 0 bytes)
    }

    @Test func rejectsTruncatedBlock() {
        let (bytes, _) = sampleCapture()
        let cut = Array(bytes.dropLast(3))
        #expect(throws: PcapNGError.self) { try PcapNGCapture(parsing: cut) }
        do throws(PcapNGError) {
            _ = try PcapNGCapture(parsing: cut)
        } catch {
            guard case .truncated = error else { Issue.record("expected .truncated, got \(error)"); return }
        }
    }

    @Test func rejectsBlockLengthNotMultipleOfFour() {
        var bytes = PcapNGWriter(application: nil).bytes
        bytes += le32(0x0BAD) + le32(14) + [0, 0] + le32(14)
        #expect(throws: PcapNGError.badBlockLength(offset: 28, length: 14, reason: "not a multiple of 4")) {
            try PcapNGCapture(parsing: bytes)
        }
    }

    @Test func rejectsHugeAndTinyLengths() {
        let shb = PcapNGWriter(application: nil).bytes
        #expect(throws: PcapNGError.truncated(offset: 28, needed: 0xFFFF_FFF0, available: 16)) {
            try PcapNGCapture(parsing: shb + le32(6) + le32(0xFFFF_FFF0) + le32(0) + le32(0))
        }
        #expect(throws: PcapNGError.badBlockLength(offset: 28, length: 8, reason: "shorter than 12 bytes")) {
            try PcapNGCapture(parsing: shb + le32(6) + le32(8) + le32(8))
        }
        // An SHB whose own length is huge.
        var hugeSHB = shb
        hugeSHB.replaceSubrange(4..<8, with: le32(0x7FFF_FFFC))
        #expect(throws: PcapNGError.self) { try PcapNGCapture(parsing: hugeSHB) }
        // Captured length larger than the block.
        var w = PcapNGWriter(application: nil)
        let a = w.addInterface(name: "a")
        w.writePacket([1, 2, 3, 4], interface: a, timestamp: 0)
        var bytes = w.bytes
        let epb = bytes.count - 36
        bytes.replaceSubrange((epb + 20)..<(epb + 24), with: le32(0xFFFF_FFFF))
        #expect(throws: PcapNGError.malformedBlock(offset: epb, blockType: 6, reason: "captured length 4294967295 exceeds the block's 4 data bytes")) {
            try PcapNGCapture(parsing: bytes)
        }
    }

    @Test func rejectsMismatchedTrailerBadMagicAndNonPcapNG() {
        var bytes = PcapNGWriter(application: nil).bytes
        bytes[24] = 32
        #expect(throws: PcapNGError.badBlockLength(offset: 0, length: 28, reason: "trailing copy says 32")) {
            try PcapNGCapture(parsing: bytes)
        }
        var magic = PcapNGWriter(application: nil).bytes
        magic[8] = 0x4E
        #expect(throws: PcapNGError.badByteOrderMagic(offset: 0, value: 0x1A2B_3C4E)) { try PcapNGCapture(parsing: magic) }
        // A classic pcap header is not pcapng.
        let classic: [UInt8] = [0x4D, 0x3C, 0xB2, 0xA1, 2, 0, 4, 0] + [UInt8](repeating: 0, count: 16)
        #expect(throws: PcapNGError.notPcapNG(offset: 0, blockType: 0xA1B2_3C4D)) { try PcapNGCapture(parsing: classic) }
        #expect(throws: PcapNGError.self) { try PcapNGCapture(parsing: []) }
        var version = PcapNGWriter(application: nil).bytes
        version[12] = 2
        #expect(throws: PcapNGError.unsupportedVersion(offset: 0, major: 2, minor: 0)) { try PcapNGCapture(parsing: version) }
    }

    @Test func rejectsUnknownInterfacesAndOverlongOptions() {
        var bytes = PcapNGWriter(application: nil).bytes
        bytes += le32(6) + le32(32) + le32(0) + le32(0) + le32(0) + le32(0) + le32(0) + le32(32)
        #expect(throws: PcapNGError.unknownInterface(offset: 28, interfaceID: 0, known: 0)) { try PcapNGCapture(parsing: bytes) }

        var options = PcapNGWriter(application: nil).bytes
        options += le32(1) + le32(28) + [1, 0, 0, 0] + le32(0) + le16(2) + le16(200) + le32(0) + le32(28)
        #expect(throws: PcapNGError.malformedBlock(offset: 28, blockType: 1, reason: "option 2 at byte 44 with length 200 runs past the block")) {
            try PcapNGCapture(parsing: options)
        }
        var resolution = PcapNGWriter(application: nil).bytes
        resolution += le32(1) + le32(28) + [1, 0, 0, 0] + le32(0) + le16(9) + le16(1) + [9, 0, 0, 0] + le32(28)
        resolution += le32(6) + le32(32) + le32(0) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le32(0) + le32(0) + le32(32)
        // ns resolution: the largest timestamp still fits.
        #expect((try? PcapNGCapture(parsing: resolution))?.packets.first?.timestamp == UInt64.max)
    }

    @Test func timestampOverflowThrows() {
        var bytes = PcapNGWriter(application: nil).bytes
        bytes += le32(1) + le32(20) + [1, 0, 0, 0] + le32(0) + le32(20)          // µs resolution
        bytes += le32(6) + le32(32) + le32(0) + le32(0xFFFF_FFFF) + le32(0) + le32(0) + le32(0) + le32(32)
        #expect(throws: PcapNGError.self) { try PcapNGCapture(parsing: bytes) }
    }

    @Test func randomCorruptionNeverTraps() {
        let (valid, _) = sampleCapture()
        var rng = SplitMix64(seed: 0x5eed)
        var parsed = 0
        for _ in 0..<3000 {
            var bytes = valid
            for _ in 0..<Int(rng.next() % 6 + 1) {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[at] ^= 0x80
                default: bytes.removeSubrange(at..<min(bytes.count, at + Int(rng.next() % 9)))
                }
                if bytes.isEmpty { break }
            }
            if (try? PcapNGCapture(parsing: bytes)) != nil { parsed += 1 }
        }
        #expect(parsed > 0)      // some corruptions only touch data bytes
    }
}

/// The bytes of a `tshark -x` hex dump ("0000  02 00 00 …  ascii").
private func hexDumpBytes(_ dump: String) -> [UInt8] {
    var bytes: [UInt8] = []
    for line in dump.split(separator: "\n") {
        let parts = line.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].count == 4, UInt32(parts[0], radix: 16) != nil else { continue }
        // Hex columns: up to 16 two-digit groups, before the two-space ASCII column.
        let columns = parts[1].prefix(16 * 3 + 2)
        for token in columns.split(separator: " ") where token.count == 2 {
            if let byte = UInt8(token, radix: 16) { bytes.append(byte) } else { break }
        }
    }
    return bytes
}

private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
