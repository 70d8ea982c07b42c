import Foundation
import Testing
import Wire

/// VRRP on a live lab (root): two directors of one group with 0.1 s adverts
/// in front of a real server. Failing the master's link makes the backup
/// take the VIP; pings to the VIP every 10 ms measure the interruption
/// (printed, and under 1 s). Healing the link brings the master back by
/// preemption. Then keepalived (Debian's, `vrrp_version 3`) on a kernel
/// host in the same group takes the VIP from a wirelab director and hands
/// it back when it stops.
///
///   swift test --skip-build --filter VRRPLabEndToEndTests
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct VRRPLabEndToEndTests {
    static func pairTopology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { capture: false }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 10.77.0.50/24 } } }
          lvs1:
            kind: director
            interfaces: { eth0: { ip: 10.77.0.2/24 } }
            vrrp: { group: 17, priority: 200, vips: [ 10.77.0.100 ], interval: 0.1s }
            services: [ { vip: 10.77.0.100, port: 80, mode: dr, reals: [ { ip: 10.77.0.11 } ] } ]
          lvs2:
            kind: director
            interfaces: { eth0: { ip: 10.77.0.3/24 } }
            vrrp: { group: 17, priority: 100, vips: [ 10.77.0.100 ], interval: 0.1s }
            services: [ { vip: 10.77.0.100, port: 80, mode: dr, reals: [ { ip: 10.77.0.11 } ] } ]
          rs1: { kind: host, interfaces: { e0: { ip: 10.77.0.11/24 } }, serve: { http: 80 } }
          sw: { kind: switch }
        links:
          - [ cl:e0, sw:p1 ]
          - [ lvs1:eth0, sw:p2 ]
          - [ lvs2:eth0, sw:p3 ]
          - [ rs1:e0, sw:p4 ]
        """
    }

    /// Node NAME of `status --json`'s data plane.
    static func node(_ lab: String, _ name: String) -> [String: Any] {
        guard let status = try? Harness.wl("status", lab, "--json"),
              let json = try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any] else { return [:] }
        let nodes = (json["datapath"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        return nodes.first { $0["node"] as? String == name } ?? [:]
    }

    /// State of group 17 on NAME ("master", "backup", "init"), and the master it last saw.
    static func group(_ lab: String, _ name: String) -> (state: String, master: String?, last: String?) {
        let g = (node(lab, name)["vrrp"] as? [[String: Any]])?.first { $0["group"] as? Int == 17 } ?? [:]
        return (g["state"] as? String ?? "?", g["master"] as? String, g["lastTransition"] as? String)
    }

    static func counter(_ lab: String, _ name: String, _ key: String) -> Int {
        (node(lab, name)["counters"] as? [String: Any])?[key] as? Int ?? -1
    }

    /// A command running in the background, ended by its PID.
    final class Background {
        let pid: pid_t
        let output: String
        init(_ argv: [String], output: String) throws {
            self.output = output
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            let c = argv.map { strdup($0) } + [nil]
            defer { c.forEach { free($0) } }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, argv[0], &actions, nil, c, environ)
            guard rc == 0 else { throw Harness.HarnessError("spawning \(argv.joined(separator: " ")): \(String(cString: strerror(rc)))") }
            self.pid = pid
        }
        var isRunning: Bool { kill(pid, 0) == 0 && waitpid(pid, nil, WNOHANG) == 0 }
        /// Waits up to LIMIT seconds for it to end on its own, then kills it.
        @discardableResult
        func wait(limit: TimeInterval, signal: Int32 = SIGKILL) -> Int32 {
            var status: Int32 = 0
            let deadline = Date().addingTimeInterval(limit)
            while waitpid(pid, &status, WNOHANG) == 0 {
                if Date() >= deadline { kill(pid, signal); waitpid(pid, &status, 0); break }
                usleep(10_000)
            }
            return status
        }
        var text: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
    }

    /// From `ping -D -n` output: the longest time between two consecutive
    /// replies (their receive timestamps), in seconds, and how many replies came.
    static func longestGap(_ pingOutput: String) -> (gap: Double, replies: Int) {
        let times = pingOutput.split(separator: "\n").compactMap { line -> Double? in
            guard line.contains("bytes from"), line.hasPrefix("["), let end = line.firstIndex(of: "]") else { return nil }
            return Double(line[line.index(after: line.startIndex)..<end])
        }
        let gap = zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? 0
        return (gap, times.count)
    }

    @Test func backupTakesTheVIPWhenTheMastersLinkFailsAndGivesItBackOnHeal() throws {
        let lab = Harness.lab("wlv")
        try Harness.withLab(lab, Self.pairTopology(lab)) { _, dir in
            let elected = Harness.waitUntil(limit: 10) { Self.group(lab, "lvs1").state == "master" && Self.group(lab, "lvs2").state == "backup" }
            try #require(elected, "lvs1 \(Self.group(lab, "lvs1")), lvs2 \(Self.group(lab, "lvs2"))")
            #expect(Self.group(lab, "lvs2").master == "10.77.0.2")
            let curl = try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "3", "http://10.77.0.100/")
            #expect(curl.stdout == "rs1\n", "\(curl.combined)")
            #expect(Self.counter(lab, "lvs1", "forwarded-dr") > 0 && Self.counter(lab, "lvs2", "forwarded-dr") == 0)

            // 500 pings 10 ms apart; the master's link fails a second in.
            let count = 500, interval = 0.01
            let out = dir + "/ping-fail.txt"
            let ping = try Background(["/usr/sbin/ip", "netns", "exec", "wl-\(lab)-cl", "ping", "-D", "-n", "-i", "\(interval)",
                                       "-c", "\(count)", "-W", "1", "10.77.0.100"], output: out)
            usleep(1_000_000)
            let fail = try Harness.wl("fail", lab, "lvs1:eth0")
            #expect(fail.status == 0, "\(fail.combined)")
            ping.wait(limit: 30)
            let (gap, replies) = Self.longestGap(ping.text)
            print("VRRP takeover (link of the master failed, adverts every 0.1 s): longest time between replies to pings of the VIP (every 10 ms) \(String(format: "%.3f", gap)) s; \(replies)/\(count) answered")
            #expect(gap < 1.0, "interruption \(gap) s:\n\(ping.text.suffix(2000))")
            #expect(gap > 0.2, "no interruption at all: the takeover was not exercised (\(gap) s)")
            #expect(replies > count - 100)
            let lvs2 = Self.group(lab, "lvs2")
            #expect(lvs2.state == "master", "\(lvs2)")
            #expect(lvs2.last?.contains("master down timer expired") == true, "\(lvs2)")
            #expect(Self.group(lab, "lvs1").state == "init")
            let viaBackup = try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "3", "http://10.77.0.100/")
            #expect(viaBackup.stdout == "rs1\n", "\(viaBackup.combined)")
            #expect(Self.counter(lab, "lvs2", "forwarded-dr") > 0)

            // Heal: lvs1 starts as backup and preempts lvs2 after its Master_Down_Interval.
            let out2 = dir + "/ping-heal.txt"
            let ping2 = try Background(["/usr/sbin/ip", "netns", "exec", "wl-\(lab)-cl", "ping", "-D", "-n", "-i", "\(interval)",
                                        "-c", "\(count)", "-W", "1", "10.77.0.100"], output: out2)
            usleep(1_000_000)
            let heal = try Harness.wl("heal", lab, "lvs1:eth0")
            #expect(heal.status == 0, "\(heal.combined)")
            ping2.wait(limit: 30)
            let back = Self.longestGap(ping2.text)
            print("VRRP preemption back after heal: longest time between replies to pings of the VIP (every 10 ms) \(String(format: "%.3f", back.gap)) s; \(back.replies)/\(count) answered")
            #expect(back.gap < 1.0)
            #expect(Self.group(lab, "lvs1").state == "master")
            #expect(Self.group(lab, "lvs2").state == "backup")
            #expect(Self.group(lab, "lvs2").last?.contains("higher priority 200 > 100") == true)
            let log = (try? String(contentsOfFile: "/run/wirelab/\(lab)/logs/daemon.log", encoding: .utf8)) ?? ""
            #expect(log.contains("lvs2: vrrp group 17: backup → master: master down timer expired"), "\(log.suffix(3000))")
            #expect(log.contains("lvs1: vrrp group 17: master → init: link down (no carrier)"), "\(log.suffix(3000))")

        }
    }

    static func routerTopology(_ lab: String, datapath: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: \(datapath), capture: false }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 10.79.0.50/24 } }, routes: [ "default via 10.79.0.1" ] }
          srv: { kind: host, interfaces: { e0: { ip: 10.79.1.10/24 } }, routes: [ "default via 10.79.1.1" ], serve: { http: 8080 } }
          r1:
            kind: router
            interfaces: { a: { ip: 10.79.0.2/24 }, b: { ip: 10.79.1.2/24 } }
            vrrp:
              - { group: 1, priority: 200, vips: [ 10.79.0.1 ], interval: 0.1s, vmac: true }
              - { group: 2, priority: 200, vips: [ 10.79.1.1 ], interval: 0.1s, vmac: true }
          r2:
            kind: router
            interfaces: { a: { ip: 10.79.0.3/24 }, b: { ip: 10.79.1.3/24 } }
            vrrp:
              - { group: 1, priority: 100, vips: [ 10.79.0.1 ], interval: 0.1s, vmac: true }
              - { group: 2, priority: 100, vips: [ 10.79.1.1 ], interval: 0.1s, vmac: true }
          sw0: { kind: switch }
          sw1: { kind: switch }
        links:
          - [ cl:e0, sw0:p1 ]
          - [ r1:a, sw0:p2 ]
          - [ r2:a, sw0:p3 ]
          - [ srv:e0, sw1:p1 ]
          - [ r1:b, sw1:p2 ]
          - [ r2:b, sw1:p3 ]
        """
    }

    /// Two routers with vmac share the hosts' gateways; the hosts' ARP
    /// entries for their gateways are the virtual MACs throughout, so when
    /// both of r1's links fail (r1 as good as dead), r2 takes both groups
    /// and frames to the same MACs go through it. (Failing only one of r1's
    /// links moves only that side's group: replies then reach r1, which has
    /// no route back — keepalived's answer is a sync group or
    /// track_interface, which wirelab does not have yet.)
    @Test(arguments: ["afxdp", "afpacket"])
    func routersWithVMACShareTheGateway(datapath: String) throws {
        let lab = Harness.lab(datapath == "afxdp" ? "wlvrx" : "wlvrp")
        try Harness.withLab(lab, Self.routerTopology(lab, datapath: datapath)) { _, dir in
            func state(_ name: String, _ group: Int) -> String {
                ((Self.node(lab, name)["vrrp"] as? [[String: Any]])?.first { $0["group"] as? Int == group })?["state"] as? String ?? "?"
            }
            try #require(Harness.waitUntil(limit: 10) { state("r1", 1) == "master" && state("r1", 2) == "master" && state("r2", 1) == "backup" },
                         "r1 \(state("r1", 1))/\(state("r1", 2)), r2 \(state("r2", 1))/\(state("r2", 2))")
            let curl = try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "3", "http://10.79.1.10:8080/")
            #expect(curl.stdout == "srv\n", "\(curl.combined)")
            #expect(Self.neighbour(lab, "10.79.0.1") == "00:00:5e:00:01:01")
            let ping = try Background(["/usr/sbin/ip", "netns", "exec", "wl-\(lab)-cl", "ping", "-D", "-n", "-i", "0.01",
                                       "-c", "400", "-W", "1", "10.79.1.10"], output: dir + "/ping.txt")
            usleep(1_000_000)
            for end in ["r1:a", "r1:b"] {
                let fail = try Harness.wl("fail", lab, end)
                #expect(fail.status == 0, "\(fail.combined)")
            }
            ping.wait(limit: 30)
            let (gap, replies) = Self.longestGap(ping.text)
            print("VRRP router takeover (\(datapath), vmac, both of r1's links failed): longest time between replies \(String(format: "%.3f", gap)) s; \(replies)/400 answered")
            #expect(gap < 1.0 && gap > 0.2, "\(gap) s")
            #expect(replies > 300, "\(replies) of 400 answered:\n\(ping.text.suffix(1500))")
            #expect(state("r2", 1) == "master" && state("r2", 2) == "master")
            #expect(state("r1", 1) == "init" && state("r1", 2) == "init")
            #expect(Self.neighbour(lab, "10.79.0.1") == "00:00:5e:00:01:01")
            let after = try Harness.wl("exec", "--lab", lab, "cl", "--", "curl", "-s", "--max-time", "3", "http://10.79.1.10:8080/")
            #expect(after.stdout == "srv\n", "\(after.combined)")
        }
    }

    static func keepalivedTopology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { capture: false }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 10.78.0.50/24 } } }
          ka: { kind: host, interfaces: { e0: { ip: 10.78.0.5/24 } } }
          lvs1:
            kind: director
            interfaces: { eth0: { ip: 10.78.0.2/24 } }
            vrrp: { group: 42, priority: 100, vips: [ 10.78.0.100 ], interval: 0.1s }
          sw: { kind: switch }
        links:
          - [ cl:e0, sw:p1 ]
          - [ ka:e0, sw:p2 ]
          - [ lvs1:eth0, sw:p3 ]
        """
    }

    static func keepalivedConfig(priority: Int) -> String {
        """
        global_defs {
          router_id wlv-ka
          vrrp_version 3
          vrrp_garp_master_repeat 3
          vrrp_garp_master_delay 0
        }
        vrrp_instance VI_42 {
          state BACKUP
          interface e0
          virtual_router_id 42
          priority \(priority)
          advert_int 0.1
          virtual_ipaddress {
            10.78.0.100/24 dev e0
          }
        }
        """
    }

    static func group42(_ lab: String) -> (state: String, master: String?, last: String?) {
        let g = (node(lab, "lvs1")["vrrp"] as? [[String: Any]])?.first { $0["group"] as? Int == 42 } ?? [:]
        return (g["state"] as? String ?? "?", g["master"] as? String, g["lastTransition"] as? String)
    }

    @Test func keepalivedAndAWirelabDirectorHandTheVIPBackAndForth() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/keepalived") else {
            Issue.record("keepalived is not installed: scripts/install-deps.sh installs it")
            return
        }
        let lab = Harness.lab("wlvk")
        let file = try Harness.topologyFile(Self.keepalivedTopology(lab))
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        var keepalived: Background?
        defer {
            if let k = keepalived, k.isRunning { kill(k.pid, SIGTERM); k.wait(limit: 5) }
            _ = try? Harness.wl("down", lab)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let (up, macs) = try Harness.upReportingMACs(file, directory: dir)
        try #require(up.status == 0, "up: \(up.combined)")
        let lvsMAC = try #require(macs["lvs1:eth0"]).description, kaMAC = try #require(macs["ka:e0"]).description
        // Alone, the wirelab director becomes master and answers for the VIP.
        try #require(Harness.waitUntil(limit: 10) { Self.group42(lab).state == "master" }, "\(Self.group42(lab))")
        let ping1 = try Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "10.78.0.100")
        #expect(ping1.status == 0, "\(ping1.combined)")
        #expect(Self.neighbour(lab, "10.78.0.100") == lvsMAC)

        // keepalived with priority 200 preempts it.
        let config = dir + "/keepalived.conf"
        try Self.keepalivedConfig(priority: 200).write(toFile: config, atomically: true, encoding: .utf8)
        keepalived = try Background(["/usr/sbin/ip", "netns", "exec", "wl-\(lab)-ka", "/usr/sbin/keepalived",
                                     "--dont-fork", "--log-console", "--log-detail", "--vrrp", "--use-file", config,
                                     "--pid", dir + "/keepalived1.pid", "--vrrp_pid", dir + "/keepalived1-vrrp.pid"],
                                    output: dir + "/keepalived.log")
        let tookOver = Harness.waitUntil(limit: 15) { Self.group42(lab).state == "backup" }
        try #require(tookOver, "keepalived did not take over: \(Self.group42(lab))\n\(keepalived!.text.suffix(3000))")
        let g = Self.group42(lab)
        #expect(g.master == "10.78.0.5" && g.last?.contains("higher priority 200 > 100") == true, "\(g)")
        // The VIP now answers from keepalived's host; the director no longer answers ARP for it.
        #expect(Harness.waitUntil(limit: 5) { Self.neighbour(lab, "10.78.0.100") == kaMAC })
        let repliesBefore = Self.counter(lab, "lvs1", "arp-replies-sent")
        _ = try Harness.wl("exec", "--lab", lab, "cl", "--", "ip", "neigh", "flush", "dev", "e0")
        let ping2 = try Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "10.78.0.100")
        #expect(ping2.status == 0, "\(ping2.combined)")
        #expect(Self.neighbour(lab, "10.78.0.100") == kaMAC)
        #expect(Self.counter(lab, "lvs1", "arp-replies-sent") == repliesBefore, "the backup answered ARP for the VIP")
        #expect(keepalived!.text.contains("Entering MASTER STATE"), "\(keepalived!.text.suffix(3000))")

        // keepalived stops (it resigns with priority 0): the director takes over after its skew time.
        kill(keepalived!.pid, SIGTERM)
        keepalived!.wait(limit: 10)
        let back = Harness.waitUntil(limit: 5) { Self.group42(lab).state == "master" }
        try #require(back, "\(Self.group42(lab))\n\(keepalived!.text.suffix(3000))")
        let resigned = Self.group42(lab).last ?? ""
        #expect(resigned.contains("resigned (priority 0)"), "\(resigned)")
        #expect(Harness.waitUntil(limit: 5) { Self.neighbour(lab, "10.78.0.100") == lvsMAC })
        let ping3 = try Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "10.78.0.100")
        #expect(ping3.status == 0, "\(ping3.combined)")

        // The other way round: keepalived with a lower priority is backup;
        // `wirelab down` makes the director resign (a priority-0 advert, seen
        // on keepalived's interface), and keepalived takes over. (`down`
        // then ends every process in the lab's namespaces, keepalived too.)
        try Self.keepalivedConfig(priority: 50).write(toFile: config, atomically: true, encoding: .utf8)
        let capture = dir + "/ka.pcap"
        let tcpdump = try Background(["/usr/sbin/ip", "netns", "exec", "wl-\(lab)-ka", "tcpdump", "--immediate-mode", "-U", "-n",
                                      "-i", "e0", "-w", capture, "vrrp"], output: dir + "/tcpdump.log")
        defer { if tcpdump.isRunning { kill(tcpdump.pid, SIGTERM) }; tcpdump.wait(limit: 5) }
        keepalived = try Background(["/usr/sbin/ip", "netns", "exec", "wl-\(lab)-ka", "/usr/sbin/keepalived",
                                     "--dont-fork", "--log-console", "--log-detail", "--vrrp", "--use-file", config,
                                     "--pid", dir + "/keepalived2.pid", "--vrrp_pid", dir + "/keepalived2-vrrp.pid"],
                                    output: dir + "/keepalived2.log")
        #expect(Harness.waitUntil(limit: 10) { keepalived!.text.contains("Entering BACKUP STATE") }, "\(keepalived!.text.suffix(2000))")
        usleep(500_000)
        #expect(Self.group42(lab).state == "master")
        #expect(!keepalived!.text.contains("Entering MASTER STATE"), "\(keepalived!.text.suffix(2000))")
        let down = try Harness.wl("down", lab)
        #expect(down.status == 0, "\(down.combined)")
        keepalived!.wait(limit: 5)
        tcpdump.wait(limit: 5)
        #expect(keepalived!.text.contains("Entering MASTER STATE"),
                "keepalived did not take over after the director resigned:\n\(keepalived!.text.suffix(3000))")
        let adverts = try Harness.run("/usr/bin/tshark", ["-n", "-r", capture, "-T", "fields", "-e", "ip.src", "-e", "vrrp.prio"])
        #expect(adverts.stdout.contains("10.78.0.2\t0\n"), "no priority-0 advert from the director:\n\(adverts.combined.suffix(2000))")
    }

    /// The MAC of ADDRESS in cl's neighbour table.
    static func neighbour(_ lab: String, _ address: String) -> String? {
        guard let r = try? Harness.wl("exec", "--lab", lab, "cl", "--", "ip", "neigh", "show", address) else { return nil }
        let words = r.stdout.split(separator: " ")
        guard let i = words.firstIndex(of: "lladdr"), i + 1 < words.count else { return nil }
        return String(words[i + 1])
    }
}
