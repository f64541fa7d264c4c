/*
 * test_profile.c -- the heap profile (profile_rate, gc_profile_write).
 *
 *  1. Rate 1 counts exactly: allocations from four sites (host-reported
 *     "VM" stacks through config.profile_stack), some kept and some
 *     dropped; nothing is published before the first collection; after it
 *     each site's allocation and in-use counts and bytes equal the truth,
 *     and frees show once a collection has found them; profile_samples
 *     equals the number of allocations.  The same with torture mode on (the
 *     hook countdown shared) and in the concurrent mode.
 *  2. The default rate (512 KiB) estimates a site's bytes within 10% of the
 *     truth over 10^6 allocations of 1 KiB, both by this test's reading of
 *     the file (heap_v2 scaling) and by google-pprof's.
 *  3. google-pprof reads the file: with native stacks (backtrace()) and the
 *     test binary, `google-pprof --text` names the function that allocated
 *     most as the top entry; with profile_symbol it reads the symbolized
 *     file alone and names the top VM site.
 *  4. Off and environment: profile_rate < 0 samples nothing;
 *     GCHEAP_PROFILE_RATE=off / 1 / 64k are honoured.  Bad input:
 *     gc_profile_write with a NULL heap or file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define NOINLINE __attribute__((noinline))

/* ------------------------------------------------ host "VM" stacks */

static uintptr_t vm_site; /* the site the test is "executing" */

static size_t vm_stack(void *ctx, uintptr_t *pcs, size_t max) {
  (void)ctx;
  if (max < 2) return 0;
  pcs[0] = vm_site;
  pcs[1] = 0x7000; /* the VM's main loop */
  return 2;
}

static const char *vm_symbol(void *ctx, uintptr_t pc) {
  (void)ctx;
  switch (pc) {
  case 0x1001: return "vm_site_a";
  case 0x1002: return "vm_site_b";
  case 0x1003: return "vm_site_c";
  case 0x1004: return "vm_site_d";
  case 0x1010: return "vm_site_x";
  case 0x1011: return "vm_site_y";
  case 0x7000: return "vm_main_loop";
  default: return NULL;
  }
}

/* ----------------------------------------------------- profile parsing */

typedef struct site {
  uint64_t inuse_n, inuse_b, alloc_n, alloc_b;
  double est_alloc_b; /* scaled by the heap_v2 rule */
  size_t buckets;
} site_t;

/* Sum the buckets whose innermost frame is `pc`; returns the sampling
 * rate from the header (0 when unscaled). */
static long parse_profile(FILE *f, uintptr_t pc, site_t *out) {
  char line[4096];
  long rate = 0;
  int in_header = 1;
  memset(out, 0, sizeof *out);
  rewind(f);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "MAPPED_LIBRARIES:", 17) == 0) break;
    if (strncmp(line, "heap profile:", 13) == 0) {
      char *v2 = strstr(line, "heap_v2/");
      rate = v2 ? atol(v2 + 8) : 0;
      in_header = 0;
      continue;
    }
    if (in_header) continue;
    unsigned long long n1, b1, n2, b2, first;
    if (sscanf(line, "%llu: %llu [%llu: %llu] @ %llx", &n1, &b1, &n2, &b2, &first) != 5)
      continue;
    if ((uintptr_t)first != pc) continue;
    out->inuse_n += n1;
    out->inuse_b += b1;
    out->alloc_n += n2;
    out->alloc_b += b2;
    out->buckets++;
    double scale = 1;
    if (rate > 1 && n2) scale = 1 / (1 - exp(-((double)b2 / (double)n2) / (double)rate));
    out->est_alloc_b += (double)b2 * scale;
  }
  return rate;
}

static FILE *write_profile(gc_heap_t *h) {
  FILE *f = tmpfile();
  REQUIRE(f);
  REQUIRE(gc_profile_write(h, f) == GCH_OK);
  return f;
}

/* ------------------------------------------------------ 1. exact counts */

static const gc_type_t *t_rec; /* 104 bytes, one pointer */

static void test_exact(unsigned long torture, gc_mode_t mode) {
  gc_config_t c = gc_config_default();
  c.gc_percent = -1;
  c.profile_rate = 1;
  c.profile_stack = vm_stack;
  c.profile_symbol = vm_symbol;
  c.torture = torture;
  c.mode = mode;
  gc_heap_t *h = test_heap(&c);
  static const uint64_t m = 0x1;
  REQUIRE(gc_type_new(h, "rec", 104, &m, 1, &t_rec) == GCH_OK);
  enum { NA = 1000, NB = 3000, NC = 500, ND = 10 };
  void **keep = calloc(NA + NC + ND, sizeof *keep);
  REQUIRE(keep);
  REQUIRE(gc_root_add(h, keep, (NA + NC + ND) * sizeof *keep, GCH_ROOT_PRECISE) == GCH_OK);
  vm_site = 0x1001;
  for (int i = 0; i < NA; i++) REQUIRE((keep[i] = gc_malloc(h, 48, 0)));
  vm_site = 0x1002;
  for (int i = 0; i < NB; i++) REQUIRE(gc_alloc(h, t_rec));
  vm_site = 0x1003;
  for (int i = 0; i < NC; i++) REQUIRE((keep[NA + i] = gc_malloc(h, 5000, GCH_NOSCAN)));
  vm_site = 0x1004;
  for (int i = 0; i < ND; i++) REQUIRE((keep[NA + NC + i] = gc_malloc(h, 100000, GCH_NOSCAN)));
  CHECK_EQ(test_stats(h).profile_samples, NA + NB + NC + ND);
  site_t s;
  if (test_stats(h).cycles == 0) { /* torture collects along the way */
    FILE *f = write_profile(h);
    CHECK_EQ(parse_profile(f, 0x1001, &s), 0); /* rate 1: unscaled */
    CHECK_EQ(s.alloc_n, 0);                    /* nothing published yet */
    fclose(f);
  }
  REQUIRE(gc_collect(h) == GCH_OK);
  FILE *f = write_profile(h);
  parse_profile(f, 0x1001, &s);
  CHECK_EQ(s.alloc_n, NA);
  CHECK_EQ(s.alloc_b, NA * 48);
  CHECK_EQ(s.inuse_n, NA);
  CHECK_EQ(s.inuse_b, NA * 48);
  parse_profile(f, 0x1002, &s);
  CHECK_EQ(s.alloc_n, NB);
  CHECK_EQ(s.alloc_b, NB * 104);
  CHECK_EQ(s.inuse_n, 0);
  parse_profile(f, 0x1003, &s);
  CHECK_EQ(s.alloc_n, NC);
  CHECK_EQ(s.inuse_b, NC * 5000);
  parse_profile(f, 0x1004, &s);
  CHECK_EQ(s.alloc_n, ND);
  CHECK_EQ(s.inuse_b, ND * 100000);
  fclose(f);
  /* Drop site A: its in-use counts fall to 0 once collected. */
  memset(keep, 0, NA * sizeof *keep);
  REQUIRE(gc_collect(h) == GCH_OK);
  f = write_profile(h);
  parse_profile(f, 0x1001, &s);
  CHECK_EQ(s.alloc_n, NA);
  CHECK_EQ(s.inuse_n, 0);
  CHECK_EQ(s.inuse_b, 0);
  parse_profile(f, 0x1003, &s);
  CHECK_EQ(s.inuse_n, NC);
  fclose(f);
  REQUIRE(gc_root_remove(h, keep) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(keep);
}

/* ---------------------------------------- running google-pprof --text */

/* The function name on the first line of `google-pprof --text` output
 * (the top entry), and its first column (MB) in *mb. */
static int pprof_top(const char *args, char *name, size_t len, double *mb) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "google-pprof --text %s 2>/dev/null", args);
  FILE *p = popen(cmd, "r");
  if (!p) return 0;
  char line[1024];
  int found = 0;
  while (fgets(line, sizeof line, p)) {
    double v, pct1, pct2, cum, pct3;
    char fn[512];
    if (!found && sscanf(line, " %lf %lf%% %lf%% %lf %lf%% %511s", &v, &pct1,
                         &pct2, &cum, &pct3, fn) == 6) {
      snprintf(name, len, "%s", fn);
      *mb = v;
      found = 1;
    }
  }
  int rc = pclose(p);
  return found && rc == 0;
}

static int have_pprof(void) { return system("command -v google-pprof >/dev/null 2>&1") == 0; }

/* ----------------------------------------- 2. default rate, 10^6 allocs */

static void test_default_rate(void) {
  gc_config_t c = gc_config_default();
  c.profile_rate = 0; /* the default */
  c.profile_stack = vm_stack;
  c.profile_symbol = vm_symbol;
  gc_heap_t *h = test_heap(&c);
  enum { NX = 1000000, SX = 1024, NY = 200000, SY = 200 };
  for (int i = 0; i < NX; i++) {
    vm_site = 0x1010;
    REQUIRE(gc_malloc(h, SX, GCH_NOSCAN));
    if (i % 5 == 0) {
      vm_site = 0x1011;
      REQUIRE(gc_malloc(h, SY, 0));
    }
  }
  REQUIRE(gc_collect(h) == GCH_OK);
  char path[] = "/tmp/gcheap_prof_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  FILE *f = fdopen(fd, "w+");
  REQUIRE(f);
  REQUIRE(gc_profile_write(h, f) == GCH_OK);
  site_t s;
  long rate = parse_profile(f, 0x1010, &s);
  fclose(f);
  CHECK_EQ(rate, GCH_PROFILE_RATE_DEFAULT);
  double truth = (double)NX * SX;
  double err = fabs(s.est_alloc_b - truth) / truth;
  printf("default rate: %llu samples at the 1 KiB site, estimate %.1f MB of "
         "%.1f MB (%.2f%% off)\n",
         (unsigned long long)s.alloc_n, s.est_alloc_b / 1048576, truth / 1048576,
         100 * err);
  CHECK(s.alloc_n > 1000);
  CHECK(err < 0.10);
  CHECK_EQ(s.inuse_n, 0); /* all dropped */
  if (have_pprof()) {
    char name[512] = "", args[600];
    double mb = 0;
    snprintf(args, sizeof args, "--alloc_space %s", path);
    CHECK(pprof_top(args, name, sizeof name, &mb));
    printf("google-pprof --text --alloc_space (symbolized): top %s, %.1f MB\n", name, mb);
    CHECK(strcmp(name, "vm_site_x") == 0);
    CHECK(fabs(mb * 1048576 - truth) / truth < 0.10);
  } else {
    fprintf(stderr, "google-pprof not installed (scripts/deps.sh installs it)\n");
    CHECK(0);
  }
  unlink(path);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

/* --------------------------------------- 3. google-pprof, native stacks */

NOINLINE static void site_big(gc_heap_t *h, void **slot) {
  *slot = gc_malloc(h, 4096, GCH_NOSCAN);
}
NOINLINE static void site_small(gc_heap_t *h, void **slot) {
  *slot = gc_malloc(h, 64, GCH_NOSCAN);
}

static void test_pprof_native(void) {
  gc_config_t c = gc_config_default();
  c.profile_rate = 1;
  gc_heap_t *h = test_heap(&c);
  enum { N = 2000 };
  void **keep = calloc(2 * N, sizeof *keep);
  REQUIRE(keep);
  REQUIRE(gc_root_add(h, keep, 2 * N * sizeof *keep, GCH_ROOT_PRECISE) == GCH_OK);
  for (int i = 0; i < N; i++) {
    site_big(h, &keep[i]);
    site_small(h, &keep[N + i]);
    REQUIRE(keep[i] && keep[N + i]);
  }
  REQUIRE(gc_collect(h) == GCH_OK);
  char path[] = "/tmp/gcheap_prof_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  FILE *f = fdopen(fd, "w");
  REQUIRE(f);
  REQUIRE(gc_profile_write(h, f) == GCH_OK);
  fclose(f);
  char exe[512];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  REQUIRE(n > 0);
  exe[n] = 0;
  if (!have_pprof()) {
    fprintf(stderr, "google-pprof not installed (scripts/deps.sh installs it)\n");
    CHECK(0);
  } else {
    char args[1200], name[512] = "";
    double mb = 0;
    snprintf(args, sizeof args, "%s %s", exe, path);
    CHECK(pprof_top(args, name, sizeof name, &mb));
    printf("google-pprof --text (native stacks): top %s, %.2f MB in use\n", name, mb);
    CHECK(strcmp(name, "site_big") == 0);
    CHECK(fabs(mb - N * 4096.0 / 1048576) < 0.1);
  }
  unlink(path);
  REQUIRE(gc_root_remove(h, keep) == GCH_OK);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  free(keep);
}

/* ------------------------------------------------- 4. off, env, errors */

static uint64_t samples_with_env(const char *val, long cfg_rate, char *header,
                                 size_t len) {
  if (val) setenv("GCHEAP_PROFILE_RATE", val, 1);
  gc_config_t c = gc_config_default();
  c.profile_rate = cfg_rate;
  gc_heap_t *h = test_heap(&c);
  unsetenv("GCHEAP_PROFILE_RATE");
  for (int i = 0; i < 10000; i++) REQUIRE(gc_malloc(h, 32, 0));
  uint64_t n = test_stats(h).profile_samples;
  FILE *f = write_profile(h);
  rewind(f);
  if (!fgets(header, (int)len, f)) header[0] = 0;
  fclose(f);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  return n;
}

static void test_off_env(void) {
  char hdr[256];
  CHECK_EQ(samples_with_env(NULL, -1, hdr, sizeof hdr), 0);
  CHECK(strncmp(hdr, "heap profile: 0: 0 [0: 0]", 25) == 0);
  CHECK_EQ(samples_with_env("off", 1, hdr, sizeof hdr), 0);
  CHECK_EQ(samples_with_env("0", 1, hdr, sizeof hdr), 0);
  CHECK_EQ(samples_with_env("1", -1, hdr, sizeof hdr), 10000);
  CHECK(strstr(hdr, "heapprofile") != NULL);
  uint64_t n = samples_with_env("64k", -1, hdr, sizeof hdr);
  CHECK(n > 0 && n < 40); /* 320 KB at one per 64 KiB: about 5 */
  CHECK(strstr(hdr, "heap_v2/65536") != NULL);
  gc_config_t c = gc_config_default();
  gc_heap_t *h = test_heap(&c);
  CHECK_EQ(gc_profile_write(h, NULL), GCH_EINVAL);
  CHECK_EQ(gc_profile_write(NULL, stdout), GCH_EINVAL);
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  test_exact(0, GCH_MODE_STW);
  test_exact(3, GCH_MODE_STW);
  test_exact(0, GCH_MODE_CONCURRENT);
  test_default_rate();
  test_pprof_native();
  test_off_env();
  return test_done("test_profile");
}
