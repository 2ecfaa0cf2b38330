/* Misuse codes with their detail: what conc_error_detail() tells the caller.
 *
 * A misuse code alone cannot say which mistake it was ("invalid argument"
 * answers a NULL handle and a negative timeout alike), so each site that
 * returns one records a static sentence in the thread record first:
 *
 *     return CONC__MISUSE(CONC_ESTATE, "called more times than items were put");
 *
 * The calling function's name is recorded with it (__func__ of the public
 * entry point), and conc_error_detail() joins the two only when asked: the
 * error path costs two stores, never a format. */
#ifndef CONC_CORE_MISUSE_H
#define CONC_CORE_MISUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/base.h"
#include "core/tls.h"

static inline int conc__misuse_at(int code, const char *fn, const char *what)
{
    conc__tls.misuse.fn = fn;
    conc__tls.misuse.what = what;
    return code;
}

#define CONC__MISUSE(code, what) conc__misuse_at((code), __func__, (what))

/* Whether code is a misuse code: one that carries a detail. */
static inline bool conc__is_misuse(int code)
{
    return code == CONC_EINVAL || code == CONC_EBADF || code == CONC_ESTATE ||
           code == CONC_EPERM || code == CONC_EDEADLK || code == CONC_EBUSY;
}

/* A system call's error passed on as -errno (a write to the caller's fd):
 * some errnos are misuse codes too (EBADF: a closed fd), and then they get
 * their detail like any other. Returns code. Only on an error path. */
static inline int conc__misuse_errno(int code, const char *fn, const char *what)
{
    return conc__is_misuse(code) ? conc__misuse_at(code, fn, what) : code;
}

/* Options structs end in reserved words that must be zero (docs/api.md:
 * growing options): a program built against a later conc that sets an
 * option this library does not know fails with CONC_EINVAL instead of
 * having it ignored. 0 or CONC_EINVAL; NULL options are the defaults. */
#define CONC__OPTS_CHECK(opts)                                                               \
    ((opts) && !conc__reserved_zero((opts)->reserved_,                                       \
                                    sizeof((opts)->reserved_) / sizeof((opts)->reserved_[0])) \
         ? CONC__MISUSE(CONC_EINVAL, "reserved option fields are not zero")                  \
         : 0)

static inline bool conc__reserved_zero(const uint64_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i] != 0)
            return false;
    return true;
}

#endif /* CONC_CORE_MISUSE_H */
