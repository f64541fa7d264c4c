/*
 * main.c -- tinylisp's command line: run a file, evaluate an expression,
 * or read-eval-print on stdin.
 *
 *   tinylisp FILE.scm     evaluate the file's forms; exit 1 on an error
 *   tinylisp -e "EXPR"    evaluate the forms in EXPR, printing each value
 *   tinylisp              a REPL on stdin (prompts only on a terminal);
 *                         an error abandons the rest of the input line
 *
 * Values are printed with `write`; the unspecified value is not printed.
 * Finalizers are drained after every top-level form.  The GC is chosen at
 * build time (gc_shim.h); GCHEAP_* environment variables tune gcheap.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc_shim.h"

enum { CHUNK_DONE, CHUNK_INCOMPLETE, CHUNK_ERROR };

/* Evaluate every complete datum in src[0..len).  *consumed: how much of
 * src was used (all of it on an error, which discards the rest). */
static int eval_chunk(lisp_t *L, const char *src, size_t n, const char *name,
                      int print, size_t *consumed) {
  val_t *S = roots_push(L, 1);
  reader_t r = {src, 0, n, 1, name};
  volatile size_t done = 0, len = n;
  jmp_buf here;
  if (setjmp(here)) {
    L->err_jmp = NULL;
    L->draining = 0;
    roots_pop(L, S);
    *consumed = len;
    return CHUNK_ERROR;
  }
  L->err_jmp = &here;
  int st;
  for (;;) {
    st = lisp_read(L, &r, &S[0]);
    if (st == READ_EOF) {
      done = len;
      break;
    }
    if (st == READ_INCOMPLETE) break;
    S[0] = lisp_eval(L, S[0], NIL);
    if (print && S[0] != UNSPEC) {
      lisp_print(L, stdout, S[0], 1);
      putchar('\n');
    }
    lisp_run_finalizers(L);
    done = r.pos;
  }
  L->err_jmp = NULL;
  roots_pop(L, S);
  *consumed = done;
  return st == READ_INCOMPLETE ? CHUNK_INCOMPLETE : CHUNK_DONE;
}

static int repl(lisp_t *L) {
  int tty = isatty(0);
  strbuf_t acc = {0};
  char *line = NULL;
  size_t cap = 0;
  for (;;) {
    if (tty) {
      fputs(acc.len ? "... " : "> ", stdout);
      fflush(stdout);
    }
    shim_blocking_enter(L);
    ssize_t n = getline(&line, &cap, stdin);
    shim_blocking_leave(L);
    if (n < 0) break;
    sb_add(&acc, line, (size_t)n);
    size_t used;
    eval_chunk(L, acc.p, acc.len, "stdin", 1, &used);
    memmove(acc.p, acc.p + used, acc.len - used);
    acc.len -= used;
    fflush(stdout);
  }
  int rc = 0;
  for (size_t i = 0; i < acc.len; i++)
    if (acc.p[i] != ' ' && acc.p[i] != '\n' && acc.p[i] != '\t') {
      fflush(stdout);
      fprintf(stderr, "error: unexpected end of input\n");
      rc = 1;
      break;
    }
  if (tty) putchar('\n');
  free(line);
  sb_free(&acc);
  return rc;
}

static void usage(void) {
  fputs("usage: tinylisp [FILE.scm | -e EXPR]\n"
        "  with no arguments, a REPL reads stdin\n",
        stderr);
}

int main(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    usage();
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "-e") && argc != 3) {
    usage();
    return 2;
  }
  lisp_t *L = lisp_new();
  int rc = 0;
  if (argc > 1 && !strcmp(argv[1], "-e")) {
    size_t used;
    int st = eval_chunk(L, argv[2], strlen(argv[2]), "-e", 1, &used);
    if (st == CHUNK_INCOMPLETE) {
      fflush(stdout);
      fprintf(stderr, "error: unexpected end of expression\n");
    }
    rc = st != CHUNK_DONE;
  } else if (argc > 1) {
    lisp_load(L, argv[1]); /* errors exit with status 1 */
  } else {
    rc = repl(L);
  }
  lisp_exit(L, rc);
}
