/* conc/process.h — processes: Python's multiprocessing for C.
 *
 * Processes are the answer to work that must be isolated: their own memory,
 * killable, a crash stays inside. This header gathers what crosses between
 * them:
 *   - pipes that carry framed messages (multiprocessing.Pipe's Connection:
 *     send_bytes / recv_bytes), with timeouts, never a SIGPIPE;
 *   - shared memory: anonymous and named segments (multiprocessing's
 *     shared_memory, Value, Array);
 *   - the robust process-shared mutex, conc_pmutex: when its holder dies, the
 *     next locker learns it (CONC_EOWNERDEAD) instead of waiting forever, as
 *     a multiprocessing.Lock would.
 * The non-robust process-shared primitives (mutex, semaphore, condition,
 * event, barrier, rwlock with opts.pshared) are in sync.h.
 *
 * Blocking calls come in two forms (base.h, docs/api.md): conc_X_verb(...)
 * waits as long as it takes, conc_X_verb_timed(..., timeout) gives up.
 */
#ifndef CONC_PROCESS_H
#define CONC_PROCESS_H

#include <conc/base.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pipes and messages ---- */

/* ---- shared memory ---- */

/* ---- the robust process-shared mutex ---- */

#ifdef __cplusplus
}
#endif

#endif
