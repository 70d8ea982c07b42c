// The director's connection-table ratio for `wirelab bench ci`, measured in
// this process at 1 M connections. Both timings come from the same run, so
// the machine's speed (and its memory latency, which moves 2× between runs
// on a shared host) cancels out.
import Datapath
import Glibc
import Wire

enum TableRatios {
    /// Packets of known connections in random order through
    /// `DirectorCore.schedule` one by one ÷ the same packets in batches of
    /// 32 with both prefetch stages first (bucket, then entry), as the
    /// daemon's run loop hands a receive batch to `Director.prefetch`.
    static let batchSpeedup = "director.batch-speedup"

    /// Best of `rounds` for each timing, the two kinds alternating.
    static func measure(entries: Int = 1_000_000, rounds: Int = 5) -> [String: Double] {
        let vip = IPv4Address(10, 0, 0, 100)
        let core = DirectorCore(configuration: DirectorCore.Configuration(maxConnections: entries))
        let reals = (1...16).map { RealServer(address: IPv4Address(10, 0, 1, UInt8($0))) }
        do { _ = try core.addService(VirtualService(address: vip, port: 80, scheduler: .wrr, mode: .nat), reals: reals) } catch {
            fatalError("bench ci: the director refused its service: \(error)")
        }
        @inline(__always) func client(_ i: Int) -> IPv4Address { IPv4Address(rawValue: 0x0B00_0000 &+ UInt32(i / 50_000)) }
        @inline(__always) func port(_ i: Int) -> UInt16 { UInt16(10_000 + i % 50_000) }
        let now = Instant.seconds(1000)
        for i in 0..<entries {
            _ = core.schedule(.tcp, client: client(i), clientPort: port(i), virtual: vip, virtualPort: 80, tcpFlags: TCPFlagBits.syn, now: now)
        }
        guard core.table.count == entries else { fatalError("bench ci: the table holds \(core.table.count) of \(entries) connections") }
        var order = [Int32](repeating: 0, count: entries)
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<entries { order[i] = Int32(i) }
        for i in stride(from: entries - 1, to: 0, by: -1) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            order.swapAt(i, Int(x % UInt64(i + 1)))
        }
        let table = core.table
        var sink: UInt64 = 0
        var single = UInt64.max, batched = UInt64.max
        for _ in 0..<rounds {
            single = min(single, time {
                order.withUnsafeBufferPointer { order in
                    for k in 0..<entries {
                        let i = Int(order[k])
                        let d = core.schedule(.tcp, client: client(i), clientPort: port(i), virtual: vip, virtualPort: 80,
                                              tcpFlags: TCPFlagBits.ack, now: now)
                        sink &+= UInt64(d.realPort)
                    }
                }
            })
            batched = min(batched, time {
                order.withUnsafeBufferPointer { order in
                    var k = 0
                    while k < entries {
                        let n = min(32, entries - k)
                        for j in k..<k + n {
                            let i = Int(order[j])
                            table.prefetchInboundSlot(proto: 6, client: client(i).rawValue, clientPort: port(i), virtual: vip.rawValue, virtualPort: 80)
                        }
                        for j in k..<k + n {
                            let i = Int(order[j])
                            table.prefetchInboundEntry(proto: 6, client: client(i).rawValue, clientPort: port(i), virtual: vip.rawValue, virtualPort: 80)
                        }
                        for j in k..<k + n {
                            let i = Int(order[j])
                            let d = core.schedule(.tcp, client: client(i), clientPort: port(i), virtual: vip, virtualPort: 80,
                                                  tcpFlags: TCPFlagBits.ack, now: now)
                            sink &+= UInt64(d.realPort)
                        }
                        k += n
                    }
                }
            })
        }
        // Keeps every loop's result alive (the optimiser cannot drop the work).
        if sink == 0x5EED { print("") }
        return [batchSpeedup: Double(single) / Double(batched)]
    }

    static func time(_ body: () -> Void) -> UInt64 {
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        body()
        clock_gettime(CLOCK_MONOTONIC, &t1)
        return UInt64(t1.tv_sec - t0.tv_sec) &* 1_000_000_000 &+ UInt64(t1.tv_nsec) &- UInt64(t0.tv_nsec)
    }
}
