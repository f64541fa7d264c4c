/*
 * pagealloc.h -- the page allocator (Go's mpagealloc.go design).
 *
 * Owns: which 8 KiB heap pages are free, in use, or scavenged (returned to
 * the OS), over the whole 48-bit address space.
 *
 * Structure:
 *  - per chunk (512 pages = 4 MiB): a 512-bit allocation bitmap (1 = in use)
 *    and a 512-bit scavenged bitmap (1 = page returned to the OS / never
 *    backed, so it reads as zero); chunks live in a sparse two-level map
 *    (L1 8192 entries -> L2 blocks of 8192 chunks, allocated on demand);
 *  - a 5-level radix tree of packed summaries (start, max, end free runs;
 *    21 bits each; bit 63 = "all 2^21 free") over the whole address space,
 *    8 children per node, levels reserved up front and demand-paged, so
 *    that an unmapped region reads as summary 0 = fully allocated;
 *  - searchAddr: every mapped page below it is in use, so a search starts
 *    there.
 *
 * alloc(n) returns the lowest-addressed run of n free pages in O(levels);
 * free updates the bitmap and walks the summaries up while they change.
 *
 * The allocator never touches the pages it manages: it works on addresses
 * only, so tests run it on "fake heaps" at addresses that were never mapped.
 *
 * Locking: every function taking pages_t * needs the owner's lock (the heap
 * lock) held, except the pcache_* functions, which touch only the
 * thread-owned cache.
 */
#ifndef GCH_PAGEALLOC_H
#define GCH_PAGEALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "os.h"

#define GCH_PAGE_SHIFT 13
#define GCH_PAGE_SIZE ((size_t)1 << GCH_PAGE_SHIFT)       /* 8 KiB */
#define GCH_CHUNK_PAGES 512                               /* pages a chunk */
#define GCH_CHUNK_BYTES (GCH_PAGE_SIZE * GCH_CHUNK_PAGES) /* 4 MiB */
#define GCH_ADDR_BITS 48
#define GCH_PCACHE_PAGES 64

struct pages_chunk; /* bitmaps of one chunk, private to pagealloc.c */

typedef struct pages {
  os_mem_t *os;                  /* where metadata memory comes from */
  uint64_t *summary[5];          /* level arrays, demand-paged */
  struct pages_chunk **chunks_l1; /* sparse chunk map (L1 -> L2 blocks) */
  uintptr_t search_addr;         /* all mapped pages below are in use */
  uintptr_t start, end;          /* lowest / highest+1 address ever grown */
  size_t free_pages;             /* free pages (scavenged or not) */
  size_t scav_pages;             /* free pages currently scavenged */
  size_t total_pages;            /* pages ever added by grow */
  size_t meta_bytes;             /* chunk map + touched summary pages */
  uint32_t epoch;                /* scavenger clock; stamps allocations */
} pages_t;

/* Thread-owned cache of up to 64 pages (one aligned 512 KiB window). */
typedef struct pcache {
  uintptr_t base;  /* window start, 0 = empty */
  uint64_t cache;  /* 1 = free page in the window, owned by this cache */
  uint64_t scav;   /* 1 = that page is scavenged (zero, not backed) */
} pcache_t;

int _gc_pages_init(pages_t *p, os_mem_t *os);  /* 0 or errno */
void _gc_pages_destroy(pages_t *p);

/* Add [base, base + npages*8K) as free *and scavenged* pages.  base must be
 * chunk aligned and npages a multiple of GCH_CHUNK_PAGES.  0 or errno
 * (metadata exhaustion: the allocator is unchanged on failure). */
int _gc_pages_grow(pages_t *p, uintptr_t base, size_t npages);

/* Allocate the lowest-addressed run of npages (>= 1) free pages.  Returns
 * its address, or 0 when no run fits (the caller grows the heap).  *nscav,
 * if not NULL, receives how many of the pages were scavenged; their scav
 * bits are cleared (the caller must commit/back them). */
uintptr_t _gc_pages_alloc(pages_t *p, size_t npages, size_t *nscav);

/* Return npages at base (from a previous alloc) to the free set. */
void _gc_pages_free(pages_t *p, uintptr_t base, size_t npages);

/* Scavenging support: find up to `max_pages` free, unscavenged pages from
 * the highest addresses down, mark them scavenged and report each run
 * through fn (so the caller can madvise it).  Returns pages scavenged. */
size_t _gc_pages_scavenge(pages_t *p, size_t max_pages,
                          void (*fn)(void *ctx, uintptr_t base, size_t npages),
                          void *ctx);

/* The general form: as above, plus filters.  idle_epochs > 0 takes only
 * chunks not allocated from (alloc or cache fill) for that many epochs of
 * p->epoch; whole_blocks takes only 2 MiB blocks with no page in use. */
typedef struct pages_scav_req {
  size_t max_pages;
  uint32_t idle_epochs;
  int whole_blocks;
  void (*fn)(void *ctx, uintptr_t base, size_t npages);
  void *ctx;
} pages_scav_req_t;
size_t _gc_pages_scavenge_ex(pages_t *p, const pages_scav_req_t *req);

/* Page cache.  refill takes a 64-page window with free pages out of the
 * allocator (those pages count as in use there); pcache_alloc serves
 * npages < 16 lock-free from the window; flush gives the rest back. */
void _gc_pages_fill_cache(pages_t *p, pcache_t *c);
uintptr_t _gc_pcache_alloc(pcache_t *c, size_t npages, size_t *nscav);
void _gc_pages_flush_cache(pages_t *p, pcache_t *c);

/* Is the page at addr in use according to the bitmap?  (tests, verify) */
int _gc_pages_in_use(const pages_t *p, uintptr_t addr);

/* Debug: recompute every summary from the bitmaps and compare; returns 0
 * when consistent, else -1 and writes a description into msg. */
int _gc_pages_check(const pages_t *p, char *msg, size_t msglen);

#endif
