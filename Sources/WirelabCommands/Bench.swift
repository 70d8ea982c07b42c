import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Lab

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks of wirelab beside the kernel's own tools.",
        subcommands: [BenchDeploy.self])
}

struct BenchDeploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Time `up` and `down` of a topology beside the same lab built by a script of `ip` commands.",
        discussion: """
        Each run builds and removes the lab twice: through rtnetlink as `wirelab up`/`down` do, and with the \
        `ip` script wirelab renders from the same plan (plus the same processes: built-in servers are started, \
        waited for and stopped on both sides). After every build the lab's namespaces are compared \
        (ip -j addr/route, sysctls, offloads, processes); a difference stops the benchmark. \
        The lab must not exist before; everything made is removed at the end, on failure and on Ctrl-C.
        """)

    @Argument(help: "The topology file.") var file: String
    @Option(help: "Builds per side.") var runs: Int = 5
    @Option(help: ArgumentHelp("Pause before each timed phase, so the kernel finishes freeing the last lab's namespaces.",
                               valueName: "seconds"))
    var settle: Double = 1
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var state: StateOptions

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if !(0...60).contains(settle) { throw ValidationError("--settle must be within 0...60 seconds") }
    }

    func run() throws {
        let topology = try loadTopologyOrExit(file)
        let bench = DeployBenchmark(topology: topology, store: state.store, executable: currentExecutable(),
                                    options: .init(runs: runs, settle: settle),
                                    progress: { printError("wirelab: \($0)") })
        // Ctrl-C, kill and a closed terminal stop the benchmark between steps
        // and remove the lab; a second Ctrl-C only says that it is busy.
        let sources = [SIGINT, SIGTERM, SIGHUP].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                printError("wirelab: stopping — removing what the benchmark made …")
                bench.cancel()
            }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        let report: DeployBenchmark.Report
        do {
            report = try bench.run()
        } catch let cancelled as DeployBenchmark.Cancelled {
            printError("wirelab bench deploy: \(cancelled)")
            throw ExitCode(130)
        } catch {
            printError("wirelab bench deploy: \(error)")
            throw ExitCode(1)
        }
        print(json ? try report.jsonString() : report.table())
    }
}
