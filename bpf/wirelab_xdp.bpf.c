// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// wirelab_xdp — the XDP program in front of every userspace port (AF_XDP).
//
// One loaded copy of this object serves all the ports of one node (one network
// namespace): the maps are shared per node, so a node has one capture ring and
// one table of pass-to-kernel rules. For every frame received on an attached
// interface it:
//
//   1. looks the interface up in `ports` (ifindex → slot, flags); unknown
//      interfaces go to the kernel stack (XDP_PASS);
//   2. if the port's capture flag is set, copies the frame as received (up to
//      the node's snap length, at most WL_SNAP_MAX bytes) into a scratch
//      record, written with a small header to the `capture` BPF ring buffer
//      once the frame's path is known (step 6);
//   3. if a pass-to-kernel rule matches (see `pass_rules`), returns XDP_PASS so
//      the node's own kernel stack answers (management, health checks);
//   4. with the fast path on (`fast_config`), applies a flow's decision that
//      the node's element installed in `fast_flows` and redirects the frame
//      out of its egress port (`tx_ports`) without the socket round trip
//      (see "fast path" below);
//   5. otherwise redirects the frame into the AF_XDP socket registered in
//      `xsks` at key slot * WL_MAX_QUEUES + rx_queue_index; when no socket is
//      registered there the frame goes to the kernel (XDP_PASS);
//   6. writes the captured record, its flags saying whether the fast path
//      forwarded the frame (`walk` names the path each hop took).
//
// The struct layouts below are mirrored in Sources/LinuxNet/XDPProgram.swift;
// change both together. Build: scripts/build-bpf.sh (which regenerates
// Sources/LinuxNet/Generated/WirelabXDPObject.swift).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define WL_MAX_PORTS 1024        /* ports (interfaces) per node; the loader sizes the maps to the node */
#define WL_MAX_QUEUES 4          /* rx queues per port with a socket slot */
#define WL_SNAP_MAX 2048         /* largest capture per frame, bytes */
#define WL_PASS_RULES_MAX 256

/* ports: ifindex → port. */
struct wl_port {
	__u32 slot;              /* 0 ..< WL_MAX_PORTS */
	__u32 flags;             /* WL_PORT_CAPTURE */
};
#define WL_PORT_CAPTURE 1u

/* config[0]: node-wide settings. */
struct wl_config {
	__u32 snaplen;           /* captured bytes per frame, 1 ... WL_SNAP_MAX */
	__u32 pass_rules;        /* entries in pass_rules; 0 skips the lookups */
};

/* pass_rules key. A rule matches a frame when every non-zero field matches:
 *   IPv4 (ethertype 0x0800): daddr = destination address, proto = IP protocol
 *     (0 = any), dport = TCP/UDP destination port (0 = any);
 *   ARP (0x0806): daddr = target protocol address (0 = any ARP);
 *   any other EtherType: daddr = proto = dport = 0 (the whole EtherType).
 * Lookups, most specific first, for IPv4: (daddr,proto,dport), (daddr,proto,0),
 * (daddr,0,0), (0,0,0); for ARP: (tpa), (0); otherwise: (0,0,0).
 * All multi-byte fields in network byte order. */
struct wl_pass_key {
	__u32 daddr;
	__u16 ethertype;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct wl_pass_value {
	__u64 hits;
};

/* capture ring record: this header, then cap_len bytes of the frame. */
struct wl_capture_hdr {
	__u64 timestamp_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 ifindex;
	__u32 wire_len;          /* whole frame, all fragments, bytes */
	__u32 cap_len;           /* bytes that follow the header */
	__u32 rx_queue;
	__u32 flags;             /* WL_CAPTURE_FAST */
	__u32 pad;               /* keeps the header a multiple of 8 bytes */
};
/* The fast path forwarded the frame (the bytes are still as received). */
#define WL_CAPTURE_FAST 1u

struct wl_capture_record {
	struct wl_capture_hdr hdr;
	__u8 data[WL_SNAP_MAX];
};

/* stats (per CPU), indexes: */
enum {
	WL_STAT_REDIRECTED = 0,  /* handed to an AF_XDP socket */
	WL_STAT_PASS_RULE,       /* passed to the kernel by a pass rule */
	WL_STAT_PASS_NO_SOCKET,  /* passed: no socket in xsks for this queue */
	WL_STAT_PASS_UNKNOWN,    /* passed: interface not in ports */
	WL_STAT_CAPTURED,        /* records written to the capture ring */
	WL_STAT_CAPTURE_DROPPED, /* ring full: record lost */
	WL_STAT_CAPTURE_ERROR,   /* frame bytes could not be read */
	WL_STAT_FAST_FORWARDED,  /* fast path: rewritten and redirected */
	WL_STAT_FAST_STALE,      /* fast path: entry of an older generation */
	WL_STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, WL_MAX_PORTS * WL_MAX_QUEUES); /* resized by the loader */
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WL_MAX_PORTS); /* resized by the loader */
	__type(key, __u32);
	__type(value, struct wl_port);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wl_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WL_PASS_RULES_MAX);
	__type(key, struct wl_pass_key);
	__type(value, struct wl_pass_value);
} pass_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by the loader */
} capture SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wl_capture_record);
} capture_scratch SEC(".maps");

/* fast path ------------------------------------------------------------
 *
 * Elements stay the only place where decisions are made. Once an element
 * has forwarded a frame of a flow and says the decision holds for the
 * flow's later frames, the daemon writes what the element did to it —
 * derived from the frame before and after (Sources/Datapath/FastPath.swift)
 * — as one `fast_flows` entry, keyed by the ingress port and the 5-tuple.
 * This program then does the same to later frames of that flow: both MACs,
 * addresses and ports, TTL, the IPv4 header and TCP/UDP checksums updated
 * as RFC 1624 eqn. 3 (as Sources/Wire/Rewrite.swift does, so the bytes are
 * the same), and redirects out of the egress port's interface. A TUN entry
 * (the director's) instead puts the frame, its TTL - 1, inside an outer
 * IPv4 header (fast_encap).
 *
 * Anything it does not know goes the slow path (the socket, then the
 * element): non-IPv4, IP options, fragments, other protocols than TCP and
 * UDP, TCP with SYN, FIN or RST (state changes go up), a TTL the hop cannot
 * decrement, a frame longer than the egress allows, no entry, and an entry
 * of an older generation: an element whose state changes (a route, a
 * neighbour, a learned MAC, a connection removed) bumps the node's
 * generation and every older entry stops applying at once. */

#define WL_FAST_FLOWS_MAX 65536

/* A flow at a hop: its frames as received — the port, both MACs (a switch
 * decides by the destination MAC and learns the source; a router or
 * director forwards only what is sent to its own MAC), the 5-tuple. */
struct wl_flow_key {
	__u8 dst_mac[6];         /* as received */
	__u8 src_mac[6];
	__u32 saddr;             /* as received, network order */
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad;
	__u16 in_slot;           /* ingress port slot */
};

struct wl_flow_action {
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u32 saddr;             /* after, network order */
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u16 ip_delta;          /* one's complement sum of ~old + new address words */
	__u16 l4_delta;          /* … of ~old + new address and port words */
	__u16 max_len;           /* largest IPv4 total length the egress takes */
	__u8 dec_ttl;            /* 1: a routing hop (TTL - 1; TTL <= 1 goes up) */
	__u8 encap;              /* 1: TUN, see fast_encap (saddr … l4_delta unused) */
	__u16 out_slot;          /* egress port slot: tx_ports key */
	__u16 pad1;
	__u32 generation;        /* must equal fast_config's */
	__u64 packets;           /* written by this program */
	__u64 bytes;
	__u32 outer_saddr;       /* TUN: the outer header's addresses, network order */
	__u32 outer_daddr;
};

struct wl_fast_config {
	__u32 enabled;
	__u32 generation;
};

/* Not preallocated: a lab of a thousand nodes with the fast path off pays
 * nothing for it; entries are allocated as the daemon installs them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, WL_FAST_FLOWS_MAX);
	__type(key, struct wl_flow_key);
	__type(value, struct wl_flow_action);
} fast_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, WL_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wl_fast_config);
} fast_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &index);
	if (value)
		*value += 1;
}

/* Copies the frame as received into the scratch record; returns the
 * captured length, 0 when nothing was copied. The record is written by
 * capture_emit once the frame's path is known: the fast path rewrites the
 * frame, the capture must hold it as it arrived. */
static __always_inline __u32 capture_copy(struct xdp_md *ctx, struct wl_capture_record *rec, __u32 snaplen)
{
	__u64 wire_len = bpf_xdp_get_buff_len(ctx);
	__u64 cap = wire_len < snaplen ? wire_len : snaplen;
	/* Bound the length for the verifier: 1 ... WL_SNAP_MAX. The barrier
	 * keeps clang from folding the checks into a form it cannot follow. */
	asm volatile("" : "+r"(cap));
	if (cap > WL_SNAP_MAX)
		cap = WL_SNAP_MAX;
	if (cap < 1)
		return 0;
	if (bpf_xdp_load_bytes(ctx, 0, rec->data, cap) < 0) {
		count(WL_STAT_CAPTURE_ERROR);
		return 0;
	}
	rec->hdr.timestamp_ns = bpf_ktime_get_ns();
	rec->hdr.ifindex = ctx->ingress_ifindex;
	rec->hdr.wire_len = wire_len;
	rec->hdr.cap_len = cap;
	rec->hdr.rx_queue = ctx->rx_queue_index;
	rec->hdr.flags = 0;
	rec->hdr.pad = 0;
	return cap;
}

/* Writes the record capture_copy made (cap > 0) with FLAGS. */
static __always_inline void capture_emit(struct wl_capture_record *rec, __u32 cap, __u32 flags)
{
	if (!rec || cap < 1)
		return;
	/* (The verifier tracks the bound of the reloaded length, not of cap.) */
	__u64 len = rec->hdr.cap_len;
	if (len < 1 || len > WL_SNAP_MAX)
		return;
	rec->hdr.flags = flags;
	if (bpf_ringbuf_output(&capture, rec, sizeof(rec->hdr) + len, 0) < 0)
		count(WL_STAT_CAPTURE_DROPPED);
	else
		count(WL_STAT_CAPTURED);
}

static __always_inline int pass_lookup(struct wl_pass_key *key)
{
	struct wl_pass_value *value = bpf_map_lookup_elem(&pass_rules, key);
	if (!value)
		return 0;
	__sync_fetch_and_add(&value->hits, 1);
	return 1;
}

struct wl_arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

/* Returns 1 when a pass rule matches this frame. */
static __always_inline int pass_to_kernel(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	struct wl_pass_key key = {};
	key.ethertype = eth->h_proto;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return 0;
		key.daddr = ip->daddr;
		key.proto = ip->protocol;
		/* First fragment (offset 0) of TCP/UDP: the port is readable. */
		if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
		    (ip->frag_off & bpf_htons(0x1fff)) == 0) {
			__u32 ihl = (ip->ihl & 0xf) * 4;
			__u16 *ports_ = (void *)ip + ihl;
			if (ihl >= sizeof(*ip) && (void *)(ports_ + 2) <= data_end) {
				key.dport = ports_[1];
				if (pass_lookup(&key))
					return 1;
			}
		}
		key.dport = 0;
		if (pass_lookup(&key))
			return 1;
		key.proto = 0;
		if (pass_lookup(&key))
			return 1;
		key.daddr = 0;
		return pass_lookup(&key);
	}
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct wl_arp_ipv4 *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) <= data_end && arp->ptype == bpf_htons(ETH_P_IP) &&
		    arp->plen == 4) {
			__builtin_memcpy(&key.daddr, arp->tpa, 4);
			if (pass_lookup(&key))
				return 1;
		}
		key.daddr = 0;
		return pass_lookup(&key);
	}
	return pass_lookup(&key);
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + delta), checksums in network order. */
static __always_inline __u16 csum_apply(__u16 check_be, __u32 delta)
{
	__u32 sum = (__u16)~bpf_ntohs(check_be) + delta;
	return bpf_htons((__u16)~csum_fold(sum));
}

/* Counts a frame of FRAME_LEN bytes (as received) on A and redirects it. */
static __always_inline int fast_send(struct wl_flow_action *a, __u64 frame_len)
{
	/* Plain adds, no clock: a flow's frames come in on one receive queue,
	 * so one CPU at a time (a rare lost count costs only the count); the
	 * daemon reads `packets` once a second and takes a change for "seen"
	 * (Sources/Lab/NodeFastPath.swift). Atomics and bpf_ktime_get_ns()
	 * were a measurable part of a frame's cost here (BENCHMARKS.md). */
	a->packets += 1;
	a->bytes += frame_len;
	count(WL_STAT_FAST_FORWARDED);
	return bpf_redirect_map(&tx_ports, a->out_slot, 0);
}

/* TUN (RFC 2003, the director's `tunnel`): the frame, its TTL - 1, inside a
 * new outer IPv4 header (protocol 4) from outer_saddr to outer_daddr. The
 * outer ID is 0 (the datagram is atomic, RFC 6864 §4.1: DF, and the element
 * writes 0 then too); TOS, DF and TTL are the inner's. What the element
 * would do otherwise goes up untouched: no DF (its outer ID is a counter),
 * Ethernet padding (the element leaves it behind), TTL <= 1, too long. */
static __always_inline int fast_encap(struct xdp_md *ctx, struct wl_flow_action *a, struct iphdr *ip,
				      __u16 total, void *data_end)
{
	if (!(ip->frag_off & bpf_htons(0x4000)) || (void *)ip + total != data_end)
		return -1;
	if (ip->ttl <= 1 || total + sizeof(struct iphdr) > a->max_len)
		return -1;
	/* Room first: nothing is written before the frame can grow. */
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return -1;
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	struct iphdr *inner = outer + 1;
	if ((void *)(inner + 1) > data_end) {
		bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr));
		return -1;
	}
	__u16 old = ((__u16)inner->ttl << 8) | inner->protocol;
	inner->check = csum_apply(inner->check, (__u16)~old + (__u16)(old - 0x0100));
	inner->ttl -= 1;
	/* The Ethernet header, 20 bytes nearer the front: written whole. */
	__builtin_memcpy(eth->h_dest, a->dst_mac, 6);
	__builtin_memcpy(eth->h_source, a->src_mac, 6);
	eth->h_proto = bpf_htons(ETH_P_IP);
	*(__u8 *)outer = 0x45;                 /* version 4, IHL 5 */
	outer->tos = inner->tos;
	outer->tot_len = bpf_htons(total + sizeof(struct iphdr));
	outer->id = 0;
	outer->frag_off = bpf_htons(0x4000);
	outer->ttl = inner->ttl;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = a->outer_saddr;
	outer->daddr = a->outer_daddr;
	__u16 *words = (void *)outer;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += words[i];
	outer->check = (__u16)~csum_fold(sum);
	return fast_send(a, sizeof(struct ethhdr) + total);
}

/* Returns the XDP action when the fast path took the frame, -1 otherwise. */
static __always_inline int fast_path(struct xdp_md *ctx, __u32 in_slot)
{
	__u32 zero = 0;
	struct wl_fast_config *fc = bpf_map_lookup_elem(&fast_config, &zero);
	if (!fc || !fc->enabled)
		return -1;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->version != 4)
		return -1;
	if (ip->frag_off & bpf_htons(0x3fff))   /* MF or an offset: a fragment */
		return -1;
	/* A header the element would drop (bad checksum, a length the frame
	 * does not hold) goes up, so it is dropped and counted there. */
	__u16 *words = (void *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += words[i];
	if (csum_fold(sum) != 0xffff)
		return -1;
	__u16 total = bpf_ntohs(ip->tot_len);
	if (total < 28 || (void *)ip + total > data_end)
		return -1;
	__u16 *ports_ = (void *)(ip + 1);
	/* (clang would drop this check as implied by the length check above,
	 * which the verifier cannot follow: hide data_end's value from it.) */
	asm volatile("" : "+r"(data_end));
	if ((void *)(ports_ + 2) > data_end)
		return -1;
	__u16 *l4check;
	if (ip->protocol == IPPROTO_TCP) {
		__u8 *tcp = (void *)ports_;
		if ((void *)(tcp + 20) > data_end)
			return -1;
		/* FIN, SYN, RST: the element sees state changes; and a segment
		 * without ACK is one no established connection sends. */
		if ((tcp[13] & 0x17) != 0x10)
			return -1;
		l4check = (void *)(tcp + 16);
	} else if (ip->protocol == IPPROTO_UDP) {
		__u8 *udp = (void *)ports_;
		if ((void *)(udp + 8) > data_end)
			return -1;
		l4check = (void *)(udp + 6);
	} else {
		return -1;
	}
	struct wl_flow_key key = {
		.saddr = ip->saddr, .daddr = ip->daddr,
		.sport = ports_[0], .dport = ports_[1],
		.proto = ip->protocol, .in_slot = (__u16)in_slot,
	};
	__builtin_memcpy(key.dst_mac, eth->h_dest, 6);
	__builtin_memcpy(key.src_mac, eth->h_source, 6);
	struct wl_flow_action *a = bpf_map_lookup_elem(&fast_flows, &key);
	if (!a)
		return -1;
	if (a->generation != fc->generation) {
		count(WL_STAT_FAST_STALE);
		return -1;
	}
	if (a->encap)                           /* TUN: a frame that grows */
		return fast_encap(ctx, a, ip, total, data_end);
	if (total > a->max_len)
		return -1;
	if (a->dec_ttl && ip->ttl <= 1)
		return -1;

	__builtin_memcpy(eth->h_dest, a->dst_mac, 6);
	__builtin_memcpy(eth->h_source, a->src_mac, 6);
	__u32 ipdelta = a->ip_delta;
	if (a->dec_ttl) {
		/* The TTL/protocol word: ~old + new, new = old - 0x0100. */
		__u16 old = ((__u16)ip->ttl << 8) | ip->protocol;
		ipdelta += (__u16)~old + (__u16)(old - 0x0100);
		ip->ttl -= 1;
	}
	ip->saddr = a->saddr;
	ip->daddr = a->daddr;
	ip->check = csum_apply(ip->check, ipdelta);
	ports_[0] = a->sport;
	ports_[1] = a->dport;
	if (ip->protocol == IPPROTO_TCP) {
		*l4check = csum_apply(*l4check, a->l4_delta);
	} else if (*l4check != 0) {             /* UDP without a checksum stays without */
		__u16 c = csum_apply(*l4check, a->l4_delta);
		*l4check = c ? c : 0xffff;
	}
	return fast_send(a, (__u64)(data_end - data));
}

SEC("xdp")
int wirelab_xdp(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	struct wl_port *port = bpf_map_lookup_elem(&ports, &ifindex);
	if (!port) {
		count(WL_STAT_PASS_UNKNOWN);
		return XDP_PASS;
	}
	__u32 zero = 0;
	struct wl_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_PASS;

	/* Copied before anything below may rewrite the frame; written to
	 * the ring on every way out, with the path it took. */
	struct wl_capture_record *rec = 0;
	__u32 cap = 0;
	if (port->flags & WL_PORT_CAPTURE) {
		rec = bpf_map_lookup_elem(&capture_scratch, &zero);
		if (rec)
			cap = capture_copy(ctx, rec, cfg->snaplen);
	}
	__u32 slot = port->slot;

	if (cfg->pass_rules && pass_to_kernel(ctx)) {
		count(WL_STAT_PASS_RULE);
		capture_emit(rec, cap, 0);
		return XDP_PASS;
	}

	int fast = fast_path(ctx, slot);
	if (fast >= 0) {
		capture_emit(rec, cap, WL_CAPTURE_FAST);
		return fast;
	}
	capture_emit(rec, cap, 0);

	__u32 queue = ctx->rx_queue_index;
	if (queue >= WL_MAX_QUEUES || slot >= WL_MAX_PORTS) {
		count(WL_STAT_PASS_NO_SOCKET);
		return XDP_PASS;
	}
	__u32 key = slot * WL_MAX_QUEUES + queue;
	long action = bpf_redirect_map(&xsks, key, XDP_PASS);
	count(action == XDP_REDIRECT ? WL_STAT_REDIRECTED : WL_STAT_PASS_NO_SOCKET);
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
