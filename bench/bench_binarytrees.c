/*
 * bench_binarytrees.c -- the Computer Language Benchmarks Game's
 * binary-trees, max depth 16 (min depth 4).
 *
 * A stretch tree of depth max+1 is built, checked and dropped; a long-lived
 * tree of depth max is kept; then for d = 4, 6, ..., max,
 * 2^(max - d + 4) trees of depth d are built bottom-up, checked (item
 * check = node count) and dropped.  BENCH_SCALE multiplies the iteration
 * counts.  Nodes are two pointers (16 bytes).
 *
 * Variants as in bench_gcbench.c: gcheap (typed precise nodes, shadow-stack
 * roots), Boehm GC_MALLOC, and glibc / mimalloc / jemalloc with explicit
 * frees.  The checksum (all item checks plus the number of nodes
 * allocated) must agree across variants.
 */
/* Boehm GC: its names are GC_*, ours gc_* and GCH_*. */
#include <gc.h>
#include <gcheap.h>
#include <mimalloc.h>

#include "benchutil.h"

enum { MIN_DEPTH = 4, DEFAULT_MAX_DEPTH = 16 };

typedef struct node {
  struct node *left, *right;
} node_t;

enum { V_GCHEAP, V_BOEHM, V_GLIBC, V_MI, V_JE, NV };
static const char *const vname[NV] = {"gcheap", "Boehm GC",
                                      "glibc malloc/free", "mimalloc",
                                      "jemalloc"};

static double g_scale;
static int g_max_depth = DEFAULT_MAX_DEPTH;
static uint64_t g_nodes; /* nodes allocated */
static uint64_t g_check; /* sum of item checks */

static uint64_t iterations(int d) {
  return bench_scaled(1ull << (g_max_depth - d + MIN_DEPTH), g_scale, 1);
}

static uint64_t item_check(const node_t *n) {
  return n->left ? 1 + item_check(n->left) + item_check(n->right) : 1;
}

static void expect(uint64_t got, int depth) {
  uint64_t want = (2ull << depth) - 1;
  if (got != want) {
    fprintf(stderr, "binarytrees: depth %d check %llu, want %llu\n", depth,
            (unsigned long long)got, (unsigned long long)want);
    exit(5);
  }
  g_check += got;
}

/* ------------------------------------------------------------- gcheap */

static gc_heap_t *H;
static const gc_type_t *T_node;

static inline node_t *gch_new(void) {
  node_t *n = gc_alloc(H, T_node);
  if (GCH_UNLIKELY(!n)) bench_gch_oom(H, sizeof *n);
  g_nodes++;
  return n;
}

/* The result is unrooted: the caller roots it before allocating again. */
static node_t *gch_tree(int depth) {
  if (depth <= 0) return gch_new();
  node_t *l = gch_tree(depth - 1);
  bench_shadow_push(l);
  node_t *r = gch_tree(depth - 1);
  bench_shadow_push(r);
  node_t *n = gch_new();
  gc_write(H, n, (void **)&n->left, l);
  gc_write(H, n, (void **)&n->right, r);
  bench_shadow_pop(2);
  return n;
}

static void run_gcheap(bench_result_t *out) {
  H = bench_gch_new();
  uint64_t map = 3; /* both words are pointers */
  if (gc_type_new(H, "node", sizeof(node_t), &map, 1, &T_node) != GCH_OK) {
    fprintf(stderr, "binarytrees: gc_type_new failed\n");
    exit(4);
  }
  bench_shadow_register(H);
  bench_timer_t t0 = bench_timer_start();
  expect(item_check(gch_tree(g_max_depth + 1)), g_max_depth + 1);
  node_t *ll = gch_tree(g_max_depth);
  bench_shadow_push(ll);
  for (int d = MIN_DEPTH; d <= g_max_depth; d += 2) {
    uint64_t n = iterations(d);
    for (uint64_t i = 0; i < n; i++) expect(item_check(gch_tree(d)), d);
  }
  expect(item_check(ll), g_max_depth);
  bench_timer_stop(t0, out);
  bench_shadow_pop(1);
  bench_gch_fill(H, out);
}

/* -------------------------------------------------------------- Boehm */

static node_t *b_tree(int depth) {
  node_t *n;
  if (depth <= 0) {
    n = GC_MALLOC(sizeof *n);
    if (!n) exit(4);
  } else {
    node_t *l = b_tree(depth - 1);
    node_t *r = b_tree(depth - 1);
    n = GC_MALLOC(sizeof *n);
    if (!n) exit(4);
    n->left = l;
    n->right = r;
  }
  g_nodes++;
  return n;
}

static void run_boehm(bench_result_t *out) {
  bench_boehm_init();
  bench_timer_t t0 = bench_timer_start();
  expect(item_check(b_tree(g_max_depth + 1)), g_max_depth + 1);
  node_t *ll = b_tree(g_max_depth);
  for (int d = MIN_DEPTH; d <= g_max_depth; d += 2) {
    uint64_t n = iterations(d);
    for (uint64_t i = 0; i < n; i++) expect(item_check(b_tree(d)), d);
  }
  expect(item_check(ll), g_max_depth);
  bench_timer_stop(t0, out);
  bench_boehm_fill(out);
}

/* ------------------------------------------------- malloc with free */

static bench_malloc_fn M;
static bench_free_fn F;

static node_t *m_tree(int depth) {
  node_t *n = M(sizeof *n);
  if (!n) exit(4);
  g_nodes++;
  if (depth <= 0) {
    n->left = n->right = NULL;
  } else {
    n->left = m_tree(depth - 1);
    n->right = m_tree(depth - 1);
  }
  return n;
}

static void m_free_tree(node_t *n) {
  while (n) {
    node_t *r = n->right;
    if (n->left) m_free_tree(n->left);
    F(n);
    n = r;
  }
}

static uint64_t m_check_free(node_t *t) {
  uint64_t c = item_check(t);
  m_free_tree(t);
  return c;
}

static void run_malloc(bench_result_t *out) {
  bench_timer_t t0 = bench_timer_start();
  expect(m_check_free(m_tree(g_max_depth + 1)), g_max_depth + 1);
  node_t *ll = m_tree(g_max_depth);
  for (int d = MIN_DEPTH; d <= g_max_depth; d += 2) {
    uint64_t n = iterations(d);
    for (uint64_t i = 0; i < n; i++) expect(m_check_free(m_tree(d)), d);
  }
  expect(m_check_free(ll), g_max_depth);
  bench_timer_stop(t0, out);
}

/* ------------------------------------------------------------- driver */

/* The checksum every variant must compute: item checks and nodes
 * allocated are both the total number of nodes. */
static uint64_t expected_checksum(void) {
  uint64_t n = (4ull << g_max_depth) - 1 + (2ull << g_max_depth) - 1;
  for (int d = MIN_DEPTH; d <= g_max_depth; d += 2)
    n += iterations(d) * ((2ull << d) - 1);
  return n * 31u + n;
}


static bench_allocator_t glibc_a, je_a, mi_a;

static void child(const void *arg, bench_result_t *out) {
  int v = *(const int *)arg;
  switch (v) {
  case V_GCHEAP:
    run_gcheap(out);
    break;
  case V_BOEHM:
    run_boehm(out);
    break;
  default: {
    const bench_allocator_t *a =
        v == V_GLIBC ? &glibc_a : v == V_JE ? &je_a : &mi_a;
    M = a->malloc_fn;
    F = a->free_fn;
    run_malloc(out);
    break;
  }
  }
  out->checksum = g_check * 31u + g_nodes;
}

static int available(int v) {
  if (!bench_selected(vname[v])) return 0;
  if (v == V_GLIBC) return glibc_a.ok;
  if (v == V_JE) return je_a.ok;
  return 1;
}

int main(void) {
  g_scale = bench_scale();
  glibc_a = bench_allocator_lookup("glibc", "libc.so.6");
  je_a = bench_allocator_lookup("jemalloc", "libjemalloc.so.2");
  mi_a.name = "mimalloc";
  mi_a.malloc_fn = mi_malloc;
  mi_a.free_fn = mi_free;
  mi_a.ok = 1;
  char title[160];
  snprintf(title, sizeof title,
           "bench_binarytrees: benchmarks-game binary-trees, max depth %d "
           "(min %d, stretch %d)",
           g_max_depth, MIN_DEPTH, g_max_depth + 1);
  bench_print_header(title, g_scale);
  if (!glibc_a.ok) printf("glibc malloc unavailable: %s\n", glibc_a.why);
  if (!je_a.ok) printf("jemalloc unavailable: %s\n", je_a.why);
  printf("iterations:");
  for (int d = MIN_DEPTH; d <= g_max_depth; d += 2)
    printf(" d%d=%llu", d, (unsigned long long)iterations(d));
  printf("\nbaseline child RSS %.1f MB (included in the RSS figures)\n\n",
         bench_baseline_rss_mb());

  double t[NV][BENCH_RUNS], rss[NV][BENCH_RUNS], pmax[NV][BENCH_RUNS];
  double ptot[NV][BENCH_RUNS], gcs[NV][BENCH_RUNS], cpu[NV][BENCH_RUNS];
  int has_gc[NV] = {0};
  uint64_t want = expected_checksum();
  for (int run = 0; run < BENCH_RUNS; run++) {
    for (int v = 0; v < NV; v++) {
      if (!available(v)) continue;
      bench_result_t r;
      bench_run_child(vname[v], child, &v, &r);
      bench_check_sum("binarytrees", vname[v], r.checksum, want);
      t[v][run] = (double)r.wall_ns / 1e6;
      cpu[v][run] = (double)r.cpu_ns / 1e6;
      rss[v][run] = (double)r.maxrss_kb / 1024.0;
      pmax[v][run] = (double)r.pause_max_ns / 1e6;
      ptot[v][run] = (double)r.pause_total_ns / 1e6;
      gcs[v][run] = (double)r.gc_cycles;
      has_gc[v] = r.has_gc;
    }
  }

  double mt[NV] = {0}, mr[NV] = {0}, mc[NV] = {0};
  for (int v = 0; v < NV; v++) {
    if (!available(v)) continue;
    mt[v] = bench_median(t[v], BENCH_RUNS);
    mr[v] = bench_median(rss[v], BENCH_RUNS);
    mc[v] = bench_median(cpu[v], BENCH_RUNS);
  }
  bench_print_table_header();
  for (int v = 0; v < NV; v++) {
    if (!available(v)) continue;
    bench_print_row(vname[v], mt[v], mc[v], mt[V_BOEHM], mt[V_MI], mr[v],
                    has_gc[v], gcs[v], pmax[v], ptot[v]);
  }
  bench_print_summary(mt, mc, mr, V_GCHEAP, V_BOEHM, V_MI, want);
  return 0;
}
