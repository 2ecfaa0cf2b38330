/* lincheck.h — a linearizability checker for histories of a bounded FIFO
 * queue, for tests (header only: every function is static inline).
 *
 * A history is the list of put/get operations several threads made, each with
 * the monotonic time it was called and the time it returned. It is
 * linearizable when each operation can be given one instant inside its
 * interval such that, taken in the order of those instants, the operations
 * are a legal run of a sequential bounded FIFO of capacity C:
 *   - a put that succeeded appends its value; it needs size < C;
 *   - a put that failed (CONC_EFULL, at once or after its timeout) changes
 *     nothing and needs size == C at its instant: it is legal if the queue
 *     was full at SOME point of its interval;
 *   - a get that returned a value removes the front, which must be that value;
 *   - a get that failed (CONC_EEMPTY) changes nothing and needs size == 0 at
 *     its instant.
 * Capacity 0 means unbounded: a failed put is then never legal.
 *
 * The search is Wing & Gong's, as porcupine and Knossos do it: take an
 * operation that could come first (its call precedes every return still
 * pending), apply it to the model if legal, recurse, backtrack. States already
 * explored — the set of operations linearized (a 64-bit set) plus the model's
 * exact contents — are memoised, so each is explored once. It needs every
 * operation to have returned (no pending operation) and at most LC_MAX_OPS.
 *
 * The checker knows nothing about conc_queue: any bounded FIFO (the lock-free
 * ring, a deliberately broken ring driven through forced interleavings) is
 * checked the same way; lc_log records a thread's operations for it. */
#ifndef CONC_TEST_LINCHECK_H
#define CONC_TEST_LINCHECK_H

#include "conc/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC_MAX_OPS 64

/* Explored states before lc_check gives up with LC_TOO_MANY_STATES (the
 * memo table then holds up to twice that many 80-byte slots: 40 MiB). A
 * history of a few threads, each making its operations one after another,
 * needs far fewer: every state is a prefix of each thread's operations plus
 * the queue's contents. Only many mutually overlapping operations can come
 * near it (the search is exponential in the worst case, as it is for
 * porcupine and Knossos). */
#ifndef LC_MAX_STATES
#define LC_MAX_STATES (1L << 18)
#endif

enum lc_kind { LC_PUT = 0, LC_GET = 1 };

struct lc_op {
    enum lc_kind kind;
    bool ok;        /* put: went in; get: returned an item. false: EFULL / EEMPTY */
    uint64_t value; /* put: its value, unique among the puts; get: the value
                       returned (ignored when !ok) */
    int64_t call;   /* stamp taken before the call ... */
    int64_t ret;    /* ... and after it returned; call <= ret */
    int thread;     /* for messages only */
};

enum lc_result {
    LC_LINEARIZABLE = 0,
    LC_NOT_LINEARIZABLE = 1,
    LC_BAD_HISTORY = -1,     /* too many ops, ret < call, a put value repeated */
    LC_TOO_MANY_STATES = -2, /* gave up at the state limit */
};

struct lc_report {
    long states; /* distinct states explored */
    /* Linearizable: a witness, the op indices in linearization order.
     * Otherwise the longest legal prefix the search reached (a hint at where
     * the history breaks). */
    int order[LC_MAX_OPS];
    int order_len;
};

/* ---- the search ---- */

/* The sequential model: the indices of the put ops in the queue, front first.
 * Kept packed at the start so equal contents compare equal. */
struct lc__model {
    uint8_t len;
    uint8_t items[LC_MAX_OPS];
};

struct lc__slot {
    uint64_t done; /* set of linearized ops */
    bool used;
    struct lc__model m;
};

struct lc__ctx {
    const struct lc_op *ops;
    int n;
    size_t cap; /* 0: unbounded */
    uint64_t all;
    struct lc__slot *tab;
    size_t tab_size, tab_used, max_states;
    int order[LC_MAX_OPS];
    struct lc_report *rep;
};

static inline uint64_t lc__hash(uint64_t done, const struct lc__model *m)
{
    uint64_t h = (done ^ m->len) * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < m->len; i++)
        h = (h ^ m->items[i]) * 0x100000001B3ull;
    return h ^ (h >> 31);
}

static inline bool lc__same(const struct lc__slot *s, uint64_t done, const struct lc__model *m)
{
    return s->done == done && s->m.len == m->len && memcmp(s->m.items, m->items, m->len) == 0;
}

static inline void lc__insert(struct lc__slot *tab, size_t size, uint64_t done,
                              const struct lc__model *m)
{
    size_t i = (size_t)lc__hash(done, m) & (size - 1);
    while (tab[i].used)
        i = (i + 1) & (size - 1);
    tab[i].used = true;
    tab[i].done = done;
    tab[i].m = *m;
}

/* Doubles the memo table. Returns false when out of memory. */
static inline bool lc__grow(struct lc__ctx *c)
{
    size_t size = c->tab_size ? c->tab_size * 2 : 1024;
    struct lc__slot *tab = calloc(size, sizeof *tab);
    if (!tab)
        return false;
    for (size_t i = 0; i < c->tab_size; i++)
        if (c->tab[i].used)
            lc__insert(tab, size, c->tab[i].done, &c->tab[i].m);
    free(c->tab);
    c->tab = tab;
    c->tab_size = size;
    return true;
}

/* Records a state. Returns 1 if it is new, 0 if it was explored already, -1
 * past LC_MAX_STATES or out of memory. */
static inline int lc__memo_add(struct lc__ctx *c, uint64_t done, const struct lc__model *m)
{
    if (c->tab_size) {
        size_t i = (size_t)lc__hash(done, m) & (c->tab_size - 1);
        for (; c->tab[i].used; i = (i + 1) & (c->tab_size - 1))
            if (lc__same(&c->tab[i], done, m))
                return 0;
    }
    if (c->tab_used >= c->max_states)
        return -1;
    if (2 * (c->tab_used + 1) > c->tab_size && !lc__grow(c))
        return -1;
    lc__insert(c->tab, c->tab_size, done, m);
    c->tab_used++;
    return 1;
}

/* Applies op i to model m, into *out. Returns false if it is illegal there. */
static inline bool lc__apply(const struct lc__ctx *c, int i, const struct lc__model *m,
                             struct lc__model *out)
{
    const struct lc_op *op = &c->ops[i];
    bool full = c->cap != 0 && m->len >= c->cap;
    *out = *m;
    if (op->kind == LC_PUT) {
        if (!op->ok)
            return full;
        if (full)
            return false;
        out->items[out->len++] = (uint8_t)i;
        return true;
    }
    if (!op->ok)
        return m->len == 0;
    if (m->len == 0 || c->ops[m->items[0]].value != op->value)
        return false;
    out->len--;
    memmove(out->items, m->items + 1, out->len);
    return true;
}

/* Tries every operation that may come next from state (done, m); depth ops
 * are linearized, in c->order[0..depth). Returns 1 when the rest linearizes,
 * 0 when it cannot, -1 when the search gave up. */
static inline int lc__search(struct lc__ctx *c, uint64_t done, const struct lc__model *m, int depth)
{
    if (c->rep && depth > c->rep->order_len) {
        memcpy(c->rep->order, c->order, (size_t)depth * sizeof c->order[0]);
        c->rep->order_len = depth;
    }
    if (done == c->all)
        return 1;
    int fresh = lc__memo_add(c, done, m);
    if (fresh <= 0)
        return fresh;
    /* An op may go next only if no pending op returned before it was called. */
    int64_t min_ret = INT64_MAX;
    for (int j = 0; j < c->n; j++)
        if (!(done >> j & 1) && c->ops[j].ret < min_ret)
            min_ret = c->ops[j].ret;
    for (int i = 0; i < c->n; i++) {
        struct lc__model next;
        if ((done >> i & 1) || c->ops[i].call > min_ret || !lc__apply(c, i, m, &next))
            continue;
        c->order[depth] = i;
        int r = lc__search(c, done | (uint64_t)1 << i, &next, depth + 1);
        if (r != 0)
            return r;
    }
    return 0;
}

static inline bool lc__valid(const struct lc_op *ops, int n)
{
    if (n < 0 || n > LC_MAX_OPS || (n > 0 && !ops))
        return false;
    for (int i = 0; i < n; i++) {
        if ((ops[i].kind != LC_PUT && ops[i].kind != LC_GET) || ops[i].ret < ops[i].call)
            return false;
        for (int j = 0; j < i && ops[i].kind == LC_PUT; j++)
            if (ops[j].kind == LC_PUT && ops[j].value == ops[i].value)
                return false;
    }
    return true;
}

/* Checks ops[0..n) against a FIFO of the given capacity (0: unbounded),
 * starting empty, exploring at most max_states states. rep (may be NULL)
 * receives the statistics and the witness. Returns an enum lc_result. */
static inline int lc_check_bounded(const struct lc_op *ops, int n, size_t capacity,
                                   size_t max_states, struct lc_report *rep)
{
    if (rep)
        memset(rep, 0, sizeof *rep);
    if (!lc__valid(ops, n))
        return LC_BAD_HISTORY;
    struct lc__ctx c = {.ops = ops, .n = n, .cap = capacity, .max_states = max_states, .rep = rep};
    c.all = n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
    struct lc__model empty = {0};
    int r = lc__search(&c, 0, &empty, 0);
    if (rep)
        rep->states = (long)c.tab_used;
    free(c.tab);
    return r > 0 ? LC_LINEARIZABLE : r == 0 ? LC_NOT_LINEARIZABLE : LC_TOO_MANY_STATES;
}

/* lc_check_bounded with LC_MAX_STATES. */
static inline int lc_check(const struct lc_op *ops, int n, size_t capacity, struct lc_report *rep)
{
    return lc_check_bounded(ops, n, capacity, (size_t)LC_MAX_STATES, rep);
}

/* ---- checking a witness, independently of the search ---- */

/* True if order[0..n) is a permutation of the ops that respects real time
 * (an op that returned before another was called comes first) and is a legal
 * sequential run of a FIFO of the given capacity. Tests use it to confirm the
 * witness lc_check gives for an accepted history. */
static inline bool lc_verify_order(const struct lc_op *ops, int n, size_t capacity,
                                   const int *order)
{
    if (n < 0 || n > LC_MAX_OPS)
        return false;
    uint64_t queue[LC_MAX_OPS];
    size_t head = 0, tail = 0; /* queue[head..tail): a put at most once each */
    bool seen[LC_MAX_OPS] = {false};
    for (int k = 0; k < n; k++) {
        int i = order[k];
        if (i < 0 || i >= n || seen[i])
            return false;
        seen[i] = true;
        for (int l = k + 1; l < n; l++)
            if (order[l] >= 0 && order[l] < n && ops[order[l]].ret < ops[i].call)
                return false;
        size_t len = tail - head;
        bool full = capacity != 0 && len >= capacity;
        const struct lc_op *op = &ops[i];
        if (op->kind == LC_PUT && op->ok) {
            if (full)
                return false;
            queue[tail++] = op->value;
        } else if (op->kind == LC_PUT) {
            if (!full)
                return false;
        } else if (op->ok) {
            if (len == 0 || queue[head] != op->value)
                return false;
            head++;
        } else if (len != 0) {
            return false;
        }
    }
    return true;
}

/* ---- recording ---- */

/* One thread's operations, in the order it made them. */
struct lc_log {
    int thread;
    int n;
    struct lc_op ops[LC_MAX_OPS];
};

/* Starts recording an operation: stamps its call. Call it right before the
 * operation; value is the put's value (ignored for a get). */
static inline struct lc_op *lc_log_call(struct lc_log *l, enum lc_kind kind, uint64_t value)
{
    if (l->n >= LC_MAX_OPS)
        abort(); /* a test sized its history wrong */
    struct lc_op *op = &l->ops[l->n++];
    op->kind = kind;
    op->value = kind == LC_PUT ? value : 0;
    op->ok = false;
    op->thread = l->thread;
    op->ret = INT64_MAX;
    op->call = conc_now_ns();
    return op;
}

/* Ends it, right after the operation returned: stamps the return and records
 * the outcome (and for a get that succeeded the value it returned). */
static inline void lc_log_return(struct lc_op *op, bool ok, uint64_t value)
{
    op->ret = conc_now_ns();
    op->ok = ok;
    if (op->kind == LC_GET)
        op->value = ok ? value : 0;
}

/* Appends the ops of logs[0..nlogs) to out (room for max). Returns how many
 * ops out holds, or -1 if they do not fit. */
static inline int lc_merge(const struct lc_log *logs, int nlogs, struct lc_op *out, int max)
{
    int n = 0;
    for (int t = 0; t < nlogs; t++) {
        if (logs[t].n > max - n)
            return -1;
        memcpy(out + n, logs[t].ops, (size_t)logs[t].n * sizeof *out);
        n += logs[t].n;
    }
    return n;
}

/* Prints a history, one op a line, times relative to the earliest call. */
static inline void lc_print(FILE *f, const struct lc_op *ops, int n)
{
    int64_t t0 = INT64_MAX;
    for (int i = 0; i < n; i++)
        t0 = ops[i].call < t0 ? ops[i].call : t0;
    for (int i = 0; i < n; i++)
        fprintf(f, "  #%-2d T%d %s %-6s %#llx  [%lld, %lld]\n", i, ops[i].thread,
                ops[i].kind == LC_PUT ? "put" : "get", ops[i].ok ? "ok" : "FAILED",
                (unsigned long long)ops[i].value, (long long)(ops[i].call - t0),
                (long long)(ops[i].ret - t0));
}

#endif
