/* Stackful coroutines (aio/coro.h).
 *
 * A resume saves the resumer's registers in co->back and switches to
 * co->ctx; a yield, or the end of fn, switches back the other way (both
 * inline, in coro.h; here are what is out of line, creation and the end).
 * All the bookkeeping is on the resumer's side of the switch, before and
 * after it: the running coroutine (conc__tls.coro), the running context
 * (conc__tls.ctx and self), the canary check of the stack just left. The
 * coroutine's side touches nothing thread-local, so that a coroutine may
 * later be resumed by another thread.
 *
 * Sanitizers: ASan is told which stack becomes live before each switch
 * (__sanitizer_start_switch_fiber) and that the switch happened after it
 * (__sanitizer_finish_switch_fiber, which also tells the coroutine its
 * resumer's stack, needed for the switch back); a coroutine's last switch
 * passes no fake-stack slot, which frees its fake frames. TSan gets one
 * fiber per coroutine and a __tsan_switch_to_fiber before every switch
 * (which also orders the two sides: what one did before a switch happens
 * before what the other does after it). */
#include "aio/coro.h"
#include "aio/stack.h"
#include "core/misuse.h"

#include "conc/base.h"

#include <stdio.h>
#include <stdlib.h>

/* An overwritten canary: memory is already corrupt, so nothing is safe to
 * go on with. */
void conc__coro_overflowed(const struct conc__coro *co)
{
    const struct conc__stack *s = co->stack;
    fprintf(stderr,
            "conc: coroutine %p overflowed its unguarded stack [%p, %p): the canary at %p "
            "was overwritten, so the memory below that stack may be corrupt; aborting "
            "(give it a larger stack, or a guarded one)\n",
            (const void *)co, (void *)s->lo, (void *)s->hi, (const void *)co->canary);
    abort();
}

int conc__coro_resume_refused(const struct conc__coro *co)
{
    if (!co)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL coroutine");
    return conc__misuse_at(CONC_ESTATE, NULL,
                           co->state == CONC__CORO_RUNNING
                               ? "the coroutine is running (it resumed the caller)"
                               : "the coroutine has finished");
}

int conc__coro_yield_refused(void)
{
    return conc__misuse_at(CONC_ESTATE, NULL, "not called from a coroutine");
}

/* The bottom of every coroutine's stack: runs fn, then leaves for good. */
static void conc__coro_main(void *arg, void *in)
{
    struct conc__coro *co = arg;
#if CONC__ASAN
    __sanitizer_finish_switch_fiber(NULL, &co->back_bottom, &co->back_size);
#endif
    void *out = co->fn(co->arg, in);
    co->state = CONC__CORO_FINISHED;
    conc__coro_switch_back(co, out, true);
    __builtin_unreachable();
}

int conc__coro_create(struct conc__coro **out, const struct conc__coro_opts *opts, conc__coro_fn fn,
                      void *arg)
{
    if (!out || !fn)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL coroutine pointer or function");
    size_t size = opts && opts->stack_size ? opts->stack_size : CONC__STACK_DEFAULT;
    if (size < CONC__STACK_MIN || size > CONC__STACK_MAX)
        return conc__misuse_at(CONC_EINVAL, NULL,
                               "stack size below 16 KiB or above 1 GiB (negative?)");
    struct conc__stack *s;
    int rc = conc__stack_get(&s, size + sizeof(struct conc__coro) + 64,
                             opts && opts->unguarded ? CONC__STACK_UNGUARDED : 0);
    if (rc != 0)
        return rc;
    struct conc__coro *co = (struct conc__coro *)(((uintptr_t)s->hi - sizeof *co) & ~(uintptr_t)63);
    co->state = CONC__CORO_SUSPENDED;
    co->resumer = NULL;
    co->canary = s->canary;
    co->stack = s;
    co->fn = fn;
    co->arg = arg;
    co->context = (struct conc__context){.ident = (uintptr_t)co};
    conc__ctx_make(&co->ctx, s->lo, conc__coro_stack_size(co), conc__coro_main, co);
#if CONC__TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    *out = co;
    return 0;
}

int conc__coro_destroy(struct conc__coro *co)
{
    if (!co)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL coroutine");
    if (co->state == CONC__CORO_RUNNING)
        return conc__misuse_at(CONC_EBUSY, NULL, "the coroutine is running");
#if CONC__TSAN
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    conc__stack_put(co->stack);
    return 0;
}

void conc__coro_stack(const struct conc__coro *co, void **lo, size_t *size)
{
    *lo = co->stack->lo;
    *size = conc__coro_stack_size(co);
}
