/*
 * type.c -- registered types: size, pointer map, name.
 *
 * A type is metadata of its heap (never freed before the heap), so the
 * collector can read it from a header word or span record without a lock.
 * A map with no bits set makes the type noscan: its objects go to noscan
 * spans and are never scanned.
 */
#include "heap.h"

#include <string.h>

static size_t type_map_words(size_t nwords) { return (nwords + 63) / 64; }

GCH_API gc_result_t gc_type_new(gc_heap_t *h, const char *name, size_t size,
                                const uint64_t *map, size_t map_words,
                                const gc_type_t **out) {
  if (!h || h->magic != GCH_HEAP_MAGIC || !out) return GCH_EINVAL;
  *out = NULL;
  if (size == 0 || size % 8 || size > ((size_t)1 << 40)) return GCH_EINVAL;
  size_t nwords = size / 8;
  if (map_words && !map) return GCH_EINVAL;
  if (map_words > type_map_words(nwords)) return GCH_EINVAL;
  /* Bits past the type's last word mean the map is longer than the type. */
  if (map_words == type_map_words(nwords) && nwords % 64 &&
      (map[map_words - 1] >> (nwords % 64)))
    return GCH_EINVAL;
  if (!name) name = "?";
  size_t nlen = strlen(name) + 1;
  size_t mwords = type_map_words(nwords);

  _gc_lock(&h->lock);
  gc_type_t *t = _gc_persistent_alloc(&h->meta, sizeof *t, 16);
  uint64_t *m = t ? _gc_persistent_alloc(&h->meta, mwords * 8, 8) : NULL;
  char *n = m ? _gc_persistent_alloc(&h->meta, nlen, 1) : NULL;
  _gc_unlock(&h->lock);
  if (!n) return GCH_ENOMEM;

  bool any = false;
  for (size_t i = 0; i < map_words; i++) {
    m[i] = map[i];
    any |= map[i] != 0;
  }
  memcpy(n, name, nlen);
  t->name = n;
  t->size = size;
  t->nwords = nwords;
  t->map = m;
  t->mask64 = nwords <= 64 ? m[0] : 0;
  t->noscan = !any;
  t->conservative = false;
  t->all_ptrs = nwords <= 64 &&
                t->mask64 == (nwords == 64 ? ~(uint64_t)0 : (((uint64_t)1 << nwords) - 1));
  t->fast_spc = 0;
  if (t->noscan && size >= GCH_TINY_SIZE && size <= GCH_MAX_SMALL_SIZE)
    t->fast_spc = (uint8_t)(gch_size_to_class(size) << 1 | 1);
  else if (!t->noscan && size <= 512)
    t->fast_spc = (uint8_t)(gch_size_to_class(size) << 1);
  *out = t;
  return GCH_OK;
}

GCH_API const char *gc_type_name(const gc_type_t *t) { return t ? t->name : NULL; }
GCH_API size_t gc_type_size(const gc_type_t *t) { return t ? t->size : 0; }
