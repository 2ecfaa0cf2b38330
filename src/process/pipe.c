/* Pipes that carry framed messages: multiprocessing.Pipe's Connection.
 *
 * An end is one descriptor of a Unix stream socketpair and two independent
 * states: what is sending (a sticky error once a frame was cut) and what is
 * receiving (the header bytes read so far, the announced length, and the
 * payload bytes read before a timeout). Send and receive may therefore run
 * at once on one end, from two threads; two senders or two receivers may
 * not (include/conc/process.h).
 *
 * Every system call is non-blocking for that call only (MSG_DONTWAIT, never
 * O_NONBLOCK: the open file is shared with forked children, and a flag on
 * it would change their blocking behaviour too). Waiting is ppoll() until
 * the deadline, so EINTR and spurious readiness retry with the time left.
 *
 * Framing invariants: the reader reads the header byte-exactly (never into
 * the payload) and the payload straight into the caller's buffer; a timeout
 * keeps the partial payload in a stash, so the next recv continues it. The
 * writer never leaves half a frame that a later frame would follow: a
 * timeout after the first byte shuts its writing side (the peer sees a cut
 * frame, CONC_EIO) and the end answers CONC_EBROKEN from then on. */
#define _GNU_SOURCE
#include "conc/process.h"

#include "core/deadline.h"
#include "core/misuse.h"
#include "process/frame.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct conc_pipe {
    int fd;
    uint64_t max;
    int send_err; /* 0, or CONC_EBROKEN once a send cut its frame */
    int recv_err; /* 0, or CONC_EIO / CONC_ERANGE: the stream is lost */
    /* The message being received. */
    unsigned char hdr[CONC__FRAME_HEADER];
    size_t hdr_got;
    bool have_len;
    uint64_t msg_len;
    unsigned char *stash; /* payload read before a timeout, stash_len bytes */
    size_t stash_len;
};

/* ------------------------------------------------------------ waiting */

/* Waits until fd has one of events (or a hang-up or error) or the deadline
 * passes. 0 or CONC_ETIMEDOUT. */
static int conc__pipe_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        struct timespec ts, *tsp = NULL;
        if (deadline != CONC__NO_DEADLINE) {
            int64_t left = deadline - conc__now();
            ts = conc__timespec(left > 0 ? left : 0);
            tsp = &ts;
        }
        int n = ppoll(&pfd, 1, tsp, NULL);
        if (n > 0)
            return 0;
        if (n == 0 && conc__expired(deadline))
            return CONC_ETIMEDOUT;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int conc__pipe_sys_err(int err)
{
    if (err == EPIPE || err == ECONNRESET)
        return CONC_EPIPE;
    return conc__misuse_errno(-err, "conc_pipe", "a socket call failed (the code is its errno)");
}

/* ------------------------------------------------------------ create */

static conc_pipe *conc__pipe_new(int fd, uint64_t max)
{
    conc_pipe *p = calloc(1, sizeof *p);
    if (p) {
        p->fd = fd;
        p->max = max;
    }
    return p;
}

int conc_pipe_create(conc_pipe **a, conc_pipe **b, const conc_pipe_opts *opts)
{
    if (!a || !b)
        return CONC__MISUSE(CONC_EINVAL, "NULL output end");
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL; /* detail set by CONC__OPTS_CHECK */
    uint64_t max = opts && opts->max_message ? opts->max_message : CONC_PIPE_MAX_MESSAGE_DEFAULT;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return errno == ENFILE ? CONC_EMFILE : conc__pipe_sys_err(errno);
    conc_pipe *pa = conc__pipe_new(sv[0], max), *pb = conc__pipe_new(sv[1], max);
    if (!pa || !pb) {
        free(pa);
        free(pb);
        close(sv[0]);
        close(sv[1]);
        return CONC_ENOMEM;
    }
    *a = pa;
    *b = pb;
    return 0;
}

int conc_pipe_destroy(conc_pipe *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL pipe");
    close(p->fd); /* Linux frees the descriptor even when close reports EINTR */
    free(p->stash);
    free(p);
    return 0;
}

int conc_pipe_fd(const conc_pipe *p)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL pipe");
    return p->fd;
}

/* ------------------------------------------------------------ send */

/* The writer gave up with part of its frame written: no later frame may
 * follow it, so the writing side closes and the peer reads a cut frame. */
static int conc__pipe_cut(conc_pipe *p)
{
    p->send_err = CONC_EBROKEN;
    shutdown(p->fd, SHUT_WR);
    return CONC_EBROKEN;
}

static int conc__pipe_send_frame(conc_pipe *p, const unsigned char *buf, size_t len,
                                 int64_t deadline)
{
    unsigned char hdr[CONC__FRAME_HEADER];
    conc__frame_encode(hdr, len);
    size_t sent = 0, total = CONC__FRAME_HEADER + len;
    while (sent < total) {
        struct iovec iov[2];
        int n_iov = 0;
        if (sent < CONC__FRAME_HEADER)
            iov[n_iov++] = (struct iovec){hdr + sent, CONC__FRAME_HEADER - sent};
        size_t off = sent < CONC__FRAME_HEADER ? 0 : sent - CONC__FRAME_HEADER;
        if (len > off)
            iov[n_iov++] = (struct iovec){(void *)(buf + off), len - off};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
        ssize_t n = sendmsg(p->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return conc__pipe_sys_err(errno);
        int rc = conc__pipe_wait(p->fd, POLLOUT, deadline);
        if (rc != 0)
            return sent == 0 ? rc : conc__pipe_cut(p);
    }
    return 0;
}

int conc_pipe_send_timed(conc_pipe *p, const void *buf, size_t len, int64_t timeout)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL pipe");
    if (!buf && len > 0)
        return CONC__MISUSE(CONC_EINVAL, "NULL buf with len > 0");
    int64_t deadline;
    if (conc__deadline(timeout, &deadline) != 0)
        return conc__bad_timeout();
    if (p->send_err)
        return p->send_err;
    if (len > p->max)
        return CONC_ERANGE;
    return conc__pipe_send_frame(p, buf, len, deadline);
}

int conc_pipe_send(conc_pipe *p, const void *buf, size_t len)
{
    return conc_pipe_send_timed(p, buf, len, CONC_FOREVER);
}

/* ------------------------------------------------------------ recv */

/* Reads up to want bytes into dst, waiting for the first until the
 * deadline. The count (> 0), 0 at the end of the stream, or a code. */
static ssize_t conc__pipe_read(conc_pipe *p, void *dst, size_t want, int64_t deadline)
{
    for (;;) {
        ssize_t n = recv(p->fd, dst, want, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return conc__pipe_sys_err(errno);
        int rc = conc__pipe_wait(p->fd, POLLIN, deadline);
        if (rc != 0)
            return rc;
    }
}

/* A lost stream: every later recv answers code. */
static int conc__pipe_lost(conc_pipe *p, int code)
{
    p->recv_err = code;
    return code;
}

/* Reads the next header (or the rest of it) and decodes it. 0 with
 * p->have_len set, or a code. */
static int conc__pipe_read_header(conc_pipe *p, int64_t deadline)
{
    while (!p->have_len) {
        ssize_t n = conc__pipe_read(p, p->hdr + p->hdr_got, CONC__FRAME_HEADER - p->hdr_got,
                                    deadline);
        if (n == 0)
            return p->hdr_got == 0 ? CONC_EPIPE : conc__pipe_lost(p, CONC_EIO);
        if (n < 0)
            return n == CONC_ETIMEDOUT ? CONC_ETIMEDOUT : conc__pipe_lost(p, (int)n);
        p->hdr_got += (size_t)n;
        int rc = conc__frame_decode(p->hdr, p->hdr_got, p->max, &p->msg_len);
        if (rc == CONC__FRAME_OK)
            p->have_len = true;
        else if (rc == CONC__FRAME_TOO_BIG)
            return conc__pipe_lost(p, CONC_ERANGE);
        else if (rc != CONC__FRAME_NEED_MORE)
            return conc__pipe_lost(p, CONC_EIO);
    }
    return 0;
}

/* Keeps the got bytes of buf read so far for the next recv. */
static int conc__pipe_keep(conc_pipe *p, const unsigned char *buf, size_t got, int code)
{
    if (got == 0)
        return code;
    p->stash = malloc(got);
    if (!p->stash)
        return conc__pipe_lost(p, CONC_ENOMEM); /* the bytes are gone: so is the stream */
    memcpy(p->stash, buf, got);
    p->stash_len = got;
    return code;
}

/* Reads the payload (the header is known and fits cap) into buf. */
static int conc__pipe_read_payload(conc_pipe *p, unsigned char *buf, int64_t deadline)
{
    size_t got = p->stash_len;
    if (got > 0)
        memcpy(buf, p->stash, got);
    free(p->stash);
    p->stash = NULL;
    p->stash_len = 0;
    while (got < p->msg_len) {
        ssize_t n = conc__pipe_read(p, buf + got, p->msg_len - got, deadline);
        if (n == 0)
            return conc__pipe_lost(p, CONC_EIO);
        if (n == CONC_ETIMEDOUT)
            return conc__pipe_keep(p, buf, got, CONC_ETIMEDOUT);
        if (n < 0)
            return conc__pipe_lost(p, (int)n);
        got += (size_t)n;
    }
    return 0;
}

int conc_pipe_recv_timed(conc_pipe *p, void *buf, size_t cap, size_t *len, int64_t timeout)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL pipe");
    if (!len)
        return CONC__MISUSE(CONC_EINVAL, "NULL len");
    if (!buf && cap > 0)
        return CONC__MISUSE(CONC_EINVAL, "NULL buf with cap > 0");
    int64_t deadline;
    if (conc__deadline(timeout, &deadline) != 0)
        return conc__bad_timeout();
    if (p->recv_err)
        return p->recv_err;
    int rc = conc__pipe_read_header(p, deadline);
    if (rc != 0)
        return rc;
    if (p->msg_len > cap) {
        *len = (size_t)p->msg_len;
        return CONC_EOVERFLOW;
    }
    rc = conc__pipe_read_payload(p, buf, deadline);
    if (rc != 0)
        return rc;
    *len = (size_t)p->msg_len;
    p->hdr_got = 0;
    p->have_len = false;
    return 0;
}

int conc_pipe_recv(conc_pipe *p, void *buf, size_t cap, size_t *len)
{
    return conc_pipe_recv_timed(p, buf, cap, len, CONC_FOREVER);
}

int conc_pipe_poll_timed(conc_pipe *p, int64_t timeout)
{
    if (!p)
        return CONC__MISUSE(CONC_EINVAL, "NULL pipe");
    int64_t deadline;
    if (conc__deadline(timeout, &deadline) != 0)
        return conc__bad_timeout();
    if (p->recv_err)
        return 1;
    int rc = conc__pipe_wait(p->fd, POLLIN, deadline);
    if (rc == CONC_ETIMEDOUT)
        return 0;
    return rc == 0 ? 1 : rc;
}
