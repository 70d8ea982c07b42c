// Stage 1: decode the YAML tree into raw, per-node values.
//
// Here every value is checked on its own: shapes, keys, types, ranges,
// address syntax, which keys a kind accepts. Everything that relates one
// part of the file to another (link ends, segments, next hops, real servers,
// checks) is stage 2, `Resolver.swift`.
import Wire

struct RawInterface {
    var name: String
    var location: SourceLocation
    var mac: MACAddress?
    var macLocation: SourceLocation?
    var addresses: [IPv4Prefix] = []
    var addressLocations: [SourceLocation] = []
    /// A bond's member ports (`members:`), empty for a plain interface.
    var members: [String] = []
    var memberLocations: [SourceLocation] = []
    /// Where `members:` is written (its value).
    var membersLocation: SourceLocation?
}

struct RawRoute {
    var route: Route
    var hopLocations: [SourceLocation]
    /// Where `bfd:` is written in a route map (nil: not written).
    var bfdLocation: SourceLocation? = nil
}

struct RawNode {
    var name: String
    var location: SourceLocation
    /// nil when missing or unknown (an error was recorded).
    var kind: NodeKind?
    var interfaces: [RawInterface] = []
    /// The node's ports as links name them: its interfaces, each bond's
    /// members in place of the bond.
    var portNames: [String] { interfaces.flatMap { $0.members.isEmpty ? [$0.name] : $0.members } }
    /// False when `interfaces:` could not be read at all: link ends naming
    /// this node's interfaces are then not checked.
    var interfacesKnown = true
    /// False when the node's kind, an interface, an address or its VRRP
    /// could not be read: checks that need all addresses are skipped.
    var complete = true
    /// False when a route could not be read.
    var routesComplete = true
    var routes: [RawRoute] = []
    var datapath: DatapathKind?
    /// `fastpath:` and where its value is written.
    var fastPath: Bool?
    var fastPathLocation: SourceLocation?
    var serve: ServeSpec?
    var run: [String] = []
    /// Where `run:` is written (its key), when it is.
    var runLocation: SourceLocation?
    var auto = true
    var nat: [StaticNAT] = []
    var services: [Service] = []
    var vrrp: [VRRPConfig] = []
    /// Per group, where each VIP is written.
    var vrrpVIPLocations: [[SourceLocation]] = []
    var sync: SyncSpec?
    /// Where `sync`'s `interface` value is written.
    var syncInterfaceLocation: SourceLocation?
    var bgp: BGPSpec?
    var bfd: BFDSpec?
    var ecmp = ECMPHashConfig()
    var capacity = NodeCapacity()
    /// Where each `capacity.nics` port name is written.
    var nicLocations: [[SourceLocation]] = []
}

struct RawEnd {
    var endpoint: Endpoint
    var location: SourceLocation
}

struct RawLink {
    var ends: [RawEnd]
    var mtu: Int
    var bandwidth: Rate?
    var location: SourceLocation
}

struct RawTopology {
    var name: String?
    var nameLocation: SourceLocation
    var defaults = Defaults()
    var nodes: [RawNode] = []
    var links: [RawLink] = []
    /// Link list unreadable: don't report interfaces as unlinked.
    var linksComplete = true
    var checks: YNode?
    var drills: YNode?
}

/// Limits on names, so that everything a lab creates can be named.
///
/// Where the names go: a node's namespace is `wl-<lab>-<node>` (a file
/// `/run/netns/<name>`: iproute2 and the kernel take up to NAME_MAX 255
/// bytes, no '/', not "." or ".."), its state `/run/wirelab/<lab>/`, and
/// its veth ends are named exactly as its interfaces (and switch ports),
/// inside its namespace — no name is derived from a lab or node name for
/// the kernel's 15-byte interface names. The 20 and 24 below are wirelab's
/// own choice (readable `ip netns` lists, at most 48 bytes per namespace),
/// well inside the kernel's limit; the character set keeps every derived
/// name a plain word for files, shells and pcapng interface names.
public enum TopologyLimits {
    /// Lab names: `[a-z0-9-]`, at most this long (namespaces are `wl-<lab>-<node>`).
    public static let maxLabNameLength = 20
    /// Node names: `[a-z0-9-]`, at most this long.
    public static let maxNodeNameLength = 24
    /// Linux IFNAMSIZ (16, include/uapi/linux/if.h) - 1 for the NUL:
    /// the kernel's `dev_valid_name` (net/core/dev.c) refuses a name of
    /// IFNAMSIZ bytes or more.
    public static let maxInterfaceNameLength = 15
    /// Interface names the kernel refuses although `dev_valid_name` takes
    /// them: `sysctl_dev_name_is_allowed` (include/linux/netdevice.h) keeps
    /// them for /proc/sys/net/ipv{4,6}/conf/{all,default}; `ip link add all
    /// type veth …` answers EINVAL (measured). wirelab also writes
    /// `net/ipv4/conf/<interface>/…` sysctls of real servers: a name from
    /// the file must never be one of those directories.
    public static let reservedInterfaceNames: Set<String> = ["all", "default"]
    public static let mtuRange = 68...9000
    public static let defaultMTU = 1500
}

struct RawDecoder {
    let r: Reader
    let file: String
    var d: Diagnostics { r.d }

    static let topKeys = ["version", "name", "defaults", "nodes", "links", "checks", "drills"]

    func decode(root: YNode) -> RawTopology {
        var raw = RawTopology(nameLocation: root.location)
        guard let top = r.map(root, "the topology file", keys: Self.topKeys,
                              example: "name: my-lab, then nodes:, links: and checks: sections") else {
            raw.linksComplete = false
            return raw
        }
        if let v = top["version"], let n = r.int(v, "version", in: 1...Int.max, hint: "this wirelab reads version 1"), n != 1 {
            d.error(v.location, "topology format version \(n) is not supported", hint: "this wirelab reads version 1")
        }
        if let n = r.require(top, "name", "the topology", at: root.location, example: "name: my-lab") {
            raw.nameLocation = n.location
            if let s = r.string(n, "name") {
                if Self.validLabName(s) { raw.name = s } else {
                    d.error(n.location, "lab name '\(s)' \(Self.nameProblem(s, max: TopologyLimits.maxLabNameLength))",
                            hint: "use 1...\(TopologyLimits.maxLabNameLength) characters of a-z, 0-9 and '-', starting and ending with a letter or digit, e.g. '\(Self.suggestName(s, max: TopologyLimits.maxLabNameLength))'")
                }
            }
        }
        if let dn = top["defaults"] { raw.defaults = decodeDefaults(dn) }
        if let nn = r.require(top, "nodes", "the topology", at: root.location,
                              example: "nodes: { h1: { kind: host, interfaces: { eth0: { ip: 10.0.0.1/24 } } } }") {
            raw.nodes = decodeNodes(nn)
        }
        if let ln = top["links"] {
            (raw.links, raw.linksComplete) = decodeLinks(ln)
        }
        raw.checks = top["checks"]
        raw.drills = top["drills"]
        return raw
    }

    // MARK: Names

    static func validLabName(_ s: String) -> Bool { validName(s, max: TopologyLimits.maxLabNameLength) }
    static func validNodeName(_ s: String) -> Bool { validName(s, max: TopologyLimits.maxNodeNameLength) }

    /// What is wrong with a lab or node name that `validName` refuses: its
    /// length (in bytes, as the kernel counts) when that is the only fault.
    static func nameProblem(_ s: String, max: Int) -> String {
        let bytes = s.utf8.count
        let charactersOK = s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        if bytes > max, charactersOK, s.first != "-", s.last != "-" {
            return "is \(bytes) characters long, more than the \(max) wirelab allows in namespace names (wl-<lab>-<node>)"
        }
        return "cannot be used in namespace names (wl-<lab>-<node>)"
    }

    static func validName(_ s: String, max: Int) -> Bool {
        guard (1...max).contains(s.count), s.first != "-", s.last != "-" else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    static func suggestName(_ s: String, max: Int) -> String {
        var out = ""
        for c in s.lowercased().unicodeScalars {
            if ("a"..."z").contains(c) || ("0"..."9").contains(c) { out.unicodeScalars.append(c) } else if out.last != "-" {
                out += "-"
            }
        }
        out = String(out.prefix(max))
        while out.hasPrefix("-") { out.removeFirst() }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "lab1" : out
    }

    /// Linux `dev_valid_name` (net/core/dev.c: not empty, fewer than
    /// IFNAMSIZ bytes, not "." or "..", no '/', ':' or whitespace) and
    /// `sysctl_dev_name_is_allowed` (not "all" or "default"), plus a
    /// conservative character set, which also keeps the name a plain path
    /// component of the sysctl files wirelab writes
    /// (`net/ipv4/conf/<interface>/arp_ignore`).
    static func interfaceNameProblem(_ s: String) -> (String, String)? {
        if s.isEmpty { return ("is empty", "e.g. eth0") }
        let bytes = s.utf8.count
        if bytes > TopologyLimits.maxInterfaceNameLength {
            let unit = bytes == s.unicodeScalars.count ? "characters" : "bytes"
            let shorter = Self.prefix(s, bytes: TopologyLimits.maxInterfaceNameLength)
            return ("is \(bytes) \(unit) long; Linux allows at most \(TopologyLimits.maxInterfaceNameLength) (IFNAMSIZ)",
                    Self.plainInterfaceName(shorter) ? "use a shorter name such as '\(shorter)'"
                        : "use at most \(TopologyLimits.maxInterfaceNameLength) letters, digits, '-', '_' and '.', e.g. eth0")
        }
        if s == "lo" { return ("is the loopback interface every namespace already has", "use another name such as eth0") }
        if TopologyLimits.reservedInterfaceNames.contains(s) {
            return ("is reserved: /proc/sys/net/ipv4/conf/\(s) is not an interface's, and the kernel refuses the name",
                    "use another name such as eth0")
        }
        if s == "." || s == ".." { return ("is not a valid interface name", "e.g. eth0") }
        if !Self.plainInterfaceName(s) { return ("is not a valid interface name", "use letters, digits, '-', '_' and '.', e.g. eth0") }
        return nil
    }

    static func plainInterfaceName(_ s: String) -> Bool {
        s.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// The longest prefix of `s` of at most `bytes` UTF-8 bytes.
    static func prefix(_ s: String, bytes: Int) -> String {
        var out = "", n = 0
        for c in s.unicodeScalars {
            n += String(c).utf8.count
            if n > bytes { break }
            out.unicodeScalars.append(c)
        }
        return out
    }

    // MARK: Defaults

    func decodeDefaults(_ node: YNode) -> Defaults {
        var out = Defaults()
        if node.isNull { return out }
        guard let f = r.map(node, "defaults", keys: ["datapath", "capture", "fastpath"], example: "defaults: { datapath: afxdp, capture: true }") else {
            return out
        }
        if let v = f["datapath"], let k = r.choice(v, "datapath", DatapathKind.self, listName: "datapaths") { out.datapath = k }
        if let v = f["capture"], let b = r.bool(v, "capture") { out.capture = b }
        if let v = f["fastpath"], let b = r.bool(v, "fastpath") { out.fastPath = b }
        return out
    }

    // MARK: Nodes

    func decodeNodes(_ node: YNode) -> [RawNode] {
        guard let pairs = r.namedMap(node, "nodes", example: "nodes: { client: { kind: host, … } }", duplicate: { first, again in
            d.error(again.key.location, "duplicate node name '\(again.name!)'",
                    hint: "'\(again.name!)' is already defined at \(first.key.location.lineColumn); node names must be unique")
        }) else { return [] }
        if pairs.isEmpty {
            d.error(node.location, "the topology has no nodes", hint: "add nodes, e.g. nodes: { h1: { kind: host } }")
        }
        return pairs.map(decodeNode)
    }

    func decodeNode(_ pair: YPair) -> RawNode {
        let name = pair.name!
        var n = RawNode(name: name, location: pair.key.location)
        if !Self.validNodeName(name) {
            d.error(pair.key.location, "node name '\(name)' \(Self.nameProblem(name, max: TopologyLimits.maxNodeNameLength))",
                    hint: "use 1...\(TopologyLimits.maxNodeNameLength) characters of a-z, 0-9 and '-', starting and ending with a letter or digit, e.g. '\(Self.suggestName(name, max: TopologyLimits.maxNodeNameLength))'")
        }
        let what = "node '\(name)'"
        // The kind decides the valid keys, so read it first.
        if case let .mapping(pairs) = pair.value.value, let kp = pairs.first(where: { $0.name == "kind" }) {
            n.kind = r.choice(kp.value, "node kind", NodeKind.self, listName: "kinds")
        }
        let allKeys = NodeKey.allCases.map(\.rawValue)
        let keys = n.kind?.validKeys ?? allKeys
        guard let f = r.map(pair.value, what, keys: keys, example: "\(name): \((n.kind ?? .host).example)", unknown: { p in
            self.unknownNodeKey(p, kind: n.kind, node: name)
        }) else {
            n.interfacesKnown = false
            n.complete = false
            return n
        }
        if !f.has("kind") {
            d.error(pair.key.location, "\(what) needs 'kind'", hint: "kinds: \(NodeKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if n.kind == nil { n.complete = false }

        if let v = f["interfaces"] { decodeInterfaces(v, into: &n) }
        if let v = f["routes"] { decodeRoutes(v, into: &n) }
        if let v = f["datapath"] { n.datapath = r.choice(v, "datapath", DatapathKind.self, listName: "datapaths") }
        if let v = f["fastpath"], let b = r.bool(v, "fastpath") {
            n.fastPath = b
            n.fastPathLocation = v.location
        }
        if let v = f["run"], let items = r.listOrScalar(v, "run", example: "run: [ \"sysctl -w net.ipv4.ip_forward=1\" ]") {
            n.runLocation = f.keyNode("run")?.location
            for item in items {
                guard let command = r.string(item, "command in 'run'") else { continue }
                // argv strings are C strings: a NUL would cut the command short.
                if command.utf8.contains(0) {
                    d.error(item.location, "command in 'run' contains a NUL byte", hint: "a command line is text without NUL (\\0) characters")
                    continue
                }
                n.run.append(command)
            }
        }
        if let v = f["auto"], let b = r.bool(v, "auto") { n.auto = b }
        if let v = f["serve"] { n.serve = decodeServe(v) }
        if let v = f["nat"] { n.nat = decodeNAT(v, node: &n) }
        if let v = f["ecmp"] { n.ecmp = decodeECMP(v) ?? ECMPHashConfig() }
        if let v = f["services"] { decodeServices(v, into: &n) }
        if let v = f["vrrp"] { decodeVRRP(v, into: &n) }
        if let v = f["sync"] { decodeSync(v, into: &n) }
        if let v = f["bgp"] { n.bgp = decodeBGP(v) }
        if let v = f["bfd"] { n.bfd = decodeBFD(v) }
        if let v = f["capacity"] {
            if let (c, locations) = decodeCapacity(v) { n.capacity = c; n.nicLocations = locations }
        }
        return n
    }

    /// A key that is not valid for the node's kind: say which kinds take it.
    func unknownNodeKey(_ p: YPair, kind: NodeKind?, node: String) -> Bool {
        let name = p.name!
        guard let kind else { return false }
        if kind == .switch, name == "interfaces" {
            d.error(p.key.location, "a switch does not declare interfaces",
                    hint: "its ports come from links, e.g. - [ h1:eth0, \(node):p1 ]; remove 'interfaces'")
            return true
        }
        if ["ip", "mac", "mtu", "address", "addresses"].contains(name) {
            if kind == .switch {
                d.error(p.key.location, "a switch has no '\(name)'",
                        hint: "a switch is layer 2 only; its ports come from links\(name == "mtu" ? " (set mtu on the link)" : "")")
            } else {
                let hint = name == "mtu" ? "set mtu on the link: - { ends: [ \(node):eth0, … ], mtu: 9000 }"
                    : "'\(name == "address" || name == "addresses" ? "ip" : name)' goes on an interface: interfaces: { eth0: { ip: 10.0.0.1/24 } }"
                d.error(p.key.location, "unknown key '\(name)' in node '\(node)'", hint: hint)
            }
            return true
        }
        if let key = NodeKey(rawValue: name) {
            let takers = NodeKind.kinds(accepting: key).map(\.rawValue)
            d.error(p.key.location, "'\(name)' does not apply to \(kind.spec.article)",
                    hint: "'\(name)' is for \(Suggest.and(takers)) nodes; valid keys for \(kind.spec.article): \(kind.validKeys.joined(separator: ", "))")
            return true
        }
        d.error(p.key.location, "unknown key '\(name)' in node '\(node)'",
                hint: Suggest.hint(name, kind.validKeys, listName: "valid keys for \(kind.spec.article)"))
        return true
    }

    func decodeInterfaces(_ v: YNode, into n: inout RawNode) {
        let node = n.name
        guard let pairs = r.namedMap(v, "interfaces of '\(node)'", example: "interfaces: { eth0: { ip: 10.0.0.1/24 } }", duplicate: { first, again in
            d.error(again.key.location, "duplicate interface '\(node):\(again.name!)'",
                    hint: "it is already declared at \(first.key.location.lineColumn)")
        }) else {
            n.interfacesKnown = false
            n.complete = false
            return
        }
        for p in pairs {
            let name = p.name!
            var i = RawInterface(name: name, location: p.key.location)
            if let (problem, hint) = Self.interfaceNameProblem(name) {
                d.error(p.key.location, "interface name '\(name)' \(problem)", hint: hint)
            }
            if !p.value.isNull, let f = r.map(p.value, "interface '\(node):\(name)'", keys: ["ip", "mac", "members"],
                                               example: "\(name): { ip: 10.0.0.1/24 }") {
                if let m = f["members"] { decodeMembers(m, of: &i, node: n) }
                if let ipn = f["ip"], let items = r.listOrScalar(ipn, "ip", example: "ip: [ 10.0.0.1/24, 10.0.1.1/24 ]") {
                    for item in items {
                        if let a = r.interfaceAddress(item, "address") {
                            if let k = i.addresses.firstIndex(where: { $0.address == a.address }) {
                                d.error(item.location, "address \(a.address) is listed twice on '\(node):\(name)'",
                                        hint: "it is already listed at \(i.addressLocations[k].lineColumn)")
                                continue
                            }
                            i.addresses.append(a)
                            i.addressLocations.append(item.location)
                        } else {
                            n.complete = false
                        }
                    }
                }
                if let m = f["mac"] {
                    i.mac = r.mac(m, "mac")
                    i.macLocation = m.location
                }
            } else if !p.value.isNull {
                n.complete = false
            }
            n.interfaces.append(i)
        }
    }

    /// `members: [ eth0, eth1 ]`: the ports of an active-backup bond
    /// (routers and directors). Each a valid interface name, listed once,
    /// at least two.
    func decodeMembers(_ v: YNode, of i: inout RawInterface, node n: RawNode) {
        let example = "\(i.name): { ip: 10.0.0.1/24, members: [ eth0, eth1 ] }"
        i.membersLocation = v.location
        if let kind = n.kind, kind != .router, kind != .director {
            d.error(v.location, "\(kind.spec.article) has no bonds ('members' on '\(n.name):\(i.name)')",
                    hint: "bonds are wirelab's own, on routers and directors; a host is the kernel's, which here has no bonding module, so it stays single-homed: remove 'members'")
            return
        }
        guard let items = r.list(v, "members of '\(n.name):\(i.name)'", example: example) else { return }
        for item in items {
            guard let name = r.string(item, "bond member") else { continue }
            if let (problem, hint) = Self.interfaceNameProblem(name) {
                d.error(item.location, "bond member name '\(name)' \(problem)", hint: hint)
                continue
            }
            if let k = i.members.firstIndex(of: name) {
                d.error(item.location, "member '\(name)' is listed twice in bond '\(n.name):\(i.name)'",
                        hint: "it is already listed at \(i.memberLocations[k].lineColumn)")
                continue
            }
            i.members.append(name)
            i.memberLocations.append(item.location)
        }
        if items.count < 2 {
            d.error(v.location, "bond '\(n.name):\(i.name)' needs at least two members",
                    hint: "an active-backup bond fails over between its ports, e.g. \(example)")
        }
    }

    // MARK: Routes

    static let routeExample = "\"default via 10.0.0.254\" or { to: 10.1.0.0/16, via: [ 10.0.0.1, 10.0.0.2 ] }"

    func decodeRoutes(_ v: YNode, into n: inout RawNode) {
        guard let items = r.list(v, "routes", example: "routes: [ \"default via 10.0.0.254\" ]") else {
            n.routesComplete = false
            return
        }
        for item in items {
            if let route = decodeRoute(item) { n.routes.append(route) } else { n.routesComplete = false }
        }
    }

    func decodeRoute(_ item: YNode) -> RawRoute? {
        switch item.value {
        case let .scalar(text, _):
            let tokens = item.tokens()
            guard tokens.count == 3, tokens[1].scalar == "via" else {
                if tokens.count > 3, tokens[1].scalar == "via" {
                    d.error(item.location, "route '\(text)' has more than one next hop",
                            hint: "write an ECMP route as { to: \(tokens[0].scalar!), via: [ \(tokens.dropFirst(2).compactMap(\.scalar).joined(separator: ", ")) ] }")
                } else {
                    d.error(item.location, "route '\(text)' must read '<destination> via <next hop>'", hint: "e.g. \(Self.routeExample)")
                }
                return nil
            }
            let dest = r.destination(tokens[0], "route destination")
            let hop = r.ipv4(tokens[2], "next hop")
            guard let dest, let hop else { return nil }
            return RawRoute(route: Route(destination: dest, nextHops: [hop], location: item.location),
                            hopLocations: [tokens[2].location])
        case .mapping:
            guard let f = r.map(item, "route", keys: ["to", "via", "bfd"], example: "{ to: 10.1.0.0/16, via: [ 10.0.0.1, 10.0.0.2 ] }") else { return nil }
            let toNode = r.require(f, "to", "route", at: item.location, example: "{ to: 10.1.0.0/16, via: 10.0.0.1 }")
            let viaNode = r.require(f, "via", "route", at: item.location, example: "{ to: 10.1.0.0/16, via: 10.0.0.1 }")
            let dest = toNode.flatMap { r.destination($0, "route destination") }
            var hops: [IPv4Address] = [], locs: [SourceLocation] = [], ok = dest != nil
            if let viaNode, let list = r.listOrScalar(viaNode, "via", example: "via: [ 10.0.0.1, 10.0.0.2 ]") {
                if list.isEmpty {
                    d.error(viaNode.location, "route has no next hop", hint: "e.g. via: [ 10.0.0.1, 10.0.0.2 ]")
                    ok = false
                }
                for h in list {
                    guard let a = r.ipv4(h, "next hop") else { ok = false; continue }
                    if let i = hops.firstIndex(of: a) {
                        d.error(h.location, "next hop \(a) is listed twice", hint: "it is already listed at \(locs[i].lineColumn)")
                        ok = false
                        continue
                    }
                    hops.append(a)
                    locs.append(h.location)
                }
            } else { ok = false }
            var bfd = false
            if let b = f["bfd"] { if let x = r.bool(b, "route bfd") { bfd = x } else { ok = false } }
            guard ok, let dest else { return nil }
            var route = Route(destination: dest, nextHops: hops, location: item.location)
            route.bfd = bfd
            return RawRoute(route: route, hopLocations: locs, bfdLocation: f.keyNode("bfd")?.location)
        case .sequence:
            d.error(item.location, "a route must be a string or a map, not a list", hint: "e.g. \(Self.routeExample)")
            return nil
        }
    }

    // MARK: Host and router extras

    func decodeServe(_ v: YNode) -> ServeSpec? {
        guard let f = r.map(v, "serve", keys: ["http", "udp-echo"], example: "serve: { http: 80, udp-echo: 9000 }") else { return nil }
        var s = ServeSpec()
        if let p = f["http"] { s.http = r.port(p, "http port") }
        if let p = f["udp-echo"] { s.udpEcho = r.port(p, "udp-echo port") }
        if f.pairs.isEmpty {
            d.error(v.location, "serve names no server", hint: "e.g. serve: { http: 80 } or serve: { udp-echo: 9000 }")
        }
        return s
    }

    func decodeNAT(_ v: YNode, node n: inout RawNode) -> [StaticNAT] {
        guard let items = r.list(v, "nat", example: "nat: [ { public: 192.0.2.10, private: 10.0.0.100 } ]") else { return [] }
        var out: [StaticNAT] = []
        for item in items {
            guard let f = r.map(item, "nat entry", keys: ["public", "private"], example: "{ public: 192.0.2.10, private: 10.0.0.100 }") else { continue }
            let pubNode = r.require(f, "public", "nat entry", at: item.location, example: "{ public: 192.0.2.10, private: 10.0.0.100 }")
            let privNode = r.require(f, "private", "nat entry", at: item.location, example: "{ public: 192.0.2.10, private: 10.0.0.100 }")
            let pub = pubNode.flatMap { r.ipv4($0, "public address") }
            let priv = privNode.flatMap { r.ipv4($0, "private address") }
            guard let pub, let priv, let pubNode, let privNode else { continue }
            if let prev = out.first(where: { $0.publicAddress == pub }) {
                d.error(pubNode.location, "public address \(pub) is already mapped", hint: "see the entry at \(prev.location.lineColumn); each public address maps to one private address")
                continue
            }
            if let prev = out.first(where: { $0.privateAddress == priv }) {
                d.error(privNode.location, "private address \(priv) is already mapped", hint: "see the entry at \(prev.location.lineColumn); static NAT is 1:1")
                continue
            }
            out.append(StaticNAT(publicAddress: pub, privateAddress: priv, location: item.location))
        }
        return out
    }

    func decodeECMP(_ v: YNode) -> ECMPHashConfig? {
        guard let f = r.map(v, "ecmp", keys: ["fields", "seed"], example: "ecmp: { fields: [ src-ip, dst-ip ], seed: 42 }") else { return nil }
        var c = ECMPHashConfig()
        if let fn = f["fields"], let items = r.listOrScalar(fn, "fields", example: "fields: [ src-ip, dst-ip, proto, src-port, dst-port ]") {
            var fields: [ECMPHashField] = []
            for item in items {
                guard let h = r.choice(item, "hash field", ECMPHashField.self, listName: "hash fields") else { continue }
                if fields.contains(h) {
                    d.error(item.location, "hash field '\(h.rawValue)' is listed twice", hint: "list each field once")
                    continue
                }
                fields.append(h)
            }
            if items.isEmpty {
                d.error(fn.location, "ecmp hashes on no field", hint: "list at least one of \(ECMPHashField.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            c.fields = fields
        }
        if let s = f["seed"], let n = r.int(s, "seed", in: 0...Int(UInt32.max)) { c.seed = UInt32(n) }
        return c
    }

    // MARK: Directors

    static let serviceExample = "{ vip: 10.0.0.100, port: 80, protocol: tcp, scheduler: rr, mode: dr, reals: [ { ip: 10.0.0.1 } ] }"
    static let serviceKeys = ["vip", "port", "protocol", "scheduler", "mode", "reals", "health",
                              "persistence", "persistence-mask", "local-addresses", "flags", "sloppy"]

    func decodeServices(_ v: YNode, into n: inout RawNode) {
        guard let items = r.list(v, "services", example: "services: [ \(Self.serviceExample) ]") else { return }
        for item in items {
            // A service that cannot be read is dropped; other nodes are unaffected.
            if let s = decodeService(item) {
                if let prev = n.services.first(where: { $0.vip == s.vip && $0.port == s.port && $0.proto == s.proto }) {
                    d.error(item.location, "service \(s.vip):\(s.port)/\(s.proto.rawValue) is defined twice",
                            hint: "the first is at \(prev.location.lineColumn)")
                    continue
                }
                n.services.append(s)
            }
        }
    }

    func decodeService(_ item: YNode) -> Service? {
        guard let f = r.map(item, "service", keys: Self.serviceKeys, example: Self.serviceExample) else { return nil }
        var ok = true
        let vipNode = r.require(f, "vip", "service", at: item.location, example: Self.serviceExample)
        let portNode = r.require(f, "port", "service", at: item.location, example: Self.serviceExample)
        let vip = vipNode.flatMap { r.ipv4($0, "vip") }
        let port = portNode.flatMap { r.port($0, "port") }
        var proto = TransportProtocol.tcp, scheduler = SchedulerKind.wlc, mode = ForwardingMode.dr
        if let p = f["protocol"] { if let v = r.choice(p, "protocol", TransportProtocol.self, listName: "protocols") { proto = v } else { ok = false } }
        if let p = f["scheduler"] { if let v = r.choice(p, "scheduler", SchedulerKind.self, listName: "schedulers") { scheduler = v } else { ok = false } }
        let modeKnown: Bool
        if let p = f["mode"] {
            if let v = r.choice(p, "mode", ForwardingMode.self, listName: "modes") { mode = v; modeKnown = true } else { ok = false; modeKnown = false }
        } else { modeKnown = true }

        var reals: [RealServer] = []
        if let rn = r.require(f, "reals", "service", at: item.location, example: "reals: [ { ip: 10.0.0.1 }, { ip: 10.0.0.3, weight: 2 } ]"),
           let items = r.list(rn, "reals", example: "reals: [ { ip: 10.0.0.1 }, { ip: 10.0.0.3, weight: 2 } ]") {
            if items.isEmpty {
                d.error(rn.location, "service has no real servers", hint: "e.g. reals: [ { ip: 10.0.0.1 } ]")
                ok = false
            }
            for ri in items {
                guard let rf = r.map(ri, "real server", keys: ["ip", "port", "weight"], example: "{ ip: 10.0.0.1, port: 8080, weight: 2 }"),
                      let ipNode = r.require(rf, "ip", "real server", at: ri.location, example: "{ ip: 10.0.0.1 }"),
                      let ip = r.ipv4(ipNode, "real server ip") else { ok = false; continue }
                var real = RealServer(ip: ip, port: port ?? 0, weight: 1, location: ipNode.location)
                if let pn = rf["port"] {
                    if let p = r.port(pn, "real server port") {
                        real.port = p
                        if modeKnown, (mode == .dr || mode == .tun), let port, p != port {
                            d.error(pn.location, "real server port \(p) differs from the service port \(port) in \(mode.rawValue) mode",
                                    hint: "\(mode.rawValue) does not rewrite ports; remove 'port' or use nat or fullnat")
                        }
                    } else { ok = false }
                }
                if let wn = rf["weight"] {
                    if let w = r.int(wn, "weight", in: 0...65535, hint: "weights are 0...65535 (0 takes a real out of rotation)") {
                        real.weight = w
                    } else { ok = false }
                }
                if let prev = reals.first(where: { $0.ip == real.ip && ($0.port == real.port || port == nil) }) {
                    d.error(ipNode.location, "real server \(real.ip):\(real.port) is listed twice in this service",
                            hint: "it is already listed at \(prev.location.lineColumn)")
                    continue
                }
                reals.append(real)
            }
        } else { ok = false }

        var health: HealthCheck?
        if let h = f["health"] { health = decodeHealth(h); if health == nil { ok = false } }
        var persistence: DurationSpec?
        if let p = f["persistence"] { persistence = r.duration(p, "persistence", in: 1000...(31 * 24 * 3_600_000)); if persistence == nil { ok = false } }
        var mask: IPv4Address?
        if let m = f["persistence-mask"] {
            if let a = r.ipv4(m, "persistence-mask") {
                let inv = ~a.rawValue
                if inv & (inv &+ 1) != 0 {
                    d.error(m.location, "persistence-mask \(a) is not a netmask", hint: "use contiguous ones, e.g. 255.255.255.0")
                    ok = false
                } else { mask = a }
            } else { ok = false }
            if f["persistence"] == nil {
                d.error(f.keyNode("persistence-mask")!.location, "persistence-mask without persistence",
                        hint: "add persistence: 300s, or remove persistence-mask")
            }
        }
        var locals: [IPv4Address] = []
        if let ln = f["local-addresses"] {
            if modeKnown && mode != .fullnat {
                d.error(f.keyNode("local-addresses")!.location, "'local-addresses' applies only to fullnat services",
                        hint: "this service's mode is \(mode.rawValue); remove 'local-addresses' or set mode: fullnat")
            } else if let items = r.listOrScalar(ln, "local-addresses", example: "local-addresses: [ 10.0.0.201, 10.0.0.202 ]") {
                for li in items {
                    guard let a = r.ipv4(li, "local address") else { ok = false; continue }
                    if locals.contains(a) {
                        d.error(li.location, "local address \(a) is listed twice", hint: "list each address once")
                        continue
                    }
                    locals.append(a)
                }
            }
        } else if modeKnown && mode == .fullnat {
            d.error(item.location, "fullnat service needs 'local-addresses'",
                    hint: "the director rewrites client addresses to these, e.g. local-addresses: [ 10.0.0.201 ]")
        }
        var flags: [SchedulerFlag] = []
        if let fn = f["flags"], let items = r.list(fn, "flags", example: "flags: [ mh-port, mh-fallback ]") {
            let schedulerKnown = f["scheduler"].map { SchedulerKind(rawValue: $0.scalar ?? "") != nil } ?? true
            for fi in items {
                guard let flag = r.choice(fi, "scheduler flag", SchedulerFlag.self, listName: "scheduler flags") else { ok = false; continue }
                if flags.contains(flag) {
                    d.error(fi.location, "scheduler flag '\(flag.rawValue)' is listed twice", hint: "list each flag once")
                    continue
                }
                if schedulerKnown && flag.scheduler != scheduler {
                    let own = SchedulerFlag.flags(of: scheduler)
                    let hint: String
                    if let twin = own.first(where: { $0.hashesPort == flag.hashesPort }) {
                        hint = "write '\(twin.rawValue)' (\(scheduler.rawValue) takes \(own.map(\.rawValue).joined(separator: ", "))), or set scheduler: \(flag.scheduler.rawValue)"
                    } else {
                        hint = "\(scheduler.rawValue) takes no flags (only sh and mh do); remove '\(flag.rawValue)' or set scheduler: \(flag.scheduler.rawValue)"
                    }
                    d.error(fi.location, "scheduler flag '\(flag.rawValue)' is for scheduler \(flag.scheduler.rawValue), but this service's scheduler is \(scheduler.rawValue)",
                            hint: hint)
                    ok = false
                    continue
                }
                flags.append(flag)
            }
        } else if f["flags"] != nil { ok = false }
        var sloppy = false
        if let sn = f["sloppy"] {
            if let b = r.bool(sn, "sloppy") {
                sloppy = b
                if b && proto == .udp {
                    d.error(sn.location, "'sloppy' applies only to tcp services",
                            hint: "a udp service schedules any datagram without an entry already; remove 'sloppy'")
                    ok = false
                }
            } else { ok = false }
        }
        guard ok, let vip, let port else { return nil }
        if vip.isMulticast || vip.isUnspecified || vip.isLoopback || vip == .broadcast {
            d.error(vipNode!.location, "vip \(vip) is not a unicast address", hint: "use a private or documentation address, e.g. 10.0.0.100")
            return nil
        }
        return Service(vip: vip, port: port, proto: proto, scheduler: scheduler, mode: mode, reals: reals,
                       health: health, persistence: persistence, persistenceMask: mask,
                       localAddresses: locals, flags: flags, sloppy: sloppy, location: item.location)
    }

    static let healthExample = "health: { tcp: { interval: 1s, timeout: 1s, fail: 2, rise: 1 } }"

    func decodeHealth(_ v: YNode) -> HealthCheck? {
        guard let f = r.map(v, "health", keys: ["tcp", "http"], example: Self.healthExample) else { return nil }
        guard f.pairs.count == 1 else {
            d.error(v.location, f.pairs.isEmpty ? "health names no check" : "health names more than one check",
                    hint: "use exactly one of tcp or http, e.g. \(Self.healthExample)")
            return nil
        }
        let isHTTP = f.pairs[0].name == "http"
        let body = f.pairs[0].value
        var h = HealthCheck(kind: isHTTP ? .http(path: "/", expectStatus: 200) : .tcp, port: nil,
                            interval: .seconds(1), timeout: .seconds(1), fail: 2, rise: 1)
        if body.isNull { return h }
        let keys = isHTTP ? ["path", "expect", "port", "interval", "timeout", "fail", "rise"]
            : ["port", "interval", "timeout", "fail", "rise"]
        guard let b = r.map(body, "\(isHTTP ? "http" : "tcp") health check", keys: keys,
                            example: isHTTP ? "http: { path: /healthz, expect: 200, interval: 2s }" : "tcp: { interval: 1s, timeout: 1s, fail: 2, rise: 1 }")
        else { return nil }
        var ok = true
        func set<T>(_ value: T?, _ apply: (T) -> Void) { if let value { apply(value) } else { ok = false } }
        if let n = b["port"] { set(r.port(n, "health check port")) { h.port = $0 } }
        if let n = b["interval"] { set(r.duration(n, "interval", in: 10...3_600_000)) { h.interval = $0 } }
        if let n = b["timeout"] { set(r.duration(n, "timeout", in: 10...3_600_000)) { h.timeout = $0 } }
        if let n = b["fail"] { set(r.int(n, "fail", in: 1...100)) { h.fail = $0 } }
        if let n = b["rise"] { set(r.int(n, "rise", in: 1...100)) { h.rise = $0 } }
        if isHTTP {
            var path = "/", status = 200
            if let n = b["path"] {
                if let p = r.string(n, "path") {
                    if p.hasPrefix("/") { path = p } else {
                        d.error(n.location, "http health check path '\(p)' must start with '/'", hint: "write /\(p)")
                        ok = false
                    }
                } else { ok = false }
            }
            if let n = b["expect"] { set(r.int(n, "expected status", in: 100...599, hint: "HTTP status codes are 100...599")) { status = $0 } }
            h.kind = .http(path: path, expectStatus: status)
        }
        return ok ? h : nil
    }

    static let vrrpExample = "vrrp: { group: 10, priority: 100, vips: [ 10.0.0.100 ], interval: 1s, preempt: true }"

    /// `vrrp:` is one group (a map) or several (a list of maps).
    func decodeVRRP(_ v: YNode, into n: inout RawNode) {
        if case .sequence = v.value {
            guard let items = r.list(v, "vrrp", example: "vrrp: [ { group: 10, … }, { group: 11, … } ]") else {
                n.complete = false
                return
            }
            if items.isEmpty { d.error(v.location, "vrrp has no groups", hint: Self.vrrpExample); n.complete = false }
            for item in items { decodeVRRPGroup(item, into: &n) }
        } else {
            decodeVRRPGroup(v, into: &n)
        }
    }

    func decodeVRRPGroup(_ v: YNode, into n: inout RawNode) {
        guard let f = r.map(v, "vrrp", keys: ["group", "priority", "vips", "interval", "preempt", "preempt-delay", "vmac", "interface"],
                            example: Self.vrrpExample) else {
            n.complete = false
            return
        }
        var g = r.require(f, "group", "vrrp", at: v.location, example: Self.vrrpExample).flatMap { r.int($0, "vrrp group", in: 1...255, hint: "VRRP group ids (VRIDs) are 1...255") }
        if let group = g, let first = n.vrrp.first(where: { $0.group == group }) {
            d.error(f["group"]!.location, "vrrp group \(group) is given twice on '\(n.name)' (first at \(first.location.lineColumn))",
                    hint: "each group (VRID) once per node; use another group id for other VIPs")
            g = nil
        }
        let p = r.require(f, "priority", "vrrp", at: v.location, example: Self.vrrpExample).flatMap {
            r.int($0, "vrrp priority", in: 1...255, hint: "priorities are 1...254, and 255 for the owner of the addresses")
        }
        var vips: [IPv4Address] = [], locs: [SourceLocation] = [], ok = true
        if let vn = r.require(f, "vips", "vrrp", at: v.location, example: Self.vrrpExample),
           let items = r.listOrScalar(vn, "vips", example: "vips: [ 10.0.0.100 ]") {
            if items.isEmpty { d.error(vn.location, "vrrp has no vips", hint: "e.g. vips: [ 10.0.0.100 ]"); ok = false }
            for i in items {
                guard let a = r.ipv4(i, "vip") else { ok = false; continue }
                if vips.contains(a) { d.error(i.location, "vip \(a) is listed twice", hint: "list each address once"); continue }
                vips.append(a)
                locs.append(i.location)
            }
        } else { ok = false }
        var interval = DurationSpec.seconds(1), preempt = true, delay = DurationSpec.seconds(0), vmac = false
        if let i = f["interval"] {
            if let x = r.duration(i, "vrrp interval", in: 10...40_950) {
                // Max Adver Int is carried in centiseconds.
                if x.milliseconds % 10 == 0 { interval = x } else {
                    d.error(i.location, "vrrp interval \(x) is not a whole number of centiseconds",
                            hint: "VRRP counts in 10ms steps, e.g. \(x.milliseconds / 10 * 10 == 0 ? 10 : x.milliseconds / 10 * 10)ms")
                    ok = false
                }
            } else { ok = false }
        }
        if let pn = f["preempt"] { if let b = r.bool(pn, "preempt") { preempt = b } else { ok = false } }
        if let dn = f["preempt-delay"] {
            if let x = r.duration(dn, "vrrp preempt-delay", in: 0...1_000_000) { delay = x } else { ok = false }
        }
        if let vn = f["vmac"] { if let b = r.bool(vn, "vmac") { vmac = b } else { ok = false } }
        var interface = "", interfaceLocation: SourceLocation?
        if let i = f["interface"] {
            if let s = r.string(i, "vrrp interface") { interface = s; interfaceLocation = i.location } else { ok = false }
        }
        guard ok, let g, let p else { n.complete = false; return }
        n.vrrp.append(VRRPConfig(group: g, priority: p, vips: vips, interval: interval, preempt: preempt, preemptDelay: delay,
                                 vmac: vmac, interface: interface, location: v.location, interfaceLocation: interfaceLocation))
        n.vrrpVIPLocations.append(locs)
    }

    static let syncExample = "sync: { group: 17, interface: eth0 }"

    /// `sync: { group, interface }`: IPVS connection sync (the interface is
    /// checked against the node's interfaces by the resolver).
    func decodeSync(_ v: YNode, into n: inout RawNode) {
        guard let f = r.map(v, "sync", keys: ["group", "interface"], example: Self.syncExample) else { return }
        let g = r.require(f, "group", "sync", at: v.location, example: Self.syncExample).flatMap {
            r.int($0, "sync group", in: 0...255, hint: "the group is IPVS's sync id, 0...255; directors sharing connections use the same one")
        }
        let i = r.require(f, "interface", "sync", at: v.location, example: Self.syncExample).flatMap { node in
            r.string(node, "sync interface").map { ($0, node.location) }
        }
        guard let g, let i else { return }
        n.sync = SyncSpec(group: g, interface: i.0, location: v.location)
        n.syncInterfaceLocation = i.1
    }

    static let bgpExample = "bgp: { asn: 65010, router-id: 10.0.0.2, multipath: 4, neighbors: [ { ip: 10.0.0.254, asn: 65001, hold: 3, keepalive: 1, bfd: true } ], announce: [ 10.0.0.100/32 ] }"
    static let neighborExample = "{ ip: 10.0.0.254, asn: 65001, hold: 3, keepalive: 1, bfd: true }"
    static let bfdExample = "bfd: { interval: 50ms, multiplier: 3 }"

    func asn(_ node: YNode, _ what: String) -> UInt32? {
        r.int(node, what, in: 1...4_294_967_295,
              hint: "AS numbers are 1...4294967295 (private: 64512...65534 and 4200000000...4294967294)").map { UInt32($0) }
    }

    /// `bgp: { asn, router-id, multipath, neighbors, announce }` (neighbours
    /// are checked against the node's subnets by the resolver).
    func decodeBGP(_ v: YNode) -> BGPSpec? {
        guard let f = r.map(v, "bgp", keys: ["asn", "router-id", "multipath", "neighbors", "announce"], example: Self.bgpExample) else { return nil }
        var ok = true
        let a = r.require(f, "asn", "bgp", at: v.location, example: Self.bgpExample).flatMap { asn($0, "bgp asn") }
        let id = r.require(f, "router-id", "bgp", at: v.location, example: Self.bgpExample).flatMap { r.ipv4($0, "bgp router-id") }
        var multipath = 1
        if let m = f["multipath"] {
            if let x = r.int(m, "bgp multipath", in: 1...64, hint: "the most next hops of one ECMP group, 1...64") { multipath = x } else { ok = false }
        }
        var neighbors: [BGPNeighbor] = []
        if let list = r.require(f, "neighbors", "bgp", at: v.location, example: Self.bgpExample).flatMap({ r.list($0, "bgp neighbors", example: "neighbors: [ \(Self.neighborExample) ]") }) {
            if list.isEmpty {
                d.error(f["neighbors"]!.location, "bgp neighbors is empty", hint: "name at least one neighbour, e.g. neighbors: [ \(Self.neighborExample) ]")
                ok = false
            }
            for item in list {
                if let n = decodeNeighbor(item) {
                    if neighbors.contains(where: { $0.ip == n.ip }) {
                        d.error(item.location, "bgp neighbor \(n.ip) is listed twice", hint: "one session per neighbour address: remove one")
                        ok = false
                    } else { neighbors.append(n) }
                } else { ok = false }
            }
        } else { ok = false }
        var announce: [IPv4Prefix] = []
        if let an = f["announce"] {
            if let items = r.listOrScalar(an, "bgp announce", example: "announce: [ 10.0.0.100/32 ]") {
                for item in items {
                    if let p = r.destination(item, "bgp announce prefix") { announce.append(p) } else { ok = false }
                }
            } else { ok = false }
        }
        guard ok, let a, let id else { return nil }
        if id.isUnspecified {
            d.error(f["router-id"]!.location, "bgp router-id 0.0.0.0 is not a BGP Identifier",
                    hint: "use one of the node's addresses, e.g. the address facing its first neighbour")
            return nil
        }
        return BGPSpec(asn: a, routerID: id, multipath: multipath, neighbors: neighbors, announce: announce, location: v.location)
    }

    func decodeNeighbor(_ v: YNode) -> BGPNeighbor? {
        guard let f = r.map(v, "bgp neighbor", keys: ["ip", "asn", "hold", "keepalive", "bfd"], example: Self.neighborExample) else { return nil }
        let ip = r.require(f, "ip", "bgp neighbor", at: v.location, example: Self.neighborExample).flatMap { r.ipv4($0, "bgp neighbor ip") }
        let a = r.require(f, "asn", "bgp neighbor", at: v.location, example: Self.neighborExample).flatMap { asn($0, "bgp neighbor asn") }
        var ok = true
        var hold = 90
        if let h = f["hold"] {
            if let x = r.int(h, "bgp hold", in: 0...65535) {
                if x == 1 || x == 2 {
                    d.error(h.location, "bgp hold \(x) is too short", hint: "a hold time is 0 (no keepalives) or 3...65535 seconds (RFC 4271 §4.2)")
                    ok = false
                } else { hold = x }
            } else { ok = false }
        }
        var keepalive: Int?
        if let k = f["keepalive"] {
            if let x = r.int(k, "bgp keepalive", in: 1...21845, hint: "keepalive is seconds, 1...21845, below the hold time (usually hold / 3)") {
                if hold == 0 {
                    d.error(k.location, "bgp keepalive with hold 0", hint: "hold 0 sends no keepalives: remove keepalive, or set hold ≥ 3")
                    ok = false
                } else if x >= hold {
                    d.error(k.location, "bgp keepalive \(x) is not below hold \(hold)",
                            hint: "keepalives must come well within the hold time, e.g. keepalive: \(max(1, hold / 3))")
                    ok = false
                } else { keepalive = x }
            } else { ok = false }
        }
        var bfd = false
        if let b = f["bfd"] { if let x = r.bool(b, "bgp neighbor bfd") { bfd = x } else { ok = false } }
        guard ok, let ip, let a else { return nil }
        return BGPNeighbor(ip: ip, asn: a, hold: hold, keepalive: keepalive, bfd: bfd, location: v.location)
    }

    /// `bfd: { interval, multiplier }`.
    func decodeBFD(_ v: YNode) -> BFDSpec? {
        guard let f = r.map(v, "bfd", keys: ["interval", "multiplier"], example: Self.bfdExample) else { return nil }
        var spec = BFDSpec(location: v.location), ok = true
        if let i = f["interval"] {
            if let x = r.duration(i, "bfd interval", in: 10...10_000) { spec.interval = x } else { ok = false }
        }
        if let m = f["multiplier"] {
            if let x = r.int(m, "bfd multiplier", in: 1...255, hint: "the detect multiplier is 1...255 (3 is usual)") { spec.multiplier = x } else { ok = false }
        }
        return ok ? spec : nil
    }

    // MARK: Links

    static let linkExample = "- [ client:eth0, gw:eth0 ] or - { ends: [ client:eth0, gw:eth0 ], mtu: 9000, bandwidth: 100G }"

    func decodeLinks(_ v: YNode) -> ([RawLink], Bool) {
        guard let items = r.list(v, "links", example: "links: [ [ client:eth0, gw:eth0 ] ]") else { return ([], false) }
        var out: [RawLink] = [], complete = true
        for item in items {
            var endsNode: YNode?
            var mtu = TopologyLimits.defaultMTU
            var bandwidth: Rate?
            switch item.value {
            case .sequence: endsNode = item
            case .mapping:
                let example = "{ ends: [ a:eth0, b:eth0 ], mtu: 1500, bandwidth: 100G }"
                guard let f = r.map(item, "link", keys: ["ends", "mtu", "bandwidth"], example: example) else { complete = false; continue }
                endsNode = r.require(f, "ends", "link", at: item.location, example: example)
                if let b = f["bandwidth"] {
                    if let x = rate(b, "bandwidth", .bits) { bandwidth = x } else { complete = false }
                }
                if let m = f["mtu"] {
                    if let x = r.int(m, "mtu", in: TopologyLimits.mtuRange, hint: "link MTUs are 68...9000") { mtu = x } else { complete = false }
                }
            case .scalar:
                d.error(item.location, "a link must be a list of two ends or a map, not \(item.shape)", hint: "e.g. \(Self.linkExample)")
            }
            guard let endsNode, let ends = r.list(endsNode, "link ends", example: "[ client:eth0, gw:eth0 ]") else { complete = false; continue }
            guard ends.count == 2 else {
                d.error(endsNode.location, "a link has exactly two ends, not \(ends.count)",
                        hint: "connect more than two interfaces through a switch: kind: switch")
                complete = false
                continue
            }
            var raws: [RawEnd] = []
            for e in ends {
                guard let s = r.string(e, "link end") else { continue }
                guard let ep = Endpoint(s) else {
                    let guess = s.contains(":") ? "" : ", e.g. \(s):eth0"
                    d.error(e.location, "link end '\(s)' must be written node:interface", hint: "name a node and one of its interfaces\(guess)")
                    continue
                }
                raws.append(RawEnd(endpoint: ep, location: e.location))
            }
            guard raws.count == 2 else { complete = false; continue }
            if raws[0].endpoint == raws[1].endpoint {
                d.error(raws[1].location, "link connects '\(raws[0].endpoint)' to itself", hint: "a link joins two different interfaces")
                complete = false
                continue
            }
            out.append(RawLink(ends: raws, mtu: mtu, bandwidth: bandwidth, location: item.location))
        }
        return (out, complete)
    }
}

extension YNode {
    /// Whitespace-separated words of a one-line scalar, each positioned at
    /// its column (best effort: exact for plain and simply quoted text).
    func tokens() -> [YNode] {
        guard case let .scalar(s, quoted) = value else { return [] }
        var out: [YNode] = []
        var col = location.column + (quoted ? 1 : 0)
        var current = "", start = col
        for u in s.unicodeScalars {
            if u == " " || u == "\t" {
                if !current.isEmpty { out.append(YNode(value: .scalar(current, quoted: false), location: SourceLocation(file: location.file, line: location.line, column: start))) }
                current = ""
            } else {
                if current.isEmpty { start = col }
                current.unicodeScalars.append(u)
            }
            col += 1
        }
        if !current.isEmpty { out.append(YNode(value: .scalar(current, quoted: false), location: SourceLocation(file: location.file, line: location.line, column: start))) }
        return out
    }
}
