/*
 * sweep.c -- sweeping one span: what the last mark left white is freed.
 * See gc.c for when spans are swept and central.c for who owns them.
 *
 * The caller owns the span (sweepgen sg - 1, on no list).  Sweeping counts
 * the marked slots, checks that marking never touched a free slot (Go's
 * "sweep increased allocation count"), poisons freed slots in debug builds,
 * then makes the mark bits the new allocation bits, clears the mark bits,
 * and rewinds freeindex so allocation walks the bitmap from the start.
 */
#include "gc/gcint.h"
#include "gc/specials.h"

#include <string.h>

#define POISON_BYTE 0xde

static void sweep_poison(gc_span_t *s) {
  for (size_t i = 0; i < s->nelems; i++) {
    if (span_is_allocated(s, i) && !bit_get(s->mark_bits, i)) {
      size_t len = s->layout == LAYOUT_NOSCAN || s->layout == LAYOUT_LARGE
                       ? GCH_MIN(s->elemsize, (size_t)1 << 20)
                       : s->elemsize;
      memset((void *)(s->base + i * s->elemsize), POISON_BYTE, len);
    }
  }
}

void _gc_sweep_span(gc_heap_t *h, gc_span_t *s) {
  /* Records of dead objects first: weak handles cleared, cleanups queued,
   * profile frees counted (specials.c). */
  if (s->specials) _gc_special_sweep(h, s);
  size_t words = (s->nelems + 63u) / 64;
  size_t marked = 0;
  for (size_t i = 0; i < words; i++) marked += gch_popcount64(s->mark_bits[i]);
  if (marked > s->alloc_count)
    gch_throw("sweep: more marked objects than allocated (mark on a free slot)");
  size_t freed = s->alloc_count - marked;
  if (freed) {
    if (GCH_DEBUG) sweep_poison(s);
    s->needzero = 1;
    unsigned cls = s->spanclass >> 1;
    atomic_fetch_add(&h->freed_objects, freed);
    atomic_fetch_add(&h->freed_bytes, freed * s->elemsize);
    atomic_fetch_add(&h->class_frees[cls], freed);
  }
  /* Readers that may race (gc_base through _gc_find_object_stable) load
   * the bitmaps atomically and retry; store them atomically too. */
  uint64_t *old = s->alloc_bits;
  __atomic_store_n(&s->alloc_bits, s->mark_bits, __ATOMIC_RELEASE);
  s->mark_bits = old;
  for (size_t i = 0; i < words; i++) __atomic_store_n(&old[i], 0, __ATOMIC_RELAXED);
  s->alloc_count = (uint16_t)marked;
  span_set_freeindex(s, 0);
  _gc_span_refill_cache(s);
  atomic_fetch_add(&h->swept_spans, 1);
}
