/*
 * test_signals.c -- the stop-the-world handshake under a signal storm.
 *
 * SIGALRM at 1 kHz (setitimer) and SIGPROF (CPU-time timer) hit every
 * thread while two mutators allocate and link objects, the concurrent
 * collector runs back-to-back cycles, and the main thread forces full
 * collections.  The handshake uses no signals itself, but its waits
 * (condition variables, sleeps) are interrupted constantly: nothing may
 * hang (a watchdog turns a hang into a failure) and the heap must verify
 * with every list intact.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

typedef struct cell {
  struct cell *next;
  uint64_t value;
} cell_t;

static gc_heap_t *H;
static const gc_type_t *CELL;
static cell_t *lists[2];
static atomic_int stop_flag;
static atomic_long signals_seen;

static void on_signal(int sig) {
  (void)sig;
  atomic_fetch_add(&signals_seen, 1);
}

static void *mutator(void *arg) {
  int id = (int)(intptr_t)arg;
  REQUIRE(gc_thread_attach(H) == GCH_OK);
  uint64_t v = 0;
  while (!atomic_load(&stop_flag)) {
    cell_t *c = gc_alloc(H, CELL);
    REQUIRE(c);
    c->value = ++v;
    gc_write(H, c, (void **)&c->next, lists[id]);
    lists[id] = c;
    if (v == 20000) { /* the list holds v, v-1, ..., 1: check, then drop it */
      uint64_t expect = v;
      for (cell_t *x = lists[id]; x; x = x->next, expect--)
        if (x->value != expect) abort();
      if (expect != 0) abort();
      lists[id] = NULL;
      v = 0;
    }
  }
  REQUIRE(gc_thread_detach(H) == GCH_OK);
  return NULL;
}

int main(int argc, char **argv) {
  test_seed(argc, argv);
  alarm(0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: waits see EINTR */
  sigaction(SIGALRM, &sa, NULL);
  sigaction(SIGPROF, &sa, NULL);
  gc_config_t c = gc_config_default();
  c.mode = GCH_MODE_CONCURRENT;
  c.gc_percent = 10;
  H = test_heap(&c);
  uint64_t map = 1;
  REQUIRE(gc_type_new(H, "cell", sizeof(cell_t), &map, 1, &CELL) == GCH_OK);
  REQUIRE(gc_root_add(H, lists, sizeof lists, GCH_ROOT_PRECISE) == GCH_OK);
  struct itimerval it = {{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
  setitimer(ITIMER_PROF, &it, NULL);
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    REQUIRE(pthread_create(&th[i], NULL, mutator, (void *)(intptr_t)i) == 0);
  gc_stats_t s0 = test_stats(H);
  /* Two seconds of forced collections between interrupted sleeps. */
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int forced = 0;
  do {
    REQUIRE(gc_collect(H) == GCH_OK);
    forced++;
    gc_blocking_enter(H);
    usleep(5000); /* cut short by the signals */
    gc_blocking_leave(H);
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 2000000000L);
  atomic_store(&stop_flag, 1);
  gc_blocking_enter(H);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  gc_blocking_leave(H);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  setitimer(ITIMER_PROF, &off, NULL);
  gc_stats_t s1 = test_stats(H);
  printf("%ld signals, %llu cycles (%llu forced)\n", (long)atomic_load(&signals_seen),
         (unsigned long long)(s1.cycles - s0.cycles),
         (unsigned long long)(s1.forced_cycles - s0.forced_cycles));
  CHECK(atomic_load(&signals_seen) > 1000);
  CHECK(s1.forced_cycles - s0.forced_cycles == (uint64_t)forced);
  CHECK(gc_verify(H, stderr) == GCH_OK);
  memset(lists, 0, sizeof lists);
  REQUIRE(gc_heap_destroy(H) == GCH_OK);
  return test_done("test_signals");
}
