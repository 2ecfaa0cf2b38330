/* conc_pmutex, the robust process-shared mutex: an exact count across
 * processes; a holder that dies (killed, exiting, or a thread that ends)
 * hands the next locker CONC_EOWNERDEAD, also one already asleep waiting;
 * repaired and marked consistent it works on, given up it answers
 * CONC_ENOTRECOVERABLE until initialised again; owners, timeouts and misuse
 * across fork.
 *
 * The objects live in an anonymous conc_shm segment. The parent forks
 * before it starts any thread; a child checks with CHECK and reports
 * through its exit status; every wait has a deadline. */
#include "test.h"

#include <sched.h>

/* Every blocking call of these tests waits at most this long: far beyond any
 * normal hand-off, so only a lost wake-up reaches it. */
#define T CONC_SEC(10)

/* In a child: report the failed check and return 1 (the exit status). */
#define CHECK CONC_TEST_CHILD_CHECK

/* An anonymous segment of `size` bytes: the caller's shared struct. */
static conc_shm *shm_new(size_t size, void **addr)
{
    conc_shm *s = NULL;
    assert_int_equal(conc_shm_create(&s, size, NULL), 0);
    *addr = conc_shm_addr(s);
    assert_non_null(*addr);
    return s;
}

static void shm_free(conc_shm *s)
{
    assert_int_equal(conc_shm_destroy(s), 0);
}

/* ===================================================== an exact count */

struct count_shm {
    conc_pmutex p;
    atomic_int ready, go;
    long counter; /* plain: only the mutex protects it */
    long iters;
};

static int count_side(struct count_shm *sh)
{
    for (long i = 0; i < sh->iters; i++) {
        CHECK(conc_pmutex_lock_timed(&sh->p, i % 2 ? T : CONC_FOREVER) == 0);
        sh->counter++;
        if (i % 16 == 0) /* hold it long enough for the other side to sleep */
            for (volatile int k = 0; k < 300; k++)
                ;
        CHECK(conc_pmutex_unlock(&sh->p) == 0);
    }
    return 0;
}

static int count_child(void *arg)
{
    struct count_shm *sh = arg;
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load(&sh->go))
        sched_yield();
    return count_side(sh);
}

/* Two processes, the timed and the untimed lock in turn: no increment lost. */
static void pmutex_counter_exact_across_processes(void **state)
{
    (void)state;
    struct count_shm *sh;
    conc_shm *seg = shm_new(sizeof *sh, (void **)&sh);
    assert_int_equal(conc_pmutex_init(&sh->p, NULL), 0);
    sh->iters = conc_test_scaled(100000, 5000);
    pid_t pid = conc_test_fork(count_child, sh);
    CONC_TEST_POLL_UNTIL(atomic_load(&sh->ready) == 1);
    atomic_store(&sh->go, 1);
    assert_int_equal(count_side(sh), 0);
    conc_test_reap(pid);
    assert_int_equal(sh->counter, 2 * sh->iters);
    assert_int_equal(conc_pmutex_destroy(&sh->p), 0);
    shm_free(seg);
}

/* ============================================ a holder that dies */

struct dead_shm {
    conc_pmutex p;
    atomic_int held;      /* the holder has it */
    atomic_int locking;   /* the waiter is about to lock */
    int waiter_rc;        /* what the waiter's lock returned */
    long a, b;            /* a == b whenever nobody is inside */
};

/* Locks, breaks the invariant half-way, says so, and dies holding it: by
 * returning (the process exits) or, with `wait_for_kill`, in pause() until
 * the parent's SIGKILL. */
static int holder_dies(struct dead_shm *sh, bool wait_for_kill)
{
    CHECK(conc_pmutex_lock_timed(&sh->p, T) == 0);
    sh->a++;
    atomic_store(&sh->held, 1);
    while (wait_for_kill)
        pause();
    return 0;
}

static int holder_exits(void *arg)
{
    return holder_dies(arg, false);
}

static int holder_waits_for_kill(void *arg)
{
    return holder_dies(arg, true);
}

/* The locker after a death: CONC_EOWNERDEAD, the lock is ours, the data is
 * as the dead holder left it; repaired and marked consistent it works on. */
static int recover(struct dead_shm *sh, int rc)
{
    CHECK(rc == CONC_EOWNERDEAD);
    CHECK(sh->a == sh->b + 1);  /* half-updated */
    CHECK(conc_pmutex_lock_timed(&sh->p, 0) == CONC_EDEADLK); /* ours */
    sh->b = sh->a;              /* repaired */
    CHECK(conc_pmutex_consistent(&sh->p) == 0);
    CHECK(conc_pmutex_consistent(&sh->p) == CONC_ESTATE);
    CHECK(conc_pmutex_unlock(&sh->p) == 0);
    CHECK(conc_pmutex_lock_timed(&sh->p, 0) == 0);
    CHECK(conc_pmutex_unlock(&sh->p) == 0);
    return 0;
}

static void pmutex_holder_that_exits_hands_over_ownerdead(void **state)
{
    (void)state;
    struct dead_shm *sh;
    conc_shm *seg = shm_new(sizeof *sh, (void **)&sh);
    assert_int_equal(conc_pmutex_init(&sh->p, NULL), 0);
    conc_test_reap(conc_test_fork(holder_exits, sh));
    assert_int_equal(atomic_load(&sh->held), 1);
    assert_int_equal(recover(sh, conc_pmutex_lock_timed(&sh->p, T)), 0);
    /* Once more, the try meets the death this time. */
    atomic_store(&sh->held, 0);
    conc_test_reap(conc_test_fork(holder_exits, sh));
    assert_int_equal(recover(sh, conc_pmutex_lock_timed(&sh->p, 0)), 0);
    assert_int_equal(conc_pmutex_destroy(&sh->p), 0);
    shm_free(seg);
}

/* The waiter's child: locks (untimed), asleep until the holder dies. */
static int waiter(void *arg)
{
    struct dead_shm *sh = arg;
    atomic_store(&sh->locking, 1);
    int rc = conc_pmutex_lock(&sh->p);
    sh->waiter_rc = rc;
    return recover(sh, rc);
}

/* A holder killed with SIGKILL while another process sleeps in an untimed
 * lock: the kernel wakes the sleeper, which gets CONC_EOWNERDEAD. */
static void pmutex_killed_holder_wakes_a_sleeping_waiter(void **state)
{
    (void)state;
    struct dead_shm *sh;
    conc_shm *seg = shm_new(sizeof *sh, (void **)&sh);
    assert_int_equal(conc_pmutex_init(&sh->p, NULL), 0);
    pid_t holder = conc_test_fork(holder_waits_for_kill, sh);
    CONC_TEST_POLL_UNTIL(atomic_load(&sh->held) == 1);
    pid_t w = conc_test_fork(waiter, sh);
    CONC_TEST_POLL_UNTIL(atomic_load(&sh->locking) == 1 && conc_test_in_futex_wait(w));
    assert_int_equal(kill(holder, SIGKILL), 0);
    assert_int_equal(conc_test_wait_child(holder, 10), 128 + SIGKILL);
    conc_test_reap(w);
    assert_int_equal(sh->waiter_rc, CONC_EOWNERDEAD);
    assert_int_equal(sh->a, sh->b);
    assert_int_equal(conc_pmutex_lock_timed(&sh->p, 0), 0);
    assert_int_equal(conc_pmutex_unlock(&sh->p), 0);
    assert_int_equal(conc_pmutex_destroy(&sh->p), 0);
    shm_free(seg);
}

/* A thread that ends holding it is a dead owner too (the kernel's robust
 * list is per thread), within one process. */
static int thread_ends_holding(void *arg)
{
    return conc_pmutex_lock(arg);
}

static void pmutex_thread_that_ends_holding_it(void **state)
{
    (void)state;
    conc_pmutex p;
    assert_int_equal(conc_pmutex_init(&p, NULL), 0);
    conc_thread *t;
    int status = -1;
    assert_int_equal(conc_thread_create(&t, thread_ends_holding, &p, NULL), 0);
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(status, 0);
    assert_int_equal(conc_pmutex_destroy(&p), 0); /* nobody alive holds it */
    assert_int_equal(conc_pmutex_init(&p, NULL), 0);
    assert_int_equal(conc_thread_create(&t, thread_ends_holding, &p, NULL), 0);
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_pmutex_lock(&p), CONC_EOWNERDEAD);
    assert_int_equal(conc_pmutex_consistent(&p), 0);
    assert_int_equal(conc_pmutex_unlock(&p), 0);
    /* The timed form hears of it as well. */
    assert_int_equal(conc_thread_create(&t, thread_ends_holding, &p, NULL), 0);
    assert_int_equal(conc_thread_join(t, &status), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_pmutex_lock_timed(&p, CONC_MSEC(100)), CONC_EOWNERDEAD);
    assert_int_equal(conc_pmutex_consistent(&p), 0);
    assert_int_equal(conc_pmutex_unlock(&p), 0);
    assert_int_equal(conc_pmutex_destroy(&p), 0);
}

static int child_finds_it_given_up(void *arg)
{
    struct dead_shm *sh = arg;
    CHECK(conc_pmutex_lock_timed(&sh->p, 0) == CONC_ENOTRECOVERABLE);
    CHECK(conc_pmutex_lock_timed(&sh->p, T) == CONC_ENOTRECOVERABLE);
    CHECK(conc_pmutex_lock(&sh->p) == CONC_ENOTRECOVERABLE);
    return 0;
}

/* Unlocked without conc_pmutex_consistent, it is given up: every lock
 * answers CONC_ENOTRECOVERABLE at once, until destroy and init. */
static void pmutex_unlocked_without_consistent_is_given_up(void **state)
{
    (void)state;
    struct dead_shm *sh;
    conc_shm *seg = shm_new(sizeof *sh, (void **)&sh);
    assert_int_equal(conc_pmutex_init(&sh->p, NULL), 0);
    conc_test_reap(conc_test_fork(holder_exits, sh));
    assert_int_equal(conc_pmutex_lock(&sh->p), CONC_EOWNERDEAD);
    assert_int_equal(conc_pmutex_unlock(&sh->p), 0);
    assert_int_equal(conc_pmutex_lock_timed(&sh->p, 0), CONC_ENOTRECOVERABLE);
    assert_int_equal(conc_pmutex_lock_timed(&sh->p, CONC_MSEC(50)), CONC_ENOTRECOVERABLE);
    assert_int_equal(conc_pmutex_lock(&sh->p), CONC_ENOTRECOVERABLE);
    /* None of those took it: another process hears the same, at once. */
    conc_test_reap(conc_test_fork(child_finds_it_given_up, sh));
    assert_int_equal(conc_pmutex_lock_timed(&sh->p, 0), CONC_ENOTRECOVERABLE);
    assert_int_equal(conc_pmutex_unlock(&sh->p), CONC_EPERM);
    assert_int_equal(conc_pmutex_consistent(&sh->p), CONC_EPERM);
    assert_int_equal(conc_pmutex_destroy(&sh->p), 0);
    assert_int_equal(conc_pmutex_lock(&sh->p), CONC_EBADF);
    assert_int_equal(conc_pmutex_init(&sh->p, NULL), 0);
    assert_int_equal(conc_pmutex_lock(&sh->p), 0);
    assert_int_equal(conc_pmutex_unlock(&sh->p), 0);
    assert_int_equal(conc_pmutex_destroy(&sh->p), 0);
    shm_free(seg);
}

/* ====================================== owners and timeouts across fork */

struct own_shm {
    conc_pmutex p;
    conc_sem to_child, to_parent;
};

/* The parent holds p: the child, on a copy of the parent's memory and
 * thread-local storage, is not the owner and waits its timeout out. */
static int child_is_not_owner(void *arg)
{
    struct own_shm *sh = arg;
    CHECK(conc_pmutex_unlock(&sh->p) == CONC_EPERM);
    CHECK(conc_pmutex_consistent(&sh->p) == CONC_EPERM);
    CHECK(conc_pmutex_lock_timed(&sh->p, 0) == CONC_ETIMEDOUT);
    int64_t t0 = conc_now_ns();
    CHECK(conc_pmutex_lock_timed(&sh->p, CONC_MSEC(20)) == CONC_ETIMEDOUT);
    CHECK(conc_now_ns() - t0 >= CONC_MSEC(20));
    CHECK(conc_pmutex_destroy(&sh->p) == CONC_EBUSY);
    /* Now wait without a limit until the parent lets go. */
    CHECK(conc_sem_release(&sh->to_parent) == 0);
    CHECK(conc_pmutex_lock(&sh->p) == 0);
    CHECK(conc_pmutex_unlock(&sh->p) == 0);
    return 0;
}

static void pmutex_owner_checks_and_timeouts_across_processes(void **state)
{
    (void)state;
    struct own_shm *sh;
    conc_shm *seg = shm_new(sizeof *sh, (void **)&sh);
    conc_sem_opts so = {.pshared = true};
    assert_int_equal(conc_pmutex_init(&sh->p, &(conc_pmutex_opts){0}), 0);
    assert_int_equal(conc_sem_init(&sh->to_parent, 0, &so), 0);
    assert_int_equal(conc_pmutex_lock(&sh->p), 0);
    assert_int_equal(conc_pmutex_lock(&sh->p), CONC_EDEADLK);
    assert_int_equal(conc_pmutex_lock_timed(&sh->p, 0), CONC_EDEADLK);
    assert_int_equal(conc_pmutex_lock_timed(&sh->p, CONC_MSEC(5)), CONC_EDEADLK);
    assert_int_equal(conc_pmutex_destroy(&sh->p), CONC_EBUSY);
    assert_int_equal(conc_pmutex_consistent(&sh->p), CONC_ESTATE);
    pid_t pid = conc_test_fork(child_is_not_owner, sh);
    assert_int_equal(conc_sem_acquire_timed(&sh->to_parent, T), 0);
    assert_int_equal(conc_pmutex_unlock(&sh->p), 0);
    conc_test_reap(pid);
    assert_int_equal(conc_pmutex_unlock(&sh->p), CONC_EPERM); /* nobody holds it */
    assert_int_equal(conc_pmutex_lock_timed(&sh->p, 0), 0);
    assert_int_equal(conc_pmutex_unlock(&sh->p), 0);
    assert_int_equal(conc_sem_destroy(&sh->to_parent), 0);
    assert_int_equal(conc_pmutex_destroy(&sh->p), 0);
    shm_free(seg);
}

/* ============================================================= misuse */

static void pmutex_misuse_answers_codes(void **state)
{
    (void)state;
    conc_pmutex never;
    memset(&never, 0, sizeof never);
    assert_int_equal(conc_pmutex_lock(&never), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "never initialised"));
    assert_int_equal(conc_pmutex_lock_timed(&never, 0), CONC_EINVAL);
    assert_int_equal(conc_pmutex_unlock(&never), CONC_EINVAL);
    assert_int_equal(conc_pmutex_consistent(&never), CONC_EINVAL);
    assert_int_equal(conc_pmutex_destroy(&never), CONC_EINVAL);

    assert_int_equal(conc_pmutex_init(NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc_pmutex_lock(NULL), CONC_EINVAL);
    assert_int_equal(conc_pmutex_unlock(NULL), CONC_EINVAL);
    assert_int_equal(conc_pmutex_consistent(NULL), CONC_EINVAL);
    assert_int_equal(conc_pmutex_destroy(NULL), CONC_EINVAL);

    conc_pmutex p;
    assert_int_equal(conc_pmutex_init(&p, &(conc_pmutex_opts){.reserved_ = {1}}), CONC_EINVAL);
    assert_int_equal(conc_pmutex_init(&p, NULL), 0);
    assert_int_equal(conc_pmutex_lock_timed(&p, -1), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "negative timeout"));
    assert_int_equal(conc_pmutex_unlock(&p), CONC_EPERM);
    assert_int_equal(conc_pmutex_consistent(&p), CONC_EPERM);
    assert_int_equal(conc_pmutex_destroy(&p), 0);
    assert_int_equal(conc_pmutex_lock(&p), CONC_EBADF);
    assert_non_null(strstr(conc_error_detail(), "destroyed"));
    assert_int_equal(conc_pmutex_lock_timed(&p, 0), CONC_EBADF);
    assert_int_equal(conc_pmutex_unlock(&p), CONC_EBADF);
    assert_int_equal(conc_pmutex_consistent(&p), CONC_EBADF);
    assert_int_equal(conc_pmutex_destroy(&p), CONC_EBADF);
    /* Initialised again over the dead marker, it works. */
    assert_int_equal(conc_pmutex_init(&p, NULL), 0);
    assert_int_equal(conc_pmutex_lock(&p), 0);
    assert_int_equal(conc_pmutex_unlock(&p), 0);
    assert_int_equal(conc_pmutex_destroy(&p), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(pmutex_counter_exact_across_processes),
               cmocka_unit_test(pmutex_holder_that_exits_hands_over_ownerdead),
               cmocka_unit_test(pmutex_killed_holder_wakes_a_sleeping_waiter),
               cmocka_unit_test(pmutex_thread_that_ends_holding_it),
               cmocka_unit_test(pmutex_unlocked_without_consistent_is_given_up),
               cmocka_unit_test(pmutex_owner_checks_and_timeouts_across_processes),
               cmocka_unit_test(pmutex_misuse_answers_codes))
