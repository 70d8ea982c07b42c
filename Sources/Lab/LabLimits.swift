import Datapath
import LinuxNet
import Topology

// What a lab needs of the machine, known from its topology before `up`
// creates anything: the data plane's limits per node (AF_XDP ports, MTU,
// pass rules), and its file descriptors and memory against this process's
// limits and the machine's free memory. `LabDeployer.up` refuses a lab that
// does not fit, naming each number needed, the number available and where
// each comes from, and creates nothing.

extension NodeRuntime {
    /// The AF_XDP port configuration of `node`'s ports (`open` uses it).
    /// In copy mode the kernel writes a frame 256 bytes (XDP_PACKET_HEADROOM)
    /// into its UMEM frame: frames over 1792 bytes need 4096-byte frames.
    ///
    /// Frames per port: a node's element runs on the daemon's one thread,
    /// so its ports together take in at most what it forwards; what a burst
    /// needs is frames per NODE. Each node gets `nodeFrames` (RX and TX
    /// halves), split over its ports: a 2-port router keeps 1024 per port
    /// (512 RX, what `bench forward` found best), a 4-port one 512, a switch
    /// of 8 ports or more `minimumPortFrames`. A port costs its frames ×
    /// frame size of UMEM (pinned: resident whether used or not) and its
    /// rings (see `LabLimits.requirements`).
    static func xdpConfiguration(for node: Node) -> XDPPort.Configuration {
        var configuration = XDPPort.Configuration()
        if node.interfaces.contains(where: { $0.mtu > 1700 }) { configuration.frameSize = 4096 }
        configuration.frameCount = portFrames(ports: node.interfaces.count)
        return configuration
    }

    /// UMEM frames of a node, all its ports together (see `xdpConfiguration`).
    static let nodeFrames = 2048
    /// UMEM frames of a port at least: 128 RX frames are two receive
    /// batches, 128 TX frames two batches of a burst sent before a flush.
    static let minimumPortFrames = 256
    /// UMEM frames of each port of a node with PORTS ports: `nodeFrames`
    /// shared out, a power of two (the rings' sizes must be) between
    /// `minimumPortFrames` and the port's default (1024).
    static func portFrames(ports: Int) -> Int {
        let share = nodeFrames / max(ports, 1)
        var frames = minimumPortFrames
        while frames * 2 <= share && frames * 2 <= XDPPort.Configuration().frameCount { frames *= 2 }
        return frames
    }

    /// The AF_PACKET port configuration of `node`'s ports (`open` uses it).
    static func packetConfiguration(for node: Node) -> AFPacketPort.Configuration {
        var configuration = AFPacketPort.Configuration()
        if node.interfaces.contains(where: { $0.mtu > 1900 }) { configuration.bufferSize = 9216 + 256 }
        return configuration
    }
}

/// What a lab takes: descriptors and memory, each by what takes it.
public struct LabRequirements: Sendable {
    public struct Share: Sendable, CustomStringConvertible {
        public var what: String
        public var amount: Int
        public var description: String { what.contains("×") ? "\(what) = \(amount)" : "\(what) \(amount)" }
    }

    /// Descriptors the lab's daemon (data plane and capture recorder) holds
    /// at once; empty when the lab starts no daemon.
    public var daemonDescriptors: [Share] = []
    /// Descriptors `up` holds at once while it builds.
    public var upDescriptors: [Share] = []
    /// Bytes the daemon allocates at start, by what.
    public var memory: [Share] = []
    /// Of `memory`, the AF_XDP UMEMs: charged to RLIMIT_MEMLOCK unless the
    /// process has CAP_IPC_LOCK.
    public var umemBytes = 0

    public var daemonDescriptorTotal: Int { daemonDescriptors.reduce(0) { $0 + $1.amount } }
    public var upDescriptorTotal: Int { upDescriptors.reduce(0) { $0 + $1.amount } }
    public var memoryTotal: Int { memory.reduce(0) { $0 + $1.amount } }
}

public enum LabLimits {
    // Descriptors, counted in `ls -l /proc/<daemon>/fd` of labs up on this
    // machine (afxdp and afpacket switches with and without capture,
    // lvs-tun.yaml); `LabLimitsLiveTests` checks the estimate against a
    // running daemon.
    /// stdin (/dev/null), stdout and stderr (daemon.log), the health-check
    /// wake pipe (2), the control socket.
    static let daemonBaseDescriptors = 6
    /// Per AF_XDP node: the XDP program, its BTF and its 7 maps (xsks,
    /// ports, config, pass_rules, capture, stats, .rodata).
    static let xdpNodeDescriptors = 9
    /// Per AF_XDP node with capture: the capture ring's epoll (libbpf ring_buffer).
    static let xdpCaptureDescriptors = 1
    /// Per AF_XDP port: the socket (its UMEM shares the fd) and the BPF
    /// link attaching the program to the interface.
    static let xdpPortDescriptors = 2
    /// Per AF_PACKET port: the socket.
    static let packetPortDescriptors = 1
    /// Per captured link: its pcap and the `.rx` sidecar.
    static let captureLinkDescriptors = 2
    /// Per link end received by libpcap (kernel hosts, AF_PACKET nodes): its socket.
    static let libpcapDescriptors = 1
    /// Per TUN real server: the decapsulation program, its BTF and 3 maps;
    /// and one tcx link per interface.
    static let decapHostDescriptors = 5
    /// Descriptors opened for a moment (a namespace entered, /proc read,
    /// the merge into all.pcapng): room kept on top of the count.
    static let transientDescriptors = 16
    /// `up` itself: its runtime, stdio, the lab lock, state writes.
    static let upBaseDescriptors = 16
    /// `up` per namespace, held together while it builds: the namespace's
    /// fd and an rtnetlink socket in it (LabDeployer.build).
    static let upNamespaceDescriptors = 2

    /// What `topology` takes when built with `up`. `dataPlane` false: no
    /// daemon (`bench deploy`).
    public static func requirements(for topology: ResolvedTopology, dataPlane: Bool = true) -> LabRequirements {
        var r = LabRequirements()
        r.upDescriptors = [.init(what: "base", amount: upBaseDescriptors),
                           .init(what: "\(count(topology.nodes.count, "namespace")) × \(upNamespaceDescriptors)",
                                 amount: topology.nodes.count * upNamespaceDescriptors)]
        let userspace = topology.nodes.filter(\.isUserspace)
        let capture = topology.defaults.capture
        // LabDeployer.startDaemon: a daemon for userspace nodes, or to record
        // the captures of a lab of kernel hosts.
        guard dataPlane, !userspace.isEmpty || capture else { return r }

        var d: [LabRequirements.Share] = [.init(what: "base", amount: daemonBaseDescriptors)]
        var memory: [LabRequirements.Share] = []
        let xdpNodes = userspace.filter { $0.datapath == .afxdp }
        let packetNodes = userspace.filter { $0.datapath == .afpacket }
        let xdpPorts = xdpNodes.reduce(0) { $0 + $1.interfaces.count }
        let packetPorts = packetNodes.reduce(0) { $0 + $1.interfaces.count }
        if !xdpNodes.isEmpty {
            d.append(.init(what: "\(count(xdpNodes.count, "AF_XDP node")) × \(xdpNodeDescriptors + (capture ? xdpCaptureDescriptors : 0))",
                           amount: xdpNodes.count * (xdpNodeDescriptors + (capture ? xdpCaptureDescriptors : 0))))
            d.append(.init(what: "\(count(xdpPorts, "AF_XDP port")) × \(xdpPortDescriptors)", amount: xdpPorts * xdpPortDescriptors))
            // XDPPort: a UMEM of frameCount × frameSize bytes, mapped with
            // MAP_POPULATE (resident at once), and its four rings (fill
            // twice the RX frames, 8-byte entries; completion 8; RX and TX
            // 16-byte descriptors; a page of producer/consumer each).
            var umem = 0, rings = 0
            for node in xdpNodes {
                let c = NodeRuntime.xdpConfiguration(for: node)
                let rx = c.frameCount / 2, tx = c.frameCount - rx
                umem += node.interfaces.count * c.frameCount * c.frameSize
                rings += node.interfaces.count * (2 * rx * 8 + tx * 8 + rx * 16 + tx * 16 + 4 * 4096)
            }
            r.umemBytes = umem
            memory.append(.init(what: "UMEM of \(count(xdpPorts, "AF_XDP port"))", amount: umem))
            memory.append(.init(what: "their rings", amount: rings))
            // Every AF_XDP node's program has a capture ring (a BPF ring
            // buffer, allocated when the map is created): a page without capture.
            let ring = (try? NodeRuntime.programConfiguration(ports: 1, capture: capture).captureRingBytes)
                ?? XDPProgram.Configuration().captureRingBytes
            memory.append(.init(what: "capture rings of \(count(xdpNodes.count, "XDP program"))",
                                amount: xdpNodes.count * ring))
        }
        if !packetNodes.isEmpty {
            d.append(.init(what: "\(count(packetPorts, "AF_PACKET port"))", amount: packetPorts * packetPortDescriptors))
            // AFPacketPort: receive slots of headroom + buffer (64-byte
            // aligned) and transmit buffers, allocated when it opens.
            var bytes = 0
            for node in packetNodes {
                let c = NodeRuntime.packetConfiguration(for: node)
                let stride = (c.headroom + c.bufferSize + 63) & ~63
                bytes += node.interfaces.count * (stride * c.receiveBuffers + c.bufferSize * c.transmitBuffers)
            }
            memory.append(.init(what: "buffers of \(count(packetPorts, "AF_PACKET port"))", amount: bytes))
        }
        if capture {
            let byName = Dictionary(topology.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let libpcapEnds = topology.links.flatMap { [$0.a, $0.b] }.filter { end in
                guard let node = byName[end.node] else { return false }
                return !(node.isUserspace && node.datapath == .afxdp)
            }.count
            d.append(.init(what: "\(count(topology.links.count, "captured link")) × \(captureLinkDescriptors)",
                           amount: topology.links.count * captureLinkDescriptors))
            if libpcapEnds > 0 {
                d.append(.init(what: "\(count(libpcapEnds, "libpcap capture"))", amount: libpcapEnds * libpcapDescriptors))
                memory.append(.init(what: "rings of \(count(libpcapEnds, "libpcap capture"))",
                                    amount: libpcapEnds * CaptureRecorder.liveBufferBytes))
            }
        }
        let decaps = LabPlan(topology: topology, serveCommand: []).decapsulations
        if !decaps.isEmpty {
            d.append(.init(what: "IPIP decapsulation on \(count(decaps.count, "host"))",
                           amount: decaps.reduce(0) { $0 + decapHostDescriptors + $1.interfaces.count }))
        }
        let healthReals = userspace.filter { $0.kind == .director }.flatMap(\.services).filter { $0.health != nil }
            .reduce(0) { $0 + $1.reals.count }
        if healthReals > 0 { d.append(.init(what: "health checks of \(count(healthReals, "real"))", amount: healthReals)) }
        d.append(.init(what: "transient", amount: transientDescriptors))

        // Directors: the connection table, allocated whole at start (the
        // largest of the elements' tables; the others are a few KiB).
        let directors = userspace.filter { $0.kind == .director }
        if !directors.isEmpty {
            let bytes = directors.reduce(0) {
                $0 + ConnectionTable.memoryBytes(capacity: ElementFactory.directorConfiguration($1).core.maxConnections)
            }
            memory.append(.init(what: "connection tables of \(count(directors.count, "director"))", amount: bytes))
        }
        r.daemonDescriptors = d
        r.memory = memory
        return r
    }

    /// Everything about `topology` that this machine (`resources`) cannot
    /// build, one line each; empty when it fits. `controlSocket` is the
    /// daemon's socket path (from the state directory).
    public static func problems(_ topology: ResolvedTopology, controlSocket: String, resources: SystemResources,
                                dataPlane: Bool = true) -> [String] {
        var out: [String] = []
        let req = requirements(for: topology, dataPlane: dataPlane)

        // Per node, what the data plane's code and the kernel allow.
        if dataPlane {
            let maxMTU = XDPProgram.maxVethMTU(pageSize: resources.pageSize)
            for node in topology.nodes where node.isUserspace && node.datapath == .afxdp {
                if node.interfaces.count > XDPProgram.maxPorts {
                    out.append("\(node.location): \(node.kind) '\(node.name)' has \(node.interfaces.count) ports; an AF_XDP node takes at most \(XDPProgram.maxPorts) (WL_MAX_PORTS, the port slots of bpf/wirelab_xdp.bpf.c); split it (e.g. two switches linked together) or give it datapath: afpacket")
                }
                let rules = NodeRuntime.healthCheckPassRules(node).count
                if rules > XDPProgram.maxPassRules {
                    out.append("\(node.location): director '\(node.name)' needs \(rules) pass-to-kernel rules for its health checks (one per interface address); its XDP program holds at most \(XDPProgram.maxPassRules) (WL_PASS_RULES_MAX of bpf/wirelab_xdp.bpf.c); give it fewer addresses or datapath: afpacket")
                }
            }
            for link in topology.links where link.mtu > maxMTU {
                let xdpEnds = [link.a.node, link.b.node].filter { name in
                    topology.node(named: name).map { $0.isUserspace && $0.datapath == .afxdp } ?? false
                }
                guard let first = xdpEnds.first else { continue }
                out.append("\(link.location): link \(link.a) ↔ \(link.b) has mtu \(link.mtu); veth takes native XDP for AF_XDP node '\(first)' only up to mtu \(maxMTU) (page \(resources.pageSize) − 256 XDP headroom − 320 skb_shared_info − 14 Ethernet header: the kernel's veth_xdp_set answers ERANGE above it); use mtu: \(maxMTU) or less, or datapath: afpacket on '\(first)'")
            }
            // sockaddr_un.sun_path is 108 bytes with its NUL (linux/un.h);
            // a longer path would be cut short and nobody could connect.
            if !req.daemonDescriptors.isEmpty, controlSocket.utf8.count > 107 {
                out.append("control socket \(controlSocket) is \(controlSocket.utf8.count) bytes; a Unix socket path takes at most 107 (sun_path[108]); use a shorter --state-dir")
            }
        }

        // This machine and this process.
        if let soft = resources.openFilesSoft {
            let hard = resources.openFilesHard.map(String.init) ?? "unlimited"
            let daemon = req.daemonDescriptorTotal
            if daemon > soft {
                out.append("file descriptors: the lab's daemon needs about \(daemon) (\(req.daemonDescriptors.map(\.description).joined(separator: ", "))); the open-file limit (RLIMIT_NOFILE, which it inherits from wirelab) is \(soft); raise it with ulimit -n \(daemon) (hard limit \(hard)) or build a smaller lab")
            }
            let up = req.upDescriptorTotal
            if up > soft {
                out.append("file descriptors: up needs about \(up) while it builds (\(req.upDescriptors.map(\.description).joined(separator: ", "))); the open-file limit (RLIMIT_NOFILE) is \(soft); raise it with ulimit -n \(up) (hard limit \(hard))")
            }
        }
        let memory = req.memoryTotal
        if let available = resources.memoryAvailable, memory > available {
            out.append("memory: the lab's data plane needs \(bytes(memory)) (\(req.memory.map { "\($0.what) \(bytes($0.amount))" }.joined(separator: ", "))); MemAvailable in /proc/meminfo is \(bytes(available)); build a smaller lab or free memory")
        }
        if !resources.canLockMemory, let limit = resources.lockedMemoryLimit, req.umemBytes > limit {
            out.append("locked memory: the AF_XDP UMEMs take \(bytes(req.umemBytes)), charged to the locked-memory limit without CAP_IPC_LOCK (net/xdp/xdp_umem.c); RLIMIT_MEMLOCK is \(bytes(limit)); raise it with ulimit -l, or use datapath: afpacket")
        }
        return out
    }

    /// "1 port", "3 ports".
    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// "3.5 GiB", "12.0 MiB", "512 KiB".
    static func bytes(_ n: Int) -> String {
        func one(_ x: Double) -> String {
            let tenths = Int((x * 10).rounded())
            return "\(tenths / 10).\(tenths % 10)"
        }
        if n >= 1 << 30 { return one(Double(n) / Double(1 << 30)) + " GiB" }
        if n >= 1 << 20 { return one(Double(n) / Double(1 << 20)) + " MiB" }
        return "\((n + 1023) / 1024) KiB"
    }
}
