#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Datapath

/// The buffer frames are handed in: the frame ends where an unmapped page
/// begins, so an element that reads or writes past a frame's end faults at
/// once, in a release build too (where the raw buffers' bounds checks are
/// compiled out). In front of the frame: at least 256 bytes of headroom, as
/// the live ports and the simulator give (TUN prepends its outer header).
final class GuardedBuffer {
    let base: UnsafeMutableRawPointer
    let dataBytes: Int
    let mappedBytes: Int

    init(frameBytes: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        dataBytes = (256 + frameBytes + page - 1) / page * page
        mappedBytes = dataBytes + page
        guard let p = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              p != MAP_FAILED else { fatalError("element-fuzz: mmap failed") }
        base = p
        mprotect(base + dataBytes, page, PROT_NONE)
    }

    deinit { munmap(base, mappedBytes) }

    /// Copies `frame` so that it ends at the guard page.
    func place(_ frame: UnsafeRawBufferPointer) -> PacketBuffer {
        let offset = dataBytes - frame.count
        if frame.count > 0 { (base + offset).copyMemory(from: frame.baseAddress!, byteCount: frame.count) }
        return PacketBuffer(base: base, capacity: dataBytes, offset: offset, length: frame.count)
    }
}

/// What the crash handler writes when an element traps: the replay file's
/// head (element, seed, runs, corpus), then the frame's index, port and bytes.
/// Kept in preallocated memory, written with write(2) only.
public enum CrashContext {
    nonisolated(unsafe) static var head = UnsafeMutablePointer<UInt8>.allocate(capacity: 512)
    nonisolated(unsafe) static var headLength = 0
    nonisolated(unsafe) static var input = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
    nonisolated(unsafe) static var inputLength = 0
    nonisolated(unsafe) static var index = -1
    nonisolated(unsafe) static var port = 0
    nonisolated(unsafe) static var path: UnsafeMutablePointer<CChar>? = nil
    nonisolated(unsafe) static var active = false

    static func begin(element: String, seed: UInt64, runs: Int, corpus: UInt64) {
        let text = "element-fuzz replay\nelement \(element)\nseed \(seed)\nruns \(runs)\n"
            + "corpus \(String(corpus, radix: 16))\nviolation trap (the process died on this frame)\nphase frame\n"
        let bytes = Array(text.utf8.prefix(512))
        bytes.withUnsafeBufferPointer { head.update(from: $0.baseAddress!, count: $0.count) }
        headLength = bytes.count
        index = -1
        active = true
    }

    @inline(__always)
    static func frame(index i: Int, port p: Int, _ bytes: [UInt8]) {
        guard path != nil else { return }
        index = i
        port = p
        inputLength = min(bytes.count, 1 << 16)
        bytes.withUnsafeBufferPointer { input.update(from: $0.baseAddress!, count: inputLength) }
    }

    static func end() { active = false }

    /// Writes the replay file on SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT
    /// and SIGFPE (a Swift trap is SIGILL or SIGTRAP), then dies of the signal.
    public static func install(path file: String) {
        path = strdup(file)
        for s in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            signal(s) { CrashContext.dump($0) }
        }
    }

    static func dump(_ signal: CInt) {
        if active, let path, index >= 0 {
            let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
            if fd >= 0 {
                _ = write(fd, head, headLength)
                writeText(fd, "index ")
                writeNumber(fd, index)
                writeText(fd, "\nport ")
                writeNumber(fd, port)
                writeText(fd, "\ninput ")
                var pair: (UInt8, UInt8) = (0, 0)
                for i in 0..<inputLength {
                    pair = (hexDigit(input[i] >> 4), hexDigit(input[i] & 15))
                    _ = withUnsafeBytes(of: &pair) { write(fd, $0.baseAddress, 2) }
                }
                writeText(fd, "\n")
                close(fd)
                writeText(2, "element-fuzz: trapped on frame ")
                writeNumber(2, index)
                writeText(2, "; replay file written: ")
                _ = write(2, path, strlen(path))
                writeText(2, "\n")
            }
        }
        Glibc.signal(signal, SIG_DFL)
        raise(signal)
    }

    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

    static func writeText(_ fd: CInt, _ s: StaticString) {
        _ = write(fd, s.utf8Start, s.utf8CodeUnitCount)
    }

    static func writeNumber(_ fd: CInt, _ n: Int) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var v = n, i = 20
            repeat {
                i -= 1
                d[i] = 48 + UInt8(v % 10)
                v /= 10
            } while v > 0 && i > 0
            _ = write(fd, d.baseAddress! + i, 20 - i)
        }
    }
}
