/* Lock statistics (debug.h). Not built yet: the hooks do nothing and the
 * API answers CONC_ENOSYS. */
#include "conc/debug.h"
#include "diag.h"

void conc__lockstat_contended(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__lockstat_acquired(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__lockstat_failed(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__lockstat_release(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__lockstat_env(const char *value) { (void)value; }

int conc_lockstat_enable(bool on) { return on ? CONC_ENOSYS : 0; }
size_t conc_lockstat_top(conc_lockstat *out, size_t max)
{
    (void)out, (void)max;
    return 0;
}
int conc_lockstat_print(int fd, size_t top)
{
    (void)fd, (void)top;
    return CONC_ENOSYS;
}
int conc_lockstat_reset(void) { return 0; }
