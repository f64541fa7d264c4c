/*
 * builtins_list.c -- pairs and lists, equivalence, type predicates, and
 * the higher-order list procedures (map, for-each).
 *
 * All loops are iterative, so long lists need no C stack.  Lists under
 * construction live in a three-slot list builder on the shadow stack
 * (lb_add); a procedure argument list walked while calling back into the
 * evaluator is kept in rooted slots too, since the callee may drop every
 * other reference to it.
 */
#include <string.h>

#include "gc_shim.h"

/* --------------------------------------------------------- equivalence */

int lisp_eqv(val_t a, val_t b) {
  if (a == b) return 1;
  if (is_flonum(a) && is_flonum(b)) return FLO(a)->d == FLO(b)->d;
  return 0;
}

int lisp_equal(val_t a, val_t b) {
  for (;;) {
    if (lisp_eqv(a, b)) return 1;
    if (!is_ptr(a) || !is_ptr(b) || obj_kind(a) != obj_kind(b)) return 0;
    switch (obj_kind(a)) {
    case K_STRING:
      return STR(a)->len == STR(b)->len &&
             memcmp(STR(a)->chars, STR(b)->chars, STR(a)->len) == 0;
    case K_VECTOR:
      if (VEC(a)->len != VEC(b)->len) return 0;
      for (size_t i = 0; i < VEC(a)->len; i++)
        if (!lisp_equal(VEC(a)->items[i], VEC(b)->items[i])) return 0;
      return 1;
    case K_PAIR:
      if (!lisp_equal(car(a), car(b))) return 0;
      a = cdr(a);
      b = cdr(b);
      continue;
    default:
      return 0;
    }
  }
}

#define PRED(name, expr)                                        \
  static val_t name(lisp_t *L, int argc, val_t *argv) {         \
    (void)L, (void)argc;                                        \
    val_t x = argv[0];                                          \
    return make_bool(expr);                                     \
  }

PRED(p_not, x == FALSE_V)
PRED(p_nullp, x == NIL)
PRED(p_pairp, is_pair(x))
PRED(p_listp, list_length(x) >= 0)
PRED(p_symbolp, is_symbol(x))
PRED(p_stringp, is_string(x))
PRED(p_procedurep, is_procedure(x))
PRED(p_vectorp, is_vector(x))
PRED(p_booleanp, x == TRUE_V || x == FALSE_V)
PRED(p_charp, is_char(x))

static val_t p_eqp(lisp_t *L, int c, val_t *v) { (void)L, (void)c; return make_bool(v[0] == v[1]); }
static val_t p_eqvp(lisp_t *L, int c, val_t *v) { (void)L, (void)c; return make_bool(lisp_eqv(v[0], v[1])); }
static val_t p_equalp(lisp_t *L, int c, val_t *v) { (void)L, (void)c; return make_bool(lisp_equal(v[0], v[1])); }

/* --------------------------------------------------------------- pairs */

static val_t want_pair(lisp_t *L, val_t v) {
  check_type(L, is_pair(v), "a pair", v);
  return v;
}

static val_t p_cons(lisp_t *L, int c, val_t *v) { (void)c; return cons(L, v[0], v[1]); }
static val_t p_car(lisp_t *L, int c, val_t *v) { (void)c; return car(want_pair(L, v[0])); }
static val_t p_cdr(lisp_t *L, int c, val_t *v) { (void)c; return cdr(want_pair(L, v[0])); }

/* c[ad]+r: path letters applied right to left. */
static val_t cxr(lisp_t *L, val_t x, const char *path) {
  for (size_t i = strlen(path); i-- > 0;)
    x = path[i] == 'a' ? car(want_pair(L, x)) : cdr(want_pair(L, x));
  return x;
}
static val_t p_caar(lisp_t *L, int c, val_t *v) { (void)c; return cxr(L, v[0], "aa"); }
static val_t p_cadr(lisp_t *L, int c, val_t *v) { (void)c; return cxr(L, v[0], "ad"); }
static val_t p_cdar(lisp_t *L, int c, val_t *v) { (void)c; return cxr(L, v[0], "da"); }
static val_t p_cddr(lisp_t *L, int c, val_t *v) { (void)c; return cxr(L, v[0], "dd"); }
static val_t p_caddr(lisp_t *L, int c, val_t *v) { (void)c; return cxr(L, v[0], "add"); }
static val_t p_cdddr(lisp_t *L, int c, val_t *v) { (void)c; return cxr(L, v[0], "ddd"); }
static val_t p_cadddr(lisp_t *L, int c, val_t *v) { (void)c; return cxr(L, v[0], "addd"); }

static val_t p_set_car(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_pair(L, v[0]);
  shim_write(L, v[0], &PAIR(v[0])->car, v[1]);
  return UNSPEC;
}

static val_t p_set_cdr(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_pair(L, v[0]);
  shim_write(L, v[0], &PAIR(v[0])->cdr, v[1]);
  return UNSPEC;
}

/* --------------------------------------------------------------- lists */

static int64_t want_list(lisp_t *L, val_t l) {
  int64_t n = list_length(l);
  check_type(L, n >= 0, "a proper list", l);
  return n;
}

static val_t p_list(lisp_t *L, int argc, val_t *argv) { return list_from(L, argc, argv); }
static val_t p_length(lisp_t *L, int c, val_t *v) { (void)c; return fix(want_list(L, v[0])); }

static val_t p_append(lisp_t *L, int argc, val_t *argv) {
  if (argc == 0) return NIL;
  val_t *Q = roots_push(L, 3);
  for (int i = 0; i < argc - 1; i++) {
    want_list(L, argv[i]);
    for (val_t p = argv[i]; is_pair(p); p = cdr(p)) lb_add(L, Q, car(p));
  }
  val_t r = argv[argc - 1];
  if (Q[0] != NIL) {
    shim_write(L, Q[1], &PAIR(Q[1])->cdr, r);
    r = Q[0];
  }
  roots_pop(L, Q);
  return r;
}

static val_t p_reverse(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_list(L, v[0]);
  val_t *R = roots_push(L, 1);
  for (val_t p = v[0]; is_pair(p); p = cdr(p)) R[0] = cons(L, car(p), R[0]);
  val_t r = R[0];
  roots_pop(L, R);
  return r;
}

static val_t p_list_copy(lisp_t *L, int c, val_t *v) {
  (void)c;
  val_t *Q = roots_push(L, 3);
  val_t p = v[0];
  for (; is_pair(p); p = cdr(p)) lb_add(L, Q, car(p));
  val_t r = p;
  if (Q[0] != NIL) {
    shim_write(L, Q[1], &PAIR(Q[1])->cdr, p);
    r = Q[0];
  }
  roots_pop(L, Q);
  return r;
}

static val_t tail(lisp_t *L, val_t l, val_t k) {
  int64_t n = want_int(L, k);
  if (n < 0) lisp_error(L, "index out of range", k);
  for (; n > 0; n--) {
    if (!is_pair(l)) lisp_error(L, "index out of range", k);
    l = cdr(l);
  }
  return l;
}

static val_t p_list_tail(lisp_t *L, int c, val_t *v) { (void)c; return tail(L, v[0], v[1]); }

static val_t p_list_ref(lisp_t *L, int c, val_t *v) {
  (void)c;
  val_t p = tail(L, v[0], v[1]);
  if (!is_pair(p)) lisp_error(L, "index out of range", v[1]);
  return car(p);
}

static val_t p_last_pair(lisp_t *L, int c, val_t *v) {
  (void)c;
  val_t p = want_pair(L, v[0]);
  while (is_pair(cdr(p))) p = cdr(p);
  return p;
}

/* (map f l1 l2 ...) / (for-each f l1 ...): stops at the shortest list. */
static val_t map_common(lisp_t *L, int argc, val_t *argv, int collect) {
  int nl = argc - 1;
  check_type(L, is_procedure(argv[0]), "a procedure", argv[0]);
  val_t *S = roots_push(L, 3 + 2 * (size_t)nl);
  val_t *Q = S, *P = S + 3, *X = S + 3 + nl;
  for (int i = 0; i < nl; i++) P[i] = argv[1 + i];
  for (;;) {
    for (int i = 0; i < nl; i++) {
      if (!is_pair(P[i])) goto out;
      X[i] = car(P[i]);
      P[i] = cdr(P[i]);
    }
    val_t v = lisp_apply(L, argv[0], nl, X);
    if (collect) lb_add(L, Q, v);
  }
out:;
  val_t r = collect ? Q[0] : UNSPEC;
  roots_pop(L, S);
  return r;
}

static val_t p_map(lisp_t *L, int c, val_t *v) { return map_common(L, c, v, 1); }
static val_t p_for_each(lisp_t *L, int c, val_t *v) { return map_common(L, c, v, 0); }

/* assq / assv / assoc and memq / memv / member. */
static int same(int how, val_t a, val_t b) {
  return how == 'q' ? a == b : how == 'v' ? lisp_eqv(a, b) : lisp_equal(a, b);
}

static val_t assx(lisp_t *L, val_t key, val_t l, int how) {
  for (; is_pair(l); l = cdr(l)) {
    check_type(L, is_pair(car(l)), "an association list", l);
    if (same(how, car(car(l)), key)) return car(l);
  }
  return FALSE_V;
}

static val_t memx(val_t key, val_t l, int how) {
  for (; is_pair(l); l = cdr(l))
    if (same(how, car(l), key)) return l;
  return FALSE_V;
}

static val_t p_assq(lisp_t *L, int c, val_t *v) { (void)c; return assx(L, v[0], v[1], 'q'); }
static val_t p_assv(lisp_t *L, int c, val_t *v) { (void)c; return assx(L, v[0], v[1], 'v'); }
static val_t p_assoc(lisp_t *L, int c, val_t *v) { (void)c; return assx(L, v[0], v[1], 'e'); }
static val_t p_memq(lisp_t *L, int c, val_t *v) { (void)L, (void)c; return memx(v[0], v[1], 'q'); }
static val_t p_memv(lisp_t *L, int c, val_t *v) { (void)L, (void)c; return memx(v[0], v[1], 'v'); }
static val_t p_member(lisp_t *L, int c, val_t *v) { (void)L, (void)c; return memx(v[0], v[1], 'e'); }

void builtins_list_init(lisp_t *L) {
  static const prim_def_t defs[] = {
      {"not", p_not, 1, 1},
      {"null?", p_nullp, 1, 1},
      {"pair?", p_pairp, 1, 1},
      {"list?", p_listp, 1, 1},
      {"symbol?", p_symbolp, 1, 1},
      {"string?", p_stringp, 1, 1},
      {"procedure?", p_procedurep, 1, 1},
      {"vector?", p_vectorp, 1, 1},
      {"boolean?", p_booleanp, 1, 1},
      {"char?", p_charp, 1, 1},
      {"eq?", p_eqp, 2, 2},
      {"eqv?", p_eqvp, 2, 2},
      {"equal?", p_equalp, 2, 2},
      {"cons", p_cons, 2, 2},
      {"car", p_car, 1, 1},
      {"cdr", p_cdr, 1, 1},
      {"caar", p_caar, 1, 1},
      {"cadr", p_cadr, 1, 1},
      {"cdar", p_cdar, 1, 1},
      {"cddr", p_cddr, 1, 1},
      {"caddr", p_caddr, 1, 1},
      {"cdddr", p_cdddr, 1, 1},
      {"cadddr", p_cadddr, 1, 1},
      {"set-car!", p_set_car, 2, 2},
      {"set-cdr!", p_set_cdr, 2, 2},
      {"list", p_list, 0, -1},
      {"length", p_length, 1, 1},
      {"append", p_append, 0, -1},
      {"reverse", p_reverse, 1, 1},
      {"list-copy", p_list_copy, 1, 1},
      {"list-tail", p_list_tail, 2, 2},
      {"list-ref", p_list_ref, 2, 2},
      {"last-pair", p_last_pair, 1, 1},
      {"map", p_map, 2, -1},
      {"for-each", p_for_each, 2, -1},
      {"assq", p_assq, 2, 2},
      {"assv", p_assv, 2, 2},
      {"assoc", p_assoc, 2, 2},
      {"memq", p_memq, 2, 2},
      {"memv", p_memv, 2, 2},
      {"member", p_member, 2, 2},
      {NULL, NULL, 0, 0},
  };
  define_prims(L, defs);
}
