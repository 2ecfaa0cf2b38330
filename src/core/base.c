/* Version, error names and messages, the monotonic clock. */
#include "conc/base.h"
#include "core/deadline.h"
#include "core/misuse.h"

#include <stdio.h>

#define CONC__STR2(x) #x
#define CONC__STR(x) CONC__STR2(x)

unsigned conc_version(void)
{
    return CONC_VERSION_HEX;
}

const char *conc_version_string(void)
{
    return CONC__STR(CONC_VERSION_MAJOR) "." CONC__STR(CONC_VERSION_MINOR) "." CONC__STR(
        CONC_VERSION_PATCH);
}

const char *conc_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define CONC__ERR_MSG(name, value, msg) \
    case CONC_##name:                   \
        return msg;
        CONC_ERRNO_MAP(CONC__ERR_MSG)
#undef CONC__ERR_MSG
    }
    return "unknown error";
}

const char *conc_err_name(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define CONC__ERR_NAME(name, value, msg) \
    case CONC_##name:                    \
        return #name;
        CONC_ERRNO_MAP(CONC__ERR_NAME)
#undef CONC__ERR_NAME
    }
    return "UNKNOWN";
}

const char *conc_error_detail(void)
{
    struct conc__misuse *m = &conc__tls.misuse;
    if (!m->what)
        return "";
    if (!m->fn)
        return m->what;
    snprintf(m->text, sizeof m->text, "%s: %s", m->fn, m->what);
    return m->text;
}

int64_t conc_now_ns(void)
{
    return conc__now();
}

/* The first group of codes must be -errno on every supported platform. */
#include <errno.h>
#define CONC__ERR_CHECK(name, value, msg) \
    _Static_assert((value) == -(name), #name " must equal -errno");
CONC_ERRNO_MAP_SYS(CONC__ERR_CHECK)
#undef CONC__ERR_CHECK
#define CONC__ERR_CHECK(name, value, msg) \
    _Static_assert((value) < -4095, #name " must lie outside the errno range");
CONC_ERRNO_MAP_OWN(CONC__ERR_CHECK)
#undef CONC__ERR_CHECK
