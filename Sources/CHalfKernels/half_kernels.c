// Hardware binary16 conversion for the two directions that are compute-bound in Swift (F32 → F16 and
// BF16 → F16, ~6 GB/s of source per core from the branch-free scalar rule LLVM widens to SSE2's four lanes).
// Swift exposes no F16C intrinsics and the package targets baseline x86-64, so the instructions live here,
// compiled for AVX + F16C per function (`target` attribute) and chosen at run time from `cpuid`; every other
// CPU keeps the Swift kernels. Results are bit-identical to them (ConversionTests checks all 65,536 bfloat16
// inputs and the binary32 edge cases against the Swift rule): vcvtps2ph rounds to nearest even, overflows to
// infinity, keeps a NaN's top payload bits with the quiet bit set, and rounds subnormal results exactly.
#include "half_kernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

int bmb_half_kernels_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
}

__attribute__((target("avx,f16c")))
static inline uint16_t scalar_from_float32(uint32_t bits) {
    __m128 value = _mm_castsi128_ps(_mm_cvtsi32_si128((int)bits));
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(value, _MM_FROUND_TO_NEAREST_INT), 0);
}

__attribute__((target("avx,f16c")))
void bmb_float32_to_float16(const void *source, void *destination, size_t count) {
    const uint8_t *in = source;
    uint8_t *out = destination;
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 values = _mm256_loadu_ps((const float *)(in + 4 * i));
        _mm_storeu_si128((__m128i *)(out + 2 * i), _mm256_cvtps_ph(values, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, in + 4 * i, 4);
        uint16_t half = scalar_from_float32(bits);
        memcpy(out + 2 * i, &half, 2);
    }
}

__attribute__((target("avx,f16c")))
void bmb_bfloat16_to_float16(const void *source, void *destination, size_t count) {
    const uint8_t *in = source;
    uint8_t *out = destination;
    size_t i = 0;
    const __m128i zero = _mm_setzero_si128();
    for (; i + 8 <= count; i += 8) {
        __m128i brain = _mm_loadu_si128((const __m128i *)(in + 2 * i));
        // Interleaving zeros below each bfloat16 makes it the top half of its binary32: the exact widening.
        __m128i low = _mm_unpacklo_epi16(zero, brain);
        __m128i high = _mm_unpackhi_epi16(zero, brain);
        __m256 values = _mm256_castsi256_ps(_mm256_insertf128_si256(_mm256_castsi128_si256(low), high, 1));
        _mm_storeu_si128((__m128i *)(out + 2 * i), _mm256_cvtps_ph(values, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < count; i++) {
        uint16_t brain;
        memcpy(&brain, in + 2 * i, 2);
        uint16_t half = scalar_from_float32((uint32_t)brain << 16);
        memcpy(out + 2 * i, &half, 2);
    }
}

#else

int bmb_half_kernels_available(void) { return 0; }
void bmb_float32_to_float16(const void *source, void *destination, size_t count) { (void)source; (void)destination; (void)count; }
void bmb_bfloat16_to_float16(const void *source, void *destination, size_t count) { (void)source; (void)destination; (void)count; }

#endif
