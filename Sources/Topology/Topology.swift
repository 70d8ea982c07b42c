// Topology — parse → resolve → validate a topology file (format v1,
// DESIGN.md) into a `ResolvedTopology`, or throw `TopologyErrors` naming
// file:line:column for every problem found.
//
// Stages: `YAMLTree` (Yams compose; positions kept), `RawDecoder` (shapes,
// keys, values, per node), `TopologyResolver` (links, segments, addresses,
// routes, services, checks). Node kinds are registered in `NodeKinds.swift`.
import Foundation

public enum TopologyLoader {
    /// Loads the file at `path`; locations name the path as given.
    public static func load(path: String) throws -> ResolvedTopology {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file (is it UTF-8 text?)" : "no such file"
            throw TopologyErrors([TopologyError(location: SourceLocation(file: path, line: 1, column: 1), message: reason)])
        }
        return try load(yaml: text, file: path)
    }

    /// Loads topology text; `file` is the name used in locations.
    public static func load(yaml: String, file: String) throws -> ResolvedTopology {
        let diagnostics = Diagnostics()
        let reader = Reader(d: diagnostics)
        guard let composed = YAMLTree.compose(yaml: yaml, file: file, diagnostics: diagnostics) else {
            throw TopologyErrors(diagnostics.sorted)
        }
        guard let root = composed else {
            throw TopologyErrors([TopologyError(location: SourceLocation(file: file, line: 1, column: 1),
                                                message: "the file is empty",
                                                hint: "a topology needs at least name: and nodes:")])
        }
        let raw = RawDecoder(r: reader, file: file).decode(root: root)
        let topology = TopologyResolver(r: reader, raw: raw, file: file).resolve()
        if diagnostics.count > 0 { throw TopologyErrors(diagnostics.sorted) }
        return topology
    }
}
