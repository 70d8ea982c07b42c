import Topology

/// A drill on the simulator's virtual clock: its load (`SimLoad`) from now,
/// each event applied at its `at` through `Simulator.fail`/`heal`, until the
/// load is over (its duration plus the request timeout). The same topology
/// and drill give the same observations, byte for byte, run after run.
public enum SimDrill {
    public struct Result: Sendable, Equatable {
        /// What the load saw: the drill report's input, as live.
        public var observations: LoadObservations
        /// The events applied: index in `drill.events`, seconds since the
        /// load started. An event after the load's end is not applied.
        public var applied: [Applied]
        /// Per event applied, what `takeover` said at the end of its window.
        public var takeovers: [Int: String]

        /// `applied` as `DrillReport` takes it: event index → seconds.
        public var appliedTimes: [Int: Double] {
            Dictionary(applied.map { ($0.event, $0.at) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// The simulator a drill is best run on: no captures or delivery
    /// records (a drill is many frames), and element timers every 100 ms so
    /// that a host retransmits close to when its timer says (200 ms, 400 ms,
    /// … as Linux) rather than at the next whole second.
    public static let simulatorOptions = Simulator.Options(tickInterval: 100_000_000, captures: false,
                                                           recordsDeliveries: false)

    public struct Applied: Sendable, Equatable {
        public var event: Int
        public var at: Double
    }

    /// Who took over after an event, asked of the simulator at the end of
    /// the event's window (just before the next event, or when the load is
    /// over): e.g. the VRRP group's master then. Nil: nothing to say.
    public typealias Takeover = (_ event: Int, _ simulator: Simulator) -> String?

    /// Runs `drill` on a simulator of its own built from `topology` with
    /// `simulatorOptions` (what `wirelab sim` does for each of the file's
    /// drills, so one drill's failures never reach another).
    public static func run(_ drill: Drill, in topology: ResolvedTopology,
                           takeover: Takeover? = nil) throws(Simulator.SimError) -> Result {
        let simulator: Simulator
        do {
            simulator = try Simulator(topology: topology, options: simulatorOptions)
        } catch let error as Simulator.SimError {
            throw error
        } catch {
            throw .element("\(error)")
        }
        return try run(drill, on: simulator, takeover: takeover)
    }

    /// Runs `drill` on `simulator` (best built with `simulatorOptions`). Throws before anything runs if
    /// a load host or an event's target is unknown, or the timeline fails
    /// what is failed already or heals what is not failed.
    public static func run(_ drill: Drill, on simulator: Simulator, lookInterval: UInt64 = 10_000_000,
                           takeover: Takeover? = nil) throws(Simulator.SimError) -> Result {
        try check(drill.events, on: simulator)
        let load = try SimLoad(drill.load, on: simulator, lookInterval: lookInterval)
        // In time order; events at one instant in file order.
        let events = drill.events.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }
        // Events at 0 s come first: what fails at 0 s is down from the first request.
        // The VRRP masters before each event, to name who took over by the
        // end of its window (when no `takeover` is given).
        var mastersBefore: [Int: [String: String]] = [:]
        func applyEvent(_ index: Int, _ event: DrillEvent) throws(Simulator.SimError) {
            mastersBefore[index] = DrillTakeover.masters(simulator.vrrpGroups())
            try apply(event, on: simulator)
        }
        var e = 0
        while e < events.count, events[e].element.at.milliseconds <= 0 {
            try applyEvent(events[e].offset, events[e].element)
            e += 1
        }
        var applied = events[..<e].map { Applied(event: $0.offset, at: 0) }
        load.start()
        let start = load.startTime, end = load.endTime
        var lastLook = start
        var takeovers: [Int: String] = [:]
        var windowsOpen = applied.map(\.event)
        func closeWindows() {
            let masters = DrillTakeover.masters(simulator.vrrpGroups())
            for i in windowsOpen {
                let who = takeover.map { $0(i, simulator) }
                    ?? DrillTakeover.describe(before: mastersBefore[i] ?? [:], after: masters)
                if let who { takeovers[i] = who }
            }
            windowsOpen.removeAll()
        }
        while true {
            let nextEvent = e < events.count ? start &+ SimLoad.nanoseconds(events[e].element.at) : .max
            let wake = load.nextWake(after: lastLook) ?? .max
            let t = min(nextEvent, wake, end)
            if t > simulator.now { simulator.advance(by: t - simulator.now) }
            if e < events.count, start &+ SimLoad.nanoseconds(events[e].element.at) == t { closeWindows() }
            while e < events.count, start &+ SimLoad.nanoseconds(events[e].element.at) == t {
                let (index, event) = events[e]
                try applyEvent(index, event)
                applied.append(Applied(event: index, at: Double(t - start) / 1e9))
                windowsOpen.append(index)
                e += 1
            }
            // (After a heal too: what the host missed is due at once.)
            load.poll()
            lastLook = t
            if t == end { break }
        }
        closeWindows()
        return Result(observations: load.finish(), applied: applied, takeovers: takeovers)
    }

    static func apply(_ event: DrillEvent, on simulator: Simulator) throws(Simulator.SimError) {
        try simulator.apply(event.action, to: event.target)
    }

    /// Every target known, and each fail/heal possible where it falls in
    /// the timeline (a link is named by either end).
    static func check(_ events: [DrillEvent], on simulator: Simulator) throws(Simulator.SimError) {
        var failed: Set<String> = []
        let ordered = events.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }
        for (_, event) in ordered {
            let location = "\(event.location): \(event.action.rawValue) \(event.target) at \(event.at)"
            let key: String
            switch event.target {
            case let .node(n):
                guard simulator.isFailed(node: n) != nil else {
                    throw .failure("\(location): \(Simulator.SimError.unknownNode(n))")
                }
                key = n
            case let .link(end):
                do throws(Simulator.SimError) {
                    key = "link \(simulator.links[try simulator.linkIndex(end)].name)"
                } catch {
                    throw .failure("\(location): \(error)")
                }
            }
            switch event.action {
            case .fail:
                guard failed.insert(key).inserted else { throw .failure("\(location): \(key) is already failed") }
            case .heal:
                guard failed.remove(key) != nil else { throw .failure("\(location): \(key) is not failed then") }
            }
        }
    }
}
