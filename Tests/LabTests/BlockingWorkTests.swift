@testable import Lab
import Synchronization
import Testing

/// The threads that open and close a big lab's ports and namespaces
/// (BlockingWork): every job runs once, failures do not stop the others,
/// and the error reported is the lowest index's, whatever finished first.
struct BlockingWorkTests {
    struct Failed: Error, Equatable { var index: Int }

    /// How often each job ran.
    final class Runs: Sendable {
        let counts: Mutex<[Int]>
        init(_ n: Int) { counts = Mutex(Array(repeating: 0, count: n)) }
        func ran(_ i: Int) { counts.withLock { $0[i] += 1 } }
        var all: [Int] { counts.withLock { $0 } }
    }

    @Test(arguments: [1, 4, 32]) func everyJobRunsOnce(threads: Int) throws {
        let runs = Runs(500)
        try BlockingWork.forEach(500, threads: threads) { runs.ran($0) }
        #expect(runs.all == Array(repeating: 1, count: 500))
    }

    @Test(arguments: [1, 8]) func aFailureStopsNothingAndTheLowestIndexIsReported(threads: Int) {
        let runs = Runs(100)
        #expect(throws: Failed(index: 7)) {
            try BlockingWork.forEach(100, threads: threads) { i in
                runs.ran(i)
                if i == 7 || i == 3 + 90 { throw Failed(index: i) }
            }
        }
        #expect(runs.all == Array(repeating: 1, count: 100))
    }

    @Test func noJobsIsNoWork() throws {
        try BlockingWork.forEach(0) { _ in Issue.record("ran a job of none") }
    }
}
