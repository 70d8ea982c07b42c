// AFPacketPort end to end: a — [fa fwd fb] — b, two AF_PACKET ports in fwd
// joined by the same generic forwarding loop as the AF_XDP test.
import Foundation
import Glibc
@testable import LinuxNet
import Testing

@Suite(.enabled(if: portLabAvailable, "needs root and iproute2"))
struct AFPacketPortTests {
    static func openPorts(_ lab: WireLab) throws -> (AFPacketPort, AFPacketPort) {
        try inNamespace(lab.fwd) {
            let left = try AFPacketPort(interface: "fa")
            do { return (left, try AFPacketPort(interface: "fb")) } catch { left.close(); throw error }
        }
    }

    @Test func forwardsPingAndTCPAndSleepsWhenIdle() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "p1")
        defer { lab.destroy() }
        let (fa, fb) = try AFPacketPortTests.openPorts(lab)
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close() }

        let replies = try lab.ping(from: lab.a, to: "10.99.0.2")
        #expect(replies == 5, "ping a → b through AF_PACKET: \(replies)/5 replies")

        let mbits = try lab.tcpTransfer(bytes: 8 << 20)
        print("AFPacketPort: TCP 8 MiB a → b through the AF_PACKET wire, SHA-256 checked: \(mbits) Mbit/s")

        usleep(300_000)
        let cpu0 = forwarder.cpuNanoseconds()
        let wall0 = DispatchTime.now().uptimeNanoseconds
        usleep(1_000_000)
        let cpu = forwarder.cpuNanoseconds() - cpu0
        let wall = Int64(DispatchTime.now().uptimeNanoseconds - wall0)
        let share = Double(cpu) / Double(wall) * 100
        print("AFPacketPort: idle forwarding thread used \(cpu / 1000) µs CPU in \(wall / 1_000_000) ms (\(String(format: "%.3f", share))% of a core)")
        #expect(share < 2.0)
        print("AFPacketPort: fa \(fa.counters)\nAFPacketPort: fb \(fb.counters)")
        #expect(fa.counters.rxPackets > 0 && fb.counters.txPackets > 0)
    }

    @Test func smallPacketRate() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "p2")
        defer { lab.destroy() }
        let (fa, fb) = try AFPacketPortTests.openPorts(lab)
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close() }
        #expect(try lab.ping(from: lab.a, to: "10.99.0.2", count: 1) == 1)
        let before = fa.counters.rxPackets
        let cpu0 = forwarder.cpuNanoseconds()
        let burst = try lab.udpBurst(seconds: 2)
        let forwarded = fa.counters.rxPackets - before
        let cpu = Double(forwarder.cpuNanoseconds() - cpu0) / 1e9
        print("AFPacketPort: UDP 64-byte burst: iperf3 sent \(burst.sent), b received \(burst.received); the wire forwarded \(forwarded) frames ≈ \(Int(Double(forwarded) / 2.0)) pps over the 2 s send window, forwarder CPU \(String(format: "%.2f", cpu)) s (rough: 2 shared cores)")
        print("AFPacketPort: fa \(fa.counters)\nAFPacketPort: fb \(fb.counters)")
        let drops = try run(["ip", "netns", "exec", lab.b, "nstat", "-az", "UdpRcvbufErrors", "UdpInErrors"]).output
            .split(separator: "\n").filter { $0.hasPrefix("Udp") }.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
        let link = try run(["ip", "-s", "-n", lab.b, "link", "show", "eth0"]).output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        print("AFPacketPort: where b lost the rest: \(drops); b:eth0 RX \(link.count > 3 ? link[3] : "?")")
        #expect(burst.received > 0)
    }

    @Test func tapsSeeAFPacketTrafficAndOwnSendsAreIgnored() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "p3")
        defer { lab.destroy() }
        let (fa, fb) = try AFPacketPortTests.openPorts(lab)
        let forwarder = Forwarder(fa, fb)
        forwarder.start()
        defer { forwarder.stop(); fa.close(); fb.close() }
        // A tap on fb (in fwd) sees the forwarded echo requests leave and the
        // replies arrive: AF_PACKET sends and receives go through the taps.
        let dump = try Background(["timeout", "8", "ip", "netns", "exec", lab.fwd, "tcpdump", "-n", "-i", "fb",
                                   "-c", "4", "icmp"])
        defer { dump.kill() }
        #expect(dump.waitForOutput(containing: "listening on fb"), "tcpdump started: \(dump.output)")
        #expect(try lab.ping(from: lab.a, to: "10.99.0.2", count: 2) == 2)
        let out = dump.finish(timeout: 6).output
        let lines = out.split(separator: "\n").filter { $0.contains("ICMP echo") }
        print("AFPacketPort: tcpdump on fb saw \(lines.count) ICMP frames")
        #expect(lines.count == 4, "tcpdump -i fb: \(out)")
        // PACKET_IGNORE_OUTGOING: fb never received what it sent itself, so
        // fb's rx is only b's replies (and ARP), not the forwarded requests.
        #expect(fb.counters.rxPackets < fa.counters.rxPackets + 4)
        #expect(fb.counters.rxPackets <= fa.counters.txPackets + 2)
    }

    @Test func errorsNameTheStepInterfaceAndNamespace() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "p4")
        defer { lab.destroy() }
        let message = try inNamespace(lab.fwd) { () -> String in
            do { _ = try AFPacketPort(interface: "nope0"); return "opened" } catch { return "\(error)" }
        }
        print("AFPacketPort error: \(message)")
        #expect(message.contains("nope0") && message.contains(lab.fwd))
    }

    @Test func batchAPIIsTheSameThroughTheEnum() throws {
        portLabLock.lock(); defer { portLabLock.unlock() }
        let lab = try WireLab(tag: "p5")
        defer { lab.destroy() }
        let program = try XDPProgram()
        defer { program.close() }
        // One port of each kind on the same wire: fa AF_XDP, fb AF_PACKET.
        let (fa, fb) = try inNamespace(lab.fwd) { () throws -> (XDPPort, AFPacketPort) in
            let fa = try XDPPort(interface: "fa", program: program)
            do { return (fa, try AFPacketPort(interface: "fb")) } catch { fa.close(); throw error }
        }
        // The enum refers to the ports unretained: fa and fb keep them alive.
        let ports = [AnyPacketPort(fa), AnyPacketPort(fb)]
        defer { withExtendedLifetime((fa, fb)) { ports.forEach { $0.close() } } }
        // The forwarding thread alone uses the ports until it is joined.
        nonisolated(unsafe) let wirePorts = ports
        let stop = ResultBox<Bool>()
        stop.result = .success(false)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            var batch = PortBatch(capacity: 32)
            var fds = wirePorts.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            while (try? stop.result?.get()) != true {
                _ = poll(&fds, 2, 50)
                for (i, source) in wirePorts.enumerated() where fds[i].revents != 0 {
                    let destination = wirePorts[1 - i]
                    let n = source.receive(into: &batch)
                    for f in 0..<n { destination.transmit(copying: UnsafeRawBufferPointer(batch[f])) }
                    source.release(&batch)
                    destination.flush()
                }
            }
            done.signal()
        }
        thread.start()
        let replies = try lab.ping(from: lab.a, to: "10.99.0.2", count: 3)
        stop.result = .success(true)
        done.wait()
        #expect(replies == 3, "mixed AF_XDP/AF_PACKET wire: \(replies)/3")
        print("mixed wire: fa(xdp) \(ports[0].counters)\nmixed wire: fb(packet) \(ports[1].counters)")
    }
}
