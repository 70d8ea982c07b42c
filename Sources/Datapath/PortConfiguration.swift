import Wire

/// One interface of a router, director or host model: one port, numbered in
/// the order the element's configuration lists its interfaces. The lab
/// builds it from the topology file's interface of that node.
public struct PortConfiguration: Hashable, Sendable {
    /// The interface name (`eth0`), for errors and `status`.
    public var name: String
    public var mac: MACAddress
    /// Addresses with their subnet (`10.0.0.254/24`). The first is the
    /// interface's primary address: the source of the ICMP errors and ARP
    /// requests the element sends out of this port (and, for a director, of
    /// IPIP outer headers) unless another address shares the target's subnet.
    public var addresses: [IPv4Prefix]
    /// IP MTU in bytes: the largest IPv4 packet (header included) sent out of
    /// this port. Each element checks it against its own range (router
    /// 68...65535, director 68...`Director.maximumMTU`).
    public var mtu: Int

    public init(name: String = "", mac: MACAddress, addresses: [IPv4Prefix], mtu: Int = 1500) {
        self.name = name
        self.mac = mac
        self.addresses = addresses
        self.mtu = mtu
    }
}
