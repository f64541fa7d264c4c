/*
 * builtins_data.c -- strings, characters, symbols and vectors.
 *
 * A string is a header object pointing at a NUL-terminated noscan block
 * of characters (bytes; no Unicode awareness).  A vector is a header
 * object pointing at an array of pointer slots.  Stores into either go
 * through the write barrier (shim_write) when they store a pointer; the
 * character block holds no pointers, so character stores are plain.
 */
#include <ctype.h>
#include <string.h>

#include "gc_shim.h"

static string_t *want_string(lisp_t *L, val_t v) {
  check_type(L, is_string(v), "a string", v);
  return STR(v);
}

static vector_t *want_vector(lisp_t *L, val_t v) {
  check_type(L, is_vector(v), "a vector", v);
  return VEC(v);
}

static unsigned want_char(lisp_t *L, val_t v) {
  check_type(L, is_char(v), "a character", v);
  return char_val(v);
}

/* ------------------------------------------------------------- strings */

static val_t p_string_length(lisp_t *L, int c, val_t *v) {
  (void)c;
  return fix((int64_t)want_string(L, v[0])->len);
}

static val_t p_string_ref(lisp_t *L, int c, val_t *v) {
  (void)c;
  string_t *s = want_string(L, v[0]);
  return make_char((unsigned char)s->chars[want_index(L, v[1], s->len)]);
}

static val_t p_string_set(lisp_t *L, int c, val_t *v) {
  (void)c;
  string_t *s = want_string(L, v[0]);
  s->chars[want_index(L, v[1], s->len)] = (char)want_char(L, v[2]);
  return UNSPEC;
}

static val_t p_make_string(lisp_t *L, int argc, val_t *v) {
  int64_t n = want_int(L, v[0]);
  if (n < 0) lisp_error(L, "make-string: negative length", v[0]);
  int ch = argc > 1 ? (int)want_char(L, v[1]) : ' ';
  return make_string_fill(L, (size_t)n, ch);
}

static val_t p_string(lisp_t *L, int argc, val_t *v) {
  for (int i = 0; i < argc; i++) want_char(L, v[i]);
  val_t s = make_string_fill(L, (size_t)argc, ' ');
  for (int i = 0; i < argc; i++) STR(s)->chars[i] = (char)char_val(v[i]);
  return s;
}

static val_t p_string_append(lisp_t *L, int argc, val_t *v) {
  size_t n = 0;
  for (int i = 0; i < argc; i++) n += want_string(L, v[i])->len;
  val_t s = make_string_fill(L, n, ' ');
  size_t k = 0;
  for (int i = 0; i < argc; i++) {
    memcpy(STR(s)->chars + k, STR(v[i])->chars, STR(v[i])->len);
    k += STR(v[i])->len;
  }
  return s;
}

static val_t p_substring(lisp_t *L, int argc, val_t *v) {
  string_t *s = want_string(L, v[0]);
  size_t start = want_index(L, v[1], s->len + 1);
  size_t end = argc > 2 ? want_index(L, v[2], s->len + 1) : s->len;
  if (end < start) lisp_error(L, "substring: end before start", v[2]);
  return make_string(L, s->chars + start, end - start);
}

static val_t p_string_copy(lisp_t *L, int c, val_t *v) {
  (void)c;
  string_t *s = want_string(L, v[0]);
  return make_string(L, s->chars, s->len);
}

static int strcmp2(lisp_t *L, val_t a, val_t b) {
  string_t *x = want_string(L, a), *y = want_string(L, b);
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->chars, y->chars, n);
  if (c) return c < 0 ? -1 : 1;
  return x->len < y->len ? -1 : x->len > y->len;
}

static val_t strcmp_chain(lisp_t *L, int argc, val_t *v, int want) {
  for (int i = 0; i + 1 < argc; i++)
    if (strcmp2(L, v[i], v[i + 1]) != want) return FALSE_V;
  if (argc == 1) want_string(L, v[0]);
  return TRUE_V;
}

static val_t p_string_eq(lisp_t *L, int c, val_t *v) { return strcmp_chain(L, c, v, 0); }
static val_t p_string_lt(lisp_t *L, int c, val_t *v) { return strcmp_chain(L, c, v, -1); }
static val_t p_string_gt(lisp_t *L, int c, val_t *v) { return strcmp_chain(L, c, v, 1); }

static val_t p_string_to_list(lisp_t *L, int c, val_t *v) {
  (void)c;
  string_t *s = want_string(L, v[0]);
  val_t *R = roots_push(L, 1);
  for (size_t i = s->len; i-- > 0;)
    R[0] = cons(L, make_char((unsigned char)s->chars[i]), R[0]);
  val_t r = R[0];
  roots_pop(L, R);
  return r;
}

static val_t p_list_to_string(lisp_t *L, int c, val_t *v) {
  (void)c;
  int64_t n = list_length(v[0]);
  check_type(L, n >= 0, "a list of characters", v[0]);
  for (val_t p = v[0]; is_pair(p); p = cdr(p)) want_char(L, car(p));
  val_t s = make_string_fill(L, (size_t)n, ' ');
  size_t i = 0;
  for (val_t p = v[0]; is_pair(p); p = cdr(p)) STR(s)->chars[i++] = (char)char_val(car(p));
  return s;
}

static val_t map_case(lisp_t *L, val_t str, int (*f)(int)) {
  string_t *s = want_string(L, str);
  val_t r = make_string(L, s->chars, s->len);
  for (size_t i = 0; i < STR(r)->len; i++)
    STR(r)->chars[i] = (char)f((unsigned char)STR(r)->chars[i]);
  return r;
}
static val_t p_string_upcase(lisp_t *L, int c, val_t *v) { (void)c; return map_case(L, v[0], toupper); }
static val_t p_string_downcase(lisp_t *L, int c, val_t *v) { (void)c; return map_case(L, v[0], tolower); }

/* ------------------------------------------------------------- symbols */

static val_t p_symbol_to_string(lisp_t *L, int c, val_t *v) {
  (void)c;
  check_type(L, is_symbol(v[0]), "a symbol", v[0]);
  string_t *n = STR(SYM(v[0])->name);
  return make_string(L, n->chars, n->len); /* a copy: names stay immutable */
}

static val_t p_string_to_symbol(lisp_t *L, int c, val_t *v) {
  (void)c;
  string_t *s = want_string(L, v[0]);
  return intern(L, s->chars, s->len);
}

/* ---------------------------------------------------------- characters */

static val_t p_char_to_integer(lisp_t *L, int c, val_t *v) { (void)c; return fix(want_char(L, v[0])); }

static val_t p_integer_to_char(lisp_t *L, int c, val_t *v) {
  (void)c;
  int64_t n = want_int(L, v[0]);
  if (n < 0 || n > 255) lisp_error(L, "integer->char: out of range", v[0]);
  return make_char((unsigned)n);
}

static val_t char_chain(lisp_t *L, int argc, val_t *v, int op) {
  for (int i = 0; i < argc; i++) want_char(L, v[i]);
  for (int i = 0; i + 1 < argc; i++) {
    unsigned a = char_val(v[i]), b = char_val(v[i + 1]);
    if (!(op == '=' ? a == b : op == '<' ? a < b : a > b)) return FALSE_V;
  }
  return TRUE_V;
}
static val_t p_char_eq(lisp_t *L, int c, val_t *v) { return char_chain(L, c, v, '='); }
static val_t p_char_lt(lisp_t *L, int c, val_t *v) { return char_chain(L, c, v, '<'); }
static val_t p_char_gt(lisp_t *L, int c, val_t *v) { return char_chain(L, c, v, '>'); }

#define CHAR_PRED(name, f)                               \
  static val_t name(lisp_t *L, int c, val_t *v) {        \
    (void)c;                                             \
    return make_bool(f((int)want_char(L, v[0])) != 0);   \
  }
CHAR_PRED(p_char_alphabetic, isalpha)
CHAR_PRED(p_char_numeric, isdigit)
CHAR_PRED(p_char_whitespace, isspace)

static val_t p_char_upcase(lisp_t *L, int c, val_t *v) { (void)c; return make_char((unsigned)toupper((int)want_char(L, v[0]))); }
static val_t p_char_downcase(lisp_t *L, int c, val_t *v) { (void)c; return make_char((unsigned)tolower((int)want_char(L, v[0]))); }

/* ------------------------------------------------------------- vectors */

static val_t p_vector(lisp_t *L, int argc, val_t *argv) {
  val_t v = make_vector(L, (size_t)argc, FALSE_V);
  for (int i = 0; i < argc; i++) shim_write(L, VEC(v)->items, &VEC(v)->items[i], argv[i]);
  return v;
}

static val_t p_make_vector(lisp_t *L, int argc, val_t *argv) {
  int64_t n = want_int(L, argv[0]);
  if (n < 0) lisp_error(L, "make-vector: negative length", argv[0]);
  return make_vector(L, (size_t)n, argc > 1 ? argv[1] : FALSE_V);
}

static val_t p_vector_length(lisp_t *L, int c, val_t *v) {
  (void)c;
  return fix((int64_t)want_vector(L, v[0])->len);
}

static val_t p_vector_ref(lisp_t *L, int c, val_t *v) {
  (void)c;
  vector_t *vec = want_vector(L, v[0]);
  return vec->items[want_index(L, v[1], vec->len)];
}

static val_t p_vector_set(lisp_t *L, int c, val_t *v) {
  (void)c;
  vector_t *vec = want_vector(L, v[0]);
  size_t i = want_index(L, v[1], vec->len);
  shim_write(L, vec->items, &vec->items[i], v[2]);
  return UNSPEC;
}

static val_t p_vector_fill(lisp_t *L, int c, val_t *v) {
  (void)c;
  vector_t *vec = want_vector(L, v[0]);
  for (size_t i = 0; i < vec->len; i++) shim_write(L, vec->items, &vec->items[i], v[1]);
  return UNSPEC;
}

static val_t p_vector_to_list(lisp_t *L, int c, val_t *v) {
  (void)c;
  vector_t *vec = want_vector(L, v[0]);
  val_t *R = roots_push(L, 1);
  for (size_t i = vec->len; i-- > 0;) R[0] = cons(L, vec->items[i], R[0]);
  val_t r = R[0];
  roots_pop(L, R);
  return r;
}

static val_t p_list_to_vector(lisp_t *L, int c, val_t *v) {
  (void)c;
  int64_t n = list_length(v[0]);
  check_type(L, n >= 0, "a proper list", v[0]);
  val_t vec = make_vector(L, (size_t)n, FALSE_V);
  size_t i = 0;
  for (val_t p = v[0]; is_pair(p); p = cdr(p), i++)
    shim_write(L, VEC(vec)->items, &VEC(vec)->items[i], car(p));
  return vec;
}

void builtins_data_init(lisp_t *L) {
  static const prim_def_t defs[] = {
      {"string-length", p_string_length, 1, 1},
      {"string-ref", p_string_ref, 2, 2},
      {"string-set!", p_string_set, 3, 3},
      {"make-string", p_make_string, 1, 2},
      {"string", p_string, 0, -1},
      {"string-append", p_string_append, 0, -1},
      {"substring", p_substring, 2, 3},
      {"string-copy", p_string_copy, 1, 1},
      {"string=?", p_string_eq, 1, -1},
      {"string<?", p_string_lt, 1, -1},
      {"string>?", p_string_gt, 1, -1},
      {"string->list", p_string_to_list, 1, 1},
      {"list->string", p_list_to_string, 1, 1},
      {"string-upcase", p_string_upcase, 1, 1},
      {"string-downcase", p_string_downcase, 1, 1},
      {"symbol->string", p_symbol_to_string, 1, 1},
      {"string->symbol", p_string_to_symbol, 1, 1},
      {"char->integer", p_char_to_integer, 1, 1},
      {"integer->char", p_integer_to_char, 1, 1},
      {"char=?", p_char_eq, 1, -1},
      {"char<?", p_char_lt, 1, -1},
      {"char>?", p_char_gt, 1, -1},
      {"char-alphabetic?", p_char_alphabetic, 1, 1},
      {"char-numeric?", p_char_numeric, 1, 1},
      {"char-whitespace?", p_char_whitespace, 1, 1},
      {"char-upcase", p_char_upcase, 1, 1},
      {"char-downcase", p_char_downcase, 1, 1},
      {"vector", p_vector, 0, -1},
      {"make-vector", p_make_vector, 1, 2},
      {"vector-length", p_vector_length, 1, 1},
      {"vector-ref", p_vector_ref, 2, 2},
      {"vector-set!", p_vector_set, 3, 3},
      {"vector-fill!", p_vector_fill, 2, 2},
      {"vector->list", p_vector_to_list, 1, 1},
      {"list->vector", p_list_to_vector, 1, 1},
      {NULL, NULL, 0, 0},
  };
  define_prims(L, defs);
}
