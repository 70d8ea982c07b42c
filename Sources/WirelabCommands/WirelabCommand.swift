import ArgumentParser

/// The `wirelab` command: one subcommand per verb, one file per verb.
public struct WirelabCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wirelab",
        abstract: "A Swift software router / switch / load-balancer lab for Linux.",
        subcommands: []
    )
    public init() {}
}
