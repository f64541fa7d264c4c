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
 *  3. Mark termination.  After the last drain, specials (specials.c) shade
 *     their roots, queue the finalizers of unreachable objects and revive
 *     those objects, and the heap profile starts a new cycle.
 *     Bytes marked become the live heap; the pacer sets
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
 * attached thread is parked or blocking; a thread inside a root callback
 * cannot start a cycle (GCH_EBUSY), nor can gc_collect inside a finalizer.
 */
#include "gc/gcint.h"
#include "gc/specials.h"

#include <sched.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAP_MIN_BYTES ((size_t)4 << 20)

static void gc_set_goal(gc_heap_t *h, size_t live);

int _gc_collector_init(gc_heap_t *h) {
  h->gc = _gc_persistent_alloc(&h->meta, sizeof *h->gc, 64);
  if (!h->gc) return -1;
  if (_gc_work_init(h) != 0) return -1;
  if (_gc_specials_init(h) != 0) return -1;
  int pct = h->config.gc_percent;
  h->heap_min = pct > 0 ? HEAP_MIN_BYTES / 100 * (size_t)pct : HEAP_MIN_BYTES;
  gc_set_goal(h, 0);
  _gc_concurrent_set_trigger(h, 0);
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

void _gc_sweeper_wake(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (!g->sweeper_running) return;
  pthread_mutex_lock(&g->sweep_mu);
  g->sweep_work = 1;
  pthread_cond_signal(&g->sweep_cv);
  pthread_mutex_unlock(&g->sweep_mu);
}

gc_result_t _gc_collector_start(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  gc_result_t r = _gc_concurrent_start(h);
  if (r != GCH_OK) return r;
  r = _gc_scavenge_start(h);
  if (r != GCH_OK) return r;
  r = _gc_fin_start(h); /* finalizer thread, when configured */
  if (r != GCH_OK) return r;
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
  if (!g) return;
  _gc_fin_stop(h);
  _gc_concurrent_stop(h);
  _gc_scavenge_stop(h);
  if (!g->sweeper_running) return;
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

/* ---------------------------------------------------------------- pacing */

static void gc_set_goal(gc_heap_t *h, size_t live) {
  int pct = h->config.gc_percent;
  /* Percent off: no goal of its own, but a memory limit still applies. */
  size_t goal = SIZE_MAX;
  if (pct >= 0) {
    goal = live + live / 100 * (size_t)pct;
    if (goal < h->heap_min) goal = h->heap_min;
  }
  /* A hard limit paces like a soft one: collect before hitting it. */
  size_t limit = h->config.memory_limit, hard = h->config.hard_limit;
  if (hard && (!limit || hard < limit)) limit = hard;
  if (limit) {
    /* Leave room for metadata and a little headroom (Go: 3%, >= 1 MiB). */
    size_t overhead = _gc_meta_bytes(h);
    size_t headroom = GCH_MAX(limit / 33, (size_t)1 << 20);
    size_t lgoal = limit > overhead + headroom ? limit - overhead - headroom : 0;
    if (lgoal < goal) goal = GCH_MAX(lgoal, live + ((size_t)256 << 10));
  }
  h->heap_goal = goal;
}


/* -------------------------------------------------------------- tracing */

/* One line per cycle, in the spirit of Go's gctrace=1:
 *   gc N @T s P%: A+B+C ms clock, W ms stop, X->Y MB heap, L MB live,
 *   S MB scanned, G MB goal, O% over goal, K threads, MODE (how this
 *   cycle ran: "stw" for a stopped-world cycle, also gc_collect in the
 *   concurrent mode)
 * A = first stop (stw mode: the whole cycle), B = concurrent mark,
 * C = mark termination stop, W = time to stop the threads, X/Y = in-use
 * span bytes when the cycle began and ended (freed spans return to the
 * page allocator as they are swept, after the cycle), L = bytes marked, S = bytes scanned by
 * the markers (mark work), O = how far the heap
 * passed the goal before the cycle finished (negative: finished early). */
static void gc_trace(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  double mb = 1.0 / (1 << 20);
  uint64_t now = _gc_os_nanotime();
  double since = (double)(now - h->start_ns) / 1e9;
  double cpu = since > 0 ? 100.0 * (double)h->pause_total_ns / 1e9 / since : 0;
  unsigned nthr = 0;
  for (gc_thread_t *t = h->threads; t; t = t->next) nthr += !t->internal;
  char ua[96];
  _gc_userarena_trace(h, ua, sizeof ua); /* "" when no user arenas */
  fprintf(stderr,
          "gc %llu @%.3fs %.0f%%: %.3f+%.3f+%.3f ms clock, %.3f ms stop,"
          " %.1f->%.1f MB heap, %.1f MB live, %.1f MB scanned, %.1f MB goal,"
          " %+.0f%% over goal,"
          " %u threads, %s%s\n",
          (unsigned long long)atomic_load(&h->cycles), since, cpu,
          (double)g->stw1_ns / 1e6, (double)g->conc_ns / 1e6,
          (double)g->stw2_ns / 1e6, (double)h->stw_wait_last_ns / 1e6,
          (double)g->heap_before * mb, (double)atomic_load(&h->heap_inuse) * mb,
          (double)atomic_load(&h->heap_marked) * mb, (double)g->scan_expected * mb,
          h->heap_goal == SIZE_MAX ? 0.0 : (double)h->heap_goal * mb,
          100.0 * g->overshoot_last, nthr,
          g->conc_ns || g->stw2_ns ? "concurrent" : "stw", ua);
}

/* Remember each pause for the stats' ring (p99 in benchmarks). */
static void gc_pause_log(gc_heap_t *h, uint64_t ns) {
  h->pause_ring[h->pause_count % GCH_PAUSE_RING] = ns;
  h->pause_end_ring[h->pause_count % GCH_PAUSE_RING] = _gc_os_nanotime();
  h->pause_count++;
}

void _gc_record_pause(gc_heap_t *h, uint64_t ns) {
  h->pause_last_ns = ns;
  if (ns > h->pause_max_ns) h->pause_max_ns = ns;
  h->pause_total_ns += ns;
  gc_pause_log(h, ns);
}

void _gc_trace_cycle(gc_heap_t *h) {
  if (h->config.trace) gc_trace(h);
}

/* ----------------------------------------------------------------- cycle */

/* Take the collection lock.  Waiting happens in a blocking region, so a
 * collector that holds the lock and stops the world does not wait for us;
 * nobody stops the world without holding gc_lock, so none is pending once
 * we have it. */
void _gc_lock_cycle(gc_heap_t *h) {
  if (pthread_mutex_trylock(&h->gc_lock) == 0) return;
  gc_blocking_enter(h);
  pthread_mutex_lock(&h->gc_lock);
  gc_blocking_leave(h);
}

/* The gcwork a thread uses for barrier shading and assists. */
gcwork_t *_gc_thread_work(gc_heap_t *h, gc_thread_t *t) {
  if (!t->gcw) {
    _gc_lock(&h->lock);
    t->gcw = _gc_persistent_alloc(&h->meta, sizeof(gcwork_t), 64);
    _gc_unlock(&h->lock);
    if (!t->gcw) gch_throw("out of memory for a thread's mark state");
  }
  return t->gcw;
}

void _gc_work_flush_counters(gc_heap_t *h, gcwork_t *w) {
  struct gc_state *g = h->gc;
  atomic_fetch_add(&g->marked_bytes, w->marked_bytes);
  atomic_fetch_add(&g->marked_objects, w->marked_objects);
  atomic_fetch_add(&g->scan_bytes, w->scan_bytes);
  w->marked_bytes = w->marked_objects = w->scan_bytes = 0;
}

/* Every thread's cache back to the centrals (spans swept or cached-swept
 * become swept-in-central; tiny blocks dropped).  World stopped. */
static void gc_release_caches(gc_heap_t *h) {
  for (gc_thread_t *t = h->threads; t; t = t->next) {
    _gc_cache_release_all(h, t);
    _gc_thread_flush_stats(h, t);
  }
}

/* Sweep termination and root marking, with the world stopped: every span
 * swept, no mark bit set, every cache empty, roots shaded into w. */
void _gc_cycle_begin(gc_heap_t *h, gc_thread_t *self, gcwork_t *w) {
  struct gc_state *g = h->gc;
  uint64_t t0 = _gc_os_nanotime();
  gc_release_caches(h);
  while (_gc_central_sweep_one(h)) {
  }
  h->sweep_ns_total += _gc_os_nanotime() - t0;
  atomic_store(&g->marked_bytes, 0);
  atomic_store(&g->marked_objects, 0);
  atomic_store(&g->scan_bytes, 0);
  g->live_at_start = atomic_load(&h->heap_live);
  _gc_mark_roots(h, w, self);
}

/* Finish marking and the cycle, with the world stopped: shade what the
 * threads' buffers still hold, drain, publish the live heap, set the next
 * goal, flip the sweep generation. */
void _gc_cycle_finish(gc_heap_t *h, gc_thread_t *self, gcwork_t *w,
                      bool forced) {
  struct gc_state *g = h->gc;
  for (gc_thread_t *t = h->threads; t; t = t->next) {
    if (!t->gcw) continue;
    _gc_work_dispose(h, t->gcw);
    _gc_work_flush_counters(h, t->gcw);
  }
  _gc_mark_drain(h, w);
  _gc_specials_mark(h, w); /* special roots, finalizer-ready objects */
  _gc_work_dispose(h, w);
  _gc_work_flush_counters(h, w);
  if (!lfstack_empty(&g->full)) gch_throw("mark: grey objects left after drain");
  if (h->debug & GCDBG_CHECKMARK) _gc_checkmark(h, self);
  atomic_store((atomic_int *)&h->pub.barrier_on, 0);
  atomic_store(&g->phase, PHASE_OFF);
  /* Objects allocated black during a concurrent mark were counted into
   * marked_bytes when allocated; caches are flushed before the flip so no
   * thread keeps allocating from a span that is about to need sweeping. */
  gc_release_caches(h);
  _gc_userarena_mark_done(h); /* unreferenced quarantined chunks: reusable */
  size_t live = atomic_load(&g->marked_bytes);
  g->overshoot_last = h->heap_goal && h->heap_goal != SIZE_MAX
                          ? (double)atomic_load(&h->heap_live) / (double)h->heap_goal - 1.0
                          : 0;
  atomic_store(&h->heap_marked, live);
  atomic_store(&h->heap_live, live);
  h->marked_objects_last = atomic_load(&g->marked_objects);
  g->scan_expected = atomic_load(&g->scan_bytes);
  gc_set_goal(h, live);
  _gc_scavenge_cycle_end(h, h->heap_goal);
  _gc_concurrent_set_trigger(h, live);
  atomic_fetch_add(&h->sweepgen, 2);
  atomic_store(&h->sweep_cursor, 0);
  if ((h->debug & GCDBG_VERIFY) && _gc_verify_stopped(h, stderr) != GCH_OK)
    gch_throw("GCHEAP_DEBUG=verify: heap verification failed after a cycle");
  atomic_fetch_add(&h->cycles, 1);
  if (forced) atomic_fetch_add(&h->forced_cycles, 1);
}

/* A whole cycle with the world stopped throughout. */
static void gc_cycle_stw(gc_heap_t *h, gc_thread_t *t, bool forced) {
  struct gc_state *g = h->gc;
  gcwork_t *w = &g->stw_work;
  memset(w, 0, sizeof *w);
  w->exclusive = true; /* the world is stopped and only we mark */
  uint64_t t0 = _gc_os_nanotime();
  h->gc->heap_before = atomic_load(&h->heap_inuse);
  _gc_stop_the_world(h, t);
  uint64_t t1 = _gc_os_nanotime();
  _gc_cycle_begin(h, t, w);
  uint64_t t2 = _gc_os_nanotime();
  _gc_mark_drain(h, w);
  uint64_t t3 = _gc_os_nanotime();
  atomic_fetch_add(&g->mark_cpu_ns, t3 - t2); /* one thread, all of it */
  _gc_cycle_finish(h, t, w, forced);
  uint64_t t4 = _gc_os_nanotime();
  h->mark_ns_total += t3 - t2;
  _gc_record_pause(h, t4 - t0);
  g->stw1_ns = t4 - t0;
  g->stw2_ns = 0;
  g->conc_ns = 0;
  (void)t1;
  _gc_trace_cycle(h);
  _gc_start_the_world(h);
}

gc_result_t _gc_collect_internal(gc_heap_t *h, gc_thread_t *t, bool forced) {
  if (t->in_callback) return GCH_EBUSY;
  /* This thread's registers and stack top, for conservative stack scans. */
  setjmp(t->regs);
  t->park_sp = (uintptr_t)__builtin_frame_address(0);
  uint64_t cycle = atomic_load(&h->cycles);
  _gc_lock_cycle(h);
  if (!forced && atomic_load(&h->cycles) != cycle) {
    /* Another thread collected while we waited: that cycle counts. */
    pthread_mutex_unlock(&h->gc_lock);
    return GCH_OK;
  }
  atomic_store(&h->collecting, 1);
  while (_gc_central_sweep_one(h)) gc_safepoint(h); /* before the stop */
  atomic_store(&h->collector, t);
  gc_cycle_stw(h, t, forced);
  atomic_store(&h->collector, NULL);
  atomic_store(&h->collecting, 0);
  pthread_mutex_unlock(&h->gc_lock);
  _gc_sweeper_wake(h);
  return GCH_OK;
}

/* Slow-path check of the pacer: in stop-the-world mode collect now; in
 * concurrent mode wake the controller (and assist while it marks). */
void _gc_maybe_collect(gc_heap_t *h, gc_thread_t *t) {
  size_t live = atomic_load_explicit(&h->heap_live, memory_order_relaxed);
  if (h->config.mode == GCH_MODE_CONCURRENT) {
    if (live >= h->gc->trigger && atomic_load(&h->gc->phase) == PHASE_OFF) {
      _gc_concurrent_trigger(h);
      /* Past the goal with no mark running (the controller has not been
       * scheduled yet): wait for it rather than outrun it. */
      if (live >= h->heap_goal && !t->internal && !t->in_callback)
        _gc_concurrent_wait_start(h);
    }
    return;
  }
  if (gch_likely(live < h->heap_goal)) return;
  if (atomic_load(&h->collecting) || t->in_callback) return;
  _gc_collect_internal(h, t, false);
}

GCH_API gc_result_t gc_collect(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) {
    _gc_set_error(h, NULL, GCH_ENOTATTACHED);
    return GCH_ENOTATTACHED;
  }
  if (t->in_callback || t->in_finalizer || atomic_load(&h->collector) == t) {
    _gc_set_error(h, t, GCH_EBUSY);
    return GCH_EBUSY;
  }
  gc_result_t r = _gc_collect_internal(h, t, true);
  if (r == GCH_OK) _gc_central_sweep_all(h);
  return r;
}

double _gc_last_overshoot(gc_heap_t *h) { return h->gc->overshoot_last; }
uint64_t _gc_mark_cpu_ns(gc_heap_t *h) { return atomic_load(&h->gc->mark_cpu_ns); }
