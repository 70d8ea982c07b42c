#!/usr/bin/env bash
# Installs what wirelab needs to build, test and run on Debian (as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail
PACKAGES=(
  pkg-config libxdp-dev libbpf-dev libpcap-dev   # C libraries (CXDP, CPcap)
  iproute2 ethtool nftables                      # inspection, the ip-script baseline, the DNAT baseline of bench forward
  tshark tcpdump python3-scapy python3-yaml python3-jsonschema   # cross-checks of Wire and captures, schema tests
  iperf3 curl iputils-ping                       # end-to-end traffic
  gcc libc6-dev                                  # bench forward compiles its malloc counter (LD_PRELOAD) at run time
  chromium fonts-dejavu-core                     # the tests open walk and check pages in a headless browser
  groff-base                                     # the man page test checks docs/man/wirelab.1 with groff
  bird2                                          # BGP/BFD interop peer (BGPBirdTests)
  keepalived                                     # VRRP interoperation test (a kernel host runs keepalived, vrrp_version 3)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "install-deps: need root to apt-get install: ${missing[*]}" >&2; exit 1; fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all packages present" >&2
