import ArgumentParser
import Lab
import Topology

extension TopologyGraph.Format: ExpressibleByArgument {}

struct Graph: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a picture of a topology (Graphviz dot or Mermaid).")

    @Argument(help: "The topology file.") var file: String
    @Option(help: "dot | mermaid") var format: TopologyGraph.Format = .dot

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        print(TopologyGraph.render(topology, format: format), terminator: "")
    }
}

/// Loads a topology file; on errors prints every one (file:line:column) and
/// exits with status 2 — nothing has been created at that point.
func loadTopologyOrExit(_ path: String) throws -> ResolvedTopology {
    do {
        return try TopologyLoader.load(path: path)
    } catch let errors as TopologyErrors {
        printError(errors.description)
        throw ExitCode(2)
    } catch {
        printError("\(path): error: \(error)")
        throw ExitCode(2)
    }
}
