// One BGP session: the finite state machine of RFC 4271 §8, pure.
//
// Events go in (`handle(_:now:)`: start/stop, TCP connected/failed, bytes
// received; `advance(to:)`: time), actions come out (`BGPAction`: connect,
// send bytes, disconnect, state changes with reasons, routes learned and
// withdrawn). No socket, no clock read: the host owns the TCP connection and
// calls `advance(to:)` at `nextDeadline` (or whenever; timers that are due
// fire first in every call). Times are `Instant`s on whatever clock the host
// uses (the daemon's monotonic clock, the simulator's virtual one).
//
// What follows the RFC and what is simplified:
// - States and their transitions are §8.2.2's, for the mandatory events plus
//   AutomaticStart after an error (optional attribute "IdleHoldTimer",
//   `idleHoldTime`). DelayOpen, DampPeerOscillations and
//   CollisionDetectEstablishedState are not built.
// - Collision detection (§6.8) is simplified: a session has one TCP
//   connection at a time. The host offers an inbound connection to the
//   session only while `acceptsConnection` is true (Idle excluded, Connect or
//   Active), closing a pending outbound attempt; an OPEN on the connection in
//   OpenConfirm is an FSM error. Passive sessions (`passive`) never connect.
// - Hold time: min of both OPENs' (0: no keepalives, no hold timer); a peer
//   offering 1 or 2 s, or less than `minimumHoldTime`, gets 2/6.
//   Keepalive interval: the configured one capped at hold/3, else hold/3 —
//   fractional seconds are fine (hold 3 s → 1 s). No jitter (§10's jitter is
//   optional; keepalives are ≥ 1 s apart anyway).
// - UPDATE errors reset the session (RFC 4271 §6.3), not RFC 7606's
//   treat-as-withdraw. eBGP: the leftmost AS must be the peer's (3/11);
//   NLRI whose AS_PATH holds our AS are treated as withdrawn (loop).

import Wire

/// The six states of RFC 4271 §8.2.2.
public enum BGPState: String, Sendable, CustomStringConvertible {
    case idle = "Idle", connect = "Connect", active = "Active", openSent = "OpenSent",
         openConfirm = "OpenConfirm", established = "Established"
    public var description: String { rawValue }
}

/// One neighbour as the topology's `bgp:` key describes it (DESIGN.md).
public struct BGPSessionConfiguration: Equatable, Sendable {
    public var localASN: UInt32
    /// BGP Identifier (`router-id`).
    public var routerID: IPv4Address
    /// Our address on the connection: the NEXT_HOP of what we announce.
    public var localAddress: IPv4Address
    public var peerAddress: IPv4Address
    public var peerASN: UInt32
    /// The Hold Time we offer, seconds: 0 or ≥ 3.
    public var holdTime: UInt16
    /// Configured keepalive interval, seconds (nil: hold/3).
    public var keepaliveTime: Double?
    /// ConnectRetryTime, seconds (RFC 4271 suggests 120).
    public var connectRetryTime: Double
    /// Hold time while waiting for the peer's OPEN (§8: "large", 4 minutes).
    public var openHoldTime: Double
    /// Seconds in Idle after an error before an AutomaticStart; nil: stay
    /// Idle until `manualStart`.
    public var idleHoldTime: Double?
    /// Never connect; wait for the peer to (PassiveTcpEstablishment).
    public var passive: Bool
    /// Offer capability 65 (RFC 6793).
    public var fourOctetAS: Bool
    /// Refuse a peer's hold time below this (and not 0), seconds (≥ 3).
    public var minimumHoldTime: UInt16

    public init(localASN: UInt32, routerID: IPv4Address, localAddress: IPv4Address, peerAddress: IPv4Address,
                peerASN: UInt32, holdTime: UInt16 = 90, keepaliveTime: Double? = nil, connectRetryTime: Double = 5,
                openHoldTime: Double = 240, idleHoldTime: Double? = 1, passive: Bool = false,
                fourOctetAS: Bool = true, minimumHoldTime: UInt16 = 3) {
        precondition(holdTime == 0 || holdTime >= 3, "hold time \(holdTime): 0 or ≥ 3 s (RFC 4271 §4.2)")
        precondition(localASN > 0xFFFF ? fourOctetAS : true, "AS \(localASN) needs 4-octet AS support")
        self.localASN = localASN
        self.routerID = routerID
        self.localAddress = localAddress
        self.peerAddress = peerAddress
        self.peerASN = peerASN
        self.holdTime = holdTime
        self.keepaliveTime = keepaliveTime
        self.connectRetryTime = connectRetryTime
        self.openHoldTime = openHoldTime
        self.idleHoldTime = idleHoldTime
        self.passive = passive
        self.fourOctetAS = fourOctetAS
        self.minimumHoldTime = max(3, minimumHoldTime)
    }

    /// eBGP: the peer is in another AS.
    public var isExternal: Bool { localASN != peerASN }
}

/// What the host feeds a session.
public enum BGPEvent: Equatable, Sendable {
    /// ManualStart (event 1), or with `passive` its passive form (event 4).
    case manualStart
    /// ManualStop (event 2): Cease, administrative shutdown.
    case manualStop
    /// The TCP connection is up, either way (events 16/17).
    case tcpConnected
    /// The TCP connection failed or closed (event 18).
    case tcpFailed
    /// Bytes read from the connection, any cut.
    case received([UInt8])
    /// The neighbour's BFD session went Down (RFC 5882 §4.3): the session
    /// drops the connection and goes Idle like a TCP failure (AutomaticStart
    /// later), without a NOTIFICATION — the path is gone.
    case bfdDown
}

/// A route learned from a peer.
public struct BGPRoute: Equatable, Hashable, Sendable {
    public var prefix: IPv4Prefix
    /// The peer's address (the session's identity in the RIB).
    public var peer: IPv4Address
    public var peerRouterID: IPv4Address
    public var peerASN: UInt32
    public var isExternal: Bool
    public var attributes: BGPPathAttributes
    public init(prefix: IPv4Prefix, peer: IPv4Address, peerRouterID: IPv4Address, peerASN: UInt32,
                isExternal: Bool, attributes: BGPPathAttributes) {
        self.prefix = prefix
        self.peer = peer
        self.peerRouterID = peerRouterID
        self.peerASN = peerASN
        self.isExternal = isExternal
        self.attributes = attributes
    }
    public var nextHop: IPv4Address? { attributes.nextHop }
}

/// What a session asks of its host, in order.
public enum BGPAction: Equatable, Sendable {
    /// Open a TCP connection to the peer's port 179 (from `localAddress`).
    case connect
    /// Write these bytes to the connection.
    case send([UInt8])
    /// Close the connection (after the sends before it).
    case disconnect
    case stateChanged(from: BGPState, to: BGPState, reason: String)
    /// From one UPDATE: routes to install or replace, prefixes to remove
    /// (for `BGPRIB.apply`).
    case routes(peer: IPv4Address, announced: [BGPRoute], withdrawn: [IPv4Prefix])
    /// The session left Established: every route learned from `peer` is gone
    /// (`BGPRIB.dropPeer`).
    case peerDown(peer: IPv4Address)
}

public struct BGPSession: Sendable {
    public let configuration: BGPSessionConfiguration
    public private(set) var state: BGPState = .idle
    /// The peer's OPEN, once received.
    public private(set) var peerOpen: BGPOpen?
    /// Negotiated hold time, seconds (0: none); valid from OpenConfirm on.
    public private(set) var negotiatedHoldTime: UInt16 = 0
    /// Keepalive interval in use, seconds (nil: none).
    public private(set) var keepaliveInterval: Double?
    /// Both sides support 4-octet AS numbers.
    public private(set) var fourOctetAS = false
    /// §8: ConnectRetryCounter (errors since the last Established).
    public private(set) var connectRetryCounter = 0
    /// The last NOTIFICATION sent or received, for status.
    public private(set) var lastNotification: (sent: Bool, notification: BGPNotification)?
    /// Prefixes we announce (Adj-RIB-Out), in the order first announced.
    public private(set) var announced: [IPv4Prefix] = []

    var framer = BGPFramer()
    var connectRetryDeadline: Instant?
    var holdDeadline: Instant?
    var keepaliveDeadline: Instant?
    var idleHoldDeadline: Instant?

    public init(_ configuration: BGPSessionConfiguration) { self.configuration = configuration }

    /// The earliest time a timer fires; call `advance(to:)` then.
    public var nextDeadline: Instant? {
        [connectRetryDeadline, holdDeadline, keepaliveDeadline, idleHoldDeadline].compactMap { $0 }.min()
    }

    /// True in Connect and Active: the host may hand this session an inbound
    /// connection from the peer (see the collision note above).
    public var acceptsConnection: Bool { state == .connect || state == .active }

    public var codecOptions: BGPCodecOptions { BGPCodecOptions(fourOctetAS: fourOctetAS) }

    // MARK: Entry points

    public mutating func handle(_ event: BGPEvent, now: Instant) -> [BGPAction] {
        var out = advance(to: now)
        switch event {
        case .manualStart: start(now: now, reason: "manual start", &out)
        case .manualStop: stop(now: now, &out)
        case .tcpConnected: tcpConnected(now: now, &out)
        case .tcpFailed: tcpFailed(now: now, &out)
        case .received(let bytes): received(bytes, now: now, &out)
        case .bfdDown:
            if state == .openSent || state == .openConfirm || state == .established {
                connectRetryCounter += 1
                goIdle(now: now, "BFD session down", dropConnection: true, &out)
            }
        }
        return out
    }

    /// Fires every timer due at `now`, in deadline order, each at its own
    /// deadline (a late call still gives keepalives their cadence).
    public mutating func advance(to end: Instant) -> [BGPAction] {
        var out: [BGPAction] = []
        while let now = nextDeadline, now <= end {
            let deadline = now
            if deadline == idleHoldDeadline {
                idleHoldDeadline = nil
                start(now: now, reason: "automatic start", &out)
            } else if deadline == holdDeadline {
                holdDeadline = nil
                holdTimerExpired(now: now, &out)
            } else if deadline == connectRetryDeadline {
                connectRetryDeadline = nil
                connectRetryExpired(now: now, &out)
            } else {
                keepaliveDeadline = nil
                if state == .openConfirm || state == .established {
                    send(.keepalive, &out)
                    restartKeepalive(now: now)
                }
            }
        }
        return out
    }

    /// Adds prefixes to announce (NEXT_HOP `localAddress`); sends an UPDATE
    /// now if Established, else on reaching Established.
    public mutating func announce(_ prefixes: [IPv4Prefix], now: Instant) -> [BGPAction] {
        var out = advance(to: now)
        let new = prefixes.map(\.canonical).filter { !announced.contains($0) }
        announced += new
        if state == .established, !new.isEmpty { sendUpdates(BGPUpdate(attributes: localAttributes, nlri: new), now: now, &out) }
        return out
    }

    /// Stops announcing prefixes; sends the withdrawal if Established.
    public mutating func withdraw(_ prefixes: [IPv4Prefix], now: Instant) -> [BGPAction] {
        var out = advance(to: now)
        let gone = prefixes.map(\.canonical).filter { announced.contains($0) }
        announced.removeAll { gone.contains($0) }
        if state == .established, !gone.isEmpty { sendUpdates(BGPUpdate(withdrawn: gone), now: now, &out) }
        return out
    }

    /// The attributes of what we announce: ORIGIN IGP, AS_PATH our AS (eBGP)
    /// or empty (iBGP), NEXT_HOP our address, LOCAL_PREF 100 on iBGP.
    public var localAttributes: BGPPathAttributes {
        let external = configuration.isExternal
        return BGPPathAttributes(origin: .igp, asPath: external ? [.sequence([configuration.localASN])] : [],
                                 nextHop: configuration.localAddress, localPref: external ? nil : 100)
    }

    // MARK: Transitions

    mutating func transition(to new: BGPState, _ reason: String, _ out: inout [BGPAction]) {
        guard new != state else { return }
        let old = state
        state = new
        out.append(.stateChanged(from: old, to: new, reason: reason))
        if old == .established { out.append(.peerDown(peer: configuration.peerAddress)) }
        if new == .established { connectRetryCounter = 0 }
    }

    mutating func send(_ message: BGPMessage, _ out: inout [BGPAction]) {
        if case .notification(let n) = message { lastNotification = (true, n) }
        out.append(.send(message.encode(codecOptions)))
    }

    /// To Idle: timers stopped, connection dropped; AutomaticStart later
    /// unless `automatic` is false (ManualStop).
    mutating func goIdle(now: Instant, _ reason: String, automatic: Bool = true, dropConnection: Bool, _ out: inout [BGPAction]) {
        if dropConnection { out.append(.disconnect) }
        connectRetryDeadline = nil
        holdDeadline = nil
        keepaliveDeadline = nil
        framer = BGPFramer()
        peerOpen = nil
        idleHoldDeadline = automatic ? configuration.idleHoldTime.map { now.adding(seconds: $0) } : nil
        transition(to: .idle, reason, &out)
    }

    /// Sends the NOTIFICATION, closes, goes Idle (§8.2.2's common error path).
    mutating func fail(_ n: BGPNotification, now: Instant, _ reason: String, _ out: inout [BGPAction]) {
        send(.notification(n), &out)
        connectRetryCounter += 1
        goIdle(now: now, "\(reason): sent \(n)", dropConnection: true, &out)
    }

    mutating func start(now: Instant, reason: String, _ out: inout [BGPAction]) {
        guard state == .idle else { return }
        idleHoldDeadline = nil
        connectRetryDeadline = now.adding(seconds: configuration.connectRetryTime)
        if configuration.passive {
            transition(to: .active, "\(reason) (passive): waiting for \(configuration.peerAddress)", &out)
        } else {
            transition(to: .connect, "\(reason): connecting to \(configuration.peerAddress)", &out)
            out.append(.connect)
        }
    }

    mutating func stop(now: Instant, _ out: inout [BGPAction]) {
        switch state {
        case .idle:
            idleHoldDeadline = nil
        case .connect, .active:
            goIdle(now: now, "manual stop", automatic: false, dropConnection: true, &out)
        case .openSent, .openConfirm, .established:
            send(.notification(.ceaseError(subcode: 2)), &out)
            goIdle(now: now, "manual stop: sent cease (administrative shutdown)", automatic: false,
                   dropConnection: true, &out)
        }
    }

    mutating func tcpConnected(now: Instant, _ out: inout [BGPAction]) {
        guard state == .connect || state == .active else { return }
        connectRetryDeadline = nil
        framer = BGPFramer()
        send(.open(BGPOpen(asn: configuration.localASN, holdTime: configuration.holdTime,
                           bgpIdentifier: configuration.routerID, fourOctetAS: configuration.fourOctetAS)), &out)
        holdDeadline = now.adding(seconds: configuration.openHoldTime)
        transition(to: .openSent, "TCP connection up: sent OPEN", &out)
    }

    mutating func tcpFailed(now: Instant, _ out: inout [BGPAction]) {
        switch state {
        case .idle:
            return
        case .openSent:
            // §8.2.2 OpenSent, event 18: close, restart ConnectRetryTimer, Active.
            holdDeadline = nil
            framer = BGPFramer()
            connectRetryDeadline = now.adding(seconds: configuration.connectRetryTime)
            out.append(.disconnect)
            transition(to: .active, "TCP connection failed in OpenSent", &out)
        default:
            connectRetryCounter += 1
            goIdle(now: now, "TCP connection failed or closed", dropConnection: true, &out)
        }
    }

    mutating func connectRetryExpired(now: Instant, _ out: inout [BGPAction]) {
        switch state {
        case .connect:
            out.append(.disconnect)
            connectRetryDeadline = now.adding(seconds: configuration.connectRetryTime)
            out.append(.connect)
        case .active:
            connectRetryDeadline = now.adding(seconds: configuration.connectRetryTime)
            if !configuration.passive {
                transition(to: .connect, "connect retry timer expired", &out)
                out.append(.connect)
            }
        default:
            break
        }
    }

    mutating func holdTimerExpired(now: Instant, _ out: inout [BGPAction]) {
        guard state == .openSent || state == .openConfirm || state == .established else { return }
        fail(.holdTimerExpiredError(), now: now, "hold timer expired", &out)
    }

    mutating func restartHold(now: Instant) {
        holdDeadline = negotiatedHoldTime == 0 ? nil : now.adding(seconds: Double(negotiatedHoldTime))
    }

    mutating func restartKeepalive(now: Instant) {
        keepaliveDeadline = keepaliveInterval.map { now.adding(seconds: $0) }
    }

    mutating func sendUpdates(_ update: BGPUpdate, now: Instant, _ out: inout [BGPAction]) {
        for u in update.split(codecOptions) { send(.update(u), &out) }
        restartKeepalive(now: now)
    }

    // MARK: Messages

    mutating func received(_ bytes: [UInt8], now: Instant, _ out: inout [BGPAction]) {
        guard state == .openSent || state == .openConfirm || state == .established else { return }
        framer.append(bytes)
        while state == .openSent || state == .openConfirm || state == .established {
            let message: BGPMessage
            do {
                guard let (type, body) = try framer.next() else { return }
                message = try BGPMessage.decode(type: type, body: body, codecOptions)
            } catch {
                fail(error, now: now, "malformed message", &out)
                return
            }
            process(message, now: now, &out)
        }
    }

    mutating func process(_ message: BGPMessage, now: Instant, _ out: inout [BGPAction]) {
        if case .notification(let n) = message {
            lastNotification = (false, n)
            connectRetryCounter += 1
            goIdle(now: now, "received NOTIFICATION \(n)", dropConnection: true, &out)
            return
        }
        switch state {
        case .openSent:
            guard case .open(let open) = message else {
                fail(.fsmError(subcode: 1), now: now, "\(message.type == 4 ? "KEEPALIVE" : "message type \(message.type)") in OpenSent", &out)
                return
            }
            do {
                try open.validate(expectedPeerAS: configuration.peerASN, localIdentifier: configuration.routerID,
                                  localAS: configuration.localASN, minimumHoldTime: configuration.minimumHoldTime)
            } catch {
                fail(error, now: now, "unacceptable OPEN", &out)
                return
            }
            peerOpen = open
            fourOctetAS = configuration.fourOctetAS && open.supportsFourOctetAS
            negotiatedHoldTime = min(configuration.holdTime, open.holdTime)
            if negotiatedHoldTime == 0 {
                keepaliveInterval = nil
            } else {
                let third = Double(negotiatedHoldTime) / 3
                keepaliveInterval = configuration.keepaliveTime.map { min($0, third) } ?? third
            }
            send(.keepalive, &out)
            restartKeepalive(now: now)
            restartHold(now: now)
            transition(to: .openConfirm,
                       "OPEN from AS \(open.autonomousSystem) id \(open.bgpIdentifier): hold \(negotiatedHoldTime) s, \(fourOctetAS ? "4" : "2")-octet AS",
                       &out)
        case .openConfirm:
            switch message {
            case .keepalive:
                restartHold(now: now)
                transition(to: .established, "KEEPALIVE received", &out)
                if !announced.isEmpty { sendUpdates(BGPUpdate(attributes: localAttributes, nlri: announced), now: now, &out) }
            default:
                fail(.fsmError(subcode: 2), now: now, "message type \(message.type) in OpenConfirm", &out)
            }
        case .established:
            switch message {
            case .keepalive:
                restartHold(now: now)
            case .update(let update):
                restartHold(now: now)
                learn(update, now: now, &out)
            case .routeRefresh:
                restartHold(now: now)
                if !announced.isEmpty { sendUpdates(BGPUpdate(attributes: localAttributes, nlri: announced), now: now, &out) }
            default:
                fail(.fsmError(subcode: 3), now: now, "message type \(message.type) in Established", &out)
            }
        default:
            break
        }
    }

    mutating func learn(_ update: BGPUpdate, now: Instant, _ out: inout [BGPAction]) {
        var withdrawn = update.withdrawn
        var routes: [BGPRoute] = []
        if !update.nlri.isEmpty {
            let a = update.attributes
            // §6.3: from an external peer, the leftmost AS must be the peer's.
            if configuration.isExternal, a.neighbourAS != configuration.peerASN {
                fail(.malformedASPath(), now: now, "AS_PATH does not start with AS \(configuration.peerASN)", &out)
                return
            }
            // §9.1.2: a path that holds our own AS is a loop: not usable.
            let loop = (a.asPath ?? []).contains { $0.asns.contains(configuration.localASN) }
            if loop {
                withdrawn += update.nlri
            } else {
                let open = peerOpen!
                routes = update.nlri.map {
                    BGPRoute(prefix: $0, peer: configuration.peerAddress, peerRouterID: open.bgpIdentifier,
                             peerASN: configuration.peerASN, isExternal: configuration.isExternal, attributes: a)
                }
            }
        }
        if !routes.isEmpty || !withdrawn.isEmpty {
            out.append(.routes(peer: configuration.peerAddress, announced: routes, withdrawn: withdrawn))
        }
    }
}
