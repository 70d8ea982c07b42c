// The JSON schema (schema/wirelab-topology.schema.json) agrees with the
// loader: every shipped example and good fixture validates, and files the
// loader rejects for their shape are rejected by the schema too.
// Needs python3 with the jsonschema and yaml modules (Debian:
// python3-jsonschema, python3-yaml).
import Foundation
import Testing
@testable import Topology
import Wire

enum SchemaValidator {
    /// Prints `PASS path` or `FAIL path …` per file.
    static let script = #"""
    import json, sys
    try:
        import jsonschema, yaml
    except ImportError as e:
        print("MISSING", e); sys.exit(2)
    schema = json.load(open(sys.argv[1], encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for path in sys.argv[2:]:
        try:
            doc = yaml.safe_load(open(path, encoding="utf-8"))
        except yaml.YAMLError as e:
            print("FAIL", path, "yaml:", str(e).replace("\n", " ")); continue
        errs = list(v.iter_errors(doc))
        if errs:
            for e in errs:
                print("FAIL", path, "/".join(map(str, e.absolute_path)) + ":", e.message[:300].replace("\n", " "))
        else:
            print("PASS", path)
    """#

    /// Validates `files`; returns the set that passed and every output line.
    static func run(_ files: [URL]) throws -> (passed: Set<String>, lines: [String]) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, Paths.schema.path] + files.map(\.path)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        if p.terminationStatus != 0 {
            throw ValidatorFailed(status: p.terminationStatus, output: lines.joined(separator: "\n"))
        }
        let passed = Set(lines.filter { $0.hasPrefix("PASS ") }.map { String($0.dropFirst(5)) })
        return (passed, lines)
    }

    struct ValidatorFailed: Error, CustomStringConvertible {
        var status: Int32
        var output: String
        var description: String { "schema validator exited \(status):\n\(output)" }
    }
}

@Suite struct SchemaTests {
    @Test func examplesAndGoodFixturesValidate() throws {
        let files = Paths.files(in: Paths.topologies, ext: "yaml")
            + Paths.files(in: Paths.fixtures.appendingPathComponent("good"), ext: "yaml")
        #expect(files.count >= 7)
        let (passed, lines) = try SchemaValidator.run(files)
        for f in files where !passed.contains(f.path) {
            let why = lines.filter { $0.contains(f.path) }.joined(separator: "\n")
            Issue.record("\(f.lastPathComponent) does not validate against the schema:\n\(why)")
        }
    }

    /// Broken fixtures whose problem is one of shape, key or value syntax —
    /// what a schema can see. (References between parts of the file, like
    /// link ends or next hops, are beyond it.)
    static let shapeErrors = [
        "03-unknown-top-key", "04-missing-name", "05-bad-lab-name", "06-lab-name-too-long", "07-bad-node-names",
        "08-unknown-kind", "09-missing-kind", "10-unknown-node-key", "11-key-for-other-kind", "12-switch-interfaces",
        "16-interface-names", "17-bad-ip", "18-bad-mac", "22-local-addresses-not-fullnat", "23-unknown-scheduler-mode",
        "24-bad-weights", "25-ports-out-of-range", "26-mtu-out-of-range", "29-wrong-shapes", "33-route-syntax",
        "34-quoted-number-and-bool", "36-health-and-durations", "40-interface-key-typo", "44-kernel-names",
        "46-drill-shapes", "48-sync", "50-scheduler-flags", "55-capacity-values", "60-bgp-values",
    ]

    @Test func shapeErrorsAreSchemaErrorsToo() throws {
        let dir = Paths.fixtures.appendingPathComponent("broken")
        let files = Self.shapeErrors.map { dir.appendingPathComponent($0 + ".yaml") }
        let (passed, _) = try SchemaValidator.run(files)
        for f in files {
            #expect(!passed.contains(f.path), "the schema accepts \(f.lastPathComponent), which the loader rejects")
        }
    }

    @Test func theSchemaIsValidJSON() throws {
        let data = try Data(contentsOf: Paths.schema)
        let object = try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        // The node kinds of the schema are the registered ones.
        let defs = try #require(object["$defs"] as? [String: Any])
        let node = try #require(defs["node"] as? [String: Any])
        let props = try #require(node["properties"] as? [String: Any])
        let kind = try #require(props["kind"] as? [String: Any])
        #expect((kind["enum"] as? [String]) == NodeKind.allCases.map(\.rawValue))
        #expect(Set(props.keys) == Set(NodeKey.allCases.map(\.rawValue)))
        // Per kind, the keys the schema allows are the registry's.
        let allOf = try #require(node["allOf"] as? [[String: Any]])
        for branch in allOf {
            let ifKind = ((branch["if"] as? [String: Any])?["properties"] as? [String: Any])?["kind"] as? [String: Any]
            let kindName = try #require(ifKind?["const"] as? String)
            let k = try #require(NodeKind(rawValue: kindName))
            let names = ((branch["then"] as? [String: Any])?["propertyNames"] as? [String: Any])?["enum"] as? [String]
            #expect(Set(names ?? []) == Set(k.validKeys), "schema keys for \(k)")
        }
    }
}

/// The schema's lists of names are the ones the loader takes: the
/// scheduler, forwarding mode, service protocol and ECMP field names come
/// from Wire's shared vocabulary, so a name added there must be added here.
@Suite struct SchemaVocabularyTests {
    static func schema() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: Paths.schema)) as? [String: Any] ?? [:]
    }

    static func enumeration(_ object: Any?, _ path: [String]) -> [String]? {
        var node = object
        for key in path { node = (node as? [String: Any])?[key] }
        return (node as? [String: Any])?["enum"] as? [String]
    }

    @Test func serviceNamesMatchTheVocabulary() throws {
        let defs = try Self.schema()["$defs"]
        let service = ["service", "properties"]
        #expect(Self.enumeration(defs, service + ["scheduler"]) == SchedulerKind.allCases.map(\.rawValue))
        #expect(Self.enumeration(defs, service + ["mode"]) == ForwardingMode.allCases.map(\.rawValue))
        #expect(Self.enumeration(defs, service + ["protocol"]) == TransportProtocol.allCases.map(\.rawValue))
        #expect(Self.enumeration(defs, service + ["flags", "items"]) == SchedulerFlag.allCases.map(\.rawValue))
        #expect(Self.enumeration(defs, ["node", "properties", "ecmp", "properties", "fields", "items"])
                == ECMPHashField.allCases.map(\.rawValue))
    }
}
