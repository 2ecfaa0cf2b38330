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
 * The non-robust process-shared primitives (mutex, semaphore, condition,
 * event, barrier, rwlock with opts.pshared) are in sync.h.
 *
 * Blocking calls come in two forms (base.h, docs/api.md): conc_X_verb(...)
 * waits as long as it takes, conc_X_verb_timed(..., timeout) gives up.
 */
#ifndef CONC_PROCESS_H
#define CONC_PROCESS_H

#include <conc/base.h>

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

#ifdef __cplusplus
}
#endif

#endif
