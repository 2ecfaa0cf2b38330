/* conc_shm: shared memory segments, anonymous or named.
 *
 * An anonymous segment is a MAP_SHARED | MAP_ANONYMOUS mapping: the
 * children forked after it share it. A named one is a POSIX shared memory
 * object (shm_open, a file in /dev/shm, mode 0600 as Python's), created
 * with O_EXCL, sized and reserved with fallocate (tmpfs hands out its pages
 * lazily: ftruncate alone lets a full /dev/shm kill the process with SIGBUS
 * at the first touch of a page it cannot have), mapped, and its descriptor
 * closed: the mapping keeps the object alive.
 *
 * Who removes the name. The creating process (creator_pid: a forked child
 * has a copy of the handle but did not create anything), at its destroy,
 * unless opts.keep. The name may have been removed and taken again by a new
 * segment since (conc_shm_unlink_name from elsewhere, then a create): the
 * destroy removes it only if it still names the creator's own object, the
 * same device and inode. (Between that check and the removal another
 * process could swap the object again; POSIX offers no removal by
 * descriptor, so this is as close as it gets.)
 */
#define _GNU_SOURCE
#include "conc/process.h"
#include "core/misuse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct conc_shm {
    void *addr;
    size_t size;     /* as created or found */
    size_t map_size; /* size rounded up to whole pages */
    pid_t creator;   /* the process that created the named segment; 0: it opened it */
    bool unlinked;   /* its name was removed through this handle */
    dev_t dev;       /* the named object's identity, for the destroy's check */
    ino_t ino;
    char name[CONC_SHM_NAME_MAX + 2]; /* "/name"; "" for an anonymous one */
};

/* The conc code of a failed shm_open, fallocate, fstat or mmap: the
 * descriptor limits are one outcome, a full /dev/shm is out of memory. */
static int conc__shm_err(int e)
{
    switch (e) {
    case EEXIST:
        return CONC_EEXIST;
    case ENOENT:
        return CONC_ENOENT;
    case EACCES:
    case EPERM:
        return CONC_EACCES;
    case EMFILE:
    case ENFILE:
        return CONC_EMFILE;
    case EFBIG:
    case EOVERFLOW:
        return CONC_EOVERFLOW;
    case EINVAL:
    case ENAMETOOLONG:
        return conc__misuse_at(CONC_EINVAL, NULL, "the system refused the segment's name or size");
    default: /* ENOMEM, ENOSPC, EAGAIN (locked memory) */
        return CONC_ENOMEM;
    }
}

/* Checks name and writes its form with one leading slash into out (size
 * CONC_SHM_NAME_MAX + 2). 0, or CONC_EINVAL with its detail in fn's name. */
static int conc__shm_name(const char *name, char *out, const char *fn)
{
    if (!name)
        return conc__misuse_at(CONC_EINVAL, fn, "NULL name");
    if (name[0] == '/')
        name++;
    size_t n = strnlen(name, CONC_SHM_NAME_MAX + 1);
    if (n == 0)
        return conc__misuse_at(CONC_EINVAL, fn, "empty segment name");
    if (n > CONC_SHM_NAME_MAX)
        return conc__misuse_at(CONC_EINVAL, fn, "segment name longer than CONC_SHM_NAME_MAX");
    if (memchr(name, '/', n))
        return conc__misuse_at(CONC_EINVAL, fn, "a segment name holds no '/' but a leading one");
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return conc__misuse_at(CONC_EINVAL, fn, "\".\" and \"..\" are not segment names");
    out[0] = '/';
    memcpy(out + 1, name, n + 1);
    return 0;
}

/* size rounded up to whole pages in *map_size; CONC_EOVERFLOW past what an
 * off_t (the object's size) and the address space can hold. */
static int conc__shm_map_size(size_t size, size_t *map_size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > (size_t)PTRDIFF_MAX - page)
        return CONC_EOVERFLOW;
    *map_size = (size + page - 1) & ~(page - 1);
    return 0;
}

static int conc__shm_map(struct conc_shm *s, int fd)
{
    int flags = MAP_SHARED | (fd < 0 ? MAP_ANONYMOUS : 0);
    void *a = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (a == MAP_FAILED)
        return conc__shm_err(errno);
    s->addr = a;
    return 0;
}

/* Creates, reserves and maps the named object s->name of s->size bytes. */
static int conc__shm_create_named(struct conc_shm *s)
{
    int fd = shm_open(s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return conc__shm_err(errno);
    struct stat st;
    int rc = 0;
    if (fallocate(fd, 0, 0, (off_t)s->size) != 0 &&
        (errno != EOPNOTSUPP || ftruncate(fd, (off_t)s->size) != 0))
        rc = conc__shm_err(errno);
    else if (fstat(fd, &st) != 0)
        rc = conc__shm_err(errno);
    else
        rc = conc__shm_map(s, fd);
    close(fd);
    if (rc != 0) {
        shm_unlink(s->name);
        return rc;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->creator = getpid();
    return 0;
}

int conc_shm_create(conc_shm **shm, size_t size, const conc_shm_opts *opts)
{
    if (CONC__OPTS_CHECK(opts))
        return CONC_EINVAL;
    if (!shm)
        return CONC__MISUSE(CONC_EINVAL, "NULL output");
    *shm = NULL;
    if (size == 0)
        return CONC__MISUSE(CONC_EINVAL, "size is 0");
    struct conc_shm *s = calloc(1, sizeof *s);
    if (!s)
        return CONC_ENOMEM;
    s->size = size;
    int rc = opts && opts->name ? conc__shm_name(opts->name, s->name, __func__) : 0;
    if (rc == 0)
        rc = conc__shm_map_size(size, &s->map_size);
    if (rc == 0)
        rc = s->name[0] ? conc__shm_create_named(s) : conc__shm_map(s, -1);
    if (rc != 0) {
        free(s);
        return rc;
    }
    if (opts && opts->keep)
        s->creator = 0;
    *shm = s;
    return 0;
}

int conc_shm_open(conc_shm **shm, const char *name)
{
    if (!shm)
        return CONC__MISUSE(CONC_EINVAL, "NULL output");
    *shm = NULL;
    struct conc_shm *s = calloc(1, sizeof *s);
    if (!s)
        return CONC_ENOMEM;
    int rc = conc__shm_name(name, s->name, __func__), fd = -1;
    struct stat st;
    if (rc == 0 && (fd = shm_open(s->name, O_RDWR | O_CLOEXEC, 0)) < 0)
        rc = conc__shm_err(errno);
    if (rc == 0 && fstat(fd, &st) != 0)
        rc = conc__shm_err(errno);
    if (rc == 0 && st.st_size == 0)
        rc = CONC__MISUSE(CONC_EINVAL, "the segment is empty (size 0)");
    if (rc == 0 && (uintmax_t)st.st_size > SIZE_MAX)
        rc = CONC_EOVERFLOW;
    if (rc == 0) {
        s->size = (size_t)st.st_size;
        rc = conc__shm_map_size(s->size, &s->map_size);
    }
    if (rc == 0)
        rc = conc__shm_map(s, fd);
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *shm = s;
    return 0;
}

/* Whether s->name still names the object s created. */
static bool conc__shm_still_ours(struct conc_shm *s)
{
    int fd = shm_open(s->name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct stat st;
    bool ours = fstat(fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
    close(fd);
    return ours;
}

int conc_shm_destroy(conc_shm *shm)
{
    if (!shm)
        return CONC__MISUSE(CONC_EINVAL, "NULL segment");
    if (shm->creator == getpid() && !shm->unlinked && conc__shm_still_ours(shm))
        shm_unlink(shm->name);
    munmap(shm->addr, shm->map_size);
    free(shm);
    return 0;
}

int conc_shm_unlink(conc_shm *shm)
{
    if (!shm)
        return CONC__MISUSE(CONC_EINVAL, "NULL segment");
    if (!shm->name[0])
        return CONC__MISUSE(CONC_EINVAL, "an anonymous segment has no name to remove");
    if (shm_unlink(shm->name) != 0)
        return conc__shm_err(errno);
    shm->unlinked = true;
    return 0;
}

int conc_shm_unlink_name(const char *name)
{
    char n[CONC_SHM_NAME_MAX + 2];
    int rc = conc__shm_name(name, n, __func__);
    if (rc != 0)
        return rc;
    return shm_unlink(n) == 0 ? 0 : conc__shm_err(errno);
}

void *conc_shm_addr(conc_shm *shm)
{
    return shm ? shm->addr : NULL;
}

int64_t conc_shm_size(conc_shm *shm)
{
    if (!shm)
        return CONC__MISUSE(CONC_EINVAL, "NULL segment");
    return (int64_t)shm->size;
}

int conc_shm_get_name(conc_shm *shm, char *buf, size_t size)
{
    if (!shm)
        return CONC__MISUSE(CONC_EINVAL, "NULL segment");
    if (!buf || size == 0)
        return CONC__MISUSE(CONC_EINVAL, "NULL buffer, or size 0");
    size_t n = strnlen(shm->name, size - 1);
    memcpy(buf, shm->name, n);
    buf[n] = '\0';
    return 0;
}
