/*
 * test_finalizer.c -- finalizers (gc_set_finalizer, gc_run_finalizers).
 *
 *  1. Exactly once, never early: 10^5 objects with finalizers, each with a
 *     child holding a pattern.  While rooted, collections run none.  After
 *     the even half is dropped one collection queues exactly that half;
 *     each runs once, sees its object and child intact, and only objects
 *     already dropped are ever finalized.  More collections run nothing
 *     more; then the odd half.  Stats agree; afterwards every record is
 *     gone and the objects are freed.
 *  2. Resurrection: a finalizer stores its object in a root; the object
 *     and a 5-deep chain under it stay intact through collections and
 *     churn, the finalizer is not run again, and once dropped the object
 *     is freed by the next collection (seen through a new weak handle).
 *  3. Inside a finalizer: allocating, re-arming the same object (runs
 *     again at its next death), arming a new object; gc_collect and
 *     gc_run_finalizers answer GCH_EBUSY.
 *  4. Order: A -> B, both finalizable: A's runs first (B intact, not yet
 *     finalized), B's in a later cycle.  Cycles (A <-> B, A -> A) are
 *     never finalized (documented: as in Go).
 *  5. Bad input: NULL, stack and static pointers, interior pointers, a
 *     freed object, a second finalizer (GCH_EEXIST), ctx inside obj, a
 *     root callback (GCH_EBUSY), an unattached thread; disarming.
 *  6. A finalizer thread (config.finalizer_thread = 1) runs them on its
 *     own thread; torture mode and the concurrent mode keep "exactly once".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

typedef struct node {
  struct node *child;
  uint64_t id;
  uint64_t check;
} node_t;

static const gc_type_t *t_node;

static uint64_t pattern(uint64_t id) { return id * 0x9e3779b97f4a7c15ull ^ 0xabcdef; }

static gc_heap_t *new_heap(int percent, int fin_thread, gc_mode_t mode,
                           unsigned long torture) {
  gc_config_t c = gc_config_default();
  c.gc_percent = percent;
  c.finalizer_thread = fin_thread;
  c.mode = mode;
  c.torture = torture;
  c.profile_rate = -1; /* no profile records: exact record counts */
  gc_heap_t *h = test_heap(&c);
  static const uint64_t m = 0x1;
  REQUIRE(gc_type_new(h, "node", sizeof(node_t), &m, 1, &t_node) == GCH_OK);
  return h;
}

static node_t *new_node(gc_heap_t *h, uint64_t id) {
  node_t *n = gc_alloc(h, t_node);
  REQUIRE(n);
  n->id = id;
  n->check = pattern(id);
  return n;
}

static int node_ok(const node_t *n, uint64_t id) {
  return n->id == id && n->check == pattern(id);
}

/* ------------------------------------------------ 1. exactly once, 10^5 */

#define N1 100000

static struct {
  unsigned char *runs;    /* runs per id */
  unsigned char *dropped; /* dropped by the test */
  size_t early, broken, total;
} once;

static void fin_once(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  node_t *n = obj;
  if (ctx != &once || n->id >= N1) {
    once.broken++;
    return;
  }
  if (!node_ok(n, n->id) || !n->child || !node_ok(n->child, n->id + N1)) once.broken++;
  if (!once.dropped[n->id]) once.early++;
  once.runs[n->id]++;
  once.total++;
}

static void drop_half(void **roots, int parity) {
  for (size_t i = (size_t)parity; i < N1; i += 2) {
    roots[i] = NULL;
    once.dropped[i] = 1;
  }
}

static void check_half(int parity) {
  for (size_t i = (size_t)parity; i < N1; i += 2)
    if (once.runs[i] != 1) {
      fprintf(stderr, "object %zu finalized %u times\n", i, once.runs[i]);
      CHECK(once.runs[i] == 1);
      return;
    }
}

static void test_exactly_once(void) {
  gc_heap_t *h = new_heap(-1, 0, GCH_MODE_STW, 0);
  void **roots = calloc(N1, sizeof *roots);
  once.runs = calloc(N1, 1);
  once.dropped = calloc(N1, 1);
  REQUIRE(roots && once.runs && once.dropped);
  REQUIRE(gc_root_add(h, roots, N1 * sizeof *roots, GCH_ROOT_PRECISE) == GCH_OK);
  gc_stats_t s0 = test_stats(h);
  for (size_t i = 0; i < N1; i++) {
    node_t *n = new_node(h, i);
    roots[i] = n;
    n->child = new_node(h, i + N1);
    REQUIRE(gc_set_finalizer(h, n, fin_once, &once) == GCH_OK);
  }
  CHECK_EQ(test_stats(h).specials - s0.specials, N1);
  for (int k = 0; k < 3; k++) {
    REQUIRE(gc_collect(h) == GCH_OK);
    CHECK_EQ(gc_run_finalizers(h), 0);
  }
  drop_half(roots, 0);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(test_stats(h).finalizers_queued, N1 / 2);
  CHECK_EQ(gc_run_finalizers(h), N1 / 2);
  check_half(0);
  for (int k = 0; k < 3; k++) {
    REQUIRE(gc_collect(h) == GCH_OK);
    CHECK_EQ(gc_run_finalizers(h), 0);
  }
  drop_half(roots, 1);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), N1 / 2);
  check_half(1);
  check_half(0);
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 0);
  CHECK_EQ(once.total, N1);
  CHECK_EQ(once.early, 0);
  CHECK_EQ(once.broken, 0);
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.finalizers_queued, N1);
  CHECK_EQ(s.finalizers_run, N1);
  CHECK_EQ(s.specials, s0.specials);
  CHECK(s.live_bytes < 4096); /* every node and child freed */
  REQUIRE(gc_root_remove(h, roots) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(roots);
  free(once.runs);
  free(once.dropped);
}

/* -------------------------------------------------------- 2. resurrection */

static void *resurrected;   /* a precise root */
static int resurrect_runs;

static void fin_resurrect(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)ctx;
  resurrect_runs++;
  resurrected = obj;
}

static void churn(gc_heap_t *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    node_t *x = gc_alloc(h, t_node);
    REQUIRE(x);
    x->id = ~(uint64_t)0;
    x->check = 0x5a5a5a5a5a5a5a5aull;
  }
}

static int chain_ok(const node_t *n) {
  for (uint64_t i = 0; i < 6; i++, n = n->child)
    if (!n || !node_ok(n, 700 + i)) return 0;
  return n == NULL;
}

static void test_resurrection(void) {
  gc_heap_t *h = new_heap(-1, 0, GCH_MODE_STW, 0);
  REQUIRE(gc_root_add(h, &resurrected, sizeof resurrected, GCH_ROOT_PRECISE) == GCH_OK);
  void *slot = NULL;
  REQUIRE(gc_root_add(h, &slot, sizeof slot, GCH_ROOT_PRECISE) == GCH_OK);
  node_t *head = NULL;
  for (int i = 5; i >= 0; i--) {
    slot = head;
    node_t *n = new_node(h, 700 + (uint64_t)i);
    n->child = head;
    head = n;
  }
  slot = head;
  REQUIRE(gc_set_finalizer(h, head, fin_resurrect, NULL) == GCH_OK);
  gc_weak_t *w0 = gc_weak_new(h, head);
  REQUIRE(w0);
  void *wslot = w0;
  REQUIRE(gc_root_add(h, &wslot, sizeof wslot, GCH_ROOT_PRECISE) == GCH_OK);
  slot = NULL;
  head = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK(gc_weak_get(h, w0) == NULL); /* cleared when the finalizer queued */
  CHECK_EQ(gc_run_finalizers(h), 1);
  CHECK_EQ(resurrect_runs, 1);
  REQUIRE(resurrected);
  for (int k = 0; k < 5; k++) {
    churn(h, 20000);
    REQUIRE(gc_collect(h) == GCH_OK);
    CHECK_EQ(gc_run_finalizers(h), 0);
    CHECK(chain_ok(resurrected));
  }
  CHECK(gc_weak_get(h, w0) == NULL); /* stays cleared */
  gc_weak_t *w1 = gc_weak_new(h, resurrected);
  REQUIRE(w1);
  CHECK(w1 != w0);
  CHECK(gc_weak_get(h, w1) == resurrected);
  wslot = w1;
  resurrected = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK(gc_weak_get(h, w1) == NULL); /* died: no finalizer any more */
  CHECK_EQ(gc_run_finalizers(h), 0);
  CHECK_EQ(resurrect_runs, 1);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* ------------------------------------------------ 3. inside a finalizer */

static struct {
  int first, second, child, busy_collect, busy_run, rearm_rc, arm_new_rc;
  int alloc_ok;
} inside;

static void fin_second(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)obj;
  (void)ctx;
  inside.second++;
}

static void fin_child(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)ctx;
  if (node_ok(obj, 4242)) inside.child++;
}

static void fin_first(gc_heap_t *h, void *obj, void *ctx) {
  (void)ctx;
  inside.first++;
  inside.busy_collect = gc_collect(h) == GCH_EBUSY;
  inside.busy_run = gc_run_finalizers(h) == 0 && gc_last_error(h) == GCH_EBUSY;
  /* Allocate a fair amount (may collect automatically), arm a new object. */
  node_t *fresh = NULL;
  for (int i = 0; i < 1000; i++) fresh = new_node(h, 4242);
  inside.alloc_ok = fresh != NULL;
  inside.arm_new_rc = gc_set_finalizer(h, fresh, fin_child, NULL);
  /* Re-arm our own object with another finalizer. */
  inside.rearm_rc = gc_set_finalizer(h, obj, fin_second, NULL);
}

static void test_inside(void) {
  gc_heap_t *h = new_heap(100, 0, GCH_MODE_STW, 0);
  node_t *n = new_node(h, 1);
  REQUIRE(gc_set_finalizer(h, n, fin_first, NULL) == GCH_OK);
  n = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 1);
  CHECK_EQ(inside.first, 1);
  CHECK(inside.busy_collect);
  CHECK(inside.busy_run);
  CHECK(inside.alloc_ok);
  CHECK_EQ(inside.rearm_rc, GCH_OK);
  CHECK_EQ(inside.arm_new_rc, GCH_OK);
  /* Nothing roots either object now: both run at the next death. */
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 2);
  CHECK_EQ(inside.second, 1);
  CHECK_EQ(inside.child, 1);
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 0);
  CHECK_EQ(inside.first, 1);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* ------------------------------------------------------------- 4. order */

static struct {
  int a_runs, b_runs, b_before_a, a_saw_b;
} order;

static void fin_b(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)ctx;
  if (node_ok(obj, 2)) order.b_runs++;
}

static void fin_a(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)ctx;
  node_t *a = obj;
  order.a_runs++;
  if (order.b_runs) order.b_before_a = 1;
  if (a->child && node_ok(a->child, 2)) order.a_saw_b = 1;
}

static int cyc_runs;
static void fin_cycle(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)obj;
  (void)ctx;
  cyc_runs++;
}

static void test_order(void) {
  gc_heap_t *h = new_heap(-1, 0, GCH_MODE_STW, 0);
  node_t *a = new_node(h, 1);
  void *slot = a;
  REQUIRE(gc_root_add(h, &slot, sizeof slot, GCH_ROOT_PRECISE) == GCH_OK);
  a->child = new_node(h, 2);
  REQUIRE(gc_set_finalizer(h, a, fin_a, NULL) == GCH_OK);
  REQUIRE(gc_set_finalizer(h, a->child, fin_b, NULL) == GCH_OK);
  a = NULL;
  slot = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 1);
  CHECK_EQ(order.a_runs, 1);
  CHECK_EQ(order.b_runs, 0);
  CHECK(order.a_saw_b);
  REQUIRE(gc_collect(h) == GCH_OK); /* A freed; B now unreachable */
  CHECK_EQ(gc_run_finalizers(h), 1);
  CHECK_EQ(order.b_runs, 1);
  CHECK(!order.b_before_a);

  /* Cycles of finalizable objects are never finalized. */
  node_t *x = new_node(h, 10), *y = new_node(h, 11), *z = new_node(h, 12);
  x->child = y;
  y->child = x;
  z->child = z;
  REQUIRE(gc_set_finalizer(h, x, fin_cycle, NULL) == GCH_OK);
  REQUIRE(gc_set_finalizer(h, y, fin_cycle, NULL) == GCH_OK);
  REQUIRE(gc_set_finalizer(h, z, fin_cycle, NULL) == GCH_OK);
  x = y = z = NULL;
  for (int k = 0; k < 4; k++) {
    REQUIRE(gc_collect(h) == GCH_OK);
    CHECK_EQ(gc_run_finalizers(h), 0);
  }
  CHECK_EQ(cyc_runs, 0);
  CHECK_EQ(test_stats(h).finalizers_queued, 2);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* --------------------------------------------------------- 5. bad input */

static void fin_nop(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)obj;
  (void)ctx;
}

static struct {
  gc_heap_t *h;
  void *obj;
  gc_result_t rc;
  int calls;
} incb;

static void root_cb(gc_visitor_t *v, void *ctx) {
  (void)v;
  (void)ctx;
  incb.calls++;
  incb.rc = gc_set_finalizer(incb.h, incb.obj, fin_nop, NULL);
}

static void *unattached_main(void *arg) {
  gc_heap_t *h = arg;
  static node_t dummy;
  return (void *)(intptr_t)gc_set_finalizer(h, &dummy, fin_nop, NULL);
}

static int static_word;

static void test_bad_input(void) {
  gc_heap_t *h = new_heap(-1, 0, GCH_MODE_STW, 0);
  node_t *keep[2];
  REQUIRE(gc_root_add(h, keep, sizeof keep, GCH_ROOT_PRECISE) == GCH_OK);
  node_t *n = keep[0] = new_node(h, 1);
  keep[1] = new_node(h, 2);
  int local = 0;
  CHECK_EQ(gc_set_finalizer(h, NULL, fin_nop, NULL), GCH_EINVAL);
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
  CHECK_EQ(gc_set_finalizer(h, &local, fin_nop, NULL), GCH_EFOREIGN);
  CHECK_EQ(gc_last_error(h), GCH_EFOREIGN);
  CHECK_EQ(gc_set_finalizer(h, &static_word, fin_nop, NULL), GCH_EFOREIGN);
  CHECK_EQ(gc_set_finalizer(h, (char *)n + 8, fin_nop, NULL), GCH_EFOREIGN);
  CHECK_EQ(gc_set_finalizer(h, n, fin_nop, &n->check), GCH_EINVAL); /* ctx in obj */
  CHECK_EQ(gc_set_finalizer(NULL, n, fin_nop, NULL), GCH_EINVAL);
  /* Disarming with nothing armed is a no-op. */
  CHECK_EQ(gc_set_finalizer(h, n, NULL, NULL), GCH_OK);
  CHECK_EQ(gc_set_finalizer(h, n, fin_nop, NULL), GCH_OK);
  CHECK_EQ(gc_set_finalizer(h, n, fin_nop, NULL), GCH_EEXIST);
  CHECK_EQ(gc_last_error(h), GCH_EEXIST);
  CHECK_EQ(gc_set_finalizer(h, n, fin_first, NULL), GCH_EEXIST);
  CHECK_EQ(gc_set_finalizer(h, n, NULL, NULL), GCH_OK); /* disarm */
  keep[0] = NULL;
  n = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_run_finalizers(h), 0); /* disarmed: nothing runs */
  /* A freed object (its span maybe still unswept). */
  node_t *dead = new_node(h, 3);
  uintptr_t dead_addr = (uintptr_t)dead;
  dead = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  CHECK_EQ(gc_set_finalizer(h, (void *)dead_addr, fin_nop, NULL), GCH_EFOREIGN);
  /* From inside a root callback: busy. */
  incb.h = h;
  incb.obj = keep[1];
  REQUIRE(gc_root_callback_add(h, root_cb, NULL) == GCH_OK);
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_root_callback_remove(h, root_cb, NULL) == GCH_OK);
  CHECK(incb.calls >= 1);
  CHECK_EQ(incb.rc, GCH_EBUSY);
  /* From a thread not attached to the heap. */
  pthread_t th;
  void *ret;
  gc_blocking_enter(h);
  REQUIRE(pthread_create(&th, NULL, unattached_main, h) == 0);
  pthread_join(th, &ret);
  gc_blocking_leave(h);
  CHECK_EQ((intptr_t)ret, GCH_ENOTATTACHED);
  CHECK_EQ(gc_run_finalizers(NULL), 0);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* ------------------------------------- 6. thread, torture, concurrent */

#define N6 20000

static struct {
  atomic_int runs;
  atomic_int wrong_thread;
  atomic_int broken;
  pthread_t host;
  unsigned char *seen;
} ft;

static void fin_thread_fn(gc_heap_t *h, void *obj, void *ctx) {
  (void)ctx;
  node_t *n = obj;
  if (pthread_equal(pthread_self(), ft.host)) atomic_fetch_add(&ft.wrong_thread, 1);
  if (n->id >= N6 || !node_ok(n, n->id) || ft.seen[n->id]++)
    atomic_fetch_add(&ft.broken, 1);
  /* Finalizers on the thread may allocate too. */
  if (!gc_alloc(h, t_node)) atomic_fetch_add(&ft.broken, 1);
  atomic_fetch_add(&ft.runs, 1);
}

static void test_finalizer_thread(void) {
  gc_heap_t *h = new_heap(100, 1, GCH_MODE_STW, 0);
  ft.host = pthread_self();
  ft.seen = calloc(N6, 1);
  REQUIRE(ft.seen);
  for (uint64_t i = 0; i < N6; i++) {
    node_t *n = new_node(h, i);
    REQUIRE(gc_set_finalizer(h, n, fin_thread_fn, NULL) == GCH_OK);
  }
  REQUIRE(gc_collect(h) == GCH_OK);
  for (int ms = 0; ms < 10000 && atomic_load(&ft.runs) < N6; ms++) {
    gc_blocking_enter(h);
    usleep(1000);
    gc_blocking_leave(h);
  }
  CHECK_EQ(atomic_load(&ft.runs), N6);
  CHECK_EQ(atomic_load(&ft.wrong_thread), 0);
  CHECK_EQ(atomic_load(&ft.broken), 0);
  CHECK_EQ(gc_run_finalizers(h), 0); /* the thread took them all */
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.finalizers_run, N6);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(ft.seen);
}

#define N7 3000
static unsigned char seen7[N7];
static int bad7;

static void fin_seen(gc_heap_t *h, void *obj, void *ctx) {
  (void)h;
  (void)ctx;
  node_t *n = obj;
  if (n->id >= N7 || !node_ok(n, n->id) || seen7[n->id]++) bad7++;
}

/* Exactly once under torture (a collection every 7 allocations) and in
 * the concurrent mode, with objects dropped as the loop goes. */
static void run_mode(gc_mode_t mode, unsigned long torture) {
  memset(seen7, 0, sizeof seen7);
  bad7 = 0;
  gc_heap_t *h = new_heap(torture ? -1 : 5, 0, mode, torture);
  void **roots = calloc(64, sizeof *roots);
  REQUIRE(roots);
  REQUIRE(gc_root_add(h, roots, 64 * sizeof *roots, GCH_ROOT_PRECISE) == GCH_OK);
  size_t ran = 0;
  for (uint64_t i = 0; i < N7; i++) {
    node_t *n = new_node(h, i);
    roots[i % 64] = n; /* drops the object 64 allocations older */
    n->child = new_node(h, i + 1000000);
    REQUIRE(gc_set_finalizer(h, n, fin_seen, NULL) == GCH_OK);
    churn(h, 20);
    if (i % 100 == 0) ran += gc_run_finalizers(h);
  }
  memset(roots, 0, 64 * sizeof *roots);
  for (int k = 0; k < 3; k++) {
    REQUIRE(gc_collect(h) == GCH_OK);
    ran += gc_run_finalizers(h);
  }
  CHECK_EQ(ran, N7);
  CHECK_EQ(bad7, 0);
  for (size_t i = 0; i < N7; i++) CHECK(seen7[i] == 1 || (fprintf(stderr, "id %zu\n", i), 0));
  REQUIRE(gc_root_remove(h, roots) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(roots);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_exactly_once();
  test_resurrection();
  test_inside();
  test_order();
  test_bad_input();
  test_finalizer_thread();
  run_mode(GCH_MODE_STW, 7);
  run_mode(GCH_MODE_CONCURRENT, 0);
  return test_done("test_finalizer");
}
