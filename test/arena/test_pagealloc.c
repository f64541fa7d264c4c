/*
 * test_pagealloc.c -- tests of the page allocator (src/arena/pagealloc.c).
 *
 * Everything runs on "fake heaps": the allocator only does arithmetic on
 * addresses, so heaps live at 0x1000_0000_0000 and 0x3000_0000_0000 (far
 * apart, to exercise the sparse chunk map and summary levels) without ever
 * being mapped.  Sections:
 *   1. unit cases with exact expected addresses;
 *   2. a randomized model test: every alloc must return the address a naive
 *      first fit over a byte-per-page array returns; page cache, scavenge
 *      and grow are modelled too; _gc_pages_check runs after every step in
 *      GCH_DEBUG builds and every 4096 steps otherwise;
 *   3. two pages_t instances over the same fake addresses, interleaved;
 *   4. OS failure injection into init and grow.
 * Seed: argv[1] or GCHEAP_SEED (printed either way).  Model steps:
 * GCHEAP_PA_OPS (default 1000000).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena/pagealloc.h"

#ifndef GCH_DEBUG
#define GCH_DEBUG 0
#endif

static unsigned long long g_seed;

#define CHECK(c, ...)                                                  \
  do {                                                                 \
    if (!(c)) {                                                        \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);     \
      fprintf(stderr, __VA_ARGS__);                                    \
      fprintf(stderr, " (seed %llu)\n", g_seed);                       \
      exit(1);                                                         \
    }                                                                  \
  } while (0)

#define PG(i) ((uintptr_t)(i) * GCH_PAGE_SIZE)
#define CHUNKS(n) ((size_t)(n) * GCH_CHUNK_PAGES)
#define NONE ((size_t)-1)

static const uintptr_t A = 0x100000000000; /* a root and L2 block boundary */
static const uintptr_t B = 0x300000000000;

static uint64_t rnd(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void consistent(const pages_t *p, const char *where) {
  char msg[256];
  CHECK(_gc_pages_check(p, msg, sizeof msg) == 0, "%s: %s", where, msg);
}

static void setup(pages_t *p, os_mem_t *os) {
  memset(os, 0, sizeof *os);
  CHECK(_gc_pages_init(p, os) == 0, "init");
}

static void teardown(pages_t *p, os_mem_t *os) {
  consistent(p, "teardown");
  _gc_pages_destroy(p);
  CHECK(os->reserved == 0 && os->ready == 0, "metadata leaked: %zu/%zu",
        (size_t)os->reserved, (size_t)os->ready);
}

static uintptr_t alloc_ok(pages_t *p, size_t n, uintptr_t want, size_t scav) {
  size_t ns = 12345;
  uintptr_t a = _gc_pages_alloc(p, n, &ns);
  CHECK(a == want, "alloc(%zu) = %#zx, want %#zx", n, (size_t)a, (size_t)want);
  if (scav != NONE) CHECK(ns == scav, "alloc(%zu) nscav %zu want %zu", n, ns, scav);
  consistent(p, "alloc");
  return a;
}

/* ---- 1. unit cases --------------------------------------------------- */

static void t_single_page(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  CHECK(_gc_pages_alloc(&p, 1, NULL) == 0, "empty heap must fail");
  CHECK(_gc_pages_grow(&p, A, CHUNKS(1)) == 0, "grow");
  alloc_ok(&p, 1, A, 1);
  alloc_ok(&p, 1, A + PG(1), 1);
  CHECK(_gc_pages_in_use(&p, A) && _gc_pages_in_use(&p, A + PG(1)), "in use");
  CHECK(!_gc_pages_in_use(&p, A + PG(2)) && !_gc_pages_in_use(&p, B), "free");
  _gc_pages_free(&p, A, 1);
  CHECK(!_gc_pages_in_use(&p, A), "freed");
  alloc_ok(&p, 1, A, 0); /* freed pages stay backed */
  CHECK(p.free_pages == 510 && p.scav_pages == 510, "counters");
  teardown(&p, &os);
}

static void t_exact_fit(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(1)) == 0, "grow");
  alloc_ok(&p, 512, A, 512);
  CHECK(_gc_pages_alloc(&p, 1, NULL) == 0 && p.free_pages == 0, "full");
  _gc_pages_free(&p, A, 512);
  alloc_ok(&p, 10, A, 0);
  alloc_ok(&p, 5, A + PG(10), 0);
  alloc_ok(&p, 10, A + PG(15), 0);
  _gc_pages_free(&p, A + PG(10), 5);
  alloc_ok(&p, 6, A + PG(25), 0); /* hole too small */
  alloc_ok(&p, 5, A + PG(10), 0); /* exact hole */
  /* an exact 64-page hole on word boundaries */
  alloc_ok(&p, 481, A + PG(31), 0);
  _gc_pages_free(&p, A + PG(128), 64);
  alloc_ok(&p, 64, A + PG(128), 0);
  CHECK(p.free_pages == 0, "full again");
  teardown(&p, &os);
}

static void t_lowest_address(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  /* grow the high region first: the low one must still win */
  CHECK(_gc_pages_grow(&p, B, CHUNKS(1)) == 0, "grow B");
  alloc_ok(&p, 1, B, 1);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(1)) == 0, "grow A");
  alloc_ok(&p, 1, A, 1);
  alloc_ok(&p, 99, A + PG(1), 99);
  _gc_pages_free(&p, A + PG(10), 7);
  _gc_pages_free(&p, A + PG(50), 3);
  _gc_pages_free(&p, A + PG(80), 3);
  alloc_ok(&p, 3, A + PG(10), 0); /* first fit, not best fit */
  alloc_ok(&p, 4, A + PG(13), 0);
  alloc_ok(&p, 3, A + PG(50), 0);
  alloc_ok(&p, 2, A + PG(80), 0);
  alloc_ok(&p, 1, A + PG(82), 0);
  alloc_ok(&p, 1, A + PG(100), 1);
  alloc_ok(&p, 411, A + PG(101), 411);
  alloc_ok(&p, 1, B + PG(1), 1); /* A full: on to B */
  alloc_ok(&p, 600, 0, 0);        /* no 600-page run anywhere */
  teardown(&p, &os);
}

static void t_straddle(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, B, CHUNKS(2)) == 0, "grow");
  alloc_ok(&p, 500, B, 500);
  alloc_ok(&p, 24, B + PG(500), 24); /* crosses the chunk boundary */
  _gc_pages_free(&p, B + PG(500), 24);
  alloc_ok(&p, 13, B + PG(500), 0);
  alloc_ok(&p, 11, B + PG(513), 0);
  /* R..R+8 chunks crosses a level-3 entry, an L2 block and a root entry */
  uintptr_t r = A - 4 * GCH_CHUNK_BYTES;
  CHECK(_gc_pages_grow(&p, r, CHUNKS(8)) == 0, "grow R");
  alloc_ok(&p, 2040, r, 2040);
  alloc_ok(&p, 16, r + PG(2040), 16);
  alloc_ok(&p, 2040, r + PG(2056), 2040);
  _gc_pages_free(&p, r, 4096);
  alloc_ok(&p, 4096, r, 0);
  teardown(&p, &os);
}

static void t_many_chunks(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(40)) == 0, "grow");
  alloc_ok(&p, 1, A, 1);
  alloc_ok(&p, 10000, A + PG(1), 10000);
  alloc_ok(&p, 10000, A + PG(10001), 10000);
  alloc_ok(&p, 480, 0, 0);
  alloc_ok(&p, 479, A + PG(20001), 479);
  alloc_ok(&p, 1, 0, 0);
  _gc_pages_free(&p, A + PG(10001), 10000);
  _gc_pages_free(&p, A + PG(1), 10000);
  alloc_ok(&p, 20001, 0, 0);
  alloc_ok(&p, 20000, A + PG(1), 0);
  teardown(&p, &os);

  /* Two whole 16 GiB root entries: the "all 2^21" summary encoding. */
  setup(&p, &os);
  size_t root = (size_t)1 << 21;
  uintptr_t c = 0x200000000000;
  CHECK(_gc_pages_grow(&p, c, 2 * root) == 0, "grow 32 GiB");
  alloc_ok(&p, 2 * root + 1, 0, 0);
  alloc_ok(&p, root + 5, c, root + 5);
  _gc_pages_free(&p, c, root + 5);
  alloc_ok(&p, 2 * root, c, root - 5);
  alloc_ok(&p, 1, 0, 0);
  _gc_pages_free(&p, c + PG(root - 3), 6);
  alloc_ok(&p, 6, c + PG(root - 3), 0);
  teardown(&p, &os);
}

static void t_failure_unchanged(void) {
  os_mem_t os;
  pages_t p;
  static unsigned char before[CHUNKS(2)];
  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(2)) == 0, "grow");
  uint64_t s = g_seed;
  alloc_ok(&p, CHUNKS(2), A, CHUNKS(2));
  for (size_t i = 0; i < CHUNKS(2); i += 1 + rnd(&s) % 40) {
    size_t n = 1 + rnd(&s) % 30;
    _gc_pages_free(&p, A + PG(i), i + n > CHUNKS(2) ? CHUNKS(2) - i : n);
    i += n;
  }
  size_t longest = 0, run = 0;
  for (size_t i = 0; i < CHUNKS(2); i++) {
    before[i] = (unsigned char)_gc_pages_in_use(&p, A + PG(i));
    run = before[i] ? 0 : run + 1;
    if (run > longest) longest = run;
  }
  size_t f = p.free_pages, sc = p.scav_pages;
  CHECK(longest >= 1 && longest <= 30, "longest free run %zu", longest);
  CHECK(_gc_pages_alloc(&p, 0, NULL) == 0, "alloc(0)");
  CHECK(_gc_pages_alloc(&p, CHUNKS(2) + 1, NULL) == 0, "too big");
  CHECK(_gc_pages_alloc(&p, (size_t)1 << 40, NULL) == 0, "huge");
  CHECK(_gc_pages_alloc(&p, longest + 1, NULL) == 0, "no run of %zu", longest + 1);
  for (size_t i = 0; i < CHUNKS(2); i++)
    CHECK(before[i] == _gc_pages_in_use(&p, A + PG(i)), "page %zu changed", i);
  CHECK(f == p.free_pages && sc == p.scav_pages, "counters changed");
  consistent(&p, "after failures");
  teardown(&p, &os);
}

static void t_scav_accounting(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(1)) == 0, "grow");
  CHECK(p.free_pages == 512 && p.scav_pages == 512 && p.total_pages == 512,
        "fresh pages are free and scavenged");
  alloc_ok(&p, 10, A, 10);
  _gc_pages_free(&p, A, 10);
  CHECK(p.free_pages == 512 && p.scav_pages == 502, "freed pages are backed");
  alloc_ok(&p, 12, A, 2);
  alloc_ok(&p, 100, A + PG(12), 100);
  CHECK(p.scav_pages == 400 && p.free_pages == 400, "counters");
  teardown(&p, &os);
}

typedef struct runs {
  size_t n;
  uintptr_t base[4096];
  size_t npages[4096];
} runs_t;

static void collect(void *ctx, uintptr_t base, size_t npages) {
  runs_t *r = ctx;
  CHECK(r->n < 4096, "too many runs");
  r->base[r->n] = base;
  r->npages[r->n++] = npages;
}

static void t_scavenge(void) {
  os_mem_t os;
  pages_t p;
  runs_t r = {0};
  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(2)) == 0, "grow");
  CHECK(_gc_pages_scavenge(&p, 100000, collect, &r) == 0 && r.n == 0, "fresh");
  alloc_ok(&p, 1024, A, 1024);
  _gc_pages_free(&p, A + PG(100), 100);
  _gc_pages_free(&p, A + PG(500), 30); /* crosses the chunk boundary */
  _gc_pages_free(&p, A + PG(1000), 24);
  CHECK(p.scav_pages == 0, "backed");
  CHECK(_gc_pages_scavenge(&p, 100000, collect, &r) == 154, "all");
  CHECK(r.n == 3, "3 runs, got %zu", r.n);
  CHECK(r.base[0] == A + PG(1000) && r.npages[0] == 24, "run 0");
  CHECK(r.base[1] == A + PG(500) && r.npages[1] == 30, "run 1");
  CHECK(r.base[2] == A + PG(100) && r.npages[2] == 100, "run 2");
  CHECK(p.scav_pages == 154, "counted");
  consistent(&p, "scavenged");
  r.n = 0;
  CHECK(_gc_pages_scavenge(&p, 100000, collect, &r) == 0 && r.n == 0, "again");
  alloc_ok(&p, 24, A + PG(100), 24);
  _gc_pages_free(&p, A + PG(100), 24);
  _gc_pages_free(&p, A + PG(300), 10);
  CHECK(_gc_pages_scavenge(&p, 5, collect, &r) == 5, "budget");
  CHECK(r.n == 1 && r.base[0] == A + PG(305) && r.npages[0] == 5, "top 5");
  r.n = 0;
  CHECK(_gc_pages_scavenge(&p, 100, NULL, NULL) == 29, "rest, no callback");
  alloc_ok(&p, 100, A + PG(100), 100);
  teardown(&p, &os);
}

static void t_page_cache(void) {
  os_mem_t os;
  pages_t p;
  pcache_t c = {0, 0, 0};
  size_t ns;
  setup(&p, &os);
  _gc_pages_fill_cache(&p, &c);
  CHECK(c.base == 0 && c.cache == 0, "nothing to cache");
  CHECK(_gc_pcache_alloc(&c, 1, &ns) == 0, "empty cache");
  CHECK(_gc_pages_grow(&p, A, CHUNKS(1)) == 0, "grow");
  alloc_ok(&p, 3, A, 3);
  _gc_pages_free(&p, A + PG(1), 1);
  _gc_pages_fill_cache(&p, &c);
  CHECK(c.base == A && c.cache == ~(uint64_t)5 && c.scav == ~(uint64_t)7,
        "window: base %#zx cache %#llx scav %#llx", (size_t)c.base,
        (unsigned long long)c.cache, (unsigned long long)c.scav);
  CHECK(p.free_pages == 512 - 64 && p.scav_pages == 512 - 64, "taken");
  consistent(&p, "filled");
  CHECK(_gc_pcache_alloc(&c, 1, &ns) == A + PG(1) && ns == 0, "backed page");
  CHECK(_gc_pcache_alloc(&c, 1, &ns) == A + PG(3) && ns == 1, "fresh page");
  CHECK(_gc_pcache_alloc(&c, 5, &ns) == A + PG(4) && ns == 5, "run of 5");
  CHECK(_gc_pcache_alloc(&c, 16, &ns) == 0, ">= 16 pages not served");
  CHECK(_gc_pcache_alloc(&c, 0, &ns) == 0, "0 pages");
  alloc_ok(&p, 1, A + PG(64), 1); /* allocator skips the window */
  /* fragment the cache and ask for a run that only fits higher */
  CHECK(_gc_pcache_alloc(&c, 1, &ns) == A + PG(9), "9");
  CHECK(_gc_pcache_alloc(&c, 15, &ns) == A + PG(10), "15");
  CHECK(_gc_pcache_alloc(&c, 15, &ns) == A + PG(25), "15");
  CHECK(_gc_pcache_alloc(&c, 15, &ns) == A + PG(40), "15");
  CHECK(_gc_pcache_alloc(&c, 10, &ns) == 0, "only 9 left");
  CHECK(_gc_pcache_alloc(&c, 9, &ns) == A + PG(55) && ns == 9, "last 9");
  CHECK(c.cache == 0 && _gc_pcache_alloc(&c, 1, &ns) == 0, "drained");
  _gc_pages_flush_cache(&p, &c);
  CHECK(c.base == 0, "flushed");
  CHECK(p.free_pages == 512 - 65, "all window pages handed out");
  consistent(&p, "flushed");
  /* round trip: fill, take 2 pages, flush: the rest comes back scavenged */
  _gc_pages_free(&p, A + PG(10), 30);
  _gc_pages_fill_cache(&p, &c);
  CHECK(c.base == A && c.cache == ((uint64_t)0x3fffffff << 10) && c.scav == 0,
        "refill");
  CHECK(_gc_pcache_alloc(&c, 2, &ns) == A + PG(10) && ns == 0, "2");
  _gc_pages_flush_cache(&p, &c);
  _gc_pages_fill_cache(&p, &c); /* lowest free page is 12 again */
  CHECK(c.base == A && c.cache == ((uint64_t)0xfffffff << 12), "refill 2");
  _gc_pages_flush_cache(&p, &c);
  _gc_pages_free(&p, A + PG(64), 1);
  size_t sc = p.scav_pages;
  _gc_pages_fill_cache(&p, &c); /* window 0 still has pages 12..39 */
  CHECK(c.base == A, "same window");
  _gc_pages_flush_cache(&p, &c);
  CHECK(p.scav_pages == sc, "scav bits travel with the cache");
  alloc_ok(&p, 28, A + PG(12), 0);
  alloc_ok(&p, 1, A + PG(64), 0);
  alloc_ok(&p, 1, A + PG(65), 1);
  teardown(&p, &os);
}

static void t_grow_args(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, 0, CHUNKS(1)) == EINVAL, "base 0");
  CHECK(_gc_pages_grow(&p, A + GCH_PAGE_SIZE, CHUNKS(1)) == EINVAL, "unaligned");
  CHECK(_gc_pages_grow(&p, A, 100) == EINVAL, "partial chunk");
  CHECK(_gc_pages_grow(&p, A, 0) == EINVAL, "nothing");
  CHECK(_gc_pages_grow(&p, (uintptr_t)1 << 48, CHUNKS(1)) == EINVAL, "beyond");
  CHECK(_gc_pages_grow(&p, ((uintptr_t)1 << 48) - GCH_CHUNK_BYTES, CHUNKS(2)) ==
            EINVAL, "wraps");
  CHECK(p.total_pages == 0, "unchanged");
  CHECK(_gc_pages_grow(&p, A, CHUNKS(2)) == 0, "grow");
  CHECK(_gc_pages_grow(&p, A + GCH_CHUNK_BYTES, CHUNKS(1)) == EINVAL, "twice");
  CHECK(_gc_pages_grow(&p, A - GCH_CHUNK_BYTES, CHUNKS(2)) == EINVAL, "overlap");
  /* the very last chunk of the address space */
  uintptr_t top = ((uintptr_t)1 << 48) - GCH_CHUNK_BYTES;
  CHECK(_gc_pages_grow(&p, top, CHUNKS(1)) == 0, "last chunk");
  alloc_ok(&p, 1024, A, 1024);
  alloc_ok(&p, 512, top, 512);
  teardown(&p, &os);
}

static void t_meta_bytes(void) {
  os_mem_t os;
  pages_t p;
  setup(&p, &os);
  /* an L2 block: 8192 chunks x 128 B, grown bits, 8192 x 4 B epochs */
  size_t m0 = p.meta_bytes, l2 = ((size_t)1 << 20) + GCH_OS_PAGE + 8 * GCH_OS_PAGE;
  CHECK(m0 == 8192 * sizeof(void *), "L1: %zu", m0);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(1)) == 0, "grow");
  CHECK(p.meta_bytes == m0 + l2 + 5 * GCH_OS_PAGE, "one chunk: %zu", p.meta_bytes);
  CHECK(_gc_pages_grow(&p, A + GCH_CHUNK_BYTES, CHUNKS(3)) == 0, "grow");
  CHECK(p.meta_bytes == m0 + l2 + 5 * GCH_OS_PAGE, "same pages");
  CHECK(_gc_pages_grow(&p, B, CHUNKS(1)) == 0, "grow far");
  CHECK(p.meta_bytes == m0 + 2 * l2 + 10 * GCH_OS_PAGE, "far: %zu", p.meta_bytes);
  CHECK((size_t)os.ready == p.meta_bytes - 10 * GCH_OS_PAGE, "ready");
  teardown(&p, &os);
}

/* ---- 2. model test ----------------------------------------------------- */

enum { M_FREE = 0, M_USED = 1, M_NONE = 2, M_CACHED = 3 };
#define CA 24 /* chunks region A may grow to (upward) */
#define CB 16 /* chunks region B may grow to (downward) */
#define ASEN CHUNKS(CA) /* index of the sentinel page between regions */
#define MPAGES (CHUNKS(CA + CB) + 1)

typedef struct model {
  pages_t p;
  os_mem_t os;
  pcache_t c;
  uintptr_t a_base, b_top; /* A = [a_base, +ga chunks), B = [-gb, b_top) */
  size_t ga, gb;
  unsigned char st[MPAGES], sc[MPAGES];
  size_t lo;            /* no free page below */
  size_t nfree, nscav;  /* pages M_FREE; of those, scavenged */
  size_t live_idx[MPAGES], live_n[MPAGES], nlive;
  uint64_t rng;
  runs_t runs;
} model_t;

/* what the model test exercised, over all epochs */
static struct {
  size_t allocs, fails, multi_chunk, grows, fills, cache_allocs, scav_pages;
} g_stat;

static uintptr_t m_addr(const model_t *m, size_t i) {
  if (i < ASEN) return m->a_base + PG(i);
  return m->b_top - PG(CHUNKS(CB)) + PG(i - ASEN - 1);
}

static void m_init(model_t *m, uint64_t seed, int variant) {
  memset(m, 0, sizeof *m);
  m->rng = seed;
  setup(&m->p, &m->os);
  /* variant 0 straddles an L2 block and root entry; others move around */
  m->a_base = A - 8 * GCH_CHUNK_BYTES + (variant ? GCH_CHUNK_BYTES * (rnd(&m->rng) % 64) : 0);
  m->b_top = B + GCH_CHUNK_BYTES * (4 + rnd(&m->rng) % 64);
  memset(m->st, M_NONE, sizeof m->st);
}

static void m_done(model_t *m) {
  _gc_pages_flush_cache(&m->p, &m->c);
  for (size_t i = 0; i < m->nlive; i++)
    _gc_pages_free(&m->p, m_addr(m, m->live_idx[i]), m->live_n[i]);
  CHECK(m->p.free_pages == m->p.total_pages, "all free at the end");
  if (m->p.total_pages)
    CHECK(_gc_pages_alloc(&m->p, CHUNKS(m->ga), NULL) == (m->ga ? m->a_base : 0),
          "region A whole again");
  teardown(&m->p, &m->os);
}

static void m_grow(model_t *m) {
  size_t k = 1 + rnd(&m->rng) % 4, lo;
  int b = rnd(&m->rng) & 1;
  if (b ? m->gb + k > CB : m->ga + k > CA) b = !b;
  if (b ? m->gb + k > CB : m->ga + k > CA) return;
  if (!b) {
    lo = CHUNKS(m->ga);
    CHECK(_gc_pages_grow(&m->p, m_addr(m, lo), CHUNKS(k)) == 0, "grow A");
    m->ga += k;
  } else {
    lo = ASEN + 1 + CHUNKS(CB - m->gb - k);
    CHECK(_gc_pages_grow(&m->p, m_addr(m, lo), CHUNKS(k)) == 0, "grow B");
    m->gb += k;
  }
  memset(m->st + lo, M_FREE, CHUNKS(k));
  memset(m->sc + lo, 1, CHUNKS(k));
  m->nfree += CHUNKS(k);
  m->nscav += CHUNKS(k);
  g_stat.grows++;
  if (lo < m->lo) m->lo = lo;
}

/* Naive first fit: the lowest index starting n free pages, or NONE. */
static size_t m_first_fit(model_t *m, size_t n) {
  size_t i = m->lo;
  for (int first = 1; i < MPAGES; first = 0) {
    const unsigned char *z = memchr(m->st + i, M_FREE, MPAGES - i);
    if (!z) return NONE;
    i = (size_t)(z - m->st);
    if (first) m->lo = i;
    size_t j = i;
    while (j < MPAGES && j - i < n && m->st[j] == M_FREE) j++;
    if (j - i == n) return i;
    i = j;
  }
  return NONE;
}

static size_t m_size(model_t *m) {
  uint64_t r = rnd(&m->rng) % 1000;
  if (r < 600) return 1 + rnd(&m->rng) % 4;
  if (r < 850) return 5 + rnd(&m->rng) % 28;
  if (r < 950) return 33 + rnd(&m->rng) % 224;
  if (r < 990) return 257 + rnd(&m->rng) % 768;
  return 1025 + rnd(&m->rng) % 2000;
}

static void m_take(model_t *m, size_t i, size_t n, size_t nscav, int cached) {
  size_t s = 0;
  for (size_t k = i; k < i + n; k++) {
    CHECK(m->st[k] == (cached ? M_CACHED : M_FREE), "model page %zu", k);
    s += m->sc[k];
    m->st[k] = M_USED;
    m->sc[k] = 0;
  }
  CHECK(nscav == s, "nscav %zu, model %zu (n %zu)", nscav, s, n);
  if (!cached) m->nfree -= n, m->nscav -= s;
  m->live_idx[m->nlive] = i;
  m->live_n[m->nlive++] = n;
}

static void m_alloc(model_t *m) {
  size_t n = m_size(m), ns;
  uintptr_t got = _gc_pages_alloc(&m->p, n, &ns);
  size_t want = m_first_fit(m, n);
  if (want == NONE) {
    CHECK(got == 0, "alloc(%zu) = %#zx, model has no run", n, (size_t)got);
    g_stat.fails++;
    if (rnd(&m->rng) & 1) m_grow(m);
    return;
  }
  CHECK(got == m_addr(m, want), "alloc(%zu) = %#zx, model %#zx", n,
        (size_t)got, (size_t)m_addr(m, want));
  m_take(m, want, n, ns, 0);
  g_stat.allocs++;
  g_stat.multi_chunk += (got + PG(n) - 1) / GCH_CHUNK_BYTES != got / GCH_CHUNK_BYTES;
}

static void m_free(model_t *m) {
  if (!m->nlive) return;
  size_t k = rnd(&m->rng) % m->nlive, i = m->live_idx[k], n = m->live_n[k];
  _gc_pages_free(&m->p, m_addr(m, i), n);
  memset(m->st + i, M_FREE, n);
  m->nfree += n;
  if (i < m->lo) m->lo = i;
  m->live_idx[k] = m->live_idx[--m->nlive];
  m->live_n[k] = m->live_n[m->nlive];
}

static size_t m_window(size_t i) {
  size_t region = i < ASEN ? 0 : ASEN + 1;
  return i - (i - region) % GCH_PCACHE_PAGES;
}

static void m_fill(model_t *m) {
  _gc_pages_fill_cache(&m->p, &m->c);
  size_t i = m_first_fit(m, 1);
  if (i == NONE) {
    CHECK(m->c.base == 0, "filled a cache from a full heap");
    return;
  }
  size_t w = m_window(i);
  g_stat.fills++;
  CHECK(m->c.base == m_addr(m, w), "cache at %#zx, model %#zx",
        (size_t)m->c.base, (size_t)m_addr(m, w));
  for (size_t k = 0; k < GCH_PCACHE_PAGES; k++) {
    int f = m->st[w + k] == M_FREE;
    CHECK((int)(m->c.cache >> k & 1) == f, "cache bit %zu", k);
    CHECK((m->c.scav >> k & 1) == (uint64_t)(f && m->sc[w + k]), "scav bit %zu", k);
    if (!f) continue;
    m->st[w + k] = M_CACHED;
    m->nfree--;
    m->nscav -= m->sc[w + k];
  }
}

static void m_cache_alloc(model_t *m) {
  size_t n = rnd(&m->rng) & 1 ? 1 : 1 + rnd(&m->rng) % 16, ns, w = NONE;
  uintptr_t got = _gc_pcache_alloc(&m->c, n, &ns);
  size_t base = NONE;
  for (size_t i = 0; i < MPAGES && base == NONE; i++)
    if (m->st[i] == M_CACHED) base = m_window(i);
  if (n < 16 && base != NONE)
    for (size_t k = 0; k + n <= GCH_PCACHE_PAGES && w == NONE; k++) {
      size_t j = 0;
      while (j < n && m->st[base + k + j] == M_CACHED) j++;
      if (j == n) w = base + k;
    }
  if (w == NONE) {
    CHECK(got == 0, "pcache_alloc(%zu) = %#zx, model none", n, (size_t)got);
    return;
  }
  CHECK(got == m_addr(m, w), "pcache_alloc(%zu) = %#zx, model %#zx", n,
        (size_t)got, (size_t)m_addr(m, w));
  m_take(m, w, n, ns, 1);
  g_stat.cache_allocs++;
}

static void m_flush(model_t *m) {
  _gc_pages_flush_cache(&m->p, &m->c);
  for (size_t i = 0; i < MPAGES; i++)
    if (m->st[i] == M_CACHED) {
      m->st[i] = M_FREE;
      m->nfree++;
      m->nscav += m->sc[i];
      if (i < m->lo) m->lo = i;
    }
}

static void m_cache_op(model_t *m) {
  uint64_t r = rnd(&m->rng) % 10;
  if (!m->c.base) m_fill(m);
  else if (r < 7) m_cache_alloc(m);
  else m_flush(m);
}

static void m_scavenge(model_t *m) {
  size_t max = 1 + rnd(&m->rng) % 3000, taken = 0, nruns = 0;
  m->runs.n = 0;
  size_t got = _gc_pages_scavenge(&m->p, max, collect, &m->runs);
  size_t hi = NONE; /* open model run (index one past its top) */
  for (size_t i = MPAGES; i-- > 0;) {
    int pick = taken < max && m->st[i] == M_FREE && !m->sc[i];
    if (pick) {
      m->sc[i] = 1;
      taken++;
      if (hi == NONE) hi = i + 1;
    }
    if ((!pick || i == 0) && hi != NONE) {
      size_t lo = pick ? i : i + 1;
      CHECK(nruns < m->runs.n && m->runs.base[nruns] == m_addr(m, lo) &&
                m->runs.npages[nruns] == hi - lo,
            "scavenge run %zu: model [%#zx, %zu pages)", nruns,
            (size_t)m_addr(m, lo), hi - lo);
      nruns++;
      hi = NONE;
    }
  }
  CHECK(got == taken && nruns == m->runs.n, "scavenged %zu (%zu runs), model %zu (%zu)",
        got, m->runs.n, taken, nruns);
  m->nscav += taken;
  g_stat.scav_pages += taken;
}

static void m_verify(model_t *m, int full) {
  consistent(&m->p, "model");
  CHECK(m->p.free_pages == m->nfree && m->p.scav_pages == m->nscav,
        "counters %zu/%zu, model %zu/%zu", m->p.free_pages, m->p.scav_pages,
        m->nfree, m->nscav);
  if (!full) return;
  for (size_t i = 0; i < MPAGES; i++)
    if (m->st[i] != M_NONE)
      CHECK(_gc_pages_in_use(&m->p, m_addr(m, i)) == (m->st[i] != M_FREE),
            "page %zu in use?", i);
}

static void m_step(model_t *m) {
  uint64_t r = rnd(&m->rng) % 1000;
  size_t grown = CHUNKS(m->ga + m->gb);
  int full = grown && (grown - m->nfree) * 4 > grown * 3;
  if (r < 40) m_cache_op(m);
  else if (r < 43) m_scavenge(m);
  else if (r < 45) m_grow(m);
  else if (r % 100 < (full ? 35u : 55u)) m_alloc(m);
  else m_free(m);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void t_model(size_t ops) {
  static model_t m;
  memset(&g_stat, 0, sizeof g_stat);
  size_t done = 0, epoch = 0;
  uint64_t s = g_seed;
  double t0 = now_s();
  while (done < ops) {
    size_t len = 50000 + rnd(&s) % 150000;
    if (len > ops - done) len = ops - done;
    m_init(&m, rnd(&s), (int)(epoch % 3));
    for (size_t i = 0; i < len; i++) {
      m_step(&m);
      if (GCH_DEBUG || (i & 4095) == 4095) m_verify(&m, (i & 65535) == 65535);
    }
    m_verify(&m, 1);
    m_done(&m);
    done += len;
    epoch++;
  }
  printf("model: %zu ops in %zu epochs, %.2f s\n", done, epoch, now_s() - t0);
  printf("model: %zu allocs (%zu multi-chunk), %zu failed, %zu grows, "
         "%zu cache fills, %zu cache allocs, %zu pages scavenged\n",
         g_stat.allocs, g_stat.multi_chunk, g_stat.fails, g_stat.grows,
         g_stat.fills, g_stat.cache_allocs, g_stat.scav_pages);
}

/* ---- 3. two instances --------------------------------------------------- */

static void t_two_instances(void) {
  static model_t m1, m2;
  m_init(&m1, g_seed * 3 + 1, 0);
  m_init(&m2, g_seed * 5 + 2, 0); /* the very same fake addresses */
  m2.a_base = m1.a_base;
  m2.b_top = m1.b_top;
  uint64_t s = g_seed;
  for (size_t i = 0; i < 200000; i++) {
    m_step(rnd(&s) & 1 ? &m1 : &m2);
    if ((i & 4095) == 0) {
      m_verify(&m1, 0);
      m_verify(&m2, 0);
    }
  }
  m_verify(&m1, 1);
  m_verify(&m2, 1);
  m_done(&m1);
  m_verify(&m2, 1);
  m_done(&m2);
}

/* ---- 4. OS failure injection ------------------------------------------ */

static void t_os_failures(void) {
  os_mem_t os;
  pages_t p;
  int ok_at = 0;
  for (long k = 1; k <= 10 && !ok_at; k++) {
    memset(&os, 0, sizeof os);
    _gc_os_fail_after(&os, k);
    int err = _gc_pages_init(&p, &os);
    _gc_os_fail_after(&os, 0);
    if (err) {
      CHECK(err == ENOMEM && os.reserved == 0 && os.ready == 0,
            "init failure %ld: err %d, %zu bytes left", k, err, (size_t)os.reserved);
      continue;
    }
    ok_at = (int)k;
    teardown(&p, &os);
  }
  CHECK(ok_at == 7, "init needs 6 OS calls, succeeded at %d", ok_at);

  setup(&p, &os);
  CHECK(_gc_pages_grow(&p, A, CHUNKS(2)) == 0, "grow");
  alloc_ok(&p, 700, A, 700);
  int failures = 0;
  for (long k = 1; k <= 6; k++) {
    /* two chunks on either side of an L2 block boundary: two new blocks */
    uintptr_t base = A + ((uintptr_t)(2 * k + 1) << 35) - GCH_CHUNK_BYTES;
    size_t f = p.free_pages, s = p.scav_pages, t = p.total_pages;
    _gc_os_fail_after(&os, k);
    int err = _gc_pages_grow(&p, base, CHUNKS(2));
    _gc_os_fail_after(&os, 0);
    if (err) {
      failures++;
      CHECK(err == ENOMEM, "grow failure %ld: err %d", k, err);
      CHECK(f == p.free_pages && s == p.scav_pages && t == p.total_pages,
            "grow failure %ld changed counters", k);
      CHECK(!_gc_pages_in_use(&p, base) && _gc_pages_in_use(&p, A), "map");
      consistent(&p, "after failed grow");
      alloc_ok(&p, 325, 0, 0); /* only A's 324 pages are free */
      alloc_ok(&p, 1, A + PG(700), NONE);
      _gc_pages_free(&p, A + PG(700), 1);
      CHECK(_gc_pages_grow(&p, base, CHUNKS(2)) == 0, "retry grow %ld", k);
    }
    consistent(&p, "after grow");
    alloc_ok(&p, 1024, base, 1024); /* kept, so the next base is first */
  }
  CHECK(failures == 2, "expected 2 failing grows, got %d", failures);
  teardown(&p, &os);
}

int main(int argc, char **argv) {
  const char *env = getenv("GCHEAP_SEED");
  if (argc > 1) g_seed = strtoull(argv[1], NULL, 0);
  else if (env) g_seed = strtoull(env, NULL, 0);
  else g_seed = (unsigned long long)time(NULL);
  const char *ops_env = getenv("GCHEAP_PA_OPS");
  setvbuf(stdout, NULL, _IOLBF, 0);
  size_t ops = ops_env ? (size_t)strtoull(ops_env, NULL, 0) : 1000000;
  printf("test_pagealloc: seed %llu\n", g_seed);
  unsigned long long seed0 = g_seed;
  t_single_page();
  t_exact_fit();
  t_lowest_address();
  t_straddle();
  t_many_chunks();
  t_failure_unchanged();
  t_scav_accounting();
  t_scavenge();
  t_page_cache();
  t_grow_args();
  t_meta_bytes();
  t_os_failures();
  t_two_instances();
  t_model(ops);
  printf("test_pagealloc: all passed (seed %llu)\n", seed0);
  return 0;
}
