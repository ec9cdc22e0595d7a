#pragma once
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc of NULL, memalign family) made by this process so far,
/// counted by the malloc this library defines in front of glibc's.
uint64_t courier_allocation_count(void);
/// Allocations of 64 KiB or more (and reallocations to that size).
uint64_t courier_large_allocation_count(void);
