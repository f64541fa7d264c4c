/*
 * barrier.c -- the write barrier's slow path and allocate-black.
 *
 * While a concurrent mark runs (pub.barrier_on), every pointer store into a
 * heap object goes through gc_write_slow, which shades both the value being
 * overwritten and the value being stored (Go's hybrid barrier as
 * implemented: Yuasa deletion + Dijkstra insertion, unconditionally).
 *
 * Why this is enough here.  The mark begins with the world stopped and
 * scans *every* root then (registered ranges, the host's callbacks, thread
 * stacks): a snapshot.  Afterwards roots change without barriers.  Claim:
 * every object reachable at the end of the mark is marked.  Take such an
 * object x.  If x was allocated during the mark it was allocated black.
 * Otherwise x existed at the snapshot and was reachable then (a program
 * cannot re-find an unreachable object: it holds no reference to it).  At
 * the snapshot there was a path from a root to x; follow it until the
 * first heap edge that has since been overwritten.  Every edge before it
 * still holds, and the object at its source was grey or reachable from a
 * grey object, so marking reaches that edge's old target y... and the
 * overwrite shaded y (the deletion half).  Repeating the argument from y,
 * x is reached.  Root edges were all scanned at the snapshot, so no path
 * is lost through a root changing.  The insertion half is not needed for
 * this proof; it is kept because it costs little and makes mark
 * termination converge faster (new edges into old objects get scanned).
 *
 * Objects allocated during the mark are black: the allocator sets their
 * mark bit (never scanned: whatever they come to hold was stored through
 * the barrier, which shaded it).  Caches were flushed when the mark began,
 * so every such object comes from a fresh slot, tiny blocks included.
 */
#include "gc/gcint.h"

static gcwork_t *barrier_work(gc_heap_t *h, gc_thread_t **tp) {
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) gch_throw("gc_write from a thread not attached to the heap");
  *tp = t;
  return _gc_thread_work(h, t);
}

GCH_API void gc_write_slow(gc_heap_t *h, void *obj, void **slot, void *val) {
  (void)obj;
  if (!h || h->magic != GCH_HEAP_MAGIC) gch_throw("gc_write on a bad heap");
  if (!atomic_load((atomic_int *)&h->pub.barrier_on)) return;
  gc_thread_t *t;
  gcwork_t *w = barrier_work(h, &t);
  uintptr_t old = (uintptr_t)__atomic_load_n(slot, __ATOMIC_RELAXED);
  if (old) _gc_mark_value(h, w, old);
  if (val) _gc_mark_value(h, w, (uintptr_t)val);
}

GCH_API void gc_write_range_slow(gc_heap_t *h, void **dst, size_t n) {
  if (!h || h->magic != GCH_HEAP_MAGIC) gch_throw("gc_write_range on a bad heap");
  if (!atomic_load((atomic_int *)&h->pub.barrier_on)) return;
  gc_thread_t *t;
  gcwork_t *w = barrier_work(h, &t);
  for (size_t i = 0; i < n; i++) {
    uintptr_t old = (uintptr_t)__atomic_load_n(&dst[i], __ATOMIC_RELAXED);
    if (old) _gc_mark_value(h, w, old);
  }
}

/* Allocate black: called for every object allocated while the barrier is
 * on.  The bytes count as marked (they are live for this cycle). */
void _gc_mark_new_object(gc_heap_t *h, gc_thread_t *t, uintptr_t p) {
  gc_span_t *s;
  size_t idx;
  if (!_gc_find_object(h, p, &s, &idx)) gch_throw("new object not found");
  _Atomic uint64_t *word = (_Atomic uint64_t *)&s->mark_bits[idx >> 6];
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if (atomic_fetch_or_explicit(word, bit, memory_order_relaxed) & bit) return;
  gcwork_t *w = _gc_thread_work(h, t);
  w->marked_bytes += s->elemsize;
  w->marked_objects++;
}
