/* Memory for futures (future_impl.h, conc__future_alloc/free_mem).
 *
 * A pool submits a future per task, and a fork-join or a million-task
 * submission allocates them far faster than malloc serves blocks of this
 * size: too large for its fast bins, more at once than its per-thread
 * cache holds, and freed on other threads than the one that allocated
 * them (through the allocating arena's lock). perf showed malloc and free
 * as the largest part of a submission.
 *
 * So futures come from slabs: each thread carves futures one after the
 * other out of its current slab (CONC__SLAB_SIZE bytes, aligned to its
 * size, so a future finds its slab by masking its address). A slab counts
 * its futures not yet freed; the last free, on whatever thread, frees the
 * slab. A freed future's memory is reused only with its whole slab: a slab
 * is small (about 120 futures), so memory follows the number of futures
 * alive. A thread's current slab gives up its unused places when the
 * thread exits.
 *
 * Slabs come from chunks of 2 MiB, mapped and faulted in by one call
 * (MADV_POPULATE_WRITE) instead of one page fault per 4 KiB page as the
 * futures first touch them, and an empty slab goes on a free list that
 * serves the next refill, on whatever thread, before any new memory is
 * touched. A million futures alive at once touch 128 MiB: 32k page faults
 * taken one by one, each dear in a virtual machine (a fifth of a
 * submission's cycles, measured), and a second million reuses the first's
 * slabs without any. Transparent huge pages were tried and left out: in
 * these virtual machines a run then took 1.8 to 13 M tasks/s, where one
 * populate call per chunk gives a steady 6.6-7.8 M (AMD EPYC). The price
 * of the free list: the memory of the most futures ever alive at once
 * stays with the process for reuse (as TBB's allocator keeps its own). */
#include "exec/future_impl.h"
#include "core/fork.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define CONC__SLAB_SIZE ((size_t)16384)
#define CONC__SLAB_HEADER ((size_t)64) /* the count on its own cache line */
#define CONC__FUTURE_SIZE ((sizeof(conc_future) + 15) & ~(size_t)15)
#define CONC__SLAB_FUTURES ((CONC__SLAB_SIZE - CONC__SLAB_HEADER) / CONC__FUTURE_SIZE)

struct conc__slab {
    _Atomic uint32_t live;   /* places not yet freed, used or not */
    struct conc__slab *next; /* on the free list: the next free slab */
};

#define CONC__CHUNK_SIZE ((size_t)2 << 20) /* 128 slabs, faulted in by one call */

/* The slabs not in use, and the chunk being carved; under lock, a leaf
 * (nothing else is taken while it is held). */
static struct {
    pthread_mutex_t lock;
    struct conc__slab *free;
    char *carve, *carve_end;
    bool fork_registered;
} conc__slabs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void conc__slabs_lock(void)
{
    pthread_mutex_lock(&conc__slabs.lock);
}

static void conc__slabs_unlock(void)
{
    pthread_mutex_unlock(&conc__slabs.lock);
}

/* Maps a chunk, aligned to its size, and faults it in at once. */
static char *conc__chunk_map(void)
{
    size_t len = 2 * CONC__CHUNK_SIZE;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *chunk = (char *)(((uintptr_t)p + CONC__CHUNK_SIZE - 1) & ~(uintptr_t)(CONC__CHUNK_SIZE - 1));
    if (chunk > p)
        munmap(p, (size_t)(chunk - p));
    char *end = chunk + CONC__CHUNK_SIZE;
    if (end < p + len)
        munmap(end, (size_t)(p + len - end));
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels refuse it: faults on touch then */
#endif
    (void)madvise(chunk, CONC__CHUNK_SIZE, MADV_POPULATE_WRITE);
    return chunk;
}

/* An empty slab: a freed one if any, else carved from the current chunk. */
static struct conc__slab *conc__slab_get(void)
{
    conc__slabs_lock();
    if (conc__unlikely(!conc__slabs.fork_registered)) {
        static const struct conc__fork_handler h = {conc__slabs_lock, conc__slabs_unlock,
                                                    conc__slabs_unlock};
        conc__fork_register(CONC__FORK_FUTURE_SLABS, &h);
        conc__slabs.fork_registered = true;
    }
    struct conc__slab *s = conc__slabs.free;
    if (s) {
        conc__slabs.free = s->next;
    } else {
        if (conc__slabs.carve == conc__slabs.carve_end) {
            char *chunk = conc__chunk_map();
            if (chunk) {
                conc__slabs.carve = chunk;
                conc__slabs.carve_end = chunk + CONC__CHUNK_SIZE;
            }
        }
        if (conc__slabs.carve != conc__slabs.carve_end) {
            s = (struct conc__slab *)(void *)conc__slabs.carve;
            conc__slabs.carve += CONC__SLAB_SIZE;
        }
    }
    conc__slabs_unlock();
    return s;
}

/* An empty slab back on the free list. */
static void conc__slab_recycle(struct conc__slab *s)
{
    conc__slabs_lock();
    s->next = conc__slabs.free;
    conc__slabs.free = s;
    conc__slabs_unlock();
}

/* Each thread's cursor is in its thread record (core/tls.h). */
static pthread_key_t conc__cursor_key;
static pthread_once_t conc__cursor_once = PTHREAD_ONCE_INIT;
static bool conc__cursor_key_ok;

static struct conc__slab *conc__slab_of(void *p)
{
    return (struct conc__slab *)((uintptr_t)p & ~(uintptr_t)(CONC__SLAB_SIZE - 1));
}

/* Gives up `places` places of slab s; frees it when none is left. */
static void conc__slab_put(struct conc__slab *s, uint32_t places)
{
    if (atomic_fetch_sub_explicit(&s->live, places, memory_order_acq_rel) == places)
        conc__slab_recycle(s);
}

/* The places of the current slab not handed out. */
static void conc__cursor_release(struct conc__slab_cursor *c)
{
    if (c->next && c->next < c->end)
        conc__slab_put(conc__slab_of(c->next - 1),
                       (uint32_t)((size_t)(c->end - c->next) / CONC__FUTURE_SIZE));
    c->next = c->end = NULL;
}

static void conc__cursor_exit(void *arg)
{
    conc__cursor_release(arg);
}

static void conc__cursor_make_key(void)
{
    conc__cursor_key_ok = pthread_key_create(&conc__cursor_key, conc__cursor_exit) == 0;
}

/* Starts a new slab for this thread; false when out of memory, or when the
 * thread cannot get an exit destructor (then it uses malloc: see below). */
static bool conc__cursor_refill(struct conc__slab_cursor *c)
{
    if (!c->registered) {
        pthread_once(&conc__cursor_once, conc__cursor_make_key);
        c->registered = conc__cursor_key_ok && pthread_setspecific(conc__cursor_key, c) == 0;
        if (!c->registered)
            return false;
    }
    struct conc__slab *s = conc__slab_get();
    if (!s)
        return false;
    atomic_init(&s->live, (uint32_t)CONC__SLAB_FUTURES);
    c->next = (char *)s + CONC__SLAB_HEADER;
    c->end = c->next + CONC__SLAB_FUTURES * CONC__FUTURE_SIZE;
    return true;
}

/* Without a slab (out of memory, or no exit destructor for this thread) a
 * future comes from malloc, marked so that its free goes back there. */
conc_future *conc__future_alloc_mem(void)
{
    struct conc__slab_cursor *c = &conc__tls.slab;
    if (conc__unlikely(c->next == c->end) && !conc__cursor_refill(c)) {
        conc_future *f = malloc(sizeof *f);
        if (f)
            f->from_slab = false;
        return f;
    }
    conc_future *f = (conc_future *)(void *)c->next;
    c->next += CONC__FUTURE_SIZE;
    f->from_slab = true;
    return f;
}

void conc__future_free_mem(conc_future *f)
{
    if (f->from_slab)
        conc__slab_put(conc__slab_of(f), 1);
    else
        free(f);
}
