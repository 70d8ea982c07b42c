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

/// Makes the kernel refuse bpf(BPF_PROG_TEST_RUN) with EPERM on the calling
/// thread (and threads it creates) from now on: a seccomp filter, which binds
/// only the thread that installs it. `wirelab bench forward` uses it to
/// rehearse, on a host that allows XDP live frames, a host that refuses them
/// (WIRELAB_BENCH_REFUSE_LIVE_FRAMES=1). Why in C: <linux/seccomp.h>,
/// <linux/filter.h> and the syscall number are not in Glibc's module.
/// 0 or -errno.
int cwl_refuse_bpf_test_run_on_this_thread(void);

#endif
