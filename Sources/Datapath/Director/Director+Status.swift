extension Director {
    /// ARP entries held (live or expired but not yet removed), for `status`.
    public var arpEntryCount: Int { arp.count }
    /// Senders not learned because the ARP cache was full, for `status`.
    public var arpTableFull: UInt64 { arp.counters.tableFull }
}
