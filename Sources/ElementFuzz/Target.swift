#if canImport(Glibc)
import FuzzSupport
import Glibc
#endif
import Datapath
import Wire

/// The numbers of one element the fuzzer reads before and after every call
/// to check its accounting. Only counters: reading them must be cheap.
public struct Ledger: Equatable, Sendable {
    /// The element's `drops`, every reason.
    public var drops: UInt64 = 0
    /// The runner's own drops.
    public var noSuchPort: UInt64 = 0
    public var emitQueueFull: UInt64 = 0
    /// The neighbour cache's held frames (`ARPCache.Counters`): taken,
    /// handed back to send, handed back to drop, held now.
    public var queued: UInt64 = 0
    public var released: UInt64 = 0
    public var discarded: UInt64 = 0
    public var held = 0
    /// Released frames the element sent on (the others it must drop, counted).
    public var releasedSent: UInt64 = 0
    /// Frames the element built itself (ARP, ICMP errors, fragments, a
    /// host's packets) that it dropped and counted in `drops`.
    public var builtDropped: UInt64 = 0
    /// A director's valid sync messages from peers (consumed: their entries went into the table).
    public var syncMessages: UInt64 = 0
    /// The element's own counts of what its verdicts were, where it keeps
    /// them (0 where it does not).
    public var received: UInt64 = 0
    public var forwarded: UInt64 = 0
    public var flooded: UInt64 = 0
    public var fragmented: UInt64 = 0
    public var learned: UInt64 = 0

    public init() {}

    mutating func readARP(_ arp: ARPCache) {
        queued = arp.counters.framesQueued
        released = arp.counters.framesReleased
        discarded = arp.counters.framesDiscarded
        held = arp.queuedFrames
    }
}

/// Addresses that make a frame reach into an element: its own, its
/// neighbours', the services it serves, and the odd ones it must refuse.
public struct AddressBook: Sendable {
    /// Each port's MAC (empty for the switch: it has none).
    public var portMACs: [MACAddress]
    public var neighbourMACs: [MACAddress]
    public var addresses: [IPv4Address]
    public var ports: [UInt16]
}

/// One element under test, with its runner. The fuzzer drives it frame by
/// frame and asks it to explain each verdict from its counters.
protocol FuzzTarget: AnyObject {
    var name: String { get }
    var portCount: Int { get }
    var book: AddressBook { get }
    /// Frames addressed to this element, added to the shared corpus.
    func seeds() -> [[UInt8]]
    /// A frame of the traffic the element is there for (a client's
    /// connection to a VIP, a packet through the NAT), well formed: so the
    /// tables fill and flows move through their states. Nil: none.
    func typical(_ rng: inout Xoshiro, port: inout Int) -> [UInt8]?
    /// Only the switch floods; anyone else flooding is a finding.
    var mayFlood: Bool { get }
    /// What the element sends must be unchanged input (the switch), or
    /// built/rewritten IPv4 with right checksums (everyone else).
    var forwardsUnchanged: Bool { get }
    /// Every frame it sends is one it built (the host model): all
    /// checksums must be right, not only those it rewrote.
    var buildsEverything: Bool { get }
    /// IP MTU of a port (nil: no limit checked).
    func mtu(_ port: Int) -> Int?
    /// Largest frame the fuzzer hands in on `port`.
    func maxFrame(_ port: Int) -> Int

    func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, ports: inout FuzzPorts) -> Verdict
    func tick(now: Instant, ports: inout FuzzPorts)
    /// The control plane now and then (a link flap, a health change, a
    /// host's own traffic). Returns what it did, for the log.
    func poke(_ rng: inout Xoshiro, now: Instant, ports: inout FuzzPorts) -> String
    var elementDrops: DropCounters { get }
    var runnerDrops: DropCounters { get }
    var verdicts: VerdictCounts { get }
    func ledger() -> Ledger
    /// Explains one verdict from the counters before and after: what kind
    /// of consumption it was, or what is wrong.
    func explain(_ verdict: Verdict, _ b: Ledger, _ a: Ledger, frame: UnsafeRawBufferPointer) -> (consumed: String?, violation: String?)
    /// Table sizes against their limits: cheap, after every frame.
    func checkLimits() -> String?
    /// Consistency of whole tables: now and then, and at the end.
    func checkDeep(now: Instant) -> String?
    /// After every timer has run out: nothing may be left held.
    func checkDrained(now: Instant) -> String?
    /// Sizes and high-water marks for the report.
    func summary() -> [String]
}

/// The runner and the element, for the targets to share.
class RunnerTarget<E: Element> {
    let element: E
    var runner = ElementRunner()
    init(_ element: E) { self.element = element }

    var portCount: Int { element.portCount }
    var elementDrops: DropCounters { element.drops }
    var runnerDrops: DropCounters { runner.drops }
    var verdicts: VerdictCounts { runner.verdicts }

    func process(_ packet: inout PacketBuffer, from port: PortID, now: Instant, ports: inout FuzzPorts) -> Verdict {
        runner.process(element, &packet, from: port, now: now, ports: &ports)
    }

    func tick(now: Instant, ports: inout FuzzPorts) {
        runner.tick(element, now: now, ports: &ports)
    }

    /// The runner's part of the ledger.
    func runnerLedger() -> Ledger {
        var l = Ledger()
        l.drops = element.drops.total
        l.noSuchPort = runner.drops.counts[ElementRunner.noSuchPort] ?? 0
        l.emitQueueFull = runner.drops.counts[.emitQueueFull] ?? 0
        return l
    }
}

/// What the element sends, as the runner hands it out: kept in a ring (the
/// fuzzer answers it) and checked.
final class OutputSink {
    let ring: FrameRing
    var violation: String?
    /// The input of the call being checked (a copy: the element may
    /// rewrite the buffer), where the buffer's frame starts, and what the
    /// checks need of the input.
    var input: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    var packetStart: UnsafeRawPointer?
    var inputL4Valid: Bool? = nil
    var forwardsUnchanged = false
    var buildsEverything = false
    var checksIPv4 = true
    var mtus: [Int?] = []
    /// The input fit its ingress port's MTU: only then must what the
    /// element sends fit the egress MTU (an echo reply to an oversized
    /// request goes back as large; no real link delivers that request).
    var inputFitsMTU = true
    var sentThisCall = 0
    var sentTotal: UInt64 = 0

    init(ring: FrameRing) { self.ring = ring }

    func take(_ frame: UnsafeRawBufferPointer, port: Int, forwarded: Bool, copyOfInput: Bool) {
        ring.record(frame, port: port)
        sentThisCall += 1
        sentTotal &+= 1
        guard violation == nil else { return }
        guard frame.count >= 14 else {
            violation = "sent a \(frame.count)-byte frame on port \(port): shorter than an Ethernet header"
            return
        }
        if forwardsUnchanged {
            if copyOfInput && (frame.count != input.count || memcmp(frame.baseAddress!, input.baseAddress!, frame.count) != 0) {
                violation = "changed a frame it forwards (port \(port))"
            }
            return
        }
        guard checksIPv4, frame.wireU16(12) == 0x0800, frame.count >= 34 else { return }
        guard let (headerLength, _) = Frames.ipv4Extent(frame, at: 14) else {
            violation = "sent an IPv4 frame with a broken header on port \(port)"
            return
        }
        if InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: frame[14..<(14 + headerLength)])) != 0xFFFF {
            violation = "sent an IPv4 packet with a wrong header checksum on port \(port)"
            return
        }
        let total = Int(frame.wireU16(16))
        if inputFitsMTU, port < mtus.count, let mtu = mtus[port], total > mtu {
            violation = "sent a \(total)-byte IPv4 packet on port \(port), whose MTU is \(mtu)"
            return
        }
        if total + 14 > frame.count {
            violation = "sent an IPv4 packet of \(total) bytes in a \(frame.count)-byte frame on port \(port)"
            return
        }
        if buildsEverything || (forwarded && inputL4Valid == true) {
            if Checksums.l4Valid(frame) == false {
                violation = forwarded ? "broke the TCP/UDP/ICMP checksum of a packet it forwarded (port \(port))"
                    : "sent a packet with a wrong TCP/UDP/ICMP checksum on port \(port)"
            }
        }
    }
}

/// The ports the runner sends on: in memory, every frame to the sink.
struct FuzzPorts: RunnerPorts {
    let count: Int
    unowned let sink: OutputSink

    mutating func forward(_ packet: PacketBuffer, on port: PortID) -> Bool {
        sink.take(packet.readOnly, port: port.rawValue, forwarded: true, copyOfInput: true)
        return true
    }

    mutating func send(copying frame: UnsafeRawBufferPointer, on port: PortID) -> Bool {
        // A flood copy is the input itself; what the element emitted is not.
        let flood = sink.forwardsUnchanged && frame.baseAddress == sink.packetStart
        sink.take(frame, port: port.rawValue, forwarded: false, copyOfInput: flood)
        return true
    }

    mutating func release(_ packet: PacketBuffer) {}
}

/// A ring of recent frames in fixed slots (no allocation per frame).
final class FrameRing {
    let slotSize: Int
    let slots: Int
    let storage: UnsafeMutableRawPointer
    var lengths: [Int]
    var ports: [Int]
    var written = 0

    init(slots: Int, slotSize: Int = 2048) {
        self.slots = slots
        self.slotSize = slotSize
        storage = .allocate(byteCount: slots * slotSize, alignment: 64)
        lengths = Array(repeating: 0, count: slots)
        ports = Array(repeating: 0, count: slots)
    }

    deinit { storage.deallocate() }

    var count: Int { min(written, slots) }

    func record(_ frame: UnsafeRawBufferPointer, port: Int) {
        guard frame.count <= slotSize, frame.count > 0 else { return }
        let i = written % slots
        (storage + i * slotSize).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
        lengths[i] = frame.count
        ports[i] = port
        written += 1
    }

    /// The `k`-th most recent frame (0 = the last).
    func recent(_ k: Int) -> (port: Int, bytes: UnsafeRawBufferPointer) {
        let i = (written - 1 - k) % slots
        return (ports[i], UnsafeRawBufferPointer(start: storage + i * slotSize, count: lengths[i]))
    }

    func reset() { written = 0 }
}

enum Checksums {
    /// Whether the TCP/UDP/ICMP checksum of the IPv4 packet in `frame` is
    /// right (the inner packet's, for IPIP); nil when there is none to
    /// check (a fragment, a truncated packet, another protocol).
    static func l4Valid(_ frame: UnsafeRawBufferPointer) -> Bool? {
        guard let l3 = Frames.ipv4Offset(frame) else { return nil }
        return l4Valid(frame, at: l3, depth: 0)
    }

    static func l4Valid(_ f: UnsafeRawBufferPointer, at l3: Int, depth: Int) -> Bool? {
        guard let (ihl, _) = Frames.ipv4Extent(f, at: l3) else { return nil }
        let total = Int(f.wireU16(l3 + 2))
        guard l3 + total <= f.count, f.wireU16(l3 + 6) & 0x3FFF == 0 else { return nil }
        let segment = UnsafeRawBufferPointer(rebasing: f[(l3 + ihl)..<(l3 + total)])
        let source = f.wireIPv4(l3 + 12), destination = f.wireIPv4(l3 + 16)
        switch f[l3 + 9] {
        case 6 where segment.count >= 20:
            let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .tcp,
                                                          length: segment.count)
            return InternetChecksum.sum(segment, initial: pseudo) == 0xFFFF
        case 17 where segment.count >= 8:
            guard Int(segment.wireU16(4)) == segment.count else { return nil }
            if segment.wireU16(6) == 0 { return true }
            let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocol: .udp,
                                                          length: segment.count)
            return InternetChecksum.sum(segment, initial: pseudo) == 0xFFFF
        case 1 where segment.count >= 8:
            return InternetChecksum.sum(segment) == 0xFFFF
        case 4 where depth == 0 && segment.count >= 20:
            return l4Valid(f, at: l3 + ihl, depth: 1)
        default:
            return nil
        }
    }
}
