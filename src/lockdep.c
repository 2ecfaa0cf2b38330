/* Lock-order checking (debug.h). Not built yet: the hooks do nothing and
 * the API answers CONC_ENOSYS. */
#include "conc/debug.h"
#include "diag.h"

int conc__lockdep_acquire(const void *lock, enum conc__lock_kind kind, unsigned flags)
{
    (void)lock, (void)kind, (void)flags;
    return 0;
}
void conc__lockdep_acquired(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__lockdep_failed(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__lockdep_release(const void *lock, enum conc__lock_kind kind) { (void)lock, (void)kind; }
void conc__lockdep_env(const char *value) { (void)value; }

int conc_lockdep_set_mode(conc_lockdep_mode mode)
{
    return mode == CONC_LOCKDEP_OFF ? 0 : CONC_ENOSYS;
}
conc_lockdep_mode conc_lockdep_get_mode(void) { return CONC_LOCKDEP_OFF; }
uint64_t conc_lockdep_reports(void) { return 0; }
int conc_lockdep_reset(void) { return 0; }
int conc_lock_set_name(const void *lock, const char *name)
{
    (void)lock, (void)name;
    return CONC_ENOSYS;
}
