// Helpers declared in include/cwl_net.h; see there for why each exists.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include "cwl_net.h"

int cwl_ethtool_ioctl(int fd, const char *ifname, void *cmd) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (strlen(ifname) >= sizeof ifr.ifr_name) { errno = ENAMETOOLONG; return -1; }
    strncpy(ifr.ifr_name, ifname, sizeof ifr.ifr_name - 1);
    ifr.ifr_data = cmd;
    return ioctl(fd, SIOCETHTOOL, &ifr);
}

int cwl_interface_running(int fd, const char *ifname) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (strlen(ifname) >= sizeof ifr.ifr_name) { errno = ENAMETOOLONG; return -1; }
    strncpy(ifr.ifr_name, ifname, sizeof ifr.ifr_name - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) return -1;
    return (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING) ? 1 : 0;
}

int cwl_is_nsfs(const char *path) {
    struct statfs st;
    if (statfs(path, &st) != 0) return -1;
    return st.f_type == NSFS_MAGIC ? 1 : 0;
}

int cwl_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

short cwl_posix_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34) needs _GNU_SOURCE,
// which Swift's Glibc module does not define. A spawned lab process must not
// inherit the spawner's other descriptors: a leaked pipe or socketpair keeps
// a waiting parent (e.g. Foundation's Process) from ever seeing EOF.
int cwl_posix_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
