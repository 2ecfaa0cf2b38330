/* Memory for futures (future_impl.h, conc__future_alloc/free_mem).
 *
 * A pool task allocates a future and frees it moments later, often on
 * another thread: a submitter allocates, a worker drops the last
 * reference. With malloc that meant every free on a worker went through
 * the submitter's arena lock, and every allocation took fresh memory
 * (page faults), measured with perf as most of a million-task submission;
 * fork-join tasks, nested, also overflowed malloc's small per-thread cache.
 *
 * So each thread keeps the futures it frees in a local list. When the list
 * reaches CONC__FCACHE_BATCH, the whole batch goes to a shared stack (one
 * compare-and-swap), from which a thread that runs out takes everything at
 * once (one exchange: nothing ever pops a single node, so there is no ABA).
 * Memory flows back from the workers to the submitters. At most about
 * CONC__FSHARED_MAX futures wait in the shared stack; beyond that batches
 * go back to malloc, so a burst does not pin its memory for good. A
 * thread's own lists are freed when it exits. */
#include "future_impl.h"

#include <pthread.h>
#include <stdlib.h>

#define CONC__FCACHE_BATCH 256
#define CONC__FSHARED_MAX (64 * 1024)

struct conc__fcache {
    conc_future *local, *local_tail; /* freed on this thread, linked by next */
    unsigned n;                      /* how many in local */
    conc_future *spare;              /* taken from the shared stack */
    bool registered;                 /* the exit destructor knows this cache */
};

static CONC__TLS struct conc__fcache conc__fcache;
static pthread_key_t conc__fcache_key;
static pthread_once_t conc__fcache_once = PTHREAD_ONCE_INIT;
static bool conc__fcache_key_ok;

static _Atomic(conc_future *) conc__fshared;
static _Atomic size_t conc__fshared_count; /* approximate: see conc__fmem_adopt */

static void conc__free_chain(conc_future *f)
{
    while (f) {
        conc_future *next = f->next;
        free(f);
        f = next;
    }
}

static void conc__fcache_drain(void *arg)
{
    struct conc__fcache *c = arg;
    conc__free_chain(c->local);
    conc__free_chain(c->spare);
    c->local = c->local_tail = c->spare = NULL;
    c->n = 0;
}

static void conc__fcache_make_key(void)
{
    conc__fcache_key_ok = pthread_key_create(&conc__fcache_key, conc__fcache_drain) == 0;
}

/* Moves the local batch to the shared stack, or back to malloc when the
 * stack holds enough already. */
static void conc__fmem_flush(struct conc__fcache *c)
{
    size_t held = atomic_load_explicit(&conc__fshared_count, memory_order_relaxed);
    if (held + c->n > CONC__FSHARED_MAX) {
        conc__free_chain(c->local);
    } else {
        atomic_fetch_add_explicit(&conc__fshared_count, c->n, memory_order_relaxed);
        conc_future *head = atomic_load_explicit(&conc__fshared, memory_order_relaxed);
        do
            c->local_tail->next = head;
        while (!atomic_compare_exchange_weak_explicit(&conc__fshared, &head, c->local,
                                                      memory_order_release, memory_order_relaxed));
    }
    c->local = c->local_tail = NULL;
    c->n = 0;
}

void conc__future_free_mem(conc_future *f)
{
    struct conc__fcache *c = &conc__fcache;
    if (conc__unlikely(!c->registered)) {
        pthread_once(&conc__fcache_once, conc__fcache_make_key);
        c->registered =
            conc__fcache_key_ok && pthread_setspecific(conc__fcache_key, c) == 0;
        if (!c->registered) {
            free(f);
            return;
        }
    }
    f->next = c->local;
    if (!c->local)
        c->local_tail = f;
    c->local = f;
    if (++c->n >= CONC__FCACHE_BATCH)
        conc__fmem_flush(c);
}

/* Takes the whole shared stack as this thread's spare list. The count is
 * reset rather than lowered by the exact length (unknown without a walk):
 * a batch pushed meanwhile goes uncounted, which only lets the stack hold
 * a little more than its bound. */
static conc_future *conc__fmem_adopt(void)
{
    if (!atomic_load_explicit(&conc__fshared, memory_order_relaxed))
        return NULL;
    conc_future *chain = atomic_exchange_explicit(&conc__fshared, NULL, memory_order_acquire);
    if (chain)
        atomic_store_explicit(&conc__fshared_count, 0, memory_order_relaxed);
    return chain;
}

conc_future *conc__future_alloc_mem(void)
{
    struct conc__fcache *c = &conc__fcache;
    conc_future *f = c->spare;
    if (f) {
        c->spare = f->next;
        return f;
    }
    if ((f = c->local) != NULL) {
        c->local = f->next;
        if (!c->local)
            c->local_tail = NULL;
        c->n--;
        return f;
    }
    /* Adopted memory is freed by this thread's exit destructor: register
     * first, or keep to malloc. */
    if (c->registered && (f = conc__fmem_adopt()) != NULL) {
        c->spare = f->next;
        return f;
    }
    return malloc(sizeof *f);
}
