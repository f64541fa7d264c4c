/*
 * pagealloc.c -- the page allocator (see pagealloc.h; Go's mpagealloc.go).
 *
 * Owns: the chunk map (alloc + scav bitmaps per 512-page chunk), the
 * summary radix tree, search_addr and the free/scav page counters.
 *
 * Layout:
 *  - chunks_l1[ci >> 13] points at an L2 block: 8192 chunk records followed
 *    by a "grown" bitmap (one bit per chunk).  Blocks come from _gc_os_alloc
 *    on demand and are kept until destroy.  A chunk whose grown bit is clear
 *    is not part of the heap: its bitmaps are zero and never read.
 *  - summary[l] is a flat array indexed by addr >> shift[l] (shifts 34, 31,
 *    28, 25, 22); summary[4] has one entry per chunk.  Each entry packs the
 *    free run at its start, its longest free run and the free run at its
 *    end.  An entry never written reads 0 = "no free page".
 *
 * Invariants (all checked by _gc_pages_check):
 *  I1 summary[4][ci] == summary of chunk ci's alloc bitmap if ci is grown,
 *     else 0; summary[l][k] == merge of its 8 children at level l + 1.
 *  I2 scav bits are set only on free pages (alloc bit clear).
 *  I3 free_pages == zero alloc bits over grown chunks; scav_pages == set
 *     scav bits; total_pages == 512 * grown chunks.  Pages held by a page
 *     cache count as in use and are not scavenged here.
 *  I4 every grown page below search_addr is in use.
 *
 * Search: alloc first tries the chunk holding search_addr (its leaf says
 * whether the run fits there); otherwise pages_find scans the root from
 * search_addr's entry and descends into the first entry whose max fits,
 * returning early when a run straddles entries (end of one + start of the
 * next ones).  Each search also raises search_addr to a tighter bound.
 * Every update changes the bitmaps first, then rewrites the leaf entries of
 * the chunks it touched (inner chunks of a long range are set directly to
 * "all used"/"all free") and walks up the tree while an entry changes.
 *
 * meta_bytes counts the L1 array, every L2 block and each 4 KiB summary
 * page the first time a grow writes it (summary levels are reserved sparse,
 * about 585 MiB of address space, and cost nothing until written).
 * _gc_pages_in_use reads pages held by a page cache as in use and any
 * address outside the grown chunks as not in use.
 * Contract violations that would corrupt the bitmaps (double free, a range
 * outside the heap) abort through pages_throw.  This file deliberately uses
 * its own throw instead of gch_throw so that it links with os_linux.c alone
 * (its unit test and benchmark run on fake heaps without the heap layer).
 */
#include "pagealloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GCH_DEBUG
#define GCH_DEBUG 0
#endif

#define PAGES_LEVELS 5
#define PAGES_LEVEL_BITS 3 /* 8 children per node */
#define PAGES_CHUNK_SHIFT (GCH_PAGE_SHIFT + 9)
#define PAGES_MAP_BITS 13 /* L1 and L2 index widths */
#define PAGES_L2_CHUNKS ((size_t)1 << PAGES_MAP_BITS)
#define PAGES_L1_ENTRIES \
  ((size_t)1 << (GCH_ADDR_BITS - PAGES_CHUNK_SHIFT - PAGES_MAP_BITS))
#define PAGES_ADDR_END ((uintptr_t)1 << GCH_ADDR_BITS)
#define PAGES_NONE ((size_t)-1)

#define PSUM_BITS 21
#define PSUM_MASK (((uint64_t)1 << PSUM_BITS) - 1)
#define PSUM_MAXV ((size_t)1 << PSUM_BITS) /* a fully free root entry */
#define PSUM_ALL_BIT ((uint64_t)1 << 63)

_Static_assert(GCH_CHUNK_PAGES == 512, "chunk bitmaps are 8 words");
_Static_assert(GCH_PCACHE_PAGES == 64, "a page cache window is one word");

static const unsigned pages_shift[PAGES_LEVELS] = {34, 31, 28, 25, 22};

struct pages_chunk {
  uint64_t alloc[8]; /* 1 = in use */
  uint64_t scav[8];  /* 1 = free and returned to the OS */
};

struct pages_l2 {
  struct pages_chunk chunk[PAGES_L2_CHUNKS]; /* first: L1 points here */
  uint64_t grown[PAGES_L2_CHUNKS / 64];      /* 1 = chunk belongs to heap */
  uint32_t used[PAGES_L2_CHUNKS]; /* p->epoch of the last allocation */
};

typedef uint64_t psum_t;

static _Noreturn void pages_throw(const char *msg) {
  fputs("gcheap: fatal: pagealloc: ", stderr);
  fputs(msg, stderr);
  fputc('\n', stderr);
  abort();
}

#if GCH_DEBUG
#define PAGES_ASSERT(c) \
  do {                  \
    if (!(c)) pages_throw("assertion failed: " #c); \
  } while (0)
#else
#define PAGES_ASSERT(c) ((void)0)
#endif

static unsigned pages_ctz(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
static unsigned pages_clz(uint64_t x) { return (unsigned)__builtin_clzll(x); }
static unsigned pages_pop(uint64_t x) {
  return (unsigned)__builtin_popcountll(x);
}

/* Bits [lo, lo + n) of a word, 0 < n, lo + n <= 64. */
static uint64_t pages_mask(unsigned lo, unsigned n) {
  return (n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1)) << lo;
}

/* ---- packed summaries ------------------------------------------------ */

static size_t psum_level_entries(int l) {
  return (size_t)1 << (GCH_ADDR_BITS - pages_shift[l]);
}
static size_t psum_level_pages(int l) { /* pages one entry covers */
  return (size_t)1 << (pages_shift[l] - GCH_PAGE_SHIFT);
}

static psum_t psum_pack(size_t start, size_t max, size_t end) {
  if (max == PSUM_MAXV) return PSUM_ALL_BIT;
  return (psum_t)start | (psum_t)max << PSUM_BITS |
         (psum_t)end << (2 * PSUM_BITS);
}
static size_t psum_start(psum_t s) {
  return (s & PSUM_ALL_BIT) ? PSUM_MAXV : (size_t)(s & PSUM_MASK);
}
static size_t psum_max(psum_t s) {
  return (s & PSUM_ALL_BIT) ? PSUM_MAXV
                            : (size_t)((s >> PSUM_BITS) & PSUM_MASK);
}
static size_t psum_end(psum_t s) {
  return (s & PSUM_ALL_BIT) ? PSUM_MAXV
                            : (size_t)((s >> (2 * PSUM_BITS)) & PSUM_MASK);
}
static psum_t psum_full(int l) {
  size_t n = psum_level_pages(l);
  return psum_pack(n, n, n);
}

/* Merge 8 children that each cover `cpages` pages into their parent.
 * Children are never root entries, so their fields are plain 21-bit
 * values (no "all" bit) and are decoded without branches. */
static psum_t psum_merge(const psum_t *c, size_t cpages) {
  size_t start = 0, max = 0, run = 0;
  int in_start = 1;
  for (int i = 0; i < 8; i++) {
    PAGES_ASSERT(!(c[i] & PSUM_ALL_BIT));
    size_t st = (size_t)(c[i] & PSUM_MASK);
    size_t mx = (size_t)((c[i] >> PSUM_BITS) & PSUM_MASK);
    size_t en = (size_t)(c[i] >> (2 * PSUM_BITS));
    if (in_start) start += st;
    in_start &= st == cpages;
    if (run + st > max) max = run + st;
    if (mx > max) max = mx;
    run = st == cpages ? run + cpages : en;
  }
  return psum_pack(start, max, run);
}

/* Longest run of set bits in x. */
static size_t psum_longest_ones(uint64_t x) {
  size_t best = 0;
  while (x) {
    x >>= pages_ctz(x);
    size_t len = ~x ? pages_ctz(~x) : 64;
    if (len > best) best = len;
    x = len >= 64 ? 0 : x >> len;
  }
  return best;
}

/* Summary of one chunk's allocation bitmap. */
static psum_t psum_chunk(const uint64_t alloc[8]) {
  size_t start = 0, max = 0, run = 0;
  int in_start = 1;
  for (int w = 0; w < 8; w++) {
    uint64_t a = alloc[w];
    if (a == 0) {
      run += 64;
      continue;
    }
    unsigned lo = pages_ctz(a), hi = pages_clz(a);
    run += lo;
    if (in_start) start = run, in_start = 0;
    if (run > max) max = run;
    /* free bits strictly between the lowest and highest used page (the
     * span between them bounds the longest run there) */
    if (64 - lo - hi > max + 1) {
      uint64_t f = ~a & (~(uint64_t)0 << lo) & (~(uint64_t)0 >> hi);
      size_t m = psum_longest_ones(f);
      if (m > max) max = m;
    }
    run = hi;
  }
  if (in_start) return psum_full(PAGES_LEVELS - 1);
  if (run > max) max = run;
  return psum_pack(start, max, run);
}

/* ---- chunk map --------------------------------------------------------- */

static struct pages_l2 *pages_l2_of(const pages_t *p, size_t ci) {
  return (struct pages_l2 *)p->chunks_l1[ci >> PAGES_MAP_BITS];
}

static struct pages_chunk *pages_chunk_of(const pages_t *p, size_t ci) {
  return &pages_l2_of(p, ci)->chunk[ci & (PAGES_L2_CHUNKS - 1)];
}

/* Remember that chunk ci was allocated from in this epoch (decay). */
static void pages_touch(pages_t *p, size_t ci) {
  pages_l2_of(p, ci)->used[ci & (PAGES_L2_CHUNKS - 1)] = p->epoch;
}

static uint32_t pages_used_epoch(const pages_t *p, size_t ci) {
  return pages_l2_of(p, ci)->used[ci & (PAGES_L2_CHUNKS - 1)];
}

static int pages_is_grown(const pages_t *p, size_t ci) {
  const struct pages_l2 *b = pages_l2_of(p, ci);
  size_t k = ci & (PAGES_L2_CHUNKS - 1);
  return b && (b->grown[k / 64] >> (k % 64) & 1);
}

/* Next grown chunk in [ci, hi], or PAGES_NONE. */
static size_t pages_next_grown(const pages_t *p, size_t ci, size_t hi) {
  while (ci <= hi) {
    const struct pages_l2 *b = pages_l2_of(p, ci);
    if (!b) {
      ci = ((ci >> PAGES_MAP_BITS) + 1) << PAGES_MAP_BITS;
      continue;
    }
    size_t k = ci & (PAGES_L2_CHUNKS - 1);
    uint64_t w = b->grown[k / 64] >> (k % 64);
    if (w) {
      size_t at = ci + pages_ctz(w);
      return at <= hi ? at : PAGES_NONE;
    }
    ci += 64 - k % 64;
  }
  return PAGES_NONE;
}

/* Highest grown chunk in [lo, ci], or PAGES_NONE. */
static size_t pages_prev_grown(const pages_t *p, size_t ci, size_t lo) {
  for (;;) {
    if (ci < lo) return PAGES_NONE;
    const struct pages_l2 *b = pages_l2_of(p, ci);
    size_t k = ci & (PAGES_L2_CHUNKS - 1);
    if (!b) {
      if (ci < PAGES_L2_CHUNKS) return PAGES_NONE;
      ci = (ci >> PAGES_MAP_BITS << PAGES_MAP_BITS) - 1;
      continue;
    }
    uint64_t w = b->grown[k / 64] << (63 - k % 64);
    if (w) {
      size_t at = ci - pages_clz(w);
      return at >= lo ? at : PAGES_NONE;
    }
    if (ci < 64) return PAGES_NONE;
    ci -= k % 64 + 1;
  }
}

static int pages_any_grown(const pages_t *p, size_t lo, size_t hi) {
  return pages_next_grown(p, lo, hi) != PAGES_NONE;
}

/* Set (alloc) or clear (free) alloc bits [lo, lo + n) of a chunk.  Alloc
 * clears the scav bits of the range and returns how many were set. */
static size_t pages_chunk_mark(struct pages_chunk *c, size_t lo, size_t n,
                               int alloc) {
  size_t scav = 0;
  while (n) {
    size_t w = lo / 64, b = lo % 64, k = 64 - b < n ? 64 - b : n;
    uint64_t m = pages_mask((unsigned)b, (unsigned)k);
    if (alloc) {
      if (c->alloc[w] & m) pages_throw("allocating pages in use");
      uint64_t sc = c->scav[w] & m;
      if (sc) scav += pages_pop(sc), c->scav[w] &= ~m;
      c->alloc[w] |= m;
    } else {
      if ((c->alloc[w] & m) != m) pages_throw("freeing free pages");
      c->alloc[w] &= ~m;
    }
    lo += k;
    n -= k;
  }
  return scav;
}

/* Bit i of the result is set iff bits [i, i + n) of free are all set. */
static uint64_t pages_run_starts(uint64_t free, size_t n) {
  size_t have = 1;
  while (have < n && free) {
    size_t step = have < n - have ? have : n - have;
    free &= free >> step;
    have += step;
  }
  return free;
}

/* First free page at or after `from` in a chunk, or PAGES_NONE. */
static size_t pages_chunk_first_free(const struct pages_chunk *c,
                                     size_t from) {
  for (size_t w = from / 64; w < 8; w++) {
    uint64_t f = ~c->alloc[w];
    if (w == from / 64) f &= ~(uint64_t)0 << (from % 64);
    if (f) return w * 64 + pages_ctz(f);
  }
  return PAGES_NONE;
}

/* Lowest run of n (<= 512) free pages at or after `from`, or PAGES_NONE. */
static size_t pages_chunk_find(const struct pages_chunk *c, size_t n,
                               size_t from) {
  if (n == 1) return pages_chunk_first_free(c, from);
  size_t run = 0, run_at = 0;
  for (size_t w = from / 64; w < 8; w++) {
    uint64_t f = ~c->alloc[w];
    if (w == from / 64) f &= ~(uint64_t)0 << (from % 64);
    if (run == 0) run_at = w * 64;
    if (f == ~(uint64_t)0) {
      run += 64;
      if (run >= n) return run_at;
      continue;
    }
    if (run + pages_ctz(~f) >= n) return run_at;
    if (n < 64) {
      uint64_t s = pages_run_starts(f, n);
      if (s) return w * 64 + pages_ctz(s);
    }
    run = pages_clz(~f);
    run_at = w * 64 + 64 - run;
  }
  return PAGES_NONE;
}

/* ---- summary updates --------------------------------------------------- */

/* Chunks [c0, c1] changed: rewrite their leaves (the inner ones of a multi
 * chunk range get `mid` directly) and walk up while entries change. */
static void psum_update(pages_t *p, size_t c0, size_t c1, psum_t mid) {
  psum_t *leaf = p->summary[PAGES_LEVELS - 1];
  for (size_t ci = c0; ci <= c1; ci++)
    leaf[ci] = (ci == c0 || ci == c1) ? psum_chunk(pages_chunk_of(p, ci)->alloc)
                                      : mid;
  for (int l = PAGES_LEVELS - 2; l >= 0; l--) {
    c0 >>= PAGES_LEVEL_BITS;
    c1 >>= PAGES_LEVEL_BITS;
    int changed = 0;
    size_t cpages = psum_level_pages(l + 1);
    for (size_t k = c0; k <= c1; k++) {
      psum_t v = psum_merge(&p->summary[l + 1][k << PAGES_LEVEL_BITS], cpages);
      if (v != p->summary[l][k]) p->summary[l][k] = v, changed = 1;
    }
    if (!changed) break;
  }
}

/* Mark [addr, addr + n pages) in use (alloc) or free; update counters and
 * summaries.  Returns the number of scavenged pages allocated. */
static size_t pages_mark_range(pages_t *p, uintptr_t addr, size_t n,
                               int alloc) {
  size_t c0 = addr >> PAGES_CHUNK_SHIFT;
  size_t last = (addr >> GCH_PAGE_SHIFT) + n - 1;
  size_t c1 = last / GCH_CHUNK_PAGES, scav = 0;
  for (size_t ci = c0; ci <= c1; ci++) {
    if (!pages_is_grown(p, ci)) pages_throw("page range outside the heap");
    size_t lo = ci == c0 ? (addr >> GCH_PAGE_SHIFT) % GCH_CHUNK_PAGES : 0;
    size_t hi = ci == c1 ? last % GCH_CHUNK_PAGES + 1 : GCH_CHUNK_PAGES;
    scav += pages_chunk_mark(pages_chunk_of(p, ci), lo, hi - lo, alloc);
    if (alloc) pages_touch(p, ci);
  }
  if (alloc) {
    p->free_pages -= n;
    p->scav_pages -= scav;
  } else {
    p->free_pages += n;
  }
  psum_update(p, c0, c1, alloc ? 0 : psum_full(PAGES_LEVELS - 1));
  return scav;
}

/* ---- search ------------------------------------------------------------ */

/* Scan entries [j, jend) of level l for n pages.  Returns 1 and sets
 * *found when a run begins at the start of an entry or in earlier ones
 * (end of one + start of the next), 2 and sets *child when an entry holds
 * a run inside, 0 when neither.  *first gets the first nonzero entry. */
static int pages_scan_level(const pages_t *p, int l, size_t j, size_t jend,
                            size_t n, uintptr_t *found, size_t *child,
                            size_t *first) {
  unsigned sh = pages_shift[l];
  size_t epages = psum_level_pages(l), size = 0;
  uintptr_t base = 0;
  *first = PAGES_NONE;
  for (; j < jend; j++) {
    psum_t s = p->summary[l][j];
    if (s == 0) {
      size = 0;
      continue;
    }
    uintptr_t ebase = (uintptr_t)j << sh;
    if (*first == PAGES_NONE) *first = j;
    size_t st = psum_start(s);
    if (size == 0) base = ebase;
    if (size + st >= n) {
      *found = base;
      return 1;
    }
    if (psum_max(s) >= n) {
      *child = j;
      return 2;
    }
    if (st == epages) {
      size += epages;
    } else {
      size = psum_end(s);
      base = ebase + ((epages - size) << GCH_PAGE_SHIFT);
    }
  }
  return 0;
}

/* Address-ordered first fit through the tree.  Returns the run's address
 * or 0; *ff receives a lower bound on the first free page (>= search). */
static uintptr_t pages_find(const pages_t *p, size_t n, uintptr_t *ff) {
  uintptr_t sa = p->search_addr;
  size_t i = 0;
  int on_path = 1; /* following the entry that holds the first free page */
  *ff = sa;
  for (int l = 0; l < PAGES_LEVELS; l++) {
    unsigned sh = pages_shift[l];
    size_t j = l ? i << PAGES_LEVEL_BITS : 0;
    size_t jend = l ? j + 8 : ((p->end - 1) >> sh) + 1;
    if ((sa >> sh) >= j && (sa >> sh) < jend) j = sa >> sh;
    uintptr_t found;
    size_t child = 0, first = PAGES_NONE;
    int r = pages_scan_level(p, l, j, jend, n, &found, &child, &first);
    if (on_path && first != PAGES_NONE && ((uintptr_t)first << sh) > *ff)
      *ff = (uintptr_t)first << sh;
    if (r == 1) return found;
    if (r == 0) {
      if (l == 0) return 0;
      pages_throw("summary promised a run that its children lack");
    }
    on_path = on_path && child == first;
    i = child;
  }
  const struct pages_chunk *c = pages_chunk_of(p, i);
  size_t from = (sa >> PAGES_CHUNK_SHIFT) == i
                    ? (sa >> GCH_PAGE_SHIFT) % GCH_CHUNK_PAGES : 0;
  size_t at = pages_chunk_find(c, n, from);
  if (at == PAGES_NONE) pages_throw("leaf summary disagrees with bitmap");
  uintptr_t cbase = (uintptr_t)i << PAGES_CHUNK_SHIFT;
  if (on_path) {
    uintptr_t f = cbase + (pages_chunk_first_free(c, from) << GCH_PAGE_SHIFT);
    if (f > *ff) *ff = f;
  }
  return cbase + (at << GCH_PAGE_SHIFT);
}

/* Locate (without allocating) the first fit for n pages.  Raises
 * search_addr to the tighter bound found on the way. */
static uintptr_t pages_locate(pages_t *p, size_t n) {
  uintptr_t sa = p->search_addr, addr, ff;
  if (n == 0 || sa >= p->end) return 0;
  size_t ci = sa >> PAGES_CHUNK_SHIFT;
  size_t pi = (sa >> GCH_PAGE_SHIFT) % GCH_CHUNK_PAGES;
  if (GCH_CHUNK_PAGES - pi >= n &&
      psum_max(p->summary[PAGES_LEVELS - 1][ci]) >= n) {
    const struct pages_chunk *c = pages_chunk_of(p, ci);
    size_t at = pages_chunk_find(c, n, pi);
    if (at == PAGES_NONE) pages_throw("leaf summary disagrees with bitmap");
    uintptr_t cbase = (uintptr_t)ci << PAGES_CHUNK_SHIFT;
    addr = cbase + (at << GCH_PAGE_SHIFT);
    ff = cbase + (pages_chunk_first_free(c, pi) << GCH_PAGE_SHIFT);
  } else {
    addr = pages_find(p, n, &ff);
    if (!addr && n == 1) ff = p->end; /* not one page left */
  }
  if (ff > p->search_addr) p->search_addr = ff;
  return addr;
}

/* ---- public entry points --------------------------------------------- */

int _gc_pages_init(pages_t *p, os_mem_t *os) {
  memset(p, 0, sizeof *p);
  p->os = os;
  void *mem;
  size_t l1 = PAGES_L1_ENTRIES * sizeof(struct pages_chunk *);
  int err = _gc_os_alloc(os, l1, &mem);
  if (err) return err;
  p->chunks_l1 = mem;
  p->meta_bytes = l1;
  for (int l = 0; l < PAGES_LEVELS; l++) {
    err = _gc_os_alloc_sparse(os, psum_level_entries(l) * sizeof(psum_t), &mem);
    if (err) {
      _gc_pages_destroy(p);
      return err;
    }
    p->summary[l] = mem;
  }
  p->search_addr = PAGES_ADDR_END;
  return 0;
}

void _gc_pages_destroy(pages_t *p) {
  if (p->chunks_l1) {
    for (size_t i = 0; i < PAGES_L1_ENTRIES; i++)
      if (p->chunks_l1[i])
        _gc_os_free(p->os, p->chunks_l1[i], sizeof(struct pages_l2));
    _gc_os_free(p->os, p->chunks_l1,
                PAGES_L1_ENTRIES * sizeof(struct pages_chunk *));
  }
  for (int l = 0; l < PAGES_LEVELS; l++)
    if (p->summary[l])
      _gc_os_release(p->os, p->summary[l],
                     psum_level_entries(l) * sizeof(psum_t));
  memset(p, 0, sizeof *p);
}

/* Count the summary OS pages that growing chunks [c0, c1] will write for
 * the first time: those whose span holds no grown chunk yet. */
static size_t pages_new_summary_bytes(const pages_t *p, size_t c0, size_t c1) {
  _Static_assert(GCH_OS_PAGE / sizeof(psum_t) == 512, "9 below");
  size_t bytes = 0;
  for (int l = 0; l < PAGES_LEVELS; l++) {
    /* log2 of the chunks covered by one OS page of this level */
    unsigned k = 9 + pages_shift[l] - PAGES_CHUNK_SHIFT;
    for (size_t pg = c0 >> k; pg <= c1 >> k; pg++)
      if (!pages_any_grown(p, pg << k, ((pg + 1) << k) - 1))
        bytes += GCH_OS_PAGE;
  }
  return bytes;
}

int _gc_pages_grow(pages_t *p, uintptr_t base, size_t npages) {
  if (!base || base % GCH_CHUNK_BYTES || !npages ||
      npages % GCH_CHUNK_PAGES || base >= PAGES_ADDR_END ||
      npages > (PAGES_ADDR_END - base) >> GCH_PAGE_SHIFT)
    return EINVAL;
  size_t c0 = base >> PAGES_CHUNK_SHIFT;
  size_t c1 = c0 + npages / GCH_CHUNK_PAGES - 1;
  if (pages_any_grown(p, c0, c1)) return EINVAL;
  /* All metadata first, so that a failure leaves the allocator as it was
   * (blocks already obtained stay in the map, empty). */
  for (size_t b = c0 >> PAGES_MAP_BITS; b <= c1 >> PAGES_MAP_BITS; b++) {
    if (p->chunks_l1[b]) continue;
    void *mem;
    int err = _gc_os_alloc(p->os, sizeof(struct pages_l2), &mem);
    if (err) return err;
    p->chunks_l1[b] = mem;
    p->meta_bytes += (sizeof(struct pages_l2) + GCH_OS_PAGE - 1) &
                     ~(GCH_OS_PAGE - 1);
  }
  p->meta_bytes += pages_new_summary_bytes(p, c0, c1);
  for (size_t ci = c0; ci <= c1; ci++) {
    struct pages_l2 *b = pages_l2_of(p, ci);
    size_t k = ci & (PAGES_L2_CHUNKS - 1);
    b->grown[k / 64] |= (uint64_t)1 << (k % 64);
    memset(b->chunk[k].alloc, 0, sizeof b->chunk[k].alloc);
    memset(b->chunk[k].scav, 0xff, sizeof b->chunk[k].scav);
    b->used[k] = p->epoch;
  }
  psum_update(p, c0, c1, psum_full(PAGES_LEVELS - 1));
  uintptr_t end = base + (npages << GCH_PAGE_SHIFT);
  if (p->total_pages == 0 || base < p->start) p->start = base;
  if (end > p->end) p->end = end;
  if (base < p->search_addr) p->search_addr = base;
  p->free_pages += npages;
  p->scav_pages += npages;
  p->total_pages += npages;
  return 0;
}

uintptr_t _gc_pages_alloc(pages_t *p, size_t npages, size_t *nscav) {
  if (nscav) *nscav = 0;
  uintptr_t addr = pages_locate(p, npages);
  if (!addr) return 0;
  size_t scav = pages_mark_range(p, addr, npages, 1);
  if (nscav) *nscav = scav;
  /* search_addr pointed at the first free page and we took it: everything
   * up to the end of the run is in use now. */
  if (addr == p->search_addr) p->search_addr = addr + (npages << GCH_PAGE_SHIFT);
  return addr;
}

void _gc_pages_free(pages_t *p, uintptr_t base, size_t npages) {
  if (!npages) return;
  if (base % GCH_PAGE_SIZE || base < p->start || base >= p->end ||
      npages > (p->end - base) >> GCH_PAGE_SHIFT)
    pages_throw("freeing pages outside the heap");
  pages_mark_range(p, base, npages, 0);
  if (base < p->search_addr) p->search_addr = base;
}

int _gc_pages_in_use(const pages_t *p, uintptr_t addr) {
  if (addr >= PAGES_ADDR_END) return 0;
  size_t ci = addr >> PAGES_CHUNK_SHIFT;
  if (!pages_is_grown(p, ci)) return 0;
  size_t pi = (addr >> GCH_PAGE_SHIFT) % GCH_CHUNK_PAGES;
  return (int)(pages_chunk_of(p, ci)->alloc[pi / 64] >> (pi % 64) & 1);
}

/* ---- scavenging ---------------------------------------------------------- */

typedef struct pages_scav_run {
  uintptr_t lo, hi; /* pending run to report, lo == hi: none */
  void (*fn)(void *ctx, uintptr_t base, size_t npages);
  void *ctx;
} pages_scav_run_t;

/* Add [lo, hi) below the pending run, reporting the pending one when the
 * two do not touch. */
static void pages_scav_emit(pages_scav_run_t *r, uintptr_t lo, uintptr_t hi) {
  if (r->lo != r->hi && hi == r->lo) {
    r->lo = lo;
    return;
  }
  if (r->lo != r->hi && r->fn)
    r->fn(r->ctx, r->lo, (r->hi - r->lo) >> GCH_PAGE_SHIFT);
  r->lo = lo;
  r->hi = hi;
}

/* Pages of word w that a request may take: free, not yet scavenged, and
 * with whole_blocks only those in a 2 MiB block (4 words) with no page in
 * use, so that releasing them never splits a huge page. */
static uint64_t pages_scav_cand(const struct pages_chunk *c, int w,
                                const pages_scav_req_t *req) {
  uint64_t cand = ~c->alloc[w] & ~c->scav[w];
  if (req->whole_blocks) {
    int b = w & ~3;
    if (c->alloc[b] | c->alloc[b + 1] | c->alloc[b + 2] | c->alloc[b + 3])
      return 0;
  }
  return cand;
}

/* Scavenge free unscavenged pages of one chunk from the top; returns the
 * number taken (at most `budget`). */
static size_t pages_scav_chunk(pages_t *p, size_t ci, size_t budget,
                               const pages_scav_req_t *req,
                               pages_scav_run_t *r) {
  struct pages_chunk *c = pages_chunk_of(p, ci);
  uintptr_t cbase = (uintptr_t)ci << PAGES_CHUNK_SHIFT;
  size_t done = 0;
  for (int w = 7; w >= 0 && done < budget; w--) {
    uint64_t cand = pages_scav_cand(c, w, req);
    while (cand && done < budget) {
      unsigned top = 63 - pages_clz(cand);
      uint64_t up = cand << (63 - top); /* run now ends at bit 63 */
      size_t len = ~up ? pages_clz(~up) : 64;
      if (len > budget - done) len = budget - done;
      unsigned lo = top + 1 - (unsigned)len;
      uint64_t m = pages_mask(lo, (unsigned)len);
      c->scav[w] |= m;
      cand &= ~m;
      done += len;
      uintptr_t a = cbase + (((size_t)w * 64 + lo) << GCH_PAGE_SHIFT);
      pages_scav_emit(r, a, a + (len << GCH_PAGE_SHIFT));
    }
  }
  return done;
}

size_t _gc_pages_scavenge_ex(pages_t *p, const pages_scav_req_t *req) {
  size_t max_pages = req->max_pages;
  if (!p->total_pages || !max_pages || p->free_pages == p->scav_pages)
    return 0;
  pages_scav_run_t r = {0, 0, req->fn, req->ctx};
  size_t done = 0, lo = p->start >> PAGES_CHUNK_SHIFT;
  size_t ci = (p->end - 1) >> PAGES_CHUNK_SHIFT;
  while (done < max_pages &&
         (ci = pages_prev_grown(p, ci, lo)) != PAGES_NONE) {
    bool idle = !req->idle_epochs ||
                p->epoch - pages_used_epoch(p, ci) >= req->idle_epochs;
    if (idle && p->summary[PAGES_LEVELS - 1][ci] != 0)
      done += pages_scav_chunk(p, ci, max_pages - done, req, &r);
    if (ci-- == lo) break;
  }
  pages_scav_emit(&r, 0, 0); /* report the last run */
  p->scav_pages += done;
  return done;
}

size_t _gc_pages_scavenge(pages_t *p, size_t max_pages,
                          void (*fn)(void *ctx, uintptr_t base, size_t npages),
                          void *ctx) {
  pages_scav_req_t req = {.max_pages = max_pages, .fn = fn, .ctx = ctx};
  return _gc_pages_scavenge_ex(p, &req);
}

/* ---- page cache -------------------------------------------------------- */

void _gc_pages_fill_cache(pages_t *p, pcache_t *c) {
  if (c->base) _gc_pages_flush_cache(p, c);
  uintptr_t addr = pages_locate(p, 1);
  if (!addr) return;
  uintptr_t win = GCH_PCACHE_PAGES * GCH_PAGE_SIZE;
  uintptr_t base = addr & ~(win - 1);
  size_t ci = base >> PAGES_CHUNK_SHIFT;
  size_t w = ((base >> GCH_PAGE_SHIFT) % GCH_CHUNK_PAGES) / 64;
  struct pages_chunk *ch = pages_chunk_of(p, ci);
  uint64_t free = ~ch->alloc[w];
  PAGES_ASSERT((ch->scav[w] & ~free) == 0);
  pages_touch(p, ci);
  c->base = base;
  c->cache = free;
  c->scav = ch->scav[w];
  ch->alloc[w] = ~(uint64_t)0;
  ch->scav[w] = 0;
  p->free_pages -= pages_pop(free);
  p->scav_pages -= pages_pop(c->scav);
  psum_update(p, ci, ci, 0);
  /* addr was the first free page; the whole window is in use now. */
  if (base + win > p->search_addr) p->search_addr = base + win;
}

uintptr_t _gc_pcache_alloc(pcache_t *c, size_t npages, size_t *nscav) {
  if (nscav) *nscav = 0;
  if (npages == 0 || npages >= GCH_PCACHE_PAGES / 4 || !c->cache) return 0;
  unsigned i;
  uint64_t m;
  if (npages == 1) {
    i = pages_ctz(c->cache);
    m = (uint64_t)1 << i;
  } else {
    uint64_t s = pages_run_starts(c->cache, npages);
    if (!s) return 0;
    i = pages_ctz(s);
    m = pages_mask(i, (unsigned)npages);
  }
  if (nscav) *nscav = pages_pop(c->scav & m);
  c->cache &= ~m;
  c->scav &= ~m;
  return c->base + ((uintptr_t)i << GCH_PAGE_SHIFT);
}

void _gc_pages_flush_cache(pages_t *p, pcache_t *c) {
  if (!c->base) return;
  if (c->cache) {
    size_t ci = c->base >> PAGES_CHUNK_SHIFT;
    size_t w = ((c->base >> GCH_PAGE_SHIFT) % GCH_CHUNK_PAGES) / 64;
    if (!pages_is_grown(p, ci)) pages_throw("flushing a foreign page cache");
    struct pages_chunk *ch = pages_chunk_of(p, ci);
    if ((ch->alloc[w] & c->cache) != c->cache || (c->scav & ~c->cache))
      pages_throw("page cache disagrees with the bitmap");
    ch->alloc[w] &= ~c->cache;
    ch->scav[w] |= c->scav;
    p->free_pages += pages_pop(c->cache);
    p->scav_pages += pages_pop(c->scav);
    psum_update(p, ci, ci, 0);
    uintptr_t first = c->base + ((uintptr_t)pages_ctz(c->cache) << GCH_PAGE_SHIFT);
    if (first < p->search_addr) p->search_addr = first;
  }
  c->base = 0;
  c->cache = 0;
  c->scav = 0;
}

/* ---- consistency check ------------------------------------------------- */

#define PAGES_FAIL(...)                      \
  do {                                       \
    if (msg && msglen) snprintf(msg, msglen, __VA_ARGS__); \
    return -1;                               \
  } while (0)

/* Level-l entry k (an ancestor of a grown chunk): equal to the merge of its
 * children, and every child holding no grown chunk reads 0. */
static int pages_check_node(const pages_t *p, int l, size_t k, char *msg,
                            size_t msglen) {
  const psum_t *kids = &p->summary[l + 1][k << PAGES_LEVEL_BITS];
  psum_t want = psum_merge(kids, psum_level_pages(l + 1));
  if (p->summary[l][k] != want)
    PAGES_FAIL("level %d entry %#zx: have %#llx, children give %#llx", l, k,
               (unsigned long long)p->summary[l][k], (unsigned long long)want);
  unsigned span = pages_shift[l + 1] - PAGES_CHUNK_SHIFT; /* log2 chunks */
  for (size_t i = 0; i < 8; i++) {
    size_t kid = (k << PAGES_LEVEL_BITS) + i;
    if (kids[i] && !pages_any_grown(p, kid << span, ((kid + 1) << span) - 1))
      PAGES_FAIL("level %d entry %#zx: nonzero over ungrown space", l + 1, kid);
  }
  return 0;
}

/* Chunk ci: bitmaps sane, leaf right, I4 below search_addr. */
static int pages_check_chunk(const pages_t *p, size_t ci, size_t *nfree,
                             size_t *nscav, char *msg, size_t msglen) {
  const struct pages_chunk *c = pages_chunk_of(p, ci);
  uintptr_t cbase = (uintptr_t)ci << PAGES_CHUNK_SHIFT;
  for (int w = 0; w < 8; w++) {
    if (c->alloc[w] & c->scav[w])
      PAGES_FAIL("chunk %#zx word %d: scavenged pages in use", ci, w);
    *nfree += 64 - pages_pop(c->alloc[w]);
    *nscav += pages_pop(c->scav[w]);
  }
  psum_t want = psum_chunk(c->alloc);
  if (p->summary[PAGES_LEVELS - 1][ci] != want)
    PAGES_FAIL("chunk %#zx: leaf %#llx, bitmap gives %#llx", ci,
               (unsigned long long)p->summary[PAGES_LEVELS - 1][ci],
               (unsigned long long)want);
  if (cbase < p->search_addr) {
    size_t below = (p->search_addr - cbase) >> GCH_PAGE_SHIFT;
    size_t f = pages_chunk_first_free(c, 0);
    if (f != PAGES_NONE && f < below)
      PAGES_FAIL("free page %#zx below search_addr %#zx",
                 (size_t)(cbase + (f << GCH_PAGE_SHIFT)),
                 (size_t)p->search_addr);
  }
  return 0;
}

int _gc_pages_check(const pages_t *p, char *msg, size_t msglen) {
  size_t nfree = 0, nscav = 0, nchunks = 0;
  size_t done[PAGES_LEVELS - 1] = {PAGES_NONE, PAGES_NONE, PAGES_NONE,
                                   PAGES_NONE};
  if (p->total_pages) {
    size_t lo = p->start >> PAGES_CHUNK_SHIFT;
    size_t hi = (p->end - 1) >> PAGES_CHUNK_SHIFT;
    for (size_t ci = lo; (ci = pages_next_grown(p, ci, hi)) != PAGES_NONE;
         ci++) {
      nchunks++;
      if (pages_check_chunk(p, ci, &nfree, &nscav, msg, msglen)) return -1;
      /* ancestors, each once (chunks come in address order) */
      for (int l = PAGES_LEVELS - 2; l >= 0; l--) {
        size_t k = ci >> (pages_shift[l] - PAGES_CHUNK_SHIFT);
        if (done[l] == k) break;
        done[l] = k;
        if (pages_check_node(p, l, k, msg, msglen)) return -1;
      }
    }
    for (size_t k = p->start >> pages_shift[0];
         k <= (p->end - 1) >> pages_shift[0]; k++) {
      unsigned span = pages_shift[0] - PAGES_CHUNK_SHIFT;
      if (p->summary[0][k] &&
          !pages_any_grown(p, k << span, ((k + 1) << span) - 1))
        PAGES_FAIL("root entry %#zx: nonzero over ungrown space", k);
    }
  }
  if (nchunks * GCH_CHUNK_PAGES != p->total_pages)
    PAGES_FAIL("total_pages %zu, grown chunks hold %zu", p->total_pages,
               nchunks * GCH_CHUNK_PAGES);
  if (nfree != p->free_pages)
    PAGES_FAIL("free_pages %zu, bitmaps say %zu", p->free_pages, nfree);
  if (nscav != p->scav_pages)
    PAGES_FAIL("scav_pages %zu, bitmaps say %zu", p->scav_pages, nscav);
  return 0;
}
