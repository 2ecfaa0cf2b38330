/* Process-shared objects (opts.pshared) in MAP_SHARED memory, used by the
 * parent and forked children: an exact counter under a mutex, owner checks
 * across processes (a child is never the owner of its parent's lock, though
 * it runs on a copy of the parent's thread-local storage), semaphores as a
 * ping-pong and as a limit, event set and pulse, a condition-variable
 * producer/consumers, a barrier over many rounds (with its action), and a
 * reader-writer lock.
 *
 * The parent stays single-threaded (fork in a threaded process is unsafe).
 * A child checks with CHECK (no cmocka asserts there) and reports through its
 * exit status; every wait on either side has a deadline, and the parent kills
 * a child that does not finish in time, so a bug cannot hang the test. */
#define _GNU_SOURCE
#include "test_impl.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every blocking call of these tests waits at most this long: far beyond any
 * normal hand-off, so only a lost wake-up reaches it. */
#define T CONC_SEC(10)

/* In a child: report the failed check and return 1 (the exit status). */
#define CHECK CONC_TEST_CHILD_CHECK

static void *shm_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 0, size);
    return p;
}

static void shm_unmap(void *p, size_t size)
{
    assert_int_equal(munmap(p, size), 0);
}

/* A start line in shared memory, so that the processes really run at once
 * (a fork takes long enough for the parent to finish a short loop alone). */
struct gate {
    atomic_int ready, go;
};

/* In a child: checks in, then spins until the parent opens the gate. */
static void gate_pass(struct gate *g)
{
    atomic_fetch_add(&g->ready, 1);
    while (!atomic_load(&g->go))
        sched_yield();
}

/* In the parent: waits (bounded) for n children at the gate and opens it. */
static void gate_open(struct gate *g, int n)
{
    CONC_TEST_POLL_UNTIL(atomic_load(&g->ready) >= n);
    atomic_store(&g->go, 1);
}

/* ======================================================= mutex: exact count */

struct mtx_shm {
    struct gate gate;
    conc_mutex m;
    long counter; /* plain: only the mutex protects it */
    long iters;
};

static int mtx_increment(struct mtx_shm *sh)
{
    for (long i = 0; i < sh->iters; i++) {
        CHECK(conc_mutex_lock_timed(&sh->m, T) == 0);
        sh->counter++;
        if (i % 16 == 0) /* hold it longer than a waiter spins: it must sleep */
            for (int k = 0; k < 300; k++)
                conc__cpu_relax();
        CHECK(conc_mutex_unlock(&sh->m) == 0);
    }
    return 0;
}

static int mtx_child(void *p)
{
    gate_pass(&((struct mtx_shm *)p)->gate);
    return mtx_increment(p);
}

static void pshared_mutex_counter_exact(void **state)
{
    (void)state;
    struct mtx_shm *sh = shm_map(sizeof *sh);
    conc_mutex_opts o = {.pshared = true};
    assert_int_equal(conc_mutex_init(&sh->m, &o), 0);
    sh->iters = conc_test_scaled(200000, 5000);
    pid_t pid = conc_test_fork(mtx_child, sh);
    gate_open(&sh->gate, 1);
    assert_int_equal(mtx_increment(sh), 0);
    conc_test_reap(pid);
    assert_int_equal(sh->counter, 2 * sh->iters);
    assert_int_equal(conc_mutex_destroy(&sh->m), 0);
    shm_unmap(sh, sizeof *sh);
}

/* ==================================================== owners across fork */

struct own_shm {
    conc_mutex m;
    conc_rmutex r;
    conc_rwlock l;
    conc_sem to_child, to_parent;
};

/* The parent holds m, r (depth 2) and l (write): the child, which runs on a
 * copy of the parent's thread-local storage, must not pass for the owner. */
static int child_is_not_owner(void *p)
{
    struct own_shm *sh = p;
    CHECK(conc_mutex_unlock(&sh->m) == CONC_EPERM);
    CHECK(conc_mutex_lock_timed(&sh->m, 0) == CONC_ETIMEDOUT);
    CHECK(conc_mutex_lock_timed(&sh->m, CONC_MSEC(10)) == CONC_ETIMEDOUT);
    CHECK(conc_rmutex_depth(&sh->r) == 0);
    CHECK(conc_rmutex_unlock(&sh->r) == CONC_EPERM);
    CHECK(conc_rmutex_lock_timed(&sh->r, 0) == CONC_ETIMEDOUT);
    CHECK(conc_rmutex_lock_timed(&sh->r, CONC_MSEC(10)) == CONC_ETIMEDOUT);
    CHECK(conc_rwlock_unlock(&sh->l) == CONC_EPERM);
    CHECK(conc_rwlock_wrlock_timed(&sh->l, CONC_MSEC(10)) == CONC_ETIMEDOUT);
    CHECK(conc_rwlock_rdlock_timed(&sh->l, CONC_MSEC(10)) == CONC_ETIMEDOUT);
    return 0;
}

/* The child takes m and holds it until the parent has tried to release it. */
static int child_holds_mutex(void *p)
{
    struct own_shm *sh = p;
    CHECK(conc_mutex_lock_timed(&sh->m, T) == 0);
    CHECK(conc_mutex_lock(&sh->m) == CONC_EDEADLK);
    CHECK(conc_sem_release(&sh->to_parent) == 0);
    CHECK(conc_sem_acquire_timed(&sh->to_child, T) == 0);
    CHECK(conc_mutex_unlock(&sh->m) == 0);
    CHECK(conc_mutex_unlock(&sh->m) == CONC_EPERM);
    return 0;
}

static void pshared_owner_checks_across_processes(void **state)
{
    (void)state;
    struct own_shm *sh = shm_map(sizeof *sh);
    conc_mutex_opts mo = {.pshared = true};
    conc_mutex_opts ro = {.pshared = true};
    conc_rwlock_opts lo = {.pshared = true};
    conc_sem_opts so = {.pshared = true};
    assert_int_equal(conc_mutex_init(&sh->m, &mo), 0);
    assert_int_equal(conc_rmutex_init(&sh->r, &ro), 0);
    assert_int_equal(conc_rwlock_init(&sh->l, &lo), 0);
    assert_int_equal(conc_sem_init(&sh->to_child, 0, &so), 0);
    assert_int_equal(conc_sem_init(&sh->to_parent, 0, &so), 0);

    assert_int_equal(conc_mutex_lock(&sh->m), 0);
    assert_int_equal(conc_rmutex_lock(&sh->r), 0);
    assert_int_equal(conc_rmutex_lock(&sh->r), 0);
    assert_int_equal(conc_rwlock_wrlock(&sh->l), 0);
    conc_test_reap(conc_test_fork(child_is_not_owner, sh));
    /* still ours, untouched */
    assert_int_equal(conc_mutex_lock(&sh->m), CONC_EDEADLK);
    assert_int_equal(conc_rmutex_depth(&sh->r), 2);
    assert_int_equal(conc_rwlock_wrlock(&sh->l), CONC_EDEADLK);
    assert_int_equal(conc_mutex_unlock(&sh->m), 0);
    assert_int_equal(conc_rmutex_unlock(&sh->r), 0);
    assert_int_equal(conc_rmutex_unlock(&sh->r), 0);
    assert_int_equal(conc_rwlock_unlock(&sh->l), 0);

    pid_t pid = conc_test_fork(child_holds_mutex, sh);
    assert_int_equal(conc_sem_acquire_timed(&sh->to_parent, T), 0);
    assert_int_equal(conc_mutex_unlock(&sh->m), CONC_EPERM);
    assert_int_equal(conc_mutex_lock_timed(&sh->m, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_mutex_destroy(&sh->m), CONC_EBUSY);
    assert_int_equal(conc_sem_release(&sh->to_child), 0);
    conc_test_reap(pid);
    assert_int_equal(conc_mutex_lock_timed(&sh->m, 0), 0); /* the child let go */
    assert_int_equal(conc_mutex_unlock(&sh->m), 0);

    assert_int_equal(conc_mutex_destroy(&sh->m), 0);
    assert_int_equal(conc_rmutex_destroy(&sh->r), 0);
    assert_int_equal(conc_rwlock_destroy(&sh->l), 0);
    assert_int_equal(conc_sem_destroy(&sh->to_child), 0);
    assert_int_equal(conc_sem_destroy(&sh->to_parent), 0);
    shm_unmap(sh, sizeof *sh);
}

/* ======================================================= semaphores */

struct pp_shm {
    conc_sem ping, pong;
    long round; /* written by one side, read by the other, ordered by the sems */
    long rounds;
};

static int pong_side(void *p)
{
    struct pp_shm *sh = p;
    for (long i = 1; i <= sh->rounds; i++) {
        CHECK(conc_sem_acquire_timed(&sh->ping, T) == 0);
        CHECK(sh->round == i);
        sh->round = -i;
        CHECK(conc_sem_release(&sh->pong) == 0);
    }
    return 0;
}

static void pshared_sem_ping_pong(void **state)
{
    (void)state;
    struct pp_shm *sh = shm_map(sizeof *sh);
    conc_sem_opts so = {.pshared = true};
    assert_int_equal(conc_sem_init(&sh->ping, 0, &so), 0);
    assert_int_equal(conc_sem_init(&sh->pong, 0, &so), 0);
    sh->rounds = conc_test_scaled(10000, 500);
    pid_t pid = conc_test_fork(pong_side, sh);
    for (long i = 1; i <= sh->rounds; i++) {
        sh->round = i;
        assert_int_equal(conc_sem_release(&sh->ping), 0);
        assert_int_equal(conc_sem_acquire_timed(&sh->pong, T), 0);
        assert_int_equal(sh->round, -i);
    }
    conc_test_reap(pid);
    assert_int_equal(conc_sem_value(&sh->ping), 0);
    assert_int_equal(conc_sem_value(&sh->pong), 0);
    assert_int_equal(conc_sem_destroy(&sh->ping), 0);
    assert_int_equal(conc_sem_destroy(&sh->pong), 0);
    shm_unmap(sh, sizeof *sh);
}

struct lim_shm {
    struct gate gate;
    conc_sem limit;  /* value 2: at most two processes inside */
    conc_sem binary; /* value 1: a lock around the plain counter */
    atomic_int inside, max_inside;
    atomic_long entries;
    long counter;
    long iters;
};

static int limited_section(struct lim_shm *sh)
{
    for (long i = 0; i < sh->iters; i++) {
        CHECK(conc_sem_acquire_timed(&sh->limit, T) == 0);
        int now = atomic_fetch_add(&sh->inside, 1) + 1;
        CHECK(now <= 2);
        int max = atomic_load(&sh->max_inside);
        while (now > max && !atomic_compare_exchange_weak(&sh->max_inside, &max, now))
            ;
        atomic_fetch_add(&sh->entries, 1);
        CHECK(conc_sem_acquire_timed(&sh->binary, T) == 0);
        sh->counter++;
        CHECK(conc_sem_release(&sh->binary) == 0);
        atomic_fetch_sub(&sh->inside, 1);
        CHECK(conc_sem_release(&sh->limit) == 0);
    }
    return 0;
}

static int limited_child(void *p)
{
    gate_pass(&((struct lim_shm *)p)->gate);
    return limited_section(p);
}

/* Three processes through a semaphore of 2 (never three inside) and one of 1
 * (a plain counter stays exact). */
static void pshared_sem_limits_three_processes(void **state)
{
    (void)state;
    struct lim_shm *sh = shm_map(sizeof *sh);
    conc_sem_opts so = {.pshared = true, .bound = 2};
    assert_int_equal(conc_sem_init(&sh->limit, 2, &so), 0);
    so.bound = 1;
    assert_int_equal(conc_sem_init(&sh->binary, 1, &so), 0);
    sh->iters = conc_test_scaled(200000, 5000);
    pid_t a = conc_test_fork(limited_child, sh);
    pid_t b = conc_test_fork(limited_child, sh);
    gate_open(&sh->gate, 2);
    assert_int_equal(limited_section(sh), 0);
    conc_test_reap(a);
    conc_test_reap(b);
    print_message("most processes inside at once: %d\n", atomic_load(&sh->max_inside));
    assert_true(atomic_load(&sh->max_inside) <= 2);
    assert_int_equal(atomic_load(&sh->entries), 3 * sh->iters);
    assert_int_equal(sh->counter, 3 * sh->iters);
    assert_int_equal(conc_sem_value(&sh->limit), 2);
    assert_int_equal(conc_sem_value(&sh->binary), 1);
    assert_int_equal(conc_sem_release(&sh->binary), CONC_ESTATE); /* the bound holds */
    assert_int_equal(conc_sem_destroy(&sh->limit), 0);
    assert_int_equal(conc_sem_destroy(&sh->binary), 0);
    shm_unmap(sh, sizeof *sh);
}

/* ============================================================ event */

struct ev_shm {
    conc_event e, ack, never;
    conc_sem go;
    long rounds;
};

static int event_waiter(void *p)
{
    struct ev_shm *sh = p;
    CHECK(conc_event_wait_timed(&sh->never, CONC_MSEC(5)) == CONC_ETIMEDOUT);
    for (long r = 0; r < sh->rounds; r++) {
        CHECK(conc_sem_acquire_timed(&sh->go, T) == 0);
        CHECK(conc_event_wait_timed(&sh->e, T) == 0);
        CHECK(conc_event_set(&sh->ack) == 0);
    }
    return 0;
}

/* The child waits; the parent sets the event once the child is inside the
 * wait. Odd rounds pulse: set then clear at once, which must still release
 * the waiting child (the wake crosses processes on the shared futex). */
static void pshared_event_set_and_pulse(void **state)
{
    (void)state;
    struct ev_shm *sh = shm_map(sizeof *sh);
    conc_event_opts eo = {.pshared = true};
    conc_sem_opts so = {.pshared = true};
    assert_int_equal(conc_event_init(&sh->e, &eo), 0);
    assert_int_equal(conc_event_init(&sh->ack, &eo), 0);
    assert_int_equal(conc_event_init(&sh->never, &eo), 0);
    assert_int_equal(conc_sem_init(&sh->go, 0, &so), 0);
    sh->rounds = conc_test_scaled(200, 20);
    struct conc__waitq *q = conc_test_waitq(&sh->e);
    pid_t pid = conc_test_fork(event_waiter, sh);
    for (long r = 0; r < sh->rounds; r++) {
        assert_int_equal(conc_event_clear(&sh->e), 0);
        assert_int_equal(conc_sem_release(&sh->go), 0);
        CONC_TEST_POLL_UNTIL(conc_test_nwaiters(q) >= 1); /* the child is in its wait */
        assert_int_equal(conc_event_set(&sh->e), 0);
        if (r % 2)
            assert_int_equal(conc_event_clear(&sh->e), 0);
        assert_int_equal(conc_event_wait_timed(&sh->ack, T), 0);
        assert_int_equal(conc_event_clear(&sh->ack), 0);
    }
    conc_test_reap(pid);
    assert_int_equal(atomic_load(&q->nwaiters), 0);
    assert_int_equal(conc_event_destroy(&sh->e), 0);
    assert_int_equal(conc_event_destroy(&sh->ack), 0);
    assert_int_equal(conc_event_destroy(&sh->never), 0);
    assert_int_equal(conc_sem_destroy(&sh->go), 0);
    shm_unmap(sh, sizeof *sh);
}

/* ===================================== condition: producer / consumers */

enum { RING = 8, CONSUMERS = 2 };

struct pc_shm {
    conc_mutex m;
    conc_cond not_empty, not_full;
    long buf[RING];
    unsigned head, tail, count; /* under m */
    long items;
    unsigned char seen[]; /* seen[i]: item i taken; one writer per item */
};

static int consumer(void *p)
{
    struct pc_shm *sh = p;
    for (;;) {
        CHECK(conc_mutex_lock_timed(&sh->m, T) == 0);
        while (sh->count == 0)
            CHECK(conc_cond_wait_timed(&sh->not_empty, &sh->m, T) == 0);
        long item = sh->buf[sh->head];
        sh->head = (sh->head + 1) % RING;
        sh->count--;
        CHECK(conc_cond_notify(&sh->not_full) == 0);
        CHECK(conc_mutex_unlock(&sh->m) == 0);
        if (item == 0)
            return 0; /* the end */
        CHECK(item > 0 && item <= sh->items);
        CHECK(sh->seen[item] == 0);
        sh->seen[item] = 1;
    }
}

static void produce(struct pc_shm *sh, long item)
{
    assert_int_equal(conc_mutex_lock_timed(&sh->m, T), 0);
    while (sh->count == RING)
        assert_int_equal(conc_cond_wait_timed(&sh->not_full, &sh->m, T), 0);
    sh->buf[sh->tail] = item;
    sh->tail = (sh->tail + 1) % RING;
    sh->count++;
    assert_int_equal(conc_cond_notify(&sh->not_empty), 0);
    assert_int_equal(conc_mutex_unlock(&sh->m), 0);
}

/* The parent produces 1..N through a ring of 8; two child processes consume:
 * every item is taken exactly once. */
static void pshared_cond_producer_consumers(void **state)
{
    (void)state;
    long n = conc_test_scaled(20000, 1000);
    size_t size = sizeof(struct pc_shm) + (size_t)n + 1;
    struct pc_shm *sh = shm_map(size);
    sh->items = n;
    conc_mutex_opts mo = {.pshared = true};
    conc_cond_opts co = {.pshared = true};
    assert_int_equal(conc_mutex_init(&sh->m, &mo), 0);
    assert_int_equal(conc_cond_init(&sh->not_empty, &co), 0);
    assert_int_equal(conc_cond_init(&sh->not_full, &co), 0);
    pid_t pids[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        pids[i] = conc_test_fork(consumer, sh);
    for (long i = 1; i <= n; i++)
        produce(sh, i);
    for (int i = 0; i < CONSUMERS; i++)
        produce(sh, 0);
    for (int i = 0; i < CONSUMERS; i++)
        conc_test_reap(pids[i]);
    long taken = 0;
    for (long i = 1; i <= n; i++)
        taken += sh->seen[i];
    assert_int_equal(taken, n);
    assert_int_equal(sh->count, 0);
    assert_int_equal(conc_cond_destroy(&sh->not_empty), 0);
    assert_int_equal(conc_cond_destroy(&sh->not_full), 0);
    assert_int_equal(conc_mutex_destroy(&sh->m), 0);
    shm_unmap(sh, size);
}

/* ============================================================ barrier */

struct bar_shm {
    conc_barrier b;
    long slot[2];
    long actions; /* bumped by the action, under the barrier's lock */
    long rounds;
    unsigned char idx[][2];
};

static int count_action(void *arg)
{
    ((struct bar_shm *)arg)->actions++;
    return 0;
}

/* Each round: publish the round number, meet, check the other side's, meet
 * again (so nobody overwrites its slot before the other has read it). */
static int barrier_side(struct bar_shm *sh, int me)
{
    for (long r = 0; r < sh->rounds; r++) {
        size_t index = 99;
        sh->slot[me] = r;
        CHECK(conc_barrier_wait_timed(&sh->b, &index, T) == 0);
        CHECK(index <= 1);
        sh->idx[r][me] = (unsigned char)index;
        CHECK(sh->slot[1 - me] == r);
        CHECK(conc_barrier_wait_timed(&sh->b, NULL, T) == 0);
    }
    return 0;
}

static int barrier_child(void *p)
{
    return barrier_side(p, 1);
}

static void pshared_barrier_rounds(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(5000, 500);
    size_t size = sizeof(struct bar_shm) + (size_t)rounds * 2;
    struct bar_shm *sh = shm_map(size);
    sh->rounds = rounds;
    conc_barrier_opts bo = {.pshared = true, .action = count_action, .action_arg = sh};
    assert_int_equal(conc_barrier_init(&sh->b, 2, &bo), 0);
    pid_t pid = conc_test_fork(barrier_child, sh);
    assert_int_equal(barrier_side(sh, 0), 0);
    conc_test_reap(pid);
    for (long r = 0; r < rounds; r++)
        assert_int_equal(sh->idx[r][0] + sh->idx[r][1], 1); /* one 0, one 1 */
    assert_int_equal(sh->actions, 2 * rounds);
    assert_int_equal(conc_barrier_broken(&sh->b), 0);
    assert_int_equal(conc_barrier_destroy(&sh->b), 0);
    shm_unmap(sh, size);
}

/* ============================================================ rwlock */

struct rw_shm {
    struct gate gate;
    conc_rwlock l;
    long a, b; /* a == b whenever no writer is inside */
    long writes[2];
    long reads[2];
    long iters;
};

static int rw_side(struct rw_shm *sh, int me)
{
    uint64_t rng = 0x2545F4914F6CDD1Dull + (uint64_t)me;
    for (long i = 0; i < sh->iters; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if (rng % 4 == 0) {
            CHECK(conc_rwlock_wrlock_timed(&sh->l, T) == 0);
            sh->a++;
            for (int k = 0; k < 200; k++) /* long enough for others to queue */
                conc__cpu_relax();
            sh->b++;
            sh->writes[me]++;
            CHECK(conc_rwlock_unlock(&sh->l) == 0);
        } else {
            CHECK(conc_rwlock_rdlock_timed(&sh->l, T) == 0);
            long a = sh->a;
            for (int k = 0; k < 50; k++)
                conc__cpu_relax();
            CHECK(a == sh->b);
            sh->reads[me]++;
            CHECK(conc_rwlock_unlock(&sh->l) == 0);
        }
    }
    return 0;
}

static int rw_child(void *p)
{
    gate_pass(&((struct rw_shm *)p)->gate);
    return rw_side(p, 1);
}

static void pshared_rwlock_readers_writers(void **state)
{
    (void)state;
    struct rw_shm *sh = shm_map(sizeof *sh);
    conc_rwlock_opts lo = {.pshared = true};
    assert_int_equal(conc_rwlock_init(&sh->l, &lo), 0);
    sh->iters = conc_test_scaled(100000, 3000);
    pid_t pid = conc_test_fork(rw_child, sh);
    gate_open(&sh->gate, 1);
    assert_int_equal(rw_side(sh, 0), 0);
    conc_test_reap(pid);
    long writes = sh->writes[0] + sh->writes[1];
    assert_int_equal(writes + sh->reads[0] + sh->reads[1], 2 * sh->iters);
    assert_int_equal(sh->a, writes);
    assert_int_equal(sh->b, writes);
    assert_int_equal(conc_rwlock_destroy(&sh->l), 0);
    shm_unmap(sh, sizeof *sh);
}

CONC_TEST_MAIN(cmocka_unit_test(pshared_mutex_counter_exact),
               cmocka_unit_test(pshared_owner_checks_across_processes),
               cmocka_unit_test(pshared_sem_ping_pong),
               cmocka_unit_test(pshared_sem_limits_three_processes),
               cmocka_unit_test(pshared_event_set_and_pulse),
               cmocka_unit_test(pshared_cond_producer_consumers),
               cmocka_unit_test(pshared_barrier_rounds),
               cmocka_unit_test(pshared_rwlock_readers_writers))
