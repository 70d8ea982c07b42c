// CLinuxShimPorts: the port layer's C helpers (AF_PACKET ports).
//
// Why a shim: Swift's Glibc module exports neither <linux/if_packet.h>
// (sockaddr_ll, PACKET_IGNORE_OUTGOING, PACKET_STATISTICS) nor recvmmsg /
// sendmmsg / struct mmsghdr (they need _GNU_SOURCE). This header uses plain C
// types only and includes no kernel header, so it cannot clash with the other
// headers of this module (the whole include/ directory is one module).
#ifndef CLINUXSHIM_PORTS_H
#define CLINUXSHIM_PORTS_H
#include <stdint.h>

/// Opens socket(AF_PACKET, SOCK_RAW, ETH_P_ALL), non-blocking and close-on-exec,
/// sets PACKET_IGNORE_OUTGOING (the socket does not see frames sent on the
/// interface, its own included), sizes its buffers (bytes; 0 keeps the
/// default; tries SO_*BUFFORCE first) and binds it to `ifindex`.
/// Returns the fd, or -errno with `*failed_call` naming the call that failed.
int cwl_packet_open(int ifindex, int rcvbuf, int sndbuf, const char **failed_call);

/// PACKET_STATISTICS: frames the socket received and dropped since the last
/// call (the kernel resets the counters when read). 0 or -errno.
int cwl_packet_statistics(int fd, uint32_t *packets, uint32_t *drops);

/// mmsghdr + iovec arrays for `capacity` messages, allocated once per port.
typedef struct cwl_mmsg cwl_mmsg;
cwl_mmsg *cwl_mmsg_new(uint32_t capacity);
void cwl_mmsg_free(cwl_mmsg *m);

/// recvmmsg(MSG_DONTWAIT | MSG_TRUNC) of up to `count` frames into the
/// buffers base + i * stride (each `buffer_size` bytes). lengths[i] is the
/// frame's length on the wire: larger than buffer_size means truncated.
/// Returns the number received (0 when none is waiting) or -errno.
int cwl_mmsg_recv(cwl_mmsg *m, int fd, void *base, uint32_t stride, uint32_t buffer_size,
                  uint32_t *lengths, uint32_t count);

/// sendmmsg(MSG_DONTWAIT) of `count` frames base + i * stride, lengths[i]
/// bytes each. Returns the number sent (possibly fewer than count) or -errno
/// when not even the first could be sent.
int cwl_mmsg_send(cwl_mmsg *m, int fd, const void *base, uint32_t stride,
                  const uint32_t *lengths, uint32_t count);

/// An AF_PACKET socket with a TPACKET_V2 transmit ring (PACKET_TX_RING) bound
/// to `ifindex`: a traffic generator's way to hand the kernel many frames per
/// system call without sendmmsg's per-message copy of headers. With
/// `qdisc_bypass`, frames skip the interface's qdisc (PACKET_QDISC_BYPASS).
/// Why in C: the ring's header layout (struct tpacket2_hdr) and its data
/// offset come from <linux/if_packet.h>, which Glibc's module does not export.
typedef struct cwl_tx_ring cwl_tx_ring;

/// Opens the socket and maps a ring of `frame_count` slots of `frame_size`
/// bytes (a power of two, at least 128). NULL on failure, with `*error` set
/// to errno and `*failed_call` naming the call.
cwl_tx_ring *cwl_tx_ring_open(int ifindex, uint32_t frame_size, uint32_t frame_count, int qdisc_bypass,
                              int *error, const char **failed_call);

/// Copies up to `max` frames into free slots, frame i being
/// templates + ((*next + i) % template_count) * length, advances *next, then
/// asks the kernel to send every queued slot (send with MSG_DONTWAIT).
/// Returns the frames queued, or -errno when the kick failed.
int cwl_tx_ring_send(cwl_tx_ring *ring, const void *templates, uint32_t length, uint32_t template_count,
                     uint32_t *next, uint32_t max);

/// Slots the kernel has not given back yet (queued or being sent).
uint32_t cwl_tx_ring_pending(cwl_tx_ring *ring);

/// Unmaps the ring and closes the socket.
void cwl_tx_ring_close(cwl_tx_ring *ring);

#endif
