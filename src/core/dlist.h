/* An intrusive doubly linked list: nodes with `next` and `prev` members of
 * their own type, the list a `head` and a `tail` the caller keeps. Not
 * thread-safe: the lock of whoever owns the list guards it. Used by the wait
 * queues (waiter records), the diagnostics' thread registry and dump
 * sources. */
#ifndef CONC_CORE_DLIST_H
#define CONC_CORE_DLIST_H

#include <stddef.h>

/* Appends node at the tail. */
#define CONC__DLIST_APPEND(head, tail, node) \
    do {                                     \
        (node)->next = NULL;                 \
        (node)->prev = (tail);               \
        if (tail)                            \
            (tail)->next = (node);           \
        else                                 \
            (head) = (node);                 \
        (tail) = (node);                     \
    } while (0)

/* Takes node out; its links are cleared. */
#define CONC__DLIST_UNLINK(head, tail, node)     \
    do {                                         \
        if ((node)->prev)                        \
            (node)->prev->next = (node)->next;   \
        else                                     \
            (head) = (node)->next;               \
        if ((node)->next)                        \
            (node)->next->prev = (node)->prev;   \
        else                                     \
            (tail) = (node)->prev;               \
        (node)->next = (node)->prev = NULL;      \
    } while (0)

#endif
