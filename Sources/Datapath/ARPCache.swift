import Wire

/// IPv4 → MAC resolution state of one router or director: resolved entries
/// with a lifetime, and per-address queues of packets waiting for a reply,
/// bounded so an unresolvable address cannot eat memory.
///
/// Life of an entry (a small version of Linux' neighbour states):
/// - unresolved: the first packet for an address queues (`enqueue` →
///   `.sendRequest`), the owner broadcasts a request; `expire` asks for a
///   new request every `retryInterval` and gives up after `maxRetries`
///   requests, handing back what waited so the owner can count it and send
///   ICMP host unreachable;
/// - reachable: `learn` stores the MAC for `entryLifetime` seconds and
///   hands back the queued packets;
/// - refreshing: from `refreshLead` seconds before expiry, a packet that
///   uses the entry makes `lookup` say `needsRefresh` at most once per
///   `retryInterval`, and the owner sends a unicast request to the known
///   MAC. A reply extends the entry, so a busy neighbour never expires and
///   its packets never queue (no hiccup every lifetime);
/// - expired: `lookup` ignores it at once, `expire` removes it.
public struct ARPCache {
    public struct Configuration: Sendable, Equatable {
        /// Seconds a resolved entry is trusted (Linux' base_reachable_time is 30).
        public var entryLifetime: Double
        /// Seconds between ARP requests for an address still unresolved, and
        /// between refresh requests for an entry about to expire.
        public var retryInterval: Double
        /// Requests sent (the first included) before giving up and dropping
        /// what waits.
        public var maxRetries: Int
        /// Packets held per unresolved address (Linux' unres_qlen_bytes counts
        /// bytes; we count frames).
        public var queuePerAddress: Int
        /// Addresses being resolved at once.
        public var maxPendingAddresses: Int
        /// Resolved entries held at most; when full, a new address is not
        /// learned (counted) until entries expire.
        public var maxEntries: Int
        /// Seconds before expiry from which a used entry is refreshed with a
        /// unicast request (0 = never refresh: entries expire and the next
        /// packet queues and resolves again).
        public var refreshLead: Double
        /// Requests after which the next one waits `quickRetryInterval`
        /// instead of `retryInterval`: a lost first request (a link just
        /// back) costs a fraction of a second, and an address that stays
        /// silent is still asked only once a `retryInterval` after that.
        public var quickRetries: Int
        /// Seconds between the first `quickRetries` + 1 requests.
        public var quickRetryInterval: Double

        public init(entryLifetime: Double = 60, retryInterval: Double = 1, maxRetries: Int = 3,
                    queuePerAddress: Int = 8, maxPendingAddresses: Int = 256, maxEntries: Int = 4096,
                    refreshLead: Double = 5, quickRetries: Int = 0, quickRetryInterval: Double = 0.2) {
            self.entryLifetime = entryLifetime
            self.retryInterval = retryInterval
            self.maxRetries = maxRetries
            self.queuePerAddress = queuePerAddress
            self.maxPendingAddresses = maxPendingAddresses
            self.maxEntries = maxEntries
            self.refreshLead = refreshLead
            self.quickRetries = quickRetries
            self.quickRetryInterval = quickRetryInterval
        }

        /// Routers and directors: requests at 0, 0.2, 0.4, 1.4 and 2.4 s,
        /// giving up at 3.4 s (Linux asks 3 times 1 s apart and gives up
        /// at 3 s). Their retries run on the element's fine timer
        /// (`nextTimer`), not the runtime's 1 s tick.
        public static let forwarder = Configuration(maxRetries: 5, quickRetries: 2, quickRetryInterval: 0.2)
    }

    public struct Entry: Equatable, Sendable {
        public var mac: MACAddress
        public var port: PortID
        public var expires: Instant
        /// From when a use asks for a refresh request.
        public var refreshAt: Instant
    }

    /// A packet waiting for resolution, with what the owner needs to send
    /// it (the bytes, ready but for the destination MAC) or to answer it with
    /// ICMP host unreachable when resolution fails.
    public struct QueuedFrame: Sendable {
        /// The whole Ethernet frame, copied out of the datapath buffer.
        public var bytes: [UInt8]
        /// Where the packet came in, and from which neighbour.
        public var ingressPort: PortID
        public var previousHop: MACAddress
        /// The packet's addresses as it arrived (before NAT), for the ICMP
        /// error's destination and quote.
        public var originalSource: IPv4Address
        public var originalDestination: IPv4Address

        public init(bytes: [UInt8], ingressPort: PortID, previousHop: MACAddress,
                    originalSource: IPv4Address, originalDestination: IPv4Address) {
            self.bytes = bytes
            self.ingressPort = ingressPort
            self.previousHop = previousHop
            self.originalSource = originalSource
            self.originalDestination = originalDestination
        }
    }

    /// An address being resolved. Allocates (the copied frames), but only
    /// while an address is unresolved — the first packets of a flow — never
    /// in steady state.
    public struct Pending: Sendable {
        /// The port the requests go out of.
        public var port: PortID
        public var nextRequest: Instant
        public var requestsSent: Int
        public var frames: [QueuedFrame]
    }

    public struct Counters: Sendable, Equatable {
        public var learned: UInt64 = 0
        public var refreshed: UInt64 = 0
        public var expired: UInt64 = 0
        public var gaveUp: UInt64 = 0
        public var tableFull: UInt64 = 0
        /// The held-frame ledger: frames `enqueue` took, frames handed back
        /// to the owner to send (`learn`), and frames handed back to drop
        /// (`expire` giving up, `forget`, `flush`). Always
        /// `framesQueued == framesReleased + framesDiscarded + queuedFrames`.
        public var framesQueued: UInt64 = 0
        public var framesReleased: UInt64 = 0
        public var framesDiscarded: UInt64 = 0
    }

    public let configuration: Configuration
    /// Resolved entries by address (an `AddressMap`: no SipHash per packet).
    @usableFromInline var table = AddressMap<Entry>(minimumCapacity: 64)
    public private(set) var pending: [IPv4Address: Pending] = [:]
    public private(set) var counters = Counters()
    @usableFromInline let lifetimeNanoseconds: UInt64
    @usableFromInline let retryNanoseconds: UInt64
    @usableFromInline let leadNanoseconds: UInt64
    @usableFromInline let quickRetryNanoseconds: UInt64
    /// Reused by `expire` so timers do not allocate once warmed up.
    var scratch: [IPv4Address] = []

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        lifetimeNanoseconds = UInt64(max(0, configuration.entryLifetime) * 1e9)
        retryNanoseconds = UInt64(max(0, configuration.retryInterval) * 1e9)
        leadNanoseconds = UInt64(max(0, min(configuration.refreshLead, configuration.entryLifetime)) * 1e9)
        quickRetryNanoseconds = UInt64(max(0, configuration.quickRetryInterval) * 1e9)
        pending.reserveCapacity(min(configuration.maxPendingAddresses, 64))
        scratch.reserveCapacity(64)
    }

    /// Every entry, live or expired but not yet removed (for `status`).
    public var entries: [IPv4Address: Entry] {
        var all: [IPv4Address: Entry] = [:]
        table.forEach { all[IPv4Address(rawValue: $0)] = $1 }
        return all
    }

    /// Entries held, live or expired but not yet removed (bounded by `maxEntries`).
    public var count: Int { table.count }

    /// Changes whenever a mapping is added, changed or removed (not when
    /// one is refreshed unchanged): the fast path's entries rest on them.
    public private(set) var generation: UInt32 = 0

    /// Frames waiting for resolution, over every pending address (bounded by
    /// `maxPendingAddresses` × `queuePerAddress`).
    public var queuedFrames: Int { pending.values.reduce(0) { $0 + $1.frames.count } }

    /// Whether there is an entry for `address`, expired or not (no copy of
    /// the table, unlike `entries`).
    public func hasEntry(for address: IPv4Address) -> Bool { table[address.rawValue] != nil }

    /// The live entry for `address`, if any (expired entries are ignored).
    @inlinable public func lookup(_ address: IPv4Address, now: Instant) -> Entry? {
        guard let entry = table[address.rawValue], entry.expires > now else { return nil }
        return entry
    }

    /// Lookup for forwarding: the live entry, and whether the caller should
    /// send a unicast refresh request now (the entry is within `refreshLead`
    /// of expiry, and no refresh went out in the last `retryInterval`).
    public mutating func resolve(_ address: IPv4Address, now: Instant) -> (entry: Entry, needsRefresh: Bool)? {
        guard let entry = table[address.rawValue], entry.expires > now else { return nil }
        guard leadNanoseconds > 0, now >= entry.refreshAt else { return (entry, false) }
        let next = now.adding(nanoseconds: retryNanoseconds)
        table.update(address.rawValue) { $0.refreshAt = next }
        counters.refreshed &+= 1
        return (entry, true)
    }

    /// True if an entry exists for `address` (live or not): RFC 826's
    /// "merge" rule updates known senders from any ARP packet.
    public func knows(_ address: IPv4Address) -> Bool { table.find(address.rawValue) != nil || pending[address] != nil }

    /// Records a mapping (from a reply or a request seen) and returns the
    /// packets that were waiting for it (empty when none: no allocation).
    /// Returns nil, learning nothing, when the table is full.
    public mutating func learn(_ address: IPv4Address, mac: MACAddress, port: PortID, now: Instant) -> [QueuedFrame]? {
        let expires = now.adding(nanoseconds: lifetimeNanoseconds)
        let refreshAt = Instant(nanoseconds: expires.nanoseconds &- leadNanoseconds)
        if let known = table[address.rawValue] {
            if known.mac != mac || known.port != port { generation &+= 1 }
        } else {
            guard table.count < configuration.maxEntries else {
                counters.tableFull &+= 1
                return nil
            }
            counters.learned &+= 1
            generation &+= 1
        }
        table.insert(address.rawValue, Entry(mac: mac, port: port, expires: expires, refreshAt: refreshAt))
        guard let frames = pending.removeValue(forKey: address)?.frames else { return [] }
        counters.framesReleased &+= UInt64(frames.count)
        return frames
    }

    /// Forgets an address (its entry and anything queued for it).
    public mutating func forget(_ address: IPv4Address) -> [QueuedFrame] {
        table.remove(address.rawValue)
        generation &+= 1
        let frames = pending.removeValue(forKey: address)?.frames ?? []
        counters.framesDiscarded &+= UInt64(frames.count)
        return frames
    }

    /// The addresses resolved on `port`, in address order, at most LIMIT.
    public func addresses(on port: PortID, limit: Int) -> [IPv4Address] {
        var found: [IPv4Address] = []
        table.forEach { key, entry in if entry.port == port { found.append(IPv4Address(rawValue: key)) } }
        return Array(found.sorted().prefix(limit))
    }

    /// Forgets everything on `port` (its link went down); returns the
    /// packets that were waiting there.
    public mutating func flush(port: PortID) -> [QueuedFrame] {
        table.removeAll { $1.port == port }
        generation &+= 1
        var dropped: [QueuedFrame] = []
        for (address, waiting) in pending where waiting.port == port {
            dropped += waiting.frames
            pending[address] = nil
        }
        counters.framesDiscarded &+= UInt64(dropped.count)
        return dropped
    }

    /// Nanoseconds from the request numbered SENT (1: the first) to the next.
    @usableFromInline func retryDelay(afterRequests sent: Int) -> UInt64 {
        sent <= configuration.quickRetries ? quickRetryNanoseconds : retryNanoseconds
    }

    /// When the next request (or giving up) is due: nil when nothing is
    /// being resolved (no allocation; O(addresses pending) otherwise).
    public var nextRequest: Instant? {
        guard !pending.isEmpty else { return nil }
        var t: Instant?
        for (_, waiting) in pending where t.map({ waiting.nextRequest < $0 }) ?? true { t = waiting.nextRequest }
        return t
    }

    /// Starts resolving ADDRESS on PORT with nothing queued (a next hop
    /// whose link just came back): true when the caller should send the
    /// first request now; false when it is known, already being resolved,
    /// or too many addresses are pending. Retries and giving up as for a
    /// queued packet (giving up drops nothing).
    public mutating func solicit(_ address: IPv4Address, port: PortID, now: Instant) -> Bool {
        guard lookup(address, now: now) == nil, pending[address] == nil,
              pending.count < configuration.maxPendingAddresses else { return false }
        pending[address] = Pending(port: port, nextRequest: now.adding(nanoseconds: retryDelay(afterRequests: 1)),
                                   requestsSent: 1, frames: [])
        return true
    }

    public enum QueueResult: Equatable, Sendable {
        /// First packet for this address: send an ARP request now.
        case sendRequest
        /// A request is already out; the packet waits.
        case queued
        /// No room (this address' queue, or too many addresses pending):
        /// drop the packet.
        case full
    }

    /// Queues a frame until `address` resolves on `port`. `frame` is called
    /// only when there is room, so a full queue costs no copy.
    public mutating func enqueue(for address: IPv4Address, port: PortID, now: Instant,
                                 _ frame: () -> QueuedFrame) -> QueueResult {
        if let count = pending[address]?.frames.count {
            guard count < configuration.queuePerAddress else { return .full }
            pending[address]!.frames.append(frame())  // in place: no copy of the queue
            counters.framesQueued &+= 1
            return .queued
        }
        guard pending.count < configuration.maxPendingAddresses, configuration.queuePerAddress > 0 else { return .full }
        var frames: [QueuedFrame] = []
        frames.reserveCapacity(configuration.queuePerAddress)
        frames.append(frame())
        pending[address] = Pending(port: port, nextRequest: now.adding(nanoseconds: retryDelay(afterRequests: 1)),
                                   requestsSent: 1, frames: frames)
        counters.framesQueued &+= 1
        return .sendRequest
    }

    /// Timers. For each address due another request, `retry(address,
    /// pending)` is called (send it); for each that has had `maxRetries`
    /// requests without a reply, `giveUp(address, frames)` gets the packets
    /// that waited (drop them). Expired entries are removed.
    public mutating func expire(now: Instant, retry sendRequest: (IPv4Address, Pending) -> Void,
                                giveUp: (IPv4Address, [QueuedFrame]) -> Void) {
        scratch.removeAll(keepingCapacity: true)
        for (address, waiting) in pending where waiting.nextRequest <= now { scratch.append(address) }
        // Dictionary order differs from run to run: retries go out in address
        // order, so the simulator's captures are the same every time.
        scratch.sort()
        for address in scratch {
            guard let waiting = pending[address] else { continue }
            if waiting.requestsSent >= configuration.maxRetries {
                pending[address] = nil
                counters.gaveUp &+= 1
                counters.framesDiscarded &+= UInt64(waiting.frames.count)
                giveUp(address, waiting.frames)
            } else {
                pending[address]!.requestsSent += 1
                pending[address]!.nextRequest = now.adding(nanoseconds: retryDelay(afterRequests: waiting.requestsSent + 1))
                sendRequest(address, pending[address]!)
            }
        }
        scratch.removeAll(keepingCapacity: true)
        table.forEach { key, entry in if entry.expires <= now { scratch.append(IPv4Address(rawValue: key)) } }
        for address in scratch { table.remove(address.rawValue) }
        counters.expired &+= UInt64(scratch.count)
        if !scratch.isEmpty { generation &+= 1 }
    }
}
