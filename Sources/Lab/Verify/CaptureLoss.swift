// Capture loss: a capture point that could not record every frame (its
// ring or buffer was full) makes every verdict resting on the capture
// inconclusive. Pure: unit-tested from hand-built counters.

/// Frames one capture point lost between two readings.
public struct CaptureLoss: Sendable, Equatable {
    /// The point, as `CapturePoint.key`.
    public var key: String
    /// Where, in words ("the XDP capture ring of gw (gw:eth0, gw:eth1)").
    public var place: String
    /// Lost because the ring or buffer was full.
    public var ringFull: UInt64
    /// Dropped by the interface (libpcap).
    public var interface: UInt64
    /// Frames whose bytes could not be read (XDP).
    public var errors: UInt64

    public var frames: UInt64 { ringFull &+ interface &+ errors }

    /// "the XDP capture ring of gw (gw:eth0): 37 frames (ring full)".
    public var text: String {
        var how: [String] = []
        if ringFull > 0 { how.append("\(ringFull) ring full") }
        if interface > 0 { how.append("\(interface) dropped by the interface") }
        if errors > 0 { how.append("\(errors) unreadable") }
        return "\(place): \(frames) frame\(frames == 1 ? "" : "s") lost (\(how.joined(separator: ", ")))"
    }

    /// What every point lost between `before` and `after` (cumulative
    /// readings of the same lab); points with no loss are left out. A point
    /// missing from `before` counts from zero; a counter that went down (a
    /// point reopened) counts its whole value after.
    public static func between(_ before: [CapturePoint], _ after: [CapturePoint]) -> [CaptureLoss] {
        let earlier = Dictionary(before.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        func grew(_ now: UInt64?, _ then: UInt64?) -> UInt64 {
            let now = now ?? 0, then = then ?? 0
            return now >= then ? now - then : now
        }
        return after.compactMap { p in
            let b = earlier[p.key]
            let loss = CaptureLoss(key: p.key, place: p.place, ringFull: grew(p.ringDropped, b?.ringDropped),
                                   interface: grew(p.interfaceDropped, b?.interfaceDropped), errors: grew(p.errors, b?.errors))
            return loss.frames > 0 ? loss : nil
        }
    }

    /// One line naming every point that lost frames, and the total.
    public static func summary(_ losses: [CaptureLoss], during: String = "the checks") -> String {
        let total = losses.reduce(UInt64(0)) { $0 &+ $1.frames }
        return "the capture lost \(total) frame\(total == 1 ? "" : "s") during \(during): "
            + losses.map(\.text).joined(separator: "; ")
    }
}

extension CheckEngine {
    /// A capture that lost frames in the window cannot show a probe's path
    /// in full: every pass or fail resting on it (evidence contains
    /// `.capture`) becomes inconclusive, naming where and how many frames
    /// were lost and what the verdict would have been. Verdicts resting
    /// only on sockets or counters, and errors, stand.
    public static func applyCaptureLoss(_ losses: [CaptureLoss], to outcome: inout CheckOutcome) {
        guard !losses.isEmpty, outcome.evidence.contains(.capture),
              outcome.status == .pass || outcome.status == .fail else { return }
        let was = outcome.status == .pass ? "pass" : "fail"
        let wasSummary = outcome.summary
        outcome.status = .inconclusive
        outcome.summary = "inconclusive: " + CaptureLoss.summary(losses)
        outcome.details.insert("without the lost frames the capture would say: \(was): \(wasSummary)", at: 0)
        outcome.details.insert("what was seen may be incomplete; rerun (a busy machine fills capture rings), "
                               + "or give the capture more room (WIRELAB_CAPTURE_RING_BYTES)", at: 1)
    }
}
