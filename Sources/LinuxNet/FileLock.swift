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
    /// nil when another open file holds the lock. If the file was removed
    /// (`removeFile`) between our open and our flock, the lock we got is on
    /// a file nobody else will open: we let it go and lock the new one.
    public static func acquire(_ path: String) throws(LinuxNetError) -> FileLock? {
        let context = OperationContext("opening lock \(path)")
        while true {
            let fd = try systemCall("open", context) { open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600) }
            while flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                if code == EINTR { continue }
                close(fd)
                if code == EWOULDBLOCK { return nil }
                throw OperationContext("locking \(path)").error("flock", Errno(rawValue: code))
            }
            var held = stat(), named = stat()
            if fstat(fd, &held) != 0 {
                let code = errno
                close(fd)
                throw OperationContext("locking \(path)").error("fstat", Errno(rawValue: code))
            }
            if stat(path, &named) != 0 {
                let code = errno
                close(fd)
                if code == ENOENT { continue }
                throw OperationContext("locking \(path)").error("stat", Errno(rawValue: code))
            }
            if named.st_dev == held.st_dev && named.st_ino == held.st_ino {
                return FileLock(path: path, descriptor: fd)
            }
            close(fd)
        }
    }

    /// Removes the lock's file while the lock is still held (the lock
    /// itself goes with this object): whoever opened the old file before
    /// finds it busy or, once it is released, sees it was removed and
    /// locks a new one (`acquire`). A file already gone is fine.
    public func removeFile() throws(LinuxNetError) {
        if unlink(path) != 0 {
            let code = errno
            if code == ENOENT { return }
            throw OperationContext("removing lock \(path)").error("unlink", Errno(rawValue: code))
        }
    }
}
