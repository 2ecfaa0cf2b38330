/* The hook header: everything the modules tell the diagnostics (src/diag/),
 * which they reach only through here, never by name. As Linux's lockdep:
 * the modules call hooks, the diagnostics implement them.
 *
 * Lock hooks, each one relaxed load of conc__diag_flags and a predictable
 * branch while every diagnostic is off; arguments are evaluated only when
 * one is on. A lock operation calls, in order: conc__lock_acquire before any
 * attempt (lock-order checking may refuse it: the caller returns
 * CONC_EDEADLK without acquiring, and calls no other hook);
 * conc__lock_contended when the fast path failed and it is about to wait;
 * then conc__lock_acquired, or conc__lock_failed when the attempt ended
 * without the lock (timeout, try, error); conc__lock_release when it is
 * released. Process-shared locks call none of them. One exception, for the
 * mutex's fast path (mutex.c): an uncontended acquisition may call
 * conc__lock_acquire just after it took the lock (it cannot have waited),
 * then conc__lock_acquired; a refusal there gives the lock back before
 * CONC_EDEADLK is returned. A lock's fast path may also test the flags
 * itself and call the conc__diag_lock_* entry points out of line, to keep
 * its cost at one load.
 *
 * Registration, for what the diagnostics list (threads in dumps and
 * traces, executors in dumps): a thread conc starts announces its start,
 * name and end; an executor adds a dump source that describes it. The
 * diagnostics keep these lists; they never call into a module except
 * through what it registered. */
#ifndef CONC_CORE_HOOKS_H
#define CONC_CORE_HOOKS_H

#include "core/platform.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum conc__lock_kind {
    CONC__LOCK_MUTEX,
    CONC__LOCK_RMUTEX,
    CONC__LOCK_RWLOCK_READ,
    CONC__LOCK_RWLOCK_WRITE,
    CONC__LOCK_SEM,
};

/* conc__lock_acquire's flags. */
#define CONC__LK_TRY 1u /* a try (timeout 0): cannot deadlock, never checked */

/* Which diagnostics are on: bits of conc__diag_flags. */
#define CONC__DIAG_LOCKDEP 1u
#define CONC__DIAG_LOCKSTAT 2u
#define CONC__DIAG_WATCH 4u /* track who waits for which lock (watchdog, dumps) */
#define CONC__DIAG_TRACE 8u

/* Hidden: the fast paths load it straight, not through the GOT. */
extern _Atomic uint32_t conc__diag_flags __attribute__((visibility("hidden")));

/* CONC_NO_DIAG (a CMake option, for measuring only) compiles every hook
 * out: bench/callgrind_diag.sh counts what the hooks cost while off. */
static inline bool conc__diag_any(void)
{
#ifdef CONC_NO_DIAG
    return false;
#else
    return atomic_load_explicit(&conc__diag_flags, memory_order_relaxed) != 0;
#endif
}

static inline bool conc__diag_on(uint32_t bits)
{
    return (atomic_load_explicit(&conc__diag_flags, memory_order_relaxed) & bits) != 0;
}

/* ---- lock hooks ---- */

int conc__diag_lock_acquire(const void *lock, enum conc__lock_kind kind, unsigned flags);
void conc__diag_lock_contended(const void *lock, enum conc__lock_kind kind);
void conc__diag_lock_acquired(const void *lock, enum conc__lock_kind kind);
void conc__diag_lock_failed(const void *lock, enum conc__lock_kind kind);
void conc__diag_lock_release(const void *lock, enum conc__lock_kind kind);
void conc__diag_trace_begin(const char *name, const void *obj);
void conc__diag_trace_end(const char *name, const void *obj);

/* 0, or CONC_EDEADLK: lock-order checking refuses this acquisition. */
#define conc__lock_acquire(lock, kind, flags) \
    (conc__unlikely(conc__diag_any()) ? conc__diag_lock_acquire((lock), (kind), (flags)) : 0)

#define CONC__HOOK_CALL(call)                 \
    do {                                      \
        if (conc__unlikely(conc__diag_any())) \
            call;                             \
    } while (0)

#define conc__lock_contended(lock, kind) CONC__HOOK_CALL(conc__diag_lock_contended((lock), (kind)))
#define conc__lock_acquired(lock, kind) CONC__HOOK_CALL(conc__diag_lock_acquired((lock), (kind)))
#define conc__lock_failed(lock, kind) CONC__HOOK_CALL(conc__diag_lock_failed((lock), (kind)))
#define conc__lock_release(lock, kind) CONC__HOOK_CALL(conc__diag_lock_release((lock), (kind)))

/* A span of a trace timeline: name is a string literal, obj the object. */
#define CONC__TRACE_BEGIN(name, obj) CONC__HOOK_CALL(conc__diag_trace_begin((name), (obj)))
#define CONC__TRACE_END(name, obj) CONC__HOOK_CALL(conc__diag_trace_end((name), (obj)))

/* ---- a lock's class: at init and destroy ----
 *
 * What the locks tell lock-order checking besides the lock hooks: a lock's
 * class at init, and its end at destroy, so that a new lock at the same
 * address starts afresh. Both are cold paths; while nothing was ever
 * recorded they cost one relaxed load. */

/* Set once anything was recorded (a class name, an init site, an order). */
extern _Atomic bool conc__lockdep_used __attribute__((visibility("hidden")));

void conc__lockdep_init_lock(const void *lock, enum conc__lock_kind kind, const char *name,
                             const char *site);
void conc__lockdep_forget(const void *lock);

/* At the end of a successful init: a name is always recorded, a site only
 * while lock-order checking is on; a re-initialised lock forgets its past.
 * Process-shared locks stay out. */
static inline void conc__lockdep_on_init(const void *lock, enum conc__lock_kind kind,
                                         const char *name, const char *site, bool pshared)
{
    if (pshared)
        return;
    if (!conc__diag_on(CONC__DIAG_LOCKDEP))
        site = 0;
    if (name || site || atomic_load_explicit(&conc__lockdep_used, memory_order_relaxed))
        conc__lockdep_init_lock(lock, kind, name, site);
}

/* After a successful destroy. */
static inline void conc__lockdep_on_destroy(const void *lock)
{
    if (atomic_load_explicit(&conc__lockdep_used, memory_order_relaxed))
        conc__lockdep_forget(lock);
}

/* ---- registration: threads ----
 *
 * A thread conc starts calls conc__diag_thread_begin(true) first thing and
 * conc__diag_thread_end when its function returned; a thread conc adopts
 * (conc_thread_self) calls conc__diag_thread_begin(false), and its record
 * ends when the thread exits. Any thread may name a live one through the
 * record begin returned (NULL is ignored; a record that has ended since is
 * left alone). Other threads get a record the first time a diagnostic needs
 * one. Dumps list every thread with a record. */
struct conc__dthread;
struct conc__dthread *conc__diag_thread_begin(bool started_by_conc);
void conc__diag_thread_name(struct conc__dthread *d, const char *name);
void conc__diag_thread_end(void);

/* ---- contexts ----
 *
 * A context (core/tls.h) that ends with locks recorded in it (c->held):
 * lock-order checking lets go of its record. */
struct conc__context;
void conc__diag_context_end(struct conc__context *c);

/* ---- registration: dump sources ----
 *
 * An executor (a pool; later process pools, loops) adds a source when it is
 * created and removes it before it is destroyed; a dump (debug.h) calls each
 * source's describe, under the list's lock, to write lines about it with
 * line(ctx, text). describe must not block and must not take conc locks
 * (a dump may run from a watchdog while those are held). */
struct conc__dump_source {
    void (*describe)(struct conc__dump_source *src, void (*line)(void *ctx, const char *text),
                     void *ctx);
    struct conc__dump_source *next, *prev; /* the list's: under its lock */
};
void conc__dump_source_add(struct conc__dump_source *src);
void conc__dump_source_remove(struct conc__dump_source *src);

/* ---- the library's start ---- */

/* Called once by the library's constructor (core/init.c): the diagnostics
 * read their environment (CONC_LOCKDEP, CONC_LOCKSTAT, CONC_TRACE) and
 * register their fork handlers. */
void conc__diag_setup(void);

#endif
