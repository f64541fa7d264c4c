/*
 * test_reach.c -- the collector keeps exactly what is reachable, intact.
 *
 * Random object graphs are built from several kinds of objects:
 *   NODE     registered type, 2 pointers + header, checksum, 4 payload words
 *   ONE      registered type, 1 pointer + 3 scalar words
 *   ELEMS    gc_alloc_array of {scalar, ptr} (16 B elements)
 *   TRIPLES  gc_alloc_array of {scalar, ptr, scalar} (24 B: the pointer
 *            phase changes from oblet to oblet in large arrays)
 *   PTRS     gc_alloc_array of a one-pointer type (pure pointer arrays)
 *   CONS     gc_malloc(h, n, 0): conservative, holding interior pointers
 *   NOSCAN   gc_malloc(h, n, GCH_NOSCAN): payload buffers
 * in the shapes: trees, lists, cycles, rings, shared subgraphs, small and
 * large arrays (> 128 KiB, pointers at the oblet boundaries), and objects
 * held only through interior pointers in a conservative root range.
 *
 * A host-side model records every object's address, kind, size and the
 * target (id, byte offset) of every pointer slot.  After each gc_collect:
 *   - every object the model says is reachable is checked: header word,
 *     checksum of its scalar words, every pointer slot == model, gc_base
 *     and gc_size_of agree (objects intact, nothing freed and reused);
 *   - gc_get_stats().live_bytes == the sum of the slot sizes of the
 *     reachable set, exactly (nothing lost, nothing extra retained).  Scalar
 *     words of precise objects and NOSCAN buffers hold "decoy" addresses of
 *     unreachable objects, so scanning a scalar word or a noscan object
 *     shows up as extra live bytes;
 *   - gc_verify(h) == GCH_OK.
 * Garbage churn between checks reuses freed slots, so a reachable object
 * that was freed would be overwritten (and caught by the checksums).
 * After dropping every root, two collections reclaim everything:
 * live_bytes == 0, bytes_in_use == 0, gc_size_of(old object) == 0.
 *
 * Part 2 repeats the build and mutation rounds on a heap with
 * config.torture = 97 (a collection every 97 allocations); every object is
 * stored into a precise pinning root array before the next allocation.
 *
 * Slot sizes: gc_size_of(base) is the slot size, except for scanned small
 * objects over 512 B, which carry a type header in their slot before the
 * object (src/alloc/malloc.c), counted by live_bytes.  The header's size is
 * measured at start-up through the public API (live_bytes of one such
 * object minus its gc_size_of).
 *
 * Seed: argv[1] or GCHEAP_SEED.
 */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define TOP 0x8000000000000000ull /* scalars never look like addresses */
#define MAGIC 0x5eedull

enum kind { K_NODE = 1, K_ONE, K_ELEMS, K_TRIPLES, K_PTRS, K_CONS, K_NOSCAN };
static const char *const kind_name[] = {"?",       "node", "one",  "elems",
                                        "triples", "ptrs", "cons", "noscan"};

typedef struct mobj {
  void *addr;
  uint8_t kind;
  uint8_t decoy;     /* never linked: must die */
  uint32_t nwords;   /* words of the object as requested */
  size_t req;        /* bytes requested */
  size_t slot;       /* bytes its slot adds to live_bytes */
  uint32_t nslots;   /* pointer slots */
  uint32_t *slot_word;
  int32_t *slot_kid; /* -1 = NULL */
  uint32_t *slot_off;
  uint8_t *isptr;    /* CONS: which words are pointer slots */
  uint32_t seen;     /* walk epoch */
} mobj_t;

static gc_heap_t *H;
static const gc_type_t *t_node, *t_one, *t_elem, *t_triple, *t_ptr;

static mobj_t *M;
static size_t nM, capM;

#define NPROOT 512
#define NCROOT 128
#define NPIN 32768
static void *proots[NPROOT];
static int32_t proot_id[NPROOT];
static uintptr_t croots[NCROOT];
static int32_t croot_id[NCROOT];
static uint32_t croot_off[NCROOT];
static void *pins[NPIN];
static size_t npins;

static size_t n_allocs; /* every allocation the test makes */
static size_t hdr_bytes; /* type header of scanned objects of 513 B.. */

static int32_t *decoys;
static size_t ndecoys, capdecoys;

static uint32_t epoch;
static int32_t *reach; /* ids found by the last model walk */
static size_t nreach, capreach;
static int fail_msgs;

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void failf(const char *label, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void failf(const char *label, const char *fmt, ...) {
  test_failures++;
  if (fail_msgs++ < 20) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL [%s] ", label);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  REQUIRE(p);
  return p;
}

/* ------------------------------------------------------------ the model */

static uint64_t hdr_of(int32_t id, int kind) {
  return MAGIC << 48 | (uint64_t)kind << 40 | (uint64_t)(uint32_t)id;
}

static int ck_word(int kind) {
  switch (kind) {
  case K_NODE: return 3;
  case K_ONE: case K_ELEMS: case K_TRIPLES: return 2;
  case K_CONS: case K_NOSCAN: return 1;
  default: return -1;
  }
}

static int is_ptr_word(const mobj_t *o, uint32_t w) {
  switch (o->kind) {
  case K_NODE: return w == 1 || w == 2;
  case K_ONE: return w == 1;
  case K_ELEMS: return w & 1;
  case K_TRIPLES: return w % 3 == 1;
  case K_PTRS: return 1;
  case K_CONS: return o->isptr[w];
  default: return 0;
  }
}

static uint64_t compute_ck(int32_t id) {
  const mobj_t *o = &M[id];
  const uint64_t *w = o->addr;
  int ckw = ck_word(o->kind);
  uint64_t h = mix64((uint64_t)id);
  for (uint32_t i = 0; i < o->nwords; i++) {
    if ((int)i == ckw || is_ptr_word(o, i)) continue;
    h = mix64(h ^ w[i] ^ ((uint64_t)i << 50));
  }
  return h | TOP;
}

/* Write the scalar words: header, payload (or decoy addresses where the
 * kind is scanned precisely or not at all), checksum. */
static void fill_scalars(int32_t id) {
  mobj_t *o = &M[id];
  uint64_t *w = o->addr;
  int ckw = ck_word(o->kind);
  if (ckw < 0) return;
  int decoy_ok = o->kind != K_CONS;
  for (uint32_t i = 1; i < o->nwords; i++) {
    if ((int)i == ckw || is_ptr_word(o, i)) continue;
    if (decoy_ok && ndecoys && test_rand_below(8) == 0) {
      int32_t d = decoys[test_rand_below(ndecoys)];
      w[i] = (uint64_t)(uintptr_t)M[d].addr + 8 * test_rand_below(2);
    } else {
      w[i] = mix64(test_rand()) | TOP;
    }
  }
  w[0] = hdr_of(id, o->kind);
  w[ckw] = compute_ck(id);
}

/* Allocate an object of a kind: n = elements for arrays, bytes for
 * CONS/NOSCAN.  It is pinned before anything else is allocated. */
static int32_t new_obj(int kind, size_t n) {
  void *p = NULL;
  size_t req = 0;
  switch (kind) {
  case K_NODE: p = gc_alloc(H, t_node); req = 64; break;
  case K_ONE: p = gc_alloc(H, t_one); req = 32; break;
  case K_ELEMS: p = gc_alloc_array(H, t_elem, n); req = 16 * n; break;
  case K_TRIPLES: p = gc_alloc_array(H, t_triple, n); req = 24 * n; break;
  case K_PTRS: p = gc_alloc_array(H, t_ptr, n); req = 8 * n; break;
  case K_CONS: p = gc_malloc(H, n, 0); req = n; break;
  case K_NOSCAN: p = gc_malloc(H, n, GCH_NOSCAN); req = n; break;
  }
  REQUIRE(p);
  n_allocs++;
  REQUIRE(npins < NPIN);
  pins[npins++] = p;
  if (nM == capM) {
    capM = capM ? 2 * capM : 4096;
    M = xrealloc(M, capM * sizeof *M);
  }
  int32_t id = (int32_t)nM++;
  mobj_t *o = &M[id];
  memset(o, 0, sizeof *o);
  o->addr = p;
  o->kind = (uint8_t)kind;
  o->req = req;
  o->nwords = (uint32_t)(req / 8);
  /* Bytes its slot adds to live_bytes, taken while the object is new (its
   * span is cached by this thread: no sweeper touches it). */
  o->slot = gc_size_of(H, p);
  if (kind != K_NOSCAN && req > 512 && req + hdr_bytes <= 32768) o->slot += hdr_bytes;
  if (gc_size_of(H, p) < req)
    failf(kind_name[kind], "new object: gc_size_of %zu < requested %zu",
          gc_size_of(H, p), req);
  /* Everything comes back zeroed. */
  for (uint32_t i = 0; i < o->nwords; i++) {
    if (((uint64_t *)p)[i]) {
      failf(kind_name[kind], "new object id %d: word %u not zeroed", (int)id, i);
      break;
    }
  }
  if (kind == K_CONS) {
    o->isptr = calloc(o->nwords, 1);
    REQUIRE(o->isptr);
    size_t np = 0;
    for (uint32_t i = 2; i < o->nwords; i++)
      if (test_rand_below(3) == 0) o->isptr[i] = 1, np++;
    /* large conservative objects: slots around the oblet boundary */
    if (o->nwords > 16400)
      for (uint32_t i = 16382; i <= 16386; i++) np += !o->isptr[i], o->isptr[i] = 1;
    if (o->nwords > 2 && !o->isptr[o->nwords - 1]) o->isptr[o->nwords - 1] = 1, np++;
    o->nslots = (uint32_t)np;
  } else {
    size_t np = 0;
    for (uint32_t i = 0; i < o->nwords; i++) np += is_ptr_word(o, i);
    o->nslots = (uint32_t)np;
  }
  if (o->nslots) {
    o->slot_word = malloc(o->nslots * sizeof *o->slot_word);
    o->slot_kid = malloc(o->nslots * sizeof *o->slot_kid);
    o->slot_off = calloc(o->nslots, sizeof *o->slot_off);
    REQUIRE(o->slot_word && o->slot_kid && o->slot_off);
    uint32_t k = 0;
    for (uint32_t i = 0; i < o->nwords; i++)
      if (is_ptr_word(o, i)) o->slot_word[k] = i, o->slot_kid[k++] = -1;
  }
  fill_scalars(id);
  return id;
}

/* Slot s of object pid := kid + off (kid -1: NULL). */
static void set_slot(int32_t pid, uint32_t s, int32_t kid, uint32_t off) {
  mobj_t *o = &M[pid];
  REQUIRE(s < o->nslots);
  void **slot = (void **)o->addr + o->slot_word[s];
  void *val = kid < 0 ? NULL : (char *)M[kid].addr + off;
  gc_write(H, o->addr, slot, val);
  o->slot_kid[s] = kid;
  o->slot_off[s] = kid < 0 ? 0 : off;
}

/* An offset into kid for a slot of parent: any byte for conservative
 * parents, mostly the base (sometimes an 8-aligned interior) otherwise. */
static uint32_t pick_off(int32_t parent, int32_t kid) {
  size_t req = M[kid].req;
  if (M[parent].kind == K_CONS) return (uint32_t)test_rand_below(req);
  if (test_rand_below(10) == 0) return (uint32_t)(8 * test_rand_below(req / 8));
  return 0;
}

static void link_slot(int32_t pid, uint32_t s, int32_t kid) {
  set_slot(pid, s, kid, kid < 0 ? 0 : pick_off(pid, kid));
}

static int add_proot(int32_t id) {
  for (int tries = 0; tries < 4 * NPROOT; tries++) {
    size_t i = test_rand_below(NPROOT);
    if (proot_id[i] < 0) {
      proots[i] = M[id].addr;
      proot_id[i] = id;
      return 1;
    }
  }
  return 0;
}

static int add_croot(int32_t id) {
  for (size_t i = 0; i < NCROOT; i++) {
    if (croot_id[i] < 0) {
      uint32_t off = (uint32_t)test_rand_below(M[id].req);
      croots[i] = (uintptr_t)M[id].addr + off;
      croot_id[i] = id;
      croot_off[i] = off;
      return 1;
    }
  }
  return 0;
}

/* Walk the model from the roots (and pins); returns the reachable ids in
 * reach[], checking each object against the heap.  Returns the expected
 * live bytes. */
static size_t walk_model(const char *label, int check) {
  epoch++;
  nreach = 0;
#define PUSH(id)                                                          \
  do {                                                                    \
    int32_t id_ = (id);                                                   \
    if (id_ >= 0 && M[id_].seen != epoch) {                               \
      M[id_].seen = epoch;                                                \
      if (nreach == capreach) {                                           \
        capreach = capreach ? 2 * capreach : 4096;                        \
        reach = xrealloc(reach, capreach * sizeof *reach);                \
      }                                                                   \
      reach[nreach++] = id_;                                              \
    }                                                                     \
  } while (0)
  for (size_t i = 0; i < NPROOT; i++) PUSH(proot_id[i]);
  for (size_t i = 0; i < NCROOT; i++) PUSH(croot_id[i]);
  size_t live = 0;
  for (size_t r = 0; r < nreach; r++) {
    int32_t id = reach[r];
    const mobj_t *o = &M[id];
    for (uint32_t s = 0; s < o->nslots; s++) PUSH(o->slot_kid[s]);
    if (o->decoy) failf(label, "model: decoy %d reachable (test bug)", (int)id);
    if (!check) continue;
    const uint64_t *w = o->addr;
    void *base = gc_base(H, o->addr);
    size_t sz = gc_size_of(H, o->addr);
    if (base != o->addr || sz < o->req) {
      /* Ask again: a wrong answer that then goes away is a query racing
       * with the background sweeper, not a freed object. */
      int later_ok = 0;
      for (int i = 0; i < 100 && !later_ok; i++) {
        sched_yield();
        later_ok = gc_base(H, o->addr) == o->addr && gc_size_of(H, o->addr) >= o->req;
      }
      failf(label, "id %d (%s, %zu B) at %p: gc_base %p, gc_size_of %zu: %s",
            (int)id, kind_name[o->kind], o->req, o->addr, base, sz,
            later_ok ? "a live object was transiently reported as not "
                       "allocated (query racing the background sweeper?)"
                     : "not an allocated object: freed while reachable?");
    }
    live += o->slot;
    int ckw = ck_word(o->kind);
    if (ckw >= 0) {
      if (w[0] != hdr_of(id, o->kind))
        failf(label, "id %d (%s) at %p: header word %llx wrong (overwritten)",
              (int)id, kind_name[o->kind], o->addr, (unsigned long long)w[0]);
      else if (w[ckw] != compute_ck(id))
        failf(label, "id %d (%s) at %p: checksum mismatch", (int)id,
              kind_name[o->kind], o->addr);
    }
    for (uint32_t s = 0; s < o->nslots; s++) {
      int32_t k = o->slot_kid[s];
      uint64_t want = k < 0 ? 0 : (uint64_t)(uintptr_t)M[k].addr + o->slot_off[s];
      if (w[o->slot_word[s]] != want)
        failf(label, "id %d (%s) at %p: pointer word %u is %llx, want %llx",
              (int)id, kind_name[o->kind], o->addr, o->slot_word[s],
              (unsigned long long)w[o->slot_word[s]], (unsigned long long)want);
    }
  }
#undef PUSH
  return live;
}

static void check_collect(const char *label) {
  CHECK_EQ(gc_collect(H), GCH_OK);
  size_t expect = walk_model(label, 1);
  gc_stats_t st = test_stats(H);
  if (st.live_bytes != expect)
    failf(label, "live_bytes %zu != %zu, the slot bytes of the %zu reachable "
          "objects (diff %+lld)", st.live_bytes, expect, nreach,
          (long long)st.live_bytes - (long long)expect);
  if (gc_verify(H, stderr) != GCH_OK) failf(label, "gc_verify failed");
}

/* ---------------------------------------------------------------- shapes */

static int32_t any_live(void) {
  /* a random object from the last walk or a pinned new one */
  if (!nreach) return -1;
  return reach[test_rand_below(nreach)];
}

static int32_t build_tree(int depth, int32_t shared) {
  int32_t id = new_obj(K_NODE, 0);
  if (depth > 0) {
    int32_t l = build_tree(depth - 1, shared);
    int32_t r = shared >= 0 && test_rand_below(16) == 0 ? shared
                                                         : build_tree(depth - 1, shared);
    set_slot(id, 0, l, 0);
    set_slot(id, 1, r, 0);
  }
  return id;
}

static int32_t build_list(int n, int cyclic) {
  int32_t head = new_obj(K_ONE, 0), prev = head;
  for (int i = 1; i < n; i++) {
    int32_t x = new_obj(K_ONE, 0);
    set_slot(prev, 0, x, 0);
    prev = x;
  }
  if (cyclic) set_slot(prev, 0, head, 0);
  return head;
}

static int32_t build_ring(int n) {
  int32_t *ids = malloc(n * sizeof *ids);
  REQUIRE(ids);
  for (int i = 0; i < n; i++) ids[i] = new_obj(K_NODE, 0);
  for (int i = 0; i < n; i++) {
    set_slot(ids[i], 1, ids[(i + 1) % n], 0);
    set_slot(ids[i], 0, ids[test_rand_below(n)], 0);
  }
  int32_t r = ids[test_rand_below(n)];
  free(ids);
  return r;
}

/* Fill every slot of an array-like object from a pool of ids (or NULL). */
static void fill_from(int32_t id, const int32_t *pool, size_t npool) {
  for (uint32_t s = 0; s < M[id].nslots; s++)
    link_slot(id, s, test_rand_below(5) && npool ? pool[test_rand_below(npool)] : -1);
}

/* A large array whose slots at `at` (element indices) hold fresh objects
 * reachable only through it. */
static int32_t build_big(int kind, size_t n, const uint32_t *at, size_t nat) {
  int32_t id = new_obj(kind, n);
  for (size_t i = 0; i < nat; i++) {
    uint32_t s = at[i];
    if (s >= M[id].nslots) continue;
    int32_t kid = new_obj(test_rand_below(2) ? K_ONE : K_NODE, 0);
    link_slot(id, s, kid);
  }
  for (int i = 0; i < 40; i++) {
    int32_t kid = new_obj(K_ONE, 0);
    link_slot(id, (uint32_t)test_rand_below(M[id].nslots), kid);
  }
  return id;
}

/* One build round: makes every shape, hooks them to the roots. */
static void build_round(void) {
  size_t first = nM;
  npins = 0;
  /* decoys: unreachable objects whose addresses go into scalar words */
  for (int i = 0; i < 60; i++) {
    int32_t d = new_obj(test_rand_below(2) ? K_ONE : K_NOSCAN, 48);
    M[d].decoy = 1;
    if (ndecoys == capdecoys) {
      capdecoys = capdecoys ? 2 * capdecoys : 256;
      decoys = xrealloc(decoys, capdecoys * sizeof *decoys);
    }
    decoys[ndecoys++] = d;
  }
  /* trees, some sharing a subtree */
  int32_t shared = build_tree(4, -1);
  for (int i = 0; i < 3; i++) add_proot(build_tree(6 + (int)test_rand_below(2), shared));
  /* lists and cycles */
  add_proot(build_list(300, 0));
  int32_t holder = new_obj(K_NODE, 0);
  set_slot(holder, 0, build_list(100, 1), 0);
  set_slot(holder, 1, build_ring(150), 0);
  add_proot(holder);
  /* a cycle through the roots: two roots pointing into one cycle */
  int32_t c = build_list(20, 1);
  add_proot(c);
  add_proot(M[c].slot_kid[0]);
  /* noscan payload buffers (>= 16 B: not tiny) hung off ONE objects */
  for (int i = 0; i < 30; i++) {
    int32_t o = new_obj(K_ONE, 0);
    int32_t b = new_obj(K_NOSCAN, 16 + 8 * test_rand_below(500));
    set_slot(o, 0, b, 0);
    add_proot(o);
  }
  /* small arrays over everything built so far this round */
  size_t npool = nM - first;
  int32_t *pool = malloc(npool * sizeof *pool);
  REQUIRE(pool);
  size_t k = 0;
  for (size_t i = first; i < nM; i++)
    if (!M[i].decoy) pool[k++] = (int32_t)i;
  npool = k;
  for (int i = 0; i < 60; i++) {
    int kind = (int)(K_ELEMS + test_rand_below(3));
    size_t n = kind == K_ELEMS ? 2 + test_rand_below(60)
               : kind == K_TRIPLES ? 1 + test_rand_below(40)
                                   : 1 + test_rand_below(100);
    int32_t a = new_obj(kind, n);
    fill_from(a, pool, npool);
    if (test_rand_below(3)) add_proot(a);
    else {
      int32_t t = build_tree(1, -1);
      set_slot(t, 0, a, 0);
      add_proot(t);
    }
  }
  /* conservative objects holding interior pointers */
  for (int i = 0; i < 30; i++) {
    int32_t a = new_obj(K_CONS, 16 + 8 * test_rand_below(300));
    fill_from(a, pool, npool);
    int32_t n = new_obj(K_NODE, 0);
    set_slot(n, 0, a, 0);
    add_proot(n);
  }
  /* objects held only by interior pointers in the conservative root */
  for (int i = 0; i < 40; i++) {
    int32_t a = test_rand_below(2) ? build_tree(2, -1)
                                   : new_obj(K_CONS, 16 + 8 * test_rand_below(100));
    if (M[a].kind == K_CONS) fill_from(a, pool, npool);
    if (!add_croot(a)) break;
  }
  /* large arrays (> 128 KiB): slots at the oblet boundaries */
  {
    /* ELEMS: 16 B elements, slot s is element s; oblet 2 starts at 8192 */
    static const uint32_t at_e[] = {0, 1, 8191, 8192, 8193, 9999, 16383};
    add_proot(build_big(K_ELEMS, 10000, at_e, sizeof at_e / sizeof at_e[0]));
    /* TRIPLES: word 16384 (the boundary) is element 5461's pointer */
    static const uint32_t at_t[] = {0, 5460, 5461, 5462, 7999, 10922, 10923};
    add_proot(build_big(K_TRIPLES, 8000 + (size_t)test_rand_below(4000), at_t,
                        sizeof at_t / sizeof at_t[0]));
    /* PTRS: 40,000 pointers = 3 oblets */
    static const uint32_t at_p[] = {0, 1, 16383, 16384, 16385, 32767, 32768, 32769, 39999};
    add_proot(build_big(K_PTRS, 40000, at_p, sizeof at_p / sizeof at_p[0]));
    /* CONS: 160 KiB conservative, interior pointers across the boundary */
    int32_t cb = new_obj(K_CONS, 20480 * 8);
    for (uint32_t s = 0; s < M[cb].nslots; s++) {
      int32_t kid = test_rand_below(4) == 0 ? new_obj(K_ONE, 0)
                                             : pool[test_rand_below(npool)];
      link_slot(cb, s, kid);
    }
    /* held only by an interior pointer into its second oblet */
    for (size_t i = 0; i < NCROOT; i++) {
      if (croot_id[i] < 0) {
        croot_id[i] = cb;
        croot_off[i] = 140000;
        croots[i] = (uintptr_t)M[cb].addr + 140000;
        break;
      }
    }
    /* a large noscan buffer full of decoys */
    int32_t nb = new_obj(K_NOSCAN, 100000);
    int32_t holder2 = new_obj(K_ONE, 0);
    set_slot(holder2, 0, nb, 0);
    add_proot(holder2);
  }
  free(pool);
  npins = 0;
  memset(pins, 0, sizeof pins);
}

/* Garbage that reuses freed slots: nothing of it is kept. */
static void churn(size_t n) {
  for (size_t i = 0; i < n; i++) {
    void *p;
    size_t sz;
    switch (test_rand_below(8)) {
    case 0: p = gc_alloc(H, t_node), sz = 64; break;
    case 1: p = gc_alloc(H, t_one), sz = 32; break;
    case 2: sz = 1 + test_rand_below(80), p = gc_alloc_array(H, t_elem, sz), sz *= 16; break;
    case 3: sz = 1 + test_rand_below(200), p = gc_alloc_array(H, t_ptr, sz), sz *= 8; break;
    case 4: sz = 8 + 8 * test_rand_below(300), p = gc_malloc(H, sz, 0); break;
    case 5: sz = 16 + test_rand_below(5000), p = gc_malloc(H, sz, GCH_NOSCAN); break;
    case 6: sz = 1 + test_rand_below(30), p = gc_alloc_array(H, t_triple, sz), sz *= 24; break;
    default:
      if (test_rand_below(200) == 0) sz = 40000 + test_rand_below(200000), p = gc_malloc(H, sz, 0);
      else p = gc_alloc(H, t_node), sz = 64;
      break;
    }
    REQUIRE(p);
    n_allocs++;
    /* Dirty it (not past its end): a reachable object whose slot was
     * handed out again gets clobbered and fails its checksum. */
    memset(p, 0xa5, sz < 16 ? sz : 16);
  }
}

/* One mutation round: new objects, rewired edges, dropped roots. */
static void mutate_round(void) {
  npins = 0;
  int32_t fresh[64];
  for (int i = 0; i < 64; i++)
    fresh[i] = new_obj(test_rand_below(2) ? K_NODE : K_ONE, 0);
  /* nothing is allocated from here to the end: reach[] stays valid */
  walk_model("pre-mutate", 0);
  for (int i = 0; i < 64; i++) {
    if (test_rand_below(2)) add_proot(fresh[i]);
    else {
      int32_t p = any_live();
      if (p >= 0 && M[p].nslots) link_slot(p, (uint32_t)test_rand_below(M[p].nslots), fresh[i]);
    }
  }
  size_t nlive = nreach;
  for (int i = 0; i < 300 && nlive; i++) {
    int32_t p = reach[test_rand_below(nlive)];
    if (!M[p].nslots) continue;
    int32_t kid = test_rand_below(4) == 0 ? -1 : reach[test_rand_below(nlive)];
    link_slot(p, (uint32_t)test_rand_below(M[p].nslots), kid);
  }
  for (int i = 0; i < NPROOT / 8; i++) {
    size_t r = test_rand_below(NPROOT);
    proots[r] = NULL;
    proot_id[r] = -1;
  }
  for (int i = 0; i < NCROOT / 8; i++) {
    size_t r = test_rand_below(NCROOT);
    croots[r] = 0;
    croot_id[r] = -1;
  }
  /* a payload rewrite: checksums follow */
  for (int i = 0; i < 50 && nlive; i++) fill_scalars(reach[test_rand_below(nlive)]);
  npins = 0;
  memset(pins, 0, sizeof pins);
}

/* --------------------------------------------------------------- driver */

static void free_model(void) {
  for (size_t i = 0; i < nM; i++) {
    free(M[i].slot_word);
    free(M[i].slot_kid);
    free(M[i].slot_off);
    free(M[i].isptr);
  }
  free(M);
  M = NULL;
  nM = capM = 0;
  free(decoys);
  decoys = NULL;
  ndecoys = capdecoys = 0;
}

static void run(const char *name, unsigned long torture, int rounds) {
  gc_config_t cfg = gc_config_default();
  cfg.torture = torture;
  /* GCHEAP_TORTURE overrides config.torture; with frequent collections
   * the rounds are shortened to keep the run to seconds. */
  const char *env = getenv("GCHEAP_TORTURE");
  unsigned long eff = env && *env ? strtoul(env, NULL, 10) : torture;
  int light = eff && eff < 20;
  int nmut = light ? 2 : 3;
  size_t nchurn = light ? 1000 : 4000;
  if (light) rounds = 1;
  H = test_heap(&cfg);
  static const uint64_t m_node = 0x6, m_one = 0x2, m_elem = 0x2, m_triple = 0x2,
                        m_ptr = 0x1;
  REQUIRE(gc_type_new(H, "node", 64, &m_node, 1, &t_node) == GCH_OK);
  REQUIRE(gc_type_new(H, "one", 32, &m_one, 1, &t_one) == GCH_OK);
  REQUIRE(gc_type_new(H, "elem", 16, &m_elem, 1, &t_elem) == GCH_OK);
  REQUIRE(gc_type_new(H, "triple", 24, &m_triple, 1, &t_triple) == GCH_OK);
  REQUIRE(gc_type_new(H, "ptr", 8, &m_ptr, 1, &t_ptr) == GCH_OK);
  memset(proots, 0, sizeof proots);
  memset(croots, 0, sizeof croots);
  memset(pins, 0, sizeof pins);
  for (size_t i = 0; i < NPROOT; i++) proot_id[i] = -1;
  for (size_t i = 0; i < NCROOT; i++) croot_id[i] = -1;
  REQUIRE(gc_root_add(H, proots, sizeof proots, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(H, croots, sizeof croots, GCH_ROOT_CONSERVATIVE) == GCH_OK);
  REQUIRE(gc_root_add(H, pins, sizeof pins, GCH_ROOT_PRECISE) == GCH_OK);

  /* Measure the header: one scanned 1000-B object is all that lives. */
  proots[0] = gc_malloc(H, 1000, 0);
  REQUIRE(proots[0]);
  CHECK_EQ(gc_collect(H), GCH_OK);
  size_t usable = gc_size_of(H, proots[0]);
  hdr_bytes = test_stats(H).live_bytes - usable;
  CHECK(usable >= 1000 && hdr_bytes % 8 == 0 && hdr_bytes <= 64);
  proots[0] = NULL;
  CHECK_EQ(gc_collect(H), GCH_OK);
  CHECK_EQ(test_stats(H).live_bytes, 0);

  char label[64];
  gc_stats_t s0 = test_stats(H);
  size_t allocs0 = n_allocs;
  for (int r = 0; r < rounds; r++) {
    build_round();
    snprintf(label, sizeof label, "%s build %d", name, r);
    check_collect(label);
    for (int m = 0; m < nmut; m++) {
      mutate_round();
      snprintf(label, sizeof label, "%s mutate %d.%d", name, r, m);
      check_collect(label);
      churn(nchurn);
      snprintf(label, sizeof label, "%s after churn %d.%d", name, r, m);
      walk_model(label, 1); /* still intact after slots were reused */
      check_collect(label);
    }
  }
  gc_stats_t s1 = test_stats(H);
  printf("%s: %zu objects modelled, %zu reachable at the end, %llu cycles\n",
         name, nM, nreach, (unsigned long long)(s1.cycles - s0.cycles));
  if (eff) CHECK(s1.cycles - s0.cycles >= (n_allocs - allocs0) / eff / 2);

  /* Drop everything: two collections reclaim it all. */
  memset(proots, 0, sizeof proots);
  memset(croots, 0, sizeof croots);
  for (size_t i = 0; i < NPROOT; i++) proot_id[i] = -1;
  for (size_t i = 0; i < NCROOT; i++) croot_id[i] = -1;
  CHECK_EQ(gc_collect(H), GCH_OK);
  CHECK_EQ(test_stats(H).live_bytes, 0);
  CHECK_EQ(gc_collect(H), GCH_OK);
  gc_stats_t s2 = test_stats(H);
  CHECK_EQ(s2.live_bytes, 0);
  CHECK_EQ(s2.marked_objects_last, 0);
  CHECK_EQ(s2.bytes_in_use, 0);
  CHECK_EQ(gc_verify(H, stderr), GCH_OK);
  size_t still = 0;
  for (size_t i = 0; i < nM; i++) still += gc_size_of(H, M[i].addr) != 0;
  if (still) failf(name, "%zu of %zu objects still allocated after dropping all roots",
                   still, nM);
  CHECK(s2.total_freed_objects > 0);

  /* And the heap still works: a fresh build after total reclamation. */
  build_round();
  snprintf(label, sizeof label, "%s rebuild", name);
  check_collect(label);

  CHECK_EQ(gc_root_remove(H, proots), GCH_OK);
  CHECK_EQ(gc_root_remove(H, croots), GCH_OK);
  CHECK_EQ(gc_root_remove(H, pins), GCH_OK);
  CHECK_EQ(gc_collect(H), GCH_OK);
  CHECK_EQ(test_stats(H).live_bytes, 0);
  CHECK_EQ(gc_heap_destroy(H), GCH_OK);
  H = NULL;
  free_model();
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  run("normal", 0, 3);
  run("torture97", 97, 2);
  free(reach);
  return test_done("test_reach");
}
