#ifndef BIGMODEL_BENCH_HALF_KERNELS_H
#define BIGMODEL_BENCH_HALF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU converts to binary16 in hardware (x86-64 with F16C and AVX, `cpuid`); 0 elsewhere.
int bmb_half_kernels_available(void);

/// `count` binary32 values (bit patterns, unaligned) to binary16 with F16C `vcvtps2ph`, round to nearest even:
/// the rule torch's CPU `.to(float16)` follows on x86-64. Only call when `bmb_half_kernels_available()`.
void bmb_float32_to_float16(const void *source, void *destination, size_t count);

/// `count` bfloat16 values to binary16: widened exactly to binary32 (a 16-bit shift), then as above.
void bmb_bfloat16_to_float16(const void *source, void *destination, size_t count);

#endif
