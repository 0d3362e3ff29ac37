/* threads.c: the worker pool. A job is published by bumping `gen`; each worker runs its share and
 * bumps `done`. Spinning first keeps the hand-off cheap between the many small jobs of a token;
 * sleeping after a while keeps idle workers off the cores. */
#include "threads.h"

#include <stdlib.h>

#include "status.h"

/* The single-thread wasm build (no -pthread: pages that are not cross-origin isolated have no
 * SharedArrayBuffer) has no threads at all: a pool of one that runs every job on the caller. */
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)

struct lfm2_pool {
    int n;
    lfm2_pool_fn fn;
    void *arg;
};

lfm2_status pool_create(int n_threads, lfm2_pool **out) {
    *out = NULL;
    if (n_threads != 1) return lfm2_fail(LFM2_E_ARG, "threads = %d, but this build has no threads (single-thread wasm)", n_threads);
    lfm2_pool *p = calloc(1, sizeof *p);
    if (!p) return lfm2_fail(LFM2_E_NOMEM, "out of memory");
    p->n = 1;
    *out = p;
    return LFM2_OK;
}

void pool_free(lfm2_pool *p) { free(p); }

int pool_size(const lfm2_pool *p) { return p ? p->n : 1; }

void pool_start(lfm2_pool *p, lfm2_pool_fn fn, void *arg) {
    p->fn = fn;
    p->arg = arg;
}

bool pool_busy(const lfm2_pool *p) {
    (void)p;
    return false;
}

void pool_join(lfm2_pool *p) { p->fn(p->arg, 0, 1); }

void pool_run(lfm2_pool *p, lfm2_pool_fn fn, void *arg) {
    (void)p;
    fn(arg, 0, 1);
}

#else

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define SPIN_ROUNDS 20000

struct lfm2_pool {
    int n;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint gen;      /* job number */
    atomic_int done;      /* workers finished with the current job */
    atomic_int sleeping;  /* workers waiting on `wake` */
    atomic_bool quit;
    lfm2_pool_fn fn;
    void *arg;
};

typedef struct {
    lfm2_pool *p;
    int ith;
} worker_arg;

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *varg) {
    worker_arg *wa = varg;
    lfm2_pool *p = wa->p;
    const int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->quit)) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleeping, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

lfm2_status pool_create(int n_threads, lfm2_pool **out) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 256) return lfm2_fail(LFM2_E_ARG, "threads = %d is outside 1..256", n_threads);
    lfm2_pool *p = calloc(1, sizeof *p);
    if (!p) return lfm2_fail(LFM2_E_NOMEM, "out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->tids = calloc((size_t)n_threads, sizeof *p->tids);
    if (!p->tids) {
        pool_free(p);
        return lfm2_fail(LFM2_E_NOMEM, "out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) *wa = (worker_arg){p, i};
        if (!wa || pthread_create(&p->tids[i], NULL, worker, wa) != 0) {
            free(wa);
            p->n = i; /* join the ones that started */
            pool_free(p);
            return lfm2_fail(LFM2_E_NOMEM, "cannot start worker thread %d of %d", i, n_threads);
        }
    }
    *out = p;
    return LFM2_OK;
}

void pool_free(lfm2_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; p->tids && i < p->n; i++) pthread_join(p->tids[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p);
}

int pool_size(const lfm2_pool *p) { return p ? p->n : 1; }

void pool_start(lfm2_pool *p, lfm2_pool_fn fn, void *arg) {
    p->fn = fn;
    p->arg = arg;
    if (p->n == 1) return;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the workers' sleeping count */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
}

bool pool_busy(const lfm2_pool *p) {
    return p->n > 1 && atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1;
}

void pool_join(lfm2_pool *p) {
    p->fn(p->arg, 0, p->n);
    while (pool_busy(p)) cpu_relax();
}

void pool_run(lfm2_pool *p, lfm2_pool_fn fn, void *arg) {
    pool_start(p, fn, arg);
    pool_join(p);
}

#endif
