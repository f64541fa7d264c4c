/*
 * central.c -- one central list per span class (Go's mcentral).
 * See malloc.c for the overview.
 *
 * Owns: the spans of a class that no thread has cached, in four doubly
 * linked lists: partial/full x swept/unswept.  partial[sg/2 % 2] and
 * full[sg/2 % 2] are the swept sets for sweepgen sg, the other two the
 * unswept ones; bumping h->sweepgen by 2 at mark termination turns every
 * swept list into an unswept one without touching a span.
 *
 * Invariants: a span is on at most one list (s->list says which; LIST_NONE
 * when cached or being swept); a span on a swept list has sweepgen == sg,
 * on an unswept list sg - 2.  Sweeping happens outside the central lock on
 * a span that has been taken off its list.
 */
#include "heap.h"

#include <sched.h>

enum { LIST_NONE = 0, LIST_PARTIAL = 1, LIST_FULL = 3 }; /* +set (0/1) */

#define CENTRAL_SWEEP_BUDGET 100

void _gc_central_init(central_t *c) {
  _gc_lock_init(&c->lock);
  c->partial[0] = c->partial[1] = c->full[0] = c->full[1] = NULL;
}

static gc_span_t **central_list(central_t *c, unsigned list) {
  unsigned set = (list - 1) & 1;
  return list < LIST_FULL ? &c->partial[set] : &c->full[set];
}

static void central_push(central_t *c, gc_span_t *s, unsigned list) {
  gc_span_t **head = central_list(c, list);
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
  s->list = (uint8_t)list;
}

void _gc_central_remove(gc_heap_t *h, gc_span_t *s) {
  central_t *c = &h->central[s->spanclass];
  _gc_lock_assert_held(&c->lock);
  GCH_ASSERT(s->list != LIST_NONE);
  gc_span_t **head = central_list(c, s->list);
  if (s->prev) s->prev->next = s->next;
  else *head = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->list = LIST_NONE;
}

static gc_span_t *central_pop(gc_heap_t *h, central_t *c, unsigned list) {
  gc_span_t *s = *central_list(c, list);
  if (s) _gc_central_remove(h, s);
  return s;
}

static unsigned swept_set(uint32_t sg) { return (sg >> 1) & 1; }

/* File a swept span (sweepgen == sg) on the swept partial or full list. */
void _gc_central_insert_swept(gc_heap_t *h, gc_span_t *s) {
  central_t *c = &h->central[s->spanclass];
  uint32_t sg = atomic_load(&h->sweepgen);
  bool full = s->alloc_count == s->nelems;
  _gc_lock(&c->lock);
  atomic_store_explicit(&s->sweepgen, sg, memory_order_release);
  central_push(c, s, (full ? LIST_FULL : LIST_PARTIAL) + swept_set(sg));
  _gc_unlock(&c->lock);
}

/* Take s for sweeping: it must need sweeping (sg - 2). */
static bool central_claim(gc_span_t *s, uint32_t sg) {
  uint32_t want = sg - 2;
  return atomic_compare_exchange_strong(&s->sweepgen, &want, sg - 1);
}

/* A span of class spc with a free slot, swept, for thread t's cache.  Tries
 * swept partial spans, then sweeps unswept ones (bounded), then makes a new
 * span.  NULL with *err on failure. */
gc_span_t *_gc_central_cache_span(gc_heap_t *h, gc_thread_t *t, int spc,
                                  gc_result_t *err) {
  central_t *c = &h->central[spc];
  uint32_t sg = atomic_load(&h->sweepgen);
  unsigned sw = swept_set(sg), un = sw ^ 1;
  gc_span_t *s = NULL;
  for (int budget = CENTRAL_SWEEP_BUDGET; budget > 0 && !s; budget--) {
    _gc_lock(&c->lock);
    gc_span_t *p = central_pop(h, c, LIST_PARTIAL + sw);
    if (p) {
      _gc_unlock(&c->lock);
      s = p;
      break;
    }
    p = central_pop(h, c, LIST_PARTIAL + un);
    if (!p) p = central_pop(h, c, LIST_FULL + un);
    _gc_unlock(&c->lock);
    if (!p) break;
    if (!central_claim(p, sg)) gch_throw("central: unswept span has bad sweepgen");
    _gc_sweep_span(h, p); /* kept even if empty: we want its slots */
    if (p->alloc_count < p->nelems) s = p;
    else _gc_central_insert_swept(h, p);
  }
  if (!s) {
    size_t npages = gch_class_to_npages[spc >> 1];
    s = _gc_span_alloc(h, t, npages, (uint8_t)spc, err);
    if (!s) return NULL;
  }
  /* clobberfree: no free slot may have been written since it was freed. */
  if (gch_unlikely(s->poisoned)) _gc_sweep_check_free(h, s);
  atomic_store_explicit(&s->sweepgen, sg + 3, memory_order_release);
  return s;
}

/* Give a cached span back.  A span cached before the current sweep began
 * (sg + 1) is swept first. */
void _gc_central_uncache_span(gc_heap_t *h, gc_span_t *s) {
  uint32_t sg = atomic_load(&h->sweepgen);
  uint32_t ssg = atomic_load(&s->sweepgen);
  if (ssg == sg + 1) {
    atomic_store(&s->sweepgen, sg - 1);
    _gc_sweep_span(h, s);
    if (s->alloc_count == 0) {
      _gc_span_free(h, NULL, s);
      return;
    }
  }
  _gc_central_insert_swept(h, s);
}

/* Background / finishing sweep: sweep one unswept span of any class.
 * h->sweep_cursor walks the classes once per cycle (reset at the flip). */
bool _gc_central_sweep_one(gc_heap_t *h) {
  uint32_t sg = atomic_load(&h->sweepgen);
  unsigned un = swept_set(sg) ^ 1;
  atomic_fetch_add(&h->sweepers, 1);
  for (;;) {
    int spc = atomic_load(&h->sweep_cursor);
    if (spc >= GCH_NUM_SPAN_CLASSES) break;
    central_t *c = &h->central[spc];
    _gc_lock(&c->lock);
    gc_span_t *p = central_pop(h, c, LIST_PARTIAL + un);
    if (!p) p = central_pop(h, c, LIST_FULL + un);
    _gc_unlock(&c->lock);
    if (!p) {
      atomic_compare_exchange_strong(&h->sweep_cursor, &spc, spc + 1);
      continue;
    }
    if (!central_claim(p, sg)) gch_throw("sweep: unswept span has bad sweepgen");
    _gc_sweep_span(h, p);
    if (p->alloc_count == 0) _gc_span_free(h, NULL, p);
    else _gc_central_insert_swept(h, p);
    atomic_fetch_sub(&h->sweepers, 1);
    return true;
  }
  atomic_fetch_sub(&h->sweepers, 1);
  return false;
}

void _gc_central_sweep_all(gc_heap_t *h) {
  while (_gc_central_sweep_one(h)) {
  }
  /* Spans another thread took are being swept: wait for them to land. */
  while (atomic_load(&h->sweepers)) sched_yield();
}
