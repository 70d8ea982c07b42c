// Verdicts: a check's expectations against the probe's path, drop counters
// and answers. Pure: unit-tested from hand-built observation lists.
import Topology
import Wire

/// One field that did not match at one hop.
public struct FieldMismatch: Sendable, Hashable {
    public var field: String
    public var expected: String
    public var seen: String
    /// The hop (and its sender) where the field took the value seen, if it
    /// changed on the way.
    public var changedAtHop: Int?
    public var changedBy: String?
    /// For a MAC: the interface that owns the MAC seen, if any.
    public var seenOwner: String?
}

/// What a verdict rests on.
public enum Evidence: String, Sendable, CaseIterable {
    /// The frames recorded on the links (the probe's path, hop by hop).
    case capture
    /// A node's drop counters, read before and after.
    case counters
    /// What the sending host's socket got back (answers, replies, a connection).
    case socket

    /// In a sentence.
    public var explanation: String {
        switch self {
        case .capture: "the captures of every link (the probe's frames, hop by hop)"
        case .counters: "the drop counters of the node named"
        case .socket: "what the sending host's socket got back"
        }
    }
}

/// The verdict on one check.
public struct CheckOutcome: Sendable {
    /// `inconclusive`: the verdict rests on a capture that lost frames in
    /// the check's window, so neither pass nor fail can be told.
    public enum Status: String, Sendable { case pass, fail, inconclusive, error }
    public var name: String
    /// "send", "http", "ping" or "reach".
    public var kind: String
    public var location: String
    public var status: Status
    /// One line: what was found.
    public var summary: String
    /// Further lines: expected vs seen, hop by hop.
    public var details: [String] = []
    /// For a failed `expect` item: which item, which hop, which fields.
    public var failedItem: Int?
    public var failedHop: Hop?
    public var mismatches: [FieldMismatch] = []
    public var path: ProbePath?
    /// What the verdict rests on, in the order it was consulted.
    public var evidence: [Evidence] = []
    /// The capture to open.
    public var capture: String?
    public var seconds: Double = 0
}

public enum CheckEngine {
    /// Compares one expectation with one hop's frame; the fields that differ.
    public static func mismatches(_ e: HopExpectation, _ f: FrameFields) -> [FieldMismatch] {
        var out: [FieldMismatch] = []
        func cmp(_ field: HopField, _ expected: String?, label: String? = nil) {
            guard let expected else { return }
            let seen = f.value(field) ?? "none"
            if seen != expected { out.append(FieldMismatch(field: field.rawValue, expected: label ?? expected, seen: seen)) }
        }
        if let m = e.srcMAC {
            if f.sourceMAC != m.address { out.append(FieldMismatch(field: "src-mac", expected: m.description, seen: f.sourceMAC.description)) }
        }
        if let m = e.dstMAC {
            if f.destinationMAC != m.address { out.append(FieldMismatch(field: "dst-mac", expected: m.description, seen: f.destinationMAC.description)) }
        }
        cmp(.srcIP, e.srcIP?.description)
        cmp(.dstIP, e.dstIP?.description)
        cmp(.srcPort, e.srcPort.map(String.init))
        cmp(.dstPort, e.dstPort.map(String.init))
        cmp(.proto, e.proto?.rawValue)
        cmp(.ttl, e.ttl.map(String.init))
        cmp(.innerSrcIP, e.innerSrcIP?.description)
        cmp(.innerDstIP, e.innerDstIP?.description)
        return out
    }

    /// The endpoints of link `index`.
    static func ends(_ topology: ResolvedTopology, _ index: Int) -> [Endpoint] {
        [topology.links[index].a, topology.links[index].b]
    }

    /// Matches `expect:` items in order against the path: each item is the
    /// NEXT frame of the probe or its reply, after the previous item's, that
    /// crosses the link of one of its `at` interfaces, and that frame must
    /// match every field given. Strict on purpose: a later frame on the same
    /// link (the reply, a retransmission) never stands in for the one that
    /// differs.
    public static func evaluateHops(_ items: [HopExpectation], path: ProbePath, topology: ResolvedTopology,
                                    into outcome: inout CheckOutcome) {
        var cursor = 0
        outcome.path = path
        guard !path.hops.isEmpty else {
            outcome.status = .fail
            outcome.summary = "the probe was not seen on any link"
            outcome.details.append("nothing in the capture carries the probe's marker; was it sent? (see the capture)")
            return
        }
        for (i, item) in items.enumerated() {
            let at = item.at.map(\.description).joined(separator: " | ")
            let candidates = path.hops[cursor...].filter { h in ends(topology, h.link).contains { item.at.contains($0) } }
            if let hit = candidates.first, mismatches(item, hit.fields).isEmpty {
                outcome.details.append("expect #\(i + 1) at \(at): ok at hop \(hit.number) (\(hit.sender) → \(hit.receiver))")
                cursor = hit.number   // hop numbers are 1-based positions
                continue
            }
            outcome.status = .fail
            outcome.failedItem = i + 1
            guard let first = candidates.first else {
                let seenEarlier = path.hops[..<cursor].contains { h in ends(topology, h.link).contains { item.at.contains($0) } }
                outcome.summary = "expect #\(i + 1): the probe was never seen at \(at)" + (seenEarlier ? " after hop \(cursor)" : "")
                outcome.details.append("expected at \(at) (line \(item.location.line)); the probe crossed: "
                                       + path.hops.map { "\($0.number). \($0.sender)→\($0.receiver)" }.joined(separator: ", "))
                return
            }
            var diff = mismatches(item, first.fields)
            for k in diff.indices {
                guard let f = HopField(rawValue: diff[k].field) else { continue }
                if let h = path.lastChange(of: f, before: first) {
                    diff[k].changedAtHop = h.number
                    diff[k].changedBy = h.sender.node
                }
                if f == .srcMAC { diff[k].seenOwner = first.sourceMACOwner }
                if f == .dstMAC { diff[k].seenOwner = first.destinationMACOwner }
            }
            outcome.failedHop = first
            outcome.mismatches = diff
            let fields = diff.map(\.field).joined(separator: ", ")
            outcome.summary = "expect #\(i + 1) at \(at): hop \(first.number) (\(first.sender) → \(first.receiver), sent by \(first.sender.node)) differs in \(fields)"
            for m in diff {
                let since = m.changedBy.map { " (set by \($0) at hop \(m.changedAtHop!))" }
                    ?? " (as \(path.origin(of: first).sender.node) sent it)"
                let seen = m.seenOwner.map { "\($0) (\(m.seen))" } ?? m.seen
                outcome.details.append("  \(m.field): expected \(m.expected), seen \(seen)\(since)")
            }
            outcome.details.append("  why: \(first.reason)")
            return
        }
        outcome.status = .pass
        outcome.summary = "\(items.count) hop expectation(s) met over \(path.request.count) request and \(path.reply.count) reply frame(s)"
    }

    /// "no route" / "no-route" / "No_Route" all name the counter "no-route".
    static func normalize(_ reason: String) -> String {
        reason.lowercased().map { $0 == " " || $0 == "_" ? "-" : $0 }.reduce(into: "") { $0.append($1) }
    }

    /// `dropped at NODE (reason)`: the probe entered NODE and never left it
    /// (when a path is known), and NODE's counter for the reason went up.
    public static func evaluateDrop(_ e: DropExpectation, path: ProbePath?, before: NodeDropCounters, after: NodeDropCounters,
                                    into outcome: inout CheckOutcome) {
        if let path {
            outcome.path = path
            outcome.addEvidence(.capture)
            let entered = path.request.filter { $0.receiver.node == e.node }
            guard let firstIn = entered.first else {
                outcome.status = .fail
                let last = path.request.last.map { "last seen \($0.sender) → \($0.receiver) (hop \($0.number))" } ?? "never seen at all"
                outcome.summary = "expected dropped at \(e.node), but the probe never reached \(e.node); \(last)"
                return
            }
            if let left = path.request.first(where: { $0.sender.node == e.node && $0.number > firstIn.number }) {
                outcome.status = .fail
                outcome.failedHop = left
                outcome.summary = "expected dropped at \(e.node), but \(e.node) forwarded it: hop \(left.number) \(left.sender) → \(left.receiver)"
                outcome.details.append("  why: \(left.reason)")
                return
            }
            outcome.details.append("entered \(e.node) at \(firstIn.receiver) (hop \(firstIn.number)) and never left")
        }
        guard let countersAfter = after[e.node] else {
            if let reason = e.reason {
                outcome.status = .error
                outcome.summary = "\(e.node) counts no drops (a kernel node): cannot confirm the reason '\(reason)'"
            } else if path == nil {
                outcome.status = .error
                outcome.summary = "\(e.node) counts no drops and the probe has no marker to follow: cannot confirm the drop"
            } else {
                outcome.status = .pass
                outcome.summary = "dropped at \(e.node) (seen entering, never leaving; \(e.node) counts no drop reasons)"
            }
            return
        }
        outcome.addEvidence(.counters)
        let countersBefore = before[e.node] ?? [:]
        let grew = countersAfter.filter { $0.value > countersBefore[$0.key, default: 0] }
            .map { ($0.key, $0.value - countersBefore[$0.key, default: 0]) }.sorted { $0.0 < $1.0 }
        let grewText = grew.isEmpty ? "none" : grew.map { "\($0.0) +\($0.1)" }.joined(separator: ", ")
        if let reason = e.reason {
            let want = normalize(reason)
            if let hit = grew.first(where: { $0.0 == want || $0.0.hasPrefix(want + ":") || $0.0.hasSuffix(":" + want) }) {
                outcome.status = .pass
                outcome.summary = "dropped at \(e.node) (\(hit.0) +\(hit.1))"
            } else {
                outcome.status = .fail
                outcome.summary = "expected dropped at \(e.node) (\(reason)), but its '\(want)' counter did not go up"
                outcome.details.append("  drop counters of \(e.node) that went up: \(grewText)")
            }
        } else if grew.isEmpty {
            outcome.status = .fail
            outcome.summary = "expected dropped at \(e.node), but none of its drop counters went up"
        } else {
            outcome.status = .pass
            outcome.summary = "dropped at \(e.node) (\(grewText))"
        }
    }
}

extension CheckOutcome {
    mutating func addEvidence(_ e: Evidence) {
        if !evidence.contains(e) { evidence.append(e) }
    }
}
