/* Timeline traces (debug.h): Chrome Trace Event JSON, which Perfetto and
 * chrome://tracing open.
 *
 * Every event is a complete event ("ph":"X": start and duration), written
 * into the thread's own ring when its span ends: a ring that overwrites its
 * oldest entries drops whole spans, never half of one. A span's start waits
 * on the thread's small stack of open spans (diag_thread.h), which costs
 * nothing but a clock read. The sources: pool tasks and queue waits
 * (CONC__TRACE_BEGIN/END), lock waits (contended to acquired or failed),
 * the caller's own spans (conc_trace_begin/end), and the lifetime of every
 * registered thread, taken from its record when the file is written.
 *
 * The ring belongs to its thread; the writer takes it over at stop with a
 * Dekker pair: a thread sets its tbusy (seq_cst) and then looks whether the
 * session is still active; the stopper clears active (seq_cst) and then
 * waits for each tbusy to be clear. Either the thread sees the session over
 * and leaves the ring alone, or the stopper waits for it to finish the
 * event. So tracing never makes a thread wait, and the writer reads whole
 * events.
 *
 * Each session has a number: a span begun in an earlier session (tracing
 * stopped and started while it was open) is dropped when it ends.
 */
#define _GNU_SOURCE
#include "conc/debug.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "diag/diag_thread.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define CONC__TRACE_DEFAULT_EVENTS 65536
#define CONC__TRACE_MAX_EVENTS ((size_t)1 << 22)

enum { CONC__TEV_CONC, CONC__TEV_USER, CONC__TEV_LOCK };

struct conc__tev {
    const char *name;
    const void *obj;
    int64_t ts, dur;
    int cat;
};

struct conc__tring {
    uint32_t session;
    size_t cap, pos;   /* pos: the next slot */
    uint64_t written;  /* events ever written; the ring holds the last cap */
    struct conc__tev ev[];
};

static pthread_mutex_t conc__tr_lock = PTHREAD_MUTEX_INITIALIZER; /* the session */
static _Atomic bool conc__tr_active;
static _Atomic uint32_t conc__tr_session;
static _Atomic size_t conc__tr_cap;
static char *conc__tr_path;    /* under conc__tr_lock */
static int64_t conc__tr_t0;    /* under conc__tr_lock */
static uint32_t conc__tr_env_session; /* the session CONC_TRACE started */

/* ==== recording ==== */

/* The thread's ring for this session, with tbusy set; NULL (and tbusy
 * clear) when the session is over or there is no memory. */
static struct conc__tring *conc__tr_enter(struct conc__dthread *d)
{
    atomic_store(&d->tbusy, 1);
    if (!atomic_load(&conc__tr_active)) {
        atomic_store_explicit(&d->tbusy, 0, memory_order_release);
        return NULL;
    }
    uint32_t session = atomic_load_explicit(&conc__tr_session, memory_order_relaxed);
    struct conc__tring *r = atomic_load_explicit(&d->tring, memory_order_relaxed);
    if (r && r->session == session)
        return r;
    free(r); /* an earlier session's, which its stop left (cannot happen) */
    size_t cap = atomic_load_explicit(&conc__tr_cap, memory_order_relaxed);
    /* Not zeroed: only written slots are read, and pages never touched
     * cost no memory. */
    r = malloc(sizeof *r + cap * sizeof r->ev[0]);
    if (r) {
        r->session = session;
        r->cap = cap;
        r->pos = 0;
        r->written = 0;
    }
    atomic_store_explicit(&d->tring, r, memory_order_relaxed);
    if (!r)
        atomic_store_explicit(&d->tbusy, 0, memory_order_release);
    return r;
}

static void conc__tr_leave(struct conc__dthread *d)
{
    atomic_store_explicit(&d->tbusy, 0, memory_order_release);
}

static void conc__tr_emit(struct conc__dthread *d, const char *name, const void *obj, int64_t start,
                          int cat)
{
    int64_t end = conc__now();
    struct conc__tring *r = conc__tr_enter(d);
    if (!r)
        return;
    struct conc__tev *e = &r->ev[r->pos];
    e->name = name;
    e->obj = obj;
    e->ts = start;
    e->dur = end > start ? end - start : 0;
    e->cat = cat;
    r->pos = r->pos + 1 == r->cap ? 0 : r->pos + 1;
    r->written++;
    conc__tr_leave(d);
}

static void conc__tr_push(const char *name, const void *obj, bool user)
{
    struct conc__dthread *d = conc__dthread_self();
    if (!d)
        return;
    uint32_t session = atomic_load_explicit(&conc__tr_session, memory_order_relaxed);
    /* Spans of an earlier session lie on top (none of this one is open
     * below them): they will never be written. */
    while (d->nspans && d->spans[d->nspans - 1].session != session)
        d->nspans--;
    if (d->nspans == CONC__DT_SPANS) {
        d->spans_over++;
        return;
    }
    d->spans[d->nspans++] = (struct conc__tspan){name, obj, conc__now(), session, user};
}

static bool conc__tr_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Ends the innermost open span that matches (user: the innermost of the
 * caller's own), dropping any left open inside it. */
static void conc__tr_pop(const char *name, const void *obj, bool user)
{
    struct conc__dthread *d = conc__tls.diag;
    if (!d)
        return;
    if (d->spans_over) {
        d->spans_over--;
        return;
    }
    for (uint32_t i = d->nspans; i-- > 0;) {
        struct conc__tspan *s = &d->spans[i];
        if (user ? !s->user : (s->user || s->obj != obj || !conc__tr_same(s->name, name)))
            continue;
        d->nspans = i;
        if (s->session == atomic_load_explicit(&conc__tr_session, memory_order_relaxed))
            conc__tr_emit(d, s->name, s->obj, s->start, user ? CONC__TEV_USER : CONC__TEV_CONC);
        return;
    }
}

void conc__trace_span_begin(const char *name, const void *obj)
{
    conc__tr_push(name, obj, false);
}

void conc__trace_span_end(const char *name, const void *obj)
{
    conc__tr_pop(name, obj, false);
}

int conc_trace_begin(const char *name)
{
    if (!name)
        return CONC__MISUSE(CONC_EINVAL, "NULL name");
    if (conc__diag_on(CONC__DIAG_TRACE))
        conc__tr_push(name, NULL, true);
    return 0;
}

int conc_trace_end(void)
{
    if (conc__diag_on(CONC__DIAG_TRACE))
        conc__tr_pop(NULL, NULL, true);
    return 0;
}

/* ---- lock waits ---- */

static const char *conc__tr_wait_name(int kind)
{
    switch (kind) {
    case CONC__LOCK_MUTEX:
        return "mutex.wait";
    case CONC__LOCK_RMUTEX:
        return "rmutex.wait";
    case CONC__LOCK_RWLOCK_READ:
        return "rwlock.read.wait";
    case CONC__LOCK_RWLOCK_WRITE:
        return "rwlock.write.wait";
    case CONC__LOCK_SEM:
        return "sem.wait";
    default:
        return "lock.wait";
    }
}

void conc__trace_lock_contended(const void *lock, enum conc__lock_kind kind)
{
    struct conc__dthread *d = conc__dthread_self();
    if (!d)
        return;
    /* One wait at a time: an earlier one that never ended (a timeout whose
     * 'failed' hook did not come) is replaced. */
    d->twait_lock = lock;
    d->twait_kind = (int)kind;
    d->twait_since = conc__now();
    d->twait_session = atomic_load_explicit(&conc__tr_session, memory_order_relaxed);
}

void conc__trace_lock_done(const void *lock, enum conc__lock_kind kind)
{
    (void)kind;
    struct conc__dthread *d = conc__tls.diag;
    if (!d || !d->twait_lock)
        return;
    bool mine = d->twait_lock == lock &&
                d->twait_session == atomic_load_explicit(&conc__tr_session, memory_order_relaxed);
    d->twait_lock = NULL;
    if (mine)
        conc__tr_emit(d, conc__tr_wait_name(d->twait_kind), lock, d->twait_since, CONC__TEV_LOCK);
}

/* ==== fork ==== */

void conc__trace_fork_prepare(void)
{
    pthread_mutex_lock(&conc__tr_lock);
}

void conc__trace_fork_parent(void)
{
    pthread_mutex_unlock(&conc__tr_lock);
}

/* The child does not go on with its parent's trace: the file is the
 * parent's to write. */
void conc__trace_fork_child(void)
{
    if (atomic_load(&conc__tr_active)) {
        conc__diag_enable(CONC__DIAG_TRACE, false);
        atomic_store(&conc__tr_active, false);
        atomic_store(&conc__dt_keep_ended, false);
        struct conc__dthread *d = conc__tls.diag;
        if (d) {
            free(atomic_load_explicit(&d->tring, memory_order_relaxed));
            atomic_store_explicit(&d->tring, NULL, memory_order_relaxed);
            d->nspans = 0;
            d->spans_over = 0;
            d->twait_lock = NULL;
        }
        free(conc__tr_path);
        conc__tr_path = NULL;
    }
    pthread_mutex_unlock(&conc__tr_lock);
}

/* ==== writing the file ==== */

struct conc__tthread {
    char name[CONC__DT_NAME];
    uint32_t tid;
    int64_t born, died; /* died: 0 while alive */
    struct conc__tring *ring;
};

/* A JSON string: quotes, backslashes and control characters escaped, and
 * bytes that are not UTF-8 written as U+FFFD, so the file always parses. */
static void conc__json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            p++;
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            p++;
        } else {
            int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            if (c >= 0xf5)
                len = 0;
            int k = 1;
            while (k < len && (p[k] & 0xc0) == 0x80)
                k++;
            /* Overlong three-byte forms and surrogates are not UTF-8. */
            bool bad = len == 0 || k < len || (c == 0xe0 && p[1] < 0xa0) ||
                       (c == 0xed && p[1] >= 0xa0) || (c == 0xf0 && p[1] < 0x90) ||
                       (c == 0xf4 && p[1] >= 0x90);
            if (bad) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, (size_t)len, f);
                p += len;
            }
        }
    }
    fputc('"', f);
}

static double conc__tr_us(int64_t ns)
{
    return ns > 0 ? (double)ns / 1e3 : 0;
}

static void conc__tr_head(FILE *f, bool *first, const char *name, const char *ph, int pid,
                          uint32_t tid)
{
    fputs(*first ? "\n" : ",\n", f);
    *first = false;
    fputs("{\"name\":", f);
    conc__json_string(f, name);
    fprintf(f, ",\"ph\":\"%s\",\"pid\":%d,\"tid\":%u", ph, pid, tid);
}

static void conc__tr_write_thread(FILE *f, bool *first, const struct conc__tthread *t, int pid,
                                  int64_t t0, int64_t t1)
{
    char fallback[32];
    const char *name = t->name;
    if (!name[0]) {
        snprintf(fallback, sizeof fallback, "thread %u", t->tid);
        name = fallback;
    }
    conc__tr_head(f, first, "thread_name", "M", pid, t->tid);
    fputs(",\"ts\":0,\"args\":{\"name\":", f);
    conc__json_string(f, name);
    fputs("}}", f);
    /* Its lifetime, within the session. */
    int64_t start = t->born > t0 ? t->born : t0, end = t->died ? t->died : t1;
    if (end >= start) {
        conc__tr_head(f, first, "thread", "X", pid, t->tid);
        fprintf(f, ",\"cat\":\"conc\",\"ts\":%.3f,\"dur\":%.3f}", conc__tr_us(start - t0),
                conc__tr_us(end - start));
    }
    const struct conc__tring *r = t->ring;
    if (!r)
        return;
    size_t n = r->written < r->cap ? (size_t)r->written : r->cap;
    size_t at = r->written < r->cap ? 0 : r->pos;
    static const char *const cats[] = {"conc", "user", "lock"};
    for (size_t k = 0; k < n; k++, at = at + 1 == r->cap ? 0 : at + 1) {
        const struct conc__tev *e = &r->ev[at];
        conc__tr_head(f, first, e->name, "X", pid, t->tid);
        fprintf(f, ",\"cat\":\"%s\",\"ts\":%.3f,\"dur\":%.3f", cats[e->cat], conc__tr_us(e->ts - t0),
                conc__tr_us(e->dur));
        if (e->obj)
            fprintf(f, ",\"args\":{\"obj\":\"%p\"}", e->obj);
        fputs("}", f);
    }
}

static int conc__tr_write(const char *path, const struct conc__tthread *threads, size_t n,
                          int64_t t0, int64_t t1)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    int pid = (int)getpid();
    uint64_t written = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (threads[i].ring) {
            written += threads[i].ring->written;
            kept += threads[i].ring->written < threads[i].ring->cap ? threads[i].ring->written
                                                                     : threads[i].ring->cap;
        }
    }
    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":\"conc\",", f);
    fprintf(f, "\"events_recorded\":%llu,\"events_overwritten\":%llu},\"traceEvents\":[",
            (unsigned long long)written, (unsigned long long)(written - kept));
    bool first = true;
    char comm[17] = "";
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    conc__tr_head(f, &first, "process_name", "M", pid, (uint32_t)pid);
    fputs(",\"ts\":0,\"args\":{\"name\":", f);
    conc__json_string(f, comm);
    fputs("}}", f);
    for (size_t i = 0; i < n; i++)
        conc__tr_write_thread(f, &first, &threads[i], pid, t0, t1);
    fputs("\n]}\n", f);
    int rc = ferror(f) ? -(errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Under the registry lock, once every thread is out of its ring: takes
 * every ring, and the names and lifetimes, and lets ended threads go. */
static struct conc__tthread *conc__tr_collect(size_t *n)
{
    size_t count = 0;
    for (struct conc__dthread *d = conc__dt_first(); d; d = d->next)
        count++;
    struct conc__tthread *out = calloc(count ? count : 1, sizeof *out);
    size_t k = 0;
    struct conc__dthread *d = conc__dt_first();
    while (d) {
        struct conc__dthread *next = d->next;
        while (atomic_load(&d->tbusy))
            sched_yield(); /* an event half written: a few instructions */
        if (out) {
            struct conc__tthread *t = &out[k++];
            memcpy(t->name, d->name, sizeof t->name);
            t->tid = d->tid;
            t->born = d->born;
            t->died = d->alive ? 0 : d->died;
            t->ring = atomic_load_explicit(&d->tring, memory_order_relaxed);
            atomic_store_explicit(&d->tring, NULL, memory_order_relaxed);
        }
        if (!d->alive)
            conc__dt_free_locked(d);
        d = next;
    }
    *n = k;
    return out;
}

/* ==== the API ==== */

int conc_trace_start(const char *path, size_t events_per_thread)
{
    if (!path)
        return CONC__MISUSE(CONC_EINVAL, "NULL path");
    char *copy = strdup(path);
    if (!copy)
        return CONC_ENOMEM;
    size_t cap = events_per_thread ? events_per_thread : CONC__TRACE_DEFAULT_EVENTS;
    if (cap > CONC__TRACE_MAX_EVENTS)
        cap = CONC__TRACE_MAX_EVENTS;
    pthread_mutex_lock(&conc__tr_lock);
    if (atomic_load(&conc__tr_active)) {
        pthread_mutex_unlock(&conc__tr_lock);
        free(copy);
        return CONC__MISUSE(CONC_EBUSY, "a trace is running already");
    }
    conc__tr_path = copy;
    conc__tr_t0 = conc__now();
    atomic_store_explicit(&conc__tr_cap, cap, memory_order_relaxed);
    atomic_fetch_add_explicit(&conc__tr_session, 1, memory_order_relaxed);
    atomic_store(&conc__dt_keep_ended, true);
    atomic_store(&conc__tr_active, true);
    conc__diag_enable(CONC__DIAG_TRACE, true);
    pthread_mutex_unlock(&conc__tr_lock);
    conc__dthread_self(); /* the caller shows in the trace, named */
    return 0;
}

int conc_trace_stop(void)
{
    pthread_mutex_lock(&conc__tr_lock);
    if (!atomic_load(&conc__tr_active)) {
        pthread_mutex_unlock(&conc__tr_lock);
        return CONC__MISUSE(CONC_EINVAL, "no trace is running");
    }
    conc__diag_enable(CONC__DIAG_TRACE, false);
    atomic_store(&conc__tr_active, false);
    atomic_store(&conc__dt_keep_ended, false);
    int64_t t1 = conc__now();
    size_t n = 0;
    conc__dt_lock();
    struct conc__tthread *threads = conc__tr_collect(&n);
    conc__dt_unlock();
    int rc = threads ? conc__tr_write(conc__tr_path, threads, n, conc__tr_t0, t1) : CONC_ENOMEM;
    for (size_t i = 0; threads && i < n; i++)
        free(threads[i].ring);
    free(threads);
    free(conc__tr_path);
    conc__tr_path = NULL;
    pthread_mutex_unlock(&conc__tr_lock);
    if (rc)
        rc = conc__misuse_errno(rc, __func__,
                                "writing the trace file failed (the code is the errno)");
    return rc;
}

static void conc__trace_at_exit(void)
{
    pthread_mutex_lock(&conc__tr_lock);
    bool mine = atomic_load(&conc__tr_active) &&
                atomic_load_explicit(&conc__tr_session, memory_order_relaxed) == conc__tr_env_session;
    char *path = mine && conc__tr_path ? strdup(conc__tr_path) : NULL;
    pthread_mutex_unlock(&conc__tr_lock);
    if (!mine)
        return;
    int rc = conc_trace_stop();
    if (rc != 0)
        fprintf(stderr, "conc: CONC_TRACE: cannot write %s: %s\n", path ? path : "the trace",
                conc_strerror(rc));
    free(path);
}

void conc__trace_env(const char *value)
{
    int rc = conc_trace_start(value, 0);
    if (rc != 0) {
        fprintf(stderr, "conc: CONC_TRACE=%s: %s\n", value, conc_strerror(rc));
        return;
    }
    pthread_mutex_lock(&conc__tr_lock);
    conc__tr_env_session = atomic_load_explicit(&conc__tr_session, memory_order_relaxed);
    pthread_mutex_unlock(&conc__tr_lock);
    atexit(conc__trace_at_exit);
}
