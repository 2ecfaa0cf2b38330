/* The one fork table: every internal lock of the library that a fork could
 * catch held, taken in one documented order before fork() and released
 * after it in both processes, and the state that does not survive a fork
 * reset in the child. One pthread_atfork set (core/fork.c) runs the table.
 *
 * The order is the ranks' below: a lock of lower rank is never taken while
 * one of higher rank is held. In the child only the forking thread exists:
 * objects whose threads did not survive (a pool and its workers) notice a
 * new fork generation and answer CONC_EBROKEN; objects made in the child
 * work as anywhere. */
#ifndef CONC_CORE_FORK_H
#define CONC_CORE_FORK_H

#include <stdatomic.h>
#include <stdint.h>

enum conc__fork_rank {
    CONC__FORK_POOLS,        /* exec/pool: the live pools, for exit (held only to list them) */
    CONC__FORK_THREAD_LIST,  /* thread: the live threads (held while names are read) */
    CONC__FORK_SIGQUIT,      /* diag: the SIGQUIT dumper's switch */
    CONC__FORK_WATCHDOG,     /* diag: the watchdog's state */
    CONC__FORK_TRACE,        /* diag: the trace session (held while it walks the registry) */
    CONC__FORK_THREADS,      /* diag: the thread registry */
    CONC__FORK_DUMP_SOURCES, /* diag: the executors that describe themselves in dumps */
    CONC__FORK_LOCKDEP,      /* diag: the lock-order graph */
    CONC__FORK_REPORTER,     /* diag: one report at a time */
    CONC__FORK_UNHANDLED,    /* core: the unhandled-failure hook */
    CONC__FORK_FUTURE_SLABS, /* exec: the futures' free slabs (a leaf) */
    CONC__FORK_STACKS,       /* aio: the coroutine stacks' shared pool (a leaf) */
    CONC__FORK_FORKSERVER,   /* process: the fork server's client (no lock: the child starts over) */
    CONC__FORK_SPAWNER,      /* process: the spawner thread's request slot (a leaf) */
    CONC__FORK_RANKS
};

struct conc__fork_handler {
    void (*prepare)(void); /* takes the lock */
    void (*parent)(void);  /* releases it */
    void (*child)(void);   /* releases it, resets what the other threads left */
};

/* Fills the rank's slot with h, which must stay valid for good (a static).
 * From the library's constructor (core/init.c), or from a layer on the
 * first use of its lock: a fork meanwhile sees the slot empty or full. */
void conc__fork_register(enum conc__fork_rank rank, const struct conc__fork_handler *h);

/* Installs the table (the one pthread_atfork call). */
void conc__fork_setup(void);

/* How many forks this process is removed from the one that loaded conc:
 * an object records it at creation, and one whose generation differs was
 * inherited across fork(). */
extern _Atomic uint32_t conc__fork_gen __attribute__((visibility("hidden")));

static inline uint32_t conc__fork_generation(void)
{
    return atomic_load_explicit(&conc__fork_gen, memory_order_relaxed);
}

#endif
