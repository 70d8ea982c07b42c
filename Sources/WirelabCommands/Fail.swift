import ArgumentParser
import Lab

/// `wirelab fail LAB NODE:IFACE`: a failure drill on a link.
struct Fail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fail a link: both veth ends go down (routers drop next hops through it).",
        discussion: """
        NODE:IFACE names either end of a link; both ends are set down inside their \
        namespaces and the link is recorded as failed in the lab's state (`status` lists it; \
        `heal` brings it back). Works while traffic runs. Node failure (a bare NODE) is not built yet.
        """)

    @Argument(help: "The lab's name.") var name: String
    @Argument(help: ArgumentHelp("One end of the link.", valueName: "node:iface")) var endpoint: String
    @OptionGroup var state: StateOptions

    func validate() throws { try validateEndpoint(endpoint) }

    func run() throws {
        try changeLink(verb: "fail", name, endpoint, state, done: "failed (both ends down)") { try $0.fail(lab: $1, endpoint: $2) }
    }
}

/// `wirelab heal LAB NODE:IFACE`: undoes `fail`.
struct Heal: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Heal a failed link: both veth ends come back up.",
        discussion: "NODE:IFACE names either end of a link `wirelab fail` took down. Node failure is not built yet.")

    @Argument(help: "The lab's name.") var name: String
    @Argument(help: ArgumentHelp("One end of the link.", valueName: "node:iface")) var endpoint: String
    @OptionGroup var state: StateOptions

    func validate() throws { try validateEndpoint(endpoint) }

    func run() throws {
        try changeLink(verb: "heal", name, endpoint, state, done: "healed (both ends up)") { try $0.heal(lab: $1, endpoint: $2) }
    }
}

/// What `fail` and `heal` share: find the lab, change the link, say what was done or why not.
func changeLink<End>(verb: String, _ name: String, _ endpoint: String, _ state: StateOptions, done: String,
                     _ change: (LabLinks, String, String) throws -> (End, End)) throws {
    let lab = try resolveLab(name, store: state.store)
    do {
        let (end, peer) = try change(LabLinks(store: state.store), lab, endpoint)
        print("link \(end) — \(peer) \(done)")
    } catch {
        printError("wirelab \(verb): \(error)")
        throw ExitCode(1)
    }
}

func validateEndpoint(_ text: String) throws {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw ValidationError("'\(text)' is not NODE:IFACE (failing a whole node is not built yet)")
    }
}
