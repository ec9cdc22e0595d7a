// Counts heap allocations for the micro-benchmarks: the executable defines malloc and friends, which
// the dynamic linker then uses for every library in the process (Swift's runtime included), and
// forwards to glibc's implementations. Only linked into micro-benchmark.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include "CAllocCounter.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static uint64_t allocations;
static uint64_t large_allocations;

/// Large: what glibc may hand back to the kernel when it is freed, and fault in again when it is reused.
#define LARGE_ALLOCATION (64 * 1024)

static inline void count(size_t size) {
    __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED);
    if (size >= LARGE_ALLOCATION) __atomic_fetch_add(&large_allocations, 1, __ATOMIC_RELAXED);
}

uint64_t courier_allocation_count(void) { return __atomic_load_n(&allocations, __ATOMIC_RELAXED); }
uint64_t courier_large_allocation_count(void) { return __atomic_load_n(&large_allocations, __ATOMIC_RELAXED); }

void *malloc(size_t size) { count(size); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(n * size); return __libc_calloc(n, size); }
void *realloc(void *pointer, size_t size) {
    // A new block, or a block grown to a large size (glibc may move it): both count.
    if (pointer == NULL) count(size);
    else if (size >= LARGE_ALLOCATION) __atomic_fetch_add(&large_allocations, 1, __ATOMIC_RELAXED);
    return __libc_realloc(pointer, size);
}
void free(void *pointer) { __libc_free(pointer); }
void *memalign(size_t alignment, size_t size) { count(size); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(size); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    count(size);
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}
