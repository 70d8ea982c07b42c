// BFD for a router's static ECMP next hops, on the virtual clock of
// `SpeakerNetwork`: the router's speaker has a static route via two next
// hops and no BGP; the next hops have `bfd:` only and answer passively.
//
//   swift test --skip-build --filter BFDStaticRoute

import Testing
import Wire
@testable import Datapath

@Suite struct BFDStaticRouteTests {
    static let prefix = IPv4Prefix("0.0.0.0/0")!
    static let subnet = IPv4Prefix("10.0.1.0/24")!
    static let a = SpeakerNetwork.director(1), b = SpeakerNetwork.director(2)

    /// The router (static route via a and b, 50 ms × 3) and its next hops.
    static func network(answering: Bool = true) -> SpeakerNetwork {
        var net = SpeakerNetwork(bfd: false)
        net.nodes = [:]
        net.nodes[SpeakerNetwork.router] = BGPSpeaker(
            neighbors: [], multipath: 1, staticRoutes: [.init(prefix: prefix, gateways: [a, b])],
            answersBFDFrom: [subnet], jitterSeed: 1)
        for hop in [a, b] {
            net.nodes[hop] = BGPSpeaker(neighbors: [], multipath: 1, answersBFDFrom: answering ? [subnet] : [],
                                        firstDiscriminator: 100, jitterSeed: 2)
        }
        return net
    }

    static func start(_ net: inout SpeakerNetwork) {
        for address in net.nodes.keys.sorted() { net.carry(net.nodes[address]!.start(now: net.now), from: address) }
    }

    @Test func aDeadNextHopLeavesTheGroupWithinTheDetectionTimeAndComesBack() {
        var net = Self.network()
        Self.start(&net)
        net.run(until: .seconds(5))
        let router = net.nodes[SpeakerNetwork.router]!
        #expect(router.bfd.values.allSatisfy { $0.state == .up && $0.detectionTime == 150_000 })
        #expect(router.staticRoutes.current[Self.prefix] == [Self.a, Self.b])
        #expect(net.nodes[Self.a]!.bfd[SpeakerNetwork.router]?.configuration.passive == true)
        let death = net.now
        net.dead.insert(Self.b)
        net.nextHopsLog = []
        net.run(until: .seconds(5.5))
        guard let (at, prefix, gateways) = net.nextHopsLog.first else { Issue.record("the group did not change"); return }
        #expect(prefix == Self.prefix && gateways == [Self.a])
        let after = at.nanoseconds - death.nanoseconds
        #expect(after > 100_000_000 && after <= 150_000_000, "next hop left \(after) ns after it died")
        // Back: its frozen session times out, the router's slow Down packets
        // bring both sessions Up again, and the next hop returns.
        net.dead.remove(Self.b)
        net.nextHopsLog = []
        net.run(until: .seconds(10))
        #expect(net.nextHopsLog.map(\.2) == [[Self.a, Self.b]])
        #expect(net.nodes[SpeakerNetwork.router]!.staticRoutes.current[Self.prefix] == [Self.a, Self.b])
    }

    @Test func bothNextHopsDeadTakesTheRouteOut() {
        var net = Self.network()
        Self.start(&net)
        net.run(until: .seconds(5))
        net.dead.formUnion([Self.a, Self.b])
        net.nextHopsLog = []
        net.run(until: .seconds(6))
        #expect(net.nextHopsLog.map(\.2).last == [])
    }

    /// Next hops that do not answer (no `bfd:`): never Up, so they stay in
    /// the group as without BFD.
    @Test func nextHopsThatNeverAnswerStayInTheGroup() {
        var net = Self.network(answering: false)
        Self.start(&net)
        net.run(until: .seconds(10))
        #expect(net.nextHopsLog.isEmpty)
        #expect(net.nodes[SpeakerNetwork.router]!.staticRoutes.current[Self.prefix] == [Self.a, Self.b])
        #expect(net.nodes[SpeakerNetwork.router]!.bfd.values.allSatisfy { $0.state == .down })
    }

    /// A next hop dead from the start leaves once its sibling is Up.
    @Test func aNextHopDeadFromTheStartLeavesOnceItsSiblingIsUp() {
        var net = Self.network()
        net.dead.insert(Self.b)
        Self.start(&net)
        net.run(until: .seconds(5))
        #expect(net.nextHopsLog.map(\.2) == [[Self.a]])
        #expect(net.nextHopsLog[0].0 < .seconds(2), "left at \(net.nextHopsLog[0].0)")
    }

    @Test func theGroupRule() {
        var routes = BFDStaticRoutes([.init(prefix: Self.prefix, gateways: [Self.a, Self.b])])
        let all = [Self.a, Self.b]
        #expect(routes.current[Self.prefix] == all)
        // Down before ever Up: still unknown, nothing changes.
        #expect(routes.sessionChanged(Self.a, to: .down).isEmpty)
        #expect(routes.sessionChanged(Self.a, to: .initializing).isEmpty)
        // a Up: only the Up ones carry traffic.
        #expect(routes.sessionChanged(Self.a, to: .up).map(\.gateways) == [[Self.a]])
        #expect(routes.sessionChanged(Self.b, to: .up).map(\.gateways) == [all])
        #expect(routes.sessionChanged(Self.a, to: .down).map(\.gateways) == [[Self.b]])
        // Both known dead: the route goes; one back: it returns with it.
        #expect(routes.sessionChanged(Self.b, to: .down).map(\.gateways) == [[]])
        #expect(routes.sessionChanged(Self.b, to: .up).map(\.gateways) == [[Self.b]])
        // A route whose next hop is not the session's is not touched.
        var other = BFDStaticRoutes([.init(prefix: Self.subnet, gateways: [Self.a])])
        #expect(other.sessionChanged(Self.b, to: .up).isEmpty)
    }

    @Test func aPassiveSessionSpeaksOnlyWhenSpokenTo() {
        var answering = BGPSpeaker(neighbors: [], multipath: 1, answersBFDFrom: [Self.subnet], jitterSeed: 3)
        #expect(answering.start(now: .zero).isEmpty)
        #expect(answering.advance(to: .seconds(10)).isEmpty)
        // From a neighbour on the subnet: a session, answered with Init.
        let hello = BFDControlPacket(diagnostic: .none, state: .down, poll: false, detectMultiplier: 3, myDiscriminator: 7,
                                     yourDiscriminator: 0, desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 50_000)
        let actions = answering.receive(hello, from: Self.a, now: .seconds(10))
        #expect(actions.contains { if case .bfd(Self.a, .send(let p)) = $0 { p.state == .initializing && p.yourDiscriminator == 7 } else { false } })
        // Not on a connected subnet: ignored.
        #expect(answering.receive(hello, from: IPv4Address(192, 0, 2, 1), now: .seconds(10)).isEmpty)
        #expect(answering.bfd.count == 1)
        // The neighbour falls silent: Down after the Detection Time, then silent too.
        let later = answering.advance(to: .seconds(20))
        #expect(later.contains(.bfd(peer: Self.a, .stateChanged(from: .initializing, to: .down, diagnostic: .controlDetectionTimeExpired))))
        #expect(answering.advance(to: .seconds(30)).isEmpty)
    }
}
