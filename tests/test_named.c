/* Named mutexes and semaphores (conc/process.h): processes that share only
 * a name — each child opens it by name, no handle is inherited — exclude
 * each other exactly; a holder's death reaches the next locker; the
 * semaphore's value is set by its creator only; unlink removes the name;
 * a name whose creator died before initialising it is CONC_EBROKEN, not a
 * hang; bad input. Names start with CONC_TEST_SHM_PREFIX, so the /dev/shm
 * leak check covers them. */
#define _GNU_SOURCE
#include "test.h"

#include <conc/process.h>

#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *test_name(const char *what)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s%d-%s", conc_test_shm_prefix(), (int)getpid(), what);
    return buf;
}

static bool seg_exists(const char *kind, const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/conc.%s.%s", kind, name);
    return access(path, F_OK) == 0;
}

struct counter {
    long value;
    char name[128];
};

/* A child: opens the mutex by name and adds to the counter, racily but for
 * the lock (a read, a yield, a write). */
static int add_under_named_lock(void *arg)
{
    struct counter *c = arg;
    conc_named_mutex *m;
    CONC_TEST_CHILD_CHECK(conc_named_mutex_open(&m, c->name) == 0);
    for (int i = 0; i < 300; i++) {
        CONC_TEST_CHILD_CHECK(conc_named_mutex_lock(m) == 0);
        long v = c->value;
        if (i % 16 == 0)
            sched_yield();
        c->value = v + 1;
        CONC_TEST_CHILD_CHECK(conc_named_mutex_unlock(m) == 0);
    }
    CONC_TEST_CHILD_CHECK(conc_named_mutex_close(m) == 0);
    return 0;
}

static void named_mutex_excludes_processes_that_share_a_name(void **state)
{
    (void)state;
    struct counter *c =
        mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(c != MAP_FAILED);
    snprintf(c->name, sizeof c->name, "%s", test_name("count"));
    pid_t kids[4];
    for (int i = 0; i < 4; i++)
        kids[i] = conc_test_fork(add_under_named_lock, c);
    for (int i = 0; i < 4; i++)
        conc_test_reap(kids[i]);
    assert_int_equal(c->value, 4 * 300);
    assert_true(seg_exists("mutex", c->name)); /* it stays until unlinked */
    assert_int_equal(conc_named_mutex_unlink(c->name), 0);
    assert_false(seg_exists("mutex", c->name));
    assert_int_equal(conc_named_mutex_unlink(c->name), CONC_ENOENT);
    munmap(c, sizeof *c);
}

static int lock_and_die(void *arg)
{
    conc_named_mutex *m;
    CONC_TEST_CHILD_CHECK(conc_named_mutex_open(&m, arg) == 0);
    CONC_TEST_CHILD_CHECK(conc_named_mutex_lock(m) == 0);
    raise(SIGKILL);
    return 1;
}

static void named_mutex_holder_death_reaches_the_next_locker(void **state)
{
    (void)state;
    char name[128];
    snprintf(name, sizeof name, "%s", test_name("dead"));
    pid_t kid = conc_test_fork(lock_and_die, name);
    assert_int_equal(conc_test_wait_child(kid, 10), 128 + SIGKILL);
    conc_named_mutex *m;
    assert_int_equal(conc_named_mutex_open(&m, name), 0);
    assert_int_equal(conc_named_mutex_lock_timed(m, CONC_SEC(5)), CONC_EOWNERDEAD);
    assert_int_equal(conc_named_mutex_consistent(m), 0);
    assert_int_equal(conc_named_mutex_unlock(m), 0);
    assert_int_equal(conc_named_mutex_lock_timed(m, 0), 0);
    assert_int_equal(conc_named_mutex_unlock(m), 0);
    assert_int_equal(conc_named_mutex_close(m), 0);
    assert_int_equal(conc_named_mutex_unlink(name), 0);
}

struct sem_child {
    char name[128];
    int took_two[2]; /* a pipe: the child says it took both */
};

static int take_two_then_wait(void *arg)
{
    struct sem_child *c = arg;
    conc_named_sem *s;
    /* 99 is ignored: the creator set the value. */
    CONC_TEST_CHILD_CHECK(conc_named_sem_open(&s, c->name, 99) == 0);
    CONC_TEST_CHILD_CHECK(conc_named_sem_acquire_timed(s, 0) == 0);
    CONC_TEST_CHILD_CHECK(conc_named_sem_acquire_timed(s, 0) == 0);
    CONC_TEST_CHILD_CHECK(conc_named_sem_acquire_timed(s, 0) == CONC_ETIMEDOUT);
    CONC_TEST_CHILD_CHECK(write(c->took_two[1], "x", 1) == 1);
    /* The parent releases one once it hears. */
    CONC_TEST_CHILD_CHECK(conc_named_sem_acquire_timed(s, CONC_SEC(10)) == 0);
    CONC_TEST_CHILD_CHECK(conc_named_sem_close(s) == 0);
    return 0;
}

static void named_sem_value_is_its_creators(void **state)
{
    (void)state;
    struct sem_child c;
    snprintf(c.name, sizeof c.name, "%s", test_name("sem"));
    assert_int_equal(pipe(c.took_two), 0);
    conc_named_sem *s;
    assert_int_equal(conc_named_sem_open(&s, c.name, 2), 0);
    pid_t kid = conc_test_fork(take_two_then_wait, &c);
    char x;
    assert_int_equal(read(c.took_two[0], &x, 1), 1);
    assert_int_equal(conc_named_sem_acquire_timed(s, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_named_sem_release(s), 0);
    conc_test_reap(kid);
    close(c.took_two[0]);
    close(c.took_two[1]);
    assert_int_equal(conc_named_sem_close(s), 0);
    assert_int_equal(conc_named_sem_unlink(c.name), 0);
    assert_false(seg_exists("sem", c.name));
}

/* A segment with the mutex's name that nobody initialised: its creator
 * died between create and init. */
static void named_mutex_of_a_dead_creator_is_broken(void **state)
{
    (void)state;
    char name[128], path[200];
    snprintf(name, sizeof name, "%s", test_name("half"));
    snprintf(path, sizeof path, "conc.mutex.%s", name);
    conc_shm *raw;
    assert_int_equal(conc_shm_create(&raw, 256, &(conc_shm_opts){.name = path, .keep = true}), 0);
    conc_named_mutex *m = (conc_named_mutex *)&m;
    assert_int_equal(conc_named_mutex_open(&m, name), CONC_EBROKEN);
    assert_null(m);
    assert_int_equal(conc_shm_destroy(raw), 0);
    assert_int_equal(conc_named_mutex_unlink(name), 0);
    /* Unlinked, the name makes a fresh one. */
    assert_int_equal(conc_named_mutex_open(&m, name), 0);
    assert_int_equal(conc_named_mutex_lock_timed(m, 0), 0);
    assert_int_equal(conc_named_mutex_unlock(m), 0);
    assert_int_equal(conc_named_mutex_close(m), 0);
    assert_int_equal(conc_named_mutex_unlink(name), 0);
}

static void named_bad_input(void **state)
{
    (void)state;
    conc_named_mutex *m;
    conc_named_sem *s;
    char long_name[400];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    assert_int_equal(conc_named_mutex_open(NULL, "x"), CONC_EINVAL);
    assert_int_equal(conc_named_mutex_open(&m, NULL), CONC_EINVAL);
    assert_int_equal(conc_named_mutex_open(&m, ""), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "no name"));
    assert_int_equal(conc_named_mutex_open(&m, long_name), CONC_EINVAL);
    assert_int_equal(conc_named_mutex_open(&m, "a/b"), CONC_EINVAL);
    assert_int_equal(conc_named_sem_open(&s, "x", (size_t)CONC_SEM_VALUE_MAX + 1), CONC_EINVAL);
    assert_int_equal(conc_named_mutex_lock(NULL), CONC_EINVAL);
    assert_int_equal(conc_named_mutex_unlock(NULL), CONC_EINVAL);
    assert_int_equal(conc_named_sem_acquire(NULL), CONC_EINVAL);
    assert_int_equal(conc_named_sem_release(NULL), CONC_EINVAL);
    assert_int_equal(conc_named_mutex_close(NULL), 0);
    assert_int_equal(conc_named_sem_close(NULL), 0);
    assert_int_equal(conc_named_mutex_unlink(""), CONC_EINVAL);
}

CONC_TEST_MAIN(cmocka_unit_test(named_mutex_excludes_processes_that_share_a_name),
               cmocka_unit_test(named_mutex_holder_death_reaches_the_next_locker),
               cmocka_unit_test(named_sem_value_is_its_creators),
               cmocka_unit_test(named_mutex_of_a_dead_creator_is_broken),
               cmocka_unit_test(named_bad_input))
