// A pipe that wakes a thread asleep in poll().
import Glibc

/// A pipe one thread writes a byte to so that another, asleep in poll() on
/// `readDescriptor`, wakes up. Both ends are non-blocking and close-on-exec.
/// A plain value: `close()` it once, after the writers stopped.
public struct WakePipe: Sendable {
    /// Put this in the sleeping thread's poll set (readable).
    public let readDescriptor: Int32
    public let writeDescriptor: Int32

    public init(operation: @autoclosure () -> String = "creating a wake-up pipe") throws(LinuxNetError) {
        var ends: [Int32] = [-1, -1]
        try systemCall("pipe", OperationContext(operation())) { pipe(&ends) }
        for fd in ends {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readDescriptor = ends[0]
        writeDescriptor = ends[1]
    }

    /// Wakes the reader. Never blocks: a full pipe means a wake-up is already due.
    public func wake() {
        var one: UInt8 = 1
        _ = write(writeDescriptor, &one, 1)
    }

    /// Reads every pending wake-up byte (the reader, once awake).
    public func drain() {
        var bytes = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while read(readDescriptor, &bytes, 32) == 32 {}
    }

    public func close() {
        _ = Glibc.close(readDescriptor)
        _ = Glibc.close(writeDescriptor)
    }
}
