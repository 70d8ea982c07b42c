import CXDP
import Glibc

/// Opens and loads one of the lab's own BPF objects (compiled into the
/// binary by scripts/build-bpf.sh), keeping the verifier's log for the error.
/// `prepare` runs between open and load (map sizes, attach types). On any
/// failure the object is closed; on success the caller owns it.
enum EmbeddedBPFObject {
    static func load(name: String, bytes: [UInt8], kind: String,
                     prepare: (OpaquePointer) throws -> Void = { _ in }) throws -> OpaquePointer {
        let logSize = 1 << 20
        let log = UnsafeMutablePointer<CChar>.allocate(capacity: logSize)
        log.initialize(repeating: 0, count: logSize)
        defer { log.deallocate() }
        var opts = bpf_object_open_opts()
        opts.sz = MemoryLayout<bpf_object_open_opts>.size
        opts.kernel_log_buf = log
        opts.kernel_log_size = logSize
        let obj: OpaquePointer? = name.withCString { cname in
            opts.object_name = cname
            return bytes.withUnsafeBytes { bpf_object__open_mem($0.baseAddress, $0.count, &opts) }
        }
        guard let obj else { throw PortError("opening BPF object \(name) (bpf_object__open_mem)", errno: Glibc.errno) }
        do { try prepare(obj) } catch {
            bpf_object__close(obj)
            throw error
        }
        let loaded = bpf_object__load(obj)
        if loaded < 0 {
            let tail = String(cString: log).split(separator: "\n").suffix(12).joined(separator: "\n")
            bpf_object__close(obj)
            throw PortError("loading \(kind) program \(name) (bpf_object__load)", errno: -loaded,
                            detail: tail.isEmpty ? "" : "verifier log tail:\n\(tail)")
        }
        return obj
    }
}
