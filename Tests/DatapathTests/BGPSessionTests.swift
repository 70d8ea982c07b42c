// The BGP finite state machine (RFC 4271 §8) on an injected clock: the happy
// path, hold timer expiry, bad OPENs, keepalive cadence, 4-octet AS
// negotiation both ways, UPDATEs in and out, and the RIB's multipath.
//
//   swift test --skip-build --filter BGP

import Testing
import Wire
@testable import Datapath

let localID = IPv4Address(10, 0, 0, 1)
let peerID = IPv4Address(10, 0, 0, 2)

func configuration(localASN: UInt32 = 65001, peerASN: UInt32 = 65002, hold: UInt16 = 3, keepalive: Double? = nil,
                   fourOctetAS: Bool = true, idleHold: Double? = 1) -> BGPSessionConfiguration {
    BGPSessionConfiguration(localASN: localASN, routerID: localID, localAddress: localID, peerAddress: peerID,
                            peerASN: peerASN, holdTime: hold, keepaliveTime: keepalive, connectRetryTime: 5,
                            idleHoldTime: idleHold, fourOctetAS: fourOctetAS)
}

func t(_ seconds: Double) -> Instant { .seconds(seconds) }

/// The messages among the actions, decoded.
func sent(_ actions: [BGPAction], _ options: BGPCodecOptions = .fourOctet) -> [BGPMessage] {
    actions.compactMap {
        guard case .send(let bytes) = $0 else { return nil }
        return try? BGPMessage.decode(bytes, options)
    }
}

func states(_ actions: [BGPAction]) -> [BGPState] {
    actions.compactMap {
        guard case .stateChanged(_, let to, _) = $0 else { return nil }
        return to
    }
}

/// A session driven to Established at t = 0 with a peer OPEN of `peerOpen`.
func established(_ c: BGPSessionConfiguration = configuration(),
                 peerOpen: BGPOpen = BGPOpen(asn: 65002, holdTime: 3, bgpIdentifier: peerID)) -> BGPSession {
    var s = BGPSession(c)
    _ = s.handle(.manualStart, now: t(0))
    _ = s.handle(.tcpConnected, now: t(0))
    _ = s.handle(.received(BGPMessage.open(peerOpen).encode() + BGPMessage.keepalive.encode()), now: t(0))
    precondition(s.state == .established, "not established: \(s.state)")
    return s
}

@Suite struct BGPSessionTests {
    @Test func happyPathToEstablished() throws {
        var s = BGPSession(configuration())
        var a = s.handle(.manualStart, now: t(0))
        #expect(a == [.stateChanged(from: .idle, to: .connect, reason: "manual start: connecting to 10.0.0.2"), .connect])
        a = s.handle(.tcpConnected, now: t(0.1))
        #expect(states(a) == [.openSent])
        guard case .open(let ours) = sent(a).first else { Issue.record("no OPEN: \(a)"); return }
        #expect(ours.myAS == 65001 && ours.holdTime == 3 && ours.bgpIdentifier == localID && ours.supportsFourOctetAS)
        // The peer's OPEN and KEEPALIVE arrive in one read, cut in two.
        let bytes = BGPMessage.open(BGPOpen(asn: 65002, holdTime: 9, bgpIdentifier: peerID)).encode() + BGPMessage.keepalive.encode()
        a = s.handle(.received(Array(bytes[..<30])), now: t(0.2))
        #expect(a.isEmpty)
        a = s.handle(.received(Array(bytes[30...])), now: t(0.2))
        #expect(states(a) == [.openConfirm, .established])
        #expect(sent(a) == [.keepalive])
        #expect(s.negotiatedHoldTime == 3)
        #expect(s.keepaliveInterval == 1)
        #expect(s.peerOpen?.bgpIdentifier == peerID)
    }

    @Test func keepaliveCadenceIsHoldOverThree() {
        var s = established(configuration(hold: 9), peerOpen: BGPOpen(asn: 65002, holdTime: 90, bgpIdentifier: peerID))
        #expect(s.negotiatedHoldTime == 9)
        var times: [Double] = []
        // Step the clock by 10 ms; the peer's keepalives every 2 s keep the hold timer alive.
        for ms in stride(from: 10, through: 20_000, by: 10) {
            let now = t(Double(ms) / 1000)
            var a = s.advance(to: now)
            if ms % 2000 == 0 { a += s.handle(.received(BGPMessage.keepalive.encode()), now: now) }
            times += sent(a).filter { $0 == .keepalive }.map { _ in Double(ms) / 1000 }
        }
        #expect(times == stride(from: 3.0, through: 18.0, by: 3.0).map { $0 })
        #expect(s.state == .established)
    }

    @Test func configuredKeepaliveIsCappedAtAThirdOfHold() {
        #expect(established(configuration(hold: 90, keepalive: 1)).keepaliveInterval == 1)
        // The peer offers 3: hold 3, and a configured 30 s keepalive would let it expire.
        #expect(established(configuration(hold: 90, keepalive: 30)).keepaliveInterval == 1)
    }

    @Test func holdTimerExpiry() {
        var s = established()
        var a = s.advance(to: t(2.999))
        #expect(s.state == .established)
        #expect(sent(a) == [.keepalive, .keepalive])  // at 1 s and 2 s
        a = s.advance(to: t(3))
        #expect(sent(a) == [.notification(BGPNotification(code: 4, subcode: 0))])
        #expect(a.contains(.disconnect))
        #expect(a.contains(.peerDown(peer: peerID)))
        #expect(states(a) == [.idle])
        #expect(s.lastNotification?.notification.code == 4)
        // AutomaticStart after the idle hold time.
        a = s.advance(to: t(4))
        #expect(states(a) == [.connect])
        #expect(a.contains(.connect))
    }

    @Test func messagesRestartTheHoldTimer() {
        var s = established()
        _ = s.handle(.received(BGPMessage.keepalive.encode()), now: t(2.5))
        _ = s.advance(to: t(5.4))
        #expect(s.state == .established)
        _ = s.advance(to: t(5.5))
        #expect(s.state == .idle)
    }

    @Test func holdTimeZeroMeansNoKeepalivesAndNoExpiry() {
        var s = established(configuration(hold: 0))
        #expect(s.negotiatedHoldTime == 0 && s.keepaliveInterval == nil)
        #expect(s.advance(to: t(3600)).isEmpty)
        #expect(s.state == .established)
    }

    /// Each bad OPEN and the NOTIFICATION sent before the session goes Idle.
    @Test(arguments: [
        (BGPOpen(asn: 65003, holdTime: 3, bgpIdentifier: peerID), BGPNotification(code: 2, subcode: 2)),
        (BGPOpen(asn: 65002, holdTime: 2, bgpIdentifier: peerID), BGPNotification(code: 2, subcode: 6)),
        (BGPOpen(asn: 65002, holdTime: 1, bgpIdentifier: peerID), BGPNotification(code: 2, subcode: 6)),
        (BGPOpen(asn: 65002, holdTime: 3, bgpIdentifier: .any), BGPNotification(code: 2, subcode: 3)),
        (BGPOpen(version: 3, myAS: 65002, holdTime: 3, bgpIdentifier: peerID, capabilities: []), BGPNotification(code: 2, subcode: 1, data: [0, 4])),
    ])
    func badOpen(open: BGPOpen, expected: BGPNotification) {
        var s = BGPSession(configuration())
        _ = s.handle(.manualStart, now: t(0))
        _ = s.handle(.tcpConnected, now: t(0))
        let a = s.handle(.received(BGPMessage.open(open).encode()), now: t(0.1))
        #expect(sent(a) == [.notification(expected)])
        #expect(a.contains(.disconnect))
        #expect(states(a) == [.idle])
        #expect(s.connectRetryCounter == 1)
    }

    @Test func iBGPPeerWithOurIdentifierIsRefused() {
        var s = BGPSession(configuration(peerASN: 65001))
        _ = s.handle(.manualStart, now: t(0))
        _ = s.handle(.tcpConnected, now: t(0))
        let a = s.handle(.received(BGPMessage.open(BGPOpen(asn: 65001, holdTime: 3, bgpIdentifier: localID)).encode()), now: t(0))
        #expect(sent(a) == [.notification(BGPNotification(code: 2, subcode: 3))])
    }

    @Test func unexpectedMessagesAreFSMErrors() {
        var s = BGPSession(configuration())
        _ = s.handle(.manualStart, now: t(0))
        _ = s.handle(.tcpConnected, now: t(0))
        var a = s.handle(.received(BGPMessage.keepalive.encode()), now: t(0))
        #expect(sent(a) == [.notification(BGPNotification(code: 5, subcode: 1))])
        var e = established()
        a = e.handle(.received(BGPMessage.open(BGPOpen(asn: 65002, holdTime: 3, bgpIdentifier: peerID)).encode()), now: t(0.5))
        #expect(sent(a) == [.notification(BGPNotification(code: 5, subcode: 3))])
        #expect(a.contains(.peerDown(peer: peerID)))
    }

    @Test func openSentHoldTimerIsLarge() {
        var s = BGPSession(configuration())
        _ = s.handle(.manualStart, now: t(0))
        _ = s.handle(.tcpConnected, now: t(0))
        #expect(s.advance(to: t(239)).isEmpty)
        let a = s.advance(to: t(240))
        #expect(sent(a) == [.notification(BGPNotification(code: 4, subcode: 0))])
    }

    @Test func tcpFailureInOpenSentGoesActive() {
        var s = BGPSession(configuration())
        _ = s.handle(.manualStart, now: t(0))
        _ = s.handle(.tcpConnected, now: t(0))
        var a = s.handle(.tcpFailed, now: t(1))
        #expect(states(a) == [.active])
        a = s.advance(to: t(6))  // ConnectRetryTimer (5 s)
        #expect(states(a) == [.connect])
        #expect(a.contains(.connect))
    }

    @Test func connectRetryInConnect() {
        var s = BGPSession(configuration())
        _ = s.handle(.manualStart, now: t(0))
        #expect(s.advance(to: t(4.9)).isEmpty)
        #expect(s.advance(to: t(5)) == [.disconnect, .connect])
        #expect(s.state == .connect)
        #expect(s.acceptsConnection)
    }

    @Test func manualStopSendsCeaseAndStaysIdle() {
        var s = established()
        let a = s.handle(.manualStop, now: t(0.5))
        #expect(sent(a) == [.notification(BGPNotification(code: 6, subcode: 2))])
        #expect(states(a) == [.idle])
        #expect(s.nextDeadline == nil)
        #expect(s.advance(to: t(100)).isEmpty)
    }

    @Test func receivedNotificationGoesIdle() {
        var s = established()
        let a = s.handle(.received(BGPMessage.notification(.ceaseError(subcode: 2)).encode()), now: t(0.5))
        #expect(states(a) == [.idle])
        #expect(a.contains(.peerDown(peer: peerID)))
        #expect(sent(a).isEmpty)
    }

    @Test func fourOctetASBothSidesSupportIt() {
        var s = BGPSession(configuration(localASN: 4_200_000_001, peerASN: 4_200_000_002))
        _ = s.handle(.manualStart, now: t(0))
        let a = s.handle(.tcpConnected, now: t(0))
        guard case .open(let ours) = sent(a).first else { Issue.record("no OPEN"); return }
        #expect(ours.myAS == 23456)
        #expect(ours.autonomousSystem == 4_200_000_001)
        _ = s.handle(.received(BGPMessage.open(BGPOpen(asn: 4_200_000_002, holdTime: 3, bgpIdentifier: peerID)).encode()
                         + BGPMessage.keepalive.encode()), now: t(0))
        #expect(s.state == .established)
        #expect(s.fourOctetAS)
        // The peer's UPDATE with 4-octet AS numbers is read as such.
        let update = BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([4_200_000_002, 4_200_000_099])],
                                                             nextHop: peerID), nlri: [IPv4Prefix("10.7.0.0/16")!])
        let r = s.handle(.received(BGPMessage.update(update).encode(.fourOctet)), now: t(0.5))
        guard case .routes(_, let announced, _) = r.first else { Issue.record("no routes: \(r)"); return }
        #expect(announced.first?.attributes.asPath == [.sequence([4_200_000_002, 4_200_000_099])])
    }

    @Test func fourOctetASPeerWithoutTheCapability() {
        // The peer is an old (2-octet) speaker: no capability 65.
        let old = BGPOpen(myAS: 65002, holdTime: 3, bgpIdentifier: peerID, capabilities: [.multiprotocol()])
        var s = established(configuration(localASN: 4_200_000_001), peerOpen: old)
        #expect(!s.fourOctetAS)
        // What we announce carries AS_TRANS in AS_PATH and our AS in AS4_PATH.
        let a = s.announce([IPv4Prefix("10.100.0.0/24")!], now: t(0.5))
        guard case .send(let bytes) = a.first else { Issue.record("nothing sent"); return }
        guard case .update(let u) = try? BGPMessage.decode(bytes, .twoOctet) else { Issue.record("not an UPDATE"); return }
        #expect(u.attributes.asPath == [.sequence([4_200_000_001])])  // rebuilt from AS4_PATH
        #expect(bytes.contains(17) && bytes.contains(0x5B))
        // The old peer's UPDATE is read with 2-octet AS numbers.
        let theirs = BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([65002, 65010])], nextHop: peerID),
                               nlri: [IPv4Prefix("10.8.0.0/16")!])
        let r = s.handle(.received(BGPMessage.update(theirs).encode(.twoOctet)), now: t(0.6))
        guard case .routes(_, let announced, _) = r.first else { Issue.record("no routes: \(r)"); return }
        #expect(announced.first?.attributes.asPath == [.sequence([65002, 65010])])
    }

    @Test func weDoNotOfferFourOctetAS() {
        var s = established(configuration(fourOctetAS: false))
        #expect(!s.fourOctetAS)
        _ = s.advance(to: t(0.1))
    }

    @Test func updatesInWithdrawalsAndMalformedOnes() {
        var s = established()
        let attributes = BGPPathAttributes(origin: .igp, asPath: [.sequence([65002])], nextHop: peerID)
        var a = s.handle(.received(BGPMessage.update(BGPUpdate(attributes: attributes, nlri: [IPv4Prefix("10.1.0.0/16")!])).encode()), now: t(0.5))
        #expect(a == [.routes(peer: peerID, announced: [BGPRoute(prefix: IPv4Prefix("10.1.0.0/16")!, peer: peerID, peerRouterID: peerID,
                                                                  peerASN: 65002, isExternal: true, attributes: attributes)],
                              withdrawn: [])])
        a = s.handle(.received(BGPMessage.update(BGPUpdate(withdrawn: [IPv4Prefix("10.1.0.0/16")!])).encode()), now: t(0.6))
        #expect(a == [.routes(peer: peerID, announced: [], withdrawn: [IPv4Prefix("10.1.0.0/16")!])])
        // A path holding our own AS is a loop: withdrawn, not learned.
        let loop = BGPPathAttributes(origin: .igp, asPath: [.sequence([65002, 65001])], nextHop: peerID)
        a = s.handle(.received(BGPMessage.update(BGPUpdate(attributes: loop, nlri: [IPv4Prefix("10.2.0.0/16")!])).encode()), now: t(0.7))
        #expect(a == [.routes(peer: peerID, announced: [], withdrawn: [IPv4Prefix("10.2.0.0/16")!])])
        // An eBGP path that does not start with the peer's AS → 3/11.
        let wrong = BGPPathAttributes(origin: .igp, asPath: [.sequence([65099])], nextHop: peerID)
        a = s.handle(.received(BGPMessage.update(BGPUpdate(attributes: wrong, nlri: [IPv4Prefix("10.3.0.0/16")!])).encode()), now: t(0.8))
        #expect(sent(a) == [.notification(BGPNotification(code: 3, subcode: 11))])
        #expect(a.contains(.peerDown(peer: peerID)))
        // A malformed UPDATE → its NOTIFICATION, Idle.
        var m = established()
        var bad = BGPMessage.update(BGPUpdate(attributes: attributes, nlri: [IPv4Prefix("10.1.0.0/16")!])).encode()
        bad[bad.count - 3] = 33  // the NLRI's prefix length
        a = m.handle(.received(bad), now: t(0.5))
        #expect(sent(a) == [.notification(BGPNotification(code: 3, subcode: 10))])
        #expect(states(a) == [.idle])
    }

    @Test func announceAndWithdraw() {
        var s = BGPSession(configuration())
        // Announced before Established: sent on reaching it.
        _ = s.announce([IPv4Prefix("10.0.0.100/32")!], now: t(0))
        _ = s.handle(.manualStart, now: t(0))
        _ = s.handle(.tcpConnected, now: t(0))
        var a = s.handle(.received(BGPMessage.open(BGPOpen(asn: 65002, holdTime: 3, bgpIdentifier: peerID)).encode()
                                   + BGPMessage.keepalive.encode()), now: t(0))
        let expected = BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([65001])], nextHop: localID),
                                 nlri: [IPv4Prefix("10.0.0.100/32")!])
        #expect(sent(a) == [.keepalive, .update(expected)])
        a = s.withdraw([IPv4Prefix("10.0.0.100/32")!], now: t(0.2))
        #expect(sent(a) == [.update(BGPUpdate(withdrawn: [IPv4Prefix("10.0.0.100/32")!]))])
        #expect(s.withdraw([IPv4Prefix("10.0.0.100/32")!], now: t(0.3)).isEmpty)
        // The UPDATE restarted the keepalive timer: the next one 1 s after it.
        #expect(sent(s.advance(to: t(1.1))).isEmpty)
        #expect(sent(s.advance(to: t(1.2))) == [.keepalive])
    }

    @Test func iBGPAnnouncementsCarryLocalPrefAndAnEmptyPath() {
        var s = established(configuration(peerASN: 65001), peerOpen: BGPOpen(asn: 65001, holdTime: 3, bgpIdentifier: peerID))
        let a = s.announce([IPv4Prefix("10.0.0.100/32")!], now: t(0.1))
        #expect(sent(a) == [.update(BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [], nextHop: localID, localPref: 100),
                                              nlri: [IPv4Prefix("10.0.0.100/32")!]))])
    }
}

@Suite struct BGPRIBTests {
    static let vip = IPv4Prefix("10.0.0.100/32")!

    static func route(_ peer: UInt8, path: [UInt32], prefix: IPv4Prefix = vip, localPref: UInt32? = nil, med: UInt32? = nil) -> BGPRoute {
        BGPRoute(prefix: prefix, peer: IPv4Address(10, 0, 1, peer), peerRouterID: IPv4Address(192, 0, 2, peer),
                 peerASN: path.first ?? 65001, isExternal: true,
                 attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence(path)], nextHop: IPv4Address(10, 0, 1, peer),
                                               multiExitDisc: med, localPref: localPref))
    }

    static func announce(_ r: BGPRoute) -> BGPAction { .routes(peer: r.peer, announced: [r], withdrawn: []) }
    static func hop(_ n: UInt8) -> IPv4Address { IPv4Address(10, 0, 1, n) }

    @Test func equalPathsFormOneECMPGroupAndShrinkWhenASessionDrops() {
        var rib = BGPRIB(multipath: 4)
        #expect(rib.apply(Self.announce(Self.route(3, path: [65013]))) == [BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(3)])])
        #expect(rib.apply(Self.announce(Self.route(1, path: [65011]))) == [BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(1), Self.hop(3)])])
        #expect(rib.apply(Self.announce(Self.route(2, path: [65012]))) == [BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(1), Self.hop(2), Self.hop(3)])])
        // A longer path is not a member.
        #expect(rib.apply(Self.announce(Self.route(4, path: [65014, 65099]))) == [])
        #expect(rib.fib[Self.vip] == [Self.hop(1), Self.hop(2), Self.hop(3)])
        // Session 2 drops: the group shrinks.
        #expect(rib.apply(.peerDown(peer: Self.hop(2))) == [BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(1), Self.hop(3)])])
        // Peer 1 withdraws.
        #expect(rib.apply(.routes(peer: Self.hop(1), announced: [], withdrawn: [Self.vip])) == [BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(3)])])
        // Peer 3 drops: the longer path is all that is left.
        #expect(rib.dropPeer(Self.hop(3)) == [BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(4)])])
        #expect(rib.dropPeer(Self.hop(4)) == [BGPFIBChange(prefix: Self.vip, nextHops: [])])
        #expect(rib.fib.isEmpty && rib.routes.isEmpty)
    }

    @Test func multipathLimitKeepsTheLowestRouterIDs() {
        var rib = BGPRIB(multipath: 2)
        for p: UInt8 in [5, 2, 9, 1] { _ = rib.apply(Self.announce(Self.route(p, path: [65000 + UInt32(p)]))) }
        #expect(rib.fib[Self.vip] == [Self.hop(1), Self.hop(2)])
        _ = rib.dropPeer(Self.hop(1))
        #expect(rib.fib[Self.vip] == [Self.hop(2), Self.hop(5)])
    }

    @Test func tieBreakersBeforePathLength() {
        var rib = BGPRIB(multipath: 4)
        _ = rib.apply(Self.announce(Self.route(1, path: [65011])))
        // Higher LOCAL_PREF wins over a shorter path.
        _ = rib.apply(Self.announce(Self.route(2, path: [65012, 65100, 65101], localPref: 200)))
        #expect(rib.fib[Self.vip] == [Self.hop(2)])
        // Equal paths, lower MED wins; equal MED shares.
        var m = BGPRIB(multipath: 4)
        _ = m.apply(Self.announce(Self.route(1, path: [65011], med: 20)))
        _ = m.apply(Self.announce(Self.route(2, path: [65012], med: 10)))
        _ = m.apply(Self.announce(Self.route(3, path: [65013], med: 10)))
        #expect(m.fib[Self.vip] == [Self.hop(2), Self.hop(3)])
        #expect(m.best(Self.vip)?.peer == Self.hop(2))
    }

    @Test func replacingARouteReselects() {
        var rib = BGPRIB(multipath: 4)
        _ = rib.apply(Self.announce(Self.route(1, path: [65011])))
        _ = rib.apply(Self.announce(Self.route(2, path: [65012])))
        // Peer 2's path gets longer (implicit withdraw of the old one).
        #expect(rib.apply(Self.announce(Self.route(2, path: [65012, 65012]))) == [BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(1)])])
        #expect(rib.routes[Self.vip]?.count == 2)
    }

    @Test func changesInstallIntoARoutingTable() {
        var rib = BGPRIB(multipath: 4)
        var table = RoutingTable()
        let ports: [IPv4Address: PortID] = [Self.hop(1): PortID(rawValue: 1), Self.hop(2): PortID(rawValue: 2)]
        for n: UInt8 in [1, 2, 3] {
            for c in rib.apply(Self.announce(Self.route(n, path: [65000 + UInt32(n)]))) { c.apply(to: &table) { ports[$0] } }
        }
        // Hop 3 has no port (not on a connected network): left out.
        #expect(table.routes[Self.vip]?.nextHops == [RouteEntry.NextHop(gateway: Self.hop(1), port: PortID(rawValue: 1)),
                                                      RouteEntry.NextHop(gateway: Self.hop(2), port: PortID(rawValue: 2))])
        #expect(table.lookup(IPv4Address(10, 0, 0, 100))?.nextHopCount == 2)
        for c in rib.dropPeer(Self.hop(1)) { c.apply(to: &table) { ports[$0] } }
        #expect(table.routes[Self.vip]?.nextHops == [RouteEntry.NextHop(gateway: Self.hop(2), port: PortID(rawValue: 2))])
        for n: UInt8 in [2, 3] { for c in rib.dropPeer(Self.hop(n)) { c.apply(to: &table) { ports[$0] } } }
        #expect(table.routes[Self.vip] == nil)
        #expect(table.lookup(IPv4Address(10, 0, 0, 100)) == nil)
    }

    /// Sessions and RIB together: three directors announce the VIP; one
    /// stops talking and its hold timer takes it out of the group.
    @Test func sessionsFeedTheRIB() {
        var rib = BGPRIB(multipath: 4)
        var sessions: [BGPSession] = []
        for n: UInt8 in 1...3 {
            let c = BGPSessionConfiguration(localASN: 65000, routerID: IPv4Address(10, 0, 1, 254), localAddress: IPv4Address(10, 0, 1, 254),
                                            peerAddress: Self.hop(n), peerASN: 65010, holdTime: 3)
            var s = BGPSession(c)
            _ = s.handle(.manualStart, now: t(0))
            _ = s.handle(.tcpConnected, now: t(0))
            var a = s.handle(.received(BGPMessage.open(BGPOpen(asn: 65010, holdTime: 3, bgpIdentifier: IPv4Address(192, 0, 2, n))).encode()
                                       + BGPMessage.keepalive.encode()), now: t(0))
            let u = BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([65010])], nextHop: Self.hop(n)), nlri: [Self.vip])
            a += s.handle(.received(BGPMessage.update(u).encode()), now: t(0.1))
            for action in a { _ = rib.apply(action) }
            sessions.append(s)
        }
        #expect(rib.fib[Self.vip] == [Self.hop(1), Self.hop(2), Self.hop(3)])
        // Peers 1 and 3 keep sending keepalives; peer 2 is silent.
        var changes: [(Double, BGPFIBChange)] = []
        for ms in stride(from: 100, through: 5000, by: 100) {
            let now = t(Double(ms) / 1000)
            for i in sessions.indices {
                var a = sessions[i].advance(to: now)
                if i != 1, ms % 1000 == 0 { a += sessions[i].handle(.received(BGPMessage.keepalive.encode()), now: now) }
                for action in a { changes += rib.apply(action).map { (Double(ms) / 1000, $0) } }
            }
        }
        #expect(changes.count == 1)
        #expect(changes.first?.0 == 3.1)  // the last message at 0.1 s + hold 3 s
        #expect(changes.first?.1 == BGPFIBChange(prefix: Self.vip, nextHops: [Self.hop(1), Self.hop(3)]))
        // Session 2 went Idle at 3.1 s and, after the idle hold time (1 s), tries again.
        #expect(sessions.map(\.state) == [.established, .connect, .established])
    }
}

/// Random events, random bytes and random clock jumps never trap a session,
/// and what it says stays consistent: every send is a whole message our
/// codec reads, state changes chain, and routes come only in Established.
@Suite struct BGPSessionFuzzTests {
    typealias Rng = SeededRandom

    @Test func randomEventsNeverTrap() {
        var rng = Rng(seed: 4271)
        let good: [[UInt8]] = [
            BGPMessage.open(BGPOpen(asn: 65002, holdTime: 3, bgpIdentifier: peerID)).encode(),
            BGPMessage.keepalive.encode(),
            BGPMessage.update(BGPUpdate(attributes: BGPPathAttributes(origin: .igp, asPath: [.sequence([65002])], nextHop: peerID),
                                        nlri: [IPv4Prefix("10.1.0.0/16")!])).encode(),
            BGPMessage.update(BGPUpdate(withdrawn: [IPv4Prefix("10.1.0.0/16")!])).encode(),
            BGPMessage.notification(.ceaseError(subcode: 2)).encode(),
            BGPMessage.routeRefresh(afi: 1, safi: 1).encode(),
        ]
        var established = 0, routes = 0, notifications = 0
        for run in 0..<200 {
            var s = BGPSession(configuration())
            var now = 0.0
            var state = BGPState.idle
            for _ in 0..<200 {
                now += [0, 0.001, 0.5, 1, 0.2, 0.01, 4][rng.below(7)]
                let actions: [BGPAction]
                // Mostly the step that moves the session on, sometimes anything.
                var choice = rng.below(10)
                if rng.below(3) != 0 {
                    switch s.state {
                    case .idle: choice = 0
                    case .connect, .active: choice = 2
                    case .openSent, .openConfirm, .established: choice = 5
                    }
                }
                switch choice {
                case 0: actions = s.handle(.manualStart, now: t(now))
                case 1: actions = s.handle(rng.below(4) == 0 ? .manualStop : .tcpFailed, now: t(now))
                case 2: actions = s.handle(.tcpConnected, now: t(now))
                case 3: actions = s.advance(to: t(now))
                case 4: actions = s.announce([IPv4Prefix(address: IPv4Address(rawValue: UInt32(truncatingIfNeeded: rng.next())), length: 24).canonical], now: t(now))
                default:
                    var bytes = good[rng.below(good.count)]
                    if choice == 5, rng.below(2) == 0 {
                        bytes = s.state == .openSent ? good[0] : s.state == .openConfirm ? good[1] : good[2 + rng.below(2)]
                    }
                    if rng.below(8) == 0 { bytes[rng.below(bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                    let cut = rng.below(bytes.count + 1)
                    actions = s.handle(.received(Array(bytes[..<cut])), now: t(now)) + s.handle(.received(Array(bytes[cut...])), now: t(now))
                }
                for a in actions {
                    switch a {
                    case .send(let bytes):
                        // (in the AS width the OPENs negotiated: a damaged OPEN may drop capability 65)
                        do { _ = try BGPMessage.decode(bytes, s.codecOptions) } catch { Issue.record("run \(run): we sent something unreadable: \(error) \(bytes.count) bytes \(bytes.prefix(40))") }
                    case .stateChanged(let from, let to, _):
                        #expect(from == state, "run \(run): \(from) → \(to) after \(state)")
                        state = to
                        if to == .established { established += 1 }
                    case .routes:
                        routes += 1
                        #expect(s.state == .established || state == .established, "run \(run): routes in \(s.state)")
                    default: break
                    }
                }
                #expect(state == s.state)
                if s.lastNotification != nil { notifications += 1 }
            }
        }
        // The walk got somewhere: sessions came up, learned, and failed.
        #expect(established > 200 && routes > 1000 && notifications > 1000, "established \(established), routes \(routes), notifications \(notifications)")
    }
}
