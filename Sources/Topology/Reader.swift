// Typed reading of `YNode`s: every reader either returns a value or records
// an error at the node's position and returns nil. Callers phrase `what` as
// it should read in a message ("mtu", "port of the real server").
import Wire

/// The keys of one YAML map, after checking for unknown and duplicate keys.
struct Fields {
    /// First occurrence of each key, in file order.
    var pairs: [YPair]
    /// The map itself.
    var node: YNode
    /// Unknown keys (already reported).
    var unknown: [String] = []

    subscript(key: String) -> YNode? { pairs.first { $0.name == key }?.value }
    func keyNode(_ key: String) -> YNode? { pairs.first { $0.name == key }?.key }
    func has(_ key: String) -> Bool { pairs.contains { $0.name == key } }
}

struct Reader {
    let d: Diagnostics

    // MARK: Shapes

    /// Reads a map whose keys must be among `keys`. `unknown` may handle an
    /// unknown key itself (returning true); otherwise it is reported with a
    /// suggestion and the list of valid keys.
    func map(_ node: YNode, _ what: String, keys: [String], example: String? = nil,
             duplicate: ((YPair, YPair) -> Void)? = nil,
             unknown: ((YPair) -> Bool)? = nil) -> Fields? {
        guard case let .mapping(pairs) = node.value else {
            d.error(node.location, "\(what) must be a map, not \(node.shape)", hint: example.map { "e.g. \($0)" })
            return nil
        }
        var seen: [String: YPair] = [:]
        var kept: [YPair] = []
        var unknownNames: [String] = []
        for pair in pairs {
            guard let name = pair.name else {
                d.error(pair.key.location, "keys of \(what) must be plain words, not \(pair.key.shape)")
                continue
            }
            if let first = seen[name] {
                if let duplicate { duplicate(first, pair) } else {
                    d.error(pair.key.location, "duplicate key '\(name)' in \(what)",
                            hint: "it is already given at \(first.key.location.lineColumn); each key may appear once")
                }
                continue
            }
            seen[name] = pair
            if !keys.contains(name) {
                unknownNames.append(name)
                if unknown?(pair) == true { continue }
                d.error(pair.key.location, "unknown key '\(name)' in \(what)",
                        hint: Suggest.hint(name, keys, listName: "valid keys"))
                continue
            }
            kept.append(pair)
        }
        return Fields(pairs: kept, node: node, unknown: unknownNames)
    }

    /// A map with arbitrary (name) keys, e.g. `nodes:` or `interfaces:`;
    /// duplicates reported through `duplicate`.
    func namedMap(_ node: YNode, _ what: String, example: String? = nil,
                  duplicate: (YPair, YPair) -> Void) -> [YPair]? {
        guard case let .mapping(pairs) = node.value else {
            if node.isNull { return [] }
            d.error(node.location, "\(what) must be a map, not \(node.shape)", hint: example.map { "e.g. \($0)" })
            return nil
        }
        var seen: [String: YPair] = [:]
        var kept: [YPair] = []
        for pair in pairs {
            guard let name = pair.name else {
                d.error(pair.key.location, "names in \(what) must be plain words, not \(pair.key.shape)")
                continue
            }
            if let first = seen[name] { duplicate(first, pair); continue }
            seen[name] = pair
            kept.append(pair)
        }
        return kept
    }

    /// A list (a null counts as empty).
    func list(_ node: YNode, _ what: String, example: String? = nil) -> [YNode]? {
        switch node.value {
        case let .sequence(items): return items
        default:
            if node.isNull { return [] }
            d.error(node.location, "\(what) must be a list, not \(node.shape)", hint: example.map { "e.g. \($0)" })
            return nil
        }
    }

    /// A list of named items (`checks:`, `drills:`), each decoded by
    /// `decode`; a name is unique among all items, also those with errors
    /// (a duplicate is reported where it stands and skipped).
    func namedList<Item>(_ node: YNode, _ what: String, kind: String, example: String,
                         _ decode: (YNode) -> Item?) -> [Item] {
        guard let items = list(node, what, example: "\(what): [ \(example) ]") else { return [] }
        var out: [Item] = []
        var names: [String: SourceLocation] = [:]
        for item in items {
            if case let .mapping(pairs) = item.value, let n = pairs.first(where: { $0.name == "name" }), let name = n.value.scalar, !n.value.isNull {
                if let first = names[name] {
                    d.error(n.value.location, "duplicate \(kind) name '\(name)'",
                            hint: "it is already used at \(first.lineColumn); \(kind) names must be unique")
                    continue
                }
                names[name] = n.value.location
            }
            if let decoded = decode(item) { out.append(decoded) }
        }
        return out
    }

    /// `http://IPv4[:port][/path]` (a check's `url`, a drill's `http`):
    /// the address, the port (80 if none) and the path ("/" if none);
    /// errors name `what`.
    func httpURL(_ url: String, _ what: String, at location: SourceLocation) -> (IPv4Address, Int, String)? {
        guard url.hasPrefix("http://") else {
            d.error(location, "\(what) '\(url)' must start with http://", hint: "e.g. \"http://10.0.0.100/\"")
            return nil
        }
        let rest = url.dropFirst("http://".count)
        let hostPort = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(hostPort.count)
        let hp = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        guard hp.count <= 2, let host = IPv4Address(hp[0]) else {
            d.error(location, "\(what) '\(url)' must name an IPv4 address", hint: "e.g. \"http://10.0.0.100:8080/\"")
            return nil
        }
        var port = 80
        if hp.count == 2 {
            guard hp[1].allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(hp[1]), (1...65535).contains(p) else {
                d.error(location, "\(what) '\(url)' has a bad port", hint: "ports are 1...65535")
                return nil
            }
            port = p
        }
        // The path goes into a request line: no spaces or control characters.
        if path.contains(where: { $0 == " " || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } == true }) {
            d.error(location, "\(what) '\(url)' has spaces or control characters in its path", hint: "write them percent-encoded, e.g. %20")
            return nil
        }
        return (host, port, path.isEmpty ? "/" : String(path))
    }

    /// A list, or a single scalar standing for a one-element list.
    func listOrScalar(_ node: YNode, _ what: String, example: String? = nil) -> [YNode]? {
        if case .scalar = node.value, !node.isNull { return [node] }
        return list(node, what, example: example)
    }

    /// Records "needs 'key'" at `at` when `fields` lacks `key`.
    func require(_ fields: Fields, _ key: String, _ what: String, at: SourceLocation, example: String? = nil) -> YNode? {
        if let v = fields[key] { return v }
        // A misspelt key was already reported with "did you mean 'key'?".
        if fields.unknown.contains(where: { Suggest.closest(to: $0, in: [key]) != nil }) { return nil }
        d.error(at, "\(what) needs '\(key)'", hint: example.map { "e.g. \($0)" })
        return nil
    }

    // MARK: Scalars

    func string(_ node: YNode, _ what: String) -> String? {
        guard case let .scalar(s, _) = node.value else {
            d.error(node.location, "\(what) must be a string, not \(node.shape)")
            return nil
        }
        if node.isNull {
            d.error(node.location, "\(what) must be a string, not nothing (null)")
            return nil
        }
        return s
    }

    func int(_ node: YNode, _ what: String, in range: ClosedRange<Int>, hint: String? = nil) -> Int? {
        guard case let .scalar(s, quoted) = node.value, !node.isNull else {
            d.error(node.location, "\(what) must be a number, not \(node.shape)")
            return nil
        }
        let isDecimal = !s.isEmpty && s.drop(while: { $0 == "+" || $0 == "-" }).allSatisfy { $0.isASCII && $0.isNumber }
            && s.filter({ $0 == "+" || $0 == "-" }).count <= 1 && s.count <= 19
        guard isDecimal, let n = Int(s) else {
            d.error(node.location, "\(what) must be a whole number, not '\(s)'",
                    hint: "use a number within \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        if quoted {
            d.error(node.location, "\(what) must be a number, not the string \"\(s)\"", hint: "write \(s) without quotes")
            return nil
        }
        guard range.contains(n) else {
            d.error(node.location, "\(what) \(n) is out of range",
                    hint: hint ?? "use a number within \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return n
    }

    func port(_ node: YNode, _ what: String) -> Int? {
        int(node, what, in: 1...65535, hint: "ports are 1...65535")
    }

    func bool(_ node: YNode, _ what: String) -> Bool? {
        if case let .scalar(s, false) = node.value {
            switch s {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: break
            }
        }
        let hint: String?
        switch node.scalar?.lowercased() {
        case "yes", "on", "y": hint = "write true"
        case "no", "off", "n": hint = "write false"
        default: hint = nil
        }
        let quotedBool = node.isQuoted && ["true", "false"].contains(node.scalar?.lowercased() ?? "")
        d.error(node.location, "\(what) must be true or false, not \(node.isQuoted ? "the string \"\(node.scalar!)\"" : node.shape)",
                hint: quotedBool ? "write \(node.scalar!.lowercased()) without quotes" : hint)
        return nil
    }

    func ipv4(_ node: YNode, _ what: String) -> IPv4Address? {
        guard let s = string(node, what) else { return nil }
        if let a = IPv4Address(s) { return a }
        if s.contains("/"), IPv4Prefix(s) != nil {
            d.error(node.location, "\(what) takes an address without a prefix length, not '\(s)'",
                    hint: "write \(s.split(separator: "/")[0])")
        } else {
            d.error(node.location, "\(what) '\(s)' is not an IPv4 address",
                    hint: "write four decimal octets without leading zeros, e.g. 10.0.0.1")
        }
        return nil
    }

    /// An interface address: `a.b.c.d/len`, not the network or broadcast
    /// address of its subnet (unless /31 or /32).
    func interfaceAddress(_ node: YNode, _ what: String) -> IPv4Prefix? {
        guard let s = string(node, what) else { return nil }
        guard s.contains("/") else {
            if IPv4Address(s) != nil {
                d.error(node.location, "\(what) '\(s)' has no prefix length", hint: "write it as \(s)/24 (or the subnet's length)")
            } else {
                d.error(node.location, "\(what) '\(s)' is not an IPv4 address with prefix length", hint: "e.g. 10.0.0.1/24")
            }
            return nil
        }
        guard let p = IPv4Prefix(s) else {
            d.error(node.location, "\(what) '\(s)' is not an IPv4 address with prefix length",
                    hint: "write a.b.c.d/len: decimal octets without leading zeros, len 0...32, e.g. 10.0.0.1/24")
            return nil
        }
        if p.length <= 30 && p.address == p.network {
            d.error(node.location, "\(what) \(s) is the network address of \(p.canonical)",
                    hint: "use a host address such as \(IPv4Address(rawValue: p.network.rawValue + 1))/\(p.length)")
            return nil
        }
        if p.length <= 30 && p.address == p.broadcast {
            d.error(node.location, "\(what) \(s) is the broadcast address of \(p.canonical)",
                    hint: "use a host address such as \(IPv4Address(rawValue: p.broadcast.rawValue - 1))/\(p.length)")
            return nil
        }
        if p.address.isMulticast || p.address.isLoopback || p.address.isUnspecified || p.address.rawValue >> 28 == 0xF {
            d.error(node.location, "\(what) \(s) is not a unicast address", hint: "use a private or documentation address, e.g. 10.0.0.1/24")
            return nil
        }
        return p
    }

    /// A route destination: `default`, `a.b.c.d/len` with host bits clear, or
    /// a bare address (a /32).
    func destination(_ node: YNode, _ what: String) -> IPv4Prefix? {
        guard let s = string(node, what) else { return nil }
        if s == "default" { return IPv4Prefix(address: .any, length: 0) }
        guard let p = IPv4Prefix(s) else {
            d.error(node.location, "\(what) '\(s)' is not a prefix", hint: "write default, a.b.c.d/len or a.b.c.d")
            return nil
        }
        if p.address != p.network {
            d.error(node.location, "\(what) \(s) has host bits set", hint: "did you mean \(p.canonical)?")
            return nil
        }
        return p
    }

    func mac(_ node: YNode, _ what: String) -> MACAddress? {
        guard let s = string(node, what) else { return nil }
        guard let m = MACAddress(s) else {
            d.error(node.location, "\(what) '\(s)' is not a MAC address", hint: "write six hex octets, e.g. 02:00:00:00:00:01")
            return nil
        }
        if m.isMulticast {
            d.error(node.location, "\(what) \(s) is a \(m.isBroadcast ? "broadcast" : "multicast") address",
                    hint: "an interface needs a unicast MAC (first octet even), e.g. 02:00:00:00:00:01")
            return nil
        }
        if m == .zero {
            d.error(node.location, "\(what) 00:00:00:00:00:00 is not a usable address", hint: "e.g. 02:00:00:00:00:01")
            return nil
        }
        return m
    }

    func duration(_ node: YNode, _ what: String, in range: ClosedRange<Int>? = nil) -> DurationSpec? {
        guard case let .scalar(s, _) = node.value, !node.isNull else {
            d.error(node.location, "\(what) must be a duration such as 1s, not \(node.shape)")
            return nil
        }
        guard let v = DurationSpec(s) else {
            let hint = s.allSatisfy({ $0.isASCII && $0.isNumber }) && !s.isEmpty
                ? "add a unit: \(s)s or \(s)ms" : "write a number with a unit: 500ms, 1s, 0.1s, 2m, 1h"
            d.error(node.location, "\(what) '\(s)' is not a duration", hint: hint)
            return nil
        }
        if let range, !range.contains(v.milliseconds) {
            d.error(node.location, "\(what) \(s) is out of range",
                    hint: "use \(DurationSpec(milliseconds: range.lowerBound))...\(DurationSpec(milliseconds: range.upperBound))")
            return nil
        }
        return v
    }

    /// One of an enum's raw values, with "did you mean".
    func choice<T: RawRepresentable & CaseIterable>(_ node: YNode, _ what: String, _ type: T.Type,
                                                    listName: String) -> T? where T.RawValue == String {
        guard let s = string(node, what) else { return nil }
        if let v = T(rawValue: s) { return v }
        let names = T.allCases.map(\.rawValue)
        if let v = T(rawValue: s.lowercased()) {
            d.error(node.location, "unknown \(what) '\(s)'", hint: "write '\(v.rawValue)' in lower case")
            return nil
        }
        d.error(node.location, "unknown \(what) '\(s)'", hint: Suggest.hint(s, names, listName: listName))
        return nil
    }
}
