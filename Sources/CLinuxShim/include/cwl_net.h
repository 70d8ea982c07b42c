// cwl_net.h — kernel headers and small helpers for LinuxNet's rtnetlink,
// namespace, ethtool and process code. Every helper says why it exists:
// Swift imports C structs, enums and plain integer #defines, but not
// function-like macros, variadic functions (ioctl) or declarations that glibc
// hides behind _GNU_SOURCE.
#ifndef CWL_NET_H
#define CWL_NET_H

#include <stdint.h>
#include <sys/types.h>
#include <spawn.h>
// glibc's net/if.h must come before any linux/if*.h header: linux/libc-compat.h
// then suppresses the kernel's duplicate IFF_* / struct ifreq definitions.
#include <net/if.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/veth.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/magic.h>
#include <linux/sched.h>  // CLONE_NEWNET (glibc shows it only under _GNU_SOURCE)
#include <sys/epoll.h>    // EventSet (not in the Glibc module)

// MARK: netlink's function-like macros (not imported by Swift).
// LinuxNet's encoder computes alignment in Swift for speed; these exist so the
// tests can check that Swift arithmetic against the uapi macros themselves.

/// NLMSG_ALIGN(len): netlink messages are padded to 4 bytes.
static inline uint32_t cwl_nlmsg_align(uint32_t len) { return NLMSG_ALIGN(len); }
/// NLMSG_HDRLEN: aligned size of struct nlmsghdr (16).
static inline uint32_t cwl_nlmsg_hdrlen(void) { return NLMSG_HDRLEN; }
/// NLMSG_LENGTH(len): header plus payload, unpadded.
static inline uint32_t cwl_nlmsg_length(uint32_t len) { return NLMSG_LENGTH(len); }
/// RTA_ALIGN(len): route attributes are padded to 4 bytes.
static inline uint32_t cwl_rta_align(uint32_t len) { return RTA_ALIGN(len); }
/// RTA_LENGTH(len): struct rtattr plus payload, unpadded (what rta_len holds).
static inline uint32_t cwl_rta_length(uint32_t len) { return RTA_LENGTH(len); }
/// RTNH_ALIGN(len): multipath next hops (struct rtnexthop) are padded to 4.
static inline uint32_t cwl_rtnh_align(uint32_t len) { return RTNH_ALIGN(len); }
/// RTNH_LENGTH(len): struct rtnexthop plus its attributes, unpadded.
static inline uint32_t cwl_rtnh_length(uint32_t len) { return RTNH_LENGTH(len); }

// MARK: calls Swift cannot make directly.

/// ioctl(fd, SIOCETHTOOL, &ifr) with ifr.ifr_name = ifname, ifr.ifr_data = cmd.
/// Why: ioctl is variadic (Swift does not import it) and struct ifreq is a
/// union of unions that Swift imports awkwardly. Returns ioctl's result
/// (-1 with errno set on failure; ENAMETOOLONG if ifname does not fit).
int cwl_ethtool_ioctl(int fd, const char *ifname, void *cmd);

/// ioctl(fd, SIOCGIFFLAGS) for ifname: 1 when the interface is up and
/// running (IFF_UP and IFF_RUNNING: a veth runs only while it has carrier,
/// i.e. its peer is up too), 0 when not, -1 with errno set on failure.
/// Why: as above (variadic ioctl, struct ifreq); it allocates nothing, so
/// the daemon can ask several times a second.
int cwl_interface_running(int fd, const char *ifname);

/// statfs(path).f_type == NSFS_MAGIC: is `path` a bind-mounted namespace
/// (what `ip netns add` leaves), not a leftover empty file?
/// Why: Swift's Glibc module does not export statfs.
/// Returns 1 (yes), 0 (no), -1 with errno set (statfs failed).
int cwl_is_nsfs(const char *path);

/// pipe2(fds, O_CLOEXEC). Why: pipe2 is a GNU extension Swift's Glibc module
/// hides; plain pipe()+fcntl would race with posix_spawn on other threads.
int cwl_pipe_cloexec(int fds[2]);

/// The POSIX_SPAWN_SETSID flag (glibc ≥ 2.26). Why: glibc defines it only
/// under _GNU_SOURCE, which Swift's Glibc module is not built with.
short cwl_posix_spawn_setsid_flag(void);
int cwl_posix_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
