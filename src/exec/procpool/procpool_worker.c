/* A process pool's worker (procpool_impl.h): attaches to its slot, runs the
 * initializer, then runs the tasks posted to the slot until told to exit
 * or until its parent goes (the fork server's children die with it).
 *
 * Waiting for a task, the worker first spins for a few microseconds: the
 * parent usually posts the next task right after it took a result, and a
 * futex wake-up costs far more than that in a virtual machine. Then it
 * sleeps on the slot's state, flagging worker_sleeps first so that the
 * parent, which stores the state and then reads the flag, wakes it exactly
 * when it needs to (the Dekker pair of wait.h). */
#define _GNU_SOURCE
#include "exec/procpool/procpool_impl.h"

#include "arch/cpu.h"
#include "core/deadline.h"
#include "core/platform.h"
#include "core/tls.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

size_t conc__pp_worker_result_max;

/* How long a worker spins for its next task before it sleeps. */
#define CONC__PP_WORKER_SPIN_NS 20000

/* Tells the parent the slot changed (its state was just stored, seq_cst):
 * through the eventfd, only when no parent thread watches the slots and
 * the collector flagged itself asleep. */
static void conc__pp_notify(struct conc__pp_shared *sh, int eventfd)
{
    if (!atomic_load_explicit(&sh->watchers, memory_order_seq_cst) &&
        atomic_load_explicit(&sh->collector_sleeps, memory_order_seq_cst)) {
        uint64_t one = 1;
        while (write(eventfd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

static bool conc__pp_waiting(uint32_t st)
{
    return st == CONC__PP_READY || st == CONC__PP_DONE;
}

/* Waits until the parent posts a task or says exit; returns the state. */
static uint32_t conc__pp_await(struct conc__pp_slot *s)
{
    uint32_t st;
    int64_t until = conc__now() + CONC__PP_WORKER_SPIN_NS;
    for (unsigned n = 0;; n++) {
        st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (!conc__pp_waiting(st))
            return st;
        if ((n & 63) == 63 && conc__now() >= until)
            break;
        conc__pp_spin_step(&s->worker_cpu, &s->parent_cpu, n);
    }
    for (;;) {
        /* The parent's move from DONE to READY wakes nobody: whichever of
         * the two we sleep on, only a task or an exit ends the sleep. */
        atomic_store_explicit(&s->worker_sleeps, 1, memory_order_seq_cst);
        st = atomic_load_explicit(&s->state, memory_order_seq_cst);
        if (conc__pp_waiting(st))
            (void)conc__futex_wait(&s->state, st, CONC__NO_DEADLINE, true);
        atomic_store_explicit(&s->worker_sleeps, 0, memory_order_relaxed);
        st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (!conc__pp_waiting(st))
            return st;
    }
}

/* Runs the task posted in s and leaves its end in s. */
static void conc__pp_run_task(struct conc__pp_slot *s, uint64_t data_max, uint64_t result_max)
{
    conc_proc_task_fn fn = (conc_proc_task_fn)conc__fnref_resolve(s->module, s->module_len,
                                                                  s->offset);
    conc_result r = {0};
    int status = fn ? fn(s->data, s->arg_len, &r) : CONC_ENOENT;
    size_t len = r.data ? r.len : 0;
    if (len > result_max || len > data_max) {
        status = CONC_EOVERFLOW;
        len = 0;
    }
    if (len)
        memmove(s->data, r.data, len); /* the result may be the argument itself */
    if (r.free_fn && r.data)
        r.free_fn(r.data);
    s->status = status;
    s->value = r.value;
    s->result_len = len;
}

int conc__pp_worker_main(const void *arg, size_t size)
{
    struct conc__pp_worker_arg a;
    if (size != sizeof a)
        return 120;
    memcpy(&a, arg, sizeof a);
    void *base = mmap(NULL, a.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
    if (base == MAP_FAILED)
        return 121;
    close(3);
    int eventfd = 4;
    struct conc__pp_shared *sh = base;
    if (sh->magic != CONC__PP_MAGIC || a.slot >= sh->nslots)
        return 122;
    struct conc__pp_slot *s = conc__pp_slot_at(base, a.slot);
    conc__pp_worker_result_max = sh->result_max;

    if (sh->has_init) {
        conc_proc_init_fn init = (conc_proc_init_fn)conc__fnref_resolve(
            sh->init_module, sh->init_module_len, sh->init_offset);
        int rc = init ? init(s->data, sh->initargs_len) : CONC_ENOENT;
        if (rc != 0) {
            s->status = rc;
            atomic_store_explicit(&s->state, CONC__PP_INIT_FAILED, memory_order_seq_cst);
            conc__pp_notify(sh, eventfd);
            return 0;
        }
    }
    /* A task asks conc_cancel_requested(): the slot's token answers. */
    conc__context()->cancel = &s->cancel;
    atomic_store_explicit(&s->state, CONC__PP_READY, memory_order_seq_cst);
    conc__pp_notify(sh, eventfd);
    for (;;) {
        if (conc__pp_await(s) != CONC__PP_TASK)
            return 0; /* EXIT (or a state only a broken parent would write) */
        atomic_store_explicit(&s->worker_cpu, sched_getcpu(), memory_order_relaxed);
        conc__pp_run_task(s, sh->data_max, sh->result_max);
        atomic_store_explicit(&s->state, CONC__PP_DONE, memory_order_seq_cst);
        conc__pp_notify(sh, eventfd);
    }
}
