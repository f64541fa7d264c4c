/* testutil.c -- see testutil.h. */
#include "testutil.h"

#include <string.h>
#include <time.h>

int test_failures;
static uint64_t rng_state = 88172645463325252ull;

uint64_t test_seed(int argc, char **argv) {
  const char *s = argc > 1 ? argv[1] : getenv("GCHEAP_SEED");
  uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
  if (!seed) seed = 1;
  rng_state = seed;
  printf("seed %llu\n", (unsigned long long)seed);
  return seed;
}

uint64_t test_rand(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

uint64_t test_rand_below(uint64_t n) { return n ? test_rand() % n : 0; }

int test_done(const char *name) {
  if (test_failures) {
    printf("%s: %d check(s) failed\n", name, test_failures);
    return 1;
  }
  printf("%s: ok\n", name);
  return 0;
}

gc_heap_t *test_heap(const gc_config_t *cfg) {
  gc_result_t err;
  gc_heap_t *h = gc_heap_new(cfg, &err);
  if (!h) {
    fprintf(stderr, "gc_heap_new failed: %s\n", gc_result_str(err));
    exit(1);
  }
  return h;
}

gc_stats_t test_stats(gc_heap_t *h) {
  gc_stats_t s;
  memset(&s, 0, sizeof s);
  if (gc_get_stats(h, &s) != GCH_OK) {
    fprintf(stderr, "gc_get_stats failed\n");
    exit(1);
  }
  return s;
}
