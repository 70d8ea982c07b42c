import Bench
import Foundation
import Testing

/// `wirelab bench ci`'s comparison: recorded figure and measured ratio in,
/// pass, fail or skip out. Nothing here is timed.
struct CIRatiosTests {
    @Test func passesDownTo70PercentOfTheFigureAndFailsBelow() {
        #expect(CIRatios.judge(recorded: 1.0, measured: .ratio(1.4)) == .pass)
        #expect(CIRatios.judge(recorded: 1.0, measured: .ratio(1.0)) == .pass)
        #expect(CIRatios.judge(recorded: 1.0, measured: .ratio(0.7)) == .pass)
        #expect(CIRatios.judge(recorded: 1.0, measured: .ratio(0.699)) == .fail)
        #expect(CIRatios.judge(recorded: 0.93, measured: .ratio(0.66)) == .pass)
        #expect(CIRatios.judge(recorded: 0.93, measured: .ratio(0.64)) == .fail)
        #expect(CIRatios.judge(recorded: 2.5, measured: .ratio(0.1)) == .fail)
    }

    @Test func skipsWhatWasNotMeasuredOrHasNoFigure() {
        #expect(CIRatios.judge(recorded: 1.0, measured: .skipped("generator-bound")) == .skip("generator-bound"))
        #expect(CIRatios.judge(recorded: nil, measured: .ratio(0.01)) == .skip("no recorded figure"))
        if case .skip = CIRatios.judge(recorded: 1.0, measured: .ratio(.nan)) {} else { Issue.record("NaN must not pass or fail") }
        if case .skip = CIRatios.judge(recorded: 0, measured: .ratio(0.5)) {} else { Issue.record("a zero figure must not judge") }
    }

    /// A low measurement is measured again; the ratio fails only when
    /// `confirmations` measurements are all low, and retries that are
    /// skipped leave it unconfirmed.
    @Test func aFailNeedsEveryConfirmationLow() {
        let n = CIRatios.confirmations
        #expect(n >= 2)
        let low = [CIRatios.Measured](repeating: .ratio(0.5), count: n)
        #expect(CIRatios.needsAnotherAttempt(recorded: 1.0, [.ratio(0.5)]))
        #expect(!CIRatios.needsAnotherAttempt(recorded: 1.0, [.ratio(0.9)]))
        #expect(CIRatios.needsAnotherAttempt(recorded: 1.0, Array(low.dropLast())))
        #expect(!CIRatios.needsAnotherAttempt(recorded: 1.0, low))
        #expect(!CIRatios.needsAnotherAttempt(recorded: 1.0, [.ratio(0.5), .ratio(0.95)]))
        #expect(CIRatios.needsAnotherAttempt(recorded: 1.0, [.ratio(0.5), .skipped("generator-bound")]))
        // Attempts end even when they keep being skipped.
        let skippedRetries = [.ratio(0.5)] + [CIRatios.Measured](repeating: .skipped("g"), count: n)
        #expect(!CIRatios.needsAnotherAttempt(recorded: 1.0, skippedRetries))
        #expect(!CIRatios.needsAnotherAttempt(recorded: 1.0, [.skipped("generator-bound")]))

        #expect(CIRatios.Line(name: "r", recorded: 1.0, attempts: low).outcome == .fail)
        #expect(CIRatios.Line(name: "r", recorded: 1.0, attempts: Array(low.dropLast()) + [.ratio(0.95)]).outcome == .pass)
        if case .skip(let why) = CIRatios.Line(name: "r", recorded: 1.0, attempts: skippedRetries).outcome {
            #expect(why.contains("not confirmed"))
        } else {
            Issue.record("one low measurement must not fail")
        }
        #expect(CIRatios.Line(name: "r", recorded: 1.0, attempts: [.skipped("refused")]).outcome == .skip("refused"))
    }

    @Test func aBusyHostIsNotMeasured() {
        #expect(CIRatios.busyReason([3, 10]) == nil)
        #expect(CIRatios.busyReason([50, 0]) == nil)
        #expect(CIRatios.busyReason([]) == nil)
        #expect(CIRatios.busyReason([100, 20])?.hasPrefix("the host is busy: its CPUs were 60 % used") == true)
    }

    @Test func theReportFailsOnlyOnAFailAndSaysWhy() {
        let lines = [
            CIRatios.Line(name: "a", recorded: 1.2, attempts: [.ratio(1.1)]),
            CIRatios.Line(name: "b", recorded: 0.9, attempts: [.skipped("generator-bound on this host")]),
            CIRatios.Line(name: "c", recorded: nil, attempts: [.ratio(0.3)]),
        ]
        var report = CIBenchmark.Report(lines: lines, seconds: 60, host: "h", recordedHost: "r", notes: [])
        #expect(!report.failed)
        let text = report.text()
        #expect(text.contains("pass  a: 1.10 against 1.20 (floor 0.84)"))
        #expect(text.contains("skip  b: generator-bound on this host"))
        #expect(text.contains("skip  c: no recorded figure (measured 0.30)"))
        report.lines.append(CIRatios.Line(name: "d", recorded: 1.0, attempts: [.ratio(0.2), .ratio(0.3)], confirmations: 2))
        #expect(report.failed && report.text().contains("FAIL  d: 0.20, 0.30 against 1.00 (floor 0.70)"))
        // A recording keeps the best of each measured ratio, and only those.
        #expect(report.recording(command: "x").ratios == ["a": 1.1, "c": 0.3, "d": 0.3])
    }

    /// The forward benchmark's rows become ratios, or skips that say why.
    @Test func forwardRowsGeneratorBoundOrFailedAreSkipped() throws {
        func measurement(_ pps: Double) throws -> ForwardBenchmark.Measurement {
            let json = """
                {"forwarder": "f", "seconds": 1, "sinkFrames": \(Int(pps)), "packetsPerSecond": \(pps),
                 "offeredPerSecond": \(pps), "perSecond": [\(pps)], "cpus": []}
                """
            return try JSONDecoder().decode(ForwardBenchmark.Measurement.self, from: Data(json.utf8))
        }
        let plain = ForwardBenchmark.Row(element: .switch, datapath: "afxdp", placement: .forwarder, lab: "x",
                                         ours: [try measurement(900_000)], kernel: [try measurement(1_000_000)],
                                         generatorAlone: [try measurement(3_000_000)])
        #expect(CIBenchmark.measured(plain, generator: "xdp-live") == .ratio(0.9))
        let bound = ForwardBenchmark.Row(element: .switch, datapath: "afxdp", placement: .forwarder, lab: "x",
                                         ours: [try measurement(900_000)], kernel: [try measurement(1_000_000)],
                                         generatorAlone: [try measurement(1_100_000)])
        guard case .skipped(let why) = CIBenchmark.measured(bound, generator: "afxdp") else {
            Issue.record("a generator-bound row has no ratio")
            return
        }
        #expect(why.hasPrefix("generator-bound"))
        let failed = ForwardBenchmark.Row(element: .router, datapath: "afxdp", placement: .forwarder, lab: "x", ours: [], kernel: [],
                                          failures: ["no frame reached the sink"])
        #expect(CIBenchmark.measured(failed, generator: "g") == .skipped("could not run here: no frame reached the sink"))
    }

    /// The committed figures parse and name every ratio the benchmark measures.
    @Test func theCommittedFileCoversEveryRatio() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let recorded = try CIRatios.Recorded.load(root.appendingPathComponent("Benchmarks/ci-ratios.json").path)
        #expect(Set(recorded.ratios.keys) == Set(CIBenchmark.ratioNames))
        #expect(!recorded.host.isEmpty && !recorded.command.isEmpty)
        #expect(recorded.ratios.values.allSatisfy { $0 > 0 && $0.isFinite })
    }
}
