// Counts the daemon's mallocs during `wirelab bench forward`.
import Lab
import Foundation
import Glibc
import LinuxNet

// MARK: - malloc counter

/// Counts a process's malloc-family calls: the lab's one malloc counter
/// (`Benchmarks/CMallocCounter/malloc_counter.c`, embedded as
/// `MallocCounterSource`) compiled at benchmark time and preloaded into the
/// daemon (LD_PRELOAD). It forwards to glibc's `__libc_*` entry points and
/// adds one to a counter in a file both processes map.
final class MallocCounter: @unchecked Sendable {   // @unchecked: `counts` is a shared mapping, written by the daemon, read here
    let library: String
    let countsPath: String
    let compiler: String
    private let counts: UnsafeMutablePointer<UInt64>

    init(directory: String) throws {
        let sourcePath = directory + "/malloc-count.c"
        library = directory + "/malloc-count.so"
        countsPath = directory + "/malloc-counts"
        try MallocCounterSource.text.write(toFile: sourcePath, atomically: true, encoding: .utf8)
        compiler = try CCompiler.find()
        try CCompiler.run(compiler, ["-O2", "-shared", "-fPIC", "-o", library, sourcePath], what: "malloc-count.c")
        let fd = open(countsPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0, ftruncate(fd, 4096) == 0 else { throw LabError("creating \(countsPath): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        guard let p = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw LabError("mapping \(countsPath): \(String(cString: strerror(errno)))")
        }
        counts = p.assumingMemoryBound(to: UInt64.self)
    }

    deinit { munmap(counts, 4096) }

    /// Malloc-family calls counted so far (by every process that loaded
    /// the library: only the daemon is started with it).
    var value: UInt64 { UnsafeRawPointer(counts).load(as: UInt64.self) }

    /// The PID of the last process whose constructor counted its start-up allocation.
    var countedBy: pid_t { pid_t(truncatingIfNeeded: UnsafeRawPointer(counts).load(fromByteOffset: 8, as: UInt64.self)) }

    /// nil if the counter is loaded into PID (mapped, per /proc/PID/maps)
    /// and counted there (its constructor's start-up allocation, recorded
    /// with PID, after the count was `before`); otherwise why not. A window
    /// may be reported as "0 mallocs" only after this said nil.
    func check(loadedInto pid: pid_t, countedSince before: UInt64) -> String? {
        let maps: String
        do { maps = try ProcFile.read("/proc/\(pid)/maps") } catch { return "\(error)" }
        guard maps.contains(library) else { return "\(library) is not mapped into the daemon (PID \(pid)): LD_PRELOAD did not reach it" }
        guard countedBy == pid, value > before else {
            return "the counter is mapped into the daemon (PID \(pid)) but did not count its start-up allocation (last counted by PID \(countedBy))"
        }
        return nil
    }

    /// The next process we start (the lab's daemon) loads the counter.
    func setEnvironment() {
        setenv("LD_PRELOAD", library, 1)
        setenv("WIRELAB_MALLOC_COUNTS", countsPath, 1)
    }

    static func unsetEnvironment() {
        unsetenv("LD_PRELOAD")
        unsetenv("WIRELAB_MALLOC_COUNTS")
    }

}
