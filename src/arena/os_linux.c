/*
 * os_linux.c -- Linux implementation of os.h.  The only file with platform
 * calls for memory; see os.h for the state machine and contracts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "os.h"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int os_should_fail(os_mem_t *o) {
  long c = atomic_load_explicit(&o->fail_countdown, memory_order_relaxed);
  if (c <= 0) return 0;
  return atomic_fetch_sub(&o->fail_countdown, 1) == 1;
}

void _gc_os_fail_after(os_mem_t *o, long k) {
  atomic_store(&o->fail_countdown, k > 0 ? k : 0);
}

int _gc_os_reserve(os_mem_t *o, uintptr_t hint, size_t size, size_t align,
                   void **out) {
  if (size == 0 || size % GCH_OS_PAGE || align < GCH_OS_PAGE ||
      (align & (align - 1)))
    return EINVAL;
  if (os_should_fail(o)) return ENOMEM;
  if (hint && hint % align == 0) {
    void *p = mmap((void *)hint, size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                       MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (p == (void *)hint) {
      atomic_fetch_add(&o->reserved, size);
      *out = p;
      return 0;
    }
    if (p != MAP_FAILED) munmap(p, size); /* old kernels ignore NOREPLACE */
  }
  /* Over-reserve by `align` and trim both ends. */
  size_t span = size + align;
  if (span < size) return ENOMEM;
  char *raw = mmap(NULL, span, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return ENOMEM;
  uintptr_t base = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = base - (uintptr_t)raw;
  size_t tail = span - head - size;
  if (head) munmap(raw, head);
  if (tail) munmap((char *)base + size, tail);
  atomic_fetch_add(&o->reserved, size);
  *out = (void *)base;
  return 0;
}

int _gc_os_map(os_mem_t *o, void *addr, size_t size) {
  if (os_should_fail(o)) return ENOMEM;
  if (mprotect(addr, size, PROT_READ | PROT_WRITE) != 0) return errno;
  return 0;
}

int _gc_os_commit(os_mem_t *o, void *addr, size_t size) {
  (void)addr;
  if (os_should_fail(o)) return ENOMEM;
  atomic_fetch_add(&o->ready, size);
  return 0;
}

void _gc_os_decommit(os_mem_t *o, void *addr, size_t size) {
  madvise(addr, size, MADV_DONTNEED);
  atomic_fetch_sub(&o->ready, size);
}

int _gc_os_fault(os_mem_t *o, void *addr, size_t size, int was_ready) {
  /* Drop the pages and make every access trap.  MAP_FIXED replaces the
   * mapping atomically, so no window exists where the old data is readable. */
  int rc = 0;
  if (mmap(addr, size, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) {
    rc = errno;
    madvise(addr, size, MADV_DONTNEED); /* at least give the memory back */
  }
  if (was_ready) atomic_fetch_sub(&o->ready, size);
  return rc;
}

int _gc_os_unfault(os_mem_t *o, void *addr, size_t size) {
  (void)o;
  return mprotect(addr, size, PROT_READ | PROT_WRITE) != 0 ? errno : 0;
}

void _gc_os_hugepages(os_mem_t *o, void *addr, size_t size) {
  (void)o;
#ifdef MADV_HUGEPAGE
  madvise(addr, size, MADV_HUGEPAGE); /* EINVAL without THP: fine */
#else
  (void)addr;
  (void)size;
#endif
}

void _gc_os_release(os_mem_t *o, void *addr, size_t size) {
  munmap(addr, size);
  atomic_fetch_sub(&o->reserved, size);
}

static size_t os_round(size_t n) {
  return (n + GCH_OS_PAGE - 1) & ~(GCH_OS_PAGE - 1);
}

int _gc_os_alloc(os_mem_t *o, size_t size, void **out) {
  if (size == 0 || os_round(size) < size) return EINVAL;
  if (os_should_fail(o)) return ENOMEM;
  size = os_round(size);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return ENOMEM;
  atomic_fetch_add(&o->reserved, size);
  atomic_fetch_add(&o->ready, size);
  *out = p;
  return 0;
}

void _gc_os_free(os_mem_t *o, void *addr, size_t size) {
  size = os_round(size);
  munmap(addr, size);
  atomic_fetch_sub(&o->reserved, size);
  atomic_fetch_sub(&o->ready, size);
}

int _gc_os_alloc_sparse(os_mem_t *o, size_t size, void **out) {
  if (size == 0 || os_round(size) < size) return EINVAL;
  if (os_should_fail(o)) return ENOMEM;
  size = os_round(size);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return ENOMEM;
  atomic_fetch_add(&o->reserved, size);
  *out = p;
  return 0;
}

int _gc_os_ncpu(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

uint64_t _gc_os_nanotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
