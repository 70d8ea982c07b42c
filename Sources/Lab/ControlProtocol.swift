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
        /// The interface's carrier as the daemon last saw it (nil: not watched).
        public var carrier: Bool? = nil
        /// The bond this port is a member of, and whether it is the bond's
        /// active member (nil: not in a bond).
        public var bond: String? = nil
        public var bondActive: Bool? = nil

        /// "eth0", or "eth0 (bond0 active)" / "eth1 (bond0 backup)".
        public var label: String {
            guard let bond else { return interface }
            return "\(interface) (\(bond) \(bondActive == true ? "active" : "backup"))"
        }
    }

    public struct NodeCounters: Codable, Sendable {
        public var node: String
        public var kind: String
        public var ports: [PortCounters]
        /// Frames the element dropped, by reason ("malformed:truncated", "no-route", …).
        public var drops: [String: UInt64]
        /// Element-specific counters (learned, flooded, arp-requests, …).
        public var counters: [String: UInt64]
        /// Carrier changes the daemon saw on this node's ports (and, for a
        /// router, applied to its FIB).
        public var linkChanges: UInt64? = nil
        /// False while the node's power is cut (`wirelab fail NODE`).
        public var powered: Bool? = nil
        /// The node's VRRP groups (routers and directors that have them).
        public var vrrp: [VRRPGroupStatus]? = nil
        /// The node's BGP sessions, BFD and learned routes (nodes with `bgp:`).
        public var bgp: BGPNodeStatus? = nil
        /// BFD sessions with static routes' next hops and passive ones (nodes with `bfd:`).
        public var bfd: [BFDPeerStatus]? = nil
        /// The node's fast path (nodes with `fastpath: true`).
        public var fastPath: FastPathStatus? = nil
    }

    public var pid: Int32
    public var uptimeSeconds: Double
    public var nodes: [NodeCounters]
    public var capture: [String: UInt64]?
    /// Every capture point and what it lost (nil: the lab records nothing).
    public var capturePoints: [CapturePoint]?

    public func text() -> String {
        var rows: [[String]] = []
        for node in nodes {
            for p in node.ports {
                rows.append([node.node, p.label, p.kind, p.carrier.map { $0 ? "up" : "NO-CARRIER" } ?? "-",
                             String(p.rxFrames), String(p.txFrames), "\(p.rxDropped)/\(p.txDropped)"])
            }
        }
        var out = "data plane (pid \(pid), up \(Int(uptimeSeconds)) s)\n"
        out += TextTable.render(["NODE", "PORT", "SOCKET", "LINK", "RX", "TX", "RING DROP rx/tx"], rows)
        let drops = nodes.flatMap { n in n.drops.sorted { $0.key < $1.key }.map { [n.node, $0.key, String($0.value)] } }
        out += "\n" + (drops.isEmpty ? "no drops\n" : TextTable.render(["NODE", "DROP REASON", "COUNT"], drops))
        // Directors: the connection table's fill and the SYN-flood defense's evictions.
        let tables = nodes.compactMap { n -> [String]? in
            guard let limit = n.counters["connection-limit"] else { return nil }
            return [n.node, String(n.counters["connections"] ?? 0), String(limit), String(n.counters["syn-flood-evicted"] ?? 0)]
        }
        if !tables.isEmpty {
            out += "\n" + TextTable.render(["DIRECTOR", "CONNECTIONS", "LIMIT", "SYN-FLOOD EVICTED"], tables)
        }
        // Directors with connection sync: what they sent, received and installed.
        let sync = nodes.compactMap { n -> [String]? in
            guard let sent = n.counters["sync-messages-sent"] else { return nil }
            let c = { (key: String) in String(n.counters[key] ?? 0) }
            let ignored = n.counters.filter { $0.key.hasPrefix("sync-ignored:") }.values.reduce(0, +)
            return [n.node, "\(sent)/\(c("sync-entries-sent"))", "\(c("sync-messages-received"))/\(c("sync-entries-received"))",
                    c("sync-installed"), c("sync-updated"), String(ignored), c("synced-connections")]
        }
        if !sync.isEmpty {
            out += "\n" + TextTable.render(["SYNC", "SENT msgs/entries", "RECEIVED msgs/entries", "INSTALLED", "UPDATED",
                                             "IGNORED", "SYNCED NOW"], sync)
        }
        let groups = nodes.flatMap { n in (n.vrrp ?? []).map { (n.node, $0) } }
        if !groups.isEmpty { out += "\n" + VRRPGroupStatus.table(groups) }
        let sessions = nodes.flatMap { n in (n.bgp?.sessions ?? []).map { s in
            [n.node, "\(s.peer) AS \(s.peerASN)", s.state, s.uptimeSeconds.map { "\(Int($0)) s" } ?? "-",
             String(s.prefixesReceived), String(s.prefixesAnnounced), s.bfd ?? "-"]
        } }
        if !sessions.isEmpty {
            out += "\n" + TextTable.render(["BGP", "NEIGHBOR", "STATE", "UP", "RECEIVED", "ANNOUNCED", "BFD"], sessions)
            let routes = nodes.flatMap { n in (n.bgp?.routes ?? []).map { [n.node, $0.prefix, $0.nextHops.joined(separator: ", ")] } }
            if !routes.isEmpty { out += "\n" + TextTable.render(["BGP", "LEARNED", "NEXT HOPS"], routes) }
        }
        let bfd = nodes.flatMap { n in (n.bfd ?? []).map { b in
            [n.node, b.peer, b.role, b.state, b.routes.isEmpty ? "-" : b.routes.joined(separator: ", "), b.lastChange ?? "-"]
        } }
        if !bfd.isEmpty { out += "\n" + TextTable.render(["BFD", "NEIGHBOR", "ROLE", "STATE", "STATIC ROUTES", "LAST CHANGE"], bfd) }
        let fast = nodes.compactMap { n in n.fastPath.map { f in
            [n.node, f.enabled ? "on" : "off (power cut)", String(f.entries), String(f.forwarded),
             String(n.counters["forwarded"] ?? 0), String(f.installed), "\(f.removedStale)/\(f.removedGone)/\(f.removedAged)",
             String(f.staleFrames), String(f.refused.values.reduce(0, +) + f.tableFull + f.failures)]
        } }
        if !fast.isEmpty {
            out += "\n" + TextTable.render(["FAST PATH", "STATE", "ENTRIES", "FORWARDED (kernel)", "FORWARDED (element)",
                                             "INSTALLED", "REMOVED stale/gone/aged", "STALE FRAMES", "NOT INSTALLED"], fast)
        }
        out += "\n" + CapturePoint.text(capturePoints)
        return out
    }
}

/// One place where the lab records frames, and what it lost there. Each
/// direction of a link is recorded where it is received: by the receiving
/// node's XDP program into its capture ring (one ring per node, shared by
/// all its ports), or by libpcap on the receiving interface (kernel hosts,
/// AF_PACKET nodes). Counters are cumulative since the lab came up.
public struct CapturePoint: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable {
        /// The node's XDP program copies each received frame to a BPF ring.
        case xdpRing = "xdp-ring"
        /// libpcap, inbound, on the receiving interface.
        case libpcap
    }
    /// A link end whose received frames this point records.
    public struct End: Codable, Sendable, Equatable {
        /// `node:iface`, the receiving end.
        public var end: String
        /// The link, "a:if ↔ b:if".
        public var link: String
        public init(end: String, link: String) {
            self.end = end
            self.link = link
        }
    }

    public var method: Method
    public var node: String
    /// The link ends it records (one for libpcap; every captured port of the
    /// node for its XDP ring).
    public var ends: [End]
    /// Frames recorded: ring records written (XDP), frames received (libpcap).
    public var recorded: UInt64
    /// Frames lost because the buffer was full: ring full (XDP), dropped by
    /// libpcap's buffer (`pcap_stats` ps_drop).
    public var ringDropped: UInt64
    /// libpcap: frames the interface dropped (ps_ifdrop); nil for XDP.
    public var interfaceDropped: UInt64?
    /// XDP: frames whose bytes the program could not read; nil for libpcap.
    public var errors: UInt64?

    public init(method: Method, node: String, ends: [End], recorded: UInt64 = 0, ringDropped: UInt64 = 0,
                interfaceDropped: UInt64? = nil, errors: UInt64? = nil) {
        self.method = method
        self.node = node
        self.ends = ends
        self.recorded = recorded
        self.ringDropped = ringDropped
        self.interfaceDropped = interfaceDropped
        self.errors = errors
    }

    /// Identifies the point across two readings.
    public var key: String { method == .xdpRing ? "xdp-ring \(node)" : "libpcap \(ends.first?.end ?? node)" }

    /// Every frame this point failed to record.
    public var lost: UInt64 { ringDropped &+ (interfaceDropped ?? 0) &+ (errors ?? 0) }

    /// Where, in words: "the XDP capture ring of gw (gw:eth0, gw:eth1)", "libpcap at client:eth0".
    public var place: String {
        switch method {
        case .xdpRing: "the XDP capture ring of \(node) (\(ends.map(\.end).joined(separator: ", ")))"
        case .libpcap: "libpcap at \(ends.first?.end ?? node)"
        }
    }

    /// The capture section of `status`: per link, each receiving end, how
    /// it is recorded and what was lost there (zero shown as zero).
    public static func text(_ points: [CapturePoint]?) -> String {
        guard let points else { return "capture: off (nothing records this lab's links)\n" }
        guard !points.isEmpty else { return "capture: no capture points\n" }
        var linkOrder: [String] = []
        var byLink: [String: [(end: String, point: CapturePoint)]] = [:]
        for p in points {
            for e in p.ends {
                if byLink[e.link] == nil { linkOrder.append(e.link) }
                byLink[e.link, default: []].append((e.end, p))
            }
        }
        var rows: [[String]] = []
        var shared = false
        for link in linkOrder {
            for (i, row) in byLink[link]!.sorted(by: { $0.end < $1.end }).enumerated() {
                let p = row.point
                let method: String
                switch p.method {
                case .xdpRing:
                    method = "xdp ring of \(p.node)" + (p.ends.count > 1 ? " *" : "")
                    shared = shared || p.ends.count > 1
                case .libpcap: method = "libpcap"
                }
                rows.append([i == 0 ? link : "", row.end, method, String(p.recorded), String(p.ringDropped),
                             p.interfaceDropped.map(String.init) ?? "-", p.errors.map(String.init) ?? "-"])
            }
        }
        var out = "capture (each direction recorded where it is received; frames lost while recording)\n"
        out += TextTable.render(["LINK", "RECEIVED AT", "RECORDED BY", "RECORDED", "LOST: RING FULL", "LOST: IFACE", "ERRORS"], rows)
        if shared { out += "* one capture ring per node, shared by its ports: the node's totals\n" }
        let lost = points.reduce(UInt64(0)) { $0 &+ $1.lost }
        out += lost == 0 ? "no frames lost by the capture\n" : "\(lost) frames lost by the capture: a check or walk of this lab may miss them\n"
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
/// One VRRP group of a node as `status` and `lvs` show it.
public struct VRRPGroupStatus: Codable, Sendable, Equatable {
    public var group: Int
    public var interface: String
    /// "master", "backup" or "init".
    public var state: String
    public var priority: Int
    /// The master's address as last seen (this node's own while master).
    public var master: String?
    public var masterPriority: Int?
    public var vips: [String]
    /// Advertisement interval in seconds (as configured) and as learned from the master.
    public var interval: Double
    public var masterInterval: Double
    public var vmac: Bool
    public var advertsSent: UInt64
    public var advertsReceived: UInt64
    public var becameMaster: UInt64
    /// The latest transition: "backup → master: … (at uptime 12.345 s)".
    public var lastTransition: String?

    public init(group: Int, interface: String, state: String, priority: Int, master: String?, masterPriority: Int?,
                vips: [String], interval: Double, masterInterval: Double, vmac: Bool, advertsSent: UInt64,
                advertsReceived: UInt64, becameMaster: UInt64, lastTransition: String?) {
        self.group = group
        self.interface = interface
        self.state = state
        self.priority = priority
        self.master = master
        self.masterPriority = masterPriority
        self.vips = vips
        self.interval = interval
        self.masterInterval = masterInterval
        self.vmac = vmac
        self.advertsSent = advertsSent
        self.advertsReceived = advertsReceived
        self.becameMaster = becameMaster
        self.lastTransition = lastTransition
    }

    /// A table of (node, group) rows.
    public static func table(_ rows: [(String, VRRPGroupStatus)]) -> String {
        TextTable.render(["NODE", "VRRP GROUP", "IFACE", "STATE", "PRIO", "MASTER", "VIPS", "INTERVAL"], rows.map { node, g in
            [node, String(g.group), g.interface, g.state.uppercased(), String(g.priority),
             g.master.map { "\($0)\(g.masterPriority.map { " (prio \($0))" } ?? "")" } ?? "-",
             g.vips.joined(separator: ","), "\(g.masterInterval)s"]
        })
    }
}

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
        /// Scheduler flags by their ipvsadm names (`mh-port`, …).
        public var flags: [String] = []
        /// Schedules TCP packets without SYN (`sloppy: true`).
        public var sloppy = false
        public var mode: String
        public var reals: [Real]
    }
    public struct Director: Codable, Sendable {
        public var node: String
        /// The same table in the layout of `ipvsadm -Ln`.
        public var listing: String
        public var services: [Service]
        /// Connection sync's `sync-…` counters (as in `status`); nil with sync off.
        public var sync: [String: UInt64]? = nil
        /// The director's VRRP groups (nil: none).
        public var vrrp: [VRRPGroupStatus]? = nil
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
