/*
 * test_roots.c -- where marking starts: root-scanning callbacks, precise and
 * conservative root ranges, and the conservative scan of thread stacks.
 *
 *  1. A host "shadow stack" reported by a callback (gc_visit on each slot,
 *     gc_visit_range over a conservative region holding interior pointers):
 *     what it reaches survives, transitively, with its contents intact after
 *     garbage churn; live_bytes is exactly the bytes it reaches; the callback
 *     runs once per cycle (forced, paced and torture cycles; twice with
 *     GCHEAP_DEBUG=checkmark, which re-marks from the roots); two
 *     registrations of one function with different contexts both run;
 *     after gc_root_callback_remove the objects die (live_bytes 0, then
 *     gc_size_of 0 once swept).  Registration errors: EEXIST, ENOTFOUND,
 *     EINVAL.
 *  2. Inside a callback gc_collect returns GCH_EBUSY, and so do the
 *     registry calls (gc_root_add/remove, gc_root_callback_add/remove).
 *  3. Precise root ranges and gc_visit slots holding values outside the
 *     heap (0x3, small integers, -1, addresses of static and malloc memory)
 *     are ignored; heap pointers next to them, base or tagged interior,
 *     keep their objects.  gc_root_add argument errors.
 *  4. Thread stacks: with config.scan_thread_stacks = 1 an object
 *     referenced only from a volatile local of a noinline function survives
 *     gc_collect, on the collecting thread and on other attached threads
 *     (one blocked in gc_blocking_enter, one parked at gc_safepoint); with
 *     the default (0) and no other root it is reclaimed even though its
 *     address is still on the stack.
 *
 * Seed: argv[1] or GCHEAP_SEED.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NOINLINE __attribute__((noinline))

static const gc_type_t *t_cell; /* {ptr next, scalar tag}: 16 B */

static void register_types(gc_heap_t *h) {
  static const uint64_t m = 0x1;
  REQUIRE(gc_type_new(h, "cell", 16, &m, 1, &t_cell) == GCH_OK);
}

/* Pattern-filled noscan buffer: byte i = (seed + i * 7) & 0xff. */
static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed + i * 7);
}
static int intact(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed + i * 7)) return 0;
  return 1;
}

/* Garbage of the given sizes, to reuse whatever was freed. */
static void churn(gc_heap_t *h, size_t n, size_t size) {
  for (size_t i = 0; i < n; i++) {
    void *p = gc_malloc(h, size, GCH_NOSCAN);
    REQUIRE(p);
    memset(p, 0x5a, size);
  }
}

/* Root callbacks run once per cycle; GCHEAP_DEBUG=checkmark re-marks from
 * the roots after each mark (src/gc/checkmark.c), calling them again. */
static unsigned per_cycle(void) {
  const char *d = getenv("GCHEAP_DEBUG");
  return d && strstr(d, "checkmark") ? 2 : 1;
}

/* ---------------------------------------------------- 1. shadow stack */

#define NSLOTS 64
#define NCONS 16
#define BUF_BYTES 1024   /* a size class: slot == size, noscan */
#define CBUF_BYTES 3072  /* likewise */

typedef struct shadow {
  void **slots;        /* malloc'd: invisible to the collector */
  uintptr_t *region;   /* malloc'd conservative region */
  size_t region_words;
  unsigned calls;
  int visit_junk;      /* also visit slots with non-heap values */
  /* results of calls made from inside the callback (part 2) */
  int try_reentry;
  gc_heap_t *heap;
  gc_result_t r_collect, r_root_add, r_root_remove, r_cb_add, r_cb_remove;
} shadow_t;

static void *junk_slots[6] = {(void *)0x3, (void *)0x1, (void *)42,
                              (void *)(intptr_t)-1, (void *)0xdeadbeef,
                              (void *)0x7ffffffff000};

static void shadow_cb(gc_visitor_t *v, void *ctx) {
  shadow_t *s = ctx;
  s->calls++;
  for (size_t i = 0; i < NSLOTS; i++) gc_visit(v, &s->slots[i]);
  gc_visit_range(v, s->region, s->region_words * sizeof(uintptr_t));
  if (s->visit_junk) {
    for (size_t i = 0; i < sizeof junk_slots / sizeof junk_slots[0]; i++)
      gc_visit(v, &junk_slots[i]);
    gc_visit(v, NULL);
    gc_visit_range(v, NULL, 64);
  }
  if (s->try_reentry) {
    static void *dummy[2];
    s->r_collect = gc_collect(s->heap);
    s->r_root_add = gc_root_add(s->heap, dummy, sizeof dummy, GCH_ROOT_PRECISE);
    s->r_root_remove = gc_root_remove(s->heap, dummy);
    s->r_cb_add = gc_root_callback_add(s->heap, shadow_cb, dummy);
    s->r_cb_remove = gc_root_callback_remove(s->heap, shadow_cb, s);
  }
}

static void test_callbacks(void) {
  gc_heap_t *h = test_heap(NULL);
  register_types(h);
  shadow_t s;
  memset(&s, 0, sizeof s);
  s.heap = h;
  s.slots = calloc(NSLOTS, sizeof *s.slots);
  s.region_words = 2 * NCONS;
  s.region = calloc(s.region_words, sizeof *s.region);
  REQUIRE(s.slots && s.region);

  CHECK_EQ(gc_root_callback_add(h, NULL, &s), GCH_EINVAL);
  CHECK_EQ(gc_root_callback_add(h, shadow_cb, &s), GCH_OK);
  CHECK_EQ(gc_root_callback_add(h, shadow_cb, &s), GCH_EEXIST);

  /* Slots 0..39: noscan buffers; 40..63: cells, each heading a chain of
   * 3 cells whose last points to a noscan buffer.  The region: interior
   * pointers (odd offsets too) into CBUF_BYTES buffers, mixed with junk. */
  size_t expect = 0;
  void *bufs[40], *cbufs[NCONS];
  for (int i = 0; i < 40; i++) {
    bufs[i] = gc_malloc(h, BUF_BYTES, GCH_NOSCAN);
    REQUIRE(bufs[i]);
    fill(bufs[i], BUF_BYTES, (unsigned)i);
    s.slots[i] = bufs[i];
    expect += gc_size_of(h, bufs[i]);
  }
  void *chain_end[NSLOTS];
  for (int i = 40; i < NSLOTS; i++) {
    /* built back to front; each object stored in its slot at once, so a
     * collection could run at any allocation */
    void *b = gc_malloc(h, 200, GCH_NOSCAN);
    REQUIRE(b);
    fill(b, 200, (unsigned)i);
    s.slots[i] = b;
    expect += gc_size_of(h, b);
    chain_end[i] = b;
    for (int k = 0; k < 3; k++) {
      void **c = gc_alloc(h, t_cell);
      REQUIRE(c);
      gc_write(h, c, &c[0], s.slots[i]);
      c[1] = (void *)(uintptr_t)(0x7000 + i * 8 + k);
      s.slots[i] = c;
      expect += gc_size_of(h, c);
    }
  }
  for (int i = 0; i < NCONS; i++) {
    cbufs[i] = gc_malloc(h, CBUF_BYTES, GCH_NOSCAN);
    REQUIRE(cbufs[i]);
    fill(cbufs[i], CBUF_BYTES, 100u + (unsigned)i);
    s.region[2 * i] = (uintptr_t)cbufs[i] + (size_t)test_rand_below(CBUF_BYTES);
    s.region[2 * i + 1] = 0x1234567u * (uintptr_t)i + 3; /* junk */
    expect += gc_size_of(h, cbufs[i]);
  }
  s.visit_junk = 1;

  gc_stats_t st0 = test_stats(h);
  unsigned calls0 = s.calls;
  CHECK_EQ(gc_collect(h), GCH_OK);
  gc_stats_t st1 = test_stats(h);
  CHECK_EQ(s.calls - calls0, per_cycle());
  CHECK_EQ(st1.cycles - st0.cycles, 1);
  CHECK_EQ(st1.live_bytes, expect);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);

  /* Churn reuses freed memory; the callback's objects must be untouched. */
  for (int round = 0; round < 4; round++) {
    churn(h, 3000, BUF_BYTES);
    churn(h, 1000, CBUF_BYTES);
    churn(h, 3000, 200);
    CHECK_EQ(gc_collect(h), GCH_OK);
    CHECK_EQ(test_stats(h).live_bytes, expect);
  }
  for (int i = 0; i < 40; i++) CHECK(intact(bufs[i], BUF_BYTES, (unsigned)i));
  for (int i = 40; i < NSLOTS; i++) {
    void **c = s.slots[i];
    for (int k = 2; k >= 0; k--) {
      CHECK(gc_base(h, c) == c);
      CHECK_EQ((uintptr_t)c[1], 0x7000 + i * 8 + k);
      c = c[0];
    }
    CHECK(c == chain_end[i]);
    CHECK(intact(c, 200, (unsigned)i));
  }
  for (int i = 0; i < NCONS; i++) CHECK(intact(cbufs[i], CBUF_BYTES, 100u + (unsigned)i));

  /* Once per cycle: forced cycles ... */
  st0 = test_stats(h);
  calls0 = s.calls;
  for (int i = 0; i < 5; i++) CHECK_EQ(gc_collect(h), GCH_OK);
  st1 = test_stats(h);
  CHECK_EQ(s.calls - calls0, 5 * per_cycle());
  CHECK_EQ(st1.cycles - st0.cycles, 5);
  /* ... and paced ones, started by allocation. */
  calls0 = s.calls;
  st0 = test_stats(h);
  for (int i = 0; i < 2000 && test_stats(h).cycles - st0.cycles < 4; i++)
    churn(h, 100, 1024); /* 4 MiB goal: about 40 rounds a cycle */
  st1 = test_stats(h);
  CHECK(st1.cycles - st0.cycles >= 4);
  CHECK_EQ(s.calls - calls0, per_cycle() * (st1.cycles - st0.cycles));
  /* a paced cycle may overlap allocation (GCHEAP_MODE=concurrent: objects
   * allocated while marking count as marked); a forced one is exact */
  CHECK(st1.live_bytes >= expect);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, expect);

  /* A second registration of the same function with another context. */
  shadow_t s2;
  memset(&s2, 0, sizeof s2);
  s2.slots = calloc(NSLOTS, sizeof *s2.slots);
  s2.region_words = 1;
  s2.region = calloc(1, sizeof *s2.region);
  REQUIRE(s2.slots && s2.region);
  /* (registered first: with GCHEAP_TORTURE any allocation may collect) */
  CHECK_EQ(gc_root_callback_add(h, shadow_cb, &s2), GCH_OK);
  void *only2 = gc_malloc(h, BUF_BYTES, GCH_NOSCAN);
  REQUIRE(only2);
  s2.slots[7] = only2;
  calls0 = s.calls;
  unsigned calls2 = s2.calls;
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(s.calls - calls0, per_cycle());
  CHECK_EQ(s2.calls - calls2, per_cycle());
  CHECK_EQ(test_stats(h).live_bytes, expect + gc_size_of(h, only2));

  /* Remove the first: its objects die, the second's stay. */
  CHECK_EQ(gc_root_callback_remove(h, NULL, &s), GCH_EINVAL);
  CHECK_EQ(gc_root_callback_remove(h, shadow_cb, &s), GCH_OK);
  CHECK_EQ(gc_root_callback_remove(h, shadow_cb, &s), GCH_ENOTFOUND);
  calls0 = s.calls;
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(s.calls, calls0); /* not called any more */
  CHECK_EQ(s2.calls - calls2, 2 * per_cycle());
  CHECK_EQ(test_stats(h).live_bytes, gc_size_of(h, only2));
  CHECK_EQ(gc_collect(h), GCH_OK); /* everything of the last cycle swept */
  size_t still = 0;
  for (int i = 0; i < 40; i++) still += gc_size_of(h, bufs[i]) != 0;
  for (int i = 0; i < NCONS; i++) still += gc_size_of(h, cbufs[i]) != 0;
  for (int i = 40; i < NSLOTS; i++) still += gc_size_of(h, chain_end[i]) != 0;
  CHECK_EQ(still, 0);
  CHECK_EQ(gc_size_of(h, only2), BUF_BYTES);

  CHECK_EQ(gc_root_callback_remove(h, shadow_cb, &s2), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, 0);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
  free(s.slots);
  free(s.region);
  free(s2.slots);
  free(s2.region);
}

/* Torture cycles (every 10 allocations) also call the callback once each. */
static void test_callback_torture(void) {
  gc_config_t cfg = gc_config_default();
  cfg.torture = 10;
  gc_heap_t *h = test_heap(&cfg);
  register_types(h);
  shadow_t s;
  memset(&s, 0, sizeof s);
  s.slots = calloc(NSLOTS, sizeof *s.slots);
  s.region_words = 1;
  s.region = calloc(1, sizeof *s.region);
  REQUIRE(s.slots && s.region);
  CHECK_EQ(gc_root_callback_add(h, shadow_cb, &s), GCH_OK);
  gc_stats_t st0 = test_stats(h);
  /* a list of 500 cells grown at the head, held by slot 0 */
  for (int i = 0; i < 500; i++) {
    void **c = gc_alloc(h, t_cell);
    REQUIRE(c);
    gc_write(h, c, &c[0], s.slots[0]);
    c[1] = (void *)(uintptr_t)(i * 8 + 1);
    s.slots[0] = c;
  }
  gc_stats_t st1 = test_stats(h);
  CHECK(st1.cycles - st0.cycles >= 5); /* 50 with torture 10; env may differ */
  CHECK_EQ(s.calls, per_cycle() * (st1.cycles - st0.cycles));
  int n = 0;
  for (void **c = s.slots[0]; c; c = c[0], n++)
    if ((uintptr_t)c[1] != (uintptr_t)((499 - n) * 8 + 1)) break;
  CHECK_EQ(n, 500);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, 500 * gc_size_of(h, s.slots[0]));
  CHECK_EQ(gc_root_callback_remove(h, shadow_cb, &s), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, 0);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
  free(s.slots);
  free(s.region);
}

/* ------------------------------------------- 2. calls from a callback */

static void test_reentry(void) {
  gc_heap_t *h = test_heap(NULL);
  shadow_t s;
  memset(&s, 0, sizeof s);
  s.heap = h;
  s.slots = calloc(NSLOTS, sizeof *s.slots);
  s.region_words = 1;
  s.region = calloc(1, sizeof *s.region);
  REQUIRE(s.slots && s.region);
  CHECK_EQ(gc_root_callback_add(h, shadow_cb, &s), GCH_OK);
  void *keep = gc_malloc(h, BUF_BYTES, GCH_NOSCAN);
  REQUIRE(keep);
  s.slots[3] = keep;
  fill(keep, BUF_BYTES, 9);
  s.r_collect = s.r_root_add = s.r_root_remove = s.r_cb_add = s.r_cb_remove = GCH_OK;
  s.try_reentry = 1;
  gc_stats_t st0 = test_stats(h);
  unsigned calls0 = s.calls;
  CHECK_EQ(gc_collect(h), GCH_OK);
  gc_stats_t st1 = test_stats(h);
  CHECK_EQ(s.calls - calls0, per_cycle()); /* no nested cycle ran */
  CHECK_EQ(st1.cycles - st0.cycles, 1);
  CHECK_EQ(s.r_collect, GCH_EBUSY);
  CHECK_EQ(s.r_root_add, GCH_EBUSY);
  CHECK_EQ(s.r_root_remove, GCH_EBUSY);
  CHECK_EQ(s.r_cb_add, GCH_EBUSY);
  CHECK_EQ(s.r_cb_remove, GCH_EBUSY);
  CHECK_EQ(st1.live_bytes, gc_size_of(h, keep));
  /* the callback is still registered and the heap still collects */
  s.try_reentry = 0;
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(s.calls - calls0, 2 * per_cycle());
  CHECK(intact(keep, BUF_BYTES, 9));
  CHECK_EQ(gc_root_callback_remove(h, shadow_cb, &s), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
  free(s.slots);
  free(s.region);
}

/* -------------------------------------- 3. values outside the heap */

static int some_static;
static uintptr_t prange[16];

static void test_precise_junk(void) {
  gc_heap_t *h = test_heap(NULL);
  void *host = malloc(64);
  REQUIRE(host);
  /* The range is registered first and each object stored into it as soon
   * as it is allocated (with GCHEAP_TORTURE any allocation may collect). */
  memset(prange, 0, sizeof prange);
  CHECK_EQ(gc_root_add(h, prange, sizeof prange, GCH_ROOT_PRECISE), GCH_OK);
  void *a = gc_malloc(h, BUF_BYTES, GCH_NOSCAN);
  REQUIRE(a);
  prange[10] = (uintptr_t)a;
  void *b = gc_malloc(h, 512, GCH_NOSCAN);
  REQUIRE(b);
  prange[11] = (uintptr_t)b | 3;
  void *dead = gc_malloc(h, 2048, GCH_NOSCAN);
  REQUIRE(dead);
  fill(a, BUF_BYTES, 1);
  fill(b, 512, 2);
  uintptr_t vals[16] = {0x3,
                        0x1,
                        42,
                        8,
                        (uintptr_t)-1,
                        (uintptr_t)-8,
                        0xdeadbeef,
                        0x7ffffffff000,
                        (uintptr_t)&some_static,
                        (uintptr_t)host,
                        (uintptr_t)a,     /* base pointer */
                        (uintptr_t)b | 3, /* tagged: an interior pointer */
                        0x0001000000000000ull,
                        0xfff0000000000000ull,
                        (uintptr_t)(0x7ffffffff000 + 0x3),
                        0};
  memcpy(prange, vals, sizeof vals);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, gc_size_of(h, a) + gc_size_of(h, b));
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  churn(h, 2000, 512);
  churn(h, 2000, BUF_BYTES);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, gc_size_of(h, a) + gc_size_of(h, b));
  CHECK(intact(a, BUF_BYTES, 1));
  CHECK(intact(b, 512, 2));
  CHECK_EQ(gc_size_of(h, dead), 0);
  /* the junk is untouched */
  CHECK(memcmp(prange, vals, sizeof vals) == 0);

  /* A conservative range: an unaligned start, an interior pointer at an
   * odd offset, junk around it. */
  static unsigned char cons[67];
  CHECK_EQ(gc_root_add(h, cons + 3, 64, GCH_ROOT_CONSERVATIVE), GCH_OK);
  void *c = gc_malloc(h, 3000, GCH_NOSCAN);
  REQUIRE(c);
  uintptr_t cval = (uintptr_t)c + 1234, junk = 0x123456789;
  memcpy(cons + 8, &junk, 8);
  memcpy(cons + 16, &cval, 8); /* (the word at 16 is inside [3, 67)) */
  memcpy(cons + 24, &junk, 8);
  fill(c, 3000, 5);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes,
           gc_size_of(h, a) + gc_size_of(h, b) + gc_size_of(h, c));
  churn(h, 2000, 3000);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK(intact(c, 3000, 5));
  CHECK_EQ(gc_root_remove(h, cons + 3), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, gc_size_of(h, a) + gc_size_of(h, b));

  /* argument errors */
  static uint64_t r2[4];
  CHECK_EQ(gc_root_add(h, prange, sizeof prange, GCH_ROOT_PRECISE), GCH_EEXIST);
  CHECK_EQ(gc_root_add(h, NULL, 64, GCH_ROOT_PRECISE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(h, r2, 0, GCH_ROOT_PRECISE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(h, (char *)r2 + 4, 16, GCH_ROOT_PRECISE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(h, r2, 12, GCH_ROOT_PRECISE), GCH_EINVAL);
  CHECK_EQ(gc_root_add(h, r2, sizeof r2, 7u), GCH_EINVAL);
  CHECK_EQ(gc_root_remove(h, r2), GCH_ENOTFOUND);
  /* conservative ranges need no alignment */
  CHECK_EQ(gc_root_add(h, (char *)r2 + 4, 13, GCH_ROOT_CONSERVATIVE), GCH_OK);
  CHECK_EQ(gc_root_remove(h, (char *)r2 + 4), GCH_OK);

  /* Removing the range lets a and b die. */
  CHECK_EQ(gc_root_remove(h, prange), GCH_OK);
  CHECK_EQ(gc_root_remove(h, prange), GCH_ENOTFOUND);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).live_bytes, 0);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(gc_size_of(h, a), 0);
  CHECK_EQ(gc_size_of(h, b), 0);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
  free(host);
}

/* ------------------------------------------------- 4. thread stacks */

/* Allocates, keeps the only reference in a volatile local, collects. */
static NOINLINE void hold_on_stack(gc_heap_t *h, int scanned) {
  void *volatile p = gc_malloc(h, 4000, GCH_NOSCAN);
  REQUIRE(p);
  fill(p, 4000, 77);
  size_t sz = gc_size_of(h, p);
  CHECK(sz >= 4000);
  CHECK_EQ(gc_collect(h), GCH_OK);
  gc_stats_t st = test_stats(h);
  if (scanned) {
    /* conservative: p keeps its object (and stale words may keep more) */
    CHECK(st.live_bytes >= sz);
    churn(h, 3000, 4000);
    CHECK_EQ(gc_collect(h), GCH_OK);
    CHECK_EQ(gc_collect(h), GCH_OK);
    CHECK(test_stats(h).live_bytes >= sz);
    CHECK_EQ(gc_size_of(h, p), sz);
    CHECK(intact(p, 4000, 77));
  } else {
    /* not a root: reclaimed although its address is on the stack */
    CHECK_EQ(st.live_bytes, 0);
    CHECK_EQ(gc_collect(h), GCH_OK);
    CHECK_EQ(gc_size_of(h, p), 0);
    CHECK_EQ(gc_base(h, p), NULL);
  }
}

typedef struct thr_arg {
  gc_heap_t *h;
  int mode; /* 0: wait blocked, 1: spin at safepoints */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ready, go;
  void *volatile addr_seen; /* for the main thread's checks only */
  size_t size;
  int ok;
} thr_arg_t;

/* The only reference is p, a volatile local of this frame. */
static NOINLINE void thr_body(thr_arg_t *a) {
  void *volatile p = gc_malloc(a->h, 6000, GCH_NOSCAN);
  REQUIRE(p);
  fill(p, 6000, 31u + (unsigned)a->mode);
  a->size = gc_size_of(a->h, p);
  /* hand main the address, hidden (main is not scanned for it: it only
   * looks the object up with gc_size_of) */
  a->addr_seen = (void *)((uintptr_t)p ^ 0x5555);
  pthread_mutex_lock(&a->mu);
  a->ready = 1;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
  if (a->mode == 0) {
    gc_blocking_enter(a->h);
    pthread_mutex_lock(&a->mu);
    while (!a->go) pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    gc_blocking_leave(a->h);
  } else {
    for (;;) {
      gc_safepoint(a->h);
      pthread_mutex_lock(&a->mu);
      int go = a->go;
      pthread_mutex_unlock(&a->mu);
      if (go) break;
    }
  }
  a->ok = gc_size_of(a->h, p) == a->size && intact(p, 6000, 31u + (unsigned)a->mode);
}

static void *thr_main(void *arg) {
  thr_arg_t *a = arg;
  REQUIRE(gc_thread_attach(a->h) == GCH_OK);
  thr_body(a);
  REQUIRE(gc_thread_detach(a->h) == GCH_OK);
  return NULL;
}

static void other_thread(gc_heap_t *h, int mode) {
  thr_arg_t a;
  memset(&a, 0, sizeof a);
  a.h = h;
  a.mode = mode;
  pthread_mutex_init(&a.mu, NULL);
  pthread_cond_init(&a.cv, NULL);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, thr_main, &a) == 0);
  /* main waits in a blocking region: the thread may allocate meanwhile */
  gc_blocking_enter(h);
  pthread_mutex_lock(&a.mu);
  while (!a.ready) pthread_cond_wait(&a.cv, &a.mu);
  pthread_mutex_unlock(&a.mu);
  gc_blocking_leave(h);
  /* main never holds the object's address (its own stack is scanned too)
   * until the last collection is over */
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(gc_collect(h), GCH_OK);
    CHECK(test_stats(h).live_bytes >= a.size);
    churn(h, 1000, 6000);
  }
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(gc_size_of(h, (void *)((uintptr_t)a.addr_seen ^ 0x5555)), a.size);
  pthread_mutex_lock(&a.mu);
  a.go = 1;
  pthread_cond_broadcast(&a.cv);
  pthread_mutex_unlock(&a.mu);
  gc_blocking_enter(h);
  pthread_join(t, NULL);
  gc_blocking_leave(h);
  CHECK(a.ok);
  pthread_mutex_destroy(&a.mu);
  pthread_cond_destroy(&a.cv);
}

static void test_stacks(void) {
  gc_config_t cfg = gc_config_default();
  cfg.scan_thread_stacks = 1;
  gc_heap_t *h = test_heap(&cfg);
  hold_on_stack(h, 1);
  other_thread(h, 0);
  other_thread(h, 1);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);

  h = test_heap(NULL); /* scan_thread_stacks = 0 */
  hold_on_stack(h, 0);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_callbacks();
  test_callback_torture();
  test_reentry();
  test_precise_junk();
  test_stacks();
  return test_done("test_roots");
}
