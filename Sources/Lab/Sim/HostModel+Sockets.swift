import Datapath
import Wire

extension HostModel {
    /// Opens UDP `port` for answers, as a bound socket would: datagrams to it
    /// are recorded in `udpReplies` instead of getting a port unreachable.
    /// (A probe sent through a raw socket, `wirelab check`'s UDP echo, binds
    /// its source port first, live and in the simulator alike.)
    public func openUDPPort(_ port: UInt16) {
        udpClientPorts.insert(port)
    }
}

/// Byte streams for the host's owner: a node's control plane in the
/// simulator (`SimControlPlane`) runs BGP over the host model's TCP as the
/// live node's BGP thread runs it over its kernel's. A listener on a port
/// of `Configuration.streamPorts` accepts as the HTTP one does, but its
/// bytes wait in the connection for `takeStreamData`; client connections
/// are `connect(…, keepOpen: true)`, `send`, `received`/`consumeReceived`.
extension HostModel {
    typealias StreamKey = FourTuple

    /// Established server connections on stream ports, in a fixed order.
    var streamServers: [StreamKey] {
        servers.compactMap { k, c in c.state == .established && configuration.streamPorts.contains(k.localPort) ? k : nil }
            .sorted { Self.sortKey($0) < Self.sortKey($1) }
    }

    /// Whether server connection `key` is still established (not closed, reset or given up).
    func isStreamOpen(_ key: StreamKey) -> Bool { servers[key]?.state == .established }

    /// The bytes server connection `key` received since the last call.
    func takeStreamData(_ key: StreamKey) -> [UInt8] {
        guard var c = servers[key], !c.request.isEmpty else { return [] }
        let data = c.request
        c.request = []
        servers[key] = c
        return data
    }

    /// Sends `data` on server connection `key` (retransmitted until acknowledged, as an answer is).
    @discardableResult
    func sendStream(_ data: [UInt8], on key: StreamKey, now: Instant, emit: inout Emitter) -> Bool {
        guard var c = servers[key], c.state == .established, !data.isEmpty else { return false }
        sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                sequence: c.sendNext, acknowledgment: c.receiveNext, flags: [.psh, .ack], payload: data, mss: false,
                now: now, emit: &emit)
        c.unacked.sent(data, sequence: c.sendNext, now: now)
        c.sendNext &+= UInt32(data.count)
        servers[key] = c
        return true
    }

    /// Resets server connection `key` (a socket closed with SO_LINGER 0).
    func abortStream(_ key: StreamKey, now: Instant, emit: inout Emitter) {
        guard let c = servers.removeValue(forKey: key) else { return }
        sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                sequence: c.sendNext, acknowledgment: 0, flags: .rst, payload: nil, mss: false, now: now, emit: &emit)
        counters.resetsSent &+= 1
    }

    /// A UDP datagram from `sourcePort` with the given TTL (BFD: 255).
    func sendUDP(from source: IPv4Address, sourcePort: UInt16, to destination: IPv4Address, port: UInt16,
                 payload: [UInt8], timeToLive: UInt8, now: Instant, emit: inout Emitter) {
        sendUDPDatagram(from: source, to: destination, sourcePort: sourcePort, destinationPort: port,
                        payload: payload.count, timeToLive: timeToLive, now: now, emit: &emit) { buffer in
            payload.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }

    /// The datagrams received on `port` (opened with `openUDPPort`) since the last call.
    func takeUDPReplies(port: UInt16) -> [UDPReply] {
        guard udpReplies.contains(where: { $0.localPort == port }) else { return [] }
        let taken = udpReplies.filter { $0.localPort == port }
        udpReplies.removeAll { $0.localPort == port }
        return taken
    }

    /// A neighbour entry that never expires (`ip neigh … nud permanent`, as
    /// LabPlan gives a live node's kernel).
    func addPermanentNeighbour(_ address: IPv4Address, mac: MACAddress, port: PortID) {
        _ = arp.learn(address, mac: mac, port: port, now: .zero)
    }
}
