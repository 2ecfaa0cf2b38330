/* System-wide mutexes and semaphores: opened by name from any process of
 * the user (conc/process.h), as POSIX's sem_open or Windows' named mutexes.
 *
 * Each lives in a named shared memory segment of its own, "conc.mutex.NAME"
 * or "conc.sem.NAME" (conc_shm: mode 0600, the owner's uid checked on open),
 * holding a conc_pmutex (robust: a holder that dies is reported to the next
 * locker) or a process-shared conc_sem, and a ready word. Opening is
 * create-or-attach: a creator that wins the name initialises the object and
 * then publishes ready (release); a process that finds the name taken
 * attaches and waits, bounded, for ready — the creator may still be between
 * its create and its initialisation, or may have died there, which after
 * CONC__NAMED_READY_NS is CONC_EBROKEN rather than a hang. The name stays
 * until conc_named_*_unlink: no process owns it (sem_open's rule). */
#define _GNU_SOURCE
#include "conc/process.h"
#include "conc/sync.h"

#include "core/deadline.h"
#include "core/misuse.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONC__NAMED_READY 0x6e616d64u /* "namd": initialised */
#define CONC__NAMED_READY_NS (2 * CONC_NSEC_PER_SEC)

struct conc__named_seg {
    _Atomic uint32_t ready;
    uint32_t kind; /* 1: mutex, 2: semaphore */
    union {
        conc_pmutex mutex;
        conc_sem sem;
    } u;
};

struct conc__named {
    conc_shm *shm;
    struct conc__named_seg *seg;
};

struct conc_named_mutex {
    struct conc__named n;
};

struct conc_named_sem {
    struct conc__named n;
};

/* "conc.KIND.NAME" into out; CONC_EINVAL (detail for fn) if too long. */
static int conc__named_path(const char *kind, const char *name, char *out, size_t cap,
                            const char *fn)
{
    if (!name || !*name)
        return conc__misuse_at(CONC_EINVAL, fn, "no name");
    if (name[0] == '/')
        name++;
    int n = snprintf(out, cap, "conc.%s.%s", kind, name);
    if (n < 0 || (size_t)n >= cap || (size_t)n > CONC_SHM_NAME_MAX)
        return conc__misuse_at(CONC_EINVAL, fn, "name too long");
    return 0;
}

static int conc__named_init_object(struct conc__named_seg *seg, uint32_t kind, size_t value)
{
    if (kind == 1)
        return conc_pmutex_init(&seg->u.mutex, NULL);
    return conc_sem_init(&seg->u.sem, value, &(conc_sem_opts){.pshared = true});
}

/* Creates or attaches to the object called name; fills n. */
static int conc__named_open(struct conc__named *n, const char *kind_name, uint32_t kind,
                            const char *name, size_t value, const char *fn)
{
    char path[CONC_SHM_NAME_MAX + 2];
    int rc = conc__named_path(kind_name, name, path, sizeof path, fn);
    if (rc != 0)
        return rc;
    int64_t deadline = conc__now() + CONC__NAMED_READY_NS;
    for (;;) {
        rc = conc_shm_create(&n->shm, sizeof *n->seg, &(conc_shm_opts){.name = path, .keep = true});
        if (rc == 0) {
            n->seg = conc_shm_addr(n->shm);
            n->seg->kind = kind;
            rc = conc__named_init_object(n->seg, kind, value);
            if (rc != 0) {
                conc_shm_unlink(n->shm);
                conc_shm_destroy(n->shm);
                return rc;
            }
            atomic_store_explicit(&n->seg->ready, CONC__NAMED_READY, memory_order_release);
            return 0;
        }
        if (rc != CONC_EEXIST)
            return rc;
        rc = conc_shm_open(&n->shm, path);
        if (rc == CONC_ENOENT) /* unlinked between our create and open: again */
            continue;
        if (rc == 0 && conc_shm_size(n->shm) < (int64_t)sizeof *n->seg) {
            conc_shm_destroy(n->shm);
            rc = CONC_EAGAIN; /* not sized yet by its creator: try again */
        }
        if (rc == 0) {
            n->seg = conc_shm_addr(n->shm);
            while (atomic_load_explicit(&n->seg->ready, memory_order_acquire) != CONC__NAMED_READY &&
                   !conc__expired(deadline)) {
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
            }
            if (atomic_load_explicit(&n->seg->ready, memory_order_acquire) != CONC__NAMED_READY) {
                conc_shm_destroy(n->shm);
                return CONC_EBROKEN; /* its creator died before initialising it */
            }
            if (n->seg->kind != kind) {
                conc_shm_destroy(n->shm);
                return conc__misuse_at(CONC_EINVAL, fn, "the name holds another kind of object");
            }
            return 0;
        }
        if (conc__expired(deadline))
            return rc == CONC_EAGAIN || rc == CONC_EINVAL ? CONC_EBROKEN : rc;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

static int conc__named_unlink(const char *kind_name, const char *name, const char *fn)
{
    char path[CONC_SHM_NAME_MAX + 2];
    int rc = conc__named_path(kind_name, name, path, sizeof path, fn);
    return rc != 0 ? rc : conc_shm_unlink_name(path);
}

/* ---- the mutex ---- */

int conc_named_mutex_open(conc_named_mutex **out, const char *name)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "out is NULL");
    *out = NULL;
    conc_named_mutex *m = calloc(1, sizeof *m);
    if (!m)
        return CONC_ENOMEM;
    int rc = conc__named_open(&m->n, "mutex", 1, name, 0, __func__);
    if (rc != 0) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int conc_named_mutex_lock(conc_named_mutex *m)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "m is NULL");
    return conc_pmutex_lock(&m->n.seg->u.mutex);
}

int conc_named_mutex_lock_timed(conc_named_mutex *m, int64_t timeout)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "m is NULL");
    return conc_pmutex_lock_timed(&m->n.seg->u.mutex, timeout);
}

int conc_named_mutex_unlock(conc_named_mutex *m)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "m is NULL");
    return conc_pmutex_unlock(&m->n.seg->u.mutex);
}

int conc_named_mutex_consistent(conc_named_mutex *m)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "m is NULL");
    return conc_pmutex_consistent(&m->n.seg->u.mutex);
}

int conc_named_mutex_close(conc_named_mutex *m)
{
    if (!m)
        return 0;
    int rc = conc_shm_destroy(m->n.shm);
    free(m);
    return rc;
}

int conc_named_mutex_unlink(const char *name)
{
    return conc__named_unlink("mutex", name, __func__);
}

/* ---- the semaphore ---- */

int conc_named_sem_open(conc_named_sem **out, const char *name, size_t value)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "out is NULL");
    *out = NULL;
    if (value > CONC_SEM_VALUE_MAX)
        return CONC__MISUSE(CONC_EINVAL, "value above CONC_SEM_VALUE_MAX");
    conc_named_sem *s = calloc(1, sizeof *s);
    if (!s)
        return CONC_ENOMEM;
    int rc = conc__named_open(&s->n, "sem", 2, name, value, __func__);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int conc_named_sem_acquire(conc_named_sem *s)
{
    if (!s)
        return CONC__MISUSE(CONC_EINVAL, "s is NULL");
    return conc_sem_acquire(&s->n.seg->u.sem);
}

int conc_named_sem_acquire_timed(conc_named_sem *s, int64_t timeout)
{
    if (!s)
        return CONC__MISUSE(CONC_EINVAL, "s is NULL");
    return conc_sem_acquire_timed(&s->n.seg->u.sem, timeout);
}

int conc_named_sem_release(conc_named_sem *s)
{
    if (!s)
        return CONC__MISUSE(CONC_EINVAL, "s is NULL");
    return conc_sem_release(&s->n.seg->u.sem);
}

int conc_named_sem_close(conc_named_sem *s)
{
    if (!s)
        return 0;
    int rc = conc_shm_destroy(s->n.shm);
    free(s);
    return rc;
}

int conc_named_sem_unlink(const char *name)
{
    return conc__named_unlink("sem", name, __func__);
}
