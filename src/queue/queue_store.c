/* conc_queue's item storage (queue_store.h). */
#include "queue/queue_store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CONC__QSTORE_FIRST_SLOTS 16

/* A PRIORITY entry: the header, then the item at offset 16. */
struct conc__qentry {
    int64_t key;
    uint64_t seq;
};

#define CONC__QENTRY_ITEM sizeof(struct conc__qentry)

/* slots x entry_size, plus one scratch entry; CONC_EOVERFLOW or CONC_ENOMEM
 * when it cannot be had. */
static int conc__qstore_bytes(size_t slots, size_t entry_size, size_t *bytes)
{
    if (slots > SIZE_MAX - 1 || entry_size > SIZE_MAX / (slots + 1))
        return CONC_EOVERFLOW;
    *bytes = (slots + 1) * entry_size;
    return *bytes > CONC_QUEUE_MAX_BYTES ? CONC_ENOMEM : 0;
}

int conc__qstore_init(struct conc__qstore *s, conc_queue_kind kind, size_t item_size,
                      size_t bound)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->item_size = item_size;
    s->entry_size = item_size;
    if (kind == CONC_QUEUE_PRIORITY) {
        if (item_size > SIZE_MAX - CONC__QENTRY_ITEM - 7)
            return CONC_EOVERFLOW;
        /* Keep every header 8-byte aligned. */
        s->entry_size = CONC__QENTRY_ITEM + ((item_size + 7) & ~(size_t)7);
    }
    s->bound = bound;
    s->slots = bound ? bound : CONC__QSTORE_FIRST_SLOTS;
    size_t bytes;
    int rc = conc__qstore_bytes(s->slots, s->entry_size, &bytes);
    if (rc)
        return rc;
    s->buf = malloc(bytes);
    return s->buf ? 0 : CONC_ENOMEM;
}

void conc__qstore_free(struct conc__qstore *s)
{
    free(s->buf);
    s->buf = NULL;
}

static inline unsigned char *conc__qslot(struct conc__qstore *s, size_t i)
{
    return s->buf + i * s->entry_size;
}

/* Doubles an unbounded store, unrolling the FIFO ring to start at slot 0. */
static int conc__qstore_grow(struct conc__qstore *s)
{
    size_t slots = s->slots * 2, bytes;
    if (slots < s->slots)
        return CONC_ENOMEM;
    int rc = conc__qstore_bytes(slots, s->entry_size, &bytes);
    if (rc)
        return CONC_ENOMEM;
    unsigned char *buf = malloc(bytes);
    if (!buf)
        return CONC_ENOMEM;
    if (s->kind == CONC_QUEUE_FIFO) {
        size_t first = s->slots - s->head < s->count ? s->slots - s->head : s->count;
        memcpy(buf, conc__qslot(s, s->head), first * s->entry_size);
        memcpy(buf + first * s->entry_size, s->buf, (s->count - first) * s->entry_size);
        s->head = 0;
    } else {
        memcpy(buf, s->buf, s->count * s->entry_size);
    }
    free(s->buf);
    s->buf = buf;
    s->slots = slots;
    return 0;
}

/* ---- the stable min-heap ---- */

static bool conc__qentry_before(const unsigned char *a, const unsigned char *b)
{
    struct conc__qentry x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return x.key < y.key || (x.key == y.key && x.seq < y.seq);
}

static void conc__qentry_swap(struct conc__qstore *s, size_t i, size_t j)
{
    unsigned char *scratch = conc__qslot(s, s->slots);
    memcpy(scratch, conc__qslot(s, i), s->entry_size);
    memcpy(conc__qslot(s, i), conc__qslot(s, j), s->entry_size);
    memcpy(conc__qslot(s, j), scratch, s->entry_size);
}

static void conc__qheap_up(struct conc__qstore *s, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!conc__qentry_before(conc__qslot(s, i), conc__qslot(s, parent)))
            break;
        conc__qentry_swap(s, i, parent);
        i = parent;
    }
}

static void conc__qheap_down(struct conc__qstore *s, size_t i)
{
    for (;;) {
        size_t least = i, left = 2 * i + 1, right = left + 1;
        if (left < s->count && conc__qentry_before(conc__qslot(s, left), conc__qslot(s, least)))
            least = left;
        if (right < s->count && conc__qentry_before(conc__qslot(s, right), conc__qslot(s, least)))
            least = right;
        if (least == i)
            return;
        conc__qentry_swap(s, i, least);
        i = least;
    }
}

/* ---- push and pop ---- */

int conc__qstore_push(struct conc__qstore *s, const void *item, int64_t key)
{
    if (s->count == s->slots) {
        int rc = conc__qstore_grow(s);
        if (rc)
            return rc;
    }
    switch (s->kind) {
    case CONC_QUEUE_FIFO:
        memcpy(conc__qslot(s, (s->head + s->count) % s->slots), item, s->item_size);
        break;
    case CONC_QUEUE_LIFO:
        memcpy(conc__qslot(s, s->count), item, s->item_size);
        break;
    case CONC_QUEUE_PRIORITY: {
        struct conc__qentry e = {key, s->seq++};
        unsigned char *slot = conc__qslot(s, s->count);
        memcpy(slot, &e, sizeof e);
        memcpy(slot + CONC__QENTRY_ITEM, item, s->item_size);
        s->count++;
        conc__qheap_up(s, s->count - 1);
        return 0;
    }
    }
    s->count++;
    return 0;
}

void conc__qstore_pop(struct conc__qstore *s, void *out, int64_t *key)
{
    switch (s->kind) {
    case CONC_QUEUE_FIFO:
        memcpy(out, conc__qslot(s, s->head), s->item_size);
        s->head = (s->head + 1) % s->slots;
        break;
    case CONC_QUEUE_LIFO:
        memcpy(out, conc__qslot(s, s->count - 1), s->item_size);
        break;
    case CONC_QUEUE_PRIORITY: {
        struct conc__qentry e;
        memcpy(&e, s->buf, sizeof e);
        memcpy(out, s->buf + CONC__QENTRY_ITEM, s->item_size);
        if (key)
            *key = e.key;
        s->count--;
        if (s->count) {
            memcpy(s->buf, conc__qslot(s, s->count), s->entry_size);
            conc__qheap_down(s, 0);
        }
        return;
    }
    }
    if (key)
        *key = 0;
    s->count--;
}

size_t conc__qstore_clear(struct conc__qstore *s)
{
    size_t n = s->count;
    s->count = 0;
    s->head = 0;
    return n;
}
