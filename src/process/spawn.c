/* Starting a program: the parent prepares everything that can fail or
 * allocate (the standard streams' descriptors, the PATH entries, a report
 * pipe), then forks; the child does only async-signal-safe calls (the rule
 * for a child of a threaded program) up to its exec, and reports a failed
 * exec's errno through the report pipe, which the exec closes on success
 * (O_CLOEXEC): the parent reads either end-of-file (running) or an errno
 * (conc_process_spawn returns it, after reaping the child).
 *
 * The fork is vfork(), as glibc's posix_spawn: the child borrows the
 * parent's memory until its exec instead of copying its page tables, which
 * in a large program is most of a fork's cost (posix_spawn of /bin/true ran
 * 1.5x faster than a _Fork and exec here). That is safe because the child
 * writes no memory the parent reads but the plan on the heap, has its own
 * signal handlers (reset before any signal is let in), never returns from
 * conc__child, and the parent thread is suspended until the exec or _exit.
 * Sanitizer builds fork(): their runtimes prepare a fork only through it,
 * and would see the borrowed stack as the parent's. */
#define _GNU_SOURCE
#include "process/process_impl.h"

#include "core/fork.h"
#include "core/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Everything the child needs, prepared by the parent. */
struct conc__child_plan {
    int stream_fd[4];  /* what becomes fd 0, 1, 2 (and 3); -1: inherited (none) */
    int report_fd;     /* write end of the report pipe */
    pid_t parent;
    bool detached;
    const char *cwd;
    const char *program; /* a path: exec it; a name: try each PATH entry */
    const char *path_list;
    char *const *argv, *const *envp;
    sigset_t mask; /* the requesting thread's */
    char buf[4096]; /* a PATH entry joined with the name */
};

static _Noreturn void conc__child_fail(struct conc__child_plan *c, int err)
{
    while (write(c->report_fd, &err, sizeof err) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* execve of each PATH entry in turn, as execvp: the first that runs wins;
 * EACCES from any entry is the error reported if none does, else the last. */
static int conc__child_exec_path(struct conc__child_plan *c)
{
    size_t name_len = strlen(c->program);
    int err = ENOENT;
    bool saw_eacces = false;
    for (const char *dir = c->path_list;;) {
        const char *colon = strchr(dir, ':');
        size_t len = colon ? (size_t)(colon - dir) : strlen(dir);
        if (len + 1 + name_len + 1 <= sizeof c->buf) {
            size_t n = 0;
            if (len == 0) /* an empty entry is the working directory */
                c->buf[n++] = '.';
            memcpy(c->buf + n, dir, len);
            n += len;
            c->buf[n++] = '/';
            memcpy(c->buf + n, c->program, name_len + 1);
            execve(c->buf, c->argv, c->envp);
            err = errno;
            if (err == EACCES)
                saw_eacces = true;
            else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENAMETOOLONG)
                return err; /* a program found but not runnable: report it */
        }
        if (!colon)
            break;
        dir = colon + 1;
    }
    return saw_eacces ? EACCES : err;
}

/* The child, up to its exec. Async-signal-safe calls only. */
static _Noreturn void conc__child(struct conc__child_plan *c)
{
    if (c->detached) {
        setsid();
    } else {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != c->parent) /* the parent died before the line above */
            _exit(127);
    }
    /* The parent's handlers must not run here (they would, on a signal
     * arriving before the exec); the exec would reset them anyway. SIGPIPE
     * back to its default, as Python's restore_signals. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
            continue;
        if ((sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN) || sig == SIGPIPE) {
            struct sigaction dfl = {.sa_handler = SIG_DFL};
            sigaction(sig, &dfl, NULL);
        }
    }
    /* Move the streams' sources above 3 first, so that placing one does not
     * overwrite another's source (a caller's fd 1 given as stdin). */
    int src[4];
    for (int i = 0; i < 4; i++) {
        src[i] = -1;
        if (c->stream_fd[i] >= 0 && (src[i] = fcntl(c->stream_fd[i], F_DUPFD_CLOEXEC, 4)) < 0)
            conc__child_fail(c, errno);
    }
    for (int i = 0; i < 4; i++)
        if (src[i] >= 0 && dup2(src[i], i) < 0) /* dup2 clears FD_CLOEXEC on i */
            conc__child_fail(c, errno);
    if (c->cwd && chdir(c->cwd) != 0)
        conc__child_fail(c, errno);
    sigprocmask(SIG_SETMASK, &c->mask, NULL);
    if (strchr(c->program, '/')) {
        execve(c->program, c->argv, c->envp);
        conc__child_fail(c, errno);
    }
    conc__child_fail(c, conc__child_exec_path(c));
}

/* Forks the child that runs c; returns in the parent only. A function of
 * its own, with no local the child could clobber. */
static __attribute__((noinline)) pid_t conc__fork_child(struct conc__child_plan *c)
{
#if CONC__SANITIZED
    pid_t pid = fork();
#else
    pid_t pid = vfork();
#endif
    if (pid == 0)
        conc__child(c);
    return pid;
}

static void conc__close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Opens what stream i of the child reads or writes: into *child_fd (to be
 * closed by the parent after the fork, unless it is the caller's own fd)
 * and, for a pipe, the parent's end into p->stdio_fd[i]. */
static int conc__open_stream(const conc_stdio *s, int i, int *child_fd, bool *owned,
                             conc_process *p)
{
    *owned = true;
    switch (s->mode) {
    case CONC_STDIO_INHERIT:
        *child_fd = -1;
        *owned = false;
        return 0;
    case CONC_STDIO_NULL:
        *child_fd = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
        return *child_fd < 0 ? -errno : 0;
    case CONC_STDIO_FILE:
        *child_fd = i == 0 ? open(s->path, O_RDONLY | O_CLOEXEC)
                           : open(s->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        return *child_fd < 0 ? -errno : 0;
    case CONC_STDIO_FD:
        *child_fd = s->fd;
        *owned = false;
        return 0;
    case CONC_STDIO_PIPE: {
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) != 0)
            return -errno;
        *child_fd = i == 0 ? ends[0] : ends[1];
        p->stdio_fd[i] = i == 0 ? ends[1] : ends[0];
        return 0;
    }
    }
    return CONC_EINVAL; /* detail set by caller (modes are checked there) */
}

int conc__spawn_here(struct conc__spawn_req *req)
{
    conc_process *p = req->p;
    const conc_process_opts *o = req->opts;
    struct conc__child_plan *c = calloc(1, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    bool owned[3] = {false, false, false};
    int report[2] = {-1, -1};
    int rc = 0;
    for (int i = 0; i < 4; i++)
        c->stream_fd[i] = -1;
    for (int i = 0; i < 3 && rc == 0 && o; i++)
        rc = conc__open_stream(&o->stdio[i], i, &c->stream_fd[i], &owned[i], p);
    c->stream_fd[3] = req->keep_fd; /* the caller's: not closed here */
    if (rc == 0 && pipe2(report, O_CLOEXEC) != 0)
        rc = -errno;
    if (rc == 0) {
        c->report_fd = report[1];
        c->parent = getpid();
        c->detached = o && o->detached;
        c->cwd = o ? o->cwd : NULL;
        c->program = req->program;
        c->path_list = getenv("PATH");
        if (!c->path_list)
            c->path_list = "/usr/local/bin:/bin:/usr/bin";
        c->argv = req->argv;
        c->envp = req->envp ? req->envp : environ;
        c->mask = req->mask;
        /* Every signal blocked across the fork: none may reach the child
         * before it has reset the parent's handlers. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid_t pid = conc__fork_child(c);
        int fork_errno = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        conc__close_fd(&report[1]);
        if (pid < 0) {
            rc = -fork_errno;
        } else {
            int err = 0;
            ssize_t n;
            while ((n = read(report[0], &err, sizeof err)) < 0 && errno == EINTR)
                ;
            if (n == (ssize_t)sizeof err) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                    ;
                rc = -err;
            } else {
                p->pid = pid;
            }
        }
    }
    conc__close_fd(&report[0]);
    conc__close_fd(&report[1]);
    for (int i = 0; i < 3; i++) {
        if (owned[i])
            conc__close_fd(&c->stream_fd[i]);
        if (rc != 0)
            conc__close_fd(&p->stdio_fd[i]);
    }
    free(c);
    return rc;
}

/* ---- the spawner thread ----
 *
 * A thread of conc's, started on the first spawn from a thread other than
 * the main one, that lives as long as the process: the children it forks
 * get their death signal when the process ends, not when the thread that
 * asked for them does. One request at a time: the requester fills the slot
 * and sleeps until the spawner has forked (and the exec has reported). */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool running;                /* in this process (reset in a fork's child) */
    struct conc__spawn_req *req; /* waiting to be served; NULL: free */
    bool served;
    int rc;
} conc__spawner = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL, false, 0};

static void *conc__spawner_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&conc__spawner.lock);
    for (;;) {
        while (!conc__spawner.req || conc__spawner.served)
            pthread_cond_wait(&conc__spawner.cond, &conc__spawner.lock);
        struct conc__spawn_req *req = conc__spawner.req;
        pthread_mutex_unlock(&conc__spawner.lock);
        int rc = conc__spawn_here(req);
        pthread_mutex_lock(&conc__spawner.lock);
        conc__spawner.rc = rc;
        conc__spawner.served = true;
        pthread_cond_broadcast(&conc__spawner.cond);
    }
    return NULL;
}

static void conc__spawner_prepare(void)
{
    pthread_mutex_lock(&conc__spawner.lock);
}

static void conc__spawner_parent(void)
{
    pthread_mutex_unlock(&conc__spawner.lock);
}

static void conc__spawner_child(void)
{
    /* The spawner thread did not come along: the next spawn starts one.
     * The condition variable counts it among its waiters, which a
     * broadcast would wait for forever: a fresh one. */
    conc__spawner.running = false;
    conc__spawner.req = NULL;
    conc__spawner.served = false;
    pthread_cond_t fresh = PTHREAD_COND_INITIALIZER;
    conc__spawner.cond = fresh;
    pthread_mutex_unlock(&conc__spawner.lock);
}

static const struct conc__fork_handler conc__spawner_fork = {
    conc__spawner_prepare, conc__spawner_parent, conc__spawner_child};

/* With the lock held: starts the spawner, its signals blocked as on every
 * thread of conc's. */
static int conc__spawner_start_locked(void)
{
    conc__fork_register(CONC__FORK_SPAWNER, &conc__spawner_fork);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, conc__spawner_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    conc__spawner.running = true;
    return 0;
}

int conc__spawn_via_spawner(struct conc__spawn_req *req)
{
    pthread_mutex_lock(&conc__spawner.lock);
    int rc = conc__spawner.running ? 0 : conc__spawner_start_locked();
    if (rc == 0) {
        while (conc__spawner.req) /* another request is being served */
            pthread_cond_wait(&conc__spawner.cond, &conc__spawner.lock);
        conc__spawner.req = req;
        conc__spawner.served = false;
        pthread_cond_broadcast(&conc__spawner.cond);
        while (!conc__spawner.served)
            pthread_cond_wait(&conc__spawner.cond, &conc__spawner.lock);
        rc = conc__spawner.rc;
        conc__spawner.req = NULL;
        conc__spawner.served = false;
        pthread_cond_broadcast(&conc__spawner.cond);
    }
    pthread_mutex_unlock(&conc__spawner.lock);
    return rc;
}
