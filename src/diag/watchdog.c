/* The per-thread records (diag_thread.h), the wait-for graph, the deadlock
 * watchdog and dumps (debug.h).
 *
 * The watch part (CONC__DIAG_WATCH, set by conc_watchdog_start) has every
 * thread publish in its record the lock it waits for (from the contended
 * hook until acquired or failed) and the locks it holds (acquired until
 * released). The wait-for graph has an edge from each waiting thread to
 * every thread that holds the lock it waits for; a cycle among threads that
 * have all waited longer than the threshold is a deadlock. Ownership comes
 * from the records, not from the locks' memory: the watchdog never reads a
 * lock, which may be freed while it looks, and read-held rwlocks and
 * lock-like semaphores (no owner field) get their edges too.
 *
 * The records are written by their threads without locks; the watchdog
 * reads a snapshot, and before it reports a cycle it takes a second one and
 * checks that every thread of the cycle is still in the same wait (its
 * wait_seq), so a snapshot taken mid-change cannot invent a deadlock. A
 * deadlock is reported once (its threads and their wait_seq), and a stale
 * wait left by a timed-out attempt whose 'failed' hook never came is
 * replaced by the thread's next wait or cleared by its next acquisition.
 *
 * Dumps list every registered thread that is alive, the task it runs (read
 * from the running context of the thread's record (core/tls.h): exact for a thread that sits in a
 * wait, a best-effort peek for one that runs), and, while waits are
 * tracked, what it waits for, who holds that, and what it holds. SIGQUIT
 * (conc_debug_dump_on_sigquit) only posts a semaphore; a dumper thread of
 * ours writes the dump, so the handler takes no lock.
 */
#define _GNU_SOURCE
#include "conc/debug.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "diag/diag_thread.h"
#include "core/tls.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* ==== the watch part: the hooks ==== */

/* Bumped when tracking starts: lists written under an older epoch were
 * kept while it was off and are stale. */
static _Atomic uint32_t conc__watch_epoch = 1;

static struct conc__dthread *conc__watch_self(void)
{
    struct conc__dthread *d = conc__dthread_self();
    if (!d)
        return NULL;
    uint32_t epoch = atomic_load_explicit(&conc__watch_epoch, memory_order_relaxed);
    if (atomic_load_explicit(&d->watch_epoch, memory_order_relaxed) != epoch) {
        atomic_store_explicit(&d->wait_lock, NULL, memory_order_relaxed);
        atomic_store_explicit(&d->nheld, 0, memory_order_relaxed);
        atomic_store_explicit(&d->held_over, 0, memory_order_relaxed);
        atomic_store_explicit(&d->watch_epoch, epoch, memory_order_release);
    }
    return d;
}

void conc__watch_contended(const void *lock, enum conc__lock_kind kind)
{
    struct conc__dthread *d = conc__watch_self();
    if (!d)
        return;
    atomic_store_explicit(&d->wait_lock, NULL, memory_order_relaxed);
    atomic_store_explicit(&d->wait_kind, (int)kind, memory_order_relaxed);
    atomic_store_explicit(&d->wait_self, conc__self(), memory_order_relaxed);
    atomic_store_explicit(&d->wait_since, conc__now(), memory_order_relaxed);
    atomic_fetch_add_explicit(&d->wait_seq, 1, memory_order_relaxed);
    atomic_store_explicit(&d->wait_lock, lock, memory_order_release);
}

void conc__watch_acquired(const void *lock, enum conc__lock_kind kind)
{
    struct conc__dthread *d = conc__watch_self();
    if (!d)
        return;
    /* Whatever it waited for, it waits no more (a wait that timed out
     * without its 'failed' hook ends here too). */
    if (atomic_load_explicit(&d->wait_lock, memory_order_relaxed))
        atomic_store_explicit(&d->wait_lock, NULL, memory_order_release);
    uint32_t n = atomic_load_explicit(&d->nheld, memory_order_relaxed);
    if (n == CONC__DT_HELD) {
        atomic_fetch_add_explicit(&d->held_over, 1, memory_order_relaxed);
        return;
    }
    atomic_store_explicit(&d->held[n].lock, lock, memory_order_relaxed);
    atomic_store_explicit(&d->held[n].self, conc__self(), memory_order_relaxed);
    atomic_store_explicit(&d->held[n].kind, (int)kind, memory_order_relaxed);
    atomic_store_explicit(&d->nheld, n + 1, memory_order_release);
}

void conc__watch_failed(const void *lock, enum conc__lock_kind kind)
{
    (void)kind;
    struct conc__dthread *d = conc__tls.diag;
    if (d && atomic_load_explicit(&d->wait_lock, memory_order_relaxed) == lock)
        atomic_store_explicit(&d->wait_lock, NULL, memory_order_release);
}

void conc__watch_release(const void *lock, enum conc__lock_kind kind)
{
    (void)kind;
    struct conc__dthread *d = conc__tls.diag;
    if (!d || atomic_load_explicit(&d->watch_epoch, memory_order_relaxed) !=
                  atomic_load_explicit(&conc__watch_epoch, memory_order_relaxed))
        return;
    uint32_t n = atomic_load_explicit(&d->nheld, memory_order_relaxed);
    for (uint32_t i = n; i-- > 0;) {
        if (atomic_load_explicit(&d->held[i].lock, memory_order_relaxed) != lock)
            continue;
        /* The last entry moves into the hole (locks are released in any
         * order; the list is a set). */
        struct conc__dt_held *last = &d->held[n - 1];
        atomic_store_explicit(&d->held[i].lock, atomic_load_explicit(&last->lock, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&d->held[i].self, atomic_load_explicit(&last->self, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&d->held[i].kind, atomic_load_explicit(&last->kind, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&d->nheld, n - 1, memory_order_release);
        return;
    }
    /* Not listed: taken before tracking began, or beyond the list. */
    uint32_t over = atomic_load_explicit(&d->held_over, memory_order_relaxed);
    if (over)
        atomic_store_explicit(&d->held_over, over - 1, memory_order_relaxed);
}

/* ==== snapshots of the records ==== */

struct conc__wheld {
    const void *lock;
    uintptr_t self;
    int kind;
};

struct conc__wnode {
    struct conc__dthread *d;
    char name[CONC__DT_NAME];
    uint32_t tid;
    uintptr_t tp;
    bool conc_thread;
    void *task;
    const void *parked_on; /* what it sleeps on in the wait core (wait.h), or NULL */
    const void *wait_lock; /* NULL: not waiting (or not tracked) */
    int wait_kind;
    uintptr_t wait_self;
    int64_t since;
    uint64_t seq;
    uint32_t nheld, held_over;
    struct conc__wheld held[CONC__DT_HELD];
    int color; /* the cycle search's */
};

/* What another thread runs and sleeps on, read from its record while that
 * thread may switch contexts: a dump's best effort, out of the race
 * detector's sight. The memory stays valid: the thread cannot end while the
 * registry lock is held, and the contexts it runs live on its stack or in
 * its record. */
__attribute__((noinline, no_sanitize("thread"))) static void
conc__peek_context(struct conc__thread_rec *rec, void **task, const void **parked_on)
{
    struct conc__context *c = atomic_load_explicit(&rec->ctx, memory_order_relaxed);
    if (!c)
        c = &rec->own;
    *task = *(void *volatile *)&c->task;
    *parked_on = atomic_load_explicit(&c->parked_on, memory_order_relaxed);
}

static void conc__snap_one(struct conc__wnode *w, struct conc__dthread *d, bool watch,
                           uint32_t epoch, bool tasks)
{
    memset(w, 0, sizeof *w);
    w->d = d;
    memcpy(w->name, d->name, sizeof w->name);
    w->tid = d->tid;
    w->tp = d->tp;
    w->conc_thread = d->conc_thread;
    if (tasks) {
        conc__peek_context(d->rec, &w->task, &w->parked_on);
    }
    if (!watch || atomic_load_explicit(&d->watch_epoch, memory_order_acquire) != epoch)
        return;
    w->wait_lock = atomic_load_explicit(&d->wait_lock, memory_order_acquire);
    if (w->wait_lock) {
        w->wait_kind = atomic_load_explicit(&d->wait_kind, memory_order_relaxed);
        w->wait_self = atomic_load_explicit(&d->wait_self, memory_order_relaxed);
        w->since = atomic_load_explicit(&d->wait_since, memory_order_relaxed);
        w->seq = atomic_load_explicit(&d->wait_seq, memory_order_relaxed);
    }
    uint32_t n = atomic_load_explicit(&d->nheld, memory_order_acquire);
    w->nheld = n < CONC__DT_HELD ? n : CONC__DT_HELD;
    for (uint32_t i = 0; i < w->nheld; i++) {
        w->held[i].lock = atomic_load_explicit(&d->held[i].lock, memory_order_relaxed);
        w->held[i].self = atomic_load_explicit(&d->held[i].self, memory_order_relaxed);
        w->held[i].kind = atomic_load_explicit(&d->held[i].kind, memory_order_relaxed);
    }
    w->held_over = atomic_load_explicit(&d->held_over, memory_order_relaxed);
}

/* Every live thread's record; *n of them. NULL when out of memory. */
static struct conc__wnode *conc__snapshot(size_t *n, bool tasks)
{
    bool watch = conc__diag_on(CONC__DIAG_WATCH);
    uint32_t epoch = atomic_load_explicit(&conc__watch_epoch, memory_order_relaxed);
    conc__dt_lock();
    size_t count = 0;
    for (struct conc__dthread *d = conc__dt_first(); d; d = d->next)
        count += d->alive;
    struct conc__wnode *nodes = calloc(count ? count : 1, sizeof *nodes);
    size_t k = 0;
    for (struct conc__dthread *d = conc__dt_first(); nodes && d; d = d->next)
        if (d->alive)
            conc__snap_one(&nodes[k++], d, watch, epoch, tasks);
    conc__dt_unlock();
    *n = k;
    return nodes;
}

static bool conc__holds(const struct conc__wnode *w, const void *lock, const struct conc__wheld **h)
{
    for (uint32_t i = 0; i < w->nheld; i++) {
        if (w->held[i].lock == lock) {
            if (h)
                *h = &w->held[i];
            return true;
        }
    }
    return false;
}

/* ==== text ==== */

struct conc__text {
    char *p;
    size_t len, cap;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void conc__text_add(struct conc__text *t,
                                                                  const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 1024;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

static void conc__text_lock(struct conc__text *t, const void *lock, int kind)
{
    char name[64];
    conc__lock_name_of(lock, name, sizeof name);
    conc__text_add(t, "%s %p", conc__lock_kind_name(kind), lock);
    if (name[0])
        conc__text_add(t, " \"%s\"", name);
}

static void conc__text_thread(struct conc__text *t, const struct conc__wnode *w)
{
    conc__text_add(t, "thread \"%s\" (tid %u)", w->name, w->tid);
}

/* "held by thread X" or "held by task T on thread X", for each holder. */
static void conc__text_holders(struct conc__text *t, const struct conc__wnode *nodes, size_t n,
                               const struct conc__wnode *waiter)
{
    bool any = false;
    for (size_t j = 0; j < n; j++) {
        const struct conc__wheld *h;
        if (!conc__holds(&nodes[j], waiter->wait_lock, &h))
            continue;
        conc__text_add(t, "%s", any ? " and by " : ", held by ");
        if (h->self && h->self != nodes[j].tp)
            conc__text_add(t, "task %p on ", (void *)h->self);
        conc__text_thread(t, &nodes[j]);
        any = true;
    }
    if (!any)
        conc__text_add(t, ", holder unknown (not tracked when it locked)");
}

static void conc__text_waits(struct conc__text *t, const struct conc__wnode *nodes, size_t n,
                             const struct conc__wnode *w, int64_t now)
{
    conc__text_add(t, "    ");
    if (w->wait_self && w->wait_self != w->tp)
        conc__text_add(t, "its task %p ", (void *)w->wait_self);
    conc__text_add(t, "waits %.1f ms for ", (double)(now - w->since) / 1e6);
    conc__text_lock(t, w->wait_lock, w->wait_kind);
    conc__text_holders(t, nodes, n, w);
    conc__text_add(t, "\n");
}

static void conc__text_held(struct conc__text *t, const struct conc__wnode *w)
{
    for (uint32_t i = 0; i < w->nheld; i++) {
        conc__text_add(t, "    holds ");
        conc__text_lock(t, w->held[i].lock, w->held[i].kind);
        if (w->held[i].self && w->held[i].self != w->tp)
            conc__text_add(t, " (locked by task %p)", (void *)w->held[i].self);
        conc__text_add(t, "\n");
    }
    if (w->held_over)
        conc__text_add(t, "    holds %u more locks\n", w->held_over);
}

/* ==== the watchdog ==== */

#define CONC__WD_SEEN 64 /* deadlocks remembered, so that each is reported once */

static struct {
    pthread_mutex_t lock; /* running, stop, thread */
    pthread_cond_t cond;
    bool running, stop;
    pthread_t thread;
    int64_t threshold;
    bool cond_ready;
    uint64_t seen[CONC__WD_SEEN]; /* the watchdog thread's own */
    unsigned nseen;
} conc__wd = {.lock = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t conc__wd_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t conc__wd_reports;
/* Scans done (tests wait for a few to know the watchdog has looked). */
_Atomic uint64_t conc__watchdog_scans;

static void conc__wd_cond_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&conc__wd.cond, &attr);
    pthread_condattr_destroy(&attr);
    conc__wd.cond_ready = true;
}

static bool conc__blocked(const struct conc__wnode *w, int64_t now, int64_t threshold)
{
    return w->wait_lock && now - w->since >= threshold;
}

/* Depth-first search from i along edges waiter -> holder, through blocked
 * threads only; on a back edge, the cycle (path[k..depth)) is in path. */
static bool conc__wd_dfs(struct conc__wnode *nodes, size_t n, size_t i, size_t *path,
                         size_t depth, int64_t now, int64_t threshold, size_t *from, size_t *len)
{
    nodes[i].color = 1;
    path[depth] = i;
    for (size_t j = 0; j < n; j++) {
        if (!conc__holds(&nodes[j], nodes[i].wait_lock, NULL) || !conc__blocked(&nodes[j], now, threshold))
            continue;
        if (nodes[j].color == 1) {
            size_t k = 0;
            while (path[k] != j)
                k++;
            *from = k;
            *len = depth + 1 - k;
            return true;
        }
        if (nodes[j].color == 0 &&
            conc__wd_dfs(nodes, n, j, path, depth + 1, now, threshold, from, len))
            return true;
    }
    nodes[i].color = 2;
    return false;
}

static const struct conc__wnode *conc__find_node(const struct conc__wnode *nodes, size_t n,
                                                 const struct conc__dthread *d)
{
    for (size_t i = 0; i < n; i++)
        if (nodes[i].d == d)
            return &nodes[i];
    return NULL;
}

/* The cycle still stands in a fresh snapshot: every thread in the same
 * wait, every lock still held by the next one. */
static bool conc__wd_confirm(const struct conc__wnode *old, const size_t *cyc, size_t len,
                             const struct conc__wnode *fresh, size_t nfresh)
{
    for (size_t m = 0; m < len; m++) {
        const struct conc__wnode *a = conc__find_node(fresh, nfresh, old[cyc[m]].d);
        const struct conc__wnode *b = conc__find_node(fresh, nfresh, old[cyc[(m + 1) % len]].d);
        if (!a || !b || a->wait_lock != old[cyc[m]].wait_lock || a->seq != old[cyc[m]].seq ||
            !conc__holds(b, a->wait_lock, NULL))
            return false;
    }
    return true;
}

static uint64_t conc__wd_signature(const struct conc__wnode *nodes, const size_t *cyc, size_t len)
{
    /* Order-free: the same cycle found from another thread hashes alike. */
    uint64_t sig = 0;
    for (size_t m = 0; m < len; m++) {
        uint64_t h = (uint64_t)(uintptr_t)nodes[cyc[m]].d * 0x9e3779b97f4a7c15u ^ nodes[cyc[m]].seq;
        h ^= h >> 29;
        sig += h * 0xbf58476d1ce4e5b9u;
    }
    return sig;
}

static bool conc__wd_seen(uint64_t sig)
{
    for (unsigned i = 0; i < conc__wd.nseen && i < CONC__WD_SEEN; i++)
        if (conc__wd.seen[i] == sig)
            return true;
    conc__wd.seen[conc__wd.nseen++ % CONC__WD_SEEN] = sig;
    return false;
}

static void conc__wd_report(const struct conc__wnode *nodes, size_t n, const size_t *cyc,
                            size_t len, int64_t now, int64_t threshold)
{
    struct conc__text t = {0};
    conc__text_add(&t, "conc watchdog: deadlock: %zu thread%s wait for each other (each blocked > %.1f ms)\n",
                   len, len == 1 ? "" : "s", (double)threshold / 1e6);
    for (size_t m = 0; m < len; m++) {
        const struct conc__wnode *w = &nodes[cyc[m]];
        conc__text_add(&t, "  ");
        conc__text_thread(&t, w);
        conc__text_add(&t, "\n");
        if (w->task)
            conc__text_add(&t, "    running task %p\n", w->task);
        conc__text_waits(&t, nodes, n, w, now);
        conc__text_held(&t, w);
    }
    if (!t.failed && t.p) {
        atomic_fetch_add(&conc__wd_reports, 1);
        conc__diag_report("%s", t.p);
    }
    free(t.p);
}

static void conc__wd_scan(int64_t threshold)
{
    size_t n, nfresh;
    struct conc__wnode *nodes = conc__snapshot(&n, true);
    size_t *path = nodes ? calloc(n ? n : 1, sizeof *path) : NULL;
    int64_t now = conc__now();
    for (size_t i = 0; path && i < n; i++) {
        size_t from, len;
        if (nodes[i].color != 0 || !conc__blocked(&nodes[i], now, threshold) ||
            !conc__wd_dfs(nodes, n, i, path, 0, now, threshold, &from, &len))
            continue;
        struct conc__wnode *fresh = conc__snapshot(&nfresh, true);
        size_t *cyc = path + from;
        if (fresh && conc__wd_confirm(nodes, cyc, len, fresh, nfresh) &&
            !conc__wd_seen(conc__wd_signature(nodes, cyc, len))) {
            /* Reported from the fresh snapshot, in the cycle's order. */
            size_t *fcyc = calloc(len, sizeof *fcyc);
            for (size_t m = 0; fcyc && m < len; m++)
                fcyc[m] = (size_t)(conc__find_node(fresh, nfresh, nodes[cyc[m]].d) - fresh);
            if (fcyc)
                conc__wd_report(fresh, nfresh, fcyc, len, conc__now(), threshold);
            free(fcyc);
        }
        free(fresh);
        /* The rest of this search's nodes are done; look on from others. */
        for (size_t k = 0; k < n; k++)
            if (nodes[k].color == 1)
                nodes[k].color = 2;
    }
    free(path);
    free(nodes);
    atomic_fetch_add(&conc__watchdog_scans, 1);
}

static void *conc__wd_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&conc__wd.lock);
    while (!conc__wd.stop) {
        int64_t period = conc__wd.threshold / 2;
        if (period < CONC_MSEC(1))
            period = CONC_MSEC(1);
        struct timespec until = conc__timespec(conc__now() + period);
        pthread_cond_timedwait(&conc__wd.cond, &conc__wd.lock, &until);
        if (conc__wd.stop)
            break;
        int64_t threshold = conc__wd.threshold;
        pthread_mutex_unlock(&conc__wd.lock);
        conc__wd_scan(threshold);
        pthread_mutex_lock(&conc__wd.lock);
    }
    pthread_mutex_unlock(&conc__wd.lock);
    return NULL;
}

/* A helper thread of ours with every asynchronous signal blocked (as conc's own threads:
 * the program's handlers run where it expects); those a fault raises stay
 * open, as on conc threads. */
static int conc__helper_thread(pthread_t *t, void *(*fn)(void *))
{
    sigset_t all, old;
    sigfillset(&all);
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof sync_signals / sizeof *sync_signals; i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int conc_watchdog_start(int64_t threshold_ns)
{
    if (threshold_ns <= 0)
        return CONC__MISUSE(CONC_EINVAL, "threshold_ns must be positive");
    pthread_once(&conc__wd_once, conc__wd_cond_init);
    pthread_mutex_lock(&conc__wd.lock);
    if (conc__wd.running) {
        pthread_mutex_unlock(&conc__wd.lock);
        return CONC__MISUSE(CONC_EBUSY, "the watchdog is running already");
    }
    if (!conc__diag_on(CONC__DIAG_WATCH)) {
        /* Lists kept from an earlier time on are stale. */
        atomic_fetch_add_explicit(&conc__watch_epoch, 1, memory_order_relaxed);
        conc__diag_enable(CONC__DIAG_WATCH, true);
    }
    conc__wd.threshold = threshold_ns;
    conc__wd.stop = false;
    conc__wd.nseen = 0;
    int rc = conc__helper_thread(&conc__wd.thread, conc__wd_main);
    if (rc == 0)
        conc__wd.running = true;
    else
        conc__diag_enable(CONC__DIAG_WATCH, false);
    pthread_mutex_unlock(&conc__wd.lock);
    return rc == 0 ? 0 : CONC_EAGAIN;
}

int conc_watchdog_stop(void)
{
    pthread_once(&conc__wd_once, conc__wd_cond_init);
    pthread_mutex_lock(&conc__wd.lock);
    if (!conc__wd.running || conc__wd.stop) {
        pthread_mutex_unlock(&conc__wd.lock);
        return 0;
    }
    conc__wd.stop = true;
    pthread_t t = conc__wd.thread;
    pthread_cond_signal(&conc__wd.cond);
    pthread_mutex_unlock(&conc__wd.lock);
    pthread_join(t, NULL);
    pthread_mutex_lock(&conc__wd.lock);
    conc__wd.running = false;
    conc__wd.stop = false;
    conc__diag_enable(CONC__DIAG_WATCH, false);
    pthread_mutex_unlock(&conc__wd.lock);
    return 0;
}

int64_t conc_watchdog_reports(void)
{
    return atomic_load(&conc__wd_reports);
}

/* ==== dumps ==== */

static void conc__dump_source_line(void *ctx, const char *text)
{
    conc__text_add(ctx, "%s", text);
}

static void conc__dump_text(struct conc__text *t)
{
    size_t n;
    struct conc__wnode *nodes = conc__snapshot(&n, true);
    if (!nodes) {
        t->failed = true;
        return;
    }
    bool watch = conc__diag_on(CONC__DIAG_WATCH);
    int64_t now = conc__now();
    conc__text_add(t, "conc dump: pid %d, %zu thread%s; lock waits %s\n", (int)getpid(), n,
                   n == 1 ? "" : "s",
                   watch ? "tracked" : "not tracked (conc_watchdog_start tracks them)");
    for (size_t i = 0; i < n; i++) {
        const struct conc__wnode *w = &nodes[i];
        conc__text_add(t, "\n");
        conc__text_thread(t, w);
        conc__text_add(t, "%s\n", w->conc_thread ? " [conc thread]" : "");
        if (w->task)
            conc__text_add(t, "    running task %p\n", w->task);
        if (w->wait_lock)
            conc__text_waits(t, nodes, n, w, now);
        else if (w->parked_on)
            conc__text_add(t, "    sleeping on %p (a conc lock, or the wait queue inside a queue, "
                              "future, event, condition, semaphore, barrier or pool)\n",
                           w->parked_on);
        conc__text_held(t, w);
    }
    free(nodes);
    conc__text_add(t, "\n");
    conc__dump_sources_describe(conc__dump_source_line, t);
}

static int conc__write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int conc_debug_dump(int fd)
{
    if (fd < 0)
        return CONC__MISUSE(CONC_EINVAL, "negative fd");
    struct conc__text t = {0};
    conc__dump_text(&t);
    int rc = t.failed || !t.p ? CONC_ENOMEM : conc__write_all(fd, t.p, t.len);
    free(t.p);
    if (rc)
        rc = conc__misuse_errno(rc, __func__, "write() to fd failed (the code is its errno)");
    return rc;
}

/* ---- SIGQUIT ---- */

static struct {
    pthread_mutex_t lock;
    bool on;
    pthread_t thread;
    sem_t sem;
    _Atomic bool stop;
    struct sigaction old;
} conc__sq = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t conc__sq_once = PTHREAD_ONCE_INIT;

/* The semaphore lives as long as the process: a handler still running on
 * another thread as the dump is switched off must find it. */
static void conc__sq_sem_init(void)
{
    sem_init(&conc__sq.sem, 0, 0);
}

static void conc__sq_handler(int sig)
{
    (void)sig;
    int saved = errno;
    sem_post(&conc__sq.sem); /* async-signal-safe; the dumper does the rest */
    errno = saved;
}

static void *conc__sq_main(void *arg)
{
    (void)arg;
    for (;;) {
        if (sem_wait(&conc__sq.sem) != 0)
            continue; /* EINTR */
        if (atomic_load(&conc__sq.stop))
            return NULL;
        struct conc__text t = {0};
        conc__dump_text(&t);
        if (!t.failed && t.p)
            conc__diag_report("%s", t.p);
        free(t.p);
    }
}

int conc_debug_dump_on_sigquit(bool on)
{
    int rc = 0;
    pthread_mutex_lock(&conc__sq.lock);
    if (on && !conc__sq.on) {
        pthread_once(&conc__sq_once, conc__sq_sem_init);
        while (sem_trywait(&conc__sq.sem) == 0)
            ; /* a signal that came after the last switch-off */
        atomic_store(&conc__sq.stop, false);
        if (conc__helper_thread(&conc__sq.thread, conc__sq_main) != 0) {
            rc = CONC_EAGAIN;
        } else {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = conc__sq_handler;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            sigaction(SIGQUIT, &sa, &conc__sq.old);
            conc__sq.on = true;
        }
    } else if (!on && conc__sq.on) {
        sigaction(SIGQUIT, &conc__sq.old, NULL);
        atomic_store(&conc__sq.stop, true);
        sem_post(&conc__sq.sem);
        pthread_join(conc__sq.thread, NULL);
        conc__sq.on = false;
    }
    pthread_mutex_unlock(&conc__sq.lock);
    return rc;
}

/* ==== fork ==== */

void conc__sigquit_fork_prepare(void)
{
    pthread_mutex_lock(&conc__sq.lock);
}

void conc__sigquit_fork_parent(void)
{
    pthread_mutex_unlock(&conc__sq.lock);
}

/* The child has one thread: the dumper thread is gone. */
void conc__sigquit_fork_child(void)
{
    if (conc__sq.on) {
        sigaction(SIGQUIT, &conc__sq.old, NULL);
        conc__sq.on = false;
    }
    pthread_mutex_unlock(&conc__sq.lock);
}

void conc__watchdog_fork_prepare(void)
{
    pthread_mutex_lock(&conc__wd.lock);
}

void conc__watchdog_fork_parent(void)
{
    pthread_mutex_unlock(&conc__wd.lock);
}

/* The child has one thread: the watchdog is gone. */
void conc__watchdog_fork_child(void)
{
    if (conc__wd.running) {
        conc__wd.running = false;
        conc__wd.stop = false;
        conc__diag_enable(CONC__DIAG_WATCH, false);
    }
    if (conc__wd.cond_ready) /* its waiter was the watchdog thread */
        conc__wd_cond_init();
    pthread_mutex_unlock(&conc__wd.lock);
}
