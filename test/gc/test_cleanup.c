/*
 * test_cleanup.c -- cleanups (gc_add_cleanup) and the life of records.
 *
 *  1. Run once: 10^4 objects with two cleanups each, whose args are heap
 *     objects kept alive only by the cleanups; after the objects are
 *     dropped one collection queues all 2 * 10^4, each runs once with its
 *     arg intact, and nothing runs again.
 *  2. No resurrection: an object with a cleanup is freed by the first
 *     collection that finds it unreachable (its weak handle clears then),
 *     and cycles of objects with cleanups are collected (unlike
 *     finalizers).
 *  3. Finalizer and cleanup on one object: the finalizer runs first and
 *     resurrects the object; the cleanup runs only after the object has
 *     finally died.
 *  4. Bad input: NULL function, arg pointing into the object, non-heap and
 *     interior objects; inside a cleanup gc_run_finalizers is GCH_EBUSY.
 *  5. Records are freed with their objects: 100 cycles, each allocating
 *     objects with a finalizer, a weak handle, two cleanups and a profile
 *     record (rate 1), dropping and collecting them: metadata bytes stay
 *     flat after warm-up and the record count returns to its baseline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct obj {
  struct obj *next;
  uint64_t tag;
} obj_t;

static const gc_type_t *t_obj;

static gc_heap_t *new_heap(long profile_rate) {
  gc_config_t c = gc_config_default();
  c.gc_percent = -1;
  c.profile_rate = profile_rate;
  gc_heap_t *h = test_heap(&c);
  static const uint64_t m = 0x1;
  REQUIRE(gc_type_new(h, "obj", sizeof(obj_t), &m, 1, &t_obj) == GCH_OK);
  return h;
}

static obj_t *new_obj(gc_heap_t *h, uint64_t tag) {
  obj_t *o = gc_alloc(h, t_obj);
  REQUIRE(o);
  o->tag = tag;
  return o;
}

/* ---------------------------------------------------------- 1. run once */

#define N1 10000

static unsigned char runs1[2 * N1];
static size_t bad1, total1;

static void cleanup_count(void *arg) {
  obj_t *a = arg; /* a heap object kept alive by the record */
  if (a->tag >= 2 * N1 || (a->next && a->next->tag != a->tag + 1000000)) {
    bad1++;
    return;
  }
  runs1[a->tag]++;
  total1++;
}

static void test_run_once(void) {
  gc_heap_t *h = new_heap(-1);
  void **roots = calloc(N1, sizeof *roots);
  REQUIRE(roots);
  REQUIRE(gc_root_add(h, roots, N1 * sizeof *roots, GCH_ROOT_PRECISE) == GCH_OK);
  for (uint64_t i = 0; i < N1; i++) {
    obj_t *o = new_obj(h, i);
    roots[i] = o;
    for (uint64_t k = 0; k < 2; k++) {
      o->next = new_obj(h, 2 * i + k); /* temporarily reachable */
      o->next->next = new_obj(h, 2 * i + k + 1000000);
      REQUIRE(gc_add_cleanup(h, o, cleanup_count, o->next) == GCH_OK);
      o->next = NULL;
    }
  }
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 0);
  memset(roots, 0, N1 * sizeof *roots);
  REQUIRE(gc_collect(h) == GCH_OK);
  /* Sweeping queues cleanups lazily: finish it by collecting again (the
   * args stay alive until their cleanups have run). */
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 2 * N1);
  CHECK_EQ(total1, 2 * N1);
  CHECK_EQ(bad1, 0);
  size_t wrong = 0;
  for (size_t i = 0; i < 2 * N1; i++) wrong += runs1[i] != 1;
  CHECK_EQ(wrong, 0);
  for (int k = 0; k < 2; k++) {
    REQUIRE(gc_collect(h) == GCH_OK);
    CHECK_EQ(gc_run_finalizers(h), 0);
  }
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.cleanups_queued, 2 * N1);
  CHECK_EQ(s.cleanups_run, 2 * N1);
  CHECK_EQ(s.specials, 0);
  CHECK_EQ(s.live_bytes, 0); /* args freed once their cleanups ran */
  REQUIRE(gc_root_remove(h, roots) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(roots);
}

/* ------------------------------------------------ 2. no resurrection */

static int ran2;
static void cleanup_flag(void *arg) {
  (void)arg;
  ran2++;
}

static void test_no_resurrection(void) {
  gc_heap_t *h = new_heap(-1);
  void *roots[4] = {0};
  REQUIRE(gc_root_add(h, roots, sizeof roots, GCH_ROOT_PRECISE) == GCH_OK);
  obj_t *o = new_obj(h, 1);
  REQUIRE(gc_add_cleanup(h, o, cleanup_flag, NULL) == GCH_OK);
  roots[0] = gc_weak_new(h, o);
  REQUIRE(roots[0]);
  /* A cycle of two objects, each with a cleanup. */
  obj_t *x = new_obj(h, 2), *y = new_obj(h, 3);
  x->next = y;
  y->next = x;
  REQUIRE(gc_add_cleanup(h, x, cleanup_flag, NULL) == GCH_OK);
  REQUIRE(gc_add_cleanup(h, y, cleanup_flag, NULL) == GCH_OK);
  roots[1] = gc_weak_new(h, x);
  REQUIRE(roots[1]);
  o = x = y = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK(gc_weak_get(h, roots[0]) == NULL); /* freed by this collection */
  CHECK(gc_weak_get(h, roots[1]) == NULL);
  REQUIRE(gc_collect(h) == GCH_OK); /* finishes the lazy sweep */
  CHECK_EQ(gc_run_finalizers(h), 3);
  CHECK_EQ(ran2, 3);
  CHECK_EQ(test_stats(h).live_bytes, 2 * gc_size_of(h, roots[0])); /* the handles */
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* ------------------------------------------- 3. finalizer and cleanup */

static void *saved;
static int fin3, clean3, clean_before_fin;

static void fin_resurrect(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)ctx;
  fin3++;
  saved = obj;
}

static void cleanup_after(void *arg) {
  (void)arg;
  if (!fin3) clean_before_fin = 1;
  clean3++;
}

static void test_with_finalizer(void) {
  gc_heap_t *h = new_heap(-1);
  REQUIRE(gc_root_add(h, &saved, sizeof saved, GCH_ROOT_PRECISE) == GCH_OK);
  obj_t *o = new_obj(h, 1);
  REQUIRE(gc_set_finalizer(h, o, fin_resurrect, NULL) == GCH_OK);
  REQUIRE(gc_add_cleanup(h, o, cleanup_after, NULL) == GCH_OK);
  o = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 1);
  CHECK_EQ(fin3, 1);
  CHECK_EQ(clean3, 0);
  REQUIRE(saved);
  for (int k = 0; k < 3; k++) {
    REQUIRE(gc_collect(h) == GCH_OK);
    CHECK_EQ(gc_run_finalizers(h), 0); /* resurrected: not dead */
  }
  saved = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 1);
  CHECK_EQ(clean3, 1);
  CHECK(!clean_before_fin);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* -------------------------------------------------------- 4. bad input */

static int busy4;
static gc_heap_t *heap4;
static void cleanup_nested(void *arg) {
  (void)arg;
  busy4 = gc_run_finalizers(heap4) == 0 && gc_last_error(heap4) == GCH_EBUSY &&
          gc_collect(heap4) == GCH_EBUSY;
}

static void test_bad_input(void) {
  gc_heap_t *h = heap4 = new_heap(-1);
  void *roots[1] = {0};
  REQUIRE(gc_root_add(h, roots, sizeof roots, GCH_ROOT_PRECISE) == GCH_OK);
  obj_t *o = new_obj(h, 1);
  roots[0] = o;
  static int static_word;
  int local;
  CHECK_EQ(gc_add_cleanup(h, o, NULL, NULL), GCH_EINVAL);
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
  CHECK_EQ(gc_add_cleanup(h, o, cleanup_flag, o), GCH_EINVAL); /* never runs */
  CHECK_EQ(gc_add_cleanup(h, o, cleanup_flag, &o->tag), GCH_EINVAL);
  CHECK_EQ(gc_add_cleanup(h, NULL, cleanup_flag, NULL), GCH_EINVAL);
  CHECK_EQ(gc_add_cleanup(h, &local, cleanup_flag, NULL), GCH_EFOREIGN);
  CHECK_EQ(gc_add_cleanup(h, &static_word, cleanup_flag, NULL), GCH_EFOREIGN);
  CHECK_EQ(gc_add_cleanup(h, (char *)o + 8, cleanup_flag, NULL), GCH_EFOREIGN);
  CHECK_EQ(gc_last_error(h), GCH_EFOREIGN);
  CHECK_EQ(gc_add_cleanup(NULL, o, cleanup_flag, NULL), GCH_EINVAL);
  /* Two on one object are fine; inside one, no nested runs. */
  CHECK_EQ(gc_add_cleanup(h, o, cleanup_nested, NULL), GCH_OK);
  CHECK_EQ(gc_add_cleanup(h, o, cleanup_flag, &static_word), GCH_OK);
  roots[0] = o = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 2);
  CHECK(busy4);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* ------------------------------------------------ 5. metadata stays flat */

static size_t fin5, clean5;
static void fin_count(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)obj;
  (void)ctx;
  fin5++;
}
static void cleanup_count5(void *arg) {
  (void)arg;
  clean5++;
}

static void test_metadata_flat(void) {
  gc_heap_t *h = new_heap(1); /* a profile record on every object too */
  enum { PER = 2000, CYCLES = 100, WARMUP = 10 };
  void **roots = calloc(PER, sizeof *roots);
  REQUIRE(roots);
  REQUIRE(gc_root_add(h, roots, PER * sizeof *roots, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  size_t base_specials = test_stats(h).specials;
  size_t meta_warm = 0;
  for (int c = 0; c < CYCLES; c++) {
    for (size_t i = 0; i < PER; i++) {
      obj_t *o = new_obj(h, i);
      roots[i] = o;
      REQUIRE(gc_set_finalizer(h, o, fin_count, NULL) == GCH_OK);
      REQUIRE(gc_add_cleanup(h, o, cleanup_count5, NULL) == GCH_OK);
      REQUIRE(gc_add_cleanup(h, o, cleanup_count5, NULL) == GCH_OK);
      REQUIRE(gc_weak_new(h, o) != NULL);
    }
    memset(roots, 0, PER * sizeof *roots);
    REQUIRE(gc_collect(h) == GCH_OK); /* finalizers queued */
    gc_run_finalizers(h);
    REQUIRE(gc_collect(h) == GCH_OK); /* objects freed, cleanups queued */
    REQUIRE(gc_collect(h) == GCH_OK);
    gc_run_finalizers(h);
    gc_stats_t s = test_stats(h);
    if (c == WARMUP) meta_warm = s.metadata_bytes;
    if (c > WARMUP && s.metadata_bytes != meta_warm) {
      fprintf(stderr, "cycle %d: metadata %zu bytes, %zu after warm-up\n", c,
              s.metadata_bytes, meta_warm);
      CHECK(s.metadata_bytes == meta_warm);
      break;
    }
  }
  CHECK_EQ(fin5, (size_t)PER * CYCLES);
  CHECK_EQ(clean5, (size_t)2 * PER * CYCLES);
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.specials, base_specials);
  CHECK(s.profile_samples >= (uint64_t)2 * PER * CYCLES); /* objects + handles */
  REQUIRE(gc_root_remove(h, roots) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(roots);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_run_once();
  test_no_resurrection();
  test_with_finalizer();
  test_bad_input();
  test_metadata_flat();
  return test_done("test_cleanup");
}
