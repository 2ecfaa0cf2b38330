/* The process pool (conc/process.h): what the parent and its workers share,
 * and the parent's side of it.
 *
 * Shared memory: one memfd mapping, made by the parent and passed to each
 * worker as its descriptor 3 (the fork server passes it along), so nothing
 * has a name in /dev/shm and nothing is left behind when the parent dies.
 * It holds a header and one slot per worker, each on its own pages:
 *
 *   parent                          slot                    worker
 *   fn, argument bytes  ------->  TASK           ------->  runs fn(data, arg_len)
 *   copies the result   <-------  DONE, result   <-------  status, value, result bytes
 *
 * The slot's state word is the hand-off, and a futex: the worker sleeps on
 * it (flagging worker_sleeps, so the parent wakes it only when it sleeps).
 * A thread that waits for a future of the pool watches every slot itself
 * for a few microseconds (counted in watchers), taking the results that
 * come and posting queued tasks, as the collector would: a short task's
 * round trip then costs no wake-up at all. Otherwise
 * the worker tells the parent's collector thread through an eventfd (its
 * descriptor 4), only when the collector flagged itself asleep; a dead
 * worker the collector learns from its pidfd. Nothing the parent trusts is in a
 * worker's hands but its own slot: a worker that dies in the middle of
 * writing a result has not set DONE, and its task fails with
 * CONC_EWORKERDIED.
 *
 * Parent: submissions post straight to an idle worker's slot, or queue in
 * the parent; the collector thread takes results, finishes futures, posts
 * queued tasks to freed workers, reaps dead or retired workers and starts
 * their replacements (procpool.c). Worker: procpool_worker.c. Map:
 * procpool_map.c. */
#ifndef CONC_EXEC_PROCPOOL_IMPL_H
#define CONC_EXEC_PROCPOOL_IMPL_H

#include "conc/process.h"
#include "exec/future_impl.h"
#include "process/fnref.h"

#include "arch/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define CONC__PP_MAGIC 0x636e5050u /* "cnPP" */

enum conc__pp_state {
    CONC__PP_EMPTY = 0,       /* no worker has attached yet */
    CONC__PP_READY = 1,       /* the worker waits: it is initialized (worker), or
                                 its last result was taken (parent) */
    CONC__PP_TASK = 2,        /* a task is posted (parent) */
    CONC__PP_DONE = 3,        /* its result is in, not yet taken; the worker waits (worker) */
    CONC__PP_EXIT = 4,        /* the worker is to exit (parent) */
    CONC__PP_INIT_FAILED = 5, /* the initializer failed: status says how (worker) */
};

struct conc__pp_slot {
    _Atomic uint32_t state;         /* enum conc__pp_state; a process-shared futex */
    _Atomic uint32_t worker_sleeps; /* 1 while the worker sleeps, or is about to */
    _Atomic bool cancel;            /* the running task's cancellation token */
    /* Where each side last ran while it spun for the other: two spinners
     * on one CPU must yield to each other (procpool_spin). */
    _Atomic int32_t worker_cpu, parent_cpu;
    /* The task (parent, before TASK): its function and argument. */
    uint32_t module_len;
    uint64_t offset;
    uint64_t arg_len;
    /* Its end (worker, before DONE or INIT_FAILED). */
    int32_t status;
    int64_t value;
    uint64_t result_len;
    char module[CONC__FNREF_NAME_MAX];
    /* The argument, then the result: data_max bytes (the initializer's
     * argument before the first task). */
    _Alignas(64) unsigned char data[];
};

struct conc__pp_shared {
    uint32_t magic;
    uint32_t nslots;
    uint64_t slot_size; /* bytes from one slot to the next: whole pages */
    uint64_t data_max;  /* bytes of a slot's data */
    uint64_t result_max;
    /* The initializer, if has_init; its argument is in each slot's data
     * when the worker starts. */
    uint32_t has_init;
    uint32_t init_module_len;
    uint64_t init_offset;
    uint64_t initargs_len;
    char init_module[CONC__FNREF_NAME_MAX];
    /* Read by every worker's notify: a line of their own. */
    _Alignas(64) _Atomic uint32_t collector_sleeps;
    /* Parent threads that watch every slot for DONE themselves (waiters
     * on a future of the pool, helping while they spin): while any does,
     * no worker needs to ring the collector. */
    _Atomic uint32_t watchers;
};

/* The slot of worker i in the mapping at base. */
static inline struct conc__pp_slot *conc__pp_slot_at(void *base, size_t i)
{
    struct conc__pp_shared *sh = base;
    return (struct conc__pp_slot *)((char *)base + sh->slot_size * (i + 1));
}

/* One step of a spin for the other side of a slot (the parent's thread
 * for a worker, the worker for the parent's): a pause, unless the other
 * side last ran on this CPU — then only a yield lets it go on, which the
 * scheduler would otherwise give it at the end of our time slice, or
 * when it moves one of us to an idle CPU, milliseconds later. Both sides
 * spin briefly where a futex wake-up would cost more (a virtual machine's
 * wake-up of an idle CPU costs tens of microseconds). */
static inline void conc__pp_spin_step(_Atomic int32_t *mine, const _Atomic int32_t *other,
                                      unsigned n)
{
    if ((n & 7) != 0) {
        conc__cpu_relax();
        return;
    }
    int cpu = sched_getcpu();
    atomic_store_explicit(mine, cpu, memory_order_relaxed);
    if (cpu == atomic_load_explicit(other, memory_order_relaxed))
        sched_yield();
    else
        conc__cpu_relax();
}

/* The worker's main (procpool_worker.c), started through the fork server
 * with the mapping as its descriptor 3 and the eventfd as 4; arg is a
 * struct conc__pp_worker_arg. */
struct conc__pp_worker_arg {
    uint32_t slot;
    uint64_t map_size;
};
int conc__pp_worker_main(const void *arg, size_t size);

/* In a worker: the pool's result_max (the map's chunks size their result
 * buffers by it). */
extern size_t conc__pp_worker_result_max;

/* ---- the parent's side ---- */

enum conc__pp_wstate {
    CONC__PPW_NONE = 0,  /* no process: to be started (or not, once shut down) */
    CONC__PPW_STARTING,  /* started, not yet READY */
    CONC__PPW_IDLE,      /* waits for a task */
    CONC__PPW_BUSY,      /* runs `running` */
    CONC__PPW_RETIRING,  /* told to exit (max_tasks_per_child, shutdown) */
};

struct conc__pp_worker {
    enum conc__pp_wstate state;
    conc_process *proc; /* NULL in NONE */
    conc_future *running;
    size_t tasks;       /* tasks it ran */
};

/* A task waiting in the parent for a worker. */
struct conc__pp_pending {
    struct conc__pp_pending *next;
    conc_future *f;
    struct conc__fnref fn;
    size_t size;
    unsigned char arg[];
};

struct conc_procpool {
    struct conc__executor exec; /* first: a future's exec is the pool */
    pthread_mutex_t lock;       /* everything below but what is said otherwise */
    void *map;                  /* the shared mapping */
    size_t map_size;
    int memfd, eventfd;
    struct conc__pp_shared *sh;
    size_t nworkers;
    size_t max_tasks_per_child;
    size_t arg_max;
    void *initargs; /* the initializer's argument, copied to each new worker's slot */
    size_t initargs_size;
    struct conc__pp_worker *workers;
    struct conc__pp_pending *head, *tail; /* the queue */
    size_t in_flight;            /* BUSY workers */
    bool shutdown;
    int broken;                  /* 0, or why: the initializer's failure */
    bool collector_done;         /* the collector has ended (set under lock) */
    pthread_cond_t ended;        /* signalled when collector_done becomes true */
    pthread_t collector;
    _Atomic uint32_t awaiting;   /* threads inside the await hook (procpool.c) */
};

/* The executor area of a pool's future: which worker runs it. */
struct conc__pp_fexec {
    _Atomic uint32_t worker; /* also read, as a hint, without the lock */
};
CONC__FUTURE_EXEC_CHECK(struct conc__pp_fexec);

/* Submits a task whose function is named by fn (procpool.c); the argument
 * is copied. As conc_procpool_submit. */
int conc__pp_submit(conc_procpool *pp, const struct conc__fnref *fn, const void *arg, size_t size,
                    conc_future **f);

/* The map's chunk runner, a task run in workers (procpool_map.c). */
int conc__pp_map_chunk_run(const void *arg, size_t size, conc_result *out);

#endif
