// CLOCK_MONOTONIC, for timers and deadlines that must not jump with the wall clock.
import Glibc

/// CLOCK_MONOTONIC: time since an arbitrary start, never set back.
public enum MonotonicClock {
    /// Nanoseconds.
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Seconds.
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
