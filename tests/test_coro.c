/* Stackful coroutines (src/aio/coro.h) on the context switch (src/arch/ctx.h)
 * and their stacks (src/aio/stack.h): values carried both ways across many
 * switches between a thread and two coroutines; nested resumes; each
 * context's own floating-point rounding mode; callee-saved registers kept;
 * stack alignment at entry; 10k coroutines alive at once on unguarded
 * stacks; the pool recycling stacks (the process's mappings stay flat); an
 * overflow dying at the guard page; an overwritten canary caught at the
 * next switch; bad input answered with codes. Every test ends with no stack
 * mapped once the pool is drained.
 *
 * tests/CMakeLists.txt builds this file twice: test_coro on the switch the
 * build chose, test_coro_ucontext on the portable fallback. */
#define _GNU_SOURCE
#include "test.h"

#include "aio/coro.h"
#include "aio/stack.h"
#include "core/platform.h"

#include <errno.h>
#include <fenv.h>
#include <stdalign.h>
#include <sys/mman.h>
#include <sys/resource.h>

/* ------------------------------------------------------------ helpers */

static struct conc__coro *coro_new(conc__coro_fn fn, void *arg, size_t stack, bool unguarded)
{
    struct conc__coro *co = NULL;
    struct conc__coro_opts o = {.stack_size = stack, .unguarded = unguarded};
    assert_int_equal(conc__coro_create(&co, &o, fn, arg), 0);
    assert_non_null(co);
    return co;
}

static void *resume(struct conc__coro *co, void *in)
{
    void *out = (void *)(uintptr_t)0xdead;
    assert_int_equal(conc__coro_resume(co, in, &out), 0);
    return out;
}

static void *yield(void *value)
{
    void *in = (void *)(uintptr_t)0xdead;
    assert_int_equal(conc__coro_yield(value, &in), 0);
    return in;
}

static void destroy(struct conc__coro *co)
{
    assert_int_equal(conc__coro_destroy(co), 0);
}

/* The end of every test: once the pool is drained, no stack is mapped. */
static void assert_no_stack_left(void)
{
    conc__stack_pool_drain();
    assert_int_equal(conc__stack_mapped(), 0);
}

/* The number of mappings of this process (lines of /proc/self/maps). Under
 * ThreadSanitizer every fiber's state is mapped by the runtime too, so
 * counts there say nothing about the stacks: the tests compare them only
 * where MAPS_MEAN_STACKS. */
#define MAPS_MEAN_STACKS (!CONC__TSAN)

static long maps_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    long n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

/* ------------------------------------------------- values across switches */

struct pingpong {
    struct conc__coro *b;
    long checked;
};

/* b: answers every value with the next one, until it is dropped suspended. */
static void *pingpong_b(void *arg, void *in)
{
    (void)arg;
    while (in != NULL)
        in = yield((void *)((uintptr_t)in + 1));
    return NULL;
}

/* a: n from the thread → n + 1 to b → n + 2 back → n + 3 to the thread. */
static void *pingpong_a(void *arg, void *in)
{
    struct pingpong *p = arg;
    for (uintptr_t n; (n = (uintptr_t)in) != UINTPTR_MAX;) {
        uintptr_t m = (uintptr_t)resume(p->b, (void *)(n + 1));
        assert_int_equal(m, n + 2);
        p->checked++;
        in = yield((void *)(m + 1));
    }
    return (void *)(uintptr_t)42;
}

static void values_ping_pong_between_a_thread_and_two_coroutines(void **state)
{
    (void)state;
    struct pingpong p = {0};
    p.b = coro_new(pingpong_b, NULL, 0, false);
    struct conc__coro *a = coro_new(pingpong_a, &p, 0, false);
    long rounds = conc_test_scaled(200000, 2000);
    for (long i = 0; i < rounds; i++)
        assert_int_equal((uintptr_t)resume(a, (void *)(uintptr_t)(i * 5)), i * 5 + 3);
    assert_int_equal(p.checked, rounds);
    assert_false(conc__coro_finished(a));
    assert_int_equal((uintptr_t)resume(a, (void *)UINTPTR_MAX), 42);
    assert_true(conc__coro_finished(a));
    assert_false(conc__coro_finished(p.b));
    destroy(a);
    destroy(p.b); /* suspended: dropped */
    assert_no_stack_left();
}

/* ---------------------------------------------------------- nested resumes */

struct nest {
    struct conc__coro *a, *b, *c;
    uintptr_t thread_self;
    int steps;
};

static void *nest_c(void *arg, void *in)
{
    struct nest *n = arg;
    assert_int_equal((uintptr_t)in, 'b');
    assert_ptr_equal(conc__coro_current(), n->c);
    assert_ptr_equal(n->c->resumer, n->b);
    assert_int_equal(conc__self(), (uintptr_t)n->c);
    n->steps++;
    assert_int_equal((uintptr_t)yield((void *)'c'), 'B');
    n->steps++;
    return (void *)'C';
}

static void *nest_b(void *arg, void *in)
{
    struct nest *n = arg;
    assert_int_equal((uintptr_t)in, 'a');
    assert_int_equal((uintptr_t)resume(n->c, (void *)'b'), 'c');
    assert_ptr_equal(conc__coro_current(), n->b);
    assert_int_equal(conc__self(), (uintptr_t)n->b);
    /* Every coroutine on the chain is running: no resume may make a cycle. */
    assert_int_equal(conc__coro_resume(n->a, NULL, NULL), CONC_ESTATE);
    assert_int_equal(conc__coro_resume(n->b, NULL, NULL), CONC_ESTATE);
    assert_int_equal(conc__coro_destroy(n->a), CONC_EBUSY);
    assert_int_equal(conc__coro_destroy(n->b), CONC_EBUSY);
    n->steps++;
    assert_int_equal((uintptr_t)yield((void *)'b'), 'A');
    assert_int_equal((uintptr_t)resume(n->c, (void *)'B'), 'C');
    assert_true(conc__coro_finished(n->c));
    assert_int_equal(conc__coro_resume(n->c, NULL, NULL), CONC_ESTATE);
    return (void *)'D';
}

static void *nest_a(void *arg, void *in)
{
    struct nest *n = arg;
    assert_null(in);
    assert_ptr_equal(n->a->resumer, NULL);
    assert_int_equal((uintptr_t)resume(n->b, (void *)'a'), 'b');
    assert_int_equal(conc__self(), (uintptr_t)n->a);
    assert_int_equal(conc__context()->ident, (uintptr_t)n->a);
    assert_int_equal((uintptr_t)yield((void *)'a'), 'T');
    assert_int_equal((uintptr_t)resume(n->b, (void *)'A'), 'D');
    return (void *)'E';
}

static void nested_resumes_come_back_through_each_resumer(void **state)
{
    (void)state;
    struct nest n = {.thread_self = conc__self()};
    n.a = coro_new(nest_a, &n, 0, false);
    n.b = coro_new(nest_b, &n, 0, false);
    n.c = coro_new(nest_c, &n, 0, false);
    assert_null(conc__coro_current());
    assert_int_equal((uintptr_t)resume(n.a, NULL), 'a');
    assert_null(conc__coro_current());
    assert_int_equal(conc__self(), n.thread_self);
    assert_ptr_equal(conc__context(), &conc__tls.own);
    assert_int_equal(n.steps, 2);
    assert_int_equal((uintptr_t)resume(n.a, (void *)'T'), 'E');
    assert_int_equal(n.steps, 3);
    assert_true(conc__coro_finished(n.a) && conc__coro_finished(n.b) && conc__coro_finished(n.c));
    assert_int_equal(conc__self(), n.thread_self);
    destroy(n.c);
    destroy(n.b);
    destroy(n.a);
    assert_no_stack_left();
}

/* A coroutine suspended on one thread resumes on another. (It asks the
 * kernel which thread it is on: pthread_self() is declared const, and the
 * compiler may reuse its first answer after the yield — the caveat of
 * aio/coro.h about thread-local state.) */
struct hop {
    struct conc__coro *co;
    pid_t seen[2];
    uintptr_t out;
};

static void *hop_fn(void *arg, void *in)
{
    struct hop *h = arg;
    h->seen[0] = conc_test_tid();
    in = yield((void *)1);
    h->seen[1] = conc_test_tid();
    return (void *)((uintptr_t)in + 1);
}

static void *hop_thread(void *arg)
{
    struct hop *h = arg;
    h->out = (uintptr_t)resume(h->co, (void *)41);
    return NULL;
}

static void a_coroutine_resumes_on_another_thread(void **state)
{
    (void)state;
    struct hop h = {0};
    h.co = coro_new(hop_fn, &h, 0, false);
    assert_int_equal((uintptr_t)resume(h.co, NULL), 1);
    conc_test_join(conc_test_start(hop_thread, &h));
    assert_int_equal(h.out, 42);
    assert_true(conc__coro_finished(h.co));
    assert_int_equal(h.seen[0], conc_test_tid());
    assert_int_not_equal(h.seen[1], conc_test_tid());
    destroy(h.co);
    assert_no_stack_left();
}

/* ---------------------------------------------- floating-point control */

/* The rounding mode the hardware applies to doubles (x86-64: MXCSR's): 1/3
 * lies just above its nearest double, so rounding up moves it, and -1/3
 * just below, so rounding down moves it. */
static int observed_rounding(void)
{
    volatile double one = 1.0, three = 3.0;
    double q = one / three, r = -one / three;
    if (q > 1.0 / 3.0)
        return FE_UPWARD;
    if (r < -1.0 / 3.0)
        return FE_DOWNWARD;
    return FE_TONEAREST;
}

/* Each control register on its own: fegetround() reads x87's on x86-64. */
static void assert_rounding(int mode)
{
    assert_int_equal(fegetround(), mode);
    assert_int_equal(observed_rounding(), mode);
#if defined(__x86_64__)
    unsigned rc = mode == FE_UPWARD ? 2 : mode == FE_DOWNWARD ? 1 : 0;
    unsigned short cw;
    __asm__ __volatile__("fnstcw %0" : "=m"(cw));
    assert_int_equal((__builtin_ia32_stmxcsr() >> 13) & 3, rc);
    assert_int_equal((cw >> 10) & 3, rc);
#endif
}

static void *fp_fn(void *arg, void *in)
{
    (void)arg;
    (void)in;
    assert_rounding(FE_TONEAREST); /* the creator's at creation */
    assert_int_equal(fesetround(FE_DOWNWARD), 0);
    assert_rounding(FE_DOWNWARD);
    yield(NULL);
    assert_rounding(FE_DOWNWARD); /* the thread's FE_UPWARD stayed there */
    return NULL;
}

static void *fp_inherit_fn(void *arg, void *in)
{
    (void)arg;
    (void)in;
    assert_rounding(FE_UPWARD);
    return NULL;
}

static void rounding_mode_belongs_to_each_context(void **state)
{
    (void)state;
    assert_int_equal(fesetround(FE_TONEAREST), 0);
    struct conc__coro *co = coro_new(fp_fn, NULL, 0, false);
    resume(co, NULL);
    assert_rounding(FE_TONEAREST);
    assert_int_equal(fesetround(FE_UPWARD), 0);
    resume(co, NULL);
    assert_true(conc__coro_finished(co));
    assert_rounding(FE_UPWARD);
    destroy(co);
    /* A new coroutine starts with its creator's mode, as a new thread. */
    co = coro_new(fp_inherit_fn, NULL, 0, false);
    assert_int_equal(fesetround(FE_TONEAREST), 0);
    resume(co, NULL);
    assert_rounding(FE_TONEAREST);
    destroy(co);
    assert_no_stack_left();
}

/* ------------------------------------------------ callee-saved registers */

static struct conc__coro *regs_co;

static void step_none(void)
{
}

static void step_yield(void)
{
    yield(NULL);
}

static void step_resume(void)
{
    resume(regs_co, NULL);
}

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Sixteen values live across every step() — eight integers, eight doubles:
 * more than the callee-saved registers (x86-64: rbx, rbp, r12-r15;
 * aarch64: x19-x28, d8-d15), so the compiler keeps what it can in them. A
 * switch that loses one changes the result. */
__attribute__((noinline)) static uint64_t regs_work(uint64_t seed, int rounds, void (*step)(void))
{
    uint64_t a = seed * 3 + 1, b = seed ^ 0x5555, c = seed + 7, d = seed * 11;
    uint64_t e = ~seed, f = seed << 3, g = seed - 99, h = seed * seed;
    double x = (double)(seed & 0xffff) * 0.5, y = (double)(seed & 0xff) + 1.5;
    double z = 1.0 / (double)(seed | 1), w = 2.0 + (double)(seed % 7);
    double u = 0.25 * (double)(seed & 0xfff), v = 3.5, p = (double)(seed >> 60), q = 0.125;
    for (int i = 0; i < rounds; i++) {
        step();
        a += b, b ^= c << 1, c += d, d ^= e >> 3, e += f, f ^= g, g += h, h ^= a;
        x = x * 0.5 + y, y = y * 0.5 + z, z = z * 0.5 + w, w = w * 0.5 + u;
        u = u * 0.5 + v, v = v * 0.5 + p, p = p * 0.5 + q, q = q * 0.5 + x;
    }
    return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ bits(x) ^ bits(y) ^ bits(z) ^ bits(w) ^ bits(u) ^
           bits(v) ^ bits(p) ^ bits(q);
}

#define REGS_ROUNDS 1000

static void *regs_fn(void *arg, void *in)
{
    (void)in;
    return (void *)(uintptr_t)regs_work((uintptr_t)arg, REGS_ROUNDS, step_yield);
}

static void callee_saved_registers_survive_switches(void **state)
{
    (void)state;
    uint64_t seed_thread = 0x1234567890abcdefu, seed_coro = 0xfedcba0987654321u;
    uint64_t want_thread = regs_work(seed_thread, REGS_ROUNDS, step_none);
    uint64_t want_coro = regs_work(seed_coro, REGS_ROUNDS, step_none);
    assert_true(want_thread != want_coro);
    regs_co = coro_new(regs_fn, (void *)(uintptr_t)seed_coro, 0, false);
    /* Each of the thread's steps resumes the coroutine, whose steps yield:
     * both run regs_work at once, switching at every step. */
    assert_int_equal(regs_work(seed_thread, REGS_ROUNDS, step_resume), want_thread);
    assert_false(conc__coro_finished(regs_co));
    assert_int_equal((uintptr_t)resume(regs_co, NULL), (uintptr_t)want_coro);
    assert_true(conc__coro_finished(regs_co));
    destroy(regs_co);
    assert_no_stack_left();
}

/* ------------------------------------------------ stack alignment at entry */

typedef float v4sf __attribute__((vector_size(16)));

/* What the ABI promises at a call: a 16-byte aligned stack. An aligned
 * vector local is stored with an aligned move (a fault if not), the frame
 * address is aligned, and printf can format floating point. */
__attribute__((noinline)) static bool frame_is_aligned(void)
{
    alignas(16) volatile char buf[16];
    buf[0] = 1;
    volatile v4sf vec = {1.0f, 2.0f, 3.0f, 4.0f};
    v4sf sq = vec * vec;
    char text[64];
    snprintf(text, sizeof text, "%.3f %.2Lf %.1f", 2.5, (long double)0.25, (double)sq[3]);
    return ((uintptr_t)buf & 15) == 0 && ((uintptr_t)__builtin_frame_address(0) & 15) == 0 &&
           strcmp(text, "2.500 0.25 16.0") == 0;
}

static void *align_fn(void *arg, void *in)
{
    (void)arg;
    (void)in;
    alignas(16) volatile char here[16];
    here[0] = 0;
    assert_int_equal((uintptr_t)here & 15, 0);
    assert_true(frame_is_aligned());
    yield(NULL);
    assert_true(frame_is_aligned());
    return NULL;
}

static void stack_is_aligned_for_sse_at_entry(void **state)
{
    (void)state;
    for (int unguarded = 0; unguarded < 2; unguarded++) {
        struct conc__coro *co = coro_new(align_fn, NULL, CONC__STACK_MIN, unguarded);
        resume(co, NULL);
        resume(co, NULL);
        assert_true(conc__coro_finished(co));
        destroy(co);
    }
    assert_no_stack_left();
}

/* ------------------------------------------------------ many at once */

static void *mass_fn(void *arg, void *in)
{
    (void)in;
    uintptr_t i = (uintptr_t)arg;
    uintptr_t got = (uintptr_t)yield((void *)(i * 2));
    return (void *)(got + i);
}

static void ten_thousand_unguarded_coroutines_alive_at_once(void **state)
{
    (void)state;
    long n = conc_test_scaled(10000, 1000);
    struct conc__coro **co = calloc((size_t)n, sizeof *co);
    assert_non_null(co);
    long maps_before = maps_count();
    for (long i = 0; i < n; i++)
        co[i] = coro_new(mass_fn, (void *)(uintptr_t)i, 0, true);
    assert_int_equal(conc__stack_mapped(), n);
    /* One mapping each at most (neighbours may merge): guarded ones take two. */
    if (MAPS_MEAN_STACKS)
        assert_true(maps_count() - maps_before <= n);
    for (long i = 0; i < n; i++)
        assert_int_equal((uintptr_t)resume(co[i], NULL), (uintptr_t)i * 2);
    for (long i = 0; i < n; i++) {
        assert_int_equal((uintptr_t)resume(co[i], (void *)7), (uintptr_t)i + 7);
        assert_true(conc__coro_finished(co[i]));
    }
    for (long i = 0; i < n; i++)
        destroy(co[i]);
    free(co);
    assert_no_stack_left();
}

/* ------------------------------------------------------------ the pool */

static void *finish_fn(void *arg, void *in)
{
    (void)arg;
    return in;
}

#define POOL_BATCH 8

/* Creates, runs and destroys POOL_BATCH coroutines; their stacks' lows. */
static void pool_round(size_t size, bool unguarded, void *lows[POOL_BATCH])
{
    struct conc__coro *co[POOL_BATCH];
    for (int i = 0; i < POOL_BATCH; i++)
        co[i] = coro_new(finish_fn, NULL, size, unguarded);
    for (int i = 0; i < POOL_BATCH; i++) {
        size_t got;
        conc__coro_stack(co[i], &lows[i], &got);
        assert_true(got >= (size ? size : CONC__STACK_DEFAULT));
        assert_int_equal((uintptr_t)resume(co[i], (void *)(uintptr_t)i), i);
    }
    for (int i = 0; i < POOL_BATCH; i++)
        destroy(co[i]);
}

static void *pool_thread(void *arg)
{
    void **lows = arg;
    pool_round(128 << 10, false, lows);
    return NULL; /* its cache goes to the shared pool */
}

static bool is_one_of(void *p, void *const set[POOL_BATCH])
{
    for (int i = 0; i < POOL_BATCH; i++)
        if (set[i] == p)
            return true;
    return false;
}

static void pool_recycles_stacks(void **state)
{
    (void)state;
    void *first[POOL_BATCH], *lows[POOL_BATCH];
    pool_round(0, false, first);
    assert_int_equal(conc__stack_mapped(), POOL_BATCH);
    long maps = maps_count();
    long rounds = conc_test_scaled(2000, 200);
    for (long r = 0; r < rounds; r++) {
        pool_round(0, false, lows);
        for (int i = 0; i < POOL_BATCH; i++)
            assert_true(is_one_of(lows[i], first));
    }
    assert_int_equal(conc__stack_mapped(), POOL_BATCH);
    if (MAPS_MEAN_STACKS)
        assert_int_equal(maps_count(), maps);
    /* Another size, or another kind, is not served from them. */
    pool_round(0, true, lows);
    assert_int_equal(conc__stack_mapped(), 2 * POOL_BATCH);
    /* A thread's cache goes to the shared pool when it exits, and serves
     * the next stacks of that size on any thread. */
    conc_test_join(conc_test_start(pool_thread, first));
    assert_int_equal(conc__stack_mapped(), 3 * POOL_BATCH);
    pool_round(128 << 10, false, lows);
    assert_int_equal(conc__stack_mapped(), 3 * POOL_BATCH);
    for (int i = 0; i < POOL_BATCH; i++)
        assert_true(is_one_of(lows[i], first));
    long live = maps_count();
    assert_no_stack_left();
    if (MAPS_MEAN_STACKS)
        assert_true(maps_count() < live);
}

/* ---------------------------------------------------- overflow, canary */

/* Removes from text the lines that contain phrase. */
static void drop_lines(char *text, const char *phrase)
{
    char *out = text;
    for (char *line = text; *line;) {
        size_t n = strcspn(line, "\n"), whole = n + (line[n] == '\n');
        char end = line[n];
        line[n] = 0;
        bool drop = strstr(line, phrase) != NULL;
        line[n] = end;
        if (!drop) {
            memmove(out, line, whole);
            out += whole;
        }
        line += whole;
    }
    *out = 0;
}

/* Runs fn(write end) in a child (conc_test_fork), its stderr to a pipe;
 * returns how it ended (conc_test_wait_child) and what it wrote, in text. */
static int run_child_reading_stderr(int (*fn)(void *), char *text, size_t size)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = conc_test_fork(fn, &fds[1]);
    close(fds[1]);
    size_t len = 0;
    for (ssize_t got; len < size - 1 && (got = read(fds[0], text + len, size - 1 - len)) != 0;) {
        if (got < 0 && errno == EINTR)
            continue;
        assert_true(got > 0);
        len += (size_t)got;
    }
    text[len] = 0;
    close(fds[0]);
    return conc_test_wait_child(pid, 30);
}

/* What a child tells its parent, in a shared page. */
struct overflow_report {
    _Atomic uintptr_t lo, deepest;
    _Atomic long depth;
};

static struct overflow_report *report;
static volatile long dive_limit = 1L << 40; /* never reached: keeps -Winfinite-recursion quiet */

__attribute__((noinline)) static long dive(long depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    atomic_store(&report->deepest, (uintptr_t)buf);
    atomic_store(&report->depth, depth);
    if (depth >= dive_limit)
        return 0;
    return dive(depth + 1) + buf[0];
}

static void *dive_fn(void *arg, void *in)
{
    (void)arg;
    (void)in;
    return (void *)dive(0);
}

/* The default action for sig, set by the system call itself: the
 * sanitizers' own handlers (and their interceptors of sigaction) stay out. */
static void default_action(int sig)
{
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long mask;
    } k = {0};
    k.handler = (void *)SIG_DFL;
    syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
}

static void no_core_dump(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
}

static int overflow_child(void *arg)
{
    (void)arg;
    no_core_dump();
    default_action(SIGSEGV);
    struct conc__coro *co = NULL;
    struct conc__coro_opts o = {.stack_size = CONC__STACK_MIN};
    CONC_TEST_CHILD_CHECK(conc__coro_create(&co, &o, dive_fn, NULL) == 0);
    void *lo;
    size_t size;
    conc__coro_stack(co, &lo, &size);
    atomic_store(&report->lo, (uintptr_t)lo);
    conc__coro_resume(co, NULL, NULL);
    return 2; /* it came back: no overflow */
}

static void stack_overflow_dies_at_the_guard_page(void **state)
{
    (void)state;
    report = mmap(NULL, sizeof *report, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(report != MAP_FAILED);
    pid_t pid = conc_test_fork(overflow_child, NULL);
    assert_int_equal(conc_test_wait_child(pid, 30), 128 + SIGSEGV);
    /* It went down frame by frame to the bottom of its stack, and died on
     * the next frame: below lo is only the guard page. */
    uintptr_t lo = atomic_load(&report->lo), deepest = atomic_load(&report->deepest);
    assert_true(lo != 0);
    assert_true(atomic_load(&report->depth) >= (long)(CONC__STACK_MIN / 1024) / 2);
    assert_true(deepest >= lo);
    assert_true(deepest - lo < 4096);
    munmap(report, sizeof *report);
    assert_no_stack_left();
}

static void *smash_fn(void *arg, void *in)
{
    (void)arg;
    (void)in;
    void *lo;
    size_t size;
    conc__coro_stack(conc__coro_current(), &lo, &size);
    *(volatile uint64_t *)lo = 0; /* as an overflow to the end of the stack would */
    yield(NULL);
    return NULL;
}

static int canary_child(void *arg)
{
    no_core_dump();
    dup2(*(int *)arg, 2);
    struct conc__coro *co = NULL;
    struct conc__coro_opts o = {.unguarded = true};
    CONC_TEST_CHILD_CHECK(conc__coro_create(&co, &o, smash_fn, NULL) == 0);
    conc__coro_resume(co, NULL, NULL);
    return 3; /* the switch back did not see it */
}

static void overwritten_canary_aborts_at_the_next_switch(void **state)
{
    (void)state;
    char text[1024];
    assert_int_equal(run_child_reading_stderr(canary_child, text, sizeof text), 128 + SIGABRT);
    if (!strstr(text, "overflowed its unguarded stack"))
        fail_msg("the child said: %s", text);
    assert_no_stack_left();
}

/* ------------------------------------------------ what the sanitizers see */

static jmp_buf jump_back;

__attribute__((noinline)) static void jump_out(void)
{
    longjmp(jump_back, 1);
}

/* A longjmp inside a coroutine's stack: ASan clears the stack it jumps over
 * from the jump's target up to the top of the stack it believes current —
 * the coroutine's only if it was told of every switch; otherwise it warns
 * that it ignores the jump, and false reports may follow. */
static void *longjmp_fn(void *arg, void *in)
{
    (void)arg;
    (void)in;
    volatile uintptr_t jumped = 0;
    if (setjmp(jump_back) == 0)
        jump_out();
    else
        jumped = 1;
    yield((void *)jumped);
    return (void *)(jumped + 1);
}

static int longjmp_child(void *arg)
{
    dup2(*(int *)arg, 2);
    struct conc__coro *co = NULL;
    CONC_TEST_CHILD_CHECK(conc__coro_create(&co, NULL, longjmp_fn, NULL) == 0);
    void *out = NULL;
    CONC_TEST_CHILD_CHECK(conc__coro_resume(co, NULL, &out) == 0 && out == (void *)1);
    CONC_TEST_CHILD_CHECK(conc__coro_resume(co, NULL, &out) == 0 && out == (void *)2);
    CONC_TEST_CHILD_CHECK(conc__coro_destroy(co) == 0);
    return 0;
}

static void sanitizers_know_the_running_stack(void **state)
{
    (void)state;
    char text[4096];
    assert_int_equal(run_child_reading_stderr(longjmp_child, text, sizeof text), 0);
    /* ASan says once that it "doesn't fully support makecontext/swapcontext"
     * when the ucontext switch is used, whatever it was told: not this. */
    drop_lines(text, "makecontext/swapcontext");
    if (text[0])
        fail_msg("the child said: %s", text);
    assert_no_stack_left();
}

/* ------------------------------------------------------------- misuse */

static void *self_destroy_fn(void *arg, void *in)
{
    (void)arg;
    (void)in;
    assert_int_equal(conc__coro_destroy(conc__coro_current()), CONC_EBUSY);
    return NULL;
}

static void bad_input_returns_codes(void **state)
{
    (void)state;
    struct conc__coro *co = NULL;
    struct conc__coro_opts o = {0};
    assert_int_equal(conc__coro_create(NULL, NULL, finish_fn, NULL), CONC_EINVAL);
    assert_int_equal(conc__coro_create(&co, NULL, NULL, NULL), CONC_EINVAL);
    o.stack_size = CONC__STACK_MIN - 1;
    assert_int_equal(conc__coro_create(&co, &o, finish_fn, NULL), CONC_EINVAL);
    assert_non_null(strstr(conc_error_detail(), "stack size"));
    o.stack_size = (size_t)-65536; /* a negative size */
    assert_int_equal(conc__coro_create(&co, &o, finish_fn, NULL), CONC_EINVAL);
    assert_null(co);
    assert_int_equal(conc__stack_mapped(), 0);

    assert_int_equal(conc__coro_resume(NULL, NULL, NULL), CONC_EINVAL);
    assert_int_equal(conc__coro_destroy(NULL), CONC_EINVAL);
    assert_int_equal(conc__coro_yield(NULL, NULL), CONC_ESTATE);
    assert_non_null(strstr(conc_error_detail(), "not called from a coroutine"));

    co = coro_new(self_destroy_fn, NULL, CONC__STACK_MIN, false);
    size_t size;
    void *lo;
    conc__coro_stack(co, &lo, &size);
    assert_true(size >= CONC__STACK_MIN);
    assert_null(resume(co, NULL));
    assert_true(conc__coro_finished(co));
    assert_int_equal(conc__coro_resume(co, NULL, NULL), CONC_ESTATE);
    assert_non_null(strstr(conc_error_detail(), "finished"));
    destroy(co);
    assert_no_stack_left();
}

CONC_TEST_MAIN(cmocka_unit_test(values_ping_pong_between_a_thread_and_two_coroutines),
               cmocka_unit_test(nested_resumes_come_back_through_each_resumer),
               cmocka_unit_test(a_coroutine_resumes_on_another_thread),
               cmocka_unit_test(rounding_mode_belongs_to_each_context),
               cmocka_unit_test(callee_saved_registers_survive_switches),
               cmocka_unit_test(stack_is_aligned_for_sse_at_entry),
               cmocka_unit_test(ten_thousand_unguarded_coroutines_alive_at_once),
               cmocka_unit_test(pool_recycles_stacks),
               cmocka_unit_test(stack_overflow_dies_at_the_guard_page),
               cmocka_unit_test(overwritten_canary_aborts_at_the_next_switch),
               cmocka_unit_test(sanitizers_know_the_running_stack),
               cmocka_unit_test(bad_input_returns_codes))
