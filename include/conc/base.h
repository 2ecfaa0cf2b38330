/* conc/base.h — what every module shares: the export macro, the version, the
 * error codes, the timeout convention, and the report of failures nobody saw.
 *
 * The rules every header follows (docs/api.md has them whole):
 *
 * Errors: every conc function returns 0 on success or a negative CONC_E* code
 * (functions that return a count or a predicate return it as a non-negative
 * value, an error as a negative one). Codes that have an errno are equal to
 * -errno (as libuv's), so a caller can compare against -ETIMEDOUT as well;
 * conc's own codes sit far below the errno range. conc_strerror() and
 * conc_err_name() explain any code, unknown ones too. A misuse gets the same
 * code in every module (docs/api.md lists them), and conc_error_detail() says
 * which misuse it was.
 *
 * Timeouts: a call that may block has two forms: conc_X_verb(...) waits as
 * long as it takes, conc_X_verb_timed(..., timeout) gives up after timeout
 * nanoseconds (relative, as Python's), the timeout always its last argument.
 * 0 never blocks (a try); CONC_FOREVER is the untimed form; any other
 * negative value is CONC_EINVAL. CONC_FOREVER is INT64_MAX, a value no
 * subtraction of two times yields by accident: a remaining time computed as
 * -1 ns is an error, never "forever". The timeout becomes a deadline on the
 * monotonic clock at once, so spurious wake-ups and EINTR retry with the time
 * that remains; EINTR never reaches the caller.
 */
#ifndef CONC_BASE_H
#define CONC_BASE_H

#include <stdint.h>

/* Marks the public API: the library is built with -fvisibility=hidden, so
 * only what carries CONC_API is exported from the shared object. */
#if defined(__GNUC__)
#define CONC_API __attribute__((visibility("default")))
#else
#define CONC_API
#endif

#define CONC_VERSION_MAJOR 0
#define CONC_VERSION_MINOR 1
#define CONC_VERSION_PATCH 0
#define CONC_VERSION_HEX \
    ((CONC_VERSION_MAJOR << 16) | (CONC_VERSION_MINOR << 8) | CONC_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually linked, as CONC_VERSION_HEX encodes it. */
CONC_API unsigned conc_version(void);
/* The same as "MAJOR.MINOR.PATCH"; a static string. */
CONC_API const char *conc_version_string(void);

/* X(name, value, message). CONC_ERRNO_MAP_SYS holds the codes equal to
 * -errno; CONC_ERRNO_MAP_OWN conc's own, outside the errno range. */
#define CONC_ERRNO_MAP(X) CONC_ERRNO_MAP_SYS(X) CONC_ERRNO_MAP_OWN(X)

#define CONC_ERRNO_MAP_SYS(X)                                                   \
    X(EPERM, -1, "operation not permitted (not the owner, or not locked)")     \
    X(ENOENT, -2, "no such file, object or entry")                              \
    X(ESRCH, -3, "no such process or thread")                                   \
    X(EIO, -5, "input/output error")                                            \
    X(EBADF, -9, "bad handle (destroyed object or closed descriptor)")          \
    X(ECHILD, -10, "no child process")                                          \
    X(EAGAIN, -11, "resource temporarily unavailable, try again")               \
    X(ENOMEM, -12, "out of memory")                                             \
    X(EACCES, -13, "permission denied")                                         \
    X(EBUSY, -16, "resource busy (still in use)")                              \
    X(EEXIST, -17, "already exists")                                            \
    X(EINVAL, -22, "invalid argument")                                          \
    X(EMFILE, -24, "too many open files")                                       \
    X(EPIPE, -32, "broken pipe (the other end is closed)")                      \
    X(ERANGE, -34, "result out of range")                                       \
    X(EDEADLK, -35, "deadlock avoided (re-lock by the owner, or waiting on oneself)") \
    X(ENOSYS, -38, "function not implemented on this system")                   \
    X(EOVERFLOW, -75, "value too large (a size or count overflows)")            \
    X(ENOTSUP, -95, "operation not supported with these options")               \
    X(EADDRINUSE, -98, "address already in use")                                \
    X(ECONNRESET, -104, "connection reset by peer")                             \
    X(ENOTCONN, -107, "socket is not connected")                                \
    X(ESHUTDOWN, -108, "shut down: no more operations accepted")                \
    X(ETIMEDOUT, -110, "timed out")                                             \
    X(ECONNREFUSED, -111, "connection refused")                                 \
    X(ECANCELED, -125, "cancelled")                                             \
    X(EOWNERDEAD, -130, "the previous owner died holding the lock")             \
    X(ENOTRECOVERABLE, -131, "state not recoverable (lock abandoned by a dead owner)")

#define CONC_ERRNO_MAP_OWN(X)                                                   \
    X(EBROKEN, -8001, "broken (a barrier, pool or executor can no longer be used)") \
    X(EEMPTY, -8002, "empty: nothing to get before the deadline")               \
    X(EFULL, -8003, "full: no room to put before the deadline")                 \
    X(EWORKERDIED, -8004, "a worker process died while running the task")      \
    X(ESTATE, -8005, "invalid state for this call (done, joined or released already)")

typedef enum conc_err {
#define CONC__ERR_ENUM(name, value, msg) CONC_##name = (value),
    CONC_ERRNO_MAP(CONC__ERR_ENUM)
#undef CONC__ERR_ENUM
} conc_err;

/* A sentence describing code; "unknown error" for a code not in the list.
 * Never NULL; the string is static. Thread-safe. */
CONC_API const char *conc_strerror(int code);
/* The code's name without the prefix ("ETIMEDOUT"), "OK" for 0, or
 * "UNKNOWN". Never NULL; static. Thread-safe. */
CONC_API const char *conc_err_name(int code);

/* What the last misuse code this thread received from conc was about: a
 * static sentence naming the call and the mistake ("conc_queue_task_done:
 * called more times than items were put"), as dlerror() explains dlopen.
 * Misuse codes are CONC_EINVAL, CONC_EBADF, CONC_ESTATE, CONC_EPERM,
 * CONC_EDEADLK and CONC_EBUSY; each call that returns one sets the detail,
 * and nothing else changes it. "" if this thread has had none. Never NULL.
 * Thread-safe (the detail is per thread), never blocks. */
CONC_API const char *conc_error_detail(void);

/* Timeouts, in nanoseconds. */
#define CONC_FOREVER INT64_MAX
#define CONC_NSEC_PER_USEC ((int64_t)1000)
#define CONC_NSEC_PER_MSEC ((int64_t)1000000)
#define CONC_NSEC_PER_SEC ((int64_t)1000000000)
#define CONC_USEC(n) ((int64_t)(n) * CONC_NSEC_PER_USEC)
#define CONC_MSEC(n) ((int64_t)(n) * CONC_NSEC_PER_MSEC)
#define CONC_SEC(n) ((int64_t)(n) * CONC_NSEC_PER_SEC)

/* Nanoseconds on the monotonic clock (CLOCK_MONOTONIC): for measuring
 * intervals and comparing with deadlines. Thread-safe, never blocks. */
CONC_API int64_t conc_now_ns(void);

/* Failures nobody will see (Python's threading.excepthook, and asyncio's
 * "exception was never retrieved"): a thread that returned a non-zero
 * status and was never joined (detached, or destroyed unjoined), and a
 * future that ended with an error (not a cancellation) released without
 * anyone reading its result with conc_future_result. conc reports each one
 * once, when its last reference goes: to the hook, or, without one, as a
 * line on stderr. */
typedef struct conc_unhandled {
    const char *kind;   /* "thread" or "future" */
    const char *name;   /* the thread's name; NULL for a future or a nameless thread */
    const void *object; /* the conc_thread or conc_future; gone after the hook returns */
    int status;         /* what it returned */
} conc_unhandled;
typedef void (*conc_unhandled_fn)(const conc_unhandled *u, void *arg);

/* Sets the hook (NULL: back to stderr). It runs on the thread that dropped
 * the last reference, and must not block for long. Returns 0. Thread-safe. */
CONC_API int conc_set_unhandled_hook(conc_unhandled_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* CONC_BASE_H */
