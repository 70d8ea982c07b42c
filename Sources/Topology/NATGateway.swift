import Wire

// Where a NAT real server sends its replies (DESIGN.md "Rules": a real
// server of a NAT service routes its replies through the director). One
// decision for the reader's check, the live lab and the simulator.

extension Node {
    /// The director's "inside" VIP for `host`: a VIP of one of its VRRP
    /// groups in a subnet of the host (keepalived LVS-NAT setups give the
    /// pair such an address as the reals' gateway), so replies reach
    /// whichever director is master. Nil when it has none.
    public func insideVIP(for host: Node) -> IPv4Address? {
        let subnets = host.interfaces.flatMap(\.addresses).filter { $0.length < 32 }
        for group in vrrp {
            for vip in group.vips where subnets.contains(where: { $0.contains(vip) && $0.address != vip }) {
                return vip
            }
        }
        return nil
    }

    /// The next hop a NAT real server `host` routes its replies through
    /// when this director serves it: the director's inside VIP if it has
    /// one, else its own address in a subnet they share (nil if none).
    public func natGateway(for host: Node) -> IPv4Address? {
        if let vip = insideVIP(for: host) { return vip }
        let mine = host.interfaces.flatMap(\.addresses)
        return interfaces.flatMap(\.addresses).first { d in
            mine.contains { $0.contains(d.address) && $0.length == d.length }
        }?.address
    }
}
