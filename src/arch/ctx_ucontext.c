/* The portable context switch (arch/ctx.h): getcontext, makecontext,
 * swapcontext. Chosen where no hand-written switch exists, or with
 * CONC_CTX_UCONTEXT. glibc saves the whole floating-point environment and
 * the signal mask too, so a switch costs a sigprocmask system call (about
 * 300 ns here against 5 for the hand-written ones); the contexts behave the
 * same, and the coroutine tests pass with either. */
#include "arch/ctx.h"

#ifdef CONC_CTX_UCONTEXT

#include <stdint.h>

/* makecontext passes int arguments only: the context's address travels in
 * two halves. */
static void conc__ctx_uc_start(unsigned hi, unsigned lo)
{
    conc__ctx *c = (conc__ctx *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
    c->entry(c->arg, c->value);
    __builtin_trap(); /* an entry must not return (arch/ctx.h) */
}

void conc__ctx_make(conc__ctx *ctx, void *lo, size_t size, conc__ctx_entry entry, void *arg)
{
    getcontext(&ctx->uc); /* the maker's floating-point state, as a new thread's */
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    ctx->entry = entry;
    ctx->arg = arg;
    uintptr_t p = (uintptr_t)ctx;
    makecontext(&ctx->uc, (void (*)(void))conc__ctx_uc_start, 2, (unsigned)(p >> 32),
                (unsigned)(p & 0xffffffffu));
}

void *conc__ctx_switch(conc__ctx *from, conc__ctx *to, void *value)
{
    to->value = value;
    swapcontext(&from->uc, &to->uc);
    return from->value;
}

#endif
