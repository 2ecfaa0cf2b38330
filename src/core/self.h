/* conc__self(): the execution-context identity used for lock ownership,
 * EDEADLK and (later) lock-order checks. Today it is the thread: its thread
 * pointer (the TLS base: unique among live threads, one register read). A
 * pool task or coroutine
 * running on the thread installs its own identity in conc__self_override, so
 * that a task helped in on a waiting worker never counts as the owner of the
 * worker's locks. initial-exec TLS keeps this a single fs-relative load, with
 * no __tls_get_addr call, in the shared library too.
 *
 * Process-shared objects cannot use an address (a forked child has the same
 * addresses); they use the kernel thread id, cached per thread and reset in a
 * forked child. */
#ifndef CONC_SELF_H
#define CONC_SELF_H

#include <stdint.h>

#define CONC__TLS __thread __attribute__((tls_model("initial-exec")))

extern CONC__TLS uintptr_t conc__self_override;
extern CONC__TLS uint32_t conc__tid_cache;

static inline uintptr_t conc__self(void)
{
    uintptr_t o = conc__self_override;
    return o ? o : (uintptr_t)__builtin_thread_pointer();
}

uint32_t conc__tid_slow(void);

/* The kernel thread id of the caller (gettid), without a syscall after the
 * first call on each thread. */
static inline uint32_t conc__tid(void)
{
    uint32_t t = conc__tid_cache;
    return t ? t : conc__tid_slow();
}

#endif
