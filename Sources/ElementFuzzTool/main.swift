// element-fuzz: arbitrary and mutated frames through every forwarding
// element (learning switch, router with ECMP and static NAT, the director in
// nat/dr/tun/fullnat mode, the simulator's host model), through the same
// ElementRunner the daemon and the simulator use, with oracles after every
// frame and at the end (Sources/ElementFuzz/Fuzzer.swift says which).
//
//   swift build -c release --product element-fuzz
//   .build/release/element-fuzz [--runs N] [--seed S] [--element NAME]... [--root DIR] [--out FILE]
//   .build/release/element-fuzz --replay FILE
//
// --runs is per element (default 1,000,000). Seeds: Fuzz/elements/ and
// Captures/golden/ under --root (default: the first directory at or above
// the current one that has Fuzz/elements). On a violated oracle or a trap
// the run stops, writes a replay file (default element-fuzz-replay.txt:
// element, seed, frame index, the frame and the ones before it) and exits 1;
// --replay re-runs that element with that seed up to that frame and prints
// the frame, the verdict and what was sent.

import ElementFuzz
@preconcurrency import Glibc
import Foundation

func usage() -> Never {
    print("""
    usage: element-fuzz [--runs N] [--seed S] [--element NAME]... [--root DIR] [--out FILE] [--progress N]
           element-fuzz --replay FILE [--root DIR]
    elements: \(allTargetNames.joined(separator: ", ")) (default: all)
    """)
    exit(2)
}

var options = FuzzOptions()
var elements: [String] = []
var root: String?
var out = "element-fuzz-replay.txt"
var replay: String?
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let a = arguments.removeFirst()
    func value() -> String {
        guard !arguments.isEmpty else { print("element-fuzz: \(a) needs a value"); exit(2) }
        return arguments.removeFirst()
    }
    switch a {
    case "--runs": options.runs = Int(value().replacingOccurrences(of: "_", with: "")) ?? { usage() }()
    case "--seed": options.seed = UInt64(value()) ?? { usage() }()
    case "--element":
        for e in value().split(separator: ",").map(String.init) {
            guard allTargetNames.contains(e) else { print("element-fuzz: no element \(e)"); usage() }
            elements.append(e)
        }
    case "--root": root = value()
    case "--out": out = value()
    case "--replay": replay = value()
    case "--progress": options.progressEvery = Int(value()) ?? 0
    case "--deep-every": options.deepEvery = Int(value()) ?? options.deepEvery
    case "-h", "--help": usage()
    default: print("element-fuzz: unknown argument \(a)"); usage()
    }
}
setvbuf(stdout, nil, _IOLBF, 0)

guard let packageRoot = root ?? Corpus.findRoot(from: FileManager.default.currentDirectoryPath)
        ?? Corpus.findRoot(from: URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path) else {
    print("element-fuzz: cannot find Fuzz/elements (run from the package directory, or pass --root)")
    exit(2)
}
let corpus: Corpus
do { corpus = try Corpus.load(root: packageRoot) } catch {
    print("element-fuzz: \(error)")
    exit(2)
}

if let replay {
    guard let text = try? String(contentsOfFile: replay, encoding: .utf8) else { print("element-fuzz: cannot read \(replay)"); exit(2) }
    var fields: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let space = line.firstIndex(of: " ") else { continue }
        let key = String(line[..<space])
        if fields[key] == nil { fields[key] = String(line[line.index(after: space)...]) }
    }
    guard let element = fields["element"], let seed = fields["seed"].flatMap({ UInt64($0) }),
          let runs = fields["runs"].flatMap({ Int($0) }), let index = fields["index"].flatMap({ Int($0) }) else {
        print("element-fuzz: \(replay) is not a replay file")
        exit(2)
    }
    options.seed = seed
    options.runs = runs
    // A check at the end needs the whole run; anything else stops at its frame.
    if fields["phase"] != "end" { options.stopAt = index }
    print("element-fuzz: replaying \(element), seed \(seed), frame \(index) of \(runs) (\(fields["violation"] ?? "?"))")
    guard let report = ElementFuzz.run(element, corpus: corpus, options: options, detail: { print($0) }) else {
        print("element-fuzz: no element \(element)")
        exit(2)
    }
    if let recorded = fields["corpus"], recorded != String(report.corpusFingerprint, radix: 16) {
        print("element-fuzz: note: the corpus differs from the one the replay file was written with (\(recorded))")
    }
    if let v = report.violation {
        print("element-fuzz: reproduced: \(v)")
        exit(1)
    }
    print("element-fuzz: did not reproduce (no oracle failed up to frame \(index))")
    exit(0)
}

CrashContext.install(path: out)
print("element-fuzz: \(options.runs) frames per element, seed \(options.seed), \(corpus.frames.count) corpus frames "
    + "(corpus \(corpus.fingerprintText)), root \(packageRoot)")
var failed = false
let started = Date()
for name in elements.isEmpty ? allTargetNames : elements {
    let report = ElementFuzz.run(name, corpus: corpus, options: options)!
    print(report.text)
    if let v = report.violation {
        failed = true
        try? v.fileText.write(toFile: out, atomically: true, encoding: .utf8)
        print("element-fuzz: replay file written: \(out) (element-fuzz --replay \(out))")
        break
    }
}
print("element-fuzz: \(failed ? "FAILED" : "passed") in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
exit(failed ? 1 : 0)
