/* Diagnostic hook points (DESIGN.md, "The wait core"), called by every lock
 * and blocking primitive. Each is one relaxed load and a predictable branch
 * while every diagnostic is off (diag.h); arguments are evaluated only when
 * one is on.
 *
 * A lock operation calls, in order: conc__lock_acquire before any attempt
 * (lock-order checking may refuse it: the caller returns CONC_EDEADLK
 * without acquiring, and calls no other hook); conc__lock_contended when the
 * fast path failed and it is about to wait; then conc__lock_acquired, or
 * conc__lock_failed when the attempt ended without the lock (timeout, try,
 * error); conc__lock_release when it is released. Process-shared locks call
 * none of them. One exception, for the mutex's fast path (mutex.c): an
 * uncontended acquisition may call conc__lock_acquire just after it took the
 * lock (it cannot have waited), then conc__lock_acquired; a refusal there
 * gives the lock back before CONC_EDEADLK is returned. A lock's fast path
 * may also test the flags itself and call the conc__diag_lock_* entry points
 * out of line, to keep its cost at one load. */
#ifndef CONC_HOOKS_H
#define CONC_HOOKS_H

#include "diag/diag.h"

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

#endif
