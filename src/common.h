/*
 * common.h -- small shared helpers: assertions, fatal errors, bit tricks,
 * locks with debug ownership checks.
 *
 * GCH_ASSERT is compiled in debug builds (GCH_DEBUG=1) only; gch_throw is
 * always on and never allocates: it is for states that mean the heap is
 * corrupt or the host broke a contract that cannot be reported otherwise.
 */
#ifndef GCH_COMMON_H
#define GCH_COMMON_H

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>
#include <stdatomic.h>

#ifndef GCH_DEBUG
#define GCH_DEBUG 0
#endif

#define GCH_HIDDEN __attribute__((visibility("hidden")))
#define GCH_NOINLINE __attribute__((noinline))
#define GCH_INLINE static inline __attribute__((always_inline))
#define gch_likely(x) __builtin_expect(!!(x), 1)
#define gch_unlikely(x) __builtin_expect(!!(x), 0)

_Noreturn void _gc_throw(const char *file, int line, const char *msg);
#define gch_throw(msg) _gc_throw(__FILE__, __LINE__, (msg))

#if GCH_DEBUG
#define GCH_ASSERT(c)                                                       \
  do {                                                                      \
    if (!(c)) _gc_throw(__FILE__, __LINE__, "assertion failed: " #c);       \
  } while (0)
#else
#define GCH_ASSERT(c) ((void)0)
#endif

#define GCH_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GCH_MAX(a, b) ((a) > (b) ? (a) : (b))
#define GCH_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((uintptr_t)(a)-1))

GCH_INLINE unsigned gch_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
GCH_INLINE unsigned gch_popcount64(uint64_t x) {
  return (unsigned)__builtin_popcountll(x);
}

/* A mutex that remembers its owner in debug builds so that lock
 * preconditions ("h->lock must be held") can be asserted. */
typedef struct gch_lock {
  pthread_mutex_t m;
#if GCH_DEBUG
  _Atomic(pthread_t) owner;
  atomic_int held;
#endif
} gch_lock_t;

void _gc_lock_init(gch_lock_t *l);
void _gc_lock_destroy(gch_lock_t *l);
void _gc_lock(gch_lock_t *l);
void _gc_unlock(gch_lock_t *l);
#if GCH_DEBUG
void _gc_lock_assert_held(gch_lock_t *l);
#else
#define _gc_lock_assert_held(l) ((void)(l))
#endif

#endif
