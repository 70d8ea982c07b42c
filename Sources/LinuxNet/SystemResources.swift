// What this machine and process can give a lab, read before anything is
// built: free memory, the open-file and locked-memory limits (inherited by
// every process `up` starts, the data-plane daemon included), whether
// CAP_IPC_LOCK spares AF_XDP UMEMs from the locked-memory limit, the page
// size veth's native XDP depends on.
import Glibc

public struct SystemResources: Sendable, Hashable {
    /// `MemAvailable` of /proc/meminfo, bytes: the kernel's estimate of what
    /// can be allocated without swapping. nil if unreadable.
    public var memoryAvailable: Int?
    /// RLIMIT_NOFILE, soft (what is enforced) and hard (how far an
    /// unprivileged process may raise it); nil = unlimited.
    public var openFilesSoft: Int?
    public var openFilesHard: Int?
    /// RLIMIT_MEMLOCK soft; nil = unlimited.
    public var lockedMemoryLimit: Int?
    /// CAP_IPC_LOCK in the effective set (/proc/self/status CapEff): the
    /// kernel then does not charge AF_XDP UMEM pages to RLIMIT_MEMLOCK
    /// (net/xdp/xdp_umem.c, xdp_umem_account_pages).
    public var canLockMemory: Bool
    /// getpagesize(): veth's native XDP limit on the MTU follows it.
    public var pageSize: Int

    public init(memoryAvailable: Int?, openFilesSoft: Int?, openFilesHard: Int?, lockedMemoryLimit: Int?,
                canLockMemory: Bool, pageSize: Int) {
        self.memoryAvailable = memoryAvailable
        self.openFilesSoft = openFilesSoft
        self.openFilesHard = openFilesHard
        self.lockedMemoryLimit = lockedMemoryLimit
        self.canLockMemory = canLockMemory
        self.pageSize = pageSize
    }

    /// This process, now.
    public static func current() -> SystemResources {
        var files = rlimit(), locked = rlimit()
        let haveFiles = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files) == 0
        let haveLocked = getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &locked) == 0
        func value(_ v: rlim_t) -> Int? { v == rlim_t.max ? nil : Int(clamping: v) }   // RLIM_INFINITY
        let capabilities = (try? ProcFile.read("/proc/self/status")).flatMap { effectiveCapabilities(inStatus: $0) } ?? 0
        return SystemResources(
            memoryAvailable: (try? ProcFile.read("/proc/meminfo")).flatMap { memoryAvailable(inMeminfo: $0) },
            openFilesSoft: haveFiles ? value(files.rlim_cur) : nil,
            openFilesHard: haveFiles ? value(files.rlim_max) : nil,
            lockedMemoryLimit: haveLocked ? value(locked.rlim_cur) : nil,
            canLockMemory: capabilities & (1 << 14) != 0,   // CAP_IPC_LOCK = 14 (linux/capability.h)
            pageSize: Int(getpagesize()))
    }

    /// `MemAvailable:  24092100 kB` → bytes.
    public static func memoryAvailable(inMeminfo text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let n = Int(fields[1]) else { return nil }
            return fields.count >= 3 && fields[2] == "kB" ? n * 1024 : n
        }
        return nil
    }

    /// `CapEff:\t000001ffffffffff` → the mask.
    public static func effectiveCapabilities(inStatus text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: " \t"), radix: 16)
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return s
    }
}
