/*
 * bench_rss.c -- resident memory over time for a spike workload (issue 8):
 * does the heap give memory back to the OS after a spike, and how fast?
 *
 * The workload, the same for every series, runs on a timeline:
 *   steady 0.5 s  a live set of 32 MiB of linked 64-256 B nodes (lists of
 *                 LIST_LEN nodes in a static slot table), churned at 64 MiB
 *                 a second (env BENCH_RSS_CHURN_MB): a random slot gets a
 *                 new list, the old one becomes garbage (or is freed);
 *   build         a 1 GiB spike (BENCH_SCALE multiplies it): one linked
 *                 list, half of its bytes in 64-256 B nodes and half in
 *                 4-64 KiB pointer-free blobs hung off the nodes, every
 *                 byte of every blob written, as fast as possible;
 *   hold    1 s   spike live, churn goes on;
 *   after   4 s   the spike is dropped (freed by the malloc series), churn
 *                 goes on at the same rate; 4 s from the drop, including
 *                 the frees and the release call;
 *   idle  1.5 s   no allocation at all (the main thread sleeps).
 * (The phases are shorter than they could be so that five series take
 * about 40 s.)
 * The same seed drives every series (the same sequence of sizes).
 * gcheap's sleeps are blocking regions.  After the build and after the
 * drop the workload overwrites 64 KiB of dead stack, so that Boehm's
 * conservative stack scan finds no stale pointer into the spike.
 * Each series runs in its own forked child.  A sampler thread in the child
 * reads /proc/self/statm every 10 ms into a static array (it allocates
 * nothing and touches no heap); the child sends the samples and the
 * allocator's own counters back through a pipe.
 *
 * Series:
 *   gcheap          default config (STW, background scavenger on); nodes
 *                   are precise types, blobs gc_malloc(GCH_NOSCAN); the
 *                   slot table and a few scratch slots are root ranges.
 *   gcheap+release  the same, plus gc_release_memory() right after the drop.
 *   boehm           GC_MALLOC nodes, GC_MALLOC_ATOMIC blobs.  Debian's
 *                   libgc 8.2 is built with unmapping (USE_MUNMAP): a free
 *                   block is returned once it has stayed free through
 *                   GC_UNMAP_THRESHOLD collections (env; default 6, and
 *                   8.2 has no setter for it).  We keep that default and
 *                   set GC_set_max_heap_size(2 x (spike + live) + 256 MiB).
 *                   GC_set_force_unmap_on_gcollect only affects explicit
 *                   GC_gcollect calls, which the workload never makes.
 *   glibc           glibc malloc/free (reached through dlsym, as in
 *                   benchutil.h), with every node and blob freed
 *                   explicitly; the spike is freed at the drop.
 *   glibc+trim      the same, plus malloc_trim(0) right after the frees.
 * BENCH_ONLY=word selects series (benchutil.h).
 *
 * Output: a summary table on stdout (peak RSS, RSS at the drop, 1 s and
 * 3 s after it, at the end of the idle phase, the time RSS took to come
 * back within 10% of the spike's excess, the workload's live bytes and the
 * allocator's own view).  With a path as argv[1], every sample is written
 * there as CSV rows allocator,t_ms,rss_mb,phase (t_ms from the child's
 * start); bench/rss_plot.sh runs this and plots the CSV with gnuplot.
 */
#include <gc.h>
#include <gcheap.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "benchutil.h"

/* ---------------------------------------------------------- parameters */

#define MIB (1024.0 * 1024.0)
enum {
  STEADY_MS = 500,
  HOLD_MS = 1000,
  AFTER_MS = 4000,
  IDLE_MS = 1500,
  SAMPLE_MS = 10,
  LIST_LEN = 4,
  NODE_MIN = 64,
  NODE_MAX = 256,
  NODE_STEP = 32,
  NODE_KINDS = (NODE_MAX - NODE_MIN) / NODE_STEP + 1,
  BLOB_MIN = 4096,
  BLOB_MAX = 65536,
  MAX_SLOTS = 1 << 16,
  MAX_SAMPLES = 8192, /* 80 s at 10 ms */
};
#define STEADY_LIVE (32ull << 20)
#define SPIKE_BYTES (1ull << 30)
#define CHURN_MB_S 64.0 /* garbage made per second (BENCH_RSS_CHURN_MB) */

enum { PH_STEADY, PH_BUILD, PH_HOLD, PH_AFTER, PH_IDLE, PH_END, NPHASE };
static const char *const phase_name[NPHASE] = {"steady", "build", "hold",
                                               "after",  "idle",  "end"};

enum { S_GCH, S_GCH_REL, S_BOEHM, S_GLIBC, S_GLIBC_TRIM, NS };
static const char *const sname[NS] = {"gcheap", "gcheap+release", "boehm",
                                      "glibc", "glibc+trim"};

/* A node: 64-256 bytes, the first two words pointers. */
typedef struct node {
  struct node *next;
  void *blob;
  uint64_t value;
  uint64_t size;
} node_t;

/* ------------------------------------------------------------- sampler */

typedef struct sample {
  uint32_t t_ms, rss_kb, phase;
} sample_t;

typedef struct child_out {
  uint64_t drop_ms;      /* when the spike was dropped */
  uint64_t release_ms;   /* how long release/trim took at the drop */
  uint64_t live_app;     /* bytes the workload holds at the end */
  uint64_t spike_app;    /* bytes of the spike (nodes + blobs) */
  uint64_t churned;      /* garbage made by the churn in all */
  uint64_t a_inuse;      /* allocator: bytes in use (see print_stats) */
  uint64_t a_retained;   /* allocator: heap bytes backed by the OS */
  uint64_t a_released;   /* allocator: bytes returned but still reserved */
  uint64_t a_cycles;     /* collections */
  char note[320];        /* the allocator's own counters, in words */
  uint32_t nsamples;
  sample_t s[MAX_SAMPLES];
} child_out_t;

static child_out_t g_out; /* the child's; the parent's copies are below */
static _Atomic int g_phase;
static _Atomic int g_stop;
static uint64_t g_t0;
static long g_page_kb;

static uint64_t elapsed_ms(void) { return (bench_now_ns() - g_t0) / 1000000u; }

/* statm's second field, resident pages, read with pread (no stdio). */
static uint32_t read_rss_kb(int fd) {
  char buf[128];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *p = buf;
  while (*p && *p != ' ') p++;
  return (uint32_t)(strtoul(p, NULL, 10) * (unsigned long)g_page_kb);
}

static void *sampler(void *arg) {
  (void)arg;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!atomic_load(&g_stop) && g_out.nsamples < MAX_SAMPLES) {
    sample_t *s = &g_out.s[g_out.nsamples];
    s->rss_kb = read_rss_kb(fd);
    s->t_ms = (uint32_t)elapsed_ms();
    s->phase = (uint32_t)atomic_load(&g_phase);
    g_out.nsamples++;
    next.tv_nsec += SAMPLE_MS * 1000000L;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    /* Late (a descheduled sampler): skip the missed ticks. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec ||
        (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
      next = now;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) ==
           EINTR) {
    }
  }
  close(fd);
  return NULL;
}

/* ------------------------------------------------- allocator interface */

/* What the workload needs from an allocator.  node/blob return memory the
 * workload fully initialises; set stores a pointer into a heap object;
 * release is NULL for the collected heaps; pause_enter/leave bracket
 * sleeps. */
typedef struct ops {
  node_t *(*node)(size_t size);
  void *(*blob)(size_t size);
  void (*set)(void *obj, void **slot, void *val);
  void (*release)(void *p);
  void (*after_drop)(void);
  void (*pause_enter)(void), (*pause_leave)(void);
  void (*fill_stats)(child_out_t *o);
} ops_t;

static const ops_t *O;

/* Roots: the slot table (the steady live set) and scratch slots for
 * objects under construction (gcheap does not scan stacks). */
static node_t *g_slots[MAX_SLOTS];
static struct {
  void *spike, *tmp, *blob;
} g_roots;
static size_t g_nslots;
static uint64_t g_steady_bytes, g_spike_bytes, g_churned;
static double g_churn_mb_s = CHURN_MB_S;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

static size_t node_size(void) {
  return NODE_MIN + (size_t)(rnd() % NODE_KINDS) * NODE_STEP;
}

static node_t *new_node(size_t size, node_t *next, void *blob) {
  node_t *n = O->node(size);
  O->set(n, (void **)&n->next, next);
  O->set(n, (void **)&n->blob, blob);
  n->value = (uint64_t)size ^ 0x5a5a;
  n->size = size;
  return n;
}

/* Frees a list (and its blobs) for the malloc series; returns its bytes. */
static uint64_t list_bytes_free(node_t *n) {
  uint64_t b = 0;
  while (n) {
    node_t *next = n->next;
    b += n->size;
    if (n->blob) {
      b += *(const uint64_t *)n->blob;
      if (O->release) O->release(n->blob);
    }
    if (O->release) O->release(n);
    n = next;
  }
  return b;
}

/* A new list of LIST_LEN nodes in slot k; the old one is garbage. */
static void churn_one(size_t k) {
  g_roots.tmp = NULL;
  uint64_t b = 0;
  for (int i = 0; i < LIST_LEN; i++) {
    size_t sz = node_size();
    g_roots.tmp = new_node(sz, g_roots.tmp, NULL);
    b += sz;
  }
  node_t *old = g_slots[k];
  g_slots[k] = g_roots.tmp;
  g_roots.tmp = NULL;
  g_steady_bytes += b;
  g_steady_bytes -= old ? list_bytes_free(old) : 0;
  g_churned += b;
}

static void fill_live_set(void) {
  g_nslots = (size_t)(STEADY_LIVE / (LIST_LEN * (NODE_MIN + NODE_MAX) / 2));
  if (g_nslots > MAX_SLOTS) g_nslots = MAX_SLOTS;
  for (size_t k = 0; k < g_nslots; k++) churn_one(k);
  g_churned = 0;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  O->pause_enter();
  nanosleep(&ts, NULL);
  O->pause_leave();
}

/* Churn at g_churn_mb_s until elapsed_ms() reaches end_ms.  A rate the
 * machine cannot sustain is cut short at end_ms, so the phases keep their
 * length (the churn actually done is g_churned). */
static void churn_until(uint64_t end_ms) {
  uint64_t start = bench_now_ns(), base = g_churned;
  while (elapsed_ms() < end_ms) {
    uint64_t dt = bench_now_ns() - start;
    uint64_t want = (uint64_t)(g_churn_mb_s * MIB * ((double)dt / 1e9));
    for (unsigned i = 1; g_churned - base < want; i++) {
      churn_one((size_t)(rnd() % g_nslots));
      if (i % 256 == 0 && elapsed_ms() >= end_ms) return;
    }
    sleep_ms(1);
  }
}

/* The spike: one list, half its bytes in nodes, half in blobs. */
static __attribute__((noinline)) void build_spike(uint64_t target) {
  uint64_t node_b = 0, blob_b = 0;
  uint64_t seq = 0;
  g_roots.spike = NULL;
  while (node_b + blob_b < target) {
    g_roots.blob = NULL;
    if (blob_b < node_b) {
      size_t bs = (BLOB_MIN + (size_t)(rnd() % (BLOB_MAX - BLOB_MIN + 1))) &
                  ~(size_t)15;
      void *b = O->blob(bs);
      memset(b, (int)(0xa5 ^ (seq++ & 0x7f)), bs);
      *(uint64_t *)b = bs; /* its size, for the free walk */
      g_roots.blob = b;
      blob_b += bs;
    }
    size_t sz = node_size();
    g_roots.spike = new_node(sz, g_roots.spike, g_roots.blob);
    node_b += sz;
  }
  g_roots.blob = NULL;
  g_spike_bytes = node_b + blob_b;
}

/* Overwrite the dead stack below us, so that no stale word there keeps the
 * spike alive under a conservative stack scan (Boehm). */
static __attribute__((noinline)) void scrub_stack(void) {
  volatile char buf[64 * 1024];
  memset((char *)buf, 0, sizeof buf);
}

static void run_workload(uint64_t spike_target) {
  atomic_store(&g_phase, PH_STEADY);
  fill_live_set();
  churn_until(elapsed_ms() + STEADY_MS);

  atomic_store(&g_phase, PH_BUILD);
  build_spike(spike_target);
  scrub_stack();

  atomic_store(&g_phase, PH_HOLD);
  churn_until(elapsed_ms() + HOLD_MS);

  atomic_store(&g_phase, PH_AFTER);
  g_out.drop_ms = elapsed_ms();
  node_t *spike = g_roots.spike;
  g_roots.spike = NULL;
  if (O->release) list_bytes_free(spike);
  spike = NULL;
  scrub_stack();
  uint64_t r0 = bench_now_ns();
  if (O->after_drop) O->after_drop();
  g_out.release_ms = (bench_now_ns() - r0) / 1000000u;
  churn_until(g_out.drop_ms + AFTER_MS);

  atomic_store(&g_phase, PH_IDLE);
  for (unsigned t = 0; t < IDLE_MS; t += 10) sleep_ms(10);
  atomic_store(&g_phase, PH_END);
  g_out.live_app = g_steady_bytes;
  g_out.spike_app = g_spike_bytes;
  g_out.churned = g_churned;
}

/* ------------------------------------------------------------- gcheap */

static gc_heap_t *H;
static const gc_type_t *T_node[NODE_KINDS];

static node_t *gch_node(size_t size) {
  node_t *n = gc_alloc(H, T_node[(size - NODE_MIN) / NODE_STEP]);
  if (GCH_UNLIKELY(!n)) bench_gch_oom(H, size);
  return n;
}

static void *gch_blob(size_t size) {
  void *p = gc_malloc(H, size, GCH_NOSCAN);
  if (GCH_UNLIKELY(!p)) bench_gch_oom(H, size);
  return p;
}

static void gch_set(void *obj, void **slot, void *val) {
  gc_write(H, obj, slot, val);
}

static void gch_release(void) {
  if (gc_release_memory(H) != GCH_OK) {
    fprintf(stderr, "bench_rss: gc_release_memory failed\n");
    exit(4);
  }
}

static void gch_pause_enter(void) { gc_blocking_enter(H); }
static void gch_pause_leave(void) { gc_blocking_leave(H); }

static void gch_stats(child_out_t *o) {
  gc_stats_t st;
  memset(&st, 0, sizeof st);
  if (gc_get_stats(H, &st) != GCH_OK) exit(4);
  o->a_inuse = st.bytes_in_use;
  o->a_retained = st.bytes_mapped;
  o->a_released = st.bytes_released;
  o->a_cycles = st.cycles;
  snprintf(o->note, sizeof o->note,
           "%llu cycles, the last marked %.0f MiB, heap goal %.0f MiB; "
           "mapped %.0f MiB, metadata %.0f MiB, released %.0f MiB now (%.0f "
           "MiB in all, %llu madvise calls)",
           (unsigned long long)st.cycles, (double)st.live_bytes / MIB,
           (double)st.heap_goal / MIB, (double)st.bytes_mapped / MIB,
           (double)st.metadata_bytes / MIB,
           (double)st.bytes_released / MIB,
           (double)st.released_bytes_total / MIB,
           (unsigned long long)st.scavenge_runs);
}

static void gch_setup(void) {
  H = bench_gch_new();
  uint64_t map = 3; /* next, blob */
  for (int i = 0; i < NODE_KINDS; i++) {
    char name[32];
    snprintf(name, sizeof name, "node%d", NODE_MIN + i * NODE_STEP);
    if (gc_type_new(H, name, (size_t)(NODE_MIN + i * NODE_STEP), &map, 1,
                    &T_node[i]) != GCH_OK)
      exit(4);
  }
  if (gc_root_add(H, g_slots, sizeof g_slots, GCH_ROOT_PRECISE) != GCH_OK ||
      gc_root_add(H, &g_roots, sizeof g_roots, GCH_ROOT_PRECISE) != GCH_OK)
    exit(4);
}

#define BENCH_GCH_OPS                                                        \
  .node = gch_node, .blob = gch_blob, .set = gch_set,                        \
  .pause_enter = gch_pause_enter, .pause_leave = gch_pause_leave,            \
  .fill_stats = gch_stats
static const ops_t gch_ops = {BENCH_GCH_OPS};
static const ops_t gch_rel_ops = {BENCH_GCH_OPS, .after_drop = gch_release};

/* -------------------------------------------------------------- Boehm */

static node_t *b_node(size_t size) {
  node_t *n = GC_MALLOC(size);
  if (!n) exit(4);
  return n;
}

static void *b_blob(size_t size) {
  void *p = GC_MALLOC_ATOMIC(size);
  if (!p) exit(4);
  return p;
}

static void plain_set(void *obj, void **slot, void *val) {
  (void)obj;
  *slot = val;
}

static void no_pause(void) {}

static void b_stats(child_out_t *o) {
  size_t heap = GC_get_heap_size(); /* excludes unmapped blocks */
  o->a_inuse = heap - GC_get_free_bytes();
  o->a_retained = heap;
  o->a_released = GC_get_unmapped_bytes();
  o->a_cycles = (uint64_t)GC_get_gc_no();
  struct GC_prof_stats_s ps;
  memset(&ps, 0, sizeof ps);
  GC_get_prof_stats(&ps, sizeof ps);
  snprintf(o->note, sizeof o->note,
           "%llu GCs, heap %.0f MiB + %.0f MiB unmapped, %.0f MiB in free "
           "blocks, %.0f MiB allocated since the last GC, %.0f MiB taken "
           "from the OS in all",
           (unsigned long long)ps.gc_no, (double)heap / MIB,
           (double)ps.unmapped_bytes / MIB,
           (double)GC_get_free_bytes() / MIB,
           (double)ps.bytes_allocd_since_gc / MIB,
           (double)ps.obtained_from_os_bytes / MIB);
}

static const ops_t boehm_ops = {.node = b_node, .blob = b_blob,
                                .set = plain_set, .pause_enter = no_pause,
                                .pause_leave = no_pause, .fill_stats = b_stats};

/* -------------------------------------------------------------- glibc */

static bench_allocator_t glibc_a;
/* glibc's own malloc_trim and mallinfo2: the process's malloc is
 * mimalloc (benchutil.h), so take them from libc.so.6 by name. */
struct bench_mallinfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks,
      fordblks, keepcost;
};
static int (*glibc_trim)(size_t);
static struct bench_mallinfo2 (*glibc_info)(void);

static node_t *m_node(size_t size) {
  node_t *n = glibc_a.malloc_fn(size);
  if (!n) exit(4);
  return n;
}

static void *m_blob(size_t size) {
  void *p = glibc_a.malloc_fn(size);
  if (!p) exit(4);
  return p;
}

static void m_free(void *p) { glibc_a.free_fn(p); }

static void m_trim(void) {
  if (glibc_trim) glibc_trim(0);
}

static void m_stats(child_out_t *o) {
  if (!glibc_info) return;
  struct bench_mallinfo2 mi = glibc_info();
  o->a_inuse = mi.uordblks + mi.hblkhd;
  o->a_retained = mi.arena + mi.hblkhd;
  o->a_released = 0;
  snprintf(o->note, sizeof o->note,
           "main arena %.0f MiB (%.0f MiB of it free, top chunk %.0f MiB), "
           "mmapped chunks %.0f MiB",
           (double)mi.arena / MIB, (double)mi.fordblks / MIB,
           (double)mi.keepcost / MIB, (double)mi.hblkhd / MIB);
}

#define BENCH_GLIBC_OPS                                                      \
  .node = m_node, .blob = m_blob, .set = plain_set, .release = m_free,       \
  .pause_enter = no_pause, .pause_leave = no_pause, .fill_stats = m_stats
static const ops_t glibc_ops = {BENCH_GLIBC_OPS};
static const ops_t glibc_trim_ops = {BENCH_GLIBC_OPS, .after_drop = m_trim};

static void glibc_lookup(void) {
  glibc_a = bench_allocator_lookup("glibc", "libc.so.6");
  void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  char why[160];
  void *t = h ? bench_dlsym_checked(h, "malloc_trim", "libc.so.6", why,
                                    sizeof why)
              : NULL;
  void *i = h ? bench_dlsym_checked(h, "mallinfo2", "libc.so.6", why,
                                    sizeof why)
              : NULL;
  memcpy(&glibc_trim, &t, sizeof t);
  memcpy(&glibc_info, &i, sizeof i);
}

/* ------------------------------------------------------------- driver */

static uint64_t g_spike_target;

static uint64_t boehm_max_heap(void) {
  return 2 * (g_spike_target + STEADY_LIVE) + (256ull << 20);
}

static void child(int s) {
  g_page_kb = sysconf(_SC_PAGESIZE) / 1024;
  g_t0 = bench_now_ns();
  pthread_t th;
  if (pthread_create(&th, NULL, sampler, NULL) != 0) exit(4);
  switch (s) {
  case S_GCH:
  case S_GCH_REL:
    gch_setup();
    O = s == S_GCH ? &gch_ops : &gch_rel_ops;
    break;
  case S_BOEHM:
    GC_INIT();
    GC_set_max_heap_size((GC_word)boehm_max_heap());
    O = &boehm_ops;
    break;
  default:
    O = s == S_GLIBC ? &glibc_ops : &glibc_trim_ops;
    break;
  }
  run_workload(g_spike_target);
  /* One more sample so the last one is at the end of the idle phase. */
  atomic_store(&g_stop, 1);
  pthread_join(th, NULL);
  O->fill_stats(&g_out);
}

static child_out_t g_res[NS];

static void run_series(int s) {
  int fd[2];
  fflush(NULL);
  if (pipe(fd) != 0) {
    perror("bench_rss: pipe");
    exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("bench_rss: fork");
    exit(1);
  }
  if (pid == 0) {
    close(fd[0]);
    child(s);
    const char *p = (const char *)&g_out;
    size_t left = offsetof(child_out_t, s) + g_out.nsamples * sizeof(sample_t);
    while (left > 0) {
      ssize_t w = write(fd[1], p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) _exit(3);
      p += w;
      left -= (size_t)w;
    }
    _exit(0);
  }
  close(fd[1]);
  char *p = (char *)&g_res[s];
  size_t got = 0;
  while (got < sizeof g_res[s]) {
    ssize_t n = read(fd[0], p + got, sizeof g_res[s] - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("bench_rss: waitpid");
      exit(1);
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      got < offsetof(child_out_t, s) ||
      got != offsetof(child_out_t, s) + g_res[s].nsamples * sizeof(sample_t)) {
    fprintf(stderr, "bench_rss: series '%s' failed (status %d, %zu bytes)\n",
            sname[s], status, got);
    exit(1);
  }
}

static double mb(uint64_t kb) { return (double)kb / 1024.0; }

/* RSS of the first sample at or after t_ms (the last one if none). */
static uint32_t rss_at(const child_out_t *o, uint64_t t_ms) {
  for (uint32_t i = 0; i < o->nsamples; i++)
    if (o->s[i].t_ms >= t_ms) return o->s[i].rss_kb;
  return o->nsamples ? o->s[o->nsamples - 1].rss_kb : 0;
}

static void print_row(int s) {
  const child_out_t *o = &g_res[s];
  uint32_t peak = 0, pre = 0, end = 0;
  for (uint32_t i = 0; i < o->nsamples; i++) {
    const sample_t *x = &o->s[i];
    if (x->rss_kb > peak) peak = x->rss_kb;
    if (x->phase == PH_STEADY) pre = x->rss_kb;
    if (x->phase == PH_IDLE) end = x->rss_kb;
  }
  /* Back: RSS within 10% of the spike's excess over the pre-spike RSS. */
  uint32_t back = pre + (peak > pre ? (peak - pre) / 10 : 0);
  char back_s[32] = "never";
  for (uint32_t i = 0; i < o->nsamples; i++) {
    const sample_t *x = &o->s[i];
    if (x->t_ms >= o->drop_ms && x->rss_kb <= back) {
      snprintf(back_s, sizeof back_s, "%.2f s",
               (double)(x->t_ms - o->drop_ms) / 1000.0);
      break;
    }
  }
  printf("%-15s %7.0f %7.0f %7.0f %7.0f %7.0f %7.0f %8s %7.1f %7.0f %7.0f "
         "%7.0f %5llu\n",
         sname[s], mb(pre), mb(peak), mb(rss_at(o, o->drop_ms)),
         mb(rss_at(o, o->drop_ms + 1000)), mb(rss_at(o, o->drop_ms + 3000)),
         mb(end), back_s, (double)o->live_app / MIB,
         (double)o->a_inuse / MIB, (double)o->a_retained / MIB,
         (double)o->a_released / MIB, (unsigned long long)o->a_cycles);
}

static int write_csv(const char *path, const int *ran) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "bench_rss: cannot write %s: %s\n", path,
            strerror(errno));
    return 0;
  }
  fprintf(f, "allocator,t_ms,rss_mb,phase\n");
  for (int s = 0; s < NS; s++) {
    if (!ran[s]) continue;
    const child_out_t *o = &g_res[s];
    for (uint32_t i = 0; i < o->nsamples; i++)
      fprintf(f, "%s,%u,%.1f,%s\n", sname[s], o->s[i].t_ms,
              mb(o->s[i].rss_kb),
              phase_name[o->s[i].phase < NPHASE ? o->s[i].phase : PH_END]);
  }
  int ok = fclose(f) == 0;
  if (!ok) fprintf(stderr, "bench_rss: error writing %s\n", path);
  return ok;
}

/* The first line of a small file, or "?". */
static void read_line(const char *path, char *buf, size_t len) {
  snprintf(buf, len, "?");
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fgets(buf, (int)len, f)) buf[strcspn(buf, "\n")] = 0;
  fclose(f);
}

/* Not bench_print_header: that one announces medians of BENCH_RUNS runs,
 * and each series here runs once. */
static void print_header(double scale) {
  struct utsname u;
  if (uname(&u) != 0) memset(&u, 0, sizeof u);
  char thp[128];
  read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
  printf("bench_rss: RSS over time; a %.0f MiB spike over a %.0f MiB live "
         "set churned at %.0f MiB/s, sampled every %d ms\n",
         (double)g_spike_target / MIB, (double)STEADY_LIVE / MIB,
         g_churn_mb_s, SAMPLE_MS);
  printf("machine: nproc=%ld, kernel %s %s, THP %s\n",
         sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, thp);
  printf("build: cc=%s, BENCH_SCALE=%g; one run per series, each in its own "
         "forked child\n",
#ifdef __clang__
         "clang " __clang_version__,
#else
         "gcc " __VERSION__,
#endif
         scale);
  printf("phases: steady %d ms, build, hold %d ms, after the drop %d ms, "
         "idle %d ms\n",
         STEADY_MS, HOLD_MS, AFTER_MS, IDLE_MS);
  printf("gcheap: gc_config_default() (background scavenger on, decay %d "
         "ms); Boehm GC %d.%d.%d: unmapping after GC_UNMAP_THRESHOLD "
         "collections (default), GC_set_max_heap_size(%.0f MiB)\n",
         GCH_SCAVENGE_DECAY_MS, GC_VERSION_MAJOR, GC_VERSION_MINOR,
         GC_VERSION_MICRO, (double)boehm_max_heap() / MIB);
}

int main(int argc, char **argv) {
  double scale = bench_scale();
  g_spike_target = bench_scaled(SPIKE_BYTES, scale, 1u << 20);
  const char *c = getenv("BENCH_RSS_CHURN_MB");
  if (c && *c) {
    char *end;
    g_churn_mb_s = strtod(c, &end);
    if (end == c || !(g_churn_mb_s > 0.0) || g_churn_mb_s > 65536.0) {
      fprintf(stderr, "bench_rss: bad BENCH_RSS_CHURN_MB '%s'\n", c);
      return 2;
    }
  }
  glibc_lookup();
  print_header(scale);
  if (!glibc_a.ok) printf("glibc malloc unavailable: %s\n", glibc_a.why);
  if (!glibc_trim) printf("glibc malloc_trim unavailable\n");

  int ran[NS] = {0};
  for (int s = 0; s < NS; s++) {
    if (!bench_selected(sname[s])) continue;
    if ((s == S_GLIBC || s == S_GLIBC_TRIM) && !glibc_a.ok) continue;
    if (s == S_GLIBC_TRIM && !glibc_trim) continue;
    run_series(s);
    ran[s] = 1;
  }

  printf("\n%-15s %7s %7s %7s %7s %7s %7s %8s %7s %7s %7s %7s %5s\n",
         "series", "pre", "peak", "drop", "+1s", "+3s", "idle", "back",
         "live", "inuse", "retain", "relsd", "GCs");
  for (int s = 0; s < NS; s++)
    if (ran[s]) print_row(s);
  printf(
      "(RSS in MB: pre = end of the steady phase, drop = when the spike was "
      "dropped, +1s/+3s after it, idle = end of the idle phase; back = time "
      "after the drop until RSS is within 10%% of the spike's excess over "
      "pre; live = bytes the workload holds at the end; the allocator's view "
      "at the end: inuse (gcheap bytes_in_use, Boehm heap - free, glibc "
      "uordblks + hblkhd), retain (gcheap bytes_mapped, Boehm heap size, "
      "glibc arena + hblkhd), relsd (gcheap bytes_released, Boehm unmapped "
      "bytes).  +release / +trim call gc_release_memory / malloc_trim(0) at "
      "the drop.)\n");
  for (int s = 0; s < NS; s++) {
    if (!ran[s]) continue;
    printf("%s: churned %.0f MiB; %s", sname[s],
           (double)g_res[s].churned / MIB, g_res[s].note);
    if (s == S_GCH_REL || s == S_GLIBC_TRIM)
      printf("; the call at the drop took %llu ms",
             (unsigned long long)g_res[s].release_ms);
    printf("\n");
  }
  if (argc > 1) {
    if (!write_csv(argv[1], ran)) return 1;
    printf("samples written to %s\n", argv[1]);
  }
  return 0;
}
