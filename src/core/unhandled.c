/* The unhandled-failure hook (base.h). The hook and its argument change
 * together under a pthread mutex (never a conc lock: reports come from
 * deep inside the library); a report copies them and calls the hook
 * outside the lock, so a hook may itself set the hook. */
#include "core/unhandled.h"
#include "core/fork.h"

#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t conc__unhandled_lock = PTHREAD_MUTEX_INITIALIZER;
static conc_unhandled_fn conc__unhandled_fn;
static void *conc__unhandled_arg;

int conc_set_unhandled_hook(conc_unhandled_fn fn, void *arg)
{
    pthread_mutex_lock(&conc__unhandled_lock);
    conc__unhandled_fn = fn;
    conc__unhandled_arg = arg;
    pthread_mutex_unlock(&conc__unhandled_lock);
    return 0;
}

void conc__report_unhandled(const conc_unhandled *u)
{
    pthread_mutex_lock(&conc__unhandled_lock);
    conc_unhandled_fn fn = conc__unhandled_fn;
    void *arg = conc__unhandled_arg;
    pthread_mutex_unlock(&conc__unhandled_lock);
    if (fn) {
        fn(u, arg);
        return;
    }
    char who[96], why[160] = "";
    if (u->name)
        snprintf(who, sizeof who, "%s \"%s\"", u->kind, u->name);
    else
        snprintf(who, sizeof who, "%s %p", u->kind, u->object);
    if (u->status < 0) /* a conc code, or -errno */
        snprintf(why, sizeof why, " (%s: %s)", conc_err_name(u->status), conc_strerror(u->status));
    fprintf(stderr, "conc: %s ended with status %d%s, and nobody read it\n", who, u->status, why);
}

static void conc__unhandled_prepare(void)
{
    pthread_mutex_lock(&conc__unhandled_lock);
}

static void conc__unhandled_resume(void)
{
    pthread_mutex_unlock(&conc__unhandled_lock);
}

void conc__unhandled_setup(void)
{
    static const struct conc__fork_handler h = {conc__unhandled_prepare, conc__unhandled_resume,
                                                conc__unhandled_resume};
    conc__fork_register(CONC__FORK_UNHANDLED, &h);
}
