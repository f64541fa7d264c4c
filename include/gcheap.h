/*
 * gcheap.h -- an embeddable garbage-collected heap for language runtimes.
 *
 * The one public header.  Every handle is opaque; every name is gc_* (types
 * gc_*_t) and every macro GCH_* so that this header can sit beside Boehm's
 * gc.h in one translation unit.
 *
 * The host's contract, in short (docs/embedding.md has the long form):
 *   1. gc_heap_new() once; gc_thread_attach() on every thread that allocates
 *      or holds heap pointers (the creating thread is attached for you).
 *   2. Register types (size + pointer map) and roots (slots, ranges, or a
 *      callback that visits the host's own roots).
 *   3. Store heap pointers into heap objects with gc_write() (the barrier).
 *   4. Call gc_safepoint() in long loops without allocation, and bracket
 *      blocking system calls with gc_blocking_enter()/gc_blocking_leave().
 *
 * Errors: calls that can fail return a gc_result_t, or NULL and leave the
 * reason in gc_last_error().  Misuse that cannot be reported (a corrupted
 * heap, a barrier on a foreign heap) aborts with a message naming the call.
 */
#ifndef GCHEAP_H
#define GCHEAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GCH_API __attribute__((visibility("default")))
#define GCH_LIKELY(x) __builtin_expect(!!(x), 1)
#define GCH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define GCH_API
#define GCH_LIKELY(x) (x)
#define GCH_UNLIKELY(x) (x)
#endif

/* ---------------------------------------------------------------- results */

/* The one list of result codes: X(name, value, description). */
#define GCH_RESULT_LIST(X)                                                   \
  X(GCH_OK, 0, "success")                                                    \
  X(GCH_ENOMEM, 1, "out of memory (address space or OS refused)")            \
  X(GCH_ELIMIT, 2, "allocation would exceed the heap's memory limit")        \
  X(GCH_EINVAL, 3, "invalid argument")                                       \
  X(GCH_EOVERFLOW, 4, "size computation overflows")                          \
  X(GCH_ENOTATTACHED, 5, "calling thread is not attached to this heap")      \
  X(GCH_EATTACHED, 6, "calling thread is already attached to this heap")     \
  X(GCH_EFOREIGN, 7, "pointer is not the base of an object of this heap")    \
  X(GCH_EBUSY, 8, "not allowed now (inside a collection or callback)")       \
  X(GCH_EEXIST, 9, "already registered")                                     \
  X(GCH_ENOTFOUND, 10, "not registered")                                     \
  X(GCH_EDOUBLEFREE, 11, "already freed")                                    \
  X(GCH_EVERIFY, 12, "heap verification found a violation")

typedef enum gc_result {
#define GCH_RESULT_ENUM(name, value, text) name = value,
  GCH_RESULT_LIST(GCH_RESULT_ENUM)
#undef GCH_RESULT_ENUM
} gc_result_t;

/* A static string describing r ("unknown result" for values off the list). */
GCH_API const char *gc_result_str(gc_result_t r);

/* ------------------------------------------------------------------- heap */

typedef struct gc_heap gc_heap_t;
typedef struct gc_type gc_type_t;

typedef enum gc_mode {
  GCH_MODE_STW = 0,       /* every collection stops the world */
  GCH_MODE_CONCURRENT = 1 /* mark while mutators run (write barrier on) */
} gc_mode_t;

typedef struct gc_config {
  /* Collect when the heap grows this many percent over the live heap of the
   * last cycle (Go's GOGC).  0 = default (100); negative = automatic
   * collection off.  Env GCHEAP_GC_PERCENT (a number or "off") overrides. */
  int gc_percent;
  /* Soft limit on mapped heap memory in bytes; the collector runs more often
   * near it.  0 = none.  Env GCHEAP_MEMORY_LIMIT ("512MiB", "2G", bytes). */
  size_t memory_limit;
  /* Hard limit on heap memory backed by the OS (bytes_mapped plus live
   * user-arena chunks).  An allocation that cannot fit under it after a
   * full collection and a scavenge returns NULL (oom_handler first) with
   * GCH_ELIMIT; the heap stays consistent.  0 = none.  Env
   * GCHEAP_HARD_LIMIT (units as GCHEAP_MEMORY_LIMIT). */
  size_t hard_limit;
  /* Scan attached threads' stacks and registers conservatively (the
   * Boehm-style mode).  Off by default: hosts report roots precisely. */
  int scan_thread_stacks;
  /* Called when an allocation fails for lack of memory, after a collection
   * has been tried; may return a pointer to use instead (or NULL). */
  void *(*oom_handler)(gc_heap_t *heap, size_t size, void *ctx);
  void *oom_ctx;
  gc_mode_t mode;
  /* Collect every N allocations (debug torture).  0 = off.  Env
   * GCHEAP_TORTURE=N overrides. */
  unsigned long torture;
  /* Print one line per cycle to stderr (env GCHEAP_TRACE=1). */
  int trace;
  /* Concurrent mode: mark worker threads, the controller included.
   * 0 = a quarter of the CPUs, at least 1 (env GCHEAP_MARK_WORKERS). */
  unsigned mark_workers;
  /* Run a background sweeper thread (1, the default from
   * gc_config_default) or sweep only lazily when allocating (0). */
  int background_sweep;
  /* --- specials (finalizers, weak handles, cleanups, heap profile) --- */
  /* Who runs finalizers and cleanups: 0 (the default) = the host, by
   * calling gc_run_finalizers(); 1 = a finalizer thread that the heap
   * starts (attached like a host thread, woken after each collection that
   * queued something). */
  int finalizer_thread;
  /* Heap profile: mean bytes allocated between sampled allocations.
   * 0 = the default, GCH_PROFILE_RATE_DEFAULT (512 KiB); negative = off;
   * 1 = every allocation.  Env GCHEAP_PROFILE_RATE overrides (bytes, units
   * as GCHEAP_MEMORY_LIMIT; "0" or "off" = off). */
  long profile_rate;
  /* Optional: the stack of a sampled allocation as the host sees it (its
   * VM frames): write up to max nonzero frame ids to pcs, innermost first,
   * and return how many.  Called on the allocating thread, outside heap
   * locks; it must not allocate from this heap.  NULL = the native stack
   * (backtrace()). */
  size_t (*profile_stack)(void *ctx, uintptr_t *pcs, size_t max);
  /* Optional: the name of a frame id, for gc_profile_write; with it the
   * profile carries its own symbols (google-pprof needs no program). */
  const char *(*profile_symbol)(void *ctx, uintptr_t pc);
  void *profile_ctx;
  /* --- returning memory to the OS (arena/scavenge.c) --- */
  /* Run a background scavenger thread (1, the default from
   * gc_config_default) that returns free heap pages to the OS: pages above
   * the retained goal (heap goal + 10%) at once, and pages of any 4 MiB
   * chunk unused for GCH_SCAVENGE_DECAY_MS.  0 = only the synchronous
   * paths (heap growth, memory limits, gc_release_memory).  Env
   * GCHEAP_SCAVENGE=0/1 overrides. */
  int background_scavenge;
} gc_config_t;

#define GCH_SCAVENGE_DECAY_MS 500

#define GCH_PROFILE_RATE_DEFAULT (512L * 1024)

/* A config with every field at its default. */
GCH_API gc_config_t gc_config_default(void);

/* Create a heap; config may be NULL for defaults.  The calling thread is
 * attached to the new heap.  Returns NULL on failure (out of memory or an
 * invalid config); the reason is in *err when err is not NULL. */
GCH_API gc_heap_t *gc_heap_new(const gc_config_t *config, gc_result_t *err);

/* Destroy a heap and return all of its memory to the OS.  No finalizers
 * run.  Must be called from an attached thread with no other thread
 * attached.  Every pointer into the heap becomes invalid. */
GCH_API gc_result_t gc_heap_destroy(gc_heap_t *heap);

/* Attach / detach the calling thread.  A thread may be attached to several
 * heaps at once.  Detaching flushes the thread's caches. */
GCH_API gc_result_t gc_thread_attach(gc_heap_t *heap);
GCH_API gc_result_t gc_thread_detach(gc_heap_t *heap);
GCH_API int gc_thread_is_attached(gc_heap_t *heap);

/* The reason for the calling thread's last failed call on this heap (also
 * for unattached threads).  GCH_OK when nothing has failed yet. */
GCH_API gc_result_t gc_last_error(gc_heap_t *heap);

/* ------------------------------------------------------------------ types */

/* Register a type: `size` bytes (a nonzero multiple of 8), a pointer map of
 * one bit per 8-byte word (bit i of map[i/64] set = word i holds a pointer
 * into the heap, or NULL), `map_words` 64-bit words of map covering at most
 * size/8 bits, and a name for traces and profiles (copied).  The type lives
 * as long as the heap.  Arrays of the type repeat its map. */
GCH_API gc_result_t gc_type_new(gc_heap_t *heap, const char *name, size_t size,
                                const uint64_t *map, size_t map_words,
                                const gc_type_t **out);
GCH_API const char *gc_type_name(const gc_type_t *type);
GCH_API size_t gc_type_size(const gc_type_t *type);

/* ------------------------------------------------------------- allocation */

/* Flags for gc_malloc. */
#define GCH_NOSCAN 1u /* the object holds no heap pointers: never scanned */

/* Allocate `size` bytes, zeroed.  Without GCH_NOSCAN every word is treated
 * as a possible pointer (conservative object); with it, the object is never
 * scanned.  Size 0 returns a unique minimal object.  NULL on failure (see
 * gc_last_error): GCH_EOVERFLOW for sizes that cannot be mapped,
 * GCH_ENOMEM, GCH_ELIMIT, GCH_ENOTATTACHED. */
GCH_API void *gc_malloc(gc_heap_t *heap, size_t size, unsigned flags);

/* Allocate one zeroed object of a registered type. */
GCH_API void *gc_alloc(gc_heap_t *heap, const gc_type_t *type);

/* Allocate a zeroed array of n objects of a type (n may be 0);
 * GCH_EOVERFLOW when n * size overflows. */
GCH_API void *gc_alloc_array(gc_heap_t *heap, const gc_type_t *type, size_t n);

/* The usable size of the object at p (its size class), or 0 when p is not
 * the base of a live object of this heap. */
GCH_API size_t gc_size_of(gc_heap_t *heap, const void *p);

/* The base of the object containing p (interior pointers allowed), or NULL
 * when p points at no allocated object of this heap. */
GCH_API void *gc_base(gc_heap_t *heap, const void *p);

/* ------------------------------------------------------------ user arenas */

/* A user arena (Go's arena experiment): a region of explicitly managed
 * memory.  Allocation is a bump of a pointer; gc_arena_free releases the
 * whole region at once.  Arena objects may hold pointers to GC objects
 * (typed allocations are scanned by their pointer maps, so those objects
 * stay alive while the arena lives); store them with gc_write as into heap
 * objects.  GC objects may point into a live arena, but that keeps nothing
 * alive.  After gc_arena_free every access to the arena's memory faults
 * (SIGSEGV) and its pages go back to the OS; its address space is reused
 * only after a collection finds no pointer into it from the heap, live
 * arenas or roots (256 MiB of such quarantined space triggers a collection
 * unless automatic collection is off).  Memory comes in 8 MiB chunks; past
 * a chunk's first 2 MiB, transparent huge pages are requested.
 * An arena is used by one attached thread at a time. */
typedef struct gc_arena gc_arena_t;

/* A new, empty arena of `heap` (memory is taken on first allocation).
 * NULL on failure: GCH_ENOTATTACHED, GCH_ENOMEM. */
GCH_API gc_arena_t *gc_arena_new(gc_heap_t *heap);

/* A zeroed array of n objects of `type` in the arena (n = 1 for one
 * object; n = 0 gives a unique pointer), 8-byte aligned.  Its pointer
 * words (by the type's map) are scanned while the arena lives.  NULL on
 * failure, reason in gc_last_error(heap): GCH_EINVAL (NULL arena or type;
 * recorded on every heap the thread is attached to when the arena is
 * NULL), GCH_EDOUBLEFREE (the arena was freed), GCH_EOVERFLOW (n * size
 * overflows or exceeds 2^46 bytes), GCH_ENOMEM, GCH_ELIMIT (hard limit),
 * GCH_ENOTATTACHED. */
GCH_API void *gc_arena_alloc(gc_arena_t *a, const gc_type_t *type, size_t n);

/* `size` zeroed bytes that hold no heap pointers (never scanned), 8-byte
 * aligned; size 0 gives a unique pointer.  Errors as gc_arena_alloc. */
GCH_API void *gc_arena_alloc_bytes(gc_arena_t *a, size_t size);

/* Free the arena: every object in it dies at once and any later access to
 * its memory faults.  GC objects it alone referenced become collectable.
 * GCH_EINVAL for NULL, GCH_EDOUBLEFREE for a second free (detected for the
 * last 4096 arenas freed on the heap; an older handle may have been
 * recycled), GCH_ENOTATTACHED. */
GCH_API gc_result_t gc_arena_free(gc_arena_t *a);

/* ------------------------------------------------------------------ roots */

typedef struct gc_visitor gc_visitor_t;

/* Flags for gc_root_add. */
#define GCH_ROOT_PRECISE 0u      /* each word is NULL or a heap pointer */
#define GCH_ROOT_CONSERVATIVE 1u /* each word may be a pointer, interior ok */

/* Register [start, start+size) as a root range (size a multiple of 8 for
 * precise ranges).  A range that starts at `start` may be registered once. */
GCH_API gc_result_t gc_root_add(gc_heap_t *heap, void *start, size_t size,
                                unsigned flags);
GCH_API gc_result_t gc_root_remove(gc_heap_t *heap, void *start);

/* Root-scanning callbacks: called during each collection, with the world
 * stopped, to report the host's own roots through the visitor. */
typedef void (*gc_root_fn)(gc_visitor_t *v, void *ctx);
GCH_API gc_result_t gc_root_callback_add(gc_heap_t *heap, gc_root_fn fn,
                                         void *ctx);
GCH_API gc_result_t gc_root_callback_remove(gc_heap_t *heap, gc_root_fn fn,
                                            void *ctx);

/* Report one precise slot (holding NULL or a heap object base or interior
 * pointer of this heap) / a conservative range. */
GCH_API void gc_visit(gc_visitor_t *v, void *const *slot);
GCH_API void gc_visit_range(gc_visitor_t *v, const void *start, size_t size);

/* ------------------------------------------------------------- collection */

/* A full, blocking collection, then a complete sweep (as Go's runtime.GC:
 * when it returns, every span is swept and what died is free).  GCH_EBUSY
 * when called from inside a root callback or finalizer of this heap. */
GCH_API gc_result_t gc_collect(gc_heap_t *heap);
/* Go's debug.FreeOSMemory: a full collection, a complete sweep, then every
 * free heap page is returned to the OS (madvise; the pages read as zero
 * when reused).  Pages cached by other threads (at most 512 KiB each) stay.
 * Same errors as gc_collect. */
GCH_API gc_result_t gc_release_memory(gc_heap_t *heap);

/* Let a pending stop-the-world proceed.  Cheap: one load when nothing is
 * pending.  Call it in loops that run long without allocating. */
GCH_API void gc_safepoint_slow(gc_heap_t *heap);

/* Bracket a region where the thread touches no heap memory (a blocking
 * system call): the collector may run meanwhile without waiting for it. */
GCH_API void gc_blocking_enter(gc_heap_t *heap);
GCH_API void gc_blocking_leave(gc_heap_t *heap);

/* ---------------------------------------------------------- write barrier */

/* The first bytes of every heap are this header: the barrier's fast path
 * reads it without a call.  Layout checked by _Static_assert in heap.c. */
typedef struct gc_heap_public {
  int barrier_on;  /* nonzero while a mark phase runs (atomic) */
  int stw_pending; /* nonzero while a stop-the-world is requested (atomic) */
} gc_heap_public_t;

GCH_API void gc_write_slow(gc_heap_t *heap, void *obj, void **slot, void *val);
GCH_API void gc_write_range_slow(gc_heap_t *heap, void **dst, size_t n);

/* Store val into *slot, a field of heap object obj. */
static inline void gc_write(gc_heap_t *heap, void *obj, void **slot,
                            void *val) {
  if (GCH_UNLIKELY(__atomic_load_n(&((const gc_heap_public_t *)heap)->barrier_on,
                                   __ATOMIC_RELAXED)))
    gc_write_slow(heap, obj, slot, val);
  /* A relaxed atomic store is a plain store on every target; it tells
   * ThreadSanitizer that concurrent markers may read the slot. */
  __atomic_store_n(slot, val, __ATOMIC_RELAXED);
}

/* Call before overwriting or clearing n pointer slots at dst in bulk
 * (memmove into a heap object, memset to zero). */
static inline void gc_write_range(gc_heap_t *heap, void **dst, size_t n) {
  if (GCH_UNLIKELY(__atomic_load_n(&((const gc_heap_public_t *)heap)->barrier_on,
                                   __ATOMIC_RELAXED)))
    gc_write_range_slow(heap, dst, n);
}

static inline void gc_safepoint(gc_heap_t *heap) {
  if (GCH_UNLIKELY(__atomic_load_n(&((const gc_heap_public_t *)heap)->stw_pending,
                                   __ATOMIC_RELAXED)))
    gc_safepoint_slow(heap);
}

/* ------------------------------------------------------------------ stats */

#define GCH_NUM_SIZE_CLASSES 68
#define GCH_PAUSE_RING 256

typedef struct gc_stats {
  uint64_t cycles;           /* completed collections */
  uint64_t forced_cycles;    /* of which requested by gc_collect */
  size_t bytes_mapped;       /* heap address space in state Ready */
  size_t bytes_reserved;     /* address space reserved: arenas + sparse tables */
  size_t bytes_in_use;       /* bytes in in-use spans */
  size_t live_bytes;         /* bytes marked by the last cycle */
  size_t heap_goal;          /* allocation point that triggers the next cycle */
  size_t metadata_bytes;     /* spans, bitmaps, caches, tables */
  uint64_t total_alloc_bytes;
  uint64_t total_alloc_objects;
  uint64_t total_freed_bytes;
  uint64_t total_freed_objects;
  uint64_t pause_last_ns, pause_max_ns, pause_total_ns;
  uint64_t stw_wait_last_ns; /* time the last stop waited for threads */
  uint64_t mark_ns_total, sweep_ns_total;
  uint64_t marked_objects_last;
  uint64_t swept_spans_total;
  unsigned threads;          /* attached threads */
  struct {
    size_t size;             /* object size of the class */
    uint64_t allocs, frees;  /* objects allocated / freed */
  } by_class[GCH_NUM_SIZE_CLASSES];
  /* The last min(pause_count, GCH_PAUSE_RING) stop-the-world pauses, in
   * ns: pause i is pause_ns[i % GCH_PAUSE_RING]. */
  uint64_t pause_ns[GCH_PAUSE_RING];
  uint64_t pause_end_ns[GCH_PAUSE_RING]; /* when each ended (CLOCK_MONOTONIC) */
  uint64_t pause_count;
  double last_overshoot; /* heap at the end of the last cycle / goal - 1 */
  uint64_t mark_cpu_ns_total; /* CPU time of every thread that marked */
  /* User arenas (gc_arena_*).  Chunks are 8 MiB (or a multiple for one
   * big object).  Live chunk bytes are mapped; quarantined and free ones
   * are address space only (their pages went back to the OS at free). */
  size_t arena_bytes_live;         /* chunks owned by live arenas */
  size_t arena_bytes_quarantined;  /* freed, faulting, awaiting a cycle */
  size_t arena_bytes_free;         /* reserved, reusable */
  uint64_t arena_chunks_live;
  uint64_t arena_chunks_quarantined;
  uint64_t arena_chunks_released;  /* total left quarantine for reuse */
  uint64_t arenas_live;            /* gc_arena_new minus gc_arena_free */
  /* Specials: records in use (finalizers, weak handles, cleanups,
   * profile samples, queued functions; their memory is in
   * metadata_bytes), and functions queued and run so far. */
  size_t specials;
  uint64_t finalizers_queued, finalizers_run;
  uint64_t cleanups_queued, cleanups_run;
  uint64_t profile_samples;        /* allocations the heap profile sampled */
  /* Scavenger: free heap pages currently returned to the OS (in address
   * space, not in bytes_mapped), and bytes returned so far in all. */
  size_t bytes_released;
  size_t bytes_mapped_peak;        /* highest bytes_mapped seen */
  uint64_t released_bytes_total;
  uint64_t scavenge_runs;          /* madvise calls made by the scavenger */
} gc_stats_t;

GCH_API gc_result_t gc_get_stats(gc_heap_t *heap, gc_stats_t *out);

/* Walk the whole heap and check its invariants; on a violation write a
 * description to `out` (if not NULL) and return GCH_EVERIFY.  Stops the
 * world while it runs. */
GCH_API gc_result_t gc_verify(gc_heap_t *heap, FILE *out);

/* --------------------------------------------------------------- specials */

/* Finalizers, weak handles, cleanups and the heap profile (src/gc/
 * specials.c).  Objects are named by their base address (for objects
 * under 16 B allocated GCH_NOSCAN, which share 16-B blocks, by their own
 * address; such an object dies with its whole block).  Calls that take an
 * object return GCH_EFOREIGN for a pointer that is not the base of a live
 * object of this heap (a stack or static address, an interior pointer, a
 * freed object), GCH_ENOTATTACHED on an unattached thread and GCH_EBUSY
 * inside a root callback. */
#define GCH_FEATURE_SPECIALS 1

/* A weak handle: itself a small GC-managed object, kept alive by its
 * target while the target lives; unique per target.  Hold it like any
 * heap pointer (in a root or a pointer field). */
typedef struct gc_weak gc_weak_t;

/* The weak handle of obj (the same one on every call while obj lives).
 * NULL + gc_last_error on failure: GCH_EINVAL (obj NULL), GCH_EFOREIGN,
 * GCH_ENOMEM.  May allocate (and so collect): keep obj reachable. */
GCH_API gc_weak_t *gc_weak_new(gc_heap_t *heap, void *obj);

/* The target of w, or NULL once the target has died.  A handle is cleared
 * at the first collection that finds its target unreachable, and, for a
 * target with a finalizer, when the finalizer is queued: before it can run
 * or resurrect the target.  Never returns an object the last collection
 * found dead, nor whatever later reuses its memory.  NULL + GCH_EINVAL or
 * GCH_EFOREIGN when w is NULL or no heap object. */
GCH_API void *gc_weak_get(gc_heap_t *heap, gc_weak_t *w);

/* A finalizer: called once, after obj became unreachable, on the thread
 * that runs finalizers (config.finalizer_thread), outside collections.
 * obj and everything it reaches are intact; it may allocate, resurrect
 * obj (store it in a root), set a new finalizer on it, or do anything a
 * host thread may, except call gc_collect or gc_run_finalizers (those
 * answer GCH_EBUSY inside a finalizer or cleanup). */
typedef void (*gc_finalizer_fn)(gc_heap_t *heap, void *obj, void *ctx);

/* Arm fn(heap, obj, ctx) to run once obj is unreachable; fn NULL disarms
 * (GCH_OK whether or not one was armed).  Ordered as in Go: if A reaches
 * B and both have finalizers, A's runs first, B's in a later cycle; a
 * cycle of finalizable objects is never finalized nor freed.  ctx is
 * shaded as a root while armed.  Errors: GCH_EEXIST (obj has a finalizer:
 * disarm it first), GCH_EINVAL (ctx points into obj: it would never die),
 * GCH_EFOREIGN, GCH_ENOMEM. */
GCH_API gc_result_t gc_set_finalizer(gc_heap_t *heap, void *obj,
                                     gc_finalizer_fn fn, void *ctx);

/* Run the queued finalizers and cleanups on this thread until none is
 * left; returns how many ran.  0 with gc_last_error GCH_EBUSY when called
 * from a finalizer or cleanup (no nesting). */
GCH_API size_t gc_run_finalizers(gc_heap_t *heap);

/* Arm fn(arg) to run (like a finalizer) after obj has died and been freed;
 * obj is never resurrected, so it is freed by the first collection that
 * finds it unreachable, cycles included.  Any number per object.  arg is
 * shaded as a root while armed.  Errors: GCH_EINVAL (fn NULL, or arg
 * points into obj), GCH_EFOREIGN, GCH_ENOMEM. */
GCH_API gc_result_t gc_add_cleanup(gc_heap_t *heap, void *obj,
                                   void (*fn)(void *arg), void *arg);

/* Write the heap profile (config.profile_rate) to out in the legacy text
 * heap-profile format that google-pprof reads:
 *   google-pprof --text [--alloc_space] PROGRAM FILE
 * (without PROGRAM when config.profile_symbol names the frames).  Counts
 * are as of the last completed collection (sweeping is finished here when
 * the calling thread is attached); nothing is published before the first
 * collection.  GCH_EINVAL when out is NULL or a write failed. */
GCH_API gc_result_t gc_profile_write(gc_heap_t *heap, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* GCHEAP_H */
