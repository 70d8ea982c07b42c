import Foundation
import Glibc

/// Process identity from /proc, so a recorded PID is only signalled while it
/// is still the process we started.
public enum ProcessIdentity {
    public static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "comm)" start at field 3; starttime is field 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    public static func isAlive(_ record: LabState.ProcessRecord) -> Bool {
        startTime(of: record.pid) == record.startTime
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL — only if it is still ours.
    public static func stop(_ record: LabState.ProcessRecord, grace: TimeInterval = 2) {
        stop([record], grace: grace)
    }

    /// SIGTERM to every record that is still ours, ONE wait of up to `grace`
    /// for all of them, then SIGKILL to whatever is left: a lab's processes
    /// stop in the time of the slowest, not in the sum of their times.
    public static func stop(_ records: [LabState.ProcessRecord], grace: TimeInterval = 2) {
        var running = records.filter(isAlive)
        for record in running { kill(record.pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while true {
            running.removeAll { !isAlive($0) || isZombie($0.pid) }
            if running.isEmpty || Date() >= deadline { break }
            usleep(2_000)
        }
        for record in running where isAlive(record) { kill(record.pid, SIGKILL) }
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return true }
        return text[text.index(after: close)...].dropFirst().first == "Z"
    }
}
