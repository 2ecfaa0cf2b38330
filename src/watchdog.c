/* The wait-for graph, the deadlock watchdog and dumps (debug.h). Not built
 * yet: the hooks do nothing and the API answers CONC_ENOSYS. */
#include "conc/debug.h"
#include "diag.h"

void conc__watch_contended(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__watch_acquired(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__watch_failed(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__watch_release(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }

int conc_watchdog_start(int64_t threshold_ns)
{
    return threshold_ns <= 0 ? CONC_EINVAL : CONC_ENOSYS;
}
int conc_watchdog_stop(void) { return 0; }
uint64_t conc_watchdog_reports(void) { return 0; }
int conc_debug_dump(int fd)
{
    (void)fd;
    return CONC_ENOSYS;
}
int conc_debug_dump_on_sigquit(bool on) { return on ? CONC_ENOSYS : 0; }
