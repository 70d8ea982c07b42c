import Foundation
import Glibc

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
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LabError("control socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = UnixAddress(path)
        guard addr.connect(fd) == 0 else { throw LabError("connecting to the lab daemon at \(path): \(String(cString: strerror(errno)))") }
        var body = try JSONEncoder().encode(request)
        body.append(10)
        _ = body.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        guard !response.isEmpty else { throw LabError("the lab daemon at \(path) closed without answering") }
        return response
    }

    public func status() throws -> DatapathStatus {
        try JSONDecoder().decode(DatapathStatus.self, from: request(ControlRequest(command: "status")))
    }
}

/// sockaddr_un for a path.
struct UnixAddress {
    var storage = sockaddr_un()

    init(_ path: String) {
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
    }

    mutating func connect(_ fd: Int32) -> Int32 {
        withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    mutating func bind(_ fd: Int32) -> Int32 {
        withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
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
