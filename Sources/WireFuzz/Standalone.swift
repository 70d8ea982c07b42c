// The standalone harness: no libFuzzer needed. Inputs are the seeds with a
// few random mutations each (bit flips, interesting bytes and 16-bit
// values, truncation, insertion, deletion, splicing) and, one time in ten,
// pure random bytes. Deterministic for a given --seed.

@preconcurrency import Glibc
import FuzzSupport
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

enum Standalone {
    static func mutate(_ input: inout [UInt8], _ rng: inout Xoshiro, seeds: [[UInt8]], maxLength: Int) {
        ByteMutations.mutate(&input, &rng, times: 1 + rng.below(8), seeds: seeds) { input, rng in
            if !input.isEmpty { input[input.count - 1] = rng.byte() }  // the rewrite selector
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
