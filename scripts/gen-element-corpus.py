#!/usr/bin/env python3
"""Writes Fuzz/elements/scapy-1071.txt: the frames of the scapy cross-check
(scripts/crosscheck/gen_scapy.py, the corpus the Wire tests parse), one per
line as `KIND HEX`, for element-fuzz to start from (with the golden captures
under Captures/golden, read at run time).

    /usr/bin/python3 scripts/gen-element-corpus.py [--seed 1071] [--count 300]
"""
import argparse, json, os, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--seed", type=int, default=1071)
ap.add_argument("--count", type=int, default=300)
args = ap.parse_args()
out = subprocess.run([sys.executable, os.path.join(root, "scripts/crosscheck/gen_scapy.py"),
                      "--seed", str(args.seed), "--count", str(args.count)],
                     check=True, capture_output=True, text=True).stdout
path = os.path.join(root, "Fuzz/elements/scapy-%d.txt" % args.seed)
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    f.write("# scapy frames for element-fuzz: scripts/gen-element-corpus.py --seed %d --count %d\n"
            % (args.seed, args.count))
    f.write("# one frame per line: KIND HEX (the kinds of scripts/crosscheck/gen_scapy.py)\n")
    n = 0
    for line in out.splitlines():
        case = json.loads(line)
        f.write("%s %s\n" % (case["kind"].replace(" ", "_"), case["hex"]))
        n += 1
print("wrote %d frames to %s" % (n, os.path.relpath(path, root)))
