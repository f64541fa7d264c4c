/*
 * meta.h -- metadata allocators (see meta.c).
 *
 * persistent: bump allocation of never-freed metadata in 256 KiB chunks
 *   taken from the OS layer (requests >= 64 KiB go straight to the OS).
 * fixalloc: a free list of fixed-size records (spans, thread records,
 *   specials, work buffers) carved from persistent memory and recycled.
 *
 * Nothing here lives in the GC heap or calls malloc.  Neither allocator
 * locks: the owner's lock must be held (documented at each use).
 */
#ifndef GCH_META_H
#define GCH_META_H

#include <stddef.h>
#include "os.h"

typedef struct persistent {
  os_mem_t *os;
  char *cur, *end;      /* current chunk */
  size_t bytes;         /* total metadata bytes obtained from the OS */
  struct persistent_big *big; /* list of direct OS allocations */
} persistent_t;

void _gc_persistent_init(persistent_t *p, os_mem_t *os);
/* Zeroed, `align`-aligned (power of two <= 4096) memory, or NULL. */
void *_gc_persistent_alloc(persistent_t *p, size_t size, size_t align);
/* Give every chunk back to the OS (heap destruction). */
void _gc_persistent_release(persistent_t *p);

typedef struct fixalloc {
  persistent_t *mem;
  size_t size;          /* record size, >= sizeof(void *) */
  void *free;           /* free list of records */
  size_t inuse;         /* records handed out and not freed */
} fixalloc_t;

void _gc_fixalloc_init(fixalloc_t *f, persistent_t *mem, size_t size);
/* A zeroed record, or NULL when metadata memory is exhausted. */
void *_gc_fixalloc_alloc(fixalloc_t *f);
void _gc_fixalloc_free(fixalloc_t *f, void *p);

#endif
