// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// wirelab_bench — the two programs of `wirelab bench forward`.
//
// wl_gen (XDP), the live-frames generator: BPF_PROG_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES runs it on copies of one template frame and
// sends each out of the generator's veth (XDP_TX). It writes the template's
// Ethernet + IPv4 header (34 bytes, `gen.header`) over the frame every
// time — live frames recycle their pages with whatever the last user left
// in them (a router's rewritten MACs and TTL) — and turns the UDP source
// port (offset 34) into base | ((port + 1) & mask): the per-page state that
// rotates the frames over the flows (nothing on the path rewrites UDP).
// `gen` is set by the loader before load (.rodata, frozen: the verifier
// sees constants).
//
// wl_redirect (XDP), the in-kernel ceiling row: on the forwarder's ingress
// veth, writes the sink's and the egress veth's MACs into each frame and
// redirects it out of the egress veth (bpf_redirect) — no lookup, no TTL,
// no checksum: the most any forwarder on this path can move without
// leaving the kernel. `redirect` is set by the loader before load, in its
// own section (.rodata.redirect) so `gen` keeps .rodata to itself.
//
// wl_sink (tc, attached as a tcx ingress link on the sink's veth): drops
// everything but ARP (the router under test resolves the sink). Frames are
// counted by the veth's rx_packets, before tc.
//
// Loaded by Sources/LinuxNet/BenchPrograms.swift; change both together.
// Build: scripts/build-bpf.sh (regenerates
// Sources/LinuxNet/Generated/WirelabBenchObject.swift).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// TCX_PASS / TCX_DROP (kernel 6.6) are newer than the installed headers;
// they equal TC_ACT_OK / TC_ACT_SHOT.
#define WL_TCX_PASS 0
#define WL_TCX_DROP 2

struct gen_config {
	__u32 header_words[8]; // header bytes 0..31, as they sit in the frame
	__u16 header_tail;     // header bytes 32..33
	__u16 port_base;       // host order; no bit of port_mask
	__u16 port_mask;       // flows - 1 (flows a power of two)
};

const volatile struct gen_config gen = {};

SEC("xdp")
int wl_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 42 > end) // Ethernet + IPv4 + UDP
		return XDP_TX;
	__u32 *words = data;
#pragma unroll
	for (int i = 0; i < 8; i++)
		words[i] = gen.header_words[i];
	*(__u16 *)(data + 32) = gen.header_tail;
	__u16 *port = data + 34;
	__u16 next = ((bpf_ntohs(*port) + 1) & gen.port_mask) | gen.port_base;
	*port = bpf_htons(next);
	return XDP_TX;
}

struct redirect_config {
	__u8 destination[6];   // the sink's MAC
	__u8 source[6];        // the egress veth's MAC
	__u32 ifindex;         // the egress veth
};

const volatile struct redirect_config redirect SEC(".rodata.redirect") = {};

SEC("xdp")
int wl_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_DROP;
	__builtin_memcpy(data, (const void *)redirect.destination, 6);
	__builtin_memcpy(data + 6, (const void *)redirect.source, 6);
	return bpf_redirect(redirect.ifindex, 0);
}

SEC("tc")
int wl_sink(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_ARP) ? WL_TCX_PASS : WL_TCX_DROP;
}

char LICENSE[] SEC("license") = "GPL";
