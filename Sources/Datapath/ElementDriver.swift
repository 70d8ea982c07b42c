import Wire

/// Runs one element outside any run loop, through the same `ElementRunner`
/// as the daemon and the simulator: hands it a frame in a buffer with
/// headroom, collects its verdict, the rewritten frame and what it emitted.
/// The in-memory ports of element tests.
public final class ElementDriver {
    public static let headroom = 256
    /// Room for a jumbo frame (9000-byte MTU), as the simulator's buffers.
    public static let bufferSize = 256 + 9216

    public struct Outcome: Equatable, CustomStringConvertible {
        public var verdict: Verdict
        /// The frame as the element left it (meaningful for forward/flood).
        public var frame: [UInt8]
        /// Frames the element emitted, in order.
        public var emitted: [Emitted]
        public var description: String { "\(verdict), \(frame.count) bytes, \(emitted.count) emitted" }
    }

    public struct Emitted: Equatable, CustomStringConvertible {
        public var port: PortID
        public var frame: [UInt8]
        public init(port: PortID, frame: [UInt8]) {
            self.port = port
            self.frame = frame
        }
        public var description: String { "\(port): \(frame.count) bytes" }
    }

    public let element: any Element
    private let buffer: UnsafeMutableRawPointer
    private var runner = ElementRunner()

    public init(_ element: any Element) {
        self.element = element
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 64)
    }

    deinit { buffer.deallocate() }

    /// In-memory ports: a forwarded frame stays in the buffer (it is the
    /// outcome's `frame`); copies are recorded in the order they are sent.
    struct RecordingPorts: RunnerPorts {
        let count: Int
        var sent: [Emitted] = []
        mutating func forward(_ packet: PacketBuffer, on port: PortID) -> Bool { true }
        mutating func send(copying frame: UnsafeRawBufferPointer, on port: PortID) -> Bool {
            sent.append(Emitted(port: port, frame: Array(frame)))
            return true
        }
        mutating func release(_ packet: PacketBuffer) {}
    }

    public func send(_ frame: [UInt8], on port: PortID, at now: Instant) -> Outcome {
        precondition(frame.count <= Self.bufferSize - Self.headroom, "frame larger than a buffer")
        // Poison the headroom so a header an element forgets to write shows.
        buffer.initializeMemory(as: UInt8.self, repeating: 0xa5, count: Self.headroom)
        frame.withUnsafeBytes { (buffer + Self.headroom).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        var packet = PacketBuffer(base: buffer, capacity: Self.bufferSize, offset: Self.headroom, length: frame.count)
        var ports = RecordingPorts(count: element.portCount)
        let verdict = runner.process(element, &packet, from: port, now: now, ports: &ports)
        // Flood copies come first (one per port but the ingress); the rest was emitted.
        let floods = verdict == .flood ? max(0, element.portCount - 1) : 0
        return Outcome(verdict: verdict, frame: Array(packet.readOnly), emitted: Array(ports.sent.dropFirst(floods)))
    }

    public func fireTimers(at now: Instant) -> [Emitted] {
        var ports = RecordingPorts(count: element.portCount)
        runner.fireTimers(element, now: now, ports: &ports)
        return ports.sent
    }

    public func tick(at now: Instant) -> [Emitted] {
        var ports = RecordingPorts(count: element.portCount)
        runner.tick(element, now: now, ports: &ports)
        return ports.sent
    }
}
