/* conc_barrier: Python's threading.Barrier, state machine for state machine
 * (sync_impl.h names the states), on the wait core. b->q's lock guards every
 * field. A round: parties threads arrive while FILLING; the last runs the
 * action and switches to DRAINING, which releases the others; the last thread
 * to leave switches back to FILLING. Threads arriving while a round drains (or
 * while a reset's broken round drains) wait in enter, so rounds never mix.
 * Breaking (abort, timeout, failed action) sets BROKEN and wakes everyone;
 * reset moves a broken or filling round to RESETTING, whose waiters leave with
 * CONC_EBROKEN, and the last to leave makes the barrier FILLING again.
 */
#include "core/deadline.h"
#include "core/misuse.h"
#include "sync/sync_impl.h"

#include <stddef.h>

#include <string.h>

static inline struct conc__barrier *conc__barrier_of(conc_barrier *b)
{
    return (struct conc__barrier *)(void *)b;
}

/* A barrier never initialised (all zero: no parties) would wait for ever:
 * CONC_EINVAL at once. Shared by every call on a barrier: its detail names
 * no function. */
static inline int conc__barrier_check(conc_barrier *bx)
{
    if (!bx)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL barrier");
    struct conc__barrier *b = conc__barrier_of(bx);
    if (conc__waitq_dead(&b->q))
        return conc__misuse_at(CONC_EBADF, NULL, "the barrier was destroyed");
    if (b->parties == 0)
        return conc__misuse_at(CONC_EINVAL, NULL, "the barrier was never initialised (0 parties)");
    return 0;
}

/* CONC_BARRIER_INIT(n) writes the public struct's first member: it must be
 * this one, and the state it leaves zero must be FILLING. */
_Static_assert(offsetof(struct conc__barrier, parties) == offsetof(conc_barrier, parties_),
               "CONC_BARRIER_INIT sets the parties");
_Static_assert(CONC__B_FILLING == 0, "a statically initialised barrier is filling");

int conc_barrier_init(conc_barrier *bx, size_t parties, const conc_barrier_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!bx)
        return CONC__MISUSE(CONC_EINVAL, "NULL barrier");
    if (parties == 0 || parties > UINT32_MAX)
        return CONC__MISUSE(CONC_EINVAL, "parties must be 1 to UINT32_MAX");
    struct conc__barrier *b = conc__barrier_of(bx);
    memset(b, 0, sizeof *b);
    b->parties = (uint32_t)parties;
    b->state = CONC__B_FILLING;
    if (opts) {
        b->action = opts->action;
        b->action_arg = opts->action_arg;
    }
    conc__waitq_init(&b->q, opts && opts->pshared ? CONC__WQ_PSHARED : 0);
    return 0;
}

int conc_barrier_destroy(conc_barrier *bx)
{
    int rc = conc__barrier_check(bx);
    if (rc)
        return rc;
    struct conc__barrier *b = conc__barrier_of(bx);
    conc__waitq_lock(&b->q);
    bool busy = b->count != 0;
    conc__waitq_unlock(&b->q);
    if (busy || conc__waitq_kill(&b->q) != 0)
        return CONC__MISUSE(CONC_EBUSY, "threads wait on the barrier");
    return 0;
}

/* Called with b->q locked. */
static void conc__barrier_break(struct conc__barrier *b)
{
    b->state = CONC__B_BROKEN;
    conc__waitq_wake_all(&b->q);
}

/* Called with b->q locked: wait while a previous round drains. */
static int conc__barrier_enter(struct conc__barrier *b, struct conc__waiter *w, int64_t deadline)
{
    while (b->state == CONC__B_DRAINING || b->state == CONC__B_RESETTING) {
        if (conc__expired(deadline))
            return CONC_ETIMEDOUT;
        conc__waitq_sleep(&b->q, w, deadline);
    }
    return b->state == CONC__B_BROKEN ? CONC_EBROKEN : 0;
}

/* Called with b->q locked, by the last to arrive. */
static int conc__barrier_release(struct conc__barrier *b)
{
    if (b->action && b->action(b->action_arg) != 0) {
        conc__barrier_break(b);
        return CONC_EBROKEN;
    }
    b->state = CONC__B_DRAINING;
    conc__waitq_wake_all(&b->q);
    return 0;
}

/* Called with b->q locked, by the others: wait for the round to end. */
static int conc__barrier_await(struct conc__barrier *b, struct conc__waiter *w, int64_t deadline)
{
    while (b->state == CONC__B_FILLING) {
        if (conc__expired(deadline)) {
            conc__barrier_break(b);
            return CONC_ETIMEDOUT;
        }
        conc__waitq_sleep(&b->q, w, deadline);
    }
    return b->state == CONC__B_DRAINING ? 0 : CONC_EBROKEN;
}

/* Called with b->q locked, by every thread leaving a round. */
static void conc__barrier_exit(struct conc__barrier *b)
{
    if (--b->count == 0 && (b->state == CONC__B_DRAINING || b->state == CONC__B_RESETTING)) {
        b->state = CONC__B_FILLING;
        conc__waitq_wake_all(&b->q);
    }
}

int conc_barrier_wait_timed(conc_barrier *bx, size_t *index, int64_t timeout)
{
    int64_t deadline = CONC__NO_DEADLINE;
    int rc = conc__barrier_check(bx);
    if (rc)
        return rc;
    if ((rc = conc__deadline(timeout, &deadline)) != 0)
        return rc;
    struct conc__barrier *b = conc__barrier_of(bx);
    struct conc__waiter w;
    conc__waiter_init(&w, 0, 0);
    conc__waitq_lock(&b->q);
    conc__waitq_announce(&b->q);
    rc = conc__barrier_enter(b, &w, deadline);
    if (rc == 0) {
        uint32_t arrival = b->count++;
        if (arrival + 1 == b->parties)
            rc = conc__barrier_release(b);
        else
            rc = conc__barrier_await(b, &w, deadline);
        conc__barrier_exit(b);
        if (rc == 0 && index)
            *index = arrival;
    }
    conc__waitq_retire(&b->q);
    conc__waitq_unlock(&b->q);
    return rc;
}

int conc_barrier_abort(conc_barrier *bx)
{
    int rc = conc__barrier_check(bx);
    if (rc)
        return rc;
    struct conc__barrier *b = conc__barrier_of(bx);
    conc__waitq_lock(&b->q);
    conc__barrier_break(b);
    conc__waitq_unlock(&b->q);
    return 0;
}

int conc_barrier_reset(conc_barrier *bx)
{
    int rc = conc__barrier_check(bx);
    if (rc)
        return rc;
    struct conc__barrier *b = conc__barrier_of(bx);
    conc__waitq_lock(&b->q);
    if (b->count == 0)
        b->state = CONC__B_FILLING;
    else if (b->state == CONC__B_FILLING || b->state == CONC__B_BROKEN)
        b->state = CONC__B_RESETTING;
    conc__waitq_wake_all(&b->q);
    conc__waitq_unlock(&b->q);
    return 0;
}

int64_t conc_barrier_parties(conc_barrier *bx)
{
    int rc = conc__barrier_check(bx);
    return rc ? rc : (int64_t)conc__barrier_of(bx)->parties;
}

int64_t conc_barrier_n_waiting(conc_barrier *bx)
{
    int rc = conc__barrier_check(bx);
    if (rc)
        return rc;
    struct conc__barrier *b = conc__barrier_of(bx);
    conc__waitq_lock(&b->q);
    int64_t n = b->state == CONC__B_FILLING ? (int64_t)b->count : 0; /* as CPython's */
    conc__waitq_unlock(&b->q);
    return n;
}

int conc_barrier_wait(conc_barrier *b, size_t *index)
{
    return conc_barrier_wait_timed(b, index, CONC_FOREVER);
}

int conc_barrier_broken(conc_barrier *bx)
{
    int rc = conc__barrier_check(bx);
    if (rc)
        return rc;
    struct conc__barrier *b = conc__barrier_of(bx);
    conc__waitq_lock(&b->q);
    rc = b->state == CONC__B_BROKEN;
    conc__waitq_unlock(&b->q);
    return rc;
}
