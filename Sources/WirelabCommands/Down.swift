import ArgumentParser
import Lab

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove everything a lab made — also after a crash.",
        discussion: "Only objects recorded in the lab's state file are removed; nothing else is touched.")

    @Argument(help: "The lab's name.") var name: String?
    @Flag(help: "Remove every lab that has a state file.") var all = false
    @OptionGroup var state: StateOptions

    func validate() throws {
        if all == (name != nil) { throw ValidationError("give a lab NAME or --all") }
    }

    func run() throws {
        let deployer = LabDeployer(store: state.store, executable: currentExecutable(),
                                   progress: { printError("wirelab: \($0)") })
        let labs = all ? state.store.labs() : [name!]
        if all && labs.isEmpty { printError("wirelab down: no labs"); return }
        var failed = false
        for lab in labs {
            do {
                try deployer.down(lab: lab)
                print("lab \(lab) removed")
            } catch {
                printError("wirelab down \(lab): \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
