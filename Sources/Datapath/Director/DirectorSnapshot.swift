import Wire

/// A director's configuration and counts at one moment, for `wirelab lvs`.
public struct DirectorSnapshot: Equatable, Sendable {
    public struct Real: Equatable, Sendable {
        public var id: RealServerID
        public var address: IPv4Address
        public var port: UInt16
        public var weight: Int
        /// False while its health check fails.
        public var enabled: Bool
        /// ipvsadm ActiveConn: ESTABLISHED TCP connections.
        public var activeConnections: Int
        /// ipvsadm InActConn: every other connection (UDP included).
        public var inactiveConnections: Int
        /// ipvsadm PersistConn: persistence templates pinning clients here.
        public var persistentConnections: Int
        /// Connections ever scheduled here.
        public var totalConnections: UInt64
    }

    public struct Service: Equatable, Sendable {
        public var id: ServiceID
        public var proto: TransportProtocol
        public var address: IPv4Address
        public var port: UInt16
        public var scheduler: SchedulerKind
        public var schedulerFlags: SchedulerFlags
        /// Schedules TCP packets without SYN (`sloppy: true`).
        public var sloppy: Bool = false
        public var mode: ForwardingMode
        public var persistence: Persistence?
        public var localAddresses: [IPv4Address]
        public var reals: [Real]
    }

    public struct LocalPorts: Equatable, Sendable {
        public var address: IPv4Address
        public var inUse: Int
        public var capacity: Int
    }

    /// One entry of the connection table (`ipvsadm -Lnc`).
    public struct Connection: Equatable, Sendable {
        public var handle: ConnectionHandle
        public var proto: TransportProtocol
        /// A persistence template rather than a connection.
        public var isTemplate: Bool
        public var state: ConnectionState
        /// Nanoseconds until it expires.
        public var expiresInNanoseconds: UInt64
        /// Seconds until it expires.
        public var expiresIn: Double { Double(expiresInNanoseconds) / 1e9 }
        public var client: IPv4Address
        public var clientPort: UInt16
        public var virtual: IPv4Address
        public var virtualPort: UInt16
        public var real: IPv4Address
        public var realPort: UInt16
        public var local: IPv4Address?
        public var localPort: UInt16?
        /// Installed from a peer director's sync message and not sent on by this one since.
        public var isSynced: Bool = false
    }

    public var services: [Service]
    /// Live table entries (connections + templates) and the table's limit.
    public var entries: Int
    public var capacity: Int
    public var localPorts: [LocalPorts]
    public var counters: DirectorCounters

    /// The listing in the shape of `ipvsadm -Ln` (FULLNAT as in Alibaba's
    /// ipvsadm; a real whose health check fails is marked, where keepalived
    /// would have removed it).
    public func ipvsadmListing() -> String {
        var out = "IP Virtual Server version 1.2.1 (size=\(capacity))\n"
        out += "Prot LocalAddress:Port Scheduler Flags\n"
        out += "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        for service in services {
            out += "\(service.proto.ipvsadmName)  \(service.address):\(service.port) \(service.scheduler.rawValue)"
            let flags = service.schedulerFlags.names(for: service.scheduler)
            if !flags.isEmpty { out += " (" + flags.joined(separator: ",") + ")" }
            if let p = service.persistence {
                out += " persistent \(Int(p.timeout))"
                if p.netmaskLength != 32 { out += " mask \(p.netmask)" }
            }
            // ipvsadm has no column for it (sloppy_tcp is a sysctl); said where it applies.
            if service.sloppy && service.proto == .tcp { out += " sloppy" }
            out += "\n"
            for real in service.reals {
                out += "  -> " + Self.pad("\(real.address):\(real.port)", 28) + " " + Self.pad(service.mode.ipvsadmName, 7)
                    + " " + Self.pad(String(real.weight), 6) + " " + Self.pad(String(real.activeConnections), 10)
                    + " " + String(real.inactiveConnections)
                if !real.enabled { out += "  (failed)" }
                out += "\n"
            }
        }
        return out
    }

    /// `ipvsadm -Lnc` for a list of entries.
    public static func connectionListing(_ connections: [Connection]) -> String {
        var out = "IPVS connection entries\n"
        out += "pro expire state       source                virtual               destination\n"
        for c in connections {
            let seconds = Int((c.expiresInNanoseconds + 999_999_999) / 1_000_000_000)
            let m = seconds / 60, s = seconds % 60
            let expire = "\(m < 10 ? "0" : "")\(m):\(s < 10 ? "0" : "")\(s)"
            let source = c.isTemplate ? "\(c.client):0" : "\(c.client):\(c.clientPort)"
            out += "\(c.proto.ipvsadmName) " + pad(expire, 6) + " " + pad(c.state.description, 11) + " " + pad(source, 21) + " "
                + pad("\(c.virtual):\(c.virtualPort)", 21) + " " + "\(c.real):\(c.realPort)"
            if let l = c.local, let lp = c.localPort { out += " via \(l):\(lp)" }
            out += "\n"
        }
        return out
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}
