#!/usr/bin/python3
"""Packets built by scapy, for the scapy → Wire cross-check.

Writes one JSON object per line to stdout:

    {"id": 7, "kind": "ipv4-tcp", "hex": "0200...",
     "fields": {"eth.dst": "02:...", "ip.ttl": "64", ...},
     "error": null}

`fields` are the values scapy reads back when it dissects `hex` again
(`Ether(bytes)`), under names the Swift side (Tests/WireTests/
CrossCheckScapyTests.swift) maps Wire's views, Reprs and ParsedFrame onto.
All values are strings: integers in decimal, MACs as aa:bb:cc:dd:ee:ff,
IPv4 dotted, IPv6 as 32 lower-case hex digits (text forms differ between
tools; the bytes do not), raw option bytes as hex.

`error` is set for the malformed frames at the end: the reason
(`WireError.reason`) FrameParser must refuse them with, by the rules in
FrameParser's documentation; their `fields` are empty.

Deterministic: the same --seed and --count give the same output (scapy is
given every field explicitly; nothing is left to its RandXXX defaults).

Run with Debian's /usr/bin/python3 (python3-scapy), e.g.
    /usr/bin/python3 scripts/crosscheck/gen_scapy.py --seed 1 --count 300
"""

import argparse
import json
import logging
import random
import socket
import sys

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.all import (  # noqa: E402
    ARP, IP, TCP, UDP, ICMP, Dot1Q, Dot1AD, Ether, IPv6, Padding, Raw,
    IPOption_NOP, IPOption_RR, IPOption_Router_Alert, IPOption_Timestamp,
    ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig,
    ICMPv6DestUnreach, ICMPv6TimeExceeded,
    IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting, PadN, RouterAlert, fragment, raw,
)
from scapy.layers.inet import in4_chksum  # noqa: E402
from scapy.layers.inet6 import in6_chksum  # noqa: E402
from scapy.utils import checksum  # noqa: E402

EXT_HEADERS = (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, IPv6ExtHdrFragment)


# ---------------------------------------------------------------- random values

class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def mac(self):
        b = [self.r.randrange(256) for _ in range(6)]
        if self.r.random() < 0.8:
            b[0] &= 0xFE  # mostly unicast
        return ":".join("%02x" % x for x in b)

    def ip4(self):
        return ".".join(str(self.r.randrange(256)) for _ in range(4))

    def ip6(self):
        # Runs of zero groups, so '::' compression has something to do.
        groups = [0 if self.r.random() < 0.35 else self.r.randrange(0x10000) for _ in range(8)]
        return socket.inet_ntop(socket.AF_INET6, b"".join(g.to_bytes(2, "big") for g in groups))

    def port(self):
        return self.r.choice([self.r.randrange(1, 1024), self.r.randrange(1024, 65536), 80, 443, 53])

    def payload(self, lo=0, hi=48):
        return bytes(self.r.randrange(256) for _ in range(self.r.randrange(lo, hi + 1)))

    def bits(self, n):
        return self.r.getrandbits(n)

    def chance(self, p):
        return self.r.random() < p


def link(g, payload, vlan=None):
    """Ether (+ an 802.1Q tag a quarter of the time) in front of `payload`."""
    eth = Ether(dst=g.mac(), src=g.mac())
    if vlan is None:
        vlan = g.chance(0.25)
    if vlan:
        eth = eth / Dot1Q(prio=g.bits(3), id=g.bits(1), vlan=g.bits(12))
    return eth / payload


def pad(g, pkt):
    """Sometimes Ethernet padding after the datagram (Wire must stop at Total Length)."""
    if g.chance(0.25):
        return pkt / Padding(load=bytes(g.r.randrange(1, 18)))
    return pkt


def ip4_options(g):
    return g.r.choice([
        [IPOption_Router_Alert()],
        [IPOption_NOP(), IPOption_RR(routers=[g.ip4() for _ in range(g.r.randrange(1, 4))])],
        [IPOption_Timestamp(flg=0, timestamp=[g.bits(32)])],
        [IPOption_NOP(), IPOption_NOP(), IPOption_Router_Alert()],
    ])


def ipv4(g, options=None):
    if options is None:
        options = ip4_options(g) if g.chance(0.3) else []
    flags = g.r.choice(["", "DF"])
    return IP(src=g.ip4(), dst=g.ip4(), ttl=g.r.randrange(1, 256), id=g.bits(16),
              tos=g.bits(8), flags=flags, options=options)


def tcp(g):
    opts = []
    for name, make in [("MSS", lambda: g.r.randrange(536, 9001)), ("SAckOK", lambda: b""),
                       ("Timestamp", lambda: (g.bits(32), g.bits(32))), ("WScale", lambda: g.r.randrange(15)),
                       ("NOP", lambda: None)]:
        if g.chance(0.4):
            opts.append((name, make()))
    return TCP(sport=g.port(), dport=g.port(), seq=g.bits(32), ack=g.bits(32), flags=g.bits(8),
               window=g.bits(16), urgptr=g.bits(16), options=opts)


def udp(g, zero_checksum=False):
    u = UDP(sport=g.port(), dport=g.port())
    if zero_checksum:
        u.chksum = 0
    return u


# ---------------------------------------------------------------- packet kinds

def k_arp(g):
    op = g.r.choice([1, 2, 1, 2, g.r.randrange(3, 26)])
    return pad(g, link(g, ARP(op=op, hwsrc=g.mac(), psrc=g.ip4(), hwdst=g.mac(), pdst=g.ip4())))


def k_ipv4_tcp(g):
    return pad(g, link(g, ipv4(g) / tcp(g) / Raw(load=g.payload())))


def k_ipv4_udp(g):
    return pad(g, link(g, ipv4(g) / udp(g, zero_checksum=g.chance(0.2)) / Raw(load=g.payload())))


def k_ipv4_options(g):
    upper = tcp(g) if g.chance(0.5) else udp(g)
    return pad(g, link(g, ipv4(g, options=ip4_options(g)) / upper / Raw(load=g.payload())))


def k_icmp_echo(g):
    return pad(g, link(g, ipv4(g) / ICMP(type=g.r.choice([0, 8]), id=g.bits(16), seq=g.bits(16))
                       / Raw(load=g.payload())))


def k_icmp_echo_zero(g):
    """Echo reply, id 0, seq 0, no data: the message sums to 0, checksum 0xFFFF."""
    return link(g, ipv4(g, options=[]) / ICMP(type=0, id=0, seq=0), vlan=False)


def quoted_ipv4(g):
    """The first bytes of an original datagram, as an ICMP error quotes them."""
    original = IP(src=g.ip4(), dst=g.ip4(), ttl=g.r.randrange(1, 64), id=g.bits(16)) / \
        (tcp(g) if g.chance(0.5) else udp(g)) / Raw(load=g.payload(8, 64))
    b = raw(original)
    return b[:(b[0] & 0xF) * 4 + 8]


def k_icmp_unreachable(g):
    code = g.r.choice([0, 1, 3, 4, 4, 13])
    icmp = ICMP(type=3, code=code, nexthopmtu=g.r.choice([576, 1280, 1400, 1480, 1500]) if code == 4 else 0)
    if g.chance(0.15):
        icmp.length = g.r.randrange(1, 30)  # RFC 4884 length: Wire keeps it as `.other`
    return pad(g, link(g, ipv4(g) / icmp / Raw(load=quoted_ipv4(g))))


def k_icmp_time_exceeded(g):
    return pad(g, link(g, ipv4(g) / ICMP(type=11, code=g.r.choice([0, 1])) / Raw(load=quoted_ipv4(g))))


def k_ipv4_fragment(g):
    upper = udp(g) if g.chance(0.6) else tcp(g)
    whole = IP(src=g.ip4(), dst=g.ip4(), ttl=g.r.randrange(1, 256), id=g.bits(16)) / upper / \
        Raw(load=g.payload(80, 400))
    frags = fragment(whole, fragsize=g.r.choice([48, 64, 128]))
    return link(g, g.r.choice([frags[0], frags[0], frags[-1], frags[len(frags) // 2]]))


def ipv6(g):
    return IPv6(src=g.ip6(), dst=g.ip6(), tc=g.bits(8), fl=g.bits(20), hlim=g.r.randrange(256))


def ext_chain(g):
    chain = []
    for _ in range(g.r.randrange(1, 4)):
        kind = g.r.choice(["hbh", "dst", "rt", "frag"])
        if kind == "hbh":
            chain.append(IPv6ExtHdrHopByHop(options=[RouterAlert()] if g.chance(0.5)
                                            else [PadN(optdata=bytes(g.r.randrange(0, 12)))]))
        elif kind == "dst":
            chain.append(IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(g.r.randrange(0, 20)))]))
        elif kind == "rt":
            # Segments Left 0: the destination in the IPv6 header is the final
            # one, which is what Wire's pseudo-header uses.
            chain.append(IPv6ExtHdrRouting(addresses=[g.ip6() for _ in range(g.r.randrange(1, 3))], segleft=0))
        else:
            chain.append(IPv6ExtHdrFragment(offset=0, m=0, id=g.bits(32)))
    return chain


def ipv6_upper(g):
    c = g.r.choice(["tcp", "udp", "echo"])
    if c == "tcp":
        return tcp(g) / Raw(load=g.payload())
    if c == "udp":
        return udp(g) / Raw(load=g.payload())
    cls = g.r.choice([ICMPv6EchoRequest, ICMPv6EchoReply])
    return cls(id=g.bits(16), seq=g.bits(16), data=g.payload())


def k_ipv6(g):
    return pad(g, link(g, ipv6(g) / ipv6_upper(g)))


def k_ipv6_ext(g):
    pkt = ipv6(g)
    for h in ext_chain(g):
        pkt = pkt / h
    return pad(g, link(g, pkt / ipv6_upper(g)))


def k_ipv6_fragment(g):
    # A non-first fragment: its upper-layer header is in the first one.
    frag = IPv6ExtHdrFragment(offset=g.r.randrange(1, 8192), m=g.bits(1), id=g.bits(32), nh=g.r.choice([6, 17, 58]))
    pre = [IPv6ExtHdrHopByHop(options=[RouterAlert()])] if g.chance(0.3) else []
    pkt = ipv6(g)
    for h in pre:
        pkt = pkt / h
    return link(g, pkt / frag / Raw(load=g.payload(8, 64)))


def k_ndp(g):
    target = g.ip6()
    if g.chance(0.5):
        msg = ICMPv6ND_NS(tgt=target)
        if g.chance(0.75):
            msg = msg / ICMPv6NDOptSrcLLAddr(lladdr=g.mac())
    else:
        msg = ICMPv6ND_NA(R=g.bits(1), S=g.bits(1), O=g.bits(1), tgt=target)
        if g.chance(0.75):
            msg = msg / ICMPv6NDOptDstLLAddr(lladdr=g.mac())
    return pad(g, link(g, IPv6(src=g.ip6(), dst=g.ip6(), hlim=255) / msg))


def k_icmpv6_error(g):
    quoted = raw(IPv6(src=g.ip6(), dst=g.ip6()) / udp(g) / Raw(load=g.payload(0, 40)))
    err = g.r.choice([ICMPv6PacketTooBig(mtu=g.r.choice([1280, 1400, 1500, 9000])),
                      ICMPv6DestUnreach(code=g.r.randrange(0, 7)),
                      ICMPv6TimeExceeded(code=g.r.randrange(0, 2))])
    return link(g, ipv6(g) / err / Raw(load=quoted))


def k_ipip(g):
    inner_upper = g.r.choice([lambda: tcp(g) / Raw(load=g.payload()),
                              lambda: udp(g) / Raw(load=g.payload()),
                              lambda: ICMP(type=8, id=g.bits(16), seq=g.bits(16)) / Raw(load=g.payload())])()
    inner = IP(src=g.ip4(), dst=g.ip4(), ttl=g.r.randrange(1, 256), id=g.bits(16), tos=g.bits(8),
               flags=g.r.choice(["", "DF"])) / inner_upper
    outer = IP(src=g.ip4(), dst=g.ip4(), ttl=g.r.randrange(1, 256), id=g.bits(16), proto=4)
    return pad(g, link(g, outer / inner))


KINDS = [
    ("arp", k_arp, 2), ("ipv4-tcp", k_ipv4_tcp, 4), ("ipv4-udp", k_ipv4_udp, 3),
    ("ipv4-options", k_ipv4_options, 2), ("icmp-echo", k_icmp_echo, 2),
    ("icmp-unreachable", k_icmp_unreachable, 2), ("icmp-time-exceeded", k_icmp_time_exceeded, 1),
    ("ipv4-fragment", k_ipv4_fragment, 2), ("ipv6", k_ipv6, 3), ("ipv6-ext", k_ipv6_ext, 3),
    ("ipv6-fragment", k_ipv6_fragment, 1), ("ndp", k_ndp, 2), ("icmpv6-error", k_icmpv6_error, 1),
    ("ipip", k_ipip, 2),
    ("icmp-echo-all-zero", k_icmp_echo_zero, 0),  # once, in the every-kind pass
]


# ---------------------------------------------------------------- malformed frames

def malformed(g):
    """(kind, frame bytes, reason) that FrameParser must refuse."""
    out = []

    def ok_ipv4_tcp():
        return link(g, IP(src=g.ip4(), dst=g.ip4()) / tcp(g) / Raw(load=g.payload(0, 16)), vlan=False)

    for _ in range(2):
        p = link(g, IP(src=g.ip4(), dst=g.ip4()) / udp(g) / Raw(load=g.payload(4, 16)))
        b = bytearray(raw(p))
        l3 = 18 if Dot1Q in p else 14
        b[l3 + 10] ^= 0x5A  # corrupt the header checksum
        out.append(("bad-ip-checksum", bytes(b), "bad-checksum"))
        out.append(("bad-ip-version", raw(link(g, IP(version=g.r.choice([5, 6, 0]), src=g.ip4(), dst=g.ip4()) / udp(g),
                                                vlan=False)), "bad-version"))
        out.append(("ihl-below-5", raw(link(g, IP(ihl=g.r.randrange(0, 5), src=g.ip4(), dst=g.ip4()) / udp(g),
                                             vlan=False)), "bad-header-length"))
        b = raw(link(g, IP(src=g.ip4(), dst=g.ip4()) / udp(g) / Raw(load=g.payload(0, 8)), vlan=False))
        out.append(("ip-total-length-past-frame", b[:-g.r.randrange(1, 9)], "bad-length"))
        out.append(("tcp-data-offset-below-5", raw(link(g, IP(src=g.ip4(), dst=g.ip4()) / TCP(dataofs=g.r.randrange(0, 5)),
                                                        vlan=False)), "bad-header-length"))
        out.append(("tcp-data-offset-past-segment", raw(link(g, IP(src=g.ip4(), dst=g.ip4()) / TCP(dataofs=15),
                                                             vlan=False)), "bad-header-length"))
        out.append(("udp-length-below-8", raw(link(g, IP(src=g.ip4(), dst=g.ip4()) / UDP(len=g.r.randrange(0, 8)),
                                                   vlan=False)), "bad-length"))
        out.append(("qinq", raw(Ether(dst=g.mac(), src=g.mac()) / Dot1AD(vlan=g.bits(12)) / Dot1Q(vlan=g.bits(12))
                                / IP() / UDP()), "unsupported"))
        out.append(("stacked-8021q", raw(Ether(dst=g.mac(), src=g.mac()) / Dot1Q(vlan=g.bits(12)) / Dot1Q(vlan=g.bits(12))
                                         / IP() / UDP()), "unsupported"))
        out.append(("ethernet-cut", raw(ok_ipv4_tcp())[:g.r.randrange(0, 14)], "truncated"))
        out.append(("ipv4-header-cut", raw(ok_ipv4_tcp())[:14 + g.r.randrange(0, 20)], "truncated"))
        b = bytearray(raw(link(g, ARP(op=1, hwsrc=g.mac(), psrc=g.ip4(), pdst=g.ip4()), vlan=False)))
        b[14:16] = g.r.choice([6, 7, 0x0100]).to_bytes(2, "big")  # hardware type: not Ethernet
        out.append(("arp-not-ethernet-ipv4", bytes(b), "unsupported"))
        b = bytearray(raw(link(g, ARP(op=2, hwsrc=g.mac(), psrc=g.ip4(), pdst=g.ip4()), vlan=False)))
        b[16:18] = (0x86DD).to_bytes(2, "big")  # protocol type: not IPv4
        out.append(("arp-not-ipv4", bytes(b), "unsupported"))
        out.append(("arp-cut", raw(link(g, ARP(op=1), vlan=False))[:14 + g.r.randrange(0, 28)], "truncated"))
        b = raw(link(g, IPv6(src=g.ip6(), dst=g.ip6()) / udp(g) / Raw(load=g.payload(0, 8)), vlan=False))
        out.append(("ipv6-payload-length-past-frame", b[:-1], "bad-length"))
        b = bytearray(raw(link(g, IPv6(src=g.ip6(), dst=g.ip6()) / IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(4))])
                               / udp(g), vlan=False)))
        b[14 + 40 + 1] = 20  # Hdr Ext Len: 21 × 8 bytes, past the payload
        out.append(("ipv6-ext-header-past-payload", bytes(b), "bad-header-length"))
        out.append(("ipv6-version", raw(link(g, IPv6(version=4, src=g.ip6(), dst=g.ip6()) / udp(g), vlan=False)),
                    "bad-version"))
        b = raw(link(g, IP(src=g.ip4(), dst=g.ip4()) / ICMP(type=8), vlan=False))
        b = bytearray(b[:14 + 20 + 4])
        b[14 + 2:14 + 4] = (24).to_bytes(2, "big")  # a consistent Total Length, only 4 ICMP bytes
        b[14 + 10:14 + 12] = b"\x00\x00"
        b[14 + 10:14 + 12] = checksum(bytes(b[14:34])).to_bytes(2, "big")
        out.append(("icmp-header-cut", bytes(b), "truncated"))
    return out


# ---------------------------------------------------------------- what scapy sees

def s(v):
    return str(int(v))


def ip6hex(text):
    return socket.inet_pton(socket.AF_INET6, text).hex()


def offset_of(frame, layer):
    """Offset in bytes of `layer` from the start of the frame."""
    return len(raw(frame)) - len(raw(layer))


def describe(b):
    d = Ether(b)
    f = {"frame.len": s(len(b)), "eth.dst": d.dst, "eth.src": d.src}
    layer = d.payload
    l3 = 14
    if isinstance(layer, Dot1Q):
        f.update({"eth.tagged": "1", "vlan.pcp": s(layer.prio), "vlan.dei": s(layer.id),
                  "vlan.vid": s(layer.vlan), "eth.type": s(layer.type)})
        layer = layer.payload
        l3 = 18
    else:
        f.update({"eth.tagged": "0", "eth.type": s(d.type)})
    f["eth.l3offset"] = s(l3)
    if isinstance(layer, ARP):
        f.update({"arp.htype": s(layer.hwtype), "arp.ptype": s(layer.ptype), "arp.hlen": s(layer.hwlen),
                  "arp.plen": s(layer.plen), "arp.op": s(layer.op), "arp.sha": layer.hwsrc,
                  "arp.spa": layer.psrc, "arp.tha": layer.hwdst, "arp.tpa": layer.pdst})
    elif isinstance(layer, IP):
        describe_ipv4(d, b, layer, l3, f, "")
    elif isinstance(layer, IPv6):
        describe_ipv6(d, b, layer, l3, f)
    return f


def describe_ipv4(d, b, ip, l3, f, prefix):
    ihl = ip.ihl * 4
    hdr = b[l3:l3 + ihl]
    p = prefix + "ip."
    f.update({p + "version": s(ip.version), p + "hlen": s(ihl), p + "dscp": s(ip.tos >> 2), p + "ecn": s(ip.tos & 3),
              p + "len": s(ip.len), p + "id": s(ip.id), p + "rf": s(ip.flags.evil), p + "df": s(ip.flags.DF),
              p + "mf": s(ip.flags.MF), p + "frag": s(ip.frag * 8), p + "ttl": s(ip.ttl), p + "proto": s(ip.proto),
              p + "chksum": s(ip.chksum), p + "chksum_ok": s(checksum(hdr) == 0), p + "src": ip.src, p + "dst": ip.dst,
              p + "options": hdr[20:].hex(), p + "payload_len": s(ip.len - ihl)})
    l4 = l3 + ihl
    end = l3 + ip.len
    f[p + "l4offset"] = s(l4)
    if ip.frag != 0:
        f[prefix + "l4.present"] = "0"
        return
    whole = not ip.flags.MF
    upper = ip.payload
    if ip.proto == 6 and isinstance(upper, TCP):
        describe_tcp(b, upper, l4, end, f, prefix, in4_chksum(6, ip, b[l4:end]) == 0 if whole else None)
    elif ip.proto == 17 and isinstance(upper, UDP):
        ok = None
        if whole:
            ok = upper.chksum == 0 or in4_chksum(17, ip, b[l4:l4 + upper.len]) == 0
        describe_udp(b, upper, l4, f, prefix, ok)
    elif ip.proto == 1 and isinstance(upper, ICMP):
        describe_icmp(b, upper, l4, end, f, prefix)
    elif ip.proto == 4 and isinstance(upper, IP) and not prefix:
        f["l4.present"] = "0"
        describe_ipv4(d, b, upper, l4, f, "inner.")
    else:
        f[prefix + "l4.present"] = "0"


def describe_tcp(b, t, l4, end, f, prefix, ok):
    hlen = t.dataofs * 4
    p = prefix + "tcp."
    f.update({prefix + "l4.present": "1", p + "sport": s(t.sport), p + "dport": s(t.dport), p + "seq": s(t.seq),
              p + "ack": s(t.ack), p + "hlen": s(hlen), p + "reserved": s(t.reserved), p + "flags": s(int(t.flags)),
              p + "window": s(t.window), p + "chksum": s(t.chksum), p + "urgptr": s(t.urgptr),
              p + "options": b[l4 + 20:l4 + hlen].hex(), p + "payload_len": s(end - l4 - hlen)})
    if ok is not None:
        f[p + "chksum_ok"] = s(ok)


def describe_udp(b, u, l4, f, prefix, ok):
    p = prefix + "udp."
    f.update({prefix + "l4.present": "1", p + "sport": s(u.sport), p + "dport": s(u.dport), p + "len": s(u.len),
              p + "chksum": s(u.chksum)})
    if ok is not None:
        f[p + "chksum_ok"] = s(ok)


def describe_icmp(b, c, l4, end, f, prefix):
    msg = b[l4:end]
    p = prefix + "icmp."
    f.update({prefix + "l4.present": "1", p + "type": s(c.type), p + "code": s(c.code), p + "chksum": s(c.chksum),
              p + "chksum_ok": s(checksum(msg) == 0), p + "payload_len": s(len(msg) - 8)})
    if c.type in (0, 8):
        f.update({p + "id": s(c.id), p + "seq": s(c.seq)})
    elif c.type == 3:
        f.update({p + "reserved": s(c.reserved), p + "length": s(c.length), p + "nexthopmtu": s(c.nexthopmtu)})
    elif c.type == 11:
        f.update({p + "reserved": s(c.reserved), p + "length": s(c.length), p + "unused": s(c.unused)})
    if c.type in (3, 11):
        q = c.payload  # scapy dissects the quote as IPerror / TCPerror / UDPerror
        if q.name == "IP in ICMP":
            f.update({p + "quoted.src": q.src, p + "quoted.dst": q.dst, p + "quoted.proto": s(q.proto)})
            if q.payload.name in ("TCP in ICMP", "UDP in ICMP"):
                f.update({p + "quoted.sport": s(q.payload.sport), p + "quoted.dport": s(q.payload.dport)})


def describe_ipv6(d, b, ip, l3, f):
    f.update({"ip6.version": s(ip.version), "ip6.tc": s(ip.tc), "ip6.fl": s(ip.fl), "ip6.plen": s(ip.plen),
              "ip6.nh": s(ip.nh), "ip6.hlim": s(ip.hlim), "ip6.src": ip6hex(ip.src), "ip6.dst": ip6hex(ip.dst)})
    end = l3 + 40 + ip.plen
    layer, nh, frag = ip.payload, ip.nh, None
    while isinstance(layer, EXT_HEADERS):
        if isinstance(layer, IPv6ExtHdrFragment):
            frag = layer
        nh = layer.nh
        layer = layer.payload
        if frag is not None and frag.offset != 0:
            break
    l4 = offset_of(d, layer) if not isinstance(layer, Padding) else end
    f.update({"ip6.upper": s(nh), "ip6.l4offset": s(l4), "ip6.frag": s(frag is not None)})
    if frag is not None:
        f.update({"ip6.frag.offset": s(frag.offset * 8), "ip6.frag.m": s(frag.m), "ip6.frag.id": s(frag.id)})
        if frag.offset != 0:
            f["l4.present"] = "0"
            return
    whole = frag is None or not frag.m
    if nh == 6 and isinstance(layer, TCP):
        describe_tcp(b, layer, l4, end, f, "", in6_chksum(6, layer, b[l4:end]) == 0 if whole else None)
    elif nh == 17 and isinstance(layer, UDP):
        describe_udp(b, layer, l4, f, "", in6_chksum(17, layer, b[l4:l4 + layer.len]) == 0 if whole else None)
    elif nh == 58:
        msg = b[l4:end]
        f.update({"l4.present": "1", "icmp6.type": s(msg[0]), "icmp6.code": s(msg[1]),
                  "icmp6.chksum": s(layer.cksum), "icmp6.chksum_ok": s(in6_chksum(58, layer, msg) == 0)})
        if isinstance(layer, (ICMPv6EchoRequest, ICMPv6EchoReply)):
            f.update({"icmp6.id": s(layer.id), "icmp6.seq": s(layer.seq), "icmp6.payload_len": s(len(layer.data))})
        elif isinstance(layer, ICMPv6ND_NS):
            f.update({"icmp6.tgt": ip6hex(layer.tgt)})
            opt = layer.getlayer(ICMPv6NDOptSrcLLAddr)
            f["icmp6.lladdr"] = opt.lladdr if opt is not None else "none"
        elif isinstance(layer, ICMPv6ND_NA):
            f.update({"icmp6.tgt": ip6hex(layer.tgt), "icmp6.R": s(layer.R), "icmp6.S": s(layer.S),
                      "icmp6.O": s(layer.O)})
            opt = layer.getlayer(ICMPv6NDOptDstLLAddr)
            f["icmp6.lladdr"] = opt.lladdr if opt is not None else "none"
        elif isinstance(layer, ICMPv6PacketTooBig):
            f.update({"icmp6.mtu": s(layer.mtu), "icmp6.payload_len": s(len(msg) - 8)})
        elif isinstance(layer, (ICMPv6DestUnreach, ICMPv6TimeExceeded)):
            f.update({"icmp6.length": s(layer.length), "icmp6.unused": s(layer.unused),
                      "icmp6.payload_len": s(len(msg) - 8)})
    else:
        f["l4.present"] = "0"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300, help="well-formed packets (malformed ones come on top)")
    a = ap.parse_args()
    g = Gen(a.seed)
    names = [k for k, _, w in KINDS for _ in range(w)]
    makers = {k: m for k, m, _ in KINDS}
    out = sys.stdout
    n = 0
    # Every kind at least once, then weighted random picks.
    order = [k for k, _, _ in KINDS] + [g.r.choice(names) for _ in range(max(0, a.count - len(KINDS)))]
    for kind in order[:a.count]:
        b = raw(makers[kind](g))
        out.write(json.dumps({"id": n, "kind": kind, "hex": b.hex(), "fields": describe(b), "error": None}) + "\n")
        n += 1
    for kind, b, reason in malformed(g):
        out.write(json.dumps({"id": n, "kind": "malformed:" + kind, "hex": b.hex(), "fields": {}, "error": reason}) + "\n")
        n += 1


if __name__ == "__main__":
    main()
