#!/usr/bin/env bash
# Generates the committed man page docs/man/wirelab.1 from the CLI's own
# description (`wirelab --experimental-dump-help`) with swift-argument-parser's
# generate-manual tool (built offline from the resolved dependency).
#
#   scripts/gen-manpage.sh                    regenerate if the CLI changed (--force: always)
#   scripts/gen-manpage.sh --check [--wirelab PATH]
#                                             exit 1 if the page is stale; needs only a built wirelab
#
# The page records the SHA-256 of the dump it was made from; --check compares
# that with the dump of the built binary (default: the debug build's). The
# date in the page is the day it last changed. generate-manual drops non-ASCII
# characters, so the few the help text uses are spelled in ASCII first, and
# any other one stops the script rather than vanish from the page.
set -euo pipefail
cd "$(dirname "$0")/.."
PAGE=docs/man/wirelab.1
MODE=generate FORCE=false WIRELAB=
while (($#)); do
  case $1 in
    --check) MODE=check ;;
    --force) FORCE=true ;;
    --wirelab) WIRELAB=$2; shift ;;
    *) echo "gen-manpage: unknown argument $1 (--check, --force, --wirelab PATH)" >&2; exit 2 ;;
  esac
  shift
done

if [[ -z $WIRELAB ]]; then
  [[ $MODE == generate ]] && swift build --product wirelab >&2
  WIRELAB="$(swift build --show-bin-path)/wirelab"
fi
[[ -x $WIRELAB ]] || { echo "gen-manpage: no wirelab binary at $WIRELAB (swift build first, or --wirelab PATH)" >&2; exit 1; }

dump=$("$WIRELAB" --experimental-dump-help)
want=$(printf '%s\n' "$dump" | sha256sum | cut -d' ' -f1)
have=$(sed -n 's/^\.\\" wirelab --experimental-dump-help sha256 \([0-9a-f]*\).*/\1/p' "$PAGE" 2>/dev/null || true)

if [[ $MODE == check ]]; then
  if [[ $want != "$have" ]]; then
    echo "gen-manpage: STALE $PAGE: the CLI's help changed since the page was generated; run scripts/gen-manpage.sh and commit $PAGE" >&2
    exit 1
  fi
  echo "gen-manpage: $PAGE matches the CLI's help" >&2
  exit 0
fi

if [[ $want == "$have" && $FORCE == false ]]; then
  echo "gen-manpage: $PAGE is up to date" >&2
  exit 0
fi

# ASCII spellings of the non-ASCII characters the help text uses.
ascii() { sed -e 's/→/->/g' -e 's/←/<-/g' -e 's/↔/<->/g' -e 's/—/--/g' -e 's/–/-/g' -e 's/…/.../g' -e 's/≥/>=/g' -e 's/≤/<=/g' -e 's/×/x/g'; }
left=$(printf '%s\n' "$dump" | ascii | LC_ALL=C grep -o '[^ -~]*' | sort -u | tr -d '\n' || true)
if [[ -n $left ]]; then
  echo "gen-manpage: the help text has characters generate-manual would drop: $left (add an ASCII spelling to ascii() in $0)" >&2
  exit 1
fi

# Builds the generate-manual tool (the plugin's --help builds it and stops).
swift package generate-manual --help >/dev/null
TOOL="$(swift build --show-bin-path)/generate-manual-tool"
[[ -x $TOOL ]] || { echo "gen-manpage: generate-manual-tool not found at $TOOL" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# generate-manual runs `TOOL --experimental-dump-help`: give it the ASCII dump.
printf '%s\n' "$dump" | ascii >"$tmp/dump.json"
printf '#!/bin/sh\nexec cat "%s/dump.json"\n' "$tmp" >"$tmp/wirelab"
chmod +x "$tmp/wirelab"
mkdir "$tmp/out"
"$TOOL" "$tmp/wirelab" --date "$(date -u +%Y-%m-%d)" --output-directory "$tmp/out"
mkdir -p "$(dirname "$PAGE")"
{
  head -n 1 "$tmp/out/wirelab.1"
  printf '.\\" wirelab --experimental-dump-help sha256 %s; regenerate with scripts/gen-manpage.sh\n' "$want"
  tail -n +2 "$tmp/out/wirelab.1"
} >"$PAGE"
echo "gen-manpage: wrote $PAGE" >&2
