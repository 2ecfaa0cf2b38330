/* Timeline traces (conc/debug.h): the file is strict JSON (parsed here by a
 * small validating parser: objects, arrays, strings with every escape and
 * UTF-8 checked, numbers, literals) in the Chrome Trace Event format, every
 * event well-formed (name, ph, ts, pid, tid; complete events with dur >= 0;
 * thread names as metadata); a run with a pool, a contended lock and a
 * queue wait gives task spans, lock waits and queue waits on the right
 * threads; names are escaped; a tiny ring keeps exactly the newest whole
 * spans; spans from a stopped session are dropped; CONC_TRACE writes at
 * exit; the argument codes; and threads writing while the trace stops. */
#define _GNU_SOURCE
#include "test_impl.h"

#include "conc/debug.h"
#include "queue/queue_impl.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void conc__trace_env(const char *value); /* diag.h: what CONC_TRACE does at load */

/* ==== a strict JSON parser (RFC 8259) ==== */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype t;
    bool b;
    double num;
    char *str; /* J_STR: decoded, UTF-8 */
    size_t n;  /* J_ARR / J_OBJ: items */
    struct jv *items;
    char **keys; /* J_OBJ */
};

struct jp {
    const char *p, *end;
    int depth;
    const char *error;
};

static bool jp_fail(struct jp *s, const char *why)
{
    if (!s->error)
        s->error = why;
    return false;
}

static void jp_ws(struct jp *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static void put_utf8(char **o, unsigned cp)
{
    unsigned char *u = (unsigned char *)*o;
    if (cp < 0x80) {
        *u++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *u++ = (unsigned char)(0xc0 | cp >> 6);
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *u++ = (unsigned char)(0xe0 | cp >> 12);
        *u++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *u++ = (unsigned char)(0xf0 | cp >> 18);
        *u++ = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    *o = (char *)u;
}

static bool jp_hex4(struct jp *s, unsigned *out)
{
    if (s->end - s->p < 4)
        return jp_fail(s, "short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *s->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return jp_fail(s, "bad hex digit");
    }
    *out = v;
    return true;
}

/* One raw UTF-8 sequence, validated (no overlongs, surrogates, > U+10FFFF). */
static bool jp_utf8(struct jp *s, char **o)
{
    const unsigned char *u = (const unsigned char *)s->p;
    unsigned c = u[0], len, cp;
    if (c < 0x80)
        len = 1, cp = c;
    else if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return jp_fail(s, "invalid UTF-8 lead byte");
    if ((size_t)(s->end - s->p) < len)
        return jp_fail(s, "truncated UTF-8");
    for (unsigned i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return jp_fail(s, "invalid UTF-8 continuation");
        cp = cp << 6 | (u[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return jp_fail(s, "invalid UTF-8 code point");
    memcpy(*o, s->p, len);
    *o += len;
    s->p += len;
    return true;
}

static bool jp_string(struct jp *s, char **out)
{
    if (s->p >= s->end || *s->p != '"')
        return jp_fail(s, "expected a string");
    s->p++;
    char *buf = malloc((size_t)(s->end - s->p) + 1), *o = buf;
    assert_non_null(buf);
    for (;;) {
        if (s->p >= s->end) {
            free(buf);
            return jp_fail(s, "unterminated string");
        }
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            break;
        }
        if (c < 0x20) {
            free(buf);
            return jp_fail(s, "raw control character in a string");
        }
        if (c != '\\') {
            if (!jp_utf8(s, &o)) {
                free(buf);
                return false;
            }
            continue;
        }
        s->p++;
        if (s->p >= s->end) {
            free(buf);
            return jp_fail(s, "unterminated escape");
        }
        char e = *s->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            *o++ = decoded[simple - "\"\\/bfnrt"];
            continue;
        }
        unsigned cp;
        if (e != 'u' || !jp_hex4(s, &cp)) {
            free(buf);
            return jp_fail(s, "bad escape");
        }
        if (cp >= 0xd800 && cp <= 0xdbff) { /* a surrogate pair */
            unsigned lo;
            if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u') {
                free(buf);
                return jp_fail(s, "lone high surrogate");
            }
            s->p += 2;
            if (!jp_hex4(s, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                free(buf);
                return jp_fail(s, "bad low surrogate");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(buf);
            return jp_fail(s, "lone low surrogate");
        }
        put_utf8(&o, cp);
    }
    *o = 0;
    *out = buf;
    return true;
}

static bool jp_digits(struct jp *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool jp_number(struct jp *s, double *out)
{
    const char *start = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!jp_digits(s))
        return jp_fail(s, "bad number");
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!jp_digits(s))
            return jp_fail(s, "bad fraction");
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!jp_digits(s))
            return jp_fail(s, "bad exponent");
    }
    char tmp[64];
    size_t len = (size_t)(s->p - start);
    if (len >= sizeof tmp)
        return jp_fail(s, "number too long");
    memcpy(tmp, start, len);
    tmp[len] = 0;
    *out = strtod(tmp, NULL);
    return isfinite(*out) ? true : jp_fail(s, "number out of range");
}

static bool jp_value(struct jp *s, struct jv *v);

static bool jp_items(struct jp *s, struct jv *v, bool object)
{
    char close = object ? '}' : ']';
    s->p++;
    jp_ws(s);
    size_t cap = 0;
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            v->items = realloc(v->items, cap * sizeof *v->items);
            assert_non_null(v->items);
            if (object) {
                v->keys = realloc(v->keys, cap * sizeof *v->keys);
                assert_non_null(v->keys);
            }
        }
        if (object) {
            jp_ws(s);
            if (!jp_string(s, &v->keys[v->n]))
                return false;
            jp_ws(s);
            if (s->p >= s->end || *s->p++ != ':') {
                free(v->keys[v->n]);
                return jp_fail(s, "expected ':'");
            }
        }
        memset(&v->items[v->n], 0, sizeof v->items[0]);
        if (!jp_value(s, &v->items[v->n])) {
            if (object)
                free(v->keys[v->n]);
            return false;
        }
        v->n++;
        jp_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return true;
        }
        return jp_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool jp_literal(struct jp *s, const char *word)
{
    size_t len = strlen(word);
    if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
        return jp_fail(s, "unexpected character");
    s->p += len;
    return true;
}

static bool jp_value(struct jp *s, struct jv *v)
{
    if (++s->depth > 64)
        return jp_fail(s, "nested too deep");
    jp_ws(s);
    if (s->p >= s->end)
        return jp_fail(s, "unexpected end");
    bool ok;
    switch (*s->p) {
    case '{':
        v->t = J_OBJ;
        ok = jp_items(s, v, true);
        break;
    case '[':
        v->t = J_ARR;
        ok = jp_items(s, v, false);
        break;
    case '"':
        v->t = J_STR;
        ok = jp_string(s, &v->str);
        break;
    case 't':
        v->t = J_BOOL, v->b = true;
        ok = jp_literal(s, "true");
        break;
    case 'f':
        v->t = J_BOOL;
        ok = jp_literal(s, "false");
        break;
    case 'n':
        v->t = J_NULL;
        ok = jp_literal(s, "null");
        break;
    default:
        v->t = J_NUM;
        ok = jp_number(s, &v->num);
    }
    s->depth--;
    return ok;
}

static void jv_free(struct jv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jv_free(&v->items[i]);
        if (v->t == J_OBJ)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static const struct jv *jv_get(const struct jv *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key))
            return &o->items[i];
    return NULL;
}

static const char *jv_str(const struct jv *o, const char *key)
{
    const struct jv *v = jv_get(o, key);
    return v && v->t == J_STR ? v->str : NULL;
}

static double jv_num(const struct jv *o, const char *key)
{
    const struct jv *v = jv_get(o, key);
    return v && v->t == J_NUM ? v->num : NAN;
}

/* Parses text strictly into *root; fails the test on any error. */
static void json_parse(const char *text, size_t len, struct jv *root)
{
    struct jp s = {text, text + len, 0, NULL};
    memset(root, 0, sizeof *root);
    bool ok = jp_value(&s, root);
    jp_ws(&s);
    if (ok && s.p != s.end)
        ok = jp_fail(&s, "text after the value");
    if (!ok)
        fail_msg("invalid JSON at byte %zu: %s", (size_t)(s.p - text), s.error);
}

static void json_parser_rejects_bad_json(void **state)
{
    (void)state;
    /* The checker must be able to fail: each of these is invalid. */
    static const char *const bad[] = {"{\"a\":1,}", "[1 2]",  "{\"a\" 1}",   "\"\\x\"", "[01]",
                                      "[1.]",      "\"\x01\"", "\"\xff\"",    "{} {}",  "[\"\\ud800\"]",
                                      "tru",       "[-]",     "{\"a\":1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct jp s = {bad[i], bad[i] + strlen(bad[i]), 0, NULL};
        struct jv v = {0};
        bool ok = jp_value(&s, &v);
        jp_ws(&s);
        if (ok && s.p != s.end)
            ok = false;
        if (ok)
            fail_msg("accepted invalid JSON: %s", bad[i]);
        jv_free(&v);
    }
    const char *good = "{\"a\":[1,-2.5e3,0,\"\\u00e9\\ud83d\\ude00\\n\",true,false,null,{}]}";
    struct jv v;
    json_parse(good, strlen(good), &v);
    const struct jv *a = jv_get(&v, "a");
    assert_non_null(a);
    assert_int_equal(a->n, 8);
    assert_true(a->items[1].num == -2500);
    assert_string_equal(a->items[3].str, "\xc3\xa9\xf0\x9f\x98\x80\n");
    jv_free(&v);
}

/* ==== reading a trace ==== */

struct trace {
    struct jv root;
    const struct jv *events;
};

/* Reads and parses the file (written by process pid), and checks every
 * event's shape. */
static void trace_load_from(const char *path, pid_t pid, struct trace *t)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *text = malloc((size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = 0;
    fclose(f);
    json_parse(text, (size_t)len, &t->root);
    free(text);
    t->events = jv_get(&t->root, "traceEvents");
    assert_non_null(t->events);
    assert_int_equal(t->events->t, J_ARR);
    for (size_t i = 0; i < t->events->n; i++) {
        const struct jv *e = &t->events->items[i];
        assert_int_equal(e->t, J_OBJ);
        const char *ph = jv_str(e, "ph");
        assert_non_null(jv_str(e, "name"));
        assert_non_null(ph);
        assert_true(jv_num(e, "ts") >= 0);
        assert_true(jv_num(e, "pid") == (double)pid);
        assert_true(jv_num(e, "tid") > 0);
        if (!strcmp(ph, "X")) {
            assert_true(jv_num(e, "dur") >= 0);
        } else {
            assert_string_equal(ph, "M"); /* nothing else: no half spans (B/E) */
            assert_non_null(jv_str(jv_get(e, "args"), "name"));
        }
    }
}

static void trace_load(const char *path, struct trace *t)
{
    trace_load_from(path, getpid(), t);
}

static void trace_free(struct trace *t)
{
    jv_free(&t->root);
}

static bool is_event(const struct jv *e, const char *name, const char *ph)
{
    return !strcmp(jv_str(e, "name"), name) && !strcmp(jv_str(e, "ph"), ph);
}

/* The tid of the thread named `name` (thread_name metadata); 0: none. */
static double tid_named(const struct trace *t, const char *name)
{
    for (size_t i = 0; i < t->events->n; i++) {
        const struct jv *e = &t->events->items[i];
        if (is_event(e, "thread_name", "M") && !strcmp(jv_str(jv_get(e, "args"), "name"), name))
            return jv_num(e, "tid");
    }
    return 0;
}

static bool has_thread_name(const struct trace *t, double tid)
{
    for (size_t i = 0; i < t->events->n; i++)
        if (is_event(&t->events->items[i], "thread_name", "M") &&
            jv_num(&t->events->items[i], "tid") == tid)
            return true;
    return false;
}

static size_t count_events(const struct trace *t, const char *name, double tid)
{
    size_t n = 0;
    for (size_t i = 0; i < t->events->n; i++) {
        const struct jv *e = &t->events->items[i];
        n += is_event(e, name, "X") && (tid == 0 || jv_num(e, "tid") == tid);
    }
    return n;
}

static const struct jv *find_event(const struct trace *t, const char *name, double tid)
{
    for (size_t i = 0; i < t->events->n; i++) {
        const struct jv *e = &t->events->items[i];
        if (is_event(e, name, "X") && (tid == 0 || jv_num(e, "tid") == tid))
            return e;
    }
    return NULL;
}

static double other_data(const struct trace *t, const char *key)
{
    return jv_num(jv_get(&t->root, "otherData"), key);
}

static void temp_path(char *path, size_t size)
{
    snprintf(path, size, "/tmp/conc-trace-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* ==== a pool, a contended lock, a queue wait ==== */

struct pool_run {
    conc_mutex m;
    long counter;
};

static int locked_task(void *arg, conc_result *out)
{
    (void)out;
    struct pool_run *r = arg;
    assert_int_equal(conc_mutex_lock(&r->m), 0);
    r->counter++;
    assert_int_equal(conc_mutex_unlock(&r->m), 0);
    return 0;
}

static int getter_fn(void *arg)
{
    int v;
    assert_int_equal(conc_queue_get(arg, &v), 0);
    assert_int_equal(v, 42);
    return 0;
}

#define TASKS 6
#define ODD_NAME "say \"hi\"\\\n\t\x01 caf\xc3\xa9 \xff!"
#define ODD_DECODED "say \"hi\"\\\n\t\x01 caf\xc3\xa9 \xef\xbf\xbd!"

static void trace_records_pool_lock_and_queue(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    assert_int_equal(conc_trace_start(path, 0), 0);
    assert_int_equal(conc_trace_begin("main.work"), 0);

    /* Pool tasks, some of which wait for the lock we hold. */
    struct pool_run run = {.counter = 0};
    assert_int_equal(conc_mutex_init(&run.m, NULL), 0);
    conc_pool *p;
    conc_pool_opts po = {.max_workers = 2, .name = "tpool"};
    assert_int_equal(conc_pool_create(&p, &po), 0);
    assert_int_equal(conc_mutex_lock(&run.m), 0);
    conc_future *fs[TASKS];
    for (int i = 0; i < TASKS; i++)
        assert_int_equal(conc_pool_submit(p, locked_task, &run, &fs[i]), 0);
    CONC_TEST_POLL_UNTIL(conc_test_mutex_has_waiter(&run.m));
    assert_int_equal(conc_mutex_unlock(&run.m), 0);
    for (int i = 0; i < TASKS; i++) {
        assert_int_equal(conc_future_wait(fs[i]), 0);
        assert_int_equal(conc_future_release(fs[i]), 0);
    }
    assert_int_equal(conc_pool_destroy(p), 0);
    assert_int_equal(run.counter, TASKS);

    /* A getter asleep on an empty queue until we put. */
    conc_queue *q;
    assert_int_equal(conc_queue_create(&q, sizeof(int), NULL), 0);
    conc_thread *g;
    conc_thread_opts go = {.name = "tq-getter"};
    assert_int_equal(conc_thread_create(&g, getter_fn, q, &go), 0);
    int64_t getter_tid = conc_thread_id(g);
    CONC_TEST_POLL_UNTIL(atomic_load(&q->getters) == 1 &&
                         conc_test_thread_in_futex_wait((pid_t)getter_tid, NULL));
    int v = 42;
    assert_int_equal(conc_queue_put(q, &v), 0);
    assert_int_equal(conc_thread_join(g, NULL), 0);
    assert_int_equal(conc_thread_destroy(g), 0);
    assert_int_equal(conc_queue_destroy(q), 0);

    assert_int_equal(conc_trace_begin(ODD_NAME), 0);
    assert_int_equal(conc_trace_end(), 0);
    assert_int_equal(conc_trace_end(), 0); /* main.work */
    assert_int_equal(conc_trace_stop(), 0);

    struct trace t;
    trace_load(path, &t);
    double pool0 = tid_named(&t, "tpool-0"), pool1 = tid_named(&t, "tpool-1");
    double getter = tid_named(&t, "tq-getter"), me = (double)getpid();
    print_message("%zu events; tasks %zu, mutex waits %zu, queue waits %zu\n", t.events->n,
                  count_events(&t, "task", 0), count_events(&t, "mutex.wait", 0),
                  count_events(&t, "queue.wait", 0));
    assert_true(pool0 > 0 && pool1 > 0 && getter > 0);
    assert_true(getter == (double)getter_tid);
    assert_true(has_thread_name(&t, me)); /* we started it: registered */
    /* Every task ran as a span on a worker, each named after its future. */
    assert_int_equal(count_events(&t, "task", pool0) + count_events(&t, "task", pool1), TASKS);
    for (size_t i = 0; i < t.events->n; i++) {
        const struct jv *e = &t.events->items[i];
        if (is_event(e, "task", "X"))
            assert_true(!strncmp(jv_str(jv_get(e, "args"), "obj"), "0x", 2));
    }
    /* A worker waited for our lock. */
    char lock_addr[32];
    snprintf(lock_addr, sizeof lock_addr, "%p", (void *)&run.m);
    size_t waits = 0;
    for (size_t i = 0; i < t.events->n; i++) {
        const struct jv *e = &t.events->items[i];
        if (is_event(e, "mutex.wait", "X") && !strcmp(jv_str(jv_get(e, "args"), "obj"), lock_addr)) {
            assert_true(jv_num(e, "tid") == pool0 || jv_num(e, "tid") == pool1);
            waits++;
        }
    }
    assert_true(waits >= 1);
    /* The getter's queue wait, and its lifetime. */
    assert_true(count_events(&t, "queue.wait", getter) >= 1);
    assert_int_equal(count_events(&t, "thread", getter), 1);
    assert_int_equal(count_events(&t, "thread", pool0), 1);
    /* Our spans, the odd name decoded back, nested inside main.work. */
    const struct jv *outer = find_event(&t, "main.work", me);
    const struct jv *odd = find_event(&t, ODD_DECODED, me);
    assert_non_null(outer);
    assert_non_null(odd);
    assert_string_equal(jv_str(odd, "cat"), "user");
    assert_true(jv_num(odd, "ts") >= jv_num(outer, "ts") - 0.002);
    assert_true(jv_num(odd, "ts") + jv_num(odd, "dur") <=
                jv_num(outer, "ts") + jv_num(outer, "dur") + 0.002);
    assert_true(jv_num(outer, "dur") > 0);
    assert_true(other_data(&t, "events_overwritten") == 0);
    trace_free(&t);
    assert_int_equal(conc_mutex_destroy(&run.m), 0);
    unlink(path);
}

/* ==== a tiny ring ==== */

#define RING 8
#define USER_SPANS 1000
#define NESTED 100

static char span_names[USER_SPANS][8];

static int nester_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < NESTED; i++) {
        conc_trace_begin("outer");
        conc_trace_begin("inner");
        conc_trace_end();
        conc_trace_end();
    }
    return 0;
}

static void trace_tiny_ring_keeps_newest_whole_spans(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    for (int i = 0; i < USER_SPANS; i++)
        snprintf(span_names[i], sizeof span_names[i], "s%d", i);
    assert_int_equal(conc_trace_start(path, RING), 0);
    for (int i = 0; i < USER_SPANS; i++) {
        assert_int_equal(conc_trace_begin(span_names[i]), 0);
        assert_int_equal(conc_trace_end(), 0);
    }
    conc_thread *n;
    conc_thread_opts no = {.name = "nester"};
    assert_int_equal(conc_thread_create(&n, nester_fn, NULL, &no), 0);
    assert_int_equal(conc_thread_join(n, NULL), 0);
    assert_int_equal(conc_thread_destroy(n), 0);
    assert_int_equal(conc_trace_stop(), 0);

    struct trace t;
    trace_load(path, &t);
    double me = (double)getpid(), nester = tid_named(&t, "nester");
    assert_true(nester > 0);
    /* Ours: exactly the newest RING spans, oldest first. */
    int k = USER_SPANS - RING;
    for (size_t i = 0; i < t.events->n; i++) {
        const struct jv *e = &t.events->items[i];
        if (jv_num(e, "tid") != me || strcmp(jv_str(e, "ph"), "X") || !strcmp(jv_str(e, "name"), "thread"))
            continue;
        assert_true(k < USER_SPANS);
        assert_string_equal(jv_str(e, "name"), span_names[k]);
        k++;
    }
    assert_int_equal(k, USER_SPANS);
    /* The nester's: the newest RING, inner then outer (written when each
     * ends), each outer containing the inner just before it. */
    const struct jv *prev = NULL;
    int seen = 0;
    for (size_t i = 0; i < t.events->n; i++) {
        const struct jv *e = &t.events->items[i];
        if (jv_num(e, "tid") != nester || strcmp(jv_str(e, "ph"), "X") || !strcmp(jv_str(e, "name"), "thread"))
            continue;
        assert_string_equal(jv_str(e, "name"), seen % 2 ? "outer" : "inner");
        if (seen % 2) {
            assert_true(jv_num(e, "ts") <= jv_num(prev, "ts") + 0.002);
            assert_true(jv_num(prev, "ts") + jv_num(prev, "dur") <=
                        jv_num(e, "ts") + jv_num(e, "dur") + 0.002);
        }
        prev = e;
        seen++;
    }
    assert_int_equal(seen, RING);
    assert_true(other_data(&t, "events_recorded") == USER_SPANS + 2 * NESTED);
    assert_true(other_data(&t, "events_overwritten") == USER_SPANS + 2 * NESTED - 2 * RING);
    trace_free(&t);
    unlink(path);
}

/* A lock wait that ends without the lock (a timeout) is a span too. */
static int timed_out_locker(void *arg)
{
    assert_int_equal(conc_mutex_lock_timed(arg, CONC_MSEC(5)), CONC_ETIMEDOUT);
    return 0;
}

static void trace_timed_out_lock_wait(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    conc_mutex m;
    assert_int_equal(conc_mutex_init(&m, NULL), 0);
    assert_int_equal(conc_trace_start(path, 0), 0);
    assert_int_equal(conc_mutex_lock(&m), 0);
    conc_thread *t;
    conc_thread_opts o = {.name = "give-up"};
    assert_int_equal(conc_thread_create(&t, timed_out_locker, &m, &o), 0);
    assert_int_equal(conc_thread_join(t, NULL), 0);
    assert_int_equal(conc_thread_destroy(t), 0);
    assert_int_equal(conc_mutex_unlock(&m), 0);
    assert_int_equal(conc_trace_stop(), 0);
    struct trace tr;
    trace_load(path, &tr);
    double tid = tid_named(&tr, "give-up");
    const struct jv *e = find_event(&tr, "mutex.wait", tid);
    assert_true(tid > 0);
    assert_non_null(e);
    assert_int_equal(count_events(&tr, "mutex.wait", tid), 1);
    assert_true(jv_num(e, "dur") >= 5000 - 0.002); /* us: it waited out its timeout */
    trace_free(&tr);
    assert_int_equal(conc_mutex_destroy(&m), 0);
    unlink(path);
}

/* ==== sessions, the API ==== */

static void trace_drops_spans_of_a_stopped_session(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    assert_int_equal(conc_trace_start(path, 0), 0);
    assert_int_equal(conc_trace_begin("left-open"), 0);
    assert_int_equal(conc_trace_stop(), 0);
    assert_int_equal(conc_trace_start(path, 0), 0);
    assert_int_equal(conc_trace_end(), 0); /* ends the earlier session's span */
    assert_int_equal(conc_trace_begin("whole"), 0);
    assert_int_equal(conc_trace_end(), 0);
    assert_int_equal(conc_trace_stop(), 0);
    struct trace t;
    trace_load(path, &t);
    assert_int_equal(count_events(&t, "left-open", 0), 0);
    assert_int_equal(count_events(&t, "whole", 0), 1);
    trace_free(&t);
    unlink(path);
}

static void trace_api_codes(void **state)
{
    (void)state;
    assert_int_equal(conc_trace_start(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_trace_stop(), CONC_EINVAL);
    assert_int_equal(conc_trace_begin(NULL), CONC_EINVAL);
    /* Not tracing: spans are no-ops. */
    assert_int_equal(conc_trace_begin("nothing"), 0);
    assert_int_equal(conc_trace_end(), 0);
    assert_int_equal(conc_trace_end(), 0); /* more ends than begins: harmless */
    /* The file is written at stop: its error comes from there. */
    assert_int_equal(conc_trace_start("/nonexistent-dir/conc/trace.json", 4), 0);
    assert_int_equal(conc_trace_start("/tmp/other.json", 4), CONC_EBUSY);
    assert_int_equal(conc_trace_stop(), CONC_ENOENT);
    assert_int_equal(conc_trace_stop(), CONC_EINVAL); /* stopped all the same */
}

/* CONC_TRACE=path: started at load, written at exit (in a child). */
static void trace_env_writes_at_exit(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        conc__trace_env(path);
        conc_trace_begin("env-span");
        conc_trace_end();
        exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct trace t;
    trace_load_from(path, pid, &t);
    assert_int_equal(count_events(&t, "env-span", 0), 1);
    trace_free(&t);
    unlink(path);
}

/* ==== writers racing the stop ==== */

#define WRITERS 3

struct writer {
    _Atomic bool *stop;
    _Atomic long spans;
};

static int writer_fn(void *arg)
{
    struct writer *w = arg;
    while (!atomic_load(w->stop)) {
        conc_trace_begin("w.outer");
        conc_trace_begin("w.inner");
        conc_trace_end();
        conc_trace_end();
        atomic_fetch_add(&w->spans, 1);
    }
    return 0;
}

static void trace_stop_while_threads_write_stress(void **state)
{
    (void)state;
    long rounds = conc_test_scaled(20, 3);
    for (long round = 0; round < rounds; round++) {
        char path[64];
        temp_path(path, sizeof path);
        _Atomic bool stop = false;
        struct writer w[WRITERS];
        conc_thread *t[WRITERS];
        double tids[WRITERS];
        assert_int_equal(conc_trace_start(path, 64), 0);
        for (int i = 0; i < WRITERS; i++) {
            w[i].stop = &stop;
            atomic_store(&w[i].spans, 0);
            assert_int_equal(conc_thread_create(&t[i], writer_fn, &w[i], NULL), 0);
            tids[i] = (double)conc_thread_id(t[i]);
        }
        for (int i = 0; i < WRITERS; i++)
            CONC_TEST_POLL_UNTIL(atomic_load(&w[i].spans) >= 100);
        assert_int_equal(conc_trace_stop(), 0); /* while they write */
        for (int i = 0; i < WRITERS; i++) {
            long at_stop = atomic_load(&w[i].spans);
            CONC_TEST_POLL_UNTIL(atomic_load(&w[i].spans) >= at_stop + 10); /* on, untraced */
        }
        atomic_store(&stop, true);
        for (int i = 0; i < WRITERS; i++) {
            assert_int_equal(conc_thread_join(t[i], NULL), 0);
            assert_int_equal(conc_thread_destroy(t[i]), 0);
        }
        struct trace tr;
        trace_load(path, &tr);
        /* Each writer's newest spans, whole, as many as its ring holds. */
        for (int i = 0; i < WRITERS; i++) {
            size_t spans = count_events(&tr, "w.outer", tids[i]) + count_events(&tr, "w.inner", tids[i]);
            assert_true(spans >= 1 && spans <= 64);
            assert_int_equal(count_events(&tr, "thread", tids[i]), 1);
        }
        trace_free(&tr);
        unlink(path);
    }
}

CONC_TEST_MAIN(
    cmocka_unit_test(json_parser_rejects_bad_json),
    cmocka_unit_test(trace_records_pool_lock_and_queue),
    cmocka_unit_test(trace_tiny_ring_keeps_newest_whole_spans),
    cmocka_unit_test(trace_timed_out_lock_wait),
    cmocka_unit_test(trace_drops_spans_of_a_stopped_session),
    cmocka_unit_test(trace_api_codes),
    cmocka_unit_test(trace_env_writes_at_exit),
    cmocka_unit_test(trace_stop_while_threads_write_stress),
)
