/*
 * gcint.h -- collector internals shared by the files of src/gc/.
 * See gc.c for the overview of a cycle.
 */
#ifndef GCH_GC_H
#define GCH_GC_H

#include "heap.h"
#include "gc/lfstack.h"
#include "arena/userarena.h"

/* A work buffer of grey objects: 2 KiB, as Go's workbuf. */
#define WORKBUF_BYTES 2048
#define WORKBUF_N ((WORKBUF_BYTES - 2 * sizeof(void *)) / sizeof(uintptr_t))

typedef struct workbuf {
  lfnode_t node;   /* must be first: the lock-free stack link */
  size_t n;
  uintptr_t obj[WORKBUF_N];
} workbuf_t;

/* Objects larger than this are scanned in pieces (oblets). */
#define OBLET_BYTES ((size_t)128 << 10)

/* A marker's pair of buffers (Go's gcWork): w1 is the one put/get use;
 * w2 gives hysteresis so a marker does not bounce buffers to the global
 * lists at a boundary. */
typedef struct gcwork {
  workbuf_t *w1, *w2;
  /* The only thread setting mark bits (a stop-the-world mark): bits are
   * set with a plain load and store instead of an atomic OR. */
  bool exclusive;
  /* The spans last resolved (a pointer target, an object being scanned):
   * consecutive objects share spans, so a range check saves the arena
   * lookup.  Valid within one mark (no span is freed while marking);
   * cleared when the buffers are disposed. */
  gc_span_t *last_target, *last_scan;
  uint64_t marked_bytes;
  uint64_t marked_objects;
  uint64_t scan_bytes;
} gcwork_t;


struct gc_state {
  lfstack_t full;          /* workbufs with grey objects */
  lfstack_t empty;         /* empty workbufs */
  gch_lock_t wb_lock;      /* allocation of new workbufs */
  persistent_t wb_mem;     /* where workbufs come from */
  size_t wb_count;
  gcwork_t stw_work;       /* the collector's own buffers */

  /* background sweeper (sweeper_* in gc.c) */
  pthread_t sweeper;
  bool sweeper_running;
  pthread_mutex_t sweep_mu;
  pthread_cond_t sweep_cv;
  int sweep_work, sweep_stop; /* [sweep_mu] */

  /* the cycle being run [gc_lock] */
  size_t heap_before;
  atomic_uint_fast64_t marked_bytes;   /* flushed from every gcwork */
  atomic_uint_fast64_t marked_objects;
  atomic_uint_fast64_t scan_bytes;     /* scan work done this cycle */
  uint64_t scan_expected;              /* last cycle's scan work */

  /* concurrent mode (concurrent.c) */
  atomic_int phase;          /* enum gc_phase */
  pthread_t controller;
  bool controller_running;
  pthread_mutex_t ctl_mu;
  pthread_cond_t ctl_cv;     /* controller waits for a trigger */
  pthread_cond_t done_cv;    /* waiters for the end of a cycle */
  pthread_cond_t work_cv;    /* workers wait for a mark to start */
  atomic_uint_fast64_t bg_credit; /* scan work done by workers, stealable */
  atomic_uint_fast64_t mark_cpu_ns; /* CPU time spent marking, all threads */
  size_t alloc_during_mark;  /* heap_live growth during the last mark */
  int ctl_request, ctl_stop; /* [ctl_mu] */
  uint64_t cycles_done;      /* [ctl_mu] concurrent cycles finished */
  unsigned nworkers;         /* mark workers, the controller included */
  pthread_t workers[16];
  unsigned nworker_threads;
  atomic_int nwait;          /* workers out of work */
  atomic_int mark_epoch;     /* bumps when a concurrent mark starts */
  atomic_int mark_done;      /* the concurrent mark found no more work */
  size_t trigger;            /* heap_live that starts a concurrent cycle */
  size_t live_at_start;      /* heap_live when the mark began */
  double overshoot_last;     /* heap at mark end / goal - 1 */
  uint64_t stw1_ns, stw2_ns, conc_ns;
  uint64_t checkmark_cycles;  /* cycles verified by checkmark */

  /* finalizers, weak handles, cleanups, heap profile (specials.c) */
  struct specials *sp;
};

enum gc_phase { PHASE_OFF = 0, PHASE_MARK = 1, PHASE_MARKTERM = 2 };

/* mark.c */
int _gc_work_init(gc_heap_t *h);
void _gc_work_put(gc_heap_t *h, gcwork_t *w, uintptr_t obj);
uintptr_t _gc_work_get(gc_heap_t *h, gcwork_t *w);
void _gc_work_dispose(gc_heap_t *h, gcwork_t *w);
/* Shade the object p points into (any value: non-heap values ignored). */
void _gc_mark_value(gc_heap_t *h, gcwork_t *w, uintptr_t p);
/* Precise slot: as _gc_mark_value, but in debug builds a value inside the
 * heap that hits no allocated object aborts (a dangling pointer). */
void _gc_mark_slot(gc_heap_t *h, gcwork_t *w, uintptr_t p, const void *slot);
void _gc_mark_range_conservative(gc_heap_t *h, gcwork_t *w, uintptr_t lo,
                                 uintptr_t hi);
/* Scan the object (or oblet) at b, a slot address from a work buffer. */
void _gc_scan_object(gc_heap_t *h, gcwork_t *w, uintptr_t b);
/* Scan until no grey object is left. */
void _gc_mark_drain(gc_heap_t *h, gcwork_t *w);

/* roots.c */
void _gc_mark_roots(gc_heap_t *h, gcwork_t *w, gc_thread_t *self);

/* gc.c: the pieces of a cycle (world stopped for begin and finish) */
void _gc_cycle_begin(gc_heap_t *h, gc_thread_t *self, gcwork_t *w);
void _gc_cycle_finish(gc_heap_t *h, gc_thread_t *self, gcwork_t *w,
                      bool forced);
void _gc_work_flush_counters(gc_heap_t *h, gcwork_t *w);
gcwork_t *_gc_thread_work(gc_heap_t *h, gc_thread_t *t);
void _gc_sweeper_wake(gc_heap_t *h);
void _gc_record_pause(gc_heap_t *h, uint64_t ns);
void _gc_trace_cycle(gc_heap_t *h);

/* concurrent.c */
gc_result_t _gc_concurrent_start(gc_heap_t *h);
void _gc_concurrent_stop(gc_heap_t *h);
void _gc_concurrent_trigger(gc_heap_t *h);
void _gc_concurrent_wait_start(gc_heap_t *h);
void _gc_concurrent_set_trigger(gc_heap_t *h, size_t live);
/* Drain up to `budget` bytes of scan work; returns work done. */
uint64_t _gc_mark_drain_some(gc_heap_t *h, gcwork_t *w, uint64_t budget);

/* checkmark.c */
void _gc_checkmark(gc_heap_t *h, gc_thread_t *self);

/* stw.c */
void _gc_stop_the_world(gc_heap_t *h, gc_thread_t *self);
void _gc_start_the_world(gc_heap_t *h);

/* verify.c */
gc_result_t _gc_verify_stopped(gc_heap_t *h, FILE *out);

#endif
