import Wire

// The LVS director's configuration model: virtual services and their real
// servers, in IPVS's terms (ip_vs_service / ip_vs_dest). Control-plane
// values; the per-packet path works on the flat state DirectorCore builds
// from them.

/// ipvsadm's `--sched-flags`. `fallback` is sh-fallback / mh-fallback (when
/// the hashed real is unavailable, rehash to another one instead of
/// refusing); `port` is sh-port / mh-port (hash the source port too, not
/// only the source address). Both off by default, as in ipvsadm.
public struct SchedulerFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fallback = SchedulerFlags(rawValue: 1)
    public static let port = SchedulerFlags(rawValue: 2)

    /// The flags a topology's `flags:` list names (`mh-port` → `.port`, …).
    public init(_ flags: [SchedulerFlag]) {
        self = []
        for f in flags { insert(f.hashesPort ? .port : .fallback) }
    }

    /// The ipvsadm names of these flags for `scheduler`, as `ipvsadm -Ln`
    /// prints them (fallback before port); none for a scheduler that does not hash.
    public func names(for scheduler: SchedulerKind) -> [String] {
        guard scheduler == .sh || scheduler == .mh else { return [] }
        var out: [String] = []
        if contains(.fallback) { out.append("\(scheduler.rawValue)-fallback") }
        if contains(.port) { out.append("\(scheduler.rawValue)-port") }
        return out
    }
}

/// Persistence (ipvsadm -p TIMEOUT -M NETMASK): new connections from one
/// client network to one virtual service go to the same real while a
/// template for (client address & netmask, VIP, port) lives.
public struct Persistence: Hashable, Sendable {
    /// Seconds a template outlives the last connection it pinned (ipvsadm default 300).
    public var timeout: Double
    /// Prefix length applied to the client address (32 = per client address).
    public var netmaskLength: Int

    public init(timeout: Double = 300, netmaskLength: Int = 32) {
        self.timeout = timeout
        self.netmaskLength = netmaskLength
    }

    /// The netmask as an address (`255.255.255.255` for /32).
    public var netmask: IPv4Address {
        IPv4Address(rawValue: netmaskLength == 0 ? 0 : UInt32.max << UInt32(32 - netmaskLength))
    }
}

/// A virtual service: what clients connect to.
public struct VirtualService: Hashable, Sendable {
    public var address: IPv4Address
    public var port: UInt16
    public var proto: TransportProtocol
    public var scheduler: SchedulerKind
    public var schedulerFlags: SchedulerFlags
    public var mode: ForwardingMode
    public var persistence: Persistence?
    /// FULLNAT source addresses (topology `local-addresses:`); required for
    /// `.fullnat`, ignored otherwise.
    public var localAddresses: [IPv4Address]
    /// Size of the Maglev lookup table for `.mh`: a prime (the paper's 65537
    /// by default; ip_vs_mh builds 4093 unless configured otherwise).
    public var maglevTableSize: Int
    /// IPVS sloppy_tcp for this service (topology `sloppy: true`): a TCP
    /// packet without SYN that finds no entry is scheduled (and its entry
    /// starts as the state machine takes it from NONE: an ACK makes it
    /// ESTABLISHED) instead of refused as `lvs-not-syn`. A RST never is.
    public var sloppy: Bool

    public init(address: IPv4Address, port: UInt16, proto: TransportProtocol = .tcp,
                scheduler: SchedulerKind = .wlc, schedulerFlags: SchedulerFlags = [],
                mode: ForwardingMode = .dr, persistence: Persistence? = nil,
                localAddresses: [IPv4Address] = [], maglevTableSize: Int = MaglevTable.defaultSize,
                sloppy: Bool = false) {
        self.sloppy = sloppy
        self.address = address
        self.port = port
        self.proto = proto
        self.scheduler = scheduler
        self.schedulerFlags = schedulerFlags
        self.mode = mode
        self.persistence = persistence
        self.localAddresses = localAddresses
        self.maglevTableSize = maglevTableSize
    }
}

/// A real server of a virtual service.
public struct RealServer: Hashable, Sendable {
    public var address: IPv4Address
    /// The port on the real; nil means the service's port.
    public var port: UInt16?
    /// 0...65535 as in ipvsadm. 0 = quiescent: no new connections, existing ones continue.
    public var weight: Int
    /// Health: false takes the real out of scheduling as keepalived does
    /// when a check fails (existing connections continue).
    public var enabled: Bool
    /// Name hashed by Maglev for the real's permutation; nil means "ip:port".
    public var name: String?

    public init(address: IPv4Address, port: UInt16? = nil, weight: Int = 1, enabled: Bool = true, name: String? = nil) {
        self.address = address
        self.port = port
        self.weight = weight
        self.enabled = enabled
        self.name = name
    }
}

/// A virtual service of one DirectorCore, numbered in the order added.
public struct ServiceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static func < (a: ServiceID, b: ServiceID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "service \(rawValue)" }
}

/// A real server of one service, numbered in the order added to it.
public struct RealServerID: Hashable, Sendable, CustomStringConvertible {
    public var service: ServiceID
    public var index: Int
    public init(service: ServiceID, index: Int) {
        self.service = service
        self.index = index
    }
    public var description: String { "real \(service.rawValue).\(index)" }
}

/// TCP flag bits as they sit in byte 13 of the TCP header; the director
/// API takes that raw byte (Wire's `TCPFlags.rawValue`).
public enum TCPFlagBits {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
}

/// Configuration mistakes DirectorCore rejects (nothing is changed).
public enum DirectorConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    case duplicateService(TransportProtocol, IPv4Address, UInt16)
    case duplicateReal(IPv4Address, UInt16)
    case tooManyServices
    case tooManyReals
    case weightOutOfRange(Int)
    case fullnatWithoutLocalAddresses
    case maglevTableSizeNotPrime(Int)
    case maglevTableTooSmall(size: Int, reals: Int)
    case persistenceOutOfRange
    case unknownService(ServiceID)
    case unknownReal(RealServerID)

    public var description: String {
        switch self {
        case .duplicateService(let p, let a, let port): "service \(p.ipvsadmName) \(a):\(port) exists already"
        case .duplicateReal(let a, let port): "real \(a):\(port) is already in this service"
        case .tooManyServices: "too many services (at most 65535)"
        case .tooManyReals: "too many reals in one service (at most 65534)"
        case .weightOutOfRange(let w): "weight \(w) outside 0...65535"
        case .fullnatWithoutLocalAddresses: "a fullnat service needs local-addresses"
        case .maglevTableSizeNotPrime(let m): "Maglev table size \(m) is not a prime"
        case .maglevTableTooSmall(let m, let n): "Maglev table size \(m) is smaller than the \(n) reals"
        case .persistenceOutOfRange: "persistence needs a timeout > 0 and a netmask length 0...32"
        case .unknownService(let s): "no \(s)"
        case .unknownReal(let r): "no \(r)"
        }
    }
}
