/*
 * heap.h -- the heap object and the records every layer shares: heap arenas
 * and the arena index, spans, centrals, types and attached threads.
 *
 * See src/alloc/malloc.c for how an allocation flows through these and
 * src/gc/gc.c for how a collection does.  All mutable state of a heap hangs
 * off struct gc_heap, so two heaps live side by side in one process; the
 * only process-wide state is a thread-local list of (heap, thread) records.
 *
 * Guards are written on each field: [heap lock] = h->lock, [central] = the
 * central's lock, [owner] = only the owning thread, [stw] = only while the
 * world is stopped, [atomic] = atomic accesses.
 *
 * Lock order (outer first): gc_lock > threads_lock > central locks >
 * h->lock.  stw_lock is a leaf.
 */
#ifndef GCH_HEAP_H
#define GCH_HEAP_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gcheap.h"
#include "common.h"
#include "arena/os.h"
#include "arena/meta.h"
#include "arena/pagealloc.h"
#include "alloc/sizeclasses.h"

/* Scan objects over 512 B start with a header holding their type; 16
 * bytes so the object itself stays 16-byte aligned. */
#define GCH_HEADER_BYTES 16

/* The tiny allocator packs into 16-B blocks of class 2, noscan. */
#define GCH_TINY_SPAN_CLASS ((2 << 1) | 1)

/* ------------------------------------------------------------ heap arenas */

#define GCH_ARENA_SHIFT 26
#define GCH_ARENA_BYTES ((size_t)1 << GCH_ARENA_SHIFT) /* 64 MiB */
#define GCH_ARENA_PAGES (GCH_ARENA_BYTES / GCH_PAGE_SIZE) /* 8192 */
#define GCH_ARENA_INDEX_BITS (GCH_ADDR_BITS - GCH_ARENA_SHIFT) /* 22 */

struct gc_span;

/* Metadata of one 64 MiB heap arena, off-heap.  spans[i] is the span
 * holding page i for every page of an in-use span (interior pointers
 * resolve in O(1)); NULL for free pages.  Written with release stores by
 * the thread that allocated the span, read with acquire loads. */
typedef struct heap_arena {
  _Atomic(struct gc_span *) spans[GCH_ARENA_PAGES];
  uint64_t page_in_use[GCH_ARENA_PAGES / 64]; /* first page of in-use spans */
  uint64_t page_specials[GCH_ARENA_PAGES / 64]; /* spans with specials */
  uintptr_t base;
  int user_arena; /* 1: reserved for user arenas (src/arena/userarena.c) */
} heap_arena_t;

/* Every reservation of arenas, so destroy and verify can find them. */
struct arena_resv {
  uintptr_t base;
  size_t bytes;
  struct arena_resv *next;
};

/* ------------------------------------------------------------------ types */

/* A registered type.  map has one bit per word of one element; mask64 is
 * the same map when the element has at most 64 words.  Types whose map is
 * empty are allocated noscan. */
struct gc_type {
  const char *name;
  size_t size;      /* bytes of one element, multiple of 8 */
  size_t nwords;    /* size / 8 */
  uint64_t mask64;  /* map when nwords <= 64 */
  const uint64_t *map; /* (nwords + 63) / 64 words */
  bool noscan;      /* no pointer words at all */
  bool conservative; /* internal: every word may be a pointer */
  /* Precomputed for gc_alloc's fast path: the span class of one object
   * when it is a small noscan object (>= 16 B) or a small heap-bits
   * object (<= 512 B); 0 when one object takes another path. */
  uint8_t fast_spc;
  bool all_ptrs;    /* every word a pointer (nwords <= 64): arrays tile to ones */
};

/* ------------------------------------------------------------------ spans */

enum span_state { SPAN_DEAD = 0, SPAN_IN_USE = 1, SPAN_USER_ARENA = 2 };

/* How an object's pointer words are found (see alloc/malloc.c). */
enum span_layout {
  LAYOUT_NOSCAN = 0,   /* no pointers */
  LAYOUT_HEAPBITS = 1, /* small scan: 1 bit per word at the span's tail */
  LAYOUT_HEADER = 2,   /* small scan > 512 B: type pointer in a header word */
  LAYOUT_LARGE = 3     /* one object; type in large_type */
};

/* Sweep generation of a span relative to h->sweepgen (Go's table):
 *   sg - 2  needs sweeping        sg - 1  being swept
 *   sg      swept, in a central   sg + 1  cached before sweep began
 *   sg + 3  swept, then cached
 * A span is allocated from only when it is swept for this cycle. */
typedef struct gc_span {
  uintptr_t base;           /* first byte; immutable while in use */
  size_t npages;
  uintptr_t limit;          /* base + nelems * elemsize */
  struct gc_span *next, *prev; /* [central] list links, or free list */
  uint8_t spanclass;        /* sizeclass << 1 | noscan; 0/1 = large */
  uint8_t layout;           /* enum span_layout */
  _Atomic uint8_t state;    /* enum span_state; set last, read first */
  uint8_t needzero;         /* freed slots may hold garbage */
  uint8_t poisoned;         /* [owner] every free slot holds the clobber
                             * poison (GCHEAP_DEBUG=clobberfree, sweep.c) */
  uint8_t list;             /* which central list holds it (central.c) */
  size_t elemsize;          /* slot bytes (whole span for large) */
  uint32_t divmagic;        /* index = (off * divmagic) >> 32 */
  uint16_t nelems;
  uint16_t freeindex;       /* [owner] slots below are allocated */
  uint16_t alloc_count;     /* [owner] allocated slots */
  uint64_t alloc_cache;     /* [owner] ~alloc_bits from freeindex */
  uint64_t *alloc_bits;     /* 1 bit per slot */
  uint64_t *mark_bits;      /* [atomic during mark] 1 bit per slot */
  uint64_t *heap_bits;      /* LAYOUT_HEAPBITS: 1 bit per word, span tail */
  _Atomic uint32_t sweepgen;
  const gc_type_t *large_type; /* LAYOUT_LARGE scan: element type */
  size_t large_count;       /* LAYOUT_LARGE: elements */
  struct special *specials; /* [speciallock] sorted by offset, kind */
  struct heap_arena *arena;
  bool big_bits;            /* record carries 16-word bitmaps */
  bool conservative;        /* [owner] holds a conservative object: its
                             * pointer words need not point at objects */
  uint64_t bits[];          /* alloc + mark bitmaps (2 or 16 words each) */
} gc_span_t;

#define SPAN_SMALL_BITS 2  /* words per bitmap for nelems <= 128 */
#define SPAN_BIG_BITS 16   /* words per bitmap for nelems <= 1024 */

/* ---------------------------------------------------------------- central */

/* One per span class.  partial[]/full[] are indexed by sweepgen/2 % 2: the
 * set for "swept" and the set for "unswept" swap roles every cycle. */
typedef struct central {
  gch_lock_t lock;
  gc_span_t *partial[2];
  gc_span_t *full[2];
  char pad[64];
} central_t;

/* ----------------------------------------------------------------- threads */

enum thread_state { THR_RUNNING = 0, THR_PARKED = 1, THR_BLOCKING = 2 };

/* Per-thread allocation cache (Go's mcache) plus the thread's GC state. */
typedef struct gc_thread {
  gc_heap_t *heap;
  gc_span_t *alloc[GCH_NUM_SPAN_CLASSES]; /* [owner] current spans */
  uintptr_t tiny;            /* [owner] current 16-B tiny block */
  uintptr_t tiny_offset;
  long hook_bytes;           /* [owner] allocation hook countdown */
  unsigned long torture_left;
  pcache_t pcache;           /* [owner; h->lock to fill/flush] */
  gc_span_t *span_cache[2][8]; /* [owner] free span records: small, big */
  unsigned nspan_cache[2];
  atomic_int state;          /* enum thread_state */
  int in_callback;           /* inside a root callback (see in_finalizer) */
  gc_result_t last_error;
  pthread_t tid;
  uintptr_t stack_lo, stack_hi; /* for conservative stack scanning */
  uintptr_t park_sp;          /* stack pointer when parked / blocking */
  jmp_buf regs;               /* callee-saved registers when parked */
  struct gc_thread *next;     /* [threads_lock] heap's list */
  struct gc_thread *tls_next; /* [owner] this OS thread's records */
  bool internal;              /* a collector-owned thread (sweeper) */
  /* counters flushed into the heap's at each cycle */
  uint64_t alloc_bytes, alloc_objects;
  uint64_t class_allocs[GCH_NUM_SIZE_CLASSES];
  struct gcwork *gcw;         /* mark work buffers (gc/mark.c) */
  /* specials (gc/finalizer.c, gc/profile.c) */
  int in_finalizer;           /* [owner] running a finalizer or cleanup */
  long hook_armed;            /* [owner] what hook_bytes was last set to */
  long prof_left;             /* [owner] bytes to the next profile sample */
  uint64_t prof_rng;          /* [owner] sampling PRNG state */
} gc_thread_t;

/* --------------------------------------------------------------- the heap */

struct gc_root_range {
  uintptr_t start, end;
  unsigned flags;
  struct gc_root_range *next;
};
struct gc_root_cb {
  gc_root_fn fn;
  void *ctx;
  struct gc_root_cb *next;
};

/* GCHEAP_DEBUG=a,b,... (parsed once per heap into h->debug). */
enum gc_debug_flags {
  GCDBG_VERIFY = 1,        /* gc_verify after every cycle */
  GCDBG_CHECKMARK = 2,     /* re-mark with the world stopped and compare */
  GCDBG_CLOBBERFREE = 4,   /* poison freed slots, check the poison on reuse */
  GCDBG_EFENCE = 8,        /* one object per page, never reused */
  GCDBG_HARDDECOMMIT = 16, /* released pages fault until reused */
};
/* Freed memory is filled with this byte: clobberfree slots (sweep.c) and,
 * in GCH_DEBUG builds, spans freed to the page allocator (span.c). */
#define GCH_CLOBBER_BYTE 0xdb

struct gc_heap {
  gc_heap_public_t pub;      /* must stay first: read by gcheap.h inlines */
  uint32_t magic;            /* GCH_HEAP_MAGIC while alive */
  gc_config_t config;
  unsigned debug;            /* enum gc_debug_flags, fixed at creation */
  atomic_int warned;         /* _gc_warn_once has printed */

  os_mem_t os;
  gch_lock_t lock;           /* the heap lock: pages, arenas, meta */
  persistent_t meta;         /* [heap lock] */
  fixalloc_t span_alloc[2];  /* [heap lock] span records: small, big bits */
  fixalloc_t thread_alloc;   /* [heap lock] gc_thread_t records */
  fixalloc_t root_alloc;     /* [heap lock] gc_root_range records */
  fixalloc_t rootcb_alloc;   /* [heap lock] gc_root_cb records */
  pages_t pages;             /* [heap lock] */
  struct {                   /* the scavenger (arena/scavenge.c) */
    size_t goal;             /* [heap lock] retained goal, 0 = none */
    size_t peak;             /* [heap lock] highest retained bytes */
    uint64_t released_total; /* [heap lock] bytes released so far */
    uint64_t runs;           /* [heap lock] madvise calls */
    pthread_t thread;
    pthread_mutex_t mu;      /* guards stop, wake */
    pthread_cond_t cv;
    int stop, wake;
    bool running;            /* [owner of the heap's lifecycle] */
  } scav;

  /* arena index: arena number -> heap_arena_t, demand-paged, lock-free
   * reads (entries go from NULL to an arena once, release-stored). */
  _Atomic(heap_arena_t *) *arenas;
  uintptr_t arena_hint;      /* [heap lock] next address to try */
  uintptr_t cur_arena, cur_arena_end; /* [heap lock] mapped part, end */
  uintptr_t cur_reserved_end;
  struct arena_resv *resv;   /* [heap lock] every reservation */

  central_t central[GCH_NUM_SPAN_CLASSES];
  gc_span_t *empty_span;     /* never-allocatable stand-in for "no span" */
  _Atomic uint32_t sweepgen;
  atomic_int sweep_cursor;   /* next span class the sweeper looks at */
  atomic_int sweepers;       /* threads inside _gc_central_sweep_one */
  atomic_size_t reclaimed_pages; /* pages freed by sweeping, in all */
  atomic_size_t heap_live;   /* bytes allocated or cached since mark */
  atomic_size_t heap_marked; /* bytes marked by the last cycle */
  atomic_size_t heap_inuse;  /* bytes of in-use spans */
  size_t heap_goal;
  size_t heap_min;

  /* threads and stop-the-world */
  gch_lock_t threads_lock;
  gc_thread_t *threads;      /* [threads_lock] */
  unsigned nthreads;
  pthread_mutex_t stw_lock;
  pthread_cond_t stw_cond;   /* parked threads wait; collector waits */
  uint64_t stw_epoch;        /* [stw_lock] bumps when the world restarts */
  pthread_mutex_t gc_lock;   /* one collection at a time */
  atomic_int collecting;
  _Atomic(gc_thread_t *) collector; /* the thread running a collection */

  /* roots and types */
  gch_lock_t roots_lock;
  struct gc_root_range *root_ranges;
  struct gc_root_cb *root_cbs;
  gc_type_t conservative_type;

  /* collector state (gc/) */
  struct gc_state *gc;
  /* user arenas (arena/userarena.c) */
  struct uarena_heap *uarena;

  /* statistics [gc_lock or atomic] */
  uint64_t start_ns;
  atomic_uint_fast64_t cycles, forced_cycles;
  atomic_uint_fast64_t freed_bytes, freed_objects;
  atomic_uint_fast64_t alloc_bytes, alloc_objects; /* flushed from threads */
  atomic_uint_fast64_t class_frees[GCH_NUM_SIZE_CLASSES];
  atomic_uint_fast64_t class_allocs[GCH_NUM_SIZE_CLASSES];
  uint64_t pause_last_ns, pause_max_ns, pause_total_ns, stw_wait_last_ns;
  uint64_t mark_ns_total, sweep_ns_total, marked_objects_last;
  uint64_t pause_ring[GCH_PAUSE_RING]; /* [gc_lock] last pauses */
  uint64_t pause_end_ring[GCH_PAUSE_RING];
  uint64_t pause_count;
  atomic_uint_fast64_t swept_spans;
  atomic_size_t efence_bytes; /* GCHEAP_DEBUG=efence: freed pages fenced off
                               * for good (span.c), reported as released */
  atomic_int last_error_unattached;
  struct gc_heap *fork_next;  /* [fork_mu] list of live heaps (gc/fork.c) */
};

#define GCH_HEAP_MAGIC 0x67636870u /* "gchp" */

/* ------------------------------------------------------------- internals */

/* heap.c */
gc_thread_t *_gc_thread_current(gc_heap_t *h);
/* This OS thread's records, most recently used first (heap.c). */
extern _Thread_local gc_thread_t *_gc_tls_threads;
/* The calling thread's record on h: one load and a compare in the common
 * case, the out-of-line search otherwise. */
GCH_INLINE gc_thread_t *thread_current(gc_heap_t *h) {
  gc_thread_t *t = _gc_tls_threads;
  if (gch_likely(t && t->heap == h)) return t;
  return _gc_thread_current(h);
}
void _gc_set_error(gc_heap_t *h, gc_thread_t *t, gc_result_t r);
/* Record r on the calling thread's record of every heap it is attached to
 * (for calls that name no heap, e.g. gc_arena_alloc(NULL, ...)). */
void _gc_set_error_all(gc_result_t r);
void _gc_thread_flush_stats(gc_heap_t *h, gc_thread_t *t);
size_t _gc_meta_bytes(gc_heap_t *h);
/* One line on stderr, the first time only (per heap). */
void _gc_warn_once(gc_heap_t *h, const char *msg);

/* arena/arena.c */
int _gc_arena_init(gc_heap_t *h);
void _gc_arena_destroy(gc_heap_t *h);
/* Grow the heap so that npages contiguous pages can be allocated.
 * [heap lock held].  Returns GCH_OK, GCH_ENOMEM or GCH_ELIMIT. */
gc_result_t _gc_arena_grow(gc_heap_t *h, size_t npages);
void _gc_arena_set_spans(gc_heap_t *h, gc_span_t *s, gc_span_t *val);

/* arena/scavenge.c */
/* Release up to max_pages free pages to the OS [heap lock]. */
size_t _gc_scavenge_locked(gc_heap_t *h, size_t max_pages);
/* Before taking `bytes` of pages [heap lock]: keep retained memory under
 * the limits, releasing free pages; GCH_ELIMIT when the hard limit cannot
 * be kept, *over when the soft one cannot. */
gc_result_t _gc_scavenge_make_room(gc_heap_t *h, size_t bytes, bool *over);
/* May a page cache window (64 pages) be taken without nearing the hard
 * limit? [heap lock] */
bool _gc_scavenge_cache_ok(gc_heap_t *h);
/* After pages were taken [heap lock]: when the heap grew, release retained
 * memory above the goal; note the peak. */
void _gc_scavenge_after_alloc(gc_heap_t *h, bool grew);
/* At the end of a cycle (heap lock not held): new goal, wake the thread. */
void _gc_scavenge_cycle_end(gc_heap_t *h, size_t heap_goal);
gc_result_t _gc_scavenge_start(gc_heap_t *h);
void _gc_scavenge_stop(gc_heap_t *h);
void _gc_scavenge_forked_child(gc_heap_t *h);

GCH_INLINE heap_arena_t *arena_of(const gc_heap_t *h, uintptr_t p) {
  if (gch_unlikely(p >> GCH_ADDR_BITS)) return NULL;
  return atomic_load_explicit(&h->arenas[p >> GCH_ARENA_SHIFT],
                              memory_order_acquire);
}

/* The span holding p, or NULL: O(1), no lock.  The span may be in any
 * state; callers check state and bounds. */
GCH_INLINE gc_span_t *span_of(const gc_heap_t *h, uintptr_t p) {
  heap_arena_t *a = arena_of(h, p);
  if (!a) return NULL;
  size_t page = (p - a->base) >> GCH_PAGE_SHIFT;
  return atomic_load_explicit(&a->spans[page], memory_order_acquire);
}

/* alloc/span.c */
gc_span_t *_gc_span_alloc(gc_heap_t *h, gc_thread_t *t, size_t npages,
                          uint8_t spanclass, gc_result_t *err);
void _gc_span_free(gc_heap_t *h, gc_thread_t *t, gc_span_t *s);
void _gc_span_cache_flush(gc_heap_t *h, gc_thread_t *t); /* [heap lock] */
void _gc_span_refill_cache(gc_span_t *s);
uint16_t _gc_span_next_free_index(gc_span_t *s);
size_t _gc_span_count_alloc(const gc_span_t *s);

GCH_INLINE size_t span_obj_index(const gc_span_t *s, uintptr_t p) {
  return (size_t)(((uint64_t)(p - s->base) * s->divmagic) >> 32);
}
/* Relaxed atomic: API queries (gc_base) read bitmaps that the background
 * sweeper may be rewriting; they detect that and retry (see
 * _gc_find_object_stable).  A plain load on every target. */
GCH_INLINE bool bit_get(const uint64_t *bits, size_t i) {
  return (__atomic_load_n(&bits[i >> 6], __ATOMIC_RELAXED) >> (i & 63)) & 1;
}
/* Is slot idx allocated?  Markers call this on spans that their owners
 * allocate from concurrently: freeindex is read atomically and may be
 * stale, which can only hide an object allocated during the mark -- and
 * those are allocated black, so nothing is lost. */
GCH_INLINE bool span_is_allocated(const gc_span_t *s, size_t idx) {
  return idx < __atomic_load_n(&s->freeindex, __ATOMIC_RELAXED) ||
         bit_get(__atomic_load_n(&s->alloc_bits, __ATOMIC_ACQUIRE), idx);
}
/* Is a mark running (barrier on)?  Relaxed: a stale answer is corrected at
 * the next safepoint, and a mark only starts or ends with the world
 * stopped. */
GCH_INLINE int heap_marking(const gc_heap_t *h) {
  return __atomic_load_n(&h->pub.barrier_on, __ATOMIC_RELAXED);
}
GCH_INLINE void span_set_freeindex(gc_span_t *s, unsigned v) {
  __atomic_store_n(&s->freeindex, (uint16_t)v, __ATOMIC_RELAXED);
}

/* alloc/central.c */
void _gc_central_init(central_t *c);
gc_span_t *_gc_central_cache_span(gc_heap_t *h, gc_thread_t *t, int spc,
                                  gc_result_t *err);
void _gc_central_uncache_span(gc_heap_t *h, gc_span_t *s);
void _gc_central_insert_swept(gc_heap_t *h, gc_span_t *s);
void _gc_central_remove(gc_heap_t *h, gc_span_t *s); /* [central lock] */
/* Sweep one unswept span anywhere; false when none is left. */
bool _gc_central_sweep_one(gc_heap_t *h);
/* Sweep until no span is left unswept, including those other threads took
 * (gc_collect, gc_release_memory). */
void _gc_central_sweep_all(gc_heap_t *h);

/* alloc/malloc.c */
void _gc_cache_release_all(gc_heap_t *h, gc_thread_t *t);

/* heap.c */
gc_result_t _gc_thread_attach(gc_heap_t *h, bool internal);

/* gc/ */
int _gc_collector_init(gc_heap_t *h);
gc_result_t _gc_collector_start(gc_heap_t *h); /* helper threads */
void _gc_collector_stop(gc_heap_t *h);
void _gc_collector_destroy(gc_heap_t *h);
double _gc_last_overshoot(gc_heap_t *h);
uint64_t _gc_mark_cpu_ns(gc_heap_t *h);
void _gc_fork_register(gc_heap_t *h);
void _gc_fork_unregister(gc_heap_t *h);
void _gc_mark_new_object(gc_heap_t *h, gc_thread_t *t, uintptr_t p);
void _gc_assist(gc_heap_t *h, gc_thread_t *t, size_t bytes);
/* Run a collection if the pacer says so (called from allocation slow
 * paths, outside every lock). */
void _gc_maybe_collect(gc_heap_t *h, gc_thread_t *t);
/* Sweep span s, which the caller owns (sweepgen sg - 1, on no list):
 * free unmarked slots, turn mark bits into alloc bits.  The caller files
 * the span (or frees it when alloc_count is 0). */
void _gc_sweep_span(gc_heap_t *h, gc_span_t *s);
/* clobberfree: check that every free slot of s (s->poisoned) still holds
 * the poison; aborts naming the slot otherwise.  [owner of s] */
void _gc_sweep_check_free(gc_heap_t *h, gc_span_t *s);
void _gc_stw_park(gc_heap_t *h, gc_thread_t *t);
gc_result_t _gc_collect_internal(gc_heap_t *h, gc_thread_t *t, bool forced);
/* The body of _gc_find_object, inline for the mark loop. */
GCH_INLINE bool find_object(const gc_heap_t *h, uintptr_t p, gc_span_t **sp,
                            size_t *idx) {
  gc_span_t *s = span_of(h, p);
  if (!s || atomic_load_explicit(&s->state, memory_order_acquire) != SPAN_IN_USE)
    return false;
  if (p < s->base || p >= s->limit) return false;
  size_t i = span_obj_index(s, p);
  if (!span_is_allocated(s, i)) return false;
  *sp = s;
  *idx = i;
  return true;
}

/* Take gc_lock from a mutator without stalling a collector that holds it
 * and waits for this thread to stop (the wait is a blocking region). */
void _gc_lock_cycle(gc_heap_t *h);
/* Resolve p to an allocated object; returns its span and slot index.
 * For the collector (world stopped, or marking: no sweep runs). */
bool _gc_find_object(const gc_heap_t *h, uintptr_t p, gc_span_t **sp,
                     size_t *idx);
/* The same for API calls from mutators, which may race with the
 * background sweeper: retries while the span is being swept. */
bool _gc_find_object_stable(const gc_heap_t *h, uintptr_t p, gc_span_t **sp,
                            size_t *idx);

#endif
