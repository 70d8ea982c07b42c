// Check reports: readable text, JSON for tools, JUnit XML for CI.
import Foundation
import Topology
import Wire

public struct CheckReport: Sendable {
    public var lab: String
    public var file: String
    public var outcomes: [CheckOutcome]
    /// A problem outside any one check (bringing the lab up, tearing it down).
    public var labError: String?

    /// The verb that produced it: "check" (live) or "sim".
    public var verb = "check"

    public init(lab: String, file: String, outcomes: [CheckOutcome], labError: String? = nil) {
        self.lab = lab
        self.file = file
        self.outcomes = outcomes
        self.labError = labError
    }

    public var passed: Int { outcomes.filter { $0.status == .pass }.count }
    public var failed: Int { outcomes.filter { $0.status == .fail }.count }
    public var inconclusive: Int { outcomes.filter { $0.status == .inconclusive }.count }
    public var errors: Int { outcomes.filter { $0.status == .error }.count + (labError == nil ? 0 : 1) }
    /// Exit 0 only if every check ran and passed.
    public var allPassed: Bool { labError == nil && !outcomes.isEmpty && passed == outcomes.count }

    /// The exit status of `check` (and `sim`) for an inconclusive run.
    public static let inconclusiveExitStatus: Int32 = 3

    /// 0: every check passed; 1: any failed or could not run (or there
    /// were none); 3 (`inconclusiveExitStatus`): none failed, but some are
    /// inconclusive (the capture lost frames they rest on).
    public var exitStatus: Int32 {
        if allPassed { return 0 }
        if failed == 0 && errors == 0 && inconclusive > 0 { return Self.inconclusiveExitStatus }
        return 1
    }

    /// "N checks: P passed, F failed, I inconclusive, E errors".
    public var countsLine: String {
        "\(outcomes.count) checks: \(passed) passed, \(failed) failed, \(inconclusive) inconclusive, \(errors) error\(errors == 1 ? "" : "s")"
    }

    // MARK: text

    public func text() -> String {
        var out = "wirelab \(verb) \(file) (lab \(lab)): \(outcomes.count) check\(outcomes.count == 1 ? "" : "s")\n"
        if let labError { out += "ERROR  the lab: \(labError)\n" }
        for o in outcomes {
            let tag: String
            switch o.status {
            case .pass: tag = "PASS "
            case .fail: tag = "FAIL "
            case .inconclusive: tag = "INCONCLUSIVE"
            case .error: tag = "ERROR"
            }
            let evidence = o.evidence.isEmpty ? "" : "; evidence: " + o.evidence.map(\.rawValue).joined(separator: ", ")
            out += "\(tag)  \(o.name)  [\(o.kind), \(o.location), \(String(format: "%.1f", o.seconds)) s\(evidence)]\n"
            out += "       \(o.summary)\n"
            guard o.status != .pass else { continue }
            for line in o.details { out += "       \(line)\n" }
            if let hop = o.failedHop {
                out += "       hop \(hop.number) on link \(hop.linkName), received at \(hop.receiver):\n"
                for f in HopField.allCases { if let v = hop.macText(f) ?? hop.value(f) { out += "         \(f.rawValue) \(v)\n" } }
            }
            if let path = o.path, !path.hops.isEmpty {
                out += "       path of the probe:\n"
                for h in path.hops {
                    let mac = { (f: HopField, owner: String?) in owner ?? h.value(f) ?? "-" }
                    out += "         \(h.number). \(h.direction == .request ? "→" : "←") \(h.sender) → \(h.receiver)  mac \(mac(.srcMAC, h.sourceMACOwner)) → \(mac(.dstMAC, h.destinationMACOwner))  ip \(h.value(.srcIP) ?? "-") → \(h.value(.dstIP) ?? "-")  ttl \(h.value(.ttl) ?? "-")\n"
                }
            }
            if let c = o.capture { out += "       capture: \(c) (open in Wireshark; frames carry 'rx node:iface' comments)\n" }
        }
        out += countsLine + "\n"
        return out
    }

    // MARK: JSON

    struct JSONHop: Encodable {
        var number: Int
        var direction: String
        var link: String
        var sender: String
        var receiver: String
        var fields: [String: String]
        var changed: [String]
        var reason: String
        var timestamp: UInt64
        /// How the sender forwarded it: "slow" or "fast" (`ForwardingPath`).
        var path: String
    }
    struct JSONMismatch: Encodable {
        var field, expected, seen: String
        var seenOwner: String?
        var changedAtHop: Int?
        var changedBy: String?
    }
    struct JSONCheck: Encodable {
        var name, kind, location, status, summary: String
        var details: [String]
        var failedItem: Int?
        var failedHop: Int?
        var failedNode: String?
        var mismatches: [JSONMismatch]
        var hops: [JSONHop]?
        var capture: String?
        var seconds: Double
        /// What the verdict rests on: capture, counters, socket.
        var evidence: [String]
    }
    struct JSONReport: Encodable {
        var lab, file: String
        var passed, failed, inconclusive, errors: Int
        var ok: Bool
        var labError: String?
        var checks: [JSONCheck]
    }

    static func jsonHop(_ h: Hop) -> JSONHop {
        var fields: [String: String] = [:]
        for f in HopField.allCases { if let v = h.value(f) { fields[f.rawValue] = v } }
        if let o = h.sourceMACOwner { fields["src-mac-owner"] = o }
        if let o = h.destinationMACOwner { fields["dst-mac-owner"] = o }
        return JSONHop(number: h.number, direction: h.direction.rawValue, link: h.linkName, sender: h.sender.description,
                       receiver: h.receiver.description, fields: fields, changed: HopField.allCases.filter { h.changed.contains($0) }.map(\.rawValue),
                       reason: h.reason, timestamp: h.timestamp, path: h.path.rawValue)
    }

    public func json() throws -> String {
        let checks = outcomes.map { o in
            JSONCheck(name: o.name, kind: o.kind, location: o.location, status: o.status.rawValue, summary: o.summary,
                      details: o.details, failedItem: o.failedItem, failedHop: o.failedHop?.number, failedNode: o.failedHop?.sender.node,
                      mismatches: o.mismatches.map { JSONMismatch(field: $0.field, expected: $0.expected, seen: $0.seen, seenOwner: $0.seenOwner, changedAtHop: $0.changedAtHop, changedBy: $0.changedBy) },
                      hops: o.path.map { $0.hops.map(Self.jsonHop) }, capture: o.capture, seconds: o.seconds,
                      evidence: o.evidence.map(\.rawValue))
        }
        let report = JSONReport(lab: lab, file: file, passed: passed, failed: failed, inconclusive: inconclusive, errors: errors, ok: allPassed,
                                labError: labError, checks: checks)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    // MARK: JUnit

    static func xml(_ s: String) -> String { Markup.escape(s) }

    /// JUnit XML: one testsuite for the file, one testcase per check.
    public func junit() -> String {
        let total = outcomes.reduce(0) { $0 + $1.seconds }
        let suite = Self.xml(lab)
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"wirelab \(verb)\" tests=\"\(outcomes.count + (labError == nil ? 0 : 1))\" failures=\"\(failed)\" errors=\"\(errors)\" time=\"\(String(format: "%.3f", total))\">\n"
        out += "  <testsuite name=\"\(suite)\" tests=\"\(outcomes.count + (labError == nil ? 0 : 1))\" failures=\"\(failed)\" errors=\"\(errors)\" skipped=\"\(inconclusive)\" time=\"\(String(format: "%.3f", total))\" file=\"\(Self.xml(file))\">\n"
        if let labError {
            out += "    <testcase classname=\"\(suite)\" name=\"lab\" time=\"0\">\n"
            out += "      <error message=\"\(Self.xml(labError))\" type=\"lab\"></error>\n    </testcase>\n"
        }
        for o in outcomes {
            out += "    <testcase classname=\"\(suite)\" name=\"\(Self.xml(o.name))\" time=\"\(String(format: "%.3f", o.seconds))\">\n"
            if !o.evidence.isEmpty {
                out += "      <properties><property name=\"evidence\" value=\"\(o.evidence.map(\.rawValue).joined(separator: ","))\"/></properties>\n"
            }
            let body = ([o.summary] + o.details + (o.capture.map { ["capture: \($0)"] } ?? [])).joined(separator: "\n")
            switch o.status {
            case .pass: break
            case .fail: out += "      <failure message=\"\(Self.xml(o.summary))\" type=\"\(o.kind)\">\(Self.xml(body))</failure>\n"
            case .inconclusive:
                // JUnit has no "inconclusive": skipped is the nearest, and CI
                // tools do not count a skipped test as passed (nor failed).
                out += "      <!-- inconclusive: the capture lost frames this verdict rests on; neither pass nor fail -->\n"
                out += "      <skipped message=\"\(Self.xml(o.summary))\">\(Self.xml(body))</skipped>\n"
            case .error: out += "      <error message=\"\(Self.xml(o.summary))\" type=\"\(o.kind)\">\(Self.xml(body))</error>\n"
            }
            out += "    </testcase>\n"
        }
        out += "  </testsuite>\n</testsuites>\n"
        return out
    }
}
