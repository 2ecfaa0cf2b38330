/* conc_procpool_map: conc_map (exec/map.c) on the process pool. Each chunk
 * is one pool task, conc__pp_map_chunk_run, whose argument carries the map's
 * function (by module and offset) and the chunk's items, and whose result
 * is one record per item run: {status, length, value} and the item's result
 * bytes, 8-byte aligned. The parent reads the records out of the chunk's
 * future (collect); the chunk keeps the future, so the results may point
 * into its buffer. */
#define _GNU_SOURCE
#include "exec/map_impl.h"
#include "exec/procpool/procpool_impl.h"

#include "core/misuse.h"

#include <stdlib.h>
#include <string.h>

/* The head of a chunk's argument; the function's module name follows, then
 * the items, 8-byte aligned. */
struct conc__pp_chunk_head {
    uint64_t item_size, count, offset;
    uint32_t module_len, pad_;
};

struct conc__pp_map_rec {
    int32_t status;
    uint32_t len;
    int64_t value;
};

static size_t conc__pp_pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static size_t conc__pp_chunk_items_at(size_t module_len)
{
    return conc__pp_pad8(sizeof(struct conc__pp_chunk_head) + module_len);
}

int conc__pp_map_chunk_run(const void *arg, size_t size, conc_result *out)
{
    struct conc__pp_chunk_head h;
    if (size < sizeof h)
        return CONC_EIO; /* not a chunk this map made */
    memcpy(&h, arg, sizeof h);
    const unsigned char *items = (const unsigned char *)arg + conc__pp_chunk_items_at(h.module_len);
    if (conc__pp_chunk_items_at(h.module_len) + h.item_size * h.count > size)
        return CONC_EIO;
    conc_proc_task_fn fn = (conc_proc_task_fn)conc__fnref_resolve(
        (const char *)arg + sizeof h, h.module_len, h.offset);
    if (!fn)
        return CONC_ENOENT;
    size_t cap = conc__pp_worker_result_max;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return CONC_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < h.count; i++) {
        if (conc_cancel_requested()) {
            free(buf);
            return CONC_ECANCELED;
        }
        conc_result r = {0};
        struct conc__pp_map_rec rec = {fn(items + i * h.item_size, h.item_size, &r), 0, r.value};
        size_t len = r.data ? r.len : 0;
        /* Room for this record and a bare one for each item after it (the
         * map creation checked that bare records for all fit). */
        size_t after = sizeof rec * (h.count - i - 1);
        if (used + sizeof rec + conc__pp_pad8(len) + after > cap) {
            if (rec.status == 0)
                rec.status = CONC_EOVERFLOW;
            len = 0;
        }
        rec.len = (uint32_t)len;
        memcpy(buf + used, &rec, sizeof rec);
        if (len)
            memcpy(buf + used + sizeof rec, r.data, len);
        used += sizeof rec + conc__pp_pad8(len);
        if (r.free_fn && r.data)
            r.free_fn(r.data);
        if (rec.status != 0)
            break; /* the map stops at this item */
    }
    *out = (conc_result){.data = buf, .len = used, .free_fn = free};
    return 0;
}

struct conc__pp_map {
    conc_procpool *pp;
    struct conc__fnref fn, runner;
    const unsigned char *items;
    size_t item_size;
};

static int conc__pp_map_submit(conc_map *m, struct conc__map_chunk *c)
{
    struct conc__pp_map *pm = conc__map_ctx(m);
    size_t at = conc__pp_chunk_items_at(pm->fn.module_len);
    size_t size = at + c->count * pm->item_size;
    unsigned char *arg = malloc(size);
    if (!arg)
        return CONC_ENOMEM;
    struct conc__pp_chunk_head h = {pm->item_size, c->count, pm->fn.offset,
                                    (uint32_t)pm->fn.module_len, 0};
    memset(arg, 0, at);
    memcpy(arg, &h, sizeof h);
    memcpy(arg + sizeof h, pm->fn.module, pm->fn.module_len);
    memcpy(arg + at, pm->items + c->start * pm->item_size, c->count * pm->item_size);
    int rc = conc__pp_submit(pm->pp, &pm->runner, arg, size, &c->f);
    free(arg);
    return rc;
}

static void conc__pp_map_collect(conc_map *m, struct conc__map_chunk *c)
{
    (void)m;
    conc_result r;
    if (conc_future_result(c->f, &r) != 0) {
        c->ran = 0; /* never ran, or its worker died: the map reports it */
        return;
    }
    const unsigned char *p = r.data;
    size_t used = 0;
    c->ran = 0;
    while (c->ran < c->count && used + sizeof(struct conc__pp_map_rec) <= r.len) {
        struct conc__pp_map_rec rec;
        memcpy(&rec, p + used, sizeof rec);
        used += sizeof rec;
        c->status[c->ran] = rec.status;
        c->results[c->ran] = (conc_result){.value = rec.value,
                                           .data = rec.len ? (void *)(p + used) : NULL,
                                           .len = rec.len};
        used += conc__pp_pad8(rec.len);
        c->ran++;
    }
}

static const struct conc__map_source conc__pp_map_source = {conc__pp_map_submit,
                                                            conc__pp_map_collect, free};

int conc_procpool_map(conc_map **out, conc_procpool *pp, conc_proc_task_fn fn, const void *items,
                      size_t item_size, size_t n, const conc_map_opts *opts)
{
    if (!out)
        return CONC__MISUSE(CONC_EINVAL, "NULL map pointer");
    *out = NULL;
    if (!pp || !fn)
        return CONC__MISUSE(CONC_EINVAL, "NULL pool or function");
    if (!items && n)
        return CONC__MISUSE(CONC_EINVAL, "items NULL with n > 0");
    if (!item_size)
        return CONC__MISUSE(CONC_EINVAL, "item_size 0");
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    struct conc__pp_map *pm = calloc(1, sizeof *pm);
    if (!pm)
        return CONC_ENOMEM;
    *pm = (struct conc__pp_map){.pp = pp, .items = items, .item_size = item_size};
    if (!conc__fnref_of((void (*)(void))fn, &pm->fn) ||
        !conc__fnref_of((void (*)(void))conc__pp_map_chunk_run, &pm->runner)) {
        free(pm);
        return CONC__MISUSE(CONC_EINVAL, "fn is not in a loaded module's code");
    }
    size_t chunk = opts && opts->chunksize ? opts->chunksize : 1;
    size_t at = conc__pp_chunk_items_at(pm->fn.module_len);
    if (at > pp->arg_max || chunk > (pp->arg_max - at) / item_size ||
        chunk > pp->sh->result_max / sizeof(struct conc__pp_map_rec)) {
        free(pm);
        return CONC_EOVERFLOW;
    }
    return conc__map_create(out, &conc__pp_map_source, pm, n, 2 * pp->nworkers, opts);
}
