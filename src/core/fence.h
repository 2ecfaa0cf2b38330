/* Asymmetric fences, for a fast path that must be ordered against a slow
 * path's decision to sleep (the wait core's Dekker pairs, wait/wait.h).
 *
 * A fast path that must be ordered against a slow path's sleep decision calls
 * the light fence; the side about to sleep calls the heavy one. With
 * membarrier(PRIVATE_EXPEDITED) registered the light one is a compiler barrier
 * and the heavy one a syscall that fences every thread of the process; without
 * it both are full fences. In-process objects only: membarrier orders only the
 * calling process's threads. */
#ifndef CONC_CORE_FENCE_H
#define CONC_CORE_FENCE_H

#include "core/platform.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

extern bool conc__membarrier_ok __attribute__((visibility("hidden")));

#if CONC__TSAN
/* ThreadSanitizer does not model stand-alone fences (and GCC 12 refuses them
 * under -fsanitize=thread): both sides use a seq_cst read-modify-write of one
 * shared word instead, a full barrier that TSan understands
 * (docs/architecture.md, "TSan and fences"). */
extern _Atomic uint32_t conc__fence_word;

static inline void conc__fence_light(void)
{
    atomic_fetch_add_explicit(&conc__fence_word, 0, memory_order_seq_cst);
}
#else
static inline void conc__fence_light(void)
{
    if (conc__likely(conc__membarrier_ok))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
}
#endif

void conc__fence_heavy(void);

/* Registers with membarrier if the kernel offers it (core/init.c). */
void conc__fence_setup(void);

#endif
