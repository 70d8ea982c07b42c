// CXDP: libxdp (AF_XDP sockets, UMEM, rings) and libbpf, found with pkg-config.
// xsk.h's ring helpers are static inline, so Swift calls them directly.
#ifndef CXDP_SHIM_H
#define CXDP_SHIM_H
#include <linux/if_xdp.h>
#include <linux/if_link.h>
#include <xdp/xsk.h>
#include <xdp/libxdp.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#endif
