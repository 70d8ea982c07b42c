import Foundation
import Glibc
import LinuxNet
import Testing
import Wire
@testable import Datapath

/// What the differential tests of every element share: the lab's XDP
/// program attached to veths of a namespace of the test's own, random
/// flows and their frames, and the two comparisons (a later frame through
/// the element and through the program; a frame the program must leave to
/// the element).
enum FastPathHarness {
    static let redirect: UInt32 = 4   // XDP_REDIRECT

    /// A namespace `wlfd<pid><tag>` (a tag per suite: suites run at once)
    /// with one veth end per element port (`p0`…), the program attached to
    /// each (slot = port); runs BODY inside it with the program and the
    /// interface index of each port.
    static func withProgram(ports: Int, tag: String, _ body: (XDPProgram, [Int32]) throws -> Void) throws {
        let ns = "wlfd\(getpid())\(tag)"
        func ip(_ args: String...) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = args
            try p.run()
            p.waitUntilExit()
            try #require(p.terminationStatus == 0, "ip \(args.joined(separator: " "))")
        }
        _ = try? NetworkNamespace.deleteIfExists(ns)
        try NetworkNamespace.create(ns)
        defer { _ = try? NetworkNamespace.deleteIfExists(ns) }
        for i in 0..<ports {
            try ip("-n", ns, "link", "add", "p\(i)", "type", "veth", "peer", "name", "q\(i)")
            try ip("-n", ns, "link", "set", "p\(i)", "up")
            try ip("-n", ns, "link", "set", "q\(i)", "up")
        }
        let program = try XDPProgram()
        defer { program.close() }
        try NetworkNamespace.run(ns) {
            var indexes: [Int32] = []
            for i in 0..<ports {
                let index = Int32(bitPattern: if_nametoindex("p\(i)"))
                try #require(index > 0)
                let slot = try program.attach(interfaceIndex: index, name: "p\(i)")
                try #require(slot == UInt32(i), "slots follow the ports")
                try program.setFastPathEgress(slot: slot, interfaceIndex: index)
                indexes.append(index)
            }
            try body(program, indexes)
        }
    }

    /// One flow: where it enters and its 5-tuple.
    struct Flow: CustomStringConvertible {
        var port: Int
        var sourceMAC: MACAddress
        var destinationMAC: MACAddress
        var source: IPv4Address
        var destination: IPv4Address
        var tcp: Bool
        var sourcePort: UInt16
        var destinationPort: UInt16
        var udpChecksum: Bool

        var description: String {
            "\(tcp ? "tcp" : "udp") \(source):\(sourcePort) → \(destination):\(destinationPort) on port \(port)"
        }

        /// The other direction of the flow as FRAME (an output of the
        /// element) shows it, entering on PORT from its destination.
        static func answering(_ frame: [UInt8], on port: Int, udpChecksum: Bool = true) -> Flow {
            let p = try! frame.withUnsafeBytes { bytes throws(WireError) in try FrameParser().parse(bytes) }
            return Flow(port: port, sourceMAC: p.destinationMAC, destinationMAC: p.sourceMAC, source: p.destinationIPv4,
                        destination: p.sourceIPv4, tcp: p.protocol == .tcp, sourcePort: p.destinationPort,
                        destinationPort: p.sourcePort, udpChecksum: udpChecksum)
        }
    }

    /// A frame of FLOW: random TTL, identification, payload; TCP with ACK (and PSH).
    static func frame(_ f: Flow, _ r: inout SeededRandom, ttl: UInt8? = nil, flags: TCPFlags? = nil,
                      payload: Int? = nil, dontFragment: Bool? = nil) -> [UInt8] {
        let timeToLive = ttl ?? UInt8(2 + r.below(254))
        let identification = UInt16(truncatingIfNeeded: r.next())
        let df = r.below(2) == 0   // drawn either way: the same seed makes the same frames
        let ip = Frames.IP(source: f.source, destination: f.destination, ttl: timeToLive,
                           identification: identification, dontFragment: dontFragment ?? df)
        let bytes = (0..<(payload ?? r.below(700))).map { _ in r.byte() }
        if f.tcp {
            return Frames.tcp(ip, sport: f.sourcePort, dport: f.destinationPort,
                              flags: flags ?? (r.below(2) == 0 ? .ack : [.ack, .psh]), payload: bytes,
                              dst: f.destinationMAC, src: f.sourceMAC)
        }
        return Frames.udp(ip, sport: f.sourcePort, dport: f.destinationPort, payload: bytes,
                          dst: f.destinationMAC, src: f.sourceMAC, checksum: f.udpChecksum)
    }

    /// FRAME (entering on PORT) through the element and through the
    /// program: the same verdict as ENTRY's, the same bytes. False if not.
    @discardableResult
    static func expectSame(_ frame: [UInt8], on port: Int, entry: FastPathEntry, driver: ElementDriver, at t: Instant,
                           program: XDPProgram, indexes: [Int32],
                           sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        let slow = driver.send(frame, on: PortID(port), at: t)
        // As the runtime does after every forward; a later frame may be repeated as its first was.
        #expect(driver.element.takeFastPathCacheable(), "\(entry.key): the element would not repeat it",
                sourceLocation: sourceLocation)
        let fast = try program.testRun(frame, interfaceIndex: indexes[port])
        #expect(slow.verdict == .forward(PortID(Int(entry.egressSlot))), "\(entry.key): \(slow.verdict)",
                sourceLocation: sourceLocation)
        #expect(fast.action == redirect, "\(entry.key): XDP action \(fast.action)", sourceLocation: sourceLocation)
        #expect(fast.frame == slow.frame, "\(entry.key): the fast path's frame differs from the element's",
                sourceLocation: sourceLocation)
        return slow.verdict == .forward(PortID(Int(entry.egressSlot))) && fast.action == redirect && fast.frame == slow.frame
    }

    /// FRAME must leave the program untouched, not redirected, not counted as fast.
    static func goesUp(_ frame: [UInt8], on index: Int32, _ why: String, program: XDPProgram,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = program.fastPathStatistics().forwarded
        let result = try program.testRun(frame, interfaceIndex: index)
        #expect(result.action != redirect, "\(why): redirected", sourceLocation: sourceLocation)
        #expect(result.frame == frame, "\(why): the program changed the frame", sourceLocation: sourceLocation)
        #expect(program.fastPathStatistics().forwarded == before, "\(why): counted as fast", sourceLocation: sourceLocation)
    }
}
