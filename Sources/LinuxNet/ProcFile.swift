// Reading /proc and /sys files whole.
import Glibc

/// A file of /proc or /sys, read to its end. Such files report a size of 0
/// and are produced a page at a time: Foundation's
/// `String(contentsOfFile:)` returns only the first 4 KiB of them (a
/// daemon's /proc/PID/maps is ~20 KiB), so they are read here with
/// `read(2)` until it returns 0.
public enum ProcFile {
    /// The whole file as text.
    public static func read(_ path: String) throws(LinuxNetError) -> String {
        let context = OperationContext("reading \(path)")
        let fd = try systemCall("open", context) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = try systemCall("read", context) { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
