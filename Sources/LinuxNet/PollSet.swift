// poll(2) over a set of descriptors, for the loops that sleep until one of
// them is ready (the daemon's data plane, the control socket, health
// checks, the built-in servers).
import Glibc

/// What poll(2) waits for, and what it reports.
public struct PollEvents: OptionSet, Sendable, Hashable {
    public var rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// POLLIN: data (or a connection) to read.
    public static let readable = PollEvents(rawValue: Int16(POLLIN))
    /// POLLOUT: room to write; a non-blocking connect has finished.
    public static let writable = PollEvents(rawValue: Int16(POLLOUT))
    /// POLLERR (reported only).
    public static let error = PollEvents(rawValue: Int16(POLLERR))
    /// POLLHUP (reported only).
    public static let hangUp = PollEvents(rawValue: Int16(POLLHUP))
    /// POLLNVAL: not an open descriptor (reported only).
    public static let invalid = PollEvents(rawValue: Int16(POLLNVAL))
}

/// Descriptors to poll(2), each with the events to wait for; after `wait`,
/// the events each one reported. Entries keep the order they were added in.
public struct PollSet {
    @usableFromInline var entries: [pollfd] = []

    public init() {}

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// Adds FD (a negative FD is skipped by poll, and reports nothing);
    /// returns its index.
    @discardableResult
    public mutating func add(_ fd: Int32, _ events: PollEvents) -> Int {
        entries.append(pollfd(fd: fd, events: events.rawValue, revents: 0))
        return entries.count - 1
    }

    public mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    /// The descriptor at INDEX.
    @inlinable public func descriptor(at index: Int) -> Int32 { entries[index].fd }

    /// What the descriptor at INDEX reported in the last `wait` (empty: nothing).
    @inlinable public func returnedEvents(at index: Int) -> PollEvents { PollEvents(rawValue: entries[index].revents) }

    /// Sleeps until a descriptor is ready or TIMEOUT milliseconds pass
    /// (negative: no limit); returns how many descriptors reported events.
    /// A signal ends the wait early and returns 0 — the caller's loop looks
    /// at its stop flag — and reported events are cleared first, so an
    /// interrupted wait never shows the previous wait's. An empty set sleeps.
    public mutating func wait(timeout milliseconds: Int32) throws(LinuxNetError) -> Int {
        for i in entries.indices { entries[i].revents = 0 }
        let count = nfds_t(entries.count)
        let result = entries.withUnsafeMutableBufferPointer { poll($0.baseAddress, count, milliseconds) }
        if result >= 0 { return Int(result) }
        let code = Glibc.errno
        if code == EINTR { return 0 }
        throw LinuxNetError(operation: "waiting for \(entries.count) descriptors", call: "poll", errno: Errno(rawValue: code))
    }
}
