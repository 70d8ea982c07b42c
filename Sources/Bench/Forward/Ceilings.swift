// The two ceilings of `wirelab bench forward`'s path, measured in place of
// our daemon (rows `xdp-redirect` and `afxdp-c`): what the kernel moves
// without leaving XDP, and what any userspace forwarder can move through
// copy-mode AF_XDP sockets on veth.
import Lab
import CXDP
import Foundation
import Glibc
import LinuxNet
import Wire

/// `wl_redirect` (bpf/wirelab_bench.bpf.c) on the ingress veth, attached by
/// a BPF link (closing it detaches the program, also if we crash).
final class RedirectCeiling {
    private var program: BenchProgram?
    private var linkFD: Int32 = -1

    init(namespace: String, ingress: String, egress: String, destination: MACAddress, source: MACAddress) throws {
        do {
            try NetworkNamespace.run(namespace) {
                let inIndex = Int32(bitPattern: if_nametoindex(ingress)), outIndex = if_nametoindex(egress)
                guard inIndex > 0, outIndex > 0 else { throw LabError("no interface \(ingress) or \(egress) in \(namespace)") }
                let program = try BenchProgram.redirect(destination: (0..<6).map { destination[$0] }, source: (0..<6).map { source[$0] },
                                                        interfaceIndex: outIndex)
                self.program = program
                var opts = bpf_link_create_opts()
                opts.sz = MemoryLayout<bpf_link_create_opts>.size
                let link = bpf_link_create(program.fd, inIndex, BPF_XDP, &opts)
                guard link >= 0 else {
                    throw LabError("attaching wl_redirect to \(ingress) in \(namespace) (bpf_link_create, XDP): \(String(cString: strerror(-link)))")
                }
                linkFD = link
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Detaches the program. Idempotent.
    func close() {
        if linkFD >= 0 { Glibc.close(linkFD); linkFD = -1 }
        program?.close()
        program = nil
    }
}

/// The minimal C AF_XDP forwarder (Benchmarks/CAFXDPForwarder, embedded as
/// `AFXDPForwarderSource`), compiled into DIRECTORY and run in the
/// forwarder's namespace until `stop()`.
final class CForwarderCeiling {
    let pid: pid_t
    private let process: NamespaceProcess
    private let log: String

    init(directory: String, namespace: String, ingress: String, egress: String,
         destination: MACAddress, source: MACAddress) throws {
        let binary = try Self.build(directory: directory)
        log = directory + "/afxdp-forwarder.log"
        process = try NamespaceProcess.spawn([binary, ingress, egress, "\(destination)", "\(source)"], namespace: namespace,
                                             standardOutput: .file(log), standardError: .file(log))
        pid = process.pid
        // Up once its sockets are bound (libxdp's program is on the ingress).
        usleep(300_000)
        if let status = try process.poll() {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw LabError("the C AF_XDP forwarder exited (\(status)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// SIGTERM, then waits for it to remove its sockets (and libxdp's
    /// program); returns its last line (its counters, or why it stopped).
    @discardableResult
    func stop() -> String {
        try? process.signal(SIGTERM)
        var ended = false
        for _ in 0..<100 {
            if (try? process.poll()) != nil { ended = true; break }
            usleep(20_000)
        }
        if !ended {
            try? process.signal(SIGKILL)
            _ = try? process.wait()
        }
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        return String(lines.last { $0.hasPrefix("received=") } ?? lines.last ?? "no output")
    }

    /// Compiles the embedded source once per directory (a benchmark run's
    /// work directory); returns the binary.
    static func build(directory: String) throws -> String {
        let binary = directory + "/afxdp-forwarder"
        if FileManager.default.isExecutableFile(atPath: binary) { return binary }
        let source = directory + "/afxdp_forwarder.c"
        try AFXDPForwarderSource.text.write(toFile: source, atomically: true, encoding: .utf8)
        guard let compiler = ["cc", "gcc", "clang"].lazy.compactMap(MallocCounter.which).first else {
            throw LabError("no C compiler (cc, gcc, clang) on PATH to build \(AFXDPForwarderSource.path)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: compiler)
        process.arguments = ["-O2", "-o", binary, source, "-lxdp", "-lbpf"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LabError("\(compiler) \(AFXDPForwarderSource.path) failed (libxdp-dev and libbpf-dev: scripts/install-deps.sh): \(String(decoding: message, as: UTF8.self))")
        }
        return binary
    }
}
