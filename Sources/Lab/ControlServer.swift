import Foundation
import Glibc
import Synchronization

/// The daemon's side of the control socket: a Unix stream socket, mode
/// 0600 inside the lab's 0700 state directory (root only). One request per
/// connection, answered on a thread of its own so the data plane never
/// waits on a client.
final class ControlServer: Sendable {
    let path: String
    let handler: @Sendable (ControlRequest) -> Data
    private let fd: Int32
    /// Set by `stop` on the daemon's thread, read by the control thread.
    private let stopped = Atomic<Bool>(false)

    init(path: String, handler: @escaping @Sendable (ControlRequest) -> Data) throws {
        self.path = path
        self.handler = handler
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LabError("control socket: \(String(cString: strerror(errno)))") }
        var address = UnixAddress(path)
        let oldMask = umask(0o177)
        defer { umask(oldMask) }
        guard address.bind(fd) == 0, listen(fd, 16) == 0 else {
            let err = errno
            close(fd)
            throw LabError("binding control socket \(path): \(String(cString: strerror(err)))")
        }
    }

    func start() {
        let thread = Thread { [self] in serve() }
        thread.name = "control"
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    private func serve() {
        while !stopped.load(ordering: .relaxed) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 500) <= 0 { continue }
            let client = accept(fd, nil, nil)
            if client < 0 { continue }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 65536)
            var received = 0
            while received < buffer.count {
                let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress! + received, $0.count - received, 0) }
                if n <= 0 { break }
                received += n
                if buffer[0..<received].contains(10) { break }
            }
            let response: Data
            if let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(buffer[0..<received]).prefix { $0 != 10 }) {
                response = handler(request)
            } else {
                response = Data("{\"error\":\"malformed request\"}".utf8)
            }
            _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }
}
