// `wirelab bench ci`: the figures it compares against, and the comparison.
// Only ratios are compared (ours ÷ the kernel's peer, one way of looking up
// ÷ another, both timed in the same run), never a time: a slower or busier
// host moves both sides of a ratio.
import Foundation

public enum CIRatios {
    /// A ratio fails when it is more than this fraction below its figure.
    public static let tolerance = 0.30
    /// Measurements below the floor it takes to fail (a ratio below it is
    /// measured again, up to `confirmations` times in all). On this 2-core
    /// host, shared with other builds, one forwarding ratio in the first 8
    /// measured came out below its floor (0.42 against 0.98) and passed when
    /// measured again (0.78); three in a row below is a regression, not a
    /// disturbed window.
    public static let confirmations = 3

    /// The committed figures (Benchmarks/ci-ratios.json).
    public struct Recorded: Codable, Sendable, Equatable {
        /// The machine they were measured on (CPUs, model, kernel) and when.
        public var host: String
        public var date: String
        /// How they were measured.
        public var command: String
        /// Ratio name → its figure (higher is better for every ratio).
        public var ratios: [String: Double]

        public init(host: String, date: String, command: String, ratios: [String: Double]) {
            self.host = host
            self.date = date
            self.command = command
            self.ratios = ratios
        }

        public static func load(_ path: String) throws -> Recorded {
            try JSONDecoder().decode(Recorded.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        }

        public func jsonString() throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
        }
    }

    /// What a run got for one ratio.
    public enum Measured: Sendable, Equatable {
        case ratio(Double)
        /// Not measured, or measured but meaningless here (generator-bound,
        /// a generator or a peer this host refuses, a debug build): why.
        case skipped(String)
    }

    public enum Outcome: Sendable, Equatable {
        case pass
        case fail
        case skip(String)
    }

    /// The lowest a ratio recorded at `figure` may measure and pass.
    public static func floor(_ figure: Double) -> Double { figure * (1 - tolerance) }

    /// Passes at or above 70 % of the recorded figure, fails below it, skips
    /// what was not measured or has no figure.
    public static func judge(recorded figure: Double?, measured: Measured) -> Outcome {
        switch measured {
        case .skipped(let why):
            return .skip(why)
        case .ratio(let value):
            guard let figure else { return .skip("no recorded figure") }
            guard value.isFinite, figure.isFinite, figure > 0 else { return .skip("not a number (\(value) against \(figure))") }
            return value >= floor(figure) ? .pass : .fail
        }
    }

    /// One ratio's line of the report.
    public struct Line: Sendable, Equatable {
        public var name: String
        public var recorded: Double?
        /// Every attempt (a ratio that failed is measured again; the best counts).
        public var attempts: [Measured]
        public var outcome: Outcome

        /// A ratio fails only when at least `confirmations` attempts measured
        /// it and even the best of them is below its floor; fewer (the
        /// others skipped) leave it unconfirmed, a skip.
        public init(name: String, recorded: Double?, attempts: [Measured], confirmations: Int = CIRatios.confirmations) {
            self.name = name
            self.recorded = recorded
            self.attempts = attempts
            let outcome = CIRatios.judge(recorded: recorded, measured: CIRatios.best(attempts))
            let measured = attempts.filter { if case .ratio = $0 { true } else { false } }.count
            self.outcome = outcome == .fail && measured < confirmations
                ? .skip("below its floor in \(measured) of \(attempts.count) attempts, the others not measured: not confirmed") : outcome
        }

        public var text: String {
            let values = attempts.compactMap { if case .ratio(let x) = $0 { x } else { nil } }
            let measured = values.isEmpty ? "-" : values.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            let figure = recorded.map { String(format: "%.2f (floor %.2f)", $0, CIRatios.floor($0)) } ?? "-"
            switch outcome {
            case .pass: return "pass  \(name): \(measured) against \(figure)"
            case .fail: return "FAIL  \(name): \(measured) against \(figure), more than \(Int(tolerance * 100)) % below"
            case .skip(let why): return "skip  \(name): \(why)" + (values.isEmpty ? "" : " (measured \(measured))")
            }
        }
    }

    /// Whether to measure a ratio again: its best so far is below the floor,
    /// fewer than `confirmations` attempts measured it, and it has had at
    /// most `confirmations` attempts (so one that keeps being skipped ends).
    public static func needsAnotherAttempt(recorded figure: Double?, _ attempts: [Measured]) -> Bool {
        let measured = attempts.filter { if case .ratio = $0 { true } else { false } }.count
        return judge(recorded: figure, measured: best(attempts)) == .fail && measured < confirmations
            && attempts.count <= confirmations
    }

    /// Forwarding is not measured while the CPUs are more than this busy
    /// (% on average over a second, before our labs start): other work on
    /// this 2-core host gave ratios from 0.16 to 35 in one run.
    public static let busyLimit = 25.0

    /// Why the forwarding ratios cannot be measured now, given each CPU's
    /// busy % over a quiet second; nil when the host is idle enough.
    public static func busyReason(_ busy: [Double]) -> String? {
        guard !busy.isEmpty else { return nil }
        let mean = busy.reduce(0, +) / Double(busy.count)
        guard mean > busyLimit else { return nil }
        return String(format: "the host is busy: its CPUs were %.0f %% used by other work over a second (limit %.0f %%)", mean, busyLimit)
    }

    /// The attempt that counts: the highest ratio, else the last reason it was skipped.
    public static func best(_ attempts: [Measured]) -> Measured {
        let values = attempts.compactMap { if case .ratio(let x) = $0 { x } else { nil } }
        if let top = values.max() { return .ratio(top) }
        return attempts.last ?? .skipped("not measured")
    }
}
