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
