// The in-process simulator as a check backend (`wirelab sim`, `walk --sim`):
// the same probes and the same engine as live, on virtual links and a
// virtual clock. No root; deterministic when the caller's random generator
// is seeded (the probe's marker and ports are the only random choices).
import Datapath
import Foundation
import LinuxNet
import Topology
import Wire

public final class SimBackend: CheckBackend {
    public let topology: ResolvedTopology
    public let simulator: Simulator
    /// Where the caller writes the simulator's pcapng, if anywhere.
    public var capturePath: String?

    public init(topology: ResolvedTopology, capturePath: String? = nil, options: Simulator.Options = .init()) throws {
        self.topology = topology
        self.capturePath = capturePath
        simulator = try Simulator(topology: topology, options: options)
    }

    public func start() throws {}

    func nanoseconds(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }

    func host(_ name: String) throws -> HostModel {
        guard let h = simulator.host(name) else { throw LabError("'\(name)' is not a host of \(topology.name)") }
        return h
    }

    public func send(_ probe: Probe) throws {
        do { _ = try simulator.sendIPv4(probe.packet, from: probe.from) } catch { throw LabError("\(error)") }
    }

    public func echo(_ probe: Probe, timeout: Double) throws -> Bool {
        let h = try host(probe.from)
        let answered: () -> Bool
        switch probe.proto {
        case .icmp:
            answered = {
                h.pingReplies.contains { $0.identifier == probe.marker.icmpIdentifier && $0.sequence == probe.marker.icmpSequence }
            }
        case .udp:
            h.openUDPPort(probe.sourcePort)
            let nonce = probe.marker.nonce
            answered = { h.udpReplies.contains { $0.localPort == probe.sourcePort && $0.payload.starts(with: nonce) } }
        case .tcp:
            try send(probe)
            _ = simulator.run(limit: nanoseconds(timeout))
            return false
        }
        try send(probe)
        return simulator.run(limit: nanoseconds(timeout), until: answered) && answered()
    }

    public func connect(from: String, to: IPv4Address, port: Int, timeout: Double) throws -> Bool {
        let h = try host(from)
        let id: HostModel.ConnectionID
        do { id = try simulator.connect(from: from, to: to, port: UInt16(port)) } catch { throw LabError("\(error)") }
        _ = simulator.run(limit: nanoseconds(timeout)) { h.connections[id].wasEstablished || h.connections[id].state.isFinished }
        return h.connections[id].wasEstablished
    }

    public func http(from: String, host address: IPv4Address, port: Int, path: String, timeout: Double) throws -> String? {
        let h = try host(from)
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n\r\n".utf8)
        let id: HostModel.ConnectionID
        do { id = try simulator.connect(from: from, to: address, port: UInt16(port), request: request) } catch {
            throw LabError("\(error)")
        }
        _ = simulator.run(limit: nanoseconds(timeout)) { h.connections[id].state.isFinished }
        let received = h.connections[id].received
        return received.isEmpty ? nil : LiveBackend.answeringNode(String(decoding: received, as: UTF8.self))
    }

    public func dropCounters() throws -> NodeDropCounters {
        var out: NodeDropCounters = [:]
        for (node, drops) in simulator.allDrops() { out[node] = drops }
        return out
    }

    /// The simulator records every frame it delivers: nothing to lose.
    public func captureCounters() throws -> [CapturePoint] { [] }

    public func settle(seconds: Double) { simulator.advance(by: nanoseconds(seconds)) }

    public func apply(_ action: DrillEvent.Action, to target: DrillEvent.Target) throws {
        do { try simulator.apply(action, to: target) } catch { throw LabError("\(error)") }
    }

    public func finish() throws -> [PcapNGLink] {
        let links = simulator.captures()
        if let capturePath {
            try FileManager.default.createDirectory(atPath: (capturePath as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try PcapNGFile.write(simulator.pcapng(comment: "wirelab sim \(topology.name)"), to: capturePath)
        }
        return links
    }

    public func stop() {}
}

/// SplitMix64: a small seeded generator, so a simulated run picks the same
/// probe markers and ports every time (byte-identical walks and pcapngs).
public struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1334_9111
        return z ^ (z >> 31)
    }
}
