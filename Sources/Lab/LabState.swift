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
    /// Links taken down by `wirelab fail`, as "NODE:IFACE" of the end named
    /// (both ends are down); `heal` removes them.
    public var failedLinks: [String] = []
    /// Nodes whose power `wirelab fail` cut; `heal` removes them.
    public var failedNodes: [String] = []
    /// Processes of failed kernel hosts, frozen with SIGSTOP: `heal` and
    /// `down` send them SIGCONT (a stopped process ignores SIGTERM).
    public var frozenProcesses: [ProcessRecord] = []

    enum CodingKeys: String, CodingKey {
        case lab, file, createdAt, phase, namespaces, processes, captureDirectory, controlSocket, failedLinks, failedNodes,
             frozenProcesses
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lab = try c.decode(String.self, forKey: .lab)
        file = try c.decode(String.self, forKey: .file)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        phase = try c.decode(String.self, forKey: .phase)
        namespaces = try c.decodeIfPresent([String].self, forKey: .namespaces) ?? []
        processes = try c.decodeIfPresent([ProcessRecord].self, forKey: .processes) ?? []
        captureDirectory = try c.decodeIfPresent(String.self, forKey: .captureDirectory)
        controlSocket = try c.decodeIfPresent(String.self, forKey: .controlSocket)
        // Absent in state written before `fail` existed.
        failedLinks = try c.decodeIfPresent([String].self, forKey: .failedLinks) ?? []
        failedNodes = try c.decodeIfPresent([String].self, forKey: .failedNodes) ?? []
        frozenProcesses = try c.decodeIfPresent([ProcessRecord].self, forKey: .frozenProcesses) ?? []
    }

    public init(lab: String, file: String) {
        self.lab = lab
        self.file = file
        self.createdAt = Date()
        self.phase = "creating"
    }
}
