import Wire

/// Runs one element outside any run loop: hands it a frame in a buffer
/// with headroom, collects its verdict, the rewritten frame and what it
/// emitted. The in-memory port of element tests and the simulator.
public final class ElementDriver {
    public static let headroom = 256
    public static let bufferSize = 256 + 2048

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
    private var emitter = Emitter()

    public init(_ element: any Element) {
        self.element = element
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 64)
    }

    deinit {
        buffer.deallocate()
        emitter.deallocate()
    }

    public func send(_ frame: [UInt8], on port: PortID, at now: Instant) -> Outcome {
        precondition(frame.count <= Self.bufferSize - Self.headroom, "frame larger than a buffer")
        // Poison the headroom so a header an element forgets to write shows.
        buffer.initializeMemory(as: UInt8.self, repeating: 0xa5, count: Self.headroom)
        frame.withUnsafeBytes { (buffer + Self.headroom).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        var packet = PacketBuffer(base: buffer, capacity: Self.bufferSize, offset: Self.headroom, length: frame.count)
        emitter.removeAll()
        let verdict = element.process(&packet, from: port, now: now, emit: &emitter)
        return Outcome(verdict: verdict, frame: Array(packet.readOnly), emitted: drain())
    }

    public func tick(at now: Instant) -> [Emitted] {
        emitter.removeAll()
        element.tick(now: now, emit: &emitter)
        return drain()
    }

    private func drain() -> [Emitted] {
        (0..<emitter.count).map { i in
            let f = emitter.frame(at: i)
            return Emitted(port: f.port, frame: Array(f.bytes))
        }
    }
}
