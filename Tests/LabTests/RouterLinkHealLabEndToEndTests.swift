import Foundation
import Testing

/// A router's link fails for 1 s and heals while a client pings across
/// it every 50 ms, and the first ARP requests after the heal are lost:
/// traffic must come back promptly after the heal. The
/// router asks for its neighbours the moment it sees carrier again and
/// retries ARP 200 ms apart on its fine timer; before, it waited for a
/// packet, then retried on the daemon's 1 s tick (longest gap ~3 s).
@Suite(.serialized, .enabled(if: Harness.isRoot, "needs root to create network namespaces"))
struct RouterLinkHealLabEndToEndTests {
    static func topology(_ lab: String) -> String {
        """
        name: \(lab)
        defaults: { datapath: afxdp, capture: false }
        nodes:
          cl: { kind: host, interfaces: { e0: { ip: 10.94.1.10/24 } }, routes: [ "default via 10.94.1.1" ] }
          r:
            kind: router
            interfaces:
              e0: { ip: 10.94.1.1/24 }
              e1: { ip: 10.94.2.1/24 }
          srv: { kind: host, interfaces: { e0: { ip: 10.94.2.80/24 } }, routes: [ "default via 10.94.2.1" ] }
        links:
          - [ cl:e0, r:e0 ]
          - [ r:e1, srv:e0 ]
        """
    }

    /// The longest time between two echo replies in `ping -D` output, seconds.
    static func longestGap(_ output: String) -> (gap: Double, replies: Int) {
        var times: [Double] = []
        for line in output.split(separator: "\n") where line.contains("bytes from") && line.hasPrefix("[") {
            if let end = line.firstIndex(of: "]"), let t = Double(line[line.index(after: line.startIndex)..<end]) { times.append(t) }
        }
        var gap = 0.0
        for i in times.indices.dropFirst() { gap = max(gap, times[i] - times[i - 1]) }
        return (gap, times.count)
    }

    @Test func trafficComesBackPromptlyAfterARouterLinkHeals() throws {
        let lab = Harness.lab("wlxrh")
        try Harness.withLab(lab, Self.topology(lab)) { _, _ in
            let warm = try Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-c", "2", "-W", "1", "10.94.2.80", timeout: 30)
            try #require(warm.status == 0, "no path before the failure: \(warm.combined)")

            // 6 s of pings, 50 ms apart; the link fails at ~1.5 s for 1 s.
            nonisolated(unsafe) var pingOutput = ""
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                let r = try? Harness.wl("exec", "--lab", lab, "cl", "--", "ping", "-D", "-n", "-i", "0.05", "-c", "120",
                                        "-W", "1", "10.94.2.80", timeout: 60)
                pingOutput = r?.stdout ?? ""
                done.signal()
            }
            Thread.sleep(forTimeInterval: 1.5)
            let fail = try Harness.wl("fail", lab, "r:e1")
            let failedAt = Date()
            // The first ARP requests after the heal are lost: srv ignores
            // requests for 300 ms after it (nft in srv's namespace only).
            let block = try Harness.wl("exec", "--lab", lab, "srv", "--", "sh", "-c",
                                       "nft add table arp wlx && nft add chain arp wlx in '{ type filter hook input priority 0; }' "
                                       + "&& nft add rule arp wlx in arp operation request drop")
            Thread.sleep(forTimeInterval: max(0, 1 - Date().timeIntervalSince(failedAt)))
            let heal = try Harness.wl("heal", lab, "r:e1")
            let downFor = Date().timeIntervalSince(failedAt)
            Thread.sleep(forTimeInterval: 0.3)
            let unblock = try Harness.wl("exec", "--lab", lab, "srv", "--", "nft", "delete", "table", "arp", "wlx")
            done.wait()
            #expect(fail.status == 0 && heal.status == 0, "fail/heal: \(fail.combined) \(heal.combined)")
            #expect(block.status == 0 && unblock.status == 0, "nft: \(block.combined) \(unblock.combined)")
            let (gap, replies) = Self.longestGap(pingOutput)
            print("router link down \(String(format: "%.2f", downFor)) s; longest gap between replies \(String(format: "%.2f", gap)) s; \(replies) of 120 replies")
            #expect(replies > 60, "pings answered: \(replies)")
            // Carrier is seen back within 250 ms of the heal; requests lost for
            // 300 ms, retried 200 ms apart: back within ~0.6 s. On the 1 s tick
            // the retry came at least 1 s after the lost request.
            #expect(gap < downFor + 0.9, "longest gap \(gap) s for a link down \(downFor) s")
        }
    }
}
