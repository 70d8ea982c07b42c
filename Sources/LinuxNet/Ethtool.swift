// Offload switches of interfaces in a namespace, through the ethtool ioctl
// (SIOCETHTOOL with the per-feature ETHTOOL_G*/S* commands).
//
// Why turn them off: a veth hands frames to its peer with checksums still to
// be filled in (CHECKSUM_PARTIAL) and TCP segments up to 64 KiB (TSO/GSO).
// AF_PACKET captures and AF_XDP copies see those frames as they are — bad
// checksums, oversized segments — so links whose frames the userspace data
// plane or a capture must read get `ethtool -K IF tx off tso off gso off`.
import CLinuxShim
import Glibc

/// An ethtool handle for one namespace: a socket opened inside it, through
/// which SIOCETHTOOL reaches that namespace's interfaces.
///
/// Features are read and written the way ethtool ≥ 2.6.39 does, by name
/// through ETHTOOL_GSTRINGS(ETH_SS_FEATURES) / ETHTOOL_GFEATURES /
/// ETHTOOL_SFEATURES, because the old per-offload commands (ETHTOOL_STSO, …)
/// do not reach newer feature bits: on kernel 6.18, ETHTOOL_STSO leaves
/// tx-tcp-accecn-segmentation on, where `ethtool -K IF tso off` turns it off.
public final class Ethtool {
    /// The namespace's name, for error messages.
    public let namespace: String
    private var fileDescriptor: Int32
    /// The kernel's feature names (ETH_SS_FEATURES), bit i = names[i].
    private var featureNames: [String]?

    /// An offload group as `ethtool -K` names it, and the feature names it
    /// covers (ethtool's own patterns from its off_flag_def table).
    public enum Offload: Sendable, CaseIterable, CustomStringConvertible {
        /// `rx` (rx-checksumming): rx-checksum
        case receiveChecksum
        /// `tx` (tx-checksumming): tx-checksum-*. Without it the kernel also
        /// drops TSO.
        case transmitChecksum
        /// `sg` (scatter-gather): tx-scatter-gather*
        case scatterGather
        /// `tso` (tcp-segmentation-offload): tx-tcp*-segmentation
        case tcpSegmentation
        /// `gso` (generic-segmentation-offload): tx-generic-segmentation
        case genericSegmentation
        /// `gro` (generic-receive-offload): rx-gro
        case genericReceive

        /// The name `ethtool -K` takes.
        public var description: String {
            switch self {
            case .receiveChecksum: "rx"
            case .transmitChecksum: "tx"
            case .scatterGather: "sg"
            case .tcpSegmentation: "tso"
            case .genericSegmentation: "gso"
            case .genericReceive: "gro"
            }
        }

        /// The kernel feature names of the group: a prefix, optionally `*`, a suffix.
        public var pattern: String {
            switch self {
            case .receiveChecksum: "rx-checksum"
            case .transmitChecksum: "tx-checksum-*"
            case .scatterGather: "tx-scatter-gather*"
            case .tcpSegmentation: "tx-tcp*-segmentation"
            case .genericSegmentation: "tx-generic-segmentation"
            case .genericReceive: "rx-gro"
            }
        }

        func matches(_ name: String) -> Bool {
            guard let star = pattern.firstIndex(of: "*") else { return name == pattern }
            let head = pattern[..<star], tail = pattern[pattern.index(after: star)...]
            return name.count >= head.count + tail.count && name.hasPrefix(head) && name.hasSuffix(tail)
        }

        /// The pre-2.6.39 get command (ETHTOOL_GRXCSUM, ETHTOOL_GTXCSUM, …).
        var legacyGetCommand: UInt32 {
            switch self {
            case .receiveChecksum: UInt32(ETHTOOL_GRXCSUM)
            case .transmitChecksum: UInt32(ETHTOOL_GTXCSUM)
            case .scatterGather: UInt32(ETHTOOL_GSG)
            case .tcpSegmentation: UInt32(ETHTOOL_GTSO)
            case .genericSegmentation: UInt32(ETHTOOL_GGSO)
            case .genericReceive: UInt32(ETHTOOL_GGRO)
            }
        }
    }

    /// One device feature, as one line of `ethtool -k IF` (kernel names).
    public struct Feature: Sendable, Hashable {
        public var name: String
        /// Currently on.
        public var isActive: Bool
        /// Asked to be on (may differ from active when another feature blocks it).
        public var isRequested: Bool
        /// Can be changed on this device (not `[fixed]`).
        public var isChangeable: Bool
    }

    /// Opens a socket inside namespace NAME for ethtool requests.
    public init(namespace: String) throws {
        self.namespace = namespace
        let context = OperationContext("opening an ethtool socket", namespace: namespace)
        fileDescriptor = try NetworkNamespace.run(namespace) { () throws(LinuxNetError) -> Int32 in
            try systemCall("socket(AF_INET)", context) {
                socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
        }
    }

    deinit { close() }

    /// Closes the socket (once).
    public func close() {
        if fileDescriptor >= 0 { _ = Glibc.close(fileDescriptor) }
        fileDescriptor = -1
    }

    /// Every named feature of INTERFACE. Equals `ethtool -k INTERFACE` (kernel names).
    public func features(interface: String) throws -> [Feature] {
        let context = OperationContext("reading the features of \(interface)", namespace: namespace, interface: interface)
        let names = try self.names(interface, context)
        let blocks = (names.count + 31) / 32
        // struct ethtool_gfeatures { u32 cmd, size; { u32 available, requested, active, never_changed }[size] }
        var request = [UInt32](repeating: 0, count: 2 + 4 * blocks)
        request[0] = UInt32(ETHTOOL_GFEATURES)
        request[1] = UInt32(blocks)
        try ioctl(&request, "ioctl(SIOCETHTOOL, ETHTOOL_GFEATURES)", interface, context)
        return names.enumerated().compactMap { bit, name in
            if name.isEmpty { return nil }
            let block = 2 + 4 * (bit / 32), mask = UInt32(1) << UInt32(bit % 32)
            return Feature(name: name, isActive: request[block + 2] & mask != 0, isRequested: request[block + 1] & mask != 0,
                           isChangeable: request[block] & mask != 0)
        }
    }

    /// Turns features on or off by kernel name, in one request. Equals
    /// `ethtool -K INTERFACE NAME on|off …` with kernel feature names. Throws
    /// EINVAL for an unknown name and EOPNOTSUPP for one that is `[fixed]` in
    /// another state than asked.
    public func setFeatures(_ changes: [String: Bool], interface: String) throws {
        let text = changes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value ? "on" : "off")" }.joined(separator: ", ")
        let context = OperationContext("setting \(text) on \(interface)", namespace: namespace, interface: interface)
        let current = try features(interface: interface)
        var bits: [Int: Bool] = [:]
        let names = featureNames ?? []
        for (name, on) in changes {
            guard let bit = names.firstIndex(of: name), let feature = current.first(where: { $0.name == name }) else {
                throw context.error("ETHTOOL_GSTRINGS", .invalidArgument, kernelMessage: "no feature named \(name)")
            }
            if !feature.isChangeable {
                if feature.isActive != on {
                    throw context.error("ETHTOOL_GFEATURES", .notSupported, kernelMessage: "\(name) is fixed \(feature.isActive ? "on" : "off")")
                }
                continue
            }
            bits[bit] = on
        }
        try set(bits, count: names.count, interface, context)
    }

    /// Whether any feature of OFFLOAD's group is on — the state `ethtool -k`
    /// prints for the group's line ("tx-checksumming: on").
    public func offload(_ offload: Offload, interface: String) throws -> Bool {
        try features(interface: interface).contains { offload.matches($0.name) && $0.isActive }
    }

    /// Turns the changeable features of OFFLOAD's group on or off. Equals
    /// `ethtool -K INTERFACE OFFLOAD on|off`.
    public func setOffload(_ offload: Offload, _ on: Bool, interface: String) throws {
        try setOffloads([offload: on], interface: interface)
    }

    /// Several groups in one request. Equals `ethtool -K INTERFACE tx off tso off …`.
    public func setOffloads(_ changes: [Offload: Bool], interface: String) throws {
        let text = changes.sorted { $0.key.description < $1.key.description }
            .map { "\($0.key) \($0.value ? "on" : "off")" }.joined(separator: " ")
        let context = OperationContext("turning \(text) on \(interface)", namespace: namespace, interface: interface)
        let current = try features(interface: interface)
        let names = featureNames ?? []
        var bits: [Int: Bool] = [:]
        for (offload, on) in changes {
            for feature in current where feature.isChangeable && offload.matches(feature.name) {
                if let bit = names.firstIndex(of: feature.name) { bits[bit] = on }
            }
        }
        try set(bits, count: names.count, interface, context)
    }

    /// Equals `ethtool -K INTERFACE tx off tso off gso off`: the sender
    /// computes every checksum and segments every packet itself, so what a
    /// capture or AF_XDP socket on the path sees is what a wire would carry.
    public func disableTransmitOffloads(interface: String) throws {
        try setOffloads([.transmitChecksum: false, .tcpSegmentation: false, .genericSegmentation: false],
                        interface: interface)
    }

    /// OFFLOAD through the old per-offload ioctl (ETHTOOL_GTXCSUM, …), as
    /// ethtool before 2.6.39 read it.
    public func legacyOffload(_ offload: Offload, interface: String) throws -> Bool {
        let context = OperationContext("reading offload \(offload) of \(interface)", namespace: namespace, interface: interface)
        var value: [UInt32] = [offload.legacyGetCommand, 0]  // struct ethtool_value { u32 cmd, data }
        try ioctl(&value, "ioctl(SIOCETHTOOL, legacy \(offload))", interface, context)
        return value[1] != 0
    }

    // MARK: - Internals

    private func set(_ bits: [Int: Bool], count: Int, _ interface: String, _ context: OperationContext) throws {
        if bits.isEmpty { return }
        let blocks = (count + 31) / 32
        // struct ethtool_sfeatures { u32 cmd, size; { u32 valid, requested }[size] }
        var request = [UInt32](repeating: 0, count: 2 + 2 * blocks)
        request[0] = UInt32(ETHTOOL_SFEATURES)
        request[1] = UInt32(blocks)
        for (bit, on) in bits {
            let mask = UInt32(1) << UInt32(bit % 32)
            request[2 + 2 * (bit / 32)] |= mask
            if on { request[3 + 2 * (bit / 32)] |= mask }
        }
        // Returns ≥ 0: ETHTOOL_F_WISH etc. mean "recorded, held back by
        // another feature" — ethtool does not fail on that either.
        try ioctl(&request, "ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)", interface, context)
    }

    /// The ETH_SS_FEATURES string set (fetched once).
    private func names(_ interface: String, _ context: OperationContext) throws -> [String] {
        if let featureNames { return featureNames }
        // struct ethtool_sset_info { u32 cmd, reserved; u64 sset_mask; u32 data[1] }
        var info: [UInt32] = [UInt32(ETHTOOL_GSSET_INFO), 0, UInt32(1) << UInt32(ETH_SS_FEATURES.rawValue), 0, 0]
        try ioctl(&info, "ioctl(SIOCETHTOOL, ETHTOOL_GSSET_INFO)", interface, context)
        let count = Int(info[4])
        let length = Int(ETH_GSTRING_LEN)
        // struct ethtool_gstrings { u32 cmd, string_set, len; u8 data[len * ETH_GSTRING_LEN] }
        var strings = [UInt32](repeating: 0, count: 3 + count * length / 4)
        strings[0] = UInt32(ETHTOOL_GSTRINGS)
        strings[1] = UInt32(ETH_SS_FEATURES.rawValue)
        strings[2] = UInt32(count)
        try ioctl(&strings, "ioctl(SIOCETHTOOL, ETHTOOL_GSTRINGS)", interface, context)
        let names = strings.withUnsafeBytes { raw in
            (0..<count).map { i in
                String(decoding: raw[(12 + i * length)..<(12 + (i + 1) * length)].prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        featureNames = names
        return names
    }

    private func ioctl(_ buffer: inout [UInt32], _ name: String, _ interface: String,
                       _ context: OperationContext) throws {
        if fileDescriptor < 0 { throw context.error(name, Errno(rawValue: EBADF)) }
        let fd = fileDescriptor
        try buffer.withUnsafeMutableBytes { raw in
            _ = try systemCall(name, context) { cwl_ethtool_ioctl(fd, interface, raw.baseAddress) }
        }
    }
}
