/*
 * mutator.h -- one seeded random mutator, compiled once per collector.
 *
 * test_diff.c includes this file twice, each time after defining:
 *   MUT_FN(name)              the name of the instance's function `name`
 *   MUT_ALLOC(nwords, nptr)   a zeroed (at least where pointers go) object of
 *                             nwords words whose words 1..nptr are pointers
 *                             (nptr == 0: pointer-free); NULL = failure
 *   MUT_STORE(obj, slot, val) store a pointer into a heap object
 *   MUT_HEAP_BYTES()          the collector's current heap size (for peaks)
 *   MUT_ROOTS                 a void *[MUT_NROOTS] root array the collector
 *                             scans (registered or static)
 * and optionally MUT_VISIT(p, nwords, nptr), called once for each object a
 * checksum walk reaches.
 *
 * Object layout (words): [0] meta = id | nptr << 24 | nwords << 28 |
 * ver << 48; [1..nptr] pointers; then payload, a hash of (id, ver, word),
 * in the first 16 payload words and the last word (large objects are not
 * filled in between).  Nothing the mutator does depends on an address, so
 * two correct collectors produce identical checksum sequences.
 *
 * Steps (per seed): allocate 16..600 B objects with 0..4 pointers that
 * point at rooted objects (45%), link two rooted objects (20%), drop a root
 * (8%), copy a root (8%), descend a root along a pointer (8%), rewrite an
 * object's payload (7%), fold an object's identity into a running hash
 * (3%), and 1 step in 1000 a large object of 40..200 KiB with up to 8
 * pointers.  Every `every` steps a walk of the whole reachable graph from
 * the roots (in root order, depth first) folds every reached object's meta,
 * payload check and edges into a checksum, appended to the sequence.
 */
#ifndef GCH_MUTATOR_COMMON
#define GCH_MUTATOR_COMMON

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUT_NROOTS 1000
#define MUT_MAX_SUMS 256
#define MUT_PAYLOAD_HEAD 16

typedef struct mut_result {
  uint64_t sums[MUT_MAX_SUMS]; /* one checksum per walk */
  size_t nsums;
  uint64_t running;            /* the running hash of reads */
  size_t reach_objects, reach_words; /* at the last walk */
  size_t peak_heap;            /* max of MUT_HEAP_BYTES() samples */
  size_t errors;               /* payload/meta mismatches seen by walks */
  size_t allocs;
} mut_result_t;

static inline uint64_t mut_mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct mut_rng {
  uint64_t s;
} mut_rng_t;
static inline uint64_t mut_next(mut_rng_t *r) {
  r->s += 0x9e3779b97f4a7c15ull;
  return mut_mix(r->s);
}
static inline uint64_t mut_below(mut_rng_t *r, uint64_t n) {
  return n ? mut_next(r) % n : 0;
}

#define MUT_META(id, nptr, nwords, ver)                                       \
  ((uint64_t)(id) | (uint64_t)(nptr) << 24 | (uint64_t)(nwords) << 28 |       \
   (uint64_t)(ver) << 48)
#define MUT_ID(m) ((uint32_t)((m)&0xffffff))
#define MUT_NPTR(m) ((uint32_t)(((m) >> 24) & 0xf))
#define MUT_NWORDS(m) ((uint32_t)(((m) >> 28) & 0xfffff))
#define MUT_VER(m) ((uint32_t)((m) >> 48))

static inline uint64_t mut_payload(uint64_t meta, uint32_t i) {
  return mut_mix(meta ^ ((uint64_t)i << 20) ^ 0x5bd1e995u);
}

/* Is word i a payload word that is written? */
static inline int mut_is_payload(uint32_t nwords, uint32_t nptr, uint32_t i) {
  return i > nptr && (i < nptr + 1 + MUT_PAYLOAD_HEAD || i == nwords - 1);
}

static inline void mut_fill(uint64_t *w, uint64_t meta) {
  uint32_t nwords = MUT_NWORDS(meta), nptr = MUT_NPTR(meta);
  w[0] = meta;
  for (uint32_t i = nptr + 1; i < nwords && i < nptr + 1 + MUT_PAYLOAD_HEAD; i++)
    w[i] = mut_payload(meta, i);
  if (nwords - 1 > nptr) w[nwords - 1] = mut_payload(meta, nwords - 1);
}

/* Walk scratch, shared by the instances (used one at a time). */
static uint32_t *mut_seen;   /* per id: the walk epoch that reached it */
static size_t mut_seen_cap;
static uint32_t mut_epoch;
static void **mut_stack;
static size_t mut_stack_cap;

static void mut_scratch(size_t ids) {
  if (ids > mut_seen_cap) {
    size_t cap = mut_seen_cap ? mut_seen_cap : 4096;
    while (cap < ids) cap *= 2;
    mut_seen = realloc(mut_seen, cap * sizeof *mut_seen);
    if (!mut_seen) abort();
    memset(mut_seen + mut_seen_cap, 0, (cap - mut_seen_cap) * sizeof *mut_seen);
    mut_seen_cap = cap;
  }
}

#endif /* GCH_MUTATOR_COMMON */

/* ------------------------------------------------- one instance */

#ifndef MUT_VISIT
#define MUT_VISIT(p, nwords, nptr) ((void)0)
#endif

/* Walk everything reachable from the roots; returns its checksum. */
static uint64_t MUT_FN(walk)(uint64_t seed, mut_result_t *out) {
  uint64_t h = mut_mix(seed);
  size_t sp = 0, objs = 0, words = 0;
  uint32_t ep = ++mut_epoch;
#define MUT_REACH(p)                                                          \
  do {                                                                        \
    uint64_t *q_ = (uint64_t *)(p);                                           \
    if (q_ && mut_seen[MUT_ID(q_[0])] != ep) {                                \
      mut_seen[MUT_ID(q_[0])] = ep;                                           \
      if (sp == mut_stack_cap) {                                              \
        mut_stack_cap = mut_stack_cap ? 2 * mut_stack_cap : 4096;             \
        mut_stack = realloc(mut_stack, mut_stack_cap * sizeof *mut_stack);    \
        if (!mut_stack) abort();                                              \
      }                                                                       \
      mut_stack[sp++] = q_;                                                   \
    }                                                                         \
  } while (0)
  for (size_t i = 0; i < MUT_NROOTS; i++) {
    uint64_t *r = MUT_ROOTS[i];
    h = mut_mix(h ^ (r ? r[0] : 0xffffffffull) ^ ((uint64_t)i << 40));
    MUT_REACH(r);
    while (sp) {
      uint64_t *o = mut_stack[--sp];
      uint64_t meta = o[0];
      uint32_t nw = MUT_NWORDS(meta), np = MUT_NPTR(meta);
      objs++;
      words += nw;
      MUT_VISIT(o, nw, np);
      h = mut_mix(h ^ meta);
      for (uint32_t k = 1; k < nw; k++) {
        if (!mut_is_payload(nw, np, k)) continue;
        if (o[k] != mut_payload(meta, k)) {
          if (out->errors++ < 10)
            fprintf(stderr, "mutator: seed %llu: object id %u word %u corrupt\n",
                    (unsigned long long)seed, MUT_ID(meta), k);
          h = mut_mix(h ^ o[k]);
        }
      }
      for (uint32_t k = 1; k <= np; k++) {
        uint64_t *c = (uint64_t *)o[k];
        h = mut_mix(h ^ (c ? c[0] : 0xfffffffffull) ^ k);
        MUT_REACH(c);
      }
    }
  }
#undef MUT_REACH
  out->reach_objects = objs;
  out->reach_words = words;
  return mut_mix(h ^ objs ^ (words << 32));
}

static void MUT_FN(run)(uint64_t seed, size_t steps, size_t every,
                        mut_result_t *out) {
  mut_rng_t rng = {seed * 0x2545f4914f6cdd1dull + 1};
  uint32_t next_id = 1;
  uint64_t run = 0;
  memset(out, 0, sizeof *out);
  memset(MUT_ROOTS, 0, sizeof(void *) * MUT_NROOTS);
  mut_scratch(steps + 16);
#define MUT_SAMPLE()                                                          \
  do {                                                                        \
    size_t hb_ = MUT_HEAP_BYTES();                                            \
    if (hb_ > out->peak_heap) out->peak_heap = hb_;                           \
  } while (0)
  for (size_t step = 1; step <= steps; step++) {
    unsigned op = (unsigned)mut_below(&rng, 1000);
    if (op < 450 || op == 999) {
      uint32_t nwords, nptr;
      if (op == 999) {
        static const uint32_t big[4] = {5000, 9000, 17000, 25000};
        nwords = big[mut_below(&rng, 4)];
        nptr = (uint32_t)mut_below(&rng, 9);
      } else {
        nwords = 2 + (uint32_t)mut_below(&rng, 74); /* 16..600 B */
        uint32_t maxp = nwords - 1 < 4 ? nwords - 1 : 4;
        nptr = (uint32_t)mut_below(&rng, maxp + 1);
      }
      uint64_t *o = MUT_ALLOC(nwords, nptr);
      if (!o) {
        fprintf(stderr, "mutator: allocation of %u words failed\n", nwords);
        abort();
      }
      out->allocs++;
      uint64_t meta = MUT_META(next_id, nptr, nwords, 0);
      next_id++;
      mut_fill(o, meta);
      for (uint32_t k = 1; k <= nptr; k++)
        if (mut_below(&rng, 2))
          MUT_STORE(o, (void **)&o[k], MUT_ROOTS[mut_below(&rng, MUT_NROOTS)]);
      MUT_ROOTS[mut_below(&rng, MUT_NROOTS)] = o;
      if (op == 999) MUT_SAMPLE();
    } else if (op < 650) { /* link */
      uint64_t *a = MUT_ROOTS[mut_below(&rng, MUT_NROOTS)];
      void *b = MUT_ROOTS[mut_below(&rng, MUT_NROOTS)];
      if (a && MUT_NPTR(a[0])) {
        uint32_t k = 1 + (uint32_t)mut_below(&rng, MUT_NPTR(a[0]));
        MUT_STORE(a, (void **)&a[k], b);
      }
    } else if (op < 730) { /* drop */
      MUT_ROOTS[mut_below(&rng, MUT_NROOTS)] = NULL;
    } else if (op < 810) { /* copy */
      size_t i = mut_below(&rng, MUT_NROOTS), j = mut_below(&rng, MUT_NROOTS);
      MUT_ROOTS[i] = MUT_ROOTS[j];
    } else if (op < 890) { /* descend */
      size_t i = mut_below(&rng, MUT_NROOTS);
      uint64_t *a = MUT_ROOTS[i];
      if (a && MUT_NPTR(a[0]))
        MUT_ROOTS[i] = (void *)a[1 + mut_below(&rng, MUT_NPTR(a[0]))];
    } else if (op < 960) { /* rewrite payload */
      uint64_t *a = MUT_ROOTS[mut_below(&rng, MUT_NROOTS)];
      if (a) {
        uint64_t m = a[0];
        mut_fill(a, MUT_META(MUT_ID(m), MUT_NPTR(m), MUT_NWORDS(m),
                             (MUT_VER(m) + 1) & 0xffff));
      }
    } else { /* read */
      uint64_t *a = MUT_ROOTS[mut_below(&rng, MUT_NROOTS)];
      run = mut_mix(run ^ (a ? a[0] : 1));
      if (a && MUT_NWORDS(a[0]) > 1 + MUT_NPTR(a[0]))
        run = mut_mix(run ^ a[MUT_NWORDS(a[0]) - 1]);
    }
    if ((step & 255) == 0) MUT_SAMPLE();
    if (step % every == 0 && out->nsums < MUT_MAX_SUMS)
      out->sums[out->nsums++] = MUT_FN(walk)(seed, out);
  }
  out->running = run;
  MUT_SAMPLE();
#undef MUT_SAMPLE
}

#undef MUT_VISIT
