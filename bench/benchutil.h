/*
 * benchutil.h -- shared helpers for the bench/bench_*.c programs.
 *
 * Every measured variant runs in its own forked child (independent heap
 * state and peak RSS, read with wait4 on that child).  The child times only
 * its workload and sends a bench_result_t back through a pipe.  Runs are
 * interleaved (run 1 of every variant, then run 2, ...) so that slow phases
 * of this noisy machine spread over all variants, and the median is
 * reported.
 *
 * Allocator peers: the benchmarks link -lgc -lmimalloc -ljemalloc.  Both
 * Debian's libmimalloc.so and libjemalloc.so export the unprefixed malloc
 * family, and libmimalloc comes first in the link order, so the process's
 * `malloc` is mimalloc.  glibc's allocator and jemalloc are therefore
 * reached through dlsym() on their own library handles (libc.so.6,
 * libjemalloc.so.2); bench_allocator_lookup() checks with dladdr() that the
 * functions found really live in the library named.
 */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#define BENCH_RUNS 5

/* Under the toolchain's --as-needed, libjemalloc.so would be dropped from
 * the link (mimalloc already defines every malloc symbol we reference);
 * referencing mallocx, which only jemalloc defines, keeps it loaded. */
static void *(*volatile bench_jemalloc_anchor)(size_t, int)
    __attribute__((used)) = mallocx;

/* ----------------------------------------------------------- basic helpers */

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (all its threads: a collector's helper
 * threads count). */
static inline uint64_t bench_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* BENCH_SCALE (default 1): multiplies iteration counts. */
static inline double bench_scale(void) {
  const char *s = getenv("BENCH_SCALE");
  if (!s || !*s) return 1.0;
  char *end;
  double v = strtod(s, &end);
  if (end == s || !(v > 0.0) || v > 1000.0) {
    fprintf(stderr, "bench: bad BENCH_SCALE '%s'\n", s);
    exit(2);
  }
  return v;
}

/* round(n * scale), at least lo. */
static inline uint64_t bench_scaled(uint64_t n, double scale, uint64_t lo) {
  double v = (double)n * scale + 0.5;
  uint64_t r = v < 1.0 ? 0 : (uint64_t)v;
  return r < lo ? lo : r;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static inline double bench_median(const double *v, int n) {
  double tmp[64];
  if (n <= 0) return 0.0;
  if (n > 64) n = 64;
  memcpy(tmp, v, (size_t)n * sizeof *tmp);
  qsort(tmp, (size_t)n, sizeof *tmp, bench_cmp_double);
  return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

static inline double bench_max(const double *v, int n) {
  double m = 0.0;
  for (int i = 0; i < n; i++)
    if (v[i] > m) m = v[i];
  return m;
}

/* --------------------------------------------------------- child process */

typedef struct bench_result {
  uint64_t wall_ns;        /* timed region, measured in the child */
  uint64_t cpu_ns;         /* process CPU time over the timed region */
  uint64_t checksum;       /* workload's result; must agree across variants */
  int has_gc;              /* the fields below are meaningful */
  uint64_t gc_cycles;      /* collections during the child's life */
  uint64_t pause_max_ns;   /* longest collection pause */
  uint64_t pause_total_ns; /* all collection pauses */
  long maxrss_kb;          /* filled in by the parent from wait4 */
} bench_result_t;

typedef void (*bench_fn)(const void *arg, bench_result_t *out);

typedef struct bench_timer {
  uint64_t wall, cpu;
} bench_timer_t;

static inline bench_timer_t bench_timer_start(void) {
  bench_timer_t t;
  t.cpu = bench_cpu_ns();
  t.wall = bench_now_ns();
  return t;
}

static inline void bench_timer_stop(bench_timer_t t, bench_result_t *out) {
  out->wall_ns = bench_now_ns() - t.wall;
  out->cpu_ns = bench_cpu_ns() - t.cpu;
}

/* BENCH_ONLY=word runs only the variants whose name contains word (case
 * insensitive); for profiling one variant with perf or callgrind. */
static inline int bench_selected(const char *name) {
  const char *w = getenv("BENCH_ONLY");
  return !w || !*w || strcasestr(name, w) != NULL;
}

/* Run fn(arg, out) in a forked child; fills *out (including maxrss_kb).
 * Exits the program with a message if the child fails. */
static inline void bench_run_child(const char *what, bench_fn fn,
                                   const void *arg, bench_result_t *out) {
  int fd[2];
  fflush(NULL);
  if (pipe(fd) != 0) {
    perror("bench: pipe");
    exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("bench: fork");
    exit(1);
  }
  if (pid == 0) {
    bench_result_t r;
    memset(&r, 0, sizeof r);
    close(fd[0]);
    fn(arg, &r);
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left > 0) {
      ssize_t w = write(fd[1], p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) _exit(3);
      p += w;
      left -= (size_t)w;
    }
    close(fd[1]);
    fflush(NULL);
    _exit(0);
  }
  close(fd[1]);
  bench_result_t r;
  memset(&r, 0, sizeof r);
  char *p = (char *)&r;
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = read(fd[0], p + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd[0]);
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("bench: wait4");
      exit(1);
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != sizeof r) {
    if (WIFSIGNALED(status))
      fprintf(stderr, "bench: variant '%s' died with signal %d\n", what,
              WTERMSIG(status));
    else
      fprintf(stderr, "bench: variant '%s' failed (status %d, %zu bytes)\n",
              what, WIFEXITED(status) ? WEXITSTATUS(status) : -1, got);
    exit(1);
  }
  r.maxrss_kb = ru.ru_maxrss;
  *out = r;
}

/* Peak RSS of a child that does nothing: the baseline included in every
 * RSS figure (the forked image of the parent). */
static inline void bench_noop_child(const void *arg, bench_result_t *out) {
  (void)arg;
  (void)out;
}

static inline double bench_baseline_rss_mb(void) {
  bench_result_t r;
  bench_run_child("baseline", bench_noop_child, NULL, &r);
  return (double)r.maxrss_kb / 1024.0;
}

/* Abort when checksums differ. */
static inline void bench_check_sum(const char *bench, const char *variant,
                                   uint64_t got, uint64_t want) {
  if (got != want) {
    fprintf(stderr,
            "bench %s: CHECKSUM MISMATCH: variant '%s' computed %llu, "
            "expected %llu\n",
            bench, variant, (unsigned long long)got, (unsigned long long)want);
    exit(1);
  }
}

/* -------------------------------------------------------------- allocators */

typedef void *(*bench_malloc_fn)(size_t);
typedef void (*bench_free_fn)(void *);

typedef struct bench_allocator {
  const char *name;
  bench_malloc_fn malloc_fn;
  bench_free_fn free_fn;
  int ok;
  char why[160];
} bench_allocator_t;

/* dlsym's void * converted to a function pointer without a cast that
 * -Wpedantic would flag. */
static inline void *bench_dlsym_checked(void *handle, const char *sym,
                                        const char *lib, char *why,
                                        size_t whylen) {
  void *p = dlsym(handle, sym);
  if (!p) {
    snprintf(why, whylen, "dlsym(%s, %s) failed", lib, sym);
    return NULL;
  }
  Dl_info info;
  if (!dladdr(p, &info) || !info.dli_fname || !strstr(info.dli_fname, lib)) {
    snprintf(why, whylen, "%s from %s resolves into %s", sym, lib,
             info.dli_fname ? info.dli_fname : "?");
    return NULL;
  }
  return p;
}

/* lib: "libc.so.6" or "libjemalloc.so.2". */
static inline bench_allocator_t bench_allocator_lookup(const char *name,
                                                       const char *lib) {
  bench_allocator_t a;
  memset(&a, 0, sizeof a);
  a.name = name;
  void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
  if (!h) {
    snprintf(a.why, sizeof a.why, "%s is not loaded", lib);
    return a;
  }
  void *m = bench_dlsym_checked(h, "malloc", lib, a.why, sizeof a.why);
  void *f = m ? bench_dlsym_checked(h, "free", lib, a.why, sizeof a.why) : 0;
  if (!m || !f) return a;
  memcpy(&a.malloc_fn, &m, sizeof m);
  memcpy(&a.free_fn, &f, sizeof f);
  a.ok = 1;
  return a;
}

/* The library that the process-wide `malloc` symbol resolves to. */
static inline const char *bench_process_malloc_lib(void) {
  static char buf[256];
  void *p = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info;
  if (!p || !dladdr(p, &info) || !info.dli_fname) return "?";
  const char *s = strrchr(info.dli_fname, '/');
  snprintf(buf, sizeof buf, "%s", s ? s + 1 : info.dli_fname);
  return buf;
}

/* ---------------------------------------------------------------- header */

static inline void bench_print_header(const char *title, double scale) {
  char cpu[256] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "model name", 10) == 0) {
        char *c = strchr(line, ':');
        if (c) {
          c++;
          while (*c == ' ') c++;
          snprintf(cpu, sizeof cpu, "%s", c);
          cpu[strcspn(cpu, "\n")] = 0;
        }
        break;
      }
    }
    fclose(f);
  }
  struct utsname u;
  if (uname(&u) != 0) memset(&u, 0, sizeof u);
  printf("%s\n", title);
  printf("machine: nproc=%ld (online), cpu=%s, kernel=%s %s\n",
         sysconf(_SC_NPROCESSORS_ONLN), cpu, u.sysname, u.release);
  printf("build:   cc=%s, BENCH_SCALE=%g, %d runs per variant (each in a "
         "fresh forked child; median)\n",
#ifdef __clang__
         "clang " __clang_version__,
#else
         "gcc " __VERSION__,
#endif
         scale, BENCH_RUNS);
  printf("process malloc = %s (glibc and jemalloc reached via dlsym on their "
         "own library handles)\n",
         bench_process_malloc_lib());
#if defined(GC_H) && defined(MI_MALLOC_VERSION)
  printf("peers: Boehm GC %d.%d.%d (default settings, GC_INIT in each child), "
         "mimalloc %d.%d.%d; gcheap: gc_heap_new(NULL) defaults\n",
         GC_VERSION_MAJOR, GC_VERSION_MINOR, GC_VERSION_MICRO,
         MI_MALLOC_VERSION / 100, MI_MALLOC_VERSION / 10 % 10,
         MI_MALLOC_VERSION % 10);
#endif
}

/* ------------------------------------------- whole-program tables */

/* The table of bench_gcbench and bench_binarytrees. */
static inline void bench_print_table_header(void) {
  printf("%-18s %8s %8s %9s %9s %10s %6s %10s %10s %10s\n", "variant",
         "wall ms", "CPU ms", "/Boehm", "/mimalloc", "peakRSS MB", "GCs",
         "pause max", "(worst)", "pause sum");
}

static inline void bench_print_ratio(double a, double b) {
  if (a > 0 && b > 0)
    printf(" %8.2fx", a / b);
  else
    printf(" %9s", "n/a");
}

/* t, cpu: median wall and CPU ms; t_boehm, t_mi: the peers' median wall ms
 * (0 when not run); pmax/ptot/gcs: per-run values (BENCH_RUNS). */
static inline void bench_print_row(const char *name, double t, double cpu,
                                   double t_boehm, double t_mi, double rss_mb,
                                   int has_gc, const double *gcs,
                                   const double *pmax, const double *ptot) {
  printf("%-18s %8.1f %8.1f", name, t, cpu);
  bench_print_ratio(t, t_boehm);
  bench_print_ratio(t, t_mi);
  printf(" %10.1f", rss_mb);
  if (has_gc)
    printf(" %6.0f %8.2fms %8.2fms %8.1fms\n", bench_median(gcs, BENCH_RUNS),
           bench_median(pmax, BENCH_RUNS), bench_max(pmax, BENCH_RUNS),
           bench_median(ptot, BENCH_RUNS));
  else
    printf(" %6s %10s %10s %10s\n", "-", "n/a", "n/a", "n/a");
}

/* Arrays indexed by variant: wall ms, CPU ms, RSS MB; g, b, mi: indices
 * of gcheap, Boehm and mimalloc (their entries 0 when not run). */
static inline void bench_print_summary(const double *t, const double *cpu,
                                       const double *rss, int g, int b,
                                       int mi, uint64_t checksum) {
  if (t[g] > 0 && t[b] > 0 && t[mi] > 0)
    printf("\ngcheap/Boehm: wall %.2fx, CPU %.2fx, peak RSS %.2fx;  "
           "gcheap/mimalloc: wall %.2fx, CPU %.2fx, peak RSS %.2fx\n",
           t[g] / t[b], cpu[g] / cpu[b], rss[g] / rss[b], t[g] / t[mi],
           cpu[g] / cpu[mi], rss[g] / rss[mi]);
  printf("(wall, CPU (all threads), RSS, GCs, pause sum: medians of %d runs;"
         " pause max: median of the runs' maxima, worst run in parentheses;"
         " Boehm pauses timed GC_EVENT_START..END; every variant matched the "
         "expected checksum %llu)\n",
         BENCH_RUNS, (unsigned long long)checksum);
}

/* ---------------------------------------------------- Boehm pause timing */

/* Include <gc.h> before this header to get the Boehm helpers. */
#ifdef GC_H
static uint64_t bench_boehm_start_ns, bench_boehm_pause_max_ns,
    bench_boehm_pause_total_ns;

/* Times GC_EVENT_START .. GC_EVENT_END (Boehm's collections stop the world
 * for their whole duration when incremental mode is off). */
static inline void bench_boehm_on_event(GC_EventType ev) {
  if (ev == GC_EVENT_START) {
    bench_boehm_start_ns = bench_now_ns();
  } else if (ev == GC_EVENT_END && bench_boehm_start_ns) {
    uint64_t d = bench_now_ns() - bench_boehm_start_ns;
    bench_boehm_start_ns = 0;
    bench_boehm_pause_total_ns += d;
    if (d > bench_boehm_pause_max_ns) bench_boehm_pause_max_ns = d;
  }
}

static inline void bench_boehm_init(void) {
  GC_INIT();
  GC_set_on_collection_event(bench_boehm_on_event);
}

static inline void bench_boehm_fill(bench_result_t *out) {
  out->has_gc = 1;
  out->gc_cycles = (uint64_t)GC_get_gc_no();
  out->pause_max_ns = bench_boehm_pause_max_ns;
  out->pause_total_ns = bench_boehm_pause_total_ns;
}
#endif

/* ------------------------------------------------ gcheap stats helpers */

#ifdef GCHEAP_H
static inline gc_heap_t *bench_gch_new(void) {
  gc_result_t err = GCH_OK;
  gc_heap_t *h = gc_heap_new(NULL, &err);
  if (!h) {
    fprintf(stderr, "bench: gc_heap_new failed: %s\n", gc_result_str(err));
    exit(4);
  }
  return h;
}

static inline void bench_gch_fill(gc_heap_t *h, bench_result_t *out) {
  gc_stats_t st;
  memset(&st, 0, sizeof st);
  if (gc_get_stats(h, &st) != GCH_OK) {
    fprintf(stderr, "bench: gc_get_stats failed\n");
    exit(4);
  }
  out->has_gc = 1;
  out->gc_cycles = st.cycles;
  out->pause_max_ns = st.pause_max_ns;
  out->pause_total_ns = st.pause_total_ns;
}

static inline void *bench_gch_oom(gc_heap_t *h, size_t n) {
  fprintf(stderr, "bench: gcheap allocation of %zu bytes failed: %s\n", n,
          gc_result_str(gc_last_error(h)));
  exit(4);
}

/* A precise shadow stack of roots for the gcheap variants: slots
 * [0, sp) are reported by a root callback at every collection.  A program
 * pushes every pointer it still needs across a call that may allocate. */
#define BENCH_SHADOW_MAX 1024
typedef struct bench_shadow {
  size_t sp;
  void *slot[BENCH_SHADOW_MAX];
} bench_shadow_t;

static bench_shadow_t bench_shadow;

static inline void bench_shadow_visit(gc_visitor_t *v, void *ctx) {
  bench_shadow_t *s = ctx;
  for (size_t i = 0; i < s->sp; i++) gc_visit(v, &s->slot[i]);
}

static inline void bench_shadow_register(gc_heap_t *h) {
  if (gc_root_callback_add(h, bench_shadow_visit, &bench_shadow) != GCH_OK) {
    fprintf(stderr, "bench: gc_root_callback_add failed\n");
    exit(4);
  }
}

static inline void bench_shadow_push(void *p) {
  if (GCH_UNLIKELY(bench_shadow.sp >= BENCH_SHADOW_MAX)) {
    fprintf(stderr, "bench: shadow stack overflow\n");
    abort();
  }
  bench_shadow.slot[bench_shadow.sp++] = p;
}

static inline void bench_shadow_pop(size_t n) { bench_shadow.sp -= n; }

/* The slot k below the top (0 = top). */
static inline void *bench_shadow_peek(size_t k) {
  return bench_shadow.slot[bench_shadow.sp - 1 - k];
}
#endif

#endif /* BENCHUTIL_H */
