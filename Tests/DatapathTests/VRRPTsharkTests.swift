// VRRP → tshark: every frame the VRRP element sends (adverts of several
// groups, priorities 255 / 200 / 0, one and three VIPs, vmac on and off,
// the gratuitous ARPs of a takeover) goes into a pcapng; tshark's `vrrp`
// dissector must decode each advert as version 3 with our VRID, priority,
// interval and addresses, checksum status Good (1), and print no warning
// and no "Malformed" anywhere.
//
//   swift test --filter VRRPTshark
//   VRRP_TSHARK_KEEP=/tmp/vrrp.pcapng swift test --filter VRRPTshark

import Foundation
import Testing
import Wire
@testable import Datapath

@Suite struct VRRPTsharkTests {
    struct Sent {
        var frame: [UInt8]
        var vrid: UInt8
        var priority: UInt8
        var interval: UInt16
        var vips: [IPv4Address]
    }

    /// The frames of a few groups through start, takeover and resignation.
    static func frames() -> [Sent] {
        var out: [Sent] = []
        let groups: [VRRPConfiguration] = [
            VRRPConfiguration(vrid: 17, priority: 200, vips: [IPv4Address(10, 0, 0, 100)], interval: 10, port: PortID(0)),
            VRRPConfiguration(vrid: 255, priority: 1, vips: [IPv4Address(192, 168, 7, 1), IPv4Address(192, 168, 7, 2),
                                                             IPv4Address(192, 168, 7, 3)], interval: 4095, vmac: true, port: PortID(0)),
            VRRPConfiguration(vrid: 1, priority: 255, vips: [IPv4Address(10, 9, 0, 1)], interval: 100, port: PortID(0)),
        ]
        for c in groups {
            var g = VRRPInstance(c, portMAC: MACAddress(0x02, 0, 0, 0, 0, c.vrid), primaryAddress: IPv4Address(10, 0, 0, 2))
            var e = Emitter()
            var t = Instant.zero
            g.start(now: t, emit: &e)
            for _ in 0..<4 {
                t = g.nextTimer!
                g.tick(now: t, emit: &e)
            }
            g.resign(now: t.adding(seconds: 0.01), emit: &e)
            for k in 0..<e.count {
                let bytes = Array(e.frame(at: k).bytes)
                let isAdvert = bytes[23] == 112
                out.append(Sent(frame: bytes, vrid: c.vrid, priority: isAdvert ? bytes[36] : 0, interval: c.interval, vips: c.vips))
            }
        }
        return out
    }

    @Test func tsharkDecodesEveryAdvertWithoutWarnings() throws {
        let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tshark else {
            Issue.record("tshark not found: apt-get install tshark (scripts/install-deps.sh)")
            return
        }
        let sent = Self.frames()
        let adverts = sent.filter { $0.frame[23] == 112 }
        #expect(Set(adverts.map(\.priority)) == [200, 1, 255, 0])
        #expect(sent.count > adverts.count)   // gratuitous ARPs too

        var writer = PcapNGWriter(application: "wirelab vrrp", comment: nil)
        let interface = writer.addInterface(name: "vrrp")
        for (i, s) in sent.enumerated() {
            writer.writePacket(s.frame, interface: interface, timestamp: 1_700_000_000_000_000_000 + UInt64(i) * 1000, comment: nil)
        }
        let keep = ProcessInfo.processInfo.environment["VRRP_TSHARK_KEEP"]
        let file = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("wirelab-vrrp-\(UUID().uuidString).pcapng").path
        try Data(writer.bytes).write(to: URL(fileURLWithPath: file))
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: file) } }

        let verbose = try Self.run(tshark, ["-n", "-r", file, "-V", "-o", "ip.check_checksum:TRUE"])
        #expect(!verbose.contains("Expert Info (Warn"), "tshark warned:\n\(verbose)")
        #expect(!verbose.contains("Malformed"), "tshark found a malformed frame:\n\(verbose)")
        #expect(!verbose.contains("[incorrect"), "a checksum is wrong:\n\(verbose)")

        let fields = ["frame.number", "vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.addr_count",
                      "vrrp.short_adver_int", "vrrp.ip_addr", "vrrp.checksum.status", "ip.ttl", "ip.dst", "eth.dst", "arp.opcode"]
        let table = try Self.run(tshark, ["-n", "-r", file, "-T", "fields", "-E", "separator=|", "-E", "aggregator=,",
                                          "-o", "ip.check_checksum:TRUE"] + fields.flatMap { ["-e", $0] })
        let rows = table.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.count == sent.count)
        for (row, s) in zip(rows, sent) {
            let f = Dictionary(uniqueKeysWithValues: zip(fields, row))
            if s.frame[23] == 112 {
                #expect(f["vrrp.version"] == "3" && f["vrrp.type"] == "1", "\(row)")
                #expect(f["vrrp.virt_rtr_id"] == "\(s.vrid)" && f["vrrp.prio"] == "\(s.priority)", "\(row)")
                #expect(f["vrrp.addr_count"] == "\(s.vips.count)", "\(row)")
                #expect(f["vrrp.short_adver_int"] == "\(s.interval)", "\(row)")
                #expect(f["vrrp.ip_addr"] == s.vips.map(\.description).joined(separator: ","), "\(row)")
                #expect(f["vrrp.checksum.status"] == "1", "checksum not Good: \(row)")
                #expect(f["ip.ttl"] == "255" && f["ip.dst"] == "224.0.0.18" && f["eth.dst"] == "01:00:5e:00:00:12", "\(row)")
            } else {
                #expect(f["arp.opcode"] == "1", "\(row)")
            }
        }
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
