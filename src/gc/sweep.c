/*
 * sweep.c -- sweeping one span: what the last mark left white is freed.
 * See gc.c for when spans are swept and central.c for who owns them.
 *
 * The caller owns the span (sweepgen sg - 1, on no list).  Sweeping counts
 * the marked slots, checks that marking never touched a free slot (Go's
 * "sweep increased allocation count"), clobbers free slots (below), then
 * makes the mark bits the new allocation bits, clears the mark bits, and
 * rewinds freeindex so allocation walks the bitmap from the start.
 *
 * Clobbering (GCHEAP_DEBUG=clobberfree, and always in GCH_DEBUG builds;
 * small spans only -- a large object's pages go back whole): the sweep
 * fills every slot it frees with GCH_CLOBBER_BYTE, and every other free
 * slot too the first time it sweeps the span.  From then on the span is
 * `poisoned`: every free slot holds the poison, and a slot that does not
 * was written through a stale pointer after its object died.  It is
 * checked for each free slot when a later sweep finds it still free, and
 * when a thread takes the span into its cache (central.c calls
 * _gc_sweep_check_free), i.e. before any slot is handed out again and
 * zeroed.  A mismatch aborts, naming the slot, its span class and the
 * first bad byte.  A poisoned span always has needzero set.  A fresh span
 * (span.c) starts unpoisoned: its never-used slots have nothing to check.
 */
#include "gc/gcint.h"
#include "gc/specials.h"

#include <stdio.h>
#include <string.h>

#define SWEEP_CLOBBER_WORD (0x0101010101010101ull * GCH_CLOBBER_BYTE)

static bool sweep_clobbering(const gc_heap_t *h, const gc_span_t *s) {
  return (GCH_DEBUG || (h->debug & GCDBG_CLOBBERFREE)) && (s->spanclass >> 1) != 0;
}

static void sweep_poison_slot(const gc_span_t *s, size_t i) {
  memset((void *)(s->base + i * s->elemsize), GCH_CLOBBER_BYTE, s->elemsize);
}

static _Noreturn void sweep_clobber_fail(const gc_span_t *s, size_t i, size_t off) {
  const unsigned char *slot = (const unsigned char *)(s->base + i * s->elemsize);
  char msg[256];
  snprintf(msg, sizeof msg,
           "GCHEAP_DEBUG=clobberfree: free slot %p (span class %u%s, %zu B) "
           "written after free: byte %zu is 0x%02x, not 0x%02x",
           (const void *)slot, s->spanclass >> 1, (s->spanclass & 1) ? " noscan" : "",
           s->elemsize, off, slot[off], GCH_CLOBBER_BYTE);
  gch_throw(msg);
}

/* Abort unless free slot i still holds the poison. */
static void sweep_check_slot(const gc_span_t *s, size_t i) {
  const uint64_t *w = (const uint64_t *)(s->base + i * s->elemsize);
  size_t n = s->elemsize / 8;
  for (size_t k = 0; k < n; k++) {
    if (gch_likely(w[k] == SWEEP_CLOBBER_WORD)) continue;
    const unsigned char *b = (const unsigned char *)&w[k];
    size_t j = 0;
    while (b[j] == GCH_CLOBBER_BYTE) j++;
    sweep_clobber_fail(s, i, k * 8 + j);
  }
}

void _gc_sweep_check_free(gc_heap_t *h, gc_span_t *s) {
  (void)h;
  if (!s->poisoned) return;
  for (size_t i = s->freeindex; i < s->nelems; i++)
    if (!span_is_allocated(s, i)) sweep_check_slot(s, i);
}

/* Before the bitmaps flip: poison the slots this sweep frees, check (or,
 * on a span not yet poisoned, poison) the slots that were already free. */
static void sweep_clobber(gc_span_t *s) {
  for (size_t i = 0; i < s->nelems; i++) {
    if (span_is_allocated(s, i)) {
      if (!bit_get(s->mark_bits, i)) sweep_poison_slot(s, i);
    } else if (s->poisoned) {
      sweep_check_slot(s, i);
    } else {
      sweep_poison_slot(s, i);
    }
  }
  s->poisoned = 1;
  s->needzero = 1;
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
  if (gch_unlikely(sweep_clobbering(h, s))) sweep_clobber(s);
  if (freed) {
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
