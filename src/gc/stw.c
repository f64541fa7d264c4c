/*
 * stw.c -- stopping the world by handshake; safepoints; blocking regions.
 *
 * Each attached thread is RUNNING, PARKED (stopped at a safepoint) or
 * BLOCKING (promised not to touch the heap: a system call).  To stop the
 * world the collector, holding threads_lock so nobody attaches or detaches,
 * sets pub.stw_pending and waits until no other thread is RUNNING.
 *
 * The handshake is Dekker-style on sequentially consistent atomics: a
 * thread leaving a blocking region stores RUNNING and then loads
 * stw_pending; the collector stores stw_pending and then loads each state.
 * At least one of them sees the other's store, so either the collector
 * waits for the thread, or the thread sees the request and parks before it
 * touches the heap.
 *
 * Parking saves the thread's registers (setjmp) and stack pointer so the
 * optional conservative stack scan can see every pointer it holds.
 *
 * What a host must do: call gc_safepoint() in loops that run long without
 * allocating, and bracket calls that may block (I/O, locks, sleeps, joins
 * on other attached threads) with gc_blocking_enter()/gc_blocking_leave().
 * A thread that does neither stalls every collection.
 */
#include "gc/gcint.h"

#include <sched.h>

static bool stw_others_running(gc_heap_t *h, gc_thread_t *self) {
  for (gc_thread_t *t = h->threads; t; t = t->next)
    if (t != self && atomic_load(&t->state) == THR_RUNNING) return true;
  return false;
}

void _gc_stop_the_world(gc_heap_t *h, gc_thread_t *self) {
  uint64_t t0 = _gc_os_nanotime();
  _gc_lock(&h->threads_lock);
  pthread_mutex_lock(&h->stw_lock);
  atomic_store((atomic_int *)&h->pub.stw_pending, 1);
  atomic_thread_fence(memory_order_seq_cst);
  while (stw_others_running(h, self)) pthread_cond_wait(&h->stw_cond, &h->stw_lock);
  pthread_mutex_unlock(&h->stw_lock);
  h->stw_wait_last_ns = _gc_os_nanotime() - t0;
}

void _gc_start_the_world(gc_heap_t *h) {
  pthread_mutex_lock(&h->stw_lock);
  atomic_store((atomic_int *)&h->pub.stw_pending, 0);
  h->stw_epoch++;
  pthread_cond_broadcast(&h->stw_cond);
  pthread_mutex_unlock(&h->stw_lock);
  _gc_unlock(&h->threads_lock);
}

/* Park t until the current stop ends.  Called with t RUNNING. */
void _gc_stw_park(gc_heap_t *h, gc_thread_t *t) {
  setjmp(t->regs);
  t->park_sp = (uintptr_t)__builtin_frame_address(0);
  pthread_mutex_lock(&h->stw_lock);
  atomic_store(&t->state, THR_PARKED);
  pthread_cond_broadcast(&h->stw_cond);
  /* Wait while any stop is pending, not just the one we parked for: a
   * collector that stops the world right after the last one restarted it
   * counts this thread as stopped (PARKED) and must find it so. */
  while (atomic_load((atomic_int *)&h->pub.stw_pending))
    pthread_cond_wait(&h->stw_cond, &h->stw_lock);
  atomic_store(&t->state, THR_RUNNING);
  pthread_mutex_unlock(&h->stw_lock);
}

GCH_API void gc_safepoint_slow(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t || atomic_load(&h->collector) == t) return;
  if (atomic_load((atomic_int *)&h->pub.stw_pending)) _gc_stw_park(h, t);
}

GCH_API void gc_blocking_enter(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) return;
  setjmp(t->regs);
  t->park_sp = (uintptr_t)__builtin_frame_address(0);
  pthread_mutex_lock(&h->stw_lock);
  atomic_store(&t->state, THR_BLOCKING);
  pthread_cond_broadcast(&h->stw_cond); /* a waiting collector may go on */
  pthread_mutex_unlock(&h->stw_lock);
}

GCH_API void gc_blocking_leave(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t || atomic_load(&t->state) != THR_BLOCKING) return;
  atomic_store(&t->state, THR_RUNNING);
  if (atomic_load((atomic_int *)&h->pub.stw_pending)) _gc_stw_park(h, t);
}
