/* conc_map's interface to the executors it runs on (map.c): the thread pool
 * (exec/pool/pool_map.c) and the process pool (exec/procpool/). The map
 * itself — the window of chunks in flight, the order results come out, the
 * first error stopping it — is the same for both; a source only submits a
 * chunk and, if its task could not write into the chunk directly (another
 * process ran it), reads the chunk's results out of its future. */
#ifndef CONC_EXEC_MAP_IMPL_H
#define CONC_EXEC_MAP_IMPL_H

#include "conc/pool.h"

struct conc__map_chunk {
    conc_map *m;
    size_t start, count; /* indices start .. start + count - 1 */
    size_t ran;          /* items run; the last of them failed if ran < count */
    size_t next;         /* the next item to hand out */
    conc_future *f;
    int *status;         /* count entries */
    conc_result *results;
};

struct conc__map_source {
    /* Submits chunk c (start and count set, status and results allocated
     * and zeroed): sets c->f. Returns 0 or the executor's refusal. */
    int (*submit)(conc_map *m, struct conc__map_chunk *c);
    /* Once c->f is done: fills c->ran, c->status and c->results from the
     * future's result (whose buffer the results may point into: the chunk
     * holds the future until its results are handed out). NULL: the
     * chunk's task filled them in place. */
    void (*collect)(conc_map *m, struct conc__map_chunk *c);
    /* Frees the source's context at the map's end; NULL: nothing. */
    void (*release)(void *ctx);
};

/* Starts a map of n indices over src, whose context is ctx (released with
 * the map, also when this fails). window_default: chunks in flight when
 * opts leaves buffersize 0. */
int conc__map_create(conc_map **out, const struct conc__map_source *src, void *ctx, size_t n,
                     size_t window_default, const conc_map_opts *opts);

/* The context given to conc__map_create. */
void *conc__map_ctx(conc_map *m);

#endif
