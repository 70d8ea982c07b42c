// The one malloc counter: Benchmarks/CMallocCounter/malloc_counter.c is
// linked into wire-bench and, embedded, preloaded into the daemon by
// `bench forward`. The embedded copy must be the file; preloaded, the
// counter must prove itself loaded the way `bench forward` checks it.
@testable import Bench
import Foundation
import LinuxNet
import Testing

struct MallocCounterTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func theEmbeddedSourceIsTheCFile() throws {
        let file = try String(contentsOf: Self.root.appendingPathComponent(MallocCounterSource.path), encoding: .utf8)
        #expect(MallocCounterSource.text == file,
                "Sources/Bench/Generated/MallocCounterSource.swift is stale: run scripts/embed-c-sources.sh")
        let forwarder = try String(contentsOf: Self.root.appendingPathComponent(AFXDPForwarderSource.path), encoding: .utf8)
        #expect(AFXDPForwarderSource.text == forwarder,
                "Sources/Bench/Generated/AFXDPForwarderSource.swift is stale: run scripts/embed-c-sources.sh")
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/bin/bash")
        check.arguments = [Self.root.appendingPathComponent("scripts/embed-c-sources.sh").path, "--check"]
        let errors = Pipe()
        check.standardError = errors
        try check.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        #expect(check.terminationStatus == 0, "\(message)")
    }

    /// Preload mode, as `bench forward` uses it on the daemon, here on `sleep`.
    @Test func preloadedItCountsAndNamesTheProcess() throws {
        let directory = NSTemporaryDirectory() + "wirelab-malloc-\(ProcessInfo.processInfo.processIdentifier)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let counter: MallocCounter
        do { counter = try MallocCounter(directory: directory) } catch {
            // No C compiler: `bench forward` reports "not measured" then.
            print("malloc counter not built: \(error)")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["20"]
        process.environment = ["LD_PRELOAD": counter.library, "WIRELAB_MALLOC_COUNTS": counter.countsPath]
        try process.run()
        // SIGKILL: the test runner may leave SIGTERM ignored in its children.
        defer { try? Processes.send(.kill, to: process.processIdentifier); process.waitUntilExit() }
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(5)
        while counter.countedBy != pid && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(counter.check(loadedInto: pid, countedSince: 0) == nil, "\(counter.check(loadedInto: pid, countedSince: 0) ?? "")")
        #expect(counter.value > 0)
        // Not preloaded, it is not there, and the check says so.
        let own = ProcessInfo.processInfo.processIdentifier
        #expect(counter.check(loadedInto: own, countedSince: 0)?.contains("is not mapped") == true)
    }
}
