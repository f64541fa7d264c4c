/*
 * test_badinput.c -- every public entry point fed invalid or extreme input:
 * it must fail cleanly with the documented result (or NULL and the reason
 * in gc_last_error), never crash, and leave the heap usable.
 *
 *   - size 0; sizes near SIZE_MAX (Boehm's hugetest list, the CVE-2016-9427
 *     value, SSIZE_MAX-4096 .. SIZE_MAX); n * size overflow in arrays;
 *   - invalid types, roots, root callbacks, flags, NULL and fake heaps;
 *   - threads: unattached callers, double attach/detach, gc_collect and
 *     registry changes from inside a root callback, destroying a heap that
 *     another thread is attached to;
 *   - gc_result_str over every code; invalid configs; a hard memory limit.
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sched.h>
#include <sys/types.h>

static gc_heap_t *H;
static atomic_int oom_calls;

static void *count_oom(gc_heap_t *h, size_t size, void *ctx) {
  (void)h;
  (void)size;
  (void)ctx;
  atomic_fetch_add(&oom_calls, 1);
  return NULL;
}

/* Put a known, different error in the calling thread's slot, so that a
 * later check proves the call under test set its own. */
static void prime_error(gc_heap_t *h) {
  CHECK(gc_malloc(h, 8, 0x80u) == NULL); /* invalid flags */
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
}

/* Allocate a few objects of several sizes, fill, collect, check, verify. */
static void *usable_root[8];
static void check_usable(gc_heap_t *h, const char *when) {
  static const size_t sizes[8] = {1, 16, 100, 600, 4096, 32768, 40000, 300000};
  /* usable_root is a root of H; other heaps get it for the duration */
  int added = gc_root_add(h, usable_root, sizeof usable_root,
                          GCH_ROOT_PRECISE) == GCH_OK;
  for (int i = 0; i < 8; i++) {
    unsigned char *p = gc_malloc(h, sizes[i], i % 2 ? GCH_NOSCAN : 0);
    CHECK(p != NULL);
    if (!p) {
      fprintf(stderr, "  heap unusable %s: gc_malloc(%zu) -> %s\n", when,
              sizes[i], gc_result_str(gc_last_error(h)));
      continue;
    }
    CHECK(gc_size_of(h, p) >= sizes[i]);
    memset(p, 0x5a + i, sizes[i]);
    usable_root[i] = p;
  }
  CHECK(gc_collect(h) == GCH_OK);
  for (int i = 0; i < 8; i++) {
    unsigned char *p = usable_root[i];
    if (!p) continue;
    size_t bad = 0;
    for (size_t j = 0; j < sizes[i]; j++) bad += p[j] != (unsigned char)(0x5a + i);
    CHECK(bad == 0);
    usable_root[i] = NULL;
  }
  CHECK(gc_verify(h, stderr) == GCH_OK);
  if (added) CHECK(gc_root_remove(h, usable_root) == GCH_OK);
}

/* ------------------------------------------------------------------ sizes */

static void test_size_zero(void) {
  for (unsigned flags = 0; flags <= GCH_NOSCAN; flags++) {
    void *a = gc_malloc(H, 0, flags);
    void *b = gc_malloc(H, 0, flags);
    CHECK(a != NULL);
    CHECK(b != NULL);
    CHECK(a != b);
    if (a) CHECK(gc_base(H, a) != NULL);
    if (b) CHECK(gc_base(H, b) != NULL);
  }
  uint64_t map = 1;
  const gc_type_t *T;
  REQUIRE(gc_type_new(H, "p", 16, &map, 1, &T) == GCH_OK);
  void *e1 = gc_alloc_array(H, T, 0);
  void *e2 = gc_alloc_array(H, T, 0);
  CHECK(e1 != NULL);
  CHECK(e2 != NULL);
  CHECK(e1 != e2);
}

static void test_huge_sizes(void) {
  const size_t SMAX = (size_t)SSIZE_MAX;
  size_t list[16384];
  size_t n = 0;
  /* Boehm's tests/huge.c and the CVE-2016-9427 value */
  size_t fixed[] = {SMAX - 1024,
                    SMAX,
                    SMAX + 1,
                    SMAX + 1024,
                    SIZE_MAX - 1024,
                    SIZE_MAX - 16,
                    SIZE_MAX - 8,
                    SIZE_MAX - 4,
                    SIZE_MAX,
                    (size_t)0xFFFFFFFFFFFFF2ABull,
                    (size_t)1 << 47,
                    ((size_t)1 << 47) + 1,
                    (size_t)1 << 48,
                    (size_t)1 << 62,
                    (size_t)1 << 63,
                    SIZE_MAX / 2 + 7};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) list[n++] = fixed[i];
  for (size_t s = SMAX - 4096; s <= SMAX - 1; s += 97) list[n++] = s;
  for (size_t k = 0; k <= 4096; k++) list[n++] = SIZE_MAX - k;
  for (size_t k = 0; k < 64; k++) list[n++] = (SMAX + 1) + k * ((size_t)1 << 56);

  atomic_store(&oom_calls, 0);
  size_t wrong = 0;
  for (size_t i = 0; i < n; i++) {
    for (unsigned flags = 0; flags <= GCH_NOSCAN; flags++) {
      prime_error(H);
      void *p = gc_malloc(H, list[i], flags);
      gc_result_t e = gc_last_error(H);
      if (p != NULL || e != GCH_EOVERFLOW) {
        if (wrong++ < 5)
          fprintf(stderr, "  gc_malloc(%#zx, %u) -> %p, %s (want NULL, "
                          "EOVERFLOW)\n", list[i], flags, p, gc_result_str(e));
      }
    }
  }
  CHECK_EQ(wrong, 0);
  /* Overflow is not lack of memory: the OOM handler stays out of it. */
  CHECK_EQ(atomic_load(&oom_calls), 0);
  check_usable(H, "after huge sizes");
}

static void test_array_overflow(void) {
  static const size_t tsizes[] = {8, 16, 24, 40, 4096, 1u << 20};
  size_t wrong = 0;
  for (size_t k = 0; k < sizeof tsizes / sizeof tsizes[0]; k++) {
    size_t ts = tsizes[k];
    uint64_t map[2] = {1, 0};
    const gc_type_t *T;
    REQUIRE(gc_type_new(H, "arr", ts, map, 1, &T) == GCH_OK);
    size_t ns[] = {SIZE_MAX,
                   SIZE_MAX / ts + 1,
                   SIZE_MAX / ts + 2,
                   (SIZE_MAX / ts + 1) * 2 + 1, /* wraps to a small product */
                   ((size_t)1 << 63) / ts * 2 + 1,
                   ((size_t)1 << 47) / ts + 1,
                   (size_t)1 << 60};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
      prime_error(H);
      void *p = gc_alloc_array(H, T, ns[i]);
      gc_result_t e = gc_last_error(H);
      if (p != NULL || e != GCH_EOVERFLOW) {
        if (wrong++ < 5)
          fprintf(stderr, "  gc_alloc_array(%zu-byte type, %#zx) -> %p, %s "
                          "(want NULL, EOVERFLOW)\n", ts, ns[i], p,
                  gc_result_str(e));
      }
    }
  }
  CHECK_EQ(wrong, 0);
  check_usable(H, "after array overflow");
}

/* ------------------------------------------------------------------ types */

static void test_types(void) {
  const gc_type_t *T;
  const gc_type_t *const sentinel = (const gc_type_t *)(uintptr_t)0x10;
  uint64_t one = 1, map2[2] = {1, 1};
#define TYPE_FAILS(expr)                                \
  do {                                                  \
    T = sentinel;                                       \
    gc_result_t r_ = (expr);                            \
    CHECK_EQ(r_, GCH_EINVAL);                           \
    CHECK(T == NULL || T == sentinel);                  \
  } while (0)
  TYPE_FAILS(gc_type_new(H, "zero", 0, NULL, 0, &T));
  TYPE_FAILS(gc_type_new(H, "zero", 0, &one, 1, &T));
  TYPE_FAILS(gc_type_new(H, "odd", 12, &one, 1, &T));
  TYPE_FAILS(gc_type_new(H, "odd", 7, NULL, 0, &T));
  TYPE_FAILS(gc_type_new(H, "odd", 1, NULL, 0, &T));
  /* map bits beyond size/8 */
  uint64_t b2 = 4; /* word 2 of a 2-word type */
  TYPE_FAILS(gc_type_new(H, "long", 16, &b2, 1, &T));
  uint64_t b1 = 2;
  TYPE_FAILS(gc_type_new(H, "long", 8, &b1, 1, &T));
  uint64_t top = (uint64_t)1 << 63;
  TYPE_FAILS(gc_type_new(H, "long", 504, &top, 1, &T)); /* 63 words */
  /* more map words than the type needs */
  TYPE_FAILS(gc_type_new(H, "long", 64, map2, 2, &T));
  TYPE_FAILS(gc_type_new(H, "long", 512, map2, 2, &T));
  uint64_t m65[2] = {1, 2}; /* bit 65 of a 65-word type */
  TYPE_FAILS(gc_type_new(H, "long", 520, m65, 2, &T));
  /* map words promised but no map */
  TYPE_FAILS(gc_type_new(H, "nomap", 16, NULL, 1, &T));
  /* NULL out / NULL heap */
  CHECK_EQ(gc_type_new(H, "x", 16, &one, 1, NULL), GCH_EINVAL);
  T = sentinel;
  CHECK_EQ(gc_type_new(NULL, "x", 16, &one, 1, &T), GCH_EINVAL);
  CHECK(T == NULL || T == sentinel);
  /* absurd size: refused, not registered */
  T = sentinel;
  gc_result_t r = gc_type_new(H, "huge", SIZE_MAX & ~(size_t)7, NULL, 0, &T);
  CHECK(r == GCH_EINVAL || r == GCH_EOVERFLOW);
  CHECK(T == NULL || T == sentinel);

  /* Valid edge cases still work. */
  uint64_t m65ok[2] = {1, 1}; /* word 0 and word 64 of 65 */
  CHECK_EQ(gc_type_new(H, "ok65", 520, m65ok, 2, &T), GCH_OK);
  CHECK(T != NULL && gc_type_size(T) == 520);
  CHECK_EQ(gc_type_new(H, "noscan", 24, NULL, 0, &T), GCH_OK);
  CHECK(T != NULL);
  if (T) {
    void *p = gc_alloc(H, T);
    CHECK(p != NULL);
  }
  /* no name: refused, or given some name */
  T = NULL;
  r = gc_type_new(H, NULL, 8, &one, 1, &T);
  CHECK(r == GCH_OK || r == GCH_EINVAL);
  if (r == GCH_OK) CHECK(T != NULL && gc_type_name(T) != NULL);
  /* the name is copied */
  char name[16] = "copied";
  CHECK_EQ(gc_type_new(H, name, 8, &one, 1, &T), GCH_OK);
  strcpy(name, "changed");
  CHECK(T != NULL && strcmp(gc_type_name(T), "copied") == 0);

  CHECK(gc_type_name(NULL) == NULL);
  CHECK_EQ(gc_type_size(NULL), 0);
  /* gc_alloc of no type */
  prime_error(H);
  CHECK(gc_alloc(H, NULL) == NULL);
  CHECK_EQ(gc_last_error(H), GCH_EINVAL);
  CHECK(gc_malloc(H, 8, 0x2u) == NULL);
  CHECK_EQ(gc_last_error(H), GCH_EINVAL);
  CHECK(gc_alloc_array(H, NULL, 4) == NULL);
  CHECK_EQ(gc_last_error(H), GCH_EINVAL);
#undef TYPE_FAILS
}

/* ------------------------------------------------------------------ roots */

static void cb_a(gc_visitor_t *v, void *ctx) {
  (void)v;
  (void)ctx;
}

static void test_roots(void) {
  static uint64_t buf[16];
  char *cb = (char *)buf;
  CHECK_EQ(gc_root_add(H, NULL, 64, GCH_ROOT_PRECISE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(H, NULL, 64, GCH_ROOT_CONSERVATIVE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(H, buf, 0, GCH_ROOT_PRECISE), GCH_EINVAL);
  /* start + size wraps around the address space */
  CHECK_EQ(gc_root_add(H, (void *)(UINTPTR_MAX - 15), 64, GCH_ROOT_CONSERVATIVE),
           GCH_EINVAL);
  CHECK_EQ(gc_root_add(H, buf, SIZE_MAX, GCH_ROOT_CONSERVATIVE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(H, buf, SIZE_MAX - 7, GCH_ROOT_PRECISE), GCH_EINVAL);
  /* misaligned precise ranges */
  CHECK_EQ(gc_root_add(H, cb + 1, 8, GCH_ROOT_PRECISE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(H, cb + 4, 16, GCH_ROOT_PRECISE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(H, buf, 12, GCH_ROOT_PRECISE), GCH_EINVAL);
  /* bad flags */
  CHECK_EQ(gc_root_add(H, buf, 64, 2u), GCH_EINVAL);
  CHECK_EQ(gc_root_add(H, buf, 64, 0xffu), GCH_EINVAL);
  /* none of the failures registered anything */
  CHECK_EQ(gc_root_remove(H, buf), GCH_ENOTFOUND);
  CHECK_EQ(gc_root_remove(H, cb + 1), GCH_ENOTFOUND);

  /* misaligned conservative ranges are fine */
  CHECK_EQ(gc_root_add(H, cb + 1, 13, GCH_ROOT_CONSERVATIVE), GCH_OK);
  CHECK_EQ(gc_root_add(H, cb + 1, 13, GCH_ROOT_CONSERVATIVE), GCH_EEXIST);
  CHECK_EQ(gc_root_remove(H, cb + 1), GCH_OK);
  CHECK_EQ(gc_root_remove(H, cb + 1), GCH_ENOTFOUND);

  /* duplicates by start address, whatever the size or kind */
  CHECK_EQ(gc_root_add(H, buf, 64, GCH_ROOT_PRECISE), GCH_OK);
  CHECK_EQ(gc_root_add(H, buf, 64, GCH_ROOT_PRECISE), GCH_EEXIST);
  CHECK_EQ(gc_root_add(H, buf, 128, GCH_ROOT_PRECISE), GCH_EEXIST);
  CHECK_EQ(gc_root_add(H, buf, 64, GCH_ROOT_CONSERVATIVE), GCH_EEXIST);
  CHECK_EQ(gc_root_add(H, buf + 1, 64, GCH_ROOT_PRECISE), GCH_OK);
  CHECK_EQ(gc_root_remove(H, buf), GCH_OK);
  CHECK_EQ(gc_root_remove(H, buf), GCH_ENOTFOUND);
  CHECK_EQ(gc_root_remove(H, buf + 1), GCH_OK);
  CHECK_EQ(gc_root_remove(H, buf + 2), GCH_ENOTFOUND);
  CHECK_EQ(gc_root_remove(H, (void *)(uintptr_t)0x1000), GCH_ENOTFOUND);

  /* callbacks */
  int ctx1, ctx2;
  CHECK_EQ(gc_root_callback_add(H, NULL, NULL), GCH_EINVAL);
  CHECK_EQ(gc_root_callback_remove(H, NULL, NULL), GCH_EINVAL);
  CHECK_EQ(gc_root_callback_remove(H, cb_a, &ctx1), GCH_ENOTFOUND);
  CHECK_EQ(gc_root_callback_add(H, cb_a, &ctx1), GCH_OK);
  CHECK_EQ(gc_root_callback_add(H, cb_a, &ctx1), GCH_EEXIST);
  CHECK_EQ(gc_root_callback_add(H, cb_a, &ctx2), GCH_OK);
  CHECK_EQ(gc_root_callback_remove(H, cb_a, &ctx1), GCH_OK);
  CHECK_EQ(gc_root_callback_remove(H, cb_a, &ctx1), GCH_ENOTFOUND);
  CHECK_EQ(gc_root_callback_remove(H, cb_a, &ctx2), GCH_OK);
  CHECK(gc_collect(H) == GCH_OK);
}

/* ------------------------------------------------------------ NULL heaps */

static void test_null_heap(void) {
  static uint64_t fake_mem[1024]; /* zeroed memory that is no heap */
  gc_heap_t *fakes[2] = {NULL, (gc_heap_t *)fake_mem};
  int x = 0;
  for (int i = 0; i < 2; i++) {
    gc_heap_t *f = fakes[i];
    gc_stats_t st;
    const gc_type_t *T = NULL;
    uint64_t one = 1;
    CHECK(gc_malloc(f, 16, 0) == NULL);
    CHECK(gc_malloc(f, 16, GCH_NOSCAN) == NULL);
    CHECK(gc_alloc_array(f, NULL, 1) == NULL);
    CHECK(gc_alloc(f, NULL) == NULL);
    CHECK_EQ(gc_collect(f), GCH_EINVAL);
    CHECK_EQ(gc_get_stats(f, &st), GCH_EINVAL);
    CHECK_EQ(gc_verify(f, NULL), GCH_EINVAL);
    CHECK_EQ(gc_heap_destroy(f), GCH_EINVAL);
    CHECK_EQ(gc_thread_attach(f), GCH_EINVAL);
    CHECK_EQ(gc_thread_detach(f), GCH_EINVAL);
    CHECK_EQ(gc_thread_is_attached(f), 0);
    CHECK_EQ(gc_last_error(f), GCH_EINVAL);
    CHECK_EQ(gc_type_new(f, "t", 8, &one, 1, &T), GCH_EINVAL);
    CHECK_EQ(gc_root_add(f, &x, sizeof x, GCH_ROOT_CONSERVATIVE), GCH_EINVAL);
    CHECK_EQ(gc_root_remove(f, &x), GCH_EINVAL);
    CHECK_EQ(gc_root_callback_add(f, cb_a, NULL), GCH_EINVAL);
    CHECK_EQ(gc_root_callback_remove(f, cb_a, NULL), GCH_EINVAL);
    CHECK_EQ(gc_size_of(f, &x), 0);
    CHECK(gc_base(f, &x) == NULL);
    gc_safepoint_slow(f); /* must simply return */
    gc_blocking_enter(f);
    gc_blocking_leave(f);
  }
  for (size_t i = 0; i < sizeof fake_mem / sizeof fake_mem[0]; i++)
    CHECK(fake_mem[i] == 0); /* nothing wrote into the fake heap */
  gc_stats_t st;
  CHECK_EQ(gc_get_stats(H, NULL), GCH_EINVAL);
  CHECK_EQ(gc_get_stats(H, &st), GCH_OK);
}

/* ---------------------------------------------------- result strings */

static void test_result_str(void) {
  static const struct { gc_result_t r; const char *text; } all[] = {
#define X(name, value, text) {name, text},
      GCH_RESULT_LIST(X)
#undef X
  };
  size_t n = sizeof all / sizeof all[0];
  CHECK(n >= 13);
  int maxv = 0;
  for (size_t i = 0; i < n; i++) {
    if ((int)all[i].r > maxv) maxv = (int)all[i].r;
    for (size_t j = 0; j < i; j++) CHECK(all[i].r != all[j].r);
  }
  for (size_t i = 0; i < n; i++) {
    const char *s = gc_result_str(all[i].r);
    CHECK(s != NULL);
    if (!s) continue;
    CHECK(strcmp(s, all[i].text) == 0);
    CHECK(strcmp(s, "unknown result") != 0);
    for (size_t j = 0; j < i; j++) CHECK(strcmp(s, gc_result_str(all[j].r)) != 0);
  }
  int unknown[] = {maxv + 1, maxv + 2, 1000, -1, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *s = gc_result_str((gc_result_t)unknown[i]);
    CHECK(s != NULL && strcmp(s, "unknown result") == 0);
  }
}

/* --------------------------------------------------------------- configs */

static void test_configs(void) {
  gc_config_t c = gc_config_default();
  CHECK_EQ(c.mode, GCH_MODE_STW);
  CHECK_EQ(c.hard_limit, 0);
  int bad_modes[] = {2, 7, -1, 1000};
  for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
    gc_config_t b = gc_config_default();
    b.mode = (gc_mode_t)bad_modes[i];
    gc_result_t err = GCH_OK;
    gc_heap_t *h = gc_heap_new(&b, &err);
    CHECK(h == NULL);
    CHECK_EQ(err, GCH_EINVAL);
    if (h) gc_heap_destroy(h);
    h = gc_heap_new(&b, NULL); /* err may be NULL */
    CHECK(h == NULL);
    if (h) gc_heap_destroy(h);
  }
  /* NULL config = defaults; the creating thread is attached. */
  gc_result_t err = GCH_EINVAL;
  gc_heap_t *h = gc_heap_new(NULL, &err);
  CHECK(h != NULL);
  CHECK_EQ(err, GCH_OK);
  if (h) {
    CHECK(gc_thread_is_attached(h));
    CHECK_EQ(gc_last_error(h), GCH_OK);
    CHECK_EQ(gc_thread_attach(h), GCH_EATTACHED);
    CHECK_EQ(gc_heap_destroy(h), GCH_OK);
  }
}

/* ---------------------------------------------------------- hard limit */

#define LIM ((size_t)64 << 20)
static void *lim_objs[256];

static void test_hard_limit(void) {
  gc_config_t c = gc_config_default();
  c.hard_limit = LIM;
  c.oom_handler = count_oom;
  c.background_sweep = 0; /* sweeping happens only where the library asks */
  gc_heap_t *h = test_heap(&c);
  REQUIRE(gc_root_add(h, lim_objs, sizeof lim_objs, GCH_ROOT_PRECISE) == GCH_OK);

  /* One object over the limit fails at once. */
  prime_error(h);
  CHECK(gc_malloc(h, LIM + 1, GCH_NOSCAN) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_ELIMIT);
  prime_error(h);
  CHECK(gc_malloc(h, (size_t)1 << 40, GCH_NOSCAN) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_ELIMIT);

  for (int round = 0; round < 3; round++) {
    /* Fill with live 1-MiB objects until the limit refuses. */
    size_t n = 0;
    void *p = NULL;
    atomic_store(&oom_calls, 0);
    while (n < 256 && (p = gc_malloc(h, (size_t)1 << 20, GCH_NOSCAN)) != NULL) {
      memset(p, (int)n, (size_t)1 << 20);
      lim_objs[n++] = p;
    }
    CHECK(p == NULL);
    CHECK_EQ(gc_last_error(h), GCH_ELIMIT);
    CHECK(n <= LIM >> 20);
    CHECK(n >= (LIM >> 20) * 3 / 4); /* most of the limit is usable */
    CHECK(atomic_load(&oom_calls) >= 1);
    gc_stats_t st = test_stats(h);
    CHECK(st.bytes_mapped <= LIM);
    /* Small objects are refused too, once nothing is left (a live list
     * hanging off lim_objs[255]). */
    uint64_t *q = NULL;
    size_t k = 0;
    while (k < 100000 && (q = gc_malloc(h, 4000, 0)) != NULL) {
      q[0] = (uint64_t)(uintptr_t)lim_objs[255];
      lim_objs[255] = q;
      k++;
    }
    CHECK(q == NULL);
    if (!q) CHECK_EQ(gc_last_error(h), GCH_ELIMIT);
    CHECK(k < 100000);
    /* Live data intact. */
    for (size_t i = 0; i < n; i++) {
      unsigned char *b = lim_objs[i];
      CHECK(b[0] == (unsigned char)i && b[((size_t)1 << 20) - 1] == (unsigned char)i);
    }
    CHECK(gc_verify(h, stderr) == GCH_OK);
    /* Drop it: allocation works again at once -- the failing allocation's
     * own collection must make the room (round 0: no gc_collect first),
     * and after an explicit gc_collect (rounds 1, 2). */
    memset(lim_objs, 0, sizeof lim_objs);
    if (round > 0) CHECK(gc_collect(h) == GCH_OK);
    size_t again = 0;
    for (int i = 0; i < 32; i++) {
      void *r = gc_malloc(h, (size_t)1 << 20, GCH_NOSCAN);
      again += r != NULL;
      lim_objs[i] = r;
    }
    if (again != 32)
      fprintf(stderr, "round %d: only %zu of 32 MiB allocated again after "
                      "dropping everything (%s)\n", round, again,
              gc_result_str(gc_last_error(h)));
    CHECK_EQ(again, 32);
    memset(lim_objs, 0, sizeof lim_objs);
  }
  check_usable(h, "after hitting the hard limit");
  CHECK(gc_root_remove(h, lim_objs) == GCH_OK);
  CHECK(gc_heap_destroy(h) == GCH_OK);
}

/* -------------------------------------------------------------- threads */

typedef struct unatt {
  int checks, fails;
  void *obj; /* allocated by the main thread */
} unatt_t;

#define TCHECK(u, c)                                                         \
  do {                                                                       \
    (u)->checks++;                                                           \
    if (!(c)) {                                                              \
      (u)->fails++;                                                          \
      fprintf(stderr, "%s:%d: [thread] CHECK failed: %s\n", __FILE__,        \
              __LINE__, #c);                                                 \
    }                                                                        \
  } while (0)

static void *unattached_main(void *arg) {
  unatt_t *u = arg;
  uint64_t one = 1;
  const gc_type_t *T = NULL;
  TCHECK(u, gc_type_new(H, "t", 8, &one, 1, &T) == GCH_OK);
  TCHECK(u, !gc_thread_is_attached(H));
  TCHECK(u, gc_malloc(H, 16, 0) == NULL);
  TCHECK(u, gc_last_error(H) == GCH_ENOTATTACHED);
  TCHECK(u, gc_malloc(H, 5, GCH_NOSCAN) == NULL);
  TCHECK(u, gc_last_error(H) == GCH_ENOTATTACHED);
  TCHECK(u, gc_malloc(H, 100000, GCH_NOSCAN) == NULL);
  TCHECK(u, gc_last_error(H) == GCH_ENOTATTACHED);
  if (T) {
    TCHECK(u, gc_alloc(H, T) == NULL);
    TCHECK(u, gc_last_error(H) == GCH_ENOTATTACHED);
    TCHECK(u, gc_alloc_array(H, T, 3) == NULL);
    TCHECK(u, gc_last_error(H) == GCH_ENOTATTACHED);
  }
  TCHECK(u, gc_collect(H) == GCH_ENOTATTACHED);
  TCHECK(u, gc_verify(H, NULL) == GCH_ENOTATTACHED);
  TCHECK(u, gc_thread_detach(H) == GCH_ENOTATTACHED);
  TCHECK(u, gc_heap_destroy(H) == GCH_ENOTATTACHED);
  gc_safepoint_slow(H); /* no-ops when unattached */
  gc_blocking_enter(H);
  gc_blocking_leave(H);

  /* Attach: now it works, and the thread's error slot is its own. */
  TCHECK(u, gc_thread_attach(H) == GCH_OK);
  TCHECK(u, gc_thread_is_attached(H));
  TCHECK(u, gc_thread_attach(H) == GCH_EATTACHED);
  uint64_t *p = gc_malloc(H, 64, 0);
  TCHECK(u, p != NULL);
  if (p) {
    p[0] = (uint64_t)(uintptr_t)u->obj;
    TCHECK(u, gc_size_of(H, p) >= 64);
  }
  TCHECK(u, gc_malloc(H, SIZE_MAX, 0) == NULL);
  TCHECK(u, gc_last_error(H) == GCH_EOVERFLOW);
  TCHECK(u, gc_thread_detach(H) == GCH_OK);
  TCHECK(u, !gc_thread_is_attached(H));
  TCHECK(u, gc_thread_detach(H) == GCH_ENOTATTACHED);
  TCHECK(u, gc_malloc(H, 16, 0) == NULL);
  TCHECK(u, gc_last_error(H) == GCH_ENOTATTACHED);
  /* Re-attach after detach works too. */
  TCHECK(u, gc_thread_attach(H) == GCH_OK);
  TCHECK(u, gc_malloc(H, 16, 0) != NULL);
  TCHECK(u, gc_thread_detach(H) == GCH_OK);
  return NULL;
}

static void test_unattached(void) {
  unatt_t u = {0, 0, NULL};
  u.obj = gc_malloc(H, 32, GCH_NOSCAN);
  REQUIRE(u.obj);
  prime_error(H); /* main's slot: EINVAL */
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, unattached_main, &u) == 0);
  gc_blocking_enter(H);
  pthread_join(th, NULL);
  gc_blocking_leave(H);
  CHECK(u.checks >= 30);
  test_failures += u.fails;
  /* The other thread's failures did not touch this thread's slot. */
  CHECK_EQ(gc_last_error(H), GCH_EINVAL);
  CHECK_EQ(gc_thread_attach(H), GCH_EATTACHED);
  CHECK_EQ(test_stats(H).threads, 1);
}

/* Inside a root callback (the world is stopped): no collection, no changes
 * to the registries, no detach, no destroy. */
static gc_result_t in_cb[8];
static int in_cb_runs;
static uint64_t cb_buf[4];
static void busy_cb(gc_visitor_t *v, void *ctx) {
  (void)v;
  gc_heap_t *h = ctx;
  if (in_cb_runs++) return;
  in_cb[0] = gc_collect(h);
  in_cb[1] = GCH_EBUSY; /* unused slot */
  in_cb[2] = gc_root_add(h, cb_buf, sizeof cb_buf, GCH_ROOT_PRECISE);
  in_cb[3] = gc_root_callback_add(h, cb_a, NULL);
  in_cb[4] = gc_root_callback_remove(h, busy_cb, ctx);
  in_cb[5] = gc_thread_detach(h);
  in_cb[6] = gc_heap_destroy(h);
  in_cb[7] = gc_root_remove(h, cb_buf);
}

static void test_callback_busy(void) {
  uint64_t before = test_stats(H).cycles;
  REQUIRE(gc_root_callback_add(H, busy_cb, H) == GCH_OK);
  in_cb_runs = 0;
  CHECK(gc_collect(H) == GCH_OK);
  CHECK_EQ(in_cb_runs, 1);
  CHECK_EQ(in_cb[0], GCH_EBUSY);
  CHECK_EQ(in_cb[1], GCH_EBUSY);
  CHECK_EQ(in_cb[2], GCH_EBUSY);
  CHECK_EQ(in_cb[3], GCH_EBUSY);
  CHECK_EQ(in_cb[4], GCH_EBUSY);
  CHECK_EQ(in_cb[5], GCH_EBUSY);
  CHECK_EQ(in_cb[6], GCH_EBUSY);
  CHECK_EQ(in_cb[7], GCH_EBUSY);
  /* exactly one cycle ran, and nothing was registered from inside */
  CHECK_EQ(test_stats(H).cycles, before + 1);
  CHECK_EQ(gc_root_remove(H, cb_buf), GCH_ENOTFOUND);
  CHECK_EQ(gc_root_callback_remove(H, cb_a, NULL), GCH_ENOTFOUND);
  CHECK(gc_thread_is_attached(H));
  CHECK_EQ(gc_root_callback_remove(H, busy_cb, H), GCH_OK);
  check_usable(H, "after the busy callback");
}

/* Destroying a heap while another thread is attached: EBUSY, heap intact;
 * once that thread detaches, destroy works. */
static atomic_int other_state; /* 1 attached, 2 may detach, 3 detached */
static void *other_obj;
static void *other_main(void *arg) {
  gc_heap_t *h = arg;
  if (gc_thread_attach(h) != GCH_OK) return (void *)1;
  if (gc_root_add(h, &other_obj, sizeof other_obj, GCH_ROOT_PRECISE) != GCH_OK)
    return (void *)1;
  void *p = gc_malloc(h, 100, 0);
  other_obj = p;
  atomic_store(&other_state, 1);
  gc_blocking_enter(h);
  while (atomic_load(&other_state) != 2) sched_yield();
  gc_blocking_leave(h);
  uintptr_t bad = p == NULL || gc_size_of(h, p) < 100;
  if (gc_root_remove(h, &other_obj) != GCH_OK) bad = 1;
  if (gc_thread_detach(h) != GCH_OK) bad = 1;
  atomic_store(&other_state, 3);
  return (void *)bad;
}

static void test_destroy_busy(void) {
  gc_config_t c = gc_config_default();
  gc_heap_t *h = test_heap(&c);
  atomic_store(&other_state, 0);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, other_main, h) == 0);
  while (atomic_load(&other_state) != 1) sched_yield();
  CHECK_EQ(test_stats(h).threads, 2);
  CHECK_EQ(gc_heap_destroy(h), GCH_EBUSY);
  CHECK_EQ(gc_heap_destroy(h), GCH_EBUSY);
  /* still fully usable, still attached */
  CHECK(gc_thread_is_attached(h));
  check_usable(h, "after a refused destroy");
  atomic_store(&other_state, 2);
  gc_blocking_enter(h);
  void *res = (void *)1;
  pthread_join(th, &res);
  gc_blocking_leave(h);
  CHECK(res == NULL);
  CHECK_EQ(test_stats(h).threads, 1);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  gc_config_t c = gc_config_default();
  c.oom_handler = count_oom;
  H = test_heap(&c);
  CHECK_EQ(gc_last_error(H), GCH_OK);
  REQUIRE(gc_root_add(H, usable_root, sizeof usable_root, GCH_ROOT_PRECISE) == GCH_OK);

  test_size_zero();
  test_huge_sizes();
  test_array_overflow();
  test_types();
  test_roots();
  test_null_heap();
  test_result_str();
  test_unattached();
  test_callback_busy();
  check_usable(H, "at the end");

  test_configs();
  test_destroy_busy();
  test_hard_limit();

  CHECK(gc_root_remove(H, usable_root) == GCH_OK);
  CHECK(gc_heap_destroy(H) == GCH_OK);
  return test_done("test_badinput");
}
