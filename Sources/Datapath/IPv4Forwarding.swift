import Wire

// The IPv4 forwarding core the router, the director and the host model
// share, beside `RoutingTable` (the FIB: LPM and ECMP) and `ARPCache`
// (resolve-or-queue): which of a node's addresses a packet leaves from,
// the bytes of an ICMP error, and fragmentation. Each element keeps its
// own policy (when an error is owed, its TTL and rate limit, how a frame
// leaves); the mechanics are written once here.

/// A node's interface addresses, per port: the address a packet sent
/// towards a next hop leaves from, and whether an address is on a link.
/// A /32 is an address with no subnet around it: it makes no connected
/// route and puts nothing on-link. Nodes have a handful, so lookups scan.
public struct InterfaceAddresses: Sendable {
    /// Per port, its addresses with their prefix lengths, in configuration order.
    public let byPort: [[IPv4Prefix]]

    public init(_ byPort: [[IPv4Prefix]]) { self.byPort = byPort }

    /// The address Linux picks as source towards `nextHop` out of `port`:
    /// the port's address on the longest of its subnets that holds the next
    /// hop, else its first address; nil for a port without addresses.
    public func source(towards nextHop: IPv4Address, port: PortID) -> IPv4Address? {
        // An index loop: a `for in` over the inner array retains it per call.
        let prefixes = byPort[port.rawValue]
        var best = -1, i = 0
        while i < prefixes.count {
            let p = prefixes[i]
            if p.length < 32 && p.contains(nextHop) && (best < 0 || p.length > prefixes[best].length) { best = i }
            i += 1
        }
        return best >= 0 ? prefixes[best].address : prefixes.first?.address
    }

    /// Whether `address` lies on one of `port`'s subnets.
    public func isOnLink(_ address: IPv4Address, port: PortID) -> Bool {
        byPort[port.rawValue].contains { $0.length < 32 && $0.contains(address) }
    }

    /// The port whose subnet holding `gateway` is the longest (among
    /// `only`, if given): where a route through that gateway leaves.
    public func port(reaching gateway: IPv4Address, only: PortID? = nil) -> PortID? {
        var best: (port: Int, length: Int)?
        for (port, prefixes) in byPort.enumerated() where only == nil || only!.rawValue == port {
            for p in prefixes where p.length < 32 && p.contains(gateway) && p.length > (best?.length ?? -1) {
                best = (port, p.length)
            }
        }
        return best.map { PortID($0.port) }
    }

    /// The connected routes: each subnet on the port that has it (the
    /// first port wins when two share one).
    public var connectedRoutes: [RouteEntry] {
        var seen: Set<IPv4Prefix> = []
        var routes: [RouteEntry] = []
        for (port, prefixes) in byPort.enumerated() {
            for prefix in prefixes where prefix.length < 32 && seen.insert(prefix.canonical).inserted {
                routes.append(.connected(prefix, port: PortID(port)))
            }
        }
        return routes
    }
}

/// The bytes of an ICMPv4 error (RFC 792): an IPv4 header, the ICMP header
/// and a quote of the offending datagram.
public enum ICMPv4ErrorMessage {
    /// Writes the error into `out` (which starts at the IPv4 header) and
    /// returns its IP length. `quote` is the start of the offending datagram
    /// as it will be quoted; `editQuote` may rewrite it (addresses put back
    /// after NAT) before the ICMP checksum is computed. `header` gives every
    /// IP field but the protocol and length, which are set here.
    @discardableResult
    public static func write(_ message: ICMPv4Message, quoting quote: UnsafeRawBufferPointer, header: IPv4Repr,
                             into out: UnsafeMutableRawBufferPointer,
                             editQuote: ((UnsafeMutableRawBufferPointer) -> Void)? = nil) -> Int {
        let ipLength = 20 + 8 + quote.count
        let icmp = UnsafeMutableRawBufferPointer(rebasing: out[20 ..< ipLength])
        let quoted = UnsafeMutableRawBufferPointer(rebasing: icmp[8...])
        quoted.copyMemory(from: quote)
        editQuote?(quoted)
        ICMPv4Repr(message: message, payloadLength: quote.count).emit(into: ICMPv4MutableHeader(unchecked: icmp))
        var ip = header
        ip.protocol = .icmp
        ip.payloadLength = 8 + quote.count
        ip.emit(into: IPv4MutableHeader(unchecked: UnsafeMutableRawBufferPointer(rebasing: out[0 ..< 20])))
        return ipLength
    }
}

/// Fragmentation of one IPv4 datagram (RFC 791) to fit `limit` bytes: the
/// first fragment keeps every option, the others only those with the copy
/// bit; fragment data is a multiple of 8 bytes but in the last; offsets and
/// MF continue those of the datagram (it may itself be a fragment). DF, if
/// set, is cleared; the reserved bit and every other field are kept.
public struct IPv4Fragmenter {
    /// The whole datagram, from its IPv4 header.
    let datagram: UnsafeRawBufferPointer
    let headerLength: Int
    let laterHeaderLength: Int
    let firstData: Int
    let laterData: Int
    let payloadLength: Int
    /// How many fragments; 0 when `limit` leaves no room for 8 data bytes.
    public let count: Int

    /// `datagram` is the IPv4 packet (header and payload, no trailer).
    public init(_ datagram: UnsafeRawBufferPointer, limit: Int) {
        self.datagram = datagram
        headerLength = Int(datagram[0] & 0x0F) << 2
        let header = UnsafeRawBufferPointer(rebasing: datagram[0 ..< headerLength])
        laterHeaderLength = 20 + (Self.copiedOptions(of: header, into: nil) + 3) & ~3
        firstData = (limit - headerLength) & ~7
        laterData = (limit - laterHeaderLength) & ~7
        payloadLength = datagram.count - headerLength
        if firstData < 8 || laterData < 8 {
            count = 0
        } else {
            count = payloadLength <= firstData ? 1 : 1 + (payloadLength - firstData + laterData - 1) / laterData
        }
    }

    /// Writes fragment `index` (0 ..< count) into `out`, which starts at the
    /// IPv4 header, and returns its IP length.
    public func write(_ index: Int, into out: UnsafeMutableRawBufferPointer) -> Int {
        let first = index == 0
        let start = first ? 0 : firstData + (index - 1) * laterData
        let data = min(first ? firstData : laterData, payloadLength - start)
        let h = first ? headerLength : laterHeaderLength
        let header = UnsafeRawBufferPointer(rebasing: datagram[0 ..< headerLength])
        let ip = UnsafeMutableRawBufferPointer(rebasing: out[0 ..< h])
        if first {
            ip.copyMemory(from: header)
        } else {
            ip.copyMemory(from: UnsafeRawBufferPointer(rebasing: header[0 ..< 20]))
            let n = Self.copiedOptions(of: header, into: UnsafeMutableRawBufferPointer(rebasing: ip[20...]))
            for i in (20 + n) ..< h { ip[i] = 0 }  // End of Option List padding
            ip[0] = 0x40 | UInt8(h >> 2)
        }
        let field = datagram.wireU16(IPv4Header.Field.flagsAndFragmentOffset)
        let baseOffset = Int(field & 0x1FFF) << 3
        let more = start + data < payloadLength || field & 0x2000 != 0
        ip.wireSetU16(UInt16(h + data), IPv4Header.Field.totalLength)
        ip.wireSetU16(field & 0x8000 | (more ? 0x2000 : 0) | UInt16((baseOffset + start) >> 3),
                      IPv4Header.Field.flagsAndFragmentOffset)
        ip.wireSetU16(0, IPv4Header.Field.headerChecksum)
        ip.wireSetU16(InternetChecksum.checksum(UnsafeRawBufferPointer(ip)), IPv4Header.Field.headerChecksum)
        UnsafeMutableRawBufferPointer(rebasing: out[h ..< h + data])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: datagram[headerLength + start ..< headerLength + start + data]))
        return h + data
    }

    /// The options of `header` (a whole IPv4 header) whose copy bit is set,
    /// written to `out` if given; returns their length, unpadded. A
    /// malformed option ends the walk (what came before it still counts).
    static func copiedOptions(of header: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer?) -> Int {
        var i = 20, n = 0
        while i < header.count {
            let type = header[i]
            if type == 0 { break }  // End of Option List
            if type == 1 { i += 1; continue }  // No Operation: not copied
            guard i + 1 < header.count else { break }
            let length = Int(header[i + 1])
            guard length >= 2, i + length <= header.count else { break }
            if type & 0x80 != 0 {
                if let out {
                    UnsafeMutableRawBufferPointer(rebasing: out[n ..< n + length])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: header[i ..< i + length]))
                }
                n += length
            }
            i += length
        }
        return n
    }
}
