/* Diagnostic hook points (DESIGN.md, "The wait core"). Every module calls them
 * from the start; today they compile to nothing. The diagnostics issue turns
 * them into lock-order checking, lock statistics and trace events without
 * touching the modules. Arguments are evaluated only by a real hook, so the
 * call sites cost nothing now. */
#ifndef CONC_HOOKS_H
#define CONC_HOOKS_H

/* A lock at address `lock` is about to be acquired (before any waiting). */
#define conc__lock_acquire(lock, kind) ((void)0)
/* The acquisition had to wait: the fast path failed. */
#define conc__lock_contended(lock, kind) ((void)0)
/* The lock was acquired (after waiting or not). */
#define conc__lock_acquired(lock, kind) ((void)0)
/* The lock was released. */
#define conc__lock_release(lock, kind) ((void)0)

/* A span of a trace timeline: name is a string literal, obj the object. */
#define CONC__TRACE_BEGIN(name, obj) ((void)0)
#define CONC__TRACE_END(name, obj) ((void)0)

enum conc__lock_kind {
    CONC__LOCK_MUTEX,
    CONC__LOCK_RMUTEX,
    CONC__LOCK_RWLOCK_READ,
    CONC__LOCK_RWLOCK_WRITE,
    CONC__LOCK_SEM,
};

#endif
