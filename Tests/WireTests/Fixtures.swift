// Byte fixtures: frames built by hand (a small Python script using only
// struct), written to a pcap and decoded by `tcpdump -nn -vv -e -XX -r`
// (tcpdump 4.99). tcpdump's summary is the comment; the hex lines are
// tcpdump's own, parsed by `bytes(tcpdump:)`. tcpdump verified every
// checksum it reports ("correct", "sum ok").

enum Fixture {
    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 98: (tos 0x0, ttl 64, id 43981, offset 0, flags [DF], proto ICMP (1), length 84)
    //   10.0.0.1 > 10.0.0.2: ICMP echo request, id 4660, seq 1, length 64
    static let icmpEcho = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 0800 4500  ..............E.
        0x0010:  0054 abcd 4000 4001 7ad9 0a00 0001 0a00  .T..@.@.z.......
        0x0020:  0002 0800 2cf6 1234 0001 1011 1213 1415  ....,..4........
        0x0030:  1617 1819 1a1b 1c1d 1e1f 2021 2223 2425  ...........!"#$%
        0x0040:  2627 2829 2a2b 2c2d 2e2f 3031 3233 3435  &'()*+,-./012345
        0x0050:  3637 3839 3a3b 3c3d 3e3f 4041 4243 4445  6789:;<=>?@ABCDE
        0x0060:  4647                                     FG
        """)

    // 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Ethernet (len 6), IPv4 (len 4), Request who-has 10.0.0.2 tell 10.0.0.1, length 46
    static let arpRequest = bytes(tcpdump: """
        0x0000:  ffff ffff ffff 0200 0000 0001 0806 0001  ................
        0x0010:  0800 0604 0001 0200 0000 0001 0a00 0001  ................
        0x0020:  0000 0000 0000 0a00 0002 0000 0000 0000  ................
        0x0030:  0000 0000 0000 0000 0000 0000            ............
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 64, id 7238, offset 0, flags [DF], proto TCP (6), length 60)
    //   10.0.0.1.40000 > 10.0.0.100.80: Flags [S], cksum 0x7572 (correct), seq 287454020, win 64240, options [mss 1460,sackOK,TS val 123456 ecr 0,nop,wscale 7], length 0
    static let tcpSyn = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 0800 4500  ..............E.
        0x0010:  003c 1c46 4000 4006 0a12 0a00 0001 0a00  .<.F@.@.........
        0x0020:  0064 9c40 0050 1122 3344 0000 0000 a002  .d.@.P."3D......
        0x0030:  faf0 7572 0000 0204 05b4 0402 080a 0001  ..ur............
        0x0040:  e240 0000 0000 0103 0307                 .@........
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 71: (tos 0x0, ttl 64, id 258, offset 0, flags [none], proto UDP (17), length 57)
    //   10.0.0.1.53000 > 10.0.0.53.53: [udp sum ok] 43981+ A? example.com. (29)
    static let udpDns = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 0800 4500  ..............E.
        0x0010:  0039 0102 0000 4011 657d 0a00 0001 0a00  .9....@.e}......
        0x0020:  0035 cf08 0035 0025 a0f5 abcd 0100 0001  .5...5.%........
        0x0030:  0000 0000 0000 0765 7861 6d70 6c65 0363  .......example.c
        0x0040:  6f6d 0000 0100 01                        om.....
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 802.1Q (0x8100), length 51: vlan 100, p 3, ethertype IPv4 (0x0800), (tos 0x0, ttl 17, id 0, offset 0, flags [none], proto UDP (17), length 33)
    //   192.168.1.1.1234 > 192.168.1.2.5678: [udp sum ok] UDP, length 5
    static let vlanUdp = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 8100 6064  ..............`d
        0x0010:  0800 4500 0021 0000 0000 1111 2679 c0a8  ..E..!......&y..
        0x0020:  0101 c0a8 0102 04d2 162e 000d 1dae 6865  ..............he
        0x0030:  6c6c 6f                                  llo
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 57: (tos 0xb8, ttl 5, id 0, offset 0, flags [none], proto UDP (17), length 43, options (RR 0.0.0.0 0.0.0.0,NOP))
    //   10.1.1.1.7 > 10.2.2.2.7: [udp sum ok] UDP, length 3
    static let ipv4Options = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 0800 48b8  ..............H.
        0x0010:  002b 0000 0000 0511 8ff9 0a01 0101 0a02  .+..............
        0x0020:  0202 070b 0400 0000 0000 0000 0001 0007  ................
        0x0030:  0007 000b f64a 7879 7a                   .....Jxyz
        """)

    // 02:00:00:00:00:02 > 02:00:00:00:00:01, ethertype IPv4 (0x0800), length 70: (tos 0x0, ttl 255, id 0, offset 0, flags [none], proto ICMP (1), length 56)
    //   10.0.0.254 > 10.0.0.1: ICMP 10.9.9.9 unreachable - need to frag (mtu 1400), length 36
    //   (tos 0x0, ttl 64, id 7, offset 0, flags [DF], proto TCP (6), length 140)
    //   10.0.0.1.40000 > 10.9.9.9.443:  [|tcp]
    static let icmpFragNeeded = bytes(tcpdump: """
        0x0000:  0200 0000 0001 0200 0000 0002 0800 4500  ..............E.
        0x0010:  0038 0000 0000 ff01 a6c6 0a00 00fe 0a00  .8..............
        0x0020:  0001 0304 5987 0000 0578 4500 008c 0007  ....Y....xE.....
        0x0030:  4000 4006 1d53 0a00 0001 0a09 0909 9c40  @.@..S.........@
        0x0040:  01bb 0000 0001                           ......
        """)

    // 02:00:00:00:00:02 > 02:00:00:00:00:01, ethertype IPv4 (0x0800), length 70: (tos 0x0, ttl 255, id 0, offset 0, flags [none], proto ICMP (1), length 56)
    //   10.0.0.254 > 10.0.0.1: ICMP time exceeded in-transit, length 36
    //   (tos 0x0, ttl 64, id 7, offset 0, flags [DF], proto TCP (6), length 140)
    //   10.0.0.1.40000 > 10.9.9.9.443:  [|tcp]
    static let icmpTimeExceeded = bytes(tcpdump: """
        0x0000:  0200 0000 0001 0200 0000 0002 0800 4500  ..............E.
        0x0010:  0038 0000 0000 ff01 a6c6 0a00 00fe 0a00  .8..............
        0x0020:  0001 0b00 5703 0000 0000 4500 008c 0007  ....W.....E.....
        0x0030:  4000 4006 1d53 0a00 0001 0a09 0909 9c40  @.@..S.........@
        0x0040:  01bb 0000 0001                           ......
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 64, id 16962, offset 0, flags [+], proto UDP (17), length 60)
    //   10.0.0.1.5000 > 10.0.0.2.6000: UDP, length 56
    static let fragFirst = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 0800 4500  ..............E.
        0x0010:  003c 4242 2000 4011 046d 0a00 0001 0a00  .<BB..@..m......
        0x0020:  0002 1388 1770 0040 c960 0001 0203 0405  .....p.@.`......
        0x0030:  0607 0809 0a0b 0c0d 0e0f 1011 1213 1415  ................
        0x0040:  1617 1819 1a1b 1c1d 1e1f                 ..........
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 58: (tos 0x0, ttl 64, id 16962, offset 40, flags [none], proto UDP (17), length 44)
    //   10.0.0.1 > 10.0.0.2: ip-proto-17
    static let fragSecond = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 0800 4500  ..............E.
        0x0010:  002c 4242 0005 4011 2478 0a00 0001 0a00  .,BB..@.$x......
        0x0020:  0002 2021 2223 2425 2627 2829 2a2b 2c2d  ...!"#$%&'()*+,-
        0x0030:  2e2f 3031 3233 3435 3637                 ./01234567
        """)

    // 02:00:00:00:00:01 > 33:33:ff:00:00:02, ethertype IPv6 (0x86dd), length 86: (hlim 255, next-header ICMPv6 (58) payload length: 32) fe80::1 > ff02::1:ff00:2: [icmp6 sum ok] ICMP6, neighbor solicitation, length 32, who has fe80::2
    //   source link-address option (1), length 8 (1): 02:00:00:00:00:01
    static let icmpv6Ns = bytes(tcpdump: """
        0x0000:  3333 ff00 0002 0200 0000 0001 86dd 6000  33............`.
        0x0010:  0000 0020 3aff fe80 0000 0000 0000 0000  ....:...........
        0x0020:  0000 0000 0001 ff02 0000 0000 0000 0000  ................
        0x0030:  0001 ff00 0002 8700 7a97 0000 0000 fe80  ........z.......
        0x0040:  0000 0000 0000 0000 0000 0000 0002 0101  ................
        0x0050:  0200 0000 0001                           ......
        """)

    // 02:00:00:00:00:02 > 02:00:00:00:00:01, ethertype IPv6 (0x86dd), length 86: (hlim 255, next-header ICMPv6 (58) payload length: 32) fe80::2 > fe80::1: [icmp6 sum ok] ICMP6, neighbor advertisement, length 32, tgt is fe80::2, Flags [solicited, override]
    //   destination link-address option (2), length 8 (1): 02:00:00:00:00:02
    static let icmpv6Na = bytes(tcpdump: """
        0x0000:  0200 0000 0001 0200 0000 0002 86dd 6000  ..............`.
        0x0010:  0000 0020 3aff fe80 0000 0000 0000 0000  ....:...........
        0x0020:  0000 0000 0002 fe80 0000 0000 0000 0000  ................
        0x0030:  0000 0000 0001 8800 181a 6000 0000 fe80  ..........`.....
        0x0040:  0000 0000 0000 0000 0000 0000 0002 0201  ................
        0x0050:  0200 0000 0002                           ......
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv6 (0x86dd), length 71: (class 0x20, flowlabel 0x12345, hlim 64, next-header ICMPv6 (58) payload length: 17) 2001:db8::1 > 2001:db8::2: [icmp6 sum ok] ICMP6, echo request, id 119, seq 3
    static let icmpv6Echo = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 86dd 6201  ..............b.
        0x0010:  2345 0011 3a40 2001 0db8 0000 0000 0000  #E..:@..........
        0x0020:  0000 0000 0001 2001 0db8 0000 0000 0000  ................
        0x0030:  0000 0000 0002 8000 4c1b 0077 0003 7069  ........L..w..pi
        0x0040:  6e67 3664 6174 61                        ng6data
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv6 (0x86dd), length 97: (hlim 64, next-header Options (0) payload length: 43) 2001:db8::1 > 2001:db8::2: HBH (padn) DSTOPT (padn) frag (0xdeadbeef:0|19) 1111 > 2222: UDP, length 11
    static let ipv6ExtUdp = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 86dd 6000  ..............`.
        0x0010:  0000 002b 0040 2001 0db8 0000 0000 0000  ...+.@..........
        0x0020:  0000 0000 0001 2001 0db8 0000 0000 0000  ................
        0x0030:  0000 0000 0002 3c00 0104 0000 0000 2c00  ......<.......,.
        0x0040:  0104 0000 0000 1100 0001 dead beef 0457  ...............W
        0x0050:  08ae 0013 1b6c 6578 742d 6865 6164 6572  .....lext-header
        0x0060:  73                                       s
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv6 (0x86dd), length 78: (hlim 64, next-header Fragment (44) payload length: 24) 2001:db8::1 > 2001:db8::2: frag (0xdeadbeef:1000|16)
    static let ipv6FragSecond = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 86dd 6000  ..............`.
        0x0010:  0000 0018 2c40 2001 0db8 0000 0000 0000  ....,@..........
        0x0020:  0000 0000 0001 2001 0db8 0000 0000 0000  ................
        0x0030:  0000 0000 0002 1100 03e8 dead beef 0000  ................
        0x0040:  0000 0000 0000 0000 0000 0000 0000       ..............
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv6 (0x86dd), length 74: (hlim 64, next-header TCP (6) payload length: 20) 2001:db8::1.443 > 2001:db8::2.50000: Flags [S.], cksum 0x8b5f (correct), seq 5, ack 6, win 1000, length 0
    static let ipv6Tcp = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 86dd 6000  ..............`.
        0x0010:  0000 0014 0640 2001 0db8 0000 0000 0000  .....@..........
        0x0020:  0000 0000 0001 2001 0db8 0000 0000 0000  ................
        0x0030:  0000 0000 0002 01bb c350 0000 0005 0000  .........P......
        0x0040:  0006 5012 03e8 8b5f 0000                 ..P...._..
        """)

    // 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 74: (tos 0x10, ttl 64, id 0, offset 0, flags [DF], proto IPIP (4), length 60)
    //   10.0.0.2 > 10.0.0.1: (tos 0x10, ttl 64, id 9, offset 0, flags [DF], proto TCP (6), length 40)
    //   123.123.123.123.40000 > 10.0.0.100.80: Flags [S], cksum 0x1706 (correct), seq 1, win 64240, length 0
    static let ipip = bytes(tcpdump: """
        0x0000:  0200 0000 0002 0200 0000 0001 0800 4510  ..............E.
        0x0010:  003c 0000 4000 4004 26ac 0a00 0002 0a00  .<..@.@.&.......
        0x0020:  0001 4510 0028 0009 4000 4006 395d 7b7b  ..E..(..@.@.9]{{
        0x0030:  7b7b 0a00 0064 9c40 0050 0000 0001 0000  {{...d.@.P......
        0x0040:  0000 5002 faf0 1706 0000                 ..P.......
        """)
}

/* The script that built the frames (Python 3, standard library only). Run it,
   then `tcpdump -nn -vv -e -XX -r fx.pcap`; names.txt lists the frames in order.

import struct, sys
def csum(b):
    if len(b)%2: b+=b'\0'
    s=sum(struct.unpack('!%dH'%(len(b)//2), b))
    while s>>16: s=(s&0xffff)+(s>>16)
    return (~s)&0xffff
def mac(s): return bytes(int(x,16) for x in s.split(':'))
def ip4(s): return bytes(int(x) for x in s.split('.'))
import ipaddress
def ip6(s): return ipaddress.IPv6Address(s).packed
def eth(dst,src,typ,payload,vlan=None):
    h=mac(dst)+mac(src)
    if vlan is not None: h+=struct.pack('!HH',0x8100,vlan)
    return h+struct.pack('!H',typ)+payload
def ipv4(src,dst,proto,payload,ttl=64,ident=0,flags=0x4000,tos=0,opts=b''):
    ihl=5+len(opts)//4
    h=struct.pack('!BBHHHBBH4s4s',0x40|ihl,tos,ihl*4+len(payload),ident,flags,ttl,proto,0,ip4(src),ip4(dst))+opts
    c=csum(h); h=h[:10]+struct.pack('!H',c)+h[12:]
    return h+payload
def l4sum4(src,dst,proto,seg): return csum(ip4(src)+ip4(dst)+struct.pack('!BBH',0,proto,len(seg))+seg)
def l4sum6(src,dst,nh,seg): return csum(ip6(src)+ip6(dst)+struct.pack('!I3xB',len(seg),nh)+seg)
def tcp(src,dst,sp,dp,seq,ack,flags,win,opts=b'',data=b'',v6=False):
    off=(20+len(opts))//4
    h=struct.pack('!HHIIBBHHH',sp,dp,seq,ack,off<<4,flags,win,0,0)+opts+data
    c=(l4sum6 if v6 else l4sum4)(src,dst,6,h)
    return h[:16]+struct.pack('!H',c)+h[18:]
def udp(src,dst,sp,dp,data,v6=False):
    h=struct.pack('!HHHH',sp,dp,8+len(data),0)+data
    c=(l4sum6 if v6 else l4sum4)(src,dst,17,h)
    if c==0: c=0xffff
    return h[:6]+struct.pack('!H',c)+h[8:]
def icmp(t,code,rest,data):
    h=struct.pack('!BBH',t,code,0)+rest+data
    return h[:2]+struct.pack('!H',csum(h))+h[4:]
def icmp6(src,dst,t,code,body):
    h=struct.pack('!BBH',t,code,0)+body
    return h[:2]+struct.pack('!H',l4sum6(src,dst,58,h))+h[4:]
def ipv6(src,dst,nh,payload,hlim=64,tc=0,flow=0):
    return struct.pack('!IHBB',(6<<28)|(tc<<20)|flow,len(payload),nh,hlim)+ip6(src)+ip6(dst)+payload

A='02:00:00:00:00:01'; B='02:00:00:00:00:02'
frames={}
ping_data=bytes(range(0x10,0x10+56))
frames['icmp_echo']=eth(B,A,0x0800,ipv4('10.0.0.1','10.0.0.2',1,icmp(8,0,struct.pack('!HH',0x1234,1),ping_data),ident=0xabcd))
frames['arp_request']=eth('ff:ff:ff:ff:ff:ff',A,0x0806,struct.pack('!HHBBH',1,0x0800,6,4,1)+mac(A)+ip4('10.0.0.1')+mac('00:00:00:00:00:00')+ip4('10.0.0.2'))+bytes(18)
synopts=bytes.fromhex('020405b40402080a0001e2400000000001030307')
frames['tcp_syn']=eth(B,A,0x0800,ipv4('10.0.0.1','10.0.0.100',6,tcp('10.0.0.1','10.0.0.100',40000,80,0x11223344,0,0x02,64240,synopts),ident=0x1c46))
frames['udp_dns']=eth(B,A,0x0800,ipv4('10.0.0.1','10.0.0.53',17,udp('10.0.0.1','10.0.0.53',53000,53,bytes.fromhex('abcd01000001000000000000076578616d706c6503636f6d0000010001')),ident=0x0102,flags=0))
frames['vlan_udp']=eth(B,A,0x0800,ipv4('192.168.1.1','192.168.1.2',17,udp('192.168.1.1','192.168.1.2',1234,5678,b'hello'),ttl=17,flags=0),vlan=(3<<13)|100)
# IPv4 with options: record route (7), len 11, ptr 4, + NOP pad => 12 bytes
frames['ipv4_options']=eth(B,A,0x0800,ipv4('10.1.1.1','10.2.2.2',17,udp('10.1.1.1','10.2.2.2',7,7,b'xyz'),ttl=5,flags=0,tos=0xb8,opts=bytes.fromhex('070b04000000000000000001')))
# ICMP frag needed quoting a TCP packet
orig=ipv4('10.0.0.1','10.9.9.9',6,tcp('10.0.0.1','10.9.9.9',40000,443,1,0,0x18,500,data=b'A'*100),ident=7)
frames['icmp_frag_needed']=eth(A,B,0x0800,ipv4('10.0.0.254','10.0.0.1',1,icmp(3,4,struct.pack('!HH',0,1400),orig[:28]),ttl=255,flags=0))
# time exceeded
frames['icmp_time_exceeded']=eth(A,B,0x0800,ipv4('10.0.0.254','10.0.0.1',1,icmp(11,0,bytes(4),orig[:28]),ttl=255,flags=0))
# IPv4 fragments: first (MF) and second (offset 1480)
big=udp('10.0.0.1','10.0.0.2',5000,6000,bytes(range(56)))
frames['frag_first']=eth(B,A,0x0800,ipv4('10.0.0.1','10.0.0.2',17,big[:40],ident=0x4242,flags=0x2000))
frames['frag_second']=eth(B,A,0x0800,ipv4('10.0.0.1','10.0.0.2',17,big[40:],ident=0x4242,flags=40//8))
# IPv6 NS / NA
s6='fe80::1'; d6='ff02::1:ff00:2'
frames['icmpv6_ns']=eth('33:33:ff:00:00:02',A,0x86DD,ipv6(s6,d6,58,icmp6(s6,d6,135,0,bytes(4)+ip6('fe80::2')+bytes([1,1])+mac(A)),hlim=255))
frames['icmpv6_na']=eth(A,B,0x86DD,ipv6('fe80::2','fe80::1',58,icmp6('fe80::2','fe80::1',136,0,bytes([0x60,0,0,0])+ip6('fe80::2')+bytes([2,1])+mac(B)),hlim=255))
frames['icmpv6_echo']=eth(B,A,0x86DD,ipv6('2001:db8::1','2001:db8::2',58,icmp6('2001:db8::1','2001:db8::2',128,0,struct.pack('!HH',0x77,3)+b'ping6data'),flow=0x12345,tc=0x20))
# IPv6 + hop-by-hop(8 bytes, padN) + dest opts (8) + fragment(first) + UDP
u6=udp('2001:db8::1','2001:db8::2',1111,2222,b'ext-headers',v6=True)
hbh=bytes([60,0,1,4,0,0,0,0])
dst=bytes([44,0,1,4,0,0,0,0])
frag=struct.pack('!BBHI',17,0,0|1,0xdeadbeef)
frames['ipv6_ext_udp']=eth(B,A,0x86DD,ipv6('2001:db8::1','2001:db8::2',0,hbh+dst+frag+u6))
frag2=struct.pack('!BBH I',17,0,(1000)|0,0xdeadbeef)
frames['ipv6_frag_second']=eth(B,A,0x86DD,ipv6('2001:db8::1','2001:db8::2',44,frag2+bytes(16)))
t6=tcp('2001:db8::1','2001:db8::2',443,50000,5,6,0x12,1000,v6=True)
frames['ipv6_tcp']=eth(B,A,0x86DD,ipv6('2001:db8::1','2001:db8::2',6,t6))
# IPIP
inner=ipv4('123.123.123.123','10.0.0.100',6,tcp('123.123.123.123','10.0.0.100',40000,80,1,0,0x02,64240),ident=9,tos=0x10)
frames['ipip']=eth(B,A,0x0800,ipv4('10.0.0.2','10.0.0.1',4,inner,ident=0,tos=0x10))

# write pcap
with open('fx.pcap','wb') as f:
    f.write(struct.pack('<IHHiIII',0xa1b2c3d4,2,4,0,0,65535,1))
    for i,(k,v) in enumerate(frames.items()):
        f.write(struct.pack('<IIII',1700000000+i,0,len(v),len(v))+v)
with open('names.txt','w') as f: f.write('\n'.join(frames))
*/
