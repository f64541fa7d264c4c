/*
 * concurrent.c -- the concurrent mode: a controller thread that runs each
 * cycle, background mark workers, mark assists, and the trigger.
 * See gc.c for the phases and barrier.c for why marking stays correct.
 *
 * A concurrent cycle, run by the controller (an internal attached thread):
 *   1. stop the world; sweep termination; shade all roots (a snapshot);
 *      barrier on; allocate-black on; start the world          [pause 1]
 *   2. the controller and the other workers drain the grey objects while
 *      mutators run; mutators shade through the barrier and, when they
 *      allocate while the mark runs, pay with scan work (assists)
 *   3. when every worker is out of work and no full buffer is left: stop
 *      the world; drain what the threads' buffers still hold; publish the
 *      live heap; barrier off; flip the sweep generation        [pause 2]
 *   4. sweeping proceeds lazily and in the background.
 *
 * Termination: a worker that finds no work increments nwait and, if it is
 * the last one and the global list is empty, declares the mark done.  Work
 * that appears later (a mutator's buffer filling up) is drained in pause 2,
 * so a late "done" costs pause time, never correctness.  Workers check the
 * phase at every safepoint and never scan once pause 2 has begun.
 *
 * Pacing: the cycle starts at `trigger`, chosen so that, at the allocation
 * rate measured during the last mark, the mark ends as the heap reaches
 * the goal; clamped to [50%, 95%] of the way from live heap to goal.
 * Assists: a thread allocating during the mark scans
 * bytes * (scan work left / runway left) first, stealing from the
 * workers' surplus credit when there is some; past the goal it keeps
 * assisting, and waits for the cycle to end when no work is left.
 */
#include "gc/gcint.h"

#include <time.h>

#define ASSIST_MIN_WORK ((uint64_t)64 << 10)
#define DRAIN_CHUNK ((uint64_t)256 << 10)
#define TRIGGER_MIN 0.50
#define TRIGGER_MAX 0.95

static void conc_sleep_us(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, NULL);
}

uint64_t _gc_mark_drain_some(gc_heap_t *h, gcwork_t *w, uint64_t budget) {
  struct gc_state *g = h->gc;
  uint64_t start = w->scan_bytes + w->marked_objects;
  unsigned n = 0;
  while (w->scan_bytes + w->marked_objects - start < budget) {
    if (atomic_load(&g->phase) != PHASE_MARK) break;
    uintptr_t b = _gc_work_get(h, w);
    if (!b) break;
    _gc_scan_object(h, w, b);
    if (++n % 64 == 0) {
      gc_thread_t *t = _gc_thread_current(h);
      if (t && atomic_load(&h->collector) != t) gc_safepoint(h);
    }
  }
  uint64_t done = w->scan_bytes + w->marked_objects - start;
  _gc_work_flush_counters(h, w);
  return done;
}

/* ------------------------------------------------------------- workers */

/* Drain until the concurrent mark is done.  Called by the controller and
 * the worker threads, each with its own gcwork. */
static uint64_t conc_thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conc_mark_loop(gc_heap_t *h, gcwork_t *w);

/* Drain until the concurrent mark is done, charging this thread's CPU
 * time to the mark. */
static void conc_mark_until_done(gc_heap_t *h, gcwork_t *w) {
  uint64_t c0 = conc_thread_cpu_ns();
  conc_mark_loop(h, w);
  atomic_fetch_add(&h->gc->mark_cpu_ns, conc_thread_cpu_ns() - c0);
}

/* The loop serves the mark it joined (`epoch`).  A worker parked at a
 * safepoint can sleep through that mark's end and the next one's start (a
 * stop right after a restart counts a thread that has not woken yet as
 * stopped: stw.c), which reset nwait and mark_done under it; it must leave
 * then rather than wait on with a count that no longer exists (every
 * worker waiting and none the last: the mark never ends, and mutators
 * past the goal wait for it forever). */
static void conc_mark_loop(gc_heap_t *h, gcwork_t *w) {
  struct gc_state *g = h->gc;
  int epoch = atomic_load(&g->mark_epoch);
  for (;;) {
    if (atomic_load(&g->mark_done) || atomic_load(&g->phase) != PHASE_MARK ||
        atomic_load(&g->mark_epoch) != epoch)
      return;
    uint64_t got = _gc_mark_drain_some(h, w, DRAIN_CHUNK);
    atomic_fetch_add(&g->bg_credit, got);
    if (got) continue;
    _gc_work_dispose(h, w); /* nothing local: make sure nothing hides here */
    int n = atomic_fetch_add(&g->nwait, 1) + 1;
    if (n == (int)g->nworkers && lfstack_empty(&g->full)) {
      atomic_store(&g->mark_done, 1);
      return;
    }
    while (!atomic_load(&g->mark_done) && lfstack_empty(&g->full)) {
      gc_safepoint(h);
      if (atomic_load(&g->mark_epoch) != epoch) return; /* nwait was reset */
      conc_sleep_us(20);
    }
    atomic_fetch_sub(&g->nwait, 1);
  }
}

static void conc_wait_epoch(gc_heap_t *h, int *seen) {
  struct gc_state *g = h->gc;
  gc_blocking_enter(h);
  pthread_mutex_lock(&g->ctl_mu);
  while (atomic_load(&g->mark_epoch) == *seen && !g->ctl_stop)
    pthread_cond_wait(&g->work_cv, &g->ctl_mu);
  *seen = atomic_load(&g->mark_epoch);
  pthread_mutex_unlock(&g->ctl_mu);
  gc_blocking_leave(h);
}

static void *conc_worker_main(void *arg) {
  gc_heap_t *h = arg;
  struct gc_state *g = h->gc;
  if (_gc_thread_attach(h, true) != GCH_OK) return NULL;
  gc_thread_t *self = _gc_thread_current(h);
  gcwork_t *w = _gc_thread_work(h, self);
  int seen = 0;
  for (;;) {
    conc_wait_epoch(h, &seen);
    pthread_mutex_lock(&g->ctl_mu);
    int stop = g->ctl_stop;
    pthread_mutex_unlock(&g->ctl_mu);
    if (stop) break;
    conc_mark_until_done(h, w);
  }
  gc_thread_detach(h);
  return NULL;
}

/* ---------------------------------------------------------- controller */

static void conc_cycle(gc_heap_t *h, gc_thread_t *self) {
  struct gc_state *g = h->gc;
  gcwork_t *w = _gc_thread_work(h, self);
  _gc_lock_cycle(h);
  if (atomic_load(&h->heap_live) < g->trigger) { /* a forced cycle ran */
    pthread_mutex_unlock(&h->gc_lock);
    return;
  }
  atomic_store(&h->collecting, 1);
  /* Finish the last cycle's sweep while the world still runs (Go's
   * gcStart does the same), so the stop below has almost nothing to sweep. */
  while (_gc_central_sweep_one(h)) gc_safepoint(h);
  atomic_store(&h->collector, self);
  uint64_t t0 = _gc_os_nanotime();
  g->heap_before = atomic_load(&h->heap_inuse);
  _gc_stop_the_world(h, self);
  _gc_cycle_begin(h, self, w);
  atomic_store(&g->mark_done, 0);
  atomic_store(&g->nwait, 0);
  atomic_store(&g->bg_credit, 0);
  atomic_store(&g->phase, PHASE_MARK);
  atomic_store((atomic_int *)&h->pub.barrier_on, 1);
  _gc_work_dispose(h, w); /* roots go to the global list for the workers */
  uint64_t t1 = _gc_os_nanotime();
  g->stw1_ns = t1 - t0;
  _gc_record_pause(h, t1 - t0);
  pthread_mutex_lock(&g->ctl_mu);
  atomic_fetch_add(&g->mark_epoch, 1);
  pthread_cond_broadcast(&g->work_cv);
  pthread_mutex_unlock(&g->ctl_mu);
  _gc_start_the_world(h);

  conc_mark_until_done(h, w);

  uint64_t t2 = _gc_os_nanotime();
  _gc_stop_the_world(h, self);
  atomic_store(&g->phase, PHASE_MARKTERM);
  g->alloc_during_mark = atomic_load(&h->heap_live) - g->live_at_start;
  _gc_cycle_finish(h, self, w, false);
  uint64_t t3 = _gc_os_nanotime();
  g->conc_ns = t2 - t1;
  g->stw2_ns = t3 - t2;
  h->mark_ns_total += t2 - t1;
  _gc_record_pause(h, t3 - t2);
  _gc_trace_cycle(h);
  atomic_store(&h->collector, NULL);
  atomic_store(&h->collecting, 0);
  _gc_start_the_world(h);
  pthread_mutex_unlock(&h->gc_lock);
  _gc_sweeper_wake(h);
  pthread_mutex_lock(&g->ctl_mu);
  g->cycles_done++;
  pthread_cond_broadcast(&g->done_cv);
  pthread_mutex_unlock(&g->ctl_mu);
}

static void *conc_controller_main(void *arg) {
  gc_heap_t *h = arg;
  struct gc_state *g = h->gc;
  if (_gc_thread_attach(h, true) != GCH_OK) return NULL;
  gc_thread_t *self = _gc_thread_current(h);
  for (;;) {
    gc_blocking_enter(h);
    pthread_mutex_lock(&g->ctl_mu);
    while (!g->ctl_request && !g->ctl_stop) pthread_cond_wait(&g->ctl_cv, &g->ctl_mu);
    int stop = g->ctl_stop;
    g->ctl_request = 0;
    pthread_mutex_unlock(&g->ctl_mu);
    gc_blocking_leave(h);
    if (stop) break;
    conc_cycle(h, self);
  }
  gc_thread_detach(h);
  return NULL;
}

static unsigned conc_nworkers(gc_heap_t *h) {
  unsigned n = h->config.mark_workers;
  if (!n) {
    int cpus = _gc_os_ncpu();
    n = (unsigned)((cpus + 2) / 4); /* round(25% of the CPUs) */
    if (n < 1) n = 1;
  }
  return GCH_MIN(n, 16u);
}

gc_result_t _gc_concurrent_start(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (h->config.mode != GCH_MODE_CONCURRENT || g->controller_running) return GCH_OK;
  pthread_mutex_init(&g->ctl_mu, NULL);
  pthread_cond_init(&g->ctl_cv, NULL);
  pthread_cond_init(&g->done_cv, NULL);
  pthread_cond_init(&g->work_cv, NULL);
  g->ctl_request = g->ctl_stop = 0;
  g->nworkers = conc_nworkers(h);
  if (pthread_create(&g->controller, NULL, conc_controller_main, h) != 0)
    return GCH_ENOMEM;
  g->controller_running = true;
  g->nworker_threads = 0;
  for (unsigned i = 1; i < g->nworkers; i++) {
    if (pthread_create(&g->workers[g->nworker_threads], NULL, conc_worker_main, h))
      break;
    g->nworker_threads++;
  }
  g->nworkers = g->nworker_threads + 1;
  return GCH_OK;
}

void _gc_concurrent_stop(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (!g || !g->controller_running) return;
  pthread_mutex_lock(&g->ctl_mu);
  g->ctl_stop = 1;
  pthread_cond_broadcast(&g->ctl_cv);
  pthread_cond_broadcast(&g->work_cv);
  pthread_mutex_unlock(&g->ctl_mu);
  gc_blocking_enter(h);
  pthread_join(g->controller, NULL);
  for (unsigned i = 0; i < g->nworker_threads; i++) pthread_join(g->workers[i], NULL);
  gc_blocking_leave(h);
  g->controller_running = false;
  g->nworker_threads = 0;
}

void _gc_concurrent_trigger(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (!g->controller_running) return;
  pthread_mutex_lock(&g->ctl_mu);
  if (!g->ctl_request) {
    g->ctl_request = 1;
    pthread_cond_signal(&g->ctl_cv);
  }
  pthread_mutex_unlock(&g->ctl_mu);
}

/* Where the next concurrent cycle starts (called at mark termination). */
void _gc_concurrent_set_trigger(gc_heap_t *h, size_t live) {
  struct gc_state *g = h->gc;
  size_t goal = h->heap_goal;
  if (goal == SIZE_MAX) {
    g->trigger = SIZE_MAX;
    return;
  }
  size_t runway = goal > live ? goal - live : 0;
  size_t lo = live + (size_t)((double)runway * TRIGGER_MIN);
  size_t hi = live + (size_t)((double)runway * TRIGGER_MAX);
  /* Leave as much room as the last mark needed, plus a tenth. */
  size_t need = g->alloc_during_mark + g->alloc_during_mark / 10;
  size_t t = goal > need ? goal - need : 0;
  g->trigger = GCH_MIN(GCH_MAX(t, lo), hi);
}

/* ------------------------------------------------------------- assists */

/* Wait on cv for at most ns nanoseconds (callers re-check their
 * condition: a lost wake-up costs one timeout, never a hang). */
static void conc_timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, long ns) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += ns;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(cv, mu, &ts);
}

static void conc_wait_cycle_end(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  gc_blocking_enter(h);
  pthread_mutex_lock(&g->ctl_mu);
  uint64_t seen = g->cycles_done;
  while (g->cycles_done == seen && atomic_load(&g->phase) != PHASE_OFF && !g->ctl_stop) {
    conc_timed_wait(&g->done_cv, &g->ctl_mu, 1000000);
  }
  pthread_mutex_unlock(&g->ctl_mu);
  gc_blocking_leave(h);
}

/* Wait (in a blocking region) until the requested cycle has started its
 * mark or finished. */
void _gc_concurrent_wait_start(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  if (!g->controller_running) return;
  gc_blocking_enter(h);
  pthread_mutex_lock(&g->ctl_mu);
  uint64_t seen = g->cycles_done;
  /* Bounded: a controller that cannot run (in a forked child where thread
   * creation hangs under a sanitizer, say) must not stop the mutator for
   * good; past 10 ms the heap overshoots its goal instead. */
  for (int i = 0; i < 50 && g->ctl_request && g->cycles_done == seen &&
                  !g->ctl_stop && atomic_load(&g->phase) == PHASE_OFF;
       i++)
    conc_timed_wait(&g->done_cv, &g->ctl_mu, 200000);
  pthread_mutex_unlock(&g->ctl_mu);
  gc_blocking_leave(h);
}

void _gc_assist(gc_heap_t *h, gc_thread_t *t, size_t bytes) {
  struct gc_state *g = h->gc;
  if (atomic_load(&g->phase) != PHASE_MARK || t->internal || t->in_callback) return;
  uint64_t done = atomic_load(&g->scan_bytes);
  uint64_t left = g->scan_expected > done ? g->scan_expected - done : 0;
  if (left < ASSIST_MIN_WORK) left = ASSIST_MIN_WORK;
  size_t live = atomic_load(&h->heap_live);
  size_t runway = h->heap_goal > live ? h->heap_goal - live : (size_t)1 << 20;
  double per_byte = (double)left / (double)runway;
  uint64_t debt = (uint64_t)((double)bytes * per_byte);
  /* Steal the workers' surplus first. */
  uint64_t credit = atomic_load(&g->bg_credit);
  while (credit && debt) {
    uint64_t take = GCH_MIN(credit, debt);
    if (atomic_compare_exchange_weak(&g->bg_credit, &credit, credit - take)) {
      debt -= take;
      break;
    }
  }
  gcwork_t *w = _gc_thread_work(h, t);
  uint64_t c0 = conc_thread_cpu_ns();
  if (debt) _gc_mark_drain_some(h, w, debt + ASSIST_MIN_WORK);
  /* Past the goal: no allocation outruns the mark. */
  while (atomic_load(&g->phase) == PHASE_MARK &&
         atomic_load(&h->heap_live) > h->heap_goal + h->heap_goal / 10) {
    if (!_gc_mark_drain_some(h, w, DRAIN_CHUNK)) conc_wait_cycle_end(h);
  }
  atomic_fetch_add(&g->mark_cpu_ns, conc_thread_cpu_ns() - c0);
}
