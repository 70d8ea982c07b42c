import Wire

// VRRP version 3 (RFC 9568) for IPv4: one `VRRPInstance` per group (VRID)
// of a router or director, a pure state machine driven by adverts and by
// its timers on the injected clock; `VRRPGroups` is what a node holds. The
// RFC's names are kept: Master_Adver_Interval, Skew_Time,
// Master_Down_Interval, Adver_Timer, Master_Down_Timer (§6.1, §6.2).
// Intervals are centiseconds on the wire and nanoseconds here.

/// One group of a node, as the topology's `vrrp:` gives it.
public struct VRRPConfiguration: Hashable, Sendable {
    /// The VRID, 1...255.
    public var vrid: UInt8
    /// 1...254; 255 = the address owner.
    public var priority: UInt8
    public var vips: [IPv4Address]
    /// Advertisement_Interval in centiseconds, 1...4095.
    public var interval: UInt16
    public var preempt: Bool
    /// Nanoseconds after start during which a lower-priority master is not
    /// preempted (keepalived's `preempt_delay`).
    public var preemptDelay: UInt64
    /// Use the virtual MAC 00:00:5e:00:01:VRID (else the port's own MAC, keepalived's default).
    public var vmac: Bool
    /// The port the group lives on.
    public var port: PortID
    /// Gratuitous ARPs per VIP on becoming master, and their spacing in nanoseconds.
    public var gratuitousARPCount: Int
    public var gratuitousARPSpacing: UInt64

    public init(vrid: UInt8, priority: UInt8, vips: [IPv4Address], interval: UInt16 = 100, preempt: Bool = true,
                preemptDelay: UInt64 = 0, vmac: Bool = false, port: PortID,
                gratuitousARPCount: Int = 3, gratuitousARPSpacing: UInt64 = 100_000_000) {
        self.vrid = vrid
        self.priority = priority
        self.vips = vips
        self.interval = interval
        self.preempt = preempt
        self.preemptDelay = preemptDelay
        self.vmac = vmac
        self.port = port
        self.gratuitousARPCount = gratuitousARPCount
        self.gratuitousARPSpacing = gratuitousARPSpacing
    }
}

/// The states of RFC 9568 §6.4.
public enum VRRPState: String, Sendable, Codable {
    case initialize = "init"
    case backup
    case master
}

/// A state change and why, for the daemon's log and `status`.
public struct VRRPTransition: Hashable, Sendable, CustomStringConvertible {
    public var vrid: UInt8
    public var from: VRRPState
    public var to: VRRPState
    public var at: Instant
    public var reason: String
    public var description: String { "vrrp group \(vrid): \(from.rawValue) → \(to.rawValue): \(reason)" }
}

/// One virtual router (RFC 9568 §6). Mutated in place by its node; emits
/// adverts and gratuitous ARPs into the node's emitter; allocates only when
/// it changes state (the transition's reason).
public struct VRRPInstance: Sendable {
    public let configuration: VRRPConfiguration
    /// The port's own MAC and primary address (the advert's source).
    public let portMAC: MACAddress
    public let primaryAddress: IPv4Address
    /// The MAC the group's frames and ARP answers carry.
    public let virtualMAC: MACAddress

    public private(set) var state: VRRPState = .initialize
    /// Master_Adver_Interval, centiseconds: learned from the master's adverts.
    public private(set) var masterAdverInterval: UInt16
    /// The master's primary address and priority as last seen (ours while master).
    public private(set) var masterAddress: IPv4Address?
    public private(set) var masterPriority: UInt8?
    /// Adver_Timer (master) and Master_Down_Timer (backup) deadlines.
    public private(set) var adverTimer: Instant?
    public private(set) var masterDownTimer: Instant?
    /// When the instance (re)started; nil until it has, or after `stop`.
    public private(set) var startedAt: Instant?
    /// False after `stop`/`resign` until `start` again.
    public private(set) var running = true
    var lastAdvert: Instant?
    var garpLeft = 0
    var garpTimer: Instant?
    var identification: UInt16 = 0
    let advert: VRRPRepr

    public struct Counters: Equatable, Sendable {
        public var advertsSent: UInt64 = 0
        public var advertsReceived: UInt64 = 0
        public var becameMaster: UInt64 = 0
        public var gratuitousARPsSent: UInt64 = 0
        public var priorityZeroSent: UInt64 = 0
        public var priorityZeroReceived: UInt64 = 0
    }
    public private(set) var counters = Counters()
    /// The latest transitions (at most `transitionLimit`), oldest first.
    public private(set) var transitions: [VRRPTransition] = []
    /// Transitions ever made (`transitions` keeps the latest).
    public private(set) var transitionCount = 0
    public static let transitionLimit = 64

    public init(_ configuration: VRRPConfiguration, portMAC: MACAddress, primaryAddress: IPv4Address) {
        self.configuration = configuration
        self.portMAC = portMAC
        self.primaryAddress = primaryAddress
        virtualMAC = configuration.vmac ? VRRP.virtualMAC(configuration.vrid) : portMAC
        masterAdverInterval = configuration.interval
        advert = VRRPRepr(virtualRouterID: configuration.vrid, priority: configuration.priority,
                          maxAdvertisementInterval: configuration.interval, addresses: configuration.vips)
        transitions.reserveCapacity(Self.transitionLimit)
    }

    public var isMaster: Bool { state == .master }
    public var isOwner: Bool { configuration.priority == 255 }

    // MARK: Timers (§6.1)

    static let centisecond: UInt64 = 10_000_000

    /// Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256, in nanoseconds.
    public var skewTime: UInt64 {
        UInt64(256 - Int(configuration.priority)) * UInt64(masterAdverInterval) * Self.centisecond / 256
    }
    /// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time, in nanoseconds.
    public var masterDownInterval: UInt64 { 3 * UInt64(masterAdverInterval) * Self.centisecond + skewTime }
    var advertisementInterval: UInt64 { UInt64(configuration.interval) * Self.centisecond }

    /// The earliest moment `tick` has something to do: `.zero` before the
    /// instance started (start at once), nil when stopped.
    public var nextTimer: Instant? {
        guard running else { return nil }
        guard startedAt != nil else { return .zero }
        var t = state == .master ? adverTimer : masterDownTimer
        if let g = garpTimer, t.map({ g < $0 }) ?? true { t = g }
        return t
    }

    /// Whether the instance still waits to learn who is master (started
    /// less than a Master_Down_Interval ago with no advert heard): the
    /// simulator keeps its clock going until every group has settled.
    public var isSettling: Bool { running && (startedAt == nil || (state == .backup && masterAddress == nil)) }

    /// Runs what is due: the Startup event, Adver_Timer, Master_Down_Timer,
    /// the gratuitous ARPs of a takeover.
    public mutating func tick(now: Instant, emit: inout Emitter) {
        guard running else { return }
        guard startedAt != nil else { start(now: now, emit: &emit); return }
        switch state {
        case .master:
            if let t = adverTimer, now >= t {
                sendAdvert(priority: configuration.priority, emit: &emit)
                adverTimer = now.adding(nanoseconds: advertisementInterval)
            }
        case .backup:
            if let t = masterDownTimer, now >= t {
                let silence = lastAdvert.map { Self.seconds(now.nanoseconds - $0.nanoseconds) }
                let reason = silence.map { "master down timer expired (no advert for \($0) s)" }
                    ?? "master down timer expired (no advert since start, \(Self.seconds(now.nanoseconds - startedAt!.nanoseconds)) s)"
                becomeMaster(now: now, reason: masterDownReason ?? reason, emit: &emit)
            }
        case .initialize:
            break
        }
        if let g = garpTimer, now >= g {
            if state == .master { sendGratuitousARPs(now: now, emit: &emit) } else { garpTimer = nil }
        }
    }

    var masterDownReason: String?

    /// The Startup event (§6.4.1): the owner becomes master at once, any
    /// other instance backup, waiting Master_Down_Interval for an advert.
    public mutating func start(now: Instant, emit: inout Emitter) {
        running = true
        startedAt = now
        masterAdverInterval = configuration.interval
        masterAddress = nil
        masterPriority = nil
        lastAdvert = nil
        masterDownReason = nil
        if isOwner {
            becomeMaster(now: now, reason: "startup: address owner (priority 255)", emit: &emit)
        } else {
            masterDownTimer = now.adding(nanoseconds: masterDownInterval)
            record(.backup, now, "startup (master down interval \(Self.seconds(masterDownInterval)) s)")
        }
    }

    /// The Shutdown event (§6.4.2, §6.4.3): a master sends an advert with
    /// priority 0 so a backup takes over after its Skew_Time; then the
    /// instance stays in Initialize until `start`. (`wirelab down`.)
    public mutating func resign(now: Instant, emit: inout Emitter) {
        if state == .master {
            sendAdvert(priority: 0, emit: &emit)
            counters.priorityZeroSent &+= 1
        }
        halt(now, state == .master ? "shutdown: resigned (sent priority 0)" : "shutdown")
    }

    /// Stops without a word, as a power cut does: peers notice only when
    /// their Master_Down_Timer runs out.
    public mutating func stop(now: Instant) {
        halt(now, "stopped (no priority 0 sent)")
    }

    mutating func halt(_ now: Instant, _ reason: String) {
        if state != .initialize { record(.initialize, now, reason) }
        running = false
        startedAt = nil
        adverTimer = nil
        masterDownTimer = nil
        garpTimer = nil
        garpLeft = 0
        masterAddress = nil
        masterPriority = nil
    }

    // MARK: Adverts in (§6.4.2, §6.4.3, §7.1)

    /// Drop reasons of adverts that pass the wire checks but do not fit the group.
    public static let addressMismatch = DropReason("vrrp-address-mismatch")
    public static let badInterval = DropReason("vrrp-bad-interval")
    public static let notRunning = DropReason("vrrp-not-running")

    /// An advert for this group from `source` (checked: TTL, version,
    /// checksum). nil when it was acted on (or ignored as the RFC says),
    /// else why it was dropped.
    public mutating func receive(_ h: VRRPHeader, from source: IPv4Address, now: Instant,
                                 emit: inout Emitter) -> DropReason? {
        guard running, startedAt != nil, state != .initialize else { return Self.notRunning }
        let priority = h.priority
        // §7.1: the addresses must be ours, unless the sender owns them.
        if priority != 255 && !sameAddresses(h) { return Self.addressMismatch }
        let interval = h.maxAdvertisementInterval
        guard interval > 0 else { return Self.badInterval }
        counters.advertsReceived &+= 1
        let local = configuration.priority
        switch state {
        case .backup:
            lastAdvert = now
            if priority == 0 {
                counters.priorityZeroReceived &+= 1
                masterDownTimer = now.adding(nanoseconds: skewTime)
                masterDownReason = "master \(source) resigned (priority 0): took over after skew time \(Self.seconds(skewTime)) s"
            } else if !preempts(now: now) || priority >= local {
                masterAdverInterval = interval
                masterDownTimer = now.adding(nanoseconds: masterDownInterval)
                masterDownReason = nil
                masterAddress = source
                masterPriority = priority
            }
            // else: a lower-priority master we preempt: discarded, so our
            // Master_Down_Timer runs out.
        case .master:
            if priority == 0 {
                counters.priorityZeroReceived &+= 1
                sendAdvert(priority: local, emit: &emit)
                adverTimer = now.adding(nanoseconds: advertisementInterval)
            } else if priority > local || (priority == local && source.rawValue > primaryAddress.rawValue) {
                adverTimer = nil
                garpTimer = nil
                garpLeft = 0
                masterAdverInterval = interval
                masterDownTimer = now.adding(nanoseconds: masterDownInterval)
                masterDownReason = nil
                lastAdvert = now
                masterAddress = source
                masterPriority = priority
                record(.backup, now, priority > local
                       ? "advert from \(source) with higher priority \(priority) > \(local)"
                       : "advert from \(source) with equal priority \(priority) and a higher address")
            }
        case .initialize:
            break
        }
        return nil
    }

    /// Preempt_Mode, held off for `preemptDelay` after start.
    func preempts(now: Instant) -> Bool {
        guard configuration.preempt else { return false }
        guard let s = startedAt, configuration.preemptDelay > 0 else { return true }
        return now.nanoseconds &- s.nanoseconds >= configuration.preemptDelay
    }

    func sameAddresses(_ h: VRRPHeader) -> Bool {
        let vips = configuration.vips
        guard h.addressCount == vips.count else { return false }
        for i in 0..<h.addressCount where !Self.has(vips, h.address(i)) { return false }
        return true
    }

    // Index loops, not `contains`/`for in`: unspecialised generic iteration
    // allocates (debug builds), and these run per advert and per packet.
    @inline(__always)
    static func has(_ list: [IPv4Address], _ a: IPv4Address) -> Bool {
        var i = 0
        while i < list.count {
            if list[i] == a { return true }
            i += 1
        }
        return false
    }

    // MARK: Frames out

    mutating func becomeMaster(now: Instant, reason: String, emit: inout Emitter) {
        sendAdvert(priority: configuration.priority, emit: &emit)
        adverTimer = now.adding(nanoseconds: advertisementInterval)
        masterDownTimer = nil
        masterDownReason = nil
        masterAddress = primaryAddress
        masterPriority = configuration.priority
        masterAdverInterval = configuration.interval   // (as master, its own)
        counters.becameMaster &+= 1
        garpLeft = configuration.gratuitousARPCount
        record(.master, now, reason)
        sendGratuitousARPs(now: now, emit: &emit)
    }

    mutating func sendAdvert(priority: UInt8, emit: inout Emitter) {
        identification &+= 1
        let mac = virtualMAC, source = primaryAddress, id = identification
        let frame = advert
        let sent = emit.emit(on: configuration.port) { slot in
            let length = frame.emitFrame(into: slot, sourceMAC: mac, source: source, identification: id)
            if priority != frame.priority {
                // Priority 0 (resign): patch the byte and the checksum.
                let message = slot.wireSlice(VRRP.messageOffset..<length)
                let old = message.wireU16(VRRPHeader.Field.priority)
                message.wireSetU8(priority, VRRPHeader.Field.priority)
                message.wireSetU16(InternetChecksum.update(message.wireU16(VRRPHeader.Field.checksum), old: old,
                                                           new: message.wireU16(VRRPHeader.Field.priority)),
                                   VRRPHeader.Field.checksum)
            }
            return length
        }
        if sent { counters.advertsSent &+= 1 }
    }

    /// One gratuitous ARP request per VIP (sender = target = VIP, from the
    /// group's MAC), then the next round after `gratuitousARPSpacing`.
    mutating func sendGratuitousARPs(now: Instant, emit: inout Emitter) {
        guard garpLeft > 0 else { garpTimer = nil; return }
        let mac = virtualMAC
        for vip in configuration.vips {
            let sent = emit.emit(on: configuration.port) { slot in
                EthernetRepr(destination: .broadcast, source: mac, etherType: .arp)
                    .emit(into: EthernetMutableHeader(unchecked: slot))
                ARPRepr(operation: .request, senderHardwareAddress: mac, senderProtocolAddress: vip,
                        targetHardwareAddress: .zero, targetProtocolAddress: vip)
                    .emit(into: ARPMutableHeader(unchecked: slot.wireSlice(14..<42)))
                return 42
            }
            if sent { counters.gratuitousARPsSent &+= 1 }
        }
        garpLeft -= 1
        garpTimer = garpLeft > 0 ? now.adding(nanoseconds: configuration.gratuitousARPSpacing) : nil
    }

    mutating func record(_ to: VRRPState, _ now: Instant, _ reason: String) {
        transitionCount &+= 1
        if transitions.count == Self.transitionLimit { transitions.removeFirst() }
        transitions.append(VRRPTransition(vrid: configuration.vrid, from: state, to: to, at: now, reason: reason))
        state = to
    }

    static func seconds(_ ns: UInt64) -> String {
        let ms = (ns + 500_000) / 1_000_000
        return "\(ms / 1000).\(String(repeating: "0", count: 3 - String(ms % 1000).count))\(ms % 1000)"
    }
}

/// The VRRP groups of one node: adverts in, timers, and the questions the
/// packet path asks (is this VIP ours now? is this our virtual MAC?).
public struct VRRPGroups: Sendable {
    public private(set) var instances: [VRRPInstance]
    /// Transitions not yet taken by `takeTransitions` (the daemon logs them).
    public private(set) var pending: [VRRPTransition] = []

    public init(_ instances: [VRRPInstance]) {
        self.instances = instances
        pending.reserveCapacity(16)
    }

    public var isEmpty: Bool { instances.isEmpty }

    /// Transitions ever made by every group (changes with any of them).
    public var transitionCount: Int { instances.reduce(0) { $0 + $1.transitionCount } }

    /// The group holding `vip` (linear: a node has a few groups).
    @inline(__always)
    public func group(of vip: IPv4Address) -> Int? {
        var i = 0
        while i < instances.count {
            if VRRPInstance.has(instances[i].configuration.vips, vip) { return i }
            i += 1
        }
        return nil
    }

    /// Whether the node serves `vip` now: it is in no group, or the node is its group's master.
    @inline(__always)
    public func serves(_ vip: IPv4Address) -> Bool {
        guard let i = group(of: vip) else { return true }
        return instances[i].isMaster
    }

    /// Whether ARP for `vip` is answered on `port`: not a group's VIP, or
    /// the group is master and runs on that port. A node with two ports on
    /// one segment (two bonds, two NICs) hears a request on both; answered
    /// from the other, the reply would teach the switches the group's MAC
    /// on the wrong port (ARP flux).
    public func answersARP(for vip: IPv4Address, on port: PortID) -> Bool {
        guard let i = group(of: vip) else { return true }
        return instances[i].isMaster && instances[i].configuration.port == port
    }

    /// Whether `vrid` is master (connection sync roles, drill reports).
    public func isMaster(group vrid: UInt8) -> Bool {
        instances.first { $0.configuration.vrid == vrid }?.isMaster ?? false
    }

    /// The MAC to answer ARP for `vip` with on `port` (the virtual MAC of a vmac group).
    @inline(__always)
    public func arpMAC(for vip: IPv4Address, default mac: MACAddress) -> MACAddress {
        guard let i = group(of: vip) else { return mac }
        return instances[i].virtualMAC
    }

    /// Whether a frame to `mac` on `port` is for this node: a vmac group's MAC while master.
    @inline(__always)
    public func accepts(_ mac: MACAddress, port: Int) -> Bool {
        var i = 0
        while i < instances.count {
            let c = instances[i].configuration
            if c.vmac && instances[i].isMaster && c.port.rawValue == port && instances[i].virtualMAC == mac { return true }
            i += 1
        }
        return false
    }

    /// Whether a parsed frame is a VRRP advert (IPv4 protocol 112 to 224.0.0.18).
    @inline(__always)
    public static func isAdvert(_ p: ParsedFrame) -> Bool {
        p.isIPv4 && p.protocol.rawValue == 112 && p.destinationIPv4 == VRRP.multicastAddress
    }

    static let refusals: [VRRPRefusal: DropReason] = Dictionary(uniqueKeysWithValues: VRRPRefusal.allCases.map {
        ($0, DropReason($0.reason))
    })
    public static let unknownGroup = DropReason("vrrp-unknown-group")
    /// Traffic to (or ARP for) a VIP while this node is backup for it.
    public static let backup = DropReason("vrrp-backup")

    /// An advert arrived on `port`: checked (§7.1) and given to its group.
    /// nil when it was acted on, else the drop reason (the node counts it).
    public mutating func receive(_ frame: UnsafeRawBufferPointer, _ p: ParsedFrame, port: Int, now: Instant,
                                 emit: inout Emitter) -> DropReason? {
        let ip = IPv4Header(unchecked: frame.wireSlice(p.l3Offset..<frame.count))
        let header: VRRPHeader
        switch VRRPRefusal.check(ip) {
        case .failure(let r): return Self.refusals[r]!
        case .success(let h): header = h
        }
        let vrid = header.virtualRouterID
        var found: Int?
        var k = 0
        while k < instances.count {
            if instances[k].configuration.vrid == vrid && instances[k].configuration.port.rawValue == port { found = k; break }
            k += 1
        }
        guard let i = found else { return Self.unknownGroup }
        let before = instances[i].transitionCount
        let reason = instances[i].receive(header, from: ip.sourceAddress, now: now, emit: &emit)
        collect(i, before)
        return reason
    }

    /// The earliest timer of any group.
    public var nextTimer: Instant? {
        var t: Instant?
        var i = 0
        while i < instances.count {
            if let n = instances[i].nextTimer, t == nil || n < t! { t = n }
            i += 1
        }
        return t
    }

    public mutating func tick(now: Instant, emit: inout Emitter) {
        for i in instances.indices {
            guard let n = instances[i].nextTimer, n <= now else { continue }
            let before = instances[i].transitionCount
            instances[i].tick(now: now, emit: &emit)
            collect(i, before)
        }
    }

    /// Every group resigns (priority 0 from a master): `wirelab down`.
    public mutating func resign(now: Instant, emit: inout Emitter) {
        for i in instances.indices {
            let before = instances[i].transitionCount
            instances[i].resign(now: now, emit: &emit)
            collect(i, before)
        }
    }

    /// Every group stops without a word: a power cut (`wirelab fail NODE`).
    public mutating func stop(now: Instant) {
        for i in instances.indices {
            let before = instances[i].transitionCount
            instances[i].stop(now: now)
            collect(i, before)
        }
    }

    /// Every stopped group starts again (Startup event): `wirelab heal NODE`.
    public mutating func start(now: Instant, emit: inout Emitter) {
        for i in instances.indices where !instances[i].running || instances[i].startedAt == nil {
            let before = instances[i].transitionCount
            instances[i].start(now: now, emit: &emit)
            collect(i, before)
        }
    }

    /// The carrier of `port` went down or came back (keepalived's FAULT
    /// state): its groups stop without a word (nothing can be sent), and
    /// start again (Startup: backup, or master if owner) when it returns.
    public mutating func setLink(_ port: PortID, up: Bool, now: Instant, emit: inout Emitter) {
        for i in instances.indices where instances[i].configuration.port == port {
            let before = instances[i].transitionCount
            if up {
                if !instances[i].running { instances[i].start(now: now, emit: &emit) }
            } else if instances[i].running {
                instances[i].halt(now, "link down (no carrier)")
            }
            collect(i, before)
        }
    }

    /// Whether some group still waits to learn its master (see `VRRPInstance.isSettling`).
    public var isSettling: Bool { instances.contains { $0.isSettling } }

    /// The transitions since the last call, oldest first.
    public mutating func takeTransitions() -> [VRRPTransition] {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }

    mutating func collect(_ i: Int, _ before: Int) {
        let new = instances[i].transitionCount - before
        guard new > 0 else { return }
        pending.append(contentsOf: instances[i].transitions.suffix(new))
        if pending.count > 256 { pending.removeFirst(pending.count - 256) }
    }
}

/// A node that runs VRRP groups (router, director): what the daemon, the
/// simulator, drills and `status` reach through.
public protocol VRRPNode: AnyObject {
    var vrrp: VRRPGroups { get set }
}

extension VRRPGroups {
    /// Builds a node's groups: each on its port, advertising from the
    /// port's address in the VIPs' subnet (else its first address).
    public init(_ configurations: [VRRPConfiguration], interfaces: [PortConfiguration]) {
        self.init(configurations.map { c in
            let i = interfaces[c.port.rawValue]
            let primary = i.addresses.first { p in c.vips.contains { p.length < 32 && p.contains($0) } }
                ?? i.addresses.first
            return VRRPInstance(c, portMAC: i.mac, primaryAddress: primary?.address ?? .any)
        })
    }
}
