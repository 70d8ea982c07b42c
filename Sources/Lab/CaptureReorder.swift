/// Puts the frames of one link in timestamp order before they are written.
///
/// Each direction of a link is recorded where it is received, by a different
/// source (the receiving node's XDP ring, or libpcap), and the recorder
/// drains its sources one after the other. In drain order a link's file can
/// hold a reply before its request — tshark's TCP analysis then calls the
/// request a spurious retransmission and does not dissect what it carries.
/// So a frame is held until it is `holdback` older than the newest moment
/// the caller knows every source has been drained up to, and frames go out
/// sorted by their stamp (equal stamps in the order they came).
///
/// The bytes are copied into one buffer shared by the link's held frames:
/// no allocation per frame once the buffer has grown to a burst.
struct CaptureReorder {
    struct Frame {
        var timestamp: UInt64
        var offset: Int
        var length: Int
        var originalLength: Int
        /// The recorder's sidecar byte (receiving end, fast path), carried as is.
        var end: UInt8
        var sequence: Int
    }

    private var held: [Frame] = []
    private var bytes: [UInt8] = []
    private var sequence = 0

    var isEmpty: Bool { held.isEmpty }
    var count: Int { held.count }

    mutating func add(_ frame: UnsafeRawBufferPointer, timestamp: UInt64, originalLength: Int, end: UInt8) {
        held.append(Frame(timestamp: timestamp, offset: bytes.count, length: frame.count,
                          originalLength: originalLength, end: end, sequence: sequence))
        sequence &+= 1
        bytes.append(contentsOf: frame)
    }

    /// Hands `body` every held frame stamped at or before `cutoff` (every
    /// frame when `cutoff` is nil), oldest first, and keeps the rest.
    mutating func release(upTo cutoff: UInt64?,
                          _ body: (_ frame: UnsafeRawBufferPointer, _ timestamp: UInt64, _ originalLength: Int, _ end: UInt8) -> Void) {
        guard !held.isEmpty else { return }
        held.sort { ($0.timestamp, $0.sequence) < ($1.timestamp, $1.sequence) }
        let count = cutoff.map { limit in held.firstIndex { $0.timestamp > limit } ?? held.count } ?? held.count
        guard count > 0 else { return }
        bytes.withUnsafeBytes { all in
            for f in held[..<count] {
                body(UnsafeRawBufferPointer(rebasing: all[f.offset ..< f.offset + f.length]), f.timestamp, f.originalLength, f.end)
            }
        }
        if count == held.count {
            held.removeAll(keepingCapacity: true)
            bytes.removeAll(keepingCapacity: true)
            return
        }
        // Keep the rest, packed at the front of the buffer.
        var kept: [UInt8] = []
        kept.reserveCapacity(bytes.capacity)
        var rest = Array(held[count...])
        for i in rest.indices {
            let start = kept.count
            kept.append(contentsOf: bytes[rest[i].offset ..< rest[i].offset + rest[i].length])
            rest[i].offset = start
        }
        held = rest
        bytes = kept
    }
}
