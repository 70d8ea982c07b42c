import Foundation
import Testing

/// `check --no-run` and `sim --no-run` refuse a topology file that has
/// `run:` commands — before anything is built — naming each `run:`. No
/// root needed: the refusal comes first.
@Suite struct NoRunTests {
    static let withRun = """
        name: wlnorun
        nodes:
          a:
            kind: host
            interfaces: { eth0: { ip: 10.79.0.1/24 } }
            run: [ "touch /tmp/wirelab-no-run-must-not-exist" ]
          b: { kind: host, interfaces: { eth0: { ip: 10.79.0.2/24 } }, run: "echo b" }
        links:
          - [ a:eth0, b:eth0 ]
        checks:
          - name: a reaches b
            ping: { from: a, to: 10.79.0.2, count: 1 }
        """

    @Test(arguments: ["check", "sim"])
    func refusesEveryRun(_ verb: String) throws {
        let file = try Harness.topologyFile(Self.withRun)
        let r = try Harness.wl(verb, "--no-run", file)
        #expect(r.status == 2, "\(r.combined)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(r.stderr)")
        #expect(lines.first?.hasPrefix("\(file):6:5: error: node 'a' has 1 run: command (\"touch /tmp/wirelab-no-run-must-not-exist\")") == true, "\(r.stderr)")
        #expect(lines.last?.hasPrefix("\(file):7:64: error: node 'b' has 1 run: command (\"echo b\")") == true, "\(r.stderr)")
        #expect(r.stderr.contains("--no-run refuses files that run commands"))
        #expect(r.stdout.isEmpty)
        #expect(Harness.namespaces(prefix: "wl-wlnorun-").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/run/wirelab/wlnorun"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/wirelab-no-run-must-not-exist"))
    }

    @Test func simRunsAFileWithoutRunAsUsual() throws {
        let file = try Harness.topologyFile(Self.withRun.replacingOccurrences(of: "    run: [ \"touch /tmp/wirelab-no-run-must-not-exist\" ]\n", with: "")
            .replacingOccurrences(of: ", run: \"echo b\"", with: ""))
        let captures = (file as NSString).deletingLastPathComponent
        let r = try Harness.wl("sim", "--no-run", file, "--capture", captures)
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout.contains("1 passed"), "\(r.stdout)")
    }
}
