/*
 * object.c -- the interpreter's memory: shadow stack, constructors, the
 * symbol table, finalizer tables, root enumeration, errors.
 *
 * Every constructor allocates from the GC through gc_shim.h and stores
 * pointer fields with shim_write (the barrier), even into objects it has
 * just allocated: that is always correct, and costs one load and branch
 * when no mark phase runs.  Constructors push their own value arguments
 * onto the shadow stack before allocating (see the rooting rule in
 * value.h), so callers need only root what they use afterwards.
 *
 * Roots (lisp_root_visit, called from the GC's root callback): the shadow
 * stack segments up to their tops, the symbol table, the globals struct,
 * the finalizer procedures and the queue of finalized objects.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gc_shim.h"

#define SEG_SLOTS ((size_t)1 << 16)

static _Noreturn void fatal(const char *what) {
  fprintf(stderr, "tinylisp: fatal: %s\n", what);
  exit(70);
}

/* ---------------------------------------------------------- shadow stack */

static rseg_t *seg_new(size_t n) {
  rseg_t *s = shim_host_alloc(sizeof(rseg_t) + n * sizeof(val_t));
  if (!s) fatal("out of memory for the shadow stack");
  s->top = s->slots;
  s->end = s->slots + n;
  return s;
}

void roots_grow(lisp_t *L, size_t n) {
  rseg_t *cur = L->seg;
  cur->top = L->sp;
  rseg_t *next = cur->next;
  if (next && (size_t)(next->end - next->slots) < n) {
    /* Too small for this request: drop it and everything after it. */
    for (rseg_t *s = next, *t; s; s = t) {
      t = s->next;
      shim_host_free(s);
    }
    next = cur->next = NULL;
  }
  if (!next) {
    next = seg_new(n > SEG_SLOTS ? n : SEG_SLOTS);
    next->prev = cur;
    cur->next = next;
  }
  L->seg = next;
  L->sp = next->slots;
  L->slimit = next->end;
}

void roots_pop_slow(lisp_t *L, val_t *mark) {
  rseg_t *s = L->seg->prev;
  while (s && !((uintptr_t)mark >= (uintptr_t)s->slots &&
                (uintptr_t)mark <= (uintptr_t)s->top))
    s = s->prev;
  if (!s) fatal("shadow stack pop below its base");
  L->seg = s;
  L->sp = mark;
  L->slimit = s->end;
}

/* ----------------------------------------------------------------- roots */

void lisp_root_visit(lisp_t *L, void (*visit)(val_t *slot, void *ctx),
                     void *ctx) {
#define VISIT(slotp)                     \
  do {                                   \
    val_t *s_ = (slotp);                 \
    if (is_ptr(*s_)) visit(s_, ctx);     \
  } while (0)
  if (L->seg) {
    for (val_t *p = L->seg->slots; p < L->sp; p++) VISIT(p);
    for (rseg_t *s = L->seg->prev; s; s = s->prev)
      for (val_t *p = s->slots; p < s->top; p++) VISIT(p);
  }
  for (size_t i = 0; i < L->symcap; i++) VISIT(&L->symtab[i]);
  val_t *g = (val_t *)&L->g;
  for (size_t i = 0; i < sizeof L->g / sizeof(val_t); i++) VISIT(&g[i]);
  for (size_t i = 0; i < L->fin_cap; i++) VISIT(&L->fin_procs[i]);
  for (size_t i = 0; i < 2 * L->npending; i++) VISIT(&L->pending[i]);
#undef VISIT
}

/* ---------------------------------------------------------- constructors */

val_t cons(lisp_t *L, val_t a, val_t d) {
  val_t *R = roots_push2(L, a, d);
  pair_t *p = shim_alloc(L, K_PAIR);
  p->hdr = HDR(K_PAIR, 0);
  shim_write(L, p, &p->car, R[0]);
  shim_write(L, p, &p->cdr, R[1]);
  roots_pop(L, R);
  return p;
}

/* s may point into a GC string the caller keeps rooted (never moves). */
val_t make_string(lisp_t *L, const char *s, size_t len) {
  val_t v = make_string_fill(L, len, ' ');
  memcpy(STR(v)->chars, s, len);
  return v;
}

val_t make_string_fill(lisp_t *L, size_t len, int c) {
  if (len >= ((size_t)1 << 40)) lisp_error(L, "string too long", fix((int64_t)len));
  val_t *R = roots_push(L, 1);
  string_t *str = shim_alloc(L, K_STRING);
  str->hdr = HDR(K_STRING, 0);
  R[0] = str;
  char *chars = shim_alloc_bytes(L, len + 1);
  memset(chars, c, len);
  chars[len] = 0;
  str->len = len;
  shim_write(L, str, (val_t *)&str->chars, chars);
  roots_pop(L, R);
  return str;
}

val_t make_vector(lisp_t *L, size_t n, val_t fill) {
  if (n >= ((size_t)1 << 36)) lisp_error(L, "vector too long", fix((int64_t)n));
  val_t *R = roots_push2(L, fill, NIL);
  vector_t *v = shim_alloc(L, K_VECTOR);
  v->hdr = HDR(K_VECTOR, 0);
  R[1] = v;
  val_t *items = shim_alloc_slots(L, n);
  for (size_t i = 0; i < n; i++) shim_write(L, items, &items[i], R[0]);
  v->len = n;
  shim_write(L, v, (val_t *)&v->items, items);
  roots_pop(L, R);
  return v;
}

val_t make_flonum(lisp_t *L, double d) {
  flonum_t *f = shim_alloc(L, K_FLONUM);
  f->hdr = HDR(K_FLONUM, 0);
  f->d = d;
  return f;
}

val_t make_int(lisp_t *L, int64_t n) {
  if (n < FIX_MIN || n > FIX_MAX)
    lisp_error(L, "integer overflow (fixnums are 62-bit)", UNBOUND);
  return fix(n);
}

/* The arity goes into the header (value.h).  flags: CLO_BINDINGS when
 * params is a named let's binding list. */
val_t make_closure(lisp_t *L, val_t params, val_t body, val_t env,
                   val_t name, uintptr_t flags) {
  uintptr_t nreq = 0;
  val_t p = params;
  for (; is_pair(p); p = cdr(p)) {
    val_t s = flags & CLO_BINDINGS ? car(car(p)) : car(p);
    if (!is_symbol(s)) lisp_error(L, "bad parameter", s);
    sym_mark_local(s);
    nreq++;
  }
  if (p != NIL && !is_symbol(p)) lisp_error(L, "bad parameter list", params);
  if (p != NIL) sym_mark_local(p);
  if (nreq + (p != NIL) > FRAME_MAX)
    lisp_error(L, "too many parameters (the limit is 64)", params);
  val_t *R = roots_push(L, 4);
  R[0] = params, R[1] = body, R[2] = env, R[3] = name;
  closure_t *c = shim_alloc(L, K_CLOSURE);
  c->hdr = HDR(K_CLOSURE, nreq << 2 | (uintptr_t)(p != NIL) << 1 | flags);
  shim_write(L, c, &c->params, R[0]);
  shim_write(L, c, &c->body, R[1]);
  shim_write(L, c, &c->env, R[2]);
  shim_write(L, c, &c->name, R[3]);
  roots_pop(L, R);
  return c;
}

val_t make_frame(lisp_t *L, val_t parent, val_t vars, size_t n,
                 uintptr_t flags, const val_t *vals) {
  if (n > FRAME_MAX)
    lisp_error(L, "too many variables in one frame (the limit is 64)", vars);
  val_t *R = roots_push2(L, parent, vars);
  frame_t *f = shim_alloc_frame(L, n);
  f->hdr = HDR(K_FRAME, n | flags);
  shim_write(L, f, &f->parent, R[0]);
  shim_write(L, f, &f->vars, R[1]);
  shim_write(L, f, &f->ext, NIL);
  for (size_t i = 0; i < n; i++)
    shim_write(L, f, &f->vals[i], vals ? vals[i] : UNSPEC);
  roots_pop(L, R);
  return f;
}

val_t make_prim(lisp_t *L, const char *name, prim_fn fn, int min, int max) {
  prim_t *p = shim_alloc(L, K_PRIM);
  p->hdr = HDR(K_PRIM, 0);
  p->fn = fn;
  p->name = name;
  p->min_args = (int16_t)min;
  p->max_args = (int16_t)max;
  return p;
}

/* An internal define: (sym . val) onto the frame's ext alist. */
void frame_add(lisp_t *L, val_t frame, val_t sym, val_t val) {
  sym_mark_local(sym);
  val_t *R = roots_push(L, 2);
  R[0] = frame;
  R[1] = cons(L, sym, val);
  val_t c = cons(L, R[1], FRAME(R[0])->ext);
  shim_write(L, R[0], &FRAME(R[0])->ext, c);
  roots_pop(L, R);
}

void define_global(lisp_t *L, val_t sym, val_t val) {
  shim_write(L, sym, &SYM(sym)->value, val);
}

val_t list_from(lisp_t *L, int n, val_t *items) {
  val_t *R = roots_push(L, 1);
  for (int i = n - 1; i >= 0; i--) R[0] = cons(L, items[i], R[0]);
  val_t l = R[0];
  roots_pop(L, R);
  return l;
}

void lb_add(lisp_t *L, val_t *Q, val_t v) {
  Q[2] = v;
  val_t c = cons(L, Q[2], NIL);
  if (Q[0] == NIL)
    Q[0] = c;
  else
    shim_write(L, Q[1], &PAIR(Q[1])->cdr, c);
  Q[1] = c;
}

int64_t list_length(val_t l) {
  int64_t n = 0;
  for (; is_pair(l); l = cdr(l)) n++;
  return l == NIL ? n : -1;
}

/* ---------------------------------------------------------------- symbols */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static void symtab_grow(lisp_t *L) {
  size_t ncap = L->symcap ? L->symcap * 2 : 1024;
  val_t *nt = shim_host_alloc(ncap * sizeof(val_t));
  if (!nt) fatal("out of memory for the symbol table");
  for (size_t i = 0; i < L->symcap; i++) {
    val_t s = L->symtab[i];
    if (!s) continue;
    string_t *n = STR(SYM(s)->name);
    size_t j = hash_bytes(n->chars, n->len) & (ncap - 1);
    while (nt[j]) j = (j + 1) & (ncap - 1);
    nt[j] = s;
  }
  val_t *old = L->symtab;
  L->symtab = nt; /* switch before freeing: a collection may look */
  L->symcap = ncap;
  shim_host_free(old);
}

/* name may point into a GC string the caller keeps rooted. */
val_t intern(lisp_t *L, const char *name, size_t len) {
  if ((L->symcount + 1) * 2 > L->symcap) symtab_grow(L);
  size_t mask = L->symcap - 1, i = hash_bytes(name, len) & mask;
  for (val_t s; (s = L->symtab[i]) != NULL; i = (i + 1) & mask) {
    string_t *n = STR(SYM(s)->name);
    if (n->len == len && memcmp(n->chars, name, len) == 0) return s;
  }
  val_t *R = roots_push(L, 1);
  R[0] = make_string(L, name, len);
  symbol_t *sym = shim_alloc(L, K_SYMBOL);
  sym->hdr = HDR(K_SYMBOL, 0);
  shim_write(L, sym, &sym->name, R[0]);
  shim_write(L, sym, &sym->value, UNBOUND);
  L->symtab[i] = sym; /* the table did not change while allocating */
  L->symcount++;
  roots_pop(L, R);
  return sym;
}

val_t intern_c(lisp_t *L, const char *name) { return intern(L, name, strlen(name)); }

/* ------------------------------------------------------------- finalizers */

void lisp_finalize_ready(lisp_t *L, val_t obj, int64_t index) {
  if (L->npending == L->pending_cap) {
    size_t ncap = L->pending_cap ? L->pending_cap * 2 : 64;
    val_t *p = shim_host_realloc(L->pending, 2 * L->pending_cap * sizeof(val_t),
                                 2 * ncap * sizeof(val_t));
    if (!p) fatal("out of memory for the finalizer queue");
    L->pending = p;
    L->pending_cap = ncap;
  }
  L->pending[2 * L->npending] = obj;
  L->pending[2 * L->npending + 1] = fix(index);
  L->npending++;
}

void lisp_finalizer_release(lisp_t *L, int64_t index) {
  if (index < 0 || (size_t)index >= L->fin_cap) return;
  L->fin_procs[index] = fix(L->fin_free);
  L->fin_free = index;
}

int64_t lisp_finalizer_slot(lisp_t *L, val_t proc) {
  if (L->fin_free < 0) {
    size_t old = L->fin_cap, ncap = old ? old * 2 : 64;
    val_t *p = shim_host_realloc(L->fin_procs, old * sizeof(val_t),
                                 ncap * sizeof(val_t));
    if (!p) fatal("out of memory for the finalizer table");
    L->fin_procs = p;
    L->fin_cap = ncap;
    for (size_t i = ncap; i-- > old;) {
      p[i] = fix(L->fin_free);
      L->fin_free = (int64_t)i;
    }
  }
  int64_t i = L->fin_free;
  L->fin_free = fix_val(L->fin_procs[i]);
  L->fin_procs[i] = proc;
  return i;
}

/* The drain point: let the GC queue what it found dead, then call each
 * procedure with its object, oldest first.  Not re-entered from a
 * finalizer procedure that calls (gc). */
void lisp_run_finalizers(lisp_t *L) {
  if (L->draining) return;
  L->draining = 1;
  shim_run_finalizers(L);
  while (L->pending_head < L->npending) {
    size_t k = L->pending_head++;
    val_t *R = roots_push2(L, L->pending[2 * k], NIL);
    int64_t idx = fix_val(L->pending[2 * k + 1]);
    R[1] = L->fin_procs[idx];
    lisp_finalizer_release(L, idx);
    lisp_apply(L, R[1], 1, &R[0]);
    roots_pop(L, R);
  }
  L->npending = L->pending_head = 0;
  L->draining = 0;
}

/* ----------------------------------------------------------------- errors */

static void report(lisp_t *L, const char *msg, val_t irritants, int list) {
  fflush(stdout);
  fprintf(stderr, "error: %s", msg);
  if (list) {
    for (val_t p = irritants; is_pair(p); p = cdr(p)) {
      fputc(' ', stderr);
      lisp_print(L, stderr, car(p), 1);
    }
  } else if (irritants != UNBOUND) {
    fputs(": ", stderr);
    lisp_print(L, stderr, irritants, 1);
  }
  fputc('\n', stderr);
  fflush(stderr);
}

_Noreturn void lisp_unwind(lisp_t *L) {
  if (L->err_jmp) longjmp(*L->err_jmp, 1);
  lisp_exit(L, 1);
}

_Noreturn void lisp_error(lisp_t *L, const char *msg, val_t irritant) {
  report(L, msg, irritant, 0);
  lisp_unwind(L);
}

_Noreturn void lisp_error_list(lisp_t *L, const char *msg, val_t irritants) {
  report(L, msg, irritants, 1);
  lisp_unwind(L);
}

void check_type(lisp_t *L, int ok, const char *what, val_t v) {
  if (!ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected %s, got", what);
    lisp_error(L, msg, v);
  }
}

int64_t want_int(lisp_t *L, val_t v) {
  check_type(L, is_fix(v), "an integer", v);
  return fix_val(v);
}

size_t want_index(lisp_t *L, val_t v, size_t bound) {
  int64_t i = want_int(L, v);
  if (i < 0 || (uint64_t)i >= bound) lisp_error(L, "index out of range", v);
  return (size_t)i;
}

/* ------------------------------------------------------------- lifecycle */

lisp_t *lisp_new(void) {
  lisp_t *L = shim_init();
  L->fin_free = -1;
  L->seg = seg_new(SEG_SLOTS);
  L->sp = L->seg->slots;
  L->slimit = L->seg->end;
  symtab_grow(L);
  val_t *g = (val_t *)&L->g;
  for (size_t i = 0; i < sizeof L->g / sizeof(val_t); i++) g[i] = NIL;
  struct rlimit rl;
  size_t lim = (size_t)8 << 20;
  if (getrlimit(RLIMIT_STACK, &rl) == 0)
    lim = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > ((rlim_t)1 << 30)
              ? (size_t)1 << 30
              : (size_t)rl.rlim_cur;
  /* Leave room for the printer, libc and sanitizer frames. */
  L->stack_limit = lim > ((size_t)2 << 20) ? lim - ((size_t)1 << 20) : lim / 2;
  L->stack_base = (uintptr_t)__builtin_frame_address(0);
  eval_init(L);
  builtins_num_init(L);
  builtins_list_init(L);
  builtins_data_init(L);
  builtins_sys_init(L);
  return L;
}

void lisp_free(lisp_t *L) {
  rseg_t *s = L->seg;
  while (s->next) s = s->next;
  for (rseg_t *p; s; s = p) {
    p = s->prev;
    shim_host_free(s);
  }
  L->seg = NULL;
  shim_host_free(L->symtab);
  shim_host_free(L->fin_procs);
  shim_host_free(L->pending);
  L->symtab = L->fin_procs = L->pending = NULL;
  L->symcap = L->fin_cap = L->npending = 0;
  shim_shutdown(L);
}

_Noreturn void lisp_exit(lisp_t *L, int code) {
  fflush(stdout);
  lisp_free(L);
  exit(code);
}

void define_prims(lisp_t *L, const prim_def_t *defs) {
  for (; defs->name; defs++) {
    val_t *R = roots_push(L, 1);
    R[0] = make_prim(L, defs->name, defs->fn, defs->min, defs->max);
    val_t sym = intern_c(L, defs->name);
    define_global(L, sym, R[0]);
    roots_pop(L, R);
  }
}
