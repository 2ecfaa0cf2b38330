/* conc_shm, shared memory segments: anonymous ones shared with forked
 * children; named ones opened by name, their name removed by the creating
 * process's destroy (not by a forked child's copy, not when opts.keep says
 * so, never a later segment's of the same name), early with unlink, or by
 * name; bad names, sizes and handles answered with codes.
 *
 * Names are CONC_TEST_SHM_PREFIX (set by ctest per build folder; else
 * "conc-test-"), this process's id, and a tag: every named test ends by
 * checking that no segment of its own is left in /dev/shm, and after all
 * of them ctest runs tests/check_shm_leaks.sh over the prefix. */
#include "test.h"

#include <dirent.h>
#include <sys/mman.h>
#include <sys/statvfs.h>

#define CHECK CONC_TEST_CHILD_CHECK

/* This process's segment name for tag, without the leading slash. */
static const char *name_of(char *buf, size_t size, const char *tag)
{
    snprintf(buf, size, "%s%d-%s", conc_test_shm_prefix(), (int)getpid(), tag);
    return buf;
}

static bool segment_exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
    return access(path, F_OK) == 0;
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* ===================================================== anonymous */

struct anon {
    conc_shm *seg;
    size_t size;
};

static int child_writes_anon(void *arg)
{
    struct anon *a = arg;
    unsigned char *p = conc_shm_addr(a->seg);
    CHECK(all_bytes(p, a->size, 0));
    memset(p, 0x5a, a->size);
    return 0;
}

/* The child's destroy unmaps its copy only. */
static int child_reads_and_destroys_anon(void *arg)
{
    struct anon *a = arg;
    CHECK(all_bytes(conc_shm_addr(a->seg), a->size, 0xa5));
    CHECK(conc_shm_destroy(a->seg) == 0);
    return 0;
}

static void shm_anonymous_zeroed_and_shared_with_children(void **state)
{
    (void)state;
    long page = sysconf(_SC_PAGESIZE);
    struct anon a = {.size = 3 * (size_t)page + 100};
    assert_int_equal(conc_shm_create(&a.seg, a.size, NULL), 0);
    unsigned char *p = conc_shm_addr(a.seg);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % (uintptr_t)page, 0);
    assert_int_equal(conc_shm_size(a.seg), a.size);
    char name[8] = "x";
    assert_int_equal(conc_shm_get_name(a.seg, name, sizeof name), 0);
    assert_string_equal(name, "");
    assert_int_equal(conc_shm_unlink(a.seg), CONC_EINVAL);
    conc_test_reap(conc_test_fork(child_writes_anon, &a));
    assert_true(all_bytes(p, a.size, 0x5a));
    memset(p, 0xa5, a.size);
    conc_test_reap(conc_test_fork(child_reads_and_destroys_anon, &a));
    assert_true(all_bytes(p, a.size, 0xa5)); /* still mapped here */
    assert_int_equal(conc_shm_destroy(a.seg), 0);
}

/* Process-shared objects in it work across fork: a semaphore ping-pong. */
struct pingpong {
    conc_sem ping, pong;
    long rounds, seen;
};

static int pong(void *arg)
{
    struct pingpong *pp = arg;
    for (long i = 0; i < pp->rounds; i++) {
        CHECK(conc_sem_acquire_timed(&pp->ping, CONC_SEC(10)) == 0);
        pp->seen++;
        CHECK(conc_sem_release(&pp->pong) == 0);
    }
    return 0;
}

static void shm_anonymous_holds_process_shared_objects(void **state)
{
    (void)state;
    conc_shm *seg;
    assert_int_equal(conc_shm_create(&seg, sizeof(struct pingpong), NULL), 0);
    struct pingpong *pp = conc_shm_addr(seg);
    conc_sem_opts so = {.pshared = true};
    assert_int_equal(conc_sem_init(&pp->ping, 0, &so), 0);
    assert_int_equal(conc_sem_init(&pp->pong, 0, &so), 0);
    pp->rounds = conc_test_scaled(2000, 100);
    pid_t pid = conc_test_fork(pong, pp);
    for (long i = 0; i < pp->rounds; i++) {
        assert_int_equal(conc_sem_release(&pp->ping), 0);
        assert_int_equal(conc_sem_acquire_timed(&pp->pong, CONC_SEC(10)), 0);
        assert_int_equal(pp->seen, i + 1);
    }
    conc_test_reap(pid);
    assert_int_equal(conc_sem_destroy(&pp->ping), 0);
    assert_int_equal(conc_sem_destroy(&pp->pong), 0);
    assert_int_equal(conc_shm_destroy(seg), 0);
}

/* ========================================================= named */

struct named {
    char name[256];
    size_t size;
};

/* A process that did not create it opens it by name and writes to it. */
static int child_opens_by_name(void *arg)
{
    struct named *n = arg;
    conc_shm *s = NULL;
    CHECK(conc_shm_open(&s, n->name) == 0);
    CHECK(conc_shm_size(s) == (int64_t)n->size);
    unsigned char *p = conc_shm_addr(s);
    CHECK(all_bytes(p + 1, n->size - 1, 0) && p[0] == 7);
    memset(p + 1, 0x33, n->size - 1);
    CHECK(conc_shm_destroy(s) == 0); /* an opener's destroy leaves the name */
    CHECK(segment_exists(n->name));
    return 0;
}

static void shm_named_created_opened_and_removed_by_its_creator(void **state)
{
    (void)state;
    struct named n = {.size = 10000};
    name_of(n.name, sizeof n.name, "a");
    conc_shm *s = NULL, *twin = NULL, *again = (conc_shm *)&n;
    assert_int_equal(conc_shm_create(&s, n.size, &(conc_shm_opts){.name = n.name}), 0);
    assert_true(segment_exists(n.name));
    char got[300];
    assert_int_equal(conc_shm_get_name(s, got, sizeof got), 0);
    assert_int_equal(got[0], '/');
    assert_string_equal(got + 1, n.name);
    char short_buf[4];
    assert_int_equal(conc_shm_get_name(s, short_buf, sizeof short_buf), 0);
    assert_int_equal(strlen(short_buf), 3); /* truncated, terminated */
    unsigned char *p = conc_shm_addr(s);
    assert_true(all_bytes(p, n.size, 0));
    p[0] = 7;

    /* The name is taken: a second create fails and changes nothing. */
    assert_int_equal(conc_shm_create(&again, 64, &(conc_shm_opts){.name = n.name}), CONC_EEXIST);
    assert_null(again);

    /* Opened by "/name" in this process: another mapping of the same bytes. */
    assert_int_equal(conc_shm_open(&twin, got), 0);
    unsigned char *q = conc_shm_addr(twin);
    assert_ptr_not_equal(p, q);
    assert_int_equal(q[0], 7);

    conc_test_reap(conc_test_fork(child_opens_by_name, &n));
    assert_true(all_bytes(p + 1, n.size - 1, 0x33));

    /* The creator's destroy removes the name; the twin's mapping lives on. */
    assert_int_equal(conc_shm_destroy(s), 0);
    assert_false(segment_exists(n.name));
    assert_int_equal(conc_shm_open(&again, n.name), CONC_ENOENT);
    assert_null(again);
    assert_true(all_bytes(q + 1, n.size - 1, 0x33));
    q[1] = 1;
    assert_int_equal(conc_shm_unlink(twin), CONC_ENOENT);
    assert_int_equal(conc_shm_destroy(twin), 0);
    conc_test_assert_no_segment_left();
}

struct named_with_handle {
    struct named n;
    conc_shm *s;
};

/* A forked child holds a copy of its parent's creator handle: the child did
 * not create the segment, so its destroy leaves the name. */
static int child_destroys_copy(void *arg)
{
    struct named_with_handle *h = arg;
    CHECK(conc_shm_destroy(h->s) == 0);
    CHECK(segment_exists(h->n.name));
    return 0;
}

static void shm_named_child_copy_does_not_remove_the_name(void **state)
{
    (void)state;
    struct named_with_handle h = {.n.size = 100};
    name_of(h.n.name, sizeof h.n.name, "b");
    assert_int_equal(conc_shm_create(&h.s, h.n.size, &(conc_shm_opts){.name = h.n.name}), 0);
    conc_test_reap(conc_test_fork(child_destroys_copy, &h));
    assert_true(segment_exists(h.n.name));
    assert_int_equal(conc_shm_destroy(h.s), 0);
    assert_false(segment_exists(h.n.name));
    conc_test_assert_no_segment_left();
}

/* unlink early (the name goes, the memory stays), unlink by name, and
 * opts.keep (the name outlives the creator's destroy). */
static void shm_named_unlink_early_by_name_and_keep(void **state)
{
    (void)state;
    char name[256];
    name_of(name, sizeof name, "c");
    conc_shm *s = NULL, *o = NULL;
    assert_int_equal(conc_shm_create(&s, 4096, &(conc_shm_opts){.name = name}), 0);
    assert_int_equal(conc_shm_open(&o, name), 0);
    assert_int_equal(conc_shm_unlink(s), 0);
    assert_false(segment_exists(name));
    assert_int_equal(conc_shm_unlink(s), CONC_ENOENT);
    assert_int_equal(conc_shm_unlink_name(name), CONC_ENOENT);
    ((char *)conc_shm_addr(s))[10] = 'x';
    assert_int_equal(((char *)conc_shm_addr(o))[10], 'x');
    assert_int_equal(conc_shm_destroy(s), 0);
    assert_int_equal(conc_shm_destroy(o), 0);

    assert_int_equal(conc_shm_create(&s, 4096, &(conc_shm_opts){.name = name, .keep = true}), 0);
    ((char *)conc_shm_addr(s))[0] = 'k';
    assert_int_equal(conc_shm_destroy(s), 0);
    assert_true(segment_exists(name));
    assert_int_equal(conc_shm_open(&o, name), 0);
    assert_int_equal(((char *)conc_shm_addr(o))[0], 'k');
    assert_int_equal(conc_shm_destroy(o), 0);
    assert_true(segment_exists(name));
    char slashed[260];
    snprintf(slashed, sizeof slashed, "/%s", name);
    assert_int_equal(conc_shm_unlink_name(slashed), 0);
    assert_false(segment_exists(name));
    conc_test_assert_no_segment_left();
}

/* The creator's name was removed and taken by a new segment: the creator's
 * destroy must leave the newcomer alone. */
static void shm_named_destroy_spares_a_new_segment_of_the_same_name(void **state)
{
    (void)state;
    char name[256];
    name_of(name, sizeof name, "d");
    conc_shm *old = NULL, *young = NULL;
    assert_int_equal(conc_shm_create(&old, 4096, &(conc_shm_opts){.name = name}), 0);
    assert_int_equal(conc_shm_unlink_name(name), 0);
    assert_int_equal(conc_shm_create(&young, 8192, &(conc_shm_opts){.name = name}), 0);
    ((char *)conc_shm_addr(young))[0] = 'y';
    assert_int_equal(conc_shm_destroy(old), 0);
    assert_true(segment_exists(name));
    conc_shm *o = NULL;
    assert_int_equal(conc_shm_open(&o, name), 0);
    assert_int_equal(conc_shm_size(o), 8192);
    assert_int_equal(((char *)conc_shm_addr(o))[0], 'y');
    assert_int_equal(conc_shm_destroy(o), 0);
    assert_int_equal(conc_shm_destroy(young), 0);
    assert_false(segment_exists(name));
    conc_test_assert_no_segment_left();
}

/* ================================================= bad input, limits */

static void shm_bad_names_sizes_and_handles(void **state)
{
    (void)state;
    conc_shm *s = (conc_shm *)&s;
    char longest[CONC_SHM_NAME_MAX + 2], too_long[CONC_SHM_NAME_MAX + 2];
    snprintf(longest, sizeof longest, "%s%d-", conc_test_shm_prefix(), (int)getpid());
    size_t n = strlen(longest);
    memset(longest + n, 'n', CONC_SHM_NAME_MAX - n);
    longest[CONC_SHM_NAME_MAX] = '\0';
    memcpy(too_long, longest, sizeof longest);
    strcat(too_long, "n");
    const char *bad[] = {"", "/", "a/b", "//a", ".", "/..", too_long};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(conc_shm_create(&s, 64, &(conc_shm_opts){.name = bad[i]}), CONC_EINVAL);
        assert_null(s);
        assert_int_equal(conc_shm_open(&s, bad[i]), CONC_EINVAL);
        assert_int_equal(conc_shm_unlink_name(bad[i]), CONC_EINVAL);
    }
    assert_int_equal(conc_shm_create(&s, 64, &(conc_shm_opts){.name = longest}), 0);
    assert_int_equal(conc_shm_destroy(s), 0);

    assert_int_equal(conc_shm_create(NULL, 64, NULL), CONC_EINVAL);
    assert_int_equal(conc_shm_create(&s, 0, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "size is 0"));
    assert_int_equal(conc_shm_create(&s, 64, &(conc_shm_opts){.reserved_ = {1}}), CONC_EINVAL);
    assert_int_equal(conc_shm_create(&s, SIZE_MAX, NULL), CONC_EOVERFLOW);
    assert_null(s);
    assert_int_equal(conc_shm_open(NULL, "x"), CONC_EINVAL);
    assert_int_equal(conc_shm_open(&s, NULL), CONC_EINVAL);
    char name[256];
    assert_int_equal(conc_shm_open(&s, name_of(name, sizeof name, "missing")), CONC_ENOENT);
    assert_int_equal(conc_shm_unlink_name(name), CONC_ENOENT);
    assert_int_equal(conc_shm_unlink_name(NULL), CONC_EINVAL);
    assert_int_equal(conc_shm_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc_shm_unlink(NULL), CONC_EINVAL);
    assert_null(conc_shm_addr(NULL));
    assert_int_equal(conc_shm_size(NULL), CONC_EINVAL);
    char buf[8];
    assert_int_equal(conc_shm_get_name(NULL, buf, sizeof buf), CONC_EINVAL);

    /* An empty segment (made by someone else, never sized) cannot be mapped. */
    char path[300];
    snprintf(path, sizeof path, "/%s", name_of(name, sizeof name, "empty"));
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(conc_shm_open(&s, name), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "empty"));
    assert_int_equal(conc_shm_unlink_name(name), 0);
    conc_test_assert_no_segment_left();
}

/* More than /dev/shm holds: CONC_ENOMEM at create (not SIGBUS at a touch),
 * and no name left behind. */
static void shm_named_larger_than_dev_shm_is_enomem(void **state)
{
    (void)state;
    struct statvfs v;
    assert_int_equal(statvfs("/dev/shm", &v), 0);
    uint64_t total = (uint64_t)v.f_blocks * v.f_frsize;
    if (total == 0 || total > ((uint64_t)1 << 50)) {
        print_message("/dev/shm has no size limit here: nothing to fill\n");
        skip();
    }
    char name[256];
    name_of(name, sizeof name, "huge");
    conc_shm *s = NULL;
    assert_int_equal(conc_shm_create(&s, (size_t)total * 2, &(conc_shm_opts){.name = name}),
                     CONC_ENOMEM);
    assert_null(s);
    assert_false(segment_exists(name));
    conc_test_assert_no_segment_left();
}

CONC_TEST_MAIN(cmocka_unit_test(shm_anonymous_zeroed_and_shared_with_children),
               cmocka_unit_test(shm_anonymous_holds_process_shared_objects),
               cmocka_unit_test(shm_named_created_opened_and_removed_by_its_creator),
               cmocka_unit_test(shm_named_child_copy_does_not_remove_the_name),
               cmocka_unit_test(shm_named_unlink_early_by_name_and_keep),
               cmocka_unit_test(shm_named_destroy_spares_a_new_segment_of_the_same_name),
               cmocka_unit_test(shm_bad_names_sizes_and_handles),
               cmocka_unit_test(shm_named_larger_than_dev_shm_is_enomem))
