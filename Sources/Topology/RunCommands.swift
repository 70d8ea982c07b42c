// The one part of a topology file that is code: `run:` commands, which
// `up` (and `check`, `walk`) run as root with /bin/sh -c inside the node's
// namespace. `--no-run` (check, sim) refuses a file that has any, naming
// where each is written, so CI can take topology files from untrusted
// hands.

extension ResolvedTopology {
    /// Every node's `run:` commands and where its `run:` is written, in
    /// file order. Nodes with no commands (or `run: []`) are left out.
    public var runCommands: [(node: String, location: SourceLocation, commands: [String])] {
        nodes.filter { !$0.run.isEmpty }.map { ($0.name, $0.runLocation ?? $0.location, $0.run) }
            .sorted { $0.1 < $1.1 }
    }

    /// One error per `run:` of the file, for `--no-run`: empty when the
    /// file runs no commands.
    public func runRefusals(option: String = "--no-run") -> [TopologyError] {
        runCommands.map { run in
            let count = run.commands.count
            let first = run.commands[0].count > 40 ? String(run.commands[0].prefix(39)) + "…" : run.commands[0]
            let more = count > 1 ? ", …" : ""
            return TopologyError(
                location: run.location,
                message: "node '\(run.node)' has \(count) run: command\(count == 1 ? "" : "s") (\"\(first)\"\(more)), which would run as root in its namespace; \(option) refuses files that run commands",
                hint: "remove 'run:' from the file, or leave out \(option) for a file you trust")
        }
    }
}
