/* Waiting on several futures: conc_wait and the as-completed iterator
 * (Python's concurrent.futures.wait and as_completed). Both sleep on one
 * multi-wait record of the wait core whose links sit in each future's wait
 * queue, as CPython's _Waiter; a link announces itself in the future's
 * waiter count, which is what makes the finisher look (future_impl.h). */
#include "exec/future_impl.h"
#include "core/deadline.h"
#include "core/misuse.h"

#include <stdlib.h>

/* ---- sleeping on several futures at once ---- */

struct conc__fset_wait {
    struct conc__multiwait m;
    struct conc__waiter *links;
    struct conc__waiter small[8];
};

static int conc__fset_wait_init(struct conc__fset_wait *w, size_t n)
{
    w->links = n <= 8 ? w->small : malloc(n * sizeof *w->links);
    return w->links ? 0 : CONC_ENOMEM;
}

static void conc__fset_wait_free(struct conc__fset_wait *w)
{
    if (w->links != w->small)
        free(w->links);
}

/* Links into the queue of each future not done, then sleeps until one of
 * them fires or the deadline passes, then unlinks. ready(arg) is re-checked
 * after linking: a future done before its link was seen is caught there. */
static void conc__fset_sleep(struct conc__fset_wait *w, conc_future *const *fs, size_t n,
                             bool (*ready)(void *), void *arg, int64_t deadline)
{
    conc__multiwait_init(&w->m);
    for (size_t i = 0; i < n; i++) {
        conc__waitq_lock(&fs[i]->wq);
        conc__waitq_announce(&fs[i]->wq);
        conc__multiwait_link(&w->m, &fs[i]->wq, &w->links[i], 0);
        conc__waitq_unlock(&fs[i]->wq);
    }
    if (!ready(arg))
        conc__multiwait_park(&w->m, deadline);
    for (size_t i = 0; i < n; i++) {
        /* A link woken by a finisher needs nothing passed on: a future's
         * completion wakes all its waiters. */
        (void)conc__multiwait_unlink(&fs[i]->wq, &w->links[i]);
        conc__waitq_retire(&fs[i]->wq);
    }
}

static bool conc__own_future_among(conc_future *const *fs, size_t n)
{
    conc_future *self = conc__current_task();
    if (!self)
        return false;
    for (size_t i = 0; i < n; i++)
        if (fs[i] == self && !conc__future_is_done(self))
            return true;
    return false;
}

/* ---- conc_wait ---- */

struct conc__wait_cond {
    conc_future *const *fs;
    size_t n;
    conc_wait_mode mode;
};

static bool conc__failed(conc_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_seq_cst) == CONC__F_FINISHED &&
           f->status != 0;
}

static bool conc__wait_met(void *arg)
{
    struct conc__wait_cond *c = arg;
    size_t done = 0;
    for (size_t i = 0; i < c->n; i++) {
        conc_future *f = c->fs[i];
        if (atomic_load_explicit(&f->state, memory_order_seq_cst) < CONC__F_FINISHED)
            continue;
        done++;
        if (c->mode == CONC_FIRST_COMPLETED || (c->mode == CONC_FIRST_EXCEPTION && conc__failed(f)))
            return true;
    }
    return done == c->n;
}

static void conc__wait_flags(conc_future *const *fs, size_t n, bool *done)
{
    if (done)
        for (size_t i = 0; i < n; i++)
            done[i] = conc__future_is_done(fs[i]);
}

int conc_wait(conc_future *const *fs, size_t n, conc_wait_mode mode, bool *done)
{
    return conc_wait_timed(fs, n, mode, done, CONC_FOREVER);
}

int conc_wait_timed(conc_future *const *fs, size_t n, conc_wait_mode mode, bool *done, int64_t timeout)
{
    int64_t deadline;
    if (n && !fs)
        return CONC__MISUSE(CONC_EINVAL, "NULL futures array with n > 0");
    int rc = conc__deadline(timeout, &deadline);
    if (rc)
        return rc;
    if (mode != CONC_FIRST_COMPLETED && mode != CONC_FIRST_EXCEPTION && mode != CONC_ALL_COMPLETED)
        return CONC__MISUSE(CONC_EINVAL, "unknown wait mode");
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return CONC__MISUSE(CONC_EINVAL, "a NULL entry in the futures array");
    struct conc__wait_cond c = {fs, n, mode};
    if (!conc__wait_met(&c) && conc__own_future_among(fs, n))
        return CONC__MISUSE(CONC_EDEADLK, "waiting on the caller's own task's future");
    struct conc__helper *h = conc__tls.helper;
    struct conc__fset_wait w;
    if (conc__fset_wait_init(&w, n))
        return CONC_ENOMEM;
    while (!conc__wait_met(&c)) {
        if (h && deadline == CONC__NO_DEADLINE && h->help_once(h, fs, n))
            continue;
        if (conc__expired(deadline) || timeout == 0) {
            rc = CONC_ETIMEDOUT;
            break;
        }
        conc__fset_sleep(&w, fs, n, conc__wait_met, &c, deadline);
    }
    conc__fset_wait_free(&w);
    conc__wait_flags(fs, n, done);
    return rc;
}

/* ---- as_completed ---- */

/* fs[0..nready) are done and not yet yielded; fs[nready..n) not yet seen
 * done. Each future is listed once and holds a reference of the iterator. */
struct conc_as_completed {
    conc_future **fs;
    size_t n, nready;
    struct conc__fset_wait w;
};

static int conc__ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(conc_future *const *)a, y = (uintptr_t)*(conc_future *const *)b;
    return (x > y) - (x < y);
}

int conc_as_completed_create(conc_as_completed **out, conc_future *const *fs, size_t n)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL output pointer");
    *out = NULL;
    if (n && !fs)
        return CONC__MISUSE(CONC_EINVAL, "NULL futures array with n > 0");
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return CONC__MISUSE(CONC_EINVAL, "a NULL entry in the futures array");
    conc_as_completed *it = calloc(1, sizeof *it);
    if (!it)
        return CONC_ENOMEM;
    it->fs = malloc((n ? n : 1) * sizeof *it->fs);
    if (!it->fs || conc__fset_wait_init(&it->w, n)) {
        free(it->fs);
        free(it);
        return CONC_ENOMEM;
    }
    /* Duplicates yield once: sort a copy by address and keep one of each. */
    for (size_t i = 0; i < n; i++)
        it->fs[i] = fs[i];
    qsort(it->fs, n, sizeof *it->fs, conc__ptr_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || it->fs[m - 1] != it->fs[i])
            it->fs[m++] = it->fs[i];
    for (size_t i = 0; i < m; i++)
        conc_future_retain(it->fs[i]);
    it->n = m;
    *out = it;
    return 0;
}

struct conc__fset {
    conc_future *const *fs;
    size_t n;
};

/* The re-check after linking: must not reorder fs, whose entries pair with
 * the links. */
static bool conc__any_done(void *arg)
{
    struct conc__fset *s = arg;
    for (size_t i = 0; i < s->n; i++)
        if (conc__future_is_done(s->fs[i]))
            return true;
    return false;
}

/* Moves every future now done into the ready region. */
static bool conc__collect_done(conc_as_completed *it)
{
    for (size_t i = it->nready; i < it->n; i++) {
        if (conc__future_is_done(it->fs[i])) {
            conc_future *t = it->fs[it->nready];
            it->fs[it->nready++] = it->fs[i];
            it->fs[i] = t;
        }
    }
    return it->nready > 0;
}

int conc_as_completed_next(conc_as_completed *it, conc_future **f)
{
    return conc_as_completed_next_timed(it, f, CONC_FOREVER);
}

int conc_as_completed_next_timed(conc_as_completed *it, conc_future **f, int64_t timeout)
{
    int64_t deadline;
    if (!it)
        return CONC__MISUSE(CONC_EINVAL, "NULL iterator");
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL output pointer");
    int rc = conc__deadline(timeout, &deadline);
    if (rc)
        return rc;
    *f = NULL;
    if (it->n == 0)
        return CONC_ENOENT;
    struct conc__helper *h = conc__tls.helper;
    while (!conc__collect_done(it)) {
        conc_future *const *pending = it->fs + it->nready;
        size_t npending = it->n - it->nready;
        if (conc__own_future_among(pending, npending))
            return CONC__MISUSE(CONC_EDEADLK, "waiting on the caller's own task's future");
        if (h && deadline == CONC__NO_DEADLINE && h->help_once(h, pending, npending))
            continue;
        if (conc__expired(deadline))
            return CONC_ETIMEDOUT;
        struct conc__fset set = {pending, npending};
        conc__fset_sleep(&it->w, pending, npending, conc__any_done, &set, deadline);
    }
    /* Yield the first ready one; the last listed takes its place. */
    *f = it->fs[0];
    it->fs[0] = it->fs[--it->nready];
    it->fs[it->nready] = it->fs[--it->n];
    return 0;
}

int conc_as_completed_destroy(conc_as_completed *it)
{
    if (!it)
        return CONC__MISUSE(CONC_EINVAL, "NULL iterator");
    for (size_t i = 0; i < it->n; i++)
        conc_future_release(it->fs[i]);
    conc__fset_wait_free(&it->w);
    free(it->fs);
    free(it);
    return 0;
}
