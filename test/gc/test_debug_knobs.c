/*
 * test_debug_knobs.c -- each GCHEAP_DEBUG knob does what docs/tuning.md
 * says, and catches what it is for.
 *
 * Each heap here is made with its own GCHEAP_DEBUG (set around
 * gc_heap_new, which reads it once), whatever the suite's environment.
 * A knob that must abort or fault runs in a forked child; the parent checks
 * how the child ended and what it wrote to stderr.  Children install a
 * SIGSEGV/SIGBUS handler that exits with FAULT_EXIT (a plain death by
 * signal would do, but sanitizers turn it into an exit of their own).
 *
 *   clobberfree   a write through a stale pointer into a freed slot aborts
 *                 with the slot's address and the bad byte: at the slot's
 *                 reuse, and at the next sweep that finds it still free;
 *                 without a stale write, churn runs clean and every new
 *                 object reads zero
 *   efence        every object starts a page of its own, tiny ones too; a
 *                 freed object's address is never handed out again; a
 *                 stale read faults (and does not without the knob)
 *   verify        a clean heap passes; a planted dangling pointer aborts
 *                 the next cycle with gc_verify's report
 *   checkmark     concurrent cycles with the barrier re-checked run clean;
 *                 a root the host reports to one mark only is caught
 *   harddecommit  after gc_release_memory a stale pointer into released
 *                 pages faults (and reads zero without the knob); released
 *                 pages are usable again when a span takes them
 *
 * Heaps here never scan thread stacks, so a pointer held only in a local
 * variable is stale once its object is unreachable from the roots.
 * TEST_VERBOSE=1 prints what every child wrote to stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap.h"
#include "testutil.h"

#define FAULT_EXIT 77
#define PAGE GCH_PAGE_SIZE

/* A heap made with GCHEAP_DEBUG=debug (NULL: unset); the suite's value is
 * put back afterwards. */
static gc_heap_t *knob_heap(const char *debug, const gc_config_t *cfg) {
  const char *old = getenv("GCHEAP_DEBUG");
  char *saved = old ? strdup(old) : NULL;
  if (debug) setenv("GCHEAP_DEBUG", debug, 1);
  else unsetenv("GCHEAP_DEBUG");
  gc_heap_t *h = test_heap(cfg);
  if (saved) setenv("GCHEAP_DEBUG", saved, 1);
  else unsetenv("GCHEAP_DEBUG");
  free(saved);
  return h;
}

/* ------------------------------------------------------------- children */

typedef struct child {
  int status;
  char err[8192]; /* what it wrote to stderr (truncated) */
} child_t;

static void on_fault(int sig) {
  (void)sig;
  _exit(FAULT_EXIT);
}

static void catch_faults(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fault;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
}

/* Run fn(arg) in a child whose stderr is captured; fn's return value is
 * the child's exit status. */
static void run_child(int (*fn)(int), int arg, child_t *c) {
  int fd[2];
  REQUIRE(pipe(fd) == 0);
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], 2);
    catch_faults();
    int rc = fn(arg);
    fflush(NULL);
    _exit(rc);
  }
  close(fd[1]);
  size_t n = 0;
  ssize_t r;
  while ((r = read(fd[0], c->err + n, sizeof c->err - 1 - n)) > 0) n += (size_t)r;
  c->err[n] = 0;
  close(fd[0]);
  REQUIRE(waitpid(pid, &c->status, 0) == pid);
  if (getenv("TEST_VERBOSE")) fprintf(stderr, "--- child %d:\n%s", arg, c->err);
}

static bool child_aborted(const child_t *c) {
  return WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT;
}

static bool child_exited(const child_t *c, int code) {
  return WIFEXITED(c->status) && WEXITSTATUS(c->status) == code;
}

static void show_child(const char *what, const child_t *c) {
  fprintf(stderr, "%s: child status 0x%x, stderr:\n%s\n", what, c->status, c->err);
}

/* The address the child announced with "stale %p", as text. */
static bool child_stale(const child_t *c, char *out, size_t n) {
  const char *s = strstr(c->err, "stale ");
  if (!s) return false;
  s += 6;
  size_t k = strcspn(s, "\n");
  if (k == 0 || k >= n) return false;
  memcpy(out, s, k);
  out[k] = 0;
  return true;
}

/* ---------------------------------------------------------- clobberfree */

/* Objects of the clobberfree children: size and gc_malloc flags. */
static const struct { size_t size; unsigned flags; } clobber_kinds[] = {
    {48, GCH_NOSCAN},   /* gc_malloc's fast path */
    {200, 0},           /* conservative, heap bits */
    {1024, 0},          /* conservative, type header in the slot */
};
#define NKINDS (sizeof clobber_kinds / sizeof clobber_kinds[0])

/* arg = kind * 2 + how: a live object keeps the span; its neighbour dies,
 * is written through a stale pointer at byte 5, and then how = 0: an
 * object of the class is allocated (the span is cached again, checked),
 * how = 1: the heap is collected again (the sweep finds the slot free). */
static int clobber_child(int arg) {
  size_t size = clobber_kinds[arg / 2].size;
  unsigned flags = clobber_kinds[arg / 2].flags;
  gc_heap_t *h = knob_heap("clobberfree", NULL);
  static void *keep[2];
  REQUIRE(gc_root_add(h, keep, sizeof keep, GCH_ROOT_PRECISE) == GCH_OK);
  keep[0] = gc_malloc(h, size, flags);
  keep[1] = gc_malloc(h, size, flags);
  REQUIRE(keep[0] && keep[1]);
  REQUIRE(span_of(h, (uintptr_t)keep[0]) == span_of(h, (uintptr_t)keep[1]));
  unsigned char *stale = keep[1];
  keep[1] = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_size_of(h, stale) == 0); /* freed */
  /* The whole slot is poisoned (the user part of a header slot shown). */
  for (size_t i = 0; i < size; i++)
    if (stale[i] != GCH_CLOBBER_BYTE) {
      fprintf(stderr, "byte %zu of the freed slot is 0x%02x\n", i, stale[i]);
      return 3;
    }
  fprintf(stderr, "stale %p\n", (void *)stale);
  ((volatile unsigned char *)stale)[5] = 1;
  if (arg % 2 == 0) {
    for (int i = 0; i < 1000; i++) REQUIRE(gc_malloc(h, size, flags));
  } else {
    REQUIRE(gc_collect(h) == GCH_OK);
  }
  return 0; /* not caught */
}

static void test_clobberfree_catches(void) {
  for (int arg = 0; arg < (int)(2 * NKINDS); arg++) {
    child_t c;
    run_child(clobber_child, arg, &c);
    char addr[64];
    if (!child_aborted(&c) || !child_stale(&c, addr, sizeof addr)) {
      show_child("clobberfree", &c);
      CHECK(!"clobberfree did not abort on a write after free");
      continue;
    }
    /* The header of a header slot is before the user pointer: the fatal
     * line names the slot; its offset is that of the user's byte 5. */
    const char *line = strstr(c.err, "gcheap: fatal: GCHEAP_DEBUG=clobberfree");
    bool header = clobber_kinds[arg / 2].size > 512 && !clobber_kinds[arg / 2].flags;
    char slot[64];
    snprintf(slot, sizeof slot, "%p",
             (void *)(strtoull(addr, NULL, 16) - (header ? GCH_HEADER_BYTES : 0)));
    char byte[32];
    snprintf(byte, sizeof byte, "byte %d is 0x01", header ? GCH_HEADER_BYTES + 5 : 5);
    CHECK(line && strstr(line, slot) && strstr(line, byte) && strstr(line, "span class"));
    if (!(line && strstr(line, slot) && strstr(line, byte))) show_child("clobberfree", &c);
  }
}

/* Without a stale write, clobberfree changes nothing visible: every new
 * object reads zero over its whole usable size, live objects keep their
 * contents across cycles. */
static void test_clobberfree_clean(void) {
  gc_heap_t *h = knob_heap("clobberfree", NULL);
  enum { NKEEP = 256 };
  static unsigned char *keep[NKEEP];
  static size_t keep_size[NKEEP];
  REQUIRE(gc_root_add(h, keep, sizeof keep, GCH_ROOT_CONSERVATIVE) == GCH_OK);
  static const size_t sizes[] = {8, 16, 24, 48, 100, 512, 600, 2048, 9000, 40000};
  int bad_zero = 0, bad_keep = 0;
  for (int round = 0; round < 20000; round++) {
    size_t size = sizes[test_rand_below(sizeof sizes / sizeof sizes[0])];
    unsigned flags = test_rand_below(2) ? GCH_NOSCAN : 0;
    unsigned char *p = gc_malloc(h, size, flags);
    REQUIRE(p);
    for (size_t i = 0; i < size; i++) bad_zero += p[i] != 0;
    memset(p, 0x5a, size);
    size_t k = test_rand_below(NKEEP);
    if (keep[k])
      for (size_t i = 0; i < keep_size[k]; i++) bad_keep += keep[k][i] != 0x5a;
    keep[k] = p;
    keep_size[k] = size;
    if (round % 5000 == 4999) REQUIRE(gc_collect(h) == GCH_OK);
  }
  CHECK_EQ(bad_zero, 0);
  CHECK_EQ(bad_keep, 0);
  CHECK(test_stats(h).cycles > 0);
  CHECK(gc_verify(h, stderr) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* --------------------------------------------------------------- efence */

typedef struct pair {
  struct pair *next;
  uint64_t val;
} pair_t;

static const gc_type_t *pair_type(gc_heap_t *h) {
  const gc_type_t *t;
  uint64_t map = 1;
  REQUIRE(gc_type_new(h, "pair", sizeof(pair_t), &map, 1, &t) == GCH_OK);
  return t;
}

/* One object of kind k (every allocation entry point and path). */
static void *efence_alloc(gc_heap_t *h, const gc_type_t *pt, int k, size_t *size) {
  switch (k % 8) {
  case 0: *size = 8; return gc_malloc(h, 8, GCH_NOSCAN);          /* tiny */
  case 1: *size = 48; return gc_malloc(h, 48, GCH_NOSCAN);        /* fast path */
  case 2: *size = 100; return gc_malloc(h, 100, 0);               /* conservative */
  case 3: *size = sizeof(pair_t); return gc_alloc(h, pt);         /* typed */
  case 4: *size = 3 * sizeof(pair_t); return gc_alloc_array(h, pt, 3);
  case 5: *size = 1; return gc_malloc(h, 0, GCH_NOSCAN);          /* size 0 */
  case 6: *size = 1024; return gc_malloc(h, 1024, 0);             /* header class */
  default: *size = 20000; return gc_malloc(h, 20000, GCH_NOSCAN); /* 3 pages */
  }
}

/* Every object starts a page of its own, reads zero, and no address is
 * ever handed out twice, across collections that free them all. */
static void test_efence_layout(void) {
  gc_heap_t *h = knob_heap("efence", NULL);
  const gc_type_t *pt = pair_type(h);
  static pair_t *root;
  REQUIRE(gc_root_add(h, &root, sizeof root, GCH_ROOT_PRECISE) == GCH_OK);
  root = gc_alloc(h, pt);
  REQUIRE(root);
  root->val = 42;
  enum { N = 400 };
  static uintptr_t seen[4 * N];
  size_t nseen = 0;
  int misplaced = 0, nonzero = 0, reused = 0;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < N; i++) {
      size_t size;
      unsigned char *p = efence_alloc(h, pt, i, &size);
      REQUIRE(p);
      uintptr_t a = (uintptr_t)p;
      misplaced += a % PAGE != 0 || gc_size_of(h, p) % PAGE != 0 ||
                   gc_size_of(h, p) < size || gc_base(h, p + size - 1) != p;
      for (size_t j = 0; j < size; j++) nonzero += p[j] != 0;
      memset(p, 0xa5, size);
      for (size_t j = 0; j < nseen; j++) reused += seen[j] == a;
      seen[nseen++] = a;
    }
    REQUIRE(gc_collect(h) == GCH_OK);
  }
  CHECK_EQ(misplaced, 0);
  CHECK_EQ(nonzero, 0);
  CHECK_EQ(reused, 0);
  CHECK_EQ(root->val, 42); /* the live object is untouched */
  gc_stats_t st = test_stats(h);
  /* All but the root (and the heap's own few objects) were fenced off. */
  CHECK(st.bytes_released >= (size_t)(4 * N - 16) * PAGE);
  CHECK(gc_verify(h, stderr) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* arg 1: efence, 0: no knob.  Reads a freed object through a stale
 * pointer: faults under efence, reads whatever is there otherwise. */
static int efence_child(int arg) {
  gc_heap_t *h = knob_heap(arg ? "efence" : NULL, NULL);
  static void *keep[2];
  REQUIRE(gc_root_add(h, keep, sizeof keep, GCH_ROOT_PRECISE) == GCH_OK);
  keep[0] = gc_malloc(h, 48, GCH_NOSCAN); /* keeps the span in the control */
  keep[1] = gc_malloc(h, 48, GCH_NOSCAN);
  REQUIRE(keep[0] && keep[1]);
  volatile unsigned char *stale = keep[1];
  keep[1] = NULL;
  REQUIRE(gc_collect(h) == GCH_OK);
  REQUIRE(gc_size_of(h, (void *)stale) == 0);
  unsigned char v = stale[0];
  fprintf(stderr, "read 0x%02x\n", v);
  return 0;
}

static void test_efence_faults(void) {
  child_t c;
  run_child(efence_child, 1, &c);
  CHECK(child_exited(&c, FAULT_EXIT));
  if (!child_exited(&c, FAULT_EXIT)) show_child("efence", &c);
  run_child(efence_child, 0, &c);
  CHECK(child_exited(&c, 0));
  if (!child_exited(&c, 0)) show_child("efence control", &c);
}

/* --------------------------------------------------------------- verify */

/* A stale pointer stored into a live object: the next cycle's verify
 * reports the dangling pointer and aborts. */
static int verify_child(int arg) {
  (void)arg;
  gc_heap_t *h = knob_heap("verify", NULL);
  const gc_type_t *pt = pair_type(h);
  static pair_t *keep[2];
  REQUIRE(gc_root_add(h, keep, sizeof keep, GCH_ROOT_PRECISE) == GCH_OK);
  keep[0] = gc_alloc(h, pt);
  keep[1] = gc_alloc(h, pt);
  REQUIRE(keep[0] && keep[1]);
  REQUIRE(span_of(h, (uintptr_t)keep[0]) == span_of(h, (uintptr_t)keep[1]));
  pair_t *stale = keep[1];
  keep[1] = NULL;
  REQUIRE(gc_collect(h) == GCH_OK); /* clean so far */
  REQUIRE(gc_size_of(h, stale) == 0);
  fprintf(stderr, "stale %p\n", (void *)stale);
  keep[0]->next = stale; /* the host's bug */
  gc_collect(h);
  return 0;
}

static void test_verify(void) {
  gc_heap_t *h = knob_heap("verify", NULL);
  const gc_type_t *pt = pair_type(h);
  static pair_t *list;
  REQUIRE(gc_root_add(h, &list, sizeof list, GCH_ROOT_PRECISE) == GCH_OK);
  for (int i = 0; i < 20000; i++) {
    pair_t *p = gc_alloc(h, pt);
    REQUIRE(p);
    p->val = (uint64_t)i;
    if (i % 3 == 0) {
      gc_write(h, p, (void **)&p->next, list);
      list = p;
    }
    if (i % 4000 == 0) REQUIRE(gc_collect(h) == GCH_OK);
  }
  CHECK(test_stats(h).cycles >= 5);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);

  child_t c;
  run_child(verify_child, 0, &c);
  char addr[64];
  bool ok = child_aborted(&c) && child_stale(&c, addr, sizeof addr) &&
            strstr(c.err, "dangling pointer") && strstr(c.err, addr) &&
            strstr(c.err, "gcheap: fatal:");
  CHECK(ok);
  if (!ok) show_child("verify", &c);
}

/* ------------------------------------------------------------ checkmark */

/* Concurrent cycles started by the pacer while the mutator rewires a
 * list through the barrier: checkmark (and verify) find nothing. */
static void test_checkmark(void) {
  gc_config_t cfg = gc_config_default();
  cfg.mode = GCH_MODE_CONCURRENT;
  gc_heap_t *h = knob_heap("checkmark,verify", &cfg);
  const gc_type_t *pt = pair_type(h);
  static pair_t *list;
  REQUIRE(gc_root_add(h, &list, sizeof list, GCH_ROOT_PRECISE) == GCH_OK);
  size_t len = 0;
  /* Until the pacer has run 4 cycles (bounded by allocation volume). */
  for (int i = 0; i < 20000000; i++) {
    if (i % 10000 == 0 && test_stats(h).cycles >= 4) break;
    pair_t *p = gc_alloc(h, pt);
    REQUIRE(p);
    p->val = (uint64_t)i;
    if (test_rand_below(4) == 0 || !list) {
      gc_write(h, p, (void **)&p->next, list);
      list = p; /* a root: scanned again at mark termination */
      len++;
    } else if (list->next && test_rand_below(8) == 0) {
      /* unlink the second element */
      gc_write(h, list, (void **)&list->next, list->next->next);
      len--;
    }
    gc_safepoint(h);
  }
  REQUIRE(gc_collect(h) == GCH_OK);
  size_t n = 0;
  for (pair_t *p = list; p; p = p->next) n++;
  CHECK_EQ(n, len);
  CHECK(test_stats(h).cycles >= 4);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* A host bug checkmark exists for: a root reported to one mark and not to
 * another (here, only to every second call of the root callback: the
 * cycle's own mark misses the object, the checkmark re-mark finds it). */
static void *flaky_root;
static unsigned flaky_calls;
static void flaky_roots(gc_visitor_t *v, void *ctx) {
  (void)ctx;
  if (flaky_calls++ % 2) gc_visit(v, &flaky_root);
}

static int checkmark_child(int arg) {
  (void)arg;
  gc_heap_t *h = knob_heap("checkmark", NULL);
  flaky_root = gc_malloc(h, 64, GCH_NOSCAN);
  REQUIRE(flaky_root);
  REQUIRE(gc_root_callback_add(h, flaky_roots, NULL) == GCH_OK);
  fprintf(stderr, "stale %p\n", flaky_root);
  gc_collect(h);
  return 0;
}

static void test_checkmark_catches(void) {
  child_t c;
  run_child(checkmark_child, 0, &c);
  char addr[64], want[128];
  bool ok = child_aborted(&c) && child_stale(&c, addr, sizeof addr);
  snprintf(want, sizeof want, "object %s", addr);
  ok = ok && strstr(c.err, want) && strstr(c.err, "reachable but was not marked") &&
       strstr(c.err, "gcheap: fatal: checkmark");
  CHECK(ok);
  if (!ok) show_child("checkmark", &c);
}

/* --------------------------------------------------------- harddecommit */

/* arg 1: harddecommit, 0: no knob.  A 1 MiB object dies and its pages go
 * back to the OS; another one is made and written in full (released pages
 * are usable again); a third dies and is released, then read. */
static int harddecommit_child(int arg) {
  gc_config_t cfg = gc_config_default();
  cfg.background_scavenge = 0;
  gc_heap_t *h = knob_heap(arg ? "harddecommit" : NULL, &cfg);
  static void *keep;
  REQUIRE(gc_root_add(h, &keep, sizeof keep, GCH_ROOT_PRECISE) == GCH_OK);
  size_t big = (size_t)1 << 20;
  void *a = gc_malloc(h, big, GCH_NOSCAN);
  REQUIRE(a);
  memset(a, 1, big);
  a = NULL;
  REQUIRE(gc_release_memory(h) == GCH_OK);
  gc_stats_t st = test_stats(h);
  if (st.bytes_released < big) {
    fprintf(stderr, "only %zu bytes released\n", st.bytes_released);
    return 3;
  }
  keep = gc_malloc(h, big, GCH_NOSCAN);
  REQUIRE(keep);
  unsigned char *k = keep;
  for (size_t i = 0; i < big; i++)
    if (k[i]) return 4; /* released pages read zero when reused */
  memset(keep, 2, big);
  volatile unsigned char *stale = gc_malloc(h, big, GCH_NOSCAN);
  REQUIRE(stale);
  stale[100] = 3;
  REQUIRE(gc_release_memory(h) == GCH_OK);
  unsigned char v = stale[100];
  fprintf(stderr, "read 0x%02x\n", v);
  return v == 0 ? 0 : 5;
}

static void test_harddecommit(void) {
  child_t c;
  run_child(harddecommit_child, 1, &c);
  CHECK(child_exited(&c, FAULT_EXIT));
  if (!child_exited(&c, FAULT_EXIT)) show_child("harddecommit", &c);
  run_child(harddecommit_child, 0, &c);
  CHECK(child_exited(&c, 0));
  if (!child_exited(&c, 0)) show_child("harddecommit control", &c);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_clobberfree_catches();
  test_clobberfree_clean();
  test_efence_layout();
  test_efence_faults();
  test_verify();
  test_checkmark();
  test_checkmark_catches();
  test_harddecommit();
  return test_done("test_debug_knobs");
}
