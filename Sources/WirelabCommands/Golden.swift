import ArgumentParser
import Foundation
import Lab

/// `wirelab golden`: regenerates (or, with --check, compares) the golden
/// walks under Captures/golden/ — one `walk --sim` text and pcapng per
/// `send` check of every Topologies/*.yaml. Hidden: a maintainer's tool.
struct GoldenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "golden",
        abstract: "Regenerate the golden walks in Captures/golden/ from every send check in Topologies/.",
        discussion: """
        For each Topologies/*.yaml and each of its `send` checks, writes what \
        `wirelab walk FILE --from … --to … --proto … --sim` prints to \
        Captures/golden/<topology>--<check>.txt, its --pcap output to the same name with .pcapng and \
        its --svg picture with .svg, removes golden files no check produces any more, and refreshes \
        the walks quoted in docs/*.md (a `<!-- golden: NAME.txt -->` line before a ```text block, \
        and the walk's picture on the line after the block). --check writes nothing and exits 1 \
        naming every file that differs (and its first differing line).
        """,
        shouldDisplay: false)

    @Option(help: ArgumentHelp("The repository (holding Topologies/ and Captures/golden/).", valueName: "dir"))
    var repository = "."
    @Flag(help: "Compare instead of writing; exit 1 on any difference.") var check = false

    func run() throws {
        let walks: [GoldenWalk]
        do { walks = try GoldenWalks.all(repository: repository) } catch {
            printError("wirelab golden: \(error)")
            throw ExitCode(1)
        }
        let dir = (repository as NSString).appendingPathComponent(GoldenWalks.directory)
        if check {
            let byName = Dictionary(walks.map { ($0.textFile, $0.text) }, uniquingKeysWith: { a, _ in a })
            let diffs = GoldenWalks.compare(walks, directory: dir)
                + GoldenQuotes.differences(docsDirectory: (repository as NSString).appendingPathComponent("docs")) { byName[$0] }
            for d in diffs { printError(d.description) }
            if !diffs.isEmpty {
                printError("wirelab golden: \(diffs.count) difference(s); regenerate with `wirelab golden` if they are intended")
                throw ExitCode(1)
            }
            print("\(walks.count) golden walks (\(walks.reduce(0) { $0 + $1.fileNames.count }) files) match")
        } else {
            do { try GoldenWalks.write(walks, directory: dir) } catch {
                printError("wirelab golden: writing \(dir): \(error)")
                throw ExitCode(1)
            }
            let docs = (repository as NSString).appendingPathComponent("docs")
            let byName = Dictionary(walks.map { ($0.textFile, $0.text) }, uniquingKeysWith: { a, _ in a })
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: docs)) ?? []).sorted() where name.hasSuffix(".md") {
                let path = (docs as NSString).appendingPathComponent(name)
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                let refreshed = GoldenQuotes.refresh(text) { byName[$0] }
                if refreshed != text {
                    try refreshed.write(toFile: path, atomically: true, encoding: .utf8)
                    print("docs/\(name): quoted walks refreshed")
                }
            }
            for w in walks { print("\(GoldenWalks.directory)/\(w.baseName).{txt,pcapng,svg}  \(w.report.path.hops.count) hops  ← \(w.command)") }
        }
    }
}
