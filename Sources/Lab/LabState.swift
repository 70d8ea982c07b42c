import Foundation
import Glibc

/// What a lab has created, written to `/run/wirelab/<lab>/state.json`
/// BEFORE each object is created, so `down` can remove everything even after
/// `kill -9` of the CLI or a crash of the daemon.
public struct LabState: Codable, Sendable {
    public struct ProcessRecord: Codable, Sendable, Hashable {
        public var pid: Int32
        /// Field 22 of /proc/PID/stat at start: a reused PID has another one,
        /// so `down` never signals a process it did not start.
        public var startTime: UInt64
        public var node: String?
        public var role: String
    }

    public var lab: String
    public var file: String
    public var createdAt: Date
    /// "creating" until `up` finishes, then "up".
    public var phase: String
    public var namespaces: [String] = []
    public var processes: [ProcessRecord] = []
    public var captureDirectory: String?
    public var controlSocket: String?

    public init(lab: String, file: String) {
        self.lab = lab
        self.file = file
        self.createdAt = Date()
        self.phase = "creating"
    }
}

/// Where lab state lives, and the per-lab lock that keeps two `up`/`down`
/// from running over each other.
public struct LabStore: Sendable {
    public static let defaultRoot = "/run/wirelab"
    public var root: String

    public init(root: String = LabStore.defaultRoot) { self.root = root }

    public static let namespacePrefix = "wl-"
    public static func namespaceName(lab: String, node: String) -> String { "wl-\(lab)-\(node)" }

    public func directory(lab: String) -> String { "\(root)/\(lab)" }
    public func statePath(lab: String) -> String { "\(directory(lab: lab))/state.json" }

    public func exists(lab: String) -> Bool { FileManager.default.fileExists(atPath: statePath(lab: lab)) }

    public func load(lab: String) throws -> LabState {
        let data = try Data(contentsOf: URL(fileURLWithPath: statePath(lab: lab)))
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(LabState.self, from: data)
    }

    /// Writes atomically (temp file + rename): a crash never leaves half a record.
    public func save(_ state: LabState) throws {
        try FileManager.default.createDirectory(atPath: directory(lab: state.lab), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(state)
        try data.write(to: URL(fileURLWithPath: statePath(lab: state.lab)), options: .atomic)
    }

    public func remove(lab: String) {
        try? FileManager.default.removeItem(atPath: directory(lab: lab))
    }

    /// Labs with a state file.
    public func labs() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { exists(lab: $0) }.sorted()
    }

    /// An exclusive lock on the lab (flock on a file beside its state);
    /// released when the returned object goes away or the process dies.
    public func lock(lab: String) throws -> LabLock {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = "\(root)/.\(lab).lock"
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LabError("opening lock \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw LabError("lab \(lab) is busy: another wirelab up/down holds \(path)")
        }
        return LabLock(fd: fd)
    }
}

public final class LabLock {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}

/// An error a user reads: one line saying what failed and why.
public struct LabError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Process identity from /proc, so a recorded PID is only signalled while it
/// is still the process we started.
public enum ProcessIdentity {
    public static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "comm)" start at field 3; starttime is field 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    public static func isAlive(_ record: LabState.ProcessRecord) -> Bool {
        startTime(of: record.pid) == record.startTime
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL — only if it is still ours.
    public static func stop(_ record: LabState.ProcessRecord, grace: TimeInterval = 2) {
        stop([record], grace: grace)
    }

    /// SIGTERM to every record that is still ours, ONE wait of up to `grace`
    /// for all of them, then SIGKILL to whatever is left: a lab's processes
    /// stop in the time of the slowest, not in the sum of their times.
    public static func stop(_ records: [LabState.ProcessRecord], grace: TimeInterval = 2) {
        var running = records.filter(isAlive)
        for record in running { kill(record.pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while true {
            running.removeAll { !isAlive($0) || isZombie($0.pid) }
            if running.isEmpty || Date() >= deadline { break }
            usleep(2_000)
        }
        for record in running where isAlive(record) { kill(record.pid, SIGKILL) }
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return true }
        return text[text.index(after: close)...].dropFirst().first == "Z"
    }
}

extension LabStore {
    /// The topology file as it was at `up`.
    public func topologyCopyPath(lab: String) -> String { "\(directory(lab: lab))/topology.yaml" }
}
