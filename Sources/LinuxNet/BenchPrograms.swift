// The programs of `wirelab bench forward` (bpf/wirelab_bench.bpf.c): the
// live-frames generator, the in-kernel redirect ceiling and the sink.
import CXDP
import Glibc

/// One loaded program of `bpf/wirelab_bench.bpf.c`; its fd is valid until
/// `close()` (or deinit), which closes the object holding it.
public final class BenchProgram: @unchecked Sendable {   // @unchecked: a libbpf object, used by one thread at a time
    public let fd: Int32
    private var object: OpaquePointer?

    init(object: OpaquePointer, fd: Int32) {
        self.object = object
        self.fd = fd
    }

    deinit { close() }

    public func close() {
        if let object { bpf_object__close(object) }
        object = nil
    }

    /// BPF_TCX_INGRESS (kernel 6.6; newer than the installed headers).
    public static let tcxIngress = bpf_attach_type(rawValue: 46)

    /// `wl_gen`: writes HEADER (the template's Ethernet + IPv4 header, 34
    /// bytes) over each frame, rotates the UDP source port as
    /// base | ((port + 1) & mask), returns XDP_TX. BASE must have no bit of MASK.
    public static func generator(header: [UInt8], portBase: UInt16, portMask: UInt16) throws -> BenchProgram {
        precondition(header.count == 34, "Ethernet + IPv4 header without options")
        precondition(portBase & portMask == 0, "the base has a bit of the mask")
        return try load("wl_gen", kind: "XDP") { obj in
            // .rodata is `struct gen_config` alone (see the C source), written before load.
            guard let rodata = bpf_object__find_map_by_name(obj, ".rodata") else {
                throw PortError("finding .rodata of wirelab_bench", errno: ENOENT)
            }
            var size = 0
            // Before load the initial value is libbpf's writable copy (what a skeleton writes through).
            guard let value = bpf_map__initial_value(rodata, &size), size >= 38 else {
                throw PortError("wirelab_bench's .rodata is \(size) bytes, not the 38+ of struct gen_config", errno: EINVAL)
            }
            let config = UnsafeMutableRawPointer(mutating: value)
            header.withUnsafeBytes { config.copyMemory(from: $0.baseAddress!, byteCount: 34) }
            config.storeBytes(of: portBase, toByteOffset: 34, as: UInt16.self)
            config.storeBytes(of: portMask, toByteOffset: 36, as: UInt16.self)
        }
    }

    /// `wl_redirect`: writes DESTINATION and SOURCE into each frame's
    /// Ethernet header and redirects it out of interface INTERFACEINDEX.
    public static func redirect(destination: [UInt8], source: [UInt8], interfaceIndex: UInt32) throws -> BenchProgram {
        precondition(destination.count == 6 && source.count == 6, "MAC addresses are 6 bytes")
        return try load("wl_redirect", kind: "XDP") { obj in
            // .rodata.redirect is `struct redirect_config` alone (see the C source).
            guard let section = bpf_object__find_map_by_name(obj, ".rodata.redirect") else {
                throw PortError("finding .rodata.redirect of wirelab_bench", errno: ENOENT)
            }
            var size = 0
            guard let value = bpf_map__initial_value(section, &size), size >= 16 else {
                throw PortError("wirelab_bench's .rodata.redirect is \(size) bytes, not the 16 of struct redirect_config", errno: EINVAL)
            }
            let config = UnsafeMutableRawPointer(mutating: value)
            (destination + source).withUnsafeBytes { config.copyMemory(from: $0.baseAddress!, byteCount: 12) }
            config.storeBytes(of: interfaceIndex, toByteOffset: 12, as: UInt32.self)
        }
    }

    /// `wl_sink`: a tc program for a tcx ingress link that drops all but ARP.
    public static func sink() throws -> BenchProgram {
        try load("wl_sink", kind: "tc") { obj in
            guard let prog = bpf_object__find_program_by_name(obj, "wl_sink") else {
                throw PortError("finding program wl_sink", errno: ENOENT)
            }
            _ = bpf_program__set_expected_attach_type(prog, tcxIngress)
        }
    }

    /// Loads the object with only program NAME to be loaded.
    private static func load(_ name: String, kind: String, prepare: (OpaquePointer) throws -> Void) throws -> BenchProgram {
        let obj = try EmbeddedBPFObject.load(name: "wirelab_bench", bytes: WirelabBenchObject.bytes, kind: kind) { obj in
            var prog = bpf_object__next_program(obj, nil)
            while let p = prog {
                _ = bpf_program__set_autoload(p, String(cString: bpf_program__name(p)) == name)
                prog = bpf_object__next_program(obj, p)
            }
            try prepare(obj)
        }
        guard let prog = bpf_object__find_program_by_name(obj, name) else {
            bpf_object__close(obj)
            throw PortError("finding program \(name) in wirelab_bench", errno: ENOENT)
        }
        return BenchProgram(object: obj, fd: bpf_program__fd(prog))
    }
}
