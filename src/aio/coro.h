/* Stackful coroutines: the core the event loop will schedule (internal; no
 * public header yet).
 *
 * A coroutine runs fn(arg, in) on a stack of its own (aio/stack.h), from
 * the first conc__coro_resume, which hands it `in`. It runs until it yields
 * (conc__coro_yield) or returns; either gives control, and a value, back to
 * whoever resumed it — a thread or another coroutine (resumes nest: a
 * coroutine may resume another, which yields back to it). States:
 *
 *   SUSPENDED --resume--> RUNNING --yield--> SUSPENDED
 *                         RUNNING --fn returns--> FINISHED
 *
 * A coroutine is RUNNING from its resume until it yields or ends, also while
 * it has resumed another, so a resume can never make a cycle. A suspended
 * coroutine may be resumed from any thread, one at a time (the caller
 * orders them: nothing here is locked). Its record sits at the top of its
 * stack, so creating one is taking a stack from the pool and writing a few
 * words.
 *
 * While it runs, a coroutine is the thread's running context
 * (conc__tls.ctx, core/tls.h): conc__self() is the coroutine, for lock
 * ownership and lock-order checks; its resumer's context comes back when it
 * yields.
 *
 * Every switch is announced to the sanitizers, so that ASan knows which
 * stack is live and TSan which fiber runs (their fiber interfaces). An
 * unguarded stack's canary is checked at every switch away from it; an
 * overwritten canary aborts the process with a message (the only abort: an
 * overflow has already corrupted memory nobody can name). Everything else
 * wrong is a code.
 *
 * Thread-local storage across a yield: a coroutine resumed on another
 * thread than the one it yielded on may find a compiler-cached address of
 * the old thread's variable; code that can move between threads reads its
 * thread-local state through a call that is not inlined across the yield. */
#ifndef CONC_AIO_CORO_H
#define CONC_AIO_CORO_H

#include <stdbool.h>
#include <stddef.h>

#include "aio/stack.h"
#include "arch/ctx.h"
#include "core/hooks.h"
#include "core/platform.h"
#include "core/tls.h"

#if CONC__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if CONC__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* What a coroutine runs: arg from create, in from the first resume; what it
 * returns goes to the resumer as a yield's value does. */
typedef void *(*conc__coro_fn)(void *arg, void *in);

struct conc__coro_opts {
    size_t stack_size; /* usable bytes; 0: CONC__STACK_DEFAULT (64 KiB); else at least
                          CONC__STACK_MIN (16 KiB), rounded up to pages */
    bool unguarded;    /* no guard page (one mapping instead of two): a canary word at
                          the stack's low end, checked at every switch, instead */
};

enum conc__coro_state {
    CONC__CORO_SUSPENDED, /* not started yet, or yielded */
    CONC__CORO_RUNNING,   /* resumed and not yet back */
    CONC__CORO_FINISHED,  /* fn returned */
};

struct conc__coro {
    conc__ctx ctx;  /* its registers while it is suspended */
    conc__ctx back; /* its resumer's while it runs */
    enum conc__coro_state state;
    struct conc__coro *resumer; /* the coroutine that resumed it; NULL: a thread */
    const uint64_t *canary;     /* the stack's canary (aio/stack.h) */
    struct conc__stack *stack;
    conc__coro_fn fn;
    void *arg;
    struct conc__context context; /* the running context while it runs */
#if CONC__ASAN
    const void *back_bottom; /* its resumer's stack, for the switch back */
    size_t back_size;
#endif
#if CONC__TSAN
    void *tsan_fiber;
    void *tsan_back; /* its resumer's fiber */
#endif
};

/* A new coroutine, suspended: it runs fn(arg, in) from its first resume.
 * opts NULL: the defaults. 0; CONC_EINVAL (NULL out or fn; a stack size
 * below CONC__STACK_MIN or above CONC__STACK_MAX: a negative size cast to
 * size_t is above); CONC_ENOMEM (no memory, or no more mappings:
 * vm.max_map_count). Any thread; does not block. */
int conc__coro_create(struct conc__coro **out, const struct conc__coro_opts *opts, conc__coro_fn fn,
                      void *arg);

/* Out of line: the misuse codes with their detail, and the canary's abort. */
int conc__coro_resume_refused(const struct conc__coro *co);
int conc__coro_yield_refused(void);
__attribute__((noreturn, cold)) void conc__coro_overflowed(const struct conc__coro *co);

/* Aborts, saying so, if co's stack overflowed into its canary. */
static inline void conc__coro_check(const struct conc__coro *co)
{
    if (conc__unlikely(*co->canary != conc__stack_canary_value(co->canary)))
        conc__coro_overflowed(co);
}

static inline size_t conc__coro_stack_size(const struct conc__coro *co)
{
    return (size_t)((const char *)co - co->stack->lo);
}

/* Runs co until it yields or returns; *out (if out is not NULL) gets the
 * value it yielded or returned. in is what its yield (or, the first time,
 * its fn) receives. 0; CONC_EINVAL (NULL co); CONC_ESTATE (co is running —
 * the caller itself, or on the chain of resumes that led to it — or has
 * finished).
 *
 * Inline, as conc__coro_yield: a switch returns somewhere else than the
 * call it came from, so every `ret` on the way out of a function that
 * switched mispredicts (the return stack holds the other side's calls);
 * made from the caller's own frame, a switch costs 6-7 ns here instead of
 * 16. */
__attribute__((always_inline)) static inline int conc__coro_resume(struct conc__coro *co, void *in,
                                                                   void **out)
{
    if (conc__unlikely(!co || co->state != CONC__CORO_SUSPENDED))
        return conc__coro_resume_refused(co);
    struct conc__coro *prev = conc__tls.coro;
    if (prev)
        conc__coro_check(prev);
    uintptr_t self = conc__tls.self;
    struct conc__context *outer = atomic_load_explicit(&conc__tls.ctx, memory_order_relaxed);
    co->state = CONC__CORO_RUNNING;
    co->resumer = prev;
    co->context.outer = outer;
    conc__tls.coro = co;
    conc__tls.self = co->context.ident;
    atomic_store_explicit(&conc__tls.ctx, &co->context, memory_order_relaxed);
#if CONC__ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, co->stack->lo, conc__coro_stack_size(co));
#endif
#if CONC__TSAN
    co->tsan_back = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(co->tsan_fiber, 0);
#endif
    void *v = conc__ctx_switch(&co->back, &co->ctx, in);
#if CONC__ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    conc__tls.coro = prev;
    conc__tls.self = self;
    atomic_store_explicit(&conc__tls.ctx, outer, memory_order_relaxed);
    conc__coro_check(co);
    if (conc__unlikely(co->state == CONC__CORO_FINISHED && co->context.held != NULL))
        conc__diag_context_end(&co->context);
    if (out)
        *out = v;
    return 0;
}

/* The switch back to the resumer, from a yield (last = false) or from the
 * end of fn (last = true: its fake stack goes, and it never returns). */
__attribute__((always_inline)) static inline void *conc__coro_switch_back(struct conc__coro *co,
                                                                          void *value, bool last)
{
#if CONC__ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(last ? NULL : &fake, co->back_bottom, co->back_size);
#endif
#if CONC__TSAN
    __tsan_switch_to_fiber(co->tsan_back, 0);
#endif
    (void)last;
    void *in = conc__ctx_switch(&co->ctx, &co->back, value);
#if CONC__ASAN
    __sanitizer_finish_switch_fiber(fake, &co->back_bottom, &co->back_size);
#endif
    return in;
}

/* From inside a coroutine: back to its resumer, whose resume returns with
 * value; returns when the coroutine is next resumed, storing that resume's
 * in in *in (if in is not NULL). 0; CONC_ESTATE (not called from a
 * coroutine). */
__attribute__((always_inline)) static inline int conc__coro_yield(void *value, void **in)
{
    struct conc__coro *co = conc__tls.coro;
    if (conc__unlikely(!co))
        return conc__coro_yield_refused();
    co->state = CONC__CORO_SUSPENDED;
    void *v = conc__coro_switch_back(co, value, false);
    if (in)
        *in = v;
    return 0;
}

/* The coroutine running on this thread; NULL: none. */
static inline struct conc__coro *conc__coro_current(void)
{
    return conc__tls.coro;
}

static inline bool conc__coro_finished(const struct conc__coro *co)
{
    return co->state == CONC__CORO_FINISHED;
}

/* Frees co and gives its stack back to the pool. A coroutine suspended
 * before its end is dropped: its frames are never unwound. 0; CONC_EINVAL
 * (NULL co); CONC_EBUSY (co is running). */
int conc__coro_destroy(struct conc__coro *co);

/* The usable stack of co, [lo, lo + size): for the tests. */
void conc__coro_stack(const struct conc__coro *co, void **lo, size_t *size);

#endif
