/*
 * roots.c -- where marking starts: registered root ranges, the host's
 * root-scanning callbacks, and (optionally) attached threads' stacks and
 * saved registers, scanned conservatively.
 *
 * Precise ranges and gc_visit slots hold NULL, a pointer into this heap
 * (interior allowed) or a value outside the heap, which is ignored; in
 * debug builds a value on an in-use span that is no allocated object aborts
 * with the slot's address.  Conservative ranges may hold anything.
 *
 * The registries are guarded by roots_lock; callbacks run with the world
 * stopped and t->in_callback set, so a callback that calls gc_collect or
 * changes the registries gets GCH_EBUSY instead of a deadlock.
 */
#include "gc/gcint.h"

#include <string.h>

struct gc_visitor {
  gc_heap_t *heap;
  gcwork_t *work;
};

GCH_API gc_result_t gc_root_add(gc_heap_t *h, void *start, size_t size,
                                unsigned flags) {
  if (!h || h->magic != GCH_HEAP_MAGIC || !start || flags > GCH_ROOT_CONSERVATIVE)
    return GCH_EINVAL;
  uintptr_t lo = (uintptr_t)start, hi = lo + size;
  if (hi < lo || size == 0) return GCH_EINVAL;
  if (flags == GCH_ROOT_PRECISE && (lo % 8 || size % 8)) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (t && t->in_callback) return GCH_EBUSY;
  _gc_lock(&h->roots_lock);
  for (struct gc_root_range *r = h->root_ranges; r; r = r->next) {
    if (r->start == lo) {
      _gc_unlock(&h->roots_lock);
      return GCH_EEXIST;
    }
  }
  _gc_lock(&h->lock);
  struct gc_root_range *r = _gc_fixalloc_alloc(&h->root_alloc);
  _gc_unlock(&h->lock);
  if (!r) {
    _gc_unlock(&h->roots_lock);
    return GCH_ENOMEM;
  }
  r->start = lo;
  r->end = hi;
  r->flags = flags;
  r->next = h->root_ranges;
  h->root_ranges = r;
  _gc_unlock(&h->roots_lock);
  return GCH_OK;
}

GCH_API gc_result_t gc_root_remove(gc_heap_t *h, void *start) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (t && t->in_callback) return GCH_EBUSY;
  _gc_lock(&h->roots_lock);
  struct gc_root_range **pp = &h->root_ranges;
  while (*pp && (*pp)->start != (uintptr_t)start) pp = &(*pp)->next;
  struct gc_root_range *r = *pp;
  if (r) *pp = r->next;
  _gc_unlock(&h->roots_lock);
  if (!r) return GCH_ENOTFOUND;
  _gc_lock(&h->lock);
  _gc_fixalloc_free(&h->root_alloc, r);
  _gc_unlock(&h->lock);
  return GCH_OK;
}

GCH_API gc_result_t gc_root_callback_add(gc_heap_t *h, gc_root_fn fn, void *ctx) {
  if (!h || h->magic != GCH_HEAP_MAGIC || !fn) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (t && t->in_callback) return GCH_EBUSY;
  _gc_lock(&h->roots_lock);
  for (struct gc_root_cb *c = h->root_cbs; c; c = c->next) {
    if (c->fn == fn && c->ctx == ctx) {
      _gc_unlock(&h->roots_lock);
      return GCH_EEXIST;
    }
  }
  _gc_lock(&h->lock);
  struct gc_root_cb *c = _gc_fixalloc_alloc(&h->rootcb_alloc);
  _gc_unlock(&h->lock);
  if (!c) {
    _gc_unlock(&h->roots_lock);
    return GCH_ENOMEM;
  }
  c->fn = fn;
  c->ctx = ctx;
  /* Append, so callbacks run in registration order. */
  struct gc_root_cb **pp = &h->root_cbs;
  while (*pp) pp = &(*pp)->next;
  *pp = c;
  _gc_unlock(&h->roots_lock);
  return GCH_OK;
}

GCH_API gc_result_t gc_root_callback_remove(gc_heap_t *h, gc_root_fn fn,
                                            void *ctx) {
  if (!h || h->magic != GCH_HEAP_MAGIC || !fn) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (t && t->in_callback) return GCH_EBUSY;
  _gc_lock(&h->roots_lock);
  struct gc_root_cb **pp = &h->root_cbs;
  while (*pp && !((*pp)->fn == fn && (*pp)->ctx == ctx)) pp = &(*pp)->next;
  struct gc_root_cb *c = *pp;
  if (c) *pp = c->next;
  _gc_unlock(&h->roots_lock);
  if (!c) return GCH_ENOTFOUND;
  _gc_lock(&h->lock);
  _gc_fixalloc_free(&h->rootcb_alloc, c);
  _gc_unlock(&h->lock);
  return GCH_OK;
}

GCH_API void gc_visit(gc_visitor_t *v, void *const *slot) {
  if (!v || !slot) return;
  uintptr_t p = (uintptr_t)*slot;
  if (p) _gc_mark_slot(v->heap, v->work, p, slot);
}

GCH_API void gc_visit_range(gc_visitor_t *v, const void *start, size_t size) {
  if (!v || !start) return;
  uintptr_t lo = (uintptr_t)start;
  if (lo + size < lo) return;
  _gc_mark_range_conservative(v->heap, v->work, lo, lo + size);
}

static void roots_ranges(gc_heap_t *h, gcwork_t *w) {
  for (struct gc_root_range *r = h->root_ranges; r; r = r->next) {
    if (r->flags == GCH_ROOT_CONSERVATIVE) {
      _gc_mark_range_conservative(h, w, r->start, r->end);
      continue;
    }
    for (uintptr_t a = r->start; a < r->end; a += 8) {
      uintptr_t p = *(const uintptr_t *)a;
      if (p) _gc_mark_slot(h, w, p, (const void *)a);
    }
  }
}

/* Conservative scan of the stacks and saved registers of every attached
 * thread.  Each saved its registers and stack pointer when it parked or
 * entered a blocking region; the collecting thread saved them when the
 * collection began (_gc_save_context), so that every pass over its stack
 * (mark and checkmark) covers the same frames. */
static void roots_stacks(gc_heap_t *h, gcwork_t *w) {
  for (gc_thread_t *t = h->threads; t; t = t->next) {
    if (t->internal || !t->stack_hi) continue;
    _gc_mark_range_conservative(h, w, (uintptr_t)&t->regs,
                                (uintptr_t)&t->regs + sizeof t->regs);
    uintptr_t sp = t->park_sp;
    if (sp >= t->stack_lo && sp < t->stack_hi)
      _gc_mark_range_conservative(h, w, sp, t->stack_hi);
  }
}

void _gc_mark_roots(gc_heap_t *h, gcwork_t *w, gc_thread_t *self) {
  _gc_userarena_mark_roots(h, w); /* live user arenas (arena/userarena.c) */
  _gc_lock(&h->roots_lock);
  roots_ranges(h, w);
  gc_visitor_t v = {h, w};
  if (self) self->in_callback++;
  for (struct gc_root_cb *c = h->root_cbs; c; c = c->next) {
    c->fn(&v, c->ctx); /* shading only: draining is the caller's choice */
  }
  if (self) self->in_callback--;
  _gc_unlock(&h->roots_lock);
  if (h->config.scan_thread_stacks) roots_stacks(h, w);
}
