import ArgumentParser
import Foundation
import Lab

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the built-in server used on hosts: HTTP answers with the node's name, UDP echoes.")

    @Option(help: "TCP port for HTTP.") var http: Int?
    @Option(name: .customLong("udp-echo"), help: "UDP port to echo on.") var udpEcho: Int?
    @Option(help: "The name to answer with (default: the host name).") var name: String?

    func validate() throws {
        guard http != nil || udpEcho != nil else { throw ValidationError("give --http PORT and/or --udp-echo PORT") }
        for port in [http, udpEcho].compactMap({ $0 }) where !(1...65535).contains(port) {
            throw ValidationError("port \(port) is outside 1...65535")
        }
    }

    func run() throws {
        let server = BuiltinServer(.init(name: name ?? ProcessInfo.processInfo.hostName, httpPort: http, udpEchoPort: udpEcho))
        try server.bind()
        server.run()
    }
}
