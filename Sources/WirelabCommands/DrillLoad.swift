import ArgumentParser
import Foundation
import Lab
import LinuxNet
import Wire

/// The load of a drill on one host (`wirelab drill` starts it inside the
/// host's namespace): request loops and long-lived streams from START for
/// SECONDS, then the observations as JSON (`LoadObservations`) in OUTPUT.
struct DrillLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill-load",
        abstract: "Run a drill's load on this host and write what it saw as JSON (started by `wirelab drill`).",
        shouldDisplay: false)

    @Option(help: "The host's name, recorded in every observation.") var host: String
    @Option(help: ArgumentHelp("Where requests go.", valueName: "ipv4")) var address: String
    @Option(help: "The TCP port.") var port: Int = 80
    @Option(help: "The request's path.") var path: String = "/"
    @Option(help: "Request loops (a new connection per request, Connection: close).") var clients: Int
    @Option(help: "Long-lived keep-alive connections, one request every --interval-ms.") var streams: Int
    @Option(help: "How long the load runs.") var seconds: Int
    @Option(name: .customLong("interval-ms"), help: "Between two requests of a stream, and between the starts of a client's requests.")
    var intervalMs: Int = 50
    @Option(name: .customLong("timeout-ms"), help: "A request (or its connect) unanswered this long failed.")
    var timeoutMs: Int = 1000
    @Option(name: .customLong("stream-timeout-ms"), help: "A stream's message (or its connect) unanswered this long: the stream is lost.")
    var streamTimeoutMs: Int = 2000
    @Option(name: .customLong("start-ns"), help: "When the load starts, CLOCK_MONOTONIC nanoseconds (default: now).")
    var startNs: UInt64?
    @Option(help: ArgumentHelp("Where the observations go (JSON).", valueName: "file")) var output: String

    func validate() throws {
        guard IPv4Address(address) != nil else { throw ValidationError("--address \(address) is not an IPv4 address") }
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port) is outside 1...65535") }
        guard path.hasPrefix("/"), !path.contains(where: { $0 == " " || $0.isNewline }) else {
            throw ValidationError("--path must start with / and hold no spaces or line breaks")
        }
        guard clients >= 0, streams >= 0, clients + streams > 0 else { throw ValidationError("give --clients or --streams above 0") }
        guard seconds > 0, intervalMs > 0, timeoutMs > 0, streamTimeoutMs > 0 else {
            throw ValidationError("--seconds, --interval-ms, --timeout-ms and --stream-timeout-ms must be above 0")
        }
    }

    func run() throws {
        let spec = LoadSpec(host: host, address: IPv4Address(address)!, port: port, path: path, clients: clients, streams: streams,
                            interval: Double(intervalMs) / 1000, timeout: Double(timeoutMs) / 1000,
                            streamTimeout: Double(streamTimeoutMs) / 1000, duration: Double(seconds))
        let observations = LoadGenerator(spec).run(start: startNs ?? MonotonicClock.nanoseconds())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(observations).write(to: URL(fileURLWithPath: output), options: .atomic)
    }
}
