/* conc_pqueue, the queue between processes: FIFO order and exact bytes
 * across fork; CONC_EEMPTY and CONC_EFULL for tries and short timeouts;
 * four producer and four consumer processes deliver every item exactly
 * once, also when a producer or a consumer is SIGKILLed inside a put or a
 * get holding the queue's lock; a getter asleep when a putter is killed
 * between its store and its wake-up still gets the item; task_done/join,
 * shutdown (normal and immediate) waking a getter and a putter of another
 * process; a named queue opened by another process; misuse answered with
 * codes.
 *
 * The parent forks before it starts any thread; a child checks with CHECK
 * and reports through its exit status; every wait has a deadline. Named
 * queues use CONC_TEST_SHM_PREFIX, as tests/test_shm.c, and each such test
 * ends by checking that nothing of its own is left in /dev/shm. */
#include "test.h"

#include "process/pqueue_impl.h"

#include <dirent.h>

#define CHECK CONC_TEST_CHILD_CHECK

/* Every blocking call of these tests waits at most this long: far beyond any
 * normal hand-off, so only a lost wake-up reaches it. */
#define T CONC_SEC(10)

/* An item with bytes that say who made it: odd-sized, to catch a copy that
 * is off by a word. */
struct item {
    uint32_t producer, seq;
    uint64_t check;
    unsigned char tail[5];
};

static struct item item_of(uint32_t producer, uint32_t seq)
{
    struct item it;
    memset(&it, 0, sizeof it);
    it.producer = producer;
    it.seq = seq;
    it.check = ((uint64_t)producer << 32 | seq) ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 5; i++)
        it.tail[i] = (unsigned char)(seq * 7 + (uint32_t)i + producer);
    return it;
}

static bool item_ok(const struct item *it)
{
    struct item want = item_of(it->producer, it->seq);
    return memcmp(&want, it, sizeof want) == 0;
}

static conc_pqueue *pq_new(size_t capacity)
{
    conc_pqueue *q = NULL;
    assert_int_equal(conc_pqueue_create(&q, sizeof(struct item), capacity, NULL), 0);
    assert_non_null(q);
    return q;
}

static conc_shm *shm_new(size_t size, void **addr)
{
    conc_shm *s = NULL;
    assert_int_equal(conc_shm_create(&s, size, NULL), 0);
    *addr = conc_shm_addr(s);
    return s;
}

/* ===================================================== order and bytes */

#define SMALL 8

static int child_gets_in_order(void *arg)
{
    conc_pqueue *q = arg;
    /* Three rounds: the slots wrap around. */
    for (uint32_t round = 0; round < 3; round++) {
        for (uint32_t i = 0; i < SMALL; i++) {
            struct item it;
            CHECK(conc_pqueue_get_timed(q, &it, T) == 0);
            CHECK(item_ok(&it));
            CHECK(it.producer == 0 && it.seq == round * SMALL + i);
        }
    }
    struct item it;
    CHECK(conc_pqueue_get_timed(q, &it, 0) == CONC_EEMPTY);
    int64_t t0 = conc_now_ns();
    CHECK(conc_pqueue_get_timed(q, &it, CONC_MSEC(20)) == CONC_EEMPTY);
    CHECK(conc_now_ns() - t0 >= CONC_MSEC(20));
    CHECK(conc_pqueue_empty(q) == 1);
    return 0;
}

/* The parent fills the queue, a child takes everything in order with the
 * exact bytes; full and empty time out with their codes. */
static void pqueue_fifo_order_and_bytes_exact(void **state)
{
    (void)state;
    conc_pqueue *q = pq_new(SMALL);
    assert_int_equal(conc_pqueue_empty(q), 1);
    pid_t pid = conc_test_fork(child_gets_in_order, q);
    for (uint32_t i = 0; i < 3 * SMALL; i++) {
        struct item it = item_of(0, i);
        assert_int_equal(conc_pqueue_put_timed(q, &it, i % 2 ? T : CONC_FOREVER), 0);
    }
    conc_test_reap(pid);
    assert_int_equal(conc_pqueue_size(q), 0);
    for (uint32_t i = 0; i < SMALL; i++)
        assert_int_equal(conc_pqueue_put(q, &(struct item){.seq = i}), 0);
    assert_int_equal(conc_pqueue_full(q), 1);
    assert_int_equal(conc_pqueue_size(q), SMALL);
    struct item it = item_of(0, 99);
    assert_int_equal(conc_pqueue_put_timed(q, &it, 0), CONC_EFULL);
    int64_t t0 = conc_now_ns();
    assert_int_equal(conc_pqueue_put_timed(q, &it, CONC_MSEC(20)), CONC_EFULL);
    assert_true(conc_now_ns() - t0 >= CONC_MSEC(20));
    assert_int_equal(conc_pqueue_size(q), SMALL);
    assert_int_equal(conc_pqueue_unfinished_tasks(q), 4 * SMALL);
    assert_int_equal(conc_pqueue_destroy(q), 0);
}

/* ============================== many producers, many consumers, kills */

#define NP 4
#define NC 4

struct mp {
    conc_pqueue *q; /* the parent's handle: forked children have a copy */
    long per;       /* items per producer */
    long stop_at;   /* the victim stops inside its stop_at-th put or get */
    atomic_int stopped;
    atomic_long put_ok[NP]; /* puts that returned 0, by producer */
    atomic_long got[NC];
    _Atomic uint8_t seen[]; /* NP x per: how often each item was taken */
};

static struct mp *hook_mp;
static long hook_countdown;

/* The test hook in a victim: says it is inside, with the queue's lock held,
 * and waits for its SIGKILL. */
static void stop_here(conc_pqueue *q)
{
    (void)q;
    if (--hook_countdown == 0) {
        atomic_store(&hook_mp->stopped, 1);
        for (;;)
            pause();
    }
}

static int produce(struct mp *m, uint32_t p)
{
    for (long i = 0; i < m->per; i++) {
        struct item it = item_of(p, (uint32_t)i);
        CHECK(conc_pqueue_put_timed(m->q, &it, i % 2 ? T : CONC_FOREVER) == 0);
        atomic_store(&m->put_ok[p], i + 1);
    }
    return 0;
}

static int consume(struct mp *m, int c)
{
    long last[NP];
    for (int p = 0; p < NP; p++)
        last[p] = -1;
    for (long n = 0;; n++) {
        struct item it;
        int rc = conc_pqueue_get_timed(m->q, &it, n % 2 ? T : CONC_FOREVER);
        if (rc == CONC_ESHUTDOWN)
            return 0;
        CHECK(rc == 0);
        CHECK(item_ok(&it) && it.producer < NP && it.seq < (uint32_t)m->per);
        CHECK((long)it.seq > last[it.producer]); /* each producer's items in order */
        last[it.producer] = it.seq;
        atomic_fetch_add(&m->seen[(long)it.producer * m->per + it.seq], 1);
        atomic_fetch_add(&m->got[c], 1);
    }
}

static int producer_child(void *arg)
{
    struct mp *m = arg;
    for (uint32_t p = 0; p < NP; p++)
        if (atomic_load(&m->put_ok[p]) == -1) { /* unclaimed */
            long unclaimed = -1;
            if (atomic_compare_exchange_strong(&m->put_ok[p], &unclaimed, 0))
                return produce(m, p);
        }
    return 2;
}

static int consumer_child(void *arg)
{
    struct mp *m = arg;
    for (int c = 0; c < NC; c++)
        if (atomic_load(&m->got[c]) == -1) {
            long unclaimed = -1;
            if (atomic_compare_exchange_strong(&m->got[c], &unclaimed, 0))
                return consume(m, c);
        }
    return 2;
}

/* Producer 0, stopped inside its stop_at-th put, after the copy. */
static int producer_victim(void *arg)
{
    struct mp *m = arg;
    hook_mp = m;
    hook_countdown = m->stop_at;
    conc__test_pqueue_put_copied = stop_here;
    atomic_store(&m->put_ok[0], 0);
    return produce(m, 0);
}

/* Consumer 0, stopped inside its stop_at-th get, after the copy. */
static int consumer_victim(void *arg)
{
    struct mp *m = arg;
    hook_mp = m;
    hook_countdown = m->stop_at;
    conc__test_pqueue_get_copied = stop_here;
    atomic_store(&m->got[0], 0);
    return consume(m, 0);
}

enum victim { NOBODY, PRODUCER, CONSUMER };

static conc_shm *mp_new(struct mp **out, long per)
{
    struct mp *m;
    conc_shm *seg = shm_new(sizeof *m + (size_t)(NP * per), (void **)&m);
    m->q = pq_new(16);
    m->per = per;
    for (int i = 0; i < NP; i++)
        atomic_store(&m->put_ok[i], -1);
    for (int i = 0; i < NC; i++)
        atomic_store(&m->got[i], -1);
    *out = m;
    return seg;
}

static void kill_victim(struct mp *m, pid_t victim)
{
    CONC_TEST_POLL_UNTIL(atomic_load(&m->stopped) == 1);
    assert_int_equal(kill(victim, SIGKILL), 0);
    assert_int_equal(conc_test_wait_child(victim, 10), 128 + SIGKILL);
}

/* Four producers and four consumers; one victim, or none, killed holding
 * the queue's lock. What every put that returned 0 put is taken exactly
 * once; the killed call's item at most once. */
static void run_mp(enum victim v)
{
    struct mp *m;
    conc_shm *seg = mp_new(&m, conc_test_scaled(5000, 300));
    pid_t prod[NP], cons[NC];
    int np = 0, nc = 0;
    if (v == CONSUMER) { /* alone at first, so it surely gets its items */
        m->stop_at = 5;
        pid_t victim = conc_test_fork(consumer_victim, m);
        prod[np++] = conc_test_fork(producer_child, m);
        kill_victim(m, victim);
    }
    if (v == PRODUCER) {
        m->stop_at = m->per / 2;
        pid_t victim = conc_test_fork(producer_victim, m);
        for (; nc < NC; nc++)
            cons[nc] = conc_test_fork(consumer_child, m);
        kill_victim(m, victim);
    }
    for (; np < (v == PRODUCER ? NP - 1 : NP); np++)
        prod[np] = conc_test_fork(producer_child, m);
    for (; nc < (v == CONSUMER ? NC - 1 : NC); nc++)
        cons[nc] = conc_test_fork(consumer_child, m);
    for (int i = 0; i < np; i++)
        conc_test_reap(prod[i]);
    assert_int_equal(conc_pqueue_shutdown(m->q, false), 0);
    for (int i = 0; i < nc; i++)
        conc_test_reap(cons[i]);

    long taken = 0, ok = 0;
    for (int c = 0; c < NC; c++)
        taken += atomic_load(&m->got[c]);
    for (uint32_t p = 0; p < NP; p++) {
        long put_ok = atomic_load(&m->put_ok[p]);
        assert_int_equal(put_ok, v == PRODUCER && p == 0 ? m->stop_at - 1 : m->per);
        ok += put_ok;
        for (long i = 0; i < m->per; i++)
            assert_int_equal(atomic_load(&m->seen[(long)p * m->per + i]), i < put_ok ? 1 : 0);
    }
    assert_int_equal(taken, ok);
    assert_int_equal(conc_pqueue_size(m->q), 0);
    assert_int_equal(conc_pqueue_destroy(m->q), 0);
    assert_int_equal(conc_shm_destroy(seg), 0);
}

static void pqueue_four_producers_four_consumers_exactly_once(void **state)
{
    (void)state;
    run_mp(NOBODY);
}

/* Producer 0 is killed after copying an item into its slot, before the
 * store that publishes it: that item is never taken, and every item it put
 * before is, once; the others go on past the lock it held. */
static void pqueue_producer_killed_inside_put_loses_nothing_put(void **state)
{
    (void)state;
    run_mp(PRODUCER);
}

/* Consumer 0 is killed after copying its 5th item out, before the store
 * that takes it: another consumer gets that item, and every item is taken
 * exactly once (the victim's first four included). */
static void pqueue_consumer_killed_inside_get_loses_nothing(void **state)
{
    (void)state;
    run_mp(CONSUMER);
}

/* A getter asleep in another process; the producer is killed after the
 * store that publishes its item, before it wakes anybody, holding the lock.
 * Nobody else touches the queue: the getter's bounded re-check finds the
 * item (its lock meets the dead holder) and takes it, once. */
struct owed_shm {
    conc_pqueue *q;
    atomic_int waiting, stopped;
    struct item got;
};

static struct owed_shm *owed;

static void stop_published(conc_pqueue *q)
{
    (void)q;
    atomic_store(&owed->stopped, 1);
    for (;;)
        pause();
}

static int owed_getter(void *arg)
{
    struct owed_shm *o = arg;
    atomic_store(&o->waiting, 1);
    CHECK(conc_pqueue_get_timed(o->q, &o->got, T) == 0);
    CHECK(conc_pqueue_get_timed(o->q, &o->got, 0) == CONC_EEMPTY);
    return 0;
}

static int owed_putter(void *arg)
{
    owed = arg;
    conc__test_pqueue_put_published = stop_published;
    struct item it = item_of(2, 7);
    conc_pqueue_put(owed->q, &it);
    return 3; /* never: killed inside the put */
}

static void pqueue_getter_wakes_when_a_killed_putter_owed_the_wake_up(void **state)
{
    (void)state;
    struct owed_shm *o;
    conc_shm *seg = shm_new(sizeof *o, (void **)&o);
    o->q = pq_new(4);
    pid_t getter = conc_test_fork(owed_getter, o);
    CONC_TEST_POLL_UNTIL(atomic_load(&o->waiting) == 1 && conc_test_in_futex_wait(getter));
    pid_t putter = conc_test_fork(owed_putter, o);
    CONC_TEST_POLL_UNTIL(atomic_load(&o->stopped) == 1);
    assert_int_equal(kill(putter, SIGKILL), 0);
    assert_int_equal(conc_test_wait_child(putter, 10), 128 + SIGKILL);
    conc_test_reap(getter);
    assert_true(item_ok(&o->got));
    assert_int_equal(o->got.seq, 7);
    assert_int_equal(conc_pqueue_size(o->q), 0);
    assert_int_equal(conc_pqueue_put_timed(o->q, &o->got, 0), 0); /* the lock works on */
    assert_int_equal(conc_pqueue_destroy(o->q), 0);
    assert_int_equal(conc_shm_destroy(seg), 0);
}

/* ============================================= task_done and join */

struct join_shm {
    conc_pqueue *q;
    atomic_int joining;
    int join_rc;
};

static int child_joins(void *arg)
{
    struct join_shm *j = arg;
    CHECK(conc_pqueue_join_timed(j->q, 0) == CONC_ETIMEDOUT);
    atomic_store(&j->joining, 1);
    j->join_rc = conc_pqueue_join_timed(j->q, T);
    CHECK(j->join_rc == 0);
    CHECK(conc_pqueue_unfinished_tasks(j->q) == 0);
    return 0;
}

/* A child joins while the parent takes the items; it returns once the last
 * one is task_done'd; one task_done too many is CONC_ESTATE. */
static void pqueue_task_done_and_join_across_processes(void **state)
{
    (void)state;
    struct join_shm *j;
    conc_shm *seg = shm_new(sizeof *j, (void **)&j);
    j->q = pq_new(4);
    j->join_rc = -1;
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(conc_pqueue_put(j->q, &(struct item){.seq = i}), 0);
    assert_int_equal(conc_pqueue_unfinished_tasks(j->q), 3);
    pid_t pid = conc_test_fork(child_joins, j);
    CONC_TEST_POLL_UNTIL(atomic_load(&j->joining) == 1 && conc_test_in_futex_wait(pid));
    struct item it;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(conc_pqueue_get(j->q, &it), 0);
        assert_int_equal(conc_pqueue_task_done(j->q), 0);
        assert_int_equal(conc_pqueue_unfinished_tasks(j->q), 2 - i);
    }
    conc_test_reap(pid);
    assert_int_equal(j->join_rc, 0);
    assert_int_equal(conc_pqueue_task_done(j->q), CONC_ESTATE);
    assert_non_null(strstr(conc_error_detail(), "more times than items"));
    assert_int_equal(conc_pqueue_join_timed(j->q, 0), 0);
    assert_int_equal(conc_pqueue_destroy(j->q), 0);
    assert_int_equal(conc_shm_destroy(seg), 0);
}

/* ======================================================== shutdown */

struct shut_shm {
    conc_pqueue *q;
    atomic_int waiting;
};

static int child_blocked_get(void *arg)
{
    struct shut_shm *s = arg;
    struct item it;
    atomic_store(&s->waiting, 1);
    CHECK(conc_pqueue_get(s->q, &it) == CONC_ESHUTDOWN);
    return 0;
}

static int child_blocked_put(void *arg)
{
    struct shut_shm *s = arg;
    atomic_store(&s->waiting, 1);
    CHECK(conc_pqueue_put_timed(s->q, &(struct item){0}, T) == CONC_ESHUTDOWN);
    return 0;
}

/* Runs child, waits until it sleeps in the queue, shuts down, reaps. */
static void shutdown_wakes(int (*child)(void *), bool fill)
{
    struct shut_shm *s;
    conc_shm *seg = shm_new(sizeof *s, (void **)&s);
    s->q = pq_new(1);
    if (fill)
        assert_int_equal(conc_pqueue_put(s->q, &(struct item){0}), 0);
    pid_t pid = conc_test_fork(child, s);
    CONC_TEST_POLL_UNTIL(atomic_load(&s->waiting) == 1 && conc_test_in_futex_wait(pid));
    assert_int_equal(conc_pqueue_shutdown(s->q, false), 0);
    conc_test_reap(pid);
    assert_int_equal(conc_pqueue_is_shutdown(s->q), 1);
    assert_int_equal(conc_pqueue_destroy(s->q), 0);
    assert_int_equal(conc_shm_destroy(seg), 0);
}

static void pqueue_shutdown_wakes_a_getter_in_another_process(void **state)
{
    (void)state;
    shutdown_wakes(child_blocked_get, false);
}

static void pqueue_shutdown_wakes_a_putter_in_another_process(void **state)
{
    (void)state;
    shutdown_wakes(child_blocked_put, true);
}

/* After a shutdown, put fails and get drains what is left; an immediate one
 * discards the queued items and their unfinished tasks. */
static void pqueue_shutdown_drains_then_immediate_discards(void **state)
{
    (void)state;
    conc_pqueue *q = pq_new(8);
    struct item it;
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(conc_pqueue_put(q, &(struct item){.seq = i}), 0);
    assert_int_equal(conc_pqueue_is_shutdown(q), 0);
    assert_int_equal(conc_pqueue_shutdown(q, false), 0);
    assert_int_equal(conc_pqueue_put_timed(q, &it, 0), CONC_ESHUTDOWN);
    assert_int_equal(conc_pqueue_get(q, &it), 0);
    assert_int_equal(it.seq, 0);
    assert_int_equal(conc_pqueue_get_timed(q, &it, T), 0);
    assert_int_equal(it.seq, 1);
    assert_int_equal(conc_pqueue_size(q), 3);
    assert_int_equal(conc_pqueue_unfinished_tasks(q), 5);
    assert_int_equal(conc_pqueue_task_done(q), 0);
    assert_int_equal(conc_pqueue_shutdown(q, true), 0); /* discards 3 */
    assert_int_equal(conc_pqueue_size(q), 0);
    assert_int_equal(conc_pqueue_empty(q), 1);
    assert_int_equal(conc_pqueue_get_timed(q, &it, 0), CONC_ESHUTDOWN);
    assert_int_equal(conc_pqueue_get(q, &it), CONC_ESHUTDOWN);
    assert_int_equal(conc_pqueue_put(q, &it), CONC_ESHUTDOWN);
    assert_int_equal(conc_pqueue_unfinished_tasks(q), 1); /* taken, not done */
    assert_int_equal(conc_pqueue_join_timed(q, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_pqueue_task_done(q), 0);
    assert_int_equal(conc_pqueue_join(q), 0);
    assert_int_equal(conc_pqueue_task_done(q), CONC_ESTATE);
    assert_int_equal(conc_pqueue_shutdown(q, false), 0); /* a second one is allowed */
    assert_int_equal(conc_pqueue_destroy(q), 0);
}

/* ===================================================== named queues */

static char queue_name[256];

static int child_opens_by_name(void *arg)
{
    (void)arg;
    conc_pqueue *q = NULL;
    CHECK(conc_pqueue_open(&q, queue_name, sizeof(struct item) + 1) == CONC_EINVAL);
    CHECK(strstr(conc_error_detail(), "item_size differs") != NULL);
    CHECK(q == NULL);
    CHECK(conc_pqueue_open(&q, queue_name, sizeof(struct item)) == 0);
    struct item it;
    CHECK(conc_pqueue_get_timed(q, &it, T) == 0);
    CHECK(item_ok(&it) && it.seq == 1);
    for (uint32_t i = 2; i < 6; i++) {
        it = item_of(1, i);
        CHECK(conc_pqueue_put_timed(q, &it, T) == 0);
    }
    CHECK(conc_pqueue_destroy(q) == 0);
    return 0;
}

/* A process that did not create it opens the queue by name and trades items
 * with its creator; the creator's destroy removes the name. */
static void pqueue_named_opened_by_another_process(void **state)
{
    (void)state;
    snprintf(queue_name, sizeof queue_name, "%s%d-pqueue", conc_test_shm_prefix(), (int)getpid());
    conc_pqueue *q = NULL;
    conc_pqueue_opts o = {.name = queue_name};
    assert_int_equal(conc_pqueue_create(&q, sizeof(struct item), 4, &o), 0);
    conc_pqueue *again = NULL;
    assert_int_equal(conc_pqueue_create(&again, sizeof(struct item), 4, &o), CONC_EEXIST);
    assert_null(again);
    struct item it = item_of(1, 1);
    assert_int_equal(conc_pqueue_put(q, &it), 0);
    conc_test_reap(conc_test_fork(child_opens_by_name, NULL));
    for (uint32_t i = 2; i < 6; i++) {
        assert_int_equal(conc_pqueue_get_timed(q, &it, 0), 0);
        assert_true(item_ok(&it));
        assert_int_equal(it.seq, i);
    }
    /* Opened in this process too: a second handle on the same queue. */
    assert_int_equal(conc_pqueue_open(&again, queue_name, sizeof(struct item)), 0);
    assert_int_equal(conc_pqueue_put(again, &it), 0);
    assert_int_equal(conc_pqueue_size(q), 1);
    assert_int_equal(conc_pqueue_destroy(again), 0);
    assert_int_equal(conc_pqueue_destroy(q), 0);
    assert_int_equal(conc_pqueue_open(&again, queue_name, sizeof(struct item)), CONC_ENOENT);
    conc_test_assert_no_segment_left();
}

/* A named segment that is not a queue is refused. */
static void pqueue_open_refuses_a_segment_that_is_not_a_queue(void **state)
{
    (void)state;
    char name[256];
    snprintf(name, sizeof name, "%s%d-notq", conc_test_shm_prefix(), (int)getpid());
    conc_shm *s = NULL;
    assert_int_equal(conc_shm_create(&s, 4096, &(conc_shm_opts){.name = name}), 0);
    conc_pqueue *q = NULL;
    assert_int_equal(conc_pqueue_open(&q, name, 8), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "not a process queue"));
    assert_null(q);
    assert_int_equal(conc_shm_destroy(s), 0);
    conc_test_assert_no_segment_left();
}

/* ============================================================= misuse */

static _Atomic pid_t getter_tid;

static void *blocked_getter(void *arg)
{
    struct item it;
    atomic_store(&getter_tid, conc_test_tid());
    return (void *)(intptr_t)conc_pqueue_get(arg, &it);
}

static void pqueue_bad_input_answers_codes(void **state)
{
    (void)state;
    conc_pqueue *q = NULL;
    assert_int_equal(conc_pqueue_create(NULL, 8, 4, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "conc_pqueue_create"));
    assert_int_equal(conc_pqueue_create(&q, 0, 4, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "item_size is 0"));
    assert_int_equal(conc_pqueue_create(&q, 8, 0, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "capacity is 0"));
    assert_int_equal(conc_pqueue_create(&q, 8, 4, &(conc_pqueue_opts){.reserved_ = {1}}),
                     CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "reserved"));
    assert_int_equal(conc_pqueue_create(&q, 8, 4, &(conc_pqueue_opts){.name = "a/b"}), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "conc_pqueue_create"));
    assert_int_equal(conc_pqueue_create(&q, SIZE_MAX / 2, 4, NULL), CONC_EOVERFLOW);
    assert_null(q);
    assert_int_equal(conc_pqueue_open(NULL, "x", 8), CONC_EINVAL);
    assert_int_equal(conc_pqueue_open(&q, NULL, 8), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "conc_pqueue_open"));
    assert_int_equal(conc_pqueue_open(&q, "x", 0), CONC_EINVAL);

    assert_int_equal(conc_pqueue_create(&q, 8, 4, NULL), 0);
    uint64_t v = 0;
    assert_int_equal(conc_pqueue_put(q, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "NULL item"));
    assert_int_equal(conc_pqueue_get(q, NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_put_timed(q, &v, -5), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "negative timeout"));
    assert_int_equal(conc_pqueue_get_timed(q, &v, -5), CONC_EINVAL);
    assert_int_equal(conc_pqueue_join_timed(q, -5), CONC_EINVAL);
    assert_int_equal(conc_pqueue_task_done(q), CONC_ESTATE);
    assert_int_equal(conc_pqueue_put(NULL, &v), CONC_EINVAL);
    assert_int_equal(conc_pqueue_get(NULL, &v), CONC_EINVAL);
    assert_int_equal(conc_pqueue_size(NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_empty(NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_full(NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_is_shutdown(NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_unfinished_tasks(NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_task_done(NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_join(NULL), CONC_EINVAL);
    assert_int_equal(conc_pqueue_shutdown(NULL, false), CONC_EINVAL);
    assert_int_equal(conc_pqueue_destroy(NULL), CONC_EINVAL);

    /* A thread of this process blocked in it: destroy is refused until the
     * shutdown wakes it. */
    pthread_t t = conc_test_start(blocked_getter, q);
    CONC_TEST_POLL_UNTIL(atomic_load(&getter_tid) != 0 &&
                         conc_test_thread_in_futex_wait(atomic_load(&getter_tid), NULL));
    assert_int_equal(conc_pqueue_destroy(q), CONC_EBUSY);
    assert_non_null(strstr(conc_error_detail(), "blocked"));
    assert_int_equal(conc_pqueue_shutdown(q, false), 0);
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_int_equal((int)(intptr_t)ret, CONC_ESHUTDOWN);
    assert_int_equal(conc_pqueue_destroy(q), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(pqueue_fifo_order_and_bytes_exact),
               cmocka_unit_test(pqueue_four_producers_four_consumers_exactly_once),
               cmocka_unit_test(pqueue_producer_killed_inside_put_loses_nothing_put),
               cmocka_unit_test(pqueue_consumer_killed_inside_get_loses_nothing),
               cmocka_unit_test(pqueue_getter_wakes_when_a_killed_putter_owed_the_wake_up),
               cmocka_unit_test(pqueue_task_done_and_join_across_processes),
               cmocka_unit_test(pqueue_shutdown_wakes_a_getter_in_another_process),
               cmocka_unit_test(pqueue_shutdown_wakes_a_putter_in_another_process),
               cmocka_unit_test(pqueue_shutdown_drains_then_immediate_discards),
               cmocka_unit_test(pqueue_named_opened_by_another_process),
               cmocka_unit_test(pqueue_open_refuses_a_segment_that_is_not_a_queue),
               cmocka_unit_test(pqueue_bad_input_answers_codes))
