#ifndef BIGMODEL_BENCH_CLINUX_H
#define BIGMODEL_BENCH_CLINUX_H
// Linux calls Swift cannot reach through Glibc: prctl is variadic, pipe2 and O_DIRECT need _GNU_SOURCE.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when its parent thread dies.
static inline int clinux_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL); }

/// pipe2(fds, O_CLOEXEC).
static inline int clinux_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

/// open(path, O_RDONLY | O_DIRECT | O_CLOEXEC): reads that go around the page cache.
static inline int clinux_open_direct(const char *path) { return open(path, O_RDONLY | O_DIRECT | O_CLOEXEC); }
#endif
