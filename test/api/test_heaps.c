/*
 * test_heaps.c -- several heaps in one process are independent.
 *
 *   - objects of heap A are foreign to heap B (gc_base/gc_size_of), in
 *     both directions, for tiny, small, header and large objects;
 *   - collecting A frees A's garbage only: B's unrooted objects stay
 *     allocated and intact until B collects; a pointer from an A object to
 *     a B object keeps nothing alive in B;
 *   - stats are per heap (allocation, cycles, frees, threads);
 *   - a thread attached to both heaps, detached from one; a second thread
 *     attached to B only;
 *   - destroying A leaves B working (allocate, collect, verify); many heaps
 *     created and destroyed in turn.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

static const size_t SIZES[] = {5, 24, 200, 1000, 20000, 50000, 300000};
#define NS (sizeof SIZES / sizeof SIZES[0])
#define PER 64 /* objects of each size per heap */

typedef struct heapset {
  gc_heap_t *h;
  void *objs[NS * PER]; /* a root of h (when rooted) */
  uint8_t tag;
} heapset_t;

static void fill(heapset_t *s) {
  for (size_t k = 0; k < NS; k++)
    for (size_t i = 0; i < PER; i++) {
      size_t n = SIZES[k];
      unsigned char *p = gc_malloc(s->h, n, i % 2 ? GCH_NOSCAN : 0);
      REQUIRE(p);
      memset(p, s->tag + (int)i, n);
      s->objs[k * PER + i] = p;
    }
}

static size_t count_bad(heapset_t *s) {
  size_t bad = 0;
  for (size_t k = 0; k < NS; k++)
    for (size_t i = 0; i < PER; i++) {
      const unsigned char *p = s->objs[k * PER + i];
      if (!p) continue;
      if (gc_size_of(s->h, p) < SIZES[k]) {
        bad++;
        continue;
      }
      for (size_t j = 0; j < SIZES[k]; j++)
        if (p[j] != (unsigned char)(s->tag + (int)i)) {
          bad++;
          break;
        }
    }
  return bad;
}

/* Every object of `of` is foreign to heap h. */
static size_t count_resolved(gc_heap_t *h, heapset_t *of) {
  size_t n = 0;
  for (size_t k = 0; k < NS; k++)
    for (size_t i = 0; i < PER; i++) {
      const char *p = of->objs[k * PER + i];
      if (!p) continue;
      n += gc_base(h, p) != NULL;
      n += gc_base(h, p + SIZES[k] / 2) != NULL;
      n += gc_size_of(h, p) != 0;
    }
  return n;
}

static heapset_t A, B;

static void test_foreign_and_independent(void) {
  gc_config_t ca = gc_config_default();
  gc_config_t cb = gc_config_default();
  cb.gc_percent = -1; /* B collects only when asked */
  A.h = test_heap(&ca);
  B.h = test_heap(&cb);
  A.tag = 0x10;
  B.tag = 0x80;
  CHECK(A.h != B.h);
  CHECK(gc_thread_is_attached(A.h));
  CHECK(gc_thread_is_attached(B.h));
  REQUIRE(gc_root_add(A.h, A.objs, sizeof A.objs, GCH_ROOT_PRECISE) == GCH_OK);
  /* B's objects are NOT rooted in B: they live until B collects. */

  gc_stats_t a0 = test_stats(A.h), b0 = test_stats(B.h);
  fill(&A);
  fill(&B);
  gc_stats_t a1 = test_stats(A.h), b1 = test_stats(B.h);
  size_t bytes = 0;
  for (size_t k = 0; k < NS; k++) bytes += SIZES[k] * PER;
  CHECK(a1.total_alloc_bytes - a0.total_alloc_bytes >= bytes);
  CHECK(b1.total_alloc_bytes - b0.total_alloc_bytes >= bytes);
  CHECK(a1.total_alloc_bytes - a0.total_alloc_bytes < 4 * bytes);
  CHECK(b1.total_alloc_bytes - b0.total_alloc_bytes < 4 * bytes);

  /* Foreign both ways. */
  CHECK_EQ(count_resolved(B.h, &A), 0);
  CHECK_EQ(count_resolved(A.h, &B), 0);
  CHECK_EQ(count_bad(&A), 0);
  CHECK_EQ(count_bad(&B), 0);

  /* A's objects point at B's (a conservative A object holding every B
   * object): that keeps nothing alive in B. */
  void **xref = gc_malloc(A.h, sizeof B.objs, 0);
  REQUIRE(xref);
  memcpy(xref, B.objs, sizeof B.objs);
  A.objs[0] = xref; /* replaces A's first object (tiny, dropped) */
  void *a_dropped = gc_malloc(A.h, 64, 0); /* garbage of A */
  REQUIRE(a_dropped);

  /* Collecting A (several times) frees A's garbage only; B untouched. */
  for (int i = 0; i < 3; i++) CHECK(gc_collect(A.h) == GCH_OK);
  gc_stats_t a2 = test_stats(A.h), b2 = test_stats(B.h);
  CHECK(a2.cycles >= a1.cycles + 3);
  CHECK_EQ(b2.cycles, b1.cycles);
  CHECK_EQ(b2.total_freed_objects, b1.total_freed_objects);
  CHECK(a2.total_freed_objects > a1.total_freed_objects);
  CHECK_EQ(gc_size_of(A.h, a_dropped), 0);
  CHECK_EQ(count_bad(&B), 0); /* all still allocated in B, intact */
  A.objs[0] = NULL;
  CHECK_EQ(count_bad(&A), 0);
  A.objs[0] = xref;
  CHECK(gc_verify(A.h, stderr) == GCH_OK);
  CHECK(gc_verify(B.h, stderr) == GCH_OK);
  CHECK_EQ(a2.threads, 1);
  CHECK_EQ(b2.threads, 1);

  /* Now B collects: nothing roots its objects, not even A's xref. */
  void *b_keep[4];
  memcpy(b_keep, &B.objs[NS * PER - 4], sizeof b_keep);
  REQUIRE(gc_root_add(B.h, b_keep, sizeof b_keep, GCH_ROOT_PRECISE) == GCH_OK);
  CHECK(gc_collect(B.h) == GCH_OK);
  CHECK(gc_collect(B.h) == GCH_OK);
  gc_stats_t a3 = test_stats(A.h), b3 = test_stats(B.h);
  CHECK_EQ(a3.cycles, a2.cycles);
  CHECK_EQ(a3.total_freed_objects, a2.total_freed_objects);
  CHECK(b3.total_freed_objects - b2.total_freed_objects >= NS * PER / 2);
  size_t freed = 0;
  for (size_t i = 0; i < NS * PER - 4; i++) freed += gc_size_of(B.h, B.objs[i]) == 0;
  CHECK_EQ(freed, NS * PER - 4);
  for (int i = 0; i < 4; i++) CHECK(gc_size_of(B.h, b_keep[i]) >= SIZES[NS - 1]);
  /* A's objects survived B's collections. */
  A.objs[0] = NULL;
  CHECK_EQ(count_bad(&A), 0);
  A.objs[0] = xref;
  memset(B.objs, 0, sizeof B.objs);
  memcpy(&B.objs[NS * PER - 4], b_keep, sizeof b_keep);
  CHECK_EQ(count_bad(&B), 0);
  CHECK(gc_root_remove(B.h, b_keep) == GCH_OK);

  /* Roots and types are per heap too. */
  CHECK_EQ(gc_root_remove(B.h, A.objs), GCH_ENOTFOUND);
  CHECK_EQ(gc_root_add(B.h, A.objs, sizeof A.objs, GCH_ROOT_PRECISE), GCH_OK);
  CHECK_EQ(gc_root_remove(B.h, A.objs), GCH_OK);
  CHECK_EQ(gc_root_remove(A.h, A.objs), GCH_OK);
  CHECK_EQ(gc_root_remove(A.h, A.objs), GCH_ENOTFOUND);
  REQUIRE(gc_root_add(A.h, A.objs, sizeof A.objs, GCH_ROOT_PRECISE) == GCH_OK);

  /* Errors are per heap: a failure on B leaves A's slot alone. */
  CHECK(gc_malloc(A.h, 8, 0x40u) == NULL);
  CHECK_EQ(gc_last_error(A.h), GCH_EINVAL);
  CHECK(gc_malloc(B.h, SIZE_MAX, 0) == NULL);
  CHECK_EQ(gc_last_error(B.h), GCH_EOVERFLOW);
  CHECK_EQ(gc_last_error(A.h), GCH_EINVAL);
  A.objs[0] = NULL; /* xref is garbage from here on */
}

/* A second thread attached to B only: it cannot allocate in A, and A's
 * collections do not wait for it. */
static atomic_int t_state; /* 1 attached to B, 2 go, 3 done */
static void *b_only(void *arg) {
  (void)arg;
  uintptr_t bad = 0;
  if (gc_thread_attach(B.h) != GCH_OK) bad |= 1;
  bad |= (gc_thread_is_attached(A.h) != 0) << 1;
  if (gc_malloc(A.h, 32, 0) != NULL || gc_last_error(A.h) != GCH_ENOTATTACHED)
    bad |= 4;
  atomic_store(&t_state, 1);
  /* Run (no safepoint, no blocking region for A) while A collects. */
  while (atomic_load(&t_state) != 2) gc_safepoint(B.h);
  for (int i = 0; i < 1000; i++)
    if (!gc_malloc(B.h, 100, GCH_NOSCAN)) bad |= 8;
  if (gc_thread_detach(B.h) != GCH_OK) bad |= 16;
  atomic_store(&t_state, 3);
  return (void *)bad;
}

static void test_threads_per_heap(void) {
  atomic_store(&t_state, 0);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, b_only, NULL) == 0);
  /* B's collections would wait for it; A's must not. */
  gc_blocking_enter(B.h);
  while (atomic_load(&t_state) != 1) sched_yield();
  gc_blocking_leave(B.h);
  CHECK_EQ(test_stats(B.h).threads, 2);
  CHECK_EQ(test_stats(A.h).threads, 1);
  for (int i = 0; i < 5; i++) CHECK(gc_collect(A.h) == GCH_OK);
  atomic_store(&t_state, 2);
  gc_blocking_enter(B.h);
  void *res = (void *)1;
  pthread_join(th, &res);
  gc_blocking_leave(B.h);
  CHECK(res == NULL);
  if (res) fprintf(stderr, "b_only thread: failure bits %#lx\n", (unsigned long)(uintptr_t)res);
  CHECK_EQ(test_stats(B.h).threads, 1);

  /* The main thread detaches from A and re-attaches: B is unaffected. */
  CHECK_EQ(gc_thread_detach(A.h), GCH_OK);
  CHECK(!gc_thread_is_attached(A.h));
  CHECK(gc_thread_is_attached(B.h));
  void *p = gc_malloc(B.h, 64, 0);
  CHECK(p != NULL);
  CHECK(gc_malloc(A.h, 64, 0) == NULL);
  CHECK_EQ(gc_last_error(A.h), GCH_ENOTATTACHED);
  CHECK_EQ(gc_thread_attach(A.h), GCH_OK);
  CHECK_EQ(count_bad(&A), 0);
}

/* Destroy A; B keeps working. */
static void test_destroy_one(void) {
  CHECK(gc_root_remove(A.h, A.objs) == GCH_OK);
  CHECK(gc_heap_destroy(A.h) == GCH_OK);
  A.h = NULL;
  CHECK(gc_thread_is_attached(B.h));
  memset(B.objs, 0, sizeof B.objs);
  REQUIRE(gc_root_add(B.h, B.objs, sizeof B.objs, GCH_ROOT_PRECISE) == GCH_OK);
  fill(&B);
  CHECK(gc_collect(B.h) == GCH_OK);
  CHECK_EQ(count_bad(&B), 0);
  CHECK(gc_verify(B.h, stderr) == GCH_OK);
  gc_stats_t s = test_stats(B.h);
  CHECK_EQ(s.threads, 1);
  CHECK(gc_root_remove(B.h, B.objs) == GCH_OK);
}

/* Many heaps alive at once, interleaved, destroyed in a shuffled order;
 * then the same again (address space and index reuse). */
#define MANY 12
static void *many_roots[MANY][32];
static void test_many(void) {
  for (int round = 0; round < 2; round++) {
    gc_heap_t *hs[MANY];
    for (int i = 0; i < MANY; i++) {
      hs[i] = test_heap(NULL);
      REQUIRE(gc_root_add(hs[i], many_roots[i], sizeof many_roots[i],
                          GCH_ROOT_PRECISE) == GCH_OK);
    }
    for (int j = 0; j < 32; j++)
      for (int i = 0; i < MANY; i++) {
        size_t n = 16 + (size_t)((i * 37 + j * 101) % 70000);
        unsigned char *p = gc_malloc(hs[i], n, GCH_NOSCAN);
        REQUIRE(p);
        memset(p, i + 1, n < 64 ? n : 64);
        many_roots[i][j] = p;
      }
    size_t cross = 0;
    for (int i = 0; i < MANY; i++)
      for (int k = 0; k < MANY; k++)
        for (int j = 0; j < 32; j++) {
          int own = gc_base(hs[k], many_roots[i][j]) == many_roots[i][j];
          cross += own != (i == k);
        }
    CHECK_EQ(cross, 0);
    for (int i = 0; i < MANY; i += 2) CHECK(gc_collect(hs[i]) == GCH_OK);
    size_t bad = 0;
    for (int i = 0; i < MANY; i++)
      for (int j = 0; j < 32; j++) {
        const unsigned char *p = many_roots[i][j];
        bad += p[0] != (unsigned char)(i + 1) || gc_size_of(hs[i], p) == 0;
      }
    CHECK_EQ(bad, 0);
    /* destroy in a scattered order, checking the survivors each time */
    static const int order[MANY] = {5, 0, 11, 3, 8, 1, 10, 6, 2, 9, 4, 7};
    for (int x = 0; x < MANY; x++) {
      int i = order[x];
      CHECK(gc_root_remove(hs[i], many_roots[i]) == GCH_OK);
      CHECK(gc_heap_destroy(hs[i]) == GCH_OK);
      hs[i] = NULL;
      for (int y = x + 1; y < MANY; y++) {
        int k = order[y];
        CHECK(gc_size_of(hs[k], many_roots[k][31]) > 0);
      }
    }
    memset(many_roots, 0, sizeof many_roots);
  }
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_foreign_and_independent();
  test_threads_per_heap();
  test_destroy_one();
  test_many();
  CHECK(gc_verify(B.h, stderr) == GCH_OK);
  CHECK(gc_heap_destroy(B.h) == GCH_OK);
  return test_done("test_heaps");
}
