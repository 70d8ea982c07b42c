import ArgumentParser
import Topology

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the capacity a topology offers, in normal operation and under every single failure.",
        discussion: """
        Pure computation on the file: no root, nothing created. Capacities come from bandwidth: on links and \
        capacity: on nodes; where none applies the result is 'unknown'. The model is described in docs/plan.md.
        """)

    @Argument(help: "The topology file.") var file: String
    @Flag(help: "Print JSON (rates in bits per second) instead of tables.") var json = false
    @Option(help: ArgumentHelp("Bytes per packet, to turn pps: capacities into bits per second.", valueName: "bytes"))
    var packetSize: Int = CapacityPlan.defaultPacketBytes

    func validate() throws {
        guard (64...65535).contains(packetSize) else { throw ValidationError("--packet-size must be 64...65535 bytes") }
    }

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        let plan = CapacityPlan(topology, packetBytes: packetSize)
        print(json ? plan.json : plan.text, terminator: "")
    }
}
