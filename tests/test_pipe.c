/* Pipes of framed messages (conc/process.h): round trips of sizes around
 * the page and beyond the socket buffer with a reader and a writer at once,
 * order over many messages, a forked child echoing, timeouts on both sides
 * that never split a message, the end of the stream at a boundary and in the
 * middle of a frame, frames that are refused, no SIGPIPE, and misuse.
 *
 * Frames written by hand on the raw descriptor stand for a peer that died
 * mid-frame or sent garbage. Every byte received is checked against the
 * pattern it was sent with. A writer thread reports through its struct (no
 * cmocka asserts off the main thread); a child checks with CHECK and reports
 * through its exit status, and is killed if late. */
#define _GNU_SOURCE
#include "test.h"

#include "process/frame.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define T CONC_SEC(10)

/* The byte i of message number seq of size n: every message differs. */
static unsigned char pat(size_t seq, size_t n, size_t i)
{
    return (unsigned char)(i * 131 + seq * 7 + n + (i >> 8));
}

static unsigned char *make_msg(size_t seq, size_t n)
{
    unsigned char *m = malloc(n ? n : 1);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++)
        m[i] = pat(seq, n, i);
    return m;
}

static unsigned char *fill(unsigned char *m, size_t seq, size_t n)
{
    for (size_t i = 0; i < n; i++)
        m[i] = pat(seq, n, i);
    return m;
}

static int msg_ok(const unsigned char *m, size_t seq, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (m[i] != pat(seq, n, i))
            return 0;
    return 1;
}

static void raw_write(conc_pipe *p, const void *buf, size_t len)
{
    assert_int_equal(send(conc_pipe_fd(p), buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* ============================================== a writer thread, a reader */

static const size_t sizes[] = {0, 1, 4095, 4096, 65537, 4u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

struct writer {
    conc_pipe *p;
    size_t count;       /* messages; sizes[i % NSIZES] unless fixed */
    const size_t *size; /* NULL: seq's own size, seq % 1000 */
    int rc;
};

static void *writer_fn(void *arg)
{
    struct writer *w = arg;
    for (size_t seq = 0; seq < w->count && w->rc == 0; seq++) {
        size_t n = w->size ? w->size[seq % NSIZES] : seq % 1000;
        unsigned char *m = malloc(n ? n : 1);
        if (!m) {
            w->rc = CONC_ENOMEM;
            break;
        }
        for (size_t i = 0; i < n; i++)
            m[i] = pat(seq, n, i);
        w->rc = conc_pipe_send_timed(w->p, m, n, T);
        free(m);
    }
    return NULL;
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    struct writer w = {.p = a, .count = NSIZES, .size = sizes};
    pthread_t t = conc_test_start(writer_fn, &w);
    unsigned char *buf = malloc(4u << 20);
    assert_non_null(buf);
    for (size_t seq = 0; seq < NSIZES; seq++) {
        size_t len = 12345;
        assert_int_equal(conc_pipe_recv_timed(b, buf, 4u << 20, &len, T), 0);
        assert_int_equal(len, sizes[seq]);
        assert_true(msg_ok(buf, seq, len));
    }
    conc_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(conc_pipe_poll_timed(b, 0), 0);
    free(buf);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* Both directions of one pair at once: each end sends and receives. */
static void test_many_in_order_both_ways(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    size_t count = (size_t)conc_test_scaled(5000, 200);
    struct writer wa = {.p = a, .count = count}, wb = {.p = b, .count = count};
    pthread_t ta = conc_test_start(writer_fn, &wa), tb = conc_test_start(writer_fn, &wb);
    unsigned char buf[1000];
    for (size_t seq = 0; seq < count; seq++) {
        size_t len;
        assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, T), 0);
        assert_int_equal(len, seq % 1000);
        assert_true(msg_ok(buf, seq, len));
        assert_int_equal(conc_pipe_recv_timed(a, buf, sizeof buf, &len, T), 0);
        assert_int_equal(len, seq % 1000);
        assert_true(msg_ok(buf, seq, len));
    }
    conc_test_join(ta);
    conc_test_join(tb);
    assert_int_equal(wa.rc, 0);
    assert_int_equal(wb.rc, 0);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* ======================================================= a child echoing */

static int echo_child(conc_pipe *mine, conc_pipe *theirs)
{
    CONC_TEST_CHILD_CHECK(conc_pipe_destroy(theirs) == 0);
    unsigned char *buf = malloc(1 << 20);
    CONC_TEST_CHILD_CHECK(buf);
    for (;;) {
        size_t len;
        int rc = conc_pipe_recv_timed(mine, buf, 1 << 20, &len, T);
        if (rc == CONC_EPIPE)
            break;
        CONC_TEST_CHILD_CHECK(rc == 0);
        CONC_TEST_CHILD_CHECK(conc_pipe_send_timed(mine, buf, len, T) == 0);
    }
    free(buf);
    CONC_TEST_CHILD_CHECK(conc_pipe_destroy(mine) == 0);
    return 0;
}

static void test_child_echoes(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    /* close-on-exec: a program the child execs does not inherit them */
    assert_true(fcntl(conc_pipe_fd(a), F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(conc_pipe_fd(b), F_GETFD) & FD_CLOEXEC);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(getppid() == parent ? echo_child(b, a) : 99);
    }
    assert_int_equal(conc_pipe_destroy(b), 0);
    static const size_t n[] = {0, 1, 4095, 4096, 65537, 1 << 20};
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    for (size_t seq = 0; seq < 60; seq++) {
        size_t want = n[seq % 6], len;
        unsigned char *m = make_msg(seq, want);
        /* one at a time: the child's reply waits for its reader (us) */
        assert_int_equal(conc_pipe_send_timed(a, m, want, T), 0);
        assert_int_equal(conc_pipe_recv_timed(a, buf, 1 << 20, &len, T), 0);
        assert_int_equal(len, want);
        assert_true(msg_ok(buf, seq, len));
        free(m);
    }
    free(buf);
    assert_int_equal(conc_pipe_destroy(a), 0); /* the child reads EOF and exits */
    assert_int_equal(conc_test_wait_child(pid, 10), 0);
}

/* ============================================================== timeouts */

static void test_recv_timeout_on_empty(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    unsigned char buf[8];
    size_t len = 777;
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, CONC_MSEC(5)),
                     CONC_ETIMEDOUT);
    assert_int_equal(len, 777); /* untouched */
    assert_int_equal(conc_pipe_poll_timed(b, 0), 0);
    assert_int_equal(conc_pipe_poll_timed(b, CONC_MSEC(5)), 0);
    assert_int_equal(conc_pipe_send(a, "hey", 3), 0);
    assert_int_equal(conc_pipe_poll_timed(b, 0), 1);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, 0), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "hey", 3);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* Small messages fill the socket whole or not at all: a full pipe times
 * out with nothing written, and the stream stays intact. */
static void test_send_timeout_on_full_pipe(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    unsigned char m[100];
    size_t k = 0;
    int rc;
    while ((rc = conc_pipe_send_timed(a, fill(m, k, sizeof m), sizeof m, 0)) == 0)
        k++;
    assert_int_equal(rc, CONC_ETIMEDOUT);
    assert_true(k > 10);
    assert_int_equal(conc_pipe_send_timed(a, m, sizeof m, CONC_MSEC(5)), CONC_ETIMEDOUT);
    for (size_t seq = 0; seq < k; seq++) {
        size_t len;
        assert_int_equal(conc_pipe_recv_timed(b, m, sizeof m, &len, 0), 0);
        assert_int_equal(len, sizeof m);
        assert_true(msg_ok(m, seq, len));
    }
    assert_int_equal(conc_pipe_recv_timed(b, m, sizeof m, &(size_t){0}, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_pipe_send_timed(a, fill(m, k, sizeof m), sizeof m, 0), 0);
    size_t len;
    assert_int_equal(conc_pipe_recv_timed(b, m, sizeof m, &len, 0), 0);
    assert_true(len == sizeof m && msg_ok(m, k, len));
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* A send that times out with part of its frame written breaks its end:
 * the peer reads the messages before it, then a cut frame; the broken end
 * still receives. */
static void test_send_timeout_mid_frame_breaks_the_end(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    unsigned char small[10];
    assert_int_equal(conc_pipe_send(a, fill(small, 0, sizeof small), sizeof small), 0);
    size_t n = 4u << 20; /* far above the socket buffer */
    unsigned char *big = make_msg(1, n);
    assert_int_equal(conc_pipe_send_timed(a, big, n, CONC_MSEC(5)), CONC_EBROKEN);
    assert_int_equal(conc_pipe_send_timed(a, small, sizeof small, T), CONC_EBROKEN);
    assert_int_equal(conc_pipe_send(a, NULL, 0), CONC_EBROKEN);
    size_t len;
    assert_int_equal(conc_pipe_recv_timed(b, big, n, &len, T), 0);
    assert_true(len == sizeof small && msg_ok(big, 0, len));
    assert_int_equal(conc_pipe_recv_timed(b, big, n, &len, T), CONC_EIO);
    assert_int_equal(conc_pipe_recv_timed(b, big, n, &len, 0), CONC_EIO);
    assert_int_equal(conc_pipe_send_timed(b, "back", 4, T), 0);
    assert_int_equal(conc_pipe_recv_timed(a, small, sizeof small, &len, T), 0);
    assert_true(len == 4 && memcmp(small, "back", 4) == 0);
    free(big);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* A recv that times out in the header or in the payload keeps what it
 * read; the next one finishes the same message. */
static void test_recv_timeout_mid_frame_continues(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    size_t n = 1000, len = 0;
    unsigned char hdr[CONC__FRAME_HEADER], *m = make_msg(5, n), buf[1000];
    conc__frame_encode(hdr, n);
    raw_write(a, hdr, 7);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, 0), CONC_ETIMEDOUT);
    raw_write(a, hdr + 7, sizeof hdr - 7);
    raw_write(a, m, 300);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, CONC_MSEC(2)),
                     CONC_ETIMEDOUT);
    /* too small a buffer now: the message stays, with its 300 bytes */
    assert_int_equal(conc_pipe_recv_timed(b, buf, 999, &len, 0), CONC_EOVERFLOW);
    assert_int_equal(len, n);
    raw_write(a, m + 300, 400);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, 0), CONC_ETIMEDOUT);
    memset(buf, 0, sizeof buf);
    raw_write(a, m + 700, 300);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, 0), 0);
    assert_true(len == n && msg_ok(buf, 5, n));
    /* and the stream goes on */
    assert_int_equal(conc_pipe_send(a, "next", 4), 0);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, T), 0);
    assert_true(len == 4 && memcmp(buf, "next", 4) == 0);
    free(m);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* ================================================ buffers that are short */

static void test_short_buffer_leaves_the_message(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    unsigned char m[100], buf[100];
    assert_int_equal(conc_pipe_send(a, fill(m, 3, sizeof m), sizeof m), 0);
    assert_int_equal(conc_pipe_send(a, NULL, 0), 0);
    size_t len = 0;
    assert_int_equal(conc_pipe_recv(b, buf, 10, &len), CONC_EOVERFLOW);
    assert_int_equal(len, 100);
    len = 0;
    assert_int_equal(conc_pipe_recv(b, NULL, 0, &len), CONC_EOVERFLOW); /* its size */
    assert_int_equal(len, 100);
    assert_int_equal(conc_pipe_recv(b, buf, 100, &len), 0);
    assert_true(len == 100 && msg_ok(buf, 3, len));
    len = 9;
    assert_int_equal(conc_pipe_recv(b, NULL, 0, &len), 0); /* the empty message */
    assert_int_equal(len, 0);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* ====================================================== the end of stream */

static void test_peer_closed_at_boundary_is_eof(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    assert_int_equal(conc_pipe_send(a, "last", 4), 0);
    assert_int_equal(conc_pipe_destroy(a), 0);
    unsigned char buf[8];
    size_t len;
    assert_int_equal(conc_pipe_poll_timed(b, 0), 1);
    assert_int_equal(conc_pipe_recv(b, buf, sizeof buf, &len), 0);
    assert_true(len == 4 && memcmp(buf, "last", 4) == 0);
    assert_int_equal(conc_pipe_poll_timed(b, 0), 1); /* EOF is ready too */
    assert_int_equal(conc_pipe_recv(b, buf, sizeof buf, &len), CONC_EPIPE);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, 0), CONC_EPIPE);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

static void expect_cut(size_t header_bytes, size_t payload_bytes)
{
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    unsigned char hdr[CONC__FRAME_HEADER], *m = make_msg(0, 100), buf[100];
    conc__frame_encode(hdr, 100);
    raw_write(a, hdr, header_bytes);
    if (payload_bytes)
        raw_write(a, m, payload_bytes);
    assert_int_equal(conc_pipe_destroy(a), 0);
    size_t len;
    assert_int_equal(conc_pipe_recv(b, buf, sizeof buf, &len), CONC_EIO);
    assert_int_equal(conc_pipe_recv(b, buf, sizeof buf, &len), CONC_EIO);
    free(m);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

static void test_peer_closed_mid_frame_is_cut(void **state)
{
    (void)state;
    expect_cut(1, 0);
    expect_cut(CONC__FRAME_HEADER - 1, 0);
    expect_cut(CONC__FRAME_HEADER, 0);
    expect_cut(CONC__FRAME_HEADER, 99);
}

/* ==================================================== frames refused */

static void expect_refused(const unsigned char hdr[CONC__FRAME_HEADER], size_t max, int code)
{
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, &(conc_pipe_opts){.max_message = max}), 0);
    raw_write(a, hdr, CONC__FRAME_HEADER);
    unsigned char buf[16];
    size_t len = 5;
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, T), code);
    assert_int_equal(conc_pipe_recv_timed(b, buf, sizeof buf, &len, T), code);
    assert_int_equal(len, 5);
    assert_int_equal(conc_pipe_poll_timed(b, 0), 1);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

static void test_oversized_or_bad_frames_are_refused(void **state)
{
    (void)state;
    unsigned char hdr[CONC__FRAME_HEADER];
    conc__frame_encode(hdr, 1001);
    expect_refused(hdr, 1000, CONC_ERANGE);
    conc__frame_encode(hdr, UINT64_MAX / 2);
    expect_refused(hdr, 0, CONC_ERANGE);
    conc__frame_encode(hdr, 1000);
    hdr[0] ^= 1;
    expect_refused(hdr, 0, CONC_EIO); /* not a frame */
    conc__frame_encode(hdr, 10);
    hdr[4] = 2;
    expect_refused(hdr, 0, CONC_EIO); /* a version this one does not know */

    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, &(conc_pipe_opts){.max_message = 1000}), 0);
    unsigned char m[1001] = {0};
    assert_int_equal(conc_pipe_send(a, m, 1001), CONC_ERANGE);
    assert_int_equal(conc_pipe_send(a, m, 1000), 0); /* nothing was sent before */
    size_t len;
    assert_int_equal(conc_pipe_recv_timed(b, m, sizeof m, &len, T), 0);
    assert_int_equal(len, 1000);
    assert_int_equal(conc_pipe_recv_timed(b, m, sizeof m, &len, 0), CONC_ETIMEDOUT);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

/* ================================================================= SIGPIPE */

static void test_send_to_closed_peer_is_epipe_without_sigpipe(void **state)
{
    (void)state;
    assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR); /* a SIGPIPE would kill us */
    conc_pipe *a, *b;
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
    assert_int_equal(conc_pipe_send(a, "x", 1), CONC_EPIPE);
    unsigned char *big = make_msg(0, 1 << 20);
    assert_int_equal(conc_pipe_send_timed(a, big, 1 << 20, T), CONC_EPIPE);
    free(big);
    assert_int_equal(conc_pipe_destroy(a), 0);
}

/* =================================================================== misuse */

static void expect_misuse(int rc, const char *needle)
{
    assert_int_equal(rc, CONC_EINVAL);
    const char *d = conc_error_detail();
    assert_non_null(d);
    if (!strstr(d, needle))
        fail_msg("detail \"%s\" lacks \"%s\"", d, needle);
}

static void test_bad_input(void **state)
{
    (void)state;
    conc_pipe *a, *b;
    unsigned char buf[4];
    size_t len;
    expect_misuse(conc_pipe_create(NULL, &b, NULL), "conc_pipe_create: NULL output end");
    expect_misuse(conc_pipe_create(&a, &b, &(conc_pipe_opts){.reserved_ = {1}}), "reserved");
    assert_int_equal(conc_pipe_create(&a, &b, NULL), 0);
    expect_misuse(conc_pipe_send(NULL, buf, 1), "conc_pipe_send_timed: NULL pipe");
    expect_misuse(conc_pipe_send(a, NULL, 1), "NULL buf with len > 0");
    expect_misuse(conc_pipe_send_timed(a, buf, 1, -5), "negative timeout");
    expect_misuse(conc_pipe_recv(NULL, buf, 4, &len), "NULL pipe");
    expect_misuse(conc_pipe_recv(b, NULL, 4, &len), "NULL buf with cap > 0");
    expect_misuse(conc_pipe_recv(b, buf, 4, NULL), "NULL len");
    expect_misuse(conc_pipe_recv_timed(b, buf, 4, &len, -2), "negative timeout");
    expect_misuse(conc_pipe_poll_timed(NULL, 0), "NULL pipe");
    expect_misuse(conc_pipe_poll_timed(b, -1), "negative timeout");
    expect_misuse(conc_pipe_fd(NULL), "conc_pipe_fd: NULL pipe");
    expect_misuse(conc_pipe_destroy(NULL), "conc_pipe_destroy: NULL pipe");
    /* nothing was sent by the refused calls */
    assert_int_equal(conc_pipe_recv_timed(b, buf, 4, &len, 0), CONC_ETIMEDOUT);
    assert_true(conc_pipe_fd(a) >= 0 && conc_pipe_fd(b) >= 0);
    assert_int_equal(conc_pipe_destroy(a), 0);
    assert_int_equal(conc_pipe_destroy(b), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(test_round_trip_sizes),
               cmocka_unit_test(test_many_in_order_both_ways),
               cmocka_unit_test(test_child_echoes),
               cmocka_unit_test(test_recv_timeout_on_empty),
               cmocka_unit_test(test_send_timeout_on_full_pipe),
               cmocka_unit_test(test_send_timeout_mid_frame_breaks_the_end),
               cmocka_unit_test(test_recv_timeout_mid_frame_continues),
               cmocka_unit_test(test_short_buffer_leaves_the_message),
               cmocka_unit_test(test_peer_closed_at_boundary_is_eof),
               cmocka_unit_test(test_peer_closed_mid_frame_is_cut),
               cmocka_unit_test(test_oversized_or_bad_frames_are_refused),
               cmocka_unit_test(test_send_to_closed_peer_is_epipe_without_sigpipe),
               cmocka_unit_test(test_bad_input))
