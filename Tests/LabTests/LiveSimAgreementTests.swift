// Live and sim agree: for every example topology and every `send` check in
// it, the walk on the live lab (namespaces, veths, the Swift data plane,
// kernel hosts) and the walk in the simulator — the same probe, from the
// same seeded generator — cross the same links in the same order, between
// the same interfaces, with the same header fields at every hop (MACs, IPs,
// ports, TTL, protocol, inner IPs); timestamps aside.
import Foundation
import Testing
import Topology
import Wire
@testable import Lab

@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct LiveSimAgreementTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var file: String
        var check: String
        var index: Int
        var from: String
        var to: IPv4Address
        var port: Int?
        var proto: ProbeProtocol
        var testDescription: String { "\(file): \(check)" }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        for file in Repository.exampleFiles {
            guard let t = try? TopologyLoader.load(path: Repository.root.appendingPathComponent("Topologies/\(file)").path) else { continue }
            for check in t.checks {
                guard case let .send(s, _) = check.kind else { continue }
                guard !sendsByECMP(t, from: s.from, to: s.to) else { continue }
                out.append(Case(file: file, check: check.name, index: out.count, from: s.from, to: s.to, port: s.port, proto: s.proto))
            }
        }
        return out
    }()

    /// Whether the probe's host reaches `to` by an ECMP route: Linux picks
    /// the next hop with a hash keyed at random per boot, the host model
    /// takes the first one, so such a walk cannot be compared hop by hop.
    static func sendsByECMP(_ t: ResolvedTopology, from: String, to: IPv4Address) -> Bool {
        let routes = t.node(named: from)?.routes.filter { $0.destination.contains(to) } ?? []
        return (routes.max { $0.destination.length < $1.destination.length }?.nextHops.count ?? 0) > 1
    }

    @Test func everyExampleHasASendCheckToCompare() throws {
        let files = Set(Self.cases.map(\.file))
        for f in Repository.exampleFiles where !files.contains(f) {
            // Only a file whose every send check leaves its host by ECMP may have none here.
            let t = try TopologyLoader.load(path: Repository.root.appendingPathComponent("Topologies/\(f)").path)
            let sends = t.checks.compactMap { c -> Bool? in
                guard case let .send(s, _) = c.kind else { return nil }
                return Self.sendsByECMP(t, from: s.from, to: s.to)
            }
            #expect(!sends.isEmpty && sends.allSatisfy { $0 }, "\(f) has no send check to compare")
            if !sends.isEmpty { print("\(f): not compared live against sim: its probes leave their host by an ECMP route (Linux hashes with a per-boot key)") }
        }
    }

    /// The hop sequence and header fields as text, one line per hop, so a
    /// difference reads as a line.
    /// Every BGP session of the lab Established and every static-route BFD
    /// session Up, as `status --json` shows them.
    static func controlPlanesSettled(_ lab: String) -> Bool {
        guard let r = try? Harness.wl("status", lab, "--json"), r.status == 0,
              let object = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              let nodes = (object["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] else { return false }
        for node in nodes {
            let sessions = (node["bgp"] as? [String: Any])?["sessions"] as? [[String: Any]] ?? []
            if sessions.contains(where: { $0["state"] as? String != "Established" }) { return false }
            let bfd = node["bfd"] as? [[String: Any]] ?? []
            if bfd.contains(where: { $0["role"] as? String == "static" && $0["state"] as? String != "Up" }) { return false }
        }
        return true
    }

    static func lines(_ path: ProbePath) -> [String] {
        path.hops.map { h in
            let fields = HopField.allCases.compactMap { f in h.value(f).map { "\(f.rawValue)=\($0)" } }
            return "\(h.number). \(h.direction.rawValue) \(h.sender) → \(h.receiver) [\(h.linkName)] " + fields.joined(separator: " ")
        }
    }

    @Test(arguments: cases)
    func liveAndSimWalksAgree(_ c: Case) throws {
        let lab = Harness.lab("wa\(c.index)-")   // "wa3-12345": no clash between case 1 and 13
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wl-agree-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // The example renamed to this process's lab: MACs derive from the
        // lab name, so both sides load this same file.
        var yaml = try String(contentsOf: Repository.root.appendingPathComponent("Topologies/\(c.file)"), encoding: .utf8)
        let stem = (c.file as NSString).deletingPathExtension
        #expect(yaml.contains("\nname: \(stem)"))
        yaml = yaml.replacingOccurrences(of: "\nname: \(stem)", with: "\nname: \(lab)")
        let file = dir.appendingPathComponent("\(stem).yaml").path
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let topology = try TopologyLoader.load(path: file)
        #expect(topology.name == lab)

        let sim = try WalkReport.run(backend: try SimBackend(topology: topology), from: c.from, to: c.to, port: c.port, proto: c.proto,
                                     random: SeededRandom(seed: WalkReport.simulatorSeed))

        // (A lab of kernel hosts only, like two-hosts, has no daemon: the
        // live backend records its links itself.)
        let deployer = LabDeployer(store: LabStore(), executable: Harness.wirelab,
                                   captureRoot: dir.appendingPathComponent("Captures").path, progress: { _ in })
        let backend = LiveBackend(topology: topology, deployer: deployer)
        defer {
            backend.stop()
            #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "the lab is gone")
        }
        let started = Date()
        try backend.start()
        // The simulator walks once every BGP session and BFD session is up
        // (SimControlPlane); live, `up` returns before they are, and a
        // static ECMP group carries only the next hops already Up: wait.
        if topology.nodes.contains(where: \.runsControlPlane) {
            let settled = Harness.waitUntil(limit: 30) { Self.controlPlanesSettled(lab) }
            #expect(settled, "BGP sessions Established and static BFD next hops Up before the live walk")
        }
        let live = try WalkReport.run(backend: backend, from: c.from, to: c.to, port: c.port, proto: c.proto,
                                      random: SeededRandom(seed: WalkReport.simulatorSeed))
        let seconds = Date().timeIntervalSince(started)

        #expect(live.probe == sim.probe, "the same probe on both sides")
        let l = Self.lines(live.path), s = Self.lines(sim.path)
        #expect(!s.isEmpty && !sim.path.reply.isEmpty, "the simulator walk reaches the target and back")
        if l != s {
            let i = (0..<min(l.count, s.count)).first { l[$0] != s[$0] } ?? min(l.count, s.count)
            Issue.record("""
                \(c.file) / \(c.check): live and sim differ first at hop \(i + 1) (live \(l.count) hops, sim \(s.count))
                  live: \(i < l.count ? l[i] : "<no hop>")
                  sim:  \(i < s.count ? s[i] : "<no hop>")
                live walk:
                \(live.text())
                sim walk:
                \(sim.text())
                """)
        }
        // The reasons derive from the same fields, so they agree too.
        #expect(live.path.hops.map(\.reason) == sim.path.hops.map(\.reason))
        print("live-vs-sim \(c.file) / \(c.check): \(l.count) hops, live \(String(format: "%.1f", seconds)) s")
    }
}
