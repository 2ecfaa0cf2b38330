/* Lock statistics (debug.h): acquisitions, contended acquisitions, wait
 * times (total, max, histogram) and the longest hold, per lock.
 *
 * One open-addressed table keyed by the lock's address, allocated when
 * statistics are first switched on and never freed (a hook may be reading
 * it at any time), updated with atomics only: no lock of ours on the lock
 * path, nothing for fork to break. A lock that finds no slot within a few
 * probes is counted in one "other locks" entry. A lock's class name
 * (conc_lock_set_name) is looked up when the table is read, and the locks
 * of one class are merged there.
 *
 * Time is read only when statistics are on: at a contended attempt (the
 * wait's start), at each acquisition (the wait's end, the hold's start) and
 * at each release (the hold's end). The thread's own record (diag_thread.h)
 * keeps the wait's start and the open holds. A contended attempt whose
 * 'failed' hook never comes is replaced by the thread's next one, or
 * dropped at its next acquisition of another lock.
 */
#define _GNU_SOURCE
#include "conc/debug.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "diag/diag_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONC__LS_SLOTS 4096u /* a power of two */
#define CONC__LS_PROBES 32u

struct conc__ls_entry {
    _Atomic(const void *) lock; /* NULL: a free slot */
    _Atomic int kind;
    _Atomic uint64_t acquisitions, contended;
    _Atomic int64_t wait_total, wait_max, hold_max;
    _Atomic int64_t last; /* conc__now() of its latest acquisition */
    _Atomic uint64_t hist[CONC_LOCKSTAT_BUCKETS];
};

static struct conc__ls_entry *_Atomic conc__ls_table;
static struct conc__ls_entry conc__ls_other; /* locks that found no slot */
static pthread_once_t conc__ls_once = PTHREAD_ONCE_INIT;

static void conc__ls_alloc(void)
{
    atomic_store_explicit(&conc__ls_table, calloc(CONC__LS_SLOTS, sizeof(struct conc__ls_entry)),
                          memory_order_release);
}

static struct conc__ls_entry *conc__ls_entry_of(const void *lock)
{
    struct conc__ls_entry *table = atomic_load_explicit(&conc__ls_table, memory_order_acquire);
    if (!table)
        return NULL;
    uint64_t h = (uint64_t)(uintptr_t)lock * 0x9e3779b97f4a7c15u;
    unsigned at = (unsigned)(h >> 40) & (CONC__LS_SLOTS - 1);
    for (unsigned i = 0; i < CONC__LS_PROBES; i++, at = (at + 1) & (CONC__LS_SLOTS - 1)) {
        struct conc__ls_entry *e = &table[at];
        const void *k = atomic_load_explicit(&e->lock, memory_order_acquire);
        if (k == lock)
            return e;
        if (!k && atomic_compare_exchange_strong(&e->lock, &k, lock))
            return e;
        if (k == lock) /* another thread claimed it for the same lock */
            return e;
    }
    return &conc__ls_other;
}

static void conc__ls_max(_Atomic int64_t *max, int64_t v)
{
    int64_t cur = atomic_load_explicit(max, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(max, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
}

/* Bucket i counts waits below 2^(i+10) ns; the last one takes the rest. */
static unsigned conc__ls_bucket(int64_t ns)
{
    if (ns < 1024)
        return 0;
    unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)ns);
    unsigned b = bits - 10;
    return b < CONC_LOCKSTAT_BUCKETS ? b : CONC_LOCKSTAT_BUCKETS - 1;
}

/* ==== the hooks ==== */

void conc__lockstat_contended(const void *lock, enum conc__lock_kind kind)
{
    (void)kind;
    struct conc__dthread *d = conc__dthread_self();
    if (!d)
        return;
    d->ls_wait_lock = lock;
    d->ls_wait_since = conc__now();
}

void conc__lockstat_acquired(const void *lock, enum conc__lock_kind kind)
{
    struct conc__ls_entry *e = conc__ls_entry_of(lock);
    if (!e)
        return;
    int64_t now = conc__now();
    struct conc__dthread *d = conc__dthread_self();
    atomic_fetch_add_explicit(&e->acquisitions, 1, memory_order_relaxed);
    atomic_store_explicit(&e->kind, (int)kind, memory_order_relaxed);
    atomic_store_explicit(&e->last, now, memory_order_relaxed);
    if (!d)
        return;
    if (d->ls_wait_lock == lock) {
        int64_t wait = now - d->ls_wait_since;
        if (wait < 0)
            wait = 0;
        atomic_fetch_add_explicit(&e->contended, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->wait_total, wait, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->hist[conc__ls_bucket(wait)], 1, memory_order_relaxed);
        conc__ls_max(&e->wait_max, wait);
    }
    d->ls_wait_lock = NULL;
    if (d->ls_nholds < CONC__DT_HOLDS) {
        d->ls_holds[d->ls_nholds].lock = lock;
        d->ls_holds[d->ls_nholds].since = now;
        d->ls_nholds++;
    }
}

void conc__lockstat_failed(const void *lock, enum conc__lock_kind kind)
{
    (void)kind;
    struct conc__dthread *d = conc__tls.diag;
    if (d && d->ls_wait_lock == lock)
        d->ls_wait_lock = NULL;
}

void conc__lockstat_release(const void *lock, enum conc__lock_kind kind)
{
    (void)kind;
    struct conc__dthread *d = conc__tls.diag;
    if (!d)
        return;
    for (uint32_t i = d->ls_nholds; i-- > 0;) {
        if (d->ls_holds[i].lock != lock)
            continue;
        int64_t hold = conc__now() - d->ls_holds[i].since;
        memmove(&d->ls_holds[i], &d->ls_holds[i + 1], (d->ls_nholds - i - 1) * sizeof d->ls_holds[0]);
        d->ls_nholds--;
        struct conc__ls_entry *e = conc__ls_entry_of(lock);
        if (e)
            conc__ls_max(&e->hold_max, hold);
        return;
    }
}

/* ==== names (shared with the watchdog) ==== */

void conc__lock_name_of(const void *lock, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = 0;
    if (lock && conc__lock_class_name(lock, buf, size) <= 0)
        buf[0] = 0;
    buf[size - 1] = 0;
}

/* ==== reading the table ==== */

struct conc__ls_row {
    conc_lockstat s;
    int kind;
    int64_t last;
};

static void conc__ls_read(const struct conc__ls_entry *e, struct conc__ls_row *r)
{
    memset(r, 0, sizeof *r);
    r->s.lock = atomic_load_explicit(&e->lock, memory_order_relaxed);
    r->s.acquisitions = atomic_load_explicit(&e->acquisitions, memory_order_relaxed);
    r->s.contended = atomic_load_explicit(&e->contended, memory_order_relaxed);
    r->s.wait_total_ns = atomic_load_explicit(&e->wait_total, memory_order_relaxed);
    r->s.wait_max_ns = atomic_load_explicit(&e->wait_max, memory_order_relaxed);
    r->s.hold_max_ns = atomic_load_explicit(&e->hold_max, memory_order_relaxed);
    for (unsigned i = 0; i < CONC_LOCKSTAT_BUCKETS; i++)
        r->s.wait_hist[i] = atomic_load_explicit(&e->hist[i], memory_order_relaxed);
    r->kind = atomic_load_explicit(&e->kind, memory_order_relaxed);
    r->last = atomic_load_explicit(&e->last, memory_order_relaxed);
}

static void conc__ls_merge(struct conc__ls_row *into, const struct conc__ls_row *r)
{
    into->s.acquisitions += r->s.acquisitions;
    into->s.contended += r->s.contended;
    into->s.wait_total_ns += r->s.wait_total_ns;
    if (r->s.wait_max_ns > into->s.wait_max_ns)
        into->s.wait_max_ns = r->s.wait_max_ns;
    if (r->s.hold_max_ns > into->s.hold_max_ns)
        into->s.hold_max_ns = r->s.hold_max_ns;
    for (unsigned i = 0; i < CONC_LOCKSTAT_BUCKETS; i++)
        into->s.wait_hist[i] += r->s.wait_hist[i];
    if (r->last > into->last) { /* the class shows its latest lock */
        into->last = r->last;
        into->s.lock = r->s.lock;
        into->kind = r->kind;
    }
}

static int conc__ls_by_name(const void *a, const void *b)
{
    const struct conc__ls_row *x = a, *y = b;
    return strcmp(x->s.name, y->s.name);
}

static int conc__ls_by_wait(const void *a, const void *b)
{
    const struct conc__ls_row *x = a, *y = b;
    if (x->s.wait_total_ns != y->s.wait_total_ns)
        return x->s.wait_total_ns > y->s.wait_total_ns ? -1 : 1;
    if (x->s.contended != y->s.contended)
        return x->s.contended > y->s.contended ? -1 : 1;
    if (x->s.acquisitions != y->s.acquisitions)
        return x->s.acquisitions > y->s.acquisitions ? -1 : 1;
    return 0;
}

/* Every lock seen since the last reset, classes merged, most waiting
 * first; *n rows. NULL when there is none or no memory. */
static struct conc__ls_row *conc__ls_rows(size_t *n)
{
    *n = 0;
    struct conc__ls_entry *table = atomic_load_explicit(&conc__ls_table, memory_order_acquire);
    if (!table)
        return NULL;
    struct conc__ls_row *rows = malloc((CONC__LS_SLOTS + 1) * sizeof *rows);
    if (!rows)
        return NULL;
    size_t k = 0;
    for (unsigned i = 0; i <= CONC__LS_SLOTS; i++) {
        const struct conc__ls_entry *e = i < CONC__LS_SLOTS ? &table[i] : &conc__ls_other;
        conc__ls_read(e, &rows[k]);
        if (rows[k].s.acquisitions == 0 && rows[k].s.contended == 0)
            continue;
        if (e == &conc__ls_other)
            snprintf(rows[k].s.name, sizeof rows[k].s.name, "(other locks)");
        else
            conc__lock_name_of(rows[k].s.lock, rows[k].s.name, sizeof rows[k].s.name);
        k++;
    }
    /* Merge the locks of each named class. */
    qsort(rows, k, sizeof *rows, conc__ls_by_name);
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m > 0 && rows[i].s.name[0] && !strcmp(rows[m - 1].s.name, rows[i].s.name))
            conc__ls_merge(&rows[m - 1], &rows[i]);
        else
            rows[m++] = rows[i];
    }
    qsort(rows, m, sizeof *rows, conc__ls_by_wait);
    *n = m;
    return rows;
}

/* ==== the API ==== */

int conc_lockstat_enable(bool on)
{
    if (on) {
        pthread_once(&conc__ls_once, conc__ls_alloc);
        if (!atomic_load_explicit(&conc__ls_table, memory_order_acquire))
            return CONC_ENOMEM;
    }
    conc__diag_enable(CONC__DIAG_LOCKSTAT, on);
    return 0;
}

int64_t conc_lockstat_top(conc_lockstat *out, size_t max)
{
    if (!out || max == 0 || !conc__diag_on(CONC__DIAG_LOCKSTAT))
        return 0;
    size_t n;
    struct conc__ls_row *rows = conc__ls_rows(&n);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        out[i] = rows[i].s;
    free(rows);
    return n;
}

int conc_lockstat_reset(void)
{
    struct conc__ls_entry *table = atomic_load_explicit(&conc__ls_table, memory_order_acquire);
    if (!table)
        return 0;
    /* Counters only: a slot stays its lock's (a hook may be updating it). */
    for (unsigned i = 0; i <= CONC__LS_SLOTS; i++) {
        struct conc__ls_entry *e = i < CONC__LS_SLOTS ? &table[i] : &conc__ls_other;
        atomic_store_explicit(&e->acquisitions, 0, memory_order_relaxed);
        atomic_store_explicit(&e->contended, 0, memory_order_relaxed);
        atomic_store_explicit(&e->wait_total, 0, memory_order_relaxed);
        atomic_store_explicit(&e->wait_max, 0, memory_order_relaxed);
        atomic_store_explicit(&e->hold_max, 0, memory_order_relaxed);
        atomic_store_explicit(&e->last, 0, memory_order_relaxed);
        for (unsigned b = 0; b < CONC_LOCKSTAT_BUCKETS; b++)
            atomic_store_explicit(&e->hist[b], 0, memory_order_relaxed);
    }
    return 0;
}

/* "<1.0us", "<2.0us", ..., "<16.8ms", ">=16.8ms" (the last bucket). */
static void conc__ls_bucket_label(unsigned i, char *buf, size_t size)
{
    bool last = i == CONC_LOCKSTAT_BUCKETS - 1;
    double ns = (double)((int64_t)1 << (last ? i + 9 : i + 10));
    const char *op = last ? ">=" : "<";
    if (ns < 1e6)
        snprintf(buf, size, "%s%.1fus", op, ns / 1e3);
    else
        snprintf(buf, size, "%s%.1fms", op, ns / 1e6);
}

static void conc__ls_print_row(FILE *f, const struct conc__ls_row *r)
{
    const conc_lockstat *s = &r->s;
    double pct = s->acquisitions ? 100.0 * (double)s->contended / (double)s->acquisitions : 0;
    double avg_us = s->contended ? (double)s->wait_total_ns / (double)s->contended / 1e3 : 0;
    fprintf(f, "%-18p %-16.16s %-13s %12llu %10llu %6.2f%% %13.3f %11.1f %11.1f %11.1f\n", s->lock,
            s->name[0] ? s->name : "-", conc__lock_kind_name(r->kind),
            (unsigned long long)s->acquisitions, (unsigned long long)s->contended, pct,
            (double)s->wait_total_ns / 1e6, avg_us, (double)s->wait_max_ns / 1e3,
            (double)s->hold_max_ns / 1e3);
    if (!s->contended)
        return;
    fputs("    waits:", f);
    for (unsigned i = 0; i < CONC_LOCKSTAT_BUCKETS; i++) {
        if (!s->wait_hist[i])
            continue;
        char label[16];
        conc__ls_bucket_label(i, label, sizeof label);
        fprintf(f, " %s:%llu", label, (unsigned long long)s->wait_hist[i]);
    }
    fputs("\n", f);
}

int conc_lockstat_print(int fd, size_t top)
{
    if (fd < 0)
        return CONC__MISUSE(CONC_EINVAL, "negative fd");
    size_t n = 0;
    struct conc__ls_row *rows = conc__diag_on(CONC__DIAG_LOCKSTAT) ? conc__ls_rows(&n) : NULL;
    size_t shown = top && top < n ? top : n;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        free(rows);
        return CONC_ENOMEM;
    }
    if (!conc__diag_on(CONC__DIAG_LOCKSTAT))
        fprintf(f, "conc lockstat: off\n");
    else
        fprintf(f, "conc lockstat: %zu of %zu locks, most total waiting first\n", shown, n);
    if (shown)
        fprintf(f, "%-18s %-16s %-13s %12s %10s %7s %13s %11s %11s %11s\n", "lock", "name", "kind",
                "acquired", "contended", "cont%", "wait total ms", "wait avg us", "wait max us",
                "hold max us");
    for (size_t i = 0; i < shown; i++)
        conc__ls_print_row(f, &rows[i]);
    free(rows);
    if (fclose(f) != 0) {
        free(text);
        return CONC_ENOMEM;
    }
    int rc = 0;
    for (size_t off = 0; off < len;) {
        ssize_t k = write(fd, text + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = conc__misuse_errno(-errno, __func__, "write() to fd failed (the code is its errno)");
            break;
        }
        off += (size_t)k;
    }
    free(text);
    return rc;
}

static void conc__lockstat_at_exit(void)
{
    conc_lockstat_print(STDERR_FILENO, 10);
}

void conc__lockstat_env(const char *value)
{
    if (!strcmp(value, "0"))
        return;
    if (conc_lockstat_enable(true) == 0)
        atexit(conc__lockstat_at_exit);
}
