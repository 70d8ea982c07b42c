import Testing
@testable import Lab

/// The carrier the daemon applies per port, on nodes of up to 1024 ports.
struct PortLinksTests {
    @Test func everyPortKeepsItsOwnCarrierAboveTheFirstWordToo() {
        var links = PortLinks()
        for port in [0, 63, 64, 100, 1023] { #expect(!links.isDown(port)) }
        for port in [3, 64, 700, 1023] { links.set(port, up: false) }
        #expect(links.isDown(3) && links.isDown(64) && links.isDown(700) && links.isDown(1023))
        #expect(!links.isDown(2) && !links.isDown(63) && !links.isDown(65) && !links.isDown(701) && !links.isDown(1022))
        for port in [64, 700, 1023] { links.set(port, up: true) }
        #expect(!links.isDown(64) && !links.isDown(700) && !links.isDown(1023))
        #expect(links.isDown(3) && !links.anyAbove, "only port 3 stays down")
    }
}
