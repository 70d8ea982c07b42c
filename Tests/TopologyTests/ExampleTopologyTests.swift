// Every shipped example in Topologies/ loads without errors and validates
// against the JSON schema.
import Foundation
import Testing
@testable import Topology

@Suite struct ExampleTopologyTests {
    static let examples = Paths.files(in: Paths.topologies, ext: "yaml").map(\.lastPathComponent)

    @Test func theExpectedExamplesShip() {
        for name in ["two-hosts.yaml", "switch.yaml", "ecmp.yaml", "lvs-dr.yaml", "lvs-dr-classic.yaml", "lvs-nat.yaml", "lvs-tun.yaml", "lvs-fullnat.yaml", "scale-100.yaml"] {
            #expect(Self.examples.contains(name), "Topologies/\(name) is missing")
        }
    }

    @Test(arguments: examples)
    func loads(_ name: String) throws {
        let path = Paths.topologies.appendingPathComponent(name).path
        do {
            let t = try TopologyLoader.load(path: path)
            #expect(!t.nodes.isEmpty)
            #expect(t.file == path)
        } catch let e as TopologyErrors {
            Issue.record("\(name) does not load:\n\(e)")
        }
    }

    @Test(arguments: examples)
    func namesTheSchemaForEditors(_ name: String) throws {
        let text = try String(contentsOf: Paths.topologies.appendingPathComponent(name), encoding: .utf8)
        #expect(text.hasPrefix("# yaml-language-server: $schema=../schema/wirelab-topology.schema.json\n"))
    }
}
