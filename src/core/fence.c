/* Asymmetric fences (core/fence.h). */
#include "core/fence.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

bool conc__membarrier_ok;

void conc__fence_setup(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        conc__membarrier_ok = true;
}

#if CONC__TSAN
_Atomic uint32_t conc__fence_word;

void conc__fence_heavy(void)
{
    atomic_fetch_add_explicit(&conc__fence_word, 0, memory_order_seq_cst);
}
#else
/* Once registered, PRIVATE_EXPEDITED does not fail; the fallback only keeps
 * this side correct if it ever did. */
void conc__fence_heavy(void)
{
    if (!conc__membarrier_ok || syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        atomic_thread_fence(memory_order_seq_cst);
}
#endif
