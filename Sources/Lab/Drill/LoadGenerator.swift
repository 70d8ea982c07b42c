// A drill's load on one host, live: request loops (a new connection per
// request, `Connection: close`) and long-lived keep-alive streams, all on
// one thread in one poll loop that sleeps until the next thing is due — no
// busy loop, so the load leaves the lab's data plane its CPU. Runs inside
// the host's namespace (`wirelab drill-load`, started by `LiveDrillRunner`).
import Foundation
import LinuxNet
import Wire

public struct LoadSpec: Sendable, Hashable {
    /// The host it runs on (recorded in every observation).
    public var host: String
    public var address: IPv4Address
    public var port: Int
    public var path: String
    public var clients: Int
    public var streams: Int
    /// Between two messages of a stream, and between the starts of two
    /// requests of one client (so a client paces itself: a refused
    /// connection does not turn into a busy loop).
    public var interval: Double
    /// A request (or its connect) unanswered this long failed.
    public var timeout: Double
    /// A stream's message (or its connect) unanswered this long: the stream is lost.
    public var streamTimeout: Double
    public var duration: Double

    public init(host: String, address: IPv4Address, port: Int, path: String, clients: Int, streams: Int, interval: Double,
                timeout: Double, streamTimeout: Double, duration: Double) {
        self.host = host
        self.address = address
        self.port = port
        self.path = path
        self.clients = clients
        self.streams = streams
        self.interval = interval
        self.timeout = timeout
        self.streamTimeout = streamTimeout
        self.duration = duration
    }
}

public final class LoadGenerator {
    let spec: LoadSpec
    let closeRequest: [UInt8]
    let keepAliveRequest: [UInt8]

    public init(_ spec: LoadSpec) {
        self.spec = spec
        // The same bytes as the simulated load (`SimLoad`), so a stream asks
        // for keep-alive in both and both servers keep it open.
        let host = DrillHTTP.hostHeader(spec.address.description, port: spec.port)
        closeRequest = DrillHTTP.request(host: host, path: spec.path)
        keepAliveRequest = DrillHTTP.keepAliveRequest(host: host, path: spec.path)
    }

    enum Phase { case idle, connecting, waiting, done }

    /// How long `c` waits for an answer: a request's timeout or a stream's.
    func timeout(_ c: Connection) -> Double { c.stream == nil ? spec.timeout : spec.streamTimeout }

    struct Connection {
        var stream: Int?        // nil: a request loop's
        var index: Int
        var socket: Socket?
        var phase = Phase.idle
        /// Request loops: when the request started; streams: when the message was sent.
        var sentAt = 0.0
        var nextAt = 0.0
        var buffer: [UInt8] = []
        // Streams only.
        var established: Double?
        var lastAnswer: Double?
        var answered = 0
        var longestGap = 0.0
        var answeredBy: String?
        var lost: Double?
    }

    /// Runs from START (CLOCK_MONOTONIC nanoseconds: every host's load and
    /// the runner's events share it) for the spec's duration; observation
    /// times are seconds since START.
    public func run(start: UInt64) -> LoadObservations {
        while MonotonicClock.nanoseconds() < start {
            let wait = start - MonotonicClock.nanoseconds()
            usleep(useconds_t(min(wait / 1000, 500_000)))
        }
        func now() -> Double { Double(Int64(bitPattern: MonotonicClock.nanoseconds() &- start)) / 1e9 }
        var connections: [Connection] = (0..<spec.clients).map { Connection(index: $0) }
            + (0..<spec.streams).map { Connection(stream: $0, index: $0) }
        var requests: [LoadObservations.Request] = []
        var fds = PollSet()
        var slots: [Int] = []
        var chunk = [UInt8](repeating: 0, count: 4096)

        while true {
            let t = now()
            if t >= spec.duration { break }
            // Due work: start requests and stream messages, expire timeouts.
            for i in connections.indices {
                var c = connections[i]
                switch c.phase {
                case .idle where t >= c.nextAt:
                    if c.stream == nil || c.socket == nil {
                        open(&c, at: t, requests: &requests)
                    } else {
                        c.sentAt = t
                        if sendAll(c.socket!, keepAliveRequest) { c.phase = .waiting } else { lose(&c, at: t) }
                    }
                case .connecting, .waiting:
                    if t - c.sentAt >= timeout(c) { fail(&c, at: t, requests: &requests) }
                default: break
                }
                connections[i] = c
            }
            // Sleep until a socket is ready or the next thing is due.
            fds.removeAll()
            slots.removeAll(keepingCapacity: true)
            var due = spec.duration
            for (i, c) in connections.enumerated() {
                switch c.phase {
                case .idle: due = min(due, c.nextAt)
                case .connecting: due = min(due, c.sentAt + timeout(c)); fds.add(c.socket!.descriptor, .writable); slots.append(i)
                case .waiting: due = min(due, c.sentAt + timeout(c)); fds.add(c.socket!.descriptor, .readable); slots.append(i)
                case .done: break
                }
            }
            let wait = Int32(max(0, min(1000, ((due - now()) * 1000).rounded(.up))))
            let ready = (try? fds.wait(timeout: wait)) ?? 0
            guard ready > 0 else { continue }
            let t2 = now()
            for (k, i) in slots.enumerated() where !fds.returnedEvents(at: k).isEmpty {
                var c = connections[i]
                if c.phase == .connecting {
                    connected(&c, at: t2, requests: &requests)
                } else {
                    receive(&c, at: t2, chunk: &chunk, requests: &requests)
                }
                connections[i] = c
            }
        }
        // The end: requests under way were cut by it (neither answered nor
        // failed); streams still open lived to the end.
        var streams: [LoadObservations.Stream] = []
        for c in connections {
            c.socket?.close()
            if let s = c.stream {
                streams.append(.init(host: spec.host, stream: s, established: c.established, lost: c.lost, answered: c.answered,
                                     longestGap: c.longestGap, answeredBy: c.answeredBy))
            }
        }
        return LoadObservations(requests: requests, streams: streams, duration: spec.duration)
    }

    /// A new connection: a request loop's next request, or a stream's start.
    func open(_ c: inout Connection, at t: Double, requests: inout [LoadObservations.Request]) {
        c.sentAt = t
        c.buffer.removeAll(keepingCapacity: true)
        do {
            let socket = try Socket.open(.tcp, nonBlocking: true, operation: "drill socket")
            c.socket = socket
            c.phase = .connecting
            if try socket.connect(to: .ipv4(spec.address, port: UInt16(spec.port))) { connected(&c, at: t, requests: &requests) }
        } catch {
            fail(&c, at: t, requests: &requests)
        }
    }

    func connected(_ c: inout Connection, at t: Double, requests: inout [LoadObservations.Request]) {
        guard let socket = c.socket, socket.pendingError == nil else { fail(&c, at: t, requests: &requests); return }
        if c.stream != nil {
            c.established = t
            c.lastAnswer = t
            c.sentAt = t
        }
        if sendAll(socket, c.stream == nil ? closeRequest : keepAliveRequest) { c.phase = .waiting } else { fail(&c, at: t, requests: &requests) }
    }

    func receive(_ c: inout Connection, at t: Double, chunk: inout [UInt8], requests: inout [LoadObservations.Request]) {
        guard let socket = c.socket else { return }
        var closed = false
        while true {
            do {
                guard let n = try socket.receive(into: &chunk) else { break }
                if n == 0 { closed = true; break }
                c.buffer.append(contentsOf: chunk[0..<n])
            } catch {
                fail(&c, at: t, requests: &requests)
                return
            }
        }
        guard let response = Self.response(c.buffer, closed: closed) else {
            if closed { fail(&c, at: t, requests: &requests) }
            return
        }
        if c.stream != nil {
            c.answered += 1
            c.longestGap = max(c.longestGap, t - (c.lastAnswer ?? t))
            c.lastAnswer = t
            c.answeredBy = response.node ?? c.answeredBy
            c.buffer.removeFirst(min(response.length, c.buffer.count))
            if closed { lose(&c, at: t); return }
            c.phase = .idle
            c.nextAt = max(c.sentAt + spec.interval, t)
        } else {
            requests.append(.init(host: spec.host, client: c.index, start: c.sentAt, end: t, answered: true, answeredBy: response.node))
            socket.close()
            c.socket = nil
            c.phase = .idle
            c.nextAt = max(c.sentAt + spec.interval, t)
        }
    }

    /// A request failed (request loop: recorded, the loop goes on) or a
    /// stream was lost (never reopened).
    func fail(_ c: inout Connection, at t: Double, requests: inout [LoadObservations.Request]) {
        if c.stream != nil { lose(&c, at: t); return }
        requests.append(.init(host: spec.host, client: c.index, start: c.sentAt, end: t, answered: false, answeredBy: nil))
        c.socket?.close()
        c.socket = nil
        c.phase = .idle
        c.nextAt = max(c.sentAt + spec.interval, t)
    }

    func lose(_ c: inout Connection, at t: Double) {
        c.lost = t
        c.socket?.close()
        c.socket = nil
        c.phase = .done
    }

    func sendAll(_ socket: Socket, _ bytes: [UInt8]) -> Bool {
        // A request is far smaller than a fresh socket's send buffer.
        ((try? socket.send(bytes)) ?? 0) == bytes.count
    }

    /// A complete HTTP response at the start of BYTES: its length (headers
    /// and Content-Length body; without Content-Length, all once closed)
    /// and the answering node (`X-Wirelab-Node`).
    static func response(_ bytes: [UInt8], closed: Bool) -> (length: Int, node: String?)? {
        guard let end = BuiltinServer.headerEnd(bytes) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        guard head.hasPrefix("HTTP/1.") else { return nil }
        var length: Int?
        for line in head.split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" { length = Int(parts[1].trimmingCharacters(in: .whitespaces)) }
        }
        let total: Int
        if let length { total = end + length } else if closed { total = bytes.count } else { return nil }
        guard bytes.count >= total else { return nil }
        return (total, LiveBackend.answeringNode(String(decoding: bytes[..<total], as: UTF8.self)))
    }
}
