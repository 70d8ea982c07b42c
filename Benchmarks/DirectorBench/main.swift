// director-bench: the LVS director's control logic under load.
//
//   swift run -c release director-bench [entries]
//
// Connection table at 1,000,000 entries (insert = a SYN scheduled into a
// NAT service, lookup = a packet of a known connection, both directions),
// bytes per entry from the table's own allocations, and Maglev at the
// paper's size (100 backends, M = 65537; the paper reports 1.8 ms to build),
// and new connections through an mh service with and without its flags.
// Timings use CLOCK_MONOTONIC; every loop folds its results into a
// checksum that is printed, so the optimiser cannot drop the work. Each
// figure is the best of a few rounds: the machine is shared.

import CMallocCounter
import Datapath
import Glibc
import Wire

@inline(never) func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

struct XorShift {
    var s: UInt64
    mutating func next() -> UInt64 {
        s ^= s << 13
        s ^= s >> 7
        s ^= s << 17
        return s
    }
}

var rows: [(String, String, String)] = []
@MainActor func report(_ what: String, _ value: String, _ note: String = "") {
    rows.append((what, value, note))
    print("  \(what): \(value) \(note)")
}
func format(_ x: Double, _ digits: Int = 1) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (x * p).rounded() / p
    return String(r)
}

/// Runs `body` `rounds` times, returns the fastest in ns.
func best(_ rounds: Int, _ body: () -> Void) -> UInt64 {
    var fastest = UInt64.max
    for _ in 0..<rounds {
        let t0 = monotonicNanoseconds()
        body()
        fastest = min(fastest, monotonicNanoseconds() - t0)
    }
    return fastest
}

let entries = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 1_000_000
let hugePages = !CommandLine.arguments.contains("--no-huge-pages")

/// Table memory from mmap, advised for transparent huge pages (the machine's
/// THP mode is `madvise`): what the Lab would pass to DirectorCore.
let hugePageMemory = TableMemory(
    allocate: { byteCount, _ in
        let size = (byteCount + (2 << 20) - 1) & ~((2 << 20) - 1)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("mmap \(size) bytes failed")
        }
        _ = madvise(p, size, 14 /* MADV_HUGEPAGE */)
        return p
    },
    deallocate: { p, byteCount in
        _ = munmap(p, (byteCount + (2 << 20) - 1) & ~((2 << 20) - 1))
    })
var checksum: UInt64 = 0
let vip = IPv4Address(10, 0, 0, 100)

// Client i: 11.0.0.0 + i / 50000, port 10000 + i % 50000.
@inline(__always) func clientAddress(_ i: Int) -> IPv4Address { IPv4Address(rawValue: 0x0B00_0000 &+ UInt32(i / 50_000)) }
@inline(__always) func clientPort(_ i: Int) -> UInt16 { UInt16(10_000 + i % 50_000) }

print("director-bench: \(entries) connections, table memory: \(hugePages ? "mmap + MADV_HUGEPAGE" : "Swift heap (4 KiB pages)")")

// MARK: Connection table through DirectorCore

var configuration = DirectorCore.Configuration(maxConnections: entries)
if hugePages { configuration.tableMemory = hugePageMemory }
let core = DirectorCore(configuration: configuration)
let reals = (1...16).map { RealServer(address: IPv4Address(10, 0, 1, UInt8($0))) }
try! core.addService(VirtualService(address: vip, port: 80, scheduler: .wrr, mode: .nat), reals: reals)
let now = Instant.seconds(1000)

var t0 = monotonicNanoseconds()
for i in 0..<entries {
    let d = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                          tcpFlags: TCPFlagBits.syn, now: now)
    checksum &+= UInt64(d.realAddress.rawValue)
}
let insertNs = monotonicNanoseconds() - t0
precondition(core.table.count == entries, "inserted \(core.table.count)")
report("insert (new connection: wrr pick + 2 index inserts)", format(Double(insertNs) / Double(entries)) + " ns/op")
/// AnonHugePages of this process (/proc/self/smaps_rollup), to show whether THP took.
func anonHugePages() -> String {
    guard let f = fopen("/proc/self/smaps_rollup", "r") else { return "?" }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("AnonHugePages:") { return text.dropFirst(14).split(separator: " ").joined(separator: " ").replacingNewlines() }
    }
    return "?"
}
extension String { func replacingNewlines() -> String { String(filter { $0 != "\n" }) } }
report("huge pages backing the process", anonHugePages())
report("bytes per entry (table allocations / entries)", format(Double(core.connectionMemoryBytes) / Double(entries)),
       "(\(core.connectionMemoryBytes / 1_048_576) MiB: 64 B entry + 2 indices of \(core.table.indexSlots) × 8 B + wheel)")

// Random order of the same keys.
var order = [Int32](unsafeUninitializedCapacity: entries) { buf, n in
    for i in 0..<entries { buf[i] = Int32(i) }
    n = entries
}
var rng = XorShift(s: 0x9E37_79B9_7F4A_7C15)
for i in stride(from: entries - 1, to: 0, by: -1) {
    let j = Int(rng.next() % UInt64(i + 1))
    order.swapAt(i, j)
}

let seqNs = best(3) {
    for i in 0..<entries {
        let d = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                              tcpFlags: TCPFlagBits.ack, now: now)
        checksum &+= UInt64(d.realPort)
    }
}
report("lookup inbound, insertion order (existing: find + state + expiry)", format(Double(seqNs) / Double(entries)) + " ns/op")

let randNs = best(3) {
    order.withUnsafeBufferPointer { order in
        for k in 0..<entries {
            let i = Int(order[k])
            let d = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                                  tcpFlags: TCPFlagBits.ack, now: now)
            checksum &+= UInt64(d.realPort)
        }
    }
}
report("lookup inbound, random order", format(Double(randNs) / Double(entries)) + " ns/op")

// Replies need each connection's real: read them once (control path).
var realOf = [UInt32](repeating: 0, count: entries)
for i in 0..<entries {
    let d = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                          tcpFlags: TCPFlagBits.ack, now: now)
    realOf[i] = d.realAddress.rawValue
}
let replyNs = best(3) {
    order.withUnsafeBufferPointer { order in
        realOf.withUnsafeBufferPointer { realOf in
            for k in 0..<entries {
                let i = Int(order[k])
                let r = core.lookupReply(.tcp, from: IPv4Address(rawValue: realOf[i]), fromPort: 80,
                                         to: clientAddress(i), toPort: clientPort(i), tcpFlags: TCPFlagBits.ack, now: now)
                checksum &+= UInt64(r.clientPort)
            }
        }
    }
}
report("lookup reply (NAT), random order", format(Double(replyNs) / Double(entries)) + " ns/op")

// Batched, as the run loop receives them (32 frames per batch), random order.
let batch = 32
var inbound = [DirectorCore.InboundPacket]()
inbound.reserveCapacity(entries)
var replies = [DirectorCore.ReplyPacket]()
replies.reserveCapacity(entries)
for k in 0..<entries {
    let i = Int(order[k])
    inbound.append(.init(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80, tcpFlags: TCPFlagBits.ack))
    replies.append(.init(.tcp, real: IPv4Address(rawValue: realOf[i]), realPort: 80, destination: clientAddress(i),
                         destinationPort: clientPort(i), tcpFlags: TCPFlagBits.ack))
}
var decisions = [Decision](repeating: .refused(.noService), count: batch)
var replyDecisions = [ReplyDecision](repeating: .notFound, count: batch)
let batchNs = best(3) {
    inbound.withUnsafeBufferPointer { packets in
        decisions.withUnsafeMutableBufferPointer { out in
            var k = 0
            while k < entries {
                let n = min(batch, entries - k)
                core.schedule(batch: UnsafeBufferPointer(rebasing: packets[k..<k + n]), into: out, now: now)
                for j in 0..<n { checksum &+= UInt64(out[j].realPort) }
                k += n
            }
        }
    }
}
report("lookup inbound, random order, batches of \(batch) (prefetched)", format(Double(batchNs) / Double(entries)) + " ns/op")
let replyBatchNs = best(3) {
    replies.withUnsafeBufferPointer { packets in
        replyDecisions.withUnsafeMutableBufferPointer { out in
            var k = 0
            while k < entries {
                let n = min(batch, entries - k)
                core.lookupReply(batch: UnsafeBufferPointer(rebasing: packets[k..<k + n]), into: out, now: now)
                for j in 0..<n { checksum &+= UInt64(out[j].clientPort) }
                k += n
            }
        }
    }
}
report("lookup reply, random order, batches of \(batch) (prefetched)", format(Double(replyBatchNs) / Double(entries)) + " ns/op")

let table = core.table
let rawNs = best(3) {
    order.withUnsafeBufferPointer { order in
        for k in 0..<entries {
            let i = Int(order[k])
            let e = table.findInbound(proto: 6, client: clientAddress(i).rawValue, clientPort: clientPort(i),
                                      virtual: vip.rawValue, virtualPort: 80)
            checksum &+= UInt64(e ?? 0)
        }
    }
}
report("table.findInbound only, random order", format(Double(rawNs) / Double(entries)) + " ns/op")

let missNs = best(3) {
    for k in 0..<entries {
        let e = table.findInbound(proto: 6, client: 0x0C00_0000 &+ UInt32(k), clientPort: 7, virtual: vip.rawValue, virtualPort: 80)
        checksum &+= UInt64(e ?? 1)
    }
}
report("table.findInbound miss", format(Double(missNs) / Double(entries)) + " ns/op")

// As the director element looks up a receive batch (`Director.prefetch`):
// every packet's index slot prefetched, then every entry, then the finds —
// the batch's misses overlap instead of queueing one after another.
for batchSize in [32, 64] {
    let ns = best(3) {
        order.withUnsafeBufferPointer { order in
            var k = 0
            while k < entries {
                let n = min(batchSize, entries - k)
                for j in 0..<n {
                    let i = Int(order[k + j])
                    table.prefetchInboundSlot(proto: 6, client: clientAddress(i).rawValue, clientPort: clientPort(i),
                                              virtual: vip.rawValue, virtualPort: 80)
                }
                for j in 0..<n {
                    let i = Int(order[k + j])
                    table.prefetchInboundEntry(proto: 6, client: clientAddress(i).rawValue, clientPort: clientPort(i),
                                               virtual: vip.rawValue, virtualPort: 80)
                }
                for j in 0..<n {
                    let i = Int(order[k + j])
                    let e = table.findInbound(proto: 6, client: clientAddress(i).rawValue, clientPort: clientPort(i),
                                              virtual: vip.rawValue, virtualPort: 80)
                    checksum &+= UInt64(e ?? 0)
                }
                k += n
            }
        }
    }
    report("table.findInbound, random order, batches of \(batchSize) (slots, then entries prefetched)",
           format(Double(ns) / Double(entries)) + " ns/op")
}

// The machine's floor: independent random 8-byte loads from a 64 MiB
// buffer of the same memory kind, one per op, then prefetched in groups.
let floorBytes = 64 << 20
let floorBuffer = (hugePages ? hugePageMemory : TableMemory.heap).allocate(floorBytes, 64).bindMemory(to: UInt64.self, capacity: floorBytes / 8)
floorBuffer.initialize(repeating: 1, count: floorBytes / 8)
let floorMask = UInt64(floorBytes / 8 - 1)
let floorNs = best(3) {
    var s = XorShift(s: 777)
    for _ in 0..<entries { checksum &+= floorBuffer[Int(s.next() & floorMask)] }
}
report("floor: one random 8-byte load from 64 MiB", format(Double(floorNs) / Double(entries)) + " ns/op")

t0 = monotonicNanoseconds()
let removed = core.expire(now: now.adding(seconds: 4000))
let expireNs = monotonicNanoseconds() - t0
precondition(removed == entries && core.table.count == 0)
report("expire all (timer wheel)", format(Double(expireNs) / Double(entries)) + " ns/entry")
checksum &+= UInt64(removed)

// MARK: SYN flood at a full table

// The table full of SYN_RECV entries, then as many SYNs again from new
// clients: each evicts the oldest embryonic entry of a sample of 8.
let later = now.adding(seconds: 5000)
for i in 0..<entries {
    _ = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                      tcpFlags: TCPFlagBits.syn, now: later)
}
let evictedBefore = core.counters.evictedEmbryonic
t0 = monotonicNanoseconds()
for i in entries..<(2 * entries) {
    let d = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                          tcpFlags: TCPFlagBits.syn, now: later)
    checksum &+= UInt64(d.realAddress.rawValue)
}
let floodNs = monotonicNanoseconds() - t0
precondition(core.table.count == entries && core.counters.evictedEmbryonic - evictedBefore == UInt64(entries))
report("insert at a full table of SYN_RECV (SYN flood: evicts one)", format(Double(floodNs) / Double(entries)) + " ns/op",
       "(the oldest embryonic entry of a sample of 8)")
// The same table ESTABLISHED: a new SYN reads 64 entries and is refused.
// (All at one instant, so ties: some of the first fill survived instead.)
for i in 0..<(2 * entries) {
    _ = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                      tcpFlags: TCPFlagBits.ack, now: later)
}
let refusals = entries / 10
let refusedBefore = core.counters.refusedTableFull
t0 = monotonicNanoseconds()
for i in (2 * entries)..<(2 * entries + refusals) {
    let d = core.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                          tcpFlags: TCPFlagBits.syn, now: later)
    checksum &+= UInt64(d.realPort)
}
let refuseNs = monotonicNanoseconds() - t0
precondition(core.counters.refusedTableFull - refusedBefore == UInt64(refusals))
report("SYN at a full table of ESTABLISHED (refused: table-full)", format(Double(refuseNs) / Double(refusals)) + " ns/op",
       "(after reading 64 entries for an embryonic one)")

// MARK: Maglev

let names = (0..<100).map { "10.0.2.\($0):80" }
let weights = [Int](repeating: 1, count: 100)
var maglev = MaglevTable(size: 65537, names: names, weights: weights)
var buildTimes: [UInt64] = []
for _ in 0..<15 {
    let t = monotonicNanoseconds()
    maglev = MaglevTable(size: 65537, names: names, weights: weights)
    buildTimes.append(monotonicNanoseconds() - t)
    checksum &+= UInt64(maglev.slots[12345])
}
buildTimes.sort()
report("Maglev build, 100 backends, M=65537", format(Double(buildTimes[0]) / 1e6, 2) + " ms",
       "(median \(format(Double(buildTimes[buildTimes.count / 2]) / 1e6, 2)) ms; paper: 1.8 ms)")

let lookups = 10_000_000
let maglevNs = best(3) {
    var s = XorShift(s: 12345)
    for _ in 0..<lookups {
        let src = UInt32(truncatingIfNeeded: s.next())
        checksum &+= UInt64(maglev.lookup(hash: DirectorHash.source(src, port: 0))!)
    }
}
report("Maglev lookup (hash + table)", format(Double(maglevNs) / Double(lookups), 2) + " ns/op")

// Disruption when one backend goes.
var fewer = names
fewer.remove(at: 37)
let after = MaglevTable(size: 65537, names: fewer, weights: [Int](repeating: 1, count: 99))
var moved = 0
for slot in 0..<65537 where names[Int(maglev.slots[slot])] != names[37] {
    if names[Int(maglev.slots[slot])] != fewer[Int(after.slots[slot])] { moved += 1 }
}
report("Maglev: slots of other backends moved when 1 of 100 leaves", "\(moved) of 65537",
       "(\(format(Double(moved) / 655.37, 2))% of M; the leaver had 1/N = 1%)")

// MARK: Scheduler flags and sloppy: new connections through an mh NAT service

/// ns per new connection through an mh service over the 16 reals with
/// `flags` (and `sloppy`, one real at weight 0 when `quiesced`), into a
/// fresh table of 250,000 entries; best of 3 (setup not timed).
@MainActor func mhInsertNs(_ flags: SchedulerFlags, sloppy: Bool = false, quiesced: Bool = false,
                tcpFlags: UInt8 = TCPFlagBits.syn) -> (ns: Double, created: UInt64, mallocs: UInt64) {
    let n = min(entries, 250_000)
    var fastest = UInt64.max
    var created: UInt64 = 0
    var mallocs: UInt64 = 0
    for _ in 0..<3 {
        let c = DirectorCore(configuration: DirectorCore.Configuration(maxConnections: n))
        let id = try! c.addService(VirtualService(address: vip, port: 80, scheduler: .mh, schedulerFlags: flags, mode: .nat,
                                                  sloppy: sloppy), reals: reals)
        // Quiesced after it was added: it keeps its Maglev slots (last weight), as ipvsadm -e -w 0 leaves it.
        if quiesced { try! c.setWeight(0, for: RealServerID(service: id, index: 3)) }
        let m0 = cwl_malloc_count()
        let t = monotonicNanoseconds()
        for i in 0..<n {
            let d = c.schedule(.tcp, client: clientAddress(i), clientPort: clientPort(i), virtual: vip, virtualPort: 80,
                               tcpFlags: tcpFlags, now: now)
            checksum &+= UInt64(d.realAddress.rawValue)
        }
        fastest = min(fastest, monotonicNanoseconds() - t)
        mallocs = max(mallocs, cwl_malloc_count() - m0)
        created = c.counters.created
    }
    return (Double(fastest) / Double(n), created, mallocs)
}
// The counter must see allocations for its zeros to mean anything.
let probeMallocs = cwl_malloc_count()
let probe = [Int](repeating: entries, count: 1000 + entries % 7)
checksum &+= UInt64(probe.count)
precondition(cwl_malloc_count() > probeMallocs, "the malloc counter is not interposed")
let mhPlain = mhInsertNs([])
report("insert via mh, no flags", format(mhPlain.ns) + " ns/op", "(\(mhPlain.created) created, \(mhPlain.mallocs) mallocs)")
let mhPort = mhInsertNs([.port])
report("insert via mh, mh-port", format(mhPort.ns) + " ns/op", "(\(mhPort.created) created, \(mhPort.mallocs) mallocs)")
let mhBoth = mhInsertNs([.port, .fallback])
report("insert via mh, mh-port + mh-fallback", format(mhBoth.ns) + " ns/op", "(\(mhBoth.created) created, \(mhBoth.mallocs) mallocs)")
let mhQuiet = mhInsertNs([.port], quiesced: true)
report("insert via mh, mh-port, 1 of 16 reals at weight 0", format(mhQuiet.ns) + " ns/op",
       "(\(mhQuiet.created) created, the rest refused: no-real; \(mhQuiet.mallocs) mallocs)")
let mhFallback = mhInsertNs([.port, .fallback], quiesced: true)
report("insert via mh, mh-port + mh-fallback, 1 of 16 at weight 0", format(mhFallback.ns) + " ns/op",
       "(\(mhFallback.created) created, 1/16 rehashed; \(mhFallback.mallocs) mallocs)")
let mhSloppy = mhInsertNs([.port], sloppy: true, tcpFlags: TCPFlagBits.ack)
report("insert via mh, sloppy, from a mid-connection ACK", format(mhSloppy.ns) + " ns/op", "(\(mhSloppy.created) created, \(mhSloppy.mallocs) mallocs)")

print("\n| measurement | value | note |\n|---|---|---|")
for (a, b, c) in rows { print("| \(a) | \(b) | \(c) |") }
print("\nchecksum \(checksum)")
