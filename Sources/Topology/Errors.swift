// Errors with file:line:column, and the "did you mean" machinery.
import Foundation

/// A position in a topology file, 1-based, printed `file:line:column`.
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    /// Counted in Unicode scalars, as libyaml does.
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
    /// `line:column`, for pointing at another place in the same file.
    public var lineColumn: String { "\(line):\(column)" }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }
}

/// One problem in a topology file: where, what is wrong, what would be right.
public struct TopologyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    /// What is wrong.
    public var message: String
    /// What would be right ("did you mean 'client'?", the valid keys, an example).
    public var hint: String?

    public init(location: SourceLocation, message: String, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    /// `file:line:col: error: message; hint`
    public var description: String {
        "\(location): error: \(message)" + (hint.map { "; \($0)" } ?? "")
    }
}

/// Every error found in a file, in file order. Thrown by `TopologyLoader`.
public struct TopologyErrors: Error, Sendable, CustomStringConvertible, LocalizedError {
    public var errors: [TopologyError]

    public init(_ errors: [TopologyError]) { self.errors = errors }

    /// One `file:line:col: error: …` line per error.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
    public var errorDescription: String? { description }
}

/// Collects errors while loading; sorted into file order at the end.
final class Diagnostics {
    private(set) var errors: [TopologyError] = []

    func error(_ location: SourceLocation, _ message: String, hint: String? = nil) {
        errors.append(TopologyError(location: location, message: message, hint: hint))
    }

    var count: Int { errors.count }

    /// Errors sorted by position (stable), exact duplicates removed.
    var sorted: [TopologyError] {
        var seen = Set<TopologyError>()
        return errors.enumerated()
            .sorted { ($0.element.location, $0.offset) < ($1.element.location, $1.offset) }
            .map(\.element)
            .filter { seen.insert($0).inserted }
    }
}

// MARK: - Suggestions

enum Suggest {
    /// Optimal-string-alignment distance (Levenshtein plus adjacent
    /// transpositions, so `clinet` is one edit from `client`).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased().unicodeScalars), b = Array(b.lowercased().unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }

    /// Words people write for a key of the format.
    static let synonyms: [String: String] = [
        "gateway": "via", "gw": "via", "nexthop": "via", "next-hop": "via", "nexthops": "via",
        "dest": "to", "destination": "to", "prefix": "to", "dst": "to",
        "address": "ip", "adress": "ip", "adresses": "ip", "addresses": "ip", "addr": "ip", "ips": "ip", "ipv4": "ip",
        "proto": "protocol", "type": "kind", "port-list": "reals", "backends": "reals", "servers": "reals",
        "real-servers": "reals", "realservers": "reals", "algorithm": "scheduler", "sched": "scheduler",
        "forwarding": "mode", "method": "mode", "local-address": "local-addresses", "laddr": "local-addresses",
        "sched-flags": "flags", "scheduler-flags": "flags", "sloppy-tcp": "sloppy",
        "node": "nodes", "link": "links", "check": "checks", "default": "defaults", "lab": "name",
        "interface": "interfaces", "ifaces": "interfaces", "route": "routes", "service": "services",
    ]

    /// The closest candidate within a length-dependent budget, if any.
    static func closest(to word: String, in candidates: some Sequence<String>) -> String? {
        let candidates = Array(candidates)
        if let s = synonyms[word.lowercased()], candidates.contains(s) { return s }
        var best: (String, Int)?
        for c in candidates where c != word {
            // "xdp" for "afxdp": one contains the other.
            if word.count >= 3, c.lowercased().contains(word.lowercased()) || (c.count >= 3 && word.lowercased().contains(c.lowercased())) {
                let d = abs(c.count - word.count)
                if best == nil || d < best!.1 { best = (c, d) }
                continue
            }
            let d = distance(word, c)
            let budget = max(1, min(3, max(word.count, c.count) / 3))
            guard d <= budget else { continue }
            if best == nil || d < best!.1 { best = (c, d) }
        }
        return best?.0
    }

    /// `did you mean 'x'?` or nil.
    static func didYouMean(_ word: String, _ candidates: some Sequence<String>) -> String? {
        closest(to: word, in: candidates).map { "did you mean '\($0)'?" }
    }

    /// `a, b, c` (with an ellipsis after `limit`).
    static func list(_ items: [String], limit: Int = 12) -> String {
        items.count <= limit ? items.joined(separator: ", ")
            : items.prefix(limit).joined(separator: ", ") + ", … (\(items.count) in all)"
    }

    /// `a`, `a and b`, `a, b and c`.
    static func and(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    /// "did you mean 'x'? valid …: a, b" / "valid …: a, b".
    static func hint(_ word: String, _ candidates: [String], listName: String) -> String {
        let list = "\(listName): \(Suggest.list(candidates))"
        if let dym = didYouMean(word, candidates) { return "\(dym) \(list)" }
        return list
    }
}
