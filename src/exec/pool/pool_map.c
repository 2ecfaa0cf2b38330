/* conc_map on the thread pool: each chunk is a pool task that runs the
 * map's function on its indices and writes the statuses and results into
 * the chunk itself (the map is in exec/map.c). */
#include "exec/map_impl.h"
#include "exec/pool/pool_impl.h"

#include "core/misuse.h"

#include <stdlib.h>

struct conc__pool_map {
    conc_pool *pool;
    conc_map_fn fn;
    void *arg;
};

static int conc__map_chunk_run(void *arg, conc_result *out)
{
    (void)out;
    struct conc__map_chunk *c = arg;
    struct conc__pool_map *pm = conc__map_ctx(c->m);
    for (c->ran = 0; c->ran < c->count;) {
        if (conc_cancel_requested())
            return CONC_ECANCELED;
        size_t i = c->ran++;
        c->status[i] = pm->fn(pm->arg, c->start + i, &c->results[i]);
        if (c->status[i] != 0)
            break; /* the map stops at this item: the rest would never be seen */
    }
    return 0;
}

static int conc__pool_map_submit(conc_map *m, struct conc__map_chunk *c)
{
    struct conc__pool_map *pm = conc__map_ctx(m);
    return conc__pool_submit(pm->pool, conc__map_chunk_run, c, CONC_FOREVER, NULL, &c->f);
}

static const struct conc__map_source conc__pool_map_source = {conc__pool_map_submit, NULL, free};

int conc_map_create(conc_map **out, conc_pool *p, conc_map_fn fn, void *arg, size_t n,
                    const conc_map_opts *opts)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL map pointer");
    *out = NULL;
    if (!p || !fn)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool or function");
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    struct conc__pool_map *pm = malloc(sizeof *pm);
    if (!pm)
        return CONC_ENOMEM;
    *pm = (struct conc__pool_map){p, fn, arg};
    return conc__map_create(out, &conc__pool_map_source, pm, n, 2 * (size_t)conc_pool_workers(p),
                            opts);
}
