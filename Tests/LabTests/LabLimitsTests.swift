import Foundation
@testable import Lab
import LinuxNet
import Testing
import Topology

/// What `up` knows before it builds anything (LabLimits): the data plane's
/// limits per node and the lab's descriptors and memory against a machine
/// given here. No root needed.
struct LabLimitsTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A machine with room for anything the examples build.
    static let roomy = SystemResources(memoryAvailable: 64 << 30, openFilesSoft: 1 << 20, openFilesHard: 1 << 20,
                                       lockedMemoryLimit: 8 << 20, canLockMemory: true, pageSize: 4096)
    static let socket = "/run/wirelab/lab/control.sock"

    /// A switch with `ports` hosts, generated.
    static func star(_ lab: String, ports: Int, datapath: String = "afxdp", capture: Bool = false, mtu: Int? = nil) -> String {
        var nodes = "", links = ""
        for i in 0..<ports {
            nodes += "  h\(i): { kind: host, interfaces: { eth0: { ip: 10.\(i / 250).\(i % 250).1/8 } } }\n"
            links += mtu.map { "  - { ends: [ h\(i):eth0, sw:p\(i) ], mtu: \($0) }\n" } ?? "  - [ h\(i):eth0, sw:p\(i) ]\n"
        }
        return "name: \(lab)\ndefaults: { datapath: \(datapath), capture: \(capture) }\nnodes:\n  sw: { kind: switch }\n\(nodes)links:\n\(links)"
    }

    static func load(_ yaml: String) throws -> ResolvedTopology { try TopologyLoader.load(yaml: yaml, file: "gen.yaml") }

    @Test func everyExampleFitsARoomyMachine() throws {
        let dir = Self.repository.appendingPathComponent("Topologies")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 5)
        for file in files {
            let topology = try TopologyLoader.load(path: dir.appendingPathComponent(file).path)
            #expect(LabLimits.problems(topology, controlSocket: Self.socket, resources: Self.roomy) == [], "\(file)")
        }
    }

    /// The counts measured in /proc/<daemon>/fd (see LabLimits): one
    /// AF_XDP switch with 4 ports and no capture held 23 descriptors.
    @Test func descriptorsOfAMeasuredLab() throws {
        let r = LabLimits.requirements(for: try Self.load(Self.star("fd", ports: 4)))
        #expect(r.daemonDescriptorTotal == 23 + LabLimits.transientDescriptors, "\(r.daemonDescriptors)")
        // AF_PACKET, 4 ports, capture on: 26 measured (4 pcaps, 4 sidecars,
        // 8 libpcap sockets at the 4 host ends and the 4 AF_PACKET ends).
        let p = LabLimits.requirements(for: try Self.load(Self.star("fd", ports: 4, datapath: "afpacket", capture: true)))
        #expect(p.daemonDescriptorTotal == 26 + LabLimits.transientDescriptors, "\(p.daemonDescriptors)")
        #expect(p.upDescriptorTotal == LabLimits.upBaseDescriptors + 5 * 2)
    }

    @Test func aLabOfHostsWithoutCaptureStartsNoDaemon() throws {
        let yaml = """
            name: hosts
            nodes:
              a: { kind: host, interfaces: { eth0: { ip: 10.0.0.1/24 } } }
              b: { kind: host, interfaces: { eth0: { ip: 10.0.0.2/24 } } }
            links: [ [ a:eth0, b:eth0 ] ]
            """
        let r = LabLimits.requirements(for: try Self.load(yaml))
        #expect(r.daemonDescriptors.isEmpty && r.memory.isEmpty)
    }

    @Test func tooManyPortsOnAnAFXDPNode() throws {
        let topology = try Self.load(Self.star("big", ports: 1025))
        let problems = LabLimits.problems(topology, controlSocket: Self.socket, resources: Self.roomy)
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("gen.yaml:4:3: switch 'sw' has 1025 ports; an AF_XDP node takes at most 1024 (WL_MAX_PORTS") == true, "\(problems)")
        // AF_PACKET has no such limit; 1024 ports on AF_XDP are fine (the
        // old limit, 64, refused a 91-port core router of a 1000-node lab).
        #expect(LabLimits.problems(try Self.load(Self.star("big", ports: 1025, datapath: "afpacket")),
                                   controlSocket: Self.socket, resources: Self.roomy) == [])
        #expect(LabLimits.problems(try Self.load(Self.star("big", ports: 1024)), controlSocket: Self.socket, resources: Self.roomy) == [])
    }

    @Test func mtuAboveWhatVethTakesForNativeXDP() throws {
        #expect(XDPProgram.maxVethMTU(pageSize: 4096) == 3506)
        let ok = try Self.load(Self.star("mtu", ports: 2, mtu: 3506))
        #expect(LabLimits.problems(ok, controlSocket: Self.socket, resources: Self.roomy) == [])
        let big = try Self.load(Self.star("mtu", ports: 2, mtu: 3507))
        let problems = LabLimits.problems(big, controlSocket: Self.socket, resources: Self.roomy)
        #expect(problems.count == 2)
        #expect(problems.first?.hasPrefix("gen.yaml:8:5: link h0:eth0 ↔ sw:p0 has mtu 3507; veth takes native XDP for AF_XDP node 'sw' only up to mtu 3506") == true, "\(problems)")
        let packet = try Self.load(Self.star("mtu", ports: 2, datapath: "afpacket", mtu: 9000))
        #expect(LabLimits.problems(packet, controlSocket: Self.socket, resources: Self.roomy) == [])
    }

    @Test func tooManyPassRulesForHealthChecks() throws {
        var addresses = ["10.0.0.2/24"]
        for i in 0..<XDPProgram.maxPassRules { addresses.append("10.1.\(i / 200).\(i % 200 + 1)/32") }
        let yaml = """
            name: rules
            nodes:
              lvs:
                kind: director
                interfaces: { eth0: { ip: [ \(addresses.joined(separator: ", ")) ] } }
                services:
                  - { vip: 10.0.0.100, port: 80, reals: [ { ip: 10.0.0.1 } ], health: { tcp: {} } }
              rs: { kind: host, interfaces: { eth0: { ip: 10.0.0.1/24 } } }
            links: [ [ lvs:eth0, rs:eth0 ] ]
            """
        let problems = LabLimits.problems(try Self.load(yaml), controlSocket: Self.socket, resources: Self.roomy)
        #expect(problems.count == 1)
        #expect(problems.first?.contains("director 'lvs' needs 257 pass-to-kernel rules") == true, "\(problems)")
    }

    @Test func memoryBeyondWhatIsAvailable() throws {
        let topology = try Self.load(Self.star("mem", ports: 8, mtu: 3000))
        let r = LabLimits.requirements(for: topology)
        // 8 ports × 256 frames (the node's 2048 shared out) × 4096 bytes (MTU over 1700).
        #expect(r.umemBytes == 8 * 256 * 4096)
        var small = Self.roomy
        small.memoryAvailable = 4 << 20
        let problems = LabLimits.problems(topology, controlSocket: Self.socket, resources: small)
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("memory: the lab's data plane needs 8.2 MiB (UMEM of 8 AF_XDP ports 8.0 MiB") == true, "\(problems)")
        #expect(problems.first?.contains("MemAvailable in /proc/meminfo is 4.0 MiB") == true)
    }

    @Test func lockedMemoryCountsOnlyWithoutCapIPCLock() throws {
        let topology = try Self.load(Self.star("lock", ports: 20))   // 20 × 256 frames × 2 KiB of UMEM
        var machine = Self.roomy
        #expect(LabLimits.problems(topology, controlSocket: Self.socket, resources: machine) == [])
        machine.canLockMemory = false
        let problems = LabLimits.problems(topology, controlSocket: Self.socket, resources: machine)
        #expect(problems == ["locked memory: the AF_XDP UMEMs take 10.0 MiB, charged to the locked-memory limit without CAP_IPC_LOCK (net/xdp/xdp_umem.c); RLIMIT_MEMLOCK is 8.0 MiB; raise it with ulimit -l, or use datapath: afpacket"])
    }

    /// A port's UMEM follows its node's share of frames (see
    /// `NodeRuntime.xdpConfiguration`): 2-port nodes keep the 1024 frames
    /// `bench forward` was tuned with; wide nodes get 256 a port.
    @Test func portMemoryFollowsTheNodesShareOfFrames() throws {
        #expect([1, 2, 3, 4, 5, 8, 10, 91, 1024].map { NodeRuntime.portFrames(ports: $0) }
                == [1024, 1024, 512, 512, 256, 256, 256, 256, 256])
        for ports in [2, 4, 10] {
            let topology = try Self.load(Self.star("frames", ports: ports))
            let node = try #require(topology.node(named: "sw"))
            let c = NodeRuntime.xdpConfiguration(for: node)
            #expect(c.frameCount == NodeRuntime.portFrames(ports: ports) && c.frameSize == 2048)
            // What `up` counts is what the ports are given: frames × frame size each.
            #expect(LabLimits.requirements(for: topology).umemBytes == ports * c.frameCount * c.frameSize)
        }
    }

    /// Without capture nobody reads an XDP program's capture ring: it is
    /// the smallest the kernel takes, and `up` counts that.
    @Test func captureRingIsAPageWithoutCapture() throws {
        let off = try NodeRuntime.programConfiguration(ports: 3, capture: false)
        #expect(off.captureRingBytes == XDPProgram.smallestCaptureRingBytes && off.portSlots == 3)
        let on = try NodeRuntime.programConfiguration(ports: 3, capture: true)
        #expect(on.captureRingBytes == XDPProgram.Configuration().captureRingBytes && on.portSlots == 3)
        let memory = LabLimits.requirements(for: try Self.load(Self.star("ring", ports: 3))).memory
        #expect(memory.first { $0.what.hasPrefix("capture rings") }?.amount == XDPProgram.smallestCaptureRingBytes)
    }

    @Test func descriptorsBeyondTheOpenFileLimit() throws {
        let topology = try Self.load(Self.star("fds", ports: 30, capture: true))
        var machine = Self.roomy
        machine.openFilesSoft = 100
        machine.openFilesHard = 4096
        let problems = LabLimits.problems(topology, controlSocket: Self.socket, resources: machine)
        let need = LabLimits.requirements(for: topology).daemonDescriptorTotal
        #expect(need == 6 + 10 + 60 + 60 + 30 + 16)
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("file descriptors: the lab's daemon needs about \(need) (base 6, 1 AF_XDP node × 10 = 10, 30 AF_XDP ports × 2 = 60") == true, "\(problems)")
        #expect(problems.first?.contains("is 100; raise it with ulimit -n \(need) (hard limit 4096)") == true)
    }

    @Test func aControlSocketPathTooLongForSunPath() throws {
        let topology = try Self.load(Self.star("sock", ports: 2))
        let long = "/tmp/" + String(repeating: "d", count: 100) + "/sock/control.sock"
        let problems = LabLimits.problems(topology, controlSocket: long, resources: Self.roomy)
        #expect(problems == ["control socket \(long) is \(long.utf8.count) bytes; a Unix socket path takes at most 107 (sun_path[108]); use a shorter --state-dir"])
    }

    /// `up` refuses before anything exists: no state, no namespace.
    @Test func upRefusesAndCreatesNothing() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("wl-limits-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var deployer = LabDeployer(store: LabStore(root: root), executable: "/nonexistent/wirelab")
        deployer.resources = {
            var machine = Self.roomy
            machine.memoryAvailable = 1 << 20
            return machine
        }
        let topology = try Self.load(Self.star("wlrefuse", ports: 3))
        #expect {
            _ = try deployer.up(topology)
        } throws: { error in
            "\(error)".hasPrefix("lab wlrefuse does not fit this machine; nothing was created:\n  memory: ")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(root)/wlrefuse"))
        #expect(topology.nodes.allSatisfy { !NetworkNamespace.exists(LabStore.namespaceName(lab: "wlrefuse", node: $0.name)) })
    }

    /// The Swift constants are the BPF program's.
    @Test func limitsMatchTheXDPProgramSource() throws {
        let source = try String(contentsOf: Self.repository.appendingPathComponent("bpf/wirelab_xdp.bpf.c"), encoding: .utf8)
        func define(_ name: String) -> Int? {
            for line in source.split(separator: "\n") where line.hasPrefix("#define \(name) ") {
                return Int(line.split(separator: " ", omittingEmptySubsequences: true)[2])
            }
            return nil
        }
        #expect(define("WL_MAX_PORTS") == XDPProgram.maxPorts)
        #expect(define("WL_MAX_QUEUES") == XDPProgram.maxQueues)
        #expect(define("WL_PASS_RULES_MAX") == XDPProgram.maxPassRules)
    }

    @Test func machineResourcesAreRead() {
        #expect(SystemResources.memoryAvailable(inMeminfo: "MemTotal: 100 kB\nMemAvailable:   24092100 kB\n") == 24092100 * 1024)
        #expect(SystemResources.effectiveCapabilities(inStatus: "Name:\tx\nCapEff:\t000001ffffffffff\n") == 0x1ff_ffff_ffff)
        let here = SystemResources.current()
        #expect(here.pageSize >= 4096)
        #expect((here.memoryAvailable ?? 0) > 0)
        #expect((here.openFilesSoft ?? Int.max) > 0)
    }
}
