#!/usr/bin/env bash
# The main job on an example topology: installs what is needed, builds
# wirelab, brings up a lab whose routers are the Swift data plane, sends
# traffic across it, shows counters and captures, and takes it down.
#   scripts/demo.sh [TOPOLOGY]   (as root)      (default: Topologies/ecmp.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-root.sh
FILE=${1:-Topologies/ecmp.yaml}
scripts/install-deps.sh
echo "== building (release)"
swift build -c release --product wirelab 2>&1 | tail -1
WL=$(swift build -c release --show-bin-path)/wirelab
LAB=$(awk '/^name:/ {print $2; exit}' "$FILE")
trap '"$WL" down "$LAB" >/dev/null 2>&1 || true' EXIT
echo "== wirelab up $FILE"
"$WL" up "$FILE"
if [[ "$FILE" == Topologies/ecmp.yaml ]]; then
  echo; echo "== client → server through r1, r2|r3 (ECMP), r4"
  "$WL" exec client -- ping -c 3 -i 0.2 10.0.2.2
  for i in $(seq 1 16); do "$WL" exec client -- curl -s --max-time 3 http://10.0.2.2/ >/dev/null; done
  echo "16 HTTP requests answered by: $("$WL" exec client -- curl -s --max-time 3 http://10.0.2.2/)"
fi
echo; echo "== wirelab status $LAB"
"$WL" status "$LAB"
echo "== wirelab down $LAB"
"$WL" down "$LAB"
trap - EXIT
if [[ -d "Captures/$LAB" ]]; then
  echo; echo "== captures (Captures/$LAB): frames per link"
  for f in Captures/"$LAB"/*.pcap; do printf '%6d  %s\n' "$(tshark -r "$f" 2>/dev/null | wc -l)" "$(basename "$f")"; done
  echo "merged, one named interface per link: Captures/$LAB/all.pcapng (open in Wireshark)"
fi
