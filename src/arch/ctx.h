/* The context switch of stackful coroutines, behind a small fixed
 * interface (aio/coro.c is its user):
 *
 *   conc__ctx_make(ctx, lo, size, entry, arg)   prepares ctx to run
 *       entry(arg, value) on the stack [lo, lo + size), where value is what
 *       the first switch to ctx carries;
 *   value = conc__ctx_switch(from, to, v)       saves the running context in
 *       from and resumes to, handing it v; returns, in from, the value of
 *       the switch that resumes from.
 *
 * A context is what the C calling convention says survives a call: the
 * callee-saved registers, the stack pointer, and the floating-point control
 * state, so that each coroutine keeps its own rounding mode (x86-64: the
 * x87 control word and MXCSR; aarch64: FPCR). Everything else is dead
 * across the call to conc__ctx_switch, so it is not saved. An entry must
 * never return (nothing lies above it): it ends by switching away for good;
 * one that returns traps.
 *
 * Three implementations, one chosen at build time:
 *   ctx_x86_64.S    x86-64 System V: rbx, rbp, r12-r15, MXCSR, x87 CW, rsp
 *   ctx_aarch64.S   AAPCS64: x19-x30, d8-d15, FPCR, sp
 *   ctx_ucontext.c  the portable fallback (getcontext/makecontext/
 *                   swapcontext; about 100x slower: a sigprocmask system
 *                   call per switch): chosen on any other architecture, or
 *                   with CONC_CTX_UCONTEXT (the CMake option of that name).
 * The hand-written switches save a context on its own stack and keep only
 * the stack pointer in conc__ctx; they return through an indirect jump, not
 * `ret`, since a switch always returns somewhere else than the call it
 * came from and `ret` would mispredict every time (3 ns instead of 10 ns a
 * switch, measured here). A new context inherits the floating-point control
 * state of the thread that made it, as a new thread does. */
#ifndef CONC_ARCH_CTX_H
#define CONC_ARCH_CTX_H

#include <stddef.h>

#if !defined(CONC_CTX_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define CONC_CTX_UCONTEXT 1
#endif

typedef void (*conc__ctx_entry)(void *arg, void *value);

#ifdef CONC_CTX_UCONTEXT
#include <ucontext.h>

typedef struct conc__ctx {
    ucontext_t uc;
    void *value;           /* what the switch to this context carries */
    conc__ctx_entry entry; /* until the first switch to it */
    void *arg;
} conc__ctx;

/* The name of the switch, for messages and the tests. */
#define CONC__CTX_KIND "ucontext"
#else
typedef struct conc__ctx {
    void *sp; /* the stack pointer; the registers are saved below it */
} conc__ctx;

#if defined(__x86_64__)
#define CONC__CTX_KIND "x86_64"
#else
#define CONC__CTX_KIND "aarch64"
#endif
#endif

#define CONC__CTX_HIDDEN __attribute__((visibility("hidden")))

/* Prepares ctx; [lo, lo + size) is the stack (its top is aligned down to 16
 * bytes). The first conc__ctx_switch to ctx calls entry(arg, value). */
CONC__CTX_HIDDEN void conc__ctx_make(conc__ctx *ctx, void *lo, size_t size, conc__ctx_entry entry,
                                     void *arg);

/* Saves the running context in from and resumes to with value. Returns the
 * value carried by the switch that later resumes from. */
CONC__CTX_HIDDEN void *conc__ctx_switch(conc__ctx *from, conc__ctx *to, void *value);

#endif
