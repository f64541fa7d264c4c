/*
 * gc.c -- the collector: phases of a cycle, pacing, tracing, debug modes.
 *
 * A cycle (stop-the-world mode; the phases are Go's):
 *
 *  1. Sweep termination.  Stop the world (stw.c).  Every thread's cache is
 *     flushed back to the centrals, and spans still unswept from the last
 *     cycle are swept, so every span is swept and no mark bit is set.
 *  2. Mark.  Roots (roots.c) are shaded: registered ranges, the host's
 *     root callbacks, and optionally thread stacks.  Grey objects are
 *     drained from work buffers, scanning each by its pointer map
 *     (mark.c).
 *  3. Mark termination.  Bytes marked become the live heap; the pacer sets
 *     the next goal; h->sweepgen rises by 2, which makes every span
 *     "needs sweeping" at once without touching them.  The world restarts.
 *  4. Sweep.  Lazily, when a thread's cache asks its central for a span
 *     (central.c), and by a background sweeper thread (config
 *     background_sweep, on by default) that walks every class; whatever
 *     is left is finished by the next cycle's step 1.
 *     Sweeping a span turns its mark bits into its allocation bits and
 *     returns it to the page allocator when nothing in it survived.
 *
 * Pacing: goal = live * (1 + percent/100), at least 4 MiB * percent/100.
 * A soft memory limit lowers the goal so that mapped heap memory stays
 * under it (never below the live heap).  Allocation slow paths compare
 * heap_live (bytes in cached spans and large objects since the last mark)
 * with the goal and start a cycle when it is reached.
 *
 * Invariants: one cycle at a time (gc_lock); during a cycle every other
 * attached thread is parked or blocking; a thread inside a root callback or
 * finalizer cannot start a cycle (GCH_EBUSY).
 */
#include "gc/gc.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAP_MIN_BYTES ((size_t)4 << 20)

static unsigned gc_parse_debug(void) {
  const char *v = getenv("GCHEAP_DEBUG");
  unsigned f = 0;
  if (!v) return 0;
  if (strstr(v, "verify")) f |= GCDBG_VERIFY;
  if (strstr(v, "checkmark")) f |= GCDBG_CHECKMARK;
  return f;
}

int _gc_collector_init(gc_heap_t *h) {
  h->gc = _gc_persistent_alloc(&h->meta, sizeof *h->gc, 64);
  if (!h->gc) return -1;
  _gc_work_init(h);
  h->gc->debug = gc_parse_debug();
  int pct = h->config.gc_percent;
  h->heap_min = pct > 0 ? HEAP_MIN_BYTES / 100 * (size_t)pct : HEAP_MIN_BYTES;
  h->heap_goal = pct < 0 ? SIZE_MAX : h->heap_min;
  return 0;
}

/* ------------------------------------------------------ background sweep */

/* The sweeper is an internal attached thread: it sweeps span after span
 * after each cycle, stopping at a safepoint between spans, and waits in a
 * blocking region so it never holds up a stop. */
static void *sweeper_main(void *arg) {
  gc_heap_t *h = arg;
  struct gc_state *g = h->gc;
  if (_gc_thread_attach(h, true) != GCH_OK) return NULL;
  for (;;) {
    gc_blocking_enter(h);
    pthread_mutex_lock(&g->sweep_mu);
    while (!g->sweep_work && !g->sweep_stop)
      pthread_cond_wait(&g->sweep_cv, &g->sweep_mu);
    int stop = g->sweep_stop;
    g->sweep_work = 0;
    pthread_mutex_unlock(&g->sweep_mu);
    gc_blocking_leave(h);
    if (stop) break;
    while (_gc_central_sweep_one(h)) gc_safepoint(h);
  }
  gc_thread_detach(h);
  return NULL;
}

static void sweeper_wake(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (!g->sweeper_running) return;
  pthread_mutex_lock(&g->sweep_mu);
  g->sweep_work = 1;
  pthread_cond_signal(&g->sweep_cv);
  pthread_mutex_unlock(&g->sweep_mu);
}

gc_result_t _gc_collector_start(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (!h->config.background_sweep || g->sweeper_running) return GCH_OK;
  pthread_mutex_init(&g->sweep_mu, NULL);
  pthread_cond_init(&g->sweep_cv, NULL);
  g->sweep_work = g->sweep_stop = 0;
  if (pthread_create(&g->sweeper, NULL, sweeper_main, h) != 0) return GCH_ENOMEM;
  g->sweeper_running = true;
  return GCH_OK;
}

void _gc_collector_stop(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (!g || !g->sweeper_running) return;
  pthread_mutex_lock(&g->sweep_mu);
  g->sweep_stop = 1;
  pthread_cond_signal(&g->sweep_cv);
  pthread_mutex_unlock(&g->sweep_mu);
  gc_blocking_enter(h);
  pthread_join(g->sweeper, NULL);
  gc_blocking_leave(h);
  g->sweeper_running = false;
}

void _gc_collector_destroy(gc_heap_t *h) {
  if (!h->gc) return;
  _gc_collector_stop(h);
  _gc_persistent_release(&h->gc->wb_mem);
}

void _gc_collector_thread_exit(gc_heap_t *h, gc_thread_t *t) {
  (void)h;
  (void)t;
}

/* ---------------------------------------------------------------- pacing */

static void gc_set_goal(gc_heap_t *h, size_t live) {
  int pct = h->config.gc_percent;
  if (pct < 0) {
    h->heap_goal = SIZE_MAX;
    return;
  }
  size_t goal = live + live / 100 * (size_t)pct;
  if (goal < h->heap_min) goal = h->heap_min;
  size_t limit = h->config.memory_limit;
  if (limit) {
    /* Leave room for metadata and a little headroom (Go: 3%, >= 1 MiB). */
    size_t overhead = _gc_meta_bytes(h);
    size_t headroom = GCH_MAX(limit / 33, (size_t)1 << 20);
    size_t lgoal = limit > overhead + headroom ? limit - overhead - headroom : 0;
    if (lgoal < goal) goal = GCH_MAX(lgoal, live + ((size_t)256 << 10));
  }
  h->heap_goal = goal;
}

void _gc_maybe_collect(gc_heap_t *h, gc_thread_t *t) {
  if (gch_likely(atomic_load_explicit(&h->heap_live, memory_order_relaxed) <
                 h->heap_goal))
    return;
  if (atomic_load(&h->collecting) || t->in_callback) return;
  _gc_collect_internal(h, t, false);
}

/* -------------------------------------------------------------- tracing */

static void gc_trace(gc_heap_t *h, uint64_t wait_ns, uint64_t term_ns,
                     uint64_t mark_ns, uint64_t pause_ns) {
  double mb = 1.0 / (1 << 20);
  uint64_t now = _gc_os_nanotime();
  double since = (double)(now - h->start_ns) / 1e9;
  double cpu = since > 0 ? 100.0 * (double)h->pause_total_ns / 1e9 / since : 0;
  unsigned nthr = 0;
  for (gc_thread_t *t = h->threads; t; t = t->next) nthr += !t->internal;
  fprintf(stderr,
          "gc %llu @%.3fs %.0f%%: %.3f+%.3f+%.3f ms clock (stop+sweepterm+mark),"
          " %.1f->%.1f MB heap, %.1f MB live, %.1f MB goal, %.3f ms pause,"
          " %u threads, %s\n",
          (unsigned long long)atomic_load(&h->cycles), since, cpu,
          (double)wait_ns / 1e6, (double)term_ns / 1e6, (double)mark_ns / 1e6,
          (double)h->gc->heap_before * mb,
          (double)atomic_load(&h->heap_inuse) * mb,
          (double)atomic_load(&h->heap_marked) * mb, (double)h->heap_goal * mb,
          (double)pause_ns / 1e6, nthr,
          h->config.mode == GCH_MODE_CONCURRENT ? "concurrent" : "stw");
}

/* ----------------------------------------------------------------- cycle */

/* Take the collection lock without deadlocking against a collector that is
 * waiting for this thread to park. */
static void gc_lock_cycle(gc_heap_t *h, gc_thread_t *t) {
  while (pthread_mutex_trylock(&h->gc_lock) != 0) {
    if (atomic_load((atomic_int *)&h->pub.stw_pending)) _gc_stw_park(h, t);
    else sched_yield();
  }
}

/* Phase 1: every span swept and in a central, every cache empty. */
static void gc_sweep_termination(gc_heap_t *h) {
  for (gc_thread_t *t = h->threads; t; t = t->next) {
    _gc_cache_release_all(h, t);
    _gc_thread_flush_stats(h, t);
  }
  while (_gc_central_sweep_one(h)) {
  }
}

static void gc_mark_phase(gc_heap_t *h, gc_thread_t *self) {
  gcwork_t *w = &h->gc->stw_work;
  memset(w, 0, sizeof *w);
  _gc_mark_roots(h, w, self);
  _gc_mark_drain(h, w);
  _gc_work_dispose(h, w);
  if (!lfstack_empty(&h->gc->full)) gch_throw("mark: grey objects left after drain");
}

static void gc_mark_termination(gc_heap_t *h, bool forced) {
  gcwork_t *w = &h->gc->stw_work;
  atomic_store(&h->heap_marked, w->marked_bytes);
  atomic_store(&h->heap_live, w->marked_bytes);
  h->marked_objects_last = w->marked_objects;
  gc_set_goal(h, w->marked_bytes);
  atomic_fetch_add(&h->sweepgen, 2);
  atomic_store(&h->sweep_cursor, 0);
  atomic_fetch_add(&h->cycles, 1);
  if (forced) atomic_fetch_add(&h->forced_cycles, 1);
}

gc_result_t _gc_collect_internal(gc_heap_t *h, gc_thread_t *t, bool forced) {
  if (t->in_callback) return GCH_EBUSY;
  uint64_t cycle = atomic_load(&h->cycles);
  gc_lock_cycle(h, t);
  if (!forced && atomic_load(&h->cycles) != cycle) {
    /* Another thread collected while we waited: that cycle counts. */
    pthread_mutex_unlock(&h->gc_lock);
    return GCH_OK;
  }
  atomic_store(&h->collecting, 1);
  atomic_store(&h->collector, t);
  uint64_t t0 = _gc_os_nanotime();
  h->gc->heap_before = atomic_load(&h->heap_inuse);
  _gc_stop_the_world(h, t);
  uint64_t t1 = _gc_os_nanotime();
  gc_sweep_termination(h);
  uint64_t t2 = _gc_os_nanotime();
  gc_mark_phase(h, t);
  uint64_t t3 = _gc_os_nanotime();
  gc_mark_termination(h, forced);
  if (h->gc->debug & GCDBG_VERIFY) {
    if (_gc_verify_stopped(h, stderr) != GCH_OK)
      gch_throw("GCHEAP_DEBUG=verify: heap verification failed after a cycle");
  }
  uint64_t t4 = _gc_os_nanotime();
  uint64_t pause = t4 - t0;
  h->pause_last_ns = pause;
  if (pause > h->pause_max_ns) h->pause_max_ns = pause;
  h->pause_total_ns += pause;
  h->mark_ns_total += t3 - t2;
  h->sweep_ns_total += t2 - t1;
  if (h->config.trace) gc_trace(h, t1 - t0, t2 - t1, t3 - t2, pause);
  atomic_store(&h->collector, NULL);
  atomic_store(&h->collecting, 0);
  _gc_start_the_world(h);
  pthread_mutex_unlock(&h->gc_lock);
  sweeper_wake(h);
  return GCH_OK;
}

GCH_API gc_result_t gc_collect(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) {
    _gc_set_error(h, NULL, GCH_ENOTATTACHED);
    return GCH_ENOTATTACHED;
  }
  if (t->in_callback || atomic_load(&h->collector) == t) {
    _gc_set_error(h, t, GCH_EBUSY);
    return GCH_EBUSY;
  }
  return _gc_collect_internal(h, t, true);
}

/* ------------------------------------------------------------- barrier */

/* Stop-the-world mode never turns the barrier on; the concurrent mode
 * shades here.  Calls with the barrier off are harmless. */
GCH_API void gc_write_slow(gc_heap_t *h, void *obj, void **slot, void *val) {
  (void)h;
  (void)obj;
  (void)slot;
  (void)val;
}

GCH_API void gc_write_range_slow(gc_heap_t *h, void **dst, size_t n) {
  (void)h;
  (void)dst;
  (void)n;
}
