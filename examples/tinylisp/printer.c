/*
 * printer.c -- data to text: display and write.
 *
 * Printing fills a malloc'd strbuf and never allocates from the GC, so no
 * collection can happen while it walks a structure and it needs no roots.
 * `write` quotes strings and characters so the reader can read them back;
 * `display` prints them raw.  Flonums print in the shortest form that
 * reads back to the same double, always with a '.' or exponent so they
 * stay distinguishable from fixnums.  Cycles are not detected.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc_shim.h"

void sb_add(strbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      fprintf(stderr, "tinylisp: out of memory in the printer\n");
      exit(70);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void sb_addc(strbuf_t *b, char c) { sb_add(b, &c, 1); }

static void sb_adds(strbuf_t *b, const char *s) { sb_add(b, s, strlen(s)); }

void sb_free(strbuf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static void format_double(strbuf_t *b, double d) {
  char buf[64];
  if (isnan(d)) {
    sb_adds(b, "+nan.0");
    return;
  }
  if (isinf(d)) {
    sb_adds(b, d > 0 ? "+inf.0" : "-inf.0");
    return;
  }
  /* The fewest significant digits that read back as d. */
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (strtod(buf, NULL) == d) break;
  }
  /* buf is [-]D[.DDD]e[+-]XX: split into sign, digits and exponent. */
  char digits[32];
  size_t nd = 0;
  const char *p = buf;
  if (*p == '-') sb_addc(b, *p++);
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[nd++] = *p;
  int exp = atoi(p + 1);
  if (exp < -4 || exp >= 16) { /* scientific, like 1.5e+20 */
    sb_addc(b, digits[0]);
    if (nd > 1) {
      sb_addc(b, '.');
      sb_add(b, digits + 1, nd - 1);
    }
    sb_adds(b, p);
    return;
  }
  if (exp < 0) { /* 0.000DDD */
    sb_adds(b, "0.");
    for (int i = -1; i > exp; i--) sb_addc(b, '0');
    sb_add(b, digits, nd);
    return;
  }
  for (int i = 0; i <= exp; i++) sb_addc(b, (size_t)i < nd ? digits[i] : '0');
  sb_addc(b, '.');
  if ((size_t)exp + 1 < nd)
    sb_add(b, digits + exp + 1, nd - (size_t)exp - 1);
  else
    sb_addc(b, '0');
}

void format_number(strbuf_t *b, val_t v) {
  if (is_fix(v)) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)fix_val(v));
    sb_adds(b, buf);
  } else {
    format_double(b, FLO(v)->d);
  }
}

static void print_char(strbuf_t *b, unsigned c, int write) {
  if (!write) {
    sb_addc(b, (char)c);
    return;
  }
  switch (c) {
  case ' ': sb_adds(b, "#\\space"); return;
  case '\n': sb_adds(b, "#\\newline"); return;
  case '\t': sb_adds(b, "#\\tab"); return;
  case '\r': sb_adds(b, "#\\return"); return;
  case 0: sb_adds(b, "#\\nul"); return;
  default: break;
  }
  char buf[16];
  if (c < 32 || c >= 127)
    snprintf(buf, sizeof buf, "#\\x%x", c);
  else
    snprintf(buf, sizeof buf, "#\\%c", (char)c);
  sb_adds(b, buf);
}

static void print_string(strbuf_t *b, val_t s, int write) {
  string_t *str = STR(s);
  if (!write) {
    sb_add(b, str->chars, str->len);
    return;
  }
  sb_addc(b, '"');
  for (size_t i = 0; i < str->len; i++) {
    char c = str->chars[i];
    switch (c) {
    case '"': sb_adds(b, "\\\""); break;
    case '\\': sb_adds(b, "\\\\"); break;
    case '\n': sb_adds(b, "\\n"); break;
    case '\t': sb_adds(b, "\\t"); break;
    case '\r': sb_adds(b, "\\r"); break;
    default: sb_addc(b, c); break;
    }
  }
  sb_addc(b, '"');
}

void print_value(strbuf_t *b, val_t v, int write) {
  if (is_fix(v)) {
    format_number(b, v);
    return;
  }
  if (is_char(v)) {
    print_char(b, char_val(v), write);
    return;
  }
  if (!is_ptr(v)) {
    const char *s = "#<unknown>";
    if (v == NIL) s = "()";
    else if (v == TRUE_V) s = "#t";
    else if (v == FALSE_V) s = "#f";
    else if (v == UNSPEC) s = "#<unspecified>";
    else if (v == EOF_V) s = "#<eof>";
    else if (v == UNBOUND) s = "#<unbound>";
    sb_adds(b, s);
    return;
  }
  switch (obj_kind(v)) {
  case K_PAIR:
    sb_addc(b, '(');
    for (;;) {
      print_value(b, car(v), write);
      v = cdr(v);
      if (!is_pair(v)) break;
      sb_addc(b, ' ');
    }
    if (v != NIL) {
      sb_adds(b, " . ");
      print_value(b, v, write);
    }
    sb_addc(b, ')');
    return;
  case K_STRING: print_string(b, v, write); return;
  case K_SYMBOL: sb_add(b, sym_name(v), STR(SYM(v)->name)->len); return;
  case K_FLONUM: format_number(b, v); return;
  case K_VECTOR:
    sb_adds(b, "#(");
    for (size_t i = 0; i < VEC(v)->len; i++) {
      if (i) sb_addc(b, ' ');
      print_value(b, VEC(v)->items[i], write);
    }
    sb_addc(b, ')');
    return;
  case K_CLOSURE:
    sb_adds(b, "#<procedure");
    if (is_symbol(CLO(v)->name)) {
      sb_addc(b, ' ');
      sb_adds(b, sym_name(CLO(v)->name));
    }
    sb_addc(b, '>');
    return;
  case K_PRIM:
    sb_adds(b, "#<primitive ");
    sb_adds(b, PRIM(v)->name);
    sb_addc(b, '>');
    return;
  case K_FRAME: sb_adds(b, "#<environment>"); return;
  case K_WEAK: sb_adds(b, "#<weak>"); return;
  default: sb_adds(b, "#<object>"); return;
  }
}

/* The text is built first; the write itself may block (a full pipe), so
 * it runs in a blocking region, touching no heap memory. */
void lisp_print(lisp_t *L, FILE *f, val_t v, int write) {
  strbuf_t b = {0};
  print_value(&b, v, write);
  if (b.len) {
    shim_blocking_enter(L);
    fwrite(b.p, 1, b.len, f);
    shim_blocking_leave(L);
  }
  sb_free(&b);
}
