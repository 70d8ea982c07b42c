// The HTTP a drill's load speaks, in one place for the live load, the
// simulated load (`SimLoad`) and the host model's server. A live server must
// keep a connection open at least when `asksKeepAlive` says so (the stream
// messages ask); keeping HTTP/1.1 connections open by default also agrees.

/// Requests a drill's load sends and how it reads the answers.
public enum DrillHTTP {
    /// A request loop's request: a new connection each, closed after the
    /// answer (`Connection: close`).
    public static func request(host: String, path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: wirelab-drill\r\nConnection: close\r\n\r\n".utf8)
    }

    /// A long-lived stream's message: the same request, asking the server
    /// to keep the connection open for the next one.
    public static func keepAliveRequest(host: String, path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: wirelab-drill\r\nConnection: keep-alive\r\n\r\n".utf8)
    }

    /// The `Host:` header for `address:port`, as curl writes it.
    public static func hostHeader(_ address: String, port: Int) -> String {
        port == 80 ? address : "\(address):\(port)"
    }

    /// The keep-alive rule: a server keeps a connection open after its
    /// answer only when the request's header says `Connection: keep-alive`
    /// (any case, among other tokens). A request without a `Connection`
    /// header is answered and the connection closed, as the built-in server
    /// always did (curl's checks and the golden walks rely on that close).
    public static func asksKeepAlive(_ header: some Collection<UInt8>) -> Bool {
        guard let value = headerValue("connection", in: Array(header)) else { return false }
        return value.split(separator: UInt8(ascii: ",")).contains { token in
            equalsIgnoringCase(trimmed(token), "keep-alive")
        }
    }

    /// A complete answer at the start of `bytes`: its length (header and
    /// `Content-Length` body) and who sent it (`X-Wirelab-Node`). Nil until
    /// all of it has come.
    public static func response(in bytes: some Collection<UInt8>) -> (length: Int, node: String?)? {
        let data = Array(bytes)
        guard let headerEnd = headerEnd(data) else { return nil }
        let header = data[..<headerEnd]
        // (A length that is no number, negative or absurd counts as none.)
        let declared = headerValue("content-length", in: header).flatMap { Int(String(decoding: trimmed($0), as: UTF8.self)) }
        let contentLength = declared.map { (0...(1 << 30)).contains($0) ? $0 : 0 } ?? 0
        guard data.count >= headerEnd + contentLength else { return nil }
        let node = headerValue("x-wirelab-node", in: header).map { String(decoding: trimmed($0), as: UTF8.self) }
        return (headerEnd + contentLength, node)
    }

    /// Where the header ends (after the blank line), if it has.
    static func headerEnd(_ data: [UInt8]) -> Int? {
        guard data.count >= 4 else { return nil }
        for i in 0...(data.count - 4) where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    /// The value of the first header line named `name` (lower case), bytes
    /// after the colon up to the line's end; the request or status line is
    /// never one.
    static func headerValue(_ name: String, in header: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var lineStart = header.startIndex
        var first = true
        while lineStart < header.endIndex {
            var lineEnd = lineStart
            while lineEnd < header.endIndex, header[lineEnd] != 13, header[lineEnd] != 10 { lineEnd += 1 }
            let line = header[lineStart..<lineEnd]
            if !first, let colon = line.firstIndex(of: UInt8(ascii: ":")),
               equalsIgnoringCase(line[..<colon], name) {
                return line[(colon + 1)...]
            }
            first = false
            lineStart = lineEnd
            while lineStart < header.endIndex, header[lineStart] == 13 || header[lineStart] == 10 { lineStart += 1 }
        }
        return nil
    }

    static func headerValue(_ name: String, in header: [UInt8]) -> ArraySlice<UInt8>? {
        headerValue(name, in: header[...])
    }

    static func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, f == 32 || f == 9 { s.removeFirst() }
        while let l = s.last, l == 32 || l == 9 { s.removeLast() }
        return s
    }

    /// ASCII case-insensitive comparison with a lower-case `name`.
    static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ name: String) -> Bool {
        bytes.count == name.utf8.count && zip(bytes, name.utf8).allSatisfy { a, b in
            (a >= 65 && a <= 90 ? a + 32 : a) == b
        }
    }
}
