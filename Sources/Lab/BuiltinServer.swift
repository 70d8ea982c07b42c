import Foundation
import LinuxNet

/// The built-in server run on hosts (`serve:` in the topology file,
/// `wirelab serve` on the command line). HTTP answers every request with
/// the node's name; UDP echo sends each datagram back. One thread, poll():
/// an idle server sleeps.
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
        // Requests are small; a request bigger than 64 KiB is refused.
        if received.count > 65536 {
            respond(client, status: "413 Payload Too Large", body: "too large\n")
            return
        }
        if Self.headerEnd(received) != nil {
            respond(client, status: "200 OK", body: config.name + "\n")
            requestsServed += 1
        } else {
            clients[client] = received
        }
    }

    private func respond(_ client: Socket, status: String, body: String) {
        let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nServer: wirelab\r\nX-Wirelab-Node: \(config.name)\r\nConnection: close\r\n\r\n\(body)"
        let bytes = Array(response.utf8)
        var sent = 0
        // Nonblocking socket, tiny response: the send buffer holds it at once.
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { (try? client.send(UnsafeRawBufferPointer(rebasing: $0[sent...]))) ?? 0 }
            if n <= 0 { break }
            sent += n
        }
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
