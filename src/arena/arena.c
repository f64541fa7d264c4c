/*
 * arena.c -- heap arenas and the arena index (Go's heapArena, arenaHints,
 * mheap.grow).
 *
 * Owns: reserving heap address space, the per-heap arena index and each
 * arena's metadata, and feeding freshly mapped chunks to the page allocator.
 *
 * Address space is reserved in 64 MiB heap arenas, aligned to 64 MiB, at
 * addresses from a hint that starts at 0x00c000000000 + (a per-heap
 * offset) and moves upward, so a heap stays contiguous and runs can span
 * arena boundaries.  Within the current arena, memory is mapped one 4 MiB
 * chunk at a time (Reserved -> Prepared) as the heap grows; pages enter the
 * page allocator "scavenged" and become Ready when allocated.
 *
 * The index is one flat array of 2^22 arena pointers (48-bit addresses,
 * 64 MiB arenas), demand-paged: an entry is written once (NULL -> arena,
 * release store) under the heap lock and read without a lock.  Each heap
 * has its own index, so no heap ever resolves another heap's pointer.
 */
#include "heap.h"

#include <errno.h>
#include <string.h>

#define ARENA_HINT_BASE ((uintptr_t)0x00c0 << 32)

/* ThreadSanitizer's shadow layout has no room for application memory at
 * the hint addresses: let the kernel place arenas (Go's race mode also
 * narrows its hints). */
#if defined(__SANITIZE_THREAD__)
#define ARENA_USE_HINTS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ARENA_USE_HINTS 0
#endif
#endif
#ifndef ARENA_USE_HINTS
#define ARENA_USE_HINTS 1
#endif

int _gc_arena_init(gc_heap_t *h) {
  void *idx;
  size_t bytes = sizeof(h->arenas[0]) << GCH_ARENA_INDEX_BITS;
  int rc = _gc_os_alloc_sparse(&h->os, bytes, &idx);
  if (rc) return rc;
  h->arenas = idx;
  /* Spread heaps of one process over the hint space so they do not fight
   * over the same addresses (a failed hint is simply skipped). */
  h->arena_hint = ARENA_USE_HINTS ? ARENA_HINT_BASE + (((uintptr_t)h >> 12) & 0x3f) *
                                                         ((uintptr_t)1 << 38)
                                  : 0;
  return 0;
}

void _gc_arena_destroy(gc_heap_t *h) {
  if (!h->arenas) return;
  for (struct arena_resv *r = h->resv; r; r = r->next)
    _gc_os_release(&h->os, (void *)r->base, r->bytes);
  h->resv = NULL;
  _gc_os_release(&h->os, (void *)h->arenas,
                 sizeof(h->arenas[0]) << GCH_ARENA_INDEX_BITS);
  h->arenas = NULL;
}

/* Reserve `n` contiguous arenas, at the hint if possible. */
static gc_result_t arena_reserve(gc_heap_t *h, size_t n, uintptr_t *out) {
  size_t bytes = n * GCH_ARENA_BYTES;
  if (bytes / GCH_ARENA_BYTES != n) return GCH_EOVERFLOW;
  void *p = NULL;
  int rc = ENOMEM;
  for (int tries = 0; tries < 8 && rc && h->arena_hint; tries++) {
    uintptr_t hint = h->arena_hint;
    if (hint + bytes < hint || (hint + bytes) >> GCH_ADDR_BITS) break;
    rc = _gc_os_reserve(&h->os, hint, bytes, GCH_ARENA_BYTES, &p);
    if (rc == 0 && (uintptr_t)p != hint) break; /* placed elsewhere: fine */
    if (rc) h->arena_hint += bytes; /* hint taken: try further up */
  }
  if (rc) rc = _gc_os_reserve(&h->os, 0, bytes, GCH_ARENA_BYTES, &p);
  if (rc) return GCH_ENOMEM;
  uintptr_t base = (uintptr_t)p;
  if ((base + bytes) >> GCH_ADDR_BITS) {
    _gc_os_release(&h->os, p, bytes);
    return GCH_ENOMEM;
  }
  struct arena_resv *rv = _gc_persistent_alloc(&h->meta, sizeof *rv, 16);
  if (!rv) {
    _gc_os_release(&h->os, p, bytes);
    return GCH_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    heap_arena_t *a = _gc_persistent_alloc(&h->meta, sizeof *a, 64);
    if (!a) {
      /* Unpublished arenas: give the reservation back. */
      for (size_t j = 0; j < i; j++)
        atomic_store(&h->arenas[(base >> GCH_ARENA_SHIFT) + j], NULL);
      _gc_os_release(&h->os, p, bytes);
      return GCH_ENOMEM;
    }
    a->base = base + i * GCH_ARENA_BYTES;
    atomic_store_explicit(&h->arenas[a->base >> GCH_ARENA_SHIFT], a,
                          memory_order_release);
  }
  rv->base = base;
  rv->bytes = bytes;
  rv->next = h->resv;
  h->resv = rv;
  if (ARENA_USE_HINTS) h->arena_hint = base + bytes;
  *out = base;
  return GCH_OK;
}

gc_result_t _gc_arena_grow(gc_heap_t *h, size_t npages) {
  _gc_lock_assert_held(&h->lock);
  size_t want = GCH_ALIGN_UP(npages, GCH_CHUNK_PAGES);
  if (want < npages || want > ((size_t)1 << (GCH_ADDR_BITS - GCH_PAGE_SHIFT)))
    return GCH_EOVERFLOW;
  size_t bytes = want * GCH_PAGE_SIZE;
  /* Growing only adds address space (pages enter scavenged): the hard
   * limit on backed memory is kept by span.c before pages are taken. */

  if (h->cur_arena + bytes > h->cur_reserved_end || h->cur_arena == 0) {
    /* Not enough room in the current reservation: take new arenas.  The
     * unused tail of the old one stays reserved (and indexed) for later
     * growth only if contiguous; otherwise it is simply left unused. */
    size_t n = (bytes + GCH_ARENA_BYTES - 1) / GCH_ARENA_BYTES;
    uintptr_t base;
    gc_result_t r = arena_reserve(h, n, &base);
    if (r != GCH_OK) return r;
    if (base != h->cur_reserved_end) h->cur_arena = base;
    h->cur_reserved_end = base + n * GCH_ARENA_BYTES;
    if (h->cur_arena + bytes > h->cur_reserved_end) h->cur_arena = base;
  }
  uintptr_t at = h->cur_arena;
  if (_gc_os_map(&h->os, (void *)at, bytes) != 0) return GCH_ENOMEM;
  if (_gc_pages_grow(&h->pages, at, want) != 0) return GCH_ENOMEM;
  h->cur_arena = at + bytes;
  return GCH_OK;
}

/* Point every page of s at val (a span or NULL).  The owner of the pages
 * does this; readers use acquire loads. */
void _gc_arena_set_spans(gc_heap_t *h, gc_span_t *s, gc_span_t *val) {
  uintptr_t p = s->base, end = s->base + s->npages * GCH_PAGE_SIZE;
  while (p < end) {
    heap_arena_t *a = arena_of(h, p);
    GCH_ASSERT(a != NULL);
    size_t first = (p - a->base) >> GCH_PAGE_SHIFT;
    size_t last = GCH_MIN((size_t)GCH_ARENA_PAGES, first + ((end - p) >> GCH_PAGE_SHIFT));
    for (size_t i = first; i < last; i++)
      atomic_store_explicit(&a->spans[i], val, memory_order_release);
    p = a->base + last * GCH_PAGE_SIZE;
  }
}
