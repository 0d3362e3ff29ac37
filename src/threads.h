/* threads.h: a persistent pool of worker threads, made once per model. pool_run() runs one
 * function on every thread (the caller is thread 0) and returns when all are done. pool_start()
 * hands a job to the workers and returns at once, so that the caller can do what only it can
 * (read the model) while they compute; pool_join() then has it take its share and wait. Workers wait
 * for the next job by spinning briefly, then sleeping on a condition variable. Works natively and
 * in wasm (Node's worker_threads, a browser Worker's pthreads). In the single-thread wasm build (no
 * -pthread) only n_threads = 1 exists and every job runs on the caller. */
#ifndef LFM2_THREADS_H
#define LFM2_THREADS_H

#include <stdbool.h>

#include "lfm2.h"

typedef struct lfm2_pool lfm2_pool;

/* fn(arg, ith, nth): thread ith of nth does its share of the job. */
typedef void (*lfm2_pool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (1: no workers, pool_run calls fn on the caller). */
lfm2_status pool_create(int n_threads, lfm2_pool **out);
void pool_free(lfm2_pool *p);
int pool_size(const lfm2_pool *p);
void pool_run(lfm2_pool *p, lfm2_pool_fn fn, void *arg);
/* pool_run in two halves; the caller must call pool_join before the next job. With 1 thread the
 * whole job runs in pool_join. */
void pool_start(lfm2_pool *p, lfm2_pool_fn fn, void *arg);
bool pool_busy(const lfm2_pool *p); /* workers still on the started job */
void pool_join(lfm2_pool *p);

#endif
