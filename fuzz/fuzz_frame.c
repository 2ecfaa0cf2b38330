/* libFuzzer target for the frame decoder (src/process/frame.c).
 *
 * The input is copied into a buffer of exactly its size, so ASan catches a
 * read past it. The first 8 bytes (when there are) choose the max; the rest
 * is the stream. Invariants checked, beyond "no crash":
 *   - every prefix of the stream decodes as NEED_MORE until the first
 *     prefix that does not, and from there on every longer prefix gives
 *     that same answer (the decoder decides on the first wrong byte and
 *     never changes its mind; bytes past the 16th are never looked at);
 *   - NEED_MORE only for fewer than 16 bytes; the length is written only
 *     with OK;
 *   - OK reports a length <= max, and encoding that length gives back the
 *     16 bytes decoded; TOO_BIG means the encoded length is above max;
 *   - any length encoded decodes as itself (or TOO_BIG above max). */
#include "process/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c)                                                            \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "fuzz_frame: invariant failed: %s\n", #c);        \
            abort();                                                          \
        }                                                                     \
    } while (0)

static uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void check_stream(const unsigned char *buf, size_t size, uint64_t max)
{
    int settled = CONC__FRAME_NEED_MORE;
    for (size_t k = 0; k <= size; k++) {
        uint64_t n = 0xdeadbeef;
        int rc = conc__frame_decode(k ? buf : NULL, k, max, &n);
        REQUIRE(rc >= CONC__FRAME_TOO_BIG && rc <= CONC__FRAME_NEED_MORE);
        if (settled != CONC__FRAME_NEED_MORE) {
            REQUIRE(rc == settled);
            continue;
        }
        settled = rc;
        if (rc == CONC__FRAME_NEED_MORE)
            REQUIRE(k < CONC__FRAME_HEADER);
        if (rc != CONC__FRAME_OK)
            REQUIRE(n == 0xdeadbeef); /* the length is set only with OK */
        if (rc == CONC__FRAME_OK || rc == CONC__FRAME_TOO_BIG) {
            REQUIRE(k >= CONC__FRAME_HEADER);
            unsigned char again[CONC__FRAME_HEADER];
            conc__frame_encode(again, load64(buf + 8));
            REQUIRE(memcmp(again, buf, CONC__FRAME_HEADER) == 0);
            REQUIRE(rc == CONC__FRAME_OK ? n <= max && n == load64(buf + 8)
                                         : load64(buf + 8) > max);
        }
    }
}

static void check_round_trip(uint64_t len, uint64_t max)
{
    unsigned char hdr[CONC__FRAME_HEADER];
    conc__frame_encode(hdr, len);
    uint64_t n = 0;
    int rc = conc__frame_decode(hdr, sizeof hdr, max, &n);
    REQUIRE(len <= max ? rc == CONC__FRAME_OK && n == len : rc == CONC__FRAME_TOO_BIG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t max = UINT64_MAX;
    if (size >= 8) {
        max = load64(data);
        data += 8;
        size -= 8;
    }
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    check_stream(buf, size, max);
    if (size >= 8)
        check_round_trip(load64(buf), max);
    free(buf);
    return 0;
}
