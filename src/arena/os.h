/*
 * os.h -- the operating-system memory layer (see os_linux.c).
 *
 * Owns: every mmap/mprotect/madvise/munmap the library makes.  Nothing above
 * this file talks to the kernel about memory.
 *
 * Address space moves through explicit states, as in Go's mem.go:
 *
 *   None --reserve--> Reserved --map--> Prepared --commit--> Ready
 *   Ready --decommit--> Prepared     (pages dropped, next touch reads zero)
 *   Ready/Prepared --fault--> Reserved   (any access traps: PROT_NONE)
 *   any --release--> None
 *
 * On Linux "Prepared" and "Ready" are both PROT_READ|PROT_WRITE; commit is
 * bookkeeping plus a hint, decommit is madvise(MADV_DONTNEED).
 *
 * Contracts: addresses and sizes are multiples of GCH_OS_PAGE (4 KiB) unless
 * stated; functions return 0 on success and an errno value on failure.
 *
 * Test hook: os_fail_after(o, k) makes the k-th following reserve/map/commit
 * call fail with ENOMEM (k = 0 disables), so every out-of-memory path can
 * run in `make check` (Lua's ltests do the same).
 */
#ifndef GCH_OS_H
#define GCH_OS_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#define GCH_OS_PAGE ((size_t)4096)

typedef struct os_mem {
  atomic_long fail_countdown; /* >0: counts down, the call reaching 0 fails */
  atomic_size_t reserved;     /* bytes in state Reserved or beyond */
  atomic_size_t ready;        /* bytes in state Ready (committed) */
} os_mem_t;

/* Reserve `size` bytes aligned to `align` (a power of two >= GCH_OS_PAGE),
 * preferring `hint` when nonzero.  Result in *out.  PROT_NONE. */
int _gc_os_reserve(os_mem_t *o, uintptr_t hint, size_t size, size_t align,
                   void **out);
/* Reserved -> Prepared (readable and writable, zero, not yet counted). */
int _gc_os_map(os_mem_t *o, void *addr, size_t size);
/* Prepared -> Ready. */
int _gc_os_commit(os_mem_t *o, void *addr, size_t size);
/* Ready -> Prepared: give the physical pages back; contents become zero. */
void _gc_os_decommit(os_mem_t *o, void *addr, size_t size);
/* Ready/Prepared -> Reserved: any access faults from now on.  Returns 0,
 * or an errno value when the kernel refused (typically ENOMEM at
 * vm.max_map_count); the pages are then at least dropped (they read as
 * zero) but stay accessible, and the caller decides how loud to be. */
int _gc_os_fault(os_mem_t *o, void *addr, size_t size, int was_ready);
/* Reserved (after _gc_os_fault) -> Prepared again, for the same range:
 * readable, writable and zero.  Not subject to the failure hook (used by
 * GCHEAP_DEBUG=harddecommit on reuse of released heap pages). */
int _gc_os_unfault(os_mem_t *o, void *addr, size_t size);
/* Hint (Prepared/Ready memory): back [addr, addr+size) with transparent
 * huge pages where the kernel allows; no effect otherwise.  Used by user
 * arenas (arena/userarena.c) for the part of a chunk past its first 2 MiB. */
void _gc_os_hugepages(os_mem_t *o, void *addr, size_t size);
/* Any -> None. */
void _gc_os_release(os_mem_t *o, void *addr, size_t size);

/* Metadata memory that is never freed before the heap: None -> Ready in one
 * step (zeroed).  Sizes are rounded up to GCH_OS_PAGE. */
int _gc_os_alloc(os_mem_t *o, size_t size, void **out);
void _gc_os_free(os_mem_t *o, void *addr, size_t size);

/* Large demand-paged tables (arena index, summaries): reserved read/write
 * with MAP_NORESERVE so untouched pages cost nothing and read as zero. */
int _gc_os_alloc_sparse(os_mem_t *o, size_t size, void **out);

void _gc_os_fail_after(os_mem_t *o, long k);

/* Number of online CPUs (at least 1). */
int _gc_os_ncpu(void);
/* Monotonic clock in nanoseconds. */
uint64_t _gc_os_nanotime(void);

#endif
