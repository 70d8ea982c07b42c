import Wire

// The IPVS schedulers over one service's reals, ported from
// net/netfilter/ipvs/ip_vs_{rr,wrr,lc,wlc,sh,dh,mh}.c. A pick walks the
// service's flat arrays and never allocates; tables (sh, dh, mh) are rebuilt
// only when a real's weight or health changes, as IPVS's dest_changed hooks do.
//
// The destination list IPVS schedules over is the service's enabled reals in
// the order they were added: a real whose health check failed is left out
// as keepalived leaves it out (by removing it), so the hashing schedulers
// rebuild without it. Weight 0 is IPVS's quiescent real: still listed, but
// never picked; sh keeps a bucket for it and mh keeps its slots (ip_vs_mh
// fills from the last non-zero weight), so without the fallback flag a
// client that hashes there is refused rather than moved.

/// One real as the data path sees it: plain values, no references.
struct RealState {
    var address: IPv4Address
    var port: UInt16
    /// IPVS dest->weight.
    var weight: Int32
    /// IPVS dest->last_weight: the last non-zero weight (Maglev fills from it).
    var lastWeight: Int32
    var enabled: Bool
    /// ESTABLISHED TCP connections (IPVS activeconns).
    var active: Int32 = 0
    /// All other connections, UDP included (IPVS inactconns).
    var inactive: Int32 = 0
    /// Persistence templates pointing here (IPVS persistconns).
    var persistent: Int32 = 0
    /// Connections ever scheduled here.
    var totalConnections: UInt64 = 0

    /// In the scheduler's destination list.
    var listed: Bool { enabled }
    /// May take new connections: listed and weight > 0 (IPVS has no
    /// overload thresholds here).
    var available: Bool { enabled && weight > 0 }
    /// ip_vs_dest_conn_overhead(): active × 256 + inactive.
    var overhead: Int { Int(active) << 8 + Int(inactive) }
}

/// One virtual service with its reals and its scheduler's state.
struct ServiceState {
    var config: VirtualService
    var reals: [RealState] = []
    var names: [String] = []

    // Hot copies of the configuration.
    let proto: UInt8
    let mode: ForwardingMode
    let scheduler: SchedulerKind
    let flags: SchedulerFlags
    /// Schedules TCP packets without SYN (IPVS sloppy_tcp, per service).
    let sloppy: Bool
    /// Template timeout in ns; 0 = no persistence.
    let persistenceNanoseconds: UInt64
    let persistenceMask: UInt32

    // rr: last picked index (−1 = list head). wrr: ip_vs_wrr_mark.cl.
    var cursor = -1
    // wrr: ip_vs_wrr_mark's current weight, max weight, decreasing interval.
    var cw = 0
    var mw = 0
    var di = 1
    // sh, dh: 256 buckets of real indices.
    var buckets: [UInt16] = []
    // mh
    var maglev: MaglevTable?

    // FULLNAT: indices into DirectorCore's local port pools, round robin.
    var localPools: [Int] = []
    var nextLocalPool = 0

    static let bucketBits = 8
    static let bucketCount = 1 << bucketBits
    static let noReal: UInt16 = 0xFFFF

    init(config: VirtualService) {
        self.config = config
        proto = config.proto.ipProtocol.rawValue
        mode = config.mode
        scheduler = config.scheduler
        flags = config.schedulerFlags
        sloppy = config.sloppy
        if let p = config.persistence {
            persistenceNanoseconds = UInt64(p.timeout * 1e9)
            persistenceMask = p.netmask.rawValue
        } else {
            persistenceNanoseconds = 0
            persistenceMask = 0
        }
        destinationsChanged()
    }

    /// IPVS's add_dest / del_dest / upd_dest hooks.
    mutating func destinationsChanged() {
        switch scheduler {
        case .rr, .lc, .wlc:
            break
        case .wrr:
            // ip_vs_wrr_dest_changed()
            cursor = -1
            var g = 0
            var maxWeight = 0
            for r in reals where r.listed {
                let w = Int(r.weight)
                if w > 0 { g = g > 0 ? MaglevTable.gcd(w, g) : w }
                maxWeight = max(maxWeight, w)
            }
            di = g > 0 ? g : 1
            mw = maxWeight - (di - 1)
            if cw > mw || cw == 0 {
                cw = mw
            } else if di > 1 {
                cw = (cw / di) * di + 1
            }
        case .sh:
            // ip_vs_sh_reassign(): each listed real fills `weight` buckets
            // in turn (at least one), cycling until all 256 are assigned.
            buckets = [UInt16](repeating: Self.noReal, count: Self.bucketCount)
            let listed = reals.indices.filter { reals[$0].listed }
            guard !listed.isEmpty else { return }
            var p = 0
            var count = 0
            for b in 0..<Self.bucketCount {
                let r = listed[p]
                buckets[b] = UInt16(r)
                count += 1
                if count >= Int(reals[r].weight) {
                    p = (p + 1) % listed.count
                    count = 0
                }
            }
        case .dh:
            // ip_vs_dh_reassign(): one bucket per listed real in turn, weights ignored.
            buckets = [UInt16](repeating: Self.noReal, count: Self.bucketCount)
            let listed = reals.indices.filter { reals[$0].listed }
            guard !listed.isEmpty else { return }
            for b in 0..<Self.bucketCount { buckets[b] = UInt16(listed[b % listed.count]) }
        case .mh:
            maglev = MaglevTable(size: config.maglevTableSize, names: names,
                                 weights: reals.map { $0.listed ? Int($0.lastWeight) : 0 })
        }
    }

    /// Picks a real for a new connection; nil when none is available.
    /// `source`/`sourcePort` is the client, `destination` the VIP.
    mutating func pick(source: UInt32, sourcePort: UInt16, destination: UInt32) -> Int? {
        switch scheduler {
        case .rr: return pickRR()
        case .wrr: return pickWRR()
        case .lc: return pickLC()
        case .wlc: return pickWLC()
        case .sh: return pickSH(source: source, port: flags.contains(.port) ? sourcePort : 0)
        case .dh: return pickDH(destination: destination)
        case .mh: return pickMH(source: source, port: flags.contains(.port) ? sourcePort : 0)
        }
    }

    /// ip_vs_rr_schedule(): the next available real after the last pick.
    mutating func pickRR() -> Int? {
        let n = reals.count
        var i = cursor
        for _ in 0..<n {
            i += 1
            if i >= n { i = 0 }
            if reals[i].available {
                cursor = i
                return i
            }
        }
        return nil
    }

    /// ip_vs_wrr_schedule(): walk the list for a real with weight ≥ cw,
    /// lowering cw by gcd after each pass and restarting at max weight.
    mutating func pickWRR() -> Int? {
        let n = reals.count
        var i = cursor
        if mw <= 0 { return nil }
        let last = cursor
        var stop = Int.min
        var lastPass = false
        var restarted = false
        while true {
            i += 1
            while i < n {
                let r = reals[i]
                if r.listed && Int(r.weight) >= cw {
                    cursor = i
                    return i
                }
                if i == stop {
                    cursor = i
                    return nil
                }
                i += 1
            }
            i = -1
            cw -= di
            if cw <= 0 {
                cw = mw
                if lastPass || last == -1 {
                    cursor = -1
                    return nil
                }
                restarted = true
            }
            lastPass = cw <= di
            if lastPass && restarted && last != -1 { stop = last }
        }
    }

    /// ip_vs_lc_schedule(): least overhead, first one on ties.
    func pickLC() -> Int? {
        var least = -1
        var leastOverhead = 0
        for i in 0..<reals.count where reals[i].available {
            let o = reals[i].overhead
            if least < 0 || o < leastOverhead {
                least = i
                leastOverhead = o
            }
        }
        return least < 0 ? nil : least
    }

    /// ip_vs_wlc_schedule(): least overhead / weight, compared as
    /// loh × w > doh × lw to stay in integers; first one on ties.
    func pickWLC() -> Int? {
        var least = -1
        var leastOverhead = 0
        var leastWeight = 0
        for i in 0..<reals.count where reals[i].available {
            let o = reals[i].overhead
            let w = Int(reals[i].weight)
            if least < 0 || leastOverhead * w > o * leastWeight {
                least = i
                leastOverhead = o
                leastWeight = w
            }
        }
        return least < 0 ? nil : least
    }

    /// ip_vs_sh_hashkey(): (offset + hash_32(port + addr, 8)) mod 256.
    static func shBucket(_ address: UInt32, port: UInt16, offset: Int) -> Int {
        let h = (UInt32(port) &+ address) &* 0x61C8_8647
        return (offset + Int(h >> UInt32(32 - bucketBits))) & (bucketCount - 1)
    }

    /// ip_vs_sh_schedule(), with ip_vs_sh_get_fallback() under `.fallback`.
    func pickSH(source: UInt32, port: UInt16) -> Int? {
        let ihash = Self.shBucket(source, port: port, offset: 0)
        let first = buckets[ihash]
        if first == Self.noReal { return nil }
        if reals[Int(first)].available { return Int(first) }
        guard flags.contains(.fallback) else { return nil }
        for offset in 0..<Self.bucketCount {
            let roffset = (offset + ihash) & (Self.bucketCount - 1)
            let r = buckets[Self.shBucket(source, port: port, offset: roffset)]
            if r != Self.noReal && reals[Int(r)].available { return Int(r) }
        }
        return nil
    }

    /// ip_vs_dh_schedule(): bucket (addr × 2654435761) mod 256; the real must be available.
    func pickDH(destination: UInt32) -> Int? {
        guard !buckets.isEmpty else { return nil }
        let b = buckets[Int((destination &* 2_654_435_761) & UInt32(Self.bucketCount - 1))]
        if b == Self.noReal || !reals[Int(b)].available { return nil }
        return Int(b)
    }

    /// ip_vs_mh_schedule(), with ip_vs_mh_get_fallback() under `.fallback`.
    func pickMH(source: UInt32, port: UInt16) -> Int? {
        guard let table = maglev else { return nil }
        let islot = table.slot(forHash: DirectorHash.source(source, port: port))
        let first = table.slots[islot]
        if first == MaglevTable.empty { return nil }
        if reals[Int(first)].available { return Int(first) }
        guard flags.contains(.fallback), reals.contains(where: { $0.available }) else { return nil }
        let size = table.size
        for offset in 0..<size {
            var roffset = offset + islot
            if roffset >= size { roffset -= size }
            let r = table.slots[table.slot(forHash: DirectorHash.source(source, port: port, offset: UInt32(roffset)))]
            if r == MaglevTable.empty { break }
            if reals[Int(r)].available { return Int(r) }
        }
        return nil
    }
}
