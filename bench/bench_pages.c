/*
 * bench_pages.c -- speed of the page allocator (src/arena/pagealloc.c).
 *
 * Runs on a fake heap (addresses never mapped: the allocator only does
 * arithmetic on them) of 64 chunks = 256 MiB.  Each case repeats a batch
 * of 64 allocations followed by their 64 frees; the figure is nanoseconds
 * per alloc+free pair, the median of 5 runs.  Cases:
 *   - 1, 8 and 128-page runs on an empty heap (the search_addr fast path);
 *   - 8-page runs past 32 chunks of 7-page holes (the tree search);
 *   - the page cache: pcache_alloc(1) alone, and fill + 64 x pcache_alloc(1)
 *     + flush + 64 frees, per page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena/pagealloc.h"

#define HEAP ((uintptr_t)0x100000000000)
#define HEAP_CHUNKS 64
#define BATCH 64
#define RUNS 5

static uintptr_t g_sink;

static void die(const char *what) {
  fprintf(stderr, "bench_pages: %s\n", what);
  exit(1);
}

static void heap_new(pages_t *p, os_mem_t *os) {
  memset(os, 0, sizeof *os);
  if (_gc_pages_init(p, os) ||
      _gc_pages_grow(p, HEAP, (size_t)HEAP_CHUNKS * GCH_CHUNK_PAGES))
    die("init/grow failed");
}

/* Fill the first 32 chunks with 1 used page followed by a 7-page hole. */
static void fragment(pages_t *p) {
  size_t n = 32 * GCH_CHUNK_PAGES;
  if (_gc_pages_alloc(p, n, NULL) != HEAP) die("fragment");
  for (size_t i = 0; i < n; i += 8)
    _gc_pages_free(p, HEAP + (i + 1) * GCH_PAGE_SIZE, 7);
}

/* ns per alloc+free pair of npages runs, over `iters` batches. */
static double run_batch(pages_t *p, size_t npages, size_t iters) {
  uintptr_t got[BATCH];
  uint64_t t0 = _gc_os_nanotime();
  for (size_t it = 0; it < iters; it++) {
    for (int i = 0; i < BATCH; i++)
      if (!(got[i] = _gc_pages_alloc(p, npages, NULL))) die("alloc failed");
    for (int i = 0; i < BATCH; i++) _gc_pages_free(p, got[i], npages);
    g_sink += got[it % BATCH];
  }
  return (double)(_gc_os_nanotime() - t0) / ((double)iters * BATCH);
}

/* pcache_alloc(1) alone: a full window handed out 64 times. */
static double run_pcache_only(size_t iters) {
  pcache_t c;
  uint64_t t0 = _gc_os_nanotime();
  for (size_t it = 0; it < iters; it++) {
    c.base = HEAP;
    c.cache = ~(uint64_t)0;
    c.scav = it & 1 ? ~(uint64_t)0 : 0;
    __asm__ volatile("" : : "r"(&c) : "memory");
    for (int i = 0; i < BATCH; i++) {
      size_t ns;
      g_sink += _gc_pcache_alloc(&c, 1, &ns) + ns;
    }
  }
  return (double)(_gc_os_nanotime() - t0) / ((double)iters * BATCH);
}

/* Fill, take 64 single pages from the cache, flush, free them: per page. */
static double run_pcache_cycle(pages_t *p, size_t iters) {
  pcache_t c = {0, 0, 0};
  uintptr_t got[BATCH];
  uint64_t t0 = _gc_os_nanotime();
  for (size_t it = 0; it < iters; it++) {
    _gc_pages_fill_cache(p, &c);
    int n = 0;
    while (n < BATCH && (got[n] = _gc_pcache_alloc(&c, 1, NULL))) n++;
    _gc_pages_flush_cache(p, &c);
    for (int i = 0; i < n; i++) _gc_pages_free(p, got[i], 1);
    g_sink += got[0];
  }
  return (double)(_gc_os_nanotime() - t0) / ((double)iters * BATCH);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

enum { K_BATCH, K_FRAG, K_PC_ONLY, K_PC_CYCLE };

static double median_of_runs(int kind, size_t npages, size_t iters) {
  double t[RUNS];
  for (int r = 0; r < RUNS; r++) {
    os_mem_t os;
    pages_t p;
    heap_new(&p, &os);
    if (kind == K_FRAG) fragment(&p);
    switch (kind) {
    case K_BATCH:
    case K_FRAG: t[r] = run_batch(&p, npages, iters); break;
    case K_PC_ONLY: t[r] = run_pcache_only(iters); break;
    default: t[r] = run_pcache_cycle(&p, iters); break;
    }
    char msg[256];
    if (_gc_pages_check(&p, msg, sizeof msg)) die(msg);
    _gc_pages_destroy(&p);
  }
  qsort(t, RUNS, sizeof t[0], cmp_double);
  return t[RUNS / 2];
}

int main(void) {
  printf("bench_pages: fake heap of %d chunks (%d MiB), batches of %d, "
         "median of %d runs\n", HEAP_CHUNKS, HEAP_CHUNKS * 4, BATCH, RUNS);
  printf("%-44s %10s\n", "case", "ns/op");
  printf("%-44s %10.1f\n", "alloc+free 1 page",
         median_of_runs(K_BATCH, 1, 20000));
  printf("%-44s %10.1f\n", "alloc+free 8 pages",
         median_of_runs(K_BATCH, 8, 20000));
  printf("%-44s %10.1f\n", "alloc+free 128 pages",
         median_of_runs(K_BATCH, 128, 5000));
  printf("%-44s %10.1f\n", "alloc+free 8 pages past 2048 7-page holes",
         median_of_runs(K_FRAG, 8, 5000));
  printf("%-44s %10.1f\n", "pcache_alloc 1 page (lock-free path only)",
         median_of_runs(K_PC_ONLY, 1, 200000));
  printf("%-44s %10.1f\n", "pcache 1 page incl. fill/flush/free, per page",
         median_of_runs(K_PC_CYCLE, 1, 20000));
  return g_sink == 1 ? 2 : 0; /* keep the results alive */
}
