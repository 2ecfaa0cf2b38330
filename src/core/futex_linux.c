/* Linux futex calls (core/platform.h). FUTEX_WAIT_BITSET takes an absolute
 * timeout, on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME is given, which is
 * exactly a conc deadline: a retry after EINTR needs no recomputation. */
#include "conc/base.h"
#include "core/deadline.h"
#include "core/platform.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int conc__futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline, bool shared)
{
    struct timespec ts, *tsp = 0;
    if (deadline != CONC__NO_DEADLINE) {
        /* Past deadlines return here: the kernel would still sleep out its
         * timer slack (~50 us) before saying so. */
        if (deadline <= conc__now())
            return CONC_ETIMEDOUT;
        ts = conc__timespec(deadline);
        tsp = &ts;
    }
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    long r = syscall(SYS_futex, addr, op, expected, tsp, 0, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT)
        return CONC_ETIMEDOUT;
    return 0; /* woken, value changed (EAGAIN) or signal (EINTR): caller re-checks */
}

void conc__futex_wake(_Atomic uint32_t *addr, int n, bool shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    syscall(SYS_futex, addr, op, n, 0, 0, 0);
}
