import ArgumentParser
import Lab

/// The `wirelab` command: one subcommand per verb, one file per verb.
public struct WirelabCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wirelab",
        abstract: "A Swift software router / switch / load-balancer lab for Linux.",
        discussion: """
        A topology file describes hosts, learning switches, routers and LVS-style \
        directors; `wirelab up FILE` builds it from network namespaces and veth pairs.
        """,
        version: WirelabVersion.number,
        subcommands: [Up.self, Down.self, Status.self, Exec.self, CheckCommand.self, WalkCommand.self, Sim.self, GoldenCommand.self,
                      Graph.self, PlanCommand.self, Serve.self, Bench.self, LVS.self, Fail.self, Heal.self, DrillCommand.self, Daemon.self, DrillLoadCommand.self]
    )
    public init() {}
}

/// Options every verb that touches lab state shares.
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Where lab state lives.", valueName: "dir"))
    var stateDir: String = LabStore.defaultRoot

    var store: LabStore { LabStore(root: stateDir) }
}
