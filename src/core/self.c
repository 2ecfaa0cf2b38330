/* conc__self() and the cached thread id (self.h). */
#include "core/self.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

CONC__TLS uintptr_t conc__self_override;
CONC__TLS uint32_t conc__tid_cache;

uint32_t conc__tid_slow(void)
{
    conc__tid_cache = (uint32_t)syscall(SYS_gettid);
    return conc__tid_cache;
}

/* The child of fork() runs on a copy of the forking thread's TLS, whose cached
 * id is the parent's. */
static void conc__tid_forget(void)
{
    conc__tid_cache = 0;
}

__attribute__((constructor)) static void conc__self_setup(void)
{
    pthread_atfork(0, 0, conc__tid_forget);
}
