import Wire

/// IPv4 → MAC resolution state of one router or director: resolved entries
/// with a lifetime, and per-address queues of packets waiting for a reply,
/// bounded so an unresolvable address cannot eat memory.
public struct ARPCache {
    public struct Configuration: Sendable {
        /// Seconds a resolved entry is trusted (Linux' base_reachable_time is 30).
        public var entryLifetime: Double = 60
        /// Seconds between ARP requests for an address still unresolved.
        public var retryInterval: Double = 1
        /// Requests sent before giving up and dropping what waits.
        public var maxRetries: Int = 3
        /// Packets held per unresolved address (Linux' unres_qlen is 101 for bytes; we count frames).
        public var queuePerAddress: Int = 8
        /// Addresses being resolved at once.
        public var maxPendingAddresses: Int = 256
        public init() {}
    }

    public struct Entry: Equatable, Sendable {
        public var mac: MACAddress
        public var port: PortID
        public var expires: Instant
    }

    /// A packet waiting for resolution: bytes copied out of the datapath
    /// buffer. Allocates, but only while an address is unresolved (the
    /// first packets of a flow), never in steady state.
    public struct Pending {
        public var port: PortID
        public var sourceAddress: IPv4Address
        public var nextRequest: Instant
        public var requestsSent: Int
        public var frames: [[UInt8]]
    }

    public let configuration: Configuration
    public private(set) var entries: [IPv4Address: Entry] = [:]
    public private(set) var pending: [IPv4Address: Pending] = [:]

    public init(configuration: Configuration = .init()) { self.configuration = configuration }

    @inlinable public func lookup(_ address: IPv4Address, now: Instant) -> Entry? {
        guard let entry = entries[address], entry.expires > now else { return nil }
        return entry
    }

    /// Records a mapping (from a reply or a request seen) and returns the
    /// packets that were waiting for it.
    public mutating func learn(_ address: IPv4Address, mac: MACAddress, port: PortID, now: Instant) -> [[UInt8]] {
        entries[address] = Entry(mac: mac, port: port, expires: now.adding(seconds: configuration.entryLifetime))
        return pending.removeValue(forKey: address)?.frames ?? []
    }

    public enum QueueResult: Equatable {
        /// First packet for this address: send an ARP request now.
        case sendRequest
        /// A request is already out; the packet waits.
        case queued
        /// No room: drop the packet.
        case full
    }

    public mutating func enqueue(_ frame: UnsafeRawBufferPointer, for address: IPv4Address, port: PortID,
                                 sourceAddress: IPv4Address, now: Instant) -> QueueResult {
        if var waiting = pending[address] {
            guard waiting.frames.count < configuration.queuePerAddress else { return .full }
            waiting.frames.append(Array(frame))
            pending[address] = waiting
            return .queued
        }
        guard pending.count < configuration.maxPendingAddresses else { return .full }
        pending[address] = Pending(port: port, sourceAddress: sourceAddress,
                                   nextRequest: now.adding(seconds: configuration.retryInterval),
                                   requestsSent: 1, frames: [Array(frame)])
        return .sendRequest
    }

    /// Timers: which addresses need another request, and which gave up
    /// (their packets are dropped: returned count).
    public mutating func expire(now: Instant) -> (retry: [(IPv4Address, Pending)], droppedFrames: Int) {
        var retry: [(IPv4Address, Pending)] = []
        var dropped = 0
        for (address, var waiting) in pending where waiting.nextRequest <= now {
            if waiting.requestsSent >= configuration.maxRetries {
                dropped += waiting.frames.count
                pending[address] = nil
            } else {
                waiting.requestsSent += 1
                waiting.nextRequest = now.adding(seconds: configuration.retryInterval)
                pending[address] = waiting
                retry.append((address, waiting))
            }
        }
        entries = entries.filter { $0.value.expires > now }
        return (retry, dropped)
    }
}
