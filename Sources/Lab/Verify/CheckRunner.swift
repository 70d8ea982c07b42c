// Runs a topology's checks against a backend: every probe first, then the
// capture, then the verdicts.
import Foundation
import Topology
import Wire

public final class CheckRunner {
    public let backend: CheckBackend
    public var topology: ResolvedTopology { backend.topology }
    /// Seconds to let a `send` probe (and its reply) cross the lab.
    public var settleSeconds = 0.6
    public var progress: (String) -> Void
    /// What the capture lost during the last `run` (empty: nothing).
    public private(set) var captureLoss: [CaptureLoss] = []
    var random: any RandomNumberGenerator

    public init(backend: CheckBackend, random: any RandomNumberGenerator = SystemRandomNumberGenerator(),
                progress: @escaping (String) -> Void = { _ in }) {
        self.backend = backend
        self.random = random
        self.progress = progress
    }

    /// What a check did while the lab ran, kept for the verdict.
    struct Pending {
        var check: Check
        var outcome: CheckOutcome
        var probes: [Probe] = []
        var before: NodeDropCounters = [:]
        var after: NodeDropCounters = [:]
        var answered: [Bool] = []
        var answers: [String?] = []
    }

    func makeProbe(from: String, to: IPv4Address, port: Int?, proto: ProbeProtocol) throws -> Probe {
        var g = random
        defer { random = g }
        return try Probe.make(from: from, to: to, port: port, proto: proto, topology: topology, using: &g)
    }

    func address(of target: ProbeTarget) throws -> IPv4Address {
        switch target {
        case .address(let a): return a
        case .node(let n):
            guard let a = topology.nodes.first(where: { $0.name == n })?.addresses.first?.address else {
                throw LabError("\(n) has no address")
            }
            return a
        }
    }

    /// Runs every check (the backend must be started) and finishes the
    /// backend; the verdicts in the order of `checks`.
    public func run(_ checks: [Check]) -> [CheckOutcome] {
        var pending: [Pending] = []
        // The capture's loss counters before the first probe (unreadable:
        // counted from zero, so any loss since the lab came up counts).
        let countersBefore = (try? backend.captureCounters()) ?? []
        for check in checks {
            let started = Date()
            progress("check: \(check.name)")
            var p = Pending(check: check, outcome: CheckOutcome(name: check.name, kind: "", location: check.location.lineColumn,
                                                                status: .error, summary: "not run"))
            do {
                try execute(&p)
            } catch {
                p.outcome.status = .error
                p.outcome.summary = "could not run: \(error)"
            }
            p.outcome.seconds = Date().timeIntervalSince(started)
            pending.append(p)
        }
        var observations: [Observation] = []
        var captureError: String?
        // Frames of the last probe still in flight land in the capture.
        if pending.contains(where: { !$0.probes.isEmpty }) { backend.settle(seconds: 0.3) }
        do {
            let links = try backend.finish()
            let read = ObservationReader.observations(links, topology: topology)
            observations = read.observations
            if read.unattributed > 0 && read.observations.isEmpty {
                captureError = "the capture names no receiving end for its \(read.unattributed) frames"
            }
        } catch {
            captureError = "collecting the capture: \(error)"
        }
        var losses: [CaptureLoss] = []
        if captureError == nil {
            do {
                losses = CaptureLoss.between(countersBefore, try backend.captureCounters())
            } catch {
                captureError = "reading what the capture lost: \(error)"
            }
        }
        captureLoss = losses
        return pending.map {
            var outcome = verdict($0, observations: observations, captureError: captureError)
            CheckEngine.applyCaptureLoss(losses, to: &outcome)
            return outcome
        }
    }

    func execute(_ p: inout Pending) throws {
        switch p.check.kind {
        case let .send(probe, expect):
            p.outcome.kind = "send"
            let pr = try makeProbe(from: probe.from, to: probe.to, port: probe.port, proto: probe.proto)
            p.probes = [pr]
            p.before = try backend.dropCounters()
            try backend.send(pr)
            backend.settle(seconds: settleSeconds)
            if case .dropped = expect { p.after = try backend.dropCounters() }
        case let .http(h, _):
            p.outcome.kind = "http"
            for _ in 0..<h.count {
                p.answers.append(try backend.http(from: h.from, host: h.host, port: h.port, path: h.path, timeout: 3))
            }
        case let .ping(ping, drop):
            p.outcome.kind = "ping"
            let to = try address(of: ping.to)
            // One echo identifier, consecutive sequence numbers (and IP ids).
            let first = try makeProbe(from: ping.from, to: to, port: nil, proto: .icmp)
            p.before = try backend.dropCounters()
            for i in 0..<ping.count {
                var pr = first
                pr.marker.icmpSequence = first.marker.icmpSequence &+ UInt16(i)
                pr.marker.ipIdentification = first.marker.ipIdentification &+ UInt16(i)
                p.probes.append(pr)
                p.answered.append(try backend.echo(pr, timeout: drop == nil ? 2 : 0.5))
            }
            if drop != nil { backend.settle(seconds: 0.2) }
            p.after = try backend.dropCounters()
        case let .reach(reach, drop):
            p.outcome.kind = "reach"
            p.before = try backend.dropCounters()
            switch reach.proto {
            case .tcp:
                p.answered = [try backend.connect(from: reach.from, to: reach.to, port: reach.port, timeout: drop == nil ? 3 : 1)]
            case .udp:
                let pr = try makeProbe(from: reach.from, to: reach.to, port: reach.port, proto: .udp)
                p.probes = [pr]
                p.answered = [try backend.echo(pr, timeout: drop == nil ? 2 : 0.5)]
            }
            if drop != nil { backend.settle(seconds: 0.2) }
            p.after = try backend.dropCounters()
        }
    }

    func verdict(_ p: Pending, observations: [Observation], captureError: String?) -> CheckOutcome {
        var o = p.outcome
        o.capture = backend.capturePath
        guard o.summary == "not run" else { return o }   // could not run
        func path(_ probe: Probe) -> ProbePath {
            ProbePath.trace(observations, marker: probe.marker, origin: probe.from, topology: topology)
        }
        switch p.check.kind {
        case let .send(_, expect):
            if let captureError { o.status = .error; o.summary = captureError; return o }
            let trace = path(p.probes[0])
            o.addEvidence(.capture)
            o.details.append("probe: \(p.probes[0].proto.rawValue) \(p.probes[0].source):\(p.probes[0].sourcePort) → \(p.probes[0].targetText) from \(p.probes[0].from)")
            switch expect {
            case .hops(let items): CheckEngine.evaluateHops(items, path: trace, topology: topology, into: &o)
            case .dropped(let d): CheckEngine.evaluateDrop(d, path: trace, before: p.before, after: p.after, into: &o)
            }
        case let .http(h, spread):
            o.addEvidence(.socket)
            var counts: [String: Int] = [:]
            let failed = p.answers.filter { $0 == nil }.count
            for case let node? in p.answers { counts[node, default: 0] += 1 }
            let spreadText = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            o.details.append("answers: \(spreadText.isEmpty ? "none" : spreadText)" + (failed > 0 ? "; \(failed) without answer" : ""))
            var problems: [String] = []
            if failed > 0 { problems.append("\(failed) of \(h.count) requests got no answer") }
            for s in spread where !s.isSatisfied(by: counts[s.node, default: 0]) {
                problems.append("\(s.node): expected \(s.comparison.rawValue) \(s.count), seen \(counts[s.node, default: 0])")
            }
            o.status = problems.isEmpty ? .pass : .fail
            o.summary = problems.isEmpty ? "\(h.count) requests answered (\(spreadText))" : problems.joined(separator: "; ")
        case let .ping(_, drop):
            o.addEvidence(.socket)
            let replies = p.answered.filter { $0 }.count
            if let drop {
                if replies > 0 {
                    o.status = .fail
                    o.summary = "expected dropped at \(drop.node), but \(replies) of \(p.answered.count) echo requests were answered"
                } else {
                    CheckEngine.evaluateDrop(drop, path: captureError == nil ? path(p.probes[0]) : nil, before: p.before, after: p.after, into: &o)
                }
            } else {
                o.status = replies == p.answered.count ? .pass : .fail
                o.summary = "\(replies) of \(p.answered.count) echo replies"
                if replies < p.answered.count, captureError == nil, let missing = p.probes.indices.first(where: { !p.answered[$0] }) {
                    let trace = path(p.probes[missing])
                    o.path = trace
                    o.details.append("echo #\(missing + 1) last seen: " + (trace.hops.last.map { "\($0.sender) → \($0.receiver) (\($0.direction.rawValue))" } ?? "nowhere"))
                }
            }
        case let .reach(reach, drop):
            o.addEvidence(.socket)
            let ok = p.answered.first ?? false
            if let drop {
                if ok {
                    o.status = .fail
                    o.summary = "expected dropped at \(drop.node), but \(reach.proto.rawValue) \(reach.to):\(reach.port) answered"
                } else {
                    let trace = (p.probes.first != nil && captureError == nil) ? path(p.probes[0]) : nil
                    CheckEngine.evaluateDrop(drop, path: trace, before: p.before, after: p.after, into: &o)
                }
            } else {
                o.status = ok ? .pass : .fail
                o.summary = ok ? "\(reach.proto.rawValue) \(reach.to):\(reach.port) answered" : "\(reach.proto.rawValue) \(reach.to):\(reach.port) did not answer"
                if !ok, let pr = p.probes.first, captureError == nil {
                    let trace = path(pr)
                    o.path = trace
                    o.details.append("last seen: " + (trace.hops.last.map { "\($0.sender) → \($0.receiver) (\($0.direction.rawValue))" } ?? "nowhere"))
                }
            }
        }
        return o
    }
}
