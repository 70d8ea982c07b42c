// Named network namespaces, made and removed exactly the way iproute2's
// `ip netns add/delete` does (ip/ipnetns.c), so `ip netns list/exec` and
// every other tool see ours and we see theirs.
//
// A network namespace belongs to a *thread* (task), not to a process: each
// thread has its own nsproxy, and setns(2)/unshare(2) with CLONE_NEWNET change
// only the calling thread's. LinuxNet never moves the caller's thread: every
// step that must happen "inside" a namespace runs on a fresh pthread that
// enters the namespace, does its work and exits. What that thread creates
// keeps the namespace it was created in — a socket stays bound to its
// namespace for life, and a child process inherits the namespace of the
// thread that forked it.
import CLinuxShim
import Foundation
import Glibc

public enum NetworkNamespace {
    /// Where named namespaces live (iproute2's NETNS_RUN_DIR).
    public static let runDirectory = "/run/netns"

    /// The file a named namespace is bind-mounted on: `/run/netns/NAME`.
    public static func path(of name: String) -> String { runDirectory + "/" + name }

    /// Creates the named network namespace NAME.
    ///
    /// Equals `ip netns add NAME`: makes `/run/netns` a shared mount point,
    /// creates `/run/netns/NAME`, then on a fresh thread `unshare(CLONE_NEWNET)`
    /// and bind-mounts that thread's `/proc/self/task/TID/ns/net` onto the file.
    /// The calling thread's namespace does not change. Throws (`File exists`)
    /// if NAME exists; leaves nothing behind on failure.
    public static func create(_ name: String) throws {
        let context = OperationContext("creating namespace \(name)", namespace: name)
        try validate(name, context)
        try prepareRunDirectory(context)
        let file = path(of: name)
        let fd = try systemCall("open \(file)", context) {
            Glibc.open(file, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        }
        close(fd)
        do {
            try onFreshThread(context) {
                try systemCall("unshare(CLONE_NEWNET)", context) { cwl_unshare(CLONE_NEWNET) }
                // /proc/self is the thread-group leader; this thread's own
                // namespace link is under task/TID.
                let source = "/proc/self/task/\(cwl_gettid())/ns/net"
                try systemCall("mount --bind \(source) \(file)", context) {
                    mount(source, file, "none", UInt(MS_BIND), nil)
                }
            }
        } catch {
            _ = umount2(file, Int32(MNT_DETACH))
            _ = unlink(file)
            throw error
        }
    }

    /// Deletes the named network namespace NAME.
    ///
    /// Equals `ip netns delete NAME`: lazily unmounts `/run/netns/NAME`
    /// (MNT_DETACH) and unlinks it. The kernel frees the namespace, and the
    /// interfaces in it (veth peers elsewhere go with them), once nothing else
    /// holds it — processes still running inside keep it alive.
    public static func delete(_ name: String) throws {
        let context = OperationContext("deleting namespace \(name)", namespace: name)
        try validate(name, context)
        let file = path(of: name)
        _ = umount2(file, Int32(MNT_DETACH))  // EINVAL if not mounted: iproute2 ignores it too
        try systemCall("unlink \(file)", context) { unlink(file) }
    }

    /// Deletes NAME if it exists (also a leftover file of an interrupted
    /// create); returns whether there was anything to delete.
    @discardableResult
    public static func deleteIfExists(_ name: String) throws -> Bool {
        do {
            try delete(name)
            return true
        } catch let error as LinuxNetError where error.errno == .noSuchFileOrDirectory {
            return false
        }
    }

    /// Whether `/run/netns/NAME` is a mounted namespace (not merely a file).
    public static func exists(_ name: String) -> Bool {
        guard (try? validate(name, OperationContext(""))) != nil else { return false }
        return cwl_is_nsfs(path(of: name)) == 1
    }

    /// The names in `/run/netns`, sorted. Equals `ip netns list` (without ids).
    public static func list() throws -> [String] {
        let context = OperationContext("listing namespaces")
        guard let dir = opendir(runDirectory) else {
            if errno == ENOENT { return [] }
            throw context.error("opendir \(runDirectory)", Errno(rawValue: errno))
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Opens NAME for setns(2) and IFLA_NET_NS_FD (`/run/netns/NAME`, O_RDONLY).
    public static func open(_ name: String) throws -> Handle {
        try open(name, OperationContext("opening namespace \(name)", namespace: name))
    }

    /// Runs `body` on a fresh thread that has entered namespace NAME, waits
    /// for it and returns what it returns (or throws what it throws). The
    /// calling thread's namespace never changes. Like `ip netns exec NAME`,
    /// minus the private /sys and /etc/netns mounts: inside `body` use
    /// netlink and /proc/sys/net (per namespace), not /sys/class/net.
    ///
    /// It `throws` rather than `rethrows` because entering NAME itself can
    /// fail (no such namespace).
    public static func run<T>(_ name: String, _ body: () throws -> T) throws -> T {
        let context = OperationContext("entering namespace \(name)", namespace: name)
        let handle = try open(name, context)
        defer { handle.close() }
        return try run(handle, context, body)
    }

    /// `run(_:_:)` with an already open namespace.
    public static func run<T>(_ namespace: Handle, _ body: () throws -> T) throws -> T {
        try run(namespace, OperationContext("entering namespace \(namespace.name)", namespace: namespace.name), body)
    }

    /// An open namespace file (`/run/netns/NAME`): what setns(2) and
    /// IFLA_NET_NS_FD take. Closes itself on deinit unless borrowed.
    public final class Handle: @unchecked Sendable, CustomStringConvertible {
        /// The namespace's name, for messages.
        public let name: String
        /// The open descriptor, -1 once closed.
        public private(set) var fileDescriptor: Int32
        private let owned: Bool

        init(name: String, fileDescriptor: Int32, owned: Bool) {
            self.name = name
            self.fileDescriptor = fileDescriptor
            self.owned = owned
        }

        /// Wraps a descriptor that someone else owns and closes (never closed
        /// here). Tests use it to encode requests with a fixed fd number.
        public static func borrowing(fileDescriptor: Int32, name: String) -> Handle {
            Handle(name: name, fileDescriptor: fileDescriptor, owned: false)
        }

        /// Closes the descriptor (once; later calls do nothing).
        public func close() {
            if owned && fileDescriptor >= 0 { _ = Glibc.close(fileDescriptor) }
            fileDescriptor = -1
        }

        deinit { close() }

        public var description: String { "\(name) (fd \(fileDescriptor))" }
    }

    // MARK: - Internals

    static func open(_ name: String, _ context: OperationContext) throws(LinuxNetError) -> Handle {
        try validate(name, context)
        let file = path(of: name)
        let fd = try systemCall("open \(file)", context) { Glibc.open(file, O_RDONLY | O_CLOEXEC) }
        return Handle(name: name, fileDescriptor: fd, owned: true)
    }

    static func run<T>(_ namespace: Handle, _ context: OperationContext, _ body: () throws -> T) throws -> T {
        try onFreshThread(context) {
            try systemCall("setns", context) { cwl_setns(namespace.fileDescriptor, CLONE_NEWNET) }
            return try body()
        }
    }

    /// iproute2's rules: a plain file name (no "/", not "." or "..").
    static func validate(_ name: String, _ context: OperationContext) throws(LinuxNetError) {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.utf8.count > 255
            || name.utf8.contains(0) {
            throw context.error("checking the name \"\(name)\"", .invalidArgument)
        }
    }

    private static let runDirectoryLock = NSLock()
    nonisolated(unsafe) private static var runDirectoryPrepared = false

    /// `mkdir -p /run/netns; mount --make-shared /run/netns`, first making it a
    /// mount point (`mount --bind /run/netns /run/netns`) if it is not one —
    /// ip netns add does this so that unmounting a namespace file propagates
    /// to every mount namespace. Done once per process.
    private static func prepareRunDirectory(_ context: OperationContext) throws(LinuxNetError) {
        runDirectoryLock.lock()
        defer { runDirectoryLock.unlock() }
        if runDirectoryPrepared { return }
        if mkdir(runDirectory, 0o755) != 0 && errno != EEXIST {
            throw context.error("mkdir \(runDirectory)", Errno(rawValue: errno))
        }
        var madeMountPoint = false
        while mount("", runDirectory, "none", UInt(MS_SHARED | MS_REC), nil) != 0 {
            let code = errno
            if code == EINTR { continue }
            // EINVAL: not a mount point yet; make it one, once.
            guard code == EINVAL, !madeMountPoint else {
                throw context.error("mount --make-shared \(runDirectory)", Errno(rawValue: code))
            }
            try systemCall("mount --bind \(runDirectory) \(runDirectory)", context) {
                mount(runDirectory, runDirectory, "none", UInt(MS_BIND | MS_REC), nil)
            }
            madeMountPoint = true
        }
        runDirectoryPrepared = true
    }
}

/// Runs `body` on a new pthread and waits for it to finish. The thread is
/// thrown away afterwards, so whatever `body` does to the thread's own state
/// (its namespace) ends with it.
func onFreshThread<T>(_ context: @autoclosure () -> OperationContext, _ body: () throws -> T) throws -> T {
    try withoutActuallyEscaping(body) { body in
        var result: Result<T, any Error>?
        let work = Unmanaged.passRetained(ThreadWork { result = Result { try body() } })
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { argument in
            Unmanaged<ThreadWork>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, work.toOpaque())
        if code != 0 {
            work.release()
            throw context().error("pthread_create", Errno(rawValue: code))
        }
        // The thread cannot be cancelled and `body` runs to its end, so after
        // the join `result` is set and nothing refers to `body` any more.
        pthread_join(thread, nil)
        return try result!.get()
    }
}

/// What `onFreshThread` hands its pthread.
private final class ThreadWork {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

extension NetworkNamespace {
    /// Moves the CALLING thread into the named namespace for good. Only for
    /// a process about to exec a command there (`wirelab exec`); everything
    /// else uses `run`, which leaves the caller's thread alone.
    public static func enterOnCurrentThread(_ name: String) throws {
        let handle = try open(name)
        defer { handle.close() }
        guard cwl_setns(handle.fileDescriptor, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
            throw LinuxNetError(operation: "entering namespace", namespace: name, call: "setns", errno: Errno(rawValue: errno))
        }
    }
}
