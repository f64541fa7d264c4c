/*
 * heap.c -- heap lifecycle, configuration, attached threads, errors, stats.
 * See malloc.c for the allocation overview and gc/gc.c for collection.
 *
 * Owns: creating and destroying a gc_heap_t (all memory from the OS layer,
 * never malloc), reading the GCHEAP_* environment, the thread records
 * (attach/detach and the thread-local lookup), last-error reporting and
 * gc_get_stats.
 *
 * Thread lookup: each OS thread keeps a thread-local list of its records,
 * one per heap it is attached to; the head is the record it used last, so
 * the common single-heap case is one load and one compare.
 */
#include "heap.h"
#include "arena/userarena.h"
#include "gc/specials.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Static_assert(offsetof(struct gc_heap, pub) == 0,
               "gcheap.h inlines read the public header at offset 0");
_Static_assert(offsetof(gc_heap_public_t, barrier_on) == 0,
               "barrier flag must be the first word");

_Thread_local gc_thread_t *_gc_tls_threads; /* see heap.h: thread_current */
#define tls_threads _gc_tls_threads

/* ------------------------------------------------------------ utilities */

_Noreturn void _gc_throw(const char *file, int line, const char *msg) {
  fprintf(stderr, "gcheap: fatal: %s (%s:%d)\n", msg, file, line);
  abort();
}

void _gc_lock_init(gch_lock_t *l) {
  pthread_mutex_init(&l->m, NULL);
#if GCH_DEBUG
  atomic_store(&l->held, 0);
#endif
}
void _gc_lock_destroy(gch_lock_t *l) { pthread_mutex_destroy(&l->m); }
void _gc_lock(gch_lock_t *l) {
  pthread_mutex_lock(&l->m);
#if GCH_DEBUG
  atomic_store(&l->owner, pthread_self());
  atomic_store(&l->held, 1);
#endif
}
void _gc_unlock(gch_lock_t *l) {
#if GCH_DEBUG
  atomic_store(&l->held, 0);
#endif
  pthread_mutex_unlock(&l->m);
}
#if GCH_DEBUG
void _gc_lock_assert_held(gch_lock_t *l) {
  if (!atomic_load(&l->held) || !pthread_equal(atomic_load(&l->owner), pthread_self()))
    gch_throw("lock not held by this thread");
}
#endif

GCH_API const char *gc_result_str(gc_result_t r) {
  switch (r) {
#define GCH_RESULT_CASE(name, value, text) \
  case name:                               \
    return text;
    GCH_RESULT_LIST(GCH_RESULT_CASE)
#undef GCH_RESULT_CASE
  }
  return "unknown result";
}

/* -------------------------------------------------------- configuration */

GCH_API gc_config_t gc_config_default(void) {
  gc_config_t c;
  memset(&c, 0, sizeof c);
  c.gc_percent = 100;
  c.mode = GCH_MODE_STW;
  c.background_sweep = 1;
  c.profile_rate = GCH_PROFILE_RATE_DEFAULT;
  c.background_scavenge = 1;
  return c;
}

/* "512MiB", "2G", "1048576", "64k": bytes, or 0 with *ok = 0. */
static size_t heap_parse_bytes(const char *s, int *ok) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  *ok = 0;
  if (end == s || errno) return 0;
  static const struct { const char *suf; unsigned shift; } units[] = {
      {"", 0},   {"b", 0},   {"k", 10},   {"kb", 10}, {"kib", 10},
      {"m", 20}, {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
      {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcasecmp(end, units[i].suf) == 0) {
      if (units[i].shift && v > (ULLONG_MAX >> units[i].shift)) return 0;
      *ok = 1;
      return (size_t)(v << units[i].shift);
    }
  }
  return 0;
}

static void heap_env_warn(const char *var, const char *val) {
  fprintf(stderr, "gcheap: ignoring %s=%s (not understood)\n", var, val);
}

/* Environment variables override the host's config (Go's GOGC style). */
static void heap_read_env(gc_config_t *c) {
  const char *v;
  if ((v = getenv("GCHEAP_GC_PERCENT")) && *v) {
    char *end;
    long p = strtol(v, &end, 10);
    if (strcasecmp(v, "off") == 0) c->gc_percent = -1;
    else if (*end == 0 && p >= 0 && p <= 1000000) c->gc_percent = p ? (int)p : 1;
    else heap_env_warn("GCHEAP_GC_PERCENT", v);
  }
  if ((v = getenv("GCHEAP_MEMORY_LIMIT")) && *v) {
    int ok;
    size_t b = heap_parse_bytes(v, &ok);
    if (ok) c->memory_limit = b;
    else heap_env_warn("GCHEAP_MEMORY_LIMIT", v);
  }
  if ((v = getenv("GCHEAP_HARD_LIMIT")) && *v) {
    int ok;
    size_t b = heap_parse_bytes(v, &ok);
    if (ok && (b == 0 || b >= GCH_CHUNK_BYTES)) c->hard_limit = b;
    else heap_env_warn("GCHEAP_HARD_LIMIT", v);
  }
  if ((v = getenv("GCHEAP_SCAVENGE")) && *v) {
    if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0) c->background_scavenge = *v == '1';
    else heap_env_warn("GCHEAP_SCAVENGE", v);
  }
  if ((v = getenv("GCHEAP_TORTURE")) && *v) {
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end == 0) c->torture = n;
    else heap_env_warn("GCHEAP_TORTURE", v);
  }
  if ((v = getenv("GCHEAP_TRACE")) && *v) c->trace = atoi(v) > 0;
  if ((v = getenv("GCHEAP_MODE")) && *v) {
    if (strcasecmp(v, "stw") == 0) c->mode = GCH_MODE_STW;
    else if (strcasecmp(v, "concurrent") == 0) c->mode = GCH_MODE_CONCURRENT;
    else heap_env_warn("GCHEAP_MODE", v);
  }
  if ((v = getenv("GCHEAP_MARK_WORKERS")) && *v) {
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end == 0 && n <= 16) c->mark_workers = (unsigned)n;
    else heap_env_warn("GCHEAP_MARK_WORKERS", v);
  }
  if ((v = getenv("GCHEAP_PROFILE_RATE")) && *v) { /* specials: profile.c */
    int ok;
    size_t b = heap_parse_bytes(v, &ok);
    if (strcasecmp(v, "off") == 0 || (ok && b == 0)) c->profile_rate = -1;
    else if (ok && b <= ((size_t)1 << 40)) c->profile_rate = (long)b;
    else heap_env_warn("GCHEAP_PROFILE_RATE", v);
  }
}

/* GCHEAP_DEBUG: a comma-separated list of the names below. */
static unsigned heap_read_debug(void) {
  static const struct { const char *name; unsigned flag; } names[] = {
      {"verify", GCDBG_VERIFY},           {"checkmark", GCDBG_CHECKMARK},
      {"clobberfree", GCDBG_CLOBBERFREE}, {"efence", GCDBG_EFENCE},
      {"harddecommit", GCDBG_HARDDECOMMIT}};
  const char *v = getenv("GCHEAP_DEBUG");
  unsigned f = 0;
  while (v && *v) {
    size_t n = strcspn(v, ",");
    size_t i = 0;
    while (i < sizeof names / sizeof names[0] &&
           (strlen(names[i].name) != n || strncmp(names[i].name, v, n) != 0))
      i++;
    if (i < sizeof names / sizeof names[0]) f |= names[i].flag;
    else if (n) fprintf(stderr, "gcheap: GCHEAP_DEBUG: ignoring '%.*s'\n", (int)n, v);
    v += n + (v[n] == ',');
  }
  return f;
}

static gc_result_t heap_check_config(const gc_config_t *c) {
  if (c->mode != GCH_MODE_STW && c->mode != GCH_MODE_CONCURRENT) return GCH_EINVAL;
  if (c->hard_limit && c->hard_limit < GCH_CHUNK_BYTES) return GCH_EINVAL;
  if (c->mark_workers > 16) return GCH_EINVAL;
  return GCH_OK;
}

/* -------------------------------------------------------------- threads */

gc_thread_t *_gc_thread_current(gc_heap_t *h) {
  gc_thread_t *t = tls_threads;
  if (gch_likely(t && t->heap == h)) return t;
  gc_thread_t **pp = &tls_threads;
  while (t && t->heap != h) {
    pp = &t->tls_next;
    t = t->tls_next;
  }
  if (!t) return NULL;
  *pp = t->tls_next; /* move to front */
  t->tls_next = tls_threads;
  tls_threads = t;
  return t;
}

void _gc_set_error(gc_heap_t *h, gc_thread_t *t, gc_result_t r) {
  if (t) t->last_error = r;
  else if (h && h->magic == GCH_HEAP_MAGIC) atomic_store(&h->last_error_unattached, r);
}

void _gc_set_error_all(gc_result_t r) {
  for (gc_thread_t *t = tls_threads; t; t = t->tls_next) t->last_error = r;
}

GCH_API gc_result_t gc_last_error(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  return t ? t->last_error : (gc_result_t)atomic_load(&h->last_error_unattached);
}

static void thread_stack_bounds(gc_thread_t *t) {
  pthread_attr_t attr;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
      t->stack_lo = (uintptr_t)addr;
      t->stack_hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
  }
}

/* Attach the calling thread; internal threads (the sweeper) pass true. */
gc_result_t _gc_thread_attach(gc_heap_t *h, bool internal) {
  if (_gc_thread_current(h)) return GCH_EATTACHED;
  _gc_lock(&h->threads_lock);
  _gc_lock(&h->lock);
  gc_thread_t *t = _gc_fixalloc_alloc(&h->thread_alloc);
  _gc_unlock(&h->lock);
  if (!t) {
    _gc_unlock(&h->threads_lock);
    return GCH_ENOMEM;
  }
  t->heap = h;
  for (int i = 0; i < GCH_NUM_SPAN_CLASSES; i++) t->alloc[i] = h->empty_span;
  t->torture_left = h->config.torture;
  _gc_prof_thread_init(h, t); /* arms hook_bytes (profile + torture) */
  t->tid = pthread_self();
  t->internal = internal;
  thread_stack_bounds(t);
  atomic_store(&t->state, THR_BLOCKING);
  t->next = h->threads;
  h->threads = t;
  h->nthreads++;
  _gc_unlock(&h->threads_lock);
  t->tls_next = tls_threads;
  tls_threads = t;
  gc_blocking_leave(h);
  return GCH_OK;
}

GCH_API gc_result_t gc_thread_attach(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  return _gc_thread_attach(h, false);
}

void _gc_thread_flush_stats(gc_heap_t *h, gc_thread_t *t) {
  atomic_fetch_add(&h->alloc_bytes, t->alloc_bytes);
  t->alloc_bytes = 0;
  for (int i = 0; i < GCH_NUM_SIZE_CLASSES; i++) {
    if (!t->class_allocs[i]) continue;
    atomic_fetch_add(&h->class_allocs[i], t->class_allocs[i]);
    t->class_allocs[i] = 0;
  }
}

GCH_API gc_result_t gc_thread_detach(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) return GCH_ENOTATTACHED;
  if (t->in_callback || t->in_finalizer) return GCH_EBUSY;
  gc_safepoint(h);
  _gc_cache_release_all(h, t);
  _gc_thread_flush_stats(h, t);
  _gc_lock(&h->lock);
  _gc_span_cache_flush(h, t);
  _gc_unlock(&h->lock);
  gc_blocking_enter(h); /* from here on a stop need not wait for us */
  /* Off this OS thread's list first: once freed, t may be another
   * thread's new record at once. */
  gc_thread_t **tp = &tls_threads;
  while (*tp != t) tp = &(*tp)->tls_next;
  *tp = t->tls_next;
  _gc_lock(&h->threads_lock);
  gc_thread_t **pp = &h->threads;
  while (*pp != t) pp = &(*pp)->next;
  *pp = t->next;
  h->nthreads--;
  _gc_lock(&h->lock);
  _gc_fixalloc_free(&h->thread_alloc, t);
  _gc_unlock(&h->lock);
  _gc_unlock(&h->threads_lock);
  return GCH_OK;
}

GCH_API int gc_thread_is_attached(gc_heap_t *h) {
  return h && h->magic == GCH_HEAP_MAGIC && _gc_thread_current(h) != NULL;
}

/* ------------------------------------------------------ create / destroy */

static gc_result_t heap_init(gc_heap_t *h, const gc_config_t *config) {
  h->config = config ? *config : gc_config_default();
  if (h->config.gc_percent == 0) h->config.gc_percent = 100;
  heap_read_env(&h->config);
  h->debug = heap_read_debug();
  gc_result_t r = heap_check_config(&h->config);
  if (r != GCH_OK) return r;
  _gc_lock_init(&h->lock);
  _gc_lock_init(&h->threads_lock);
  _gc_lock_init(&h->roots_lock);
  pthread_mutex_init(&h->stw_lock, NULL);
  pthread_cond_init(&h->stw_cond, NULL);
  pthread_mutex_init(&h->gc_lock, NULL);
  _gc_persistent_init(&h->meta, &h->os);
  for (int big = 0; big < 2; big++)
    _gc_fixalloc_init(&h->span_alloc[big], &h->meta,
                      sizeof(gc_span_t) + 2 * sizeof(uint64_t) *
                                              (big ? SPAN_BIG_BITS : SPAN_SMALL_BITS));
  _gc_fixalloc_init(&h->thread_alloc, &h->meta, sizeof(gc_thread_t));
  _gc_fixalloc_init(&h->root_alloc, &h->meta, sizeof(struct gc_root_range));
  _gc_fixalloc_init(&h->rootcb_alloc, &h->meta, sizeof(struct gc_root_cb));
  for (int i = 0; i < GCH_NUM_SPAN_CLASSES; i++) _gc_central_init(&h->central[i]);
  h->empty_span = _gc_persistent_alloc(&h->meta, sizeof(gc_span_t), 64);
  if (!h->empty_span) return GCH_ENOMEM;
  if (_gc_pages_init(&h->pages, &h->os) != 0) return GCH_ENOMEM;
  if (_gc_arena_init(h) != 0) return GCH_ENOMEM;
  if (_gc_userarena_init(h) != 0) return GCH_ENOMEM;
  static const uint64_t all = 1;
  h->conservative_type = (gc_type_t){.name = "conservative", .size = 8,
                                     .nwords = 1, .mask64 = 1, .map = &all,
                                     .conservative = true};
  atomic_store(&h->sweepgen, 2);
  h->start_ns = _gc_os_nanotime();
  if (_gc_collector_init(h) != 0) return GCH_ENOMEM;
  return GCH_OK;
}

static void heap_release(gc_heap_t *h) {
  os_mem_t os = h->os;
  _gc_userarena_destroy(h);
  _gc_arena_destroy(h);
  if (h->pages.summary[0]) _gc_pages_destroy(&h->pages);
  _gc_persistent_release(&h->meta);
  h->magic = 0;
  _gc_os_free(&os, h, sizeof *h);
}

GCH_API gc_heap_t *gc_heap_new(const gc_config_t *config, gc_result_t *err) {
  gc_result_t dummy;
  if (!err) err = &dummy;
  os_mem_t os;
  memset(&os, 0, sizeof os);
  void *mem;
  if (_gc_os_alloc(&os, sizeof(gc_heap_t), &mem) != 0) {
    *err = GCH_ENOMEM;
    return NULL;
  }
  gc_heap_t *h = mem;
  h->os = os;
  h->magic = GCH_HEAP_MAGIC;
  *err = heap_init(h, config);
  if (*err == GCH_OK) *err = _gc_thread_attach(h, false);
  if (*err == GCH_OK) *err = _gc_collector_start(h);
  if (*err != GCH_OK) {
    _gc_collector_destroy(h);
    heap_release(h);
    return NULL;
  }
  _gc_fork_register(h);
  return h;
}

GCH_API gc_result_t gc_heap_destroy(gc_heap_t *h) {
  if (!h || h->magic != GCH_HEAP_MAGIC) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (!t) return GCH_ENOTATTACHED;
  if (t->in_callback || t->in_finalizer) return GCH_EBUSY;
  /* Internal threads detach; a concurrent cycle under way ends first (the
   * controller finishes it before it exits). */
  _gc_collector_stop(h);
  _gc_lock(&h->threads_lock);
  unsigned others = h->nthreads - 1;
  _gc_unlock(&h->threads_lock);
  if (others || atomic_load(&h->collecting)) {
    _gc_collector_start(h);
    return GCH_EBUSY;
  }
  _gc_fork_unregister(h);
  gc_thread_detach(h);
  _gc_collector_destroy(h);
  heap_release(h);
  return GCH_OK;
}

/* ----------------------------------------------------------------- stats */

void _gc_warn_once(gc_heap_t *h, const char *msg) {
  if (atomic_exchange(&h->warned, 1) == 0) fprintf(stderr, "gcheap: %s\n", msg);
}

size_t _gc_meta_bytes(gc_heap_t *h) {
  return h->meta.bytes + h->pages.meta_bytes;
}

GCH_API gc_result_t gc_get_stats(gc_heap_t *h, gc_stats_t *out) {
  if (!h || h->magic != GCH_HEAP_MAGIC || !out) return GCH_EINVAL;
  memset(out, 0, sizeof *out);
  gc_thread_t *t = _gc_thread_current(h);
  if (t) _gc_thread_flush_stats(h, t);
  _gc_lock_cycle(h); /* a consistent picture of the cycle */
  out->cycles = atomic_load(&h->cycles);
  out->forced_cycles = atomic_load(&h->forced_cycles);

  out->bytes_reserved = atomic_load(&h->os.reserved);
  out->bytes_in_use = atomic_load(&h->heap_inuse);
  out->live_bytes = atomic_load(&h->heap_marked);
  out->heap_goal = h->heap_goal;
  _gc_lock(&h->lock);
  out->metadata_bytes = _gc_meta_bytes(h);
  out->bytes_mapped = (h->pages.total_pages - h->pages.scav_pages) * GCH_PAGE_SIZE;
  out->bytes_released = h->pages.scav_pages * GCH_PAGE_SIZE;
  size_t fenced = atomic_load(&h->efence_bytes); /* efence: never reused */
  out->bytes_mapped -= fenced;
  out->bytes_released += fenced;
  out->released_bytes_total = h->scav.released_total;
  out->bytes_mapped_peak = GCH_MAX(h->scav.peak, out->bytes_mapped);
  out->scavenge_runs = h->scav.runs;
  _gc_unlock(&h->lock);
  out->total_alloc_bytes = atomic_load(&h->alloc_bytes);
  out->total_freed_bytes = atomic_load(&h->freed_bytes);
  out->total_freed_objects = atomic_load(&h->freed_objects);
  out->pause_last_ns = h->pause_last_ns;
  out->pause_max_ns = h->pause_max_ns;
  out->pause_total_ns = h->pause_total_ns;
  out->stw_wait_last_ns = h->stw_wait_last_ns;
  out->mark_ns_total = h->mark_ns_total;
  out->sweep_ns_total = h->sweep_ns_total;
  out->marked_objects_last = h->marked_objects_last;
  out->swept_spans_total = atomic_load(&h->swept_spans);
  memcpy(out->pause_ns, h->pause_ring, sizeof out->pause_ns);
  memcpy(out->pause_end_ns, h->pause_end_ring, sizeof out->pause_end_ns);
  out->pause_count = h->pause_count;
  out->last_overshoot = _gc_last_overshoot(h);
  out->mark_cpu_ns_total = _gc_mark_cpu_ns(h);
  /* threads_lock only while gc_lock is held: no stop can be under way, so
   * waiting for threads_lock cannot stall a collector waiting for us. */
  _gc_lock(&h->threads_lock);
  out->threads = 0;
  for (gc_thread_t *x = h->threads; x; x = x->next) out->threads += !x->internal;
  _gc_unlock(&h->threads_lock);
  pthread_mutex_unlock(&h->gc_lock);
  uint64_t objs = 0;
  for (int i = 0; i < GCH_NUM_SIZE_CLASSES; i++) {
    out->by_class[i].size = gch_class_to_size[i];
    out->by_class[i].allocs = atomic_load(&h->class_allocs[i]);
    out->by_class[i].frees = atomic_load(&h->class_frees[i]);
    objs += out->by_class[i].allocs;
  }
  out->total_alloc_objects = objs;
  _gc_userarena_stats(h, out);
  _gc_specials_stats(h, out);
  return GCH_OK;
}
