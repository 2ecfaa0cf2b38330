/* Futures made by the program (future.h): no executor runs them; whoever
 * holds one completes it.
 *
 * A completion is claimed once, by CONC__FF_COMPLETING in its flags, and
 * then takes the future from PENDING to RUNNING (losing to a cancel, which
 * only ever moves PENDING to CANCELLED) before it publishes the final state
 * through conc__future_finish. So of two completions, or a completion and a
 * cancel, exactly one wins, and the loser changes nothing. */
#include "exec/future_impl.h"
#include "core/misuse.h"

int conc_future_create(conc_future **out)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL output pointer");
    *out = conc__future_new(NULL, NULL, NULL, 1);
    return *out ? 0 : CONC_ENOMEM;
}

static bool conc__future_made(conc_future *f)
{
    return f->exec == NULL;
}

int conc_future_set_running_or_notify_cancel(conc_future *f)
{
    if (!f)
        return CONC__MISUSE(CONC_EINVAL, "NULL future");
    if (!conc__future_made(f))
        return CONC__MISUSE(CONC_EINVAL, "an executor runs this future, not the program");
    if (conc__future_claim(f))
        return 0;
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (s == CONC__F_CANCELLED)
        return CONC_ECANCELED;
    return CONC__MISUSE(CONC_ESTATE, "the future is running or done already");
}

/* Claims the one completion of f and makes it RUNNING; false if it is done,
 * cancelled, or another completion got there first. */
static bool conc__future_claim_completion(conc_future *f)
{
    if (atomic_fetch_or_explicit(&f->flags, CONC__FF_COMPLETING, memory_order_acq_rel) &
        CONC__FF_COMPLETING)
        return false;
    if (conc__future_claim(f))
        return true;
    return atomic_load_explicit(&f->state, memory_order_acquire) == CONC__F_RUNNING;
}

/* fn: the public call, for the detail. */
static inline int conc__future_complete_made(const char *fn, conc_future *f, int status,
                                             const conc_result *result)
{
    if (!f)
        return conc__misuse_at(CONC_EINVAL, fn, "NULL future");
    if (!conc__future_made(f))
        return conc__misuse_at(CONC_EINVAL, fn, "an executor runs this future, not the program");
    if (!conc__future_claim_completion(f))
        return conc__misuse_at(CONC_ESTATE, fn, "the future was completed or cancelled already");
    conc__future_finish(f, status, result);
    return 0;
}

int conc_future_set_result(conc_future *f, const conc_result *result)
{
    return conc__future_complete_made(__func__, f, 0, result);
}

int conc_future_set_error(conc_future *f, int status)
{
    if (status >= 0)
        return CONC__MISUSE(CONC_EINVAL, "status must be negative (an error code)");
    return conc__future_complete_made(__func__, f, status, NULL);
}
