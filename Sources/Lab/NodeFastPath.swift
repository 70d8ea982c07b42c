import Datapath
import Glibc
import LinuxNet
import Topology
import Wire

/// The fast path of one node (`fastpath: true`, docs/fastpath.md): after
/// the node's element forwarded a frame it says may be repeated, the
/// frame before and after the element become one `fast_flows` entry
/// (`FastPathEntry.derive`), and the node's XDP program forwards the
/// flow's later frames in the kernel. The element's generation goes into
/// `fast_config` whenever it changes, which retires every older entry at
/// once; once a second `sweep` tells the element what its entries carried
/// (`Element.fastPathFlowSeen`: a connection's timeout, a learned MAC's
/// age) and removes entries that are stale, idle, or whose state is gone.
///
/// Datapath thread, under the daemon's lock. Costs nothing on nodes
/// without it; on a node with it, a frame that comes up (a flow's first,
/// SYN/FIN/RST, anything the program does not know) pays one table lookup,
/// and a flow not yet installed one copy of its frame.
final class NodeFastPath {
    let maps: FastPathMaps
    /// The program's port slot of each port (the entries' in/out slots).
    let slots: [UInt16]
    /// The largest IPv4 packet each port's link carries (its MTU).
    let maxLengths: [Int]

    struct Installed {
        var entry: FastPathEntry
        /// The entry's frame count as last read.
        var packets: UInt64
        /// CLOCK_MONOTONIC ns of its install.
        var installedAt: UInt64
    }
    private(set) var installed: [FastPathKey: Installed] = [:]
    /// The generation in `fast_config` (nil: never written).
    private(set) var writtenGeneration: UInt32?
    private(set) var enabled = true

    /// The frame before the element, when its flow is to be installed.
    private let before: UnsafeMutableRawPointer
    private let beforeCapacity = ElementDriver.bufferSize
    private var beforeLength = 0
    private var pending = false

    /// An entry lives at most this long; then the flow's next frame goes
    /// up and the element does what every frame does and the program does
    /// not: refresh its next hop's ARP entry (a router does that in the
    /// last `ARPCache.Configuration.refreshLead`, 5 s, of the entry's 60),
    /// age a learned MAC, advance a connection — and the entry is made
    /// again. One frame per flow per 4 s; shorter than every such window.
    static let maxAgeNanoseconds: UInt64 = 4_000_000_000

    struct Counters {
        var installed: UInt64 = 0
        var removedStale: UInt64 = 0
        var removedGone: UInt64 = 0
        var removedAged: UInt64 = 0
        var tableFull: UInt64 = 0
        var failures: UInt64 = 0
        var refused: [FastPathEntry.Refusal: UInt64] = [:]
    }
    private(set) var counters = Counters()

    init(program: XDPProgram, ports: [AnyPacketPort], node: Node) throws {
        maps = try program.fastPathMaps()
        var slots: [UInt16] = []
        for port in ports {
            let index = port.interfaceIndex
            guard let slot = program.slot(interfaceIndex: index) else {
                throw LabError("the fast path of \(node.name): port \(port.interfaceName) has no slot in the node's XDP program")
            }
            slots.append(UInt16(slot))
            try maps.setEgress(slot: slot, interfaceIndex: index)   // in the node's namespace (NodeRuntime.open)
        }
        self.slots = slots
        maxLengths = node.interfaces.map(\.mtu)
        before = .allocate(byteCount: beforeCapacity, alignment: 64)
    }

    deinit { before.deallocate() }

    /// What the program keys a frame by, or nil for a frame it never takes
    /// (not IPv4 without options, a fragment, neither TCP nor UDP, TCP with
    /// SYN, FIN or RST or without ACK): those the element sees anyway.
    @inline(__always)
    static func key(of frame: UnsafeRawBufferPointer, slot: UInt16) -> FastPathKey? {
        guard frame.count >= 14 + 20 + 8, frame[12] == 0x08, frame[13] == 0x00, frame[14] == 0x45,
              frame[20] & 0x3F == 0, frame[21] == 0 else { return nil }
        let proto = frame[23]
        if proto == 6 {
            guard frame.count >= 14 + 20 + 20, frame[14 + 20 + 13] & 0x17 == 0x10 else { return nil }
        } else if proto != 17 {
            return nil
        }
        func u32(_ at: Int) -> UInt32 { UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u16(_ at: Int) -> UInt16 { UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        func mac(_ at: Int) -> MACAddress {
            MACAddress(frame[at], frame[at + 1], frame[at + 2], frame[at + 3], frame[at + 4], frame[at + 5])
        }
        return FastPathKey(destinationMAC: mac(0), sourceMAC: mac(6), source: IPv4Address(rawValue: u32(26)), destination: IPv4Address(rawValue: u32(30)),
                           sourcePort: u16(34), destinationPort: u16(36), ipProtocol: proto, ingressSlot: slot)
    }

    /// Before the element sees FRAME (from port INGRESS): keeps a copy when
    /// its flow has no entry of GENERATION yet, so `after` can derive one.
    @inline(__always)
    func before(_ frame: UnsafeRawBufferPointer, ingress: Int, generation: UInt32) {
        pending = false
        guard enabled, let key = Self.key(of: frame, slot: slots[ingress]),
              installed[key]?.entry.generation != generation, frame.count <= beforeCapacity else { return }
        before.copyMemory(from: frame.baseAddress!, byteCount: frame.count)
        beforeLength = frame.count
        pending = true
    }

    /// After the element forwarded the frame out of EGRESS as AFTER and
    /// said the treatment may be repeated: installs the flow's entry.
    func after(_ after: UnsafeRawBufferPointer, ingress: Int, egress: Int, generation: UInt32) {
        guard pending else { return }
        pending = false
        let entry: FastPathEntry
        do {
            entry = try FastPathEntry.derive(before: Array(UnsafeRawBufferPointer(start: before, count: beforeLength)),
                                             after: Array(after), ingressSlot: slots[ingress], egressSlot: slots[egress],
                                             maxLength: maxLengths[egress], generation: generation)
        } catch {
            counters.refused[error, default: 0] &+= 1
            return
        }
        if installed[entry.key] == nil, installed.count >= XDPProgram.fastPathCapacity {
            counters.tableFull &+= 1
            return
        }
        do {
            try maps.install(key: entry.key.bytes, action: entry.actionBytes)
        } catch {
            counters.failures &+= 1
            return
        }
        let clock = MonotonicClock.nanoseconds()
        installed[entry.key] = Installed(entry: entry, packets: 0, installedAt: clock)
        counters.installed &+= 1
    }

    /// Writes GENERATION to `fast_config` if it changed: the program stops
    /// applying every entry made before (they come up, and are made again).
    @inline(__always)
    func sync(generation: UInt32) {
        guard writtenGeneration != generation else { return }
        if (try? maps.setFastPath(enabled: enabled, generation: generation)) != nil { writtenGeneration = generation }
    }

    /// Power: off, the program forwards nothing (a dead box) and the
    /// entries go (the element's state restarts); on, it starts again
    /// from the element's current generation.
    func setEnabled(_ on: Bool, generation: UInt32) {
        enabled = on
        if !on { removeAll() }
        writtenGeneration = nil
        sync(generation: generation)
    }

    func removeAll() {
        for key in installed.keys { try? maps.remove(key: key.bytes) }
        installed.removeAll()
    }

    /// Once a second, before the element's tick (so a busy connection is
    /// refreshed before it could expire): reads each entry's frame count,
    /// tells ELEMENT about frames it did not see, and removes entries of
    /// an older generation, older than `maxAgeNanoseconds` (an ended
    /// flow's too), or whose state the element no longer has.
    func sweep<E: Element>(_ element: E, now: Instant) {
        let generation = element.fastPathGeneration
        let clock = MonotonicClock.nanoseconds()
        var remove: [FastPathKey] = []
        for (key, item) in installed {
            if item.entry.generation != generation {
                remove.append(key)
                counters.removedStale &+= 1
                continue
            }
            // Frames since the last sweep: the last of them was at most a
            // second ago, and `now` stands for it (the program keeps no clock).
            let packets = maps.counters(key: key.bytes)?.packets ?? 0
            if packets != item.packets {
                installed[key]?.packets = packets
                if !element.fastPathFlowSeen(item.entry, lastSeen: now, now: now) {
                    remove.append(key)
                    counters.removedGone &+= 1
                    continue
                }
            }
            if clock &- item.installedAt >= Self.maxAgeNanoseconds {
                remove.append(key)
                counters.removedAged &+= 1
            }
        }
        for key in remove {
            try? maps.remove(key: key.bytes)
            installed[key] = nil
        }
    }

    /// For `status`: the node's entries and what happened to them, with
    /// the program's own counts (FORWARDED by the kernel, STALE: an entry
    /// of an older generation sent its frame up).
    func status(forwarded: UInt64, stale: UInt64) -> FastPathStatus {
        var refused: [String: UInt64] = [:]
        for (reason, n) in counters.refused { refused[reason.rawValue] = n }
        return FastPathStatus(enabled: enabled, entries: installed.count, forwarded: forwarded, staleFrames: stale,
                              installed: counters.installed, removedStale: counters.removedStale,
                              removedGone: counters.removedGone, removedAged: counters.removedAged,
                              tableFull: counters.tableFull, failures: counters.failures, refused: refused)
    }
}

/// A node's fast path in `status` (nodes with `fastpath: true`).
public struct FastPathStatus: Codable, Sendable, Equatable {
    public var enabled: Bool
    /// Flows with an entry now.
    public var entries: Int
    /// Frames the XDP program forwarded itself, and frames an entry of an
    /// older generation sent up (made again by the element).
    public var forwarded: UInt64
    public var staleFrames: UInt64
    /// Entries made, and removed: of an older generation, because the
    /// element's state for them was gone…
    public var installed: UInt64
    public var removedStale: UInt64
    public var removedGone: UInt64
    /// …and older than 4 s (`NodeFastPath.maxAgeNanoseconds`; made again
    /// by the flow's next frame).
    public var removedAged: UInt64
    /// Not installed: the table was full, or the kernel refused.
    public var tableFull: UInt64
    public var failures: UInt64
    /// Forwards the element allowed but the program cannot repeat, by reason.
    public var refused: [String: UInt64]
}

/// The other ends of fast-path ports that have no XDP program of their own
/// (a kernel host, an AF_PACKET node): a veth takes a redirected frame
/// only when its peer runs NAPI, which an attached XDP program turns on.
/// Each such interface gets the lab's XDP program with no socket and no
/// capture — every frame passes to its kernel untouched (counted
/// "no socket"). Not GRO, which also turns NAPI on: it would merge the
/// host's TCP segments before its captures see them.
enum FastPathPeers {
    /// Attaches the programs; they stay attached while the returned
    /// programs are open (the daemon's lifetime).
    static func attach(topology: ResolvedTopology, runtimes: [NodeRuntime], lab: String) throws -> [XDPProgram] {
        var byNamespace: [String: [String]] = [:]
        for runtime in runtimes where runtime.fastPath != nil {
            for iface in runtime.node.interfaces {
                guard let peer = iface.peer, let node = topology.node(named: peer.node),
                      !(node.isUserspace && node.datapath == .afxdp) else { continue }
                byNamespace[LabStore.namespaceName(lab: lab, node: peer.node), default: []].append(peer.interface)
            }
        }
        var programs: [XDPProgram] = []
        do {
            for (namespace, interfaces) in byNamespace.sorted(by: { $0.key < $1.key }) {
                var configuration = XDPProgram.Configuration()
                configuration.portSlots = interfaces.count
                configuration.captureRingBytes = XDPProgram.smallestCaptureRingBytes
                let program = try XDPProgram(configuration: configuration)
                programs.append(program)
                try NetworkNamespace.run(namespace) {
                    for name in interfaces {
                        let index = Int32(bitPattern: if_nametoindex(name))
                        guard index > 0 else { throw LabError("the fast path: no interface \(name) in \(namespace)") }
                        do {
                            try program.attach(interfaceIndex: index, name: name)
                        } catch let error as PortError where error.errno == EBUSY || error.errno == EEXIST {
                            // An XDP program of its own (a user's, a generator's)
                            // has NAPI on already: nothing to add.
                            LabDaemon.log("fast path: \(name) in \(namespace) has an XDP program of its own; left as it is")
                        }
                    }
                }
            }
        } catch {
            for program in programs { program.close() }
            throw error
        }
        return programs
    }
}
