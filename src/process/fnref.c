/* Functions named by (module, offset) (fnref.h).
 *
 * Both directions walk the loaded modules with dl_iterate_phdr, which takes
 * the dynamic linker's lock: a few microseconds. A process pool names a
 * function per task, so each thread keeps its last answers (a thread's own
 * cache needs no lock and is never caught half-written by a fork). */
#define _GNU_SOURCE
#include "process/fnref.h"

#include <link.h>
#include <string.h>

/* Looks a module up by the address of a function in it (name NULL), or a
 * function up by its module's name and offset (name set): either way the
 * address must fall in an executable segment of the module. */
struct conc__fnref_walk {
    const char *name; /* in: the module (name_len bytes), or NULL to find it by addr */
    size_t name_len;
    uint64_t offset;  /* in (by name): out (by address) */
    uintptr_t addr;   /* in (by address): out (by name) */
    const char *found_name;
    bool found;
};

static int conc__fnref_walk_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct conc__fnref_walk *w = arg;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    uintptr_t addr = w->addr;
    if (w->name) {
        if (strlen(name) != w->name_len || memcmp(name, w->name, w->name_len) != 0)
            return 0;
        addr = info->dlpi_addr + (uintptr_t)w->offset;
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (addr >= lo && addr - lo < ph->p_memsz) {
            w->found = true;
            w->found_name = name;
            w->addr = addr;
            w->offset = addr - info->dlpi_addr;
            return 1;
        }
    }
    return w->name ? 1 : 0; /* the named module, but not there: stop */
}

#define CONC__FNREF_CACHE 4

struct conc__fnref_cached {
    uintptr_t addr;
    struct conc__fnref ref;
};

/* Each thread's last answers, newest at [0]; an empty entry has addr 0.
 * A module unloaded (dlclose) while an answer about it is cached would
 * leave a stale entry: conc names only the functions of modules loaded at
 * the program's start (process.h), which stay. */
static __thread struct conc__fnref_cached conc__fnref_cache[CONC__FNREF_CACHE];

static void conc__fnref_remember(uintptr_t addr, const struct conc__fnref *ref)
{
    memmove(&conc__fnref_cache[1], &conc__fnref_cache[0],
            (CONC__FNREF_CACHE - 1) * sizeof conc__fnref_cache[0]);
    conc__fnref_cache[0] = (struct conc__fnref_cached){addr, *ref};
}

bool conc__fnref_of(void (*fn)(void), struct conc__fnref *out)
{
    uintptr_t addr = (uintptr_t)fn;
    for (int i = 0; i < CONC__FNREF_CACHE; i++)
        if (conc__fnref_cache[i].addr == addr && addr) {
            *out = conc__fnref_cache[i].ref;
            return true;
        }
    struct conc__fnref_walk w = {.addr = addr};
    dl_iterate_phdr(conc__fnref_walk_cb, &w);
    if (!w.found || strlen(w.found_name) > CONC__FNREF_NAME_MAX)
        return false;
    *out = (struct conc__fnref){w.found_name, strlen(w.found_name), w.offset};
    conc__fnref_remember(addr, out);
    return true;
}

void (*conc__fnref_resolve(const char *module, size_t module_len, uint64_t offset))(void)
{
    for (int i = 0; i < CONC__FNREF_CACHE; i++) {
        const struct conc__fnref_cached *c = &conc__fnref_cache[i];
        if (c->addr && c->ref.offset == offset && c->ref.module_len == module_len &&
            memcmp(c->ref.module, module, module_len) == 0)
            return (void (*)(void))c->addr;
    }
    struct conc__fnref_walk w = {.name = module, .name_len = module_len, .offset = offset};
    dl_iterate_phdr(conc__fnref_walk_cb, &w);
    if (!w.found)
        return NULL;
    struct conc__fnref ref = {w.found_name, module_len, offset};
    conc__fnref_remember(w.addr, &ref);
    return (void (*)(void))w.addr;
}
