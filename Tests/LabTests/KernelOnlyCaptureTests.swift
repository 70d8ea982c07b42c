import Foundation
import LinuxNet
import Testing

/// `capture: true` on a lab of kernel hosts only: there is no data plane,
/// but `up` still records every link (the daemon runs as recorder only),
/// and `down` closes the captures and leaves nothing running.
@Suite(.enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct KernelOnlyCaptureTests {
    @Test func upRecordsTheLinksOfAKernelOnlyLab() throws {
        let lab = Harness.lab("wltko")
        let file = try Harness.topologyFile("""
            name: \(lab)
            defaults: { capture: true }
            nodes:
              a: { kind: host, interfaces: { eth0: { ip: 10.78.1.1/24 } } }
              b: { kind: host, interfaces: { eth0: { ip: 10.78.1.2/24 } } }
            links:
              - [ a:eth0, b:eth0 ]
            """)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer {
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = try Harness.run(Harness.wirelab, ["up", file], timeout: 60, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        #expect(up.combined.contains("capture recorder"), "up says what it started: \(up.combined)")
        let ping = try Harness.wl("exec", "--lab", lab, "a", "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.78.1.2")
        #expect(ping.status == 0, "ping: \(ping.combined)")
        try #require(try Harness.wl("down", lab).status == 0)

        let capture = try PcapNGFile.read(path: "\(dir)/Captures/\(lab)/all.pcapng")
        #expect(capture.interfaces.map { $0.name ?? "" } == ["a:eth0 ↔ b:eth0"])
        // Every reply ping got was received at a, and its request at b (plus
        // ARP): on a loaded machine ping may miss one, the capture may not.
        let received = ping.stdout.firstMatch(of: /(\d+) received/).flatMap { Int($0.1) } ?? -1
        #expect(received >= 1, "ping: \(ping.combined)")
        let comments = capture.packets.compactMap(\.record.comment)
        let icmpAtB = capture.packets.filter { $0.record.bytes.count > 34 && $0.record.bytes[23] == 1 && $0.record.comment == "rx b:eth0" }
        let icmpAtA = capture.packets.filter { $0.record.bytes.count > 34 && $0.record.bytes[23] == 1 && $0.record.comment == "rx a:eth0" }
        #expect(icmpAtA.count == received && icmpAtB.count >= received && icmpAtB.count <= 3,
                "echo requests at b, replies at a (ping received \(received)): \(comments)\n\(ping.stdout)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "namespaces left behind")
    }
}
