import Foundation
import Testing
import Topology
import Wire
@testable import Lab

/// Capture loss without root: the simulator runs the checks, a wrapper
/// reports capture counters that lost frames between the readings before
/// and after, and the verdicts resting on the capture become inconclusive
/// while those resting on sockets stand.
struct CaptureLossTests {
    /// The simulator, with capture counters given by the test.
    final class LossyBackend: CheckBackend {
        let sim: SimBackend
        let before: [CapturePoint]
        let after: [CapturePoint]
        var finished = false
        init(_ sim: SimBackend, before: [CapturePoint], after: [CapturePoint]) {
            self.sim = sim
            self.before = before
            self.after = after
        }
        var topology: ResolvedTopology { sim.topology }
        var capturePath: String? { nil }
        func start() throws { try sim.start() }
        func send(_ probe: Probe) throws { try sim.send(probe) }
        func echo(_ probe: Probe, timeout: Double) throws -> Bool { try sim.echo(probe, timeout: timeout) }
        func connect(from: String, to: IPv4Address, port: Int, timeout: Double) throws -> Bool {
            try sim.connect(from: from, to: to, port: port, timeout: timeout)
        }
        func http(from: String, host: IPv4Address, port: Int, path: String, timeout: Double) throws -> String? {
            try sim.http(from: from, host: host, port: port, path: path, timeout: timeout)
        }
        func dropCounters() throws -> NodeDropCounters { try sim.dropCounters() }
        func captureCounters() throws -> [CapturePoint] { finished ? after : before }
        func settle(seconds: Double) { sim.settle(seconds: seconds) }
        func apply(_ action: DrillEvent.Action, to target: DrillEvent.Target) throws { try sim.apply(action, to: target) }
        func finish() throws -> [PcapNGLink] { finished = true; return try sim.finish() }
        func stop() { sim.stop() }
    }

    static let yaml = """
    name: loss
    nodes:
      client: { kind: host, interfaces: { eth0: { ip: 10.0.1.2/24 } }, routes: [ "default via 10.0.1.1" ] }
      r1: { kind: router, interfaces: { eth0: { ip: 10.0.1.1/24 }, eth1: { ip: 10.0.2.1/24 } } }
      server: { kind: host, interfaces: { eth0: { ip: 10.0.2.2/24 } }, routes: [ "default via 10.0.2.1" ], serve: { http: 80 } }
    links:
      - [ client:eth0, r1:eth0 ]
      - [ r1:eth1, server:eth0 ]
    checks:
      - name: the web answers
        http: { from: client, url: "http://10.0.2.2/", count: 3 }
      - name: r1 routes the SYN
        send: { from: client, to: "10.0.2.2:80", proto: tcp }
        expect:
          - { at: server:eth0, src-mac: r1:eth1, ttl: 63 }
      - name: r1 would keep the TTL (wrong on purpose)
        send: { from: client, to: "10.0.2.2:80", proto: tcp }
        expect:
          - { at: server:eth0, ttl: 64 }
      - name: ping
        ping: { from: client, to: server }
    """

    static func ring(dropped: UInt64, errors: UInt64 = 0, recorded: UInt64 = 100) -> CapturePoint {
        CapturePoint(method: .xdpRing, node: "r1",
                     ends: [.init(end: "r1:eth0", link: "client:eth0 ↔ r1:eth0"), .init(end: "r1:eth1", link: "r1:eth1 ↔ server:eth0")],
                     recorded: recorded, ringDropped: dropped, errors: errors)
    }

    static func pcap(dropped: UInt32) -> CapturePoint {
        CapturePoint(method: .libpcap, node: "server", ends: [.init(end: "server:eth0", link: "r1:eth1 ↔ server:eth0")],
                     recorded: 10, ringDropped: UInt64(dropped), interfaceDropped: 0)
    }

    func run(before: [CapturePoint], after: [CapturePoint]) throws -> (CheckReport, CheckRunner) {
        let topology = try TopologyLoader.load(yaml: Self.yaml, file: "loss.yaml")
        let backend = LossyBackend(try SimBackend(topology: topology), before: before, after: after)
        try backend.start()
        let runner = CheckRunner(backend: backend, random: SeededRandom(seed: 1))
        return (CheckReport(lab: "loss", file: "loss.yaml", outcomes: runner.run(topology.checks)), runner)
    }

    @Test func lossBetweenTheReadingsMakesCaptureVerdictsInconclusive() throws {
        let (report, runner) = try run(before: [Self.ring(dropped: 5), Self.pcap(dropped: 0)],
                                       after: [Self.ring(dropped: 42, errors: 1), Self.pcap(dropped: 2)])
        let o = report.outcomes
        // Sockets: stand.
        #expect(o[0].status == .pass && o[0].evidence == [.socket], "\(o[0].summary)")
        #expect(o[3].status == .pass && o[3].evidence == [.socket], "\(o[3].summary)")
        // Capture: neither the pass nor the (deliberate) fail stands.
        for i in [1, 2] {
            #expect(o[i].status == .inconclusive, "\(o[i].name): \(o[i].summary)")
            #expect(o[i].evidence.contains(.capture))
            #expect(o[i].summary.contains("the capture lost 40 frames"), "\(o[i].summary)")
            #expect(o[i].summary.contains("the XDP capture ring of r1 (r1:eth0, r1:eth1): 38 frames lost (37 ring full, 1 unreadable)"), "\(o[i].summary)")
            #expect(o[i].summary.contains("libpcap at server:eth0: 2 frames lost (2 ring full)"), "\(o[i].summary)")
        }
        #expect(o[1].details.first?.hasPrefix("without the lost frames the capture would say: pass") == true)
        #expect(o[2].details.first?.hasPrefix("without the lost frames the capture would say: fail") == true)
        #expect(runner.captureLoss.map(\.frames) == [38, 2])

        #expect(report.passed == 2 && report.failed == 0 && report.inconclusive == 2 && report.errors == 0)
        #expect(report.exitStatus == CheckReport.inconclusiveExitStatus && report.exitStatus == 3)
        #expect(report.text().contains("4 checks: 2 passed, 0 failed, 2 inconclusive, 0 errors"))
        #expect(report.text().contains("INCONCLUSIVE  r1 routes the SYN"))
        let json = try JSONSerialization.jsonObject(with: Data(try report.json().utf8)) as? [String: Any] ?? [:]
        #expect(json["inconclusive"] as? Int == 2 && json["ok"] as? Bool == false)
        #expect((json["checks"] as? [[String: Any]])?.map { $0["status"] as? String } == ["pass", "inconclusive", "inconclusive", "pass"])
        let junit = report.junit()
        #expect(junit.contains("skipped=\"2\""))
        #expect(junit.components(separatedBy: "<skipped message=\"inconclusive: the capture lost 40 frames").count == 3, "\(junit)")
        #expect(!junit.contains("<failure"))
        let html = report.html(topology: try TopologyLoader.load(yaml: Self.yaml, file: "loss.yaml"))
        #expect(html.contains("class=\"check inconclusive\"") && html.contains(".inconclusive .verdict{color:#8250df}"))
    }

    @Test func noLossLeavesEveryVerdict() throws {
        let same = [Self.ring(dropped: 7), Self.pcap(dropped: 1)]
        let (report, runner) = try run(before: same, after: same)
        #expect(report.outcomes.map(\.status) == [.pass, .pass, .fail, .pass])
        #expect(runner.captureLoss.isEmpty)
        #expect(report.exitStatus == 1)
    }

    @Test func aFailureElsewhereWinsOverInconclusive() throws {
        var report = CheckReport(lab: "l", file: "f", outcomes: [
            CheckOutcome(name: "a", kind: "send", location: "1:1", status: .inconclusive, summary: "x"),
            CheckOutcome(name: "b", kind: "http", location: "2:1", status: .pass, summary: "y"),
        ])
        #expect(report.exitStatus == 3)
        report.outcomes[1].status = .fail
        #expect(report.exitStatus == 1)
        report.outcomes[1].status = .error
        #expect(report.exitStatus == 1)
    }

    @Test func lossIsCountedPerPointAcrossReadings() {
        // A point first seen after the window counts from zero; one without loss is left out.
        let losses = CaptureLoss.between([Self.ring(dropped: 3)], [Self.ring(dropped: 3), Self.pcap(dropped: 4)])
        #expect(losses.map(\.key) == ["libpcap server:eth0"] && losses.map(\.frames) == [4])
        var outcome = CheckOutcome(name: "n", kind: "ping", location: "1:1", status: .fail, summary: "0 of 1 echo replies")
        outcome.evidence = [.socket]
        CheckEngine.applyCaptureLoss(losses, to: &outcome)
        #expect(outcome.status == .fail && outcome.summary == "0 of 1 echo replies")
        outcome.evidence = [.socket, .capture, .counters]
        CheckEngine.applyCaptureLoss(losses, to: &outcome)
        #expect(outcome.status == .inconclusive)
    }

    @Test func statusShowsEveryCapturePointPerLinkWithZeros() {
        let text = CapturePoint.text([Self.ring(dropped: 0), Self.pcap(dropped: 0),
                                      CapturePoint(method: .libpcap, node: "client",
                                                   ends: [.init(end: "client:eth0", link: "client:eth0 ↔ r1:eth0")],
                                                   recorded: 3, ringDropped: 0, interfaceDropped: 0)])
        #expect(text.contains("LOST: RING FULL"), "\(text)")
        #expect(text.contains("xdp ring of r1 *"), "\(text)")
        #expect(text.contains("no frames lost by the capture"), "\(text)")
        let rows = text.split(separator: "\n").filter { $0.contains("server:eth0") || $0.contains("client:eth0") }
        #expect(rows.count >= 2 && rows.allSatisfy { $0.contains(" 0 ") }, "\(text)")
        #expect(CapturePoint.text(nil).contains("capture: off"))
    }

    /// A walk whose capture lost frames warns that its path may be
    /// incomplete (the command then exits 3); without loss, no warning.
    @Test func aWalkWhoseCaptureLostFramesWarns() throws {
        let topology = try TopologyLoader.load(yaml: Self.yaml, file: "loss.yaml")
        let lossy = LossyBackend(try SimBackend(topology: topology), before: [Self.ring(dropped: 0)], after: [Self.ring(dropped: 3)])
        let walk = try WalkReport.run(backend: lossy, from: "client", to: IPv4Address(10, 0, 2, 2), port: 80, proto: .tcp,
                                      random: SeededRandom(seed: 1))
        #expect(walk.captureLoss.map(\.frames) == [3])
        #expect(walk.text().contains("warning: the path may be incomplete: the capture lost 3 frames during the walk: the XDP capture ring of r1"), "\(walk.text())")
        #expect(try walk.json().contains("captureLoss"))
        let clean = try WalkReport.run(backend: try SimBackend(topology: topology), from: "client", to: IPv4Address(10, 0, 2, 2),
                                       port: 80, proto: .tcp, random: SeededRandom(seed: 1))
        #expect(clean.captureLoss.isEmpty && clean.captureLossWarning == nil && !clean.text().contains("warning"))
        #expect(try !clean.json().contains("captureLoss"))
    }

    /// The simulator records every frame: nothing is ever lost there.
    @Test func theSimulatorNeverLosesFrames() throws {
        let backend = try SimBackend(topology: try TopologyLoader.load(yaml: Self.yaml, file: "loss.yaml"))
        #expect(try backend.captureCounters().isEmpty)
    }
}
