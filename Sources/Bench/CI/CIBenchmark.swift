// `wirelab bench ci`: a short run of ratios, each compared with the figure
// recorded for it (CIRatios). The connection table's ratios are timed in
// this process; the forwarding ratios (ours ÷ the kernel's peer) come from
// a short `bench forward` of every element over AF_XDP, which needs root.
// A ratio below its floor is measured again before it fails.
import Foundation
import Lab

public final class CIBenchmark: @unchecked Sendable {   // `cancel()` from a signal handler; the forward run locks its own state
    public struct Options: Sendable {
        /// Measured seconds per forwarder (ours and the kernel's peer each).
        public var seconds: Double = 2
        public var warmup: Double = 0.5
        /// Rounds of each (ours, then the kernel's peer), interleaved; the
        /// ratio is of the medians, so one disturbed window does not decide it.
        public var rounds = 3
        /// Leave out the forwarding ratios (no root, or no time).
        public var forward = true
        public var labPrefix = "benchci"
        public init() {}
    }

    /// The forwarding cases: every element over AF_XDP, generator and
    /// forwarder on their own CPUs, the ingress NAPI below the daemon
    /// (BENCHMARKS.md: the configuration whose ratio means the forwarder,
    /// not a receive livelock).
    static let forwardElements: [ForwardBenchmark.Element] = [.switch, .router, .directorNAT, .directorDR]

    public static func forwardRatioName(_ element: ForwardBenchmark.Element) -> String { "forward.\(element.rawValue).afxdp" }

    public static var ratioNames: [String] {
        [TableRatios.batchSpeedup] + forwardElements.map(forwardRatioName)
    }

    public struct Report: Sendable {
        public var lines: [CIRatios.Line]
        public var seconds: Double
        public var host: String
        public var recordedHost: String
        public var notes: [String]

        public init(lines: [CIRatios.Line], seconds: Double, host: String, recordedHost: String, notes: [String]) {
            self.lines = lines
            self.seconds = seconds
            self.host = host
            self.recordedHost = recordedHost
            self.notes = notes
        }

        public var failed: Bool { lines.contains { $0.outcome == .fail } }

        public func text() -> String {
            (["bench ci: ratios against the figures recorded on \(recordedHost); a ratio fails when "
                + "\(CIRatios.confirmations) measurements fall more than \(Int(CIRatios.tolerance * 100)) % below its figure",
              "  this host: \(host)"]
             + lines.map { "  " + $0.text }
             + notes.map { "note: \($0)" }
             + [String(format: "%@ in %.0f s", failed ? "FAILED" : "passed", seconds)]).joined(separator: "\n")
        }

        /// The figures to record from this run (the best of each ratio's attempts).
        public func recording(command: String) -> CIRatios.Recorded {
            var ratios: [String: Double] = [:]
            for line in lines { if case .ratio(let x) = CIRatios.best(line.attempts) { ratios[line.name] = (x * 100).rounded() / 100 } }
            let formatter = ISO8601DateFormatter()
            return CIRatios.Recorded(host: host, date: formatter.string(from: Date()), command: command, ratios: ratios)
        }
    }

    let options: Options
    let recorded: CIRatios.Recorded
    let store: LabStore
    let executable: String
    let progress: (String) -> Void
    private let lock = NSLock()
    private var current: ForwardBenchmark?
    private var cancelled = false

    public init(recorded: CIRatios.Recorded, store: LabStore, executable: String, options: Options,
                progress: @escaping (String) -> Void = { _ in }) {
        self.recorded = recorded
        self.store = store
        self.executable = executable
        self.options = options
        self.progress = progress
    }

    /// Stops the forward run in progress (it removes what it made).
    public func cancel() {
        lock.lock()
        cancelled = true
        let bench = current
        lock.unlock()
        bench?.cancel()
    }

    public func run() throws -> Report {
        let start = Date()
        var notes: [String] = []
        var attempts: [String: [CIRatios.Measured]] = [:]
        func needsAnother(_ name: String) -> Bool { CIRatios.needsAnotherAttempt(recorded: recorded.ratios[name], attempts[name] ?? []) }

        // The connection table, in this process.
        let tableNames = [TableRatios.batchSpeedup]
        #if DEBUG
        for name in tableNames { attempts[name] = [.skipped("a debug build: its timings say nothing of the release build")] }
        #else
        repeat {
            progress("director: 1,000,000 connections, packets one by one and in prefetched batches …")
            let ratios = TableRatios.measure()
            for name in tableNames where attempts[name] == nil || needsAnother(name) {
                attempts[name, default: []].append(ratios[name].map { .ratio($0) } ?? .skipped("not measured"))
            }
        } while tableNames.contains(where: needsAnother)
        #endif

        // Forwarding, ours ÷ the kernel's peer, element by element.
        let forwardNames = Self.forwardElements.map(Self.forwardRatioName)
        if !options.forward {
            for name in forwardNames { attempts[name] = [.skipped("--no-forward")] }
        } else if geteuid() != 0 {
            for name in forwardNames { attempts[name] = [.skipped("not root: bench forward builds labs")] }
        } else {
            var elements = Self.forwardElements
            while !elements.isEmpty {
                let before = ForwardBenchmark.cpuTimes()
                Thread.sleep(forTimeInterval: 1)
                let busy = ForwardBenchmark.cpuUse(before, ForwardBenchmark.cpuTimes()).map(\.busy)
                let measured: [ForwardBenchmark.Element: CIRatios.Measured]
                if let why = CIRatios.busyReason(busy) {
                    progress(why)
                    measured = Dictionary(uniqueKeysWithValues: elements.map { ($0, CIRatios.Measured.skipped(why)) })
                } else {
                    measured = try forward(elements)
                }
                for element in elements { attempts[Self.forwardRatioName(element), default: []].append(measured[element] ?? .skipped("no row")) }
                elements = elements.filter { needsAnother(Self.forwardRatioName($0)) }
                if !elements.isEmpty {
                    progress("below the floor, measuring again: " + elements.map(Self.forwardRatioName).joined(separator: ", "))
                }
            }
        }
        let lines = Self.ratioNames.map { CIRatios.Line(name: $0, recorded: recorded.ratios[$0], attempts: attempts[$0] ?? []) }
        for name in recorded.ratios.keys.sorted() where !Self.ratioNames.contains(name) {
            notes.append("\(name) is recorded but no longer measured")
        }
        return Report(lines: lines, seconds: Date().timeIntervalSince(start), host: Self.hostDescription(),
                      recordedHost: "\(recorded.host), \(recorded.date)", notes: notes)
    }

    /// One `bench forward` of `elements`: each row's ratio, or why it has none.
    func forward(_ elements: [ForwardBenchmark.Element]) throws -> [ForwardBenchmark.Element: CIRatios.Measured] {
        var o = ForwardBenchmark.Options()
        o.seconds = options.seconds
        o.warmup = options.warmup
        o.elements = elements
        o.datapaths = [.afxdp]
        o.placements = [.forwarder]
        o.ingressNice = 19
        o.countMallocs = false
        o.rounds = options.rounds
        o.labPrefix = options.labPrefix
        let bench = ForwardBenchmark(store: store, executable: executable, options: o, progress: progress)
        lock.lock()
        if cancelled { lock.unlock(); throw ForwardBenchmark.Cancelled() }
        current = bench
        lock.unlock()
        defer { lock.lock(); current = nil; lock.unlock() }
        let report = try bench.run()
        var out: [ForwardBenchmark.Element: CIRatios.Measured] = [:]
        for row in report.rows { out[row.element] = Self.measured(row, generator: report.generator) }
        return out
    }

    /// A forward row's ratio, or why it has none.
    public static func measured(_ row: ForwardBenchmark.Row, generator: String) -> CIRatios.Measured {
        if !row.failures.isEmpty { return .skipped("could not run here: " + row.failures.joined(separator: "; ")) }
        if row.generatorBound == true {
            return .skipped(String(format: "generator-bound on this host (%@ alone: %.3f Mpps; ours %.3f, kernel %.3f)", generator,
                                   (row.generatorPacketsPerSecond ?? 0) / 1e6, row.oursPacketsPerSecond / 1e6,
                                   row.kernelPacketsPerSecond / 1e6))
        }
        guard let ratio = row.ratio else { return .skipped("the kernel's peer delivered nothing") }
        return .ratio(ratio)
    }

    static func hostDescription() -> String {
        var model = "unknown CPU"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var u = utsname()
        uname(&u)
        let kernel = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(ProcessInfo.processInfo.activeProcessorCount) CPUs (\(model)), kernel \(kernel)"
    }
}
