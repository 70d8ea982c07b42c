#!/usr/bin/env bash
# Runs every test: installs dependencies, builds, runs the Swift test suites
# (unit, root end-to-end in namespaces named wl-*), then the cross-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-root.sh
scripts/install-deps.sh
swift build --build-tests
# The release build too: the demo and the benchmarks use it, and a whole-module
# build can fail where the debug build passes.
swift build -c release --product wirelab
swift test --skip-build 2>&1 | tee /tmp/wirelab-swift-test.log
# Ratios only (ours ÷ the kernel's peer, batched ÷ one by one), each against
# its figure in Benchmarks/ci-ratios.json; ~80 s (BENCHMARKS.md, "CI benchmark").
.build/release/wirelab bench ci
