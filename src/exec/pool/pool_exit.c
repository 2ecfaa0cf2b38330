/* What exit() does to pools (pool.h, "At exit"), as Python's interpreter
 * does at its end: every live pool is shut down, so that submissions fail
 * with CONC_ESHUTDOWN, and exit waits for the tasks they hold, queued and
 * running — within a time limit, since a task blocked for good would
 * otherwise hang the program's end.
 *
 * The live pools are a list under a pthread mutex (a leaf: nothing else is
 * taken while it is held but a pool's internal wait-queue locks, to shut it
 * down), in the fork table's first rank. A forked child starts with an
 * empty list: the parent's pools did not come along, and exit in the child
 * never touches them. The handler is registered with atexit() when the
 * first pool is created, so it runs before the handlers registered earlier
 * (the library's own, at load) and after those registered later.
 *
 * The handler never waits with the lock held: a task that creates or
 * destroys a pool meanwhile must not block on it. It marks the pool it
 * waits for (exit_busy), and a destroy of that pool waits for the mark to
 * go before it frees the pool. */
#include "core/deadline.h"
#include "core/misuse.h"
#include "core/dlist.h"
#include "core/fork.h"
#include "exec/pool/pool_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Long enough for work that is finishing, short enough that a program
 * whose task blocked for good still ends. */
#define CONC__POOL_EXIT_TIMEOUT_DEFAULT CONC_SEC(10)

static pthread_mutex_t conc__pools_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conc__pools_done = PTHREAD_COND_INITIALIZER; /* an exit_busy cleared */
static conc_pool *conc__pools_head, *conc__pools_tail;
static bool conc__pools_exiting; /* exit has begun: new pools are born shut down */

static _Atomic int64_t conc__pools_exit_timeout = CONC__POOL_EXIT_TIMEOUT_DEFAULT;
static pthread_once_t conc__pools_env_once = PTHREAD_ONCE_INIT;
static pthread_once_t conc__pools_setup_once = PTHREAD_ONCE_INIT;

/* ---- the time limit ---- */

/* CONC_POOL_EXIT_TIMEOUT_MS: milliseconds, or "forever". Read once, at the
 * first pool or the first conc_pool_set_exit_timeout, whichever comes
 * first, so that a program's own call wins over the environment. */
static void conc__pools_read_env(void)
{
    const char *v = getenv("CONC_POOL_EXIT_TIMEOUT_MS");
    if (!v || !*v)
        return;
    if (strcmp(v, "forever") == 0) {
        atomic_store(&conc__pools_exit_timeout, CONC_FOREVER);
        return;
    }
    char *end;
    errno = 0;
    long long ms = strtoll(v, &end, 10);
    if (errno || *end || ms < 0) {
        fprintf(stderr, "conc: CONC_POOL_EXIT_TIMEOUT_MS=%s: not a number of milliseconds "
                        "or \"forever\"; ignored\n", v);
        return;
    }
    atomic_store(&conc__pools_exit_timeout,
                 ms > CONC_FOREVER / CONC_NSEC_PER_MSEC ? CONC_FOREVER : CONC_MSEC(ms));
}

int conc_pool_set_exit_timeout(int64_t timeout)
{
    if (timeout < 0)
        return conc__bad_timeout();
    pthread_once(&conc__pools_env_once, conc__pools_read_env);
    atomic_store(&conc__pools_exit_timeout, timeout);
    return 0;
}

/* ---- at exit ---- */

/* Whether the calling thread runs inside p: one of its workers, or running
 * one of its tasks helped in on another pool's worker. Waiting for p would
 * wait for ourselves. */
static bool conc__pool_exit_is_inside(conc_pool *p)
{
    struct conc__worker *w = conc__worker_self();
    if (w && w->pool == p)
        return true;
    for (struct conc__context *c = atomic_load_explicit(&conc__tls.ctx, memory_order_relaxed); c;
         c = c->outer)
        if (c->task && c->task->exec == &p->exec)
            return true;
    return false;
}

/* Waits for p's tasks until the deadline; if some are left then, says so
 * on stderr and lets them be. */
static void conc__pool_exit_wait(conc_pool *p, int64_t timeout, int64_t deadline)
{
    int64_t left = CONC_FOREVER;
    if (deadline != CONC__NO_DEADLINE) {
        int64_t now = conc__now();
        left = deadline > now ? deadline - now : 0;
    }
    /* No time left: nothing to wait with, what is left is counted below. */
    int rc = left != 0 ? conc_pool_shutdown_timed(p, false, left) : CONC_ETIMEDOUT;
    if (rc != CONC_ETIMEDOUT)
        return;
    size_t queued;
    int running;
    conc__pool_backlog(p, &queued, &running);
    if (queued == 0 && running == 0)
        return;
    fprintf(stderr,
            "conc: exit stopped waiting for pool \"%s\" after %lld ms: %zu task%s queued, "
            "%d running\n",
            p->name, (long long)(timeout / CONC_NSEC_PER_MSEC), queued, queued == 1 ? "" : "s",
            running);
}

static void conc__pools_at_exit(void)
{
    int64_t timeout = atomic_load(&conc__pools_exit_timeout);
    int64_t deadline = timeout == CONC_FOREVER ? CONC__NO_DEADLINE : conc__now() + timeout;
    pthread_mutex_lock(&conc__pools_lock);
    conc__pools_exiting = true;
    /* Every pool first: none takes new work while exit waits for another. */
    for (conc_pool *p = conc__pools_head; p; p = p->next)
        conc_pool_shutdown_timed(p, false, 0);
    /* Then one at a time, including pools created meanwhile (born shut
     * down), each waited for without the lock. */
    for (;;) {
        conc_pool *p = conc__pools_head;
        while (p && p->exit_seen)
            p = p->next;
        if (!p)
            break;
        p->exit_seen = p->exit_busy = true;
        pthread_mutex_unlock(&conc__pools_lock);
        if (timeout != 0 && !conc__pool_exit_is_inside(p))
            conc__pool_exit_wait(p, timeout, deadline);
        pthread_mutex_lock(&conc__pools_lock);
        p->exit_busy = false;
        pthread_cond_broadcast(&conc__pools_done);
    }
    pthread_mutex_unlock(&conc__pools_lock);
}

/* ---- the list ---- */

static void conc__pools_prepare(void)
{
    pthread_mutex_lock(&conc__pools_lock);
}

static void conc__pools_parent(void)
{
    pthread_mutex_unlock(&conc__pools_lock);
}

/* The parent's pools stay listed nowhere: their workers are the parent's.
 * Their destroy answers CONC_EBROKEN before it would unlist them. */
static void conc__pools_child(void)
{
    conc__pools_head = conc__pools_tail = NULL;
    conc__pools_exiting = false;
    /* Waiters on it were other threads, which did not come along. */
    conc__pools_done = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    pthread_mutex_unlock(&conc__pools_lock);
}

static void conc__pools_setup(void)
{
    static const struct conc__fork_handler h = {conc__pools_prepare, conc__pools_parent,
                                                conc__pools_child};
    conc__fork_register(CONC__FORK_POOLS, &h);
    pthread_once(&conc__pools_env_once, conc__pools_read_env);
    /* atexit fails only without memory for the entry: the pools then end
     * with the process, unwaited, as before there was a handler. */
    (void)atexit(conc__pools_at_exit);
}

void conc__pool_exit_add(conc_pool *p)
{
    pthread_once(&conc__pools_setup_once, conc__pools_setup);
    pthread_mutex_lock(&conc__pools_lock);
    if (conc__pools_exiting)
        atomic_store_explicit(&p->state, CONC__POOL_SHUTDOWN, memory_order_release);
    CONC__DLIST_APPEND(conc__pools_head, conc__pools_tail, p);
    p->exit_listed = true;
    pthread_mutex_unlock(&conc__pools_lock);
}

void conc__pool_exit_remove(conc_pool *p)
{
    pthread_mutex_lock(&conc__pools_lock);
    while (p->exit_busy)
        pthread_cond_wait(&conc__pools_done, &conc__pools_lock);
    if (p->exit_listed) {
        CONC__DLIST_UNLINK(conc__pools_head, conc__pools_tail, p);
        p->exit_listed = false;
    }
    pthread_mutex_unlock(&conc__pools_lock);
}
