/* The diagnostics switchboard (diag.h): flags, environment, reporter, dump
 * sources, fork handlers, dispatch. */
#include "diag/diag.h"
#include "conc/debug.h"
#include "core/dlist.h"
#include "core/fork.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

_Atomic uint32_t conc__diag_flags;

void conc__diag_enable(uint32_t bits, bool on)
{
    if (on)
        atomic_fetch_or_explicit(&conc__diag_flags, bits, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&conc__diag_flags, ~bits, memory_order_relaxed);
}

/* ---- reports ---- */

static pthread_mutex_t conc__reporter_lock = PTHREAD_MUTEX_INITIALIZER;
static conc_debug_report_fn conc__reporter;
static void *conc__reporter_arg;

int conc_debug_set_reporter(conc_debug_report_fn fn, void *arg)
{
    pthread_mutex_lock(&conc__reporter_lock);
    conc__reporter = fn;
    conc__reporter_arg = arg;
    pthread_mutex_unlock(&conc__reporter_lock);
    return 0;
}

void conc__diag_vreport(const char *fmt, va_list ap)
{
    char stack_buf[4096];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(stack_buf, sizeof stack_buf, fmt, ap);
    char *text = stack_buf;
    if (n >= (int)sizeof stack_buf && (text = malloc((size_t)n + 1)) != NULL)
        vsnprintf(text, (size_t)n + 1, fmt, again);
    else if (!text)
        text = stack_buf; /* truncated rather than lost */
    va_end(again);
    /* One report at a time, whole: reports from several threads never
     * interleave. */
    pthread_mutex_lock(&conc__reporter_lock);
    if (conc__reporter)
        conc__reporter(text, conc__reporter_arg);
    else {
        fputs(text, stderr);
        fflush(stderr);
    }
    pthread_mutex_unlock(&conc__reporter_lock);
    if (text != stack_buf)
        free(text);
}

void conc__diag_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conc__diag_vreport(fmt, ap);
    va_end(ap);
}

/* ---- names ---- */

const char *conc__lock_kind_name(int kind)
{
    switch (kind) {
    case CONC__LOCK_MUTEX:
        return "mutex";
    case CONC__LOCK_RMUTEX:
        return "rmutex";
    case CONC__LOCK_RWLOCK_READ:
        return "rwlock, read";
    case CONC__LOCK_RWLOCK_WRITE:
        return "rwlock, write";
    case CONC__LOCK_SEM:
        return "sem";
    default:
        return "lock";
    }
}

/* ---- dispatch ---- */

int conc__diag_lock_acquire(const void *lock, enum conc__lock_kind kind, unsigned flags)
{
    if (conc__diag_on(CONC__DIAG_LOCKDEP))
        return conc__lockdep_acquire(lock, kind, flags);
    return 0;
}

void conc__diag_lock_contended(const void *lock, enum conc__lock_kind kind)
{
    if (conc__diag_on(CONC__DIAG_LOCKSTAT))
        conc__lockstat_contended(lock, kind);
    if (conc__diag_on(CONC__DIAG_WATCH))
        conc__watch_contended(lock, kind);
    if (conc__diag_on(CONC__DIAG_TRACE))
        conc__trace_lock_contended(lock, kind);
}

void conc__diag_lock_acquired(const void *lock, enum conc__lock_kind kind)
{
    if (conc__diag_on(CONC__DIAG_LOCKDEP))
        conc__lockdep_acquired(lock, kind);
    if (conc__diag_on(CONC__DIAG_LOCKSTAT))
        conc__lockstat_acquired(lock, kind);
    if (conc__diag_on(CONC__DIAG_WATCH))
        conc__watch_acquired(lock, kind);
    if (conc__diag_on(CONC__DIAG_TRACE))
        conc__trace_lock_done(lock, kind);
}

void conc__diag_lock_failed(const void *lock, enum conc__lock_kind kind)
{
    if (conc__diag_on(CONC__DIAG_LOCKDEP))
        conc__lockdep_failed(lock, kind);
    if (conc__diag_on(CONC__DIAG_LOCKSTAT))
        conc__lockstat_failed(lock, kind);
    if (conc__diag_on(CONC__DIAG_WATCH))
        conc__watch_failed(lock, kind);
    if (conc__diag_on(CONC__DIAG_TRACE))
        conc__trace_lock_done(lock, kind);
}

void conc__diag_lock_release(const void *lock, enum conc__lock_kind kind)
{
    if (conc__diag_on(CONC__DIAG_LOCKDEP))
        conc__lockdep_release(lock, kind);
    if (conc__diag_on(CONC__DIAG_LOCKSTAT))
        conc__lockstat_release(lock, kind);
    if (conc__diag_on(CONC__DIAG_WATCH))
        conc__watch_release(lock, kind);
}

void conc__diag_trace_begin(const char *name, const void *obj)
{
    if (conc__diag_on(CONC__DIAG_TRACE))
        conc__trace_span_begin(name, obj);
}

void conc__diag_trace_end(const char *name, const void *obj)
{
    if (conc__diag_on(CONC__DIAG_TRACE))
        conc__trace_span_end(name, obj);
}

/* ---- dump sources ----
 *
 * A list under a pthread mutex, never a conc lock (a dump must not recurse
 * into the hooks). A source is listed from its add to its remove, so a dump
 * never describes one being freed. */

static pthread_mutex_t conc__sources_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conc__dump_source *conc__sources_head, *conc__sources_tail;

void conc__dump_source_add(struct conc__dump_source *src)
{
    pthread_mutex_lock(&conc__sources_lock);
    CONC__DLIST_APPEND(conc__sources_head, conc__sources_tail, src);
    pthread_mutex_unlock(&conc__sources_lock);
}

void conc__dump_source_remove(struct conc__dump_source *src)
{
    pthread_mutex_lock(&conc__sources_lock);
    CONC__DLIST_UNLINK(conc__sources_head, conc__sources_tail, src);
    pthread_mutex_unlock(&conc__sources_lock);
}

void conc__dump_sources_describe(void (*line)(void *ctx, const char *text), void *ctx)
{
    pthread_mutex_lock(&conc__sources_lock);
    for (struct conc__dump_source *src = conc__sources_head; src; src = src->next)
        src->describe(src, line, ctx);
    pthread_mutex_unlock(&conc__sources_lock);
}

/* ---- fork ----
 *
 * A fork while another thread reports, dumps or checks must not leave one
 * of these locks held forever in the child; core/fork.h fixes the order. */

static void conc__reporter_prepare(void)
{
    pthread_mutex_lock(&conc__reporter_lock);
}

static void conc__reporter_resume(void)
{
    pthread_mutex_unlock(&conc__reporter_lock);
}

static void conc__sources_prepare(void)
{
    pthread_mutex_lock(&conc__sources_lock);
}

static void conc__sources_resume(void)
{
    pthread_mutex_unlock(&conc__sources_lock);
}

static void conc__diag_fork_register(void)
{
    static const struct {
        enum conc__fork_rank rank;
        struct conc__fork_handler h;
    } table[] = {
        {CONC__FORK_SIGQUIT,
         {conc__sigquit_fork_prepare, conc__sigquit_fork_parent, conc__sigquit_fork_child}},
        {CONC__FORK_WATCHDOG,
         {conc__watchdog_fork_prepare, conc__watchdog_fork_parent, conc__watchdog_fork_child}},
        {CONC__FORK_TRACE,
         {conc__trace_fork_prepare, conc__trace_fork_parent, conc__trace_fork_child}},
        {CONC__FORK_THREADS,
         {conc__threads_fork_prepare, conc__threads_fork_parent, conc__threads_fork_child}},
        {CONC__FORK_DUMP_SOURCES, {conc__sources_prepare, conc__sources_resume, conc__sources_resume}},
        {CONC__FORK_LOCKDEP,
         {conc__lockdep_fork_prepare, conc__lockdep_fork_release, conc__lockdep_fork_release}},
        {CONC__FORK_REPORTER, {conc__reporter_prepare, conc__reporter_resume, conc__reporter_resume}},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        conc__fork_register(table[i].rank, &table[i].h);
}

/* ---- at load ---- */

void conc__diag_setup(void)
{
    conc__diag_fork_register();
    const char *v;
    if ((v = getenv("CONC_LOCKDEP")) != NULL && *v)
        conc__lockdep_env(v);
    if ((v = getenv("CONC_LOCKSTAT")) != NULL && *v)
        conc__lockstat_env(v);
    if ((v = getenv("CONC_TRACE")) != NULL && *v)
        conc__trace_env(v);
}
