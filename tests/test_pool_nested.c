/* pool.h, nested tasks: fork-join recursion (fib, quicksort) with 1, 2 and 8
 * workers, help-while-waiting on a single worker (deep chains past the help
 * depth limit, wide fans waited with conc_future_result, conc_wait and
 * as_completed), isolation (a waiting task's worker runs only the task's own
 * subtree, never an unrelated task that would need a lock the waiting task
 * holds), lock ownership by task (conc__self() is the running task, not the
 * thread), and EDEADLK when a task waits on its own future.
 *
 * Isolation is built deterministically: a task waits on a future of another
 * pool that a conc_event holds RUNNING, and the test reads that future's
 * waiter count to know the worker is asleep in the wait. */
#include "test.h"

#include "exec/future_impl.h"
#include "exec/pool/pool_impl.h"
#include "core/tls.h"

#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

/* The task's status, its result value in *value. */
static int result_of(conc_future *f, int64_t *value)
{
    conc_result r;
    int st = conc_future_result(f, &r);
    if (value)
        *value = r.value;
    return st;
}

/* Sizes for the sanitizer builds (scale 0.1) and make stress (scale 10). */
static int fib_n(void)
{
    double s = conc_test_scale();
    return s < 0.5 ? 24 : s >= 5 ? 35 : 32;
}

/* ---------------------------------------------------------------- fib */

enum { FIB_CUTOFF = 12 };

struct fib_call {
    conc_pool *p;
    int n;
};

static int64_t fib_seq(int n)
{
    return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

static int64_t fib_par(conc_pool *p, int n);

static int fib_task(void *arg, conc_result *out)
{
    struct fib_call *c = arg;
    out->value = fib_par(c->p, c->n);
    return 0;
}

/* A task per call above the cutoff: fib(n - 1) forked, fib(n - 2) here. */
static int64_t fib_par(conc_pool *p, int n)
{
    if (n <= FIB_CUTOFF)
        return fib_seq(n);
    struct fib_call c = {p, n - 1};
    conc_future *f = conc_test_submit(p, fib_task, &c);
    int64_t b = fib_par(p, n - 2);
    int64_t a;
    assert_int_equal(result_of(f, &a), 0);
    conc_test_release(f);
    return a + b;
}

static int64_t fib_iter(int n)
{
    int64_t a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        int64_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

static void nested_fib_stress(void **state)
{
    (void)state;
    const int workers[] = {1, 2, 8};
    int n = fib_n();
    for (size_t k = 0; k < sizeof workers / sizeof workers[0]; k++) {
        conc_pool *p = conc_test_pool_new(workers[k]);
        struct fib_call c = {p, n};
        int64_t t0 = conc_now_ns();
        conc_future *f = conc_test_submit(p, fib_task, &c);
        int64_t v;
        assert_int_equal(result_of(f, &v), 0);
        print_message("fib(%d) = %lld on %d workers: %.1f ms\n", n, (long long)v, workers[k],
                      (double)(conc_now_ns() - t0) / 1e6);
        assert_int_equal(v, fib_iter(n));
        conc_test_release(f);
        conc_test_pool_free(p);
    }
}

/* ---------------------------------------------------------- quicksort */

enum { QS_CUTOFF = 16384 };

struct qs_call {
    conc_pool *p;
    int *a;
    size_t n;
};

static void insertion_sort(int *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static int median3(int x, int y, int z)
{
    return x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
}

/* Hoare partition around the median of three: returns k with a[0..k) <= pivot
 * <= a[k..n), both sides non-empty. */
static size_t partition(int *a, size_t n)
{
    int pivot = median3(a[0], a[n / 2], a[n - 1]);
    size_t i = 0, j = n - 1;
    for (;;) {
        while (a[i] < pivot)
            i++;
        while (a[j] > pivot)
            j--;
        if (i >= j)
            return j + 1 < n ? j + 1 : n - 1;
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
    }
}

static void qs_seq(int *a, size_t n)
{
    while (n > 32) {
        size_t k = partition(a, n);
        if (k < n - k) {
            qs_seq(a, k);
            a += k;
            n -= k;
        } else {
            qs_seq(a + k, n - k);
            n = k;
        }
    }
    insertion_sort(a, n);
}

static void qs_par(conc_pool *p, int *a, size_t n);

static int qs_task(void *arg, conc_result *out)
{
    (void)out;
    struct qs_call *c = arg;
    qs_par(c->p, c->a, c->n);
    return 0;
}

/* The left part forked as a task, the right part sorted here. */
static void qs_par(conc_pool *p, int *a, size_t n)
{
    if (n <= QS_CUTOFF) {
        qs_seq(a, n);
        return;
    }
    size_t k = partition(a, n);
    struct qs_call left = {p, a, k};
    conc_future *f = conc_test_submit(p, qs_task, &left);
    qs_par(p, a + k, n - k);
    assert_int_equal(conc_future_result(f, NULL), 0);
    conc_test_release(f);
}

struct checksum {
    uint64_t sum, xr, mix;
};

static struct checksum checksum_of(const int *a, size_t n)
{
    struct checksum c = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        uint64_t v = (uint64_t)(uint32_t)a[i];
        c.sum += v;
        c.xr ^= v * 0x9e3779b97f4a7c15ull;
        c.mix += (v * 0xff51afd7ed558ccdull) ^ (v >> 7); /* order-free, value-sensitive */
    }
    return c;
}

static void nested_quicksort_stress(void **state)
{
    (void)state;
    size_t n = (size_t)conc_test_scaled(10000000, 100000);
    int *a = malloc(n * sizeof *a);
    assert_non_null(a);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        a[i] = (int)(x % (n / 4 + 1)) - (int)(n / 8); /* duplicates and negatives */
    }
    struct checksum before = checksum_of(a, n);
    conc_pool *p = NULL;
    assert_int_equal(conc_pool_create(&p, NULL), 0);
    struct qs_call c = {p, a, n};
    int64_t t0 = conc_now_ns();
    conc_future *f = conc_test_submit(p, qs_task, &c);
    assert_int_equal(conc_future_result(f, NULL), 0);
    print_message("quicksort of %zu ints on %d workers: %.1f ms\n", n, (int)conc_pool_workers(p),
                  (double)(conc_now_ns() - t0) / 1e6);
    conc_test_release(f);
    conc_test_pool_free(p);
    for (size_t i = 1; i < n; i++)
        if (a[i - 1] > a[i])
            fail_msg("not sorted at %zu: %d > %d", i, a[i - 1], a[i]);
    struct checksum after = checksum_of(a, n);
    assert_int_equal(after.sum, before.sum);
    assert_int_equal(after.xr, before.xr);
    assert_int_equal(after.mix, before.mix);
    free(a);
}

/* ------------------------------------------------- help-while-waiting */

/* chain(d) submits chain(d - 1) and waits for it: with one worker every wait
 * must run the child itself, deeper than the help depth limit. */
struct chain {
    conc_pool *p;
    int depth;
    _Atomic int *ran;
};

static int chain_task(void *arg, conc_result *out)
{
    struct chain *c = arg;
    atomic_fetch_add(c->ran, 1);
    if (c->depth == 0) {
        out->value = 0;
        return 0;
    }
    struct chain next = {c->p, c->depth - 1, c->ran};
    conc_future *f = conc_test_submit(c->p, chain_task, &next);
    int64_t v;
    assert_int_equal(result_of(f, &v), 0);
    conc_test_release(f);
    out->value = v + 1;
    return 0;
}

static void nested_deep_chain_one_worker(void **state)
{
    (void)state;
    const int depth = 3 * CONC__HELP_DEPTH_MAX;
    conc_pool *p = conc_test_pool_new(1);
    _Atomic int ran = 0;
    struct chain c = {p, depth, &ran};
    conc_future *f = conc_test_submit(p, chain_task, &c);
    int64_t v;
    assert_int_equal(result_of(f, &v), 0);
    assert_int_equal(v, depth);
    assert_int_equal(atomic_load(&ran), depth + 1);
    conc_test_release(f);
    conc_test_pool_free(p);
}

/* A fan of children waited every way a task can wait, on one worker. */
struct fan {
    conc_pool *p;
    _Atomic int runs[64];
    int wait_rc, first_rc, ac_yields, ac_end_rc;
};

struct fan_child {
    struct fan *fan;
    int i;
};

static int fan_child_task(void *arg, conc_result *out)
{
    struct fan_child *c = arg;
    atomic_fetch_add(&c->fan->runs[c->i], 1);
    out->value = c->i;
    return 0;
}

static int fan_task(void *arg, conc_result *out)
{
    (void)out;
    struct fan *fan = arg;
    enum { N = 48 };
    struct fan_child kids[N];
    conc_future *f[N];
    for (int i = 0; i < N; i++) {
        kids[i] = (struct fan_child){fan, i};
        f[i] = conc_test_submit(fan->p, fan_child_task, &kids[i]);
    }
    /* The first 16 in reverse order: the newest-first deque is no help. */
    for (int i = 15; i >= 0; i--) {
        int64_t v;
        assert_int_equal(result_of(f[i], &v), 0);
        assert_int_equal(v, i);
    }
    /* The next 16 with conc_wait: FIRST_COMPLETED, then ALL_COMPLETED. */
    fan->first_rc = conc_wait(f + 16, 16, CONC_FIRST_COMPLETED, NULL);
    bool done[16];
    fan->wait_rc = conc_wait(f + 16, 16, CONC_ALL_COMPLETED, done);
    for (int i = 0; i < 16; i++)
        assert_true(done[i]);
    /* The last 16 with as_completed. */
    conc_as_completed *it = NULL;
    assert_int_equal(conc_as_completed_create(&it, f + 32, 16), 0);
    conc_future *g;
    int rc;
    while ((rc = conc_as_completed_next(it, &g)) == 0) {
        fan->ac_yields++;
        conc_test_release(g);
    }
    fan->ac_end_rc = rc;
    assert_int_equal(conc_as_completed_destroy(it), 0);
    for (int i = 0; i < N; i++)
        conc_test_release(f[i]);
    return 0;
}

static void nested_wide_fan_one_worker(void **state)
{
    (void)state;
    conc_pool *p = conc_test_pool_new(1);
    static struct fan fan;
    memset(&fan, 0, sizeof fan);
    fan.p = p;
    conc_future *f = conc_test_submit(p, fan_task, &fan);
    assert_int_equal(conc_future_result(f, NULL), 0);
    assert_int_equal(fan.first_rc, 0);
    assert_int_equal(fan.wait_rc, 0);
    assert_int_equal(fan.ac_yields, 16);
    assert_int_equal(fan.ac_end_rc, CONC_ENOENT);
    for (int i = 0; i < 48; i++)
        assert_int_equal(atomic_load(&fan.runs[i]), 1);
    conc_test_release(f);
    conc_test_pool_free(p);
}

/* ------------------------------------------------------------ isolation */

/* A holds mutex m and waits on g, a future of another pool held RUNNING. Its
 * one worker may run B (A's own child) meanwhile, but never C1 (an unrelated
 * task already in the worker's deque, below A's mark) nor C2 (submitted from
 * outside while A waits): either would find m held by A. */
struct iso {
    conc_pool *p;
    conc_mutex m;
    conc_future *g;
    uintptr_t a_self;
    pthread_t a_thread;
    _Atomic bool a_waiting, a_done, b_ran;
    bool b_same_thread, b_self_differs;
    int b_trylock_rc, b_unlock_rc;
};

struct iso_c {
    struct iso *iso;
    _Atomic bool ran;
    bool saw_a_done;
    int trylock_rc, unlock_rc;
    uintptr_t self;
};

static int iso_b(void *arg, conc_result *out)
{
    (void)out;
    struct iso *s = arg;
    /* Run while A waits, on A's worker thread, as a task of its own. */
    s->b_same_thread = pthread_equal(pthread_self(), s->a_thread);
    s->b_self_differs = conc__self() != s->a_self && conc__self() == (uintptr_t)conc__current_task();
    s->b_trylock_rc = conc_mutex_lock_timed(&s->m, 0); /* A holds it: not ours */
    s->b_unlock_rc = conc_mutex_unlock(&s->m);
    atomic_store(&s->b_ran, true);
    return 0;
}

static int iso_a(void *arg, conc_result *out)
{
    (void)out;
    struct iso *s = arg;
    assert_int_equal(conc_mutex_lock(&s->m), 0);
    s->a_self = conc__self();
    s->a_thread = pthread_self();
    conc_future *b = conc_test_submit(s->p, iso_b, s);
    atomic_store(&s->a_waiting, true);
    assert_int_equal(conc_future_wait(s->g), 0);
    assert_int_equal(conc_future_result(b, NULL), 0);
    conc_test_release(b);
    atomic_store(&s->a_done, true);
    assert_int_equal(conc_mutex_unlock(&s->m), 0);
    return 0;
}

static int iso_c(void *arg, conc_result *out)
{
    (void)out;
    struct iso_c *c = arg;
    c->saw_a_done = atomic_load(&c->iso->a_done);
    c->self = conc__self();
    c->trylock_rc = conc_mutex_lock_timed(&c->iso->m, 0);
    c->unlock_rc = c->trylock_rc == 0 ? conc_mutex_unlock(&c->iso->m) : 1;
    atomic_store(&c->ran, true);
    return 0;
}

static void check_c(struct iso_c *c, struct iso *s, conc_future *f)
{
    assert_int_equal(conc_future_result(f, NULL), 0);
    assert_true(atomic_load(&c->ran));
    assert_true(c->saw_a_done);
    assert_int_equal(c->trylock_rc, 0);
    assert_int_equal(c->unlock_rc, 0);
    assert_true(c->self != s->a_self);
}

static void nested_isolation_waiting_task_runs_only_its_subtree(void **state)
{
    (void)state;
    static struct iso s;
    memset(&s, 0, sizeof s);
    assert_int_equal(conc_mutex_init(&s.m, NULL), 0);
    s.p = conc_test_pool_new(1);
    conc_pool *other = conc_test_pool_new(1);

    /* g: running on the other pool until released. */
    struct conc_test_gate hg, hz;
    conc_test_gate_init(&hg, 0, 0);
    conc_test_gate_init(&hz, 0, 0);
    s.g = conc_test_submit_running(other, &hg);

    /* z holds the worker while a then c1 queue up behind it: the worker
     * later takes both at once, runs a and keeps c1 in its deque. */
    conc_future *z = conc_test_submit_running(s.p, &hz);
    static struct iso_c c1, c2;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    c1.iso = c2.iso = &s;
    conc_future *fa = conc_test_submit(s.p, iso_a, &s);
    conc_future *fc1 = conc_test_submit(s.p, iso_c, &c1);
    conc_test_gate_open(&hz);

    /* a is asleep on g once g's waiter count shows it. */
    conc_test_await_count(&s.g->wq.nwaiters, 1);
    assert_true(atomic_load(&s.a_waiting));
    conc_future *fc2 = conc_test_submit(s.p, iso_c, &c2);
    /* While a waits: its child b ran (helping), c1 and c2 did not. */
    assert_true(atomic_load(&s.b_ran));
    assert_true(s.b_same_thread);
    assert_true(s.b_self_differs);
    assert_int_equal(s.b_trylock_rc, CONC_ETIMEDOUT);
    assert_int_equal(s.b_unlock_rc, CONC_EPERM);
    assert_false(atomic_load(&c1.ran));
    assert_false(atomic_load(&c2.ran));
    assert_false(conc_future_running(fc1));
    assert_false(conc_future_done(fc1));
    assert_false(conc_future_done(fc2));
    assert_true(conc_future_running(fa));

    conc_test_gate_open(&hg);
    assert_int_equal(conc_future_result(fa, NULL), 0);
    check_c(&c1, &s, fc1);
    check_c(&c2, &s, fc2);

    conc_test_release(z);
    conc_test_release(fa);
    conc_test_release(fc1);
    conc_test_release(fc2);
    conc_test_release(s.g);
    conc_test_pool_free(s.p);
    conc_test_pool_free(other);
    conc_test_gate_destroy(&hg);
    conc_test_gate_destroy(&hz);
    assert_int_equal(conc_mutex_destroy(&s.m), 0);
}

/* ------------------------------------------------------ identity, EDEADLK */

/* Inside a task conc__self() is the task (its future), not the thread nor
 * the parent; a child run inline on the parent's stack has its own, and the
 * parent's is back when the child returns. Outside: the thread. */
struct ident {
    conc_pool *p;
    conc_future *parent_f; /* set before the parent can wait on anything */
    uintptr_t parent_self, parent_thread, child_self, child_thread, parent_self_after;
    conc_future *child_task_self, *parent_task_self;
    conc_future *child_f;
    int child_own_wait_rc, child_own_result_rc, child_parent_wait_rc;
    int parent_own_wait_rc;
};

static int ident_child(void *arg, conc_result *out)
{
    (void)out;
    struct ident *id = arg;
    id->child_self = conc__self();
    id->child_thread = (uintptr_t)__builtin_thread_pointer();
    id->child_task_self = conc__current_task();
    id->child_own_wait_rc = conc_future_wait(id->child_f);
    id->child_own_result_rc = conc_future_result(id->child_f, NULL);
    /* The parent is not done, nor ours: a timed wait just times out. */
    id->child_parent_wait_rc = conc_future_wait_timed(id->parent_task_self, 0);
    return 0;
}

static int ident_parent(void *arg, conc_result *out)
{
    (void)out;
    struct ident *id = arg;
    id->parent_self = conc__self();
    id->parent_thread = (uintptr_t)__builtin_thread_pointer();
    id->parent_task_self = conc__current_task();
    id->parent_own_wait_rc = conc_future_wait(conc__current_task());
    /* One worker: the child cannot run before we wait, so child_f is set. */
    id->child_f = conc_test_submit(id->p, ident_child, id);
    assert_int_equal(conc_future_result(id->child_f, NULL), 0);
    id->parent_self_after = conc__self();
    conc_test_release(id->child_f);
    return 0;
}

static void nested_task_identity_and_own_future_edeadlk(void **state)
{
    (void)state;
    assert_null(conc__current_task());
    assert_int_equal(conc__self(), (uintptr_t)__builtin_thread_pointer());
    struct ident id;
    memset(&id, 0, sizeof id);
    id.p = conc_test_pool_new(1);
    id.parent_f = conc_test_submit(id.p, ident_parent, &id);
    assert_int_equal(conc_future_result(id.parent_f, NULL), 0);

    assert_ptr_equal(id.parent_task_self, id.parent_f);
    assert_int_equal(id.parent_self, (uintptr_t)id.parent_f);
    assert_true(id.parent_self != id.parent_thread);
    assert_int_equal(id.parent_own_wait_rc, CONC_EDEADLK);

    assert_int_equal(id.child_thread, id.parent_thread); /* helped inline */
    assert_ptr_equal(id.child_task_self, id.child_f);
    assert_int_equal(id.child_self, (uintptr_t)id.child_f);
    assert_true(id.child_self != id.parent_self);
    assert_int_equal(id.parent_self_after, id.parent_self);
    assert_int_equal(id.child_own_wait_rc, CONC_EDEADLK);
    assert_int_equal(id.child_own_result_rc, CONC_EDEADLK);
    assert_int_equal(id.child_parent_wait_rc, CONC_ETIMEDOUT);

    assert_null(conc__current_task()); /* the test thread is no task */
    conc_test_release(id.parent_f);
    conc_test_pool_free(id.p);
}

/* Fork-join on several workers: children get stolen, and a waiting parent
 * never loses a child: every leaf is counted exactly once. */
struct tree {
    conc_pool *p;
    int depth;
    _Atomic long *leaves;
};

static int tree_task(void *arg, conc_result *out)
{
    struct tree *t = arg;
    if (t->depth == 0) {
        atomic_fetch_add(t->leaves, 1);
        out->value = 1;
        return 0;
    }
    struct tree kids[3];
    conc_future *f[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = (struct tree){t->p, t->depth - 1, t->leaves};
        f[i] = conc_test_submit(t->p, tree_task, &kids[i]);
    }
    int64_t sum = 0;
    assert_int_equal(conc_wait(f, 3, CONC_ALL_COMPLETED, NULL), 0);
    for (int i = 0; i < 3; i++) {
        int64_t v;
        assert_int_equal(result_of(f[i], &v), 0);
        sum += v;
        conc_test_release(f[i]);
    }
    out->value = sum;
    return 0;
}

static void nested_tree_many_workers_stress(void **state)
{
    (void)state;
    int depth = conc_test_scale() < 0.5 ? 7 : conc_test_scale() >= 5 ? 11 : 9;
    long want = 1;
    for (int i = 0; i < depth; i++)
        want *= 3;
    const int workers[] = {1, 2, 4, 8};
    for (size_t k = 0; k < sizeof workers / sizeof workers[0]; k++) {
        conc_pool *p = conc_test_pool_new(workers[k]);
        _Atomic long leaves = 0;
        struct tree t = {p, depth, &leaves};
        conc_future *f = conc_test_submit(p, tree_task, &t);
        int64_t v;
        assert_int_equal(result_of(f, &v), 0);
        assert_int_equal(v, want);
        assert_int_equal(atomic_load(&leaves), want);
        conc_test_release(f);
        conc_test_pool_free(p);
    }
}

CONC_TEST_MAIN(
    cmocka_unit_test(nested_fib_stress),
    cmocka_unit_test(nested_quicksort_stress),
    cmocka_unit_test(nested_deep_chain_one_worker),
    cmocka_unit_test(nested_wide_fan_one_worker),
    cmocka_unit_test(nested_isolation_waiting_task_runs_only_its_subtree),
    cmocka_unit_test(nested_task_identity_and_own_future_edeadlk),
    cmocka_unit_test(nested_tree_many_workers_stress))
