// The standalone harness: no libFuzzer needed. Inputs are the seeds with a
// few random mutations each (bit flips, interesting bytes and 16-bit
// values, truncation, insertion, deletion, splicing) and, one time in ten,
// pure random bytes. Deterministic for a given --seed.

@preconcurrency import Glibc
import Wire

/// The input being run, kept where a signal handler can reach it.
nonisolated(unsafe) var currentInput = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
nonisolated(unsafe) var currentLength = 0

/// Writes the current input to wire-fuzz-crash.bin, then dies of the signal.
func saveInputAndDie(_ signal: CInt) {
    let fd = open("wire-fuzz-crash.bin", O_CREAT | O_WRONLY | O_TRUNC, 0o644)
    if fd >= 0 {
        _ = write(fd, currentInput, currentLength)
        close(fd)
    }
    let note = "wire-fuzz: trapped; the input is in wire-fuzz-crash.bin (replay: wire-fuzz --replay wire-fuzz-crash.bin)\n"
    _ = note.withCString { write(2, $0, strlen($0)) }
    Glibc.signal(signal, SIG_DFL)
    raise(signal)
}

struct Xoshiro {  // xoshiro256** (Blackman, Vigna)
    var s: (UInt64, UInt64, UInt64, UInt64)
    init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }
    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

enum Standalone {
    static let interestingBytes: [UInt8] = [0, 1, 2, 4, 5, 6, 8, 0x0F, 0x10, 0x11, 0x14, 0x1F, 0x20, 0x2B, 0x2C, 0x3A,
                                            0x3B, 0x3C, 0x40, 0x45, 0x46, 0x4F, 0x60, 0x7F, 0x80, 0x81, 0x87, 0x88, 0xFE, 0xFF]
    static let interestingWords: [UInt16] = [0, 1, 7, 8, 9, 19, 20, 21, 28, 39, 40, 41, 60, 64, 0x7FFF, 0x8000, 0xFFFE,
                                             0xFFFF, 0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8, 0x3FFF, 0x2000, 0x1FFF]

    static func mutate(_ input: inout [UInt8], _ rng: inout Xoshiro, seeds: [[UInt8]], maxLength: Int) {
        for _ in 0...rng.below(8) {
            let n = input.count
            switch rng.below(11) {
            case 0 where n > 0: input[rng.below(n)] ^= 1 << UInt8(rng.below(8))
            case 1 where n > 0: input[rng.below(n)] = rng.byte()
            case 2 where n > 0: input[rng.below(n)] = interestingBytes[rng.below(interestingBytes.count)]
            case 3 where n > 1:
                let i = rng.below(n - 1), w = interestingWords[rng.below(interestingWords.count)]
                let v = rng.below(2) == 0 ? w : w &+ UInt16(truncatingIfNeeded: rng.below(5)) &- 2
                input[i] = UInt8(v >> 8)
                input[i + 1] = UInt8(v & 0xFF)
            case 4 where n > 0: input.removeLast(1 + rng.below(Swift.min(n, 16)))
            case 5: for _ in 0...rng.below(16) { input.append(rng.byte()) }
            case 6:
                let at = rng.below(n + 1)
                input.insert(contentsOf: (0...rng.below(8)).map { _ in rng.byte() }, at: at)
            case 7 where n > 1:
                let at = rng.below(n)
                input.removeSubrange(at..<Swift.min(n, at + 1 + rng.below(8)))
            case 8 where n > 2:  // copy a chunk within the input
                let from = rng.below(n), to = rng.below(n), length = Swift.min(1 + rng.below(8), n - Swift.max(from, to))
                for k in 0..<length { input[to + k] = input[from + k] }
            case 9:  // splice the tail of another seed
                let other = seeds[rng.below(seeds.count)]
                let cut = rng.below(n + 1), from = rng.below(other.count + 1)
                input = Array(input[..<cut]) + other[from...]
            default:
                if n > 0 { input[n - 1] = rng.byte() }  // the rewrite selector
            }
        }
        if input.count > maxLength { input.removeLast(input.count - maxLength) }
    }

    static func run(_ arguments: [String]) {
        var runs = 1_000_000, seed: UInt64 = 1, maxLength = 2048
        var writeSeeds: String?, replay: [String] = []
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { print("wire-fuzz: \(arguments[i - 1]) needs a value"); exit(2) }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--runs": runs = Int(value()) ?? runs
            case "--seed": seed = UInt64(value()) ?? seed
            case "--max-len": maxLength = Swift.min(Int(value()) ?? maxLength, 1 << 16)
            case "--write-seeds": writeSeeds = value()
            case "--replay":
                replay = Array(arguments[(i + 1)...])
                i = arguments.count
            case "-h", "--help":
                print("usage: wire-fuzz [--runs N] [--seed S] [--max-len L] | --write-seeds DIR | --replay FILE...")
                exit(0)
            default:
                print("wire-fuzz: unknown argument \(arguments[i]) (a libFuzzer flag? build with scripts/fuzz.sh)")
                exit(2)
            }
            i += 1
        }
        let seeds = Seeds.all()
        if let dir = writeSeeds {
            mkdir(dir, 0o755)
            for (k, s) in seeds.enumerated() {
                let fd = open("\(dir)/seed-\(k)", O_CREAT | O_WRONLY | O_TRUNC, 0o644)
                guard fd >= 0 else { print("wire-fuzz: cannot write to \(dir)"); exit(1) }
                _ = s.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            print("wire-fuzz: wrote \(seeds.count) seeds to \(dir)")
            return
        }
        if !replay.isEmpty {
            for file in replay {
                guard let f = fopen(file, "rb") else { print("wire-fuzz: cannot read \(file)"); exit(1) }
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = fread(&chunk, 1, chunk.count, f)
                    if n <= 0 { break }
                    bytes += chunk[0..<n]
                }
                fclose(f)
                bytes.withUnsafeBytes { WireFuzz.one($0) }
                print("wire-fuzz: \(file) (\(bytes.count) bytes): no trap")
            }
            return
        }

        setvbuf(stdout, nil, _IOLBF, 0)  // progress lines show up in logs as they happen
        for s in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            signal(s) { saveInputAndDie($0) }
        }
        var rng = Xoshiro(seed: seed)
        var input: [UInt8] = []
        input.reserveCapacity(maxLength + 64)
        var pure = 0
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let start = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        for n in 0..<runs {
            if n < seeds.count {
                input = seeds[n]  // every seed as it is first
            } else if rng.below(10) == 0 {
                input.removeAll(keepingCapacity: true)
                for _ in 0..<rng.below(Swift.min(maxLength, 160) + 1) { input.append(rng.byte()) }
                pure += 1
            } else {
                input = seeds[rng.below(seeds.count)]
                mutate(&input, &rng, seeds: seeds, maxLength: maxLength)
            }
            currentLength = input.count
            input.withUnsafeBytes { b in
                if b.count > 0 { currentInput.copyMemory(from: b.baseAddress!, byteCount: b.count) }
                WireFuzz.one(b)
            }
            if (n + 1) % 1_000_000 == 0 {
                clock_gettime(CLOCK_MONOTONIC, &ts)
                let t = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 - start
                print("wire-fuzz: \(n + 1) inputs, \(Int(t)) s, \(Int(Double(n + 1) / t)) inputs/s")
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let seconds = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 - start
        #if DEBUG
        let build = "debug build, bounds checks on"
        #else
        let build = "release build"
        #endif
        print("wire-fuzz: \(runs) inputs (\(seeds.count) seeds, \(pure) pure random, the rest mutated seeds) in "
            + "\(Int(seconds)) s, \(Int(Double(runs) / seconds)) inputs/s, \(build), seed \(seed): no trap")
    }
}
