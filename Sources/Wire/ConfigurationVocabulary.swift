// The words a topology file and the elements share. Topology parses them,
// Datapath runs them and the reports print them, so each is defined once,
// here, below both: the cases are spelled as the file writes them (the raw
// value), other spellings (ipvsadm's) are computed from them. Case order is
// the order error hints list them in.

/// How an LVS director hands a connection to its real server (`mode:`).
public enum ForwardingMode: String, Hashable, Sendable, CaseIterable {
    /// Masquerading (ipvsadm -m): dst rewritten to the real, replies come back through the director.
    case nat
    /// Direct routing (ipvsadm -g): only MACs change; replies bypass the
    /// director. The default, as in ipvsadm.
    case dr
    /// IP-in-IP tunnelling (ipvsadm -i): replies bypass the director.
    case tun
    /// Full NAT (Alibaba's LVS FULLNAT): src rewritten to a local address:port too.
    case fullnat

    /// ipvsadm's "Forward" column.
    public var ipvsadmName: String {
        switch self {
        case .nat: "Masq"
        case .dr: "Route"
        case .tun: "Tunnel"
        case .fullnat: "FullNat"
        }
    }

    /// Whether the director sees the server → client direction. DR and TUN
    /// do not, so IPVS drives their TCP state from the INPUT-ONLY table
    /// (connection flag IP_VS_CONN_F_NOOUTPUT).
    public var seesReplies: Bool { self == .nat || self == .fullnat }
}

/// The IPVS schedulers wirelab implements (`scheduler:`), by their ipvsadm names.
public enum SchedulerKind: String, Hashable, Sendable, CaseIterable {
    /// Round robin (ip_vs_rr).
    case rr
    /// Interleaved weighted round robin over gcd/max weight (ip_vs_wrr).
    case wrr
    /// Least connections, overhead = active × 256 + inactive (ip_vs_lc).
    case lc
    /// Weighted least connections, overhead / weight (ip_vs_wlc); the
    /// default, as in ipvsadm.
    case wlc
    /// Source hashing over a 256-bucket weighted table (ip_vs_sh).
    case sh
    /// Destination hashing over a 256-bucket table (ip_vs_dh).
    case dh
    /// Maglev hashing (ip_vs_mh; Eisenbud et al., NSDI 2016).
    case mh
}

/// A scheduler flag (`flags:` on a service), as `ipvsadm -b` names it.
/// Each belongs to one scheduler: `mh-*` to `mh`, `sh-*` to `sh`.
public enum SchedulerFlag: String, Hashable, Sendable, CaseIterable {
    /// Hash the client's source port too, so one client's connections
    /// spread over the reals (IP_VS_SVC_F_SCHED_MH_PORT).
    case mhPort = "mh-port"
    /// When the hashed real is unavailable (weight 0, failed check), rehash
    /// to another one instead of refusing (IP_VS_SVC_F_SCHED_MH_FALLBACK).
    case mhFallback = "mh-fallback"
    /// As mh-port, for `sh` (IP_VS_SVC_F_SCHED_SH_PORT).
    case shPort = "sh-port"
    /// As mh-fallback, for `sh` (IP_VS_SVC_F_SCHED_SH_FALLBACK).
    case shFallback = "sh-fallback"

    /// The scheduler the flag belongs to.
    public var scheduler: SchedulerKind {
        switch self {
        case .mhPort, .mhFallback: .mh
        case .shPort, .shFallback: .sh
        }
    }

    /// Hashes the source port (`*-port`); otherwise it is a fallback flag.
    public var hashesPort: Bool { self == .mhPort || self == .shPort }

    /// The flags `scheduler` takes (none for schedulers that do not hash).
    public static func flags(of scheduler: SchedulerKind) -> [SchedulerFlag] {
        allCases.filter { $0.scheduler == scheduler }
    }
}

/// The transport protocol of a virtual service, a probe or a health check
/// (`protocol:`, `proto:`). IPVS also has SCTP; not modelled.
public enum TransportProtocol: String, Hashable, Sendable, CaseIterable {
    case tcp
    case udp

    /// The IP protocol number the IPv4 header carries (6, 17).
    @inlinable public var ipProtocol: IPProtocol {
        switch self {
        case .tcp: .tcp
        case .udp: .udp
        }
    }

    /// The protocol `number` names, if it is TCP or UDP.
    @inlinable public init?(_ number: IPProtocol) {
        switch number {
        case .tcp: self = .tcp
        case .udp: self = .udp
        default: return nil
        }
    }

    /// `TCP` / `UDP`, as ipvsadm prints it.
    public var ipvsadmName: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        }
    }
}

/// A header field a router's ECMP hash covers (`ecmp: { fields: [...] }`).
public enum ECMPHashField: String, Hashable, Sendable, CaseIterable {
    case srcIP = "src-ip"
    case dstIP = "dst-ip"
    case proto
    case srcPort = "src-port"
    case dstPort = "dst-port"
}
