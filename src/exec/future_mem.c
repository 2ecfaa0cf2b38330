/* Memory for futures (future_impl.h, conc__future_alloc/free_mem).
 *
 * A pool submits a future per task, and a fork-join or a million-task
 * submission allocates them far faster than malloc serves blocks of this
 * size: too large for its fast bins, more at once than its per-thread
 * cache holds, and freed on other threads than the one that allocated
 * them (through the allocating arena's lock). perf showed malloc and free
 * as the largest part of a submission.
 *
 * So futures come from slabs: each thread carves futures one after the
 * other out of its current slab (CONC__SLAB_SIZE bytes, aligned to its
 * size, so a future finds its slab by masking its address). A slab counts
 * its futures not yet freed; the last free, on whatever thread, frees the
 * slab. A freed future's memory is reused only with its whole slab: a slab
 * is small (about 90 futures), so memory follows the number of futures
 * alive. A thread's current slab gives up its unused places when the
 * thread exits. */
#include "exec/future_impl.h"

#include <pthread.h>
#include <stdlib.h>

#define CONC__SLAB_SIZE ((size_t)16384)
#define CONC__SLAB_HEADER ((size_t)64) /* the count on its own cache line */
#define CONC__FUTURE_SIZE ((sizeof(conc_future) + 15) & ~(size_t)15)
#define CONC__SLAB_FUTURES ((CONC__SLAB_SIZE - CONC__SLAB_HEADER) / CONC__FUTURE_SIZE)

struct conc__slab {
    _Atomic uint32_t live; /* places not yet freed, used or not */
};

/* Each thread's cursor is in its thread record (core/tls.h). */
static pthread_key_t conc__cursor_key;
static pthread_once_t conc__cursor_once = PTHREAD_ONCE_INIT;
static bool conc__cursor_key_ok;

static struct conc__slab *conc__slab_of(void *p)
{
    return (struct conc__slab *)((uintptr_t)p & ~(uintptr_t)(CONC__SLAB_SIZE - 1));
}

/* Gives up `places` places of slab s; frees it when none is left. */
static void conc__slab_put(struct conc__slab *s, uint32_t places)
{
    if (atomic_fetch_sub_explicit(&s->live, places, memory_order_acq_rel) == places)
        free(s);
}

/* The places of the current slab not handed out. */
static void conc__cursor_release(struct conc__slab_cursor *c)
{
    if (c->next && c->next < c->end)
        conc__slab_put(conc__slab_of(c->next - 1),
                       (uint32_t)((size_t)(c->end - c->next) / CONC__FUTURE_SIZE));
    c->next = c->end = NULL;
}

static void conc__cursor_exit(void *arg)
{
    conc__cursor_release(arg);
}

static void conc__cursor_make_key(void)
{
    conc__cursor_key_ok = pthread_key_create(&conc__cursor_key, conc__cursor_exit) == 0;
}

/* Starts a new slab for this thread; false when out of memory, or when the
 * thread cannot get an exit destructor (then it uses malloc: see below). */
static bool conc__cursor_refill(struct conc__slab_cursor *c)
{
    if (!c->registered) {
        pthread_once(&conc__cursor_once, conc__cursor_make_key);
        c->registered = conc__cursor_key_ok && pthread_setspecific(conc__cursor_key, c) == 0;
        if (!c->registered)
            return false;
    }
    struct conc__slab *s = aligned_alloc(CONC__SLAB_SIZE, CONC__SLAB_SIZE);
    if (!s)
        return false;
    atomic_init(&s->live, (uint32_t)CONC__SLAB_FUTURES);
    c->next = (char *)s + CONC__SLAB_HEADER;
    c->end = c->next + CONC__SLAB_FUTURES * CONC__FUTURE_SIZE;
    return true;
}

/* Without a slab (out of memory, or no exit destructor for this thread) a
 * future comes from malloc, marked so that its free goes back there. */
conc_future *conc__future_alloc_mem(void)
{
    struct conc__slab_cursor *c = &conc__tls.slab;
    if (conc__unlikely(c->next == c->end) && !conc__cursor_refill(c)) {
        conc_future *f = malloc(sizeof *f);
        if (f)
            f->from_slab = false;
        return f;
    }
    conc_future *f = (conc_future *)(void *)c->next;
    c->next += CONC__FUTURE_SIZE;
    f->from_slab = true;
    return f;
}

void conc__future_free_mem(conc_future *f)
{
    if (f->from_slab)
        conc__slab_put(conc__slab_of(f), 1);
    else
        free(f);
}
