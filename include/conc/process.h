/* conc/process.h — processes: Python's multiprocessing for C.
 *
 * Processes are the answer to work that must be isolated: their own memory,
 * killable, a crash stays inside. This header gathers what crosses between
 * them:
 *   - pipes that carry framed messages (multiprocessing.Pipe's Connection:
 *     send_bytes / recv_bytes), with timeouts, never a SIGPIPE;
 *   - shared memory: anonymous and named segments (multiprocessing's
 *     shared_memory, Value, Array);
 *   - the robust process-shared mutex, conc_pmutex: when its holder dies, the
 *     next locker learns it (CONC_EOWNERDEAD) instead of waiting forever, as
 *     a multiprocessing.Lock would.
 * The non-robust process-shared primitives (mutex, semaphore, condition,
 * event, barrier, rwlock with opts.pshared) are in sync.h.
 *
 * Blocking calls come in two forms (base.h, docs/api.md): conc_X_verb(...)
 * waits as long as it takes, conc_X_verb_timed(..., timeout) gives up.
 */
#ifndef CONC_PROCESS_H
#define CONC_PROCESS_H

#include <conc/base.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pipes and messages ---- */

/* A pipe is two connected ends, as Python's multiprocessing.Pipe(duplex=True):
 * each end sends and receives whole messages (byte strings of any length,
 * 0 included), in order, to and from the other end. Python's send_bytes,
 * recv_bytes_into and poll; conc does not pickle: a message is bytes.
 *
 * An end is a Unix stream socket (socketpair) with a small state: it works
 * between threads, and between processes — an end created before fork() is
 * usable in the child (the child usually destroys the end it does not use,
 * the parent the other). The descriptors are close-on-exec: a program
 * exec'd by either process does not inherit them.
 *
 * A message crosses as one frame: a 16-byte header (magic, version, and the
 * payload's length as 64 bits, little-endian) and the payload. A message
 * longer than the socket's buffer is written and read in pieces; the reader
 * only ever returns whole messages.
 *
 * Never a SIGPIPE: sending to an end whose peer is closed returns CONC_EPIPE
 * whatever the program's SIGPIPE disposition.
 *
 * Threads: an end is used by one sending thread and one receiving thread at
 * a time (a send and a recv on the same end may run at once: their states
 * are separate); two threads sending, or two receiving, on one end at the
 * same time is undefined. No lock is taken (Python's Connection has none
 * either). Blocking calls come in two forms (base.h): the untimed waits as
 * long as it takes, the _timed form gives up at its deadline. */
typedef struct conc_pipe conc_pipe;

/* The default opts.max_message: 64 MiB. */
#define CONC_PIPE_MAX_MESSAGE_DEFAULT ((size_t)64 << 20)

typedef struct conc_pipe_opts {
    /* The largest message this end sends or accepts, in bytes; 0 is
     * CONC_PIPE_MAX_MESSAGE_DEFAULT. A frame announcing more is refused
     * (CONC_ERANGE) before anything is allocated or read: a corrupt or
     * hostile peer cannot make the reader wait for, or buffer, 2^63 bytes. */
    size_t max_message;
    uint64_t reserved_[4];
} conc_pipe_opts;

/* Makes a connected pair of ends in *a and *b (either sends to the other),
 * both with opts (NULL: the defaults). Returns 0, CONC_EINVAL (NULL a or b,
 * non-zero reserved options), CONC_EMFILE (out of descriptors), CONC_ENOMEM.
 * Never blocks. */
CONC_API int conc_pipe_create(conc_pipe **a, conc_pipe **b, const conc_pipe_opts *opts);

/* Closes the end and frees it. The peer then reads the end of the stream:
 * CONC_EPIPE at a message boundary, CONC_EIO in the middle of a message.
 * Returns 0 or CONC_EINVAL (NULL). Never blocks. In a forked child, destroy
 * closes only the child's descriptor: the parent's end stays open. */
CONC_API int conc_pipe_destroy(conc_pipe *p);

/* Sends the len bytes at buf as one message (buf may be NULL when len is 0).
 * Returns 0 once the whole frame is in the socket (the peer may not have
 * read it yet), or:
 *   CONC_ETIMEDOUT  (timed form) the deadline passed before any byte of the
 *                   message was written: nothing was sent, the end is fine;
 *   CONC_EBROKEN    the deadline passed after part of the frame was written.
 *                   A frame is never left half-sent for a later one to
 *                   corrupt: the end stops sending (shutdown of its writing
 *                   side), so the peer receives the messages before it and
 *                   then CONC_EIO (a cut frame); every later send on this
 *                   end returns CONC_EBROKEN. Receiving still works;
 *   CONC_EPIPE      the peer is closed (never a SIGPIPE);
 *   CONC_ERANGE     len is above this end's opts.max_message (nothing sent);
 *   CONC_EINVAL     NULL p, NULL buf with len > 0, negative timeout.
 * Blocks while the socket's buffer is full (the peer reads too slowly).
 * Python's send_bytes. */
CONC_API int conc_pipe_send(conc_pipe *p, const void *buf, size_t len);
CONC_API int conc_pipe_send_timed(conc_pipe *p, const void *buf, size_t len, int64_t timeout);

/* Receives the next message into buf (cap bytes) and its length into *len.
 * Returns 0, or:
 *   CONC_EOVERFLOW  the message is longer than cap: *len is its length, and
 *                   it stays to be received (call again with a buffer of
 *                   *len bytes; with buf NULL and cap 0 this asks for the
 *                   next message's length). Python raises BufferTooShort;
 *   CONC_EPIPE      the peer is closed and every message before was
 *                   received: the end of the stream (Python's EOFError);
 *   CONC_EIO        the peer closed in the middle of a frame (a cut
 *                   message), or sent bytes that are not a frame;
 *   CONC_ERANGE     the next frame announces more than opts.max_message;
 *   CONC_ETIMEDOUT  (timed form) no whole message by the deadline. What
 *                   arrived of a message is kept: the next recv goes on
 *                   from there, so a timeout never loses or splits one;
 *   CONC_EINVAL     NULL p or len, NULL buf with cap > 0, negative timeout.
 * After CONC_EIO or CONC_ERANGE the stream cannot be resynchronised: every
 * later recv returns the same code (Python closes the reading side too).
 * Blocks until a whole message has arrived. *len is set only with 0 and
 * CONC_EOVERFLOW. */
CONC_API int conc_pipe_recv(conc_pipe *p, void *buf, size_t cap, size_t *len);
CONC_API int conc_pipe_recv_timed(conc_pipe *p, void *buf, size_t cap, size_t *len,
                                  int64_t timeout);

/* Whether something is there to receive: 1 when data, the end of the
 * stream, or an error is waiting (recv then returns without waiting for
 * its start; a long message's rest may still be on its way), 0 when nothing
 * came by the deadline. Returns CONC_EINVAL (NULL p, negative timeout).
 * Waits up to timeout (0: looks once). Python's Connection.poll(timeout). */
CONC_API int conc_pipe_poll_timed(conc_pipe *p, int64_t timeout);

/* The end's descriptor, for poll() or epoll (readable: conc_pipe_poll would
 * return 1; writable: a send would start without waiting). The end owns
 * it: do not close it or read and write it directly. Returns the descriptor
 * (>= 0) or CONC_EINVAL (NULL p). */
CONC_API int conc_pipe_fd(const conc_pipe *p);

/* ---- shared memory ---- */

/* ---- the robust process-shared mutex ---- */

#ifdef __cplusplus
}
#endif

#endif
