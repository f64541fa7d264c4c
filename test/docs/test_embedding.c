/*
 * test_embedding.c -- every code sample of docs/embedding.md, compiled and
 * run.  Each sample sits between a line "/" "* doc: NAME *" "/" and a line
 * "/" "* end *" "/"; docs/embedding.md holds the same lines (indentation
 * removed) in the code block after "<!-- doc: NAME -->", and
 * test/docs/check_samples.sh diffs the two (docs/HACKING.md).
 *
 * Around the samples, the test CHECKs what each one promises: an object
 * reachable only through the shadow stack survives gc_collect with its
 * contents; once popped it is freed; a worker thread's objects survive;
 * collections finish while another thread polls safepoints or blocks in a
 * read; the error codes; two heaps do not see each other's objects; a
 * forked child allocates and collects; a finalizer closes its descriptor
 * once; a weak handle is cleared when its target dies; a cleanup runs; the
 * heap profile names the VM's functions; a user arena keeps a GC object
 * alive until it is freed.
 *
 * The samples follow the rooting discipline strictly (a pointer held across
 * an allocation is on the shadow stack), so this test also passes under
 * GCHEAP_TORTURE=1, GCHEAP_MODE=concurrent and GCHEAP_DEBUG=verify,checkmark.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gcheap.h"
#include "testutil.h"

/* ================================================================ types */

/* doc: type_node */
/* A binary-tree node of the host VM.  Every field is 8 bytes, so field i
 * is word i of the pointer map. */
typedef struct node {
  struct node *left;  /* word 0: pointer */
  int64_t key;        /* word 1: scalar */
  struct node *right; /* word 2: pointer */
  char *name;         /* word 3: pointer (to a GCH_NOSCAN string) */
  double weight;      /* word 4: scalar */
} node_t;

_Static_assert(sizeof(node_t) % 8 == 0, "a type is a whole number of words");

#define WORD_BIT(type, field) ((uint64_t)1 << (offsetof(type, field) / 8))

/* Bits 0, 2 and 3: 0xd. */
static const uint64_t node_map[1] = {
    WORD_BIT(node_t, left) | WORD_BIT(node_t, right) | WORD_BIT(node_t, name)};
/* end */

/* doc: vm */
/* The VM's state: its heap, its types and its shadow stack, the stack of
 * heap references the interpreter works on.  gcheap does not scan this
 * struct, whether it is static, malloc'd or (by default) on the C stack:
 * the root callback vm_roots reports the live part of the stack. */
typedef struct vm {
  gc_heap_t *heap;
  const gc_type_t *node_type;
  const gc_type_t *ref_type; /* one pointer word: arrays of references */
  size_t sp;                 /* shadow stack depth */
  void *stack[256];          /* each slot NULL or a heap pointer */
} vm_t;

static void push(vm_t *vm, void *p) { vm->stack[vm->sp++] = p; }
static void *pop(vm_t *vm) { return vm->stack[--vm->sp]; }

/* Called by the collector, on whichever thread runs the collection, with
 * every attached thread stopped. */
static void vm_roots(gc_visitor_t *v, void *ctx) {
  vm_t *vm = ctx;
  for (size_t i = 0; i < vm->sp; i++) gc_visit(v, &vm->stack[i]);
}
/* end */

/* doc: vm_init */
static gc_result_t vm_init(vm_t *vm, gc_heap_t *heap) {
  static const uint64_t ref_map[1] = {1}; /* word 0 is a pointer */
  gc_result_t r;
  vm->heap = heap;
  vm->sp = 0;
  r = gc_type_new(heap, "node", sizeof(node_t), node_map, 1, &vm->node_type);
  if (r != GCH_OK) return r;
  r = gc_type_new(heap, "ref", sizeof(void *), ref_map, 1, &vm->ref_type);
  if (r != GCH_OK) return r;
  return gc_root_callback_add(heap, vm_roots, vm);
}
/* end */

/* doc: new_node */
/* A node named `name`: two allocations.  The node goes on the shadow
 * stack before the second one, which may run a collection. */
static node_t *new_node(vm_t *vm, int64_t key, const char *name) {
  node_t *n = gc_alloc(vm->heap, vm->node_type); /* zeroed */
  if (!n) return NULL;
  n->key = key; /* scalar fields: plain stores */
  push(vm, n);
  size_t len = strlen(name) + 1;
  char *s = gc_malloc(vm->heap, len, GCH_NOSCAN);
  pop(vm); /* objects never move: n is still valid */
  if (!s) return NULL;
  memcpy(s, name, len);
  gc_write(vm->heap, n, (void **)&n->name, s); /* pointer field: barrier */
  return n; /* reachable from nothing: the caller roots it */
}
/* end */

/* ------------------------------------------------------------- helpers */

static vm_t *vm_new(gc_heap_t *heap) {
  vm_t *vm = calloc(1, sizeof *vm);
  REQUIRE(vm);
  REQUIRE(vm_init(vm, heap) == GCH_OK);
  return vm;
}

static void vm_free(vm_t *vm) {
  CHECK(gc_root_callback_remove(vm->heap, vm_roots, vm) == GCH_OK);
  free(vm);
}

/* Garbage, to reuse whatever a collection freed. */
static void churn(gc_heap_t *heap, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char *p = gc_malloc(heap, 48, GCH_NOSCAN);
    REQUIRE(p);
    memset(p, 0x5a, 48);
  }
}

static int env_set(const char *name) {
  const char *v = getenv(name);
  return v && *v;
}

/* ============================================================ the heap */

static gc_heap_t *section_heap_new(void) {
  /* doc: heap_new */
  gc_config_t cfg = gc_config_default();
  cfg.gc_percent = 150;                 /* collect at 2.5 x the live heap */
  cfg.memory_limit = (size_t)512 << 20; /* soft limit: 512 MiB */
  gc_result_t err;
  gc_heap_t *heap = gc_heap_new(&cfg, &err);
  if (!heap) {
    fprintf(stderr, "gc_heap_new: %s\n", gc_result_str(err));
    exit(1);
  }
  /* The creating thread is attached already. */
  /* end */
  CHECK(gc_thread_is_attached(heap));
  CHECK(gc_last_error(heap) == GCH_OK);
  return heap;
}

/* ============================================ types, allocation, roots */

static void section_types(gc_heap_t *heap) {
  CHECK_EQ(node_map[0], 0xd);
  vm_t *vm = vm_new(heap);
  CHECK_EQ(gc_type_size(vm->node_type), sizeof(node_t));
  CHECK(strcmp(gc_type_name(vm->node_type), "node") == 0);
  /* A map longer than the type, and sizes that are no whole words. */
  static const uint64_t too_long[1] = {1u << 5};
  const gc_type_t *t;
  CHECK(gc_type_new(heap, "bad", 40, too_long, 1, &t) == GCH_EINVAL);
  CHECK(gc_type_new(heap, "bad", 12, node_map, 1, &t) == GCH_EINVAL);
  vm_free(vm);
}

static void section_alloc(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  /* doc: alloc */
  node_t *n = gc_alloc(vm->heap, vm->node_type); /* one node, by its map */
  push(vm, n);
  node_t *row = gc_alloc_array(vm->heap, vm->node_type, 10); /* node[10] */
  push(vm, row);
  node_t **refs = gc_alloc_array(vm->heap, vm->ref_type, 100); /* node*[100] */
  push(vm, refs);
  char *text = gc_malloc(vm->heap, 1000, GCH_NOSCAN); /* never scanned */
  push(vm, text);
  void **blob = gc_malloc(vm->heap, 64, 0); /* every word may be a pointer */
  push(vm, blob);
  /* end */
  REQUIRE(n && row && refs && text && blob);
  CHECK(n->left == NULL && n->key == 0 && n->name == NULL); /* zeroed */
  CHECK(gc_size_of(heap, n) >= sizeof(node_t));
  CHECK(gc_size_of(heap, row) >= 10 * sizeof(node_t));
  CHECK(gc_base(heap, &row[3].key) == row); /* interior pointer */
  CHECK(gc_base(heap, &vm->sp) == NULL);    /* not a heap address */
  /* Everything is reachable only from the shadow stack: fill the
   * pointer slots (through the barrier), collect, and look again. */
  node_t *a = new_node(vm, 11, "in a ref slot");
  REQUIRE(a);
  gc_write(heap, refs, (void **)&refs[99], a);
  node_t *b = new_node(vm, 12, "in a node array");
  REQUIRE(b);
  gc_write(heap, row, (void **)&row[9].right, b);
  node_t *c = new_node(vm, 13, "conservative");
  REQUIRE(c);
  gc_write(heap, blob, &blob[7], (char *)c + 8); /* interior, conservative */
  strcpy(text, "text survives");
  churn(heap, 20000);
  CHECK(gc_collect(heap) == GCH_OK);
  churn(heap, 20000);
  CHECK(refs[99] == a && a->key == 11 && strcmp(a->name, "in a ref slot") == 0);
  CHECK(row[9].right == b && b->key == 12 &&
        strcmp(b->name, "in a node array") == 0);
  CHECK(c->key == 13 && strcmp(c->name, "conservative") == 0);
  CHECK(strcmp(text, "text survives") == 0);
  vm->sp = 0;
  vm_free(vm);
}

/* doc: roots_range */
/* Globals of the host that hold heap pointers. */
static node_t *symbol_table[64];  /* precise: NULL or a heap pointer */
static uintptr_t host_words[16]; /* anything: scanned conservatively */
/* end */

static void section_roots_range(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  /* doc: roots_range_add */
  if (gc_root_add(heap, symbol_table, sizeof symbol_table, GCH_ROOT_PRECISE) ||
      gc_root_add(heap, host_words, sizeof host_words, GCH_ROOT_CONSERVATIVE))
    abort();
  /* end */
  CHECK(gc_root_add(heap, symbol_table, 8, GCH_ROOT_PRECISE) == GCH_EEXIST);
  CHECK(gc_root_add(heap, (char *)host_words + 4, 8, GCH_ROOT_PRECISE) == GCH_EINVAL);
  node_t *n = new_node(vm, 21, "global");
  REQUIRE(n);
  symbol_table[5] = n; /* a root: no barrier */
  node_t *m = new_node(vm, 22, "word");
  REQUIRE(m);
  host_words[3] = (uintptr_t)m + 16; /* interior, in a conservative root */
  host_words[4] = 0x12345;            /* not a pointer: ignored */
  churn(heap, 10000);
  CHECK(gc_collect(heap) == GCH_OK);
  churn(heap, 10000);
  CHECK(n->key == 21 && strcmp(n->name, "global") == 0);
  CHECK(m->key == 22 && strcmp(m->name, "word") == 0);
  /* doc: roots_range_remove */
  gc_root_remove(heap, host_words);
  gc_root_remove(heap, symbol_table);
  /* end */
  memset(symbol_table, 0, sizeof symbol_table);
  memset(host_words, 0, sizeof host_words);
  CHECK(gc_root_remove(heap, symbol_table) == GCH_ENOTFOUND);
  vm_free(vm);
}

static void section_roots_callback(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap); /* registers vm_roots (vm_init) */
  node_t *n = new_node(vm, 31, "on the shadow stack");
  REQUIRE(n);
  push(vm, n);
  CHECK(gc_root_callback_add(heap, vm_roots, vm) == GCH_EEXIST);
  churn(heap, 20000);
  CHECK(gc_collect(heap) == GCH_OK);
  churn(heap, 20000);
  CHECK(gc_size_of(heap, n) != 0);
  CHECK(n->key == 31 && strcmp(n->name, "on the shadow stack") == 0);
  gc_stats_t st = test_stats(heap);
  CHECK(st.live_bytes > 0);
  /* Popped: nothing reaches it.  The next cycle finds it dead; the one
   * after sweeps everything left before it stops the world. */
  pop(vm);
  CHECK(gc_collect(heap) == GCH_OK);
  st = test_stats(heap);
  CHECK_EQ(st.live_bytes, 0);
  CHECK(gc_collect(heap) == GCH_OK);
  CHECK_EQ(gc_size_of(heap, n), 0);
  vm_free(vm);
}

/* ======================================================= write barrier */

/* doc: barrier */
/* parent->left = child, for two heap objects. */
static void set_left(vm_t *vm, node_t *parent, node_t *child) {
  gc_write(vm->heap, parent, (void **)&parent->left, child);
}

/* Delete slots[0] of a heap array of n references: every slot is
 * overwritten, so announce all n first. */
static void remove_first(vm_t *vm, void **slots, size_t n) {
  gc_write_range(vm->heap, slots, n);
  memmove(slots, slots + 1, (n - 1) * sizeof *slots);
  slots[n - 1] = NULL;
}
/* end */

static void section_barrier(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  node_t *root = new_node(vm, 0, "root");
  REQUIRE(root);
  push(vm, root);
  void **arr = gc_alloc_array(heap, vm->ref_type, 8);
  REQUIRE(arr);
  push(vm, arr);
  for (int i = 0; i < 8; i++) {
    node_t *x = new_node(vm, 100 + i, "x");
    REQUIRE(x);
    gc_write(heap, arr, &arr[i], x);
  }
  node_t *leaf = new_node(vm, 41, "leaf");
  REQUIRE(leaf);
  set_left(vm, root, leaf);
  remove_first(vm, arr, 8);
  CHECK(gc_collect(heap) == GCH_OK);
  churn(heap, 10000);
  CHECK(root->left == leaf && leaf->key == 41);
  CHECK(((node_t *)arr[0])->key == 101 && ((node_t *)arr[6])->key == 107);
  CHECK(arr[7] == NULL);
  vm->sp = 0;
  vm_free(vm);
}

/* ============================================================= threads */

/* doc: attach */
/* A thread with its own VM state on the shared heap. */
static void *worker(void *arg) {
  vm_t *vm = arg;
  if (gc_thread_attach(vm->heap) != GCH_OK) return NULL;
  push(vm, NULL); /* slot 0: the newest node */
  for (int i = 0; i < 20000; i++) {
    node_t *n = new_node(vm, i, "worker");
    if (!n) break;
    vm->stack[0] = n; /* a root slot: plain store */
  }
  gc_thread_detach(vm->heap);
  return NULL;
}
/* end */

static void section_attach(gc_heap_t *heap) {
  /* doc: attach_start */
  vm_t *wvm = calloc(1, sizeof *wvm);
  if (!wvm || vm_init(wvm, heap) != GCH_OK) abort();
  pthread_t tid;
  if (pthread_create(&tid, NULL, worker, wvm) != 0) abort();
  /* ... this thread goes on allocating; then: */
  gc_blocking_enter(heap); /* pthread_join blocks: collections may run */
  pthread_join(tid, NULL);
  gc_blocking_leave(heap);
  /* end */
  vm_t *vm = vm_new(heap);
  for (int i = 0; i < 2000; i++) {
    node_t *n = new_node(vm, i, "main");
    REQUIRE(n);
  }
  vm_free(vm);
  CHECK(gc_collect(heap) == GCH_OK);
  churn(heap, 20000);
  REQUIRE(wvm->sp == 1);
  node_t *last = wvm->stack[0];
  CHECK(last && last->key == 19999 && strcmp(last->name, "worker") == 0);
  gc_stats_t st = test_stats(heap);
  CHECK_EQ(st.threads, 1);
  vm_free(wvm);
}

/* ================================================ safepoints, blocking */

/* doc: safepoint */
/* Sum the keys along the right spine of a tree that is reachable from a
 * root: a long loop that allocates nothing, so it polls.  Holding `n` in
 * a C local across the safepoint is fine because the list is rooted and
 * objects never move. */
static int64_t sum_right_spine(vm_t *vm, const node_t *n) {
  int64_t sum = 0;
  for (size_t i = 0; n; n = n->right, i++) {
    sum += n->key;
    if ((i & 255) == 0) gc_safepoint(vm->heap);
  }
  return sum;
}
/* end */

struct poller {
  vm_t *vm;
  const node_t *list;
  int started, stop;
  int64_t sum;
  unsigned rounds;
};

static void *poller_main(void *arg) {
  struct poller *p = arg;
  if (gc_thread_attach(p->vm->heap) != GCH_OK) return NULL;
  __atomic_store_n(&p->started, 1, __ATOMIC_RELEASE);
  do {
    p->sum = sum_right_spine(p->vm, p->list);
    p->rounds++;
  } while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE));
  gc_thread_detach(p->vm->heap);
  return NULL;
}

/* doc: blocking */
/* Read from a descriptor into host memory: the thread touches no heap
 * memory and no root while it waits, so the collector need not wait. */
static ssize_t vm_read(vm_t *vm, int fd, char *buf, size_t len) {
  gc_blocking_enter(vm->heap);
  ssize_t got = read(fd, buf, len);
  gc_blocking_leave(vm->heap);
  return got;
}
/* end */

struct reader {
  vm_t *vm;
  int fd;
  char buf[16];
  ssize_t got;
  int blocked;
};

static void *reader_main(void *arg) {
  struct reader *r = arg;
  if (gc_thread_attach(r->vm->heap) != GCH_OK) return NULL;
  __atomic_store_n(&r->blocked, 1, __ATOMIC_RELEASE);
  r->got = vm_read(r->vm, r->fd, r->buf, sizeof r->buf);
  gc_thread_detach(r->vm->heap);
  return NULL;
}

static void section_safepoints(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  /* A rooted list of 5000 nodes along `right`. */
  node_t *head = NULL;
  push(vm, NULL);
  int64_t want = 0;
  for (int i = 0; i < 5000; i++) {
    node_t *n = new_node(vm, i, "s");
    REQUIRE(n);
    gc_write(heap, n, (void **)&n->right, head);
    head = n;
    vm->stack[0] = head;
    want += i;
  }
  struct poller p = {.vm = vm, .list = head};
  pthread_t tid;
  REQUIRE(pthread_create(&tid, NULL, poller_main, &p) == 0);
  while (!__atomic_load_n(&p.started, __ATOMIC_ACQUIRE)) gc_safepoint(heap);
  /* Collections finish while the poller runs (it parks at a safepoint). */
  for (int i = 0; i < 5; i++) {
    churn(heap, 5000);
    CHECK(gc_collect(heap) == GCH_OK);
  }
  __atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
  gc_blocking_enter(heap);
  pthread_join(tid, NULL);
  gc_blocking_leave(heap);
  CHECK(p.rounds > 0);
  CHECK_EQ(p.sum, want);

  /* A reader blocked in read(): collections go on; then we feed it. */
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  struct reader r = {.vm = vm, .fd = fds[0]};
  REQUIRE(pthread_create(&tid, NULL, reader_main, &r) == 0);
  while (!__atomic_load_n(&r.blocked, __ATOMIC_ACQUIRE)) gc_safepoint(heap);
  for (int i = 0; i < 3; i++) CHECK(gc_collect(heap) == GCH_OK);
  CHECK(write(fds[1], "ping", 4) == 4);
  gc_blocking_enter(heap);
  pthread_join(tid, NULL);
  gc_blocking_leave(heap);
  CHECK(r.got == 4 && memcmp(r.buf, "ping", 4) == 0);
  close(fds[0]);
  close(fds[1]);
  CHECK_EQ(sum_right_spine(vm, head), want);
  vm->sp = 0;
  vm_free(vm);
}

/* ==================================================== collection, stats */

static void section_collect(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  gc_stats_t before = test_stats(heap);
  /* doc: collect */
  gc_result_t r = gc_collect(vm->heap); /* full and blocking */
  /* end */
  CHECK(r == GCH_OK);
  for (int i = 0; i < 8; i++) churn(heap, 20000); /* garbage to give back */
  /* doc: release */
  gc_release_memory(vm->heap); /* collect, sweep, return free pages */
  /* end */
  gc_stats_t rel = test_stats(heap);
  CHECK(rel.bytes_released > 0);
  CHECK(rel.bytes_mapped <= rel.bytes_in_use + ((size_t)512 << 10));
  /* Automatic collections: allocate ten times the minimum heap. */
  for (int i = 0; i < 40; i++) churn(heap, 20000); /* 40 x ~1 MiB */
  /* doc: stats */
  gc_stats_t st;
  if (gc_get_stats(vm->heap, &st) == GCH_OK)
    printf("%llu cycles, %zu B live, next at %zu B, last pause %.3f ms\n",
           (unsigned long long)st.cycles, st.live_bytes, st.heap_goal,
           (double)st.pause_last_ns / 1e6);
  if (gc_verify(vm->heap, stderr) != GCH_OK) abort();
  /* end */
  CHECK(st.cycles > before.cycles);
  CHECK(st.forced_cycles >= before.forced_cycles + 1);
  if (!env_set("GCHEAP_GC_PERCENT") && !env_set("GCHEAP_MODE"))
    CHECK(st.cycles - st.forced_cycles > before.cycles - before.forced_cycles);
  CHECK(st.total_alloc_bytes >= (uint64_t)40 * 20000 * 48);
  CHECK(st.bytes_in_use <= st.bytes_mapped);
  vm_free(vm);
}

/* ================================================================ errors */

/* doc: oom */
/* Called when an allocation fails after a collection has been tried. */
static void *on_oom(gc_heap_t *heap, size_t size, void *ctx) {
  (void)heap;
  (void)size;
  ++*(int *)ctx; /* count; a host might drop caches and retry here */
  return NULL;   /* the allocation returns NULL (see gc_last_error) */
}
/* end */

static void section_errors(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  /* doc: errors */
  void *p = gc_malloc(vm->heap, SIZE_MAX / 2, 0);
  if (!p) {
    gc_result_t why = gc_last_error(vm->heap); /* GCH_EOVERFLOW */
    fprintf(stderr, "gc_malloc: %s\n", gc_result_str(why));
  }
  /* end */
  CHECK(p == NULL);
  CHECK(gc_last_error(heap) == GCH_EOVERFLOW);
  CHECK(gc_alloc_array(heap, vm->node_type, SIZE_MAX / 8) == NULL);
  CHECK(gc_last_error(heap) == GCH_EOVERFLOW);
  CHECK(gc_malloc(heap, 8, 0x80) == NULL);
  CHECK(gc_last_error(heap) == GCH_EINVAL);
  CHECK(strcmp(gc_result_str(GCH_ELIMIT),
               "allocation would exceed the heap's memory limit") == 0);
  CHECK(strcmp(gc_result_str((gc_result_t)999), "unknown result") == 0);
  CHECK(gc_thread_attach(heap) == GCH_EATTACHED);
  vm_free(vm);

  /* A hard limit with an out-of-memory handler. */
  /* doc: hard_limit */
  static int oom_calls;
  gc_config_t cfg = gc_config_default();
  cfg.hard_limit = (size_t)16 << 20; /* at most 16 MiB of heap pages */
  cfg.oom_handler = on_oom;
  cfg.oom_ctx = &oom_calls;
  gc_heap_t *small = gc_heap_new(&cfg, NULL);
  /* end */
  REQUIRE(small);
  vm_t *svm = vm_new(small);
  void *big = NULL;
  for (int i = 0; i < 64 && (big = gc_malloc(small, (size_t)1 << 20, GCH_NOSCAN)); i++)
    push(svm, big); /* keep them all: no collection can help */
  CHECK(big == NULL);
  CHECK(gc_last_error(small) == GCH_ELIMIT);
  CHECK(oom_calls == 1);
  CHECK(svm->sp >= 8 && svm->sp <= 16);
  CHECK(gc_verify(small, stderr) == GCH_OK);
  svm->sp = 0;
  vm_free(svm);
  CHECK(gc_heap_destroy(small) == GCH_OK);

  /* Config errors come back through err (a field no variable overrides). */
  gc_result_t err = GCH_OK;
  gc_config_t bad = gc_config_default();
  bad.hard_limit = (size_t)1 << 20; /* under 4 MiB */
  CHECK(gc_heap_new(&bad, &err) == NULL && err == GCH_EINVAL);
}

struct unattached {
  gc_heap_t *heap;
  void *p;
  gc_result_t err;
};

static void *unattached_main(void *arg) {
  struct unattached *u = arg;
  u->p = gc_malloc(u->heap, 16, 0);
  u->err = gc_last_error(u->heap);
  return NULL;
}

static void section_unattached(gc_heap_t *heap) {
  struct unattached u = {.heap = heap};
  pthread_t tid;
  REQUIRE(pthread_create(&tid, NULL, unattached_main, &u) == 0);
  gc_blocking_enter(heap);
  pthread_join(tid, NULL);
  gc_blocking_leave(heap);
  CHECK(u.p == NULL && u.err == GCH_ENOTATTACHED);
}

/* =========================================================== two heaps */

static void section_two_heaps(void) {
  /* doc: two_heaps */
  gc_heap_t *a = gc_heap_new(NULL, NULL); /* attaches this thread to a */
  gc_heap_t *b = gc_heap_new(NULL, NULL); /* ... and to b */
  if (!a || !b) abort();
  char *pa = gc_malloc(a, 64, GCH_NOSCAN);
  char *pb = gc_malloc(b, 64, GCH_NOSCAN);
  /* gc_base(a, pb) == NULL: each heap knows only its own objects. */
  /* end */
  REQUIRE(pa && pb);
  CHECK(gc_base(a, pa) == pa && gc_base(b, pb) == pb);
  CHECK(gc_base(a, pb) == NULL && gc_base(b, pa) == NULL);
  CHECK(gc_size_of(b, pa) == 0);
  CHECK(gc_thread_is_attached(a) && gc_thread_is_attached(b));
  CHECK(gc_collect(a) == GCH_OK && gc_collect(b) == GCH_OK);
  /* doc: two_heaps_destroy */
  gc_heap_destroy(b); /* detaches this thread from b, unmaps b */
  gc_heap_destroy(a);
  /* end */
}

/* ================================================================ fork */

static void section_fork(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  node_t *kept = new_node(vm, 51, "parent");
  REQUIRE(kept);
  push(vm, kept);
  fflush(NULL);
  /* doc: fork */
  pid_t pid = fork();
  if (pid == 0) {
    /* The child: only this thread exists; the heap works as before. */
    node_t *n = new_node(vm, 42, "child");
    if (!n) _exit(1);
    push(vm, n);
    int ok = gc_collect(vm->heap) == GCH_OK && n->key == 42 &&
             strcmp(n->name, "child") == 0;
    _exit(ok ? 0 : 1);
  }
  int status = -1;
  gc_blocking_enter(vm->heap); /* waitpid blocks */
  waitpid(pid, &status, 0);
  gc_blocking_leave(vm->heap);
  /* end */
  CHECK(pid > 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(gc_collect(heap) == GCH_OK);
  CHECK(kept->key == 51 && strcmp(kept->name, "parent") == 0);
  vm->sp = 0;
  vm_free(vm);
}

/* ============================================================ specials */

/* doc: finalizer */
/* A heap object that owns an OS resource.  16 bytes, because noscan
 * objects under 16 B share blocks with others (see below). */
typedef struct file_obj {
  int64_t fd;
  int64_t flags;
} file_obj_t;

static void file_finalize(gc_heap_t *heap, void *obj, void *ctx) {
  (void)heap;
  file_obj_t *f = obj; /* intact: the object dies after this returns */
  if (f->fd >= 0) close((int)f->fd);
  f->fd = -1;
  ++*(int *)ctx; /* ctx: host memory here, a count of closed files */
}
/* end */

static void section_finalizer(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  gc_stats_t before = test_stats(heap);
  /* doc: finalizer_use */
  static int closed;
  file_obj_t *f = gc_malloc(vm->heap, sizeof *f, GCH_NOSCAN);
  if (!f) abort();
  f->fd = open("/dev/null", O_RDONLY);
  push(vm, f); /* rooted while arming: the call may reach a safepoint */
  gc_set_finalizer(vm->heap, f, file_finalize, &closed);
  pop(vm);              /* ... f becomes unreachable ... */
  gc_collect(vm->heap); /* finds f dead: queues its finalizer */
  size_t ran = gc_run_finalizers(vm->heap); /* runs it here, closing fd */
  /* end */
  int fd = (int)f->fd; /* -1 now: the object is not freed before a cycle */
  CHECK(ran == 1);
  CHECK(closed == 1);
  CHECK(fd == -1);
  CHECK(gc_run_finalizers(heap) == 0);
  CHECK(gc_collect(heap) == GCH_OK);
  CHECK(gc_run_finalizers(heap) == 0); /* once */
  CHECK(closed == 1);
  gc_stats_t st = test_stats(heap);
  CHECK_EQ(st.finalizers_queued - before.finalizers_queued, 1);
  CHECK_EQ(st.finalizers_run - before.finalizers_run, 1);
  /* Errors. */
  node_t *n = new_node(vm, 1, "n");
  REQUIRE(n);
  push(vm, n);
  CHECK(gc_set_finalizer(heap, n, file_finalize, &closed) == GCH_OK);
  CHECK(gc_set_finalizer(heap, n, file_finalize, &closed) == GCH_EEXIST);
  CHECK(gc_set_finalizer(heap, n, NULL, NULL) == GCH_OK); /* disarm */
  CHECK(gc_set_finalizer(heap, &n->key, file_finalize, &closed) == GCH_EFOREIGN);
  CHECK(gc_set_finalizer(heap, n, file_finalize, &n->key) == GCH_EINVAL);
  CHECK(gc_set_finalizer(heap, &closed, file_finalize, NULL) == GCH_EFOREIGN);
  vm->sp = 0;
  vm_free(vm);
}

static void section_weak(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  /* doc: weak */
  node_t *n = new_node(vm, 7, "target");
  if (!n) abort();
  push(vm, n);                              /* the target: rooted for now */
  gc_weak_t *w = gc_weak_new(vm->heap, n); /* may collect: n is rooted */
  if (!w) abort();
  push(vm, w); /* the handle is a heap object: root it like one */
  node_t *same = gc_weak_get(vm->heap, w); /* == n while n lives */
  vm->stack[vm->sp - 2] = NULL; /* drop the target */
  gc_collect(vm->heap);
  node_t *gone = gc_weak_get(vm->heap, w); /* NULL: the target died */
  /* end */
  CHECK(same == n);
  CHECK(gone == NULL);
  CHECK(gc_weak_get(heap, NULL) == NULL && gc_last_error(heap) == GCH_EINVAL);
  /* One handle per target. */
  node_t *m = new_node(vm, 8, "m");
  REQUIRE(m);
  push(vm, m);
  gc_weak_t *w1 = gc_weak_new(heap, m);
  REQUIRE(w1);
  push(vm, w1);
  CHECK(gc_weak_new(heap, m) == w1);
  vm->sp = 0;
  vm_free(vm);
}

/* doc: cleanup */
/* Native memory owned by a heap object, released after the object dies. */
static void free_native(void *arg) { free(arg); }
/* end */

static void section_cleanup(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  gc_stats_t before = test_stats(heap);
  /* doc: cleanup_use */
  node_t *n = new_node(vm, 9, "owner");
  if (!n) abort();
  void *native = malloc(4096);
  push(vm, n); /* rooted while arming, as for finalizers */
  gc_add_cleanup(vm->heap, n, free_native, native);
  pop(vm);              /* ... n becomes unreachable ... */
  gc_collect(vm->heap); /* n is found dead; sweeping frees it ... */
  gc_collect(vm->heap); /* ... by this cycle's start at the latest */
  gc_run_finalizers(vm->heap); /* runs free_native(native) */
  /* end */
  gc_stats_t st = test_stats(heap);
  CHECK_EQ(st.cleanups_queued - before.cleanups_queued, 1);
  CHECK_EQ(st.cleanups_run - before.cleanups_run, 1);
  CHECK(gc_add_cleanup(heap, NULL, free_native, NULL) == GCH_EINVAL);
  vm_free(vm);
}

/* doc: profile_callbacks */
/* The VM's call stack as frame ids (here: indexes into a name table). */
typedef struct vm_calls {
  size_t depth;
  uintptr_t frame[32]; /* frame[depth - 1] is the innermost */
} vm_calls_t;

static const char *const vm_function_names[] = {"?", "main", "build_tree",
                                                "make_name"};

static size_t vm_profile_stack(void *ctx, uintptr_t *pcs, size_t max) {
  const vm_calls_t *c = ctx;
  size_t n = 0;
  for (size_t i = c->depth; i > 0 && n < max; i--) pcs[n++] = c->frame[i - 1];
  return n; /* innermost first */
}

static const char *vm_profile_symbol(void *ctx, uintptr_t pc) {
  (void)ctx;
  return pc < 4 ? vm_function_names[pc] : "?";
}
/* end */

static int file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

static void section_profile(const char *path) {
  /* doc: profile_config */
  static vm_calls_t calls; /* the interpreter updates it on call and return */
  gc_config_t cfg = gc_config_default();
  cfg.profile_rate = 64 << 10; /* one sample per 64 KiB on average */
  cfg.profile_stack = vm_profile_stack;
  cfg.profile_symbol = vm_profile_symbol;
  cfg.profile_ctx = &calls;
  gc_heap_t *heap = gc_heap_new(&cfg, NULL);
  /* end */
  REQUIRE(heap);
  vm_t *vm = vm_new(heap);
  calls.depth = 1;
  calls.frame[0] = 1; /* main */
  push(vm, NULL);
  for (int i = 0; i < 40000; i++) {
    calls.frame[1] = 2; /* main -> build_tree */
    calls.depth = 2;
    node_t *n = gc_alloc(heap, vm->node_type);
    REQUIRE(n);
    gc_write(heap, n, (void **)&n->left, vm->stack[0]);
    vm->stack[0] = n;
    calls.frame[2] = 3; /* main -> build_tree -> make_name */
    calls.depth = 3;
    char *s = gc_malloc(heap, 64, GCH_NOSCAN);
    REQUIRE(s);
    gc_write(heap, n, (void **)&n->name, s);
  }
  calls.depth = 1;
  /* doc: profile_write */
  gc_collect(heap); /* the profile shows the heap as of a completed cycle */
  FILE *out = fopen(path, "w");
  if (!out || gc_profile_write(heap, out) != GCH_OK) abort();
  fclose(out);
  /* end */
  if (!env_set("GCHEAP_PROFILE_RATE")) {
    CHECK(file_contains(path, "--- symbol"));
    CHECK(file_contains(path, "build_tree"));
    CHECK(file_contains(path, "make_name"));
    CHECK(file_contains(path, "@ heap_v2/65536"));
    gc_stats_t st = test_stats(heap);
    CHECK(st.profile_samples > 0);
  }
  CHECK(gc_profile_write(heap, NULL) == GCH_EINVAL);
  vm->sp = 0;
  vm_free(vm);
  CHECK(gc_heap_destroy(heap) == GCH_OK);
}

static void section_arena(gc_heap_t *heap) {
  vm_t *vm = vm_new(heap);
  /* doc: arena */
  gc_arena_t *arena = gc_arena_new(vm->heap);
  if (!arena) abort();
  node_t *an = gc_arena_alloc(arena, vm->node_type, 1); /* a node, scanned */
  char *buf = gc_arena_alloc_bytes(arena, 4096);        /* bytes, not */
  node_t *hn = new_node(vm, 5, "in the GC heap");
  if (!an || !buf || !hn) abort();
  gc_write(vm->heap, an, (void **)&an->left, hn); /* keeps hn alive */
  gc_collect(vm->heap);                            /* hn survives */
  /* ... */
  gc_arena_free(arena); /* an and buf are gone: touching them faults */
  /* end */
  (void)buf;
  /* hn survived the collection only through the arena; nothing has
   * collected since the free, so it is still there, and two cycles later
   * it is freed. */
  CHECK(hn->key == 5 && strcmp(hn->name, "in the GC heap") == 0);
  gc_stats_t st = test_stats(heap);
  CHECK_EQ(st.arenas_live, 0);
  CHECK(st.arena_bytes_quarantined > 0 || st.arena_bytes_free > 0);
  CHECK(gc_collect(heap) == GCH_OK);
  CHECK(gc_collect(heap) == GCH_OK);
  CHECK_EQ(gc_size_of(heap, hn), 0);
  CHECK(gc_arena_free(arena) == GCH_EDOUBLEFREE);
  vm->sp = 0;
  vm_free(vm);
}

/* ================================================================ main */

/* ThreadSanitizer kills a forked child that starts threads (the heap
 * restarts its sweeper there), so the fork section runs only without it. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

int main(int argc, char **argv) {
  test_seed(argc, argv);
  gc_heap_t *heap = section_heap_new();
  section_types(heap);
  section_alloc(heap);
  section_roots_range(heap);
  section_roots_callback(heap);
  section_barrier(heap);
  section_attach(heap);
  section_safepoints(heap);
  section_collect(heap);
  section_errors(heap);
  section_unattached(heap);
  section_two_heaps();
  if (!UNDER_TSAN) section_fork(heap);
  section_finalizer(heap);
  section_weak(heap);
  section_cleanup(heap);
  section_arena(heap);
  char path[64];
  snprintf(path, sizeof path, "/tmp/gcheap-doc-%ld.prof", (long)getpid());
  section_profile(path);
  remove(path);
  CHECK(gc_verify(heap, stderr) == GCH_OK);
  CHECK(gc_heap_destroy(heap) == GCH_OK);
  return test_done("docs/test_embedding");
}
