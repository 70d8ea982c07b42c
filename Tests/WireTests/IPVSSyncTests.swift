import Testing
import Wire

// IPVS sync v1 (Wire/IPVSSync.swift): a message laid out by hand from
// struct ip_vs_sync_mesg / ip_vs_sync_v4 (net/netfilter/ipvs/ip_vs_sync.c),
// parsed and emitted byte for byte; round trips; malformed messages.

@Suite struct IPVSSyncTests {
    /// syncid 17, one DR entry in SYN_RECV from 123.123.123.123:40000 to
    /// 10.0.0.100:80 on real 10.0.0.1:80, 60 s left.
    static let oneEntry: [UInt8] = [
        0x00, 0x11, 0x00, 0x2c, 0x01, 0x01, 0x00, 0x00,  // reserved, syncid 17, size 44, nr_conns 1, version 1, spare
        0x00, 0x06, 0x00, 0x24,                          // type IPv4, TCP, ver 0 size 36
        0x00, 0x00, 0x01, 0x03,                          // flags INACTIVE | DROUTE
        0x00, 0x03, 0x9c, 0x40,                          // state SYN_RECV (3), cport 40000
        0x00, 0x50, 0x00, 0x50,                          // vport 80, dport 80
        0x00, 0x00, 0x00, 0x00,                          // fwmark
        0x00, 0x00, 0x00, 0x3c,                          // timeout 60 s
        0x7b, 0x7b, 0x7b, 0x7b,                          // caddr
        0x0a, 0x00, 0x00, 0x64,                          // vaddr
        0x0a, 0x00, 0x00, 0x01,                          // daddr
    ]

    static let dr = IPVSSyncEntry(protocol: .tcp, flags: IPVSSync.Flag.inactive | IPVSSync.Flag.directRoute,
                                  state: IPVSSync.TCPState.synRecv, clientAddress: IPv4Address(123, 123, 123, 123),
                                  clientPort: 40000, virtualAddress: IPv4Address(10, 0, 0, 100), virtualPort: 80,
                                  destinationAddress: IPv4Address(10, 0, 0, 1), destinationPort: 80, timeout: 60)

    struct Header { var syncID: UInt8, size: Int, count: Int }

    func entries(_ bytes: [UInt8]) throws -> (Header, [IPVSSyncEntry]) {
        try bytes.withUnsafeBytes { b in
            let m = try IPVSSyncMessage(validating: b)
            var out: [IPVSSyncEntry] = []
            try m.forEachEntry { out.append($0) }
            return (Header(syncID: m.syncID, size: m.size, count: m.count), out)
        }
    }

    func emit(_ entries: [IPVSSyncEntry], syncID: UInt8 = 17, capacity: Int = 1472) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xa5, count: capacity)
        let n = bytes.withUnsafeMutableBytes { b -> Int in
            var w = IPVSSyncWriter(into: b, syncID: syncID)
            for e in entries {
                let ok = w.append(e)
                #expect(ok)
            }
            return w.length
        }
        return Array(bytes[0..<n])
    }

    @Test func parseKnownBytes() throws {
        let (m, e) = try entries(Self.oneEntry)
        #expect(m.syncID == 17 && m.size == 44 && m.count == 1)
        #expect(e == [Self.dr])
        #expect(e[0].forwardMethod == IPVSSync.Flag.directRoute && !e[0].isTemplate)
    }

    @Test func emitKnownBytes() {
        #expect(emit([Self.dr]) == Self.oneEntry)
    }

    /// A FULLNAT entry: forward method 5 and option 0x48 (length 6: local
    /// address and port), 44 bytes; then a DR entry on the next boundary.
    @Test func fullnatExtensionBytes() throws {
        var fullnat = Self.dr
        fullnat.flags = IPVSSync.Flag.fullnat
        fullnat.state = IPVSSync.TCPState.established
        fullnat.fullnatLocal = .init(address: IPv4Address(10, 0, 0, 200), port: 1024)
        let bytes = emit([fullnat])
        #expect(bytes.count == 8 + 44)
        #expect(Array(bytes[8..<16]) == [0x00, 0x06, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x05])
        #expect(Array(bytes[44..<52]) == [0x48, 0x06, 0x0a, 0x00, 0x00, 0xc8, 0x04, 0x00])
        #expect(try entries(bytes).1 == [fullnat])
    }

    /// Entries with sequence data (62 bytes) are padded to 64 before the
    /// next; the size field of each says 62; the last is not padded.
    @Test func paddingBetweenEntries() throws {
        var withSeq = Self.dr
        withSeq.sequenceData = .init(inInitial: 1, inDelta: 2, inPreviousDelta: 3, outInitial: 4, outDelta: 5, outPreviousDelta: 6)
        withSeq.flags |= IPVSSync.Flag.inSequence
        let bytes = emit([withSeq, Self.dr, withSeq])
        #expect(bytes.count == 8 + 64 + 36 + 62)
        #expect(Array(bytes[8 + 62..<8 + 64]) == [0, 0], "padding is zero")
        #expect(bytes[8 + 3] == 62 && bytes[8 + 64 + 3] == 36)
        let (m, e) = try entries(bytes)
        #expect(m.count == 3 && e == [withSeq, Self.dr, withSeq])
    }

    /// Options a receiver skips (0x40 set) are read past; an unknown
    /// mandatory one marks the entry (the kernel skips such an entry).
    @Test func unknownOptions() throws {
        var bytes = Self.oneEntry + [0x4f, 0x02, 0xaa, 0xbb]
        bytes[3] = UInt8(bytes.count)
        bytes[11] = 40
        #expect(try entries(bytes).1 == [Self.dr])
        bytes[44] = 0x0f
        #expect(try entries(bytes).1[0].hasUnknownMandatoryOption)
    }

    /// Random entries survive emit → parse, many to a message.
    @Test func roundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var list: [IPVSSyncEntry] = []
            // At most 20: 20 entries with both options (72 bytes padded
            // each) and the header fit the 1472-byte message; 30 may not.
            for _ in 0..<Int.random(in: 1...20, using: &rng) {
                var e = IPVSSyncEntry(
                    protocol: Bool.random() ? .tcp : .udp, flags: UInt32.random(in: 0...0x3fff), state: UInt16.random(in: 0...10),
                    clientAddress: IPv4Address(rawValue: .random(in: 0...UInt32.max)), clientPort: .random(in: 0...UInt16.max),
                    virtualAddress: IPv4Address(rawValue: .random(in: 0...UInt32.max)), virtualPort: .random(in: 0...UInt16.max),
                    destinationAddress: IPv4Address(rawValue: .random(in: 0...UInt32.max)), destinationPort: .random(in: 0...UInt16.max),
                    timeout: .random(in: 0...UInt32.max), firewallMark: .random(in: 0...UInt32.max))
                if Int.random(in: 0..<4) == 0 {
                    e.fullnatLocal = .init(address: IPv4Address(rawValue: .random(in: 0...UInt32.max)), port: .random(in: 0...UInt16.max))
                }
                if Int.random(in: 0..<4) == 0 { e.sequenceData = .init(inInitial: .random(in: 0...UInt32.max), outDelta: 7) }
                list.append(e)
            }
            let (m, back) = try entries(emit(list))
            #expect(m.count == list.count && back == list)
        }
    }

    /// The writer refuses what does not fit, and stops at 255 entries.
    @Test func writerLimits() {
        var bytes = [UInt8](repeating: 0, count: 8 + 36 * 2 + 10)
        bytes.withUnsafeMutableBytes { b in
            var w = IPVSSyncWriter(into: b, syncID: 1)
            let first = w.append(Self.dr), second = w.append(Self.dr), third = w.append(Self.dr)
            #expect(first && second)
            #expect(!third && w.count == 2 && w.length == 80)
        }
        var big = [UInt8](repeating: 0, count: 8 + 36 * 300)
        big.withUnsafeMutableBytes { b in
            var w = IPVSSyncWriter(into: b, syncID: 1)
            while w.append(Self.dr) {}
            #expect(w.count == 255)
        }
    }

    @Test func malformed() {
        func expectError(_ bytes: [UInt8], _ error: WireError, _ what: String) {
            let got: WireError? = bytes.withUnsafeBytes { b in
                do throws(WireError) { _ = try IPVSSyncMessage(validating: b); return nil } catch { return error }
            }
            #expect(got == error, "\(what)")
        }
        let good = Self.oneEntry
        expectError(Array(good[0..<7]), .truncated, "shorter than the header")
        expectError({ var b = good; b[0] = 1; return b }(), .badVersion, "reserved ≠ 0 (a v0 message)")
        expectError({ var b = good; b[5] = 2; return b }(), .badVersion, "version 2")
        expectError({ var b = good; b[3] = 45; return b }(), .badLength, "size ≠ datagram")
        expectError(Array(good[0..<40]).withSize(), .badLength, "entry past the end")
        expectError({ var b = good; b[11] = 30; return b }(), .badLength, "entry size < 36")
        expectError({ var b = good; b[10] = 0x10; return b }(), .unsupported, "entry version 1")
        expectError({ var b = good; b[8] = 1; return b }(), .unsupported, "IPv6 entry")
        expectError({ var b = good; b[4] = 2; return b }(), .truncated, "nr_conns says 2")
        let optionPastEnd = (good + [0x48, 0x08, 1, 2, 3, 4, 5, 6]).withEntrySize(44)
        expectError(optionPastEnd, .badLength, "option longer than the entry")
        let optionZero = (good + [0x48, 0x00, 0, 0]).withEntrySize(40)
        expectError(optionZero, .badLength, "option length 0")
        let shortFullnat = (good + [0x48, 0x02, 0, 0]).withEntrySize(40)
        expectError(shortFullnat, .badLength, "FULLNAT option of 2 bytes")
        let halfOption = (good + [0x48]).withEntrySize(37)
        expectError(halfOption, .badLength, "an option header cut short")
    }
}

private extension Array where Element == UInt8 {
    /// The message header's size set to the array's length.
    func withSize() -> [UInt8] {
        var b = self
        b[2] = UInt8(count >> 8)
        b[3] = UInt8(count & 0xff)
        return b
    }
    /// The first entry's size set, and the message's.
    func withEntrySize(_ n: Int) -> [UInt8] {
        var b = withSize()
        b[11] = UInt8(n)
        return b
    }
}
