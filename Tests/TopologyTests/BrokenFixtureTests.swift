// The broken-topology corpus: every Fixtures/broken/NN-what.yaml must fail to
// load with exactly the error lines in its NN-what.expected sidecar (the full
// `file:line:col: error: …` text, in file order).
//
// To (re)write the sidecars after an intended message change, run
//   WIRELAB_RECORD_FIXTURES=1 swift test --filter BrokenFixtureTests
// and review the diff (the next build refreshes the copied resources).
import Foundation
import Testing
@testable import Topology

@Suite struct BrokenFixtureTests {
    static let dir = Paths.fixtures.appendingPathComponent("broken")
    static let cases = Paths.files(in: dir, ext: "yaml").map(\.lastPathComponent)
    static let record = ProcessInfo.processInfo.environment["WIRELAB_RECORD_FIXTURES"] == "1"

    @Test func theCorpusIsLargeEnough() {
        #expect(Self.cases.count >= 25)
    }

    @Test(arguments: cases)
    func failsWithTheExpectedErrors(_ name: String) throws {
        let yaml = try String(contentsOf: Self.dir.appendingPathComponent(name), encoding: .utf8)
        let actual = errorLines(yaml, file: name)
        #expect(!actual.isEmpty, "\(name) loaded without errors")
        let expectedName = String(name.dropLast(".yaml".count)) + ".expected"
        if Self.record {
            let source = Paths.root.appendingPathComponent("Tests/TopologyTests/Fixtures/broken").appendingPathComponent(expectedName)
            try (actual.joined(separator: "\n") + "\n").write(to: source, atomically: true, encoding: .utf8)
            return
        }
        let expectedText = try String(contentsOf: Self.dir.appendingPathComponent(expectedName), encoding: .utf8)
        let expected = expectedText.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        #expect(actual == expected, "\(name): got\n\(actual.joined(separator: "\n"))")
    }

    /// The same files through `load(path:)`: locations then carry the path.
    @Test(arguments: cases.prefix(3))
    func loadPathNamesThePath(_ name: String) {
        let path = Self.dir.appendingPathComponent(name).path
        #expect(throws: TopologyErrors.self) { try TopologyLoader.load(path: path) }
        do { _ = try TopologyLoader.load(path: path) } catch let e as TopologyErrors {
            #expect(e.errors.allSatisfy { $0.location.file == path })
        } catch { Issue.record("unexpected \(error)") }
    }
}
