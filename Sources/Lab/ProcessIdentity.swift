import Foundation
import LinuxNet

/// Process identity from /proc, so a recorded PID is only signalled while it
/// is still the process we started.
public enum ProcessIdentity {
    public static func startTime(of pid: Int32) -> UInt64? {
        Processes.status(of: pid)?.startTime
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
        // A process that ended meanwhile (ESRCH) needs no signal.
        for record in running { try? Processes.send(.terminate, to: record.pid) }
        let deadline = Date().addingTimeInterval(grace)
        while true {
            running.removeAll { !isAlive($0) || isZombie($0.pid) }
            if running.isEmpty || Date() >= deadline { break }
            Thread.sleep(forTimeInterval: 0.002)
        }
        for record in running where isAlive(record) { try? Processes.send(.kill, to: record.pid) }
    }

    /// A zombie, or gone.
    static func isZombie(_ pid: Int32) -> Bool {
        Processes.status(of: pid)?.isZombie ?? true
    }
}
