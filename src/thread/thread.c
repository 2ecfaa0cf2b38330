/* conc_thread: pthreads with a timed join, names and identities.
 *
 * A handle is reference-counted: one reference for the caller (dropped by
 * conc_thread_destroy), one for the thread (dropped as its last act). The
 * timed join waits on the handle's `done` event, which the thread sets when
 * its function returns, then calls pthread_join, which returns at once since
 * the thread is on its way out; a join without a timeout calls pthread_join
 * alone, saving a second sleep. join_state moves JOINABLE → JOINED or
 * JOINABLE → DETACHED exactly once (compare-and-swap), which makes a second
 * join or a join after detach CONC_EINVAL instead of undefined behaviour.
 *
 * conc_thread_self() of a thread conc did not start adopts it: a handle that
 * cannot be joined, owned by a pthread key whose destructor frees it when the
 * thread exits.
 *
 * Every conc thread (and every adopted one) registers with the diagnostics
 * (core/hooks.h): its name and tid for dumps and traces, and its lifetime,
 * from start until its function returns. Its handle is in its thread
 * record (core/tls.h), conc__tls.thread.
 */
#define _GNU_SOURCE
#include "conc/thread.h"
#include "conc/sync.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "core/dlist.h"
#include "core/fork.h"
#include "core/hooks.h"
#include "core/tls.h"
#include "core/unhandled.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

enum { CONC__T_JOINABLE, CONC__T_JOINED, CONC__T_DETACHED };

struct conc_thread {
    pthread_t pthread;
    conc_thread_fn fn;
    void *arg;
    int status;          /* fn's return; read after `done` is seen set */
    bool returned;       /* fn returned: status is its */
    _Atomic int refs;
    _Atomic int join_state;
    _Atomic int64_t tid; /* 0 until the thread has started */
    bool adopted;
    conc_event done;     /* set when fn has returned */
    conc_mutex name_lock;
    char *name;          /* under name_lock; NULL: none */
    struct conc__dthread *diag; /* under name_lock: its diagnostics record */
    struct conc_thread *next, *prev; /* the live list (enumerate), under its lock */
    bool listed;                     /* under the live list's lock */
};

/* ---- the live threads (conc_thread_enumerate) ----
 *
 * Every conc thread from its start until its function returns, and every
 * adopted one until it exits, under a pthread mutex (never a conc lock:
 * listing takes each name's conc lock inside it) that the fork table takes
 * around fork(); in a child only the forking thread stays listed. */

static pthread_mutex_t conc__live_lock = PTHREAD_MUTEX_INITIALIZER;
static conc_thread *conc__live_head, *conc__live_tail;
static pthread_once_t conc__live_once = PTHREAD_ONCE_INIT;

static void conc__live_prepare(void)
{
    pthread_mutex_lock(&conc__live_lock);
}

static void conc__live_parent(void)
{
    pthread_mutex_unlock(&conc__live_lock);
}

static void conc__live_child(void)
{
    for (conc_thread *t = conc__live_head, *next; t; t = next) {
        next = t->next;
        if (t != conc__tls.thread) {
            CONC__DLIST_UNLINK(conc__live_head, conc__live_tail, t);
            t->listed = false;
        }
    }
    pthread_mutex_unlock(&conc__live_lock);
}

static void conc__live_setup(void)
{
    static const struct conc__fork_handler h = {conc__live_prepare, conc__live_parent,
                                                conc__live_child};
    conc__fork_register(CONC__FORK_THREAD_LIST, &h);
}

static void conc__live_add(conc_thread *t)
{
    pthread_once(&conc__live_once, conc__live_setup);
    pthread_mutex_lock(&conc__live_lock);
    CONC__DLIST_APPEND(conc__live_head, conc__live_tail, t);
    t->listed = true;
    pthread_mutex_unlock(&conc__live_lock);
}

static void conc__live_remove(conc_thread *t)
{
    pthread_mutex_lock(&conc__live_lock);
    if (t->listed) {
        CONC__DLIST_UNLINK(conc__live_head, conc__live_tail, t);
        t->listed = false;
    }
    pthread_mutex_unlock(&conc__live_lock);
}

/* The last reference: a status nobody joined for is reported (base.h,
 * conc_set_unhandled_hook). */
static void conc__thread_unref(conc_thread *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    if (t->returned && t->status != 0 && atomic_load(&t->join_state) != CONC__T_JOINED)
        conc__report_unhandled(&(conc_unhandled){"thread", t->name, t, t->status});
    free(t->name);
    free(t);
}

/* Gives the OS the first CONC_THREAD_OS_NAME_MAX bytes of name. From the
 * thread itself, prctl; for another live thread, its comm file, which is what
 * pthread_setname_np writes too, without touching a pthread_t that a join may
 * have freed. A thread that already ended has no name to set. */
static void conc__thread_os_name(conc_thread *t, const char *name)
{
    char os_name[CONC_THREAD_OS_NAME_MAX + 1];
    snprintf(os_name, sizeof os_name, "%s", name);
    if (t == conc__tls.thread) {
        prctl(PR_SET_NAME, os_name, 0, 0, 0);
        return;
    }
    int64_t tid = atomic_load(&t->tid);
    if (tid <= 0 || conc_event_is_set(&t->done) == 1)
        return;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%lld/comm", (long long)tid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = write(fd, os_name, strlen(os_name));
        (void)n; /* the thread may have ended meanwhile: nothing to name */
        close(fd);
    }
}

static void *conc__thread_main(void *arg)
{
    conc_thread *t = arg;
    conc__tls.thread = t;
    atomic_store(&t->tid, (int64_t)conc__tid());
    conc__live_add(t);
    struct conc__dthread *diag = conc__diag_thread_begin(true);
    conc_mutex_lock(&t->name_lock);
    t->diag = diag;
    if (t->name) {
        conc__thread_os_name(t, t->name);
        conc__diag_thread_name(t->diag, t->name);
    }
    conc_mutex_unlock(&t->name_lock);
    t->status = t->fn(t->arg);
    t->returned = true;
    conc__live_remove(t);
    conc_mutex_lock(&t->name_lock);
    t->diag = NULL;
    conc_mutex_unlock(&t->name_lock);
    conc__diag_thread_end();
    conc__tls.thread = NULL;
    conc_event_set(&t->done);
    conc__thread_unref(t);
    return NULL;
}

static conc_thread *conc__thread_new(const char *name)
{
    conc_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (name && !(t->name = strdup(name))) {
        free(t);
        return NULL;
    }
    return t;
}

/* Every signal blocked but those a fault raises in the faulting thread. */
static void conc__async_signals(sigset_t *set)
{
    sigfillset(set);
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof sync_signals / sizeof *sync_signals; i++)
        sigdelset(set, sync_signals[i]);
}

static int conc__thread_create(conc_thread *t, const conc_thread_opts *opts)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int rc = 0;
    if (opts && opts->stack_size && pthread_attr_setstacksize(&attr, opts->stack_size) != 0)
        rc = EINVAL;
    if (rc == 0) {
        sigset_t blocked;
        conc__async_signals(&blocked);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
        /* The new thread starts with the mask: no window, no syscall here. */
        pthread_attr_setsigmask_np(&attr, &blocked);
        rc = pthread_create(&t->pthread, &attr, conc__thread_main, t);
#else
        sigset_t old; /* it inherits ours, briefly narrowed */
        pthread_sigmask(SIG_SETMASK, &blocked, &old);
        rc = pthread_create(&t->pthread, &attr, conc__thread_main, t);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
    }
    pthread_attr_destroy(&attr);
    return -rc;
}

int conc_thread_create(conc_thread **out, conc_thread_fn fn, void *arg,
                       const conc_thread_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    bool detached = opts && opts->detached;
    if (!fn)
        return CONC__MISUSE(CONC_EINVAL, "NULL function");
    if (!out && !detached)
        return CONC__MISUSE(CONC_EINVAL, "NULL handle pointer for a joinable thread");
    if (out)
        *out = NULL;
    char default_name[32];
    const char *name = opts ? opts->name : NULL;
    if (!name) { /* Python's Thread-N: every unnamed thread says which it is */
        static _Atomic unsigned counter;
        snprintf(default_name, sizeof default_name, "Thread-%u", atomic_fetch_add(&counter, 1) + 1);
        name = default_name;
    }
    conc_thread *t = conc__thread_new(name);
    if (!t)
        return CONC_ENOMEM;
    t->fn = fn;
    t->arg = arg;
    atomic_store(&t->refs, 2);
    int rc = conc__thread_create(t, opts);
    if (rc != 0) {
        free(t->name);
        free(t);
        if (rc == CONC_EINVAL) /* pthread refused the attributes we made of opts */
            return CONC__MISUSE(CONC_EINVAL, "stack_size refused (below PTHREAD_STACK_MIN?)");
        return CONC_EAGAIN;
    }
    if (detached) {
        atomic_store(&t->join_state, CONC__T_DETACHED);
        pthread_detach(t->pthread);
        conc__thread_unref(t);
    } else {
        *out = t;
    }
    return 0;
}

int conc_thread_join_timed(conc_thread *t, int *status, int64_t timeout)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL thread");
    if (timeout < 0)
        return conc__bad_timeout();
    if (t == conc__tls.thread)
        return CONC__MISUSE(CONC_EDEADLK, "a thread cannot join itself");
    if (t->adopted)
        return CONC__MISUSE(CONC_ESTATE, "an adopted thread (not started by conc) cannot be joined");
    int state = atomic_load(&t->join_state);
    if (state != CONC__T_JOINABLE)
        return CONC__MISUSE(CONC_ESTATE, state == CONC__T_DETACHED ? "the thread is detached"
                                                                  : "the thread was joined already");
    /* Without a timeout, pthread_join alone waits (one sleep, not two). */
    int rc = timeout == CONC_FOREVER ? 0 : conc_event_wait_timed(&t->done, timeout);
    if (rc != 0)
        return rc;
    int joinable = CONC__T_JOINABLE;
    if (!atomic_compare_exchange_strong(&t->join_state, &joinable, CONC__T_JOINED))
        return CONC__MISUSE(CONC_ESTATE, "another join or a detach came first");
    pthread_join(t->pthread, NULL);
    if (status)
        *status = t->status;
    return 0;
}

int conc_thread_detach(conc_thread *t)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL thread");
    if (t->adopted)
        return CONC__MISUSE(CONC_ESTATE, "an adopted thread (not started by conc) cannot be detached");
    int joinable = CONC__T_JOINABLE;
    if (!atomic_compare_exchange_strong(&t->join_state, &joinable, CONC__T_DETACHED))
        return CONC__MISUSE(CONC_ESTATE, "the thread was joined or detached already");
    pthread_detach(t->pthread);
    return 0;
}

int conc_thread_destroy(conc_thread *t)
{
    /* A thread's own handle is its creator's reference: dropping it here
     * would leave the creator a dangling pointer. */
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL thread");
    if (t->adopted || t == conc__tls.thread)
        return CONC__MISUSE(CONC_ESTATE, "a thread's own handle, or the main or an adopted "
                                         "thread's, lives as long as its thread");
    int joinable = CONC__T_JOINABLE;
    if (atomic_compare_exchange_strong(&t->join_state, &joinable, CONC__T_DETACHED))
        pthread_detach(t->pthread);
    conc__thread_unref(t);
    return 0;
}

int conc_thread_join(conc_thread *t, int *status)
{
    return conc_thread_join_timed(t, status, CONC_FOREVER);
}

/* ---- adopted threads ---- */

static pthread_key_t conc__adopted_key;
static pthread_once_t conc__adopted_once = PTHREAD_ONCE_INIT;

static void conc__adopted_free(void *p)
{
    conc_thread *t = p;
    conc__live_remove(t);
    if (conc__tls.thread == t)
        conc__tls.thread = NULL;
    conc__thread_unref(t);
}

static void conc__adopted_key_create(void)
{
    pthread_key_create(&conc__adopted_key, conc__adopted_free);
}

/* A handle for a thread conc did not start, which cannot be joined: tid's,
 * named as the OS names it, one reference. */
static conc_thread *conc__adopted_new(int64_t tid)
{
    char os_name[CONC_THREAD_OS_NAME_MAX + 2] = "";
    if (tid == (int64_t)conc__tid()) {
        prctl(PR_GET_NAME, os_name, 0, 0, 0); /* our own: no file to open */
    } else {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%lld/comm", (long long)tid);
        FILE *f = fopen(path, "re");
        if (f) {
            if (fgets(os_name, sizeof os_name, f))
                os_name[strcspn(os_name, "\n")] = 0;
            fclose(f);
        }
    }
    conc_thread *t = conc__thread_new(os_name);
    if (!t)
        return NULL;
    t->adopted = true;
    atomic_store(&t->refs, 1);
    atomic_store(&t->tid, tid);
    return t;
}

/* The main thread's handle (the thread whose id is the process's), made by
 * whoever asks first and kept for the life of the process: one reference is
 * this pointer's. In a forked child the parent's is stale (another id) and
 * a new one replaces it (the old one is the parent's to free). */
static _Atomic(conc_thread *) conc__main_thread;

static conc_thread *conc__main_get(void)
{
    int64_t pid = (int64_t)getpid();
    conc_thread *m = atomic_load(&conc__main_thread);
    if (m && atomic_load(&m->tid) == pid)
        return m;
    conc_thread *n = conc__adopted_new(pid);
    if (!n)
        return NULL;
    if (atomic_compare_exchange_strong(&conc__main_thread, &m, n))
        return n;
    conc__thread_unref(n); /* another caller's came first */
    return m;
}

conc_thread *conc_thread_self(void)
{
    conc_thread *t = conc__tls.thread;
    if (t)
        return t;
    int64_t tid = (int64_t)conc__tid();
    if (tid == (int64_t)getpid()) {
        if (!(t = conc__main_get()))
            return NULL;
        atomic_fetch_add(&t->refs, 1); /* the thread's own, dropped at its exit */
    } else if (!(t = conc__adopted_new(tid))) {
        return NULL;
    }
    t->pthread = pthread_self();
    pthread_once(&conc__adopted_once, conc__adopted_key_create);
    if (pthread_setspecific(conc__adopted_key, t) != 0) {
        conc__thread_unref(t);
        return NULL;
    }
    conc__tls.thread = t;
    t->diag = conc__diag_thread_begin(false); /* named as the OS names it */
    conc__live_add(t);
    return t;
}

/* Fills info from t (its name under its lock). */
static void conc__thread_info(conc_thread *t, conc_thread_info *info)
{
    info->id = atomic_load(&t->tid);
    info->started_by_conc = !t->adopted;
    conc_thread_get_name(t, info->name, sizeof info->name);
}

int64_t conc_thread_enumerate(conc_thread_info *out, size_t cap)
{
    if (!out && cap)
        return CONC__MISUSE(CONC_EINVAL, "NULL output array with a non-zero cap");
    conc_thread *main_thread = conc__main_get();
    size_t n = 0;
    bool main_listed = false;
    pthread_mutex_lock(&conc__live_lock);
    for (conc_thread *t = conc__live_head; t; t = t->next) {
        main_listed |= t == main_thread;
        if (n < cap)
            conc__thread_info(t, &out[n]);
        n++;
    }
    pthread_mutex_unlock(&conc__live_lock);
    /* The main thread is always alive (Python lists it from the start). */
    if (main_thread && !main_listed) {
        if (n < cap)
            conc__thread_info(main_thread, &out[n]);
        n++;
    }
    return (int64_t)n;
}

int64_t conc_thread_active_count(void)
{
    return conc_thread_enumerate(NULL, 0);
}

conc_thread *conc_thread_main(void)
{
    if (conc__tid() == (uint32_t)getpid())
        return conc_thread_self();
    return conc__main_get();
}

/* ---- queries and names ---- */

int conc_thread_is_alive(conc_thread *t)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL thread");
    if (t->adopted)
        return 1; /* its handle lives exactly as long as the thread */
    return conc_event_is_set(&t->done) == 0;
}

int64_t conc_thread_id(conc_thread *t)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL thread");
    if (t == conc__tls.thread) /* the caller's own: right in a forked child too */
        return (int64_t)conc__tid();
    int64_t tid;
    /* A thread just started may not have stored its id yet. */
    while ((tid = atomic_load(&t->tid)) == 0)
        sched_yield();
    return tid;
}

int conc_thread_set_name(conc_thread *t, const char *name)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL thread");
    if (!name)
        return CONC__MISUSE(CONC_EINVAL, "NULL name");
    char *copy = strdup(name);
    if (!copy)
        return CONC_ENOMEM;
    conc_mutex_lock(&t->name_lock);
    free(t->name);
    t->name = copy;
    conc__thread_os_name(t, copy);
    conc__diag_thread_name(t->diag, copy);
    conc_mutex_unlock(&t->name_lock);
    return 0;
}

int conc_thread_get_name(conc_thread *t, char *buf, size_t size)
{
    if (!t)
        return CONC__MISUSE(CONC_EINVAL, "NULL thread");
    if (!buf)
        return CONC__MISUSE(CONC_EINVAL, "NULL buffer");
    if (size == 0)
        return CONC__MISUSE(CONC_EINVAL, "size is 0");
    conc_mutex_lock(&t->name_lock);
    snprintf(buf, size, "%s", t->name ? t->name : "");
    conc_mutex_unlock(&t->name_lock);
    return 0;
}

/* ---- sleeping and yielding ---- */

int conc_sleep(int64_t ns)
{
    int64_t deadline = CONC__NO_DEADLINE;
    int rc = conc__deadline(ns, &deadline);
    if (rc != 0)
        return rc;
    if (ns == 0)
        return 0;
    if (deadline == CONC__NO_DEADLINE) {
        for (;;)
            pause();
    }
    struct timespec ts = conc__timespec(deadline);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return 0;
}

int conc_yield(void)
{
    sched_yield(); /* cannot fail on Linux */
    return 0;
}

/* ---- thread-local storage ---- */

/* A key's state_: all zero is never initialised; destroy leaves a dead
 * marker, so a use after destroy is told apart (CONC_EBADF). */
enum { CONC__TLS_NONE = 0, CONC__TLS_LIVE = 0x6b657931u, CONC__TLS_DEAD = 0x64656164u };

/* Shared by conc_tls_destroy and conc_tls_set: the detail names no
 * function (CONC__MISUSE here would name this helper). */
static int conc__tls_check(const conc_tls *k)
{
    if (!k)
        return conc__misuse_at(CONC_EINVAL, NULL, "NULL key");
    if (k->state_ == CONC__TLS_DEAD)
        return conc__misuse_at(CONC_EBADF, NULL, "the key was destroyed");
    if (k->state_ != CONC__TLS_LIVE)
        return conc__misuse_at(CONC_EINVAL, NULL, "the key was never initialised");
    return 0;
}

int conc_tls_init(conc_tls *k, void (*dtor)(void *))
{
    if (!k)
        return CONC__MISUSE(CONC_EINVAL, "NULL key");
    pthread_key_t key;
    int rc = pthread_key_create(&key, dtor);
    if (rc != 0)
        return rc == EAGAIN ? CONC_EAGAIN : CONC_ENOMEM;
    k->key_ = (unsigned)key;
    k->state_ = CONC__TLS_LIVE;
    return 0;
}

int conc_tls_destroy(conc_tls *k)
{
    int rc = conc__tls_check(k);
    if (rc)
        return rc;
    pthread_key_delete((pthread_key_t)k->key_);
    k->state_ = CONC__TLS_DEAD;
    return 0;
}

void *conc_tls_get(const conc_tls *k)
{
    return k && k->state_ == CONC__TLS_LIVE ? pthread_getspecific((pthread_key_t)k->key_) : NULL;
}

int conc_tls_set(const conc_tls *k, void *value)
{
    int rc = conc__tls_check(k);
    if (rc)
        return rc;
    return pthread_setspecific((pthread_key_t)k->key_, value) == 0 ? 0 : CONC_ENOMEM;
}
