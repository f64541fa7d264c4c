/*
 * test_pacer.c -- a steady allocator keeps the heap near the goal.
 *
 * Concurrent mode, a fixed 8 MiB live set and a steady stream of short
 * lived objects.  After each cycle, stats.last_overshoot says how far the
 * heap had grown past the goal when the mark finished.  Over 100 cycles
 * (after a warm-up of 5, while the trigger learns the mark's cost) every
 * cycle must end within 10% of its goal, and the heap in use must stay
 * under twice the goal.
 */
#include <string.h>

#include "testutil.h"

typedef struct obj {
  struct obj *next;
  uint64_t pad[3];
} obj_t;

static obj_t *live_head;

int main(int argc, char **argv) {
  test_seed(argc, argv);
  gc_config_t c = gc_config_default();
  c.mode = GCH_MODE_CONCURRENT;
  gc_heap_t *h = test_heap(&c);
  const gc_type_t *T;
  uint64_t map = 1;
  REQUIRE(gc_type_new(h, "obj", sizeof(obj_t), &map, 1, &T) == GCH_OK);
  REQUIRE(gc_root_add(h, &live_head, sizeof live_head, GCH_ROOT_PRECISE) == GCH_OK);
  for (int i = 0; i < (8 << 20) / 32; i++) {
    obj_t *o = gc_alloc(h, T);
    REQUIRE(o);
    gc_write(h, o, (void **)&o->next, live_head);
    live_head = o;
  }
  gc_stats_t s = test_stats(h);
  uint64_t start = s.cycles, last = s.cycles;
  double worst = -1;
  int over = 0, measured = 0;
  size_t max_inuse = 0, max_goal = 0;
  while (measured < 100) {
    for (int i = 0; i < 1000; i++) REQUIRE(gc_alloc(h, T));
    s = test_stats(h);
    if (s.bytes_in_use > max_inuse) max_inuse = s.bytes_in_use;
    if (s.cycles == last) continue;
    last = s.cycles;
    if (s.cycles - start <= 5) continue;
    measured++;
    if (s.heap_goal > max_goal) max_goal = s.heap_goal;
    if (s.last_overshoot > worst) worst = s.last_overshoot;
    if (s.last_overshoot > 0.10) over++;
  }
  printf("100 cycles: worst overshoot %+.1f%%, cycles over 10%%: %d, max in use "
         "%.1f MB, goal %.1f MB\n", 100 * worst, over, max_inuse / 1048576.0,
         max_goal / 1048576.0);
  CHECK_EQ(over, 0);
  CHECK(max_inuse <= 2 * max_goal);
  live_head = NULL;
  REQUIRE(gc_heap_destroy(h) == GCH_OK);
  return test_done("test_pacer");
}
