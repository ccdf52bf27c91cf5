#ifndef BIGMODEL_BENCH_CJEMALLOC_H
#define BIGMODEL_BENCH_CJEMALLOC_H
// jemalloc from Debian's libjemalloc-dev (unprefixed API: mallocx, mallctl, ...).
#include <jemalloc/jemalloc.h>

// Macros Swift cannot import as functions.
static inline int cjemalloc_flags_arena(unsigned arena) { return MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE; }
static inline int cjemalloc_flags_align(size_t alignment) { return MALLOCX_ALIGN(alignment); }
static inline unsigned cjemalloc_arenas_all(void) { return MALLCTL_ARENAS_ALL; }
#endif
