#!/usr/bin/env bash
# Regenerates the screenshots under docs/pictures/ from the simulator (no
# root, nothing created): the DR lesson's walk page and the page of a check
# run with one expectation wrong on purpose. Needs headless Chromium
# (scripts/install-deps.sh installs it). Run from the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
wirelab=${WIRELAB:-.build/debug/wirelab}
[[ -x $wirelab ]] || swift build --product wirelab >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shoot() {  # page.html out.png width height
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$3,$4" \
    --screenshot="$2" "file://$1" 2>/dev/null
  echo "wrote $2"
}
repo=$PWD
# (In the work folder, so the page names the pcapng as walk.pcapng.)
(cd "$work" && "$repo/$wirelab" walk "$repo/Topologies/lvs-dr-classic.yaml" --sim --from client --to 110.242.68.3:80 \
  --pcap walk.pcapng --html walk.html >/dev/null)
shoot "$work/walk.html" docs/pictures/dr-lesson-walk.png 1400 1300
# (Exit 1: one check fails on purpose.)
"$wirelab" sim docs/pictures/lvs-dr-wrong-expectation.yaml --capture Captures/lvs-dr-wrong --html "$work/check.html" \
  >/dev/null 2>&1 || true
shoot "$work/check.html" docs/pictures/failing-check.png 1400 1500
