/*
 * mksizeclasses.c -- derives gcheap's small-object size classes and prints
 * them as a C header (the checked-in src/alloc/sizeclasses.h).
 *
 *   cc -std=c11 -O2 -o mk tools/mksizeclasses.c && ./mk > src/alloc/sizeclasses.h
 *
 * The derivation follows the rules of the Go runtime's generator (see
 * /work/shared/design/go-runtime-facts.md section 1); nothing here is
 * copied from it:
 *
 *   1. Walk candidate sizes upward from 8 B in steps of the current
 *      alignment.  The alignment starts at 8 and is raised whenever the
 *      candidate is a power of two: to 16 from 32 B, to size/8 from 128 B,
 *      to 256 from 2 KiB.  (So 24 B is a class, as in Go >= 1.16.)
 *   2. Give each candidate the smallest span, a whole number of 8 KiB
 *      pages, whose tail (bytes left over after the last whole object) is
 *      at most 1/8 of the span.
 *   3. If a candidate has the same span pages and the same objects per
 *      span as the class before it, it replaces that class's size (the
 *      larger size costs nothing).
 *   4. Finally grow each class to the largest multiple of 128 B that still
 *      fits the same object count into its span, when that is larger.
 *
 * Invariants checked before anything is printed (and again by
 * test/alloc/test_sizeclasses.c, which includes this file with
 * MKSIZECLASSES_LIB defined to get mksc_derive/mksc_verify without main):
 * exactly 67 small classes plus class 0 (large); sizes strictly increase,
 * are multiples of 8 and, from 32 B up, of 16; the last class is 32 KiB;
 * tail waste <= span/8; at most 1024 objects per span; the divide magic
 * ceil(2^32/size) gives off/size exactly for every offset in the span; the
 * two lookup tables return the smallest class >= every size 1..32768.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>

#define MKSC_PAGE_SIZE 8192u
#define MKSC_NUM_CLASSES 68u /* including class 0 (large objects) */
#define MKSC_MAX_SMALL 32768u
#define MKSC_SMALL_DIV 8u
#define MKSC_SMALL_MAX 1024u
#define MKSC_LARGE_DIV 128u
#define MKSC_MAX_OBJS 1024u
#define MKSC_CLASS8_LEN (MKSC_SMALL_MAX / MKSC_SMALL_DIV + 1u) /* 129 */
#define MKSC_CLASS128_LEN \
  ((MKSC_MAX_SMALL - MKSC_SMALL_MAX) / MKSC_LARGE_DIV + 1u) /* 249 */

typedef struct mksc_table {
  unsigned nclasses; /* entries used, class 0 included */
  uint32_t size[MKSC_NUM_CLASSES];
  uint32_t npages[MKSC_NUM_CLASSES];
  uint32_t nobjs[MKSC_NUM_CLASSES];
  uint32_t divmagic[MKSC_NUM_CLASSES];
  uint8_t class8[MKSC_CLASS8_LEN];
  uint8_t class128[MKSC_CLASS128_LEN];
} mksc_table_t;

static int mksc_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int mksc_is_pow2(uint32_t x) { return x && !(x & (x - 1)); }

/* Smallest class whose size is >= n (class 0 has size 0, so n == 0 gives 0). */
static unsigned mksc_class_for(const mksc_table_t *t, uint32_t n) {
  for (unsigned c = 0; c < t->nclasses; c++)
    if (t->size[c] >= n) return c;
  return 0;
}

/* Fills *t from the rules above; returns 0, or -1 with a message in err. */
static int mksc_derive(mksc_table_t *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  t->nclasses = 1; /* class 0: large objects, all fields 0 */
  uint32_t align = 8;
  for (uint32_t size = align; size <= MKSC_MAX_SMALL; size += align) {
    if (mksc_is_pow2(size)) {
      if (size >= 2048) align = 256;
      else if (size >= 128) align = size / 8;
      else if (size >= 32) align = 16;
    }
    uint32_t span = MKSC_PAGE_SIZE;
    while (span % size > span / 8) span += MKSC_PAGE_SIZE;
    uint32_t npages = span / MKSC_PAGE_SIZE;
    unsigned last = t->nclasses - 1;
    if (last > 0 && t->npages[last] == npages &&
        span / t->size[last] == span / size) {
      t->size[last] = size; /* same span, same count: keep the larger */
      continue;
    }
    if (t->nclasses == MKSC_NUM_CLASSES)
      return mksc_fail(err, errlen, "more than %u classes at size %u",
                       MKSC_NUM_CLASSES - 1, size);
    t->size[t->nclasses] = size;
    t->npages[t->nclasses] = npages;
    t->nclasses++;
  }
  if (t->nclasses != MKSC_NUM_CLASSES)
    return mksc_fail(err, errlen, "derived %u classes, want %u",
                     t->nclasses - 1, MKSC_NUM_CLASSES - 1);
  for (unsigned c = 1; c < t->nclasses; c++) {
    uint32_t span = t->npages[c] * MKSC_PAGE_SIZE;
    uint32_t grown = span / (span / t->size[c]) & ~(MKSC_LARGE_DIV - 1);
    if (grown > t->size[c]) t->size[c] = grown;
    t->nobjs[c] = span / t->size[c];
    t->divmagic[c] =
        (uint32_t)((((uint64_t)1 << 32) + t->size[c] - 1) / t->size[c]);
  }
  for (uint32_t i = 0; i < MKSC_CLASS8_LEN; i++)
    t->class8[i] = (uint8_t)mksc_class_for(t, i * MKSC_SMALL_DIV);
  for (uint32_t i = 0; i < MKSC_CLASS128_LEN; i++)
    t->class128[i] =
        (uint8_t)mksc_class_for(t, MKSC_SMALL_MAX + i * MKSC_LARGE_DIV);
  return 0;
}

/* The lookup exactly as the generated header's gch_size_to_class does it. */
static unsigned mksc_lookup(const mksc_table_t *t, uint32_t size) {
  if (size <= MKSC_SMALL_MAX)
    return t->class8[(size + MKSC_SMALL_DIV - 1) / MKSC_SMALL_DIV];
  return t->class128[(size - MKSC_SMALL_MAX + MKSC_LARGE_DIV - 1) /
                     MKSC_LARGE_DIV];
}

/* Checks every invariant listed at the top; 0 or -1 with a message. */
static int mksc_verify(const mksc_table_t *t, char *err, size_t errlen) {
  if (t->nclasses != MKSC_NUM_CLASSES)
    return mksc_fail(err, errlen, "%u classes", t->nclasses);
  if (t->size[0] || t->npages[0] || t->nobjs[0] || t->divmagic[0])
    return mksc_fail(err, errlen, "class 0 is not all zero");
  if (t->size[t->nclasses - 1] != MKSC_MAX_SMALL)
    return mksc_fail(err, errlen, "last class is %u B, want %u",
                     t->size[t->nclasses - 1], MKSC_MAX_SMALL);
  for (unsigned c = 1; c < t->nclasses; c++) {
    uint32_t sz = t->size[c], span = t->npages[c] * MKSC_PAGE_SIZE;
    if (sz == 0 || sz % 8)
      return mksc_fail(err, errlen, "class %u: size %u not a multiple of 8",
                       c, sz);
    if (sz >= 32 && sz % 16)
      return mksc_fail(err, errlen, "class %u: size %u not 16-aligned", c,
                       sz);
    if (sz <= t->size[c - 1])
      return mksc_fail(err, errlen, "class %u: size %u not increasing", c,
                       sz);
    if (t->npages[c] == 0 || t->npages[c] > 255)
      return mksc_fail(err, errlen, "class %u: %u pages", c, t->npages[c]);
    if (t->nobjs[c] != span / sz || t->nobjs[c] == 0 ||
        t->nobjs[c] > MKSC_MAX_OBJS)
      return mksc_fail(err, errlen, "class %u: %u objects per span", c,
                       t->nobjs[c]);
    if (span % sz > span / 8)
      return mksc_fail(err, errlen, "class %u: tail waste %u > span/8 (%u)",
                       c, span % sz, span / 8);
    uint64_t m = (((uint64_t)1 << 32) + sz - 1) / sz;
    if (t->divmagic[c] != m)
      return mksc_fail(err, errlen, "class %u: divmagic %u, want %llu", c,
                       t->divmagic[c], (unsigned long long)m);
    for (uint32_t off = 0; off < span; off++)
      if ((uint32_t)(((uint64_t)off * t->divmagic[c]) >> 32) != off / sz)
        return mksc_fail(err, errlen, "class %u: divmagic inexact at %u", c,
                         off);
  }
  for (uint32_t s = 1; s <= MKSC_MAX_SMALL; s++) {
    unsigned want = mksc_class_for(t, s), got = mksc_lookup(t, s);
    if (got != want)
      return mksc_fail(err, errlen, "size %u maps to class %u, want %u", s,
                       got, want);
  }
  return 0;
}

#ifndef MKSIZECLASSES_LIB

/* Largest power of two dividing size, capped at the page size. */
static uint32_t mksc_min_align(uint32_t size) {
  uint32_t a = size & -size;
  return a > MKSC_PAGE_SIZE ? MKSC_PAGE_SIZE : a;
}

static void mksc_print_u32s(const char *decl, const uint32_t *v, unsigned n,
                            unsigned per_line) {
  printf("%s = {", decl);
  for (unsigned i = 0; i < n; i++)
    printf("%s%u%s", i % per_line ? " " : "\n    ", v[i], i + 1 < n ? "," : "");
  printf("\n};\n\n");
}

static void mksc_print_u8s(const char *decl, const uint8_t *v, unsigned n) {
  uint32_t w[MKSC_CLASS128_LEN];
  for (unsigned i = 0; i < n; i++) w[i] = v[i];
  mksc_print_u32s(decl, w, n, 16);
}

static void mksc_print(const mksc_table_t *t) {
  printf(
      "/* generated by tools/mksizeclasses.c -- do not edit.\n"
      " *\n"
      " *   cc -std=c11 -O2 -o mk tools/mksizeclasses.c && "
      "./mk > src/alloc/sizeclasses.h\n"
      " *\n"
      " * Small-object size classes of gcheap.  Class 0 stands for large\n"
      " * objects (one span each); classes 1..%u hold objects of up to %u B.\n"
      " * The table is the one the Go runtime uses (go1.16 and later,\n"
      " * 8 KiB pages); test/alloc/test_sizeclasses.c checks that it is.\n"
      " * Every size is a multiple of 8 and, from 32 B up, of 16: 24 B is\n"
      " * the one class above 16 B that is only 8-aligned, as in Go.\n"
      " *\n"
      " * gch_class_to_nobjs is npages*8192/size; the allocator may fit fewer\n"
      " * objects when it keeps a bitmap at the end of the span.\n"
      " * Object index of byte offset off in a span of class c:\n"
      " *   (uint32_t)(((uint64_t)off * gch_class_to_divmagic[c]) >> 32)\n"
      " * exact for every off < npages*8192 (verified by the generator).\n"
      " *\n"
      " * tail waste: bytes after the last whole object in a span.\n"
      " * max waste:  worst fraction of a span lost to rounding plus tail,\n"
      " *             when every object is one byte over the class below.\n"
      " *\n"
      " * class  bytes/obj  pages  bytes/span  objects  tail waste  max waste"
      "  min align\n",
      t->nclasses - 1, MKSC_MAX_SMALL);
  for (unsigned c = 1; c < t->nclasses; c++) {
    uint32_t span = t->npages[c] * MKSC_PAGE_SIZE;
    uint32_t tail = span - t->nobjs[c] * t->size[c];
    uint32_t worst = (t->size[c] - t->size[c - 1] - 1) * t->nobjs[c] + tail;
    printf(" * %5u  %9u  %5u  %10u  %7u  %10u  %8.2f%%  %9u\n", c, t->size[c],
           t->npages[c], span, t->nobjs[c], tail, 100.0 * worst / span,
           mksc_min_align(t->size[c]));
  }
  printf(" */\n");
  printf(
      "#ifndef GCH_ALLOC_SIZECLASSES_H\n"
      "#define GCH_ALLOC_SIZECLASSES_H\n\n"
      "#include <stddef.h>\n"
      "#include <stdint.h>\n\n"
      "/* Same value as include/gcheap.h (68: class 0 plus %u small). */\n"
      "#ifndef GCH_NUM_SIZE_CLASSES\n"
      "#define GCH_NUM_SIZE_CLASSES %u\n"
      "#endif\n"
      "#define GCH_NUM_SPAN_CLASSES (GCH_NUM_SIZE_CLASSES * 2)\n"
      "#define GCH_SIZECLASS_PAGE_SIZE %u /* the page size the table is for */\n"
      "#define GCH_MAX_SMALL_SIZE %u\n"
      "#define GCH_SMALL_SIZE_DIV %u\n"
      "#define GCH_SMALL_SIZE_MAX %u\n"
      "#define GCH_LARGE_SIZE_DIV %u\n"
      "#define GCH_TINY_SIZE 16\n"
      "#define GCH_MAX_OBJS_PER_SPAN %u\n"
      "#define GCH_SIZE_TO_CLASS8_LEN (GCH_SMALL_SIZE_MAX / GCH_SMALL_SIZE_DIV + 1)\n"
      "#define GCH_SIZE_TO_CLASS128_LEN \\\n"
      "  ((GCH_MAX_SMALL_SIZE - GCH_SMALL_SIZE_MAX) / GCH_LARGE_SIZE_DIV + 1)\n\n"
      "_Static_assert(GCH_NUM_SIZE_CLASSES == %u, \"size class count\");\n"
      "#ifdef GCH_PAGE_SIZE\n"
      "_Static_assert(GCH_PAGE_SIZE == GCH_SIZECLASS_PAGE_SIZE,\n"
      "               \"size classes were generated for another page size\");\n"
      "#endif\n\n",
      t->nclasses - 1, t->nclasses, MKSC_PAGE_SIZE, MKSC_MAX_SMALL,
      MKSC_SMALL_DIV, MKSC_SMALL_MAX, MKSC_LARGE_DIV, MKSC_MAX_OBJS,
      t->nclasses);

  printf("/* Object bytes of each class (0 for class 0). */\n");
  mksc_print_u32s(
      "static const uint32_t gch_class_to_size[GCH_NUM_SIZE_CLASSES]",
      t->size, t->nclasses, 8);
  printf("/* 8 KiB pages in a span of each class. */\n");
  mksc_print_u32s(
      "static const uint8_t gch_class_to_npages[GCH_NUM_SIZE_CLASSES]",
      t->npages, t->nclasses, 16);
  printf("/* npages*8192/size: objects in a span with no tail bitmap. */\n");
  mksc_print_u32s(
      "static const uint16_t gch_class_to_nobjs[GCH_NUM_SIZE_CLASSES]",
      t->nobjs, t->nclasses, 12);
  printf("/* ceil(2^32 / size): index = (off * divmagic) >> 32. */\n");
  mksc_print_u32s(
      "static const uint32_t gch_class_to_divmagic[GCH_NUM_SIZE_CLASSES]",
      t->divmagic, t->nclasses, 6);
  printf("/* Class of a size <= 1024, indexed by ceil(size / 8). */\n");
  mksc_print_u8s(
      "static const uint8_t gch_size_to_class8[GCH_SIZE_TO_CLASS8_LEN]",
      t->class8, MKSC_CLASS8_LEN);
  printf("/* Class of a size in (1024, 32768], indexed by\n"
         " * ceil((size - 1024) / 128). */\n");
  mksc_print_u8s(
      "static const uint8_t gch_size_to_class128[GCH_SIZE_TO_CLASS128_LEN]",
      t->class128, MKSC_CLASS128_LEN);
  printf(
      "#define GCH_SC_COUNT_(a) (sizeof(a) / sizeof((a)[0]))\n"
      "_Static_assert(GCH_SC_COUNT_(gch_class_to_size) == GCH_NUM_SIZE_CLASSES,\n"
      "               \"gch_class_to_size\");\n"
      "_Static_assert(GCH_SC_COUNT_(gch_class_to_npages) == "
      "GCH_NUM_SIZE_CLASSES,\n"
      "               \"gch_class_to_npages\");\n"
      "_Static_assert(GCH_SC_COUNT_(gch_class_to_nobjs) == GCH_NUM_SIZE_CLASSES,\n"
      "               \"gch_class_to_nobjs\");\n"
      "_Static_assert(GCH_SC_COUNT_(gch_class_to_divmagic) == "
      "GCH_NUM_SIZE_CLASSES,\n"
      "               \"gch_class_to_divmagic\");\n"
      "_Static_assert(GCH_SC_COUNT_(gch_size_to_class8) == %u,\n"
      "               \"gch_size_to_class8\");\n"
      "_Static_assert(GCH_SC_COUNT_(gch_size_to_class128) == %u,\n"
      "               \"gch_size_to_class128\");\n"
      "#undef GCH_SC_COUNT_\n\n"
      "/* Size class for 1 <= size <= GCH_MAX_SMALL_SIZE: the smallest class\n"
      " * whose objects hold size bytes. */\n"
      "static inline unsigned gch_size_to_class(size_t size) {\n"
      "  if (size <= GCH_SMALL_SIZE_MAX)\n"
      "    return gch_size_to_class8[(size + GCH_SMALL_SIZE_DIV - 1) /\n"
      "                              GCH_SMALL_SIZE_DIV];\n"
      "  return gch_size_to_class128[(size - GCH_SMALL_SIZE_MAX +\n"
      "                               GCH_LARGE_SIZE_DIV - 1) /\n"
      "                              GCH_LARGE_SIZE_DIV];\n"
      "}\n\n"
      "#endif /* GCH_ALLOC_SIZECLASSES_H */\n",
      MKSC_CLASS8_LEN, MKSC_CLASS128_LEN);
}

int main(void) {
  mksc_table_t t;
  char err[200];
  if (mksc_derive(&t, err, sizeof err) || mksc_verify(&t, err, sizeof err)) {
    fprintf(stderr, "mksizeclasses: %s\n", err);
    return 1;
  }
  mksc_print(&t);
  return 0;
}

#endif /* MKSIZECLASSES_LIB */
