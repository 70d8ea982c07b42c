// Netlink message encoding and decoding (uapi linux/netlink.h, rtnetlink.h).
//
// A message is `struct nlmsghdr` (16 bytes), a family header (ifinfomsg,
// ifaddrmsg, rtmsg, …) and then attributes, each `struct rtattr` (u16 length
// including its 4-byte header, u16 type) plus payload padded to 4 bytes.
// Netlink integers are in host byte order (little-endian on x86_64/arm64);
// IPv4 addresses in payloads are in network byte order.
import Wire

/// One netlink request being built. `bytes` is always a complete message:
/// `nlmsg_len` is kept current after every append.
public struct NetlinkRequest: Sendable, Equatable {
    public private(set) var bytes: [UInt8]

    /// Starts a message: `nlmsghdr { len, type, flags, seq, pid = 0 }`.
    public init(type: UInt16, flags: UInt16, sequence: UInt32 = 0) {
        bytes = []
        bytes.reserveCapacity(128)
        appendInteger(UInt32(16))  // nlmsg_len, patched as we go
        appendInteger(type)        // nlmsg_type
        appendInteger(flags)       // nlmsg_flags
        appendInteger(sequence)    // nlmsg_seq
        appendInteger(UInt32(0))   // nlmsg_pid: 0, the kernel fills in our port
    }

    public var type: UInt16 { load(bytes[...], at: 4) }
    public var flags: UInt16 {
        get { load(bytes[...], at: 6) }
        set { store(newValue, at: 6) }
    }
    public var sequence: UInt32 {
        get { load(bytes[...], at: 8) }
        set { store(newValue, at: 8) }
    }

    /// Appends a C struct (a family header such as `ifinfomsg`) byte for byte,
    /// padded to 4.
    public mutating func append<T>(header: T) {
        withUnsafeBytes(of: header) { bytes.append(contentsOf: $0) }
        pad()
    }

    /// Appends one attribute: rtattr { rta_len = 4 + payload, rta_type } + payload + padding.
    public mutating func appendAttribute(_ type: UInt16, _ payload: some Collection<UInt8>) {
        appendInteger(UInt16(4 + payload.count))
        appendInteger(type)
        bytes.append(contentsOf: payload)
        pad()
    }

    /// A u32 attribute (host order).
    public mutating func appendAttribute(_ type: UInt16, uint32 value: UInt32) {
        withUnsafeBytes(of: value) { appendAttribute(type, $0) }
    }

    /// A string attribute, NUL-terminated as the kernel's NLA_STRING/IFNAMSIZ expect.
    public mutating func appendAttribute(_ type: UInt16, string: String) {
        appendAttribute(type, Array(string.utf8) + [0])
    }

    /// An IPv4 address attribute (4 bytes, network order).
    public mutating func appendAttribute(_ type: UInt16, ipv4 address: IPv4Address) {
        appendAttribute(type, [address[0], address[1], address[2], address[3]])
    }

    /// A MAC address attribute (6 bytes, first octet first).
    public mutating func appendAttribute(_ type: UInt16, mac: MACAddress) {
        appendAttribute(type, (0..<6).map { mac[$0] })
    }

    /// A nested attribute: rtattr header, whatever `body` appends, then
    /// `rta_len` patched to cover it all (as iproute2's addattr_nest_end).
    public mutating func appendNested(_ type: UInt16, _ body: (inout NetlinkRequest) -> Void) {
        let start = bytes.count
        appendInteger(UInt16(0))
        appendInteger(type)
        body(&self)
        storeAt(start, UInt16(bytes.count - start))
        updateLength()
    }

    /// Writes `value` at `offset` (for headers whose length is known only at the end).
    mutating func storeAt<T: FixedWidthInteger>(_ offset: Int, _ value: T) {
        withUnsafeBytes(of: value) { raw in
            for i in 0..<raw.count { bytes[offset + i] = raw[i] }
        }
    }

    /// The current size in bytes.
    var count: Int { bytes.count }

    mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
        if bytes.count >= 4 { updateLength() }
    }

    private mutating func pad() {
        while bytes.count % 4 != 0 { bytes.append(0) }
        updateLength()
    }

    private mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) { storeAt(offset, value) }

    private mutating func updateLength() {
        let length = UInt32(bytes.count)
        withUnsafeBytes(of: length) { raw in
            for i in 0..<4 { bytes[i] = raw[i] }
        }
    }
}

/// Netlink alignment (NLMSG_ALIGN / RTA_ALIGN / RTNH_ALIGN are all 4).
@inline(__always) func align4(_ n: Int) -> Int { (n + 3) & ~3 }

/// Reads a host-order integer at `offset` of `bytes` (no alignment needed).
/// The caller has checked the bounds.
@inline(__always)
func load<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>, at offset: Int) -> T {
    bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
}

/// One message of a received datagram.
public struct NetlinkMessage: Sendable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var portID: UInt32
    /// Everything after the 16-byte header, up to `nlmsg_len`.
    public var payload: ArraySlice<UInt8>

    /// Splits a datagram into messages; throws EPROTO on a malformed length.
    public static func parse(_ datagram: [UInt8]) throws(LinuxNetError) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = 0
        while datagram.count - offset >= 16 {
            let length = Int(load(datagram[...], at: offset) as UInt32)
            guard length >= 16, offset + length <= datagram.count else {
                throw LinuxNetError(operation: "reading a netlink reply", call: "recv", errno: .protocolError,
                                    kernelMessage: "message length \(length) at offset \(offset) of \(datagram.count)")
            }
            messages.append(NetlinkMessage(
                type: load(datagram[...], at: offset + 4),
                flags: load(datagram[...], at: offset + 6),
                sequence: load(datagram[...], at: offset + 8),
                portID: load(datagram[...], at: offset + 12),
                payload: datagram[(offset + 16)..<(offset + length)]))
            offset += align4(length)
        }
        return messages
    }
}

/// The attributes in `bytes` (a run of rtattrs), in order. Types have the
/// NLA_F_NESTED / NLA_F_NET_BYTEORDER bits cleared. Stops at the first
/// malformed attribute.
public struct NetlinkAttributes: Sequence, Sendable {
    public var bytes: ArraySlice<UInt8>
    public init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    public struct Iterator: IteratorProtocol {
        var rest: ArraySlice<UInt8>
        public mutating func next() -> (type: UInt16, payload: ArraySlice<UInt8>)? {
            guard rest.count >= 4 else { return nil }
            let base = rest.startIndex
            let length = Int(load(rest, at: 0) as UInt16)
            let type: UInt16 = load(rest, at: 2)
            guard length >= 4, length <= rest.count else { return nil }
            let payload = rest[(base + 4)..<(base + length)]
            rest = rest[Swift.min(rest.endIndex, base + align4(length))...]
            return (type & 0x3FFF, payload)
        }
    }

    public func makeIterator() -> Iterator { Iterator(rest: bytes) }

    /// The first attribute of `type`.
    public subscript(type: UInt16) -> ArraySlice<UInt8>? {
        first(where: { $0.type == type })?.payload
    }
}

extension ArraySlice where Element == UInt8 {
    /// A u32 attribute payload.
    var uint32: UInt32? { count >= 4 ? load(self, at: 0) : nil }
    /// A NUL-terminated string payload.
    var cString: String { String(decoding: prefix(while: { $0 != 0 }), as: UTF8.self) }
    /// A 4-byte network-order IPv4 address payload.
    var ipv4: IPv4Address? {
        guard count == 4 else { return nil }
        let b = Array(self)
        return IPv4Address(b[0], b[1], b[2], b[3])
    }
    /// A 6-byte MAC address payload.
    var mac: MACAddress? {
        guard count == 6 else { return nil }
        let b = Array(self)
        return MACAddress(b[0], b[1], b[2], b[3], b[4], b[5])
    }
}
