/*
 * verify.c -- gc_verify: walk the whole heap with the world stopped and
 * check its invariants, reporting the first violation.
 *
 * Checked:
 *  - the page allocator's summaries agree with its bitmaps;
 *  - every page of an in-use span maps to it, the span's first page is
 *    marked in use in its arena and in the page allocator;
 *  - span fields are consistent (freeindex <= nelems, alloc_count equals
 *    the allocated slots, limit inside the span, sweepgen one of the legal
 *    values);
 *  - no marked-but-free slot in a span waiting to be swept;
 *  - every precise pointer word of a live object is NULL, outside the
 *    heap, or points at an allocated object (a dangling pointer otherwise).
 *    "Live" means allocated in a swept span, or marked in an unswept one:
 *    an unswept, unmarked object is garbage that may point at freed slots.
 *    Conservative objects are checked too (whatever they point at was
 *    marked); values that are not 8-aligned (tagged integers) are skipped.
 *  - user-arena chunks (not in-use spans, so the walk below skips them and
 *    pointers into them are not dangling) by _gc_userarena_check: chunk
 *    records, lists, counters, and the pointer words of live chunks.
 */
#include "gc/gcint.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct verify {
  gc_heap_t *h;
  FILE *out;
  int failed;
  uint32_t sg;
  size_t spans, objects;
} verify_t;

static void verify_fail(verify_t *v, const char *fmt, ...) {
  if (v->failed++) return;
  if (!v->out) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(v->out, "gc_verify: ");
  vfprintf(v->out, fmt, ap);
  fprintf(v->out, "\n");
  va_end(ap);
}

static size_t verify_count_allocated(const gc_span_t *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->nelems; i++) n += span_is_allocated(s, i);
  return n;
}

static void verify_pointer(verify_t *v, const gc_span_t *from, uintptr_t at,
                           uintptr_t p) {
  if (!p || (p & 7)) return;
  gc_span_t *s = span_of(v->h, p);
  if (!s || atomic_load(&s->state) != SPAN_IN_USE) return;
  if (p < s->base || p >= s->limit) return; /* span tail (heap bits) */
  gc_span_t *ts;
  size_t idx;
  if (!_gc_find_object(v->h, p, &ts, &idx))
    verify_fail(v, "word at %p (object in span %p, class %u) points to %p, "
                   "a free slot of span %p: dangling pointer",
                (void *)at, (void *)from->base, from->spanclass >> 1,
                (void *)p, (void *)s->base);
}

static void verify_words(verify_t *v, const gc_span_t *s, uintptr_t p,
                         const gc_type_t *type, size_t first, size_t nw) {
  if (!type) return;
  for (size_t i = 0; i < nw; i++) {
    size_t k = (first + i) % type->nwords;
    if (type->conservative || ((type->map[k >> 6] >> (k & 63)) & 1))
      verify_pointer(v, s, p + 8 * i, ((const uintptr_t *)p)[i]);
  }
}

static void verify_object(verify_t *v, const gc_span_t *s, size_t idx) {
  uintptr_t slot = s->base + idx * s->elemsize;
  v->objects++;
  switch (s->layout) {
  case LAYOUT_HEAPBITS: {
    size_t nw = s->elemsize / 8, w0 = (slot - s->base) / 8;
    for (size_t i = 0; i < nw; i++)
      if (bit_get(s->heap_bits, w0 + i))
        verify_pointer(v, s, slot + 8 * i, ((const uintptr_t *)slot)[i]);
    break;
  }
  case LAYOUT_HEADER: {
    const gc_type_t *t = *(const gc_type_t *const *)slot;
    if (!t) verify_fail(v, "object at %p has no type header", (void *)slot);
    else verify_words(v, s, slot + GCH_HEADER_BYTES, t, 0,
                      (s->elemsize - GCH_HEADER_BYTES) / 8);
    break;
  }
  case LAYOUT_LARGE:
    if (s->large_type)
      verify_words(v, s, slot, s->large_type, 0,
                   s->large_type->size * s->large_count / 8);
    break;
  default:
    break;
  }
}

static void verify_span(verify_t *v, gc_span_t *s) {
  gc_heap_t *h = v->h;
  v->spans++;
  for (size_t pg = 0; pg < s->npages; pg++) {
    uintptr_t a = s->base + pg * GCH_PAGE_SIZE;
    if (span_of(h, a) != s)
      verify_fail(v, "page %p of span %p does not map to it", (void *)a,
                  (void *)s->base);
    if (!_gc_pages_in_use(&h->pages, a))
      verify_fail(v, "page %p of span %p is free in the page allocator",
                  (void *)a, (void *)s->base);
  }
  if (s->freeindex > s->nelems)
    verify_fail(v, "span %p: freeindex %u > nelems %u", (void *)s->base,
                s->freeindex, s->nelems);
  if (s->limit > s->base + s->npages * GCH_PAGE_SIZE)
    verify_fail(v, "span %p: limit beyond its pages", (void *)s->base);
  uint32_t ssg = atomic_load(&s->sweepgen);
  bool unswept = ssg == v->sg - 2;
  if (ssg != v->sg && !unswept && ssg != v->sg + 3 && ssg != v->sg + 1)
    verify_fail(v, "span %p: sweepgen %u illegal (heap %u)", (void *)s->base,
                ssg, v->sg);
  size_t n = verify_count_allocated(s);
  if (n != s->alloc_count)
    verify_fail(v, "span %p (class %u): alloc_count %u but %zu slots allocated",
                (void *)s->base, s->spanclass >> 1, s->alloc_count, n);
  for (size_t i = 0; i < s->nelems; i++) {
    bool alloc = span_is_allocated(s, i), marked = bit_get(s->mark_bits, i);
    if (marked && !alloc)
      verify_fail(v, "span %p slot %zu is marked but free", (void *)s->base, i);
    if (alloc && (!unswept || marked)) verify_object(v, s, i);
  }
  if (!unswept)
    for (size_t i = 0; i < (s->nelems + 63u) / 64; i++)
      if (s->mark_bits[i])
        verify_fail(v, "span %p: mark bits left set after sweeping",
                    (void *)s->base);
}

static void verify_arena(verify_t *v, heap_arena_t *a) {
  for (size_t pg = 0; pg < GCH_ARENA_PAGES; pg++) {
    gc_span_t *s = atomic_load(&a->spans[pg]);
    if (!s || atomic_load(&s->state) != SPAN_IN_USE) continue;
    if (s->base != a->base + pg * GCH_PAGE_SIZE) continue; /* not first page */
    if (!bit_get(a->page_in_use, pg))
      verify_fail(v, "span %p: first page not marked in use", (void *)s->base);
    verify_span(v, s);
  }
}

gc_result_t _gc_verify_stopped(gc_heap_t *h, FILE *out) {
  verify_t v = {.h = h, .out = out, .sg = atomic_load(&h->sweepgen)};
  char msg[256];
  _gc_lock(&h->lock);
  if (_gc_pages_check(&h->pages, msg, sizeof msg) != 0)
    verify_fail(&v, "page allocator: %s", msg);
  _gc_unlock(&h->lock);
  if (_gc_userarena_check(h, msg, sizeof msg) != 0) verify_fail(&v, "%s", msg);
  for (struct arena_resv *r = h->resv; r; r = r->next)
    for (uintptr_t a = r->base; a < r->base + r->bytes; a += GCH_ARENA_BYTES)
      verify_arena(&v, arena_of(h, a));
  return v.failed ? GCH_EVERIFY : GCH_OK;
}

GCH_API gc_result_t gc_verify(gc_heap_t *h, FILE *out) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) return GCH_ENOTATTACHED;
  if (atomic_load(&h->collector) == t) return _gc_verify_stopped(h, out);
  _gc_lock_cycle(h);
  _gc_stop_the_world(h, t);
  gc_result_t r = _gc_verify_stopped(h, out);
  _gc_start_the_world(h);
  pthread_mutex_unlock(&h->gc_lock);
  return r;
}
