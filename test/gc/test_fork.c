/*
 * test_fork.c -- fork() in every collector phase leaves the child a usable
 * heap.  Two mutator threads allocate and link objects while the main
 * thread forks repeatedly; forks land in idle, mark and sweep phases
 * (concurrent mode, a small goal so cycles are frequent).  Each child
 * allocates, links, collects, verifies the heap and checks that the
 * parent's graph survived, then exits 0; a watchdog (alarm) turns a
 * deadlock into a failure.  Phases hit are counted from the public
 * barrier flag (mark) and the stats.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

typedef struct cell {
  struct cell *next;
  uint64_t value;
} cell_t;

static gc_heap_t *H;
static const gc_type_t *CELL;
static cell_t *lists[4]; /* mutators 0, 1; main scratch 2; stable 3 */
static atomic_int stop_flag;

static cell_t *push(cell_t **head, uint64_t v) {
  cell_t *c = gc_alloc(H, CELL);
  REQUIRE(c);
  c->value = v;
  gc_write(H, c, (void **)&c->next, *head);
  *head = c;
  return c;
}

static uint64_t list_sum(const cell_t *c, size_t *n) {
  uint64_t s = 0;
  for (*n = 0; c; c = c->next, (*n)++) s += c->value;
  return s;
}

static void *mutator(void *arg) {
  int id = (int)(intptr_t)arg;
  REQUIRE(gc_thread_attach(H) == GCH_OK);
  uint64_t v = 0;
  while (!atomic_load(&stop_flag)) {
    push(&lists[id], ++v);
    if (v % 5000 == 0) lists[id] = NULL; /* drop: garbage for the GC */
  }
  REQUIRE(gc_thread_detach(H) == GCH_OK);
  return NULL;
}

/* The child: only this thread exists.  Exercise the heap and report. */
static int child_main(void) {
  alarm(10);
  size_t n;
  uint64_t before = list_sum(lists[3], &n);
  for (int i = 0; i < 20000; i++) push(&lists[0], (uint64_t)i);
  if (gc_collect(H) != GCH_OK) return 2;
  if (gc_verify(H, stderr) != GCH_OK) return 3;
  size_t n2;
  if (list_sum(lists[3], &n2) != before || n2 != n) return 4;
  for (int i = 0; i < 1000; i++) push(&lists[1], 1);
  if (gc_collect(H) != GCH_OK) return 5;
  return 0;
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  gc_config_t c = gc_config_default();
  c.mode = GCH_MODE_CONCURRENT;
  c.gc_percent = 25;
  H = test_heap(&c);
  uint64_t map = 1;
  REQUIRE(gc_type_new(H, "cell", sizeof(cell_t), &map, 1, &CELL) == GCH_OK);
  REQUIRE(gc_root_add(H, lists, sizeof lists, GCH_ROOT_PRECISE) == GCH_OK);
  for (int i = 0; i < 50000; i++) push(&lists[3], (uint64_t)i);
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    REQUIRE(pthread_create(&th[i], NULL, mutator, (void *)(intptr_t)i) == 0);
  int forks = getenv("GCHEAP_FORKS") ? atoi(getenv("GCHEAP_FORKS")) : 1000;
  int in_mark = 0, bad = 0;
  for (int i = 0; i < forks; i++) {
    for (int k = 0; k < 2000; k++) push(&lists[2], (uint64_t)k);
    lists[2] = NULL;
    in_mark += ((const gc_heap_public_t *)H)->barrier_on != 0;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(child_main());
    int status;
    gc_blocking_enter(H);
    REQUIRE(waitpid(pid, &status, 0) == pid);
    gc_blocking_leave(H);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork %d: child %s %d\n", i,
              WIFSIGNALED(status) ? "killed by signal" : "exited",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      bad++;
    }
  }
  atomic_store(&stop_flag, 1);
  gc_blocking_enter(H);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  gc_blocking_leave(H);
  gc_stats_t s = test_stats(H);
  printf("%d forks, %d while marking, %llu cycles in the parent\n", forks,
         in_mark, (unsigned long long)s.cycles);
  CHECK_EQ(bad, 0);
  CHECK(gc_verify(H, stderr) == GCH_OK);
  memset(lists, 0, sizeof lists);
  REQUIRE(gc_heap_destroy(H) == GCH_OK);
  return test_done("test_fork");
}
