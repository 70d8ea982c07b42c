import Datapath
@testable import Lab
import Topology
import Wire

/// The simulator tests' driver: runs the traffic of a topology's
/// `checks:` in the simulator — the requests, pings and probes, not their
/// verdicts (the verification side judges them from the observations) —
/// and says what came back.
public struct SimTraffic {
    /// What one check's traffic did.
    public struct Outcome: Sendable, Hashable {
        public var check: String
        /// send | http | ping | reach
        public var kind: String
        /// One line: what was sent and what came back.
        public var summary: String
        /// http: answers per server name (the HTTP body); ping: "replies";
        /// reach: "connected"/"answered" 0 or 1.
        public var counts: [String: Int]
        /// Virtual time the check started at (ns from `Simulator.epoch`).
        public var startedAt: UInt64
    }

    /// The address a probe target names: the literal, or a node's first
    /// interface address.
    public static func address(of target: ProbeTarget, in topology: ResolvedTopology) -> IPv4Address? {
        switch target {
        case let .address(a): return a
        case let .node(n): return topology.node(named: n)?.addresses.first?.address
        }
    }

    /// Runs every check's traffic in file order; each check runs until the
    /// lab is quiet again (at most `limit` ns of virtual time per step).
    public static func run(_ sim: Simulator, limit: UInt64 = 10_000_000_000) throws -> [Outcome] {
        var outcomes: [Outcome] = []
        for (index, check) in sim.topology.checks.enumerated() {
            let started = sim.now
            // Each check has its own ICMP identifier, deterministic.
            let identifier = UInt16(truncatingIfNeeded: 0x5700 &+ index)
            switch check.kind {
            case let .send(probe, _):
                guard let port = probe.port ?? (probe.proto == .icmp ? 0 : nil) else { continue }
                let what: String
                switch probe.proto {
                case .tcp:
                    let id = try sim.connect(from: probe.from, to: probe.to, port: UInt16(clamping: port))
                    sim.run(limit: limit)
                    let state = sim.host(probe.from)!.connections[id].state
                    what = "tcp connect \(probe.to):\(port): \(state.rawValue)"
                    outcomes.append(Outcome(check: check.name, kind: "send", summary: what,
                                            counts: ["connected": sim.host(probe.from)!.connections[id].wasEstablished ? 1 : 0],
                                            startedAt: started))
                case .udp:
                    let before = sim.host(probe.from)!.udpReplies.count
                    try sim.sendUDP(from: probe.from, to: probe.to, port: UInt16(clamping: port),
                                    payload: Array("wirelab probe\n".utf8))
                    sim.run(limit: limit)
                    let answered = sim.host(probe.from)!.udpReplies.count - before
                    outcomes.append(Outcome(check: check.name, kind: "send",
                                            summary: "udp \(probe.to):\(port): \(answered) answer(s)",
                                            counts: ["answered": answered], startedAt: started))
                case .icmp:
                    let before = sim.host(probe.from)!.pingReplies.count
                    try sim.ping(from: probe.from, to: probe.to, identifier: identifier, sequence: 1)
                    sim.run(limit: limit)
                    let replies = sim.host(probe.from)!.pingReplies.count - before
                    outcomes.append(Outcome(check: check.name, kind: "send",
                                            summary: "icmp echo \(probe.to): \(replies) repl\(replies == 1 ? "y" : "ies")",
                                            counts: ["replies": replies], startedAt: started))
                }
            case let .http(probe, _):
                var answers: [String: Int] = [:]
                var failures: [String: Int] = [:]
                let hostHeader = probe.port == 80 ? probe.host.description : "\(probe.host):\(probe.port)"
                for _ in 0..<probe.count {
                    let c = try sim.httpGet(from: probe.from, to: probe.host, port: UInt16(clamping: probe.port),
                                            path: probe.path, hostHeader: hostHeader, limit: limit)
                    if let body = c.httpBody, c.state == .closed {
                        answers[body.trimmingSuffix(), default: 0] += 1
                    } else {
                        failures[c.state.rawValue, default: 0] += 1
                    }
                }
                sim.run(limit: limit)
                let spread = answers.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                let failed = failures.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                outcomes.append(Outcome(
                    check: check.name, kind: "http",
                    summary: "http \(probe.url) ×\(probe.count): \(answers.values.reduce(0, +)) answered"
                        + (spread.isEmpty ? "" : " (\(spread))") + (failed.isEmpty ? "" : "; failed: \(failed)"),
                    counts: answers, startedAt: started))
            case let .ping(probe, _):
                guard let destination = address(of: probe.to, in: sim.topology) else { continue }
                let host = try client(sim, probe.from)
                let before = host.pingReplies.count
                for sequence in 1...max(1, probe.count) {
                    try sim.ping(from: probe.from, to: destination, identifier: identifier, sequence: UInt16(sequence))
                    // Like ping: one request per second.
                    sim.advance(by: 1_000_000_000)
                }
                sim.run(limit: limit)
                let replies = host.pingReplies[before...].filter { $0.identifier == identifier }.count
                outcomes.append(Outcome(check: check.name, kind: "ping",
                                        summary: "ping \(destination) ×\(probe.count): \(replies) repl\(replies == 1 ? "y" : "ies")",
                                        counts: ["replies": replies], startedAt: started))
            case let .reach(probe, _):
                let host = try client(sim, probe.from)
                switch probe.proto {
                case .tcp:
                    let id = try sim.connect(from: probe.from, to: probe.to, port: UInt16(clamping: probe.port))
                    sim.run(limit: limit) { host.connections[id].state.isFinished }
                    sim.run(limit: limit)
                    let c = host.connections[id]
                    outcomes.append(Outcome(check: check.name, kind: "reach",
                                            summary: "tcp \(probe.to):\(probe.port): \(c.wasEstablished ? "connected" : c.state.rawValue)",
                                            counts: ["connected": c.wasEstablished ? 1 : 0], startedAt: started))
                case .udp:
                    let before = host.udpReplies.count
                    let local = try sim.sendUDP(from: probe.from, to: probe.to, port: UInt16(clamping: probe.port),
                                                payload: Array("wirelab reach\n".utf8))
                    sim.run(limit: limit)
                    let answered = host.udpReplies[before...].filter { $0.localPort == local }.count
                    outcomes.append(Outcome(check: check.name, kind: "reach",
                                            summary: "udp \(probe.to):\(probe.port): \(answered > 0 ? "answered" : "no answer")",
                                            counts: ["answered": answered], startedAt: started))
                }
            }
        }
        return outcomes
    }

    static func client(_ sim: Simulator, _ name: String) throws -> HostModel {
        guard let host = sim.host(name) else {
            throw sim.element(name) == nil ? Simulator.SimError.unknownNode(name) : .notAHost(name)
        }
        return host
    }
}

extension String {
    /// Without trailing newlines and spaces.
    func trimmingSuffix() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" || last == " " { s = s.dropLast() }
        return String(s)
    }
}
