// Processes started inside a network namespace, without `ip netns exec`.
//
// Why this works: a new process gets the namespaces of the *thread* that
// created it — fork/clone copies the calling task's nsproxy, and glibc's
// posix_spawn is a clone(CLONE_VM | CLONE_VFORK) from the calling thread. So
// we posix_spawn from a fresh thread that has setns'd into the namespace (see
// NetworkNamespace.run); the child and everything it starts live in that
// namespace, while every other thread of ours stays where it was.
//
// Unlike `ip netns exec`, no private mount namespace is made: /sys (and so
// /sys/class/net) still shows the caller's view, and /etc/netns/NAME files
// are not bind-mounted. Tools that use netlink or ioctls (ip, ping, ethtool,
// curl, iperf3) see the namespace as expected.
import CLinuxShim
import Glibc

/// A process started inside a network namespace.
public struct NamespaceProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The namespace it was started in.
    public let namespace: String
    /// Our ends of the pipes asked for with `.pipe` (close-on-exec); the
    /// caller reads/writes and closes them.
    public let standardInput: Int32?
    public let standardOutput: Int32?
    public let standardError: Int32?

    /// Where one of the child's standard streams goes.
    public enum IO: Sendable, Hashable {
        /// /dev/null.
        case null
        /// Ours (the same file as our own stream).
        case inherit
        /// A file: read for stdin; created (0644) and appended to for
        /// stdout/stderr — a log file.
        case file(String)
        /// A new pipe whose other end is returned in `standardInput/Output/Error`.
        case pipe
        /// stderr only: the same as stdout (`2>&1`).
        case sameAsStandardOutput
    }

    /// How a process ended.
    public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        public var isSuccess: Bool { self == .exited(0) }
        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    /// Starts ARGUMENTS[0] (looked up in PATH) with ARGUMENTS, inside
    /// namespace NAME. No shell is involved.
    ///
    /// - environment: nil inherits ours; otherwise exactly these variables.
    /// - detached: a new session (setsid), so no terminal's hangup or Ctrl-C
    ///   reaches it and it outlives the CLI; point its streams at `.null` or a
    ///   `.file` then. Otherwise it stays in our process group.
    ///
    /// The child starts with no signals blocked and every signal at its
    /// default action. Equals `ip netns exec NAME ARGUMENTS…` (see the top of
    /// this file for the differences).
    public static func spawn(_ arguments: [String], namespace: String, environment: [String: String]? = nil,
                             standardInput: IO = .null, standardOutput: IO = .null, standardError: IO = .null,
                             detached: Bool = false) throws -> NamespaceProcess {
        let context = OperationContext("starting \(arguments.first ?? "nothing")", namespace: namespace)
        guard !arguments.isEmpty, standardInput != .sameAsStandardOutput, standardOutput != .sameAsStandardOutput else {
            throw context.error("checking the arguments", .invalidArgument)
        }

        var actions = posix_spawn_file_actions_t()
        try errnoReturningCall("posix_spawn_file_actions_init", context) { posix_spawn_file_actions_init(&actions) }
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        try errnoReturningCall("posix_spawnattr_init", context) { posix_spawnattr_init(&attributes) }
        defer { posix_spawnattr_destroy(&attributes) }

        // Our ends of pipes, and the child's ends (closed here after the spawn).
        var ours: [Int32: Int32] = [:]
        var theirs: [Int32] = []
        defer { theirs.forEach { _ = close($0) } }
        do {
            for (fd, io) in [(Int32(0), standardInput), (1, standardOutput), (2, standardError)] {
                switch io {
                case .inherit:
                    break
                case .null:
                    try errnoReturningCall("posix_spawn_file_actions_addopen", context) {
                        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
                    }
                case .file(let path):
                    let flags = fd == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_APPEND
                    try errnoReturningCall("posix_spawn_file_actions_addopen", context) {
                        posix_spawn_file_actions_addopen(&actions, fd, path, flags, 0o644)
                    }
                case .pipe:
                    var ends: [Int32] = [-1, -1]
                    try systemCall("pipe2", context) { cwl_pipe_cloexec(&ends) }
                    let (child, parent) = fd == 0 ? (ends[0], ends[1]) : (ends[1], ends[0])
                    theirs.append(child)
                    ours[fd] = parent
                    // dup2 onto 0/1/2 clears close-on-exec on the copy only.
                    try errnoReturningCall("posix_spawn_file_actions_adddup2", context) {
                        posix_spawn_file_actions_adddup2(&actions, child, fd)
                    }
                case .sameAsStandardOutput:
                    try errnoReturningCall("posix_spawn_file_actions_adddup2", context) {
                        posix_spawn_file_actions_adddup2(&actions, 1, 2)
                    }
                }
            }

            // Nothing but 0, 1 and 2 crosses into the child (see the shim).
            try errnoReturningCall("posix_spawn_file_actions_addclosefrom_np", context) {
                cwl_posix_spawn_file_actions_addclosefrom(&actions, 3)
            }
            var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
            if detached { flags |= Int32(cwl_posix_spawn_setsid_flag()) }
            try errnoReturningCall("posix_spawnattr_setflags", context) { posix_spawnattr_setflags(&attributes, Int16(flags)) }
            var noSignals = sigset_t()
            sigemptyset(&noSignals)
            var allSignals = sigset_t()
            sigfillset(&allSignals)
            try errnoReturningCall("posix_spawnattr_setsigmask", context) { posix_spawnattr_setsigmask(&attributes, &noSignals) }
            try errnoReturningCall("posix_spawnattr_setsigdefault", context) { posix_spawnattr_setsigdefault(&attributes, &allSignals) }

            let argv = arguments.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { variables in
                variables.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
            }
            defer { envp?.forEach { free($0) } }

            let pid = try NetworkNamespace.run(namespace) { () throws -> pid_t in
                var pid: pid_t = 0
                try errnoReturningCall("posix_spawnp \(arguments[0])", context) {
                    if let envp {
                        return posix_spawnp(&pid, argv[0]!, &actions, &attributes, argv, envp)
                    }
                    return posix_spawnp(&pid, argv[0]!, &actions, &attributes, argv, environ)
                }
                return pid
            }
            return NamespaceProcess(pid: pid, namespace: namespace, standardInput: ours[0],
                                    standardOutput: ours[1], standardError: ours[2])
        } catch {
            ours.values.forEach { _ = close($0) }
            throw error
        }
    }

    /// Waits for the process to end (waitpid) and returns how it ended.
    public func wait() throws -> ExitStatus {
        var status: Int32 = 0
        try systemCall("waitpid", OperationContext("waiting for process \(pid)", namespace: namespace)) {
            waitpid(pid, &status, 0)
        }
        return Self.exitStatus(status)
    }

    /// How the process ended, or nil if it is still running (waitpid WNOHANG).
    public func poll() throws -> ExitStatus? {
        var status: Int32 = 0
        let result = try systemCall("waitpid", OperationContext("checking on process \(pid)", namespace: namespace)) {
            waitpid(pid, &status, WNOHANG)
        }
        return result == 0 ? nil : Self.exitStatus(status)
    }

    /// Sends SIGNAL to the process (kill(2)).
    public func signal(_ signal: Int32) throws {
        try systemCall("kill", OperationContext("signalling process \(pid)", namespace: namespace)) { kill(pid, signal) }
    }

    /// What `run` captured.
    public struct Output: Sendable {
        public var status: ExitStatus
        public var standardOutput: String
        public var standardError: String
    }

    /// Runs a short command inside namespace NAME to its end and returns its
    /// exit status, stdout and stderr. Kills it (SIGKILL) and throws
    /// `ETIMEDOUT` if it runs longer than TIMEOUT seconds.
    public static func run(_ arguments: [String], namespace: String, environment: [String: String]? = nil,
                           timeout: Double = 30) throws -> Output {
        let process = try spawn(arguments, namespace: namespace, environment: environment,
                                standardInput: .null, standardOutput: .pipe, standardError: .pipe)
        let context = OperationContext("running \(arguments.joined(separator: " "))", namespace: namespace)
        var streams: [(fd: Int32, data: [UInt8])] = [(process.standardOutput!, []), (process.standardError!, [])]
        defer { streams.forEach { _ = close($0.fd) } }
        var open = [true, true]
        let deadline = MonotonicClock.seconds() + timeout
        var buffer = [UInt8](repeating: 0, count: 16384)
        while open.contains(true) {
            let remaining = deadline - MonotonicClock.seconds()
            if remaining <= 0 {
                _ = kill(process.pid, SIGKILL)
                _ = try? process.wait()
                throw context.error("poll", .timedOut, kernelMessage: "still running after \(timeout) s; killed")
            }
            var fds = streams.indices.map { pollfd(fd: open[$0] ? streams[$0].fd : -1, events: Int16(POLLIN), revents: 0) }
            let ready = try systemCall("poll", context) { Glibc.poll(&fds, nfds_t(fds.count), Int32(min(remaining, 1) * 1000) + 1) }
            if ready == 0 { continue }
            for i in streams.indices where open[i] && fds[i].revents != 0 {
                let count = try buffer.withUnsafeMutableBytes { bytes throws(LinuxNetError) in
                    try systemCall("read", context) { read(streams[i].fd, bytes.baseAddress, bytes.count) }
                }
                if count == 0 { open[i] = false } else { streams[i].data += buffer[0..<count] }
            }
        }
        return Output(status: try process.wait(),
                      standardOutput: String(decoding: streams[0].data, as: UTF8.self),
                      standardError: String(decoding: streams[1].data, as: UTF8.self))
    }

    /// Decodes a waitpid status (WIFEXITED/WEXITSTATUS/WTERMSIG are macros).
    static func exitStatus(_ status: Int32) -> ExitStatus {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }
}
