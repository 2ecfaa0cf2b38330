/* What the pool tells a task group about its tasks (task_group.c). */
#ifndef CONC_TASK_GROUP_IMPL_H
#define CONC_TASK_GROUP_IMPL_H

#include "exec/future_impl.h"

/* f (f->group set) was queued: one more task the group waits for. */
void conc__task_group_added(conc_future *f);
/* f ended: finished, failed or cancelled. */
void conc__task_group_ended(conc_future *f);

#endif
