// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// wirelab_decap — IPIP decapsulation for the real servers of TUN services.
//
// This kernel has no `ipip` module, so a TUN real server cannot terminate the
// director's tunnel itself. The lab attaches this program at tc ingress (a
// tcx BPF link) of each interface of such a host. For every frame it:
//
//   1. passes (TCX_PASS, untouched) anything that is not IPv4 protocol 4
//      (IPIP) to one of the host's own addresses (`hosts`), and IPIP whose
//      outer source is not one of its directors' addresses (`sources`): a
//      tunnel from anyone else is not the director's (the kernel, which
//      knows no protocol 4 here, drops it);
//   2. passes, untouched, an IPIP packet whose inner packet is not IPv4 to
//      one of the host's VIPs (`vips`), and outer fragments (the kernel
//      reassembles nothing for a protocol it does not know: they die there,
//      as they would without this program);
//   3. otherwise removes the outer IPv4 header (bpf_skb_adjust_room, at the
//      MAC layer) and lets the inner packet continue up the stack, where it
//      is delivered to the VIP on lo like a DR packet.
//
// Why tc ingress and not XDP: packet taps (libpcap, the lab's captures of
// kernel hosts) run after XDP but before tc ingress, so with tc the host's
// link capture shows the IPIP packet exactly as it crossed the veth.
//
// Maps are filled by Sources/LinuxNet/TunnelDecapsulator.swift; change both
// together. Build: scripts/build-bpf.sh (regenerates
// Sources/LinuxNet/Generated/WirelabDecapObject.swift).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define WL_DECAP_MAX_ADDRESSES 256
#define WL_TCX_PASS 0

/* hosts: outer destination addresses accepted (the host's own, network
 * order) → 1. vips: inner destination addresses accepted → 1. sources: outer
 * source addresses accepted (the addresses of the directors whose TUN
 * services this host serves) → 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WL_DECAP_MAX_ADDRESSES);
	__type(key, __u32);
	__type(value, __u32);
} hosts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WL_DECAP_MAX_ADDRESSES);
	__type(key, __u32);
	__type(value, __u32);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WL_DECAP_MAX_ADDRESSES);
	__type(key, __u32);
	__type(value, __u32);
} sources SEC(".maps");

/* stats (per CPU), indexes: */
enum {
	WL_DECAP_DECAPSULATED = 0, /* outer header removed */
	WL_DECAP_NOT_FOR_US,       /* IPIP to an address not in hosts */
	WL_DECAP_NOT_A_VIP,        /* inner destination not in vips */
	WL_DECAP_MALFORMED,        /* truncated or bad header lengths */
	WL_DECAP_FRAGMENT,         /* outer packet is a fragment */
	WL_DECAP_ERROR,            /* bpf_skb_adjust_room failed */
	WL_DECAP_NOT_FROM_DIRECTOR, /* outer source not in sources */
	WL_DECAP_STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WL_DECAP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &index);
	if (value)
		*value += 1;
}

SEC("tc")
int wirelab_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return WL_TCX_PASS;
	struct iphdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > data_end || outer->protocol != IPPROTO_IPIP)
		return WL_TCX_PASS;
	__u32 daddr = outer->daddr;
	if (!bpf_map_lookup_elem(&hosts, &daddr)) {
		count(WL_DECAP_NOT_FOR_US);
		return WL_TCX_PASS;
	}
	__u32 saddr = outer->saddr;
	if (!bpf_map_lookup_elem(&sources, &saddr)) {
		count(WL_DECAP_NOT_FROM_DIRECTOR);
		return WL_TCX_PASS;
	}
	__u32 hlen = (outer->ihl & 0xf) * 4;
	if (outer->version != 4 || hlen < sizeof(*outer) || bpf_ntohs(outer->tot_len) < hlen + sizeof(*outer)) {
		count(WL_DECAP_MALFORMED);
		return WL_TCX_PASS;
	}
	if (outer->frag_off & bpf_htons(0x3fff)) {   /* MF or an offset */
		count(WL_DECAP_FRAGMENT);
		return WL_TCX_PASS;
	}
	/* hlen is 20 ... 60: a constant bound the verifier can follow. */
	if (hlen > 60)
		return WL_TCX_PASS;
	struct iphdr *inner = (void *)outer + hlen;
	if ((void *)(inner + 1) > data_end) {
		count(WL_DECAP_MALFORMED);
		return WL_TCX_PASS;
	}
	__u32 inner_daddr = inner->daddr;
	if (inner->version != 4 || !bpf_map_lookup_elem(&vips, &inner_daddr)) {
		count(WL_DECAP_NOT_A_VIP);
		return WL_TCX_PASS;
	}
	if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_MAC, 0) < 0) {
		count(WL_DECAP_ERROR);
		return WL_TCX_PASS;
	}
	count(WL_DECAP_DECAPSULATED);
	return WL_TCX_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
