// Shared helpers: where fixtures and the repository's files are.
import Foundation
@testable import Topology

enum Paths {
    /// The package root, from this file's path (Tests/TopologyTests/Support.swift).
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let topologies = root.appendingPathComponent("Topologies")
    static let schema = root.appendingPathComponent("schema/wirelab-topology.schema.json")

    /// The copied `Fixtures` resource directory.
    static let fixtures: URL = {
        if let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { return url }
        return root.appendingPathComponent("Tests/TopologyTests/Fixtures")
    }()

    static func files(in dir: URL, ext: String) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix("." + ext) }.sorted().map { dir.appendingPathComponent($0) }
    }
}

/// Loads YAML text, returning the error lines (empty on success).
func errorLines(_ yaml: String, file: String = "t.yaml") -> [String] {
    do {
        _ = try TopologyLoader.load(yaml: yaml, file: file)
        return []
    } catch let e as TopologyErrors {
        return e.errors.map(\.description)
    } catch {
        return ["unexpected error type: \(error)"]
    }
}
