/* The fork server: how a function starts in a child of a threaded program.
 *
 * fork() in a program that runs threads copies every lock in whatever state
 * the other threads left it: a child that calls into code whose lock was
 * held at that moment waits forever. So conc does not fork the program for
 * a function. On the first conc_process_start it starts the program again
 * (/proc/self/exe) with CONC__FORKSERVER_FD set; conc's constructor, which
 * runs before main and before any thread, sees the variable and serves
 * instead of returning. That server is single-threaded for good, so each
 * child forked from it starts with no lock held by anybody (CPython's
 * forkserver does the same for the same reason).
 *
 * The server is another image of the same program, loaded at another
 * address (PIE, ASLR): a function travels as (module, offset), its module
 * named as the dynamic linker lists it ("" for the program itself), and the
 * server adds the offset to where that module is loaded in it. A function
 * of a library loaded later (dlopen) is not in the server: CONC_ENOENT.
 * The child runs the function in the state a fresh program has before main
 * (constructors run, globals at their initial values): what it needs comes
 * in its argument bytes.
 *
 * Protocol, over a SOCK_SEQPACKET socketpair (each message whole):
 *   server -> client  HELLO {pid}                          once, at start
 *   client -> server  START {token, offset, name, arg}     one per start
 *   server -> client  STARTED {token, pid, err} + pidfd    (SCM_RIGHTS)
 *   server -> client  ENDED {pid, status}                  when a child ends
 * The server keeps one child forked ahead of need, the spare, waiting on a
 * socket of its own: a START hands it the function (already resolved) and
 * the descriptors, the reply goes out at once, and only then is the next
 * spare forked — a start never waits for a fork. For 1 ms after a start
 * the server looks for the next one without sleeping (a program often
 * starts several), since waking a sleeping server costs tens of
 * microseconds in a virtual machine: a CPU's worth of spinning, bounded,
 * traded for the start's latency.
 * The client holds the child's pidfd (sent by the server, which forked it),
 * so it can wait for it and signal it without races; only its exit status,
 * which only its parent can reap, comes from the server. ENDED messages
 * arrive whenever children end, between other replies: the client keeps
 * the ones nobody has asked for yet.
 *
 * Lifetimes: a server that dies (killed by someone) is reaped and
 * forgotten, and the next start starts a new one. The server dies with the client (it watches the client's
 * pidfd and its socket) and its children die with it (death signal). It is
 * started like any child of conc's (spawn.c): from the main thread or the
 * spawner thread, so it does not die with the thread that first asked.
 * Its environment is the program's, without the variables an MPI launcher
 * sets (OMPI_*, PMIX_*): a server must never try to join an MPI job. */
#define _GNU_SOURCE
#include "process/process_impl.h"

#include "process/fnref.h"

#include "arch/cpu.h"
#include "core/deadline.h"
#include "core/fork.h"
#include "core/misuse.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CONC__FS_ENV "CONC__FORKSERVER_FD"
#define CONC__FS_MAGIC 0x636e4653u /* "cnFS" */
#define CONC__FS_NAME_MAX CONC__FNREF_NAME_MAX
#define CONC__FS_FDS_MAX 4 /* descriptors a START passes to its child */
#define CONC__FS_SPIN_NS 1000000 /* how long the server looks for the next start without sleeping */

enum { CONC__FS_HELLO = 1, CONC__FS_START, CONC__FS_STARTED, CONC__FS_ENDED };

struct conc__fs_msg {
    uint32_t magic, kind, token;
    int32_t pid, err, status;
    uint64_t offset;
    uint32_t name_len, arg_len; /* START: the module's name, then the argument */
    uint32_t nfds;              /* START: descriptors passed along, the child's 3.. */
};

#define CONC__FS_MSG_MAX (sizeof(struct conc__fs_msg) + CONC__FS_NAME_MAX + CONC_PROCESS_ARG_MAX)

/* ---- messages ---- */

/* Sends m, then tail_len bytes of tail, with nfds descriptors (at most
 * CONC__FS_FDS_MAX). */
static int conc__fs_send(int sock, const struct conc__fs_msg *m, const void *tail, size_t tail_len,
                         const int *fds, size_t nfds)
{
    struct iovec iov[2] = {{(void *)m, sizeof *m}, {(void *)tail, tail_len}};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(CONC__FS_FDS_MAX * sizeof(int))];
    } control;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = tail_len ? 2 : 1};
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t n;
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)(sizeof *m + tail_len) ? 0 : n < 0 ? -errno : CONC_EIO;
}

/* Closes the descriptors fds[0..n) that are open (>= 0). */
static void conc__fs_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Receives one message into buf (cap bytes); passed descriptors into
 * fds[0..CONC__FS_FDS_MAX) (-1 where none came), close-on-exec. Returns its
 * length, 0 at end of file, or -errno. */
static ssize_t conc__fs_recv(int sock, void *buf, size_t cap, int fds[CONC__FS_FDS_MAX], int flags)
{
    struct iovec iov = {buf, cap};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(CONC__FS_FDS_MAX * sizeof(int))];
    } control;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf};
    for (size_t i = 0; i < CONC__FS_FDS_MAX; i++)
        fds[i] = -1;
    ssize_t n;
    while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(c), (k < CONC__FS_FDS_MAX ? k : CONC__FS_FDS_MAX) * sizeof(int));
        }
    if (n > 0 && (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        conc__fs_close_fds(fds, CONC__FS_FDS_MAX);
        return CONC_EIO;
    }
    return n;
}

/* ---- the server ---- */

struct conc__fs_server {
    int sock, client_pidfd;
    pid_t self;
    struct conc__fs_child {
        pid_t pid;
        int pidfd;
    } *children;
    size_t n, cap;
    /* A child forked ahead of need, waiting on its socket for a function
     * to run (pid 0: none): a start hands it the function at once and
     * forks the next spare after its reply, so the client never waits for
     * a fork. */
    struct conc__fs_spare {
        pid_t pid;
        int pidfd, sock;
    } spare;
    int64_t spin_until; /* look for messages without sleeping until then */
    unsigned char *buf; /* CONC__FS_MSG_MAX bytes: a message (the spare's copy too) */
};

/* Runs fn in a child of the server, the descriptors fds[0..nfds) as its 3,
 * 4, ... (without close-on-exec), in order; exits with fn's status. */
static _Noreturn void conc__fs_child_run(conc_process_fn fn, const void *arg, size_t size,
                                         int *fds, size_t nfds)
{
    /* Out of the way first (above 3 + CONC__FS_FDS_MAX), so that placing
     * one cannot close another. */
    for (size_t i = 0; i < nfds; i++) {
        int high = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + CONC__FS_FDS_MAX);
        if (high < 0)
            _exit(127);
        close(fds[i]);
        fds[i] = high;
    }
    for (size_t i = 0; i < nfds; i++) {
        if (dup2(fds[i], 3 + (int)i) < 0) /* dup2's copy has no close-on-exec */
            _exit(127);
        close(fds[i]);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int rc = fn(arg, size);
    fflush(NULL);
    _exit(rc & 0xff);
}

/* The spare, once forked: drops the server's descriptors, waits for its
 * job (a START whose offset is the function's address in this image,
 * already resolved by the server), runs it. Without a job (the server
 * went), it exits. */
static _Noreturn void conc__fs_spare_main(struct conc__fs_server *sv, int job_sock)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != sv->self)
        _exit(127);
    close(sv->sock);
    close(sv->client_pidfd);
    for (size_t i = 0; i < sv->n; i++)
        close(sv->children[i].pidfd);
    int fds[CONC__FS_FDS_MAX];
    ssize_t n = conc__fs_recv(job_sock, sv->buf, CONC__FS_MSG_MAX, fds, 0);
    close(job_sock);
    struct conc__fs_msg m;
    if (n < (ssize_t)sizeof m)
        _exit(0);
    memcpy(&m, sv->buf, sizeof m);
    if (m.magic != CONC__FS_MAGIC || m.nfds > CONC__FS_FDS_MAX ||
        sizeof m + m.arg_len != (size_t)n)
        _exit(127);
    conc__fs_child_run((conc_process_fn)(uintptr_t)m.offset, sv->buf + sizeof m, m.arg_len, fds,
                       m.nfds);
}

/* Forks a new spare. Returns 0 or -errno. */
static int conc__fs_make_spare(struct conc__fs_server *sv)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        close(pair[0]);
        conc__fs_spare_main(sv, pair[1]);
    }
    int err = pid < 0 ? -errno : 0;
    close(pair[1]);
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (pid > 0 && pidfd < 0) { /* no pidfd: nobody could wait for it */
        err = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (err) {
        close(pair[0]);
        return err;
    }
    sv->spare = (struct conc__fs_spare){pid, pidfd, pair[0]};
    return 0;
}

/* Ends the spare (it died, or the server does). */
static void conc__fs_drop_spare(struct conc__fs_server *sv)
{
    if (!sv->spare.pid)
        return;
    kill(sv->spare.pid, SIGKILL);
    while (waitpid(sv->spare.pid, NULL, 0) < 0 && errno == EINTR)
        ;
    close(sv->spare.pidfd);
    close(sv->spare.sock);
    sv->spare.pid = 0;
}

/* Hands fn(arg) and the descriptors to the spare (one made now if there is
 * none, or if the one there died). Returns 0 or an error. */
static int conc__fs_hand_to_spare(struct conc__fs_server *sv, void (*fn)(void), const void *arg,
                                  uint32_t arg_len, const int *fds, size_t nfds)
{
    struct conc__fs_msg job = {.magic = CONC__FS_MAGIC, .kind = CONC__FS_START,
                               .offset = (uint64_t)(uintptr_t)fn, .arg_len = arg_len,
                               .nfds = (uint32_t)nfds};
    int rc = -1;
    for (int tries = 0; tries < 2 && rc != 0; tries++) {
        if (!sv->spare.pid && (rc = conc__fs_make_spare(sv)) != 0)
            return rc;
        rc = conc__fs_send(sv->spare.sock, &job, arg, arg_len, fds, nfds);
        if (rc != 0)
            conc__fs_drop_spare(sv); /* killed while it waited: another */
    }
    return rc;
}

/* Serves one START message of len bytes at buf, which came with the
 * descriptors fds[0..CONC__FS_FDS_MAX) (-1: none); closes them. */
static void conc__fs_serve_start(struct conc__fs_server *sv, const unsigned char *buf, size_t len,
                                 int *fds)
{
    struct conc__fs_msg m;
    memcpy(&m, buf, sizeof m);
    struct conc__fs_msg reply = {.magic = CONC__FS_MAGIC, .kind = CONC__FS_STARTED,
                                 .token = m.token};
    char name[CONC__FS_NAME_MAX + 1];
    size_t nfds = 0;
    while (nfds < CONC__FS_FDS_MAX && fds[nfds] >= 0)
        nfds++;
    if (m.name_len > CONC__FS_NAME_MAX || m.arg_len > CONC_PROCESS_ARG_MAX ||
        sizeof m + m.name_len + m.arg_len != len || m.nfds != nfds) {
        reply.err = CONC_EIO;
        goto refuse;
    }
    memcpy(name, buf + sizeof m, m.name_len);
    void (*fn)(void) = conc__fnref_resolve(name, m.name_len, m.offset);
    if (!fn) {
        reply.err = CONC_ENOENT;
        goto refuse;
    }
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? 2 * sv->cap : 16;
        void *more = realloc(sv->children, cap * sizeof *sv->children);
        if (!more) {
            reply.err = CONC_ENOMEM;
            goto refuse;
        }
        sv->children = more;
        sv->cap = cap;
    }
    int rc = conc__fs_hand_to_spare(sv, fn, buf + sizeof m + m.name_len, m.arg_len, fds, nfds);
    conc__fs_close_fds(fds, nfds);
    if (rc != 0) {
        reply.err = rc;
        conc__fs_send(sv->sock, &reply, NULL, 0, NULL, 0);
        return;
    }
    /* The spare is the child now; the next spare is forked after the
     * reply, while the client goes on. */
    close(sv->spare.sock);
    sv->children[sv->n++] = (struct conc__fs_child){sv->spare.pid, sv->spare.pidfd};
    reply.pid = sv->spare.pid;
    conc__fs_send(sv->sock, &reply, NULL, 0, &sv->spare.pidfd, 1);
    sv->spare.pid = 0;
    (void)conc__fs_make_spare(sv); /* failed: the next start tries again */
    sv->spin_until = conc__now() + CONC__FS_SPIN_NS;
    return;
refuse:
    conc__fs_close_fds(fds, CONC__FS_FDS_MAX);
    conc__fs_send(sv->sock, &reply, NULL, 0, NULL, 0);
}

/* Reaps child i, which has ended, and tells the client. */
static void conc__fs_reap(struct conc__fs_server *sv, size_t i)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid(P_PID, (id_t)sv->children[i].pid, &info, WEXITED) != 0 && errno == EINTR)
        ;
    struct conc__fs_msg m = {.magic = CONC__FS_MAGIC, .kind = CONC__FS_ENDED,
                             .pid = sv->children[i].pid,
                             .status = info.si_code == CLD_EXITED ? info.si_status
                                                                  : -info.si_status};
    conc__fs_send(sv->sock, &m, NULL, 0, NULL, 0);
    close(sv->children[i].pidfd);
    sv->children[i] = sv->children[--sv->n];
}

static _Noreturn void conc__fs_serve(int sock)
{
    struct conc__fs_server sv = {.sock = sock, .self = getpid(), .buf = malloc(CONC__FS_MSG_MAX)};
    /* The client is our parent: we end when it does. */
    sv.client_pidfd = (int)syscall(SYS_pidfd_open, getppid(), 0);
    prctl(PR_SET_NAME, "conc-forkserver");
    struct conc__fs_msg hello = {.magic = CONC__FS_MAGIC, .kind = CONC__FS_HELLO,
                                 .pid = sv.self};
    if (sv.client_pidfd < 0 || conc__fs_send(sock, &hello, NULL, 0, NULL, 0) != 0)
        _exit(1);
    unsigned char *buf = sv.buf;
    if (buf)
        (void)conc__fs_make_spare(&sv);
    struct pollfd *pfd = NULL;
    size_t pfd_cap = 0;
    for (;;) {
        if (pfd_cap < sv.n + 3) {
            pfd_cap = sv.n + 3 + 16;
            pfd = realloc(pfd, pfd_cap * sizeof *pfd);
        }
        if (!buf || !pfd)
            break;
        pfd[0] = (struct pollfd){.fd = sock, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = sv.client_pidfd, .events = POLLIN};
        /* The spare's pidfd, or nothing (a negative fd is skipped). */
        pfd[2] = (struct pollfd){.fd = sv.spare.pid ? sv.spare.pidfd : -1, .events = POLLIN};
        for (size_t i = 0; i < sv.n; i++)
            pfd[3 + i] = (struct pollfd){.fd = sv.children[i].pidfd, .events = POLLIN};
        size_t polled = sv.n;
        /* Shortly after a start, the next one usually follows (a program
         * starting a batch): look without sleeping for a while, as a
         * wake-up from sleep costs as much as a fork in a virtual machine. */
        int ready = 0;
        while (conc__now() < sv.spin_until && (ready = poll(pfd, 3 + polled, 0)) == 0)
            conc__cpu_relax();
        if (ready == 0)
            ready = poll(pfd, 3 + polled, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents) /* the client ended */
            break;
        if (pfd[2].revents) /* the spare died waiting (killed) */
            conc__fs_drop_spare(&sv);
        for (size_t i = polled; i-- > 0;) /* from the end: reaping moves the last in */
            if (pfd[3 + i].revents)
                conc__fs_reap(&sv, i);
        if (pfd[0].revents & (POLLHUP | POLLERR) && !(pfd[0].revents & POLLIN))
            break;
        if (pfd[0].revents & POLLIN) {
            int fds[CONC__FS_FDS_MAX];
            ssize_t n = conc__fs_recv(sock, buf, CONC__FS_MSG_MAX, fds, 0);
            if (n <= 0)
                break; /* the client closed its end */
            struct conc__fs_msg m;
            if ((size_t)n >= sizeof m) {
                memcpy(&m, buf, sizeof m);
                if (m.magic == CONC__FS_MAGIC && m.kind == CONC__FS_START) {
                    conc__fs_serve_start(&sv, buf, (size_t)n, fds);
                    continue;
                }
            }
            conc__fs_close_fds(fds, CONC__FS_FDS_MAX);
        }
    }
    for (size_t i = 0; i < sv.n; i++) /* they would die with us anyway */
        kill(sv.children[i].pid, SIGKILL);
    conc__fs_drop_spare(&sv);
    _exit(0);
}

void conc__forkserver_enter_if_asked(void)
{
    const char *v = getenv(CONC__FS_ENV);
    if (!v)
        return;
    int fd = atoi(v);
    unsetenv(CONC__FS_ENV); /* the children must not serve */
    if (fd < 3 || fcntl(fd, F_GETFD) < 0)
        return; /* not a server after all: run the program */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    conc__fs_serve(fd);
}

/* ---- the client ---- */

struct conc__fs_ended {
    pid_t pid;
    int status;
};

static struct {
    pthread_mutex_t lock; /* the socket (one request or read at a time) and the lists;
                             held across the server's start */
    uint32_t gen;         /* the fork generation the server belongs to */
    uint32_t epoch;       /* which server of this process: bumped by each start */
    int sock;             /* -1: no server */
    pid_t server;
    int server_pidfd;
    uint32_t next_token;
    struct conc__fs_ended *ended; /* statuses read but not yet asked for */
    size_t n_ended, cap_ended;
} conc__fs = {PTHREAD_MUTEX_INITIALIZER, 0, 0, -1, 0, -1, 1, NULL, 0, 0};

/* With the lock held: forgets a server that died or broke the protocol
 * (killed, say, by the OOM killer): it is killed if need be and reaped, and
 * the next start starts a new one. Its children die with it (their death
 * signal); whoever joins one learns that its status is lost (CONC_EBROKEN). */
static void conc__fs_drop_locked(void)
{
    kill(conc__fs.server, SIGKILL);
    while (waitpid(conc__fs.server, NULL, 0) < 0 && errno == EINTR)
        ;
    close(conc__fs.sock);
    if (conc__fs.server_pidfd >= 0)
        close(conc__fs.server_pidfd);
    conc__fs.sock = -1;
    conc__fs.server_pidfd = -1;
    conc__fs.n_ended = 0;
}

/* After fork(), in the child: the server is the parent's. Not a lock
 * taken around the fork (as the fork table's others are), since the client
 * holds this lock while it forks the server itself, which in sanitizer
 * builds runs the fork handlers; instead the child starts over: a new lock
 * (the copy may be held by a thread that did not come along), no server,
 * nothing remembered. */
static void conc__fs_child(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    conc__fs.lock = fresh;
    if (conc__fs.sock >= 0)
        close(conc__fs.sock);
    if (conc__fs.server_pidfd >= 0)
        close(conc__fs.server_pidfd);
    conc__fs.sock = -1;
    conc__fs.server_pidfd = -1;
    conc__fs.ended = NULL; /* the parent's list: not ours to free or trust */
    conc__fs.n_ended = conc__fs.cap_ended = 0;
}

static const struct conc__fork_handler conc__fs_fork = {NULL, NULL, conc__fs_child};

/* The program's environment without the fork server's and an MPI
 * launcher's variables, plus the server's descriptor. NULL on ENOMEM. */
static char **conc__fs_environ(int fd)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    static char fd_var[64];
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OMPI_", 5) && strncmp(environ[i], "PMIX_", 5) &&
            strncmp(environ[i], CONC__FS_ENV "=", sizeof CONC__FS_ENV))
            env[k++] = environ[i];
    snprintf(fd_var, sizeof fd_var, "%s=%d", CONC__FS_ENV, fd);
    env[k++] = fd_var;
    env[k] = NULL;
    return env;
}

/* With the lock held: a server of this process, started if need be. */
static int conc__fs_connect_locked(void)
{
    uint32_t gen = conc__fork_generation();
    if (conc__fs.sock >= 0)
        return 0;
    conc__fork_register(CONC__FORK_FORKSERVER, &conc__fs_fork);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    char **env = conc__fs_environ(3);
    if (!env) {
        close(sv[0]);
        close(sv[1]);
        return CONC_ENOMEM;
    }
    char *argv[] = {"conc-forkserver", NULL};
    conc_process child;
    memset(&child, 0, sizeof child);
    struct conc__spawn_req req = {"/proc/self/exe", argv, env, NULL, {{0}}, &child, sv[1]};
    sigemptyset(&req.mask);
    int rc = gettid() == getpid() ? conc__spawn_here(&req) : conc__spawn_via_spawner(&req);
    free(env);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return rc;
    }
    /* The server's hello, within 10 s: a program whose conc is loaded
     * only later (dlopen) never serves. */
    struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
    struct conc__fs_msg hello;
    int fds[CONC__FS_FDS_MAX] = {-1, -1, -1, -1};
    if (poll(&pfd, 1, 10000) != 1 || conc__fs_recv(sv[0], &hello, sizeof hello, fds, 0) !=
                                         (ssize_t)sizeof hello ||
        hello.magic != CONC__FS_MAGIC || hello.kind != CONC__FS_HELLO) {
        conc__fs_close_fds(fds, CONC__FS_FDS_MAX);
        close(sv[0]);
        kill(child.pid, SIGKILL);
        waitpid(child.pid, NULL, 0);
        return conc__misuse_at(CONC_ENOSYS, "conc_process_start",
                               "the fork server did not start (is conc loaded when the program "
                               "starts, not by dlopen?)");
    }
    conc__fs.sock = sv[0];
    conc__fs.server = child.pid;
    conc__fs.server_pidfd = (int)syscall(SYS_pidfd_open, child.pid, 0);
    conc__fs.gen = gen;
    conc__fs.epoch++;
    return 0;
}

/* With the lock held: reads one message; keeps an ENDED one, returns the
 * STARTED one for token in *m (with its pidfd in *fd). 1: the STARTED
 * reply came, 0: something else was read, or an error. */
static int conc__fs_read_locked(uint32_t token, struct conc__fs_msg *m, int *fd, int64_t deadline)
{
    int64_t left = deadline == CONC__NO_DEADLINE ? -1 : deadline - conc__now();
    if (deadline != CONC__NO_DEADLINE && left <= 0)
        return CONC_ETIMEDOUT;
    struct pollfd pfd = {.fd = conc__fs.sock, .events = POLLIN};
    struct timespec ts = conc__timespec(left < 0 ? 0 : left);
    int r = ppoll(&pfd, 1, left < 0 ? NULL : &ts, NULL);
    if (r == 0)
        return CONC_ETIMEDOUT;
    if (r < 0 && errno == EINTR)
        return 0;
    int fds[CONC__FS_FDS_MAX] = {-1, -1, -1, -1};
    ssize_t n = r < 0 ? -errno : conc__fs_recv(conc__fs.sock, m, sizeof *m, fds, 0);
    *fd = fds[0];
    conc__fs_close_fds(fds + 1, CONC__FS_FDS_MAX - 1); /* a reply passes one at most */
    if (n <= 0 || n != (ssize_t)sizeof *m || m->magic != CONC__FS_MAGIC) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        conc__fs_drop_locked(); /* gone (end of file), or not speaking the protocol */
        return CONC_EBROKEN;
    }
    if (m->kind == CONC__FS_STARTED && m->token == token)
        return 1;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    if (m->kind == CONC__FS_ENDED) {
        if (conc__fs.n_ended == conc__fs.cap_ended) {
            size_t cap = conc__fs.cap_ended ? 2 * conc__fs.cap_ended : 16;
            void *more = realloc(conc__fs.ended, cap * sizeof *conc__fs.ended);
            if (!more)
                return CONC_ENOMEM;
            conc__fs.ended = more;
            conc__fs.cap_ended = cap;
        }
        conc__fs.ended[conc__fs.n_ended++] = (struct conc__fs_ended){m->pid, m->status};
    }
    return 0;
}

int conc__forkserver_start(conc_process *p, conc_process_fn fn, const void *arg, size_t size,
                           const int *fds, size_t nfds)
{
    struct conc__fnref ref;
    if (!conc__fnref_of((void (*)(void))fn, &ref))
        return conc__misuse_at(CONC_EINVAL, "conc_process_start",
                               "fn is not in the code of a loaded module");
    if (nfds > CONC__FS_FDS_MAX)
        return conc__misuse_at(CONC_EINVAL, "conc_process_start", "too many descriptors");
    unsigned char *tail = malloc(ref.module_len + size + 1);
    if (!tail)
        return CONC_ENOMEM;
    memcpy(tail, ref.module, ref.module_len);
    if (size)
        memcpy(tail + ref.module_len, arg, size);
    pthread_mutex_lock(&conc__fs.lock);
    int rc = conc__fs_connect_locked();
    if (rc == 0) {
        uint32_t token = conc__fs.next_token++;
        struct conc__fs_msg m = {.magic = CONC__FS_MAGIC, .kind = CONC__FS_START, .token = token,
                                 .offset = ref.offset, .name_len = (uint32_t)ref.module_len,
                                 .arg_len = (uint32_t)size, .nfds = (uint32_t)nfds};
        rc = conc__fs_send(conc__fs.sock, &m, tail, ref.module_len + size, fds, nfds);
        if (rc != 0) {
            conc__fs_drop_locked();
            rc = CONC_EBROKEN;
        }
        int fd = -1;
        while (rc == 0 && (rc = conc__fs_read_locked(token, &m, &fd, CONC__NO_DEADLINE)) == 0)
            ;
        if (rc == 1) {
            rc = m.err;
            if (rc == 0 && fd < 0)
                rc = CONC_EIO;
            if (rc == 0) {
                p->pid = m.pid;
                p->pidfd = fd;
                p->via_server = true;
                p->gen = conc__fs.gen;
                p->epoch = conc__fs.epoch;
            } else if (fd >= 0) {
                close(fd);
            }
        }
    }
    pthread_mutex_unlock(&conc__fs.lock);
    free(tail);
    return rc;
}

void conc__forkserver_fds(int fds[2])
{
    pthread_mutex_lock(&conc__fs.lock);
    fds[0] = conc__fs.sock;
    fds[1] = conc__fs.server_pidfd;
    pthread_mutex_unlock(&conc__fs.lock);
}

int conc__forkserver_status(conc_process *p, int64_t deadline, int *code)
{
    pthread_mutex_lock(&conc__fs.lock);
    /* A child forked from the server's client has no server of its own
     * for a process its parent started. */
    int rc = p->gen != conc__fork_generation() ? CONC_ECHILD
             : conc__fs.sock < 0 || p->epoch != conc__fs.epoch
                 ? CONC_EBROKEN /* its server died: the status went with it */
                 : 0;
    for (;;) {
        if (rc != 0)
            break;
        bool found = false;
        for (size_t i = 0; i < conc__fs.n_ended; i++)
            if (conc__fs.ended[i].pid == p->pid) {
                *code = conc__fs.ended[i].status;
                conc__fs.ended[i] = conc__fs.ended[--conc__fs.n_ended];
                found = true;
                break;
            }
        if (found)
            break;
        struct conc__fs_msg m;
        int fd;
        rc = conc__fs_read_locked(0, &m, &fd, deadline);
        if (rc == 1) { /* a STARTED nobody waits for: cannot happen */
            if (fd >= 0)
                close(fd);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&conc__fs.lock);
    return rc;
}
