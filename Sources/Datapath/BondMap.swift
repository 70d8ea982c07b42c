import Wire

// Active-backup bonds: the one mapping between the ports an element sees
// (logical: a bond is one port) and the node's ports on links (physical:
// each member). The live daemon (`LivePorts`) and the simulator
// (`SimPorts`) both go through it, so a failover happens the same way in
// both. Pure: carrier changes come in, failovers come out.

/// Which physical port each logical port uses, and the bonds' failover.
/// As Linux's active-backup mode: frames leave on the active member only,
/// and are taken in on it only (what arrives on a backup is dropped and
/// counted). The first member starts active and a member stays active
/// while it has carrier; when it loses it, the first member with carrier
/// (in list order) takes over (`primary_reselect=failure`: a member that
/// comes back does not take over again, which would move the bond twice
/// per failure, the second time towards a switch that may not forward
/// yet). A bond has carrier while any member has.
public struct BondMap: Sendable, Equatable {
    /// The physical members of each logical port, in priority order (a
    /// plain port: itself alone).
    public let members: [[Int]]
    /// The logical port of each physical port.
    public let logicalPort: [Int]
    /// Carrier of each physical port.
    public private(set) var carrier: [Bool]
    /// The active member of each logical port: it has carrier, or no
    /// member has (then the one that was last active).
    public private(set) var active: [Int]
    /// Frames that arrived on a backup member and were dropped (`bond-backup`).
    public var backupDrops: UInt64 = 0

    public static let backupDrop = DropReason("bond-backup")

    /// MEMBERS: the physical ports of each logical port, in priority order;
    /// every physical port in exactly one. Every port starts with carrier.
    public init(members: [[Int]]) {
        self.members = members
        let physical = members.reduce(0) { $0 + $1.count }
        var logical = Array(repeating: 0, count: physical)
        for (l, ports) in members.enumerated() { for p in ports where p < physical { logical[p] = l } }
        logicalPort = logical
        carrier = Array(repeating: true, count: physical)
        active = members.map { $0.first ?? 0 }
    }

    /// Logical ports (what the element has).
    public var logicalCount: Int { members.count }
    /// Physical ports (the node's link ends).
    public var physicalCount: Int { logicalPort.count }

    /// The physical port a frame for logical port `logical` leaves on.
    @inlinable @inline(__always)
    public func transmitPort(_ logical: Int) -> Int { active[logical] }

    /// The logical port a frame that arrived on physical port `physical`
    /// enters the element on; nil when it is a backup member's (drop it).
    @inlinable @inline(__always)
    public func receivePort(_ physical: Int) -> Int? {
        let l = logicalPort[physical]
        return active[l] == physical ? l : nil
    }

    /// Whether logical port `logical` has carrier (any member has).
    public func hasCarrier(logical: Int) -> Bool {
        members[logical].contains { carrier[$0] }
    }

    /// Whether logical port `logical` is a bond (more than one member).
    public func isBond(_ logical: Int) -> Bool { members[logical].count > 1 }

    /// What a carrier change did to its logical port.
    public struct Change: Equatable, Sendable {
        /// The logical port of the physical port that changed.
        public var logical: Int
        /// The logical port's own carrier, when it changed (the element is told).
        public var carrier: Bool?
        /// The new active member, when another member took over (gratuitous
        /// ARPs go out on it, so switches learn the move at once).
        public var failover: (from: Int, to: Int)?

        public init(logical: Int, carrier: Bool?, failover: (from: Int, to: Int)? = nil) {
            self.logical = logical
            self.carrier = carrier
            self.failover = failover
        }

        public static func == (a: Change, b: Change) -> Bool {
            a.logical == b.logical && a.carrier == b.carrier && a.failover?.from == b.failover?.from && a.failover?.to == b.failover?.to
        }
    }

    /// Physical port `physical` gained or lost carrier.
    public mutating func setCarrier(_ physical: Int, up: Bool) -> Change {
        let l = logicalPort[physical]
        let wasUp = hasCarrier(logical: l)
        carrier[physical] = up
        let isUp = hasCarrier(logical: l)
        var change = Change(logical: l, carrier: wasUp == isUp ? nil : isUp)
        let old = active[l]
        if !carrier[old], let first = members[l].first(where: { carrier[$0] }) {
            active[l] = first
            change.failover = (old, first)
        }
        return change
    }
}

extension Emitter {
    /// A gratuitous ARP (a request for ADDRESS from ADDRESS, to broadcast)
    /// on PORT with source MAC: switches learn where MAC is now. False if
    /// the emitter was full.
    @discardableResult
    public mutating func gratuitousARP(on port: PortID, mac: MACAddress, address: IPv4Address) -> Bool {
        emit(on: port) { slot in
            EthernetRepr(destination: .broadcast, source: mac, etherType: .arp)
                .emit(into: EthernetMutableHeader(unchecked: slot))
            ARPRepr(operation: .request, senderHardwareAddress: mac, senderProtocolAddress: address,
                    targetHardwareAddress: .zero, targetProtocolAddress: address)
                .emit(into: ARPMutableHeader(unchecked: slot.wireSlice(14..<42)))
            return 42
        }
    }
}
