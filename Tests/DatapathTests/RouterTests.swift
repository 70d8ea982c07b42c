import Testing
import Wire
@testable import Datapath

// Shared fixtures for the Router*Tests files: one small topology, frame
// builders over the Wire Reprs (every checksum computed from scratch, so an
// expected frame is a full recomputation), and a Katran-style table runner.
//
//            client 192.0.2.10                         h1 10.0.0.1, h2 10.0.0.2
//   outside  192.0.2.0/24  ── port 0 ─┐            ┌─ port 1 ── 10.0.0.0/24 (MTU 1500)
//   (NAT public 192.0.2.100)          │   router   │           server 10.0.0.100 (NAT private)
//                                     └────────────┴─ port 2 ── 10.1.0.0/24 (MTU 1000), h3 10.1.0.2
//
// Static routes: 198.51.100.0/24 via h1, 198.51.100.128/25 via h3,
// 203.0.113.0/24 via h2 and h3 (ECMP). No default route.
enum Lab {
    static let r0 = MACAddress(0x02, 0, 0, 0, 1, 0)
    static let r1 = MACAddress(0x02, 0, 0, 0, 1, 1)
    static let r2 = MACAddress(0x02, 0, 0, 0, 1, 2)
    static let clientMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0c)
    static let h1MAC = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    static let h2MAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    static let h3MAC = MACAddress(0x02, 0, 0, 0, 0, 0x03)
    static let serverMAC = MACAddress(0x02, 0, 0, 0, 0, 0x64)

    static let r0IP = IPv4Address(192, 0, 2, 1)
    static let r1IP = IPv4Address(10, 0, 0, 254)
    static let r2IP = IPv4Address(10, 1, 0, 1)
    static let client = IPv4Address(192, 0, 2, 10)
    static let h1 = IPv4Address(10, 0, 0, 1)
    static let h2 = IPv4Address(10, 0, 0, 2)
    static let h3 = IPv4Address(10, 1, 0, 2)
    static let server = IPv4Address(10, 0, 0, 100)
    static let publicServer = IPv4Address(192, 0, 2, 100)
    static let viaH1 = IPv4Address(198, 51, 100, 7)
    static let viaH3 = IPv4Address(198, 51, 100, 200)
    static let ecmp = IPv4Address(203, 0, 113, 5)

    static func configuration(arp: ARPCache.Configuration = .init(), rateLimit: Router.Configuration.ICMPRateLimit? = nil,
                              seed: UInt32 = 0) -> Router.Configuration {
        Router.Configuration(
            interfaces: [
                .init(name: "eth0", mac: r0, addresses: [IPv4Prefix("192.0.2.1/24")!]),
                .init(name: "eth1", mac: r1, addresses: [IPv4Prefix("10.0.0.254/24")!]),
                .init(name: "eth2", mac: r2, addresses: [IPv4Prefix("10.1.0.1/24")!], mtu: 1000),
            ],
            routes: [
                .init(destination: IPv4Prefix("198.51.100.0/24")!, gateway: h1),
                .init(destination: IPv4Prefix("198.51.100.128/25")!, gateway: h3),
                .init(destination: IPv4Prefix("203.0.113.0/24")!, gateways: [h2, h3]),
            ],
            ecmpSeed: seed,
            nat: [.init(public: publicServer, private: server)],
            arp: arp,
            icmpRateLimit: rateLimit)
    }

    static func router(arp: ARPCache.Configuration = .init(), rateLimit: Router.Configuration.ICMPRateLimit? = nil,
                       seed: UInt32 = 0) -> Router {
        try! Router(configuration: configuration(arp: arp, rateLimit: rateLimit, seed: seed))
    }

    /// Teaches the router `ip` is at `mac` on `port` with an ARP reply
    /// addressed to it; the reply must be consumed and release nothing.
    static func resolve(_ driver: ElementDriver, _ ip: IPv4Address, _ mac: MACAddress, port: Int, at t: Double = 0) {
        let (routerMAC, routerIP) = [(r0, r0IP), (r1, r1IP), (r2, r2IP)][port]
        let out = driver.send(Frames.arp(.reply, from: mac, ip, to: routerMAC, routerIP), on: PortID(port), at: .seconds(t))
        #expect(out.verdict == .consumed)
    }

    /// A router with every neighbour resolved.
    static func resolvedDriver(_ router: Router = Lab.router()) -> ElementDriver {
        let driver = ElementDriver(router)
        resolve(driver, client, clientMAC, port: 0)
        resolve(driver, h1, h1MAC, port: 1)
        resolve(driver, h2, h2MAC, port: 1)
        resolve(driver, server, serverMAC, port: 1)
        resolve(driver, h3, h3MAC, port: 2)
        return driver
    }
}

/// Frame builders. Every length and checksum is computed from scratch.
enum Frames {
    static func ethernet(_ dst: MACAddress, _ src: MACAddress, _ type: EtherType, _ payload: [UInt8]) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 14) + payload
        frame.withUnsafeMutableBytes { EthernetRepr(destination: dst, source: src, etherType: type).emit(into: EthernetMutableHeader(unchecked: $0)) }
        return frame
    }

    static func arp(_ op: ARPOperation, from senderMAC: MACAddress, _ senderIP: IPv4Address,
                    to targetMAC: MACAddress, _ targetIP: IPv4Address,
                    ethernetDestination: MACAddress? = nil) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 28)
        body.withUnsafeMutableBytes {
            ARPRepr(operation: op, senderHardwareAddress: senderMAC, senderProtocolAddress: senderIP,
                    targetHardwareAddress: targetMAC, targetProtocolAddress: targetIP)
                .emit(into: ARPMutableHeader(unchecked: $0))
        }
        let dst = ethernetDestination ?? (op == .request ? .broadcast : targetMAC)
        return ethernet(dst, senderMAC, .arp, body)
    }

    /// The router's broadcast "who has `target`" on a port.
    static func arpRequest(from mac: MACAddress, _ ip: IPv4Address, for target: IPv4Address,
                           to dst: MACAddress = .broadcast) -> [UInt8] {
        arp(.request, from: mac, ip, to: .zero, target, ethernetDestination: dst)
    }

    struct IP {
        var source: IPv4Address
        var destination: IPv4Address
        var ttl: UInt8 = 64
        var identification: UInt16 = 0x1234
        var dontFragment = false
        var moreFragments = false
        var fragmentOffset = 0
        var options: [UInt8] = []
    }

    /// Ethernet + IPv4 around `l4` (already built, checksum included).
    static func ipv4(_ ip: IP, protocol proto: IPProtocol, _ l4: [UInt8],
                     dst: MACAddress, src: MACAddress, padTo: Int = 0) -> [UInt8] {
        let repr = IPv4Repr(sourceAddress: ip.source, destinationAddress: ip.destination, protocol: proto,
                            payloadLength: l4.count, timeToLive: ip.ttl, identification: ip.identification,
                            dontFragment: ip.dontFragment, moreFragments: ip.moreFragments,
                            fragmentOffset: ip.fragmentOffset, options: ip.options)
        var packet = [UInt8](repeating: 0, count: repr.headerLength) + l4
        packet.withUnsafeMutableBytes { repr.emit(into: IPv4MutableHeader(unchecked: $0)) }
        var frame = ethernet(dst, src, .ipv4, packet)
        if frame.count < padTo { frame += [UInt8](repeating: 0, count: padTo - frame.count) }
        return frame
    }

    /// A whole UDP datagram (header + payload) with its checksum.
    static func udpDatagram(_ source: IPv4Address, _ destination: IPv4Address, sport: UInt16, dport: UInt16,
                            payload: [UInt8], checksum: Bool = true) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 8) + payload
        d.withUnsafeMutableBytes {
            UDPRepr(sourcePort: sport, destinationPort: dport, payloadLength: payload.count)
                .emit(into: UDPMutableHeader(unchecked: $0),
                      pseudoHeader: checksum ? .ipv4(source: source, destination: destination) : nil)
        }
        return d
    }

    static func tcpSegment(_ source: IPv4Address, _ destination: IPv4Address, sport: UInt16, dport: UInt16,
                           flags: TCPFlags = .syn, payload: [UInt8] = []) -> [UInt8] {
        var s = [UInt8](repeating: 0, count: 20) + payload
        s.withUnsafeMutableBytes {
            TCPRepr(sourcePort: sport, destinationPort: dport, sequenceNumber: 0x0102_0304, flags: flags,
                    window: 64240, payloadLength: payload.count)
                .emit(into: TCPMutableHeader(unchecked: $0), pseudoHeader: .ipv4(source: source, destination: destination))
        }
        return s
    }

    static func icmp(_ message: ICMPv4Message, payload: [UInt8]) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: 8) + payload
        m.withUnsafeMutableBytes {
            ICMPv4Repr(message: message, payloadLength: payload.count).emit(into: ICMPv4MutableHeader(unchecked: $0))
        }
        return m
    }

    static func payload(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
    }

    static func udp(_ ip: IP, sport: UInt16 = 5000, dport: UInt16 = 53, payload: [UInt8] = Frames.payload(32),
                    dst: MACAddress, src: MACAddress, checksum: Bool = true) -> [UInt8] {
        ipv4(ip, protocol: .udp,
             udpDatagram(ip.source, ip.destination, sport: sport, dport: dport, payload: payload, checksum: checksum),
             dst: dst, src: src)
    }

    static func tcp(_ ip: IP, sport: UInt16 = 40000, dport: UInt16 = 80, flags: TCPFlags = .syn,
                    payload: [UInt8] = [], dst: MACAddress, src: MACAddress) -> [UInt8] {
        ipv4(ip, protocol: .tcp, tcpSegment(ip.source, ip.destination, sport: sport, dport: dport, flags: flags,
                                            payload: payload), dst: dst, src: src)
    }

    static func echo(_ ip: IP, request: Bool = true, id: UInt16 = 0x77, seq: UInt16 = 1,
                     payload: [UInt8] = Frames.payload(24), dst: MACAddress, src: MACAddress) -> [UInt8] {
        let message: ICMPv4Message = request ? .echoRequest(identifier: id, sequenceNumber: seq)
                                             : .echoReply(identifier: id, sequenceNumber: seq)
        return ipv4(ip, protocol: .icmp, icmp(message, payload: payload), dst: dst, src: src)
    }

    /// The ICMP error a router sends about `original` (a whole frame): from
    /// `routerIP`, quoting the IP header + 8 bytes, DF set, identification 0.
    static func icmpError(_ message: ICMPv4Message, about original: [UInt8], from routerIP: IPv4Address,
                          dst: MACAddress, src: MACAddress, quote: [UInt8]? = nil) -> [UInt8] {
        let ihl = Int(original[14] & 0x0F) * 4
        let total = Int(original[16]) << 8 | Int(original[17])
        let quoted = quote ?? Array(original[14 ..< 14 + min(ihl + 8, total)])
        let originalSource = IPv4Address(original[26], original[27], original[28], original[29])
        return ipv4(IP(source: routerIP, destination: originalSource, identification: 0, dontFragment: true),
                    protocol: .icmp, icmp(message, payload: quoted), dst: dst, src: src)
    }

    /// `frame` as a router forwards it: new MACs, TTL one less, header
    /// checksum recomputed from scratch (not incrementally).
    static func forwarded(_ frame: [UInt8], dst: MACAddress, src: MACAddress) -> [UInt8] {
        var out = frame
        out.withUnsafeMutableBytes { b in
            let e = EthernetMutableHeader(unchecked: b)
            e.destination = dst
            e.source = src
            let ip = IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
            ip.timeToLive -= 1
            ip.headerChecksum = 0
            ip.fillChecksum()
        }
        return out
    }

    /// True if every checksum in an Ethernet/IPv4 frame verifies when
    /// recomputed from scratch: the IP header's, and the TCP/UDP/ICMP one of
    /// an unfragmented packet.
    static func checksumsValid(_ frame: [UInt8]) -> Bool {
        frame.withUnsafeBytes { b in
            guard let ip = try? IPv4Header(validating: UnsafeRawBufferPointer(rebasing: b[14...])),
                  ip.isChecksumValid else { return false }
            guard !ip.isFragment else { return true }
            let l4 = ip.payload
            switch ip.protocol {
            case .udp:
                guard let u = try? UDPHeader(validating: l4) else { return false }
                return u.checksum == 0 || u.isChecksumValid(pseudoHeader: ip.pseudoHeader)
            case .tcp:
                guard let t = try? TCPHeader(validating: l4) else { return false }
                return t.isChecksumValid(pseudoHeader: ip.pseudoHeader)
            case .icmp:
                guard let i = try? ICMPv4Header(validating: l4) else { return false }
                return i.isChecksumValid
            default:
                return true
            }
        }
    }
}

/// One row of a router table test: a frame in, the verdict, the frame out
/// (for forwards), and every frame emitted, all compared byte for byte.
struct RouterRow {
    var description: String
    var frame: [UInt8]
    var port: Int
    var at: Double = 1
    var verdict: Verdict
    /// The frame as it must leave (`.forward` rows); nil = unchanged.
    var output: [UInt8]? = nil
    var emitted: [ElementDriver.Emitted] = []

    static func run(_ rows: [RouterRow], _ driver: ElementDriver, sourceLocation: SourceLocation = #_sourceLocation) {
        for row in rows {
            let out = driver.send(row.frame, on: PortID(row.port), at: .seconds(row.at))
            #expect(out.verdict == row.verdict, "\(row.description)", sourceLocation: sourceLocation)
            if case .forward = row.verdict {
                let d = frameDiff(out.frame, row.output ?? row.frame)
                #expect(d.isEmpty, "\(row.description): frame out differs: \(d)", sourceLocation: sourceLocation)
            }
            #expect(out.emitted.count == row.emitted.count, "\(row.description): emitted \(out.emitted)",
                    sourceLocation: sourceLocation)
            for (got, want) in zip(out.emitted, row.emitted) {
                #expect(got.port == want.port, "\(row.description): emitted on \(got.port)", sourceLocation: sourceLocation)
                let d = frameDiff(got.frame, want.frame)
                #expect(d.isEmpty, "\(row.description): emitted frame differs: \(d)", sourceLocation: sourceLocation)
            }
        }
    }
}

/// Where two frames differ ("" when equal): the lengths if they differ,
/// and the first differing offsets as "offset: got/want" in hex.
func frameDiff(_ got: [UInt8], _ want: [UInt8]) -> String {
    func hex(_ b: UInt8) -> String { b < 16 ? "0" + String(b, radix: 16) : String(b, radix: 16) }
    var parts: [String] = []
    if got.count != want.count { parts.append("length \(got.count), want \(want.count)") }
    let offsets = (0 ..< min(got.count, want.count)).filter { got[$0] != want[$0] }
    parts += offsets.prefix(8).map { "\($0): \(hex(got[$0]))/\(hex(want[$0]))" }
    if offsets.count > 8 { parts.append("… \(offsets.count) bytes in all") }
    return parts.joined(separator: ", ")
}

func emitted(_ port: Int, _ frame: [UInt8]) -> ElementDriver.Emitted { .init(port: PortID(port), frame: frame) }

// MARK: Configuration and FIB

@Suite struct RouterConfigurationTests {
    typealias C = Router.Configuration
    static let eth0 = C.Interface(name: "eth0", mac: Lab.r0, addresses: [IPv4Prefix("192.0.2.1/24")!])
    static let eth1 = C.Interface(name: "eth1", mac: Lab.r1, addresses: [IPv4Prefix("10.0.0.254/24")!])

    static func error(_ c: C) -> Router.ConfigurationError? {
        do {
            _ = try Router(configuration: c)
            return nil
        } catch {
            return error
        }
    }

    @Test func refusesWhatCannotWork() {
        let a = IPv4Prefix("10.0.0.0/24")!
        let rows: [(String, C, Router.ConfigurationError)] = [
            ("no interfaces", C(interfaces: []), .noInterfaces),
            ("MTU below 68", C(interfaces: [.init(name: "eth0", mac: Lab.r0, addresses: [], mtu: 67)]),
             .badMTU(interface: "eth0", mtu: 67)),
            ("multicast MAC", C(interfaces: [.init(name: "eth0", mac: MACAddress(0x01, 0, 0x5e, 0, 0, 1), addresses: [])]),
             .badMAC(interface: "eth0", mac: MACAddress(0x01, 0, 0x5e, 0, 0, 1))),
            ("address twice", C(interfaces: [Self.eth0, .init(name: "eth1", mac: Lab.r1, addresses: [IPv4Prefix("192.0.2.1/30")!])]),
             .duplicateAddress(Lab.r0IP)),
            ("gateway off-link", C(interfaces: [Self.eth0], routes: [.init(destination: a, gateway: Lab.h1)]),
             .gatewayNotOnLink(route: a, gateway: Lab.h1)),
            ("gateway is us", C(interfaces: [Self.eth0], routes: [.init(destination: a, gateway: Lab.r0IP)]),
             .gatewayIsLocal(route: a, gateway: Lab.r0IP)),
            ("no gateway", C(interfaces: [Self.eth0], routes: [.init(destination: a, gateways: [])]),
             .routeWithoutGateway(a)),
            ("route twice", C(interfaces: [Self.eth0], routes: [.init(destination: a, gateway: Lab.client),
                                                                .init(destination: a, gateway: Lab.client)]),
             .duplicateRoute(a)),
            ("route repeats a connected subnet", C(interfaces: [Self.eth0, Self.eth1],
                                                    routes: [.init(destination: a, gateway: Lab.client)]),
             .duplicateRoute(a)),
            ("NAT on our address", C(interfaces: [Self.eth0], nat: [.init(public: Lab.r0IP, private: Lab.server)]),
             .natAddressIsLocal(Lab.r0IP)),
            ("NAT not 1:1", C(interfaces: [Self.eth0], nat: [.init(public: Lab.publicServer, private: Lab.server),
                                                             .init(public: Lab.publicServer, private: Lab.h1)]),
             .duplicateNAT(Lab.publicServer)),
            ("rate limit of 0", C(interfaces: [Self.eth0], icmpRateLimit: .init(perSecond: 0, burst: 1)), .badICMPRateLimit),
        ]
        for (description, configuration, expected) in rows {
            let error = Self.error(configuration)
            #expect(error == expected, "\(description)")
            let text = error.map(\.description) ?? ""
            #expect(!text.isEmpty)
        }
        #expect(Self.error(Lab.configuration()) == nil)
    }

    @Test func errorsSayWhatWouldBeRight() {
        let e = Router.ConfigurationError.gatewayNotOnLink(route: IPv4Prefix("0.0.0.0/0")!, gateway: Lab.h1)
        #expect(e.description == "route to 0.0.0.0/0: gateway 10.0.0.1 is not inside any interface's subnet; use an address on a connected link")
    }

    @Test func fibHoldsLocalConnectedBroadcastAndStaticRoutes() {
        let router = Lab.router()
        #expect(router.portCount == 3)
        let fib = router.fib
        #expect(fib.route(for: Lab.r1IP)?.kind == .local)
        #expect(fib.route(for: IPv4Address(10, 0, 0, 255))?.kind == .broadcast)
        #expect(fib.route(for: IPv4Address(10, 0, 0, 77))?.kind == .connected(PortID(1)))
        #expect(fib.route(for: Lab.viaH1)?.kind == .via([.init(gateway: Lab.h1, port: PortID(1))]))
        #expect(fib.route(for: Lab.viaH3)?.kind == .via([.init(gateway: Lab.h3, port: PortID(2))]))
        #expect(fib.route(for: Lab.ecmp)?.nextHops.map(\.port) == [PortID(1), PortID(2)])
        #expect(fib.lookup(IPv4Address(8, 8, 8, 8)) == nil)
        #expect(fib.entries.first?.destination.length == 32)
    }
}

@Suite struct RouterFIBTests {
    static func table(_ routes: [(String, Int)]) -> RoutingTable {
        var t = RoutingTable()
        for (prefix, port) in routes { t.insert(.connected(IPv4Prefix(prefix)!, port: PortID(port))) }
        return t
    }

    @Test func longestPrefixWins() {
        let t = Self.table([("0.0.0.0/0", 0), ("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("10.1.2.0/24", 3), ("10.1.2.3/32", 4)])
        let rows: [(String, Int?)] = [
            ("8.8.8.8", 0), ("10.9.9.9", 1), ("10.1.9.9", 2), ("10.1.2.9", 3), ("10.1.2.3", 4), ("10.1.2.4", 3),
        ]
        for (address, port) in rows {
            #expect(t.lookup(IPv4Address(address)!)?.port.rawValue == port, "\(address)")
        }
        var u = t
        u.remove(IPv4Prefix("10.1.0.0/16")!)
        u.remove(IPv4Prefix("0.0.0.0/0")!)
        #expect(u.lookup(IPv4Address(10, 1, 9, 9))?.port == PortID(1))
        #expect(u.lookup(IPv4Address(8, 8, 8, 8)) == nil)
        #expect(u.lengths == [32, 24, 8])
    }

    @Test func insertReplacesAndCanonicalises() {
        var t = RoutingTable()
        t.insert(.connected(IPv4Prefix("10.1.2.3/24")!, port: PortID(1)))
        t.insert(.connected(IPv4Prefix("10.1.2.0/24")!, port: PortID(2)))
        #expect(t.entries.count == 1)
        #expect(t.lookup(IPv4Address(10, 1, 2, 200))?.port == PortID(2))
    }

    @Test func hashThresholdSpreadsAndKeepsEachHashOnOneHop() {
        var t = RoutingTable()
        let hops = (0..<4).map { RouteEntry.NextHop(gateway: IPv4Address(10, 0, 0, UInt8($0 + 1)), port: PortID($0)) }
        t.insert(.via(IPv4Prefix("0.0.0.0/0")!, hops))
        let m = t.lookup(IPv4Address(1, 2, 3, 4))!
        #expect(m.nextHopCount == 4)
        #expect(t.nextHop(m, hash: 0).port == PortID(0))
        #expect(t.nextHop(m, hash: UInt32.max).port == PortID(3))
        #expect(t.nextHop(m, hash: 0x4000_0000).port == PortID(1))
        #expect(t.nextHop(m, hash: 0xBFFF_FFFF).port == PortID(2))
    }

    @Test func downLinksLeaveTheTable() {
        var t = RoutingTable()
        t.insert(.connected(IPv4Prefix("10.0.0.0/24")!, port: PortID(1)))
        t.insert(.via(IPv4Prefix("0.0.0.0/0")!, [.init(gateway: IPv4Address(10, 0, 0, 1), port: PortID(1)),
                                                .init(gateway: IPv4Address(10, 1, 0, 1), port: PortID(2))]))
        t.insert(.via(IPv4Prefix("172.16.0.0/12")!, [.init(gateway: IPv4Address(10, 1, 0, 1), port: PortID(2))]))
        t.setLink(PortID(2), up: false)
        #expect(t.lookup(IPv4Address(8, 8, 8, 8))?.nextHopCount == 1)
        #expect(t.lookup(IPv4Address(172, 16, 0, 1))?.prefixLength == 0, "falls back to the default route")
        t.setLink(PortID(1), up: false)
        #expect(t.lookup(IPv4Address(10, 0, 0, 5)) == nil)
        t.setLink(PortID(1), up: true)
        t.setLink(PortID(2), up: true)
        #expect(t.lookup(IPv4Address(8, 8, 8, 8))?.nextHopCount == 2)
        #expect(t.lookup(IPv4Address(172, 16, 0, 1))?.prefixLength == 12)
    }
}

@Suite struct RouterAddressMapTests {
    @Test func behavesLikeADictionaryThroughInsertsUpdatesAndRemovals() {
        var rng = SeededRandom(seed: 7)
        var map = AddressMap<Int>()
        var model: [UInt32: Int] = [:]
        // Keys from a small range so probes collide, wrap and shift a lot.
        for step in 0..<20000 {
            let key = UInt32.random(in: 0..<300, using: &rng) &* (step % 3 == 0 ? 1 : 0x0100_0001)
            if Int.random(in: 0..<3, using: &rng) == 0 {
                #expect(map.remove(key) == model.removeValue(forKey: key))
            } else {
                map[key] = step
                model[key] = step
            }
            if step % 997 == 0 {
                #expect(map.count == model.count)
                for (k, v) in model { #expect(map[k] == v) }
            }
        }
        var seen: [UInt32: Int] = [:]
        map.forEach { seen[$0] = $1 }
        #expect(seen == model)
        #expect(map.capacity >= 2 * map.count)
        let removed = map.removeAll { key, _ in key % 2 == 0 }
        #expect(removed == model.keys.filter { $0 % 2 == 0 }.count)
        for (k, v) in model { #expect(map[k] == (k % 2 == 0 ? nil : v)) }
    }

    @Test func updatesInPlace() {
        var map = AddressMap<Int>()
        map[5] = 1
        #expect(map.update(5) { $0 += 41 })
        #expect(!map.update(6) { $0 += 1 })
        #expect(map[5] == 42 && map[6] == nil)
    }
}

@Suite struct RouterSmallCasesTests {
    @Test func slash32InterfaceIsLocalOnly() throws {
        let router = try Router(configuration: .init(interfaces: [
            .init(name: "lo0", mac: Lab.r0, addresses: [IPv4Prefix("192.0.2.1/32")!]),
            .init(name: "eth1", mac: Lab.r1, addresses: [IPv4Prefix("10.0.0.254/24")!]),
        ], icmpRateLimit: nil))
        #expect(router.fib.route(for: Lab.r0IP)?.kind == .local)
        #expect(router.fib.entries.filter { $0.isConnected }.count == 1)
    }

    @Test func arpTableFullStopsLearningAndCounts() {
        let router = Lab.router(arp: .init(maxEntries: 2))
        let driver = ElementDriver(router)
        for i in 1...3 {
            let ip = IPv4Address(10, 0, 0, UInt8(i + 10))
            _ = driver.send(Frames.arp(.reply, from: MACAddress(0x02, 0, 0, 0, 0, UInt8(i)), ip, to: Lab.r1, Lab.r1IP),
                            on: PortID(1), at: .seconds(1))
        }
        #expect(router.arp.entries.count == 2)
        #expect(router.arp.counters.tableFull == 1)
        #expect(router.arp.counters.learned == 2)
    }
}
