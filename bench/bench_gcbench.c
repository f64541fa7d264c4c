/*
 * bench_gcbench.c -- the Ellis/Kovac/Boehm GCBench.
 *
 * A stretch tree of depth 17 (built and dropped); a long-lived tree of
 * depth 16 and a long-lived array of 500,000 doubles; then for depth 4..16
 * step 2, NumIters(d) = 2 * TreeSize(17) / TreeSize(d) trees built top-down
 * (Populate) and as many bottom-up (MakeTree), each dropped at once.  Nodes
 * are 2 pointers + 2 ints (24 bytes).  BENCH_SCALE multiplies NumIters.
 *
 * Variants: gcheap (typed precise nodes; roots on a shadow stack reported
 * by a root callback, so every node under construction is reachable from a
 * root whenever an allocation may collect), Boehm (GC_MALLOC, conservative
 * stack scanning), and glibc malloc, mimalloc and jemalloc with explicit
 * recursive frees of every dropped tree.
 *
 * Verification: the last tree of each loop, the stretch tree and the
 * long-lived tree are walked (node count and the sum of the depth tags in
 * field i); the sums and the number of nodes allocated form the checksum,
 * which must agree across variants.
 */
/* Boehm GC: its names are GC_*, ours gc_* and GCH_*. */
#include <gc.h>
#include <gcheap.h>
#include <mimalloc.h>

#include "benchutil.h"

enum { STRETCH_DEPTH = 17, LONG_LIVED_DEPTH = 16, ARRAY_SIZE = 500000 };
enum { MIN_DEPTH = 4, MAX_DEPTH = 16 };

typedef struct node {
  struct node *left, *right;
  int i, j;
} node_t;

enum { V_GCHEAP, V_BOEHM, V_GLIBC, V_MI, V_JE, NV };
static const char *const vname[NV] = {"gcheap", "Boehm GC",
                                      "glibc malloc/free", "mimalloc",
                                      "jemalloc"};

static double g_scale;
static uint64_t g_nodes; /* nodes allocated */
static uint64_t g_check; /* walk results */

static int tree_size(int d) { return (1 << (d + 1)) - 1; }

static int num_iters(int d) {
  uint64_t n = 2u * (uint64_t)tree_size(STRETCH_DEPTH) / (uint64_t)tree_size(d);
  return (int)bench_scaled(n, g_scale, 1);
}

/* Count nodes and sum their tags; no allocation happens here. */
static void walk(const node_t *n, uint64_t *count, uint64_t *tags) {
  while (n) {
    ++*count;
    *tags += (uint64_t)n->i;
    walk(n->left, count, tags);
    n = n->right;
  }
}

static void validate(const node_t *t, int depth) {
  uint64_t count = 0, tags = 0;
  walk(t, &count, &tags);
  if (count != (uint64_t)tree_size(depth)) {
    fprintf(stderr, "gcbench: tree of depth %d has %llu nodes, want %d\n",
            depth, (unsigned long long)count, tree_size(depth));
    exit(5);
  }
  g_check += count * 1000003u + tags;
}

static void check_array(const double *a) {
  if (a[1000] != 1.0 / 1000) {
    fprintf(stderr, "gcbench: long-lived array damaged\n");
    exit(5);
  }
  g_check += 77;
}

/* ------------------------------------------------------------- gcheap */

static gc_heap_t *H;
static const gc_type_t *T_node;

static inline node_t *gch_new(int tag) {
  node_t *n = gc_alloc(H, T_node);
  if (GCH_UNLIKELY(!n)) bench_gch_oom(H, sizeof *n);
  n->i = tag;
  g_nodes++;
  return n;
}

/* node is reachable from a root. */
static void gch_populate(int depth, node_t *node) {
  if (depth <= 0) return;
  depth--;
  gc_write(H, node, (void **)&node->left, gch_new(depth));
  gc_write(H, node, (void **)&node->right, gch_new(depth));
  gch_populate(depth, node->left);
  gch_populate(depth, node->right);
}

/* The result is unrooted: the caller roots it before allocating again. */
static node_t *gch_make_tree(int depth) {
  if (depth <= 0) return gch_new(0);
  node_t *l = gch_make_tree(depth - 1);
  bench_shadow_push(l);
  node_t *r = gch_make_tree(depth - 1);
  bench_shadow_push(r);
  node_t *n = gch_new(depth);
  gc_write(H, n, (void **)&n->left, l);
  gc_write(H, n, (void **)&n->right, r);
  bench_shadow_pop(2);
  return n;
}

static void gch_time_construction(int depth) {
  int iters = num_iters(depth);
  for (int i = 0; i < iters; i++) {
    node_t *t = gch_new(depth);
    bench_shadow_push(t);
    gch_populate(depth, t);
    if (i == iters - 1) validate(t, depth);
    bench_shadow_pop(1);
  }
  for (int i = 0; i < iters; i++) {
    node_t *t = gch_make_tree(depth);
    if (i == iters - 1) validate(t, depth);
  }
}

static void run_gcheap(bench_result_t *out) {
  H = bench_gch_new();
  uint64_t map = 3; /* words 0 and 1 are pointers */
  if (gc_type_new(H, "node", sizeof(node_t), &map, 1, &T_node) != GCH_OK) {
    fprintf(stderr, "gcbench: gc_type_new failed\n");
    exit(4);
  }
  bench_shadow_register(H);
  bench_timer_t t0 = bench_timer_start();
  validate(gch_make_tree(STRETCH_DEPTH), STRETCH_DEPTH);
  node_t *ll = gch_new(LONG_LIVED_DEPTH);
  bench_shadow_push(ll);
  gch_populate(LONG_LIVED_DEPTH, ll);
  double *arr = gc_malloc(H, ARRAY_SIZE * sizeof(double), GCH_NOSCAN);
  if (!arr) bench_gch_oom(H, ARRAY_SIZE * sizeof(double));
  bench_shadow_push(arr);
  for (int i = 0; i < ARRAY_SIZE / 2; i++) arr[i] = 1.0 / i;
  for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) gch_time_construction(d);
  validate(ll, LONG_LIVED_DEPTH);
  check_array(arr);
  bench_timer_stop(t0, out);
  bench_shadow_pop(2);
  bench_gch_fill(H, out);
}

/* -------------------------------------------------------------- Boehm */

static inline node_t *b_new(int tag) {
  node_t *n = GC_MALLOC(sizeof *n);
  if (!n) exit(4);
  n->i = tag;
  g_nodes++;
  return n;
}

static void b_populate(int depth, node_t *node) {
  if (depth <= 0) return;
  depth--;
  node->left = b_new(depth);
  node->right = b_new(depth);
  b_populate(depth, node->left);
  b_populate(depth, node->right);
}

static node_t *b_make_tree(int depth) {
  if (depth <= 0) return b_new(0);
  node_t *l = b_make_tree(depth - 1);
  node_t *r = b_make_tree(depth - 1);
  node_t *n = b_new(depth);
  n->left = l;
  n->right = r;
  return n;
}

static void b_time_construction(int depth) {
  int iters = num_iters(depth);
  for (int i = 0; i < iters; i++) {
    node_t *t = b_new(depth);
    b_populate(depth, t);
    if (i == iters - 1) validate(t, depth);
  }
  for (int i = 0; i < iters; i++) {
    node_t *t = b_make_tree(depth);
    if (i == iters - 1) validate(t, depth);
  }
}

static void run_boehm(bench_result_t *out) {
  bench_boehm_init();
  bench_timer_t t0 = bench_timer_start();
  validate(b_make_tree(STRETCH_DEPTH), STRETCH_DEPTH);
  node_t *ll = b_new(LONG_LIVED_DEPTH);
  b_populate(LONG_LIVED_DEPTH, ll);
  double *arr = GC_MALLOC_ATOMIC(ARRAY_SIZE * sizeof(double));
  if (!arr) exit(4);
  for (int i = 0; i < ARRAY_SIZE / 2; i++) arr[i] = 1.0 / i;
  for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) b_time_construction(d);
  validate(ll, LONG_LIVED_DEPTH);
  check_array(arr);
  bench_timer_stop(t0, out);
  bench_boehm_fill(out);
  /* keep ll and arr visibly live to the end */
  __asm__ volatile("" ::"r"(ll), "r"(arr) : "memory");
}

/* ------------------------------------------------- malloc with free */

static bench_malloc_fn M;
static bench_free_fn F;

static inline node_t *m_new(int tag) {
  node_t *n = M(sizeof *n);
  if (!n) exit(4);
  n->left = n->right = NULL;
  n->i = tag;
  n->j = 0;
  g_nodes++;
  return n;
}

static void m_free_tree(node_t *n) {
  while (n) {
    node_t *r = n->right;
    m_free_tree(n->left);
    F(n);
    n = r;
  }
}

static void m_populate(int depth, node_t *node) {
  if (depth <= 0) return;
  depth--;
  node->left = m_new(depth);
  node->right = m_new(depth);
  m_populate(depth, node->left);
  m_populate(depth, node->right);
}

static node_t *m_make_tree(int depth) {
  if (depth <= 0) return m_new(0);
  node_t *l = m_make_tree(depth - 1);
  node_t *r = m_make_tree(depth - 1);
  node_t *n = m_new(depth);
  n->left = l;
  n->right = r;
  return n;
}

static void m_time_construction(int depth) {
  int iters = num_iters(depth);
  for (int i = 0; i < iters; i++) {
    node_t *t = m_new(depth);
    m_populate(depth, t);
    if (i == iters - 1) validate(t, depth);
    m_free_tree(t);
  }
  for (int i = 0; i < iters; i++) {
    node_t *t = m_make_tree(depth);
    if (i == iters - 1) validate(t, depth);
    m_free_tree(t);
  }
}

static void run_malloc(bench_result_t *out) {
  bench_timer_t t0 = bench_timer_start();
  node_t *st = m_make_tree(STRETCH_DEPTH);
  validate(st, STRETCH_DEPTH);
  m_free_tree(st);
  node_t *ll = m_new(LONG_LIVED_DEPTH);
  m_populate(LONG_LIVED_DEPTH, ll);
  double *arr = M(ARRAY_SIZE * sizeof(double));
  if (!arr) exit(4);
  for (int i = 0; i < ARRAY_SIZE / 2; i++) arr[i] = 1.0 / i;
  for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) m_time_construction(d);
  validate(ll, LONG_LIVED_DEPTH);
  check_array(arr);
  m_free_tree(ll);
  F(arr);
  bench_timer_stop(t0, out);
}

/* ------------------------------------------------------------- driver */

/* The checksum every variant must compute (see validate and child). */
static uint64_t expected_checksum(void) {
  uint64_t check = 77, nodes = 0;
  /* a walked tree of depth d: count * 1000003 + the sum of its tags */
  uint64_t walked[STRETCH_DEPTH + 1];
  for (int d = 0; d <= STRETCH_DEPTH; d++) {
    uint64_t tags = 0;
    for (int j = 0; j <= d; j++) tags += ((uint64_t)1 << j) * (uint64_t)(d - j);
    walked[d] = (uint64_t)tree_size(d) * 1000003u + tags;
  }
  check += walked[STRETCH_DEPTH] + walked[LONG_LIVED_DEPTH];
  nodes += (uint64_t)tree_size(STRETCH_DEPTH) + (uint64_t)tree_size(LONG_LIVED_DEPTH);
  for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) {
    check += 2 * walked[d];
    nodes += 2 * (uint64_t)num_iters(d) * (uint64_t)tree_size(d);
  }
  return check * 31u + nodes;
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
  bench_print_header("bench_gcbench: Ellis/Kovac/Boehm GCBench (stretch 17, "
                     "long-lived tree 16 + 500,000 doubles, depths 4..16)",
                     g_scale);
  if (!glibc_a.ok) printf("glibc malloc unavailable: %s\n", glibc_a.why);
  if (!je_a.ok) printf("jemalloc unavailable: %s\n", je_a.why);
  printf("NumIters:");
  for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2)
    printf(" d%d=%d", d, num_iters(d));
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
      bench_check_sum("gcbench", vname[v], r.checksum, want);
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
