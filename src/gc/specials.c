/*
 * specials.c -- per-object records: finalizers, weak handles, cleanups and
 * heap-profile samples, one mechanism for all (Go's mheap.go specials).
 * See finalizer.c, weak.c and profile.c for what each kind does.
 *
 * Records.  A record (special_t) names its object by address and kind and
 * lives off-heap in a fixalloc (h->meta).  Each span keeps the records of
 * its objects in a doubly linked list sorted by (offset, kind), so that all
 * records of one object are adjacent and sweeping visits each once.  The
 * first page of a span with records has its bit set in the arena's
 * page_specials bitmap.  Finalizer, weak and cleanup records are also on a
 * heap-wide list per kind, which mark termination walks for their roots.
 *
 * The special lock ("speciallock", sp->lock) guards the span lists, the
 * kind lists, the run queue and the running list, the search hints and
 * the counters.  Lock order: speciallock > prof lock > h->lock; a central
 * lock is never held with it.  It is never held across a safepoint or a
 * call into the host, so the collector can take it with the world stopped.
 *
 * Invariants:
 *  - a record exists only for an allocated object; it is taken off its
 *    span's list when the object dies (sweep) or its function is queued
 *    (finalizer), so a freed or empty span has no records;
 *  - records are added only after the object's span has been swept for
 *    the current cycle (_gc_special_object), so sweeping never sees a
 *    record whose object the last mark did not consider, and the sweep of
 *    a span never runs at the same time as an addition to it;
 *  - an armed finalizer's object is always marked when its span is swept:
 *    mark termination either finds it reached or queues it and marks it
 *    (finalizer.c), so sweep never frees an object with a finalizer.
 *
 * Roots.  The records hold heap pointers the collector must see: a
 * finalizer's ctx, a cleanup's arg, a weak handle object, and the object
 * and ctx/arg of every queued or running function.  They are shaded at
 * mark termination with the world stopped (_gc_specials_mark), after the
 * normal drain and before finalizer-ready objects are looked for.
 */
#include "gc/specials.h"

#include <sched.h>
#include <string.h>

/* ------------------------------------------------------------- lifecycle */

static void special_list_init(special_t *head) {
  head->gnext = head->gprev = head;
}

int _gc_specials_init(gc_heap_t *h) {
  specials_t *sp = _gc_persistent_alloc(&h->meta, sizeof *sp, 64);
  if (!sp) return -1;
  _gc_lock_init(&sp->lock);
  _gc_fixalloc_init(&sp->records, &h->meta, sizeof(special_t));
  for (int k = 0; k < SPECIAL_NKINDS; k++) special_list_init(&sp->lists[k]);
  special_list_init(&sp->running);
  pthread_mutex_init(&sp->fin_mu, NULL);
  pthread_cond_init(&sp->fin_cv, NULL);
  h->gc->sp = sp;
  _gc_prof_init(h);
  return 0;
}

/* --------------------------------------------------------------- records */

/* Records move between the fixalloc (under h->lock) and a small cache
 * (under the special lock) in batches, so that h->lock is not taken for
 * every record. */
#define SPECIAL_CACHE_BATCH 32
#define SPECIAL_CACHE_MAX (4 * SPECIAL_CACHE_BATCH)

static void special_cache_fill(gc_heap_t *h, specials_t *sp) {
  _gc_lock(&h->lock);
  for (int i = 0; i < SPECIAL_CACHE_BATCH; i++) {
    special_t *r = _gc_fixalloc_alloc(&sp->records);
    if (!r) break;
    r->next = sp->cache;
    sp->cache = r;
    sp->ncache++;
  }
  _gc_unlock(&h->lock);
}

static void special_cache_trim(gc_heap_t *h, specials_t *sp) {
  _gc_lock(&h->lock);
  while (sp->ncache > SPECIAL_CACHE_MAX - SPECIAL_CACHE_BATCH) {
    special_t *r = sp->cache;
    sp->cache = r->next;
    sp->ncache--;
    _gc_fixalloc_free(&sp->records, r);
  }
  _gc_unlock(&h->lock);
}

special_t *_gc_special_new(gc_heap_t *h, uintptr_t addr, uint8_t kind) {
  specials_t *sp = h->gc->sp;
  _gc_lock_assert_held(&sp->lock);
  if (!sp->cache) special_cache_fill(h, sp);
  special_t *r = sp->cache;
  if (!r) return NULL;
  sp->cache = r->next;
  sp->ncache--;
  memset(r, 0, sizeof *r);
  r->addr = addr;
  r->kind = kind;
  return r;
}

void _gc_special_free(gc_heap_t *h, special_t *r) {
  specials_t *sp = h->gc->sp;
  _gc_lock_assert_held(&sp->lock);
  r->next = sp->cache;
  sp->cache = r;
  if (++sp->ncache > SPECIAL_CACHE_MAX) special_cache_trim(h, sp);
}

void _gc_special_list_push(special_t *head, special_t *r) {
  r->gnext = head->gnext;
  r->gprev = head;
  head->gnext->gprev = r;
  head->gnext = r;
}

void _gc_special_list_remove(special_t *r) {
  if (!r->gnext) return;
  r->gprev->gnext = r->gnext;
  r->gnext->gprev = r->gprev;
  r->gnext = r->gprev = NULL;
}

/* ------------------------------------------------------------ span lists */

/* Order of records: by address, then kind. */
static int special_cmp(uintptr_t a, uint8_t ka, uintptr_t b, uint8_t kb) {
  if (a != b) return a < b ? -1 : 1;
  return (ka > kb) - (ka < kb);
}

static void special_page_bit(gc_span_t *s, bool set) {
  heap_arena_t *a = s->arena;
  if (!a) return;
  size_t page = (s->base - a->base) >> GCH_PAGE_SHIFT;
  _Atomic uint64_t *w = (_Atomic uint64_t *)&a->page_specials[page / 64];
  uint64_t bit = (uint64_t)1 << (page % 64);
  if (set) atomic_fetch_or(w, bit);
  else atomic_fetch_and(w, ~bit);
}

static special_hint_t *special_hint(specials_t *sp, const gc_span_t *s) {
  uintptr_t x = (uintptr_t)s;
  x ^= x >> 7;
  x ^= x >> 13;
  return &sp->hints[x % SPECIAL_HINTS];
}

static void special_hint_set(specials_t *sp, gc_span_t *s, special_t *r) {
  special_hint_t *e = special_hint(sp, s);
  e->span = r ? s : NULL;
  e->rec = r;
}

/* The last record of s that sorts before (addr, kind) -- or, with
 * `or_equal`, before or equal -- or NULL when there is none.  A finger
 * search from the span's hint when it has one, else from the head. */
static special_t *special_floor(specials_t *sp, gc_span_t *s, uintptr_t addr,
                                uint8_t kind, bool or_equal) {
  special_hint_t *e = special_hint(sp, s);
  special_t *x = e->span == s ? e->rec : s->specials;
  int lim = or_equal ? 0 : -1; /* x is before the key iff cmp <= lim */
#define BEFORE(r) (special_cmp((r)->addr, (r)->kind, addr, kind) <= lim)
  if (!x) return NULL;
  if (BEFORE(x)) {
    while (x->next && BEFORE(x->next)) x = x->next;
    return x;
  }
  while (x && !BEFORE(x)) x = x->prev_in_span;
  return x;
#undef BEFORE
}

void _gc_special_insert(gc_heap_t *h, gc_span_t *s, special_t *r) {
  specials_t *sp = h->gc->sp;
  _gc_lock_assert_held(&sp->lock);
  special_t *prev = special_floor(sp, s, r->addr, r->kind, true);
  special_t *x = prev ? prev->next : s->specials;
  r->next = x;
  r->prev_in_span = prev;
  if (x) x->prev_in_span = r;
  if (prev) prev->next = r;
  else {
    if (!s->specials) special_page_bit(s, true);
    s->specials = r;
  }
  special_hint_set(sp, s, r);
}

special_t *_gc_special_find(gc_heap_t *h, gc_span_t *s, uintptr_t addr,
                            uint8_t kind) {
  specials_t *sp = h->gc->sp;
  _gc_lock_assert_held(&sp->lock);
  special_t *prev = special_floor(sp, s, addr, kind, false);
  special_t *x = prev ? prev->next : s->specials;
  if (prev) special_hint_set(sp, s, prev);
  return x && x->addr == addr && x->kind == kind ? x : NULL;
}

void _gc_special_unlink(gc_heap_t *h, gc_span_t *s, special_t *r) {
  specials_t *sp = h->gc->sp;
  _gc_lock_assert_held(&sp->lock);
  special_hint_t *e = special_hint(sp, s);
  if (e->span == s && e->rec == r)
    special_hint_set(sp, s, r->prev_in_span ? r->prev_in_span : r->next);
  if (r->prev_in_span) r->prev_in_span->next = r->next;
  else s->specials = r->next;
  if (r->next) r->next->prev_in_span = r->prev_in_span;
  r->next = r->prev_in_span = NULL;
  _gc_special_list_remove(r);
  if (!s->specials) special_page_bit(s, false);
}

/* --------------------------------------------------------- span sweeping */

/* Sweep span s, which the caller owns: it must need sweeping (sg - 2).
 * Then file it as the central code does. */
static void special_sweep_claimed(gc_heap_t *h, gc_span_t *s) {
  _gc_sweep_span(h, s);
  if (s->alloc_count == 0) _gc_span_free(h, NULL, s);
  else _gc_central_insert_swept(h, s);
}

bool _gc_special_span_swept(gc_heap_t *h, gc_span_t *s) {
  if (atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_IN_USE)
    return false;
  uint32_t sg = atomic_load(&h->sweepgen);
  uint32_t ssg = atomic_load_explicit(&s->sweepgen, memory_order_acquire);
  if (ssg == sg || ssg == sg + 3) return true;
  if (ssg != sg - 2) return false; /* being swept, or cached unswept */
  /* Unswept and so on its central's unswept list: take it off under that
   * lock (whoever pops it first owns it), as central.c does. */
  uint8_t cls = s->spanclass;
  central_t *c = &h->central[cls];
  _gc_lock(&c->lock);
  bool mine = atomic_load(&s->sweepgen) == sg - 2 && s->spanclass == cls &&
              s->list != 0 /* LIST_NONE */;
  if (mine) {
    _gc_central_remove(h, s);
    atomic_store(&s->sweepgen, sg - 1);
  }
  _gc_unlock(&c->lock);
  if (!mine) return false;
  special_sweep_claimed(h, s);
  return true;
}

/* The slot base of the object at p on s and whether p may carry records:
 * an object's base, or any address in a tiny-allocator block. */
static bool special_is_object_base(const gc_span_t *s, uintptr_t p) {
  size_t idx = span_obj_index(s, p);
  if (!span_is_allocated(s, idx)) return false;
  uintptr_t slot = s->base + idx * s->elemsize;
  uintptr_t base = s->layout == LAYOUT_HEADER ? slot + GCH_HEADER_BYTES : slot;
  if (p == base) return true;
  return s->spanclass == GCH_TINY_SPAN_CLASS && p > slot;
}

gc_result_t _gc_special_object(gc_heap_t *h, uintptr_t p, gc_span_t **sp,
                               bool wait) {
  for (;;) {
    gc_span_t *s = span_of(h, p);
    if (!s || atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_IN_USE ||
        p < s->base || p >= s->limit)
      return GCH_EFOREIGN;
    if (!_gc_special_span_swept(h, s)) {
      if (!wait) return GCH_EBUSY;
      gc_safepoint(h);
      sched_yield();
      continue;
    }
    /* Our own sweep may have freed the span (everything in it was dead). */
    if (span_of(h, p) != s || atomic_load(&s->state) != SPAN_IN_USE) continue;
    if (!special_is_object_base(s, p)) return GCH_EFOREIGN;
    *sp = s;
    return GCH_OK;
  }
}

/* The object at addr on s died: act on record r (already unlinked). */
static bool special_dead(gc_heap_t *h, special_t *r) {
  switch (r->kind) {
  case SPECIAL_WEAK:
    _gc_weak_clear(r);
    _gc_special_free(h, r);
    return false;
  case SPECIAL_CLEANUP:
    _gc_fin_enqueue(h, r);
    return true;
  case SPECIAL_PROFILE:
    _gc_prof_free(h, r->u.prof.bucket, r->u.prof.size);
    _gc_special_free(h, r);
    return false;
  default:
    gch_throw("sweep: an object with an armed finalizer was not marked");
  }
}

void _gc_special_sweep(gc_heap_t *h, gc_span_t *s) {
  specials_t *sp = h->gc->sp;
  bool queued = false;
  _gc_lock(&sp->lock);
  special_t *r = s->specials, *next;
  for (; r; r = next) {
    next = r->next;
    if (bit_get(s->mark_bits, span_obj_index(s, r->addr))) continue;
    _gc_special_unlink(h, s, r);
    queued |= special_dead(h, r);
  }
  _gc_unlock(&sp->lock);
  if (queued) _gc_fin_wake(h);
}

/* Wait until the span whose first page is `page` of arena `a` is swept
 * for this cycle, unless it has no records left (bit clear) or is gone. */
static void special_wait_page(gc_heap_t *h, heap_arena_t *a, size_t page) {
  _Atomic uint64_t *w = (_Atomic uint64_t *)&a->page_specials[page / 64];
  uint64_t bit = (uint64_t)1 << (page % 64);
  for (;;) {
    if (!(atomic_load(w) & bit)) return;
    gc_span_t *s = atomic_load_explicit(&a->spans[page], memory_order_acquire);
    if (!s || atomic_load(&s->state) != SPAN_IN_USE) return;
    if (_gc_special_span_swept(h, s)) return;
    gc_safepoint(h);
    sched_yield();
  }
}

void _gc_specials_wait_swept(gc_heap_t *h) {
  _gc_lock(&h->lock);
  struct arena_resv *resv = h->resv; /* nodes never change once linked */
  _gc_unlock(&h->lock);
  for (struct arena_resv *r = resv; r; r = r->next) {
    for (uintptr_t p = r->base; p < r->base + r->bytes; p += GCH_ARENA_BYTES) {
      heap_arena_t *a = arena_of(h, p);
      if (!a) continue;
      for (size_t i = 0; i < GCH_ARENA_PAGES / 64; i++) {
        uint64_t bits = atomic_load((_Atomic uint64_t *)&a->page_specials[i]);
        while (bits) {
          special_wait_page(h, a, i * 64 + gch_ctz64(bits));
          bits &= bits - 1;
        }
      }
    }
  }
  /* A sweep that emptied a span's list (and cleared its bit) finishes
   * its work under the special lock: let it. */
  specials_t *sp = h->gc->sp;
  _gc_lock(&sp->lock);
  _gc_unlock(&sp->lock);
}

/* ------------------------------------------------------- mark termination */

static void special_shade_list(gc_heap_t *h, gcwork_t *w, special_t *head) {
  for (special_t *r = head->gnext; r != head; r = r->gnext) {
    __builtin_prefetch(r->gnext->gnext);
    switch (r->kind) {
    case SPECIAL_WEAK:
      _gc_mark_value(h, w, (uintptr_t)r->u.weak.cell);
      break;
    case SPECIAL_CLEANUP:
      _gc_mark_value(h, w, (uintptr_t)r->u.cleanup.arg);
      break;
    default:
      break;
    }
  }
}

/* A queued or running function keeps its object and its argument. */
static void special_shade_pending(gc_heap_t *h, gcwork_t *w, special_t *r) {
  if (r->kind == SPECIAL_FINALIZER) {
    _gc_mark_value(h, w, r->addr);
    _gc_mark_value(h, w, (uintptr_t)r->u.fin.ctx);
  } else {
    _gc_mark_value(h, w, (uintptr_t)r->u.cleanup.arg);
  }
}

/* Finalizers' ctx values are shaded by _gc_fin_mark_ready, in its pass. */
static void special_shade_roots(gc_heap_t *h, specials_t *sp, gcwork_t *w) {
  special_shade_list(h, w, &sp->lists[SPECIAL_WEAK]);
  special_shade_list(h, w, &sp->lists[SPECIAL_CLEANUP]);
  for (special_t *r = sp->queue; r; r = r->next) special_shade_pending(h, w, r);
  for (special_t *r = sp->running.gnext; r != &sp->running; r = r->gnext)
    special_shade_pending(h, w, r);
}

void _gc_specials_mark(gc_heap_t *h, gcwork_t *w) {
  specials_t *sp = h->gc->sp;
  _gc_lock(&sp->lock);
  special_shade_roots(h, sp, w);
  _gc_mark_drain(h, w);
  _gc_fin_mark_ready(h, w);
  _gc_unlock(&sp->lock);
  _gc_prof_cycle(h);
}

/* ------------------------------------------------------------------ stats */

void _gc_specials_stats(gc_heap_t *h, gc_stats_t *out) {
  specials_t *sp = h->gc->sp;
  _gc_lock(&sp->lock);
  out->specials = sp->records.inuse - sp->ncache;
  out->finalizers_queued = sp->fin_queued;
  out->finalizers_run = sp->fin_run;
  out->cleanups_queued = sp->cleanup_queued;
  out->cleanups_run = sp->cleanup_run;
  _gc_unlock(&sp->lock);
  out->profile_samples = atomic_load(&sp->prof.samples);
}
