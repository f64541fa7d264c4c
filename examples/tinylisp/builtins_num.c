/*
 * builtins_num.c -- numbers: fixnum and flonum arithmetic, comparison,
 * conversion.
 *
 * Fixnums are exact 62-bit integers; flonums are boxed doubles (a
 * pointer-free object).  An operation with any flonum argument is done in
 * doubles.  Exact results that leave the fixnum range raise "integer
 * overflow": no silent wrap-around and no promotion to doubles, so every
 * program behaves the same everywhere.  (/ a b) is exact when b divides
 * a, a flonum otherwise; exact division by zero is an error.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc_shim.h"

static double to_d(val_t v) { return is_fix(v) ? (double)fix_val(v) : FLO(v)->d; }

static void want_num(lisp_t *L, val_t v) { check_type(L, is_number(v), "a number", v); }

static _Noreturn void overflow(lisp_t *L) {
  lisp_error(L, "integer overflow (fixnums are 62-bit)", UNBOUND);
}

/* Add, subtract or multiply two numbers. */
static val_t arith2(lisp_t *L, int op, val_t a, val_t b) {
  if (is_fix(a) && is_fix(b)) {
    int64_t x = fix_val(a), y = fix_val(b), r;
    switch (op) {
    case '+': r = x + y; break; /* cannot overflow int64: 62-bit operands */
    case '-': r = x - y; break;
    default:
      if (__builtin_mul_overflow(x, y, &r)) overflow(L);
      break;
    }
    if (r < FIX_MIN || r > FIX_MAX) overflow(L);
    return fix(r);
  }
  double x = to_d(a), y = to_d(b);
  return make_flonum(L, op == '+' ? x + y : op == '-' ? x - y : x * y);
}

/* Folds over argv; the accumulator lives in a rooted slot. */
static val_t fold(lisp_t *L, int op, val_t unit, int argc, val_t *argv) {
  for (int i = 0; i < argc; i++) want_num(L, argv[i]);
  if (argc == 0) return unit;
  val_t *A = roots_push1(L, argv[0]);
  if (argc == 1 && op == '-') A[0] = arith2(L, '-', fix(0), argv[0]);
  for (int i = 1; i < argc; i++) A[0] = arith2(L, op, A[0], argv[i]);
  val_t r = A[0];
  roots_pop(L, A);
  return r;
}

static val_t p_add(lisp_t *L, int argc, val_t *argv) { return fold(L, '+', fix(0), argc, argv); }
static val_t p_sub(lisp_t *L, int argc, val_t *argv) { return fold(L, '-', fix(0), argc, argv); }
static val_t p_mul(lisp_t *L, int argc, val_t *argv) { return fold(L, '*', fix(1), argc, argv); }

static val_t div2(lisp_t *L, val_t a, val_t b) {
  if (is_fix(a) && is_fix(b)) {
    int64_t x = fix_val(a), y = fix_val(b);
    if (y == 0) lisp_error(L, "division by zero", a);
    if (x % y == 0) return make_int(L, x / y);
  }
  return make_flonum(L, to_d(a) / to_d(b));
}

static val_t p_div(lisp_t *L, int argc, val_t *argv) {
  for (int i = 0; i < argc; i++) want_num(L, argv[i]);
  if (argc == 1) return div2(L, fix(1), argv[0]);
  val_t *A = roots_push1(L, argv[0]);
  for (int i = 1; i < argc; i++) A[0] = div2(L, A[0], argv[i]);
  val_t r = A[0];
  roots_pop(L, A);
  return r;
}

/* quotient / remainder / modulo on fixnums. */
static val_t intdiv(lisp_t *L, int op, val_t *argv) {
  int64_t x = want_int(L, argv[0]), y = want_int(L, argv[1]);
  if (y == 0) lisp_error(L, "division by zero", argv[0]);
  if (op == 'q') return make_int(L, x / y);
  int64_t r = x % y;
  if (op == 'm' && r != 0 && ((r < 0) != (y < 0))) r += y;
  return fix(r);
}

static val_t p_quotient(lisp_t *L, int c, val_t *v) { (void)c; return intdiv(L, 'q', v); }
static val_t p_remainder(lisp_t *L, int c, val_t *v) { (void)c; return intdiv(L, 'r', v); }
static val_t p_modulo(lisp_t *L, int c, val_t *v) { (void)c; return intdiv(L, 'm', v); }

static int cmp2(val_t a, val_t b) {
  if (is_fix(a) && is_fix(b)) {
    int64_t x = fix_val(a), y = fix_val(b);
    return x < y ? -1 : x > y;
  }
  double x = to_d(a), y = to_d(b);
  return x < y ? -1 : x > y ? 1 : x == y ? 0 : 2; /* 2: unordered (NaN) */
}

static val_t compare(lisp_t *L, int argc, val_t *argv, int op) {
  for (int i = 0; i < argc; i++) want_num(L, argv[i]);
  for (int i = 0; i + 1 < argc; i++) {
    int c = cmp2(argv[i], argv[i + 1]), ok;
    switch (op) {
    case '=': ok = c == 0; break;
    case '<': ok = c == -1; break;
    case '>': ok = c == 1; break;
    case 'l': ok = c == -1 || c == 0; break;
    default: ok = c == 1 || c == 0; break;
    }
    if (!ok) return FALSE_V;
  }
  return TRUE_V;
}

static val_t p_eq(lisp_t *L, int c, val_t *v) { return compare(L, c, v, '='); }
static val_t p_lt(lisp_t *L, int c, val_t *v) { return compare(L, c, v, '<'); }
static val_t p_gt(lisp_t *L, int c, val_t *v) { return compare(L, c, v, '>'); }
static val_t p_le(lisp_t *L, int c, val_t *v) { return compare(L, c, v, 'l'); }
static val_t p_ge(lisp_t *L, int c, val_t *v) { return compare(L, c, v, 'g'); }

static val_t minmax(lisp_t *L, int argc, val_t *argv, int want) {
  int inexact = 0;
  val_t best = argv[0];
  for (int i = 0; i < argc; i++) {
    want_num(L, argv[i]);
    inexact |= is_flonum(argv[i]);
    if (cmp2(argv[i], best) == want) best = argv[i];
  }
  if (inexact && is_fix(best)) return make_flonum(L, to_d(best));
  return best;
}

static val_t p_min(lisp_t *L, int c, val_t *v) { return minmax(L, c, v, -1); }
static val_t p_max(lisp_t *L, int c, val_t *v) { return minmax(L, c, v, 1); }

static val_t p_abs(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_num(L, v[0]);
  if (is_fix(v[0])) return make_int(L, llabs((long long)fix_val(v[0])));
  return make_flonum(L, fabs(FLO(v[0])->d));
}

static val_t p_numberp(lisp_t *L, int c, val_t *v) { (void)L, (void)c; return make_bool(is_number(v[0])); }
static val_t p_integerp(lisp_t *L, int c, val_t *v) {
  (void)L, (void)c;
  return make_bool(is_fix(v[0]) || (is_flonum(v[0]) && FLO(v[0])->d == floor(FLO(v[0])->d)));
}
static val_t p_exactp(lisp_t *L, int c, val_t *v) { (void)c; want_num(L, v[0]); return make_bool(is_fix(v[0])); }
static val_t p_inexactp(lisp_t *L, int c, val_t *v) { (void)c; want_num(L, v[0]); return make_bool(is_flonum(v[0])); }
static val_t p_zerop(lisp_t *L, int c, val_t *v) { (void)c; want_num(L, v[0]); return make_bool(to_d(v[0]) == 0); }
static val_t p_positivep(lisp_t *L, int c, val_t *v) { (void)c; want_num(L, v[0]); return make_bool(to_d(v[0]) > 0); }
static val_t p_negativep(lisp_t *L, int c, val_t *v) { (void)c; want_num(L, v[0]); return make_bool(to_d(v[0]) < 0); }
static val_t p_evenp(lisp_t *L, int c, val_t *v) { (void)c; return make_bool((want_int(L, v[0]) & 1) == 0); }
static val_t p_oddp(lisp_t *L, int c, val_t *v) { (void)c; return make_bool((want_int(L, v[0]) & 1) != 0); }

static val_t p_inexact(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_num(L, v[0]);
  return is_flonum(v[0]) ? v[0] : make_flonum(L, to_d(v[0]));
}

static val_t p_exact(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_num(L, v[0]);
  if (is_fix(v[0])) return v[0];
  double d = FLO(v[0])->d;
  if (d != floor(d) || d < (double)FIX_MIN || d > (double)FIX_MAX)
    lisp_error(L, "exact: no exact integer for", v[0]);
  return fix((int64_t)d);
}

static val_t rounding(lisp_t *L, val_t x, double (*f)(double)) {
  want_num(L, x);
  return is_fix(x) ? x : make_flonum(L, f(FLO(x)->d));
}
static val_t p_floor(lisp_t *L, int c, val_t *v) { (void)c; return rounding(L, v[0], floor); }
static val_t p_ceiling(lisp_t *L, int c, val_t *v) { (void)c; return rounding(L, v[0], ceil); }
static val_t p_truncate(lisp_t *L, int c, val_t *v) { (void)c; return rounding(L, v[0], trunc); }
static val_t p_round(lisp_t *L, int c, val_t *v) { (void)c; return rounding(L, v[0], nearbyint); }

static val_t p_sqrt(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_num(L, v[0]);
  if (is_fix(v[0]) && fix_val(v[0]) >= 0) {
    int64_t n = fix_val(v[0]), r = (int64_t)sqrt((double)n);
    while (r * r > n) r--;
    while ((r + 1) * (r + 1) <= n) r++;
    if (r * r == n) return fix(r);
  }
  return make_flonum(L, sqrt(to_d(v[0])));
}

static val_t p_expt(lisp_t *L, int c, val_t *v) {
  (void)c;
  want_num(L, v[0]);
  want_num(L, v[1]);
  if (is_fix(v[0]) && is_fix(v[1]) && fix_val(v[1]) >= 0) {
    int64_t base = fix_val(v[0]), e = fix_val(v[1]), r = 1;
    while (e > 0) {
      if (e & 1)
        if (__builtin_mul_overflow(r, base, &r) || r < FIX_MIN || r > FIX_MAX) overflow(L);
      e >>= 1;
      if (e && (__builtin_mul_overflow(base, base, &base) || base > FIX_MAX)) overflow(L);
    }
    return fix(r);
  }
  return make_flonum(L, pow(to_d(v[0]), to_d(v[1])));
}

static int64_t gcd64(int64_t a, int64_t b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static val_t p_gcd(lisp_t *L, int argc, val_t *v) {
  int64_t g = 0;
  for (int i = 0; i < argc; i++) g = gcd64(g, want_int(L, v[i]));
  return fix(g);
}

static val_t p_lcm(lisp_t *L, int argc, val_t *v) {
  int64_t l = 1;
  for (int i = 0; i < argc; i++) {
    int64_t x = want_int(L, v[i]);
    if (x == 0) return fix(0);
    int64_t g = gcd64(l, x), r;
    if (__builtin_mul_overflow(l / g, x < 0 ? -x : x, &r)) overflow(L);
    l = fix_val(make_int(L, r));
  }
  return fix(l);
}

static val_t p_number_to_string(lisp_t *L, int argc, val_t *v) {
  want_num(L, v[0]);
  int radix = argc > 1 ? (int)want_int(L, v[1]) : 10;
  strbuf_t b = {0};
  if (radix == 10 || !is_fix(v[0])) {
    format_number(&b, v[0]);
  } else {
    if (radix < 2 || radix > 36) lisp_error(L, "number->string: bad radix", v[1]);
    int64_t n = fix_val(v[0]);
    uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    char buf[72];
    int k = (int)sizeof buf;
    buf[--k] = 0;
    do {
      buf[--k] = "0123456789abcdefghijklmnopqrstuvwxyz"[u % (uint64_t)radix];
      u /= (uint64_t)radix;
    } while (u);
    if (n < 0) buf[--k] = '-';
    sb_add(&b, buf + k, strlen(buf + k));
  }
  val_t s = make_string(L, b.p, b.len);
  sb_free(&b);
  return s;
}

static val_t p_string_to_number(lisp_t *L, int argc, val_t *v) {
  (void)argc;
  check_type(L, is_string(v[0]), "a string", v[0]);
  val_t *R = roots_push(L, 1);
  val_t r = parse_number(L, STR(v[0])->chars, STR(v[0])->len, &R[0]) ? R[0] : FALSE_V;
  roots_pop(L, R);
  return r;
}

void builtins_num_init(lisp_t *L) {
  static const prim_def_t defs[] = {
      {"+", p_add, 0, -1},
      {"-", p_sub, 1, -1},
      {"*", p_mul, 0, -1},
      {"/", p_div, 1, -1},
      {"quotient", p_quotient, 2, 2},
      {"remainder", p_remainder, 2, 2},
      {"modulo", p_modulo, 2, 2},
      {"=", p_eq, 1, -1},
      {"<", p_lt, 1, -1},
      {">", p_gt, 1, -1},
      {"<=", p_le, 1, -1},
      {">=", p_ge, 1, -1},
      {"min", p_min, 1, -1},
      {"max", p_max, 1, -1},
      {"abs", p_abs, 1, 1},
      {"number?", p_numberp, 1, 1},
      {"integer?", p_integerp, 1, 1},
      {"exact?", p_exactp, 1, 1},
      {"inexact?", p_inexactp, 1, 1},
      {"zero?", p_zerop, 1, 1},
      {"positive?", p_positivep, 1, 1},
      {"negative?", p_negativep, 1, 1},
      {"even?", p_evenp, 1, 1},
      {"odd?", p_oddp, 1, 1},
      {"exact->inexact", p_inexact, 1, 1},
      {"inexact", p_inexact, 1, 1},
      {"inexact->exact", p_exact, 1, 1},
      {"exact", p_exact, 1, 1},
      {"floor", p_floor, 1, 1},
      {"ceiling", p_ceiling, 1, 1},
      {"truncate", p_truncate, 1, 1},
      {"round", p_round, 1, 1},
      {"sqrt", p_sqrt, 1, 1},
      {"expt", p_expt, 2, 2},
      {"gcd", p_gcd, 0, -1},
      {"lcm", p_lcm, 0, -1},
      {"number->string", p_number_to_string, 1, 2},
      {"string->number", p_string_to_number, 1, 1},
      {NULL, NULL, 0, 0},
  };
  define_prims(L, defs);
}
