// Shared harness of the port-layer tests (XDP*/AFPacket*): namespaces named
// wltest-ports-*, commands run with Foundation.Process, a thread that enters a
// namespace with setns, and a small generic two-port forwarding loop.
import CLinuxShim
import Foundation
import Glibc
import LinuxNet
import Synchronization
import Testing

/// Serializes the namespace tests: the box has two cores shared with other
/// builders, and the traffic tests measure throughput and idle CPU.
let portLabLock = NSLock()

/// True when the tests can create namespaces and load BPF (root).
let portLabAvailable: Bool = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    || geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/sbin/ip")

struct CommandError: Error, CustomStringConvertible {
    var command: [String]
    var status: Int32
    var output: String
    var description: String { "`\(command.joined(separator: " "))` exited \(status): \(output)" }
}

/// Runs a command to completion; throws with its output when it fails.
@discardableResult
func run(_ arguments: [String], allowFailure: Bool = false) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let output = String(decoding: data, as: UTF8.self)
    if process.terminationStatus != 0 && !allowFailure {
        throw CommandError(command: arguments, status: process.terminationStatus, output: output)
    }
    return (process.terminationStatus, output)
}

/// Starts a command in the background; the caller must `finish` or kill it.
final class Background {
    let process = Process()
    /// Output goes to a file, so it can be read while the process runs.
    private let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("wl-bg-\(UUID().uuidString)").path
    init(_ arguments: [String]) throws {
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }
    deinit { try? FileManager.default.removeItem(atPath: outputPath) }
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    /// Waits up to `limit` seconds for TEXT in the output (e.g. tcpdump's
    /// "listening on"), instead of sleeping a fixed time; true if it came.
    func waitForOutput(containing text: String, limit: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            usleep(20_000)
        }
        return false
    }
    /// Waits for exit (killing it after `timeout` seconds) and returns output.
    func finish(timeout: Double) -> (status: Int32, output: String) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }
}

final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }

/// Runs `body` on a fresh thread that entered namespace `name` (setns with
/// CLONE_NEWNET), and waits for it. The thread ends afterwards, so no other
/// thread ever runs in the namespace by accident.
func inNamespace<T>(_ name: String, _ body: @escaping () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    // The caller waits for the thread: body never runs concurrently with it.
    nonisolated(unsafe) let body = body
    let thread = Thread {
        defer { done.signal() }
        let fd = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            box.result = .failure(PortError("opening /run/netns/\(name)", errno: errno))
            return
        }
        defer { close(fd) }
        guard cwl_setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
            box.result = .failure(PortError("setns into \(name)", errno: errno))
            return
        }
        box.result = Result { try body() }
    }
    thread.start()
    done.wait()
    return try box.result!.get()
}

/// Three namespaces on one subnet: a (10.99.0.1/24, eth0) — fa [fwd] fb — b
/// (10.99.0.2/24, eth0). fwd has no address: a port pair there acts as a wire.
/// TX checksum offload is off on a's and b's eth0 (AF_XDP and AF_PACKET
/// forward the bytes as they are; a partial checksum would never be filled).
final class WireLab {
    let a: String
    let fwd: String
    let b: String
    private var destroyed = false

    init(tag: String) throws {
        a = "wltest-ports-\(tag)-a"
        fwd = "wltest-ports-\(tag)-fwd"
        b = "wltest-ports-\(tag)-b"
        WireLab.remove([a, fwd, b]) // leftovers of a crashed run
        do {
            for ns in [a, fwd, b] {
                try run(["ip", "netns", "add", ns])
                try run(["ip", "-n", ns, "link", "set", "lo", "up"])
            }
            try run(["ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "fa", "netns", fwd])
            try run(["ip", "-n", b, "link", "add", "eth0", "type", "veth", "peer", "name", "fb", "netns", fwd])
            try run(["ip", "-n", a, "address", "add", "10.99.0.1/24", "dev", "eth0"])
            try run(["ip", "-n", b, "address", "add", "10.99.0.2/24", "dev", "eth0"])
            for (ns, dev) in [(a, "eth0"), (b, "eth0"), (fwd, "fa"), (fwd, "fb")] {
                try run(["ip", "-n", ns, "link", "set", dev, "up"])
            }
            for ns in [a, b] {
                try run(["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"])
            }
        } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        WireLab.remove([a, fwd, b])
    }

    static func remove(_ names: [String]) {
        for ns in names where FileManager.default.fileExists(atPath: "/run/netns/\(ns)") {
            _ = try? run(["ip", "netns", "del", ns], allowFailure: true)
        }
    }

    func interfaceIndex(_ ns: String, _ dev: String) throws -> Int32 {
        try inNamespace(ns) { Int32(if_nametoindex(dev)) }
    }

    /// `ping -c count -i 0.2` from a; returns the number of replies.
    func ping(from ns: String, to address: String, count: Int = 5) throws -> Int {
        let r = try run(["timeout", "20", "ip", "netns", "exec", ns, "ping", "-n", "-c", "\(count)", "-i", "0.2",
                         "-W", "2", address], allowFailure: true)
        guard let line = r.output.split(separator: "\n").first(where: { $0.contains("received") }),
              let received = line.split(separator: ",").first(where: { $0.contains("received") })?
                .split(separator: " ").first.flatMap({ Int($0) }) else {
            throw CommandError(command: ["ping", address], status: r.status, output: r.output)
        }
        return received
    }

    static let tcpServer = """
    import hashlib, socket
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.99.0.2", 5301)); s.listen(1); s.settimeout(25)
    c, _ = s.accept(); c.settimeout(25); h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(1 << 16)
        if not d: break
        h.update(d); n += len(d)
    c.sendall(f"{n} {h.hexdigest()}\\n".encode()); c.close()
    """
    static let tcpClient = """
    import hashlib, socket, sys, time
    n = int(sys.argv[1]); pattern = bytes(range(256)) * 4096
    for attempt in range(50):
        try: s = socket.create_connection(("10.99.0.2", 5301), timeout=5); break
        except OSError: time.sleep(0.1)
    else: sys.exit("cannot connect")
    s.settimeout(25); h = hashlib.sha256(); sent = 0; t = time.monotonic()
    while sent < n:
        chunk = pattern[: min(len(pattern), n - sent)]; s.sendall(chunk); h.update(chunk); sent += len(chunk)
    s.shutdown(socket.SHUT_WR); reply = s.makefile().readline().strip(); dt = time.monotonic() - t
    expected = f"{n} {h.hexdigest()}"
    print(f"{'OK' if reply == expected else 'MISMATCH'} {n * 8 / dt / 1e6:.1f} server={reply!r}")
    sys.exit(0 if reply == expected else 1)
    """

    /// A TCP transfer of `bytes` from a to b (python3 on both ends), checked
    /// by the server's byte count and SHA-256; returns Mbit/s until the
    /// server's confirmation arrived.
    func tcpTransfer(bytes: Int) throws -> Double {
        let server = try Background(["timeout", "40", "ip", "netns", "exec", b, "/usr/bin/python3", "-c", WireLab.tcpServer])
        defer { server.kill() }
        let client = try run(["timeout", "30", "ip", "netns", "exec", a, "/usr/bin/python3", "-c", WireLab.tcpClient,
                              "\(bytes)"], allowFailure: true)
        let served = server.finish(timeout: 5)
        if ProcessInfo.processInfo.environment["WLTEST_VERBOSE"] != nil { print(client.output, served.output) }
        let fields = client.output.split(separator: " ")
        guard client.status == 0, fields.first == "OK", fields.count > 1, let mbits = Double(fields[1]) else {
            throw CommandError(command: ["python3 tcp client", "\(bytes)"], status: client.status,
                               output: client.output + " / server: " + served.output)
        }
        return mbits
    }

    /// iperf3 UDP of small datagrams from a to b for `seconds`; returns the
    /// datagrams the receiver got.
    func udpBurst(seconds: Int, length: Int = 64, rate: String = "400M") throws -> (sent: Int, received: Int, output: String) {
        let server = try Background(["timeout", "\(seconds + 20)", "ip", "netns", "exec", b, "iperf3", "-s", "-1", "-p", "5202"])
        defer { server.kill() }
        for _ in 0..<20 {
            let probe = try run(["ip", "netns", "exec", b, "ss", "-ltn", "sport = :5202"], allowFailure: true)
            if probe.output.contains("5202") { break }
            usleep(100_000)
        }
        let client = try run(["timeout", "\(seconds + 15)", "ip", "netns", "exec", a, "iperf3", "-c", "10.99.0.2",
                              "-p", "5202", "-u", "-b", rate, "-l", "\(length)", "-t", "\(seconds)", "-J"],
                             allowFailure: true)
        _ = server.finish(timeout: 5)
        guard client.status == 0, let data = client.output.data(using: .utf8),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let end = json["end"] as? [String: Any], let sum = end["sum"] as? [String: Any] else {
            throw CommandError(command: ["iperf3", "-u"], status: client.status, output: client.output)
        }
        let total = sum["packets"] as? Int ?? 0
        let lost = sum["lost_packets"] as? Int ?? 0
        return (total, total - lost, "")
    }
}

/// A two-port wire: everything received on one port is copied to the other.
/// Runs on its own thread (outside the namespace: ports work from any thread
/// once created); sleeps in poll() when idle.
final class Forwarder<P: PacketPort>: @unchecked Sendable {
    let left: P
    let right: P
    private let stopping = Atomic<Bool>(false)
    private let started = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private(set) var cpuClock = clockid_t()
    let wakeups = Atomic<Int>(0)
    /// Headroom of the last frame forwarded (bytes free before it in its buffer).
    let lastHeadroom = Atomic<Int>(-1)
    private var running = false

    init(_ left: P, _ right: P) {
        self.left = left
        self.right = right
    }

    func start() {
        let thread = Thread { [self] in
            pthread_getcpuclockid(pthread_self(), &cpuClock)
            started.signal()
            loop()
            stopped.signal()
        }
        thread.name = "wltest-forwarder"
        thread.start()
        started.wait()
        running = true
    }

    func stop() {
        guard running else { return }
        running = false
        stopping.store(true, ordering: .relaxed)
        stopped.wait()
    }

    /// CPU time the forwarding thread used so far, nanoseconds.
    func cpuNanoseconds() -> Int64 {
        var t = timespec()
        clock_gettime(cpuClock, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    private func loop() {
        var batch = PortBatch(capacity: 64)
        var fds = [pollfd(fd: left.fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: right.fd, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .relaxed) {
            let pending = left.hasPendingTransmit || right.hasPendingTransmit
            let ready = poll(&fds, 2, pending ? 1 : 100)
            wakeups.add(1, ordering: .relaxed)
            if ready < 0 { continue }
            if fds[0].revents != 0 || pending { pass(from: left, to: right, &batch) }
            if fds[1].revents != 0 || pending { pass(from: right, to: left, &batch) }
            if pending {
                left.flush()
                right.flush()
            }
        }
    }

    @inline(__always)
    func pass(from source: P, to destination: P, _ batch: inout PortBatch) {
        let n = source.receive(into: &batch)
        guard n > 0 else { return }
        lastHeadroom.store(batch.headroom(at: 0), ordering: .relaxed)
        for i in 0..<n {
            destination.transmit(copying: UnsafeRawBufferPointer(batch[i]))
        }
        source.release(&batch)
        destination.flush()
    }
}

@Suite struct XDPHarnessTests {
    @Test(.enabled(if: portLabAvailable, "needs root and iproute2"))
    func namespacesAreCreatedAndRemoved() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "h")
        let name = try inNamespace(lab.fwd) { PortError.currentNamespaceName() }
        #expect(name == lab.fwd)
        #expect(try lab.interfaceIndex(lab.fwd, "fa") > 0)
        lab.destroy()
        #expect(!FileManager.default.fileExists(atPath: "/run/netns/\(lab.fwd)"))
    }
}
