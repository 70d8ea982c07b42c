import Foundation

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
