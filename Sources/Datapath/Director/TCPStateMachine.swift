// IPVS's connection states and its TCP state machine, transcribed from
// net/netfilter/ipvs/ip_vs_proto_tcp.c (tcp_states[], tcp_state_idx(),
// set_tcp_state(), tcp_timeouts[]): a table indexed by direction, the
// packet's dominant flag and the current state.

/// The state of a director connection. TCP uses IPVS's eleven TCP states;
/// UDP connections have the single `.udp` state; persistence templates sit
/// in `.none`.
public enum ConnectionState: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case established
    case synSent
    case synRecv
    case finWait
    case timeWait
    case close
    case closeWait
    case lastAck
    case listen
    case synAck
    case udp

    /// The name ipvsadm -Lnc prints.
    public var description: String {
        switch self {
        case .none: "NONE"
        case .established: "ESTABLISHED"
        case .synSent: "SYN_SENT"
        case .synRecv: "SYN_RECV"
        case .finWait: "FIN_WAIT"
        case .timeWait: "TIME_WAIT"
        case .close: "CLOSE"
        case .closeWait: "CLOSE_WAIT"
        case .lastAck: "LAST_ACK"
        case .listen: "LISTEN"
        case .synAck: "SYNACK"
        case .udp: "UDP"
        }
    }
}

/// Which way a packet travels relative to the connection, as IPVS names it.
public enum PacketDirection: UInt8, Hashable, Sendable {
    /// Client → director (→ real).
    case input = 0
    /// Real → director (→ client): NAT and FULLNAT replies.
    case output = 1
    /// Client → director on a connection whose replies the director never
    /// sees (DR, TUN): IPVS's TCP_DIR_INPUT_ONLY table.
    case inputOnly = 2
}

/// Per-state timeouts in seconds; the defaults are IPVS's (tcp_timeouts[],
/// udp_timeouts[]).
public struct ConnectionTimeouts: Hashable, Sendable {
    public var none: Double = 2
    public var established: Double = 900
    public var synSent: Double = 120
    public var synRecv: Double = 60
    public var finWait: Double = 120
    public var timeWait: Double = 120
    public var close: Double = 10
    public var closeWait: Double = 60
    public var lastAck: Double = 30
    public var listen: Double = 120
    public var synAck: Double = 120
    public var udp: Double = 300

    public init() {}

    public func seconds(_ state: ConnectionState) -> Double {
        switch state {
        case .none: none
        case .established: established
        case .synSent: synSent
        case .synRecv: synRecv
        case .finWait: finWait
        case .timeWait: timeWait
        case .close: close
        case .closeWait: closeWait
        case .lastAck: lastAck
        case .listen: listen
        case .synAck: synAck
        case .udp: udp
        }
    }

    /// Nanoseconds by state raw value, for the per-packet path.
    var nanosecondTable: [UInt64] {
        ConnectionState.allCases.map { UInt64(max(0, seconds($0)) * 1e9) }
    }
}

/// IPVS's TCP state table.
public enum TCPStateMachine {
    private static let NO: UInt8 = 0, ES: UInt8 = 1, SS: UInt8 = 2, SR: UInt8 = 3, FW: UInt8 = 4, TW: UInt8 = 5
    private static let CL: UInt8 = 6, CW: UInt8 = 7, LA: UInt8 = 8, LI: UInt8 = 9, SA: UInt8 = 10

    /// [direction * 4 + event][state], events syn=0 fin=1 ack=2 rst=3,
    /// rows exactly as in mainline's tcp_states[] since sloppy_tcp came in
    /// (Linux 3.12): an ACK in NONE goes to ESTABLISHED (before, CLOSE), so
    /// a connection a sloppy director schedules from a mid-stream ACK is
    /// ESTABLISHED at once. Without sloppy only a SYN creates an entry, and
    /// no entry sees NONE again.
    @usableFromInline static let table: [UInt8] = [
        // INPUT      sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA
        /* syn */     SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR,
        /* fin */     CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW,
        /* ack */     ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES,
        /* rst */     CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR,
        // OUTPUT
        /* syn */     SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR,
        /* fin */     TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW,
        /* ack */     ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES,
        /* rst */     CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL,
        // INPUT-ONLY
        /* syn */     SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR,
        /* fin */     CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW,
        /* ack */     ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES,
        /* rst */     CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL,
    ]

    /// tcp_state_idx(): RST wins, then SYN, FIN, ACK; -1 when none is set.
    @inlinable public static func event(flags: UInt8) -> Int {
        if flags & TCPFlagBits.rst != 0 { return 3 }
        if flags & TCPFlagBits.syn != 0 { return 0 }
        if flags & TCPFlagBits.fin != 0 { return 1 }
        if flags & TCPFlagBits.ack != 0 { return 2 }
        return -1
    }

    /// The state after a packet with `flags` travelling `direction`.
    /// A segment with none of SYN/FIN/ACK/RST moves to CLOSE, as in
    /// set_tcp_state(). `.udp` (not a TCP state) stays as it is.
    @inlinable public static func next(_ state: ConnectionState, flags: UInt8, direction: PacketDirection) -> ConnectionState {
        guard state != .udp else { return .udp }
        let e = event(flags: flags)
        guard e >= 0 else { return .close }
        let row = Int(direction.rawValue) &* 4 &+ e
        return ConnectionState(rawValue: table[row &* 11 &+ Int(state.rawValue)])!
    }
}
