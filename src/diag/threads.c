/* The registry of per-thread diagnostics records (diag_thread.h): one for
 * every conc thread (registered through conc__diag_thread_begin when it
 * starts) and for every other thread the first time a diagnostic needs
 * one. A list under a pthread mutex, never a conc lock, so that nothing
 * here recurses into the hooks; the watchdog, the dumps and the trace
 * writer walk it. */
#define _GNU_SOURCE
#include "core/deadline.h"
#include "core/dlist.h"
#include "core/tls.h"
#include "diag/diag_thread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define CONC__DT_MAX_KEPT 1024 /* ended threads kept for a trace, at most */


static pthread_mutex_t conc__dt_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct conc__dthread *conc__dt_head, *conc__dt_tail;
static unsigned conc__dt_kept;
_Atomic bool conc__dt_keep_ended;
static pthread_key_t conc__dt_key;
static pthread_once_t conc__dt_key_once = PTHREAD_ONCE_INIT;

void conc__dt_lock(void)
{
    pthread_mutex_lock(&conc__dt_mutex);
}

void conc__dt_unlock(void)
{
    pthread_mutex_unlock(&conc__dt_mutex);
}

struct conc__dthread *conc__dt_first(void)
{
    return conc__dt_head;
}

void conc__dt_free_locked(struct conc__dthread *d)
{
    CONC__DLIST_UNLINK(conc__dt_head, conc__dt_tail, d);
    if (d->kept)
        conc__dt_kept--;
    free(atomic_load_explicit(&d->tring, memory_order_relaxed));
    free(d);
}

static struct conc__dthread *conc__dt_new(bool conc_thread)
{
    struct conc__dthread *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->tid = conc__tid();
    d->tp = (uintptr_t)__builtin_thread_pointer();
    d->rec = &conc__tls;
    d->conc_thread = conc_thread;
    d->alive = true;
    d->born = conc__now();
    char os_name[17] = "";
    prctl(PR_GET_NAME, os_name, 0, 0, 0);
    memcpy(d->name, os_name, sizeof os_name);
    conc__dt_lock();
    CONC__DLIST_APPEND(conc__dt_head, conc__dt_tail, d);
    conc__dt_unlock();
    conc__tls.diag = d;
    return d;
}

/* A thread that ended keeps its record only while a trace needs it (its
 * events, or its name and lifetime while a session runs); past
 * CONC__DT_MAX_KEPT such records the oldest goes, so that a program starting
 * threads without end never grows the registry. */
static void conc__dt_end(struct conc__dthread *d)
{
    conc__tls.diag = NULL;
    conc__tls.diag_ended = true;
    conc__dt_lock();
    d->alive = false;
    d->died = conc__now();
    if (!atomic_load(&conc__dt_keep_ended) && !atomic_load_explicit(&d->tring, memory_order_relaxed)) {
        conc__dt_free_locked(d);
    } else {
        d->kept = true;
        if (++conc__dt_kept > CONC__DT_MAX_KEPT) {
            struct conc__dthread *old = conc__dt_head;
            while (old && !old->kept)
                old = old->next;
            if (old)
                conc__dt_free_locked(old);
        }
    }
    conc__dt_unlock();
}

static void conc__dt_key_dtor(void *p)
{
    if (p && conc__tls.diag == p)
        conc__dt_end(p);
}

static void conc__dt_key_create(void)
{
    pthread_key_create(&conc__dt_key, conc__dt_key_dtor);
}

/* A thread conc did not start: registered on first use, ended by a pthread
 * key's destructor when it exits. */
struct conc__dthread *conc__dthread_slow(void)
{
    if (conc__tls.diag_ended)
        return NULL;
    pthread_once(&conc__dt_key_once, conc__dt_key_create);
    struct conc__dthread *d = conc__dt_new(false);
    if (d)
        pthread_setspecific(conc__dt_key, d);
    return d;
}

/* ---- the hooks of a conc thread (core/hooks.h) ---- */

struct conc__dthread *conc__diag_thread_begin(bool started_by_conc)
{
    if (!started_by_conc)
        return conc__dthread_self();
    if (!conc__tls.diag)
        conc__dt_new(true);
    return conc__tls.diag;
}

void conc__diag_thread_end(void)
{
    struct conc__dthread *d = conc__tls.diag;
    if (d)
        conc__dt_end(d);
    conc__tls.diag_ended = true;
}

/* d may be a record that has ended since its pointer was taken: only one
 * still in the registry is named. */
void conc__diag_thread_name(struct conc__dthread *d, const char *name)
{
    if (!d || !name)
        return;
    conc__dt_lock();
    for (struct conc__dthread *e = conc__dt_head; e; e = e->next) {
        if (e == d) {
            snprintf(d->name, sizeof d->name, "%s", name);
            break;
        }
    }
    conc__dt_unlock();
}

void conc__dthread_name_of(struct conc__dthread *d, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = 0;
    if (!d)
        return;
    conc__dt_lock();
    snprintf(buf, size, "%s", d->name);
    conc__dt_unlock();
}

/* ---- fork ---- */

void conc__threads_fork_prepare(void)
{
    conc__dt_lock();
}

void conc__threads_fork_parent(void)
{
    conc__dt_unlock();
}

/* The child has one thread: the other records are gone. */
void conc__threads_fork_child(void)
{
    struct conc__dthread *d = conc__dt_head;
    while (d) {
        struct conc__dthread *next = d->next;
        if (d != conc__tls.diag)
            conc__dt_free_locked(d);
        d = next;
    }
    conc__dt_unlock();
}
