/*
 * mark.c -- tri-colour marking: work buffers, shading, scanning objects by
 * their pointer maps.  See gc.c for the overview.
 *
 * Colours: white = mark bit clear; grey = mark bit set and the object's
 * slot address in some work buffer (or a pointerless object, which is black
 * at once); black = marked and scanned.  Mark bits are set with an atomic
 * OR so several markers can run at once; a marker that loses the race for a
 * bit does not queue the object.
 *
 * Grey objects live in 2 KiB work buffers; each marker owns a pair (gcwork)
 * and trades full and empty buffers through two lock-free stacks.  Noscan
 * spans are never queued.  Large objects are scanned in 128 KiB oblets:
 * the first visit queues the rest, so several markers can share one huge
 * array.
 */
#include "gc/gcint.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------- work buffers */

/* Work buffers set aside when the heap is created, so that ordinary
 * collections never need the OS for them.  A mark that needs more than
 * this and cannot get it aborts (see work_get_empty). */
#define WORKBUF_RESERVE 64

int _gc_work_init(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  lfstack_init(&g->full);
  lfstack_init(&g->empty);
  _gc_lock_init(&g->wb_lock);
  _gc_persistent_init(&g->wb_mem, &h->os);
  for (int i = 0; i < WORKBUF_RESERVE; i++) {
    workbuf_t *b = _gc_persistent_alloc(&g->wb_mem, sizeof *b, 64);
    if (!b) return -1;
    g->wb_count++;
    lfstack_push(&g->empty, &b->node);
  }
  return 0;
}

static workbuf_t *work_get_empty(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  workbuf_t *b = (workbuf_t *)lfstack_pop(&g->empty);
  if (!b) {
    _gc_lock(&g->wb_lock);
    b = _gc_persistent_alloc(&g->wb_mem, sizeof *b, 64);
    if (b) g->wb_count++;
    _gc_unlock(&g->wb_lock);
    /* Marking cannot stop half way without losing objects, and cannot
     * go on without somewhere to keep grey objects. */
    if (!b) gch_throw("out of memory for mark work buffers (more grey objects than the reserve holds)");
  }
  b->n = 0;
  return b;
}

void _gc_work_put(gc_heap_t *h, gcwork_t *w, uintptr_t obj) {
  workbuf_t *b = w->w1;
  if (gch_unlikely(!b || b->n == WORKBUF_N)) {
    workbuf_t *t = w->w1;
    w->w1 = w->w2;
    w->w2 = t;
    b = w->w1;
    if (!b || b->n == WORKBUF_N) {
      if (b) lfstack_push(&h->gc->full, &b->node);
      b = w->w1 = work_get_empty(h);
    }
  }
  b->obj[b->n++] = obj;
}

uintptr_t _gc_work_get(gc_heap_t *h, gcwork_t *w) {
  workbuf_t *b = w->w1;
  if (gch_likely(b && b->n)) return b->obj[--b->n];
  workbuf_t *t = w->w1;
  w->w1 = w->w2;
  w->w2 = t;
  b = w->w1;
  if (b && b->n) return b->obj[--b->n];
  workbuf_t *f = (workbuf_t *)lfstack_pop(&h->gc->full);
  if (!f) return 0;
  if (b) lfstack_push(&h->gc->empty, &b->node);
  w->w1 = f;
  return f->obj[--f->n];
}

/* Return both buffers (they must be empty) to the empty list. */
void _gc_work_dispose(gc_heap_t *h, gcwork_t *w) {
  w->last_target = w->last_scan = NULL;
  workbuf_t *bs[2] = {w->w1, w->w2};
  for (int i = 0; i < 2; i++) {
    if (!bs[i]) continue;
    if (bs[i]->n) lfstack_push(&h->gc->full, &bs[i]->node);
    else lfstack_push(&h->gc->empty, &bs[i]->node);
  }
  w->w1 = w->w2 = NULL;
}

/* The common cases of put and get, inlined into the mark loop: the
 * current buffer has room / has an entry. */
GCH_INLINE void work_put(gc_heap_t *h, gcwork_t *w, uintptr_t obj) {
  workbuf_t *b = w->w1;
  if (gch_likely(b && b->n < WORKBUF_N)) {
    b->obj[b->n++] = obj;
    return;
  }
  _gc_work_put(h, w, obj);
}

GCH_INLINE uintptr_t work_get(gc_heap_t *h, gcwork_t *w) {
  workbuf_t *b = w->w1;
  if (gch_likely(b && b->n)) return b->obj[--b->n];
  return _gc_work_get(h, w);
}

/* --------------------------------------------------------------- shading */

/* Set the mark bit of slot idx; true if this call set it. */
GCH_INLINE bool mark_set(const gcwork_t *w, gc_span_t *s, size_t idx) {
  _Atomic uint64_t *word = (_Atomic uint64_t *)&s->mark_bits[idx >> 6];
  uint64_t bit = (uint64_t)1 << (idx & 63);
  uint64_t old = atomic_load_explicit(word, memory_order_relaxed);
  if (old & bit) return false;
  if (w->exclusive) { /* no other marker: skip the locked instruction */
    atomic_store_explicit(word, old | bit, memory_order_relaxed);
    return true;
  }
  return !(atomic_fetch_or_explicit(word, bit, memory_order_relaxed) & bit);
}

GCH_INLINE void grey_object(gc_heap_t *h, gcwork_t *w, gc_span_t *s,
                            size_t idx) {
  if (!mark_set(w, s, idx)) return;
  w->marked_objects++;
  w->marked_bytes += s->elemsize;
  if (s->layout != LAYOUT_NOSCAN) {
    uintptr_t obj = s->base + idx * s->elemsize;
    __builtin_prefetch((const void *)obj); /* scanned soon: start the miss now */
    work_put(h, w, obj);
  }
}

GCH_INLINE void mark_value(gc_heap_t *h, gcwork_t *w, uintptr_t p) {
  gc_span_t *s;
  size_t idx;
  if (gch_likely(find_object(h, p, &s, &idx))) grey_object(h, w, s, idx);
  else _gc_userarena_note(h, p); /* into a quarantined user-arena chunk? */
}

void _gc_mark_value(gc_heap_t *h, gcwork_t *w, uintptr_t p) { mark_value(h, w, p); }

/* A value from a precise pointer word of a heap object: NULL-checked by
 * the caller, and if it lies on an in-use span it points at an allocated
 * object (the host's contract), so the allocated-slot check is skipped.
 * A host that breaks the contract marks a free slot, which the sweeper
 * reports ("mark on a free slot"). */
GCH_INLINE void mark_precise(gc_heap_t *h, gcwork_t *w, uintptr_t p) {
  gc_span_t *s = w->last_target;
  if (gch_likely(s && p - s->base < s->limit - s->base)) {
    grey_object(h, w, s, span_obj_index(s, p));
    return;
  }
  s = span_of(h, p);
  if (gch_likely(s && atomic_load_explicit(&s->state, memory_order_relaxed) ==
                          SPAN_IN_USE &&
                 p >= s->base && p < s->limit)) {
    w->last_target = s;
    grey_object(h, w, s, span_obj_index(s, p));
    return;
  }
  if (s) _gc_userarena_note(h, p);
}

void _gc_mark_slot(gc_heap_t *h, gcwork_t *w, uintptr_t p, const void *slot) {
  gc_span_t *s;
  size_t idx;
  if (gch_likely(find_object(h, p, &s, &idx))) {
    grey_object(h, w, s, idx);
    return;
  }
  _gc_userarena_note(h, p); /* into a quarantined user-arena chunk? */
#if GCH_DEBUG
  /* A value on an in-use span that is not an allocated object is a
   * dangling pointer: report it with the slot that held it. */
  gc_span_t *sp = p ? span_of(h, p) : NULL;
  if (sp && atomic_load(&sp->state) == SPAN_IN_USE && (p & 7) == 0) {
    fprintf(stderr, "gcheap: precise root slot %p holds %p, which is not an "
                    "allocated object (dangling pointer?)\n", slot, (void *)p);
    gch_throw("bad pointer in a precise root");
  }
#else
  (void)slot;
#endif
}

#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "thread")))
#endif
void _gc_mark_range_conservative(gc_heap_t *h, gcwork_t *w, uintptr_t lo,
                                 uintptr_t hi) {
  lo = GCH_ALIGN_UP(lo, sizeof(uintptr_t));
  for (uintptr_t a = lo; a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t))
    _gc_mark_value(h, w, *(const volatile uintptr_t *)a);
}

/* -------------------------------------------------------------- scanning */

/* Object words and heap bits are read with relaxed atomic loads: in the
 * concurrent mode mutators store into them (gc_write stores atomically
 * too) while markers read.  On every target these are plain loads. */
GCH_INLINE uintptr_t mark_load(const uintptr_t *p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
GCH_INLINE uint64_t mark_load64(const uint64_t *p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Scan `nw` words at p whose pointer words follow type's map tiled, the
 * first word being word `first` of an element. */
static void scan_typed(gc_heap_t *h, gcwork_t *w, const uintptr_t *p,
                       const gc_type_t *type, size_t first, size_t nw) {
  if (type->conservative) {
    for (size_t i = 0; i < nw; i++) mark_value(h, w, mark_load(&p[i]));
    return;
  }
  size_t tw = type->nwords, k = first % tw;
  for (size_t i = 0; i < nw; i++) {
    if ((type->map[k >> 6] >> (k & 63)) & 1) {
      uintptr_t v = mark_load(&p[i]);
      if (v) mark_precise(h, w, v);
    }
    if (++k == tw) k = 0;
  }
}

static void scan_heapbits(gc_heap_t *h, gcwork_t *w, gc_span_t *s,
                          uintptr_t b) {
  size_t nw = s->elemsize / 8;
  size_t wi = (b - s->base) / 8;
  const uintptr_t *p = (const uintptr_t *)b;
  uint64_t bits = mark_load64(&s->heap_bits[wi / 64]) >> (wi % 64);
  if (wi % 64 + nw > 64)
    bits |= mark_load64(&s->heap_bits[wi / 64 + 1]) << (64 - wi % 64);
  if (nw < 64) bits &= ((uint64_t)1 << nw) - 1;
  if (gch_unlikely(__atomic_load_n(&s->conservative, __ATOMIC_RELAXED))) {
    while (bits) {
      unsigned i = gch_ctz64(bits);
      bits &= bits - 1;
      uintptr_t v = mark_load(&p[i]);
      if (v) mark_value(h, w, v);
    }
    return;
  }
  while (bits) {
    unsigned i = gch_ctz64(bits);
    bits &= bits - 1;
    uintptr_t v = mark_load(&p[i]);
    if (v) mark_precise(h, w, v);
  }
}

static void scan_large(gc_heap_t *h, gcwork_t *w, gc_span_t *s, uintptr_t b) {
  const gc_type_t *type = s->large_type;
  if (!type) return;
  uintptr_t end = s->base + type->size * s->large_count;
  if (b == s->base && end - b > OBLET_BYTES) {
    /* Queue the other oblets; scan the first one now. */
    for (uintptr_t o = b + OBLET_BYTES; o < end; o += OBLET_BYTES)
      work_put(h, w, o);
  }
  uintptr_t stop = GCH_MIN(end, b + OBLET_BYTES);
  if (stop <= b) return;
  size_t first = (b - s->base) / 8;
  w->scan_bytes += stop - b;
  scan_typed(h, w, (const uintptr_t *)b, type, first, (stop - b) / 8);
}

/* Scan the object (or oblet) at b, a slot address taken from a buffer. */
GCH_INLINE void scan_object(gc_heap_t *h, gcwork_t *w, uintptr_t b) {
  gc_span_t *s = w->last_scan;
  if (!s || b - s->base >= s->npages * GCH_PAGE_SIZE) w->last_scan = s = span_of(h, b);
  switch (s->layout) {
  case LAYOUT_HEAPBITS:
    w->scan_bytes += s->elemsize;
    scan_heapbits(h, w, s, b);
    break;
  case LAYOUT_HEADER: {
    const gc_type_t *type = *(const gc_type_t *const *)b;
    w->scan_bytes += s->elemsize;
    if (type) scan_typed(h, w, (const uintptr_t *)(b + GCH_HEADER_BYTES), type, 0,
                         (s->elemsize - GCH_HEADER_BYTES) / 8);
    break;
  }
  case LAYOUT_LARGE:
    scan_large(h, w, s, b);
    break;
  default:
    break;
  }
}

void _gc_scan_object(gc_heap_t *h, gcwork_t *w, uintptr_t b) { scan_object(h, w, b); }

void _gc_mark_drain(gc_heap_t *h, gcwork_t *w) {
  uintptr_t b;
  while ((b = work_get(h, w)) != 0) scan_object(h, w, b);
}
