/*
 * scavenge.c -- returning free heap pages to the OS (Go's mgcscavenge.go,
 * with a jemalloc-style decay).
 *
 * Owns: the retained-memory goal, the background scavenger thread, the
 * synchronous scavenges (heap growth, memory limits, gc_release_memory) and
 * the counters of released memory.
 *
 * Retained memory is the heap's pages backed by the OS:
 *     retained = (total - scavenged) pages
 * i.e. in-use spans, free pages not yet released, and the pages that
 * threads' page caches hold (counted as retained even when scavenged:
 * the bound errs on the safe side by at most 512 KiB a thread).  This is
 * gc_stats_t.bytes_mapped.
 *
 * When memory goes back:
 *  - goal: after each cycle the retained goal becomes heap goal + 10% (Go's
 *    gcPercentGoal), or 95% of a soft memory limit if lower; the
 *    background scavenger releases what is above it, and heap growth
 *    releases it at once (so a "swiss cheese" heap gives its holes back
 *    when it has to grow around them);
 *  - decay: a 4 MiB chunk in which nothing was allocated for
 *    GCH_SCAVENGE_DECAY_MS gives all its free pages back (background),
 *    so an idle heap drifts down to its in-use pages;
 *  - limits: before taking pages, an allocation that would push retained
 *    memory (plus live user-arena chunks) past the hard limit, or past 95%
 *    of the soft one, releases the difference first; under a hard limit,
 *    if that cannot make room the allocation fails with GCH_ELIMIT;
 *  - gc_release_memory: everything free, after a full collection.
 *
 * How: pages are marked scavenged in the page allocator and madvised
 * (MADV_DONTNEED) with the heap lock held, so no allocation sees a page
 * half released; batches are at most SCAV_BATCH pages so the lock is
 * never held long.  The background thread paces itself to about
 * SCAV_CPU_PERCENT of one CPU (it sleeps 9x as long as each batch took).
 * A reused scavenged page reads as zero: a span made only of such pages is
 * not cleared (span.c, needzero).  With GCHEAP_DEBUG=harddecommit
 * released pages are made inaccessible (PROT_NONE) and made accessible
 * again when a span takes them, so a stale pointer into released memory
 * faults at once.
 *
 * Huge pages: the heap does not ask for them (no MADV_HUGEPAGE), as Go
 * since 1.21.1: where THP is "always" the kernel may still back 2 MiB
 * blocks.  Every scavenge first takes only 2 MiB blocks with no page in
 * use (releasing those never splits a huge page) and touches partly used
 * blocks only when the goal or a limit still asks for more.
 *
 * The background thread is not an attached thread: it never touches
 * objects, only the page allocator under the heap lock.  fork.c takes the
 * heap lock around fork() so a child never inherits it held.
 */
#include "heap.h"
#include "arena/userarena.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#define SCAV_TICK_MS 100                /* background clock period */
#define SCAV_DECAY_EPOCHS (GCH_SCAVENGE_DECAY_MS / SCAV_TICK_MS)
#define SCAV_BATCH 256                  /* pages per lock hold (2 MiB) */
#define SCAV_CPU_PERCENT 10
#define SCAV_IDLE_TICKS (SCAV_DECAY_EPOCHS + 5) /* then sleep until woken */

/* Pages fenced off by GCHEAP_DEBUG=efence are in use for the page
 * allocator but backed by nothing. */
static size_t scav_retained(gc_heap_t *h) {
  return (h->pages.total_pages - h->pages.scav_pages) * GCH_PAGE_SIZE -
         atomic_load(&h->efence_bytes);
}

static size_t scav_pages_for(size_t bytes) {
  return (bytes + GCH_PAGE_SIZE - 1) / GCH_PAGE_SIZE;
}

/* The page allocator reports each run it marked scavenged. */
static void scav_release(void *ctx, uintptr_t base, size_t npages) {
  gc_heap_t *h = ctx;
  size_t bytes = npages * GCH_PAGE_SIZE;
  if (!(h->debug & GCDBG_HARDDECOMMIT)) _gc_os_decommit(&h->os, (void *)base, bytes);
  else if (_gc_os_fault(&h->os, (void *)base, bytes, 1) != 0)
    _gc_warn_once(h, "GCHEAP_DEBUG=harddecommit: the kernel refused to fault released"
                     " pages (vm.max_map_count?): they are released but stay readable");
  h->scav.runs++;
  h->scav.released_total += bytes;
}

/* Release up to max_pages free pages, whole 2 MiB blocks first; idle > 0
 * takes only chunks not allocated from for that many epochs. */
static size_t scav_do(gc_heap_t *h, size_t max_pages, uint32_t idle) {
  _gc_lock_assert_held(&h->lock);
  pages_scav_req_t req = {.max_pages = max_pages, .idle_epochs = idle,
                          .whole_blocks = 1, .fn = scav_release, .ctx = h};
  size_t done = _gc_pages_scavenge_ex(&h->pages, &req);
  if (done < max_pages) {
    req.max_pages = max_pages - done;
    req.whole_blocks = 0;
    done += _gc_pages_scavenge_ex(&h->pages, &req);
  }
  return done;
}

size_t _gc_scavenge_locked(gc_heap_t *h, size_t max_pages) {
  return scav_do(h, max_pages, 0);
}

static size_t scav_ua_live(const gc_heap_t *h) {
  return h->uarena ? atomic_load(&h->uarena->live_bytes) : 0;
}

gc_result_t _gc_scavenge_make_room(gc_heap_t *h, size_t bytes, bool *over) {
  _gc_lock_assert_held(&h->lock);
  size_t hard = h->config.hard_limit, soft = h->config.memory_limit;
  *over = false;
  if (!hard && !soft) return GCH_OK;
  size_t used = scav_retained(h) + scav_ua_live(h);
  if (soft) {
    size_t lim = soft / 100 * 95;
    if (used + bytes > lim) scav_do(h, scav_pages_for(used + bytes - lim), 0);
    used = scav_retained(h) + scav_ua_live(h);
    *over = used + bytes > soft;
  }
  if (!hard) return GCH_OK;
  if (used + bytes > hard) scav_do(h, scav_pages_for(used + bytes - hard), 0);
  used = scav_retained(h) + scav_ua_live(h);
  return used + bytes > hard || used + bytes < used ? GCH_ELIMIT : GCH_OK;
}

bool _gc_scavenge_cache_ok(gc_heap_t *h) {
  _gc_lock_assert_held(&h->lock);
  size_t hard = h->config.hard_limit;
  if (!hard) return true;
  size_t win = GCH_PCACHE_PAGES * GCH_PAGE_SIZE;
  return scav_retained(h) + scav_ua_live(h) + 2 * win <= hard;
}

void _gc_scavenge_after_alloc(gc_heap_t *h, bool grew) {
  _gc_lock_assert_held(&h->lock);
  size_t retained = scav_retained(h), goal = h->scav.goal;
  if (grew && goal && retained > goal) {
    scav_do(h, scav_pages_for(retained - goal), 0);
    retained = scav_retained(h);
  }
  if (retained > h->scav.peak) h->scav.peak = retained;
}

/* ---------------------------------------------------------- background */

static void scav_set_goal(gc_heap_t *h, size_t heap_goal) {
  size_t goal = heap_goal == SIZE_MAX ? 0 : heap_goal + heap_goal / 10;
  size_t soft = h->config.memory_limit;
  if (soft && (goal == 0 || soft / 100 * 95 < goal)) goal = soft / 100 * 95;
  h->scav.goal = goal; /* 0: no goal */
}

void _gc_scavenge_cycle_end(gc_heap_t *h, size_t heap_goal) {
  _gc_lock(&h->lock);
  scav_set_goal(h, heap_goal);
  _gc_unlock(&h->lock);
  if (!h->scav.running) return;
  pthread_mutex_lock(&h->scav.mu);
  h->scav.wake = 1;
  pthread_cond_signal(&h->scav.cv);
  pthread_mutex_unlock(&h->scav.mu);
}

/* One batch of background work: pages over the goal, else pages of idle
 * chunks.  Returns pages released. */
static size_t scav_batch(gc_heap_t *h) {
  _gc_lock(&h->lock);
  size_t done = 0, retained = scav_retained(h), goal = h->scav.goal;
  if (goal && retained > goal)
    done = scav_do(h, GCH_MIN(scav_pages_for(retained - goal), (size_t)SCAV_BATCH), 0);
  if (!done) done = scav_do(h, SCAV_BATCH, SCAV_DECAY_EPOCHS);
  _gc_unlock(&h->lock);
  return done;
}

static void scav_sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* Wait for the next tick (or forever when idle).  Returns 0 to stop, 2
 * when woken by a cycle's end, 1 on a tick. */
static int scav_wait(gc_heap_t *h, bool forever) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += SCAV_TICK_MS * 1000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&h->scav.mu);
  while (!h->scav.stop && !h->scav.wake) {
    int rc = forever ? pthread_cond_wait(&h->scav.cv, &h->scav.mu)
                     : pthread_cond_timedwait(&h->scav.cv, &h->scav.mu, &until);
    if (rc == ETIMEDOUT) break;
  }
  int r = h->scav.stop ? 0 : h->scav.wake ? 2 : 1;
  h->scav.wake = 0;
  pthread_mutex_unlock(&h->scav.mu);
  return r;
}

static void *scav_main(void *arg) {
  gc_heap_t *h = arg;
  unsigned idle_ticks = 0;
  int w;
  while ((w = scav_wait(h, idle_ticks >= SCAV_IDLE_TICKS)) != 0) {
    _gc_lock(&h->lock);
    h->pages.epoch++;
    bool free_backed = h->pages.free_pages > h->pages.scav_pages;
    _gc_unlock(&h->lock);
    /* A cycle's end restarts the clock: sweeping frees pages after it. */
    idle_ticks = free_backed || w == 2 ? 0 : idle_ticks + 1;
    for (;;) {
      uint64_t t0 = _gc_os_nanotime();
      if (!scav_batch(h)) break;
      uint64_t spent = _gc_os_nanotime() - t0;
      scav_sleep_ns(spent * (100 - SCAV_CPU_PERCENT) / SCAV_CPU_PERCENT);
      pthread_mutex_lock(&h->scav.mu);
      int stop = h->scav.stop;
      pthread_mutex_unlock(&h->scav.mu);
      if (stop) break;
    }
  }
  return NULL;
}

gc_result_t _gc_scavenge_start(gc_heap_t *h) {
  if (!h->config.background_scavenge || h->scav.running) return GCH_OK;
  pthread_mutex_init(&h->scav.mu, NULL);
  pthread_cond_init(&h->scav.cv, NULL);
  h->scav.stop = h->scav.wake = 0;
  if (pthread_create(&h->scav.thread, NULL, scav_main, h) != 0) return GCH_ENOMEM;
  h->scav.running = true;
  return GCH_OK;
}

void _gc_scavenge_stop(gc_heap_t *h) {
  if (!h->scav.running) return;
  pthread_mutex_lock(&h->scav.mu);
  h->scav.stop = 1;
  pthread_cond_signal(&h->scav.cv);
  pthread_mutex_unlock(&h->scav.mu);
  pthread_join(h->scav.thread, NULL);
  h->scav.running = false;
}

void _gc_scavenge_forked_child(gc_heap_t *h) {
  h->scav.running = false; /* the thread did not survive fork */
}

/* ------------------------------------------------------------ public API */

GCH_API gc_result_t gc_release_memory(gc_heap_t *h) {
  gc_result_t r = gc_collect(h); /* validates h and the calling thread */
  if (r != GCH_OK) return r;
  gc_thread_t *t = _gc_thread_current(h);
  _gc_lock(&h->lock);
  _gc_span_cache_flush(h, t);
  scav_do(h, SIZE_MAX, 0);
  _gc_unlock(&h->lock);
  return GCH_OK;
}
