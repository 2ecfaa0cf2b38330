/* Lock-order checking (conc/debug.h, src/lockdep.c): inversions between
 * threads that never actually deadlock are still reported (AB/BA across two
 * threads run one after the other, an ABC cycle across three), with the lock
 * names, the threads and the orders in the report text; consistent orders,
 * recursive mutexes used recursively and trylocks give no report; the modes
 * (LOG acquires, ERROR refuses with CONC_EDEADLK, ABORT aborts); self-deadlock
 * on a non-recursive mutex; classes by name, by init site and by address;
 * rwlocks, lock-like semaphores, condition waits and pool tasks (a task
 * helped in on a waiting worker does not inherit the worker's locks);
 * process-shared locks and counting semaphores stay out; off by default.
 *
 * Each acquisition sequence runs on its own named conc thread, joined before
 * the next starts, so nothing here can deadlock for real: the checker must
 * find the cycle from the orders alone. */
#include "test.h"

#include "conc/conc.h"
#include "diag/diag.h"
#include "exec/future_impl.h"
#include "core/tls.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the reporter: every report's text, kept for assertions ---- */

struct capture {
    pthread_mutex_t mu;
    int calls;
    size_t len;
    char text[1 << 16];
};

static struct capture cap = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void capture_fn(const char *text, void *arg)
{
    struct capture *c = arg;
    pthread_mutex_lock(&c->mu);
    c->calls++;
    size_t n = strlen(text);
    if (n > sizeof c->text - 1 - c->len)
        n = sizeof c->text - 1 - c->len;
    memcpy(c->text + c->len, text, n);
    c->len += n;
    c->text[c->len] = 0;
    pthread_mutex_unlock(&c->mu);
}

static void cap_clear(void)
{
    pthread_mutex_lock(&cap.mu);
    cap.calls = 0;
    cap.len = 0;
    cap.text[0] = 0;
    pthread_mutex_unlock(&cap.mu);
}

static int cap_calls(void)
{
    pthread_mutex_lock(&cap.mu);
    int n = cap.calls;
    pthread_mutex_unlock(&cap.mu);
    return n;
}

/* Asserts that the captured text contains s (and prints it all if not). */
static void cap_has(const char *s)
{
    pthread_mutex_lock(&cap.mu);
    bool found = strstr(cap.text, s) != NULL;
    pthread_mutex_unlock(&cap.mu);
    if (!found)
        fail_msg("report lacks \"%s\"; reports:\n%s", s, cap.text);
}

static void ld_start(conc_lockdep_mode mode)
{
    assert_int_equal(conc_lockdep_reset(), 0);
    assert_int_equal(conc_debug_set_reporter(capture_fn, &cap), 0);
    cap_clear();
    assert_int_equal(conc_lockdep_set_mode(mode), 0);
    assert_int_equal(conc_lockdep_get_mode(), mode);
}

static void ld_stop(void)
{
    assert_int_equal(conc_lockdep_set_mode(CONC_LOCKDEP_OFF), 0);
    assert_int_equal(conc_debug_set_reporter(NULL, NULL), 0);
    assert_int_equal(conc_lockdep_reset(), 0);
}

/* ---- scripts: a list of lock operations run on one named thread ---- */

enum op {
    END = 0,
    LOCK,     /* conc_mutex_lock */
    TRY,      /* conc_mutex_trylock */
    TIMED,    /* conc_mutex_lock_timed, 1 ms */
    UNLOCK,   /* conc_mutex_unlock */
    RLOCK,    /* conc_rmutex_lock */
    RUNLOCK,  /* conc_rmutex_unlock */
    RDLOCK,   /* conc_rwlock_rdlock */
    WRLOCK,   /* conc_rwlock_wrlock */
    RWUNLOCK, /* conc_rwlock_unlock */
    SEMACQ,   /* conc_sem_acquire, forever */
    SEMREL,   /* conc_sem_release */
};

struct step {
    enum op op;
    void *lock;
    int expect; /* the return code asserted */
};

struct script {
    const char *thread;
    struct step steps[16];
};

static int do_step(const struct step *s)
{
    switch (s->op) {
    case LOCK:
        return conc_mutex_lock(s->lock);
    case TRY:
        return conc_mutex_lock_timed(s->lock, 0);
    case TIMED:
        return conc_mutex_lock_timed(s->lock, CONC_MSEC(1));
    case UNLOCK:
        return conc_mutex_unlock(s->lock);
    case RLOCK:
        return conc_rmutex_lock(s->lock);
    case RUNLOCK:
        return conc_rmutex_unlock(s->lock);
    case RDLOCK:
        return conc_rwlock_rdlock(s->lock);
    case WRLOCK:
        return conc_rwlock_wrlock(s->lock);
    case RWUNLOCK:
        return conc_rwlock_unlock(s->lock);
    case SEMACQ:
        return conc_sem_acquire(s->lock);
    case SEMREL:
        return conc_sem_release(s->lock);
    case END:
        break;
    }
    return 0;
}

static int script_fn(void *arg)
{
    const struct script *sc = arg;
    for (const struct step *s = sc->steps; s->op != END; s++) {
        int rc = do_step(s);
        if (rc != s->expect)
            fail_msg("thread %s, step %d: got %s, expected %s", sc->thread, (int)(s - sc->steps),
                     conc_err_name(rc), conc_err_name(s->expect));
    }
    return 0;
}

/* Runs the script on a new conc thread named sc->thread, and joins it. */
static void run(const struct script *sc)
{
    conc_thread *t;
    conc_thread_opts o = {.name = sc->thread};
    assert_int_equal(conc_thread_create(&t, script_fn, (void *)sc, &o), 0);
    int status = -1;
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(conc_thread_destroy(t), 0);
}

/* The usual nested pair: lock a, lock b, unlock b, unlock a. */
/* clang-format off */
#define NEST(a, b) {LOCK, (a), 0}, {LOCK, (b), 0}, {UNLOCK, (b), 0}, {UNLOCK, (a), 0}
/* clang-format on */

static void named_mutex(conc_mutex *m, const char *name)
{
    conc_mutex_opts o = {.name = name};
    assert_int_equal(conc_mutex_init(m, &o), 0);
}

/* ---- the classic cases ---- */

static void ab_ba_two_threads_reported(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex a, b;
    named_mutex(&a, "A");
    named_mutex(&b, "B");
    struct script t1 = {"t-ab", {NEST(&a, &b)}};
    struct script t2 = {"t-ba", {NEST(&b, &a)}};
    run(&t1);
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&t2); /* never deadlocks: t-ab has ended */
    assert_int_equal(conc_lockdep_reports(), 1);
    assert_int_equal(cap_calls(), 1);
    cap_has("lock-order cycle");
    cap_has("thread \"t-ba\"");
    cap_has("new order: \"B\" -> \"A\"");
    cap_has("\"A\" (mutex ");
    cap_has("first seen in thread \"t-ab\"");
    cap_has("cycle: \"B\" -> \"A\" -> \"B\"");
    cap_has("#0 "); /* the call stacks */
    /* Taking either order again reports nothing more. */
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 1);
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
}

static void abc_cycle_three_threads_reported(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex a, b, c;
    named_mutex(&a, "A");
    named_mutex(&b, "B");
    named_mutex(&c, "C");
    struct script t1 = {"t1", {NEST(&a, &b)}};
    struct script t2 = {"t2", {NEST(&b, &c)}};
    struct script t3 = {"t3", {NEST(&c, &a)}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&t3);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("thread \"t3\"");
    cap_has("cycle: \"C\" -> \"A\" -> \"B\" -> \"C\"");
    cap_has("order \"A\" (mutex ");
    cap_has("first seen in thread \"t1\"");
    cap_has("first seen in thread \"t2\"");
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
    assert_int_equal(conc_mutex_destroy(&c), 0);
}

/* Consistent orders taken by many threads at once: no report. */
struct consistent {
    conc_mutex locks[4];
    long iters;
};

static int consistent_fn(void *arg)
{
    struct consistent *c = arg;
    unsigned seed = (unsigned)conc__tid();
    for (long i = 0; i < c->iters; i++) {
        unsigned set = (unsigned)rand_r(&seed) & 15;
        for (int k = 0; k < 4; k++) /* ascending: the one order */
            if (set & (1u << k))
                assert_int_equal(conc_mutex_lock(&c->locks[k]), 0);
        for (int k = 3; k >= 0; k--)
            if (set & (1u << k))
                assert_int_equal(conc_mutex_unlock(&c->locks[k]), 0);
    }
    return 0;
}

static void consistent_orders_no_report_stress(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    struct consistent c = {.iters = conc_test_scaled(100000, 1000)};
    const char *names[] = {"L0", "L1", "L2", "L3"};
    for (int k = 0; k < 4; k++)
        named_mutex(&c.locks[k], names[k]);
    conc_thread *t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(conc_thread_create(&t[i], consistent_fn, &c, NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(conc_thread_join(t[i], NULL), 0);
        assert_int_equal(conc_thread_destroy(t[i]), 0);
    }
    assert_int_equal(conc_lockdep_reports(), 0);
    assert_int_equal(cap_calls(), 0);
    ld_stop();
    for (int k = 0; k < 4; k++)
        assert_int_equal(conc_mutex_destroy(&c.locks[k]), 0);
}

static void rmutex_recursion_no_report(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_rmutex r;
    conc_mutex_opts ro = {.name = "R"};
    assert_int_equal(conc_rmutex_init(&r, &ro), 0);
    conc_mutex m;
    named_mutex(&m, "M");
    /* R at depth 3 with M inside (R -> M), then M alone and R alone. */
    struct script t1 = {"t-rec",
                        {{RLOCK, &r, 0},
                         {RLOCK, &r, 0},
                         {RLOCK, &r, 0},
                         {LOCK, &m, 0},
                         {UNLOCK, &m, 0},
                         {RUNLOCK, &r, 0},
                         {RUNLOCK, &r, 0},
                         {RLOCK, &r, 0},
                         {RUNLOCK, &r, 0},
                         {RUNLOCK, &r, 0},
                         {LOCK, &m, 0},
                         {UNLOCK, &m, 0},
                         {RLOCK, &r, 0},
                         {RUNLOCK, &r, 0}}};
    run(&t1);
    assert_int_equal(conc_lockdep_reports(), 0);
    assert_int_equal(cap_calls(), 0);
    /* The recursive mutex is still checked: M -> R closes R -> M. */
    struct script t2 = {"t-inv",
                        {{LOCK, &m, 0}, {RLOCK, &r, 0}, {RUNLOCK, &r, 0}, {UNLOCK, &m, 0}}};
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("cycle: \"M\" -> \"R\" -> \"M\"");
    cap_has("(rmutex ");
    ld_stop();
    assert_int_equal(conc_rmutex_destroy(&r), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
}

static void trylock_not_checked_but_held(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex a, b, c, d;
    named_mutex(&a, "A");
    named_mutex(&b, "B");
    named_mutex(&c, "C");
    named_mutex(&d, "D");
    struct script t1 = {"t-ab", {NEST(&a, &b)}};
    /* B then a try of A: the opposite order, but a try cannot deadlock. */
    struct script t2 = {"t-try", {{LOCK, &b, 0}, {TRY, &a, 0}, {UNLOCK, &a, 0}, {UNLOCK, &b, 0}}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 0);
    /* A lock taken by a try is held: a blocking lock under it is an order. */
    struct script t3 = {"t-cd", {{TRY, &c, 0}, {LOCK, &d, 0}, {UNLOCK, &d, 0}, {UNLOCK, &c, 0}}};
    struct script t4 = {"t-dc", {NEST(&d, &c)}};
    run(&t3);
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&t4);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("cycle: \"D\" -> \"C\" -> \"D\"");
    cap_has("first seen in thread \"t-cd\"");
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
    assert_int_equal(conc_mutex_destroy(&c), 0);
    assert_int_equal(conc_mutex_destroy(&d), 0);
}

/* ---- modes ---- */

static void error_mode_refuses_without_acquiring(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_ERROR);
    conc_mutex a, b;
    named_mutex(&a, "A");
    named_mutex(&b, "B");
    struct script t1 = {"t-ab", {NEST(&a, &b)}};
    struct script t2 = {"t-ba",
                        {{LOCK, &b, 0},
                         {LOCK, &a, CONC_EDEADLK},  /* refused */
                         {UNLOCK, &a, CONC_EPERM},  /* so not ours */
                         {TIMED, &a, CONC_EDEADLK}, /* refused again, not reported again */
                         {LOCK, &a, CONC_EDEADLK},
                         {TRY, &a, 0}, /* a try is never refused */
                         {UNLOCK, &a, 0},
                         {UNLOCK, &b, 0}}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 1);
    assert_int_equal(cap_calls(), 1);
    cap_has("mode error");
    cap_has("cycle: \"B\" -> \"A\" -> \"B\"");
    /* The refused order was not recorded: A -> B is still fine. */
    run(&t1);
    assert_int_equal(conc_lockdep_reports(), 1);
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
}

static void log_mode_acquires(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex a, b;
    named_mutex(&a, "A");
    named_mutex(&b, "B");
    struct script t1 = {"t-ab", {NEST(&a, &b)}};
    struct script t2 = {"t-ba",
                        {{LOCK, &b, 0},
                         {LOCK, &a, 0},           /* reported, and taken */
                         {TRY, &a, CONC_EDEADLK}, /* ours: the mutex's own EDEADLK */
                         {UNLOCK, &a, 0},
                         {UNLOCK, &b, 0}}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("mode log: acquired anyway");
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
}

static int abort_child(void)
{
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        dup2(devnull, 2); /* the report goes to standard error: keep the log clean */
    conc_mutex a, b;
    conc_mutex_opts oa = {.name = "A"}, ob = {.name = "B"};
    if (conc_mutex_init(&a, &oa) || conc_mutex_init(&b, &ob) ||
        conc_lockdep_set_mode(CONC_LOCKDEP_ABORT))
        return 3;
    conc_mutex_lock(&a);
    conc_mutex_lock(&b);
    conc_mutex_unlock(&b);
    conc_mutex_unlock(&a);
    conc_mutex_lock(&b);
    conc_mutex_lock(&a); /* aborts here */
    return 4;
}

static void abort_mode_aborts(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(abort_child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("child exited with %d instead of aborting", WEXITSTATUS(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void self_deadlock_reported(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex m;
    named_mutex(&m, "self");
    struct script t1 = {"t-self",
                        {{LOCK, &m, 0},
                         {LOCK, &m, CONC_EDEADLK}, /* the mutex's own answer, as before */
                         {TIMED, &m, CONC_EDEADLK},
                         {UNLOCK, &m, 0}}};
    run(&t1);
    assert_int_equal(conc_lockdep_reports(), 1); /* once per class */
    cap_has("recursive locking");
    cap_has("thread \"t-self\" (tid ");
    cap_has(" acquires \"self\" (mutex ");
    /* An rwlock read-locked and then write-locked by one thread would hang:
     * ERROR mode refuses it. */
    conc_lockdep_set_mode(CONC_LOCKDEP_ERROR);
    conc_rwlock l;
    conc_rwlock_opts lo = {.name = "RW"};
    assert_int_equal(conc_rwlock_init(&l, &lo), 0);
    struct script t2 = {"t-upgrade",
                        {{RDLOCK, &l, 0},
                         {RDLOCK, &l, 0}, /* read after read: fine */
                         {RWUNLOCK, &l, 0},
                         {WRLOCK, &l, CONC_EDEADLK},
                         {RWUNLOCK, &l, 0}}};
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 2);
    cap_has("acquires \"RW\" (rwlock, write ");
    cap_has("holds already (rwlock, read)");
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_rwlock_destroy(&l), 0);
}

/* ---- classes ---- */

static void named_classes_span_instances(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex a1, a2, b, x1, x2;
    named_mutex(&a1, "acct");
    named_mutex(&a2, "acct");
    named_mutex(&b, "B");
    (conc_mutex_init)(&x1, NULL);
    (conc_mutex_init)(&x2, NULL);
    assert_int_equal(conc_lock_set_name(&x1, "X"), 0);
    assert_int_equal(conc_lock_set_name(&x2, "X"), 0);
    assert_int_equal(conc_lock_set_name(NULL, "X"), CONC_EINVAL);
    assert_int_equal(conc_lock_set_name(&x1, NULL), CONC_EINVAL);
    /* Two locks of one class nested: not an order the checker judges. */
    struct script t0 = {"t-same", {NEST(&a1, &a2)}};
    run(&t0);
    assert_int_equal(conc_lockdep_reports(), 0);
    /* a1 -> b, then b -> a2: the same class "acct", so a cycle. */
    struct script t1 = {"t-a1b", {NEST(&a1, &b)}};
    struct script t2 = {"t-ba2", {NEST(&b, &a2)}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("cycle: \"B\" -> \"acct\" -> \"B\"");
    /* The same through conc_lock_set_name. */
    struct script t3 = {"t-x1b", {NEST(&x1, &b)}};
    struct script t4 = {"t-bx2", {NEST(&b, &x2)}};
    run(&t3);
    run(&t4);
    assert_int_equal(conc_lockdep_reports(), 2);
    cap_has("cycle: \"B\" -> \"X\" -> \"B\"");
    ld_stop();
    conc_mutex *all[] = {&a1, &a2, &b, &x1, &x2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(conc_mutex_destroy(all[i]), 0);
}

/* Every lock initialised on this line is one class. */
static void init_here(conc_mutex *m)
{
    assert_int_equal(conc_mutex_init(m, NULL), 0);
}

static void init_site_is_the_class(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG); /* sites are recorded while checking is on */
    conc_mutex p1, p2, q, r1, r2;
    init_here(&p1);
    init_here(&p2);
    assert_int_equal(conc_mutex_init(&q, NULL), 0);
    /* Without a site: each lock its own (address) class. */
    assert_int_equal((conc_mutex_init)(&r1, NULL), 0);
    assert_int_equal((conc_mutex_init)(&r2, NULL), 0);
    struct script t1 = {"t-r1q", {NEST(&r1, &q)}};
    struct script t2 = {"t-qr2", {NEST(&q, &r2)}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 0);
    struct script t3 = {"t-p1q", {NEST(&p1, &q)}};
    struct script t4 = {"t-qp2", {NEST(&q, &p2)}};
    run(&t3);
    run(&t4);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("test_lockdep.c:");
    ld_stop();
    conc_mutex *all[] = {&p1, &p2, &q, &r1, &r2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(conc_mutex_destroy(all[i]), 0);
}

/* A destroyed lock's address class goes with it: a new lock at the same
 * address starts with no orders. */
static void destroy_forgets_the_lock(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex a = CONC_MUTEX_INIT, b = CONC_MUTEX_INIT;
    struct script ab = {"t-ab", {NEST(&a, &b)}};
    struct script ba = {"t-ba", {NEST(&b, &a)}};
    run(&ab);
    assert_int_equal(conc_mutex_destroy(&b), 0);
    assert_int_equal((conc_mutex_init)(&b, NULL), 0);
    run(&ba); /* a new b: no cycle */
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&ab); /* but now b -> a is known */
    assert_int_equal(conc_lockdep_reports(), 1);
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
}

static void reset_forgets_orders(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex a, b;
    named_mutex(&a, "A");
    named_mutex(&b, "B");
    struct script ab = {"t-ab", {NEST(&a, &b)}};
    struct script ba = {"t-ba", {NEST(&b, &a)}};
    run(&ab);
    run(&ba);
    assert_int_equal(conc_lockdep_reports(), 1);
    assert_int_equal(conc_lockdep_reset(), 0);
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&ba); /* first again: no cycle */
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&ab);
    assert_int_equal(conc_lockdep_reports(), 1);
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
}

/* ---- other locks ---- */

static void rwlock_orders_checked(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_rwlock r, w;
    conc_rwlock_opts ro = {.name = "R"}, wo = {.name = "W"};
    assert_int_equal(conc_rwlock_init(&r, &ro), 0);
    assert_int_equal(conc_rwlock_init(&w, &wo), 0);
    struct script t0 = {"t-rr",
                        {{RDLOCK, &r, 0}, {RDLOCK, &r, 0}, {RWUNLOCK, &r, 0}, {RWUNLOCK, &r, 0}}};
    run(&t0); /* read after read of one lock: fine */
    assert_int_equal(conc_lockdep_reports(), 0);
    /* A read lock held while taking a write lock is an order. */
    struct script t1 = {"t-rw",
                        {{RDLOCK, &r, 0}, {WRLOCK, &w, 0}, {RWUNLOCK, &w, 0}, {RWUNLOCK, &r, 0}}};
    struct script t2 = {"t-wr",
                        {{WRLOCK, &w, 0}, {RDLOCK, &r, 0}, {RWUNLOCK, &r, 0}, {RWUNLOCK, &w, 0}}};
    run(&t1);
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("cycle: \"W\" -> \"R\" -> \"W\"");
    cap_has("(rwlock, read ");
    cap_has("(rwlock, write ");
    ld_stop();
    assert_int_equal(conc_rwlock_destroy(&r), 0);
    assert_int_equal(conc_rwlock_destroy(&w), 0);
}

static void lock_like_sem_checked_counting_sem_not(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_sem s, c;
    conc_sem_opts so = {.bound = 1, .lock_like = true, .name = "S"};
    conc_sem_opts co = {.name = "counting"};
    assert_int_equal(conc_sem_init(&s, 1, &so), 0);
    assert_int_equal(conc_sem_init(&c, 1, &co), 0);
    conc_mutex m, n;
    named_mutex(&m, "M");
    named_mutex(&n, "N");
    struct script t1 = {"t-cn", {{SEMACQ, &c, 0}, {LOCK, &n, 0}, {UNLOCK, &n, 0}, {SEMREL, &c, 0}}};
    struct script t2 = {"t-nc", {{LOCK, &n, 0}, {SEMACQ, &c, 0}, {SEMREL, &c, 0}, {UNLOCK, &n, 0}}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 0); /* no owner, no order */
    struct script t3 = {"t-sm", {{SEMACQ, &s, 0}, {LOCK, &m, 0}, {UNLOCK, &m, 0}, {SEMREL, &s, 0}}};
    struct script t4 = {"t-ms", {{LOCK, &m, 0}, {SEMACQ, &s, 0}, {SEMREL, &s, 0}, {UNLOCK, &m, 0}}};
    run(&t3);
    assert_int_equal(conc_lockdep_reports(), 0);
    run(&t4);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("cycle: \"M\" -> \"S\" -> \"M\"");
    ld_stop();
    assert_int_equal(conc_sem_destroy(&s), 0);
    assert_int_equal(conc_sem_destroy(&c), 0);
    assert_int_equal(conc_mutex_destroy(&m), 0);
    assert_int_equal(conc_mutex_destroy(&n), 0);
}

static void pshared_mutex_ignored(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    conc_mutex p, q;
    conc_mutex_opts po = {.pshared = true, .name = "P"}, qo = {.pshared = true, .name = "Q"};
    assert_int_equal(conc_mutex_init(&p, &po), 0);
    assert_int_equal(conc_mutex_init(&q, &qo), 0);
    struct script t1 = {"t-pq", {NEST(&p, &q)}};
    struct script t2 = {"t-qp", {NEST(&q, &p)}};
    run(&t1);
    run(&t2);
    assert_int_equal(conc_lockdep_reports(), 0);
    assert_int_equal(cap_calls(), 0);
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&p), 0);
    assert_int_equal(conc_mutex_destroy(&q), 0);
}

/* A condition wait gives the mutex back and takes it again: the mutex is
 * held after it, with its orders. */
struct cond_case {
    conc_mutex a, m, b;
    conc_cond c;
};

static int cond_fn(void *arg)
{
    struct cond_case *k = arg;
    assert_int_equal(conc_mutex_lock(&k->a), 0);
    assert_int_equal(conc_mutex_lock(&k->m), 0);
    assert_int_equal(conc_cond_wait_timed(&k->c, &k->m, CONC_MSEC(1)), CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_lock(&k->b), 0); /* m -> b */
    assert_int_equal(conc_mutex_unlock(&k->b), 0);
    assert_int_equal(conc_mutex_unlock(&k->m), 0);
    assert_int_equal(conc_mutex_unlock(&k->a), 0);
    return 0;
}

static void cond_wait_keeps_the_mutex_held(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    struct cond_case k;
    named_mutex(&k.a, "A");
    named_mutex(&k.m, "M");
    named_mutex(&k.b, "B");
    assert_int_equal(conc_cond_init(&k.c, NULL), 0);
    conc_thread *t;
    conc_thread_opts o = {.name = "t-cond"};
    assert_int_equal(conc_thread_create(&t, cond_fn, &k, &o), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_lockdep_reports(), 0);
    struct script bm = {"t-bm", {NEST(&k.b, &k.m)}};
    run(&bm);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("cycle: \"B\" -> \"M\" -> \"B\"");
    ld_stop();
    assert_int_equal(conc_cond_destroy(&k.c), 0);
    assert_int_equal(conc_mutex_destroy(&k.a), 0);
    assert_int_equal(conc_mutex_destroy(&k.m), 0);
    assert_int_equal(conc_mutex_destroy(&k.b), 0);
}

/* ---- execution contexts: a pool task is not the worker that runs it ---- */

struct pool_case {
    conc_pool *pool;
    conc_mutex a, b;
    uint32_t outer_tid, inner_tid;
    conc_future *outer_task, *inner_task;
};

static int inner_task(void *arg, conc_result *out)
{
    (void)out;
    struct pool_case *k = arg;
    k->inner_tid = conc__tid();
    k->inner_task = conc__current_task();
    assert_int_equal(conc_mutex_lock(&k->b), 0); /* the worker holds a: no order */
    assert_int_equal(conc_mutex_unlock(&k->b), 0);
    return 0;
}

/* Holds a and waits for a task it submitted: its one worker runs that task
 * meanwhile, on this very stack. */
static int outer_task(void *arg, conc_result *out)
{
    (void)out;
    struct pool_case *k = arg;
    k->outer_tid = conc__tid();
    k->outer_task = conc__current_task();
    assert_int_equal(conc_mutex_lock(&k->a), 0);
    conc_future *f;
    assert_int_equal(conc_pool_submit(k->pool, inner_task, k, &f), 0);
    assert_int_equal(conc_future_wait(f), 0);
    assert_int_equal(conc_future_release(f), 0);
    assert_int_equal(conc_mutex_unlock(&k->a), 0);
    return 0;
}

/* a then b inside one task: an order like any thread's. */
static int ordered_task(void *arg, conc_result *out)
{
    (void)out;
    struct pool_case *k = arg;
    assert_int_equal(conc_mutex_lock(&k->a), 0);
    assert_int_equal(conc_mutex_lock(&k->b), 0);
    assert_int_equal(conc_mutex_unlock(&k->b), 0);
    assert_int_equal(conc_mutex_unlock(&k->a), 0);
    return 0;
}

static void pool_task_does_not_inherit_worker_locks(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    struct pool_case k = {0};
    named_mutex(&k.a, "A");
    named_mutex(&k.b, "B");
    conc_pool_opts po = {.max_workers = 1};
    assert_int_equal(conc_pool_create(&k.pool, &po), 0);
    conc_future *f;
    assert_int_equal(conc_pool_submit(k.pool, outer_task, &k, &f), 0);
    assert_int_equal(conc_future_wait(f), 0);
    assert_int_equal(conc_future_release(f), 0);
    /* The inner task ran nested on the outer one's worker, as its own task. */
    assert_int_equal(k.inner_tid, k.outer_tid);
    assert_true(k.inner_task != NULL && k.inner_task != k.outer_task);
    /* So no a -> b was recorded, and b -> a closes no cycle. */
    struct script ba = {"t-ba", {NEST(&k.b, &k.a)}};
    run(&ba);
    assert_int_equal(conc_lockdep_reports(), 0);
    /* A task's own orders are checked: a -> b in a task closes the cycle. */
    assert_int_equal(conc_pool_submit(k.pool, ordered_task, &k, &f), 0);
    assert_int_equal(conc_future_wait(f), 0);
    assert_int_equal(conc_future_release(f), 0);
    assert_int_equal(conc_lockdep_reports(), 1);
    cap_has("in pool task");
    cap_has("cycle: \"A\" -> \"B\" -> \"A\"");
    assert_int_equal(conc_pool_destroy(k.pool), 0);
    ld_stop();
    assert_int_equal(conc_mutex_destroy(&k.a), 0);
    assert_int_equal(conc_mutex_destroy(&k.b), 0);
}

/* ---- switches ---- */

static void off_by_default(void **state)
{
    (void)state;
    if (getenv("CONC_LOCKDEP"))
        skip(); /* switched on from outside */
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_OFF);
    assert_int_equal(conc_debug_set_reporter(capture_fn, &cap), 0);
    cap_clear();
    conc_mutex a, b;
    named_mutex(&a, "A");
    named_mutex(&b, "B");
    struct script ab = {"t-ab", {NEST(&a, &b)}};
    struct script ba = {"t-ba", {NEST(&b, &a)}};
    run(&ab);
    run(&ba);
    assert_int_equal(conc_lockdep_reports(), 0);
    assert_int_equal(cap_calls(), 0);
    assert_int_equal(conc_lockdep_set_mode((conc_lockdep_mode)7), CONC_EINVAL);
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_OFF);
    assert_int_equal(conc_debug_set_reporter(NULL, NULL), 0);
    assert_int_equal(conc_mutex_destroy(&a), 0);
    assert_int_equal(conc_mutex_destroy(&b), 0);
}

/* CONC_LOCKDEP's words (read at load by diag.c, which calls this). */
static void env_words_set_the_mode(void **state)
{
    (void)state;
    conc__lockdep_env("error");
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_ERROR);
    conc__lockdep_env("log");
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_LOG);
    conc__lockdep_env("0");
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_OFF);
    conc__lockdep_env("1");
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_LOG);
    conc__lockdep_env("off");
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_OFF);
    conc__lockdep_env("bogus"); /* a warning; stays as it was */
    assert_int_equal(conc_lockdep_get_mode(), CONC_LOCKDEP_OFF);
    assert_false(conc__diag_on(CONC__DIAG_LOCKDEP));
}

/* Locks made and destroyed while others take consistent orders: the
 * checker's caches are invalidated under them, and still nothing is
 * reported, nothing is lost. */
struct churn {
    conc_mutex outer;
    long iters;
};

static int churn_fn(void *arg)
{
    struct churn *c = arg;
    for (long i = 0; i < c->iters; i++) {
        conc_mutex tmp;
        assert_int_equal(conc_mutex_init(&tmp, NULL), 0);
        assert_int_equal(conc_mutex_lock(&c->outer), 0);
        assert_int_equal(conc_mutex_lock(&tmp), 0);
        assert_int_equal(conc_mutex_unlock(&tmp), 0);
        assert_int_equal(conc_mutex_unlock(&c->outer), 0);
        assert_int_equal(conc_mutex_destroy(&tmp), 0);
    }
    return 0;
}

static void churn_with_consistent_orders_stress(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    struct consistent c = {.iters = conc_test_scaled(100000, 1000)};
    const char *names[] = {"L0", "L1", "L2", "L3"};
    for (int k = 0; k < 4; k++)
        named_mutex(&c.locks[k], names[k]);
    struct churn ch = {.iters = conc_test_scaled(20000, 500)};
    named_mutex(&ch.outer, "outer");
    conc_thread *t[4];
    for (int i = 0; i < 3; i++)
        assert_int_equal(conc_thread_create(&t[i], consistent_fn, &c, NULL), 0);
    assert_int_equal(conc_thread_create(&t[3], churn_fn, &ch, NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(conc_thread_join(t[i], NULL), 0);
        assert_int_equal(conc_thread_destroy(t[i]), 0);
    }
    assert_int_equal(conc_lockdep_reports(), 0);
    ld_stop();
    for (int k = 0; k < 4; k++)
        assert_int_equal(conc_mutex_destroy(&c.locks[k]), 0);
    assert_int_equal(conc_mutex_destroy(&ch.outer), 0);
}

/* One cmocka_unit_test per line: CMake reads them. */
/* clang-format off */
/* Reports name what they can: a lock without a name or an init site by the
 * symbol the program exports for it (this executable is linked with
 * ENABLE_EXPORTS), and each frame by its function where the dynamic
 * symbols know it, else with a ready addr2line line. */
conc_mutex ld_exported_a = CONC_MUTEX_INIT;
conc_mutex ld_exported_b = CONC_MUTEX_INIT;

static void report_names_static_locks_and_frames(void **state)
{
    (void)state;
    ld_start(CONC_LOCKDEP_LOG);
    assert_int_equal(conc_mutex_lock(&ld_exported_a), 0);
    assert_int_equal(conc_mutex_lock(&ld_exported_b), 0);
    assert_int_equal(conc_mutex_unlock(&ld_exported_b), 0);
    assert_int_equal(conc_mutex_unlock(&ld_exported_a), 0);
    assert_int_equal(conc_mutex_lock(&ld_exported_b), 0);
    assert_int_equal(conc_mutex_lock(&ld_exported_a), 0); /* reversed: reported */
    assert_int_equal(conc_mutex_unlock(&ld_exported_a), 0);
    assert_int_equal(conc_mutex_unlock(&ld_exported_b), 0);
    assert_int_equal(cap_calls(), 1);
    cap_has("\"ld_exported_a\"");
    cap_has("\"ld_exported_b\"");
    cap_has("main+0x"); /* an exported function, by name */
    cap_has("addr2line -fCi -e ");  /* a hidden one, ready to look up */
    ld_stop();
}

CONC_TEST_MAIN(
    cmocka_unit_test(report_names_static_locks_and_frames),
    cmocka_unit_test(ab_ba_two_threads_reported),
    cmocka_unit_test(abc_cycle_three_threads_reported),
    cmocka_unit_test(consistent_orders_no_report_stress),
    cmocka_unit_test(rmutex_recursion_no_report),
    cmocka_unit_test(trylock_not_checked_but_held),
    cmocka_unit_test(error_mode_refuses_without_acquiring),
    cmocka_unit_test(log_mode_acquires),
    cmocka_unit_test(abort_mode_aborts),
    cmocka_unit_test(self_deadlock_reported),
    cmocka_unit_test(named_classes_span_instances),
    cmocka_unit_test(init_site_is_the_class),
    cmocka_unit_test(destroy_forgets_the_lock),
    cmocka_unit_test(reset_forgets_orders),
    cmocka_unit_test(rwlock_orders_checked),
    cmocka_unit_test(lock_like_sem_checked_counting_sem_not),
    cmocka_unit_test(pshared_mutex_ignored),
    cmocka_unit_test(cond_wait_keeps_the_mutex_held),
    cmocka_unit_test(pool_task_does_not_inherit_worker_locks),
    cmocka_unit_test(off_by_default),
    cmocka_unit_test(env_words_set_the_mode),
    cmocka_unit_test(churn_with_consistent_orders_stress))
/* clang-format on */
