// Errors of the port layer: which operation failed, on which interface, in
// which network namespace, and the kernel's reason.
import Glibc
import Foundation

/// A port-layer failure: "creating AF_XDP socket on veth1 (queue 0) in
/// namespace wl-lab-sw: Operation not supported (errno 95)".
public struct PortError: Error, CustomStringConvertible, Sendable {
    /// What was being done ("creating AF_XDP socket", "attaching XDP program").
    public var operation: String
    /// The interface it was done on ("" if none).
    public var interface: String
    /// The network namespace of the thread that did it: its name under
    /// /run/netns if it has one, else "net:[inode]".
    public var namespace: String
    /// The errno, or 0 when the failure carries no errno.
    public var errno: Int32
    /// Extra context (a hint, the kernel verifier's log tail).
    public var detail: String

    public init(_ operation: String, interface: String = "", errno: Int32 = 0, detail: String = "",
                namespace: String? = nil) {
        self.operation = operation
        self.interface = interface
        self.errno = errno
        self.detail = detail
        self.namespace = namespace ?? PortError.currentNamespaceName()
    }

    public var description: String {
        var text = operation
        if !interface.isEmpty { text += " on \(interface)" }
        text += " in namespace \(namespace)"
        if errno != 0 { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
        if !detail.isEmpty { text += errno != 0 ? "; \(detail)" : ": \(detail)" }
        return text
    }

    /// Name of the calling thread's network namespace: the entry of
    /// /run/netns with the same inode, or "net:[inode]" (the initial
    /// namespace reads "net:[…] (initial)" when it matches PID 1's).
    public static func currentNamespaceName() -> String {
        var own = stat()
        guard stat("/proc/thread-self/ns/net", &own) == 0 else { return "unknown" }
        if let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns") {
            for name in names.sorted() {
                var st = stat()
                if stat("/run/netns/\(name)", &st) == 0, st.st_ino == own.st_ino, st.st_dev == own.st_dev {
                    return name
                }
            }
        }
        var initial = stat()
        if stat("/proc/1/ns/net", &initial) == 0, initial.st_ino == own.st_ino {
            return "net:[\(own.st_ino)] (initial)"
        }
        return "net:[\(own.st_ino)]"
    }
}

/// Interface index of `name` in the calling thread's namespace.
@usableFromInline
func portInterfaceIndex(_ name: String, operation: String) throws -> Int32 {
    let index = if_nametoindex(name)
    guard index != 0 else {
        throw PortError(operation, interface: name, errno: Glibc.errno,
                        detail: "no such interface in this namespace; ports must be opened on a thread inside the node's namespace")
    }
    return Int32(bitPattern: index)
}
