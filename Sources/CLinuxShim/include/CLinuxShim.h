// CLinuxShim: Linux kernel headers (netlink, rtnetlink, if_link, veth,
// ethtool) and the few calls Swift cannot reach directly: functions Glibc's
// module does not export without _GNU_SOURCE (setns, unshare) and netlink's
// function-like macros (NLMSG_ALIGN, RTA_*), which the importer drops.
#ifndef CLINUXSHIM_H
#define CLINUXSHIM_H
#include <stdint.h>
#include <sys/types.h>
#include "cwl_net.h"

int cwl_setns(int fd, int nstype);
int cwl_unshare(int flags);
pid_t cwl_gettid(void);

#endif
