/*
 * test_fuzz_corpus.c -- the fuzz corpus as an ordinary test, so that it
 * runs in every build (gcc, clang, debug, asan, tsan) without libFuzzer.
 * It includes the harness (fuzz_heap.c) and feeds LLVMFuzzerTestOneInput
 *
 *  1. every file of test/fuzz/corpus/ and test/fuzz/crashes/ (reproducers
 *     of fixed bugs), or of the files and directories named on the command
 *     line (e.g. a crash file from `make fuzz`), in name order, printing
 *     each name before it runs (a failure aborts, so the last name printed
 *     is the culprit);
 *  2. GCHEAP_FUZZ_RANDOM (default 48) inputs derived from the printed seed
 *     (GCHEAP_SEED replays them): each a corpus file with a few bytes
 *     changed, a splice of two, or fresh random bytes.  GCHEAP_FUZZ_SAVE=F
 *     writes each random input to F before running it.
 *
 * Exit status 0 when every input ran; a model mismatch aborts inside the
 * harness with a "fuzz_heap: mismatch" line.
 */
#include "fuzz_heap.c"

#include <dirent.h>
#include <sys/stat.h>

#include "testutil.h"

#define REPLAY_MAX_FILES 4096
#define REPLAY_MAX_LEN 4096

typedef struct replay_buf {
  uint8_t *data;
  size_t len;
} replay_buf_t;

typedef struct replay_set {
  replay_buf_t *in;
  size_t n;
} replay_set_t;

static int replay_read(const char *path, replay_buf_t *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  out->data = malloc(REPLAY_MAX_LEN);
  out->len = out->data ? fread(out->data, 1, REPLAY_MAX_LEN, f) : 0;
  fclose(f);
  return out->data ? 0 : -1;
}

static int replay_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_one(const char *name, const uint8_t *data, size_t len) {
  printf("  %s (%zu B)\n", name, len);
  fflush(stdout);
  LLVMFuzzerTestOneInput(data, len);
}

static void replay_add(replay_set_t *set, const char *path) {
  if (set->n >= REPLAY_MAX_FILES) return;
  replay_buf_t *b = &set->in[set->n];
  REQUIRE(replay_read(path, b) == 0);
  replay_one(path, b->data, b->len);
  set->n++;
}

/* Every regular file of dir, in name order. */
static void replay_dir(replay_set_t *set, const char *dir) {
  DIR *d = opendir(dir);
  REQUIRE(d != NULL);
  char **names = calloc(REPLAY_MAX_FILES, sizeof *names);
  size_t n = 0;
  REQUIRE(names != NULL);
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < REPLAY_MAX_FILES) {
    if (e->d_name[0] == '.') continue;
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    REQUIRE(names[n] != NULL);
    snprintf(names[n], len, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (stat(names[n], &sb) == 0 && S_ISREG(sb.st_mode)) n++;
    else free(names[n]);
  }
  closedir(d);
  qsort(names, n, sizeof *names, replay_cmp);
  for (size_t i = 0; i < n; i++) {
    replay_add(set, names[i]);
    free(names[i]);
  }
  free(names);
}

/* A random input: a mutated or spliced corpus file, or fresh bytes. */
static size_t replay_make(const replay_set_t *set, uint8_t *buf) {
  size_t len;
  unsigned how = set->n ? (unsigned)test_rand_below(4) : 3;
  if (how < 3) {
    const replay_buf_t *a = &set->in[test_rand_below(set->n)];
    len = a->len;
    memcpy(buf, a->data, len);
    if (how == 2) { /* splice: a's head, b's tail */
      const replay_buf_t *b = &set->in[test_rand_below(set->n)];
      size_t cut = len ? test_rand_below(len) : 0, from = b->len ? test_rand_below(b->len) : 0;
      size_t tail = b->len - from;
      if (cut + tail > REPLAY_MAX_LEN) tail = REPLAY_MAX_LEN - cut;
      memcpy(buf + cut, b->data + from, tail);
      len = cut + tail;
    }
    for (unsigned k = (unsigned)test_rand_below(8); k > 0 && len; k--)
      buf[test_rand_below(len)] = (uint8_t)test_rand();
  } else {
    len = 1 + test_rand_below(1024);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)test_rand();
  }
  return len;
}

static void replay_random(const replay_set_t *set, unsigned count) {
  uint8_t *buf = malloc(REPLAY_MAX_LEN);
  REQUIRE(buf != NULL);
  const char *save = getenv("GCHEAP_FUZZ_SAVE");
  for (unsigned r = 0; r < count; r++) {
    size_t len = replay_make(set, buf);
    if (save) {
      FILE *f = fopen(save, "wb");
      if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
      }
    }
    char name[48];
    snprintf(name, sizeof name, "random input %u", r);
    replay_one(name, buf, len);
  }
  free(buf);
}

int main(int argc, char **argv) {
  replay_set_t set = {calloc(REPLAY_MAX_FILES, sizeof(replay_buf_t)), 0};
  REQUIRE(set.in != NULL);
  test_seed(0, NULL); /* GCHEAP_SEED or the clock; arguments are paths */
  if (argc < 2) {
    replay_dir(&set, "test/fuzz/corpus");
    replay_dir(&set, "test/fuzz/crashes"); /* reproducers of fixed bugs */
  }
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    REQUIRE(stat(argv[i], &sb) == 0);
    if (S_ISDIR(sb.st_mode)) replay_dir(&set, argv[i]);
    else replay_add(&set, argv[i]);
  }
  const char *r = getenv("GCHEAP_FUZZ_RANDOM");
  unsigned count = r ? (unsigned)strtoul(r, NULL, 0) : 48;
  replay_random(&set, count);
  printf("%zu corpus inputs, %u random inputs\n", set.n, count);
  for (size_t i = 0; i < set.n; i++) free(set.in[i].data);
  free(set.in);
  return test_done("fuzz_corpus");
}
