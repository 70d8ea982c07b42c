import Testing
import Wire
@testable import Datapath

/// `Router.applyLearnedRoute`: what the lab's BGP thread does with each
/// `BGPFIBChange` (the small topology of RouterTests.swift).
@Suite struct RouterLearnedRouteTests {
    let learned = IPv4Prefix("172.16.0.0/16")!

    @Test func anECMPGroupOnTheConnectedPortsThenShrinksThenGoes() {
        let router = Lab.router()
        let both = router.applyLearnedRoute(BGPFIBChange(prefix: learned, nextHops: [Lab.h1, Lab.h3]))
        #expect(both?.nextHops.map(\.port) == [PortID(1), PortID(2)])
        #expect(router.fib.route(for: IPv4Address(172, 16, 9, 9))?.nextHops.count == 2)
        router.applyLearnedRoute(BGPFIBChange(prefix: learned, nextHops: [Lab.h3]))
        #expect(router.fib.route(for: IPv4Address(172, 16, 9, 9))?.nextHops.map(\.gateway) == [Lab.h3])
        router.applyLearnedRoute(BGPFIBChange(prefix: learned, nextHops: []))
        #expect(router.fib.route(for: IPv4Address(172, 16, 9, 9)) == nil)
    }

    @Test func nextHopsOffEverySubnetInstallNothing() {
        let router = Lab.router()
        #expect(router.applyLearnedRoute(BGPFIBChange(prefix: learned, nextHops: [IPv4Address(100, 64, 0, 1)])) == nil)
        #expect(router.fib.route(for: IPv4Address(172, 16, 0, 1)) == nil)
    }

    @Test func configuredRoutesWinOverLearnedOnes() {
        let router = Lab.router()
        let staticPrefix = IPv4Prefix("198.51.100.0/24")!
        router.applyLearnedRoute(BGPFIBChange(prefix: staticPrefix, nextHops: [Lab.h2]))
        #expect(router.fib.route(for: Lab.viaH1)?.nextHops.map(\.gateway) == [Lab.h1])
        router.applyLearnedRoute(BGPFIBChange(prefix: staticPrefix, nextHops: []))
        #expect(router.fib.route(for: Lab.viaH1)?.nextHops.map(\.gateway) == [Lab.h1], "a withdrawal leaves the static route")
        router.applyLearnedRoute(BGPFIBChange(prefix: IPv4Prefix("10.0.0.0/24")!, nextHops: [Lab.h3]))
        #expect(router.fib.route(for: Lab.h2)?.isConnected == true)
    }

    /// `Router.useStaticNextHops`: what BFD on a static route does (203.0.113.0/24 via h2 and h3).
    @Test func bfdRestrictsAStaticECMPGroupAndRestoresIt() {
        let router = Lab.router()
        let ecmp = IPv4Prefix("203.0.113.0/24")!
        #expect(router.useStaticNextHops(ecmp, [Lab.h3])?.nextHops.map(\.gateway) == [Lab.h3])
        #expect(router.fib.route(for: Lab.ecmp)?.nextHops.map(\.gateway) == [Lab.h3])
        #expect(router.useStaticNextHops(ecmp, []) == nil)
        #expect(router.fib.route(for: Lab.ecmp) == nil, "no next hop left: the route leaves")
        // Back in file order, whatever order they are given in.
        #expect(router.useStaticNextHops(ecmp, [Lab.h3, Lab.h2])?.nextHops.map(\.gateway) == [Lab.h2, Lab.h3])
        // Carrier still applies on top: h3's port down leaves h2 in the compiled table.
        router.setLink(PortID(2), up: false)
        let match = router.fib.lookup(Lab.ecmp)
        #expect(match?.nextHopCount == 1 && match.map { router.fib.nextHop($0, hash: 0).gateway } == Lab.h2)
        // Not a configured gateway route: nothing.
        #expect(router.useStaticNextHops(IPv4Prefix("10.0.0.0/24")!, [Lab.h2]) == nil)
        #expect(router.fib.route(for: Lab.h2)?.isConnected == true)
    }
}
