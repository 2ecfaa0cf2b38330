/* The lock-free ring behind a bounded FIFO conc_queue: Vyukov's bounded
 * MPMC queue. Each cell has a sequence number: a cell at index i is free for
 * the put at position pos (pos % cap == i) when its seq equals pos, and holds
 * that put's item when its seq equals pos + 1; taking it sets seq to
 * pos + cap, freeing it for the put one lap later. Producers claim positions
 * by compare-and-swap on tail, consumers on head; a single producer (or
 * consumer) promised at creation skips its CAS. Never blocks: the queue parks
 * through the wait core when a try fails. Needs cap >= 2: with one cell the
 * mark of a published item (pos + 1) equals that of a free cell a lap on.
 */
#ifndef CONC_QUEUE_RING_H
#define CONC_QUEUE_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conc__qring {
    _Alignas(64) _Atomic uint64_t tail; /* the next put's position */
    _Alignas(64) _Atomic uint64_t head; /* the next get's position */
    /* A hint the gets keep on their own line (queue.c, gathering): whether
     * the producers stream, so that a get on an empty ring may wait for a
     * few items rather than take the first. */
    _Atomic uint32_t gather;
    _Alignas(64) size_t cap;
    size_t item_size, cell_size;
    bool single_producer, single_consumer;
    unsigned char *cells;
};

/* Returns 0, CONC_EOVERFLOW or CONC_ENOMEM. */
int conc__qring_init(struct conc__qring *r, size_t cap, size_t item_size, bool single_producer,
                     bool single_consumer);
void conc__qring_free(struct conc__qring *r);
/* false when full. exact: a cell another put claimed one lap ago and a get
 * is still emptying counts as room to wait for (the answer a caller about to
 * report CONC_EFULL needs to be linearizable); not exact: false at once, and
 * the other side's index is never read. */
bool conc__qring_put(struct conc__qring *r, const void *item, bool exact);
/* false when empty; exact as for put, with the roles swapped. */
bool conc__qring_get(struct conc__qring *r, void *out, bool exact);
/* Whether the next n gets would find an item now (the n-th cell after head
 * holds one), and whether the next n puts would find room (the n-th cell
 * after tail is free); 1 <= n <= cap. They read one cell only, at
 * head + n - 1 (tail + n - 1): a thread spinning on them
 * does not keep pulling the other side's index away from it, which would
 * stall its compare-and-swap. */
bool conc__qring_can_get(struct conc__qring *r, uint64_t n);
bool conc__qring_can_put(struct conc__qring *r, uint64_t n);
/* A snapshot of the number of items. */
size_t conc__qring_count(struct conc__qring *r);

#ifdef CONC_TEST_HOOKS
/* Test hook (core/platform.h): called between a put's claim of a cell and
 * the publication of its item, so a test can hold a producer there. */
extern void (*conc__test_ring_put_claimed)(struct conc__qring *r, uint64_t pos);
#endif

#endif
