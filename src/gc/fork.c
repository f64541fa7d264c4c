/*
 * fork.c -- fork() in any phase leaves the child a usable heap.
 *
 * pthread_atfork handlers, for every live heap:
 *   prepare  take gc_lock (so no cycle is half done: a running concurrent
 *            cycle finishes first) and stop the world, so every other
 *            attached thread is parked at a safepoint or blocking, holding
 *            no heap lock and with its cache in a consistent state;
 *   parent   restart the world, release gc_lock;
 *   child    only the forking thread exists: release the caches of every
 *            other thread record into the centrals and drop the records,
 *            re-create the locks that threads which no longer exist might
 *            have held, restart the world and the collector's threads.
 *
 * This file holds the one piece of process-wide mutable state in gcheap:
 * the list of live heaps that the atfork handlers walk (guarded by
 * fork_mu).  It exists because pthread_atfork handlers take no argument.
 */
#include "gc/gcint.h"

#include <pthread.h>

static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static gc_heap_t *fork_heaps; /* [fork_mu] linked through h->fork_next */

static void fork_prepare(void) {
  pthread_mutex_lock(&fork_mu);
  for (gc_heap_t *h = fork_heaps; h; h = h->fork_next) {
    _gc_lock_cycle(h);
    _gc_stop_the_world(h, _gc_thread_current(h));
    _gc_lock(&h->lock); /* not held by the scavenger thread across fork */
  }
}

static void fork_parent(void) {
  for (gc_heap_t *h = fork_heaps; h; h = h->fork_next) {
    _gc_unlock(&h->lock);
    _gc_start_the_world(h);
    pthread_mutex_unlock(&h->gc_lock);
  }
  pthread_mutex_unlock(&fork_mu);
}

static void fork_reinit_sync(gc_heap_t *h) {
  struct gc_state *g = h->gc;
  pthread_mutex_init(&h->stw_lock, NULL);
  pthread_cond_init(&h->stw_cond, NULL);
  pthread_mutex_init(&g->sweep_mu, NULL);
  pthread_cond_init(&g->sweep_cv, NULL);
  pthread_mutex_init(&g->ctl_mu, NULL);
  pthread_cond_init(&g->ctl_cv, NULL);
  pthread_cond_init(&g->done_cv, NULL);
  pthread_cond_init(&g->work_cv, NULL);
}

static void fork_child_heap(gc_heap_t *h) {
  _gc_unlock(&h->lock);
  _gc_scavenge_forked_child(h);
  gc_thread_t *self = _gc_thread_current(h);
  gc_thread_t **pp = &h->threads;
  while (*pp) {
    gc_thread_t *t = *pp;
    if (t == self) {
      pp = &t->next;
      continue;
    }
    _gc_cache_release_all(h, t);
    _gc_thread_flush_stats(h, t);
    if (t->gcw) _gc_work_dispose(h, t->gcw);
    _gc_lock(&h->lock);
    _gc_span_cache_flush(h, t);
    _gc_fixalloc_free(&h->thread_alloc, t);
    _gc_unlock(&h->lock);
    *pp = t->next;
    h->nthreads--;
  }
  struct gc_state *g = h->gc;
  g->sweeper_running = false;
  g->controller_running = false;
  g->nworker_threads = 0;
  fork_reinit_sync(h);
  atomic_store(&h->collecting, 0);
  atomic_store(&h->collector, NULL);
  _gc_start_the_world(h);
  pthread_mutex_unlock(&h->gc_lock);
  _gc_collector_start(h);
}

static void fork_child(void) {
  for (gc_heap_t *h = fork_heaps; h; h = h->fork_next) fork_child_heap(h);
  pthread_mutex_init(&fork_mu, NULL);
}

static void fork_install(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

void _gc_fork_register(gc_heap_t *h) {
  pthread_once(&fork_once, fork_install);
  pthread_mutex_lock(&fork_mu);
  h->fork_next = fork_heaps;
  fork_heaps = h;
  pthread_mutex_unlock(&fork_mu);
}

void _gc_fork_unregister(gc_heap_t *h) {
  pthread_mutex_lock(&fork_mu);
  gc_heap_t **pp = &fork_heaps;
  while (*pp && *pp != h) pp = &(*pp)->fork_next;
  if (*pp) *pp = h->fork_next;
  pthread_mutex_unlock(&fork_mu);
}
