import Foundation
@testable import Lab
import LinuxNet
import Testing
import Topology

/// Limits and privileges on a real machine: `up` refuses a generated lab
/// that does not fit (memory, open files) and creates nothing; a running
/// daemon holds no more descriptors than `up` counted; its control socket
/// is root's alone; `exec --shell` runs one command line.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct InputLimitsLiveTests {
    func assertNothingCreated(_ lab: String) {
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty, "namespaces of \(lab) were created")
        #expect(!FileManager.default.fileExists(atPath: "/run/wirelab/\(lab)"), "state of \(lab) was created")
    }

    /// Pairs of AF_XDP routers joined by 64 links each (MTU 3000, so 4 KiB
    /// frames: `portUMEM` bytes of UMEM per port), `ports` ports in all.
    static func routerPairs(_ lab: String, ports: Int) -> String {
        var out = "name: \(lab)\ndefaults: { datapath: afxdp, capture: false }\nnodes:\n", links = "links:\n"
        for p in 0..<((ports + 127) / 128) {
            for side in ["a", "b"] {
                out += "  r\(p)\(side):\n    kind: router\n    interfaces:\n"
                for i in 0..<64 { out += "      e\(i): { ip: 10.\(p).\(i).\(side == "a" ? 1 : 2)/24 }\n" }
            }
            for i in 0..<64 { links += "  - { ends: [ r\(p)a:e\(i), r\(p)b:e\(i) ], mtu: 3000 }\n" }
        }
        return out + links
    }

    /// UMEM of a port of a 64-port node with 4 KiB frames (NodeRuntime.xdpConfiguration).
    static let portUMEM = NodeRuntime.portFrames(ports: 64) * 4096

    @Test func upRefusesALabBiggerThanTheFreeMemory() throws {
        guard let available = SystemResources.current().memoryAvailable else {
            Issue.record("no MemAvailable in /proc/meminfo")
            return
        }
        let ports = available / Self.portUMEM + 128
        guard ports <= 40_000 else { return }   // a machine too big for a file of sensible size
        let lab = Harness.lab("wlilm")
        let file = try Harness.topologyFile(Self.routerPairs(lab, ports: ports))
        defer { _ = try? Harness.wl("down", lab) }
        let up = try Harness.wl("up", file, timeout: 300)
        #expect(up.status == 1, "\(up.combined.prefix(2000))")
        #expect(up.stderr.contains("wirelab up: lab \(lab) does not fit this machine; nothing was created:"), "\(up.stderr.prefix(2000))")
        #expect(up.stderr.contains("memory: the lab's data plane needs"), "\(up.stderr.prefix(2000))")
        #expect(up.stderr.contains("MemAvailable in /proc/meminfo is"))
        assertNothingCreated(lab)
    }

    @Test func upRefusesALabBeyondTheOpenFileLimit() throws {
        let lab = Harness.lab("wlilf")
        let file = try Harness.topologyFile(LabLimitsTests.star(lab, ports: 12, capture: true))
        defer { _ = try? Harness.wl("down", lab) }
        // The limit applies to `up` and everything it starts; sh sets it for the one command.
        let up = try Harness.run("/bin/sh", ["-c", "ulimit -n 48 && exec \"$0\" up \"$1\"", Harness.wirelab, file])
        #expect(up.status == 1, "\(up.combined)")
        #expect(up.stderr.contains("does not fit this machine; nothing was created"), "\(up.stderr)")
        #expect(up.stderr.contains("file descriptors: the lab's daemon needs about"), "\(up.stderr)")
        #expect(up.stderr.contains("the open-file limit (RLIMIT_NOFILE, which it inherits from wirelab) is 48"), "\(up.stderr)")
        assertNothingCreated(lab)
    }

    /// One lab: an AF_XDP switch, an AF_PACKET router, kernel hosts, capture on.
    static func mixed(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { capture: true }
        nodes:
          sw: { kind: switch, datapath: afxdp }
          gw: { kind: router, datapath: afpacket, interfaces: { eth0: { ip: 10.81.0.254/24 }, eth1: { ip: 10.81.1.254/24 } } }
          h1: { kind: host, interfaces: { eth0: { ip: 10.81.0.1/24 } }, routes: [ "default via 10.81.0.254" ] }
          h2: { kind: host, interfaces: { eth0: { ip: 10.81.0.2/24 } }, routes: [ "default via 10.81.0.254" ] }
          h3: { kind: host, interfaces: { eth0: { ip: 10.81.1.3/24 } }, routes: [ "default via 10.81.1.254" ] }
        links:
          - [ h1:eth0, sw:p1 ]
          - [ h2:eth0, sw:p2 ]
          - [ gw:eth0, sw:p3 ]
          - [ gw:eth1, h3:eth0 ]
        """
    }

    @Test func aRunningLabKeepsItsEstimatesAndItsSocketToRoot() throws {
        let lab = Harness.lab("wlilr")
        let yaml = Self.mixed(lab)
        let file = try Harness.topologyFile(yaml)
        let scratch = (file as NSString).deletingLastPathComponent
        defer { _ = try? Harness.wl("down", lab) }
        let up = try Harness.run(Harness.wirelab, ["up", file], timeout: 120, directory: scratch)
        #expect(up.status == 0, "\(up.combined)")
        guard up.status == 0 else { return }

        // Descriptors: the daemon's, counted now, within what up estimated.
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "/run/wirelab/\(lab)/state.json"))) as? [String: Any]
        let daemon = (state?["processes"] as? [[String: Any]] ?? []).first { $0["role"] as? String == "daemon" }
        let pid = try #require(daemon?["pid"] as? Int)
        let held = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        let estimate = LabLimits.requirements(for: try TopologyLoader.load(yaml: yaml, file: "t.yaml")).daemonDescriptorTotal
        #expect(held <= estimate, "the daemon holds \(held) descriptors, more than the \(estimate) estimated")
        #expect(estimate - held <= LabLimits.transientDescriptors + 4, "the estimate \(estimate) is far above the \(held) held")

        // The control socket and the directories above it: root's alone.
        for (path, isSocket) in [("/run/wirelab/\(lab)/control.sock", true), ("/run/wirelab/\(lab)", false), ("/run/wirelab", false)] {
            var st = stat()
            #expect(stat(path, &st) == 0, "\(path)")
            #expect(st.st_uid == 0, "\(path) is not root's")
            #expect(st.st_mode & 0o077 == 0, "\(path) has mode \(String(st.st_mode & 0o7777, radix: 8)): other users get in")
            #expect((st.st_mode & S_IFMT == S_IFSOCK) == isSocket, "\(path)")
        }
        // Another user is turned away: as nobody, wirelab cannot even see the lab.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") {
            let other = try Harness.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                              Harness.wirelab, "status", lab])
            #expect(other.status != 0, "nobody read the status: \(other.combined)")
            // A connect(2) to the socket itself: root gets through, nobody does not.
            let connect = ["/usr/bin/python3", "-c", "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
                           "/run/wirelab/\(lab)/control.sock"]
            let asRoot = try Harness.run(connect[0], Array(connect.dropFirst()))
            #expect(asRoot.status == 0, "root could not connect: \(asRoot.combined)")
            let asNobody = try Harness.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups"] + connect)
            #expect(asNobody.status != 0 && asNobody.stderr.contains("PermissionError"), "nobody connected: \(asNobody.combined)")
        }

        // exec: argv as given, or one command line with --shell.
        let plain = try Harness.wl("exec", "--lab", lab, "h1", "--", "echo", "a | b", "$HOME")
        #expect(plain.stdout == "a | b $HOME\n", "\(plain.combined)")
        let shell = try Harness.wl("exec", "--lab", lab, "--shell", "h1", "--", "echo one two", "|", "tr o 0;", "echo", "$((6*7))")
        #expect(shell.status == 0, "\(shell.combined)")
        #expect(shell.stdout == "0ne tw0\n42\n", "\(shell.combined)")

        let down = try Harness.wl("down", lab)
        #expect(down.status == 0, "\(down.combined)")
        #expect(Harness.namespaces(prefix: "wl-\(lab)-").isEmpty)
    }
}
