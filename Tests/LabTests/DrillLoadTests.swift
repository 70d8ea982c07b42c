// The pieces of a drill's live load that need no lab: how the built-in
// server splits keep-alive requests, and how the load reads answers.
import Foundation
import Testing
@testable import Lab

@Suite struct DrillLoadTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func http11WithoutConnectionCloseKeepsTheConnection() throws {
        let r = try #require(BuiltinServer.nextRequest(Self.bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")))
        #expect(r.length == 27 && r.keepAlive)
    }

    @Test(arguments: ["GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "GET / HTTP/1.1\r\nconnection: Keep-Alive, Close\r\n\r\n",
                      "GET / HTTP/1.0\r\nHost: a\r\n\r\n", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"])
    func closeOrHTTP10ClosesAsBefore(_ request: String) throws {
        #expect(try #require(BuiltinServer.nextRequest(Self.bytes(request))).keepAlive == false)
    }

    @Test func pipelinedRequestsAndBodiesAreSplit() throws {
        let two = Self.bytes("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /b HTTP/1.1\r\n\r\n")
        let first = try #require(BuiltinServer.nextRequest(two))
        #expect(first.length == "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz".utf8.count)
        let rest = Array(two[first.length...])
        #expect(BuiltinServer.nextRequest(rest)?.length == rest.count)
        // A body not all there yet: wait for it.
        #expect(BuiltinServer.nextRequest(Self.bytes("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")) == nil)
        #expect(BuiltinServer.nextRequest(Self.bytes("GET / HTTP/1.1\r\nHost: a\r\n")) == nil)
    }

    @Test func aResponseIsCompleteByContentLengthOrByClose() throws {
        let keep = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Wirelab-Node: rs2\r\nConnection: keep-alive\r\n\r\nrs2\n"
        let r = try #require(LoadGenerator.response(Self.bytes(keep + "HTTP/1.1"), closed: false))
        #expect(r.length == keep.utf8.count && r.node == "rs2")
        #expect(LoadGenerator.response(Self.bytes(String(keep.dropLast(2))), closed: false) == nil)
        // No Content-Length: the body runs to the close.
        let old = "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nweb1\n"
        #expect(LoadGenerator.response(Self.bytes(old), closed: false) == nil)
        #expect(LoadGenerator.response(Self.bytes(old), closed: true)?.node == "web1")
        #expect(LoadGenerator.response(Self.bytes("SSH-2.0-x\r\n\r\n"), closed: true) == nil)
    }
}
