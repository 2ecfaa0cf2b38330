/* Timeouts become deadlines on the monotonic clock at once: every
 * retry after a spurious wake-up or EINTR waits only for the time that remains. */
#ifndef CONC_DEADLINE_H
#define CONC_DEADLINE_H

#include "conc/base.h"
#include "core/misuse.h"
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define CONC__NO_DEADLINE INT64_MAX

static inline int64_t conc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CONC_NSEC_PER_SEC + ts.tv_nsec;
}

/* CONC_EINVAL for a negative timeout, with its detail (core/misuse.h). */
static inline int conc__bad_timeout(void)
{
    return conc__misuse_at(CONC_EINVAL, NULL, "negative timeout (only CONC_FOREVER waits without limit)");
}

/* Turns a relative timeout into an absolute deadline in *deadline.
 * Returns 0, or CONC_EINVAL for a negative timeout. CONC_FOREVER (INT64_MAX)
 * and any timeout that would pass the end of the clock mean no deadline. */
static inline int conc__deadline(int64_t timeout, int64_t *deadline)
{
    if (timeout == CONC_FOREVER) {
        *deadline = CONC__NO_DEADLINE;
        return 0;
    }
    if (timeout < 0)
        return conc__bad_timeout();
    int64_t now = conc__now();
    *deadline = timeout > CONC__NO_DEADLINE - now ? CONC__NO_DEADLINE : now + timeout;
    return 0;
}

static inline bool conc__expired(int64_t deadline)
{
    return deadline != CONC__NO_DEADLINE && conc__now() >= deadline;
}

static inline struct timespec conc__timespec(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / CONC_NSEC_PER_SEC, .tv_nsec = ns % CONC_NSEC_PER_SEC};
    return ts;
}

#endif
