/*
 * value.h -- tinylisp's values, object layouts and the interpreter struct.
 *
 * A value (val_t) is one machine word.  Its low bits say what it is:
 *
 *   ....1   fixnum: a signed integer n stored unboxed as (n << 1) | 1.
 *           Fixnums are limited to 62 bits, [-2^61, 2^61 - 1]; arithmetic
 *           that leaves this range raises the Lisp error "integer
 *           overflow" (deterministic, never a silent wrap or promotion).
 *   ..010   constant: (), #t, #f, the unspecified value, eof, "unbound".
 *   ..110   character: (code << 3) | 6.
 *   ..000   pointer to a heap object allocated from the GC.
 *
 * So a word is a heap pointer exactly when its low three bits are zero;
 * the root callback visits only those, and tagged words stored in pointer
 * fields of objects are values outside the heap, which the collector
 * ignores.
 *
 * Every heap object starts with a header word (never a pointer) holding
 * its kind in the low byte and a kind-specific number above it.  The
 * structs below are the objects' exact layouts; gc_shim.c registers each
 * with a pointer map naming its pointer words.  Raw blocks that are not
 * Lisp values (a string's characters, a vector's slot array) have no
 * header: they are reached only through their owner.
 *
 * Rooting rule (the collector does not scan the C stack): a value held in
 * a C variable across any call that may allocate must sit in a slot of the
 * shadow stack (roots_push / roots_pop), or be reachable from something
 * that does (the collector never moves objects).  Functions that allocate
 * root their own arguments first, so `cons(L, x, y)` is safe for any x, y
 * the caller no longer needs -- but never hold one unrooted allocation
 * result while computing another.
 */
#ifndef TINYLISP_VALUE_H
#define TINYLISP_VALUE_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef void *val_t;

/* ------------------------------------------------------------- immediates */

#define FIX_MAX (((int64_t)1 << 61) - 1)
#define FIX_MIN (-((int64_t)1 << 61))

#define CONST_VAL(k) ((val_t)(uintptr_t)(((uintptr_t)(k) << 3) | 2))
#define NIL CONST_VAL(0)
#define TRUE_V CONST_VAL(1)
#define FALSE_V CONST_VAL(2)
#define UNSPEC CONST_VAL(3)
#define EOF_V CONST_VAL(4)
#define UNBOUND CONST_VAL(5)

static inline int is_fix(val_t v) { return ((uintptr_t)v & 1) != 0; }
static inline int64_t fix_val(val_t v) { return (int64_t)(intptr_t)v >> 1; }
/* n must be in [FIX_MIN, FIX_MAX]; see make_int for checked creation. */
static inline val_t fix(int64_t n) {
  return (val_t)(uintptr_t)(((uint64_t)n << 1) | 1);
}
static inline int is_char(val_t v) { return ((uintptr_t)v & 7) == 6; }
static inline val_t make_char(unsigned c) {
  return (val_t)(((uintptr_t)c << 3) | 6);
}
static inline unsigned char_val(val_t v) { return (unsigned)((uintptr_t)v >> 3); }
static inline int is_ptr(val_t v) { return v && ((uintptr_t)v & 7) == 0; }
static inline val_t make_bool(int b) { return b ? TRUE_V : FALSE_V; }
static inline int truthy(val_t v) { return v != FALSE_V; }

/* ---------------------------------------------------------- heap objects */

enum kind {
  K_PAIR = 1,
  K_STRING,
  K_SYMBOL,
  K_VECTOR,
  K_CLOSURE,
  K_PRIM,
  K_FRAME,
  K_FLONUM,
  K_WEAK,
  K_SLOTS, /* not a value: one pointer word, the element of slot arrays */
  K_NKINDS
};

typedef struct pair { uintptr_t hdr; val_t car, cdr; } pair_t;
/* chars: a NUL-terminated noscan block of len + 1 bytes. */
typedef struct string { uintptr_t hdr; size_t len; char *chars; } string_t;
/* hdr number: special-form id in its low byte (0 = ordinary), SYM_LOCAL
 * once the symbol has named a local variable anywhere (until then a
 * variable reference goes straight to the global value).  value: the
 * global binding (UNBOUND when none); name: a string. */
typedef struct symbol { uintptr_t hdr; val_t name, value; } symbol_t;
/* items: an array of len pointer slots (gc_alloc_array of K_SLOTS). */
typedef struct vector { uintptr_t hdr; size_t len; val_t *items; } vector_t;
/* hdr number: required parameter count << 2 | has-rest << 1 |
 * CLO_BINDINGS.  params is the lambda list as written (proper, dotted or
 * a lone symbol), or for a named let its binding list (CLO_BINDINGS:
 * the names are the cars of the elements). */
typedef struct closure {
  uintptr_t hdr;
  val_t params, body, env, name;
} closure_t;
struct lisp;
typedef val_t (*prim_fn)(struct lisp *L, int argc, val_t *argv);
/* No pointer words: fn and name point outside the heap. */
typedef struct prim {
  uintptr_t hdr;
  prim_fn fn;
  const char *name;
  int16_t min_args, max_args; /* max -1: variadic */
  int32_t flags;              /* PRIM_APPLY: apply, handled by eval */
} prim_t;
#define PRIM_APPLY 1
/* An environment frame: n = hdr number & 0xffff value slots, named by
 * the first n names of vars, which is shared with the code: a lambda list
 * (symbols, possibly dotted; a rest parameter is the last slot) or, with
 * FRAME_BINDINGS, a let/do binding list whose elements' cars are the
 * names.  Internal defines go to ext, an alist searched first.  The
 * global environment is the symbols' value fields, represented by NIL.
 * One registered type per slot count, 0..FRAME_MAX. */
#define FRAME_MAX 64
#define FRAME_BINDINGS ((uintptr_t)1 << 16)
typedef struct frame {
  uintptr_t hdr;
  val_t parent, vars, ext;
  val_t vals[];
} frame_t;
typedef struct flonum { uintptr_t hdr; double d; } flonum_t;
/* A weak reference.  handle: the GC's weak handle for a heap target (a
 * heap pointer under gcheap, a hidden pointer under Boehm); hdr number 1
 * means the target is an immediate kept in imm (immediates never die). */
typedef struct weak { uintptr_t hdr; void *handle; val_t imm; } weak_t;

#define HDR(kind, num) ((uintptr_t)(kind) | ((uintptr_t)(num) << 8))
#define SYM_LOCAL ((uintptr_t)1 << 8)
#define CLO_BINDINGS 1
static inline unsigned obj_kind(val_t v) { return (unsigned)(*(uintptr_t *)v & 0xff); }
static inline uintptr_t obj_num(val_t v) { return *(uintptr_t *)v >> 8; }
static inline int is_kind(val_t v, unsigned k) { return is_ptr(v) && obj_kind(v) == k; }

#define PAIR(v) ((pair_t *)(v))
#define STR(v) ((string_t *)(v))
#define SYM(v) ((symbol_t *)(v))
#define VEC(v) ((vector_t *)(v))
#define CLO(v) ((closure_t *)(v))
#define PRIM(v) ((prim_t *)(v))
#define FRAME(v) ((frame_t *)(v))
#define FLO(v) ((flonum_t *)(v))
#define WEAK(v) ((weak_t *)(v))

static inline int is_pair(val_t v) { return is_kind(v, K_PAIR); }
static inline int is_symbol(val_t v) { return is_kind(v, K_SYMBOL); }
static inline int is_string(val_t v) { return is_kind(v, K_STRING); }
static inline int is_vector(val_t v) { return is_kind(v, K_VECTOR); }
static inline int is_flonum(val_t v) { return is_kind(v, K_FLONUM); }
static inline int is_number(val_t v) { return is_fix(v) || is_flonum(v); }
static inline int is_procedure(val_t v) {
  return is_kind(v, K_CLOSURE) || is_kind(v, K_PRIM);
}
static inline val_t car(val_t v) { return PAIR(v)->car; }
static inline val_t cdr(val_t v) { return PAIR(v)->cdr; }
static inline const char *sym_name(val_t s) { return STR(SYM(s)->name)->chars; }
static inline unsigned sym_special(val_t s) { return (unsigned)(obj_num(s) & 0xff); }
/* Record that s names a local variable somewhere (a plain word store). */
static inline void sym_mark_local(val_t s) {
  if (!(obj_num(s) & SYM_LOCAL)) SYM(s)->hdr |= SYM_LOCAL << 8;
}
static inline size_t frame_slots(val_t f) { return (size_t)(obj_num(f) & 0xffff); }

/* ------------------------------------------------------------ interpreter */

/* One segment of the shadow stack.  Segments never move, so pointers to
 * slots stay valid while the stack grows into further segments. */
typedef struct rseg {
  struct rseg *prev, *next;
  val_t *top;   /* saved top while a later segment is current */
  val_t *end;
  val_t slots[];
} rseg_t;

/* Values the interpreter keeps for its whole life (all GC roots). */
struct lisp_globals {
  val_t s_quote, s_quasiquote, s_unquote, s_unquote_splicing, s_else,
      s_arrow, s_define, s_lambda;
  val_t scratch; /* reader/printer temporaries */
};

typedef struct lisp {
  void *heap;        /* gc_heap_t * under gcheap; unused under Boehm */
  struct shim *shim; /* GC-specific state (gc_shim.c) */
  /* Shadow stack: the roots of C code. */
  rseg_t *seg;
  val_t *sp, *slimit;
  /* Symbol table: open addressing, strong (a root). */
  val_t *symtab;
  size_t symcap, symcount;
  /* Finalizers: procs indexed by the ctx handed to the GC; free slots
   * hold fixnum links of a free list (-1 ends it). */
  val_t *fin_procs;
  size_t fin_cap;
  int64_t fin_free;
  /* Finalized objects waiting for their procs: (obj, index) pairs. */
  val_t *pending;
  size_t npending, pending_cap, pending_head;
  int draining;
  struct lisp_globals g;
  /* Errors unwind to the innermost handler. */
  jmp_buf *err_jmp;
  /* C stack bound for the recursion check. */
  uintptr_t stack_base;
  size_t stack_limit;
  int interactive;
} lisp_t;

/* --------------------------------------------------------- shadow stack */

void roots_grow(lisp_t *L, size_t n);
void roots_pop_slow(lisp_t *L, val_t *mark);

/* n slots, each NIL, valid until roots_pop of this pointer (or below). */
static inline val_t *roots_push(lisp_t *L, size_t n) {
  if ((size_t)(L->slimit - L->sp) < n) roots_grow(L, n);
  val_t *p = L->sp;
  for (size_t i = 0; i < n; i++) p[i] = NIL;
  L->sp = p + n;
  return p;
}
static inline val_t *roots_push1(lisp_t *L, val_t a) {
  val_t *p = roots_push(L, 1);
  p[0] = a;
  return p;
}
static inline val_t *roots_push2(lisp_t *L, val_t a, val_t b) {
  val_t *p = roots_push(L, 2);
  p[0] = a;
  p[1] = b;
  return p;
}
/* Drop every slot from mark up. */
static inline void roots_pop(lisp_t *L, val_t *mark) {
  if ((uintptr_t)mark >= (uintptr_t)L->seg->slots &&
      (uintptr_t)mark <= (uintptr_t)L->sp)
    L->sp = mark;
  else
    roots_pop_slow(L, mark);
}

/* ------------------------------------------------------------ object.c */

lisp_t *lisp_new(void);
void lisp_free(lisp_t *L);
val_t cons(lisp_t *L, val_t a, val_t d);
val_t make_string(lisp_t *L, const char *s, size_t len);
val_t make_string_fill(lisp_t *L, size_t len, int c);
val_t make_vector(lisp_t *L, size_t n, val_t fill);
val_t make_flonum(lisp_t *L, double d);
val_t make_int(lisp_t *L, int64_t n); /* errors when out of fixnum range */
val_t make_closure(lisp_t *L, val_t params, val_t body, val_t env, val_t name,
                   uintptr_t flags);
/* A frame of n slots named by vars (FRAME_BINDINGS in flags for a binding
 * list), holding vals[0..n) (rooted by the caller) or UNSPEC if NULL. */
val_t make_frame(lisp_t *L, val_t parent, val_t vars, size_t n,
                 uintptr_t flags, const val_t *vals);
val_t make_prim(lisp_t *L, const char *name, prim_fn fn, int min, int max);
val_t intern(lisp_t *L, const char *name, size_t len);
val_t intern_c(lisp_t *L, const char *name);
void frame_add(lisp_t *L, val_t frame, val_t sym, val_t val);
void define_global(lisp_t *L, val_t sym, val_t val);
val_t list_from(lisp_t *L, int n, val_t *items); /* items rooted */
int64_t list_length(val_t l);                    /* -1 if improper */
_Noreturn void lisp_error(lisp_t *L, const char *msg, val_t irritant);
_Noreturn void lisp_error_list(lisp_t *L, const char *msg, val_t irritants);
_Noreturn void lisp_exit(lisp_t *L, int code);
/* Re-raise the error being handled to the next handler out. */
_Noreturn void lisp_unwind(lisp_t *L);
void lisp_run_finalizers(lisp_t *L);
int64_t lisp_finalizer_slot(lisp_t *L, val_t proc); /* proc's index */
void lisp_root_visit(lisp_t *L, void (*visit)(val_t *slot, void *ctx), void *ctx);

/* List building in three rooted slots: Q[0] head, Q[1] last pair, Q[2]
 * scratch.  Q = roots_push(L, 3). */
void lb_add(lisp_t *L, val_t *Q, val_t v);

/* Argument checks used by builtins. */
void check_type(lisp_t *L, int ok, const char *what, val_t v);
int64_t want_int(lisp_t *L, val_t v);
size_t want_index(lisp_t *L, val_t v, size_t bound);

/* -------------------------------------------------------------- eval.c */

val_t lisp_eval(lisp_t *L, val_t x, val_t env);
val_t lisp_apply(lisp_t *L, val_t f, int argc, val_t *argv); /* argv rooted */
void eval_init(lisp_t *L);

/* ------------------------------------------------------------ reader.c */

typedef struct reader {
  const char *src;
  size_t pos, len;
  int line;
  const char *name;
} reader_t;
enum { READ_OK, READ_EOF, READ_INCOMPLETE };
/* Reads one datum into *out (a rooted slot); READ_INCOMPLETE when the text
 * ends inside a datum.  Syntax errors raise Lisp errors. */
int lisp_read(lisp_t *L, reader_t *r, val_t *out);
char *read_file(const char *path, size_t *len); /* malloc'd, NULL on error */
/* Parse a whole token as a number into *out; 0 if it is not one. */
int parse_number(lisp_t *L, const char *s, size_t n, val_t *out);
/* Evaluate every datum of a file at top level. */
void lisp_load(lisp_t *L, const char *path);

/* ----------------------------------------------------------- printer.c */

typedef struct strbuf { char *p; size_t len, cap; } strbuf_t;
void sb_add(strbuf_t *b, const char *s, size_t n);
void sb_addc(strbuf_t *b, char c);
void sb_free(strbuf_t *b);
void print_value(strbuf_t *b, val_t v, int write);
void lisp_print(lisp_t *L, FILE *f, val_t v, int write);
void format_number(strbuf_t *b, val_t v);

/* ---------------------------------------------------------- builtins */

void builtins_num_init(lisp_t *L);
void builtins_list_init(lisp_t *L);
void builtins_data_init(lisp_t *L);
void builtins_sys_init(lisp_t *L);
int lisp_eqv(val_t a, val_t b);
int lisp_equal(val_t a, val_t b);

typedef struct prim_def {
  const char *name;
  prim_fn fn;
  int min, max;
} prim_def_t;
void define_prims(lisp_t *L, const prim_def_t *defs);

#endif
