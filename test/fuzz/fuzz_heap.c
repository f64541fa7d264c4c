/*
 * fuzz_heap.c -- a libFuzzer harness for the public API (issue 8): one
 * input is one program run on a fresh heap and checked against a model
 * kept in malloc memory.  It defines LLVMFuzzerTestOneInput; `make fuzz`
 * links it with libFuzzer, and test_fuzz_corpus.c includes it to replay
 * the corpus as an ordinary test (any compiler, any sanitizer).
 *
 * Input: bytes 0-1 pick the config (mode, mark workers, background
 * sweeper and scavenger, torture, pacing, profiling, a memory limit, the
 * GCHEAP_DEBUG knobs: see fz_config); the rest is a sequence of
 * operations, an opcode byte and its argument bytes each (reading past the
 * end gives zeros): allocate typed / array / noscan / conservative objects
 * and place them in a root or a field; link, unlink and overwrite words
 * (always through gc_write, gc_write_range for bulk moves); set, copy and
 * clear root slots, and switch whole root groups (a precise range, a root
 * callback, a conservative range) off and on; collect; run finalizers; arm
 * and disarm finalizers (with actions taken inside them: resurrect,
 * re-arm, allocate, make a handle, try nested calls); make, read and drop
 * weak handles (reviving targets through them); add cleanups; create,
 * fill and free user arenas; churn garbage; and call the API with bad
 * arguments, asserting the documented result codes.
 *
 * The model says, in the header's terms:
 *  - R, the strongly reachable objects: the closure of the active root
 *    slots, of the pointer words of live user-arena objects, and of the
 *    ctx objects of armed or queued finalizers.  Never finalized or freed.
 *  - S, what the heap must keep: R, plus the closure of queued finalizer
 *    objects and of what armed finalizer objects point to (Go's rule).
 *    The program only touches objects in S and in live arenas.
 *  - Everything else is limbo: an automatic collection (pacing, torture,
 *    the concurrent controller) may have freed it or queued its finalizer
 *    at any allocation.  A weak handle may still answer it -- the target
 *    is then revived into a root -- or NULL, for good.
 *  - gc_collect is a full cycle with the world stopped, where the model is
 *    exact: armed finalizers outside S are queued (their handles read NULL
 *    from now on and gc_run_finalizers runs each exactly once), every
 *    other object outside S is dead (handles NULL; cleanups run after the
 *    next cycle's gc_run_finalizers at the latest).  Noscan objects under
 *    16 B share blocks and die with the block, so their handles may go on
 *    answering; they get no finalizers or cleanups.
 * After every gc_collect the contents of every object in S and in live
 * arenas (each word: NULL, a data pattern, an immediate or the expected
 * pointer), the root slots, every weak handle, gc_verify and the stats
 * counters are checked; freshly allocated memory must be zero and aligned
 * as documented; a new user-arena object must not overlap a freed one that
 * a reachable word still points into (quarantine).  A finalizer may run
 * only for an object the model queued, or for one outside S (queued by an
 * automatic collection); a cleanup only for an object outside S.  A
 * mismatch prints one line and aborts, which libFuzzer records as a crash;
 * GCHEAP_FUZZ_TRACE=1 also prints every operation and modelled store, and
 * the model when a check fails or the input ends.
 *
 * Invariants of the harness: every store of a pointer-capable word goes
 * through gc_write; objects outside S are never read or written through
 * the heap; nothing of a freed arena is touched; data words carry bit 63,
 * so conservative scanning never mistakes them for pointers.  All state
 * hangs off one fz_state_t per input, freed at its end; fz_cur points at
 * it only so that finalizers and cleanups (which run on this thread,
 * inside gc_run_finalizers) can find it.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcheap.h"

#define FZ_MAX_OBJS 1024
#define FZ_MAX_OPS 1000
#define FZ_MAX_COLLECTS 48
#define FZ_ROOTS 16   /* 0-7 precise range, 8-11 callback, 12-15 conservative */
#define FZ_WEAKS 16
#define FZ_ARENAS 8
#define FZ_CLEANUPS 128
#define FZ_SCAN_BUDGET ((size_t)256 << 10) /* modelled scannable bytes */
#define FZ_BYTE_BUDGET ((size_t)4 << 20)   /* modelled noscan bytes */
#define FZ_CHURN_BUDGET ((size_t)1 << 20)
#define FZ_BIG_OBJECT 40000
#define FZ_HIGH ((uint64_t)1 << 63) /* in every data word and immediate */

/* ----------------------------------------------------------------- types */

enum { FZ_T_NODE, FZ_T_PAIR, FZ_T_REF, FZ_T_BIG, FZ_T_RAW, FZ_T_SMALL, FZ_NTYPES };
#define FZ_K_CONS FZ_NTYPES        /* gc_malloc(size, 0): every word scanned */
#define FZ_K_BLOB (FZ_NTYPES + 1)  /* gc_malloc(size, GCH_NOSCAN) */
#define FZ_K_BYTES (FZ_NTYPES + 2) /* gc_arena_alloc_bytes */

typedef struct fz_tdesc {
  const char *name;
  size_t size;
  uint64_t map[2];
  size_t map_words;
} fz_tdesc_t;

/* node: pointers in words 0, 2, 3, 5; big: 80 words (a type header above
 * 512 B), pointers in words 0, 1, 64, 79; raw and small: noscan types. */
static const fz_tdesc_t fz_tdesc[FZ_NTYPES] = {
    {"fz.node", 48, {0x2d, 0}, 1},          {"fz.pair", 16, {0x1, 0}, 1},
    {"fz.ref", 8, {0x1, 0}, 1},             {"fz.big", 640, {0x3, 0x8001}, 2},
    {"fz.raw", 24, {0, 0}, 1},              {"fz.small", 8, {0, 0}, 0},
};

/* ----------------------------------------------------------------- model */

enum { FZ_W_NULL, FZ_W_DATA, FZ_W_IMM, FZ_W_EDGE };

typedef struct fz_word {
  uint64_t imm;  /* FZ_W_IMM: the value */
  int32_t to;    /* FZ_W_EDGE: target object */
  uint32_t off;  /* FZ_W_EDGE: offset into the target */
  uint8_t tag;   /* FZ_W_* */
} fz_word_t;

enum { FZ_FIN_NONE, FZ_FIN_ARMED, FZ_FIN_PENDING };

/* Actions of a finalizer, chosen when it is armed. */
#define FZ_ACT_NESTED 1u    /* gc_collect / gc_run_finalizers: GCH_EBUSY */
#define FZ_ACT_RESURRECT 2u /* store the object in a root slot */
#define FZ_ACT_WEAK 4u      /* make a new handle */
#define FZ_ACT_REARM 8u     /* arm a new finalizer on the object */
#define FZ_ACT_ALLOC 16u    /* allocate an object pointing to it, rooted */

typedef struct fz_obj {
  uintptr_t addr;
  size_t size;       /* bytes asked for */
  size_t nwords;     /* modelled words (0 for FZ_K_BLOB / FZ_K_BYTES) */
  fz_word_t *w;      /* nwords words; NULL once dead */
  gc_weak_t *weak;   /* its handle, while known to be set */
  int kind;          /* FZ_T_* or FZ_K_* */
  int arena;         /* arena index, or -1 for a heap object */
  int fin_ctx;       /* ctx object of the finalizer, or -1 (ctx = this) */
  uint32_t seed;     /* data words and bytes derive from it */
  uint32_t nedges;   /* words tagged FZ_W_EDGE */
  uint32_t stamp;    /* visit mark of fz_check_graph */
  uint8_t live;      /* heap: not known dead; arena: not freed */
  uint8_t tiny;      /* noscan under 16 B: shares a 16-B block */
  uint8_t fin;       /* FZ_FIN_* */
  uint8_t fin_action, fin_slot;
  uint8_t in_r, in_s; /* reachability, valid while !st->dirty */
} fz_obj_t;

enum { FZ_WS_EMPTY, FZ_WS_LIVE, FZ_WS_DEAD, FZ_WS_MAYBE };

typedef struct fz_weakslot {
  uintptr_t addr; /* the target's address */
  int target;
  uint8_t status; /* FZ_WS_* */
} fz_weakslot_t;

enum { FZ_CL_ARMED, FZ_CL_DUE, FZ_CL_RAN };

typedef struct fz_cleanup {
  uint64_t due; /* FZ_CL_DUE: must have run once ncollect reaches this */
  int obj;
  uint8_t state;
} fz_cleanup_t;

typedef struct fz_arena {
  gc_arena_t *a;
  int freed;
} fz_arena_t;

typedef struct fz_state {
  gc_heap_t *h;
  const gc_type_t *types[FZ_NTYPES];
  uint8_t tptr[FZ_NTYPES][8]; /* pointer words of one element */
  uint8_t tnptr[FZ_NTYPES];
  const uint8_t *in;
  size_t n, pos;
  unsigned cfg, cfg2, ops;
  fz_obj_t *objs;
  int nobjs;
  void **roots;              /* FZ_ROOTS slots, malloc'd */
  fz_word_t rootm[FZ_ROOTS]; /* their model */
  int group_on[3];
  void **weaks;              /* FZ_WEAKS handles, a precise root range */
  fz_weakslot_t weakm[FZ_WEAKS];
  fz_arena_t arenas[FZ_ARENAS];
  int narenas;
  fz_cleanup_t cleanups[FZ_CLEANUPS];
  int ncleanups;
  int dirty;                 /* reachability must be recomputed */
  int *stack, *pick;
  int npick;
  uint32_t stamp, seeds;
  uint64_t ncollect;         /* explicit full collections */
  uint64_t fin_ran, cl_ran;  /* callbacks seen */
  uint64_t cb_calls;         /* callbacks in the current run */
  int in_run;                /* inside our gc_run_finalizers */
  int trace;                 /* GCHEAP_FUZZ_TRACE: one line per operation */
  int limited;               /* config.hard_limit set: allocations may fail */
  uint64_t oom_calls;        /* config.oom_handler calls */
  uint64_t oom_seen;         /* of which explained by a failed allocation */
  size_t scan_bytes, byte_bytes, churn_bytes;
} fz_state_t;

static fz_state_t *fz_cur; /* the input being run (callbacks find it here) */

/* ---------------------------------------------------------------- failure */

#define FZ_CHECK(c, ...) \
  do {                   \
    if (!(c)) fz_fail(__LINE__, #c, __VA_ARGS__); \
  } while (0)

static void fz_dump(const fz_state_t *st);

static _Noreturn void fz_fail(int line, const char *cond, const char *fmt, ...) {
  fz_state_t *st = fz_cur;
  if (st && st->trace) fz_dump(st);
  fprintf(stderr, "fuzz_heap: mismatch at line %d (op %u, input byte %zu, config %02x %02x): ",
          line, st ? st->ops : 0, st ? st->pos : 0, st ? st->cfg : 0, st ? st->cfg2 : 0);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  failed: %s\n", cond);
  abort();
}

/* GCHEAP_FUZZ_TRACE: the model, printed when a check fails. */
static void fz_dump(const fz_state_t *st) {
  for (int k = 0; k < FZ_ROOTS; k++)
    if (st->rootm[k].tag != FZ_W_NULL)
      fprintf(stderr, "root %d (group %s): tag %d -> %d+%u\n", k,
              st->group_on[k < 8 ? 0 : k < 12 ? 1 : 2] ? "on" : "off", st->rootm[k].tag,
              st->rootm[k].to, st->rootm[k].off);
  for (int i = 0; i < st->nobjs; i++) {
    const fz_obj_t *o = &st->objs[i];
    fprintf(stderr, "obj %d: kind %d arena %d live %d r%d s%d fin %d ctx %d act %u at %p size %zu:",
            i, o->kind, o->arena, o->live, o->in_r, o->in_s, o->fin, o->fin_ctx, o->fin_action,
            (void *)o->addr, o->size);
    for (size_t k = 0; k < o->nwords; k++)
      if (o->w[k].tag == FZ_W_EDGE) fprintf(stderr, " [%zu]->%d", k, o->w[k].to);
    fprintf(stderr, "\n");
  }
  for (int k = 0; k < FZ_WEAKS; k++)
    if (st->weakm[k].status != FZ_WS_EMPTY)
      fprintf(stderr, "weak %d: target %d status %d\n", k, st->weakm[k].target,
              st->weakm[k].status);
}

/* ------------------------------------------------------------------ input */

static unsigned fz_u8(fz_state_t *st) {
  return st->pos < st->n ? st->in[st->pos++] : 0;
}

static unsigned fz_u16(fz_state_t *st) {
  unsigned lo = fz_u8(st);
  return lo | fz_u8(st) << 8;
}

/* ------------------------------------------------------------- patterns */

static uint64_t fz_mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ull;
  x ^= x >> 27;
  x *= 0x81dadef4bc2dd44dull;
  return x ^ (x >> 33);
}

static uint64_t fz_data(uint32_t seed, size_t i) {
  return fz_mix((uint64_t)seed << 32 ^ i) | FZ_HIGH;
}

static void fz_fill_bytes(uintptr_t p, size_t size, uint32_t seed) {
  for (size_t j = 0; j < size; j += 8) {
    uint64_t v = fz_data(seed, j / 8);
    memcpy((void *)(p + j), &v, size - j < 8 ? size - j : 8);
  }
}

/* The first byte of [p, p + size) off the pattern, or size. */
static size_t fz_bytes_off(uintptr_t p, size_t size, uint32_t seed) {
  for (size_t j = 0; j < size; j += 8) {
    uint64_t v = fz_data(seed, j / 8);
    size_t k = size - j < 8 ? size - j : 8;
    if (memcmp((void *)(p + j), &v, k) != 0) {
      for (size_t b = 0; b < k; b++)
        if (((const uint8_t *)(p + j))[b] != ((const uint8_t *)&v)[b]) return j + b;
    }
  }
  return size;
}

/* ------------------------------------------------------------ model words */

static int fz_is_bytes(const fz_obj_t *o) {
  return o->kind == FZ_K_BLOB || o->kind == FZ_K_BYTES;
}

/* Pointer-capable words of o (typed pointer words, or every word of a
 * conservative object). */
static size_t fz_nptr(const fz_state_t *st, const fz_obj_t *o) {
  if (o->kind == FZ_K_CONS) return o->nwords;
  if (o->kind >= FZ_NTYPES) return 0;
  return o->nwords / (fz_tdesc[o->kind].size / 8) * st->tnptr[o->kind];
}

static size_t fz_ptr_word(const fz_state_t *st, const fz_obj_t *o, size_t j) {
  if (o->kind == FZ_K_CONS) return j;
  size_t pc = st->tnptr[o->kind], tw = fz_tdesc[o->kind].size / 8;
  return j / pc * tw + st->tptr[o->kind][j % pc];
}

static int fz_word_is_ptr(const fz_obj_t *o, size_t i) {
  if (o->kind == FZ_K_CONS) return 1;
  const fz_tdesc_t *d = &fz_tdesc[o->kind];
  size_t k = i % (d->size / 8);
  return k / 64 < d->map_words && (d->map[k / 64] >> (k % 64) & 1);
}

static uint64_t fz_value(const fz_state_t *st, const fz_word_t *w, uint32_t seed,
                         size_t i) {
  switch (w->tag) {
  case FZ_W_DATA:
    return fz_data(seed, i);
  case FZ_W_IMM:
    return w->imm;
  case FZ_W_EDGE:
    return st->objs[w->to].addr + w->off;
  default:
    return 0;
  }
}

static fz_word_t fz_edge(int to, uint32_t off) {
  fz_word_t w = {0, to, off, FZ_W_EDGE};
  return w;
}

static fz_word_t fz_imm(unsigned b) {
  fz_word_t w = {FZ_HIGH | (uint64_t)b << 3 | 2, -1, 0, FZ_W_IMM};
  return w;
}

/* Store model word nw into pointer-capable word i of o, through the
 * barrier. */
static void fz_store(fz_state_t *st, fz_obj_t *o, size_t i, fz_word_t nw) {
  uintptr_t v = (uintptr_t)fz_value(st, &nw, o->seed, i);
  gc_write(st->h, (void *)o->addr, (void **)(o->addr + 8 * i), (void *)v);
  if (st->trace)
    fprintf(stderr, "  obj %d word %zu = %d+%u (tag %d)\n", (int)(o - st->objs), i, nw.to,
            nw.off, nw.tag);
  o->nedges += (nw.tag == FZ_W_EDGE) - (o->w[i].tag == FZ_W_EDGE);
  o->w[i] = nw;
  st->dirty = 1;
}

/* ------------------------------------------------------------------ roots */

static int fz_root_group(int k) { return k < 8 ? 0 : k < 12 ? 1 : 2; }

static int fz_root_active(const fz_state_t *st, int k) {
  return st->group_on[fz_root_group(k)];
}

/* An active root slot near k, or -1 when every group is off. */
static int fz_root_slot(const fz_state_t *st, unsigned k) {
  for (int j = 0; j < FZ_ROOTS; j++) {
    int s = (int)((k + (unsigned)j) % FZ_ROOTS);
    if (fz_root_active(st, s)) return s;
  }
  return -1;
}

static void fz_root_store(fz_state_t *st, int k, fz_word_t nw) {
  st->roots[k] = (void *)(uintptr_t)fz_value(st, &nw, 0, 0);
  if (st->trace) fprintf(stderr, "  root %d = %d+%u (tag %d)\n", k, nw.to, nw.off, nw.tag);
  st->rootm[k] = nw;
  st->dirty = 1;
}

/* Slots 8-11 are reported by this callback (on the collecting thread,
 * with this thread stopped); it also reports slots 12-15, the
 * conservative range, again through gc_visit_range (cleared while their
 * group is off, so this adds no root). */
static void fz_roots_cb(gc_visitor_t *v, void *ctx) {
  fz_state_t *st = ctx;
  for (int k = 8; k < 12; k++) gc_visit(v, &st->roots[k]);
  gc_visit_range(v, &st->roots[12], 4 * sizeof(void *));
}

/* ----------------------------------------------------------- reachability */

static void fz_push(fz_state_t *st, int *sp, int to, int strong) {
  fz_obj_t *t = &st->objs[to];
  if (t->arena >= 0) return; /* arena objects keep nothing: live ones are roots */
  FZ_CHECK(t->live, "model edge to object %d, which the model found dead", to);
  if (t->in_s && (!strong || t->in_r)) return;
  t->in_s = 1;
  if (strong) t->in_r = 1;
  st->stack[(*sp)++] = to;
}

static void fz_push_edges(fz_state_t *st, int *sp, const fz_obj_t *o, int strong) {
  if (!o->nedges) return;
  for (size_t i = 0; i < o->nwords; i++)
    if (o->w[i].tag == FZ_W_EDGE) fz_push(st, sp, o->w[i].to, strong);
}

static void fz_drain(fz_state_t *st, int *sp, int strong) {
  while (*sp) fz_push_edges(st, sp, &st->objs[st->stack[--*sp]], strong);
}

static void fz_strong_roots(fz_state_t *st, int *sp) {
  for (int k = 0; k < FZ_ROOTS; k++)
    if (fz_root_active(st, k) && st->rootm[k].tag == FZ_W_EDGE)
      fz_push(st, sp, st->rootm[k].to, 1);
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (!o->live) continue;
    if (o->arena >= 0) fz_push_edges(st, sp, o, 1);
    else if (o->fin != FZ_FIN_NONE && o->fin_ctx >= 0) fz_push(st, sp, o->fin_ctx, 1);
  }
}

/* Recompute R and S (see the head comment) and the list of objects the
 * program may touch: S and live arena objects. */
static void fz_reach(fz_state_t *st) {
  if (!st->dirty) return;
  for (int i = 0; i < st->nobjs; i++) st->objs[i].in_r = st->objs[i].in_s = 0;
  int sp = 0;
  fz_strong_roots(st, &sp);
  fz_drain(st, &sp, 1);
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (!o->live || o->arena >= 0) continue;
    if (o->fin == FZ_FIN_PENDING) fz_push(st, &sp, i, 0);
    else if (o->fin == FZ_FIN_ARMED) fz_push_edges(st, &sp, o, 0);
  }
  fz_drain(st, &sp, 0);
  st->npick = 0;
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (o->live && (o->in_s || o->arena >= 0)) st->pick[st->npick++] = i;
  }
  st->dirty = 0;
}

static int fz_noscan_kind(int kind) {
  return kind == FZ_K_BLOB || kind == FZ_K_BYTES || kind == FZ_T_RAW || kind == FZ_T_SMALL;
}

typedef int (*fz_filter_t)(const fz_state_t *st, const fz_obj_t *o);

static int f_any(const fz_state_t *st, const fz_obj_t *o) {
  (void)st;
  (void)o;
  return 1;
}
static int f_scan(const fz_state_t *st, const fz_obj_t *o) {
  return fz_nptr(st, o) > 0;
}
static int f_heap(const fz_state_t *st, const fz_obj_t *o) {
  (void)st;
  return o->arena < 0;
}
/* Heap objects that may carry finalizers and cleanups. */
static int f_special(const fz_state_t *st, const fz_obj_t *o) {
  (void)st;
  return o->arena < 0 && !o->tiny;
}
static int f_arena(const fz_state_t *st, const fz_obj_t *o) {
  (void)st;
  return o->arena >= 0;
}
static int f_refs(const fz_state_t *st, const fz_obj_t *o) {
  (void)st;
  return o->kind == FZ_T_REF && o->nwords >= 2;
}
/* Objects with an interior address that names no object.  Not 16-B
 * noscan ones: they share their span class with the tiny allocator's
 * blocks, so gc_set_finalizer, gc_weak_new and gc_add_cleanup take any
 * address inside them as an object's (tiny objects are named by their own
 * address). */
static int f_interior(const fz_state_t *st, const fz_obj_t *o) {
  return f_special(st, o) && o->size >= 16 && !(o->size == 16 && fz_noscan_kind(o->kind));
}

/* A touchable object passing `ok`, chosen by b, or -1. */
static int fz_pick(fz_state_t *st, unsigned b, fz_filter_t ok) {
  fz_reach(st);
  for (int j = 0; j < st->npick; j++) {
    int i = st->pick[(b + (unsigned)j) % (unsigned)st->npick];
    if (ok(st, &st->objs[i])) return i;
  }
  return -1;
}

/* --------------------------------------------------------------- checking */

static const char *fz_kind_name(int kind) {
  if (kind < FZ_NTYPES) return fz_tdesc[kind].name;
  return kind == FZ_K_CONS ? "conservative" : kind == FZ_K_BLOB ? "noscan" : "arena bytes";
}

static void fz_check_base(fz_state_t *st, int i) {
  fz_obj_t *o = &st->objs[i];
  void *p = (void *)o->addr;
  void *b = gc_base(st->h, p);
  if (o->tiny) {
    FZ_CHECK(b && (uintptr_t)b <= o->addr && o->addr - (uintptr_t)b < 16,
             "gc_base(tiny object %d at %p) = %p", i, p, b);
    return;
  }
  FZ_CHECK(b == p, "gc_base(object %d, %s, at %p) = %p", i, fz_kind_name(o->kind), p, b);
  size_t us = gc_size_of(st->h, p);
  FZ_CHECK(us >= o->size && us > 0, "gc_size_of(object %d at %p) = %zu < %zu", i, p,
           us, o->size);
  if (o->size > 1) {
    size_t off = o->size - 1 - (o->seed % o->size);
    FZ_CHECK(gc_base(st->h, (char *)p + off) == p, "gc_base(object %d + %zu) != %p", i,
             off, p);
  }
}

/* Compare object i's memory with the model. */
static void fz_check_obj(fz_state_t *st, int i) {
  fz_obj_t *o = &st->objs[i];
  FZ_CHECK(o->live, "checking object %d, which the model found dead", i);
  if (o->arena < 0) fz_check_base(st, i);
  if (fz_is_bytes(o)) {
    size_t off = fz_bytes_off(o->addr, o->size, o->seed);
    FZ_CHECK(off == o->size, "object %d (%s, %zu B at %p): byte %zu changed", i,
             fz_kind_name(o->kind), o->size, (void *)o->addr, off);
    return;
  }
  const uint64_t *mem = (const uint64_t *)o->addr;
  for (size_t k = 0; k < o->nwords; k++) {
    uint64_t want = fz_value(st, &o->w[k], o->seed, k);
    uint64_t got = __atomic_load_n(&mem[k], __ATOMIC_RELAXED);
    FZ_CHECK(got == want,
             "object %d (%s, %zu B at %p%s): word %zu is 0x%llx, model says 0x%llx (tag %d)",
             i, fz_kind_name(o->kind), o->size, (void *)o->addr,
             o->arena >= 0 ? ", arena" : "", k, (unsigned long long)got,
             (unsigned long long)want, o->w[k].tag);
  }
}

/* Check object i and every heap object it reaches. */
static void fz_check_graph(fz_state_t *st, int i) {
  uint32_t stamp = ++st->stamp;
  int sp = 0;
  st->objs[i].stamp = stamp;
  st->stack[sp++] = i;
  while (sp) {
    int j = st->stack[--sp];
    fz_obj_t *o = &st->objs[j];
    fz_check_obj(st, j);
    for (size_t k = 0; o->nedges && k < o->nwords; k++) {
      if (o->w[k].tag != FZ_W_EDGE) continue;
      fz_obj_t *t = &st->objs[o->w[k].to];
      if (t->arena >= 0 || t->stamp == stamp) continue;
      t->stamp = stamp;
      st->stack[sp++] = o->w[k].to;
    }
  }
}

static void fz_check_roots(fz_state_t *st) {
  for (int k = 0; k < FZ_ROOTS; k++) {
    if (!fz_root_active(st, k)) continue;
    uint64_t want = fz_value(st, &st->rootm[k], 0, 0);
    FZ_CHECK((uint64_t)(uintptr_t)st->roots[k] == want, "root slot %d is %p, model 0x%llx",
             k, st->roots[k], (unsigned long long)want);
  }
}

/* Read weak slot k and compare with the model; returns the answer. */
static void *fz_weak_read(fz_state_t *st, int k) {
  fz_weakslot_t *m = &st->weakm[k];
  void *r = gc_weak_get(st->h, (gc_weak_t *)st->weaks[k]);
  int limbo = m->status == FZ_WS_MAYBE;
  if (m->status == FZ_WS_LIVE) {
    fz_reach(st);
    limbo = !st->objs[m->target].in_s;
    FZ_CHECK(limbo || r == (void *)m->addr,
             "weak slot %d: target %d reachable at %p, get gave %p", k, m->target,
             (void *)m->addr, r);
  }
  if (limbo) {
    FZ_CHECK(!r || r == (void *)m->addr, "weak slot %d: get gave %p, target was %p", k, r,
             (void *)m->addr);
    if (!r) m->status = FZ_WS_DEAD;
  } else if (m->status == FZ_WS_DEAD) {
    FZ_CHECK(!r, "weak slot %d: target %d found dead (%p), get gave %p", k, m->target,
             (void *)m->addr, r);
  }
  return r;
}

static void fz_check_weaks(fz_state_t *st) {
  for (int k = 0; k < FZ_WEAKS; k++)
    if (st->weakm[k].status != FZ_WS_EMPTY) fz_weak_read(st, k);
}

static void fz_check_stats(fz_state_t *st) {
  gc_stats_t s;
  FZ_CHECK(gc_get_stats(st->h, &s) == GCH_OK, "gc_get_stats failed");
  FZ_CHECK(s.cycles >= st->ncollect && s.forced_cycles >= st->ncollect,
           "stats: %llu cycles (%llu forced), %llu explicit collections",
           (unsigned long long)s.cycles, (unsigned long long)s.forced_cycles,
           (unsigned long long)st->ncollect);
  FZ_CHECK(s.finalizers_run == st->fin_ran && s.cleanups_run == st->cl_ran,
           "stats: %llu finalizers and %llu cleanups run, callbacks saw %llu and %llu",
           (unsigned long long)s.finalizers_run, (unsigned long long)s.cleanups_run,
           (unsigned long long)st->fin_ran, (unsigned long long)st->cl_ran);
  uint64_t live = 0;
  for (int a = 0; a < st->narenas; a++) live += !st->arenas[a].freed;
  FZ_CHECK(s.arenas_live == live, "stats: %llu live arenas, model %llu",
           (unsigned long long)s.arenas_live, (unsigned long long)live);
}

/* Everything the model can check now. */
static void fz_check_all(fz_state_t *st) {
  fz_reach(st);
  fz_check_roots(st);
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (o->live && (o->in_s || o->arena >= 0)) fz_check_obj(st, i);
  }
  fz_check_weaks(st);
  fz_check_stats(st);
}

/* ------------------------------------------------------- deaths and weaks */

/* The handles of object i read NULL from now on (its finalizer was queued,
 * or it died); with `ask`, read each one now. */
static void fz_weak_cleared(fz_state_t *st, int i, int ask) {
  for (int k = 0; k < FZ_WEAKS; k++) {
    fz_weakslot_t *m = &st->weakm[k];
    if (m->target != i || m->status != FZ_WS_LIVE) continue;
    m->status = FZ_WS_DEAD;
    if (ask) fz_weak_read(st, k);
  }
  st->objs[i].weak = NULL;
}

/* Object i is dead: forget it.  Its cleanups must have run once ncollect
 * reaches `due`. */
static void fz_kill(fz_state_t *st, int i, uint64_t due) {
  fz_obj_t *o = &st->objs[i];
  for (int k = 0; k < FZ_WEAKS; k++) {
    fz_weakslot_t *m = &st->weakm[k];
    if (m->target == i && m->status == FZ_WS_LIVE)
      m->status = o->tiny ? FZ_WS_MAYBE : FZ_WS_DEAD;
  }
  for (int c = 0; c < st->ncleanups; c++) {
    if (st->cleanups[c].obj != i || st->cleanups[c].state != FZ_CL_ARMED) continue;
    st->cleanups[c].state = FZ_CL_DUE;
    st->cleanups[c].due = due;
  }
  o->live = 0;
  o->weak = NULL;
  free(o->w);
  o->w = NULL;
  o->nwords = o->nedges = 0;
  st->dirty = 1;
}

/* After a full collection: queue what the model says is ready, forget the
 * dead, check everything. */
static void fz_after_collect(fz_state_t *st) {
  st->ncollect++;
  fz_reach(st);
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (o->live && o->arena < 0 && o->fin == FZ_FIN_ARMED && !o->in_s) {
      o->fin = FZ_FIN_PENDING;
      fz_weak_cleared(st, i, 0);
    }
  }
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (o->live && o->arena < 0 && !o->in_s && o->fin == FZ_FIN_NONE)
      fz_kill(st, i, st->ncollect + 1);
  }
  st->dirty = 1;
  fz_check_all(st);
  FZ_CHECK(gc_verify(st->h, stderr) == GCH_OK, "gc_verify after collection %llu",
           (unsigned long long)st->ncollect);
}

/* ------------------------------------------------------------ finalizers */

static void *fz_fin_ctx(fz_state_t *st, int i) {
  fz_obj_t *o = &st->objs[i];
  return o->fin_ctx >= 0 ? (void *)st->objs[o->fin_ctx].addr : (void *)o;
}

/* The model object whose finalizer is armed or queued at p. */
static int fz_find_fin(fz_state_t *st, uintptr_t p) {
  int found = -1;
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (!o->live || o->arena >= 0 || o->fin == FZ_FIN_NONE || o->addr != p) continue;
    FZ_CHECK(found < 0, "two objects with finalizers at %p (%d, %d)", (void *)p, found, i);
    found = i;
  }
  return found;
}

static int fz_alloc_obj(fz_state_t *st, int kind, size_t n, int arena);
static int fz_alloc_ok(fz_state_t *st, const void *p, const char *what);

static void fz_fin_actions(fz_state_t *st, int i, unsigned act) {
  gc_heap_t *h = st->h;
  void *obj = (void *)st->objs[i].addr;
  if (act & FZ_ACT_NESTED) {
    FZ_CHECK(gc_collect(h) == GCH_EBUSY, "gc_collect inside a finalizer");
    FZ_CHECK(gc_run_finalizers(h) == 0 && gc_last_error(h) == GCH_EBUSY,
             "gc_run_finalizers inside a finalizer");
  }
  if (act & FZ_ACT_WEAK) {
    gc_weak_t *w = gc_weak_new(h, obj); /* obj is on the running list */
    if (fz_alloc_ok(st, w, "gc_weak_new in a finalizer")) {
      FZ_CHECK(gc_weak_get(h, w) == obj, "gc_weak_new inside a finalizer");
      int k = st->objs[i].fin_slot % FZ_WEAKS;
      st->weaks[k] = w;
      st->weakm[k] = (fz_weakslot_t){st->objs[i].addr, i, FZ_WS_LIVE};
      st->objs[i].weak = w;
    }
  }
  if (act & FZ_ACT_RESURRECT) {
    int k = fz_root_slot(st, st->objs[i].fin_slot);
    if (k >= 0) fz_root_store(st, k, fz_edge(i, 0));
  }
  if (act & FZ_ACT_ALLOC) {
    int j = fz_alloc_obj(st, FZ_K_CONS, 32, -1);
    int k = fz_root_slot(st, st->objs[i].fin_slot + 1u);
    if (j >= 0 && k >= 0) {
      fz_store(st, &st->objs[j], 0, fz_edge(i, 0));
      fz_root_store(st, k, fz_edge(j, 0));
    }
  }
}

static void fz_fin_cb(gc_heap_t *h, void *obj, void *ctx) {
  fz_state_t *st = fz_cur;
  FZ_CHECK(st && h == st->h && st->in_run, "a finalizer ran outside gc_run_finalizers");
  st->cb_calls++;
  int i = fz_find_fin(st, (uintptr_t)obj);
  FZ_CHECK(i >= 0, "finalizer for %p: no armed finalizer there (ran twice?)", obj);
  fz_obj_t *o = &st->objs[i];
  FZ_CHECK(ctx == fz_fin_ctx(st, i), "finalizer of object %d: ctx %p, armed with %p", i,
           ctx, fz_fin_ctx(st, i));
  /* Queued by the model's last gc_collect (it may have been stored
   * somewhere since), or by an automatic collection: then it is still
   * outside S, where it was when that collection found it ready. */
  fz_reach(st);
  FZ_CHECK(o->fin == FZ_FIN_PENDING || !o->in_s,
           "finalizer of object %d, which the heap must keep (%s)", i,
           o->in_r ? "reachable from the roots" : "reachable from a finalizer");
  fz_check_graph(st, i); /* the object and all it reaches are intact */
  fz_weak_cleared(st, i, 1);
  unsigned act = o->fin_action;
  o->fin = FZ_FIN_NONE;
  o->fin_ctx = -1;
  st->fin_ran++;
  st->dirty = 1;
  if (act & FZ_ACT_REARM) {
    FZ_CHECK(gc_set_finalizer(h, obj, fz_fin_cb, o) == GCH_OK, "re-arming a finalizer");
    o->fin = FZ_FIN_ARMED;
    o->fin_action = 0;
  }
  fz_fin_actions(st, i, act & ~FZ_ACT_REARM);
}

static void fz_cleanup_cb(void *arg) {
  fz_state_t *st = fz_cur;
  fz_cleanup_t *c = arg;
  FZ_CHECK(st && st->in_run, "a cleanup ran outside gc_run_finalizers");
  FZ_CHECK(c >= st->cleanups && c < st->cleanups + st->ncleanups, "cleanup arg %p", arg);
  st->cb_calls++;
  FZ_CHECK(c->state != FZ_CL_RAN, "cleanup %d ran twice", (int)(c - st->cleanups));
  if (c->state == FZ_CL_ARMED) { /* freed before the model knew: limbo */
    int i = c->obj;
    fz_obj_t *o = &st->objs[i];
    fz_reach(st);
    FZ_CHECK(o->live && !o->in_s && o->fin == FZ_FIN_NONE,
             "cleanup of object %d, which the heap must keep", i);
    fz_weak_cleared(st, i, 1); /* freed: its handles read NULL */
    fz_kill(st, i, st->ncollect);
  }
  c->state = FZ_CL_RAN;
  c->obj = -1;
  st->cl_ran++;
}

/* gc_run_finalizers: every queued finalizer and due cleanup runs. */
static void fz_run_finalizers(fz_state_t *st) {
  st->cb_calls = 0;
  st->in_run = 1;
  size_t n = gc_run_finalizers(st->h);
  st->in_run = 0;
  FZ_CHECK(n == st->cb_calls, "gc_run_finalizers returned %zu, %llu callbacks ran", n,
           (unsigned long long)st->cb_calls);
  for (int i = 0; i < st->nobjs; i++)
    FZ_CHECK(!st->objs[i].live || st->objs[i].fin != FZ_FIN_PENDING,
             "queued finalizer of object %d did not run", i);
  for (int c = 0; c < st->ncleanups; c++)
    FZ_CHECK(st->cleanups[c].state != FZ_CL_DUE || st->cleanups[c].due > st->ncollect,
             "cleanup %d of an object dead since collection %llu did not run", c,
             (unsigned long long)(st->cleanups[c].due - 1));
}

/* ------------------------------------------------------------- allocation */

/* The object count (typed) or byte size of an allocation, from two bytes:
 * small, medium, up to 1/4 of FZ_BIG_OBJECT, or large (over 32 KiB). */
static size_t fz_count(int kind, unsigned b1, unsigned b2) {
  size_t unit = kind < FZ_NTYPES ? fz_tdesc[kind].size : 1;
  size_t max = FZ_BIG_OBJECT / unit, x = (size_t)b2 << 6 | (b1 & 63);
  switch (b1 >> 6) {
  case 0:
    return kind < FZ_NTYPES ? (b2 & 1 ? 1 : b2 % 4) : b2 % 24;
  case 1:
    return kind < FZ_NTYPES ? b2 % 16 : b2;
  case 2:
    return x % (max / 4 + 1);
  default:
    return max - x % (max / 8 + 1);
  }
}

/* Whether an allocation succeeded; it may fail only under the hard limit,
 * with GCH_ELIMIT, and (in the GC heap; user arenas only scavenge) after
 * the OOM handler was called. */
static int fz_alloc_ok(fz_state_t *st, const void *p, const char *what) {
  if (p) return 1;
  gc_result_t err = gc_last_error(st->h);
  FZ_CHECK(st->limited && (err == GCH_ELIMIT || err == GCH_ENOMEM),
           "%s failed: %s (hard limit %s)", what, gc_result_str(err),
           st->limited ? "on" : "off");
  FZ_CHECK(strcmp(what, "arena allocation") == 0 || st->oom_calls > st->oom_seen,
           "%s failed without calling the OOM handler", what);
  st->oom_seen = st->oom_calls;
  return 0;
}

static void *fz_raw_alloc(fz_state_t *st, int kind, size_t n, int arena) {
  if (arena >= 0) {
    gc_arena_t *a = st->arenas[arena].a;
    return kind == FZ_K_BYTES ? gc_arena_alloc_bytes(a, n)
                              : gc_arena_alloc(a, st->types[kind], n);
  }
  if (kind == FZ_K_CONS) return gc_malloc(st->h, n, 0);
  if (kind == FZ_K_BLOB) return gc_malloc(st->h, n, GCH_NOSCAN);
  if (n == 1 && (st->seeds & 1)) return gc_alloc(st->h, st->types[kind]);
  return gc_alloc_array(st->h, st->types[kind], n);
}

/* The slots of a user arena are not reused while a reachable word still
 * points into a freed object there (it faults rather than aliasing). */
static int fz_pinned(fz_state_t *st, int a) {
  fz_reach(st);
  for (int k = 0; k < FZ_ROOTS; k++)
    if (fz_root_active(st, k) && st->rootm[k].tag == FZ_W_EDGE && st->rootm[k].to == a)
      return 1;
  for (int i = 0; i < st->nobjs; i++) {
    const fz_obj_t *o = &st->objs[i];
    if (!o->live || !o->nedges || !(o->in_s || o->arena >= 0)) continue;
    for (size_t k = 0; k < o->nwords; k++)
      if (o->w[k].tag == FZ_W_EDGE && o->w[k].to == a) return 1;
  }
  return 0;
}

static void fz_check_quarantine(fz_state_t *st, uintptr_t p, size_t size) {
  size_t len = size ? size : 8;
  for (int i = 0; i < st->nobjs; i++) {
    const fz_obj_t *o = &st->objs[i];
    size_t olen = o->size ? o->size : 8;
    if (o->arena < 0 || o->live || p >= o->addr + olen || o->addr >= p + len) continue;
    FZ_CHECK(!fz_pinned(st, i),
             "new arena object at %p (%zu B) overlaps freed arena object %d at %p, "
             "which a reachable word still points to", (void *)p, size, i, (void *)o->addr);
  }
}

/* Fresh memory: zeroed, aligned as documented (embedding.md, allocate). */
static void fz_check_fresh(fz_state_t *st, int kind, size_t size, uintptr_t p,
                           int arena, int tiny) {
  size_t rounded = (size + 7) & ~(size_t)7;
  if (kind == FZ_K_CONS) size = rounded;
  for (size_t j = 0; j < size; j += 8) {
    uint64_t v = 0;
    memcpy(&v, (const void *)(p + j), size - j < 8 ? size - j : 8);
    FZ_CHECK(v == 0, "new %s object at %p (%zu B): bytes %zu.. not zero",
             fz_kind_name(kind), (void *)p, size, j);
  }
  if (tiny) {
    unsigned al = !size ? 1 : size % 8 == 0 ? 8 : size % 4 == 0 ? 4 : size % 2 == 0 ? 2 : 1;
    FZ_CHECK(p % al == 0, "tiny object of %zu B at %p not %u-aligned", size, (void *)p, al);
    return;
  }
  FZ_CHECK(p % 8 == 0, "object at %p not 8-aligned", (void *)p);
  if (arena < 0 && rounded >= 16 && rounded != 24)
    FZ_CHECK(p % 16 == 0, "object of %zu B at %p not 16-aligned", size, (void *)p);
  if (arena >= 0) fz_check_quarantine(st, p, size);
}

/* Write the initial contents of new object o: data in scalar words (plain
 * stores), the pattern in bytes; pointer words stay NULL. */
static void fz_fill_new(fz_obj_t *o) {
  if (fz_is_bytes(o)) {
    fz_fill_bytes(o->addr, o->size, o->seed);
    return;
  }
  for (size_t k = 0; k < o->nwords; k++) {
    if (fz_word_is_ptr(o, k)) continue;
    o->w[k].tag = FZ_W_DATA;
    ((uint64_t *)o->addr)[k] = fz_data(o->seed, k);
  }
}

/* Allocate a modelled object: n objects of a type, or n bytes.  Returns
 * its index, or -1 when over a budget.  It is reachable from nothing yet:
 * the caller places it before the next allocation. */
static int fz_alloc_obj(fz_state_t *st, int kind, size_t n, int arena) {
  if (st->nobjs >= FZ_MAX_OBJS) return -1;
  size_t size = kind < FZ_NTYPES ? n * fz_tdesc[kind].size : n;
  int noscan = fz_noscan_kind(kind);
  size_t *used = noscan ? &st->byte_bytes : &st->scan_bytes;
  if (*used + size > (noscan ? FZ_BYTE_BUDGET : FZ_SCAN_BUDGET)) return -1;
  *used += size;
  st->seeds++;
  void *p = fz_raw_alloc(st, kind, n, arena);
  if (!fz_alloc_ok(st, p, arena >= 0 ? "arena allocation" : "allocation")) {
    *used -= size;
    return -1;
  }
  int tiny = arena < 0 && noscan && size < 16;
  fz_check_fresh(st, kind, size, (uintptr_t)p, arena, tiny);
  int i = st->nobjs++;
  fz_obj_t *o = &st->objs[i];
  memset(o, 0, sizeof *o);
  o->addr = (uintptr_t)p;
  o->size = size;
  o->kind = kind;
  o->arena = arena;
  o->fin_ctx = -1;
  o->live = 1;
  o->tiny = (uint8_t)tiny;
  o->seed = st->seeds * 2654435761u ^ st->cfg;
  if (!fz_is_bytes(o)) {
    o->nwords = kind == FZ_K_CONS ? (size + 7) / 8 : size / 8;
    o->w = calloc(o->nwords ? o->nwords : 1, sizeof *o->w);
    FZ_CHECK(o->w, "out of host memory");
    for (size_t k = 0; k < o->nwords; k++) o->w[k].to = -1;
  }
  fz_fill_new(o);
  if (st->trace)
    fprintf(stderr, "  obj %d: %s, %zu B at %p%s\n", i, fz_kind_name(kind), size, p,
            arena >= 0 ? " (arena)" : "");
  st->dirty = 1;
  return i;
}

/* Make new object i reachable (a root slot, or a pointer word of a
 * touchable object), or leave it garbage. */
static void fz_place(fz_state_t *st, int i, unsigned dest, unsigned off) {
  if (i < 0 || (dest & 0xc0) == 0x40) return;
  if (dest & 0x80) {
    int s = fz_pick(st, dest, f_scan);
    if (s >= 0) {
      fz_obj_t *o = &st->objs[s];
      fz_store(st, o, fz_ptr_word(st, o, off % fz_nptr(st, o)), fz_edge(i, 0));
      return;
    }
  }
  int k = fz_root_slot(st, dest);
  if (k >= 0) fz_root_store(st, k, fz_edge(i, 0));
}

/* ------------------------------------------------------------- operations */

static void op_alloc(fz_state_t *st) {
  unsigned k = fz_u8(st), b1 = fz_u8(st), b2 = fz_u8(st), dest = fz_u8(st);
  int kind = (int)(k % (FZ_NTYPES + 2));
  int i = fz_alloc_obj(st, kind, fz_count(kind, b1, b2), -1);
  fz_place(st, i, dest, k >> 3);
}

/* A value for a word: NULL, an immediate, a copy of a root slot (maybe a
 * stale arena pointer), or a pointer into a touchable object. */
static int fz_pick_value(fz_state_t *st, unsigned bv, unsigned bt, unsigned bo,
                         fz_word_t *nw) {
  fz_word_t null = {0, -1, 0, FZ_W_NULL};
  switch (bv % 8) {
  case 0:
    *nw = null;
    return 1;
  case 1:
    *nw = fz_imm(bv);
    return 1;
  case 2: {
    int k = (int)(bt % FZ_ROOTS);
    if (!fz_root_active(st, k)) return 0;
    *nw = st->rootm[k];
    return 1;
  }
  default: {
    int t = fz_pick(st, bt, f_any);
    if (t < 0) return 0;
    size_t sz = st->objs[t].size;
    *nw = fz_edge(t, sz ? (uint32_t)(bo % sz) : 0);
    return 1;
  }
  }
}

static void op_link(fz_state_t *st) {
  unsigned bs = fz_u8(st), bw = fz_u16(st), bv = fz_u8(st), bt = fz_u8(st), bo = fz_u16(st);
  int s = fz_pick(st, bs, f_scan);
  fz_word_t nw;
  if (s < 0 || !fz_pick_value(st, bv, bt, bo, &nw)) return;
  fz_obj_t *o = &st->objs[s];
  fz_store(st, o, fz_ptr_word(st, o, bw % fz_nptr(st, o)), nw);
}

static void op_root(fz_state_t *st) {
  unsigned bk = fz_u8(st), bv = fz_u8(st), bt = fz_u8(st), bo = fz_u16(st);
  int k = fz_root_slot(st, bk);
  fz_word_t nw;
  if (k >= 0 && fz_pick_value(st, bv, bt, bo, &nw)) fz_root_store(st, k, nw);
}

static gc_result_t fz_group_add(fz_state_t *st, int g) {
  if (g == 0) return gc_root_add(st->h, &st->roots[0], 8 * sizeof(void *), GCH_ROOT_PRECISE);
  if (g == 1) return gc_root_callback_add(st->h, fz_roots_cb, st);
  return gc_root_add(st->h, &st->roots[12], 4 * sizeof(void *), GCH_ROOT_CONSERVATIVE);
}

static gc_result_t fz_group_remove(fz_state_t *st, int g) {
  if (g == 0) return gc_root_remove(st->h, &st->roots[0]);
  if (g == 1) return gc_root_callback_remove(st->h, fz_roots_cb, st);
  return gc_root_remove(st->h, &st->roots[12]);
}

/* Switch a root group off (its slots cleared first) or on. */
static void op_roots_toggle(fz_state_t *st) {
  int g = (int)(fz_u8(st) % 3);
  if (st->group_on[g]) {
    fz_word_t null = {0, -1, 0, FZ_W_NULL};
    for (int k = 0; k < FZ_ROOTS; k++)
      if (fz_root_group(k) == g) fz_root_store(st, k, null);
    FZ_CHECK(fz_group_remove(st, g) == GCH_OK, "removing root group %d", g);
  } else {
    FZ_CHECK(fz_group_add(st, g) == GCH_OK, "adding root group %d", g);
  }
  st->group_on[g] = !st->group_on[g];
  st->dirty = 1;
}

static void op_collect(fz_state_t *st) {
  unsigned v = fz_u8(st);
  if (st->ncollect >= FZ_MAX_COLLECTS) return;
  gc_result_t r = (v & 3) == 3 ? gc_release_memory(st->h) : gc_collect(st->h);
  FZ_CHECK(r == GCH_OK, "collection: %s", gc_result_str(r));
  fz_after_collect(st);
  if (v & 4) fz_run_finalizers(st);
}

static void op_run_finalizers(fz_state_t *st) { fz_run_finalizers(st); }

static void op_set_finalizer(fz_state_t *st) {
  unsigned bo = fz_u8(st), act = fz_u8(st), bc = fz_u8(st), slot = fz_u8(st);
  int i = fz_pick(st, bo, f_special);
  if (i < 0) return;
  fz_obj_t *o = &st->objs[i];
  void *p = (void *)o->addr;
  if (o->fin == FZ_FIN_PENDING) return;
  if (o->fin == FZ_FIN_ARMED) {
    gc_result_t r = gc_set_finalizer(st->h, p, fz_fin_cb, o);
    FZ_CHECK(r == GCH_EEXIST && gc_last_error(st->h) == GCH_EEXIST,
             "second finalizer on object %d: %s", i, gc_result_str(r));
    return;
  }
  int ctx = bc & 1 ? fz_pick(st, bc >> 1, f_heap) : -1;
  o->fin_ctx = ctx == i ? -1 : ctx;
  gc_result_t r = gc_set_finalizer(st->h, p, fz_fin_cb, fz_fin_ctx(st, i));
  FZ_CHECK(r == GCH_OK, "gc_set_finalizer(object %d): %s", i, gc_result_str(r));
  o->fin = FZ_FIN_ARMED;
  o->fin_action = (uint8_t)(act & 0x1f);
  o->fin_slot = (uint8_t)slot;
  st->dirty = 1;
}

static void op_unset_finalizer(fz_state_t *st) {
  int i = fz_pick(st, fz_u8(st), f_special);
  if (i < 0 || st->objs[i].fin == FZ_FIN_PENDING) return;
  gc_result_t r = gc_set_finalizer(st->h, (void *)st->objs[i].addr, NULL, NULL);
  FZ_CHECK(r == GCH_OK, "disarming object %d: %s", i, gc_result_str(r));
  st->objs[i].fin = FZ_FIN_NONE;
  st->objs[i].fin_ctx = -1;
  st->dirty = 1;
}

static void op_weak_new(fz_state_t *st) {
  unsigned bo = fz_u8(st), bk = fz_u8(st);
  int i = fz_pick(st, bo, f_any);
  if (i < 0) return;
  fz_obj_t *o = &st->objs[i];
  void *p = (void *)o->addr;
  if (o->arena >= 0) {
    FZ_CHECK(!gc_weak_new(st->h, p) && gc_last_error(st->h) == GCH_EFOREIGN,
             "gc_weak_new(arena object)");
    return;
  }
  if (o->fin == FZ_FIN_PENDING) return;
  gc_weak_t *w = gc_weak_new(st->h, p); /* may collect: o is reachable */
  if (!fz_alloc_ok(st, w, "gc_weak_new")) return;
  FZ_CHECK(!o->weak || w == o->weak, "object %d: handle %p, before %p", i, (void *)w,
           (void *)o->weak);
  o->weak = w;
  int k = (int)(bk % FZ_WEAKS);
  st->weaks[k] = w;
  st->weakm[k] = (fz_weakslot_t){o->addr, i, FZ_WS_LIVE};
  FZ_CHECK(gc_weak_get(st->h, w) == p, "gc_weak_get of a new handle");
}

/* Read a handle; a limbo target it answers may be revived into a root. */
static void op_weak_get(fz_state_t *st) {
  unsigned bk = fz_u8(st), bd = fz_u8(st);
  int k = (int)(bk % FZ_WEAKS);
  fz_weakslot_t *m = &st->weakm[k];
  if (m->status == FZ_WS_EMPTY) return;
  void *r = fz_weak_read(st, k);
  if (!r || m->status != FZ_WS_LIVE || !(bd & 1)) return;
  fz_reach(st);
  if (st->objs[m->target].in_s) return;
  int s = fz_root_slot(st, bd >> 1);
  if (s < 0) return;
  fz_root_store(st, s, fz_edge(m->target, 0));
  fz_check_graph(st, m->target); /* a revived object is whole */
}

static void op_weak_drop(fz_state_t *st) {
  int k = (int)(fz_u8(st) % FZ_WEAKS);
  st->weaks[k] = NULL;
  st->weakm[k].status = FZ_WS_EMPTY;
}

static void op_cleanup(fz_state_t *st) {
  int i = fz_pick(st, fz_u8(st), f_any);
  if (i < 0) return;
  fz_obj_t *o = &st->objs[i];
  if (o->arena >= 0) {
    gc_result_t r = gc_add_cleanup(st->h, (void *)o->addr, fz_cleanup_cb, NULL);
    FZ_CHECK(r == GCH_EFOREIGN, "gc_add_cleanup(arena object): %s", gc_result_str(r));
    return;
  }
  if (o->tiny || st->ncleanups >= FZ_CLEANUPS) return;
  fz_cleanup_t *c = &st->cleanups[st->ncleanups++];
  *c = (fz_cleanup_t){0, i, FZ_CL_ARMED};
  gc_result_t r = gc_add_cleanup(st->h, (void *)o->addr, fz_cleanup_cb, c);
  FZ_CHECK(r == GCH_OK, "gc_add_cleanup(object %d): %s", i, gc_result_str(r));
}

static void op_arena_new(fz_state_t *st) {
  if (st->narenas >= FZ_ARENAS) return;
  gc_arena_t *a = gc_arena_new(st->h);
  FZ_CHECK(a, "gc_arena_new: %s", gc_result_str(gc_last_error(st->h)));
  st->arenas[st->narenas++] = (fz_arena_t){a, 0};
}

static void op_arena_alloc(fz_state_t *st) {
  static const int kinds[6] = {FZ_T_NODE, FZ_T_PAIR, FZ_T_REF, FZ_T_BIG, FZ_T_RAW, FZ_K_BYTES};
  unsigned ba = fz_u8(st), bk = fz_u8(st), b1 = fz_u8(st), b2 = fz_u8(st), dest = fz_u8(st);
  if (!st->narenas) return;
  int a = (int)(ba % (unsigned)st->narenas), kind = kinds[bk % 6];
  size_t n = fz_count(kind, b1, b2);
  if (kind == FZ_K_BYTES && b1 >> 6 == 3 && (b2 & 1)) /* past an arena's first 2 MiB */
    n = ((size_t)256 << 10) + ((size_t)b2 << 12);
  if (st->arenas[a].freed) {
    void *p = fz_raw_alloc(st, kind, n, a);
    FZ_CHECK(!p && gc_last_error(st->h) == GCH_EDOUBLEFREE, "allocation in a freed arena");
    return;
  }
  fz_place(st, fz_alloc_obj(st, kind, n, a), dest, bk >> 3);
}

static void op_arena_free(fz_state_t *st) {
  unsigned ba = fz_u8(st);
  if (!st->narenas) return;
  int a = (int)(ba % (unsigned)st->narenas);
  gc_result_t r = gc_arena_free(st->arenas[a].a);
  if (st->arenas[a].freed) {
    FZ_CHECK(r == GCH_EDOUBLEFREE && gc_last_error(st->h) == GCH_EDOUBLEFREE,
             "second gc_arena_free: %s", gc_result_str(r));
    return;
  }
  FZ_CHECK(r == GCH_OK, "gc_arena_free: %s", gc_result_str(r));
  st->arenas[a].freed = 1;
  for (int i = 0; i < st->nobjs; i++) {
    fz_obj_t *o = &st->objs[i];
    if (o->arena != a || !o->live) continue;
    o->live = 0; /* keeps addr and size: words elsewhere still point here */
    free(o->w);
    o->w = NULL;
    o->nwords = o->nedges = 0;
  }
  st->dirty = 1;
}

/* Rewrite an object's data (new seed): scalar words and bytes plainly,
 * the non-pointer words of a conservative object through the barrier. */
static void op_scribble(fz_state_t *st) {
  unsigned bo = fz_u8(st), bs = fz_u8(st);
  int i = fz_pick(st, bo, f_any);
  if (i < 0) return;
  fz_obj_t *o = &st->objs[i];
  o->seed = o->seed * 31 + bs + 1;
  if (fz_is_bytes(o)) {
    fz_fill_bytes(o->addr, o->size, o->seed);
    return;
  }
  fz_word_t data = {0, -1, 0, FZ_W_DATA};
  for (size_t k = 0; k < o->nwords; k++) {
    if (!fz_word_is_ptr(o, k)) ((uint64_t *)o->addr)[k] = fz_data(o->seed, k);
    else if (o->kind == FZ_K_CONS && o->w[k].tag != FZ_W_EDGE && ((bs + k) & 1))
      fz_store(st, o, k, data);
    else if (o->w[k].tag == FZ_W_DATA)
      fz_store(st, o, k, data);
  }
}

/* The documented bulk change: gc_write_range, then move slots 1..n-1 of a
 * reference array down one and clear the last. */
static void op_move(fz_state_t *st) {
  int i = fz_pick(st, fz_u8(st), f_refs);
  if (i < 0) return;
  fz_obj_t *o = &st->objs[i];
  void **slots = (void **)o->addr;
  size_t n = o->nwords;
  gc_write_range(st->h, slots, n);
  for (size_t k = 0; k + 1 < n; k++)
    __atomic_store_n(&slots[k], __atomic_load_n(&slots[k + 1], __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
  __atomic_store_n(&slots[n - 1], NULL, __ATOMIC_RELAXED);
  o->nedges -= o->w[0].tag == FZ_W_EDGE;
  memmove(o->w, o->w + 1, (n - 1) * sizeof *o->w);
  o->w[n - 1] = (fz_word_t){0, -1, 0, FZ_W_NULL};
  st->dirty = 1;
}

/* Garbage: objects nothing keeps, to drive automatic collections. */
static void op_churn(fz_state_t *st) {
  unsigned bn = fz_u8(st), bk = fz_u8(st);
  for (unsigned c = 0; c <= bn % 32 && st->churn_bytes < FZ_CHURN_BUDGET; c++) {
    size_t size = (bk & 0xc0) == 0xc0 ? 33000 + (bk & 0x3f) * 16 : 16 + ((bk + c * 40) & 0x7f) * 8;
    int kind = (int)((bk + c) % 3);
    if (kind == 2) size = size / 48 * 48;
    void *p = kind == 0 ? gc_malloc(st->h, size, 0)
            : kind == 1 ? gc_malloc(st->h, size, GCH_NOSCAN)
                        : gc_alloc_array(st->h, st->types[FZ_T_NODE], size / 48);
    if (!fz_alloc_ok(st, p, "churn allocation")) break;
    uint64_t *w = p;
    st->churn_bytes += size + 8;
    FZ_CHECK(size < 8 || (w[0] == 0 && w[size / 8 - 1] == 0), "churn object at %p not zeroed", p);
    if (size < 16) continue;
    if (kind == 0) gc_write(st->h, p, (void **)&w[1], (void *)(uintptr_t)fz_data(c, 1));
    else w[1] = fz_data(c, 1);
  }
}

static void fz_expect_err(fz_state_t *st, int failed, gc_result_t want, const char *what) {
  gc_result_t got = gc_last_error(st->h);
  FZ_CHECK(failed && got == want, "%s: want a failure with %s, got %s (last error %s)", what,
           gc_result_str(want), failed ? "a failure" : "success", gc_result_str(got));
}

/* A call that returns its result: that result, also in gc_last_error. */
static void fz_expect_r(fz_state_t *st, gc_result_t r, gc_result_t want, const char *what) {
  gc_result_t got = gc_last_error(st->h);
  FZ_CHECK(r == want && got == want, "%s: want %s, got %s (last error %s)", what,
           gc_result_str(want), gc_result_str(r), gc_result_str(got));
}

static void fz_bad_alloc(fz_state_t *st, unsigned b) {
  static const size_t huge[5] = {SIZE_MAX, SIZE_MAX - 4095, ((size_t)1 << 40) + 1,
                                 (size_t)PTRDIFF_MAX, (size_t)0xFFFFFFFFFFFFF2ABull};
  gc_heap_t *h = st->h;
  const gc_type_t *t = st->types[b % FZ_NTYPES];
  fz_expect_err(st, !gc_malloc(h, huge[b % 5], b & 8 ? GCH_NOSCAN : 0), GCH_EOVERFLOW,
                "gc_malloc(huge)");
  fz_expect_err(st, !gc_malloc(h, 8, 0x80u | (b & ~1u)), GCH_EINVAL, "gc_malloc(bad flags)");
  fz_expect_err(st, !gc_alloc_array(h, t, SIZE_MAX / gc_type_size(t) + 1), GCH_EOVERFLOW,
                "gc_alloc_array(n * size overflows)");
  fz_expect_err(st, !gc_alloc_array(h, t, ((size_t)1 << 41) / gc_type_size(t)),
                GCH_EOVERFLOW, "gc_alloc_array(over 1 TiB)");
  fz_expect_err(st, !gc_alloc(h, NULL), GCH_EINVAL, "gc_alloc(NULL type)");
  fz_expect_err(st, !gc_alloc_array(h, NULL, 1), GCH_EINVAL, "gc_alloc_array(NULL type)");
}

static void fz_bad_specials(fz_state_t *st, unsigned b) {
  gc_heap_t *h = st->h;
  int local = 0;
  gc_result_t r = gc_set_finalizer(h, NULL, fz_fin_cb, NULL);
  fz_expect_r(st, r, GCH_EINVAL, "gc_set_finalizer(NULL)");
  r = gc_set_finalizer(h, &local, fz_fin_cb, NULL);
  fz_expect_r(st, r, GCH_EFOREIGN, "gc_set_finalizer(stack)");
  fz_expect_err(st, !gc_weak_new(h, NULL), GCH_EINVAL, "gc_weak_new(NULL)");
  fz_expect_err(st, !gc_weak_get(h, NULL), GCH_EINVAL, "gc_weak_get(NULL)");
  fz_expect_err(st, !gc_weak_get(h, (gc_weak_t *)&local), GCH_EFOREIGN, "gc_weak_get(stack)");
  r = gc_add_cleanup(h, NULL, fz_cleanup_cb, NULL);
  fz_expect_r(st, r, GCH_EINVAL, "gc_add_cleanup(NULL)");
  int i = fz_pick(st, b, f_interior);
  if (i >= 0) {
    char *p = (char *)st->objs[i].addr;
    r = gc_set_finalizer(h, p + 8, fz_fin_cb, NULL);
    fz_expect_r(st, r, GCH_EFOREIGN, "gc_set_finalizer(interior)");
    r = gc_set_finalizer(h, p, fz_fin_cb, p + 8);
    fz_expect_r(st, r, GCH_EINVAL, "gc_set_finalizer(ctx inside obj)");
    fz_expect_err(st, !gc_weak_new(h, p + 8), GCH_EFOREIGN, "gc_weak_new(interior)");
    fz_expect_err(st, !gc_weak_get(h, (gc_weak_t *)p), GCH_EFOREIGN,
                  "gc_weak_get(not a handle)");
    r = gc_add_cleanup(h, p, NULL, NULL);
    fz_expect_r(st, r, GCH_EINVAL, "gc_add_cleanup(NULL fn)");
    r = gc_add_cleanup(h, p, fz_cleanup_cb, p + 8);
    fz_expect_r(st, r, GCH_EINVAL, "gc_add_cleanup(arg inside obj)");
    r = gc_add_cleanup(h, p + 8, fz_cleanup_cb, NULL);
    fz_expect_r(st, r, GCH_EFOREIGN, "gc_add_cleanup(interior)");
  }
  i = fz_pick(st, b, f_arena);
  if (i >= 0) {
    void *p = (void *)st->objs[i].addr;
    r = gc_set_finalizer(h, p, fz_fin_cb, NULL);
    fz_expect_r(st, r, GCH_EFOREIGN, "gc_set_finalizer(arena object)");
    FZ_CHECK(!gc_base(h, p) && !gc_size_of(h, p), "gc_base/gc_size_of(arena object)");
  }
  i = fz_pick(st, b, f_special);
  if (i >= 0 && st->objs[i].fin == FZ_FIN_NONE)
    FZ_CHECK(gc_set_finalizer(h, (void *)st->objs[i].addr, NULL, NULL) == GCH_OK,
             "disarming an object without a finalizer");
}

static void fz_bad_roots(fz_state_t *st) {
  gc_heap_t *h = st->h;
  int local = 0;
  FZ_CHECK(gc_root_add(h, (char *)st->roots + 4, 8, GCH_ROOT_PRECISE) == GCH_EINVAL,
           "gc_root_add(misaligned precise range)");
  FZ_CHECK(gc_root_add(h, st->roots, 0, GCH_ROOT_CONSERVATIVE) == GCH_EINVAL,
           "gc_root_add(size 0)");
  FZ_CHECK(gc_root_add(h, st->roots, 8, 2) == GCH_EINVAL, "gc_root_add(bad flags)");
  FZ_CHECK(gc_root_add(h, NULL, 8, GCH_ROOT_PRECISE) == GCH_EINVAL, "gc_root_add(NULL)");
  FZ_CHECK(gc_root_add(h, st->weaks, 8, GCH_ROOT_CONSERVATIVE) == GCH_EEXIST,
           "gc_root_add(twice)");
  FZ_CHECK(gc_root_remove(h, &local) == GCH_ENOTFOUND, "gc_root_remove(unknown)");
  FZ_CHECK(gc_root_callback_add(h, NULL, NULL) == GCH_EINVAL, "gc_root_callback_add(NULL)");
  FZ_CHECK(gc_root_callback_remove(h, fz_roots_cb, st->objs) == GCH_ENOTFOUND,
           "gc_root_callback_remove(unknown)");
  for (int g = 0; g < 3; g++)
    FZ_CHECK(!st->group_on[g] || fz_group_add(st, g) == GCH_EEXIST,
             "root group %d added twice", g);
}

static void fz_bad_arena(fz_state_t *st, unsigned b) {
  fz_expect_err(st, !gc_arena_alloc(NULL, st->types[0], 1), GCH_EINVAL,
                "gc_arena_alloc(NULL arena)");
  fz_expect_err(st, !gc_arena_alloc_bytes(NULL, 8), GCH_EINVAL,
                "gc_arena_alloc_bytes(NULL arena)");
  FZ_CHECK(gc_arena_free(NULL) == GCH_EINVAL, "gc_arena_free(NULL)");
  if (!st->narenas) return;
  fz_arena_t *a = &st->arenas[b % (unsigned)st->narenas];
  if (a->freed) {
    fz_expect_err(st, !gc_arena_alloc_bytes(a->a, 8), GCH_EDOUBLEFREE,
                  "gc_arena_alloc_bytes(freed arena)");
    FZ_CHECK(gc_arena_free(a->a) == GCH_EDOUBLEFREE, "gc_arena_free twice");
    return;
  }
  fz_expect_err(st, !gc_arena_alloc(a->a, NULL, 1), GCH_EINVAL, "gc_arena_alloc(NULL type)");
  fz_expect_err(st, !gc_arena_alloc(a->a, st->types[b % FZ_NTYPES], SIZE_MAX / 2),
                GCH_EOVERFLOW, "gc_arena_alloc(n * size overflows)");
  fz_expect_err(st, !gc_arena_alloc_bytes(a->a, ((size_t)1 << 46) + 1), GCH_EOVERFLOW,
                "gc_arena_alloc_bytes(over 2^46)");
}

static void fz_bad_types(fz_state_t *st) {
  gc_heap_t *h = st->h;
  const gc_type_t *t = NULL;
  static const uint64_t m[2] = {0x4, 0};
  FZ_CHECK(gc_type_new(h, "bad", 0, NULL, 0, &t) == GCH_EINVAL, "gc_type_new(size 0)");
  FZ_CHECK(gc_type_new(h, "bad", 12, NULL, 0, &t) == GCH_EINVAL, "gc_type_new(size 12)");
  FZ_CHECK(gc_type_new(h, "bad", 16, m, 1, &t) == GCH_EINVAL, "gc_type_new(map too long)");
  FZ_CHECK(gc_type_new(h, "bad", 64, m, 2, &t) == GCH_EINVAL, "gc_type_new(map words)");
  FZ_CHECK(gc_type_new(h, "bad", 16, NULL, 1, &t) == GCH_EINVAL, "gc_type_new(NULL map)");
  FZ_CHECK(gc_type_new(h, "bad", 16, m, 0, NULL) == GCH_EINVAL, "gc_type_new(NULL out)");
  for (int k = 0; k < FZ_NTYPES; k++)
    FZ_CHECK(strcmp(gc_type_name(st->types[k]), fz_tdesc[k].name) == 0 &&
                 gc_type_size(st->types[k]) == fz_tdesc[k].size,
             "type %d name/size", k);
  FZ_CHECK(!gc_type_name(NULL) && !gc_type_size(NULL), "gc_type_name/size(NULL)");
}

static void fz_bad_misc(fz_state_t *st) {
  gc_heap_t *h = st->h;
  int local = 0;
  FZ_CHECK(!gc_base(h, &local) && !gc_size_of(h, &local) && !gc_base(h, NULL) &&
               !gc_size_of(h, NULL) && !gc_base(h, st),
           "gc_base/gc_size_of of no heap object");
  FZ_CHECK(gc_thread_is_attached(h) && gc_thread_attach(h) == GCH_EATTACHED,
           "gc_thread_attach twice");
  for (int r = GCH_OK; r <= GCH_EVERIFY; r++)
    FZ_CHECK(strcmp(gc_result_str((gc_result_t)r), "unknown result") != 0, "result %d", r);
  FZ_CHECK(strcmp(gc_result_str((gc_result_t)99), "unknown result") == 0, "result 99");
  FZ_CHECK(gc_get_stats(h, NULL) == GCH_EINVAL, "gc_get_stats(NULL)");
  FZ_CHECK(gc_profile_write(h, NULL) == GCH_EINVAL, "gc_profile_write(NULL)");
}

/* Calls with bad arguments, each with its documented result. */
static void op_bad(fz_state_t *st) {
  unsigned sub = fz_u8(st), b = fz_u8(st);
  switch (sub % 6) {
  case 0:
    fz_bad_alloc(st, b);
    break;
  case 1:
    fz_bad_specials(st, b);
    break;
  case 2:
    fz_bad_roots(st);
    break;
  case 3:
    fz_bad_arena(st, b);
    break;
  case 4:
    fz_bad_types(st);
    break;
  default:
    fz_bad_misc(st);
    break;
  }
}

static void op_misc(fz_state_t *st) {
  unsigned sub = fz_u8(st), b = fz_u8(st);
  switch (sub % 6) {
  case 0:
    gc_safepoint(st->h);
    gc_blocking_enter(st->h);
    gc_blocking_leave(st->h);
    break;
  case 1:
    FZ_CHECK(gc_verify(st->h, stderr) == GCH_OK, "gc_verify");
    break;
  case 2:
    fz_check_all(st);
    break;
  case 3: {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      FZ_CHECK(gc_profile_write(st->h, f) == GCH_OK, "gc_profile_write");
      fclose(f);
    }
    break;
  }
  default: {
    int i = fz_pick(st, b, f_any);
    if (i >= 0) fz_check_graph(st, i);
    break;
  }
  }
}

typedef void (*fz_op_t)(fz_state_t *st);

static const fz_op_t fz_ops[] = {
    op_alloc,        op_alloc,          op_alloc,           op_link,
    op_link,         op_link,           op_root,            op_root,
    op_collect,      op_run_finalizers, op_set_finalizer,   op_unset_finalizer,
    op_weak_new,     op_weak_get,       op_weak_drop,       op_cleanup,
    op_arena_new,    op_arena_alloc,    op_arena_free,      op_scribble,
    op_move,         op_churn,          op_roots_toggle,    op_misc,
    op_bad,
};
#define FZ_NOPS (sizeof fz_ops / sizeof fz_ops[0])

/* ------------------------------------------------------------- lifecycle */

static size_t fz_prof_stack(void *ctx, uintptr_t *pcs, size_t max) {
  const fz_state_t *st = ctx;
  if (max < 2) return 0;
  pcs[0] = 1 + st->ops % 3;
  pcs[1] = 4;
  return 2;
}

static const char *fz_prof_symbol(void *ctx, uintptr_t pc) {
  static const char *const names[5] = {"?", "fz_alloc", "fz_link", "fz_churn", "fz_main"};
  (void)ctx;
  return pc < 5 ? names[pc] : "?";
}

/* Byte 1: GCHEAP_DEBUG knobs for this heap when bits 6 and 7 are set
 * (unless the environment sets GCHEAP_DEBUG already): bit 0 verify,
 * 1 checkmark, 2 clobberfree, 3 harddecommit, 4 and 5 efence.  They cost
 * much (verify and checkmark walk the heap at every cycle), hence a
 * quarter of the inputs. */
static void fz_knobs(unsigned b) {
  static const char *const names[5] = {"verify", "checkmark", "clobberfree", "harddecommit",
                                       "efence"};
  static int user_set = -1; /* whether GCHEAP_DEBUG came from outside */
  if (user_set < 0) user_set = getenv("GCHEAP_DEBUG") != NULL;
  if (user_set) return;
  char v[64] = "";
  for (int k = 0; k < 5 && (b & 0xc0) == 0xc0; k++) {
    if (k < 4 ? !(b >> k & 1) : (b >> 4 & 3) != 3) continue;
    if (v[0]) strcat(v, ",");
    strcat(v, names[k]);
  }
  setenv("GCHEAP_DEBUG", v, 1);
}

/* Byte 0: bit 0 concurrent, 1 two mark workers, 2 background sweeper,
 * 3 background scavenger, 4-5 torture (off, off, 2, 23), 6 automatic
 * collection at gc_percent 10 (else off), 7 profile every allocation.
 * Byte 1: the knobs above; bit 5 without bit 4: a 4 MiB soft memory
 * limit; bits 4 and 5 without bits 6 and 7: a 12 MiB hard limit, where
 * allocations may fail (GCH_ELIMIT, after the OOM handler). */
/* The OOM handler: counts, and lets the allocation fail. */
static void *fz_oom(gc_heap_t *heap, size_t size, void *ctx) {
  fz_state_t *st = ctx;
  (void)size;
  FZ_CHECK(heap == st->h, "OOM handler called for another heap");
  st->oom_calls++;
  return NULL;
}

static gc_config_t fz_config(fz_state_t *st) {
  static const unsigned long torture[4] = {0, 0, 2, 23};
  unsigned b = st->cfg;
  fz_knobs(st->cfg2);
  gc_config_t c = gc_config_default();
  c.mode = b & 1 ? GCH_MODE_CONCURRENT : GCH_MODE_STW;
  c.mark_workers = b & 2 ? 2 : 1;
  c.background_sweep = !!(b & 4);
  c.background_scavenge = !!(b & 8);
  c.torture = torture[b >> 4 & 3];
  c.gc_percent = b & 0x40 ? 10 : -1;
  c.profile_rate = b & 0x80 ? 1 : -1;
  c.profile_stack = fz_prof_stack;
  c.profile_symbol = fz_prof_symbol;
  c.profile_ctx = st;
  c.memory_limit = (st->cfg2 & 0x30) == 0x20 ? (size_t)4 << 20 : 0;
  st->limited = (st->cfg2 & 0xf0) == 0x30;
  c.hard_limit = st->limited ? (size_t)12 << 20 : 0;
  c.oom_handler = fz_oom;
  c.oom_ctx = st;
  return c;
}

static void fz_types(fz_state_t *st) {
  for (int k = 0; k < FZ_NTYPES; k++) {
    const fz_tdesc_t *d = &fz_tdesc[k];
    gc_result_t r = gc_type_new(st->h, d->name, d->size, d->map_words ? d->map : NULL,
                                d->map_words, &st->types[k]);
    FZ_CHECK(r == GCH_OK, "gc_type_new(%s): %s", d->name, gc_result_str(r));
    for (size_t w = 0; w < d->size / 8; w++)
      if (w / 64 < d->map_words && (d->map[w / 64] >> (w % 64) & 1))
        st->tptr[k][st->tnptr[k]++] = (uint8_t)w;
  }
}

static fz_state_t *fz_begin(const uint8_t *data, size_t size) {
  fz_state_t *st = calloc(1, sizeof *st);
  FZ_CHECK(st, "out of host memory");
  fz_cur = st;
  st->objs = calloc(FZ_MAX_OBJS, sizeof *st->objs);
  st->stack = calloc(FZ_MAX_OBJS, sizeof *st->stack);
  st->pick = calloc(FZ_MAX_OBJS, sizeof *st->pick);
  st->roots = calloc(FZ_ROOTS, sizeof *st->roots);
  st->weaks = calloc(FZ_WEAKS, sizeof *st->weaks);
  FZ_CHECK(st->objs && st->stack && st->pick && st->roots && st->weaks,
           "out of host memory");
  st->in = data;
  st->n = size;
  st->cfg = fz_u8(st);
  st->cfg2 = fz_u8(st);
  st->trace = getenv("GCHEAP_FUZZ_TRACE") != NULL;
  gc_config_t c = fz_config(st);
  gc_result_t err = GCH_OK;
  st->h = gc_heap_new(&c, &err);
  FZ_CHECK(st->h, "gc_heap_new: %s", gc_result_str(err));
  fz_types(st);
  for (int g = 0; g < 3; g++) {
    FZ_CHECK(fz_group_add(st, g) == GCH_OK, "adding root group %d", g);
    st->group_on[g] = 1;
  }
  FZ_CHECK(gc_root_add(st->h, st->weaks, FZ_WEAKS * sizeof(void *), GCH_ROOT_PRECISE) ==
               GCH_OK,
           "registering the handle table");
  for (int k = 0; k < FZ_ROOTS; k++) st->rootm[k].to = -1;
  st->dirty = 1;
  return st;
}

/* Two final rounds (collect, check, run finalizers), then destroy. */
static void fz_end(fz_state_t *st) {
  if (st->trace) fz_dump(st);
  for (int round = 0; round < 2; round++) {
    gc_result_t r = gc_collect(st->h);
    FZ_CHECK(r == GCH_OK, "final collection: %s", gc_result_str(r));
    fz_after_collect(st);
    fz_run_finalizers(st);
  }
  FZ_CHECK(gc_heap_destroy(st->h) == GCH_OK, "gc_heap_destroy");
  for (int i = 0; i < st->nobjs; i++) free(st->objs[i].w);
  free(st->objs);
  free(st->stack);
  free(st->pick);
  free(st->roots);
  free(st->weaks);
  free(st);
  fz_cur = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_state_t *st = fz_begin(data, size);
  while (st->pos < st->n && st->ops < FZ_MAX_OPS) {
    unsigned op = fz_u8(st);
    st->ops++;
    if (st->trace)
      fprintf(stderr, "op %u: %u at byte %zu\n", st->ops, op % (unsigned)FZ_NOPS, st->pos - 1);
    fz_ops[op % FZ_NOPS](st);
  }
  fz_end(st);
  return 0;
}
