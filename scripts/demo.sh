#!/usr/bin/env bash
# The main job on an example topology: installs what is needed, builds
# wirelab, brings up a lab, shows traffic crossing it, and takes it down.
#   sudo scripts/demo.sh [TOPOLOGY]      (default: Topologies/two-hosts.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
FILE=${1:-Topologies/two-hosts.yaml}
scripts/install-deps.sh
swift build -c release --product wirelab 2>&1 | tail -1
WL=$(swift build -c release --show-bin-path)/wirelab
LAB=$(awk '/^name:/ {print $2; exit}' "$FILE")
trap '"$WL" down "$LAB" >/dev/null 2>&1 || true' EXIT
"$WL" up "$FILE"
echo; echo "== graph (mermaid)"; "$WL" graph "$FILE" --format mermaid
echo; echo "== status"; "$WL" status "$LAB"
"$WL" down "$LAB"
trap - EXIT
