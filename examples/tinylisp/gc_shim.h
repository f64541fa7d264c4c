/*
 * gc_shim.h -- the only place tinylisp meets a garbage collector.
 *
 * Two implementations in gc_shim.c, chosen at compile time:
 *   LISP_GC_GCHEAP  gcheap (include/gcheap.h): every object kind is a
 *                   registered type with a precise pointer map, character
 *                   data is GCH_NOSCAN, pointer stores go through
 *                   gc_write, and the interpreter's roots (shadow stack,
 *                   symbol table, globals, finalizer tables) are reported
 *                   by one root callback.  The C stack is not scanned.
 *   LISP_GC_BOEHM   Boehm GC: GC_MALLOC / GC_MALLOC_ATOMIC, plain stores,
 *                   interpreter tables in uncollectable (scanned) memory,
 *                   weak references as disappearing links, finalizers via
 *                   GC_register_finalizer run on demand.
 * The interpreter is written once against this interface and behaves the
 * same under both; test/lisp/run_programs.sh compares their outputs.
 */
#ifndef TINYLISP_GC_SHIM_H
#define TINYLISP_GC_SHIM_H

#include "value.h"

#if defined(LISP_GC_GCHEAP) == defined(LISP_GC_BOEHM)
#error "define exactly one of LISP_GC_GCHEAP and LISP_GC_BOEHM"
#endif

#ifdef LISP_GC_GCHEAP
#include "gcheap.h"
#endif

/* Create the heap, register the object types and the root callback, and
 * return a zeroed interpreter struct in memory the GC sees as a root. */
lisp_t *shim_init(void);
/* Release the heap and the interpreter struct (nothing may be used
 * afterwards). */
void shim_shutdown(lisp_t *L);
const char *shim_name(void);

/* A zeroed object of a kind (value.h's enum kind); raises a Lisp error
 * when the GC cannot allocate. */
void *shim_alloc(lisp_t *L, int kind);
/* A zeroed frame with n value slots (n <= FRAME_MAX). */
void *shim_alloc_frame(lisp_t *L, size_t n);
/* A zeroed array of n pointer slots. */
val_t *shim_alloc_slots(lisp_t *L, size_t n);
/* n zeroed bytes never scanned for pointers. */
char *shim_alloc_bytes(lisp_t *L, size_t n);

/* Store v into *slot, a pointer field of heap object obj (the barrier). */
static inline void shim_write(lisp_t *L, void *obj, val_t *slot, val_t v) {
#ifdef LISP_GC_GCHEAP
  gc_write((gc_heap_t *)L->heap, obj, slot, v);
#else
  (void)L;
  (void)obj;
  *slot = v;
#endif
}

/* Host memory for interpreter tables that hold Lisp values (zeroed).
 * Under Boehm it is uncollectable and scanned; under gcheap it is plain
 * malloc memory whose slots the root callback visits. */
void *shim_host_alloc(size_t n);
void *shim_host_realloc(void *p, size_t old_n, size_t new_n);
void shim_host_free(void *p);

void shim_collect(lisp_t *L);

/* Bracket a blocking system call (terminal input, file I/O) during which
 * the thread touches no heap memory, so a collection need not wait. */
void shim_blocking_enter(lisp_t *L);
void shim_blocking_leave(lisp_t *L);

typedef struct shim_stats {
  uint64_t cycles;      /* completed collections */
  uint64_t live_bytes;  /* bytes live after the last collection */
  uint64_t heap_bytes;  /* bytes the heap holds from the OS */
  uint64_t total_alloc; /* bytes allocated since start */
} shim_stats_t;
void shim_stats(lisp_t *L, shim_stats_t *st);

/* Weak references and finalizers.  shim_specials() is NULL when they are
 * available and otherwise says why not; the others return NULL on success
 * or an error message. */
const char *shim_specials(void);
const char *shim_weak_init(lisp_t *L, val_t w, val_t target);
/* The target of weak object w, or FALSE_V once it was collected. */
val_t shim_weak_get(lisp_t *L, val_t w);
/* Arrange for lisp_finalize_ready(L, obj, index) once obj is unreachable;
 * index -1 clears obj's finalizer. */
const char *shim_set_finalizer(lisp_t *L, val_t obj, int64_t index);
/* Run the GC's queued finalizers (each calls lisp_finalize_ready);
 * returns how many ran. */
size_t shim_run_finalizers(lisp_t *L);

/* object.c: called by the shim for a finalized object (no allocation). */
void lisp_finalize_ready(lisp_t *L, val_t obj, int64_t index);
/* object.c: a finalizer slot that the GC will no longer report. */
void lisp_finalizer_release(lisp_t *L, int64_t index);

#endif
