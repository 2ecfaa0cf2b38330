/* The pool's own fields of a future, in its executor area
 * (exec/future_impl.h, CONC__FUTURE_EXEC). */
#ifndef CONC_EXEC_POOL_TASK_H
#define CONC_EXEC_POOL_TASK_H

#include "exec/future_impl.h"

struct conc__pool_task {
    _Atomic(conc_future *) qnext; /* the submission queue's link (inbox.h) */
    uint32_t depth;               /* a pool parent's + 1; 0 without one */
    bool external;                /* submitted from outside the pool */
};
CONC__FUTURE_EXEC_CHECK(struct conc__pool_task);

static inline struct conc__pool_task *conc__pool_task(conc_future *f)
{
    return CONC__FUTURE_EXEC(f, struct conc__pool_task);
}

extern const struct conc__future_ops conc__pool_ops;

static inline bool conc__is_pool_task(conc_future *f)
{
    return f->exec && f->exec->ops == &conc__pool_ops;
}

/* Whether f is t or one of its descendants (submitted by t, transitively),
 * t a pool task. Every ancestor of a live future is alive (it holds a
 * reference on its parent). */
static inline bool conc__pool_task_descends(conc_future *f, conc_future *t)
{
    uint32_t depth = conc__pool_task(t)->depth;
    while (f && conc__is_pool_task(f) && conc__pool_task(f)->depth > depth)
        f = f->parent;
    return f == t;
}

#endif
