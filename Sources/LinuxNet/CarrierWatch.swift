// Whether an interface has carrier, read without allocating: the daemon
// asks for every port of every node several times a second.
import CLinuxShim
import Glibc

/// A socket inside one namespace through which its interfaces' state is
/// read (`SIOCGIFFLAGS`: up and running). For a veth, running means
/// carrier: both ends are up.
public final class CarrierWatch: @unchecked Sendable {  // one owner thread reads; the fd is fixed
    public let namespace: String
    private var descriptor: Int32

    /// Opens the socket inside namespace NAME.
    public init(namespace: String) throws {
        self.namespace = namespace
        let context = OperationContext("opening a socket to watch links", namespace: namespace)
        descriptor = try NetworkNamespace.run(namespace) { () throws(LinuxNetError) -> Int32 in
            try systemCall("socket(AF_INET)", context) {
                socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
        }
    }

    deinit { close() }

    /// Closes the socket (once).
    public func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    /// Whether INTERFACE is up and has carrier; nil when it cannot be read
    /// (gone, or the socket closed). Interface names fit Swift's small-string
    /// storage (15 bytes), so passing one as a C string allocates nothing.
    public func hasCarrier(_ interface: String) -> Bool? {
        guard descriptor >= 0 else { return nil }
        let result = interface.withCString { cwl_interface_running(descriptor, $0) }
        return result < 0 ? nil : result == 1
    }
}
