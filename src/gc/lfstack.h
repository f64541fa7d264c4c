/*
 * lfstack.h -- a lock-free LIFO of nodes whose first word is the link
 * (work buffers, free lists), built on libatomic_ops' double-width
 * compare-and-swap: the head is (pointer, version) and every push and pop
 * bumps the version, so a pop that raced with pop-push of the same node
 * (ABA) fails its CAS and retries.
 *
 * Why not AO_stack: Debian ships AO_stack's functions only in
 * libatomic_ops_gpl, and a GPL dependency is wrong for an embeddable
 * library; the MIT core of libatomic_ops provides the AO_double_t CAS used
 * here.  Nodes are never returned to the OS while a stack may hold them
 * (they are metadata of the heap), so reading a popped node's link is safe.
 */
#ifndef GCH_LFSTACK_H
#define GCH_LFSTACK_H

#include <atomic_ops.h>

/* ThreadSanitizer cannot see the inline-assembly CAS: tell it that a push
 * publishes the node and a pop acquires it. */
#if defined(__SANITIZE_THREAD__)
#define LFSTACK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LFSTACK_TSAN 1
#endif
#endif
#ifdef LFSTACK_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define lfstack_tsan_release(p) __tsan_release(p)
#define lfstack_tsan_acquire(p) __tsan_acquire(p)
#else
#define lfstack_tsan_release(p) ((void)(p))
#define lfstack_tsan_acquire(p) ((void)(p))
#endif

#ifndef AO_HAVE_compare_double_and_swap_double_full
#error "gcheap needs a double-width CAS (build with -mcx16 -DAO_CMPXCHG16B_AVAILABLE)"
#endif

typedef struct lfnode {
  struct lfnode *volatile next;
} lfnode_t;

typedef struct lfstack {
  volatile AO_double_t head; /* AO_val1 = node, AO_val2 = version */
} lfstack_t;

static inline void lfstack_init(lfstack_t *s) {
  s->head.AO_val1 = 0;
  s->head.AO_val2 = 0;
}

static inline void lfstack_push(lfstack_t *s, lfnode_t *n) {
  for (;;) {
    AO_t top = AO_load_acquire(&s->head.AO_val1);
    AO_t ver = AO_load(&s->head.AO_val2);
    __atomic_store_n(&n->next, (lfnode_t *)top, __ATOMIC_RELAXED);
    lfstack_tsan_release(s);
    if (AO_compare_double_and_swap_double_full(&s->head, top, ver,
                                               (AO_t)n, ver + 1))
      return;
  }
}

static inline lfnode_t *lfstack_pop(lfstack_t *s) {
  for (;;) {
    AO_t ver = AO_load_acquire(&s->head.AO_val2);
    AO_t top = AO_load_acquire(&s->head.AO_val1);
    if (!top) return NULL;
    lfnode_t *next = __atomic_load_n(&((lfnode_t *)top)->next, __ATOMIC_RELAXED);
    if (AO_compare_double_and_swap_double_full(&s->head, top, ver,
                                               (AO_t)next, ver + 1)) {
      lfstack_tsan_acquire(s);
      return (lfnode_t *)top;
    }
  }
}

static inline int lfstack_empty(lfstack_t *s) {
  return AO_load_acquire(&s->head.AO_val1) == 0;
}

#endif
