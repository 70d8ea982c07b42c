import Testing
import Wire
import Datapath
@testable import Lab

/// What element-fuzz found in the host model (docs/robustness.md): a frame
/// it refuses is a `.drop` (it was `.consumed` while its drop was counted:
/// one frame, two fates), packets it cannot send are counted as its own,
/// a jumbo datagram or echo no longer writes past its buffers, and its
/// table of server connections is bounded and forgets idle ones.
@Suite struct HostModelAccountingTests {
    static let hostMAC = MACAddress(2, 0, 0, 0, 0, 1)
    static let peerMAC = MACAddress(2, 0, 0, 0, 0, 9)
    static let host = IPv4Address(10, 0, 7, 1)
    static let peer = IPv4Address(10, 0, 7, 9)

    /// rs1 with one jumbo interface (the topology allows MTUs up to 9000).
    static func jumboHost(maxServerConnections: Int = 4096) -> HostModel {
        HostModel(configuration: .init(
            name: "rs1", interfaces: [.init(name: "eth0", mac: hostMAC, addresses: [IPv4Prefix("10.0.7.1/24")!], mtu: 9000)],
            httpPort: 80, udpEchoPort: 7, maxServerConnections: maxServerConnections))
    }

    static func frame(proto: IPProtocol, _ l4: [UInt8], from source: IPv4Address = peer, to destination: IPv4Address = host) -> [UInt8] {
        let ip = IPv4Repr(sourceAddress: source, destinationAddress: destination, protocol: proto, payloadLength: l4.count)
        var f = [UInt8](repeating: 0, count: 14 + 20) + l4
        f.withUnsafeMutableBytes { b in
            EthernetRepr(destination: hostMAC, source: peerMAC, etherType: .ipv4).emit(into: EthernetMutableHeader(unchecked: b))
            ip.emit(into: IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[14..<34])))
        }
        return f
    }

    static func udp(to port: UInt16, payload: Int) -> [UInt8] {
        var d = [UInt8](repeating: 0x5A, count: 8 + payload)
        d.withUnsafeMutableBytes {
            UDPRepr(sourcePort: 5000, destinationPort: port, payloadLength: payload)
                .emit(into: UDPMutableHeader(unchecked: $0), pseudoHeader: .ipv4(source: peer, destination: host))
        }
        return frame(proto: .udp, d)
    }

    static func echo(payload: Int) -> [UInt8] {
        var m = [UInt8](repeating: 0x61, count: 8 + payload)
        m.withUnsafeMutableBytes {
            ICMPv4Repr(message: .echoRequest(identifier: 1, sequenceNumber: 1), payloadLength: payload)
                .emit(into: ICMPv4MutableHeader(unchecked: $0))
        }
        return frame(proto: .icmp, m)
    }

    static func syn(from port: UInt16, to destinationPort: UInt16 = 80) -> [UInt8] {
        var s = [UInt8](repeating: 0, count: 20)
        s.withUnsafeMutableBytes {
            TCPRepr(sourcePort: port, destinationPort: destinationPort, sequenceNumber: 1, flags: [.syn], payloadLength: 0)
                .emit(into: TCPMutableHeader(unchecked: $0), pseudoHeader: .ipv4(source: peer, destination: host))
        }
        return frame(proto: .tcp, s)
    }

    /// The peer's MAC, learned from its ARP request for the host.
    static func learnPeer(_ driver: ElementDriver) {
        var a = [UInt8](repeating: 0, count: 42)
        a.withUnsafeMutableBytes { b in
            EthernetRepr(destination: .broadcast, source: peerMAC, etherType: .arp).emit(into: EthernetMutableHeader(unchecked: b))
            ARPRepr(operation: .request, senderHardwareAddress: peerMAC, senderProtocolAddress: peer,
                    targetHardwareAddress: .zero, targetProtocolAddress: host)
                .emit(into: ARPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[14...])))
        }
        #expect(driver.send(a, on: PortID(0), at: .seconds(0)).verdict == .consumed)
    }

    /// A 3000-byte datagram to the echo port: the echo used to be copied
    /// whole into the host's 2048-byte scratch buffer (a trap in a debug
    /// build, a heap overflow in a release one). Now it is refused, counted.
    @Test func aJumboUDPEchoIsRefusedNotWrittenPastTheBuffer() {
        let h = Self.jumboHost()
        let driver = ElementDriver(h)
        Self.learnPeer(driver)
        let out = driver.send(Self.udp(to: 7, payload: 3000), on: PortID(0), at: .seconds(1))
        #expect(out.verdict == .consumed)
        #expect(out.emitted.isEmpty)
        #expect(h.drops.counts[.frameTooLarge] == 1)
        #expect(h.counters.unsent == 1)
        // One that fits is echoed.
        #expect(driver.send(Self.udp(to: 7, payload: 1000), on: PortID(0), at: .seconds(1)).emitted.count == 1)
    }

    /// An echo request whose reply is larger than an emitter slot (a
    /// 2054-byte frame): it used to be written past the slot.
    @Test func anEchoReplyLargerThanAnEmitterSlotIsRefused() {
        let h = Self.jumboHost()
        let driver = ElementDriver(h)
        Self.learnPeer(driver)
        let out = driver.send(Self.echo(payload: 2012), on: PortID(0), at: .seconds(1))   // IP length 2040
        #expect(out.verdict == .consumed)
        #expect(out.emitted.isEmpty)
        #expect(h.drops.counts[.frameTooLarge] == 1)
        #expect(driver.send(Self.echo(payload: 1400), on: PortID(0), at: .seconds(1)).emitted.count == 1)
    }

    /// Refused frames are drops, delivered ones consumed; every drop
    /// counted is one of those or a packet of the host's own it could not send.
    @Test func refusedFramesAreDropsAndTheDropsAddUp() {
        let h = Self.jumboHost()
        let driver = ElementDriver(h)
        Self.learnPeer(driver)
        #expect(driver.send(Self.udp(to: 9, payload: 4), on: PortID(0), at: .seconds(1)).verdict == .drop(HostModel.noSocket))
        #expect(driver.send(Self.syn(from: 1000, to: 81), on: PortID(0), at: .seconds(1)).verdict == .drop(HostModel.noListener))
        #expect(driver.send(Self.frame(proto: .udp, [0, 1, 0, 2, 0, 8, 0, 0], to: IPv4Address(10, 0, 7, 3)), on: PortID(0),
                            at: .seconds(1)).verdict == .drop(.notForUs))
        #expect(driver.send(Self.echo(payload: 8), on: PortID(0), at: .seconds(1)).verdict == .consumed)
        #expect(driver.send(Self.syn(from: 1001), on: PortID(0), at: .seconds(1)).verdict == .consumed)
        #expect(h.drops.total == 3 + h.counters.unsent)
    }

    /// SYNs from ever new ports used to grow the server table without end,
    /// and half-open connections stayed for ever.
    @Test func serverConnectionsAreBoundedAndForgottenWhenIdle() {
        let h = Self.jumboHost(maxServerConnections: 4)
        let driver = ElementDriver(h)
        Self.learnPeer(driver)
        for port in UInt16(2000)..<2004 {
            let out = driver.send(Self.syn(from: port), on: PortID(0), at: .seconds(1))
            #expect(out.verdict == .consumed && out.emitted.count == 1)   // SYN-ACK
        }
        #expect(driver.send(Self.syn(from: 2004), on: PortID(0), at: .seconds(1)).verdict == .drop(HostModel.backlogFull))
        #expect(h.serverConnectionCount == 4 && h.counters.backlogDrops == 1)
        _ = driver.tick(at: .seconds(60))
        #expect(h.serverConnectionCount == 4)
        _ = driver.tick(at: .seconds(61))
        #expect(h.serverConnectionCount == 0)
        #expect(driver.send(Self.syn(from: 2004), on: PortID(0), at: .seconds(62)).emitted.count == 1)
    }
}
