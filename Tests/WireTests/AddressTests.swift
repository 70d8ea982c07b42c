import Testing
import Wire

@Suite struct AddressTests {
    @Test func macParsesAndPrints() throws {
        let mac = try #require(MACAddress("02:AA:bb:0c:0d:ff"))
        #expect(mac.description == "02:aa:bb:0c:0d:ff")
        #expect(mac[1] == 0xaa)
        #expect(MACAddress("02:aa:bb:0c:0d") == nil)
        #expect(MACAddress("02:aa:bb:0c:0d:fg") == nil)
        #expect(MACAddress.broadcast.isMulticast)
    }

    @Test func derivedMACsAreStableLocalUnicast() {
        let a = MACAddress.derived(from: "lab/node/eth0")
        #expect(a == MACAddress.derived(from: "lab/node/eth0"))
        #expect(a != MACAddress.derived(from: "lab/node/eth1"))
        #expect(a.isLocallyAdministered && !a.isMulticast)
    }

    @Test func ipv4ParsesAndRejects() throws {
        #expect(IPv4Address("10.0.0.1")?.rawValue == 0x0A00_0001)
        #expect(IPv4Address("255.255.255.255") == .broadcast)
        for bad in ["10.0.0", "10.0.0.256", "10.0.0.01", "a.b.c.d", "10..0.1", " 10.0.0.1", "1.2.3.4.5"] {
            #expect(IPv4Address(bad) == nil, "\(bad) should not parse")
        }
    }

    @Test func prefixes() throws {
        let p = try #require(IPv4Prefix("10.0.0.7/24"))
        #expect(p.network.description == "10.0.0.0")
        #expect(p.broadcast.description == "10.0.0.255")
        #expect(p.contains(IPv4Address(10, 0, 0, 200)))
        #expect(!p.contains(IPv4Address(10, 0, 1, 1)))
        #expect(IPv4Prefix("0.0.0.0/0")!.contains(IPv4Address(1, 2, 3, 4)))
        #expect(IPv4Prefix("10.0.0.1/33") == nil)
        #expect(IPv4Prefix("10.0.0.1")?.length == 32)
    }
}
