import CPcap
import Foundation
import Testing
import Wire
@testable import LinuxNet

/// Helpers shared by the pcap test files of this target.
enum PcapTestSupport {
    static let tsharkPath = "/usr/bin/tshark"
    static let tsharkInstalled = FileManager.default.isExecutableFile(atPath: tsharkPath)

    /// Ethernet + IPv4 header + `payload` bytes of 0x5a (protocol 253,
    /// "experimental"), enough for tshark to show MACs and IPs.
    static func frame(src: MACAddress, dst: MACAddress, srcIP: IPv4Address, dstIP: IPv4Address, payload: Int = 26) -> [UInt8] {
        let f: [UInt8] = (0..<6).map { dst[$0] } + (0..<6).map { src[$0] } + [0x08, 0x00]
        let length = 20 + payload
        var ip: [UInt8] = [0x45, 0, UInt8(length >> 8), UInt8(length & 0xff), 0, 1, 0x40, 0, 64, 253, 0, 0]
        ip += (0..<4).map { srcIP[$0] } + (0..<4).map { dstIP[$0] }
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        ip[10] = UInt8(~UInt16(sum) >> 8)
        ip[11] = UInt8(~UInt16(sum) & 0xff)
        return f + ip + [UInt8](repeating: 0x5a, count: payload)
    }

    /// Runs a program; returns its exit status, stdout and stderr.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Drain stderr on the side so neither pipe can fill and block the child.
        final class Collected: @unchecked Sendable { var data = Data() }
        let errorData = Collected()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errorData.data = err.fileHandleForReading.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errorData.data, as: UTF8.self))
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-pcap-\(UUID().uuidString)-\(name)").path
    }
}

@Suite struct PcapFileTests {
    let a = MACAddress(0x02, 0, 0, 0, 0, 0x0a)
    let b = MACAddress(0x02, 0, 0, 0, 0, 0x0b)

    func sampleRecords() -> [PcapRecord] {
        let f0 = PcapTestSupport.frame(src: a, dst: b, srcIP: IPv4Address(10, 0, 0, 1), dstIP: IPv4Address(10, 0, 0, 2))
        let f1 = PcapTestSupport.frame(src: b, dst: a, srcIP: IPv4Address(10, 0, 0, 2), dstIP: IPv4Address(10, 0, 0, 1), payload: 200)
        return [
            PcapRecord(timestamp: 1_700_000_000_000_000_001, bytes: f0),
            PcapRecord(timestamp: 1_700_000_000_999_999_999, bytes: f1, originalLength: f1.count + 100),
            PcapRecord(timestamp: 1_700_000_002_123_456_789, bytes: f0),
        ]
    }

    @Test func writesAndReadsNanosecondTimestamps() throws {
        let path = PcapTestSupport.temporaryPath("rt.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = sampleRecords()
        let writer = try PcapWriter(path: path)
        for r in records { try writer.write(r) }
        try writer.flush()
        #expect(writer.count == 3)
        try writer.close()
        try writer.close()                       // idempotent

        // Nanosecond pcap magic, little-endian on this host: a1b23c4d.
        let header = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)).prefix(4))
        #expect(header == [0x4d, 0x3c, 0xb2, 0xa1])

        let reader = try PcapReader(path: path)
        #expect(reader.linkType == DLT_EN10MB)
        #expect(reader.snapLength == Int(PcapDefaults.snapLength))
        #expect(try reader.readAll() == records)
        #expect(try reader.nextRecord() == nil)

        // The Sequence view gives the same.
        #expect(Array(try PcapReader(path: path)) == records)
    }

    @Test func cutsFramesToTheSnapshotLength() throws {
        let path = PcapTestSupport.temporaryPath("snap.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let frame = [UInt8](0..<100)
        let writer = try PcapWriter(path: path, snapLength: 64)
        try writer.write(frame, timestamp: 42)
        try writer.close()
        let records = try PcapReader.readAll(path: path)
        #expect(records == [PcapRecord(timestamp: 42, bytes: Array(frame.prefix(64)), originalLength: 100)])
    }

    @Test(.enabled(if: PcapTestSupport.tsharkInstalled, "tshark not installed"))
    func tsharkReadsNanosecondPcap() throws {
        let path = PcapTestSupport.temporaryPath("tshark.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = sampleRecords()
        let writer = try PcapWriter(path: path)
        for r in records { try writer.write(r) }
        try writer.close()

        let (status, output, _) = try PcapTestSupport.run(PcapTestSupport.tsharkPath, [
            "-r", path, "-o", "frame.generate_epoch_time:TRUE", "-T", "fields", "-E", "separator=|",
            "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "eth.src", "-e", "ip.dst",
        ])
        #expect(status == 0)
        let rows = output.split(separator: "\n").map(String.init)
        #expect(rows == [
            "1700000000.000000001|\(records[0].originalLength)|\(records[0].bytes.count)|02:00:00:00:00:0a|10.0.0.2",
            "1700000000.999999999|\(records[1].originalLength)|\(records[1].bytes.count)|02:00:00:00:00:0b|10.0.0.1",
            "1700000002.123456789|\(records[2].originalLength)|\(records[2].bytes.count)|02:00:00:00:00:0a|10.0.0.2",
        ])
        // Wireshark's own view of the file type: nanosecond pcap.
        let capinfos = "/usr/bin/capinfos"             // from wireshark-common, beside tshark
        if FileManager.default.isExecutableFile(atPath: capinfos) {
            let (_, info, _) = try PcapTestSupport.run(capinfos, ["-t", "-T", "-r", path])
            #expect(info.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } == [path, "nsecpcap"])
        }
    }

    @Test func errorsNameTheOperationPathAndLibpcapText() throws {
        let missingDirectory = "/nonexistent-wirelab-dir/x.pcap"
        do throws(PcapError) {
            _ = try PcapWriter(path: missingDirectory)
            Issue.record("opening a file in a missing directory succeeded")
        } catch {
            #expect(error.path == missingDirectory)
            #expect(error.operation.contains("pcap_dump_open"))
            #expect(error.message.contains("No such file or directory"))
            #expect(error.description.contains(missingDirectory))
        }
        do throws(PcapError) {
            _ = try PcapReader(path: missingDirectory)
            Issue.record("reading a missing file succeeded")
        } catch {
            #expect(error.operation.contains("pcap_open_offline"))
            #expect(error.message.contains("No such file or directory"))
        }

        // Not a capture file at all.
        let garbage = PcapTestSupport.temporaryPath("garbage.pcap")
        defer { try? FileManager.default.removeItem(atPath: garbage) }
        try Data("this is not a capture file, just text".utf8).write(to: URL(fileURLWithPath: garbage))
        #expect(throws: PcapError.self) { try PcapReader(path: garbage) }
    }

    @Test func truncatedFileThrowsWhileReading() throws {
        let path = PcapTestSupport.temporaryPath("cut.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path)
        for r in sampleRecords() { try writer.write(r) }
        try writer.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.dropLast(10).write(to: URL(fileURLWithPath: path))

        let reader = try PcapReader(path: path)
        #expect(try reader.nextRecord() != nil)
        #expect(try reader.nextRecord() != nil)
        do throws(PcapError) {
            _ = try reader.nextRecord()
            Issue.record("a truncated record was read")
        } catch {
            #expect(error.operation.contains("pcap_next_ex"))
            #expect(error.message.contains("truncated"), "\(error)")
        }
        // Iteration stops at the damage and keeps the error.
        let iterating = try PcapReader(path: path)
        #expect(Array(iterating).count == 2)
        #expect(iterating.iterationError != nil)
    }

    @Test func writingAfterCloseThrows() throws {
        let path = PcapTestSupport.temporaryPath("closed.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path)
        try writer.close()
        #expect(throws: PcapError.self) { try writer.write([1, 2, 3], timestamp: 0) }
        #expect(throws: PcapError.self) { try writer.flush() }
    }

    @Test func mergesPcapFilesIntoNamedPcapNGInterfaces() throws {
        let records = sampleRecords()
        let first = PcapTestSupport.temporaryPath("gw-eth1.pcap")
        let second = PcapTestSupport.temporaryPath("sw-p1.pcap")
        let merged = PcapTestSupport.temporaryPath("walk.pcapng")
        defer { for p in [first, second, merged] { try? FileManager.default.removeItem(atPath: p) } }
        let w1 = try PcapWriter(path: first)
        try w1.write(records[0])
        try w1.write(records[2])
        try w1.close()
        let w2 = try PcapWriter(path: second)
        try w2.write(records[1])
        try w2.close()

        try PcapNGFile.merge([
            .init(name: "gw:eth1", description: "gw ↔ sw", path: first),
            .init(name: "sw:p1", path: second),
        ], to: merged)

        let capture = try PcapNGFile.read(path: merged)
        #expect(capture.interfaces.map(\.name) == ["gw:eth1", "sw:p1"])
        #expect(capture.packets.map(\.interface) == [0, 1, 0])
        #expect(capture.packets.map(\.record) == records)

        if PcapTestSupport.tsharkInstalled {
            let (status, output, _) = try PcapTestSupport.run(PcapTestSupport.tsharkPath, [
                "-r", merged, "-T", "fields", "-E", "separator=|", "-e", "frame.interface_name", "-e", "frame.time_epoch",
            ])
            #expect(status == 0)
            #expect(output.split(separator: "\n") == [
                "gw:eth1|1700000000.000000001", "sw:p1|1700000000.999999999", "gw:eth1|1700000002.123456789",
            ])
        }
    }

    @Test func mergeReportsTheFileThatFailed() {
        let merged = PcapTestSupport.temporaryPath("never.pcapng")
        #expect(throws: PcapError.self) {
            try PcapNGFile.merge([.init(name: "x:eth0", path: "/nonexistent-wirelab-dir/x.pcap")], to: merged)
        }
        #expect(!FileManager.default.fileExists(atPath: merged))
    }
}
