/* conc — a concurrency toolkit for C. This header includes every module. */
#ifndef CONC_H
#define CONC_H

#include <conc/base.h>
#include <conc/debug.h>
#include <conc/future.h>
#include <conc/pool.h>
#include <conc/process.h>
#include <conc/queue.h>
#include <conc/sync.h>
#include <conc/thread.h>

#endif
