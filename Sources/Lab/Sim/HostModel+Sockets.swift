extension HostModel {
    /// Opens UDP `port` for answers, as a bound socket would: datagrams to it
    /// are recorded in `udpReplies` instead of getting a port unreachable.
    /// (A probe sent through a raw socket, `wirelab check`'s UDP echo, binds
    /// its source port first, live and in the simulator alike.)
    public func openUDPPort(_ port: UInt16) {
        udpClientPorts.insert(port)
    }
}
