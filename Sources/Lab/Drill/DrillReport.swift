// What a drill showed, computed from its load's observations alone — the
// same code for a live run (`drill`, `check`) and a simulated one (`sim`),
// so both report alike. Pure: no clock, no I/O.
import Foundation
import Topology

/// One drill's result: per event, the longest gap between answered
/// requests, the requests that failed and the long-lived connections lost
/// in its window; over the drill, totals and the expectations' verdicts.
public struct DrillReport: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case pass, fail
        /// The drill could not be measured (its load did not start).
        case inconclusive
    }

    /// The time from an event to the next one (or the load's end).
    public struct Window: Codable, Sendable, Equatable {
        /// "fail rs1", "heal gw:eth1"; "start" for the time before the first event.
        public var event: String
        /// When the file says it happens (seconds since the load started; nil for "start").
        public var planned: Double?
        /// When it was applied (the window starts here).
        public var start: Double
        public var end: Double
        /// The longest time without an answered request that overlaps the
        /// window: from the last answer before the gap to the next answer,
        /// over all clients (nil: the load has no request loops).
        public var interruption: Double?
        /// Where that gap begins and ends; `gapEnd` nil: no answer came
        /// again before the load ended (the gap is counted to the end).
        public var gapStart: Double?
        public var gapEnd: Double?
        /// Requests started in the window, and how many of them failed.
        public var requests: Int
        public var failedRequests: Int
        /// Long-lived connections lost in the window.
        public var streamsLost: Int
        /// Those by the server that answered them last ("-": none ever did).
        public var streamsLostByServer: [String: Int]
        /// Who took over after the event: the caller's word (e.g. the new
        /// VRRP master), else nil.
        public var takeover: String?
        /// Servers that answered in the window before, and in this one
        /// after its gap.
        public var answeredBefore: [String]
        public var answeredAfter: [String]
    }

    /// One expectation of `expect:` and what was measured.
    public struct Verdict: Codable, Sendable, Equatable {
        /// "max-interruption", "max-failed-requests", "established-lost".
        public var name: String
        public var expected: String
        public var measured: String
        public var status: Status
    }

    public var drill: String
    /// Where the drill is written (file:line:column).
    public var location: String
    public var status: Status
    /// Why the drill is inconclusive (or what else went wrong).
    public var problem: String?
    /// Seconds the load ran.
    public var duration: Double
    public var requests: Int
    public var answeredRequests: Int
    public var failedRequests: Int
    public var streams: Int
    public var streamsLost: Int
    /// The first window is "start" (before the first event), then one per event.
    public var windows: [Window]
    public var verdicts: [Verdict]

    /// A drill that could not be measured.
    public static func inconclusive(_ drill: Drill, problem: String) -> DrillReport {
        DrillReport(drill: drill.name, location: drill.location.description, status: .inconclusive, problem: problem, duration: 0,
                    requests: 0, answeredRequests: 0, failedRequests: 0, streams: 0, streamsLost: 0, windows: [], verdicts: [])
    }

    /// Computes the report.
    /// - applied: when each event was actually applied (seconds since the
    ///   load started), by event index; missing ones are taken as planned.
    /// - takeovers: who took over after each event, by event index (the
    ///   live runner fills it from VRRP state; nil entries fall back to the
    ///   servers answering before and after).
    public init(drill: Drill, observations o: LoadObservations, applied: [Int: Double] = [:], takeovers: [Int: String] = [:]) {
        self.drill = drill.name
        location = drill.location.description
        duration = o.duration
        requests = o.requests.count
        answeredRequests = o.requests.filter(\.answered).count
        failedRequests = requests - answeredRequests
        streams = o.streams.count
        streamsLost = o.streams.filter { $0.lost != nil }.count
        problem = nil

        // Window boundaries: start, each event as applied, the end.
        var starts: [Double] = [0]
        var names = ["start"]
        var planned: [Double?] = [nil]
        for (i, e) in drill.events.enumerated() {
            starts.append(min(max(applied[i] ?? e.at.seconds, 0), o.duration))
            names.append("\(e.action.rawValue) \(e.target)")
            planned.append(e.at.seconds)
        }
        let answers = o.requests.filter(\.answered).map(\.end).sorted()
        let hasLoops = drill.load.clients > 0 || !o.requests.isEmpty
        var windows: [Window] = []
        for w in 0..<starts.count {
            let start = starts[w], end = w + 1 < starts.count ? starts[w + 1] : o.duration
            let started = o.requests.filter { $0.start >= start && ($0.start < end || (w + 1 == starts.count && $0.start <= end)) }
            let gap = hasLoops ? Self.longestGap(answers, window: w, starts: starts, duration: o.duration) : nil
            let previousStart = w > 0 ? starts[w - 1] : 0
            let before = Set(o.requests.filter { $0.answered && $0.end >= previousStart && $0.end < start }.compactMap(\.answeredBy))
            // (The start window: everything answered in it; after an event: after its gap.)
            let afterFrom = w == 0 ? start : gap?.end ?? start
            let after = Set(o.requests.filter { $0.answered && $0.end >= afterFrom && $0.end <= end }.compactMap(\.answeredBy))
            let lost = o.streams.filter { s in s.lost.map { $0 >= start && ($0 < end || w + 1 == starts.count) } ?? false }
            windows.append(Window(event: names[w], planned: planned[w], start: start, end: end,
                                  interruption: gap.map { ($0.end ?? o.duration) - $0.start }, gapStart: gap?.start, gapEnd: gap?.end,
                                  requests: started.count, failedRequests: started.filter { !$0.answered }.count,
                                  streamsLost: lost.count,
                                  streamsLostByServer: Dictionary(grouping: lost, by: { $0.answeredBy ?? "-" }).mapValues(\.count),
                                  takeover: w > 0 ? takeovers[w - 1] : nil,
                                  answeredBefore: w > 0 ? before.sorted() : [], answeredAfter: after.sorted()))
        }
        self.windows = windows

        var verdicts: [Verdict] = []
        if let limit = drill.expect.maxInterruption {
            // After events; a drill without events is judged over the whole load.
            let judged = windows.count > 1 ? Array(windows.dropFirst()) : windows
            if !hasLoops {
                verdicts.append(Verdict(name: "max-interruption", expected: "<= \(limit)", measured: "no request loops to measure it",
                                        status: .inconclusive))
            } else {
                let worst = judged.compactMap(\.interruption).max() ?? 0
                verdicts.append(Verdict(name: "max-interruption", expected: "<= \(limit)", measured: Self.seconds(worst),
                                        status: worst <= limit.seconds ? .pass : .fail))
            }
        }
        if let limit = drill.expect.maxFailedRequests {
            verdicts.append(Verdict(name: "max-failed-requests", expected: "<= \(limit)", measured: String(failedRequests),
                                    status: failedRequests <= limit ? .pass : .fail))
        }
        if let limit = drill.expect.establishedLost {
            verdicts.append(Verdict(name: "established-lost", expected: "<= \(limit)", measured: String(streamsLost),
                                    status: streamsLost <= limit ? .pass : .fail))
        }
        self.verdicts = verdicts
        let answeredMessages = o.streams.reduce(0) { $0 + $1.answered }
        if verdicts.contains(where: { $0.status == .fail }) { status = .fail }
        else if requests + streams > 0 && answeredRequests == 0 && answeredMessages == 0 {
            // Nothing ever answered: the service never worked, so the drill
            // says nothing about its events (and must not pass for lack of
            // expectations).
            status = .inconclusive
            problem = "nothing of the load was ever answered: the service does not work even before the events (try `wirelab walk` from a load host)"
        }
        else if verdicts.contains(where: { $0.status == .inconclusive }) { status = .inconclusive }
        else { status = .pass }
    }

    init(drill: String, location: String, status: Status, problem: String?, duration: Double, requests: Int, answeredRequests: Int,
         failedRequests: Int, streams: Int, streamsLost: Int, windows: [Window], verdicts: [Verdict]) {
        self.drill = drill
        self.location = location
        self.status = status
        self.problem = problem
        self.duration = duration
        self.requests = requests
        self.answeredRequests = answeredRequests
        self.failedRequests = failedRequests
        self.streams = streams
        self.streamsLost = streamsLost
        self.windows = windows
        self.verdicts = verdicts
    }

    /// The longest gap between consecutive answers (sorted times) that
    /// belongs to window `w` (windows begin at `starts`): a gap belongs to
    /// the first event that happened during it — the gap an event causes
    /// starts at the last answer before it and may last past the next
    /// event (a heal) — and a gap with no event in it to the window it
    /// starts in. A gap before the first answer starts at 0, one after the
    /// last runs to `duration` (end nil: no answer came again).
    static func longestGap(_ answers: [Double], window w: Int, starts: [Double], duration: Double) -> (start: Double, end: Double?)? {
        func owner(_ start: Double, _ stop: Double) -> Int {
            if let k = starts.indices.dropFirst().first(where: { starts[$0] > start && starts[$0] < stop }) { return k }
            return starts.lastIndex { $0 <= start } ?? 0
        }
        var best: (start: Double, end: Double?)?
        var bestLength = -1.0
        func consider(_ start: Double, _ end: Double?) {
            let stop = end ?? duration
            guard owner(start, stop) == w, stop - start > bestLength else { return }
            best = (start, end)
            bestLength = stop - start
        }
        var previous = 0.0
        for a in answers {
            consider(previous, a)
            previous = a
        }
        consider(previous, nil)
        return best
    }

    static func seconds(_ s: Double) -> String { String(format: "%.3f s", s) }
}

/// Every drill of one run (`wirelab drill`, the drill part of `check`/`sim`).
public struct DrillRunReport: Codable, Sendable {
    public var lab: String
    public var file: String
    /// "drill", "check" or "sim".
    public var verb: String
    public var drills: [DrillReport]
    /// A problem outside any one drill (bringing the lab up).
    public var labError: String?

    public init(lab: String, file: String, verb: String = "drill", drills: [DrillReport], labError: String? = nil) {
        self.lab = lab
        self.file = file
        self.verb = verb
        self.drills = drills
        self.labError = labError
    }

    public var passed: Int { drills.filter { $0.status == .pass }.count }
    public var failed: Int { drills.filter { $0.status == .fail }.count }
    public var inconclusive: Int { drills.filter { $0.status == .inconclusive }.count }

    /// As `check`: 0 every drill passed; 1 any failed (or the lab did not
    /// come up, or there were none); 3 none failed but some are inconclusive.
    public var exitStatus: Int32 {
        if labError != nil || drills.isEmpty || failed > 0 { return 1 }
        return inconclusive > 0 ? CheckReport.inconclusiveExitStatus : 0
    }

    public var countsLine: String {
        "\(drills.count) drill\(drills.count == 1 ? "" : "s"): \(passed) passed, \(failed) failed, \(inconclusive) inconclusive"
    }

    static func tag(_ s: DrillReport.Status) -> String {
        switch s {
        case .pass: "PASS"
        case .fail: "FAIL"
        case .inconclusive: "INCONCLUSIVE"
        }
    }

    static func ms(_ s: Double?) -> String { s.map { String(format: "%.0f ms", $0 * 1000) } ?? "-" }
    static func at(_ s: Double) -> String { String(format: "%.2f s", s) }

    /// "2 (rs1 2)": how many streams were lost, by the server they were on.
    static func lost(_ w: DrillReport.Window) -> String {
        w.streamsLost == 0 ? "0" : "\(w.streamsLost) (" + w.streamsLostByServer.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }

    /// The windows of one drill as a table.
    static func table(_ d: DrillReport) -> String {
        let rows = d.windows.map { w -> [String] in
            let gap = w.interruption.map { ms($0) + (w.gapEnd == nil ? " (no answer again)" : "") } ?? "-"
            let servers = w.event == "start" ? w.answeredAfter.joined(separator: " ")
                : "\(w.answeredBefore.joined(separator: " ")) → \(w.answeredAfter.joined(separator: " "))"
            return [w.event, w.planned.map(at) ?? "", at(w.start), gap, "\(w.failedRequests)/\(w.requests)", lost(w),
                    w.takeover ?? "-", servers]
        }
        return TextTable.render(["EVENT", "PLANNED", "APPLIED", "LONGEST GAP", "FAILED/REQUESTS", "STREAMS LOST", "TOOK OVER", "ANSWERING"], rows)
    }

    public func text() -> String {
        var out = "wirelab \(verb) \(file) (lab \(lab)): \(drills.count) drill\(drills.count == 1 ? "" : "s")\n"
        if let labError { out += "ERROR  the lab: \(labError)\n" }
        for d in drills {
            out += "\n\(Self.tag(d.status))  \(d.drill)  [\(d.location)]\n"
            if let problem = d.problem { out += "  \(problem)\n" }
            if d.windows.isEmpty { continue }
            out += String(format: "  %.1f s of load: %d requests, %d failed; %d long-lived connections, %d lost\n",
                          d.duration, d.requests, d.failedRequests, d.streams, d.streamsLost)
            out += Self.table(d).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
            for v in d.verdicts {
                out += "  \(Self.tag(v.status).padding(toLength: 12, withPad: " ", startingAt: 0)) \(v.name) \(v.expected): measured \(v.measured)\n"
            }
        }
        out += "\n" + countsLine + "\n"
        return out
    }

    public func json() throws -> String {
        struct Document: Encodable {
            var lab: String, file: String, verb: String, passed: Int, failed: Int, inconclusive: Int, ok: Bool
            var labError: String?
            var drills: [DrillReport]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(Document(lab: lab, file: file, verb: verb, passed: passed, failed: failed,
                                                            inconclusive: inconclusive, ok: exitStatus == 0, labError: labError,
                                                            drills: drills)), as: UTF8.self)
    }

    /// JUnit XML: one testcase per drill (inconclusive as skipped, as checks do).
    public func junit() -> String {
        let errors = labError == nil ? 0 : 1
        let total = drills.reduce(0) { $0 + $1.duration }
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"wirelab \(Markup.escape(verb)) drills\" tests=\"\(drills.count + errors)\" failures=\"\(failed)\" errors=\"\(errors)\" time=\"\(String(format: "%.3f", total))\">\n"
        out += junitSuite()
        out += "</testsuites>\n"
        return out
    }

    /// The `<testsuite>` element alone (`check` adds it to its own document).
    public func junitSuite() -> String {
        let x = Markup.escape
        let errors = labError == nil ? 0 : 1
        let total = drills.reduce(0) { $0 + $1.duration }
        var out = "  <testsuite name=\"\(x(lab)) drills\" tests=\"\(drills.count + errors)\" failures=\"\(failed)\" errors=\"\(errors)\" skipped=\"\(inconclusive)\" time=\"\(String(format: "%.3f", total))\" file=\"\(x(file))\">\n"
        if let labError {
            out += "    <testcase classname=\"\(x(lab)).drills\" name=\"lab\" time=\"0\">\n      <error message=\"\(x(labError))\" type=\"lab\"></error>\n    </testcase>\n"
        }
        for d in drills {
            out += "    <testcase classname=\"\(x(lab)).drills\" name=\"\(x(d.drill))\" time=\"\(String(format: "%.3f", d.duration))\">\n"
            let failing = d.verdicts.filter { $0.status != .pass }.map { "\($0.name) \($0.expected): measured \($0.measured)" }
            let message = d.problem ?? failing.joined(separator: "; ")
            let body = Self.table(d)
            switch d.status {
            case .pass: break
            case .fail: out += "      <failure message=\"\(x(message))\" type=\"drill\">\(x(body))</failure>\n"
            case .inconclusive: out += "      <skipped message=\"inconclusive: \(x(message))\">\(x(body))</skipped>\n"
            }
            out += "      <system-out>\(x(body))</system-out>\n    </testcase>\n"
        }
        out += "  </testsuite>\n"
        return out
    }

    /// One self-contained page, in the style of `check --html`.
    public func html() -> String {
        let title = "wirelab \(verb) \(file) (lab \(lab)): drills"
        return HTMLPage.document(title: title, body: "<h1>\(Markup.escape(title))</h1>\n" + htmlSections())
    }

    /// The drills' sections alone (`check --html` adds them to its page).
    public func htmlSections() -> String {
        let x = Markup.escape
        var body = "<p class=\"summary\">\(x(countsLine))</p>\n"
        if let labError { body += "<section class=\"check error\"><p><span class=\"verdict\">ERROR</span> the lab: \(x(labError))</p></section>\n" }
        for d in drills {
            body += "<section class=\"check \(d.status.rawValue)\">\n<h2><span class=\"verdict\">\(Self.tag(d.status))</span> \(x(d.drill))</h2>\n"
            body += "<p>drill at \(x(d.location))</p>\n"
            if let problem = d.problem { body += "<p class=\"found\">\(x(problem))</p>\n" }
            if !d.windows.isEmpty {
                body += String(format: "<p>%.1f s of load: %d requests, %d failed; %d long-lived connections, %d lost</p>\n",
                               d.duration, d.requests, d.failedRequests, d.streams, d.streamsLost)
                body += "<table><tr><th>event</th><th>planned</th><th>applied</th><th>longest gap</th><th>failed/requests</th><th>streams lost</th><th>took over</th><th>answering before → after</th></tr>\n"
                for w in d.windows {
                    let gap = w.interruption.map { Self.ms($0) + (w.gapEnd == nil ? " (no answer again)" : "") } ?? "-"
                    body += "<tr><td>\(x(w.event))</td><td>\(w.planned.map(Self.at) ?? "")</td><td>\(Self.at(w.start))</td><td>\(x(gap))</td>"
                    body += "<td>\(w.failedRequests)/\(w.requests)</td><td>\(x(Self.lost(w)))</td><td>\(x(w.takeover ?? "-"))</td>"
                    body += "<td>\(x(w.answeredBefore.joined(separator: " "))) → \(x(w.answeredAfter.joined(separator: " ")))</td></tr>\n"
                }
                body += "</table>\n"
            }
            if !d.verdicts.isEmpty {
                body += "<table><tr><th>expectation</th><th>expected</th><th>measured</th><th>verdict</th></tr>\n"
                for v in d.verdicts {
                    body += "<tr class=\"\(v.status.rawValue)\"><td>\(x(v.name))</td><td>\(x(v.expected))</td><td>\(x(v.measured))</td><td>\(Self.tag(v.status))</td></tr>\n"
                }
                body += "</table>\n"
            }
            body += "</section>\n"
        }
        return body
    }
}
