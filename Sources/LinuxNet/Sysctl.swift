// Network sysctls of one namespace (/proc/sys/net/…).
//
// The files under /proc/sys/net belong to the network namespace of the task
// that opens them (the kernel resolves them through current->nsproxy), so
// LinuxNet opens them from a thread that has entered the namespace. Only
// `net.*` keys are accepted: other sysctls are global, and writing one would
// change the host.
import Glibc

public enum Sysctl {
    /// One sysctl key and value.
    public struct Setting: Sendable, Hashable, CustomStringConvertible {
        /// The key's path below /proc/sys, e.g. ["net", "ipv4", "conf", "eth0.100", "rp_filter"].
        public var path: [String]
        /// The value as written to the file (no newline).
        public var value: String

        public init(path: [String], value: String) {
            self.path = path
            self.value = value
        }

        /// A key written as sysctl(8) takes it: `net.ipv4.ip_forward`, or with
        /// slashes (`net/ipv4/conf/eth0.100/rp_filter`) when a component has dots.
        public init(_ key: String, _ value: String) {
            self.init(path: Sysctl.components(of: key), value: value)
        }

        /// The key in sysctl(8)'s dotted form.
        public var key: String { path.joined(separator: ".") }
        public var description: String { "\(key)=\(value)" }

        /// `net.ipv4.ip_forward`: route IPv4 between interfaces (sets every
        /// interface's `forwarding` too).
        public static func ipv4Forwarding(_ on: Bool) -> Setting {
            Setting(path: ["net", "ipv4", "ip_forward"], value: on ? "1" : "0")
        }

        /// `net.ipv4.conf.INTERFACE.forwarding` for one interface (or "all"/"default").
        public static func ipv4Forwarding(_ on: Bool, interface: String) -> Setting {
            conf(interface, "forwarding", on ? "1" : "0")
        }

        /// `net.ipv4.conf.INTERFACE.arp_ignore`: 1 = answer ARP only for
        /// addresses on the receiving interface (real servers of DR/TUN services).
        public static func arpIgnore(_ level: Int, interface: String = "all") -> Setting {
            conf(interface, "arp_ignore", String(level))
        }

        /// `net.ipv4.conf.INTERFACE.arp_announce`: 2 = always use the best
        /// local address of the outgoing interface as ARP source.
        public static func arpAnnounce(_ level: Int, interface: String = "all") -> Setting {
            conf(interface, "arp_announce", String(level))
        }

        /// `net.ipv4.conf.INTERFACE.rp_filter`: 0 off, 1 strict, 2 loose
        /// (the kernel uses the larger of `all` and the interface's value).
        public static func reversePathFilter(_ mode: Int, interface: String = "all") -> Setting {
            conf(interface, "rp_filter", String(mode))
        }

        /// `net.ipv4.conf.INTERFACE.accept_local`: accept packets whose source
        /// is a local address.
        public static func acceptLocal(_ on: Bool, interface: String = "all") -> Setting {
            conf(interface, "accept_local", on ? "1" : "0")
        }

        /// `net.ipv6.conf.INTERFACE.disable_ipv6`.
        public static func ipv6Disabled(_ disabled: Bool, interface: String = "all") -> Setting {
            Setting(path: ["net", "ipv6", "conf", interface, "disable_ipv6"], value: disabled ? "1" : "0")
        }

        /// `net.ipv4.fib_multipath_hash_policy`: 0 L3, 1 L4 (5-tuple), 2 L3 inner, 3 custom.
        public static func multipathHashPolicy(_ policy: Int) -> Setting {
            Setting(path: ["net", "ipv4", "fib_multipath_hash_policy"], value: String(policy))
        }

        private static func conf(_ interface: String, _ name: String, _ value: String) -> Setting {
            Setting(path: ["net", "ipv4", "conf", interface, name], value: value)
        }
    }

    /// Reads KEY in namespace NAME, without the trailing newline.
    /// Equals `ip netns exec NAME sysctl -n KEY`.
    public static func read(_ key: String, namespace: String) throws -> String {
        let path = components(of: key)
        let context = OperationContext("reading \(path.joined(separator: "."))", namespace: namespace)
        let file = try procPath(path, context)
        return try NetworkNamespace.run(namespace) { () throws -> String in
            let fd = try systemCall("open \(file)", context) { open(file, O_RDONLY | O_CLOEXEC) }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = try buffer.withUnsafeMutableBytes { bytes throws(LinuxNetError) in
                try systemCall("read \(file)", context) { Glibc.read(fd, bytes.baseAddress, bytes.count) }
            }
            var text = String(decoding: buffer[0..<count], as: UTF8.self)
            while text.last == "\n" { text.removeLast() }
            return text
        }
    }

    /// Writes KEY=VALUE in namespace NAME. Equals `ip netns exec NAME sysctl -w KEY=VALUE`.
    public static func write(_ key: String, _ value: String, namespace: String) throws {
        try apply([Setting(key, value)], namespace: namespace)
    }

    /// Writes every setting, in order, from one thread inside namespace NAME.
    public static func apply(_ settings: [Setting], namespace: String) throws {
        let files = try settings.map { setting in
            try procPath(setting.path, OperationContext("setting \(setting)", namespace: namespace))
        }
        try NetworkNamespace.run(namespace) { () throws in
            for (setting, file) in zip(settings, files) {
                let context = OperationContext("setting \(setting)", namespace: namespace,
                                               interface: setting.path.count == 5 && setting.path[2] == "conf" ? setting.path[3] : nil)
                let fd = try systemCall("open \(file)", context) { open(file, O_WRONLY | O_CLOEXEC) }
                defer { close(fd) }
                let bytes = Array((setting.value + "\n").utf8)
                let written = try bytes.withUnsafeBytes { raw throws(LinuxNetError) in
                    try systemCall("write \(file)", context) { Glibc.write(fd, raw.baseAddress, raw.count) }
                }
                if written != bytes.count { throw context.error("write \(file)", .protocolError, kernelMessage: "short write") }
            }
        }
    }

    /// `net.ipv4.ip_forward` → ["net", "ipv4", "ip_forward"]; slashes win over dots.
    static func components(of key: String) -> [String] {
        let separator: Character = key.contains("/") ? "/" : "."
        return key.split(separator: separator, omittingEmptySubsequences: false).map(String.init)
    }

    /// /proc/sys/PATH, after checking it is a `net.*` key with sane components.
    static func procPath(_ path: [String], _ context: OperationContext) throws(LinuxNetError) -> String {
        guard path.count >= 2, path[0] == "net",
              path.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("/") && !$0.utf8.contains(0) })
        else {
            throw context.error("checking the key", .invalidArgument,
                                kernelMessage: "only net.* sysctls are per namespace")
        }
        return "/proc/sys/" + path.joined(separator: "/")
    }
}
