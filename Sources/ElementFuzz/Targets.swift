import FuzzSupport
import Datapath
import Lab
import Wire

// The elements under test, each with a configuration whose limits are
// small enough for a fuzz run to hit them (a MAC table of 64, an ARP cache
// of 16 with 8 addresses pending, a connection table of 256, 64 FULLNAT
// ports per local address), the addresses that reach into it, and how it
// explains its verdicts from its counters.

func ip(_ s: String) -> IPv4Address { IPv4Address(s)! }
func prefix(_ s: String) -> IPv4Prefix { IPv4Prefix(s)! }
func mac(_ last: UInt8, _ group: UInt8 = 0) -> MACAddress { MACAddress(2, 0, 0, 0xAA, group, last) }

/// Addresses every book has: the ones an element must refuse.
let oddAddresses: [IPv4Address] = [ip("0.0.0.0"), ip("255.255.255.255"), ip("127.0.0.1"), ip("224.0.0.5"),
                                   ip("240.0.0.1"), ip("200.1.1.1"), ip("8.8.8.8")]

/// The small neighbour cache every IPv4 element gets here.
let smallARP = ARPCache.Configuration(entryLifetime: 20, retryInterval: 0.5, maxRetries: 3, queuePerAddress: 4,
                                      maxPendingAddresses: 8, maxEntries: 16, refreshLead: 5)

func arpLimits(_ arp: ARPCache, _ c: ARPCache.Configuration) -> String? {
    if arp.count > c.maxEntries { return "ARP cache holds \(arp.count) entries, limit \(c.maxEntries)" }
    if arp.pending.count > c.maxPendingAddresses {
        return "ARP cache resolves \(arp.pending.count) addresses at once, limit \(c.maxPendingAddresses)"
    }
    return nil
}

func arpDeep(_ arp: ARPCache, _ c: ARPCache.Configuration) -> String? {
    for (address, waiting) in arp.pending where waiting.frames.count > c.queuePerAddress {
        return "ARP queue for \(address) holds \(waiting.frames.count) frames, limit \(c.queuePerAddress)"
    }
    return nil
}

func arpSummary(_ arp: ARPCache, _ c: ARPCache.Configuration, highWater: Int, pendingHighWater: Int) -> String {
    let k = arp.counters
    return "ARP cache: \(arp.count) of \(c.maxEntries) entries (most \(highWater)), pending addresses most "
        + "\(pendingHighWater) of \(c.maxPendingAddresses); held frames: \(k.framesQueued) queued = "
        + "\(k.framesReleased) released + \(k.framesDiscarded) discarded + \(arp.queuedFrames) held; "
        + "learned \(k.learned), table full \(k.tableFull), gave up \(k.gaveUp)"
}


/// A TCP segment (flags a connection's life would have: SYN most, then ACK,
/// data, FIN, RST), a UDP datagram or an ICMP echo request, in an Ethernet frame.
func typicalPacket(_ rng: inout Xoshiro, from source: IPv4Address, _ sourcePort: UInt16, to destination: IPv4Address,
                   _ destinationPort: UInt16, proto: UInt8, destinationMAC: MACAddress, sourceMAC: MACAddress) -> [UInt8] {
    let ttl: UInt8 = rng.percent(95) ? 64 : 1
    let l4: [UInt8]
    switch proto {
    case 6:
        let flags: UInt8 = rng.pick([0x02, 0x02, 0x02, 0x10, 0x18, 0x11, 0x04, 0x14, 0x12])
        let data: [UInt8] = flags == 0x18 ? Array("GET / HTTP/1.1\r\nHost: vip\r\n\r\n".utf8) : []
        l4 = Frames.tcp(sourcePort, destinationPort, flags: flags, sequence: UInt32(truncatingIfNeeded: rng.next()),
                        acknowledgment: UInt32(truncatingIfNeeded: rng.next()), payload: data, mss: flags == 0x02)
    case 17:
        l4 = Frames.udp(sourcePort, destinationPort, payload: Array("query".utf8))
    default:
        l4 = Frames.icmp(type: 8, code: 0, rest: UInt32(truncatingIfNeeded: rng.next()), [UInt8](repeating: 0x61, count: rng.pick([8, 56])))
    }
    var f = Frames.ethernet(destinationMAC, sourceMAC, type: 0x0800,
                            Frames.ipv4(source, destination, proto: proto, l4, ttl: ttl, dontFragment: rng.oneIn(2),
                                        identification: rng.u16()))
    f.withUnsafeMutableBytes { Frames.fixChecksums($0) }
    return f
}

/// One of `count` clients in `base`/16 (so flows repeat and tables fill).
func client(_ rng: inout Xoshiro, _ base: IPv4Address, count: Int) -> IPv4Address {
    IPv4Address(rawValue: base.rawValue &+ UInt32(1 + rng.below(count)))
}

// MARK: - Switch

final class SwitchTarget: RunnerTarget<LearningSwitch>, FuzzTarget {
    let name = "switch"
    let book: AddressBook
    var tableHighWater = 0

    init() {
        book = AddressBook(portMACs: [],
                           neighbourMACs: (1...100).map { mac($0) } + [.broadcast, MACAddress(1, 0, 0x5E, 0, 0, 1), .zero,
                                                                      MACAddress(0x33, 0x33, 0, 0, 0, 1)],
                           addresses: [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")] + oddAddresses, ports: [80, 53])
        super.init(LearningSwitch(ports: 4, configuration: .init(agingTime: 30, maxEntries: 64)))
    }

    func seeds() -> [[UInt8]] {
        let payload = Frames.ipv4(ip("10.0.0.1"), ip("10.0.0.2"), proto: 17, Frames.udp(4000, 53))
        return [Frames.ethernet(mac(2), mac(1), type: 0x0800, payload),
                Frames.ethernet(.broadcast, mac(3), type: 0x0806,
                                Frames.arp(operation: 1, senderMAC: mac(3), senderIP: ip("10.0.0.3"), targetMAC: .zero,
                                           targetIP: ip("10.0.0.1")))]
    }

    func typical(_ rng: inout Xoshiro, port: inout Int) -> [UInt8]? { nil }

    let mayFlood = true
    let forwardsUnchanged = true
    let buildsEverything = false
    func mtu(_ port: Int) -> Int? { nil }
    func maxFrame(_ port: Int) -> Int { 9018 }

    func poke(_ rng: inout Xoshiro, now: Instant, ports: inout FuzzPorts) -> String {
        let port = rng.below(portCount)
        element.flush(port: PortID(port))
        return "flush port \(port)"
    }

    func ledger() -> Ledger {
        var l = runnerLedger()
        l.forwarded = element.counters.forwarded
        l.flooded = element.counters.flooded
        return l
    }

    func explain(_ verdict: Verdict, _ b: Ledger, _ a: Ledger, frame: UnsafeRawBufferPointer) -> (consumed: String?, violation: String?) {
        switch verdict {
        case .forward:
            if a.forwarded != b.forwarded + 1 { return (nil, "forwarded a frame without counting it as forwarded") }
        case .flood:
            if a.flooded != b.flooded + 1 { return (nil, "flooded a frame without counting it as flooded") }
        case .consumed:
            return (nil, "consumed a frame (a switch forwards, floods or drops)")
        case .drop:
            break
        }
        return (nil, nil)
    }

    func checkLimits() -> String? {
        let n = element.table.count
        tableHighWater = max(tableHighWater, n)
        return n > element.configuration.maxEntries ? "MAC table holds \(n) entries, limit \(element.configuration.maxEntries)" : nil
    }

    func checkDeep(now: Instant) -> String? {
        let entries = element.table.entries
        if entries.count != element.table.count { return "MAC table counts \(element.table.count) entries but holds \(entries.count)" }
        if let bad = entries.first(where: { $0.entry.port.rawValue >= portCount || $0.entry.port.rawValue < 0 }) {
            return "MAC table maps \(bad.mac) to \(bad.entry.port), which the switch does not have"
        }
        if let bad = entries.first(where: { $0.mac.isMulticast }) { return "MAC table learned multicast \(bad.mac)" }
        return nil
    }

    func checkDrained(now: Instant) -> String? {
        element.table.count == 0 ? nil : "MAC table still holds \(element.table.count) entries after the aging time"
    }

    func summary() -> [String] {
        let c = element.counters
        return ["MAC table: \(element.table.count) of \(element.configuration.maxEntries) entries (most \(tableHighWater)); "
            + "learned \(c.learned), moved \(c.moved), aged \(c.aged), not learned (table full) \(c.tableFull)"]
    }
}

// MARK: - Router (ECMP and static NAT)

final class RouterTarget: RunnerTarget<Router>, FuzzTarget {
    let name = "router"
    let book: AddressBook
    let configuration: Router.Configuration
    var arpHighWater = 0, pendingHighWater = 0
    var down: Set<Int> = []

    init() {
        let interfaces = [
            PortConfiguration(name: "eth0", mac: mac(1, 0xF0), addresses: [prefix("123.123.123.1/24")]),
            PortConfiguration(name: "eth1", mac: mac(2, 0xF0), addresses: [prefix("10.0.0.254/24")]),
            PortConfiguration(name: "eth2", mac: mac(3, 0xF0), addresses: [prefix("10.0.1.254/24"), prefix("10.0.9.1/30")],
                              mtu: 576),
        ]
        configuration = Router.Configuration(
            interfaces: interfaces,
            routes: [.init(destination: prefix("10.0.0.100/32"), gateways: [ip("10.0.1.1"), ip("10.0.1.2")]),
                     .init(destination: prefix("64.0.0.0/2"), gateways: [ip("123.123.123.254"), ip("123.123.123.253")]),
                     .init(destination: prefix("172.16.0.0/12"), gateway: ip("10.0.0.1"))],
            ecmpSeed: 7,
            nat: [.init(public: ip("110.242.68.3"), private: ip("10.0.0.100")),
                  .init(public: ip("123.123.123.50"), private: ip("10.0.0.50"))],
            arp: smallARP, icmpRateLimit: .linux)
        let element = try! Router(configuration: configuration)
        book = AddressBook(
            portMACs: interfaces.map(\.mac), neighbourMACs: (1...12).map { mac($0) },
            addresses: ["123.123.123.1", "10.0.0.254", "10.0.1.254", "10.0.9.1", "110.242.68.3", "10.0.0.100",
                        "123.123.123.50", "10.0.0.50", "10.0.1.1", "10.0.1.2", "10.0.1.3", "123.123.123.254",
                        "123.123.123.253", "123.123.123.123", "10.0.0.1", "10.0.0.3", "10.0.9.2", "100.1.2.3",
                        "172.16.5.5", "10.0.0.255", "123.123.123.255", "10.0.9.3"].map(ip) + oddAddresses,
            ports: [80, 53, 443, 33434, 0, 65535])
        super.init(element)
    }

    func seeds() -> [[UInt8]] {
        let toVIP = Frames.ipv4(ip("123.123.123.123"), ip("110.242.68.3"), proto: 6, Frames.tcp(40000, 80, flags: 0x02, mss: true))
        let fromInside = Frames.ipv4(ip("10.0.0.100"), ip("123.123.123.123"), proto: 6, Frames.tcp(80, 40000, flags: 0x12))
        let ping = Frames.ipv4(ip("10.0.0.1"), ip("10.0.0.254"), proto: 1, Frames.icmp(type: 8, code: 0, rest: 0x0001_0001,
                                                                                      [UInt8](repeating: 0x61, count: 32)))
        let big = Frames.ipv4(ip("123.123.123.123"), ip("10.0.1.3"), proto: 17, Frames.udp(5000, 53, payload: [UInt8](repeating: 7, count: 1200)))
        var out = [Frames.ethernet(mac(1, 0xF0), mac(9), type: 0x0800, toVIP),
                   Frames.ethernet(mac(2, 0xF0), mac(8), type: 0x0800, fromInside),
                   Frames.ethernet(mac(2, 0xF0), mac(7), type: 0x0800, ping),
                   Frames.ethernet(mac(1, 0xF0), mac(9), type: 0x0800, big),
                   Frames.ethernet(.broadcast, mac(6), type: 0x0806,
                                   Frames.arp(operation: 1, senderMAC: mac(6), senderIP: ip("10.0.1.1"), targetMAC: .zero,
                                              targetIP: ip("10.0.1.254")))]
        for i in out.indices { out[i].withUnsafeMutableBytes { Frames.fixChecksums($0) } }
        return out
    }

    /// Through the NAT both ways, along the ECMP routes, to hosts on every link.
    func typical(_ rng: inout Xoshiro, port: inout Int) -> [UInt8]? {
        port = rng.below(3)
        let proto: UInt8 = rng.pick([6, 6, 17, 1])
        let (s, d): (IPv4Address, IPv4Address)
        switch port {
        case 0:
            s = rng.oneIn(4) ? IPv4Address(rawValue: 0x4000_0000 | UInt32(truncatingIfNeeded: rng.next()) & 0x3FFF_FFFF)
                : client(&rng, ip("123.123.123.0"), count: 250)
            d = rng.pick([ip("110.242.68.3"), ip("110.242.68.3"), ip("123.123.123.50"), ip("10.0.0.100"),
                          client(&rng, ip("10.0.0.0"), count: 40), client(&rng, ip("10.0.1.0"), count: 20), ip("172.16.5.5")])
        case 1:
            s = rng.pick([ip("10.0.0.100"), ip("10.0.0.50"), client(&rng, ip("10.0.0.0"), count: 40)])
            d = rng.oneIn(3) ? IPv4Address(rawValue: 0x4000_0000 | UInt32(truncatingIfNeeded: rng.next()) & 0x3FFF_FFFF)
                : client(&rng, ip("123.123.123.0"), count: 250)
        default:
            s = client(&rng, ip("10.0.1.0"), count: 20)
            d = rng.pick([client(&rng, ip("123.123.123.0"), count: 250), client(&rng, ip("10.0.0.0"), count: 40),
                          ip("110.242.68.3"), ip("10.0.9.2")])
        }
        return typicalPacket(&rng, from: s, UInt16(1024 + rng.below(200)), to: d, rng.pick([80, 53, 443]), proto: proto,
                             destinationMAC: book.portMACs[port], sourceMAC: rng.pick(book.neighbourMACs))
    }

    let mayFlood = false
    let forwardsUnchanged = false
    let buildsEverything = false
    func mtu(_ port: Int) -> Int? { configuration.interfaces[port].mtu }
    func maxFrame(_ port: Int) -> Int { max(configuration.interfaces[port].mtu + 18, 1518) }

    func poke(_ rng: inout Xoshiro, now: Instant, ports: inout FuzzPorts) -> String {
        let port = rng.below(portCount)
        let up = down.contains(port)
        element.setLink(PortID(port), up: up)
        if up { down.remove(port) } else { down.insert(port) }
        return "link \(port) \(up ? "up" : "down")"
    }

    func ledger() -> Ledger {
        var l = runnerLedger()
        l.readARP(element.arp)
        l.releasedSent = element.counters.arpReleased
        l.forwarded = element.counters.forwarded &+ element.counters.echoReplies
        l.fragmented = element.counters.fragmentsSent
        return l
    }

    func explain(_ verdict: Verdict, _ b: Ledger, _ a: Ledger, frame: UnsafeRawBufferPointer) -> (consumed: String?, violation: String?) {
        switch verdict {
        case .forward:
            if a.forwarded != b.forwarded + 1 { return (nil, "forwarded a frame without counting it (forwarded or echo reply)") }
        case .consumed:
            if a.queued == b.queued + 1 { return ("queued for ARP", nil) }
            if a.fragmented > b.fragmented { return ("sent as fragments", nil) }
            if frame.count >= 14 && frame.wireU16(12) == 0x0806 { return ("ARP", nil) }
            return (nil, "consumed a frame without queueing, fragmenting or learning from it")
        default:
            break
        }
        return (nil, nil)
    }

    func checkLimits() -> String? {
        arpHighWater = max(arpHighWater, element.arp.count)
        pendingHighWater = max(pendingHighWater, element.arp.pending.count)
        return arpLimits(element.arp, configuration.arp)
    }

    func checkDeep(now: Instant) -> String? { arpDeep(element.arp, configuration.arp) }

    func checkDrained(now: Instant) -> String? {
        if !element.arp.pending.isEmpty { return "ARP still resolves \(element.arp.pending.count) addresses after every retry" }
        if element.arp.count != 0 { return "ARP cache still holds \(element.arp.count) entries after their lifetime" }
        return nil
    }

    func summary() -> [String] {
        let c = element.counters
        return [arpSummary(element.arp, configuration.arp, highWater: arpHighWater, pendingHighWater: pendingHighWater),
                "forwarded \(c.forwarded) (released from ARP \(c.arpReleased)), echo replies \(c.echoReplies), "
                    + "NAT in \(c.natIn) out \(c.natOut), fragments \(c.fragmentsSent), ICMP sent \(c.icmpSent) "
                    + "(rate-limited \(c.icmpRateLimited)), ARP requests \(c.arpRequestsSent) replies \(c.arpRepliesSent)"]
    }
}

// MARK: - Director (one per mode)

final class DirectorTarget: RunnerTarget<Director>, FuzzTarget {
    let name: String
    let mode: ForwardingMode
    let book: AddressBook
    let configuration: Director.Configuration
    let reals: [RealServerID]
    var arpHighWater = 0, pendingHighWater = 0, tableHighWater = 0

    static let vip = ip("10.0.0.100"), vip2 = ip("10.0.0.101")

    init(mode: ForwardingMode) {
        self.mode = mode
        name = "director-" + mode.rawValue
        let interfaces = [
            PortConfiguration(name: "eth0", mac: mac(1, 0xD0), addresses: [prefix("10.0.0.2/24")]),
            PortConfiguration(name: "eth1", mac: mac(2, 0xD0), addresses: [prefix("10.0.1.2/24")], mtu: 1400),
        ]
        var reals = [RealServer(address: ip("10.0.0.1")), RealServer(address: ip("10.0.0.3"), weight: 2),
                     RealServer(address: ip("10.0.1.5"))]
        if mode == .tun { reals.append(RealServer(address: ip("10.0.5.7"))) }
        if mode == .nat || mode == .fullnat { reals[2].port = 8080 }
        let locals = mode == .fullnat ? [ip("10.0.0.200"), ip("10.0.1.200")] : []
        let schedulers: [ForwardingMode: SchedulerKind] = [.nat: .rr, .dr: .wlc, .tun: .mh, .fullnat: .sh]
        let services = [
            Director.Service(VirtualService(address: Self.vip, port: 80, proto: .tcp, scheduler: schedulers[mode]!, mode: mode,
                                            localAddresses: locals, maglevTableSize: 251), reals: reals),
            Director.Service(VirtualService(address: Self.vip, port: 53, proto: .udp, scheduler: .lc, mode: mode,
                                            persistence: Persistence(timeout: 30, netmaskLength: 24), localAddresses: locals),
                             reals: Array(reals.prefix(2))),
            Director.Service(VirtualService(address: Self.vip2, port: 443, proto: .tcp, scheduler: .mh,
                                            schedulerFlags: [.port, .fallback], mode: mode, localAddresses: locals,
                                            maglevTableSize: 251), reals: Array(reals.suffix(2))),
        ]
        var core = DirectorCore.Configuration(maxConnections: 256)
        core.localPortRange = 1024...1087   // 2 × 64 ports: fewer than the table holds
        configuration = Director.Configuration(
            interfaces: interfaces,
            routes: [.defaultRoute(via: ip("10.0.0.254")),
                     Director.Route(prefix("10.0.5.0/24"), via: ip("10.0.1.254")),
                     Director.Route(prefix("10.0.5.0/24"), via: ip("10.0.1.253"))],
            services: services, core: core, arp: smallARP,
            unknownPort: mode == .nat || mode == .tun ? .portUnreachable : .drop,
            sync: SyncConfiguration(syncID: 7, port: PortID(0)))
        let element = try! Director(configuration: configuration)
        var ids: [RealServerID] = []
        for s in element.snapshot().services { ids += s.reals.map(\.id) }
        self.reals = ids
        book = AddressBook(
            portMACs: interfaces.map(\.mac), neighbourMACs: (1...12).map { mac($0) },
            addresses: ["10.0.0.100", "10.0.0.101", "10.0.0.2", "10.0.1.2", "10.0.0.200", "10.0.1.200", "10.0.0.1",
                        "10.0.0.3", "10.0.1.5", "10.0.5.7", "10.0.0.254", "10.0.1.254", "10.0.1.253", "123.123.123.123",
                        "123.123.123.124", "10.0.0.77", "10.0.5.9", "10.0.1.9", "10.0.0.255"].map(ip) + oddAddresses,
            ports: [80, 53, 443, 8080, 1024, 1025, 1087, 40000, 40001, 0, 65535])
        super.init(element)
    }

    static func syncMessage(_ mode: ForwardingMode) -> [UInt8] {
        let method: [ForwardingMode: UInt32] = [.nat: IPVSSync.Flag.masquerade, .dr: IPVSSync.Flag.directRoute,
                                                 .tun: IPVSSync.Flag.tunnel, .fullnat: IPVSSync.Flag.fullnat]
        var bytes = [UInt8](repeating: 0, count: 8 + 44)
        let n = bytes.withUnsafeMutableBytes { b -> Int in
            var w = IPVSSyncWriter(into: b, syncID: 7)
            _ = w.append(IPVSSyncEntry(protocol: .tcp, flags: method[mode]!, state: IPVSSync.TCPState.established,
                                       clientAddress: ip("123.123.123.124"), clientPort: 40001, virtualAddress: vip,
                                       virtualPort: 80, destinationAddress: ip("10.0.0.1"), destinationPort: 80, timeout: 900,
                                       fullnatLocal: mode == .fullnat ? .init(address: ip("10.0.0.200"), port: 1030) : nil))
            return w.length
        }
        return Array(bytes[0..<n])
    }

    func seeds() -> [[UInt8]] {
        let client = ip("123.123.123.123")
        var out = [
            Frames.ethernet(mac(1, 0xD0), mac(9), type: 0x0800,
                            Frames.ipv4(client, Self.vip, proto: 6, Frames.tcp(40000, 80, flags: 0x02, mss: true))),
            Frames.ethernet(mac(1, 0xD0), mac(9), type: 0x0800,
                            Frames.ipv4(client, Self.vip, proto: 6, Frames.tcp(40000, 80, flags: 0x10, sequence: 2, acknowledgment: 9,
                                                                            payload: Array("GET / HTTP/1.1\r\n\r\n".utf8)))),
            Frames.ethernet(mac(1, 0xD0), mac(9), type: 0x0800,
                            Frames.ipv4(client, Self.vip, proto: 17, Frames.udp(5353, 53))),
            Frames.ethernet(mac(1, 0xD0), mac(9), type: 0x0800,
                            Frames.ipv4(client, Self.vip2, proto: 6, Frames.tcp(40001, 443, flags: 0x02))),
            Frames.ethernet(mac(1, 0xD0), mac(3), type: 0x0800,
                            Frames.ipv4(ip("10.0.0.1"), client, proto: 6, Frames.tcp(80, 40000, flags: 0x12))),
            Frames.ethernet(mac(1, 0xD0), mac(3), type: 0x0800,
                            Frames.ipv4(ip("10.0.0.1"), ip("10.0.0.200"), proto: 6, Frames.tcp(80, 1024, flags: 0x12))),
            Frames.ethernet(mac(1, 0xD0), mac(9), type: 0x0800,
                            Frames.ipv4(client, Self.vip, proto: 1, Frames.icmp(type: 8, code: 0, rest: 0x0007_0001, [1, 2, 3, 4]))),
            Frames.ethernet(.broadcast, mac(3), type: 0x0806,
                            Frames.arp(operation: 1, senderMAC: mac(3), senderIP: ip("10.0.0.1"), targetMAC: .zero,
                                       targetIP: Self.vip)),
            // A peer director's sync message (IPVS sync v1, group 7): an
            // established connection of the service on port 80.
            Frames.ethernet(IPVSSync.groupMAC, mac(4), type: 0x0800,
                            Frames.ipv4(ip("10.0.0.3"), IPVSSync.group, proto: 17,
                                        Frames.udp(IPVSSync.port, IPVSSync.port, payload: Self.syncMessage(mode)))),
        ]
        for i in out.indices { out[i].withUnsafeMutableBytes { Frames.fixChecksums($0) } }
        return out
    }

    /// Clients to the VIPs' services (a few thousand client ip:ports, so
    /// connections repeat and the table fills), and the reals' answers to
    /// clients (NAT) or to the local addresses (FULLNAT).
    func typical(_ rng: inout Xoshiro, port: inout Int) -> [UInt8]? {
        port = rng.percent(85) ? 0 : 1
        let clientAddress = rng.oneIn(5) ? client(&rng, ip("10.0.5.0"), count: 20) : client(&rng, ip("123.123.0.0"), count: 300)
        let clientPort = UInt16(1024 + rng.below(16))
        let sourceMAC = rng.pick(book.neighbourMACs)
        if rng.percent(80) {
            let services: [(IPv4Address, UInt16, UInt8)] = [(Self.vip, 80, 6), (Self.vip, 80, 6), (Self.vip, 53, 17),
                                                            (Self.vip2, 443, 6), (Self.vip, 22, 6)]
            let (vip, servicePort, proto) = rng.pick(services)
            return typicalPacket(&rng, from: clientAddress, clientPort, to: vip, servicePort, proto: proto,
                                 destinationMAC: book.portMACs[port], sourceMAC: sourceMAC)
        }
        let answers: [(IPv4Address, UInt16)] = [(ip("10.0.0.1"), 80), (ip("10.0.0.3"), 80), (ip("10.0.1.5"), 8080),
                                                (ip("10.0.1.5"), 80), (ip("10.0.0.1"), 53)]
        let (real, realPort) = rng.pick(answers)
        let fullnat = mode == .fullnat
        return typicalPacket(&rng, from: real, realPort,
                             to: fullnat ? rng.pick([ip("10.0.0.200"), ip("10.0.1.200")]) : clientAddress,
                             fullnat ? UInt16(1024 + rng.below(64)) : clientPort, proto: realPort == 53 ? 17 : 6,
                             destinationMAC: book.portMACs[port], sourceMAC: sourceMAC)
    }

    let mayFlood = false
    let forwardsUnchanged = false
    let buildsEverything = false
    func mtu(_ port: Int) -> Int? { configuration.interfaces[port].mtu }
    func maxFrame(_ port: Int) -> Int { 2048 }

    func poke(_ rng: inout Xoshiro, now: Instant, ports: inout FuzzPorts) -> String {
        let real = rng.pick(reals)
        if rng.oneIn(2) {
            let enabled = rng.oneIn(2)
            try? element.setEnabled(enabled, for: real)
            return "\(real) \(enabled ? "enabled" : "disabled")"
        }
        let weight = rng.pick([0, 1, 3])
        try? element.setWeight(weight, for: real)
        return "\(real) weight \(weight)"
    }

    func ledger() -> Ledger {
        var l = runnerLedger()
        l.readARP(element.neighbourCache)
        let c = element.counters
        l.releasedSent = c.releasedAfterResolution
        l.builtDropped = c.builtFramesDropped
        l.received = c.received
        l.fragmented = c.fragmented
        l.learned = c.arpLearned
        l.syncMessages = element.syncCounters.messagesReceived
        return l
    }

    func explain(_ verdict: Verdict, _ b: Ledger, _ a: Ledger, frame: UnsafeRawBufferPointer) -> (consumed: String?, violation: String?) {
        if a.received != b.received + 1 { return (nil, "did not count a frame it received") }
        switch verdict {
        case .consumed:
            if a.syncMessages == b.syncMessages + 1 { return ("sync message from a peer", nil) }
            if a.fragmented > b.fragmented { return ("sent as fragments", nil) }
            if a.queued > b.queued { return ("queued for ARP", nil) }
            if a.learned > b.learned { return ("ARP learned", nil) }
            return (nil, "consumed a frame without queueing, fragmenting or learning from it")
        default:
            return (nil, nil)
        }
    }

    func checkLimits() -> String? {
        let arp = element.neighbourCache
        arpHighWater = max(arpHighWater, arp.count)
        pendingHighWater = max(pendingHighWater, arp.pending.count)
        let n = element.core.table.count
        tableHighWater = max(tableHighWater, n)
        if n > configuration.core.maxConnections {
            return "connection table holds \(n) entries, limit \(configuration.core.maxConnections)"
        }
        return arpLimits(arp, configuration.arp)
    }

    func checkDeep(now: Instant) -> String? {
        let table = element.core.table
        let live = table.liveEntries()
        if live.count != table.count { return "connection table counts \(table.count) entries but holds \(live.count)" }
        let fullnat = live.filter { table[$0].flags & ConnectionEntry.Flag.fullnat != 0 }.count
        let ports = element.snapshot().localPorts
        let inUse = ports.reduce(0) { $0 + $1.inUse }
        if inUse != fullnat { return "FULLNAT local ports in use: \(inUse), but \(fullnat) FULLNAT connections hold one" }
        if let p = ports.first(where: { $0.inUse > $0.capacity }) { return "\(p.address) uses \(p.inUse) of \(p.capacity) ports" }
        return arpDeep(element.neighbourCache, configuration.arp)
    }

    func checkDrained(now: Instant) -> String? {
        let table = element.core.table
        if table.count != 0 { return "connection table still holds \(table.count) entries after every timeout" }
        if let p = element.snapshot().localPorts.first(where: { $0.inUse != 0 }) {
            return "\(p.address) still has \(p.inUse) FULLNAT ports in use with no connection"
        }
        let arp = element.neighbourCache
        if !arp.pending.isEmpty { return "ARP still resolves \(arp.pending.count) addresses after every retry" }
        if arp.count != 0 { return "ARP cache still holds \(arp.count) entries after their lifetime" }
        return nil
    }

    func summary() -> [String] {
        let c = element.counters, k = element.core.counters
        return [arpSummary(element.neighbourCache, configuration.arp, highWater: arpHighWater, pendingHighWater: pendingHighWater),
                "connection table: \(element.core.table.count) of \(configuration.core.maxConnections) (most \(tableHighWater)); "
                    + "created \(k.created), expired \(k.expired), reused \(k.reused), syn-flood evicted \(k.evictedEmbryonic), refused: table full \(k.refusedTableFull), "
                    + "no real \(k.refusedNoReal), not SYN \(k.refusedNotSyn), local ports \(k.refusedLocalPortsExhausted), "
                    + "reply collision \(k.refusedReplyCollision)",
                "sent on: DR \(c.forwardedDR), TUN \(c.forwardedTUN), NAT \(c.forwardedNAT), FULLNAT \(c.forwardedFullNAT), "
                    + "routed \(c.routed), replies NAT \(c.repliesNAT) FULLNAT \(c.repliesFullNAT), echo \(c.echoRepliesSent), "
                    + "ICMP errors sent \(c.icmpErrorsSent) relayed \(c.icmpErrorsRelayed), fragmented \(c.fragmented)"]
    }
}

// MARK: - The simulator's host model

final class HostTarget: RunnerTarget<HostModel>, FuzzTarget {
    let name = "host"
    let book: AddressBook
    let configuration: HostModel.Configuration
    var arpHighWater = 0, pendingHighWater = 0, serverHighWater = 0
    static let get = HostModel.httpRequest(host: "10.0.0.100", path: "/")

    init() {
        let interfaces = [
            PortConfiguration(name: "eth0", mac: mac(1, 0xB0), addresses: [prefix("10.0.0.1/24")]),
            PortConfiguration(name: "eth1", mac: mac(2, 0xB0), addresses: [prefix("10.0.7.1/24")], mtu: 9000),
        ]
        configuration = HostModel.Configuration(
            name: "rs1", interfaces: interfaces,
            routes: [.init(prefix("0.0.0.0/0"), via: ip("10.0.0.254")), .init(prefix("10.0.8.0/24"), via: ip("10.0.7.254"))],
            localAddresses: [ip("10.0.0.100")], arpIgnore: true, decapsulatesIPIP: true, httpPort: 80, udpEchoPort: 7,
            arp: smallARP, recordsDeliveries: false, maxServerConnections: 64)
        book = AddressBook(
            portMACs: interfaces.map(\.mac), neighbourMACs: (1...12).map { mac($0) },
            addresses: ["10.0.0.1", "10.0.7.1", "10.0.0.100", "10.0.0.254", "10.0.7.254", "10.0.0.2", "10.0.0.3",
                        "123.123.123.123", "10.0.8.8", "10.0.7.9", "10.0.0.255"].map(ip) + oddAddresses,
            ports: [80, 7, 53, 32768, 32769, 32770, 40000, 0, 65535])
        super.init(HostModel(configuration: configuration))
    }

    func seeds() -> [[UInt8]] {
        let client = ip("123.123.123.123")
        let inner = Frames.ipv4(client, ip("10.0.0.100"), proto: 6, Frames.tcp(40000, 80, flags: 0x02, mss: true))
        var out = [
            Frames.ethernet(mac(1, 0xB0), mac(9), type: 0x0800,
                            Frames.ipv4(client, ip("10.0.0.100"), proto: 6, Frames.tcp(40000, 80, flags: 0x02, mss: true))),
            Frames.ethernet(mac(1, 0xB0), mac(9), type: 0x0800, Frames.ipv4(ip("10.0.0.2"), ip("10.0.0.1"), proto: 4, inner)),
            Frames.ethernet(mac(1, 0xB0), mac(9), type: 0x0800,
                            Frames.ipv4(client, ip("10.0.0.1"), proto: 17, Frames.udp(5000, 7, payload: Array("echo".utf8)))),
            Frames.ethernet(mac(2, 0xB0), mac(9), type: 0x0800,
                            Frames.ipv4(ip("10.0.7.9"), ip("10.0.7.1"), proto: 1,
                                        Frames.icmp(type: 8, code: 0, rest: 0x0001_0002, [UInt8](repeating: 0x55, count: 3000)))),
            Frames.ethernet(.broadcast, mac(3), type: 0x0806,
                            Frames.arp(operation: 1, senderMAC: mac(3), senderIP: ip("10.0.0.254"), targetMAC: .zero,
                                       targetIP: ip("10.0.0.1"))),
        ]
        for i in out.indices { out[i].withUnsafeMutableBytes { Frames.fixChecksums($0) } }
        return out
    }

    /// Clients to the HTTP server and the UDP echo (on the interface
    /// address and on the VIP on lo), pings, the same inside IPIP from a
    /// director, and ARP from neighbours.
    func typical(_ rng: inout Xoshiro, port: inout Int) -> [UInt8]? {
        port = rng.percent(80) ? 0 : 1
        let sourceMAC = rng.pick(book.neighbourMACs)
        if rng.oneIn(8) {
            let asker = port == 0 ? client(&rng, ip("10.0.0.0"), count: 30) : client(&rng, ip("10.0.7.0"), count: 30)
            return Frames.ethernet(.broadcast, sourceMAC, type: 0x0806,
                                   Frames.arp(operation: 1, senderMAC: sourceMAC, senderIP: asker, targetMAC: .zero,
                                              targetIP: port == 0 ? ip("10.0.0.1") : ip("10.0.7.1")))
        }
        let from = rng.oneIn(3) ? client(&rng, port == 0 ? ip("10.0.0.0") : ip("10.0.7.0"), count: 30)
            : client(&rng, ip("123.123.123.0"), count: 100)
        let to = port == 0 ? rng.pick([ip("10.0.0.100"), ip("10.0.0.1")]) : ip("10.0.7.1")
        let kinds: [(UInt8, UInt16)] = [(6, 80), (6, 80), (6, 80), (17, 7), (1, 0), (6, 81)]
        let (proto, destinationPort) = rng.pick(kinds)
        var f = typicalPacket(&rng, from: from, UInt16(40000 + rng.below(64)), to: to, destinationPort, proto: proto,
                              destinationMAC: book.portMACs[port], sourceMAC: sourceMAC)
        if port == 0 && rng.oneIn(6) {
            // As a TUN director sends it: the packet inside IPIP to the real's address.
            let inner = Array(f[14...])
            f = Frames.ethernet(book.portMACs[0], sourceMAC, type: 0x0800, Frames.ipv4(ip("10.0.0.2"), ip("10.0.0.1"), proto: 4, inner))
            f.withUnsafeMutableBytes { Frames.fixChecksums($0) }
        }
        return f
    }

    let mayFlood = false
    let forwardsUnchanged = false
    let buildsEverything = true
    func mtu(_ port: Int) -> Int? { configuration.interfaces[port].mtu }
    func maxFrame(_ port: Int) -> Int { configuration.interfaces[port].mtu + 18 }

    func poke(_ rng: inout Xoshiro, now: Instant, ports: inout FuzzPorts) -> String {
        let destination = rng.pick(book.addresses)
        let what: String
        switch rng.below(4) {
        case 0:
            let port = rng.pick([80, 81, 7] as [UInt16])
            _ = element.connect(to: destination, port: port, request: rng.oneIn(2) ? Self.get : [], now: now, emit: &runner.emitter)
            what = "connect \(destination):\(port)"
        case 1:
            let length = rng.pick([56, 1400, 1473])
            element.ping(destination, identifier: rng.u16(), sequence: rng.u16(), payloadLength: length, now: now, emit: &runner.emitter)
            what = "ping \(destination) (\(length) bytes)"
        case 2:
            let port = rng.pick([7, 53] as [UInt16])
            _ = element.sendUDP(to: destination, port: port, payload: Array("hello".utf8), now: now, emit: &runner.emitter)
            what = "udp \(destination):\(port)"
        default:
            // As a raw socket's caller would, with its checksums right.
            var frame = Frames.ethernet(.zero, .zero, type: 0x0800,
                                        Frames.ipv4(ip("10.0.0.1"), destination, proto: rng.pick([6, 17, 1, 47]),
                                                    [UInt8](repeating: 1, count: rng.pick([0, 8, 20, 63]))))
            frame.withUnsafeMutableBytes { Frames.fixChecksums($0) }
            frame.withUnsafeBytes { _ = element.sendIPv4(UnsafeRawBufferPointer(rebasing: $0[14...]), now: now, emit: &runner.emitter) }
            what = "raw IPv4 to \(destination)"
        }
        runner.drainEmitted(on: &ports)
        return what
    }

    func ledger() -> Ledger {
        var l = runnerLedger()
        l.readARP(element.arp)
        l.releasedSent = element.counters.releasedAfterResolution
        l.builtDropped = element.counters.unsent
        l.received = element.counters.received
        return l
    }

    func explain(_ verdict: Verdict, _ b: Ledger, _ a: Ledger, frame: UnsafeRawBufferPointer) -> (consumed: String?, violation: String?) {
        switch verdict {
        case .consumed:
            if a.received == b.received + 1 { return ("delivered", nil) }
            return (nil, "consumed a frame it did not count as received")
        case .forward:
            return (nil, "forwarded a frame (a host does not forward)")
        default:
            return (nil, nil)
        }
    }

    func checkLimits() -> String? {
        arpHighWater = max(arpHighWater, element.arp.count)
        pendingHighWater = max(pendingHighWater, element.arp.pending.count)
        serverHighWater = max(serverHighWater, element.serverConnectionCount)
        if element.serverConnectionCount > configuration.maxServerConnections {
            return "holds \(element.serverConnectionCount) server connections, limit \(configuration.maxServerConnections)"
        }
        return arpLimits(element.arp, configuration.arp)
    }

    func checkDeep(now: Instant) -> String? { arpDeep(element.arp, configuration.arp) }

    func checkDrained(now: Instant) -> String? {
        if !element.arp.pending.isEmpty { return "ARP still resolves \(element.arp.pending.count) addresses after every retry" }
        if element.arp.count != 0 { return "ARP cache still holds \(element.arp.count) entries after their lifetime" }
        if element.serverConnectionCount != 0 {
            return "\(element.serverConnectionCount) server connections still held after the idle time-out"
        }
        if element.openClientConnectionCount != 0 {
            return "\(element.openClientConnectionCount) client connections still open after their time-out"
        }
        return nil
    }

    func summary() -> [String] {
        let c = element.counters
        return [arpSummary(element.arp, configuration.arp, highWater: arpHighWater, pendingHighWater: pendingHighWater),
                "TCP server connections: \(element.serverConnectionCount) of \(configuration.maxServerConnections) (most "
                    + "\(serverHighWater)), SYNs dropped for a full table \(element.counters.backlogDrops); "
                    + "client connections open \(element.openClientConnectionCount)",
                "received \(c.received), sent \(c.sent), echo replies \(c.echoRepliesSent), UDP echoed \(c.udpEchoed), resets \(c.resetsSent), "
                    + "port unreachables \(c.portUnreachablesSent), HTTP served \(c.httpRequestsServed), IPIP \(c.ipipDecapsulated), "
                    + "unsent \(c.unsent)"]
    }
}

/// Every target, by name.
func makeTarget(_ name: String) -> FuzzTarget? {
    switch name {
    case "switch": SwitchTarget()
    case "router": RouterTarget()
    case "director-nat": DirectorTarget(mode: .nat)
    case "director-dr": DirectorTarget(mode: .dr)
    case "director-tun": DirectorTarget(mode: .tun)
    case "director-fullnat": DirectorTarget(mode: .fullnat)
    case "host": HostTarget()
    default: nil
    }
}

public let allTargetNames = ["switch", "router", "director-nat", "director-dr", "director-tun", "director-fullnat", "host"]
