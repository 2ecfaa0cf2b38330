/* conc_procpool: the parent's side of the process pool (procpool_impl.h has
 * the shared layout and the hand-off).
 *
 * pp->lock guards the workers' table, the queue and the pool's state. A
 * submission posts its task straight into an idle worker's slot when the
 * queue is empty, or queues it. The collector thread does everything else:
 * it takes results and finishes their futures (outside the lock: callbacks
 * run there), posts queued tasks to the workers that freed up, retires
 * workers (max_tasks_per_child, shutdown), reaps dead ones — failing the
 * task a dead worker ran with CONC_EWORKERDIED — and starts their
 * replacements. It spins while tasks are out, for the few microseconds a
 * short task takes, and otherwise sleeps in poll() on the eventfd the
 * workers ring and the workers' pidfds. */
#define _GNU_SOURCE
#include "exec/procpool/procpool_impl.h"

#include "arch/cpu.h"
#include "core/deadline.h"
#include "core/misuse.h"
#include "core/platform.h"
#include "process/process_impl.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* How long the collector spins for results while tasks are out. */
#define CONC__PP_COLLECTOR_SPIN_NS 20000
/* How often a busy collector looks for dead workers. */
#define CONC__PP_REAP_CHECK_NS 1000000

static void conc__pp_cancel_requested(conc_future *f);
static void conc__pp_await(conc_future *f, int64_t deadline);

static const struct conc__future_ops conc__pp_ops = {NULL, conc__pp_cancel_requested,
                                                     conc__pp_await};

static struct conc__pp_slot *conc__pp_slot(conc_procpool *pp, size_t i)
{
    return conc__pp_slot_at(pp->map, i);
}

static void conc__pp_ring_collector(conc_procpool *pp)
{
    uint64_t one = 1;
    while (write(pp->eventfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Wakes worker i if it sleeps: after its state was stored (seq_cst). */
static void conc__pp_wake_worker(conc_procpool *pp, size_t i)
{
    struct conc__pp_slot *s = conc__pp_slot(pp, i);
    if (atomic_load_explicit(&s->worker_sleeps, memory_order_seq_cst))
        conc__futex_wake(&s->state, 1, true);
}

/* With the lock held: hands f (claimed) to idle worker i. The caller wakes
 * the worker (conc__pp_wake_worker) once it has let the lock go. */
static void conc__pp_post(conc_procpool *pp, size_t i, const struct conc__fnref *fn,
                          const void *arg, size_t size, conc_future *f)
{
    struct conc__pp_slot *s = conc__pp_slot(pp, i);
    struct conc__pp_worker *w = &pp->workers[i];
    memcpy(s->module, fn->module, fn->module_len);
    s->module_len = (uint32_t)fn->module_len;
    s->offset = fn->offset;
    s->arg_len = size;
    if (size)
        memcpy(s->data, arg, size);
    atomic_store_explicit(&CONC__FUTURE_EXEC(f, struct conc__pp_fexec)->worker, (uint32_t)i,
                          memory_order_relaxed);
    atomic_store_explicit(&s->cancel, conc__future_cancel_wanted(f), memory_order_relaxed);
    atomic_store_explicit(&s->parent_cpu, sched_getcpu(), memory_order_relaxed);
    w->state = CONC__PPW_BUSY;
    w->running = f;
    pp->in_flight++;
    atomic_store_explicit(&s->state, CONC__PP_TASK, memory_order_seq_cst);
}

/* With the lock held: tells worker i to exit. */
static void conc__pp_retire(conc_procpool *pp, size_t i)
{
    pp->workers[i].state = CONC__PPW_RETIRING;
    atomic_store_explicit(&conc__pp_slot(pp, i)->state, CONC__PP_EXIT, memory_order_seq_cst);
    conc__pp_wake_worker(pp, i);
}

static void conc__pp_cancel_requested(conc_future *f)
{
    conc_procpool *pp = (conc_procpool *)f->exec;
    size_t i = atomic_load_explicit(&CONC__FUTURE_EXEC(f, struct conc__pp_fexec)->worker,
                                    memory_order_relaxed);
    pthread_mutex_lock(&pp->lock);
    if (i < pp->nworkers && pp->workers[i].running == f)
        atomic_store_explicit(&conc__pp_slot(pp, i)->cancel, true, memory_order_relaxed);
    pthread_mutex_unlock(&pp->lock);
}

/* ---- futures to finish once the lock is let go ---- */

struct conc__pp_end {
    conc_future *f;
    int status;
    conc_result r;
};

/* Room for this many per pass; a pass that fills it stops, and its caller
 * passes again once they are finished. */
#define CONC__PP_ENDS 16

struct conc__pp_ends {
    struct conc__pp_end v[CONC__PP_ENDS];
    size_t n;
    struct conc__pp_pending *failed; /* queued tasks to fail with `failed_status` */
    int failed_status;
};

static bool conc__pp_ends_full(const struct conc__pp_ends *e)
{
    return e->n == CONC__PP_ENDS;
}

static void conc__pp_ends_add(struct conc__pp_ends *e, conc_future *f, int status, conc_result r)
{
    e->v[e->n++] = (struct conc__pp_end){f, status, r}; /* the callers checked the room */
}

static void conc__pp_ends_finish(struct conc__pp_ends *e)
{
    for (size_t k = 0; k < e->n; k++) {
        conc__future_finish(e->v[k].f, e->v[k].status, &e->v[k].r);
        conc_future_release(e->v[k].f);
    }
    e->n = 0;
    while (e->failed) {
        struct conc__pp_pending *p = e->failed;
        e->failed = p->next;
        if (conc__future_claim(p->f))
            conc__future_fail_claimed(p->f, e->failed_status);
        conc_future_release(p->f);
        free(p);
    }
}

/* ---- the collector ---- */

/* With the lock held: worker i's result into a future to finish. */
static void conc__pp_take_result(conc_procpool *pp, size_t i, struct conc__pp_ends *e)
{
    struct conc__pp_slot *s = conc__pp_slot(pp, i);
    struct conc__pp_worker *w = &pp->workers[i];
    conc_result r = {.value = s->value};
    int status = s->status;
    if (s->result_len) {
        r.data = malloc(s->result_len);
        if (r.data) {
            memcpy(r.data, s->data, s->result_len);
            r.len = s->result_len;
            r.free_fn = free;
        } else if (status == 0) {
            status = CONC_ENOMEM;
        }
    }
    conc__pp_ends_add(e, w->running, status, r);
    atomic_store_explicit(&s->state, CONC__PP_READY, memory_order_relaxed); /* taken */
    w->running = NULL;
    w->tasks++;
    pp->in_flight--;
    w->state = CONC__PPW_IDLE;
}

/* With the lock held: gives idle worker i the next queued task, if any
 * that was not cancelled meanwhile. */
static bool conc__pp_dispatch(conc_procpool *pp, size_t i)
{
    while (pp->head) {
        struct conc__pp_pending *p = pp->head;
        pp->head = p->next;
        if (!pp->head)
            pp->tail = NULL;
        bool claimed = conc__future_claim(p->f);
        if (claimed)
            conc__pp_post(pp, i, &p->fn, p->arg, p->size, p->f);
        else
            conc_future_release(p->f); /* cancelled while it waited */
        free(p);
        if (claimed)
            return true;
    }
    return false;
}

/* With the lock held: looks at worker i's slot once. Returns whether
 * anything moved. */
static bool conc__pp_scan_worker(conc_procpool *pp, size_t i, struct conc__pp_ends *e)
{
    struct conc__pp_worker *w = &pp->workers[i];
    uint32_t st = atomic_load_explicit(&conc__pp_slot(pp, i)->state, memory_order_acquire);
    bool moved = false;
    if (w->state == CONC__PPW_STARTING && st == CONC__PP_READY) {
        w->state = CONC__PPW_IDLE;
        moved = true;
    } else if (w->state == CONC__PPW_STARTING && st == CONC__PP_INIT_FAILED) {
        if (!pp->broken)
            pp->broken = conc__pp_slot(pp, i)->status;
        w->state = CONC__PPW_RETIRING; /* it exits by itself */
        moved = true;
    } else if (w->state == CONC__PPW_BUSY && st == CONC__PP_DONE) {
        conc__pp_take_result(pp, i, e);
        moved = true;
        if (pp->max_tasks_per_child && w->tasks >= pp->max_tasks_per_child) {
            conc__pp_retire(pp, i);
            return true;
        }
    }
    if (w->state != CONC__PPW_IDLE)
        return moved;
    if (!pp->broken && conc__pp_dispatch(pp, i)) {
        conc__pp_wake_worker(pp, i);
        return true;
    }
    if (pp->shutdown || pp->broken)
        conc__pp_retire(pp, i);
    return moved;
}

/* With the lock held: looks at every worker's slot once, or until e is
 * full (then it says it moved: the caller passes again). Returns whether
 * anything moved. */
static bool conc__pp_scan(conc_procpool *pp, struct conc__pp_ends *e)
{
    bool moved = false;
    for (size_t i = 0; i < pp->nworkers; i++) {
        if (conc__pp_ends_full(e))
            return true;
        moved |= conc__pp_scan_worker(pp, i, e);
    }
    if (pp->broken && pp->head) { /* nothing queued will ever run */
        struct conc__pp_pending **end = &e->failed;
        while (*end)
            end = &(*end)->next;
        *end = pp->head;
        pp->head = pp->tail = NULL;
        e->failed_status = CONC_EBROKEN;
        moved = true;
    }
    return moved;
}

/* With the lock held: worker i has ended; reaps it. */
static void conc__pp_reap(conc_procpool *pp, size_t i, struct conc__pp_ends *e)
{
    struct conc__pp_worker *w = &pp->workers[i];
    int code = 0;
    (void)conc_process_join(w->proc, &code);
    (void)conc_process_destroy(w->proc);
    w->proc = NULL;
    if (w->state == CONC__PPW_BUSY) {
        conc__pp_ends_add(e, w->running, CONC_EWORKERDIED, (conc_result){.value = code});
        w->running = NULL;
        pp->in_flight--;
    } else if (w->state == CONC__PPW_STARTING && !pp->broken) {
        /* It died before it was ready: its initializer crashed, and so
         * would every replacement's. */
        uint32_t st = atomic_load_explicit(&conc__pp_slot(pp, i)->state, memory_order_acquire);
        if (st == CONC__PP_INIT_FAILED)
            pp->broken = conc__pp_slot(pp, i)->status;
        else if (st != CONC__PP_READY)
            pp->broken = CONC_EWORKERDIED;
    }
    w->state = CONC__PPW_NONE;
    w->tasks = 0;
}

/* Starts a process for worker i (state STARTING, no process): without the
 * lock, since nobody else touches a starting worker's slot. The caller
 * stores *proc in the table under the lock. */
static int conc__pp_start_worker(conc_procpool *pp, size_t i, conc_process **proc)
{
    struct conc__pp_slot *s = conc__pp_slot(pp, i);
    atomic_store_explicit(&s->state, CONC__PP_EMPTY, memory_order_relaxed);
    atomic_store_explicit(&s->worker_sleeps, 0, memory_order_relaxed);
    atomic_store_explicit(&s->cancel, false, memory_order_relaxed);
    if (pp->initargs_size) /* the slot's data carries the initializer's argument */
        memcpy(s->data, pp->initargs, pp->initargs_size);
    struct conc__pp_worker_arg a = {(uint32_t)i, pp->map_size};
    int fds[2] = {pp->memfd, pp->eventfd};
    return conc__process_start_fds(proc, conc__pp_worker_main, &a, sizeof a, fds, 2);
}

/* Without the lock: starts a replacement for every worker slot left empty,
 * unless the pool is shutting down or broken. A start that fails breaks
 * the pool: the tasks would otherwise wait for a worker that never comes. */
static void conc__pp_replace(conc_procpool *pp)
{
    for (size_t i = 0; i < pp->nworkers; i++) {
        pthread_mutex_lock(&pp->lock);
        bool start = pp->workers[i].state == CONC__PPW_NONE && !pp->shutdown && !pp->broken;
        if (start)
            pp->workers[i].state = CONC__PPW_STARTING;
        pthread_mutex_unlock(&pp->lock);
        if (!start)
            continue;
        conc_process *proc = NULL;
        int rc = conc__pp_start_worker(pp, i, &proc);
        pthread_mutex_lock(&pp->lock);
        pp->workers[i].proc = proc;
        if (rc != 0) {
            pp->workers[i].state = CONC__PPW_NONE;
            if (!pp->broken)
                pp->broken = rc;
        }
        pthread_mutex_unlock(&pp->lock);
    }
}

/* Polls the eventfd and the live workers' pidfds for up to timeout_ms
 * (-1: without limit); reaps the workers that ended. Lock not held. */
static void conc__pp_poll(conc_procpool *pp, int timeout_ms, struct conc__pp_ends *e)
{
    size_t n = pp->nworkers;
    struct pollfd pfd[n + 1];
    size_t who[n + 1];
    size_t k = 0;
    pfd[k++] = (struct pollfd){.fd = pp->eventfd, .events = POLLIN};
    pthread_mutex_lock(&pp->lock);
    for (size_t i = 0; i < n; i++)
        if (pp->workers[i].proc) {
            who[k] = i;
            pfd[k++] = (struct pollfd){.fd = pp->workers[i].proc->pidfd, .events = POLLIN};
        }
    pthread_mutex_unlock(&pp->lock);
    if (poll(pfd, k, timeout_ms) <= 0)
        return;
    if (pfd[0].revents & POLLIN) {
        uint64_t count;
        (void)!read(pp->eventfd, &count, sizeof count);
    }
    pthread_mutex_lock(&pp->lock);
    for (size_t j = 1; j < k; j++) /* one left out stays readable for the next poll */
        if (pfd[j].revents && !conc__pp_ends_full(e))
            conc__pp_reap(pp, who[j], e);
    pthread_mutex_unlock(&pp->lock);
}

/* With the lock held: whether the collector's work is over (shut down or
 * broken, nothing queued, no worker left). */
static bool conc__pp_over(conc_procpool *pp)
{
    if (!(pp->shutdown || pp->broken) || pp->head)
        return false;
    for (size_t i = 0; i < pp->nworkers; i++)
        if (pp->workers[i].state != CONC__PPW_NONE)
            return false;
    return true;
}

static void *conc__pp_collector(void *arg)
{
    conc_procpool *pp = arg;
    struct conc__pp_ends e = {.n = 0};
    int64_t spin_until = 0, next_reap_check = conc__now() + CONC__PP_REAP_CHECK_NS;
    for (;;) {
        pthread_mutex_lock(&pp->lock);
        bool moved = conc__pp_scan(pp, &e);
        bool busy = pp->in_flight > 0;
        bool over = conc__pp_over(pp);
        if (over)
            pp->collector_done = true;
        pthread_mutex_unlock(&pp->lock);
        conc__pp_ends_finish(&e);
        if (over)
            break;
        conc__pp_replace(pp);
        int64_t now = conc__now();
        if (now >= next_reap_check) { /* dead workers, also while results stream */
            conc__pp_poll(pp, 0, &e);
            conc__pp_ends_finish(&e);
            next_reap_check = now + CONC__PP_REAP_CHECK_NS;
        }
        if (moved) {
            spin_until = now + CONC__PP_COLLECTOR_SPIN_NS;
            continue;
        }
        if (busy && now < spin_until) {
            conc__cpu_relax();
            continue;
        }
        /* Asleep: flag it, look once more (the Dekker pair with the
         * workers' notify), then poll. */
        atomic_store_explicit(&pp->sh->collector_sleeps, 1, memory_order_seq_cst);
        pthread_mutex_lock(&pp->lock);
        moved = conc__pp_scan(pp, &e);
        over = conc__pp_over(pp);
        pthread_mutex_unlock(&pp->lock);
        conc__pp_ends_finish(&e);
        if (!moved && !over)
            conc__pp_poll(pp, -1, &e);
        atomic_store_explicit(&pp->sh->collector_sleeps, 0, memory_order_relaxed);
        conc__pp_ends_finish(&e);
        spin_until = conc__now() + CONC__PP_COLLECTOR_SPIN_NS;
    }
    pthread_mutex_lock(&pp->lock);
    pthread_cond_broadcast(&pp->ended);
    pthread_mutex_unlock(&pp->lock);
    return NULL;
}

/* ---- a waiter that takes its own result ---- */

/* Threads between entering conc__pp_await and counting themselves in
 * their pool's `awaiting` (any pool). */
static _Atomic uint32_t conc__pp_entering;

/* How long a waiter watches the slots before it sleeps. */
#define CONC__PP_AWAIT_SPIN_NS 30000

/* Whether some slot holds a result not yet taken (no lock: a hint). */
static bool conc__pp_any_done(conc_procpool *pp)
{
    for (size_t i = 0; i < pp->nworkers; i++)
        if (atomic_load_explicit(&conc__pp_slot(pp, i)->state, memory_order_relaxed) ==
            CONC__PP_DONE)
            return true;
    return false;
}

/* Whether a worker that runs a task, or spins for one, last ran on this
 * CPU (no lock: a hint). Spinning there would only delay it. */
static bool conc__pp_worker_here(conc_procpool *pp)
{
    int cpu = sched_getcpu();
    for (size_t i = 0; i < pp->nworkers; i++) {
        struct conc__pp_slot *s = conc__pp_slot(pp, i);
        if (atomic_load_explicit(&s->worker_cpu, memory_order_relaxed) == cpu &&
            atomic_load_explicit(&s->state, memory_order_relaxed) != CONC__PP_EMPTY)
            return true;
    }
    return false;
}

/* With the lock let go: takes the results that are in, posts queued tasks
 * to the workers that freed up, finishes the futures. */
static void conc__pp_collect_now(conc_procpool *pp)
{
    struct conc__pp_ends e = {.n = 0};
    bool again;
    do {
        pthread_mutex_lock(&pp->lock);
        (void)conc__pp_scan(pp, &e);
        again = conc__pp_ends_full(&e);
        pthread_mutex_unlock(&pp->lock);
        conc__pp_ends_finish(&e);
    } while (again);
}

/* The future_ops await: for a while, this thread does the collector's
 * work itself — watches every slot, takes the results that come (its own
 * among them) and posts queued tasks — until f is done. The collector
 * would have had to be woken for each result, then wake us. */
static void conc__pp_await(conc_future *f, int64_t deadline)
{
    conc_procpool *pp = (conc_procpool *)f->exec;
    /* The pool may be destroyed by another thread once f is done: only a
     * count the destroy waits for keeps it (conc__pp_quiesce). */
    atomic_fetch_add_explicit(&conc__pp_entering, 1, memory_order_seq_cst);
    bool done = conc__future_is_done(f);
    if (!done)
        atomic_fetch_add_explicit(&pp->awaiting, 1, memory_order_seq_cst);
    atomic_fetch_sub_explicit(&conc__pp_entering, 1, memory_order_seq_cst);
    if (done)
        return;
    int64_t until = conc__now() + CONC__PP_AWAIT_SPIN_NS;
    if (until > deadline)
        until = deadline;
    atomic_fetch_add_explicit(&pp->sh->watchers, 1, memory_order_seq_cst);
    for (unsigned n = 0; !conc__future_is_done(f); n++) {
        if (conc__pp_any_done(pp)) {
            conc__pp_collect_now(pp);
            continue;
        }
        if ((n & 63) == 63 && conc__now() >= until)
            break;
        if ((n & 7) == 7 && conc__pp_worker_here(pp))
            sched_yield(); /* a worker runs on this CPU: let it */
        else
            conc__cpu_relax();
    }
    /* Unwatched before the last look: a state stored after it rings the
     * collector; one stored before it (a DONE, or a new worker's READY,
     * which the loop above does not look for) is seen here: the workers'
     * notify is the other half of this pair. */
    atomic_fetch_sub_explicit(&pp->sh->watchers, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    conc__pp_collect_now(pp);
    atomic_fetch_sub_explicit(&pp->awaiting, 1, memory_order_seq_cst);
}

/* Before destroy frees pp, whose futures are all done: waits for the
 * threads inside conc__pp_await to leave it. One that enters later finds
 * its future done and touches nothing of pp; one that entered earlier has
 * counted itself in pp->awaiting by the time conc__pp_entering is 0 — a
 * count held for a few instructions, so that moment comes at once. */
static void conc__pp_quiesce(conc_procpool *pp)
{
    while (atomic_load_explicit(&conc__pp_entering, memory_order_seq_cst))
        sched_yield();
    while (atomic_load_explicit(&pp->awaiting, memory_order_seq_cst))
        sched_yield(); /* a watch lasts at most CONC__PP_AWAIT_SPIN_NS */
}

/* ---- the API ---- */

static void conc__pp_free(conc_procpool *pp)
{
    while (pp->head) {
        struct conc__pp_pending *p = pp->head;
        pp->head = p->next;
        conc_future_release(p->f);
        free(p);
    }
    if (pp->map)
        munmap(pp->map, pp->map_size);
    if (pp->memfd >= 0)
        close(pp->memfd);
    if (pp->eventfd >= 0)
        close(pp->eventfd);
    free(pp->workers);
    free(pp->initargs);
    pthread_cond_destroy(&pp->ended);
    pthread_mutex_destroy(&pp->lock);
    free(pp);
}

static size_t conc__pp_round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Sizes and maps the shared memory; fills the header. */
static int conc__pp_map(conc_procpool *pp, const conc_procpool_opts *o, size_t data_max,
                        const struct conc__fnref *init)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t slot_size = conc__pp_round_up(sizeof(struct conc__pp_slot) + data_max, page);
    size_t head = conc__pp_round_up(sizeof(struct conc__pp_shared), page);
    if (head > slot_size)
        slot_size = head; /* the header takes the place of slot -1 */
    pp->map_size = slot_size * (pp->nworkers + 1);
    pp->memfd = memfd_create("conc-procpool", MFD_CLOEXEC);
    if (pp->memfd < 0)
        return -errno;
    if (ftruncate(pp->memfd, (off_t)pp->map_size) != 0)
        return -errno;
    void *base = mmap(NULL, pp->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, pp->memfd, 0);
    if (base == MAP_FAILED)
        return -errno;
    pp->map = base;
    pp->sh = base;
    pp->sh->nslots = (uint32_t)pp->nworkers;
    pp->sh->slot_size = slot_size;
    pp->sh->data_max = data_max;
    pp->sh->result_max = o->result_max;
    if (init) {
        memcpy(pp->sh->init_module, init->module, init->module_len);
        pp->sh->has_init = 1;
        pp->sh->init_module_len = (uint32_t)init->module_len;
        pp->sh->init_offset = init->offset;
        pp->sh->initargs_len = o->initargs_size;
        if (o->initargs_size) {
            pp->initargs = malloc(o->initargs_size);
            if (!pp->initargs)
                return CONC_ENOMEM;
            memcpy(pp->initargs, o->initargs, o->initargs_size);
            pp->initargs_size = o->initargs_size;
        }
    }
    pp->sh->magic = CONC__PP_MAGIC;
    return 0;
}

int conc_procpool_create(conc_procpool **out, const conc_procpool_opts *opts)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool pointer");
    *out = NULL;
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    conc_procpool_opts o = opts ? *opts : (conc_procpool_opts){0};
    if (!o.max_workers) {
        int64_t cpus = conc_cpu_count();
        o.max_workers = cpus > 0 ? (size_t)cpus : 1;
    }
    if (o.max_workers > 4096)
        return CONC__MISUSE(CONC_EINVAL, "max_workers above 4096");
    o.arg_max = o.arg_max ? o.arg_max : CONC_PROCPOOL_DATA_DEFAULT;
    o.result_max = o.result_max ? o.result_max : CONC_PROCPOOL_DATA_DEFAULT;
    if (o.arg_max > ((size_t)1 << 30) || o.result_max > ((size_t)1 << 30))
        return CONC__MISUSE(CONC_EINVAL, "arg_max or result_max above 1 GiB");
    if (!o.initargs && o.initargs_size)
        return CONC__MISUSE(CONC_EINVAL, "initargs NULL with a size");
    if (o.initargs_size > o.arg_max)
        return CONC__MISUSE(CONC_EINVAL, "initargs larger than arg_max");
    struct conc__fnref init;
    if (o.initializer && !conc__fnref_of((void (*)(void))o.initializer, &init))
        return CONC__MISUSE(CONC_EINVAL, "the initializer is not in a loaded module's code");
    struct conc__fnref self;
    if (!conc__fnref_of((void (*)(void))conc__pp_worker_main, &self))
        return CONC_ENOSYS;

    conc_procpool *pp = calloc(1, sizeof *pp);
    if (!pp)
        return CONC_ENOMEM;
    conc__executor_init(&pp->exec, &conc__pp_ops);
    pthread_mutex_init(&pp->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pp->ended, &ca);
    pthread_condattr_destroy(&ca);
    pp->memfd = pp->eventfd = -1;
    pp->nworkers = o.max_workers;
    pp->max_tasks_per_child = o.max_tasks_per_child;
    pp->arg_max = o.arg_max;
    pp->workers = calloc(pp->nworkers, sizeof *pp->workers);
    int rc = pp->workers ? 0 : CONC_ENOMEM;
    if (!rc)
        rc = conc__pp_map(pp, &o, o.arg_max > o.result_max ? o.arg_max : o.result_max,
                          o.initializer ? &init : NULL);
    if (!rc) {
        pp->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pp->eventfd < 0)
            rc = -errno;
    }
    for (size_t i = 0; !rc && i < pp->nworkers; i++) {
        pp->workers[i].state = CONC__PPW_STARTING;
        rc = conc__pp_start_worker(pp, i, &pp->workers[i].proc);
        if (rc)
            pp->workers[i].state = CONC__PPW_NONE;
    }
    if (!rc) {
        rc = -pthread_create(&pp->collector, NULL, conc__pp_collector, pp);
    }
    if (rc) {
        for (size_t i = 0; i < pp->nworkers; i++)
            if (pp->workers && pp->workers[i].proc) {
                (void)conc_process_kill(pp->workers[i].proc);
                (void)conc_process_join(pp->workers[i].proc, NULL);
                (void)conc_process_destroy(pp->workers[i].proc);
            }
        conc__pp_free(pp);
        return rc;
    }
    *out = pp;
    return 0;
}

int conc__pp_submit(conc_procpool *pp, const struct conc__fnref *fn, const void *arg, size_t size,
                    conc_future **f)
{
    if (size > pp->arg_max)
        return CONC_EOVERFLOW;
    if (conc__executor_lost(&pp->exec))
        return CONC_EBROKEN;
    pthread_mutex_lock(&pp->lock);
    int rc = pp->shutdown ? CONC_ESHUTDOWN : pp->broken ? CONC_EBROKEN : 0;
    conc_future *fut = NULL;
    if (!rc) {
        fut = conc__future_new(NULL, NULL, &pp->exec, f ? 2 : 1);
        if (!fut)
            rc = CONC_ENOMEM;
    }
    size_t idle = pp->nworkers;
    if (!rc && !pp->head)
        for (size_t i = 0; i < pp->nworkers; i++)
            if (pp->workers[i].state == CONC__PPW_IDLE) {
                idle = i;
                break;
            }
    if (!rc && idle < pp->nworkers) {
        (void)conc__future_claim(fut);
        conc__pp_post(pp, idle, fn, arg, size, fut);
    } else if (!rc) {
        struct conc__pp_pending *p = malloc(sizeof *p + size);
        if (!p) {
            rc = CONC_ENOMEM;
        } else {
            *p = (struct conc__pp_pending){NULL, fut, *fn, size};
            if (size)
                memcpy(p->arg, arg, size);
            if (pp->tail)
                pp->tail->next = p;
            else
                pp->head = p;
            pp->tail = p;
        }
    }
    pthread_mutex_unlock(&pp->lock);
    if (rc) {
        if (fut) { /* never seen by anyone: free it whole */
            atomic_store_explicit(&fut->refs, 1, memory_order_relaxed);
            conc_future_release(fut);
        }
        return rc;
    }
    if (idle < pp->nworkers)
        conc__pp_wake_worker(pp, idle);
    if (f)
        *f = fut;
    return 0;
}

int conc_procpool_submit(conc_procpool *pp, conc_proc_task_fn fn, const void *arg, size_t size,
                         conc_future **f)
{
    if (f)
        *f = NULL;
    if (!pp || !fn)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool or function");
    if (!arg && size)
        return CONC__MISUSE(CONC_EINVAL, "arg NULL with a size");
    struct conc__fnref ref;
    if (!conc__fnref_of((void (*)(void))fn, &ref))
        return CONC__MISUSE(CONC_EINVAL, "fn is not in a loaded module's code");
    return conc__pp_submit(pp, &ref, arg, size, f);
}

/* Shuts the pool down; cancels the queued tasks if asked; signal > 0:
 * sends it to every worker. */
static void conc__pp_stop(conc_procpool *pp, bool cancel_futures, int signal)
{
    pthread_mutex_lock(&pp->lock);
    pp->shutdown = true;
    struct conc__pp_pending *cancelled = NULL;
    if (cancel_futures) {
        cancelled = pp->head;
        pp->head = pp->tail = NULL;
    }
    if (signal)
        for (size_t i = 0; i < pp->nworkers; i++)
            if (pp->workers[i].proc)
                (void)(signal == SIGKILL ? conc_process_kill(pp->workers[i].proc)
                                         : conc_process_terminate(pp->workers[i].proc));
    pthread_mutex_unlock(&pp->lock);
    while (cancelled) {
        struct conc__pp_pending *p = cancelled;
        cancelled = p->next;
        (void)conc__future_cancel_pending(p->f);
        conc_future_release(p->f);
        free(p);
    }
    conc__pp_ring_collector(pp);
}

int conc_procpool_shutdown(conc_procpool *pp, bool cancel_futures)
{
    return conc_procpool_shutdown_timed(pp, cancel_futures, CONC_FOREVER);
}

int conc_procpool_shutdown_timed(conc_procpool *pp, bool cancel_futures, int64_t timeout)
{
    if (!pp)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool");
    int64_t deadline;
    int rc = conc__deadline(timeout, &deadline);
    if (rc)
        return rc;
    if (conc__executor_lost(&pp->exec))
        return CONC_EBROKEN;
    conc__pp_stop(pp, cancel_futures, 0);
    pthread_mutex_lock(&pp->lock);
    while (!pp->collector_done && rc == 0) {
        if (deadline == CONC__NO_DEADLINE) {
            pthread_cond_wait(&pp->ended, &pp->lock);
        } else {
            struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
            if (pthread_cond_timedwait(&pp->ended, &pp->lock, &ts) == ETIMEDOUT &&
                !pp->collector_done) {
                rc = CONC_ETIMEDOUT;
                break;
            }
        }
    }
    pthread_mutex_unlock(&pp->lock);
    return timeout == 0 ? 0 : rc; /* 0: shut down only, as Python's wait=False */
}

int conc_procpool_terminate_workers(conc_procpool *pp)
{
    if (!pp)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool");
    conc__pp_stop(pp, true, SIGTERM);
    return 0;
}

int conc_procpool_kill_workers(conc_procpool *pp)
{
    if (!pp)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool");
    conc__pp_stop(pp, true, SIGKILL);
    return 0;
}

int conc_procpool_destroy(conc_procpool *pp)
{
    if (!pp)
        return 0;
    if (conc__executor_lost(&pp->exec))
        return CONC_EBROKEN; /* its collector stayed in the parent */
    (void)conc_procpool_shutdown(pp, false);
    pthread_join(pp->collector, NULL);
    conc__pp_quiesce(pp);
    conc__pp_free(pp);
    return 0;
}

int64_t conc_procpool_workers(conc_procpool *pp)
{
    if (!pp)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool");
    return (int64_t)pp->nworkers;
}

int64_t conc_procpool_worker_pids(conc_procpool *pp, int64_t *pids, size_t cap)
{
    if (!pp || (!pids && cap))
        return CONC__MISUSE(CONC_EINVAL, "NULL pool, or NULL pids with a capacity");
    int64_t n = 0;
    pthread_mutex_lock(&pp->lock);
    for (size_t i = 0; i < pp->nworkers; i++)
        if (pp->workers[i].proc) {
            if ((size_t)n < cap)
                pids[n] = conc_process_pid(pp->workers[i].proc);
            n++;
        }
    pthread_mutex_unlock(&pp->lock);
    return n;
}
