/*
 * test_weak.c -- weak handles (gc_weak_new, gc_weak_get).
 *
 *  1. A handle answers its target while the target is reachable (through
 *     several collections), is unique per target, and answers NULL from the
 *     first collection after the target became unreachable; over 10^5
 *     targets with a random half dropped, exactly the dropped ones clear.
 *  2. Never a reused slot: with lazy sweeping only, a target is dropped,
 *     a collection runs, and objects of its size class are allocated until
 *     one takes the target's very address: the handle answers NULL (its
 *     span's sweep cleared it before the slot was reused).  Also asked
 *     before any reallocation (span still unswept: gc_weak_get sweeps it).
 *  3. Finalizers: the handle of a finalizable object is NULL inside its
 *     finalizer (cleared before it ran) and stays NULL after resurrection;
 *     a new handle then names the resurrected object.  An object kept alive
 *     only by a finalizer-ready object keeps its handle until it dies.
 *  4. Handles are ordinary objects: dropping targets and handles returns
 *     the heap to its baseline (live bytes, record count).  Tiny noscan
 *     targets (packed 16-B blocks) work.
 *  5. Threads: while one thread collects, others call gc_weak_get on live
 *     targets (always the target) and on dying ones (NULL forever once
 *     NULL).
 *  6. Bad input: NULL, stack, static and interior pointers, a freed object,
 *     a non-heap handle, an unattached thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

typedef struct obj {
  struct obj *next;
  uint64_t tag;
  uint64_t pad[4];
} obj_t; /* 48 bytes: one size class */

static const gc_type_t *t_obj;

static gc_heap_t *new_heap(int background_sweep) {
  gc_config_t c = gc_config_default();
  c.gc_percent = -1;
  c.background_sweep = background_sweep;
  c.profile_rate = -1;
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

/* ----------------------------------------------------------- 1. basics */

#define N1 100000

static void test_basic(void) {
  gc_heap_t *h = new_heap(1);
  void **targets = calloc(N1, sizeof *targets);
  void **handles = calloc(N1, sizeof *handles);
  unsigned char *dropped = calloc(N1, 1);
  REQUIRE(targets && handles && dropped);
  REQUIRE(gc_root_add(h, targets, N1 * sizeof(void *), GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(h, handles, N1 * sizeof(void *), GCH_ROOT_PRECISE) == GCH_OK);
  for (size_t i = 0; i < N1; i++) {
    targets[i] = new_obj(h, i);
    handles[i] = gc_weak_new(h, targets[i]);
    REQUIRE(handles[i]);
  }
  CHECK(gc_weak_new(h, targets[5]) == handles[5]); /* unique per target */
  CHECK(handles[5] != handles[6]);
  for (int k = 0; k < 3; k++) {
    REQUIRE(gc_collect(h) == GCH_OK);
    size_t bad = 0;
    for (size_t i = 0; i < N1; i++) bad += gc_weak_get(h, handles[i]) != targets[i];
    CHECK_EQ(bad, 0);
  }
  size_t ndropped = 0;
  for (size_t i = 0; i < N1; i++) {
    if (test_rand() & 1) continue;
    dropped[i] = 1;
    targets[i] = NULL;
    ndropped++;
  }
  /* Dropped but not yet collected: still answered (not yet dead). */
  size_t before = 0;
  for (size_t i = 0; i < N1; i++) before += gc_weak_get(h, handles[i]) != NULL;
  CHECK_EQ(before, N1);
  REQUIRE(gc_collect(h) == GCH_OK);
  size_t wrong = 0, cleared = 0;
  for (size_t i = 0; i < N1; i++) {
    void *p = gc_weak_get(h, handles[i]);
    if (dropped[i]) {
      cleared += p == NULL;
    } else {
      wrong += p != targets[i];
      wrong += ((obj_t *)p)->tag != i;
    }
  }
  CHECK_EQ(cleared, ndropped);
  CHECK_EQ(wrong, 0);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(targets);
  free(handles);
  free(dropped);
}

/* ---------------------------------------------------- 2. reused slots */

/* Allocate same-class objects until one lands at addr; keep them all
 * reachable so the slot is not freed again. */
static int realloc_into(gc_heap_t *h, uintptr_t addr, void **keep, size_t n) {
  for (size_t i = 0; i < n; i++) {
    keep[i] = new_obj(h, 0xfeed);
    if ((uintptr_t)keep[i] == addr) return 1;
  }
  return 0;
}

static void test_reuse(int ask_before) {
  gc_heap_t *h = new_heap(0); /* lazy sweeping only */
  enum { NKEEP = 20000 };
  void **keep = calloc(NKEEP, sizeof *keep);
  void *roots[2] = {NULL, NULL};
  REQUIRE(keep);
  REQUIRE(gc_root_add(h, keep, NKEEP * sizeof(void *), GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(h, roots, sizeof roots, GCH_ROOT_PRECISE) == GCH_OK);
  /* A target among live neighbours, so its span stays in use. */
  for (int i = 0; i < 100; i++) keep[i] = new_obj(h, (uint64_t)i);
  obj_t *target = new_obj(h, 777);
  roots[1] = target; /* rooted until its handle exists */
  for (int i = 100; i < 200; i++) keep[i] = new_obj(h, (uint64_t)i);
  gc_weak_t *w = gc_weak_new(h, target);
  REQUIRE(w);
  roots[0] = w;
  uintptr_t addr = (uintptr_t)target;
  roots[1] = target = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  if (ask_before) CHECK(gc_weak_get(h, w) == NULL);
  CHECK(realloc_into(h, addr, keep + 200, NKEEP - 200));
  CHECK(gc_weak_get(h, w) == NULL);
  /* The new occupant is a different object: a new handle for it. */
  gc_weak_t *w2 = gc_weak_new(h, (void *)addr);
  REQUIRE(w2);
  CHECK(w2 != w);
  CHECK((uintptr_t)gc_weak_get(h, w2) == addr);
  CHECK(gc_weak_get(h, w) == NULL);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(keep);
}

/* ---------------------------------------------------------- 3. finalizers */

static gc_weak_t *fw_handle;
static void *fw_root;
static int fw_runs, fw_seen_null;

static void fin_check_weak(gc_heap_t *h, void *obj, void *ctx) {
  (void)ctx;
  fw_runs++;
  fw_seen_null = gc_weak_get(h, fw_handle) == NULL;
  fw_root = obj; /* resurrect */
}

static void test_finalizer_order(void) {
  gc_heap_t *h = new_heap(1);
  void *roots[4] = {0};
  REQUIRE(gc_root_add(h, roots, sizeof roots, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(h, &fw_root, sizeof fw_root, GCH_ROOT_PRECISE) == GCH_OK);
  obj_t *a = new_obj(h, 1);
  roots[0] = a;
  a->next = new_obj(h, 2); /* b: reachable only from a */
  REQUIRE(gc_set_finalizer(h, a, fin_check_weak, NULL) == GCH_OK);
  fw_handle = gc_weak_new(h, a);
  roots[1] = fw_handle;
  gc_weak_t *wb = gc_weak_new(h, a->next);
  roots[2] = wb;
  REQUIRE(fw_handle && wb);
  roots[0] = a = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK(gc_weak_get(h, fw_handle) == NULL); /* cleared at queueing */
  obj_t *b = gc_weak_get(h, wb);            /* b was revived, not dead */
  CHECK(b && b->tag == 2);
  b = NULL;
  CHECK_EQ(gc_run_finalizers(h), 1);
  CHECK_EQ(fw_runs, 1);
  CHECK(fw_seen_null);
  REQUIRE(fw_root);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK(gc_weak_get(h, fw_handle) == NULL); /* resurrection is not revival */
  gc_weak_t *again = gc_weak_new(h, fw_root);
  REQUIRE(again);
  CHECK(again != fw_handle);
  CHECK(gc_weak_get(h, again) == fw_root);
  CHECK(gc_weak_get(h, wb) == ((obj_t *)fw_root)->next);
  roots[3] = again;
  fw_root = NULL;
  REQUIRE(gc_collect(h) == GCH_OK); /* a and b really die now */
  CHECK(gc_weak_get(h, again) == NULL);
  CHECK(gc_weak_get(h, wb) == NULL);
  CHECK_EQ(fw_runs, 1);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* --------------------------------------------- 4. handles are collected */

static void test_collected(void) {
  gc_heap_t *h = new_heap(1);
  REQUIRE(gc_collect(h) == GCH_OK);
  gc_stats_t s0 = test_stats(h);
  enum { N = 20000 };
  void **r = calloc(2 * N, sizeof *r);
  REQUIRE(r);
  REQUIRE(gc_root_add(h, r, 2 * N * sizeof *r, GCH_ROOT_PRECISE) == GCH_OK);
  for (size_t i = 0; i < N; i++) {
    /* Half tiny noscan targets (they share 16-B blocks). */
    r[i] = i & 1 ? gc_malloc(h, 8, GCH_NOSCAN) : (void *)new_obj(h, i);
    REQUIRE(r[i]);
    r[N + i] = gc_weak_new(h, r[i]);
    REQUIRE(r[N + i]);
  }
  REQUIRE(gc_collect(h) == GCH_OK);
  size_t bad = 0;
  for (size_t i = 0; i < N; i++) bad += gc_weak_get(h, r[N + i]) != r[i];
  CHECK_EQ(bad, 0);
  CHECK_EQ(test_stats(h).specials, s0.specials + N);
  for (size_t i = 0; i < N; i++) r[i] = NULL; /* targets die, handles held */
  REQUIRE(gc_collect(h) == GCH_OK);
  bad = 0;
  for (size_t i = 0; i < N; i++) bad += gc_weak_get(h, r[N + i]) != NULL;
  CHECK_EQ(bad, 0);
  memset(r, 0, 2 * N * sizeof *r); /* now the handles too */
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  gc_stats_t s1 = test_stats(h);
  CHECK_EQ(s1.specials, s0.specials);
  CHECK_EQ(s1.live_bytes, s0.live_bytes);
  REQUIRE(gc_root_remove(h, r) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(r);
}

/* ---------------------------------------------------------- 5. threads */

enum { NT = 256, ROUNDS = 40 };

static struct {
  gc_heap_t *h;
  void *live[NT], *live_w[NT], *dying_w[NT];
  atomic_int stop, bad, reads;
} th;

static void *reader_main(void *arg) {
  (void)arg;
  gc_heap_t *h = th.h;
  REQUIRE(gc_thread_attach(h) == GCH_OK);
  unsigned char was_null[NT] = {0};
  while (!atomic_load(&th.stop)) {
    for (int i = 0; i < NT; i++) {
      void *p = gc_weak_get(h, th.live_w[i]);
      if (p != th.live[i] || ((obj_t *)p)->tag != (uint64_t)i) atomic_fetch_add(&th.bad, 1);
      void *q = th.dying_w[i] ? gc_weak_get(h, th.dying_w[i]) : NULL;
      if (q && was_null[i]) atomic_fetch_add(&th.bad, 1);
      if (q && ((obj_t *)q)->tag != 5000u + (uint64_t)i) atomic_fetch_add(&th.bad, 1);
      if (!q && th.dying_w[i]) was_null[i] = 1;
      atomic_fetch_add(&th.reads, 1);
    }
    gc_safepoint(h);
  }
  gc_thread_detach(h);
  return NULL;
}

static void test_threads(void) {
  gc_heap_t *h = new_heap(1);
  th.h = h;
  REQUIRE(gc_root_add(h, th.live, sizeof th.live, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(h, th.live_w, sizeof th.live_w, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(h, th.dying_w, sizeof th.dying_w, GCH_ROOT_PRECISE) == GCH_OK);
  void *tmp = NULL; /* gc_weak_new may collect: keep the target rooted */
  REQUIRE(gc_root_add(h, &tmp, sizeof tmp, GCH_ROOT_PRECISE) == GCH_OK);
  for (int i = 0; i < NT; i++) {
    th.live[i] = new_obj(h, (uint64_t)i);
    th.live_w[i] = gc_weak_new(h, th.live[i]);
    /* Dying targets: referenced by nothing but their handles. */
    tmp = new_obj(h, 5000u + (uint64_t)i);
    th.dying_w[i] = gc_weak_new(h, tmp);
    REQUIRE(th.live_w[i] && th.dying_w[i]);
  }
  tmp = NULL;
  pthread_t t[2];
  for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&t[i], NULL, reader_main, NULL) == 0);
  /* Collect while the readers read: at least ROUNDS collections and at
   * least a few passes of reads (the readers may start late). */
  for (int r = 0; r < ROUNDS || (atomic_load(&th.reads) < 8 * NT && r < 100000); r++) {
    for (int i = 0; i < 2000; i++) new_obj(h, 9); /* garbage */
    REQUIRE(gc_collect(h) == GCH_OK);
    if (r >= ROUNDS) {
      gc_blocking_enter(h);
      usleep(1000);
      gc_blocking_leave(h);
    }
  }
  atomic_store(&th.stop, 1);
  gc_blocking_enter(h);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  gc_blocking_leave(h);
  CHECK_EQ(atomic_load(&th.bad), 0);
  CHECK(atomic_load(&th.reads) > 0);
  for (int i = 0; i < NT; i++) CHECK(gc_weak_get(h, th.dying_w[i]) == NULL);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* -------------------------------------------------------- 6. bad input */

static int static_word;

static void *unattached_main(void *arg) {
  gc_heap_t *h = arg;
  return gc_weak_new(h, &static_word);
}

static void test_bad_input(void) {
  gc_heap_t *h = new_heap(1);
  void *roots[2] = {0};
  REQUIRE(gc_root_add(h, roots, sizeof roots, GCH_ROOT_PRECISE) == GCH_OK);
  obj_t *o = new_obj(h, 1);
  roots[0] = o;
  int local;
  CHECK(gc_weak_new(h, NULL) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
  CHECK(gc_weak_new(h, &local) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EFOREIGN);
  CHECK(gc_weak_new(h, &static_word) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EFOREIGN);
  CHECK(gc_weak_new(h, (char *)o + 16) == NULL); /* interior */
  CHECK_EQ(gc_last_error(h), GCH_EFOREIGN);
  obj_t *dead = new_obj(h, 2);
  uintptr_t dead_addr = (uintptr_t)dead;
  dead = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK(gc_weak_new(h, (void *)dead_addr) == NULL); /* freed object */
  CHECK_EQ(gc_last_error(h), GCH_EFOREIGN);
  CHECK(gc_weak_get(h, NULL) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
  CHECK(gc_weak_get(h, (gc_weak_t *)&static_word) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EFOREIGN);
  CHECK(gc_weak_new(NULL, o) == NULL);
  CHECK(gc_weak_get(NULL, NULL) == NULL);
  pthread_t t;
  void *ret;
  gc_blocking_enter(h);
  REQUIRE(pthread_create(&t, NULL, unattached_main, h) == 0);
  pthread_join(t, &ret);
  gc_blocking_leave(h);
  CHECK(ret == NULL);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_basic();
  test_reuse(0);
  test_reuse(1);
  test_finalizer_order();
  test_collected();
  test_threads();
  test_bad_input();
  return test_done("test_weak");
}
