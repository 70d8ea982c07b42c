import Foundation
import Lab
import Testing
import Wire

/// `wirelab bench forward` — correctness only. How many packets per second
/// anything forwards is measured by the benchmark itself (BENCHMARKS.md),
/// never asserted here.
struct ForwardBenchmarkTests {
    @Test func framesAreValidUDPOverIPv4OnePerFlow() throws {
        let source = MACAddress(0x02, 0, 0, 0, 0, 1), destination = MACAddress(0x02, 0, 0, 0, 0, 2)
        let frames = ForwardBenchmark.frames(source: source, destination: destination,
                                             sourceIP: IPv4Address(10, 77, 1, 2), destinationIP: IPv4Address(10, 77, 2, 2),
                                             frameSize: 64, flows: 8)
        #expect(frames.count == 8)
        var ports = Set<UInt16>()
        for frame in frames {
            #expect(frame.count == 60, "64 bytes on a wire are 60 on a veth (no FCS)")
            let parsed = try frame.withUnsafeBytes { try FrameParser(verifiesIPv4Checksum: true).parse($0) }
            #expect(parsed.destinationMAC == destination && parsed.sourceMAC == source)
            #expect(parsed.protocol == .udp && parsed.timeToLive == 64)
            #expect(parsed.sourceIPv4 == IPv4Address(10, 77, 1, 2) && parsed.destinationIPv4 == IPv4Address(10, 77, 2, 2))
            #expect(parsed.destinationPort == 9)
            // UDP checksum 0: "none", so the generator may rotate the port.
            #expect(frame[40] == 0 && frame[41] == 0)
            ports.insert(parsed.sourcePort)
        }
        #expect(ports == Set((0..<8).map { ForwardBenchmark.sourcePortBase + $0 }))
    }

    /// A case that failed keeps its row, says why, and does not hide the
    /// cases that were measured.
    @Test func aFailedCaseIsReportedInItsRowBesideTheMeasuredOnes() throws {
        func measurement(_ name: String, _ pps: Double) -> String {
            """
            {"forwarder": "\(name)", "seconds": 1, "sinkFrames": \(Int(pps)), "packetsPerSecond": \(pps),
             "offeredPerSecond": 5000000, "perSecond": [\(pps)], "cpus": []}
            """
        }
        let json = """
            {"date": 0, "seconds": 1, "warmupSeconds": 1, "rounds": 1, "frameSize": 64, "bytesOnVeth": 60,
             "flows": 64, "generator": "g", "sinkCounter": "s", "placements": {"split": "split: …"},
             "kernelSetup": {}, "mallocCounter": "not measured", "notes": [],
             "machine": {"cpus": 2, "model": "m", "kernel": "k", "loadBefore": "0", "loadAfter": "0"},
             "rows": [
               {"element": "switch", "datapath": "afxdp", "placement": "split", "lab": "x-sw-xdp",
                "ours": [\(measurement("wirelab switch (AF_XDP)", 1000000))],
                "kernel": [\(measurement("Linux bridge", 800000))], "failures": [],
                "oursPacketsPerSecond": 1000000, "kernelPacketsPerSecond": 800000, "ratio": 1.25},
               {"element": "router", "datapath": "afpacket", "placement": "split", "lab": "x-r-pkt",
                "ours": [], "kernel": [], "failures": ["no frame reached the sink in 1 s of warm-up"],
                "oursPacketsPerSecond": 0, "kernelPacketsPerSecond": 0, "ratio": 0}
             ]}
            """
        let report = try JSONDecoder().decode(ForwardBenchmark.Report.self, from: Data(json.utf8))
        let lines = report.table().split(separator: "\n").map(String.init)
        let measured = try #require(lines.first { $0.hasPrefix("switch ") })
        #expect(measured.contains("1.000") && measured.contains("0.800") && measured.contains("1.25×"), "\(measured)")
        let failed = try #require(lines.first { $0.hasPrefix("router ") })
        #expect(failed.contains("failed"), "\(failed)")
        #expect(lines.contains("  router/afpacket: no frame reached the sink in 1 s of warm-up"), "\(lines)")
    }

    @Test(.enabled(if: Harness.isRoot, "needs root to create network namespaces"))
    func oneShortRunReportsBothForwardersAndLeavesNothing() throws {
        let prefix = "wltfb"
        #expect(Harness.namespaces(prefix: "wl-\(prefix)-").isEmpty, "a lab \(prefix)-* exists before the test")
        defer { _ = try? Harness.wl("down", "\(prefix)-sw-xdp") }

        let result = try Harness.wl("bench", "forward", "--seconds", "1", "--warmup", "0.5", "--element", "switch",
                                    "--datapath", "afxdp", "--lab-prefix", prefix, "--json", timeout: 120)
        #expect(result.status == 0, "bench forward failed: \(result.combined)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let rows = json?["rows"] as? [[String: Any]] ?? []
        try #require(rows.count == 1, "one row (switch over AF_XDP): \(result.stdout)")
        let ours = rows[0]["oursPacketsPerSecond"] as? Double ?? 0
        let kernel = rows[0]["kernelPacketsPerSecond"] as? Double ?? 0
        #expect(ours > 0, "our switch forwarded nothing: \(result.combined)")
        #expect(kernel > 0, "the Linux bridge forwarded nothing: \(result.combined)")
        let measured = (rows[0]["ours"] as? [[String: Any]])?.first
        let counters = measured?["elementCounters"] as? [String: Any]
        #expect((counters?["forwarded"] as? Int ?? 0) > 0, "the switch's own counter: \(String(describing: counters))")
        #expect(counters?["flooded"] as? Int == 0, "the sink's MAC was learned before the window: \(String(describing: counters))")

        #expect(Harness.namespaces(prefix: "wl-\(prefix)-").isEmpty, "namespaces left behind")
        let state = try? FileManager.default.contentsOfDirectory(atPath: "/run/wirelab").filter { $0.hasPrefix(prefix) }
        #expect(state?.isEmpty ?? true, "lab state left behind: \(state ?? [])")
    }

    /// The director beside nftables DNAT: ours must translate every frame
    /// it forwards (its `forwarded-nat` counter), the kernel's peer must
    /// forward through conntrack, and nothing is left behind.
    @Test(.enabled(if: Harness.isRoot, "needs root to create network namespaces"))
    func directorNATBesideNftablesDNAT() throws {
        let prefix = "wltfd"
        #expect(Harness.namespaces(prefix: "wl-\(prefix)-").isEmpty, "a lab \(prefix)-* exists before the test")
        defer { _ = try? Harness.wl("down", "\(prefix)-nat-pkt") }

        let result = try Harness.wl("bench", "forward", "--seconds", "1", "--warmup", "0.5", "--element", "director-nat",
                                    "--datapath", "afpacket", "--lab-prefix", prefix, "--json", timeout: 120)
        #expect(result.status == 0, "bench forward failed: \(result.combined)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let rows = json?["rows"] as? [[String: Any]] ?? []
        try #require(rows.count == 1, "one row (director-nat over AF_PACKET): \(result.stdout)")
        #expect(rows[0]["element"] as? String == "director-nat")
        #expect(rows[0]["oursPacketsPerSecond"] as? Double ?? 0 > 0, "our director forwarded nothing: \(result.combined)")
        #expect(rows[0]["kernelPacketsPerSecond"] as? Double ?? 0 > 0, "nftables DNAT forwarded nothing: \(result.combined)")
        let measured = (rows[0]["ours"] as? [[String: Any]])?.first
        #expect(measured?["forwarder"] as? String == "wirelab director-nat (AF_PACKET)")
        let kernelName = ((rows[0]["kernel"] as? [[String: Any]])?.first)?["forwarder"] as? String
        #expect(kernelName == "nftables DNAT")
        let counters = measured?["elementCounters"] as? [String: Any]
        #expect((counters?["forwarded-nat"] as? Int ?? 0) > 0, "the director's NAT counter: \(String(describing: counters))")

        #expect(Harness.namespaces(prefix: "wl-\(prefix)-").isEmpty, "namespaces left behind")
    }
}
