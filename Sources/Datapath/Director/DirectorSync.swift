import Wire

// Connection synchronisation between directors in the IPVS sync daemon's
// format, version 1 (Wire/IPVSSync.swift; docs/ipvs-sync.md). Both roles
// run at once on a director with sync on, as the kernel's master and backup
// daemons can:
//
// - Sending. The director queues an entry (connection or persistence
//   template) when it creates it, when a packet changes its state, and when
//   a packet uses it and it was last sent (or installed) more than half its
//   lifetime ago (its state's timeout; a template's persistence timeout):
//   IPVS's sync_refresh_period idea, so a peer's copy never runs out under
//   a live connection. A template whose life the timer extends for its
//   connections is queued too. Entries go into a message of at most the
//   port's MTU; a message leaves when full or `flushDelay` after its first
//   entry (the run loop learns the deadline from `syncNextFlush`).
// - Receiving. A frame to 224.0.0.81:8848 on the sync port, with our sync
//   id, not from our own address, is validated whole (a malformed one is
//   dropped by reason) and each entry installed into the connection table
//   with the state and timeout it carries, marked `synced`. An entry this
//   director cannot use (no such service or real, another method, a local
//   address it does not own) is ignored and counted.
//
// FULLNAT entries carry their local address and port in the extension
// option (`IPVSSync.Option.fullnatLocal`). Tshark's `ipvs` dissector reads
// entries as fixed 36-byte records and ignores each entry's size, so an
// option would shift every entry after it: a message therefore holds at
// most one entry with the extension, as its last, and closes after it.

/// `sync: { group, interface }` of a director.
public struct SyncConfiguration: Hashable, Sendable {
    /// The sync id (0...255): messages of other groups are ignored.
    public var syncID: UInt8
    /// The port messages leave and arrive by; its first address is their source.
    public var port: PortID
    /// Seconds the first entry of a message waits for company before the
    /// message is sent anyway. Short: a takeover must not lose connections
    /// made just before it.
    public var flushDelay: Double
    /// Message slots (frames of up to 2 KiB, allocated once): the open
    /// message and full ones awaiting the run loop; entries that find them
    /// all full are counted (`sync-entries-dropped`) and dropped.
    public var queuedMessages: Int

    public init(syncID: UInt8, port: PortID, flushDelay: Double = 0.02, queuedMessages: Int = 8) {
        self.syncID = syncID
        self.port = port
        self.flushDelay = flushDelay
        self.queuedMessages = queuedMessages
    }
}

/// What connection sync did, for `status` (`sync-…` counters).
public struct SyncCounters: Equatable, Sendable {
    public var messagesSent: UInt64 = 0
    public var entriesSent: UInt64 = 0
    /// Entries not sent: every message slot was full (the run loop fell behind).
    public var entriesDropped: UInt64 = 0
    /// Valid messages of our group from a peer.
    public var messagesReceived: UInt64 = 0
    public var entriesReceived: UInt64 = 0
    /// Entries added to the table, and entries that updated one already there.
    public var installed: UInt64 = 0
    public var updated: UInt64 = 0
    /// Entries received and not used, by reason (`SyncIgnore`).
    public var ignored: [SyncIgnore: UInt64] = [:]
    public init() {}
}

/// Why a received entry was not installed.
public enum SyncIgnore: String, Hashable, Sendable, CaseIterable {
    /// Not TCP or UDP.
    case proto = "protocol"
    /// No virtual service with that protocol, address and port here.
    case noService = "no-service"
    /// The service has no real with that address and port.
    case noReal = "no-real"
    /// Another forwarding method than the service's (or local node / bypass).
    case mode = "mode-mismatch"
    /// A state number IPVS does not have.
    case state = "bad-state"
    /// FULLNAT without the extension, or a local address this service does not use.
    case localAddress = "local-address"
    /// FULLNAT: another connection here holds that local port.
    case localPortInUse = "local-port-in-use"
    /// NAT/FULLNAT: another connection here has the same reply key.
    case replyCollision = "reply-collision"
    case tableFull = "table-full"
    /// An option the entry says must be understood, and wirelab does not know.
    case unknownOption = "unknown-option"
}

/// Builds and queues outgoing sync messages as complete frames (Ethernet,
/// IPv4 TTL 1, UDP 8848 → 224.0.0.81:8848). Fixed memory, allocated once.
final class SyncSender {
    let configuration: SyncConfiguration
    let mac: MACAddress
    let source: IPv4Address
    /// Largest UDP payload (the port's MTU less IPv4 and UDP headers).
    let messageCapacity: Int
    let frameHeader = 14 + 20 + 8
    let slots: UnsafeMutableRawPointer
    let slotCount: Int
    var lengths: [Int]
    /// Full messages waiting for the run loop: slots head ..< head + ready (mod slotCount).
    var head = 0
    var ready = 0
    /// The open message is in slot head + ready, when it has entries.
    var writer: IPVSSyncWriter
    var openedAt: UInt64 = 0
    /// The open message ends with an entry with options: nothing may follow it.
    var sealed = false
    /// Nanoseconds of `flushDelay`.
    let delay: UInt64
    var identification: UInt16 = 0
    /// Role switch: false stops queueing (receiving goes on). See `Director.syncSending`.
    var sending = true
    var counters = SyncCounters()

    init(_ configuration: SyncConfiguration, mac: MACAddress, source: IPv4Address, mtu: Int) {
        self.configuration = configuration
        self.mac = mac
        self.source = source
        messageCapacity = min(mtu, Emitter.slotSize - 14) - 28
        slotCount = max(2, configuration.queuedMessages)
        slots = UnsafeMutableRawPointer.allocate(byteCount: slotCount * Emitter.slotSize, alignment: 64)
        lengths = Array(repeating: 0, count: slotCount)
        delay = UInt64(max(0, configuration.flushDelay) * 1e9)
        writer = IPVSSyncWriter(into: UnsafeMutableRawBufferPointer(start: slots + frameHeader, count: messageCapacity),
                                syncID: configuration.syncID)
    }

    deinit { slots.deallocate() }

    func slot(_ k: Int) -> UnsafeMutableRawPointer { slots + (k % slotCount) * Emitter.slotSize }

    /// When the run loop must call `tick` for sync: now if full messages
    /// wait, the open message's deadline if it has entries, else nil.
    var nextFlush: UInt64? {
        if ready > 0 { return openedAt }
        return writer.count > 0 ? openedAt &+ delay : nil
    }

    /// A packet used entry `i` (or created it: `changed`). Queues it if it
    /// is new or changed, or if half its lifetime passed since it was last
    /// sent or installed. Per packet with sync on: a load and a compare.
    @inline(__always)
    func used(_ i: UInt32, changed: Bool, core: DirectorCore, now: UInt64) {
        guard sending else { return }
        let e = core.table.pointer(i)
        let tick = UInt16(truncatingIfNeeded: now >> ConnectionTable.tickShift)
        if !changed {
            let lifetime = e.pointee.flags & ConnectionEntry.Flag.template != 0
                ? core.services[Int(e.pointee.service)].persistenceNanoseconds
                : core.timeoutNanoseconds[Int(e.pointee.state)]
            // Half the lifetime in ticks, at least one, below the stamp's wrap.
            let half = min(max(lifetime >> (ConnectionTable.tickShift + 1), 1), 0x7FFF)
            if UInt64(tick &- e.pointee.syncStamp) < half { return }
        }
        queue(core.syncEntry(i, now: now), now: now)
        e.pointee.syncStamp = tick
        e.pointee.flags &= ~ConnectionEntry.Flag.synced
    }

    func queue(_ entry: IPVSSyncEntry, now: UInt64) {
        let length = entry.bufferLength
        if !fits(length) { close(now: now) }
        // Still no room: every slot is full (or the entry outgrows a whole message, an MTU near 68).
        guard fits(length) else {
            counters.entriesDropped &+= 1
            return
        }
        if writer.count == 0 { openedAt = now }
        _ = writer.append(entry)
        counters.entriesSent &+= 1
        // At most one entry with options per message, as its last (see the file's comment).
        if entry.fullnatLocal != nil || entry.sequenceData != nil {
            sealed = true
            close(now: now)
        }
    }

    func fits(_ length: Int) -> Bool { !sealed && writer.fits(length) }

    /// Ends the open message (if it has entries): frame headers around it,
    /// and it joins the full ones; a new message opens in the next slot.
    func close(now: UInt64) {
        guard writer.count > 0, ready < slotCount - 1 else { return }
        let k = head + ready
        let frame = UnsafeMutableRawBufferPointer(start: slot(k), count: frameHeader + writer.length)
        EthernetRepr(destination: IPVSSync.groupMAC, source: mac, etherType: .ipv4)
            .emit(into: EthernetMutableHeader(unchecked: frame))
        identification &+= 1
        let ip = IPv4Repr(sourceAddress: source, destinationAddress: IPVSSync.group, protocol: .udp,
                          payloadLength: 8 + writer.length, timeToLive: 1, identification: identification)
        let l3 = UnsafeMutableRawBufferPointer(rebasing: frame[14...])
        ip.emit(into: IPv4MutableHeader(unchecked: l3))
        UDPRepr(sourcePort: IPVSSync.port, destinationPort: IPVSSync.port, payloadLength: writer.length)
            .emit(into: UDPMutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: frame[34...])),
                  pseudoHeader: .ipv4(source: source, destination: IPVSSync.group))
        lengths[k % slotCount] = frame.count
        ready += 1
        counters.messagesSent &+= 1
        openedAt = now
        sealed = false
        writer = IPVSSyncWriter(into: UnsafeMutableRawBufferPointer(start: slot(head + ready) + frameHeader,
                                                                    count: messageCapacity),
                                syncID: configuration.syncID)
    }

    /// Closes the open message if its deadline passed, then hands every
    /// full message to `emit` (as many as it has room for).
    func flush(now: UInt64, emit: inout Emitter) {
        drain(&emit)
        // After the drain, so a message that found every slot full closes now.
        if writer.count > 0 && now >= openedAt &+ delay {
            close(now: now)
            drain(&emit)
        }
    }

    func drain(_ emit: inout Emitter) {
        while ready > 0 && emit.count < emit.slotCount {
            emit.emit(on: configuration.port,
                      copying: UnsafeRawBufferPointer(start: slot(head), count: lengths[head % slotCount]))
            head = (head + 1) % slotCount
            ready -= 1
        }
    }
}

// MARK: The element's side

extension Director {
    /// Drop reasons of sync frames (the `sync-` prefix keeps them apart
    /// from the data path's).
    public enum SyncDrop {
        /// A valid message of another sync group.
        public static let otherGroup = DropReason("sync-other-group")
        /// Our own message, looped back by the segment.
        public static let own = DropReason("sync-own")
        static let truncated = DropReason("sync-malformed:" + WireError.truncated.reason)
        static let badVersion = DropReason("sync-malformed:" + WireError.badVersion.reason)
        static let badLength = DropReason("sync-malformed:" + WireError.badLength.reason)
        static let unsupported = DropReason("sync-malformed:" + WireError.unsupported.reason)
        static let badChecksum = DropReason("sync-malformed:" + WireError.badChecksum.reason)
        static let badHeaderLength = DropReason("sync-malformed:" + WireError.badHeaderLength.reason)

        /// `sync-malformed:<reason>` without building a string per frame.
        public static func malformed(_ error: WireError) -> DropReason {
            switch error {
            case .truncated: truncated
            case .badVersion: badVersion
            case .badLength: badLength
            case .unsupported: unsupported
            case .badChecksum: badChecksum
            case .badHeaderLength: badHeaderLength
            }
        }
    }

    /// When `tick` must run next for connection sync: at once if full
    /// messages wait, else the open message's flush deadline; nil with sync
    /// off or nothing queued. (The lead folds this into `nextTimer`.)
    public var syncNextFlush: Instant? {
        sync?.nextFlush.map { Instant(nanoseconds: $0) }
    }

    /// Role switch: whether this director sends its entries (default on).
    /// Receiving always goes on. A VRRP backup may turn it off so only the
    /// master sends; with it on both can send, as the kernel's daemons.
    public var syncSending: Bool {
        get { sync?.sending ?? false }
        set { sync?.sending = newValue }
    }

    /// What connection sync did (zeros with sync off).
    public var syncCounters: SyncCounters { sync?.counters ?? SyncCounters() }

    /// A frame to the sync group on the sync port: nil if it is not one
    /// (the caller goes on as before).
    func syncInput(_ p: ParsedFrame, _ packet: PacketBuffer, ingress: Int, now: Instant) -> Verdict? {
        guard let sync, ingress == sync.configuration.port.rawValue, p.destinationMAC == IPVSSync.groupMAC,
              p.etherType == .ipv4, p.destinationIPv4 == IPVSSync.group, p.isUDP, !p.isFragment,
              p.destinationPort == IPVSSync.port else { return nil }
        if p.sourceIPv4 == sync.source { return drop(SyncDrop.own) }
        let end = p.l3Offset + p.ipLength
        let message: IPVSSyncMessage
        do {
            let udp = try UDPHeader(validating: packet.readOnly.wireSlice(p.l4Offset..<end))
            guard udp.isChecksumValid(pseudoHeader: .ipv4(source: p.sourceIPv4, destination: p.destinationIPv4)) else {
                return drop(SyncDrop.malformed(.badChecksum))
            }
            message = try IPVSSyncMessage(validating: udp.payload)
        } catch {
            return drop(SyncDrop.malformed(error))
        }
        guard message.syncID == sync.configuration.syncID else { return drop(SyncDrop.otherGroup) }
        sync.counters.messagesReceived &+= 1
        // Validated whole above: this walk cannot fail.
        try? message.forEachEntry { entry in
            sync.counters.entriesReceived &+= 1
            switch core.installSynced(entry, now: now.nanoseconds) {
            case .installed: sync.counters.installed &+= 1
            case .updated: sync.counters.updated &+= 1
            case .ignored(let why): sync.counters.ignored[why, default: 0] &+= 1
            }
        }
        return .consumed
    }

    /// Sends what sync has ready (and the open message once due).
    @inline(__always)
    func flushSync(now: Instant, emit: inout Emitter) {
        guard let sync else { return }
        if sync.ready > 0 || (sync.writer.count > 0 && now.nanoseconds >= sync.openedAt &+ sync.delay) {
            sync.flush(now: now.nanoseconds, emit: &emit)
        }
    }
}

// MARK: The connection table's side

/// What `installSynced` did with an entry.
enum SyncInstall: Equatable {
    case installed
    case updated
    case ignored(SyncIgnore)
}

extension DirectorCore {
    static func forwardFlag(_ mode: UInt8) -> UInt32 {
        switch modes[Int(mode)] {
        case .nat: IPVSSync.Flag.masquerade
        case .dr: IPVSSync.Flag.directRoute
        case .tun: IPVSSync.Flag.tunnel
        case .fullnat: IPVSSync.Flag.fullnat
        }
    }

    static func mode(forwardFlag: UInt32) -> ForwardingMode? {
        switch forwardFlag {
        case IPVSSync.Flag.masquerade: .nat
        case IPVSSync.Flag.directRoute: .dr
        case IPVSSync.Flag.tunnel: .tun
        case IPVSSync.Flag.fullnat: .fullnat
        default: nil
        }
    }

    /// Entry `i` as a sync entry: its timeout is the seconds it has left
    /// (rounded up), so a peer's copy expires when ours would.
    func syncEntry(_ i: UInt32, now: UInt64) -> IPVSSyncEntry {
        let e = table.pointer(i).pointee
        let template = e.flags & ConnectionEntry.Flag.template != 0
        var flags = Self.forwardFlag(e.mode)
        if template { flags |= IPVSSync.Flag.template }
        if !template && e.flags & ConnectionEntry.Flag.inactive != 0 { flags |= IPVSSync.Flag.inactive }
        if e.flags & ConnectionEntry.Flag.noOutput != 0 { flags |= IPVSSync.Flag.noOutput }
        let tcp = e.proto == IPProtocol.tcp.rawValue
        let left = e.expires > now ? e.expires - now : 0
        return IPVSSyncEntry(
            protocol: IPProtocol(e.proto & ~ConnectionEntry.templateBit), flags: flags,
            state: tcp ? UInt16(e.state) : 0,
            clientAddress: IPv4Address(rawValue: e.clientAddress), clientPort: e.clientPort,
            virtualAddress: IPv4Address(rawValue: e.virtualAddress), virtualPort: e.virtualPort,
            destinationAddress: IPv4Address(rawValue: e.realAddress), destinationPort: e.realPort,
            timeout: UInt32(clamping: max(1, (left + 999_999_999) / 1_000_000_000)),
            fullnatLocal: e.flags & ConnectionEntry.Flag.fullnat != 0
                ? .init(address: IPv4Address(rawValue: e.localAddress), port: e.localPort) : nil)
    }

    /// Installs (or updates) a peer's entry with the state and timeout it
    /// carries (ip_vs_proc_conn()). An entry already here for the same
    /// real (and FULLNAT local address:port) takes the new state and
    /// expiry; one for another real is replaced.
    func installSynced(_ s: IPVSSyncEntry, now: UInt64) -> SyncInstall {
        if s.hasUnknownMandatoryOption { return .ignored(.unknownOption) }
        let base = s.protocol.rawValue
        guard base == IPProtocol.tcp.rawValue || base == IPProtocol.udp.rawValue else { return .ignored(.proto) }
        let template = s.isTemplate
        guard let sv = serviceByKey[Self.serviceKey(base, s.virtualAddress.rawValue, s.virtualPort)] else {
            return .ignored(.noService)
        }
        guard let mode = Self.mode(forwardFlag: s.forwardMethod), mode == services[sv].mode else { return .ignored(.mode) }
        guard let r = services[sv].reals.firstIndex(where: {
            $0.address == s.destinationAddress && $0.port == s.destinationPort
        }) else { return .ignored(.noReal) }
        let state: ConnectionState
        if template {
            state = .none
        } else if base == IPProtocol.udp.rawValue {
            state = .udp
        } else {
            guard s.state <= IPVSSync.TCPState.synAck, let st = ConnectionState(rawValue: UInt8(s.state)) else {
                return .ignored(.state)
            }
            state = st
        }
        var pool = -1
        if mode == .fullnat && !template {
            guard let l = s.fullnatLocal, let k = poolByAddress[l.address], services[sv].localPools.contains(k) else {
                return .ignored(.localAddress)
            }
            pool = k
        }
        let expires = now &+ (s.timeout > 0 ? UInt64(s.timeout) * 1_000_000_000 : timeoutNanoseconds[Int(state.rawValue)])
        let proto = template ? base | ConnectionEntry.templateBit : base
        let stamp = UInt16(truncatingIfNeeded: now >> ConnectionTable.tickShift)

        if let i = table.findInbound(proto: proto, client: s.clientAddress.rawValue, clientPort: s.clientPort,
                                     virtual: s.virtualAddress.rawValue, virtualPort: s.virtualPort) {
            let e = table.pointer(i)
            let sameLocal = pool < 0 || (e.pointee.localAddress == s.fullnatLocal!.address.rawValue
                                         && e.pointee.localPort == s.fullnatLocal!.port)
            if Int(e.pointee.real) == r && sameLocal {
                if !template { setSyncedState(e, state) }
                e.pointee.flags |= ConnectionEntry.Flag.synced
                e.pointee.syncStamp = stamp
                table.setExpiry(i, expires)
                return .updated
            }
            if template { invalidateTemplate(i, now: now, expiredByTime: false) } else { removeConnection(i) }
        }
        if table.freeCount == 0 && !(configuration.dropEmbryonic && evictEmbryonic(now: now)) {
            return .ignored(.tableFull)
        }
        let real = services[sv].reals[r]
        var flags = ConnectionEntry.Flag.synced
        if template { flags |= ConnectionEntry.Flag.template }
        if !template && state != .established { flags |= ConnectionEntry.Flag.inactive }
        if s.flags & IPVSSync.Flag.noOutput != 0 || !mode.seesReplies { flags |= ConnectionEntry.Flag.noOutput }
        var entry = ConnectionEntry(proto: proto, clientAddress: s.clientAddress.rawValue, clientPort: s.clientPort,
                                    virtualAddress: s.virtualAddress.rawValue, virtualPort: s.virtualPort,
                                    realAddress: real.address.rawValue, realPort: real.port,
                                    service: UInt16(sv), real: UInt16(r), state: state.rawValue, flags: flags,
                                    mode: Self.modeIndex(mode), expires: expires)
        entry.syncStamp = stamp
        if pool >= 0, let l = s.fullnatLocal {
            guard pools[pool].reserve(l.port) else { return .ignored(.localPortInUse) }
            entry.pool = UInt16(pool)
            entry.localAddress = l.address.rawValue
            entry.localPort = l.port
            entry.flags |= ConnectionEntry.Flag.fullnat
        }
        let hashReply = mode.seesReplies && !template
        if hashReply, let other = table.findReply(proto: proto, real: entry.realAddress, realPort: entry.realPort,
                                                  destination: entry.replyAddress, destinationPort: entry.replyPort) {
            if table.pointer(other).pointee.expires <= now {
                removeConnection(other)
                counters.expired &+= 1
            } else {
                if pool >= 0 { pools[pool].release(entry.localPort) }
                return .ignored(.replyCollision)
            }
        }
        if template {
            services[sv].reals[r].persistent &+= 1
        } else if state == .established {
            services[sv].reals[r].active &+= 1
        } else {
            services[sv].reals[r].inactive &+= 1
        }
        guard table.insert(entry, hashInbound: true, hashReply: hashReply) != nil else {
            preconditionFailure("connection table full after the capacity check")
        }
        return .installed
    }

    /// A synced state change, keeping the real's active/inactive counts in step.
    func setSyncedState(_ e: UnsafeMutablePointer<ConnectionEntry>, _ state: ConnectionState) {
        let inactive = e.pointee.flags & ConnectionEntry.Flag.inactive != 0
        if !inactive && state != .established {
            count(e, active: -1, inactive: 1)
            e.pointee.flags |= ConnectionEntry.Flag.inactive
        } else if inactive && state == .established {
            count(e, active: 1, inactive: -1)
            e.pointee.flags &= ~ConnectionEntry.Flag.inactive
        }
        e.pointee.state = state.rawValue
    }
}

extension Director {
    /// Live entries installed from a peer and not sent on since (control
    /// plane: reads the table's used part).
    public var syncedEntryCount: Int {
        let table = core.table
        var n = 0
        for i in 0..<table.highWaterMark {
            let flags = table.pointer(UInt32(i)).pointee.flags
            if flags & (ConnectionEntry.Flag.inUse | ConnectionEntry.Flag.synced)
                == ConnectionEntry.Flag.inUse | ConnectionEntry.Flag.synced { n += 1 }
        }
        return n
    }
}
