// rtnetlink: links (veth), addresses and routes of one network namespace,
// spoken directly over a NETLINK_ROUTE socket — what `ip` does, without a
// process per command.
import CLinuxShim
import Glibc
import Wire

/// A rtnetlink handle bound to one network namespace.
///
/// Operations are named noun+verb and each equals one `ip` command. By
/// default each waits for the kernel's ACK. Inside `pipelined { … }` requests
/// are queued and sent many to a datagram, and only errors (plus one ACK per
/// datagram) come back, matched to their request by sequence number — so
/// configuring a namespace costs a couple of system calls, not two per
/// request. Queries (`linkList`, `linkIndex`, …) send what is queued first, so
/// they always see the effect of earlier requests.
///
/// Not thread-safe: use one handle from one thread at a time.
public final class RTNetlink {
    /// The namespace's name, for error messages.
    public let namespace: String
    /// Where requests go: a `NetlinkSocket`, or a recording in tests.
    public let transport: NetlinkTransport
    /// Most requests sent in one datagram while pipelining.
    public var maximumBatch = 128

    private var nextSequence: UInt32 = 1
    private var queue: [Queued] = []
    private var pipelineDepth = 0
    /// Interface name → index, filled by link dumps (see `interfaceIndex`).
    private var indexCache: [String: Int32] = [:]

    private struct Queued {
        var request: NetlinkRequest
        var context: OperationContext
    }

    /// Opens a NETLINK_ROUTE socket inside namespace NAME (on a fresh thread
    /// that has entered it); the socket stays in NAME for its life.
    public convenience init(namespace name: String) throws {
        let socket = try NetworkNamespace.run(name) { try NetlinkSocket(namespace: name) }
        self.init(transport: socket, namespace: name)
    }

    /// Opens a NETLINK_ROUTE socket inside an open namespace.
    public convenience init(namespace: NetworkNamespace.Handle) throws {
        let name = namespace.name
        let socket = try NetworkNamespace.run(namespace) { try NetlinkSocket(namespace: name) }
        self.init(transport: socket, namespace: name)
    }

    /// A handle over any transport (tests: recorded replies). Sequence numbers
    /// start at 1.
    public init(transport: NetlinkTransport, namespace: String) {
        self.transport = transport
        self.namespace = namespace
    }

    // MARK: - Links

    /// Creates a veth pair NAME ↔ PEER, each end created directly in its
    /// namespace, in one request.
    ///
    /// Equals `ip link add NAME [netns NS] [address MAC] [mtu MTU] [up] type veth
    /// peer name PEER [netns PEERNS] [address PEERMAC] [mtu MTU]`.
    /// A nil namespace means this handle's namespace. `mtu` applies to both
    /// ends. `up: true` brings NAME up in the same request; PEER cannot be
    /// (the kernel configures the peer before the pair is linked, and
    /// opening an unlinked veth fails with ENOTCONN), so set it up with
    /// `linkSetUp` through a handle in PEER's namespace. Until both ends are
    /// up the pair has no carrier.
    public func linkAddVeth(name: String, peer: String,
                            peerNamespace: NetworkNamespace.Handle? = nil,
                            namespace: NetworkNamespace.Handle? = nil,
                            mtu: Int? = nil, mac: MACAddress? = nil, peerMac: MACAddress? = nil,
                            up: Bool = false) throws {
        let here = namespace?.name ?? self.namespace
        let there = peerNamespace?.name ?? self.namespace
        let context = OperationContext("creating veth \(name) ↔ \(peer)", namespace: "\(here)/\(there)",
                                       interface: name)
        var request = NetlinkRequest(type: RTNL.newLink, flags: NLM.request | NLM.ack | NLM.create | NLM.exclusive)
        let upFlags: UInt32 = up ? RTNL.iffUp : 0
        request.append(header: Self.linkHeader(flags: upFlags, change: upFlags))
        request.appendAttribute(RTNL.iflaIfname, string: name)
        if let mtu { request.appendAttribute(RTNL.iflaMTU, uint32: UInt32(mtu)) }
        if let mac { request.appendAttribute(RTNL.iflaAddress, mac: mac) }
        if let namespace { request.appendAttribute(RTNL.iflaNetNSFD, uint32: UInt32(bitPattern: namespace.fileDescriptor)) }
        request.appendNested(RTNL.iflaLinkInfo) { info in
            info.appendAttribute(RTNL.iflaInfoKind, Array("veth".utf8))  // no NUL, as iproute2
            info.appendNested(RTNL.iflaInfoData) { data in
                data.appendNested(RTNL.vethInfoPeer) { peerInfo in
                    peerInfo.append(header: Self.linkHeader())
                    peerInfo.appendAttribute(RTNL.iflaIfname, string: peer)
                    if let mtu { peerInfo.appendAttribute(RTNL.iflaMTU, uint32: UInt32(mtu)) }
                    if let peerMac { peerInfo.appendAttribute(RTNL.iflaAddress, mac: peerMac) }
                    if let peerNamespace {
                        peerInfo.appendAttribute(RTNL.iflaNetNSFD, uint32: UInt32(bitPattern: peerNamespace.fileDescriptor))
                    }
                }
            }
        }
        indexCache[name] = nil
        indexCache[peer] = nil
        try perform(request, context)
    }

    /// Deletes link NAME (a veth takes its peer with it). Equals `ip link delete NAME`.
    public func linkDelete(name: String) throws {
        var request = NetlinkRequest(type: RTNL.delLink, flags: NLM.request | NLM.ack)
        request.append(header: Self.linkHeader())
        request.appendAttribute(RTNL.iflaIfname, string: name)
        indexCache[name] = nil
        try perform(request, OperationContext("deleting link \(name)", namespace: namespace, interface: name))
    }

    /// Equals `ip link set NAME up`.
    public func linkSetUp(name: String) throws {
        try linkSet(name, flags: RTNL.iffUp, change: RTNL.iffUp, "setting \(name) up") { _ in }
    }

    /// Equals `ip link set NAME down`.
    public func linkSetDown(name: String) throws {
        try linkSet(name, flags: 0, change: RTNL.iffUp, "setting \(name) down") { _ in }
    }

    /// Equals `ip link set NAME mtu MTU`.
    public func linkSetMTU(name: String, mtu: Int) throws {
        try linkSet(name, flags: 0, change: 0, "setting the MTU of \(name) to \(mtu)") {
            $0.appendAttribute(RTNL.iflaMTU, uint32: UInt32(mtu))
        }
    }

    /// Equals `ip link set NAME address MAC`.
    public func linkSetAddress(name: String, mac: MACAddress) throws {
        try linkSet(name, flags: 0, change: 0, "setting the MAC address of \(name) to \(mac)") {
            $0.appendAttribute(RTNL.iflaAddress, mac: mac)
        }
    }

    /// The ifindex of link NAME. Equals `ip -j link show NAME` → `.ifindex`.
    public func linkIndex(name: String) throws -> Int32 {
        let context = OperationContext("looking up link \(name)", namespace: namespace, interface: name)
        var request = NetlinkRequest(type: RTNL.getLink, flags: NLM.request)
        request.append(header: Self.linkHeader())
        request.appendAttribute(RTNL.iflaIfname, string: name)
        request.appendAttribute(RTNL.iflaExtMask, uint32: RTNL.extFilterSkipStats)
        let reply = try get(request, context)
        guard let link = Self.parseLink(reply) else {
            throw context.error(Self.callName(RTNL.getLink), .protocolError, kernelMessage: "unparsable RTM_NEWLINK reply")
        }
        indexCache[link.name] = link.index
        return link.index
    }

    /// Every link of the namespace, by index. Equals `ip -j link show`.
    public func linkList() throws -> [Link] {
        var request = NetlinkRequest(type: RTNL.getLink, flags: NLM.request | NLM.dump)
        request.append(header: Self.linkHeader())
        request.appendAttribute(RTNL.iflaExtMask, uint32: RTNL.extFilterSkipStats)
        let links = try dump(request, OperationContext("listing links", namespace: namespace))
            .compactMap(Self.parseLink)
        indexCache = Dictionary(links.map { ($0.name, $0.index) }, uniquingKeysWith: { _, last in last })
        return links
    }

    /// A link as `ip link show` describes it.
    public struct Link: Sendable, Hashable {
        public var index: Int32
        public var name: String
        /// IFLA_ADDRESS; nil for links without one.
        public var mac: MACAddress?
        public var mtu: Int
        /// IFF_UP: administratively up (`ip link set NAME up`).
        public var isUp: Bool
        /// IFF_LOWER_UP: has carrier (for a veth: both ends are up).
        public var hasCarrier: Bool
        /// IFLA_INFO_KIND: "veth", "dummy", …; nil for lo and physical links.
        public var kind: String?
    }

    // MARK: - Addresses

    /// Equals `ip address add PREFIX dev INTERFACE` (IFA_LOCAL = IFA_ADDRESS =
    /// the address; scope host for 127/8, else global).
    public func addressAdd(_ prefix: IPv4Prefix, interface: String) throws {
        let context = OperationContext("adding address \(prefix) to \(interface)", namespace: namespace, interface: interface)
        try perform(addressRequest(RTNL.newAddr, NLM.request | NLM.ack | NLM.create | NLM.exclusive,
                                   prefix, try interfaceIndex(interface, context)), context)
    }

    /// Equals `ip address delete PREFIX dev INTERFACE`.
    public func addressDelete(_ prefix: IPv4Prefix, interface: String) throws {
        let context = OperationContext("deleting address \(prefix) from \(interface)", namespace: namespace, interface: interface)
        try perform(addressRequest(RTNL.delAddr, NLM.request | NLM.ack, prefix, try interfaceIndex(interface, context)),
                    context)
    }

    /// IPv4 addresses, of one interface or all. Equals `ip -4 -j address show [dev INTERFACE]`.
    public func addressList(interface: String? = nil) throws -> [Address] {
        let context = OperationContext("listing addresses", namespace: namespace, interface: interface)
        let index = try interface.map { try interfaceIndex($0, context) }
        var request = NetlinkRequest(type: RTNL.getAddr, flags: NLM.request | NLM.dump)
        var header = ifaddrmsg()
        header.ifa_family = UInt8(AF_INET)
        request.append(header: header)
        return try dump(request, context).compactMap(Self.parseAddress)
            .filter { index == nil || $0.interfaceIndex == index }
    }

    /// An IPv4 interface address.
    public struct Address: Sendable, Hashable {
        public var interfaceIndex: Int32
        /// IFA_LABEL: the interface name (or its `name:label` alias).
        public var interface: String
        /// The address with its prefix length (IFA_LOCAL / IFA_ADDRESS, ifa_prefixlen).
        public var prefix: IPv4Prefix
        /// ifa_scope: 0 global, 253 link, 254 host.
        public var scope: UInt8
    }

    // MARK: - Neighbours

    /// Adds or replaces a permanent IPv4 neighbour entry. Equals
    /// `ip neigh replace ADDRESS lladdr MAC nud permanent dev INTERFACE`.
    public func neighbourReplace(_ address: IPv4Address, mac: MACAddress, interface: String) throws {
        let context = OperationContext("adding permanent neighbour \(address) lladdr \(mac) on \(interface)",
                                       namespace: namespace, interface: interface)
        var request = NetlinkRequest(type: UInt16(RTM_NEWNEIGH), flags: NLM.request | NLM.ack | NLM.create | NLM.replace)
        var header = ndmsg()
        header.ndm_family = UInt8(AF_INET)
        header.ndm_ifindex = try interfaceIndex(interface, context)
        header.ndm_state = UInt16(NUD_PERMANENT)
        request.append(header: header)
        request.appendAttribute(UInt16(NDA_DST), ipv4: address)
        request.appendAttribute(UInt16(NDA_LLADDR), mac: mac)
        try perform(request, context)
    }

    // MARK: - Routes

    /// Adds an IPv4 route to the main table; fails (`File exists`) if one
    /// to DESTINATION exists. Equals `ip route add DESTINATION via A [dev IF]`,
    /// `ip route add DESTINATION nexthop via A nexthop via B …` (ECMP,
    /// RTA_MULTIPATH) for several gateways, or `ip route add DESTINATION dev IF`
    /// (scope link) for none. Host bits of DESTINATION are cleared.
    public func routeAdd(destination: IPv4Prefix, via gateways: [IPv4Address], interface: String? = nil) throws {
        try routeChange(RTNL.newRoute, NLM.request | NLM.ack | NLM.create | NLM.exclusive, "adding",
                        destination, gateways, interface)
    }

    /// Adds or replaces the route to DESTINATION. Equals `ip route replace …`
    /// (same forms as `routeAdd`).
    public func routeReplace(destination: IPv4Prefix, via gateways: [IPv4Address], interface: String? = nil) throws {
        try routeChange(RTNL.newRoute, NLM.request | NLM.ack | NLM.create | NLM.replace, "replacing",
                        destination, gateways, interface)
    }

    /// Deletes the main-table route to DESTINATION. Equals `ip route delete DESTINATION`.
    public func routeDelete(destination: IPv4Prefix) throws {
        let context = OperationContext("deleting route \(destination.canonical)", namespace: namespace)
        var request = NetlinkRequest(type: RTNL.delRoute, flags: NLM.request | NLM.ack)
        var header = Self.routeHeader(destination)
        header.rtm_scope = RTNL.scopeNowhere  // match any scope, as iproute2 does
        request.append(header: header)
        if destination.length > 0 { request.appendAttribute(RTNL.rtaDst, ipv4: destination.network) }
        try perform(request, context)
    }

    /// IPv4 routes of one table (default: main). Equals `ip -4 -j route show table TABLE`.
    public func routeList(table: UInt32 = RTNetlink.mainTable) throws -> [Route] {
        let context = OperationContext("listing routes", namespace: namespace)
        var request = NetlinkRequest(type: RTNL.getRoute, flags: NLM.request | NLM.dump)
        var header = rtmsg()
        header.rtm_family = UInt8(AF_INET)
        request.append(header: header)
        let routes = try dump(request, context).compactMap(Self.parseRoute).filter { $0.table == table }
        let names = Dictionary(try linkList().map { ($0.index, $0.name) }, uniquingKeysWith: { _, last in last })
        return routes.map { route in
            var route = route
            for i in route.nextHops.indices { route.nextHops[i].interface = names[route.nextHops[i].interfaceIndex] }
            return route
        }
    }

    /// The main routing table's id (RT_TABLE_MAIN).
    public static let mainTable = UInt32(RT_TABLE_MAIN.rawValue)

    /// An IPv4 route as `ip route show` describes it.
    public struct Route: Sendable, Hashable {
        public var destination: IPv4Prefix
        /// One next hop, or several for ECMP (RTA_MULTIPATH).
        public var nextHops: [NextHop]
        public var table: UInt32
        /// rtm_protocol: 2 kernel, 3 boot (`ip route add`), 4 static, …
        public var proto: UInt8
        /// rtm_scope: 0 global, 253 link, 254 host.
        public var scope: UInt8
        /// rtm_type: 1 unicast, 2 local, 6 blackhole, …
        public var type: UInt8
        /// The gateways of all next hops.
        public var gateways: [IPv4Address] { nextHops.compactMap(\.gateway) }
    }

    public struct NextHop: Sendable, Hashable {
        public var gateway: IPv4Address?
        public var interfaceIndex: Int32
        /// The interface's name, when known.
        public var interface: String?
        /// ECMP weight (rtnh_hops + 1); 1 for single-path routes.
        public var weight: Int
    }

    // MARK: - Pipelining

    /// Runs `body`, queueing the requests it makes instead of sending each and
    /// waiting; sends them when `body` returns (also when it throws; its error
    /// then wins), many per datagram, and throws the first failure with the
    /// others in `otherFailures`. Queries inside `body` send the queue first.
    /// Requests are applied in order; a failed one does not stop later ones.
    public func pipelined<T>(_ body: () throws -> T) throws -> T {
        pipelineDepth += 1
        let result: T
        do {
            result = try body()
        } catch {
            pipelineDepth -= 1
            if pipelineDepth == 0 { try? flush() }
            throw error
        }
        pipelineDepth -= 1
        if pipelineDepth == 0 { try flush() }
        return result
    }

    /// Sends every queued request and collects the replies; throws the first
    /// failure (others in `otherFailures`).
    public func flush() throws {
        var failures: [LinuxNetError] = []
        while !queue.isEmpty {
            let chunk = queue.prefix(maximumBatch)
            queue.removeFirst(chunk.count)
            var datagram: [UInt8] = []
            var contexts: [UInt32: Queued] = [:]
            var last: UInt32 = 0
            for (position, item) in chunk.enumerated() {
                var request = item.request
                request.sequence = takeSequence()
                // Errors are always reported; an ACK only for the last request,
                // which tells us the kernel has handled the whole datagram.
                if position == chunk.count - 1 { request.flags |= NLM.ack } else { request.flags &= ~NLM.ack }
                datagram += request.bytes
                contexts[request.sequence] = item
                last = request.sequence
            }
            do {
                try transport.send(datagram)
                var finished = false
                while !finished {
                    for message in try NetlinkMessage.parse(transport.receive()) where message.type == NLM.error {
                        guard let item = contexts[message.sequence] else { continue }
                        if let failure = Self.failure(in: message, item.context, call: Self.callName(item.request.type)) {
                            failures.append(failure)
                        }
                        if message.sequence == last { finished = true }
                    }
                }
            } catch let error as LinuxNetError {
                queue.removeAll()
                throw chunk.first!.context.error(error.call, error.errno, kernelMessage: error.kernelMessage)
            }
        }
        if var first = failures.first {
            first.otherFailures = Array(failures.dropFirst())
            throw first
        }
    }

    // MARK: - Internals

    private func takeSequence() -> UInt32 {
        defer { nextSequence = nextSequence &+ 1 == 0 ? 1 : nextSequence &+ 1 }
        return nextSequence
    }

    private func perform(_ request: NetlinkRequest, _ context: OperationContext) throws {
        queue.append(Queued(request: request, context: context))
        if pipelineDepth == 0 || queue.count >= maximumBatch { try flush() }
    }

    /// Sends a non-dump GET and returns its one reply.
    private func get(_ request: NetlinkRequest, _ context: OperationContext) throws -> NetlinkMessage {
        try flush()
        var request = request
        request.sequence = takeSequence()
        do {
            try transport.send(request.bytes)
            while true {
                for message in try NetlinkMessage.parse(transport.receive()) where message.sequence == request.sequence {
                    if message.type == NLM.error {
                        if let failure = Self.failure(in: message, context, call: Self.callName(request.type)) { throw failure }
                        continue
                    }
                    return message
                }
            }
        } catch let error as LinuxNetError where error.operation != context.operation {
            throw context.error(error.call, error.errno, kernelMessage: error.kernelMessage)
        }
    }

    /// Sends a dump request and returns every message of the reply; repeats
    /// it if the kernel says the dump was interrupted by a change.
    private func dump(_ request: NetlinkRequest, _ context: OperationContext) throws -> [NetlinkMessage] {
        try flush()
        for _ in 0..<5 {
            var request = request
            request.sequence = takeSequence()
            var messages: [NetlinkMessage] = []
            var interrupted = false
            do {
                try transport.send(request.bytes)
                receiving: while true {
                    for message in try NetlinkMessage.parse(transport.receive()) where message.sequence == request.sequence {
                        if message.flags & NLM.dumpInterrupted != 0 { interrupted = true }
                        switch message.type {
                        case NLM.done:
                            let code: Int32 = message.payload.count >= 4 ? load(message.payload, at: 0) : 0
                            if code < 0 { throw context.error(Self.callName(request.type), Errno(rawValue: -code)) }
                            break receiving
                        case NLM.error:
                            if let failure = Self.failure(in: message, context, call: Self.callName(request.type)) { throw failure }
                        default:
                            messages.append(message)
                        }
                    }
                }
            } catch let error as LinuxNetError where error.operation != context.operation {
                throw context.error(error.call, error.errno, kernelMessage: error.kernelMessage)
            }
            if !interrupted { return messages }
        }
        throw context.error(Self.callName(request.type), .interrupted, kernelMessage: "dump interrupted 5 times")
    }

    /// The index of INTERFACE, from the cache or a fresh link dump.
    private func interfaceIndex(_ name: String, _ context: OperationContext) throws -> Int32 {
        if let index = indexCache[name] { return index }
        _ = try linkList()
        if let index = indexCache[name] { return index }
        throw context.error("looking up interface \(name)", .noSuchDevice)
    }

    private func linkSet(_ name: String, flags: UInt32, change: UInt32, _ what: String,
                         _ attributes: (inout NetlinkRequest) -> Void) throws {
        var request = NetlinkRequest(type: RTNL.newLink, flags: NLM.request | NLM.ack)
        request.append(header: Self.linkHeader(flags: flags, change: change))
        request.appendAttribute(RTNL.iflaIfname, string: name)
        attributes(&request)
        try perform(request, OperationContext(what, namespace: namespace, interface: name))
    }

    private func addressRequest(_ type: UInt16, _ flags: UInt16, _ prefix: IPv4Prefix, _ index: Int32) -> NetlinkRequest {
        var request = NetlinkRequest(type: type, flags: flags)
        var header = ifaddrmsg()
        header.ifa_family = UInt8(AF_INET)
        header.ifa_prefixlen = UInt8(prefix.length)
        header.ifa_scope = prefix.address.isLoopback ? RTNL.scopeHost : RTNL.scopeUniverse
        header.ifa_index = UInt32(bitPattern: index)
        request.append(header: header)
        request.appendAttribute(RTNL.ifaLocal, ipv4: prefix.address)
        request.appendAttribute(RTNL.ifaAddress, ipv4: prefix.address)
        return request
    }

    private func routeChange(_ type: UInt16, _ flags: UInt16, _ verb: String, _ destination: IPv4Prefix,
                             _ gateways: [IPv4Address], _ interface: String?) throws {
        var what = "\(verb) route \(destination.canonical)"
        if !gateways.isEmpty { what += " via " + gateways.map(\.description).joined(separator: ", ") }
        if let interface { what += " dev \(interface)" }
        let context = OperationContext(what, namespace: namespace, interface: interface)
        if gateways.isEmpty && interface == nil {
            throw context.error("checking the route", .invalidArgument, kernelMessage: "a route needs a gateway or an interface")
        }
        let index = try interface.map { try interfaceIndex($0, context) }
        var request = NetlinkRequest(type: type, flags: flags)
        var header = Self.routeHeader(destination)
        header.rtm_protocol = RTNL.protoBoot
        header.rtm_scope = gateways.isEmpty ? RTNL.scopeLink : RTNL.scopeUniverse
        header.rtm_type = RTNL.typeUnicast
        request.append(header: header)
        if destination.length > 0 { request.appendAttribute(RTNL.rtaDst, ipv4: destination.network) }
        if gateways.count == 1 {
            request.appendAttribute(RTNL.rtaGateway, ipv4: gateways[0])
        }
        if gateways.count >= 2 {
            request.appendNested(RTNL.rtaMultipath) { multipath in
                for gateway in gateways {
                    let start = multipath.count
                    var hop = rtnexthop()
                    hop.rtnh_ifindex = index ?? 0
                    multipath.append(header: hop)
                    multipath.appendAttribute(RTNL.rtaGateway, ipv4: gateway)
                    multipath.storeAt(start, UInt16(multipath.count - start))  // rtnh_len
                }
            }
        } else if let index {
            request.appendAttribute(RTNL.rtaOIF, uint32: UInt32(bitPattern: index))
        }
        try perform(request, context)
    }

    private static func linkHeader(flags: UInt32 = 0, change: UInt32 = 0) -> ifinfomsg {
        var header = ifinfomsg()
        header.ifi_family = UInt8(AF_UNSPEC)
        header.ifi_flags = flags
        header.ifi_change = change
        return header
    }

    private static func routeHeader(_ destination: IPv4Prefix) -> rtmsg {
        var header = rtmsg()
        header.rtm_family = UInt8(AF_INET)
        header.rtm_dst_len = UInt8(destination.length)
        header.rtm_table = UInt8(RT_TABLE_MAIN.rawValue)
        return header
    }

    /// The error an NLMSG_ERROR reply carries, or nil for an ACK (error 0).
    static func failure(in message: NetlinkMessage, _ context: OperationContext, call: String) -> LinuxNetError? {
        let payload = message.payload
        guard payload.count >= 4 else {
            return context.error(call, .protocolError, kernelMessage: "short NLMSG_ERROR")
        }
        let code: Int32 = load(payload, at: 0)
        if code == 0 { return nil }
        var kernelMessage: String?
        if message.flags & NLM.ackTLVs != 0, payload.count >= 20 {
            // struct nlmsgerr { int error; struct nlmsghdr msg; } then, unless
            // capped, the request's payload; then the TLVs.
            var offset = 20
            if message.flags & NLM.capped == 0 {
                offset = 4 + align4(Int(load(payload, at: 4) as UInt32))
            }
            if offset < payload.count {
                kernelMessage = NetlinkAttributes(payload[(payload.startIndex + offset)...])[RTNL.errorAttrMessage]?.cString
            }
        }
        return context.error(call, Errno(rawValue: -code), kernelMessage: kernelMessage)
    }

    static func parseLink(_ message: NetlinkMessage) -> Link? {
        let payload = message.payload
        guard message.type == RTNL.newLink, payload.count >= 16 else { return nil }
        let flags: UInt32 = load(payload, at: 8)
        var link = Link(index: load(payload, at: 4), name: "", mac: nil, mtu: 0,
                        isUp: flags & RTNL.iffUp != 0, hasCarrier: flags & RTNL.iffLowerUp != 0, kind: nil)
        for (type, value) in NetlinkAttributes(payload.dropFirst(16)) {
            switch type {
            case RTNL.iflaIfname: link.name = value.cString
            case RTNL.iflaAddress: link.mac = value.mac
            case RTNL.iflaMTU: link.mtu = Int(value.uint32 ?? 0)
            case RTNL.iflaLinkInfo: link.kind = NetlinkAttributes(value)[RTNL.iflaInfoKind]?.cString
            default: break
            }
        }
        return link
    }

    static func parseAddress(_ message: NetlinkMessage) -> Address? {
        let payload = message.payload
        guard message.type == RTNL.newAddr, payload.count >= 8, payload.first == UInt8(AF_INET) else { return nil }
        let attributes = NetlinkAttributes(payload.dropFirst(8))
        guard let address = (attributes[RTNL.ifaLocal] ?? attributes[RTNL.ifaAddress])?.ipv4 else { return nil }
        let length = Int(payload[payload.startIndex + 1])
        guard length <= 32 else { return nil }
        return Address(interfaceIndex: Int32(bitPattern: load(payload, at: 4)),
                       interface: attributes[RTNL.ifaLabel]?.cString ?? "",
                       prefix: IPv4Prefix(address: address, length: length),
                       scope: payload[payload.startIndex + 3])
    }

    static func parseRoute(_ message: NetlinkMessage) -> Route? {
        let payload = message.payload
        guard message.type == RTNL.newRoute, payload.count >= 12, payload.first == UInt8(AF_INET) else { return nil }
        let base = payload.startIndex
        let length = Int(payload[base + 1])
        guard length <= 32 else { return nil }
        var route = Route(destination: IPv4Prefix(address: .any, length: length), nextHops: [],
                          table: UInt32(payload[base + 4]), proto: payload[base + 5],
                          scope: payload[base + 6], type: payload[base + 7])
        var gateway: IPv4Address?
        var outputInterface: Int32 = 0
        for (type, value) in NetlinkAttributes(payload.dropFirst(12)) {
            switch type {
            case RTNL.rtaDst: if let address = value.ipv4 { route.destination = IPv4Prefix(address: address, length: length) }
            case RTNL.rtaGateway: gateway = value.ipv4
            case RTNL.rtaOIF: outputInterface = Int32(bitPattern: value.uint32 ?? 0)
            case RTNL.rtaTable: route.table = value.uint32 ?? route.table
            case RTNL.rtaMultipath:
                var rest = value
                while rest.count >= 8 {
                    let hopLength = Int(load(rest, at: 0) as UInt16)
                    guard hopLength >= 8, hopLength <= rest.count else { break }
                    let hopAttributes = NetlinkAttributes(rest[(rest.startIndex + 8)..<(rest.startIndex + hopLength)])
                    route.nextHops.append(NextHop(gateway: hopAttributes[RTNL.rtaGateway]?.ipv4,
                                                  interfaceIndex: load(rest, at: 4), interface: nil,
                                                  weight: Int(rest[rest.startIndex + 3]) + 1))
                    rest = rest[Swift.min(rest.endIndex, rest.startIndex + align4(hopLength))...]
                }
            default: break
            }
        }
        if route.nextHops.isEmpty {
            route.nextHops = [NextHop(gateway: gateway, interfaceIndex: outputInterface, interface: nil, weight: 1)]
        }
        return route
    }

    /// "RTM_NEWLINK" for the `call` of errors.
    static func callName(_ type: UInt16) -> String {
        switch type {
        case RTNL.newLink: "RTM_NEWLINK"
        case RTNL.delLink: "RTM_DELLINK"
        case RTNL.getLink: "RTM_GETLINK"
        case RTNL.newAddr: "RTM_NEWADDR"
        case RTNL.delAddr: "RTM_DELADDR"
        case RTNL.getAddr: "RTM_GETADDR"
        case RTNL.newRoute: "RTM_NEWROUTE"
        case RTNL.delRoute: "RTM_DELROUTE"
        case RTNL.getRoute: "RTM_GETROUTE"
        default: "netlink message type \(type)"
        }
    }
}

/// Netlink header constants from linux/netlink.h, as the u16s they are on the wire.
enum NLM {
    static let request = UInt16(NLM_F_REQUEST)      // 0x001
    static let ack = UInt16(NLM_F_ACK)              // 0x004
    static let dumpInterrupted = UInt16(NLM_F_DUMP_INTR) // 0x010
    static let dump = UInt16(NLM_F_DUMP)            // 0x300 (ROOT | MATCH)
    static let replace = UInt16(NLM_F_REPLACE)      // 0x100
    static let exclusive = UInt16(NLM_F_EXCL)       // 0x200
    static let create = UInt16(NLM_F_CREATE)        // 0x400
    static let capped = UInt16(NLM_F_CAPPED)        // 0x100 on NLMSG_ERROR
    static let ackTLVs = UInt16(NLM_F_ACK_TLVS)     // 0x200 on NLMSG_ERROR
    static let error = UInt16(NLMSG_ERROR)          // 2
    static let done = UInt16(NLMSG_DONE)            // 3
}

/// rtnetlink constants from linux/rtnetlink.h, if_link.h, if_addr.h, veth.h.
enum RTNL {
    static let newLink = UInt16(RTM_NEWLINK)        // 16
    static let delLink = UInt16(RTM_DELLINK)        // 17
    static let getLink = UInt16(RTM_GETLINK)        // 18
    static let newAddr = UInt16(RTM_NEWADDR)        // 20
    static let delAddr = UInt16(RTM_DELADDR)        // 21
    static let getAddr = UInt16(RTM_GETADDR)        // 22
    static let newRoute = UInt16(RTM_NEWROUTE)      // 24
    static let delRoute = UInt16(RTM_DELROUTE)      // 25
    static let getRoute = UInt16(RTM_GETROUTE)      // 26

    static let iflaAddress = UInt16(IFLA_ADDRESS)   // 1
    static let iflaIfname = UInt16(IFLA_IFNAME)     // 3
    static let iflaMTU = UInt16(IFLA_MTU)           // 4
    static let iflaLinkInfo = UInt16(IFLA_LINKINFO) // 18
    static let iflaNetNSFD = UInt16(IFLA_NET_NS_FD) // 28
    static let iflaExtMask = UInt16(IFLA_EXT_MASK)  // 29
    static let iflaInfoKind = UInt16(IFLA_INFO_KIND) // 1
    static let iflaInfoData = UInt16(IFLA_INFO_DATA) // 2
    static let vethInfoPeer = UInt16(VETH_INFO_PEER) // 1
    static let extFilterSkipStats = UInt32(RTEXT_FILTER_SKIP_STATS) // 1 << 3

    static let ifaAddress = UInt16(IFA_ADDRESS)     // 1
    static let ifaLocal = UInt16(IFA_LOCAL)         // 2
    static let ifaLabel = UInt16(IFA_LABEL)         // 3

    static let rtaDst = UInt16(RTA_DST.rawValue)        // 1
    static let rtaOIF = UInt16(RTA_OIF.rawValue)        // 4
    static let rtaGateway = UInt16(RTA_GATEWAY.rawValue) // 5
    static let rtaMultipath = UInt16(RTA_MULTIPATH.rawValue) // 9
    static let rtaTable = UInt16(RTA_TABLE.rawValue)    // 15

    static let protoBoot = UInt8(RTPROT_BOOT)           // 3, what `ip route add` uses
    static let scopeUniverse = UInt8(RT_SCOPE_UNIVERSE.rawValue) // 0
    static let scopeLink = UInt8(RT_SCOPE_LINK.rawValue)         // 253
    static let scopeHost = UInt8(RT_SCOPE_HOST.rawValue)         // 254
    static let scopeNowhere = UInt8(RT_SCOPE_NOWHERE.rawValue)   // 255
    static let typeUnicast = UInt8(RTN_UNICAST)         // 1

    static let iffUp = UInt32(IFF_UP)                   // 0x1
    /// IFF_LOWER_UP (linux/if.h; glibc's net/if.h, which wins, lacks it).
    static let iffLowerUp: UInt32 = 0x10000
    static let errorAttrMessage = UInt16(NLMSGERR_ATTR_MSG.rawValue) // 1
}
