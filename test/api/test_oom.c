/*
 * test_oom.c -- out-of-memory paths, by failure injection (Lua's
 * alloccount style): fail the k-th OS memory call for every k, and check
 * that the library returns NULL/GCH_ENOMEM instead of crashing, keeps the
 * heap consistent (gc_verify), keeps live data intact, and works again once
 * memory is back.
 *
 *  1. k-sweep over an allocation workload: _gc_os_fail_after(&h->os, k)
 *     (the OS layer's own hook) for k = 1..K, each run in a forked child so
 *     that a crash at one k is reported as such and the others still run.
 *  2. The oom_handler: called when an allocation fails for lack of memory
 *     (hard limit, or the OS refusing), given the heap, size and ctx; its
 *     return value is what the allocation returns.
 *  3. gc_heap_new when the OS refuses: the hook lives in the heap, so it
 *     cannot reach heap creation; this test interposes mmap() itself (the
 *     library is linked statically into the test) and fails the k-th call
 *     for every k: gc_heap_new must return NULL with GCH_ENOMEM and give
 *     back every mapping it made.
 */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap.h"

/* ------------------------------------------------ mmap interposition (3) */

static atomic_long mmap_fail_countdown; /* >0: the call reaching 0 fails */
static atomic_int mmap_fail_all;        /* every call fails */
static atomic_long mmap_calls;
static atomic_llong mapped_bytes;       /* mapped - unmapped while counting */
static atomic_int mmap_counting;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  atomic_fetch_add(&mmap_calls, 1);
  long c = atomic_load(&mmap_fail_countdown);
  if (atomic_load(&mmap_fail_all) ||
      (c > 0 && atomic_fetch_sub(&mmap_fail_countdown, 1) == 1)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  void *p = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && atomic_load(&mmap_counting))
    atomic_fetch_add(&mapped_bytes, (long long)((len + 4095) & ~(size_t)4095));
  return p;
}

int munmap(void *addr, size_t len) {
  int r = (int)syscall(SYS_munmap, addr, len);
  if (r == 0 && atomic_load(&mmap_counting))
    atomic_fetch_sub(&mapped_bytes, (long long)((len + 4095) & ~(size_t)4095));
  return r;
}

/* ------------------------------------------------------ the workload (1) */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NOBJ 500 /* the sweep forks ~40 children: keep sanitized runs short */
#else
#define NOBJ 1200
#endif
static void *objs[NOBJ];
static size_t osize[NOBJ];

static size_t pick(uint64_t *x) {
  *x ^= *x >> 12;
  *x ^= *x << 25;
  *x ^= *x >> 27;
  uint64_t r = *x * 2685821657736338717ull;
  switch (r % 20) {
  case 0: case 1: case 2: case 3: case 4: case 5:
    return 1 + r / 32 % 15;                                 /* tiny */
  case 6: case 7: case 8: case 9:
    return 16 + r / 32 % 500;                               /* small */
  case 10: case 11: case 12: case 13:
    return 513 + r / 32 % 32000;                            /* headers */
  case 14: case 15: case 16: case 17: case 18:
    return 32769 + r / 32 % (256 * 1024);                   /* large */
  default:
    return ((size_t)1 << 20) + r / 32 % (1u << 20);         /* 1..2 MiB */
  }
}

static uint8_t pat(size_t i, size_t j) { return (uint8_t)(i * 131 + j * 7 + 1); }

/* Byte offsets touched in an object of n bytes: all of it up to 8 KiB,
 * else its first and last 4 KiB (keeps the 40 runs fast). */
static size_t touch_next(size_t j, size_t n) {
  if (n > 8192 && j + 1 == 4096) return n - 4096;
  return j + 1;
}

static int child_fails;
#define KCHECK(k, c)                                                        \
  do {                                                                      \
    if (!(c)) {                                                             \
      child_fails++;                                                        \
      fprintf(stderr, "%s:%d: [k=%ld] CHECK failed: %s\n", __FILE__,        \
              __LINE__, (long)(k), #c);                                     \
    }                                                                       \
  } while (0)

/* OS memory calls the workload made (probe run: k huge). */
static long probe_calls = -1;

/* Exit status: 0 ok, 1 checks failed; bit 4 set = the injected failure
 * fired; bit 5 set = an allocation returned NULL. */
static int run_k(long k, uint64_t seed) {
  gc_result_t err;
  gc_heap_t *h = gc_heap_new(NULL, &err);
  if (!h) {
    fprintf(stderr, "[k=%ld] gc_heap_new: %s\n", k, gc_result_str(err));
    return 1;
  }
  memset(objs, 0, sizeof objs); /* no stale pointers from an earlier run */
  memset(osize, 0, sizeof osize);
  KCHECK(k, gc_root_add(h, objs, sizeof objs, GCH_ROOT_PRECISE) == GCH_OK);
  _gc_os_fail_after(&h->os, k);
  uint64_t x = seed;
  size_t got = 0, nulls = 0;
  for (size_t i = 0; i < NOBJ; i++) {
    size_t n = pick(&x);
    unsigned flags = i % 3 == 0 && n <= 32768 ? 0 : GCH_NOSCAN;
    unsigned char *p = gc_malloc(h, n, flags);
    if (!p) {
      nulls++;
      gc_result_t e = gc_last_error(h);
      KCHECK(k, e == GCH_ENOMEM);
      if (e != GCH_ENOMEM)
        fprintf(stderr, "  gc_malloc(%zu) -> NULL, %s\n", n, gc_result_str(e));
      continue;
    }
    got++;
    KCHECK(k, gc_size_of(h, p) >= n);
    size_t nz = 0;
    for (size_t j = 0; j < n; j = touch_next(j, n)) nz += p[j] != 0;
    KCHECK(k, nz == 0);
    for (size_t j = 0; j < n; j = touch_next(j, n)) p[j] = pat(i, j);
    objs[i] = p;
    osize[i] = n;
    /* keep the heap bounded: drop a few old objects */
    if (i >= 40 && i % 4 == 0) objs[i - 40] = NULL;
  }
  long left = atomic_load(&h->os.fail_countdown);
  int fired = left == 0;
  if (probe_calls == 0) probe_calls = k - left;
  _gc_os_fail_after(&h->os, 0);
  KCHECK(k, got + nulls == NOBJ);
  /* Live data intact and the heap consistent, before and after collecting. */
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < NOBJ; i++) {
      const unsigned char *p = objs[i];
      if (!p) continue;
      size_t bad = 0;
      for (size_t j = 0; j < osize[i]; j = touch_next(j, osize[i]))
        bad += p[j] != pat(i, j);
      KCHECK(k, bad == 0);
    }
    KCHECK(k, gc_verify(h, stderr) == GCH_OK);
    KCHECK(k, gc_collect(h) == GCH_OK);
  }
  /* Memory is back: every kind of allocation works again. */
  for (size_t i = 0; i < 200; i++) {
    size_t n = pick(&x);
    void *p = gc_malloc(h, n, i % 2 ? GCH_NOSCAN : 0);
    KCHECK(k, p != NULL);
    if (!p) {
      fprintf(stderr, "  after the failure: gc_malloc(%zu) -> %s\n", n,
              gc_result_str(gc_last_error(h)));
      break;
    }
  }
  KCHECK(k, gc_verify(h, stderr) == GCH_OK);
  KCHECK(k, gc_root_remove(h, objs) == GCH_OK);
  KCHECK(k, gc_heap_destroy(h) == GCH_OK);
  memset(objs, 0, sizeof objs);
  return (child_fails ? 1 : 0) | (fired ? 16 : 0) | (nulls ? 32 : 0);
}

static void test_k_sweep(uint64_t seed) {
  /* Probe in this process: how many OS calls does the workload make? */
  probe_calls = 0;
  REQUIRE((run_k(1L << 40, seed) & 1) == 0);
  long K = probe_calls + 1;
  if (K > 64) K = 64;
  printf("k-sweep: the workload makes %ld OS memory calls\n", probe_calls);
  CHECK(probe_calls >= 10); /* enough for the sweep to mean something */
  probe_calls = -1;
  int fired = 0, nulled = 0, crashed = 0;
  for (long k = 1; k <= K; k++) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      alarm(30);
      _exit(run_k(k, seed));
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st)) {
      crashed++;
      test_failures++;
      fprintf(stderr, "k=%ld: the child died of signal %d (%s) when the %ld-th "
                      "OS memory call failed\n", k, WTERMSIG(st),
              strsignal(WTERMSIG(st)), k);
      continue;
    }
    int code = WEXITSTATUS(st);
    if (code & 1) {
      test_failures++;
      fprintf(stderr, "k=%ld: checks failed (see above)\n", k);
    }
    fired += (code & 16) != 0;
    nulled += (code & 32) != 0;
  }
  printf("k-sweep: injected failure fired for %d of %ld k, %d run(s) saw an "
         "allocation return NULL, %d crash(es)\n", fired, K, nulled, crashed);
  CHECK(fired >= K * 3 / 4); /* the call count varies a little from run to run */
}

/* ------------------------------------------------------ oom_handler (2) */

static atomic_int handler_calls;
static size_t handler_last_size;
static gc_heap_t *handler_last_heap;
static void *handler_last_ctx;
static void *handler_ret;
static uint64_t fallback[64];

static void *oom_handler(gc_heap_t *heap, size_t size, void *ctx) {
  atomic_fetch_add(&handler_calls, 1);
  handler_last_size = size;
  handler_last_heap = heap;
  handler_last_ctx = ctx;
  return handler_ret;
}

static void *hl_root[64];

static void test_handler_limit(void) {
  int ctx;
  gc_config_t c = gc_config_default();
  c.hard_limit = (size_t)16 << 20;
  c.oom_handler = oom_handler;
  c.oom_ctx = &ctx;
  c.background_sweep = 0; /* sweeping happens only where the library asks */
  gc_heap_t *h = test_heap(&c);
  REQUIRE(gc_root_add(h, hl_root, sizeof hl_root, GCH_ROOT_PRECISE) == GCH_OK);

  /* Successful allocations never call it. */
  atomic_store(&handler_calls, 0);
  for (int i = 0; i < 8; i++) {
    hl_root[i] = gc_malloc(h, (size_t)1 << 20, GCH_NOSCAN);
    CHECK(hl_root[i] != NULL);
  }
  CHECK_EQ(atomic_load(&handler_calls), 0);

  /* Over the limit: called once per failed allocation with its size; its
   * NULL is returned with the reason. */
  handler_ret = NULL;
  size_t big = (size_t)32 << 20;
  CHECK(gc_malloc(h, big, GCH_NOSCAN) == NULL);
  CHECK_EQ(atomic_load(&handler_calls), 1);
  CHECK_EQ(handler_last_size, big);
  CHECK(handler_last_heap == h);
  CHECK(handler_last_ctx == &ctx);
  CHECK_EQ(gc_last_error(h), GCH_ELIMIT);
  CHECK(gc_malloc(h, big + 1, 0) == NULL);
  CHECK_EQ(atomic_load(&handler_calls), 2);
  /* the requested size, or that size rounded up to a word */
  CHECK(handler_last_size == big + 1 || handler_last_size == big + 8);

  /* Its pointer is returned as the allocation's result. */
  handler_ret = fallback;
  CHECK(gc_malloc(h, big, GCH_NOSCAN) == (void *)fallback);
  CHECK_EQ(atomic_load(&handler_calls), 3);
  CHECK(gc_alloc_array(h, NULL, 1) == NULL); /* EINVAL: not an OOM */
  CHECK_EQ(atomic_load(&handler_calls), 3);
  handler_ret = NULL;

  /* Fill up with small live objects: the small path calls it too. */
  int before = atomic_load(&handler_calls);
  uint64_t *q = NULL;
  size_t n = 0;
  while (n < 100000 && (q = gc_malloc(h, 2000, 0)) != NULL) {
    q[0] = (uint64_t)(uintptr_t)hl_root[63];
    hl_root[63] = q;
    n++;
  }
  CHECK(q == NULL);
  CHECK_EQ(atomic_load(&handler_calls), before + 1);
  CHECK_EQ(handler_last_size, 2000);
  CHECK_EQ(gc_last_error(h), GCH_ELIMIT);

  /* Dropping the data makes room again: the failing allocation's own
   * collection must free it for the retry (no explicit gc_collect here). */
  memset(hl_root, 0, sizeof hl_root);
  before = atomic_load(&handler_calls);
  void *again = gc_malloc(h, (size_t)8 << 20, GCH_NOSCAN);
  if (!again)
    fprintf(stderr, "8 MiB refused (%s) with the whole 16 MiB limit garbage: "
                    "the collect-and-retry did not reclaim it\n",
            gc_result_str(gc_last_error(h)));
  CHECK(again != NULL);
  if (again) CHECK_EQ(atomic_load(&handler_calls), before);
  CHECK(gc_verify(h, stderr) == GCH_OK);
  CHECK(gc_root_remove(h, hl_root) == GCH_OK);
  CHECK(gc_heap_destroy(h) == GCH_OK);
}

/* The OS refuses (every mmap fails, so no arena can be reserved): the
 * failing allocation collects and retries, then asks the handler. */
static void test_handler_os(void) {
  gc_config_t c = gc_config_default();
  c.oom_handler = oom_handler;
  c.oom_ctx = NULL;
  c.background_sweep = 0;
  gc_heap_t *h = test_heap(&c);
  REQUIRE(gc_root_add(h, hl_root, sizeof hl_root, GCH_ROOT_PRECISE) == GCH_OK);
  /* warm up: collections have run and have their work buffers */
  for (int i = 0; i < 16; i++) hl_root[i] = gc_malloc(h, 1000, 0);
  CHECK(gc_collect(h) == GCH_OK);
  CHECK(gc_collect(h) == GCH_OK);
  uint64_t cycles0 = test_stats(h).cycles;

  size_t sizes[] = {(size_t)96 << 20, (size_t)200 << 20};
  for (int r = 0; r < 2; r++) {
    for (size_t i = 0; i < 2; i++) {
      atomic_store(&handler_calls, 0);
      handler_ret = r ? (void *)fallback : NULL;
      atomic_store(&mmap_fail_all, 1);
      void *p = gc_malloc(h, sizes[i], GCH_NOSCAN);
      gc_result_t e = gc_last_error(h);
      atomic_store(&mmap_fail_all, 0);
      CHECK_EQ(atomic_load(&handler_calls), 1);
      CHECK_EQ(handler_last_size, sizes[i]);
      CHECK(handler_last_heap == h);
      CHECK(handler_last_ctx == NULL);
      if (r == 0) {
        CHECK(p == NULL);
        CHECK_EQ(e, GCH_ENOMEM);
      } else {
        CHECK(p == (void *)fallback);
      }
    }
  }
  /* "after a collection has been tried" */
  CHECK(test_stats(h).cycles >= cycles0 + 4);
  handler_ret = NULL;
  /* memory is back */
  atomic_store(&handler_calls, 0);
  void *p = gc_malloc(h, (size_t)96 << 20, GCH_NOSCAN);
  CHECK(p != NULL);
  CHECK_EQ(atomic_load(&handler_calls), 0);
  for (int i = 0; i < 16; i++) CHECK(gc_size_of(h, hl_root[i]) >= 1000);
  CHECK(gc_verify(h, stderr) == GCH_OK);
  memset(hl_root, 0, sizeof hl_root);
  CHECK(gc_root_remove(h, hl_root) == GCH_OK);
  CHECK(gc_heap_destroy(h) == GCH_OK);
}

/* ------------------------------------------------- gc_heap_new (3) */

static void test_heap_new_fails(void) {
  /* How many mmap calls does creating (and destroying) a heap make? */
  atomic_store(&mmap_calls, 0);
  gc_heap_t *h = gc_heap_new(NULL, NULL);
  REQUIRE(h);
  long calls = atomic_load(&mmap_calls);
  CHECK(calls >= 1);
  CHECK(gc_heap_destroy(h) == GCH_OK);

  int ok_nulls = 0;
  for (long k = 1; k <= calls + 2; k++) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      alarm(30);
      atomic_store(&mapped_bytes, 0);
      atomic_store(&mmap_counting, 1);
      atomic_store(&mmap_fail_countdown, k);
      gc_result_t err = GCH_OK;
      gc_heap_t *x = gc_heap_new(NULL, &err);
      int fired = atomic_load(&mmap_fail_countdown) == 0;
      atomic_store(&mmap_fail_countdown, 0);
      int fails = 0;
      if (x) {
        /* the failure hit after creation (or a retry succeeded): the heap
         * must then be fully usable */
        void *p = gc_malloc(x, 100, 0);
        if (!p || gc_verify(x, NULL) != GCH_OK) fails++;
        if (gc_heap_destroy(x) != GCH_OK) fails++;
      } else {
        if (!fired) fails++, fprintf(stderr, "[k=%ld] NULL without a failure\n", k);
        if (err != GCH_ENOMEM) {
          fails++;
          fprintf(stderr, "[k=%ld] gc_heap_new -> NULL, %s (want ENOMEM)\n",
                  k, gc_result_str(err));
        }
      }
      long long leaked = atomic_load(&mapped_bytes);
      atomic_store(&mmap_counting, 0);
      if (leaked != 0) {
        fails++;
        fprintf(stderr, "[k=%ld] gc_heap_new %s: %lld bytes still mapped "
                        "afterwards\n", k, x ? "+ destroy" : "failed", leaked);
      }
      _exit((fails ? 1 : 0) | (x ? 0 : 2));
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st)) {
      test_failures++;
      fprintf(stderr, "gc_heap_new with mmap call %ld failing: died of signal "
                      "%d (%s)\n", k, WTERMSIG(st), strsignal(WTERMSIG(st)));
      continue;
    }
    if (WEXITSTATUS(st) & 1) test_failures++;
    ok_nulls += (WEXITSTATUS(st) & 2) != 0;
  }
  printf("gc_heap_new: %ld mmap calls; failing each returned NULL %d times\n",
         calls, ok_nulls);
  CHECK(ok_nulls >= 1);
}

int main(int argc, char **argv) {
  uint64_t seed = test_seed(argc, argv);
  test_k_sweep(seed);
  test_handler_limit();
  test_handler_os();
  test_heap_new_fails();
  return test_done("test_oom");
}
