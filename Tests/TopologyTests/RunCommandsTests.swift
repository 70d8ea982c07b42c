// `run:` commands are the code in a topology file: where each `run:` is
// written, and the refusals `--no-run` prints.
import Testing
@testable import Topology

@Suite struct RunCommandsTests {
    static let yaml = """
        name: runs
        nodes:
          h1:
            kind: host
            interfaces: { eth0: { ip: 10.0.0.1/24 } }
            run: [ "sysctl -w net.ipv4.ip_forward=1", "touch /tmp/x" ]
          r: { kind: router, interfaces: { eth0: { ip: 10.0.0.254/24 } }, run: "ip -s link" }
          h2: { kind: host, interfaces: { eth0: { ip: 10.0.0.2/24 } }, run: [] }
          sw: { kind: switch }
        links:
          - [ h1:eth0, sw:p1 ]
          - [ r:eth0, sw:p2 ]
          - [ h2:eth0, sw:p3 ]
        """

    @Test func everyRunIsFoundWhereItIsWritten() throws {
        let topology = try TopologyLoader.load(yaml: Self.yaml, file: "t.yaml")
        let runs = topology.runCommands
        #expect(runs.map(\.node) == ["h1", "r"])
        #expect(runs.map(\.location.lineColumn) == ["6:5", "7:67"])
        #expect(runs[0].commands == ["sysctl -w net.ipv4.ip_forward=1", "touch /tmp/x"])
        #expect(topology.runRefusals().map(\.description) == [
            "t.yaml:6:5: error: node 'h1' has 2 run: commands (\"sysctl -w net.ipv4.ip_forward=1\", …), which would run as root in its namespace; --no-run refuses files that run commands; remove 'run:' from the file, or leave out --no-run for a file you trust",
            "t.yaml:7:67: error: node 'r' has 1 run: command (\"ip -s link\"), which would run as root in its namespace; --no-run refuses files that run commands; remove 'run:' from the file, or leave out --no-run for a file you trust",
        ])
    }

    @Test func aFileWithoutRunHasNothingToRefuse() throws {
        let topology = try TopologyLoader.load(path: Paths.topologies.appendingPathComponent("lvs-dr.yaml").path)
        #expect(topology.runCommands.isEmpty && topology.runRefusals().isEmpty)
    }
}
