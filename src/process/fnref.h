/* A function named so that another image of the program finds it: the
 * module that holds it, as the dynamic linker lists it ("" for the program
 * itself), and its offset from where that module is loaded. The fork server
 * and its children load the program at other addresses (PIE, ASLR); a
 * (module, offset) pair means the same function in each of them. */
#ifndef CONC_PROCESS_FNREF_H
#define CONC_PROCESS_FNREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest module path a reference carries. */
#define CONC__FNREF_NAME_MAX 1024

struct conc__fnref {
    const char *module; /* the dynamic linker's string: valid while the module is loaded */
    size_t module_len;
    uint64_t offset;
};

/* Names the function at addr. Returns false when addr is not in the code
 * of a loaded module (or its module's path is too long). Remembers the last
 * few answers, so a function named again costs no walk of the modules.
 * Thread-safe. */
bool conc__fnref_of(void (*addr)(void), struct conc__fnref *out);

/* The address, in this image, of the function offset bytes into the module
 * named module (module_len bytes, not terminated): NULL when no loaded
 * module has that name, or the address is not in its code. Remembers the
 * last few answers. Thread-safe. */
void (*conc__fnref_resolve(const char *module, size_t module_len, uint64_t offset))(void);

#endif
