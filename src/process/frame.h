/* The frame of a pipe's message: a fixed 16-byte header, then the payload.
 *
 *   bytes 0..3   magic "cnCP" (0x63 0x6e 0x43 0x50)
 *   byte  4      version, 1
 *   bytes 5..7   flags, zero (a later version may give them a meaning; this
 *                one refuses a frame that sets any)
 *   bytes 8..15  payload length, unsigned 64-bit, little-endian (the same
 *                on every host, so a dump of the stream reads the same
 *                anywhere)
 *
 * The decoder is pure (no I/O, no allocation, no global state): it looks at
 * the bytes received so far and says whether they are a valid header, the
 * valid start of one (more bytes needed), or not a header at all. It fails
 * as early as it can: the first wrong byte decides, so a corrupt stream is
 * refused without waiting for the whole header. Fuzzed by fuzz/fuzz_frame.c. */
#ifndef CONC_PROCESS_FRAME_H
#define CONC_PROCESS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define CONC__FRAME_HEADER 16
#define CONC__FRAME_VERSION 1

enum conc__frame_rc {
    CONC__FRAME_OK = 0,        /* a whole valid header; the length is set */
    CONC__FRAME_NEED_MORE = 1, /* fewer than 16 bytes, all valid so far */
    CONC__FRAME_BAD_MAGIC = -1,
    CONC__FRAME_BAD_VERSION = -2,
    CONC__FRAME_BAD_FLAGS = -3,
    CONC__FRAME_TOO_BIG = -4, /* valid, but the length is above max */
};

/* Decodes the header at buf[0..len) (bytes past the 16th are not read).
 * Returns a conc__frame_rc; *payload_len is set only with CONC__FRAME_OK.
 * buf may be NULL when len is 0. */
int conc__frame_decode(const unsigned char *buf, size_t len, uint64_t max,
                       uint64_t *payload_len);

/* Writes the header of a frame whose payload is payload_len bytes. */
void conc__frame_encode(unsigned char out[CONC__FRAME_HEADER], uint64_t payload_len);

#endif
