/*
 * checkmark.c -- GCHEAP_DEBUG=checkmark (Go's gccheckmark=1): after a mark
 * has finished, with the world still stopped, mark everything again from
 * the roots into fresh bits and check that every object the second mark
 * reaches was marked by the first one.  A miss means the concurrent mark
 * (barrier, roots, termination) lost an object: abort with its address and
 * type.
 *
 * Method: save every in-use span's mark bits to a side table, clear them,
 * re-run the ordinary root marking and drain (the same code, so no branch
 * is added to the mark loop), compare, then restore the saved bits (the
 * first mark's bits are a superset: they also hold objects allocated black).
 */
#include "gc/gcint.h"

#include <stdio.h>
#include <string.h>

typedef struct cm_span {
  gc_span_t *s;
  uint64_t *saved;
} cm_span_t;

typedef struct checkmark {
  gc_heap_t *h;
  cm_span_t *spans;
  size_t n, cap;
  uint64_t *bits;
  size_t nbits_words, used_words;
  void *mem;
  size_t mem_bytes;
} checkmark_t;

static size_t cm_words(const gc_span_t *s) { return (s->nelems + 63u) / 64; }

/* Visit every in-use span (first page of each). */
static void cm_each_span(gc_heap_t *h, void (*fn)(checkmark_t *, gc_span_t *),
                         checkmark_t *cm) {
  for (struct arena_resv *r = h->resv; r; r = r->next) {
    for (uintptr_t a = r->base; a < r->base + r->bytes; a += GCH_ARENA_BYTES) {
      heap_arena_t *ar = arena_of(h, a);
      if (!ar) continue;
      for (size_t pg = 0; pg < GCH_ARENA_PAGES; pg++) {
        gc_span_t *s = atomic_load(&ar->spans[pg]);
        if (!s || atomic_load(&s->state) != SPAN_IN_USE) continue;
        if (s->base != ar->base + pg * GCH_PAGE_SIZE) continue;
        fn(cm, s);
      }
    }
  }
}

static void cm_count(checkmark_t *cm, gc_span_t *s) {
  cm->cap++;
  cm->nbits_words += cm_words(s);
}

static void cm_save(checkmark_t *cm, gc_span_t *s) {
  if (cm->n == cm->cap) {
    fprintf(stderr, "checkmark: span %p class %u npages %zu sg %u heap sg %u\n",
            (void *)s->base, s->spanclass, s->npages, atomic_load(&s->sweepgen),
            atomic_load(&cm->h->sweepgen));
    gch_throw("checkmark: span set changed while stopped");
  }
  size_t w = cm_words(s);
  cm_span_t *e = &cm->spans[cm->n++];
  e->s = s;
  e->saved = cm->bits + cm->used_words;
  cm->used_words += w;
  memcpy(e->saved, s->mark_bits, w * sizeof(uint64_t));
  memset(s->mark_bits, 0, w * sizeof(uint64_t));
}

static const char *cm_type_name(const gc_span_t *s, size_t idx) {
  if (s->layout == LAYOUT_HEADER) {
    const gc_type_t *t = *(const gc_type_t *const *)(s->base + idx * s->elemsize);
    return t ? t->name : "?";
  }
  if (s->layout == LAYOUT_LARGE && s->large_type) return s->large_type->name;
  return s->layout == LAYOUT_NOSCAN ? "noscan" : "small (pointer map in heap bits)";
}

void _gc_checkmark(gc_heap_t *h, gc_thread_t *self) {
  checkmark_t cm = {.h = h};
  cm_each_span(h, cm_count, &cm);
  cm.mem_bytes = cm.cap * sizeof(cm_span_t) + cm.nbits_words * 8 + 64;
  if (_gc_os_alloc(&h->os, cm.mem_bytes, &cm.mem) != 0)
    gch_throw("checkmark: out of memory");
  cm.spans = cm.mem;
  cm.bits = (uint64_t *)(cm.spans + cm.cap);
  cm_each_span(h, cm_save, &cm);

  gcwork_t w;
  memset(&w, 0, sizeof w);
  _gc_mark_roots(h, &w, self);
  _gc_mark_drain(h, &w);
  _gc_work_dispose(h, &w);

  size_t missed = 0;
  for (size_t i = 0; i < cm.n; i++) {
    gc_span_t *s = cm.spans[i].s;
    for (size_t k = 0; k < s->nelems; k++) {
      if (bit_get(s->mark_bits, k) && !bit_get(cm.spans[i].saved, k)) {
        if (!missed++)
          fprintf(stderr, "gcheap: checkmark: object %p (type %s, %zu bytes) is "
                          "reachable but was not marked\n",
                  (void *)(s->base + k * s->elemsize), cm_type_name(s, k),
                  (size_t)s->elemsize);
      }
    }
    memcpy(s->mark_bits, cm.spans[i].saved, cm_words(s) * sizeof(uint64_t));
  }
  _gc_os_free(&h->os, cm.mem, cm.mem_bytes);
  h->gc->checkmark_cycles++;
  if (missed) {
    fprintf(stderr, "gcheap: checkmark: %zu reachable object(s) unmarked\n", missed);
    gch_throw("checkmark found unmarked reachable objects");
  }
}
