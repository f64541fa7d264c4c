/*
 * eval.c -- the evaluator: special forms, procedure calls, proper tail
 * calls, apply.
 *
 * lisp_eval keeps three shadow-stack slots: R[0] the expression, R[1] the
 * environment, R[2] the procedure being called (or a form's temporary).
 * Every expression in tail position -- if's branches, the last form of a
 * body, cond/case/when/unless clauses, and/or's last operand, a procedure
 * body after the call, apply -- is evaluated by replacing R[0] (and R[1])
 * and looping, so tail calls use constant C stack and shadow stack.
 * Arguments are evaluated into consecutive shadow-stack slots, which is
 * also the argv handed to primitives.
 *
 * Environments are frames (value.h) chained to NIL, the global
 * environment, whose bindings live in the symbols themselves.  A frame is
 * one object whose slots are named by the code that made it (the lambda
 * list, or the let/do binding list), so a call allocates exactly one
 * object; a symbol that never named a local variable is looked up in its
 * global slot directly.  Special form keywords are recognised by a number
 * in the symbol's header and cannot be shadowed by local variables (a
 * documented simplification).
 */
#include <string.h>

#include "gc_shim.h"

enum sf {
  SF_NONE,
  SF_QUOTE,
  SF_QUASIQUOTE,
  SF_LAMBDA,
  SF_DEFINE,
  SF_SET,
  SF_IF,
  SF_COND,
  SF_CASE,
  SF_AND,
  SF_OR,
  SF_WHEN,
  SF_UNLESS,
  SF_BEGIN,
  SF_LET,
  SF_LETSTAR,
  SF_LETREC,
  SF_DO,
  SF_COUNT
};

/* A special form either finishes (DONE: *out is the value) or leaves an
 * expression in tail position (TAIL: *out, to be evaluated in R[1]). */
enum { DONE, TAIL };
typedef int (*sf_fn)(lisp_t *L, val_t *R, val_t x, val_t *out);

static _Noreturn void bad_syntax(lisp_t *L, val_t x) {
  lisp_error(L, "bad syntax", x);
}

/* Element i of form x (0 = the keyword); a syntax error if missing. */
static val_t nth(lisp_t *L, val_t x, int i) {
  val_t p = x;
  for (; i > 0 && is_pair(p); i--) p = cdr(p);
  if (!is_pair(p)) bad_syntax(L, x);
  return car(p);
}

static val_t nthcdr(lisp_t *L, val_t x, int i) {
  val_t p = x;
  for (; i > 0; i--) {
    if (!is_pair(p)) bad_syntax(L, x);
    p = cdr(p);
  }
  return p;
}

/* ---------------------------------------------------------- environments */

/* The slot holding sym's local binding in env and, in *owner, the object
 * that contains it (for the barrier); NULL when the binding is global.
 * A symbol that never named a local variable skips the walk. */
static val_t *find_slot(val_t sym, val_t env, val_t *owner) {
  if (!(obj_num(sym) & SYM_LOCAL)) return NULL;
  for (val_t e = env; e != NIL; e = FRAME(e)->parent) {
    frame_t *f = FRAME(e);
    for (val_t p = f->ext; p != NIL; p = cdr(p)) {
      if (car(car(p)) == sym) {
        *owner = car(p);
        return &PAIR(car(p))->cdr;
      }
    }
    size_t n = frame_slots(e);
    int bindings = (obj_num(e) & FRAME_BINDINGS) != 0;
    val_t v = f->vars;
    for (size_t i = 0; i < n; i++) {
      val_t name = v; /* a rest parameter ends a dotted lambda list */
      if (is_pair(v)) {
        name = bindings ? car(car(v)) : car(v);
        v = cdr(v);
      }
      if (name == sym) {
        *owner = e;
        return &f->vals[i];
      }
    }
  }
  return NULL;
}

static val_t lookup(lisp_t *L, val_t sym, val_t env) {
  val_t owner;
  val_t *slot = find_slot(sym, env, &owner);
  if (slot) return *slot;
  val_t v = SYM(sym)->value;
  if (v == UNBOUND) lisp_error(L, "unbound variable", sym);
  return v;
}

static void set_var(lisp_t *L, val_t sym, val_t v, val_t env) {
  val_t owner;
  val_t *slot = find_slot(sym, env, &owner);
  if (slot) {
    shim_write(L, owner, slot, v);
    return;
  }
  if (SYM(sym)->value == UNBOUND) lisp_error(L, "set!: unbound variable", sym);
  define_global(L, sym, v);
}

static void define_var(lisp_t *L, val_t sym, val_t v, val_t env) {
  if (env == NIL)
    define_global(L, sym, v);
  else
    frame_add(L, env, sym, v);
}

/* Evaluate x in env: variables and constants directly, forms by
 * lisp_eval.  env must be rooted by the caller. */
static inline val_t ev(lisp_t *L, val_t x, val_t env) {
  if (is_symbol(x)) return lookup(L, x, env);
  if (!is_pair(x)) return x;
  return lisp_eval(L, x, env);
}

/* A new frame for closure f (rooted by the caller) applied to
 * argv[0..argc) (rooted). */
static val_t bind_args(lisp_t *L, val_t f, int argc, val_t *argv) {
  uintptr_t a = obj_num(f);
  int nreq = (int)(a >> 2), rest = (int)((a >> 1) & 1);
  uintptr_t flags = (a & CLO_BINDINGS) ? FRAME_BINDINGS : 0;
  if (argc < nreq || (!rest && argc > nreq))
    lisp_error(L, "wrong number of arguments to", f);
  if (!rest)
    return make_frame(L, CLO(f)->env, CLO(f)->params, (size_t)nreq, flags, argv);
  val_t *R = roots_push(L, (size_t)nreq + 1);
  for (int i = 0; i < nreq; i++) R[i] = argv[i];
  for (int i = argc - 1; i >= nreq; i--) R[nreq] = cons(L, argv[i], R[nreq]);
  val_t fr = make_frame(L, CLO(f)->env, CLO(f)->params, (size_t)nreq + 1, flags, R);
  roots_pop(L, R);
  return fr;
}

/* Evaluate all but the last form of body (env rooted by the caller) and
 * return the last, for the caller to evaluate in tail position. */
static val_t eval_seq(lisp_t *L, val_t body, val_t env) {
  if (body == NIL) return UNSPEC;
  for (; is_pair(cdr(body)); body = cdr(body)) ev(L, car(body), env);
  if (cdr(body) != NIL) lisp_error(L, "improper body", body);
  return car(body);
}

/* --------------------------------------------------------- special forms */

static int sf_quote(lisp_t *L, val_t *R, val_t x, val_t *out) {
  (void)R;
  *out = nth(L, x, 1);
  return DONE;
}

static int sf_if(lisp_t *L, val_t *R, val_t x, val_t *out) {
  if (truthy(ev(L, nth(L, x, 1), R[1]))) {
    *out = nth(L, x, 2);
    return TAIL;
  }
  val_t rest = nthcdr(L, x, 3);
  *out = is_pair(rest) ? car(rest) : UNSPEC;
  return is_pair(rest) ? TAIL : DONE;
}

static int sf_define(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t target = nth(L, x, 1);
  val_t sym = target;
  if (is_pair(target)) { /* (define (name . params) body...) */
    sym = car(target);
    if (!is_symbol(sym) || nthcdr(L, x, 2) == NIL) bad_syntax(L, x);
    R[2] = make_closure(L, cdr(target), nthcdr(L, x, 2), R[1], sym, 0);
  } else {
    if (!is_symbol(sym)) bad_syntax(L, x);
    val_t rest = nthcdr(L, x, 2);
    R[2] = rest == NIL ? UNSPEC : ev(L, car(rest), R[1]);
    if (is_kind(R[2], K_CLOSURE) && CLO(R[2])->name == NIL)
      shim_write(L, R[2], &CLO(R[2])->name, sym);
  }
  define_var(L, sym, R[2], R[1]);
  *out = UNSPEC;
  return DONE;
}

static int sf_set(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t sym = nth(L, x, 1);
  if (!is_symbol(sym)) bad_syntax(L, x);
  val_t v = ev(L, nth(L, x, 2), R[1]);
  set_var(L, sym, v, R[1]);
  *out = UNSPEC;
  return DONE;
}

static int sf_lambda(lisp_t *L, val_t *R, val_t x, val_t *out) {
  if (nthcdr(L, x, 2) == NIL) bad_syntax(L, x);
  *out = make_closure(L, nth(L, x, 1), nthcdr(L, x, 2), R[1], NIL, 0);
  return DONE;
}

static int sf_begin(lisp_t *L, val_t *R, val_t x, val_t *out) {
  *out = eval_seq(L, cdr(x), R[1]);
  return TAIL;
}

static int sf_and(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t p = cdr(x);
  if (p == NIL) {
    *out = TRUE_V;
    return DONE;
  }
  for (; is_pair(cdr(p)); p = cdr(p)) {
    if (!truthy(ev(L, car(p), R[1]))) {
      *out = FALSE_V;
      return DONE;
    }
  }
  *out = car(p);
  return TAIL;
}

static int sf_or(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t p = cdr(x);
  if (p == NIL) {
    *out = FALSE_V;
    return DONE;
  }
  for (; is_pair(cdr(p)); p = cdr(p)) {
    val_t v = ev(L, car(p), R[1]);
    if (truthy(v)) {
      *out = v;
      return DONE;
    }
  }
  *out = car(p);
  return TAIL;
}

static int sf_when(lisp_t *L, val_t *R, val_t x, val_t *out) {
  int t = truthy(ev(L, nth(L, x, 1), R[1]));
  if (t == (sym_special(car(x)) == SF_WHEN)) {
    *out = eval_seq(L, nthcdr(L, x, 2), R[1]);
    return TAIL;
  }
  *out = UNSPEC;
  return DONE;
}

static int sf_cond(lisp_t *L, val_t *R, val_t x, val_t *out) {
  for (val_t p = cdr(x); is_pair(p); p = cdr(p)) {
    val_t clause = car(p);
    if (!is_pair(clause)) bad_syntax(L, x);
    if (car(clause) == L->g.s_else) {
      *out = eval_seq(L, cdr(clause), R[1]);
      return TAIL;
    }
    val_t v = ev(L, car(clause), R[1]);
    if (!truthy(v)) continue;
    if (cdr(clause) == NIL) {
      *out = v;
      return DONE;
    }
    if (car(cdr(clause)) == L->g.s_arrow) {
      val_t *A = roots_push2(L, v, NIL);
      A[1] = ev(L, nth(L, clause, 2), R[1]);
      *out = lisp_apply(L, A[1], 1, &A[0]);
      roots_pop(L, A);
      return DONE;
    }
    *out = eval_seq(L, cdr(clause), R[1]);
    return TAIL;
  }
  *out = UNSPEC;
  return DONE;
}

static int sf_case(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t key = ev(L, nth(L, x, 1), R[1]);
  for (val_t p = nthcdr(L, x, 2); is_pair(p); p = cdr(p)) {
    val_t clause = car(p);
    if (!is_pair(clause)) bad_syntax(L, x);
    int hit = car(clause) == L->g.s_else;
    for (val_t d = car(clause); !hit && is_pair(d); d = cdr(d))
      hit = lisp_eqv(car(d), key);
    if (hit) {
      *out = eval_seq(L, cdr(clause), R[1]);
      return TAIL;
    }
  }
  *out = UNSPEC;
  return DONE;
}

static void check_binding(lisp_t *L, val_t b, val_t x) {
  if (!is_pair(b) || !is_symbol(car(b)) ||
      !(cdr(b) == NIL || (is_pair(cdr(b)) && cdr(cdr(b)) == NIL)))
    bad_syntax(L, x);
  sym_mark_local(car(b));
}

static val_t binding_init(val_t b) { return cdr(b) == NIL ? UNSPEC : car(cdr(b)); }

/* Check a binding list and evaluate its inits into fresh slots. */
static val_t *eval_inits(lisp_t *L, val_t *R, val_t x, val_t bindings,
                         size_t *n, size_t extra) {
  int64_t len = list_length(bindings);
  if (len < 0 || len > FRAME_MAX) bad_syntax(L, x);
  val_t *A = roots_push(L, (size_t)len + extra);
  size_t i = 0;
  for (val_t p = bindings; p != NIL; p = cdr(p), i++) {
    check_binding(L, car(p), x);
    A[i] = ev(L, binding_init(car(p)), R[1]);
  }
  *n = (size_t)len;
  return A;
}

/* (let name ((var init) ...) body...): a loop procedure whose parameters
 * are the binding list itself, bound in its own one-slot frame (named by
 * the first element of (name bindings body...)), called in tail position. */
static int named_let(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t name = nth(L, x, 1), bindings = nth(L, x, 2);
  if (nthcdr(L, x, 3) == NIL) bad_syntax(L, x);
  size_t n;
  val_t *A = eval_inits(L, R, x, bindings, &n, 1);
  sym_mark_local(name);
  A[n] = make_frame(L, R[1], cdr(x), 1, 0, NULL);
  R[2] = make_closure(L, bindings, nthcdr(L, x, 3), A[n], name, CLO_BINDINGS);
  shim_write(L, A[n], &FRAME(A[n])->vals[0], R[2]);
  R[1] = bind_args(L, R[2], (int)n, A);
  roots_pop(L, A);
  *out = eval_seq(L, CLO(R[2])->body, R[1]);
  return TAIL;
}

static int sf_let(lisp_t *L, val_t *R, val_t x, val_t *out) {
  if (is_symbol(nth(L, x, 1))) return named_let(L, R, x, out);
  val_t bindings = nth(L, x, 1);
  if (nthcdr(L, x, 2) == NIL) bad_syntax(L, x);
  size_t n;
  val_t *A = eval_inits(L, R, x, bindings, &n, 0);
  R[1] = make_frame(L, R[1], bindings, n, FRAME_BINDINGS, A);
  roots_pop(L, A);
  *out = eval_seq(L, nthcdr(L, x, 2), R[1]);
  return TAIL;
}

/* let*: one single-slot frame per binding, named by the binding list's
 * tail from that binding on.  letrec / letrec*: one frame binding every
 * name (unspecified), then the inits evaluated inside it, in order. */
static int sf_letstar(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t bindings = nth(L, x, 1);
  int64_t n = list_length(bindings);
  if (n < 0 || n > FRAME_MAX || nthcdr(L, x, 2) == NIL) bad_syntax(L, x);
  val_t *F = roots_push(L, 2);
  if (sym_special(car(x)) == SF_LETREC) {
    for (val_t p = bindings; p != NIL; p = cdr(p)) check_binding(L, car(p), x);
    F[0] = make_frame(L, R[1], bindings, (size_t)n, FRAME_BINDINGS, NULL);
    size_t i = 0;
    for (val_t p = bindings; p != NIL; p = cdr(p), i++) {
      val_t v = ev(L, binding_init(car(p)), F[0]);
      if (is_kind(v, K_CLOSURE) && CLO(v)->name == NIL)
        shim_write(L, v, &CLO(v)->name, car(car(p)));
      shim_write(L, F[0], &FRAME(F[0])->vals[i], v);
    }
  } else if (bindings == NIL) {
    F[0] = make_frame(L, R[1], NIL, 0, 0, NULL);
  } else {
    F[0] = R[1];
    for (val_t p = bindings; p != NIL; p = cdr(p)) {
      check_binding(L, car(p), x);
      F[1] = ev(L, binding_init(car(p)), F[0]);
      F[0] = make_frame(L, F[0], p, 1, FRAME_BINDINGS, &F[1]);
    }
  }
  R[1] = F[0];
  roots_pop(L, F);
  *out = eval_seq(L, nthcdr(L, x, 2), R[1]);
  return TAIL;
}

/* (do ((var init step)...) (test result...) command...): a fresh frame per
 * iteration, as if each were a call of a loop procedure. */
static int sf_do(lisp_t *L, val_t *R, val_t x, val_t *out) {
  val_t specs = nth(L, x, 1), test = nth(L, x, 2);
  int64_t len = list_length(specs);
  if (len < 0 || len > FRAME_MAX || !is_pair(test)) bad_syntax(L, x);
  size_t n = (size_t)len;
  val_t *A = roots_push(L, n + 1), *F = A + n;
  size_t i = 0;
  for (val_t p = specs; p != NIL; p = cdr(p), i++) {
    val_t s = car(p);
    if (!is_pair(s) || !is_symbol(car(s)) || !is_pair(cdr(s))) bad_syntax(L, x);
    sym_mark_local(car(s));
    A[i] = ev(L, car(cdr(s)), R[1]);
  }
  for (;;) {
    F[0] = make_frame(L, R[1], specs, n, FRAME_BINDINGS, A);
    if (truthy(ev(L, car(test), F[0]))) break;
    for (val_t c = nthcdr(L, x, 3); is_pair(c); c = cdr(c)) ev(L, car(c), F[0]);
    i = 0;
    for (val_t p = specs; p != NIL; p = cdr(p), i++) {
      val_t st = cdr(cdr(car(p)));
      A[i] = is_pair(st) ? ev(L, car(st), F[0]) : FRAME(F[0])->vals[i];
    }
  }
  R[1] = F[0];
  roots_pop(L, A);
  *out = eval_seq(L, cdr(test), R[1]);
  return TAIL;
}

/* Quasiquote without nesting: unquote and unquote-splicing at depth 1. */
static val_t qq(lisp_t *L, val_t t, val_t env) {
  if (!is_pair(t)) return t;
  if (car(t) == L->g.s_unquote) return lisp_eval(L, nth(L, t, 1), env);
  val_t *R = roots_push(L, 6);
  R[0] = t;
  val_t head = car(t);
  val_t result;
  if (is_pair(head) && car(head) == L->g.s_unquote_splicing) {
    R[1] = lisp_eval(L, nth(L, head, 1), env);
    R[2] = qq(L, cdr(R[0]), env);
    val_t *Q = R + 3;
    for (val_t p = R[1]; is_pair(p); p = cdr(p)) lb_add(L, Q, car(p));
    if (Q[0] == NIL) {
      result = R[2];
    } else {
      shim_write(L, Q[1], &PAIR(Q[1])->cdr, R[2]);
      result = Q[0];
    }
  } else {
    R[1] = qq(L, head, env);
    R[2] = qq(L, cdr(R[0]), env);
    result = cons(L, R[1], R[2]);
  }
  roots_pop(L, R);
  return result;
}

static int sf_quasiquote(lisp_t *L, val_t *R, val_t x, val_t *out) {
  *out = qq(L, nth(L, x, 1), R[1]);
  return DONE;
}

static const sf_fn special_forms[SF_COUNT] = {
    [SF_QUOTE] = sf_quote,   [SF_QUASIQUOTE] = sf_quasiquote,
    [SF_LAMBDA] = sf_lambda, [SF_DEFINE] = sf_define,
    [SF_SET] = sf_set,       [SF_IF] = sf_if,
    [SF_COND] = sf_cond,     [SF_CASE] = sf_case,
    [SF_AND] = sf_and,       [SF_OR] = sf_or,
    [SF_WHEN] = sf_when,     [SF_UNLESS] = sf_when,
    [SF_BEGIN] = sf_begin,   [SF_LET] = sf_let,
    [SF_LETSTAR] = sf_letstar, [SF_LETREC] = sf_letstar,
    [SF_DO] = sf_do,
};

/* ------------------------------------------------------------------ eval */

static void check_arity(lisp_t *L, val_t f, int n) {
  prim_t *p = PRIM(f);
  if (n < p->min_args || (p->max_args >= 0 && n > p->max_args))
    lisp_error(L, "wrong number of arguments to", f);
}

/* Spread (apply f a ... list) into fresh slots; returns them, sets *n. */
static val_t *spread_apply(lisp_t *L, int *n, val_t *A) {
  val_t last = A[*n - 1];
  int64_t len = list_length(last);
  if (len < 0) lisp_error(L, "apply: not a proper list", last);
  if (len > 1000000) lisp_error(L, "apply: too many arguments", fix(len));
  int m = *n - 2 + (int)len;
  val_t *B = roots_push(L, (size_t)m);
  int k = 0;
  for (int i = 1; i < *n - 1; i++) B[k++] = A[i];
  for (val_t p = A[*n - 1]; is_pair(p); p = cdr(p)) B[k++] = car(p);
  *n = m;
  return B;
}

val_t lisp_eval(lisp_t *L, val_t x, val_t env) {
  if ((uintptr_t)L->stack_base - (uintptr_t)__builtin_frame_address(0) >
      L->stack_limit)
    lisp_error(L, "recursion too deep (C stack limit)", UNBOUND);
  val_t *R = roots_push(L, 3);
  R[0] = x;
  R[1] = env;
  val_t result;
  for (;;) {
    x = R[0];
    if (is_symbol(x)) {
      result = lookup(L, x, R[1]);
      break;
    }
    if (!is_pair(x)) {
      result = x;
      break;
    }
    val_t op = car(x);
    if (is_symbol(op) && sym_special(op) != SF_NONE) {
      val_t out;
      if (special_forms[sym_special(op)](L, R, x, &out) == DONE) {
        result = out;
        break;
      }
      R[0] = out;
      continue;
    }
    /* A call: operator into R[2], arguments into A[0..n). */
    R[2] = ev(L, op, R[1]);
    int64_t nargs = list_length(cdr(x));
    if (nargs < 0 || nargs > 100000) lisp_error(L, "bad call syntax", x);
    int n = (int)nargs;
    val_t *base = roots_push(L, (size_t)n), *A = base;
    int i = 0;
    for (val_t p = cdr(x); p != NIL; p = cdr(p)) {
      val_t v = ev(L, car(p), R[1]);
      A[i++] = v;
    }
    for (;;) {
      val_t f = R[2];
      if (is_kind(f, K_PRIM)) {
        check_arity(L, f, n);
        if (PRIM(f)->flags & PRIM_APPLY) {
          R[2] = A[0];
          A = spread_apply(L, &n, A);
          continue;
        }
        result = PRIM(f)->fn(L, n, A);
        roots_pop(L, base);
        goto done;
      }
      if (is_kind(f, K_CLOSURE)) {
        R[1] = bind_args(L, f, n, A);
        roots_pop(L, base);
        R[0] = eval_seq(L, CLO(R[2])->body, R[1]);
        break;
      }
      lisp_error(L, "not a procedure", f);
    }
  }
done:
  roots_pop(L, R);
  return result;
}

val_t lisp_apply(lisp_t *L, val_t f, int argc, val_t *argv) {
  if (is_kind(f, K_PRIM)) {
    check_arity(L, f, argc);
    return PRIM(f)->fn(L, argc, argv);
  }
  if (!is_kind(f, K_CLOSURE)) lisp_error(L, "not a procedure", f);
  val_t *R = roots_push(L, 3);
  R[2] = f;
  R[1] = bind_args(L, f, argc, argv);
  R[0] = eval_seq(L, CLO(R[2])->body, R[1]);
  val_t v = lisp_eval(L, R[0], R[1]);
  roots_pop(L, R);
  return v;
}

/* ------------------------------------------------------------- builtins */

static val_t p_apply(lisp_t *L, int argc, val_t *argv) {
  int n = argc;
  val_t *B = spread_apply(L, &n, argv);
  val_t v = lisp_apply(L, argv[0], n, B);
  roots_pop(L, B);
  return v;
}

static val_t p_eval(lisp_t *L, int argc, val_t *argv) {
  (void)argc;
  return lisp_eval(L, argv[0], NIL);
}

static val_t p_procedure_name(lisp_t *L, int argc, val_t *argv) {
  (void)argc;
  val_t f = argv[0];
  if (is_kind(f, K_CLOSURE)) return CLO(f)->name == NIL ? FALSE_V : CLO(f)->name;
  if (is_kind(f, K_PRIM)) return intern_c(L, PRIM(f)->name);
  return FALSE_V;
}

void eval_init(lisp_t *L) {
  static const struct { const char *name; enum sf id; } forms[] = {
      {"quote", SF_QUOTE},   {"quasiquote", SF_QUASIQUOTE},
      {"lambda", SF_LAMBDA}, {"define", SF_DEFINE},
      {"set!", SF_SET},      {"if", SF_IF},
      {"cond", SF_COND},     {"case", SF_CASE},
      {"and", SF_AND},       {"or", SF_OR},
      {"when", SF_WHEN},     {"unless", SF_UNLESS},
      {"begin", SF_BEGIN},   {"let", SF_LET},
      {"let*", SF_LETSTAR},  {"letrec", SF_LETREC},
      {"letrec*", SF_LETREC}, {"do", SF_DO},
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    val_t s = intern_c(L, forms[i].name);
    SYM(s)->hdr = HDR(K_SYMBOL, forms[i].id);
  }
  L->g.s_quote = intern_c(L, "quote");
  L->g.s_quasiquote = intern_c(L, "quasiquote");
  L->g.s_unquote = intern_c(L, "unquote");
  L->g.s_unquote_splicing = intern_c(L, "unquote-splicing");
  L->g.s_else = intern_c(L, "else");
  L->g.s_arrow = intern_c(L, "=>");
  L->g.s_define = intern_c(L, "define");
  L->g.s_lambda = intern_c(L, "lambda");
  static const prim_def_t prims[] = {
      {"apply", p_apply, 2, -1},
      {"eval", p_eval, 1, 2},
      {"procedure-name", p_procedure_name, 1, 1},
      {NULL, NULL, 0, 0},
  };
  define_prims(L, prims);
  PRIM(SYM(intern_c(L, "apply"))->value)->flags |= PRIM_APPLY;
}
