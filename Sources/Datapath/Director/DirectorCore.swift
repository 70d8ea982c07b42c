import Wire

// The director's control logic behind one narrow API (the Katran way: the
// packet path asks, the control plane configures). The packet-rewriting
// Director element calls `schedule` for every client → VIP packet and
// `lookupReply` for every real → client (NAT) or real → local address
// (FULLNAT) packet, then rewrites bytes as the Decision says. Health checks
// call `setEnabled`, the run loop calls `expire(now:)` from its timer, and
// `wirelab lvs` prints `snapshot()`.
//
// Semantics follow Linux IPVS (net/netfilter/ipvs): new TCP connections
// are scheduled on SYN only (sysctl sloppy_tcp = 0), a SYN on a connection
// in TIME_WAIT or CLOSE that no template controls starts a new one
// (conn_reuse_mode = 1), state and counts move as set_tcp_state() moves
// them, and persistence templates pin clients as ip_vs_sched_persist()
// does. Where IPVS's defaults and wirelab's contract differ it is a
// Configuration switch (see `expireQuiescentTemplate`).

/// Names one connection in the table for the duration of a packet (it may
/// be reused once the connection expires).
public struct ConnectionHandle: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let none = ConnectionHandle(rawValue: ConnectionTable.none)
    public var description: String { self == .none ? "conn -" : "conn \(rawValue)" }
}

/// Why the director made no connection for a packet.
public enum Refusal: String, Hashable, Sendable, CaseIterable {
    /// No virtual service at that protocol/address/port: not for the
    /// director's data path (pass it to the node's own stack, or drop).
    case noService = "lvs-no-service"
    /// TCP without SYN (or with RST) and no connection: IPVS leaves such
    /// packets alone; the Director element drops or passes them.
    case notSyn = "lvs-not-syn"
    /// The scheduler found no real that takes new connections.
    case noRealAvailable = "lvs-no-real"
    /// The connection table is at its size limit.
    case tableFull = "table-full"
    /// FULLNAT: every local address has run out of ports.
    case localPortsExhausted = "lvs-local-ports-exhausted"
    /// NAT: another live connection already owns this reply key (same real
    /// ip:port and same client ip:port through another VIP), so replies
    /// could not be told apart.
    case replyCollision = "lvs-reply-collision"

    /// The drop reason the Director element counts it under.
    public var dropReason: DropReason { DropReason(rawValue) }
}

/// What to do with a client → VIP packet.
public struct Decision: Equatable, Sendable {
    public enum Outcome: Equatable, Sendable {
        /// A packet of a connection the table knows.
        case existing
        /// The first packet of a new connection, just scheduled.
        case created
        /// No connection: nothing to forward.
        case refused(Refusal)
    }

    public var outcome: Outcome
    public var connection: ConnectionHandle
    public var real: RealServerID?
    public var realAddress: IPv4Address
    public var realPort: UInt16
    public var mode: ForwardingMode
    /// FULLNAT: the source address:port to put on the packet towards the real.
    public var localAddress: IPv4Address?
    public var localPort: UInt16?
    /// The connection's state after this packet.
    public var state: ConnectionState

    public var isForwarded: Bool { outcome == .existing || outcome == .created }

    public static func refused(_ reason: Refusal) -> Decision {
        Decision(outcome: .refused(reason), connection: .none, real: nil, realAddress: .any, realPort: 0,
                 mode: .dr, localAddress: nil, localPort: nil, state: .none)
    }
}

/// What to do with a real → client (NAT) or real → local address (FULLNAT) packet.
public struct ReplyDecision: Equatable, Sendable {
    /// False: no connection has this reply key; not the director's to translate.
    public var found: Bool
    public var connection: ConnectionHandle
    public var real: RealServerID?
    public var mode: ForwardingMode
    /// Put the source back to VIP:port …
    public var virtualAddress: IPv4Address
    public var virtualPort: UInt16
    /// … and (FULLNAT) the destination back to the client.
    public var clientAddress: IPv4Address
    public var clientPort: UInt16
    /// The connection's state after this packet.
    public var state: ConnectionState

    public static let notFound = ReplyDecision(found: false, connection: .none, real: nil, mode: .nat,
                                               virtualAddress: .any, virtualPort: 0, clientAddress: .any,
                                               clientPort: 0, state: .none)
}

/// Event counters of one director.
public struct DirectorCounters: Equatable, Sendable {
    /// Connections scheduled.
    public var created: UInt64 = 0
    /// Inbound packets of known connections.
    public var existing: UInt64 = 0
    /// Reply packets matched to a connection.
    public var replies: UInt64 = 0
    /// Reply packets no connection claimed.
    public var replyMisses: UInt64 = 0
    /// Connections (not templates) removed because their time ran out.
    public var expired: UInt64 = 0
    /// Connections ended early by a SYN reusing their ports (TIME_WAIT/CLOSE).
    public var reused: UInt64 = 0
    public var templatesCreated: UInt64 = 0
    public var templatesExpired: UInt64 = 0
    /// Templates dropped because their real became unavailable.
    public var templatesInvalidated: UInt64 = 0
    public var refusedNoService: UInt64 = 0
    public var refusedNotSyn: UInt64 = 0
    public var refusedNoReal: UInt64 = 0
    public var refusedTableFull: UInt64 = 0
    public var refusedLocalPortsExhausted: UInt64 = 0
    public var refusedReplyCollision: UInt64 = 0
    /// Embryonic connections (SYN_RECV/SYNACK: a SYN and no handshake
    /// completed yet) dropped to make room for a new connection when the
    /// table was full: the SYN-flood defense (IPVS drop_entry). Shown as
    /// `syn-flood-evicted`.
    public var evictedEmbryonic: UInt64 = 0

    public init() {}

    public func refused(_ reason: Refusal) -> UInt64 {
        switch reason {
        case .noService: refusedNoService
        case .notSyn: refusedNotSyn
        case .noRealAvailable: refusedNoReal
        case .tableFull: refusedTableFull
        case .localPortsExhausted: refusedLocalPortsExhausted
        case .replyCollision: refusedReplyCollision
        }
    }

    mutating func count(_ reason: Refusal) {
        switch reason {
        case .noService: refusedNoService &+= 1
        case .notSyn: refusedNotSyn &+= 1
        case .noRealAvailable: refusedNoReal &+= 1
        case .tableFull: refusedTableFull &+= 1
        case .localPortsExhausted: refusedLocalPortsExhausted &+= 1
        case .replyCollision: refusedReplyCollision &+= 1
        }
    }
}

/// Services, reals, schedulers, the connection table and FULLNAT ports of
/// one director. A class per director node, never per packet; the packet
/// calls (`schedule`, `lookupReply`) do not allocate.
public final class DirectorCore {
    public struct Configuration: Sendable {
        /// Most entries (connections + persistence templates) at once; all
        /// table memory is allocated up front (≈ 96 bytes per entry).
        public var maxConnections: Int = 1 << 16
        public var timeouts = ConnectionTimeouts()
        /// IPVS sloppy_tcp for every service: also schedule TCP packets
        /// without SYN (never a RST). A service can ask for it alone
        /// (`VirtualService.sloppy`).
        public var sloppyTCP = false
        /// IPVS conn_reuse_mode 1: a SYN on a TIME_WAIT/CLOSE connection
        /// that no template controls starts a new connection.
        public var connectionReuse = true
        /// Persistence templates of a weight-0 real stop pinning clients
        /// (IPVS sysctl expire_quiescent_template). IPVS's default is off;
        /// wirelab's contract is "weight 0 gets no new connections", so on.
        public var expireQuiescentTemplate = true
        /// FULLNAT source ports per local address.
        public var localPortRange: ClosedRange<UInt16> = 1024...65535
        /// SYN-flood defense (IPVS drop_entry, ip_vs_random_dropentry()): a
        /// new connection that finds the table full evicts an embryonic one
        /// (TCP SYN_RECV or SYNACK, not a template) instead of being refused
        /// — the oldest of a bounded sample. ESTABLISHED and other states are
        /// never evicted; with none found the new one is refused
        /// (`table-full`) as before. Off: always refuse when full.
        /// IPVS differs in when, not what: its defense timer
        /// (update_defense_level, once a second) runs ip_vs_random_dropentry()
        /// while free memory is below amemthresh, dropping SYN_RECV/SYNACK
        /// entries of random hash buckets (ESTABLISHED only by todrop_entry's
        /// rate); here the table's fixed size is the memory, so the eviction
        /// happens at the moment a new connection needs the room.
        public var dropEmbryonic = true
        /// Entries the defense reads at most per eviction, from a
        /// pseudo-random start; it stops after `embryonicSample` candidates.
        public var embryonicScan = 64
        public var embryonicSample = 8
        /// Seed of the connection table's hash.
        public var hashSeed: UInt64 = 0x5EED_0F_D1EC_7012
        /// Where the connection table's memory comes from (huge pages: see TableMemory).
        public var tableMemory: TableMemory = .heap

        public init(maxConnections: Int = 1 << 16) { self.maxConnections = maxConnections }
    }

    public let configuration: Configuration
    public let table: ConnectionTable
    var services: [ServiceState] = []
    var serviceByKey: [UInt64: Int] = [:]
    var pools: [LocalPortPool] = []
    var poolByAddress: [IPv4Address: Int] = [:]
    let timeoutNanoseconds: [UInt64]
    public internal(set) var counters = DirectorCounters()
    /// Connection sync's sender (nil: sync off); the Director sets it.
    var syncSender: SyncSender? { didSet { syncing = syncSender != nil } }
    /// `syncSender != nil`, as a plain flag: the per-packet test then costs
    /// a load and a branch, not the retain/release of unwrapping a reference.
    private(set) var syncing = false
    /// xorshift64 state: where the SYN-flood defense starts its scan.
    var evictionRandom: UInt64
    /// The fast path (`Director+FastPath.swift`): what retires its entries,
    /// whether the last packet of an existing connection may be repeated,
    /// and whether an entry may have been made since the last retirement.
    public internal(set) var fastPathGeneration: UInt32 = 0
    var lastPacketRepeatable = false
    var fastPathArmed = false

    static let modes: [ForwardingMode] = [.nat, .dr, .tun, .fullnat]
    /// `modes.firstIndex(of: m)`, without the search (which allocates per
    /// new connection in debug builds).
    static func modeIndex(_ m: ForwardingMode) -> UInt8 {
        switch m {
        case .nat: 0
        case .dr: 1
        case .tun: 2
        case .fullnat: 3
        }
    }

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        table = ConnectionTable(capacity: configuration.maxConnections, seed: configuration.hashSeed,
                                memory: configuration.tableMemory)
        timeoutNanoseconds = configuration.timeouts.nanosecondTable
        evictionRandom = configuration.hashSeed | 1
    }

    // MARK: Configuration (control plane)

    static func serviceKey(_ proto: UInt8, _ address: UInt32, _ port: UInt16) -> UInt64 {
        UInt64(proto) << 48 | UInt64(address) << 16 | UInt64(port)
    }

    /// Adds a virtual service with its reals.
    @discardableResult
    public func addService(_ service: VirtualService, reals: [RealServer] = []) throws(DirectorConfigurationError) -> ServiceID {
        let key = Self.serviceKey(service.proto.ipProtocol.rawValue, service.address.rawValue, service.port)
        guard serviceByKey[key] == nil else { throw .duplicateService(service.proto, service.address, service.port) }
        guard services.count < Int(UInt16.max) else { throw .tooManyServices }
        if service.mode == .fullnat && service.localAddresses.isEmpty { throw .fullnatWithoutLocalAddresses }
        if service.scheduler == .mh {
            guard MaglevTable.isPrime(service.maglevTableSize), service.maglevTableSize <= 1 << 24 else {
                throw .maglevTableSizeNotPrime(service.maglevTableSize)
            }
            guard service.maglevTableSize > reals.count else {
                throw .maglevTableTooSmall(size: service.maglevTableSize, reals: reals.count)
            }
        }
        if let p = service.persistence, !(p.timeout > 0 && (0...32).contains(p.netmaskLength)) {
            throw .persistenceOutOfRange
        }
        var state = ServiceState(config: service)
        for real in reals { try Self.append(real, to: &state) }
        if service.mode == .fullnat {
            for address in service.localAddresses {
                if let existing = poolByAddress[address] {
                    if !state.localPools.contains(existing) { state.localPools.append(existing) }
                } else {
                    poolByAddress[address] = pools.count
                    state.localPools.append(pools.count)
                    pools.append(LocalPortPool(address: address, range: configuration.localPortRange))
                }
            }
        }
        state.destinationsChanged()
        fastPathGeneration &+= 1
        serviceByKey[key] = services.count
        services.append(state)
        return ServiceID(rawValue: services.count - 1)
    }

    private static func append(_ real: RealServer, to state: inout ServiceState) throws(DirectorConfigurationError) {
        let port = real.port ?? state.config.port
        guard (0...65535).contains(real.weight) else { throw .weightOutOfRange(real.weight) }
        guard !state.reals.contains(where: { $0.address == real.address && $0.port == port }) else {
            throw .duplicateReal(real.address, port)
        }
        guard state.reals.count < Int(UInt16.max) - 1 else { throw .tooManyReals }
        if state.scheduler == .mh && state.reals.count + 1 >= state.config.maglevTableSize {
            throw .maglevTableTooSmall(size: state.config.maglevTableSize, reals: state.reals.count + 1)
        }
        state.reals.append(RealState(address: real.address, port: port, weight: Int32(real.weight),
                                     lastWeight: Int32(real.weight), enabled: real.enabled))
        state.names.append(real.name ?? "\(real.address):\(port)")
    }

    /// Adds a real to a service (IPVS add_dest; hashing tables are rebuilt).
    @discardableResult
    public func addReal(_ real: RealServer, to service: ServiceID) throws(DirectorConfigurationError) -> RealServerID {
        guard services.indices.contains(service.rawValue) else { throw .unknownService(service) }
        try Self.append(real, to: &services[service.rawValue])
        services[service.rawValue].destinationsChanged()
        fastPathGeneration &+= 1
        return RealServerID(service: service, index: services[service.rawValue].reals.count - 1)
    }

    /// Sets a real's weight (IPVS upd_dest). 0 quiesces it: no new
    /// connections, existing ones continue.
    public func setWeight(_ weight: Int, for real: RealServerID) throws(DirectorConfigurationError) {
        try check(real)
        guard (0...65535).contains(weight) else { throw .weightOutOfRange(weight) }
        let s = real.service.rawValue
        services[s].reals[real.index].weight = Int32(weight)
        if weight > 0 { services[s].reals[real.index].lastWeight = Int32(weight) }
        services[s].destinationsChanged()
        fastPathGeneration &+= 1
    }

    /// Health: a disabled real takes no new connections and is left out
    /// of the scheduler's list (hashing tables rebuild without it);
    /// existing connections continue.
    public func setEnabled(_ enabled: Bool, for real: RealServerID) throws(DirectorConfigurationError) {
        try check(real)
        let s = real.service.rawValue
        guard services[s].reals[real.index].enabled != enabled else { return }
        services[s].reals[real.index].enabled = enabled
        services[s].destinationsChanged()
        fastPathGeneration &+= 1
    }

    private func check(_ real: RealServerID) throws(DirectorConfigurationError) {
        guard services.indices.contains(real.service.rawValue),
              services[real.service.rawValue].reals.indices.contains(real.index) else { throw .unknownReal(real) }
    }

    public func service(_ proto: TransportProtocol, address: IPv4Address, port: UInt16) -> ServiceID? {
        serviceByKey[Self.serviceKey(proto.ipProtocol.rawValue, address.rawValue, port)].map { ServiceID(rawValue: $0) }
    }

    public func real(_ service: ServiceID, address: IPv4Address, port: UInt16) -> RealServerID? {
        guard services.indices.contains(service.rawValue) else { return nil }
        return services[service.rawValue].reals.firstIndex { $0.address == address && $0.port == port }
            .map { RealServerID(service: service, index: $0) }
    }

    /// Whether some service listens on `address` (the Director answers ARP for it).
    public func isVirtualAddress(_ address: IPv4Address) -> Bool {
        services.contains { $0.config.address == address }
    }

    /// Every address the director owns as a FULLNAT local address.
    public var localAddresses: [IPv4Address] { pools.map(\.address) }

    // MARK: Packet path

    /// A client → VIP packet: the connection it belongs to, or a new one
    /// (scheduler, persistence), or why there is none.
    public func schedule(_ proto: TransportProtocol, client: IPv4Address, clientPort: UInt16,
                         virtual: IPv4Address, virtualPort: UInt16, tcpFlags: UInt8, now: Instant) -> Decision {
        let p = proto.ipProtocol.rawValue
        if let i = table.findInbound(proto: p, client: client.rawValue, clientPort: clientPort,
                                     virtual: virtual.rawValue, virtualPort: virtualPort) {
            let e = table.pointer(i)
            if e.pointee.expires <= now.nanoseconds {
                removeConnection(i)
                counters.expired &+= 1
            } else if proto == .tcp && tcpFlags & TCPFlagBits.syn != 0 && configuration.connectionReuse
                        && e.pointee.control == 0
                        && (e.pointee.state == ConnectionState.timeWait.rawValue || e.pointee.state == ConnectionState.close.rawValue) {
                removeConnection(i)
                counters.reused &+= 1
            } else {
                let changed = advance(e, direction: .input, flags: tcpFlags, now: now.nanoseconds)
                table.setExpiry(i, e.pointee.expires)
                lastPacketRepeatable = Self.repeatable(e, changed: changed, tcpFlags: tcpFlags)
                counters.existing &+= 1
                if syncing { syncSender.unsafelyUnwrapped.used(i, changed: changed, core: self, now: now.nanoseconds) }
                return decision(i, .existing)
            }
        }
        return scheduleNew(proto, client: client.rawValue, clientPort: clientPort, virtual: virtual.rawValue,
                           virtualPort: virtualPort, tcpFlags: tcpFlags, now: now.nanoseconds)
    }

    /// A packet from a real (`from`:`fromPort`) to a client (NAT) or to a
    /// local address (FULLNAT): the connection it answers, if any.
    public func lookupReply(_ proto: TransportProtocol, from real: IPv4Address, fromPort: UInt16,
                            to destination: IPv4Address, toPort: UInt16, tcpFlags: UInt8, now: Instant) -> ReplyDecision {
        guard let i = table.findReply(proto: proto.ipProtocol.rawValue, real: real.rawValue, realPort: fromPort,
                                      destination: destination.rawValue, destinationPort: toPort) else {
            counters.replyMisses &+= 1
            return .notFound
        }
        let e = table.pointer(i)
        if e.pointee.expires <= now.nanoseconds {
            removeConnection(i)
            counters.expired &+= 1
            counters.replyMisses &+= 1
            return .notFound
        }
        let changed = advance(e, direction: .output, flags: tcpFlags, now: now.nanoseconds)
        table.setExpiry(i, e.pointee.expires)
        lastPacketRepeatable = Self.repeatable(e, changed: changed, tcpFlags: tcpFlags)
        counters.replies &+= 1
        if syncing { syncSender.unsafelyUnwrapped.used(i, changed: changed, core: self, now: now.nanoseconds) }
        return ReplyDecision(found: true, connection: ConnectionHandle(rawValue: i),
                             real: RealServerID(service: ServiceID(rawValue: Int(e.pointee.service)), index: Int(e.pointee.real)),
                             mode: Self.modes[Int(e.pointee.mode)],
                             virtualAddress: IPv4Address(rawValue: e.pointee.virtualAddress), virtualPort: e.pointee.virtualPort,
                             clientAddress: IPv4Address(rawValue: e.pointee.clientAddress), clientPort: e.pointee.clientPort,
                             state: ConnectionState(rawValue: e.pointee.state) ?? .none)
    }

    /// Moves a connection's state for one packet (set_tcp_state()) and its
    /// expiry to now + the new state's timeout. Keeps the real's
    /// active/inactive counts in step.
    /// Returns whether the state changed (connection sync sends such entries).
    @inline(__always) @discardableResult
    func advance(_ e: UnsafeMutablePointer<ConnectionEntry>, direction: PacketDirection, flags: UInt8, now: UInt64) -> Bool {
        var changed = false
        if e.pointee.proto == IPProtocol.tcp.rawValue {
            var dir = direction
            if e.pointee.flags & ConnectionEntry.Flag.noOutput != 0 {
                if dir == .output { e.pointee.flags &= ~ConnectionEntry.Flag.noOutput } else { dir = .inputOnly }
            }
            let old = ConnectionState(rawValue: e.pointee.state) ?? .none
            let new = TCPStateMachine.next(old, flags: flags, direction: dir)
            if new != old {
                let inactive = e.pointee.flags & ConnectionEntry.Flag.inactive != 0
                if !inactive && new != .established {
                    count(e, active: -1, inactive: 1)
                    e.pointee.flags |= ConnectionEntry.Flag.inactive
                } else if inactive && new == .established {
                    count(e, active: 1, inactive: -1)
                    e.pointee.flags &= ~ConnectionEntry.Flag.inactive
                }
                e.pointee.state = new.rawValue
                changed = true
            }
        }
        e.pointee.expires = now &+ timeoutNanoseconds[Int(e.pointee.state)]
        return changed
    }

    @inline(__always) func count(_ e: UnsafeMutablePointer<ConnectionEntry>, active: Int32, inactive: Int32) {
        let s = Int(e.pointee.service), r = Int(e.pointee.real)
        services[s].reals[r].active &+= active
        services[s].reals[r].inactive &+= inactive
    }

    func decision(_ i: UInt32, _ outcome: Decision.Outcome) -> Decision {
        let e = table.pointer(i)
        let fullnat = e.pointee.flags & ConnectionEntry.Flag.fullnat != 0
        return Decision(outcome: outcome, connection: ConnectionHandle(rawValue: i),
                        real: RealServerID(service: ServiceID(rawValue: Int(e.pointee.service)), index: Int(e.pointee.real)),
                        realAddress: IPv4Address(rawValue: e.pointee.realAddress), realPort: e.pointee.realPort,
                        mode: Self.modes[Int(e.pointee.mode)],
                        localAddress: fullnat ? IPv4Address(rawValue: e.pointee.localAddress) : nil,
                        localPort: fullnat ? e.pointee.localPort : nil,
                        state: ConnectionState(rawValue: e.pointee.state) ?? .none)
    }

    func refuse(_ reason: Refusal) -> Decision {
        counters.count(reason)
        return .refused(reason)
    }

    func scheduleNew(_ proto: TransportProtocol, client: UInt32, clientPort: UInt16, virtual: UInt32,
                     virtualPort: UInt16, tcpFlags: UInt8, now: UInt64) -> Decision {
        let p = proto.ipProtocol.rawValue
        guard let s = serviceByKey[Self.serviceKey(p, virtual, virtualPort)] else { return refuse(.noService) }
        // tcp_conn_schedule(): only a SYN creates a connection, or any
        // packet but a RST when sloppy_tcp is on (here or on the service).
        if proto == .tcp && tcpFlags & (TCPFlagBits.syn | TCPFlagBits.rst) != TCPFlagBits.syn
            && (tcpFlags & TCPFlagBits.rst != 0 || !(configuration.sloppyTCP || services[s].sloppy)) {
            return refuse(.notSyn)
        }

        // Persistence (ip_vs_sched_persist): an existing, usable template decides the real.
        let persistence = services[s].persistenceNanoseconds
        let maskedClient = client & services[s].persistenceMask
        let templateProto = p | ConnectionEntry.templateBit
        var template: UInt32? = nil
        var r = -1
        if persistence > 0,
           let t = table.findInbound(proto: templateProto, client: maskedClient, clientPort: 0,
                                     virtual: virtual, virtualPort: virtualPort) {
            let te = table.pointer(t)
            let tr = Int(te.pointee.real)
            let real = services[s].reals[tr]
            let live = te.pointee.expires > now || te.pointee.controlled > 0
            let usable = real.enabled && (real.weight > 0 || !configuration.expireQuiescentTemplate)
            if live && usable {
                template = t
                r = tr
            } else {
                invalidateTemplate(t, now: now, expiredByTime: !live)
            }
        }
        let needed = persistence > 0 && template == nil ? 2 : 1
        while table.freeCount < needed {
            guard configuration.dropEmbryonic && evictEmbryonic(now: now) else { return refuse(.tableFull) }
        }
        if r < 0 {
            guard let picked = services[s].pick(source: client, sourcePort: clientPort, destination: virtual) else {
                return refuse(.noRealAvailable)
            }
            r = picked
        }
        let real = services[s].reals[r]
        let mode = services[s].mode

        var entry = ConnectionEntry(proto: p, clientAddress: client, clientPort: clientPort,
                                    virtualAddress: virtual, virtualPort: virtualPort,
                                    realAddress: real.address.rawValue, realPort: real.port,
                                    service: UInt16(s), real: UInt16(r),
                                    state: proto == .udp ? ConnectionState.udp.rawValue : ConnectionState.none.rawValue,
                                    flags: ConnectionEntry.Flag.inactive | (mode.seesReplies ? 0 : ConnectionEntry.Flag.noOutput),
                                    mode: Self.modeIndex(mode))
        if mode == .fullnat {
            guard let (pool, port) = allocateLocalPort(s) else { return refuse(.localPortsExhausted) }
            entry.pool = UInt16(pool)
            entry.localAddress = pools[pool].address.rawValue
            entry.localPort = port
            entry.flags |= ConnectionEntry.Flag.fullnat
        }
        if mode.seesReplies,
           let other = table.findReply(proto: p, real: entry.realAddress, realPort: entry.realPort,
                                       destination: entry.replyAddress, destinationPort: entry.replyPort) {
            if table.pointer(other).pointee.expires <= now {
                removeConnection(other)
                counters.expired &+= 1
            } else {
                if mode == .fullnat { pools[Int(entry.pool)].release(entry.localPort) }
                return refuse(.replyCollision)
            }
        }

        var templateCreated = false
        if persistence > 0 {
            if let t = template {
                // ip_vs_conn_put(ct): the template's timer restarts.
                table.setExpiry(t, max(table.pointer(t).pointee.expires, now &+ persistence))
            } else {
                templateCreated = true
                let te = ConnectionEntry(proto: templateProto, clientAddress: maskedClient, clientPort: 0,
                                         virtualAddress: virtual, virtualPort: virtualPort,
                                         realAddress: real.address.rawValue, realPort: real.port,
                                         service: UInt16(s), real: UInt16(r),
                                         flags: ConnectionEntry.Flag.template, mode: Self.modeIndex(mode),
                                         expires: now &+ persistence)
                template = table.insert(te)
                services[s].reals[r].persistent &+= 1
                counters.templatesCreated &+= 1
            }
        }

        // The new connection counts as inactive (IPVS binds it with
        // IP_VS_CONN_F_INACTIVE), then this first packet moves its state.
        services[s].reals[r].inactive &+= 1
        services[s].reals[r].totalConnections &+= 1
        if let t = template {
            entry.control = t &+ 1
            table.pointer(t).pointee.controlled &+= 1
        }
        withUnsafeMutablePointer(to: &entry) { advance($0, direction: .input, flags: tcpFlags, now: now) }
        guard let i = table.insert(entry, hashInbound: true, hashReply: mode.seesReplies) else {
            preconditionFailure("connection table full after the capacity check")
        }
        counters.created &+= 1
        if syncing, let sync = syncSender {
            // The template first, so a peer has it before the connection it controls.
            if let t = template { sync.used(t, changed: templateCreated, core: self, now: now) }
            sync.used(i, changed: true, core: self, now: now)
        }
        return decision(i, .created)
    }

    func allocateLocalPort(_ s: Int) -> (Int, UInt16)? {
        let n = services[s].localPools.count
        var k = services[s].nextLocalPool
        for _ in 0..<n {
            let pool = services[s].localPools[k]
            k += 1
            if k == n { k = 0 }
            if let port = pools[pool].allocate() {
                services[s].nextLocalPool = k
                return (pool, port)
            }
        }
        return nil
    }

    /// A template that may no longer pin (expired, or its real went away):
    /// gone at once if nothing uses it, else out of the index until its
    /// connections end (IPVS ip_vs_check_template()).
    func invalidateTemplate(_ t: UInt32, now: UInt64, expiredByTime: Bool) {
        let te = table.pointer(t)
        if te.pointee.controlled == 0 {
            releaseResources(t)
            table.remove(t)
        } else {
            table.unhashInbound(t)
            table.setExpiry(t, min(te.pointee.expires, now))
        }
        if expiredByTime { counters.templatesExpired &+= 1 } else { counters.templatesInvalidated &+= 1 }
    }

    /// Undoes what an entry holds: its count on the real, its template
    /// control, its FULLNAT port. The caller frees the entry.
    func releaseResources(_ i: UInt32) {
        let e = table.pointer(i)
        let s = Int(e.pointee.service), r = Int(e.pointee.real)
        if e.pointee.flags & ConnectionEntry.Flag.template != 0 {
            services[s].reals[r].persistent &-= 1
            return
        }
        if e.pointee.flags & ConnectionEntry.Flag.inactive != 0 {
            services[s].reals[r].inactive &-= 1
        } else {
            services[s].reals[r].active &-= 1
        }
        if e.pointee.control != 0 {
            table.pointer(e.pointee.control &- 1).pointee.controlled &-= 1
        }
        if e.pointee.flags & ConnectionEntry.Flag.fullnat != 0 {
            pools[Int(e.pointee.pool)].release(e.pointee.localPort)
        }
    }

    func removeConnection(_ i: UInt32) {
        releaseResources(i)
        table.remove(i)
        fastPathConnectionGone()
    }

    // MARK: SYN-flood defense

    /// Frees one entry of a full table for a new connection: reads up to
    /// `embryonicScan` consecutive entries from a pseudo-random start and
    /// removes, of the first `embryonicSample` candidates, an expired
    /// connection (at once) or else the embryonic one (TCP SYN_RECV/SYNACK,
    /// not a template) that has waited longest (earliest expiry: they all
    /// got the same timeout at their last packet). A flood's entries are
    /// older than a real client's half-finished handshake, so that one
    /// survives. Never touches ESTABLISHED or any other state. Allocates
    /// nothing; runs only when the table is full. False: nothing to evict.
    func evictEmbryonic(now: UInt64) -> Bool {
        let limit = table.highWaterMark
        guard limit > 0 else { return false }
        evictionRandom ^= evictionRandom << 13
        evictionRandom ^= evictionRandom >> 7
        evictionRandom ^= evictionRandom << 17
        var i = Int(evictionRandom % UInt64(limit))
        let synRecv = ConnectionState.synRecv.rawValue, synAck = ConnectionState.synAck.rawValue
        let tcp = IPProtocol.tcp.rawValue
        let live = ConnectionEntry.Flag.inUse, template = ConnectionEntry.Flag.template
        var victim = ConnectionTable.none
        var victimExpires = UInt64.max
        var seen = 0
        for _ in 0..<min(configuration.embryonicScan, limit) {
            let e = table.pointer(UInt32(i))
            if e.pointee.flags & (live | template) == live {
                if e.pointee.expires <= now {
                    removeConnection(UInt32(i))
                    counters.expired &+= 1
                    return true
                }
                if e.pointee.proto == tcp && (e.pointee.state == synRecv || e.pointee.state == synAck) {
                    if e.pointee.expires < victimExpires {
                        victim = UInt32(i)
                        victimExpires = e.pointee.expires
                    }
                    seen += 1
                    if seen >= configuration.embryonicSample { break }
                }
            }
            i += 1
            if i == limit { i = 0 }
        }
        guard victim != ConnectionTable.none else { return false }
        removeConnection(victim)
        counters.evictedEmbryonic &+= 1
        return true
    }

    // MARK: Timers

    /// Removes every connection and template whose time is up at `now`
    /// (templates live on while they control connections). Returns how
    /// many entries went.
    @discardableResult
    public func expire(now: Instant) -> Int {
        var connectionsGone = false
        defer { if connectionsGone { fastPathConnectionGone() } }
        return table.expire(now: now) { i in
            let e = table.pointer(i)
            if e.pointee.flags & ConnectionEntry.Flag.template != 0 {
                if e.pointee.controlled > 0 {
                    // IPVS: a template with controlled connections expires
                    // later. One already invalidated (out of the index) can
                    // never pin again: look again in a second.
                    let hashed = e.pointee.flags & ConnectionEntry.Flag.hashedInbound != 0
                    e.pointee.expires = now.nanoseconds &+ (hashed ? services[Int(e.pointee.service)].persistenceNanoseconds : 1_000_000_000)
                    // Peers get the longer life too, or their copy lapses under live connections.
                    if hashed && syncing, let sync = syncSender { sync.used(i, changed: false, core: self, now: now.nanoseconds) }
                    return false
                }
                counters.templatesExpired &+= 1
            } else {
                counters.expired &+= 1
                connectionsGone = true
            }
            releaseResources(i)
            return true
        }
    }

    // MARK: Inspection

    /// A connection's current entry, nil when the handle is not live.
    public func connection(_ handle: ConnectionHandle) -> ConnectionEntry? {
        guard handle != .none, Int(handle.rawValue) < table.capacity else { return nil }
        let e = table[handle.rawValue]
        return e.flags & ConnectionEntry.Flag.inUse != 0 ? e : nil
    }

    /// Services, reals, weights and connection counts (`wirelab lvs`).
    public func snapshot() -> DirectorSnapshot {
        DirectorSnapshot(
            services: services.indices.map { s in
                let st = services[s]
                return DirectorSnapshot.Service(
                    id: ServiceID(rawValue: s), proto: st.config.proto, address: st.config.address, port: st.config.port,
                    scheduler: st.scheduler, schedulerFlags: st.flags, sloppy: st.sloppy, mode: st.mode, persistence: st.config.persistence,
                    localAddresses: st.localPools.map { pools[$0].address },
                    reals: st.reals.indices.map { r in
                        let real = st.reals[r]
                        return DirectorSnapshot.Real(
                            id: RealServerID(service: ServiceID(rawValue: s), index: r), address: real.address, port: real.port,
                            weight: Int(real.weight), enabled: real.enabled, activeConnections: Int(real.active),
                            inactiveConnections: Int(real.inactive), persistentConnections: Int(real.persistent),
                            totalConnections: real.totalConnections)
                    })
            },
            entries: table.count, capacity: table.capacity,
            localPorts: pools.map { DirectorSnapshot.LocalPorts(address: $0.address, inUse: $0.usedCount, capacity: $0.capacity) },
            counters: counters)
    }

    /// Every live connection and template (`ipvsadm -Lnc`), control plane only.
    public func connections(now: Instant) -> [DirectorSnapshot.Connection] {
        table.liveEntries().map { i in
            let e = table[i]
            let template = e.flags & ConnectionEntry.Flag.template != 0
            return DirectorSnapshot.Connection(
                handle: ConnectionHandle(rawValue: i),
                proto: TransportProtocol(IPProtocol(e.proto & ~ConnectionEntry.templateBit)) ?? .tcp,
                isTemplate: template,
                state: ConnectionState(rawValue: e.state) ?? .none,
                expiresInNanoseconds: e.expires > now.nanoseconds ? e.expires - now.nanoseconds : 0,
                client: IPv4Address(rawValue: e.clientAddress), clientPort: e.clientPort,
                virtual: IPv4Address(rawValue: e.virtualAddress), virtualPort: e.virtualPort,
                real: IPv4Address(rawValue: e.realAddress), realPort: e.realPort,
                local: e.flags & ConnectionEntry.Flag.fullnat != 0 ? IPv4Address(rawValue: e.localAddress) : nil,
                localPort: e.flags & ConnectionEntry.Flag.fullnat != 0 ? e.localPort : nil,
                isSynced: e.flags & ConnectionEntry.Flag.synced != 0)
        }
    }

    /// Bytes of per-connection state allocated (the table; pools apart).
    public var connectionMemoryBytes: Int { table.allocatedBytes }
}
