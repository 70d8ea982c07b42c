// rtnetlink requests byte for byte against hand-annotated fixtures, and
// reply parsing — no kernel, no root: RTNetlink runs over a recording
// transport. Fixtures are host order for x86_64/arm64 (little-endian).
import CLinuxShim
import LinuxNet
import Testing
import Wire

/// Records what RTNetlink sends and answers like the kernel would: an ACK
/// (NLMSG_ERROR 0) for each message asking for one, plus whatever `answer`
/// adds (dump replies, errors).
final class RecordingTransport: NetlinkTransport {
    var sent: [[UInt8]] = []
    var pending: [[UInt8]] = []
    /// Extra or replacing replies for one request; return nil for the default ACK.
    var answer: (NetlinkMessage) -> [[UInt8]]? = { _ in nil }

    func send(_ datagram: [UInt8]) throws {
        sent.append(datagram)
        for message in try NetlinkMessage.parse(datagram) {
            if let replies = answer(message) {
                pending += replies
            } else if message.flags & 0x004 != 0 {
                pending.append(Reply.error(0, to: message))
            }
        }
    }

    func receive() throws -> [UInt8] {
        guard !pending.isEmpty else {
            throw LinuxNetError(operation: "receiving in a test", call: "recv", errno: .resourceTemporarilyUnavailable)
        }
        return pending.removeFirst()
    }
}

/// Builds kernel replies for the recording transport.
enum Reply {
    static func header(length: Int, type: UInt16, flags: UInt16, sequence: UInt32) -> [UInt8] {
        le32(UInt32(length)) + le16(type) + le16(flags) + le32(sequence) + le32(4242)
    }

    /// NLMSG_ERROR: capped (no request payload), with an extack message if given.
    static func error(_ code: Int32, to request: NetlinkMessage, message: String? = nil) -> [UInt8] {
        var tlvs: [UInt8] = []
        if let message {
            let text = Array(message.utf8) + [0]
            tlvs = le16(UInt16(4 + text.count)) + le16(1) + text  // NLMSGERR_ATTR_MSG
            while tlvs.count % 4 != 0 { tlvs.append(0) }
        }
        let original = header(length: 16 + request.payload.count, type: request.type, flags: request.flags,
                              sequence: request.sequence)
        let flags: UInt16 = 0x100 | (message == nil ? 0 : 0x200)  // NLM_F_CAPPED | NLM_F_ACK_TLVS
        return header(length: 16 + 4 + 16 + tlvs.count, type: 2, flags: flags, sequence: request.sequence)
            + le32(UInt32(bitPattern: code)) + original + tlvs
    }

    /// One RTM_NEWLINK for a link dump.
    static func link(index: Int32, name: String, sequence: UInt32) -> [UInt8] {
        var attribute = Array(name.utf8) + [0]
        attribute = le16(UInt16(4 + attribute.count)) + le16(3) + attribute  // IFLA_IFNAME
        while attribute.count % 4 != 0 { attribute.append(0) }
        let ifinfo: [UInt8] = [0, 0] + le16(1) + le32(UInt32(bitPattern: index)) + le32(0x1) + le32(0)
        return header(length: 16 + 16 + attribute.count, type: 16, flags: 0x2, sequence: sequence) + ifinfo + attribute
    }

    static func done(sequence: UInt32) -> [UInt8] {
        header(length: 20, type: 3, flags: 0x2, sequence: sequence) + le32(0)
    }

    static func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

/// Hex bytes from annotated lines: everything after `//` is a comment.
func hex(_ text: String) -> [UInt8] {
    text.split(separator: "\n").flatMap { line -> [UInt8] in
        let code = line.components(separatedBy: "//")[0]
        return code.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { UInt8($0, radix: 16)! }
    }
}

@Suite struct NetlinkEncodingTests {
    @Test func alignmentMatchesTheUapiMacros() {
        for length: UInt32 in 0...40 {
            let aligned = (length + 3) & ~3
            #expect(cwl_nlmsg_align(length) == aligned)
            #expect(cwl_rta_align(length) == aligned)
            #expect(cwl_rtnh_align(length) == aligned)
            #expect(cwl_rta_length(length) == 4 + length)
            #expect(cwl_rtnh_length(length) == 8 + length)
            #expect(cwl_nlmsg_length(length) == 16 + length)
        }
        #expect(cwl_nlmsg_hdrlen() == 16)
        // The family headers the encoder appends byte for byte.
        #expect(MemoryLayout<nlmsghdr>.size == 16)
        #expect(MemoryLayout<ifinfomsg>.size == 16)
        #expect(MemoryLayout<ifaddrmsg>.size == 8)
        #expect(MemoryLayout<rtmsg>.size == 12)
        #expect(MemoryLayout<rtnexthop>.size == 8)
    }

    @Test func vethCreateRequest() throws {
        let transport = RecordingTransport()
        let netlink = RTNetlink(transport: transport, namespace: "wl-lvs-gw")
        try netlink.linkAddVeth(name: "eth1", peer: "p1",
                                peerNamespace: .borrowing(fileDescriptor: 7, name: "wl-lvs-sw"),
                                namespace: .borrowing(fileDescriptor: 6, name: "wl-lvs-gw"),
                                mtu: 1500, mac: MACAddress("02:00:00:00:00:01"), peerMac: MACAddress("02:00:00:00:00:02"))
        // iproute2 6.1 sends the same 144 bytes for `ip link add eth1 mtu 1500 address … netns …
        // type veth peer name p1 mtu 1500 address … netns …` (checked with strace -xx), with
        // IFLA_IFNAME after IFLA_NET_NS_FD instead of first; attribute order does not matter.
        let expected = hex("""
            90 00 00 00   // nlmsg_len 144
            10 00         // nlmsg_type RTM_NEWLINK (16)
            05 06         // nlmsg_flags 0x605 = REQUEST 0x1 | ACK 0x4 | EXCL 0x200 | CREATE 0x400
            01 00 00 00   // nlmsg_seq 1
            00 00 00 00   // nlmsg_pid 0
            00 00         // ifinfomsg: ifi_family AF_UNSPEC, pad
            00 00         //   ifi_type 0
            00 00 00 00   //   ifi_index 0 (the kernel picks one)
            00 00 00 00   //   ifi_flags 0
            00 00 00 00   //   ifi_change 0
            09 00 03 00 65 74 68 31 00 00 00 00   // IFLA_IFNAME (3), len 9: "eth1\\0" + 3 pad
            08 00 04 00 dc 05 00 00               // IFLA_MTU (4): 1500
            0a 00 01 00 02 00 00 00 00 01 00 00   // IFLA_ADDRESS (1), len 10: 02:00:00:00:00:01 + 2 pad
            08 00 1c 00 06 00 00 00               // IFLA_NET_NS_FD (28): fd 6, the near end's namespace
            48 00 12 00                           // IFLA_LINKINFO (18), nested, len 72
              08 00 01 00 76 65 74 68             //   IFLA_INFO_KIND (1): "veth" (no NUL, as iproute2)
              3c 00 02 00                         //   IFLA_INFO_DATA (2), nested, len 60
                38 00 01 00                       //     VETH_INFO_PEER (1), len 56: ifinfomsg + attributes
                  00 00 00 00 00 00 00 00         //       ifinfomsg of the peer: family, type, index 0,
                  00 00 00 00 00 00 00 00         //       flags 0, change 0
                  07 00 03 00 70 31 00 00         //       IFLA_IFNAME, len 7: "p1\\0" + 1 pad
                  08 00 04 00 dc 05 00 00         //       IFLA_MTU: 1500
                  0a 00 01 00 02 00 00 00 00 02 00 00   // IFLA_ADDRESS: 02:00:00:00:00:02
                  08 00 1c 00 07 00 00 00         //       IFLA_NET_NS_FD: fd 7, the peer's namespace
            """)
        #expect(transport.sent == [expected])
    }

    @Test func vethCreateUpSetsIFFUpOnTheNearEndOnly() throws {
        let transport = RecordingTransport()
        try RTNetlink(transport: transport, namespace: "a").linkAddVeth(name: "a", peer: "b", up: true)
        let bytes = try #require(transport.sent.first)
        // Outer ifinfomsg at 16: flags (offset 24) and change (28) = IFF_UP.
        #expect(Array(bytes[24..<32]) == [1, 0, 0, 0, 1, 0, 0, 0])
        // The peer's ifinfomsg stays zero (an IFF_UP there fails with ENOTCONN):
        // after IFNAME "a" (8), LINKINFO hdr (4), KIND (8), DATA hdr (4), PEER hdr (4).
        let peer = 16 + 16 + 8 + 4 + 8 + 4 + 4
        #expect(Array(bytes[peer..<(peer + 16)]) == [UInt8](repeating: 0, count: 16))
    }

    @Test func addressAddRequest() throws {
        let transport = RecordingTransport()
        transport.answer = { request in
            guard request.type == 18 else { return nil }  // RTM_GETLINK dump: lo and eth0
            return [Reply.link(index: 1, name: "lo", sequence: request.sequence)
                        + Reply.link(index: 2, name: "eth0", sequence: request.sequence),
                    Reply.done(sequence: request.sequence)]
        }
        let netlink = RTNetlink(transport: transport, namespace: "wl-lvs-rs1")
        try netlink.addressAdd(try #require(IPv4Prefix("10.0.0.1/24")), interface: "eth0")
        #expect(transport.sent.count == 2)  // the link dump for eth0's index, then the request
        // Byte-identical (but for seq and ifindex) to `ip address add 10.0.0.1/24 dev lo` from
        // iproute2 6.1, checked with strace -xx.
        let expected = hex("""
            28 00 00 00   // nlmsg_len 40
            14 00         // nlmsg_type RTM_NEWADDR (20)
            05 06         // nlmsg_flags REQUEST | ACK | EXCL | CREATE
            02 00 00 00   // nlmsg_seq 2 (1 was the link dump)
            00 00 00 00   // nlmsg_pid
            02            // ifaddrmsg: ifa_family AF_INET
            18            //   ifa_prefixlen 24
            00            //   ifa_flags 0
            00            //   ifa_scope RT_SCOPE_UNIVERSE
            02 00 00 00   //   ifa_index 2 (eth0, from the dump)
            08 00 02 00 0a 00 00 01   // IFA_LOCAL (2): 10.0.0.1, network order
            08 00 01 00 0a 00 00 01   // IFA_ADDRESS (1): 10.0.0.1 (no peer: same as local, as iproute2)
            """)
        #expect(transport.sent.last == expected)
        // A second address on eth0 needs no further lookup.
        try netlink.addressAdd(try #require(IPv4Prefix("10.0.0.2/24")), interface: "eth0")
        #expect(transport.sent.count == 3)
    }

    @Test func multipathRouteRequest() throws {
        let transport = RecordingTransport()
        let netlink = RTNetlink(transport: transport, namespace: "wl-ecmp-r1")
        try netlink.routeAdd(destination: try #require(IPv4Prefix("10.0.0.100/32")),
                             via: [try #require(IPv4Address("10.0.1.1")), try #require(IPv4Address("10.0.2.1"))])
        // Byte-identical (but for seq) to `ip route add 10.0.0.100/32 nexthop via 10.0.1.1
        // nexthop via 10.0.2.1` from iproute2 6.1, checked with strace -xx.
        let expected = hex("""
            48 00 00 00   // nlmsg_len 72
            18 00         // nlmsg_type RTM_NEWROUTE (24)
            05 06         // nlmsg_flags REQUEST | ACK | EXCL | CREATE
            01 00 00 00   // nlmsg_seq 1
            00 00 00 00   // nlmsg_pid
            02            // rtmsg: rtm_family AF_INET
            20            //   rtm_dst_len 32
            00 00         //   rtm_src_len 0, rtm_tos 0
            fe            //   rtm_table RT_TABLE_MAIN (254)
            03            //   rtm_protocol RTPROT_BOOT (what `ip route add` uses)
            00            //   rtm_scope RT_SCOPE_UNIVERSE (via gateways)
            01            //   rtm_type RTN_UNICAST
            00 00 00 00   //   rtm_flags
            08 00 01 00 0a 00 00 64      // RTA_DST (1): 10.0.0.100
            24 00 09 00                  // RTA_MULTIPATH (9), len 36: two struct rtnexthop + attributes
              10 00 00 00 00 00 00 00    //   rtnh_len 16, rtnh_flags 0, rtnh_hops 0 (weight 1), rtnh_ifindex 0
              08 00 05 00 0a 00 01 01    //   RTA_GATEWAY (5): 10.0.1.1
              10 00 00 00 00 00 00 00    //   second next hop, same shape
              08 00 05 00 0a 00 02 01    //   RTA_GATEWAY: 10.0.2.1
            """)
        #expect(transport.sent == [expected])
    }

    @Test func singleGatewayRouteWithInterfaceAndDefaultRoute() throws {
        let transport = RecordingTransport()
        transport.answer = { request in
            guard request.type == 18 else { return nil }
            return [Reply.link(index: 5, name: "eth0", sequence: request.sequence), Reply.done(sequence: request.sequence)]
        }
        let netlink = RTNetlink(transport: transport, namespace: "n")
        try netlink.routeReplace(destination: try #require(IPv4Prefix("0.0.0.0/0")),
                                 via: [try #require(IPv4Address("10.0.0.254"))], interface: "eth0")
        let expected = hex("""
            2c 00 00 00 18 00   // nlmsg_len 44, RTM_NEWROUTE
            05 05               // nlmsg_flags REQUEST | ACK | REPLACE 0x100 | CREATE 0x400
            02 00 00 00 00 00 00 00      // seq 2, pid 0
            02 00 00 00 fe 03 00 01      // AF_INET, dst_len 0 (default), main, boot, universe, unicast
            00 00 00 00                  // rtm_flags
            08 00 05 00 0a 00 00 fe      // RTA_GATEWAY: 10.0.0.254 (no RTA_DST for default, as iproute2)
            08 00 04 00 05 00 00 00      // RTA_OIF (4): ifindex 5
            """)
        #expect(transport.sent.last == expected)
    }

    @Test func linkSetUpAndDeleteAddressTheLinkByName() throws {
        let transport = RecordingTransport()
        let netlink = RTNetlink(transport: transport, namespace: "n")
        try netlink.linkSetUp(name: "lo")
        #expect(transport.sent.last == hex("""
            28 00 00 00 10 00 05 00      // len 40, RTM_NEWLINK, REQUEST | ACK (no CREATE: must exist)
            01 00 00 00 00 00 00 00      // seq 1, pid 0
            00 00 00 00 00 00 00 00      // ifinfomsg: family, type, index 0 (look up by name)
            01 00 00 00 01 00 00 00      //   ifi_flags IFF_UP, ifi_change IFF_UP
            07 00 03 00 6c 6f 00 00      // IFLA_IFNAME "lo"
            """))
        try netlink.linkDelete(name: "eth9")
        #expect(transport.sent.last == hex("""
            2c 00 00 00 11 00 05 00      // len 44, RTM_DELLINK (17), REQUEST | ACK
            02 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   // ifinfomsg, all zero
            09 00 03 00 65 74 68 39 00 00 00 00               // IFLA_IFNAME "eth9"
            """))
    }

    @Test func kernelErrorBecomesATypedErrorNamingTheOperation() throws {
        let transport = RecordingTransport()
        transport.answer = { request in
            [Reply.error(-17, to: request, message: "Device already exists")]  // -EEXIST with extack text
        }
        let netlink = RTNetlink(transport: transport, namespace: "wl-lvs-gw")
        do {
            try netlink.linkAddVeth(name: "eth1", peer: "p1",
                                    peerNamespace: .borrowing(fileDescriptor: 9, name: "wl-lvs-sw"))
            Issue.record("expected an error")
        } catch let error as LinuxNetError {
            #expect(error.errno == .fileExists)
            #expect(error.kernelMessage == "Device already exists")
            #expect(error.namespace == "wl-lvs-gw/wl-lvs-sw")
            #expect(error.interface == "eth1")
            #expect(error.call == "RTM_NEWLINK")
            #expect(error.description
                    == "creating veth eth1 ↔ p1 in wl-lvs-gw/wl-lvs-sw: File exists — Device already exists (RTM_NEWLINK)")
        }
    }

    @Test func pipelinedRequestsShareOneDatagramAndErrorsFindTheirRequest() throws {
        let transport = RecordingTransport()
        var requests: [NetlinkMessage] = []
        transport.answer = { request in
            requests.append(request)
            if request.sequence == 2 { return [Reply.error(-19, to: request)] }  // -ENODEV for the 2nd
            return nil
        }
        let netlink = RTNetlink(transport: transport, namespace: "ns")
        do {
            try netlink.pipelined {
                try netlink.linkSetUp(name: "lo")
                try netlink.linkSetUp(name: "eth7")
                try netlink.linkSetMTU(name: "lo", mtu: 9000)
                #expect(transport.sent.isEmpty)  // nothing sent yet
            }
            Issue.record("expected an error")
        } catch let error as LinuxNetError {
            #expect(error.operation == "setting eth7 up")
            #expect(error.errno == .noSuchDevice)
            #expect(error.otherFailures.isEmpty)
        }
        #expect(transport.sent.count == 1)
        // ACK asked for only on the last request; errors come anyway.
        #expect(requests.map(\.sequence) == [1, 2, 3])
        #expect(requests.map { $0.flags & 0x4 } == [0, 0, 4])
        #expect(transport.pending.isEmpty)
    }

    @Test func pipelinedBatchesAreSplitAtTheMaximum() throws {
        let transport = RecordingTransport()
        let netlink = RTNetlink(transport: transport, namespace: "ns")
        netlink.maximumBatch = 4
        try netlink.pipelined {
            for _ in 0..<10 { try netlink.linkSetUp(name: "lo") }
        }
        #expect(try transport.sent.map { try NetlinkMessage.parse($0).count } == [4, 4, 2])
    }

    @Test func linkDumpIsParsed() throws {
        let transport = RecordingTransport()
        transport.answer = { request in
            [Reply.link(index: 1, name: "lo", sequence: request.sequence),
             Reply.link(index: 3, name: "eth0", sequence: request.sequence),
             Reply.done(sequence: request.sequence)]
        }
        let links = try RTNetlink(transport: transport, namespace: "n").linkList()
        #expect(links.map(\.name) == ["lo", "eth0"])
        #expect(links.map(\.index) == [1, 3])
        #expect(links.allSatisfy { $0.isUp })
    }

    @Test func attributesParseAndStopAtGarbage() {
        let bytes: [UInt8] = [8, 0, 4, 0, 0xdc, 5, 0, 0,   // IFLA_MTU 1500
                              6, 0, 0x12, 0x80, 1, 2, 0, 0, // type 18 with NLA_F_NESTED: flag cleared
                              0xff, 0, 1, 0]                // length beyond the end: ignored
        let attributes = Array(NetlinkAttributes(bytes[...]))
        #expect(attributes.map(\.type) == [4, 18])
        #expect(Array(attributes[1].payload) == [1, 2])
    }

    @Test func malformedMessageLengthIsAnError() {
        #expect(throws: LinuxNetError.self) { try NetlinkMessage.parse([64, 0, 0, 0] + [UInt8](repeating: 0, count: 12)) }
    }

    @Test func sysctlRefusesKeysOutsideNet() {
        for key in ["kernel.hostname", "net/../kernel/hostname", "vm.swappiness", "net", "net..ipv4"] {
            #expect(throws: LinuxNetError.self) { try Sysctl.write(key, "1", namespace: "wltest-net-never-created") }
        }
        #expect(Sysctl.Setting("net/ipv4/conf/eth0.100/rp_filter", "0").path == ["net", "ipv4", "conf", "eth0.100", "rp_filter"])
        #expect(Sysctl.Setting.arpIgnore(1, interface: "lo").description == "net.ipv4.conf.lo.arp_ignore=1")
    }

    @Test func namespaceNamesAreChecked() {
        for name in ["", ".", "..", "a/b"] {
            #expect(throws: LinuxNetError.self) { try NetworkNamespace.create(name) }
            #expect(!NetworkNamespace.exists(name))
        }
    }

    @Test func errorDescriptionListsOtherFailures() {
        var error = LinuxNetError(operation: "setting eth0 up", namespace: "wl-a", interface: "eth0",
                                  call: "RTM_NEWLINK", errno: .noSuchDevice)
        error.otherFailures = [LinuxNetError(operation: "adding address 10.0.0.1/24 to eth0", namespace: "wl-a",
                                             call: "RTM_NEWADDR", errno: .noSuchDevice)]
        #expect(error.description == "setting eth0 up in wl-a: No such device (RTM_NEWLINK); and 1 more: "
                + "adding address 10.0.0.1/24 to eth0 in wl-a: No such device (RTM_NEWADDR)")
    }
}
