// XDPPort end to end: a — [fa fwd fb] — b, two AF_XDP ports in fwd joined by
// a userspace forwarding loop; ping, TCP, capture, pass-to-kernel, idle CPU.
import CXDP
import Foundation
import Glibc
@testable import LinuxNet
import Testing
import Wire

@Suite(.enabled(if: portLabAvailable, "needs root and iproute2"))
struct XDPPortTests {
    /// Opens an AF_XDP port on fa and fb in fwd, sharing one program.
    static func openPorts(_ lab: WireLab, program: XDPProgram) throws -> (XDPPort, XDPPort) {
        try inNamespace(lab.fwd) {
            let left = try XDPPort(interface: "fa", program: program)
            do { return (left, try XDPPort(interface: "fb", program: program)) } catch { left.close(); throw error }
        }
    }

    @Test(arguments: [XDPProgram.AttachMode.native, .generic])
    func forwardsPingAndTCPAndSleepsWhenIdle(mode: XDPProgram.AttachMode) throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "x1")
        defer { lab.destroy() }
        var configuration = XDPProgram.Configuration()
        configuration.attachMode = mode
        let program = try XDPProgram(configuration: configuration)
        let (fa, fb) = try XDPPortTests.openPorts(lab, program: program)
        let link = try run(["ip", "-n", lab.fwd, "-d", "link", "show", "dev", "fa"]).output
        let features = try run(["ip", "netns", "exec", lab.a, "ethtool", "-k", "eth0"]).output
            .split(separator: "\n").filter { $0.contains("segmentation-offload:") || $0.contains("tx-checksumming:") }
        print("XDPPort[\(mode)]: fa attach: \(link.split(separator: "\n").filter { $0.contains("xdp") }.map { $0.trimmingCharacters(in: .whitespaces) }); a:eth0 \(features.map { $0.trimmingCharacters(in: .whitespaces) })")
        #expect(link.contains(mode == .native ? "xdp " : "xdpgeneric"), "\(link)")
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close(); program.close() }

        let replies = try lab.ping(from: lab.a, to: "10.99.0.2")
        #expect(replies == 5, "ping a → b through AF_XDP: \(replies)/5 replies")

        let mbits = try lab.tcpTransfer(bytes: 8 << 20)
        print("XDPPort[\(mode)]: TCP 8 MiB a → b through the AF_XDP wire, SHA-256 checked: \(mbits) Mbit/s")
        #expect(mbits > 0)

        // Idle: the loop must sleep in poll().
        usleep(300_000)
        let cpu0 = forwarder.cpuNanoseconds()
        let wall0 = DispatchTime.now().uptimeNanoseconds
        usleep(1_000_000)
        let cpu = forwarder.cpuNanoseconds() - cpu0
        let wall = Int64(DispatchTime.now().uptimeNanoseconds - wall0)
        let share = Double(cpu) / Double(wall) * 100
        print("XDPPort[\(mode)]: idle forwarding thread used \(cpu / 1000) µs CPU in \(wall / 1_000_000) ms (\(String(format: "%.3f", share))% of a core)")
        #expect(share < 2.0)

        #expect(forwarder.lastHeadroom.load(ordering: .relaxed) == 256, "copy mode puts frames XDP_PACKET_HEADROOM into the UMEM frame")
        let stats = program.statistics()
        print("XDPPort: fa \(fa.counters)\nXDPPort: fb \(fb.counters)\nXDPPort: program \(stats)")
        #expect(stats.redirected > 0)
        #expect(fa.counters.rxPackets > 0 && fb.counters.txPackets > 0)
    }

    @Test func smallPacketRate() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "x2")
        defer { lab.destroy() }
        let program = try XDPProgram()
        let (fa, fb) = try XDPPortTests.openPorts(lab, program: program)
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close(); program.close() }
        #expect(try lab.ping(from: lab.a, to: "10.99.0.2", count: 1) == 1)
        let before = fa.counters.rxPackets
        let cpu0 = forwarder.cpuNanoseconds()
        let start = Date()
        let burst = try lab.udpBurst(seconds: 2)
        let elapsed = Date().timeIntervalSince(start)
        let forwarded = fa.counters.rxPackets - before
        let cpu = Double(forwarder.cpuNanoseconds() - cpu0) / 1e9
        print("XDPPort: UDP 64-byte burst: iperf3 sent \(burst.sent), b received \(burst.received); the wire forwarded \(forwarded) frames in \(String(format: "%.1f", elapsed)) s ≈ \(Int(Double(forwarded) / 2.0)) pps over the 2 s send window, forwarder CPU \(String(format: "%.2f", cpu)) s (rough: 2 shared cores, sender and receiver on the same box)")
        print("XDPPort: fa \(fa.counters)\nXDPPort: fb \(fb.counters)")
        let drops = try run(["ip", "netns", "exec", lab.b, "nstat", "-az", "UdpRcvbufErrors", "UdpInErrors"]).output
            .split(separator: "\n").filter { $0.hasPrefix("Udp") }.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
        let link = try run(["ip", "-s", "-n", lab.b, "link", "show", "eth0"]).output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        print("XDPPort: where b lost the rest: \(drops); b:eth0 RX \(link.count > 3 ? link[3] : "?")")
        #expect(burst.received > 0)
    }

    /// Copy mode writes a frame 256 bytes into its UMEM frame: with 2048-byte
    /// frames nothing longer than 1792 bytes arrives (the kernel drops it and
    /// counts it in XDP_STATISTICS); 4096-byte frames carry it.
    @Test(arguments: [2048, 4096])
    func largestFrameDependsOnUMEMFrameSize(frameSize: Int) throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "x6")
        defer { lab.destroy() }
        try run(["ip", "-n", lab.a, "link", "set", "eth0", "mtu", "3000"])
        try run(["ip", "-n", lab.b, "link", "set", "eth0", "mtu", "3000"])
        try run(["ip", "-n", lab.fwd, "link", "set", "fa", "mtu", "3000"])
        try run(["ip", "-n", lab.fwd, "link", "set", "fb", "mtu", "3000"])
        let program = try XDPProgram()
        var configuration = XDPPort.Configuration()
        configuration.frameSize = frameSize
        let (fa, fb) = try inNamespace(lab.fwd) {
            (try XDPPort(interface: "fa", program: program, configuration: configuration),
             try XDPPort(interface: "fb", program: program, configuration: configuration))
        }
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close(); program.close() }
        #expect(try lab.ping(from: lab.a, to: "10.99.0.2", count: 1) == 1)
        // -s 2000: a 2042-byte frame.
        let r = try run(["timeout", "10", "ip", "netns", "exec", lab.a, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1",
                         "-s", "2000", "-M", "dont", "10.99.0.2"], allowFailure: true)
        let k = fa.kernelStatistics()!
        print("XDPPort[\(frameSize)-byte frames]: 2042-byte ping exit \(r.status); fa rx_dropped \(k.rx_dropped) rx_ring_full \(k.rx_ring_full) fill_empty \(k.rx_fill_ring_empty_descs); \(fa.counters)")
        if frameSize == 2048 {
            #expect(r.status != 0)
            #expect(fa.counters.rxDropped >= 2)
        } else {
            #expect(r.status == 0)
            #expect(fa.counters.rxDropped == 0)
        }
    }

    @Test func captureRingSeesThePing() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "x3")
        defer { lab.destroy() }
        let program = try XDPProgram()
        let ring = try CaptureRing(program: program)
        let (fa, fb) = try XDPPortTests.openPorts(lab, program: program)
        try program.setCapture(true, interfaceIndex: fa.interfaceIndex)
        try program.setCapture(true, interfaceIndex: fb.interfaceIndex)
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close(); ring.close(); program.close() }

        let t0 = Int64(Date().timeIntervalSince1970 * 1e9)
        #expect(try lab.ping(from: lab.a, to: "10.99.0.2", count: 3) == 3)
        let t1 = Int64(Date().timeIntervalSince1970 * 1e9)

        struct Seen { var ifindex: UInt32; var type: UInt8; var src: [UInt8]; var dst: [UInt8]; var wire: Int; var captured: Int; var time: Int64 }
        var seen: [Seen] = []
        var arps = 0
        var p = pollfd(fd: ring.fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 1000) == 1, "capture ring fd is readable")
        try ring.consume { f in
            let b = Array(f.bytes)
            guard b.count >= 14 else { return }
            if b[12] == 0x08 && b[13] == 0x06 { arps += 1 }
            guard b.count >= 35, b[12] == 0x08, b[13] == 0x00, b[23] == 1 else { return }
            seen.append(Seen(ifindex: f.interfaceIndex, type: b[34], src: Array(b[26..<30]), dst: Array(b[30..<34]),
                             wire: f.wireLength, captured: f.bytes.count, time: f.timestampNanoseconds))
        }
        let requests = seen.filter { $0.type == 8 }
        let replies = seen.filter { $0.type == 0 }
        print("XDPPort capture: \(requests.count) echo requests, \(replies.count) echo replies, \(arps) ARP frames; program \(program.statistics())")
        #expect(requests.count == 3 && replies.count == 3)
        #expect(requests.allSatisfy { $0.ifindex == UInt32(fa.interfaceIndex) && $0.src == [10, 99, 0, 1] && $0.dst == [10, 99, 0, 2] })
        #expect(replies.allSatisfy { $0.ifindex == UInt32(fb.interfaceIndex) && $0.src == [10, 99, 0, 2] && $0.dst == [10, 99, 0, 1] })
        #expect(seen.allSatisfy { $0.wire == 98 && $0.captured == 98 })
        #expect(seen.allSatisfy { $0.time >= t0 - 10_000_000 && $0.time <= t1 + 10_000_000 })
        #expect(arps >= 2, "ARP request on fa and reply on fb are captured too")
    }

    @Test func passRuleSendsTrafficForTheNodeToItsKernel() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "x4")
        defer { lab.destroy() }
        try run(["ip", "-n", lab.fwd, "address", "add", "10.99.0.3/24", "dev", "fa"])
        let program = try XDPProgram()
        let (fa, fb) = try XDPPortTests.openPorts(lab, program: program)
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close(); program.close() }

        // Without a rule the node's kernel never sees its own traffic.
        #expect(try lab.ping(from: lab.a, to: "10.99.0.3", count: 2) == 0)

        for rule in PassRule.hostAddress(IPv4Address(10, 99, 0, 3)) { try program.addPassRule(rule) }
        try run(["ip", "-n", lab.a, "neigh", "flush", "dev", "eth0"])
        let forwardedBefore = fa.counters.rxPackets
        #expect(try lab.ping(from: lab.a, to: "10.99.0.3", count: 3) == 3, "fwd's kernel answers for 10.99.0.3")
        #expect(try lab.ping(from: lab.a, to: "10.99.0.2", count: 3) == 3, "a → b still crosses the data plane")
        let forwarded = fa.counters.rxPackets - forwardedBefore
        let rules = Dictionary(uniqueKeysWithValues: program.passRules().map { ($0.rule, $0.hits) })
        print("XDPPort pass rules: \(rules.map { "\($0.key): \($0.value)" }.sorted()); data plane took \(forwarded) frames; \(program.statistics())")
        #expect((rules[.ipv4(to: IPv4Address(10, 99, 0, 3))] ?? 0) >= 3)
        #expect((rules[.arp(target: IPv4Address(10, 99, 0, 3))] ?? 0) >= 1)
        #expect(forwarded >= 3, "echo requests to b went to the socket")
    }

    @Test func errorsNameTheStepInterfaceAndNamespace() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "x5")
        defer { lab.destroy() }
        let program = try XDPProgram()
        defer { program.close() }
        let missing = try inNamespace(lab.fwd) { () -> String in
            do { _ = try XDPPort(interface: "nope0", program: program); return "opened" } catch { return "\(error)" }
        }
        print("XDPPort error (missing interface): \(missing)")
        #expect(missing.contains("nope0") && missing.contains(lab.fwd))

        let busy = try inNamespace(lab.fwd) { () -> String in
            let first = try XDPPort(interface: "fa", program: program)
            defer { first.close() }
            do { let second = try XDPPort(interface: "fa", program: program); second.close(); return "opened twice" }
            catch { return "\(error)" }
        }
        print("XDPPort error (second socket on the same queue): \(busy)")
        #expect(busy.contains("fa") && busy.contains(lab.fwd) && busy.contains("xsk_socket__create"))

        // A port whose program was attached by it detaches on close.
        try inNamespace(lab.fwd) {
            let port = try XDPPort(interface: "fb", program: program)
            let shown = try run(["ip", "link", "show", "dev", "fb"]).output
            #expect(shown.contains("xdp"), "program attached while the port is open: \(shown)")
            port.close()
        }
        let after = try run(["ip", "-n", lab.fwd, "link", "show", "dev", "fb"]).output
        #expect(!after.contains("prog/xdp"), "program detached after close: \(after)")
    }

    @Test func attachmentIsReferenceCountedAndTooLongFramesAreRefused() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "x7")
        defer { lab.destroy() }
        let program = try XDPProgram()
        defer { program.close() }
        func attached() throws -> Bool { try run(["ip", "-n", lab.fwd, "link", "show", "dev", "fa"]).output.contains("prog/xdp") }
        let index = try lab.interfaceIndex(lab.fwd, "fa")
        // The lab attaches fa itself (say, to capture before any port opens).
        try inNamespace(lab.fwd) { _ = try program.attach(interfaceIndex: index, name: "fa") }
        let port = try inNamespace(lab.fwd) { try XDPPort(interface: "fa", program: program) }
        #expect(try attached())
        // Too long: refused and counted, nothing queued.
        let big = [UInt8](repeating: 0, count: port.maxFrameLength + 1)
        #expect(big.withUnsafeBytes { port.transmit(copying: $0) } == false)
        #expect(port.transmit { _ in port.maxFrameLength + 1 } == false)
        #expect(port.transmit { _ in 0 } == false)
        #expect(port.counters.txTooLong == 2 && !port.hasPendingTransmit)
        port.close()
        #expect(try attached(), "the lab's own reference keeps the program attached")
        program.detach(interfaceIndex: index)
        #expect(try !attached())
    }
}
