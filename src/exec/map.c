/* conc_map: Python's Executor.map over an index range, in chunks, with a
 * bounded window of chunks in flight (Python 3.14's buffersize), on any
 * executor that gives a source (map_impl.h).
 *
 * The map keeps up to `window` chunks in a ring, oldest first. Ordered, it
 * hands out the oldest chunk's results in index order, waiting for that
 * chunk only; unordered, it drains whichever chunk is done first. A chunk's
 * results are freed when the caller moves past its last one (each result
 * stays valid until the next call). The first error stops the map: no
 * chunk is submitted after it, those in flight are asked to cancel, and
 * conc_map_destroy waits for them. Only the calling thread touches the map;
 * a chunk's task touches only its chunk until its future is done. */
#include "exec/map_impl.h"

#include "core/deadline.h"
#include "core/misuse.h"

#include <stdlib.h>

struct conc_map {
    const struct conc__map_source *src;
    void *ctx;
    size_t n, chunksize, window;
    bool unordered;
    bool stopped;                /* an error status was handed out: nothing more */
    bool refused;                /* the pool refused a chunk: submit no more */
    size_t submitted;            /* indices submitted so far */
    int submit_error;            /* why index `submitted` could not be submitted */
    struct conc__map_chunk **ring; /* window slots; in flight: head .. head + live - 1 */
    size_t head, live;
    struct conc__map_chunk *current; /* being handed out (unordered) */
    struct conc__map_chunk *spent;   /* handed out fully: freed at the next call */
    conc_future **waitset;       /* scratch for conc_wait (unordered) */
};

static void conc__map_chunk_free(struct conc__map_chunk *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ran; i++)
        if (c->results[i].free_fn && c->results[i].data)
            c->results[i].free_fn(c->results[i].data);
    conc_future_release(c->f);
    free(c->status);
    free(c->results);
    free(c);
}

/* Submits the next chunk into the ring. */
static int conc__map_submit_one(conc_map *m)
{
    struct conc__map_chunk *c = calloc(1, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    c->m = m;
    c->start = m->submitted;
    c->count = m->n - m->submitted < m->chunksize ? m->n - m->submitted : m->chunksize;
    c->status = calloc(c->count, sizeof *c->status);
    c->results = calloc(c->count, sizeof *c->results);
    int rc = c->status && c->results ? 0 : CONC_ENOMEM;
    if (!rc)
        rc = m->src->submit(m, c);
    if (rc) {
        free(c->status);
        free(c->results);
        free(c);
        return rc;
    }
    m->submitted += c->count;
    m->ring[(m->head + m->live++) % m->window] = c;
    return 0;
}

/* Keeps the window full. A chunk the pool refuses stops the map there
 * (the chunks in flight still run and are handed out first). */
static void conc__map_fill(conc_map *m)
{
    while (!m->stopped && !m->refused && m->live < m->window && m->submitted < m->n) {
        int rc = conc__map_submit_one(m);
        if (rc) {
            m->refused = true;
            m->submit_error = rc;
        }
    }
}

int conc__map_create(conc_map **out, const struct conc__map_source *src, void *ctx, size_t n,
                     size_t window_default, const conc_map_opts *opts)
{
    conc_map_opts o = opts ? *opts : (conc_map_opts){0};
    conc_map *m = calloc(1, sizeof *m);
    if (!m) {
        if (src->release)
            src->release(ctx);
        return CONC_ENOMEM;
    }
    m->src = src;
    m->ctx = ctx;
    m->n = n;
    m->chunksize = o.chunksize ? o.chunksize : 1;
    m->window = o.buffersize ? o.buffersize : window_default ? window_default : 1;
    m->unordered = o.unordered;
    m->ring = calloc(m->window, sizeof *m->ring);
    m->waitset = calloc(m->window, sizeof *m->waitset);
    int rc = m->ring && m->waitset ? 0 : CONC_ENOMEM;
    if (!rc) {
        conc__map_fill(m);
        if (m->live == 0 && m->submit_error)
            rc = m->submit_error; /* refused from the start */
    }
    if (rc) {
        conc_map_destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

void *conc__map_ctx(conc_map *m)
{
    return m->ctx;
}

/* Takes the ring's slot k (0 = oldest) out of the ring. */
static struct conc__map_chunk *conc__map_take(conc_map *m, size_t k)
{
    size_t w = m->window;
    struct conc__map_chunk *c = m->ring[(m->head + k) % w];
    /* Close the gap: move the older ones up by one. */
    for (size_t j = k; j > 0; j--)
        m->ring[(m->head + j) % w] = m->ring[(m->head + j - 1) % w];
    m->head = (m->head + 1) % w;
    m->live--;
    return c;
}

/* Waits for the chunk to hand out next: the oldest (ordered) or any done
 * one (unordered). */
static int conc__map_next_chunk(conc_map *m, int64_t timeout, struct conc__map_chunk **out)
{
    if (!m->unordered) {
        int rc = conc_future_wait_timed(m->ring[m->head]->f, timeout);
        if (rc)
            return rc;
        *out = conc__map_take(m, 0);
        return 0;
    }
    for (size_t k = 0; k < m->live; k++)
        m->waitset[k] = m->ring[(m->head + k) % m->window]->f;
    int rc = conc_wait_timed(m->waitset, m->live, CONC_FIRST_COMPLETED, NULL, timeout);
    if (rc)
        return rc;
    for (size_t k = 0; k < m->live; k++)
        if (conc_future_done(m->waitset[k])) {
            *out = conc__map_take(m, k);
            return 0;
        }
    return CONC_ETIMEDOUT; /* not reached: conc_wait said one is done */
}

static void conc__map_stop(conc_map *m)
{
    m->stopped = true;
    for (size_t k = 0; k < m->live; k++)
        (void)conc_future_request_cancel(m->ring[(m->head + k) % m->window]->f);
}

int conc_map_next(conc_map *m, size_t *index, int *status, conc_result *out)
{
    return conc_map_next_timed(m, index, status, out, CONC_FOREVER);
}

int conc_map_next_timed(conc_map *m, size_t *index, int *status, conc_result *out,
                        int64_t timeout)
{
    int64_t deadline;
    if (!m || !status)
        return CONC__MISUSE(CONC_EINVAL, "NULL map or status pointer");
    int drc = conc__deadline(timeout, &deadline);
    if (drc)
        return drc;
    conc__map_chunk_free(m->spent);
    m->spent = NULL;
    struct conc__map_chunk *c = m->current;
    if (!c || c->next == c->ran) {
        if (c) {
            conc__map_chunk_free(c);
            m->current = NULL;
        }
        if (m->live == 0 && m->submit_error) {
            /* The pool refused a chunk (shut down, broken, out of memory):
             * its first index reports why, after everything before it. */
            if (index)
                *index = m->submitted;
            *status = m->submit_error;
            if (out)
                *out = (conc_result){0};
            m->submit_error = 0;
            m->stopped = true; /* as for any error status */
            return 0;
        }
        if (m->stopped || m->live == 0)
            return CONC_ENOENT;
        int rc = conc__map_next_chunk(m, timeout, &c);
        if (rc)
            return rc;
        m->current = c;
        conc__map_fill(m);
        if (m->src->collect)
            m->src->collect(m, c);
        if (c->ran == 0) {
            /* Never ran (cancelled by a shutdown, or the pool broke): its
             * first index reports why, and the map stops there. */
            int st = conc_future_result(c->f, NULL);
            c->ran = 1;
            c->status[0] = st ? st : CONC_ECANCELED;
        }
    }
    size_t i = c->next++;
    if (index)
        *index = c->start + i;
    *status = c->status[i];
    if (out)
        *out = c->results[i];
    if (*status != 0)
        conc__map_stop(m);
    return 0;
}

int conc_map_destroy(conc_map *m)
{
    if (!m)
        return CONC__MISUSE(CONC_EINVAL, "NULL map");
    conc__map_stop(m);
    while (m->live) {
        struct conc__map_chunk *c = conc__map_take(m, 0);
        (void)conc_future_wait(c->f);
        conc__map_chunk_free(c);
    }
    conc__map_chunk_free(m->current);
    conc__map_chunk_free(m->spent);
    free(m->ring);
    free(m->waitset);
    if (m->src->release)
        m->src->release(m->ctx);
    free(m);
    return 0;
}
