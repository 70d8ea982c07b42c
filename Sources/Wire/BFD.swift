// BFD control packets (RFC 5880 §4.1), carried in UDP to port 3784 for single
// hop (RFC 5881).
//
//   0       1       2       3
//  +-------+-------+-------+-------+
//  |V|Diag |S|PFCADM| mult | length|    V: 3 bits, Diag: 5; Sta: 2 bits + 6 flags
//  +-------+-------+-------+-------+
//  |        My Discriminator       |
//  |       Your Discriminator      |
//  |  Desired Min TX Interval (µs) |
//  | Required Min RX Interval (µs) |
//  |Required Min Echo RX Interval  |
//  +-------------------------------+
//  | authentication (if A) ...
//
// wirelab does not authenticate: a packet with the A bit set is refused
// (`BFDPacketError.authenticationNotSupported`), as §6.8.6 says for a session
// without authentication configured.

/// UDP destination port of single-hop BFD control packets (RFC 5881 §4).
public let bfdControlPort: UInt16 = 3784
/// UDP destination port of BFD echo packets (RFC 5881 §4); echo is not built.
public let bfdEchoPort: UInt16 = 3785

/// BFD session state (RFC 5880 §4.1 Sta).
public enum BFDState: UInt8, Sendable, CustomStringConvertible {
    case adminDown = 0, down = 1, initializing = 2, up = 3
    public var description: String {
        switch self {
        case .adminDown: "AdminDown"
        case .down: "Down"
        case .initializing: "Init"
        case .up: "Up"
        }
    }
}

/// Diagnostic codes (RFC 5880 §4.1), an open set.
public struct BFDDiagnostic: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0x1F }
    public static let none = Self(rawValue: 0)
    public static let controlDetectionTimeExpired = Self(rawValue: 1)
    public static let echoFunctionFailed = Self(rawValue: 2)
    public static let neighborSignaledSessionDown = Self(rawValue: 3)
    public static let forwardingPlaneReset = Self(rawValue: 4)
    public static let pathDown = Self(rawValue: 5)
    public static let concatenatedPathDown = Self(rawValue: 6)
    public static let administrativelyDown = Self(rawValue: 7)
    public static let reverseConcatenatedPathDown = Self(rawValue: 8)
    public var description: String {
        let names = ["No Diagnostic", "Control Detection Time Expired", "Echo Function Failed",
                     "Neighbor Signaled Session Down", "Forwarding Plane Reset", "Path Down",
                     "Concatenated Path Down", "Administratively Down", "Reverse Concatenated Path Down"]
        return Int(rawValue) < names.count ? names[Int(rawValue)] : "diag \(rawValue)"
    }
}

/// Why a received control packet is discarded (RFC 5880 §6.8.6's checks that
/// do not need the session).
public enum BFDPacketError: Error, Equatable, Sendable {
    /// Fewer than 24 bytes, or fewer than the Length field says.
    case truncated
    /// Version not 1.
    case badVersion
    /// Length below 24 (26 with the A bit).
    case badLength
    case zeroDetectMultiplier
    /// The M bit is set (multipoint, reserved).
    case multipoint
    case zeroMyDiscriminator
    /// The A bit is set; wirelab has no authentication configured.
    case authenticationNotSupported
}

/// A BFD control packet (the value; `encode`/`decode` are the wire form).
public struct BFDControlPacket: Equatable, Hashable, Sendable {
    public var version: UInt8 = 1
    public var diagnostic: BFDDiagnostic
    public var state: BFDState
    public var poll: Bool
    public var final: Bool
    /// C: the forwarding plane does not share fate with the control plane.
    public var controlPlaneIndependent: Bool
    public var authenticationPresent: Bool
    /// D: demand mode (not built; always false when sent).
    public var demand: Bool
    public var multipoint: Bool
    public var detectMultiplier: UInt8
    public var myDiscriminator: UInt32
    public var yourDiscriminator: UInt32
    /// Microseconds.
    public var desiredMinTxInterval: UInt32
    /// Microseconds.
    public var requiredMinRxInterval: UInt32
    /// Microseconds; 0: this system does not take echo packets.
    public var requiredMinEchoRxInterval: UInt32

    public init(diagnostic: BFDDiagnostic = .none, state: BFDState, poll: Bool = false, final: Bool = false,
                controlPlaneIndependent: Bool = false, authenticationPresent: Bool = false, demand: Bool = false,
                multipoint: Bool = false, detectMultiplier: UInt8, myDiscriminator: UInt32, yourDiscriminator: UInt32,
                desiredMinTxInterval: UInt32, requiredMinRxInterval: UInt32, requiredMinEchoRxInterval: UInt32 = 0) {
        self.diagnostic = diagnostic
        self.state = state
        self.poll = poll
        self.final = final
        self.controlPlaneIndependent = controlPlaneIndependent
        self.authenticationPresent = authenticationPresent
        self.demand = demand
        self.multipoint = multipoint
        self.detectMultiplier = detectMultiplier
        self.myDiscriminator = myDiscriminator
        self.yourDiscriminator = yourDiscriminator
        self.desiredMinTxInterval = desiredMinTxInterval
        self.requiredMinRxInterval = requiredMinRxInterval
        self.requiredMinEchoRxInterval = requiredMinEchoRxInterval
    }

    /// Length in bytes of a packet without authentication.
    public static let length = 24

    /// The 24 bytes (no authentication section is ever written).
    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.length)
        b[0] = version << 5 | diagnostic.rawValue
        var flags: UInt8 = state.rawValue << 6
        if poll { flags |= 0x20 }
        if final { flags |= 0x10 }
        if controlPlaneIndependent { flags |= 0x08 }
        if authenticationPresent { flags |= 0x04 }
        if demand { flags |= 0x02 }
        if multipoint { flags |= 0x01 }
        b[1] = flags
        b[2] = detectMultiplier
        b[3] = UInt8(Self.length)
        for (offset, value) in [(4, myDiscriminator), (8, yourDiscriminator), (12, desiredMinTxInterval),
                                (16, requiredMinRxInterval), (20, requiredMinEchoRxInterval)] {
            b[offset] = UInt8(value >> 24)
            b[offset + 1] = UInt8(value >> 16 & 0xFF)
            b[offset + 2] = UInt8(value >> 8 & 0xFF)
            b[offset + 3] = UInt8(value & 0xFF)
        }
        return b
    }

    /// Reads a UDP payload and applies RFC 5880 §6.8.6's packet checks, in
    /// its order (version, length, detect mult, M, My Discriminator; A last,
    /// since it is refused only because no authentication is configured).
    /// Your Discriminator 0 with state Up/Init is the session's check.
    public static func decode(_ b: some RandomAccessCollection<UInt8>) throws(BFDPacketError) -> BFDControlPacket {
        let b = Array(b)
        guard b.count >= length else { throw .truncated }
        guard b[0] >> 5 == 1 else { throw .badVersion }
        let a = b[1] & 0x04 != 0
        let declared = Int(b[3])
        guard declared >= (a ? 26 : 24) else { throw .badLength }
        guard declared <= b.count else { throw .truncated }
        guard b[2] != 0 else { throw .zeroDetectMultiplier }
        guard b[1] & 0x01 == 0 else { throw .multipoint }
        func u32(_ i: Int) -> UInt32 { UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3]) }
        guard u32(4) != 0 else { throw .zeroMyDiscriminator }
        guard !a else { throw .authenticationNotSupported }
        return BFDControlPacket(diagnostic: BFDDiagnostic(rawValue: b[0] & 0x1F), state: BFDState(rawValue: b[1] >> 6)!,
                                poll: b[1] & 0x20 != 0, final: b[1] & 0x10 != 0,
                                controlPlaneIndependent: b[1] & 0x08 != 0, authenticationPresent: a,
                                demand: b[1] & 0x02 != 0, multipoint: false, detectMultiplier: b[2],
                                myDiscriminator: u32(4), yourDiscriminator: u32(8), desiredMinTxInterval: u32(12),
                                requiredMinRxInterval: u32(16), requiredMinEchoRxInterval: u32(20))
    }
}

/// RFC 5881 §5 (GTSM): a single-hop control packet must arrive with IP TTL
/// 255 (and be sent with 255), or it may have crossed a router: discard it.
/// `ttl` is what the receive path read (IP_RECVTTL's cmsg, or the frame's
/// IPv4 header); `destinationPort` must be 3784.
public func bfdAcceptsSingleHop(ttl: UInt8, destinationPort: UInt16) -> Bool {
    ttl == 255 && destinationPort == bfdControlPort
}

/// RFC 5881 §4: the UDP source port of a session's packets: 49152...65535,
/// one per session.
public let bfdSourcePortRange: ClosedRange<UInt16> = 49152...65535
