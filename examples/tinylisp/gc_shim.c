/*
 * gc_shim.c -- the two GC back ends behind gc_shim.h.
 *
 * gcheap: one registered type per object kind, with a pointer map of the
 * struct's pointer words (value.h); slot arrays use a one-word pointer
 * type and gc_alloc_array; bytes are GCH_NOSCAN.  The heap comes from
 * gc_config_default(), so GCHEAP_TRACE, GCHEAP_TORTURE, GCHEAP_GC_PERCENT,
 * GCHEAP_MODE etc. are read by the library itself.  Roots: one callback,
 * which walks lisp_root_visit.  Weak references and finalizers use the
 * gc_weak_* / gc_set_finalizer API when the header announces it with
 * GCH_FEATURE_SPECIALS, and report "not supported in this build" before.
 *
 * Boehm: GC_MALLOC for objects with pointers (scanned conservatively),
 * GC_MALLOC_ATOMIC for pointer-free kinds and bytes, plain stores, tables
 * in GC_MALLOC_UNCOLLECTABLE memory.  Finalizers run only on demand
 * (GC_set_finalize_on_demand), from the interpreter's drain points.
 *
 * The one global: the interpreter that the GC's finalizer callbacks serve.
 */
#include "gc_shim.h"

#include <stdlib.h>
#include <string.h>

#ifdef LISP_GC_BOEHM
#include <gc.h>
#endif

static lisp_t *shim_lisp;

/* Size and pointer map (bit i = word i is a pointer) of each kind. */
static const struct kind_info {
  const char *name;
  size_t size;
  uint64_t map;
} kinds[K_NKINDS] = {
    [K_PAIR] = {"lisp.pair", sizeof(pair_t), 0x6},
    [K_STRING] = {"lisp.string", sizeof(string_t), 0x4},
    [K_SYMBOL] = {"lisp.symbol", sizeof(symbol_t), 0x6},
    [K_VECTOR] = {"lisp.vector", sizeof(vector_t), 0x4},
    [K_CLOSURE] = {"lisp.closure", sizeof(closure_t), 0x1e},
    [K_PRIM] = {"lisp.primitive", sizeof(prim_t), 0x0},
    /* K_FRAME: one type per slot count, see frame_map */
    [K_FLONUM] = {"lisp.flonum", sizeof(flonum_t), 0x0},
    [K_WEAK] = {"lisp.weak", sizeof(weak_t), 0x2},
    [K_SLOTS] = {"lisp.slot", sizeof(val_t), 0x1},
};

_Static_assert(offsetof(pair_t, car) == 8 && offsetof(pair_t, cdr) == 16,
               "pair map");
_Static_assert(offsetof(closure_t, name) == 32, "closure map");
_Static_assert(offsetof(frame_t, vals) == 32, "frame map");
_Static_assert(FRAME_MAX + 3 < 128, "frame maps fit two words");

_Static_assert(offsetof(weak_t, handle) == 8, "weak map");

static _Noreturn void shim_oom(lisp_t *L, const char *what);

/* ================================================================ gcheap */
#ifdef LISP_GC_GCHEAP

struct shim {
  const gc_type_t *types[K_NKINDS];
  const gc_type_t *frames[FRAME_MAX + 1];
  char msg[160];
};

#define HEAP(L) ((gc_heap_t *)(L)->heap)

/* A frame of n slots: every word but the header is a pointer. */
static void frame_map(size_t n, uint64_t map[2]) {
  map[0] = map[1] = 0;
  for (size_t w = 1; w < 4 + n; w++) map[w / 64] |= (uint64_t)1 << (w % 64);
}

static void shim_visit_slot(val_t *slot, void *ctx) {
  gc_visit((gc_visitor_t *)ctx, (void *const *)slot);
}

static void shim_roots(gc_visitor_t *v, void *ctx) {
  lisp_root_visit((lisp_t *)ctx, shim_visit_slot, v);
}

static void shim_fail(const char *what, gc_result_t r) {
  fprintf(stderr, "tinylisp: %s: %s\n", what, gc_result_str(r));
  exit(70);
}

const char *shim_name(void) { return "gcheap"; }

lisp_t *shim_init(void) {
  gc_config_t cfg = gc_config_default();
  gc_result_t err = GCH_OK;
  gc_heap_t *h = gc_heap_new(&cfg, &err);
  if (!h) shim_fail("gc_heap_new", err);
  lisp_t *L = calloc(1, sizeof *L);
  if (L) L->shim = calloc(1, sizeof *L->shim);
  if (!L || !L->shim) shim_fail("interpreter state", GCH_ENOMEM);
  L->heap = h;
  for (int k = 1; k < K_NKINDS; k++) {
    if (!kinds[k].size) continue;
    uint64_t map = kinds[k].map;
    gc_result_t r = gc_type_new(h, kinds[k].name, kinds[k].size, &map, 1,
                                &L->shim->types[k]);
    if (r != GCH_OK) shim_fail("gc_type_new", r);
  }
  for (size_t n = 0; n <= FRAME_MAX; n++) {
    uint64_t map[2];
    char name[32];
    frame_map(n, map);
    snprintf(name, sizeof name, "lisp.frame%zu", n);
    gc_result_t r = gc_type_new(h, name, sizeof(frame_t) + n * sizeof(val_t),
                                map, (4 + n + 63) / 64, &L->shim->frames[n]);
    if (r != GCH_OK) shim_fail("gc_type_new", r);
  }
  gc_result_t r = gc_root_callback_add(h, shim_roots, L);
  if (r != GCH_OK) shim_fail("gc_root_callback_add", r);
  shim_lisp = L;
  return L;
}

void shim_shutdown(lisp_t *L) {
  gc_root_callback_remove(HEAP(L), shim_roots, L);
  gc_result_t r = gc_heap_destroy(HEAP(L));
  if (r != GCH_OK)
    fprintf(stderr, "tinylisp: gc_heap_destroy: %s\n", gc_result_str(r));
  free(L->shim);
  free(L);
  shim_lisp = NULL;
}

void *shim_alloc(lisp_t *L, int kind) {
  void *p = gc_alloc(HEAP(L), L->shim->types[kind]);
  if (GCH_UNLIKELY(!p)) shim_oom(L, "gc_alloc");
  return p;
}

void *shim_alloc_frame(lisp_t *L, size_t n) {
  void *p = gc_alloc(HEAP(L), L->shim->frames[n]);
  if (GCH_UNLIKELY(!p)) shim_oom(L, "gc_alloc");
  return p;
}

val_t *shim_alloc_slots(lisp_t *L, size_t n) {
  val_t *p = gc_alloc_array(HEAP(L), L->shim->types[K_SLOTS], n);
  if (!p) shim_oom(L, "gc_alloc_array");
  return p;
}

char *shim_alloc_bytes(lisp_t *L, size_t n) {
  char *p = gc_malloc(HEAP(L), n, GCH_NOSCAN);
  if (!p) shim_oom(L, "gc_malloc");
  return p;
}

void *shim_host_alloc(size_t n) { return calloc(1, n); }
void *shim_host_realloc(void *p, size_t old_n, size_t new_n) {
  char *q = realloc(p, new_n);
  if (q && new_n > old_n) memset(q + old_n, 0, new_n - old_n);
  return q;
}
void shim_host_free(void *p) { free(p); }

void shim_collect(lisp_t *L) {
  gc_result_t r = gc_collect(HEAP(L));
  if (r != GCH_OK) {
    snprintf(L->shim->msg, sizeof L->shim->msg, "gc_collect: %s",
             gc_result_str(r));
    lisp_error(L, L->shim->msg, UNBOUND);
  }
}

void shim_blocking_enter(lisp_t *L) { gc_blocking_enter(HEAP(L)); }
void shim_blocking_leave(lisp_t *L) { gc_blocking_leave(HEAP(L)); }

void shim_stats(lisp_t *L, shim_stats_t *st) {
  gc_stats_t s;
  memset(st, 0, sizeof *st);
  if (gc_get_stats(HEAP(L), &s) != GCH_OK) return;
  st->cycles = s.cycles;
  st->live_bytes = s.live_bytes;
  st->heap_bytes = s.bytes_mapped;
  st->total_alloc = s.total_alloc_bytes;
}

#ifdef GCH_FEATURE_SPECIALS
const char *shim_specials(void) { return NULL; }

/* ctx carries the finalizer's index in the interpreter's table, tagged
 * like a fixnum: the heap shades ctx as a root while armed, and an odd
 * word can never be taken for a heap pointer. */
static void shim_finalizer(gc_heap_t *heap, void *obj, void *ctx) {
  (void)heap;
  lisp_finalize_ready(shim_lisp, obj, fix_val(ctx));
}

const char *shim_weak_init(lisp_t *L, val_t w, val_t target) {
  /* w and target are rooted by the caller across this allocation. */
  gc_weak_t *h = gc_weak_new(HEAP(L), target);
  if (!h) {
    snprintf(L->shim->msg, sizeof L->shim->msg, "gc_weak_new: %s",
             gc_result_str(gc_last_error(HEAP(L))));
    return L->shim->msg;
  }
  shim_write(L, w, &WEAK(w)->handle, h);
  return NULL;
}

val_t shim_weak_get(lisp_t *L, val_t w) {
  void *p = gc_weak_get(HEAP(L), (gc_weak_t *)WEAK(w)->handle);
  return p ? p : FALSE_V;
}

/* gcheap refuses to re-arm an armed object (GCH_EEXIST): disarm first.
 * The old procedure's table entry cannot be recovered and stays. */
const char *shim_set_finalizer(lisp_t *L, val_t obj, int64_t index) {
  gc_result_t r = gc_set_finalizer(HEAP(L), obj, NULL, NULL);
  if (r == GCH_OK && index >= 0)
    r = gc_set_finalizer(HEAP(L), obj, shim_finalizer, fix(index));
  if (r == GCH_OK) return NULL;
  snprintf(L->shim->msg, sizeof L->shim->msg, "gc_set_finalizer: %s",
           gc_result_str(r));
  return L->shim->msg;
}

size_t shim_run_finalizers(lisp_t *L) { return gc_run_finalizers(HEAP(L)); }

#else /* !GCH_FEATURE_SPECIALS */

static const char no_specials[] =
    "not supported in this build (gcheap lacks weak references and "
    "finalizers: GCH_FEATURE_SPECIALS is not defined)";

const char *shim_specials(void) { return no_specials; }
const char *shim_weak_init(lisp_t *L, val_t w, val_t target) {
  (void)L, (void)w, (void)target;
  return no_specials;
}
val_t shim_weak_get(lisp_t *L, val_t w) {
  (void)L, (void)w;
  return FALSE_V;
}
const char *shim_set_finalizer(lisp_t *L, val_t obj, int64_t index) {
  (void)L, (void)obj, (void)index;
  return no_specials;
}
size_t shim_run_finalizers(lisp_t *L) {
  (void)L;
  return 0;
}
#endif /* GCH_FEATURE_SPECIALS */

static _Noreturn void shim_oom(lisp_t *L, const char *what) {
  snprintf(L->shim->msg, sizeof L->shim->msg, "out of memory (%s: %s)", what,
           gc_result_str(gc_last_error(HEAP(L))));
  lisp_error(L, L->shim->msg, UNBOUND);
}

#endif /* LISP_GC_GCHEAP */

/* ================================================================= Boehm */
#ifdef LISP_GC_BOEHM

struct shim {
  char msg[160];
};

const char *shim_name(void) { return "boehm"; }

lisp_t *shim_init(void) {
  GC_INIT();
  GC_set_finalize_on_demand(1);
  lisp_t *L = GC_MALLOC_UNCOLLECTABLE(sizeof *L);
  if (L) {
    memset(L, 0, sizeof *L);
    L->shim = calloc(1, sizeof *L->shim);
  }
  if (!L || !L->shim) {
    fprintf(stderr, "tinylisp: out of memory\n");
    exit(70);
  }
  shim_lisp = L;
  return L;
}

void shim_shutdown(lisp_t *L) {
  free(L->shim);
  GC_FREE(L);
  shim_lisp = NULL;
}

static int kind_is_atomic(int kind) {
  return kind == K_PRIM || kind == K_FLONUM || kind == K_WEAK;
}

void *shim_alloc(lisp_t *L, int kind) {
  size_t n = kinds[kind].size;
  void *p;
  if (kind_is_atomic(kind)) {
    p = GC_MALLOC_ATOMIC(n);
    if (p) memset(p, 0, n);
  } else {
    p = GC_MALLOC(n);
  }
  if (!p) shim_oom(L, "GC_MALLOC");
  return p;
}

void *shim_alloc_frame(lisp_t *L, size_t n) {
  void *p = GC_MALLOC(sizeof(frame_t) + n * sizeof(val_t));
  if (!p) shim_oom(L, "GC_MALLOC");
  return p;
}

val_t *shim_alloc_slots(lisp_t *L, size_t n) {
  if (n > SIZE_MAX / sizeof(val_t)) shim_oom(L, "slots");
  val_t *p = GC_MALLOC(n ? n * sizeof(val_t) : sizeof(val_t));
  if (!p) shim_oom(L, "GC_MALLOC");
  return p;
}

char *shim_alloc_bytes(lisp_t *L, size_t n) {
  char *p = GC_MALLOC_ATOMIC(n ? n : 1);
  if (!p) shim_oom(L, "GC_MALLOC_ATOMIC");
  memset(p, 0, n ? n : 1);
  return p;
}

void *shim_host_alloc(size_t n) {
  void *p = GC_MALLOC_UNCOLLECTABLE(n);
  if (p) memset(p, 0, n);
  return p;
}
void *shim_host_realloc(void *p, size_t old_n, size_t new_n) {
  char *q = GC_MALLOC_UNCOLLECTABLE(new_n);
  if (!q) return NULL;
  memset(q, 0, new_n);
  if (p) memcpy(q, p, old_n < new_n ? old_n : new_n);
  GC_FREE(p);
  return q;
}
void shim_host_free(void *p) { GC_FREE(p); }

void shim_collect(lisp_t *L) {
  (void)L;
  GC_gcollect();
}

/* Single-threaded under Boehm: nothing waits for this thread. */
void shim_blocking_enter(lisp_t *L) { (void)L; }
void shim_blocking_leave(lisp_t *L) { (void)L; }

void shim_stats(lisp_t *L, shim_stats_t *st) {
  (void)L;
  GC_word heap = 0, free_b = 0, unmapped = 0, since = 0, total = 0;
  GC_get_heap_usage_safe(&heap, &free_b, &unmapped, &since, &total);
  st->cycles = GC_get_gc_no();
  st->live_bytes = heap - free_b - unmapped - since;
  if ((int64_t)st->live_bytes < 0) st->live_bytes = 0;
  st->heap_bytes = heap;
  st->total_alloc = total;
}

const char *shim_specials(void) { return NULL; }

/* The weak object is atomic (never scanned) and holds the target hidden;
 * the disappearing link clears it when the target is collected. */
const char *shim_weak_init(lisp_t *L, val_t w, val_t target) {
  (void)L;
  WEAK(w)->handle = (void *)GC_HIDE_POINTER(target);
  if (GC_general_register_disappearing_link(&WEAK(w)->handle, target) ==
      GC_NO_MEMORY)
    return "GC_general_register_disappearing_link: out of memory";
  return NULL;
}

static void *reveal_weak(void *w) {
  void *h = WEAK(w)->handle;
  return h ? GC_REVEAL_POINTER((GC_hidden_pointer)h) : NULL;
}

val_t shim_weak_get(lisp_t *L, val_t w) {
  (void)L;
  void *p = GC_call_with_alloc_lock(reveal_weak, w);
  return p ? p : FALSE_V;
}

static void boehm_finalizer(void *obj, void *cd) {
  lisp_finalize_ready(shim_lisp, obj, (int64_t)(intptr_t)cd);
}

const char *shim_set_finalizer(lisp_t *L, val_t obj, int64_t index) {
  GC_finalization_proc ofn = 0;
  void *ocd = NULL;
  if (index < 0)
    GC_register_finalizer(obj, 0, NULL, &ofn, &ocd);
  else
    GC_register_finalizer(obj, boehm_finalizer, (void *)(intptr_t)index, &ofn,
                          &ocd);
  if (ofn) lisp_finalizer_release(L, (int64_t)(intptr_t)ocd);
  return NULL;
}

size_t shim_run_finalizers(lisp_t *L) {
  (void)L;
  return (size_t)GC_invoke_finalizers();
}

static _Noreturn void shim_oom(lisp_t *L, const char *what) {
  snprintf(L->shim->msg, sizeof L->shim->msg, "out of memory (%s)", what);
  lisp_error(L, L->shim->msg, UNBOUND);
}

#endif /* LISP_GC_BOEHM */
