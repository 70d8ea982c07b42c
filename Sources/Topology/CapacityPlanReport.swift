// `wirelab plan`'s two renderings of a `CapacityPlan`: a table for people
// and JSON for scripts (the same numbers; rates in bits per second).
import Foundation

extension CapacityPlan {
    /// `200G`, or `unknown` when no element on the traffic's way has a capacity.
    public static func format(_ rate: Double?) -> String {
        guard let rate else { return "unknown" }
        return rate == 0 ? "0" : Rate(rate).description
    }

    func name(_ e: Element) -> String { names[e] ?? "\(e)" }

    /// The table.
    public var text: String {
        var out: [String] = []
        let shown = ingress.prefix(6).joined(separator: ", ") + (ingress.count > 6 ? " and \(ingress.count - 6) more" : "")
        out.append("plan for \(topology): ingress \(ingress.isEmpty ? "none (no host that is not a real server)" : shown)")
        if publicAddresses.isEmpty {
            out.append("no services: nothing carries traffic to plan for")
            return out.joined(separator: "\n") + "\n"
        }
        out.append("public addresses \(publicAddresses.joined(separator: ", ")) (DNS splits traffic evenly); pps at \(packetBytes)-byte packets")
        out.append("")
        func limits(_ ls: [Limit]) -> String {
            let rates = ls.map(\.rate)
            let smallest = rates.contains { $0 == nil } ? nil : rates.compactMap { $0 }.min()
            return pad(Self.format(smallest), 9) + (ls.count > 1 ? ls.map { "\($0.name) \(Self.format($0.rate))" }.joined(separator: ", ") : ls.first?.name ?? "")
        }
        out.append(pad("system", 21) + pad(Self.format(normal.capacity), 9)
                   + (normal.bottleneck.map { "fills first: \(name($0))" } ?? ""))
        out.append(pad("one public address", 21) + limits(publicLimits))
        out.append(pad("one VIP", 21) + limits(vipLimits))
        out.append(pad("one flow", 21) + Self.format(flowLimit))
        if let w = worst {
            out.append(pad("worst single failure", 21) + "\(w.failure!): \(Self.format(w.capacity))"
                       + (normal.capacity.flatMap { n in w.capacity.map { " (loses \(Self.format(n - $0)))" } } ?? "")
                       + (w.unreachable.isEmpty ? "" : ", unreachable: \(w.unreachable.joined(separator: ", "))"))
        } else {
            out.append(pad("worst single failure", 21) + (normal.capacity == nil ? "unknown" : "none: no single failure costs capacity"))
        }
        if normal.capacity == nil, !missing.isEmpty {
            out.append("capacity unknown: add \(missing.joined(separator: " and ")) (e.g. bandwidth: 100G, capacity: { nic: 50G })")
        }
        if !normal.unreachable.isEmpty { out.append("unreachable in normal operation: \(normal.unreachable.joined(separator: ", "))") }

        // Elements.
        let base = normal.capacity
        out.append("")
        out.append(base.map { "load at \(Self.format($0)) offered; WORST: the most under any single failure at that offer" }
                   ?? "load as a share of the offered traffic; WORST: the most under any single failure")
        out.append(pad("ELEMENT", 34) + pad("CAPACITY", 10) + pad("LOAD", 9) + pad("USE", 6) + pad("WORST", 9) + "UNDER")
        var elements = Set(normal.loads.filter { $0.value > 1e-12 }.keys)
        for f in failures { elements.formUnion(f.loads.filter { $0.value > 1e-12 }.keys) }
        func amount(_ share: Double) -> String { base.map { Self.format(share * $0) } ?? "\(Int((share * 100).rounded()))%" }
        // A node's packet rate is the same share as its bit rate: shown only where pps: is given.
        for e in elements.sorted() where capacities[e] != nil || !e.isPacketRate {
            let share = normal.loads[e] ?? 0
            let cap = capacities[e]
            let worstF = failures.max { ($0.loads[e] ?? 0) < ($1.loads[e] ?? 0) }
            let worstShare = max(share, worstF?.loads[e] ?? 0)
            let use = cap.flatMap { c in base.map { "\(Int((share * $0 / c * 100).rounded()))%" } } ?? "-"
            let under = worstShare > share * (1 + 1e-9) ? worstF!.failure!.description : "-"
            out.append(pad(name(e), 34) + pad(cap.map { Self.format($0) } ?? "-", 10) + pad(amount(share), 9) + pad(use, 6)
                       + pad(amount(worstShare), 9) + under)
        }

        // Failures.
        out.append("")
        out.append(pad("FAILURE", 34) + pad("CAPACITY", 10) + pad("LOST", 9) + "FILLS FIRST")
        for f in failures {
            let lost = base.flatMap { b in f.capacity.map { b - $0 } }
            let lostText = lost.map { $0 > (base ?? 0) * 1e-9 ? Self.format($0) : "0" } ?? "-"
            let note = f.unreachable.isEmpty ? (f.bottleneck.map(name) ?? "-") : "unreachable: \(f.unreachable.joined(separator: ", "))"
            out.append(pad(f.failure!.description, 34) + pad(Self.format(f.capacity), 10) + pad(lostText, 9) + note)
        }
        return out.joined(separator: "\n") + "\n"
    }

    private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

    struct JSONLimit: Encodable { var name: String; var bps: Double? }
    struct JSONLoad: Encodable { var element: String; var capacity: Double?; var share: Double; var bps: Double? }
    struct JSONScenario: Encodable {
        var failure: String?
        var capacity: Double?
        var lost: Double?
        var bottleneck: String?
        var unreachable: [String]
        var loads: [JSONLoad]
    }
    struct JSONPlan: Encodable {
        var topology: String
        var ingress: [String]
        var publicAddresses: [String]
        var packetBytes: Int
        var system: Double?
        var publicAddressLimits: [JSONLimit]
        var vipLimits: [JSONLimit]
        var flow: Double?
        var worstFailure: String?
        var missing: [String]
        var normal: JSONScenario
        var failures: [JSONScenario]
    }

    /// The same numbers as JSON (rates in bits per second; null = unknown).
    public var json: String {
        func scenario(_ s: Scenario) -> JSONScenario {
            let loads = s.loads.filter { $0.value > 1e-12 && (capacities[$0.key] != nil || !$0.key.isPacketRate) }
                .sorted { $0.key < $1.key }.map { e, share in
                JSONLoad(element: name(e), capacity: capacities[e], share: share, bps: s.capacity.map { share * $0 / max(1e-12, servedShare(s)) })
            }
            return JSONScenario(failure: s.failure?.description, capacity: s.capacity,
                                lost: normal.capacity.flatMap { b in s.capacity.map { b - $0 } },
                                bottleneck: s.bottleneck.map(name), unreachable: s.unreachable, loads: loads)
        }
        let plan = JSONPlan(topology: topology, ingress: ingress, publicAddresses: publicAddresses, packetBytes: packetBytes,
                            system: normal.capacity, publicAddressLimits: publicLimits.map { JSONLimit(name: $0.name, bps: $0.rate) },
                            vipLimits: vipLimits.map { JSONLimit(name: $0.name, bps: $0.rate) }, flow: flowLimit,
                            worstFailure: worst?.failure?.description, missing: missing,
                            normal: scenario(normal), failures: failures.map(scenario))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try! encoder.encode(plan), as: UTF8.self) + "\n"
    }

    /// The share of public addresses served (the offered traffic is the capacity divided by it).
    func servedShare(_ s: Scenario) -> Double {
        publicAddresses.isEmpty ? 1 : Double(publicAddresses.count - s.unreachable.count) / Double(publicAddresses.count)
    }
}
