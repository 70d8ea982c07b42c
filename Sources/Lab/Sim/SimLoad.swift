import Datapath
import Topology
import Wire

/// A drill's load (`DrillLoad`) on the simulator's host models, observed as
/// the live load is (`LoadObservations`, times in seconds since `start`).
///
/// - On each `from` host, `clients` request loops: a new connection per
///   request (`DrillHTTP.request`, `Connection: close`); a request not
///   answered within `requestTimeout` (or whose connection fails) failed,
///   and the loop goes on with a new one. A loop paces itself as the live
///   one does: the next request starts `streamInterval` after the last one
///   started, or when it ended if that was later. No new request starts
///   once the load's duration is over.
/// - And `streams` long-lived connections: each sends
///   `DrillHTTP.keepAliveRequest` as soon as it is established and then
///   every `streamInterval` on the same connection (a message waits for the
///   answer to the last, and goes at once when that came late). A stream is
///   lost when its connection fails (reset, unreachable) or a message — or
///   the handshake — stays unanswered for `streamTimeout`; a lost stream
///   is not reopened.
/// - Clients start spread evenly over the first `lookInterval` (10 ms by
///   default), not all at one instant (so a cold lab's ARP queues do not
///   overflow with every first SYN at once). Requests and messages go out on
///   schedule, answer and time-out times are exact (the answer's last byte;
///   the deadline); an answer that comes after the next one was due is
///   seen at the client's next look (every `lookInterval` while it waits),
///   and the next one goes then.
/// - Recorded: a request's `end` is when its answer's last byte came, or
///   when its connection failed, or its deadline; a stream's `longestGap` is
///   the longest time between two answers, counted from the handshake's
///   end, and its `answeredBy` the last answer's `X-Wirelab-Node`.
/// - A failed host's clients are frozen, as live processes under SIGSTOP:
///   nothing is sent, read or timed out while it is failed; after the heal,
///   time has gone on, so requests older than `requestTimeout` fail at once.
///
/// Driven by `SimDrill`: `start`, then `poll` at each `nextWake` (and
/// whenever else), `finish`.
public final class SimLoad {
    public let load: DrillLoad
    public let lookInterval: UInt64
    let simulator: Simulator
    /// Virtual time the load started (nanoseconds), set by `start`.
    public private(set) var startTime: UInt64 = 0
    var started = false

    struct Loop {
        var host: Int
        var client: Int
        var lookAt: UInt64 = 0
        var connection: HostModel.ConnectionID?
        var requestStart: UInt64 = 0
        /// When the next request may start.
        var nextStart: UInt64 = 0
    }

    struct StreamState {
        var host: Int
        var observation: Int
        var lookAt: UInt64 = 0
        var connection: HostModel.ConnectionID = -1
        var openedAt: UInt64 = 0
        var established = false
        /// When the unanswered message went out (nil: none unanswered).
        var sentAt: UInt64?
        /// When the next message is due (the last one's due time + interval).
        var nextSend: UInt64 = 0
        var lastAnswer: UInt64 = 0
        var done = false
    }

    let hosts: [(name: String, node: Simulator.SimNode, model: HostModel)]
    var loops: [Loop] = []
    var streamStates: [StreamState] = []
    var requests: [LoadObservations.Request] = []
    var streams: [LoadObservations.Stream] = []
    let hostHeader: String
    let loopRequest: [UInt8]
    let streamMessage: [UInt8]
    let duration: UInt64
    let timeout: UInt64
    /// A stream's message (or handshake) unanswered this long loses the stream.
    let streamTimeout: UInt64
    let interval: UInt64

    /// Checks the load's hosts (each must be a host of the topology).
    public init(_ load: DrillLoad, on simulator: Simulator, lookInterval: UInt64 = 10_000_000) throws(Simulator.SimError) {
        self.load = load
        self.simulator = simulator
        self.lookInterval = max(lookInterval, 1)
        var hosts: [(String, Simulator.SimNode, HostModel)] = []
        for name in load.from {
            let (node, model) = try simulator.hostNode(name)
            hosts.append((name, node, model))
        }
        self.hosts = hosts
        hostHeader = DrillHTTP.hostHeader(load.address.description, port: load.port)
        loopRequest = DrillHTTP.request(host: hostHeader, path: load.path)
        streamMessage = DrillHTTP.keepAliveRequest(host: hostHeader, path: load.path)
        duration = Self.nanoseconds(load.duration)
        timeout = max(Self.nanoseconds(load.requestTimeout), 1)
        streamTimeout = max(Self.nanoseconds(load.streamTimeout), 1)
        interval = max(Self.nanoseconds(load.streamInterval), 1)
    }

    static func nanoseconds(_ d: DurationSpec) -> UInt64 { UInt64(max(d.milliseconds, 0)) * 1_000_000 }

    /// When the load is over: its duration, plus the longer timeout for
    /// what was asked last to be answered or fail (virtual time, ns).
    public var endTime: UInt64 { startTime &+ duration &+ max(timeout, streamTimeout) }
    var acceptsUntil: UInt64 { startTime &+ duration }

    /// Starts the load now: each client's first look (and so its first
    /// request or stream), spread over the first `lookInterval`.
    public func start() {
        precondition(!started, "a load starts once")
        started = true
        startTime = simulator.now
        for (h, _) in hosts.enumerated() {
            for c in 0..<max(load.clients, 0) { loops.append(Loop(host: h, client: c)) }
            for s in 0..<max(load.streams, 0) {
                streamStates.append(StreamState(host: h, observation: streams.count))
                streams.append(.init(host: hosts[h].name, stream: s, established: nil, lost: nil, answered: 0,
                                     longestGap: 0, answeredBy: nil))
            }
        }
        let clients = UInt64(max(loops.count + streamStates.count, 1))
        for i in loops.indices {
            loops[i].lookAt = startTime &+ UInt64(i) * lookInterval / clients
            loops[i].nextStart = loops[i].lookAt
        }
        for i in streamStates.indices {
            streamStates[i].lookAt = startTime &+ UInt64(loops.count + i) * lookInterval / clients
        }
        poll()
    }

    func seconds(_ t: UInt64) -> Double { Double(t &- startTime) / 1e9 }

    /// Looks at every client of a running host at the simulator's current
    /// time: records answers and failures, starts what is due.
    public func poll() {
        let now = simulator.now
        for i in loops.indices where !hosts[loops[i].host].node.failed {
            pollLoop(i, now: now)
        }
        for i in streamStates.indices where !streamStates[i].done && !hosts[streamStates[i].host].node.failed {
            pollStream(i, now: now)
        }
    }

    /// The next look of a client whose look was due: after `now`, on its grid.
    func advanced(_ lookAt: UInt64, now: UInt64) -> UInt64 {
        guard lookAt <= now else { return lookAt }
        return lookAt &+ ((now &- lookAt) / lookInterval + 1) * lookInterval
    }

    func pollLoop(_ i: Int, now: UInt64) {
        let (name, node, model) = hosts[loops[i].host]
        let look = now >= loops[i].lookAt
        if look { loops[i].lookAt = advanced(loops[i].lookAt, now: now) }
        if let id = loops[i].connection {
            let c = model.connections[id]
            var end: UInt64?
            var answered = false
            var by: String?
            let timedOut = now &- loops[i].requestStart >= timeout
            // (Read when the next is due, at its looks, end or time-out only:
            // the answer's time is exact anyway.)
            if look || timedOut || c.state.isFinished || now >= loops[i].nextStart,
               let answer = DrillHTTP.response(in: c.received) {
                end = c.lastDataAt?.nanoseconds ?? now
                answered = true
                by = answer.node
            } else if c.state.isFinished {
                end = c.finishedAt?.nanoseconds ?? now
            } else if timedOut {
                end = now
                model.abort(id, now: simulator.instant, emit: &node.runner.emitter)
                simulator.drain(node)
            }
            guard let end else { return }
            requests.append(.init(host: name, client: loops[i].client, start: seconds(loops[i].requestStart),
                                  end: seconds(end), answered: answered, answeredBy: by))
            model.consumeReceived(.max, of: id)
            loops[i].connection = nil
            loops[i].nextStart = max(loops[i].nextStart, end)
        }
        guard now >= loops[i].nextStart, now < acceptsUntil else { return }
        loops[i].requestStart = now
        loops[i].nextStart = now &+ interval
        loops[i].lookAt = advanced(loops[i].lookAt, now: now)
        loops[i].connection = model.connect(to: load.address, port: UInt16(clamping: load.port), request: loopRequest,
                                            now: simulator.instant, emit: &node.runner.emitter)
        simulator.drain(node)
    }

    func pollStream(_ i: Int, now: UInt64) {
        let (_, node, model) = hosts[streamStates[i].host]
        let o = streamStates[i].observation
        let look = now >= streamStates[i].lookAt
        if look { streamStates[i].lookAt = advanced(streamStates[i].lookAt, now: now) }
        if streamStates[i].connection < 0 {
            guard look else { return }
            guard now < acceptsUntil else { streamStates[i].done = true; return }
            // The first message goes out as the handshake completes.
            streamStates[i].openedAt = now
            streamStates[i].connection = model.connect(
                to: load.address, port: UInt16(clamping: load.port), request: streamMessage, keepOpen: true,
                now: simulator.instant, emit: &node.runner.emitter)
            simulator.drain(node)
            return
        }
        let id = streamStates[i].connection
        if !streamStates[i].established, let at = model.connections[id].establishedAt?.nanoseconds {
            streams[o].established = seconds(at)
            streamStates[i].established = true
            streamStates[i].sentAt = at
            streamStates[i].nextSend = at &+ interval
            streamStates[i].lastAnswer = at
        }
        // Answers that came in.
        while streamStates[i].sentAt != nil, let answer = DrillHTTP.response(in: model.connections[id].received) {
            let at = model.connections[id].lastDataAt?.nanoseconds ?? now
            streams[o].answered += 1
            streams[o].answeredBy = answer.node ?? streams[o].answeredBy
            streams[o].longestGap = max(streams[o].longestGap, Double(at &- streamStates[i].lastAnswer) / 1e9)
            streamStates[i].lastAnswer = at
            streamStates[i].sentAt = nil
            model.consumeReceived(answer.length, of: id)
        }
        if model.connections[id].state.isFinished {
            lose(i, at: model.connections[id].finishedAt?.nanoseconds ?? now)
            return
        }
        let waitingSince = streamStates[i].established ? streamStates[i].sentAt : streamStates[i].openedAt
        if let since = waitingSince, now &- since >= streamTimeout {
            lose(i, at: now)
            model.abort(id, now: simulator.instant, emit: &node.runner.emitter)
            simulator.drain(node)
            return
        }
        if streamStates[i].established, streamStates[i].sentAt == nil, now >= streamStates[i].nextSend,
           streamStates[i].nextSend < acceptsUntil {
            model.send(streamMessage, on: id, now: simulator.instant, emit: &node.runner.emitter)
            simulator.drain(node)
            streamStates[i].sentAt = now
            streamStates[i].nextSend = now &+ interval
        }
    }

    func lose(_ i: Int, at t: UInt64) {
        streams[streamStates[i].observation].lost = seconds(t)
        streamStates[i].done = true
    }

    /// The next instant after `after` a client of a running host has
    /// something to do: a look (while it waits for an answer, or before it
    /// starts its next request), a stream message on schedule, a time-out.
    /// Nil: nothing. (What was due by a look at `after` and still is waits
    /// on a failed host: it is done when the host is healed.)
    public func nextWake(after: UInt64) -> UInt64? {
        var next = UInt64.max
        func min(_ values: UInt64...) -> UInt64 {
            values.reduce(UInt64.max) { $1 > after ? Swift.min($0, $1) : $0 }
        }
        for l in loops where !hosts[l.host].node.failed {
            if l.connection != nil {
                next = min(next, l.lookAt, l.requestStart &+ timeout, l.nextStart)
            } else if l.nextStart < acceptsUntil {
                next = min(next, l.nextStart)
            }
        }
        for s in streamStates where !s.done && !hosts[s.host].node.failed {
            if s.connection < 0 {
                next = min(next, s.lookAt)
            } else if !s.established {
                next = min(next, s.lookAt, s.openedAt &+ streamTimeout)
            } else {
                if let sent = s.sentAt { next = min(next, s.lookAt, sent &+ streamTimeout) }
                if s.nextSend < acceptsUntil { next = min(next, s.nextSend) }
            }
        }
        return next == .max ? nil : next
    }

    /// Ends the load: what is still open is closed (as the live clients
    /// exit); streams not lost count as living to the end.
    public func finish() -> LoadObservations {
        for s in streamStates where !s.done && s.connection >= 0 {
            let (_, node, model) = hosts[s.host]
            model.abort(s.connection, now: simulator.instant, emit: &node.runner.emitter)
            simulator.drain(node)
        }
        for l in loops {
            if let id = l.connection {
                let (_, node, model) = hosts[l.host]
                model.abort(id, now: simulator.instant, emit: &node.runner.emitter)
                simulator.drain(node)
            }
        }
        return observations
    }

    /// What the load saw so far.
    public var observations: LoadObservations {
        LoadObservations(requests: requests, streams: streams, duration: Double(duration) / 1e9)
    }
}
