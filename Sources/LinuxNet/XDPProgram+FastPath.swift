// The fast path's maps of the lab's XDP program (bpf/wirelab_xdp.bpf.c,
// "fast path"): its switch and generation, the egress interfaces by port
// slot, and the flows' entries. What goes into an entry is worked out in
// Sources/Datapath/FastPath.swift; this file only moves bytes.
import CXDP
import Glibc

/// One flow's counters as the program keeps them (no clock: a reader
/// takes a change of `packets` for "frames were seen").
public struct FastPathFlowCounters: Sendable, Equatable {
    public var packets: UInt64
    public var bytes: UInt64
}

/// The file descriptors of the fast path's maps, looked up once (a
/// runtime installs entries one flow at a time; the lookup by name is not
/// free). Valid while the program is open.
public struct FastPathMaps: Sendable {
    let flows: Int32
    let config: Int32
    let txPorts: Int32

    /// Turns the fast path on or off and sets the generation entries must
    /// carry to apply (a new generation retires every older entry at once).
    public func setFastPath(enabled: Bool, generation: UInt32) throws {
        var key = UInt32(0)
        var value: (UInt32, UInt32) = (enabled ? 1 : 0, generation)   // struct wl_fast_config
        let rc = bpf_map_update_elem(config, &key, &value, UInt64(BPF_ANY))
        if rc < 0 { throw PortError("writing the fast path's configuration", errno: -rc) }
    }

    /// Where the fast path sends frames of egress port SLOT: the interface
    /// INTERFACEINDEX (a devmap entry; the interface must be in the
    /// namespace the calling thread is in).
    public func setEgress(slot: UInt32, interfaceIndex: Int32) throws {
        var key = slot
        var value = UInt32(bitPattern: interfaceIndex)
        let rc = bpf_map_update_elem(txPorts, &key, &value, UInt64(BPF_ANY))
        if rc < 0 { throw PortError("setting the fast path's egress for slot \(slot)", errno: -rc) }
    }

    /// Writes one flow's entry (KEY, ACTION: the C structs' bytes).
    public func install(key: [UInt8], action: [UInt8]) throws {
        precondition(key.count == XDPProgram.fastPathKeySize && action.count == XDPProgram.fastPathActionSize)
        var k = key, v = action
        let rc = bpf_map_update_elem(flows, &k, &v, UInt64(BPF_ANY))
        if rc < 0 { throw PortError("installing a fast path flow", errno: -rc) }
    }

    /// Removes one flow's entry (no error if absent).
    public func remove(key: [UInt8]) throws {
        var k = key
        let rc = bpf_map_delete_elem(flows, &k)
        if rc < 0 && -rc != ENOENT { throw PortError("removing a fast path flow", errno: -rc) }
    }

    /// The counters of one flow's entry; nil if there is none.
    public func counters(key: [UInt8]) -> FastPathFlowCounters? {
        var k = key
        var v = [UInt8](repeating: 0, count: XDPProgram.fastPathActionSize)
        guard bpf_map_lookup_elem(flows, &k, &v) == 0 else { return nil }
        func u64(_ at: Int) -> UInt64 { v.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) } }
        return FastPathFlowCounters(packets: u64(40), bytes: u64(48))
    }
}

extension XDPProgram {
    /// Bytes of `struct wl_flow_key` and `struct wl_flow_action`.
    public static let fastPathKeySize = 28
    public static let fastPathActionSize = 64
    /// Entries the program's table holds (WL_FAST_FLOWS_MAX).
    public static let fastPathCapacity = 65536

    private func fastMap(_ name: String) throws -> Int32 {
        guard let object = objectForMaps else { throw PortError("fast path", detail: "the XDP program is closed") }
        let fd = bpf_object__find_map_fd_by_name(object, name)
        if fd < 0 { throw PortError("finding map \(name) in wirelab_xdp", errno: -fd) }
        return fd
    }

    /// The fast path's maps of this program.
    public func fastPathMaps() throws -> FastPathMaps {
        FastPathMaps(flows: try fastMap("fast_flows"), config: try fastMap("fast_config"), txPorts: try fastMap("tx_ports"))
    }

    // One-off forms of `FastPathMaps`' calls (tests, tools): each looks the
    // maps up by name; a runtime keeps `fastPathMaps()` instead.

    public func setFastPath(enabled: Bool, generation: UInt32) throws {
        try fastPathMaps().setFastPath(enabled: enabled, generation: generation)
    }

    public func setFastPathEgress(slot: UInt32, interfaceIndex: Int32) throws {
        try fastPathMaps().setEgress(slot: slot, interfaceIndex: interfaceIndex)
    }

    public func installFastPathFlow(key: [UInt8], action: [UInt8]) throws {
        try fastPathMaps().install(key: key, action: action)
    }

    public func removeFastPathFlow(key: [UInt8]) throws {
        try fastPathMaps().remove(key: key)
    }

    public func fastPathFlowCounters(key: [UInt8]) -> FastPathFlowCounters? {
        (try? fastPathMaps())?.counters(key: key)
    }

    /// Frames the fast path rewrote and redirected, and frames whose entry
    /// was of an older generation (summed over CPUs).
    public func fastPathStatistics() -> (forwarded: UInt64, stale: UInt64) {
        (statisticSum(7), statisticSum(8))
    }

    /// Runs the program once on FRAME as received on interface
    /// INTERFACEINDEX (BPF_PROG_TEST_RUN, no live frames: nothing is sent
    /// or redirected, the program's maps are updated as for a real frame);
    /// returns its verdict (XDP_*) and the frame as it left the program.
    public func testRun(_ frame: [UInt8], interfaceIndex: Int32) throws -> (action: UInt32, frame: [UInt8]) {
        var input = frame
        var output = [UInt8](repeating: 0, count: frame.count + 256)
        var context = xdp_md()
        context.data_end = UInt32(frame.count)
        context.ingress_ifindex = UInt32(bitPattern: interfaceIndex)
        var opts = bpf_test_run_opts()
        opts.sz = MemoryLayout<bpf_test_run_opts>.size
        let rc = input.withUnsafeMutableBytes { inBytes in
            output.withUnsafeMutableBytes { outBytes in
                withUnsafeMutablePointer(to: &context) { ctx in
                    opts.data_in = UnsafeRawPointer(inBytes.baseAddress!)
                    opts.data_size_in = UInt32(inBytes.count)
                    opts.data_out = outBytes.baseAddress!
                    opts.data_size_out = UInt32(outBytes.count)
                    opts.ctx_in = UnsafeRawPointer(ctx)
                    opts.ctx_size_in = UInt32(MemoryLayout<xdp_md>.size)
                    opts.repeat = 1
                    return bpf_prog_test_run_opts(programFD, &opts)
                }
            }
        }
        if rc < 0 { throw PortError("running the XDP program on a test frame (BPF_PROG_TEST_RUN)", errno: -rc) }
        return (opts.retval, Array(output.prefix(Int(opts.data_size_out))))
    }
}
