// The drill report from hand-made observations: gaps, windows, lost
// streams, takeovers and the verdicts' edges. Pure, no lab.
import Foundation
import Testing
@testable import Lab
import Topology
import Wire

@Suite struct DrillReportTests {
    static let here = SourceLocation(file: "t.yaml", line: 3, column: 7)

    static func drill(seconds: Int = 10, clients: Int = 2, streams: Int = 2, events: [(Int, DrillEvent.Action, String)] = [(3000, .fail, "rs1"), (6000, .heal, "rs1")],
                      expect: DrillExpectations = DrillExpectations()) -> Drill {
        Drill(name: "d", load: DrillLoad(from: ["client"], address: IPv4Address("10.0.0.100")!, port: 80, path: "/", clients: clients,
                                         streams: streams, streamInterval: .init(milliseconds: 50), duration: .seconds(seconds),
                                         requestTimeout: .seconds(1)),
              events: events.map { DrillEvent(at: .init(milliseconds: $0.0), action: $0.1, target: .node($0.2), location: here) },
              expect: expect, location: here)
    }

    /// Requests answered every 100 ms from `from` to `to` (end times), by `by`.
    static func answered(_ from: Double, _ to: Double, by: String, client: Int = 0) -> [LoadObservations.Request] {
        stride(from: from, through: to + 1e-9, by: 0.1).map {
            .init(host: "client", client: client, start: $0 - 0.01, end: $0, answered: true, answeredBy: by)
        }
    }

    static func failed(at start: Double, client: Int = 1) -> LoadObservations.Request {
        .init(host: "client", client: client, start: start, end: start + 1, answered: false, answeredBy: nil)
    }

    static func stream(_ n: Int, lost: Double?, by: String) -> LoadObservations.Stream {
        .init(host: "client", stream: n, established: 0.01, lost: lost, answered: 10, longestGap: 0.05, answeredBy: by)
    }

    @Test func theGapAfterAnEventIsMeasuredFromTheLastAnswerBeforeItToTheNextAnswer() {
        // Answers every 100 ms to 2.9 s, none until 3.8 s, then on to the end.
        let o = LoadObservations(requests: Self.answered(0.1, 2.9, by: "rs1") + Self.answered(3.8, 9.9, by: "rs2") + [Self.failed(at: 3.1)],
                                 streams: [Self.stream(0, lost: 3.5, by: "rs1"), Self.stream(1, lost: nil, by: "rs2")], duration: 10)
        let r = DrillReport(drill: Self.drill(), observations: o, applied: [0: 3.02])
        #expect(r.windows.map(\.event) == ["start", "fail rs1", "heal rs1"])
        let fail = r.windows[1]
        #expect(fail.start == 3.02 && fail.planned == 3 && fail.end == 6)
        #expect(abs(fail.interruption! - 0.9) < 1e-9)
        #expect(abs(fail.gapStart! - 2.9) < 1e-9 && abs(fail.gapEnd! - 3.8) < 1e-9)
        #expect(fail.failedRequests == 1)
        #expect(fail.streamsLost == 1)
        #expect(fail.answeredBefore == ["rs1"] && fail.answeredAfter == ["rs2"])
        // The heal's window saw only 100 ms gaps; the start window none worth the name.
        #expect(abs(r.windows[2].interruption! - 0.1) < 1e-6)
        #expect(r.windows[2].streamsLost == 0 && r.windows[2].failedRequests == 0)
        #expect(r.requests == o.requests.count && r.failedRequests == 1 && r.streamsLost == 1 && r.streams == 2)
    }

    @Test func aGapThatNeverEndsRunsToTheEndOfTheLoad() {
        let o = LoadObservations(requests: Self.answered(0.1, 2.9, by: "rs1") + [Self.failed(at: 3.5), Self.failed(at: 5)], duration: 10)
        let r = DrillReport(drill: Self.drill(events: [(3000, .fail, "rs1")], expect: .init(maxInterruption: .seconds(1))), observations: o)
        let fail = r.windows[1]
        #expect(fail.gapEnd == nil)
        #expect(abs(fail.interruption! - 7.1) < 1e-9)
        #expect(r.status == .fail)
        #expect(r.verdicts == [.init(name: "max-interruption", expected: "<= 1s", measured: "7.100 s", status: .fail)])
        #expect(r.windows[1].failedRequests == 2)
    }

    @Test func nothingAnsweredAtAllIsOneGapOverTheWholeLoad() {
        let o = LoadObservations(requests: [Self.failed(at: 0), Self.failed(at: 1)], duration: 4)
        let r = DrillReport(drill: Self.drill(seconds: 4, events: []), observations: o)
        #expect(r.windows.count == 1)
        #expect(r.windows[0].interruption == 4 && r.windows[0].gapStart == 0 && r.windows[0].gapEnd == nil)
        // Without expectations it must not pass: it measured nothing.
        #expect(r.status == .inconclusive && r.problem?.contains("was ever answered") == true)
        // One answered stream message is enough to judge.
        var one = o
        one.streams = [Self.stream(0, lost: 2, by: "rs1")]
        #expect(DrillReport(drill: Self.drill(seconds: 4, events: []), observations: one).status == .pass)
    }

    @Test func verdictsPassAtTheLimitAndFailJustAboveIt() {
        let o = LoadObservations(requests: Self.answered(0.1, 2.9, by: "a") + Self.answered(3.9, 9.9, by: "a") + [Self.failed(at: 3), Self.failed(at: 3.2)],
                                 streams: [Self.stream(0, lost: 3.3, by: "a"), Self.stream(1, lost: 9, by: "a")], duration: 10)
        let atLimit = DrillReport(drill: Self.drill(expect: .init(maxInterruption: .seconds(1), maxFailedRequests: 2, establishedLost: 2)),
                                  observations: o)
        #expect(atLimit.verdicts.map(\.status) == [.pass, .pass, .pass], "\(atLimit.verdicts)")
        #expect(atLimit.status == .pass)
        let below = DrillReport(drill: Self.drill(expect: .init(maxInterruption: .init(milliseconds: 999), maxFailedRequests: 1, establishedLost: 1)),
                                observations: o)
        #expect(below.verdicts.map(\.status) == [.fail, .fail, .fail])
        #expect(below.verdicts.map(\.measured) == ["1.000 s", "2", "2"])
        #expect(below.status == .fail)
    }

    @Test func streamsLostAreCountedInTheWindowTheyWereLostIn() {
        let o = LoadObservations(requests: Self.answered(0.1, 9.9, by: "a"),
                                 streams: [Self.stream(0, lost: 1, by: "a"), Self.stream(1, lost: 3.0, by: "a"), Self.stream(2, lost: 7, by: "a"),
                                           Self.stream(3, lost: 10, by: "a"), Self.stream(4, lost: nil, by: "a")],
                                 duration: 10)
        let r = DrillReport(drill: Self.drill(streams: 5), observations: o)
        #expect(r.windows.map(\.streamsLost) == [1, 1, 2])
        #expect(r.windows[2].streamsLostByServer == ["a": 2])
        #expect(r.streamsLost == 4)
    }

    @Test func takeoversFromTheCallerNameWhoTookOver() {
        let o = LoadObservations(requests: Self.answered(0.1, 9.9, by: "rs2"), duration: 10)
        let r = DrillReport(drill: Self.drill(), observations: o, takeovers: [0: "lvs2 (VRRP master)"])
        #expect(r.windows.map(\.takeover) == [nil, "lvs2 (VRRP master)", nil])
    }

    @Test func aLoadWithoutRequestLoopsCannotJudgeTheInterruption() {
        let o = LoadObservations(streams: [Self.stream(0, lost: nil, by: "a")], duration: 10)
        let r = DrillReport(drill: Self.drill(clients: 0, streams: 1, expect: .init(maxInterruption: .seconds(1), establishedLost: 0)),
                            observations: o)
        #expect(r.windows.allSatisfy { $0.interruption == nil })
        #expect(r.verdicts.map(\.status) == [.inconclusive, .pass])
        #expect(r.status == .inconclusive)
    }

    @Test func theRunReportCountsAndExitsAsCheckDoes() throws {
        let o = LoadObservations(requests: Self.answered(0.1, 9.9, by: "rs1"), duration: 10)
        let pass = DrillReport(drill: Self.drill(expect: .init(maxFailedRequests: 0)), observations: o)
        let fail = DrillReport(drill: Self.drill(expect: .init(maxInterruption: .init(milliseconds: 50))), observations: o)
        let stuck = DrillReport.inconclusive(Self.drill(), problem: "the load did not start on client: no such file")
        #expect(DrillRunReport(lab: "l", file: "f", drills: [pass]).exitStatus == 0)
        #expect(DrillRunReport(lab: "l", file: "f", drills: [pass, stuck]).exitStatus == 3)
        #expect(DrillRunReport(lab: "l", file: "f", drills: [pass, stuck, fail]).exitStatus == 1)
        #expect(DrillRunReport(lab: "l", file: "f", drills: []).exitStatus == 1)
        #expect(DrillRunReport(lab: "l", file: "f", drills: [pass], labError: "up failed").exitStatus == 1)
        let run = DrillRunReport(lab: "l", file: "f", drills: [pass, stuck, fail])
        let text = run.text()
        #expect(text.contains("PASS  d") && text.contains("FAIL  d") && text.contains("INCONCLUSIVE  d"))
        #expect(text.contains("LONGEST GAP") && text.hasSuffix("3 drills: 1 passed, 1 failed, 1 inconclusive\n"))
        let json = try #require(JSONSerialization.jsonObject(with: Data(try run.json().utf8)) as? [String: Any])
        #expect(json["failed"] as? Int == 1 && json["ok"] as? Bool == false)
        #expect(((json["drills"] as? [[String: Any]])?.first?["windows"] as? [Any])?.count == 3)
        let junit = run.junit()
        #expect(junit.contains("<failure message=\"max-interruption &lt;= 50ms: measured 0.100 s\""))
        #expect(junit.contains("<skipped message=\"inconclusive: the load did not start on client: no such file\""))
        #expect(run.html().contains("<table>"))
    }
}
