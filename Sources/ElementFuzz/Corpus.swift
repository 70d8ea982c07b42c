import Foundation
import Wire

/// The frames every element's fuzzing starts from: the scapy cross-check's
/// frames (`Fuzz/elements/scapy-1071.txt`, written by
/// scripts/gen-element-corpus.py from the generator the Wire tests use) and
/// every frame of the golden captures (`Captures/golden/*.pcapng`, read with
/// Wire's pcapng reader). Each target adds frames of its own, addressed to
/// it. The fingerprint names the exact corpus, so a replay can tell when it
/// runs on another one.
public struct Corpus: Sendable {
    public var frames: [[UInt8]]
    /// Where each frame came from (`scapy:ipv4-tcp`, `golden:lvs-dr--…#3`).
    public var origins: [String]
    public var fingerprint: UInt64

    public init(frames: [[UInt8]], origins: [String]) {
        self.frames = frames
        self.origins = origins
        var h = FNV1a()
        for f in frames {
            h.add(f.count)
            h.add(f)
        }
        fingerprint = h.value
    }

    public static let empty = Corpus(frames: [], origins: [])

    public var fingerprintText: String { String(fingerprint, radix: 16) }

    /// Reads the corpus under `root` (the package directory). Missing
    /// pieces are errors: a fuzz run that silently lost its seeds would
    /// still pass.
    public static func load(root: String) throws -> Corpus {
        var frames: [[UInt8]] = []
        var origins: [String] = []
        let scapy = root + "/Fuzz/elements/scapy-1071.txt"
        guard let text = try? String(contentsOfFile: scapy, encoding: .utf8) else {
            throw CorpusError("cannot read \(scapy) (run from the package directory, or pass --root)")
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let bytes = hexBytes(parts[1]) else { throw CorpusError("\(scapy): bad line \(line.prefix(40))") }
            frames.append(bytes)
            origins.append("scapy:" + parts[0])
        }
        let goldenDirectory = root + "/Captures/golden"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: goldenDirectory)) ?? [])
            .filter { $0.hasSuffix(".pcapng") }.sorted()
        guard !names.isEmpty else { throw CorpusError("no golden captures in \(goldenDirectory)") }
        for name in names {
            guard let data = FileManager.default.contents(atPath: goldenDirectory + "/" + name) else {
                throw CorpusError("cannot read \(goldenDirectory)/\(name)")
            }
            let capture: PcapNGCapture
            do { capture = try PcapNGCapture(parsing: [UInt8](data)) } catch {
                throw CorpusError("\(name): \(error)")
            }
            for (i, packet) in capture.packets.enumerated() {
                frames.append(packet.bytes)
                origins.append("golden:\(name.dropLast(7))#\(i)")
            }
        }
        return Corpus(frames: frames, origins: origins)
    }

    /// The package directory: `start` or the first directory above it that
    /// holds `Fuzz/elements`.
    public static func findRoot(from start: String) -> String? {
        var url = URL(fileURLWithPath: start).standardizedFileURL
        for _ in 0..<8 {
            if FileManager.default.fileExists(atPath: url.path + "/Fuzz/elements") { return url.path }
            let up = url.deletingLastPathComponent()
            if up.path == url.path { break }
            url = up
        }
        return nil
    }

    static func hexBytes(_ s: Substring) -> [UInt8]? {
        guard s.utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count / 2)
        var high: UInt8? = nil
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }
}

public struct CorpusError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

func hexString(_ bytes: some Collection<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
