/*
 * bench_arena.c -- user arenas (gc_arena_*) against the collector and glibc.
 *
 * Part 1, allocation: ns per allocation of 16 B, 64 B, 256 B and 1 KiB
 * objects, in batches of 4 MiB of objects (the batch is one "region"):
 *   arena bytes   gc_arena_alloc_bytes; gc_arena_free + gc_arena_new per batch
 *   arena typed   gc_arena_alloc of a type whose word 0 is a pointer
 *   arena bytes, 64 MiB regions: as arena bytes with 64 MiB batches (mostly
 *                 on huge pages: see userarena.c)
 *   gc_malloc     gc_malloc(NOSCAN), objects dropped at once
 *   gc_alloc      gc_alloc of the typed object, dropped at once
 *   glibc         malloc, the batch's objects freed at the batch end
 * Each loop writes the counter into word 1 and adds it to a checksum.
 *
 * Part 2, requests: each request builds a structure of 10^5 records
 * (32 B: link to a random earlier record, payload pointer, key, index)
 * with a 16..56 B payload each and an index array of 10^5 pointers, walks
 * it for a checksum and drops it.  Variants:
 *   arena         one gc_arena per request, freed at the end
 *   collector     gc_alloc / gc_malloc, the index rooted while it is built
 *   glibc         malloc, every block freed at the end of the request
 * run on an otherwise empty heap, and beside a 32 MiB live structure (a
 * long-running server's state: the collector must mark it every cycle).
 * Reported: wall and CPU ms for all requests, peak RSS of the child,
 * collections and pause figures.
 *
 * Every variant runs in a fresh forked child (benchutil.h), BENCH_RUNS
 * times interleaved, median reported.  BENCH_SCALE scales the counts.
 */
#include <gcheap.h>

#include "benchutil.h"

/* ------------------------------------------------------ part 1: alloc */

enum {
  A_ARENA_BYTES,
  A_ARENA_TYPED,
  A_ARENA_BIG,
  A_GC_NOSCAN,
  A_GC_TYPED,
  A_GLIBC,
  NA
};
static const char *const aname[NA] = {
    "arena bytes",        "arena typed",    "arena bytes, 64 MiB regions",
    "gc_malloc NOSCAN",   "gc_alloc typed", "glibc malloc (batch free)"};
static const size_t sizes[] = {16, 64, 256, 1024};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define BATCH_BYTES ((size_t)4 << 20)
#define BIG_BATCH_BYTES ((size_t)64 << 20)

typedef struct ajob {
  int variant;
  size_t size;
  uint64_t ops;
} ajob_t;

static bench_allocator_t glibc_a;

static void need(const void *p, const char *what) {
  if (!p) {
    fprintf(stderr, "bench_arena: %s failed\n", what);
    exit(4);
  }
}

static const gc_type_t *type_of(gc_heap_t *h, const char *name, size_t size,
                                uint64_t map) {
  const gc_type_t *t;
  if (gc_type_new(h, name, size, &map, 1, &t) != GCH_OK) {
    fprintf(stderr, "bench_arena: gc_type_new failed\n");
    exit(4);
  }
  return t;
}

static uint64_t alloc_arena(gc_heap_t *h, const gc_type_t *t, size_t size,
                            uint64_t ops, size_t batch) {
  uint64_t per = batch / size, sum = 0;
  gc_arena_t *a = gc_arena_new(h);
  for (uint64_t i = 0; i < ops; i++) {
    if (i && i % per == 0) {
      gc_arena_free(a);
      a = gc_arena_new(h);
    }
    uint64_t *p = t ? gc_arena_alloc(a, t, 1) : gc_arena_alloc_bytes(a, size);
    if (GCH_UNLIKELY(!p)) need(NULL, "gc_arena_alloc");
    p[1] = i;
    sum += ((volatile uint64_t *)p)[1];
  }
  gc_arena_free(a);
  return sum;
}

static uint64_t alloc_gc(gc_heap_t *h, const gc_type_t *t, size_t size,
                         uint64_t ops) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < ops; i++) {
    uint64_t *p = t ? gc_alloc(h, t) : gc_malloc(h, size, GCH_NOSCAN);
    if (GCH_UNLIKELY(!p)) bench_gch_oom(h, size);
    p[1] = i;
    sum += ((volatile uint64_t *)p)[1];
  }
  return sum;
}

static uint64_t alloc_glibc(size_t size, uint64_t ops) {
  uint64_t per = BATCH_BYTES / size, sum = 0, n = 0;
  void **keep = glibc_a.malloc_fn(per * sizeof *keep);
  need(keep, "malloc");
  for (uint64_t i = 0; i < ops; i++) {
    if (n == per) {
      while (n) glibc_a.free_fn(keep[--n]);
    }
    uint64_t *p = glibc_a.malloc_fn(size);
    if (!p) need(NULL, "malloc");
    p[1] = i;
    sum += ((volatile uint64_t *)p)[1];
    keep[n++] = p;
  }
  while (n) glibc_a.free_fn(keep[--n]);
  glibc_a.free_fn(keep);
  return sum;
}

static void alloc_child(const void *arg, bench_result_t *out) {
  const ajob_t *j = arg;
  gc_heap_t *h = j->variant == A_GLIBC ? NULL : bench_gch_new();
  const gc_type_t *t = NULL;
  if (j->variant == A_ARENA_TYPED || j->variant == A_GC_TYPED)
    t = type_of(h, "obj", j->size, 1);
  uint64_t warm = j->ops / 4;
  bench_timer_t t0;
  switch (j->variant) {
  case A_ARENA_BYTES:
  case A_ARENA_TYPED:
  case A_ARENA_BIG: {
    size_t batch = j->variant == A_ARENA_BIG ? BIG_BATCH_BYTES : BATCH_BYTES;
    alloc_arena(h, t, j->size, warm, batch);
    t0 = bench_timer_start();
    out->checksum = alloc_arena(h, t, j->size, j->ops, batch);
    break;
  }
  case A_GC_NOSCAN:
  case A_GC_TYPED:
    alloc_gc(h, t, j->size, warm);
    t0 = bench_timer_start();
    out->checksum = alloc_gc(h, t, j->size, j->ops);
    break;
  default:
    alloc_glibc(j->size, warm);
    t0 = bench_timer_start();
    out->checksum = alloc_glibc(j->size, j->ops);
    break;
  }
  bench_timer_stop(t0, out);
  if (h) bench_gch_fill(h, out);
}

static uint64_t alloc_ops(size_t size, double scale) {
  uint64_t n = (1ull << 30) / size;
  if (n > 4000000) n = 4000000;
  return bench_scaled(n, scale, 10000);
}

static void part_alloc(double scale) {
  double ns[NA][NSIZES], cns[NA][NSIZES], rss[NA][NSIZES], gcs[NA][NSIZES];
  for (size_t s = 0; s < NSIZES; s++) {
    double t[NA][BENCH_RUNS], c[NA][BENCH_RUNS], r[NA][BENCH_RUNS];
    double g[NA][BENCH_RUNS];
    ajob_t j = {0, sizes[s], alloc_ops(sizes[s], scale)};
    uint64_t want = j.ops * (j.ops - 1) / 2;
    for (int run = 0; run < BENCH_RUNS; run++) {
      for (int v = 0; v < NA; v++) {
        if (!bench_selected(aname[v]) || (v == A_GLIBC && !glibc_a.ok)) continue;
        bench_result_t res;
        j.variant = v;
        bench_run_child(aname[v], alloc_child, &j, &res);
        bench_check_sum("arena/alloc", aname[v], res.checksum, want);
        t[v][run] = (double)res.wall_ns / (double)j.ops;
        c[v][run] = (double)res.cpu_ns / (double)j.ops;
        r[v][run] = (double)res.maxrss_kb / 1024.0;
        g[v][run] = (double)res.gc_cycles;
      }
    }
    for (int v = 0; v < NA; v++) {
      ns[v][s] = bench_median(t[v], BENCH_RUNS);
      cns[v][s] = bench_median(c[v], BENCH_RUNS);
      rss[v][s] = bench_median(r[v], BENCH_RUNS);
      gcs[v][s] = bench_median(g[v], BENCH_RUNS);
    }
  }
  printf("Part 1: ns per allocation (median of %d; batches of 4 MiB of "
         "objects; ops per run:", BENCH_RUNS);
  for (size_t s = 0; s < NSIZES; s++)
    printf(" %zuB=%llu", sizes[s], (unsigned long long)alloc_ops(sizes[s], scale));
  printf(")\n%-27s", "wall ns");
  for (size_t s = 0; s < NSIZES; s++) printf(" %8zuB", sizes[s]);
  printf("   peak RSS MB / GCs at 16B\n");
  for (int v = 0; v < NA; v++) {
    if (!bench_selected(aname[v]) || (v == A_GLIBC && !glibc_a.ok)) continue;
    printf("%-27s", aname[v]);
    for (size_t s = 0; s < NSIZES; s++) printf(" %9.2f", ns[v][s]);
    printf("   %.1f / %.0f\n", rss[v][0], gcs[v][0]);
  }
  printf("%-27s", "CPU ns (all threads)");
  for (size_t s = 0; s < NSIZES; s++) printf(" %8zuB", sizes[s]);
  printf("\n");
  for (int v = 0; v < NA; v++) {
    if (!bench_selected(aname[v]) || (v == A_GLIBC && !glibc_a.ok)) continue;
    printf("%-27s", aname[v]);
    for (size_t s = 0; s < NSIZES; s++) printf(" %9.2f", cns[v][s]);
    printf("\n");
  }
  printf("(arena figures include first-touch page faults: every batch gets "
         "a fresh chunk whose pages were returned to the OS at free)\n\n");
}

/* --------------------------------------------------- part 2: requests */

#define NODES 100000

typedef struct rec {
  struct rec *link;  /* a random earlier record */
  char *payload;     /* 16..56 bytes */
  uint64_t key, idx;
} rec_t;

typedef struct live {
  struct live *next;
  uint64_t pad[7];
} live_t;

enum { R_ARENA, R_GC, R_GLIBC, NR };
static const char *const rname[NR] = {"arena", "collector", "glibc"};

typedef struct rjob {
  int variant;
  int requests;
  size_t live_bytes; /* persistent structure beside the requests */
} rjob_t;

typedef struct rctx {
  gc_heap_t *h;
  const gc_type_t *rec_t, *ptr_t, *live_t;
  void *root[2]; /* [0]: the request's index (collector), [1]: live list */
} rctx_t;

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t walk(rec_t *const *idx) {
  uint64_t sum = 0;
  for (size_t i = 0; i < NODES; i++) {
    const rec_t *r = idx[i];
    sum += r->key ^ (r->link ? r->link->key : 0) ^ (uint64_t)(unsigned char)r->payload[8];
  }
  return sum;
}

static void fill_payload(char *p, size_t n, uint64_t key) {
  for (size_t k = 0; k < n; k += 8) p[k] = (char)(key >> (k & 31));
}

static uint64_t request_arena(rctx_t *c, uint64_t seed) {
  gc_arena_t *a = gc_arena_new(c->h);
  need(a, "gc_arena_new");
  rec_t **idx = gc_arena_alloc(a, c->ptr_t, NODES);
  need(idx, "gc_arena_alloc");
  for (size_t i = 0; i < NODES; i++) {
    rec_t *r = gc_arena_alloc(a, c->rec_t, 1);
    uint64_t x = rng_next(&seed);
    size_t n = 16 + (x & 5) * 8;
    char *p = gc_arena_alloc_bytes(a, n);
    if (GCH_UNLIKELY(!r || !p)) need(NULL, "gc_arena_alloc");
    r->key = x;
    r->idx = i;
    r->link = i ? idx[(x >> 8) % i] : NULL;
    fill_payload(p, n, x);
    r->payload = p;
    idx[i] = r;
  }
  uint64_t sum = walk(idx);
  gc_arena_free(a);
  return sum;
}

static uint64_t request_gc(rctx_t *c, uint64_t seed) {
  gc_heap_t *h = c->h;
  rec_t **idx = gc_alloc_array(h, c->ptr_t, NODES);
  need(idx, "gc_alloc_array");
  c->root[0] = idx;
  for (size_t i = 0; i < NODES; i++) {
    rec_t *r = gc_alloc(h, c->rec_t);
    if (GCH_UNLIKELY(!r)) bench_gch_oom(h, sizeof *r);
    uint64_t x = rng_next(&seed);
    size_t n = 16 + (x & 5) * 8;
    r->key = x;
    r->idx = i;
    gc_write(h, idx, (void **)&idx[i], r);
    gc_write(h, r, (void **)&r->link, i ? idx[(x >> 8) % i] : NULL);
    char *p = gc_malloc(h, n, GCH_NOSCAN);
    if (GCH_UNLIKELY(!p)) bench_gch_oom(h, n);
    fill_payload(p, n, x);
    gc_write(h, r, (void **)&r->payload, p);
  }
  uint64_t sum = walk(idx);
  c->root[0] = NULL;
  return sum;
}

static uint64_t request_glibc(uint64_t seed) {
  rec_t **idx = glibc_a.malloc_fn(NODES * sizeof *idx);
  need(idx, "malloc");
  for (size_t i = 0; i < NODES; i++) {
    rec_t *r = glibc_a.malloc_fn(sizeof *r);
    uint64_t x = rng_next(&seed);
    size_t n = 16 + (x & 5) * 8;
    char *p = glibc_a.malloc_fn(n);
    if (!r || !p) need(NULL, "malloc");
    r->key = x;
    r->idx = i;
    r->link = i ? idx[(x >> 8) % i] : NULL;
    fill_payload(p, n, x);
    r->payload = p;
    idx[i] = r;
  }
  uint64_t sum = walk(idx);
  for (size_t i = 0; i < NODES; i++) {
    glibc_a.free_fn(idx[i]->payload);
    glibc_a.free_fn(idx[i]);
  }
  glibc_a.free_fn(idx);
  return sum;
}

/* The server's state: a list of 64-byte nodes, rooted (or malloc'd). */
static void build_live(rctx_t *c, int variant, size_t bytes) {
  size_t n = bytes / sizeof(live_t);
  live_t *head = NULL;
  for (size_t i = 0; i < n; i++) {
    live_t *l;
    if (variant == R_GLIBC) {
      l = glibc_a.malloc_fn(sizeof *l);
      need(l, "malloc");
      memset(l, 0, sizeof *l);
      l->next = head;
      head = l;
    } else {
      l = gc_alloc(c->h, c->live_t);
      need(l, "gc_alloc");
      gc_write(c->h, l, (void **)&l->next, c->root[1]);
      c->root[1] = l;
    }
    l->pad[0] = i;
  }
  if (variant == R_GLIBC) c->root[1] = head;
}

static void request_child(const void *arg, bench_result_t *out) {
  const rjob_t *j = arg;
  static rctx_t c;
  memset(&c, 0, sizeof c);
  if (j->variant != R_GLIBC) {
    c.h = bench_gch_new();
    c.rec_t = type_of(c.h, "rec", sizeof(rec_t), 3);
    c.ptr_t = type_of(c.h, "ptr", 8, 1);
    c.live_t = type_of(c.h, "live", sizeof(live_t), 1);
    if (gc_root_add(c.h, c.root, sizeof c.root, GCH_ROOT_PRECISE) != GCH_OK)
      need(NULL, "gc_root_add");
  }
  build_live(&c, j->variant, j->live_bytes);
  uint64_t sum = 0;
  bench_timer_t t0 = bench_timer_start();
  for (int r = 0; r < j->requests; r++) {
    uint64_t seed = (uint64_t)r * 7919u + 1;
    if (j->variant == R_ARENA) sum += request_arena(&c, seed);
    else if (j->variant == R_GC) sum += request_gc(&c, seed);
    else sum += request_glibc(seed);
  }
  bench_timer_stop(t0, out);
  out->checksum = sum;
  if (c.h) bench_gch_fill(c.h, out);
}

static void part_requests(double scale) {
  static const size_t lives[] = {0, (size_t)32 << 20};
  int requests = (int)bench_scaled(50, scale, 4);
  printf("Part 2: %d requests, each building and dropping %d records + "
         "payloads + index (~%.1f MB)\n",
         requests, NODES, (NODES * (32.0 + 36 + 8)) / (1 << 20));
  printf("%-10s %-12s %9s %9s %10s %12s %6s %10s %10s\n", "live heap",
         "variant", "wall ms", "CPU ms", "ms/request", "peak RSS MB", "GCs",
         "pause max", "pause sum");
  for (size_t l = 0; l < sizeof lives / sizeof lives[0]; l++) {
    double t[NR][BENCH_RUNS], cpu[NR][BENCH_RUNS], rss[NR][BENCH_RUNS];
    double g[NR][BENCH_RUNS], pmax[NR][BENCH_RUNS], psum[NR][BENCH_RUNS];
    uint64_t want = 0;
    int have = 0;
    for (int run = 0; run < BENCH_RUNS; run++) {
      for (int v = 0; v < NR; v++) {
        if (!bench_selected(rname[v]) || (v == R_GLIBC && !glibc_a.ok)) continue;
        rjob_t j = {v, requests, lives[l]};
        bench_result_t res;
        bench_run_child(rname[v], request_child, &j, &res);
        if (!have++) want = res.checksum;
        bench_check_sum("arena/requests", rname[v], res.checksum, want);
        t[v][run] = (double)res.wall_ns / 1e6;
        cpu[v][run] = (double)res.cpu_ns / 1e6;
        rss[v][run] = (double)res.maxrss_kb / 1024.0;
        g[v][run] = (double)res.gc_cycles;
        pmax[v][run] = (double)res.pause_max_ns / 1e6;
        psum[v][run] = (double)res.pause_total_ns / 1e6;
      }
    }
    for (int v = 0; v < NR; v++) {
      if (!bench_selected(rname[v]) || (v == R_GLIBC && !glibc_a.ok)) continue;
      char label[32];
      snprintf(label, sizeof label, "%zu MiB", lives[l] >> 20);
      double wall = bench_median(t[v], BENCH_RUNS);
      printf("%-10s %-12s %9.1f %9.1f %10.3f %12.1f", label, rname[v], wall,
             bench_median(cpu[v], BENCH_RUNS), wall / requests,
             bench_median(rss[v], BENCH_RUNS));
      if (v == R_GLIBC) printf(" %6s %10s %10s\n", "-", "-", "-");
      else
        printf(" %6.0f %8.2fms %8.1fms\n", bench_median(g[v], BENCH_RUNS),
               bench_median(pmax[v], BENCH_RUNS), bench_median(psum[v], BENCH_RUNS));
    }
  }
  printf("(medians of %d runs; RSS includes the forked image and the live "
         "structure; arena chunks fault on free and are reused after a "
         "collection proves them unreferenced)\n", BENCH_RUNS);
}

int main(void) {
  double scale = bench_scale();
  glibc_a = bench_allocator_lookup("glibc", "libc.so.6");
  bench_print_header("bench_arena: user arenas vs the collector vs glibc "
                     "malloc", scale);
  if (!glibc_a.ok) printf("glibc malloc unavailable: %s\n", glibc_a.why);
  printf("baseline child RSS %.1f MB\n\n", bench_baseline_rss_mb());
  part_alloc(scale);
  part_requests(scale);
  return 0;
}
