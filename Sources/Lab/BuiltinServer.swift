import Foundation
import LinuxNet

/// The built-in server run on hosts (`serve:` in the topology file,
/// `wirelab serve` on the command line). HTTP answers every request with
/// the node's name — keeping HTTP/1.1 connections open unless the request
/// says `Connection: close`, so long-lived clients (a drill's streams) work —
/// and UDP echo sends each datagram back. One thread, poll(): an idle
/// server sleeps.
public final class BuiltinServer {
    public struct Configuration: Sendable {
        public var name: String
        public var httpPort: Int?
        public var udpEchoPort: Int?
        public init(name: String, httpPort: Int?, udpEchoPort: Int?) {
            self.name = name
            self.httpPort = httpPort
            self.udpEchoPort = udpEchoPort
        }
    }

    private let config: Configuration
    private var httpListener: Socket?
    private var udpSocket: Socket?
    /// Open HTTP connections and what each has received so far.
    private var clients: [Socket: [UInt8]] = [:]
    public private(set) var requestsServed = 0

    public init(_ config: Configuration) { self.config = config }

    deinit {
        for client in clients.keys { client.close() }
        httpListener?.close()
        udpSocket?.close()
    }

    /// Binds the sockets; throws if a port is taken.
    public func bind() throws {
        if let port = config.httpPort {
            let listener = try Self.socketBound(.tcp, port: port)
            httpListener = listener
            try listener.listen(backlog: 128, operation: "listen on tcp/\(port)")
        }
        if let port = config.udpEchoPort {
            udpSocket = try Self.socketBound(.udp, port: port)
        }
    }

    private static func socketBound(_ kind: Socket.Kind, port: Int) throws -> Socket {
        let socket = try Socket.open(kind, nonBlocking: true, operation: "socket")
        try? socket.setReuseAddress()
        do {
            try socket.bind(to: .ipv4(.any, port: UInt16(port)), operation: "bind \(kind == .tcp ? "tcp" : "udp")/\(port)")
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    /// Serves until `shouldStop` returns true (checked at least every `tick` ms).
    public func run(tick: Int32 = 1000, shouldStop: () -> Bool = { false }) {
        var fds = PollSet()
        while !shouldStop() {
            fds.removeAll()
            if let httpListener { fds.add(httpListener.descriptor, .readable) }
            if let udpSocket { fds.add(udpSocket.descriptor, .readable) }
            for client in clients.keys { fds.add(client.descriptor, .readable) }
            let n = (try? fds.wait(timeout: tick)) ?? 0
            if n <= 0 { continue }
            for i in 0..<fds.count where !fds.returnedEvents(at: i).isEmpty {
                let fd = fds.descriptor(at: i)
                if fd == httpListener?.descriptor { acceptAll() }
                else if fd == udpSocket?.descriptor { echoAll() }
                else { readClient(Socket(descriptor: fd)) }
            }
        }
    }

    private func acceptAll() {
        while let listener = httpListener, let client = try? listener.accept(nonBlocking: true) {
            clients[client] = []
        }
    }

    private func echoAll() {
        guard let udpSocket else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let datagram = buffer.withUnsafeMutableBytes { try? udpSocket.receiveFrom(into: $0) }
            guard let (n, from) = datagram else { return }
            _ = buffer.withUnsafeBytes { try? udpSocket.send(UnsafeRawBufferPointer(rebasing: $0[..<n]), to: from) }
        }
    }

    private func readClient(_ client: Socket) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n: Int
        do {
            // Nothing to read yet (nil): wait for the next poll.
            guard let count = try client.receive(into: &chunk) else { return }
            n = count
        } catch {
            n = 0
        }
        if n == 0 {
            client.close()
            clients[client] = nil
            return
        }
        var received = clients[client, default: []]
        received.append(contentsOf: chunk[0..<n])
        // Every complete request in what arrived (a keep-alive client may
        // pipeline them); what is left waits for more bytes.
        while let request = Self.nextRequest(received) {
            received.removeFirst(request.length)
            requestsServed += 1
            if !request.keepAlive {
                respond(client, status: "200 OK", body: config.name + "\n")
                return
            }
            guard answer(client, body: config.name + "\n") else { return }
        }
        // Requests are small; a request bigger than 64 KiB is refused.
        if received.count > 65536 {
            respond(client, status: "413 Payload Too Large", body: "too large\n")
            return
        }
        clients[client] = received
    }

    /// One complete request at the start of BYTES: how many bytes it takes
    /// (headers and a Content-Length body) and whether the connection stays
    /// open after it — HTTP/1.1 without `Connection: close` (RFC 9112 9.3);
    /// HTTP/1.0 closes, as before keep-alive existed here.
    static func nextRequest(_ bytes: [UInt8]) -> (length: Int, keepAlive: Bool)? {
        guard let end = headerEnd(bytes) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
        let lines = head.split(separator: "\r\n")
        var bodyLength = 0
        var close = false
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            switch parts[0].trimmingCharacters(in: .whitespaces) {
            case "content-length": bodyLength = max(0, Int(value) ?? 0)
            case "connection": close = close || value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "close" }
            default: break
            }
        }
        guard bytes.count - end >= bodyLength else { return nil }
        let http11 = lines.first?.hasSuffix(" http/1.1") ?? false
        return (end + bodyLength, http11 && !close)
    }

    /// The answer on a connection that stays open; false if the client is
    /// gone (it is then closed and forgotten).
    private func answer(_ client: Socket, body: String) -> Bool {
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nServer: wirelab\r\nX-Wirelab-Node: \(config.name)\r\nConnection: keep-alive\r\n\r\n\(body)"
        if send(client, Array(response.utf8)) { return true }
        client.close()
        clients[client] = nil
        return false
    }

    /// Sends all of BYTES; false if the socket failed or its send buffer is
    /// full (answers are tiny: a client that lets it fill is not reading).
    private func send(_ client: Socket, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { (try? client.send(UnsafeRawBufferPointer(rebasing: $0[sent...]))) ?? 0 }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    private func respond(_ client: Socket, status: String, body: String) {
        let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nServer: wirelab\r\nX-Wirelab-Node: \(config.name)\r\nConnection: close\r\n\r\n\(body)"
        // Nonblocking socket, tiny response: the send buffer holds it at once.
        _ = send(client, Array(response.utf8))
        try? client.shutdown(.write)
        client.close()
        clients[client] = nil
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}
