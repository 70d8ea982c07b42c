// PortBatch — one burst of received frames, shared by XDPPort and AFPacketPort.

/// A burst of received frames: up to `capacity` frames, each an (address,
/// length) pair pointing into the receiving port's memory (an AF_XDP UMEM or
/// an AF_PACKET port's receive buffers).
///
/// Allocated once and reused for every burst; no allocation per packet. A
/// port's `receive(into:)` fills it and the same port's `release(_:)` gives
/// the frames back: the addresses are valid until then, and a port expects
/// its batch to be released before its next `receive`. Frames may be changed
/// in place (an element rewriting MACs or growing into the tailroom).
/// Noncopyable, so two owners can never release the same frames.
public struct PortBatch: ~Copyable {
    /// Most frames one `receive` delivers.
    public let capacity: Int
    /// Frames delivered by the last `receive` and not yet released.
    @inlinable public var count: Int { storedCount }
    @usableFromInline var storedCount: Int

    @usableFromInline let addresses: UnsafeMutablePointer<UnsafeMutableRawPointer>
    @usableFromInline let lengths: UnsafeMutablePointer<Int>
    /// Where each frame's buffer starts (its headroom is address - start).
    @usableFromInline let starts: UnsafeMutablePointer<UnsafeMutableRawPointer>
    /// Port-specific handle (AF_XDP: the UMEM address of the descriptor).
    @usableFromInline let handles: UnsafeMutablePointer<UInt64>
    /// Size of each frame's buffer, bytes (the same for all frames of a port).
    @usableFromInline var bufferSize: Int
    /// Identity of the port that filled the batch (0: none).
    @usableFromInline var owner: UInt

    public init(capacity: Int = 64) {
        precondition(capacity > 0, "PortBatch capacity must be positive")
        self.capacity = capacity
        storedCount = 0
        addresses = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
        starts = .allocate(capacity: capacity)
        handles = .allocate(capacity: capacity)
        bufferSize = 0
        owner = 0
    }

    deinit {
        addresses.deallocate()
        lengths.deallocate()
        starts.deallocate()
        handles.deallocate()
    }

    /// The bytes of frame `index` (0 ..< count).
    @inlinable public subscript(index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: addresses[index], count: lengths[index])
    }

    /// Address of the first byte of frame `index`.
    @inlinable public func address(at index: Int) -> UnsafeMutableRawPointer { addresses[index] }

    /// Length of frame `index`, bytes.
    @inlinable public func length(at index: Int) -> Int { lengths[index] }

    /// Free bytes before frame `index` in its buffer.
    @inlinable public func headroom(at index: Int) -> Int { starts[index].distance(to: addresses[index]) }

    /// Free bytes after frame `index` in its buffer.
    @inlinable public func tailroom(at index: Int) -> Int { bufferSize - headroom(at: index) - lengths[index] }
}
