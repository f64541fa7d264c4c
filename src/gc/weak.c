/*
 * weak.c -- weak handles (Go 1.24's weak pointers, through an indirection
 * cell).  See specials.c for the records and the lock.
 *
 * A handle (struct gc_weak) is a 16-B noscan heap object holding its
 * target's address and a tag naming the heap (checked by gc_weak_get).  It
 * fills a whole slot: in a tiny-allocator block shared with its target it
 * would keep the target alive through its own record.  The target's weak record points to the handle and is
 * a root for it, so the handle lives at least as long as its target; after
 * that it is an ordinary object, collected when the host drops it.  One
 * handle per target: gc_weak_new returns the existing one if there is one.
 *
 * When the handle is cleared (set to 0, under the special lock):
 *  - at the sweep of the target's span, when the last mark left the target
 *    unmarked (it died); the record is freed then;
 *  - at mark termination, with the world stopped, when the target's
 *    finalizer is queued: before the world restarts, so before the
 *    finalizer can run or resurrect the target.  A handle made after a
 *    resurrection is a new one.
 * Objects kept alive only because a finalizer-ready object reaches them
 * are revived, not dead: their handles stay set until they really die.
 *
 * gc_weak_get and lazy sweeping: after a cycle the target's span may not
 * be swept yet, and its allocation bits still show a dead target as
 * allocated.  So gc_weak_get first makes sure that span is swept for the
 * current cycle (sweeping it itself if needed, as Go's weak-to-strong
 * does), then re-reads the handle: a non-zero value then names an object
 * the last mark found alive, and since no safepoint comes between the
 * check and the return, no collection can intervene.  A span freed and
 * reused meanwhile is harmless: its sweep cleared the handle first, and the
 * re-read sees 0.  While a concurrent mark runs, the returned object is
 * shaded (it may be reachable from nothing the mark has seen).
 *
 * Weak-keyed tables (ephemerons) are not provided.
 */
#include "gc/specials.h"

#include <sched.h>

_Static_assert(sizeof(struct gc_weak) >= GCH_TINY_SIZE,
               "a handle must not be packed into a tiny block");

void _gc_weak_clear(special_t *r) {
  atomic_store_explicit(&r->u.weak.cell->target, 0, memory_order_release);
}

static gc_weak_t *weak_fail(gc_heap_t *h, gc_thread_t *t, gc_result_t r) {
  _gc_set_error(h, t, r);
  return NULL;
}

/* The existing handle of the object at p on s, or NULL. */
static gc_weak_t *weak_existing(gc_heap_t *h, gc_span_t *s, uintptr_t p) {
  special_t *r = _gc_special_find(h, s, p, SPECIAL_WEAK);
  return r ? r->u.weak.cell : NULL;
}

/* Attach `cell` to the object at p on s unless it has a handle already;
 * returns the handle to use, or NULL when no record could be made. */
static gc_weak_t *weak_attach(gc_heap_t *h, gc_span_t *s, uintptr_t p,
                              gc_weak_t *cell) {
  specials_t *sp = h->gc->sp;
  gc_weak_t *old = weak_existing(h, s, p);
  if (old) return old;
  special_t *r = _gc_special_new(h, p, SPECIAL_WEAK);
  if (!r) return NULL;
  cell->tag = WEAK_TAG(h);
  atomic_store_explicit(&cell->target, p, memory_order_release);
  r->u.weak.cell = cell;
  _gc_special_insert(h, s, r);
  _gc_special_list_push(&sp->lists[SPECIAL_WEAK], r);
  return cell;
}

GCH_API gc_weak_t *gc_weak_new(gc_heap_t *h, void *obj) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return NULL;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) return weak_fail(h, NULL, GCH_ENOTATTACHED);
  if (t->in_callback) return weak_fail(h, t, GCH_EBUSY);
  if (!obj) return weak_fail(h, t, GCH_EINVAL);
  specials_t *sp = h->gc->sp;
  uintptr_t p = (uintptr_t)obj;
  for (;;) {
    gc_span_t *s;
    gc_result_t r = _gc_special_object(h, p, &s, true);
    if (r != GCH_OK) return weak_fail(h, t, r);
    _gc_lock(&sp->lock);
    gc_weak_t *old = weak_existing(h, s, p);
    _gc_unlock(&sp->lock);
    if (old) return old;
    /* The allocation may collect; obj is the caller's to keep alive. */
    gc_weak_t *cell = gc_malloc(h, sizeof *cell, GCH_NOSCAN);
    if (!cell) return NULL;
    /* From here to the attach no safepoint: the new cell, held only
     * here, cannot be collected. */
    r = _gc_special_object(h, p, &s, false);
    if (r == GCH_EBUSY) continue;
    if (r != GCH_OK) return weak_fail(h, t, r);
    _gc_lock(&sp->lock);
    gc_weak_t *w = weak_attach(h, s, p, cell);
    _gc_unlock(&sp->lock);
    return w ? w : weak_fail(h, t, GCH_ENOMEM);
  }
}

GCH_API void *gc_weak_get(gc_heap_t *h, gc_weak_t *w) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return NULL;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) return weak_fail(h, NULL, GCH_ENOTATTACHED);
  if (!w) return weak_fail(h, t, GCH_EINVAL);
  gc_span_t *ws;
  size_t widx;
  if (!_gc_find_object_stable(h, (uintptr_t)w, &ws, &widx) ||
      ws->base + widx * ws->elemsize != (uintptr_t)w || ws->elemsize < sizeof *w ||
      w->tag != WEAK_TAG(h))
    return weak_fail(h, t, GCH_EFOREIGN);
  for (;;) {
    uintptr_t p = atomic_load_explicit(&w->target, memory_order_acquire);
    if (!p) return NULL;
    gc_span_t *s = span_of(h, p);
    if (s && _gc_special_span_swept(h, s)) {
      if (atomic_load_explicit(&w->target, memory_order_acquire) != p) continue;
      if (gch_unlikely(heap_marking(h)))
        _gc_mark_value(h, _gc_thread_work(h, t), p);
      return (void *)p;
    }
    gc_safepoint(h); /* another thread is sweeping the span: wait */
    sched_yield();
  }
}
