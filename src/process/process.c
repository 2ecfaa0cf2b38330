/* conc_process: a started child and its handle's calls (conc/process.h).
 *
 * The child is watched through a pidfd, which the kernel makes readable when
 * the child ends: a join sleeps in ppoll() until then or its deadline, and
 * only then reaps (waitid), under p->lock so that one of several joiners
 * takes the status and the others read it. Signals go through the pidfd
 * too (pidfd_send_signal), and under p->lock, so none can reach a process
 * that took the id of a child already reaped. Without pidfds (Linux before
 * 5.3) a timed join checks with waitid(WNOHANG) at growing intervals. */
#define _GNU_SOURCE
#include "process/process_impl.h"

#include "core/deadline.h"
#include "core/misuse.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int conc__check_stdio(const conc_process_opts *o)
{
    if (!o)
        return 0;
    for (int i = 0; i < 3; i++) {
        const conc_stdio *s = &o->stdio[i];
        if (s->mode < CONC_STDIO_INHERIT || s->mode > CONC_STDIO_FD)
            return conc__misuse_at(CONC_EINVAL, "conc_process_spawn", "unknown stdio mode");
        if (s->mode == CONC_STDIO_FILE && !s->path)
            return conc__misuse_at(CONC_EINVAL, "conc_process_spawn",
                                   "CONC_STDIO_FILE without a path");
        if (s->mode == CONC_STDIO_FD && s->fd < 0)
            return conc__misuse_at(CONC_EINVAL, "conc_process_spawn",
                                   "CONC_STDIO_FD with a negative fd");
    }
    return 0;
}

/* A handle with no child yet: no descriptors, its lock ready. */
static conc_process *conc__process_alloc(void)
{
    conc_process *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pidfd = -1;
    for (int i = 0; i < 3; i++)
        p->stdio_fd[i] = -1;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

int conc_process_spawn(conc_process **out, const char *program, char *const argv[],
                       char *const envp[], const conc_process_opts *opts)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "out is NULL");
    *out = NULL;
    if (!program || !*program)
        return CONC__MISUSE(CONC_EINVAL, "no program named");
    if (!argv || !argv[0])
        return CONC__MISUSE(CONC_EINVAL, "argv is empty (argv[0] names the program to itself)");
    int rc = CONC__OPTS_CHECK(opts);
    if (rc == 0)
        rc = conc__check_stdio(opts);
    if (rc != 0)
        return rc;
    conc_process *p = conc__process_alloc();
    if (!p)
        return CONC_ENOMEM;
    p->detached = opts && opts->detached;
    struct conc__spawn_req req = {program, argv, envp, opts, {{0}}, p, -1};
    pthread_sigmask(SIG_BLOCK, NULL, &req.mask);
    /* A child's death signal follows the thread that forks it: the main
     * thread lasts as long as the program, any other may end sooner. */
    bool long_lived = p->detached || gettid() == getpid();
    rc = long_lived ? conc__spawn_here(&req) : conc__spawn_via_spawner(&req);
    if (rc == -ENOEXEC)
        rc = CONC_ENOTSUP; /* not a format this system runs */
    if (rc != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return rc;
    }
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    *out = p;
    return 0;
}

int conc_process_start(conc_process **out, conc_process_fn fn, const void *arg, size_t size,
                       const conc_process_opts *opts)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "out is NULL");
    *out = NULL;
    if (opts)
        return CONC__MISUSE(CONC_EINVAL, "a function start takes no options (pass NULL)");
    if (!fn)
        return CONC__MISUSE(CONC_EINVAL, "fn is NULL");
    if (!arg && size > 0)
        return CONC__MISUSE(CONC_EINVAL, "arg is NULL but size is not 0");
    return conc__process_start_fds(out, fn, arg, size, NULL, 0);
}

/* fn set, arg set when size is. */
int conc__process_start_fds(conc_process **out, conc_process_fn fn, const void *arg, size_t size,
                            const int *fds, size_t nfds)
{
    *out = NULL;
    if (size > CONC_PROCESS_ARG_MAX)
        return CONC_EOVERFLOW;
    conc_process *p = conc__process_alloc();
    if (!p)
        return CONC_ENOMEM;
    int rc = conc__forkserver_start(p, fn, arg, size, fds, nfds);
    if (rc != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- registered functions: a list pushed by constructors, never shrunk ---- */

static _Atomic(struct conc_process_fn_entry *) conc__process_fns;

void conc_process_fn_register(struct conc_process_fn_entry *e)
{
    if (!e || !e->name || !e->fn)
        return;
    struct conc_process_fn_entry *head = atomic_load_explicit(&conc__process_fns, memory_order_relaxed);
    do
        e->next = head;
    while (!atomic_compare_exchange_weak_explicit(&conc__process_fns, &head, e,
                                                  memory_order_release, memory_order_relaxed));
}

conc_process_fn conc_process_fn_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (struct conc_process_fn_entry *e = atomic_load_explicit(&conc__process_fns, memory_order_acquire);
         e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e->fn;
    return NULL;
}

/* The name is resolved here, and the function travels as any other (module
 * and offset): the fork server is entered from conc's constructor, before
 * the program's own constructors have registered anything in it. */
int conc_process_start_named(conc_process **out, const char *name, const void *arg, size_t size,
                             const conc_process_opts *opts)
{
    if (out)
        *out = NULL;
    if (!name)
        return CONC__MISUSE(CONC_EINVAL, "name is NULL");
    conc_process_fn fn = conc_process_fn_lookup(name);
    if (!fn)
        return CONC_ENOENT;
    return conc_process_start(out, fn, arg, size, opts);
}

/* Python's returncode from a waitid result. */
static int conc__exit_code(const siginfo_t *info)
{
    return info->si_code == CLD_EXITED ? info->si_status : -info->si_status;
}

/* Reaps the ended child, once. 0 or CONC_ECHILD (reaped by someone else).
 * A child of the fork server is reaped there: its status comes by message. */
static int conc__reap(conc_process *p, int64_t deadline)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (!atomic_load_explicit(&p->reaped, memory_order_relaxed) && p->via_server) {
        int code;
        rc = conc__forkserver_status(p, deadline, &code);
        if (rc == 0) {
            p->exit_code = code;
            atomic_store_explicit(&p->reaped, true, memory_order_release);
        } else if (rc == CONC_EBROKEN || rc == CONC_ECHILD) {
            atomic_store_explicit(&p->lost, rc, memory_order_release); /* for good */
        }
    } else if (!atomic_load_explicit(&p->reaped, memory_order_relaxed)) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        int r;
        while ((r = waitid(P_PID, (id_t)p->pid, &info, WEXITED)) != 0 && errno == EINTR)
            ;
        if (r != 0) {
            rc = -errno;
        } else {
            p->exit_code = conc__exit_code(&info);
            atomic_store_explicit(&p->reaped, true, memory_order_release);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Whether the child has ended (not necessarily reaped): 1, 0, or an error. */
static int conc__ended(conc_process *p)
{
    if (atomic_load_explicit(&p->reaped, memory_order_acquire))
        return 1;
    if (p->pidfd >= 0) {
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        int r = poll(&pfd, 1, 0);
        return r < 0 ? -errno : r > 0;
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return atomic_load_explicit(&p->reaped, memory_order_acquire) ? 1 : -errno;
    return info.si_pid != 0;
}

/* Sleeps until the child ends or the deadline passes: 0 or CONC_ETIMEDOUT. */
static int conc__wait_end(conc_process *p, int64_t deadline)
{
    int64_t nap = 100000; /* without a pidfd: 0.1 ms, doubling up to 10 ms */
    for (;;) {
        int ended = conc__ended(p);
        if (ended != 0)
            return ended > 0 ? 0 : ended;
        int64_t left = deadline == CONC__NO_DEADLINE ? -1 : deadline - conc__now();
        if (deadline != CONC__NO_DEADLINE && left <= 0)
            return CONC_ETIMEDOUT;
        if (p->pidfd >= 0) {
            struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
            struct timespec ts = conc__timespec(left);
            if (ppoll(&pfd, 1, left < 0 ? NULL : &ts, NULL) < 0 && errno != EINTR)
                return -errno;
        } else {
            struct timespec ts = conc__timespec(left >= 0 && left < nap ? left : nap);
            nanosleep(&ts, NULL);
            nap = nap < 10000000 ? nap * 2 : nap;
        }
    }
}

int conc_process_join_timed(conc_process *p, int *exit_code, int64_t timeout)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "p is NULL");
    int64_t deadline;
    int rc = conc__deadline(timeout, &deadline);
    int lost = atomic_load_explicit(&p->lost, memory_order_acquire);
    if (rc == 0 && lost)
        return lost;
    if (rc == 0 && !atomic_load_explicit(&p->reaped, memory_order_acquire)) {
        rc = conc__wait_end(p, deadline);
        if (rc == 0)
            rc = conc__reap(p, deadline);
    }
    if (rc == 0 && exit_code)
        *exit_code = p->exit_code;
    return rc;
}

int conc_process_join(conc_process *p, int *exit_code)
{
    return conc_process_join_timed(p, exit_code, CONC_FOREVER);
}

int conc_process_is_alive(conc_process *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "p is NULL");
    int ended = conc__ended(p);
    return ended < 0 ? ended : !ended;
}

int64_t conc_process_pid(conc_process *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "p is NULL");
    return p->pid;
}

static int conc__signal(conc_process *p, int sig)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (!atomic_load_explicit(&p->reaped, memory_order_relaxed)) {
        int r = p->pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0)
                              : kill(p->pid, sig);
        if (r != 0 && errno != ESRCH) /* ESRCH: it has ended already */
            rc = -errno;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int conc_process_terminate(conc_process *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "p is NULL");
    return conc__signal(p, SIGTERM);
}

int conc_process_kill(conc_process *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "p is NULL");
    return conc__signal(p, SIGKILL);
}

int conc_process_stdio_fd(conc_process *p, int which)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "p is NULL");
    if (which < 0 || which > 2)
        return CONC__MISUSE(CONC_EINVAL, "which is not 0, 1 or 2");
    if (p->stdio_fd[which] < 0)
        return CONC__MISUSE(CONC_EBADF, "that stream is not a pipe, or was closed");
    return p->stdio_fd[which];
}

int conc_process_close_stdio(conc_process *p, int which)
{
    int fd = conc_process_stdio_fd(p, which);
    if (fd < 0)
        return fd; /* detail set by conc_process_stdio_fd */
    p->stdio_fd[which] = -1;
    return close(fd) == 0 || errno == EINTR ? 0 : -errno;
}

int conc_process_destroy(conc_process *p)
{
    if (!p)
        return 0;
    if (!atomic_load_explicit(&p->reaped, memory_order_acquire) &&
        !atomic_load_explicit(&p->lost, memory_order_acquire))
        return CONC__MISUSE(CONC_EBUSY, "the child has not been joined (join it, or kill and join it)");
    for (int i = 0; i < 3; i++)
        if (p->stdio_fd[i] >= 0)
            close(p->stdio_fd[i]);
    if (p->pidfd >= 0)
        close(p->pidfd);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return 0;
}
