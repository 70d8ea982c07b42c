// Drills (`drills:`): parsed and validated here against the resolved nodes
// and links; run by the Lab layer (`wirelab drill`, `check`, `sim`).
//
//   - name: the active director dies
//     load: { from: [ client ], http: "http://198.51.100.80/", clients: 8, streams: 4, seconds: 20,
//             stream-interval: 50ms, timeout: 1s, stream-timeout: 2s }
//     events: [ { at: 5s, fail: lvs1 }, { at: 12s, heal: lvs1 } ]
//     expect: { max-interruption: 1s, max-failed-requests: 0, established-lost: 0 }
import Wire

struct DrillDecoder {
    let r: Reader
    /// Node kinds, interfaces and suggestions, as checks use them.
    let checks: CheckDecoder
    /// Every linked end → its link's index (either end names the link).
    let links: [Endpoint: Int]
    var d: Diagnostics { r.d }

    static let example = "{ name: a real dies, load: { from: [ client ], http: \"http://10.0.0.100/\", seconds: 10 }, events: [ { at: 3s, fail: rs1 } ] }"
    static let loadKeys = ["from", "http", "clients", "streams", "seconds", "stream-interval", "timeout", "stream-timeout"]
    static let expectKeys = ["max-interruption", "max-failed-requests", "established-lost"]
    /// Longest load a drill may run.
    static let maxSeconds = 3600

    func decode(_ v: YNode) -> [Drill] {
        r.namedList(v, "drills", kind: "drill", example: Self.example, decodeDrill)
    }

    func decodeDrill(_ item: YNode) -> Drill? {
        guard let f = r.map(item, "drill", keys: ["name", "load", "events", "expect"], example: Self.example) else { return nil }
        let nameNode = r.require(f, "name", "drill", at: item.location, example: "name: a real dies")
        let name = nameNode.flatMap { r.string($0, "drill name") }
        let load = r.require(f, "load", "drill", at: item.location,
                             example: "load: { from: [ client ], http: \"http://10.0.0.100/\", clients: 4, streams: 2, seconds: 10 }")
            .flatMap(decodeLoad)
        var events: [DrillEvent]? = []
        if let en = f["events"] { events = decodeEvents(en, duration: load?.duration) }
        var expect: DrillExpectations? = DrillExpectations()
        if let xn = f["expect"] { expect = decodeExpect(xn) }
        guard let name, let load, let events, let expect else { return nil }
        return Drill(name: name, load: load, events: events, expect: expect, location: nameNode?.location ?? item.location)
    }

    func decodeLoad(_ v: YNode) -> DrillLoad? {
        let ex = "load: { from: [ client ], http: \"http://10.0.0.100/\", clients: 4, streams: 2, seconds: 10 }"
        guard let f = r.map(v, "load", keys: Self.loadKeys, example: ex) else { return nil }
        var ok = true
        var from: [String] = []
        if let fn = r.require(f, "from", "load", at: v.location, example: "from: [ client ]"),
           let hosts = r.listOrScalar(fn, "from", example: "from: [ client ]") {
            if hosts.isEmpty { d.error(fn.location, "from lists no host", hint: "name the hosts the load runs on, e.g. from: [ client ]"); ok = false }
            var seen: Set<String> = []
            for h in hosts {
                guard let s = r.string(h, "from") else { ok = false; continue }
                guard checks.nodeExists(s, at: h.location) else { ok = false; continue }
                if let kind = checks.ctx.nodes[s] ?? nil, kind != .host {
                    d.error(h.location, "a drill's load runs on hosts; '\(s)' is a \(kind.rawValue)",
                            hint: "run it from a host such as \(checks.ctx.nodeOrder.first { checks.ctx.nodes[$0] == .host }.map { "'\($0)'" } ?? "a client host")")
                    ok = false; continue
                }
                if !seen.insert(s).inserted {
                    d.error(h.location, "'\(s)' is listed twice in from", hint: "list each host once; raise clients or streams for more load")
                    ok = false
                }
                from.append(s)
            }
        } else { ok = false }
        var target: (IPv4Address, Int, String)?
        if let hn = r.require(f, "http", "load", at: v.location, example: "http: \"http://10.0.0.100/\""), let url = r.string(hn, "http") {
            target = r.httpURL(url, "http", at: hn.location)
        }
        func count(_ key: String, default value: Int) -> Int? {
            guard let n = f[key] else { return value }
            return r.int(n, key, in: 0...1000, hint: "\(key) per host: 0...1000")
        }
        let clients = count("clients", default: 1), streams = count("streams", default: 0)
        if let clients, let streams, clients == 0 && streams == 0 {
            d.error(v.location, "the load has neither clients nor streams", hint: "give clients: 1 or more (request loops) or streams: 1 or more (long-lived connections)")
            ok = false
        }
        var seconds: Int?
        if let sn = r.require(f, "seconds", "load", at: v.location, example: "seconds: 10") {
            seconds = r.int(sn, "seconds", in: 1...Self.maxSeconds, hint: "the load runs 1...\(Self.maxSeconds) seconds")
        }
        var interval: DurationSpec? = .init(milliseconds: 50), timeout: DurationSpec? = .seconds(1)
        if let n = f["stream-interval"] { interval = r.duration(n, "stream-interval", in: 1...60_000) }
        if let n = f["timeout"] { timeout = r.duration(n, "timeout", in: 1...60_000) }
        var streamTimeout: DurationSpec? = .seconds(2)
        if let n = f["stream-timeout"] { streamTimeout = r.duration(n, "stream-timeout", in: 1...600_000) }
        guard ok, let target, let clients, let streams, let seconds, let interval, let timeout, let streamTimeout else { return nil }
        return DrillLoad(from: from, address: target.0, port: target.1, path: target.2, clients: clients, streams: streams,
                         streamInterval: interval, duration: .seconds(seconds), requestTimeout: timeout,
                         streamTimeout: streamTimeout)
    }


    /// What an event acts on, by the name that identifies it across events.
    enum Key: Hashable { case node(String), link(Int) }

    func decodeEvents(_ v: YNode, duration: DurationSpec?) -> [DrillEvent]? {
        let ex = "events: [ { at: 3s, fail: rs1 }, { at: 8s, heal: rs1 } ]"
        guard let items = r.list(v, "events", example: ex) else { return nil }
        var out: [DrillEvent] = []
        var ok = true
        // Failed things as the timeline goes, with where they were failed.
        var failed: [Key: SourceLocation] = [:]
        var last: DurationSpec?
        for item in items {
            guard let f = r.map(item, "event", keys: ["at", "fail", "heal"], example: "{ at: 3s, fail: rs1 }") else { ok = false; continue }
            let at = r.require(f, "at", "event", at: item.location, example: "at: 3s").flatMap { r.duration($0, "at") }
            let actions = f.pairs.filter { $0.name == "fail" || $0.name == "heal" }
            guard actions.count == 1 else {
                if actions.isEmpty {
                    d.error(item.location, "event says neither fail nor heal", hint: "e.g. { at: 3s, fail: rs1 } or { at: 8s, heal: rs1:eth0 }")
                } else {
                    d.error(actions[1].key.location, "event has both 'fail' and 'heal'", hint: "write one event per change")
                }
                ok = false; continue
            }
            let action = DrillEvent.Action(rawValue: actions[0].name!)!
            let tn = actions[0].value
            guard let at, let text = r.string(tn, action.rawValue), let (target, key) = target(text, at: tn.location) else { ok = false; continue }
            if let duration, at >= duration {
                d.error(f["at"]!.location, "event at \(at) is not within the load's \(duration)",
                        hint: "events happen while the load runs: at 0s up to, not including, \(duration)")
                ok = false
            }
            if let last, at < last {
                d.error(f["at"]!.location, "event at \(at) comes before the one above it (at \(last))", hint: "list events in time order")
                ok = false
            }
            last = at
            switch action {
            case .fail:
                if let first = failed[key] {
                    d.error(tn.location, "'\(text)' is already failed (at \(first.lineColumn))", hint: "heal it before failing it again")
                    ok = false
                }
                failed[key] = tn.location
            case .heal:
                if failed.removeValue(forKey: key) == nil {
                    d.error(tn.location, "'\(text)' is healed but was not failed before", hint: "fail it in an earlier event, e.g. { at: 3s, fail: \(text) }")
                    ok = false
                }
            }
            out.append(DrillEvent(at: at, action: action, target: target, location: item.location))
        }
        return ok ? out : nil
    }

    /// A node (its power) or a link end (the link).
    func target(_ text: String, at location: SourceLocation) -> (DrillEvent.Target, Key)? {
        if !text.contains(":") {
            guard checks.nodeExists(text, at: location) else { return nil }
            return (.node(text), .node(text))
        }
        guard let e = checks.endpoint(text, at: location, what: "event") else { return nil }
        guard let link = links[e] else {
            d.error(location, "'\(text)' is not linked", hint: "fail a link by one of its ends, as written in links:")
            return nil
        }
        return (.link(e), .link(link))
    }

    func decodeExpect(_ v: YNode) -> DrillExpectations? {
        let ex = "expect: { max-interruption: 1s, max-failed-requests: 0, established-lost: 0 }"
        guard let f = r.map(v, "expect", keys: Self.expectKeys, example: ex) else { return nil }
        var out = DrillExpectations()
        var ok = true
        if let n = f["max-interruption"] {
            if let x = r.duration(n, "max-interruption") { out.maxInterruption = x } else { ok = false }
        }
        if let n = f["max-failed-requests"] {
            if let x = r.int(n, "max-failed-requests", in: 0...Int(Int32.max)) { out.maxFailedRequests = x } else { ok = false }
        }
        if let n = f["established-lost"] {
            if let x = r.int(n, "established-lost", in: 0...Int(Int32.max)) { out.establishedLost = x } else { ok = false }
        }
        return ok ? out : nil
    }
}
