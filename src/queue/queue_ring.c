/* The bounded FIFO's lock-free ring (queue_ring.h). */
#include "queue/queue_ring.h"
#include "conc/queue.h"

#include "core/platform.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#ifdef CONC_TEST_HOOKS
void (*conc__test_ring_put_claimed)(struct conc__qring *r, uint64_t pos);
#endif

/* A cell: its sequence number, then the item at offset 8. */
#define CONC__CELL_ITEM sizeof(uint64_t)

static inline _Atomic uint64_t *conc__cell_seq(struct conc__qring *r, uint64_t pos)
{
    return (_Atomic uint64_t *)(void *)(r->cells + (pos % r->cap) * r->cell_size);
}

static inline unsigned char *conc__cell_item(struct conc__qring *r, uint64_t pos)
{
    return r->cells + (pos % r->cap) * r->cell_size + CONC__CELL_ITEM;
}

int conc__qring_init(struct conc__qring *r, size_t cap, size_t item_size, bool single_producer,
                     bool single_consumer)
{
    memset(r, 0, sizeof *r);
    if (item_size > SIZE_MAX - CONC__CELL_ITEM - 7)
        return CONC_EOVERFLOW;
    r->cell_size = CONC__CELL_ITEM + ((item_size + 7) & ~(size_t)7);
    if (cap > SIZE_MAX / r->cell_size)
        return CONC_EOVERFLOW;
    if (cap * r->cell_size > CONC_QUEUE_MAX_BYTES)
        return CONC_ENOMEM;
    /* Cells on cache-line boundaries, whatever malloc's alignment: a line
     * holds a whole number of cells, and the first is not shared with a
     * neighbouring allocation. */
    size_t bytes = (cap * r->cell_size + 63) & ~(size_t)63;
    r->cells = aligned_alloc(64, bytes);
    if (!r->cells)
        return CONC_ENOMEM;
    r->cap = cap;
    r->item_size = item_size;
    r->single_producer = single_producer;
    r->single_consumer = single_consumer;
    for (uint64_t i = 0; i < cap; i++)
        atomic_store_explicit(conc__cell_seq(r, i), i, memory_order_relaxed);
    return 0;
}

void conc__qring_free(struct conc__qring *r)
{
    free(r->cells);
    r->cells = NULL;
}

/* A cell claimed by another thread's put (get) that has not yet published
 * (released) it: wait for that operation to finish rather than report the
 * ring empty (full), which another put (get) already completed may have
 * made false — reporting it would not be linearizable. The wait is as long
 * as a memcpy, unless that thread was preempted: then we yield to it. */
static void conc__qring_wait_other(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
    else
        conc__cpu_relax();
}

/* Claims the position for a put: false when the ring is full. */
static inline bool conc__qring_claim_put(struct conc__qring *r, uint64_t *pos, bool exact)
{
    unsigned spins = 0;
    uint64_t p = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        uint64_t seq = atomic_load_explicit(conc__cell_seq(r, p), memory_order_acquire);
        int64_t dif = (int64_t)(seq - p);
        if (dif < 0) { /* the cell still holds the item of a lap ago */
            if (!exact || atomic_load_explicit(&r->head, memory_order_acquire) + r->cap <= p)
                return false; /* full: nobody is taking it */
            conc__qring_wait_other(&spins);
            continue;
        }
        if (dif == 0) {
            if (r->single_producer) {
                atomic_store_explicit(&r->tail, p + 1, memory_order_relaxed);
                break;
            }
            if (atomic_compare_exchange_weak_explicit(&r->tail, &p, p + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else {
            p = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }
    *pos = p;
    return true;
}

bool conc__qring_put(struct conc__qring *r, const void *item, bool exact)
{
    uint64_t pos;
    if (!conc__qring_claim_put(r, &pos, exact))
        return false;
    CONC__TEST_HOOK(conc__test_ring_put_claimed, r, pos);
    memcpy(conc__cell_item(r, pos), item, r->item_size);
    atomic_store_explicit(conc__cell_seq(r, pos), pos + 1, memory_order_release);
    return true;
}

bool conc__qring_get(struct conc__qring *r, void *out, bool exact)
{
    unsigned spins = 0;
    uint64_t p = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        uint64_t seq = atomic_load_explicit(conc__cell_seq(r, p), memory_order_acquire);
        int64_t dif = (int64_t)(seq - (p + 1));
        if (dif < 0) { /* not published */
            if (!exact || atomic_load_explicit(&r->tail, memory_order_acquire) <= p)
                return false; /* empty: nobody is putting it */
            conc__qring_wait_other(&spins);
            continue;
        }
        if (dif == 0) {
            if (r->single_consumer) {
                atomic_store_explicit(&r->head, p + 1, memory_order_relaxed);
                break;
            }
            if (atomic_compare_exchange_weak_explicit(&r->head, &p, p + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else {
            p = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
    memcpy(out, conc__cell_item(r, p), r->item_size);
    atomic_store_explicit(conc__cell_seq(r, p), p + r->cap, memory_order_release);
    return true;
}

bool conc__qring_can_get(struct conc__qring *r, uint64_t n)
{
    uint64_t p = atomic_load_explicit(&r->head, memory_order_relaxed) + n - 1;
    return atomic_load_explicit(conc__cell_seq(r, p), memory_order_acquire) == p + 1;
}

bool conc__qring_can_put(struct conc__qring *r, uint64_t n)
{
    uint64_t p = atomic_load_explicit(&r->tail, memory_order_relaxed) + n - 1;
    return atomic_load_explicit(conc__cell_seq(r, p), memory_order_acquire) == p;
}

size_t conc__qring_count(struct conc__qring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    return tail > head ? (size_t)(tail - head) : 0;
}
