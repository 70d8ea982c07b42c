// wire-fuzz: arbitrary bytes into every parser of the Wire module, with
// oracles on whatever is accepted (FuzzTarget.swift). Two ways to run it:
//
// * libFuzzer (coverage-guided, AddressSanitizer), what scripts/fuzz.sh does:
//
//     swift build -c release --build-path .build-fuzz --toolset TOOLSET.json \
//         -Xswiftc -sanitize=fuzzer,address -Xswiftc -DWIRE_LIBFUZZER --product wire-fuzz
//     .build-fuzz/release/wire-fuzz -runs=10000000 CORPUS_DIR
//
//   (TOOLSET.json names ld.lld as the linker: gold fails on this link.)
//   The libFuzzer build has no options of its own; everything is libFuzzer's.
//
// * standalone (any build; a debug build keeps every bounds check of the
//   unsafe buffers): seeds mutated at random plus pure random bytes.
//
//     swift run wire-fuzz [--runs N] [--seed S] [--max-len L]
//     swift run wire-fuzz --write-seeds DIR     # the seeds, for a libFuzzer corpus
//     swift run wire-fuzz --replay FILE...      # re-run saved inputs
//
//   On a trap the input being run is written to wire-fuzz-crash.bin.

import Glibc

#if WIRE_LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    WireFuzz.one(UnsafeRawBufferPointer(start: data, count: size))
    return 0
})
#else
Standalone.run(Array(CommandLine.arguments.dropFirst()))
#endif
