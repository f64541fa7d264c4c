/*
 * userarena.h -- user arenas: explicitly freed regions (see userarena.c for
 * the design) and the hooks the collector calls.
 *
 * Hook points (each one call in a shared file):
 *   alloc/heap.c   _gc_userarena_init / _gc_userarena_destroy, stats
 *   gc/roots.c     _gc_userarena_mark_roots: scan live chunks, first thing
 *   gc/mark.c      _gc_userarena_note: a value that hit no heap object
 *   gc/gc.c        _gc_userarena_mark_done at mark termination; the trace
 *   gc/verify.c    _gc_userarena_check
 */
#ifndef GCH_USERARENA_H
#define GCH_USERARENA_H

#include "heap.h"

struct gcwork;

/* Chunk geometry: 8 MiB units (Go's userArenaChunkBytes on 64-bit), the
 * first 1/64 of every chunk holding its pointer bitmap (1 bit per word; at
 * the start, unlike Go, so the chunk's tail can be on huge pages). */
#define UARENA_CHUNK_BYTES ((size_t)8 << 20)
#define UARENA_CHUNK_PAGES (UARENA_CHUNK_BYTES / GCH_PAGE_SIZE) /* 1024 */
#define UARENA_BITMAP_BYTES(bytes) ((bytes) / 64)
#define UARENA_CHUNK_USABLE \
  (UARENA_CHUNK_BYTES - UARENA_BITMAP_BYTES(UARENA_CHUNK_BYTES))
/* Largest single arena object (bigger requests: GCH_EOVERFLOW). */
#define UARENA_ALLOC_MAX ((size_t)1 << 46)
/* Collect when this much freed chunk memory waits in quarantine. */
#define UARENA_QUARANTINE_TRIGGER ((size_t)256 << 20)
/* Freed gc_arena_t records kept (double free detected) before recycling. */
#define UARENA_GRAVEYARD_MAX 4096

/* Per-heap state, off-heap (persistent), h->uarena.  [lock] unless noted. */
struct uarena_heap {
  /* Quarantined chunk count [atomic]: the mark hook's one-load filter. */
  atomic_size_t nquarantined;
  gch_lock_t lock;            /* order: after gc_lock, before h->lock */
  fixalloc_t chunk_alloc;     /* [heap lock] chunk records */
  fixalloc_t arena_alloc;     /* [heap lock] gc_arena_t records */
  struct gc_arena *live;      /* live arenas (doubly linked) */
  struct gc_arena *grave_head, *grave_tail; /* freed records, oldest first */
  size_t ngrave;
  gc_span_t *quarantine;      /* freed chunks, faulting, awaiting a cycle */
  gc_span_t *ready;           /* reusable address space, faulting */
  uintptr_t hint;             /* next address to reserve at */
  uint64_t mark_epoch;        /* cycles whose mark has begun */
  uint64_t epoch_cycle;       /* h->cycles + 1 when mark_epoch last rose */
  /* statistics */
  atomic_size_t live_bytes; /* also read under the heap lock (scavenge.c) */
  size_t quar_bytes, ready_bytes;
  uint64_t live_chunks, quar_chunks, narenas, released_chunks;
};

int _gc_userarena_init(gc_heap_t *h);
void _gc_userarena_destroy(gc_heap_t *h);

/* World stopped, start of mark: scan every live chunk's pointer words. */
void _gc_userarena_mark_roots(gc_heap_t *h, struct gcwork *w);
/* World stopped, mark termination: quarantined chunks no marker noted
 * since before this mark began become reusable. */
void _gc_userarena_mark_done(gc_heap_t *h);

void _gc_userarena_note_slow(gc_heap_t *h, uintptr_t p);
/* p is a value a marker found that resolves to no heap object: if it
 * points into a quarantined chunk, that chunk stays quarantined.  One load
 * when nothing is quarantined. */
GCH_INLINE void _gc_userarena_note(gc_heap_t *h, uintptr_t p) {
  if (gch_likely(atomic_load_explicit(&h->uarena->nquarantined,
                                      memory_order_relaxed) == 0))
    return;
  _gc_userarena_note_slow(h, p);
}

/* gc_verify (world stopped): 0, or nonzero with a description in msg. */
int _gc_userarena_check(gc_heap_t *h, char *msg, size_t len);
void _gc_userarena_stats(gc_heap_t *h, gc_stats_t *out);
/* ", arena X MB live Y MB quarantined" for the trace line, or "". */
void _gc_userarena_trace(gc_heap_t *h, char *buf, size_t len);

#endif
