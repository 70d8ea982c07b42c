import ArgumentParser
import Lab

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Nodes, links, per-port counters, drops by reason, and what each capture point lost.")

    @Argument(help: "The lab's name (default: the only lab that is up).") var name: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var state: StateOptions

    func run() throws {
        let lab = try resolveLab(name, store: state.store)
        let report = try LabInspector(store: state.store).status(lab: lab)
        print(json ? try report.jsonString() : report.text(), terminator: json ? "\n" : "")
    }
}

/// The named lab, or the only one up when no name is given.
func resolveLab(_ name: String?, store: LabStore) throws -> String {
    if let name {
        guard store.exists(lab: name) else {
            let up = store.labs()
            printError("wirelab: no lab named \(name)" + (up.isEmpty ? " (no lab is up)" : "; labs up: \(up.joined(separator: ", "))"))
            throw ExitCode(1)
        }
        return name
    }
    let labs = store.labs()
    switch labs.count {
    case 1: return labs[0]
    case 0: printError("wirelab: no lab is up"); throw ExitCode(1)
    default: printError("wirelab: several labs are up (\(labs.joined(separator: ", "))); name one"); throw ExitCode(1)
    }
}
