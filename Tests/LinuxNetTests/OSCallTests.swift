// The small OS APIs the lab uses instead of raw calls: sockets, poll, the
// wake-up pipe, file locks, /proc/PID/stat. No root and no namespace needed.
import Foundation
import LinuxNet
import Testing
import Wire

struct OSCallTests {
    static func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "wirelab-oscall-\(ProcessInfo.processInfo.processIdentifier)-\(name)"
    }

    @Test func aFailedCallNamesTheOperationTheCallAndErrno() throws {
        let socket = try Socket.open(.unixStream)
        defer { socket.close() }
        let path = Self.temporaryPath("nobody-listens")
        do {
            try socket.connect(to: .unix(path), operation: "connecting to the lab daemon at \(path)")
            Issue.record("connected to \(path)")
        } catch {
            #expect(error.errno == .noSuchFileOrDirectory)
            #expect(error.call == "connect")
            #expect(error.description == "connecting to the lab daemon at \(path): No such file or directory (connect)")
        }
    }

    @Test func aUnixSocketRoundTripThroughPoll() throws {
        let path = Self.temporaryPath("control.sock")
        try? FileManager.default.removeItem(atPath: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let listener = try Socket.open(.unixStream)
        defer { listener.close() }
        try listener.bind(to: .unix(path), permissions: 0o600)
        try listener.listen(backlog: 4)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "socket file mode \(String(mode ?? -1, radix: 8))")

        let client = try Socket.open(.unixStream)
        defer { client.close() }
        #expect(try client.connect(to: .unix(path)))
        #expect(try listener.wait(for: .readable, timeout: 1000).contains(.readable))
        let server = try #require(try listener.accept())
        defer { server.close() }
        #expect(try client.send(Array("ping\n".utf8)) == 5)
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = try #require(try server.receive(into: &buffer))
        #expect(String(decoding: buffer[0..<n], as: UTF8.self) == "ping\n")
        // Nothing more: a receive timeout gives nil, not an error.
        try server.setTimeouts(receive: 0.05)
        #expect(try server.receive(into: &buffer) == nil)
        try client.shutdown(.write)
        #expect(try server.receive(into: &buffer) == 0, "the peer closed")
    }

    @Test func udpEchoThroughReceiveFromAndSendTo() throws {
        let a = try Socket.open(.udp, nonBlocking: true)
        defer { a.close() }
        try a.bind(to: .ipv4(IPv4Address(rawValue: 0x7F00_0001), port: 0))
        let b = try Socket.open(.udp, nonBlocking: true)
        defer { b.close() }
        try b.bind(to: .ipv4(IPv4Address(rawValue: 0x7F00_0001), port: 0))
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(try buffer.withUnsafeMutableBytes { try a.receiveFrom(into: $0) } == nil, "nothing waiting: nil")
        // Learn b's port by sending from b to a's port, read through a.
        let aPort = try Self.boundPort(a)
        _ = try [UInt8](Array("hi".utf8)).withUnsafeBytes { try b.send($0, to: .ipv4(IPv4Address(rawValue: 0x7F00_0001), port: aPort)) }
        #expect(try !a.wait(for: .readable, timeout: 1000).isEmpty)
        let got = try #require(try buffer.withUnsafeMutableBytes { try a.receiveFrom(into: $0) })
        #expect(got.count == 2 && got.from.description.hasPrefix("127.0.0.1:"))
    }

    /// The port a socket bound to (port 0 picks one), via /proc/net/udp.
    static func boundPort(_ socket: Socket) throws -> UInt16 {
        let inode = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(socket.descriptor)")
            .dropFirst("socket:[".count).dropLast()
        for line in try ProcFile.read("/proc/self/net/udp").split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            if fields.count > 9, fields[9] == inode, let port = UInt16(fields[1].split(separator: ":")[1], radix: 16) { return port }
        }
        throw LinuxNetError(operation: "finding the port of \(socket)", call: "/proc/self/net/udp", errno: .noSuchFileOrDirectory)
    }

    @Test func theWakePipeWakesAPollAndDrains() throws {
        let pipe = try WakePipe()
        defer { pipe.close() }
        var set = PollSet()
        set.add(pipe.readDescriptor, .readable)
        #expect(try set.wait(timeout: 0) == 0)
        for _ in 0..<100 { pipe.wake() }
        #expect(try set.wait(timeout: 1000) == 1 && set.returnedEvents(at: 0).contains(.readable))
        pipe.drain()
        #expect(try set.wait(timeout: 0) == 0 && set.returnedEvents(at: 0).isEmpty, "drained, and the old events cleared")
    }

    /// epoll reports the ready descriptors only, each by its token, and
    /// keeps reporting them until they are drained (level-triggered).
    @Test func anEventSetReportsReadyDescriptorsByToken() throws {
        let pipes = try (0..<3).map { _ in try WakePipe() }
        defer { for p in pipes { p.close() } }
        var set = try EventSet(capacity: 8)
        for (i, p) in pipes.enumerated() { try set.add(p.readDescriptor, .readable, token: 10 * (i + 1)) }
        #expect(set.count == 3)
        #expect(try set.wait(timeout: 0) == 0)
        pipes[0].wake()
        pipes[2].wake()
        #expect(try set.wait(timeout: 1000) == 2)
        let ready = Set((0..<set.readyCount).map { set.token(at: $0) })
        #expect(ready == [10, 30], "entries read at the kernel's packed stride")
        #expect((0..<set.readyCount).allSatisfy { set.returnedEvents(at: $0).contains(.readable) })
        #expect(try set.wait(timeout: 0) == 2, "still ready: level-triggered")
        pipes[0].drain()
        #expect(try set.wait(timeout: 0) == 1 && set.token(at: 0) == 30)
    }

    @Test func aFileLockIsExclusive() throws {
        let path = Self.temporaryPath("lab.lock")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var first = try FileLock.acquire(path)
        #expect(first != nil)
        #expect(try FileLock.acquire(path) == nil, "held by the first")
        first = nil
        #expect(try FileLock.acquire(path) != nil, "released with its object")
        #expect(throws: LinuxNetError.self) { try FileLock.acquire("/nonexistent-dir/x.lock") }
    }

    @Test func processStatusFromProc() throws {
        let own = try #require(Processes.status(of: Processes.currentID))
        #expect(!own.isZombie && (own.startTime ?? 0) > 0, "\(own)")
        #expect(Processes.status(of: Int32.max) == nil)
        #expect(throws: LinuxNetError.self) { try Processes.send(.terminate, to: Int32.max) }
    }
}
