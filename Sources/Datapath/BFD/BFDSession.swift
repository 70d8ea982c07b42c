// One BFD session, asynchronous mode, single hop (RFC 5880 §6.8, RFC 5881),
// pure: packets and time in, packets and state changes out. The host owns the
// UDP socket (destination port 3784, source 49152…65535, TTL 255 out, and only
// TTL 255 in: `bfdAcceptsSingleHop`), demultiplexes received packets to the
// session by Your Discriminator (or, while it is 0, by the peer's address),
// and calls `advance(to:)` at `nextDeadline`.
//
// Built: the three-way handshake (Down → Init → Up), Detection Time
// (§6.8.4: the remote Detect Mult × max(our RequiredMinRxInterval, the
// remote's DesiredMinTxInterval); when the remote lowers its DesiredMinTx,
// the packet that says so still arms the timer with the old value, since the
// remote's next packet may be scheduled at the old rate — BIRD's is), slow start at ≥ 1 s DesiredMinTxInterval
// while not Up (§6.8.3), Poll/Final for every parameter change while Up
// (including the switch from the slow rate to the configured one on reaching
// Up), jitter (§6.8.7: 0–25 % shorter, 10–25 % with Detect Mult 1) from an
// injected deterministic source, AdminDown. Not built: demand mode, echo,
// authentication (a packet with the A bit is discarded by the codec).

import Wire

public struct BFDSessionConfiguration: Equatable, Sendable {
    /// bfd.LocalDiscr: nonzero, unique among the host's sessions.
    public var localDiscriminator: UInt32
    /// The interval we want to send at once Up (the `interval` key), µs.
    public var desiredMinTxInterval: UInt32
    /// The fastest we accept packets, µs (the `interval` key too).
    public var requiredMinRxInterval: UInt32
    /// bfd.DetectMult (the `multiplier` key).
    public var detectMultiplier: UInt8
    /// The Passive role (§6.1): send nothing while bfd.RemoteDiscr is 0
    /// (§6.8.7), i.e. until the remote has spoken, and again once the
    /// Detection Time has passed without it.
    public var passive = false

    public init(localDiscriminator: UInt32, desiredMinTxInterval: UInt32, requiredMinRxInterval: UInt32,
                detectMultiplier: UInt8) {
        precondition(localDiscriminator != 0 && detectMultiplier != 0 && desiredMinTxInterval != 0)
        self.localDiscriminator = localDiscriminator
        self.desiredMinTxInterval = desiredMinTxInterval
        self.requiredMinRxInterval = requiredMinRxInterval
        self.detectMultiplier = detectMultiplier
    }

    /// `bfd: { interval, multiplier }`: both intervals the same.
    public init(localDiscriminator: UInt32, interval microseconds: UInt32, multiplier: UInt8) {
        self.init(localDiscriminator: localDiscriminator, desiredMinTxInterval: microseconds,
                  requiredMinRxInterval: microseconds, detectMultiplier: multiplier)
    }
}

/// The jitter source (§6.8.7), injected so runs repeat: SplitMix64 from a
/// seed, or a fixed fraction.
public struct BFDJitter: Sendable {
    var state: UInt64
    let fixed: Double?
    /// Pseudo-random jitter from `seed`.
    public init(seed: UInt64) {
        state = seed
        fixed = nil
    }
    /// Always this fraction of the allowed range (0: the longest interval the
    /// RFC allows, 1: the shortest).
    public init(fixed: Double) {
        state = 0
        self.fixed = fixed
    }
    mutating func unit() -> Double {
        if let fixed { return fixed }
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
}

public enum BFDAction: Equatable, Sendable {
    /// Send this control packet (UDP to 3784, TTL 255).
    case send(BFDControlPacket)
    case stateChanged(from: BFDState, to: BFDState, diagnostic: BFDDiagnostic)
}

public struct BFDSession: Sendable {
    public let configuration: BFDSessionConfiguration
    public private(set) var state: BFDState = .adminDown
    public private(set) var remoteState: BFDState = .down
    public private(set) var remoteDiscriminator: UInt32 = 0
    public private(set) var localDiagnostic: BFDDiagnostic = .none
    /// bfd.RemoteMinRxInterval, µs (1 until a packet arrives, §6.8.1).
    public private(set) var remoteMinRxInterval: UInt32 = 1
    /// The remote's Desired Min TX Interval and Detect Mult, last received.
    public private(set) var remoteDesiredMinTxInterval: UInt32 = 0
    public private(set) var remoteDetectMultiplier: UInt8 = 0
    /// A Poll Sequence is running (our packets carry P until a Final).
    public private(set) var pollActive = false

    /// What our packets say now (bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval).
    public private(set) var advertisedTx: UInt32
    public private(set) var advertisedRx: UInt32
    /// What timing uses until a Poll Sequence ends (§6.8.3).
    var effectiveTx: UInt32
    var effectiveRx: UInt32
    /// Parameters asked for while Up: advertised once the session is Up.
    var configuredTx: UInt32
    var configuredRx: UInt32
    public private(set) var detectMultiplier: UInt8

    var jitter: BFDJitter
    var txDeadline: Instant?
    var detectionDeadline: Instant?

    /// Slow start (§6.8.3): DesiredMinTxInterval while not Up, µs.
    public static let slowInterval: UInt32 = 1_000_000

    public init(_ configuration: BFDSessionConfiguration, jitter: BFDJitter) {
        self.configuration = configuration
        self.jitter = jitter
        configuredTx = configuration.desiredMinTxInterval
        configuredRx = configuration.requiredMinRxInterval
        advertisedTx = max(configuredTx, Self.slowInterval)
        advertisedRx = configuredRx
        effectiveTx = advertisedTx
        effectiveRx = advertisedRx
        detectMultiplier = configuration.detectMultiplier
    }

    public var nextDeadline: Instant? { [txDeadline, detectionDeadline].compactMap { $0 }.min() }

    /// The interval we send at now, µs (§6.8.7): max(our DesiredMinTx, the
    /// remote's RequiredMinRx); nil when the remote asked for none (0).
    public var transmitInterval: UInt32? {
        remoteMinRxInterval == 0 ? nil : max(effectiveTx, remoteMinRxInterval)
    }

    /// Detection Time (§6.8.4), µs: remote Detect Mult × max(our
    /// RequiredMinRx, the remote's DesiredMinTx); nil before a packet.
    public var detectionTime: UInt64? {
        guard remoteDetectMultiplier != 0 else { return nil }
        return UInt64(remoteDetectMultiplier) * UInt64(max(effectiveRx, remoteDesiredMinTxInterval))
    }

    // MARK: Entry points

    /// AdminDown → Down: starts sending (§6.8.16's leaving AdminDown).
    public mutating func start(now: Instant) -> [BFDAction] {
        var out = advance(to: now)
        guard state == .adminDown else { return out }
        change(to: .down, diagnostic: .none, &out)
        sendPeriodic(now: now, &out)
        return out
    }

    /// → AdminDown (diag 7); keeps sending so the peer sees it (§6.8.16).
    public mutating func stop(now: Instant) -> [BFDAction] {
        var out = advance(to: now)
        guard state != .adminDown else { return out }
        detectionDeadline = nil
        change(to: .adminDown, diagnostic: .administrativelyDown, &out)
        pollActive = false
        out.append(.send(packet()))
        return out
    }

    /// New timing parameters (§6.8.3): while Up they are advertised with a
    /// Poll Sequence, and an increase of our TX or a decrease of our RX takes
    /// effect only when the peer's Final arrives.
    public mutating func setParameters(desiredMinTxInterval: UInt32, requiredMinRxInterval: UInt32,
                                       detectMultiplier: UInt8? = nil, now: Instant) -> [BFDAction] {
        var out = advance(to: now)
        configuredTx = desiredMinTxInterval
        configuredRx = requiredMinRxInterval
        if let detectMultiplier { self.detectMultiplier = detectMultiplier }
        applyParameters(now: now, &out)
        return out
    }

    /// A packet the host received for this session (already past
    /// `BFDControlPacket.decode` and the TTL check).
    public mutating func receive(_ p: BFDControlPacket, now: Instant) -> [BFDAction] {
        var out = advance(to: now)
        // §6.8.6, the checks that need the session.
        if p.yourDiscriminator != 0 {
            guard p.yourDiscriminator == configuration.localDiscriminator else { return out }
        } else if p.state == .up || p.state == .initializing {
            return out
        }
        let previousRemoteTx = remoteDesiredMinTxInterval
        remoteDiscriminator = p.myDiscriminator
        remoteState = p.state
        remoteMinRxInterval = p.requiredMinRxInterval
        remoteDesiredMinTxInterval = p.desiredMinTxInterval
        remoteDetectMultiplier = p.detectMultiplier
        if p.final, pollActive {
            pollActive = false
            effectiveTx = advertisedTx
            effectiveRx = advertisedRx
        }
        guard state != .adminDown else { return out }
        if p.state == .adminDown {
            if state != .down { change(to: .down, diagnostic: .neighborSignaledSessionDown, &out) }
        } else {
            switch (state, p.state) {
            case (.down, .down): change(to: .initializing, diagnostic: .none, &out)
            case (.down, .initializing): change(to: .up, diagnostic: .none, &out)
            case (.initializing, .initializing), (.initializing, .up): change(to: .up, diagnostic: .none, &out)
            case (.up, .down): change(to: .down, diagnostic: .neighborSignaledSessionDown, &out)
            default: break
            }
        }
        applyParameters(now: now, &out)
        if p.poll {
            // §6.8.7: a Final at once, whatever the interval.
            var f = packet()
            f.poll = false
            f.final = true
            out.append(.send(f))
        }
        // §6.8.4: the detection timer restarts with every packet (while the
        // session is not Down: in Down nothing is detected).
        if state == .initializing || state == .up, var t = detectionTime {
            // A remote that lowers its Desired Min TX (BIRD does on reaching
            // Up) may have its next packet already scheduled at the old
            // interval: the packet announcing the lower value arms the timer
            // with the old one; the packets after it with the new.
            if p.desiredMinTxInterval < previousRemoteTx {
                t = max(t, UInt64(remoteDetectMultiplier) * UInt64(max(effectiveRx, previousRemoteTx)))
            }
            detectionDeadline = now.adding(nanoseconds: t * 1000)
        } else {
            detectionDeadline = nil
        }
        // The remote may have asked for a faster rate: the next packet no
        // later than one interval from now.
        if let interval = transmitInterval {
            let latest = now.adding(nanoseconds: UInt64(interval) * 1000)
            if let next = txDeadline {
                if next > latest { txDeadline = latest }
            } else {
                sendPeriodic(now: now, &out)
            }
        }
        return out
    }

    /// Fires what is due: detection (→ Down, diag 1, at its deadline) and
    /// periodic packets (one, scheduled from `now`, if the call is late).
    public mutating func advance(to now: Instant) -> [BFDAction] {
        var out: [BFDAction] = []
        while let deadline = nextDeadline, deadline <= now {
            if deadline == detectionDeadline {
                detectionDeadline = nil
                if state == .initializing || state == .up {
                    // §6.8.1: RemoteDiscr is zeroed when the Detection Time passes.
                    remoteDiscriminator = 0
                    remoteDetectMultiplier = 0
                    change(to: .down, diagnostic: .controlDetectionTimeExpired, &out)
                    applyParameters(now: deadline, &out)
                }
            } else {
                // One packet, however late the call: the next one interval
                // from now, not a burst to catch up.
                txDeadline = nil
                sendPeriodic(now: now, &out)
            }
        }
        return out
    }

    // MARK: Inside

    mutating func change(to new: BFDState, diagnostic: BFDDiagnostic, _ out: inout [BFDAction]) {
        guard new != state else { return }
        let old = state
        state = new
        localDiagnostic = diagnostic
        out.append(.stateChanged(from: old, to: new, diagnostic: diagnostic))
    }

    /// What we advertise given the state: the slow rate while not Up; a
    /// change while Up starts a Poll Sequence.
    mutating func applyParameters(now: Instant, _ out: inout [BFDAction]) {
        let tx = state == .up ? configuredTx : max(configuredTx, Self.slowInterval)
        let rx = configuredRx
        guard tx != advertisedTx || rx != advertisedRx else { return }
        advertisedTx = tx
        advertisedRx = rx
        if state == .up {
            // Safe at once: sending faster, accepting slower.
            effectiveTx = min(effectiveTx, tx)
            effectiveRx = max(effectiveRx, rx)
            if !pollActive {
                pollActive = true
                // The first packet of the sequence goes now.
                txDeadline = nil
                sendPeriodic(now: now, &out)
            }
        } else {
            pollActive = false
            effectiveTx = tx
            effectiveRx = rx
        }
    }

    func packet() -> BFDControlPacket {
        BFDControlPacket(diagnostic: localDiagnostic, state: state, poll: pollActive, detectMultiplier: detectMultiplier,
                         myDiscriminator: configuration.localDiscriminator, yourDiscriminator: remoteDiscriminator,
                         desiredMinTxInterval: advertisedTx, requiredMinRxInterval: advertisedRx)
    }

    mutating func sendPeriodic(now: Instant, _ out: inout [BFDAction]) {
        guard let interval = transmitInterval, !(configuration.passive && remoteDiscriminator == 0) else {
            txDeadline = nil
            return
        }
        out.append(.send(packet()))
        // §6.8.7: 0–25 % shorter; 10–25 % with Detect Mult 1.
        let low = detectMultiplier == 1 ? 0.10 : 0.0
        let reduction = low + (0.25 - low) * jitter.unit()
        txDeadline = now.adding(nanoseconds: UInt64(Double(interval) * 1000 * (1 - reduction)))
    }
}
