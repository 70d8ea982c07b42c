// LinuxNet against the real kernel. Needs root; skipped otherwise. Every
// test works only in namespaces it creates, named wltest-net-<tag>-<pid>, and
// deletes them on the way out (also on failure). No host interface, address,
// route or sysctl is touched; traffic goes only between test namespaces.
import Foundation
import Glibc
import LinuxNet
import Testing
import Wire

let isRoot = geteuid() == 0

/// Creates the namespaces, runs `body` with their names, deletes them always.
func withNamespaces<T>(_ tags: [String], _ body: ([String]) throws -> T) throws -> T {
    let names = tags.map { "wltest-net-\($0)-\(getpid())" }
    defer { for name in names { _ = try? NetworkNamespace.deleteIfExists(name) } }
    for name in names {
        _ = try? NetworkNamespace.deleteIfExists(name)
        try NetworkNamespace.create(name)
    }
    return try body(names)
}

/// Runs a read-only command in the host namespace (`ip -n …`, `ip netns list`) and returns stdout.
func hostCommand(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// `ip -n NS -j ARGS…` parsed as a JSON array of objects.
func ipJSON(_ namespace: String, _ arguments: String...) throws -> [[String: Any]] {
    let text = try hostCommand(["ip", "-n", namespace, "-j"] + arguments)
    return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]], "ip said: \(text)")
}

/// The inode of a namespace file (two equal inodes: the same namespace).
func inode(_ path: String) -> UInt {
    var info = stat()
    return stat(path, &info) == 0 ? UInt(info.st_ino) : 0
}

func commandExists(_ name: String) -> Bool {
    ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"].contains { access($0 + name, X_OK) == 0 }
}

func prefix(_ text: String) throws -> IPv4Prefix { try #require(IPv4Prefix(text)) }
func address(_ text: String) throws -> IPv4Address { try #require(IPv4Address(text)) }

/// A veth named eth0 at both ends between namespaces A (10.0.0.1/24) and B (10.0.0.2/24), up.
func connect(_ a: String, _ b: String, mtu: Int? = nil, macA: MACAddress? = nil, macB: MACAddress? = nil) throws {
    let netlinkA = try RTNetlink(namespace: a)
    let netlinkB = try RTNetlink(namespace: b)
    try netlinkA.linkAddVeth(name: "eth0", peer: "eth0", peerNamespace: try NetworkNamespace.open(b),
                             mtu: mtu, mac: macA, peerMac: macB)
    try netlinkA.pipelined {
        try netlinkA.linkSetUp(name: "lo")
        try netlinkA.linkSetUp(name: "eth0")
        try netlinkA.addressAdd(try prefix("10.0.0.1/24"), interface: "eth0")
    }
    try netlinkB.pipelined {
        try netlinkB.linkSetUp(name: "lo")
        try netlinkB.linkSetUp(name: "eth0")
        try netlinkB.addressAdd(try prefix("10.0.0.2/24"), interface: "eth0")
    }
}

@Suite(.serialized, .enabled(if: isRoot, "needs root (network namespaces)"))
struct KernelTests {
    @Test func namespaceLifecycleMatchesIproute2() throws {
        let name = "wltest-net-life-\(getpid())"
        defer { _ = try? NetworkNamespace.deleteIfExists(name) }
        let ours = inode("/proc/thread-self/ns/net")

        try NetworkNamespace.create(name)
        #expect(NetworkNamespace.exists(name))
        #expect(try NetworkNamespace.list().contains(name))
        #expect(try hostCommand(["ip", "netns", "list"]).split(separator: "\n").contains { $0.hasPrefix(name) })
        // ip netns exec can enter it (a fresh namespace has only lo).
        #expect(try hostCommand(["ip", "netns", "exec", name, "ip", "-o", "link"]).contains("lo:"))

        // run() executes in the namespace on another thread; ours does not move.
        let inside = try NetworkNamespace.run(name) { inode("/proc/thread-self/ns/net") }
        #expect(inside == inode(NetworkNamespace.path(of: name)))
        #expect(inside != ours)
        #expect(inode("/proc/thread-self/ns/net") == ours)
        // Errors thrown inside come out unchanged; results come back.
        struct Marker: Error {}
        #expect(throws: Marker.self) { try NetworkNamespace.run(name) { throw Marker() } }
        #expect(try NetworkNamespace.run(name) { 42 } == 42)

        // Creating it again fails and says what and where.
        do {
            try NetworkNamespace.create(name)
            Issue.record("second create succeeded")
        } catch let error as LinuxNetError {
            #expect(error.errno == .fileExists)
            #expect(error.description.hasPrefix("creating namespace \(name) in \(name): File exists"))
        }
        #expect(NetworkNamespace.exists(name))  // the failed create left it alone

        try NetworkNamespace.delete(name)
        #expect(!NetworkNamespace.exists(name))
        #expect(try !NetworkNamespace.list().contains(name))
        #expect(try !hostCommand(["ip", "netns", "list"]).contains(name))
        #expect(try NetworkNamespace.deleteIfExists(name) == false)
        #expect(throws: LinuxNetError.self) { try NetworkNamespace.delete(name) }
        do {
            _ = try NetworkNamespace.run(name) { 1 }
            Issue.record("ran in a deleted namespace")
        } catch let error as LinuxNetError {
            #expect(error.errno == .noSuchFileOrDirectory)
            #expect(error.operation == "entering namespace \(name)")
        }
    }

    @Test func namespacesMadeByIpAreUsable() throws {
        let name = "wltest-net-byip-\(getpid())"
        _ = try hostCommand(["ip", "netns", "add", name])
        defer { _ = try? hostCommand(["ip", "netns", "delete", name]) }
        #expect(NetworkNamespace.exists(name))
        let links = try RTNetlink(namespace: name).linkList()
        #expect(links.map(\.name) == ["lo"])
    }

    @Test func vethWithMACsMTUAndAddressesCarriesTraffic() throws {
        try withNamespaces(["veth-a", "veth-b"]) { names in
            let (a, b) = (names[0], names[1])
            let macA = try #require(MACAddress("02:77:00:00:00:01"))
            let macB = try #require(MACAddress("02:77:00:00:00:02"))
            try connect(a, b, mtu: 1400, macA: macA, macB: macB)

            // ip's view.
            let linkA = try #require(try ipJSON(a, "link", "show", "eth0").first)
            #expect(linkA["mtu"] as? Int == 1400)
            #expect(linkA["address"] as? String == "02:77:00:00:00:01")
            let flags = linkA["flags"] as? [String] ?? []
            #expect(flags.contains("UP") && flags.contains("LOWER_UP"), "flags \(flags)")
            let linkB = try #require(try ipJSON(b, "link", "show", "eth0").first)
            #expect(linkB["mtu"] as? Int == 1400)
            #expect(linkB["address"] as? String == "02:77:00:00:00:02")
            let addressB = try #require(try ipJSON(b, "-4", "addr", "show", "dev", "eth0").first)
            let info = try #require((addressB["addr_info"] as? [[String: Any]])?.first)
            #expect(info["local"] as? String == "10.0.0.2")
            #expect(info["prefixlen"] as? Int == 24)
            // The connected route the kernel made.
            let routes = try ipJSON(a, "route", "show")
            #expect(routes.contains { $0["dst"] as? String == "10.0.0.0/24" && $0["dev"] as? String == "eth0" })

            // Our view agrees.
            let netlink = try RTNetlink(namespace: a)
            let links = try netlink.linkList()
            let eth0 = try #require(links.first { $0.name == "eth0" })
            #expect(eth0.kind == "veth")
            #expect(eth0.mac == macA)
            #expect(eth0.mtu == 1400)
            #expect(eth0.isUp && eth0.hasCarrier)
            #expect(try netlink.linkIndex(name: "eth0") == eth0.index)
            #expect(links.first { $0.name == "lo" }?.kind == nil)
            let addresses = try netlink.addressList(interface: "eth0")
            #expect(addresses.map(\.prefix) == [try prefix("10.0.0.1/24")])
            #expect(addresses.first?.interface == "eth0")

            // Traffic: a UDP datagram from A to B, from sockets opened inside each.
            let receiver = try NetworkNamespace.run(b) { try udpSocket(bindTo: "10.0.0.2", port: 47001) }
            defer { close(receiver) }
            let sender = try NetworkNamespace.run(a) { try udpSocket(bindTo: nil, port: 0) }
            defer { close(sender) }
            try sendUDP(sender, "wirelab", to: "10.0.0.2", port: 47001)
            #expect(try receiveUDP(receiver) == "wirelab")

            // Changing MAC and MTU afterwards.
            let newMAC = try #require(MACAddress("02:77:00:00:00:99"))
            try netlink.linkSetDown(name: "eth0")
            try netlink.linkSetAddress(name: "eth0", mac: newMAC)
            try netlink.linkSetMTU(name: "eth0", mtu: 1300)
            let changed = try #require(try netlink.linkList().first { $0.name == "eth0" })
            #expect(changed.mac == newMAC && changed.mtu == 1300 && !changed.isUp)

            // Deleting one end removes the pair.
            try netlink.linkDelete(name: "eth0")
            #expect(try !netlink.linkList().contains { $0.name == "eth0" })
            #expect(try !RTNetlink(namespace: b).linkList().contains { $0.name == "eth0" })
        }
    }

    /// ping (iputils-ping) between two namespaces, started by NamespaceProcess.
    /// Skipped where ping is not installed: scripts/install-deps.sh does not
    /// list iputils-ping yet; the UDP exchange above checks the same path.
    @Test(.enabled(if: commandExists("ping"), "ping is not installed (apt-get install iputils-ping)"))
    func pingBetweenNamespaces() throws {
        try withNamespaces(["ping-a", "ping-b"]) { names in
            try connect(names[0], names[1])
            let ping = try NamespaceProcess.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.2"], namespace: names[0])
            #expect(ping.status.isSuccess, "\(ping.standardOutput)\(ping.standardError)")
            #expect(ping.standardOutput.contains("2 packets transmitted, 2 received"), "\(ping.standardOutput)")
        }
    }

    @Test func multipathRoutesAsIpShowsThem() throws {
        try withNamespaces(["ecmp-r", "ecmp-s"]) { names in
            let (r, s) = (names[0], names[1])
            let router = try RTNetlink(namespace: r)
            let other = try RTNetlink(namespace: s)
            let sHandle = try NetworkNamespace.open(s)
            try router.pipelined {
                try router.linkAddVeth(name: "eth0", peer: "eth0", peerNamespace: sHandle, up: true)
                try router.linkAddVeth(name: "eth1", peer: "eth1", peerNamespace: sHandle, up: true)
                try router.addressAdd(try prefix("10.1.0.1/24"), interface: "eth0")
                try router.addressAdd(try prefix("10.2.0.1/24"), interface: "eth1")
                try router.routeAdd(destination: try prefix("10.99.0.0/24"),
                                    via: [try address("10.1.0.2"), try address("10.2.0.2")])
                try router.routeAdd(destination: try prefix("0.0.0.0/0"), via: [try address("10.1.0.2")])
                try router.routeAdd(destination: try prefix("10.98.0.0/16"), via: [], interface: "eth1")
            }
            try other.pipelined {
                try other.linkSetUp(name: "eth0")
                try other.linkSetUp(name: "eth1")
                try other.addressAdd(try prefix("10.1.0.2/24"), interface: "eth0")
                try other.addressAdd(try prefix("10.2.0.2/24"), interface: "eth1")
            }

            let text = try hostCommand(["ip", "-n", r, "route"])
            // ip hides "proto boot" (the default) and may still add "linkdown": the
            // kernel updates that route flag from linkwatch, up to a second after
            // the carrier came up.
            #expect(text.split(separator: "\n").contains { $0.hasPrefix("10.99.0.0/24 ") && !$0.contains("via") }, "\(text)")
            #expect(text.contains("nexthop via 10.1.0.2 dev eth0 weight 1"), "\(text)")
            #expect(text.contains("nexthop via 10.2.0.2 dev eth1 weight 1"), "\(text)")
            #expect(text.contains("default via 10.1.0.2 dev eth0"), "\(text)")
            #expect(text.contains("10.98.0.0/16 dev eth1 scope link"), "\(text)")
            let json = try #require(try ipJSON(r, "route", "show", "10.99.0.0/24").first)
            let hops = try #require(json["nexthops"] as? [[String: Any]])
            #expect(hops.compactMap { $0["gateway"] as? String } == ["10.1.0.2", "10.2.0.2"])
            #expect(hops.compactMap { $0["dev"] as? String } == ["eth0", "eth1"])

            let ecmp = try prefix("10.99.0.0/24")
            let listed = try #require(try router.routeList().first { $0.destination == ecmp })
            #expect(listed.gateways == [try address("10.1.0.2"), try address("10.2.0.2")])
            #expect(listed.nextHops.map(\.interface) == ["eth0", "eth1"])
            #expect(listed.proto == 3 && listed.type == 1 && listed.table == RTNetlink.mainTable)
            let gateway = try address("10.1.0.2")
            #expect(try router.routeList().contains { $0.destination.length == 0 && $0.gateways == [gateway] })

            // add again: exists; replace: single path via eth1.
            do {
                try router.routeAdd(destination: try prefix("10.99.0.0/24"), via: [try address("10.1.0.2")])
                Issue.record("duplicate route accepted")
            } catch let error as LinuxNetError {
                #expect(error.errno == .fileExists)
                #expect(error.operation == "adding route 10.99.0.0/24 via 10.1.0.2")
                #expect(error.namespace == r)
            }
            try router.routeReplace(destination: try prefix("10.99.0.0/24"), via: [try address("10.2.0.2")], interface: "eth1")
            let replaced = try #require(try ipJSON(r, "route", "show", "10.99.0.0/24").first)
            #expect(replaced["gateway"] as? String == "10.2.0.2")
            #expect(replaced["dev"] as? String == "eth1")
            #expect(replaced["nexthops"] == nil)

            try router.routeDelete(destination: try prefix("10.99.0.0/24"))
            #expect(try ipJSON(r, "route", "show", "10.99.0.0/24").isEmpty)
            #expect(throws: LinuxNetError.self) { try router.routeDelete(destination: try prefix("10.99.0.0/24")) }

            // A gateway no interface reaches: the kernel's own words come through.
            do {
                try router.routeAdd(destination: try prefix("10.97.0.0/24"), via: [try address("192.0.2.1")])
                Issue.record("unreachable gateway accepted")
            } catch let error as LinuxNetError {
                #expect(error.errno == .networkUnreachable)
                #expect(error.kernelMessage == "Nexthop has invalid gateway")
            }
        }
    }

    @Test func errorsNameTheOperationNamespaceAndInterface() throws {
        try withNamespaces(["err-a", "err-b"]) { names in
            let (a, b) = (names[0], names[1])
            let netlink = try RTNetlink(namespace: a)
            let hA = try NetworkNamespace.open(a)
            let hB = try NetworkNamespace.open(b)
            try netlink.linkAddVeth(name: "eth1", peer: "p1", peerNamespace: hB, namespace: hA)
            // A handle can create a pair whose both ends live elsewhere.
            try netlink.linkAddVeth(name: "x0", peer: "x1", peerNamespace: hB, namespace: hB, mtu: 9000)
            let inB = try RTNetlink(namespace: b).linkList()
            #expect(Set(inB.map(\.name)) == ["lo", "p1", "x0", "x1"])
            #expect(inB.filter { $0.name.hasPrefix("x") }.allSatisfy { $0.mtu == 9000 && $0.kind == "veth" })
            #expect(try !netlink.linkList().contains { $0.name.hasPrefix("x") })
            do {
                try netlink.linkAddVeth(name: "eth1", peer: "p2", peerNamespace: hB, namespace: hA)
                Issue.record("duplicate veth accepted")
            } catch let error as LinuxNetError {
                #expect(error.errno == .fileExists)
                #expect(error.description.hasPrefix("creating veth eth1 ↔ p2 in \(a)/\(b): File exists"), "\(error)")
            }
            do {
                try netlink.addressAdd(try prefix("10.0.0.1/24"), interface: "nope0")
                Issue.record("address on a missing interface accepted")
            } catch let error as LinuxNetError {
                #expect(error.errno == .noSuchDevice)
                #expect(error.interface == "nope0")
                #expect(error.description.hasPrefix("adding address 10.0.0.1/24 to nope0 in \(a): No such device"))
            }
            // A failure inside a pipeline is reported with its own operation, and
            // the requests after it are still applied.
            do {
                try netlink.pipelined {
                    try netlink.linkSetUp(name: "lo")
                    try netlink.linkSetMTU(name: "missing0", mtu: 1400)
                    try netlink.linkSetMTU(name: "eth1", mtu: 1280)
                }
                Issue.record("pipeline with a bad request succeeded")
            } catch let error as LinuxNetError {
                #expect(error.operation == "setting the MTU of missing0 to 1400")
                #expect(error.errno == .noSuchDevice)
            }
            #expect(try netlink.linkList().first { $0.name == "eth1" }?.mtu == 1280)
            #expect(try netlink.linkList().first { $0.name == "lo" }?.isUp == true)
        }
    }

    @Test func sysctlsArePerNamespace() throws {
        try withNamespaces(["sysctl-a", "sysctl-b"]) { names in
            let (a, b) = (names[0], names[1])
            let hostBefore = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
            #expect(try Sysctl.read("net.ipv4.ip_forward", namespace: a) == "0")
            #expect(try Sysctl.read("net.ipv4.ip_forward", namespace: b) == "0")

            try Sysctl.apply([.ipv4Forwarding(true)], namespace: a)
            #expect(try Sysctl.read("net.ipv4.ip_forward", namespace: a) == "1")
            #expect(try Sysctl.read("net.ipv4.ip_forward", namespace: b) == "0")
            #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) == hostBefore)
            // A process started in A sees A's value.
            let cat = try NamespaceProcess.run(["cat", "/proc/sys/net/ipv4/ip_forward"], namespace: a)
            #expect(cat.standardOutput == "1\n")

            try Sysctl.apply([
                .arpIgnore(1, interface: "lo"), .arpAnnounce(2, interface: "all"), .reversePathFilter(0),
                .reversePathFilter(2, interface: "lo"), .acceptLocal(true), .ipv6Disabled(true),
                .multipathHashPolicy(1),
            ], namespace: a)
            #expect(try Sysctl.read("net.ipv4.conf.lo.arp_ignore", namespace: a) == "1")
            #expect(try Sysctl.read("net.ipv4.conf.all.arp_announce", namespace: a) == "2")
            #expect(try Sysctl.read("net.ipv4.conf.all.rp_filter", namespace: a) == "0")
            #expect(try Sysctl.read("net/ipv4/conf/lo/rp_filter", namespace: a) == "2")
            #expect(try Sysctl.read("net.ipv4.conf.all.accept_local", namespace: a) == "1")
            #expect(try Sysctl.read("net.ipv6.conf.all.disable_ipv6", namespace: a) == "1")
            #expect(try Sysctl.read("net.ipv4.fib_multipath_hash_policy", namespace: a) == "1")
            #expect(try Sysctl.read("net.ipv4.conf.lo.arp_ignore", namespace: b) == "0")

            do {
                try Sysctl.write("net.ipv4.conf.nope0.rp_filter", "1", namespace: a)
                Issue.record("sysctl of a missing interface written")
            } catch let error as LinuxNetError {
                #expect(error.errno == .noSuchFileOrDirectory)
                #expect(error.description.hasPrefix("setting net.ipv4.conf.nope0.rp_filter=1 in \(a)"))
                #expect(error.interface == "nope0")
            }
        }
    }

    @Test func ethtoolTurnsTransmitOffloadsOff() throws {
        try withNamespaces(["ethtool-a", "ethtool-b"]) { names in
            let (a, b) = (names[0], names[1])
            try connect(a, b)
            let ethtool = try Ethtool(namespace: a)
            #expect(try ethtool.offload(.transmitChecksum, interface: "eth0"))  // veth default: on
            try ethtool.disableTransmitOffloads(interface: "eth0")
            #expect(try !ethtool.offload(.transmitChecksum, interface: "eth0"))
            #expect(try !ethtool.offload(.tcpSegmentation, interface: "eth0"))
            #expect(try !ethtool.offload(.genericSegmentation, interface: "eth0"))
            // The old per-offload ioctls agree.
            #expect(try !ethtool.legacyOffload(.transmitChecksum, interface: "eth0"))  // ETHTOOL_GTXCSUM
            #expect(try !ethtool.legacyOffload(.tcpSegmentation, interface: "eth0"))   // ETHTOOL_GTSO
            #expect(try !ethtool.legacyOffload(.genericSegmentation, interface: "eth0")) // ETHTOOL_GGSO
            // Every feature of the groups is off, whatever this kernel calls them.
            let features = try ethtool.features(interface: "eth0")
            #expect(features.contains { $0.name == "tx-checksum-ip-generic" })
            let stillOn = features.filter { f in
                f.isActive && [.transmitChecksum, .tcpSegmentation, .genericSegmentation].contains { (o: Ethtool.Offload) in
                    o.pattern.hasSuffix("*") ? f.name.hasPrefix(o.pattern.dropLast()) : f.name.hasPrefix(o.pattern.split(separator: "*")[0]) && f.name.hasSuffix(o.pattern.split(separator: "*").last!)
                }
            }
            #expect(stillOn.isEmpty, "still on: \(stillOn.map(\.name))")
            #expect(try Ethtool(namespace: b).offload(.transmitChecksum, interface: "eth0"))  // the peer is its own

            if commandExists("ethtool") {
                let shown = try NamespaceProcess.run(["ethtool", "-k", "eth0"], namespace: a)
                #expect(shown.status.isSuccess)
                #expect(shown.standardOutput.contains("tx-checksumming: off"), "\(shown.standardOutput)")
                #expect(shown.standardOutput.contains("tcp-segmentation-offload: off"))
                #expect(shown.standardOutput.contains("generic-segmentation-offload: off"))
            }
            try ethtool.setOffload(.transmitChecksum, true, interface: "eth0")
            #expect(try ethtool.offload(.transmitChecksum, interface: "eth0"))
            #expect(try ethtool.legacyOffload(.transmitChecksum, interface: "eth0"))
            try ethtool.setFeatures(["rx-gro": true], interface: "eth0")
            #expect(try ethtool.features(interface: "eth0").first { $0.name == "rx-gro" }?.isActive == true)
            #expect(throws: LinuxNetError.self) { try ethtool.setFeatures(["no-such-feature": false], interface: "eth0") }
            do {
                _ = try ethtool.offload(.transmitChecksum, interface: "nope0")
                Issue.record("ethtool on a missing interface worked")
            } catch let error as LinuxNetError {
                #expect(error.errno == .noSuchDevice)
                #expect(error.interface == "nope0" && error.namespace == a)
            }
        }
    }

    @Test func processesRunInsideTheNamespace() throws {
        try withNamespaces(["proc"]) { names in
            let ns = names[0]
            let links = try NamespaceProcess.run(["ip", "-o", "link"], namespace: ns)
            #expect(links.status.isSuccess)
            #expect(links.standardOutput.split(separator: "\n").count == 1 && links.standardOutput.contains("lo:"))

            let env = try NamespaceProcess.run(["env"], namespace: ns, environment: ["WL_TEST": "1", "PATH": "/usr/bin:/bin"])
            #expect(env.standardOutput == "PATH=/usr/bin:/bin\nWL_TEST=1\n")

            #expect(try NamespaceProcess.run(["false"], namespace: ns).status == .exited(1))
            let stderr = try NamespaceProcess.run(["ls", "/nonexistent-wltest"], namespace: ns)
            #expect(!stderr.status.isSuccess && stderr.standardError.contains("nonexistent-wltest"))

            // A log file gets stdout and stderr appended.
            let log = "/tmp/wltest-net-\(getpid()).log"
            defer { unlink(log) }
            let echo = try NamespaceProcess.spawn(["sh", "-c", "echo out; echo err >&2"], namespace: ns,
                                                  standardOutput: .file(log), standardError: .sameAsStandardOutput)
            #expect(try echo.wait() == .exited(0))
            #expect(try String(contentsOfFile: log, encoding: .utf8) == "out\nerr\n")

            // Detached: its own session, in the namespace; we stop it ourselves.
            let sleeper = try NamespaceProcess.spawn(["sleep", "30"], namespace: ns, detached: true)
            defer { _ = kill(sleeper.pid, SIGKILL); _ = try? sleeper.wait() }
            #expect(try sleeper.poll() == nil)
            let stat = try String(contentsOfFile: "/proc/\(sleeper.pid)/stat", encoding: .utf8)
            let fields = stat.split(separator: ")").last!.split(separator: " ")
            #expect(fields[3] == "\(sleeper.pid)", "session id: \(stat)")  // field 6: session
            #expect(inode("/proc/\(sleeper.pid)/ns/net") == inode(NetworkNamespace.path(of: ns)))
            try sleeper.signal(SIGTERM)
            #expect(try sleeper.wait() == .signalled(SIGTERM))

            // Pipes in both directions.
            let cat = try NamespaceProcess.spawn(["cat"], namespace: ns, standardInput: .pipe, standardOutput: .pipe)
            let input = Array("through the namespace\n".utf8)
            #expect(write(cat.standardInput!, input, input.count) == input.count)
            close(cat.standardInput!)
            var buffer = [UInt8](repeating: 0, count: 100)
            let count = read(cat.standardOutput!, &buffer, 100)
            close(cat.standardOutput!)
            #expect(String(decoding: buffer[0..<max(count, 0)], as: UTF8.self) == "through the namespace\n")
            #expect(try cat.wait().isSuccess)

            do {
                _ = try NamespaceProcess.spawn(["wltest-no-such-program"], namespace: ns)
                Issue.record("spawned a missing program")
            } catch let error as LinuxNetError {
                #expect(error.errno == .noSuchFileOrDirectory)
            }
            #expect(throws: LinuxNetError.self) {
                _ = try NamespaceProcess.run(["sleep", "5"], namespace: ns, timeout: 0.3)
            }
        }
    }

    /// Not an assertion: how long 50 namespaces + 50 veth pairs with
    /// addresses take through LinuxNet and through a script of `ip` commands.
    @Test func timingFiftyNamespacesAgainstIpCommands() throws {
        let count = ProcessInfo.processInfo.environment["WLTEST_TIMING_NODES"].flatMap(Int.init) ?? 50
        let ours = (0..<count).map { "wltest-net-t\($0)-\(getpid())" }
        let theirs = (0..<count).map { "wltest-net-i\($0)-\(getpid())" }
        defer {
            for name in ours + theirs { _ = try? NetworkNamespace.deleteIfExists(name) }
        }
        func ring(_ i: Int) -> (near: String, far: String) { (String(i), String((i + 1) % count)) }

        let start = monotonicSeconds()
        for name in ours { try NetworkNamespace.create(name) }
        let created = monotonicSeconds()
        let handles = try ours.map(NetworkNamespace.open)
        let sockets = try handles.map { try RTNetlink(namespace: $0) }
        let opened = monotonicSeconds()
        // Ring: eth0 of node i ↔ eth1 of node i+1, 10.77.i.1/30 ↔ 10.77.i.2/30.
        for i in 0..<count {
            try sockets[i].linkAddVeth(name: "eth0", peer: "eth1", peerNamespace: handles[(i + 1) % count], up: true)
        }
        for i in 0..<count {
            try sockets[i].pipelined {
                try sockets[i].linkSetUp(name: "lo")
                try sockets[i].linkSetUp(name: "eth1")
                try sockets[i].addressAdd(try prefix("10.77.\(i).1/30"), interface: "eth0")
                try sockets[i].addressAdd(try prefix("10.77.\((i + count - 1) % count).2/30"), interface: "eth1")
            }
        }
        let oursSeconds = monotonicSeconds() - start
        let phases = String(format: "create %.3f s, open sockets %.3f s, links + addresses %.3f s",
                            created - start, opened - created, start + oursSeconds - opened)

        var script = "set -e\n"
        for name in theirs { script += "ip netns add \(name)\n" }
        for i in 0..<count {
            let (near, far) = (theirs[i], theirs[(i + 1) % count])
            script += "ip -n \(near) link add eth0 type veth peer name eth1 netns \(far)\n"
            script += "ip -n \(near) link set eth0 up\n"
            script += "ip -n \(far) link set eth1 up\n"
            script += "ip -n \(near) link set lo up\n"
            script += "ip -n \(near) address add 10.77.\(i).1/30 dev eth0\n"
            script += "ip -n \(far) address add 10.77.\(i).2/30 dev eth1\n"
        }
        let path = "/tmp/wltest-net-timing-\(getpid()).sh"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let scriptStart = monotonicSeconds()
        _ = try hostCommand(["sh", path])
        let scriptSeconds = monotonicSeconds() - scriptStart

        // Both labs are complete and the same.
        let last = count - 1
        #expect(try sockets[last].addressList().map(\.prefix.description).sorted()
                == ["10.77.\(last - 1).2/30", "10.77.\(last).1/30", "127.0.0.1/8"])
        #expect(try ipJSON(theirs[last], "-4", "addr", "show").count == 3)

        let deleteStart = monotonicSeconds()
        for name in ours { try NetworkNamespace.delete(name) }
        let deleteSeconds = monotonicSeconds() - deleteStart
        print(String(format: "timing: %d namespaces + %d veth pairs + %d addresses: LinuxNet %.3f s, ip script %.3f s (%.1f×); LinuxNet delete %.3f s",
                     count, count, 2 * count, oursSeconds, scriptSeconds, scriptSeconds / oursSeconds, deleteSeconds) + " [LinuxNet: \(phases)]")
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

// MARK: - UDP helpers (sockets opened inside a namespace stay in it)

func socketAddress(_ text: String?, port: UInt16) throws -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    if let text { address.sin_addr.s_addr = try #require(IPv4Address(text)).rawValue.bigEndian }
    return address
}

func udpSocket(bindTo text: String?, port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    try #require(fd >= 0)
    var address = try socketAddress(text, port: port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    try #require(bound == 0, "bind: \(String(cString: strerror(errno)))")
    var timeout = timeval(tv_sec: 3, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

func sendUDP(_ fd: Int32, _ text: String, to host: String, port: UInt16) throws {
    var address = try socketAddress(host, port: port)
    let bytes = Array(text.utf8)
    let sent = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    try #require(sent == bytes.count, "sendto: \(String(cString: strerror(errno)))")
}

func receiveUDP(_ fd: Int32) throws -> String {
    var buffer = [UInt8](repeating: 0, count: 1500)
    let count = recv(fd, &buffer, buffer.count, 0)
    try #require(count >= 0, "recv: \(String(cString: strerror(errno)))")
    return String(decoding: buffer[0..<count], as: UTF8.self)
}
