/*
 * test_diff.c -- differential test: gcheap against Boehm GC.
 *
 * The seeded random mutator of mutator.h is compiled twice: against gcheap
 * (precise registered types, one per object shape; the root table
 * registered with gc_root_add) and against Boehm (GC_MALLOC, or
 * GC_MALLOC_ATOMIC for pointer-free objects; a static root table, which
 * Boehm scans as data).  For every seed both must produce the same
 * sequence of reachable-graph checksums, the same running hash and the
 * same reachable set size, with no corrupt object seen.
 *
 * For gcheap, after each seed: gc_collect, then live_bytes must equal the
 * slot bytes of the objects a walk reaches, exactly (the live set is the
 * model's; Boehm, conservative, may keep more and is not checked), and
 * every 25 seeds gc_verify must pass.  Slot bytes: gc_size_of of a fresh
 * object of each shape, plus the type header of scanned objects over 512 B,
 * whose size is measured once at start-up (live_bytes of one such object
 * minus its gc_size_of).  A crash prints the seed and side.
 *
 * Peak heap: gcheap's bytes_mapped and Boehm's GC_get_heap_size(), sampled
 * every 256 steps and after each large allocation; gcheap's peak must be at
 * most 1.5 x Boehm's + 4 MiB.  Both are printed, with each side's time.
 *
 * Seeds: base from argv[1] / GCHEAP_SEED, then base+1, ...  Counts:
 * GCHEAP_DIFF_SEEDS (default 200), GCHEAP_DIFF_STEPS (default 20000).
 */
/* Boehm GC: its names are GC_*, ours gc_* and GCH_*. */
#include <gc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define WALK_EVERY 1000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* -------------------------------------------------------------- gcheap */

static gc_heap_t *GH;
#define SMALL_WORDS 76 /* nwords 2..75 */
#define BIG_KINDS 4    /* 5000, 9000, 17000, 25000 words */
static const gc_type_t *small_type[SMALL_WORDS][5];
static size_t small_slot[SMALL_WORDS][5];
static const gc_type_t *big_type[BIG_KINDS][9];
static size_t big_slot[BIG_KINDS][9];
static void *gch_roots[1000];
static size_t gch_hdr; /* type header of scanned objects of 513 B.. */

static int big_index(uint32_t nwords) {
  switch (nwords) {
  case 5000: return 0;
  case 9000: return 1;
  case 17000: return 2;
  case 25000: return 3;
  default: return -1;
  }
}

static void *gch_alloc(uint32_t nwords, uint32_t nptr) {
  const gc_type_t **tp;
  size_t *slot;
  int b = big_index(nwords);
  if (b >= 0) {
    tp = &big_type[b][nptr];
    slot = &big_slot[b][nptr];
  } else {
    REQUIRE(nwords < SMALL_WORDS && nptr <= 4);
    tp = &small_type[nwords][nptr];
    slot = &small_slot[nwords][nptr];
  }
  if (!*tp) {
    uint64_t map = ((1ull << nptr) - 1) << 1; /* words 1..nptr */
    char name[32];
    snprintf(name, sizeof name, "mut%u_%u", nwords, nptr);
    REQUIRE(gc_type_new(GH, name, (size_t)nwords * 8, &map, 1, tp) == GCH_OK);
  }
  void *p = gc_alloc(GH, *tp);
  if (p && !*slot) {
    /* taken on a fresh object (its span is this thread's: no sweeper) */
    size_t bytes = (size_t)nwords * 8;
    *slot = gc_size_of(GH, p);
    if (nptr && bytes > 512 && bytes + gch_hdr <= 32768) *slot += gch_hdr;
  }
  return p;
}

static size_t gch_heap_bytes(void) {
  gc_stats_t s;
  if (gc_get_stats(GH, &s) != GCH_OK) return 0;
  return s.bytes_mapped;
}

static size_t gch_live_expect;
static size_t gch_slot_of(uint32_t nwords, uint32_t nptr) {
  int b = big_index(nwords);
  return b >= 0 ? big_slot[b][nptr] : small_slot[nwords][nptr];
}

#define MUT_FN(name) gch_##name
#define MUT_ALLOC(nwords, nptr) gch_alloc((nwords), (nptr))
#define MUT_STORE(obj, slot, val) gc_write(GH, (obj), (slot), (val))
#define MUT_HEAP_BYTES() gch_heap_bytes()
#define MUT_ROOTS gch_roots
#define MUT_VISIT(p, nwords, nptr) (gch_live_expect += gch_slot_of((nwords), (nptr)))
#include "mutator.h"
#undef MUT_FN
#undef MUT_ALLOC
#undef MUT_STORE
#undef MUT_HEAP_BYTES
#undef MUT_ROOTS

/* --------------------------------------------------------------- Boehm */

static void *bgc_roots[MUT_NROOTS];

#define MUT_FN(name) bgc_##name
#define MUT_ALLOC(nwords, nptr)                                               \
  ((nptr) ? GC_MALLOC((size_t)(nwords)*8) : GC_MALLOC_ATOMIC((size_t)(nwords)*8))
#define MUT_STORE(obj, slot, val) (*(slot) = (val))
#define MUT_HEAP_BYTES() ((size_t)GC_get_heap_size())
#define MUT_ROOTS bgc_roots
#include "mutator.h"
#undef MUT_FN
#undef MUT_ALLOC
#undef MUT_STORE
#undef MUT_HEAP_BYTES
#undef MUT_ROOTS

_Static_assert(sizeof gch_roots == MUT_NROOTS * sizeof(void *), "root table");

/* ---------------------------------------------------------------- main */

/* A crash (a lost object followed by the walk) names the seed and side. */
static volatile sig_atomic_t cur_side; /* 1 gcheap, 2 Boehm */
static volatile uint64_t cur_seed;

static void on_crash(int sig) {
  char buf[128];
  int n = snprintf(buf, sizeof buf, "test_diff: signal %d in seed %llu on the %s side\n",
                   sig, (unsigned long long)cur_seed,
                   cur_side == 1 ? "gcheap" : cur_side == 2 ? "Boehm" : "?");
  if (n > 0) (void)!write(2, buf, (size_t)n);
  signal(sig, SIG_DFL);
  raise(sig);
}

static size_t env_count(const char *name, size_t dflt) {
  const char *v = getenv(name);
  return v && *v ? (size_t)strtoull(v, NULL, 0) : dflt;
}

int main(int argc, char **argv) {
  GC_INIT();
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);
  signal(SIGABRT, on_crash);
  uint64_t base = test_seed(argc, argv);
  size_t nseeds = env_count("GCHEAP_DIFF_SEEDS", 200);
  /* Under GCHEAP_TORTURE=N (a collection every N allocations) fewer seeds,
   * unless the count was given: N=50 runs 100 seeds, N=1 two. */
  size_t torture = env_count("GCHEAP_TORTURE", 0);
  if (torture && !getenv("GCHEAP_DIFF_SEEDS")) {
    size_t n = nseeds * torture / 100;
    nseeds = n < 2 ? 2 : n < nseeds ? n : nseeds;
  }
  size_t steps = env_count("GCHEAP_DIFF_STEPS", 20000);

  GH = test_heap(NULL);
  REQUIRE(gc_root_add(GH, gch_roots, sizeof gch_roots, GCH_ROOT_PRECISE) == GCH_OK);
  /* Measure the type header through the public API: live_bytes with one
   * scanned 1000-B object alive, minus its usable size. */
  gch_roots[0] = gc_malloc(GH, 1000, 0);
  REQUIRE(gch_roots[0]);
  CHECK_EQ(gc_collect(GH), GCH_OK);
  size_t usable = gc_size_of(GH, gch_roots[0]);
  gch_hdr = test_stats(GH).live_bytes - usable;
  CHECK(usable >= 1000 && gch_hdr % 8 == 0 && gch_hdr <= 64);
  gch_roots[0] = NULL;

  static mut_result_t ra, rb, rw;
  size_t peak_g = 0, peak_b = 0, mismatched = 0, live_bad = 0, allocs = 0;
  double t_g = 0, t_b = 0;
  for (size_t i = 0; i < nseeds; i++) {
    uint64_t seed = base + i;
    double t0 = now_s();
    cur_seed = seed;
    cur_side = 1;
    gch_run(seed, steps, WALK_EVERY, &ra);
    /* the live set after a full collection is exactly what is reachable */
    CHECK_EQ(gc_collect(GH), GCH_OK);
    gch_live_expect = 0;
    gch_walk(seed, &rw);
    gc_stats_t st = test_stats(GH);
    if (st.live_bytes != gch_live_expect) {
      if (live_bad++ < 5)
        fprintf(stderr, "seed %llu: gcheap live_bytes %zu != %zu, the slot bytes "
                        "of the %zu reachable objects\n",
                (unsigned long long)seed, st.live_bytes, gch_live_expect,
                rw.reach_objects);
    }
    if (i % 25 == 24) CHECK_EQ(gc_verify(GH, stderr), GCH_OK);
    double t1 = now_s();
    cur_side = 2;
    bgc_run(seed, steps, WALK_EVERY, &rb);
    double t2 = now_s();
    t_g += t1 - t0;
    t_b += t2 - t1;

    int same = ra.nsums == rb.nsums && ra.running == rb.running &&
               ra.reach_objects == rb.reach_objects &&
               memcmp(ra.sums, rb.sums, ra.nsums * sizeof ra.sums[0]) == 0;
    if (!same || ra.errors || rb.errors) {
      if (mismatched++ < 5) {
        size_t k = 0;
        while (k < ra.nsums && k < rb.nsums && ra.sums[k] == rb.sums[k]) k++;
        fprintf(stderr,
                "seed %llu: gcheap and Boehm differ: first differing walk %zu "
                "(step %zu), reachable %zu vs %zu objects, corrupt objects "
                "%zu vs %zu\n",
                (unsigned long long)seed, k, (k + 1) * WALK_EVERY,
                ra.reach_objects, rb.reach_objects, ra.errors, rb.errors);
      }
    }
    if (ra.peak_heap > peak_g) peak_g = ra.peak_heap;
    if (rb.peak_heap > peak_b) peak_b = rb.peak_heap;
    allocs += ra.allocs;
  }
  CHECK_EQ(mismatched, 0);
  CHECK_EQ(live_bad, 0);
  CHECK(ra.nsums == steps / WALK_EVERY || ra.nsums == MUT_MAX_SUMS);

  gc_stats_t st = test_stats(GH);
  printf("%zu seeds x %zu steps: %zu allocations each side; last walk reached "
         "%zu objects\n",
         nseeds, steps, allocs, ra.reach_objects);
  printf("gcheap: %.2f s, %llu cycles, peak bytes_mapped %.1f MiB\n", t_g,
         (unsigned long long)st.cycles, (double)peak_g / (1 << 20));
  printf("Boehm:  %.2f s, %lu collections, peak heap size %.1f MiB\n", t_b,
         (unsigned long)GC_get_gc_no(), (double)peak_b / (1 << 20));
  /* gcheap may use up to 1.5x Boehm's peak heap, plus 4 MiB slack */
  CHECK(peak_g <= peak_b + peak_b / 2 + ((size_t)4 << 20));

  CHECK_EQ(gc_root_remove(GH, gch_roots), GCH_OK);
  CHECK_EQ(gc_heap_destroy(GH), GCH_OK);
  free(mut_seen);
  free(mut_stack);
  return test_done("test_diff");
}
