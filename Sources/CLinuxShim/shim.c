#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "CLinuxShim.h"

int cwl_setns(int fd, int nstype) { return setns(fd, nstype); }
int cwl_unshare(int flags) { return unshare(flags); }
pid_t cwl_gettid(void) { return (pid_t)syscall(SYS_gettid); }
