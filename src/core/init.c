/* The library's one constructor, and the thread record it rests on
 * (core/tls.h). Everything conc must do before the program's first call —
 * the asymmetric fence's registration, the diagnostics' environment, the
 * fork table — starts here, in this order. The thread record lives in this
 * file so that a static link, which pulls in only referenced objects,
 * always brings the constructor along. */
#include "core/fence.h"
#include "core/fork.h"
#include "core/hooks.h"
#include "core/tls.h"
#include "core/unhandled.h"

#include <sys/syscall.h>
#include <unistd.h>

CONC__TLS struct conc__thread_rec conc__tls;

uint32_t conc__tid_slow(void)
{
    conc__tls.tid = (uint32_t)syscall(SYS_gettid);
    return conc__tls.tid;
}

/* process/forkserver.c: in a process started as conc's fork server, serves
 * and never returns. First, before anything could start a thread. */
void conc__forkserver_enter_if_asked(void);

__attribute__((constructor)) static void conc__init(void)
{
    conc__forkserver_enter_if_asked();
    conc__fence_setup();
    conc__diag_setup();
    conc__unhandled_setup();
    conc__fork_setup();
}
