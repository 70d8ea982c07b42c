import Foundation
import Testing

/// A port without carrier drops what it is given, as a NIC does: nothing
/// the switch floods towards a failed link waits in a TX ring to go out
/// when `heal` brings the link back, and the daemon sleeps while the link
/// is down (no 1 ms polling for a TX queue that cannot drain).
///
/// ha, hb, hc on one learning switch; sw:p2 (to hb) fails; ha sends 30
/// broadcast pings across the failure (before and after the daemon sees
/// the carrier go), which the switch floods to every port. After `heal`,
/// hb must receive none of them. In between, with the link still down and
/// the lab idle, the daemon's wake-ups (context switches of all its
/// threads) are compared with the same lab idle before the failure.
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct LinkDownTransmitLabEndToEndTests {
    static func topology(_ lab: String, datapath: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: \(datapath), capture: false }
        nodes:
          ha: { kind: host, interfaces: { e0: { ip: 10.93.0.1/24 } } }
          hb: { kind: host, interfaces: { e0: { ip: 10.93.0.2/24 } } }
          hc: { kind: host, interfaces: { e0: { ip: 10.93.0.3/24 } } }
          sw: { kind: switch }
        links:
          - [ ha:e0, sw:p1 ]
          - [ hb:e0, sw:p2 ]
          - [ hc:e0, sw:p3 ]
        """
    }

    static func status(_ lab: String) throws -> [String: Any] {
        let status = try Harness.wl("status", lab, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        return json?["datapath"] as? [String: Any] ?? [:]
    }

    /// Context switches (voluntary + not) of every thread of PID, and its CPU time in clock ticks.
    static func wakeupsAndTicks(_ pid: Int) -> (wakeups: Int, ticks: Int) {
        var wakeups = 0
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        for task in tasks {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.contains("ctxt_switches:") {
                wakeups += Int(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            }
        }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        let ticks = fields.count > 12 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
        return (wakeups, ticks)
    }

    /// Wake-ups per second and CPU share (percent of one core) of PID over SECONDS.
    static func idleRate(_ pid: Int, seconds: Double) -> (wakeups: Double, cpu: Double) {
        let a = wakeupsAndTicks(pid)
        Thread.sleep(forTimeInterval: seconds)
        let b = wakeupsAndTicks(pid)
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (Double(b.wakeups - a.wakeups) / seconds, Double(b.ticks - a.ticks) / hz / seconds * 100)
    }

    /// Frames hb's kernel received on e0.
    static func received(_ lab: String) throws -> Int {
        // (/proc/net is the reader's namespace; /sys is the mounter's.)
        let r = try Harness.wl("exec", "--lab", lab, "hb", "--", "cat", "/proc/net/dev")
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("e0:") }),
              let counters = line.split(separator: ":", maxSplits: 1).last?.split(separator: " "), counters.count > 1
        else { return -1 }
        return Int(counters[1]) ?? -1
    }

    @Test(arguments: ["afxdp", "afpacket"])
    func framesForAFailedLinkAreDroppedNotSentOnHealAndTheDaemonSleeps(datapath: String) throws {
        let lab = Harness.lab("wlxtd\(datapath == "afxdp" ? "x" : "p")")
        try Harness.withLab(lab, Self.topology(lab, datapath: datapath)) { _, _ in
            let pid = try Self.status(lab)["pid"] as? Int ?? 0
            try #require(pid > 0)
            Thread.sleep(forTimeInterval: 1)
            let idle = Self.idleRate(pid, seconds: 3)

            let fail = try Harness.wl("fail", lab, "sw:p2")
            try #require(fail.status == 0, "fail: \(fail.combined)")
            // 30 broadcasts over 1.5 s: the first ones before the daemon sees
            // the carrier go (two reads, 250–500 ms), the rest after.
            try Harness.wl("exec", "--lab", lab, "ha", "--", "ping", "-b", "-n", "-q", "-c", "30", "-i", "0.05",
                                      "-W", "1", "10.93.0.255", timeout: 30)
            Thread.sleep(forTimeInterval: 1)
            let failed = Self.idleRate(pid, seconds: 3)
            let before = try Self.received(lab)

            let heal = try Harness.wl("heal", lab, "sw:p2")
            try #require(heal.status == 0, "heal: \(heal.combined)")
            Thread.sleep(forTimeInterval: 1.5)
            let stale = try Self.received(lab) - before
            let drops = ((try Self.status(lab)["nodes"] as? [[String: Any]])?.first { $0["node"] as? String == "sw" }?["drops"]
                as? [String: Any])?["link-down"] as? Int ?? 0
            print("\(datapath): idle \(idle.wakeups) wake-ups/s \(idle.cpu) % CPU; link failed \(failed.wakeups) wake-ups/s "
                  + "\(failed.cpu) % CPU; hb received \(stale) frames at heal; sw link-down drops \(drops)")

            // The port works again, through a TX ring whose old frames were voided.
            let after = try Harness.wl("exec", "--lab", lab, "ha", "--", "ping", "-n", "-c", "5", "-i", "0.2", "-W", "1", "10.93.0.2",
                                       timeout: 30)
            let pidAfter = try Self.status(lab)["pid"] as? Int
            #expect(after.status == 0 && pidAfter == pid, "after heal: \(after.combined)")

            #expect(before >= 0 && stale <= 2, "hb received \(stale) frames when the link healed: frames sent while it was down")
            #expect(drops >= 15, "the switch counts the broadcasts it could not send as link-down (\(drops))")
            // A daemon polling every 1 ms wakes ~1000 times a second; idle, a few dozen.
            #expect(failed.wakeups < idle.wakeups + 150,
                    "idle with a failed link: \(failed.wakeups) wake-ups/s against \(idle.wakeups) without")
            #expect(failed.cpu < idle.cpu + 1.5, "idle with a failed link: \(failed.cpu) % of a core against \(idle.cpu) % without")
        }
    }
}
