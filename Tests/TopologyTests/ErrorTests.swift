// The error values themselves, and loader behaviour that is not tied to one
// fixture: ordering, collection across stages, files, line endings.
import Foundation
import Testing
@testable import Topology

@Suite struct ErrorTests {
    @Test func descriptionIsFileLineColumnErrorMessageHint() {
        let e = TopologyError(location: SourceLocation(file: "two-hosts.yaml", line: 12, column: 5),
                              message: "link end 'clinet:eth0' names no node", hint: "did you mean 'client'?")
        #expect(e.description == "two-hosts.yaml:12:5: error: link end 'clinet:eth0' names no node; did you mean 'client'?")
        let plain = TopologyError(location: SourceLocation(file: "a.yaml", line: 1, column: 1), message: "the file is empty")
        #expect(plain.description == "a.yaml:1:1: error: the file is empty")
        let all = TopologyErrors([e, plain])
        #expect(all.description == e.description + "\n" + plain.description)
        #expect(all.errorDescription == all.description)
    }

    @Test func errorsFromBothStagesComeTogetherInFileOrder() {
        // A resolve error (link end) before a decode error (mtu) in the file,
        // and a decode error (kind) before both.
        let yaml = """
        name: order
        nodes:
          h1: { kind: hots }
          h2: { kind: host, interfaces: { eth0: { ip: 10.0.0.2/24 } } }
        links:
          - [ h3:eth0, h2:eth0 ]
          - { ends: [ h1:eth0, h2:eth1 ], mtu: 99999 }
        """
        let lines = errorLines(yaml)
        #expect(lines == [
            "t.yaml:3:15: error: unknown node kind 'hots'; did you mean 'host'? kinds: host, switch, router, director",
            "t.yaml:6:7: error: link end 'h3:eth0' names no node; did you mean 'h1'?",
            "t.yaml:7:24: error: link end 'h2:eth1' names an interface 'h2' does not declare; did you mean 'eth0'? 'h2' declares: eth0",
            "t.yaml:7:40: error: mtu 99999 is out of range; link MTUs are 68...9000",
        ])
    }

    @Test func missingFile() {
        #expect(throws: TopologyErrors.self) { try TopologyLoader.load(path: "/nonexistent/lab.yaml") }
        do { _ = try TopologyLoader.load(path: "/nonexistent/lab.yaml") } catch let e as TopologyErrors {
            #expect(e.description == "/nonexistent/lab.yaml:1:1: error: no such file")
        } catch { Issue.record("\(error)") }
    }

    @Test func crlfLineEndingsKeepLineNumbers() {
        let yaml = "name: crlf\r\nnodes:\r\n  h1:\r\n    kind: host\r\n    kind: router\r\n"
        #expect(errorLines(yaml) == [
            "t.yaml:3:3: error: a host 'h1' has no interfaces; declare one and link it, e.g. interfaces: { eth0: { ip: 10.0.0.1/24 } }",
            "t.yaml:5:5: error: duplicate key 'kind' in node 'h1'; it is already given at 4:5; each key may appear once",
        ])
    }

    @Test func columnsCountUnicodeScalars() {
        let yaml = "name: ünï\nnodes: { h1: { kind: hôst } }\n"
        #expect(errorLines(yaml) == [
            "t.yaml:1:7: error: lab name 'ünï' cannot be used in namespace names (wl-<lab>-<node>); use 1...20 characters of a-z, 0-9 and '-', starting and ending with a letter or digit, e.g. 'n'",
            "t.yaml:2:22: error: unknown node kind 'hôst'; did you mean 'host'? kinds: host, switch, router, director",
        ])
    }

    @Test func manyDuplicateKeysAreAllReported() {
        var yaml = "name: dups\nnodes:\n"
        for _ in 0..<3 { for i in 1...4 { yaml += "  h\(i): { kind: host }\n" } }
        let lines = errorLines(yaml)
        #expect(lines.filter { $0.contains("duplicate node name") }.count == 8)
        #expect(lines.first { $0.contains("duplicate") } == "t.yaml:7:3: error: duplicate node name 'h1'; 'h1' is already defined at 3:3; node names must be unique")
    }

    @Test func aDocumentThatIsNotAMap() {
        #expect(errorLines("- a\n- b\n") == ["t.yaml:1:1: error: the topology file must be a map, not a list; e.g. name: my-lab, then nodes:, links: and checks: sections"])
        #expect(errorLines("just words\n") == ["t.yaml:1:1: error: the topology file must be a map, not 'just words'; e.g. name: my-lab, then nodes:, links: and checks: sections"])
    }

    @Test func twoDocumentsAreASyntaxError() {
        let lines = errorLines("name: a\nnodes: {}\n---\nname: b\n")
        #expect(lines.count == 1)
        #expect(lines[0].hasPrefix("t.yaml:3:1: error: YAML syntax error: but found another document"))
    }

    @Test func versionOneOnly() {
        let ok = "version: 1\nname: v\nnodes: { sw: { kind: switch } }\nlinks: [ [ sw:a, sw2:b ] ]\n"
        #expect(!errorLines(ok).contains { $0.contains("version") })
        #expect(errorLines("version: 2\nname: v\nnodes: { sw: { kind: switch } }\n").first
                == "t.yaml:1:10: error: topology format version 2 is not supported; this wirelab reads version 1")
    }

    // MARK: Suggestions

    @Test(arguments: [
        ("clinet", ["client", "server"], "client"),
        ("servces", ["services", "serve"], "services"),
        ("xdp", ["afxdp", "afpacket"], "afxdp"),
        ("gateway", ["to", "via"], "via"),
        ("rrr", ["rr", "wrr", "lc"], "rr"),
        ("h1", ["h2", "h11"], "h2"),
    ])
    func didYouMean(_ word: String, _ candidates: [String], _ expected: String) {
        #expect(Suggest.closest(to: word, in: candidates) == expected)
    }

    @Test func noSuggestionWhenNothingIsClose() {
        #expect(Suggest.closest(to: "loadbalancer", in: NodeKind.allCases.map(\.rawValue)) == nil)
        #expect(Suggest.closest(to: "colour", in: ["kind", "interfaces", "routes"]) == nil)
    }

    @Test func distanceCountsTranspositionsAsOneEdit() {
        #expect(Suggest.distance("clinet", "client") == 1)
        #expect(Suggest.distance("abc", "abc") == 0)
        #expect(Suggest.distance("", "abc") == 3)
        #expect(Suggest.distance("kitten", "sitting") == 3)
    }
}

@Suite struct DurationTests {
    @Test(arguments: [("500ms", 500), ("1s", 1000), ("2m", 120_000), ("300s", 300_000), ("1h", 3_600_000), ("0s", 0),
                      ("1.5s", 1500), ("0.1s", 100), ("0.05s", 50), ("0.5m", 30_000), ("2.25h", 8_100_000)])
    func parses(_ text: String, _ ms: Int) {
        #expect(DurationSpec(text)?.milliseconds == ms)
    }

    @Test(arguments: ["", "1", "s", "-1s", "1 s", "1sec", "ms", "10000000000s", "1.5ms", "0.0001s", ".5s", "1.s", "1.5"])
    func rejects(_ text: String) {
        #expect(DurationSpec(text) == nil)
    }

    @Test func printsInTheLargestWholeUnit() {
        #expect(DurationSpec(milliseconds: 500).description == "500ms")
        #expect(DurationSpec(milliseconds: 1500).description == "1500ms")
        #expect(DurationSpec.seconds(300).description == "5m")
        #expect(DurationSpec.seconds(7200).description == "2h")
        #expect(DurationSpec.seconds(0).description == "0s")
        #expect(DurationSpec.seconds(2).duration == .seconds(2))
        #expect(DurationSpec(milliseconds: 250).seconds == 0.25)
    }
}

@Suite struct EndpointTests {
    @Test func parsesNodeColonInterface() {
        #expect(Endpoint("sw:p1") == Endpoint(node: "sw", interface: "p1"))
        #expect(Endpoint("sw:p1")?.description == "sw:p1")
        for bad in ["sw", "sw:", ":p1", "a:b:c", ""] { #expect(Endpoint(bad) == nil, "\(bad)") }
    }
}
