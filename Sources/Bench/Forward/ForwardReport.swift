// What `wirelab bench forward` measured, and its table.
import Lab
import Foundation

extension ForwardBenchmark {
    /// One forwarder measured for `seconds`.
    public struct Measurement: Codable, Sendable {
        /// "wirelab switch (AF_XDP)", "Linux bridge", …
        public var forwarder: String
        public var seconds: Double
        /// Frames counted at the sink in the window (rx_packets of sink:eth0).
        public var sinkFrames: UInt64
        /// sinkFrames / seconds.
        public var packetsPerSecond: Double
        /// Frames the generator put on gen:eth0 per second: taken by the
        /// forwarder's ingress queue or refused because it was full
        /// (tx_packets + tx_dropped of gen:eth0).
        public var offeredPerSecond: Double
        /// Sink packets per second in each second of the window.
        public var perSecond: [Double]
        /// Our daemon only: malloc-family calls in the window (nil: not counted).
        public var mallocs: UInt64?
        /// Our daemon only: why the malloc counter was not loaded into it
        /// (nil when it was, or when counting was off).
        public var mallocCounterNotLoaded: String?
        /// Our daemon only: element and port counters, deltas over the window.
        public var elementCounters: [String: UInt64]?
        public var elementDrops: [String: UInt64]?
        /// Frames the forwarder's ports lost (ring or socket queue full), over the window.
        public var portRxDropped: UInt64?
        public var portTxDropped: UInt64?
        /// Our daemon only: packets the element forwarded in the window.
        public var forwarded: UInt64?
        /// Each CPU over the window (from /proc/stat).
        public var cpus: [CPUUse] = []
        /// CPU time of the generator thread and (ours) of the daemon, in % of one CPU.
        public var generatorCPU: Double?
        /// The forwarder's ingress NAPI thread (`forwarder` placement), % of one CPU.
        public var ingressCPU: Double?
        public var daemonCPU: Double?
        /// The part of daemonCPU spent in user space (Swift) rather than in
        /// the kernel (sendto/recvmmsg, and the softirq work they run).
        public var daemonUserCPU: Double?
        /// The rate the generator was paced at (packets per second); nil: full rate.
        public var pacedRate: Double?
        /// Ours at each `--offered` rate, after this full-rate run.
        public var sweep: [Measurement]?

        /// Our daemon only: its CPU time (user + system, as /proc accounts
        /// it) per packet forwarded, nanoseconds.
        public var daemonNanosecondsPerPacket: Double? {
            guard let daemonCPU, let forwarded, forwarded > 0 else { return nil }
            return daemonCPU / 100 * seconds / Double(forwarded) * 1e9
        }

        /// The user-space part of daemonNanosecondsPerPacket.
        public var daemonUserNanosecondsPerPacket: Double? {
            guard let daemonUserCPU, let forwarded, forwarded > 0 else { return nil }
            return daemonUserCPU / 100 * seconds / Double(forwarded) * 1e9
        }

        public var mallocsPerPacket: Double? {
            guard let mallocs, let forwarded, forwarded > 0 else { return nil }
            return Double(mallocs) / Double(forwarded)
        }
    }

    /// One CPU over a window, in % of the window.
    public struct CPUUse: Codable, Sendable {
        public var cpu: Int
        /// Everything but idle and iowait.
        public var busy: Double
        public var softirq: Double
        /// Time the hypervisor gave to someone else.
        public var steal: Double
    }

    /// One (element, port kind): every round's measurement of ours and of
    /// the kernel's peer, and their medians.
    public struct Row: Codable, Sendable {
        public var element: Element
        public var datapath: String
        public var placement: PlacementMode
        public var lab: String
        public var ours: [Measurement]
        public var kernel: [Measurement]
        /// Why rounds of this case measured nothing (the medians are over
        /// the other rounds).
        public var failures: [String]
        /// Medians over the rounds of the sink's packets per second.
        public var oursPacketsPerSecond: Double
        public var kernelPacketsPerSecond: Double
        /// oursPacketsPerSecond ÷ kernelPacketsPerSecond; nil (absent in the
        /// JSON) where the row is generator-bound, failed, or the kernel's
        /// peer delivered nothing (a number there would mean nothing).
        public var ratio: Double?
        /// The generator alone on its own path (gen → sink, no forwarder),
        /// in the same placement, once per round, and its median.
        public var generatorAlone: [Measurement]?
        public var generatorPacketsPerSecond: Double?
        /// Ours or the kernel's peer came within `generatorBoundFraction` of
        /// what the generator delivers alone: the row measured the generator.
        public var generatorBound: Bool?
        /// Why the row has no kernel side (this kernel has no peer for the element).
        public var noKernelPeer: String?
        /// With `--offered`: the most ours delivered at any offered rate
        /// (paced, or the generator's full rate), median over rounds…
        public var bestPacketsPerSecond: Double?
        /// …and what ours kept at the full rate as a fraction of that best:
        /// below `livelockFraction`, the receive side starves the forwarder.
        public var overloadRatio: Double?

        public static let livelockFraction = 0.8

        /// A forwarder at 80 % or more of the generator's own rate may have
        /// been held back by the generator, not by itself.
        public static let generatorBoundFraction = 0.8

        public init(element: Element, datapath: String, placement: PlacementMode, lab: String, ours: [Measurement],
             kernel: [Measurement], generatorAlone: [Measurement]? = nil, failures: [String] = [], noKernelPeer: String? = nil) {
            self.element = element
            self.noKernelPeer = noKernelPeer
            self.failures = failures
            self.datapath = datapath
            self.placement = placement
            self.lab = lab
            self.ours = ours
            self.kernel = kernel
            oursPacketsPerSecond = ForwardBenchmark.median(ours.map(\.packetsPerSecond))
            kernelPacketsPerSecond = ForwardBenchmark.median(kernel.map(\.packetsPerSecond))
            self.generatorAlone = generatorAlone
            if let generatorAlone, !generatorAlone.isEmpty {
                let own = ForwardBenchmark.median(generatorAlone.map(\.packetsPerSecond))
                generatorPacketsPerSecond = own
                generatorBound = max(oursPacketsPerSecond, kernelPacketsPerSecond) >= Self.generatorBoundFraction * own
            }
            ratio = kernelPacketsPerSecond > 0 && generatorBound != true ? oursPacketsPerSecond / kernelPacketsPerSecond : nil
            let swept = ours.filter { !($0.sweep ?? []).isEmpty }
            if !swept.isEmpty {
                let best = swept.map { m in max(m.packetsPerSecond, m.sweep!.map(\.packetsPerSecond).max()!) }
                bestPacketsPerSecond = ForwardBenchmark.median(best)
                overloadRatio = ForwardBenchmark.median(zip(swept, best).map { $1 > 0 ? $0.packetsPerSecond / $1 : 0 })
            }
        }
    }

    public struct Report: Codable, Sendable {
        public var date: Date
        public var seconds: Double
        public var warmupSeconds: Double
        public var rounds: Int
        public var frameSize: Int
        public var bytesOnVeth: Int
        public var flows: Int
        /// Our forwarder ran with the fast path (`--fastpath`).
        public var fastPath: Bool? = nil
        public var generator: String
        /// The method used (`TrafficGenerator.Method`), why, and what each
        /// method's one-frame probe found on this host.
        public var generatorMethod: String?
        public var generatorChoice: String?
        public var generatorProbes: [TrafficGenerator.ProbeResult]?
        public var sinkCounter: String
        /// What each placement measured did (see the top of ForwardBenchmark.swift).
        public var placements: [String: String]
        public var kernelSetup: [String: String]
        public var mallocCounter: String
        public var rows: [Row]
        public var machine: Machine
        public var notes: [String]

        public struct Machine: Codable, Sendable {
            public var cpus: Int
            public var model: String
            public var kernel: String
            public var loadBefore: String
            public var loadAfter: String
        }

        public func jsonString() throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        }

        public func table() -> String {
            func mpps(_ x: Double) -> String { String(format: "%.3f", x / 1e6) }
            func range(_ ms: [Measurement]) -> String {
                let values = ms.map(\.packetsPerSecond)
                return "\(mpps(values.min() ?? 0))–\(mpps(values.max() ?? 0))"
            }
            func mallocText(_ ms: [Measurement]) -> String {
                if let why = ms.lazy.compactMap(\.mallocCounterNotLoaded).first { return "counter not loaded: \(why)" }
                let counted = ms.compactMap { m in m.mallocs.flatMap { a in m.forwarded.map { (a, $0) } } }
                guard counted.count == ms.count, !ms.isEmpty else { return "not measured" }
                return "\(counted.reduce(0) { $0 + $1.0 }) in \(counted.reduce(0) { $0 + $1.1 }) pkts"
            }
            let severalPlacements = Set(rows.map(\.placement)).count > 1
            var header = ["element", "ports"] + (severalPlacements ? ["placement"] : [])
                + ["ours Mpps", "kernel peer", "kernel Mpps", "generator alone Mpps", "ours/kernel"]
            if rounds > 1 { header += ["ours min–max", "kernel min–max"] }
            header += ["daemon mallocs (windows)"]
            let table = rows.map { row -> [String] in
                var cells = [row.element.rawValue, row.datapath == "afxdp" ? "AF_XDP" : "AF_PACKET"]
                    + (severalPlacements ? [row.placement.rawValue] : [])
                guard !row.ours.isEmpty else {
                    return cells + ["failed", "-", "-", row.generatorPacketsPerSecond.map(mpps) ?? "-", "-"]
                        + (rounds > 1 ? ["-", "-"] : []) + ["-"]
                }
                let ratio = row.generatorBound == true ? "generator-bound"
                    : row.ratio.map { String(format: "%.2f×", $0) } ?? "-"
                let peer = row.kernel.first?.forwarder ?? (row.noKernelPeer != nil ? "none here" : "-")
                cells += [mpps(row.oursPacketsPerSecond), peer,
                          row.kernel.isEmpty ? "-" : mpps(row.kernelPacketsPerSecond), row.generatorPacketsPerSecond.map(mpps) ?? "-",
                          ratio + (row.failures.isEmpty ? "" : " *")]
                if rounds > 1 { cells += [range(row.ours), range(row.kernel)] }
                return cells + [mallocText(row.ours)]
            }
            var out = [
                "forward benchmark: \(frameSize)-byte frames (\(bytesOnVeth) B on the veth), \(flows) UDP flows, "
                    + "\(Self.number(seconds)) s per forwarder after \(Self.number(warmupSeconds)) s warm-up"
                    + (rounds > 1 ? ", \(rounds) rounds (medians)" : "")
                    + (fastPath == true ? ", ours WITH THE FAST PATH (fastpath: true; AF_XDP rows)" : ""),
                "  generator: \(generator)",
            ] + (generatorChoice.map { ["  chosen: \($0)"] } ?? []) + [
                "  sink: \(sinkCounter)",
                placements.count == 1 ? "  placement: \(placements.values.first!)"
                    : "  placements:\n" + placements.sorted { $0.key < $1.key }.map { "    \($0.value)" }.joined(separator: "\n"),
                "",
                TextTable.render(header, table).trimmingCharacters(in: .newlines),
                "",
            ]
            for row in rows {
                for (round, o) in row.ours.enumerated() {
                    let label = "\(row.element.rawValue)/\(row.datapath)" + (severalPlacements ? "/\(row.placement.rawValue)" : "")
                        + (rounds > 1 ? " round \(round + 1)" : "")
                    for m in [o] + (round < row.kernel.count ? [row.kernel[round]] : []) {
                        var text = "\(label) \(m.forwarder): \(mpps(m.packetsPerSecond)) Mpps (offered \(mpps(m.offeredPerSecond))), per second \(Self.list(m.perSecond))"
                        text += "; CPU " + m.cpus.map { String(format: "%d %.0f%% (softirq %.0f%%)", $0.cpu, $0.busy, $0.softirq) }.joined(separator: ", ")
                        if let g = m.generatorCPU { text += String(format: "; generator thread %.0f%%", g) }
                        if let i = m.ingressCPU { text += String(format: ", ingress NAPI thread %.0f%%", i) }
                        if let d = m.daemonCPU { text += String(format: ", daemon %.0f%%", d) }
                        if let ns = m.daemonNanosecondsPerPacket, let user = m.daemonUserNanosecondsPerPacket {
                            text += String(format: " (%.0f ns per packet, %.0f of them in user space)", ns, user)
                        }
                        out.append(text)
                    }
                    var details: [String] = []
                    if let c = o.elementCounters {
                        details.append(c.sorted { $0.key < $1.key }.filter { $0.value != 0 }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                    }
                    if let d = o.elementDrops, !d.isEmpty {
                        details.append("drops " + d.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                    }
                    if let rx = o.portRxDropped, let tx = o.portTxDropped { details.append("port drops rx \(rx) tx \(tx)") }
                    if let m = o.mallocs { details.append("mallocs \(m)") }
                    if !details.isEmpty { out.append("  daemon in the window: " + details.joined(separator: "; ")) }
                }
            }
            let bound = rows.filter { $0.generatorBound == true }
            if !bound.isEmpty {
                out.append("generator-bound (a forwarder reached \(Int(Row.generatorBoundFraction * 100)) % or more of what the generator delivers alone on its gen → sink path, so it may have been held back by the generator or the sink's receive, not by itself; no ratio is given):")
                for row in bound {
                    let label = "\(row.element.rawValue)/\(row.datapath)" + (severalPlacements ? "/\(row.placement.rawValue)" : "")
                    let own = row.generatorPacketsPerSecond ?? 0
                    out.append(String(format: "  %@: ours %.3f, kernel %.3f of the generator's own %.3f Mpps (%.0f %%, %.0f %%)", label,
                                      row.oursPacketsPerSecond / 1e6, row.kernelPacketsPerSecond / 1e6, own / 1e6,
                                      row.oursPacketsPerSecond / own * 100, row.kernelPacketsPerSecond / own * 100))
                }
            }
            for row in rows {
                if let why = row.noKernelPeer { out.append("no kernel peer for \(row.element.rawValue): \(why)") }
            }
            let swept = rows.filter { $0.overloadRatio != nil }
            if !swept.isEmpty {
                out.append("receive under overload (ours at each --offered rate, paced, then at the generator's full rate; "
                    + "full/best below \(Self.number(Row.livelockFraction)) is receive livelock):")
                for row in swept {
                    let label = "\(row.element.rawValue)/\(row.datapath)" + (severalPlacements ? "/\(row.placement.rawValue)" : "")
                    for (round, m) in row.ours.enumerated() where !(m.sweep ?? []).isEmpty {
                        let points = m.sweep!.map { "\(mpps($0.offeredPerSecond))→\(mpps($0.packetsPerSecond))" }.joined(separator: ", ")
                        out.append("  \(label)\(rounds > 1 ? " round \(round + 1)" : ""): paced \(points); full rate \(mpps(m.offeredPerSecond))→\(mpps(m.packetsPerSecond)) Mpps")
                    }
                    let ratio = row.overloadRatio!
                    out.append(String(format: "  %@: best %@ Mpps, at full rate %@ Mpps: %.2f×%@", label, mpps(row.bestPacketsPerSecond ?? 0),
                                      mpps(row.oursPacketsPerSecond), ratio, ratio < Row.livelockFraction ? " — LIVELOCK" : ""))
                }
            }
            let failed = rows.filter { !$0.failures.isEmpty }
            if !failed.isEmpty {
                out.append("failed (* = median of the other rounds):")
                for row in failed {
                    let label = "\(row.element.rawValue)/\(row.datapath)" + (severalPlacements ? "/\(row.placement.rawValue)" : "")
                    out += row.failures.map { "  \(label): \($0)" }
                }
            }
            out.append("kernel peers: " + kernelSetup.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "))
            out.append("mallocs: \(mallocCounter)")
            out.append("machine: \(machine.cpus) CPUs (\(machine.model)), kernel \(machine.kernel), load \(machine.loadBefore) → \(machine.loadAfter)")
            out += notes.map { "note: \($0)" }
            return out.joined(separator: "\n")
        }

        static func number(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(format: "%.1f", x) }
        static func list(_ values: [Double]) -> String {
            "[" + values.map { String(format: "%.3f", $0 / 1e6) }.joined(separator: ", ") + "] Mpps"
        }
    }
}
