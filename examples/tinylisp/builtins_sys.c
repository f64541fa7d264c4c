/*
 * builtins_sys.c -- output, load, error, exit, and the GC builtins.
 *
 *   (gc)                  a full collection, then the finalizer drain
 *   (gc-stats)            ((cycles . n) (live-bytes . n) (heap-bytes . n)
 *                          (total-alloc-bytes . n))
 *   (gc-backend)          the symbol gcheap or boehm
 *   (make-weak x)         a weak reference to x
 *   (weak-ref w)          x, or #f once x was collected
 *   (set-finalizer! x f)  call (f x) on the interpreter thread some time
 *                         after x became unreachable: finalizers run at
 *                         drain points, after each top-level form and
 *                         inside (gc); #f clears (see notes below)
 *
 * Finalizer procedures are kept strongly in the interpreter's table, not
 * by the object, so a procedure that refers to its own object keeps that
 * object alive forever (as in Go).  Under gcheap, re-setting or clearing
 * a finalizer cannot return the old table entry, which then stays until
 * exit; under Boehm the old entry is released.
 */
#include <stdlib.h>

#include "gc_shim.h"

static val_t p_display(lisp_t *L, int c, val_t *v) {
  (void)L, (void)c;
  lisp_print(L, stdout, v[0], 0);
  return UNSPEC;
}

static val_t p_write(lisp_t *L, int c, val_t *v) {
  (void)L, (void)c;
  lisp_print(L, stdout, v[0], 1);
  return UNSPEC;
}

static val_t p_newline(lisp_t *L, int c, val_t *v) {
  (void)L, (void)c, (void)v;
  putchar('\n');
  return UNSPEC;
}

static val_t p_write_char(lisp_t *L, int c, val_t *v) {
  (void)c;
  check_type(L, is_char(v[0]), "a character", v[0]);
  putchar((int)char_val(v[0]));
  return UNSPEC;
}

static val_t p_load(lisp_t *L, int c, val_t *v) {
  (void)c;
  check_type(L, is_string(v[0]), "a file name", v[0]);
  /* The name's characters are copied: loading may collect and the
   * string must not be needed afterwards. */
  strbuf_t b = {0};
  sb_add(&b, STR(v[0])->chars, STR(v[0])->len);
  jmp_buf here, *outer = L->err_jmp;
  if (setjmp(here)) {
    L->err_jmp = outer;
    sb_free(&b);
    lisp_unwind(L);
  }
  L->err_jmp = &here;
  lisp_load(L, b.p);
  L->err_jmp = outer;
  sb_free(&b);
  return UNSPEC;
}

static val_t p_error(lisp_t *L, int argc, val_t *v) {
  val_t irritants = list_from(L, argc - 1, v + 1);
  strbuf_t b = {0};
  print_value(&b, v[0], 0);
  /* report() prints before unwinding, and copies nothing: keep the text
   * in a stack buffer so the strbuf can be freed first. */
  char msg[512];
  snprintf(msg, sizeof msg, "%s", b.p ? b.p : "");
  sb_free(&b);
  lisp_error_list(L, msg, irritants);
}

static val_t p_exit(lisp_t *L, int argc, val_t *v) {
  int code = 0;
  if (argc > 0) {
    if (is_fix(v[0])) code = (int)fix_val(v[0]);
    else if (v[0] == FALSE_V) code = 1;
  }
  lisp_exit(L, code);
}

static val_t p_gc(lisp_t *L, int c, val_t *v) {
  (void)c, (void)v;
  shim_collect(L);
  lisp_run_finalizers(L);
  return UNSPEC;
}

static val_t p_gc_stats(lisp_t *L, int c, val_t *v) {
  (void)c, (void)v;
  shim_stats_t st;
  shim_stats(L, &st);
  const struct { const char *name; uint64_t n; } items[] = {
      {"cycles", st.cycles},
      {"live-bytes", st.live_bytes},
      {"heap-bytes", st.heap_bytes},
      {"total-alloc-bytes", st.total_alloc},
  };
  val_t *Q = roots_push(L, 3);
  for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
    uint64_t n = items[i].n > (uint64_t)FIX_MAX ? (uint64_t)FIX_MAX : items[i].n;
    lb_add(L, Q, cons(L, intern_c(L, items[i].name), fix((int64_t)n)));
  }
  val_t r = Q[0];
  roots_pop(L, Q);
  return r;
}

static val_t p_gc_backend(lisp_t *L, int c, val_t *v) {
  (void)c, (void)v;
  return intern_c(L, shim_name());
}

static void need_specials(lisp_t *L, const char *who) {
  const char *why = shim_specials();
  if (why) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", who, why);
    lisp_error(L, msg, UNBOUND);
  }
}

static val_t p_make_weak(lisp_t *L, int c, val_t *v) {
  (void)c;
  need_specials(L, "make-weak");
  val_t *R = roots_push(L, 1);
  weak_t *w = shim_alloc(L, K_WEAK);
  w->hdr = HDR(K_WEAK, 0);
  R[0] = w;
  if (!is_ptr(v[0])) { /* immediates never die */
    w->hdr = HDR(K_WEAK, 1);
    w->imm = v[0];
  } else {
    const char *err = shim_weak_init(L, R[0], v[0]);
    if (err) lisp_error(L, err, UNBOUND);
  }
  roots_pop(L, R);
  return w;
}

static val_t p_weak_ref(lisp_t *L, int c, val_t *v) {
  (void)c;
  check_type(L, is_kind(v[0], K_WEAK), "a weak reference", v[0]);
  if (obj_num(v[0]) == 1) return WEAK(v[0])->imm;
  need_specials(L, "weak-ref");
  return shim_weak_get(L, v[0]);
}

static val_t p_weakp(lisp_t *L, int c, val_t *v) {
  (void)L, (void)c;
  return make_bool(is_kind(v[0], K_WEAK));
}

static val_t p_set_finalizer(lisp_t *L, int c, val_t *v) {
  (void)c;
  need_specials(L, "set-finalizer!");
  check_type(L, is_ptr(v[0]), "a heap object", v[0]);
  check_type(L, is_procedure(v[1]) || v[1] == FALSE_V, "a procedure or #f", v[1]);
  int64_t idx = v[1] == FALSE_V ? -1 : lisp_finalizer_slot(L, v[1]);
  const char *err = shim_set_finalizer(L, v[0], idx);
  if (err) {
    lisp_finalizer_release(L, idx);
    lisp_error(L, err, UNBOUND);
  }
  return UNSPEC;
}

void builtins_sys_init(lisp_t *L) {
  static const prim_def_t defs[] = {
      {"display", p_display, 1, 2},
      {"write", p_write, 1, 2},
      {"newline", p_newline, 0, 1},
      {"write-char", p_write_char, 1, 2},
      {"load", p_load, 1, 1},
      {"error", p_error, 1, -1},
      {"exit", p_exit, 0, 1},
      {"gc", p_gc, 0, 0},
      {"gc-stats", p_gc_stats, 0, 0},
      {"gc-backend", p_gc_backend, 0, 0},
      {"make-weak", p_make_weak, 1, 1},
      {"weak-ref", p_weak_ref, 1, 1},
      {"weak?", p_weakp, 1, 1},
      {"set-finalizer!", p_set_finalizer, 2, 2},
      {NULL, NULL, 0, 0},
  };
  define_prims(L, defs);
}
