/*
 * test_userarena.c -- user arenas (src/arena/userarena.c).
 *
 *  1. basics: typed, array and noscan allocation, zeroed, aligned, no
 *     overlap; arena memory is not a heap object; stats move through
 *     live -> quarantined -> released;
 *  2. bad input: NULL arena/type, double free, alloc after free, size
 *     overflow, hard limit, unattached thread -- each a clear error;
 *  3. arena objects holding the only pointer to GC objects (small chains
 *     and a 16 MiB dedicated-chunk array) keep them alive across cycles
 *     full of garbage; after gc_arena_free they are collected; the same
 *     past a chunk's first 2 MiB window (mixed pointerful/noscan objects);
 *  4. GC objects and precise roots pointing into a live or freed arena are
 *     not errors (debug builds throw on dangling precise roots);
 *  5. quarantine: a freed chunk is not reused while a heap object (or a
 *     live arena) points into it, and is reused once the pointer is gone
 *     and a cycle has run;
 *  6. use after free faults: a forked child reading or writing freed arena
 *     memory dies by SIGSEGV; physical memory goes back at free (RSS);
 *  7. 10^4 create/alloc/free rounds keep reserved address space, metadata
 *     and RSS flat;
 *  8. threads: four threads with their own arenas while collections run;
 *  9. gc_verify reports a dangling pointer stored in an arena;
 * 10. the trace line shows arena MB; the concurrent mode keeps arena
 *     referents alive under GCHEAP_DEBUG=checkmark;
 * 11. robustness: every OS call of a chunk acquisition failing in turn
 *     (GCH_ENOMEM, then recovery), two heaps side by side, destroying a
 *     heap with live arenas.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap.h" /* internal: the OS layer's failure injection */
#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define CHUNK (8 * MiB)

/* GC node: { next, value } -- next is a pointer. */
typedef struct gnode {
  struct gnode *next;
  uint64_t value;
} gnode_t;

/* Arena record: { gc pointer, arena pointer, payload } -- both pointers. */
typedef struct anode {
  gnode_t *g;
  struct anode *sib;
  uint64_t x;
} anode_t;

typedef struct types {
  const gc_type_t *gnode, *anode, *ptr, *raw;
} types_t;

static types_t make_types(gc_heap_t *h) {
  types_t t;
  uint64_t m1 = 1, m3 = 3, m0 = 0;
  REQUIRE(gc_type_new(h, "gnode", sizeof(gnode_t), &m1, 1, &t.gnode) == GCH_OK);
  REQUIRE(gc_type_new(h, "anode", sizeof(anode_t), &m3, 1, &t.anode) == GCH_OK);
  REQUIRE(gc_type_new(h, "ptr", 8, &m1, 1, &t.ptr) == GCH_OK);
  REQUIRE(gc_type_new(h, "raw", 24, &m0, 1, &t.raw) == GCH_OK);
  return t;
}

static gc_heap_t *quiet_heap(int gc_percent) {
  gc_config_t c = gc_config_default();
  c.gc_percent = gc_percent;
  return test_heap(&c);
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Build a chain of n GC nodes with values base..base+n-1 in *slot (a
 * scanned slot of obj: an arena object or a root), so that the partial
 * chain is reachable whenever a collection may run.  Returns the head. */
static gnode_t *make_chain(gc_heap_t *h, const types_t *t, void *obj,
                           gnode_t **slot, size_t n, uint64_t base) {
  gc_write(h, obj, (void **)slot, NULL);
  for (size_t i = n; i-- > 0;) {
    gnode_t *g = gc_alloc(h, t->gnode);
    REQUIRE(g);
    g->value = base + i;
    gc_write(h, g, (void **)&g->next, *slot);
    gc_write(h, obj, (void **)slot, g);
  }
  return *slot;
}

static int chain_ok(gc_heap_t *h, const gnode_t *g, size_t n, uint64_t base) {
  for (size_t i = 0; i < n; i++, g = g->next)
    if (!g || gc_base(h, g) != g || g->value != base + i) return 0;
  return g == NULL;
}

/* Garbage to make freed slots get reused. */
static void churn(gc_heap_t *h, const types_t *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    gnode_t *g = gc_alloc(h, t->gnode);
    REQUIRE(g);
    g->value = 0xdeaddeadu;
  }
}

/* ------------------------------------------------------------- 1. basics */

static void test_basics(void) {
  gc_heap_t *h = quiet_heap(-1);
  types_t t = make_types(h);
  gc_arena_t *a = gc_arena_new(h);
  REQUIRE(a);
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.arenas_live, 1);
  CHECK_EQ(s.arena_bytes_live, 0);

  anode_t *n1 = gc_arena_alloc(a, t.anode, 1);
  anode_t *arr = gc_arena_alloc(a, t.anode, 100);
  char *raw = gc_arena_alloc_bytes(a, 13);
  void *r2 = gc_arena_alloc(a, t.raw, 3); /* noscan type */
  void *z1 = gc_arena_alloc(a, t.anode, 0), *z2 = gc_arena_alloc_bytes(a, 0);
  REQUIRE(n1 && arr && raw && r2 && z1 && z2);
  CHECK(z1 != z2 && z1 != (void *)n1);
  CHECK((uintptr_t)n1 % 8 == 0 && (uintptr_t)arr % 8 == 0);
  CHECK((uintptr_t)raw % 8 == 0 && (uintptr_t)r2 % 8 == 0);
  /* pointerful objects bump up, noscan ones down: no overlap */
  CHECK((char *)arr >= (char *)(n1 + 1));
  CHECK((char *)raw + 16 <= (char *)r2 || (char *)r2 + 72 <= raw);
  for (int i = 0; i < 100; i++) CHECK(arr[i].g == NULL && arr[i].x == 0);
  for (int i = 0; i < 13; i++) CHECK(raw[i] == 0);
  memset(raw, 0xab, 13);
  arr[99].x = 42;
  CHECK_EQ(n1->x, 0);
  /* arena memory is not a heap object */
  CHECK(gc_base(h, n1) == NULL);
  CHECK_EQ(gc_size_of(h, arr), 0);

  s = test_stats(h);
  CHECK_EQ(s.arena_bytes_live, CHUNK);
  CHECK_EQ(s.arena_chunks_live, 1);
  CHECK(s.bytes_reserved >= 64 * MiB);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);

  CHECK_EQ(gc_arena_free(a), GCH_OK);
  s = test_stats(h);
  CHECK_EQ(s.arenas_live, 0);
  CHECK_EQ(s.arena_bytes_live, 0);
  CHECK_EQ(s.arena_bytes_quarantined, CHUNK);
  CHECK_EQ(s.arena_chunks_quarantined, 1);
  CHECK_EQ(gc_collect(h), GCH_OK);
  s = test_stats(h);
  CHECK_EQ(s.arena_bytes_quarantined, 0);
  CHECK_EQ(s.arena_chunks_released, 1);
  CHECK(s.arena_bytes_free >= CHUNK);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ---------------------------------------------------------- 2. bad input */

static void *unattached_main(void *arg) {
  gc_heap_t *h = arg;
  gc_arena_t *a = gc_arena_new(h);
  CHECK(a == NULL);
  CHECK_EQ(gc_last_error(h), GCH_ENOTATTACHED);
  return NULL;
}

static void test_bad_input(void) {
  gc_heap_t *h = quiet_heap(-1);
  types_t t = make_types(h);
  CHECK(gc_arena_new(NULL) == NULL);

  /* NULL arena: the error lands on every heap this thread uses */
  CHECK(gc_arena_alloc(NULL, t.anode, 1) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
  CHECK(gc_arena_alloc_bytes(NULL, 8) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
  CHECK_EQ(gc_arena_free(NULL), GCH_EINVAL);

  gc_arena_t *a = gc_arena_new(h);
  REQUIRE(a);
  CHECK(gc_arena_alloc(a, NULL, 1) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EINVAL);
  /* n * size overflows (it would wrap to a small size) */
  CHECK(gc_arena_alloc(a, t.anode, SIZE_MAX / 8) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EOVERFLOW);
  CHECK(gc_arena_alloc(a, t.ptr, ((size_t)1 << 43) + 1) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EOVERFLOW);
  CHECK(gc_arena_alloc_bytes(a, SIZE_MAX) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EOVERFLOW);
  CHECK(gc_arena_alloc_bytes(a, SIZE_MAX - 3) == NULL); /* would round to 0 */
  CHECK_EQ(gc_last_error(h), GCH_EOVERFLOW);
  void *p = gc_arena_alloc(a, t.anode, 1);
  CHECK(p != NULL);

  /* double free, alloc after free */
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_arena_free(a), GCH_EDOUBLEFREE);
  CHECK_EQ(gc_last_error(h), GCH_EDOUBLEFREE);
  CHECK(gc_arena_alloc(a, t.anode, 1) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EDOUBLEFREE);
  CHECK(gc_arena_alloc_bytes(a, 16) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_EDOUBLEFREE);
  /* still detected after many more arenas came and went */
  for (int i = 0; i < 1000; i++) {
    gc_arena_t *b = gc_arena_new(h);
    REQUIRE(b && b != a);
    CHECK_EQ(gc_arena_free(b), GCH_OK);
  }
  CHECK_EQ(gc_arena_free(a), GCH_EDOUBLEFREE);

  /* a thread that is not attached */
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, unattached_main, h) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);

  /* the hard limit covers arena chunks */
  gc_config_t c = gc_config_default();
  c.hard_limit = 6 * MiB;
  h = test_heap(&c);
  a = gc_arena_new(h);
  REQUIRE(a);
  CHECK(gc_arena_alloc_bytes(a, 64) == NULL);
  CHECK_EQ(gc_last_error(h), GCH_ELIMIT);
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ---------------------------------------------------------- 3. keep-alive */

#define KEEP 200
#define CHAIN 20

static void test_keepalive(void) {
  gc_heap_t *h = quiet_heap(100);
  types_t t = make_types(h);
  gc_arena_t *a = gc_arena_new(h);
  REQUIRE(a);
  anode_t *rec[KEEP];
  gnode_t *heads[KEEP];
  for (int i = 0; i < KEEP; i++) {
    rec[i] = gc_arena_alloc(a, t.anode, 1);
    REQUIRE(rec[i]);
    heads[i] = make_chain(h, &t, rec[i], &rec[i]->g, CHAIN, (uint64_t)i * 1000);
    rec[i]->sib = i ? rec[i - 1] : NULL; /* a pointer into the arena itself */
    REQUIRE(gc_arena_alloc_bytes(a, 40)); /* interleave noscan objects */
  }
  /* a 16 MiB array: its own multi-unit chunk; the current chunk stays */
  size_t big_n = 2 * MiB;
  gnode_t **big = gc_arena_alloc(a, t.ptr, big_n);
  REQUIRE(big);
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.arena_chunks_live, 2);
  CHECK(s.arena_bytes_live >= CHUNK + 16 * MiB);
  make_chain(h, &t, big, &big[0], CHAIN, 7000000);
  make_chain(h, &t, big, &big[big_n / 2], CHAIN, 8000000);
  make_chain(h, &t, big, &big[big_n - 1], CHAIN, 9000000);
  anode_t *after = gc_arena_alloc(a, t.anode, 1);
  REQUIRE(after);
  CHECK((char *)after > (char *)rec[KEEP - 1] &&
        (char *)after < (char *)rec[0] + CHUNK); /* same chunk as before */

  uint64_t freed0 = test_stats(h).total_freed_objects;
  for (int round = 0; round < 4; round++) {
    churn(h, &t, 100000);
    CHECK_EQ(gc_collect(h), GCH_OK);
  }
  for (int i = 0; i < KEEP; i++)
    CHECK(rec[i]->g == heads[i] && chain_ok(h, heads[i], CHAIN, (uint64_t)i * 1000));
  CHECK(chain_ok(h, big[0], CHAIN, 7000000));
  CHECK(chain_ok(h, big[big_n / 2], CHAIN, 8000000));
  CHECK(chain_ok(h, big[big_n - 1], CHAIN, 9000000));
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK(test_stats(h).total_freed_objects >= freed0 + 300000); /* churn died */

  gnode_t *bh = big[0];
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  int alive = 0;
  for (int i = 0; i < KEEP; i++) alive += gc_base(h, heads[i]) != NULL;
  alive += gc_base(h, bh) != NULL;
  CHECK_EQ(alive, 0);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* Mixed objects past the first 2 MiB window of a chunk: the rest of the
 * chunk is opened (lo skips the noscan objects' part of the window) and
 * objects there are scanned like the rest. */
static void test_window(void) {
  gc_heap_t *h = quiet_heap(100);
  types_t t = make_types(h);
  gc_arena_t *a = gc_arena_new(h);
  REQUIRE(a);
  enum { N = 60000, EVERY = 1000 };
  anode_t *keep[N / EVERY];
  anode_t *first = NULL, *last = NULL;
  for (int i = 0; i < N; i++) {
    anode_t *n = gc_arena_alloc(a, t.anode, 1);
    char *b = gc_arena_alloc_bytes(a, 40);
    REQUIRE(n && b);
    b[39] = 1;
    if (!first) first = n;
    last = n;
    n->x = (uint64_t)i;
    if (i % EVERY == 0)
      make_chain(h, &t, n, &(keep[i / EVERY] = n)->g, 5, (uint64_t)i);
  }
  CHECK((char *)last - (char *)first > (ptrdiff_t)(2 * MiB)); /* crossed */
  CHECK_EQ(test_stats(h).arena_chunks_live, 1);
  for (int round = 0; round < 3; round++) {
    churn(h, &t, 50000);
    CHECK_EQ(gc_collect(h), GCH_OK);
  }
  for (int k = 0; k < N / EVERY; k++)
    CHECK(keep[k]->x == (uint64_t)k * EVERY &&
          chain_ok(h, keep[k]->g, 5, (uint64_t)k * EVERY));
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ------------------------------------------- 4. heap pointers into arenas */

static void test_heap_into_arena(void) {
  gc_heap_t *h = quiet_heap(-1);
  types_t t = make_types(h);
  void *root[2] = {NULL, NULL};
  REQUIRE(gc_root_add(h, root, sizeof root, GCH_ROOT_PRECISE) == GCH_OK);
  gc_arena_t *a = gc_arena_new(h);
  anode_t *an = gc_arena_alloc(a, t.anode, 4);
  REQUIRE(a && an);
  gnode_t *g = gc_alloc(h, t.gnode);
  REQUIRE(g);
  gc_write(h, g, (void **)&g->next, (gnode_t *)(void *)&an[1]); /* interior */
  root[0] = g;
  root[1] = &an[2]; /* a precise root into the arena */
  an[0].g = g;      /* and the arena back to the heap */
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK(gc_base(h, g) == g && g->next == (gnode_t *)(void *)&an[1]);

  CHECK_EQ(gc_arena_free(a), GCH_OK); /* now both point into quarantine */
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(test_stats(h).arena_chunks_quarantined, 1);
  root[0] = root[1] = NULL;
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(test_stats(h).arena_chunks_quarantined, 0);
  CHECK_EQ(gc_root_remove(h, root), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ----------------------------------------------------------- 5. quarantine */

typedef struct holder {
  void *p;
} holder_t;

static int in_chunk_any(const void *p, const void *q) {
  return ((uintptr_t)p >> 23) == ((uintptr_t)q >> 23);
}

/* p lies in the 8 MiB chunk holding q. */
static int in_chunk(const void *p, uintptr_t q) {
  uintptr_t base = q & ~(uintptr_t)(CHUNK - 1);
  return (uintptr_t)p >= base && (uintptr_t)p < base + CHUNK;
}

static void test_quarantine(void) {
  gc_heap_t *h = quiet_heap(-1); /* cycles only when asked */
  types_t t = make_types(h);
  holder_t *root[1] = {NULL};
  REQUIRE(gc_root_add(h, root, sizeof root, GCH_ROOT_PRECISE) == GCH_OK);
  const gc_type_t *holder;
  uint64_t m1 = 1;
  REQUIRE(gc_type_new(h, "holder", sizeof(holder_t), &m1, 1, &holder) == GCH_OK);
  root[0] = gc_alloc(h, holder);
  REQUIRE(root[0]);

  gc_arena_t *a = gc_arena_new(h);
  anode_t *pa = gc_arena_alloc(a, t.anode, 1);
  REQUIRE(a && pa);
  uintptr_t x = (uintptr_t)pa; /* first object: just past the chunk's bitmap */
  CHECK_EQ(x % CHUNK, CHUNK / 64);
  gc_write(h, root[0], &root[0]->p, &pa->x); /* interior pointer */
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.arena_chunks_quarantined, 1);
  CHECK_EQ(s.arena_chunks_released, 0);

  /* while the pointer is there, new arenas get other chunks */
  gc_arena_t *b = gc_arena_new(h);
  anode_t *pb = gc_arena_alloc(b, t.anode, 1);
  REQUIRE(b && pb);
  CHECK(!in_chunk(pb, x));
  /* a live arena pointing into a freed one keeps it quarantined too */
  gc_arena_t *c = gc_arena_new(h);
  anode_t *pc = gc_arena_alloc(c, t.anode, 1);
  REQUIRE(c && pc);
  CHECK(!in_chunk(pc, x));
  pc->sib = pb;
  uintptr_t xb = (uintptr_t)pb;
  CHECK_EQ(gc_arena_free(b), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  s = test_stats(h);
  CHECK_EQ(s.arena_chunks_quarantined, 2);
  CHECK_EQ(s.arena_chunks_released, 0);
  CHECK_EQ(gc_arena_free(c), GCH_OK); /* c was the only holder of pb */
  CHECK_EQ(gc_collect(h), GCH_OK);
  s = test_stats(h);
  CHECK_EQ(s.arena_chunks_quarantined, 1); /* x only */
  CHECK_EQ(s.arena_chunks_released, 2);

  gc_arena_t *d = gc_arena_new(h);
  anode_t *pd = gc_arena_alloc(d, t.anode, 1);
  REQUIRE(d && pd);
  CHECK(!in_chunk(pd, x));
  CHECK(in_chunk(pd, xb) || (uintptr_t)pd == (uintptr_t)pc); /* reused */
  CHECK_EQ(gc_arena_free(d), GCH_OK);

  /* drop the pointer: one cycle later the chunk is reused */
  gc_write(h, root[0], &root[0]->p, NULL);
  CHECK_EQ(gc_collect(h), GCH_OK);
  s = test_stats(h);
  CHECK_EQ(s.arena_chunks_quarantined, 0);
  CHECK_EQ(s.arena_bytes_quarantined, 0);
  gc_arena_t *e = gc_arena_new(h);
  anode_t *pe = gc_arena_alloc(e, t.anode, 1);
  REQUIRE(e && pe);
  CHECK_EQ((uintptr_t)pe, x); /* lowest free address: the old chunk */
  CHECK(pe->g == NULL && pe->x == 0); /* fresh, zeroed memory */
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_arena_free(e), GCH_OK);
  CHECK_EQ(gc_root_remove(h, root), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ------------------------------------------------------- 6. fault on use */

/* Run fn in a child; return the signal that killed it (0: exited). */
static int child_signal(void (*fn)(void *), void *arg) {
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL; /* no sanitizer report: just die */
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    fn(arg);
    _exit(0);
  }
  int st;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

typedef struct uaf {
  gc_arena_t *a;
  volatile uint64_t *p;
  int write;
} uaf_t;

static void uaf_child(void *arg) {
  uaf_t *u = arg;
  if (gc_arena_free(u->a) != GCH_OK) _exit(3);
  if (u->write) *u->p = 1;
  else if (*u->p == 0x1234) _exit(4);
  _exit(5); /* survived the access: wrong */
}

static void test_fault(void) {
  gc_heap_t *h = quiet_heap(-1);
  types_t t = make_types(h);
  gc_arena_t *a = gc_arena_new(h);
  anode_t *n = gc_arena_alloc(a, t.anode, 1);
  uint64_t *raw = gc_arena_alloc_bytes(a, 64);
  uint64_t *big = gc_arena_alloc_bytes(a, 12 * MiB); /* its own chunk */
  REQUIRE(a && n && raw && big);
  n->x = 0x1234;
  raw[7] = 0x1234;
  big[12 * MiB / 8 - 1] = 0x1234;
  uaf_t cases[] = {{a, &n->x, 0}, {a, &raw[7], 1}, {a, &big[12 * MiB / 8 - 1], 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK_EQ(child_signal(uaf_child, &cases[i]), SIGSEGV);
  /* the parent's arena is untouched by the children's frees */
  CHECK(n->x == 0x1234 && raw[7] == 0x1234 && big[12 * MiB / 8 - 1] == 0x1234);

  /* physical memory goes back to the OS at free */
  gc_arena_t *r = gc_arena_new(h);
  REQUIRE(r);
  size_t before = rss_bytes();
  for (int i = 0; i < 8; i++) {
    char *m = gc_arena_alloc_bytes(r, 7 * MiB);
    REQUIRE(m);
    memset(m, 1, 7 * MiB);
  }
  size_t touched = rss_bytes();
  CHECK(touched >= before + 48 * MiB);
  CHECK_EQ(gc_arena_free(r), GCH_OK);
  CHECK(rss_bytes() + 48 * MiB <= touched);
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ---------------------------------------------------------- 7. flat memory */

static void test_flat(void) {
  gc_heap_t *h = quiet_heap(100);
  types_t t = make_types(h);
  gnode_t *root[1] = {NULL};
  REQUIRE(gc_root_add(h, root, sizeof root, GCH_ROOT_PRECISE) == GCH_OK);
  gnode_t *g = root[0] = gc_alloc(h, t.gnode);
  REQUIRE(g);
  size_t warm_reserved = 0, warm_meta = 0, warm_rss = 0;
  size_t late_reserved = 0, late_meta = 0, late_rss = 0;
  for (int round = 0; round < 10000; round++) {
    gc_arena_t *a = gc_arena_new(h);
    REQUIRE(a);
    for (int i = 0; i < 10; i++) {
      anode_t *n = gc_arena_alloc(a, t.anode, 1);
      REQUIRE(n);
      n->g = g;
      REQUIRE(gc_arena_alloc_bytes(a, 100));
    }
    REQUIRE(gc_arena_free(a) == GCH_OK);
    /* Warm: rounds 4500..4999, once the graveyard of freed arena records
     * (UARENA_GRAVEYARD_MAX = 4096) is full; late: everything after. */
    if (round >= 4500 && round % 100 == 99) {
      gc_stats_t s = test_stats(h);
      size_t rss = rss_bytes();
      size_t *res = round < 5000 ? &warm_reserved : &late_reserved;
      size_t *meta = round < 5000 ? &warm_meta : &late_meta;
      size_t *rs = round < 5000 ? &warm_rss : &late_rss;
      *res = max_sz(*res, s.bytes_reserved);
      *meta = max_sz(*meta, s.metadata_bytes);
      *rs = max_sz(*rs, rss);
    }
  }
  gc_stats_t s = test_stats(h);
  printf("flat: reserved %zu -> %zu MiB, metadata %zu -> %zu KiB, rss %zu -> "
         "%zu MiB, %llu cycles, %llu chunks released\n",
         warm_reserved >> 20, late_reserved >> 20, warm_meta >> 10,
         late_meta >> 10, warm_rss >> 20, late_rss >> 20,
         (unsigned long long)s.cycles,
         (unsigned long long)s.arena_chunks_released);
  CHECK(late_reserved <= warm_reserved);
  CHECK(late_meta <= warm_meta);
  CHECK(late_rss <= warm_rss + 16 * MiB);
  CHECK(s.cycles >= 100); /* quarantine pressure ran collections */
  CHECK(s.arena_chunks_released >= 9000);
  CHECK(gc_base(h, g) == g); /* ordinary objects unaffected */
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_root_remove(h, root), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* --------------------------------------------------------------- 8. threads */

typedef struct worker {
  gc_heap_t *h;
  types_t t;
  int ok;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  gc_heap_t *h = w->h;
  if (gc_thread_attach(h) != GCH_OK) return NULL;
  int ok = 1;
  for (int round = 0; round < 200 && ok; round++) {
    gc_arena_t *a = gc_arena_new(h);
    anode_t *n = a ? gc_arena_alloc(a, w->t.anode, 64) : NULL;
    if (!n) {
      ok = 0;
      break;
    }
    for (int i = 0; i < 64; i++) {
      gnode_t *g = gc_alloc(h, w->t.gnode);
      if (!g) ok = 0;
      else g->value = (uint64_t)round * 64 + (uint64_t)i;
      gc_write(h, &n[i], (void **)&n[i].g, g);
    }
    churn(h, &w->t, 2000); /* garbage: cycles run while n holds the g's */
    gc_safepoint(h);
    for (int i = 0; i < 64; i++)
      if (!n[i].g || gc_base(h, n[i].g) != n[i].g ||
          n[i].g->value != (uint64_t)round * 64 + (uint64_t)i)
        ok = 0;
    if (gc_arena_free(a) != GCH_OK) ok = 0;
  }
  w->ok = ok;
  gc_thread_detach(h);
  return NULL;
}

static void test_threads(void) {
  gc_heap_t *h = quiet_heap(50);
  types_t t = make_types(h);
  worker_t ws[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    ws[i] = (worker_t){h, t, 0};
    REQUIRE(pthread_create(&th[i], NULL, worker_main, &ws[i]) == 0);
  }
  for (int i = 0; i < 20; i++) {
    CHECK_EQ(gc_collect(h), GCH_OK);
    gc_blocking_enter(h);
    usleep(2000);
    gc_blocking_leave(h);
  }
  gc_blocking_enter(h);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  gc_blocking_leave(h);
  for (int i = 0; i < 4; i++) CHECK(ws[i].ok);
  gc_stats_t s = test_stats(h);
  CHECK_EQ(s.arenas_live, 0);
  CHECK_EQ(s.arena_bytes_live, 0);
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ---------------------------------------------------------------- 9. verify */

static void test_verify(void) {
  gc_heap_t *h = quiet_heap(-1);
  types_t t = make_types(h);
  gnode_t *root[1] = {NULL};
  REQUIRE(gc_root_add(h, root, sizeof root, GCH_ROOT_PRECISE) == GCH_OK);
  make_chain(h, &t, NULL, &root[0], 100, 0); /* keeps the span in use */
  gnode_t *dead = gc_alloc(h, t.gnode);
  REQUIRE(dead);
  CHECK_EQ(gc_collect(h), GCH_OK);
  CHECK_EQ(gc_collect(h), GCH_OK);
  REQUIRE(gc_base(h, dead) == NULL); /* a free slot of a live span */
  gc_arena_t *a = gc_arena_new(h);
  anode_t *n = gc_arena_alloc(a, t.anode, 1);
  REQUIRE(a && n);
  n->g = dead;
  FILE *sink = tmpfile();
  REQUIRE(sink);
  CHECK_EQ(gc_verify(h, sink), GCH_EVERIFY);
  rewind(sink);
  char line[512] = "";
  CHECK(fgets(line, sizeof line, sink) && strstr(line, "user-arena word"));
  fclose(sink);
  n->g = NULL;
  CHECK_EQ(gc_verify(h, stderr), GCH_OK);
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_root_remove(h, root), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ------------------------------------------- 10. trace, concurrent mode */

static void test_trace(void) {
  gc_config_t c = gc_config_default();
  c.gc_percent = -1;
  c.trace = 1;
  gc_heap_t *h = test_heap(&c);
  types_t t = make_types(h);
  gc_arena_t *a = gc_arena_new(h);
  REQUIRE(a && gc_arena_alloc(a, t.anode, 1));
  FILE *tmp = tmpfile();
  REQUIRE(tmp);
  fflush(stderr);
  int saved = dup(2);
  REQUIRE(saved >= 0 && dup2(fileno(tmp), 2) == 2);
  gc_collect(h);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  char line[1024] = "";
  CHECK(fgets(line, sizeof line, tmp) != NULL);
  CHECK(strstr(line, ", arena 8.0 MB live 0.0 MB quarantined") != NULL);
  fclose(tmp);
  CHECK_EQ(gc_arena_free(a), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

static void test_concurrent(void) {
  setenv("GCHEAP_DEBUG", "checkmark,verify", 1);
  gc_config_t c = gc_config_default();
  c.mode = GCH_MODE_CONCURRENT;
  c.gc_percent = 25;
  gc_heap_t *h = test_heap(&c);
  unsetenv("GCHEAP_DEBUG");
  types_t t = make_types(h);
  for (int round = 0; round < 20; round++) {
    gc_arena_t *a = gc_arena_new(h);
    REQUIRE(a);
    anode_t *n[64];
    for (int i = 0; i < 64; i++) {
      n[i] = gc_arena_alloc(a, t.anode, 1);
      REQUIRE(n[i]);
      make_chain(h, &t, n[i], &n[i]->g, 8, (uint64_t)i * 100);
      churn(h, &t, 3000); /* concurrent cycles run meanwhile */
    }
    for (int i = 0; i < 64; i++) CHECK(chain_ok(h, n[i]->g, 8, (uint64_t)i * 100));
    CHECK_EQ(gc_arena_free(a), GCH_OK);
  }
  CHECK(test_stats(h).cycles >= 5);
  CHECK_EQ(gc_heap_destroy(h), GCH_OK);
}

/* ------------------------------------------------------- 11. robustness */

static void test_os_failures(void) {
  int failed = 0, succeeded = 0;
  for (long k = 1; k <= 12; k++) {
    gc_heap_t *h = quiet_heap(-1);
    types_t t = make_types(h);
    gc_arena_t *a = gc_arena_new(h);
    REQUIRE(a);
    _gc_os_fail_after(&h->os, k);
    void *p = gc_arena_alloc(a, t.anode, 1);
    _gc_os_fail_after(&h->os, 0);
    if (p) {
      succeeded++;
    } else {
      failed++;
      CHECK_EQ(gc_last_error(h), GCH_ENOMEM);
    }
    anode_t *q = gc_arena_alloc(a, t.anode, 10); /* works again */
    CHECK(q != NULL && q[9].x == 0);
    CHECK_EQ(gc_verify(h, stderr), GCH_OK);
    CHECK_EQ(gc_arena_free(a), GCH_OK);
    CHECK_EQ(gc_collect(h), GCH_OK);
    CHECK_EQ(gc_verify(h, stderr), GCH_OK);
    CHECK_EQ(gc_heap_destroy(h), GCH_OK);
  }
  CHECK(failed >= 3 && succeeded >= 1); /* reserve, index, map all failed */
}

static void test_two_heaps(void) {
  gc_heap_t *h[2] = {quiet_heap(-1), quiet_heap(-1)};
  types_t t[2] = {make_types(h[0]), make_types(h[1])};
  gc_arena_t *a[2];
  anode_t *n[2];
  for (int i = 0; i < 2; i++) {
    a[i] = gc_arena_new(h[i]);
    n[i] = a[i] ? gc_arena_alloc(a[i], t[i].anode, 1) : NULL;
    REQUIRE(n[i]);
    make_chain(h[i], &t[i], n[i], &n[i]->g, 10, (uint64_t)i * 100);
  }
  CHECK(!in_chunk_any(n[0], n[1]));
  for (int i = 0; i < 2; i++) {
    churn(h[i], &t[i], 20000);
    CHECK_EQ(gc_collect(h[i]), GCH_OK);
    CHECK(chain_ok(h[i], n[i]->g, 10, (uint64_t)i * 100));
    CHECK(gc_base(h[1 - i], n[i]->g) == NULL); /* not the other heap's */
  }
  CHECK_EQ(gc_arena_free(a[0]), GCH_OK);
  CHECK_EQ(test_stats(h[1]).arena_chunks_live, 1);
  CHECK_EQ(test_stats(h[0]).arena_chunks_quarantined, 1);
  /* h[1] is destroyed with its arena live: its memory goes with the heap */
  CHECK(gc_arena_alloc_bytes(a[1], 20 * MiB) != NULL);
  CHECK_EQ(gc_heap_destroy(h[1]), GCH_OK);
  CHECK_EQ(gc_heap_destroy(h[0]), GCH_OK);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_basics();
  test_bad_input();
  test_keepalive();
  test_window();
  test_heap_into_arena();
  test_quarantine();
  test_fault();
  test_flat();
  test_threads();
  test_verify();
  test_trace();
  test_concurrent();
  test_os_failures();
  test_two_heaps();
  return test_done("test_userarena");
}
