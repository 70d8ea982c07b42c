import Wire

// The one place that knows what an element's verdict means. The live
// daemon (AF_XDP / AF_PACKET ports), the simulator (virtual links) and the
// element tests (in-memory ports) each hand the runner a frame and their
// own kind of ports; the runner calls the element, carries out the verdict,
// drains what the element emitted, checks every egress port against the
// port count, and counts what could not be sent.

/// The ports of one node as a runner sends on them, numbered as the
/// element's ports. Implemented by each kind of runtime; the runner is
/// generic over it, so the per-frame calls are static.
public protocol RunnerPorts {
    /// How many ports the node has (the element's `portCount`).
    var count: Int { get }
    /// The element's frame leaves on `port` (`.forward`). The runtime may
    /// take the frame's buffer (the simulator passes it on) or copy it (a
    /// socket's TX ring). False when the port could not take it.
    mutating func forward(_ packet: PacketBuffer, on port: PortID) -> Bool
    /// A copy of `frame` leaves on `port` (a flooded frame, or one the
    /// element emitted). False when the port could not take it.
    mutating func send(copying frame: UnsafeRawBufferPointer, on port: PortID) -> Bool
    /// The runner is done with a frame it did not `forward` (dropped,
    /// consumed, flooded as copies, or refused by a bad port).
    mutating func release(_ packet: PacketBuffer)
}

/// What an element decided for the frames it was handed: every frame in
/// is exactly one of these (`frames == forwarded + flooded + consumed +
/// dropped`). Drops by reason are the element's own `drops` (which also
/// count frames it held and dropped later, and frames it built and could
/// not send) and the runner's `drops`.
public struct VerdictCounts: Equatable, Sendable {
    public var frames: UInt64 = 0
    public var forwarded: UInt64 = 0
    public var flooded: UInt64 = 0
    public var consumed: UInt64 = 0
    public var dropped: UInt64 = 0
    public init() {}
}

/// Drives one element: owns its emitter and the counts of what the runtime
/// could not do with the element's frames. Noncopyable: it owns the
/// emitter's slots, which a copy would alias.
public struct ElementRunner: ~Copyable {
    /// The element's own frames (ARP, ICMP errors, released queues), drained after every call.
    public var emitter: Emitter
    /// Frames a port refused (TX ring or socket queue full), `tx-failures` in `status`.
    public var transmitFailures: UInt64 = 0
    /// What the runner dropped itself, by reason: a verdict or an emitted
    /// frame naming a port the node does not have (`no-such-port`), and
    /// frames the element could not emit because its emitter was full
    /// (`emit-queue-full`).
    public var drops = DropCounters()
    /// Every frame handed to `process`, by verdict.
    public var verdicts = VerdictCounts()
    /// `emitter.overflows` already counted in `drops`.
    @usableFromInline var overflowsCounted = 0

    public static let noSuchPort = DropReason("no-such-port")

    public init(emitterSlots: Int = 64) {
        emitter = Emitter(slots: emitterSlots)
    }


    /// Runs ELEMENT on one received frame and carries out its verdict on
    /// PORTS; returns the verdict. Order of sends: the frame (forwarded,
    /// or its flood copies in port order), then what the element emitted.
    @inlinable @inline(__always) @discardableResult
    public mutating func process<E: Element, P: RunnerPorts>(_ element: E, _ packet: inout PacketBuffer, from ingress: PortID,
                                                             now: Instant, ports: inout P) -> Verdict {
        let verdict = element.process(&packet, from: ingress, now: now, emit: &emitter)
        verdicts.frames &+= 1
        switch verdict {
        case .forward(let egress):
            verdicts.forwarded &+= 1
            if egress.rawValue >= 0 && egress.rawValue < ports.count {
                if !ports.forward(packet, on: egress) { transmitFailures &+= 1 }
            } else {
                drops.count(Self.noSuchPort)
                ports.release(packet)
            }
        case .flood:
            verdicts.flooded &+= 1
            for p in 0..<ports.count where p != ingress.rawValue {
                if !ports.send(copying: packet.readOnly, on: PortID(p)) { transmitFailures &+= 1 }
            }
            ports.release(packet)
        case .drop:
            verdicts.dropped &+= 1
            ports.release(packet)   // elements count their own drops by reason
        case .consumed:
            verdicts.consumed &+= 1
            ports.release(packet)
        }
        // An overflow happens only with every slot used, so count > 0 covers it.
        if emitter.count > 0 { drainEmitted(on: &ports) }
        return verdict
    }

    /// Runs the element's timers and sends what they emitted.
    @inlinable
    public mutating func tick<E: Element, P: RunnerPorts>(_ element: E, now: Instant, ports: inout P) {
        element.tick(now: now, emit: &emitter)
        drainEmitted(on: &ports)
    }

    /// Runs the element's fine timers (`nextTimer`) and sends what they emitted.
    @inlinable
    public mutating func fireTimers<E: Element, P: RunnerPorts>(_ element: E, now: Instant, ports: inout P) {
        element.fireTimers(now: now, emit: &emitter)
        drainEmitted(on: &ports)
    }

    /// Sends what the element emitted outside `process`/`tick` (a host
    /// model's own traffic: a probe, a ping, a connection).
    @inlinable
    public mutating func drainEmitted<P: RunnerPorts>(on ports: inout P) {
        for i in 0..<emitter.count {
            let frame = emitter.frame(at: i)
            if frame.port.rawValue >= 0 && frame.port.rawValue < ports.count {
                if !ports.send(copying: frame.bytes, on: frame.port) { transmitFailures &+= 1 }
            } else {
                drops.count(Self.noSuchPort)
            }
        }
        emitter.removeAll()
        // Frames an element could not emit (all slots used) are counted, not lost silently.
        while overflowsCounted < emitter.overflows {
            drops.count(.emitQueueFull)
            overflowsCounted += 1
        }
    }
}
