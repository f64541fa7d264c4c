/*
 * malloc.c -- allocation: the overview, the fast paths and the slow paths.
 *
 * How an allocation flows (Go's malloc.go hierarchy, re-thought for C):
 *
 *  1. The calling thread's record (gc_thread_t, Go's mcache) is found
 *     through a thread-local pointer; an unattached thread gets NULL and
 *     GCH_ENOTATTACHED.
 *  2. The size picks a path:
 *       noscan and < 16 B          tiny: bump-packed into a 16-B block
 *       <= 32 KiB (+ header)       small: a slot of a size class
 *       larger                     large: a span of its own
 *     A span class is sizeclass << 1 | noscan, so pointer-free objects live
 *     in spans the collector never scans.
 *  3. Small: the thread's current span of that class hands out the next
 *     free slot: ctz on a 64-bit cache of the inverted allocation bitmap.
 *     No lock, no atomic.  That is the fast path.
 *  4. When the span is full, the thread returns it to its class's central
 *     list and takes another (central.c): a swept span with free slots, or
 *     an unswept one that it sweeps first, or a fresh span.
 *  5. A fresh span gets its pages from the thread's page cache (64 pages,
 *     no lock) or from the page allocator under the heap lock
 *     (arena/pagealloc.c), which grows the heap by mapping another 4 MiB
 *     chunk of a 64 MiB heap arena (arena/arena.c) when nothing fits.
 *  6. Slow paths (a refill, a large object) are where the pacer may start a
 *     collection and where the thread stops if the world is being stopped.
 *
 * Pointer metadata (how the collector finds the pointer words of an object
 * in O(1)) follows Go 1.22's allocation headers, chosen because it costs
 * nothing for pointer-free objects, one bitmap bit per word for the small
 * objects that dominate interpreter heaps (a 16-B cons cell pays 2 bits, not
 * a header word), and one word for objects over 512 B where a word is cheap:
 *   - noscan spans: nothing;
 *   - scan slots <= 512 B: the type's map tiled into the span's tail bitmap;
 *   - scan slots > 512 B: a 16-byte header (the type, then padding, so the
 *     object keeps malloc's 16-byte alignment) at the slot start;
 *   - large objects: the type in the span record.
 * Conservative objects use the heap's built-in "every word" type.
 *
 * Zeroing: every object is returned zeroed.  Fresh pages from the OS are
 * zero, so a span is cleared only once sweeping has freed slots in it
 * (needzero).
 */
#include "heap.h"
#include "gc/specials.h"

#include <limits.h>
#include <sched.h>
#include <string.h>

#define MAX_SMALL_HEADERLESS 512

/* ------------------------------------------------------------- fast path */

/* The next free slot of s, or 0 when the fast path cannot tell. */
GCH_INLINE uintptr_t next_free_fast(gc_span_t *s) {
  uint64_t cache = s->alloc_cache;
  if (!cache) return 0;
  unsigned bit = gch_ctz64(cache);
  unsigned r = s->freeindex + bit;
  if (r >= s->nelems) return 0;
  unsigned nf = r + 1;
  if ((nf & 63) == 0 && nf != s->nelems) return 0;
  s->alloc_cache = (cache >> bit) >> 1;
  span_set_freeindex(s, (uint16_t)nf);
  s->alloc_count++;
  return s->base + (size_t)r * s->elemsize;
}

/* ------------------------------------------------------------- slow path */

/* Give the thread's span of class spc back to its central.  Its unused
 * slots were counted as allocated when it was cached: uncount them. */
static void cache_drop(gc_heap_t *h, gc_thread_t *t, int spc) {
  gc_span_t *old = t->alloc[spc];
  t->alloc[spc] = h->empty_span;
  if (!old || old == h->empty_span) return;
  size_t unused = (size_t)(old->nelems - old->alloc_count);
  atomic_fetch_sub(&h->heap_live, unused * old->elemsize);
  t->class_allocs[spc >> 1] -= unused;
  t->alloc_bytes -= unused * old->elemsize;
  _gc_central_uncache_span(h, old);
}

/* Swap the thread's span of class spc for one with a free slot. */
static gc_span_t *cache_refill(gc_heap_t *h, gc_thread_t *t, int spc,
                               gc_result_t *err) {
  cache_drop(h, t, spc);
  gc_span_t *s = _gc_central_cache_span(h, t, spc, err);
  if (!s) return NULL;
  size_t avail = (size_t)(s->nelems - s->alloc_count);
  atomic_fetch_add(&h->heap_live, avail * s->elemsize);
  t->class_allocs[spc >> 1] += avail;
  t->alloc_bytes += avail * s->elemsize;
  t->alloc[spc] = s;
  return s;
}

/* A slot of span class spc, by way of the fast path or a refill. */
static uintptr_t alloc_slot(gc_heap_t *h, gc_thread_t *t, int spc,
                            gc_span_t **sp, gc_result_t *err) {
  gc_span_t *s = t->alloc[spc];
  uintptr_t p = next_free_fast(s);
  if (gch_likely(p)) {
    *sp = s;
    return p;
  }
  if (s != h->empty_span) {
    uint16_t idx = _gc_span_next_free_index(s);
    if (idx < s->nelems) {
      s->alloc_count++;
      *sp = s;
      return s->base + (size_t)idx * s->elemsize;
    }
  }
  /* Span full: a chance to stop for the collector, start a cycle, or pay
   * for the next span with mark work.  All of it before the refill: a stop
   * may flush this thread's cache, so no safepoint may come between taking
   * a span and allocating from it. */
  gc_safepoint(h);
  _gc_maybe_collect(h, t);
  if (gch_unlikely(heap_marking(h)))
    _gc_assist(h, t, (size_t)gch_class_to_npages[spc >> 1] * GCH_PAGE_SIZE);
  s = cache_refill(h, t, spc, err);
  if (!s) return 0;
  uint16_t idx = _gc_span_next_free_index(s);
  if (idx >= s->nelems) gch_throw("refill returned a full span");
  s->alloc_count++;
  *sp = s;
  return s->base + (size_t)idx * s->elemsize;
}

/* Zero a slot: small slots with inline stores (the common 16-64 B case
 * would otherwise pay for a memset call), larger ones with memset. */
GCH_INLINE void zero_slot(uintptr_t p, size_t n) {
  if (n <= 64) {
    uint64_t *w = (uint64_t *)p;
    for (size_t i = 0; i < n / 8; i++) w[i] = 0;
  } else {
    memset((void *)p, 0, n);
  }
}

/* Store the heap bits of the slot at p (a LAYOUT_HEAPBITS span): its
 * elemsize/8 <= 64 bits become m.  Relaxed atomics: markers may read the
 * bits of neighbouring objects in the same word meanwhile (those bits do
 * not change). */
GCH_INLINE void heapbits_store(gc_span_t *s, uintptr_t p, uint64_t m) {
  size_t nw = s->elemsize / 8;
  uint64_t *hb = s->heap_bits;
  size_t w = (p - s->base) / 8;
  size_t wi = w / 64, sh = w % 64;
  uint64_t keep = nw == 64 ? 0 : ~((((uint64_t)1 << nw) - 1) << sh);
  uint64_t v = __atomic_load_n(&hb[wi], __ATOMIC_RELAXED);
  __atomic_store_n(&hb[wi], (v & keep) | (m << sh), __ATOMIC_RELAXED);
  if (sh + nw > 64) {
    size_t hi = sh + nw - 64;
    uint64_t hmask = ((uint64_t)1 << hi) - 1;
    v = __atomic_load_n(&hb[wi + 1], __ATOMIC_RELAXED);
    __atomic_store_n(&hb[wi + 1], (v & ~hmask) | (m >> (64 - sh)), __ATOMIC_RELAXED);
  }
}

/* The pointer map of `count` elements of `type` laid end to end (the
 * caller guarantees count * nwords <= 64). */
GCH_INLINE uint64_t tiled_mask(const gc_type_t *type, size_t count) {
  size_t words = count * type->nwords;
  if (type->all_ptrs || type->conservative)
    return words >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << words) - 1);
  uint64_t m = 0;
  for (size_t i = 0; i < count; i++) m |= type->mask64 << (i * type->nwords);
  return m;
}

/* Write the pointer bits of an object of `count` elements of `type` at slot
 * p of a LAYOUT_HEAPBITS span; words past the object get 0. */
static void heapbits_write(gc_span_t *s, uintptr_t p, const gc_type_t *type,
                           size_t count) {
  size_t nw = s->elemsize / 8; /* <= 64 */
  uint64_t m = 0;
  if (count == 1 && !type->conservative) {
    m = type->mask64;
  } else if (type->conservative) {
    m = nw == 64 ? ~(uint64_t)0 : (((uint64_t)1 << nw) - 1);
    /* Scanned with the allocated-slot check.  Concurrent markers read the
     * flag for the span's other objects (mark.c): a relaxed atomic. */
    __atomic_store_n(&s->conservative, true, __ATOMIC_RELAXED);
  } else {
    m = tiled_mask(type, count);
  }
  heapbits_store(s, p, m);
}

static void *alloc_large(gc_heap_t *h, gc_thread_t *t, size_t size,
                         const gc_type_t *type, size_t count, bool noscan,
                         gc_result_t *err) {
  size_t npages = size / GCH_PAGE_SIZE + (size % GCH_PAGE_SIZE != 0);
  gc_safepoint(h);
  _gc_maybe_collect(h, t);
  if (gch_unlikely(heap_marking(h))) _gc_assist(h, t, npages * GCH_PAGE_SIZE);
  gc_span_t *s = _gc_span_alloc(h, t, npages, noscan ? 1 : 0, err);
  if (!s) return NULL;
  if (s->needzero) memset((void *)s->base, 0, size);
  if (!noscan) {
    s->large_type = type;
    s->large_count = count;
  }
  s->alloc_count = 1;
  span_set_freeindex(s, 1);
  s->alloc_cache = 0;
  size_t bytes = npages * GCH_PAGE_SIZE;
  atomic_fetch_add(&h->heap_live, bytes);
  t->class_allocs[0]++;
  t->alloc_bytes += bytes;
  _gc_central_insert_swept(h, s);
  return (void *)s->base;
}

static void *alloc_tiny(gc_heap_t *h, gc_thread_t *t, size_t size,
                        gc_result_t *err) {
  size_t off = t->tiny_offset;
  if ((size & 7) == 0) off = GCH_ALIGN_UP(off, 8);
  else if ((size & 3) == 0) off = GCH_ALIGN_UP(off, 4);
  else if ((size & 1) == 0) off = GCH_ALIGN_UP(off, 2);
  if (t->tiny && off + size <= GCH_TINY_SIZE) {
    t->tiny_offset = off + size;
    return (void *)(t->tiny + off);
  }
  gc_span_t *s;
  uintptr_t p = alloc_slot(h, t, GCH_TINY_SPAN_CLASS, &s, err);
  if (!p) return NULL;
  if (s->needzero) memset((void *)p, 0, GCH_TINY_SIZE);
  /* Keep whichever block has more room left. */
  if (!t->tiny || size < t->tiny_offset) {
    t->tiny = p;
    t->tiny_offset = size;
  }
  return (void *)p;
}

/* The torture / profiling hook, run before an allocation when the thread's
 * countdown runs out.  The countdown is armed (gc/profile.c) at the bytes
 * left to the next profile sample, or 0 in torture mode; returns true when
 * this allocation is to be sampled. */
static bool alloc_hook(gc_heap_t *h, gc_thread_t *t) {
  bool sample = _gc_prof_hook(h, t);
  if (h->config.torture) {
    if (--t->torture_left == 0) {
      t->torture_left = h->config.torture;
      if (!atomic_load(&h->collecting) && !t->in_callback)
        _gc_collect_internal(h, t, false);
    }
  }
  _gc_prof_arm(h, t);
  return sample;
}

/* One attempt at an allocation.  type == NULL with noscan means raw bytes;
 * conservative objects pass the heap's every-word type. */
static void *alloc_try(gc_heap_t *h, gc_thread_t *t, size_t size,
                       const gc_type_t *type, size_t count, bool noscan,
                       gc_result_t *err) {
  if (noscan) {
    if (size < GCH_TINY_SIZE) return alloc_tiny(h, t, size ? size : 1, err);
    if (size > GCH_MAX_SMALL_SIZE)
      return alloc_large(h, t, size, NULL, 0, true, err);
    gc_span_t *s;
    int spc = (int)(gch_size_to_class(size) << 1 | 1);
    uintptr_t p = alloc_slot(h, t, spc, &s, err);
    if (p && s->needzero) zero_slot(p, GCH_ALIGN_UP(size, 8));
    return (void *)p;
  }
  if (size <= MAX_SMALL_HEADERLESS) {
    gc_span_t *s;
    int spc = (int)(gch_size_to_class(size ? size : 8) << 1);
    uintptr_t p = alloc_slot(h, t, spc, &s, err);
    if (!p) return NULL;
    if (s->needzero) zero_slot(p, s->elemsize);
    heapbits_write(s, p, type, count);
    return (void *)p;
  }
  if (size + GCH_HEADER_BYTES <= GCH_MAX_SMALL_SIZE) {
    gc_span_t *s;
    int spc = (int)(gch_size_to_class(size + GCH_HEADER_BYTES) << 1);
    uintptr_t p = alloc_slot(h, t, spc, &s, err);
    if (!p) return NULL;
    if (s->needzero) memset((void *)p, 0, s->elemsize);
    *(const gc_type_t **)p = type;
    return (void *)(p + GCH_HEADER_BYTES);
  }
  return alloc_large(h, t, size, type, count, false, err);
}

/* GCHEAP_DEBUG=efence: every object, tiny ones included, is a large object
 * on whole pages of its own, at their start; once freed, those pages fault
 * and are never reused (span.c).  Reached only through alloc_hooked: under
 * efence the hook countdown is always negative (gc/profile.c), so every
 * allocation leaves the fast paths for it. */
static void *alloc_fenced_try(gc_heap_t *h, gc_thread_t *t, size_t size,
                              const gc_type_t *type, size_t count, bool noscan,
                              gc_result_t *err) {
  if (noscan) return alloc_large(h, t, size ? size : 1, NULL, 0, true, err);
  return alloc_large(h, t, size ? size : 1, type, count, false, err);
}

/* Allocation failed for lack of memory: collect and retry, then ask
 * the host's handler; else NULL with the reason recorded. */
static GCH_NOINLINE void *alloc_failed(gc_heap_t *h, gc_thread_t *t,
                                       size_t size, const gc_type_t *type,
                                       size_t count, bool noscan,
                                       gc_result_t err) {
  void *r = NULL;
  /* Collect and retry, twice: the first collection may only wait for a
   * cycle already under way, whose snapshot predates our garbage. */
  for (int i = 0; i < 2 && err != GCH_EOVERFLOW && atomic_load(&h->collector) != t &&
                  !t->in_callback;
       i++) {
    _gc_collect_internal(h, t, i == 1); /* the second one always runs */
    /* What the cycle freed is only reusable once swept: sweep it all now
     * rather than fail while free pages wait for the sweeper. */
    while (_gc_central_sweep_one(h)) {
    }
    gc_result_t err2 = GCH_OK;
    r = gch_unlikely(h->debug & GCDBG_EFENCE)
            ? alloc_fenced_try(h, t, size, type, count, noscan, &err2)
            : alloc_try(h, t, size, type, count, noscan, &err2);
    if (r) return r;
    err = err2;
  }
  if (h->config.oom_handler && err != GCH_EOVERFLOW) {
    r = h->config.oom_handler(h, size, h->config.oom_ctx);
    if (r) return r;
  }
  _gc_set_error(h, t, err == GCH_OK ? GCH_ENOMEM : err);
  return NULL;
}

GCH_INLINE void *alloc_do(gc_heap_t *h, gc_thread_t *t, size_t size,
                          const gc_type_t *type, size_t count, bool noscan) {
  gc_result_t err = GCH_OK;
  void *r = alloc_try(h, t, size, type, count, noscan, &err);
  if (gch_unlikely(!r)) r = alloc_failed(h, t, size, type, count, noscan, err);
  if (gch_unlikely(heap_marking(h)) && r) _gc_mark_new_object(h, t, (uintptr_t)r);
  return r;
}

static GCH_NOINLINE void *alloc_fenced(gc_heap_t *h, gc_thread_t *t, size_t size,
                                       const gc_type_t *type, size_t count,
                                       bool noscan) {
  gc_result_t err = GCH_OK;
  void *r = alloc_fenced_try(h, t, size, type, count, noscan, &err);
  if (!r) r = alloc_failed(h, t, size, type, count, noscan, err);
  if (heap_marking(h) && r) _gc_mark_new_object(h, t, (uintptr_t)r);
  return r;
}

/* An allocation whose hook countdown ran out: the hook, the allocation,
 * then the profile sample (the object is known only now).  Out of line;
 * it and the public entry points are GCH_ALLOC_ENTRY, so the profile can
 * drop their frames from a sampled native stack (gc/profile.c). */
static GCH_NOINLINE GCH_ALLOC_ENTRY void *alloc_hooked(gc_heap_t *h, gc_thread_t *t,
                                       size_t size, const gc_type_t *type,
                                       size_t count, bool noscan) {
  bool sample = alloc_hook(h, t);
  void *r = gch_unlikely(h->debug & GCDBG_EFENCE)
                ? alloc_fenced(h, t, size, type, count, noscan)
                : alloc_do(h, t, size, type, count, noscan);
  if (sample && r) _gc_prof_sample(h, t, r, size);
  return r;
}

GCH_INLINE void *alloc_object(gc_heap_t *h, gc_thread_t *t, size_t size,
                              const gc_type_t *type, size_t count,
                              bool noscan) {
  if (gch_unlikely((t->hook_bytes -= (long)size) < 0)) {
    void *r = alloc_hooked(h, t, size, type, count, noscan);
    __asm__ volatile("" : "+r"(r)); /* keeps this call out of tail position */
    return r;
  }
  return alloc_do(h, t, size, type, count, noscan);
}

/* ----------------------------------------------------------- entry points */

static void *gc_alloc_general(gc_heap_t *h, const gc_type_t *type);
static void *gc_alloc_array_general(gc_heap_t *h, const gc_type_t *type, size_t n);
static void *gc_malloc_general(gc_heap_t *h, size_t size, unsigned flags);

/* Objects beyond 1 TiB are refused up front (GCH_EOVERFLOW). */
#define ALLOC_MAX ((size_t)1 << 40)

static gc_thread_t *alloc_thread(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return NULL;
  gc_thread_t *t = thread_current(h);
  if (!t) _gc_set_error(h, NULL, GCH_ENOTATTACHED);
  return t;
}

/* gc_malloc's fast path: a small noscan object (16 B .. 32 KiB) from the
 * thread's current span of its class; the rest goes the general way. */
GCH_API GCH_ALLOC_ENTRY void *gc_malloc(gc_heap_t *h, size_t size, unsigned flags) {
  gc_thread_t *t = h ? _gc_tls_threads : NULL;
  if (gch_likely(t && t->heap == h && flags == GCH_NOSCAN && size >= GCH_TINY_SIZE &&
                 size <= GCH_MAX_SMALL_SIZE && t->hook_bytes >= (long)size &&
                 !heap_marking(h))) {
    gc_span_t *s = t->alloc[gch_size_to_class(size) << 1 | 1];
    uintptr_t p = next_free_fast(s);
    if (gch_likely(p)) {
      t->hook_bytes -= (long)size;
      if (s->needzero) zero_slot(p, GCH_ALIGN_UP(size, 8));
      return (void *)p;
    }
  }
  return gc_malloc_general(h, size, flags);
}

static GCH_NOINLINE GCH_ALLOC_ENTRY void *gc_malloc_general(gc_heap_t *h, size_t size,
                                                          unsigned flags) {
  gc_thread_t *t = alloc_thread(h);
  if (!t) return NULL;
  if (gch_unlikely(size > ALLOC_MAX || (flags & ~GCH_NOSCAN))) {
    _gc_set_error(h, t, size > ALLOC_MAX ? GCH_EOVERFLOW : GCH_EINVAL);
    return NULL;
  }
  if (flags & GCH_NOSCAN) return alloc_object(h, t, size, NULL, 0, true);
  size_t rounded = GCH_ALIGN_UP(size, 8);
  return alloc_object(h, t, rounded, &h->conservative_type, rounded / 8, false);
}

/* gc_alloc's fast path: a small object of a type whose span class was
 * precomputed, from the thread's current span, with no hook due and no
 * mark running.  Anything else takes the general path below. */
GCH_API GCH_ALLOC_ENTRY void *gc_alloc(gc_heap_t *h, const gc_type_t *type) {
  gc_thread_t *t = h && type ? _gc_tls_threads : NULL;
  if (gch_likely(t && t->heap == h && type->fast_spc &&
                 t->hook_bytes >= (long)type->size && !heap_marking(h))) {
    gc_span_t *s = t->alloc[type->fast_spc];
    uintptr_t p = next_free_fast(s);
    if (gch_likely(p)) {
      t->hook_bytes -= (long)type->size;
      if (s->needzero) zero_slot(p, type->noscan ? type->size : s->elemsize);
      if (!type->noscan) heapbits_store(s, p, type->mask64);
      return (void *)p;
    }
  }
  return gc_alloc_general(h, type);
}

static GCH_NOINLINE GCH_ALLOC_ENTRY void *gc_alloc_general(gc_heap_t *h,
                                                         const gc_type_t *type) {
  gc_thread_t *t = alloc_thread(h);
  if (!t) return NULL;
  if (gch_unlikely(!type)) {
    _gc_set_error(h, t, GCH_EINVAL);
    return NULL;
  }
  return alloc_object(h, t, type->size, type, 1, type->noscan);
}

/* gc_alloc_array's fast path: a small scan array (<= 512 B, heap bits)
 * from the thread's current span of its class. */
GCH_API GCH_ALLOC_ENTRY void *gc_alloc_array(gc_heap_t *h, const gc_type_t *type,
                                             size_t n) {
  gc_thread_t *t = h && type ? _gc_tls_threads : NULL;
  size_t bytes = type && n <= 512 ? type->size * n : 0;
  if (gch_likely(t && t->heap == h && !type->noscan && bytes && bytes <= 512 &&
                 t->hook_bytes >= (long)bytes && !heap_marking(h))) {
    gc_span_t *s = t->alloc[gch_size_to_class(bytes) << 1];
    uintptr_t p = next_free_fast(s);
    if (gch_likely(p)) {
      t->hook_bytes -= (long)bytes;
      if (s->needzero) zero_slot(p, s->elemsize);
      heapbits_store(s, p, tiled_mask(type, n));
      return (void *)p;
    }
  }
  return gc_alloc_array_general(h, type, n);
}

static GCH_NOINLINE GCH_ALLOC_ENTRY void *gc_alloc_array_general(gc_heap_t *h,
                                                                 const gc_type_t *type,
                                                                 size_t n) {
  gc_thread_t *t = alloc_thread(h);
  if (!t) return NULL;
  if (gch_unlikely(!type)) {
    _gc_set_error(h, t, GCH_EINVAL);
    return NULL;
  }
  size_t bytes;
  if (__builtin_mul_overflow(type->size, n, &bytes) || bytes > ALLOC_MAX) {
    _gc_set_error(h, t, GCH_EOVERFLOW);
    return NULL;
  }
  return alloc_object(h, t, bytes, type, n, type->noscan);
}

/* Drop every cached span and the tiny block (before a collection, at
 * detach).  The spans go back to their centrals. */
void _gc_cache_release_all(gc_heap_t *h, gc_thread_t *t) {
  for (int spc = 0; spc < GCH_NUM_SPAN_CLASSES; spc++) cache_drop(h, t, spc);
  t->tiny = 0;
  t->tiny_offset = 0;
}

/* ------------------------------------------------------- object queries */

bool _gc_find_object(const gc_heap_t *h, uintptr_t p, gc_span_t **sp,
                     size_t *idx) {
  return find_object(h, p, sp, idx);
}

/* A seqlock on the span's sweep generation: sweeping moves it from
 * sg - 2 through sg - 1 to sg (central.c), so an answer computed between
 * two equal readings that were not "being swept" saw a consistent span. */
bool _gc_find_object_stable(const gc_heap_t *h, uintptr_t p, gc_span_t **sp,
                            size_t *idx) {
  for (;;) {
    gc_span_t *s = span_of(h, p);
    if (!s) return false;
    uint32_t g1 = atomic_load_explicit(&s->sweepgen, memory_order_acquire);
    if (g1 == atomic_load(&h->sweepgen) - 1) {
      sched_yield(); /* being swept right now */
      continue;
    }
    bool ok = _gc_find_object(h, p, sp, idx);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->sweepgen, memory_order_relaxed) == g1) return ok;
  }
}

static uintptr_t obj_user_base(const gc_span_t *s, size_t idx) {
  uintptr_t slot = s->base + idx * s->elemsize;
  return s->layout == LAYOUT_HEADER ? slot + GCH_HEADER_BYTES : slot;
}

GCH_API void *gc_base(gc_heap_t *h, const void *p) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return NULL;
  gc_span_t *s;
  size_t idx;
  if (!_gc_find_object_stable(h, (uintptr_t)p, &s, &idx)) return NULL;
  uintptr_t base = obj_user_base(s, idx);
  return (uintptr_t)p < base ? NULL : (void *)base; /* not in the header */
}

GCH_API size_t gc_size_of(gc_heap_t *h, const void *p) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return 0;
  gc_span_t *s;
  size_t idx;
  if (!_gc_find_object_stable(h, (uintptr_t)p, &s, &idx)) return 0;
  uintptr_t end = s->base + (idx + 1) * s->elemsize;
  if ((uintptr_t)p < obj_user_base(s, idx)) return 0; /* the header word */
  return end - (uintptr_t)p;
}
