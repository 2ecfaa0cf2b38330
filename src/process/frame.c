/* The frame header's encoder and decoder (frame.h has the layout). */
#include "process/frame.h"

static const unsigned char conc__frame_lead[8] = {'c', 'n', 'C', 'P', CONC__FRAME_VERSION, 0, 0, 0};

#define CONC__FRAME_VERSION_AT 4
#define CONC__FRAME_FLAGS_AT 5
#define CONC__FRAME_LENGTH_AT 8

void conc__frame_encode(unsigned char out[CONC__FRAME_HEADER], uint64_t payload_len)
{
    for (int i = 0; i < CONC__FRAME_LENGTH_AT; i++)
        out[i] = conc__frame_lead[i];
    for (int i = 0; i < 8; i++)
        out[CONC__FRAME_LENGTH_AT + i] = (unsigned char)(payload_len >> (8 * i));
}

/* The first byte of the lead (magic, version, flags) that differs decides
 * which code. */
static int conc__frame_lead_rc(int at)
{
    if (at < CONC__FRAME_VERSION_AT)
        return CONC__FRAME_BAD_MAGIC;
    return at < CONC__FRAME_FLAGS_AT ? CONC__FRAME_BAD_VERSION : CONC__FRAME_BAD_FLAGS;
}

int conc__frame_decode(const unsigned char *buf, size_t len, uint64_t max,
                       uint64_t *payload_len)
{
    size_t lead = len < CONC__FRAME_LENGTH_AT ? len : CONC__FRAME_LENGTH_AT;
    for (size_t i = 0; i < lead; i++)
        if (buf[i] != conc__frame_lead[i])
            return conc__frame_lead_rc((int)i);
    if (len < CONC__FRAME_HEADER)
        return CONC__FRAME_NEED_MORE;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)buf[CONC__FRAME_LENGTH_AT + i] << (8 * i);
    if (n > max)
        return CONC__FRAME_TOO_BIG;
    *payload_len = n;
    return CONC__FRAME_OK;
}
