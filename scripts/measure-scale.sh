#!/usr/bin/env bash
# Measures a big lab as BENCHMARKS.md "Scale: 1000-node lab" reports it:
# `up` and `down` wall time, the idle daemon's CPU over 20 s
# (/proc/PID/stat utime+stime), its resident memory (/proc/PID/status) and
# a ping across the lab. Root; one live job on the machine at a time.
#
#   swift build -c release --product wirelab
#   python3 scripts/gen-scale-topology.py --subnets 91 --hosts 9 --name wlsc1k > /tmp/wlsc1k.yaml
#   flock /tmp/wirelab-live.lock scripts/measure-scale.sh /tmp/wlsc1k.yaml [.build/release/wirelab]
#
# The generated lab has 11 × SUBNETS + 1 nodes; h1-1 pings the first host of
# the last LAN (5 userspace hops each way).
set -euo pipefail
topology=$1
wirelab=${2:-.build/release/wirelab}
lab=$(sed -n 's/^name: *//p' "$topology" | head -n1)
last=$(grep -c "^  - \[ core:eth" "$topology")
state=/run/wirelab/$lab/state.json
now() { date +%s.%N; }

echo "$(date -u '+%F %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $(uname -r)"
t0=$(now); "$wirelab" up "$topology" > /dev/null; t1=$(now)
echo "up: $(echo "$t1 - $t0" | bc) s"
pid=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print([p['pid'] for p in s['processes'] if p['role']=='daemon'][0])" "$state")
sleep 2
ticks=$(getconf CLK_TCK)
a=$(awk '{print $14 + $15}' /proc/"$pid"/stat); s0=$(now)
sleep 20
b=$(awk '{print $14 + $15}' /proc/"$pid"/stat); s1=$(now)
echo "daemon idle CPU: $(echo "scale=2; ($b - $a) * 100 / $ticks / ($s1 - $s0)" | bc) % of a core ($((b - a)) ticks in 20 s)"
echo "daemon memory: $(awk '/VmRSS/ {printf "%.0f MiB resident", $2 / 1024}' /proc/"$pid"/status), $(ls /proc/"$pid"/fd | wc -l) descriptors"
ip netns exec "wl-$lab-h1-1" ping -c 20 -i 0.2 -q "10.$last.0.11" | tail -n1
t0=$(now); "$wirelab" down "$lab" > /dev/null; t1=$(now)
echo "down: $(echo "$t1 - $t0" | bc) s"
