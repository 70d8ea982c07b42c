// scripts/gen-scale-topology.py: its output is what Topologies/scale-100.yaml
// holds, and larger labs from it load too.
import Foundation
import Testing
@testable import Topology

func runGenerator(_ arguments: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", Paths.root.appendingPathComponent("scripts/gen-scale-topology.py").path] + arguments
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    return String(decoding: data, as: UTF8.self)
}

@Suite struct GeneratorTests {
    @Test func theCommittedScaleExampleIsTheGeneratorsOutput() throws {
        let committed = try String(contentsOf: Paths.topologies.appendingPathComponent("scale-100.yaml"), encoding: .utf8)
        #expect(try runGenerator([]) == committed, "regenerate: python3 scripts/gen-scale-topology.py > Topologies/scale-100.yaml")
    }

    @Test func aLabOfOverAThousandNodesLoads() throws {
        let yaml = try runGenerator(["--subnets", "120", "--hosts", "9", "--name", "big"])
        let clock = ContinuousClock()
        var topology: ResolvedTopology?
        let elapsed = try clock.measure { topology = try TopologyLoader.load(yaml: yaml, file: "big.yaml") }
        let t = try #require(topology)
        #expect(t.nodes.count == 120 * 9 + 2 * 120 + 1)
        #expect(t.segments.count == 240)
        print("loaded \(t.nodes.count) nodes, \(t.links.count) links in \(elapsed)")
    }
}
