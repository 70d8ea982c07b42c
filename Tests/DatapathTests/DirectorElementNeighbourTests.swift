import Testing
import Wire
@testable import Datapath

// What the director says on its own: ARP for everything it owns, ICMP echo
// replies, ICMP errors; and how it resolves next hops (queue, retries,
// giving up, re-probing) through `tick`.

@Suite struct DirectorElementNeighbourTests {
    typealias P = DE.Packet

    static func request(for target: IPv4Address, from mac: MACAddress = DE.gwMAC, _ ip: IPv4Address = DE.gw,
                        padTo: Int = 42) -> [UInt8] {
        DE.arp(.request, from: mac, ip, asking: target, padTo: padTo)
    }

    /// The director's own ARP request (42 bytes, as Linux sends it on a veth).
    static func directorRequest(for target: IPv4Address, to destination: MACAddress = .broadcast,
                                sender: IPv4Address = DE.lvs) -> [UInt8] {
        DE.arp(.request, from: DE.lvsMAC, sender, asking: target, ethDestination: destination)
    }

    // MARK: ARP

    @Test func answersARPForInterfaceVIPAndLocalAddresses() {
        let director = DE.director(.fullnat)
        let driver = ElementDriver(director)
        DE.run([
            DE.Row(description: "who has 10.0.0.2 (interface)", input: Self.request(for: DE.lvs), verdict: .forward(PortID(0)),
                   output: DE.arpReply(DE.lvs, to: DE.gwMAC, DE.gw)),
            DE.Row(description: "who has 10.0.0.100 (VIP)", input: Self.request(for: DE.vip), verdict: .forward(PortID(0)),
                   output: DE.arpReply(DE.vip, to: DE.gwMAC, DE.gw)),
            DE.Row(description: "who has 10.0.0.200 (FULLNAT local), padded request → padded reply",
                   input: Self.request(for: DE.local, from: DE.rs1MAC, DE.rs1, padTo: 60), verdict: .forward(PortID(0)),
                   output: DE.arpReply(DE.local, to: DE.rs1MAC, DE.rs1, padTo: 60)),
            DE.Row(description: "unicast request to the director's MAC", input:
                    DE.arp(.request, from: DE.rs2MAC, DE.rs2, asking: DE.vip, ethDestination: DE.lvsMAC),
                   verdict: .forward(PortID(0)), output: DE.arpReply(DE.vip, to: DE.rs2MAC, DE.rs2)),
            DE.Row(description: "address probe (sender 0.0.0.0) for the VIP is answered (defended)",
                   input: Self.request(for: DE.vip, from: DE.rs2MAC, .any), verdict: .forward(PortID(0)),
                   output: DE.arpReply(DE.vip, to: DE.rs2MAC, .any)),
            DE.Row(description: "who has someone else", input: Self.request(for: IPv4Address(10, 0, 0, 77)),
                   verdict: .consumed),  // nothing to answer, but the sender (known) was refreshed
            DE.Row(description: "request for someone else from a stranger", input:
                    Self.request(for: IPv4Address(10, 0, 0, 77), from: MACAddress(0x02, 0, 0, 0, 0, 0x77), IPv4Address(10, 0, 0, 78)),
                   verdict: .drop(.notForUs)),
            DE.Row(description: "a reply addressed to us from a new neighbour is learned", input:
                    DE.arp(.reply, from: MACAddress(0x02, 0, 0, 0, 0, 0x66), IPv4Address(10, 0, 0, 66), asking: DE.lvs,
                           tha: DE.lvsMAC, ethDestination: DE.lvsMAC),
                   verdict: .consumed),
            DE.Row(description: "ARP unicast to another MAC", input:
                    DE.arp(.request, from: DE.gwMAC, DE.gw, asking: DE.vip, ethDestination: DE.rs1MAC),
                   verdict: .drop(.notForUs)),
            DE.Row(description: "gratuitous ARP claiming the VIP: conflict, not answered, not learned",
                   input: Self.request(for: DE.vip, from: DE.rs1MAC, DE.vip), verdict: .drop(.notForUs)),
        ], driver)
        #expect(director.neighbours[DE.gw]?.mac == DE.gwMAC)
        #expect(director.neighbours[DE.rs1]?.mac == DE.rs1MAC)
        #expect(director.neighbours[IPv4Address(10, 0, 0, 66)]?.mac == MACAddress(0x02, 0, 0, 0, 0, 0x66))
        #expect(director.neighbours[IPv4Address(10, 0, 0, 78)] == nil)
        #expect(director.neighbours[DE.vip] == nil)
        #expect(director.counters.addressConflicts == 1)
        #expect(director.counters.arpRepliesSent == 5)
    }

    @Test func announcesEveryOwnedAddress() {
        let director = DE.director(.fullnat)
        var emitter = Emitter(slots: 8)
        director.announce(emit: &emitter)
        let frames = (0..<emitter.count).map { Array(emitter.frame(at: $0).bytes) }
        #expect(frames == [DE.lvs, DE.vip, DE.local].map { Self.directorRequest(for: $0, sender: $0) })
    }

    // MARK: Resolution

    /// The first packet towards an unknown real waits for ARP; the reply
    /// releases it exactly as it would have left.
    @Test func resolvesTheRealThenReleasesWhatWaited() {
        let director = DE.director(.dr)
        let driver = ElementDriver(director)
        let syn = DE.fromClient(DE.syn)
        let ack = DE.fromClient(DE.ack, seq: 1001, ack: 5001)
        func toRS1(_ p: P) -> [UInt8] { p.with { $0.srcMAC = DE.lvsMAC; $0.dstMAC = DE.rs1MAC; $0.ttl = 62 }.frame }
        DE.run([
            DE.Row(description: "SYN: rs1 unknown → held, ARP request out", input: syn.frame, verdict: .consumed,
                   emitted: [.init(port: PortID(0), frame: Self.directorRequest(for: DE.rs1))]),
            DE.Row(description: "ACK: held too, no second request", input: ack.frame, verdict: .consumed),
            DE.Row(description: "rs1 answers: both leave, in order, to its MAC",
                   input: DE.arp(.reply, from: DE.rs1MAC, DE.rs1, asking: DE.lvs, tha: DE.lvsMAC, ethDestination: DE.lvsMAC),
                   verdict: .consumed,
                   emitted: [.init(port: PortID(0), frame: toRS1(syn)), .init(port: PortID(0), frame: toRS1(ack))]),
            DE.Row(description: "then straight through", input: ack.frame, verdict: .forward(PortID(0)), output: toRS1(ack)),
        ], driver)
        #expect(director.counters.queuedForResolution == 2 && director.counters.releasedAfterResolution == 2)
    }

    /// A bounded queue; retries on the fine timer (`nextTimer`), 200 ms
    /// apart twice and then 1 s apart (`ARPCache.Configuration.forwarder`);
    /// after the fifth request what waited is dropped and counted.
    @Test func unresolvedNextHopQueueRetriesAndGivesUp() {
        let director = DE.director(.dr, reals: [RealServer(address: DE.rs1)]) { $0.arp.queuePerAddress = 2 }
        let driver = ElementDriver(director)
        let request = ElementDriver.Emitted(port: PortID(0), frame: Self.directorRequest(for: DE.rs1))
        #expect(driver.send(DE.fromClient(DE.syn).frame, on: PortID(0), at: .seconds(0)).emitted == [request])
        #expect(driver.send(DE.fromClient(DE.syn, sport: 2).frame, on: PortID(0), at: .seconds(0)).verdict == .consumed)
        #expect(driver.send(DE.fromClient(DE.syn, sport: 3).frame, on: PortID(0), at: .seconds(0)).verdict == .drop(.arpQueueFull))
        #expect(director.nextTimer == .seconds(0.2))
        #expect(driver.fireTimers(at: .seconds(0.1)) == [])
        #expect(driver.fireTimers(at: .seconds(0.2)) == [request])
        #expect(driver.fireTimers(at: .seconds(0.4)) == [request])
        #expect(director.nextTimer == .seconds(1.4))
        #expect(driver.fireTimers(at: .seconds(1.4)) == [request])
        #expect(driver.fireTimers(at: .seconds(2.4)) == [request])
        #expect(driver.fireTimers(at: .seconds(3.4)) == [])  // five requests in all: give up
        #expect(director.nextTimer == nil)
        #expect(director.drops.counts[.arpUnresolved] == 2)
        #expect(director.drops.counts[.arpQueueFull] == 1)
        #expect(director.counters.arpRequestsSent == 5)
    }

    /// Reals and gateways about to expire are re-probed (unicast) before
    /// they lapse, once per retry interval; other neighbours are not.
    @Test func nextHopsAreReprobedBeforeTheyExpire() {
        let director = DE.director(.dr)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver, at: 0)  // gw, rs1, rs2 until t = 60
        _ = driver.send(Self.request(for: DE.lvs, from: MACAddress(0x02, 0, 0, 0, 0, 0x44), IPv4Address(10, 0, 0, 44)),
                        on: PortID(0), at: .seconds(0))
        #expect(driver.tick(at: .seconds(54.9)) == [])
        let probes = driver.tick(at: .seconds(55))
        #expect(Set(probes.map(\.frame)) == Set([(DE.gw, DE.gwMAC), (DE.rs1, DE.rs1MAC), (DE.rs2, DE.rs2MAC)].map {
            Self.directorRequest(for: $0.0, to: $0.1)
        }))
        #expect(driver.tick(at: .seconds(55.5)) == [])
        #expect(driver.tick(at: .seconds(56)).count == 3)
        // rs1 answers: renewed until 116, no more probes for it.
        _ = driver.send(DE.arp(.reply, from: DE.rs1MAC, DE.rs1, asking: DE.lvs, tha: DE.lvsMAC, ethDestination: DE.lvsMAC),
                        on: PortID(0), at: .seconds(56.1))
        #expect(driver.tick(at: .seconds(57)).map(\.frame).contains(Self.directorRequest(for: DE.rs1, to: DE.rs1MAC)) == false)
        #expect(director.neighbours[DE.rs1]?.expires == Instant.seconds(56.1).adding(seconds: 60))
    }

    // MARK: ICMP echo

    @Test(arguments: [DE.vip, DE.lvs, DE.local])
    func echoRepliesForEveryOwnedAddress(_ address: IPv4Address) {
        let driver = ElementDriver(DE.director(.fullnat))
        let payload = Array("abcdefghijklmnopqrstuvwabcdefghi".utf8)
        let request = P(srcMAC: DE.gwMAC, dstMAC: DE.lvsMAC, src: DE.client, dst: address,
                        transport: .icmp(type: 8, rest: 0x0042_0007), payload: payload, ttl: 57, id: 0x4242, df: true)
        let reply = P(srcMAC: DE.lvsMAC, dstMAC: DE.gwMAC, src: address, dst: DE.client,
                      transport: .icmp(type: 0, rest: 0x0042_0007), payload: payload, ttl: 64, id: 0x4242, df: true)
        var corrupt = request.frame
        corrupt[corrupt.count - 1] ^= 0xff
        DE.run([
            DE.Row(description: "echo request to \(address)", input: request.frame, verdict: .forward(PortID(0)),
                   output: reply.frame),
            DE.Row(description: "bad ICMP checksum", input: corrupt, verdict: .drop(.malformed("bad-checksum"))),
        ], driver)
    }

    // MARK: ICMP errors

    /// A packet that would leave with TTL 0: Time Exceeded from the
    /// director's address, quoting it whole; no connection is made.
    @Test(arguments: [ForwardingMode.dr, .tun, .nat, .fullnat])
    func timeExceeded(_ mode: ForwardingMode) {
        let director = DE.director(mode)
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        let syn = DE.fromClient(DE.syn, ttl: 1)
        let icmp = P(srcMAC: DE.lvsMAC, dstMAC: DE.gwMAC, src: DE.lvs, dst: DE.client,
                     transport: .icmp(type: 11, code: 0), payload: syn.ipPacket, ttl: 64, id: 1, df: false, tos: 0xc0)
        DE.run([DE.Row(description: "\(mode) SYN with TTL 1", input: syn.frame, verdict: .drop(.ttlExpired),
                       emitted: [.init(port: PortID(0), frame: icmp.frame)])], driver)
        #expect(director.snapshot().entries == 0)
    }

    /// A NAT reply with TTL 1 gets Time Exceeded back to the real.
    @Test func timeExceededOnTheWayBack() {
        let driver = ElementDriver(DE.director(.nat))
        DE.learnNeighbours(driver)
        _ = driver.send(DE.fromClient(DE.syn).frame, on: PortID(0), at: .seconds(1))
        let reply = DE.tcp(DE.rs1MAC, DE.lvsMAC, DE.rs1, 80, DE.client, 40000, DE.syn | DE.ack, ttl: 1)
        let icmp = P(srcMAC: DE.lvsMAC, dstMAC: DE.rs1MAC, src: DE.lvs, dst: DE.rs1,
                     transport: .icmp(type: 11, code: 0), payload: reply.ipPacket, ttl: 64, id: 1, df: false, tos: 0xc0)
        DE.run([DE.Row(description: "reply with TTL 1", input: reply.frame, verdict: .drop(.ttlExpired),
                       emitted: [.init(port: PortID(0), frame: icmp.frame)])], driver)
    }

    /// A VIP port without a service: dropped; with `.portUnreachable`,
    /// also ICMP port unreachable from the VIP.
    @Test func unknownPortOfAVIP() {
        let quiet = ElementDriver(DE.director(.dr))
        DE.learnNeighbours(quiet)
        let syn = DE.fromClient(DE.syn, dport: 81)
        DE.run([DE.Row(description: "drop", input: syn.frame, verdict: .drop(Refusal.noService.dropReason))], quiet)

        let loud = ElementDriver(DE.director(.dr) { $0.unknownPort = .portUnreachable })
        DE.learnNeighbours(loud)
        let icmp = P(srcMAC: DE.lvsMAC, dstMAC: DE.gwMAC, src: DE.vip, dst: DE.client, transport: .icmp(type: 3, code: 3),
                     payload: syn.ipPacket, ttl: 64, id: 1, df: false, tos: 0xc0)
        DE.run([DE.Row(description: "port unreachable", input: syn.frame, verdict: .drop(Refusal.noService.dropReason),
                       emitted: [.init(port: PortID(0), frame: icmp.frame)])], loud)
    }

    /// ICMP errors come out of a token bucket.
    @Test func icmpErrorsAreRateLimited() {
        let director = DE.director(.dr) { $0.icmpErrorBurst = 2; $0.icmpErrorsPerSecond = 1 }
        let driver = ElementDriver(director)
        DE.learnNeighbours(driver)
        let counts = [1.0, 1.0, 1.0, 1.5, 2.0].enumerated().map { (i, t) in
            driver.send(DE.fromClient(DE.syn, sport: UInt16(1000 + i), ttl: 1).frame, on: PortID(0), at: .seconds(t)).emitted.count
        }
        #expect(counts == [1, 1, 0, 0, 1])
        #expect(director.counters.icmpErrorsRateLimited == 2)
        #expect(director.drops.counts[.ttlExpired] == 5)
    }

    /// An error towards a source whose next hop is not resolved waits for
    /// ARP like any frame.
    @Test func icmpErrorWaitsForARP() {
        let driver = ElementDriver(DE.director(.dr))
        let out = driver.send(DE.fromClient(DE.syn, ttl: 1).frame, on: PortID(0), at: .seconds(1))
        #expect(out.verdict == .drop(.ttlExpired))
        #expect(out.emitted == [.init(port: PortID(0), frame: Self.directorRequest(for: DE.gw))])
        let released = driver.send(DE.arp(.reply, from: DE.gwMAC, DE.gw, asking: DE.lvs, tha: DE.lvsMAC, ethDestination: DE.lvsMAC),
                                   on: PortID(0), at: .seconds(1.1)).emitted
        #expect(released.count == 1 && Array(released[0].frame[0..<6]) == DE.mac(DE.gwMAC))
        #expect(released.allSatisfy { DE.checksumProblem($0.frame) == nil })
    }

    /// DR and NAT with a smaller MTU on the way out than in: DF → frag-needed
    /// (MTU as is, nothing added); no DF → fragments.
    @Test func smallerEgressMTU() {
        let driver = ElementDriver(DE.director(.nat, mtu: 576))
        DE.learnNeighbours(driver)
        _ = driver.send(DE.fromClient(DE.syn).frame, on: PortID(0), at: .seconds(1))
        let big = DE.fromClient(DE.ack, seq: 1001, ack: 5001, payload: [UInt8](repeating: 7, count: 600))
        let out = driver.send(big.frame, on: PortID(0), at: .seconds(1))
        #expect(out.verdict == .drop(.fragmentationNeeded))
        #expect(out.emitted.count == 1 && out.emitted[0].frame[34] == 3 && out.emitted[0].frame[35] == 4)
        #expect(Array(out.emitted[0].frame[40..<42]) == [0x02, 0x40])  // next-hop MTU 576
        let loose = big.with { $0.df = false }
        let pieces = driver.send(loose.frame, on: PortID(0), at: .seconds(1))
        #expect(pieces.verdict == .consumed && pieces.emitted.count == 2)
        let translated = DE.tcp(DE.lvsMAC, DE.rs1MAC, DE.client, 40000, DE.rs1, 80, DE.ack, seq: 1001, ack: 5001, ttl: 62,
                                payload: big.payload).with { $0.df = false }.ipPacket
        // Reassembled, the fragments are the translated datagram.
        let f1 = pieces.emitted[0].frame, f2 = pieces.emitted[1].frame
        #expect(f1.count == 14 + 572 && f2.count == 14 + 20 + (640 - 20 - 552))
        #expect(Array(f1[34...]) + Array(f2[34...]) == Array(translated[20...]))
        #expect(Array(f1[20..<22]) == [0x20, 0x00] && Array(f2[20..<22]) == [0x00, UInt8(552 / 8)])
        #expect(pieces.emitted.allSatisfy { DE.checksumProblem($0.frame) == nil })
    }
}
