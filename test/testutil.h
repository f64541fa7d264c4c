/*
 * testutil.h -- the small harness every test program uses: CHECK macros
 * that report file:line and the failed expression, a seeded PRNG whose seed
 * is printed and can be replayed (GCHEAP_SEED or argv[1]), and helpers to
 * read the heap's stats.
 */
#ifndef GCH_TESTUTIL_H
#define GCH_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gcheap.h"

extern int test_failures;

#define CHECK(c)                                                            \
  do {                                                                      \
    if (!(c)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
      test_failures++;                                                      \
    }                                                                       \
  } while (0)

#define REQUIRE(c)                                                          \
  do {                                                                      \
    if (!(c)) {                                                             \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__,    \
              #c);                                                          \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

#define CHECK_EQ(a, b)                                                      \
  do {                                                                      \
    long long va_ = (long long)(a), vb_ = (long long)(b);                   \
    if (va_ != vb_) {                                                       \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",   \
              __FILE__, __LINE__, #a, va_, #b, vb_);                        \
      test_failures++;                                                      \
    }                                                                       \
  } while (0)

/* Seed from argv[1], else GCHEAP_SEED, else the clock; printed. */
uint64_t test_seed(int argc, char **argv);
uint64_t test_rand(void);           /* xorshift64* */
uint64_t test_rand_below(uint64_t n);
/* Print "name: ok" or the failure count; the exit status for main. */
int test_done(const char *name);

gc_heap_t *test_heap(const gc_config_t *cfg); /* aborts on failure */
gc_stats_t test_stats(gc_heap_t *h);

#endif
