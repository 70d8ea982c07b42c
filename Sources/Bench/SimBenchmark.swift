import Lab
import Datapath
import Glibc
import Topology
import Wire

/// `wirelab bench sim`: how many frames per second one core moves through
/// the simulator. Every host pings a partner host (the one half the host
/// list away, so most pairs cross routers); a round sends one echo request
/// per host and runs until every frame is delivered. ARP is resolved by a
/// warm-up round first, so the timed rounds are the steady state: switches
/// forward, routers route, hosts answer echo. A "frame" is one delivery of
/// a frame to an element (one link crossed).
public struct SimBenchmark {
    public struct Report: Sendable {
        public var topology: String
        public var hosts: Int
        public var rounds: Int
        public var frames: UInt64
        public var echoReplies: Int
        /// CPU time of the thread running the simulator, seconds.
        public var cpuSeconds: Double
        public var wallSeconds: Double
        public var captures: Bool
        public var framesPerCPUSecond: Double { cpuSeconds > 0 ? Double(frames) / cpuSeconds : 0 }
        public var framesPerWallSecond: Double { wallSeconds > 0 ? Double(frames) / wallSeconds : 0 }

        public var text: String {
            func m(_ v: Double) -> String { String(Double(Int(v / 1e4)) / 100) }
            return """
            sim bench \(topology): \(hosts) hosts pinging, \(rounds) rounds, captures \(captures ? "on" : "off")
              frames delivered   \(frames)
              echo replies       \(echoReplies)
              cpu time           \(String(format3(cpuSeconds))) s (one thread)
              wall time          \(String(format3(wallSeconds))) s
              frames per second  \(m(framesPerCPUSecond)) M per core (cpu), \(m(framesPerWallSecond)) M (wall)
            """
        }
    }

    public static func run(topology: ResolvedTopology, rounds: Int, captures: Bool = false) throws -> Report {
        let sim = try Simulator(topology: topology, options: .init(captures: captures, recordsDeliveries: false))
        let hosts = topology.nodes.filter { $0.kind == .host && !$0.addresses.isEmpty }
        guard hosts.count >= 2 else { throw LabError("bench sim needs at least two hosts with addresses") }
        let pairs: [(String, IPv4Address)] = hosts.indices.map { i in
            (hosts[i].name, hosts[(i + hosts.count / 2) % hosts.count].addresses[0].address)
        }
        // Warm-up: resolves every ARP entry on the paths.
        for (i, pair) in pairs.enumerated() {
            try sim.ping(from: pair.0, to: pair.1, identifier: UInt16(truncatingIfNeeded: i), sequence: 0)
        }
        sim.run(limit: 10_000_000_000)
        let warmReplies = hosts.reduce(0) { $0 + sim.host($1.name)!.pingReplies.count }

        let framesBefore = sim.framesProcessed
        let cpu0 = clock(CLOCK_THREAD_CPUTIME_ID), wall0 = clock(CLOCK_MONOTONIC)
        for round in 1...max(1, rounds) {
            for (i, pair) in pairs.enumerated() {
                try sim.ping(from: pair.0, to: pair.1, identifier: UInt16(truncatingIfNeeded: i),
                             sequence: UInt16(truncatingIfNeeded: round))
            }
            sim.runFramesOnly()
            if captures { sim.clearCaptures() }
        }
        let cpu1 = clock(CLOCK_THREAD_CPUTIME_ID), wall1 = clock(CLOCK_MONOTONIC)
        let replies = hosts.reduce(0) { $0 + sim.host($1.name)!.pingReplies.count } - warmReplies
        return Report(topology: topology.name, hosts: hosts.count, rounds: max(1, rounds),
                      frames: sim.framesProcessed - framesBefore, echoReplies: replies,
                      cpuSeconds: cpu1 - cpu0, wallSeconds: wall1 - wall0, captures: captures)
    }

    static func clock(_ id: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

func format3(_ v: Double) -> String {
    let ms = Int((v * 1000).rounded())
    let frac = String(ms % 1000)
    return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
}
