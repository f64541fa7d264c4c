/*
 * test_threads.c -- several attached threads allocating at once while the
 * main thread collects.
 *
 * Each worker attaches, registers its own precise root range of slots and
 * replaces random slots with new objects of mixed sizes (tiny, small, over
 * 512 B, large), some of them pairs whose child is reachable only through
 * the parent.  Every object carries a pattern derived from (thread, slot,
 * generation); the old object is verified before it is dropped, so any
 * slot freed or reused while live shows up as a corrupted pattern.  The
 * main thread collects and verifies the heap meanwhile (sleeping inside
 * blocking regions), then joins the workers inside a blocking region.
 * After the workers detach, their objects (still rooted) must survive
 * further collections intact, gc_verify must pass, and dropping the roots
 * must free them.
 *
 * Also: repeated attach/detach, stats.threads, and a race between queries
 * (gc_size_of/gc_base) and the background sweeper.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "heap.h"

#define NSLOT 256
#define SCRATCH NSLOT /* one extra rooted slot for half-built pairs */

static gc_heap_t *H;
static uint64_t base_seed;

typedef struct meta {
  size_t size;   /* bytes of the object (parent: 32) */
  size_t csize;  /* child bytes for pairs, else 0 */
  uint32_t gen;
  uint8_t kind;  /* 0 noscan, 1 conservative, 2 pair */
} meta_t;

typedef struct worker {
  int id;
  size_t iters;
  uint64_t rng;
  void **slots; /* NSLOT + 1, a precise root range */
  meta_t meta[NSLOT];
  atomic_int fails;
  uint64_t allocs, checked;
  pthread_t tid;
} worker_t;

#define WCHECK(w, c)                                                        \
  do {                                                                      \
    if (!(c)) {                                                             \
      if (atomic_fetch_add(&(w)->fails, 1) < 8)                             \
        fprintf(stderr, "%s:%d: [thread %d] CHECK failed: %s\n", __FILE__,  \
                __LINE__, (w)->id, #c);                                     \
    }                                                                       \
  } while (0)

static uint64_t wrand(worker_t *w) {
  w->rng ^= w->rng >> 12;
  w->rng ^= w->rng << 25;
  w->rng ^= w->rng >> 27;
  return w->rng * 2685821657736338717ull;
}

static uint8_t pat0(int id, size_t slot, uint32_t gen, int child) {
  uint64_t x = ((uint64_t)id * 0x9e3779b97f4a7c15ull) ^ (slot * 0xbf58476d1ce4e5b9ull) ^
               ((uint64_t)gen * 0x94d049bb133111ebull) ^ (uint64_t)child;
  return (uint8_t)(x ^ (x >> 29) ^ (x >> 47));
}
/* Consecutive bytes differ by 31: no 8-byte word has both top bytes 0, so
 * no word of a pattern can look like a (48-bit) heap address. */
static void fill(void *p, size_t n, uint8_t b0) {
  uint8_t *b = p;
  for (size_t j = 0; j < n; j++) b[j] = (uint8_t)(b0 + j * 31);
}
static size_t verify_fill(const void *p, size_t n, uint8_t b0) {
  const uint8_t *b = p;
  size_t bad = 0;
  for (size_t j = 0; j < n; j++) bad += b[j] != (uint8_t)(b0 + j * 31);
  return bad;
}

static size_t pick_size(worker_t *w) {
  uint64_t r = wrand(w) % 100;
  if (r < 40) return 1 + wrand(w) % 15;               /* tiny */
  if (r < 75) return 16 + wrand(w) % (512 - 16 + 1);  /* small */
  if (r < 98) return 513 + wrand(w) % (32768 - 513 + 1);
  return 32769 + wrand(w) % (256 * 1024);             /* large */
}

/* Verify slot i of w (the caller is w's thread, or w has finished). */
static void check_slot(worker_t *w, size_t i) {
  void *p = w->slots[i];
  meta_t *m = &w->meta[i];
  if (!p) return;
  w->checked++;
  uint8_t b0 = pat0(w->id, i, m->gen, 0);
  if (m->kind == 2) {
    uint64_t *pp = p;
    void *c = (void *)pp[0];
    WCHECK(w, c != NULL);
    WCHECK(w, verify_fill(pp + 1, 24, b0) == 0);
    if (c) WCHECK(w, verify_fill(c, m->csize, pat0(w->id, i, m->gen, 1)) == 0);
  } else {
    size_t bad = verify_fill(p, m->size, b0);
    WCHECK(w, bad == 0);
    if (bad)
      fprintf(stderr, "  [thread %d] slot %zu (%zu B, kind %d, gen %u): %zu "
                      "bytes wrong\n", w->id, i, m->size, m->kind, m->gen, bad);
  }
}

static void *alloc_checked(worker_t *w, size_t n, unsigned flags) {
  void *p = gc_malloc(H, n, flags);
  WCHECK(w, p != NULL);
  if (!p) {
    fprintf(stderr, "  [thread %d] gc_malloc(%zu) failed: %s\n", w->id, n,
            gc_result_str(gc_last_error(H)));
    return NULL;
  }
  w->allocs++;
  /* zeroed, even when the slot was just freed by another thread's cycle */
  const uint8_t *b = p;
  size_t nz = 0;
  for (size_t j = 0; j < n; j++) nz += b[j] != 0;
  WCHECK(w, nz == 0);
  return p;
}

static void replace_slot(worker_t *w, size_t i) {
  check_slot(w, i);
  meta_t *m = &w->meta[i];
  m->gen++;
  uint64_t r = wrand(w) % 4;
  if (r == 3) {
    /* A pair: a 32-B conservative parent whose word 0 is the only
     * reference to a noscan child. */
    size_t cn = pick_size(w);
    void *c = alloc_checked(w, cn, GCH_NOSCAN);
    if (!c) return;
    fill(c, cn, pat0(w->id, i, m->gen, 1));
    w->slots[SCRATCH] = c; /* rooted while the parent is allocated */
    uint64_t *pp = alloc_checked(w, 32, 0);
    if (!pp) return;
    pp[0] = (uint64_t)(uintptr_t)c;
    fill(pp + 1, 24, pat0(w->id, i, m->gen, 0));
    m->kind = 2;
    m->size = 32;
    m->csize = cn;
    w->slots[i] = pp;
    w->slots[SCRATCH] = NULL;
  } else {
    size_t n = pick_size(w);
    unsigned flags = r < 2 ? GCH_NOSCAN : 0;
    void *p = alloc_checked(w, n, flags);
    if (!p) return;
    fill(p, n, pat0(w->id, i, m->gen, 0));
    m->kind = flags ? 0 : 1;
    m->size = n;
    m->csize = 0;
    w->slots[i] = p;
  }
}

static atomic_int attached_count;
static atomic_int release_workers;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  WCHECK(w, !gc_thread_is_attached(H));
  WCHECK(w, gc_thread_attach(H) == GCH_OK);
  WCHECK(w, gc_thread_is_attached(H));
  WCHECK(w, gc_root_add(H, w->slots, (NSLOT + 1) * sizeof(void *),
                        GCH_ROOT_PRECISE) == GCH_OK);
  atomic_fetch_add(&attached_count, 1);
  /* Wait for the main thread to look at stats.threads; stay at a
   * safepoint-friendly spot meanwhile. */
  while (!atomic_load(&release_workers)) gc_safepoint(H);

  for (size_t it = 0; it < w->iters; it++) {
    replace_slot(w, wrand(w) % NSLOT);
    if (it % 64 == 0) gc_safepoint(H);
    if (it % 4096 == 4095)
      for (size_t i = 0; i < NSLOT; i++) check_slot(w, i);
  }
  for (size_t i = 0; i < NSLOT; i++) check_slot(w, i);
  /* Detach; the slots stay rooted (roots belong to the heap). */
  WCHECK(w, gc_thread_detach(H) == GCH_OK);
  WCHECK(w, !gc_thread_is_attached(H));
  WCHECK(w, gc_thread_detach(H) == GCH_ENOTATTACHED);
  return NULL;
}

static void sleep_blocking(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  gc_blocking_enter(H);
  nanosleep(&ts, NULL);
  gc_blocking_leave(H);
}

static void run_workers(int nthreads, size_t iters) {
  printf("%d workers x %zu iterations\n", nthreads, iters);
  worker_t *ws = calloc((size_t)nthreads, sizeof *ws);
  REQUIRE(ws);
  atomic_store(&attached_count, 0);
  atomic_store(&release_workers, 0);
  gc_stats_t s0 = test_stats(H);
  for (int k = 0; k < nthreads; k++) {
    worker_t *w = &ws[k];
    w->id = k + 1;
    w->iters = iters;
    w->rng = base_seed * 1000003u + (uint64_t)k * 7919u + 1;
    w->slots = calloc(NSLOT + 1, sizeof(void *));
    REQUIRE(w->slots);
    REQUIRE(pthread_create(&w->tid, NULL, worker_main, w) == 0);
  }
  while (atomic_load(&attached_count) < nthreads) sleep_blocking(100);
  gc_stats_t s1 = test_stats(H);
  CHECK_EQ(s1.threads, nthreads + 1);
  atomic_store(&release_workers, 1);

  /* Collect while they allocate. */
  for (int c = 0; c < 6; c++) {
    sleep_blocking(2000);
    CHECK(gc_collect(H) == GCH_OK);
  }
  gc_blocking_enter(H);
  for (int k = 0; k < nthreads; k++) pthread_join(ws[k].tid, NULL);
  gc_blocking_leave(H);

  gc_stats_t s2 = test_stats(H);
  CHECK_EQ(s2.threads, 1);
  CHECK(s2.forced_cycles >= s0.forced_cycles + 6);
  uint64_t allocs = 0;
  for (int k = 0; k < nthreads; k++) {
    test_failures += atomic_load(&ws[k].fails);
    allocs += ws[k].allocs;
  }
  /* Detached threads flushed their counters. */
  CHECK(s2.total_alloc_objects - s0.total_alloc_objects >= allocs / 16);
  printf("  %llu cycles, %llu allocations\n",
         (unsigned long long)(s2.cycles - s0.cycles), (unsigned long long)allocs);
  CHECK(s2.cycles - s0.cycles >= 6);

  /* The workers are gone; their rooted objects must stay intact. */
  CHECK(gc_collect(H) == GCH_OK);
  CHECK(gc_collect(H) == GCH_OK);
  CHECK(gc_verify(H, stderr) == GCH_OK);
  for (int k = 0; k < nthreads; k++) {
    worker_t *w = &ws[k];
    for (size_t i = 0; i < NSLOT; i++) check_slot(w, i);
    CHECK(w->slots[SCRATCH] == NULL);
    test_failures += atomic_load(&w->fails);
    atomic_store(&w->fails, 0);
  }

  /* Drop everything: it is all freed. */
  gc_stats_t s3 = test_stats(H);
  for (int k = 0; k < nthreads; k++) {
    CHECK(gc_root_remove(H, ws[k].slots) == GCH_OK);
    CHECK(gc_root_remove(H, ws[k].slots) == GCH_ENOTFOUND);
  }
  CHECK(gc_collect(H) == GCH_OK);
  CHECK(gc_collect(H) == GCH_OK);
  gc_stats_t s4 = test_stats(H);
  uint64_t live_objs = 0;
  for (int k = 0; k < nthreads; k++)
    for (size_t i = 0; i < NSLOT; i++)
      if (ws[k].slots[i]) live_objs += ws[k].meta[i].kind == 2 ? 2 : 1;
  /* tiny objects share 16-B blocks, so count at least a quarter */
  CHECK(s4.total_freed_objects - s3.total_freed_objects >= live_objs / 4);
  CHECK(s4.live_bytes < s3.live_bytes);
  CHECK(gc_verify(H, stderr) == GCH_OK);
  for (int k = 0; k < nthreads; k++) free(ws[k].slots);
  free(ws);
}

/* ------------------------------------------------- attach / detach churn */

static void *churn_main(void *arg) {
  worker_t *w = arg;
  for (int round = 0; round < 50; round++) {
    WCHECK(w, gc_thread_attach(H) == GCH_OK);
    WCHECK(w, gc_thread_attach(H) == GCH_EATTACHED);
    for (size_t i = 0; i < 40; i++) replace_slot(w, (size_t)round % 8 * 32 + i % 32);
    WCHECK(w, gc_thread_detach(H) == GCH_OK);
    /* Unattached: no allocation, and the error says why. */
    WCHECK(w, gc_malloc(H, 16, 0) == NULL);
    WCHECK(w, gc_last_error(H) == GCH_ENOTATTACHED);
  }
  return NULL;
}

static void test_churn(void) {
  worker_t ws[2];
  memset(ws, 0, sizeof ws);
  for (int k = 0; k < 2; k++) {
    ws[k].id = 100 + k;
    ws[k].rng = base_seed + 77 + (uint64_t)k;
    ws[k].slots = calloc(NSLOT + 1, sizeof(void *));
    REQUIRE(ws[k].slots);
    REQUIRE(gc_root_add(H, ws[k].slots, (NSLOT + 1) * sizeof(void *),
                        GCH_ROOT_PRECISE) == GCH_OK);
    REQUIRE(pthread_create(&ws[k].tid, NULL, churn_main, &ws[k]) == 0);
  }
  for (int c = 0; c < 4; c++) {
    sleep_blocking(1000);
    CHECK(gc_collect(H) == GCH_OK);
  }
  gc_blocking_enter(H);
  for (int k = 0; k < 2; k++) pthread_join(ws[k].tid, NULL);
  gc_blocking_leave(H);
  CHECK(gc_collect(H) == GCH_OK);
  CHECK(gc_verify(H, stderr) == GCH_OK);
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < NSLOT; i++) check_slot(&ws[k], i);
    test_failures += atomic_load(&ws[k].fails);
    CHECK(gc_root_remove(H, ws[k].slots) == GCH_OK);
    free(ws[k].slots);
  }
  CHECK_EQ(test_stats(H).threads, 1);
}

/* --------------------------------------- queries vs the background sweeper */

/* After each collection the background sweeper sweeps every span of the
 * heap while other threads run.  gc_size_of and gc_base must answer for a
 * live object at every moment, not only once its span has been swept: a
 * querying thread checks a fixed set of live objects over and over while
 * the main thread collects and the sweeper sweeps. */
static void *race_root;
static gc_heap_t *RH;
static void **race_payload; /* not a root: race_root's array holds them */
enum { RACE_LEN = 4000 };
static atomic_int race_stop;
static atomic_long race_wrong_size, race_wrong_base, race_passes, race_progress;

static void *race_query(void *arg) {
  (void)arg;
  if (gc_thread_attach(RH) != GCH_OK) return (void *)1;
  while (!atomic_load(&race_stop)) {
    long ws = 0, wb = 0;
    for (size_t i = 0; i < RACE_LEN; i++) {
      ws += gc_size_of(RH, race_payload[i]) < 24;
      wb += gc_base(RH, (char *)race_payload[i] + 5) != race_payload[i];
      if (i % 64 == 0) {
        atomic_fetch_add(&race_progress, 1);
        gc_safepoint(RH);
      }
    }
    atomic_fetch_add(&race_wrong_size, ws);
    atomic_fetch_add(&race_wrong_base, wb);
    atomic_fetch_add(&race_passes, 1);
    gc_safepoint(RH);
  }
  gc_thread_detach(RH);
  return NULL;
}

static void test_sweeper_query_race(void) {
  gc_config_t cfg = gc_config_default();
  cfg.background_sweep = 1;
  RH = test_heap(&cfg);
  REQUIRE(gc_root_add(RH, &race_root, sizeof race_root, GCH_ROOT_PRECISE) == GCH_OK);
  uint64_t map = 2; /* word 1 of each 24-B element */
  const gc_type_t *T;
  REQUIRE(gc_type_new(RH, "e", 24, &map, 1, &T) == GCH_OK);
  race_payload = malloc(RACE_LEN * sizeof *race_payload);
  REQUIRE(race_payload);
  uint64_t *a = gc_alloc_array(RH, T, RACE_LEN);
  REQUIRE(a);
  race_root = a;
  for (size_t i = 0; i < RACE_LEN; i++) {
    uint64_t *q = gc_malloc(RH, 24, GCH_NOSCAN);
    REQUIRE(q);
    q[0] = i;
    race_payload[i] = q;
    a[i * 3 + 1] = (uint64_t)(uintptr_t)q;
  }
  atomic_store(&race_stop, 0);
  atomic_store(&race_wrong_size, 0);
  atomic_store(&race_wrong_base, 0);
  atomic_store(&race_passes, 0);
  atomic_store(&race_progress, 0);
  pthread_t q;
  REQUIRE(pthread_create(&q, NULL, race_query, NULL) == 0);
  enum { CYCLES = 1000 };
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int cycles = 0;
  for (int c = 0; c < CYCLES; c++, cycles++) {
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ns = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    /* 0.3 s is plenty, once the querying thread has done some passes */
    if ((ns > 300000000L && atomic_load(&race_passes) >= 20) || ns > 3000000000L)
      break;
    CHECK(gc_collect(RH) == GCH_OK);
    /* let the querying thread run between collections (it stays parked
     * through back-to-back stops) */
    long before = atomic_load(&race_progress);
    gc_blocking_enter(RH);
    for (int k = 0; k < 200 && atomic_load(&race_progress) < before + 4; k++) {
      struct timespec ts = {0, 10000};
      nanosleep(&ts, NULL);
    }
    gc_blocking_leave(RH);
  }
  atomic_store(&race_stop, 1);
  gc_blocking_enter(RH);
  pthread_join(q, NULL);
  gc_blocking_leave(RH);
  long ws = atomic_load(&race_wrong_size), wb = atomic_load(&race_wrong_base);
  if (ws || wb)
    fprintf(stderr, "live objects reported as not allocated while the "
                    "background sweeper ran: gc_size_of %ld times, gc_base "
                    "%ld times, in %ld query passes over %d objects\n", ws, wb,
            atomic_load(&race_passes), (int)RACE_LEN);
  CHECK_EQ(ws, 0);
  CHECK_EQ(wb, 0);
  CHECK(atomic_load(&race_passes) >= 1);
  printf("  %ld query passes during %d collections\n",
         atomic_load(&race_passes), cycles);
  /* and the objects really are alive */
  for (size_t i = 0; i < RACE_LEN; i++)
    CHECK(((uint64_t *)race_payload[i])[0] == i);
  free(race_payload);
  race_root = NULL;
  CHECK(gc_root_remove(RH, &race_root) == GCH_OK);
  CHECK(gc_heap_destroy(RH) == GCH_OK);
}

/* ------------------------------------------------ stop-the-world handshake */

/* While a collection runs with the world stopped, no other attached thread
 * may run outside the library.  A mutator flags the stretches where it runs
 * its own code (between gc_* calls); a root callback, which runs on the
 * collector with the world stopped, watches the flag for a while.  Another
 * thread collects back to back, the case where a thread woken from one stop
 * must not slip through the next. */
static atomic_int hs_mutator_running, hs_stop, hs_violations, hs_cb_calls;
static atomic_int hs_started;
static atomic_long hs_iters;
static gc_heap_t *HS;

static void hs_root_cb(gc_visitor_t *v, void *ctx) {
  (void)v;
  (void)ctx;
  atomic_fetch_add(&hs_cb_calls, 1);
  for (int i = 0; i < 20000; i++) {
    if (atomic_load(&hs_mutator_running)) {
      atomic_fetch_add(&hs_violations, 1);
      break;
    }
  }
}

static void *hs_mutator(void *arg) {
  void **ring = arg; /* 64 rooted slots */
  uint64_t x = 0x1234567;
  size_t bad = 0, n = 0;
  if (gc_thread_attach(HS) != GCH_OK) return (void *)1;
  atomic_store(&hs_started, 1);
  while (!atomic_load(&hs_stop)) {
    atomic_store(&hs_mutator_running, 0);
    uint64_t *p = gc_malloc(HS, 48, (n & 1) ? GCH_NOSCAN : 0);
    atomic_store(&hs_mutator_running, 1);
    if (!p) { bad++; break; }
    size_t k = n % 64;
    uint64_t *old = ring[k];
    if (old && old[0] != (uint64_t)k * 0x0101010101010101ull + 0xa500000000000000ull) bad++;
    p[0] = (uint64_t)k * 0x0101010101010101ull + 0xa500000000000000ull;
    ring[k] = p;
    for (int i = 0; i < 5000; i++) x = x * 6364136223846793005ull + 1;
    n++;
    atomic_fetch_add(&hs_iters, 1);
    atomic_store(&hs_mutator_running, 0);
    gc_safepoint(HS);
    atomic_store(&hs_mutator_running, 1);
  }
  atomic_store(&hs_mutator_running, 0);
  gc_thread_detach(HS);
  return (void *)(uintptr_t)(bad + (x == 42));
}

static void *hs_collector(void *arg) {
  int cycles = (int)(intptr_t)arg;
  if (gc_thread_attach(HS) != GCH_OK) return (void *)1;
  gc_blocking_enter(HS);
  while (!atomic_load(&hs_started)) sched_yield();
  gc_blocking_leave(HS);
  for (int i = 0; i < cycles; i++) {
    gc_collect(HS);
    /* give the mutator a moment now and then, so it runs between stops */
    if (i % 32 == 0) {
      long before = atomic_load(&hs_iters);
      gc_blocking_enter(HS);
      struct timespec ts = {0, 20000};
      for (int k = 0; k < 500 && atomic_load(&hs_iters) == before; k++)
        nanosleep(&ts, NULL);
      gc_blocking_leave(HS);
    }
  }
  gc_thread_detach(HS);
  return NULL;
}

static void test_stw_handshake(void) {
  gc_config_t cfg = gc_config_default();
  cfg.background_sweep = 0;
  HS = test_heap(&cfg);
  void **ring = calloc(64, sizeof(void *));
  REQUIRE(ring);
  REQUIRE(gc_root_add(HS, ring, 64 * sizeof(void *), GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_callback_add(HS, hs_root_cb, NULL) == GCH_OK);
  /* The race is timing dependent: up to 5 rounds, stopping at the first
   * violation. */
  int rounds = 0;
  for (; rounds < 5 && !atomic_load(&hs_violations); rounds++) {
    atomic_store(&hs_stop, 0);
    atomic_store(&hs_started, 0);
    atomic_store(&hs_iters, 0);
    atomic_store(&hs_cb_calls, 0);
    pthread_t m, c1, c2;
    REQUIRE(pthread_create(&m, NULL, hs_mutator, ring) == 0);
    REQUIRE(pthread_create(&c1, NULL, hs_collector, (void *)(intptr_t)600) == 0);
    REQUIRE(pthread_create(&c2, NULL, hs_collector, (void *)(intptr_t)600) == 0);
    gc_blocking_enter(HS);
    pthread_join(c1, NULL);
    pthread_join(c2, NULL);
    atomic_store(&hs_stop, 1);
    void *mres;
    pthread_join(m, &mres);
    gc_blocking_leave(HS);
    CHECK(atomic_load(&hs_cb_calls) >= 1200);
    CHECK(atomic_load(&hs_iters) >= 20);
    CHECK(mres == NULL);
  }
  int viol = atomic_load(&hs_violations);
  if (viol)
    fprintf(stderr, "a mutator ran during %d stopped-world root scans "
                    "(round %d of 5, 1200 stops each)\n", viol, rounds);
  CHECK_EQ(viol, 0);
  CHECK(gc_verify(HS, stderr) == GCH_OK);
  CHECK(gc_root_callback_remove(HS, hs_root_cb, NULL) == GCH_OK);
  CHECK(gc_heap_destroy(HS) == GCH_OK);
  free(ring);
}

/* ------------------------- verify / stats while other threads collect */

/* gc_verify and gc_get_stats called by an attached thread while another
 * thread's allocation starts a collection: the collector waits for this
 * thread to stop, so these calls must not block it (no deadlock). */
static void test_verify_stats_concurrent(void) {
  gc_config_t cfg = gc_config_default();
  cfg.gc_percent = 25; /* many automatic collections */
  gc_heap_t *saved = H;
  H = test_heap(&cfg);
  worker_t *ws = calloc(2, sizeof *ws);
  REQUIRE(ws);
  atomic_store(&attached_count, 0);
  atomic_store(&release_workers, 1);
  for (int k = 0; k < 2; k++) {
    ws[k].id = 200 + k;
    ws[k].iters = 8000;
    ws[k].rng = base_seed * 31 + (uint64_t)k;
    ws[k].slots = calloc(NSLOT + 1, sizeof(void *));
    REQUIRE(ws[k].slots);
    REQUIRE(pthread_create(&ws[k].tid, NULL, worker_main, &ws[k]) == 0);
  }
  while (atomic_load(&attached_count) < 2) sleep_blocking(100);
  int calls = 0;
  for (int i = 0; i < 150; i++) {
    CHECK(gc_verify(H, stderr) == GCH_OK);
    gc_stats_t st;
    CHECK(gc_get_stats(H, &st) == GCH_OK);
    calls++;
    sleep_blocking(200);
  }
  gc_blocking_enter(H);
  for (int k = 0; k < 2; k++) pthread_join(ws[k].tid, NULL);
  gc_blocking_leave(H);
  for (int k = 0; k < 2; k++) {
    test_failures += atomic_load(&ws[k].fails);
    CHECK(gc_root_remove(H, ws[k].slots) == GCH_OK);
    free(ws[k].slots);
  }
  CHECK_EQ(calls, 150);
  CHECK(gc_heap_destroy(H) == GCH_OK);
  free(ws);
  H = saved;
}

/* ---------------------------------------------------------------- driver */

/* A hang is a failure too: each phase runs under an alarm that names it.
 * GCHEAP_TEST_PHASE=name runs only that phase (for chasing one failure). */
static const char *volatile phase = "start";
static void on_alarm(int sig) {
  (void)sig;
  const char *p = phase;
  static const char m1[] = "test_threads: TIMEOUT (deadlock?) in phase ";
  ssize_t r = write(2, m1, sizeof m1 - 1);
  r = write(2, p, strlen(p));
  r = write(2, "\n", 1);
  (void)r;
  _exit(3);
}
static int enter_phase(const char *name, unsigned seconds) {
  const char *only = getenv("GCHEAP_TEST_PHASE");
  if (only && *only && strcmp(only, name) != 0) return 0;
  phase = name;
  printf("phase %s\n", name);
  fflush(stdout);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  seconds *= 6; /* sanitizers slow everything down */
#endif
  alarm(seconds);
  return 1;
}

int main(int argc, char **argv) {
  base_seed = test_seed(argc, argv);
  gc_config_t cfg = gc_config_default();
  H = test_heap(&cfg);
  CHECK(gc_thread_is_attached(H));
  CHECK_EQ(test_stats(H).threads, 1);

  signal(SIGALRM, on_alarm);
  if (enter_phase("workers-2", 60)) run_workers(2, 8000);
  if (enter_phase("workers-4", 60)) run_workers(4, 4000);
  if (enter_phase("attach-detach-churn", 60)) test_churn();
  CHECK(gc_verify(H, stderr) == GCH_OK);
  CHECK(gc_heap_destroy(H) == GCH_OK);

  if (enter_phase("stw-handshake", 60)) test_stw_handshake();
  if (enter_phase("sweeper-query-race", 60)) test_sweeper_query_race();
  if (enter_phase("verify-stats-concurrent", 15)) test_verify_stats_concurrent();
  alarm(0);
  return test_done("test_threads");
}
