import Foundation
import Testing

/// `walk --fail`: the path a probe takes once a node or link has failed.
/// On the simulator, so no root; ecmp.yaml's flow takes r2 when all is up.
@Suite struct WalkFailureTests {
    static let file = Repository.root.appendingPathComponent("Topologies/ecmp.yaml").path

    func hops(_ extra: [String]) throws -> (status: Int32, hops: [String], output: String) {
        let r = try Harness.run(Harness.wirelab, ["walk", "--sim", Self.file, "--from", "client", "--to", "10.0.2.2:80"] + extra)
        let hops = r.stdout.split(separator: "\n").filter { $0.range(of: #"^ *\d+\. "#, options: .regularExpression) != nil }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        return (r.status, hops, r.combined)
    }

    @Test func aFailedMiddleRouterMovesTheFlowToTheOther() throws {
        let up = try hops([])
        #expect(up.status == 0 && up.hops.contains { $0.contains("r2 (in eth0") })
        let r2Down = try hops(["--fail", "r2"])
        #expect(r2Down.status == 0, "\(r2Down.output)")
        #expect(r2Down.hops.contains { $0.contains("r3 (in eth0") } && !r2Down.hops.contains { $0.hasPrefix("r2") || $0.contains(" r2 (") })
        // A link failed by one end does the same.
        let linkDown = try hops(["--fail", "r1:eth1"])
        #expect(linkDown.status == 0 && linkDown.hops.contains { $0.contains("r3 (in eth0") })
        // Both paths down: nothing reaches the server.
        let both = try hops(["--fail", "r2", "--fail", "r3"])
        #expect(!both.hops.contains { $0.contains("server (in") })
    }

    @Test func unknownTargetsAreRefusedByName() throws {
        let node = try hops(["--fail", "r9"])
        #expect(node.status != 0 && node.output.contains("no node 'r9'"))
        let link = try hops(["--fail", "r1:eth7"])
        #expect(link.status != 0 && link.output.contains("eth7") && link.output.contains("eth0, eth1, eth2"))
    }
}
