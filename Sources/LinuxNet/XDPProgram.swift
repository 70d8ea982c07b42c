// XDPProgram — the lab's own XDP program (bpf/wirelab_xdp.bpf.c), loaded once
// per node and attached to each of the node's userspace-port interfaces.
import CXDP
import Glibc
import Foundation
import Wire

/// A rule that sends matching frames to the node's own kernel stack
/// (XDP_PASS) instead of the node's AF_XDP sockets: management and health
/// check traffic to the node's own addresses.
///
/// Matched against the `pass_rules` map of the XDP program, most specific
/// first (see bpf/wirelab_xdp.bpf.c). Pass-to-kernel is all or nothing per
/// frame: a passed frame does not reach the data plane.
public struct PassRule: Hashable, Sendable, CustomStringConvertible {
    /// EtherType (host order): 0x0800 IPv4, 0x0806 ARP, or any other.
    public var etherType: UInt16
    /// IPv4 destination (ARP: target protocol address); `.any` matches all.
    public var address: IPv4Address
    /// IP protocol (1 ICMP, 6 TCP, 17 UDP); 0 matches all.
    public var ipProtocol: UInt8
    /// TCP/UDP destination port; 0 matches all.
    public var port: UInt16

    public init(etherType: UInt16, address: IPv4Address = .any, ipProtocol: UInt8 = 0, port: UInt16 = 0) {
        self.etherType = etherType
        self.address = address
        self.ipProtocol = ipProtocol
        self.port = port
    }

    /// IPv4 to `destination`, optionally only protocol `ipProtocol` and
    /// destination port `port` (TCP/UDP).
    public static func ipv4(to destination: IPv4Address, ipProtocol: UInt8 = 0, port: UInt16 = 0) -> PassRule {
        PassRule(etherType: 0x0800, address: destination, ipProtocol: ipProtocol, port: port)
    }

    /// ARP whose target protocol address is `target` (`.any`: all ARP).
    public static func arp(target: IPv4Address) -> PassRule {
        PassRule(etherType: 0x0806, address: target)
    }

    /// Every frame of `etherType` (e.g. 0x86DD for all IPv6).
    public static func etherType(_ etherType: UInt16) -> PassRule { PassRule(etherType: etherType) }

    /// Everything a node's own address needs to be reachable over IPv4: all
    /// IPv4 to it and the ARP asking for it.
    public static func hostAddress(_ address: IPv4Address) -> [PassRule] {
        [.ipv4(to: address), .arp(target: address)]
    }

    public var description: String {
        switch etherType {
        case 0x0800:
            var text = "ipv4 to \(address)"
            if ipProtocol != 0 { text += " proto \(ipProtocol)" }
            if port != 0 { text += " port \(port)" }
            return text
        case 0x0806: return address == .any ? "arp" : "arp for \(address)"
        default: return "ethertype 0x" + String(etherType, radix: 16)
        }
    }

    /// The 12-byte `struct wl_pass_key` (network byte order fields).
    var keyBytes: [UInt8] {
        var key = [UInt8](repeating: 0, count: 12)
        let a = address.rawValue
        key[0] = UInt8(a >> 24); key[1] = UInt8(truncatingIfNeeded: a >> 16)
        key[2] = UInt8(truncatingIfNeeded: a >> 8); key[3] = UInt8(truncatingIfNeeded: a)
        key[4] = UInt8(etherType >> 8); key[5] = UInt8(truncatingIfNeeded: etherType)
        key[6] = UInt8(port >> 8); key[7] = UInt8(truncatingIfNeeded: port)
        key[8] = ipProtocol
        return key
    }

    init(keyBytes k: [UInt8]) {
        let a = UInt32(k[0]) << 24 | UInt32(k[1]) << 16 | UInt32(k[2]) << 8 | UInt32(k[3])
        self.init(etherType: UInt16(k[4]) << 8 | UInt16(k[5]), address: IPv4Address(rawValue: a),
                  ipProtocol: k[8], port: UInt16(k[6]) << 8 | UInt16(k[7]))
    }
}

/// Counters of the XDP program, summed over CPUs.
public struct XDPProgramStatistics: Sendable, Equatable, CustomStringConvertible {
    /// Frames redirected into an AF_XDP socket.
    public var redirected: UInt64 = 0
    /// Frames passed to the kernel by a pass rule.
    public var passedByRule: UInt64 = 0
    /// Frames passed to the kernel because no socket is registered for the
    /// port's receive queue (yet).
    public var passedNoSocket: UInt64 = 0
    /// Frames on an interface the program is attached to but has no port for.
    public var passedUnknownInterface: UInt64 = 0
    /// Records written to the capture ring.
    public var captured: UInt64 = 0
    /// Capture records lost because the ring was full.
    public var captureDropped: UInt64 = 0
    /// Frames whose bytes could not be read for capture.
    public var captureErrors: UInt64 = 0

    public var description: String {
        "redirected \(redirected) passed-rule \(passedByRule) passed-no-socket \(passedNoSocket) "
            + "passed-unknown \(passedUnknownInterface) captured \(captured) "
            + "capture-dropped \(captureDropped) capture-errors \(captureErrors)"
    }
}

/// The lab's XDP program and its maps, loaded once per node.
///
/// Maps are shared by all the ports of the node: one capture ring (records
/// carry the ifindex), one table of pass-to-kernel rules (the node's
/// addresses), one XSKMAP keyed by port slot × queue. Loading does not depend
/// on the namespace; `attach` and `XDPPort.init` must run on a thread inside
/// the node's namespace (interface indexes are per namespace).
///
/// Attachment is a BPF link in native (driver) mode: veth implements native
/// XDP, and native mode runs the program in veth's NAPI poll, which also makes
/// the peer stop sending GSO super-frames (a frame larger than a UMEM frame
/// could not be redirected). The link is an fd: closing it detaches the
/// program from exactly the interface it was attached to whatever namespace
/// the closing thread is in, and a crashed daemon leaves no program behind.
public final class XDPProgram: @unchecked Sendable {
    /// How the program is attached to an interface.
    public enum AttachMode: Sendable {
        /// XDP_FLAGS_DRV_MODE: in the driver (veth implements it). Default.
        case native
        /// XDP_FLAGS_SKB_MODE: generic XDP on the skb path.
        case generic

        var flags: UInt32 {
            switch self {
            case .native: return UInt32(XDP_FLAGS_DRV_MODE)
            case .generic: return UInt32(XDP_FLAGS_SKB_MODE)
            }
        }
    }

    public struct Configuration: Sendable {
        /// Size of the capture ring, bytes: a power of two, at least a page.
        public var captureRingBytes: Int = 1 << 22
        /// Port slots: the interfaces this program can be attached to at
        /// once, 1 ... `XDPProgram.maxPorts`. Sizes the `ports` and `xsks`
        /// maps (kernel memory: 8 bytes per XSKMAP entry, ~100 per hash entry).
        public var portSlots: Int = 64
        /// Bytes captured per frame, 1 ... `XDPProgram.maxSnapLength`.
        public var snapLength: Int = XDPProgram.maxSnapLength
        public var attachMode: AttachMode = .native
        public init() {}
    }

    /// The smallest capture ring, bytes (a page: a BPF ring buffer is at
    /// least one), for a program whose frames nobody captures.
    public static let smallestCaptureRingBytes = Int(getpagesize())
    /// Largest capture per frame (WL_SNAP_MAX), bytes.
    public static let maxSnapLength = 2048
    /// Ports per node (WL_MAX_PORTS) and queues per port (WL_MAX_QUEUES).
    /// The maps are sized to `Configuration.portSlots` when loaded, so a
    /// node pays only for the ports it has.
    public static let maxPorts = 1024
    public static let maxQueues = 4
    /// Pass-to-kernel rules per node (WL_PASS_RULES_MAX, the pass_rules map).
    public static let maxPassRules = 256
    static let portCaptureFlag: UInt32 = 1

    public let configuration: Configuration
    /// The program's fd.
    public let programFD: Int32
    /// The BPF ring buffer of captured frames (for `CaptureRing`).
    public let captureMapFD: Int32
    let xsksFD: Int32
    let portsFD: Int32
    let configFD: Int32
    let passRulesFD: Int32
    let statsFD: Int32

    private var object: OpaquePointer?
    /// The loaded object, for the maps other files of this module reach by name.
    var objectForMaps: OpaquePointer? { lock.lock(); defer { lock.unlock() }; return object }
    private let lock = NSLock()
    private var links: [Int32: Attachment] = [:]
    private var snapLength: Int
    private var passRuleCount = 0

    struct Attachment {
        var linkFD: Int32
        var slot: UInt32
        var flags: UInt32
        var name: String
        /// attach() calls not yet matched by detach().
        var users: Int
    }

    /// Opens and loads the program (bpf_object__open_mem + bpf_object__load).
    public init(configuration: Configuration = Configuration()) throws {
        self.configuration = configuration
        let ring = configuration.captureRingBytes
        guard ring >= Int(getpagesize()), ring & (ring - 1) == 0 else {
            throw PortError("loading XDP program", detail: "capture ring size \(ring) is not a power of two of at least a page")
        }
        guard (1...XDPProgram.maxSnapLength).contains(configuration.snapLength) else {
            throw PortError("loading XDP program", detail: "snap length \(configuration.snapLength) is outside 1...\(XDPProgram.maxSnapLength)")
        }
        let slots = configuration.portSlots
        guard (1...XDPProgram.maxPorts).contains(slots) else {
            throw PortError("loading XDP program", detail: "port slots \(slots) is outside 1...\(XDPProgram.maxPorts)")
        }
        snapLength = configuration.snapLength

        let obj = try EmbeddedBPFObject.load(name: "wirelab_xdp", bytes: WirelabXDPObject.bytes, kind: "XDP") { obj in
            guard let ringMap = bpf_object__find_map_by_name(obj, "capture") else {
                throw PortError("finding map capture in wirelab_xdp", errno: ENOENT)
            }
            let rc = bpf_map__set_max_entries(ringMap, UInt32(ring))
            if rc < 0 { throw PortError("sizing capture ring to \(ring) bytes", errno: -rc) }
            for (map, entries) in [("ports", slots), ("xsks", slots * XDPProgram.maxQueues)] {
                guard let m = bpf_object__find_map_by_name(obj, map) else {
                    throw PortError("finding map \(map) in wirelab_xdp", errno: ENOENT)
                }
                let rc = bpf_map__set_max_entries(m, UInt32(entries))
                if rc < 0 { throw PortError("sizing map \(map) to \(entries) entries", errno: -rc) }
            }
        }
        func fail(_ op: String, _ err: Int32, detail: String = "") -> PortError {
            bpf_object__close(obj)
            return PortError(op, errno: err, detail: detail)
        }
        func mapFD(_ name: String) throws -> Int32 {
            let fd = bpf_object__find_map_fd_by_name(obj, name)
            if fd < 0 { throw fail("finding map \(name) in wirelab_xdp", -fd) }
            return fd
        }
        guard let prog = bpf_object__find_program_by_name(obj, "wirelab_xdp") else {
            throw fail("finding program wirelab_xdp", ENOENT)
        }
        programFD = bpf_program__fd(prog)
        captureMapFD = try mapFD("capture")
        xsksFD = try mapFD("xsks")
        portsFD = try mapFD("ports")
        configFD = try mapFD("config")
        passRulesFD = try mapFD("pass_rules")
        statsFD = try mapFD("stats")
        object = obj
        do { try writeConfig() } catch { bpf_object__close(obj); object = nil; throw error }
    }

    deinit { close() }

    /// Detaches from every interface and releases the program and its maps.
    public func close() {
        lock.lock(); defer { lock.unlock() }
        for (_, a) in links { Glibc.close(a.linkFD) }
        links.removeAll()
        if let object { bpf_object__close(object) }
        object = nil
    }

    // MARK: attachment

    /// Attaches the program to interface `ifindex` (a BPF link, `attachMode`)
    /// and gives the interface a port slot; frames on it go to the kernel
    /// until a socket is registered. Returns the slot. Reference counted:
    /// attaching an attached interface returns its slot, and the program
    /// stays attached until `detach` was called once per `attach` (an
    /// XDPPort attaches on open and detaches on close). Must run inside the
    /// interface's namespace.
    @discardableResult
    public func attach(interfaceIndex ifindex: Int32, name: String) throws -> UInt32 {
        lock.lock(); defer { lock.unlock() }
        if var a = links[ifindex] {
            a.users += 1
            links[ifindex] = a
            return a.slot
        }
        let used = Set(links.values.map(\.slot))
        guard let slot = (0..<UInt32(configuration.portSlots)).first(where: { !used.contains($0) }) else {
            throw PortError("attaching XDP program", interface: name,
                            detail: "node already has \(configuration.portSlots) ports (the program's port slots)")
        }
        try updatePort(ifindex, slot: slot, flags: 0, name: name)
        var opts = bpf_link_create_opts()
        opts.sz = MemoryLayout<bpf_link_create_opts>.size
        opts.flags = configuration.attachMode.flags
        let link = bpf_link_create(programFD, ifindex, BPF_XDP, &opts)
        if link < 0 {
            var key = UInt32(bitPattern: ifindex)
            bpf_map_delete_elem(portsFD, &key)
            let hint = -link == EBUSY || -link == EEXIST
                ? "another XDP program is attached (ip link set dev \(name) xdp off)" : ""
            throw PortError("attaching XDP program (bpf_link_create, \(configuration.attachMode) mode)",
                            interface: name, errno: -link, detail: hint)
        }
        links[ifindex] = Attachment(linkFD: link, slot: slot, flags: 0, name: name, users: 1)
        return slot
    }

    /// Drops one `attach` reference; the last one detaches the program from
    /// `ifindex` (closes the link) and forgets the port. Any thread.
    public func detach(interfaceIndex ifindex: Int32) {
        lock.lock(); defer { lock.unlock() }
        guard var a = links[ifindex] else { return }
        a.users -= 1
        if a.users > 0 {
            links[ifindex] = a
            return
        }
        links[ifindex] = nil
        var key = UInt32(bitPattern: ifindex)
        bpf_map_delete_elem(portsFD, &key)
        Glibc.close(a.linkFD)
    }

    /// Inserts an AF_XDP socket into the XSKMAP for (interface, queue).
    public func registerSocket(_ socketFD: Int32, interfaceIndex ifindex: Int32, queue: UInt32) throws {
        lock.lock(); defer { lock.unlock() }
        guard let a = links[ifindex] else {
            throw PortError("registering AF_XDP socket in XSKMAP", detail: "interface \(ifindex) is not attached")
        }
        guard queue < UInt32(XDPProgram.maxQueues) else {
            throw PortError("registering AF_XDP socket in XSKMAP", interface: a.name,
                            detail: "queue \(queue) ≥ \(XDPProgram.maxQueues)")
        }
        var key = a.slot * UInt32(XDPProgram.maxQueues) + queue
        var value = UInt32(bitPattern: socketFD)
        let rc = bpf_map_update_elem(xsksFD, &key, &value, UInt64(BPF_ANY))
        if rc < 0 { throw PortError("registering AF_XDP socket in XSKMAP", interface: a.name, errno: -rc) }
    }

    /// Slot of an attached interface.
    public func slot(interfaceIndex ifindex: Int32) -> UInt32? {
        lock.lock(); defer { lock.unlock() }
        return links[ifindex]?.slot
    }

    // MARK: capture

    /// Turns capture into the ring on or off for one attached interface.
    public func setCapture(_ enabled: Bool, interfaceIndex ifindex: Int32) throws {
        lock.lock(); defer { lock.unlock() }
        guard var a = links[ifindex] else {
            throw PortError("setting capture", detail: "interface \(ifindex) is not attached")
        }
        a.flags = enabled ? a.flags | XDPProgram.portCaptureFlag : a.flags & ~XDPProgram.portCaptureFlag
        try updatePort(ifindex, slot: a.slot, flags: a.flags, name: a.name)
        links[ifindex] = a
    }

    /// Bytes captured per frame (1 ... maxSnapLength).
    public func setSnapLength(_ length: Int) throws {
        guard (1...XDPProgram.maxSnapLength).contains(length) else {
            throw PortError("setting capture snap length", detail: "\(length) is outside 1...\(XDPProgram.maxSnapLength)")
        }
        lock.lock(); defer { lock.unlock() }
        snapLength = length
        try writeConfig()
    }

    // MARK: pass-to-kernel rules

    /// Adds a pass-to-kernel rule (idempotent).
    public func addPassRule(_ rule: PassRule) throws {
        lock.lock(); defer { lock.unlock() }
        var key = rule.keyBytes
        var hits = UInt64(0)
        let rc = bpf_map_update_elem(passRulesFD, &key, &hits, UInt64(BPF_NOEXIST))
        if rc < 0 && -rc != EEXIST { throw PortError("adding pass-to-kernel rule \(rule)", errno: -rc) }
        passRuleCount = countPassRules()
        try writeConfig()
    }

    /// Removes a pass-to-kernel rule (no error if absent).
    public func removePassRule(_ rule: PassRule) throws {
        lock.lock(); defer { lock.unlock() }
        var key = rule.keyBytes
        let rc = bpf_map_delete_elem(passRulesFD, &key)
        if rc < 0 && -rc != ENOENT { throw PortError("removing pass-to-kernel rule \(rule)", errno: -rc) }
        passRuleCount = countPassRules()
        try writeConfig()
    }

    /// The rules with how many frames each has passed.
    public func passRules() -> [(rule: PassRule, hits: UInt64)] {
        lock.lock(); defer { lock.unlock() }
        var result: [(PassRule, UInt64)] = []
        var key = [UInt8](repeating: 0, count: 12)
        var next = [UInt8](repeating: 0, count: 12)
        var first = true
        while true {
            let rc = first ? bpf_map_get_next_key(passRulesFD, nil, &next)
                           : bpf_map_get_next_key(passRulesFD, &key, &next)
            if rc < 0 { break }
            first = false
            var hits = UInt64(0)
            if bpf_map_lookup_elem(passRulesFD, &next, &hits) == 0 {
                result.append((PassRule(keyBytes: next), hits))
            }
            key = next
        }
        return result
    }

    // MARK: statistics

    /// The program's counters, summed over CPUs.
    public func statistics() -> XDPProgramStatistics {
        let sum = statisticSum
        var s = XDPProgramStatistics()
        s.redirected = sum(0)
        s.passedByRule = sum(1)
        s.passedNoSocket = sum(2)
        s.passedUnknownInterface = sum(3)
        s.captured = sum(4)
        s.captureDropped = sum(5)
        s.captureErrors = sum(6)
        return s
    }

    /// Counter INDEX of the program's `stats` (per CPU), summed over CPUs.
    func statisticSum(_ index: UInt32) -> UInt64 {
        var values = [UInt64](repeating: 0, count: max(Int(libbpf_num_possible_cpus()), 1))
        var key = index
        guard bpf_map_lookup_elem(statsFD, &key, &values) == 0 else { return 0 }
        return values.reduce(0, &+)
    }

    // MARK: private

    func updatePort(_ ifindex: Int32, slot: UInt32, flags: UInt32, name: String) throws {
        var key = UInt32(bitPattern: ifindex)
        var value: (UInt32, UInt32) = (slot, flags) // struct wl_port
        let rc = bpf_map_update_elem(portsFD, &key, &value, UInt64(BPF_ANY))
        if rc < 0 { throw PortError("registering port in XDP program", interface: name, errno: -rc) }
    }

    private func writeConfig() throws {
        var key = UInt32(0)
        var value: (UInt32, UInt32) = (UInt32(snapLength), UInt32(passRuleCount)) // struct wl_config
        let rc = bpf_map_update_elem(configFD, &key, &value, UInt64(BPF_ANY))
        if rc < 0 { throw PortError("writing XDP program configuration", errno: -rc) }
    }

    private func countPassRules() -> Int {
        var key = [UInt8](repeating: 0, count: 12)
        var next = [UInt8](repeating: 0, count: 12)
        var n = 0
        var rc = bpf_map_get_next_key(passRulesFD, nil, &next)
        while rc == 0 {
            n += 1
            key = next
            rc = bpf_map_get_next_key(passRulesFD, &key, &next)
        }
        return n
    }
}

extension XDPProgram {
    /// The largest MTU a veth may have for native XDP to attach to its peer
    /// (`AttachMode.native`, what the lab uses): the kernel's veth_xdp_set
    /// (drivers/net/veth.c) refuses a program that does not take
    /// multi-buffer frames with ERANGE ("Peer MTU is too large to set XDP")
    /// when the peer's MTU exceeds
    ///   SKB_WITH_OVERHEAD(PAGE_SIZE − VETH_XDP_HEADROOM) − ETH_HLEN
    ///   = page − 256 (XDP_PACKET_HEADROOM) − 320 (skb_shared_info, 64-byte
    ///     aligned, MAX_SKB_FRAGS 17) − 14,
    /// 3506 with 4 KiB pages (measured here: 3506 attaches, 3507 fails).
    /// A lab link has one MTU for both ends, so every link of an AF_XDP
    /// node must stay at or below it.
    public static func maxVethMTU(pageSize: Int) -> Int {
        pageSize - 256 - 320 - 14
    }
}
