import ArgumentParser
import Lab

/// The lab's data plane process; `up` starts it and `down` stops it.
struct Daemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a lab's data plane (started by `up`, stopped by `down`).", shouldDisplay: false)

    @Argument(help: "The lab's name.") var lab: String
    @OptionGroup var state: StateOptions

    func run() throws {
        do {
            try LabDaemon(lab: lab, store: state.store).run()
        } catch {
            printError("wirelab daemon: \(error)")
            throw ExitCode(1)
        }
    }
}
