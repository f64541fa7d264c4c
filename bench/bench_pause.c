/*
 * bench_pause.c -- pause times and mark throughput (the concurrent issue).
 *
 *  1. Pauses: a live heap of small linked objects (default 1 GiB; scaled by
 *     BENCH_SCALE), one thread allocating and mutating steadily (replacing
 *     list cells through the barrier, so the live size stays put) for a few
 *     seconds in concurrent mode.  Reports every stop-the-world pause seen:
 *     count, max, p99, and the minimum mutator utilisation over 20 ms
 *     windows (MMU: the worst share of any 20 ms window left to the
 *     mutator, counting the stops).
 *  2. Mark throughput: the same heap shape (256 MiB scaled), one forced
 *     full collection, MB of live heap marked per second of mark time,
 *     for gcheap with 1 and 2 mark workers (concurrent mode, timing the
 *     concurrent mark) and Boehm GC with 1 and 2 markers (GC_MARKERS).
 * Each variant runs in its own child process.
 */
#define GC_THREADS 1 /* Boehm's parallel marker */
#include <gc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gcheap.h"

typedef struct cell {
  struct cell *next;
  uint64_t value;
  uint64_t pad[2];
} cell_t;

#define LIST_LEN 32

static double scale(void) {
  const char *s = getenv("BENCH_SCALE");
  double v = s ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* ---------------------------------------------------------------- gcheap */

static gc_heap_t *H;
static const gc_type_t *CELL, *PTR;
static cell_t **heads; /* a large pointer array: scanned in oblets */
static size_t nheads;

static void gch_build(size_t live_bytes, int mode, unsigned workers) {
  gc_config_t c = gc_config_default();
  c.mode = mode;
  c.mark_workers = workers;
  gc_result_t err;
  H = gc_heap_new(&c, &err);
  if (!H) exit(2);
  uint64_t m1 = 1;
  gc_type_new(H, "cell", sizeof(cell_t), &m1, 1, &CELL);
  gc_type_new(H, "ptr", 8, &m1, 1, &PTR);
  nheads = live_bytes / (sizeof(cell_t) * LIST_LEN);
  heads = gc_alloc_array(H, PTR, nheads);
  gc_root_add(H, &heads, sizeof heads, GCH_ROOT_PRECISE);
  for (size_t i = 0; i < nheads; i++) {
    for (int k = 0; k < LIST_LEN; k++) {
      cell_t *cl = gc_alloc(H, CELL);
      cl->value = i;
      gc_write(H, cl, (void **)&cl->next, heads[i]);
      gc_write(H, heads, (void **)&heads[i], cl);
    }
  }
}

typedef struct pause {
  uint64_t end, dur;
} pause_t;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Worst share of any window of length w taken by pauses. */
static double mmu(const pause_t *p, size_t n, uint64_t w, uint64_t t0, uint64_t t1) {
  double worst = 0;
  for (size_t i = 0; i < 2 * n; i++) {
    uint64_t ws = i < n ? p[i].end - p[i].dur : (p[i - n].end > w ? p[i - n].end - w : 0);
    if (ws < t0) ws = t0;
    uint64_t we = ws + w;
    if (we > t1) continue;
    uint64_t busy = 0;
    for (size_t k = 0; k < n; k++) {
      uint64_t s = p[k].end - p[k].dur, e = p[k].end;
      if (e <= ws || s >= we) continue;
      busy += (e < we ? e : we) - (s > ws ? s : ws);
    }
    double f = (double)busy / (double)w;
    if (f > worst) worst = f;
  }
  return 1.0 - worst;
}

static void run_pauses(double secs) {
  size_t live = (size_t)(1024.0 * scale()) << 20;
  uint64_t b0 = now_ns();
  gch_build(live, GCH_MODE_CONCURRENT, 0);
  gc_collect(H);
  uint64_t b1 = now_ns();
  gc_stats_t s;
  gc_get_stats(H, &s);
  uint64_t seen = s.pause_count;
  size_t cap = 4096, n = 0;
  pause_t *ps = malloc(cap * sizeof *ps);
  uint64_t t0 = now_ns(), last_poll = t0, ops = 0;
  gc_get_stats(H, &s);
  uint64_t c0 = s.cycles;
  /* At least `secs` seconds and at least 3 cycles (capped at 60 s). */
  while (now_ns() - t0 < (uint64_t)(secs * 1e9) ||
         (s.cycles - c0 < 3 && now_ns() - t0 < 60000000000ull)) {
    for (int k = 0; k < 1000; k++) {
      size_t i = xr() % nheads;
      cell_t *cl = gc_alloc(H, CELL); /* replace the head cell */
      cl->value = i;
      gc_write(H, cl, (void **)&cl->next, heads[i]->next);
      gc_write(H, heads, (void **)&heads[i], cl);
      ops++;
    }
    if (now_ns() - last_poll > 20000000) {
      last_poll = now_ns();
      gc_get_stats(H, &s);
      for (; seen < s.pause_count && n < cap; seen++) {
        if (s.pause_count - seen > GCH_PAUSE_RING) seen = s.pause_count - GCH_PAUSE_RING;
        ps[n].dur = s.pause_ns[seen % GCH_PAUSE_RING];
        ps[n].end = s.pause_end_ns[seen % GCH_PAUSE_RING];
        n++;
      }
    }
  }
  uint64_t t1 = now_ns();
  gc_get_stats(H, &s);
  uint64_t *d = malloc((n + 1) * sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = ps[i].dur;
  qsort(d, n, sizeof *d, cmp_u64);
  double maxp = n ? d[n - 1] / 1e6 : 0;
  double p99 = n ? d[(size_t)((double)(n - 1) * 0.99)] / 1e6 : 0;
  printf("pauses: live %.0f MiB (built in %.1f s), %.1f s steady, %.1f Mops,"
         " %zu pauses in %llu cycles\n",
         live / 1048576.0, (b1 - b0) / 1e9, (t1 - t0) / 1e9, ops / 1e6, n,
         (unsigned long long)s.cycles);
  printf("  max pause %.3f ms   p99 %.3f ms   MMU(20 ms) %.1f%%   heap in use %.0f MiB\n",
         maxp, p99, 100 * mmu(ps, n, 20000000, t0, t1), s.bytes_in_use / 1048576.0);
}

static void run_mark_gcheap(unsigned workers) {
  size_t live = (size_t)(256.0 * scale()) << 20;
  gch_build(live, GCH_MODE_CONCURRENT, workers);
  gc_collect(H); /* settle: the live heap is marked once */
  gc_stats_t s0, s1;
  gc_get_stats(H, &s0);
  /* Allocate garbage until a concurrent mark starts, then stay out of its
   * way (sleeping in a blocking region) until it completes. */
  while (!((const gc_heap_public_t *)H)->barrier_on) gc_alloc(H, CELL);
  do {
    gc_blocking_enter(H);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    gc_blocking_leave(H);
    gc_get_stats(H, &s1);
  } while (s1.cycles == s0.cycles);
  double wall = (s1.mark_ns_total - s0.mark_ns_total) / 1e9;
  double cpu = (s1.mark_cpu_ns_total - s0.mark_cpu_ns_total) / 1e9;
  printf("  gcheap %u worker%s  %7.0f MB/cpu-s %7.0f MB/wall-s  (%.0f MB live, mark %.1f ms)\n",
         workers, workers > 1 ? "s" : " ", s1.live_bytes / 1e6 / cpu,
         s1.live_bytes / 1e6 / wall, s1.live_bytes / 1e6, wall * 1e3);
}

/* ------------------------------------------------------------------ boehm */

static void run_mark_boehm(unsigned markers) {
  char env[32];
  snprintf(env, sizeof env, "%u", markers);
  setenv("GC_MARKERS", env, 1);
  GC_INIT();
  size_t live = (size_t)(256.0 * scale()) << 20;
  size_t nh = live / (sizeof(cell_t) * LIST_LEN);
  cell_t **hs = GC_MALLOC(nh * sizeof *hs);
  for (size_t i = 0; i < nh; i++)
    for (int k = 0; k < LIST_LEN; k++) {
      cell_t *cl = GC_MALLOC(sizeof *cl);
      cl->value = i;
      cl->next = hs[i];
      hs[i] = cl;
    }
  GC_gcollect();
  uint64_t t0 = now_ns();
  struct timespec c0, c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  GC_gcollect();
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  uint64_t t1 = now_ns();
  double secs = (t1 - t0) / 1e9;
  double cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
  size_t heap = GC_get_heap_size() - GC_get_free_bytes();
  printf("  boehm  %u marker%s  %7.0f MB/cpu-s %7.0f MB/wall-s  (%.0f MB live, full collection %.1f ms)\n",
         markers, markers > 1 ? "s" : " ", heap / 1e6 / cpu, heap / 1e6 / secs,
         heap / 1e6, secs * 1e3);
  (void)hs;
}

static void in_child(void (*fn)(unsigned), unsigned arg) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    fn(arg);
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) printf("  (variant failed: status %d)\n", st);
}

static void pauses_child(unsigned secs) { run_pauses(secs); }

int main(void) {
  printf("bench_pause: %ld CPUs, BENCH_SCALE %.2f\n", sysconf(_SC_NPROCESSORS_ONLN), scale());
  if (!getenv("BENCH_MARK_ONLY")) in_child(pauses_child, scale() < 0.5 ? 1 : 3);
  printf("mark throughput (live MB marked per second of mark time):\n");
  in_child(run_mark_gcheap, 1);
  in_child(run_mark_gcheap, 2);
  in_child(run_mark_boehm, 1);
  in_child(run_mark_boehm, 2);
  return 0;
}
