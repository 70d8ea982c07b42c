import ArgumentParser
import Lab

struct LVS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lvs",
        abstract: "A lab's directors: services, reals, weights, active/inactive connections (like ipvsadm -Ln).")

    @Argument(help: "The lab's name (default: the only lab that is up).") var name: String?
    @Argument(help: "Only this director node.") var node: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var state: StateOptions

    func run() throws {
        let lab = try resolveLab(name, store: state.store)
        guard let socket = try state.store.load(lab: lab).controlSocket else {
            printError("wirelab lvs: lab \(lab) has no data plane (no switch, router or director)")
            throw ExitCode(1)
        }
        var status = try ControlClient(path: socket).lvs()
        if let node { status.directors = status.directors.filter { $0.node == node } }
        if status.directors.isEmpty {
            printError("wirelab lvs: lab \(lab) has no director" + (node.map { " named \($0)" } ?? ""))
            throw ExitCode(1)
        }
        if json {
            print(try status.jsonString())
        } else {
            for d in status.directors {
                print("director \(d.node)\n\(d.listing)")
                if let sync = d.sync {
                    print("Sync: " + sync.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                }
                if let groups = d.vrrp, !groups.isEmpty { print(VRRPGroupStatus.table(groups.map { (d.node, $0) })) }
            }
        }
    }
}
