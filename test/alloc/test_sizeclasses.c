/*
 * test_sizeclasses.c -- checks the checked-in size-class table
 * (src/alloc/sizeclasses.h) against its generator and its invariants.
 *
 * Standalone: needs no library code.  It includes tools/mksizeclasses.c
 * with MKSIZECLASSES_LIB defined, re-derives the table and requires every
 * entry of every header table to match (so a stale header fails here).
 * It then checks the header's tables directly, without the generator:
 * tail waste <= span/8; sizes multiples of 8, 16-aligned from 32 B,
 * strictly increasing, ending at 32 KiB; nobjs = npages*8192/size <= 1024;
 * divmagic exact for every byte offset of every span; gch_size_to_class(s)
 * is the smallest class >= s for every s in 1..32768, and the boundaries
 * of every class map as they should.  Last it compares the table with Go's
 * (go1.16+ sizeclasses.go, as listed in the design notes) and makes sure
 * mksc_verify rejects a few corrupted tables.
 *
 * Exit status 0 on success; on failure each problem is printed and 1 is
 * returned.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gcheap.h"
#include "arena/pagealloc.h"
#include "alloc/sizeclasses.h"

#define MKSIZECLASSES_LIB
#include "../../tools/mksizeclasses.c"

_Static_assert(GCH_NUM_SIZE_CLASSES == 68, "gcheap.h and sizeclasses.h agree");
_Static_assert(GCH_NUM_SIZE_CLASSES == MKSC_NUM_CLASSES, "generator agrees");
_Static_assert(GCH_PAGE_SIZE == GCH_SIZECLASS_PAGE_SIZE, "page size");
_Static_assert(GCH_PAGE_SIZE == MKSC_PAGE_SIZE, "generator page size");
_Static_assert(GCH_NUM_SPAN_CLASSES == 136, "span classes");
_Static_assert(GCH_MAX_SMALL_SIZE == 32768, "max small size");
_Static_assert(GCH_SIZE_TO_CLASS8_LEN == MKSC_CLASS8_LEN, "class8 length");
_Static_assert(GCH_SIZE_TO_CLASS128_LEN == MKSC_CLASS128_LEN,
               "class128 length");
_Static_assert(sizeof gch_size_to_class8 == 129, "class8 entries");
_Static_assert(sizeof gch_size_to_class128 == 249, "class128 entries");

static int failures;

#define EXPECT(cond, ...)                                          \
  do {                                                             \
    if (!(cond)) {                                                 \
      if (failures < 40) {                                         \
        fprintf(stderr, "%s:%d: FAILED %s: ", __FILE__, __LINE__, \
                #cond);                                            \
        fprintf(stderr, __VA_ARGS__);                              \
        fputc('\n', stderr);                                       \
      }                                                            \
      failures++;                                                  \
    }                                                              \
  } while (0)

/* Go's table (go1.16 and later): bytes/obj, span pages, objects/span. */
static const uint32_t go_table[67][3] = {
    {8, 1, 1024},    {16, 1, 512},    {24, 1, 341},    {32, 1, 256},
    {48, 1, 170},    {64, 1, 128},    {80, 1, 102},    {96, 1, 85},
    {112, 1, 73},    {128, 1, 64},    {144, 1, 56},    {160, 1, 51},
    {176, 1, 46},    {192, 1, 42},    {208, 1, 39},    {224, 1, 36},
    {240, 1, 34},    {256, 1, 32},    {288, 1, 28},    {320, 1, 25},
    {352, 1, 23},    {384, 1, 21},    {416, 1, 19},    {448, 1, 18},
    {480, 1, 17},    {512, 1, 16},    {576, 1, 14},    {640, 1, 12},
    {704, 1, 11},    {768, 1, 10},    {896, 1, 9},     {1024, 1, 8},
    {1152, 1, 7},    {1280, 1, 6},    {1408, 2, 11},   {1536, 1, 5},
    {1792, 2, 9},    {2048, 1, 4},    {2304, 2, 7},    {2688, 1, 3},
    {3072, 3, 8},    {3200, 2, 5},    {3456, 3, 7},    {4096, 1, 2},
    {4864, 3, 5},    {5376, 2, 3},    {6144, 3, 4},    {6528, 4, 5},
    {6784, 5, 6},    {6912, 6, 7},    {8192, 1, 1},    {9472, 7, 6},
    {9728, 6, 5},    {10240, 5, 4},   {10880, 4, 3},   {12288, 3, 2},
    {13568, 5, 3},   {14336, 7, 4},   {16384, 2, 1},   {18432, 9, 4},
    {19072, 7, 3},   {20480, 5, 2},   {21760, 8, 3},   {24576, 3, 1},
    {27264, 10, 3},  {28672, 7, 2},   {32768, 4, 1},
};

/* The generator's own derivation matches the header entry by entry. */
static void check_generator(void) {
  mksc_table_t t;
  char err[200] = "";
  EXPECT(mksc_derive(&t, err, sizeof err) == 0, "derive: %s", err);
  EXPECT(mksc_verify(&t, err, sizeof err) == 0, "verify: %s", err);
  EXPECT(t.nclasses == GCH_NUM_SIZE_CLASSES, "%u classes", t.nclasses);
  for (unsigned c = 0; c < GCH_NUM_SIZE_CLASSES; c++) {
    EXPECT(t.size[c] == gch_class_to_size[c], "class %u size %u vs %u", c,
           t.size[c], gch_class_to_size[c]);
    EXPECT(t.npages[c] == gch_class_to_npages[c], "class %u npages %u vs %u",
           c, t.npages[c], gch_class_to_npages[c]);
    EXPECT(t.nobjs[c] == gch_class_to_nobjs[c], "class %u nobjs %u vs %u", c,
           t.nobjs[c], gch_class_to_nobjs[c]);
    EXPECT(t.divmagic[c] == gch_class_to_divmagic[c],
           "class %u divmagic %u vs %u", c, t.divmagic[c],
           gch_class_to_divmagic[c]);
  }
  for (unsigned i = 0; i < GCH_SIZE_TO_CLASS8_LEN; i++)
    EXPECT(t.class8[i] == gch_size_to_class8[i], "class8[%u] %u vs %u", i,
           t.class8[i], gch_size_to_class8[i]);
  for (unsigned i = 0; i < GCH_SIZE_TO_CLASS128_LEN; i++)
    EXPECT(t.class128[i] == gch_size_to_class128[i], "class128[%u] %u vs %u",
           i, t.class128[i], gch_size_to_class128[i]);
}

/* The header's tables on their own. */
static void check_classes(void) {
  EXPECT(gch_class_to_size[0] == 0 && gch_class_to_npages[0] == 0 &&
             gch_class_to_nobjs[0] == 0 && gch_class_to_divmagic[0] == 0,
         "class 0 must be all zero");
  EXPECT(gch_class_to_size[GCH_NUM_SIZE_CLASSES - 1] == GCH_MAX_SMALL_SIZE,
         "last class %u", gch_class_to_size[GCH_NUM_SIZE_CLASSES - 1]);
  EXPECT(gch_class_to_size[2] == GCH_TINY_SIZE, "tiny class is %u B",
         gch_class_to_size[2]);
  for (unsigned c = 1; c < GCH_NUM_SIZE_CLASSES; c++) {
    uint32_t sz = gch_class_to_size[c];
    uint32_t span = (uint32_t)gch_class_to_npages[c] * GCH_SIZECLASS_PAGE_SIZE;
    EXPECT(sz > gch_class_to_size[c - 1], "class %u: %u not increasing", c,
           sz);
    EXPECT(sz % 8 == 0, "class %u: %u not a multiple of 8", c, sz);
    EXPECT(sz < 32 || sz % 16 == 0, "class %u: %u not 16-aligned", c, sz);
    EXPECT(gch_class_to_npages[c] >= 1, "class %u: no pages", c);
    EXPECT(gch_class_to_nobjs[c] == span / sz, "class %u: nobjs %u != %u", c,
           gch_class_to_nobjs[c], span / sz);
    EXPECT(gch_class_to_nobjs[c] >= 1 &&
               gch_class_to_nobjs[c] <= GCH_MAX_OBJS_PER_SPAN,
           "class %u: %u objects", c, gch_class_to_nobjs[c]);
    EXPECT(span % sz <= span / 8, "class %u: tail waste %u of %u", c,
           span % sz, span);
    uint32_t m = gch_class_to_divmagic[c];
    EXPECT((uint64_t)m == ((((uint64_t)1 << 32) + sz - 1) / sz),
           "class %u: divmagic %u is not ceil(2^32/%u)", c, m, sz);
    for (uint32_t off = 0; off < span; off++) {
      uint32_t idx = (uint32_t)(((uint64_t)off * m) >> 32);
      if (idx != off / sz) {
        EXPECT(idx == off / sz, "class %u: offset %u gives index %u", c, off,
               idx);
        break;
      }
    }
  }
}

/* Smallest class whose size is >= s, by linear search. */
static unsigned slow_class(size_t s) {
  for (unsigned c = 1; c < GCH_NUM_SIZE_CLASSES; c++)
    if (gch_class_to_size[c] >= s) return c;
  return 0;
}

static void check_lookup(void) {
  for (size_t s = 1; s <= GCH_MAX_SMALL_SIZE; s++) {
    unsigned got = gch_size_to_class(s), want = slow_class(s);
    EXPECT(got == want, "gch_size_to_class(%zu) = %u, want %u", s, got, want);
    if (got != want) break;
  }
  for (unsigned c = 1; c < GCH_NUM_SIZE_CLASSES; c++) {
    size_t sz = gch_class_to_size[c];
    EXPECT(gch_size_to_class(sz) == c, "size %zu -> %u, want %u", sz,
           gch_size_to_class(sz), c);
    EXPECT(gch_size_to_class(sz - 1) == c, "size %zu -> %u, want %u", sz - 1,
           gch_size_to_class(sz - 1), c);
    EXPECT(gch_size_to_class(gch_class_to_size[c - 1] + 1) == c,
           "size %u -> %u, want %u", gch_class_to_size[c - 1] + 1,
           gch_size_to_class(gch_class_to_size[c - 1] + 1), c);
    if (c + 1 < GCH_NUM_SIZE_CLASSES)
      EXPECT(gch_size_to_class(sz + 1) == c + 1, "size %zu -> %u, want %u",
             sz + 1, gch_size_to_class(sz + 1), c + 1);
  }
  EXPECT(gch_size_to_class(1) == 1, "size 1");
  EXPECT(gch_size_to_class(1024) == 32, "size 1024");
  EXPECT(gch_size_to_class(1025) == 33, "size 1025");
  EXPECT(gch_size_to_class(32768) == 67, "size 32768");
}

static void check_go_table(void) {
  for (unsigned c = 1; c < GCH_NUM_SIZE_CLASSES; c++) {
    const uint32_t *g = go_table[c - 1];
    EXPECT(gch_class_to_size[c] == g[0] && gch_class_to_npages[c] == g[1] &&
               gch_class_to_nobjs[c] == g[2],
           "class %u is %u/%u/%u, Go has %u/%u/%u", c, gch_class_to_size[c],
           gch_class_to_npages[c], gch_class_to_nobjs[c], g[0], g[1], g[2]);
  }
}

/* mksc_verify must notice broken tables. */
static void check_verify_rejects(void) {
  mksc_table_t good, bad;
  char err[200];
  if (mksc_derive(&good, err, sizeof err)) return; /* reported above */
  bad = good;
  bad.size[5] = 40; /* 8-aligned but not 16-aligned above 32 */
  EXPECT(mksc_verify(&bad, err, sizeof err) != 0, "alignment not caught");
  bad = good;
  bad.size[10] = bad.size[9]; /* not increasing */
  EXPECT(mksc_verify(&bad, err, sizeof err) != 0, "order not caught");
  bad = good;
  bad.npages[35] = 1; /* 1408 B in one page: tail 1152 > 1024 */
  bad.nobjs[35] = 8192 / 1408;
  EXPECT(mksc_verify(&bad, err, sizeof err) != 0, "tail waste not caught");
  bad = good;
  bad.divmagic[3]--; /* floor instead of ceil for 24 B: inexact */
  EXPECT(mksc_verify(&bad, err, sizeof err) != 0, "divmagic not caught");
  bad = good;
  bad.class128[7]++; /* a lookup entry off by one */
  EXPECT(mksc_verify(&bad, err, sizeof err) != 0, "lookup not caught");
}

int main(void) {
  check_generator();
  check_classes();
  check_lookup();
  check_go_table();
  check_verify_rejects();
  if (failures) {
    fprintf(stderr, "test_sizeclasses: %d check(s) FAILED\n", failures);
    return 1;
  }
  printf("test_sizeclasses: %d classes OK\n", GCH_NUM_SIZE_CLASSES - 1);
  return 0;
}
