// The TUN real servers' IPIP decapsulation (bpf/wirelab_decap.bpf.c), driven
// with BPF_PROG_TEST_RUN: a table of input frame → expected output frame,
// byte for byte, and the program's counters.
import CXDP
import Foundation
import Glibc
@testable import LinuxNet
import Testing
import Wire

/// Runs the tc program once on `frame`; returns its verdict and the frame as it left.
func decapRun(_ program: TunnelDecapsulator, _ frame: [UInt8]) throws -> (verdict: Int32, output: [UInt8]) {
    var out = [UInt8](repeating: 0, count: frame.count + 256)
    var opts = bpf_test_run_opts()
    opts.sz = MemoryLayout<bpf_test_run_opts>.size
    opts.repeat = 1
    let rc = frame.withUnsafeBytes { input in
        out.withUnsafeMutableBytes { output in
            opts.data_in = input.baseAddress
            opts.data_size_in = UInt32(input.count)
            opts.data_out = output.baseAddress
            opts.data_size_out = UInt32(output.count)
            return bpf_prog_test_run_opts(program.programFD, &opts)
        }
    }
    if rc < 0 { throw PortError("BPF_PROG_TEST_RUN of wirelab_decap", errno: -rc) }
    return (Int32(bitPattern: opts.retval), Array(out.prefix(Int(opts.data_size_out))))
}

@Suite(.enabled(if: geteuid() == 0, "needs root to load BPF"))
struct TunnelDecapsulatorTests {
    static let host = IPv4Address(10, 0, 0, 1)
    static let vip = IPv4Address(10, 0, 0, 100)
    static let director = IPv4Address(10, 0, 0, 2)
    static let client = IPv4Address(203, 0, 113, 7)

    /// The client's packet as the director received it (without Ethernet).
    static let inner = Array(Frames.tcp(client, vip, port: 80).dropFirst(14))

    /// `inner` inside an outer IPv4 header (protocol 4) from `src` to `dst`.
    static func ipip(_ src: IPv4Address, _ dst: IPv4Address, inner: [UInt8] = inner, fragmentOffset: UInt16 = 0) -> [UInt8] {
        Frames.ipv4(src, dst, proto: 4, inner, fragmentOffset: fragmentOffset)
    }

    struct Case: CustomStringConvertible {
        var description: String
        var input: [UInt8]
        /// nil: the frame leaves untouched.
        var expected: [UInt8]?
    }

    static let cases: [Case] = [
        Case(description: "IPIP to the host with a VIP inside: the outer header goes",
             input: ipip(director, host), expected: Frames.ethernet(0x0800, inner)),
        Case(description: "IPIP to the host from someone not a director: untouched",
             input: ipip(client, host), expected: nil),
        Case(description: "IPIP to another address: untouched",
             input: ipip(director, IPv4Address(10, 0, 0, 3)), expected: nil),
        Case(description: "IPIP whose inner destination is not a VIP: untouched",
             input: ipip(director, host, inner: Array(Frames.tcp(client, IPv4Address(10, 0, 0, 99), port: 80).dropFirst(14))),
             expected: nil),
        Case(description: "an outer fragment: untouched (left to the kernel)",
             input: ipip(director, host, fragmentOffset: 0x2000), expected: nil),
        Case(description: "IPIP truncated inside: untouched",
             input: Array(ipip(director, host).prefix(14 + 20 + 10)), expected: nil),
        Case(description: "plain TCP to the VIP (DR-style): untouched",
             input: Frames.tcp(client, vip, port: 80), expected: nil),
        Case(description: "ARP: untouched",
             input: Frames.arpRequest(from: director, for: host), expected: nil),
    ]

    @Test func decapsulatesOnlyTunnelledPacketsForItsVIPs() throws {
        let program = try TunnelDecapsulator(hostAddresses: [Self.host], vips: [Self.vip], tunnelSources: [Self.director])
        defer { program.close() }
        for c in Self.cases {
            let (verdict, output) = try decapRun(program, c.input)
            #expect(verdict == 0, "\(c): TCX_PASS")
            #expect(output == (c.expected ?? c.input), "\(c)")
        }
        let s = program.statistics()
        #expect(s.decapsulated == 1 && s.notForThisHost == 1 && s.notAVIP == 1 && s.fragments == 1 && s.malformed == 1
                && s.notFromADirector == 1,
                "counters: \(s)")
    }

    @Test func committedObjectIsBuiltFromTheCSource() throws {
        // scripts/build-bpf.sh --check (XDPProgramTests) compares every
        // program's bytes; this names the decapsulation's source hash alone.
        #expect(Array(WirelabDecapObject.bytes.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46])
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("bpf/wirelab_decap.bpf.c").path
        let r = try run(["sha256sum", source])
        #expect(r.output.split(separator: " ").first.map(String.init) == WirelabDecapObject.sourceSHA256,
                "stale: run scripts/build-bpf.sh")
    }
}
