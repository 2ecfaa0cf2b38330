/* Lock-order checking (debug.h), in the manner of Linux's lockdep.
 *
 * The graph. Every lock belongs to a class (struct ld_class): the name given
 * with conc_lock_set_name or opts.name, else its init site (the conc_X_init
 * macros), else the lock's own address. A lock-to-key map (struct ld_lockent,
 * address -> interned name or site) says which; a lock found in neither gets
 * an address class. An edge A -> B (struct ld_edge, in A's adjacency array)
 * says "a B was acquired while an A was held", with the thread and the call
 * stack (backtrace(), symbolised only when reported) where that order was
 * first seen. Before a new edge held -> wanted is added, a breadth-first
 * search from wanted looks for held: a path closes a cycle, and that is
 * reported — the new order and each order on the path, with their threads
 * and stacks — before the acquisition can deadlock. Then, per mode: the edge
 * is added and the lock taken (LOG, so each cycle is reported once), the
 * acquisition refused with CONC_EDEADLK and the order kept as refused, so
 * that it is refused again without a second report (ERROR), or abort()
 * (ABORT). Everything in the graph is guarded by ld_mu, a pthread mutex (a
 * conc lock would call these hooks again), taken and released around fork()
 * by the fork table (core/fork.h), so that a child can use it.
 *
 * Held locks are per execution context, not per thread: each context
 * record (core/tls.h) points at the stack of locks it holds (struct
 * conc__held_locks), and an acquisition orders only after the locks of its
 * own context. A pool task helped in on a waiting worker
 * (conc__future_execute enters a context of its own) thus never inherits
 * the worker's locks. A thread's own context uses the stack in its
 * ld_thread; any other context gets one from the heap when it first takes a
 * lock while checking is on, freed when the context ends
 * (conc__diag_context_end). Each stack remembers the generation and epoch it
 * was last synchronised with, since an interrupted context's stack sees no
 * change until its context runs again.
 *
 * The fast path, for a lock already seen in an order already known, takes no
 * lock: each thread caches lock -> class (ld_thread.cc) and the edges it has
 * seen exist (ld_thread.ec), and only a miss takes ld_mu. Anything that can
 * make a cached pointer wrong (a reset, a name, a destroyed lock whose
 * class goes) bumps ld_gen under ld_mu; a thread that sees a new generation
 * flushes its caches and looks its held locks' classes up again, under
 * ld_mu, before it uses any of them. Class pointers outside ld_mu are only
 * ever compared, never followed.
 *
 * Not checked: two locks of one class nested (a class has no edge to itself:
 * the order among instances of one class, e.g. by address, is the program's
 * own), and a read lock released by another thread than the one that took
 * it (its taker keeps it as held).
 */
#define _GNU_SOURCE
#include "conc/debug.h"
#include "core/misuse.h"
#include "core/tls.h"
#include "diag/diag.h"
#include "diag/diag_thread.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LD_MAX_HELD 48 /* locks held at once by one thread, as Linux's MAX_LOCK_DEPTH */
#define LD_FRAMES 16   /* frames kept of the stack where an order was first seen */
#define LD_CCACHE 64   /* per-thread lock -> class cache (direct-mapped) */
#define LD_ECACHE 256  /* per-thread known-edge cache (direct-mapped) */
#define LD_THREAD_NAME 32

_Atomic bool conc__lockdep_used;

/* ---- the graph (all under ld_mu) ---- */

enum { LD_KEY_NAME, LD_KEY_SITE };

struct ld_class;

/* An interned class name or init site; kept for the life of the process. */
struct ld_key {
    struct ld_key *next;
    int type;
    struct ld_class *cls; /* its class, made when first needed */
    char str[];
};

struct ld_edge {
    struct ld_class *to;
    bool refused; /* ERROR mode: this order closed a cycle and was refused */
    int nframes;
    const void *from_lock, *to_lock; /* the locks of the first sighting */
    enum conc__lock_kind from_kind, to_kind;
    uint32_t tid;
    uintptr_t task; /* the running context's identity then: a pool task, or 0 */
    char thread[LD_THREAD_NAME];
    void *frames[LD_FRAMES];
};

struct ld_class {
    struct ld_class *next_all, *prev_all; /* every live class */
    struct ld_class *hnext;               /* address classes: the hash chain */
    struct ld_key *key;                   /* NULL: an address class */
    uintptr_t addr;                       /* an address class's lock */
    enum conc__lock_kind kind;            /* of the first lock seen */
    bool recursion_reported;
    struct ld_edge *edges; /* held before: this -> edges[i].to */
    size_t nedges, cap;
    size_t nin; /* edges into this class */
    /* Breadth-first search. */
    uint64_t mark;
    struct ld_class *bfs_from;
    size_t bfs_edge;
};

/* A lock whose class is a name or a site. */
struct ld_lockent {
    struct ld_lockent *next;
    uintptr_t addr;
    struct ld_key *key;
    bool used; /* a lookup went through it: some cache may hold its class */
};

/* Chained hash tables keyed by address, grown by doubling. */
struct ld_table {
    void **b;
    size_t size, count;
};

static pthread_mutex_t ld_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int ld_mode; /* conc_lockdep_mode */
static _Atomic uint64_t ld_reports;
static _Atomic uint64_t ld_gen = 1; /* bumped under ld_mu: cached classes are stale */
static uint64_t ld_epoch;           /* bumped when switched on: held stacks are stale */
static struct ld_key *ld_keys;
static struct ld_table ld_locks;    /* struct ld_lockent */
static struct ld_table ld_aclass;   /* address classes, struct ld_class via hnext */
static struct ld_class *ld_classes; /* every live class */
static size_t ld_nclasses;
static uint64_t ld_bfs_mark;

static size_t ld_hash_addr(uintptr_t a)
{
    a ^= a >> 33;
    a *= 0xff51afd7ed558ccdull;
    a ^= a >> 33;
    return (size_t)a;
}

/* Entries of both tables begin with their `next` link; addresses sit where
 * `addr_of` finds them. */
static uintptr_t ld_lockent_addr(void *e)
{
    return ((struct ld_lockent *)e)->addr;
}
static uintptr_t ld_class_addr(void *e)
{
    return ((struct ld_class *)e)->addr;
}
static void **ld_lockent_next(void *e)
{
    return (void **)&((struct ld_lockent *)e)->next;
}
static void **ld_class_next(void *e)
{
    return (void **)&((struct ld_class *)e)->hnext;
}

struct ld_table_ops {
    uintptr_t (*addr)(void *);
    void **(*next)(void *);
};
static const struct ld_table_ops ld_lockent_ops = {ld_lockent_addr, ld_lockent_next};
static const struct ld_table_ops ld_class_ops = {ld_class_addr, ld_class_next};

static void *ld_table_find(struct ld_table *t, const struct ld_table_ops *ops, uintptr_t addr)
{
    if (!t->size)
        return NULL;
    for (void *e = t->b[ld_hash_addr(addr) & (t->size - 1)]; e; e = *ops->next(e))
        if (ops->addr(e) == addr)
            return e;
    return NULL;
}

static bool ld_table_insert(struct ld_table *t, const struct ld_table_ops *ops, void *e)
{
    if (t->count >= t->size) {
        size_t n = t->size ? t->size * 2 : 64;
        void **b = calloc(n, sizeof *b);
        if (!b)
            return false;
        for (size_t i = 0; i < t->size; i++) {
            for (void *x = t->b[i], *next; x; x = next) {
                next = *ops->next(x);
                size_t j = ld_hash_addr(ops->addr(x)) & (n - 1);
                *ops->next(x) = b[j];
                b[j] = x;
            }
        }
        free(t->b);
        t->b = b;
        t->size = n;
    }
    size_t j = ld_hash_addr(ops->addr(e)) & (t->size - 1);
    *ops->next(e) = t->b[j];
    t->b[j] = e;
    t->count++;
    return true;
}

static void *ld_table_remove(struct ld_table *t, const struct ld_table_ops *ops, uintptr_t addr)
{
    if (!t->size)
        return NULL;
    for (void **p = &t->b[ld_hash_addr(addr) & (t->size - 1)]; *p; p = ops->next(*p)) {
        if (ops->addr(*p) == addr) {
            void *e = *p;
            *p = *ops->next(e);
            t->count--;
            return e;
        }
    }
    return NULL;
}

static void ld_bump_gen(void)
{
    atomic_fetch_add_explicit(&ld_gen, 1, memory_order_release);
}

static struct ld_key *ld_key_intern(int type, const char *str)
{
    /* A list: a program has few names and sites. */
    for (struct ld_key *k = ld_keys; k; k = k->next)
        if (k->type == type && !strcmp(k->str, str))
            return k;
    size_t len = strlen(str);
    struct ld_key *k = malloc(sizeof *k + len + 1);
    if (!k)
        return NULL;
    k->type = type;
    k->cls = NULL;
    memcpy(k->str, str, len + 1);
    k->next = ld_keys;
    ld_keys = k;
    atomic_store_explicit(&conc__lockdep_used, true, memory_order_relaxed);
    return k;
}

static struct ld_class *ld_class_new(struct ld_key *key, uintptr_t addr, enum conc__lock_kind kind)
{
    struct ld_class *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->key = key;
    c->addr = addr;
    c->kind = kind;
    if (!key && !ld_table_insert(&ld_aclass, &ld_class_ops, c)) {
        free(c);
        return NULL;
    }
    if (key)
        key->cls = c;
    c->next_all = ld_classes;
    if (ld_classes)
        ld_classes->prev_all = c;
    ld_classes = c;
    ld_nclasses++;
    atomic_store_explicit(&conc__lockdep_used, true, memory_order_relaxed);
    return c;
}

/* Removes a class and every edge into or out of it. */
static void ld_class_zap(struct ld_class *c)
{
    if (c->nin) {
        for (struct ld_class *x = ld_classes; x && c->nin; x = x->next_all) {
            for (size_t i = 0; i < x->nedges;) {
                if (x->edges[i].to == c) {
                    x->edges[i] = x->edges[--x->nedges];
                    c->nin--;
                } else {
                    i++;
                }
            }
        }
    }
    for (size_t i = 0; i < c->nedges; i++)
        c->edges[i].to->nin--;
    if (c->prev_all)
        c->prev_all->next_all = c->next_all;
    else
        ld_classes = c->next_all;
    if (c->next_all)
        c->next_all->prev_all = c->prev_all;
    if (c->key)
        c->key->cls = NULL;
    else
        ld_table_remove(&ld_aclass, &ld_class_ops, c->addr);
    ld_nclasses--;
    free(c->edges);
    free(c);
}

/* The class of the lock at addr, made if needed; NULL when out of memory. */
static struct ld_class *ld_lookup(const void *lock, enum conc__lock_kind kind)
{
    uintptr_t addr = (uintptr_t)lock;
    struct ld_lockent *e = ld_table_find(&ld_locks, &ld_lockent_ops, addr);
    if (e) {
        e->used = true;
        return e->key->cls ? e->key->cls : ld_class_new(e->key, 0, kind);
    }
    struct ld_class *c = ld_table_find(&ld_aclass, &ld_class_ops, addr);
    return c ? c : ld_class_new(NULL, addr, kind);
}

/* Forgets what the lock at addr was: its name or site, and its address
 * class. Returns whether a cache may hold what went. */
static bool ld_unmap(uintptr_t addr)
{
    bool stale = false;
    struct ld_lockent *e = ld_table_remove(&ld_locks, &ld_lockent_ops, addr);
    if (e) {
        stale = e->used;
        free(e);
    }
    struct ld_class *c = ld_table_find(&ld_aclass, &ld_class_ops, addr);
    if (c) {
        ld_class_zap(c);
        stale = true;
    }
    return stale;
}

static int ld_map(uintptr_t addr, struct ld_key *key)
{
    struct ld_lockent *e = calloc(1, sizeof *e);
    if (!e)
        return CONC_ENOMEM;
    e->addr = addr;
    e->key = key;
    if (!ld_table_insert(&ld_locks, &ld_lockent_ops, e)) {
        free(e);
        return CONC_ENOMEM;
    }
    return 0;
}

static struct ld_edge *ld_edge_find(struct ld_class *from, struct ld_class *to)
{
    for (size_t i = 0; i < from->nedges; i++)
        if (from->edges[i].to == to)
            return &from->edges[i];
    return NULL;
}

static struct ld_edge *ld_edge_add(struct ld_class *from, struct ld_class *to)
{
    if (from->nedges == from->cap) {
        size_t n = from->cap ? from->cap * 2 : 4;
        struct ld_edge *e = realloc(from->edges, n * sizeof *e);
        if (!e)
            return NULL;
        from->edges = e;
        from->cap = n;
    }
    struct ld_edge *e = &from->edges[from->nedges++];
    memset(e, 0, sizeof *e);
    e->to = to;
    to->nin++;
    return e;
}

/* A path from `from` to `to` over edges not refused, shortest first: fills
 * path[] with the classes' edges in order and returns its length, or 0. */
static size_t ld_find_path(struct ld_class *from, struct ld_class *to, struct ld_edge ***path_out)
{
    struct ld_class **queue = malloc(ld_nclasses * sizeof *queue);
    if (!queue)
        return 0;
    uint64_t mark = ++ld_bfs_mark;
    size_t head = 0, tail = 0;
    from->mark = mark;
    from->bfs_from = NULL;
    queue[tail++] = from;
    bool found = false;
    while (head < tail && !found) {
        struct ld_class *c = queue[head++];
        for (size_t i = 0; i < c->nedges; i++) {
            struct ld_class *n = c->edges[i].to;
            if (c->edges[i].refused || n->mark == mark)
                continue;
            n->mark = mark;
            n->bfs_from = c;
            n->bfs_edge = i;
            if (n == to) {
                found = true;
                break;
            }
            if (tail < ld_nclasses)
                queue[tail++] = n;
        }
    }
    free(queue);
    if (!found)
        return 0;
    size_t len = 0;
    for (struct ld_class *c = to; c != from; c = c->bfs_from)
        len++;
    struct ld_edge **path = malloc(len * sizeof *path);
    if (!path)
        return 0;
    size_t i = len;
    for (struct ld_class *c = to; c != from; c = c->bfs_from)
        path[--i] = &c->bfs_from->edges[c->bfs_edge];
    *path_out = path;
    return len;
}

/* ---- per-thread state ---- */

struct ld_held {
    const void *lock;
    struct ld_class *cls;
    enum conc__lock_kind kind;
};

/* The locks one context holds, oldest first. */
struct conc__held_locks {
    uint64_t gen, epoch; /* last synchronised with ld_gen, ld_epoch */
    unsigned nheld;
    bool overflow_reported;
    bool heap; /* not a thread's own: freed when its context ends */
    struct ld_held held[LD_MAX_HELD];
};

struct ld_thread {
    struct ld_thread *next_all; /* ld_threads: every state, free or not */
    bool in_use;
    bool busy; /* inside lockdep or the reporter (which may take conc locks): hooks ignored */
    uint64_t gen; /* the caches below are of this generation */
    const void *pending_lock; /* between acquire and acquired */
    struct ld_class *pending_cls;
    struct conc__held_locks own; /* the thread's own context's */
    struct {
        const void *lock;
        struct ld_class *cls;
    } cc[LD_CCACHE];
    struct {
        struct ld_class *from, *to;
    } ec[LD_ECACHE];
};

/* States are recycled, never freed: one taken again after its thread's key
 * destructor ran stays reachable from here. */
static struct ld_thread *ld_threads;
static pthread_key_t ld_key;
static pthread_once_t ld_key_once = PTHREAD_ONCE_INIT;

static void ld_thread_exit(void *p)
{
    struct ld_thread *t = p;
    pthread_mutex_lock(&ld_mu);
    t->in_use = false;
    pthread_mutex_unlock(&ld_mu);
    conc__tls.lockdep = NULL;
    conc__tls.own.held = NULL; /* it was t->own */
}

static void ld_key_create(void)
{
    pthread_key_create(&ld_key, ld_thread_exit);
}

static void ld_caches_flush(struct ld_thread *t)
{
    memset(t->cc, 0, sizeof t->cc);
    memset(t->ec, 0, sizeof t->ec);
    t->pending_lock = NULL;
}

__attribute__((noinline)) static struct ld_thread *ld_thread_new(void)
{
    pthread_once(&ld_key_once, ld_key_create);
    pthread_mutex_lock(&ld_mu);
    struct ld_thread *t = ld_threads;
    while (t && t->in_use)
        t = t->next_all;
    if (!t && (t = calloc(1, sizeof *t)) != NULL) {
        t->next_all = ld_threads;
        ld_threads = t;
    }
    if (t) {
        struct ld_thread *next = t->next_all;
        memset(t, 0, sizeof *t);
        t->next_all = next;
        t->in_use = true;
        t->gen = atomic_load(&ld_gen);
        t->own.gen = t->gen;
        t->own.epoch = ld_epoch;
    }
    pthread_mutex_unlock(&ld_mu);
    if (t) {
        pthread_setspecific(ld_key, t);
        conc__tls.lockdep = t;
    }
    return t;
}

static inline struct ld_thread *ld_thread_get(void)
{
    struct ld_thread *t = conc__tls.lockdep;
    return conc__likely(t != NULL) ? t : ld_thread_new();
}

/* The running context's held stack, made when it first needs one; NULL
 * when out of memory. */
static struct conc__held_locks *ld_held_get(struct ld_thread *t)
{
    struct conc__context *c = conc__context();
    if (conc__likely(c->held != NULL))
        return c->held;
    struct conc__held_locks *h = &t->own;
    if (c != &conc__tls.own) {
        if (!(h = calloc(1, sizeof *h)))
            return NULL;
        h->heap = true; /* gen 0: synchronised under ld_mu before its first use */
    }
    c->held = h;
    return h;
}

void conc__diag_context_end(struct conc__context *c)
{
    struct conc__held_locks *h = c->held;
    c->held = NULL;
    if (h && h->heap)
        free(h);
}

/* Under ld_mu: after a generation change, flush the thread's caches, and
 * look the classes of h's locks up again; after lockdep was switched off
 * and on, h is stale (its releases went unseen) and is emptied. */
static void ld_resync_locked(struct ld_thread *t, struct conc__held_locks *h)
{
    uint64_t g = atomic_load_explicit(&ld_gen, memory_order_relaxed);
    if (t->gen != g) {
        ld_caches_flush(t);
        t->gen = g;
    }
    if (!h || h->gen == g)
        return;
    if (h->epoch != ld_epoch) {
        h->nheld = 0;
        h->epoch = ld_epoch;
    }
    for (unsigned i = 0; i < h->nheld; i++)
        h->held[i].cls = ld_lookup(h->held[i].lock, h->held[i].kind);
    h->gen = g;
}

static inline void ld_sync(struct ld_thread *t, struct conc__held_locks *h)
{
    uint64_t g = atomic_load_explicit(&ld_gen, memory_order_relaxed);
    if (conc__unlikely(g != t->gen || (h && g != h->gen))) {
        pthread_mutex_lock(&ld_mu);
        ld_resync_locked(t, h);
        pthread_mutex_unlock(&ld_mu);
    }
}

static inline unsigned ld_cc_slot(const void *lock)
{
    return (unsigned)(ld_hash_addr((uintptr_t)lock) & (LD_CCACHE - 1));
}

static inline unsigned ld_ec_slot(const struct ld_class *from, const struct ld_class *to)
{
    uintptr_t h = ((uintptr_t)from * 0x9e3779b97f4a7c15ull) ^ (uintptr_t)to;
    return (unsigned)(ld_hash_addr(h) & (LD_ECACHE - 1));
}

static void ld_ec_put(struct ld_thread *t, struct ld_class *from, struct ld_class *to)
{
    unsigned i = ld_ec_slot(from, to);
    t->ec[i].from = from;
    t->ec[i].to = to;
}

/* The class of lock, from the cache or else under ld_mu. */
static struct ld_class *ld_class_of(struct ld_thread *t, const void *lock,
                                    enum conc__lock_kind kind)
{
    unsigned i = ld_cc_slot(lock);
    if (conc__likely(t->cc[i].lock == lock))
        return t->cc[i].cls;
    pthread_mutex_lock(&ld_mu);
    ld_resync_locked(t, NULL);
    struct ld_class *c = ld_lookup(lock, kind);
    pthread_mutex_unlock(&ld_mu);
    if (c) {
        t->cc[i].lock = lock;
        t->cc[i].cls = c;
    }
    return c;
}

/* ---- reports ---- */

struct ld_text {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void ld_printf(struct ld_text *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
}


static const char *ld_mode_name(int mode)
{
    switch (mode) {
    case CONC_LOCKDEP_ERROR:
        return "error: refused with CONC_EDEADLK";
    case CONC_LOCKDEP_ABORT:
        return "abort";
    default:
        return "log: acquired anyway";
    }
}

/* A lock without a name or an init site, by the symbol it is (or is in),
 * where the program exports one: "g_lock", "g_state+0x10"; else its
 * address. */
static void ld_print_address(struct ld_text *b, const void *addr)
{
    Dl_info info;
    if (dladdr(addr, &info) && info.dli_sname && info.dli_saddr) {
        size_t off = (size_t)((const char *)addr - (const char *)info.dli_saddr);
        if (off == 0)
            ld_printf(b, "\"%s\"", info.dli_sname);
        else
            ld_printf(b, "\"%s+%#zx\"", info.dli_sname, off);
        return;
    }
    ld_printf(b, "\"%p\"", addr);
}

/* "name" (kind 0x...): a class and, where known, the lock at hand. */
static void ld_print_lock(struct ld_text *b, const struct ld_class *c, const void *lock,
                          enum conc__lock_kind kind)
{
    if (!c)
        ld_print_address(b, lock);
    else if (c->key)
        ld_printf(b, "\"%s\"", c->key->str);
    else
        ld_print_address(b, (const void *)c->addr);
    if (lock)
        ld_printf(b, " (%s %p)", conc__lock_kind_name(kind), lock);
}

static void ld_print_thread(struct ld_text *b, const char *name, uint32_t tid, uintptr_t task)
{
    if (name[0])
        ld_printf(b, "thread \"%s\" (tid %u)", name, (unsigned)tid);
    else
        ld_printf(b, "thread %u", (unsigned)tid);
    if (task)
        ld_printf(b, ", in pool task %p", (void *)task);
}

/* One frame: the function and module where the dynamic symbols say (an
 * exported function), else the module and offset with the addr2line line
 * that names it from the debug information (the call site: a return
 * address minus one). */
static void ld_print_frame(struct ld_text *b, int i, void *pc)
{
    Dl_info info;
    if (!dladdr(pc, &info) || !info.dli_fname) {
        ld_printf(b, "      #%d %p\n", i, pc);
        return;
    }
    const char *module = strrchr(info.dli_fname, '/');
    module = module ? module + 1 : info.dli_fname;
    uintptr_t off = (uintptr_t)pc - (uintptr_t)info.dli_fbase;
    if (info.dli_sname && info.dli_saddr)
        ld_printf(b, "      #%d %s+%#lx (%s)\n", i, info.dli_sname,
                  (unsigned long)((uintptr_t)pc - (uintptr_t)info.dli_saddr), module);
    else
        ld_printf(b, "      #%d %s+%#lx    addr2line -fCi -e %s %#lx\n", i, module,
                  (unsigned long)off, info.dli_fname, (unsigned long)(off ? off - 1 : 0));
}

static void ld_print_stack(struct ld_text *b, void *const *frames, int n)
{
    for (int i = 0; i < n; i++)
        ld_print_frame(b, i, frames[i]);
    if (n <= 0)
        ld_printf(b, "      (no stack)\n");
}

/* Who is here: for reports and first sightings. */
struct ld_who {
    char name[LD_THREAD_NAME];
    uint32_t tid;
    uintptr_t task;
    int nframes;
    void *frames[LD_FRAMES + 2];
};

/* Fills who, outside ld_mu: the thread's name is in its diagnostics
 * record (diag_thread.h), under the registry's lock. */
__attribute__((noinline)) static void ld_who_here(struct ld_thread *t, struct ld_who *who)
{
    t->busy = true;
    conc__dthread_name_of(conc__dthread_self(), who->name, sizeof who->name);
    who->tid = conc__tid();
    who->task = conc__tls.self;
    /* Skips this function and ld_acquire_slow: the stack starts at the hook. */
    int n = backtrace(who->frames, LD_FRAMES + 2);
    who->nframes = n > 2 ? n - 2 : 0;
    if (n > 2)
        memmove(who->frames, who->frames + 2, (size_t)who->nframes * sizeof *who->frames);
    t->busy = false;
}

static void ld_edge_fill(struct ld_edge *e, const struct ld_who *who, const void *from_lock,
                         enum conc__lock_kind from_kind, const void *to_lock,
                         enum conc__lock_kind to_kind)
{
    e->from_lock = from_lock;
    e->to_lock = to_lock;
    e->from_kind = from_kind;
    e->to_kind = to_kind;
    e->tid = who->tid;
    e->task = who->task;
    memcpy(e->thread, who->name, sizeof e->thread);
    e->nframes = who->nframes < LD_FRAMES ? who->nframes : LD_FRAMES;
    memcpy(e->frames, who->frames, (size_t)e->nframes * sizeof *e->frames);
}

static void ld_report_cycle(struct ld_text *b, const struct ld_who *who, const struct ld_held *h,
                            struct ld_class *c, const void *lock, enum conc__lock_kind kind,
                            struct ld_edge **path, size_t len, int mode)
{
    ld_printf(b, "conc lockdep: possible deadlock: lock-order cycle\n  ");
    ld_print_thread(b, who->name, who->tid, who->task);
    ld_printf(b, " acquires ");
    ld_print_lock(b, c, lock, kind);
    ld_printf(b, "\n  while holding ");
    ld_print_lock(b, h->cls, h->lock, h->kind);
    ld_printf(b, ":\n  new order: ");
    ld_print_lock(b, h->cls, NULL, h->kind);
    ld_printf(b, " -> ");
    ld_print_lock(b, c, NULL, kind);
    ld_printf(b, ", here:\n");
    ld_print_stack(b, who->frames, who->nframes);
    ld_printf(b, "  but the opposite order was seen before:\n");
    struct ld_class *from = c;
    for (size_t i = 0; i < len; i++) {
        const struct ld_edge *e = path[i];
        ld_printf(b, "  order ");
        ld_print_lock(b, from, e->from_lock, e->from_kind);
        ld_printf(b, " -> ");
        ld_print_lock(b, e->to, e->to_lock, e->to_kind);
        ld_printf(b, ", first seen in ");
        ld_print_thread(b, e->thread, e->tid, e->task);
        ld_printf(b, ", at:\n");
        ld_print_stack(b, e->frames, e->nframes);
        from = e->to;
    }
    ld_printf(b, "  cycle: ");
    ld_print_lock(b, h->cls, NULL, h->kind);
    ld_printf(b, " -> ");
    ld_print_lock(b, c, NULL, kind);
    for (size_t i = 0; i < len; i++) {
        ld_printf(b, " -> ");
        ld_print_lock(b, path[i]->to, NULL, path[i]->to_kind);
    }
    ld_printf(b, "\n  threads taking these orders at the same time can deadlock (mode %s)\n",
              ld_mode_name(mode));
}

static void ld_report_recursion(struct ld_text *b, const struct ld_who *who,
                                const struct ld_held *h, enum conc__lock_kind kind, int mode)
{
    static const char *const outcome[] = {
        [CONC_LOCKDEP_LOG] = "log: not refused, the lock answers for itself",
        [CONC_LOCKDEP_ERROR] = "error: refused with CONC_EDEADLK",
        [CONC_LOCKDEP_ABORT] = "abort",
    };
    ld_printf(b, "conc lockdep: recursive locking: self-deadlock\n  ");
    ld_print_thread(b, who->name, who->tid, who->task);
    ld_printf(b, " acquires ");
    ld_print_lock(b, h->cls, h->lock, kind);
    ld_printf(b, "\n  which it holds already (%s), and which is not recursive, here:\n",
              conc__lock_kind_name(h->kind));
    ld_print_stack(b, who->frames, who->nframes);
    ld_printf(b, "  (mode %s)\n",
              mode >= CONC_LOCKDEP_LOG && mode <= CONC_LOCKDEP_ABORT ? outcome[mode]
                                                                     : ld_mode_name(mode));
}

static void ld_emit(struct ld_thread *t, struct ld_text *b, bool do_abort)
{
    if (!b->p)
        return;
    t->busy = true; /* a reporter may take conc locks */
    conc__diag_report("%s", b->p);
    t->busy = false;
    free(b->p);
    if (do_abort)
        abort();
}

/* ---- the hooks ---- */

/* Whether taking lock again, of kind, while holding it as held_kind is
 * fine for the checker: read after read (one thread's read locks), and a
 * semaphore (its value decides; it has no owner to deadlock on). */
static bool ld_reentry_ok(enum conc__lock_kind held_kind, enum conc__lock_kind kind)
{
    if (held_kind == CONC__LOCK_SEM || held_kind == CONC__LOCK_RMUTEX)
        return true;
    return held_kind == CONC__LOCK_RWLOCK_READ && kind == CONC__LOCK_RWLOCK_READ;
}

/* The detail of a refused acquisition (core/misuse.h): the lock hooks serve
 * every lock call, so it names none. */
#define LD_REFUSED_DETAIL                                                               \
    "lock-order checking: taking this lock here inverts an order seen before "       \
    "(a possible deadlock; see the report)"

/* Some order is not in the cache: decided, and recorded, under ld_mu. */
__attribute__((noinline)) static int ld_acquire_slow(struct ld_thread *t,
                                                     struct conc__held_locks *hs,
                                                     const void *lock, enum conc__lock_kind kind)
{
    struct ld_who who;
    ld_who_here(t, &who);
    struct ld_text text = {0};
    int rc = 0, mode = atomic_load(&ld_mode);
    bool do_abort = false;
    pthread_mutex_lock(&ld_mu);
    ld_resync_locked(t, hs);
    struct ld_class *c = ld_lookup(lock, kind);
    t->pending_lock = lock;
    t->pending_cls = c;
    if (!c)
        goto out;
    /* First: does this acquisition close a cycle, or re-take a lock? */
    for (unsigned i = hs->nheld; i-- > 0;) {
        struct ld_held *h = &hs->held[i];
        if (!h->cls)
            continue;
        if (h->lock == lock) {
            if (ld_reentry_ok(h->kind, kind))
                continue;
            if (!h->cls->recursion_reported) {
                h->cls->recursion_reported = true;
                atomic_fetch_add(&ld_reports, 1);
                ld_report_recursion(&text, &who, h, kind, mode);
                do_abort = mode == CONC_LOCKDEP_ABORT;
            }
            if (mode == CONC_LOCKDEP_ERROR)
                rc = conc__misuse_at(CONC_EDEADLK, NULL,
                                     "lock-order checking: re-locking a lock the caller holds");
            goto out;
        }
        if (h->cls == c)
            continue;
        struct ld_edge *e = ld_edge_find(h->cls, c);
        if (e && !e->refused)
            continue;
        if (e && e->refused) {
            if (mode == CONC_LOCKDEP_ERROR) { /* reported when first refused */
                rc = conc__misuse_at(CONC_EDEADLK, NULL, LD_REFUSED_DETAIL);
                goto out;
            }
            e->refused = false; /* the mode changed: now an order like any other */
            continue;
        }
        struct ld_edge **path = NULL;
        size_t len = ld_find_path(c, h->cls, &path);
        if (len == 0)
            continue;
        atomic_fetch_add(&ld_reports, 1);
        ld_report_cycle(&text, &who, h, c, lock, kind, path, len, mode);
        free(path);
        if (mode == CONC_LOCKDEP_ERROR) {
            /* Kept as refused: refused again, not reported again. */
            if ((e = ld_edge_add(h->cls, c)) != NULL) {
                ld_edge_fill(e, &who, h->lock, h->kind, lock, kind);
                e->refused = true;
            }
            rc = conc__misuse_at(CONC_EDEADLK, NULL, LD_REFUSED_DETAIL);
            goto out;
        }
        do_abort = mode == CONC_LOCKDEP_ABORT;
        break; /* LOG: the order is added below, so this cycle is reported once */
    }
    /* Then: record every new order held -> lock of this context. */
    for (unsigned i = hs->nheld; i-- > 0;) {
        struct ld_held *h = &hs->held[i];
        if (!h->cls || h->lock == lock || h->cls == c)
            continue;
        struct ld_edge *e = ld_edge_find(h->cls, c);
        if (!e && (e = ld_edge_add(h->cls, c)) != NULL)
            ld_edge_fill(e, &who, h->lock, h->kind, lock, kind);
        if (e && !e->refused)
            ld_ec_put(t, h->cls, c);
    }
out:
    pthread_mutex_unlock(&ld_mu);
    ld_emit(t, &text, do_abort);
    return rc;
}

int conc__lockdep_acquire(const void *lock, enum conc__lock_kind kind, unsigned flags)
{
    struct ld_thread *t = ld_thread_get();
    if (!t || t->busy)
        return 0;
    struct conc__held_locks *hs = ld_held_get(t);
    ld_sync(t, hs);
    struct ld_class *c = ld_class_of(t, lock, kind);
    t->pending_lock = lock;
    t->pending_cls = c;
    if (!c || !hs || (flags & CONC__LK_TRY))
        return 0; /* a try cannot deadlock: recorded as held, never checked */
    for (unsigned i = hs->nheld; i-- > 0;) {
        const struct ld_held *h = &hs->held[i];
        if (h->lock == lock) {
            if (ld_reentry_ok(h->kind, kind))
                continue;
            return ld_acquire_slow(t, hs, lock, kind);
        }
        if (h->cls == c)
            continue;
        unsigned s = ld_ec_slot(h->cls, c);
        if (conc__unlikely(t->ec[s].from != h->cls || t->ec[s].to != c))
            return ld_acquire_slow(t, hs, lock, kind);
    }
    return 0;
}

void conc__lockdep_acquired(const void *lock, enum conc__lock_kind kind)
{
    struct ld_thread *t = ld_thread_get();
    if (!t || t->busy)
        return;
    struct conc__held_locks *hs = ld_held_get(t);
    if (!hs)
        return;
    struct ld_class *c;
    if (conc__likely(t->pending_lock == lock)) {
        c = t->pending_cls; /* only stored: a stale one is looked up again at the next sync */
    } else {
        ld_sync(t, hs);
        c = ld_class_of(t, lock, kind);
    }
    t->pending_lock = NULL;
    if (conc__unlikely(hs->nheld == LD_MAX_HELD)) {
        if (!hs->overflow_reported) {
            hs->overflow_reported = true;
            t->busy = true;
            conc__diag_report("conc lockdep: a thread holds more than %d locks; "
                              "the ones above are not checked\n",
                              LD_MAX_HELD);
            t->busy = false;
        }
        return;
    }
    hs->held[hs->nheld++] = (struct ld_held){lock, c, kind};
}

void conc__lockdep_failed(const void *lock, enum conc__lock_kind kind)
{
    (void)lock, (void)kind;
    struct ld_thread *t = conc__tls.lockdep;
    if (t && !t->busy)
        t->pending_lock = NULL;
}

void conc__lockdep_release(const void *lock, enum conc__lock_kind kind)
{
    (void)kind;
    struct ld_thread *t = conc__tls.lockdep;
    struct conc__held_locks *hs = conc__context()->held;
    if (!t || t->busy || !hs)
        return;
    for (unsigned i = hs->nheld; i-- > 0;) {
        if (hs->held[i].lock == lock) {
            if (i + 1 < hs->nheld) /* released out of order */
                memmove(&hs->held[i], &hs->held[i + 1], (hs->nheld - i - 1) * sizeof hs->held[0]);
            hs->nheld--;
            return;
        }
    }
    /* Not held here: taken while checking was off, or (a read lock, a
     * semaphore) by another context. */
}

/* ---- classes from init, destroy and names ---- */

void conc__lockdep_init_lock(const void *lock, enum conc__lock_kind kind, const char *name,
                             const char *site)
{
    (void)kind;
    pthread_mutex_lock(&ld_mu);
    struct ld_key *k = name   ? ld_key_intern(LD_KEY_NAME, name)
                       : site ? ld_key_intern(LD_KEY_SITE, site)
                              : NULL;
    bool stale = ld_unmap((uintptr_t)lock);
    if (k)
        ld_map((uintptr_t)lock, k);
    if (stale)
        ld_bump_gen();
    pthread_mutex_unlock(&ld_mu);
}

void conc__lockdep_forget(const void *lock)
{
    pthread_mutex_lock(&ld_mu);
    if (ld_unmap((uintptr_t)lock))
        ld_bump_gen();
    pthread_mutex_unlock(&ld_mu);
}

/* For lock statistics and the watchdog (lockstat.c): the name or init site
 * of lock's class, copied into buf; 1, or 0 when it has none. */
int conc__lock_class_name(const void *lock, char *buf,
                                                                size_t size)
{
    if (!atomic_load_explicit(&conc__lockdep_used, memory_order_relaxed) || size == 0)
        return 0;
    int found = 0;
    pthread_mutex_lock(&ld_mu);
    struct ld_lockent *e = ld_table_find(&ld_locks, &ld_lockent_ops, (uintptr_t)lock);
    if (e) {
        snprintf(buf, size, "%s", e->key->str);
        found = 1;
    }
    pthread_mutex_unlock(&ld_mu);
    return found;
}

int conc_lock_set_name(const void *lock, const char *name)
{
    if (!lock)
        return CONC__MISUSE(CONC_EINVAL, "NULL lock");
    if (!name)
        return CONC__MISUSE(CONC_EINVAL, "NULL name");
    int rc = CONC_ENOMEM;
    pthread_mutex_lock(&ld_mu);
    struct ld_key *k = ld_key_intern(LD_KEY_NAME, name);
    if (k) {
        ld_unmap((uintptr_t)lock);
        rc = ld_map((uintptr_t)lock, k);
        ld_bump_gen();
    }
    pthread_mutex_unlock(&ld_mu);
    return rc;
}

/* ---- modes ---- */

void conc__lockdep_fork_prepare(void)
{
    pthread_mutex_lock(&ld_mu);
}

void conc__lockdep_fork_release(void)
{
    pthread_mutex_unlock(&ld_mu);
}

int conc_lockdep_set_mode(conc_lockdep_mode mode)
{
    if (mode < CONC_LOCKDEP_OFF || mode > CONC_LOCKDEP_ABORT)
        return CONC__MISUSE(CONC_EINVAL, "unknown lock-order checking mode");
    if (mode != CONC_LOCKDEP_OFF) {
        /* backtrace() loads its unwinder on first use: not inside a hook. */
        void *frame[1];
        backtrace(frame, 1);
    }
    pthread_mutex_lock(&ld_mu);
    int old = atomic_exchange(&ld_mode, (int)mode);
    if (old == CONC_LOCKDEP_OFF && mode != CONC_LOCKDEP_OFF) {
        ld_epoch++; /* releases went unseen while off: held stacks are stale */
        ld_bump_gen();
    }
    conc__diag_enable(CONC__DIAG_LOCKDEP, mode != CONC_LOCKDEP_OFF);
    pthread_mutex_unlock(&ld_mu);
    return 0;
}

conc_lockdep_mode conc_lockdep_get_mode(void)
{
    return (conc_lockdep_mode)atomic_load(&ld_mode);
}

int64_t conc_lockdep_reports(void)
{
    return atomic_load(&ld_reports);
}

int conc_lockdep_reset(void)
{
    pthread_mutex_lock(&ld_mu);
    while (ld_classes) {
        struct ld_class *c = ld_classes;
        ld_classes = c->next_all;
        if (c->key)
            c->key->cls = NULL;
        free(c->edges);
        free(c);
    }
    free(ld_aclass.b);
    ld_aclass = (struct ld_table){0};
    ld_nclasses = 0;
    atomic_store(&ld_reports, 0);
    ld_bump_gen();
    pthread_mutex_unlock(&ld_mu);
    return 0;
}

void conc__lockdep_env(const char *value)
{
    static const struct {
        const char *word;
        conc_lockdep_mode mode;
    } words[] = {{"1", CONC_LOCKDEP_LOG},       {"log", CONC_LOCKDEP_LOG},
                 {"error", CONC_LOCKDEP_ERROR}, {"abort", CONC_LOCKDEP_ABORT},
                 {"0", CONC_LOCKDEP_OFF},       {"off", CONC_LOCKDEP_OFF}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (!strcmp(value, words[i].word)) {
            conc_lockdep_set_mode(words[i].mode);
            return;
        }
    }
    fprintf(stderr,
            "conc: CONC_LOCKDEP=%s not understood (1, log, error, abort or 0); "
            "lock-order checking stays off\n",
            value);
}
