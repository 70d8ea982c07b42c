// Against BIRD (Debian `bird2`), live. Needs root and bird; skipped (shown as
// skipped, with the reason) otherwise.
//
// Two namespaces, wlb<pid>a (BIRD, 10.179.0.1, AS 65001) and wlb<pid>b (this
// test's BGPSession and BFDSession over kernel sockets, 10.179.0.2, AS
// 4200000002, or 65002 against `enable as4 off`), a veth pair between them. BIRD announces three static
// prefixes; we reach Established, read BIRD's UPDATEs with our codec, check
// the prefixes, announce one of ours and find it in `birdc show route`, then
// disable BIRD's static protocol and see the withdrawals. BFD: BIRD's
// `protocol bfd` and our session come Up (and BIRD says so), BIRD's session
// is disabled and ours sees it dead (Down, diag 1, 150 ms after its last
// packet). Last, our KEEPALIVEs stop and BIRD's NOTIFICATION 4/0 (hold timer
// expired) takes our session to Idle. Run with BIRD 4-octet and with
// `enable as4 off`. BIRD is shut down over birdc, then killed by the PID in
// its pid file if it is still there; the namespaces are deleted in every case.
//
//   swift test --skip-build --filter BGPBird
//   BGP_BIRD_RECORD=/tmp/bird.hex swift test --skip-build --filter BGPBird   # dump BIRD's bytes (fixtures)
//   BGP_BIRD_KEEP=1 swift test --skip-build --filter BGPBird   # keep BIRD's config and log in /tmp/wlb<pid>-bird

import Foundation
import Glibc
import Testing
import Wire
@testable import Datapath

/// Written by one thread, read by another after a semaphore.
final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}

/// setns(2) with CLONE_NEWNET; Glibc's module does not export it (it is a
/// _GNU_SOURCE declaration), so it is looked up in libc.
func setNamespace(_ fd: Int32) -> Int32 {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { return -1 }
    return unsafeBitCast(symbol, to: SetNS.self)(fd, 0x4000_0000)  // CLONE_NEWNET
}

enum BirdLab {
    static var bird: String? {
        ["/usr/sbin/bird", "/usr/bin/bird"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var birdc: String? {
        ["/usr/sbin/birdc", "/usr/bin/birdc"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static var available: Bool { getuid() == 0 && bird != nil && birdc != nil }
    static let why = "needs root and BIRD (apt-get install bird2; scripts/install-deps.sh)"

    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: arguments[0])
        p.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func ip(_ words: String) throws {
        let r = try run(["/usr/sbin/ip"] + words.split(separator: " ").map(String.init))
        guard r.status == 0 else { throw LabError("ip \(words): \(r.output)") }
    }

    struct LabError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Runs `body` on a fresh thread that has entered namespace `name`; the
    /// sockets it makes belong to that namespace whatever thread uses them.
    static func inNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            let fd = open("/var/run/netns/\(name)", O_RDONLY)
            guard fd >= 0, setNamespace(fd) == 0 else {
                box.result = .failure(LabError("setns \(name): errno \(errno)"))
                return
            }
            close(fd)
            box.result = Result { try body() }
        }
        thread.start()
        done.wait()
        return try box.result!.get()
    }

    static func socketAddress(_ address: IPv4Address, _ port: UInt16) -> sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = address.rawValue.bigEndian
        return sa
    }

    static func bind(_ fd: Int32, _ address: IPv4Address, _ port: UInt16) -> Bool {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sa = socketAddress(address, port)
        return withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// The monotonic clock, as `Instant`s from the test's start.
struct TestClock {
    let start = TestClock.raw()
    static func raw() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
    var now: Instant { Instant(nanoseconds: TestClock.raw() - start) }
}

/// Drives one BGPSession and one BFDSession over kernel sockets: a passive
/// BGP listener (accepts the peer's connection) and BFD on UDP 3784 (receive,
/// TTL checked) / 49152 (send, TTL 255).
final class KernelDriver {
    var bgp: BGPSession
    var bfd: BFDSession
    let clock = TestClock()
    let listener: Int32
    var connection: Int32 = -1
    let bfdReceive: Int32
    let bfdSend: Int32
    let peer: IPv4Address
    var rib = BGPRIB(multipath: 4)
    var learned: [IPv4Prefix: BGPRoute] = [:]
    var withdrawn: [IPv4Prefix] = []
    var log: [String] = []
    var received: [UInt8] = []
    var bfdStarted = false
    var lastBFDReceived: Instant?
    var bfdDownAt: Instant?
    var bfdDropped = 0
    /// Drop our BGP KEEPALIVEs (to let BIRD's hold timer expire).
    var muteKeepalives = false

    init(bgp: BGPSession, bfd: BFDSession, listener: Int32, bfdReceive: Int32, bfdSend: Int32, peer: IPv4Address) {
        self.bgp = bgp
        self.bfd = bfd
        self.listener = listener
        self.bfdReceive = bfdReceive
        self.bfdSend = bfdSend
        self.peer = peer
    }

    deinit {
        if connection >= 0 { close(connection) }
        close(listener)
        close(bfdReceive)
        close(bfdSend)
    }

    func execute(_ actions: [BGPAction]) {
        for a in actions {
            switch a {
            case .send(let bytes):
                guard connection >= 0, !(muteKeepalives && bytes.count == 19 && bytes[18] == 4) else { continue }
                var off = 0
                while off < bytes.count {
                    let n = bytes[off...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    off += n
                }
            case .disconnect:
                if connection >= 0 { close(connection) }
                connection = -1
            case .connect:
                break  // passive
            case .stateChanged(let from, let to, let reason):
                log.append("\(clock.now) BGP \(from) → \(to): \(reason)")
            case .routes(_, let announced, let gone):
                for r in announced { learned[r.prefix] = r }
                withdrawn += gone
                for p in gone { learned[p] = nil }
            case .peerDown:
                learned = [:]
            }
            _ = rib.apply(a)
        }
    }

    func execute(_ actions: [BFDAction]) {
        for a in actions {
            switch a {
            case .send(let p):
                var sa = BirdLab.socketAddress(peer, bfdControlPort)
                let bytes = p.encode()
                _ = bytes.withUnsafeBytes { b in
                    withUnsafePointer(to: &sa) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(bfdSend, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                }
            case .stateChanged(let from, let to, let diag):
                log.append("\(clock.now) BFD \(from) → \(to) (\(diag))")
                if to == .down { bfdDownAt = clock.now }
            }
        }
    }

    /// One BFD datagram with its TTL (IP_RECVTTL); false when none is waiting.
    @discardableResult
    func receiveBFD() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 512)
        var control = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { b in
            control.withUnsafeMutableBytes { c in
                var iov = iovec(iov_base: b.baseAddress, iov_len: b.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var m = msghdr()
                    m.msg_iov = iovp
                    m.msg_iovlen = 1
                    m.msg_control = c.baseAddress
                    m.msg_controllen = c.count
                    return recvmsg(bfdReceive, &m, Int32(MSG_DONTWAIT))
                }
            }
        }
        guard n > 0 else { return false }
        // struct cmsghdr { size_t len; int level; int type; } then the int TTL.
        var ttl: UInt8 = 0
        let level = control.withUnsafeBytes { $0.load(fromByteOffset: 8, as: Int32.self) }
        let type = control.withUnsafeBytes { $0.load(fromByteOffset: 12, as: Int32.self) }
        if level == IPPROTO_IP, type == IP_TTL { ttl = UInt8(truncatingIfNeeded: control.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int32.self) }) }
        guard bfdAcceptsSingleHop(ttl: ttl, destinationPort: bfdControlPort),
              let p = try? BFDControlPacket.decode(buffer[0..<n]) else {
            bfdDropped += 1
            return true
        }
        lastBFDReceived = clock.now
        execute(bfd.receive(p, now: clock.now))
        return true
    }

    /// Runs the sockets and timers until `done()` or `seconds` pass.
    @discardableResult
    func pump(seconds: Double, until done: () -> Bool) -> Bool {
        let end = clock.now.adding(seconds: seconds)
        while clock.now < end {
            if done() { return true }
            let now = clock.now
            let next = [bgp.nextDeadline, bfdStarted ? bfd.nextDeadline : nil, end].compactMap { $0 }.min()!
            let timeout = next > now ? Int32(min(100, (next.nanoseconds - now.nanoseconds) / 1_000_000 + 1)) : 0
            var fds = [pollfd(fd: connection >= 0 ? connection : listener, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: bfdReceive, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, timeout)
            if fds[0].revents != 0 {
                if connection >= 0 {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                    if n > 0 {
                        received += buffer[0..<n]
                        execute(bgp.handle(.received(Array(buffer[0..<n])), now: clock.now))
                    } else {
                        close(connection)
                        connection = -1
                        execute(bgp.handle(.tcpFailed, now: clock.now))
                    }
                } else {
                    let fd = accept(listener, nil, nil)
                    if fd >= 0 {
                        if bgp.acceptsConnection {
                            connection = fd
                            execute(bgp.handle(.tcpConnected, now: clock.now))
                        } else {
                            close(fd)
                        }
                    }
                }
            }
            if fds[1].revents != 0 { while receiveBFD() {} }
            execute(bgp.advance(to: clock.now))
            if bfdStarted { execute(bfd.advance(to: clock.now)) }
        }
        return done()
    }
}

@Suite(.serialized) struct BGPBirdTests {
    /// `as4`: BIRD with 4-octet AS numbers (we are AS 4200000002), or with
    /// `enable as4 off` (an old speaker; we are AS 65002 and read and write
    /// 2-octet AS_PATHs).
    @Test(.enabled(if: BirdLab.available, "\(BirdLab.why)"), arguments: [true, false])
    func birdPeersWithOurSessionAndBFD(as4: Bool) throws {
        let ourASN: UInt32 = as4 ? 4_200_000_002 : 65002
        let pid = getpid()
        let nsA = "wlb\(pid)a", nsB = "wlb\(pid)b"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wlb\(pid)-bird").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var birdProcess: Process?
        defer {
            // BIRD: asked to go down over its control socket (the test
            // process blocks SIGTERM, and a spawned BIRD inherits that mask),
            // then, if it is still there, SIGKILL to the PID in its pid file.
            if let bird = birdProcess {
                if bird.isRunning { _ = try? BirdLab.run([BirdLab.birdc!, "-s", dir + "/bird.ctl", "down"]) }
                for _ in 0..<100 where bird.isRunning { usleep(20_000) }
                if bird.isRunning {
                    let text = (try? String(contentsOfFile: dir + "/bird.pid", encoding: .utf8)) ?? ""
                    let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? bird.processIdentifier
                    kill(pid, SIGKILL)
                }
                bird.waitUntilExit()
            }
            _ = try? BirdLab.run(["/usr/sbin/ip", "netns", "delete", nsA])
            _ = try? BirdLab.run(["/usr/sbin/ip", "netns", "delete", nsB])
            if ProcessInfo.processInfo.environment["BGP_BIRD_KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) }
        }
        try BirdLab.ip("netns add \(nsA)")
        try BirdLab.ip("netns add \(nsB)")
        try BirdLab.ip("link add \(nsA)v netns \(nsA) type veth peer name \(nsB)v netns \(nsB)")
        try BirdLab.ip("-n \(nsA) addr add 10.179.0.1/30 dev \(nsA)v")
        try BirdLab.ip("-n \(nsB) addr add 10.179.0.2/30 dev \(nsB)v")
        for ns in [nsA, nsB] {
            try BirdLab.ip("-n \(ns) link set lo up")
            try BirdLab.ip("-n \(ns) link set \(ns)v up")
        }
        let birdAddress = IPv4Address(10, 179, 0, 1), ourAddress = IPv4Address(10, 179, 0, 2)

        // Our sockets in namespace b, before BIRD starts connecting.
        let fds = try BirdLab.inNamespace(nsB) { () throws -> [Int32] in
            let l = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard BirdLab.bind(l, ourAddress, bgpPort), listen(l, 4) == 0 else { throw BirdLab.LabError("listen 179: errno \(errno)") }
            let r = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(r, Int32(IPPROTO_IP), IP_RECVTTL, &one, 4)
            guard BirdLab.bind(r, ourAddress, bfdControlPort) else { throw BirdLab.LabError("bind 3784: errno \(errno)") }
            let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var ttl: Int32 = 255
            setsockopt(s, Int32(IPPROTO_IP), IP_TTL, &ttl, 4)
            guard BirdLab.bind(s, ourAddress, 49152) else { throw BirdLab.LabError("bind 49152: errno \(errno)") }
            return [l, r, s]
        }

        let conf = """
            router id 10.179.0.1;
            log "\(dir)/bird.log" all;
            protocol device { scan time 1; }
            protocol static s4 {
              ipv4;
              route 10.200.1.0/24 blackhole;
              route 10.200.2.0/24 blackhole;
              route 192.0.2.100/32 blackhole;
            }
            protocol bfd bfd1 {
              debug all;
              interface "*" { min rx interval 50 ms; min tx interval 50 ms; idle tx interval 1000 ms; multiplier 3; };
              neighbor 10.179.0.2 local 10.179.0.1;
            }
            protocol bgp wl {
              local 10.179.0.1 as 65001;
              neighbor 10.179.0.2 as \(ourASN);
              enable as4 \(as4 ? "on" : "off");
              hold time 3;
              keepalive time 1;
              connect delay time 1;
              connect retry time 2;
              error wait time 1, 2;
              ipv4 { import all; export where source = RTS_STATIC; };
            }

            """
        try conf.write(toFile: dir + "/bird.conf", atomically: true, encoding: .utf8)
        let bird = Process()
        bird.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        bird.arguments = ["netns", "exec", nsA, BirdLab.bird!, "-c", dir + "/bird.conf", "-s", dir + "/bird.ctl",
                          "-P", dir + "/bird.pid", "-f"]
        bird.standardOutput = FileHandle.nullDevice
        bird.standardError = FileHandle.nullDevice
        try bird.run()
        birdProcess = bird  // `ip netns exec` execs bird: the same PID as the pid file's

        let session = BGPSession(BGPSessionConfiguration(localASN: ourASN, routerID: ourAddress, localAddress: ourAddress,
                                                         peerAddress: birdAddress, peerASN: 65001, holdTime: 3, passive: true))
        let bfd = BFDSession(BFDSessionConfiguration(localDiscriminator: 0x5741_4C42, interval: 50_000, multiplier: 3),
                             jitter: BFDJitter(seed: UInt64(pid)))
        let d = KernelDriver(bgp: session, bfd: bfd, listener: fds[0], bfdReceive: fds[1], bfdSend: fds[2], peer: birdAddress)
        func birdc(_ command: String) -> String {
            (try? BirdLab.run([BirdLab.birdc!, "-s", dir + "/bird.ctl"] + command.split(separator: " ").map(String.init)).output) ?? ""
        }
        /// birdc while the sessions keep running: the pump calls this until
        /// it returns the output (spawning birdc takes longer than BFD's
        /// 150 ms on a loaded machine, so it must not block the loop).
        var query: (process: Process, pipe: Pipe)?
        func birdcPending(_ command: String) -> String? {
            if let q = query {
                guard !q.process.isRunning else { return nil }
                query = nil
                return String(decoding: q.pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: BirdLab.birdc!)
            p.arguments = ["-s", dir + "/bird.ctl"] + command.split(separator: " ").map(String.init)
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return "" }
            query = (p, pipe)
            return nil
        }
        defer {
            if let record = ProcessInfo.processInfo.environment["BGP_BIRD_RECORD"] {
                try? d.received.map { String(format: "%02x", $0) }.joined().write(toFile: record, atomically: true, encoding: .utf8)
            }
            if !d.log.isEmpty { print(d.log.joined(separator: "\n")) }
        }
        execute(d, d.bgp.handle(.manualStart, now: d.clock.now))
        d.bfdStarted = true
        d.execute(d.bfd.start(now: d.clock.now))

        // BGP: Established, and BIRD's three prefixes.
        let expected: Set<IPv4Prefix> = [IPv4Prefix("10.200.1.0/24")!, IPv4Prefix("10.200.2.0/24")!, IPv4Prefix("192.0.2.100/32")!]
        let gotRoutes = d.pump(seconds: 20) { d.bgp.state == .established && Set(d.learned.keys) == expected }
        #expect(gotRoutes, "state \(d.bgp.state), learned \(d.learned.keys.map(\.description)); log:\n\(d.log.joined(separator: "\n"))\nbird: \(birdc("show protocols all wl"))")
        guard gotRoutes else { return }
        #expect(d.bgp.fourOctetAS == as4)
        #expect(d.bgp.negotiatedHoldTime == 3)
        #expect(d.bgp.peerOpen?.bgpIdentifier == birdAddress)
        for r in d.learned.values {
            #expect(r.nextHop == birdAddress)
            #expect(r.attributes.asPath == [.sequence([65001])])
            #expect(r.attributes.origin == .igp)
        }
        #expect(d.rib.fib == Dictionary(uniqueKeysWithValues: expected.map { ($0, [birdAddress]) }))

        // Ours to BIRD: birdc shows it, with our 4-octet AS in the path.
        d.execute(d.bgp.announce([IPv4Prefix("10.201.0.0/24")!], now: d.clock.now))
        var shown = ""
        let birdHasIt = d.pump(seconds: 10) {
            guard let out = birdcPending("show route 10.201.0.0/24 all") else { return false }
            shown = out
            return shown.contains("10.201.0.0/24") && shown.contains("via 10.179.0.2") && shown.contains("BGP.as_path: \(ourASN)")
        }
        #expect(birdHasIt, "birdc: \(shown)")
        // … and withdrawn: gone from BIRD.
        d.execute(d.bgp.withdraw([IPv4Prefix("10.201.0.0/24")!], now: d.clock.now))
        let birdDropped = d.pump(seconds: 10) {
            guard let out = birdcPending("show route 10.201.0.0/24") else { return false }
            shown = out
            return !shown.contains("10.201.0.0/24")
        }
        #expect(birdDropped, "birdc: \(shown)")

        // BFD: both Up.
        var sessions = ""
        let bfdUp = d.pump(seconds: 15) {
            guard d.bfd.state == .up, let out = birdcPending("show bfd sessions") else { return false }
            sessions = out
            return d.bfd.state == .up && sessions.contains("Up")
        }
        #expect(bfdUp, "ours \(d.bfd.state), dropped \(d.bfdDropped); birdc: \(sessions)")
        if bfdUp {
            // The switch to 50 ms went through: both sides' packets at the fast rate.
            d.pump(seconds: 1) { false }
            #expect(d.bfd.transmitInterval == 50_000, "tx \(String(describing: d.bfd.transmitInterval))")
            #expect(d.bfd.detectionTime == 150_000, "detection \(String(describing: d.bfd.detectionTime))")
            #expect(d.bfd.state == .up)
        }

        // No flap on the way: Up once (BIRD lowers its interval at Up with
        // its next packet still due at the old one).
        let ups = d.log.filter { $0.contains("BFD") && $0.hasSuffix("→ Up (No Diagnostic)") }.count
        #expect(ups == 1, "BFD came Up \(ups) times: \(d.log.joined(separator: "\n"))")

        // BIRD withdraws: its static protocol disabled.
        while birdcPending("disable s4") == nil { d.pump(seconds: 0.05) { false } }
        let withdrawnAll = d.pump(seconds: 10) { d.learned.isEmpty }
        #expect(withdrawnAll, "still learned \(d.learned.keys.map(\.description))")
        #expect(Set(d.withdrawn) == expected)
        #expect(d.rib.fib.isEmpty)

        // BIRD's BFD disabled: BIRD 2.0.12 just stops sending (no AdminDown
        // packet), so ours must see it dead: Down, diag 1, one Detection
        // Time (3 × 50 ms) after the last packet — plus how late this loop
        // wakes on a loaded machine (poll's millisecond timeout), 50 ms at most.
        if bfdUp {
            while birdcPending("disable bfd1") == nil { d.pump(seconds: 0.05) { false } }
            let down = d.pump(seconds: 5) { d.bfd.state == .down }
            #expect(down, "ours \(d.bfd.state)")
            if down, let last = d.lastBFDReceived, let at = d.bfdDownAt {
                #expect([BFDDiagnostic.controlDetectionTimeExpired, .neighborSignaledSessionDown].contains(d.bfd.localDiagnostic))
                let gap = at.nanoseconds - last.nanoseconds
                if d.bfd.localDiagnostic == .controlDetectionTimeExpired {
                    #expect(gap >= 150_000_000 && gap < 200_000_000, "down \(gap) ns after BIRD's last packet")
                }
                print("BFD: BIRD disabled; ours Down with \(d.bfd.localDiagnostic), \(gap / 1_000_000) ms after BIRD's last packet")
            }
        }
        #expect(d.bgp.state == .established)

        // Our KEEPALIVEs stop: BIRD's hold timer (3 s) expires, and its
        // NOTIFICATION 4/0 takes our session to Idle.
        d.muteKeepalives = true
        let notified = d.pump(seconds: 8) { d.bgp.state != .established }
        #expect(notified, "still \(d.bgp.state)")
        #expect(d.bgp.lastNotification?.sent == false)
        #expect(d.bgp.lastNotification?.notification == BGPNotification(code: 4, subcode: 0))
        #expect(d.rib.fib.isEmpty)
    }

    func execute(_ d: KernelDriver, _ actions: [BGPAction]) { d.execute(actions) }
}
