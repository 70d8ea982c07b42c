// An exclusive lock on a file (flock), held by an object.
import Glibc

/// An exclusive flock(2) on a file, held until this object goes away or
/// the process dies.
public final class FileLock: Sendable {
    public let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Opens PATH (created 0600 if missing) and locks it without waiting;
    /// nil when another open file holds the lock.
    public static func acquire(_ path: String) throws(LinuxNetError) -> FileLock? {
        let context = OperationContext("opening lock \(path)")
        let fd = try systemCall("open", context) { open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw OperationContext("locking \(path)").error("flock", Errno(rawValue: code))
        }
        return FileLock(path: path, descriptor: fd)
    }
}
