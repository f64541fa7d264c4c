/*
 * bench_mt_trees.c -- binary-trees with 2 mutator threads (the concurrent
 * issue's benchmark): gcheap in concurrent mode against Boehm GC built with
 * GC_THREADS.  Each thread builds and checks trees of depth 4..D (both
 * collectors find the trees through conservatively scanned thread stacks,
 * so the mutator code is the same); a long-lived tree stays reachable from
 * main.  Each variant runs in its own child process; median wall time of
 * 5 runs, peak RSS, collections, max pause.
 */
#define GC_THREADS 1
#include <gc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gcheap.h"

typedef struct node {
  struct node *l, *r;
} node_t;

static int use_gcheap;
static gc_heap_t *H;
static const gc_type_t *NODE;
static int max_depth = 16;

static node_t *new_node(node_t *l, node_t *r) {
  node_t *n;
  if (use_gcheap) {
    n = gc_alloc(H, NODE);
    gc_write(H, n, (void **)&n->l, l);
    gc_write(H, n, (void **)&n->r, r);
  } else {
    n = GC_MALLOC(sizeof *n);
    n->l = l;
    n->r = r;
  }
  return n;
}

static node_t *make(int d) {
  if (d == 0) return new_node(NULL, NULL);
  node_t *l = make(d - 1);
  node_t *r = make(d - 1);
  return new_node(l, r);
}

static long check(const node_t *n) { return n->l ? 1 + check(n->l) + check(n->r) : 1; }

static void *worker(void *arg) {
  long *sum = arg;
  if (use_gcheap) gc_thread_attach(H);
  for (int d = 4; d <= max_depth; d += 2) {
    int iters = 1 << (max_depth - d + 4);
    for (int i = 0; i < iters; i++) *sum += check(make(d));
  }
  if (use_gcheap) gc_thread_detach(H);
  return NULL;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void run(int gcheap, int fd) {
  use_gcheap = gcheap;
  if (gcheap) {
    gc_config_t c = gc_config_default();
    c.mode = GCH_MODE_CONCURRENT;
    c.scan_thread_stacks = 1;
    H = gc_heap_new(&c, NULL);
    uint64_t map = 3;
    gc_type_new(H, "node", sizeof(node_t), &map, 1, &NODE);
  } else {
    GC_INIT();
  }
  double t0 = now_ms();
  node_t *volatile long_lived = make(max_depth);
  long sums[2] = {0, 0};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    if (gcheap) pthread_create(&th[i], NULL, worker, &sums[i]);
    else GC_pthread_create(&th[i], NULL, worker, &sums[i]);
  }
  if (gcheap) gc_blocking_enter(H);
  for (int i = 0; i < 2; i++) {
    if (gcheap) pthread_join(th[i], NULL);
    else GC_pthread_join(th[i], NULL);
  }
  if (gcheap) gc_blocking_leave(H);
  long total = sums[0] + sums[1] + check(long_lived);
  double ms = now_ms() - t0;
  double cycles = 0, maxp = 0;
  if (gcheap) {
    gc_stats_t s;
    gc_get_stats(H, &s);
    cycles = (double)s.cycles;
    maxp = s.pause_max_ns / 1e6;
  } else {
    cycles = (double)GC_get_gc_no();
  }
  double out[4] = {ms, (double)total, cycles, maxp};
  if (write(fd, out, sizeof out) != sizeof out) _exit(3);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  const char *sc = getenv("BENCH_SCALE");
  if (sc && atof(sc) < 0.5) max_depth = 12;
  printf("bench_mt_trees: 2 mutator threads, depth %d, %ld CPUs\n", max_depth,
         sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-28s %9s %9s %7s %11s\n", "variant", "wall ms", "RSS MB", "GCs", "max pause");
  double med[2] = {0, 0};
  long check_sum[2] = {0, 0};
  for (int v = 0; v < 2; v++) {
    double ms[5], rss = 0, gcs = 0, maxp = 0;
    for (int r = 0; r < 5; r++) {
      int p[2];
      if (pipe(p)) return 1;
      pid_t pid = fork();
      if (pid == 0) {
        run(v == 0, p[1]);
        _exit(0);
      }
      double out[4] = {0, 0, 0, 0};
      if (read(p[0], out, sizeof out) != sizeof out) out[0] = -1;
      struct rusage ru;
      int st;
      wait4(pid, &st, 0, &ru);
      close(p[0]);
      close(p[1]);
      ms[r] = out[0];
      if (ru.ru_maxrss / 1024.0 > rss) rss = ru.ru_maxrss / 1024.0;
      gcs = out[2];
      if (out[3] > maxp) maxp = out[3];
      check_sum[v] = (long)out[1];
    }
    qsort(ms, 5, sizeof ms[0], cmp);
    med[v] = ms[2];
    char pause[32];
    if (v == 0) snprintf(pause, sizeof pause, "%.3f ms", maxp);
    else snprintf(pause, sizeof pause, "n/a");
    printf("%-28s %9.1f %9.1f %7.0f %11s\n",
           v == 0 ? "gcheap concurrent" : "Boehm GC_THREADS", med[v], rss, gcs, pause);
  }
  if (check_sum[0] != check_sum[1]) {
    printf("checksums differ: %ld vs %ld\n", check_sum[0], check_sum[1]);
    return 1;
  }
  printf("gcheap/Boehm wall %.2fx (checksum %ld)\n", med[0] / med[1], check_sum[0]);
  return 0;
}
