/* Coroutine stacks: mmap'd, recycled through a pool.
 *
 * A stack is one mapping (guarded: two, see below) with its record at the
 * top, so a stack needs no allocation besides itself:
 *
 *   lo                                                   hi
 *   [guard page][ usable stack, grows down  ........... ][record]
 *
 * Guarded (the default): the page below lo is PROT_NONE, so an overflow
 * dies there with SIGSEGV and never writes into the memory below. That is
 * two mappings per stack, and Linux allows 65,530 mappings per process
 * (vm.max_map_count): about 30,000 guarded stacks at once, with room left
 * for the program's own. Unguarded stacks (CONC__STACK_UNGUARDED) are one
 * mapping each (adjacent ones even merge into one) and have a canary word
 * at lo instead, which the coroutine layer checks at every switch away from
 * the stack: an overwritten canary means an overflow has already corrupted
 * memory, and the process aborts with a message saying so. The canary
 * costs an unguarded stack the page it sits on. Memory is reserved lazily
 * (MAP_NORESERVE): a stack costs the pages it touched.
 *
 * The pool: each thread keeps up to CONC__STACK_CACHE_BYTES of freed stacks
 * for its next ones (no lock; a list through the stacks' own records, in
 * the thread record), and the process up to CONC__STACK_POOL_BYTES more,
 * shared, under a mutex (a leaf, in the fork table). A stack is reused only
 * for the same rounded size and the same kind (guarded or not); beyond both
 * bounds a freed stack is unmapped. A thread's cache goes to the shared pool
 * when the thread exits. */
#ifndef CONC_AIO_STACK_H
#define CONC_AIO_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONC__STACK_DEFAULT ((size_t)64 << 10) /* a stack size of 0 */
#define CONC__STACK_MIN ((size_t)16 << 10)     /* room for a signal frame and a little more */
#define CONC__STACK_MAX ((size_t)1 << 30)      /* above: a mistake (a negative size, cast) */

#define CONC__STACK_CACHE_BYTES ((size_t)1 << 20) /* per thread: 16 default stacks */
#define CONC__STACK_POOL_BYTES ((size_t)16 << 20) /* per process: 256 default stacks */

/* conc__stack_get's flags. */
#define CONC__STACK_UNGUARDED 1u /* no guard page: a canary word at lo instead */

struct conc__stack {
    char *lo;    /* the lowest usable byte (unguarded: the canary) */
    char *hi;    /* one past the highest: this record's address */
    size_t size; /* the usable size asked for, rounded: the pool's key */
    char *map;   /* the whole mapping, guard page included */
    size_t map_size;
    unsigned flags;
    uint64_t *canary; /* unguarded: lo; guarded: spare, never overwritten */
    uint64_t spare;
    struct conc__stack *next; /* in a thread's cache or the pool */
};

/* A stack with at least size usable bytes (rounded up to pages), from the
 * caller's cache, the pool, or a new mapping. 0, or CONC_ENOMEM; the size
 * must already lie within [CONC__STACK_MIN, CONC__STACK_MAX]. */
int conc__stack_get(struct conc__stack **out, size_t size, unsigned flags);

/* Gives s back: to the caller's cache, the pool, or the system. */
void conc__stack_put(struct conc__stack *s);

/* Unmaps every stack the caller's cache and the pool keep (for the tests:
 * the mappings are then what live stacks use). */
void conc__stack_pool_drain(void);

/* How many stacks are mapped now, live or kept (for the tests: after a
 * drain with no coroutine alive, 0). */
long conc__stack_mapped(void);

/* The canary's value at address at: an overwrite by anything but this exact
 * word is seen. */
static inline uint64_t conc__stack_canary_value(const uint64_t *at)
{
    return UINT64_C(0x636f6e632d737463) ^ (uint64_t)(uintptr_t)at;
}

/* Whether s's canary is whole (always true for a guarded stack). */
static inline bool conc__stack_canary_ok(const struct conc__stack *s)
{
    return *s->canary == conc__stack_canary_value(s->canary);
}

#endif
