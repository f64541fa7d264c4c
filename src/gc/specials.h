/*
 * specials.h -- per-object extra records ("specials", Go's mheap.go
 * specials): finalizers, weak handles, cleanups and heap-profile records.
 * Shared by specials.c (the records and their lists), finalizer.c
 * (finalizers, cleanups, the queue and the finalizer thread), weak.c (weak
 * handles) and profile.c (the heap profile).  See specials.c for the
 * design and the invariants.
 */
#ifndef GCH_SPECIALS_H
#define GCH_SPECIALS_H

#include "gc/gcint.h"

/* Kinds, in the order records of one object sort in. */
enum special_kind {
  SPECIAL_FINALIZER = 1,
  SPECIAL_WEAK = 2,
  SPECIAL_PROFILE = 3,
  SPECIAL_CLEANUP = 4,
  SPECIAL_NKINDS = 5
};

struct prof_bucket;

/* A weak handle: a 16-B noscan heap object holding its target's address
 * (0 once the target has died; written only under the special lock) and
 * a tag naming the heap.  16 bytes, so it never shares a tiny-allocator
 * block with its target (which it would keep alive). */
struct gc_weak {
  _Atomic uintptr_t target;
  uintptr_t tag;
};
#define WEAK_TAG(h) ((uintptr_t)(h) ^ (uintptr_t)0x7765616b68646c21ull)

/* One record.  While armed it sits on its span's list (`next` and
 * `prev_in_span`, sorted by (addr, kind)) and, for the kinds with roots,
 * on the heap-wide list of its kind (`gnext`/`gprev`).  A queued finalizer
 * or cleanup sits on the run queue (`next`), then on the running list
 * (`gnext`/`gprev`).  The object's offset in its span is addr - base. */
typedef struct special {
  struct special *next, *prev_in_span;
  struct special *gnext, *gprev;
  uintptr_t addr;  /* the object (the address the host passed) */
  uint8_t kind;    /* enum special_kind */
  union {
    struct {
      gc_finalizer_fn fn;
      void *ctx;
    } fin;
    struct {
      struct gc_weak *cell;
    } weak;
    struct {
      void (*fn)(void *arg);
      void *arg;
      uint64_t id;
    } cleanup;
    struct {
      struct prof_bucket *bucket;
      size_t size;
    } prof;
  } u;
} special_t;

/* Heap profile state (profile.c). */
#define PROF_HASH_SIZE 4096
#define PROF_MAX_DEPTH 64

typedef struct prof_counts {
  uint64_t allocs, frees, alloc_bytes, free_bytes;
} prof_counts_t;

typedef struct prof_bucket {
  struct prof_bucket *next; /* hash chain */
  struct prof_bucket *all;  /* every bucket */
  uint64_t hash;
  size_t size;              /* requested bytes of each sampled object */
  prof_counts_t active;     /* published: as of a completed cycle */
  prof_counts_t future[3];  /* indexed by profile cycle % 3 */
  size_t nstk;
  uintptr_t stk[];          /* innermost frame first */
} prof_bucket_t;

typedef struct prof_state {
  gch_lock_t lock;          /* buckets, counts, cycle */
  long rate;                /* mean bytes between samples; 0 = off */
  uint32_t cycle;           /* bumps at each mark termination */
  prof_bucket_t **table;    /* PROF_HASH_SIZE heads, made on first use */
  prof_bucket_t *all;
  size_t nbuckets;
  atomic_uint_fast64_t samples;
} prof_state_t;

/* Search hints: the last record touched on a span, for a few spans (a
 * cache indexed by a hash of the span), so that runs of additions and
 * look-ups near each other are O(1) on the sorted list. */
#define SPECIAL_HINTS 64
typedef struct special_hint {
  gc_span_t *span;
  special_t *rec;
} special_hint_t;

/* Everything specials need, per heap (h->gc->sp). */
typedef struct specials {
  gch_lock_t lock;          /* "speciallock": see specials.c */
  fixalloc_t records;       /* [lock, then h->lock] special_t records */
  special_t *cache;         /* [lock] free records kept back from records */
  size_t ncache;
  special_t lists[SPECIAL_NKINDS]; /* [lock] sentinels: armed records by
                                     * kind (finalizer, weak, cleanup) */
  special_t *queue, *queue_tail;   /* [lock] finalizers/cleanups to run */
  special_t running;        /* [lock] sentinel: functions running now */
  special_hint_t hints[SPECIAL_HINTS]; /* [lock] */
  uint64_t cleanup_id;      /* [lock] last cleanup id given out */
  uint64_t fin_queued, fin_run, cleanup_queued, cleanup_run; /* [lock] */

  /* finalizer thread (finalizer.c) */
  pthread_mutex_t fin_mu;
  pthread_cond_t fin_cv;
  pthread_t fin_thread;
  atomic_bool fin_running;
  long fin_pid;             /* process that started it (fork detection) */
  int fin_work, fin_stop;   /* [fin_mu] */

  prof_state_t prof;
} specials_t;

/* ------------------------------------------------------------ specials.c */

int _gc_specials_init(gc_heap_t *h);
/* Mark termination hook, world stopped, after the normal drain: shade the
 * records' roots, find and queue finalizer-ready objects, keep what they
 * reach alive, start a new profile cycle.  Drains w. */
void _gc_specials_mark(gc_heap_t *h, gcwork_t *w);
/* Sweep hook: before span s's mark bits become its allocation bits,
 * handle the records of the objects that died. */
void _gc_special_sweep(gc_heap_t *h, gc_span_t *s);
void _gc_specials_stats(gc_heap_t *h, gc_stats_t *out);
/* Wait until every span that has records is swept for this cycle (their
 * sweeps, and so their frees, complete).  Attached thread, no lock. */
void _gc_specials_wait_swept(gc_heap_t *h);

/* Resolve obj to the span of a live object whose span is swept for the
 * current cycle.  obj must be an object's base (for the 16-B blocks of the
 * tiny allocator, any address inside the block).  GCH_EFOREIGN otherwise.
 * With wait false, returns GCH_EBUSY instead of waiting for another
 * thread's sweep (so no safepoint is passed).  No lock held. */
gc_result_t _gc_special_object(gc_heap_t *h, uintptr_t obj, gc_span_t **sp,
                               bool wait);
/* Make sure s is swept for the current cycle, sweeping it here when it
 * waits for sweeping.  Returns false when another thread is sweeping it
 * (retry later) or s is no in-use span.  No lock held. */
bool _gc_special_span_swept(gc_heap_t *h, gc_span_t *s);

/* The rest need the special lock held. */
special_t *_gc_special_new(gc_heap_t *h, uintptr_t addr, uint8_t kind);
void _gc_special_free(gc_heap_t *h, special_t *r);
/* Insert r into s's list (after records with the same key). */
void _gc_special_insert(gc_heap_t *h, gc_span_t *s, special_t *r);
/* The first record of (addr, kind) on s, or NULL. */
special_t *_gc_special_find(gc_heap_t *h, gc_span_t *s, uintptr_t addr,
                            uint8_t kind);
/* Take r off s's list (and off its kind's list). */
void _gc_special_unlink(gc_heap_t *h, gc_span_t *s, special_t *r);
void _gc_special_list_push(special_t *head, special_t *r);
void _gc_special_list_remove(special_t *r);

/* ----------------------------------------------------------- finalizer.c */

/* Mark termination: objects with finalizers that nothing reached are
 * queued, their weak handles cleared, and they (and all they reach) are
 * marked.  Special lock held, world stopped. */
void _gc_fin_mark_ready(gc_heap_t *h, gcwork_t *w);
/* Append r (a finalizer or cleanup record off every list) to the queue. */
void _gc_fin_enqueue(gc_heap_t *h, special_t *r);
/* Tell the finalizer thread there is work (no lock held). */
void _gc_fin_wake(gc_heap_t *h);
gc_result_t _gc_fin_start(gc_heap_t *h);
void _gc_fin_stop(gc_heap_t *h);

/* ---------------------------------------------------------------- weak.c */

/* The target of weak record r died (or will be finalized): clear its
 * handle.  Special lock held. */
void _gc_weak_clear(special_t *r);

/* ------------------------------------------------------------- profile.c */

/* The allocation entry points (malloc.c) are placed in this section, so
 * that the frames of ours on a sampled native stack are told from the
 * host's by address (the linker defines __start_/__stop_ symbols). */
#define GCH_ALLOC_ENTRY __attribute__((section("gcheap_alloc_entry")))

void _gc_prof_init(gc_heap_t *h);
/* Set t's allocation-hook countdown from its profile and torture state. */
void _gc_prof_arm(gc_heap_t *h, gc_thread_t *t);
void _gc_prof_thread_init(gc_heap_t *h, gc_thread_t *t);
/* The hook fired: account the bytes since it was armed; true when the
 * allocation under way is to be sampled. */
bool _gc_prof_hook(gc_heap_t *h, gc_thread_t *t);
/* Record the sampled allocation of obj (size bytes requested). */
void _gc_prof_sample(gc_heap_t *h, gc_thread_t *t, void *obj, size_t size);
/* A sampled object died (sweep). */
void _gc_prof_free(gc_heap_t *h, prof_bucket_t *b, size_t size);
/* Mark termination, world stopped: a new profile cycle. */
void _gc_prof_cycle(gc_heap_t *h);

#endif
