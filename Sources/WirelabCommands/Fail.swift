import ArgumentParser
import Lab

/// `wirelab fail LAB NODE|NODE:IFACE`: a failure drill on a node or a link.
struct Fail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fail a node (its power cut) or a link (both veth ends down).",
        discussion: """
        NODE: as if its power were cut. A switch, router or director stops sending and receiving on \
        all its ports (the data plane discards what arrives and sends nothing, not even a goodbye); a \
        host's processes are frozen (SIGSTOP). Either way all its interfaces go down, so its peers lose \
        carrier. NODE:IFACE names either end of a link; both ends are set down inside their namespaces. \
        Failures are recorded in the lab's state (`status` lists them; `heal` brings them back; `down` \
        still removes everything). Works while traffic runs.
        """)

    @Argument(help: "The lab's name.") var name: String
    @Argument(help: ArgumentHelp("A node, or one end of a link.", valueName: "node|node:iface")) var target: String
    @OptionGroup var state: StateOptions

    func validate() throws { try validateTarget(target) }

    func run() throws {
        try change(verb: "fail", name, target, state,
                   node: { try $0.fail(lab: $1, node: $2); return "node \($2) failed (power cut, interfaces down)" },
                   link: { let (end, peer) = try $0.fail(lab: $1, endpoint: $2); return "link \(end) — \(peer) failed (both ends down)" })
    }
}

/// `wirelab heal LAB NODE|NODE:IFACE`: undoes `fail`.
struct Heal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Heal a failed node or link: back to where it was before.",
        discussion: """
        NODE: its interfaces come back up (but those of a link failed on its own), its routes are \
        restored, a host's processes resume (SIGCONT) and a switch's, router's or director's data plane \
        runs again with the state it had. NODE:IFACE: both ends of the link come back up (an end on a \
        failed node stays down until the node heals).
        """)

    @Argument(help: "The lab's name.") var name: String
    @Argument(help: ArgumentHelp("A failed node, or one end of a failed link.", valueName: "node|node:iface")) var target: String
    @OptionGroup var state: StateOptions

    func validate() throws { try validateTarget(target) }

    func run() throws {
        try change(verb: "heal", name, target, state,
                   node: { try $0.heal(lab: $1, node: $2); return "node \($2) healed (interfaces up, running again)" },
                   link: { let (end, peer) = try $0.heal(lab: $1, endpoint: $2); return "link \(end) — \(peer) healed (both ends up)" })
    }
}

/// What `fail` and `heal` share: find the lab, change the node or link, say what was done or why not.
func change(verb: String, _ name: String, _ target: String, _ state: StateOptions,
            node: (LabNodes, String, String) throws -> String, link: (LabLinks, String, String) throws -> String) throws {
    let lab = try resolveLab(name, store: state.store)
    do {
        let done = target.contains(":") ? try link(LabLinks(store: state.store), lab, target)
                                        : try node(LabNodes(store: state.store), lab, target)
        print(done)
    } catch {
        printError("wirelab \(verb): \(error)")
        throw ExitCode(1)
    }
}

func validateTarget(_ text: String) throws {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard !text.isEmpty, parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }) else {
        throw ValidationError("'\(text)' is neither NODE nor NODE:IFACE")
    }
}
