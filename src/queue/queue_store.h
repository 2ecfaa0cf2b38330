/* The item storage behind conc_queue, one layout per kind, not thread-safe
 * (the queue's lock guards it):
 *   FIFO      a ring of slots; head is the oldest;
 *   LIFO      a stack: slot count - 1 is the top;
 *   PRIORITY  a binary min-heap of entries {key, seq, item}, ordered by key,
 *             then by seq, the insertion count: equal keys leave in the order
 *             they came (a stable order, which a bare heap is not).
 * A bounded store allocates its capacity at once; an unbounded one starts
 * small and doubles. Sizes are checked: a byte size that overflows is
 * CONC_EOVERFLOW, one above CONC_QUEUE_MAX_BYTES CONC_ENOMEM.
 */
#ifndef CONC_QUEUE_STORE_H
#define CONC_QUEUE_STORE_H

#include "conc/queue.h"
#include <stddef.h>
#include <stdint.h>

struct conc__qstore {
    conc_queue_kind kind;
    size_t item_size;
    size_t entry_size; /* a slot: the item, or for PRIORITY {key, seq, item} */
    size_t bound;      /* 0: unbounded */
    size_t slots;      /* allocated */
    size_t count;
    size_t head;       /* FIFO: the oldest item's slot */
    uint64_t seq;      /* PRIORITY: insertions so far */
    unsigned char *buf; /* slots + 1 scratch entry (heap swaps) */
};

int conc__qstore_init(struct conc__qstore *s, conc_queue_kind kind, size_t item_size,
                      size_t bound);
void conc__qstore_free(struct conc__qstore *s);
/* Adds an item; the caller checked there is room in a bounded store.
 * Returns 0 or CONC_ENOMEM (an unbounded store could not grow). */
int conc__qstore_push(struct conc__qstore *s, const void *item, int64_t key);
/* Removes the next item (the store is not empty) into out; key may be NULL. */
void conc__qstore_pop(struct conc__qstore *s, void *out, int64_t *key);
/* Drops every item; returns how many there were. */
size_t conc__qstore_clear(struct conc__qstore *s);

#endif
