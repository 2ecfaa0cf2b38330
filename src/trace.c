/* Timeline traces (debug.h). Not built yet: the hooks do nothing and the
 * API answers CONC_ENOSYS. */
#include "conc/debug.h"
#include "diag.h"

void conc__trace_span_begin(const char *name, const void *obj) { (void)name, (void)obj; }
void conc__trace_span_end(const char *name, const void *obj) { (void)name, (void)obj; }
void conc__trace_env(const char *value) { (void)value; }

int conc_trace_start(const char *path, size_t events_per_thread)
{
    (void)events_per_thread;
    return path ? CONC_ENOSYS : CONC_EINVAL;
}
int conc_trace_stop(void) { return CONC_EINVAL; }
int conc_trace_begin(const char *name)
{
    (void)name;
    return 0;
}
int conc_trace_end(void) { return 0; }
