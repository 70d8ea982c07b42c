import Testing
import Wire
@testable import Datapath

/// Active-backup bonds as `BondMap` keeps them: which member carries a
/// logical port's frames, what a carrier change does, and the gratuitous
/// ARP a failover sends.
@Suite struct BondMapTests {
    /// Logical 0: a plain port (physical 2); logical 1: a bond over
    /// physical 0 then 1 (the order written, not the port numbers).
    static func map() -> BondMap { BondMap(members: [[2], [0, 1]]) }

    @Test func theFirstMemberIsActiveAndOnlyItTakesFramesIn() {
        let m = Self.map()
        #expect(m.logicalCount == 2 && m.physicalCount == 3)
        #expect(m.transmitPort(0) == 2 && m.transmitPort(1) == 0)
        #expect(m.receivePort(2) == 0, "a plain port is its own logical port")
        #expect(m.receivePort(0) == 1, "the active member")
        #expect(m.receivePort(1) == nil, "a backup member's frames are dropped")
        #expect(m.isBond(1) && !m.isBond(0))
    }

    @Test func losingTheActiveMemberFailsOverWithoutTheBondLosingCarrier() {
        var m = Self.map()
        let change = m.setCarrier(0, up: false)
        #expect(change.logical == 1)
        #expect(change.carrier == nil, "the bond keeps carrier while a member has it: the element is not told")
        #expect(change.failover?.from == 0 && change.failover?.to == 1)
        #expect(m.transmitPort(1) == 1 && m.receivePort(1) == 1 && m.receivePort(0) == nil)
        #expect(m.hasCarrier(logical: 1))
    }

    @Test func aBackupLosingCarrierChangesNothingTheElementSees() {
        var m = Self.map()
        let change = m.setCarrier(1, up: false)
        #expect(change == BondMap.Change(logical: 1, carrier: nil, failover: nil))
        #expect(m.transmitPort(1) == 0)
    }

    @Test func theBondLosesCarrierWithItsLastMemberAndAMemberBackStaysActive() {
        var m = Self.map()
        _ = m.setCarrier(0, up: false)
        let last = m.setCarrier(1, up: false)
        #expect(last.carrier == false, "no member has carrier: the bond is down")
        #expect(last.failover == nil, "nothing to fail over to; the last active stays named")
        #expect(m.transmitPort(1) == 1)
        // The second member comes back first: it is active, the bond is up.
        let back = m.setCarrier(1, up: true)
        #expect(back.carrier == true && back.failover == nil)
        // The first member returns: the active one keeps carrier, so it stays.
        let first = m.setCarrier(0, up: true)
        #expect(first == BondMap.Change(logical: 1, carrier: nil, failover: nil))
        #expect(m.receivePort(1) == 1 && m.receivePort(0) == nil)
        // Until it fails: then the first member in the list takes over.
        let again = m.setCarrier(1, up: false)
        #expect(again.failover?.from == 1 && again.failover?.to == 0)
    }

    @Test func aBondWithNoLiveMemberTakesTheFirstToComeBack() {
        var m = Self.map()
        _ = m.setCarrier(0, up: false)
        _ = m.setCarrier(1, up: false)   // active: 1, no carrier anywhere
        let back = m.setCarrier(0, up: true)
        #expect(back.carrier == true)
        #expect(back.failover?.from == 1 && back.failover?.to == 0)
    }

    @Test func aPlainPortPassesItsCarrierStraightThrough() {
        var m = Self.map()
        #expect(m.setCarrier(2, up: false) == BondMap.Change(logical: 0, carrier: false))
        #expect(m.setCarrier(2, up: true) == BondMap.Change(logical: 0, carrier: true))
    }

    /// The frame a failover announces the bond with: a broadcast ARP request
    /// from and for the address, with the bond's MAC as sender.
    @Test func theGratuitousARPIsARequestForItsOwnAddress() throws {
        var emit = Emitter(slots: 4)
        let mac = MACAddress(0x02, 0, 0, 0, 0, 0x11)
        let address = IPv4Address(10, 0, 1, 1)
        let sent = emit.gratuitousARP(on: PortID(1), mac: mac, address: address)
        #expect(sent)
        #expect(emit.count == 1)
        let (port, bytes) = emit.frame(at: 0)
        #expect(port == PortID(1) && bytes.count == 42)
        #expect(Array(bytes[0..<6]) == [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        #expect(Array(bytes[6..<12]) == [0x02, 0, 0, 0, 0, 0x11])
        #expect(Array(bytes[12..<14]) == [0x08, 0x06])
        let arp = try ARPHeader(validating: UnsafeRawBufferPointer(rebasing: bytes[14..<42]))
        #expect(arp.operation == .request)
        #expect(arp.senderHardwareAddress == mac)
        #expect(arp.senderProtocolAddress == address && arp.targetProtocolAddress == address)
        #expect(arp.targetHardwareAddress == .zero)
    }
}

/// A node with two ports on one segment (two bonds, two NICs) hears an ARP
/// request for a VRRP VIP on both: only the group's port answers, or the
/// reply from the other would teach the switches the group's MAC there.
@Suite struct VRRPARPPortTests {
    @Test func aVIPIsAnsweredOnlyOnItsGroupsPortAndOnlyByTheMaster() {
        let vip = IPv4Address(10, 0, 0, 100)
        let owner = VRRPConfiguration(vrid: 1, priority: 255, vips: [vip], interval: 10, port: PortID(0))
        var groups = VRRPGroups([VRRPInstance(owner, portMAC: MACAddress(0x02, 0, 0, 0, 0, 1), primaryAddress: vip)])
        #expect(!groups.answersARP(for: vip, on: PortID(0)), "not master before it starts")
        var emit = Emitter()
        groups.start(now: .zero, emit: &emit)   // the address owner is master at once
        #expect(groups.answersARP(for: vip, on: PortID(0)))
        #expect(!groups.answersARP(for: vip, on: PortID(1)))
        #expect(groups.answersARP(for: IPv4Address(10, 0, 0, 7), on: PortID(1)), "not a VIP: any port")
    }
}
