// The YAML document as a tree of values that each keep their position.
//
// Yams composes the text into `Yams.Node`s carrying marks; we copy that into a
// small tree of our own (`YNode`) so that every later stage can point at the
// exact line and column of what it reads. Scalars keep their raw text and
// whether they were quoted: the loader does its own typing (a quoted "80" is a
// string, `yes` is not a boolean), consistent with the JSON schema.
//
// Duplicate keys: libyaml accepts them and Yams rejects the whole document at
// the first one, naming only one position. To report every duplicate at the
// second occurrence (and keep finding other errors), we rename the occurrence
// Yams names to a private-use placeholder of the same length and compose again;
// the placeholder is mapped back while copying, and the mapping readers report
// the duplicate like any other error.
import Foundation
import Yams

struct YNode {
    enum Value {
        case scalar(String, quoted: Bool)
        case sequence([YNode])
        case mapping([YPair])
    }

    var value: Value
    var location: SourceLocation

    /// A plain `~`, `null` or empty scalar.
    var isNull: Bool {
        if case let .scalar(s, quoted) = value, !quoted {
            return s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL"
        }
        return false
    }

    var scalar: String? {
        if case let .scalar(s, _) = value { return s }
        return nil
    }

    var isQuoted: Bool {
        if case let .scalar(_, q) = value { return q }
        return false
    }

    /// How the value reads in an error message: "a list", "a map", "'text'".
    var shape: String {
        switch value {
        case .sequence: return "a list"
        case .mapping: return "a map"
        case .scalar: return isNull ? "nothing (null)" : "'\(scalar!)'"
        }
    }
}

struct YPair {
    var key: YNode
    var value: YNode
    /// The key's text (non-scalar keys have none).
    var name: String? { key.scalar }
}

enum YAMLTree {
    /// Composes `yaml` into a tree, or records the syntax error and returns nil.
    /// An empty document composes to nil without an error; the caller decides.
    static func compose(yaml: String, file: String, diagnostics: Diagnostics) -> YNode?? {
        var text = yaml
        // Placeholders: one private-use scalar per renamed duplicate key.
        var originals: [Unicode.Scalar] = []
        let base: UInt32 = 0xF0000
        let canRename = !yaml.unicodeScalars.contains { (0xF0000...0xFFFFD).contains($0.value) }

        while true {
            do {
                guard let root = try Yams.compose(yaml: text, Resolver.basic) else { return .some(nil) }
                return .some(convert(root, file: file, originals: originals, base: base))
            } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
                let mark = context.mark
                if canRename, originals.count < 10_000,
                   let renamed = rename(in: text, line: mark.line, column: mark.column,
                                        placeholder: Unicode.Scalar(base + UInt32(originals.count))!) {
                    text = renamed.text
                    originals.append(renamed.original)
                    continue
                }
                diagnostics.error(SourceLocation(file: file, line: mark.line, column: mark.column),
                                  "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", "))",
                                  hint: "each key may appear once in a map")
                return nil
            } catch let error as YamlError {
                record(error, file: file, yaml: yaml, diagnostics: diagnostics)
                return nil
            } catch {
                diagnostics.error(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")
                return nil
            }
        }
    }

    private static func record(_ error: YamlError, file: String, yaml: String, diagnostics: Diagnostics) {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        func context(_ c: YamlError.Context?) -> String? {
            c.map { "\($0.text) at \($0.mark.line):\($0.mark.column)" }
        }
        switch error {
        case let .scanner(c, problem, mark, _), let .parser(c, problem, mark, _), let .composer(c, problem, mark, _):
            var hint = context(c)
            if problem.contains("mapping values are not allowed") {
                hint = "check the indentation of this line against the lines above, or quote a value that contains ': '"
            }
            if problem.contains("found character that cannot start any token"),
               let line = yaml.split(separator: "\n", omittingEmptySubsequences: false)
                   .dropFirst(mark.line - 1).first, line.contains("\t") {
                hint = "YAML indentation must use spaces, not tabs"
            }
            diagnostics.error(at(mark), "YAML syntax error: \(problem)", hint: hint)
        case let .reader(problem, offset, _, _):
            var line = 1, column = 1
            if let offset {
                for byte in yaml.utf8.prefix(offset) {
                    if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
                }
            }
            diagnostics.error(SourceLocation(file: file, line: line, column: column), "cannot read the file: \(problem)")
        default:
            diagnostics.error(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")
        }
    }

    /// Replaces the first scalar of the key at line:column (1-based, columns in
    /// Unicode scalars) with `placeholder`, skipping an opening quote.
    private static func rename(in text: String, line: Int, column: Int,
                               placeholder: Unicode.Scalar) -> (text: String, original: Unicode.Scalar)? {
        var scalars = Array(text.unicodeScalars)
        var currentLine = 1, i = 0
        while currentLine < line, i < scalars.count {
            if scalars[i] == "\n" { currentLine += 1 } else if scalars[i] == "\r" {
                if i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
                currentLine += 1
            }
            i += 1
        }
        i += column - 1
        guard currentLine == line, i < scalars.count else { return nil }
        if scalars[i] == "\"" || scalars[i] == "'" { i += 1 }
        guard i < scalars.count, !"\\\"':{}[],#\n\r ".unicodeScalars.contains(scalars[i]) else { return nil }
        let original = scalars[i]
        scalars[i] = placeholder
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return (String(view), original)
    }

    private static func convert(_ node: Yams.Node, file: String, originals: [Unicode.Scalar], base: UInt32) -> YNode {
        func loc(_ mark: Mark?) -> SourceLocation {
            SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
        }
        func restore(_ s: String) -> String {
            guard !originals.isEmpty else { return s }
            var view = String.UnicodeScalarView()
            for u in s.unicodeScalars {
                let k = Int(u.value) - Int(base)
                view.append(k >= 0 && k < originals.count ? originals[k] : u)
            }
            return String(view)
        }
        func go(_ node: Yams.Node) -> YNode {
            switch node {
            case let .scalar(s):
                let quoted = s.style == .singleQuoted || s.style == .doubleQuoted
                    || s.style == .literal || s.style == .folded
                return YNode(value: .scalar(restore(s.string), quoted: quoted), location: loc(s.mark))
            case let .sequence(seq):
                return YNode(value: .sequence(seq.map(go)), location: loc(seq.mark))
            case let .mapping(map):
                return YNode(value: .mapping(map.map { YPair(key: go($0.key), value: go($0.value)) }),
                             location: loc(map.mark))
            case let .alias(alias):
                return YNode(value: .scalar("*\(alias.anchor.rawValue)", quoted: true), location: loc(alias.mark))
            }
        }
        return go(node)
    }
}
