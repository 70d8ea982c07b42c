#!/usr/bin/python3
# Byte fixtures for Tests/DatapathTests/HostModelTests.swift, built with scapy
# (an implementation independent of HostModel): input frame → frames the
# host must emit, step by step on one host (rs1 of lvs-dr, VIP 10.0.0.100
# on lo, http 80, udp echo 9000, IPIP decapsulation).
from scapy.all import Ether, ARP, IP, TCP, UDP, ICMP, Raw, raw
RS = "02:00:00:00:00:01"; GW = "02:00:00:00:00:fe"; LVS = "02:00:00:00:00:02"
rs_ip = "10.0.0.1"; vip = "10.0.0.100"; gw_ip = "10.0.0.254"; client = "203.0.113.123"; lvs_ip = "10.0.0.2"
def fnv(vals):
    h = 2166136261
    for v in vals:
        h = ((h ^ v) * 16777619) & 0xffffffff
    return h
def ip2i(s):
    a = [int(x) for x in s.split(".")]; return (a[0]<<24)|(a[1]<<16)|(a[2]<<8)|a[3]
steps = []
def step(desc, inp, outs, port_out=0):
    steps.append((desc, raw(inp), [raw(o) for o in outs]))
# 1 ARP request for rs1's address -> reply
step("ARP request for the interface address is answered",
     Ether(dst="ff:ff:ff:ff:ff:ff", src=GW)/ARP(op=1, hwsrc=GW, psrc=gw_ip, hwdst="00:00:00:00:00:00", pdst=rs_ip),
     [Ether(dst=GW, src=RS)/ARP(op=2, hwsrc=RS, psrc=rs_ip, hwdst=GW, pdst=gw_ip)])
# 2 ARP for the VIP: ignored
step("ARP request for a VIP on lo is not answered (arp_ignore=1)",
     Ether(dst="ff:ff:ff:ff:ff:ff", src=GW)/ARP(op=1, hwsrc=GW, psrc=gw_ip, pdst=vip), [])
# 3 echo
payload = bytes(range(8, 64))
step("ICMP echo request is answered from the address asked, through the default gateway",
     Ether(dst=RS, src=GW)/IP(src=client, dst=rs_ip, ttl=63, id=777, flags="DF")/ICMP(type=8, id=0x1234, seq=1)/Raw(payload),
     [Ether(dst=GW, src=RS)/IP(src=rs_ip, dst=client, ttl=64, id=1, flags=0)/ICMP(type=0, id=0x1234, seq=1)/Raw(payload)])
# 4 SYN to VIP:80 (DR: frame to rs1's MAC from the director)
isn = fnv([ip2i(vip), 80, ip2i(client), 40000, 1])
step("TCP SYN to the VIP's HTTP port: SYN-ACK from the VIP (MSS 1460)",
     Ether(dst=RS, src=LVS)/IP(src=client, dst=vip, ttl=63, id=5, flags="DF")/TCP(sport=40000, dport=80, seq=1000, flags="S", window=64240, options=[("MSS", 1460)]),
     [Ether(dst=GW, src=RS)/IP(src=vip, dst=client, id=2, flags="DF")/TCP(sport=80, dport=40000, seq=isn, ack=1001, flags="SA", window=64240, options=[("MSS", 1460)])])
step("the handshake's ACK: nothing to send",
     Ether(dst=RS, src=LVS)/IP(src=client, dst=vip, ttl=63, id=6, flags="DF")/TCP(sport=40000, dport=80, seq=1001, ack=isn+1, flags="A", window=64240), [])
req = b"GET / HTTP/1.1\r\nHost: 198.51.100.3\r\n\r\n"
body = b"rs1\n"
resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nServer: wirelab\r\nX-Wirelab-Node: rs1\r\nConnection: close\r\n\r\n" + body
step("an HTTP request: the one-line answer naming the server, then FIN",
     Ether(dst=RS, src=LVS)/IP(src=client, dst=vip, ttl=63, id=7, flags="DF")/TCP(sport=40000, dport=80, seq=1001, ack=isn+1, flags="PA", window=64240)/Raw(req),
     [Ether(dst=GW, src=RS)/IP(src=vip, dst=client, id=3, flags="DF")/TCP(sport=80, dport=40000, seq=isn+1, ack=1001+len(req), flags="PA", window=64240)/Raw(resp),
      Ether(dst=GW, src=RS)/IP(src=vip, dst=client, id=4, flags="DF")/TCP(sport=80, dport=40000, seq=isn+1+len(resp), ack=1001+len(req), flags="FA", window=64240)])
step("TCP SYN to a closed port: RST+ACK (seq 0, ack = seq + 1)",
     Ether(dst=RS, src=GW)/IP(src=client, dst=rs_ip, ttl=63, id=8, flags="DF")/TCP(sport=40002, dport=81, seq=5000, flags="S", window=64240),
     [Ether(dst=GW, src=RS)/IP(src=rs_ip, dst=client, id=5, flags="DF")/TCP(sport=81, dport=40002, seq=0, ack=5001, flags="RA", window=0)])
step("an unexpected SYN-ACK: RST with seq = its ack",
     Ether(dst=RS, src=GW)/IP(src=client, dst=rs_ip, ttl=63, id=9, flags="DF")/TCP(sport=80, dport=40001, seq=7000, ack=123456, flags="SA", window=64240),
     [Ether(dst=GW, src=RS)/IP(src=rs_ip, dst=client, id=6, flags="DF")/TCP(sport=40001, dport=80, seq=123456, ack=0, flags="R", window=0)])
udp_in = IP(src=client, dst=rs_ip, ttl=63, id=10, flags="DF")/UDP(sport=40003, dport=53)/Raw(b"hello")
step("UDP to a closed port: ICMP port unreachable quoting the datagram",
     Ether(dst=RS, src=GW)/udp_in,
     [Ether(dst=GW, src=RS)/IP(src=rs_ip, dst=client, id=7, flags=0)/ICMP(type=3, code=3)/Raw(raw(udp_in))])
step("UDP echo on the serve port: the datagram comes back",
     Ether(dst=RS, src=GW)/IP(src=client, dst=rs_ip, ttl=63, id=11, flags="DF")/UDP(sport=40004, dport=9000)/Raw(b"echo me"),
     [Ether(dst=GW, src=RS)/IP(src=rs_ip, dst=client, id=8, flags="DF")/UDP(sport=9000, dport=40004)/Raw(b"echo me")])
inner = IP(src=client, dst=vip, ttl=62, id=12, flags="DF")/ICMP(type=8, id=0x99, seq=2)/Raw(b"tun")
step("IPIP from the director to the real: decapsulated, the inner echo answered from the VIP",
     Ether(dst=RS, src=LVS)/IP(src=lvs_ip, dst=rs_ip, ttl=64, id=0, flags="DF", proto=4)/inner,
     [Ether(dst=GW, src=RS)/IP(src=vip, dst=client, id=9, flags=0)/ICMP(type=0, id=0x99, seq=2)/Raw(b"tun")])
step("an IPv4 packet for another address: dropped (hosts do not forward)",
     Ether(dst=RS, src=GW)/IP(src=client, dst="10.0.0.3", ttl=63, id=13)/UDP(sport=1, dport=2), [])
def hx(b): return '"' + b.hex() + '"'
print("// GENERATED by scripts/gen-hostmodel-fixtures.py (scapy); do not edit. Regenerate:\n//   /usr/bin/python3 scripts/gen-hostmodel-fixtures.py > Tests/LabTests/HostModelFixtures.swift")
print("let hostModelTable: [(String, String, [String])] = [")
for d, i, o in steps:
    print(f'    ("{d}",\n     {hx(i)},\n     [' + ", ".join(hx(x) for x in o) + "]),")
print("]")
