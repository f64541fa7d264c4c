/*
 * span.c -- span records: getting pages for a span, laying out its slots,
 * its allocation bitmap and free-slot search, and giving it back.
 * See malloc.c for the overview.
 *
 * Layout of a small span of class c (elemsize = class size):
 *   noscan           nelems = bytes / elemsize, no pointer metadata
 *   scan, <= 512 B   the last bytes/64 bytes of the span hold the heap bits
 *                    (1 bit per word: pointer or not), written at allocation;
 *                    nelems = (bytes - bytes/64) / elemsize  (Go 1.22)
 *   scan, > 512 B    each slot starts with a 16-byte header holding the
 *                    object's type; the user pointer is slot + 16
 * A large span holds one object; its type lives in the record.
 *
 * Records come from two fixallocs: with 2-word bitmaps (nelems <= 128) or
 * with 16-word bitmaps (nelems <= 1024).  Each thread keeps a few of each
 * and takes pages for spans under 16 pages from its page cache, so making a
 * one-page span needs no heap lock in the common case.
 *
 * Invariants: slots below freeindex are allocated; alloc_cache holds the
 * complement of alloc_bits for the 64 slots starting at freeindex & ~63,
 * shifted so bit 0 is slot freeindex; every page of an in-use span maps to
 * it in its arena's spans table; state is stored last (release).
 */
#include "heap.h"

#include <string.h>

#define SPAN_PCACHE_MAX 16 /* pages: smaller requests use the page cache */
#define SPAN_REFILL 8

static size_t span_rec_size(int big) {
  return sizeof(gc_span_t) +
         2 * (big ? SPAN_BIG_BITS : SPAN_SMALL_BITS) * sizeof(uint64_t);
}

/* A span record from the thread's stash, refilled under the heap lock. */
static gc_span_t *span_record_get(gc_heap_t *h, gc_thread_t *t, int big) {
  if (t && t->nspan_cache[big]) return t->span_cache[big][--t->nspan_cache[big]];
  _gc_lock(&h->lock);
  gc_span_t *s = _gc_fixalloc_alloc(&h->span_alloc[big]);
  while (t && s && t->nspan_cache[big] < SPAN_REFILL / 2) {
    gc_span_t *x = _gc_fixalloc_alloc(&h->span_alloc[big]);
    if (!x) break;
    t->span_cache[big][t->nspan_cache[big]++] = x;
  }
  _gc_unlock(&h->lock);
  return s;
}

static void span_record_put(gc_heap_t *h, gc_thread_t *t, gc_span_t *s) {
  int big = s->big_bits;
  if (t && t->nspan_cache[big] < SPAN_REFILL) {
    memset(s, 0, span_rec_size(big));
    s->big_bits = big;
    t->span_cache[big][t->nspan_cache[big]++] = s;
    return;
  }
  _gc_lock(&h->lock);
  _gc_fixalloc_free(&h->span_alloc[big], s);
  _gc_unlock(&h->lock);
}

void _gc_span_cache_flush(gc_heap_t *h, gc_thread_t *t) {
  _gc_lock_assert_held(&h->lock);
  for (int big = 0; big < 2; big++)
    while (t->nspan_cache[big])
      _gc_fixalloc_free(&h->span_alloc[big],
                        t->span_cache[big][--t->nspan_cache[big]]);
  _gc_pages_flush_cache(&h->pages, &t->pcache);
}

/* Pages for a span, heap lock held: page cache first, then the page
 * allocator, growing the heap when nothing fits unless `reclaim_first`
 * asks the caller to sweep first.  Memory limits are kept before pages are
 * taken (arena/scavenge.c).  Returns 0 with *err set, or with *err ==
 * GCH_OK and *reclaim set when sweeping might make room. */
static uintptr_t span_pages_locked(gc_heap_t *h, gc_thread_t *t, size_t npages,
                                   size_t *nscav, gc_result_t *err,
                                   bool reclaim_first, bool *reclaim) {
  bool over = false;
  *err = _gc_scavenge_make_room(h, npages * GCH_PAGE_SIZE, &over);
  if (*err != GCH_OK || (over && reclaim_first)) {
    *reclaim = true;
    return 0;
  }
  bool small = t && npages < SPAN_PCACHE_MAX && _gc_scavenge_cache_ok(h);
  uintptr_t base = 0;
  if (small) {
    _gc_pages_flush_cache(&h->pages, &t->pcache);
    _gc_pages_fill_cache(&h->pages, &t->pcache);
    base = _gc_pcache_alloc(&t->pcache, npages, nscav);
  }
  if (!base) base = _gc_pages_alloc(&h->pages, npages, nscav);
  bool grew = false;
  if (!base && reclaim_first) {
    *reclaim = true;
    return 0;
  }
  if (!base) {
    *err = _gc_arena_grow(h, npages);
    if (*err != GCH_OK) return 0;
    grew = true;
    base = _gc_pages_alloc(&h->pages, npages, nscav);
  }
  if (base) _gc_scavenge_after_alloc(h, grew);
  else *err = GCH_ENOMEM;
  return base;
}

/* Sweep spans until about npages pages went back to the page allocator
 * (Go's mheap.reclaim): garbage found by the last cycle is reused before
 * the heap grows or a limit is pressed.  False when nothing was unswept. */
static bool span_reclaim(gc_heap_t *h, size_t npages) {
  size_t start = atomic_load(&h->reclaimed_pages);
  bool any = false;
  while (atomic_load(&h->reclaimed_pages) - start < npages && _gc_central_sweep_one(h))
    any = true;
  return any;
}

static uintptr_t span_pages(gc_heap_t *h, gc_thread_t *t, size_t npages,
                            size_t *nscav, gc_result_t *err) {
  uintptr_t base = 0;
  if (t && npages < SPAN_PCACHE_MAX &&
      (base = _gc_pcache_alloc(&t->pcache, npages, nscav)))
    return base;
  for (bool reclaim_first = true;; reclaim_first = false) {
    bool reclaim = false;
    _gc_lock(&h->lock);
    base = span_pages_locked(h, t, npages, nscav, err, reclaim_first, &reclaim);
    _gc_unlock(&h->lock);
    if (base || !reclaim || !reclaim_first) return base;
    if (!span_reclaim(h, npages) && *err != GCH_OK) return 0;
  }
}

/* GCHEAP_DEBUG=harddecommit: released pages fault; make them usable. */
static void span_unfault(gc_heap_t *h, uintptr_t base, size_t npages) {
  if (_gc_os_unfault(&h->os, (void *)base, npages * GCH_PAGE_SIZE) != 0)
    gch_throw("GCHEAP_DEBUG=harddecommit: cannot make released pages accessible");
}

static void span_layout(gc_span_t *s, uint8_t spc, size_t npages) {
  size_t bytes = npages * GCH_PAGE_SIZE;
  unsigned cls = spc >> 1;
  bool noscan = spc & 1;
  if (cls == 0) {
    s->elemsize = bytes;
    s->nelems = 1;
    s->divmagic = 0;
    s->layout = noscan ? LAYOUT_NOSCAN : LAYOUT_LARGE;
  } else {
    s->elemsize = gch_class_to_size[cls];
    s->divmagic = gch_class_to_divmagic[cls];
    size_t usable = bytes;
    if (noscan) {
      s->layout = LAYOUT_NOSCAN;
    } else if (s->elemsize <= 512) {
      s->layout = LAYOUT_HEAPBITS;
      usable = bytes - bytes / 64;
      s->heap_bits = (uint64_t *)(s->base + usable);
    } else {
      s->layout = LAYOUT_HEADER;
    }
    s->nelems = (uint16_t)(usable / s->elemsize);
  }
  s->limit = s->base + (size_t)s->nelems * s->elemsize;
}

static size_t span_nelems_for(uint8_t spc) {
  unsigned cls = spc >> 1;
  if (cls == 0) return 1;
  return gch_class_to_npages[cls] * GCH_PAGE_SIZE / gch_class_to_size[cls];
}

static void span_page_bits(gc_heap_t *h, gc_span_t *s, bool set) {
  heap_arena_t *a = arena_of(h, s->base);
  size_t page = (s->base - a->base) >> GCH_PAGE_SHIFT;
  _Atomic uint64_t *w = (_Atomic uint64_t *)&a->page_in_use[page / 64];
  uint64_t bit = (uint64_t)1 << (page % 64);
  if (set) atomic_fetch_or(w, bit);
  else atomic_fetch_and(w, ~bit);
  s->arena = a;
}

gc_span_t *_gc_span_alloc(gc_heap_t *h, gc_thread_t *t, size_t npages,
                          uint8_t spc, gc_result_t *err) {
  *err = GCH_OK;
  int big = span_nelems_for(spc) > SPAN_SMALL_BITS * 64;
  gc_span_t *s = span_record_get(h, t, big);
  if (!s) {
    *err = GCH_ENOMEM;
    return NULL;
  }
  size_t nscav = 0;
  uintptr_t base = span_pages(h, t, npages, &nscav, err);
  if (!base) {
    s->big_bits = big;
    span_record_put(h, t, s);
    return NULL;
  }
  if (nscav) {
    atomic_fetch_add(&h->os.ready, nscav * GCH_PAGE_SIZE);
    if (h->debug & GCDBG_HARDDECOMMIT) span_unfault(h, base, npages);
  }
  s->big_bits = big;
  s->base = base;
  s->npages = npages;
  s->spanclass = spc;
  span_layout(s, spc, npages);
  size_t words = big ? SPAN_BIG_BITS : SPAN_SMALL_BITS;
  s->alloc_bits = s->bits;
  s->mark_bits = s->bits + words;
  memset(s->bits, 0, 2 * words * sizeof(uint64_t));
  span_set_freeindex(s, 0);
  s->alloc_count = 0;
  s->alloc_cache = ~(uint64_t)0;
  s->needzero = nscav != npages;
  s->poisoned = 0; /* its free slots were never clobbered (sweep.c) */
  s->conservative = false;
  s->specials = NULL;
  s->large_type = NULL;
  s->large_count = 0;
  s->next = s->prev = NULL;
  atomic_store_explicit(&s->sweepgen, atomic_load(&h->sweepgen),
                        memory_order_relaxed);
  _gc_arena_set_spans(h, s, s);
  span_page_bits(h, s, true);
  atomic_fetch_add(&h->heap_inuse, npages * GCH_PAGE_SIZE);
  atomic_store_explicit(&s->state, SPAN_IN_USE, memory_order_release);
  return s;
}

/* GCHEAP_DEBUG=efence: a freed span's pages fault from now on and never go
 * back to the page allocator, so its address is never reused; they count
 * as released in the stats (heap.c). */
static void span_fence(gc_heap_t *h, gc_span_t *s) {
  size_t bytes = s->npages * GCH_PAGE_SIZE;
  if (_gc_os_fault(&h->os, (void *)s->base, bytes, 1) != 0)
    _gc_warn_once(h, "GCHEAP_DEBUG=efence: the kernel refused to fence freed pages"
                     " (vm.max_map_count?): from now on they are dropped and never"
                     " reused, but reading them no longer faults");
  atomic_fetch_add(&h->efence_bytes, bytes);
}

void _gc_span_free(gc_heap_t *h, gc_thread_t *t, gc_span_t *s) {
  GCH_ASSERT(atomic_load(&s->state) == SPAN_IN_USE);
  atomic_store_explicit(&s->state, SPAN_DEAD, memory_order_release);
  span_page_bits(h, s, false);
  _gc_arena_set_spans(h, s, NULL);
  atomic_fetch_sub(&h->heap_inuse, s->npages * GCH_PAGE_SIZE);
  if (gch_unlikely(h->debug & GCDBG_EFENCE)) {
    span_fence(h, s);
    span_record_put(h, t, s);
    return;
  }
#if GCH_DEBUG
  memset((void *)s->base, GCH_CLOBBER_BYTE, s->npages * GCH_PAGE_SIZE);
#endif
  _gc_lock(&h->lock);
  _gc_pages_free(&h->pages, s->base, s->npages);
  _gc_unlock(&h->lock);
  atomic_fetch_add(&h->reclaimed_pages, s->npages);
  span_record_put(h, t, s);
}

/* Reload alloc_cache for the 64 slots starting at freeindex (a multiple of
 * 64 or the current position). */
void _gc_span_refill_cache(gc_span_t *s) {
  size_t w = s->freeindex >> 6;
  uint64_t free = ~s->alloc_bits[w];
  s->alloc_cache = free >> (s->freeindex & 63);
}

/* The slow half of the free-slot search: walk to the next 64-slot word with
 * a free slot.  Returns nelems when the span is full. */
uint16_t _gc_span_next_free_index(gc_span_t *s) {
  uint16_t idx = s->freeindex;
  uint16_t n = s->nelems;
  for (;;) {
    if (idx >= n) {
      span_set_freeindex(s, n);
      return n;
    }
    if (s->alloc_cache) {
      unsigned bit = gch_ctz64(s->alloc_cache);
      uint32_t r = (uint32_t)idx + bit;
      if (r >= n) {
        span_set_freeindex(s, n);
        return n;
      }
      s->alloc_cache >>= bit;
      s->alloc_cache >>= 1;
      span_set_freeindex(s, (uint16_t)(r + 1));
      if ((s->freeindex & 63) == 0 && s->freeindex < n)
        _gc_span_refill_cache(s);
      return (uint16_t)r;
    }
    idx = (uint16_t)((idx + 64) & ~63);
    span_set_freeindex(s, idx);
    if (idx < n) _gc_span_refill_cache(s);
  }
}

size_t _gc_span_count_alloc(const gc_span_t *s) {
  size_t n = 0, words = (s->nelems + 63u) / 64;
  for (size_t i = 0; i < words; i++) n += gch_popcount64(s->alloc_bits[i]);
  return n;
}
