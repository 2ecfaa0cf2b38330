/* conc/process.h — processes: Python's multiprocessing for C.
 *
 * Processes are the answer to work that must be isolated: their own memory,
 * killable, a crash stays inside. This header gathers what crosses between
 * them:
 *   - processes: a program started with its arguments, environment and
 *     standard streams (Python's subprocess.Popen), joined with a timeout,
 *     terminated or killed, its exit code in Python's convention;
 *   - pipes that carry framed messages (multiprocessing.Pipe's Connection:
 *     send_bytes / recv_bytes), with timeouts, never a SIGPIPE;
 *   - shared memory: anonymous and named segments (multiprocessing's
 *     shared_memory, Value, Array);
 *   - the robust process-shared mutex, conc_pmutex: when its holder dies, the
 *     next locker learns it (CONC_EOWNERDEAD) instead of waiting forever, as
 *     a multiprocessing.Lock would.
 *   - the process queue, conc_pqueue: a bounded FIFO in shared memory
 *     (multiprocessing.JoinableQueue) that a process killed in the middle of
 *     a put or a get cannot corrupt nor block;
 *   - the process pool, conc_procpool: Python's ProcessPoolExecutor, whose
 *     futures are the thread pool's, and which a crashed worker does not
 *     take down.
 * The non-robust process-shared primitives (mutex, semaphore, condition,
 * event, barrier, rwlock with opts.pshared) are in sync.h.
 *
 * Blocking calls come in two forms (base.h, docs/api.md): conc_X_verb(...)
 * waits as long as it takes, conc_X_verb_timed(..., timeout) gives up.
 */
#ifndef CONC_PROCESS_H
#define CONC_PROCESS_H

#include <conc/base.h>
#include <conc/future.h>
#include <conc/pool.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- processes ----
 *
 * conc_process_spawn starts a program (Python's subprocess.Popen with
 * shell=False): a program name without a '/' is looked up in PATH, a path
 * is used as it is; a program that does not exist or cannot be executed is
 * reported by conc_process_spawn itself (CONC_ENOENT, CONC_EACCES, ...),
 * never as a child that exits with 127.
 *
 * Exit codes follow Python's Popen.returncode: the status the child passed
 * to exit(), or -signum when a signal ended it (-9 for SIGKILL).
 *
 * A child never outlives a parent that dies, unless started detached: it
 * gets SIGKILL when its parent does (PR_SET_PDEATHSIG). Linux sends that
 * signal when the *thread* that forked the child ends, not the process, so a
 * child started from any thread but the main one is forked by a thread of
 * conc's that lives as long as the process: a child started from a pool
 * worker does not die with that worker. (A main thread that calls
 * pthread_exit while the program goes on does take its children with it.)
 *
 * Children are watched through a pidfd (Linux 5.3): joining sleeps in the
 * kernel until the child ends or the timeout passes, without polling.
 *
 * Every conc_process must be joined (which reaps the child; kill it first
 * if it must not finish) before conc_process_destroy, as Python's
 * Process.close refuses a running process: an unjoined child would stay a
 * zombie once it ends. A program that sets SIGCHLD to SIG_IGN, or reaps
 * with waitpid(-1), takes the exit codes away: join then answers
 * CONC_ECHILD. */

typedef struct conc_process conc_process;

/* Where a child's standard stream goes (conc_process_opts.stdio). */
typedef enum conc_stdio_mode {
    CONC_STDIO_INHERIT = 0, /* the parent's stream (the default) */
    CONC_STDIO_NULL,        /* /dev/null */
    CONC_STDIO_PIPE,        /* a pipe whose other end conc_process_stdio_fd gives the parent */
    CONC_STDIO_FILE,        /* path: read for stdin; created or truncated (0644) for the others */
    CONC_STDIO_FD           /* fd, the caller's descriptor (it stays open in the parent) */
} conc_stdio_mode;

typedef struct conc_stdio {
    conc_stdio_mode mode;
    const char *path; /* CONC_STDIO_FILE */
    int fd;           /* CONC_STDIO_FD */
} conc_stdio;

typedef struct conc_process_opts {
    conc_stdio stdio[3]; /* stdin, stdout, stderr; zero: inherited */
    const char *cwd;     /* the child's working directory; NULL: the parent's */
    /* Survives its parent: no death signal, and a session of its own
     * (setsid), so a terminal's hang-up or Ctrl-C does not reach it either. */
    bool detached;
    uint64_t reserved_[4]; /* zero */
} conc_process_opts;

/* Starts program with argv (argv[0] first, NULL-terminated) and envp
 * (NULL-terminated; NULL: the parent's environment). The child starts with
 * the calling thread's signal mask and SIGPIPE at its default (as Python's
 * restore_signals), and no descriptor of the parent but its three streams
 * and those without FD_CLOEXEC. Returns 0, CONC_ENOENT (no such program or
 * cwd), CONC_EACCES (not executable), CONC_ENOTSUP (not a format this system
 * runs), another code of the failed exec (-errno), or
 * CONC_EINVAL (NULL out, program or argv, an empty argv, a stdio mode
 * without its path or fd). */
CONC_API int conc_process_spawn(conc_process **out, const char *program, char *const argv[],
                                char *const envp[], const conc_process_opts *opts);

/* A function a child runs: a copy of the argument bytes given to
 * conc_process_start, and their size. Its return value (0 to 255) is the
 * child's exit status. */
typedef int (*conc_process_fn)(const void *arg, size_t size);

/* The most argument bytes conc_process_start carries. */
#define CONC_PROCESS_ARG_MAX ((size_t)64 << 10)

/* Runs fn(copy of arg, size) in a new child process (Python's
 * multiprocessing.Process with the forkserver start method, CPython 3.14's
 * default on Linux). Safe from a program that runs threads: the child is
 * forked by conc's fork server, a second image of this program started on
 * the first call (/proc/self/exe, entered from conc's constructor before
 * main), which never runs a thread, so no lock is ever held in the child.
 * The child therefore starts in the state of a fresh program before main —
 * constructors run, globals at their initial values — and gets what it
 * needs in its argument bytes. fn must be in the program or in a library
 * loaded at its start (not by dlopen): CONC_ENOENT otherwise. The child
 * shares the server's standard streams (the program's, as they were at the
 * first call) and dies with the program unless it ends first; join,
 * terminate, kill and destroy work as for a spawned program, and a signal
 * that ends it gives -signum. If the fork server itself is killed, its
 * children die with it and their exit codes with it: join answers
 * CONC_EBROKEN (and destroy then frees the handle), and the next start
 * starts a new server. opts: NULL (options of a spawn do not apply).
 * Returns 0, CONC_EINVAL (NULL out or fn, arg NULL with size > 0, opts not
 * NULL), CONC_EOVERFLOW (size > CONC_PROCESS_ARG_MAX), CONC_ENOENT,
 * CONC_ENOSYS (the server could not start: conc loaded by dlopen, or no
 * /proc), or a system error. */
CONC_API int conc_process_start(conc_process **out, conc_process_fn fn, const void *arg,
                                size_t size, const conc_process_opts *opts);

/* Registered functions: a name that means the same function in every image
 * of the program — this process, its fork server, and the processes of a
 * job on other machines, which load the program at other addresses.
 * CONC_PROCESS_FN(name, fn), at file scope, registers fn under the
 * identifier name when the program (or the library holding it) is loaded;
 * conc_process_start_named starts it by that name. Names are unique in a
 * program: a second registration of a name shadows the first. */
struct conc_process_fn_entry {
    const char *name;
    conc_process_fn fn;
    struct conc_process_fn_entry *next; /* the registry's */
};

/* What CONC_PROCESS_FN calls from a constructor: e must stay valid for good
 * (a static). Safe from several threads; never fails. */
CONC_API void conc_process_fn_register(struct conc_process_fn_entry *e);

#define CONC_PROCESS_FN(name, fn)                                                     \
    static struct conc_process_fn_entry conc__process_fn_entry_##name = {#name, fn, 0}; \
    __attribute__((constructor)) static void conc__process_fn_register_##name(void)     \
    {                                                                                 \
        conc_process_fn_register(&conc__process_fn_entry_##name);                     \
    }

/* The function registered under name, or NULL. */
CONC_API conc_process_fn conc_process_fn_lookup(const char *name);

/* conc_process_start of the function registered under name: CONC_ENOENT if
 * none is, CONC_EINVAL for a NULL name; otherwise as conc_process_start. */
CONC_API int conc_process_start_named(conc_process **out, const char *name, const void *arg,
                                      size_t size, const conc_process_opts *opts);

/* Waits for the child to end and reaps it; *exit_code (may be NULL) gets
 * its exit code. Joining again returns the same code. Several threads may
 * join one process. The timed form returns CONC_ETIMEDOUT when the child
 * still runs at the deadline (0: a check, as Python's poll()). */
CONC_API int conc_process_join(conc_process *p, int *exit_code);
CONC_API int conc_process_join_timed(conc_process *p, int *exit_code, int64_t timeout);

/* 1 while the child runs, 0 once it has ended, or a negative error. */
CONC_API int conc_process_is_alive(conc_process *p);
/* The child's process id (positive), or CONC_EINVAL for NULL. */
CONC_API int64_t conc_process_pid(conc_process *p);
/* Sends SIGTERM (terminate) or SIGKILL (kill), through the pidfd, so never
 * to another process that took a reaped child's id. 0 also when the child
 * had ended already (Python's terminate() does nothing then). */
CONC_API int conc_process_terminate(conc_process *p);
CONC_API int conc_process_kill(conc_process *p);
/* The parent's end of a stream started with CONC_STDIO_PIPE: which is 0
 * (stdin: write to it), 1 or 2 (stdout, stderr: read from it). The
 * descriptor belongs to p (closed by destroy; close it earlier with
 * conc_process_close_stdio, e.g. to send end-of-file to the child's stdin).
 * CONC_EBADF if that stream is not a pipe or was closed. */
CONC_API int conc_process_stdio_fd(conc_process *p, int which);
CONC_API int conc_process_close_stdio(conc_process *p, int which);
/* Frees p and closes its pipes. CONC_EBUSY while the child has not been
 * joined (nothing is freed then). NULL: nothing. */
CONC_API int conc_process_destroy(conc_process *p);

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

/* ---- shared memory ----
 * A segment is memory several processes map at once: anonymous, shared with
 * the children forked after its creation (multiprocessing's Value and Array
 * live in one), or named, opened by name from any process
 * (multiprocessing.shared_memory.SharedMemory). Either way it starts
 * zero-filled, page-aligned, mapped read and write. Put process-shared
 * objects in it (opts.pshared of sync.h, conc_pmutex below): an all-zero
 * conc_mutex there is a private one, which cannot wake a sleeper in another
 * process.
 *
 * conc_shm is a heap handle (conc_shm_create/open ... conc_shm_destroy). A
 * forked child has its own copy of the handle and of the mapping: its
 * destroy unmaps its own, nothing else.
 *
 * The name. A named segment belongs to the process that created it: its
 * destroy removes the name (from /dev/shm) unless opts.keep says otherwise,
 * and only its own, never a segment made since under the same name.
 * Processes that have it mapped keep their memory; new opens fail with
 * CONC_ENOENT. A process that dies before its destroy leaves the name
 * behind, as every POSIX segment: conc_shm_unlink as soon as every peer has
 * opened it leaves nothing even then, and conc_shm_unlink_name removes a
 * name a dead process left. */
typedef struct conc_shm conc_shm;

/* Names: "name" or "/name" (the same segment), 1 to CONC_SHM_NAME_MAX
 * characters after the slash, no other '/', not "." or "..". */
#define CONC_SHM_NAME_MAX 253

typedef struct conc_shm_opts {
    const char *name; /* NULL: anonymous; else the new segment's name */
    bool keep;        /* named: keep the name after the creator's destroy */
    uint64_t reserved_[4];
} conc_shm_opts;

/* Makes a segment of size bytes (zero-filled) and maps it. A named one is
 * created only if the name is free, with its memory reserved at once: a
 * full /dev/shm (a container's 64 MiB) fails here with CONC_ENOMEM rather
 * than killing the process with SIGBUS at the first touch. Returns 0,
 * CONC_EEXIST (the name is taken), CONC_EACCES, CONC_EMFILE (out of file
 * descriptors), CONC_ENOMEM, CONC_EOVERFLOW (size past what can be
 * mapped), CONC_EINVAL (NULL shm, size 0, a bad name, non-zero reserved
 * options). *shm is NULL on failure. Thread-safe, never blocks. */
CONC_API int conc_shm_create(conc_shm **shm, size_t size, const conc_shm_opts *opts);
/* Maps the whole of an existing named segment (Python's
 * SharedMemory(name)). Returns 0, CONC_ENOENT (no segment by that name),
 * CONC_EACCES, CONC_EMFILE, CONC_ENOMEM, CONC_EINVAL (NULL arguments, a bad
 * name, an empty segment). Thread-safe, never blocks. */
CONC_API int conc_shm_open(conc_shm **shm, const char *name);
/* Unmaps the segment and frees the handle (Python's close()); in the
 * process that created a named segment without opts.keep, also removes its
 * name, as conc_shm_unlink. Pointers into the segment are invalid after it.
 * Returns 0, CONC_EINVAL (NULL). Thread-safe for distinct handles; never
 * blocks. */
CONC_API int conc_shm_destroy(conc_shm *shm);
/* Removes the name of shm's segment now (Python's unlink()): mappings stay
 * valid, new opens fail, the memory goes with the last mapping. Returns 0,
 * CONC_ENOENT (removed already, by this or another process), CONC_EACCES,
 * CONC_EINVAL (NULL, an anonymous segment). Never blocks. */
CONC_API int conc_shm_unlink(conc_shm *shm);
/* Removes a segment's name without opening it (the leftovers of a process
 * that died). Returns 0, CONC_ENOENT, CONC_EACCES, CONC_EINVAL (NULL, a bad
 * name). Never blocks. */
CONC_API int conc_shm_unlink_name(const char *name);
/* The segment's first byte (page-aligned), or NULL for a NULL shm. */
CONC_API void *conc_shm_addr(conc_shm *shm);
/* Its size in bytes as created (an opened one: the segment's size), or
 * CONC_EINVAL (NULL). */
CONC_API int64_t conc_shm_size(conc_shm *shm);
/* Copies the name ("/name", as /dev/shm shows it without the slash) into
 * buf, truncated to size - 1 bytes, always terminated; "" for an anonymous
 * segment. Returns 0, CONC_EINVAL (NULL arguments, size 0). */
CONC_API int conc_shm_get_name(conc_shm *shm, char *buf, size_t size);

/* ---- the robust process-shared mutex ----
 * A mutex for shared memory that survives the death of its holder: when the
 * thread holding it dies (its process killed, crashed, or exiting; or the
 * thread ending) the next locker gets the lock with CONC_EOWNERDEAD instead
 * of waiting forever. The data it guards may be half-updated: repair it,
 * then conc_pmutex_consistent, then unlock as usual. Unlocking without
 * conc_pmutex_consistent gives up on it: every later lock returns
 * CONC_ENOTRECOVERABLE until conc_pmutex_destroy and conc_pmutex_init
 * again.
 *
 *     int rc = conc_pmutex_lock_timed(&sh->lock, CONC_SEC(1));
 *     if (rc == CONC_EOWNERDEAD) {          // ours, but its last owner died
 *         repair(sh);
 *         rc = conc_pmutex_consistent(&sh->lock);
 *     }
 *     if (rc != 0)
 *         return rc;                        // CONC_ETIMEDOUT, ...
 *     ...                                   // the critical section
 *     conc_pmutex_unlock(&sh->lock);
 *
 * It is owned by the OS thread that locked it: the unlock comes from that
 * thread (CONC_EPERM otherwise), a re-lock is CONC_EDEADLK. It always works
 * across processes (there is no pshared option) and needs conc_pmutex_init:
 * an all-zero one answers CONC_EINVAL. It is glibc's robust mutex, which
 * the kernel releases for a dying thread; conc_mutex with opts.pshared is
 * the smaller, faster one with no such guarantee (a holder that dies leaves
 * it locked). Lock-order checking and lock statistics do not see it.
 * Every function is thread-safe. */
typedef struct conc_pmutex {
    _Alignas(8) unsigned char opaque_[64];
} conc_pmutex;

typedef struct conc_pmutex_opts {
    uint64_t reserved_[4];
} conc_pmutex_opts;

/* Initialises p, unlocked (also over a destroyed one). opts may be NULL.
 * Returns 0, CONC_EINVAL (NULL p, non-zero reserved options), CONC_ENOMEM. */
CONC_API int conc_pmutex_init(conc_pmutex *p, const conc_pmutex_opts *opts);
/* Returns 0 (also for one that is not recoverable), CONC_EBUSY (locked by
 * a live thread, the caller included), CONC_EBADF (destroyed already),
 * CONC_EINVAL (NULL; never initialised). Never blocks. */
CONC_API int conc_pmutex_destroy(conc_pmutex *p);
/* Blocks until p is the caller's. Returns 0, CONC_EOWNERDEAD (the caller
 * holds it now; its last owner died holding it), CONC_ENOTRECOVERABLE (it
 * was given up: nobody holds it, nobody can), CONC_EDEADLK (the caller
 * holds it already), CONC_EBADF (destroyed), CONC_EINVAL (NULL; never
 * initialised; a negative timeout). The timed form gives up after timeout
 * ns with CONC_ETIMEDOUT (measured on the monotonic clock); 0 is a try. */
CONC_API int conc_pmutex_lock(conc_pmutex *p);
CONC_API int conc_pmutex_lock_timed(conc_pmutex *p, int64_t timeout);
/* Returns 0, CONC_EPERM (the calling thread does not hold it), CONC_EBADF,
 * CONC_EINVAL. Never blocks. */
CONC_API int conc_pmutex_unlock(conc_pmutex *p);
/* After CONC_EOWNERDEAD, by the new holder: the state is repaired, the
 * mutex works as before. Returns 0, CONC_EPERM (the caller does not hold
 * it), CONC_ESTATE (it is consistent: no owner died), CONC_EBADF,
 * CONC_EINVAL. Never blocks. */
CONC_API int conc_pmutex_consistent(conc_pmutex *p);

/* ---- system-wide mutexes and semaphores ----
 *
 * Opened by name from any process of the same user, related or not (a
 * multiprocessing.Lock must be inherited; these need only the name): the
 * first open creates the object, later ones attach to it — POSIX's sem_open
 * and Windows' named mutexes. The named mutex is robust, as conc_pmutex:
 * when a holder dies, the next locker gets CONC_EOWNERDEAD with the lock,
 * repairs what it guards and calls conc_named_mutex_consistent, or every
 * later lock answers CONC_ENOTRECOVERABLE. The semaphore is a
 * process-shared conc_sem; value is its start value when this open creates
 * it (ignored otherwise).
 *
 * Each lives in a shared memory segment named "conc.mutex.NAME" or
 * "conc.sem.NAME" (in /dev/shm, mode 0600). The name stays until
 * conc_named_*_unlink removes it, whoever created it: no process owns it.
 * Open returns 0, CONC_EINVAL (NULL out, an empty or too long name, a name
 * that holds the other kind), CONC_EPERM (another user's), CONC_EBROKEN (its
 * creator died before initialising it: unlink the name), or a system error.
 * close frees the handle (NULL: nothing); the object and its name stay. */
typedef struct conc_named_mutex conc_named_mutex;
typedef struct conc_named_sem conc_named_sem;

CONC_API int conc_named_mutex_open(conc_named_mutex **out, const char *name);
CONC_API int conc_named_mutex_lock(conc_named_mutex *m);
CONC_API int conc_named_mutex_lock_timed(conc_named_mutex *m, int64_t timeout);
CONC_API int conc_named_mutex_unlock(conc_named_mutex *m);
CONC_API int conc_named_mutex_consistent(conc_named_mutex *m);
CONC_API int conc_named_mutex_close(conc_named_mutex *m);
CONC_API int conc_named_mutex_unlink(const char *name);

CONC_API int conc_named_sem_open(conc_named_sem **out, const char *name, size_t value);
CONC_API int conc_named_sem_acquire(conc_named_sem *s);
CONC_API int conc_named_sem_acquire_timed(conc_named_sem *s, int64_t timeout);
CONC_API int conc_named_sem_release(conc_named_sem *s);
CONC_API int conc_named_sem_close(conc_named_sem *s);
CONC_API int conc_named_sem_unlink(const char *name);

/* ---- process queues ----
 * A bounded FIFO queue between processes (Python's multiprocessing.Queue and
 * JoinableQueue, with queue.Queue's operations): items of a fixed size,
 * copied in and out by value, live entirely in a shared memory segment the
 * queue creates. Anonymous by default: the children forked after
 * conc_pqueue_create use the same handle. Named (opts.name): any process
 * attaches with conc_pqueue_open; the name follows conc_shm's rules (the
 * creator's destroy removes it).
 *
 * The operations and their answers are conc_queue's (queue.h): a get that
 * finds nothing by its deadline (timeout 0: get_nowait) returns CONC_EEMPTY,
 * a put that finds no room CONC_EFULL; task_done/join count unfinished
 * tasks; shutdown is Python 3.13's (afterwards put fails with
 * CONC_ESHUTDOWN, get drains what is left then fails with CONC_ESHUTDOWN,
 * blocked callers in every process wake; the immediate form discards the
 * queued items and lowers the unfinished tasks by their number).
 *
 * Robust to a killed process: the queue's state is guarded by two
 * conc_pmutex (one for puts, one for gets), and every change of it is one
 * store made after the item's bytes are copied, so a process killed at any
 * point of a call leaves the queue consistent and the others go on. Every put that returned 0 is delivered
 * exactly once; the call a killed process was in is delivered at most once
 * (a put killed before its item was in is lost; a get killed before it took
 * the item leaves it for the next get). Sleepers re-check the queue at least
 * every CONC_PQUEUE_RECHECK_NS, so a wake-up that a killed process owed
 * costs at most that much delay, never a hang.
 *
 * Every function is thread-safe and works from every process that has the
 * queue mapped. size, empty and full are snapshots. */
typedef struct conc_pqueue conc_pqueue;

/* The longest a blocked call sleeps before it looks at the queue again:
 * 100 ms. */
#define CONC_PQUEUE_RECHECK_NS ((int64_t)100 * 1000 * 1000)

typedef struct conc_pqueue_opts {
    const char *name; /* NULL: anonymous; else the segment's name (conc_shm's rules) */
    uint64_t reserved_[4];
} conc_pqueue_opts;

/* Creates a queue of at most capacity items of item_size bytes in a new
 * segment; *out is NULL on failure. Returns 0, CONC_EINVAL (NULL out,
 * item_size or capacity 0, a bad name, non-zero reserved options),
 * CONC_EOVERFLOW (capacity x item_size overflows), CONC_EEXIST (the name
 * is taken), CONC_EACCES, CONC_EMFILE, CONC_ENOMEM. Never blocks. */
CONC_API int conc_pqueue_create(conc_pqueue **out, size_t item_size, size_t capacity,
                                const conc_pqueue_opts *opts);
/* Attaches to the named queue another process created. item_size must be
 * the creator's. Returns 0, CONC_ENOENT (no such name), CONC_EINVAL (NULL
 * arguments, a bad name, a different item_size, a segment that is not a
 * queue or whose creator has not finished creating it), CONC_EACCES,
 * CONC_EMFILE, CONC_ENOMEM. Never blocks. */
CONC_API int conc_pqueue_open(conc_pqueue **out, const char *name, size_t item_size);
/* Unmaps the queue from this process and frees the handle; in the process
 * that created a named queue, also removes the name (conc_shm_destroy).
 * Other processes keep their mapping. Returns 0, CONC_EINVAL (NULL),
 * CONC_EBUSY while a thread of this process is blocked in it. Never blocks. */
CONC_API int conc_pqueue_destroy(conc_pqueue *q);

/* Copies item in, waiting for room. Returns 0, CONC_EFULL (timed form: no
 * room by the deadline), CONC_ESHUTDOWN, CONC_ENOTRECOVERABLE (the queue's
 * lock was given up: not by conc), CONC_EINVAL (NULL q or item, bad
 * timeout). */
CONC_API int conc_pqueue_put(conc_pqueue *q, const void *item);
CONC_API int conc_pqueue_put_timed(conc_pqueue *q, const void *item, int64_t timeout);
/* Copies the next item into out, waiting for one. Returns 0, CONC_EEMPTY
 * (timed form: none by the deadline), CONC_ESHUTDOWN (shut down and empty),
 * CONC_ENOTRECOVERABLE, CONC_EINVAL. */
CONC_API int conc_pqueue_get(conc_pqueue *q, void *out);
CONC_API int conc_pqueue_get_timed(conc_pqueue *q, void *out, int64_t timeout);

/* Snapshots: the number of items; 1 if empty (full), 0 if not. A negative
 * error (CONC_EINVAL for NULL). Never block. */
CONC_API int64_t conc_pqueue_size(conc_pqueue *q);
CONC_API int conc_pqueue_empty(conc_pqueue *q);
CONC_API int conc_pqueue_full(conc_pqueue *q);
/* Snapshots: 1 if shut down, 0 if not; the items put and not yet
 * task_done'd nor discarded. CONC_EINVAL for NULL. Never block. */
CONC_API int conc_pqueue_is_shutdown(conc_pqueue *q);
CONC_API int64_t conc_pqueue_unfinished_tasks(conc_pqueue *q);

/* One item taken earlier is finished. Returns 0, CONC_ESTATE (called more
 * times than items were taken), CONC_ENOTRECOVERABLE, CONC_EINVAL (NULL).
 * Never blocks but for the queue's lock. */
CONC_API int conc_pqueue_task_done(conc_pqueue *q);
/* Waits until every item put has been task_done'd (or discarded). Returns
 * 0, CONC_ETIMEDOUT (timed form), CONC_ENOTRECOVERABLE, CONC_EINVAL. */
CONC_API int conc_pqueue_join(conc_pqueue *q);
CONC_API int conc_pqueue_join_timed(conc_pqueue *q, int64_t timeout);
/* Shuts the queue down for every process; immediate also discards the items
 * queued. A second shutdown is allowed (an immediate one after a normal one
 * still discards). Returns 0, CONC_ENOTRECOVERABLE or CONC_EINVAL. Never
 * blocks but for the queue's lock. */
CONC_API int conc_pqueue_shutdown(conc_pqueue *q, bool immediate);

/* ---- the process pool ----
 * Python's concurrent.futures.ProcessPoolExecutor: tasks run in worker
 * processes, and each submission gives the same conc_future as the thread
 * pool (future.h): wait for it, take its result, add callbacks, cancel it
 * while it waits, mix it with any other future in conc_wait and
 * as-completed; conc_procpool_map gives a conc_map (pool.h).
 *
 * Arguments and results cross through shared memory, by value, never
 * serialized: a task gets a copy of the argument bytes, and what it leaves
 * in its conc_result (value, and up to opts.result_max bytes of data) is
 * copied back into the parent, where the future owns it.
 *
 * The workers are started as conc_process_start starts a function: forked
 * by conc's fork server, so a program that runs threads may create a pool
 * at any time. A task function (and the initializer) must be in the
 * program or in a library loaded at its start (CONC_EINVAL otherwise); it
 * sees the globals of a fresh program, as left by the initializer, never
 * the parent's memory.
 *
 * A worker that dies while it runs a task (a crash, a kill, an exit())
 * fails that task's future only, with CONC_EWORKERDIED; the result's value
 * is then the worker's exit code in Python's convention (-9 for SIGKILL).
 * A new worker takes its place and every other future goes on — where
 * Python's ProcessPoolExecutor breaks for good (BrokenProcessPool).
 *
 * conc_future_request_cancel reaches a running task: conc_cancel_requested()
 * turns true in its worker.
 *
 * Every function is thread-safe. */
typedef struct conc_procpool conc_procpool;

/* A task, run in a worker: arg and size are a copy of the submitted bytes;
 * out (zeroed) receives the result as a thread pool task's does: a value,
 * and data/len, which are copied to the parent (free_fn, if set, is then
 * called on data in the worker). Returns the task's status. */
typedef int (*conc_proc_task_fn)(const void *arg, size_t size, conc_result *out);

/* An initializer, run once by each worker before its first task. A status
 * other than 0 breaks the pool (Python's BrokenProcessPool): the futures
 * not yet run fail with CONC_EBROKEN, later submissions are refused with
 * it, and no worker is started again. */
typedef int (*conc_proc_init_fn)(const void *arg, size_t size);

/* The argument and result size a pool carries by default. */
#define CONC_PROCPOOL_DATA_DEFAULT ((size_t)64 << 10)

typedef struct conc_procpool_opts {
    size_t max_workers;           /* 0: the CPUs this process may run on */
    size_t max_tasks_per_child;   /* a worker ends after this many tasks, and a
                                     fresh one replaces it; 0: never */
    size_t arg_max;               /* the largest argument, bytes; 0: CONC_PROCPOOL_DATA_DEFAULT */
    size_t result_max;            /* the largest result data; 0: CONC_PROCPOOL_DATA_DEFAULT */
    conc_proc_init_fn initializer; /* NULL: none */
    const void *initargs;         /* its argument bytes, copied; at most arg_max */
    size_t initargs_size;
    uint64_t reserved_[4];        /* zero */
} conc_procpool_opts;

/* Creates a pool and starts its workers. Returns 0, CONC_EINVAL (NULL pp,
 * non-zero reserved options, an initializer not in a loaded module's code,
 * initargs larger than arg_max or NULL with a size), CONC_ENOMEM,
 * CONC_ENOSYS (the fork server could not start), or the error of a
 * worker's start. */
CONC_API int conc_procpool_create(conc_procpool **pp, const conc_procpool_opts *opts);

/* Submits fn(copy of arg[0..size)) and stores its future in *f (may be
 * NULL: fire and forget). Never blocks: a task that finds no idle worker
 * waits in the parent. Returns 0, CONC_EINVAL (NULL pp or fn, arg NULL
 * with size > 0, fn not in a loaded module's code), CONC_EOVERFLOW (size
 * above the pool's arg_max), CONC_ESHUTDOWN, CONC_EBROKEN (the initializer
 * failed), CONC_ENOMEM. A result larger than result_max fails its future
 * with CONC_EOVERFLOW. */
CONC_API int conc_procpool_submit(conc_procpool *pp, conc_proc_task_fn fn, const void *arg,
                                  size_t size, conc_future **f);

/* Python's map over n items of item_size bytes at items (which must stay
 * valid until the map is destroyed): fn(item, item_size, out) runs in the
 * workers, chunksize items per task, and the results come out of
 * conc_map_next in index order (or as completed), as a thread pool's map.
 * A chunk's items must fit arg_max (CONC_EOVERFLOW otherwise); the results
 * of one chunk together must fit result_max (16 bytes per item plus its
 * data): the item that does not fit ends with CONC_EOVERFLOW. A worker that
 * dies in a chunk ends the map at that chunk's first index with
 * CONC_EWORKERDIED. Returns 0, CONC_EINVAL (NULL m, pp or fn, items NULL
 * with n > 0, item_size 0, non-zero reserved options), CONC_EOVERFLOW,
 * CONC_ESHUTDOWN, CONC_EBROKEN, CONC_ENOMEM. */
CONC_API int conc_procpool_map(conc_map **m, conc_procpool *pp, conc_proc_task_fn fn,
                               const void *items, size_t item_size, size_t n,
                               const conc_map_opts *opts);

/* Python's shutdown(wait=True, cancel_futures): submissions fail with
 * CONC_ESHUTDOWN from now on; cancel_futures cancels the tasks not yet
 * started; then waits until every started or queued task has ended and the
 * workers have exited. The timed form gives up at the deadline with
 * CONC_ETIMEDOUT (the pool stays shut down; 0: shut down and return, as
 * wait=False). Returns 0, CONC_ETIMEDOUT, CONC_EINVAL. A second call is
 * allowed. */
CONC_API int conc_procpool_shutdown(conc_procpool *pp, bool cancel_futures);
CONC_API int conc_procpool_shutdown_timed(conc_procpool *pp, bool cancel_futures,
                                          int64_t timeout);

/* Python 3.14's terminate_workers and kill_workers: shuts the pool down,
 * cancels the tasks not started, and sends SIGTERM (SIGKILL) to every
 * worker; the tasks they were running fail with CONC_EWORKERDIED. Does not
 * wait (conc_procpool_shutdown or destroy does). Returns 0 or CONC_EINVAL. */
CONC_API int conc_procpool_terminate_workers(conc_procpool *pp);
CONC_API int conc_procpool_kill_workers(conc_procpool *pp);

/* Shuts down, waits for every task (conc_procpool_shutdown), and frees the
 * pool. Futures still referenced stay valid. Returns 0 (NULL: nothing), or
 * CONC_EBROKEN in a forked child, for a pool inherited from the parent
 * (nothing is freed: its collector thread stayed behind). */
CONC_API int conc_procpool_destroy(conc_procpool *pp);

/* The pool's max_workers. CONC_EINVAL for NULL. Never blocks. */
CONC_API int64_t conc_procpool_workers(conc_procpool *pp);

/* Stores the process ids of the live workers into pids[0..min(n, cap))
 * and returns n, their number (a snapshot). CONC_EINVAL (NULL pp, or NULL
 * pids with cap > 0). */
CONC_API int64_t conc_procpool_worker_pids(conc_procpool *pp, int64_t *pids, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
