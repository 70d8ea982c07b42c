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

int cwl_is_nsfs(const char *path) {
    struct statfs st;
    if (statfs(path, &st) != 0) return -1;
    return st.f_type == NSFS_MAGIC ? 1 : 0;
}

int cwl_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

short cwl_posix_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
