#!/usr/bin/env bash
# Fuzzes every parser of the Wire module with wire-fuzz (Sources/WireFuzz).
#
#   scripts/fuzz.sh [RUNS] [libFuzzer flags...]   libFuzzer + AddressSanitizer, release build,
#                                                 coverage-guided; RUNS defaults to 10,000,000
#   scripts/fuzz.sh --standalone [RUNS] [SEED]    the randomized harness (mutated seeds + random
#                                                 bytes) in a debug build: every bounds check of
#                                                 the unsafe buffers on; no libFuzzer needed
#
# One process, one core (the machine is shared). Crashing inputs land in
# .build-fuzz/crash-* (libFuzzer) or ./wire-fuzz-crash.bin (standalone);
# replay one with `.build-fuzz/release/wire-fuzz FILE` or
# `swift run wire-fuzz --replay FILE`. The corpus libFuzzer grows is kept in
# .build-fuzz/corpus and reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--standalone" ]]; then
  RUNS=${2:-10000000}
  SEED=${3:-1}
  swift build --product wire-fuzz
  exec .build/debug/wire-fuzz --runs "$RUNS" --seed "$SEED"
fi

RUNS=${1:-10000000}
shift || true
BUILD=.build-fuzz
mkdir -p "$BUILD/seeds" "$BUILD/corpus"

# gold cannot link a -sanitize=fuzzer Swift executable here (internal error
# in dwarf_reader.cc); the toolchain's lld can, and SwiftPM only takes the
# linker from a toolset file.
SWIFT_BIN=$(dirname "$(readlink -f "$(command -v swift)")")
cat > "$BUILD/lld-toolset.json" <<EOF
{ "schemaVersion": "1.0", "linker": { "path": "$SWIFT_BIN/ld.lld" } }
EOF

swift build -c release --build-path "$BUILD" --toolset "$BUILD/lld-toolset.json" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DWIRE_LIBFUZZER --product wire-fuzz

# Seeds: wire-fuzz's own (every kind of frame, built from Wire's Reprs, a
# pcapng, address text) and, if scapy is installed, the scapy cross-check's
# packets.
swift build --product wire-fuzz
.build/debug/wire-fuzz --write-seeds "$BUILD/seeds"
if /usr/bin/python3 -c 'import scapy' 2>/dev/null; then
  /usr/bin/python3 scripts/crosscheck/gen_scapy.py --seed 1 --count 300 | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    case = json.loads(line)
    open(sys.argv[1] + "/scapy-%d" % case["id"], "wb").write(bytes.fromhex(case["hex"]))
' "$BUILD/seeds"
fi

# The Swift runtime's backtracer would hold the process at a crash; let
# libFuzzer and ASan report it instead.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
exec "$BUILD/release/wire-fuzz" -runs="$RUNS" -max_len=2048 -print_final_stats=1 \
  -artifact_prefix="$BUILD/" "$@" "$BUILD/corpus" "$BUILD/seeds"
