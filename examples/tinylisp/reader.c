/*
 * reader.c -- text to data: the S-expression reader and `load`.
 *
 * A recursive-descent reader over an in-memory buffer.  It knows lists
 * (with dotted tails; [] as well as ()), 'x `x ,x ,@x, strings with \n \t
 * \r \\ \" escapes, #t/#f/#true/#false, #\c characters (#\space,
 * #\newline, #\tab, #\nul), #(vectors), integers, decimals, symbols, ;
 * line comments, #| block |# comments and #; datum comments.
 *
 * Every datum under construction sits in shadow-stack slots (the caller's
 * `out` slot, plus list builders), since each cons may collect.  Reaching
 * the end of the text inside a datum reports READ_INCOMPLETE, so the REPL
 * can read another line and try again.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gc_shim.h"

enum { READ_CLOSE = 10, READ_DOT };

static int peek(reader_t *r) {
  return r->pos < r->len ? (unsigned char)r->src[r->pos] : -1;
}

static int next(reader_t *r) {
  int c = peek(r);
  if (c >= 0) {
    r->pos++;
    if (c == '\n') r->line++;
  }
  return c;
}

static _Noreturn void read_error(lisp_t *L, reader_t *r, const char *what) {
  char msg[200];
  snprintf(msg, sizeof msg, "read: %s (%s line %d)", what,
           r->name ? r->name : "input", r->line);
  lisp_error(L, msg, UNBOUND);
}

static int is_delim(int c) {
  return c < 0 || isspace(c) || c == '(' || c == ')' || c == '[' ||
         c == ']' || c == '"' || c == ';' || c == '\'' || c == '`' || c == ',';
}

/* Skip blanks and comments; READ_INCOMPLETE inside an unfinished #|. */
static int skip_space(reader_t *r) {
  for (;;) {
    int c = peek(r);
    if (c >= 0 && isspace(c)) {
      next(r);
    } else if (c == ';') {
      while ((c = peek(r)) >= 0 && c != '\n') next(r);
    } else if (c == '#' && r->pos + 1 < r->len && r->src[r->pos + 1] == '|') {
      int depth = 0;
      do {
        c = next(r);
        if (c < 0) return READ_INCOMPLETE;
        if (c == '#' && peek(r) == '|') next(r), depth++;
        else if (c == '|' && peek(r) == '#') next(r), depth--;
      } while (depth > 0);
    } else {
      return READ_OK;
    }
  }
}

/* Parse a whole token as a number; 0 when it is not one. */
int parse_number(lisp_t *L, const char *s, size_t n, val_t *out) {
  char buf[128];
  if (n == 0 || n >= sizeof buf) return 0;
  memcpy(buf, s, n);
  buf[n] = 0;
  size_t i = (buf[0] == '+' || buf[0] == '-') ? 1 : 0;
  if (i == n) return 0;
  int digits = 0, other = 0;
  for (size_t k = i; k < n; k++) {
    if (isdigit((unsigned char)buf[k])) digits++;
    else if (buf[k] == '.' || buf[k] == 'e' || buf[k] == 'E' ||
             ((buf[k] == '+' || buf[k] == '-') && (buf[k - 1] == 'e' || buf[k - 1] == 'E')))
      other++;
    else return 0;
  }
  if (!digits) return 0;
  if (!other) {
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE || v < FIX_MIN || v > FIX_MAX)
      lisp_error(L, "integer literal out of fixnum range (62-bit)",
                 make_string(L, s, n));
    *out = fix(v);
    return 1;
  }
  char *end;
  double d = strtod(buf, &end);
  if (*end) return 0;
  *out = make_flonum(L, d);
  return 1;
}

static int read_datum(lisp_t *L, reader_t *r, val_t *out);

static int read_list(lisp_t *L, reader_t *r, val_t *out, int close) {
  val_t *Q = roots_push(L, 4); /* list builder Q[0..2], item Q[3] */
  int st;
  for (;;) {
    st = read_datum(L, r, &Q[3]);
    if (st == READ_CLOSE) {
      if (r->src[r->pos - 1] != close) read_error(L, r, "mismatched brackets");
      *out = Q[0];
      st = READ_OK;
      break;
    }
    if (st == READ_DOT) {
      if (Q[0] == NIL) read_error(L, r, "nothing before '.'");
      st = read_datum(L, r, &Q[3]);
      if (st == READ_EOF || st == READ_INCOMPLETE) {
        st = READ_INCOMPLETE;
        break;
      }
      if (st != READ_OK) read_error(L, r, "bad dotted list");
      shim_write(L, Q[1], &PAIR(Q[1])->cdr, Q[3]);
      st = read_datum(L, r, &Q[3]);
      if (st == READ_EOF || st == READ_INCOMPLETE) {
        st = READ_INCOMPLETE;
        break;
      }
      if (st != READ_CLOSE) read_error(L, r, "more than one datum after '.'");
      *out = Q[0];
      st = READ_OK;
      break;
    }
    if (st == READ_EOF || st == READ_INCOMPLETE) {
      st = READ_INCOMPLETE;
      break;
    }
    lb_add(L, Q, Q[3]);
  }
  roots_pop(L, Q);
  return st;
}

static int read_string(lisp_t *L, reader_t *r, val_t *out) {
  strbuf_t b = {0};
  for (;;) {
    int c = next(r);
    if (c < 0) {
      sb_free(&b);
      return READ_INCOMPLETE;
    }
    if (c == '"') break;
    if (c == '\\') {
      c = next(r);
      switch (c) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'a': c = '\a'; break;
      case '0': c = '\0'; break;
      case -1: sb_free(&b); return READ_INCOMPLETE;
      default: break;
      }
    }
    sb_addc(&b, (char)c);
  }
  *out = make_string(L, b.p ? b.p : "", b.len);
  sb_free(&b);
  return READ_OK;
}

static const struct { const char *name; int c; } char_names[] = {
    {"space", ' '}, {"newline", '\n'}, {"tab", '\t'}, {"nul", 0},
    {"null", 0},    {"return", '\r'},  {"linefeed", '\n'}, {"altmode", 27},
    {"escape", 27}, {"delete", 127},   {"alarm", 7},  {"backspace", 8},
};

static int read_hash(lisp_t *L, reader_t *r, val_t *out) {
  int c = next(r);
  if (c < 0) return READ_INCOMPLETE;
  if (c == '(') {
    int st = read_list(L, r, out, ')');
    if (st != READ_OK) return st;
    int64_t n = list_length(*out);
    if (n < 0) read_error(L, r, "dotted vector literal");
    val_t v = make_vector(L, (size_t)n, NIL);
    val_t l = *out;
    for (int64_t i = 0; i < n; i++, l = cdr(l))
      shim_write(L, VEC(v)->items, &VEC(v)->items[i], car(l));
    *out = v;
    return READ_OK;
  }
  if (c == ';') { /* datum comment: read one datum and drop it */
    int st = read_datum(L, r, out);
    if (st == READ_EOF) return READ_INCOMPLETE;
    if (st != READ_OK) return st;
    return read_datum(L, r, out);
  }
  if (c == '\\') {
    size_t start = r->pos;
    if (next(r) < 0) return READ_INCOMPLETE;
    while (!is_delim(peek(r))) next(r);
    size_t n = r->pos - start;
    const char *s = r->src + start;
    if (n == 1) {
      *out = make_char((unsigned char)s[0]);
      return READ_OK;
    }
    for (size_t i = 0; i < sizeof char_names / sizeof char_names[0]; i++) {
      if (strlen(char_names[i].name) == n && strncmp(char_names[i].name, s, n) == 0) {
        *out = make_char((unsigned)char_names[i].c);
        return READ_OK;
      }
    }
    if (s[0] == 'x' && n <= 4) {
      char hex[4] = {0};
      memcpy(hex, s + 1, n - 1);
      char *end;
      long v = strtol(hex, &end, 16);
      if (!*end) {
        *out = make_char((unsigned)v);
        return READ_OK;
      }
    }
    read_error(L, r, "unknown character name");
  }
  size_t start = r->pos - 1;
  while (!is_delim(peek(r))) next(r);
  size_t n = r->pos - start;
  const char *s = r->src + start;
  if ((n == 1 && s[0] == 't') || (n == 4 && !strncmp(s, "true", 4))) {
    *out = TRUE_V;
    return READ_OK;
  }
  if ((n == 1 && s[0] == 'f') || (n == 5 && !strncmp(s, "false", 5))) {
    *out = FALSE_V;
    return READ_OK;
  }
  read_error(L, r, "unknown # syntax");
}

static int read_quoted(lisp_t *L, reader_t *r, val_t *out, val_t sym) {
  val_t *S = roots_push1(L, sym);
  int st = read_datum(L, r, out);
  if (st == READ_OK) {
    *out = cons(L, *out, NIL);
    *out = cons(L, S[0], *out);
  } else if (st == READ_EOF) {
    st = READ_INCOMPLETE;
  } else if (st != READ_INCOMPLETE) {
    read_error(L, r, "nothing to quote");
  }
  roots_pop(L, S);
  return st;
}

static int read_datum(lisp_t *L, reader_t *r, val_t *out) {
  if (skip_space(r) == READ_INCOMPLETE) return READ_INCOMPLETE;
  int c = peek(r);
  if (c < 0) return READ_EOF;
  next(r);
  switch (c) {
  case '(': return read_list(L, r, out, ')');
  case '[': return read_list(L, r, out, ']');
  case ')':
  case ']': return READ_CLOSE;
  case '\'': return read_quoted(L, r, out, L->g.s_quote);
  case '`': return read_quoted(L, r, out, L->g.s_quasiquote);
  case ',':
    if (peek(r) == '@') {
      next(r);
      return read_quoted(L, r, out, L->g.s_unquote_splicing);
    }
    return read_quoted(L, r, out, L->g.s_unquote);
  case '"': return read_string(L, r, out);
  case '#': return read_hash(L, r, out);
  default: break;
  }
  size_t start = r->pos - 1;
  while (!is_delim(peek(r))) next(r);
  size_t n = r->pos - start;
  const char *s = r->src + start;
  if (n == 1 && s[0] == '.') return READ_DOT;
  if (parse_number(L, s, n, out)) return READ_OK;
  *out = intern(L, s, n);
  return READ_OK;
}

int lisp_read(lisp_t *L, reader_t *r, val_t *out) {
  int st = read_datum(L, r, out);
  if (st == READ_CLOSE) read_error(L, r, "unexpected ')'");
  if (st == READ_DOT) read_error(L, r, "unexpected '.'");
  return st;
}

char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  strbuf_t b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_add(&b, chunk, n);
  fclose(f);
  sb_addc(&b, 0);
  *len = b.len - 1;
  return b.p;
}

/* Evaluate each datum of a file at top level, draining finalizers after
 * each form.  The text buffer is freed on the way out, also on errors. */
void lisp_load(lisp_t *L, const char *path) {
  size_t len;
  shim_blocking_enter(L);
  char *src = read_file(path, &len);
  int err = errno;
  shim_blocking_leave(L);
  if (!src) {
    char msg[300];
    snprintf(msg, sizeof msg, "load: cannot read %s: %s", path, strerror(err));
    lisp_error(L, msg, UNBOUND);
  }
  jmp_buf here, *outer = L->err_jmp;
  val_t *S = roots_push(L, 1);
  if (setjmp(here)) {
    L->err_jmp = outer;
    free(src);
    roots_pop(L, S);
    lisp_unwind(L);
  }
  L->err_jmp = &here;
  reader_t r = {src, 0, len, 1, path};
  for (;;) {
    int st = lisp_read(L, &r, &S[0]);
    if (st == READ_EOF) break;
    if (st == READ_INCOMPLETE) read_error(L, &r, "unexpected end of file");
    lisp_eval(L, S[0], NIL);
    lisp_run_finalizers(L);
  }
  L->err_jmp = outer;
  free(src);
  roots_pop(L, S);
}
