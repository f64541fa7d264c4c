/*
 * profile.c -- the heap profile: sampling allocations, stack buckets,
 * per-cycle publication, and gc_profile_write (Go's mprof.go, written out
 * in the legacy text format that google-pprof reads).
 *
 * Sampling.  Each thread counts requested bytes down from a gap drawn from
 * an exponential distribution with mean `rate` (a Poisson process over
 * allocated bytes, so every byte is equally likely to be sampled and a
 * site's bytes are estimated without bias by scaling each sample of size
 * x by 1 / (1 - exp(-x / rate))).  The countdown is the allocator's hook
 * countdown t->hook_bytes (malloc.c), shared with torture mode: the hook is
 * armed at min(bytes left to the next sample, 0 when torture is on, -1
 * under GCHEAP_DEBUG=efence), and
 * when it fires _gc_prof_hook charges the bytes allocated since arming.
 * rate 1 samples every allocation (the gap is -1); rate 0 is off.  The
 * sampled object is known only once allocated: malloc.c then calls
 * _gc_prof_sample, which records the stack (the host's profile_stack
 * callback, else backtrace()) in a bucket keyed by a hash of (stack,
 * size) and gives the object a profile record, so its death is counted
 * when sweeping frees it.
 *
 * Publication (Go's three-stage cycles).  Profile cycle C bumps at each
 * mark termination.  A sampled allocation counts into future[(C+2) % 3],
 * a free found by sweeping into future[(C+1) % 3].  At mark termination C
 * rises and future[C % 3] is added into `active`: allocations made before
 * the previous mark and the frees the previous sweep found, so `active`
 * is the heap as of a completed mark, never half a cycle.  When a profile
 * is written from an attached thread, sweeping is finished first and
 * future[(C+1) % 3] is published too (Go's mProf_PostSweep), so the
 * profile is the heap as of the last completed mark.  Nothing is
 * published before the first collection.
 *
 * Memory: buckets come from h->meta and are never freed (there are as
 * many as distinct sampled (stack, size) pairs).  Lock: prof->lock guards
 * buckets, counts and the cycle; taken after the special lock, before
 * h->lock, never across a call into the host.
 *
 * Output (gc_profile_write): the legacy heap profile that gperftools'
 * heap profiler writes and google-pprof reads:
 *   heap profile: <inuse n>: <inuse bytes> [<alloc n>: <alloc bytes>] @ heap_v2/<rate>
 *   <inuse n>: <inuse bytes> [<alloc n>: <alloc bytes>] @ 0x<pc> 0x<pc> ...
 *   MAPPED_LIBRARIES:
 *   <the process's /proc/self/maps>
 * Counts are raw samples; pprof scales them by the heap_v2 rule above
 * (with rate 1 the header says "heapprofile" and nothing is scaled).
 * Native stacks are return addresses; the innermost one is written minus
 * one (pprof subtracts one from the others) so every address lies in its
 * call instruction.  With a profile_symbol callback the file is a
 * "symbolized profile" (a `--- symbol` section naming every frame comes
 * first) that google-pprof reads without the program.
 */
#include "gc/specials.h"

#include <execinfo.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define PROF_DEFAULT_RATE ((long)512 << 10)
#define PROF_MAX_GAP ((long)1 << 40)
/* Frames of ours on top of a native stack: _gc_prof_sample, then the
 * allocation entry code (GCH_ALLOC_ENTRY, see prof_native_stack); 3 is the
 * guess used if the linker gave no section bounds. */
#define PROF_SKIP 3

extern const char __start_gcheap_alloc_entry[] __attribute__((weak, visibility("hidden")));
extern const char __stop_gcheap_alloc_entry[] __attribute__((weak, visibility("hidden")));

static bool prof_is_entry(const void *pc) {
  uintptr_t p = (uintptr_t)pc, lo = (uintptr_t)__start_gcheap_alloc_entry;
  return lo && p >= lo && p < (uintptr_t)__stop_gcheap_alloc_entry;
}

static prof_state_t *prof_of(gc_heap_t *h) { return &h->gc->sp->prof; }

void _gc_prof_init(gc_heap_t *h) {
  prof_state_t *p = prof_of(h);
  long r = h->config.profile_rate;
  _gc_lock_init(&p->lock);
  p->rate = r == 0 ? PROF_DEFAULT_RATE : r < 0 ? 0 : r;
}

/* ------------------------------------------------------------- sampling */

static uint64_t prof_rand(gc_thread_t *t) {
  uint64_t x = t->prof_rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t->prof_rng = x;
  return x * 2685821657736338717ull;
}

/* Bytes to the next sample: exponential with mean rate; -1 = every one. */
static long prof_next_gap(prof_state_t *p, gc_thread_t *t) {
  if (p->rate == 1) return -1;
  double u = ((double)(prof_rand(t) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  double g = -log(u) * (double)p->rate;
  return g > (double)PROF_MAX_GAP ? PROF_MAX_GAP : (long)g;
}

void _gc_prof_arm(gc_heap_t *h, gc_thread_t *t) {
  long arm = prof_of(h)->rate ? t->prof_left : LONG_MAX;
  if (h->config.torture && arm > 0) arm = 0;
  /* GCHEAP_DEBUG=efence: below every size, so no allocation (size 0
   * included) takes a fast path (malloc.c, alloc_hooked). */
  if ((h->debug & GCDBG_EFENCE) && arm >= 0) arm = -1;
  t->hook_bytes = t->hook_armed = arm;
}

void _gc_prof_thread_init(gc_heap_t *h, gc_thread_t *t) {
  prof_state_t *p = prof_of(h);
  t->prof_rng = ((uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull) ^
                _gc_os_nanotime() ^ 0x5851f42d4c957f2dull;
  if (!t->prof_rng) t->prof_rng = 1;
  t->prof_left = p->rate ? prof_next_gap(p, t) : LONG_MAX;
  _gc_prof_arm(h, t);
}

bool _gc_prof_hook(gc_heap_t *h, gc_thread_t *t) {
  prof_state_t *p = prof_of(h);
  if (!p->rate) return false;
  t->prof_left -= t->hook_armed - t->hook_bytes;
  if (t->prof_left >= 0) return false;
  t->prof_left = prof_next_gap(p, t);
  return true;
}

/* ---------------------------------------------------------------- buckets */

static uint64_t prof_hash(const uintptr_t *stk, size_t n, size_t size) {
  uint64_t x = 0xcbf29ce484222325ull ^ size;
  for (size_t i = 0; i < n; i++) {
    x ^= stk[i];
    x *= 0x100000001b3ull;
    x ^= x >> 29;
  }
  return x;
}

/* The bucket of (stk, size), made if new.  [prof lock] */
static prof_bucket_t *prof_bucket(gc_heap_t *h, prof_state_t *p,
                                  const uintptr_t *stk, size_t n, size_t size) {
  uint64_t hash = prof_hash(stk, n, size);
  if (!p->table) {
    _gc_lock(&h->lock);
    p->table = _gc_persistent_alloc(&h->meta, PROF_HASH_SIZE * sizeof *p->table, 64);
    _gc_unlock(&h->lock);
    if (!p->table) return NULL;
  }
  prof_bucket_t **head = &p->table[hash % PROF_HASH_SIZE];
  for (prof_bucket_t *b = *head; b; b = b->next)
    if (b->hash == hash && b->size == size && b->nstk == n &&
        memcmp(b->stk, stk, n * sizeof *stk) == 0)
      return b;
  _gc_lock(&h->lock);
  prof_bucket_t *b = _gc_persistent_alloc(&h->meta, sizeof *b + n * sizeof *stk, 16);
  _gc_unlock(&h->lock);
  if (!b) return NULL;
  b->hash = hash;
  b->size = size;
  b->nstk = n;
  memcpy(b->stk, stk, n * sizeof *stk);
  b->next = *head;
  *head = b;
  b->all = p->all;
  p->all = b;
  p->nbuckets++;
  return b;
}

static void prof_count_add(prof_counts_t *dst, prof_counts_t *src) {
  dst->allocs += src->allocs;
  dst->frees += src->frees;
  dst->alloc_bytes += src->alloc_bytes;
  dst->free_bytes += src->free_bytes;
  memset(src, 0, sizeof *src);
}

/* Publish future[c % 3] of every bucket.  [prof lock] */
static void prof_flush(prof_state_t *p, uint32_t c) {
  for (prof_bucket_t *b = p->all; b; b = b->all)
    prof_count_add(&b->active, &b->future[c % 3]);
}

void _gc_prof_cycle(gc_heap_t *h) {
  prof_state_t *p = prof_of(h);
  _gc_lock(&p->lock);
  p->cycle++;
  prof_flush(p, p->cycle);
  _gc_unlock(&p->lock);
}

void _gc_prof_free(gc_heap_t *h, prof_bucket_t *b, size_t size) {
  prof_state_t *p = prof_of(h);
  _gc_lock(&p->lock);
  prof_counts_t *c = &b->future[(p->cycle + 1) % 3];
  c->frees++;
  c->free_bytes += size;
  _gc_unlock(&p->lock);
}

/* The native stack of the allocation, the caller of our entry point
 * first.  `ra` is _gc_prof_sample's return address (into alloc_hooked):
 * the frames up to it are ours (a sanitizer's backtrace() wrapper adds
 * one), and so are the entry-code frames above it -- one or two, as the
 * compiler inlined or tail-called the public function's slow path. */
GCH_INLINE size_t prof_native_stack(uintptr_t *pcs, void *ra) {
  void *buf[PROF_MAX_DEPTH + PROF_SKIP + 4];
  int n = backtrace(buf, PROF_MAX_DEPTH + PROF_SKIP + 4);
  int skip = PROF_SKIP;
  for (int i = 0; i < 6 && i < n; i++) {
    if (buf[i] == ra) {
      skip = i + 2;
      if (prof_is_entry(ra))
        for (skip = i + 1; skip < n && prof_is_entry(buf[skip]);) skip++;
      break;
    }
  }
  if (n <= skip) return 0;
  if (n - skip > PROF_MAX_DEPTH) n = skip + PROF_MAX_DEPTH;
  for (int i = skip; i < n; i++) pcs[i - skip] = (uintptr_t)buf[i];
  return (size_t)(n - skip);
}

/* Give obj a profile record pointing at b. */
static void prof_attach(gc_heap_t *h, uintptr_t obj, prof_bucket_t *b,
                        size_t size) {
  gc_span_t *s = span_of(h, obj);
  if (!s || atomic_load(&s->state) != SPAN_IN_USE) return;
  specials_t *sp = h->gc->sp;
  _gc_lock(&sp->lock);
  special_t *r = _gc_special_new(h, obj, SPECIAL_PROFILE);
  if (r) {
    r->u.prof.bucket = b;
    r->u.prof.size = size;
    _gc_special_insert(h, s, r);
  }
  _gc_unlock(&sp->lock);
}

GCH_NOINLINE void _gc_prof_sample(gc_heap_t *h, gc_thread_t *t, void *obj,
                                  size_t size) {
  (void)t;
  prof_state_t *p = prof_of(h);
  uintptr_t stk[PROF_MAX_DEPTH];
  size_t n;
  if (h->config.profile_stack) {
    n = h->config.profile_stack(h->config.profile_ctx, stk, PROF_MAX_DEPTH);
    if (n > PROF_MAX_DEPTH) n = PROF_MAX_DEPTH;
  } else {
    n = prof_native_stack(stk, __builtin_return_address(0));
  }
  /* Only heap objects (not what an oom_handler handed out) are tracked. */
  gc_span_t *s;
  size_t idx;
  if (!_gc_find_object(h, (uintptr_t)obj, &s, &idx)) return;
  _gc_lock(&p->lock);
  prof_bucket_t *b = prof_bucket(h, p, stk, n, size);
  if (b) {
    prof_counts_t *c = &b->future[(p->cycle + 2) % 3];
    c->allocs++;
    c->alloc_bytes += size;
  }
  _gc_unlock(&p->lock);
  if (!b) return;
  atomic_fetch_add(&p->samples, 1);
  prof_attach(h, (uintptr_t)obj, b, size);
}

/* ---------------------------------------------------------------- output */

typedef struct prof_row {
  const prof_bucket_t *b;
  prof_counts_t c;
} prof_row_t;

typedef struct prof_snap {
  prof_row_t *rows;
  size_t n, bytes;
  prof_counts_t total;
  long rate;
} prof_snap_t;

/* Copy the published counts of every bucket that has any. */
static gc_result_t prof_snapshot(gc_heap_t *h, prof_snap_t *snap) {
  prof_state_t *p = prof_of(h);
  memset(snap, 0, sizeof *snap);
  _gc_lock(&p->lock);
  snap->rate = p->rate;
  snap->bytes = (p->nbuckets + 1) * sizeof(prof_row_t);
  void *mem = NULL;
  if (_gc_os_alloc(&h->os, snap->bytes, &mem) != 0) {
    _gc_unlock(&p->lock);
    return GCH_ENOMEM;
  }
  snap->rows = mem;
  for (prof_bucket_t *b = p->all; b; b = b->all) {
    if (!b->active.allocs) continue;
    prof_row_t *row = &snap->rows[snap->n++];
    row->b = b;
    row->c = b->active;
    snap->total.allocs += b->active.allocs;
    snap->total.frees += b->active.frees;
    snap->total.alloc_bytes += b->active.alloc_bytes;
    snap->total.free_bytes += b->active.free_bytes;
  }
  _gc_unlock(&p->lock);
  return GCH_OK;
}

static void prof_write_counts(FILE *out, const prof_counts_t *c) {
  fprintf(out, "%llu: %llu [%llu: %llu] @",
          (unsigned long long)(c->allocs - c->frees),
          (unsigned long long)(c->alloc_bytes - c->free_bytes),
          (unsigned long long)c->allocs, (unsigned long long)c->alloc_bytes);
}

static void prof_write_symbols(gc_heap_t *h, FILE *out, const prof_snap_t *snap) {
  char exe[512];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = 0;
  fprintf(out, "--- symbol\nbinary=%s\n", exe);
  for (size_t i = 0; i < snap->n; i++) {
    const prof_bucket_t *b = snap->rows[i].b;
    for (size_t k = 0; k < b->nstk; k++) {
      const char *name = h->config.profile_symbol(h->config.profile_ctx, b->stk[k]);
      if (name) fprintf(out, "0x%016llx %s\n", (unsigned long long)b->stk[k], name);
    }
  }
  fprintf(out, "---\n");
}

static void prof_write_maps(FILE *out) {
  FILE *m = fopen("/proc/self/maps", "r");
  if (!m) return;
  fprintf(out, "\nMAPPED_LIBRARIES:\n");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, m)) > 0) fwrite(buf, 1, n, out);
  fclose(m);
}

static void prof_write(gc_heap_t *h, FILE *out, const prof_snap_t *snap) {
  bool symbolized = h->config.profile_symbol != NULL;
  bool native = !h->config.profile_stack && !symbolized;
  if (symbolized) prof_write_symbols(h, out, snap);
  fprintf(out, "heap profile: ");
  prof_write_counts(out, &snap->total);
  if (snap->rate > 1) fprintf(out, " heap_v2/%ld\n", snap->rate);
  else fprintf(out, " heapprofile\n");
  for (size_t i = 0; i < snap->n; i++) {
    const prof_bucket_t *b = snap->rows[i].b;
    prof_write_counts(out, &snap->rows[i].c);
    for (size_t k = 0; k < b->nstk; k++) {
      uintptr_t pc = b->stk[k] - (native && k == 0 && b->stk[k]);
      fprintf(out, " 0x%016llx", (unsigned long long)pc);
    }
    fputc('\n', out);
  }
  if (!symbolized) prof_write_maps(out);
}

/* Finish this cycle's sweep so all its frees are counted, then publish
 * them (Go's mProf_PostSweep).  If a collection slips in while we sweep,
 * sweep its results instead. */
static void prof_post_sweep(gc_heap_t *h) {
  prof_state_t *p = prof_of(h);
  for (;;) {
    _gc_lock(&p->lock);
    uint32_t c = p->cycle;
    _gc_unlock(&p->lock);
    while (_gc_central_sweep_one(h)) gc_safepoint(h);
    _gc_specials_wait_swept(h); /* spans other threads were sweeping */
    _gc_lock(&p->lock);
    bool same = p->cycle == c;
    if (same) prof_flush(p, c + 1);
    _gc_unlock(&p->lock);
    if (same) return;
  }
}

GCH_API gc_result_t gc_profile_write(gc_heap_t *h, FILE *out) {
  if (!h || h->magic != GCH_HEAP_MAGIC || !out) return GCH_EINVAL;
  gc_thread_t *t = _gc_thread_current(h);
  if (t && t->in_callback) {
    _gc_set_error(h, t, GCH_EBUSY);
    return GCH_EBUSY;
  }
  if (t) prof_post_sweep(h);
  prof_snap_t snap;
  gc_result_t r = prof_snapshot(h, &snap);
  if (r != GCH_OK) {
    _gc_set_error(h, t, r);
    return r;
  }
  prof_write(h, out, &snap);
  _gc_os_free(&h->os, snap.rows, snap.bytes);
  if (fflush(out) != 0 || ferror(out)) {
    _gc_set_error(h, t, GCH_EINVAL);
    return GCH_EINVAL;
  }
  return GCH_OK;
}
