/*
 * finalizer.c -- finalizers and cleanups: arming them, finding the objects
 * whose finalizers are ready, the run queue, and who runs it (the host's
 * thread in gc_run_finalizers, or a finalizer thread).  See specials.c for
 * the records and the lock.
 *
 * Finalizers (gc_set_finalizer): one per object.  At mark termination,
 * with the world stopped and after the normal drain (_gc_fin_mark_ready):
 *   1. for every armed finalizer whose object is still unmarked, mark what
 *      the object points to (not the object itself) and drain;
 *   2. an armed finalizer whose object is still unmarked is ready: its
 *      weak handles are cleared, its record moves to the run queue, and
 *      the object is marked (revived) and drained, so it and everything
 *      it reaches survive this cycle's sweep.
 * The queue is a root until the function has returned; the record is then
 * freed, so the finalizer runs exactly once, and the object is reclaimed
 * by a later cycle that finds it unreachable (it may have been
 * resurrected, or given a new finalizer, meanwhile).
 *
 * Ordering and cycles (Go's rule): step 1 makes an object reachable from
 * another unreachable finalizable object not ready, so if A points to B and
 * both have finalizers, A's runs first and B's only in a cycle after A is
 * gone.  A cycle of finalizable objects (A -> B -> A, or A -> A) therefore
 * never becomes ready: it is never finalized and never freed (a leak, as
 * in Go).  Break such cycles by hand, or use cleanups, which do not
 * resurrect and so are collected in cycles.
 *
 * Cleanups (gc_add_cleanup, Go 1.24 AddCleanup): any number per object;
 * never keep their object alive.  Sweeping queues the cleanups of an object
 * it frees (specials.c); fn(arg) then runs like a finalizer.  `arg` is a
 * root while the cleanup is armed or queued.
 *
 * Who runs the queue: config.finalizer_thread 0 (default) = the host, in
 * gc_run_finalizers(); 1 = a finalizer thread started with the heap,
 * attached like a host thread (its stack is scanned when the host asks for
 * stack scanning), woken after each cycle that queued something.  Either
 * way functions run outside every stop of the world and outside every
 * heap lock: they may allocate, set finalizers (their own object's too:
 * re-arming), add cleanups, create weak handles, and resurrect their
 * object by storing it in a root.  Inside one, gc_collect and
 * gc_run_finalizers answer GCH_EBUSY (no nested runs), as do
 * gc_thread_detach and gc_heap_destroy; automatic collections still
 * happen.
 */
#include "gc/specials.h"

#include <unistd.h>

/* --------------------------------------------------------------- arming */

/* The calling thread, if it may arm records now; else sets the error. */
static gc_result_t fin_caller(gc_heap_t *h, gc_thread_t **tp) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  *tp = t;
  if (!t) {
    _gc_set_error(h, NULL, GCH_ENOTATTACHED);
    return GCH_ENOTATTACHED;
  }
  if (t->in_callback) {
    _gc_set_error(h, t, GCH_EBUSY);
    return GCH_EBUSY;
  }
  return GCH_OK;
}

static gc_result_t fin_fail(gc_heap_t *h, gc_thread_t *t, gc_result_t r) {
  _gc_set_error(h, t, r);
  return r;
}

/* Whether p points into the slot of the object at obj on s (a ctx or arg
 * that would keep its own object alive forever). */
static bool fin_points_into(const gc_span_t *s, uintptr_t obj, uintptr_t p) {
  size_t idx = span_obj_index(s, obj);
  uintptr_t slot = s->base + idx * s->elemsize;
  return p >= slot && p < slot + s->elemsize;
}

GCH_API gc_result_t gc_set_finalizer(gc_heap_t *h, void *obj, gc_finalizer_fn fn,
                                     void *ctx) {
  gc_thread_t *t;
  gc_result_t r = fin_caller(h, &t);
  if (r != GCH_OK) return r;
  if (!obj) return fin_fail(h, t, GCH_EINVAL);
  uintptr_t p = (uintptr_t)obj;
  gc_span_t *s;
  r = _gc_special_object(h, p, &s, true);
  if (r != GCH_OK) return fin_fail(h, t, r);
  if (fn && fin_points_into(s, p, (uintptr_t)ctx)) return fin_fail(h, t, GCH_EINVAL);
  specials_t *sp = h->gc->sp;
  _gc_lock(&sp->lock);
  special_t *old = _gc_special_find(h, s, p, SPECIAL_FINALIZER);
  if (!fn) {
    if (old) {
      _gc_special_unlink(h, s, old);
      _gc_special_free(h, old);
    }
    _gc_unlock(&sp->lock);
    return GCH_OK;
  }
  if (old) {
    _gc_unlock(&sp->lock);
    return fin_fail(h, t, GCH_EEXIST);
  }
  special_t *rec = _gc_special_new(h, p, SPECIAL_FINALIZER);
  if (rec) {
    rec->u.fin.fn = fn;
    rec->u.fin.ctx = ctx;
    _gc_special_insert(h, s, rec);
    _gc_special_list_push(&sp->lists[SPECIAL_FINALIZER], rec);
  }
  _gc_unlock(&sp->lock);
  return rec ? GCH_OK : fin_fail(h, t, GCH_ENOMEM);
}

GCH_API gc_result_t gc_add_cleanup(gc_heap_t *h, void *obj, void (*fn)(void *arg),
                                   void *arg) {
  gc_thread_t *t;
  gc_result_t r = fin_caller(h, &t);
  if (r != GCH_OK) return r;
  if (!obj || !fn) return fin_fail(h, t, GCH_EINVAL);
  uintptr_t p = (uintptr_t)obj;
  gc_span_t *s;
  r = _gc_special_object(h, p, &s, true);
  if (r != GCH_OK) return fin_fail(h, t, r);
  if (fin_points_into(s, p, (uintptr_t)arg)) return fin_fail(h, t, GCH_EINVAL);
  specials_t *sp = h->gc->sp;
  _gc_lock(&sp->lock);
  special_t *rec = _gc_special_new(h, p, SPECIAL_CLEANUP);
  if (rec) {
    rec->u.cleanup.fn = fn;
    rec->u.cleanup.arg = arg;
    rec->u.cleanup.id = ++sp->cleanup_id;
    _gc_special_insert(h, s, rec);
    _gc_special_list_push(&sp->lists[SPECIAL_CLEANUP], rec);
  }
  _gc_unlock(&sp->lock);
  return rec ? GCH_OK : fin_fail(h, t, GCH_ENOMEM);
}

/* ------------------------------------------------------ mark termination */

static bool fin_marked(gc_heap_t *h, uintptr_t addr) {
  gc_span_t *s = span_of(h, addr);
  return bit_get(s->mark_bits, span_obj_index(s, addr));
}

/* Mark the object at addr without scanning it (what it points to is
 * marked already).  The bytes count as marked. */
static void fin_mark_black(gc_heap_t *h, gcwork_t *w, uintptr_t addr) {
  gc_span_t *s = span_of(h, addr);
  size_t idx = span_obj_index(s, addr);
  _Atomic uint64_t *word = (_Atomic uint64_t *)&s->mark_bits[idx >> 6];
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if (atomic_fetch_or_explicit(word, bit, memory_order_relaxed) & bit) return;
  w->marked_objects++;
  w->marked_bytes += s->elemsize;
}

/* Mark what the object at addr points to, leaving the object white. */
static void fin_scan_referents(gc_heap_t *h, gcwork_t *w, uintptr_t addr) {
  gc_span_t *s = span_of(h, addr);
  if (s->layout == LAYOUT_NOSCAN) return;
  _gc_scan_object(h, w, s->base + span_obj_index(s, addr) * s->elemsize);
}

/* Clear the weak handles of the object of finalizer record r: its records
 * follow r in the span's sorted list. */
static void fin_clear_weak(gc_heap_t *h, gc_span_t *s, special_t *r) {
  special_t *x = r->next, *next;
  for (; x && x->addr == r->addr; x = next) {
    next = x->next;
    if (x->kind != SPECIAL_WEAK) continue;
    _gc_weak_clear(x);
    _gc_special_unlink(h, s, x);
    _gc_special_free(h, x);
  }
}

void _gc_fin_mark_ready(gc_heap_t *h, gcwork_t *w) {
  specials_t *sp = h->gc->sp;
  special_t *head = &sp->lists[SPECIAL_FINALIZER], *r, *next;
  special_t cand; /* armed finalizers whose objects were unmarked */
  cand.gnext = cand.gprev = &cand;
  /* One pass: shade each ctx (a root); for an unmarked object mark what
   * it points to and set it aside.  An object marked later in the pass
   * was scanned for nothing, which is harmless: what decides readiness is
   * the mark bit after the drain, and every object still unmarked then
   * was unmarked when visited, so what it reaches is marked. */
  for (r = head->gnext; r != head; r = next) {
    next = r->gnext;
    __builtin_prefetch(next->gnext); /* records are scattered: hide misses */
    _gc_mark_value(h, w, (uintptr_t)r->u.fin.ctx);
    if (fin_marked(h, r->addr)) continue;
    fin_scan_referents(h, w, r->addr);
    _gc_special_list_remove(r);
    _gc_special_list_push(&cand, r);
  }
  _gc_mark_drain(h, w);
  /* Still unmarked: ready.  What they reach is marked, so marking them
   * needs no scan.  The others go back to the armed list. */
  size_t ready = 0;
  for (r = cand.gnext; r != &cand; r = next) {
    next = r->gnext;
    __builtin_prefetch(next->gnext);
    _gc_special_list_remove(r);
    if (fin_marked(h, r->addr)) {
      _gc_special_list_push(head, r);
      continue;
    }
    gc_span_t *s = span_of(h, r->addr);
    fin_clear_weak(h, s, r); /* before the object is revived */
    _gc_special_unlink(h, s, r);
    _gc_fin_enqueue(h, r);
    fin_mark_black(h, w, r->addr);
    ready++;
  }
  if (ready) _gc_fin_wake(h);
}

/* ----------------------------------------------------------------- queue */

void _gc_fin_enqueue(gc_heap_t *h, special_t *r) {
  specials_t *sp = h->gc->sp;
  _gc_lock_assert_held(&sp->lock);
  r->next = NULL;
  r->prev_in_span = NULL;
  if (sp->queue_tail) sp->queue_tail->next = r;
  else sp->queue = r;
  sp->queue_tail = r;
  if (r->kind == SPECIAL_FINALIZER) sp->fin_queued++;
  else sp->cleanup_queued++;
}

/* Functions are taken from the queue a batch at a time (one lock round
 * trip per batch, not per function). */
#define FIN_BATCH 64

/* Up to FIN_BATCH queued records, moved to the running list (so they are
 * still roots while they run); returns how many. */
static size_t fin_take(specials_t *sp, special_t **batch) {
  size_t n = 0;
  _gc_lock(&sp->lock);
  while (n < FIN_BATCH && sp->queue) {
    special_t *r = sp->queue;
    sp->queue = r->next;
    r->next = NULL;
    _gc_special_list_push(&sp->running, r);
    batch[n++] = r;
  }
  if (!sp->queue) sp->queue_tail = NULL;
  _gc_unlock(&sp->lock);
  return n;
}

static void fin_done(gc_heap_t *h, specials_t *sp, special_t **batch, size_t n) {
  _gc_lock(&sp->lock);
  for (size_t i = 0; i < n; i++) {
    special_t *r = batch[i];
    _gc_special_list_remove(r);
    if (r->kind == SPECIAL_FINALIZER) sp->fin_run++;
    else sp->cleanup_run++;
    _gc_special_free(h, r);
  }
  _gc_unlock(&sp->lock);
}

/* Shade what a batch of functions was handed (objects, ctx, args) when a
 * concurrent mark is under way.  The queue and the running list are
 * roots only at mark termination, and roots change without a barrier, so
 * a function that stored its object in a root while a mark ran, then left
 * the running list before that mark ended, would leave the object
 * reachable but unmarked (barrier.c's argument assumes a program cannot
 * re-find an unreachable object; a finalizer is handed one).  No safepoint
 * comes between the check and the shading, so the mark cannot end in
 * between; one that begins later scans the roots. */
static void fin_shade_batch(gc_heap_t *h, gc_thread_t *t, special_t **batch, size_t n) {
  if (!heap_marking(h)) return;
  gcwork_t *w = _gc_thread_work(h, t);
  for (size_t i = 0; i < n; i++) {
    special_t *r = batch[i];
    if (r->kind == SPECIAL_FINALIZER) {
      _gc_mark_value(h, w, r->addr);
      _gc_mark_value(h, w, (uintptr_t)r->u.fin.ctx);
    } else {
      _gc_mark_value(h, w, (uintptr_t)r->u.cleanup.arg);
    }
  }
}

/* Run queued functions on thread t until the queue is empty. */
static size_t fin_run_queue(gc_heap_t *h, gc_thread_t *t) {
  specials_t *sp = h->gc->sp;
  special_t *batch[FIN_BATCH];
  size_t total = 0, n;
  while ((n = fin_take(sp, batch)) != 0) {
    t->in_finalizer++;
    for (size_t i = 0; i < n; i++) {
      special_t *r = batch[i];
      if (r->kind == SPECIAL_FINALIZER) r->u.fin.fn(h, (void *)r->addr, r->u.fin.ctx);
      else r->u.cleanup.fn(r->u.cleanup.arg);
    }
    t->in_finalizer--;
    fin_shade_batch(h, t, batch, n);
    fin_done(h, sp, batch, n);
    total += n;
    gc_safepoint(h);
  }
  return total;
}

GCH_API size_t gc_run_finalizers(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return 0;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) {
    _gc_set_error(h, NULL, GCH_ENOTATTACHED);
    return 0;
  }
  if (t->in_finalizer || t->in_callback) {
    _gc_set_error(h, t, GCH_EBUSY);
    return 0;
  }
  return fin_run_queue(h, t);
}

/* ------------------------------------------------------ finalizer thread */

static void *fin_thread_main(void *arg) {
  gc_heap_t *h = arg;
  specials_t *sp = h->gc->sp;
  if (_gc_thread_attach(h, false) != GCH_OK) return NULL;
  gc_thread_t *t = _gc_thread_current(h);
  for (;;) {
    gc_blocking_enter(h);
    pthread_mutex_lock(&sp->fin_mu);
    while (!sp->fin_work && !sp->fin_stop) pthread_cond_wait(&sp->fin_cv, &sp->fin_mu);
    int stop = sp->fin_stop;
    sp->fin_work = 0;
    pthread_mutex_unlock(&sp->fin_mu);
    gc_blocking_leave(h);
    if (stop) break;
    fin_run_queue(h, t);
  }
  gc_thread_detach(h);
  return NULL;
}

void _gc_fin_wake(gc_heap_t *h) {
  specials_t *sp = h->gc->sp;
  if (!sp->fin_running) return;
  pthread_mutex_lock(&sp->fin_mu);
  sp->fin_work = 1;
  pthread_cond_signal(&sp->fin_cv);
  pthread_mutex_unlock(&sp->fin_mu);
}

gc_result_t _gc_fin_start(gc_heap_t *h) {
  specials_t *sp = h->gc->sp;
  if (!h->config.finalizer_thread) return GCH_OK;
  if (sp->fin_running) {
    if (sp->fin_pid == (long)getpid()) return GCH_OK;
    /* A forked child: the thread stayed in the parent. */
    pthread_mutex_init(&sp->fin_mu, NULL);
    pthread_cond_init(&sp->fin_cv, NULL);
    sp->fin_running = false;
  }
  sp->fin_work = 1; /* run whatever is queued already */
  sp->fin_stop = 0;
  if (pthread_create(&sp->fin_thread, NULL, fin_thread_main, h) != 0) return GCH_ENOMEM;
  sp->fin_running = true;
  sp->fin_pid = (long)getpid();
  return GCH_OK;
}

void _gc_fin_stop(gc_heap_t *h) {
  specials_t *sp = h->gc ? h->gc->sp : NULL;
  if (!sp || !sp->fin_running) return;
  sp->fin_running = false;
  if (sp->fin_pid != (long)getpid()) return; /* forked child: no thread */
  pthread_mutex_lock(&sp->fin_mu);
  sp->fin_stop = 1;
  pthread_cond_signal(&sp->fin_cv);
  pthread_mutex_unlock(&sp->fin_mu);
  gc_blocking_enter(h);
  pthread_join(sp->fin_thread, NULL);
  gc_blocking_leave(h);
}
