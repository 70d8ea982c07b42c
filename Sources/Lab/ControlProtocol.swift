import Foundation
import LinuxNet

/// Counters the lab's daemon reports over its control socket.
public struct DatapathStatus: Codable, Sendable {
    public struct PortCounters: Codable, Sendable {
        public var interface: String
        public var kind: String          // "afxdp" | "afpacket"
        public var rxFrames: UInt64
        public var txFrames: UInt64
        public var rxDropped: UInt64     // ring full / no free frame
        public var txDropped: UInt64
    }

    public struct NodeCounters: Codable, Sendable {
        public var node: String
        public var kind: String
        public var ports: [PortCounters]
        /// Frames the element dropped, by reason ("malformed:truncated", "no-route", …).
        public var drops: [String: UInt64]
        /// Element-specific counters (learned, flooded, arp-requests, …).
        public var counters: [String: UInt64]
    }

    public var pid: Int32
    public var uptimeSeconds: Double
    public var nodes: [NodeCounters]
    public var capture: [String: UInt64]?

    public func text() -> String {
        var rows: [[String]] = []
        for node in nodes {
            for p in node.ports {
                rows.append([node.node, p.interface, p.kind, String(p.rxFrames), String(p.txFrames), "\(p.rxDropped)/\(p.txDropped)"])
            }
        }
        var out = "data plane (pid \(pid), up \(Int(uptimeSeconds)) s)\n"
        out += TextTable.render(["NODE", "PORT", "SOCKET", "RX", "TX", "RING DROP rx/tx"], rows)
        let drops = nodes.flatMap { n in n.drops.sorted { $0.key < $1.key }.map { [n.node, $0.key, String($0.value)] } }
        out += "\n" + (drops.isEmpty ? "no drops\n" : TextTable.render(["NODE", "DROP REASON", "COUNT"], drops))
        return out
    }
}

/// One request per connection on the daemon's Unix socket: a JSON object
/// `{"command": "...", "args": {...}}` and newline, answered with one JSON
/// document. The socket is mode 0600 in a 0700 directory: root only.
public struct ControlRequest: Codable, Sendable {
    public var command: String
    public var args: [String: String]
    public init(command: String, args: [String: String] = [:]) {
        self.command = command
        self.args = args
    }
}

public struct ControlClient {
    public var path: String
    public var timeout: TimeInterval = 5
    public init(path: String) { self.path = path }

    public func request(_ request: ControlRequest) throws -> Data {
        let socket = try Socket.open(.unixStream, operation: "control socket")
        defer { socket.close() }
        try? socket.setTimeouts(receive: Double(Int(timeout)), send: Double(Int(timeout)))
        try socket.connect(to: .unix(path), operation: "connecting to the lab daemon at \(path)")
        var body = try JSONEncoder().encode(request)
        body.append(10)
        _ = body.withUnsafeBytes { try? socket.send($0) }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while let n = try? socket.receive(into: &chunk), n > 0 {
            response.append(contentsOf: chunk[0..<n])
        }
        guard !response.isEmpty else { throw LabError("the lab daemon at \(path) closed without answering") }
        return response
    }

    public func status() throws -> DatapathStatus {
        try JSONDecoder().decode(DatapathStatus.self, from: request(ControlRequest(command: "status")))
    }
}

/// A director's services and reals as `wirelab lvs` shows them.
public struct LVSStatus: Codable, Sendable {
    public struct Real: Codable, Sendable {
        public var address: String
        public var port: Int
        public var weight: Int
        public var enabled: Bool
        public var activeConnections: Int
        public var inactiveConnections: Int
        public var totalConnections: UInt64
        /// "up" or "down" when the service has a health check, else nil.
        public var health: String?
        /// Why the last failed check failed.
        public var healthError: String?
    }
    public struct Service: Codable, Sendable {
        public var proto: String
        public var vip: String
        public var port: Int
        public var scheduler: String
        public var mode: String
        public var reals: [Real]
    }
    public struct Director: Codable, Sendable {
        public var node: String
        /// The same table in the layout of `ipvsadm -Ln`.
        public var listing: String
        public var services: [Service]
    }
    public var directors: [Director]
}

extension ControlClient {
    public func lvs() throws -> LVSStatus {
        try JSONDecoder().decode(LVSStatus.self, from: request(ControlRequest(command: "lvs")))
    }
}

extension LVSStatus {
    public func jsonString() throws -> String { try JSON.string(self) }
}
