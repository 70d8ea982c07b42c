// `drills:`: what the reader makes of a good file (the broken ones are in
// Fixtures/broken/46-… and 47-…).
import Foundation
import Testing
import Wire
@testable import Topology

@Suite struct DrillReaderTests {
    @Test func aDrillIsReadWithEveryField() throws {
        let t = try loadGood("drills.yaml")
        #expect(t.drills.map(\.name) == ["a real dies", "just load"])
        let d = t.drills[0]
        #expect(d.load.from == ["client", "other"])
        #expect(d.load.address == IPv4Address("10.0.0.100"))
        #expect(d.load.port == 8080 && d.load.path == "/index.html")
        #expect(d.load.clients == 8 && d.load.streams == 4)
        #expect(d.load.duration == .seconds(20))
        #expect(d.load.streamInterval == DurationSpec(milliseconds: 20))
        #expect(d.load.requestTimeout == DurationSpec(milliseconds: 500))
        #expect(d.events.map(\.at.milliseconds) == [5000, 8000, 9000, 12000])
        #expect(d.events.map(\.action) == [.fail, .fail, .heal, .heal])
        #expect(d.events.map(\.target) == [.node("rs1"), .link(Endpoint(node: "gw", interface: "eth1")),
                                           .link(Endpoint(node: "sw", interface: "p1")), .node("rs1")])
        #expect(d.expect == DrillExpectations(maxInterruption: .seconds(1), maxFailedRequests: 0, establishedLost: 2))
        #expect(d.location.line == 27)
    }

    @Test func defaultsFillWhatIsNotWritten() throws {
        let d = try loadGood("drills.yaml").drills[1]
        #expect(d.load.from == ["client"])
        #expect(d.load.port == 8080 && d.load.path == "/")
        #expect(d.load.clients == 1 && d.load.streams == 0)
        #expect(d.load.streamInterval == DurationSpec(milliseconds: 50))
        #expect(d.load.requestTimeout == .seconds(1))
        #expect(d.events.isEmpty)
        #expect(d.expect == DrillExpectations())
    }

    @Test func aFileWithoutDrillsHasNone() throws {
        #expect(try loadGood("directors.yaml").drills.isEmpty)
    }
}
