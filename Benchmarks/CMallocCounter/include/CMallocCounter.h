// CMallocCounter: counts every heap allocation of the process, for
// wire-bench's "mallocs/packet" figure (and, preloaded, for the daemon in
// `wirelab bench forward`). See malloc_counter.c for how.
#ifndef CMALLOCCOUNTER_H
#define CMALLOCCOUNTER_H

/// Number of malloc, calloc, realloc, memalign, aligned_alloc,
/// posix_memalign, valloc and pvalloc calls made so far by any code in the
/// process (Swift runtime included), from any thread.
unsigned long long cwl_malloc_count(void);

#endif
