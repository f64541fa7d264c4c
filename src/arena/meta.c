/*
 * meta.c -- persistent and fixed-size metadata allocators (see meta.h).
 *
 * Invariants: persistent memory is zero when handed out (fresh OS memory);
 * a fixalloc record is zeroed on every allocation, so recycled records look
 * fresh; inuse counts records out, which the stats report as metadata.
 */
#include "meta.h"

#include <string.h>

#include "common.h"

#define PERSISTENT_CHUNK ((size_t)256 << 10)
#define PERSISTENT_BIG ((size_t)64 << 10)

struct persistent_big {
  struct persistent_big *next;
  size_t size;
};

void _gc_persistent_init(persistent_t *p, os_mem_t *os) {
  memset(p, 0, sizeof *p);
  p->os = os;
}

/* Every chunk starts with a link so that release can find it again. */
static void *persistent_os(persistent_t *p, size_t size) {
  void *mem;
  size_t total = size + 64;
  if (total < size || _gc_os_alloc(p->os, total, &mem) != 0) return NULL;
  struct persistent_big *b = mem;
  b->size = total;
  b->next = p->big;
  p->big = b;
  p->bytes += GCH_ALIGN_UP(total, GCH_OS_PAGE);
  return (char *)mem + 64;
}

void *_gc_persistent_alloc(persistent_t *p, size_t size, size_t align) {
  GCH_ASSERT(align && (align & (align - 1)) == 0 && align <= 4096);
  if (size >= PERSISTENT_BIG) {
    if (align <= 64) return persistent_os(p, size);
    char *raw = persistent_os(p, size + align);
    return raw ? (void *)GCH_ALIGN_UP((uintptr_t)raw, align) : NULL;
  }
  uintptr_t at = GCH_ALIGN_UP((uintptr_t)p->cur, align);
  if (!p->cur || at + size > (uintptr_t)p->end) {
    char *chunk = persistent_os(p, PERSISTENT_CHUNK - 64);
    if (!chunk) return NULL;
    p->cur = chunk;
    p->end = chunk + PERSISTENT_CHUNK - 64;
    at = GCH_ALIGN_UP((uintptr_t)p->cur, align);
  }
  p->cur = (char *)(at + size);
  return (void *)at;
}

void _gc_persistent_release(persistent_t *p) {
  struct persistent_big *b = p->big;
  while (b) {
    struct persistent_big *next = b->next;
    _gc_os_free(p->os, b, b->size);
    b = next;
  }
  p->big = NULL;
  p->cur = p->end = NULL;
  p->bytes = 0;
}

void _gc_fixalloc_init(fixalloc_t *f, persistent_t *mem, size_t size) {
  f->mem = mem;
  f->size = GCH_ALIGN_UP(GCH_MAX(size, sizeof(void *)), 16);
  f->free = NULL;
  f->inuse = 0;
}

void *_gc_fixalloc_alloc(fixalloc_t *f) {
  void *r = f->free;
  if (r) {
    f->free = *(void **)r;
    memset(r, 0, f->size);
  } else {
    r = _gc_persistent_alloc(f->mem, f->size, 16);
    if (!r) return NULL;
  }
  f->inuse++;
  return r;
}

void _gc_fixalloc_free(fixalloc_t *f, void *p) {
  GCH_ASSERT(f->inuse > 0);
  *(void **)p = f->free;
  f->free = p;
  f->inuse--;
}
