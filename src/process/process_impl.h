/* A started child (conc/process.h), shared by the launcher (spawn.c) and the
 * handle's calls (process.c). */
#ifndef CONC_PROCESS_IMPL_H
#define CONC_PROCESS_IMPL_H

#include "conc/process.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>

struct conc_process {
    pid_t pid;
    bool via_server; /* a function's child, forked by the fork server: its
                        exit status comes from the server (forkserver.c) */
    uint32_t gen;    /* the fork generation it was started in */
    uint32_t epoch;  /* and the server (forkserver.c) */
    _Atomic int lost; /* 0, or why its status can never come: CONC_EBROKEN
                        (its server died), CONC_ECHILD (a fork's copy) */
    int pidfd;          /* -1 where the kernel has no pidfd (then waitid) */
    int stdio_fd[3];    /* the parent's ends of CONC_STDIO_PIPE streams; -1 */
    bool detached;
    /* Reaping: one joiner at a time takes the exit status; the others then
     * read it. Guarded by lock; reaped is also read without it. */
    pthread_mutex_t lock;
    _Atomic bool reaped;
    int exit_code;
};

/* Forks and execs what a conc_process_spawn call asked for, from the
 * calling thread (spawn.c): fills p->pid and p->stdio_fd, returns 0 or the
 * exec's error as a conc code. */
struct conc__spawn_req {
    const char *program;
    char *const *argv, *const *envp;
    const conc_process_opts *opts;
    sigset_t mask; /* the requesting thread's signal mask: the child's */
    conc_process *p;
    int keep_fd; /* -1, or a descriptor the child gets as its fd 3 */
};
int conc__spawn_here(struct conc__spawn_req *req);
/* The same, from conc's spawner thread (a thread that lives as long as the
 * process, so the child's death signal is tied to the process). */
int conc__spawn_via_spawner(struct conc__spawn_req *req);

/* The fork server (forkserver.c). */
/* Called first by the library's constructor: in a process started as the
 * fork server, serves and never returns; elsewhere returns at once. */
void conc__forkserver_enter_if_asked(void);
/* Starts fn(arg) in a child of the fork server; fills p (pid, pidfd). The
 * child gets fds[0..nfds) (at most 4) as its descriptors 3, 4, ... */
int conc__forkserver_start(conc_process *p, conc_process_fn fn, const void *arg, size_t size,
                           const int *fds, size_t nfds);
/* conc_process_start with descriptors passed to the child, as above. */
int conc__process_start_fds(conc_process **out, conc_process_fn fn, const void *arg, size_t size,
                            const int *fds, size_t nfds);
/* The fork server connection's socket and pidfd (-1: none), which live as
 * long as the process: what a descriptor-leak check must not count. */
void conc__forkserver_fds(int fds[2]);
/* The exit code of p, a child of the fork server that has ended (its pidfd
 * is readable), by the deadline: 0 with *code set, or an error. */
int conc__forkserver_status(conc_process *p, int64_t deadline, int *code);

#endif
