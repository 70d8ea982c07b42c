import ArgumentParser
import Foundation
import Glibc
import Lab
import LinuxNet

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command inside a node's network namespace.",
        discussion: """
        The command is run as given (argv), without a shell: no word splitting, globbing, pipes or \
        redirections. With --shell the words after -- are joined with spaces into one command line \
        that /bin/sh -c runs (pipes, redirections, $VARIABLES), e.g. \
        wirelab exec --shell client -- 'ping -c1 10.0.0.1 | tail -1'. It runs as root in the node's namespace.
        """)

    @Option(help: "The lab (default: the only lab that is up).") var lab: String?
    @Flag(help: "Run the words after -- as one command line with /bin/sh -c.") var shell = false
    @Argument(help: "The node.") var node: String
    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []
    @OptionGroup var state: StateOptions

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --, e.g. wirelab exec client -- ping 10.0.0.1") }
    }

    /// What is executed: the command itself, or `/bin/sh -c "<words>"`.
    var argv: [String] { shell ? ["/bin/sh", "-c", command.joined(separator: " ")] : command }

    func run() throws {
        let labName = try resolveLab(lab, store: state.store)
        let labState = try state.store.load(lab: labName)
        let namespace = LabStore.namespaceName(lab: labName, node: node)
        guard labState.namespaces.contains(namespace) else {
            let nodes = labState.namespaces.map { String($0.dropFirst("wl-\(labName)-".count)) }
            printError("wirelab exec: lab \(labName) has no node \(node); nodes: \(nodes.joined(separator: ", "))")
            throw ExitCode(1)
        }
        // Enter the namespace on this thread and replace the process: the
        // command's exit status and terminal are the user's directly.
        try NetworkNamespace.enterOnCurrentThread(namespace)
        closeInheritedDescriptors()
        let argv = self.argv
        execvp(argv[0], argv.map { strdup($0) } + [nil])
        printError("wirelab exec: \(argv[0]): \(String(cString: strerror(errno)))")
        throw ExitCode(127)
    }
}

/// Closes every descriptor above stderr before exec: the command (and any
/// daemon it starts) must not hold our caller's pipes or sockets open, or
/// the caller waits for an EOF that never comes.
func closeInheritedDescriptors() {
    let fds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
    for fd in fds where fd > 2 { close(fd) }
}
