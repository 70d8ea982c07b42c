import Foundation
import Glibc
import LinuxNet
import Topology
import Wire

/// Records every frame that crosses every link, per link, into
/// `<dir>/<a-node>_<a-if>--<b-node>_<b-if>.pcap`, and at the end merges them
/// into `<dir>/all.pcapng` with one named interface per link.
///
/// Each direction of a link is recorded where it is RECEIVED, on the kernel
/// side, because that is the only place that sees it on this kernel:
/// - received by an AF_XDP node: the node's XDP program copies the frame to
///   its capture ring before redirecting it to the socket (an AF_XDP
///   copy-mode send bypasses the sender's taps, and the redirect happens
///   before the receiver's taps, so libpcap sees nothing there);
/// - received by a kernel host or an AF_PACKET node: libpcap on the
///   receiving interface, inbound direction only.
/// So the record is what really crossed the veth, never what an element
/// meant to send.
final class CaptureRecorder {
    struct LinkFile {
        var name: String      // "gw:eth1 ↔ sw:p1"
        var path: String
        var writer: PcapWriter
    }

    let directory: String
    private(set) var links: [LinkFile] = []
    /// (namespace, ifindex) → link index, for ring records.
    private var byRingInterface: [String: [UInt32: Int]] = [:]
    private var live: [(capture: PcapLiveCapture, link: Int)] = []
    private var rings: [(ring: CaptureRing, namespace: String)] = []
    private(set) var frames: UInt64 = 0
    private(set) var errors: UInt64 = 0

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    static func fileName(_ link: Link) -> String {
        "\(link.a.node)_\(link.a.interface)--\(link.b.node)_\(link.b.interface).pcap"
    }

    /// Sets up the recording points of every link. `runtimes` are the
    /// userspace nodes (their rings); every other receiver gets libpcap.
    func prepare(topology: ResolvedTopology, lab: String, runtimes: [String: NodeRuntime]) throws {
        for link in topology.links {
            let path = directory + "/" + Self.fileName(link)
            let writer = try PcapWriter(path: path)
            let index = links.count
            links.append(LinkFile(name: "\(link.a.node):\(link.a.interface) ↔ \(link.b.node):\(link.b.interface)", path: path, writer: writer))
            for receiver in [link.a, link.b] {
                let namespace = LabStore.namespaceName(lab: lab, node: receiver.node)
                if let runtime = runtimes[receiver.node], let program = runtime.program {
                    _ = program
                    let port = runtime.ports[runtime.node.interfaces.firstIndex { $0.name == receiver.interface }!]
                    byRingInterface[namespace, default: [:]][UInt32(port.interfaceIndex)] = index
                } else {
                    let capture = try NetworkNamespace.run(namespace) { () throws -> PcapLiveCapture in
                        try PcapLiveCapture(interface: receiver.interface,
                                            options: .init(bufferSize: 4 << 20, direction: .inbound))
                    }
                    live.append((capture, index))
                }
            }
        }
        for runtime in runtimes.values {
            if let ring = runtime.captureRing { rings.append((ring, runtime.namespace)) }
        }
    }

    var pollDescriptors: [Int32] { rings.map(\.ring.fd) + live.map(\.capture.selectableFD) }

    /// Drains everything buffered; never blocks.
    func drain() {
        for (ring, namespace) in rings {
            let map = byRingInterface[namespace] ?? [:]
            _ = try? ring.consume { frame in
                guard let index = map[frame.interfaceIndex] else { return }
                do {
                    try links[index].writer.write(frame.bytes, timestamp: UInt64(max(0, frame.timestampNanoseconds)),
                                                  originalLength: frame.wireLength)
                    frames &+= 1
                } catch { errors &+= 1 }
            }
        }
        for (capture, index) in live {
            _ = try? capture.readAvailable { packet in
                do {
                    try links[index].writer.write(packet.bytes, timestamp: packet.timestamp, originalLength: packet.originalLength)
                    frames &+= 1
                } catch { errors &+= 1 }
            }
        }
    }

    func flush() {
        for link in links { try? link.writer.flush() }
    }

    /// Final drain, close every file, and write the merged pcapng.
    func finish() {
        drain()
        for link in links { try? link.writer.close() }
        for (capture, _) in live { capture.close() }
        let sources = links.map { PcapNGFile.Source(name: $0.name, description: nil, path: $0.path) }
        try? PcapNGFile.merge(sources, to: directory + "/all.pcapng", comment: "wirelab: every link, received side")
    }
}
