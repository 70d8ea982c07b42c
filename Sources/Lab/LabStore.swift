import Foundation
import LinuxNet

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
        try prepareDirectory(lab: state.lab)
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
    public func lock(lab: String) throws -> FileLock {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = "\(root)/.\(lab).lock"
        guard let lock = try FileLock.acquire(path) else {
            throw LabError("lab \(lab) is busy: another wirelab up/down holds \(path)")
        }
        return lock
    }
}

extension LabStore {
    /// The topology file as it was at `up`.
    public func topologyCopyPath(lab: String) -> String { "\(directory(lab: lab))/topology.yaml" }
}

extension LabStore {
    /// Creates the lab's directory (state, logs, the control socket) as
    /// 0700 — or, if it already exists (a `--state-dir` others can write
    /// to), makes it 0700 and refuses it unless it is this user's: another
    /// user's directory could swap the state `down` trusts.
    func prepareDirectory(lab: String) throws {
        let path = directory(lab: lab)
        let files = FileManager.default
        try files.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let owner = (try files.attributesOfItem(atPath: path)[.ownerAccountID] as? NSNumber)?.uint32Value
        guard owner == geteuid() else {
            throw LabError("\(path) belongs to uid \(owner.map(String.init) ?? "?"), not to this user (\(geteuid())); refusing to keep lab state there — remove it or use another --state-dir")
        }
        try files.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
    }
}
