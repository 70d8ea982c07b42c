// TunnelDecapsulator — the lab's IPIP decapsulation for TUN real servers
// (bpf/wirelab_decap.bpf.c), loaded once per host and attached at tc ingress
// (tcx) of the host's interfaces.
import CXDP
import Glibc
import Foundation
import Wire

/// Counters of the decapsulation program, summed over CPUs.
public struct TunnelDecapsulatorStatistics: Sendable, Equatable, CustomStringConvertible {
    /// IPIP packets whose outer header was removed.
    public var decapsulated: UInt64 = 0
    /// IPIP packets to an address that is not one of the host's.
    public var notForThisHost: UInt64 = 0
    /// IPIP packets whose inner destination is not one of the VIPs.
    public var notAVIP: UInt64 = 0
    /// IPIP packets with a truncated or inconsistent outer or inner header.
    public var malformed: UInt64 = 0
    /// Outer fragments (left to the kernel, which drops them).
    public var fragments: UInt64 = 0
    /// bpf_skb_adjust_room failures.
    public var errors: UInt64 = 0
    /// IPIP packets whose outer source is not one of the directors' addresses.
    public var notFromADirector: UInt64 = 0

    public var description: String {
        "decapsulated \(decapsulated) not-for-host \(notForThisHost) not-a-vip \(notAVIP) "
            + "malformed \(malformed) fragments \(fragments) errors \(errors) not-from-a-director \(notFromADirector)"
    }
}

/// IPIP decapsulation at tc ingress: strips the outer IPv4 header of a
/// protocol-4 packet from one of `tunnelSources` (the directors' addresses)
/// addressed to one of `hostAddresses` whose inner destination is one of
/// `vips`, so the kernel delivers the inner packet to
/// the VIP (on lo) as if it had arrived unencapsulated. Everything else
/// passes untouched.
///
/// tc ingress rather than XDP: packet taps run after XDP and before tc
/// ingress, so a capture on the host's interface shows the tunnelled packet
/// as it crossed the wire. Each attachment is a tcx BPF link (an fd):
/// closing it (or the process ending) detaches the program from exactly that
/// interface, so a crashed owner leaves nothing behind.
public final class TunnelDecapsulator: @unchecked Sendable {
    /// BPF_TCX_INGRESS (kernel 6.6; newer than the installed headers).
    static let tcxIngress = bpf_attach_type(rawValue: 46)

    public let programFD: Int32
    let hostsFD: Int32
    let vipsFD: Int32
    let sourcesFD: Int32
    let statsFD: Int32
    private var object: OpaquePointer?
    private let lock = NSLock()
    /// ifindex → link fd.
    private var links: [Int32: Int32] = [:]

    /// Loads the program and fills its address maps.
    public init(hostAddresses: [IPv4Address], vips: [IPv4Address], tunnelSources: [IPv4Address]) throws {
        let obj = try EmbeddedBPFObject.load(name: "wirelab_decap", bytes: WirelabDecapObject.bytes, kind: "tc") { obj in
            guard let prog = bpf_object__find_program_by_name(obj, "wirelab_decap") else {
                throw PortError("finding program wirelab_decap", errno: ENOENT)
            }
            _ = bpf_program__set_expected_attach_type(prog, Self.tcxIngress)
        }
        func fail(_ op: String, _ err: Int32, detail: String = "") -> PortError {
            bpf_object__close(obj)
            return PortError(op, errno: err, detail: detail)
        }
        guard let prog = bpf_object__find_program_by_name(obj, "wirelab_decap") else {
            throw fail("finding program wirelab_decap", ENOENT)
        }
        func mapFD(_ name: String) throws -> Int32 {
            let fd = bpf_object__find_map_fd_by_name(obj, name)
            if fd < 0 { throw fail("finding map \(name) in wirelab_decap", -fd) }
            return fd
        }
        programFD = bpf_program__fd(prog)
        hostsFD = try mapFD("hosts")
        vipsFD = try mapFD("vips")
        sourcesFD = try mapFD("sources")
        statsFD = try mapFD("stats")
        object = obj
        do {
            for a in hostAddresses { try Self.put(a, into: hostsFD, "host address") }
            for v in vips { try Self.put(v, into: vipsFD, "VIP") }
            for s in tunnelSources { try Self.put(s, into: sourcesFD, "tunnel source") }
        } catch {
            bpf_object__close(obj)
            object = nil
            throw error
        }
    }

    deinit { close() }

    static func put(_ address: IPv4Address, into fd: Int32, _ what: String) throws {
        // Keys are the address as it sits in the packet (network order).
        var key = address.rawValue.bigEndian
        var one = UInt32(1)
        let rc = bpf_map_update_elem(fd, &key, &one, UInt64(BPF_ANY))
        if rc < 0 { throw PortError("adding \(what) \(address) to the decapsulation map", errno: -rc) }
    }

    /// Attaches at tc ingress of interface `name` (a tcx link). Must run on
    /// a thread inside the interface's namespace.
    public func attach(interface name: String) throws {
        let ifindex = Int32(bitPattern: if_nametoindex(name))
        guard ifindex > 0 else { throw PortError("attaching IPIP decapsulation", interface: name, errno: ENODEV) }
        lock.lock(); defer { lock.unlock() }
        if links[ifindex] != nil { return }
        var opts = bpf_link_create_opts()
        opts.sz = MemoryLayout<bpf_link_create_opts>.size
        let link = bpf_link_create(programFD, ifindex, Self.tcxIngress, &opts)
        guard link >= 0 else {
            throw PortError("attaching IPIP decapsulation at tc ingress (bpf_link_create, tcx)", interface: name, errno: -link)
        }
        links[ifindex] = link
    }

    /// Interfaces (by index) the program is attached to.
    public var attachedInterfaceCount: Int { lock.lock(); defer { lock.unlock() }; return links.count }

    /// Detaches from every interface and releases the program. Idempotent.
    public func close() {
        lock.lock(); defer { lock.unlock() }
        for link in links.values { Glibc.close(link) }
        links.removeAll()
        if let object { bpf_object__close(object) }
        object = nil
    }

    /// The program's counters, summed over CPUs.
    public func statistics() -> TunnelDecapsulatorStatistics {
        let cpus = max(Int(libbpf_num_possible_cpus()), 1)
        var values = [UInt64](repeating: 0, count: cpus)
        func sum(_ index: UInt32) -> UInt64 {
            var key = index
            guard bpf_map_lookup_elem(statsFD, &key, &values) == 0 else { return 0 }
            return values.reduce(0, &+)
        }
        return TunnelDecapsulatorStatistics(decapsulated: sum(0), notForThisHost: sum(1), notAVIP: sum(2),
                                            malformed: sum(3), fragments: sum(4), errors: sum(5),
                                            notFromADirector: sum(6))
    }
}
