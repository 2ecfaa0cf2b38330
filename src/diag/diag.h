/* The diagnostics (debug.h), inside: the modules reach them only through
 * the hooks and registrations of core/hooks.h; nothing outside src/diag/
 * includes this header. The parts:
 *   diag.c      the switchboard: the flags word, the environment at load,
 *               the reporter, the dump sources, the fork handlers, and the
 *               dispatch of each hook to the parts that are on
 *   threads.c   the registry of per-thread records (diag_thread.h)
 *   lockdep.c   lock-order checking
 *   lockstat.c  lock statistics
 *   watchdog.c  the wait-for graph, the deadlock watchdog, dumps
 *   trace.c     timeline traces */
#ifndef CONC_DIAG_H
#define CONC_DIAG_H

#include "core/hooks.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void conc__diag_enable(uint32_t bits, bool on);

/* "mutex", "rwlock(read)", …: for reports. */
const char *conc__lock_kind_name(int kind);

/* Sends one report (printf format) to the reporter (debug.h). */
void conc__diag_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void conc__diag_vreport(const char *fmt, va_list ap);

/* For dumps: each registered dump source's lines, in registration order. */
void conc__dump_sources_describe(void (*line)(void *ctx, const char *text), void *ctx);

/* The class name of a lock (conc_lock_set_name, or its init site) into
 * buf; 1, or 0 when it has none (lockdep.c). */
int conc__lock_class_name(const void *lock, char *buf, size_t size);

/* Fork handlers of each part, run by diag.c's entries in the fork table
 * (core/fork.h gives the order). */
void conc__lockdep_fork_prepare(void);
void conc__lockdep_fork_release(void);
void conc__trace_fork_prepare(void);
void conc__trace_fork_parent(void);
void conc__trace_fork_child(void);
void conc__threads_fork_prepare(void);
void conc__threads_fork_parent(void);
void conc__threads_fork_child(void);
void conc__watchdog_fork_prepare(void);
void conc__watchdog_fork_parent(void);
void conc__watchdog_fork_child(void);
void conc__sigquit_fork_prepare(void);
void conc__sigquit_fork_parent(void);
void conc__sigquit_fork_child(void);

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

/* At load: each part reads its environment variable (diag.c calls them). */
void conc__lockdep_env(const char *value);
void conc__lockstat_env(const char *value);
void conc__trace_env(const char *value);

#endif
