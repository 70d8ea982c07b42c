// `wirelab fail` / `heal` argument and state errors, without root: a lab
// recorded in a temporary --state-dir (state + topology copy, no namespaces).
import Foundation
import Testing
import Lab

@Suite struct LinkFailureCommandTests {
    static let topology = """
        name: wllfcli
        nodes:
          h1: { kind: host, interfaces: { e0: { ip: 10.9.0.1/24 } } }
          h2: { kind: host, interfaces: { e0: { ip: 10.9.0.2/24 } } }
        links:
          - [ h1:e0, h2:e0 ]
        """

    /// A state dir holding lab `wllfcli` (failed links as given).
    static func stateDir(failed: [String] = [], failedNodes: [String] = []) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("wllf-\(UUID().uuidString)").path
        let store = LabStore(root: root)
        var state = LabState(lab: "wllfcli", file: "topo.yaml")
        state.phase = "up"
        state.failedLinks = failed
        state.failedNodes = failedNodes
        try store.save(state)
        try topology.write(toFile: store.topologyCopyPath(lab: "wllfcli"), atomically: true, encoding: .utf8)
        return root
    }

    @Test(arguments: [["fail"], ["fail", "wllfcli"], ["heal", "wllfcli", ":e0"], ["fail", "wllfcli", "h1:"], ["heal", "wllfcli", "a:b:c"], ["fail", "wllfcli", ""]])
    func malformedArgumentsAreUsageErrors(_ args: [String]) throws {
        let r = try Harness.run(Harness.wirelab, args)
        #expect(r.status == 64, "\(args): \(r.combined)")
    }

    /// A bare NODE is a node failure: its errors, before anything is touched.
    @Test func nodeFailureErrorsNameTheProblem() throws {
        let dir = try Self.stateDir(failedNodes: ["h2"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let unknown = try Harness.run(Harness.wirelab, ["fail", "wllfcli", "h9", "--state-dir", dir])
        #expect(unknown.status == 1 && unknown.stderr.contains("no node h9; nodes: h1, h2"), "\(unknown.combined)")
        let again = try Harness.run(Harness.wirelab, ["fail", "wllfcli", "h2", "--state-dir", dir])
        #expect(again.status == 1 && again.stderr.contains("node h2 is already failed"), "\(again.combined)")
        let notFailed = try Harness.run(Harness.wirelab, ["heal", "wllfcli", "h1", "--state-dir", dir])
        #expect(notFailed.status == 1 && notFailed.stderr.contains("node h1 is not failed (failed: h2)"), "\(notFailed.combined)")
        #expect(try LabStore(root: dir).load(lab: "wllfcli").failedNodes == ["h2"])
    }

    @Test func unknownLabNodeOrInterfaceIsNamed() throws {
        let dir = try Self.stateDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let noLab = try Harness.run(Harness.wirelab, ["fail", "wllfnone", "h1:e0", "--state-dir", dir])
        #expect(noLab.status == 1 && noLab.stderr.contains("no lab named wllfnone"), "\(noLab.combined)")
        let noNode = try Harness.run(Harness.wirelab, ["fail", "wllfcli", "h9:e0", "--state-dir", dir])
        #expect(noNode.status == 1 && noNode.stderr.contains("no node h9"), "\(noNode.combined)")
        let noIface = try Harness.run(Harness.wirelab, ["heal", "wllfcli", "h2:e1", "--state-dir", dir])
        #expect(noIface.status == 1 && noIface.stderr.contains("no linked interface e1"), "\(noIface.combined)")
    }

    @Test func failingAFailedLinkOrHealingAnUpOneIsRefused() throws {
        let dir = try Self.stateDir(failed: ["h2:e0"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Named by its other end: the same link.
        let again = try Harness.run(Harness.wirelab, ["fail", "wllfcli", "h1:e0", "--state-dir", dir])
        #expect(again.status == 1 && again.stderr.contains("already failed"), "\(again.combined)")
        let clean = try Self.stateDir()
        defer { try? FileManager.default.removeItem(atPath: clean) }
        let heal = try Harness.run(Harness.wirelab, ["heal", "wllfcli", "h1:e0", "--state-dir", clean])
        #expect(heal.status == 1 && heal.stderr.contains("is not failed"), "\(heal.combined)")
        // Nothing was changed by the refusals.
        #expect(try LabStore(root: dir).load(lab: "wllfcli").failedLinks == ["h2:e0"])
    }

    @Test func stateWithoutFailedLinksStillLoads() throws {
        let json = #"{"lab":"x","file":"f","createdAt":"2026-01-01T00:00:00Z","phase":"up","namespaces":[],"processes":[]}"#
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let state = try decoder.decode(LabState.self, from: Data(json.utf8))
        #expect(state.failedLinks.isEmpty && state.failedNodes.isEmpty && state.frozenProcesses.isEmpty)
    }
}
