/* conc/debug.h — diagnostics that find what the textbooks warn about:
 * lock-order (deadlock) checking, a watchdog for actual deadlocks, dumps of
 * who waits for what, lock statistics (contention, starvation) and
 * timeline traces.
 *
 * Everything is off by default and costs one predictable branch per lock
 * operation while off. Each part is switched on at run time, by an API call
 * or by an environment variable read when the library loads:
 *
 *   CONC_LOCKDEP=1 | log | error | abort   lock-order checking (1 = log)
 *   CONC_LOCKSTAT=1                        lock statistics, printed at exit
 *   CONC_TRACE=trace.json                  a timeline, written at exit
 *
 * Which locks: conc_mutex, conc_rmutex and conc_rwlock, and a conc_sem
 * created with opts.lock_like (a counting semaphore has no owner, so it has
 * no order). Process-shared locks stay out of the checker: their peers in
 * other processes are invisible to it. A lock's class — what an order edge
 * connects — is the name given with conc_lock_set_name (or the init site,
 * where the lock was initialised through the conc_X_init macros), else the
 * lock's address. Everything is kept in side tables, never in the lock's
 * own memory.
 *
 * Every function is thread-safe and returns 0 or a negative CONC_E* code
 * unless it says otherwise.
 */
#ifndef CONC_DEBUG_H
#define CONC_DEBUG_H

#include <conc/base.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reports ---- */

/* Where reports go (lock-order violations, watchdog findings, dumps):
 * fn(text, arg) with one whole report, text ending in a newline. NULL
 * restores the default, standard error. */
typedef void (*conc_debug_report_fn)(const char *text, void *arg);
CONC_API int conc_debug_set_reporter(conc_debug_report_fn fn, void *arg);

/* ---- lock-order checking (as Linux's lockdep) ---- */

typedef enum conc_lockdep_mode {
    CONC_LOCKDEP_OFF = 0,
    CONC_LOCKDEP_LOG = 1,   /* report the first time an order closes a cycle; go on */
    CONC_LOCKDEP_ERROR = 2, /* report, and refuse the acquisition: CONC_EDEADLK */
    CONC_LOCKDEP_ABORT = 3, /* report, then abort() */
} conc_lockdep_mode;

/* Every acquisition made while holding other locks records "held before
 * acquired" edges between their classes; the first acquisition that would
 * close a cycle is reported before it can deadlock — both orders, the lock
 * names, the threads, and the call stacks where each order was first seen.
 * Locking a non-recursive mutex its owner holds is reported too (once per
 * class), as is write-locking an rwlock one holds for reading; read after
 * read of one rwlock is not. A trylock cannot deadlock: it is recorded as
 * held, never checked. A recursive mutex orders only its outermost
 * acquisition. In LOG mode a cycle is reported once (its order is then
 * known); in ERROR mode the refused order stays refused, reported once.
 *
 * Held locks belong to the execution context that took them: a pool task
 * helped in on a waiting worker does not hold the worker's locks. Two locks
 * of one class nested are not judged (their order, by address say, is the
 * program's own), nor is a read lock unlocked by another thread than its
 * taker (the taker still counts it held). Locks taken while checking was
 * off are forgotten when it is switched on. Init sites (sync.h) are
 * recorded only while checking is on: switch it on (CONC_LOCKDEP, or this
 * call at the start of main) before the locks are initialised.
 *
 * Returns 0 or CONC_EINVAL (unknown mode). */
CONC_API int conc_lockdep_set_mode(conc_lockdep_mode mode);
CONC_API conc_lockdep_mode conc_lockdep_get_mode(void);
/* How many lock-order reports have been made (since the last reset). */
CONC_API int64_t conc_lockdep_reports(void);
/* Forgets every recorded order and zeroes the report count (for tests).
 * Locks held now stay held; names given stay. */
CONC_API int conc_lockdep_reset(void);

/* Names the class of the lock at `lock` (any conc lock): locks given the
 * same name are one class, as with opts.name at init. name is copied, and
 * kept until the lock is destroyed or initialised again. Returns 0,
 * CONC_EINVAL, CONC_ENOMEM. */
CONC_API int conc_lock_set_name(const void *lock, const char *name);

/* ---- lock statistics (contention and starvation) ---- */

#define CONC_LOCKSTAT_BUCKETS 16 /* wait-time histogram: bucket i counts waits < 2^(i+10) ns */

typedef struct conc_lockstat {
    const void *lock;          /* the lock's address (the last one of its class) */
    char name[64];             /* its class name, or "" */
    uint64_t acquisitions;
    uint64_t contended;        /* acquisitions that had to wait */
    int64_t wait_total_ns, wait_max_ns;
    int64_t hold_max_ns;
    uint64_t wait_hist[CONC_LOCKSTAT_BUCKETS];
} conc_lockstat;

/* Switches statistics on or off (CONC_LOCKSTAT=1 also prints the top
 * contended locks at exit). */
CONC_API int conc_lockstat_enable(bool on);
/* Copies up to max entries, most total waiting first, into out; returns how
 * many (0 when off or none), never more than max. */
CONC_API int64_t conc_lockstat_top(conc_lockstat *out, size_t max);
/* Writes the top `top` locks as a table to fd. */
CONC_API int conc_lockstat_print(int fd, size_t top);
CONC_API int conc_lockstat_reset(void);

/* ---- actual deadlocks: watchdog and dumps ---- */

/* Starts a watchdog thread that looks, every threshold_ns / 2, for a cycle
 * in the wait-for graph of threads blocked on conc locks for longer than
 * threshold_ns, and reports who holds what and who waits for what. Returns
 * 0, CONC_EINVAL (threshold <= 0), CONC_EBUSY (already running). */
CONC_API int conc_watchdog_start(int64_t threshold_ns);
CONC_API int conc_watchdog_stop(void);
/* How many deadlocks the watchdog has reported. */
CONC_API int64_t conc_watchdog_reports(void);

/* Writes every conc thread and pool task, and what each waits on, to fd
 * (as Go's goroutine dump). */
CONC_API int conc_debug_dump(int fd);
/* on: SIGQUIT (Ctrl-\) writes the dump to standard error instead of
 * killing the process; off: restores the previous handler. */
CONC_API int conc_debug_dump_on_sigquit(bool on);

/* ---- timeline traces (Chrome Trace Event JSON: Perfetto, chrome://tracing) ---- */

/* Starts recording thread lifetimes, pool task spans, lock waits and queue
 * waits into a bounded ring per thread (events_per_thread; 0: 65536): the
 * oldest events are overwritten, the program never waits for the trace.
 * Spans are complete events, written when they end, so an overwritten ring
 * never holds half a span. Returns 0, CONC_EINVAL (NULL path), CONC_EBUSY
 * (already tracing). */
CONC_API int conc_trace_start(const char *path, size_t events_per_thread);
/* Stops and writes the file. Returns 0, CONC_EINVAL (not tracing), or the
 * error of writing it (-errno). */
CONC_API int conc_trace_stop(void);
/* A span of the caller's own, on the calling thread (name: a string that
 * outlives the trace, e.g. a literal). Spans nest. No-ops when not tracing.
 * Return 0, or CONC_EINVAL for a NULL name. */
CONC_API int conc_trace_begin(const char *name);
CONC_API int conc_trace_end(void);

#ifdef __cplusplus
}
#endif

#endif /* CONC_DEBUG_H */
