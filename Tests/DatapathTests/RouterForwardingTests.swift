import Testing
import Wire
@testable import Datapath

/// Forwarding tables: a frame in on a port, the verdict, the frame out byte
/// for byte (expected frames are built from scratch, so every incremental
/// checksum is compared with a full recomputation), and what was emitted.
@Suite struct RouterForwardingTests {
    typealias IP = Frames.IP

    @Test func forwardsWithMACRewriteTTLDecrementAndChecksum() {
        let driver = Lab.resolvedDriver()
        let udp = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1, ttl: 64), dst: Lab.r0, src: Lab.clientMAC)
        let tcp = Frames.tcp(IP(source: Lab.client, destination: Lab.h2, ttl: 2), payload: Frames.payload(100),
                             dst: Lab.r0, src: Lab.clientMAC)
        let back = Frames.udp(IP(source: Lab.h3, destination: Lab.client, ttl: 255), sport: 53, dport: 5000,
                              dst: Lab.r2, src: Lab.h3MAC)
        RouterRow.run([
            RouterRow(description: "UDP via a gateway", frame: udp, port: 0, verdict: .forward(PortID(1)),
                      output: Frames.forwarded(udp, dst: Lab.h1MAC, src: Lab.r1)),
            RouterRow(description: "TCP to a connected host, TTL 2 → 1", frame: tcp, port: 0, verdict: .forward(PortID(1)),
                      output: Frames.forwarded(tcp, dst: Lab.h2MAC, src: Lab.r1)),
            RouterRow(description: "back the other way, TTL 255", frame: back, port: 2, verdict: .forward(PortID(0)),
                      output: Frames.forwarded(back, dst: Lab.clientMAC, src: Lab.r0)),
        ], driver)
        let router = driver.element as! Router
        #expect(router.counters.forwarded == 3)
        #expect(router.drops.total == 0)
    }

    @Test func incrementalChecksumMatchesFullRecomputationForEveryTTLAndID() {
        // The header checksum crosses every carry case as TTL and ID vary.
        let driver = Lab.resolvedDriver()
        for ttl in [UInt8(2), 3, 17, 64, 128, 255] {
            for id in [UInt16(0), 1, 0x00FF, 0x7FFF, 0xFEFF, 0xFFFF] {
                let f = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1, ttl: ttl, identification: id),
                                   dst: Lab.r0, src: Lab.clientMAC)
                let out = driver.send(f, on: PortID(0), at: .seconds(1))
                #expect(out.verdict == .forward(PortID(1)))
                #expect(out.frame == Frames.forwarded(f, dst: Lab.h1MAC, src: Lab.r1), "ttl \(ttl) id \(id)")
                #expect(Frames.checksumsValid(out.frame))
            }
        }
    }

    @Test func ethernetPaddingIsKept() {
        let driver = Lab.resolvedDriver()
        // A 42-byte ICMP frame padded to the 60-byte minimum.
        let f = Frames.ipv4(IP(source: Lab.client, destination: Lab.h1), protocol: .icmp,
                            Frames.icmp(.echoRequest(identifier: 1, sequenceNumber: 1), payload: []),
                            dst: Lab.r0, src: Lab.clientMAC, padTo: 60)
        RouterRow.run([RouterRow(description: "padded frame", frame: f, port: 0, verdict: .forward(PortID(1)),
                                 output: Frames.forwarded(f, dst: Lab.h1MAC, src: Lab.r1))], driver)
    }

    @Test func longestPrefixPicksTheRoute() {
        let driver = Lab.resolvedDriver()
        let a = Frames.udp(IP(source: Lab.client, destination: IPv4Address(198, 51, 100, 127)), dst: Lab.r0, src: Lab.clientMAC)
        let b = Frames.udp(IP(source: Lab.client, destination: IPv4Address(198, 51, 100, 128)), dst: Lab.r0, src: Lab.clientMAC)
        RouterRow.run([
            RouterRow(description: "/24 via h1", frame: a, port: 0, verdict: .forward(PortID(1)),
                      output: Frames.forwarded(a, dst: Lab.h1MAC, src: Lab.r1)),
            RouterRow(description: "/25 via h3 is longer", frame: b, port: 0, verdict: .forward(PortID(2)),
                      output: Frames.forwarded(b, dst: Lab.h3MAC, src: Lab.r2)),
        ], driver)
    }

    @Test func ttlExpiryAnswersTimeExceededQuotingHeaderAndEightBytes() {
        let driver = Lab.resolvedDriver()
        let one = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1, ttl: 1), dst: Lab.r0, src: Lab.clientMAC)
        let zero = Frames.tcp(IP(source: Lab.client, destination: Lab.viaH1, ttl: 0), dst: Lab.r0, src: Lab.clientMAC)
        let withOptions = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1, ttl: 1,
                                        options: [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00]),
                                     dst: Lab.r0, src: Lab.clientMAC)
        let fromH1 = Frames.udp(IP(source: Lab.h1, destination: Lab.client, ttl: 1), dst: Lab.r1, src: Lab.h1MAC)
        func timeExceeded(_ f: [UInt8], from ip: IPv4Address, to mac: MACAddress, on port: Int, routerMAC: MACAddress) -> ElementDriver.Emitted {
            emitted(port, Frames.icmpError(.timeExceeded(code: 0), about: f, from: ip, dst: mac, src: routerMAC))
        }
        RouterRow.run([
            RouterRow(description: "TTL 1", frame: one, port: 0, verdict: .drop(.ttlExpired),
                      emitted: [timeExceeded(one, from: Lab.r0IP, to: Lab.clientMAC, on: 0, routerMAC: Lab.r0)]),
            RouterRow(description: "TTL 0", frame: zero, port: 0, verdict: .drop(.ttlExpired),
                      emitted: [timeExceeded(zero, from: Lab.r0IP, to: Lab.clientMAC, on: 0, routerMAC: Lab.r0)]),
            RouterRow(description: "quote holds the options", frame: withOptions, port: 0, verdict: .drop(.ttlExpired),
                      emitted: [timeExceeded(withOptions, from: Lab.r0IP, to: Lab.clientMAC, on: 0, routerMAC: Lab.r0)]),
            RouterRow(description: "from the inside: source is the ingress address", frame: fromH1, port: 1,
                      verdict: .drop(.ttlExpired),
                      emitted: [timeExceeded(fromH1, from: Lab.r1IP, to: Lab.h1MAC, on: 1, routerMAC: Lab.r1)]),
        ], driver)
        // The quote is exactly the packet's first IP header + 8 bytes.
        let error = driver.send(withOptions, on: PortID(0), at: .seconds(2)).emitted[0].frame
        #expect(Array(error[42...]) == Array(withOptions[14 ..< 14 + 28 + 8]))
        #expect(Frames.checksumsValid(error))
        let router = driver.element as! Router
        #expect(router.drops.counts[.ttlExpired] == 5)
        #expect(router.counters.icmpSent == 5)
    }

    @Test func noICMPErrorAboutErrorsFragmentsOrBadSources() {
        let driver = Lab.resolvedDriver()
        let inner = Frames.udp(IP(source: Lab.viaH1, destination: Lab.client), dst: Lab.r0, src: Lab.clientMAC)
        let error = Frames.ipv4(IP(source: Lab.client, destination: Lab.viaH1, ttl: 1), protocol: .icmp,
                                Frames.icmp(.destinationUnreachable(code: 3, nextHopMTU: 0), payload: Array(inner[14 ..< 42])),
                                dst: Lab.r0, src: Lab.clientMAC)
        let laterFragment = Frames.ipv4(IP(source: Lab.client, destination: Lab.viaH1, ttl: 1, fragmentOffset: 1480),
                                        protocol: .udp, Frames.payload(40), dst: Lab.r0, src: Lab.clientMAC)
        let firstFragment = Frames.ipv4(IP(source: Lab.client, destination: Lab.viaH1, ttl: 1, moreFragments: true),
                                        protocol: .udp, Frames.udpDatagram(Lab.client, Lab.viaH1, sport: 1, dport: 2,
                                                                           payload: Frames.payload(40)),
                                        dst: Lab.r0, src: Lab.clientMAC)
        let broadcastSource = Frames.udp(IP(source: IPv4Address(10, 0, 0, 255), destination: Lab.viaH1, ttl: 1),
                                         dst: Lab.r1, src: Lab.h1MAC)
        RouterRow.run([
            RouterRow(description: "ICMP error with TTL 1: silent", frame: error, port: 0, verdict: .drop(.ttlExpired)),
            RouterRow(description: "non-first fragment: silent", frame: laterFragment, port: 0, verdict: .drop(.ttlExpired)),
            RouterRow(description: "first fragment: answered", frame: firstFragment, port: 0, verdict: .drop(.ttlExpired),
                      emitted: [emitted(0, Frames.icmpError(.timeExceeded(code: 0), about: firstFragment, from: Lab.r0IP,
                                                            dst: Lab.clientMAC, src: Lab.r0))]),
            RouterRow(description: "source is a subnet broadcast: silent", frame: broadcastSource, port: 1,
                      verdict: .drop(.ttlExpired)),
        ], driver)
    }

    @Test func noRouteAnswersNetUnreachable() {
        let driver = Lab.resolvedDriver()
        let f = Frames.tcp(IP(source: Lab.client, destination: IPv4Address(8, 8, 8, 8)), dst: Lab.r0, src: Lab.clientMAC)
        RouterRow.run([
            RouterRow(description: "8.8.8.8 has no route", frame: f, port: 0, verdict: .drop(.noRoute),
                      emitted: [emitted(0, Frames.icmpError(.destinationUnreachable(code: 0, nextHopMTU: 0), about: f,
                                                            from: Lab.r0IP, dst: Lab.clientMAC, src: Lab.r0))]),
        ], driver)
        #expect((driver.element as! Router).drops.counts[.noRoute] == 1)
    }

    @Test func dontFragmentAndTooBigAnswersFragmentationNeededWithTheMTU() {
        let driver = Lab.resolvedDriver()
        // 1028-byte packet, port 2's MTU is 1000.
        let big = Frames.udp(IP(source: Lab.client, destination: Lab.h3, dontFragment: true), payload: Frames.payload(1000),
                             dst: Lab.r0, src: Lab.clientMAC)
        let fits = Frames.udp(IP(source: Lab.client, destination: Lab.h3, dontFragment: true), payload: Frames.payload(972),
                              dst: Lab.r0, src: Lab.clientMAC)
        RouterRow.run([
            RouterRow(description: "1028 > 1000 with DF", frame: big, port: 0, verdict: .drop(.fragmentationNeeded),
                      emitted: [emitted(0, Frames.icmpError(.destinationUnreachable(code: 4, nextHopMTU: 1000), about: big,
                                                            from: Lab.r0IP, dst: Lab.clientMAC, src: Lab.r0))]),
            RouterRow(description: "exactly 1000 passes", frame: fits, port: 0, verdict: .forward(PortID(2)),
                      output: Frames.forwarded(fits, dst: Lab.h3MAC, src: Lab.r2)),
        ], driver)
        let error = driver.send(big, on: PortID(0), at: .seconds(2)).emitted[0].frame
        #expect(error[34] == 3 && error[35] == 4 && error[40] == 0x03 && error[41] == 0xE8, "type 3 code 4, MTU 1000")
    }

    @Test func withoutDFTooBigIsFragmentedCopyingOnlyCopiedOptions() {
        let driver = Lab.resolvedDriver()
        // Options: Record Route (type 7, not copied), then Router Alert
        // (type 0x94, copied), then End of List: 12 bytes.
        let options: [UInt8] = [0x07, 0x07, 0x04, 0x00, 0x00, 0x00, 0x00, 0x94, 0x04, 0x00, 0x00, 0x00]
        let datagram = Frames.udpDatagram(Lab.client, Lab.h3, sport: 7, dport: 9, payload: Frames.payload(2000 - 32 - 8))
        let ip = IP(source: Lab.client, destination: Lab.h3, ttl: 9, identification: 0xBEEF, options: options)
        let f = Frames.ipv4(ip, protocol: .udp, datagram, dst: Lab.r0, src: Lab.clientMAC)
        #expect(f.count == 14 + 2000)
        // MTU 1000: first fragment 32 + 968 data; later ones 24 + 976, 24 + 24.
        var first = ip, second = ip, third = ip
        first.ttl = 8; second.ttl = 8; third.ttl = 8
        first.moreFragments = true
        second.moreFragments = true; second.fragmentOffset = 968; second.options = [0x94, 0x04, 0x00, 0x00]
        third.fragmentOffset = 968 + 976; third.options = [0x94, 0x04, 0x00, 0x00]
        let expected = [
            Frames.ipv4(first, protocol: .udp, Array(datagram[0 ..< 968]), dst: Lab.h3MAC, src: Lab.r2),
            Frames.ipv4(second, protocol: .udp, Array(datagram[968 ..< 1944]), dst: Lab.h3MAC, src: Lab.r2),
            Frames.ipv4(third, protocol: .udp, Array(datagram[1944...]), dst: Lab.h3MAC, src: Lab.r2),
        ]
        RouterRow.run([RouterRow(description: "2000 bytes over MTU 1000", frame: f, port: 0, verdict: .consumed,
                                 emitted: expected.map { emitted(2, $0) })], driver)
        #expect(expected.allSatisfy { $0.count - 14 <= 1000 })
        // A fragment is fragmented again, keeping its offset and MF.
        var fragment = ip
        fragment.options = []
        fragment.moreFragments = true
        fragment.fragmentOffset = 800
        let g = Frames.ipv4(fragment, protocol: .udp, Frames.payload(1200), dst: Lab.r0, src: Lab.clientMAC)
        var g1 = fragment, g2 = fragment
        g1.ttl = 8; g2.ttl = 8; g2.fragmentOffset = 800 + 976
        RouterRow.run([RouterRow(description: "a fragment again", frame: g, port: 0, verdict: .consumed, emitted: [
            emitted(2, Frames.ipv4(g1, protocol: .udp, Array(Frames.payload(1200)[0 ..< 976]), dst: Lab.h3MAC, src: Lab.r2)),
            emitted(2, Frames.ipv4(g2, protocol: .udp, Array(Frames.payload(1200)[976...]), dst: Lab.h3MAC, src: Lab.r2)),
        ])], driver)
        let router = driver.element as! Router
        #expect(router.counters.fragmentsSent == 5)
        #expect(router.counters.forwarded == 2)
    }

    @Test func ipOptionsAreForwardedIntact() {
        let driver = Lab.resolvedDriver()
        let options: [UInt8] = [0x07, 0x0b, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]  // record route, room for 2, NOP
        let f = Frames.tcp(IP(source: Lab.client, destination: Lab.viaH1, options: options), dst: Lab.r0, src: Lab.clientMAC)
        let out = driver.send(f, on: PortID(0), at: .seconds(1))
        #expect(out.verdict == .forward(PortID(1)))
        #expect(out.frame == Frames.forwarded(f, dst: Lab.h1MAC, src: Lab.r1))
        #expect(Array(out.frame[34 ..< 46]) == options)
        #expect(Frames.checksumsValid(out.frame))
    }

    @Test func fragmentsAreForwardedWithoutReassembly() {
        let driver = Lab.resolvedDriver()
        let datagram = Frames.udpDatagram(Lab.client, Lab.viaH1, sport: 1, dport: 2, payload: Frames.payload(100))
        let first = Frames.ipv4(IP(source: Lab.client, destination: Lab.viaH1, moreFragments: true), protocol: .udp,
                                Array(datagram[0 ..< 64]), dst: Lab.r0, src: Lab.clientMAC)
        let last = Frames.ipv4(IP(source: Lab.client, destination: Lab.viaH1, fragmentOffset: 64), protocol: .udp,
                               Array(datagram[64...]), dst: Lab.r0, src: Lab.clientMAC)
        RouterRow.run([
            RouterRow(description: "last fragment first", frame: last, port: 0, verdict: .forward(PortID(1)),
                      output: Frames.forwarded(last, dst: Lab.h1MAC, src: Lab.r1)),
            RouterRow(description: "then the first", frame: first, port: 0, verdict: .forward(PortID(1)),
                      output: Frames.forwarded(first, dst: Lab.h1MAC, src: Lab.r1)),
        ], driver)
    }

    @Test func ecmpSpreadsFlowsAndKeepsEachFlowOnOnePath() {
        let driver = Lab.resolvedDriver()
        func flow(_ i: Int) -> [UInt8] {
            Frames.udp(IP(source: Lab.client, destination: Lab.ecmp), sport: UInt16(10000 + i), dport: 80,
                       dst: Lab.r0, src: Lab.clientMAC)
        }
        var path: [Int: PortID] = [:]
        for i in 0..<64 {
            let out = driver.send(flow(i), on: PortID(0), at: .seconds(1))
            guard case let .forward(port) = out.verdict else {
                Issue.record("flow \(i): \(out.verdict)")
                continue
            }
            path[i] = port
            let expected = port == PortID(1) ? Frames.forwarded(flow(i), dst: Lab.h2MAC, src: Lab.r1)
                                             : Frames.forwarded(flow(i), dst: Lab.h3MAC, src: Lab.r2)
            #expect(out.frame == expected)
        }
        let onFirst = path.values.filter { $0 == PortID(1) }.count
        #expect(onFirst > 16 && onFirst < 48, "64 flows split \(onFirst)/\(64 - onFirst)")
        for round in 0..<3 {
            for i in 0..<64 {
                #expect(driver.send(flow(i), on: PortID(0), at: .seconds(2 + Double(round))).verdict == .forward(path[i]!),
                        "flow \(i) changed path")
            }
        }
    }

    @Test func ecmpSendsEveryFragmentOfADatagramOneWay() {
        let driver = Lab.resolvedDriver()
        var ports: Set<PortID> = []
        for id in UInt16(1)...32 {
            let datagram = Frames.udpDatagram(Lab.client, Lab.ecmp, sport: 1000 + id, dport: 80, payload: Frames.payload(100))
            let first = Frames.ipv4(IP(source: Lab.client, destination: Lab.ecmp, identification: id, moreFragments: true),
                                    protocol: .udp, Array(datagram[0 ..< 64]), dst: Lab.r0, src: Lab.clientMAC)
            let last = Frames.ipv4(IP(source: Lab.client, destination: Lab.ecmp, identification: id, fragmentOffset: 64),
                                   protocol: .udp, Array(datagram[64...]), dst: Lab.r0, src: Lab.clientMAC)
            let a = driver.send(first, on: PortID(0), at: .seconds(1)).verdict
            let b = driver.send(last, on: PortID(0), at: .seconds(1)).verdict
            #expect(a == b, "datagram \(id): first fragment \(a), last \(b)")
            if case let .forward(port) = a { ports.insert(port) }
        }
        // Fragments hash on addresses + protocol only: one path for all of them.
        #expect(ports.count == 1)
    }

    @Test func ecmpSeedAndFieldsChangeTheSpread() {
        func paths(seed: UInt32) -> [PortID] {
            let driver = Lab.resolvedDriver(Lab.router(seed: seed))
            return (0..<32).map { i in
                let f = Frames.tcp(IP(source: Lab.client, destination: Lab.ecmp), sport: UInt16(2000 + i),
                                   dst: Lab.r0, src: Lab.clientMAC)
                guard case let .forward(p) = driver.send(f, on: PortID(0), at: .seconds(1)).verdict else { return PortID(-1) }
                return p
            }
        }
        #expect(paths(seed: 1) == paths(seed: 1))
        #expect(paths(seed: 1) != paths(seed: 2))
        // ICMP has no ports: one flow per address pair.
        let driver = Lab.resolvedDriver()
        let verdicts = (0..<16).map { seq in
            driver.send(Frames.echo(IP(source: Lab.client, destination: Lab.ecmp), seq: UInt16(seq), dst: Lab.r0,
                                    src: Lab.clientMAC), on: PortID(0), at: .seconds(1)).verdict
        }
        #expect(verdicts.allSatisfy { $0 == verdicts[0] })
    }

    @Test func linkDownShrinksECMPAndFallsBackToShorterRoutes() {
        let router = Lab.router()
        let driver = Lab.resolvedDriver(router)
        router.setLink(PortID(2), up: false)
        for i in 0..<32 {
            let f = Frames.udp(IP(source: Lab.client, destination: Lab.ecmp), sport: UInt16(i), dst: Lab.r0, src: Lab.clientMAC)
            #expect(driver.send(f, on: PortID(0), at: .seconds(1)).verdict == .forward(PortID(1)))
        }
        let f = Frames.udp(IP(source: Lab.client, destination: Lab.viaH3), dst: Lab.r0, src: Lab.clientMAC)
        RouterRow.run([RouterRow(description: "/25 via h3 is gone, /24 via h1 takes over", frame: f, port: 0,
                                 verdict: .forward(PortID(1)), output: Frames.forwarded(f, dst: Lab.h1MAC, src: Lab.r1))],
                      driver)
        router.setLink(PortID(2), up: true)
        // ARP on port 2 was flushed: the packet waits for a new resolution.
        let out = driver.send(f, on: PortID(0), at: .seconds(2))
        #expect(out.verdict == .consumed)
        #expect(out.emitted == [emitted(2, Frames.arpRequest(from: Lab.r2, Lab.r2IP, for: Lab.h3))])
    }

    /// What the daemon does on a carrier change: the live next-hop count
    /// (shown by `status`) shrinks and comes back, and once the link is back
    /// flows hash onto both ECMP ports again.
    @Test func linkDownAndUpChangeTheLiveNextHopsAndECMPUsesBothAgain() {
        let router = Lab.router()
        let driver = Lab.resolvedDriver(router)
        let all = router.fib.liveNextHopCount
        func ports() -> Set<PortID> {
            Set((0..<32).compactMap { i -> PortID? in
                let f = Frames.udp(IP(source: Lab.client, destination: Lab.ecmp), sport: UInt16(3000 + i), dst: Lab.r0, src: Lab.clientMAC)
                guard case let .forward(p) = driver.send(f, on: PortID(0), at: .seconds(1)).verdict else { return nil }
                return p
            })
        }
        #expect(ports() == [PortID(1), PortID(2)])
        router.setLink(PortID(2), up: false)
        #expect(router.fib.liveNextHopCount < all)
        #expect(router.fib.downPorts == [PortID(2)])
        #expect(ports() == [PortID(1)])
        router.setLink(PortID(2), up: true)
        #expect(router.fib.liveNextHopCount == all)
        #expect(router.fib.downPorts.isEmpty)
        // Port 2's ARP was flushed: resolve it again (first frames wait), then both carry flows.
        _ = ports()
        _ = driver.send(Frames.arp(.reply, from: Lab.h3MAC, Lab.h3, to: Lab.r2, Lab.r2IP), on: PortID(2), at: .seconds(1))
        #expect(ports() == [PortID(1), PortID(2)])
    }

    @Test func echoRequestsToOwnAddressesAreAnsweredInPlace() {
        let driver = Lab.resolvedDriver()
        let request = Frames.echo(IP(source: Lab.client, destination: Lab.r0IP, ttl: 7, identification: 0x4242),
                                  id: 0x1111, seq: 9, dst: Lab.r0, src: Lab.clientMAC)
        let reply = Frames.echo(IP(source: Lab.r0IP, destination: Lab.client, ttl: 64, identification: 0x4242), request: false,
                                id: 0x1111, seq: 9, dst: Lab.clientMAC, src: Lab.r0)
        // Any own address answers, on any port (weak host model).
        let farRequest = Frames.echo(IP(source: Lab.client, destination: Lab.r2IP), dst: Lab.r0, src: Lab.clientMAC)
        let farReply = Frames.echo(IP(source: Lab.r2IP, destination: Lab.client), request: false, dst: Lab.clientMAC, src: Lab.r0)
        // Options are not reflected.
        let optioned = Frames.echo(IP(source: Lab.client, destination: Lab.r0IP, options: [0x94, 0x04, 0, 0]),
                                   dst: Lab.r0, src: Lab.clientMAC)
        var badChecksum = request
        badChecksum[44] ^= 0xFF
        RouterRow.run([
            RouterRow(description: "ping the router", frame: request, port: 0, verdict: .forward(PortID(0)), output: reply),
            RouterRow(description: "ping another interface", frame: farRequest, port: 0, verdict: .forward(PortID(0)),
                      output: farReply),
            RouterRow(description: "options dropped from the reply", frame: optioned, port: 0, verdict: .forward(PortID(0)),
                      output: Frames.echo(IP(source: Lab.r0IP, destination: Lab.client), request: false,
                                          dst: Lab.clientMAC, src: Lab.r0)),
            RouterRow(description: "bad ICMP checksum", frame: badChecksum, port: 0,
                      verdict: .drop(.malformed("bad-checksum"))),
        ], driver)
        let router = driver.element as! Router
        #expect(router.counters.echoReplies == 3)
    }

    @Test func otherTrafficForTheRouterIsRefusedWithICMP() {
        let driver = Lab.resolvedDriver()
        let udp = Frames.udp(IP(source: Lab.client, destination: Lab.r0IP), dst: Lab.r0, src: Lab.clientMAC)
        let tcp = Frames.tcp(IP(source: Lab.client, destination: Lab.r1IP), dst: Lab.r0, src: Lab.clientMAC)
        let gre = Frames.ipv4(IP(source: Lab.client, destination: Lab.r0IP), protocol: IPProtocol(47), Frames.payload(20),
                              dst: Lab.r0, src: Lab.clientMAC)
        let echoReply = Frames.echo(IP(source: Lab.client, destination: Lab.r0IP), request: false, dst: Lab.r0, src: Lab.clientMAC)
        func unreachable(_ code: UInt8, _ f: [UInt8]) -> ElementDriver.Emitted {
            emitted(0, Frames.icmpError(.destinationUnreachable(code: code, nextHopMTU: 0), about: f, from: Lab.r0IP,
                                        dst: Lab.clientMAC, src: Lab.r0))
        }
        RouterRow.run([
            RouterRow(description: "UDP: port unreachable", frame: udp, port: 0, verdict: .drop(.localUnsupported),
                      emitted: [unreachable(3, udp)]),
            RouterRow(description: "TCP: port unreachable", frame: tcp, port: 0, verdict: .drop(.localUnsupported),
                      emitted: [unreachable(3, tcp)]),
            RouterRow(description: "GRE: protocol unreachable", frame: gre, port: 0, verdict: .drop(.localUnsupported),
                      emitted: [unreachable(2, gre)]),
            RouterRow(description: "echo reply: silence", frame: echoReply, port: 0, verdict: .drop(.localUnsupported)),
        ], driver)
    }

    @Test func framesNotForARouterAreDropped() {
        let driver = Lab.resolvedDriver()
        let other = MACAddress(0x02, 0xaa, 0, 0, 0, 1)
        func udp(_ src: IPv4Address, _ dst: IPv4Address, mac: MACAddress = Lab.r0) -> [UInt8] {
            Frames.udp(IP(source: src, destination: dst), dst: mac, src: Lab.clientMAC)
        }
        var tagged = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        tagged.insert(contentsOf: [0x81, 0x00, 0x00, 0x0a], at: 12)
        let ipv6 = Frames.ethernet(Lab.r0, Lab.clientMAC, .ipv6, [0x60] + [UInt8](repeating: 0, count: 39))
        RouterRow.run([
            RouterRow(description: "another MAC", frame: udp(Lab.client, Lab.viaH1, mac: other), port: 0, verdict: .drop(.notForUs)),
            RouterRow(description: "IP in a broadcast frame", frame: udp(Lab.client, Lab.viaH1, mac: .broadcast), port: 0,
                      verdict: .drop(.notForUs)),
            RouterRow(description: "port 1's MAC on port 0", frame: udp(Lab.client, Lab.viaH1, mac: Lab.r1), port: 0,
                      verdict: .drop(.notForUs)),
            RouterRow(description: "multicast destination", frame: udp(Lab.client, IPv4Address(224, 0, 0, 5)), port: 0,
                      verdict: .drop(.notForUs)),
            RouterRow(description: "limited broadcast", frame: udp(Lab.client, .broadcast), port: 0, verdict: .drop(.notForUs)),
            RouterRow(description: "directed broadcast", frame: udp(Lab.client, IPv4Address(10, 0, 0, 255)), port: 0,
                      verdict: .drop(.notForUs)),
            RouterRow(description: "loopback source", frame: udp(IPv4Address(127, 0, 0, 1), Lab.viaH1), port: 0,
                      verdict: .drop(.martianSource)),
            RouterRow(description: "multicast source", frame: udp(IPv4Address(239, 1, 1, 1), Lab.viaH1), port: 0,
                      verdict: .drop(.martianSource)),
            RouterRow(description: "802.1Q tagged", frame: tagged, port: 0, verdict: .drop(.vlanUnsupported)),
            RouterRow(description: "IPv6", frame: ipv6, port: 0, verdict: .drop(.ipv6Unsupported)),
        ], driver)
        #expect((driver.element as! Router).counters.icmpSent == 0)
    }

    @Test func malformedFramesAreCountedAndForwardingGoesOn() {
        let driver = Lab.resolvedDriver()
        let good = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        var badIHL = good
        badIHL[14] = 0x44
        var ihlPastFrame = Array(good[0 ..< 34])
        ihlPastFrame[14] = 0x4F
        var badChecksum = good
        badChecksum[24] ^= 0x01
        var lengthPastFrame = good
        lengthPastFrame[16] = 0x05
        lengthPastFrame[17] = 0x00
        var badVersion = good
        badVersion[14] = 0x65
        var shortUDP = Array(good[0 ..< 38])  // IP total length says 24: 4 bytes of UDP
        shortUDP[16] = 0
        shortUDP[17] = 24
        shortUDP.withUnsafeMutableBytes { IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: $0[14...])).fillChecksum() }
        let unknownType = Frames.ethernet(Lab.r0, Lab.clientMAC, EtherType(0x88B5), Frames.payload(46))
        let arpTruncated = Array(Frames.arp(.request, from: Lab.clientMAC, Lab.client, to: .zero, Lab.r0IP)[0 ..< 30])
        var arpNotIPv4 = Frames.arp(.request, from: Lab.clientMAC, Lab.client, to: .zero, Lab.r0IP)
        arpNotIPv4[16] = 0x86
        arpNotIPv4[17] = 0xDD
        let rows: [(String, [UInt8], DropReason)] = [
            ("runt", Array(good[0 ..< 10]), .malformed("truncated")),
            ("IP header cut", Array(good[0 ..< 30]), .malformed("truncated")),
            ("IHL 4", badIHL, .malformed("bad-header-length")),
            ("IHL past the frame", ihlPastFrame, .malformed("bad-header-length")),
            ("bad header checksum", badChecksum, .malformed("bad-checksum")),
            ("total length past the frame", lengthPastFrame, .malformed("bad-length")),
            ("version 6 in an IPv4 frame", badVersion, .malformed("bad-version")),
            ("UDP header cut", shortUDP, .malformed("truncated")),
            ("unknown EtherType", unknownType, .unknownEtherType),
            ("ARP cut", arpTruncated, .malformed("truncated")),
            ("ARP for IPv6", arpNotIPv4, .malformed("unsupported")),
        ]
        RouterRow.run(rows.flatMap { description, frame, reason in [
            RouterRow(description: description, frame: frame, port: 0, verdict: .drop(reason)),
            RouterRow(description: "good frame after \(description)", frame: good, port: 0, verdict: .forward(PortID(1)),
                      output: Frames.forwarded(good, dst: Lab.h1MAC, src: Lab.r1)),
        ] }, driver)
        let router = driver.element as! Router
        #expect(router.drops.counts[.malformed("truncated")] == 4)
        #expect(router.drops.counts[.malformed("bad-header-length")] == 2)
        #expect(router.drops.counts[.malformed("bad-checksum")] == 1)
        #expect(router.drops.counts[.malformed("bad-length")] == 1)
        #expect(router.drops.counts[.malformed("bad-version")] == 1)
        #expect(router.drops.counts[.malformed("unsupported")] == 1)
        #expect(router.drops.counts[.unknownEtherType] == 1)
        #expect(router.drops.total == 11)
        #expect(router.counters.forwarded == 11)
        #expect(router.counters.icmpSent == 0, "no ICMP about malformed packets")
    }

    @Test func randomlyDamagedFramesNeverTrap() {
        let driver = Lab.resolvedDriver()
        let seeds: [[UInt8]] = [
            Frames.udp(IP(source: Lab.client, destination: Lab.viaH1, options: [0x94, 4, 0, 0]), dst: Lab.r0, src: Lab.clientMAC),
            Frames.tcp(IP(source: Lab.client, destination: Lab.publicServer, ttl: 1), dst: Lab.r0, src: Lab.clientMAC),
            Frames.echo(IP(source: Lab.client, destination: Lab.r0IP), dst: Lab.r0, src: Lab.clientMAC),
            Frames.arp(.request, from: Lab.clientMAC, Lab.client, to: .zero, Lab.r0IP),
            Frames.ipv4(IP(source: Lab.client, destination: Lab.publicServer), protocol: .icmp,
                        Frames.icmp(.timeExceeded(code: 0), payload: Frames.payload(28)), dst: Lab.r0, src: Lab.clientMAC),
        ]
        var rng = SeededRandom(seed: 0x5eed)
        for i in 0..<3000 {
            var f = seeds[i % seeds.count]
            for _ in 0 ..< Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 12 ..< f.count, using: &rng)
                f[at] = UInt8.random(in: 0...255, using: &rng)
            }
            if Bool.random(using: &rng) { f.removeLast(Int.random(in: 0 ..< f.count - 12, using: &rng)) }
            _ = driver.send(f, on: PortID(0), at: .seconds(Double(i) / 100))
            _ = driver.tick(at: .seconds(Double(i) / 100))
        }
        let good = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1), dst: Lab.r0, src: Lab.clientMAC)
        let out = driver.send(good, on: PortID(0), at: .seconds(31))
        #expect(out.verdict == .forward(PortID(1)) || out.verdict == .consumed)
    }

    @Test func icmpErrorsAreRateLimited() {
        let driver = Lab.resolvedDriver(Lab.router(rateLimit: .init(perSecond: 2, burst: 2)))
        let f = Frames.udp(IP(source: Lab.client, destination: Lab.viaH1, ttl: 1), dst: Lab.r0, src: Lab.clientMAC)
        let counts = [10.0, 10.0, 10.0, 10.25, 10.5, 11.0].map { driver.send(f, on: PortID(0), at: .seconds($0)).emitted.count }
        #expect(counts == [1, 1, 0, 0, 1, 1])
        let router = driver.element as! Router
        #expect(router.counters.icmpRateLimited == 2)
        #expect(router.drops.counts[.ttlExpired] == 6, "the packets are dropped either way")
    }
}
