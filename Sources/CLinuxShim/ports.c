// The port layer's C helpers; see include/CLinuxShimPorts.h for why they exist.
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include "CLinuxShimPorts.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

int cwl_packet_open(int ifindex, int rcvbuf, int sndbuf, const char **failed_call) {
    const char *dummy;
    if (!failed_call) failed_call = &dummy;
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) { *failed_call = "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)"; return -errno; }
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
        *failed_call = "setsockopt(PACKET_IGNORE_OUTGOING)"; goto fail;
    }
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) {
        *failed_call = "setsockopt(SO_RCVBUF)"; goto fail;
    }
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) < 0) {
        *failed_call = "setsockopt(SO_SNDBUF)"; goto fail;
    }
    struct sockaddr_ll addr;
    memset(&addr, 0, sizeof addr);
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { *failed_call = "bind(AF_PACKET)"; goto fail; }
    return fd;
fail:;
    int err = errno;
    close(fd);
    return -err;
}

int cwl_packet_statistics(int fd, uint32_t *packets, uint32_t *drops) {
    struct tpacket_stats st;
    socklen_t len = sizeof st;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return -errno;
    *packets = st.tp_packets;
    *drops = st.tp_drops;
    return 0;
}

struct cwl_mmsg {
    uint32_t capacity;
    struct mmsghdr *msgs;
    struct iovec *iov;
};

cwl_mmsg *cwl_mmsg_new(uint32_t capacity) {
    cwl_mmsg *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->capacity = capacity;
    m->msgs = calloc(capacity, sizeof *m->msgs);
    m->iov = calloc(capacity, sizeof *m->iov);
    if (!m->msgs || !m->iov) { cwl_mmsg_free(m); return NULL; }
    for (uint32_t i = 0; i < capacity; i++) {
        m->msgs[i].msg_hdr.msg_iov = &m->iov[i];
        m->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return m;
}

void cwl_mmsg_free(cwl_mmsg *m) {
    if (!m) return;
    free(m->msgs);
    free(m->iov);
    free(m);
}

int cwl_mmsg_recv(cwl_mmsg *m, int fd, void *base, uint32_t stride, uint32_t buffer_size,
                  uint32_t *lengths, uint32_t count) {
    if (count > m->capacity) count = m->capacity;
    for (uint32_t i = 0; i < count; i++) {
        m->iov[i].iov_base = (char *)base + (size_t)i * stride;
        m->iov[i].iov_len = buffer_size;
        m->msgs[i].msg_hdr.msg_name = NULL;
        m->msgs[i].msg_hdr.msg_namelen = 0;
        m->msgs[i].msg_hdr.msg_control = NULL;
        m->msgs[i].msg_hdr.msg_controllen = 0;
        m->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n;
    do { n = recvmmsg(fd, m->msgs, count, MSG_DONTWAIT | MSG_TRUNC, NULL); } while (n < 0 && errno == EINTR);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < n; i++) lengths[i] = m->msgs[i].msg_len;
    return n;
}

int cwl_mmsg_send(cwl_mmsg *m, int fd, const void *base, uint32_t stride,
                  const uint32_t *lengths, uint32_t count) {
    if (count > m->capacity) count = m->capacity;
    for (uint32_t i = 0; i < count; i++) {
        m->iov[i].iov_base = (char *)base + (size_t)i * stride;
        m->iov[i].iov_len = lengths[i];
        m->msgs[i].msg_hdr.msg_name = NULL;
        m->msgs[i].msg_hdr.msg_namelen = 0;
        m->msgs[i].msg_hdr.msg_control = NULL;
        m->msgs[i].msg_hdr.msg_controllen = 0;
        m->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n;
    do { n = sendmmsg(fd, m->msgs, count, MSG_DONTWAIT); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

// MARK: transmit ring (traffic generation)

#include <sys/mman.h>

#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif

struct cwl_tx_ring {
    int fd;
    uint8_t *map;
    size_t map_size;
    uint32_t frame_size;
    uint32_t frame_count;
    uint32_t head;      // next slot to fill
};

// Where a TPACKET_V2 slot's frame starts: the kernel reads it at
// tp_hdrlen - sizeof(struct sockaddr_ll) (tpacket_fill_skb, no PACKET_TX_HAS_OFF).
#define CWL_TX_DATA_OFFSET (TPACKET2_HDRLEN - sizeof(struct sockaddr_ll))

cwl_tx_ring *cwl_tx_ring_open(int ifindex, uint32_t frame_size, uint32_t frame_count, int qdisc_bypass,
                              int *error, const char **failed_call) {
    int dummy_error;
    const char *dummy_call;
    if (!error) error = &dummy_error;
    if (!failed_call) failed_call = &dummy_call;
    if (frame_size < 128 || (frame_size & (frame_size - 1)) || frame_count == 0) {
        *error = EINVAL; *failed_call = "cwl_tx_ring_open (frame size a power of two >= 128)"; return NULL;
    }
    cwl_tx_ring *ring = calloc(1, sizeof *ring);
    if (!ring) { *error = ENOMEM; *failed_call = "calloc"; return NULL; }
    ring->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);   // protocol 0: receives nothing
    if (ring->fd < 0) { *failed_call = "socket(AF_PACKET, SOCK_RAW, 0)"; goto fail; }
    int version = TPACKET_V2;
    if (setsockopt(ring->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0) {
        *failed_call = "setsockopt(PACKET_VERSION, TPACKET_V2)"; goto fail;
    }
    int one = 1;
    if (qdisc_bypass && setsockopt(ring->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) {
        *failed_call = "setsockopt(PACKET_QDISC_BYPASS)"; goto fail;
    }
    // A block is a multiple of the page size (the kernel requires it) and
    // holds block_size / frame_size frames (frames never span blocks).
    uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);
    uint32_t block_size = frame_size > page ? frame_size : page;
    uint32_t per_block = block_size / frame_size;
    struct tpacket_req req = {
        .tp_block_size = block_size,
        .tp_block_nr = (frame_count + per_block - 1) / per_block,
        .tp_frame_size = frame_size,
    };
    req.tp_frame_nr = req.tp_block_nr * per_block;
    if (setsockopt(ring->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0) {
        *failed_call = "setsockopt(PACKET_TX_RING)"; goto fail;
    }
    ring->frame_size = frame_size;
    ring->frame_count = req.tp_frame_nr;
    ring->map_size = (size_t)req.tp_block_size * req.tp_block_nr;
    ring->map = mmap(NULL, ring->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, ring->fd, 0);
    if (ring->map == MAP_FAILED) { ring->map = NULL; *failed_call = "mmap(PACKET_TX_RING)"; goto fail; }
    struct sockaddr_ll addr;
    memset(&addr, 0, sizeof addr);
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = 0;
    addr.sll_ifindex = ifindex;
    if (bind(ring->fd, (struct sockaddr *)&addr, sizeof addr) < 0) { *failed_call = "bind(AF_PACKET)"; goto fail; }
    return ring;
fail:
    *error = errno;
    cwl_tx_ring_close(ring);
    return NULL;
}

static inline struct tpacket2_hdr *cwl_tx_slot(cwl_tx_ring *ring, uint32_t i) {
    return (struct tpacket2_hdr *)(ring->map + (size_t)i * ring->frame_size);
}

int cwl_tx_ring_send(cwl_tx_ring *ring, const void *templates, uint32_t length, uint32_t template_count,
                     uint32_t *next, uint32_t max) {
    if (length + CWL_TX_DATA_OFFSET > ring->frame_size || template_count == 0) return -EINVAL;
    uint32_t queued = 0;
    while (queued < max) {
        struct tpacket2_hdr *slot = cwl_tx_slot(ring, ring->head);
        // The kernel sets a slot back to TP_STATUS_AVAILABLE once sent.
        if (__atomic_load_n(&slot->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) break;
        const uint8_t *frame = (const uint8_t *)templates + (size_t)(*next % template_count) * length;
        memcpy((uint8_t *)slot + CWL_TX_DATA_OFFSET, frame, length);
        slot->tp_len = length;
        __atomic_store_n(&slot->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        ring->head = ring->head + 1 == ring->frame_count ? 0 : ring->head + 1;
        *next += 1;
        queued++;
    }
    if (send(ring->fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS) return -errno;
    return (int)queued;
}

uint32_t cwl_tx_ring_pending(cwl_tx_ring *ring) {
    uint32_t pending = 0;
    for (uint32_t i = 0; i < ring->frame_count; i++)
        if (__atomic_load_n(&cwl_tx_slot(ring, i)->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) pending++;
    return pending;
}

void cwl_tx_ring_close(cwl_tx_ring *ring) {
    if (!ring) return;
    if (ring->map) munmap(ring->map, ring->map_size);
    if (ring->fd >= 0) close(ring->fd);
    free(ring);
}
