/* The diagnostics switchboard (debug.h): one word of flags, read by every
 * hook (hooks.h) with a relaxed load and a predictable branch, and the
 * entry points of each diagnostic behind it:
 *   lockdep.c   lock-order checking
 *   lockstat.c  lock statistics
 *   watchdog.c  the wait-for graph, the deadlock watchdog, dumps
 *   trace.c     timeline traces
 * diag.c holds the flags, reads the environment at load, owns the reporter,
 * and dispatches each hook to the parts that are on. */
#ifndef CONC_DIAG_H
#define CONC_DIAG_H

#include "core/platform.h"

#include <stdarg.h>
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

void conc__diag_enable(uint32_t bits, bool on);

/* "mutex", "rwlock(read)", …: for reports. */
const char *conc__lock_kind_name(int kind);

/* Sends one report (printf format) to the reporter (debug.h). */
void conc__diag_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void conc__diag_vreport(const char *fmt, va_list ap);

/* ---- hook entry points (hooks.h calls them only when some flag is on) ---- */

int conc__diag_lock_acquire(const void *lock, enum conc__lock_kind kind, unsigned flags);
void conc__diag_lock_contended(const void *lock, enum conc__lock_kind kind);
void conc__diag_lock_acquired(const void *lock, enum conc__lock_kind kind);
void conc__diag_lock_failed(const void *lock, enum conc__lock_kind kind);
void conc__diag_lock_release(const void *lock, enum conc__lock_kind kind);
void conc__diag_trace_begin(const char *name, const void *obj);
void conc__diag_trace_end(const char *name, const void *obj);

/* ---- each part's entry points (called by diag.c when its flag is on) ---- */

int conc__lockdep_acquire(const void *lock, enum conc__lock_kind kind, unsigned flags);
void conc__lockdep_acquired(const void *lock, enum conc__lock_kind kind);
void conc__lockdep_failed(const void *lock, enum conc__lock_kind kind);
void conc__lockdep_release(const void *lock, enum conc__lock_kind kind);

void conc__lockstat_contended(const void *lock, enum conc__lock_kind kind);
void conc__lockstat_acquired(const void *lock, enum conc__lock_kind kind);
void conc__lockstat_failed(const void *lock, enum conc__lock_kind kind);
void conc__lockstat_release(const void *lock, enum conc__lock_kind kind);

void conc__watch_contended(const void *lock, enum conc__lock_kind kind);
void conc__watch_acquired(const void *lock, enum conc__lock_kind kind);
void conc__watch_failed(const void *lock, enum conc__lock_kind kind);
void conc__watch_release(const void *lock, enum conc__lock_kind kind);

void conc__trace_span_begin(const char *name, const void *obj);
void conc__trace_span_end(const char *name, const void *obj);
/* A lock wait's span: from contended to acquired or failed. */
void conc__trace_lock_contended(const void *lock, enum conc__lock_kind kind);
void conc__trace_lock_done(const void *lock, enum conc__lock_kind kind);

/* For dumps (pool.c): one line per live pool — its name, workers, state and
 * the tasks waiting to run — each passed to line(ctx, text). */
void conc__pools_describe(void (*line)(void *ctx, const char *text), void *ctx);

/* At load: each part reads its environment variable (diag.c calls them). */
void conc__lockdep_env(const char *value);
void conc__lockstat_env(const char *value);
void conc__trace_env(const char *value);

#endif
