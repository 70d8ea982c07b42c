import Foundation
import Testing
import Topology
import Wire
@testable import Lab
import LinuxNet

/// A hop the sender's fast path forwarded, from the capture flag to what
/// `walk` prints (text, JSON, pcapng, picture): hand-built observations of
/// VerifyEngineTests' DR lab, no root.
struct FastPathWalkTests {
    /// The DR walk with the router's capture of the probe (and of the reply)
    /// flagged: gw forwarded both by its fast path.
    static func walk() throws -> WalkReport {
        let t = try VerifyEngineTests.topology()
        var obs = VerifyEngineTests.drObservations(t)
        let gw0 = Endpoint("gw:eth0")!, gw1 = Endpoint("gw:eth1")!
        let marker = VerifyEngineTests.marker
        for i in obs.indices where (obs[i].receiver == gw0 || obs[i].receiver == gw1)
            && FrameFields(frame: obs[i].frame).flatMap(marker.classify) != nil {
            obs[i].fastPath = true
        }
        let path = ProbePath.trace(obs, marker: marker, origin: "client", topology: t)
        return WalkReport(topology: t, probe: Probe(from: "client", source: IPv4Address("203.0.113.123")!,
                                                    destination: IPv4Address("198.51.100.3")!, proto: .tcp,
                                                    sourcePort: 40000, destinationPort: 80, marker: marker), path: path)
    }

    @Test func theHopLeavingTheNodeWhoseCaptureIsFlaggedIsTheFastOne() throws {
        let report = try Self.walk()
        let hops = report.path.hops
        // The flag is on gw's capture of the frame it RECEIVED; the hop gw
        // SENT is the one its fast path forwarded, not the one into gw.
        #expect(hops.filter { $0.path == .fast }.map(\.sender.node) == ["gw", "gw"])
        #expect(hops.first { $0.receiver.node == "gw" }?.path == .slow)
        #expect(hops.filter { $0.sender.node != "gw" }.allSatisfy { $0.path == .slow })

        let text = report.text()
        #expect(text.contains(" 2. gw (in eth0, out eth1, fast path) → sw:p1"), "\(text)")
        #expect(text.contains("gw (in eth1, out eth0, fast path) → client:eth0"), "\(text)")
        #expect(text.contains(" 1. client (out eth0) → gw:eth0"), "a slow hop reads as before: \(text)")

        let json = try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as! [String: Any]
        let jsonHops = json["hops"] as! [[String: Any]]
        #expect(jsonHops.map { $0["path"] as? String } == hops.map { $0.path.rawValue })
        #expect(jsonHops[1]["path"] as? String == "fast" && jsonHops[0]["path"] as? String == "slow")

        let back = try PcapNGCapture(parsing: report.pcapng())
        #expect(back.packets[1].comments.first?.hasPrefix("rx sw:p1\nhop 2 (request, fast path): router gw:") == true)
        #expect(back.packets[0].comments.first?.hasPrefix("rx gw:eth0\nhop 1 (request): ") == true)
        #expect(WalkPictures.label(hops[1]).hasPrefix("2. fast path: "))
        #expect(report.html(pcapng: nil).contains("gw (in eth0, out eth1, fast path) → sw:p1"))
        let mermaid = report.mermaid()
        #expect(MermaidSequenceGrammar.errors(mermaid) == [], "\(mermaid)")
        #expect(mermaid.contains(": 2. fast path: "), "\(mermaid)")
        #expect(report.svg().contains("2. fast path: "))
    }

    /// A frame the fast path took and redirected where nothing received it
    /// (a veth peer without NAPI drops redirected frames): the walk says so.
    @Test func aFrameTheFastPathTookThatNoLinkSawAfterIsNamed() throws {
        let t = try VerifyEngineTests.topology()
        var obs = VerifyEngineTests.drObservations(t)
        let marker = VerifyEngineTests.marker
        let intoGW = try #require(obs.firstIndex { $0.receiver == Endpoint("gw:eth0")! && FrameFields(frame: $0.frame).flatMap(marker.classify) == .request })
        obs[intoGW].fastPath = true
        let taken = obs[intoGW].timestamp
        obs.removeAll { $0.sender.node == "gw" || ($0.timestamp > taken && $0.sender.node != "client") }
        let path = ProbePath.trace(obs, marker: marker, origin: "client", topology: t)
        #expect(path.hops.count == 1 && path.lostAfterFastPath.map(\.number) == [1])
        let text = WalkReport(topology: t, probe: Probe(from: "client", source: IPv4Address("203.0.113.123")!,
                                                        destination: IPv4Address("198.51.100.3")!, proto: .tcp,
                                                        sourcePort: 40000, destinationPort: 80, marker: marker), path: path).text()
        #expect(text.contains("gw's fast path took hop 1's frame, and no link saw it after"), "\(text)")
        #expect(try Self.walk().path.lostAfterFastPath.isEmpty, "the frames gw's fast path took were seen after it")
    }

    @Test func aWalkWithoutFlagsIsAllSlowAndPrintsAsBefore() throws {
        let t = try VerifyEngineTests.topology()
        let path = ProbePath.trace(VerifyEngineTests.drObservations(t), marker: VerifyEngineTests.marker, origin: "client", topology: t)
        #expect(!path.hops.isEmpty && path.hops.allSatisfy { $0.path == .slow })
        #expect(path.hops.allSatisfy { !$0.interfacesText.contains("fast") })
    }

    /// The recorder's sidecar byte carries the flag into all.pcapng's
    /// comment, and the comment back into the observation.
    @Test func theFlagSurvivesTheMergeAndTheReader() throws {
        let t = try VerifyEngineTests.topology()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-fpmerge-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let link = t.links[0]
        let path = dir + "/l.pcap"
        let w = try PcapWriter(path: path)
        try w.write([1, 1, 1], timestamp: 10)
        try w.write([2, 2, 2], timestamp: 20)
        try w.write([3, 3, 3], timestamp: 30)
        try w.close()
        try Data([0, 1 | CaptureRecorder.fastPathBit, 0 | CaptureRecorder.fastPathBit])
            .write(to: URL(fileURLWithPath: CaptureRecorder.receiverPath(path)))
        try CaptureRecorder.mergeStreaming([(ObservationReader.linkName(link), path, [link.a.description, link.b.description])],
                                           to: dir + "/all.pcapng")
        let merged = try PcapNGFile.read(path: dir + "/all.pcapng")
        #expect(merged.packets.map(\.comments) == [["rx \(link.a)"], ["rx \(link.b)\nfast path"], ["rx \(link.a)\nfast path"]])
        let read = ObservationReader.observations(merged, topology: t)
        #expect(read.unattributed == 0)
        #expect(read.observations.map(\.fastPath) == [false, true, true])
        #expect(read.observations.map(\.receiver) == [link.a, link.b, link.a])
    }
}
