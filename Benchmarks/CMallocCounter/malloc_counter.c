// Why this shim exists: wire-bench reports allocations per packet, and the
// only way to *count* them (mallinfo2()/malloc_stats() give bytes in use, so
// a malloc+free pair inside the loop would leave no trace) is to see every
// call. This file defines malloc & co. in the wire-bench executable. The
// dynamic linker binds every reference in the process to the executable's
// definition first — libswiftCore's swift_slowAlloc and glibc's own
// internal calls included (glibc supports replacing malloc this way: see
// "Replacing malloc" in the glibc manual) — and each one counts and then
// forwards to glibc's allocator through its exported __libc_* entry points.
//
// Linked only into wire-bench (Package.swift); nothing else is affected.

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

#include "CMallocCounter.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static _Atomic unsigned long long cwl_allocations;

static inline void cwl_count(void) {
    atomic_fetch_add_explicit(&cwl_allocations, 1, memory_order_relaxed);
}

unsigned long long cwl_malloc_count(void) {
    return atomic_load_explicit(&cwl_allocations, memory_order_relaxed);
}

#define CWL_EXPORT __attribute__((visibility("default"), used))

CWL_EXPORT void *malloc(size_t size) {
    cwl_count();
    return __libc_malloc(size);
}

CWL_EXPORT void *calloc(size_t count, size_t size) {
    cwl_count();
    return __libc_calloc(count, size);
}

CWL_EXPORT void *realloc(void *pointer, size_t size) {
    cwl_count();
    return __libc_realloc(pointer, size);
}

CWL_EXPORT void free(void *pointer) {
    __libc_free(pointer);
}

CWL_EXPORT void *memalign(size_t alignment, size_t size) {
    cwl_count();
    return __libc_memalign(alignment, size);
}

CWL_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
    cwl_count();
    return __libc_memalign(alignment, size);
}

CWL_EXPORT int posix_memalign(void **result, size_t alignment, size_t size) {
    cwl_count();
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

CWL_EXPORT void *valloc(size_t size) {
    cwl_count();
    return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

CWL_EXPORT void *pvalloc(size_t size) {
    cwl_count();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return __libc_memalign(page, (size + page - 1) & ~(page - 1));
}
