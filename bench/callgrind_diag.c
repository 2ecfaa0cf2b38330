/* The loops bench/callgrind_diag.sh counts: argv[1] "single" (one mutex
 * locked and unlocked) or "nested" (A, then B inside it: the order the
 * lock-order checker looks up when on), argv[2] times. */
#include <conc/sync.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    long n = atol(argv[2]);
    bool nested = strcmp(argv[1], "nested") == 0;
    conc_mutex a, b;
    conc_mutex_init(&a, NULL);
    conc_mutex_init(&b, NULL);
    for (long i = 0; i < n; i++) {
        conc_mutex_lock(&a);
        if (nested) {
            conc_mutex_lock(&b);
            conc_mutex_unlock(&b);
        }
        conc_mutex_unlock(&a);
    }
    conc_mutex_destroy(&b);
    conc_mutex_destroy(&a);
    return 0;
}
