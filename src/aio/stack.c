/* Coroutine stacks and their pool (aio/stack.h).
 *
 * Locks: conc__stack_pool.lock guards the shared pool (its list and byte
 * count); a leaf, held for list operations only (never across mmap or
 * munmap), and taken by the fork table (CONC__FORK_STACKS). Each thread's
 * cache is its own, in its thread record, touched only by that thread. */
#include "aio/stack.h"
#include "core/fork.h"
#include "core/platform.h"
#include "core/tls.h"

#include "conc/base.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#if CONC__ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MAP_STACK
#define MAP_STACK 0
#endif

static struct {
    pthread_mutex_t lock;
    struct conc__stack *head;
    size_t bytes;
    bool fork_registered;
} conc__stack_pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Atomic size_t conc__page;
static _Atomic long conc__stack_maps; /* stacks mapped now (conc__stack_mapped) */

static size_t conc__page_size(void)
{
    size_t p = atomic_load_explicit(&conc__page, memory_order_relaxed);
    if (conc__unlikely(p == 0)) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&conc__page, p, memory_order_relaxed);
    }
    return p;
}

/* The mapping's size less its guard page: the usable bytes, the record and
 * its alignment, rounded up to pages. Stacks of one key are interchangeable. */
static size_t conc__stack_key(size_t size)
{
    size_t page = conc__page_size();
    return (size + sizeof(struct conc__stack) + 64 + page - 1) & ~(page - 1);
}

/* ---- the system ---- */

static struct conc__stack *conc__stack_map(size_t key, unsigned flags)
{
    size_t guard = (flags & CONC__STACK_UNGUARDED) ? 0 : conc__page_size();
    size_t len = key + guard;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* Fails with ENOMEM at vm.max_map_count: the split makes a second mapping. */
    if (guard && mprotect(m, guard, PROT_NONE) != 0) {
        munmap(m, len);
        return NULL;
    }
    struct conc__stack *s =
        (struct conc__stack *)(((uintptr_t)(m + len) - sizeof *s) & ~(uintptr_t)63);
    s->map = m;
    s->lo = m + guard;
    s->hi = (char *)s;
    s->size = key;
    s->map_size = len;
    s->flags = flags;
    s->canary = guard ? &s->spare : (uint64_t *)(void *)s->lo;
    s->next = NULL;
    atomic_fetch_add_explicit(&conc__stack_maps, 1, memory_order_relaxed);
    return s;
}

static void conc__stack_unmap(struct conc__stack *s)
{
    atomic_fetch_sub_explicit(&conc__stack_maps, 1, memory_order_relaxed);
    munmap(s->map, s->map_size);
}

/* ---- the shared pool ---- */

static void conc__stack_pool_lock(void)
{
    pthread_mutex_lock(&conc__stack_pool.lock);
}

static void conc__stack_pool_unlock(void)
{
    pthread_mutex_unlock(&conc__stack_pool.lock);
}

static void conc__stack_pool_lock_first(void)
{
    conc__stack_pool_lock();
    if (conc__unlikely(!conc__stack_pool.fork_registered)) {
        static const struct conc__fork_handler h = {conc__stack_pool_lock, conc__stack_pool_unlock,
                                                    conc__stack_pool_unlock};
        conc__fork_register(CONC__FORK_STACKS, &h);
        conc__stack_pool.fork_registered = true;
    }
}

/* Unlinks and returns the first stack of list *pp with this key and flags. */
static struct conc__stack *conc__stack_unlink(struct conc__stack **pp, size_t key, unsigned flags)
{
    for (struct conc__stack *s; (s = *pp) != NULL; pp = &s->next) {
        if (s->size == key && s->flags == flags) {
            *pp = s->next;
            return s;
        }
    }
    return NULL;
}

static struct conc__stack *conc__stack_pool_take(size_t key, unsigned flags)
{
    conc__stack_pool_lock_first();
    struct conc__stack *s = conc__stack_unlink(&conc__stack_pool.head, key, flags);
    if (s)
        conc__stack_pool.bytes -= s->map_size;
    conc__stack_pool_unlock();
    return s;
}

/* s into the pool if it has room, else back to the system. */
static void conc__stack_pool_give(struct conc__stack *s)
{
    conc__stack_pool_lock_first();
    bool kept = conc__stack_pool.bytes + s->map_size <= CONC__STACK_POOL_BYTES;
    if (kept) {
        s->next = conc__stack_pool.head;
        conc__stack_pool.head = s;
        conc__stack_pool.bytes += s->map_size;
    }
    conc__stack_pool_unlock();
    if (!kept)
        conc__stack_unmap(s);
}

/* ---- each thread's cache ---- */

static pthread_key_t conc__stack_key_exit;
static pthread_once_t conc__stack_once = PTHREAD_ONCE_INIT;
static bool conc__stack_key_ok;

/* At a thread's exit: its cache goes to the pool. */
static void conc__stack_cache_exit(void *arg)
{
    struct conc__stack_cache *c = arg;
    for (struct conc__stack *s = c->head, *next; s; s = next) {
        next = s->next;
        conc__stack_pool_give(s);
    }
    c->head = NULL;
    c->bytes = 0;
}

static void conc__stack_make_key(void)
{
    conc__stack_key_ok = pthread_key_create(&conc__stack_key_exit, conc__stack_cache_exit) == 0;
}

/* Whether this thread's cache will be emptied when the thread exits: its
 * first use registers it. */
static bool conc__stack_cache_registered(struct conc__stack_cache *c)
{
    if (conc__unlikely(!c->registered)) {
        pthread_once(&conc__stack_once, conc__stack_make_key);
        c->registered = conc__stack_key_ok && pthread_setspecific(conc__stack_key_exit, c) == 0;
    }
    return c->registered;
}

/* ---- the interface ---- */

int conc__stack_get(struct conc__stack **out, size_t size, unsigned flags)
{
    size_t key = conc__stack_key(size);
    struct conc__stack_cache *c = &conc__tls.stacks;
    struct conc__stack *s = conc__stack_unlink(&c->head, key, flags);
    if (s)
        c->bytes -= s->map_size;
    else if (!(s = conc__stack_pool_take(key, flags)) && !(s = conc__stack_map(key, flags)))
        return CONC_ENOMEM;
    s->next = NULL;
    *s->canary = conc__stack_canary_value(s->canary);
    *out = s;
    return 0;
}

void conc__stack_put(struct conc__stack *s)
{
#if CONC__ASAN
    /* A coroutine dropped while suspended leaves its frames' redzones
     * poisoned: the next user of the stack starts clean. */
    __asan_unpoison_memory_region(s->lo, (size_t)(s->hi - s->lo));
#endif
    struct conc__stack_cache *c = &conc__tls.stacks;
    if (c->bytes + s->map_size <= CONC__STACK_CACHE_BYTES && conc__stack_cache_registered(c)) {
        s->next = c->head;
        c->head = s;
        c->bytes += s->map_size;
        return;
    }
    conc__stack_pool_give(s);
}

void conc__stack_pool_drain(void)
{
    struct conc__stack_cache *c = &conc__tls.stacks;
    struct conc__stack *list = c->head;
    c->head = NULL;
    c->bytes = 0;
    for (struct conc__stack *s = list, *next; s; s = next) {
        next = s->next;
        conc__stack_unmap(s);
    }
    conc__stack_pool_lock_first();
    list = conc__stack_pool.head;
    conc__stack_pool.head = NULL;
    conc__stack_pool.bytes = 0;
    conc__stack_pool_unlock();
    for (struct conc__stack *s = list, *next; s; s = next) {
        next = s->next;
        conc__stack_unmap(s);
    }
}

long conc__stack_mapped(void)
{
    return atomic_load_explicit(&conc__stack_maps, memory_order_relaxed);
}
