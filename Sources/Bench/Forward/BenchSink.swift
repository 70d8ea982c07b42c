// The sink of `wirelab bench forward` and interface counters.
import Lab
import CLinuxShim
import CXDP
import Foundation
import Glibc
import LinuxNet
import Synchronization
import Wire

// MARK: - sink

/// The sink: `wl_sink` (bpf/wirelab_bench.bpf.c) on the sink's interface (tcx ingress,
/// a BPF link: closing it detaches the program, also if we crash), and
/// the interface's rx_packets.
final class SinkTap: @unchecked Sendable {
    let namespace: String
    let interface: String
    private var program: BenchProgram?
    private var linkFD: Int32 = -1
    private let counters: InterfaceCounters

    init(namespace: String, interface: String) throws {
        self.namespace = namespace
        self.interface = interface
        counters = try InterfaceCounters(namespace: namespace, interface: interface)
        do {
            let program = try BenchProgram.sink()
            self.program = program
            try NetworkNamespace.run(namespace) {
                let ifindex = Int32(bitPattern: if_nametoindex(interface))
                guard ifindex > 0 else { throw LabError("no interface \(interface) in \(namespace)") }
                var opts = bpf_link_create_opts()
                opts.sz = MemoryLayout<bpf_link_create_opts>.size
                let link = bpf_link_create(program.fd, ifindex, BenchProgram.tcxIngress, &opts)
                guard link >= 0 else {
                    throw LabError("attaching the sink's tcx program to \(interface) in \(namespace) (bpf_link_create): \(String(cString: strerror(-link)))")
                }
                linkFD = link
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// rx_packets of the interface.
    func receivedFrames() throws -> UInt64 { try counters.read().rxPackets }

    /// Detaches the program (closing the link) and closes everything. Idempotent.
    func close() {
        if linkFD >= 0 { Glibc.close(linkFD); linkFD = -1 }
        program?.close()
        program = nil
        counters.close()
    }
}

/// One interface's counters from /proc/net/dev of its namespace: the file
/// is opened by a thread inside the namespace and shows that namespace's
/// interfaces for as long as it is open, so reading it costs no thread.
final class InterfaceCounters: @unchecked Sendable {
    struct Values {
        var rxPackets: UInt64
        var rxDropped: UInt64
        var txPackets: UInt64
        var txDropped: UInt64
        /// What a sender handed to this veth: frames its peer took plus frames its peer's full queue refused.
        var offered: UInt64 { txPackets &+ txDropped }
    }

    let namespace: String
    let interface: String
    private var fd: Int32 = -1

    init(namespace: String, interface: String) throws {
        self.namespace = namespace
        self.interface = interface
        fd = try NetworkNamespace.run(namespace) { () throws -> Int32 in
            let fd = open("/proc/thread-self/net/dev", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw LabError("opening /proc/net/dev in \(namespace): \(String(cString: strerror(errno)))") }
            return fd
        }
        do { _ = try read() } catch { close(); throw error }
    }

    deinit { close() }

    func read() throws -> Values {
        var buffer = [UInt8](repeating: 0, count: 16384)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw LabError("reading /proc/net/dev of \(namespace): \(String(cString: strerror(errno)))") }
        for line in String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == interface else { continue }
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop …
            let f = parts[1].split(separator: " ").map { UInt64($0) ?? 0 }
            guard f.count >= 12 else { break }
            return Values(rxPackets: f[1], rxDropped: f[3], txPackets: f[9], txDropped: f[11])
        }
        throw LabError("no \(interface) in /proc/net/dev of \(namespace)")
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}
