// Errors of the LinuxNet layer, and the one helper every system call goes
// through (retries EINTR, throws a typed error carrying the call's name).
import Glibc

/// An `errno` value. Open: any code survives, named or not.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `EPERM`
    public static let notPermitted = Errno(rawValue: EPERM)
    /// `ENOENT`
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    /// `ESRCH` (netlink: no such route)
    public static let noSuchProcess = Errno(rawValue: ESRCH)
    /// `EINTR`
    public static let interrupted = Errno(rawValue: EINTR)
    /// `EAGAIN`
    public static let resourceTemporarilyUnavailable = Errno(rawValue: EAGAIN)
    /// `EBUSY`
    public static let busy = Errno(rawValue: EBUSY)
    /// `EEXIST`
    public static let fileExists = Errno(rawValue: EEXIST)
    /// `ENODEV` (netlink: no such interface)
    public static let noSuchDevice = Errno(rawValue: ENODEV)
    /// `EINVAL`
    public static let invalidArgument = Errno(rawValue: EINVAL)
    /// `ENOBUFS` (netlink: the socket's receive queue overflowed)
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)
    /// `ENETUNREACH` (netlink: a route's gateway is not reachable)
    public static let networkUnreachable = Errno(rawValue: ENETUNREACH)
    /// `EADDRNOTAVAIL`
    public static let addressNotAvailable = Errno(rawValue: EADDRNOTAVAIL)
    /// `ETIMEDOUT`
    public static let timedOut = Errno(rawValue: ETIMEDOUT)
    /// `EOPNOTSUPP`
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    /// `EPROTO` (a reply LinuxNet could not make sense of)
    public static let protocolError = Errno(rawValue: EPROTO)

    /// The C library's text for the code (`strerror`), e.g. "File exists".
    public var description: String { String(cString: strerror(rawValue)) }
}

/// A failed operation of the LinuxNet layer: *what* was being done, *where*
/// (namespace, interface), which call failed and the kernel's answer.
///
/// Printed as `creating veth eth1 ↔ p1 in wl-lvs-gw/wl-lvs-sw: File exists (RTM_NEWLINK)`.
public struct LinuxNetError: Error, CustomStringConvertible, Sendable {
    /// What was being done, in words: "creating veth eth1 ↔ p1".
    public var operation: String
    /// The namespace(s) it was done in ("wl-lvs-gw", or "wl-lvs-gw/wl-lvs-sw"
    /// for an operation spanning two); nil when no namespace is involved.
    public var namespace: String?
    /// The interface the operation was about, if any.
    public var interface: String?
    /// The system call or netlink request that failed: "setns", "RTM_NEWLINK".
    public var call: String
    /// The error code (from `errno`, or from the kernel's NLMSG_ERROR reply).
    public var errno: Errno
    /// The kernel's own explanation from a netlink extended ACK, if it gave one
    /// (e.g. "Nexthop has invalid gateway").
    public var kernelMessage: String?
    /// Further failures of the same pipelined batch (the first one is `self`).
    public var otherFailures: [LinuxNetError]

    public init(operation: String, namespace: String? = nil, interface: String? = nil,
                call: String, errno: Errno, kernelMessage: String? = nil,
                otherFailures: [LinuxNetError] = []) {
        self.operation = operation
        self.namespace = namespace
        self.interface = interface
        self.call = call
        self.errno = errno
        self.kernelMessage = kernelMessage
        self.otherFailures = otherFailures
    }

    public var description: String {
        var text = operation
        if let namespace { text += " in \(namespace)" }
        text += ": \(errno)"
        if let kernelMessage, !kernelMessage.isEmpty { text += " — \(kernelMessage)" }
        text += " (\(call))"
        if !otherFailures.isEmpty {
            text += "; and \(otherFailures.count) more: "
            text += otherFailures.map(\.description).joined(separator: "; ")
        }
        return text
    }
}

/// Where an operation happens, for the error it may throw.
struct OperationContext: Sendable {
    var operation: String
    var namespace: String?
    var interface: String?

    init(_ operation: String, namespace: String? = nil, interface: String? = nil) {
        self.operation = operation
        self.namespace = namespace
        self.interface = interface
    }

    func error(_ call: String, _ errno: Errno, kernelMessage: String? = nil) -> LinuxNetError {
        LinuxNetError(operation: operation, namespace: namespace, interface: interface,
                      call: call, errno: errno, kernelMessage: kernelMessage)
    }
}

/// Runs one system call that reports failure as -1 + `errno`, retrying while
/// it fails with EINTR, and throws a `LinuxNetError` naming `call` and the
/// operation otherwise.
@discardableResult
func systemCall<T: FixedWidthInteger>(
    _ call: String, _ context: @autoclosure () -> OperationContext, _ body: () -> T
) throws(LinuxNetError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw context().error(call, Errno(rawValue: code))
    }
}

/// Like `systemCall`, for calls that return an error number instead of
/// setting `errno` (pthread_*, posix_spawn*): 0 is success.
func errnoReturningCall(
    _ call: String, _ context: @autoclosure () -> OperationContext, _ body: () -> Int32
) throws(LinuxNetError) {
    while true {
        let code = body()
        if code == 0 { return }
        if code == EINTR { continue }
        throw context().error(call, Errno(rawValue: code))
    }
}
