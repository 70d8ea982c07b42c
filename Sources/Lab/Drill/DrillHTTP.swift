// The HTTP a drill's load speaks, in one place for the live load, the
// simulated load (`SimLoad`) and the servers that answer it (the host
// model; the live built-in server must follow the same keep-alive rule).

/// Requests a drill's load sends and how it reads the answers.
public enum DrillHTTP {
    /// A request loop's request: a new connection each, closed after the
    /// answer (`Connection: close`).
    public static func request(host: String, path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: wirelab-load\r\nConnection: close\r\n\r\n".utf8)
    }

    /// A long-lived stream's message: the same request, asking the server
    /// to keep the connection open for the next one.
    public static func keepAliveRequest(host: String, path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: wirelab-load\r\nConnection: keep-alive\r\n\r\n".utf8)
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
        for line in String(decoding: header, as: UTF8.self).split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":"),
                  line[..<colon].lowercased() == "connection" else { continue }
            return line[line.index(after: colon)...].split(separator: ",").contains {
                $0.trimmingSpaces.lowercased() == "keep-alive"
            }
        }
        return false
    }

    /// A complete answer at the start of `bytes`: its length (header and
    /// `Content-Length` body) and who sent it (`X-Wirelab-Node`). Nil until
    /// all of it has come.
    public static func response(in bytes: some Collection<UInt8>) -> (length: Int, node: String?)? {
        let data = Array(bytes)
        guard data.count >= 4 else { return nil }
        var headerEnd: Int?
        for i in 0...(data.count - 4) where data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 {
            headerEnd = i + 4
            break
        }
        guard let headerEnd else { return nil }
        var contentLength = 0
        var node: String?
        for line in String(decoding: data[..<headerEnd], as: UTF8.self).split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = String(line[line.index(after: colon)...].trimmingSpaces)
            switch line[..<colon].lowercased() {
            case "content-length": contentLength = Int(value) ?? 0
            case "x-wirelab-node": node = value
            default: break
            }
        }
        guard data.count >= headerEnd + contentLength else { return nil }
        return (headerEnd + contentLength, node)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
