// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// afxdp_forwarder — the practical ceiling of a userspace forwarder on the
// veth path of `wirelab bench forward` (gen ── IN [forwarder] OUT ── sink).
//
// One thread, two AF_XDP sockets in copy mode (the mode veth offers) that
// share one UMEM, so a received frame is sent from where it was received:
// no copy in user space, no parsing, no table — the frame's two MAC
// addresses are rewritten and that is all. What it reaches is what any
// userspace design pays for the copy-mode socket alone (a copy into the
// UMEM on receive, an skb and a copy per sent frame); our daemon adds its
// elements, its copy into the egress port's TX frames and its bookkeeping.
// It sleeps in poll() when nothing arrives, as the daemon does.
//
//   afxdp_forwarder IN OUT DST-MAC SRC-MAC
//
// Runs until SIGTERM or SIGINT, then prints one line to stdout:
//   received=N sent=N dropped=N
// Built at benchmark time by `wirelab bench forward` (embedded in
// Sources/Bench/Generated/ by scripts/embed-c-sources.sh): cc -O2 … -lxdp -lbpf.

#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#define FRAMES 4096
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING 2048
#define BATCH 64

static volatile sig_atomic_t stopping;
static void stop(int sig) { (void)sig; stopping = 1; }

static int parse_mac(const char *text, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(text, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -1;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

static void fail(const char *what, int err)
{
	fprintf(stderr, "afxdp_forwarder: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

int main(int argc, char **argv)
{
	uint8_t dst[6], src[6];
	if (argc != 5 || parse_mac(argv[3], dst) || parse_mac(argv[4], src)) {
		fprintf(stderr, "usage: afxdp_forwarder IN OUT DST-MAC SRC-MAC\n");
		return 2;
	}
	signal(SIGTERM, stop);
	signal(SIGINT, stop);

	size_t size = (size_t)FRAMES * FRAME_SIZE;
	void *buffer = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buffer == MAP_FAILED)
		fail("mmap", errno);

	// The UMEM's own fill/completion rings serve IN; OUT has its own pair.
	struct xsk_ring_prod in_fill, out_fill, out_tx;
	struct xsk_ring_cons in_comp, out_comp, in_rx;
	struct xsk_umem_config ucfg = {
		.fill_size = RING, .comp_size = RING, .frame_size = FRAME_SIZE,
		.frame_headroom = 0, .flags = 0,
	};
	struct xsk_umem *umem;
	int err = xsk_umem__create(&umem, buffer, size, &in_fill, &in_comp, &ucfg);
	if (err)
		fail("xsk_umem__create", err);

	struct xsk_socket_config in_cfg = {
		.rx_size = RING, .tx_size = RING, .bind_flags = XDP_COPY,
	};
	struct xsk_socket *in;
	err = xsk_socket__create(&in, argv[1], 0, umem, &in_rx, NULL, &in_cfg);
	if (err)
		fail("xsk_socket__create (IN)", err);
	// OUT only sends: no XDP program there, nothing received.
	struct xsk_socket_config out_cfg = {
		.rx_size = RING, .tx_size = RING, .bind_flags = XDP_COPY,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
	};
	struct xsk_socket *out;
	err = xsk_socket__create_shared(&out, argv[2], 0, umem, NULL, &out_tx, &out_fill, &out_comp, &out_cfg);
	if (err)
		fail("xsk_socket__create_shared (OUT)", err);

	// Frames 0 ..< RING start in IN's fill ring; the rest are free.
	uint64_t free_frames[FRAMES];
	unsigned n_free = 0;
	for (unsigned i = RING; i < FRAMES; i++)
		free_frames[n_free++] = (uint64_t)i * FRAME_SIZE;
	uint32_t idx;
	if (xsk_ring_prod__reserve(&in_fill, RING, &idx) != RING)
		fail("filling IN's fill ring", ENOSPC);
	for (unsigned i = 0; i < RING; i++)
		*xsk_ring_prod__fill_addr(&in_fill, idx + i) = (uint64_t)i * FRAME_SIZE;
	xsk_ring_prod__submit(&in_fill, RING);

	uint64_t received = 0, sent = 0, dropped = 0;
	unsigned in_flight = 0;
	struct pollfd pfd = { .fd = xsk_socket__fd(in), .events = POLLIN };
	while (!stopping) {
		// Completed sends: their frames go back to IN's fill ring.
		uint32_t cidx;
		unsigned done = xsk_ring_cons__peek(&out_comp, RING, &cidx);
		for (unsigned i = 0; i < done; i++)
			free_frames[n_free++] = *xsk_ring_cons__comp_addr(&out_comp, cidx + i);
		xsk_ring_cons__release(&out_comp, done);
		in_flight -= done;
		if (n_free) {
			// (reserve is all or nothing: ask for what fits.)
			uint32_t fidx;
			unsigned n = xsk_prod_nb_free(&in_fill, n_free);
			n = xsk_ring_prod__reserve(&in_fill, n < n_free ? n : n_free, &fidx);
			for (unsigned i = 0; i < n; i++)
				*xsk_ring_prod__fill_addr(&in_fill, fidx + i) = free_frames[--n_free];
			xsk_ring_prod__submit(&in_fill, n);
		}

		uint32_t ridx;
		unsigned got = xsk_ring_cons__peek(&in_rx, BATCH, &ridx);
		if (!got) {
			if (in_flight)
				sendto(xsk_socket__fd(out), NULL, 0, MSG_DONTWAIT, NULL, 0);
			poll(&pfd, 1, in_flight ? 1 : 100);
			continue;
		}
		received += got;
		uint32_t tidx;
		unsigned room = xsk_prod_nb_free(&out_tx, got);
		room = xsk_ring_prod__reserve(&out_tx, room < got ? room : got, &tidx);
		for (unsigned i = 0; i < got; i++) {
			const struct xdp_desc *rx = xsk_ring_cons__rx_desc(&in_rx, ridx + i);
			if (i >= room) {
				free_frames[n_free++] = rx->addr;   // TX ring full: dropped
				dropped++;
				continue;
			}
			uint8_t *frame = xsk_umem__get_data(buffer, rx->addr);
			memcpy(frame, dst, 6);
			memcpy(frame + 6, src, 6);
			struct xdp_desc *tx = xsk_ring_prod__tx_desc(&out_tx, tidx + i);
			tx->addr = rx->addr;
			tx->len = rx->len;
		}
		xsk_ring_cons__release(&in_rx, got);
		xsk_ring_prod__submit(&out_tx, room);
		in_flight += room;
		sent += room;
		// Copy mode sends only inside this call.
		sendto(xsk_socket__fd(out), NULL, 0, MSG_DONTWAIT, NULL, 0);
	}
	printf("received=%llu sent=%llu dropped=%llu\n", (unsigned long long)received,
	       (unsigned long long)sent, (unsigned long long)dropped);
	fflush(stdout);
	xsk_socket__delete(out);
	xsk_socket__delete(in);
	xsk_umem__delete(umem);
	munmap(buffer, size);
	return 0;
}
