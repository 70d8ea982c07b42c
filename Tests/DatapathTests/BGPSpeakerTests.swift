// A router and three directors, each a BGPSpeaker, on a virtual clock:
// in-memory "TCP" (bytes delivered in order after 100 µs) and BFD packets
// through the codec. The directors announce the VIP; the router installs one
// ECMP group of three; a director dies (stops answering anything) and BFD
// takes its next hop out within 50 ms × 3, long before the 3 s hold time.
//
//   swift test --skip-build --filter BGPSpeaker

import Testing
import Wire
@testable import Datapath

struct SpeakerNetwork {
    static let router = IPv4Address(10, 0, 1, 254)
    static let vip = IPv4Prefix("10.0.0.100/32")!
    static func director(_ i: Int) -> IPv4Address { IPv4Address(10, 0, 1, UInt8(i)) }

    var nodes: [IPv4Address: BGPSpeaker] = [:]
    var dead: Set<IPv4Address> = []
    var now = Instant.zero
    /// (when, to, from, what)
    enum Delivery { case bgp(BGPEvent), bfd([UInt8]) }
    var queue: [(at: Instant, to: IPv4Address, from: IPv4Address, what: Delivery)] = []
    var fibLog: [(Instant, BGPFIBChange)] = []
    /// Static routes' groups as the router's speaker changed them (`.nextHops`).
    var nextHopsLog: [(Instant, IPv4Prefix, [IPv4Address])] = []
    let delay: UInt64 = 100_000

    init(bfd: Bool = true) {
        let directors = (1...3).map(Self.director)
        let neighbours = directors.map {
            BGPSessionConfiguration(localASN: 65000, routerID: Self.router, localAddress: Self.router, peerAddress: $0,
                                    peerASN: 65010, holdTime: 3, connectRetryTime: 1)
        }
        nodes[Self.router] = BGPSpeaker(neighbors: neighbours, multipath: 4, bfdPeers: bfd ? Set(directors) : [], jitterSeed: 1)
        for d in directors {
            let c = BGPSessionConfiguration(localASN: 65010, routerID: d, localAddress: d, peerAddress: Self.router,
                                            peerASN: 65000, holdTime: 3, passive: true)
            nodes[d] = BGPSpeaker(neighbors: [c], multipath: 1, bfdPeers: bfd ? [Self.router] : [], firstDiscriminator: 100, jitterSeed: 2)
        }
    }

    mutating func carry(_ actions: [BGPSpeaker.Action], from node: IPv4Address) {
        for action in actions {
            switch action {
            case .bgp(let peer, .connect):
                // The peer accepts if it is alive and waiting.
                if !dead.contains(peer), nodes[peer]?.sessions[node]?.acceptsConnection == true {
                    queue.append((now.adding(nanoseconds: delay), peer, node, .bgp(.tcpConnected)))
                    queue.append((now.adding(nanoseconds: delay), node, peer, .bgp(.tcpConnected)))
                }
            case .bgp(let peer, .send(let bytes)):
                queue.append((now.adding(nanoseconds: delay), peer, node, .bgp(.received(bytes))))
            case .bgp(let peer, .disconnect):
                queue.append((now.adding(nanoseconds: delay), peer, node, .bgp(.tcpFailed)))
            case .bfd(let peer, .send(let packet)):
                queue.append((now.adding(nanoseconds: delay), peer, node, .bfd(packet.encode())))
            case .fib(let change):
                if node == Self.router { fibLog.append((now, change)) }
            case .nextHops(let prefix, let gateways):
                if node == Self.router { nextHopsLog.append((now, prefix, gateways)) }
            default:
                break
            }
        }
    }

    mutating func run(until end: Instant) {
        while true {
            let alive = nodes.filter { !dead.contains($0.key) }
            let next = ([queue.map(\.at).min()] + alive.values.map(\.nextDeadline)).compactMap { $0 }.min()
            guard let next, next <= end else { break }
            now = next
            while let i = queue.firstIndex(where: { $0.at <= now }) {
                let d = queue.remove(at: i)
                guard !dead.contains(d.to), !dead.contains(d.from) else { continue }
                switch d.what {
                case .bgp(let event): carry(nodes[d.to]!.handle(event, peer: d.from, now: now), from: d.to)
                case .bfd(let bytes): carry(nodes[d.to]!.receive(try! BFDControlPacket.decode(bytes), from: d.from, now: now), from: d.to)
                }
            }
            for address in nodes.keys.sorted() where !dead.contains(address) {
                carry(nodes[address]!.advance(to: now), from: address)
            }
        }
        now = end
    }

    mutating func start() {
        for address in nodes.keys.sorted() { carry(nodes[address]!.start(now: now), from: address) }
        for i in 1...3 { carry(nodes[Self.director(i)]!.announce([Self.vip], now: now), from: Self.director(i)) }
    }
}

@Suite struct BGPSpeakerTests {
    @Test func bfdTakesADeadDirectorOutOfTheGroupWithinItsDetectionTime() {
        var net = SpeakerNetwork()
        net.start()
        net.run(until: .seconds(5))
        let all = (1...3).map(SpeakerNetwork.director)
        #expect(net.nodes[SpeakerNetwork.router]!.rib.fib[SpeakerNetwork.vip] == all)
        #expect(net.nodes[SpeakerNetwork.router]!.bfd.values.allSatisfy { $0.state == .up && $0.detectionTime == 150_000 })
        let death = net.now
        net.dead.insert(SpeakerNetwork.director(2))
        net.fibLog = []
        net.run(until: .seconds(5.5))
        guard let (at, change) = net.fibLog.first else { Issue.record("the group did not change"); return }
        #expect(change == BGPFIBChange(prefix: SpeakerNetwork.vip, nextHops: [SpeakerNetwork.director(1), SpeakerNetwork.director(3)]))
        let after = at.nanoseconds - death.nanoseconds
        #expect(after <= 150_000_000, "next hop left \(after) ns after the director died")
        #expect(net.nodes[SpeakerNetwork.router]!.sessions[SpeakerNetwork.director(2)]!.state != .established)
        // It comes back: BGP reconnects, the group grows again.
        net.dead.remove(SpeakerNetwork.director(2))
        net.run(until: .seconds(15))
        #expect(net.nodes[SpeakerNetwork.router]!.rib.fib[SpeakerNetwork.vip] == all)
    }

    @Test func withoutBFDTheHoldTimeDecides() {
        var net = SpeakerNetwork(bfd: false)
        net.start()
        net.run(until: .seconds(5))
        #expect(net.nodes[SpeakerNetwork.router]!.rib.fib[SpeakerNetwork.vip]?.count == 3)
        let death = net.now
        net.dead.insert(SpeakerNetwork.director(2))
        net.fibLog = []
        net.run(until: .seconds(10))
        guard let (at, _) = net.fibLog.first else { Issue.record("the group did not change"); return }
        let after = Double(at.nanoseconds - death.nanoseconds) / 1e9
        #expect(after > 2 && after <= 3, "next hop left \(after) s after the director died")
    }

    @Test func aDirectorWithdrawsItsVIP() {
        var net = SpeakerNetwork()
        net.start()
        net.run(until: .seconds(5))
        net.carry(net.nodes[SpeakerNetwork.director(3)]!.withdraw([SpeakerNetwork.vip], now: net.now), from: SpeakerNetwork.director(3))
        net.run(until: .seconds(5.01))
        #expect(net.nodes[SpeakerNetwork.router]!.rib.fib[SpeakerNetwork.vip] == [SpeakerNetwork.director(1), SpeakerNetwork.director(2)])
    }
}
