import Foundation
import LinuxNet
import Synchronization

/// The daemon's side of the control socket: a Unix stream socket, mode
/// 0600 inside the lab's 0700 state directory (root only). One request per
/// connection, answered on a thread of its own so the data plane never
/// waits on a client.
final class ControlServer: Sendable {
    let path: String
    let handler: @Sendable (ControlRequest) -> Data
    private let listener: Socket
    /// Set by `stop` on the daemon's thread, read by the control thread.
    private let stopped = Atomic<Bool>(false)

    init(path: String, handler: @escaping @Sendable (ControlRequest) -> Data) throws {
        self.path = path
        self.handler = handler
        try? FileManager.default.removeItem(atPath: path)
        listener = try Socket.open(.unixStream, operation: "control socket")
        do {
            try listener.bind(to: .unix(path), permissions: 0o600, operation: "binding control socket \(path)")
            try listener.listen(backlog: 16, operation: "binding control socket \(path)")
        } catch {
            listener.close()
            throw error
        }
    }

    func start() {
        let thread = Thread { [self] in serve() }
        thread.name = "control"
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        try? listener.shutdown(.readWrite)
        listener.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    private func serve() {
        while !stopped.load(ordering: .relaxed) {
            guard let ready = try? listener.wait(for: .readable, timeout: 500), !ready.isEmpty else { continue }
            guard let client = try? listener.accept() else { continue }
            try? client.setTimeouts(receive: 2)
            var buffer = [UInt8](repeating: 0, count: 65536)
            var received = 0
            while received < buffer.count {
                let n = buffer.withUnsafeMutableBytes { raw in
                    try? client.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[received...]))
                }
                guard let n, n > 0 else { break }
                received += n
                if buffer[0..<received].contains(10) { break }
            }
            let response: Data
            if let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(buffer[0..<received]).prefix { $0 != 10 }) {
                response = handler(request)
            } else {
                response = Data("{\"error\":\"malformed request\"}".utf8)
            }
            _ = response.withUnsafeBytes { try? client.send($0) }
            client.close()
        }
    }
}
