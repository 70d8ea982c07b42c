import CLinuxShim
import CPcap
import Foundation
import Glibc
import Testing
import Wire
@testable import LinuxNet

/// Live captures need root (CAP_NET_RAW, CAP_SYS_ADMIN for namespaces) and iproute2.
private let canBuildNamespaces = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
private let ipTool = "/usr/sbin/ip"
/// `CLONE_NEWNET` from <sched.h>, which Glibc's module hides behind _GNU_SOURCE.
private let cloneNewNet: Int32 = 0x4000_0000

/// Runs `body` on a fresh thread that has entered the network namespace
/// `/run/netns/<name>` and returns its result; the thread ends afterwards,
/// so no other work ever runs in that namespace by accident.
private func inNetworkNamespace<T>(_ name: String, _ body: @escaping () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    // The caller waits for the thread: body never runs concurrently with it.
    nonisolated(unsafe) let body = body
    let thread = Thread {
        defer { done.signal() }
        box.result = Result {
            let fd = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw NamespaceError(what: "open /run/netns/\(name)", errno: errno) }
            defer { Glibc.close(fd) }
            guard cwl_setns(fd, cloneNewNet) == 0 else { throw NamespaceError(what: "setns \(name)", errno: errno) }
            return try body()
        }
    }
    thread.start()
    done.wait()
    return try box.result!.get()
}


private struct NamespaceError: Error, CustomStringConvertible {
    var what: String
    var errno: Int32
    var description: String { "\(what): \(String(cString: strerror(errno)))" }
}

/// The fields of an IPv4 ICMP frame the test looks at; nil for anything else.
private struct ICMPFrame: Equatable {
    var source: IPv4Address
    var destination: IPv4Address
    var type: UInt8

    init(source: IPv4Address, destination: IPv4Address, type: UInt8) {
        self.source = source
        self.destination = destination
        self.type = type
    }

    init?(_ f: [UInt8]) {
        guard f.count >= 14 + 20 + 8, f[12] == 0x08, f[13] == 0x00, f[14] >> 4 == 4, f[23] == 1 else { return nil }
        let ihl = Int(f[14] & 0x0f) * 4
        guard f.count >= 14 + ihl + 8 else { return nil }
        source = IPv4Address(f[26], f[27], f[28], f[29])
        destination = IPv4Address(f[30], f[31], f[32], f[33])
        type = f[14 + ihl]
    }
}

@Suite(.serialized) struct PcapLiveCaptureTests {
    static let nsA = "wltest-pcap-a"
    static let nsB = "wltest-pcap-b"
    let addressA = IPv4Address(10, 211, 0, 1)
    let addressB = IPv4Address(10, 211, 0, 2)

    @discardableResult
    func ip(_ arguments: String...) throws -> String {
        let (status, output, error) = try PcapTestSupport.run(ipTool, arguments)
        guard status == 0 else {
            throw NamespaceError(what: "ip \(arguments.joined(separator: " ")): \(error.trimmingCharacters(in: .whitespacesAndNewlines))", errno: 0)
        }
        return output
    }

    func removeNamespaces() {
        for ns in [Self.nsA, Self.nsB] { _ = try? PcapTestSupport.run(ipTool, ["netns", "del", ns]) }
    }

    /// wltest-pcap-a eth0 (10.211.0.1/24) ↔ veth ↔ wltest-pcap-b eth0 (10.211.0.2/24).
    func buildNamespaces() throws {
        removeNamespaces()                                 // leftovers of a crashed run
        try ip("netns", "add", Self.nsA)
        try ip("netns", "add", Self.nsB)
        try ip("-n", Self.nsA, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", Self.nsB)
        try ip("-n", Self.nsA, "addr", "add", "\(addressA)/24", "dev", "eth0")
        try ip("-n", Self.nsB, "addr", "add", "\(addressB)/24", "dev", "eth0")
        try ip("-n", Self.nsA, "link", "set", "eth0", "up")
        try ip("-n", Self.nsB, "link", "set", "eth0", "up")
    }

    @Test(.enabled(if: canBuildNamespaces, "needs root and iproute2"), .timeLimit(.minutes(1)))
    func capturesPingInsideANamespace() throws {
        defer { removeNamespaces() }
        try buildNamespaces()

        // Both captures are opened on a thread inside wltest-pcap-a, then read here.
        let (all, requests) = try inNetworkNamespace(Self.nsA) {
            (try PcapLiveCapture(interface: "eth0", options: .init(filter: "icmp")),
             try PcapLiveCapture(interface: "eth0", options: .init(direction: .inbound, filter: "icmp[icmptype] == icmp-echo")))
        }
        defer { all.close(); requests.close() }
        #expect(all.linkType == DLT_EN10MB)
        #expect(all.hasNanosecondTimestamps)
        #expect(all.selectableFD >= 0)

        // Idle: nothing to read, and poll() sleeps instead of reporting readable.
        var idle = pollfd(fd: all.selectableFD, events: Int16(POLLIN), revents: 0)
        #expect(poll(&idle, 1, 150) == 0)
        #expect(try all.readAvailable { _ in Issue.record("a frame on an idle link") } == 0)

        let before = UInt64(Date().timeIntervalSince1970 * 1e9)
        let (status, output, error) = try PcapTestSupport.run(ipTool, ["netns", "exec", Self.nsB, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "\(addressA)"])
        try #require(status == 0, "ping failed: \(output) \(error)")
        let after = UInt64(Date().timeIntervalSince1970 * 1e9)

        // Read as a run loop would: poll, then drain without blocking.
        var frames: [PcapRecord] = []
        let deadline = Date().addingTimeInterval(5)
        while frames.count < 6 && Date() < deadline {
            var pfd = pollfd(fd: all.selectableFD, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            try all.readAvailable { frames.append($0.record) }
        }
        let icmp = frames.compactMap { ICMPFrame($0.bytes) }
        #expect(icmp.count == frames.count, "the filter let non-ICMP frames through")
        let echoRequests = icmp.filter { $0.type == 8 }
        let echoReplies = icmp.filter { $0.type == 0 }
        #expect(echoRequests == Array(repeating: ICMPFrame(source: addressB, destination: addressA, type: 8), count: 3))
        #expect(echoReplies == Array(repeating: ICMPFrame(source: addressA, destination: addressB, type: 0), count: 3))
        #expect(frames.allSatisfy { $0.timestamp >= before - 1_000_000_000 && $0.timestamp <= after + 1_000_000_000 })
        #expect(zip(frames, frames.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
        #expect(frames.contains { $0.timestamp % 1000 != 0 }, "timestamps look like microseconds")
        #expect(try all.readAvailable { _ in } == 0)       // drained

        // The inbound echo-request capture, appended to a pcap file.
        let path = PcapTestSupport.temporaryPath("live.pcap")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapWriter(path: path)
        var appended = 0
        while appended < 3 && Date() < deadline {
            var pfd = pollfd(fd: requests.selectableFD, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            appended += try requests.appendAvailable(to: writer)
        }
        try writer.close()
        let written = try PcapReader.readAll(path: path)
        #expect(written.count == 3)
        #expect(written.compactMap { ICMPFrame($0.bytes) } == echoRequests)
        #expect(written.map(\.timestamp) == frames.filter { ICMPFrame($0.bytes)?.type == 8 }.map(\.timestamp))

        let stats = try all.statistics()
        #expect(stats.received >= 6)
        #expect(stats.dropped == 0)
    }

    @Test(.enabled(if: canBuildNamespaces, "needs root and iproute2"), .timeLimit(.minutes(1)))
    func reportsBadFiltersAndMissingInterfaces() throws {
        defer { removeNamespaces() }
        try buildNamespaces()
        try inNetworkNamespace(Self.nsA) {
            do throws(PcapError) {
                _ = try PcapLiveCapture(interface: "eth0", options: .init(filter: "icmp and and"))
                Issue.record("a bad filter compiled")
            } catch {
                #expect(error.path == "eth0")
                #expect(error.operation.contains("pcap_compile"))
                #expect(error.message.contains("syntax error"), "\(error)")
            }
            do throws(PcapError) {
                _ = try PcapLiveCapture(interface: "wlnothere0")
                Issue.record("a capture on a missing interface opened")
            } catch {
                #expect(error.path == "wlnothere0")
                #expect(error.operation.contains("pcap_activate"))
                #expect(error.message.contains("No such device"), "\(error)")
            }
        }
    }

    @Test(.enabled(if: canBuildNamespaces, "needs root and iproute2"), .timeLimit(.minutes(1)))
    func handlerErrorsStopReadingAndPropagate() throws {
        defer { removeNamespaces() }
        try buildNamespaces()
        let capture = try inNetworkNamespace(Self.nsA) { try PcapLiveCapture(interface: "eth0", options: .init(filter: "icmp")) }
        defer { capture.close() }
        try PcapTestSupport.run(ipTool, ["netns", "exec", Self.nsB, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "\(addressA)"])
        struct Stop: Error {}
        var seen = 0
        var pfd = pollfd(fd: capture.selectableFD, events: Int16(POLLIN), revents: 0)
        #expect(poll(&pfd, 1, 2000) == 1)
        #expect(throws: Stop.self) {
            try capture.readAvailable { _ in
                seen += 1
                throw Stop()
            }
        }
        #expect(seen == 1)
        // The rest is still there for the next read.
        var rest = 0
        while try capture.readAvailable(into: { _ in rest += 1 }) > 0 {}
        #expect(rest == 3)
        capture.close()
        #expect(capture.selectableFD == -1)
        #expect(throws: PcapError.self) { try capture.readAvailable { _ in } }
    }
}
