import Datapath
import Wire

/// A small kernel-like IPv4 host for the simulator: what a lab host's Linux
/// stack and the built-in server (`wirelab serve`) do, to the extent that
/// captures show it.
///
/// - Interfaces with addresses, routes (connected from the addresses, then
///   the static ones; an ECMP route uses its first next hop), longest
///   prefix wins. Weak host model: a packet for any local address is
///   accepted on any interface, as Linux does.
/// - Local-only addresses (`localAddresses`): a real server's VIPs on `lo`.
///   They are accepted and used as the source of replies but never
///   answered in ARP (`arp_ignore=1`/`arp_announce=2`, set with them).
/// - ARP: requests for an address of the receiving interface are answered
///   (and, without `arpIgnore`, for any interface address); the sender of a
///   request for us, a reply, or an already known sender is learned.
///   Packets wait in a bounded queue while their next hop resolves;
///   requests are retried by `tick` and given up (`arp-unresolved`).
///   A request's source address is the egress interface's address on the
///   target's subnet (never a VIP: `arp_announce=2`).
/// - ICMP: echo requests answered (source = the address asked); echo
///   replies and destination-unreachable errors recorded for the client.
/// - UDP: the `udpEchoPort` echoes each datagram back; replies to a client
///   port are recorded; anything else → ICMP port unreachable.
/// - TCP: a listener on `httpPort` answers one request per connection like
///   `BuiltinServer` (same response bytes, then FIN) — unless the request
///   asks `Connection: keep-alive`: then the answer says so and the
///   connection stays open for the next request (`DrillHTTP.asksKeepAlive`).
///   Clients: `connect`
///   (optionally sending a request, e.g. an HTTP GET) records success,
///   refusal (RST), ICMP errors and time-outs (SYN retransmitted after 1 s,
///   2 s, … like Linux' initial RTO); `connect(…, keepOpen: true)` keeps a
///   connection open, `send(_:on:)` writes more on it, `abort` resets it.
///   Data (a request, an answer) not acknowledged is sent again after
///   200 ms (Linux' minimum RTO), 400 ms, … at the host's next `tick`, given
///   up after 8 tries; data that came before is acknowledged again.
///   A segment for no connection gets a RST
///   (RFC 9293 §3.10.7.1): so does an unexpected SYN-ACK.
/// - IPIP (`decapsulatesIPIP`, TUN real servers): an IPv4-in-IPv4 packet to
///   a local address is unwrapped and the inner packet received.
/// - Outgoing: TTL 64, IP identification from a per-host counter,
///   ephemeral ports from a per-host counter, initial sequence numbers from
///   the 4-tuple and a counter: the same calls give the same bytes.
///
/// Not done: forwarding (hosts drop packets for other addresses,
/// `not-for-us`), traffic to its own addresses (no loopback: it goes out and
/// is not answered), reassembly (`fragment`), IP options, retransmitted
/// FINs, windows, SACK and timestamps.
///
/// Like the other elements it does no I/O and reads no clock. It allocates
/// when a connection opens and for what it records for the caller; echo
/// replies, port unreachables and resets are built in the emitter's slots.
public final class HostModel: Element {
    /// One interface (port) of the host, in the node's interface order.
    public typealias Interface = PortConfiguration

    public struct Route: Hashable, Sendable {
        public var destination: IPv4Prefix
        public var gateway: IPv4Address
        public init(_ destination: IPv4Prefix, via gateway: IPv4Address) {
            self.destination = destination
            self.gateway = gateway
        }
    }

    public struct Configuration: Sendable {
        /// The node's name: what the HTTP server answers with.
        public var name: String
        public var interfaces: [Interface]
        /// `net.ipv4.conf.all.ignore_routes_with_linkdown=1`: routes and
        /// next hops through a port without carrier are not used (the lab
        /// sets it on a host with an ECMP route). Off: Linux's default, a
        /// route over a dead link stays and what goes there is lost.
        public var ignoresRoutesWithLinkdown = false
        /// Static routes (connected ones come from the addresses).
        public var routes: [Route]
        /// Addresses on `lo` (VIPs of DR/TUN services): local, never in ARP.
        public var localAddresses: [IPv4Address]
        /// `arp_ignore=1`: answer ARP only for addresses of the receiving interface.
        public var arpIgnore: Bool
        /// Unwrap IPIP packets to a local address (TUN real servers).
        public var decapsulatesIPIP: Bool
        public var httpPort: UInt16?
        public var udpEchoPort: UInt16?
        /// TCP listeners whose connections carry a byte stream for the
        /// host's owner (a node's control plane: BGP on 179), not HTTP:
        /// see `HostModel+Sockets.swift`.
        public var streamPorts: Set<UInt16> = []
        public var arp: ARPCache.Configuration
        /// First ephemeral port (Linux' ip_local_port_range starts at 32768).
        public var firstEphemeralPort: UInt16
        /// SYN retransmissions before a connect fails (Linux' tcp_syn_retries is 6;
        /// fewer here so a simulated time-out is short).
        public var synRetries: Int
        /// Record every packet delivered locally (`deliveries`).
        public var recordsDeliveries: Bool
        /// Seconds after which a client connection still open is given up
        /// (`timedOut`), like curl's --max-time: the simulator stops waiting.
        public var connectionTimeout: Double
        /// Server connections (half-open ones included) held at most; a SYN
        /// beyond is dropped (`syn-backlog-full`), like a full listen queue.
        public var maxServerConnections: Int
        /// Seconds without a segment after which a server connection is
        /// forgotten (a handshake never completed, a client that vanished),
        /// like Linux giving up on SYN-ACK retries or FIN-WAIT.
        public var serverIdleTimeout: Double

        public init(name: String, interfaces: [Interface], routes: [Route] = [], localAddresses: [IPv4Address] = [],
                    arpIgnore: Bool = false, decapsulatesIPIP: Bool = false, httpPort: UInt16? = nil,
                    udpEchoPort: UInt16? = nil,
                    arp: ARPCache.Configuration = .init(entryLifetime: 60, retryInterval: 1, maxRetries: 3,
                                                        queuePerAddress: 100, refreshLead: 0),
                    firstEphemeralPort: UInt16 = 32768, synRetries: Int = 2, recordsDeliveries: Bool = true,
                    connectionTimeout: Double = 30, maxServerConnections: Int = 4096, serverIdleTimeout: Double = 60) {
            self.name = name
            self.interfaces = interfaces
            self.routes = routes
            self.localAddresses = localAddresses
            self.arpIgnore = arpIgnore
            self.decapsulatesIPIP = decapsulatesIPIP
            self.httpPort = httpPort
            self.udpEchoPort = udpEchoPort
            self.arp = arp
            self.firstEphemeralPort = firstEphemeralPort
            self.synRetries = synRetries
            self.recordsDeliveries = recordsDeliveries
            self.connectionTimeout = connectionTimeout
            self.maxServerConnections = maxServerConnections
            self.serverIdleTimeout = serverIdleTimeout
        }
    }

    public struct Counters: Sendable, Equatable {
        public var received: UInt64 = 0
        public var sent: UInt64 = 0
        public var arpRequestsSent: UInt64 = 0
        public var arpRepliesSent: UInt64 = 0
        public var echoRepliesSent: UInt64 = 0
        public var udpEchoed: UInt64 = 0
        public var resetsSent: UInt64 = 0
        public var portUnreachablesSent: UInt64 = 0
        public var protocolUnreachablesSent: UInt64 = 0
        public var httpRequestsServed: UInt64 = 0
        public var ipipDecapsulated: UInt64 = 0
        /// Packets that waited for ARP and were sent when it resolved.
        public var releasedAfterResolution: UInt64 = 0
        /// Packets the host made (replies, resets, its own traffic) that it
        /// could not send or queue: no route, too big, ARP queue full.
        /// Counted in `drops` too, by reason; with it, every drop counted is
        /// a frame that came in, a held frame, or one of these.
        public var unsent: UInt64 = 0
        /// SYNs dropped because `maxServerConnections` were open.
        public var backlogDrops: UInt64 = 0
    }

    /// An echo reply that came back.
    public struct PingReply: Hashable, Sendable {
        public var from: IPv4Address
        public var identifier: UInt16
        public var sequence: UInt16
        public var timeToLive: UInt8
        public var at: Instant
    }

    /// A UDP datagram received on a client port.
    public struct UDPReply: Hashable, Sendable {
        public var from: IPv4Address
        public var sourcePort: UInt16
        public var localPort: UInt16
        public var payload: [UInt8]
        public var at: Instant
        /// The IP TTL it arrived with (BFD accepts 255 only, RFC 5881).
        public var timeToLive: UInt8 = 64
    }

    /// An ICMP error received about something this host sent.
    public struct ICMPError: Hashable, Sendable {
        public var from: IPv4Address
        public var type: UInt8
        public var code: UInt8
        /// The quoted packet's protocol, destination and ports (0 for ICMP).
        public var quotedProtocol: IPProtocol
        public var quotedDestination: IPv4Address
        public var quotedSourcePort: UInt16
        public var quotedDestinationPort: UInt16
        public var at: Instant
    }

    /// A packet delivered to this host (after any IPIP decapsulation).
    public struct Delivery: Hashable, Sendable {
        public var port: PortID
        public var source: IPv4Address
        public var destination: IPv4Address
        public var proto: IPProtocol
        public var sourcePort: UInt16
        public var destinationPort: UInt16
        /// Arrived inside an IPIP packet.
        public var decapsulated: Bool
        public var at: Instant
    }

    /// How a client connection ended (or where it is).
    public enum ConnectionState: String, Hashable, Sendable {
        case connecting, established, closing
        /// Handshake done, and the peer closed after any answer (success).
        case closed
        /// RST in answer to the SYN: nobody listens.
        case refused
        /// RST after the handshake.
        case reset
        /// An ICMP destination unreachable about it.
        case unreachable
        /// No answer to the SYN and its retransmissions.
        case timedOut
        /// No route to the destination.
        case noRoute

        public var isFinished: Bool { self != .connecting && self != .established && self != .closing }
        /// The TCP handshake completed.
        public var connected: Bool { self == .established || self == .closing || self == .closed || self == .reset }
    }

    /// A TCP connection this host opened.
    public struct ClientConnection: Hashable, Sendable {
        public var remote: IPv4Address
        public var remotePort: UInt16
        public var local: IPv4Address
        public var localPort: UInt16
        public var state: ConnectionState
        /// Whether the handshake ever completed.
        public var wasEstablished: Bool
        /// Everything the server sent.
        public var received: [UInt8]
        public var openedAt: Instant
        public var finishedAt: Instant?
        /// When the handshake completed.
        public var establishedAt: Instant? = nil
        /// When data last came in (the end of an answer on a kept-open connection).
        public var lastDataAt: Instant? = nil

        /// The HTTP body (after the blank line), if a response came.
        public var httpBody: String? {
            guard let end = HostModel.headerEnd(received) else { return nil }
            return String(decoding: received[end...], as: UTF8.self)
        }
        /// The HTTP status line, if a response came.
        public var httpStatusLine: String? {
            guard let cr = received.firstIndex(of: 13), HostModel.headerEnd(received) != nil else { return nil }
            return String(decoding: received[..<cr], as: UTF8.self)
        }
    }

    public typealias ConnectionID = Int

    public static let notForUs = DropReason.notForUs
    public static let noSocket = DropReason("port-unreachable")
    public static let fragment = DropReason("fragment")
    public static let badChecksum = DropReason("bad-checksum")
    public static let unsupported = DropReason("unsupported")
    public static let noListener = DropReason("no-listener")
    public static let backlogFull = DropReason("syn-backlog-full")

    public let portCount: Int
    public let configuration: Configuration
    public internal(set) var counters = Counters()
    public private(set) var drops = DropCounters()
    public internal(set) var arp: ARPCache
    public private(set) var pingReplies: [PingReply] = []
    public internal(set) var udpReplies: [UDPReply] = []
    public private(set) var icmpErrors: [ICMPError] = []
    public private(set) var connections: [ClientConnection] = []
    public private(set) var deliveries: [Delivery] = []

    /// Connected and static routes.
    var fib: RoutingTable
    let portMACs: [MACAddress]
    let portMTUs: [Int]
    let addresses: InterfaceAddresses
    // Few addresses per host: a linear scan beats hashing.
    let interfaceAddresses: [IPv4Address]
    let localOnly: [IPv4Address]
    let parser = FrameParser(verifiesIPv4Checksum: true)

    // Deterministic counters.
    var nextIdentification: UInt16 = 1
    var nextEphemeral: UInt16
    var connectionCounter: UInt32 = 0

    // TCP.
    struct FourTuple: Hashable {
        var local: IPv4Address, localPort: UInt16, remote: IPv4Address, remotePort: UInt16
    }
    enum ServerState { case synReceived, established, finSent, closed }
    struct ServerConnection {
        var state: ServerState
        var sendNext: UInt32     // our next sequence number
        var receiveNext: UInt32  // next byte expected from the client
        var request: [UInt8]
        var finReceived: Bool
        /// When the last segment of the connection came in.
        var lastSeen: Instant
        /// The answers not acknowledged yet.
        var unacked = Unacked()
    }
    var servers: [FourTuple: ServerConnection] = [:]
    struct ClientControl {
        var index: Int
        var sendNext: UInt32
        var receiveNext: UInt32
        var request: [UInt8]
        var closeAfterConnect: Bool
        /// Stays open after its request (no `connectionTimeout`): `send` writes more.
        var keepOpen: Bool
        var synSent: Int
        var retransmitAt: Instant
        var finSent: Bool
        var peerFinReceived: Bool
        /// What was sent after the handshake and not acknowledged yet.
        var unacked = Unacked()
    }
    var clients: [FourTuple: ClientControl] = [:]

    /// Data sent and not acknowledged yet, sent again on a time-out
    /// (RFC 6298 §5: the timer restarts on each acknowledgment, doubles on
    /// each retransmission; 200 ms is Linux' TCP_RTO_MIN, where a lab's
    /// round trips put its RTO).
    struct Unacked {
        static let timeout: UInt64 = 200_000_000
        static let maxRetries = 8
        var bytes: [UInt8] = []
        /// The sequence number of `bytes[0]`.
        var start: UInt32 = 0
        var retransmitAt: Instant?
        var retries = 0

        mutating func sent(_ data: [UInt8], sequence: UInt32, now: Instant) {
            if bytes.isEmpty { start = sequence }
            bytes.append(contentsOf: data)
            if retransmitAt == nil { retransmitAt = now.adding(nanoseconds: Self.timeout) }
        }

        mutating func acknowledged(_ ack: UInt32, now: Instant) {
            guard !bytes.isEmpty else { return }
            let n = Int(Int32(bitPattern: ack &- start))
            guard n > 0 else { return }
            let acked = min(n, bytes.count)
            bytes.removeFirst(acked)
            start &+= UInt32(acked)
            retries = 0
            retransmitAt = bytes.isEmpty ? nil : now.adding(nanoseconds: Self.timeout)
        }

        /// Due for retransmission at `now`: the segment's payload and
        /// sequence number, the timer backed off; nil if not due. Gives up
        /// (`exhausted`) after `maxRetries`.
        mutating func due(_ now: Instant) -> (payload: [UInt8], sequence: UInt32)? {
            guard let at = retransmitAt, at <= now, !bytes.isEmpty else { return nil }
            retries += 1
            retransmitAt = now.adding(nanoseconds: Self.timeout << UInt64(min(retries, 16)))
            return (Array(bytes.prefix(1400)), start)
        }
        var exhausted: Bool { retries >= Self.maxRetries }
    }

    static func sortKey(_ k: FourTuple) -> (UInt16, UInt32, UInt16, UInt32) {
        (k.localPort, k.remote.rawValue, k.remotePort, k.local.rawValue)
    }
    var udpClientPorts: Set<UInt16> = []

    /// Scratch for building one IPv4 packet (then framed into the emitter).
    let scratch: UnsafeMutableRawBufferPointer
    /// Holds a decapsulated inner packet while it is received.
    let innerScratch: UnsafeMutableRawBufferPointer

    public init(configuration: Configuration) {
        self.configuration = configuration
        portCount = configuration.interfaces.count
        portMACs = configuration.interfaces.map(\.mac)
        portMTUs = configuration.interfaces.map(\.mtu)
        let addresses = InterfaceAddresses(configuration.interfaces.map(\.addresses))
        self.addresses = addresses
        interfaceAddresses = configuration.interfaces.flatMap { $0.addresses.map(\.address) }
        localOnly = configuration.localAddresses
        arp = ARPCache(configuration: configuration.arp)
        nextEphemeral = configuration.firstEphemeralPort
        var statics: [IPv4Prefix: RouteEntry] = [:]
        for route in configuration.routes {
            // Linux refuses a gateway that is not on a connected subnet. An
            // ECMP route (several of one prefix) keeps all its next hops; a
            // host model uses the first live one (it does not hash flows).
            guard let port = addresses.port(reaching: route.gateway) else { continue }
            let destination = route.destination.canonical
            let hop = RouteEntry.NextHop(gateway: route.gateway, port: port)
            if case let .via(hops)? = statics[destination]?.kind {
                statics[destination] = .via(destination, hops + [hop])
            } else if statics[destination] == nil {
                statics[destination] = .via(destination, [hop])
            }
        }
        var fib = RoutingTable()
        // Connected routes last: a static route for a connected prefix loses.
        fib.insert(contentsOf: Array(statics.values) + addresses.connectedRoutes)
        self.fib = fib
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        innerScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048 + 14, alignment: 16)
    }

    deinit {
        scratch.deallocate()
        innerScratch.deallocate()
    }

    /// A port's carrier changed (the simulator's `updateLinks`): with
    /// `ignoresRoutesWithLinkdown`, its routes go or come back, as the
    /// kernel's do; otherwise nothing changes.
    public func setLink(_ port: PortID, up: Bool) {
        guard configuration.ignoresRoutesWithLinkdown else { return }
        fib.setLink(port, up: up)
    }

    /// Whether `address` is one of this host's (interface or `lo`).
    public func isLocal(_ address: IPv4Address) -> Bool {
        interfaceAddresses.contains(address) || localOnly.contains(address)
    }

    /// TCP connections the server side holds (half-open ones included).
    public var serverConnectionCount: Int { servers.count }
    /// Client connections not finished yet.
    public var openClientConnectionCount: Int { clients.count }

    /// True while the host waits for something: a connection not finished,
    /// an address being resolved.
    public var isBusy: Bool { !clients.isEmpty || !arp.pending.isEmpty }

    // MARK: - The element contract

    public func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, emit: inout Emitter) -> Verdict {
        let frame = packet.readOnly
        guard port.rawValue >= 0 && port.rawValue < portCount else { return drop(.notForUs) }
        let parsed: ParsedFrame
        do throws(WireError) {
            parsed = try parser.parse(frame)
        } catch {
            return drop(.malformed(error.description))
        }
        guard parsed.destinationMAC == portMACs[port.rawValue] || parsed.destinationMAC.isBroadcast else {
            return drop(.notForUs)
        }
        guard !parsed.hasVLANTag else { return drop(Self.unsupported) }
        counters.received &+= 1
        // A frame the host takes in is `.consumed`; one it refuses is a
        // `.drop` with the reason counted once.
        if parsed.etherType == .arp {
            if let reason = receiveARP(frame, parsed, port: port, now: now, emit: &emit) { return drop(reason) }
            return .consumed
        }
        guard parsed.etherType == .ipv4 else { return drop(.unknownEtherType) }
        guard !parsed.destinationMAC.isBroadcast else { return drop(.notForUs) }
        let ip = UnsafeRawBufferPointer(rebasing: frame[parsed.l3Offset..<(parsed.l3Offset + parsed.ipLength)])
        if let reason = receiveIPv4(ip, parsed, port: port, decapsulated: false, now: now, emit: &emit) { return drop(reason) }
        return .consumed
    }

    public func tick(now: Instant, emit: inout Emitter) {
        arp.expire(now: now, retry: { address, pending in
            sendARPRequest(for: address, on: pending.port, emit: &emit)
        }, giveUp: { _, frames in
            for _ in frames { drops.count(.arpUnresolved) }
        })
        // SYN retransmissions and connect time-outs; connections open too long.
        var due: [FourTuple] = []
        let deadline = UInt64(configuration.connectionTimeout * 1e9)
        var stale: [FourTuple] = []
        var dataDue: [FourTuple] = []
        for (key, c) in clients {
            if connections[c.index].state.connected {
                if !c.keepOpen, now.nanoseconds &- connections[c.index].openedAt.nanoseconds >= deadline { stale.append(key) }
                if let at = c.unacked.retransmitAt, at <= now { dataDue.append(key) }
            } else if c.retransmitAt <= now {
                due.append(key)
            }
        }
        for key in stale { if let c = clients[key] { finish(key, c.index, .timedOut, now: now) } }
        // Server connections nothing has been heard of for a while.
        let idle = UInt64(configuration.serverIdleTimeout * 1e9)
        if servers.contains(where: { now.nanoseconds &- $0.value.lastSeen.nanoseconds >= idle }) {
            servers = servers.filter { now.nanoseconds &- $0.value.lastSeen.nanoseconds < idle }
        }
        due.sort { ($0.localPort, $0.remote.rawValue, $0.remotePort) < ($1.localPort, $1.remote.rawValue, $1.remotePort) }
        for key in due {
            guard var c = clients[key] else { continue }
            if c.synSent > configuration.synRetries {
                finish(key, c.index, .timedOut, now: now)
                continue
            }
            c.synSent += 1
            c.retransmitAt = now.adding(nanoseconds: UInt64(1) << UInt64(c.synSent - 1) * 1_000_000_000)
            clients[key] = c
            sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                    sequence: c.sendNext &- 1, acknowledgment: 0, flags: .syn, payload: nil, mss: true,
                    now: now, emit: &emit)
        }
        retransmitData(clients: dataDue, now: now, emit: &emit)
    }

    /// Sends again what clients and servers sent and was not acknowledged
    /// in time (in a fixed order: the same bytes run after run).
    func retransmitData(clients dataDue: [FourTuple], now: Instant, emit: inout Emitter) {
        for key in dataDue.sorted(by: { Self.sortKey($0) < Self.sortKey($1) }) {
            guard var c = clients[key], let (payload, sequence) = c.unacked.due(now) else { continue }
            if c.unacked.exhausted { finish(key, c.index, .timedOut, now: now); continue }
            clients[key] = c
            sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                    sequence: sequence, acknowledgment: c.receiveNext, flags: [.psh, .ack], payload: payload,
                    mss: false, now: now, emit: &emit)
        }
        let serversDue = servers.compactMap { k, c in c.unacked.retransmitAt.map { $0 <= now } == true ? k : nil }
        for key in serversDue.sorted(by: { Self.sortKey($0) < Self.sortKey($1) }) {
            guard var c = servers[key], let (payload, sequence) = c.unacked.due(now) else { continue }
            if c.unacked.exhausted { servers[key] = nil; continue }
            servers[key] = c
            sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                    sequence: sequence, acknowledgment: c.receiveNext, flags: [.psh, .ack], payload: payload,
                    mss: false, now: now, emit: &emit)
        }
    }

    // MARK: - What the simulator asks of a host

    /// Sends a complete IPv4 packet as a raw IP socket with IP_HDRINCL
    /// would: routed by destination, framed after ARP. The header is
    /// taken as given, except that an identification of 0 is filled in and
    /// the header checksum is computed (as the kernel does). False (and a
    /// `no-route` drop) if no route; too short or not IPv4: `malformed`.
    @discardableResult
    public func sendIPv4(_ packet: UnsafeRawBufferPointer, now: Instant, emit: inout Emitter) -> Bool {
        guard packet.count >= 20, packet.count <= scratch.count, packet[0] >> 4 == 4,
              Int(packet[0] & 0x0F) * 4 >= 20, Int(packet[0] & 0x0F) * 4 <= packet.count else {
            unsent(.malformed("raw-packet")); return false
        }
        scratch.copyMemory(from: packet)
        let headerLength = Int(packet[0] & 0x0F) * 4
        if scratch.wireU16(4) == 0 { scratch.wireSetU16(takeIdentification(), 4) }
        scratch.wireSetU16(0, 10)
        scratch.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: scratch[0..<headerLength])), 10)
        return transmit(length: packet.count, now: now, emit: &emit)
    }

    /// Sends an ICMP echo request (DF set, TTL 64, 56 bytes of payload like `ping`).
    @discardableResult
    public func ping(_ destination: IPv4Address, identifier: UInt16, sequence: UInt16, payloadLength: Int = 56,
                     now: Instant, emit: inout Emitter) -> Bool {
        guard let source = sourceAddress(for: destination) else { unsent(.noRoute); return false }
        let length = 8 + min(payloadLength, 1400)
        let icmp = UnsafeMutableRawBufferPointer(rebasing: scratch[20..<(20 + length)])
        icmp.wireSetU8(8, 0); icmp.wireSetU8(0, 1); icmp.wireSetU16(0, 2)
        icmp.wireSetU16(identifier, 4); icmp.wireSetU16(sequence, 6)
        for i in 8..<length { icmp.wireSetU8(UInt8(truncatingIfNeeded: i), i) }
        icmp.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(icmp)), 2)
        writeIPv4Header(source: source, destination: destination, proto: .icmp, payloadLength: length, dontFragment: true)
        return transmit(length: 20 + length, now: now, emit: &emit)
    }

    /// Sends one UDP datagram from a fresh ephemeral port; answers to that
    /// port land in `udpReplies`. Returns the port (nil: no route).
    @discardableResult
    public func sendUDP(to destination: IPv4Address, port: UInt16, payload: [UInt8], now: Instant,
                        emit: inout Emitter) -> UInt16? {
        guard let source = sourceAddress(for: destination) else { unsent(.noRoute); return nil }
        let localPort = takeEphemeralPort()
        udpClientPorts.insert(localPort)
        sendUDPDatagram(from: source, to: destination, sourcePort: localPort, destinationPort: port,
                        payload: payload.count, now: now, emit: &emit) { payloadBuffer in
            payload.withUnsafeBytes { payloadBuffer.copyMemory(from: $0) }
        }
        return localPort
    }

    /// Opens a TCP connection; once established, sends `request` (if any)
    /// and reads until the server closes; with no request, closes at once
    /// (a connect test) unless `keepOpen`. A `keepOpen` connection is never
    /// given up by `connectionTimeout`: `send(_:on:)` writes more on it,
    /// `abort` ends it. Follow it in `connections[id]`.
    public func connect(to destination: IPv4Address, port: UInt16, request: [UInt8] = [], keepOpen: Bool = false,
                        now: Instant, emit: inout Emitter) -> ConnectionID {
        let id = connections.count
        guard let source = sourceAddress(for: destination) else {
            connections.append(ClientConnection(remote: destination, remotePort: port, local: .any, localPort: 0,
                                                state: .noRoute, wasEstablished: false, received: [],
                                                openedAt: now, finishedAt: now))
            unsent(.noRoute)
            return id
        }
        let localPort = takeEphemeralPort()
        let key = FourTuple(local: source, localPort: localPort, remote: destination, remotePort: port)
        let iss = initialSequence(key)
        connections.append(ClientConnection(remote: destination, remotePort: port, local: source, localPort: localPort,
                                            state: .connecting, wasEstablished: false, received: [],
                                            openedAt: now, finishedAt: nil))
        clients[key] = ClientControl(index: id, sendNext: iss &+ 1, receiveNext: 0, request: request,
                                     closeAfterConnect: request.isEmpty && !keepOpen, keepOpen: keepOpen, synSent: 1,
                                     retransmitAt: now.adding(nanoseconds: 1_000_000_000), finSent: false,
                                     peerFinReceived: false)
        sendTCP(from: source, to: destination, sourcePort: localPort, destinationPort: port, sequence: iss,
                acknowledgment: 0, flags: .syn, payload: nil, mss: true, now: now, emit: &emit)
        return id
    }

    /// Sends `data` on established client connection `id` (after what was
    /// sent before). False if it is not established or already closing.
    @discardableResult
    public func send(_ data: [UInt8], on id: ConnectionID, now: Instant, emit: inout Emitter) -> Bool {
        guard id >= 0, id < connections.count, connections[id].state == .established, !data.isEmpty else { return false }
        let key = clientKey(id)
        guard var c = clients[key], !c.finSent else { return false }
        sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                sequence: c.sendNext, acknowledgment: c.receiveNext, flags: [.psh, .ack], payload: data, mss: false,
                now: now, emit: &emit)
        c.unacked.sent(data, sequence: c.sendNext, now: now)
        c.sendNext &+= UInt32(data.count)
        clients[key] = c
        return true
    }

    /// Gives up client connection `id` as a client closing its socket
    /// unread does: a RST if the handshake completed; it ends `timedOut`.
    public func abort(_ id: ConnectionID, now: Instant, emit: inout Emitter) {
        guard id >= 0, id < connections.count else { return }
        let key = clientKey(id)
        guard let c = clients[key] else { return }
        if connections[id].state.connected {
            sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                    sequence: c.sendNext, acknowledgment: 0, flags: .rst, payload: nil, mss: false, now: now, emit: &emit)
            counters.resetsSent &+= 1
        }
        finish(key, id, .timedOut, now: now)
    }

    /// Forgets the first `count` bytes connection `id` received (a load
    /// that has read them keeps memory flat).
    public func consumeReceived(_ count: Int, of id: ConnectionID) {
        guard id >= 0, id < connections.count, count > 0 else { return }
        if count >= connections[id].received.count {
            connections[id].received = []
        } else {
            connections[id].received.removeFirst(count)
        }
    }

    func clientKey(_ id: ConnectionID) -> FourTuple {
        let c = connections[id]
        return FourTuple(local: c.local, localPort: c.localPort, remote: c.remote, remotePort: c.remotePort)
    }

    /// An HTTP/1.1 GET request as curl sends it.
    public static func httpRequest(host: String, path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: wirelab-sim\r\nAccept: */*\r\n\r\n".utf8)
    }

    /// The built-in server's answer (byte for byte `BuiltinServer.respond`);
    /// to a request asking `Connection: keep-alive`, it says `keep-alive`.
    public static func httpResponse(name: String, keepAlive: Bool = false) -> [UInt8] {
        let body = name + "\n"
        return Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nServer: wirelab\r\nX-Wirelab-Node: \(name)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n\(body)".utf8)
    }

    // MARK: - ARP

    /// Nil: taken in (learned, answered, or simply seen); else why it was refused.
    func receiveARP(_ frame: UnsafeRawBufferPointer, _ parsed: ParsedFrame, port: PortID, now: Instant,
                    emit: inout Emitter) -> DropReason? {
        let arpBytes = UnsafeRawBufferPointer(rebasing: frame[parsed.l3Offset...])
        guard arpBytes.count >= 28, arpBytes.wireU16(0) == 1, arpBytes.wireU16(2) == 0x0800,
              arpBytes[4] == 6, arpBytes[5] == 4 else { return Self.unsupported }
        let op = arpBytes.wireU16(6)
        let senderMAC = arpBytes.wireMAC(8)
        let sender = arpBytes.wireIPv4(14)
        let target = arpBytes.wireIPv4(24)
        let onPort = addresses.byPort[port.rawValue].contains { $0.address == target }
        let forUs = onPort || (!configuration.arpIgnore && interfaceAddresses.contains(target))
        if !sender.isUnspecified, addresses.isOnLink(sender, port: port), forUs || arp.knows(sender) {
            if let released = arp.learn(sender, mac: senderMAC, port: port, now: now) {
                for queued in released { sendQueued(queued, to: senderMAC, port: port, emit: &emit) }
            }
        }
        guard op == 1, forUs else { return nil }
        let mac = portMACs[port.rawValue]
        emit.emit(on: port) { out in
            out.wireSetMAC(senderMAC, 0); out.wireSetMAC(mac, 6); out.wireSetU16(0x0806, 12)
            out.wireSetU16(1, 14); out.wireSetU16(0x0800, 16); out.wireSetU8(6, 18); out.wireSetU8(4, 19); out.wireSetU16(2, 20)
            out.wireSetMAC(mac, 22); out.wireSetIPv4(target, 28); out.wireSetMAC(senderMAC, 32); out.wireSetIPv4(sender, 38)
            return 42
        }
        counters.arpRepliesSent &+= 1
        counters.sent &+= 1
        return nil
    }

    func sendARPRequest(for address: IPv4Address, on port: PortID, emit: inout Emitter) {
        let mac = portMACs[port.rawValue]
        let source = addresses.source(towards: address, port: port) ?? .any
        emit.emit(on: port) { out in
            out.wireSetMAC(.broadcast, 0); out.wireSetMAC(mac, 6); out.wireSetU16(0x0806, 12)
            out.wireSetU16(1, 14); out.wireSetU16(0x0800, 16); out.wireSetU8(6, 18); out.wireSetU8(4, 19); out.wireSetU16(1, 20)
            out.wireSetMAC(mac, 22); out.wireSetIPv4(source, 28); out.wireSetMAC(.zero, 32); out.wireSetIPv4(address, 38)
            return 42
        }
        counters.arpRequestsSent &+= 1
        counters.sent &+= 1
    }

    /// Sends a packet that waited for ARP, or counts why not (once: no emit
    /// is tried without a slot, which the runner would count too).
    func sendQueued(_ queued: ARPCache.QueuedFrame, to mac: MACAddress, port: PortID, emit: inout Emitter) {
        guard queued.bytes.count <= Emitter.slotSize else { drops.count(.frameTooLarge); return }
        guard emit.count < emit.slotCount else { drops.count(.emitQueueFull); return }
        emit.emit(on: port) { out in
            queued.bytes.withUnsafeBytes { out.copyMemory(from: $0) }
            out.wireSetMAC(mac, 0)
            return queued.bytes.count
        }
        counters.sent &+= 1
        counters.releasedAfterResolution &+= 1
    }

    // MARK: - Sending

    /// The source address Linux picks for `destination`: the egress
    /// interface's address on the next hop's subnet, else its first.
    public func sourceAddress(for destination: IPv4Address) -> IPv4Address? {
        guard let (port, hop) = route(to: destination) else { return nil }
        return addresses.source(towards: hop, port: port)
    }

    /// The egress port and next hop (a gateway, or the destination itself) towards `destination`.
    func route(to destination: IPv4Address) -> (port: PortID, nextHop: IPv4Address)? {
        guard let match = fib.lookup(destination) else { return nil }
        switch match.action {
        case .connected: return (match.port, destination)
        case .gateway: let hop = fib.nextHop(match, hash: 0); return (hop.port, hop.gateway)
        case .local, .broadcast: return nil  // (a host's FIB holds neither)
        }
    }

    func takeIdentification() -> UInt16 {
        let id = nextIdentification
        nextIdentification = nextIdentification == .max ? 1 : nextIdentification + 1
        return id
    }

    func takeEphemeralPort() -> UInt16 {
        let port = nextEphemeral
        nextEphemeral = nextEphemeral >= 60999 ? configuration.firstEphemeralPort : nextEphemeral + 1
        return port
    }

    func initialSequence(_ key: FourTuple) -> UInt32 {
        connectionCounter &+= 1
        var h: UInt32 = 2_166_136_261
        for v in [key.local.rawValue, UInt32(key.localPort), key.remote.rawValue, UInt32(key.remotePort), connectionCounter] {
            h = (h ^ v) &* 16_777_619
        }
        return h
    }

    /// Writes a 20-byte IPv4 header at the start of `scratch`.
    func writeIPv4Header(source: IPv4Address, destination: IPv4Address, proto: IPProtocol, payloadLength: Int,
                         dontFragment: Bool, timeToLive: UInt8 = 64) {
        IPv4Repr(sourceAddress: source, destinationAddress: destination, protocol: proto, payloadLength: payloadLength,
                 timeToLive: timeToLive, identification: takeIdentification(), dontFragment: dontFragment)
            .emit(into: IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: scratch[0 ..< 20])))
    }

    /// Routes the packet in `scratch[0..<length]` and frames it (now, or
    /// once ARP resolves the next hop).
    @discardableResult
    func transmit(length: Int, now: Instant, emit: inout Emitter) -> Bool {
        let destination = scratch.wireIPv4(16)
        guard let (port, hop) = route(to: destination) else { unsent(.noRoute); return false }
        guard length <= portMTUs[port.rawValue] else { unsent(.fragmentationNeeded); return false }
        // Frames leave through the emitter's slots: a packet on a jumbo
        // interface may be larger than one (it used to be written past it).
        guard 14 + length <= Emitter.slotSize else { unsent(.frameTooLarge); return false }
        let mac = portMACs[port.rawValue]
        let packet = UnsafeRawBufferPointer(rebasing: scratch[0..<length])
        if let entry = arp.lookup(hop, now: now) {
            // (No slot: the runner counts the overflow.)
            if emit.emit(on: port, { out in
                out.wireSetMAC(entry.mac, 0); out.wireSetMAC(mac, 6); out.wireSetU16(0x0800, 12)
                UnsafeMutableRawBufferPointer(rebasing: out[14..<(14 + length)]).copyMemory(from: packet)
                return 14 + length
            }) { counters.sent &+= 1 }
            return true
        }
        let result = arp.enqueue(for: hop, port: port, now: now) {
            var bytes = [UInt8](repeating: 0, count: 14 + length)
            bytes.withUnsafeMutableBytes { out in
                out.wireSetMAC(.zero, 0); out.wireSetMAC(mac, 6); out.wireSetU16(0x0800, 12)
                UnsafeMutableRawBufferPointer(rebasing: out[14...]).copyMemory(from: packet)
            }
            return ARPCache.QueuedFrame(bytes: bytes, ingressPort: port, previousHop: mac,
                                        originalSource: packet.wireIPv4(12), originalDestination: destination)
        }
        switch result {
        case .sendRequest: sendARPRequest(for: hop, on: port, emit: &emit)
        case .queued: break
        case .full: unsent(.arpQueueFull); return false
        }
        return true
    }

    func sendUDPDatagram(from source: IPv4Address, to destination: IPv4Address, sourcePort: UInt16,
                         destinationPort: UInt16, payload count: Int, timeToLive: UInt8 = 64, now: Instant,
                         emit: inout Emitter, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        // (A datagram larger than the scratch buffer used to be copied in
        // whole: an echo of a jumbo datagram wrote past it.)
        guard 28 + count <= scratch.count else { unsent(.frameTooLarge); return }
        let length = 8 + count
        let udp = UnsafeMutableRawBufferPointer(rebasing: scratch[20..<(20 + length)])
        udp.wireSetU16(sourcePort, 0); udp.wireSetU16(destinationPort, 2); udp.wireSetU16(UInt16(length), 4); udp.wireSetU16(0, 6)
        fill(UnsafeMutableRawBufferPointer(rebasing: udp[8...]))
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp, length: length)
        let sum = InternetChecksum.checksum(UnsafeRawBufferPointer(udp), initial: pseudo)
        udp.wireSetU16(sum == 0 ? 0xFFFF : sum, 6)
        writeIPv4Header(source: source, destination: destination, proto: .udp, payloadLength: length, dontFragment: true,
                        timeToLive: timeToLive)
        transmit(length: 20 + length, now: now, emit: &emit)
    }

    func sendTCP(from source: IPv4Address, to destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16,
                 sequence: UInt32, acknowledgment: UInt32, flags: TCPFlags, payload: [UInt8]?, mss: Bool,
                 now: Instant, emit: inout Emitter) {
        let optionLength = mss ? 4 : 0
        let data = payload ?? []
        let length = 20 + optionLength + data.count
        guard 20 + length <= scratch.count else { unsent(.fragmentationNeeded); return }
        let tcp = UnsafeMutableRawBufferPointer(rebasing: scratch[20..<(20 + length)])
        tcp.wireSetU16(sourcePort, 0); tcp.wireSetU16(destinationPort, 2)
        tcp.wireSetU32(sequence, 4); tcp.wireSetU32(acknowledgment, 8)
        tcp.wireSetU8(UInt8((20 + optionLength) / 4) << 4, 12); tcp.wireSetU8(flags.rawValue, 13)
        tcp.wireSetU16(flags.contains(.rst) ? 0 : 64240, 14); tcp.wireSetU16(0, 16); tcp.wireSetU16(0, 18)
        if mss {
            // MSS = MTU of the egress interface − 40.
            let mtu = route(to: destination).map { portMTUs[$0.port.rawValue] } ?? 1500
            tcp.wireSetU8(2, 20); tcp.wireSetU8(4, 21); tcp.wireSetU16(UInt16(mtu - 40), 22)
        }
        if !data.isEmpty {
            data.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: tcp[(20 + optionLength)...]).copyMemory(from: $0) }
        }
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .tcp, length: length)
        tcp.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(tcp), initial: pseudo), 16)
        writeIPv4Header(source: source, destination: destination, proto: .tcp, payloadLength: length, dontFragment: true)
        transmit(length: 20 + length, now: now, emit: &emit)
    }

    // MARK: - Receiving IPv4

    /// Nil: delivered; else why the packet was refused.
    func receiveIPv4(_ ip: UnsafeRawBufferPointer, _ parsed: ParsedFrame, port: PortID, decapsulated: Bool,
                     now: Instant, emit: inout Emitter) -> DropReason? {
        let source = parsed.sourceIPv4, destination = parsed.destinationIPv4
        guard isLocal(destination) else { return .notForUs }
        guard !parsed.isFragment else { return Self.fragment }
        let payload = UnsafeRawBufferPointer(rebasing: ip[parsed.ipHeaderLength...])
        if configuration.recordsDeliveries {
            deliveries.append(Delivery(port: port, source: source, destination: destination, proto: parsed.protocol,
                                       sourcePort: parsed.hasPorts ? parsed.sourcePort : 0,
                                       destinationPort: parsed.hasPorts ? parsed.destinationPort : 0,
                                       decapsulated: decapsulated, at: now))
        }
        switch parsed.protocol {
        case .icmp:
            return receiveICMP(payload, ip: ip, source: source, destination: destination, timeToLive: parsed.timeToLive,
                        now: now, emit: &emit)
        case .udp:
            return receiveUDP(payload, ip: ip, source: source, destination: destination, now: now, emit: &emit)
        case .tcp:
            return receiveTCP(payload, source: source, destination: destination, now: now, emit: &emit)
        case .ipip where configuration.decapsulatesIPIP && !decapsulated:
            // The inner packet goes through the same parser behind a
            // stand-in Ethernet header (a copy: the outer bytes stay).
            guard payload.count + 14 <= innerScratch.count else { return .malformed("ipip-length") }
            for i in 0..<12 { innerScratch[i] = 0 }
            innerScratch.wireSetU16(0x0800, 12)
            UnsafeMutableRawBufferPointer(rebasing: innerScratch[14..<(14 + payload.count)]).copyMemory(from: payload)
            let innerFrame = UnsafeRawBufferPointer(rebasing: innerScratch[0..<(14 + payload.count)])
            let inner: ParsedFrame
            do throws(WireError) {
                inner = try parser.parse(innerFrame)
            } catch {
                return .malformed(error.description)
            }
            guard inner.isIPv4 else { return Self.unsupported }
            counters.ipipDecapsulated &+= 1
            let innerIP = UnsafeRawBufferPointer(rebasing: innerFrame[14..<(14 + inner.ipLength)])
            return receiveIPv4(innerIP, inner, port: port, decapsulated: true, now: now, emit: &emit)
        default:
            // Linux: ICMP protocol unreachable for a protocol nobody handles.
            sendICMPError(type: 3, code: 2, about: ip, from: destination, to: source, now: now, emit: &emit)
            counters.protocolUnreachablesSent &+= 1
            return Self.unsupported
        }
    }

    func receiveICMP(_ icmp: UnsafeRawBufferPointer, ip: UnsafeRawBufferPointer, source: IPv4Address,
                     destination: IPv4Address, timeToLive: UInt8, now: Instant, emit: inout Emitter) -> DropReason? {
        guard icmp.count >= 8 else { return .malformed("truncated") }
        guard InternetChecksum.sum(icmp) == 0xFFFF else { return Self.badChecksum }
        switch icmp[0] {
        case 8:
            let length = icmp.count
            guard 20 + length <= scratch.count else { unsent(.fragmentationNeeded); return nil }
            let out = UnsafeMutableRawBufferPointer(rebasing: scratch[20..<(20 + length)])
            out.copyMemory(from: icmp)
            out.wireSetU8(0, 0); out.wireSetU16(0, 2)
            out.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(out)), 2)
            writeIPv4Header(source: destination, destination: source, proto: .icmp, payloadLength: length, dontFragment: false)
            if transmit(length: 20 + length, now: now, emit: &emit) { counters.echoRepliesSent &+= 1 }
        case 0:
            pingReplies.append(PingReply(from: source, identifier: icmp.wireU16(4), sequence: icmp.wireU16(6),
                                         timeToLive: timeToLive, at: now))
        case 3, 11:
            // The quote: IP header + at least 8 bytes.
            let quote = UnsafeRawBufferPointer(rebasing: icmp[8...])
            guard quote.count >= 28, quote[0] >> 4 == 4 else { return .malformed("icmp-quote") }
            let ihl = Int(quote[0] & 0x0F) * 4
            guard quote.count >= ihl + 8 else { return .malformed("icmp-quote") }
            let proto = IPProtocol(quote[9])
            let quotedSource = quote.wireIPv4(12), quotedDestination = quote.wireIPv4(16)
            let sp = proto == .tcp || proto == .udp ? quote.wireU16(ihl) : 0
            let dp = proto == .tcp || proto == .udp ? quote.wireU16(ihl + 2) : 0
            icmpErrors.append(ICMPError(from: source, type: icmp[0], code: icmp[1], quotedProtocol: proto,
                                        quotedDestination: quotedDestination, quotedSourcePort: sp,
                                        quotedDestinationPort: dp, at: now))
            if icmp[0] == 3, proto == .tcp {
                let key = FourTuple(local: quotedSource, localPort: sp, remote: quotedDestination, remotePort: dp)
                if let c = clients[key], !connections[c.index].state.connected {
                    finish(key, c.index, .unreachable, now: now)
                }
            }
        default:
            break
        }
        return nil
    }

    func receiveUDP(_ udp: UnsafeRawBufferPointer, ip: UnsafeRawBufferPointer, source: IPv4Address,
                    destination: IPv4Address, now: Instant, emit: inout Emitter) -> DropReason? {
        guard udp.count >= 8 else { return .malformed("truncated") }
        let length = Int(udp.wireU16(4))
        guard length >= 8, length <= udp.count else { return .malformed("udp-length") }
        let datagram = UnsafeRawBufferPointer(rebasing: udp[0..<length])
        if udp.wireU16(6) != 0 {
            let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp, length: length)
            guard InternetChecksum.sum(datagram, initial: pseudo) == 0xFFFF else { return Self.badChecksum }
        }
        let sourcePort = udp.wireU16(0), destinationPort = udp.wireU16(2)
        let payload = UnsafeRawBufferPointer(rebasing: datagram[8...])
        if let echo = configuration.udpEchoPort, destinationPort == echo {
            sendUDPDatagram(from: destination, to: source, sourcePort: echo, destinationPort: sourcePort,
                            payload: payload.count, now: now, emit: &emit) { $0.copyMemory(from: payload) }
            counters.udpEchoed &+= 1
        } else if udpClientPorts.contains(destinationPort) {
            udpReplies.append(UDPReply(from: source, sourcePort: sourcePort, localPort: destinationPort,
                                       payload: Array(payload), at: now, timeToLive: ip[8]))
        } else {
            sendICMPError(type: 3, code: 3, about: ip, from: destination, to: source, now: now, emit: &emit)
            counters.portUnreachablesSent &+= 1
            return Self.noSocket
        }
        return nil
    }

    /// An ICMP error quoting the offending datagram up to 576 bytes in
    /// all, as Linux does.
    func sendICMPError(type: UInt8, code: UInt8, about ip: UnsafeRawBufferPointer, from source: IPv4Address,
                       to destination: IPv4Address, now: Instant, emit: inout Emitter) {
        let quote = UnsafeRawBufferPointer(rebasing: ip[0 ..< min(ip.count, 576 - 28)])
        let header = IPv4Repr(sourceAddress: source, destinationAddress: destination, protocol: .icmp, payloadLength: 0,
                              identification: takeIdentification())
        let length = ICMPv4ErrorMessage.write(.other(type: ICMPv4Type(type), code: code, restOfHeader: 0), quoting: quote,
                                              header: header, into: scratch)
        transmit(length: length, now: now, emit: &emit)
    }

    // MARK: - TCP

    func receiveTCP(_ tcp: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address, now: Instant,
                    emit: inout Emitter) -> DropReason? {
        guard tcp.count >= 20 else { return .malformed("truncated") }
        let dataOffset = Int(tcp[12] >> 4) * 4
        guard dataOffset >= 20, dataOffset <= tcp.count else { return .malformed("tcp-header-length") }
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .tcp, length: tcp.count)
        guard InternetChecksum.sum(tcp, initial: pseudo) == 0xFFFF else { return Self.badChecksum }
        let sourcePort = tcp.wireU16(0), destinationPort = tcp.wireU16(2)
        let seq = tcp.wireU32(4), ack = tcp.wireU32(8)
        let flags = TCPFlags(rawValue: tcp[13])
        let data = UnsafeRawBufferPointer(rebasing: tcp[dataOffset...])
        let key = FourTuple(local: destination, localPort: destinationPort, remote: source, remotePort: sourcePort)

        if clients[key] != nil {
            clientSegment(key, seq: seq, ack: ack, flags: flags, data: data, now: now, emit: &emit)
            return nil
        }
        if servers[key] != nil
            || (flags == .syn && (configuration.httpPort == destinationPort || configuration.streamPorts.contains(destinationPort))) {
            // A full table of server connections drops new SYNs (Linux'
            // listen queue overflow: no answer, the client retries).
            if servers[key] == nil && servers.count >= configuration.maxServerConnections {
                counters.backlogDrops &+= 1
                return Self.backlogFull
            }
            serverSegment(key, seq: seq, ack: ack, flags: flags, data: data, now: now, emit: &emit)
            return nil
        }
        // No socket: RFC 9293 reset generation (as Linux' tcp_v4_send_reset).
        guard !flags.contains(.rst) else { return Self.noListener }
        if flags.contains(.ack) {
            sendTCP(from: destination, to: source, sourcePort: destinationPort, destinationPort: sourcePort,
                    sequence: ack, acknowledgment: 0, flags: .rst, payload: nil, mss: false, now: now, emit: &emit)
        } else {
            let length = UInt32(data.count) &+ (flags.contains(.syn) ? 1 : 0) &+ (flags.contains(.fin) ? 1 : 0)
            sendTCP(from: destination, to: source, sourcePort: destinationPort, destinationPort: sourcePort,
                    sequence: 0, acknowledgment: seq &+ length, flags: [.rst, .ack], payload: nil, mss: false,
                    now: now, emit: &emit)
        }
        counters.resetsSent &+= 1
        return Self.noListener
    }

    func serverSegment(_ key: FourTuple, seq: UInt32, ack: UInt32, flags: TCPFlags, data: UnsafeRawBufferPointer,
                       now: Instant, emit: inout Emitter) {
        func send(_ c: ServerConnection, _ flags: TCPFlags, _ payload: [UInt8]? = nil, mss: Bool = false,
                  sequence: UInt32? = nil) {
            sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                    sequence: sequence ?? c.sendNext, acknowledgment: c.receiveNext, flags: flags, payload: payload,
                    mss: mss, now: now, emit: &emit)
        }
        if flags.contains(.rst) { servers[key] = nil; return }
        if flags.contains(.syn) && !flags.contains(.ack) {
            if var c = servers[key] {
                c.lastSeen = now
                servers[key] = c
                if c.state == .synReceived {
                    send(c, [.syn, .ack], mss: true, sequence: c.sendNext &- 1)   // retransmitted SYN: same SYN-ACK
                } else {
                    send(c, .ack)   // a SYN on an open connection: challenge ACK (RFC 5961 §4)
                }
                return
            }
            let iss = initialSequence(key)
            let c = ServerConnection(state: .synReceived, sendNext: iss &+ 1, receiveNext: seq &+ 1, request: [],
                                     finReceived: false, lastSeen: now)
            servers[key] = c
            send(c, [.syn, .ack], mss: true, sequence: iss)
            return
        }
        guard var c = servers[key] else { return }
        c.lastSeen = now
        if c.state == .synReceived {
            guard flags.contains(.ack), ack == c.sendNext else { return }
            c.state = .established
        }
        if flags.contains(.ack) { c.unacked.acknowledged(ack, now: now) }
        var acknowledge = false
        if !data.isEmpty, seq == c.receiveNext, !c.finReceived {
            c.receiveNext &+= UInt32(data.count)
            if c.state == .established {
                c.request.append(contentsOf: data)
                acknowledge = true
            }
        } else if !data.isEmpty {
            acknowledge = true   // sent again, or out of order: say what we have
        }
        if flags.contains(.fin), seq &+ UInt32(data.count) == c.receiveNext, !c.finReceived {
            c.finReceived = true
            c.receiveNext &+= 1
            acknowledge = true
        }
        // Each complete request is answered; one that does not ask to be
        // kept alive is the last (the answer, then FIN). (A stream port's
        // bytes wait for the owner: `takeStreamData`.)
        let http = !configuration.streamPorts.contains(key.localPort)
        while http, c.state == .established, let end = Self.headerEnd(c.request) {
            let keepAlive = DrillHTTP.asksKeepAlive(c.request[..<end])
            let response = Self.httpResponse(name: configuration.name, keepAlive: keepAlive)
            send(c, [.psh, .ack], response)
            c.unacked.sent(response, sequence: c.sendNext, now: now)
            c.sendNext &+= UInt32(response.count)
            counters.httpRequestsServed &+= 1
            acknowledge = false
            if keepAlive {
                c.request.removeFirst(end)
            } else {
                send(c, [.fin, .ack])
                c.sendNext &+= 1
                c.state = .finSent
            }
        }
        if c.state == .established, c.finReceived {
            // The client closed without a full request: close too.
            send(c, [.fin, .ack])
            c.sendNext &+= 1
            c.state = .finSent
            acknowledge = false
        }
        if acknowledge { send(c, .ack) }
        if c.state == .finSent, c.finReceived, ack == c.sendNext {
            servers[key] = nil
            return
        }
        servers[key] = c
    }

    func clientSegment(_ key: FourTuple, seq: UInt32, ack: UInt32, flags: TCPFlags, data: UnsafeRawBufferPointer,
                       now: Instant, emit: inout Emitter) {
        guard var c = clients[key] else { return }
        func send(_ flags: TCPFlags, _ payload: [UInt8]? = nil) {
            sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                    sequence: c.sendNext, acknowledgment: c.receiveNext, flags: flags, payload: payload, mss: false,
                    now: now, emit: &emit)
        }
        let state = connections[c.index].state
        if flags.contains(.rst) {
            if state == .connecting {
                guard flags.contains(.ack), ack == c.sendNext else { return }
                finish(key, c.index, .refused, now: now)
            } else {
                finish(key, c.index, .reset, now: now)
            }
            return
        }
        if state == .connecting {
            guard flags.contains(.syn), flags.contains(.ack), ack == c.sendNext else {
                // A bad ACK in SYN-SENT gets a reset (RFC 9293 §3.10.7.3).
                if flags.contains(.ack), ack != c.sendNext {
                    sendTCP(from: key.local, to: key.remote, sourcePort: key.localPort, destinationPort: key.remotePort,
                            sequence: ack, acknowledgment: 0, flags: .rst, payload: nil, mss: false, now: now, emit: &emit)
                    counters.resetsSent &+= 1
                }
                return
            }
            c.receiveNext = seq &+ 1
            connections[c.index].state = .established
            connections[c.index].wasEstablished = true
            connections[c.index].establishedAt = now
            send(.ack)
            if c.closeAfterConnect {
                send([.fin, .ack])
                c.sendNext &+= 1
                c.finSent = true
                connections[c.index].state = .closing
            } else if !c.request.isEmpty {
                send([.psh, .ack], c.request)
                c.unacked.sent(c.request, sequence: c.sendNext, now: now)
                c.sendNext &+= UInt32(c.request.count)
            }
            clients[key] = c
            return
        }
        if flags.contains(.syn) {
            send(.ack)   // a retransmitted SYN-ACK: our ACK was lost
            return
        }
        if flags.contains(.ack) { c.unacked.acknowledged(ack, now: now) }
        var acknowledge = false
        if !data.isEmpty, seq == c.receiveNext {
            connections[c.index].received.append(contentsOf: data)
            connections[c.index].lastDataAt = now
            c.receiveNext &+= UInt32(data.count)
            acknowledge = true
        } else if !data.isEmpty {
            acknowledge = true   // sent again, or out of order: say what we have
        }
        var peerClosed = false
        if flags.contains(.fin), !c.peerFinReceived, seq &+ UInt32(data.count) == c.receiveNext {
            c.receiveNext &+= 1
            c.peerFinReceived = true
            peerClosed = true
        }
        if peerClosed {
            if c.finSent {
                send(.ack)
                clients[key] = c
                finish(key, c.index, .closed, now: now)
                return
            }
            // curl closes once the server has: FIN+ACK acknowledges theirs.
            send([.fin, .ack])
            c.sendNext &+= 1
            c.finSent = true
            connections[c.index].state = .closing
            clients[key] = c
            return
        }
        if acknowledge { send(.ack) }
        if c.finSent, c.peerFinReceived, flags.contains(.ack), ack == c.sendNext {
            clients[key] = c
            finish(key, c.index, .closed, now: now)
            return
        }
        clients[key] = c
    }

    func finish(_ key: FourTuple, _ index: Int, _ state: ConnectionState, now: Instant) {
        connections[index].state = state
        connections[index].finishedAt = now
        clients[key] = nil
    }

    // MARK: - Helpers

    func drop(_ reason: DropReason) -> Verdict {
        drops.count(reason)
        return .drop(reason)
    }

    /// A packet the host made that it cannot send or queue.
    func unsent(_ reason: DropReason) {
        drops.count(reason)
        counters.unsent &+= 1
    }

    static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}
