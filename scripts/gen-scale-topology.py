#!/usr/bin/env python3
"""Generate a large wirelab topology: SUBNETS switched LANs behind edge routers
joined by one core router.

    python3 scripts/gen-scale-topology.py > Topologies/scale-100.yaml

With the defaults (9 LANs of 9 hosts) the lab has exactly 100 nodes:
81 hosts + 9 switches + 9 edge routers + 1 core router.

LAN i (1-based) is 10.<i>.0.0/24: edge router r<i> is .1, hosts h<i>-<j> are
.1<j> (j = 1..HOSTS). Transit link core:eth<i> <-> r<i>:eth1 is
10.255.<i>.0/30 (core .1, edge .2). Hosts route default via their edge
router, edge routers default via the core, the core has one route per LAN.
Only private (RFC 1918) addresses are used.
"""
import argparse
import sys


def generate(subnets: int, hosts: int, name: str) -> str:
    if not 1 <= subnets <= 250 or not 1 <= hosts <= 9:
        raise SystemExit("subnets must be 1..250 and hosts 1..9")
    total = subnets * hosts + 2 * subnets + 1
    out = []
    w = out.append
    w("# yaml-language-server: $schema=../schema/wirelab-topology.schema.json")
    w("# GENERATED - do not edit. Regenerate with:")
    w(f"#   python3 scripts/gen-scale-topology.py --subnets {subnets} --hosts {hosts} --name {name} > Topologies/{name}.yaml")
    w(f"# {total} nodes: {subnets * hosts} hosts, {subnets} switches, {subnets} edge routers, 1 core router.")
    w(f"name: {name}")
    w("defaults:")
    w("  datapath: afxdp")
    w("  capture: false")
    w("")
    w("nodes:")
    w("  core:")
    w("    kind: router")
    w("    interfaces:")
    for i in range(1, subnets + 1):
        w(f"      eth{i}: {{ ip: 10.255.{i}.1/30 }}")
    w("    routes:")
    for i in range(1, subnets + 1):
        w(f"      - \"10.{i}.0.0/24 via 10.255.{i}.2\"")
    for i in range(1, subnets + 1):
        w(f"  r{i}:")
        w("    kind: router")
        w("    interfaces:")
        w(f"      eth0: {{ ip: 10.{i}.0.1/24 }}")
        w(f"      eth1: {{ ip: 10.255.{i}.2/30 }}")
        w(f"    routes: [ \"default via 10.255.{i}.1\" ]")
        w(f"  sw{i}:")
        w("    kind: switch")
        for j in range(1, hosts + 1):
            w(f"  h{i}-{j}:")
            w("    kind: host")
            w(f"    interfaces: {{ eth0: {{ ip: 10.{i}.0.1{j}/24 }} }}")
            w(f"    routes: [ \"default via 10.{i}.0.1\" ]")
            if j == 1:
                w("    serve: { http: 80, udp-echo: 9000 }")
    w("")
    w("links:")
    for i in range(1, subnets + 1):
        w(f"  - [ core:eth{i}, r{i}:eth1 ]")
        w(f"  - [ r{i}:eth0, sw{i}:p0 ]")
        for j in range(1, hosts + 1):
            w(f"  - [ h{i}-{j}:eth0, sw{i}:p{j} ]")
    w("")
    w("checks:")
    last = subnets
    w(f"  - name: first LAN reaches last LAN")
    w(f"    ping: {{ from: h1-1, to: 10.{last}.0.11 }}")
    w(f"  - name: hosts in one LAN see each other")
    w(f"    ping: {{ from: h1-{hosts}, to: h1-1 }}")
    w(f"  - name: HTTP across the core")
    w(f"    http: {{ from: h{last}-{hosts}, url: \"http://10.1.0.11/\", count: 5 }}")
    w(f"    expect-spread: {{ h1-1: \"== 5\" }}")
    w(f"  - name: a SYN crosses edge, core and edge routers")
    w(f"    send: {{ from: h{last}-{hosts}, to: \"10.1.0.11:80\", proto: tcp }}")
    w(f"    expect:")
    w(f"      - at: r1:eth1            # core → first LAN's router: two routers passed")
    w(f"        src-ip: 10.{last}.0.{10 + hosts}")
    w(f"        dst-ip: 10.1.0.11")
    w(f"        src-mac: core:eth1")
    w(f"        dst-mac: r1:eth1")
    w(f"        ttl: 62")
    w(f"      - at: h1-1:eth0          # through the switch, unchanged by it")
    w(f"        src-mac: r1:eth0")
    w(f"        dst-mac: h1-1:eth0")
    w(f"        ttl: 61")
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subnets", type=int, default=9)
    p.add_argument("--hosts", type=int, default=9)
    p.add_argument("--name", default="scale-100")
    args = p.parse_args()
    sys.stdout.write(generate(args.subnets, args.hosts, args.name))


if __name__ == "__main__":
    main()
