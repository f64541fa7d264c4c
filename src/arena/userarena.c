/*
 * userarena.c -- user arenas (Go's arena experiment): regions the host
 * frees explicitly, whose memory faults after the free and whose address
 * space is reused only once a collection proves nothing points into it.
 *
 * Owns: gc_arena_new / gc_arena_alloc / gc_arena_alloc_bytes /
 * gc_arena_free, the user-arena address space and chunk records, and the
 * collector hooks declared in userarena.h.
 *
 * Address space.  User-arena memory lives in 64 MiB heap arenas of its own
 * (heap_arena_t.user_arena = 1), reserved from a hint 128 GiB above the
 * heap's first hint and never given to the page allocator.  They are in
 * the heap's arena index (span_of() resolves any pointer into them) and in
 * h->resv (heap destruction releases them).
 *
 * Chunks.  A chunk is a run of 8 MiB units described by a span record in
 * state SPAN_USER_ARENA; every page of it maps to that record.  The record
 * carries a uarena_chunk_t in its trailing storage (UA_CHUNK).  A chunk is
 *   LIVE         read-write, on its arena's list;
 *   QUARANTINED  freed: PROT_NONE, its pages given back to the OS at once;
 *   READY        reusable address space, PROT_NONE.  Adjacent READY chunks
 *                coalesce; a larger one is split (the front part taken).
 * A fresh reservation enters as one READY chunk.  A LIVE chunk is mapped
 * read-write when taken, so its memory is always zero when handed out.
 *
 * Chunk layout:  [base, limit)  pointer bitmap: bytes/64, 1 bit per word of
 *                               the chunk, set at allocation from the type
 *                               map (limit = the first object byte)
 *                [limit, lo)    objects; pointerful ones bump upward
 *                [lo, hi)       free window
 *                [hi, wtop)     noscan objects, bumped downward
 *                [wtop, end)    not yet opened
 * In an arena's first chunk the window starts as [limit, base + 2 MiB) on
 * small pages, so a small arena costs a few pages of RSS.  When it runs
 * out, the rest of the chunk is opened as one window (lo jumps to wtop if
 * noscan objects sit below it) and hinted for transparent huge pages:
 * first touch of a 4 KiB page costs ~1.5 us on some VMs, of a 2 MiB page
 * ~40 us.  The arena's later chunks are opened whole on huge pages at
 * once.  Scanning reads the bitmap over [limit, lo); noscan objects and
 * gaps there have zero bits.
 * Objects larger than a unit's usable part get a multi-unit chunk; of the
 * new and the current chunk, the arena keeps bumping in the one with more
 * room (so a big object never strands a nearly empty chunk).  The current
 * chunk's bump pointers live in the arena record (the fast path touches
 * nothing else); a chunk's own lo/hi are valid only when it is not current.
 *
 * Collector.  Live chunks are roots: at the start of mark every pointer
 * word in [base, lo) is shaded, so heap objects referenced only from
 * arenas stay alive, and the used bytes count as marked (pacing).  Heap
 * pointers into a live chunk keep nothing alive and are not errors: the
 * chunk is not an in-use span.  A value that resolves to no heap object
 * but lands in a QUARANTINED chunk sets the chunk's `seen` flag; at mark
 * termination, quarantined chunks freed before this mark began (qepoch <
 * mark_epoch) and not seen become READY.  A concurrent mark must route
 * barrier shading through _gc_mark_value so moved stale pointers are seen.
 *
 * Pacing.  Arena chunks do not feed heap_live (their memory is explicit and
 * returned at free).  When quarantined bytes reach UARENA_QUARANTINE_TRIGGER
 * the next chunk request runs a collection, which bounds address space.
 *
 * Records.  gc_arena_t records are fixalloc'd off-heap.  Free leaves the
 * record FREED (double free and alloc after free report GCH_EDOUBLEFREE on
 * its heap) in a FIFO graveyard; only records beyond UARENA_GRAVEYARD_MAX
 * frees old are recycled.
 *
 * Threads.  An arena is used by one attached thread at a time.  Chunk
 * changes, free and the collector hooks take ua->lock (the hooks run with
 * the world stopped, so no arena is mid-allocation while it is scanned).
 */
#include "arena/userarena.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gc/gcint.h"

#define UA_LIVE 0x75617231u  /* "uar1" */
#define UA_FREED 0x75617230u /* "uar0" */
#define UA_HINT_OFFSET ((uintptr_t)1 << 37)
#define UA_FIRST_WINDOW ((size_t)2 << 20) /* small pages below, huge above */

enum uarena_cstate { UA_READY = 0, UA_LIVE_CHUNK = 1, UA_QUARANTINED = 2 };

/* Per-chunk fields, in the span record's trailing storage. */
typedef struct uarena_chunk {
  struct gc_arena *owner;  /* LIVE: the arena */
  uintptr_t lo, hi;        /* bump pointers while not the current chunk */
  uintptr_t wtop;          /* top of the opened window (see layout) */
  uint64_t qepoch;         /* mark_epoch when quarantined */
  atomic_int seen;         /* QUARANTINED: a marker found a pointer in it */
  _Atomic uint8_t cstate;  /* enum uarena_cstate */
} uarena_chunk_t;

#define UA_CHUNK(s) ((uarena_chunk_t *)(void *)(s)->bits)

struct gc_arena {
  uintptr_t lo, hi;        /* [owner] current chunk's bump pointers */
  uintptr_t base;          /* [owner] current chunk's first byte: bitmap */
  uint32_t magic;          /* UA_LIVE, UA_FREED (0 once recycled) */
  gc_heap_t *heap;
  gc_span_t *cur;          /* current chunk, NULL before the first one */
  gc_span_t *chunks;       /* [lock] every chunk (span next/prev) */
  struct gc_arena *next, *prev; /* [lock] live list or graveyard */
};

/* --------------------------------------------------------------- helpers */

static size_t chunk_bytes(const gc_span_t *s) { return s->npages * GCH_PAGE_SIZE; }
static uintptr_t chunk_end(const gc_span_t *s) { return s->base + chunk_bytes(s); }

static void ulist_push(gc_span_t **head, gc_span_t *s) {
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
}

static void ulist_remove(gc_span_t **head, gc_span_t *s) {
  if (s->prev) s->prev->next = s->next;
  else *head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

static void uarena_error(gc_heap_t *h, gc_result_t r) {
  _gc_set_error(h, _gc_thread_current(h), r);
}

/* Pages of a chunk that holds an object of `size` bytes. */
static size_t uarena_pages_for(size_t size) {
  size_t units = size <= UARENA_CHUNK_USABLE
                     ? 1
                     : (size + UARENA_CHUNK_USABLE - 1) / UARENA_CHUNK_USABLE;
  return units * UARENA_CHUNK_PAGES;
}

/* OR the low nw (<= 64) bits of m into the bitmap at bit w. */
GCH_INLINE void uarena_or_bits(uint64_t *bits, size_t w, uint64_t m, size_t nw) {
  size_t sh = w & 63;
  bits[w >> 6] |= m << sh;
  if (sh + nw > 64) bits[(w >> 6) + 1] |= m >> (64 - sh);
}

/* Pointer bits of n elements of type t starting at word w. */
GCH_INLINE void uarena_set_bits(uint64_t *bits, size_t w, const gc_type_t *t,
                                size_t n) {
  size_t nw = t->nwords;
  if (gch_likely(nw <= 64)) {
    for (size_t i = 0; i < n; i++, w += nw) uarena_or_bits(bits, w, t->mask64, nw);
    return;
  }
  for (size_t i = 0; i < n; i++, w += nw)
    for (size_t j = 0; j * 64 < nw; j++)
      uarena_or_bits(bits, w + 64 * j, t->map[j], GCH_MIN((size_t)64, nw - 64 * j));
}

/* --------------------------------------------------------- chunk records */

static gc_span_t *uarena_rec_new(gc_heap_t *h, uintptr_t base, size_t npages) {
  _gc_lock(&h->lock);
  gc_span_t *s = _gc_fixalloc_alloc(&h->uarena->chunk_alloc);
  _gc_unlock(&h->lock);
  if (!s) return NULL;
  s->base = base;
  s->npages = npages;
  s->limit = base;
  s->spanclass = 1; /* "large, noscan": nothing in the GC looks inside */
  s->layout = LAYOUT_NOSCAN;
  s->nelems = 1;
  s->elemsize = npages * GCH_PAGE_SIZE;
  s->arena = arena_of(h, base);
  atomic_store_explicit(&s->state, SPAN_USER_ARENA, memory_order_release);
  return s;
}

static void uarena_rec_free(gc_heap_t *h, gc_span_t *s) {
  atomic_store_explicit(&s->state, SPAN_DEAD, memory_order_release);
  _gc_lock(&h->lock);
  _gc_fixalloc_free(&h->uarena->chunk_alloc, s);
  _gc_unlock(&h->lock);
}

/* ------------------------------------------------- reserving address space */

static gc_result_t uarena_reserve(gc_heap_t *h, size_t bytes, uintptr_t *out) {
  struct uarena_heap *ua = h->uarena;
  uintptr_t hint = ua->hint;
  if (hint + bytes < hint || (hint + bytes) >> GCH_ADDR_BITS) hint = 0;
  void *p;
  if (_gc_os_reserve(&h->os, hint, bytes, GCH_ARENA_BYTES, &p) != 0)
    return GCH_ENOMEM;
  uintptr_t base = (uintptr_t)p;
  if ((base + bytes) >> GCH_ADDR_BITS) {
    _gc_os_release(&h->os, p, bytes);
    return GCH_ENOMEM;
  }
  if (ua->hint) ua->hint = base + bytes;
  *out = base;
  return GCH_OK;
}

/* Index n fresh arenas at base as user arenas and record the reservation;
 * on failure nothing stays indexed. */
static gc_result_t uarena_register(gc_heap_t *h, uintptr_t base, size_t n) {
  _Atomic(heap_arena_t *) *idx = &h->arenas[base >> GCH_ARENA_SHIFT];
  _gc_lock(&h->lock);
  struct arena_resv *rv = _gc_persistent_alloc(&h->meta, sizeof *rv, 16);
  size_t i = 0;
  for (; rv && i < n; i++) {
    heap_arena_t *a = _gc_persistent_alloc(&h->meta, sizeof *a, 64);
    if (!a) break;
    a->base = base + i * GCH_ARENA_BYTES;
    a->user_arena = 1;
    atomic_store_explicit(&idx[i], a, memory_order_release);
  }
  if (!rv || i < n) {
    while (i--) atomic_store(&idx[i], NULL);
    _gc_unlock(&h->lock);
    return GCH_ENOMEM;
  }
  rv->base = base;
  rv->bytes = n * GCH_ARENA_BYTES;
  rv->next = h->resv;
  h->resv = rv;
  _gc_unlock(&h->lock);
  return GCH_OK;
}

/* -------------------------------------------------------- the ready list */

/* The READY chunk holding addr, or NULL. */
static gc_span_t *uarena_ready_at(gc_heap_t *h, uintptr_t addr) {
  heap_arena_t *a = arena_of(h, addr);
  if (!a || !a->user_arena) return NULL;
  gc_span_t *s = span_of(h, addr);
  if (!s || atomic_load(&s->state) != SPAN_USER_ARENA) return NULL;
  return atomic_load(&UA_CHUNK(s)->cstate) == UA_READY ? s : NULL;
}

/* Join adjacent chunks lo (below) and hi; the larger record survives so
 * the fewest page entries are rewritten. */
static gc_span_t *uarena_merge(gc_heap_t *h, gc_span_t *lo, gc_span_t *hi) {
  gc_span_t *keep = lo->npages >= hi->npages ? lo : hi;
  gc_span_t *gone = keep == lo ? hi : lo;
  _gc_arena_set_spans(h, gone, keep);
  keep->base = lo->base;
  keep->npages = lo->npages + hi->npages;
  keep->elemsize = chunk_bytes(keep);
  keep->limit = keep->base;
  keep->arena = arena_of(h, keep->base);
  uarena_rec_free(h, gone);
  return keep;
}

/* File s (PROT_NONE, off every list) as reusable, coalescing. [lock] */
static void uarena_ready_insert(gc_heap_t *h, gc_span_t *s) {
  struct uarena_heap *ua = h->uarena;
  uarena_chunk_t *c = UA_CHUNK(s);
  c->owner = NULL;
  atomic_store(&c->seen, 0);
  atomic_store(&c->cstate, UA_READY);
  ua->ready_bytes += chunk_bytes(s);
  gc_span_t *n = uarena_ready_at(h, s->base + chunk_bytes(s));
  if (n) {
    ulist_remove(&ua->ready, n);
    s = uarena_merge(h, s, n);
  }
  gc_span_t *p = uarena_ready_at(h, s->base - GCH_PAGE_SIZE);
  if (p) {
    ulist_remove(&ua->ready, p);
    s = uarena_merge(h, p, s);
  }
  ulist_push(&ua->ready, s);
}

/* A READY chunk of exactly npages: best fit, lowest address on ties, the
 * front part of a larger one split off. [lock] */
static gc_span_t *uarena_ready_take(gc_heap_t *h, size_t npages) {
  struct uarena_heap *ua = h->uarena;
  gc_span_t *best = NULL;
  for (gc_span_t *s = ua->ready; s; s = s->next)
    if (s->npages >= npages &&
        (!best || s->npages < best->npages ||
         (s->npages == best->npages && s->base < best->base)))
      best = s;
  if (!best) return NULL;
  if (best->npages > npages) {
    gc_span_t *r = uarena_rec_new(h, best->base, npages);
    if (!r) return NULL;
    best->base += npages * GCH_PAGE_SIZE;
    best->npages -= npages;
    best->elemsize = chunk_bytes(best);
    best->limit = best->base;
    best->arena = arena_of(h, best->base);
    _gc_arena_set_spans(h, r, r);
    best = r;
  } else {
    ulist_remove(&ua->ready, best);
  }
  ua->ready_bytes -= chunk_bytes(best);
  return best;
}

/* Reserve and index fresh address space for at least npages. [lock] */
static gc_result_t uarena_grow(gc_heap_t *h, size_t npages) {
  size_t bytes = GCH_ALIGN_UP(npages * GCH_PAGE_SIZE, GCH_ARENA_BYTES);
  uintptr_t base;
  gc_result_t r = uarena_reserve(h, bytes, &base);
  if (r != GCH_OK) return r;
  r = uarena_register(h, base, bytes / GCH_ARENA_BYTES);
  if (r != GCH_OK) {
    _gc_os_release(&h->os, (void *)base, bytes);
    return r;
  }
  /* From here the space is indexed and released with the heap. */
  gc_span_t *s = uarena_rec_new(h, base, bytes / GCH_PAGE_SIZE);
  if (!s) return GCH_ENOMEM;
  _gc_arena_set_spans(h, s, s);
  uarena_ready_insert(h, s);
  return GCH_OK;
}

/* --------------------------------------------------------- chunk lifecycle */

static gc_result_t uarena_limit_check(gc_heap_t *h, size_t bytes) {
  size_t limit = h->config.hard_limit;
  if (!limit) return GCH_OK;
  _gc_lock(&h->lock);
  bool over;
  gc_result_t r = _gc_scavenge_make_room(h, bytes, &over);
  _gc_unlock(&h->lock);
  return r;
}

/* Reserved -> Ready for a chunk being handed out. */
static int uarena_chunk_map(gc_heap_t *h, gc_span_t *s) {
  void *p = (void *)s->base;
  if (_gc_os_map(&h->os, p, chunk_bytes(s)) != 0) return -1;
  if (_gc_os_commit(&h->os, p, chunk_bytes(s)) != 0) {
    (void)_gc_os_fault(&h->os, p, chunk_bytes(s), 0);
    return -1;
  }
  return 0;
}

/* Make s (mapped) a live chunk of a.  An arena's first chunk starts with
 * the small-page window; later ones (the arena has proven big) are opened
 * whole on huge pages. [lock] */
static void uarena_chunk_attach(gc_heap_t *h, gc_arena_t *a, gc_span_t *s) {
  struct uarena_heap *ua = h->uarena;
  size_t bytes = chunk_bytes(s);
  uarena_chunk_t *c = UA_CHUNK(s);
  s->limit = s->base + UARENA_BITMAP_BYTES(bytes);
  c->owner = a;
  c->lo = s->limit;
  if (a->chunks) {
    c->wtop = chunk_end(s);
    _gc_os_hugepages(&h->os, (void *)s->base, bytes);
  } else {
    c->wtop = GCH_MAX(s->limit, GCH_MIN(s->base + UA_FIRST_WINDOW, chunk_end(s)));
  }
  c->hi = c->wtop;
  atomic_store(&c->seen, 0);
  atomic_store(&c->cstate, UA_LIVE_CHUNK);
  ulist_push(&a->chunks, s);
  ua->live_bytes += bytes;
  ua->live_chunks++;
}

/* A fresh live chunk of npages for a, or NULL with *err set. */
static gc_span_t *uarena_chunk_get(gc_heap_t *h, gc_arena_t *a, size_t npages,
                                   gc_result_t *err) {
  struct uarena_heap *ua = h->uarena;
  gc_span_t *s = NULL;
  _gc_lock(&ua->lock);
  *err = uarena_limit_check(h, npages * GCH_PAGE_SIZE);
  if (*err == GCH_OK) {
    s = uarena_ready_take(h, npages);
    if (!s && (*err = uarena_grow(h, npages)) == GCH_OK)
      s = uarena_ready_take(h, npages);
    if (!s && *err == GCH_OK) *err = GCH_ENOMEM;
  }
  if (s && uarena_chunk_map(h, s) != 0) {
    uarena_ready_insert(h, s);
    s = NULL;
    *err = GCH_ENOMEM;
  }
  if (s) uarena_chunk_attach(h, a, s);
  _gc_unlock(&ua->lock);
  return s;
}

/* Fault a freed chunk and file it in quarantine. [lock] */
static void uarena_chunk_quarantine(gc_heap_t *h, gc_span_t *s) {
  struct uarena_heap *ua = h->uarena;
  size_t bytes = chunk_bytes(s);
  uarena_chunk_t *c = UA_CHUNK(s);
  /* If the kernel refuses (vm.max_map_count), the pages are still dropped
   * and read as zero; the quarantine keeps the address unused either way. */
  (void)_gc_os_fault(&h->os, (void *)s->base, bytes, 1);
  c->owner = NULL;
  c->qepoch = ua->mark_epoch;
  atomic_store(&c->seen, 0);
  atomic_store(&c->cstate, UA_QUARANTINED);
  ulist_push(&ua->quarantine, s);
  ua->live_bytes -= bytes;
  ua->live_chunks--;
  ua->quar_chunks++;
  atomic_fetch_add(&ua->nquarantined, bytes);
}

/* ------------------------------------------------------------ allocation */

static bool uarena_can_collect(gc_heap_t *h, gc_thread_t *t) {
  return !atomic_load(&h->collecting) && !t->in_callback;
}

/* Enough freed address space waits: a cycle lets it be reused (unless
 * automatic collection is off; then gc_collect does it). */
static void uarena_maybe_collect(gc_heap_t *h, gc_thread_t *t) {
  size_t q = atomic_load_explicit(&h->uarena->nquarantined, memory_order_relaxed);
  if (q >= UARENA_QUARANTINE_TRIGGER && h->config.gc_percent >= 0 &&
      uarena_can_collect(h, t))
    _gc_collect_internal(h, t, false);
}

/* Where a chunk's bump pointers live: the arena record for the current
 * chunk, the chunk record otherwise. */
static void uarena_window(gc_arena_t *a, gc_span_t *s, uintptr_t **lo,
                          uintptr_t **hi) {
  *lo = s == a->cur ? &a->lo : &UA_CHUNK(s)->lo;
  *hi = s == a->cur ? &a->hi : &UA_CHUNK(s)->hi;
}

/* Free bytes of s: the window plus what is not opened yet. */
static size_t uarena_room(gc_arena_t *a, gc_span_t *s) {
  uintptr_t *lo, *hi;
  uarena_window(a, s, &lo, &hi);
  return (*hi - *lo) + (chunk_end(s) - UA_CHUNK(s)->wtop);
}

/* Open the rest of s as the window, on huge pages, if size then fits;
 * false otherwise.  The free part of the old window is kept when no noscan
 * object sits above it, else skipped (it stays zero, no pointer bits). */
static bool uarena_open_rest(gc_heap_t *h, gc_arena_t *a, gc_span_t *s,
                             size_t size) {
  uarena_chunk_t *c = UA_CHUNK(s);
  uintptr_t end = chunk_end(s), *lo, *hi;
  if (c->wtop == end) return false;
  uarena_window(a, s, &lo, &hi);
  uintptr_t new_lo = *hi != c->wtop ? c->wtop : *lo;
  if (size > end - new_lo) return false;
  *lo = new_lo;
  *hi = end;
  _gc_os_hugepages(&h->os, (void *)c->wtop, end - c->wtop);
  c->wtop = end;
  return true;
}

/* Bump-allocate size bytes in the window [*lo, *hi) of the chunk at base
 * (the caller checked the room). */
GCH_INLINE uintptr_t uarena_bump(uintptr_t *lo, uintptr_t *hi, uintptr_t base,
                                 size_t size, const gc_type_t *type, size_t n,
                                 bool noscan) {
  if (noscan) return *hi -= size;
  uintptr_t p = *lo;
  *lo = p + size;
  uarena_set_bits((uint64_t *)base, (p - base) / 8, type, n);
  return p;
}

/* Make s the current chunk unless the current one has more room. */
static void uarena_pick_current(gc_arena_t *a, gc_span_t *s) {
  if (a->cur == s || (a->cur && uarena_room(a, a->cur) >= uarena_room(a, s)))
    return;
  if (a->cur) {
    UA_CHUNK(a->cur)->lo = a->lo;
    UA_CHUNK(a->cur)->hi = a->hi;
  }
  a->cur = s;
  a->lo = UA_CHUNK(s)->lo;
  a->hi = UA_CHUNK(s)->hi;
  a->base = s->base;
}

/* Allocate in s (which has room for size once opened), then pick the
 * current chunk. */
static void *uarena_alloc_in(gc_heap_t *h, gc_arena_t *a, gc_span_t *s,
                             size_t size, const gc_type_t *type, size_t n,
                             bool noscan) {
  uintptr_t *lo, *hi;
  uarena_window(a, s, &lo, &hi);
  if (size > *hi - *lo) uarena_open_rest(h, a, s, size);
  uarena_window(a, s, &lo, &hi);
  uintptr_t p = uarena_bump(lo, hi, s->base, size, type, n, noscan);
  uarena_pick_current(a, s);
  return (void *)p;
}

static GCH_NOINLINE void *uarena_alloc_slow(gc_arena_t *a, size_t size,
                                            const gc_type_t *type, size_t n,
                                            bool noscan) {
  gc_heap_t *h = a->heap;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) {
    _gc_set_error(h, NULL, GCH_ENOTATTACHED);
    return NULL;
  }
  /* The current chunk may still have an unopened tail. */
  if (a->cur && uarena_open_rest(h, a, a->cur, size))
    return (void *)uarena_bump(&a->lo, &a->hi, a->base, size, type, n, noscan);
  gc_safepoint(h);
  uarena_maybe_collect(h, t);
  size_t npages = uarena_pages_for(size);
  gc_result_t err;
  gc_span_t *s = uarena_chunk_get(h, a, npages, &err);
  if (!s && err == GCH_ENOMEM && uarena_can_collect(h, t) &&
      atomic_load(&h->uarena->nquarantined)) {
    _gc_collect_internal(h, t, false); /* quarantined space may come back */
    s = uarena_chunk_get(h, a, npages, &err);
  }
  if (!s) {
    _gc_set_error(h, t, err);
    return NULL;
  }
  return uarena_alloc_in(h, a, s, size, type, n, noscan);
}

/* The error for a NULL, freed or foreign arena handle (or NULL type). */
static GCH_NOINLINE void *uarena_bad(gc_arena_t *a) {
  if (a && a->magic == UA_FREED) uarena_error(a->heap, GCH_EDOUBLEFREE);
  else if (a && a->magic == UA_LIVE) uarena_error(a->heap, GCH_EINVAL);
  else _gc_set_error_all(GCH_EINVAL);
  return NULL;
}

static GCH_NOINLINE void *uarena_overflow(gc_arena_t *a) {
  uarena_error(a->heap, GCH_EOVERFLOW);
  return NULL;
}

GCH_API void *gc_arena_alloc(gc_arena_t *a, const gc_type_t *type, size_t n) {
  size_t size;
  if (gch_unlikely(!a || a->magic != UA_LIVE || !type)) return uarena_bad(a);
  if (gch_unlikely(__builtin_mul_overflow(type->size, n, &size) ||
                   size > UARENA_ALLOC_MAX))
    return uarena_overflow(a);
  if (gch_unlikely(size == 0)) size = 8; /* n == 0: a unique pointer */
  if (type->noscan) {
    if (gch_likely(size <= a->hi - a->lo)) return (void *)(a->hi -= size);
    return uarena_alloc_slow(a, size, type, n, true);
  }
  uintptr_t p = a->lo;
  if (gch_likely(size <= a->hi - p)) {
    a->lo = p + size;
    uarena_set_bits((uint64_t *)a->base, (p - a->base) / 8, type, n);
    return (void *)p;
  }
  return uarena_alloc_slow(a, size, type, n, false);
}

GCH_API void *gc_arena_alloc_bytes(gc_arena_t *a, size_t size) {
  if (gch_unlikely(!a || a->magic != UA_LIVE)) return uarena_bad(a);
  if (gch_unlikely(size > UARENA_ALLOC_MAX)) return uarena_overflow(a);
  size = size ? GCH_ALIGN_UP(size, 8) : 8;
  if (gch_likely(size <= a->hi - a->lo)) return (void *)(a->hi -= size);
  return uarena_alloc_slow(a, size, NULL, 0, true);
}

/* ------------------------------------------------------- create and free */

GCH_API gc_arena_t *gc_arena_new(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return NULL;
  if (!_gc_thread_current(h)) {
    _gc_set_error(h, NULL, GCH_ENOTATTACHED);
    return NULL;
  }
  struct uarena_heap *ua = h->uarena;
  _gc_lock(&ua->lock);
  _gc_lock(&h->lock);
  gc_arena_t *a = _gc_fixalloc_alloc(&ua->arena_alloc);
  _gc_unlock(&h->lock);
  if (a) {
    a->magic = UA_LIVE;
    a->heap = h;
    a->prev = NULL;
    a->next = ua->live;
    if (ua->live) ua->live->prev = a;
    ua->live = a;
    ua->narenas++;
  }
  _gc_unlock(&ua->lock);
  if (!a) uarena_error(h, GCH_ENOMEM);
  return a;
}

/* Keep the freed record a while (double free detection), recycling the
 * oldest beyond UARENA_GRAVEYARD_MAX. [lock] */
static void uarena_bury(gc_heap_t *h, gc_arena_t *a) {
  struct uarena_heap *ua = h->uarena;
  a->next = NULL;
  if (ua->grave_tail) ua->grave_tail->next = a;
  else ua->grave_head = a;
  ua->grave_tail = a;
  if (++ua->ngrave <= UARENA_GRAVEYARD_MAX) return;
  gc_arena_t *old = ua->grave_head;
  ua->grave_head = old->next;
  ua->ngrave--;
  old->magic = 0;
  _gc_lock(&h->lock);
  _gc_fixalloc_free(&ua->arena_alloc, old);
  _gc_unlock(&h->lock);
}

GCH_API gc_result_t gc_arena_free(gc_arena_t *a) {
  if (!a || (a->magic != UA_LIVE && a->magic != UA_FREED)) {
    _gc_set_error_all(GCH_EINVAL);
    return GCH_EINVAL;
  }
  gc_heap_t *h = a->heap;
  if (a->magic == UA_FREED) {
    uarena_error(h, GCH_EDOUBLEFREE);
    return GCH_EDOUBLEFREE;
  }
  if (!_gc_thread_current(h)) {
    _gc_set_error(h, NULL, GCH_ENOTATTACHED);
    return GCH_ENOTATTACHED;
  }
  struct uarena_heap *ua = h->uarena;
  _gc_lock(&ua->lock);
  while (a->chunks) {
    gc_span_t *s = a->chunks;
    ulist_remove(&a->chunks, s);
    uarena_chunk_quarantine(h, s);
  }
  a->cur = NULL;
  a->lo = a->hi = a->base = 0;
  if (a->prev) a->prev->next = a->next;
  else ua->live = a->next;
  if (a->next) a->next->prev = a->prev;
  ua->narenas--;
  a->magic = UA_FREED;
  uarena_bury(h, a);
  _gc_unlock(&ua->lock);
  return GCH_OK;
}

/* ------------------------------------------------------- collector hooks */

int _gc_userarena_init(gc_heap_t *h) {
  struct uarena_heap *ua = _gc_persistent_alloc(&h->meta, sizeof *ua, 64);
  if (!ua) return -1;
  _gc_lock_init(&ua->lock);
  _gc_fixalloc_init(&ua->chunk_alloc, &h->meta,
                    sizeof(gc_span_t) + sizeof(uarena_chunk_t));
  _gc_fixalloc_init(&ua->arena_alloc, &h->meta, sizeof(gc_arena_t));
  /* No hint when the heap uses none (ThreadSanitizer builds). */
  ua->hint = h->arena_hint ? h->arena_hint + UA_HINT_OFFSET : 0;
  h->uarena = ua;
  return 0;
}

/* Every mapping is inside h->resv and every record in h->meta: both go
 * with the heap. */
void _gc_userarena_destroy(gc_heap_t *h) {
  if (h->uarena) _gc_lock_destroy(&h->uarena->lock);
  h->uarena = NULL;
}

static void uarena_bounds(const gc_arena_t *a, gc_span_t *s, uintptr_t *lo,
                          uintptr_t *hi) {
  if (s == a->cur) {
    *lo = a->lo;
    *hi = a->hi;
  } else {
    *lo = UA_CHUNK(s)->lo;
    *hi = UA_CHUNK(s)->hi;
  }
}

/* Shade every pointer word of chunk s below lo (its bitmap is at base;
 * the bitmap's own words have no bits set). */
static void uarena_scan(gc_heap_t *h, gcwork_t *w, const gc_span_t *s,
                        uintptr_t lo) {
  const uintptr_t *words = (const uintptr_t *)s->base;
  const uint64_t *bits = (const uint64_t *)s->base;
  size_t nw = (lo - s->base) / 8;
  for (size_t i = (s->limit - s->base) / 8; i < nw; i += 64) {
    uint64_t m = bits[i / 64];
    if (nw - i < 64) m &= ((uint64_t)1 << (nw - i)) - 1;
    while (m) {
      uintptr_t v = words[i + gch_ctz64(m)];
      m &= m - 1;
      if (v) _gc_mark_value(h, w, v);
    }
  }
  w->scan_bytes += lo - s->limit;
}

void _gc_userarena_mark_roots(gc_heap_t *h, gcwork_t *w) {
  struct uarena_heap *ua = h->uarena;
  _gc_lock(&ua->lock);
  /* Once per cycle: a second root scan in the same cycle (checkmark) must
   * not make chunks freed during this mark look older than it. */
  uint64_t cycle = atomic_load(&h->cycles) + 1;
  if (ua->epoch_cycle != cycle) {
    ua->epoch_cycle = cycle;
    ua->mark_epoch++;
  }
  for (gc_arena_t *a = ua->live; a; a = a->next) {
    for (gc_span_t *s = a->chunks; s; s = s->next) {
      uintptr_t lo, hi;
      uarena_bounds(a, s, &lo, &hi);
      uarena_scan(h, w, s, lo);
      w->marked_bytes += (lo - s->limit) + (UA_CHUNK(s)->wtop - hi);
    }
  }
  _gc_unlock(&ua->lock);
}

void _gc_userarena_note_slow(gc_heap_t *h, uintptr_t p) {
  gc_span_t *s = span_of(h, p);
  if (!s || atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_USER_ARENA)
    return;
  uarena_chunk_t *c = UA_CHUNK(s);
  if (atomic_load_explicit(&c->cstate, memory_order_relaxed) != UA_QUARANTINED)
    return;
  if (!atomic_load_explicit(&c->seen, memory_order_relaxed))
    atomic_store_explicit(&c->seen, 1, memory_order_relaxed);
}

void _gc_userarena_mark_done(gc_heap_t *h) {
  struct uarena_heap *ua = h->uarena;
  _gc_lock(&ua->lock);
  gc_span_t *next;
  for (gc_span_t *s = ua->quarantine; s; s = next) {
    next = s->next; /* quarantined: never merged away below */
    uarena_chunk_t *c = UA_CHUNK(s);
    if (c->qepoch >= ua->mark_epoch || atomic_load(&c->seen)) {
      atomic_store(&c->seen, 0);
      continue;
    }
    ulist_remove(&ua->quarantine, s);
    ua->quar_chunks--;
    ua->released_chunks++;
    atomic_fetch_sub(&ua->nquarantined, chunk_bytes(s));
    uarena_ready_insert(h, s);
  }
  _gc_unlock(&ua->lock);
}

/* ----------------------------------------------------- stats and checks */

void _gc_userarena_stats(gc_heap_t *h, gc_stats_t *out) {
  struct uarena_heap *ua = h->uarena;
  _gc_lock(&ua->lock);
  out->arena_bytes_live = ua->live_bytes;
  out->arena_bytes_quarantined = atomic_load(&ua->nquarantined);
  out->arena_bytes_free = ua->ready_bytes;
  out->arena_chunks_live = ua->live_chunks;
  out->arena_chunks_quarantined = ua->quar_chunks;
  out->arena_chunks_released = ua->released_chunks;
  out->arenas_live = ua->narenas;
  _gc_unlock(&ua->lock);
}

void _gc_userarena_trace(gc_heap_t *h, char *buf, size_t len) {
  struct uarena_heap *ua = h->uarena;
  _gc_lock(&ua->lock);
  size_t live = ua->live_bytes, quar = atomic_load(&ua->nquarantined);
  _gc_unlock(&ua->lock);
  buf[0] = 0;
  if (live || quar)
    snprintf(buf, len, ", arena %.1f MB live %.1f MB quarantined",
             (double)live / (1 << 20), (double)quar / (1 << 20));
}

static int uarena_bad_check(char *msg, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, len, fmt, ap);
  va_end(ap);
  return 1;
}

/* A chunk record in state `cs`, every page of it mapping to it. */
static int uarena_check_chunk(gc_heap_t *h, gc_span_t *s, int cs, char *msg,
                              size_t len) {
  if (atomic_load(&s->state) != SPAN_USER_ARENA ||
      atomic_load(&UA_CHUNK(s)->cstate) != cs)
    return uarena_bad_check(msg, len, "user-arena chunk %p: state %d/%d, "
                            "expected %d", (void *)s->base,
                            (int)atomic_load(&s->state),
                            (int)atomic_load(&UA_CHUNK(s)->cstate), cs);
  for (size_t pg = 0; pg < s->npages; pg++) {
    uintptr_t p = s->base + pg * GCH_PAGE_SIZE;
    heap_arena_t *a = arena_of(h, p);
    if (!a || !a->user_arena || span_of(h, p) != s)
      return uarena_bad_check(msg, len, "user-arena chunk %p: page %p does "
                              "not map to it", (void *)s->base, (void *)p);
  }
  return 0;
}

/* Pointer words of a live chunk: NULL, outside the heap, or an object. */
static int uarena_check_words(gc_heap_t *h, gc_span_t *s, uintptr_t lo,
                              char *msg, size_t len) {
  const uint64_t *bits = (const uint64_t *)s->base;
  const uintptr_t *words = (const uintptr_t *)s->base;
  size_t nw = (lo - s->base) / 8;
  for (size_t i = 0; i < nw; i++) {
    uintptr_t v = words[i];
    if (!bit_get(bits, i) || !v || (v & 7)) continue;
    gc_span_t *hs = span_of(h, v), *fs;
    size_t idx;
    if (!hs || atomic_load(&hs->state) != SPAN_IN_USE) continue;
    if (v < hs->base || v >= hs->limit) continue;
    if (!_gc_find_object(h, v, &fs, &idx))
      return uarena_bad_check(msg, len, "user-arena word at %p points to %p, "
                              "a free slot of span %p: dangling pointer",
                              (void *)&words[i], (void *)v, (void *)hs->base);
  }
  return 0;
}

static int uarena_check_live(gc_heap_t *h, char *msg, size_t len,
                             size_t *bytes) {
  for (gc_arena_t *a = h->uarena->live; a; a = a->next) {
    if (a->magic != UA_LIVE || a->heap != h)
      return uarena_bad_check(msg, len, "live arena %p: bad record", (void *)a);
    bool cur_found = a->cur == NULL;
    for (gc_span_t *s = a->chunks; s; s = s->next) {
      uintptr_t lo, hi;
      uarena_bounds(a, s, &lo, &hi);
      cur_found |= s == a->cur;
      *bytes += chunk_bytes(s);
      if (uarena_check_chunk(h, s, UA_LIVE_CHUNK, msg, len)) return 1;
      uintptr_t wtop = UA_CHUNK(s)->wtop;
      if (UA_CHUNK(s)->owner != a || lo < s->limit || lo > hi || hi > wtop ||
          wtop > chunk_end(s) || lo % 8 || hi % 8)
        return uarena_bad_check(msg, len, "user-arena chunk %p: bad owner or "
                                "bounds", (void *)s->base);
      if (uarena_check_words(h, s, lo, msg, len)) return 1;
    }
    if (!cur_found)
      return uarena_bad_check(msg, len, "arena %p: current chunk not on its "
                              "list", (void *)a);
  }
  return 0;
}

static int uarena_check_list(gc_heap_t *h, gc_span_t *head, int cs,
                             size_t *bytes, char *msg, size_t len) {
  for (gc_span_t *s = head; s; s = s->next) {
    *bytes += chunk_bytes(s);
    if (uarena_check_chunk(h, s, cs, msg, len)) return 1;
  }
  return 0;
}

int _gc_userarena_check(gc_heap_t *h, char *msg, size_t len) {
  struct uarena_heap *ua = h->uarena;
  size_t live = 0, quar = 0, ready = 0;
  _gc_lock(&ua->lock);
  int bad = uarena_check_live(h, msg, len, &live) ||
            uarena_check_list(h, ua->quarantine, UA_QUARANTINED, &quar, msg, len) ||
            uarena_check_list(h, ua->ready, UA_READY, &ready, msg, len);
  if (!bad && (live != ua->live_bytes || quar != atomic_load(&ua->nquarantined) ||
               ready != ua->ready_bytes))
    bad = uarena_bad_check(msg, len, "user-arena byte counts disagree with "
                           "the chunk lists");
  _gc_unlock(&ua->lock);
  return bad;
}
