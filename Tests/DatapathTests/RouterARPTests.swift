import Testing
import Wire
@testable import Datapath

/// ARP: answering, learning, resolving next hops with a bounded queue,
/// retries and give-up on the injected clock, refresh before expiry.
@Suite struct RouterARPTests {
    typealias IP = Frames.IP

    static func request(from mac: MACAddress, _ ip: IPv4Address, for target: IPv4Address,
                        to dst: MACAddress = .broadcast) -> [UInt8] {
        Frames.arp(.request, from: mac, ip, to: .zero, target, ethernetDestination: dst)
    }

    @Test func requestsForOwnedAddressesAreAnsweredOnTheirPort() {
        let router = Lab.router()
        let driver = ElementDriver(router)
        let other = MACAddress(0x02, 0xaa, 0, 0, 0, 1)
        RouterRow.run([
            RouterRow(description: "who has 192.0.2.1 on port 0", frame: Self.request(from: Lab.clientMAC, Lab.client, for: Lab.r0IP),
                      port: 0, verdict: .consumed,
                      emitted: [emitted(0, Frames.arp(.reply, from: Lab.r0, Lab.r0IP, to: Lab.clientMAC, Lab.client))]),
            RouterRow(description: "unicast request (a neighbour refreshing)",
                      frame: Self.request(from: Lab.clientMAC, Lab.client, for: Lab.r0IP, to: Lab.r0), port: 0,
                      verdict: .consumed,
                      emitted: [emitted(0, Frames.arp(.reply, from: Lab.r0, Lab.r0IP, to: Lab.clientMAC, Lab.client))]),
            RouterRow(description: "who has the NAT public address: proxied on its subnet's port",
                      frame: Self.request(from: Lab.clientMAC, Lab.client, for: Lab.publicServer), port: 0, verdict: .consumed,
                      emitted: [emitted(0, Frames.arp(.reply, from: Lab.r0, Lab.publicServer, to: Lab.clientMAC, Lab.client))]),
            RouterRow(description: "NAT public address on another port: silence",
                      frame: Self.request(from: Lab.h1MAC, Lab.h1, for: Lab.publicServer), port: 1, verdict: .consumed),
            RouterRow(description: "port 0's address asked on port 1: silence",
                      frame: Self.request(from: Lab.h1MAC, Lab.h1, for: Lab.r0IP), port: 1, verdict: .consumed),
            RouterRow(description: "someone else's address: silence",
                      frame: Self.request(from: Lab.h1MAC, Lab.h1, for: Lab.h2), port: 1, verdict: .consumed),
            RouterRow(description: "the private NAT address is the server's to answer",
                      frame: Self.request(from: Lab.h1MAC, Lab.h1, for: Lab.server), port: 1, verdict: .consumed),
            RouterRow(description: "RFC 5227 probe for our address: answered",
                      frame: Self.request(from: Lab.h2MAC, .any, for: Lab.r1IP), port: 1, verdict: .consumed,
                      emitted: [emitted(1, Frames.arp(.reply, from: Lab.r1, Lab.r1IP, to: Lab.h2MAC, .any))]),
            RouterRow(description: "request to another MAC", frame: Self.request(from: Lab.clientMAC, Lab.client, for: Lab.r0IP, to: other),
                      port: 0, verdict: .drop(.notForUs)),
        ], driver)
        #expect(router.counters.arpRepliesSent == 4)
        // Learned: the client (it asked for us). Not learned: h1 (asked for
        // someone else, unknown), h2 (probe).
        #expect(router.arp.lookup(Lab.client, now: .seconds(1))?.mac == Lab.clientMAC)
        #expect(router.arp.lookup(Lab.h1, now: .seconds(1)) == nil)
        #expect(router.arp.lookup(Lab.h2, now: .seconds(1)) == nil)
    }

    @Test func learningFollowsRFC826AndStaysOnLink() {
        let router = Lab.router()
        let driver = ElementDriver(router)
        let nine = IPv4Address(10, 0, 0, 9), ten = IPv4Address(10, 0, 0, 10)
        let nineMAC = MACAddress(0x02, 0, 0, 0, 0, 0x09), newMAC = MACAddress(0x02, 0, 0, 0, 0, 0x99)
        let offLink = IPv4Address(172, 16, 0, 1)
        RouterRow.run([
            RouterRow(description: "gratuitous request", frame: Self.request(from: nineMAC, nine, for: nine), port: 1, verdict: .consumed),
            RouterRow(description: "gratuitous reply", frame: Frames.arp(.reply, from: Lab.h2MAC, Lab.h2, to: .broadcast, Lab.h2),
                      port: 1, verdict: .consumed),
            RouterRow(description: "unsolicited reply to us", frame: Frames.arp(.reply, from: Lab.h3MAC, Lab.h3, to: Lab.r2, Lab.r2IP),
                      port: 2, verdict: .consumed),
            RouterRow(description: "request for someone else from a stranger",
                      frame: Self.request(from: Lab.h1MAC, ten, for: Lab.h2), port: 1, verdict: .consumed),
            RouterRow(description: "off-link sender asking for us: answered, not learned",
                      frame: Self.request(from: Lab.h1MAC, offLink, for: Lab.r1IP), port: 1, verdict: .consumed,
                      emitted: [emitted(1, Frames.arp(.reply, from: Lab.r1, Lab.r1IP, to: Lab.h1MAC, offLink))]),
            RouterRow(description: "someone claiming our address", frame: Self.request(from: Lab.h1MAC, Lab.r1IP, for: Lab.r1IP),
                      port: 1, verdict: .consumed),
            RouterRow(description: "RFC 826 merge: a known sender's new MAC, from a request for someone else",
                      frame: Self.request(from: newMAC, nine, for: Lab.h2), port: 1, at: 2, verdict: .consumed),
            RouterRow(description: "multicast sender MAC",
                      frame: Frames.arp(.reply, from: MACAddress(0x01, 0, 0x5e, 0, 0, 1), Lab.h1, to: Lab.r1, Lab.r1IP),
                      port: 1, verdict: .drop(.arpBadSender)),
        ], driver)
        let now = Instant.seconds(3)
        #expect(router.arp.lookup(nine, now: now) == ARPCache.Entry(mac: newMAC, port: PortID(1), expires: .seconds(62),
                                                                    refreshAt: .seconds(57)))
        #expect(router.arp.lookup(Lab.h2, now: now)?.mac == Lab.h2MAC)
        #expect(router.arp.lookup(Lab.h3, now: now)?.port == PortID(2))
        #expect(router.arp.lookup(ten, now: now) == nil)
        #expect(router.arp.lookup(offLink, now: now) == nil)
        #expect(router.arp.lookup(Lab.r1IP, now: now) == nil)
        #expect(router.arp.entries.count == 3)
    }

    @Test func unresolvedNextHopQueuesAsksAndTheReplyReleasesTheQueue() {
        let router = Lab.router()
        let driver = ElementDriver(router)
        let first = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), sport: 1, dst: Lab.r0, src: Lab.clientMAC)
        let second = Frames.tcp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        let third = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), sport: 3, dst: Lab.r0, src: Lab.clientMAC)
        RouterRow.run([
            RouterRow(description: "first packet: queued, request broadcast", frame: first, port: 0, at: 0, verdict: .consumed,
                      emitted: [emitted(1, Frames.arpRequest(from: Lab.r1, Lab.r1IP, for: Lab.h1))]),
            RouterRow(description: "second packet: queued quietly", frame: second, port: 0, at: 0.1, verdict: .consumed),
            RouterRow(description: "the reply releases both, rewritten",
                      frame: Frames.arp(.reply, from: Lab.h1MAC, Lab.h1, to: Lab.r1, Lab.r1IP), port: 1, at: 0.2,
                      verdict: .consumed,
                      emitted: [emitted(1, Frames.forwarded(first, dst: Lab.h1MAC, src: Lab.r1)),
                                emitted(1, Frames.forwarded(second, dst: Lab.h1MAC, src: Lab.r1))]),
            RouterRow(description: "then packets go straight through", frame: third, port: 0, at: 0.3, verdict: .forward(PortID(1)),
                      output: Frames.forwarded(third, dst: Lab.h1MAC, src: Lab.r1)),
        ], driver)
        #expect(router.counters.arpRequestsSent == 1)
        #expect(router.counters.arpQueued == 2)
        #expect(router.counters.arpReleased == 2)
        #expect(router.counters.forwarded == 3)
        #expect(router.arp.pending.isEmpty)
        #expect(router.drops.total == 0)
    }

    @Test func queuedPacketsTooBigForTheMTUAreFragmentedOnRelease() {
        let router = Lab.router()
        let driver = ElementDriver(router)
        let big = Frames.udp(IP(source: Lab.client, destination: Lab.h3), payload: Frames.payload(1100), dst: Lab.r0, src: Lab.clientMAC)
        #expect(driver.send(big, on: PortID(0), at: .seconds(0)).verdict == .consumed)
        let out = driver.send(Frames.arp(.reply, from: Lab.h3MAC, Lab.h3, to: Lab.r2, Lab.r2IP), on: PortID(2), at: .seconds(0.1))
        #expect(out.emitted.map(\.port) == [PortID(2), PortID(2)])
        #expect(out.emitted.map { $0.frame.count - 14 } == [996, 152])  // 20 + 976, 20 + 132
        #expect(out.emitted.allSatisfy { Frames.checksumsValid($0.frame) && Array($0.frame[0 ..< 12]) == Array(Frames.ethernet(Lab.h3MAC, Lab.r2, .ipv4, [])[0 ..< 12]) })
        #expect(router.counters.fragmentsSent == 2)
    }

    @Test func queuesAreBounded() {
        var arp = ARPCache.Configuration()
        arp.queuePerAddress = 3
        arp.maxPendingAddresses = 2
        let router = Lab.router(arp: arp)
        let driver = ElementDriver(router)
        func to(_ ip: IPv4Address, _ sport: UInt16) -> [UInt8] {
            Frames.udp(IP(source: Lab.client, destination: ip), sport: sport, dst: Lab.r0, src: Lab.clientMAC)
        }
        let verdicts = (1...4).map { driver.send(to(Lab.viaH1, $0), on: PortID(0), at: .seconds(0)).verdict }
        #expect(verdicts == [.consumed, .consumed, .consumed, .drop(.arpQueueFull)])
        #expect(driver.send(to(Lab.viaH3, 1), on: PortID(0), at: .seconds(0)).verdict == .consumed)
        #expect(driver.send(to(Lab.h2, 1), on: PortID(0), at: .seconds(0)).verdict == .drop(.arpQueueFull),
                "a third address waiting is one too many")
        #expect(router.drops.counts[.arpQueueFull] == 2)
        #expect(router.arp.pending[Lab.h1]?.frames.count == 3)
    }

    @Test func retriesThenGivesUpWithHostUnreachable() {
        let router = Lab.router(arp: .init(retryInterval: 1, maxRetries: 3))
        let driver = ElementDriver(router)
        let a = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), sport: 1, dst: Lab.r0, src: Lab.clientMAC)
        let b = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), sport: 2, dst: Lab.r0, src: Lab.clientMAC)
        let request = emitted(1, Frames.arpRequest(from: Lab.r1, Lab.r1IP, for: Lab.h1))
        #expect(driver.send(a, on: PortID(0), at: .seconds(10)).emitted == [request])
        #expect(driver.send(b, on: PortID(0), at: .seconds(10.5)).emitted == [])
        #expect(driver.tick(at: .seconds(10.9)) == [])
        #expect(driver.tick(at: .seconds(11)) == [request], "second request after 1 s")
        #expect(driver.tick(at: .seconds(11.5)) == [])
        #expect(driver.tick(at: .seconds(12)) == [request], "third and last request")
        // The quote is of the packet as it was queued: TTL already 63.
        func unreachable(_ f: [UInt8]) -> ElementDriver.Emitted {
            emitted(0, Frames.icmpError(.destinationUnreachable(code: 1, nextHopMTU: 0), about: f, from: Lab.r0IP,
                                        dst: Lab.clientMAC, src: Lab.r0,
                                        quote: Array(Frames.forwarded(f, dst: Lab.clientMAC, src: Lab.r1)[14 ..< 42])))
        }
        #expect(driver.tick(at: .seconds(13)) == [unreachable(a), unreachable(b)], "gave up")
        #expect(router.drops.counts[.arpUnresolved] == 2)
        #expect(router.counters.arpRequestsSent == 3)
        #expect(router.arp.pending.isEmpty)
        #expect(driver.tick(at: .seconds(20)) == [])
        // A new packet starts over.
        #expect(driver.send(a, on: PortID(0), at: .seconds(21)).emitted == [request])
    }

    @Test func giveUpCanStaySilent() {
        var configuration = Lab.configuration(arp: .init(retryInterval: 1, maxRetries: 1))
        configuration.sendsHostUnreachable = false
        let router = try! Router(configuration: configuration)
        let driver = ElementDriver(router)
        _ = driver.send(Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC),
                        on: PortID(0), at: .seconds(0))
        #expect(driver.tick(at: .seconds(1)) == [])
        #expect(router.drops.counts[.arpUnresolved] == 1)
    }

    @Test func busyEntriesAreRefreshedBeforeTheyExpire() {
        // Lifetime 60 s, refresh from 5 s before expiry, 1 s apart.
        let router = Lab.router()
        let driver = ElementDriver(router)
        Lab.resolve(driver, Lab.h1, Lab.h1MAC, port: 1, at: 0)
        let f = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        let forwarded = Frames.forwarded(f, dst: Lab.h1MAC, src: Lab.r1)
        let refresh = emitted(1, Frames.arpRequest(from: Lab.r1, Lab.r1IP, for: Lab.h1, to: Lab.h1MAC))
        RouterRow.run([
            RouterRow(description: "fresh entry", frame: f, port: 0, at: 10, verdict: .forward(PortID(1)), output: forwarded),
            RouterRow(description: "5 s before expiry: unicast refresh", frame: f, port: 0, at: 55.5,
                      verdict: .forward(PortID(1)), output: forwarded, emitted: [refresh]),
            RouterRow(description: "no second refresh within 1 s", frame: f, port: 0, at: 56, verdict: .forward(PortID(1)),
                      output: forwarded),
            RouterRow(description: "next refresh 1 s later", frame: f, port: 0, at: 56.5, verdict: .forward(PortID(1)),
                      output: forwarded, emitted: [refresh]),
            RouterRow(description: "h1 answers", frame: Frames.arp(.reply, from: Lab.h1MAC, Lab.h1, to: Lab.r1, Lab.r1IP),
                      port: 1, at: 57, verdict: .consumed),
            RouterRow(description: "long after the first lifetime", frame: f, port: 0, at: 100, verdict: .forward(PortID(1)),
                      output: forwarded),
            RouterRow(description: "expired (117 s): resolve again", frame: f, port: 0, at: 117, verdict: .consumed,
                      emitted: [emitted(1, Frames.arpRequest(from: Lab.r1, Lab.r1IP, for: Lab.h1))]),
        ], driver)
        #expect(router.arp.counters.refreshed == 2)
    }

    @Test func expiredEntriesAreRemovedByTick() {
        let router = Lab.router(arp: .init(entryLifetime: 30))
        let driver = Lab.resolvedDriver(router)
        #expect(router.arp.entries.count == 5)
        _ = driver.tick(at: .seconds(29.9))
        #expect(router.arp.entries.count == 5)
        _ = driver.tick(at: .seconds(30))
        #expect(router.arp.entries.isEmpty)
        #expect(router.arp.counters.expired == 5)
    }

    /// Routers (`ARPCache.Configuration.forwarder`) retry on their fine
    /// timer (`nextTimer`), as a runtime drives it: 200 ms apart twice,
    /// then 1 s apart, giving up after the fifth request. On the 1 s tick
    /// a lost request was retried 1–2 s later.
    @Test func retriesRunOnTheFineTimerQuicklyAtFirstThenBackOff() {
        let router = Lab.router(arp: .forwarder)
        let driver = ElementDriver(router)
        let f = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        let request = emitted(1, Frames.arpRequest(from: Lab.r1, Lab.r1IP, for: Lab.h1))
        #expect(router.nextTimer == nil, "nothing to resolve, no timer")
        #expect(driver.send(f, on: PortID(0), at: .seconds(10)).emitted == [request])
        var requests: [UInt64] = [10_000]
        var gaveUpAt: UInt64?
        for _ in 0..<10 {
            guard let due = router.nextTimer else { break }
            let out = driver.fireTimers(at: due)
            if out == [request] { requests.append(due.nanoseconds / 1_000_000) } else {
                #expect(out.count == 1 && out.first?.port == PortID(0), "gave up: host unreachable to the client")
                gaveUpAt = due.nanoseconds / 1_000_000
            }
        }
        #expect(requests == [10_000, 10_200, 10_400, 11_400, 12_400])
        #expect(gaveUpAt == 13_400)
        #expect(router.drops.counts[.arpUnresolved] == 1)
        #expect(router.arp.pending.isEmpty && router.nextTimer == nil)
    }

    /// When a link comes back the router asks at once for the gateways
    /// through it and the neighbours it knew there (ARP forgot them when
    /// the link went); a lost request is retried 200 ms later, and the
    /// traffic that follows finds the next hop resolved.
    @Test func aLinkBackAsksForItsNeighboursAtOnceAndRetriesQuickly() {
        let router = Lab.router(arp: .forwarder)
        let driver = ElementDriver(router)
        Lab.resolve(driver, Lab.h1, Lab.h1MAC, port: 1, at: 0)
        Lab.resolve(driver, Lab.server, Lab.serverMAC, port: 1, at: 0)
        router.setLink(PortID(1), up: false)
        #expect(router.arp.lookup(Lab.h1, now: .seconds(1)) == nil)
        router.setLink(PortID(1), up: true)
        var emit = Emitter(slots: 8)
        #expect(router.resolveNextHops(on: PortID(1), now: .seconds(2), emit: &emit) == 3)
        var asked: [[UInt8]] = []
        for i in 0..<emit.count where emit.frame(at: i).port == PortID(1) { asked.append(Array(emit.frame(at: i).bytes)) }
        let expected = [Lab.h1, Lab.h2, Lab.server].map { Frames.arpRequest(from: Lab.r1, Lab.r1IP, for: $0) }
        #expect(asked == expected, "route gateways h1, h2 (ECMP), then the neighbour it knew: the server")
        emit.removeAll()
        #expect(router.resolveNextHops(on: PortID(2), now: .seconds(2), emit: &emit) == 1, "h3, on a link that never went")
        emit.removeAll()
        // Those first requests are lost: the retries go 200 ms later, not at the next tick.
        #expect(router.nextTimer == .seconds(2.2))
        #expect(driver.fireTimers(at: .seconds(2.2)).count == 4)
        Lab.resolve(driver, Lab.h1, Lab.h1MAC, port: 1, at: 2.25)
        let f = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        #expect(driver.send(f, on: PortID(0), at: .seconds(2.3)).verdict == .forward(PortID(1)))
        #expect(router.drops.counts[.linkDown] == nil && router.drops.counts[.arpUnresolved] == nil)
    }

    @Test func linkDownForgetsWhatWaitedThere() {
        let router = Lab.router()
        let driver = ElementDriver(router)
        _ = driver.send(Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC),
                        on: PortID(0), at: .seconds(0))
        router.setLink(PortID(1), up: false)
        #expect(router.arp.pending.isEmpty)
        #expect(router.drops.counts[.linkDown] == 1)
    }
}
