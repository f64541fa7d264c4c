/*
 * bench_alloc.c -- allocation throughput by object size.
 *
 * For 16 B, 64 B, 256 B, 4 KiB and 64 KiB objects, ns per allocation of:
 *   gcheap gc_malloc(NOSCAN) and gc_alloc (a type whose first word is a
 *     pointer), objects dropped at once, default automatic collection;
 *   gcheap NOSCAN with a live window: a ring of the last 1024 objects
 *     (registered as a precise root range);
 *   Boehm GC_MALLOC_ATOMIC / GC_MALLOC dropped at once, and ATOMIC with the
 *     same 1024-object ring (a static array: a Boehm root);
 *   glibc malloc, mimalloc mi_malloc and jemalloc malloc, each with an
 *     immediate free, and with the 1024-object ring (the evicted object is
 *     freed); and mi_zalloc+mi_free, to show what zeroing costs.
 * Each loop writes the counter into word 1 of each object and adds it back
 * into a checksum (reading it when the object is dropped or evicted).
 * Note: gcheap and GC_MALLOC return zeroed memory; malloc, mi_malloc,
 * jemalloc and GC_MALLOC_ATOMIC do not.
 */
/* Boehm GC: its names are GC_*, ours gc_* and GCH_*. */
#include <gc.h>
#include <gcheap.h>
#include <mimalloc.h>

#include "benchutil.h"

#define RING 1024

enum {
  V_GCH_NOSCAN,
  V_GCH_TYPED,
  V_GCH_RING,
  V_BOEHM_ATOMIC,
  V_BOEHM_MALLOC,
  V_BOEHM_RING,
  V_GLIBC,
  V_MI,
  V_MI_ZERO,
  V_JE,
  V_GLIBC_RING,
  V_MI_RING,
  V_JE_RING,
  NV
};

static const char *const vname[NV] = {
    "gcheap gc_malloc NOSCAN",  "gcheap gc_alloc typed",
    "gcheap NOSCAN ring1024",   "Boehm GC_MALLOC_ATOMIC",
    "Boehm GC_MALLOC",          "Boehm ATOMIC ring1024",
    "glibc malloc+free",        "mimalloc malloc+free",
    "mimalloc zalloc+free",     "jemalloc malloc+free",     "glibc ring1024",
    "mimalloc ring1024",        "jemalloc ring1024",
};

static const size_t sizes[] = {16, 64, 256, 4096, 65536};
#define NSIZES (sizeof sizes / sizeof sizes[0])

typedef struct job {
  int variant;
  size_t size;
  uint64_t ops;    /* timed operations */
  uint64_t warmup; /* untimed operations before */
} job_t;

static bench_allocator_t glibc_a, je_a;
static void *ring[RING];

/* -------------------------------------------------------------- gcheap */

static uint64_t gch_loop(gc_heap_t *h, const gc_type_t *t, size_t size,
                         uint64_t from, uint64_t to, int use_ring) {
  uint64_t sum = 0;
  for (uint64_t i = from; i < to; i++) {
    uint64_t *p = t ? gc_alloc(h, t) : gc_malloc(h, size, GCH_NOSCAN);
    if (GCH_UNLIKELY(!p)) bench_gch_oom(h, size);
    p[1] = i;
    if (use_ring) {
      uint64_t *old = ring[i % RING];
      if (old) sum += old[1];
      ring[i % RING] = p;
    } else {
      sum += ((volatile uint64_t *)p)[1];
    }
  }
  return sum;
}

static void run_gcheap(const job_t *j, bench_result_t *out) {
  gc_heap_t *h = bench_gch_new();
  const gc_type_t *t = NULL;
  if (j->variant == V_GCH_TYPED) {
    uint64_t map = 1; /* word 0 is a pointer */
    if (gc_type_new(h, "ptr1", j->size, &map, 1, &t) != GCH_OK) {
      fprintf(stderr, "bench_alloc: gc_type_new failed\n");
      exit(4);
    }
  }
  int use_ring = j->variant == V_GCH_RING;
  if (use_ring && gc_root_add(h, ring, sizeof ring, GCH_ROOT_PRECISE) != 0) {
    fprintf(stderr, "bench_alloc: gc_root_add failed\n");
    exit(4);
  }
  uint64_t sum = gch_loop(h, t, j->size, 0, j->warmup, use_ring);
  bench_timer_t t0 = bench_timer_start();
  sum += gch_loop(h, t, j->size, j->warmup, j->warmup + j->ops, use_ring);
  bench_timer_stop(t0, out);
  for (int k = 0; k < RING; k++)
    if (ring[k]) sum += ((uint64_t *)ring[k])[1];
  out->checksum = sum;
  bench_gch_fill(h, out);
}

/* --------------------------------------------------------------- Boehm */

static uint64_t boehm_loop(int atomic, size_t size, uint64_t from,
                           uint64_t to, int use_ring) {
  uint64_t sum = 0;
  for (uint64_t i = from; i < to; i++) {
    uint64_t *p = atomic ? GC_MALLOC_ATOMIC(size) : GC_MALLOC(size);
    if (!p) {
      fprintf(stderr, "bench_alloc: Boehm allocation failed\n");
      exit(4);
    }
    p[1] = i;
    if (use_ring) {
      uint64_t *old = ring[i % RING];
      if (old) sum += old[1];
      ring[i % RING] = p;
    } else {
      sum += ((volatile uint64_t *)p)[1];
    }
  }
  return sum;
}

static void run_boehm(const job_t *j, bench_result_t *out) {
  bench_boehm_init();
  int atomic = j->variant != V_BOEHM_MALLOC;
  int use_ring = j->variant == V_BOEHM_RING;
  uint64_t sum = boehm_loop(atomic, j->size, 0, j->warmup, use_ring);
  bench_timer_t t0 = bench_timer_start();
  sum += boehm_loop(atomic, j->size, j->warmup, j->warmup + j->ops, use_ring);
  bench_timer_stop(t0, out);
  for (int k = 0; k < RING; k++)
    if (ring[k]) sum += ((uint64_t *)ring[k])[1];
  out->checksum = sum;
  bench_boehm_fill(out);
}

/* -------------------------------------------------------- malloc peers */

/* mimalloc is called directly (as an application would); glibc and
 * jemalloc through function pointers (equivalent to their PLT calls). */
static uint64_t mi_loop(size_t size, uint64_t from, uint64_t to,
                        int use_ring, int zero) {
  uint64_t sum = 0;
  for (uint64_t i = from; i < to; i++) {
    uint64_t *p = zero ? mi_zalloc(size) : mi_malloc(size);
    if (!p) exit(4);
    p[1] = i;
    if (use_ring) {
      uint64_t *old = ring[i % RING];
      if (old) {
        sum += old[1];
        mi_free(old);
      }
      ring[i % RING] = p;
    } else {
      sum += ((volatile uint64_t *)p)[1];
      mi_free(p);
    }
  }
  return sum;
}

static uint64_t fp_loop(const bench_allocator_t *a, size_t size,
                        uint64_t from, uint64_t to, int use_ring) {
  bench_malloc_fn m = a->malloc_fn;
  bench_free_fn f = a->free_fn;
  uint64_t sum = 0;
  for (uint64_t i = from; i < to; i++) {
    uint64_t *p = m(size);
    if (!p) exit(4);
    p[1] = i;
    if (use_ring) {
      uint64_t *old = ring[i % RING];
      if (old) {
        sum += old[1];
        f(old);
      }
      ring[i % RING] = p;
    } else {
      sum += ((volatile uint64_t *)p)[1];
      f(p);
    }
  }
  return sum;
}

static void run_malloc(const job_t *j, bench_result_t *out) {
  int use_ring =
      j->variant == V_GLIBC_RING || j->variant == V_MI_RING ||
      j->variant == V_JE_RING;
  const bench_allocator_t *a = NULL;
  if (j->variant == V_GLIBC || j->variant == V_GLIBC_RING) a = &glibc_a;
  if (j->variant == V_JE || j->variant == V_JE_RING) a = &je_a;
  int zero = j->variant == V_MI_ZERO;
  uint64_t sum = a ? fp_loop(a, j->size, 0, j->warmup, use_ring)
                   : mi_loop(j->size, 0, j->warmup, use_ring, zero);
  bench_timer_t t0 = bench_timer_start();
  uint64_t from = j->warmup, to = j->warmup + j->ops;
  sum += a ? fp_loop(a, j->size, from, to, use_ring)
           : mi_loop(j->size, from, to, use_ring, zero);
  bench_timer_stop(t0, out);
  for (int k = 0; k < RING; k++) {
    if (!ring[k]) continue;
    sum += ((uint64_t *)ring[k])[1];
    if (a)
      a->free_fn(ring[k]);
    else
      mi_free(ring[k]);
    ring[k] = NULL;
  }
  out->checksum = sum;
}

static void child(const void *arg, bench_result_t *out) {
  const job_t *j = arg;
  switch (j->variant) {
  case V_GCH_NOSCAN:
  case V_GCH_TYPED:
  case V_GCH_RING:
    run_gcheap(j, out);
    break;
  case V_BOEHM_ATOMIC:
  case V_BOEHM_MALLOC:
  case V_BOEHM_RING:
    run_boehm(j, out);
    break;
  default:
    run_malloc(j, out);
    break;
  }
}

/* ---------------------------------------------------------------- main */

static uint64_t ops_for(size_t size, double scale) {
  uint64_t n = (1ull << 29) / size; /* 512 MiB of allocation */
  if (n > 4000000) n = 4000000;
  if (n < 20000) n = 20000;
  return bench_scaled(n, scale, 1000);
}

static double ns_op[NV][NSIZES], cpu_op[NV][NSIZES], rss_mb[NV][NSIZES],
    gcs[NV][NSIZES];

static int available(int v) {
  if (!bench_selected(vname[v])) return 0;
  if ((v == V_GLIBC || v == V_GLIBC_RING) && !glibc_a.ok) return 0;
  if ((v == V_JE || v == V_JE_RING) && !je_a.ok) return 0;
  return 1;
}

static void print_ratio(double a, double b) {
  if (a > 0 && b > 0)
    printf(" %9.2fx", a / b);
  else
    printf(" %10s", "n/a");
}

int main(void) {
  double scale = bench_scale();
  glibc_a = bench_allocator_lookup("glibc", "libc.so.6");
  je_a = bench_allocator_lookup("jemalloc", "libjemalloc.so.2");
  bench_print_header("bench_alloc: allocation throughput (ns per "
                     "allocation, objects dropped or kept in a 1024 ring)",
                     scale);
  if (!glibc_a.ok) printf("glibc malloc unavailable: %s\n", glibc_a.why);
  if (!je_a.ok) printf("jemalloc unavailable: %s\n", je_a.why);
  printf("ops per run:");
  for (size_t s = 0; s < NSIZES; s++)
    printf(" %zuB=%llu", sizes[s],
           (unsigned long long)ops_for(sizes[s], scale));
  printf(" (+25%% untimed warm-up)\n");
  double base = bench_baseline_rss_mb();
  printf("baseline child RSS %.1f MB (included in the RSS figures)\n\n",
         base);

  for (size_t s = 0; s < NSIZES; s++) {
    double t[NV][BENCH_RUNS], c[NV][BENCH_RUNS], r[NV][BENCH_RUNS];
    double g[NV][BENCH_RUNS];
    uint64_t ops = ops_for(sizes[s], scale);
    job_t j = {0, sizes[s], ops, ops / 4};
    uint64_t n = j.warmup + j.ops;
    uint64_t want = n * (n - 1) / 2;
    for (int run = 0; run < BENCH_RUNS; run++) {
      for (int v = 0; v < NV; v++) {
        if (!available(v)) continue;
        bench_result_t res;
        j.variant = v;
        bench_run_child(vname[v], child, &j, &res);
        bench_check_sum("alloc", vname[v], res.checksum, want);
        t[v][run] = (double)res.wall_ns / (double)ops;
        c[v][run] = (double)res.cpu_ns / (double)ops;
        r[v][run] = (double)res.maxrss_kb / 1024.0;
        g[v][run] = (double)res.gc_cycles;
      }
    }
    for (int v = 0; v < NV; v++) {
      if (!available(v)) continue;
      ns_op[v][s] = bench_median(t[v], BENCH_RUNS);
      cpu_op[v][s] = bench_median(c[v], BENCH_RUNS);
      rss_mb[v][s] = bench_median(r[v], BENCH_RUNS);
      gcs[v][s] = bench_median(g[v], BENCH_RUNS);
    }
  }

  printf("ns per allocation (median of %d)\n", BENCH_RUNS);
  printf("%-26s", "variant");
  for (size_t s = 0; s < NSIZES; s++) printf(" %9zuB", sizes[s]);
  printf("\n");
  for (int v = 0; v < NV; v++) {
    printf("%-26s", vname[v]);
    for (size_t s = 0; s < NSIZES; s++) {
      if (available(v))
        printf(" %10.2f", ns_op[v][s]);
      else
        printf(" %10s", "n/a");
    }
    printf("\n");
  }

  printf("\nCPU ns per allocation (process CPU time, all threads; less than "
         "wall when the machine is busy)\n");
  for (int v = 0; v < NV; v++) {
    if (!available(v)) continue;
    printf("%-26s", vname[v]);
    for (size_t s = 0; s < NSIZES; s++) printf(" %10.2f", cpu_op[v][s]);
    printf("\n");
  }

  static const struct {
    const char *label;
    int a, b;
  } ratios[] = {
      {"gcheap NOSCAN / mimalloc", V_GCH_NOSCAN, V_MI},
      {"gcheap NOSCAN / Boehm ATOMIC", V_GCH_NOSCAN, V_BOEHM_ATOMIC},
      {"gcheap NOSCAN / mi_zalloc", V_GCH_NOSCAN, V_MI_ZERO},
      {"gcheap typed / mimalloc", V_GCH_TYPED, V_MI},
      {"gcheap typed / Boehm MALLOC", V_GCH_TYPED, V_BOEHM_MALLOC},
      {"gcheap ring / mimalloc ring", V_GCH_RING, V_MI_RING},
      {"gcheap ring / Boehm ring", V_GCH_RING, V_BOEHM_RING},
      {"glibc / mimalloc", V_GLIBC, V_MI},
      {"jemalloc / mimalloc", V_JE, V_MI},
      {"Boehm ATOMIC / mimalloc", V_BOEHM_ATOMIC, V_MI},
  };
  printf("\nratios of ns/op (< 1 = first is faster)\n");
  printf("%-30s", "ratio");
  for (size_t s = 0; s < NSIZES; s++) printf(" %9zuB", sizes[s]);
  printf("\n");
  for (size_t k = 0; k < sizeof ratios / sizeof ratios[0]; k++) {
    if (!available(ratios[k].a) || !available(ratios[k].b)) continue;
    printf("%-30s", ratios[k].label);
    for (size_t s = 0; s < NSIZES; s++)
      print_ratio(ns_op[ratios[k].a][s], ns_op[ratios[k].b][s]);
    printf("\n");
  }

  printf("\npeak RSS MB / collections per run (medians)\n");
  printf("%-26s", "variant");
  for (size_t s = 0; s < NSIZES; s++) printf(" %11zuB", sizes[s]);
  printf("\n");
  for (int v = 0; v < NV; v++) {
    if (!available(v)) continue;
    printf("%-26s", vname[v]);
    for (size_t s = 0; s < NSIZES; s++) {
      char cell[48];
      if (v <= V_BOEHM_RING)
        snprintf(cell, sizeof cell, "%.1f/%.0f", rss_mb[v][s], gcs[v][s]);
      else
        snprintf(cell, sizeof cell, "%.1f/-", rss_mb[v][s]);
      printf(" %12s", cell);
    }
    printf("\n");
  }
  printf("notes: gcheap and GC_MALLOC return zeroed objects (compare with "
         "mimalloc zalloc); the malloc peers and GC_MALLOC_ATOMIC write one "
         "word per object, so for 4 KiB and 64 KiB their RSS counts about one "
         "page per live object; 'ring' rows keep 1024 objects live.\n");
  return 0;
}
