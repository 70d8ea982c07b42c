// Processes by PID: signals, /proc/PID/stat, which namespace they live in,
// and the process's own termination signals.
import Foundation
import Glibc
import Synchronization

/// A signal number.
public struct Signal: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// SIGTERM
    public static let terminate = Signal(rawValue: SIGTERM)
    /// SIGINT
    public static let interrupt = Signal(rawValue: SIGINT)
    /// SIGKILL
    public static let kill = Signal(rawValue: SIGKILL)
    /// SIGHUP
    public static let hangUp = Signal(rawValue: SIGHUP)
    /// SIGSTOP: freezes the process; it cannot be caught or ignored.
    public static let stop = Signal(rawValue: SIGSTOP)
    /// SIGCONT: resumes a stopped process.
    public static let `continue` = Signal(rawValue: SIGCONT)

    public var description: String {
        switch rawValue {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGKILL: "SIGKILL"
        case SIGHUP: "SIGHUP"
        case SIGSTOP: "SIGSTOP"
        case SIGCONT: "SIGCONT"
        default: "signal \(rawValue)"
        }
    }
}

/// Processes by PID.
public enum Processes {
    /// This process's PID.
    public static var currentID: Int32 { getpid() }

    /// Sends SIGNAL to PID (kill(2)). ESRCH when the process is gone.
    public static func send(_ signal: Signal, to pid: Int32) throws(LinuxNetError) {
        try systemCall("kill", OperationContext("sending \(signal) to process \(pid)")) { kill(pid, signal.rawValue) }
    }

    /// What /proc/PID/stat says about a process.
    public struct Status: Sendable, Hashable {
        /// The state letter: "R", "S", "Z" (zombie), …
        public var state: Character
        /// Field 22, start time in clock ticks after boot: a reused PID has
        /// another one. Nil if the line had fewer fields.
        public var startTime: UInt64?
        /// A zombie: ended, not yet reaped by its parent.
        public var isZombie: Bool { state == "Z" }
    }

    /// /proc/PID/stat, or nil when there is no such process (or it could
    /// not be read).
    public static func status(of pid: Int32) -> Status? {
        guard let text = try? ProcFile.read("/proc/\(pid)/stat") else { return nil }
        return parseStatus(text)
    }

    /// Parses a /proc/PID/stat line. The command name (field 2) is in
    /// parentheses and may hold spaces and ")": fields are counted after
    /// its last ")".
    static func parseStatus(_ text: String) -> Status? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let rest = text[text.index(after: close)...]
        guard let state = rest.dropFirst().first else { return nil }
        // Fields after "comm)" start at field 3; starttime is field 22.
        let fields = rest.split(separator: " ")
        return Status(state: state, startTime: fields.count > 19 ? UInt64(fields[19]) : nil)
    }
}

/// Finding processes by the network namespace they live in.
public enum NamespaceProcesses {
    /// The inode of named namespace NAME (`/run/netns/NAME`), nil if none.
    public static func inode(ofNamespace name: String) -> UInt64? {
        var st = stat()
        guard stat(NetworkNamespace.path(of: name), &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    /// The PIDs of every process whose network namespace is one of INODES.
    public static func pids(inNamespaces inodes: Set<UInt64>) -> [Int32] {
        guard !inodes.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [Int32] = []
        for entry in entries {
            guard let pid = Int32(entry) else { continue }
            var st = stat()
            guard stat("/proc/\(pid)/ns/net", &st) == 0 else { continue }
            if inodes.contains(UInt64(st.st_ino)) { result.append(pid) }
        }
        return result
    }
}

/// Set by SIGTERM/SIGINT once `TerminationSignals.install` ran (an atomic
/// store is async-signal-safe).
private let terminationRequested = Atomic<Bool>(false)

/// SIGTERM and SIGINT as a request to stop, for a process that finishes
/// its work (closes ports, writes captures) before it exits.
public enum TerminationSignals {
    /// From now on SIGTERM and SIGINT set `requested` instead of ending the
    /// process, and SIGPIPE is ignored (a write to a closed socket fails
    /// with EPIPE instead). A signal also ends a poll() under way early.
    public static func install() {
        signal(SIGTERM) { _ in terminationRequested.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in terminationRequested.store(true, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN)
    }

    /// Whether SIGTERM or SIGINT came since `install`.
    public static var requested: Bool { terminationRequested.load(ordering: .relaxed) }
}
