/* The diagnostics' per-thread records (diag.h): one for every conc thread
 * (registered by thread.c when it starts) and for every other thread the
 * first time a diagnostic needs one (a lock hook, a trace event, an adopted
 * thread). All of them sit in one registry — a list under a pthread mutex,
 * never a conc lock, so that nothing here recurses into the hooks — which
 * the watchdog, the dumps and the trace writer walk.
 *
 * A record has three kinds of fields:
 *   - the registry's (list links, name, alive, born/died): under the
 *     registry lock;
 *   - what the thread publishes about itself for other threads to read (its
 *     lock wait and held locks, for the wait-for graph): atomics written only
 *     by the thread, read by the watchdog and dumps, which are diagnostics
 *     and tolerate a snapshot taken mid-change (the watchdog re-reads before
 *     it reports);
 *   - the thread's own bookkeeping (lock statistics, trace spans): touched
 *     only by the thread; the trace ring is handed to the trace writer with
 *     a busy flag (trace.c).
 *
 * Implemented in threads.c. A record lives until its thread ends, or, when
 * the thread recorded trace events or a trace session runs, until the trace
 * is written (trace.c). In a forked child only the forking thread's record
 * is kept (core/fork.h: the registry's lock is CONC__FORK_THREADS). */
#ifndef CONC_DIAG_THREAD_H
#define CONC_DIAG_THREAD_H

#include "core/tls.h"
#include "diag/diag.h"

#include <stdbool.h>
#include <stdint.h>

#define CONC__DT_NAME 64
#define CONC__DT_HELD 16  /* locks a thread's record lists as held (wait-for graph) */
#define CONC__DT_HOLDS 16 /* acquisitions whose hold time lockstat measures at once */
#define CONC__DT_SPANS 32 /* open trace spans per thread */

struct conc__tring; /* trace.c */

struct conc__dt_held {
    _Atomic(const void *) lock;
    _Atomic uintptr_t self; /* conc__self() of the acquirer: the thread or a task */
    _Atomic int kind;       /* enum conc__lock_kind */
};

struct conc__tspan {
    const char *name;
    const void *obj;
    int64_t start;
    uint32_t session;
    bool user; /* conc_trace_begin's */
};

struct conc__dthread {
    /* ---- the registry's: under its lock ---- */
    struct conc__dthread *next, *prev;
    char name[CONC__DT_NAME];
    bool alive;
    bool conc_thread;   /* started by conc_thread_create */
    bool kept;          /* ended, kept for the trace writer */
    int64_t born, died; /* conc__now(); born: when registered */

    /* ---- fixed when registered ---- */
    uint32_t tid;
    uintptr_t tp;             /* the thread pointer: conc__self() outside tasks */
    struct conc__thread_rec *rec; /* the thread's record: its running context (dumps peek at it) */

    /* ---- the watch part: written by the thread, read by others ---- */
    _Atomic uint32_t watch_epoch; /* the lists below belong to this epoch */
    _Atomic(const void *) wait_lock; /* the lock it waits for; NULL: none */
    _Atomic int wait_kind;
    _Atomic uintptr_t wait_self;
    _Atomic int64_t wait_since;
    _Atomic uint64_t wait_seq; /* bumped at every wait */
    struct conc__dt_held held[CONC__DT_HELD];
    _Atomic uint32_t nheld;
    _Atomic uint32_t held_over; /* held beyond CONC__DT_HELD, not listed */

    /* ---- lock statistics: the thread's own ---- */
    const void *ls_wait_lock; /* contended, not yet acquired */
    int64_t ls_wait_since;
    struct {
        const void *lock;
        int64_t since;
    } ls_holds[CONC__DT_HOLDS];
    uint32_t ls_nholds;

    /* ---- trace: the thread's own, the ring handed over by tbusy ---- */
    _Atomic int tbusy;
    _Atomic(struct conc__tring *) tring;
    struct conc__tspan spans[CONC__DT_SPANS];
    uint32_t nspans;
    uint32_t spans_over; /* begun beyond CONC__DT_SPANS: not recorded */
    const void *twait_lock; /* a lock wait being traced */
    int twait_kind;
    int64_t twait_since;
    uint32_t twait_session;
};

/* The caller's record, registered on first use; NULL when it cannot have one
 * (out of memory, or the thread is ending). */
struct conc__dthread *conc__dthread_slow(void);
static inline struct conc__dthread *conc__dthread_self(void)
{
    struct conc__dthread *d = conc__tls.diag;
    return d ? d : conc__dthread_slow();
}

/* Copies d's name into buf ("" for NULL), under the registry's lock. */
void conc__dthread_name_of(struct conc__dthread *d, char *buf, size_t size);

/* The registry: walk it from conc__dt_first() along ->next, under the lock. */
void conc__dt_lock(void);
void conc__dt_unlock(void);
struct conc__dthread *conc__dt_first(void);
/* Unlinks and frees a record that has ended (under the lock). */
void conc__dt_free_locked(struct conc__dthread *d);

/* Set by trace.c while a session runs: an ended thread's record is kept
 * for the trace writer (its name and lifetime go into the file). */
extern _Atomic bool conc__dt_keep_ended;

/* The class name of a lock (conc_lock_set_name), "" when it has none. */
void conc__lock_name_of(const void *lock, char *buf, size_t size);

#endif
