import Testing
import Wire
@testable import Datapath

/// Static 1:1 NAT (public 192.0.2.100 ↔ private 10.0.0.100). Expected frames
/// are built from scratch with the translated addresses, so each
/// incrementally updated checksum (IP, TCP, UDP, ICMP, quoted headers) is
/// compared with a full recomputation, byte for byte.
@Suite struct RouterNATTests {
    typealias IP = Frames.IP
    static let outsideRouter = IPv4Address(192, 0, 2, 254)
    static let outsideMAC = MACAddress(0x02, 0, 0, 0, 0, 0xfe)
    static let far = IPv4Address(8, 8, 8, 8)

    @Test func translatesBothWaysWithChecksums() {
        let driver = Lab.resolvedDriver()
        let payload = Frames.payload(77, seed: 3)
        let tcpIn = Frames.tcp(IP(source: Lab.client, destination: Lab.publicServer), payload: payload, dst: Lab.r0, src: Lab.clientMAC)
        let tcpInOut = Frames.tcp(IP(source: Lab.client, destination: Lab.server, ttl: 63), payload: payload,
                                  dst: Lab.serverMAC, src: Lab.r1)
        let tcpBack = Frames.tcp(IP(source: Lab.server, destination: Lab.client), sport: 80, dport: 40000, flags: [.syn, .ack],
                                 dst: Lab.r1, src: Lab.serverMAC)
        let tcpBackOut = Frames.tcp(IP(source: Lab.publicServer, destination: Lab.client, ttl: 63), sport: 80, dport: 40000,
                                    flags: [.syn, .ack], dst: Lab.clientMAC, src: Lab.r0)
        let udpIn = Frames.udp(IP(source: Lab.client, destination: Lab.publicServer), dst: Lab.r0, src: Lab.clientMAC)
        let udpInOut = Frames.udp(IP(source: Lab.client, destination: Lab.server, ttl: 63), dst: Lab.serverMAC, src: Lab.r1)
        let udpBack = Frames.udp(IP(source: Lab.server, destination: Lab.client), sport: 53, dport: 5000,
                                 dst: Lab.r1, src: Lab.serverMAC)
        let udpBackOut = Frames.udp(IP(source: Lab.publicServer, destination: Lab.client, ttl: 63), sport: 53, dport: 5000,
                                    dst: Lab.clientMAC, src: Lab.r0)
        let noChecksumIn = Frames.udp(IP(source: Lab.client, destination: Lab.publicServer), dst: Lab.r0, src: Lab.clientMAC,
                                      checksum: false)
        let noChecksumOut = Frames.udp(IP(source: Lab.client, destination: Lab.server, ttl: 63), dst: Lab.serverMAC, src: Lab.r1,
                                       checksum: false)
        let pingIn = Frames.echo(IP(source: Lab.client, destination: Lab.publicServer), dst: Lab.r0, src: Lab.clientMAC)
        let pingInOut = Frames.echo(IP(source: Lab.client, destination: Lab.server, ttl: 63), dst: Lab.serverMAC, src: Lab.r1)
        let pongBack = Frames.echo(IP(source: Lab.server, destination: Lab.client), request: false, dst: Lab.r1, src: Lab.serverMAC)
        let pongBackOut = Frames.echo(IP(source: Lab.publicServer, destination: Lab.client, ttl: 63), request: false,
                                      dst: Lab.clientMAC, src: Lab.r0)
        RouterRow.run([
            RouterRow(description: "TCP in: destination public → private", frame: tcpIn, port: 0, verdict: .forward(PortID(1)),
                      output: tcpInOut),
            RouterRow(description: "TCP out: source private → public", frame: tcpBack, port: 1, verdict: .forward(PortID(0)),
                      output: tcpBackOut),
            RouterRow(description: "UDP in", frame: udpIn, port: 0, verdict: .forward(PortID(1)), output: udpInOut),
            RouterRow(description: "UDP out", frame: udpBack, port: 1, verdict: .forward(PortID(0)), output: udpBackOut),
            RouterRow(description: "UDP without checksum stays without", frame: noChecksumIn, port: 0,
                      verdict: .forward(PortID(1)), output: noChecksumOut),
            RouterRow(description: "echo in", frame: pingIn, port: 0, verdict: .forward(PortID(1)), output: pingInOut),
            RouterRow(description: "echo reply out", frame: pongBack, port: 1, verdict: .forward(PortID(0)), output: pongBackOut),
        ], driver)
        for frame in [tcpInOut, tcpBackOut, udpInOut, udpBackOut, pingInOut, pongBackOut] {
            #expect(Frames.checksumsValid(frame))
        }
        let router = driver.element as! Router
        #expect(router.counters.natIn == 4)
        #expect(router.counters.natOut == 3)
    }

    @Test func checksumsStayRightOverManyAddressesAndPorts() {
        // Random clients and ports: every carry case of the incremental update.
        let driver = Lab.resolvedDriver()
        var rng = SeededRandom(seed: 42)
        for _ in 0..<200 {
            let client = IPv4Address(192, 0, 2, UInt8.random(in: 2...99, using: &rng))
            let sport = UInt16.random(in: 1...65535, using: &rng)
            let payload = (0 ..< Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let id = UInt16.random(in: 0...65535, using: &rng)
            let tcp = Bool.random(using: &rng)
            func frame(_ src: IPv4Address, _ dst: IPv4Address, ttl: UInt8, _ d: MACAddress, _ s: MACAddress) -> [UInt8] {
                let ip = IP(source: src, destination: dst, ttl: ttl, identification: id)
                return tcp ? Frames.tcp(ip, sport: sport, payload: payload, dst: d, src: s)
                           : Frames.udp(ip, sport: sport, payload: payload, dst: d, src: s)
            }
            let out = driver.send(frame(client, Lab.publicServer, ttl: 64, Lab.r0, Lab.clientMAC), on: PortID(0), at: .seconds(1))
            #expect(out.frame == frame(client, Lab.server, ttl: 63, Lab.serverMAC, Lab.r1))
        }
    }

    @Test func fragmentsAreTranslated() {
        let driver = Lab.resolvedDriver()
        let outside = Frames.udpDatagram(Lab.client, Lab.publicServer, sport: 9, dport: 99, payload: Frames.payload(100))
        let inside = Frames.udpDatagram(Lab.client, Lab.server, sport: 9, dport: 99, payload: Frames.payload(100))
        let first = IP(source: Lab.client, destination: Lab.publicServer, moreFragments: true)
        let last = IP(source: Lab.client, destination: Lab.publicServer, fragmentOffset: 64)
        var firstIn = first, lastIn = last
        firstIn.destination = Lab.server; firstIn.ttl = 63
        lastIn.destination = Lab.server; lastIn.ttl = 63
        RouterRow.run([
            RouterRow(description: "first fragment: UDP checksum follows the address",
                      frame: Frames.ipv4(first, protocol: .udp, Array(outside[0 ..< 64]), dst: Lab.r0, src: Lab.clientMAC),
                      port: 0, verdict: .forward(PortID(1)),
                      output: Frames.ipv4(firstIn, protocol: .udp, Array(inside[0 ..< 64]), dst: Lab.serverMAC, src: Lab.r1)),
            RouterRow(description: "later fragment: only the IP header changes",
                      frame: Frames.ipv4(last, protocol: .udp, Array(outside[64...]), dst: Lab.r0, src: Lab.clientMAC),
                      port: 0, verdict: .forward(PortID(1)),
                      output: Frames.ipv4(lastIn, protocol: .udp, Array(inside[64...]), dst: Lab.serverMAC, src: Lab.r1)),
        ], driver)
    }

    @Test func errorsAboutTranslatedPacketsQuoteWhatTheSenderSent() {
        let driver = Lab.resolvedDriver()
        let expiring = Frames.udp(IP(source: Lab.client, destination: Lab.publicServer, ttl: 1), dst: Lab.r0, src: Lab.clientMAC)
        var tiny = Lab.configuration()
        tiny.interfaces[1].mtu = 576
        let small = Lab.resolvedDriver(try! Router(configuration: tiny))
        let big = Frames.tcp(IP(source: Lab.client, destination: Lab.publicServer, dontFragment: true),
                             payload: Frames.payload(600), dst: Lab.r0, src: Lab.clientMAC)
        RouterRow.run([
            RouterRow(description: "time exceeded quotes the public destination", frame: expiring, port: 0,
                      verdict: .drop(.ttlExpired),
                      emitted: [emitted(0, Frames.icmpError(.timeExceeded(code: 0), about: expiring, from: Lab.r0IP,
                                                            dst: Lab.clientMAC, src: Lab.r0))]),
        ], driver)
        RouterRow.run([
            RouterRow(description: "fragmentation needed quotes the public destination", frame: big, port: 0,
                      verdict: .drop(.fragmentationNeeded),
                      emitted: [emitted(0, Frames.icmpError(.destinationUnreachable(code: 4, nextHopMTU: 576), about: big,
                                                            from: Lab.r0IP, dst: Lab.clientMAC, src: Lab.r0))]),
        ], small)
    }

    @Test func hostUnreachableAfterNATQuotesTheOriginalPacket() {
        // The server is not resolved: the translated packet queues, ARP
        // gives up, and the error must quote the packet as the client sent it.
        let router = Lab.router(arp: .init(retryInterval: 1, maxRetries: 1))
        let driver = ElementDriver(router)
        let f = Frames.udp(IP(source: Lab.client, destination: Lab.publicServer), dst: Lab.r0, src: Lab.clientMAC)
        #expect(driver.send(f, on: PortID(0), at: .seconds(0)).verdict == .consumed)
        var quoted = Frames.udp(IP(source: Lab.client, destination: Lab.publicServer, ttl: 63), dst: Lab.r0, src: Lab.clientMAC)
        quoted = Array(quoted[14 ..< 42])
        #expect(driver.tick(at: .seconds(1)) == [
            emitted(0, Frames.icmpError(.destinationUnreachable(code: 1, nextHopMTU: 0), about: f, from: Lab.r0IP,
                                        dst: Lab.clientMAC, src: Lab.r0, quote: quoted)),
        ])
    }

    @Test func icmpErrorsInTransitHaveTheirQuoteTranslated() {
        let driver = Lab.resolvedDriver()
        Lab.resolve(driver, Self.outsideRouter, Self.outsideMAC, port: 0)
        // Outside → in: a router beyond us says the server's packet (which
        // left as 192.0.2.100) expired; the server must see its own address.
        func probe(from source: IPv4Address) -> [UInt8] {
            Frames.udp(IP(source: source, destination: Self.far, ttl: 1, identification: 0x0707), sport: 33434, dport: 33435,
                       dst: Lab.r0, src: Lab.clientMAC)
        }
        let asLeft = Array(probe(from: Lab.publicServer)[14 ..< 42])
        let asSent = Array(probe(from: Lab.server)[14 ..< 42])
        let inbound = Frames.ipv4(IP(source: Self.outsideRouter, destination: Lab.publicServer), protocol: .icmp,
                                  Frames.icmp(.timeExceeded(code: 0), payload: asLeft), dst: Lab.r0, src: Self.outsideMAC)
        let inboundOut = Frames.ipv4(IP(source: Self.outsideRouter, destination: Lab.server, ttl: 63), protocol: .icmp,
                                     Frames.icmp(.timeExceeded(code: 0), payload: asSent), dst: Lab.serverMAC, src: Lab.r1)
        // Inside → out: the server refuses a client's packet that reached it
        // translated; the client must see the address it used.
        func request(to destination: IPv4Address) -> [UInt8] {
            Frames.tcp(IP(source: Lab.client, destination: destination, ttl: 63), sport: 40001, dport: 81,
                       payload: Frames.payload(20), dst: Lab.r0, src: Lab.clientMAC)
        }
        let received = Array(request(to: Lab.server)[14 ..< 62])      // IP header + whole TCP header
        let clientSent = Array(request(to: Lab.publicServer)[14 ..< 62])
        let outbound = Frames.ipv4(IP(source: Lab.server, destination: Lab.client), protocol: .icmp,
                                   Frames.icmp(.destinationUnreachable(code: 3, nextHopMTU: 0), payload: received),
                                   dst: Lab.r1, src: Lab.serverMAC)
        let outboundOut = Frames.ipv4(IP(source: Lab.publicServer, destination: Lab.client, ttl: 63), protocol: .icmp,
                                      Frames.icmp(.destinationUnreachable(code: 3, nextHopMTU: 0), payload: clientSent),
                                      dst: Lab.clientMAC, src: Lab.r0)
        RouterRow.run([
            RouterRow(description: "time exceeded coming in", frame: inbound, port: 0, verdict: .forward(PortID(1)),
                      output: inboundOut),
            RouterRow(description: "port unreachable going out (TCP checksum in the quote too)", frame: outbound, port: 1,
                      verdict: .forward(PortID(0)), output: outboundOut),
        ], driver)
        #expect(Frames.checksumsValid(inboundOut) && Frames.checksumsValid(outboundOut))
    }

    @Test func anInsideHostsErrorAboutATranslatedPacketQuotesThePublicDestination() {
        // h1 (say, a load balancer in front of the server) cannot pass on a
        // client's packet that came in to the public address and answers
        // "fragmentation needed" from its own address: h1 stays h1, the
        // quote's destination goes back to what the client sent to.
        let driver = Lab.resolvedDriver()
        func request(to destination: IPv4Address) -> [UInt8] {
            Frames.tcp(IP(source: Lab.client, destination: destination, ttl: 63, dontFragment: true), sport: 40002, dport: 80,
                       payload: Frames.payload(20), dst: Lab.r0, src: Lab.clientMAC)
        }
        let received = Array(request(to: Lab.server)[14 ..< 62])
        let clientSent = Array(request(to: Lab.publicServer)[14 ..< 62])
        let error = Frames.ipv4(IP(source: Lab.h1, destination: Lab.client), protocol: .icmp,
                                Frames.icmp(.destinationUnreachable(code: 4, nextHopMTU: 1480), payload: received),
                                dst: Lab.r1, src: Lab.h1MAC)
        let errorOut = Frames.ipv4(IP(source: Lab.h1, destination: Lab.client, ttl: 63), protocol: .icmp,
                                   Frames.icmp(.destinationUnreachable(code: 4, nextHopMTU: 1480), payload: clientSent),
                                   dst: Lab.clientMAC, src: Lab.r0)
        RouterRow.run([RouterRow(description: "frag needed from h1 about the server's traffic", frame: error, port: 1,
                                 verdict: .forward(PortID(0)), output: errorOut)], driver)
        #expect(Frames.checksumsValid(errorOut))
        // An error about some other inside address keeps its quote.
        let other = Array(Frames.tcp(IP(source: Lab.client, destination: IPv4Address(10, 0, 0, 77), ttl: 63), sport: 40002, dport: 80,
                                     payload: Frames.payload(20), dst: Lab.r0, src: Lab.clientMAC)[14 ..< 62])
        let otherError = Frames.ipv4(IP(source: Lab.h1, destination: Lab.client), protocol: .icmp,
                                     Frames.icmp(.destinationUnreachable(code: 4, nextHopMTU: 1480), payload: other),
                                     dst: Lab.r1, src: Lab.h1MAC)
        RouterRow.run([RouterRow(description: "error about an untranslated address", frame: otherError, port: 1,
                                 verdict: .forward(PortID(0)), output: Frames.forwarded(otherError, dst: Lab.clientMAC, src: Lab.r0))], driver)
    }

    @Test func trafficOfOtherAddressesIsNotTranslated() {
        let driver = Lab.resolvedDriver()
        let f = Frames.udp(IP(source: Lab.h1, destination: Lab.client), dst: Lab.r1, src: Lab.h1MAC)
        RouterRow.run([RouterRow(description: "h1 keeps its address", frame: f, port: 1, verdict: .forward(PortID(0)),
                                 output: Frames.forwarded(f, dst: Lab.clientMAC, src: Lab.r0))], driver)
        let router = driver.element as! Router
        #expect(router.counters.natIn == 0 && router.counters.natOut == 0)
    }
}
