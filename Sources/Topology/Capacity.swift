// Capacities for `wirelab plan`: `bandwidth:` on links and `capacity:` on
// nodes (DESIGN.md, "Redundancy and scale-out"). Rates are written as
// DESIGN.md writes them — `100G`, `25G`, `10M` bits per second, `10Mpps`
// packets per second — with decimal SI prefixes (K = 10³ … T = 10¹²).

/// A rate: bits per second, or packets per second (`pps`).
public struct Rate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Unit: String, Sendable, Hashable { case bits = "", packets = "pps" }
    /// Per second, in `unit`s.
    public var value: Double
    public var unit: Unit

    public init(_ value: Double, _ unit: Unit = .bits) {
        self.value = value
        self.unit = unit
    }

    static let prefixes: [(String, Double)] = [("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3), ("k", 1e3), ("", 1)]

    /// Parses `<number>[K|M|G|T]` (bits per second; a trailing `bps` is
    /// allowed) or `<number>[K|M|G]pps`. The number is decimal, with an
    /// optional fraction; a bare number has no unit and is refused.
    public init?(_ text: some StringProtocol) {
        var s = Substring(text)
        var unit = Unit.bits
        if s.hasSuffix("pps") { unit = .packets; s = s.dropLast(3) } else if s.hasSuffix("bps") { s = s.dropLast(3) }
        guard let (p, scale) = Self.prefixes.first(where: { !$0.0.isEmpty && s.hasSuffix($0.0) }) ?? (unit == .packets ? ("", 1) : nil)
        else { return nil }
        s = s.dropLast(p.count)
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        var rest = s.dropFirst(digits.count)
        if rest.first == "." {
            rest = rest.dropFirst()
            guard !rest.isEmpty, rest.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            rest = ""
        }
        guard !digits.isEmpty, rest.isEmpty, digits.count <= 9, let n = Double(s) else { return nil }
        self.init(n * scale, unit)
    }

    /// `200G`, `12.5G`, `10Mpps`: the largest prefix that leaves at least 1.
    public var description: String {
        if value.isInfinite { return "unlimited" }
        for (p, scale) in Self.prefixes where p != "k" && (value >= scale || p.isEmpty) {
            let x = value / scale
            let rounded = (x * 100).rounded() / 100
            let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(format2(rounded))
            return text + p + unit.rawValue
        }
        return "0"
    }

    private func format2(_ x: Double) -> String {
        var s = String(x)
        if let dot = s.firstIndex(of: "."), s.distance(from: dot, to: s.endIndex) > 3 { s = String(s[..<s.index(dot, offsetBy: 3)]) }
        return s
    }

    public static func < (a: Rate, b: Rate) -> Bool { a.value < b.value }
}

/// `capacity:` of a node: what it can carry, for `wirelab plan`. Every
/// field is optional; a missing one is no limit (the plan reports when no
/// element limits a result).
public struct NodeCapacity: Sendable, Hashable {
    /// Bits per second each NIC carries in each direction (`nic:`).
    public var nic: Rate?
    /// Bits per second the whole node forwards (`node:`).
    public var node: Rate?
    /// Packets per second the whole node forwards (`pps:`).
    public var pps: Rate?
    /// NICs with several ports (`nics: [ [eth0, eth1], … ]`): the ports of
    /// one NIC share its `nic:` rate and work active/backup, first live
    /// port first (a bond). Interfaces not listed are each a NIC of their own.
    public var nics: [[String]] = []
    public var location: SourceLocation?

    public init(nic: Rate? = nil, node: Rate? = nil, pps: Rate? = nil, nics: [[String]] = [], location: SourceLocation? = nil) {
        self.nic = nic
        self.node = node
        self.pps = pps
        self.nics = nics
        self.location = location
    }

    public var isEmpty: Bool { nic == nil && node == nil && pps == nil }
}

/// The range a written rate must fall in.
enum RateLimits {
    static let bits: ClosedRange<Double> = 1e3...1e15
    static let packets: ClosedRange<Double> = 1...1e12
}

extension RawDecoder {
    static let capacityExample = "capacity: { nic: 50G, node: 100G, pps: 10Mpps }"

    /// A rate of `unit` (bits: `100G`; packets: `10Mpps`), in range.
    func rate(_ node: YNode, _ what: String, _ unit: Rate.Unit) -> Rate? {
        let example = unit == .bits ? "100G, 25G, 10M or 2.5G (bits per second)" : "10Mpps or 500Kpps (packets per second)"
        guard case let .scalar(s, _) = node.value, !node.isNull else {
            d.error(node.location, "\(what) must be a rate such as \(unit == .bits ? "100G" : "10Mpps"), not \(node.shape)")
            return nil
        }
        guard let v = Rate(s) else {
            let bare = !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
            d.error(node.location, "\(what) '\(s)' is not a rate",
                    hint: bare ? "add a unit: \(s)\(unit == .bits ? "G" : "Mpps"); e.g. \(example)" : "e.g. \(example)")
            return nil
        }
        guard v.unit == unit else {
            d.error(node.location, "\(what) '\(s)' is \(v.unit == .packets ? "packets" : "bits") per second, not \(unit == .packets ? "packets" : "bits")",
                    hint: unit == .bits ? "write bits per second, e.g. 100G; packets per second go in pps:" : "write packets per second, e.g. 10Mpps")
            return nil
        }
        let range = unit == .bits ? RateLimits.bits : RateLimits.packets
        guard range.contains(v.value) else {
            d.error(node.location, "\(what) \(s) is out of range",
                    hint: "use \(Rate(range.lowerBound, unit))...\(Rate(range.upperBound, unit))")
            return nil
        }
        return v
    }

    /// `capacity: { nic, node, pps, nics }` (interface names in `nics` are
    /// checked against the node by the resolver).
    func decodeCapacity(_ v: YNode) -> (NodeCapacity, [[SourceLocation]])? {
        guard let f = r.map(v, "capacity", keys: ["nic", "node", "pps", "nics"], example: Self.capacityExample) else { return nil }
        var c = NodeCapacity(location: v.location), locations: [[SourceLocation]] = []
        if f.pairs.isEmpty {
            d.error(v.location, "capacity names no limit", hint: "e.g. \(Self.capacityExample)")
            return nil
        }
        if let n = f["nic"] { if let x = rate(n, "nic capacity", .bits) { c.nic = x } }
        if let n = f["node"] { if let x = rate(n, "node capacity", .bits) { c.node = x } }
        if let n = f["pps"] { if let x = rate(n, "pps capacity", .packets) { c.pps = x } }
        if let n = f["nics"], let groups = r.list(n, "nics", example: "nics: [ [ eth0, eth1 ], [ eth2, eth3 ] ]") {
            var seen: [String: SourceLocation] = [:]
            for g in groups {
                guard let ports = r.list(g, "a NIC's ports", example: "[ eth0, eth1 ]") else { continue }
                if ports.isEmpty { d.error(g.location, "a NIC has no ports", hint: "list its interfaces, e.g. [ eth0, eth1 ]"); continue }
                var names: [String] = [], locs: [SourceLocation] = []
                for p in ports {
                    guard let name = r.string(p, "NIC port") else { continue }
                    if let first = seen[name] {
                        d.error(p.location, "interface '\(name)' is already a port of a NIC at \(first.lineColumn)",
                                hint: "an interface belongs to one NIC")
                        continue
                    }
                    seen[name] = p.location
                    names.append(name)
                    locs.append(p.location)
                }
                c.nics.append(names)
                locations.append(locs)
            }
        }
        // Kept when a value was wrong (the file fails to load anyway), so the
        // resolver still checks the NICs' ports.
        return (c, locations)
    }
}
