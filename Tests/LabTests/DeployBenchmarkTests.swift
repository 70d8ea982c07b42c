import Bench
import Foundation
import Lab
import Testing
import Topology

/// `wirelab bench deploy` — correctness only. How fast `up`/`down` are is
/// measured by the benchmark itself (BENCHMARKS.md), never asserted here.
struct DeployBenchmarkTests {
    static let fourNodes = """
        name: wltdb
        nodes:
          a:
            kind: host
            interfaces: { eth0: { ip: 10.79.0.1/24 } }
            routes: [ "default via 10.79.0.2" ]
            serve: { http: 8080 }
          b:
            kind: host
            interfaces: { eth0: { ip: 10.79.0.2/24 } }
          c:
            kind: host
            interfaces: { eth0: { ip: 10.79.0.3/24 } }
          sw:
            kind: switch
        links:
          - [ a:eth0, sw:p1 ]
          - [ b:eth0, sw:p2 ]
          - [ c:eth0, sw:p3 ]
        """

    @Test func medianOfOddAndEvenCounts() {
        #expect(DeployBenchmark.median([3, 1, 2]) == 2)
        #expect(DeployBenchmark.median([4, 1, 3, 2]) == 2.5)
        #expect(DeployBenchmark.median([]) == 0)
    }

    @Test func baselineScriptsDoTheProcessWorkUpDoes() throws {
        let topology = try TopologyLoader.load(path: try Harness.topologyFile(Self.fourNodes))
        let plan = LabPlan(topology: topology, serveCommand: ["/opt/wire lab/wirelab", "serve"])
        let up = DeployBenchmark.baselineUpScript(plan, logDirectory: "/tmp/logs")
        #expect(up.hasPrefix(IPScript.up(plan)), "the baseline is IPScript's script, with processes after it")
        #expect(up.contains("ip netns exec wl-wltdb-a '/opt/wire lab/wirelab' serve --http 8080 --name a </dev/null >/tmp/logs/a-serve.log 2>&1 &"))
        #expect(up.contains("ss -N wl-wltdb-a -Hltn 'sport = :8080'"), "waits for the server like up does")
        let down = DeployBenchmark.baselineDownScript(plan)
        #expect(down.contains("ip netns pids wl-wltdb-a | xargs -r kill"))
        #expect(!down.contains("ip netns pids wl-wltdb-b"), "only namespaces with processes are searched")
        for ns in plan.namespaces { #expect(down.contains("ip netns delete \(ns.name)\n")) }
        #expect(DeployBenchmark.shellQuoted("it's") == "'it'\\''s'")
    }

    @Test(.enabled(if: Harness.isRoot, "needs root to create network namespaces"))
    func oneRunOfATinyLabReportsBothSidesAndLeavesNothing() throws {
        let file = try Harness.topologyFile(Self.fourNodes)
        defer { _ = try? Harness.wl("down", "wltdb") }
        #expect(Harness.namespaces(prefix: "wl-wltdb-").isEmpty, "a lab wltdb exists before the test")

        let result = try Harness.wl("bench", "deploy", file, "--runs", "1", "--settle", "0", "--json")
        #expect(result.status == 0, "bench deploy failed: \(result.combined)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(json?["verified"] as? Bool == true, "\(result.stdout)")
        #expect(json?["namespaces"] as? Int == 4)
        #expect(json?["verifiedNamespaces"] as? Int == 4)
        #expect(json?["processes"] as? Int == 1)
        for side in ["wirelab", "ipScript"] {
            let times = json?[side] as? [String: Any]
            for phase in ["up", "down"] {
                let values = times?[phase] as? [Double] ?? []
                #expect(values.count == 1 && values[0] > 0, "\(side) \(phase): \(values)")
            }
        }
        #expect(result.stderr.contains("run 1/1"), "progress goes to stderr: \(result.stderr)")

        #expect(Harness.namespaces(prefix: "wl-wltdb-").isEmpty, "namespaces of wltdb left behind")
        #expect(!FileManager.default.fileExists(atPath: "/run/wirelab/wltdb"), "state of wltdb left behind")
    }
}
