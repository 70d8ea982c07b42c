import Foundation
import Synchronization

/// Many independent jobs that mostly wait in the kernel, run on several
/// threads at once. Closing an AF_XDP socket waits for an RCU grace period
/// (xsk_release → xsk_unbind_dev → synchronize_net, 8–16 ms here), and so
/// do namespace creation and XDP attachment in part: one after another, a
/// 1000-node lab spent 15 s closing its ports. Waiting threads use no CPU,
/// and concurrent waiters share grace periods, so this helps on 2 cores.
enum BlockingWork {
    /// Threads used at most: enough to overlap the waits, few enough that
    /// their stacks (8 MiB of address space each, little of it resident)
    /// stay small beside the lab.
    static let defaultThreads = 32

    /// Runs `body(i)` for every i in 0..<count, on up to `threads` threads;
    /// returns when all are done. Every job runs even if some throw; the
    /// error of the lowest index is rethrown.
    static func forEach(_ count: Int, threads: Int = defaultThreads, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        guard count > 0 else { return }
        let workers = max(1, min(threads, count))
        if workers == 1 {
            var first: (any Error)?
            for i in 0..<count { do { try body(i) } catch { if first == nil { first = error } } }
            if let first { throw first }
            return
        }
        // (Atomic and Mutex cannot be copied: the threads share them in a box.)
        final class Shared: Sendable {
            let next = Atomic<Int>(0)
            let failure = Mutex<(index: Int, error: any Error)?>(nil)
        }
        let shared = Shared()
        let done = DispatchGroup()
        for _ in 0..<workers {
            done.enter()
            let thread = Thread {
                while true {
                    let i = shared.next.add(1, ordering: .relaxed).oldValue
                    if i >= count { break }
                    do { try body(i) } catch {
                        shared.failure.withLock { f in if f == nil || i < f!.index { f = (i, error) } }
                    }
                }
                done.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()
        if let f = shared.failure.withLock({ $0 }) { throw f.error }
    }
}
