import Foundation
import Testing
import Topology
import Wire
@testable import Datapath
@testable import Lab

/// `Simulator.fail`/`heal` (links and nodes) and the host model's
/// keep-alive connections, on the virtual clock.
@Suite struct SimFailureTests {
    static let server = IPv4Address("10.0.2.2")!

    /// ecmp.yaml: client → r1 ⇉ (r2 | r3) ⇉ r4 → server.
    static func ecmp() throws -> Simulator {
        try Simulator(topology: SimulatorTests.load("ecmp.yaml"))
    }

    static func router(_ sim: Simulator, _ name: String) -> Router {
        guard case let .forwarder(.router(r)) = sim.element(name)! else { fatalError("\(name) is not a router") }
        return r
    }

    /// `count` HTTP GETs from the client to the server (each a new flow);
    /// how many were answered.
    static func gets(_ sim: Simulator, _ count: Int) throws -> Int {
        var answered = 0
        for _ in 0..<count where try sim.httpGet(from: "client", to: server, limit: 2_000_000_000).httpBody == "server\n" {
            answered += 1
        }
        return answered
    }

    @Test func aFailedLinkLosesFramesBothWaysUntilHealed() throws {
        let sim = try Self.ecmp()
        #expect(try Self.gets(sim, 1) == 1)
        try sim.fail(link: Endpoint("r4:eth2")!)
        #expect(sim.isUp(link: Endpoint("server:eth0")!) == false)
        // The server's side of the same link is down too.
        #expect(try sim.httpGet(from: "client", to: Self.server, limit: 2_000_000_000).httpBody == nil)
        // r4 learned it: its connected route through eth2 is gone.
        #expect(Self.router(sim, "r4").fib.downPorts == [PortID(2)])
        #expect(sim.drops(of: "r4")["link-down"] == nil)
        // Nothing crossed it: the server answers a ping nowhere.
        let before = sim.host("server")!.counters.received
        try sim.ping(from: "client", to: Self.server, identifier: 7, sequence: 1)
        sim.advance(by: 1_000_000_000)
        #expect(sim.host("server")!.counters.received == before)
        try sim.heal(link: Endpoint("server:eth0")!)
        #expect(try Self.gets(sim, 3) == 3)
    }

    /// As live (`LabDaemon.applyCarrier`): a router whose link comes back
    /// asks at once for the neighbours it knew there, so the next packet
    /// finds the server resolved; no 1 s tick is waited for.
    @Test func aRouterReResolvesItsNeighboursTheMomentALinkHeals() throws {
        let sim = try Self.ecmp()
        #expect(try Self.gets(sim, 1) == 1)
        let r4 = Self.router(sim, "r4")
        #expect(r4.arp.lookup(Self.server, now: sim.instant) != nil)
        try sim.fail(link: Endpoint("r4:eth2")!)
        sim.advance(by: 1_000_000_000)
        #expect(r4.arp.lookup(Self.server, now: sim.instant) == nil, "forgotten with the link")
        let sent = r4.counters.arpRequestsSent
        try sim.heal(link: Endpoint("r4:eth2")!)
        sim.advance(by: 1_000_000)   // 1 ms: a request and its reply, 10 µs a hop
        #expect(r4.counters.arpRequestsSent == sent + 1)
        #expect(r4.arp.lookup(Self.server, now: sim.instant) != nil, "resolved before any packet asked")
        #expect(try Self.gets(sim, 3) == 3)
    }

    @Test func framesInFlightOnALinkThatFailsAreLost() throws {
        let sim = try Self.ecmp()
        try sim.ping(from: "client", to: Self.server, identifier: 1, sequence: 1)
        sim.run(limit: 1_000_000_000)
        #expect(sim.host("client")!.pingReplies.count == 1)
        // The echo request is on the client's link (it arrives 10 µs after
        // it was sent): failing and healing the link at once still loses it.
        try sim.ping(from: "client", to: Self.server, identifier: 1, sequence: 2)
        try sim.fail(link: Endpoint("client:eth0")!)
        try sim.heal(link: Endpoint("client:eth0")!)
        sim.run(limit: 1_000_000_000)
        #expect(sim.host("client")!.pingReplies.count == 1)
        #expect(sim.drops(of: "client")["link-down"] == 1)
    }

    @Test func routersMoveFlowsOffADeadNextHopAndBack() throws {
        let sim = try Self.ecmp()
        let r1 = Self.router(sim, "r1"), r4 = Self.router(sim, "r4")
        let r1Hops = r1.fib.liveNextHopCount, r4Hops = r4.fib.liveNextHopCount
        // Healthy: flows take both middle routers.
        #expect(try Self.gets(sim, 20) == 20)
        #expect(Self.router(sim, "r2").counters.forwarded > 0)
        #expect(Self.router(sim, "r3").counters.forwarded > 0)
        // r2 loses power: r1 and r4 see carrier go at their ends and drop it.
        try sim.fail(node: "r2")
        #expect(r1.fib.liveNextHopCount == r1Hops - 1)
        #expect(r4.fib.liveNextHopCount == r4Hops - 1)
        let r2Forwarded = Self.router(sim, "r2").counters.forwarded
        #expect(try Self.gets(sim, 20) == 20)
        #expect(Self.router(sim, "r2").counters.forwarded == r2Forwarded)
        #expect(sim.drops(of: "r1")["link-down"] == nil)
        #expect(sim.drops(of: "r4")["link-down"] == nil)
        // Back on: both next hops again, and flows use r2 again.
        try sim.heal(node: "r2")
        #expect(r1.fib.liveNextHopCount == r1Hops)
        #expect(r4.fib.liveNextHopCount == r4Hops)
        #expect(try Self.gets(sim, 20) == 20)
        #expect(Self.router(sim, "r2").counters.forwarded > r2Forwarded)
    }

    @Test func aFailedLinkIsDroppedByTheRoutersAtBothEnds() throws {
        let sim = try Self.ecmp()
        let r1 = Self.router(sim, "r1"), r2 = Self.router(sim, "r2")
        let r1Hops = r1.fib.liveNextHopCount
        try sim.fail(link: Endpoint("r1:eth1")!)
        #expect(r1.fib.liveNextHopCount == r1Hops - 1)
        #expect(r2.fib.downPorts == [PortID(0)])
        // Forward traffic no longer goes to r2 (r1 never sends on the dead link).
        _ = try Self.gets(sim, 10)
        #expect(sim.drops(of: "r1")["link-down"] == nil)
        try sim.heal(link: Endpoint("r2:eth0")!)
        #expect(r1.fib.liveNextHopCount == r1Hops)
        #expect(r2.fib.downPorts.isEmpty)
    }

    @Test func healingANodeLeavesItsSeparatelyFailedLinkDown() throws {
        let sim = try Self.ecmp()
        let r1 = Self.router(sim, "r1")
        let hops = r1.fib.liveNextHopCount
        try sim.fail(link: Endpoint("r1:eth1")!)
        try sim.fail(node: "r2")
        try sim.heal(node: "r2")
        #expect(sim.isUp(link: Endpoint("r1:eth1")!) == false)
        #expect(sim.isUp(link: Endpoint("r2:eth1")!) == true)
        #expect(r1.fib.liveNextHopCount == hops - 1)
        // r2 was off when its link failed: it learns it when it comes back.
        #expect(Self.router(sim, "r2").fib.downPorts == [PortID(0)])
        try sim.heal(link: Endpoint("r1:eth1")!)
        #expect(r1.fib.liveNextHopCount == hops)
        #expect(Self.router(sim, "r2").fib.downPorts.isEmpty)
    }

    @Test func unknownNamesAndImpossibleChangesAreErrors() throws {
        let sim = try Self.ecmp()
        #expect(throws: Simulator.SimError.unknownNode("nope")) { try sim.fail(node: "nope") }
        #expect(throws: Simulator.SimError.unknownNode("nope")) { try sim.fail(link: Endpoint("nope:eth0")!) }
        #expect {
            try sim.fail(link: Endpoint("r1:eth9")!)
        } throws: { "\($0)".contains("no linked interface eth9") && "\($0)".contains("eth0, eth1, eth2") }
        #expect(throws: Simulator.SimError.self) { try sim.heal(node: "r2") }
        #expect(throws: Simulator.SimError.self) { try sim.heal(link: Endpoint("r1:eth1")!) }
        try sim.fail(node: "r2")
        #expect(throws: Simulator.SimError.self) { try sim.fail(node: "r2") }
        try sim.fail(node: "client")
        #expect { try sim.ping(from: "client", to: Self.server, identifier: 1, sequence: 1) }
            throws: { "\($0)" == "host client is failed (powered off): it sends nothing until healed" }
        try sim.fail(link: Endpoint("r1:eth1")!)
        #expect(throws: Simulator.SimError.self) { try sim.fail(link: Endpoint("r2:eth0")!) }
    }

    @Test func aFailedHostIsFrozenAndResumesWhereItStopped() throws {
        let sim = try Self.ecmp()
        let client = sim.host("client")!
        let message = DrillHTTP.keepAliveRequest(host: "10.0.2.2", path: "/")
        let id = try sim.connect(from: "client", to: Self.server, port: 80, request: message, keepOpen: true)
        sim.advance(by: 10_000_000)
        #expect(DrillHTTP.response(in: client.connections[id].received)?.node == "server")
        try sim.fail(node: "client")
        let sent = client.counters.sent
        // Frozen for longer than the client gives an open connection
        // (`connectionTimeout`): it ticks nothing, so nothing times out.
        sim.advance(by: 40_000_000_000)
        #expect(client.counters.sent == sent)
        #expect(client.connections[id].state == .established)
        #expect(sim.isUp(link: Endpoint("r1:eth0")!) == false)
        try sim.heal(node: "client")
        #expect(try sim.send(message, on: id, from: "client"))
        sim.advance(by: 10_000_000)
        let received = client.connections[id].received
        let first = try #require(DrillHTTP.response(in: received))
        #expect(DrillHTTP.response(in: received.dropFirst(first.length))?.node == "server")
        #expect(client.connections[id].state == .established)
        #expect(sim.host("server")!.serverConnectionCount == 1)
    }

    @Test func aMessageLostInAnOutageIsSentAgainAndAnswered() throws {
        let sim = try Self.ecmp()
        let client = sim.host("client")!
        let message = DrillHTTP.keepAliveRequest(host: "10.0.2.2", path: "/")
        let id = try sim.connect(from: "client", to: Self.server, port: 80, request: message, keepOpen: true)
        sim.advance(by: 10_000_000)
        #expect(DrillHTTP.response(in: client.connections[id].received) != nil)
        client.consumeReceived(.max, of: id)
        try sim.fail(link: Endpoint("r1:eth0")!)
        #expect(try sim.send(message, on: id, from: "client"))
        sim.advance(by: 100_000_000)
        try sim.heal(link: Endpoint("r1:eth0")!)
        sim.advance(by: 500_000_000)
        #expect(client.connections[id].received.isEmpty)
        // The host's next tick (1 s) sends it again: 200 ms have passed.
        sim.advance(by: 1_000_000_000)
        #expect(DrillHTTP.response(in: client.connections[id].received)?.node == "server")
        #expect(sim.host("server")!.counters.httpRequestsServed == 2)
    }

    @Test func anAnswerLostOnTheWayBackIsSentAgain() throws {
        let sim = try Self.ecmp()
        let client = sim.host("client")!
        let message = DrillHTTP.keepAliveRequest(host: "10.0.2.2", path: "/")
        let id = try sim.connect(from: "client", to: Self.server, port: 80, request: message, keepOpen: true)
        sim.advance(by: 10_000_000)
        client.consumeReceived(.max, of: id)
        #expect(try sim.send(message, on: id, from: "client"))
        // The request is past the client's link (10 µs): cut the client off
        // before the answer comes back.
        sim.advance(by: 15_000)
        try sim.fail(node: "client")
        sim.advance(by: 10_000_000)
        #expect(sim.host("server")!.counters.httpRequestsServed == 2)
        try sim.heal(node: "client")
        sim.advance(by: 100_000_000)
        #expect(client.connections[id].received.isEmpty)
        sim.advance(by: 1_000_000_000)
        #expect(DrillHTTP.response(in: client.connections[id].received)?.node == "server")
        #expect(sim.host("server")!.counters.httpRequestsServed == 2)
    }

    @Test func theServerAnswersEveryKeptAliveRequestOnOneConnection() throws {
        let sim = try Self.ecmp()
        let client = sim.host("client")!, server = sim.host("server")!
        let keep = DrillHTTP.keepAliveRequest(host: "10.0.2.2", path: "/x")
        let id = try sim.connect(from: "client", to: Self.server, port: 80, request: keep, keepOpen: true)
        sim.advance(by: 10_000_000)
        for _ in 0..<3 {
            #expect(try sim.send(keep, on: id, from: "client"))
            sim.advance(by: 10_000_000)
        }
        #expect(server.counters.httpRequestsServed == 4)
        #expect(server.serverConnectionCount == 1)
        var rest = client.connections[id].received[...]
        var answers = 0
        while let r = DrillHTTP.response(in: rest) {
            let text = String(decoding: rest.prefix(r.length), as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(text.contains("\r\nConnection: keep-alive\r\n"))
            #expect(text.hasSuffix("\r\n\r\nserver\n"))
            rest = rest.dropFirst(r.length)
            answers += 1
        }
        #expect(answers == 4 && rest.isEmpty)
        #expect(client.connections[id].state == .established)
        // A last request that does not ask to be kept alive: answered, then closed.
        #expect(try sim.send(DrillHTTP.request(host: "10.0.2.2", path: "/x"), on: id, from: "client"))
        sim.run(limit: 1_000_000_000)
        #expect(client.connections[id].state == .closed)
        #expect(String(decoding: client.connections[id].received, as: UTF8.self).hasSuffix("Connection: close\r\n\r\nserver\n"))
        #expect(server.serverConnectionCount == 0)
    }

    @Test func aRequestWithoutConnectionHeaderStillClosesAsBefore() throws {
        let sim = try Self.ecmp()
        let c = try sim.httpGet(from: "client", to: Self.server)
        #expect(c.state == .closed)
        #expect(c.received == HostModel.httpResponse(name: "server"))
        #expect(String(decoding: c.received, as: UTF8.self).contains("Connection: close"))
    }

    @Test func theKeepAliveRuleReadsTheConnectionHeader() {
        func asks(_ header: String) -> Bool { DrillHTTP.asksKeepAlive(Array(header.utf8)) }
        #expect(asks("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"))
        #expect(asks("GET / HTTP/1.1\r\nconnection:Keep-Alive\r\n\r\n"))
        #expect(asks("GET / HTTP/1.1\r\nConnection: Upgrade, keep-alive\r\n\r\n"))
        #expect(!asks("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(!asks("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))
        #expect(!asks("GET / HTTP/1.1\r\nX-Connection: keep-alive\r\n\r\n"))
    }

    @Test func anAnswerIsCompleteOnlyWithItsWholeBody() {
        let full = HostModel.httpResponse(name: "rs1", keepAlive: true)
        #expect(DrillHTTP.response(in: full.dropLast()) == nil)
        #expect(DrillHTTP.response(in: full)?.length == full.count)
        #expect(DrillHTTP.response(in: full)?.node == "rs1")
        #expect(DrillHTTP.response(in: full + Array("HTTP/1.1".utf8))?.length == full.count)
        #expect(DrillHTTP.response(in: Array("HTTP/1.1 200 OK\r\n\r\n".utf8))?.node == nil)
        for bad in ["-5", "9223372036854775807", "x"] {
            let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: \(bad)\r\n\r\nab".utf8)
            #expect(DrillHTTP.response(in: answer)?.length == answer.count - 2)
        }
    }
}
