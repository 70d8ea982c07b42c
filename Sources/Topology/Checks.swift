// Checks (`checks:`): parsed and validated here, run by the Lab layer.
//
// The forms kept are the ones in DESIGN.md, typed but not yet interpreted:
//   send: { from, to: "IP:PORT", proto } + expect: [ { at: a:if | b:if, src-mac, … } ]
//   http: { from, url, count } + expect-spread: { node: ">= 5" }
//   ping: { from, to: IP | node, count }, reach: { from, to: "IP:PORT", proto }
//   expect: "dropped at NODE (reason)" for send, ping and reach.
import Wire

/// One named check.
public struct Check: Sendable, Hashable {
    public var name: String
    public var location: SourceLocation
    public var kind: CheckKind
}

public enum CheckKind: Sendable, Hashable {
    /// Send one probe flow and check what it looks like at each hop.
    case send(SendProbe, expect: SendExpectation)
    /// HTTP requests, and how the answers spread over the real servers.
    case http(HTTPProbe, spread: [SpreadExpectation])
    /// ICMP echo; `expectDropped` nil means the replies must come back.
    case ping(PingProbe, expectDropped: DropExpectation?)
    /// A TCP connect or UDP echo; `expectDropped` nil means it must succeed.
    case reach(ReachProbe, expectDropped: DropExpectation?)
}

/// Protocol of a `send` probe.
public enum ProbeProtocol: String, Sendable, Hashable, CaseIterable {
    case tcp, udp, icmp
}

/// The IP protocol of a frame seen at a hop.
public enum PacketProtocol: String, Sendable, Hashable, CaseIterable {
    case tcp, udp, icmp, ipip
}

/// `send: { from: client, to: "110.242.68.3:80", proto: tcp }`
public struct SendProbe: Sendable, Hashable {
    /// A host node.
    public var from: String
    public var to: IPv4Address
    /// nil for icmp.
    public var port: Int?
    /// Default tcp (icmp when `to` has no port).
    public var proto: ProbeProtocol
    public var location: SourceLocation
}

public enum SendExpectation: Sendable, Hashable {
    /// What the probe's frames look like where they pass, in path order.
    case hops([HopExpectation])
    /// The probe must be dropped at a node.
    case dropped(DropExpectation)
}

/// One `expect:` item of a `send` check: the frame seen at `at` (any of the
/// alternatives, written `a:if | b:if`) must match every field given.
public struct HopExpectation: Sendable, Hashable {
    public var at: [Endpoint]
    public var srcMAC: MACMatch?
    public var dstMAC: MACMatch?
    public var srcIP: IPv4Address?
    public var dstIP: IPv4Address?
    public var srcPort: Int?
    public var dstPort: Int?
    public var proto: PacketProtocol?
    public var ttl: Int?
    /// For `proto: ipip` (TUN): the encapsulated header's addresses.
    public var innerSrcIP: IPv4Address?
    public var innerDstIP: IPv4Address?
    public var location: SourceLocation
}

/// A MAC in an expectation: an interface's MAC (`gw:eth1`) or a literal.
public enum MACMatch: Sendable, Hashable, CustomStringConvertible {
    /// The MAC of the interface, resolved at load time.
    case interface(Endpoint, MACAddress)
    case literal(MACAddress)

    public var address: MACAddress {
        switch self {
        case let .interface(_, m), let .literal(m): return m
        }
    }

    public var description: String {
        switch self {
        case let .interface(e, m): return "\(e) (\(m))"
        case let .literal(m): return m.description
        }
    }
}

/// `expect: dropped at NODE (reason)`.
public struct DropExpectation: Sendable, Hashable {
    public var node: String
    /// The drop reason the node must report, if given.
    public var reason: String?
    public var location: SourceLocation

    public init(node: String, reason: String?, location: SourceLocation) {
        self.node = node
        self.reason = reason
        self.location = location
    }
}

/// `http: { from: client, url: "http://110.242.68.3/", count: 30 }`
public struct HTTPProbe: Sendable, Hashable {
    public var from: String
    public var url: String
    public var host: IPv4Address
    /// Default 80.
    public var port: Int
    /// Default "/".
    public var path: String
    /// Number of requests, default 1.
    public var count: Int
    public var location: SourceLocation
}

/// `expect-spread: { rs1: ">= 5" }`: how many answers came from `node`.
public struct SpreadExpectation: Sendable, Hashable {
    public enum Comparison: String, Sendable, Hashable, CaseIterable {
        case atLeast = ">=", atMost = "<=", exactly = "==", moreThan = ">", lessThan = "<"
    }
    public var node: String
    public var comparison: Comparison
    public var count: Int
    public var location: SourceLocation

    public func isSatisfied(by answers: Int) -> Bool {
        switch comparison {
        case .atLeast: return answers >= count
        case .atMost: return answers <= count
        case .exactly: return answers == count
        case .moreThan: return answers > count
        case .lessThan: return answers < count
        }
    }
}

/// `ping: { from: client, to: 10.0.0.1 | node, count: 3 }`
public struct PingProbe: Sendable, Hashable {
    public var from: String
    public var to: ProbeTarget
    /// Default 3.
    public var count: Int
    public var location: SourceLocation
}

public enum ProbeTarget: Sendable, Hashable, CustomStringConvertible {
    case address(IPv4Address)
    /// A node: its first interface address.
    case node(String)

    public var description: String {
        switch self {
        case let .address(a): return a.description
        case let .node(n): return n
        }
    }
}

/// `reach: { from: client, to: "10.0.0.100:80", proto: tcp }`
public struct ReachProbe: Sendable, Hashable {
    public var from: String
    public var to: IPv4Address
    public var port: Int
    /// Default tcp.
    public var proto: TransportProtocol
    public var location: SourceLocation
}

// MARK: - Decoding

/// What check decoding needs to know about the resolved lab.
struct CheckContext {
    var nodes: [String: NodeKind?]
    var nodeOrder: [String]
    /// Every interface (declared or switch port) and its MAC.
    var interfaces: [Endpoint: MACAddress]
    /// Interface names per node, for suggestions.
    var interfaceNames: [String: [String]]
    /// Nodes whose interfaces could not all be read: don't report unknown ones.
    var incompleteNodes: Set<String>
    /// Nodes with at least one interface address.
    var addressedNodes: Set<String>
    /// Each bond (`r1:bond0`) and its members: a MAC names it, but frames
    /// are seen and links fail on its members.
    var bondMembers: [Endpoint: [String]] = [:]
}

struct CheckDecoder {
    let r: Reader
    let ctx: CheckContext
    var d: Diagnostics { r.d }

    static let actions = ["send", "http", "ping", "reach"]
    static let example = "{ name: web answers, http: { from: client, url: \"http://10.0.0.100/\", count: 10 } }"

    func decode(_ v: YNode) -> [Check] {
        r.namedList(v, "checks", kind: "check", example: Self.example, decodeCheck)
    }

    func decodeCheck(_ item: YNode) -> Check? {
        guard let f = r.map(item, "check", keys: ["name"] + Self.actions + ["expect", "expect-spread"], example: Self.example) else { return nil }
        let nameNode = r.require(f, "name", "check", at: item.location, example: "name: web answers")
        let name = nameNode.flatMap { r.string($0, "check name") }
        let actions = f.pairs.filter { Self.actions.contains($0.name!) }
        guard actions.count == 1 else {
            if actions.isEmpty {
                d.error(item.location, "check\(name.map { " '\($0)'" } ?? "") says nothing to do",
                        hint: "give one of \(Self.actions.joined(separator: ", "))")
            } else {
                d.error(actions[1].key.location, "check\(name.map { " '\($0)'" } ?? "") has both '\(actions[0].name!)' and '\(actions[1].name!)'",
                        hint: "write one action per check")
            }
            return nil
        }
        let action = actions[0]
        let expect = f["expect"], spread = f["expect-spread"]
        if let spread, action.name != "http" {
            d.error(f.keyNode("expect-spread")!.location, "'expect-spread' goes with 'http', not '\(action.name!)'",
                    hint: "use 'expect' with \(action.name!)")
            _ = spread
        }
        if expect != nil, action.name == "http" {
            d.error(f.keyNode("expect")!.location, "'expect' does not go with 'http'", hint: "use expect-spread: { rs1: \">= 5\" }")
        }
        let location = nameNode?.location ?? item.location
        let kind: CheckKind?
        switch action.name! {
        case "send":
            let probe = decodeSend(action.value)
            var expectation: SendExpectation?
            if let expect {
                if case .sequence = expect.value {
                    if let items = r.list(expect, "expect") {
                        if items.isEmpty { d.error(expect.location, "expect lists no hop", hint: "e.g. expect: [ { at: gw:eth1, dst-ip: 10.0.0.100 } ]") }
                        let hops = items.compactMap(decodeHop)
                        if hops.count == items.count { expectation = .hops(hops) }
                    }
                } else if let drop = decodeDrop(expect) {
                    expectation = .dropped(drop)
                }
            } else {
                d.error(action.key.location, "a send check needs 'expect'",
                        hint: "list what the probe looks like at each hop, e.g. expect: [ { at: gw:eth1, dst-ip: 10.0.0.100 } ], or expect: dropped at gw (no route)")
            }
            kind = probe.flatMap { p in expectation.map { .send(p, expect: $0) } }
        case "http":
            let probe = decodeHTTP(action.value)
            var spreads: [SpreadExpectation] = []
            var ok = true
            if let spread, let pairs = r.namedMap(spread, "expect-spread", example: "expect-spread: { rs1: \">= 5\", rs2: \">= 5\" }", duplicate: { first, again in
                d.error(again.key.location, "'\(again.name!)' is listed twice in expect-spread", hint: "it is already listed at \(first.key.location.lineColumn)")
            }) {
                for p in pairs {
                    guard nodeExists(p.name!, at: p.key.location), let s = decodeSpread(p) else { ok = false; continue }
                    spreads.append(s)
                }
            }
            kind = ok ? probe.map { .http($0, spread: spreads) } : nil
        case "ping":
            let probe = decodePing(action.value)
            let drop = expect.flatMap(decodeDrop)
            kind = (expect != nil && drop == nil) ? nil : probe.map { .ping($0, expectDropped: drop) }
        default:
            let probe = decodeReach(action.value)
            let drop = expect.flatMap(decodeDrop)
            kind = (expect != nil && drop == nil) ? nil : probe.map { .reach($0, expectDropped: drop) }
        }
        guard let name, let kind else { return nil }
        return Check(name: name, location: location, kind: kind)
    }

    // MARK: References

    /// Records an error unless `name` is a node.
    @discardableResult
    func nodeExists(_ name: String, at location: SourceLocation) -> Bool {
        if ctx.nodes[name] != nil { return true }
        d.error(location, "no node is named '\(name)'", hint: Suggest.didYouMean(name, ctx.nodeOrder) ?? "nodes: \(Suggest.list(ctx.nodeOrder))")
        return false
    }

    /// The `from:` of a probe: a host node.
    func source(_ f: Fields, _ what: String, at: SourceLocation) -> String? {
        guard let n = r.require(f, "from", what, at: at, example: "from: client"), let s = r.string(n, "from") else { return nil }
        guard nodeExists(s, at: n.location) else { return nil }
        if let kind = ctx.nodes[s] ?? nil, kind != .host {
            d.error(n.location, "probes start on host nodes; '\(s)' is a \(kind.rawValue)",
                    hint: "send from a host such as \(ctx.nodeOrder.first { ctx.nodes[$0] == .host }.map { "'\($0)'" } ?? "a client host")")
            return nil
        }
        return s
    }

    /// An interface (declared or a switch port) named `node:if`; a bond
    /// only where `bond` allows it (a MAC).
    func endpoint(_ text: String, at location: SourceLocation, what: String, bond: Bool = false) -> Endpoint? {
        guard let e = Endpoint(text) else {
            d.error(location, "\(what) '\(text)' must be written node:interface", hint: "e.g. gw:eth1")
            return nil
        }
        guard nodeExists(e.node, at: location) else { return nil }
        if !bond, let members = ctx.bondMembers[e] {
            d.error(location, "'\(text)' in '\(what)' is a bond; frames cross, and links fail at, its members",
                    hint: "name a member: \(members.map { "\(e.node):\($0)" }.joined(separator: " | "))")
            return nil
        }
        if ctx.interfaces[e] == nil && !ctx.incompleteNodes.contains(e.node) {
            let names = ctx.interfaceNames[e.node] ?? []
            let isSwitch = ctx.nodes[e.node] == .switch
            let list = names.isEmpty ? "'\(e.node)' has no \(isSwitch ? "linked ports" : "interfaces")"
                : "'\(e.node)' has \(isSwitch ? "ports" : "interfaces"): \(Suggest.list(names))"
            d.error(location, "'\(text)' in '\(what)' names \(isSwitch ? "a port" : "an interface") '\(e.node)' does not have",
                    hint: Suggest.didYouMean(e.interface, names).map { "\($0) \(list)" } ?? list)
            return nil
        }
        return e
    }

    /// `IP:PORT` or `IP`.
    func addressAndPort(_ n: YNode, _ what: String) -> (IPv4Address, Int?)? {
        guard let s = r.string(n, what) else { return nil }
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPv4Address(parts[0]) else {
            d.error(n.location, "\(what) '\(s)' is not an address", hint: "write IP:PORT, e.g. \"10.0.0.100:80\"")
            return nil
        }
        guard parts.count == 2 else { return (a, nil) }
        guard let p = Int(parts[1]), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), (1...65535).contains(p) else {
            d.error(n.location, "port '\(parts[1])' in \(what) '\(s)' is not a port", hint: "ports are 1...65535")
            return nil
        }
        return (a, p)
    }

    // MARK: Actions

    func decodeSend(_ v: YNode) -> SendProbe? {
        let ex = "send: { from: client, to: \"10.0.0.100:80\", proto: tcp }"
        guard let f = r.map(v, "send", keys: ["from", "to", "proto"], example: ex) else { return nil }
        let from = source(f, "send", at: v.location)
        let to = r.require(f, "to", "send", at: v.location, example: "to: \"10.0.0.100:80\"").flatMap { addressAndPort($0, "to") }
        var proto: ProbeProtocol?
        if let p = f["proto"] { guard let x = r.choice(p, "proto", ProbeProtocol.self, listName: "protocols") else { return nil }; proto = x }
        guard let from, let (addr, port) = to else { return nil }
        let resolved = proto ?? (port == nil ? .icmp : .tcp)
        if resolved == .icmp, port != nil {
            d.error(f["to"]!.location, "an icmp probe has no port", hint: "write to: \"\(addr)\"")
            return nil
        }
        if resolved != .icmp, port == nil {
            d.error(f["to"]!.location, "a \(resolved.rawValue) probe needs a port", hint: "write to: \"\(addr):80\"")
            return nil
        }
        return SendProbe(from: from, to: addr, port: port, proto: resolved, location: v.location)
    }

    func decodeHTTP(_ v: YNode) -> HTTPProbe? {
        let ex = "http: { from: client, url: \"http://10.0.0.100/\", count: 30 }"
        guard let f = r.map(v, "http", keys: ["from", "url", "count"], example: ex) else { return nil }
        let from = source(f, "http", at: v.location)
        var count = 1
        if let c = f["count"] { guard let n = r.int(c, "count", in: 1...100_000) else { return nil }; count = n }
        guard let un = r.require(f, "url", "http", at: v.location, example: "url: \"http://10.0.0.100/\""),
              let url = r.string(un, "url") else { return nil }
        guard let (host, port, path) = r.httpURL(url, "url", at: un.location) else { return nil }
        guard let from else { return nil }
        return HTTPProbe(from: from, url: url, host: host, port: port, path: path,
                         count: count, location: v.location)
    }

    func decodePing(_ v: YNode) -> PingProbe? {
        let ex = "ping: { from: client, to: 10.0.0.1, count: 3 }"
        guard let f = r.map(v, "ping", keys: ["from", "to", "count"], example: ex) else { return nil }
        let from = source(f, "ping", at: v.location)
        var count = 3
        if let c = f["count"] { guard let n = r.int(c, "count", in: 1...10_000) else { return nil }; count = n }
        guard let tn = r.require(f, "to", "ping", at: v.location, example: "to: 10.0.0.1"), let s = r.string(tn, "to") else { return nil }
        let target: ProbeTarget
        if let a = IPv4Address(s) { target = .address(a) } else if ctx.nodes[s] != nil {
            let isSwitch = ctx.nodes[s] == .switch
            guard ctx.addressedNodes.contains(s) || (!isSwitch && ctx.incompleteNodes.contains(s)) else {
                d.error(tn.location, "'\(s)' has no address to ping",
                        hint: isSwitch ? "a switch is layer 2 only; ping a host behind it" : "give '\(s)' an interface address, or ping another node")
                return nil
            }
            target = .node(s)
        } else {
            if s.first?.isNumber == true {
                d.error(tn.location, "to '\(s)' is not an IPv4 address", hint: "e.g. 10.0.0.1")
            } else {
                nodeExists(s, at: tn.location)
            }
            return nil
        }
        guard let from else { return nil }
        return PingProbe(from: from, to: target, count: count, location: v.location)
    }

    func decodeReach(_ v: YNode) -> ReachProbe? {
        let ex = "reach: { from: client, to: \"10.0.0.100:80\", proto: tcp }"
        guard let f = r.map(v, "reach", keys: ["from", "to", "proto"], example: ex) else { return nil }
        let from = source(f, "reach", at: v.location)
        var proto = TransportProtocol.tcp
        if let p = f["proto"] { guard let x = r.choice(p, "proto", TransportProtocol.self, listName: "protocols") else { return nil }; proto = x }
        guard let tn = r.require(f, "to", "reach", at: v.location, example: "to: \"10.0.0.100:80\""),
              let (addr, port) = addressAndPort(tn, "to") else { return nil }
        guard let port else {
            d.error(tn.location, "reach needs a port", hint: "write to: \"\(addr):80\"")
            return nil
        }
        guard let from else { return nil }
        return ReachProbe(from: from, to: addr, port: port, proto: proto, location: v.location)
    }

    // MARK: Expectations

    static let hopKeys = ["at", "src-mac", "dst-mac", "src-ip", "dst-ip", "src-port", "dst-port", "proto", "ttl",
                          "inner-src-ip", "inner-dst-ip"]

    func decodeHop(_ v: YNode) -> HopExpectation? {
        guard let f = r.map(v, "expect item", keys: Self.hopKeys, example: "{ at: gw:eth1, src-ip: 10.0.0.1, dst-mac: lvs:eth0 }") else { return nil }
        var ok = true
        var hop = HopExpectation(at: [], location: v.location)
        if let an = r.require(f, "at", "expect item", at: v.location, example: "at: gw:eth1 | gw:eth2"), let s = r.string(an, "at") {
            var col = an.location.column + (an.isQuoted ? 1 : 0)
            for alt in s.split(separator: "|", omittingEmptySubsequences: false) {
                let lead = alt.prefix { $0 == " " }.count
                let text = alt.trimming(" ")
                let loc = SourceLocation(file: an.location.file, line: an.location.line, column: col + lead)
                col += alt.unicodeScalars.count + 1
                if text.isEmpty {
                    d.error(loc, "empty alternative in at '\(s)'", hint: "write a:if | b:if")
                    ok = false
                    continue
                }
                if let e = endpoint(text, at: loc, what: "at") { hop.at.append(e) } else { ok = false }
            }
        } else { ok = false }
        func mac(_ key: String) -> MACMatch? {
            guard let n = f[key] else { return nil }
            guard let s = r.string(n, key) else { ok = false; return nil }
            if let m = MACAddress(s) { return .literal(m) }
            if s.contains(":"), s.split(separator: ":").count == 2 {
                guard let e = endpoint(s, at: n.location, what: key, bond: true) else { ok = false; return nil }
                if let m = ctx.interfaces[e] { return .interface(e, m) }
                ok = false
                return nil
            }
            d.error(n.location, "\(key) '\(s)' is neither an interface nor a MAC address", hint: "write node:interface (e.g. gw:eth1) or a MAC (e.g. 02:00:00:00:00:01)")
            ok = false
            return nil
        }
        func ip(_ key: String) -> IPv4Address? {
            guard let n = f[key] else { return nil }
            guard let a = r.ipv4(n, key) else { ok = false; return nil }
            return a
        }
        func port(_ key: String) -> Int? {
            guard let n = f[key] else { return nil }
            guard let p = r.port(n, key) else { ok = false; return nil }
            return p
        }
        hop.srcMAC = mac("src-mac")
        hop.dstMAC = mac("dst-mac")
        hop.srcIP = ip("src-ip")
        hop.dstIP = ip("dst-ip")
        hop.srcPort = port("src-port")
        hop.dstPort = port("dst-port")
        hop.innerSrcIP = ip("inner-src-ip")
        hop.innerDstIP = ip("inner-dst-ip")
        if let n = f["proto"] { hop.proto = r.choice(n, "proto", PacketProtocol.self, listName: "protocols"); if hop.proto == nil { ok = false } }
        if let n = f["ttl"] { hop.ttl = r.int(n, "ttl", in: 0...255); if hop.ttl == nil { ok = false } }
        if (hop.innerSrcIP != nil || hop.innerDstIP != nil), let p = hop.proto, p != .ipip {
            d.error(f["proto"]!.location, "inner-src-ip/inner-dst-ip describe an ipip packet, but proto is \(p.rawValue)",
                    hint: "use proto: ipip, or drop the inner addresses")
            ok = false
        }
        return ok ? hop : nil
    }

    /// `dropped at NODE` or `dropped at NODE (reason)`.
    func decodeDrop(_ v: YNode) -> DropExpectation? {
        let ex = "expect: dropped at gw (no route)"
        guard case let .scalar(s, _) = v.value, !v.isNull else {
            d.error(v.location, "expect must be a list of hops or 'dropped at NODE (reason)', not \(v.shape)", hint: "e.g. \(ex)")
            return nil
        }
        let prefix = "dropped at "
        guard s.hasPrefix(prefix) else {
            d.error(v.location, "expect '\(s)' must be a list of hops or 'dropped at NODE (reason)'", hint: "e.g. \(ex)")
            return nil
        }
        let rest = s.dropFirst(prefix.count)
        let node = String(rest.prefix { $0 != " " && $0 != "(" })
        var tail = rest.dropFirst(node.count).trimming(" ")
        var reason: String?
        if !tail.isEmpty {
            guard tail.hasPrefix("("), tail.hasSuffix(")"), tail.count >= 2 else {
                d.error(v.location, "expect '\(s)' must end with the node or a reason in parentheses", hint: "e.g. \(ex)")
                return nil
            }
            tail.removeFirst(); tail.removeLast()
            reason = tail.trimming(" ")
            if reason!.isEmpty { reason = nil }
        }
        let nodeLoc = SourceLocation(file: v.location.file, line: v.location.line,
                                     column: v.location.column + (v.isQuoted ? 1 : 0) + prefix.count)
        guard !node.isEmpty else {
            d.error(nodeLoc, "expect '\(s)' names no node", hint: "e.g. \(ex)")
            return nil
        }
        guard nodeExists(node, at: nodeLoc) else { return nil }
        return DropExpectation(node: node, reason: reason, location: v.location)
    }

    func decodeSpread(_ p: YPair) -> SpreadExpectation? {
        let v = p.value
        guard case let .scalar(s, quoted) = v.value, !v.isNull else {
            d.error(v.location, "expected count for '\(p.name!)' must be like \">= 5\", not \(v.shape)", hint: "use >=, <=, ==, > or < and a number")
            return nil
        }
        var text = s.trimming(" ")
        var cmp = SpreadExpectation.Comparison.exactly
        for c in [SpreadExpectation.Comparison.atLeast, .atMost, .exactly, .moreThan, .lessThan] where text.hasPrefix(c.rawValue) {
            cmp = c
            text = String(text.dropFirst(c.rawValue.count)).trimming(" ")
            break
        }
        guard let n = Int(text), n >= 0, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            d.error(v.location, "expected count '\(s)' for '\(p.name!)' is not a comparison", hint: "write e.g. \">= 5\", \"== 0\" or 10")
            return nil
        }
        _ = quoted
        return SpreadExpectation(node: p.name!, comparison: cmp, count: n, location: v.location)
    }
}

extension StringProtocol {
    func trimming(_ set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
