/* The thread record and the context record: all of conc's per-thread state.
 *
 * The thread record (struct conc__thread_rec) is the one thread-local
 * variable of the library, conc__tls: what belongs to the OS thread — its
 * kernel id, the futex wakes it owes (wait core), the pool worker it is,
 * the slab its futures come from, its diagnostics record (name, trace ring,
 * lock statistics). Each layer owns its slot; core only declares them.
 *
 * The context record (struct conc__context) is what runs on the thread: the
 * identity conc__self() returns (lock ownership, EDEADLK, lock-order
 * checks), the task it runs, its cancel token, what it sleeps on. A thread
 * runs its own context (conc__tls.own) until a pool task is helped in on it
 * (conc__future_execute) or a coroutine is resumed (aio/coro.c): either
 * switches the record's one pointer, conc__tls.ctx, and the identity cached
 * beside it. A context costs its few words, not a slab or a trace ring: a
 * hundred thousand of them share their threads' records.
 *
 * initial-exec TLS keeps conc__self() a single fs-relative load, with no
 * __tls_get_addr call, in the shared library too. The record is written
 * only by its thread; dumps and the watchdog read another thread's current
 * context through its diagnostics record, as a best-effort peek.
 *
 * Process-shared objects cannot use an address for identity (a forked child
 * has the same addresses); they use the kernel thread id, cached here and
 * forgotten in a forked child (core/fork.c). */
#ifndef CONC_CORE_TLS_H
#define CONC_CORE_TLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hooks.h"

#define CONC__TLS __thread __attribute__((tls_model("initial-exec")))

struct conc_future;
struct conc_thread;
struct conc__worker;
struct conc__helper;
struct conc__dthread;
struct ld_thread;
struct conc__held_locks;
struct conc__coro;
struct conc__stack;

/* What runs. */
struct conc__context {
    uintptr_t ident;                  /* conc__self() while it runs */
    struct conc_future *task;         /* the task it runs; NULL: none */
    const _Atomic bool *cancel;       /* its cancel token; NULL: none */
    _Atomic(const void *) parked_on;  /* what it sleeps on in the wait core (dumps) */
    struct conc__context *outer;      /* the context it interrupted on this thread */
    struct conc__held_locks *held;    /* the locks it holds, as lock-order checking
                                         (diag) records them; NULL: none recorded */
};

/* Futex wakes decided under a wait-queue lock, issued when it is released
 * (wait/wait.h, conc__waitq_unlock). */
#define CONC__PENDING_MAX 16
struct conc__pending_wakes {
    unsigned n;
    struct {
        _Atomic uint32_t *addr;
        int count;
        bool shared;
    } wake[CONC__PENDING_MAX];
};

/* The memory futures are carved from (exec/future_mem.c). */
struct conc__slab_cursor {
    char *next, *end;      /* the free places of the current slab */
    bool registered;       /* the exit destructor knows this cursor */
};

/* The stacks a thread keeps for its next coroutines (aio/stack.c). */
struct conc__stack_cache {
    struct conc__stack *head; /* a list through the stacks' own records */
    size_t bytes;             /* their mappings, summed */
    bool registered;          /* the exit destructor knows this cache */
};

/* The last misuse code's detail (core/misuse.h). */
struct conc__misuse {
    const char *fn, *what; /* static strings; NULL: none yet */
    char text[160];        /* "fn: what", joined by conc_error_detail */
};

struct conc__thread_rec {
    /* ---- core ---- */
    uintptr_t self;                      /* the running context's ident; 0: the thread's own */
    _Atomic(struct conc__context *) ctx; /* the running context; NULL: `own` */
    struct conc__context own;            /* the thread's own context (ident 0: the thread pointer) */
    uint32_t tid;                        /* gettid(); 0 until first asked */
    struct conc__misuse misuse;
    /* ---- wait ---- */
    unsigned spin_probe;                 /* waits since the last spin probe */
    /* ---- queue ---- */
    unsigned gather_probe;               /* spinning gets since the last gather probe */
    struct conc__pending_wakes pending;
    /* ---- thread ---- */
    struct conc_thread *thread;          /* its conc_thread handle, once it has one */
    /* ---- exec ---- */
    struct conc__helper *helper;         /* help-while-waiting; NULL: none */
    struct conc__worker *worker;         /* the pool worker it is; NULL: none */
    struct conc__slab_cursor slab;
    /* ---- aio ---- */
    struct conc__coro *coro;             /* the coroutine running here; NULL: none */
    struct conc__stack_cache stacks;
    /* ---- diag ---- */
    struct conc__dthread *diag;          /* its record in the registry; NULL: none yet */
    bool diag_ended;                     /* that record is gone: no other */
    struct ld_thread *lockdep;           /* lock-order checking's state */
};

extern CONC__TLS struct conc__thread_rec conc__tls;

/* The execution-context identity: the thread pointer (unique among live
 * threads, one register read) for a thread's own context, else the running
 * context's ident (a pool task's future). */
static inline uintptr_t conc__self(void)
{
    uintptr_t s = conc__tls.self;
    return s ? s : (uintptr_t)__builtin_thread_pointer();
}

static inline struct conc__context *conc__context(void)
{
    struct conc__context *c = atomic_load_explicit(&conc__tls.ctx, memory_order_relaxed);
    return c ? c : &conc__tls.own;
}

/* The task running here, or NULL. */
static inline struct conc_future *conc__current_task(void)
{
    struct conc__context *c = atomic_load_explicit(&conc__tls.ctx, memory_order_relaxed);
    return c ? c->task : NULL;
}

/* Runs c on this thread, above the context running now, until
 * conc__context_leave(c). Contexts entered this way nest. */
static inline void conc__context_enter(struct conc__context *c)
{
    c->outer = atomic_load_explicit(&conc__tls.ctx, memory_order_relaxed);
    c->held = NULL;
    atomic_store_explicit(&c->parked_on, NULL, memory_order_relaxed);
    conc__tls.self = c->ident;
    atomic_store_explicit(&conc__tls.ctx, c, memory_order_relaxed);
}

static inline void conc__context_leave(struct conc__context *c)
{
    conc__tls.self = c->outer ? c->outer->ident : 0;
    atomic_store_explicit(&conc__tls.ctx, c->outer, memory_order_relaxed);
    if (conc__unlikely(c->held != NULL))
        conc__diag_context_end(c);
}

uint32_t conc__tid_slow(void);

/* The kernel thread id of the caller (gettid), without a syscall after the
 * first call on each thread. */
static inline uint32_t conc__tid(void)
{
    uint32_t t = conc__tls.tid;
    return t ? t : conc__tid_slow();
}

#endif
