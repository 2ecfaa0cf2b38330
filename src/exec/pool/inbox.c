/* The pool's submission queue (inbox.h). */
#include "exec/pool/inbox.h"

void conc__inbox_init(struct conc__inbox *q)
{
    atomic_init(&conc__pool_task(&q->stub)->qnext, NULL);
    atomic_init(&q->back, &q->stub);
    atomic_init(&q->front, &q->stub);
    atomic_init(&q->lock, 0);
}

conc_future *conc__inbox_pop(struct conc__inbox *q, bool *busy)
{
    conc_future *front = atomic_load_explicit(&q->front, memory_order_relaxed);
    conc_future *next = atomic_load_explicit(&conc__pool_task(front)->qnext, memory_order_acquire);
    if (front == &q->stub) { /* skip the stub */
        if (!next)
            return NULL; /* empty, or the first push is half done */
        atomic_store_explicit(&q->front, next, memory_order_relaxed);
        front = next;
        next = atomic_load_explicit(&conc__pool_task(front)->qnext, memory_order_acquire);
    }
    if (next) {
        atomic_store_explicit(&q->front, next, memory_order_relaxed);
        return front;
    }
    /* front is the last linked node: take it only if it is also the newest,
     * after putting the stub behind it, so the list never runs empty. */
    if (front != atomic_load_explicit(&q->back, memory_order_acquire)) {
        if (busy)
            *busy = true; /* a producer is between its exchange and its link */
        return NULL;
    }
    conc__inbox_push(q, &q->stub);
    next = atomic_load_explicit(&conc__pool_task(front)->qnext, memory_order_acquire);
    if (next) {
        atomic_store_explicit(&q->front, next, memory_order_relaxed);
        return front;
    }
    if (busy)
        *busy = true; /* another push came between ours and the check */
    return NULL;
}

size_t conc__inbox_count(struct conc__inbox *q)
{
    size_t n = 0;
    for (conc_future *f = atomic_load_explicit(&q->front, memory_order_relaxed); f;
         f = atomic_load_explicit(&conc__pool_task(f)->qnext, memory_order_acquire))
        if (f != &q->stub)
            n++;
    return n;
}
