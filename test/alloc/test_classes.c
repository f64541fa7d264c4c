/*
 * test_classes.c -- every size class, from both sides of each boundary.
 *
 * For each size n (1..16, every class size and +-1, 32 KiB + 1, 64 KiB and
 * 1 MiB) and each kind of object (raw noscan bytes, raw conservative bytes,
 * a registered type with a pointer map), allocate enough objects to fill
 * several spans and check for every object:
 *   - non-NULL, zeroed, aligned (8 B; 16 B when n is a multiple of 16;
 *     tiny noscan objects naturally aligned for their size);
 *   - gc_size_of >= n, gc_base of the first, middle and last byte is the
 *     object (the enclosing 16-B block for tiny objects);
 *   - the span holding it covers all n bytes and has the expected class
 *     (the smallest class that fits, plus the header word for scan objects
 *     over 512 B) and kind (noscan or scan);
 *   - objects never overlap, and a pattern written into each survives the
 *     allocation of all the others and a collection.
 * Raw objects are kept alive by a precise root range holding them all;
 * typed objects form a linked list through their pointer words with only
 * the head rooted, so the pointer map is what keeps them alive.  Dropping
 * the root and collecting must then free every object, and the stats must
 * show it exactly (freed objects and bytes, per-class frees and allocs).
 *
 * Also: arrays of types (the map tiled over elements, headers and oblets),
 * precision of typed objects (a heap pointer in a non-pointer word does not
 * keep its target alive), and foreign pointers.
 */
#include "testutil.h"

#include <stdbool.h>
#include <string.h>

#include "heap.h"

/* Bytes before the user pointer of a > 512 B scan object (its type). */
#ifdef GCH_HEADER_BYTES
#define HDR ((size_t)GCH_HEADER_BYTES)
#else
#define HDR ((size_t)8)
#endif

enum kind { K_NOSCAN, K_CONS, K_TYPED };
static const char *const kind_name[] = {"noscan", "conservative", "typed"};

static gc_heap_t *H;
static size_t csize[GCH_NUM_SIZE_CLASSES];
static int ncls;      /* classes 1..ncls-1 */
static size_t maxsmall;

/* Failures of per-object checks are counted in full but printed only a few
 * times per (size, kind) group, so one systematic bug stays readable. */
static int group_printed;
static size_t cur_n;
static enum kind cur_kind;
#define OCHECK(c)                                                            \
  do {                                                                       \
    if (!(c)) {                                                              \
      test_failures++;                                                       \
      if (group_printed++ < 4)                                               \
        fprintf(stderr, "%s:%d: CHECK failed: %s [size %zu, %s]\n",          \
                __FILE__, __LINE__, #c, cur_n, kind_name[cur_kind]);         \
    }                                                                        \
  } while (0)

static size_t align_bad, align_first_n;
static uintptr_t align_first;
static enum kind align_first_kind;

static int class_for(size_t n) {
  for (int c = 1; c < ncls; c++)
    if (csize[c] >= n) return c;
  return 0;
}

static size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }

/* What the allocator should do with an object of n bytes of this kind
 * (malloc.c: tiny < 16 B noscan; scan <= 512 B headerless; scan > 512 B
 * with a type header of HDR bytes; > 32 KiB large). */
typedef struct expect {
  int cls;    /* 0 = large */
  bool tiny, header, noscan;
} expect_t;

static expect_t expect_for(size_t n, enum kind k) {
  expect_t e = {0, false, false, k == K_NOSCAN};
  if (k == K_NOSCAN) {
    if (n < 16) {
      e.tiny = true;
      e.cls = class_for(16);
    } else if (n <= maxsmall) {
      e.cls = class_for(n);
    }
    return e;
  }
  size_t r = n ? round8(n) : 8;
  if (r <= 512) {
    e.cls = class_for(r);
  } else if (r + HDR <= maxsmall) {
    e.cls = class_for(r + HDR);
    e.header = true;
  }
  return e;
}

/* Objects per group: enough for three spans of the class, bounded. */
static size_t count_for(size_t n, expect_t e) {
  if (e.cls == 0) return 4;
  size_t per_span = gch_class_to_npages[e.cls] * GCH_PAGE_SIZE / csize[e.cls];
  if (e.tiny) per_span *= 16 / n;
  size_t c = 3 * per_span;
  if (c < 8) c = 8;
  if (c > 20000) c = 20000;
  return c;
}

static uint8_t pat_byte(size_t i, size_t j, size_t n) {
  return (uint8_t)(i * 7 + j * 13 + n + 1);
}
/* A word no heap address can equal (above 2^48). */
static uint64_t pat_word(size_t i, size_t w) {
  return 0xa500000000000000ull | ((uint64_t)i << 16) | w;
}

static void check_object(void *p, size_t n, enum kind k, expect_t e) {
  uintptr_t a = (uintptr_t)p;
  OCHECK(p != NULL);
  if (!p) return;
  /* zeroed */
  const uint8_t *b = p;
  size_t nz = 0;
  for (size_t j = 0; j < n; j++) nz += b[j] != 0;
  OCHECK(nz == 0);
  /* alignment */
  if (e.tiny) {
    size_t al = n % 8 == 0 ? 8 : n % 4 == 0 ? 4 : n % 2 == 0 ? 2 : 1;
    OCHECK(a % al == 0);
  } else {
    OCHECK(a % 8 == 0);
    /* Class sizes from 32 B up are multiples of 16 (sizeclasses.h), so an
     * object whose size is a multiple of 16 can expect 16-B alignment
     * (long double, __int128, SSE vectors).  Counted separately so that
     * one systematic cause gives one readable report. */
    if (n >= 16 && n % 16 == 0 && a % 16 != 0) {
      if (!align_bad++) {
        align_first = a;
        align_first_n = n;
        align_first_kind = cur_kind;
      }
    }
  }
  /* size and base */
  OCHECK(gc_size_of(H, p) >= n);
  uintptr_t base = e.tiny ? (a & ~(uintptr_t)15) : a;
  OCHECK((uintptr_t)gc_base(H, p) == base);
  OCHECK((uintptr_t)gc_base(H, b + n / 2) == base);
  OCHECK((uintptr_t)gc_base(H, b + (n ? n - 1 : 0)) == base);
  if (e.tiny) OCHECK(gc_size_of(H, p) == base + 16 - a);
  /* the span */
  gc_span_t *s = span_of(H, a);
  OCHECK(s != NULL);
  if (!s) return;
  OCHECK(atomic_load(&s->state) == SPAN_IN_USE);
  OCHECK(a >= s->base);
  OCHECK(a + n <= s->limit);
  OCHECK(s->limit <= s->base + s->npages * GCH_PAGE_SIZE);
  OCHECK((s->spanclass & 1) == (e.noscan ? 1 : 0));
  OCHECK((int)(s->spanclass >> 1) == e.cls);
  if (e.cls == 0) {
    OCHECK(s->base == a);
    OCHECK(s->npages == (n + GCH_PAGE_SIZE - 1) / GCH_PAGE_SIZE);
    OCHECK(s->layout == (e.noscan ? LAYOUT_NOSCAN : LAYOUT_LARGE));
    OCHECK(gc_size_of(H, p) == s->npages * GCH_PAGE_SIZE);
  } else {
    OCHECK(s->elemsize == csize[e.cls]);
    OCHECK(s->npages == gch_class_to_npages[e.cls]);
    size_t slot_off = (a - s->base) % s->elemsize;
    if (e.tiny) OCHECK(slot_off == a - base);
    else OCHECK(slot_off == (e.header ? HDR : 0u));
    OCHECK(s->layout == (e.noscan ? LAYOUT_NOSCAN
                         : e.header ? LAYOUT_HEADER : LAYOUT_HEAPBITS));
    if (!e.tiny)
      OCHECK(gc_size_of(H, p) == s->elemsize - (e.header ? HDR : 0u));
  }
  (void)k;
}

static int cmp_uptr(const void *x, const void *y) {
  uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
  return a < b ? -1 : a > b;
}

static void check_no_overlap(void **objs, size_t count, size_t n) {
  uintptr_t *s = malloc(count * sizeof *s);
  REQUIRE(s);
  for (size_t i = 0; i < count; i++) s[i] = (uintptr_t)objs[i];
  qsort(s, count, sizeof *s, cmp_uptr);
  size_t len = n ? n : 1;
  for (size_t i = 0; i + 1 < count; i++) OCHECK(s[i] + len <= s[i + 1]);
  free(s);
}

/* The whole object must be free: no longer resolvable. */
static void check_freed(void *p) {
  OCHECK(gc_size_of(H, p) == 0);
  OCHECK(gc_base(H, p) == NULL);
}

/* Stats deltas over dropping a group: exact, since nothing else is garbage
 * (every earlier group was freed and swept before this one started). */
static void check_freed_stats(const gc_stats_t *before, const gc_stats_t *after,
                              size_t count, size_t n, expect_t e) {
  uint64_t fobj = after->total_freed_objects - before->total_freed_objects;
  uint64_t fbytes = after->total_freed_bytes - before->total_freed_bytes;
  uint64_t cfrees = after->by_class[e.cls].frees - before->by_class[e.cls].frees;
  OCHECK(fbytes >= (uint64_t)count * n);
  if (e.tiny) {
    OCHECK(fobj >= (count * n + 15) / 16);
    OCHECK(fobj <= count);
    OCHECK(cfrees == fobj);
    OCHECK(fbytes == fobj * 16);
  } else {
    size_t esz = e.cls ? csize[e.cls]
                       : (n + GCH_PAGE_SIZE - 1) / GCH_PAGE_SIZE * GCH_PAGE_SIZE;
    OCHECK(fobj == count);
    OCHECK(cfrees == count);
    OCHECK(fbytes == (uint64_t)count * esz);
  }
}

/* -------------------------------------------------------- raw objects */

static void **objs; /* precise root range */
static size_t objs_cap = 20000;

static void test_raw(size_t n, enum kind k) {
  cur_n = n;
  cur_kind = k;
  group_printed = 0;
  expect_t e = expect_for(n, k);
  size_t count = count_for(n, e);
  unsigned flags = k == K_NOSCAN ? GCH_NOSCAN : 0;
  memset(objs, 0, objs_cap * sizeof *objs);

  gc_stats_t s0 = test_stats(H);
  for (size_t i = 0; i < count; i++) {
    void *p = gc_malloc(H, n, flags);
    objs[i] = p;
    if (!p) {
      OCHECK(p != NULL);
      fprintf(stderr, "  gc_malloc(%zu) failed: %s\n", n,
              gc_result_str(gc_last_error(H)));
      count = i;
      break;
    }
    check_object(p, n, k, e);
    uint8_t *b = p;
    for (size_t j = 0; j < n; j++) b[j] = pat_byte(i, j, n);
  }
  check_no_overlap(objs, count, n);
  for (size_t i = 0; i < count; i++) {
    const uint8_t *b = objs[i];
    size_t bad = 0;
    for (size_t j = 0; j < n; j++) bad += b[j] != pat_byte(i, j, n);
    OCHECK(bad == 0);
  }
  /* Rooted objects survive a collection untouched. */
  OCHECK(gc_collect(H) == GCH_OK);
  for (size_t i = 0; i < count; i++) {
    const uint8_t *b = objs[i];
    OCHECK(gc_size_of(H, b) >= n);
    size_t bad = 0;
    for (size_t j = 0; j < n; j++) bad += b[j] != pat_byte(i, j, n);
    OCHECK(bad == 0);
  }
  gc_stats_t s1 = test_stats(H);
  uint64_t allocs = s1.by_class[e.cls].allocs - s0.by_class[e.cls].allocs;
  if (e.tiny) OCHECK(allocs >= (count * n + 15) / 16 && allocs <= count);
  else OCHECK(allocs == count);
  OCHECK(s1.total_alloc_bytes - s0.total_alloc_bytes >= (uint64_t)count * n);

  /* Drop them: the next collections free every one. */
  void **keep = malloc(count * sizeof *keep);
  REQUIRE(keep);
  memcpy(keep, objs, count * sizeof *keep);
  memset(objs, 0, count * sizeof *objs);
  OCHECK(gc_collect(H) == GCH_OK);
  OCHECK(gc_collect(H) == GCH_OK);
  gc_stats_t s2 = test_stats(H);
  check_freed_stats(&s1, &s2, count, n, e);
  for (size_t i = 0; i < count; i++) check_freed(keep[i]);
  free(keep);
}

/* ------------------------------------------------------ typed objects */

static void *head; /* precise root: the list of typed objects */

/* Typed object of r = round8(n) bytes: word 0 = next, last word (when
 * there are >= 2) = the object two back; the words between hold data. */
static void test_typed(size_t n) {
  cur_n = n;
  cur_kind = K_TYPED;
  group_printed = 0;
  size_t r = n ? round8(n) : 8;
  size_t nw = r / 8;
  expect_t e = expect_for(r, K_TYPED);
  size_t count = count_for(r, e);

  uint64_t map[(32768 * 32 / 8 + 63) / 64 + 1];
  size_t mw = (nw + 63) / 64;
  memset(map, 0, mw * 8);
  map[0] |= 1;
  if (nw >= 2) map[(nw - 1) / 64] |= (uint64_t)1 << ((nw - 1) % 64);
  const gc_type_t *T = NULL;
  char name[32];
  snprintf(name, sizeof name, "T%zu", r);
  OCHECK(gc_type_new(H, name, r, map, mw, &T) == GCH_OK);
  if (!T) return;
  OCHECK(gc_type_size(T) == r);
  OCHECK(strcmp(gc_type_name(T), name) == 0);

  void **all = malloc(count * sizeof *all); /* not a root */
  REQUIRE(all);
  gc_stats_t s0 = test_stats(H);
  head = NULL;
  for (size_t i = 0; i < count; i++) {
    uint64_t *p = gc_alloc(H, T);
    if (!p) {
      OCHECK(p != NULL);
      fprintf(stderr, "  gc_alloc(%zu) failed: %s\n", r,
              gc_result_str(gc_last_error(H)));
      count = i;
      break;
    }
    check_object(p, r, K_TYPED, e);
    gc_write(H, p, (void **)&p[0], head);
    if (nw >= 2)
      gc_write(H, p, (void **)&p[nw - 1], i >= 2 ? all[i - 2] : NULL);
    for (size_t w = 1; w + 1 < nw; w++) p[w] = pat_word(i, w);
    all[i] = p;
    head = p;
  }
  check_no_overlap(all, count, r);

  /* Only the head is rooted: the maps keep the rest alive. */
  OCHECK(gc_collect(H) == GCH_OK);
  OCHECK(gc_collect(H) == GCH_OK);
  size_t walked = 0;
  for (uint64_t *p = head; p && walked < count; p = (uint64_t *)p[0]) {
    size_t i = count - 1 - walked;
    OCHECK(p == all[i]);
    OCHECK(gc_size_of(H, p) >= r);
    size_t bad = 0;
    for (size_t w = 1; w + 1 < nw; w++) bad += p[w] != pat_word(i, w);
    OCHECK(bad == 0);
    if (nw >= 2) OCHECK((void *)p[nw - 1] == (i >= 2 ? all[i - 2] : NULL));
    walked++;
  }
  OCHECK(walked == count);
  OCHECK(gc_verify(H, stderr) == GCH_OK);

  gc_stats_t s1 = test_stats(H);
  OCHECK(s1.by_class[e.cls].allocs - s0.by_class[e.cls].allocs == count);
  head = NULL;
  OCHECK(gc_collect(H) == GCH_OK);
  OCHECK(gc_collect(H) == GCH_OK);
  gc_stats_t s2 = test_stats(H);
  check_freed_stats(&s1, &s2, count, r, e);
  for (size_t i = 0; i < count; i++) check_freed(all[i]);
  free(all);
}

/* -------------------------------------------- arrays of typed elements */

static void *arr_root;

/* An element type of `esize` bytes with one pointer word at `pw`; arrays
 * of `len` elements whose pointer words point at noscan payloads.  Only
 * the array is rooted: the tiled map must keep every payload alive (this
 * crosses heap bits, header and large/oblet layouts as len grows). */
static void test_array(size_t esize, size_t pw, size_t len) {
  cur_n = esize * len;
  cur_kind = K_TYPED;
  group_printed = 0;
  uint64_t map = (uint64_t)1 << pw;
  const gc_type_t *T;
  REQUIRE(gc_type_new(H, "elem", esize, &map, 1, &T) == GCH_OK);
  uint64_t *a = gc_alloc_array(H, T, len);
  OCHECK(a != NULL);
  if (!a) return;
  arr_root = a;
  size_t nw = esize / 8;
  OCHECK(gc_size_of(H, a) >= esize * len);
  size_t nz = 0;
  for (size_t i = 0; i < len * nw; i++) nz += a[i] != 0;
  OCHECK(nz == 0);
  void **payload = malloc((len ? len : 1) * sizeof *payload); /* not a root */
  REQUIRE(payload);
  for (size_t i = 0; i < len; i++) {
    for (size_t w = 0; w < nw; w++)
      if (w != pw) a[i * nw + w] = pat_word(i, w);
    uint64_t *q = gc_malloc(H, 24, GCH_NOSCAN);
    OCHECK(q != NULL);
    if (!q) { len = i; break; }
    q[0] = pat_word(i, 100);
    q[1] = pat_word(i, 101);
    q[2] = pat_word(i, 102);
    payload[i] = q;
    gc_write(H, a, (void **)&a[i * nw + pw], q);
  }
  OCHECK(gc_collect(H) == GCH_OK);
  OCHECK(gc_collect(H) == GCH_OK);
  size_t lost = 0, bad = 0;
  for (size_t i = 0; i < len; i++) {
    uint64_t *q = payload[i];
    if (gc_size_of(H, q) < 24) {
      lost++;
      continue;
    }
    bad += q[0] != pat_word(i, 100) || q[1] != pat_word(i, 101) ||
           q[2] != pat_word(i, 102);
    bad += (void *)a[i * nw + pw] != q;
    for (size_t w = 0; w < nw; w++)
      if (w != pw) bad += a[i * nw + w] != pat_word(i, w);
  }
  OCHECK(lost == 0);
  OCHECK(bad == 0);
  if (lost || bad)
    fprintf(stderr, "  array of %zu x %zu B (pointer word %zu): %zu payloads "
                    "lost, %zu words wrong\n", len, esize, pw, lost, bad);
  arr_root = NULL;
  OCHECK(gc_collect(H) == GCH_OK);
  OCHECK(gc_collect(H) == GCH_OK);
  check_freed(a);
  for (size_t i = 0; i < len; i++) check_freed(payload[i]);
  free(payload);
}

/* A heap pointer stored in a word the type's map calls data must not keep
 * its target alive (typed objects are scanned precisely). */
static void *prec_root;
static void test_precision(void) {
  cur_n = 0;
  cur_kind = K_TYPED;
  group_printed = 0;
  static const size_t sizes[] = {16, 64, 512, 1024, 4096, 40000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t sz = sizes[k];
    cur_n = sz;
    uint64_t map = 1; /* word 0 only */
    const gc_type_t *T;
    REQUIRE(gc_type_new(H, "prec", sz, &map, 1, &T) == GCH_OK);
    uint64_t *o = gc_alloc(H, T);
    OCHECK(o != NULL);
    if (!o) continue;
    prec_root = o;
    void *kept = gc_malloc(H, 32, GCH_NOSCAN);
    void *dropped = gc_malloc(H, 32, GCH_NOSCAN);
    OCHECK(kept && dropped);
    o[0] = (uint64_t)(uintptr_t)kept;
    o[sz / 8 - 1] = (uint64_t)(uintptr_t)dropped; /* a data word */
    OCHECK(gc_collect(H) == GCH_OK);
    OCHECK(gc_collect(H) == GCH_OK);
    OCHECK(gc_size_of(H, kept) >= 32);
    OCHECK(gc_size_of(H, dropped) == 0);
    prec_root = NULL;
  }
  OCHECK(gc_collect(H) == GCH_OK);
}

/* ----------------------------------------------------------- foreign */

static void test_foreign(void) {
  cur_n = 0;
  cur_kind = K_NOSCAN;
  group_printed = 0;
  int local = 0;
  void *m = malloc(64);
  REQUIRE(m);
  static char data[64];
  const void *foreign[] = {NULL,          &local,           m,
                           data,          (void *)1,        (void *)8,
                           (void *)UINTPTR_MAX, (void *)(UINTPTR_MAX - 7),
                           (void *)((uintptr_t)1 << 47),
                           (void *)((uintptr_t)1 << 48),
                           (void *)test_foreign};
  for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
    OCHECK(gc_size_of(H, foreign[i]) == 0);
    OCHECK(gc_base(H, foreign[i]) == NULL);
  }
  free(m);

  /* Inside the heap but not an object: the tail of a scan span (its heap
   * bits), past a large object, and a slot never allocated. */
  uint64_t *p = gc_malloc(H, 64, 0);
  REQUIRE(p);
  objs[0] = p;
  gc_span_t *s = span_of(H, (uintptr_t)p);
  REQUIRE(s);
  uintptr_t end = s->base + s->npages * GCH_PAGE_SIZE;
  OCHECK(s->limit < end);
  OCHECK(gc_base(H, (void *)s->limit) == NULL);
  OCHECK(gc_size_of(H, (void *)(end - 8)) == 0);
  /* The last slot of a fresh span is not allocated yet. */
  uintptr_t last = s->limit - s->elemsize;
  if (last != (uintptr_t)p) {
    OCHECK(gc_base(H, (void *)last) == NULL);
    OCHECK(gc_size_of(H, (void *)last) == 0);
  }
  void *big = gc_malloc(H, 40000, GCH_NOSCAN);
  REQUIRE(big);
  objs[1] = big;
  gc_span_t *bs = span_of(H, (uintptr_t)big);
  REQUIRE(bs);
  OCHECK(gc_base(H, (char *)big + 40000) == big); /* same page: slack */
  uintptr_t bend = bs->base + bs->npages * GCH_PAGE_SIZE;
  gc_span_t *after = span_of(H, bend);
  if (!after || after != bs) OCHECK(gc_base(H, (void *)bend) != big);

  /* The header of a > 512 B scan object is not part of the object:
   * gc_size_of says so, and gc_base must not answer an address above the
   * pointer asked about. */
  char *hp = gc_malloc(H, 1000, 0);
  REQUIRE(hp);
  objs[2] = hp;
  for (size_t off = 8; off <= HDR; off += 8) {
    OCHECK(gc_size_of(H, hp - off) == 0);
    void *hb = gc_base(H, hp - off);
    OCHECK(hb == NULL || (uintptr_t)hb <= (uintptr_t)(hp - off));
  }
  objs[0] = objs[1] = objs[2] = NULL;
}

/* ------------------------------------------------------------- driver */

static int cmp_size(const void *x, const void *y) {
  size_t a = *(const size_t *)x, b = *(const size_t *)y;
  return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  gc_config_t cfg = gc_config_default();
  /* Lazy sweeping only: the checks below read allocation state right after
   * gc_collect, and a background sweep racing with those reads is the
   * subject of test_threads (test_sweeper_query_race), not of this test. */
  cfg.background_sweep = 0;
  H = test_heap(&cfg);

  gc_stats_t st = test_stats(H);
  ncls = 1;
  for (int c = 1; c < GCH_NUM_SIZE_CLASSES && st.by_class[c].size; c++) {
    csize[c] = st.by_class[c].size;
    CHECK(csize[c] > csize[c - 1]);
    CHECK(csize[c] % 8 == 0);
    ncls = c + 1;
  }
  maxsmall = csize[ncls - 1];
  CHECK_EQ(ncls, GCH_NUM_SIZE_CLASSES);
  CHECK_EQ(maxsmall, 32768);
  CHECK_EQ(csize[class_for(16)], 16);

  objs = calloc(objs_cap, sizeof *objs);
  REQUIRE(objs);
  REQUIRE(gc_root_add(H, objs, objs_cap * sizeof *objs, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(H, &head, sizeof head, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(H, &arr_root, sizeof arr_root, GCH_ROOT_PRECISE) == GCH_OK);
  REQUIRE(gc_root_add(H, &prec_root, sizeof prec_root, GCH_ROOT_PRECISE) == GCH_OK);

  size_t sizes[1024];
  size_t ns = 0;
  for (size_t n = 1; n <= 16; n++) sizes[ns++] = n;
  for (int c = 1; c < ncls; c++) {
    sizes[ns++] = csize[c] - 1;
    sizes[ns++] = csize[c];
    sizes[ns++] = csize[c] + 1;
  }
  sizes[ns++] = 32768 + 1;
  sizes[ns++] = 65536;
  sizes[ns++] = (size_t)1 << 20;
  qsort(sizes, ns, sizeof sizes[0], cmp_size);
  size_t u = 0;
  for (size_t i = 0; i < ns; i++)
    if (!u || sizes[i] != sizes[u - 1]) sizes[u++] = sizes[i];
  ns = u;

  for (size_t i = 0; i < ns; i++) {
    size_t n = sizes[i];
    int before = test_failures;
    test_raw(n, K_NOSCAN);
    test_raw(n, K_CONS);
    if (n % 8 == 0) test_typed(n);
    if (test_failures != before)
      fprintf(stderr, "  ^ size %zu: %d failed check(s)\n", n,
              test_failures - before);
  }
  CHECK(gc_verify(H, stderr) == GCH_OK);

  /* Arrays: element sizes x lengths crossing every layout. */
  static const size_t esizes[][2] = {{8, 0}, {16, 1}, {24, 1}, {40, 2}, {72, 8}};
  static const size_t lens[] = {0, 1, 2, 3, 7, 13, 64, 65, 200, 1000, 5000};
  for (size_t i = 0; i < sizeof esizes / sizeof esizes[0]; i++)
    for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++)
      test_array(esizes[i][0], esizes[i][1], lens[j]);

  if (align_bad)
    fprintf(stderr, "%zu objects whose size is a multiple of 16 are not 16-B "
                    "aligned; first: size %zu, %s, at %p\n", align_bad,
            align_first_n, kind_name[align_first_kind], (void *)align_first);
  CHECK(align_bad == 0);

  test_precision();
  test_foreign();
  CHECK(gc_verify(H, stderr) == GCH_OK);

  CHECK(gc_root_remove(H, objs) == GCH_OK);
  CHECK(gc_heap_destroy(H) == GCH_OK);
  free(objs);
  return test_done("test_classes");
}
