/* The fork table (core/fork.h). */
#include "core/fork.h"
#include "core/tls.h"

#include <pthread.h>
#include <stddef.h>

_Atomic uint32_t conc__fork_gen;

/* A slot is a pointer, published with release: a layer may register its
 * handlers on first use, while another thread forks. */
static _Atomic(const struct conc__fork_handler *) conc__fork_table[CONC__FORK_RANKS];

void conc__fork_register(enum conc__fork_rank rank, const struct conc__fork_handler *h)
{
    atomic_store_explicit(&conc__fork_table[rank], h, memory_order_release);
}

/* The handlers seen by prepare are the ones parent and child run. */
static const struct conc__fork_handler *conc__fork_seen[CONC__FORK_RANKS];

static void conc__fork_prepare(void)
{
    for (int r = 0; r < CONC__FORK_RANKS; r++) {
        const struct conc__fork_handler *h =
            atomic_load_explicit(&conc__fork_table[r], memory_order_acquire);
        conc__fork_seen[r] = h;
        if (h && h->prepare)
            h->prepare();
    }
}

static void conc__fork_parent(void)
{
    for (int r = CONC__FORK_RANKS; r-- > 0;)
        if (conc__fork_seen[r] && conc__fork_seen[r]->parent)
            conc__fork_seen[r]->parent();
}

/* The child runs on a copy of the forking thread's record, whose cached
 * id is the parent's. */
static void conc__fork_child(void)
{
    conc__tls.tid = 0;
    atomic_fetch_add_explicit(&conc__fork_gen, 1, memory_order_relaxed);
    for (int r = CONC__FORK_RANKS; r-- > 0;)
        if (conc__fork_seen[r] && conc__fork_seen[r]->child)
            conc__fork_seen[r]->child();
}

void conc__fork_setup(void)
{
    pthread_atfork(conc__fork_prepare, conc__fork_parent, conc__fork_child);
}
