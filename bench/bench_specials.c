/*
 * bench_specials.c -- what specials cost.
 *
 * 1. Heap profiling: a GCBench-like loop (binary trees of 24-byte typed
 *    nodes built top-down and bottom-up, depths 4..16, a long-lived tree
 *    and array beside them) with profile_rate at its default (512 KiB,
 *    native stacks through backtrace()) against profiling off.  Target:
 *    under 2% slower.
 * 2. Finalizers: 10^6 objects (32-byte typed nodes) per cycle, with and
 *    without a finalizer each:
 *      churn  allocate (and arm) 10^6 objects, drop them, collect (the
 *             finalizers are queued and their objects revived), run the
 *             queue, collect again (the objects are freed);
 *      live   10^6 armed objects kept reachable: one gc_collect.
 *    Per cycle wall time, the part of it spent arming, and the pauses.
 *
 * Every variant runs in its own forked child, BENCH_RUNS x 2 interleaved
 * runs; medians of wall and CPU time.  BENCH_SCALE multiplies the work.
 */
#include <gcheap.h>

#include "benchutil.h"

#define RUNS (2 * BENCH_RUNS)

static double g_scale;

/* ---------------------------------------------------- 1. gcbench-like */

typedef struct node {
  struct node *left, *right;
  int i, j;
} node_t;

static gc_heap_t *H;
static const gc_type_t *T_node;
static uint64_t g_nodes;

static inline node_t *new_node(int tag) {
  node_t *n = gc_alloc(H, T_node);
  if (GCH_UNLIKELY(!n)) bench_gch_oom(H, sizeof *n);
  n->i = tag;
  g_nodes++;
  return n;
}

static void populate(int depth, node_t *node) {
  if (depth <= 0) return;
  depth--;
  gc_write(H, node, (void **)&node->left, new_node(depth));
  gc_write(H, node, (void **)&node->right, new_node(depth));
  populate(depth, node->left);
  populate(depth, node->right);
}

static node_t *make_tree(int depth) {
  if (depth <= 0) return new_node(0);
  node_t *l = make_tree(depth - 1);
  bench_shadow_push(l);
  node_t *r = make_tree(depth - 1);
  bench_shadow_push(r);
  node_t *n = new_node(depth);
  gc_write(H, n, (void **)&n->left, l);
  gc_write(H, n, (void **)&n->right, r);
  bench_shadow_pop(2);
  return n;
}

static uint64_t count(const node_t *n) {
  uint64_t c = 0;
  while (n) {
    c++;
    c += count(n->left);
    n = n->right;
  }
  return c;
}

static void gcbench(const void *arg, bench_result_t *out) {
  long rate = *(const long *)arg;
  gc_config_t c = gc_config_default();
  c.profile_rate = rate;
  gc_result_t err;
  H = gc_heap_new(&c, &err);
  if (!H) exit(4);
  uint64_t map = 3;
  if (gc_type_new(H, "node", sizeof(node_t), &map, 1, &T_node) != GCH_OK) exit(4);
  bench_shadow_register(H);
  bench_timer_t t0 = bench_timer_start();
  uint64_t check = count(make_tree(17));
  node_t *ll = new_node(16);
  bench_shadow_push(ll);
  populate(16, ll);
  double *arr = gc_malloc(H, 500000 * sizeof(double), GCH_NOSCAN);
  bench_shadow_push(arr);
  for (int d = 4; d <= 16; d += 2) {
    int iters = (int)bench_scaled(2u * ((1u << 18) - 1) / ((1u << (d + 1)) - 1), g_scale, 1);
    for (int i = 0; i < iters; i++) {
      node_t *t = new_node(d);
      bench_shadow_push(t);
      populate(d, t);
      bench_shadow_pop(1);
      t = make_tree(d);
      if (i == iters - 1) check += count(t);
    }
  }
  check += count(ll);
  bench_timer_stop(t0, out);
  bench_shadow_pop(2);
  gc_stats_t s;
  gc_get_stats(H, &s);
  out->checksum = check * 1000003u + g_nodes;
  out->has_gc = 1;
  out->gc_cycles = s.profile_samples; /* reported as "samples" */
  out->pause_max_ns = s.pause_max_ns;
  out->pause_total_ns = s.cycles;
}

static void bench_profiling(void) {
  static const long rates[2] = {-1, 0};
  static const char *names[2] = {"profile off", "profile 512 KiB"};
  double wall[2][RUNS], cpu[2][RUNS], samples[2][RUNS];
  uint64_t sum = 0;
  for (int r = 0; r < RUNS; r++) {
    for (int v = 0; v < 2; v++) {
      bench_result_t res;
      bench_run_child(names[v], gcbench, &rates[v], &res);
      if (!sum) sum = res.checksum;
      bench_check_sum("specials/gcbench", names[v], res.checksum, sum);
      wall[v][r] = (double)res.wall_ns / 1e6;
      cpu[v][r] = (double)res.cpu_ns / 1e6;
      samples[v][r] = (double)res.gc_cycles;
    }
  }
  printf("\n1. heap profiling on a GCBench-like loop (%d interleaved runs each)\n", RUNS);
  printf("%-18s %10s %10s %10s %10s\n", "variant", "wall ms", "CPU ms", "min CPU", "samples");
  for (int v = 0; v < 2; v++) {
    double mn = cpu[v][0];
    for (int r = 1; r < RUNS; r++) mn = cpu[v][r] < mn ? cpu[v][r] : mn;
    printf("%-18s %10.1f %10.1f %10.1f %10.0f\n", names[v], bench_median(wall[v], RUNS),
           bench_median(cpu[v], RUNS), mn, bench_median(samples[v], RUNS));
  }
  double mw0 = bench_median(wall[0], RUNS), mw1 = bench_median(wall[1], RUNS);
  double mc0 = bench_median(cpu[0], RUNS), mc1 = bench_median(cpu[1], RUNS);
  printf("profiling at the default rate: wall %+.2f%%, CPU %+.2f%% (target < 2%%)\n",
         100 * (mw1 / mw0 - 1), 100 * (mc1 / mc0 - 1));
}

/* --------------------------------------------------- 2. finalizers */

typedef struct obj {
  struct obj *next;
  uint64_t a, b, c;
} obj_t;

static uint64_t g_finalized;
static void fin(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)ctx;
  g_finalized += ((obj_t *)obj)->a;
}

typedef struct fin_arg {
  int with_fin, live;
} fin_arg_t;

enum { NOBJ = 1000000, CYCLES = 3 };

static void finbench(const void *argp, bench_result_t *out) {
  const fin_arg_t *arg = argp;
  gc_config_t c = gc_config_default();
  c.gc_percent = -1; /* only the collections we ask for */
  c.profile_rate = -1;
  gc_result_t err;
  gc_heap_t *h = gc_heap_new(&c, &err);
  if (!h) exit(4);
  const gc_type_t *t;
  uint64_t map = 1;
  if (gc_type_new(h, "obj", sizeof(obj_t), &map, 1, &t) != GCH_OK) exit(4);
  size_t n = (size_t)bench_scaled(NOBJ, g_scale, 1000);
  void **roots = calloc(n, sizeof *roots);
  if (!roots || gc_root_add(h, roots, n * sizeof *roots, GCH_ROOT_PRECISE) != GCH_OK)
    exit(4);
  uint64_t arm_ns = 0, pause_ns = 0;
  bench_timer_t t0 = bench_timer_start();
  for (int cy = 0; cy < CYCLES; cy++) {
    uint64_t a0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
      obj_t *o = gc_alloc(h, t);
      if (!o) exit(4);
      o->a = 1;
      roots[i] = o;
    }
    uint64_t a1 = bench_now_ns();
    if (arg->with_fin)
      for (size_t i = 0; i < n; i++)
        if (gc_set_finalizer(h, roots[i], fin, NULL) != GCH_OK) exit(4);
    arm_ns += bench_now_ns() - a1;
    (void)a0;
    gc_stats_t s;
    if (arg->live) {
      gc_collect(h);
      gc_get_stats(h, &s);
      pause_ns += s.pause_last_ns;
      /* not timed: drop and reclaim them for the next cycle */
      memset(roots, 0, n * sizeof *roots);
      if (arg->with_fin) {
        gc_collect(h);
        gc_run_finalizers(h);
      }
      gc_collect(h);
      continue;
    }
    memset(roots, 0, n * sizeof *roots);
    gc_collect(h);
    gc_get_stats(h, &s);
    pause_ns += s.pause_last_ns;
    gc_run_finalizers(h);
    gc_collect(h);
    gc_get_stats(h, &s);
    pause_ns += s.pause_last_ns;
  }
  bench_timer_stop(t0, out);
  if (arg->live) { /* only the measured collections */
    out->wall_ns = pause_ns;
    out->cpu_ns = pause_ns;
  }
  out->checksum = arg->with_fin ? g_finalized : (uint64_t)CYCLES * n;
  out->has_gc = 1;
  out->pause_max_ns = arm_ns / CYCLES;
  out->pause_total_ns = pause_ns / CYCLES;
}

static void bench_finalizers(void) {
  static const fin_arg_t args[4] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
  static const char *names[4] = {"churn, plain", "churn, finalizers",
                                 "live, plain", "live, finalizers"};
  double wall[4][RUNS], arm[4][RUNS], pause[4][RUNS];
  for (int r = 0; r < RUNS; r++) {
    for (int v = 0; v < 4; v++) {
      bench_result_t res;
      bench_run_child(names[v], finbench, &args[v], &res);
      wall[v][r] = (double)res.wall_ns / 1e6 / CYCLES;
      arm[v][r] = (double)res.pause_max_ns / 1e6;
      pause[v][r] = (double)res.pause_total_ns / 1e6;
    }
  }
  size_t n = (size_t)bench_scaled(NOBJ, g_scale, 1000);
  printf("\n2. %zu objects of 32 B per cycle (%d cycles per run, %d runs; medians)\n", n,
         CYCLES, RUNS);
  printf("   churn: alloc (+arm) -> drop -> collect -> run finalizers -> collect\n");
  printf("   live:  %zu armed objects reachable -> one collect (its pause)\n", n);
  printf("%-20s %12s %12s %14s %12s\n", "variant", "ms/cycle", "arm ms", "pauses ms",
         "ns/object");
  for (int v = 0; v < 4; v++) {
    double w = bench_median(wall[v], RUNS);
    printf("%-20s %12.1f %12.1f %14.1f %12.1f\n", names[v], w, bench_median(arm[v], RUNS),
           bench_median(pause[v], RUNS), w * 1e6 / (double)n);
  }
  double c0 = bench_median(wall[0], RUNS), c1 = bench_median(wall[1], RUNS);
  double l0 = bench_median(wall[2], RUNS), l1 = bench_median(wall[3], RUNS);
  printf("finalizers add %.0f ns per object per churn cycle (%.2fx), "
         "%.1f ns per live armed object per collection (%.2fx)\n",
         (c1 - c0) * 1e6 / (double)n, c1 / c0, (l1 - l0) * 1e6 / (double)n, l1 / l0);
}

int main(void) {
  g_scale = bench_scale();
  bench_print_header("bench_specials: the cost of heap profiling and finalizers", g_scale);
  if (bench_selected("profile")) bench_profiling();
  if (bench_selected("final")) bench_finalizers();
  return 0;
}
