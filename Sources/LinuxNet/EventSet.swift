// epoll(7) for the daemon's data plane, which sleeps on every port of every
// userspace node: poll(2) asks each descriptor on each wait (an AF_XDP
// socket's poll even drives its TX in copy mode), so with 1,400 of them a
// wait cost ~0.4 ms, paid once per hop of a ping across a 1000-node lab.
// epoll asks only the descriptors that became ready.
import CLinuxShim
import Glibc

/// Descriptors watched with epoll (level-triggered), each reported by the
/// token it was added with; after `wait`, the ready ones and their events.
/// Owns its epoll descriptor and its ready list.
public struct EventSet: ~Copyable {
    private let descriptor: Int32
    private let ready: UnsafeMutablePointer<epoll_event>
    private let capacity: Int
    /// Ready entries after the last `wait`.
    public private(set) var readyCount = 0
    /// Descriptors added.
    public private(set) var count = 0

    /// CAPACITY: ready entries one `wait` reports at most (the rest stay
    /// ready for the next: level-triggered).
    public init(capacity: Int = 256) throws(LinuxNetError) {
        descriptor = try systemCall("epoll_create1", OperationContext("creating an epoll set")) {
            epoll_create1(Int32(EPOLL_CLOEXEC))
        }
        self.capacity = max(capacity, 1)
        ready = .allocate(capacity: self.capacity)
    }

    deinit {
        _ = Glibc.close(descriptor)
        ready.deallocate()
    }

    /// Watches FD for EVENTS (`.readable`, `.writable`; errors and hang-ups
    /// are always reported); `wait` names it TOKEN. A negative FD is skipped.
    public mutating func add(_ fd: Int32, _ events: PollEvents, token: Int) throws(LinuxNetError) {
        guard fd >= 0 else { return }
        var event = epoll_event()
        event.events = UInt32(UInt16(bitPattern: events.rawValue))   // EPOLLIN/OUT/ERR/HUP = POLLIN/OUT/ERR/HUP
        event.data.u64 = UInt64(bitPattern: Int64(token))
        _ = try systemCall("epoll_ctl(EPOLL_CTL_ADD, \(fd))", OperationContext("watching descriptors")) {
            epoll_ctl(descriptor, EPOLL_CTL_ADD, fd, &event)
        }
        count += 1
    }

    /// Sleeps until a descriptor is ready or TIMEOUT milliseconds pass
    /// (negative: no limit); returns how many are ready. A signal ends the
    /// wait early and returns 0, as `PollSet.wait` does.
    public mutating func wait(timeout milliseconds: Int32) throws(LinuxNetError) -> Int {
        let n = epoll_wait(descriptor, ready, Int32(capacity), milliseconds)
        if n >= 0 {
            readyCount = Int(n)
            return readyCount
        }
        readyCount = 0
        let code = Glibc.errno
        if code == EINTR { return 0 }
        throw LinuxNetError(operation: "waiting for \(count) descriptors", call: "epoll_wait", errno: Errno(rawValue: code))
    }

    /// The token of ready entry I (0 ..< `readyCount`).
    public func token(at i: Int) -> Int { Int(Int64(bitPattern: readyEntry(i).data.u64)) }

    /// What ready entry I reported.
    public func returnedEvents(at i: Int) -> PollEvents {
        PollEvents(rawValue: Int16(truncatingIfNeeded: readyEntry(i).events & 0xffff))
    }

    private func readyEntry(_ i: Int) -> epoll_event {
        precondition(i >= 0 && i < readyCount, "ready entry \(i) of \(readyCount)")
        return ready[i]
    }
}
