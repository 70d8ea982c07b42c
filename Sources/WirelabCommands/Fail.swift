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
        let lab = try resolveLab(name, store: state.store)
        do {
            let (end, peer) = try LabLinks(store: state.store).fail(lab: lab, endpoint: endpoint)
            print("link \(end) — \(peer) failed (both ends down)")
        } catch {
            printError("wirelab fail: \(error)")
            throw ExitCode(1)
        }
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
        let lab = try resolveLab(name, store: state.store)
        do {
            let (end, peer) = try LabLinks(store: state.store).heal(lab: lab, endpoint: endpoint)
            print("link \(end) — \(peer) healed (both ends up)")
        } catch {
            printError("wirelab heal: \(error)")
            throw ExitCode(1)
        }
    }
}

func validateEndpoint(_ text: String) throws {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw ValidationError("'\(text)' is not NODE:IFACE (failing a whole node is not built yet)")
    }
}
